/* test_unary.c — neg, exp, log, sqrt, abs, square, clamp: hand-computed
 * values and gradients in f64 and f32, IEEE edge values, clamp's bounds, the
 * descriptors, a recorded chain, and the errors. (Every sample variant is
 * gradient-checked by test_ops_grad.c, the PyTorch reference cases are in
 * test_reference.c.) */
#include "tapegrad.h"
#include "test.h"
#include "test_util.h"

#include <string.h>

#define M_E_ 2.718281828459045

static tg_tensor *apply(tg_ctx *ctx, tg_tensor *x, const tu_op1 *rc)
{
    const char *op = rc->op;
    if (!strcmp(op, "neg"))    return tg_neg(ctx, x);
    if (!strcmp(op, "exp"))    return tg_exp(ctx, x);
    if (!strcmp(op, "log"))    return tg_log(ctx, x);
    if (!strcmp(op, "sqrt"))   return tg_sqrt(ctx, x);
    if (!strcmp(op, "abs"))    return tg_abs(ctx, x);
    if (!strcmp(op, "square")) return tg_square(ctx, x);
    if (!strcmp(op, "clamp"))  return tg_clamp(ctx, x, rc->p0, rc->p1);
    return NULL;
}

static const char *const ops[] = { "neg", "exp", "log", "sqrt", "abs", "square", "clamp" };
#define N_OPS (int)(sizeof ops / sizeof ops[0])

static void test_hand_values(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        double tol = d ? 1e-6 : 1e-15;
        double y[4], g[4];
        const double x1[3] = { 2.0, -0.5, 0.0 };
        if (tu_run1(apply, TU_OP1("neg", 0, 0), dt, 3, x1, y, g)) {
            TEST_CHECK(y[0] == -2 && y[1] == 0.5 && y[2] == 0);
            TEST_CHECK(g[0] == -1 && g[1] == -1 && g[2] == -1);
        }
        const double xe[3] = { 0.0, 1.0, -1.0 };
        if (tu_run1(apply, TU_OP1("exp", 0, 0), dt, 3, xe, y, g)) {
            TEST_CHECK(y[0] == 1 && g[0] == 1);
            TEST_CLOSE(y[1], M_E_, 0, tol);
            TEST_CLOSE(g[2], 1 / M_E_, 0, tol);
        }
        const double xl[2] = { 1.0, 4.0 };
        if (tu_run1(apply, TU_OP1("log", 0, 0), dt, 2, xl, y, g)) {
            TEST_CHECK(y[0] == 0 && g[0] == 1);
            TEST_CLOSE(y[1], 2 * 0.69314718055994531, 0, tol);
            TEST_CHECK(g[1] == 0.25);
        }
        const double xs[2] = { 4.0, 0.25 };
        if (tu_run1(apply, TU_OP1("sqrt", 0, 0), dt, 2, xs, y, g)) {
            TEST_CHECK(y[0] == 2 && g[0] == 0.25);
            TEST_CHECK(y[1] == 0.5 && g[1] == 1);
        }
        const double xa[3] = { -3.0, 0.0, 2.5 };
        if (tu_run1(apply, TU_OP1("abs", 0, 0), dt, 3, xa, y, g)) {
            TEST_CHECK(y[0] == 3 && y[1] == 0 && y[2] == 2.5);
            TEST_CHECK(g[0] == -1 && g[1] == 0 && g[2] == 1);   /* gradient 0 at the kink */
        }
        const double xq[2] = { -3.0, 0.5 };
        if (tu_run1(apply, TU_OP1("square", 0, 0), dt, 2, xq, y, g)) {
            TEST_CHECK(y[0] == 9 && y[1] == 0.25);
            TEST_CHECK(g[0] == -6 && g[1] == 1);
        }
        /* A scalar (ndim 0) input. */
        const double x0[1] = { 9.0 };
        if (tu_run1(apply, TU_OP1("sqrt", 0, 0), dt, 0, x0, y, g))
            TEST_CHECK(y[0] == 3 && fabs(g[0] - 1.0 / 6) < tol);
    }
}

/* IEEE edge values are results, not errors. */
static void test_ieee_edges(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        double y[3], g[3];
        const double z[3] = { 0.0, -1.0, 1e4 };
        if (tu_run1(apply, TU_OP1("log", 0, 0), dt, 3, z, y, g)) {
            TEST_CHECK(isinf(y[0]) && y[0] < 0);     /* log(0) = -inf */
            TEST_CHECK(isinf(g[0]) && g[0] > 0);     /* 1/0 = +inf    */
            TEST_CHECK(isnan(y[1]));                 /* log(-1) = NaN */
            TEST_CLOSE(y[2], log(1e4), 0, 1e-7);
        }
        if (tu_run1(apply, TU_OP1("sqrt", 0, 0), dt, 3, z, y, g)) {
            TEST_CHECK(y[0] == 0 && isinf(g[0]) && g[0] > 0);
            TEST_CHECK(isnan(y[1]));
            TEST_CHECK(y[2] == 100 && g[2] == (d ? (double)0.005f : 0.005));
        }
        const double big[2] = { 1e4, -1e4 };
        if (tu_run1(apply, TU_OP1("exp", 0, 0), dt, 2, big, y, g)) {
            TEST_CHECK(isinf(y[0]) && isinf(g[0]));  /* overflow, as IEEE exp */
            TEST_CHECK(y[1] == 0 && g[1] == 0);
        }
        if (tu_run1(apply, TU_OP1("square", 0, 0), dt, 2, big, y, g))
            TEST_CHECK(y[0] == 1e8 && g[1] == -2e4);
        const double nan1[1] = { NAN };
        if (tu_run1(apply, TU_OP1("abs", 0, 0), dt, 1, nan1, y, g))
            TEST_CHECK(isnan(y[0]));
    }
}

static void test_clamp(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        double y[7], g[7];
        /* Below, at lo, inside, at hi, above, NaN. The gradient passes at
         * exactly a bound, as PyTorch's clamp backward does. */
        const double x[6] = { -2.0, -0.5, 0.25, 0.75, 1.0, NAN };
        if (tu_run1(apply, TU_OP1("clamp", -0.5, 0.75), dt, 6, x, y, g)) {
            const double wy[5] = { -0.5, -0.5, 0.25, 0.75, 0.75 }, wg[5] = { 0, 1, 1, 1, 0 };
            for (int i = 0; i < 5; i++)
                TEST_CHECK_MSG(y[i] == wy[i] && g[i] == wg[i], "clamp %s [%d]: %g, %g",
                               tg_dtype_name(dt), i, y[i], g[i]);
            TEST_CHECK(isnan(y[5]) && g[5] == 0);
        }
        /* One-sided with an infinite bound. */
        const double x2[3] = { -1e30, 0.5, 3.0 };
        if (tu_run1(apply, TU_OP1("clamp", -INFINITY, 1.0), dt, 3, x2, y, g)) {
            TEST_CHECK(y[0] == (d ? (double)-1e30f : -1e30) && y[1] == 0.5 && y[2] == 1);
            TEST_CHECK(g[0] == 1 && g[1] == 1 && g[2] == 0);
        }
        /* lo == hi: constant output; gradient only where x equals it. */
        const double x3[3] = { -1.0, 0.5, 2.0 };
        if (tu_run1(apply, TU_OP1("clamp", 0.5, 0.5), dt, 3, x3, y, g)) {
            TEST_CHECK(y[0] == 0.5 && y[1] == 0.5 && y[2] == 0.5);
            TEST_CHECK(g[0] == 0 && g[1] == 1 && g[2] == 0);
        }
    }

    /* Parameter errors. */
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(2, 3));
    TEST_CHECK(tg_clamp(ctx, x, 1.0, 0.0) == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_ARG);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), "clamp: lo 1 > hi 0") != NULL, "'%s'", tg_ctx_error(ctx));
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_clamp(ctx, x, NAN, 1.0) == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_ARG && strstr(tg_ctx_error(ctx), "clamp: NaN bound") != NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_clamp(ctx, x, -1.0, NAN) == NULL && tg_ctx_status(ctx) == TG_ERR_ARG);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_clamp(ctx, x, -1.0, 1.0) != NULL);
    tg_ctx_free(ctx);
}

static void test_errors(void)
{
    for (int i = 0; i < N_OPS; i++)
        tu_check_bad_input1(apply, TU_OP1(ops[i], -1.0, 1.0));
}

static void test_descriptors(void)
{
    for (int i = 0; i < N_OPS; i++)
        tu_check_op(ops[i], 2, TU_FWD_FLOPS | TU_EDGE_SHAPE | TU_EW_BYTES);
}

/* Recording: a chain of these ops lands on the tape, and only when a
 * gradient is wanted. */
static void test_chain(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    double xv[3] = { 0.7, 1.3, 2.2 };
    tg_tensor *x = tg_tensor_from(ctx, TG_F64, TG_DIMS(3), xv);
    tg_tensor_requires_grad(x);
    /* y = -|clamp(sqrt(exp(log x)), 0, 1.2)|: -sqrt(x) below the bound. */
    tg_tensor *y = tg_neg(ctx, tg_abs(ctx, tg_clamp(ctx, tg_sqrt(ctx, tg_exp(ctx, tg_log(ctx, x))), 0, 1.2)));
    TEST_CHECK(y && tg_tape_size(ctx) == 6);
    double sv[3] = { 1, 1, 1 };
    TEST_CHECK(tg_backward_seed(ctx, y, tg_tensor_from(ctx, TG_F64, TG_DIMS(3), sv)) == TG_OK);
    for (int i = 0; i < 3; i++) {
        double s = sqrt(xv[i]);
        TEST_CLOSE(tg_tensor_get(y, i), -(s < 1.2 ? s : 1.2), 1e-15, 1e-14);
        TEST_CLOSE(tg_tensor_grad_get(x, i), s < 1.2 ? -0.5 / s : 0.0, 1e-15, 1e-13);
    }
    tg_tensor *c = tg_tensor_from(ctx, TG_F64, TG_DIMS(3), xv);
    size_t before = tg_tape_size(ctx);
    TEST_CHECK(tg_square(ctx, c) != NULL && tg_tape_size(ctx) == before);
    tg_ctx_free(ctx);
}

int main(void)
{
    test_hand_values();
    test_ieee_edges();
    test_clamp();
    test_errors();
    test_descriptors();
    test_chain();
    return test_report("test_unary");
}
