/* loss.c — the loss family as fused ops: mse, l1, huber (two same-shape
 * inputs), cross_entropy (softmax + negative log-likelihood on i32 class
 * labels) and bce_with_logits. Each op is one forward kernel and one VJP,
 * never a composition of other ops. Params: n->p.i[0] = reduction
 * (tg_reduction), n->p.f[0] = huber's delta. Deliberately absent: broadcasting
 * of targets, class weights, ignore_index, label smoothing. */
#include "ops_common.h"
#include "smx_row.h"

/* ---- shared helpers ------------------------------------------------------ */

static tg_status chk_reduction(const tg_node *n)
{
    int64_t r = n->p.i[0];
    if (r != TG_REDUCE_MEAN && r != TG_REDUCE_SUM && r != TG_REDUCE_NONE)
        return tg_op_fail(n, TG_ERR_ARG, "reduction %lld is not MEAN (0), SUM (1) or NONE (2)",
                          (long long)r);
    return TG_OK;
}

/* MEAN over zero losses (an empty batch) has no value: an error naming the
 * input's shape, rather than the silent NaN PyTorch returns. SUM over zero
 * losses is 0 and NONE gives an empty tensor; both are fine. */
static tg_status chk_empty_mean(const tg_node *n, int64_t count)
{
    if (count != 0 || n->p.i[0] != TG_REDUCE_MEAN)
        return TG_OK;
    char sx[TG_SHAPE_STR_MAX];
    return tg_op_fail(n, TG_ERR_SHAPE, "empty batch (%s): the mean of zero losses is undefined "
                      "(TG_REDUCE_SUM gives 0)", TG_SHAPE_OF(n->in[0], sx));
}

/* Two float inputs of one dtype and identical shape; `a` and `b` name them in
 * errors. The output is a scalar, or the inputs' shape for NONE. */
static tg_status pair_shape(const tg_node *n, const char *a, const char *b,
                            tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s;
    if ((s = chk_reduction(n)) != TG_OK || (s = tg_chk_same_dtype(n, 0, 1)) != TG_OK)
        return s;
    const tg_tensor *x = n->in[0], *y = n->in[1];
    if (!tg_shape_equal(x->ndim, x->shape, y->ndim, y->shape)) {
        char sx[TG_SHAPE_STR_MAX], sy[TG_SHAPE_STR_MAX];
        return tg_op_fail(n, TG_ERR_SHAPE, "%s shape %s differs from %s shape %s (no broadcasting)",
                          a, TG_SHAPE_OF(x, sx), b, TG_SHAPE_OF(y, sy));
    }
    if ((s = chk_empty_mean(n, x->numel)) != TG_OK)
        return s;
    *dt = x->dtype;
    *ndim = n->p.i[0] == TG_REDUCE_NONE ? x->ndim : 0;
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)*ndim);
    return TG_OK;
}

/* The reduced value of a sum `acc` over `count` losses (MEAN with count 0
 * is refused by chk_empty_mean). */
static double reduce_finish(int64_t r, double acc, size_t count)
{
    if (r == TG_REDUCE_SUM)
        return acc;
    return count ? acc / (double)count : NAN;
}

/* Upstream gradient shared by every loss of a reduced output: dy for SUM,
 * dy / count for MEAN. (NONE reads dy_i per loss instead.) */
static double reduce_grad(int64_t r, double dy, size_t count)
{
    return r == TG_REDUCE_SUM || count == 0 ? dy : dy / (double)count;
}

/* Samples for the two-input regression losses: pred uniform in [-2, 2), and
 * target = pred - d where |d| is drawn from [lo0, hi0) for even elements and
 * [lo1, hi1) for odd ones, with a random sign. */
static tg_status sample_pair(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape,
                             double lo0, double hi0, double lo1, double hi1)
{
    tg_rng *rng = tg_ctx_rng(n->ctx);
    n->n_in = 2;
    n->in[0] = tg_sample_uniform(n, dt, ndim, shape, -2, 2);
    n->in[1] = tg_tensor_new(n->ctx, dt, ndim, shape);
    if (!n->in[0] || !n->in[1])
        return tg_ctx_status(n->ctx);
    for (int64_t i = 0; i < n->in[0]->numel; i++) {
        double u = tg_rng_uniform(rng);
        double d = (i & 1) ? lo1 + (hi1 - lo1) * u : lo0 + (hi0 - lo0) * u;
        if (tg_rng_uniform(rng) < 0.5)
            d = -d;
        tg_tensor_set(n->in[1], i, tg_tensor_get(n->in[0], i) - d);
    }
    return TG_OK;
}

/* Variants shared by the regression losses and bce: shape and reduction. */
static const int64_t pair_shapes[3][3] = { {3, 4}, {1}, {2, 1, 3} };
static const int pair_ndims[3] = { 2, 1, 3 };
static const int64_t pair_reds[3] = { TG_REDUCE_MEAN, TG_REDUCE_SUM, TG_REDUCE_NONE };

/* Cost of an elementwise loss: `f` flops per element forward, `b` per
 * element and differentiable input backward. */
static void pair_cost(const tg_node *n, tg_op_cost *c, double f, double b)
{
    double e = (double)n->in[0]->numel, w = (double)tg_dtype_size(n->in[0]->dtype);
    double out = (double)n->out->numel;
    c->fwd_flops = f * e;
    c->fwd_bytes = (2 * e + out) * w;
    c->bwd_flops = 2 * b * e;
    c->bwd_bytes = (2 * e + out + 4 * e) * w;   /* read pred, target, dy; r/w dpred, dtarget */
}

/* Forward of an elementwise loss of inputs 0 and 1, named A and B: for
 * NONE the statement(s) ELEM (without a top-level comma) set y[i] in T; for
 * MEAN and SUM the statement(s) `...` set `acc` to loss i in double, and
 * y[0] is the sum or mean. `delta` (double) and `dl` (T) are n->p.f[0]. */
#define PAIR_FORWARD(fn, A, B, ELEM, ...)                                           \
    static tg_status fn(tg_node *n)                                                 \
    {                                                                               \
        size_t len = TG_NUMEL(n->in[0]);                                            \
        int64_t r = n->p.i[0];                                                      \
        const double delta = n->p.f[0];                                             \
        (void)delta;                                                                \
        TG_DISPATCH(n->out->dtype, T, {                                             \
            const T *A = n->in[0]->data, *B = n->in[1]->data;                       \
            T *y = n->out->data;                                                    \
            const T dl = (T)delta;                                                  \
            (void)dl;                                                               \
            if (r == TG_REDUCE_NONE) {                                              \
                for (size_t i = 0; i < len; i++) {                                  \
                    ELEM;                                                           \
                }                                                                   \
            } else {                                                                \
                /* element i's loss into lane i % 16 (one running sum was a    \
                 * chain of dependent adds: mse 4096x4096 14.1 ms, huber 98),  \
                 * the lanes then in order: fixed, whatever the build (but   \
                 * a NaN's sign: which NaN an add of two passes on is the  \
                 * compiler's operand order)                                 */ \
                double lane_[16] = {0}, sum_ = 0;                                   \
                size_t i0_ = 0;                                                     \
                for (; i0_ + 16 <= len; i0_ += 16)                                  \
                    for (int j_ = 0; j_ < 16; j_++) {                               \
                        size_t i = i0_ + (size_t)j_;                                \
                        double acc;                                                 \
                        __VA_ARGS__;                                                \
                        lane_[j_] += acc;                                           \
                    }                                                               \
                for (size_t i = i0_; i < len; i++) {                                \
                    double acc;                                                     \
                    __VA_ARGS__;                                                    \
                    lane_[i - i0_] += acc;                                          \
                }                                                                   \
                for (int j_ = 0; j_ < 16; j_++)                                     \
                    sum_ += lane_[j_];                                              \
                y[0] = (T)reduce_finish(r, sum_, len);                              \
            }                                                                       \
        });                                                                         \
        return TG_OK;                                                               \
    }

/* VJP of an elementwise loss of inputs 0 and 1, named A and B: with g the
 * upstream gradient of loss i (dy_i for NONE, else dy/len or dy), the
 * statements `...` declare the T contributions ga (to input 0) and gb (to
 * input 1); each is added where that input's gradient is wanted, so
 * loss(x, x) gets both, or written (as (T)0 + g) into a fresh gradient
 * (tg_vjp_overwrites). `dl` (T) is n->p.f[0]. */
#define PAIR_BACKWARD(fn, A, B, ...)                                                \
    static void fn(tg_node *n)                                                      \
    {                                                                               \
        size_t len = TG_NUMEL(n->in[0]);                                            \
        int64_t r = n->p.i[0];                                                      \
        TG_DISPATCH(n->out->dtype, T, {                                             \
            const T *A = n->in[0]->data, *B = n->in[1]->data, *dy = n->out->grad;   \
            T *da = n->in[0]->grad, *db = n->in[1]->grad;                           \
            const T dl = (T)n->p.f[0];                                              \
            (void)dl;                                                               \
            int none = r == TG_REDUCE_NONE;                                         \
            const int owa = tg_vjp_overwrites(n, 0), owb = tg_vjp_overwrites(n, 1);  \
            T g0 = none ? 0 : (T)reduce_grad(r, dy[0], len);                        \
            /* The contributions of a chunk into local arrays first (a loop   \
             * the compiler vectorises: nothing it writes can alias what it  \
             * reads), then added or written: the same bits, in the same     \
             * order per element when da and db are one buffer. */          \
            for (size_t i0_ = 0; i0_ < len; i0_ += PAIR_CHUNK) {                    \
                size_t n_ = len - i0_ < PAIR_CHUNK ? len - i0_ : PAIR_CHUNK;        \
                T ga_[PAIR_CHUNK], gb_[PAIR_CHUNK];                                 \
                /* two loops, not `none ? dy[i] : g0` in one: that became a    \
                 * masked load of dy[i] past dy's one element, each a fault-   \
                 * suppression assist once those addresses were unmapped       \
                 * (bce 128x1024: 1.25 ms; see the commit) */                 \
                if (none)                                                           \
                    for (size_t k_ = 0; k_ < n_; k_++) {                            \
                        const size_t i = i0_ + k_;                                  \
                        T g = dy[i];                                                \
                        __VA_ARGS__;                                                \
                        ga_[k_] = ga;                                               \
                        gb_[k_] = gb;                                               \
                    }                                                               \
                else                                                                \
                    for (size_t k_ = 0; k_ < n_; k_++) {                            \
                        const size_t i = i0_ + k_;                                  \
                        T g = g0;                                                   \
                        __VA_ARGS__;                                                \
                        ga_[k_] = ga;                                               \
                        gb_[k_] = gb;                                               \
                    }                                                               \
                if (da)                                                             \
                    for (size_t k_ = 0; k_ < n_; k_++)                              \
                        da[i0_ + k_] = (owa ? (T)0 : da[i0_ + k_]) + ga_[k_];       \
                if (db)                                                             \
                    for (size_t k_ = 0; k_ < n_; k_++)                              \
                        db[i0_ + k_] = (owb ? (T)0 : db[i0_ + k_]) + gb_[k_];       \
            }                                                                       \
        });                                                                         \
    }
#define PAIR_CHUNK 256

static tg_tensor *apply_loss(tg_ctx *ctx, const tg_op_def *def, tg_tensor *a, tg_tensor *b,
                             tg_reduction r, double f0)
{
    tg_tensor *in[2] = { a, b };
    tg_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = (int)r;       /* via int: the enum may be unsigned */
    p.f[0] = f0;
    return tg_apply(ctx, def, in, 2, &p, NULL);
}

/* ---- mse ------------------------------------------------------------------
 * l_i = (p_i - t_i)^2;  y = mean(l), sum(l), or l (NONE)
 * p, t: same shape, same dtype.   y: scalar, or p's shape for NONE.
 * VJP: with g_i = dy/numel (MEAN), dy (SUM), dy_i (NONE):
 *      dp_i += 2 (p_i - t_i) g_i;   dt_i -= 2 (p_i - t_i) g_i
 */
static tg_status mse_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    return pair_shape(n, "pred", "target", dt, ndim, shape);
}

PAIR_FORWARD(mse_forward, p, t,
             T d = p[i] - t[i]; y[i] = d * d,
             double d = (double)p[i] - (double)t[i]; acc = d * d)

PAIR_BACKWARD(mse_backward, p, t, T ga = (p[i] - t[i]) * (g + g), gb = -ga)

static tg_status mse_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    n->p.i[0] = pair_reds[v];
    n->n_in = 2;
    n->in[0] = tg_sample_uniform(n, dt, pair_ndims[v], pair_shapes[v], -2, 2);
    n->in[1] = tg_sample_uniform(n, dt, pair_ndims[v], pair_shapes[v], -2, 2);
    return tg_sample_done(n);
}

static void mse_cost(const tg_node *n, tg_op_cost *c) { pair_cost(n, c, 3, 3); }

const tg_op_def tg_op_mse_def = {
    .name = "mse", .n_in = 2, .overwrites = 3,
    .shape = mse_shape, .forward = mse_forward, .backward = mse_backward,
    .sample = mse_sample, .n_samples = 3, .cost = mse_cost,
};

tg_tensor *tg_mse_loss(tg_ctx *ctx, tg_tensor *pred, tg_tensor *target, tg_reduction r)
{
    return apply_loss(ctx, &tg_op_mse_def, pred, target, r, 0);
}

/* ---- l1 -------------------------------------------------------------------
 * l_i = |p_i - t_i|;  y = mean(l), sum(l), or l (NONE)
 * p, t: same shape, same dtype.   y: scalar, or p's shape for NONE.
 * VJP: dp_i += sign(p_i - t_i) g_i;  dt_i -= sign(p_i - t_i) g_i
 * NOTE: sign(0) = 0: the gradient at p_i == t_i is 0, as PyTorch's.
 */
static tg_status l1_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    return pair_shape(n, "pred", "target", dt, ndim, shape);
}

PAIR_FORWARD(l1_forward, p, t,
             y[i] = (T)fabs((double)(p[i] - t[i])),
             acc = fabs((double)p[i] - (double)t[i]))

PAIR_BACKWARD(l1_backward, p, t, T ga = p[i] > t[i] ? g : p[i] < t[i] ? -g : 0, gb = -ga)

static tg_status l1_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    n->p.i[0] = pair_reds[v];
    /* |p - t| in [0.1, 2): off the kink at 0. */
    return sample_pair(n, dt, pair_ndims[v], pair_shapes[v], 0.1, 2, 0.1, 2);
}

static void l1_cost(const tg_node *n, tg_op_cost *c) { pair_cost(n, c, 3, 2); }

const tg_op_def tg_op_l1_def = {
    .name = "l1", .n_in = 2, .overwrites = 3,
    .shape = l1_shape, .forward = l1_forward, .backward = l1_backward,
    .sample = l1_sample, .n_samples = 3, .cost = l1_cost,
};

tg_tensor *tg_l1_loss(tg_ctx *ctx, tg_tensor *pred, tg_tensor *target, tg_reduction r)
{
    return apply_loss(ctx, &tg_op_l1_def, pred, target, r, 0);
}

/* ---- huber ----------------------------------------------------------------
 * d_i = p_i - t_i;  l_i = 0.5 d_i^2 if |d_i| < delta, else delta (|d_i| - 0.5 delta)
 * y = mean(l), sum(l), or l (NONE).   delta = n->p.f[0] > 0.
 * p, t: same shape, same dtype.   y: scalar, or p's shape for NONE.
 * VJP: dp_i += clamp(d_i, -delta, delta) g_i;  dt_i -= the same
 */
static tg_status huber_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    double delta = n->p.f[0];
    if (!(delta > 0) || isinf(delta))
        return tg_op_fail(n, TG_ERR_ARG, "delta must be finite and > 0, got %g", delta);
    return pair_shape(n, "pred", "target", dt, ndim, shape);
}

/* q (a - q / 2) with q = min(a, delta): 0.5 a^2 (a - a / 2 is exact) or
 * delta (a - delta / 2), the bits of the two-branch formula with no select
 * between two products (its masked multiplies were half the forward); q / 2
 * is exact (but for a subnormal q, whose product underflows to 0 either
 * way), so a - q / 2 in one FMA rounds as the subtraction does. */
PAIR_FORWARD(huber_forward, p, t,
             T a = (T)fabs((double)(p[i] - t[i]));
             T q = a < dl ? a : dl;
             y[i] = q * (a - (T)0.5 * q),
             double a = fabs((double)p[i] - (double)t[i]);
             double q = a < delta ? a : delta;
             acc = q * TG_VM_FMA(-0.5, q, a))

PAIR_BACKWARD(huber_backward, p, t,
              T d = p[i] - t[i];
              T ga = (d < -dl ? -dl : d > dl ? dl : d) * g, gb = -ga)

static tg_status huber_sample(tg_node *n, tg_dtype dt, int v)
{
    static const double deltas[3] = { 1.0, 0.5, 2.0 };
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    double dl = deltas[v];
    n->p.i[0] = pair_reds[v];
    n->p.f[0] = dl;
    /* Even elements on the quadratic branch, odd ones on the linear branch,
     * each at least 0.15 from the switch at |d| = delta. */
    return sample_pair(n, dt, pair_ndims[v], pair_shapes[v], 0.05, dl - 0.15, dl + 0.15, dl + 1.5);
}

static void huber_cost(const tg_node *n, tg_op_cost *c) { pair_cost(n, c, 5, 4); }

const tg_op_def tg_op_huber_def = {
    .name = "huber", .n_in = 2, .overwrites = 3,
    .shape = huber_shape, .forward = huber_forward, .backward = huber_backward,
    .sample = huber_sample, .n_samples = 3, .cost = huber_cost,
};

tg_tensor *tg_huber_loss(tg_ctx *ctx, tg_tensor *pred, tg_tensor *target, double delta, tg_reduction r)
{
    return apply_loss(ctx, &tg_op_huber_def, pred, target, r, delta);
}

/* ---- cross_entropy --------------------------------------------------------
 * l_i = logsumexp_j(x_ij) - x_i,c_i     x: (N, C) logits; c: (N) i32 labels
 * (or x: (C) with a 0-d or 1-element label: N = 1, NONE gives a 0-d loss)
 * y = mean(l), sum(l) (scalars), or l (N) for NONE.
 * The forward subtracts each row's max m before exp and saves m and
 * inv = 1 / sum_j exp(x_ij - m) per row (2N values) in n->saved.
 * VJP: dx_ij += (s_ij - [j == c_i]) g_i, g_i = dy/N (MEAN), dy (SUM), dy_i (NONE),
 * with s_ij = exp(x_ij - m) inv = softmax(x)_ij recomputed from x
 * Labels are checked in shape(), before anything is computed.
 */
static void ce_dims(const tg_tensor *x, int64_t *rows, int64_t *cols)
{
    *rows = x->ndim == 2 ? x->shape[0] : 1;
    *cols = x->shape[x->ndim - 1];
}

static tg_status ce_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    const tg_tensor *x = n->in[0], *lab = n->in[1];
    char sx[TG_SHAPE_STR_MAX], sl[TG_SHAPE_STR_MAX];
    tg_status s;
    if ((s = chk_reduction(n)) != TG_OK || (s = tg_chk_float(n, 0)) != TG_OK)
        return s;
    if (lab->dtype != TG_I32)
        return tg_op_fail(n, TG_ERR_ARG, "labels are %s, expected i32 class indices",
                          tg_dtype_name(lab->dtype));
    if (x->ndim != 1 && x->ndim != 2)
        return tg_op_fail(n, TG_ERR_SHAPE, "logits must be (N, C) or (C), got %s", TG_SHAPE_OF(x, sx));
    int64_t rows, cols;
    ce_dims(x, &rows, &cols);
    int ok = x->ndim == 2 ? lab->ndim == 1 && lab->shape[0] == rows
                          : lab->ndim <= 1 && lab->numel == 1;
    if (!ok)
        return tg_op_fail(n, TG_ERR_SHAPE, "labels shape %s does not fit logits %s (expected %s)",
                          TG_SHAPE_OF(lab, sl), TG_SHAPE_OF(x, sx),
                          x->ndim == 2 ? "one label per row" : "a single label");
    if ((s = chk_empty_mean(n, rows)) != TG_OK)
        return s;
    const int32_t *c = lab->data;
    for (int64_t i = 0; i < rows; i++)
        if (c[i] < 0 || c[i] >= cols)
            return tg_op_fail(n, TG_ERR_ARG, "label %d at row %lld outside [0, %lld)",
                              (int)c[i], (long long)i, (long long)cols);
    *dt = x->dtype;
    *ndim = n->p.i[0] == TG_REDUCE_NONE && x->ndim == 2 ? 1 : 0;
    shape[0] = rows;
    return TG_OK;
}

/* ---- the rows of cross_entropy's forward -----------------------------------
 * Each row's max m and z = sum exp(x - m) in double; the loss takes the
 * logsumexp m + log(z), the VJP recomputes s = softmax(x) as
 * exp(x - m) * (T)(1 / z) from the pair (m, (T)(1 / z)) saved per row.
 * Nothing of N*C size is saved or written by the forward: it reads x once
 * (it also wrote s, as much again, until 2026-12-07). f32 rows:
 * smx_row_sum2_f32 (exps in f32 as 2^t, summed in groups of 4 in float,
 * then in double over 16 lanes; nothing stored); f64 rows: the chunked
 * loop below. The VJP's exps are smx_exp_blk's (ce_row_grad_f32), closer
 * than the forward's (smx_row.h, "the sum alone"), so the s it computes
 * sum to 1 within the forward sum's error: ~2e-7 for spread logits, up to
 * ~6e-7 where most of a wide row sits at one depth below its max.
 * NOTE: the exps were in double before (tg_vm_exp rounded to float): ~0.6 ns
 * per element on one core, which caps the forward near 30 % of the memory
 * bandwidth; in f32 the training run moved within its seed-to-seed spread.
 *
 * Logits converted to double per chunk in the forward; a multiple of 16, so
 * lane j & 15 of a chunk is lane j % 16 of the row (tg_row_sum's). */
#define CE_CHUNK 256
_Static_assert(CE_CHUNK % 16 == 0, "CE_CHUNK: whole lanes");

/* Rows per thread at least: a row costs about cols exps. */
static int ce_threads(const tg_node *n, int64_t rows, int64_t cols)
{
    int nt = tg_par_threads(n->ctx, (double)(rows * cols), TG_PAR_MIN_ELEMS / 4);
    return nt < rows ? nt : (int)(rows > 0 ? rows : 1);
}

static tg_status ce_forward(tg_node *n)
{
    int64_t rows, cols, r = n->p.i[0];
    ce_dims(n->in[0], &rows, &cols);
    size_t esz = tg_dtype_size(n->out->dtype);
    int nt = ce_threads(n, rows, cols);
    n->saved = tg_node_scratch(n, (size_t)rows * 2 * esz);   /* (m, inv) per row */
    /* With threads, each row's loss goes to l[i] and the sum is taken
     * after, in row order: the serial loop's sum, bit for bit. */
    double *lrow = nt > 1 && r != TG_REDUCE_NONE ? tg_node_scratch(n, (size_t)rows * sizeof(double)) : NULL;
    if (!n->saved || (nt > 1 && r != TG_REDUCE_NONE && !lrow))
        return tg_ctx_status(n->ctx);
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        const int32_t *c = n->in[1]->data;
        T *sv = n->saved, *y = n->out->data;
        double acc = 0;
        TG_PAR_FOR(nt, rows, 1, i0, i1, {
            for (int64_t i = i0; i < i1; i++) {
                const T *xr = x + i * cols;
                double z;                   /* the sum of exp(x - m) */
                T m;
                if (sizeof(T) == sizeof(float)) {
                    float mf;
                    z = smx_row_sum2_f32((const float *)xr, cols,
                                         i + 1 < i1 ? (const float *)(xr + cols) : NULL, &mf);
                    m = (T)mf;
                } else {
                    m = (T)tg_row_ext(xr, cols, 1);
                    /* (f64 rows) exp in double (vmath.h), a chunk at a time
                     * through a buffer so the loop vectorises; summed over
                     * 16 lanes */
                    double lane[16] = {0};
                    for (int64_t j0 = 0; j0 < cols; j0 += CE_CHUNK) {
                        double buf[CE_CHUNK];
                        int64_t nj = cols - j0 < CE_CHUNK ? cols - j0 : CE_CHUNK;
                        for (int64_t j = 0; j < nj; j++)
                            buf[j] = (double)(xr[j0 + j] - m);
                        for (int64_t j = 0; j < nj; j++)
                            buf[j] = tg_vm_exp(buf[j]);
                        for (int64_t j = 0; j < nj; j++)
                            lane[j & 15] += buf[j];
                    }
                    z = 0;
                    for (int j = 0; j < 16; j++)
                        z += lane[j];
                }
                sv[2 * i] = m;
                sv[2 * i + 1] = (T)(1.0 / z);
                double lse = (double)m + log(z);    /* the row's logsumexp */
                /* NOTE: lse - x_c, not -log(s_c): s_c underflows to 0 for a
                 * logit far below the row max, its log would be -inf. */
                double l = lse - (double)xr[c[i]];
                if (r == TG_REDUCE_NONE)
                    y[i] = (T)l;
                else if (lrow)
                    lrow[i] = l;
                else
                    acc += l;
            }
        });
        if (lrow)
            for (int64_t i = 0; i < rows; i++)
                acc += lrow[i];
        if (r != TG_REDUCE_NONE)
            y[0] = (T)reduce_finish(r, acc, (size_t)rows);
    });
    return TG_OK;
}

/* One f32 row of the VJP: dr[j] += s_j g (or, into a fresh gradient,
 * dr[j] = 0 + s_j g; `mode` below), then dr[c] -= g, s_j = exp(x_j - m) inv,
 * the exps of softmax's rows: over 16 lanes for the 64-blocks of a row of
 * 64 or more with a finite max (smx_exp_blk's reduction and polynomial,
 * 2^k by vscalefps: the value smx_exp_blk gives for every normal result),
 * and tg_vm_expf's bits for the rest (rows shorter than 64, the tail of a
 * row past its last block, rows whose max is not finite). Without AVX-512
 * the blocks go through smx_exp_blk(..., 0), whose two-factor scaling gives
 * the same values, subnormals included (it rounds once, as vscalefps): the
 * gradient is the same in both builds wherever the forward's inv is
 * (rows under 64, and every row of a portable build's forward). */
static void ce_row_grad_f32(float *restrict dr, const float *restrict xr, int64_t cols, float m, float inv,
                            float g, int64_t c, int mode)
{
    /* mode 0: dr[j] += s_j g; 1 (a fresh gradient): dr[j] = 0 + s_j g, dr
     * unread; 2: as 1 with streaming stores (dr 64-byte aligned, cols a
     * multiple of 16). Then dr[c] -= g, applied to the label's lane before
     * its store (the bits of the separate subtraction after the row). */
    int64_t a = 0;
#ifdef TG_VM16
    if (cols >= SMX_B && isfinite(m)) {
        const __m512 vm = _mm512_set1_ps(m), lim = _mm512_set1_ps(-104.0f);
        const __m512 vi = _mm512_set1_ps(inv), vg = _mm512_set1_ps(g);
        for (int64_t end = cols / SMX_B * SMX_B; a < end; a += 16) {
            __m512 d = _mm512_max_ps(lim, _mm512_sub_ps(_mm512_loadu_ps(xr + a), vm));
            __m512 t, kf, p = tg_vm16_exp_core(d, 0, &t, &kf);
            __m512 sv = _mm512_mul_ps(_mm512_scalef_ps(p, kf), vi);
            __m512 w = _mm512_add_ps(mode ? _mm512_setzero_ps() : _mm512_loadu_ps(dr + a), _mm512_mul_ps(sv, vg));
            if (c >= a && c < a + 16)
                w = _mm512_mask_sub_ps(w, (__mmask16)(1u << (c - a)), w, vg);
            if (mode == 2)
                _mm512_stream_ps(dr + a, w);
            else
                _mm512_storeu_ps(dr + a, w);
        }
    }
#else
    if (cols >= SMX_B && isfinite(m))
        for (int64_t end = cols / SMX_B * SMX_B; a < end; a += SMX_B) {
            float e[SMX_B];
            smx_exp_blk(e, xr + a, m, 0);
            for (int j = 0; j < SMX_B; j++)
                dr[a + j] = (mode ? 0.0f : dr[a + j]) + e[j] * inv * g;
            if (c >= a && c < a + SMX_B)
                dr[c] -= g;
        }
#endif
    int64_t a0 = a;
#ifdef TG_VM16
    {
        const __m512 vm = _mm512_set1_ps(m), vi = _mm512_set1_ps(inv), vg = _mm512_set1_ps(g);
        for (; a < cols; a += 16) {   /* tg_vm_expf's bits, 16 at a time */
            __mmask16 k = cols - a >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - a)) - 1);
            __m512 e = tg_vm16_expf_as_scalar(_mm512_sub_ps(tg_vm16_ld(k, xr + a), vm));
            __m512 base = mode ? _mm512_setzero_ps() : tg_vm16_ld(k, dr + a);
            tg_vm16_st(dr + a, k, _mm512_add_ps(base, _mm512_mul_ps(_mm512_mul_ps(e, vi), vg)));
        }
    }
#else
    for (; a < cols; a++)
        dr[a] = (mode ? 0.0f : dr[a]) + tg_vm_expf(xr[a] - m) * inv * g;
#endif
    if (c >= a0)
        dr[c] -= g;
}

static void ce_backward(tg_node *n)
{
    int64_t rows, cols, r = n->p.i[0];
    if (!n->in[0]->grad)
        return;
    ce_dims(n->in[0], &rows, &cols);
    int nt = ce_threads(n, rows, cols);
    TG_DISPATCH(n->out->dtype, T, {
        const T *sv = n->saved, *x = n->in[0]->data, *dy = n->out->grad;
        const int32_t *c = n->in[1]->data;
        T *dx = n->in[0]->grad;
        int none = r == TG_REDUCE_NONE;
        T g0 = none ? 0 : (T)reduce_grad(r, dy[0], (size_t)rows);
        const int ow = tg_vjp_overwrites(n, 0);
        /* f32 rows into a fresh gradient: written, not zeroed and added
         * to; when large and the rows whole vectors (each row 64-byte
         * aligned), their 64-blocks with streaming stores (the rest of a
         * row, and rows whose max is not finite, with ordinary stores);
         * 4096x4096, 1 thread, tapegrad bench
         * bwd_fresh 6.1 -> 4.1-4.7 ms (it was the slower phase: a memset of
         * each row, then a read-modify-write of it). */
        int mode = 0;
        if (ow && sizeof(T) == sizeof(float)) {
            mode = 1;
#ifdef TG_VM16
            if (cols % 16 == 0 && tg_stream_wanted(dx, (size_t)(rows * cols) * sizeof(float)))
                mode = 2;
#endif
        }
        TG_PAR_FOR(nt, rows, 1, i0, i1, {
            for (int64_t i = i0; i < i1; i++) {
                T g = none ? dy[i] : g0, m = sv[2 * i], inv = sv[2 * i + 1];
                const T *xr = x + i * cols;
                T *dr = dx + i * cols;
                if (sizeof(T) == sizeof(float)) {
                    ce_row_grad_f32((float *)dr, (const float *)xr, cols, (float)m, (float)inv, (float)g,
                                    c[i], mode);
                    continue;
                }
                if (ow)   /* a fresh gradient: zeroed a row at a time, in cache */
                    memset(dr, 0, (size_t)cols * sizeof(T));
                for (int64_t j = 0; j < cols; j++)   /* s = softmax(x) */
                    dr[j] += VM(exp, (T)(xr[j] - m)) * inv * g;
                dr[c[i]] -= g;
            }
            if (mode == 2)
                tg_stream_fence();
        });
    });
}

static tg_status ce_sample(tg_node *n, tg_dtype dt, int v)
{
    /* logits (4, 5) MEAN; a single sample (6) with a 0-d label, SUM; (3, 4) NONE */
    static const int64_t shapes[3][2] = { {4, 5}, {6}, {3, 4} };
    static const int ndims[3] = { 2, 1, 2 };
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    n->p.i[0] = pair_reds[v];
    n->n_in = 2;
    n->in[0] = tg_sample_uniform(n, dt, ndims[v], shapes[v], -3, 3);
    int64_t rows = ndims[v] == 2 ? shapes[v][0] : 1, cols = shapes[v][ndims[v] - 1];
    n->in[1] = tg_tensor_new(n->ctx, TG_I32, ndims[v] - 1, shapes[v]);
    if (!n->in[0] || !n->in[1])
        return tg_ctx_status(n->ctx);
    for (int64_t i = 0; i < rows; i++)
        tg_tensor_set(n->in[1], i, (double)tg_rng_below(tg_ctx_rng(n->ctx), (uint64_t)cols));
    return TG_OK;
}

static void ce_cost(const tg_node *n, tg_op_cost *c)
{
    int64_t rows, cols;
    ce_dims(n->in[0], &rows, &cols);
    double e = (double)(rows * cols), w = (double)tg_dtype_size(n->in[0]->dtype);
    c->fwd_flops = 13 * e + 22 * (double)rows;       /* max, sub, exp (~10), sum; log per row */
    c->fwd_bytes = e * w + 4 * (double)rows + (double)n->out->numel * w;  /* read x */
    c->bwd_flops = 14 * e + (double)rows;            /* sub, exp (~10), mul, mul, add */
    c->bwd_bytes = 3 * e * w + 4 * (double)rows + (double)n->out->numel * w;  /* read x, r/w dx */
}

const tg_op_def tg_op_cross_entropy_def = {
    .name = "cross_entropy", .n_in = 2, .nondiff = 1u << 1, .overwrites = 1,
    .shape = ce_shape, .forward = ce_forward, .backward = ce_backward,
    .sample = ce_sample, .n_samples = 3, .cost = ce_cost,
};

tg_tensor *tg_cross_entropy(tg_ctx *ctx, tg_tensor *logits, tg_tensor *labels, tg_reduction r)
{
    return apply_loss(ctx, &tg_op_cross_entropy_def, logits, labels, r, 0);
}

/* ---- bce_with_logits ------------------------------------------------------
 * l_i = max(x_i, 0) - x_i t_i + log1p(exp(-|x_i|))     (stable for any x)
 * x (logits), t (targets): same shape, same dtype.  y: scalar, or x's shape (NONE)
 * VJP: dx_i += (sigmoid(x_i) - t_i) g_i;   dt_i += -x_i g_i
 * (targets are differentiable, as in PyTorch; they are not range-checked)
 */
static tg_status bce_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    return pair_shape(n, "logits", "targets", dt, ndim, shape);
}

/* The linear part in double (max(x, 0) - x t cancels for confident logits
 * with soft targets; a product of two floats is exact in double), the
 * softplus part with vmath.h's kernel in x's dtype (a few ulp of a term <=
 * log 2; vectorised: libm's exp and log1p in double took 19 ns an
 * element, 4096x4096 f32, 1 thread: forward 319 ms, VJP 168). The sum of
 * the losses is in double. */
#define BCE_TERM(x, t) \
    (((x) > 0 ? (double)(x) : 0.0) - (double)(x) * (double)(t) + (double)VM(softplus, -bce_abs(x)))
static inline float bce_abs_f(float x) { return fabsf(x); }
static inline double bce_abs_d(double x) { return fabs(x); }
#define bce_abs(x) _Generic((x), float: bce_abs_f, default: bce_abs_d)(x)

PAIR_FORWARD(bce_forward, x, t, y[i] = (T)BCE_TERM(x[i], t[i]), acc = BCE_TERM(x[i], t[i]))

/* Both contributions from the inputs' data, so bce(x, x) is right. */
PAIR_BACKWARD(bce_backward, x, t, T ga = (VM(sigmoid, x[i]) - t[i]) * g, gb = -x[i] * g)

static tg_status bce_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    n->p.i[0] = pair_reds[v];
    n->n_in = 2;
    n->in[0] = tg_sample_away0(n, dt, pair_ndims[v], pair_shapes[v], 3, 0.05);
    n->in[1] = tg_sample_uniform(n, dt, pair_ndims[v], pair_shapes[v], 0, 1);
    return tg_sample_done(n);
}

static void bce_cost(const tg_node *n, tg_op_cost *c) { pair_cost(n, c, 26, 14); }

const tg_op_def tg_op_bce_with_logits_def = {
    .name = "bce_with_logits", .n_in = 2, .overwrites = 3,
    .shape = bce_shape, .forward = bce_forward, .backward = bce_backward,
    .sample = bce_sample, .n_samples = 3, .cost = bce_cost,
};

tg_tensor *tg_bce_with_logits(tg_ctx *ctx, tg_tensor *logits, tg_tensor *targets, tg_reduction r)
{
    return apply_loss(ctx, &tg_op_bce_with_logits_def, logits, targets, r, 0);
}
