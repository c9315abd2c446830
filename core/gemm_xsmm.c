/* gemm_xsmm.c — tg_gemm on libxsmm JIT kernels: the column-major mapping,
 * the kernel cache, cache blocking with packed operands, and the choice of
 * orientation for skinny products. The ONLY file that includes libxsmm.h.
 *
 * Deliberately not used: libxsmm_sgemm/dgemm (linked with libxsmmnoblas they
 * compute wrong results above 64³), TRANS_A kernels and alpha != 1 (libxsmm
 * 1.17 returns NULL for both). See DESIGN.md, Kernels.
 *
 * libxsmm is column-major. A row-major M×N matrix with leading dimension ld
 * is the column-major N×M matrix with the same ld, so the row-major
 *     C = op(A)·op(B)    is the column-major    Cᵀ = op(B)ᵀ·op(A)ᵀ,
 * i.e. a kernel with (m, n, k) = (N, M, K), a-operand from B, b-operand from
 * A. libxsmm's a-operand must be untransposed (no TRANS_A): it is always a
 * packed panel of op(B) (packing transposes when trans_b). Its b-operand may
 * be transposed (TRANS_B), which is exactly row-major trans_a, so A is read
 * in place.
 */
#include "gemm.h"
#include "tg_par.h"
#include "tg_tile.h"

#include <libxsmm.h>
#include <pthread.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

/* ---- blocking ------------------------------------------------------------
 * A kernel call computes an MB×NB block of C over KB terms of the sum. NB is
 * libxsmm's m (the vector dimension), MB its n. The op(B) panel of KB×NC is
 * packed once per (column panel, K block) into NB-wide contiguous chunks
 * (no cache-set conflicts, transposed when needed) and reused by every row
 * block of C; A is read in place. Each C block is owned by one (ic, jr)
 * iteration and summed over K blocks in a fixed order, so the loop over
 * (ic, jr) can later be split across threads with bit-identical results.
 *
 * Sizes measured on one Zen 4 core (benchmarks/bench_gemm.c, thread CPU
 * time): a deep KB (one K block up to 1024 f32) beat 128–512 by 5–10 % at
 * 1024³ (C is loaded and stored once); NC keeps the packed panel at about
 * 512 KiB of the 1 MiB L2. Packing B pays only when B is large and reused by
 * several row blocks (NOPACK_BYTES); MB drops to 8 for A rows at 2 KiB
 * multiples (see blocked()). NC must be a multiple of NB. */
typedef struct blocking { int64_t mb, nb, kb, nc; } blocking;

static const blocking block_f32 = { 64, 64, 1024, 128 };
static const blocking block_f64 = { 64, 64, 512, 64 };
#define NOPACK_BYTES (1 << 20)
#define COLD_BYTES   (1 << 20)   /* TG_GEMM_C_COLD: C larger than a core's L2 */
#define PAD_A_BYTES  (8 << 20)   /* largest padded copy of A (arena scratch) */

/* ---- kernel cache ---------------------------------------------------------
 * Dispatched kernels keyed by everything the JIT code depends on. A fixed
 * table: no allocation of ours ever; when full, libxsmm's own registry still
 * answers (more slowly). NULL results are cached too. */
typedef union kfn { libxsmm_smmfunction s; libxsmm_dmmfunction d; } kfn;
typedef struct kkey { int32_t dt, m, n, k, lda, ldb, ldc, flags; } kkey;
typedef struct kslot { kkey key; kfn fn; int full; } kslot;

#define CACHE_SLOTS 1024   /* power of two */
static kslot           cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t  xsmm_once = PTHREAD_ONCE_INIT;

static void xsmm_init(void) { libxsmm_init(); }

static uint32_t key_hash(const kkey *k)
{
    const int32_t *w = &k->dt;
    uint32_t h = 2166136261u;
    for (int i = 0; i < 8; i++)
        h = (h ^ (uint32_t)w[i]) * 16777619u;
    return h;
}

static kfn dispatch(const kkey *k)
{
    kfn f;
    libxsmm_blasint lda = k->lda, ldb = k->ldb, ldc = k->ldc;
    int flags = k->flags, prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
    /* 1.17 takes beta = 0 from the beta value and from the flag alike. */
    int beta0 = (flags & LIBXSMM_GEMM_FLAG_BETA_0) != 0;
    if (k->dt == TG_F32) {
        float alpha = 1, beta = beta0 ? 0.0f : 1.0f;
        f.s = libxsmm_smmdispatch(k->m, k->n, k->k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
    } else {
        double alpha = 1, beta = beta0 ? 0.0 : 1.0;
        f.d = libxsmm_dmmdispatch(k->m, k->n, k->k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
    }
    return f;
}

static kfn kernel_get(tg_dtype dt, int64_t m, int64_t n, int64_t k,
                      int64_t lda, int64_t ldb, int64_t ldc, int flags)
{
    kkey key;
    memset(&key, 0, sizeof key);
    key.dt = (int32_t)dt; key.m = (int32_t)m; key.n = (int32_t)n; key.k = (int32_t)k;
    key.lda = (int32_t)lda; key.ldb = (int32_t)ldb; key.ldc = (int32_t)ldc; key.flags = flags;
    pthread_once(&xsmm_once, xsmm_init);

    pthread_mutex_lock(&cache_lock);
    uint32_t h = key_hash(&key);
    kslot *free_slot = NULL;
    for (uint32_t probe = 0; probe < 16; probe++) {
        kslot *s = &cache[(h + probe) & (CACHE_SLOTS - 1)];
        if (!s->full) {
            free_slot = s;
            break;
        }
        if (memcmp(&s->key, &key, sizeof key) == 0) {
            kfn f = s->fn;
            pthread_mutex_unlock(&cache_lock);
            return f;
        }
    }
    kfn f = dispatch(&key);
    if (free_slot) {
        free_slot->key = key;
        free_slot->fn = f;
        free_slot->full = 1;
    }
    pthread_mutex_unlock(&cache_lock);
    return f;
}

static inline int kfn_null(tg_dtype dt, kfn f) { return dt == TG_F32 ? f.s == NULL : f.d == NULL; }

static inline void kfn_call(tg_dtype dt, kfn f, const void *a, const void *b, void *c)
{
    if (dt == TG_F32)
        f.s(a, b, c);
    else
        f.d(a, b, c);
}

/* ---- packing ----------------------------------------------------------------
 * Transposed copies: dst[c][r] = src[r][c] for an rows×cols source, in
 * square tiles (8×8 f32, 4×4 f64) that use AVX shuffles when the build has
 * AVX (the scalar loop is 2-3× slower and shows in NT products). */
#if defined(TG_TILE_AVX)
static inline void tile_f32(const float *s, int64_t ls, float *d, int64_t ld)
{
    __m256 t[8];
    tg_tile8_f32(s, ls, t);
    for (int j = 0; j < 8; j++)
        _mm256_storeu_ps(d + j * ld, t[j]);
}

static inline void tile_f64(const double *s, int64_t ls, double *d, int64_t ld)
{
    __m256d t[4];
    tg_tile4_f64(s, ls, t);
    for (int j = 0; j < 4; j++)
        _mm256_storeu_pd(d + j * ld, t[j]);
}
#define TILE_F32 8
#define TILE_F64 4
#else
#define TILE_F32 8
#define TILE_F64 8
#define TILE_SCALAR(T, F, n)                                                       \
    static inline void tile_##F(const T *s, int64_t ls, T *d, int64_t ld)          \
    {                                                                              \
        for (int64_t r = 0; r < n; r++)                                            \
            for (int64_t c = 0; c < n; c++)                                        \
                d[c * ld + r] = s[r * ls + c];                                     \
    }
TILE_SCALAR(float, f32, TILE_F32)
TILE_SCALAR(double, f64, TILE_F64)
#endif

#define TRANSPOSE(T, F, n)                                                              \
    static void transpose_##F(const T *s, int64_t ls, int64_t rows, int64_t cols,        \
                              T *d, int64_t ld)                                          \
    {                                                                                    \
        int64_t r = 0;                                                                   \
        for (; r + n <= rows; r += n) {                                                  \
            int64_t c = 0;                                                               \
            for (; c + n <= cols; c += n)                                                \
                tile_##F(s + r * ls + c, ls, d + c * ld + r, ld);                        \
            for (; c < cols; c++)                                                        \
                for (int64_t i = r; i < r + n; i++)                                      \
                    d[c * ld + i] = s[i * ls + c];                                       \
        }                                                                                \
        for (; r < rows; r++)                                                            \
            for (int64_t c = 0; c < cols; c++)                                           \
                d[c * ld + r] = s[r * ls + c];                                           \
    }
TRANSPOSE(float, f32, TILE_F32)
TRANSPOSE(double, f64, TILE_F64)

/* pack_b: chunks [c0, c1) of the kc×nc block of op(B) starting at (p0, j0),
 * each chunk nb columns wide (the last one of the block may be narrower);
 * chunk c holds kc rows of w = min(nb, nc - c·nb) elements (row-major, ld
 * w) at element offset c·nb·kc of dst. With trans_b, B is stored N×K. */
static void pack_b(tg_dtype dt, const char *B, int64_t ldb, int tb, int64_t p0, int64_t j0,
                   int64_t kc, int64_t nc, int64_t nb, int64_t c0, int64_t c1, char *dst)
{
    size_t es = tg_dtype_size(dt);
    for (int64_t c = c0; c < c1; c++) {
        int64_t jr = c * nb, w = nc - jr < nb ? nc - jr : nb;
        char *d = dst + (size_t)(jr * kc) * es;
        if (!tb) {
            for (int64_t p = 0; p < kc; p++)
                memcpy(d + (size_t)(p * w) * es, B + (size_t)((p0 + p) * ldb + j0 + jr) * es, (size_t)w * es);
        } else {
            const char *src = B + (size_t)((j0 + jr) * ldb + p0) * es;   /* w rows of kc */
            if (dt == TG_F32)
                transpose_f32((const float *)src, ldb, w, kc, (float *)d, w);
            else
                transpose_f64((const double *)src, ldb, w, kc, (double *)d, w);
        }
    }
}

/* C[i][j] = beta·C[i][j] + X[j][i] for an M×N C and an N×M X (ld M), in
 * 16×16 tiles transposed through a small buffer (the tile transposes
 * above, then a row add the compiler vectorises; the element-by-element
 * strided loop this replaces was ~1 % of a training step); threads take
 * ranges of tile rows (each C row on one). */
#define ADD_T(T, F)                                                                     \
    static void add_t_##T(int64_t M, int64_t N, const T *X, double beta, T *C, int64_t ldc, int nt) \
    {                                                                                   \
        TG_PAR_FOR(nt, M, 16, r0, r1, {                                                 \
        T tmp[16 * 16];                                                                 \
        for (int64_t ii = r0; ii < r1; ii += 16)                                        \
            for (int64_t jj = 0; jj < N; jj += 16) {                                    \
                int64_t ie = ii + 16 < r1 ? ii + 16 : r1, je = jj + 16 < N ? jj + 16 : N; \
                transpose_##F(X + jj * M + ii, M, je - jj, ie - ii, tmp, 16);           \
                for (int64_t i = ii; i < ie; i++) {                                     \
                    T *c = C + i * ldc + jj;                                            \
                    const T *x = tmp + (i - ii) * 16;                                   \
                    if (beta == 0.0)                                                    \
                        for (int64_t j = 0; j < je - jj; j++)                           \
                            c[j] = x[j];                                                \
                    else                                                                \
                        for (int64_t j = 0; j < je - jj; j++)                           \
                            c[j] = c[j] + x[j];                                         \
                }                                                                       \
            }                                                                           \
        });                                                                             \
    }
ADD_T(float, f32)
ADD_T(double, f64)

/* ---- the blocked product --------------------------------------------------
 * C is cut into MB-row blocks (ic) × NB-column chunks (jr): items. The loop
 * nest is column panel (NC wide) → K block → [pack the panel] → row block →
 * chunk. With threads, each thread owns a fixed set of items and runs the
 * same nest skipping the others, packing only the chunks it uses into its
 * own buffer: no barrier, no shared writes. An item's C block is computed
 * by one thread with the very kernel calls of the serial loop, in the same
 * K order, so C is bit-identical for every thread count.
 *   Items in row-major order by default: each thread owns a contiguous
 *   range of C's rows, the split the elementwise kernels and optimizers use
 *   for the same memory (a core that writes lines another core holds pays
 *   for each one; measured here: 28 ns per 64-byte line). With B packed,
 *   each thread packs the chunks it uses (copies of B: cheap next to its
 *   share of M·N·K when there are many row blocks).
 *   Packed B with few row blocks (fewer than 4 per thread): chunk-major
 *   order, split at chunk boundaries when there are at least as many
 *   chunks as threads (every packed chunk is packed once), else anywhere
 *   (a shared chunk is packed by both). */

/* Kernels for one call: [k remainder][m remainder][n remainder][beta 0]. */
typedef struct kset { kfn k[2][2][2][2]; int have[2][2][2][2]; } kset;

typedef struct gjob {
    tg_dtype dt;
    int ta, tb, nopack, chunk_major;
    int64_t M, N, K, lda, ldb, ldc;
    const char *A, *B;
    char *C;
    double beta;
    blocking bl;
    int64_t ksz0, msz0, nsz0;     /* full block sizes (kernel choice) */
    int64_t nrows, nchunks;       /* row blocks, column chunks        */
    char *bp;                     /* packed panels, one per thread    */
    size_t bp_bytes;              /* per thread, 64-byte multiple     */
    const kset *ks;
    int nts;                      /* some kernels store C streaming   */
} gjob;

/* Item index of (row block r, chunk c) in the job's partition order. */
static inline int64_t item_of(const gjob *j, int64_t r, int64_t c)
{
    return j->chunk_major ? c * j->nrows + r : r * j->nchunks + c;
}

static void run_part(const gjob *j, int t, int nt)
{
    const blocking bl = j->bl;
    const size_t es = tg_dtype_size(j->dt);
    int64_t q0, q1;
    int64_t grain = j->chunk_major && j->nchunks >= nt ? j->nrows : 1;
    tg_par_range(j->nrows * j->nchunks, grain, t, nt, &q0, &q1);
    if (q0 >= q1)
        return;
    char *bp = j->bp ? j->bp + (size_t)t * j->bp_bytes : NULL;
    for (int64_t jc = 0; jc < j->N; jc += bl.nc) {
        int64_t nc = j->N - jc < bl.nc ? j->N - jc : bl.nc;
        int64_t c_first = jc / bl.nb, c_end = (jc + nc + bl.nb - 1) / bl.nb;
        /* This thread's chunks of the panel: [u0, u1) (relative). */
        int64_t u0 = -1, u1 = -1;
        for (int64_t c = c_first; c < c_end; c++)
            for (int64_t r = 0; r < j->nrows; r++) {
                int64_t q = item_of(j, r, c);
                if (q >= q0 && q < q1) {
                    if (u0 < 0)
                        u0 = c - c_first;
                    u1 = c - c_first + 1;
                    break;
                }
            }
        if (u0 < 0)
            continue;
        for (int64_t pc = 0; pc < j->K; pc += bl.kb) {
            int64_t kc = j->K - pc < bl.kb ? j->K - pc : bl.kb;
            int ik = kc != j->ksz0;
            int ib = pc == 0 && j->beta == 0.0;
            if (!j->nopack)
                pack_b(j->dt, j->B, j->ldb, j->tb, pc, jc, kc, nc, bl.nb, u0, u1, bp);
            for (int64_t r = 0; r < j->nrows; r++) {
                int64_t ic = r * bl.mb;
                int64_t mb = j->M - ic < bl.mb ? j->M - ic : bl.mb;
                int im = mb != j->msz0;
                const char *a_blk = j->A + (size_t)(j->ta ? pc * j->lda + ic : ic * j->lda + pc) * es;
                for (int64_t u = u0; u < u1; u++) {
                    int64_t q = item_of(j, r, c_first + u);
                    if (q < q0 || q >= q1)
                        continue;
                    int64_t jr = u * bl.nb;
                    int64_t w = nc - jr < bl.nb ? nc - jr : bl.nb;
                    int in = w != j->nsz0;
                    const char *b_blk = j->nopack ? j->B + (size_t)(pc * j->ldb + jc + jr) * es
                                                  : bp + (size_t)(jr * kc) * es;
                    TG_ASSERT(j->ks->have[ik][im][in][ib]);
#if defined(__x86_64__) || defined(__i386__)
                    /* A kernel that reads C (beta 1: accumulating, or a
                     * later K block): the next block's C lines into L1
                     * first, while this one computes (a gradient of a
                     * 1024-wide layer is 4 MiB, out of L2; 128x1024x1024
                     * matmul VJP accumulating, 1 thread, alternated in
                     * one process: 3.09 -> 2.89 ms, 2 threads 1.65 ->
                     * 1.58; 256³ the same). Only a prefetch: a block
                     * another thread owns is merely fetched. */
                    if (!ib) {
                        int64_t nr = r, nu = u + 1;
                        if (nu >= u1) {
                            nr = r + 1;
                            nu = u0;
                        }
                        if (nr < j->nrows) {
                            int64_t nic = nr * bl.mb, nmb = j->M - nic < bl.mb ? j->M - nic : bl.mb;
                            int64_t njr = nu * bl.nb, nw = (nc - njr < bl.nb ? nc - njr : bl.nb) * (int64_t)es;
                            const char *cb = j->C + (size_t)(nic * j->ldc + jc + njr) * es;
                            for (int64_t i = 0; i < nmb; i++)
                                for (int64_t o = 0; o < nw; o += 64)
                                    _mm_prefetch(cb + (size_t)(i * j->ldc) * es + (size_t)o, _MM_HINT_T0);
                        }
                    }
#endif
                    kfn_call(j->dt, j->ks->k[ik][im][in][ib], b_blk, a_blk,
                             j->C + (size_t)(ic * j->ldc + jc + jr) * es);
                }
            }
        }
    }
#if defined(__x86_64__) || defined(__i386__)
    /* libxsmm's streaming-store kernels do not fence: order this thread's
     * stores before anyone (another thread, after the region) reads C. */
    if (j->nts)
        _mm_sfence();
#endif
}

static tg_status blocked(tg_ctx *ctx, tg_dtype dt, int ta, int tb, int64_t M, int64_t N, int64_t K,
                         const char *A, int64_t lda, const char *B, int64_t ldb,
                         double beta, char *C, int64_t ldc, int cold)
{
    blocking bl = dt == TG_F32 ? block_f32 : block_f64;
    const size_t es = tg_dtype_size(dt);
    /* Rows of A a multiple of 2 KiB apart share few L1 sets, and a kernel
     * with a narrow N streams many rows of A at once (a wide register block
     * of rows): they evict each other. Blocks of 8 rows fit the 8 ways
     * (measured, f32 128x10x1024: 21 GFLOP/s with 64-row blocks, 69 with 8;
     * 128x16x1024: 34 -> 109). Wide products gain nothing or lose a little. */
    if (!ta && N < 128 && (lda * (int64_t)es) % 2048 == 0)
        bl.mb = 8;
    /* A short, wide product (a batch of up to two row blocks times a wide
     * layer) runs as one row block: B is then streamed once, in place when
     * untransposed, instead of being packed for two row blocks (f32,
     * bench_gemm, SCHED_FIFO, medians of 4-6 runs: 128x1024x784 NN 96 -> 101-110
     * GFLOP/s, 128x1024x1024 NN 93 -> 98-105, 96x512x1024 NN 105 -> 110). The
     * threads then split the column chunks (N >= 4 chunks). */
    else if (!ta && M <= 2 * bl.mb && N >= 4 * bl.nb)
        bl.mb = M;
    const int64_t kb = K < bl.kb ? K : bl.kb;
    const int64_t nc_max = N < bl.nc ? N : bl.nc;

    /* f32 A read transposed with rows a multiple of 4 KiB apart (a
     * weight gradient Xᵀ·dZ of a 1024-wide layer): the rows the kernel
     * broadcasts from all fall in one L1 set. A copy of its M columns, rows
     * a cache line off any 2 KiB multiple (up to PAD_A_BYTES of scratch),
     * costs a pass over A (M·K against 2·M·N·K flops) and
     * lifts the product (Zen 5, bench_gemm, SCHED_FIFO, alternated:
     * 1024x1024x128 TN 148-175 -> 204-216 GFLOP/s; in the 784-1024-1024-10
     * step the backward 4.28 -> 4.01 ms). f64 gained nothing (measured);
     * nor did f32 on the Zen 4 this was first tuned on (RESULTS.md). */
    const char *A0 = A;
    const int64_t lda0 = lda;
    size_t mark = tg_ctx_arena_mark(ctx);
    int64_t ld2 = (M + 15) & ~(int64_t)15;   /* M's row, a cache line off 2 KiB multiples */
    if ((ld2 * (int64_t)es) % 2048 == 0)
        ld2 += 16;
    if (dt == TG_F32 && ta && N >= 64 && (lda * (int64_t)es) % 4096 == 0 && K >= 16 &&
        (double)M * (double)N * (double)K >= 1e6 && (double)K * (double)ld2 * (double)es <= PAD_A_BYTES) {
        char *a2 = tg_ctx_alloc(ctx, (size_t)(K * ld2) * es, "gemm");
        if (!a2)
            return tg_ctx_status(ctx);
        for (int64_t r = 0; r < K; r++)   /* stored K×M */
            memcpy(a2 + (size_t)(r * ld2) * es, A + (size_t)(r * lda) * es, (size_t)M * es);
        A = a2;
        lda = ld2;
    }

    gjob j;
    memset(&j, 0, sizeof j);
    j.dt = dt; j.ta = ta; j.tb = tb;
    j.M = M; j.N = N; j.K = K; j.lda = lda; j.ldb = ldb; j.ldc = ldc;
    j.A = A; j.B = B; j.C = C; j.beta = beta; j.bl = bl;
    j.nrows = (M + bl.mb - 1) / bl.mb;
    j.nchunks = (N + bl.nb - 1) / bl.nb;
    /* B is read in place (no packing) when untransposed and either used by
     * a single row block of C, where packing cannot pay for itself, or
     * small enough to stay in cache while A is read in place untransposed.
     * With A read transposed (ta: its rows lda apart feed the kernel's
     * broadcasts), an unpacked B competes with it for L1 sets: packing paid
     * for every shape measured (f32, bench_gemm, SCHED_FIFO: 1024x1024x128
     * TN 86 -> 100 GFLOP/s, 784x1024x128 TN 97 -> 105, 784x128x128 TN 105 ->
     * 109, 512x512x256 TN 106 -> 112). */
    j.nopack = !tb && (M <= bl.mb || (!ta && (double)K * (double)N * (double)es <= NOPACK_BYTES));
    /* ...except an f32 B with rows a multiple of 2 KiB apart (a 512- or
     * 1024-wide layer's W): read in place, its chunk's K rows crowd a few
     * L1 sets; packed, it is contiguous. On Zen 5 that pays even for one
     * row block and for a B fetched from memory (bench_gemm, alternated:
     * 128x1024x1024 NN 141-148 -> 185-191 GFLOP/s, 64x512x1024 147 -> 187,
     * 128x1024x784 158-168 -> 192-203; the step's forward 3.18 -> 2.85 ms);
     * under 32 rows of A (8x1024x1024: 110 -> 81) or 256 of K it does not,
     * nor for f64 (128x512x784: 92 -> 76); on Zen 4 an unpacked B had
     * won (the one-row-block rule above). */
    if (dt == TG_F32 && !tb && M >= 32 && K >= 256 && (ldb * (int64_t)es) % 2048 == 0)
        j.nopack = 0;
    int nt = tg_par_threads(ctx, 2.0 * (double)M * (double)N * (double)K, TG_PAR_MIN_FLOPS);
    if (nt > j.nrows * j.nchunks)
        nt = (int)(j.nrows * j.nchunks);
    j.chunk_major = !j.nopack && j.nrows < 4 * (int64_t)nt;

    if (!j.nopack) {
        j.bp_bytes = ((size_t)(kb * nc_max) * es + 63) & ~(size_t)63;
        if (!(j.bp = tg_ctx_alloc(ctx, j.bp_bytes * (size_t)nt, "gemm"))) {
            tg_ctx_arena_rewind(ctx, mark);
            return tg_ctx_status(ctx);
        }
    }

    /* Every kernel this call needs, up front (so that a NULL one sends the
     * whole call to the reference, and the threads only read).
     * Per dimension: the full block size [0] and the remainder [1] (0 when
     * the dimension divides evenly). Only the first K block may use beta 0. */
    int64_t ksz[2] = { K < bl.kb ? K : bl.kb, K > bl.kb ? K % bl.kb : 0 };
    int64_t msz[2] = { M < bl.mb ? M : bl.mb, M > bl.mb ? M % bl.mb : 0 };
    int64_t nsz[2] = { N < bl.nb ? N : bl.nb, N > bl.nb ? N % bl.nb : 0 };
    /* Streaming stores for a cold C (gemm.h, TG_GEMM_C_COLD): only where
     * every C block is written once (beta 0, one K block) and is 64-byte
     * aligned (full-width chunks of an aligned C with 64-byte rows). */
    const int64_t vlen = 64 / (int64_t)es;
    int nts = cold && beta == 0.0 && K <= bl.kb && (double)M * (double)N * (double)es > COLD_BYTES &&
              ((uintptr_t)C & 63) == 0 && (ldc * (int64_t)es) % 64 == 0 && nsz[0] % vlen == 0;
    kset ks;
    memset(&ks, 0, sizeof ks);
    for (int ik = 0; ik < 2; ik++)
        for (int im = 0; im < 2; im++)
            for (int in = 0; in < 2; in++)
                for (int ib = 0; ib < 2; ib++) {
                    if (!ksz[ik] || !msz[im] || !nsz[in] || (ib && (ik || beta != 0.0)))
                        continue;
                    int flags = (ta ? LIBXSMM_GEMM_FLAG_TRANS_B : 0) | (ib ? LIBXSMM_GEMM_FLAG_BETA_0 : 0);
                    /* libxsmm (m, n, k) = (columns, rows, depth) of the C block */
                    int64_t la = j.nopack ? ldb : nsz[in];
                    int st = nts && ib && !in;   /* streaming stores for this one */
                    kfn f = kernel_get(dt, nsz[in], msz[im], ksz[ik], la, lda, ldc,
                                       flags | (st ? LIBXSMM_GEMM_FLAG_ALIGN_C_NTS_HINT : 0));
                    if (st && kfn_null(dt, f))   /* no such kernel: the plain one */
                        f = kernel_get(dt, nsz[in], msz[im], ksz[ik], la, lda, ldc, flags);
                    if (kfn_null(dt, f)) {
                        tg_ctx_arena_rewind(ctx, mark);
                        return tg_gemm_ref(dt, ta, tb, M, N, K, A0, lda0, B, ldb, beta, C, ldc);
                    }
                    ks.k[ik][im][in][ib] = f;
                    ks.have[ik][im][in][ib] = 1;
                }
    j.ks = &ks;
    j.nts = nts;
    j.ksz0 = ksz[0]; j.msz0 = msz[0]; j.nsz0 = nsz[0];

    if (nt > 1) {
        TG_OMP(parallel num_threads(nt))
        run_part(&j, tg_par_id(), tg_par_n());
    } else {
        run_part(&j, 0, 1);
    }
    tg_ctx_arena_rewind(ctx, mark);
    return TG_OK;
}

/* ---- orientation ------------------------------------------------------------
 * The kernels vectorise over N (columns of C): an N that fills its vectors
 * badly (N = 10 uses 10 of 16 f32 lanes) wastes the rest. When A is stored
 * transposed, op(A)ᵀ is in memory as is, so Cᵀ = op(B)ᵀ·op(A)ᵀ (vectorised
 * over M) costs only a transposed add of the small M×N result: do that when
 * it fills the vectors clearly better. With A untransposed the swap would
 * transpose all of A, which costs more than it saves (measured). */
static double lane_use(int64_t n, int64_t vlen)
{
    return (double)n / (double)(((n + vlen - 1) / vlen) * vlen);
}

static int want_swap(tg_dtype dt, int ta, int tb, int64_t M, int64_t N, int64_t K)
{
    int64_t vlen = dt == TG_F32 ? 16 : 8;
    if (ta && N < 4 * vlen && M > N && lane_use(M, vlen) > lane_use(N, vlen) + 0.15)
        return 1;
    /* C = A·Bᵀ with a short A (a batch times a layer's Wᵀ): packing Bᵀ
     * transposes all of B (N·K elements) on every call; the swapped
     * product transposes A instead and adds the result transposed (M·K +
     * M·N). Swap when that moves less than half as much (f32, bench_gemm,
     * SCHED_FIFO: 128x1024x1024 NT 9x -> 10x GFLOP/s). */
    return !ta && tb && (double)N * (double)K > 2 * ((double)M * (double)K + (double)M * (double)N);
}

static void zero_rows(tg_dtype dt, int64_t M, int64_t N, char *C, int64_t ldc)
{
    size_t es = tg_dtype_size(dt);
    for (int64_t i = 0; i < M; i++)
        memset(C + (size_t)(i * ldc) * es, 0, (size_t)N * es);   /* all-zero bits is 0.0 */
}

tg_status tg_gemm(tg_ctx *ctx, tg_dtype dt, int trans_a, int trans_b,
                  int64_t M, int64_t N, int64_t K,
                  const void *A, int64_t lda, const void *B, int64_t ldb,
                  double beta, void *C, int64_t ldc)
{
    return tg_gemm_ex(ctx, 0, dt, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

tg_status tg_gemm_ex(tg_ctx *ctx, unsigned hints, tg_dtype dt, int trans_a, int trans_b,
                     int64_t M, int64_t N, int64_t K,
                     const void *A, int64_t lda, const void *B, int64_t ldb,
                     double beta, void *C, int64_t ldc)
{
    if (!ctx)
        return TG_ERR_ARG;
    if (tg_ctx_status(ctx) != TG_OK)
        return tg_ctx_status(ctx);
    const char *why;
    if (tg_gemm_check(dt, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, &why) != TG_OK)
        return tg_ctx_fail(ctx, TG_ERR_ARG, "gemm: %s (%lldx%lldx%lld)", why,
                           (long long)M, (long long)N, (long long)K);
    trans_a = trans_a != 0;
    trans_b = trans_b != 0;
    if (M == 0 || N == 0)
        return TG_OK;
    if (K == 0) {
        if (beta == 0.0)
            zero_rows(dt, M, N, C, ldc);
        return TG_OK;
    }
    /* libxsmm takes int dimensions and leading dimensions. */
    const int64_t lim = INT32_MAX;
    if (lda > lim || ldb > lim || ldc > lim || M > lim || N > lim || K > lim)
        return tg_gemm_ref(dt, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc);

    if (!want_swap(dt, trans_a, trans_b, M, N, K))
        return blocked(ctx, dt, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc,
                       (hints & TG_GEMM_C_COLD) != 0);

    /* Cᵀ (N×M) = op(B)ᵀ·op(A)ᵀ: A' = B with the flag flipped, B' = A. */
    size_t es = tg_dtype_size(dt);
    size_t mark = tg_ctx_arena_mark(ctx);
    char *x = tg_ctx_alloc(ctx, (size_t)(M * N) * es, "gemm");
    if (!x)
        return tg_ctx_status(ctx);
    tg_status s = blocked(ctx, dt, !trans_b, !trans_a, N, M, K, B, ldb, A, lda, 0.0, x, M, 0);
    if (s == TG_OK) {
        int nt = tg_par_threads(ctx, (double)M * (double)N, TG_PAR_MIN_ELEMS);
        if (dt == TG_F32)
            add_t_float(M, N, (const float *)x, beta, C, ldc, nt);
        else
            add_t_double(M, N, (const double *)x, beta, C, ldc, nt);
    }
    tg_ctx_arena_rewind(ctx, mark);
    return s;
}
