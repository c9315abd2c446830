/* matmul.c — the matmul family: C = op(A)·op(B), 2-D and batched, and the
 * fused dense layer linear = act(x·W + b), on the row-major tg_gemm of
 * core/gemm.h (libxsmm underneath; no column-major thinking here). Forward
 * and VJPs are GEMMs that write straight into the output or ACCUMULATE
 * (beta = 1) straight into the gradients: no transposed copies at this
 * level. */
#include "ops_common.h"
#include "gemm.h"

/* ---- matmul -------------------------------------------------------------
 * C = op(A)·op(B)        op(X) = X, or Xᵀ when its flag is set
 *                        (p.i[0] = trans_a, p.i[1] = trans_b; 0 or 1)
 * Shapes (op applies to the last two dims):
 *   (M,K)   · (K,N)   -> (M,N)
 *   (B,M,K) · (B,K,N) -> (B,M,N)   batched
 *   (B,M,K) · (K,N)   -> (B,M,N)   B shared over the batch (a dense layer)
 *   (M,K)   · (B,K,N) -> (B,M,N)   A shared over the batch
 * VJP, per batch entry:  dop(A) += dC·op(B)ᵀ,  dop(B) += op(A)ᵀ·dC,
 * written for the stored layouts:
 *   dA += dC·op(B)ᵀ   (M×K)       or, trans_a,   dA += op(B)·dCᵀ  (K×M)
 *   dB += op(A)ᵀ·dC   (K×N)       or, trans_b,   dB += dCᵀ·op(A)  (N×K)
 * A shared operand sums its gradient over the batch: one GEMM over the
 * flattened batch rows where the layout allows, else one GEMM per entry in
 * batch order (deterministic either way).
 */

/* The product of one node, read from its inputs' shapes. */
typedef struct mm_dims {
    int64_t nb;            /* batch entries (1 for 2-D · 2-D)                 */
    int64_t M, N, K;
    int64_t lda, ldb;      /* stored row lengths of A and B                   */
    int64_t sa, sb;        /* element stride between batch entries, 0: shared */
    int     ta, tb;
} mm_dims;

static int64_t ld_of(int64_t cols) { return cols > 0 ? cols : 1; }

static void mm_dims_of(const tg_node *n, mm_dims *d)
{
    const tg_tensor *a = n->in[0], *b = n->in[1];
    d->ta = n->p.i[0] != 0;
    d->tb = n->p.i[1] != 0;
    int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    d->M = d->ta ? ac : ar;
    d->K = d->ta ? ar : ac;
    d->N = d->tb ? br : bc;
    d->lda = ld_of(ac);
    d->ldb = ld_of(bc);
    d->sa = a->ndim == 3 ? ar * ac : 0;
    d->sb = b->ndim == 3 ? br * bc : 0;
    d->nb = a->ndim == 3 ? a->shape[0] : b->ndim == 3 ? b->shape[0] : 1;
}

/* nb GEMMs C_i = op(A_i)·op(B_i) + beta_i·C_i, where X_i = X + i·sX (sX = 0:
 * the same matrix for every i). A shared C (sC = 0) accumulates: beta for
 * i = 0, then 1. Two cases collapse to one GEMM over the whole batch:
 *   - B shared, A untransposed, A and C rows contiguous across entries:
 *     stack the rows (M·nb rows);
 *   - C shared, A stored K×M and B stored K×N, both contiguous across
 *     entries: stack the summation (K·nb terms). */
static tg_status bgemm(tg_ctx *ctx, unsigned hints, tg_dtype dt, int64_t nb, int ta, int tb,
                       int64_t M, int64_t N, int64_t K,
                       const char *A, int64_t lda, int64_t sA,
                       const char *B, int64_t ldb, int64_t sB,
                       double beta, char *C, int64_t ldc, int64_t sC)
{
    if (nb == 0 && sC == 0 && beta == 0.0)   /* an empty sum overwrites C with zeros */
        return tg_gemm_ex(ctx, 0, dt, ta, tb, M, N, 0, A, lda, B, ldb, 0.0, C, ldc);
    if (nb > 1 && sC == 0)
        hints &= ~(unsigned)TG_GEMM_C_COLD;   /* the next entry reads C right back */
    if (nb > 1 && sB == 0 && sA && sC && !ta && sA == M * lda && sC == M * ldc)
        return tg_gemm_ex(ctx, hints, dt, ta, tb, M * nb, N, K, A, lda, B, ldb, beta, C, ldc);
    if (nb > 1 && sC == 0 && sA && sB && ta && !tb && sA == K * lda && sB == K * ldb)
        return tg_gemm_ex(ctx, hints, dt, ta, tb, M, N, K * nb, A, lda, B, ldb, beta, C, ldc);
    size_t es = tg_dtype_size(dt);
    for (int64_t i = 0; i < nb; i++) {
        tg_status s = tg_gemm_ex(ctx, hints, dt, ta, tb, M, N, K, A + (size_t)(i * sA) * es, lda,
                              B + (size_t)(i * sB) * es, ldb, sC == 0 && i > 0 ? 1.0 : beta,
                              C + (size_t)(i * sC) * es, ldc);
        if (s != TG_OK)
            return s;
    }
    return TG_OK;
}

/* beta for the VJP's product into input i's gradient: 0 (overwrite) when
 * that gradient is to be taken as +0 (tg_vjp_overwrites: a parameter's
 * zeroed gradient, or the sweep's unwritten buffer; matmul and linear
 * declare every input) and no other input shares it, else 1 (accumulate).
 * Bit for bit the same: the kernels start their sums from a +0 register
 * either way, and beta 0 writes all of C (K = 0 too). Overwriting spares
 * the product reading a gradient that is cold after the optimizer step
 * (measured, f32 step 784-1024-1024-10 b128, 1 thread: see the commit). */
static double grad_beta(const tg_node *n, int i)
{
    return tg_vjp_overwrites(n, i) ? 0.0 : 1.0;
}

/* Hints for the product into input i's gradient: a leaf's gradient (a
 * parameter's) is read next by the optimizer, after the rest of the
 * backward, so it is written around the caches when large (gemm.h,
 * TG_GEMM_C_COLD). An intermediate's is read by the next VJP. */
static unsigned grad_hints(const tg_node *n, int i)
{
    return n->in[i]->node < 0 ? TG_GEMM_C_COLD : 0u;
}

static tg_status matmul_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    const tg_tensor *a = n->in[0], *b = n->in[1];
    tg_status s = tg_chk_same_dtype(n, 0, 1);
    if (s != TG_OK)
        return s;
    char sa[TG_SHAPE_STR_MAX], sb[TG_SHAPE_STR_MAX];
    for (int i = 0; i < 2; i++)
        if (n->in[i]->ndim != 2 && n->in[i]->ndim != 3)
            return tg_op_fail(n, TG_ERR_SHAPE, "input %d is %d-D (%s), expected 2-D or 3-D", i,
                              n->in[i]->ndim, TG_SHAPE_OF(n->in[i], sa));
    if ((n->p.i[0] != 0 && n->p.i[0] != 1) || (n->p.i[1] != 0 && n->p.i[1] != 1))
        return tg_op_fail(n, TG_ERR_ARG, "transpose flags must be 0 or 1 (got %lld, %lld)",
                          (long long)n->p.i[0], (long long)n->p.i[1]);
    mm_dims d;
    mm_dims_of(n, &d);
    int64_t kb = d.tb ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    if (d.K != kb)
        return tg_op_fail(n, TG_ERR_SHAPE, "inner dims differ (%s%s · %s%s)",
                          TG_SHAPE_OF(a, sa), d.ta ? "ᵀ" : "", TG_SHAPE_OF(b, sb), d.tb ? "ᵀ" : "");
    if (a->ndim == 3 && b->ndim == 3 && a->shape[0] != b->shape[0])
        return tg_op_fail(n, TG_ERR_SHAPE, "batch sizes differ (%s · %s)",
                          TG_SHAPE_OF(a, sa), TG_SHAPE_OF(b, sb));
    *dt = a->dtype;
    *ndim = a->ndim == 3 || b->ndim == 3 ? 3 : 2;
    int k = 0;
    if (*ndim == 3)
        shape[k++] = d.nb;
    shape[k++] = d.M;
    shape[k] = d.N;
    return TG_OK;
}

static tg_status matmul_forward(tg_node *n)
{
    mm_dims d;
    mm_dims_of(n, &d);
    return bgemm(n->ctx, 0, n->out->dtype, d.nb, d.ta, d.tb, d.M, d.N, d.K,
                 n->in[0]->data, d.lda, d.sa, n->in[1]->data, d.ldb, d.sb,
                 0.0, n->out->data, ld_of(d.N), d.M * d.N);
}

static void matmul_backward(tg_node *n)
{
    mm_dims d;
    mm_dims_of(n, &d);
    tg_ctx *ctx = n->ctx;
    tg_dtype dt = n->out->dtype;
    const char *a = n->in[0]->data, *b = n->in[1]->data, *dc = n->out->grad;
    char *da = n->in[0]->grad, *db = n->in[1]->grad;
    int64_t ldc = ld_of(d.N), sc = d.M * d.N;
    /* Each input's contribution separately: correct when in[0] == in[1]. */
    if (da) {
        double beta = grad_beta(n, 0);
        if (!d.ta)   /* dA (M×K) += dC·op(B)ᵀ */
            bgemm(ctx, grad_hints(n, 0), dt, d.nb, 0, !d.tb, d.M, d.K, d.N, dc, ldc, sc, b, d.ldb, d.sb,
                  beta, da, d.lda, d.sa);
        else         /* dA (K×M) += op(B)·dCᵀ */
            bgemm(ctx, grad_hints(n, 0), dt, d.nb, d.tb, 1, d.K, d.M, d.N, b, d.ldb, d.sb, dc, ldc, sc,
                  beta, da, d.lda, d.sa);
    }
    if (db) {
        double beta = grad_beta(n, 1);
        if (!d.tb)   /* dB (K×N) += op(A)ᵀ·dC */
            bgemm(ctx, grad_hints(n, 1), dt, d.nb, !d.ta, 0, d.K, d.N, d.M, a, d.lda, d.sa, dc, ldc, sc,
                  beta, db, d.ldb, d.sb);
        else         /* dB (N×K) += dCᵀ·op(A) */
            bgemm(ctx, grad_hints(n, 1), dt, d.nb, 1, d.ta, d.N, d.K, d.M, dc, ldc, sc, a, d.lda, d.sa,
                  beta, db, d.ldb, d.sb);
    }
}

/* Variants: 2-D odd sizes; batched with trans_a; 3-D·2-D with trans_b (the
 * flattened paths); both transposed, 3-D·2-D with M = 1 (per-entry paths). */
static tg_status matmul_sample(tg_node *n, tg_dtype dt, int v)
{
    static const struct { int na, nb; int64_t a[3], b[3]; int ta, tb; } cases[] = {
        { 2, 2, {3, 5},    {5, 4},    0, 0 },
        { 3, 3, {2, 4, 3}, {2, 4, 5}, 1, 0 },
        { 3, 2, {2, 3, 4}, {5, 4},    0, 1 },
        { 3, 2, {2, 4, 1}, {3, 4},    1, 1 },
    };
    if (v < 0 || v >= (int)(sizeof cases / sizeof cases[0]))
        return TG_ERR_ARG;
    n->n_in = 2;
    n->in[0] = tg_sample_uniform(n, dt, cases[v].na, cases[v].a, -1, 1);
    n->in[1] = tg_sample_uniform(n, dt, cases[v].nb, cases[v].b, -1, 1);
    n->p.i[0] = cases[v].ta;
    n->p.i[1] = cases[v].tb;
    return n->in[0] && n->in[1] ? TG_OK : tg_ctx_status(n->ctx);
}

/* Benchmark at a user's problem size: shape M,N,K gives A (M,K) · B (K,N);
 * B,M,N,K the batched A (B,M,K) · B (B,K,N). Values uniform in [-1, 1]. */
static tg_status matmul_sample_shape(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape)
{
    if (ndim != 3 && ndim != 4)
        return tg_op_fail(n, TG_ERR_SHAPE, "a problem size is M,N,K or B,M,N,K (got %d numbers)", ndim);
    const int64_t *d = shape + (ndim - 3);           /* M, N, K */
    int64_t a[3] = { shape[0], d[0], d[2] }, b[3] = { shape[0], d[2], d[1] };
    int o = ndim == 4 ? 0 : 1;                       /* skip the batch dim for 2-D */
    n->n_in = 2;
    n->in[0] = tg_sample_uniform(n, dt, 3 - o, a + o, -1, 1);
    n->in[1] = tg_sample_uniform(n, dt, 3 - o, b + o, -1, 1);
    n->p.i[0] = n->p.i[1] = 0;
    return n->in[0] && n->in[1] ? TG_OK : tg_ctx_status(n->ctx);
}

static void matmul_cost(const tg_node *n, tg_op_cost *c)
{
    mm_dims d;
    mm_dims_of(n, &d);
    double w = (double)tg_dtype_size(n->out->dtype);
    double na = (double)n->in[0]->numel, nb = (double)n->in[1]->numel, nc = (double)n->out->numel;
    double mnk = (double)d.nb * (double)d.M * (double)d.N * (double)d.K;
    c->fwd_flops = 2 * mnk;
    c->fwd_bytes = w * (na + nb + nc);
    c->bwd_flops = 4 * mnk;                          /* two GEMMs of the forward's size */
    c->bwd_bytes = w * (2 * nc + 3 * na + 3 * nb);   /* dC twice, A and B, dA and dB read+written */
}

const tg_op_def tg_op_matmul_def = {
    .name = "matmul", .n_in = 2, .overwrites = 3,
    .shape = matmul_shape, .forward = matmul_forward, .backward = matmul_backward,
    .sample = matmul_sample, .n_samples = 4, .cost = matmul_cost,
    .sample_shape = matmul_sample_shape,
};

tg_tensor *tg_matmul_t(tg_ctx *ctx, tg_tensor *a, tg_tensor *b, int trans_a, int trans_b)
{
    tg_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = trans_a != 0;
    p.i[1] = trans_b != 0;
    tg_tensor *in[2] = { a, b };
    return tg_apply(ctx, &tg_op_matmul_def, in, 2, &p, NULL);
}

tg_tensor *tg_matmul(tg_ctx *ctx, tg_tensor *a, tg_tensor *b)
{
    return tg_matmul_t(ctx, a, b, 0, 0);
}

/* ---- linear ---------------------------------------------------------------
 * y = act(x·W + b)        x: (M,K) or (B,M,K); W: (K,N); b: (N)
 *                          y: (M,N) or (B,M,N); act (p.i[0]): 0 none, 1 relu
 * One GEMM and one pass (bias, then relu, in place) instead of matmul, add
 * and relu: no intermediate tensors or intermediate gradients.
 * VJP:  dz = dy (none) or dy·[y > 0] (relu: y > 0 exactly where x·W + b > 0)
 *       db += sum over rows of dz (rows in order); dW += xᵀ·dz; dx += dz·Wᵀ
 * Bit for bit what relu(add(matmul(x, W), b)) computes, forward and VJP
 * (the same GEMM calls, the same additions in the same order).
 */
enum { LIN_NONE = 0, LIN_RELU = 1 };

static tg_status linear_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    const tg_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
    char sx[TG_SHAPE_STR_MAX], sw[TG_SHAPE_STR_MAX], sb[TG_SHAPE_STR_MAX];
    tg_status s;
    if ((s = tg_chk_same_dtype(n, 0, 1)) != TG_OK || (s = tg_chk_same_dtype(n, 0, 2)) != TG_OK)
        return s;
    if (n->p.i[0] != LIN_NONE && n->p.i[0] != LIN_RELU)
        return tg_op_fail(n, TG_ERR_ARG, "activation must be 0 (none) or 1 (relu), got %lld", (long long)n->p.i[0]);
    if ((x->ndim != 2 && x->ndim != 3) || w->ndim != 2)
        return tg_op_fail(n, TG_ERR_SHAPE, "x must be 2-D or 3-D and W 2-D (x %s, W %s)",
                          TG_SHAPE_OF(x, sx), TG_SHAPE_OF(w, sw));
    if (x->shape[x->ndim - 1] != w->shape[0])
        return tg_op_fail(n, TG_ERR_SHAPE, "inner dims differ (%s · %s)", TG_SHAPE_OF(x, sx), TG_SHAPE_OF(w, sw));
    if (b->ndim != 1 || b->shape[0] != w->shape[1])
        return tg_op_fail(n, TG_ERR_SHAPE, "bias %s does not fit W %s (expected (%lld))", TG_SHAPE_OF(b, sb),
                          TG_SHAPE_OF(w, sw), (long long)w->shape[1]);
    *dt = x->dtype;
    *ndim = x->ndim;
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[x->ndim - 1] = w->shape[1];
    return TG_OK;
}

/* Rows of x (all leading dims), its width K, and N. */
static void linear_dims(const tg_node *n, int64_t *M, int64_t *K, int64_t *N)
{
    const tg_tensor *x = n->in[0];
    *K = x->shape[x->ndim - 1];
    *M = *K ? x->numel / *K : tg_shape_numel(x->ndim - 1, x->shape);
    *N = n->in[1]->shape[1];
}

static tg_status linear_forward(tg_node *n)
{
    int64_t M, K, N;
    linear_dims(n, &M, &K, &N);
    tg_dtype dt = n->out->dtype;
    tg_status s = tg_gemm(n->ctx, dt, 0, 0, M, N, K, n->in[0]->data, ld_of(K), n->in[1]->data, ld_of(N),
                          0.0, n->out->data, ld_of(N));
    if (s != TG_OK)
        return s;
    int relu = n->p.i[0] == LIN_RELU;
    int nt = tg_par_threads(n->ctx, (double)(M * N), TG_PAR_MIN_ELEMS);
    if (nt > M)
        nt = (int)(M > 0 ? M : 1);
    TG_DISPATCH(dt, T, {
        const T *b = n->in[2]->data;
        T *y = n->out->data;
        TG_PAR_FOR(nt, M, 1, r0, r1, {
            for (int64_t i = r0; i < r1; i++) {
                T *yr = y + i * N;
                for (int64_t j = 0; j < N; j++) {
                    T v = yr[j] + b[j];
                    yr[j] = relu && v < 0 ? (T)0 : v;
                }
            }
        });
    });
    return TG_OK;
}

static void linear_backward(tg_node *n)
{
    int64_t M, K, N;
    linear_dims(n, &M, &K, &N);
    tg_ctx *ctx = n->ctx;
    tg_dtype dt = n->out->dtype;
    char *dx = n->in[0]->grad, *dw = n->in[1]->grad, *db = n->in[2]->grad;
    const char *dz = n->out->grad;
    int relu = n->p.i[0] == LIN_RELU;
    int ow_b = db && tg_vjp_overwrites(n, 2);
    size_t es = tg_dtype_size(dt);
    if (relu) {
        char *z = tg_node_scratch(n, (size_t)(M * N) * es);
        if (!z)
            return;
        /* dz = dy·[y > 0], and db's column sums, rows in order (threads:
         * ranges of columns, so each db[j] still sums its rows in order),
         * from +0 when db is overwritten. */
        int nt = tg_par_threads(ctx, (double)(M * N), TG_PAR_MIN_ELEMS);
        if (nt > 1 && N < 64 * (int64_t)nt)
            nt = 1;
        const uint64_t ones = tg_ew_ones;   /* TG_KEEP: no masked load of dy */
        TG_DISPATCH(dt, T, {
            const T *y = n->out->data, *dy = n->out->grad;
            T *zz = (T *)z, *bb = (T *)db;
            TG_PAR_FOR(nt, N, 16, c0, c1, {
                if (bb && ow_b)
                    for (int64_t j = c0; j < c1; j++)
                        bb[j] = 0;
                for (int64_t i = 0; i < M; i++) {
                    const T *yr = y + i * N, *dyr = dy + i * N;
                    T *zr = zz + i * N;
                    for (int64_t j = c0; j < c1; j++)
                        zr[j] = TG_KEEP(dyr[j], yr[j] > 0);
                    if (bb)
                        for (int64_t j = c0; j < c1; j++)
                            bb[j] += zr[j];
                }
            });
        });
        dz = z;
    } else if (db) {
        int nt = tg_par_threads(ctx, (double)(M * N), TG_PAR_MIN_ELEMS);
        if (nt > 1 && N < 64 * (int64_t)nt)
            nt = 1;
        TG_DISPATCH(dt, T, {
            const T *dy = n->out->grad;
            T *bb = (T *)db;
            TG_PAR_FOR(nt, N, 16, c0, c1, {
                if (ow_b)
                    for (int64_t j = c0; j < c1; j++)
                        bb[j] = 0;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = c0; j < c1; j++)
                        bb[j] += dy[i * N + j];
            });
        });
    }
    /* Each input's contribution separately: x, W and b may be one tensor. */
    if (dw)   /* dW (K×N) += xᵀ·dz */
        tg_gemm_ex(ctx, grad_hints(n, 1), dt, 1, 0, K, N, M, n->in[0]->data, ld_of(K), dz, ld_of(N), grad_beta(n, 1), dw, ld_of(N));
    if (dx)   /* dx (M×K) += dz·Wᵀ */
        tg_gemm_ex(ctx, grad_hints(n, 0), dt, 0, 1, M, K, N, dz, ld_of(N), n->in[1]->data, ld_of(N), grad_beta(n, 0), dx, ld_of(K));
}

/* Variants: 3x5 · 5x4 with relu; (2,3,4) · 4x3 without; 1x6 · 6x1 with
 * relu (single row and column); 4x2 · 2x5 without. For relu, each bias is
 * chosen so that every pre-activation of its column is at least 0.1 away
 * from the kink. */
static tg_status linear_sample(tg_node *n, tg_dtype dt, int v)
{
    static const struct { int nx; int64_t x[3], k, nout; int act; } cases[] = {
        { 2, {3, 5}, 5, 4, LIN_RELU }, { 3, {2, 3, 4}, 4, 3, LIN_NONE },
        { 2, {1, 6}, 6, 1, LIN_RELU }, { 2, {4, 2}, 2, 5, LIN_NONE },
    };
    if (v < 0 || v >= (int)(sizeof cases / sizeof cases[0]))
        return TG_ERR_ARG;
    int64_t wsh[2] = { cases[v].k, cases[v].nout };
    n->n_in = 3;
    n->p.i[0] = cases[v].act;
    n->in[0] = tg_sample_uniform(n, dt, cases[v].nx, cases[v].x, -1, 1);
    n->in[1] = tg_sample_uniform(n, dt, 2, wsh, -1, 1);
    n->in[2] = tg_sample_uniform(n, dt, 1, &wsh[1], -1, 1);
    tg_status s = tg_sample_done(n);
    if (s != TG_OK || cases[v].act != LIN_RELU)
        return s;
    const tg_tensor *x = n->in[0], *w = n->in[1];
    int64_t K = cases[v].k, N = cases[v].nout, M = x->numel / K;
    for (int64_t j = 0; j < N; j++) {
        double best = 0, gap = -1;
        for (int c = -30; c <= 30; c++) {        /* b in [-1.5, 1.5], steps of 0.05 */
            double bj = 0.05 * c, g = INFINITY;
            for (int64_t i = 0; i < M; i++) {
                double z = bj;
                for (int64_t k = 0; k < K; k++)
                    z += tg_tensor_get(x, i * K + k) * tg_tensor_get(w, k * N + j);
                g = fabs(z) < g ? fabs(z) : g;
            }
            if (g > gap) {
                gap = g;
                best = bj;
            }
        }
        tg_tensor_set(n->in[2], j, best);
    }
    return TG_OK;
}

/* Benchmark at a user's problem size M,N,K: x (M,K), W (K,N), b (N), relu. */
static tg_status linear_sample_shape(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape)
{
    if (ndim != 3)
        return tg_op_fail(n, TG_ERR_SHAPE, "a problem size is M,N,K (got %d numbers)", ndim);
    int64_t xs[2] = { shape[0], shape[2] }, ws[2] = { shape[2], shape[1] };
    n->n_in = 3;
    n->p.i[0] = LIN_RELU;
    n->in[0] = tg_sample_uniform(n, dt, 2, xs, -1, 1);
    n->in[1] = tg_sample_uniform(n, dt, 2, ws, -1, 1);
    n->in[2] = tg_sample_uniform(n, dt, 1, &ws[1], -1, 1);
    return tg_sample_done(n);
}

static void linear_cost(const tg_node *n, tg_op_cost *c)
{
    int64_t M, K, N;
    linear_dims(n, &M, &K, &N);
    double w = (double)tg_dtype_size(n->out->dtype), mn = (double)M * (double)N;
    double mnk = mn * (double)K, nx = (double)M * (double)K, nw = (double)K * (double)N;
    c->fwd_flops = 2 * mnk + 2 * mn;                        /* GEMM, bias, relu */
    c->fwd_bytes = w * (nx + nw + (double)N + 2 * mn);      /* the pass re-reads y */
    c->bwd_flops = 4 * mnk + 2 * mn;                        /* two GEMMs, mask, bias sums */
    c->bwd_bytes = w * (4 * mn + 3 * nx + 3 * nw + 2 * (double)N);
}

const tg_op_def tg_op_linear_def = {
    .name = "linear", .n_in = 3, .overwrites = 7,
    .shape = linear_shape, .forward = linear_forward, .backward = linear_backward,
    .sample = linear_sample, .n_samples = 4, .cost = linear_cost,
    .sample_shape = linear_sample_shape,
};

tg_tensor *tg_linear(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b, int relu)
{
    tg_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = relu ? LIN_RELU : LIN_NONE;
    tg_tensor *in[3] = { x, w, b };
    return tg_apply(ctx, &tg_op_linear_def, in, 3, &p, NULL);
}
