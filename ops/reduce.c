/* reduce.c — reductions over any set of axes: sum, mean, var, max, min,
 * logsumexp. All six share one parameter layout, one shape function and one
 * "plan" that maps every output element to the input elements it reduces.
 * Sums accumulate in double, in a fixed order, for f32 and f64 alike.
 * Not here: softmax (softmax.c), arg-max indices, cumulative ops. */
#include "ops_common.h"

/* ---- shared: params, shape, the reduction plan ----------------------------
 * Params (all six ops):
 *   p.i[0]  bitmask of reduced axes, bit k = axis k (negative axes already
 *           normalised by the wrappers; 0 = reduce nothing, an identity)
 *   p.i[1]  keepdims: non-zero keeps reduced axes as size 1, otherwise
 *           they are removed (reducing every axis then gives ndim 0)
 *   p.i[2]  correction (var only): divisor is count - correction
 *
 * The plan. Size-1 dims are dropped and neighbouring dims of the same kind
 * (kept / reduced) merged, which leaves alternating groups. A trailing kept
 * group becomes `inner` (contiguous, the vectorised loop); the other kept
 * groups are `outer`, the reduced groups `R`. Output element (o, i), stored
 * at o * inner + i, reduces the inputs at
 *     obase[o] + roff[r] + i,   r = 0 .. R-1 (in this order)
 * For one reduced group the offsets are affine and the tables NULL: then
 * obase[o] = o * R * inner and roff[r] = r * inner. The common cases:
 *   last axis / all axes   inner == 1, contiguous slices of R elements
 *   axis 0 (column sums)   outer == 1, R rows of `inner` accumulated at once
 *   axes (0, 2) of 2x3x4   tables: obase = {0, 4, 8}, roff = {0..3, 12..15}
 */
typedef struct rplan {
    int64_t        outer, R, inner;
    const int64_t *obase;     /* NULL: o * R * inner                        */
    const int64_t *roff;      /* NULL: r * inner                            */
    double        *work;      /* 2 * inner doubles of scratch               */
    double        *mean;      /* var: the mean of each output element       */
} rplan;

#define PL_OBASE(pl, o) ((pl)->obase ? (pl)->obase[o] : (o) * (pl)->R * (pl)->inner)
#define PL_ROFF(pl, r)  ((pl)->roff ? (pl)->roff[r] : (r) * (pl)->inner)
#define PL_CONTIG(pl)   ((pl)->inner == 1 && !(pl)->roff)

static tg_status reduce_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    const tg_tensor *x = n->in[0];
    int64_t mask = n->p.i[0];
    if (mask < 0 || (mask >> x->ndim) != 0) {
        char b[TG_SHAPE_STR_MAX];
        return tg_op_fail(n, TG_ERR_ARG, "axis mask 0x%llx out of range for %d dims (shape %s)",
                          (unsigned long long)mask, x->ndim, TG_SHAPE_OF(x, b));
    }
    int nd = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (!((mask >> k) & 1))
            shape[nd++] = x->shape[k];
        else if (n->p.i[1])
            shape[nd++] = 1;
    }
    *dt = x->dtype;
    *ndim = nd;
    return TG_OK;
}

/* Offsets of every index of the groups of kind `red`, in row-major order. */
static void fill_offsets(int64_t *dst, int g, const int64_t *gsz, const int64_t *gstr,
                         const int *gred, int red)
{
    int64_t idx[TG_MAX_DIMS] = {0}, total = 1, off = 0;
    for (int j = 0; j < g; j++)
        if (gred[j] == red)
            total *= gsz[j];
    for (int64_t t = 0; t < total; t++) {
        dst[t] = off;
        for (int j = g - 1; j >= 0; j--) {
            if (gred[j] != red)
                continue;
            off += gstr[j];
            if (++idx[j] < gsz[j])
                break;
            off -= gstr[j] * gsz[j];
            idx[j] = 0;
        }
    }
}

/* Build the plan for n (forward) and keep it in n->saved for the VJP. */
static rplan *plan_new(tg_node *n, int with_mean)
{
    const tg_tensor *x = n->in[0];
    int64_t mask = n->p.i[0], n_out = n->out->numel;
    rplan *pl = tg_node_scratch(n, sizeof *pl);
    if (!pl)
        return NULL;
    memset(pl, 0, sizeof *pl);

    int64_t gsz[TG_MAX_DIMS], gstr[TG_MAX_DIMS], stride = 1, strides[TG_MAX_DIMS];
    int gred[TG_MAX_DIMS], g = 0;
    for (int k = x->ndim - 1; k >= 0; k--) {
        strides[k] = stride;
        stride *= x->shape[k];
    }
    for (int k = 0; k < x->ndim; k++) {
        int red = (int)((mask >> k) & 1);
        if (x->shape[k] == 1)
            continue;
        if (g > 0 && gred[g - 1] == red) {
            gsz[g - 1] *= x->shape[k];
            gstr[g - 1] = strides[k];
        } else {
            gsz[g] = x->shape[k];
            gstr[g] = strides[k];
            gred[g++] = red;
        }
    }

    pl->outer = 1;
    pl->R = 1;
    pl->inner = 1;
    if (x->numel == 0) {
        /* Nothing to read: either no output, or outputs over empty slices. */
        pl->outer = n_out;
        pl->R = 0;
    } else {
        if (g > 0 && !gred[g - 1])
            pl->inner = gsz[--g];
        for (int j = 0; j < g; j++) {
            if (gred[j])
                pl->R *= gsz[j];
            else
                pl->outer *= gsz[j];
        }
        /* Groups alternate and now end with a reduced one: up to two groups
         * are [kept] reduced, affine; more need offset tables. */
        if (g > 2) {
            int64_t *ob = tg_node_scratch(n, (size_t)pl->outer * sizeof *ob);
            int64_t *ro = tg_node_scratch(n, (size_t)pl->R * sizeof *ro);
            if (!ob || !ro)
                return NULL;
            fill_offsets(ob, g, gsz, gstr, gred, 0);
            fill_offsets(ro, g, gsz, gstr, gred, 1);
            pl->obase = ob;
            pl->roff = ro;
        }
    }
    pl->work = tg_node_scratch(n, 2 * (size_t)pl->inner * sizeof(double));
    if (!pl->work)
        return NULL;
    if (with_mean) {
        pl->mean = tg_node_scratch(n, (size_t)(n_out ? n_out : 1) * sizeof(double));
        if (!pl->mean)
            return NULL;
    }
    n->saved = pl;
    return pl;
}

/* Contiguous sums in double with eight partial sums combined in a fixed
 * order: deterministic, and the compiler can vectorise the main loop. */
#define DEF_DSUM(T, sfx)                                                        \
    static double dsum_##sfx(const T *x, int64_t len, double mu)               \
    {                                                                           \
        double a[8] = {0};                                                      \
        int64_t i = 0;                                                          \
        for (; i + 8 <= len; i += 8)                                            \
            for (int j = 0; j < 8; j++)                                         \
                a[j] += (double)x[i + j] - mu;                                  \
        for (; i < len; i++)                                                    \
            a[0] += (double)x[i] - mu;                                          \
        return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); \
    }                                                                           \
    static double dssd_##sfx(const T *x, int64_t len, double mu)               \
    {                                                                           \
        double a[8] = {0};                                                      \
        int64_t i = 0;                                                          \
        for (; i + 8 <= len; i += 8)                                            \
            for (int j = 0; j < 8; j++) {                                       \
                double d = (double)x[i + j] - mu;                               \
                a[j] += d * d;                                                  \
            }                                                                   \
        for (; i < len; i++) {                                                  \
            double d = (double)x[i] - mu;                                       \
            a[0] += d * d;                                                      \
        }                                                                       \
        return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); \
    }
DEF_DSUM(float, f32)
DEF_DSUM(double, f64)
/* sum of (x - mu), and of (x - mu)^2, over a contiguous slice */
#define DSUM(x, len, mu) _Generic((x), const float *: dsum_f32, const double *: dsum_f64)(x, len, mu)
#define DSSD(x, len, mu) _Generic((x), const float *: dssd_f32, const double *: dssd_f64)(x, len, mu)

/* acc[i] = sum over r of x[base + roff[r] + i], i < inner, in double. */
#define PL_SUM(pl, T, xo, acc) do {                                               \
        if (PL_CONTIG(pl)) {                                                    \
            (acc)[0] = DSUM(xo, (pl)->R, 0.0);                                  \
        } else {                                                                \
            for (int64_t i_ = 0; i_ < (pl)->inner; i_++)                        \
                (acc)[i_] = 0;                                                  \
            for (int64_t r_ = 0; r_ < (pl)->R; r_++) {                          \
                const T *row_ = (xo) + PL_ROFF(pl, r_);                        \
                for (int64_t i_ = 0; i_ < (pl)->inner; i_++)                    \
                    (acc)[i_] += (double)row_[i_];                              \
            }                                                                   \
        }                                                                       \
    } while (0)

/* Reduce cost: `f` flops per input element forward, `b` backward. */
static void reduce_cost(const tg_node *n, tg_op_cost *c, double f, double b)
{
    double e = (double)n->in[0]->numel, o = (double)n->out->numel;
    double w = (double)tg_dtype_size(n->out->dtype);
    c->fwd_flops = f * e;
    c->fwd_bytes = (e + o) * w;
    c->bwd_flops = b * e;
    c->bwd_bytes = (o + 2 * e) * w + (b > 1 ? e * w : 0);  /* dy, dx rw (+ x) */
}

/* Samples shared by the family: 0: 2x3x4 over axis 1; 1: 2x3x4 over axes
 * (0, 2) keeping dims; 2: 2x3x4 over all axes to a scalar; 3: 3x1x4 over
 * all axes keeping dims. `distinct` draws values at least 0.1 apart (no
 * ties for max/min). var alternates correction 0 and 1. */
static tg_status reduce_sample(tg_node *n, tg_dtype dt, int v, int distinct)
{
    static const int64_t shapes[4][3] = { {2, 3, 4}, {2, 3, 4}, {2, 3, 4}, {3, 1, 4} };
    static const int64_t masks[4] = { 2, 5, 7, 7 };
    static const int64_t keep[4] = { 0, 1, 0, 1 };
    if (v < 0 || v > 3)
        return TG_ERR_ARG;
    n->n_in = 1;
    n->p.i[0] = masks[v];
    n->p.i[1] = keep[v];
    n->p.i[2] = v & 1;
    if (!distinct) {
        n->in[0] = tg_sample_uniform(n, dt, 3, shapes[v], -2, 2);
        return n->in[0] ? TG_OK : tg_ctx_status(n->ctx);
    }
    /* A random permutation of -1.2, -1.1, ... (steps of 0.1 plus a jitter
     * below 0.02): distinct, well separated values. */
    tg_tensor *x = tg_tensor_new(n->ctx, dt, 3, shapes[v]);
    if (!x)
        return tg_ctx_status(n->ctx);
    tg_rng *rng = tg_ctx_rng(n->ctx);
    int64_t len = x->numel;
    for (int64_t i = 0; i < len; i++)
        tg_tensor_set(x, i, 0.1 * (double)(i - len / 2) + 0.02 * tg_rng_uniform(rng));
    for (int64_t i = len - 1; i > 0; i--) {
        int64_t j = (int64_t)tg_rng_below(rng, (uint64_t)i + 1);
        double a = tg_tensor_get(x, i);
        tg_tensor_set(x, i, tg_tensor_get(x, j));
        tg_tensor_set(x, j, a);
    }
    n->in[0] = x;
    return TG_OK;
}

/* The wrappers' common part: validate and normalise the axis list, then
 * apply. Errors name the op: "sum: axis 3 out of range for 3 dims". */
static tg_tensor *reduce_apply(tg_ctx *ctx, const tg_op_def *def, tg_tensor *x, const int *axes,
                               int n_axes, int keepdims, int correction)
{
    tg_op_params p;
    memset(&p, 0, sizeof p);
    if (ctx && tg_ctx_status(ctx) == TG_OK && x) {
        int nd = x->ndim, lim = nd ? nd : 1;   /* a scalar accepts axis 0 or -1 */
        int64_t seen = 0;
        if (n_axes < 0 || (n_axes > 0 && !axes))
            return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: bad axis list (%d axes%s)", def->name, n_axes,
                               axes ? "" : ", NULL pointer"), NULL;
        for (int j = 0; j < n_axes; j++) {
            int a = axes[j];
            if (a < -lim || a >= lim)
                return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: axis %d out of range for %d dims",
                                   def->name, a, nd), NULL;
            int k = a < 0 ? a + lim : a;
            if ((seen >> k) & 1)
                return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: axis %d repeated in the axis list",
                                   def->name, a), NULL;
            seen |= (int64_t)1 << k;
        }
        p.i[0] = n_axes == 0 ? ((int64_t)1 << nd) - 1 : (nd ? seen : 0);
    }
    p.i[1] = keepdims != 0;
    p.i[2] = correction;
    return tg_apply(ctx, def, &x, 1, &p, NULL);
}

/* ---- sum / mean -------------------------------------------------------------
 * sum:  y[o] = sum_{r} x[o, r]         mean: y[o] = sum_{r} x[o, r] / R
 * x: any shape; y: x's shape without (or with size 1 at) the reduced axes;
 * R = number of elements reduced into each output (0 over an empty axis:
 * sum 0, mean NaN).
 * VJP: dx[o, r] += dy[o]   (mean: dy[o] / R) — a broadcast back.
 */
static tg_status sum_mean_forward(tg_node *n, int mean)
{
    rplan *pl = plan_new(n, 0);
    if (!pl)
        return tg_ctx_status(n->ctx);
    double *acc = pl->work, R = (double)pl->R;
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        T *y = n->out->data;
        for (int64_t o = 0; o < pl->outer; o++) {
            const T *xo = x + PL_OBASE(pl, o);
            PL_SUM(pl, T, xo, acc);
            T *yo = y + o * pl->inner;
            for (int64_t i = 0; i < pl->inner; i++)
                yo[i] = (T)(mean ? acc[i] / R : acc[i]);
        }
    });
    return TG_OK;
}

static void sum_mean_backward(tg_node *n, int mean)
{
    const rplan *pl = n->saved;
    if (!n->in[0]->grad)
        return;
    TG_DISPATCH(n->out->dtype, T, {
        const T *dy = n->out->grad;
        T *dx = n->in[0]->grad;
        for (int64_t o = 0; o < pl->outer; o++) {
            T *dxo = dx + PL_OBASE(pl, o);
            const T *g = dy + o * pl->inner;
            double *gs = pl->work;
            for (int64_t i = 0; i < pl->inner; i++)
                gs[i] = mean ? (double)g[i] / (double)pl->R : (double)g[i];
            for (int64_t r = 0; r < pl->R; r++) {
                T *row = dxo + PL_ROFF(pl, r);
                for (int64_t i = 0; i < pl->inner; i++)
                    row[i] += (T)gs[i];
            }
        }
    });
}

static tg_status sum_forward(tg_node *n) { return sum_mean_forward(n, 0); }
static void sum_backward(tg_node *n) { sum_mean_backward(n, 0); }
static tg_status sum_sample(tg_node *n, tg_dtype dt, int v) { return reduce_sample(n, dt, v, 0); }
static void sum_cost(const tg_node *n, tg_op_cost *c) { reduce_cost(n, c, 1, 1); }

const tg_op_def tg_op_sum_def = {
    .name = "sum", .n_in = 1,
    .shape = reduce_shape, .forward = sum_forward, .backward = sum_backward,
    .sample = sum_sample, .n_samples = 4, .cost = sum_cost,
};

tg_tensor *tg_sum(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims)
{
    return reduce_apply(ctx, &tg_op_sum_def, x, axes, n_axes, keepdims, 0);
}

tg_tensor *tg_sum_all(tg_ctx *ctx, tg_tensor *x)
{
    return reduce_apply(ctx, &tg_op_sum_def, x, NULL, 0, 0, 0);
}

static tg_status mean_forward(tg_node *n) { return sum_mean_forward(n, 1); }
static void mean_backward(tg_node *n) { sum_mean_backward(n, 1); }
static void mean_cost(const tg_node *n, tg_op_cost *c) { reduce_cost(n, c, 1, 1); }

const tg_op_def tg_op_mean_def = {
    .name = "mean", .n_in = 1,
    .shape = reduce_shape, .forward = mean_forward, .backward = mean_backward,
    .sample = sum_sample, .n_samples = 4, .cost = mean_cost,
};

tg_tensor *tg_mean(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims)
{
    return reduce_apply(ctx, &tg_op_mean_def, x, axes, n_axes, keepdims, 0);
}

tg_tensor *tg_mean_all(tg_ctx *ctx, tg_tensor *x)
{
    return reduce_apply(ctx, &tg_op_mean_def, x, NULL, 0, 0, 0);
}

/* ---- var ----------------------------------------------------------------------
 * mu[o] = sum_r x[o, r] / R;  y[o] = sum_r (x[o, r] - mu[o])^2 / max(0, R - c)
 * c = p.i[2], the correction (0 population, 1 sample: torch.var(correction=)).
 * Two passes in double (the mean, then squared deviations); the means are
 * saved for the VJP.
 * VJP: dx[o, r] += dy[o] * 2 (x[o, r] - mu[o]) / (R - c).
 * NOTE: when R - c <= 0 this follows PyTorch: y = ss / 0 (inf, or NaN when
 * all deviations are 0) and dx += dy * (x == mu ? NaN : inf).
 */
static tg_status var_forward(tg_node *n)
{
    rplan *pl = plan_new(n, 1);
    if (!pl)
        return tg_ctx_status(n->ctx);
    double *acc = pl->work, R = (double)pl->R, dof = R - (double)n->p.i[2];
    double div = dof > 0 ? dof : 0;
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        T *y = n->out->data;
        for (int64_t o = 0; o < pl->outer; o++) {
            const T *xo = x + PL_OBASE(pl, o);
            double *mu = pl->mean + o * pl->inner;
            PL_SUM(pl, T, xo, acc);
            for (int64_t i = 0; i < pl->inner; i++)
                mu[i] = acc[i] / R;
            if (PL_CONTIG(pl)) {
                acc[0] = DSSD(xo, pl->R, mu[0]);
            } else {
                for (int64_t i = 0; i < pl->inner; i++)
                    acc[i] = 0;
                for (int64_t r = 0; r < pl->R; r++) {
                    const T *row = xo + PL_ROFF(pl, r);
                    for (int64_t i = 0; i < pl->inner; i++) {
                        double d = (double)row[i] - mu[i];
                        acc[i] += d * d;
                    }
                }
            }
            T *yo = y + o * pl->inner;
            for (int64_t i = 0; i < pl->inner; i++)
                yo[i] = (T)(acc[i] / div);
        }
    });
    return TG_OK;
}

static void var_backward(tg_node *n)
{
    const rplan *pl = n->saved;
    if (!n->in[0]->grad)
        return;
    double dof = (double)pl->R - (double)n->p.i[2];
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *dy = n->out->grad;
        T *dx = n->in[0]->grad;
        for (int64_t o = 0; o < pl->outer; o++) {
            int64_t base = PL_OBASE(pl, o);
            const T *g = dy + o * pl->inner;
            const double *mu = pl->mean + o * pl->inner;
            for (int64_t r = 0; r < pl->R; r++) {
                int64_t off = base + PL_ROFF(pl, r);
                for (int64_t i = 0; i < pl->inner; i++) {
                    double d = (double)x[off + i] - mu[i];
                    double f = dof > 0 ? 2 * d / dof : (d == 0 ? NAN : INFINITY);
                    dx[off + i] += (T)((double)g[i] * f);
                }
            }
        }
    });
}

static tg_status var_sample(tg_node *n, tg_dtype dt, int v) { return reduce_sample(n, dt, v, 0); }
static void var_cost(const tg_node *n, tg_op_cost *c) { reduce_cost(n, c, 4, 4); }

const tg_op_def tg_op_var_def = {
    .name = "var", .n_in = 1,
    .shape = reduce_shape, .forward = var_forward, .backward = var_backward,
    .sample = var_sample, .n_samples = 4, .cost = var_cost,
};

tg_tensor *tg_var(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims, int correction)
{
    return reduce_apply(ctx, &tg_op_var_def, x, axes, n_axes, keepdims, correction);
}

/* ---- max / min ----------------------------------------------------------------
 * max: y[o] = max_r x[o, r]     min: y[o] = min_r x[o, r]
 * A NaN in a slice makes its result NaN. Reducing over an empty axis is an
 * error (there is no identity element).
 * VJP: dy[o] goes to the extreme element; on ties it is split evenly among
 * the k tied elements, dx += dy[o] / k each (PyTorch's amax/amin). A NaN
 * slice sends NaN to every element of it (as PyTorch).
 */
static tg_status extreme_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s = reduce_shape(n, dt, ndim, shape);
    if (s != TG_OK)
        return s;
    const tg_tensor *x = n->in[0];
    for (int k = 0; k < x->ndim; k++)
        if (((n->p.i[0] >> k) & 1) && x->shape[k] == 0) {
            char b[TG_SHAPE_STR_MAX];
            return tg_op_fail(n, TG_ERR_SHAPE, "cannot reduce over empty axis %d (shape %s)", k,
                              TG_SHAPE_OF(x, b));
        }
    return TG_OK;
}

static tg_status extreme_forward(tg_node *n, int is_max)
{
    rplan *pl = plan_new(n, 0);
    if (!pl)
        return tg_ctx_status(n->ctx);
    double *m = pl->work, init = is_max ? -INFINITY : INFINITY;
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        T *y = n->out->data;
        for (int64_t o = 0; o < pl->outer; o++) {
            const T *xo = x + PL_OBASE(pl, o);
            for (int64_t i = 0; i < pl->inner; i++)
                m[i] = init;
            for (int64_t r = 0; r < pl->R; r++) {
                const T *row = xo + PL_ROFF(pl, r);
                for (int64_t i = 0; i < pl->inner; i++) {
                    double v = (double)row[i];
                    if (v != v || (is_max ? v > m[i] : v < m[i]))
                        m[i] = v;       /* once NaN, no comparison replaces it */
                }
            }
            T *yo = y + o * pl->inner;
            for (int64_t i = 0; i < pl->inner; i++)
                yo[i] = (T)m[i];
        }
    });
    return TG_OK;
}

static void extreme_backward(tg_node *n)
{
    const rplan *pl = n->saved;
    if (!n->in[0]->grad)
        return;
    double *cnt = pl->work, *w = pl->work + pl->inner;
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *y = n->out->data, *dy = n->out->grad;
        T *dx = n->in[0]->grad;
        for (int64_t o = 0; o < pl->outer; o++) {
            int64_t base = PL_OBASE(pl, o);
            const T *yo = y + o * pl->inner, *g = dy + o * pl->inner;
            for (int64_t i = 0; i < pl->inner; i++)
                cnt[i] = 0;
            for (int64_t r = 0; r < pl->R; r++) {
                const T *row = x + base + PL_ROFF(pl, r);
                for (int64_t i = 0; i < pl->inner; i++)
                    cnt[i] += row[i] == yo[i];
            }
            for (int64_t i = 0; i < pl->inner; i++)
                w[i] = cnt[i] > 0 ? (double)g[i] / cnt[i] : NAN;
            for (int64_t r = 0; r < pl->R; r++) {
                int64_t off = base + PL_ROFF(pl, r);
                for (int64_t i = 0; i < pl->inner; i++)
                    if (x[off + i] == yo[i] || cnt[i] == 0)
                        dx[off + i] += (T)w[i];
            }
        }
    });
}

static tg_status extreme_sample(tg_node *n, tg_dtype dt, int v) { return reduce_sample(n, dt, v, 1); }
static void extreme_cost(const tg_node *n, tg_op_cost *c) { reduce_cost(n, c, 1, 2); }

static tg_status max_forward(tg_node *n) { return extreme_forward(n, 1); }

const tg_op_def tg_op_max_def = {
    .name = "max", .n_in = 1,
    .shape = extreme_shape, .forward = max_forward, .backward = extreme_backward,
    .sample = extreme_sample, .n_samples = 4, .cost = extreme_cost,
};

tg_tensor *tg_max(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims)
{
    return reduce_apply(ctx, &tg_op_max_def, x, axes, n_axes, keepdims, 0);
}

static tg_status min_forward(tg_node *n) { return extreme_forward(n, 0); }

const tg_op_def tg_op_min_def = {
    .name = "min", .n_in = 1,
    .shape = extreme_shape, .forward = min_forward, .backward = extreme_backward,
    .sample = extreme_sample, .n_samples = 4, .cost = extreme_cost,
};

tg_tensor *tg_min(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims)
{
    return reduce_apply(ctx, &tg_op_min_def, x, axes, n_axes, keepdims, 0);
}

/* ---- logsumexp ----------------------------------------------------------------
 * y[o] = m + log(sum_r exp(x[o, r] - m)),  m = max_r x[o, r]  (stable; the sum
 * is in double). When m is infinite the shift is 0 instead (PyTorch's rule):
 * an all -inf slice (and an empty one) gives -inf, never NaN; a +inf gives
 * +inf.
 * VJP: dx[o, r] += dy[o] * exp(x[o, r] - y[o])   (the softmax; reuses y).
 * NOTE: an all -inf slice (y = -inf) passes no gradient (PyTorch gives NaN).
 */
static tg_status logsumexp_forward(tg_node *n)
{
    rplan *pl = plan_new(n, 0);
    if (!pl)
        return tg_ctx_status(n->ctx);
    double *m = pl->work, *s = pl->work + pl->inner;
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        T *y = n->out->data;
        for (int64_t o = 0; o < pl->outer; o++) {
            const T *xo = x + PL_OBASE(pl, o);
            for (int64_t i = 0; i < pl->inner; i++) {
                m[i] = -INFINITY;
                s[i] = 0;
            }
            for (int64_t r = 0; r < pl->R; r++) {
                const T *row = xo + PL_ROFF(pl, r);
                for (int64_t i = 0; i < pl->inner; i++) {
                    double v = (double)row[i];
                    if (v != v || v > m[i])
                        m[i] = v;
                }
            }
            for (int64_t i = 0; i < pl->inner; i++)
                if (isinf(m[i]))
                    m[i] = 0;
            for (int64_t r = 0; r < pl->R; r++) {
                const T *row = xo + PL_ROFF(pl, r);
                for (int64_t i = 0; i < pl->inner; i++)
                    s[i] += exp((double)row[i] - m[i]);
            }
            T *yo = y + o * pl->inner;
            for (int64_t i = 0; i < pl->inner; i++)
                yo[i] = (T)(log(s[i]) + m[i]);
        }
    });
    return TG_OK;
}

static void logsumexp_backward(tg_node *n)
{
    const rplan *pl = n->saved;
    if (!n->in[0]->grad)
        return;
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *y = n->out->data, *dy = n->out->grad;
        T *dx = n->in[0]->grad;
        for (int64_t o = 0; o < pl->outer; o++) {
            int64_t base = PL_OBASE(pl, o);
            const T *yo = y + o * pl->inner, *g = dy + o * pl->inner;
            for (int64_t r = 0; r < pl->R; r++) {
                int64_t off = base + PL_ROFF(pl, r);
                for (int64_t i = 0; i < pl->inner; i++)
                    if (yo[i] != -INFINITY)
                        dx[off + i] += (T)((double)g[i] * exp((double)x[off + i] - (double)yo[i]));
            }
        }
    });
}

static tg_status logsumexp_sample(tg_node *n, tg_dtype dt, int v) { return reduce_sample(n, dt, v, 0); }
static void logsumexp_cost(const tg_node *n, tg_op_cost *c) { reduce_cost(n, c, 12, 12); }

const tg_op_def tg_op_logsumexp_def = {
    .name = "logsumexp", .n_in = 1,
    .shape = reduce_shape, .forward = logsumexp_forward, .backward = logsumexp_backward,
    .sample = logsumexp_sample, .n_samples = 4, .cost = logsumexp_cost,
};

tg_tensor *tg_logsumexp(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims)
{
    return reduce_apply(ctx, &tg_op_logsumexp_def, x, axes, n_axes, keepdims, 0);
}
