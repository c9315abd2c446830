/* test_gemm.c — tg_gemm (libxsmm, blocked) against tg_gemm_ref: odd sizes,
 * every transpose case, beta 0 and 1, f32 and f64, padded leading
 * dimensions, shapes that cross the blocking (K and N panels, remainders,
 * packed and in-place B, the swapped orientation); plus argument errors,
 * aliasing, scratch release and no heap allocation on repeated calls; with
 * 1 to 4 threads, bit-identical results. */
#include "tapegrad.h"
#include "gemm.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double get(tg_dtype dt, const void *p, int64_t i)
{
    return dt == TG_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
}

static void put(tg_dtype dt, void *p, int64_t i, double v)
{
    if (dt == TG_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

static void *rand_buf(tg_rng *r, tg_dtype dt, int64_t n)
{
    void *p = malloc((size_t)(n ? n : 1) * tg_dtype_size(dt));
    for (int64_t i = 0; i < n; i++)
        put(dt, p, i, 2 * tg_rng_uniform(r) - 1);
    return p;
}

static void *abs_copy(tg_dtype dt, const void *p, int64_t n)
{
    void *q = malloc((size_t)(n ? n : 1) * tg_dtype_size(dt));
    for (int64_t i = 0; i < n; i++)
        put(dt, q, i, fabs(get(dt, p, i)));
    return q;
}

/* One case: C (M×N, ldc = N + pad) from op(A), op(B) with padded leading
 * dimensions, compared element by element with the reference under the
 * rigorous bound |err| <= (K + 2)·u·((|A|·|B|)_ij + beta·|C_ij|) + 2u·|ref_ij| (u: unit
 * roundoff), which holds for any order of summation. With beta = 0, C starts
 * as NaN: it must be overwritten, never read. Returns 1 when all agree. */
static int check_case(tg_ctx *ctx, tg_rng *r, tg_dtype dt, int ta, int tb,
                      int64_t M, int64_t N, int64_t K, double beta, int pad)
{
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int64_t na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb, nc = M * ldc;
    void *A = rand_buf(r, dt, na), *B = rand_buf(r, dt, nb);
    void *C = rand_buf(r, dt, nc), *R = malloc((size_t)(nc ? nc : 1) * tg_dtype_size(dt));
    void *S = malloc((size_t)(nc ? nc : 1) * tg_dtype_size(dt));
    void *Aa = abs_copy(dt, A, na), *Ba = abs_copy(dt, B, nb);
    if (beta == 0.0)
        for (int64_t i = 0; i < nc; i++)
            put(dt, C, i, NAN);
    memcpy(R, C, (size_t)nc * tg_dtype_size(dt));
    void *C0 = abs_copy(dt, C, nc);

    size_t used = tg_ctx_arena_used(ctx);
    tg_status s = tg_gemm(ctx, dt, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
    tg_gemm_ref(dt, ta, tb, M, N, K, A, lda, B, ldb, beta, R, ldc);
    tg_gemm_ref(dt, ta, tb, M, N, K, Aa, lda, Ba, ldb, 0.0, S, ldc);
    double u = dt == TG_F32 ? 0x1p-24 : 0x1p-53;
    int ok = s == TG_OK && tg_ctx_arena_used(ctx) == used;
    int64_t bad = -1;
    for (int64_t i = 0; i < M && ok; i++)
        for (int64_t j = 0; j < N; j++) {
            double c = get(dt, C, i * ldc + j), ref = get(dt, R, i * ldc + j);
            double c0 = beta == 0.0 ? 0.0 : get(dt, C0, i * ldc + j);
            double tol = (double)(K + 2) * u * (get(dt, S, i * ldc + j) + c0) + 2 * u * fabs(ref) + 1e-300;
            if (!(fabs(c - ref) <= tol)) {
                ok = 0;
                bad = i * ldc + j;
                break;
            }
        }
    /* The padding between rows of C is untouched. */
    for (int64_t i = 0; i < M && ok; i++)
        for (int64_t j = N; j < ldc; j++)
            if (memcmp((char *)C + (size_t)(i * ldc + j) * tg_dtype_size(dt),
                       (char *)R + (size_t)(i * ldc + j) * tg_dtype_size(dt), tg_dtype_size(dt)) != 0)
                ok = 0;
    if (!ok)
        fprintf(stderr, "  %s %c%c M=%lld N=%lld K=%lld beta=%g pad=%d: status %d, elem %lld: %.9g vs %.9g\n",
                tg_dtype_name(dt), ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)M, (long long)N,
                (long long)K, beta, pad, (int)s, (long long)bad,
                bad >= 0 ? get(dt, C, bad) : 0.0, bad >= 0 ? get(dt, R, bad) : 0.0);
    free(A); free(B); free(C); free(R); free(S); free(Aa); free(Ba); free(C0);
    return ok;
}

static void test_square_and_mixed(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_poison(ctx, 1);   /* scratch must be written before it is read */
    tg_rng r;
    tg_rng_seed(&r, 42);
    static const int64_t sizes[] = {1, 3, 17, 63, 64, 65, 300};
    static const int64_t mixed[][3] = {
        {1, 300, 17}, {65, 3, 64}, {300, 63, 1}, {17, 65, 300}, {64, 1, 65}, {3, 17, 63},
        {300, 3, 17},  /* skinny N: the swapped orientation when trans_a        */
        {130, 10, 70}, {10, 130, 70}, {63, 300, 3},
    };
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        for (int t = 0; t < 4; t++) {
            int ta = t & 1, tb = t >> 1;
            for (int bi = 0; bi < 2; bi++) {
                for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
                    int64_t n = sizes[i];
                    if (n == 300 && bi == 0 && d == 0)
                        continue;    /* keep the run short: 300³ runs in the other 3 */
                    TEST_CHECK_MSG(check_case(ctx, &r, dt, ta, tb, n, n, n, bi, (int)(i % 3) * 3),
                                   "square %lld", (long long)n);
                }
                for (size_t i = 0; i < sizeof mixed / sizeof mixed[0]; i++)
                    TEST_CHECK_MSG(check_case(ctx, &r, dt, ta, tb, mixed[i][0], mixed[i][1], mixed[i][2],
                                              bi, (int)(i % 2) * 5),
                                   "mixed %lld %lld %lld", (long long)mixed[i][0],
                                   (long long)mixed[i][1], (long long)mixed[i][2]);
            }
        }
    }
    tg_ctx_free(ctx);
}

/* Shapes beyond one block in every direction: several K blocks (beta 1
 * accumulation after the first), several N panels with a remainder chunk,
 * row-block remainders, and a B large enough to be packed. */
static void test_blocking(int threads)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .n_threads = threads });
    tg_ctx_set_poison(ctx, 1);
    tg_rng r;
    tg_rng_seed(&r, 7);
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        TEST_CHECK(check_case(ctx, &r, TG_F32, ta, tb, 80, 300, 1100, t & 1 ? 1.0 : 0.0, 1));
        TEST_CHECK(check_case(ctx, &r, TG_F64, ta, tb, 70, 200, 700, t & 1 ? 0.0 : 1.0, 2));
        TEST_CHECK(check_case(ctx, &r, TG_F32, ta, tb, 33, 520, 600, 0.0, 0));   /* one row block */
        /* rows of A 2 KiB apart: 8-row blocks, with a remainder */
        TEST_CHECK(check_case(ctx, &r, TG_F32, ta, tb, 70, 10, 512, 1.0, 0));
        TEST_CHECK(check_case(ctx, &r, TG_F64, ta, tb, 21, 90, 256, 0.0, 0));
        /* f32 rows 4 KiB apart (lda 1024 with padding between rows): A
         * copied with padded rows when ta; B rows 2 KiB apart (ldb 512):
         * packed even for a single row block when !tb */
        TEST_CHECK(check_case(ctx, &r, TG_F32, ta, tb, 1000, 80, 40, t & 1 ? 1.0 : 0.0, 24));
        TEST_CHECK(check_case(ctx, &r, TG_F32, ta, tb, 40, 500, 300, t & 1 ? 0.0 : 1.0, 12));
        /* short A times a wide Bᵀ: the swapped product when tb */
        TEST_CHECK(check_case(ctx, &r, TG_F32, ta, tb, 64, 700, 900, t & 1 ? 1.0 : 0.0, 3));
        TEST_CHECK(check_case(ctx, &r, TG_F64, ta, tb, 40, 600, 500, t & 1 ? 0.0 : 1.0, 0));
    }
    tg_ctx_free(ctx);
}

/* Threads split C into blocks each computed by one thread exactly as the
 * serial loop does: C is bit-identical for 1, 2, 3 and 4 threads, in every
 * partition mode (B packed, split by chunks or, with fewer chunks than
 * threads, anywhere; B in place, split by rows; the swapped orientation). */
static void test_threads_bitwise(void)
{
    static const int64_t shapes[][3] = {
        {128, 128, 784}, {784, 128, 128}, {128, 1024, 300}, {300, 700, 600},
        {33, 520, 600}, {700, 100, 1100}, {1030, 10, 200}, {96, 1000, 40}, {520, 64, 2100},
        {128, 1024, 1024}, {1024, 96, 40},
    };
    tg_rng r;
    tg_rng_seed(&r, 11);
    tg_ctx *ctx[4];
    for (int i = 0; i < 4; i++) {
        ctx[i] = tg_ctx_new(&(tg_ctx_opts){ .n_threads = i + 1 });
        tg_ctx_set_poison(ctx[i], 1);
    }
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int d = 0; d < 2; d++)
            for (int t = 0; t < 4; t++) {
                tg_dtype dt = d ? TG_F64 : TG_F32;
                size_t es = tg_dtype_size(dt);
                int ta = t & 1, tb = t >> 1;
                int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                int64_t lda = ta ? M : K, ldb = tb ? K : N;
                void *A = rand_buf(&r, dt, M * K), *B = rand_buf(&r, dt, K * N);
                void *C0 = rand_buf(&r, dt, M * N), *C = malloc((size_t)(M * N) * es);
                double beta = (double)((s + (size_t)t) % 2);
                void *init = malloc((size_t)(M * N) * es);
                memcpy(init, C0, (size_t)(M * N) * es);
                TEST_CHECK(tg_gemm(ctx[0], dt, ta, tb, M, N, K, A, lda, B, ldb, beta, C0, N) == TG_OK);
                for (int i = 1; i < 4; i++) {
                    memcpy(C, init, (size_t)(M * N) * es);
                    TEST_CHECK(tg_gemm(ctx[i], dt, ta, tb, M, N, K, A, lda, B, ldb, beta, C, N) == TG_OK);
                    TEST_CHECK_MSG(memcmp(C, C0, (size_t)(M * N) * es) == 0, "%s %c%c %lldx%lldx%lld, %d threads",
                                   tg_dtype_name(dt), ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)M,
                                   (long long)N, (long long)K, i + 1);
                }
                free(A); free(B); free(C0); free(C); free(init);
            }
    for (int i = 0; i < 4; i++)
        tg_ctx_free(ctx[i]);
}

static void test_edges_and_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    float a[6] = {1, 2, 3, 4, 5, 6}, c[4] = {9, 9, 9, 9};

    /* K = 0: C = beta·C. M or N = 0: nothing. */
    TEST_CHECK(tg_gemm(ctx, TG_F32, 0, 0, 2, 2, 0, a, 1, a, 2, 1.0, c, 2) == TG_OK);
    TEST_CHECK(c[0] == 9 && c[3] == 9);
    TEST_CHECK(tg_gemm(ctx, TG_F32, 0, 0, 2, 2, 0, a, 1, a, 2, 0.0, c, 2) == TG_OK);
    TEST_CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 0);
    TEST_CHECK(tg_gemm(ctx, TG_F32, 0, 0, 0, 2, 3, NULL, 3, a, 2, 0.0, NULL, 2) == TG_OK);

    /* Aliasing A and B: C = A·Aᵀ for A = [1 2 3; 4 5 6]. */
    TEST_CHECK(tg_gemm(ctx, TG_F32, 0, 1, 2, 2, 3, a, 3, a, 3, 0.0, c, 2) == TG_OK);
    TEST_CHECK(c[0] == 14 && c[1] == 32 && c[2] == 32 && c[3] == 77);
    /* Aᵀ·A with both flags on one buffer: (3×2)·(2×3) -> ldc 3. */
    float g[9];
    TEST_CHECK(tg_gemm(ctx, TG_F32, 1, 0, 3, 3, 2, a, 3, a, 3, 0.0, g, 3) == TG_OK);
    TEST_CHECK(g[0] == 17 && g[4] == 29 && g[8] == 45 && g[1] == 22 && g[3] == 22);

    /* Bad arguments: TG_ERR_ARG, recorded on the context. */
    TEST_CHECK(tg_gemm(ctx, TG_F32, 0, 0, 2, 2, 3, a, 3, a, 2, 0.5, c, 2) == TG_ERR_ARG);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "gemm: beta must be 0 or 1") != NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_gemm(ctx, TG_F32, 0, 0, 2, 2, 3, a, 2, a, 2, 0.0, c, 2) == TG_ERR_ARG);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "lda too small") != NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_gemm(ctx, TG_F32, 0, 1, 2, 2, 3, a, 3, a, 2, 0.0, c, 2) == TG_ERR_ARG);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "ldb too small") != NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_gemm(ctx, TG_I32, 0, 0, 2, 2, 3, a, 3, a, 2, 0.0, c, 2) == TG_ERR_ARG);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_gemm(ctx, TG_F32, 0, 0, -1, 2, 3, a, 3, a, 2, 0.0, c, 2) == TG_ERR_ARG);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_gemm(ctx, TG_F64, 0, 0, 2, 2, 3, a, 3, NULL, 2, 0.0, c, 2) == TG_ERR_ARG);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_gemm(NULL, TG_F32, 0, 0, 2, 2, 3, a, 3, a, 2, 0.0, c, 2) == TG_ERR_ARG);
    TEST_CHECK(tg_gemm_ref(TG_F32, 0, 0, 2, 2, 3, a, 3, a, 2, 2.0, c, 2) == TG_ERR_ARG);
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* TG_GEMM_C_COLD changes how C is stored, never what: the same bits as
 * tg_gemm where streaming stores apply (an aligned C over 1 MiB, beta 0,
 * one K block; f32 and f64, 1 and 2 threads, full-width chunks and a
 * narrower last one: N = 1040) and where they do not (C one element off alignment,
 * beta 1, K deeper than one block, the swapped orientation). */
static void test_cold_hint(void)
{
    static const struct { int64_t M, N, K; int ta, tb, dt64, off; double beta; } cases[] = {
        { 1024, 1024, 128, 1, 0, 0, 0, 0.0 }, { 784, 1024, 128, 1, 0, 0, 0, 0.0 },
        { 600, 1040, 96, 1, 0, 0, 0, 0.0 },   { 512, 512, 256, 1, 0, 1, 0, 0.0 },
        { 700, 640, 64, 0, 0, 0, 0, 0.0 },    { 1024, 1024, 128, 1, 0, 0, 1, 0.0 },
        { 1024, 1024, 128, 1, 0, 0, 0, 1.0 }, { 512, 640, 1500, 1, 0, 0, 0, 0.0 },
        { 128, 4096, 1024, 0, 1, 0, 0, 0.0 },
    };
    tg_rng r;
    tg_rng_seed(&r, 29);
    for (int threads = 1; threads <= 2; threads++) {
        tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .n_threads = threads });
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            tg_dtype dt = cases[c].dt64 ? TG_F64 : TG_F32;
            size_t es = tg_dtype_size(dt);
            int64_t M = cases[c].M, N = cases[c].N, K = cases[c].K, off = cases[c].off;
            int ta = cases[c].ta, tb = cases[c].tb;
            size_t cbytes = (size_t)(M * N + off) * es;
            void *A = rand_buf(&r, dt, M * K), *B = rand_buf(&r, dt, K * N);
            void *init = rand_buf(&r, dt, M * N + off);
            char *C0 = aligned_alloc(64, (cbytes + 63) & ~(size_t)63);
            char *C1 = aligned_alloc(64, (cbytes + 63) & ~(size_t)63);
            TEST_CHECK(C0 && C1);
            memcpy(C0, init, cbytes);
            memcpy(C1, init, cbytes);
            TEST_CHECK(tg_gemm(ctx, dt, ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N, cases[c].beta,
                               C0 + (size_t)off * es, N) == TG_OK);
            TEST_CHECK(tg_gemm_ex(ctx, TG_GEMM_C_COLD, dt, ta, tb, M, N, K, A, ta ? M : K, B, tb ? K : N,
                                  cases[c].beta, C1 + (size_t)off * es, N) == TG_OK);
            TEST_CHECK_MSG(memcmp(C0, C1, cbytes) == 0, "case %zu, %d threads", c, threads);
            free(A); free(B); free(init); free(C0); free(C1);
        }
        tg_ctx_free(ctx);
    }
}

/* After the first call of a shape, tg_gemm allocates nothing: the arena
 * chunk holding its scratch is reused and kernels come from the cache. */
static long n_allocs;
static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t size)
{
    (void)ud; (void)old_size;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    n_allocs++;
    return realloc(ptr, size);
}

static void test_no_heap_after_first_call(void)
{
    tg_set_allocator(counting_alloc, NULL);
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_rng r;
    tg_rng_seed(&r, 3);
    int64_t M = 200, N = 700, K = 600;   /* trans_b: packed panels in the arena */
    float *A = rand_buf(&r, TG_F32, M * K), *B = rand_buf(&r, TG_F32, N * K), *C = malloc(sizeof(float) * (size_t)(M * N));
    float *C2 = malloc(sizeof(float) * (size_t)(M * N));
    TEST_CHECK(tg_gemm(ctx, TG_F32, 0, 1, M, N, K, A, K, B, K, 0.0, C, N) == TG_OK);
    long before = n_allocs;
    size_t used = tg_ctx_arena_used(ctx);
    for (int i = 0; i < 3; i++)
        TEST_CHECK(tg_gemm(ctx, TG_F32, 0, 1, M, N, K, A, K, B, K, 0.0, C2, N) == TG_OK);
    TEST_CHECK(n_allocs == before);
    TEST_CHECK(tg_ctx_arena_used(ctx) == used);
    /* Deterministic: bit-identical on every call. */
    TEST_CHECK(memcmp(C, C2, sizeof(float) * (size_t)(M * N)) == 0);
    tg_ctx_free(ctx);
    tg_set_allocator(NULL, NULL);
    free(A); free(B); free(C); free(C2);
}

int main(void)
{
    test_square_and_mixed();
    test_blocking(1);
    test_blocking(2);
    test_blocking(3);
    test_threads_bitwise();
    test_edges_and_errors();
    test_cold_hint();
    test_no_heap_after_first_call();
    return test_report("test_gemm");
}
