/* unary.c — elementwise ops of one input: neg, exp, log, sqrt, abs, square,
 * clamp. Each is one block: banner with math and VJP, shape, forward,
 * backward, sample, cost, descriptor, public wrapper. Activations live in
 * activation.c. Edge values follow IEEE arithmetic (log(0) = -inf,
 * sqrt(-1) = NaN): that is the mathematics, not an error. */
#include "ops_common.h"

/* Shape, cost, samples and the loop skeletons (TG_EW_FORWARD and
 * TG_EW_BACKWARD, with x, y, dy, dx, p0, p1 in scope) come from
 * ops_common.h. */

/* ---- neg ----------------------------------------------------------------
 * y = -x                x, y: any shape
 * VJP: dx -= dy
 */
TG_EW_FORWARD_ST(neg_forward, y[i] = -x[i])

TG_EW_BACKWARD(neg_backward, , -(dy[i]))

static tg_status neg_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, -2, 2, 0); }

static void neg_cost(const tg_node *n, tg_op_cost *c)
{
    tg_ew_cost(n, c, 1, 1);
    c->bwd_bytes = 3 * (double)n->out->numel * (double)tg_dtype_size(n->out->dtype);
}

const tg_op_def tg_op_neg_def = {
    .name = "neg", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = neg_forward, .backward = neg_backward,
    .sample = neg_sample, .n_samples = TG_EW_N_SHAPES, .cost = neg_cost,
};

tg_tensor *tg_neg(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_neg_def, &x, 1, NULL, NULL);
}

/* ---- exp ----------------------------------------------------------------
 * y = exp(x)            x, y: any shape
 * VJP: dx += dy * y     (reuses the forward output)
 */
TG_EW_FORWARD_X16(exp_forward, tg_vm16_expf, y[i] = VM(exp, x[i]))

TG_EW_BACKWARD(exp_backward, , dy[i] * y[i])

static tg_status exp_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, -2, 2, 0); }

static void exp_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 10, 1); }

const tg_op_def tg_op_exp_def = {
    .name = "exp", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = exp_forward, .backward = exp_backward,
    .sample = exp_sample, .n_samples = TG_EW_N_SHAPES, .cost = exp_cost,
};

tg_tensor *tg_exp(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_exp_def, &x, 1, NULL, NULL);
}

/* ---- log ----------------------------------------------------------------
 * y = log(x)            x, y: any shape; log(0) = -inf, log(x < 0) = NaN
 * VJP: dx += dy / x
 */
TG_EW_FORWARD(log_forward, y[i] = VM(log, x[i]))

TG_EW_BACKWARD(log_backward, , dy[i] / x[i])

static tg_status log_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, 0.5, 3, 0); }

static void log_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 10, 2); }

const tg_op_def tg_op_log_def = {
    .name = "log", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = log_forward, .backward = log_backward,
    .sample = log_sample, .n_samples = TG_EW_N_SHAPES, .cost = log_cost,
};

tg_tensor *tg_log(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_log_def, &x, 1, NULL, NULL);
}

/* ---- sqrt ---------------------------------------------------------------
 * y = sqrt(x)           x, y: any shape; sqrt(x < 0) = NaN
 * VJP: dx += dy / (2 y) (reuses the forward output; +inf at x = 0, as the
 *                        derivative is)
 */
TG_EW_FORWARD_ST(sqrt_forward, y[i] = TGM(sqrt, x[i]))

TG_EW_BACKWARD(sqrt_backward, , dy[i] / (y[i] + y[i]))

static tg_status sqrt_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, 0.5, 3, 0); }

static void sqrt_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 4, 3); }

const tg_op_def tg_op_sqrt_def = {
    .name = "sqrt", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = sqrt_forward, .backward = sqrt_backward,
    .sample = sqrt_sample, .n_samples = TG_EW_N_SHAPES, .cost = sqrt_cost,
};

tg_tensor *tg_sqrt(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_sqrt_def, &x, 1, NULL, NULL);
}

/* ---- abs ----------------------------------------------------------------
 * y = |x|               x, y: any shape
 * VJP: dx += dy * sign(x), with sign(0) = 0 (as PyTorch)
 * NOTE: kink at 0; samples keep |x| >= 0.1.
 */
TG_EW_FORWARD_ST(abs_forward, y[i] = TGM(fabs, x[i]))

TG_EW_BACKWARD(abs_backward, , TG_KEEP(TG_FLIP(dy[i], x[i] < 0), x[i] > 0 || x[i] < 0))

static tg_status abs_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, -2, 2, 0.1); }

static void abs_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 1, 2); }

const tg_op_def tg_op_abs_def = {
    .name = "abs", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = abs_forward, .backward = abs_backward,
    .sample = abs_sample, .n_samples = TG_EW_N_SHAPES, .cost = abs_cost,
};

tg_tensor *tg_abs(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_abs_def, &x, 1, NULL, NULL);
}

/* ---- square -------------------------------------------------------------
 * y = x * x             x, y: any shape
 * VJP: dx += 2 x dy
 */
TG_EW_FORWARD_ST(square_forward, y[i] = x[i] * x[i])

TG_EW_BACKWARD(square_backward, , (x[i] + x[i]) * dy[i])

static tg_status square_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, -2, 2, 0); }

static void square_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 1, 2); }

const tg_op_def tg_op_square_def = {
    .name = "square", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = square_forward, .backward = square_backward,
    .sample = square_sample, .n_samples = TG_EW_N_SHAPES, .cost = square_cost,
};

tg_tensor *tg_square(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_square_def, &x, 1, NULL, NULL);
}

/* ---- clamp --------------------------------------------------------------
 * y = min(max(x, lo), hi)        x, y: any shape; p.f[0] = lo, p.f[1] = hi
 * VJP: dx += dy where lo <= x <= hi, else nothing
 * NOTE: at exactly x == lo or x == hi the gradient passes (PyTorch's choice:
 * its clamp backward masks with lo <= x && x <= hi), so lo == hi passes the
 * gradient only for x equal to that value. NaN x gives NaN and no gradient.
 * Bounds may be infinite; NaN bounds or lo > hi are TG_ERR_ARG. The bounds
 * are rounded to the element type first, so output and mask agree in f32.
 * Samples keep x at least 0.1 away from lo and hi.
 */
static tg_status clamp_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    double lo = n->p.f[0], hi = n->p.f[1];
    if (isnan(lo) || isnan(hi))
        return tg_op_fail(n, TG_ERR_ARG, "NaN bound (lo %g, hi %g)", lo, hi);
    if (lo > hi)
        return tg_op_fail(n, TG_ERR_ARG, "lo %g > hi %g", lo, hi);
    return tg_shape_as_input(n, dt, ndim, shape);
}

TG_EW_FORWARD_ST(clamp_forward,
              const T lo = p0, hi = p1;
              T v = x[i] < lo ? lo : x[i];   /* NaN passes through */
              y[i] = v > hi ? hi : v)

TG_EW_BACKWARD(clamp_backward,
               const T lo = p0; const T hi = p1,
               TG_KEEP(dy[i], x[i] >= lo && x[i] <= hi))

static tg_status clamp_sample(tg_node *n, tg_dtype dt, int v)
{
    static const double bounds[TG_EW_N_SHAPES][2] = { {-0.5, 0.7}, {0.0, 1.0}, {-1.0, 0.5} };
    if (v < 0 || v >= TG_EW_N_SHAPES)
        return TG_ERR_ARG;
    double lo = bounds[v][0], hi = bounds[v][1];
    int64_t shape[3];
    int nd = tg_ew_sample_shape(v, shape);
    tg_tensor *x = tg_tensor_new(n->ctx, dt, nd, shape);
    if (!x)
        return tg_ctx_status(n->ctx);
    tg_rng *r = tg_ctx_rng(n->ctx);
    for (int64_t i = 0; i < x->numel; i++) {
        double u;
        do   /* uniform in [-1.5, 1.5) at least 0.1 from either bound */
            u = -1.5 + 3.0 * tg_rng_uniform(r);
        while (fabs(u - lo) < 0.1 || fabs(u - hi) < 0.1);
        tg_tensor_set(x, i, u);
    }
    n->n_in = 1;
    n->in[0] = x;
    n->p.f[0] = lo;
    n->p.f[1] = hi;
    return TG_OK;
}

static void clamp_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 2, 3); }

const tg_op_def tg_op_clamp_def = {
    .name = "clamp", .n_in = 1, .overwrites = 1,
    .shape = clamp_shape, .forward = clamp_forward, .backward = clamp_backward,
    .sample = clamp_sample, .n_samples = TG_EW_N_SHAPES, .cost = clamp_cost,
};

tg_tensor *tg_clamp(tg_ctx *ctx, tg_tensor *x, double lo, double hi)
{
    tg_op_params p = {0};
    p.f[0] = lo;
    p.f[1] = hi;
    return tg_apply(ctx, &tg_op_clamp_def, &x, 1, &p, NULL);
}
