/* reduce.c — reductions over any set of axes: sum, mean, var, max, min,
 * logsumexp. All six share one parameter layout, one shape function and one
 * "plan" that maps every output element to the input elements it reduces.
 * Sums accumulate in double, in a fixed order, for f32 and f64 alike.
 * Not here: softmax (softmax.c), arg-max indices, cumulative ops. */
#include "ops_common.h"
#include "reduce_run.h"
#include "smx_row.h"
#include "vmath.h"

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
 * group becomes `inner` (contiguous: the vectorised loop), the last reduced
 * group the `run`, the other kept groups `outer` and the other reduced
 * groups the table of `n_tab` offsets. Output element (o, i), stored at
 * o * inner + i, reduces the R = n_tab * run inputs at
 *     obase[o] + toff[t] + j * inner + i,   t < n_tab, j < run (this order)
 * With at most [kept] reduced [kept] the offsets are affine and the tables
 * NULL: obase[o] = o * R * inner, n_tab = 1, toff[0] = 0. The common cases:
 *   last axis / all axes   inner == 1: contiguous slices of R elements
 *   axis 0 (column sums)   outer == 1: R rows of `inner` accumulated at once
 *   axes (0, 2) of 2x3x4   obase = {0, 4, 8}, toff = {0, 12}, run = 4
 */
typedef struct rplan {
    int64_t        outer, inner, n_tab, run, R;
    const int64_t *obase;     /* NULL: o * R * inner                        */
    const int64_t *toff;      /* NULL: n_tab == 1, offset 0                 */
    double        *mean;      /* var: each output's mean; logsumexp: its y in double */
} rplan;

#define PL_OBASE(pl, o) ((pl)->obase ? (pl)->obase[o] : (o) * (pl)->R * (pl)->inner)
#define PL_TOFF(pl, t)  ((pl)->toff ? (pl)->toff[t] : 0)

/* Run the statements `...` on the rows of one output block: `row` points at
 * `inner` consecutive inputs, one per output element of the block. */
#define PL_ROWS(pl, T, xo, row, ...)                                            \
    for (int64_t t_ = 0; t_ < (pl)->n_tab; t_++)                                \
        for (int64_t j_ = 0; j_ < (pl)->run; j_++) {                            \
            const T *row = (xo) + PL_TOFF(pl, t_) + j_ * (pl)->inner;           \
            __VA_ARGS__                                                         \
        }

/* Run the statements `...` for every input element: xi is its flat index,
 * yi that of the output element it reduces into. Used by the VJPs. */
#define PL_FOREACH(pl, ...)                                                     \
    for (int64_t o_ = 0; o_ < (pl)->outer; o_++)                                \
        for (int64_t t_ = 0; t_ < (pl)->n_tab; t_++) {                          \
            const int64_t rb_ = PL_OBASE(pl, o_) + PL_TOFF(pl, t_);             \
            if ((pl)->inner == 1) {                                             \
                const int64_t yi = o_;                                          \
                for (int64_t xi = rb_; xi < rb_ + (pl)->run; xi++) {            \
                    __VA_ARGS__                                                 \
                }                                                               \
            } else {                                                            \
                for (int64_t j_ = 0; j_ < (pl)->run; j_++)                      \
                    for (int64_t i_ = 0; i_ < (pl)->inner; i_++) {              \
                        const int64_t xi = rb_ + j_ * (pl)->inner + i_;         \
                        const int64_t yi = o_ * (pl)->inner + i_;               \
                        __VA_ARGS__                                             \
                    }                                                           \
            }                                                                   \
        }

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

    pl->outer = pl->inner = pl->n_tab = pl->run = 1;
    if (x->numel == 0) {
        /* Nothing to read: either no output, or outputs over empty slices. */
        pl->outer = n_out;
        pl->run = 0;
    } else {
        if (g > 0 && !gred[g - 1])
            pl->inner = gsz[--g];
        if (g > 0) {
            pl->run = gsz[--g];             /* groups alternate: this one is reduced */
            for (int j = 0; j < g; j++) {
                if (gred[j])
                    pl->n_tab *= gsz[j];
                else
                    pl->outer *= gsz[j];
            }
        }
        if (g > 1) {                        /* not [kept] reduced [kept]: tables */
            int64_t *ob = tg_node_scratch(n, (size_t)pl->outer * sizeof *ob);
            int64_t *to = tg_node_scratch(n, (size_t)pl->n_tab * sizeof *to);
            if (!ob || !to)
                return NULL;
            fill_offsets(ob, g, gsz, gstr, gred, 0);
            fill_offsets(to, g, gsz, gstr, gred, 1);
            pl->obase = ob;
            pl->toff = to;
        }
    }
    pl->R = pl->n_tab * pl->run;
    if (with_mean) {
        pl->mean = tg_node_scratch(n, (size_t)(n_out ? n_out : 1) * sizeof(double));
        if (!pl->mean)
            return NULL;
    }
    n->saved = pl;
    return pl;
}

/* Scratch of k doubles per output element of a block (forward) or per
 * output element (VJP); NULL with the context's error set. */
static double *scratch(tg_node *n, int64_t count)
{
    return tg_node_scratch(n, (size_t)(count > 0 ? count : 1) * sizeof(double));
}


/* Combine two partial extremes, NaN winning. */
static inline double ext_merge(double m, double v, int is_max)
{
    return (v != v || (is_max ? v > m : v < m)) ? v : m;
}

/* acc[i] = sum over the block's rows of (row[i] - mu), in double; inner == 1
 * sums each contiguous run with the 8-lane kernel. */
#define PL_SUM(pl, T, xo, acc) do {                                            \
        if ((pl)->inner == 1) {                                                 \
            double s_ = 0;                                                      \
            for (int64_t t_ = 0; t_ < (pl)->n_tab; t_++)                        \
                s_ += RUN_KERNEL(dsum, xo)((xo) + PL_TOFF(pl, t_), (pl)->run, 0.0); \
            (acc)[0] = s_;                                                      \
        } else {                                                                \
            for (int64_t i_ = 0; i_ < (pl)->inner; i_++)                        \
                (acc)[i_] = 0;                                                  \
            PL_ROWS(pl, T, xo, row_,                                            \
                    for (int64_t i_ = 0; i_ < (pl)->inner; i_++)                \
                        (acc)[i_] += (double)row_[i_];)                         \
        }                                                                       \
    } while (0)

/* m[i] = the max (is_max) or min of the block's inputs of output i, NaN if
 * one is NaN; inner == 1 takes each contiguous run with tg_row_ext. */
#define PL_EXTREME(pl, T, xo, m, is_max) do {                                  \
        for (int64_t i_ = 0; i_ < (pl)->inner; i_++)                            \
            (m)[i_] = (is_max) ? -INFINITY : INFINITY;                          \
        if ((pl)->inner == 1) {                                                 \
            for (int64_t t_ = 0; t_ < (pl)->n_tab; t_++) {                      \
                double e_ = tg_row_ext((xo) + PL_TOFF(pl, t_), (pl)->run, is_max); \
                (m)[0] = ext_merge((m)[0], e_, is_max);                         \
            }                                                                   \
        } else {                                                                \
            PL_ROWS(pl, T, xo, row_,                                            \
                    for (int64_t i_ = 0; i_ < (pl)->inner; i_++)                \
                        (m)[i_] = ext_merge((m)[i_], (double)row_[i_], is_max);) \
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
 * all axes keeping dims. Values uniform in [-2, 2), except SAMPLE_DISTINCT:
 * values at least 0.08 apart (no ties for max/min). SAMPLE_VAR alternates
 * correction 0 (even variants) and 1 (odd). */
enum { SAMPLE_PLAIN, SAMPLE_DISTINCT, SAMPLE_VAR };

static tg_status reduce_sample(tg_node *n, tg_dtype dt, int v, int kind)
{
    static const int64_t shapes[4][3] = { {2, 3, 4}, {2, 3, 4}, {2, 3, 4}, {3, 1, 4} };
    static const int64_t masks[4] = { 2, 5, 7, 7 };
    static const int64_t keep[4] = { 0, 1, 0, 1 };
    if (v < 0 || v > 3)
        return TG_ERR_ARG;
    n->n_in = 1;
    n->p.i[0] = masks[v];
    n->p.i[1] = keep[v];
    n->p.i[2] = kind == SAMPLE_VAR ? (v & 1) : 0;
    if (kind != SAMPLE_DISTINCT) {
        n->in[0] = tg_sample_uniform(n, dt, 3, shapes[v], -2, 2);
        return n->in[0] ? TG_OK : tg_ctx_status(n->ctx);
    }
    /* A random permutation of -1.2, -1.1, ... (steps of 0.1, each plus a
     * jitter below 0.02): distinct, well separated values. */
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
/* A run longer than SUM_CHUNK elements is summed in fixed chunks of that
 * size (each with the 8-lane kernel), the chunks spread over the context's
 * threads, their sums added in chunk order: the same bits for any thread
 * count. Shorter runs are one chunk, as before. */
#define SUM_CHUNK ((int64_t)1 << 16)

static double chunked_run_sum(tg_node *n, const void *x, tg_dtype dt, int64_t len, double *part)
{
    int64_t nc = (len + SUM_CHUNK - 1) / SUM_CHUNK;
    int nt = tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS);
    TG_PAR_FOR(nt, nc, 1, lo, hi, {
        for (int64_t c = lo; c < hi; c++) {
            int64_t b = c * SUM_CHUNK, e = b + SUM_CHUNK < len ? b + SUM_CHUNK : len;
            part[c] = dt == TG_F32 ? dsum_f32((const float *)x + b, e - b, 0.0)
                                   : dsum_f64((const double *)x + b, e - b, 0.0);
        }
    });
    double s = 0;
    for (int64_t c = 0; c < nc; c++)
        s += part[c];
    return s;
}

static tg_status sum_mean_forward(tg_node *n, int mean)
{
    rplan *pl = plan_new(n, 0);
    if (!pl)
        return tg_ctx_status(n->ctx);
    double R = (double)pl->R;
    if (pl->inner == 1) {
        /* Contiguous runs, one output each: the rows over the threads, or,
         * for one long run per output, its chunks (chunked_run_sum). */
        int chunked = pl->n_tab == 1 && pl->run > SUM_CHUNK;
        double *part = chunked ? scratch(n, (pl->run + SUM_CHUNK - 1) / SUM_CHUNK) : NULL;
        if (chunked && !part)
            return tg_ctx_status(n->ctx);
        int nt = chunked ? 1 : tg_par_threads(n->ctx, (double)pl->outer * R, TG_PAR_MIN_ELEMS);
        TG_DISPATCH(n->out->dtype, T, {
            const T *x = n->in[0]->data;
            T *y = n->out->data;
            TG_PAR_FOR(nt, pl->outer, 1, lo, hi, {
                for (int64_t o = lo; o < hi; o++) {
                    double a[1];
                    if (chunked)
                        a[0] = chunked_run_sum(n, x + PL_OBASE(pl, o), n->out->dtype, pl->run, part);
                    else
                        PL_SUM(pl, T, x + PL_OBASE(pl, o), a);
                    y[o] = (T)(mean ? a[0] / R : a[0]);
                }
            });
        });
        return TG_OK;
    }
    double *acc = scratch(n, pl->inner);
    if (!acc)
        return tg_ctx_status(n->ctx);
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
    int64_t n_out = n->out->numel;
    const int ow = tg_vjp_overwrites(n, 0);   /* every x element is visited once */
    double *gs = scratch(n, n_out);
    if (!gs)
        return;
    TG_DISPATCH(n->out->dtype, T, {
        const T *dy = n->out->grad;
        T *dx = n->in[0]->grad;
        for (int64_t o = 0; o < n_out; o++)
            gs[o] = mean ? (double)dy[o] / (double)pl->R : (double)dy[o];
        if (!pl->obase && !pl->toff && pl->inner == 1 && pl->R > 0) {
            /* Slices of R in a row (the last axis, or all): each filled, the
             * threads taking ranges of the flat index (was serial: see git log). */
            const int64_t R = pl->R, total = n_out * R;
            int nt = tg_par_threads(n->ctx, (double)total, TG_PAR_MIN_ELEMS);
            const T g0 = (T)gs[0];   /* a full reduction, fresh and large: streamed */
            if (ow && n_out == 1 && tg_stream_wanted(dx, (size_t)total * sizeof(T)))
                TG_PAR_FOR(nt, total, 16, lo, hi, { TG_STREAM_FRESH(T, dx, (size_t)lo, (size_t)hi, g0); });
            else
                TG_PAR_FOR(nt, total, 16, lo, hi, {
                    for (int64_t o = lo / R, k = lo; k < hi; o++) {
                        const T g = (T)gs[o];
                        for (const int64_t end = (o + 1) * R < hi ? (o + 1) * R : hi; k < end; k++)
                            dx[k] = (ow ? (T)0 : dx[k]) + g;
                    }
                });
        } else if (ow)
            PL_FOREACH(pl, dx[xi] = (T)0 + (T)gs[yi];)
        else
            PL_FOREACH(pl, dx[xi] += (T)gs[yi];)
    });
}

static tg_status sum_forward(tg_node *n) { return sum_mean_forward(n, 0); }
static void sum_backward(tg_node *n) { sum_mean_backward(n, 0); }
static tg_status sum_sample(tg_node *n, tg_dtype dt, int v) { return reduce_sample(n, dt, v, SAMPLE_PLAIN); }
static void sum_cost(const tg_node *n, tg_op_cost *c) { reduce_cost(n, c, 1, 1); }

const tg_op_def tg_op_sum_def = {
    .name = "sum", .n_in = 1, .overwrites = 1,
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
    .name = "mean", .n_in = 1, .overwrites = 1,
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
    double *acc = pl ? scratch(n, pl->inner) : NULL;
    if (!acc)
        return tg_ctx_status(n->ctx);
    double R = (double)pl->R, dof = R - (double)n->p.i[2];
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
            if (pl->inner == 1) {
                acc[0] = 0;
                for (int64_t t = 0; t < pl->n_tab; t++)
                    acc[0] += RUN_KERNEL(dssd, xo)(xo + PL_TOFF(pl, t), pl->run, mu[0]);
            } else {
                for (int64_t i = 0; i < pl->inner; i++)
                    acc[i] = 0;
                PL_ROWS(pl, T, xo, row,
                        for (int64_t i = 0; i < pl->inner; i++) {
                            double d = (double)row[i] - mu[i];
                            acc[i] += d * d;
                        })
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
    double dof = (double)pl->R - (double)n->p.i[2], c = 2 / dof;
    const double *mu = pl->mean;
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *dy = n->out->grad;
        T *dx = n->in[0]->grad;
        const int ow = tg_vjp_overwrites(n, 0);
        if (dof > 0) {
            PL_FOREACH(pl, dx[xi] = (ow ? (T)0 : dx[xi]) + (T)((double)dy[yi] * c * ((double)x[xi] - mu[yi]));)
        } else {
            PL_FOREACH(pl, dx[xi] = (ow ? (T)0 : dx[xi]) +
                               (T)((double)dy[yi] * ((double)x[xi] == mu[yi] ? NAN : INFINITY));)
        }
    });
}

static tg_status var_sample(tg_node *n, tg_dtype dt, int v) { return reduce_sample(n, dt, v, SAMPLE_VAR); }
static void var_cost(const tg_node *n, tg_op_cost *c) { reduce_cost(n, c, 4, 4); }

const tg_op_def tg_op_var_def = {
    .name = "var", .n_in = 1, .overwrites = 1,
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
    double *m = pl ? scratch(n, pl->inner) : NULL;
    if (!m)
        return tg_ctx_status(n->ctx);
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        T *y = n->out->data;
        for (int64_t o = 0; o < pl->outer; o++) {
            const T *xo = x + PL_OBASE(pl, o);
            PL_EXTREME(pl, T, xo, m, is_max);
            T *yo = y + o * pl->inner;
            for (int64_t i = 0; i < pl->inner; i++)
                yo[i] = (T)m[i];
        }
    });
    return TG_OK;
}

/* extreme_backward when every output reduces contiguous runs (inner == 1,
 * e.g. the last axis): the same arithmetic, with the tie count and the
 * share kept in registers so both passes vectorise. */
static void extreme_backward_rows(tg_node *n, const rplan *pl, double *w)
{
    TG_DISPATCH(n->out->dtype, T, {
        const T *restrict x = n->in[0]->data, *y = n->out->data, *dy = n->out->grad;
        T *restrict dx = n->in[0]->grad;
        for (int64_t o = 0; o < pl->outer; o++) {
            const T yo = y[o];
            int64_t ties = 0;
            for (int64_t t = 0; t < pl->n_tab; t++) {
                const T *restrict r = x + PL_OBASE(pl, o) + PL_TOFF(pl, t);
                for (int64_t j = 0; j < pl->run; j++)
                    ties += r[j] == yo;
            }
            w[o] = ties > 0 ? (double)dy[o] / (double)ties : NAN;
        }
        for (int64_t o = 0; o < pl->outer; o++) {
            const T yo = y[o], share = (T)w[o];
            const int all = w[o] != w[o];              /* no tie: a NaN slice */
            for (int64_t t = 0; t < pl->n_tab; t++) {
                const int64_t b = PL_OBASE(pl, o) + PL_TOFF(pl, t);
                const T *restrict r = x + b;
                T *restrict d = dx + b;
                for (int64_t j = 0; j < pl->run; j++)
                    d[j] += (all || r[j] == yo) ? share : (T)0;
            }
        }
    });
}

static void extreme_backward(tg_node *n)
{
    const rplan *pl = n->saved;
    if (!n->in[0]->grad)
        return;
    int64_t n_out = n->out->numel;
    double *w = scratch(n, n_out);
    if (!w)
        return;
    if (pl->inner == 1) {
        extreme_backward_rows(n, pl, w);
        return;
    }
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *y = n->out->data, *dy = n->out->grad;
        T *dx = n->in[0]->grad;
        for (int64_t o = 0; o < n_out; o++)
            w[o] = 0;
        PL_FOREACH(pl, w[yi] += x[xi] == y[yi];)      /* count the ties */
        for (int64_t o = 0; o < n_out; o++)
            w[o] = w[o] > 0 ? (double)dy[o] / w[o] : NAN;   /* no tie: a NaN slice */
        PL_FOREACH(pl, if (x[xi] == y[yi] || w[yi] != w[yi]) dx[xi] += (T)w[yi];)
    });
}

static tg_status extreme_sample(tg_node *n, tg_dtype dt, int v) { return reduce_sample(n, dt, v, SAMPLE_DISTINCT); }
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
 * VJP: dx[o, r] += dy[o] * exp(x[o, r] - lse[o])  (the softmax), lse[o] being
 * y[o] before rounding to x's dtype, saved in double (the plan's `mean`).
 * NOTE: not from y: in f32, y = 1e4 + 0.69 is rounded to ~1e-3, which
 * would make the softmax off by ~1e-3 relative for logits of 1e4.
 * NOTE: an all -inf slice (y = -inf) passes no gradient (PyTorch gives NaN).
 */
static tg_status logsumexp_forward(tg_node *n)
{
    rplan *pl = plan_new(n, 1);
    double *m = pl ? scratch(n, 2 * pl->inner) : NULL;
    if (!m)
        return tg_ctx_status(n->ctx);
    double *s = m + pl->inner;
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        T *y = n->out->data;
        for (int64_t o = 0; o < pl->outer; o++) {
            const T *xo = x + PL_OBASE(pl, o);
            /* A contiguous f32 row: max and sum of exps (within 1 ulp) in
             * one call of softmax's row kernel (1 thread: 4096x4096 8.2-8.8
             * -> 2.7 ms). A non-finite max takes the path below. */
            if (sizeof(T) == 4 && pl->inner == 1 && pl->n_tab == 1) {
                float mx;
                const float *xn = o + 1 < pl->outer ? (const float *)(x + PL_OBASE(pl, o + 1)) : NULL;
                double sum = smx_row_sum_f32((const float *)xo, pl->run, xn, NULL, &mx);
                if (isfinite(mx)) {
                    pl->mean[o] = log(sum) + (double)mx;
                    y[o] = (T)pl->mean[o];
                    continue;
                }
            }
            PL_EXTREME(pl, T, xo, m, 1);
            for (int64_t i = 0; i < pl->inner; i++) {
                if (isinf(m[i]))
                    m[i] = 0;
                s[i] = 0;
            }
            if (pl->inner == 1) {
                for (int64_t t = 0; t < pl->n_tab; t++)
                    s[0] += RUN_KERNEL(dsexp, xo)(xo + PL_TOFF(pl, t), pl->run, m[0]);
            } else {   /* vmath's exp (libm's: 64x4096x64 over axis 1, 45 -> 17 ms) */
                PL_ROWS(pl, T, xo, row,
                        for (int64_t i = 0; i < pl->inner; i++)
                            s[i] += (double)VM(exp, (T)(row[i] - (T)m[i]));)
            }
            T *yo = y + o * pl->inner;
            double *lse = pl->mean + o * pl->inner;
            for (int64_t i = 0; i < pl->inner; i++) {
                lse[i] = log(s[i]) + m[i];
                yo[i] = (T)lse[i];
            }
        }
    });
    return TG_OK;
}

static void logsumexp_backward(tg_node *n)
{
    const rplan *pl = n->saved;
    if (!n->in[0]->grad)
        return;
    const double *lse = pl->mean;
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *dy = n->out->grad;
        T *dx = n->in[0]->grad;
        const int ow = tg_vjp_overwrites(n, 0);
        /* A contiguous run in a loop of its own per output, with vmath's
         * exp: it vectorises (libm's expf was a call an element): 4096x4096
         * f32, 1 thread, 42 -> 12 ms. An all -inf slice passes nothing.
         * Rows of `inner` keep libm's expf: vmath's did not vectorise
         * there and was slower still (64x4096x64 over axis 1: 75 ms
         * against 47). */
        if (pl->inner == 1)
            for (int64_t o = 0; o < pl->outer; o++)
                for (int64_t t = 0; t < pl->n_tab; t++) {
                    T *d = dx + PL_OBASE(pl, o) + PL_TOFF(pl, t);
                    const T *xr = x + PL_OBASE(pl, o) + PL_TOFF(pl, t), g = dy[o];
                    const double l = lse[o];
                    if (l == -INFINITY && ow)
                        memset(d, 0, (size_t)pl->run * sizeof(T));
                    else if (sizeof(T) == 4 && isfinite(l)) {
                        /* x - lse as (x - hi) - lo, no double conversions
                         * (1 thread, 4096x4096: 8.5-9.2 -> 6.1-6.5 ms) */
                        const T lh = (T)l, ll = (T)(l - (double)lh);
                        if (ow)
                            for (int64_t j = 0; j < pl->run; j++)
                                d[j] = (T)0 + g * VM(exp, (xr[j] - lh) - ll);
                        else
                            for (int64_t j = 0; j < pl->run; j++)
                                d[j] += g * VM(exp, (xr[j] - lh) - ll);
                    } else if (l != -INFINITY)
                        for (int64_t j = 0; j < pl->run; j++)
                            d[j] = (ow ? (T)0 : d[j]) + g * VM(exp, (T)((double)xr[j] - l));
                }
        else
            PL_FOREACH(pl, if (lse[yi] != -INFINITY) dx[xi] = (ow ? (T)0 : dx[xi]) + dy[yi] * TGM(exp, (T)((double)x[xi] - lse[yi]));
                           else if (ow) dx[xi] = 0;)
    });
}

static tg_status logsumexp_sample(tg_node *n, tg_dtype dt, int v) { return reduce_sample(n, dt, v, SAMPLE_PLAIN); }
static void logsumexp_cost(const tg_node *n, tg_op_cost *c) { reduce_cost(n, c, 12, 12); }

const tg_op_def tg_op_logsumexp_def = {
    .name = "logsumexp", .n_in = 1, .overwrites = 1,
    .shape = reduce_shape, .forward = logsumexp_forward, .backward = logsumexp_backward,
    .sample = logsumexp_sample, .n_samples = 4, .cost = logsumexp_cost,
};

tg_tensor *tg_logsumexp(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims)
{
    return reduce_apply(ctx, &tg_op_logsumexp_def, x, axes, n_axes, keepdims, 0);
}
