/* test_activation.c — sigmoid, tanh, relu, leaky_relu, elu, softplus, silu,
 * gelu (both forms): hand-computed values and gradients (at the kinks too),
 * stability at x = +-1e4 in both dtypes, the descriptors, a chain, and the
 * errors. (Every sample variant is gradient-checked by test_ops_grad.c, the
 * PyTorch reference cases are in test_reference.c.) */
#include "tapegrad.h"
#include "test.h"
#include "test_util.h"

#include <string.h>

static tg_tensor *apply(tg_ctx *ctx, tg_tensor *x, const tu_op1 *rc)
{
    const char *op = rc->op;
    if (!strcmp(op, "sigmoid"))    return tg_sigmoid(ctx, x);
    if (!strcmp(op, "tanh"))       return tg_tanh(ctx, x);
    if (!strcmp(op, "relu"))       return tg_relu(ctx, x);
    if (!strcmp(op, "leaky_relu")) return tg_leaky_relu(ctx, x, rc->p0);
    if (!strcmp(op, "elu"))        return tg_elu(ctx, x, rc->p0);
    if (!strcmp(op, "softplus"))   return tg_softplus(ctx, x);
    if (!strcmp(op, "silu"))       return tg_silu(ctx, x);
    if (!strcmp(op, "gelu"))       return tg_gelu(ctx, x, (tg_gelu_approx)rc->p0);
    return NULL;
}

static const char *const ops[] = {
    "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "silu", "gelu",
};
#define N_OPS (int)(sizeof ops / sizeof ops[0])

static void test_hand_values(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        double tol = d ? 1e-6 : 1e-15;
        double y[4], g[4];
        const double x0[1] = { 0.0 }, x1[1] = { 1.0 };

        if (tu_run1(apply, TU_OP1("sigmoid", 0, 0), dt, 1, x0, y, g))
            TEST_CHECK(y[0] == 0.5 && g[0] == 0.25);
        const double xs[2] = { -40.0, 2.0 };
        if (tu_run1(apply, TU_OP1("sigmoid", 0, 0), dt, 2, xs, y, g)) {
            TEST_CLOSE(y[0], 4.248354255291589e-18, 0, tol);   /* relative accuracy far out */
            TEST_CLOSE(y[1], 0.88079707797788231, 0, tol);
            TEST_CLOSE(g[1], 0.88079707797788231 * (1 - 0.88079707797788231), 0, 4 * tol);
        }

        if (tu_run1(apply, TU_OP1("tanh", 0, 0), dt, 1, x0, y, g))
            TEST_CHECK(y[0] == 0 && g[0] == 1);
        const double xh[1] = { 0.5 };
        if (tu_run1(apply, TU_OP1("tanh", 0, 0), dt, 1, xh, y, g)) {
            TEST_CLOSE(y[0], 0.46211715726000974, 0, tol);
            TEST_CLOSE(g[0], 0.7864477329659274, 0, 2 * tol);
        }

        /* relu: gradient 0 at exactly 0, as PyTorch; NaN stays NaN. */
        const double xr[4] = { -1.0, 0.0, 2.0, NAN };
        if (tu_run1(apply, TU_OP1("relu", 0, 0), dt, 4, xr, y, g)) {
            TEST_CHECK(y[0] == 0 && y[1] == 0 && y[2] == 2 && isnan(y[3]));
            TEST_CHECK(g[0] == 0 && g[1] == 0 && g[2] == 1 && g[3] == 0);
        }

        /* leaky_relu: slope at exactly 0 (as PyTorch). */
        const double xl[3] = { -2.0, 0.0, 3.0 };
        if (tu_run1(apply, TU_OP1("leaky_relu", 0.25, 0), dt, 3, xl, y, g)) {
            TEST_CHECK(y[0] == -0.5 && y[1] == 0 && y[2] == 3);
            TEST_CHECK(g[0] == 0.25 && g[1] == 0.25 && g[2] == 1);
        }

        /* elu: alpha * (e^x - 1) below 0, gradient alpha * e^x (alpha at 0). */
        const double xe[3] = { -1.0, 0.0, 1.5 };
        if (tu_run1(apply, TU_OP1("elu", 2.0, 0), dt, 3, xe, y, g)) {
            TEST_CLOSE(y[0], 2 * -0.6321205588285577, 0, tol);
            TEST_CLOSE(g[0], 2 * 0.36787944117144233, 0, tol);
            TEST_CHECK(y[1] == 0 && g[1] == 2 && y[2] == 1.5 && g[2] == 1);
        }
        const double xt[1] = { -1e-9 };   /* expm1 keeps relative accuracy near 0 */
        if (tu_run1(apply, TU_OP1("elu", 1.0, 0), dt, 1, xt, y, g))
            TEST_CLOSE(y[0], d ? (double)(float)-1e-9 : -9.999999995e-10, 0, tol);

        if (tu_run1(apply, TU_OP1("softplus", 0, 0), dt, 1, x0, y, g)) {
            TEST_CLOSE(y[0], 0.6931471805599453, 0, tol);
            TEST_CHECK(g[0] == 0.5);
        }
        const double xp[1] = { -40.0 };
        if (tu_run1(apply, TU_OP1("softplus", 0, 0), dt, 1, xp, y, g)) {
            TEST_CLOSE(y[0], 4.248354255291589e-18, 0, tol);
            TEST_CLOSE(g[0], 4.248354255291589e-18, 0, 4 * tol);
        }

        if (tu_run1(apply, TU_OP1("silu", 0, 0), dt, 1, x0, y, g))
            TEST_CHECK(y[0] == 0 && g[0] == 0.5);
        if (tu_run1(apply, TU_OP1("silu", 0, 0), dt, 1, x1, y, g)) {
            TEST_CLOSE(y[0], 0.7310585786300049, 0, tol);
            TEST_CLOSE(g[0], 0.9276705118714869, 0, 4 * tol);
        }

        for (int a = 0; a < 2; a++) {
            if (tu_run1(apply, TU_OP1("gelu", a, 0), dt, 1, x0, y, g))
                TEST_CHECK(y[0] == 0 && g[0] == 0.5);
            if (tu_run1(apply, TU_OP1("gelu", a, 0), dt, 1, x1, y, g)) {
                TEST_CLOSE(y[0], a ? 0.8411919906082768 : 0.8413447460685429, 0, tol);
                TEST_CLOSE(g[0], a ? 1.0829640838457826 : 1.0833154705876864, 0, 4 * tol);
            }
        }
        /* erfc keeps relative accuracy in the left tail. */
        const double x3[1] = { -3.0 };
        if (tu_run1(apply, TU_OP1("gelu", TG_GELU_ERF, 0), dt, 1, x3, y, g))
            TEST_CLOSE(y[0], -0.004049694094890287, 0, d ? 1e-6 : 1e-14);
    }
}

/* Every op at x = -1e4, 1e4 (and the ends of the f32 range for the ones
 * that should survive them): finite values and gradients with the limits
 * the mathematics gives. */
static void test_stability(void)
{
    struct { const char *op; double p0; double ylo, yhi, glo, ghi; } c[] = {
        { "sigmoid",    0,    0,     1,   0,    0 },
        { "tanh",       0,   -1,     1,   0,    0 },
        { "relu",       0,    0,   1e4,   0,    1 },
        { "leaky_relu", 0.01, -100, 1e4, 0.01, 1 },
        { "elu",        1.0, -1,   1e4,   0,    1 },
        { "softplus",   0,    0,   1e4,   0,    1 },
        { "silu",       0,    0,   1e4,   0,    1 },
        { "gelu",       TG_GELU_ERF,  0, 1e4, 0, 1 },
        { "gelu",       TG_GELU_TANH, 0, 1e4, 0, 1 },
    };
    const double x[2] = { -1e4, 1e4 };
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
            double y[2], g[2];
            if (!tu_run1(apply, TU_OP1(c[k].op, c[k].p0, 0), dt, 2, x, y, g))
                continue;
            int fin = isfinite(y[0]) && isfinite(y[1]) && isfinite(g[0]) && isfinite(g[1]);
            TEST_CHECK_MSG(fin && tu_close(y[0], c[k].ylo, 1e-12, 1e-7) && tu_close(y[1], c[k].yhi, 1e-12, 1e-7) &&
                           tu_close(g[0], c[k].glo, 1e-12, 1e-7) && tu_close(g[1], c[k].ghi, 1e-12, 1e-7),
                           "%s(%g) %s at -+1e4: y = %g, %g; dy/dx = %g, %g", c[k].op, c[k].p0,
                           tg_dtype_name(dt), y[0], y[1], g[0], g[1]);
        }
        /* The bounded ones stay finite at the ends of the f32 range too. */
        const char *bounded[] = { "sigmoid", "tanh", "softplus", "silu" };
        const double far[2] = { -3e38, 3e38 };
        for (int k = 0; k < 4; k++) {
            double y[2], g[2];
            if (tu_run1(apply, TU_OP1(bounded[k], 0, 0), dt, 2, far, y, g))
                TEST_CHECK_MSG(isfinite(y[0]) && isfinite(y[1]) && isfinite(g[0]) && isfinite(g[1]),
                               "%s %s at -+3e38", bounded[k], tg_dtype_name(dt));
        }
    }
}

static void test_errors(void)
{
    for (int i = 0; i < N_OPS; i++)
        tu_check_bad_input1(apply, TU_OP1(ops[i], 0.5, 0));

    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(4));
    TEST_CHECK(tg_gelu(ctx, x, (tg_gelu_approx)2) == NULL && tg_ctx_status(ctx) == TG_ERR_ARG);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), "gelu: approx 2 is neither") != NULL, "'%s'", tg_ctx_error(ctx));
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_leaky_relu(ctx, x, NAN) == NULL && tg_ctx_status(ctx) == TG_ERR_ARG);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), "leaky_relu: slope must be finite") != NULL, "'%s'", tg_ctx_error(ctx));
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_elu(ctx, x, INFINITY) == NULL && tg_ctx_status(ctx) == TG_ERR_ARG);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), "elu: alpha must be finite") != NULL, "'%s'", tg_ctx_error(ctx));
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_leaky_relu(ctx, x, -0.5) != NULL && tg_elu(ctx, x, 0.0) != NULL);
    tg_ctx_free(ctx);
}

static void test_descriptors(void)
{
    for (int i = 0; i < N_OPS; i++)
        tu_check_op(ops[i], 2, TU_FWD_FLOPS | TU_EDGE_SHAPE | TU_EW_BYTES);
}

/* A small network-shaped chain: gradients flow through several activations
 * into one leaf, summed over two uses of it. */
static void test_chain(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    double xv[2] = { -0.8, 1.1 };
    tg_tensor *x = tg_tensor_from(ctx, TG_F64, TG_DIMS(2), xv);
    tg_tensor_requires_grad(x);
    /* y1 = tanh(relu(x)), y2 = sigmoid(x): two sweeps accumulate into x. */
    tg_tensor *y1 = tg_tanh(ctx, tg_relu(ctx, x)), *y2 = tg_sigmoid(ctx, x);
    tg_tensor *one = tg_tensor_fill(ctx, TG_F64, TG_DIMS(2), 1.0);
    TEST_CHECK(tg_backward_seed(ctx, y1, one) == TG_OK && tg_backward_seed(ctx, y2, one) == TG_OK);
    for (int i = 0; i < 2; i++) {
        double t = tanh(xv[i] > 0 ? xv[i] : 0), s = 1 / (1 + exp(-xv[i]));
        double want = (xv[i] > 0 ? 1 - t * t : 0) + s * (1 - s);
        TEST_CLOSE(tg_tensor_grad_get(x, i), want, 0, 1e-14);
    }
    tg_ctx_free(ctx);
}

/* gelu (erf) at the infinities, in f32 (16-lane kernels where the build has
 * them) and f64 (portable forms): the limits, never 0 * inf = NaN, so every
 * build gives the same values. */
static void test_gelu_infinities(void)
{
    const double xs[3] = { -INFINITY, INFINITY, -1e4 }, ys[3] = { -0.0, INFINITY, -0.0 }, ds[3] = { 0, 1, 0 };
    for (int d = 0; d < 2; d++) {
        tg_ctx *ctx = tg_ctx_new(NULL);
        tg_tensor *x = tg_tensor_new(ctx, d ? TG_F64 : TG_F32, TG_DIMS(3));
        for (int i = 0; i < 3; i++)
            tg_tensor_set(x, i, xs[i]);
        TEST_CHECK(tg_tensor_requires_grad(x) == TG_OK);
        tg_tensor *y = tg_gelu(ctx, x, TG_GELU_ERF);
        TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, y)) == TG_OK);
        for (int i = 0; y && i < 3; i++) {
            double yv = tg_tensor_get(y, i), dv = tg_tensor_grad_get(x, i);
            TEST_CHECK_MSG(yv == ys[i] && signbit(yv) == signbit(ys[i]) && dv == ds[i],
                           "gelu %s at %g: y %g, dy/dx %g; expected %g, %g", d ? "f64" : "f32", xs[i], yv, dv,
                           ys[i], ds[i]);
        }
        tg_ctx_free(ctx);
    }
}

int main(void)
{
    test_hand_values();
    test_stability();
    test_errors();
    test_descriptors();
    test_chain();
    test_gelu_infinities();
    return test_report("test_activation");
}
