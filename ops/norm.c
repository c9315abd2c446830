/* norm.c — normalisation as fused ops: batch_norm (training mode, per
 * channel over every axis but 1) and layer_norm (over the last axis); their
 * list, list_norm.h, also holds dropout (dropout.c). Each op is one forward
 * kernel and one VJP. Statistics are accumulated in double for f32 and f64
 * alike. Deliberately absent:
 * eval-mode batch norm with running statistics (the nn layer owns those),
 * normalisation over several trailing axes, group/instance norm. */
#include "ops_common.h"
#include "norm_row.h"

/* ---- shared helpers ------------------------------------------------------ */

/* p.f[0] = eps must be finite and > 0. */
static tg_status chk_eps(const tg_node *n)
{
    double eps = n->p.f[0];
    if (!(eps > 0) || !isfinite(eps))
        return tg_op_fail(n, TG_ERR_ARG, "eps must be finite and > 0, got %g", eps);
    return TG_OK;
}

/* Input i (gamma or beta, named `what`) must be 1-D of size `d`, the size of
 * x's axis `axis`, and of x's dtype. */
static tg_status chk_affine(const tg_node *n, int i, const char *what, int64_t d, int axis)
{
    tg_status s = tg_chk_same_dtype(n, 0, i);
    if (s != TG_OK)
        return s;
    const tg_tensor *x = n->in[0], *g = n->in[i];
    if (g->ndim != 1 || g->shape[0] != d) {
        char sg[TG_SHAPE_STR_MAX], sx[TG_SHAPE_STR_MAX];
        return tg_op_fail(n, TG_ERR_SHAPE, "%s shape %s does not match axis %d of x (%s): expected %lld",
                          what, TG_SHAPE_OF(g, sg), axis, TG_SHAPE_OF(x, sx), (long long)d);
    }
    return TG_OK;
}

/* Redraw x's groups until each has population std >= `min_std`, so the
 * samples are well conditioned (no near-constant channel or row). Element k
 * (0 <= k < count) of group g sits at g*gstride + (k / inner)*ostride + k % inner. */
static void spread_groups(tg_node *n, tg_tensor *x, int64_t groups, int64_t count, int64_t gstride,
                          int64_t inner, int64_t ostride, double min_std)
{
    tg_rng *r = tg_ctx_rng(n->ctx);
    for (int64_t g = 0; g < groups; g++) {
        for (int tries = 0; tries < 1000; tries++) {
            double s = 0, ss = 0;
            for (int64_t k = 0; k < count; k++) {
                double v = -2 + 4 * tg_rng_uniform(r);
                tg_tensor_set(x, g * gstride + (k / inner) * ostride + k % inner, v);
                s += v;
                ss += v * v;
            }
            double m = s / (double)count;
            if (ss / (double)count - m * m >= min_std * min_std)
                break;
        }
    }
}

/* x of the given shape, plus gamma and beta of size d (gamma in +-[0.5, 1.5),
 * beta in [-1, 1)). Fills n->in[0..2]. */
static tg_status sample_affine(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape, int64_t d)
{
    n->n_in = 3;
    n->in[0] = tg_tensor_new(n->ctx, dt, ndim, shape);
    n->in[1] = tg_sample_away0(n, dt, 1, &d, 1.5, 0.5);
    n->in[2] = tg_sample_uniform(n, dt, 1, &d, -1, 1);
    return n->in[0] && n->in[1] && n->in[2] ? TG_OK : tg_ctx_status(n->ctx);
}

/* Cost shared by the two norms over e elements and `groups` statistics:
 * forward = mean, variance, normalise (three reads of x, one write of y);
 * backward = the two sums, then dx (two reads of x and dy, r/w dx). */
static void norm_cost(const tg_node *n, tg_op_cost *c, double groups)
{
    double e = (double)n->out->numel, w = (double)tg_dtype_size(n->out->dtype);
    double d = (double)n->in[1]->numel;
    c->fwd_flops = 9 * e + 3 * groups;
    c->fwd_bytes = 4 * e * w + 2 * d * w;
    c->bwd_flops = 14 * e + 4 * groups;
    c->bwd_bytes = 6 * e * w + 3 * d * w;
}

/* A (d) tensor of value v in x's dtype standing in for a missing gamma (1)
 * or beta (0). Returns `given` when it is not NULL, and NULL (handled by
 * tg_apply's checks) when x is NULL or ctx already failed. */
static tg_tensor *affine_or_const(tg_ctx *ctx, tg_tensor *given, const tg_tensor *x, int64_t d, double v)
{
    if (given || !x || tg_ctx_status(ctx) != TG_OK)
        return given;
    tg_dtype dt = tg_dtype_is_float(x->dtype) ? x->dtype : TG_F64;
    return tg_tensor_fill(ctx, dt, 1, &d, v);
}

/* ---- batch_norm -------------------------------------------------------------
 * Training-mode batch norm. x (N, C, d...) with ndim >= 2; channel axis 1;
 * each channel is normalised over its M = N * prod(d...) values:
 *     mu_c = mean(x[:, c]),  var_c = mean((x[:, c] - mu_c)^2)   (biased)
 *     rstd_c = 1 / sqrt(var_c + eps),  xh = (x - mu_c) rstd_c
 *     y = gamma_c xh + beta_c                gamma, beta: (C); y: x's shape
 * p.f[0] = eps; n->user = tg_bn_stats * or NULL (batch mean and biased var
 * written there, C entries each of x's dtype). Saved: mu, rstd (2C doubles).
 * VJP, per channel: dbeta += sum dy;  dgamma += sum dy xh;
 *     dx += gamma rstd / M (M dy - sum dy - xh sum(dy xh))
 * M < 2 is an error, as in PyTorch ("Expected more than 1 value per channel
 * when training"). A constant channel has var 0: rstd = 1/sqrt(eps), y = beta.
 */
typedef struct bn_dims { int64_t N, C, S, M; } bn_dims;

static bn_dims bn_dims_of(const tg_tensor *x)
{
    bn_dims d = { x->shape[0], x->shape[1], 1, 0 };
    for (int k = 2; k < x->ndim; k++)
        d.S *= x->shape[k];
    d.M = d.N * d.S;
    return d;
}

static tg_status batch_norm_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    const tg_tensor *x = n->in[0];
    char sx[TG_SHAPE_STR_MAX];
    if (x->ndim < 2)
        return tg_op_fail(n, TG_ERR_SHAPE, "x must be (N, C, ...) with at least 2 dims, got %s",
                          TG_SHAPE_OF(x, sx));
    if ((s = chk_affine(n, 1, "gamma", x->shape[1], 1)) != TG_OK ||
        (s = chk_affine(n, 2, "beta", x->shape[1], 1)) != TG_OK || (s = chk_eps(n)) != TG_OK)
        return s;
    if (bn_dims_of(x).M < 2)
        return tg_op_fail(n, TG_ERR_SHAPE,
                          "expected more than 1 value per channel when training, got input of shape %s",
                          TG_SHAPE_OF(x, sx));
    tg_shape_like(n, 0, dt, ndim, shape);
    return TG_OK;
}

/* Threads for batch norm: ranges of channels (grain 16: a row's channels
 * split at 64-byte multiples in f32). Each channel's sums run over the
 * batch in order on one thread, as in the serial loop. */
static int bn_threads(const tg_node *n, const bn_dims *d)
{
    int nt = tg_par_threads(n->ctx, (double)(d->M * d->C), TG_PAR_MIN_ELEMS);
    int64_t units = (d->C + 15) / 16;
    return nt < units ? nt : (int)(units > 0 ? units : 1);
}

/* Whether the f32 elementwise path is exact enough for a row or channel of
 * `len` values with rstd rs: rs and every coefficient finite as floats
 * (`coef`: their product of checks), and |x - mu| <= sqrt(len)/rs (from
 * the variance) within float range. Else the double formula: a constant
 * row with a tiny eps (rs beyond float), gamma near FLT_MAX, or values
 * near +-FLT_MAX stay finite where the double formula is. */
static inline int f32_ok(double rs, double len, int coef)
{
    float rf = (float)rs;
    return coef && isfinite(rf) && rf > 0 && sqrt(len) / rs < 1e38;
}

/* For (N, C) inputs (S == 1): acc[c] += EXPR for rows i + q, q = 0..7, of
 * each block of 8 rows below n8, each channel's sum in a register across
 * the block: rows still added in order (the bits of the row-by-row loop),
 * the accumulators loaded and stored once per 8 rows instead of every row. */
#define BN_ROWS8(n8, c0, c1, acc, EXPR)                                          \
    for (int64_t i = 0; i < (n8); i += 8)                                        \
        for (int64_t c = (c0); c < (c1); c++) {                                  \
            double a_ = (acc)[c];                                                \
            for (int q = 0; q < 8; q++)                                          \
                a_ += (EXPR);                                                    \
            (acc)[c] = a_;                                                       \
        }

static tg_status batch_norm_forward(tg_node *n)
{
    bn_dims d = bn_dims_of(n->in[0]);
    double *mean = tg_ctx_alloc(n->ctx, sizeof(double) * 2 * (size_t)(d.C ? d.C : 1), "batch_norm");
    if (!mean)
        return tg_ctx_status(n->ctx);
    double *rstd = mean + d.C, eps = n->p.f[0], inv_m = 1.0 / (double)d.M;
    tg_bn_stats *st = n->user;
    n->saved = mean;
    int nt = bn_threads(n, &d);
    float *cf = NULL;   /* f32 (N, C): per-channel coefficients, 3C floats */
    if (d.S == 1 && n->out->dtype == TG_F32 &&
        !(cf = tg_ctx_alloc(n->ctx, sizeof(float) * 3 * (size_t)d.C, "batch_norm")))
        return tg_ctx_status(n->ctx);
    /* NOTE: with S == 1 (x is (N, C)) the channel loop is the inner one, so
     * the per-channel sums vectorise across channels. */
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *g = n->in[1]->data, *b = n->in[2]->data;
        T *y = n->out->data;
        TG_PAR_FOR(nt, d.C, 16, c0, c1, {
        for (int64_t c = c0; c < c1; c++)
            mean[c] = rstd[c] = 0;
        int64_t i8 = d.S == 1 ? d.N / 8 * 8 : 0;   /* (N, C): BN_ROWS8 first */
        BN_ROWS8(i8, c0, c1, mean, (double)x[(i + q) * d.C + c]);
        for (int64_t i = i8; i < d.N; i++) {
            const T *xi = x + i * d.C * d.S;
            if (d.S == 1)
                for (int64_t c = c0; c < c1; c++)
                    mean[c] += (double)xi[c];
            else
                for (int64_t c = c0; c < c1; c++) {   /* 16 lanes: no add chain */
                    double acc;
                    TG_LANE_SUM(acc, s, 0, d.S, (double)xi[c * d.S + s]);
                    mean[c] += acc;
                }
        }
        for (int64_t c = c0; c < c1; c++)
            mean[c] *= inv_m;
        BN_ROWS8(i8, c0, c1, rstd, ((double)x[(i + q) * d.C + c] - mean[c]) * ((double)x[(i + q) * d.C + c] - mean[c]));
        for (int64_t i = i8; i < d.N; i++) {    /* second pass: no cancellation */
            const T *xi = x + i * d.C * d.S;
            if (d.S == 1)
                for (int64_t c = c0; c < c1; c++)
                    rstd[c] += ((double)xi[c] - mean[c]) * ((double)xi[c] - mean[c]);
            else
                for (int64_t c = c0; c < c1; c++) {
                    double acc, mu = mean[c];
                    TG_LANE_SUM(acc, s, 0, d.S, ((double)xi[c * d.S + s] - mu) * ((double)xi[c * d.S + s] - mu));
                    rstd[c] += acc;
                }
        }
        for (int64_t c = c0; c < c1; c++) {
            double var = rstd[c] * inv_m;
            if (st && st->mean)
                ((T *)st->mean)[c] = (T)mean[c];
            if (st && st->var)
                ((T *)st->var)[c] = (T)var;
            rstd[c] = 1.0 / sqrt(var + eps);
        }
        if (d.S == 1 && cf) {   /* f32 (N, C): y = ((x - hi) - lo) a + b in f32 */
            float *hi = cf, *lo = cf + d.C, *a = cf + 2 * d.C;
            int bad = 0;
            for (int64_t c = c0; c < c1; c++) {
                hi[c] = (float)mean[c];
                lo[c] = (float)(mean[c] - (double)hi[c]);
                a[c] = (float)(rstd[c] * (double)g[c]);
                if (!f32_ok(rstd[c], (double)d.M, isfinite(a[c]))) {
                    a[c] = NAN;   /* marks the channel for the double formula below */
                    bad = 1;
                }
            }
            for (int64_t i = 0; i < d.N; i++) {
                const float *xi = (const float *)x + i * d.C, *bf = (const float *)b;
                float *yi = (float *)y + i * d.C;
                for (int64_t c = c0; c < c1; c++)
                    yi[c] = ((xi[c] - hi[c]) - lo[c]) * a[c] + bf[c];
            }
            for (int64_t c = c0; bad && c < c1; c++)
                if (a[c] != a[c])
                    for (int64_t i = 0; i < d.N; i++)
                        y[i * d.C + c] = (T)(((double)x[i * d.C + c] - mean[c]) * (rstd[c] * (double)g[c]) + (double)b[c]);
        } else
        for (int64_t i = 0; i < d.N; i++) {
            const T *xi = x + i * d.C * d.S;
            T *yi = y + i * d.C * d.S;
            if (d.S == 1)
                for (int64_t c = c0; c < c1; c++)
                    yi[c] = (T)(((double)xi[c] - mean[c]) * (rstd[c] * (double)g[c]) + (double)b[c]);
            else
                for (int64_t c = c0; c < c1; c++) {
                    double mu = mean[c], a = rstd[c] * (double)g[c], bc = (double)b[c];
                    for (int64_t s = 0; s < d.S; s++)
                        yi[c * d.S + s] = (T)(((double)xi[c * d.S + s] - mu) * a + bc);
                }
        }
        });
    });
    return TG_OK;
}

static void batch_norm_backward(tg_node *n)
{
    bn_dims d = bn_dims_of(n->in[0]);
    const double *mean = n->saved, *rstd = mean + d.C;
    /* f32 (N, C) with dx: 5C float coefficients after the 3C doubles */
    int f32c = d.S == 1 && n->out->dtype == TG_F32 && n->in[0]->grad;
    size_t cn = (size_t)(d.C ? d.C : 1);
    double *sdy = tg_node_scratch(n, sizeof(double) * 3 * cn + (f32c ? sizeof(float) * 5 * cn : 0));
    if (!sdy)
        return;
    double *sdyx = sdy + d.C, *kc = sdy + 2 * d.C, m = (double)d.M;
    float *cf = f32c ? (float *)(sdy + 3 * cn) : NULL;
    int nt = bn_threads(n, &d);
    const int ow_x = tg_vjp_overwrites(n, 0), ow_g = tg_vjp_overwrites(n, 1), ow_b = tg_vjp_overwrites(n, 2);
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *g = n->in[1]->data, *dy = n->out->grad;
        T *dx = n->in[0]->grad, *dg = n->in[1]->grad, *db = n->in[2]->grad;
        TG_PAR_FOR(nt, d.C, 16, c0, c1, {
        for (int64_t c = c0; c < c1; c++)
            sdy[c] = sdyx[c] = 0;
        int64_t i8 = d.S == 1 ? d.N / 8 * 8 : 0;   /* (N, C): BN_ROWS8 first */
        BN_ROWS8(i8, c0, c1, sdy, (double)dy[(i + q) * d.C + c]);
        BN_ROWS8(i8, c0, c1, sdyx, (double)dy[(i + q) * d.C + c] * (((double)x[(i + q) * d.C + c] - mean[c]) * rstd[c]));
        for (int64_t i = i8; i < d.N; i++) {
            const T *xi = x + i * d.C * d.S, *dyi = dy + i * d.C * d.S;
            if (d.S == 1)
                for (int64_t c = c0; c < c1; c++) {
                    sdy[c] += (double)dyi[c];
                    sdyx[c] += (double)dyi[c] * (((double)xi[c] - mean[c]) * rstd[c]);
                }
            else
                for (int64_t c = c0; c < c1; c++) {
                    double a1, a2, mu = mean[c], r = rstd[c];
                    TG_LANE_SUM(a1, s, 0, d.S, (double)dyi[c * d.S + s]);
                    TG_LANE_SUM(a2, s, 0, d.S, (double)dyi[c * d.S + s] * (((double)xi[c * d.S + s] - mu) * r));
                    sdy[c] += a1;
                    sdyx[c] += a2;
                }
        }
        /* gamma and beta may be one tensor: each adds its own share */
        if (db)
            for (int64_t c = c0; c < c1; c++)
                db[c] = (ow_b ? (T)0 : db[c]) + (T)sdy[c];
        if (dg)
            for (int64_t c = c0; c < c1; c++)
                dg[c] = (ow_g ? (T)0 : dg[c]) + (T)sdyx[c];
        if (dx && cf) {   /* f32 (N, C): dx = A (dy - mdy) - ((x - hi) - lo) E in f32 */
            float *hi = cf, *lo = cf + d.C, *A = cf + 2 * d.C, *Bc = cf + 3 * d.C, *E = cf + 4 * d.C;
            int bad = 0;
            for (int64_t c = c0; c < c1; c++) {
                double k = (double)g[c] * rstd[c] / m;
                hi[c] = (float)mean[c];
                lo[c] = (float)(mean[c] - (double)hi[c]);
                A[c] = (float)(k * m);
                Bc[c] = (float)(sdy[c] / m);   /* the channel's mean dy */
                E[c] = (float)(k * sdyx[c] * rstd[c]);
                kc[c] = k;
                if (!f32_ok(rstd[c], m, isfinite(A[c]) && isfinite(Bc[c]) && isfinite(E[c]))) {
                    /* the f32 loop adds +0 here; the double formula below */
                    hi[c] = lo[c] = A[c] = Bc[c] = E[c] = 0;
                    kc[c] = NAN;
                    bad = 1;
                }
            }
            for (int64_t i = 0; i < d.N; i++) {
                const float *xi = (const float *)x + i * d.C, *dyi = (const float *)dy + i * d.C;
                float *dxi = (float *)dx + i * d.C;
                for (int64_t c = c0; c < c1; c++)
                    dxi[c] = (ow_x ? 0.0f : dxi[c]) + (A[c] * (dyi[c] - Bc[c]) - ((xi[c] - hi[c]) - lo[c]) * E[c]);
            }
            for (int64_t c = c0; bad && c < c1; c++)
                if (kc[c] != kc[c]) {
                    double k = (double)g[c] * rstd[c] / m;
                    for (int64_t i = 0; i < d.N; i++) {
                        int64_t e = i * d.C + c;
                        double xh = ((double)x[e] - mean[c]) * rstd[c];
                        dx[e] = dx[e] + (T)(k * (m * (double)dy[e] - sdy[c] - xh * sdyx[c]));
                    }
                }
        } else if (dx) {
            for (int64_t c = c0; c < c1; c++)
                kc[c] = (double)g[c] * rstd[c] / m;
            for (int64_t i = 0; i < d.N; i++) {
                const T *xi = x + i * d.C * d.S, *dyi = dy + i * d.C * d.S;
                T *dxi = dx + i * d.C * d.S;
                if (d.S == 1)
                    for (int64_t c = c0; c < c1; c++) {
                        double xh = ((double)xi[c] - mean[c]) * rstd[c];
                        dxi[c] = (ow_x ? (T)0 : dxi[c]) + (T)(kc[c] * (m * (double)dyi[c] - sdy[c] - xh * sdyx[c]));
                    }
                else
                    for (int64_t c = c0; c < c1; c++) {
                        double mu = mean[c], r = rstd[c], k = kc[c], s1 = sdy[c], s2 = sdyx[c];
                        for (int64_t s = 0; s < d.S; s++) {
                            double xh = ((double)xi[c * d.S + s] - mu) * r;
                            dxi[c * d.S + s] = (ow_x ? (T)0 : dxi[c * d.S + s]) +
                                               (T)(k * (m * (double)dyi[c * d.S + s] - s1 - xh * s2));
                        }
                    }
            }
        }
        });
    });
}

/* x of shape (N, C, spatial...) with every channel's std >= 0.5, gamma and
 * beta of C; also the benchmark's inputs at a user's problem size. */
static tg_status batch_norm_sample_shape(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape)
{
    int64_t per_channel = shape[0];
    for (int k = 2; k < ndim; k++)
        per_channel *= shape[k];
    if (ndim < 2 || per_channel < 2)   /* (one value a channel: no spread to give it) */
        return tg_op_fail(n, TG_ERR_SHAPE, "a problem size is N,C or N,C,spatial... with at least 2 values "
                          "a channel (got %d numbers)", ndim);
    tg_status s = sample_affine(n, dt, ndim, shape, shape[1]);
    if (s != TG_OK)
        return s;
    bn_dims d = bn_dims_of(n->in[0]);
    spread_groups(n, n->in[0], d.C, d.M, d.S, d.S, d.C * d.S, 0.5);
    n->p.f[0] = 1e-5;
    return TG_OK;
}

/* (4, 3); (6, 2, 3) with a spatial axis; (2, 4, 1): the smallest batch and a
 * size-1 axis. */
static tg_status batch_norm_sample(tg_node *n, tg_dtype dt, int v)
{
    static const struct { int ndim; int64_t shape[3]; } sh[] = {
        { 2, {4, 3} }, { 3, {6, 2, 3} }, { 3, {2, 4, 1} },
    };
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    return batch_norm_sample_shape(n, dt, sh[v].ndim, sh[v].shape);
}

static void batch_norm_cost(const tg_node *n, tg_op_cost *c)
{
    norm_cost(n, c, (double)n->in[0]->shape[1]);
}

const tg_op_def tg_op_batch_norm_def = {
    .name = "batch_norm", .n_in = 3, .overwrites = 7,
    .shape = batch_norm_shape, .forward = batch_norm_forward, .backward = batch_norm_backward,
    .sample = batch_norm_sample, .n_samples = 3, .cost = batch_norm_cost,
    .sample_shape = batch_norm_sample_shape,
};

tg_tensor *tg_batch_norm(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, double eps,
                         tg_bn_stats *stats)
{
    int64_t c = x && x->ndim >= 2 ? x->shape[1] : 1;
    tg_tensor *in[3] = { x, affine_or_const(ctx, gamma, x, c, 1.0), affine_or_const(ctx, beta, x, c, 0.0) };
    tg_op_params p;
    memset(&p, 0, sizeof p);
    p.f[0] = eps;
    return tg_apply(ctx, &tg_op_batch_norm_def, in, 3, &p, stats);
}

/* ---- layer_norm -------------------------------------------------------------
 * Over the last axis (size D) of x (ndim >= 1), for each of the R = numel/D
 * rows:   mu = mean(x_r), var = mean((x_r - mu)^2)  (biased),
 *         rstd = 1 / sqrt(var + eps),  xh = (x_r - mu) rstd
 *         y_r = gamma xh + beta            gamma, beta: (D); y: x's shape
 * p.f[0] = eps. Saved: mu, rstd (2R doubles).
 * VJP, with gdy = gamma dy:  dbeta += sum_r dy;  dgamma += sum_r dy xh;
 *     dx_r += rstd / D (D gdy - sum gdy - xh sum(gdy xh))
 * The wrapper passes a constant ones/zeros (D) tensor for a NULL gamma/beta,
 * so the descriptor always takes exactly three inputs. A constant row gives
 * y = beta (rstd = 1/sqrt(eps)); D == 1 is such a row.
 */
static tg_status layer_norm_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    const tg_tensor *x = n->in[0];
    if (x->ndim < 1)
        return tg_op_fail(n, TG_ERR_SHAPE, "x must have at least 1 dim, got a scalar");
    int last = x->ndim - 1;
    if ((s = chk_affine(n, 1, "gamma", x->shape[last], last)) != TG_OK ||
        (s = chk_affine(n, 2, "beta", x->shape[last], last)) != TG_OK || (s = chk_eps(n)) != TG_OK)
        return s;
    tg_shape_like(n, 0, dt, ndim, shape);
    return TG_OK;
}

/* Rows and row length of x. */
static void ln_dims(const tg_tensor *x, int64_t *rows, int64_t *dlen)
{
    *dlen = x->shape[x->ndim - 1];
    *rows = tg_shape_numel(x->ndim - 1, x->shape);
}

/* Threads for layer norm: ranges of rows (each row on one thread), and for
 * the gamma/beta sums over rows, ranges of columns (grain 16). */
static int ln_threads(const tg_node *n, int64_t R, int64_t D, int64_t units)
{
    int nt = tg_par_threads(n->ctx, (double)(R * D), TG_PAR_MIN_ELEMS);
    return nt < units ? nt : (int)(units > 0 ? units : 1);
}

static tg_status layer_norm_forward(tg_node *n)
{
    int64_t R, D;
    ln_dims(n->in[0], &R, &D);
    double *mean = tg_ctx_alloc(n->ctx, sizeof(double) * 2 * (size_t)(R ? R : 1), "layer_norm");
    if (!mean)
        return tg_ctx_status(n->ctx);
    double *rstd = mean + R, eps = n->p.f[0];
    n->saved = mean;
    if (D == 0)
        return TG_OK;
    int nt = ln_threads(n, R, D, R);
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *g = n->in[1]->data, *b = n->in[2]->data;
        T *y = n->out->data;
        TG_PAR_FOR(nt, R, 1, r0, r1, {
        for (int64_t r = r0; r < r1; r++) {
            const T *xr = x + r * D;
            T *yr = y + r * D;
#if defined(TG_NORM_ROW_F32)
            if (sizeof(T) == 4) {   /* norm_row.h */
                const float *xf = (const float *)xr;
                double mu = nr_sum(xf, D) / (double)D;
                double rs = 1.0 / sqrt(nr_ssd(xf, D, mu) / (double)D + eps);
                if (f32_ok(rs, (double)D, 1)) {   /* else the double loop below */
                    mean[r] = mu;
                    rstd[r] = rs;
                    nr_norm(xf, (const float *)g, (const float *)b, (float *)yr, D, mu, rs);
                    continue;
                }
            }
#endif
            /* over 16 lanes (ops_common.h): one running double sum was a
             * chain of dependent adds, 34.8 ms at 4096x4096 on 1 thread */
            double s, v;
            TG_LANE_SUM(s, j, 0, D, (double)xr[j]);
            double mu = s / (double)D;
            TG_LANE_SUM(v, j, 0, D, ((double)xr[j] - mu) * ((double)xr[j] - mu));
            double rs = 1.0 / sqrt(v / (double)D + eps);
            mean[r] = mu;
            rstd[r] = rs;
            for (int64_t j = 0; j < D; j++)
                yr[j] = (T)(((double)xr[j] - mu) * rs * (double)g[j] + (double)b[j]);
        }
        });
    });
    return TG_OK;
}

static void layer_norm_backward(tg_node *n)
{
    int64_t R, D;
    ln_dims(n->in[0], &R, &D);
    const int ow_x = tg_vjp_overwrites(n, 0), ow_g = tg_vjp_overwrites(n, 1), ow_b = tg_vjp_overwrites(n, 2);
    if (R == 0 || D == 0) {   /* no rows: fresh gamma/beta gradients are zeros */
        size_t es = tg_dtype_size(n->out->dtype);
        if (ow_g)
            memset(n->in[1]->grad, 0, (size_t)n->in[1]->numel * es);
        if (ow_b)
            memset(n->in[2]->grad, 0, (size_t)n->in[2]->numel * es);
        return;
    }
    const double *mean = n->saved, *rstd = mean + R;
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *g = n->in[1]->data, *dy = n->out->grad;
        T *dx = n->in[0]->grad, *dg = n->in[1]->grad, *db = n->in[2]->grad;
        if (dg || db) {   /* column sums in double, added once */
            double *sg = tg_node_scratch(n, sizeof(double) * 2 * (size_t)D);
            if (!sg)
                return;
            double *sb = sg + D;
            TG_PAR_FOR(ln_threads(n, R, D, (D + 15) / 16), D, 16, j0, j1, {
            for (int64_t j = j0; j < j1; j++)
                sg[j] = sb[j] = 0;
            /* 8 rows at a time, each column's sums in registers across
             * them: rows still added in order, the accumulators loaded
             * and stored once per 8 rows instead of every row (128x1024
             * f32: see the commit) */
            int64_t r = 0;
            for (; r + 8 <= R; r += 8)
                for (int64_t j = j0; j < j1; j++) {
                    double a = sg[j], c = sb[j];
                    for (int q = 0; q < 8; q++) {
                        double d = (double)dy[(r + q) * D + j];
                        a += d * (((double)x[(r + q) * D + j] - mean[r + q]) * rstd[r + q]);
                        c += d;
                    }
                    sg[j] = a;
                    sb[j] = c;
                }
            for (; r < R; r++) {
                const T *xr = x + r * D, *dyr = dy + r * D;
                double mu = mean[r], rs = rstd[r];
                for (int64_t j = j0; j < j1; j++) {
                    sg[j] += (double)dyr[j] * (((double)xr[j] - mu) * rs);
                    sb[j] += (double)dyr[j];
                }
            }
            });
            /* gamma, beta and (1-D) x may all be one tensor: separate += */
            if (db)
                for (int64_t j = 0; j < D; j++)
                    db[j] = (ow_b ? (T)0 : db[j]) + (T)sb[j];
            if (dg)
                for (int64_t j = 0; j < D; j++)
                    dg[j] = (ow_g ? (T)0 : dg[j]) + (T)sg[j];
        }
        if (dx)
            TG_PAR_FOR(ln_threads(n, R, D, R), R, 1, r0, r1, {
            for (int64_t r = r0; r < r1; r++) {
                const T *xr = x + r * D, *dyr = dy + r * D;
                T *dxr = dx + r * D;
                double mu = mean[r], rs = rstd[r], s1, s2, dd = (double)D;
#if defined(TG_NORM_ROW_F32)
                if (sizeof(T) == 4) {   /* norm_row.h */
                    const float *xf = (const float *)xr, *gf = (const float *)g, *dyf = (const float *)dyr;
                    if (f32_ok(rs, dd, 1)) {
                        nr_vjp_sums(xf, gf, dyf, D, mu, rs, &s1, &s2);
                        /* g dy overflowing float shows in the sums: then the
                         * double loop below (nothing written yet) */
                        if (isfinite((float)(s1 / dd)) && isfinite((float)(rs / dd * s2))) {
                            nr_vjp_dx(xf, gf, dyf, (float *)dxr, D, mu, rs, s1, s2, ow_x);
                            continue;
                        }
                    }
                }
#endif
                TG_LANE_SUM(s1, j, 0, D, (double)g[j] * (double)dyr[j]);
                TG_LANE_SUM(s2, j, 0, D, (double)g[j] * (double)dyr[j] * (((double)xr[j] - mu) * rs));
                double k = rs / dd;
                for (int64_t j = 0; j < D; j++) {
                    double gdy = (double)g[j] * (double)dyr[j], xh = ((double)xr[j] - mu) * rs;
                    dxr[j] = (ow_x ? (T)0 : dxr[j]) + (T)(k * (dd * gdy - s1 - xh * s2));
                }
            }
            });
    });
}

/* x of any shape normalised over its last axis (D), every row with std >=
 * 0.5, gamma and beta of D; also the benchmark's inputs at a user's
 * problem size. */
static tg_status layer_norm_sample_shape(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape)
{
    if (ndim < 1 || shape[ndim - 1] < 2)   /* (D = 1: no spread to give a row) */
        return tg_op_fail(n, TG_ERR_SHAPE, "a problem size is ...,D with D >= 2 (got %d numbers)", ndim);
    int64_t D = shape[ndim - 1];
    tg_status s = sample_affine(n, dt, ndim, shape, D);
    if (s != TG_OK)
        return s;
    spread_groups(n, n->in[0], n->in[0]->numel / D, D, D, D, 0, 0.5);
    n->p.f[0] = 1e-5;
    return TG_OK;
}

/* (3, 5); (2, 3, 4); (1, 6): a size-1 leading axis. */
static tg_status layer_norm_sample(tg_node *n, tg_dtype dt, int v)
{
    static const struct { int ndim; int64_t shape[3]; } sh[] = {
        { 2, {3, 5} }, { 3, {2, 3, 4} }, { 2, {1, 6} },
    };
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    return layer_norm_sample_shape(n, dt, sh[v].ndim, sh[v].shape);
}

static void layer_norm_cost(const tg_node *n, tg_op_cost *c)
{
    const tg_tensor *x = n->in[0];
    int64_t d = x->ndim ? x->shape[x->ndim - 1] : 1;
    norm_cost(n, c, d ? (double)(x->numel / d) : 0);
}

const tg_op_def tg_op_layer_norm_def = {
    .name = "layer_norm", .n_in = 3, .overwrites = 7,
    .shape = layer_norm_shape, .forward = layer_norm_forward, .backward = layer_norm_backward,
    .sample = layer_norm_sample, .n_samples = 3, .cost = layer_norm_cost,
    .sample_shape = layer_norm_sample_shape,
};

tg_tensor *tg_layer_norm(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, double eps)
{
    int64_t d = x && x->ndim >= 1 ? x->shape[x->ndim - 1] : 1;
    tg_tensor *in[3] = { x, affine_or_const(ctx, gamma, x, d, 1.0), affine_or_const(ctx, beta, x, d, 0.0) };
    tg_op_params p;
    memset(&p, 0, sizeof p);
    p.f[0] = eps;
    return tg_apply(ctx, &tg_op_layer_norm_def, in, 3, &p, NULL);
}
