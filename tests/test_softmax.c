/* test_softmax.c — softmax and log_softmax: hand values, stability at
 * +-1e4, every axis of a 3-d tensor against a naive loop, the descriptors,
 * and errors. (Every sample variant is gradient-checked by test_ops_grad.c,
 * the PyTorch reference cases are in test_reference.c.) */
#include "tapegrad.h"
#include "test.h"
#include "test_util.h"

#include <float.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

static tg_tensor *call_smx(tg_ctx *ctx, int log_form, tg_tensor *x, int axis)
{
    return log_form ? tg_log_softmax(ctx, x, axis) : tg_softmax(ctx, x, axis);
}

/* ---- hand values, stability, special values --------------------------------- */

static void test_hand(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    double v[3] = {0, log(2.0), log(3.0)};
    tg_tensor *x = tg_tensor_from(ctx, TG_F64, TG_DIMS(3), v);
    tg_tensor *y = tg_softmax(ctx, x, 0), *l = tg_log_softmax(ctx, x, -1);
    for (int i = 0; i < 3; i++) {
        TEST_CLOSE(tg_tensor_get(y, i), (i + 1) / 6.0, 0, 1e-15);
        TEST_CLOSE(tg_tensor_get(l, i), log((i + 1) / 6.0), 0, 1e-15);
    }
    /* Softmax is shift invariant; a size-1 axis gives 1 (log: 0). */
    double w[2 * 3] = {1, 2, 3, 101, 102, 103};
    y = tg_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(2, 3), w), 1);
    for (int i = 0; i < 3; i++)
        TEST_CLOSE(tg_tensor_get(y, i), tg_tensor_get(y, 3 + i), 0, 1e-15);
    y = tg_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(2, 3), w), 0);  /* columns: 1 vs 101 */
    TEST_CLOSE(tg_tensor_get(y, 0), 1 / (1 + exp(100.0)), 0, 1e-14);
    TEST_CLOSE(tg_tensor_get(y, 3), 1 / (1 + exp(-100.0)), 0, 1e-15);
    l = tg_log_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(2, 3), w), 0);
    TEST_CLOSE(tg_tensor_get(l, 0), -100 - log1p(exp(-100.0)), 0, 1e-15);
    y = tg_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(3, 1), w), -1);
    l = tg_log_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(3, 1), w), 1);
    for (int i = 0; i < 3; i++)
        TEST_CHECK(tg_tensor_get(y, i) == 1 && tg_tensor_get(l, i) == 0);
    /* A scalar is a slice of one, along axis 0 or -1. */
    y = tg_softmax(ctx, tg_tensor_scalar(ctx, TG_F32, 7), -1);
    l = tg_log_softmax(ctx, tg_tensor_scalar(ctx, TG_F32, 7), 0);
    TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 1 && l && tg_tensor_get(l, 0) == 0);
    /* Empty tensors pass through. */
    y = tg_softmax(ctx, tg_tensor_new(ctx, TG_F32, TG_DIMS(2, 0)), -1);
    l = tg_log_softmax(ctx, tg_tensor_new(ctx, TG_F64, TG_DIMS(0, 3)), 1);
    TEST_CHECK(y && y->numel == 0 && y->shape[0] == 2 && l && l->numel == 0 && l->shape[1] == 3);
    /* PyTorch's values for degenerate slices: all -inf gives NaN. */
    double ninf[2] = {-INFINITY, -INFINITY};
    y = tg_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(2), ninf), 0);
    TEST_CHECK(y && isnan(tg_tensor_get(y, 0)));
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

static void test_stability(void)
{
    for (int d = 0; d < 2; d++)
        for (int lf = 0; lf < 2; lf++) {
            tg_dtype dt = d ? TG_F32 : TG_F64;
            tg_ctx *ctx = tg_ctx_new(NULL);
            double v[3] = {1e4, 0, -1e4}, dyv[3] = {0.3, -1.2, 2.5};
            static const int64_t s3[1] = {3};
            tg_tensor *x = tu_tensor(ctx, dt, 1, s3, v, 1);
            tg_tensor *y = call_smx(ctx, lf, x, -1);
            TEST_CHECK(y != NULL);
            static const double want_y[2][3] = { {1, 0, 0}, {0, -1e4, -2e4} };
            for (int i = 0; i < 3; i++)
                TEST_CHECK_MSG(tg_tensor_get(y, i) == want_y[lf][i], "%s %s y[%d] = %g",
                               lf ? "log_softmax" : "softmax", tg_dtype_name(dt), i, tg_tensor_get(y, i));
            TEST_CHECK(tg_backward_seed(ctx, y, tu_tensor(ctx, dt, 1, s3, dyv, 0)) == TG_OK);
            /* softmax: y (dy - y.dy) = 0; log_softmax: dy - [1 0 0] * sum dy */
            double sum = dyv[0] + dyv[1] + dyv[2];
            for (int i = 0; i < 3; i++) {
                double g = tg_tensor_grad_get(x, i);
                TEST_CHECK(isfinite(g));
                TEST_CLOSE(g, lf ? dyv[i] - (i == 0) * sum : 0.0, 1e-6, 0);
            }
            tg_ctx_free(ctx);
        }
}

/* ---- every axis of 3-d shapes (and long slices) vs a naive loop ------------- */

static void check_against_naive(tg_ctx *ctx, int lf, int nd, const int64_t *shape, int axis)
{
    tg_tensor *x = tg_tensor_randn(ctx, TG_F64, nd, shape, 0, 3);
    tg_tensor_requires_grad(x);
    tg_tensor *y = call_smx(ctx, lf, x, axis);
    TEST_CHECK_MSG(y != NULL, "%s", tg_ctx_error(ctx));
    if (!y)
        return;
    tg_tensor *dy = tg_tensor_randn(ctx, TG_F64, nd, shape, 0, 1);
    TEST_CHECK(tg_backward_seed(ctx, y, dy) == TG_OK);
    int a = axis < 0 ? axis + nd : axis;
    int64_t outer = 1, A = shape[a], inner = 1;
    for (int k = 0; k < nd; k++) {
        if (k < a)
            outer *= shape[k];
        if (k > a)
            inner *= shape[k];
    }
    const double *xv = x->data, *g = dy->data;
    int bad = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double m = -INFINITY, s = 0, gy = 0, gs = 0;
            for (int64_t j = 0; j < A; j++)
                m = fmax(m, xv[(o * A + j) * inner + i]);
            for (int64_t j = 0; j < A; j++)
                s += exp(xv[(o * A + j) * inner + i] - m);
            for (int64_t j = 0; j < A; j++) {
                int64_t k = (o * A + j) * inner + i;
                double p = exp(xv[k] - m) / s;
                gy += g[k] * p;
                gs += g[k];
            }
            for (int64_t j = 0; j < A; j++) {
                int64_t k = (o * A + j) * inner + i;
                double p = exp(xv[k] - m) / s;
                double wy = lf ? xv[k] - m - log(s) : p;
                double wdx = lf ? g[k] - p * gs : p * (g[k] - gy);
                bad += !(fabs(tg_tensor_get(y, k) - wy) <= 1e-12 * (1 + fabs(wy)));
                bad += !(fabs(tg_tensor_grad_get(x, k) - wdx) <= 1e-12 * (1 + fabs(wdx)));
            }
        }
    TEST_CHECK_MSG(bad == 0, "%s axis %d of %dd: %d mismatches", lf ? "log_softmax" : "softmax", axis, nd, bad);
}

/* ---- f32 rows (the blocked exp kernel) vs the same rows in double ----------
 * Lengths around the block of 64 and kinds that take each path: a narrow
 * range (exps normal), a wide one (exps down to 0 through the subnormals),
 * -inf entries (masked logits), and rows with a NaN or +inf (all NaN).
 * The reference takes d = x - max rounded to float, as the f32 kernel does
 * (the rounding of d alone moves exp(d) by up to |d| 2^-24 relative). */
static void test_f32_rows(void)
{
    static const int64_t lens[] = { 1, 15, 64, 100, 4133 };
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_rng r;
    tg_rng_seed(&r, 11);
    for (int lf = 0; lf < 2; lf++)
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (int kind = 0; kind < 5; kind++) {
                int64_t A = lens[li], rows = 3;
                tg_tensor *x = tg_tensor_new(ctx, TG_F32, TG_DIMS(rows, A));
                float *xv = x->data;
                for (int64_t k = 0; k < rows * A; k++) {
                    double u = tg_rng_uniform(&r);
                    xv[k] = (float)(kind == 1 ? -150 * u : 6 * u - 3);
                    if (kind == 2 && k % 3 == 1)
                        xv[k] = -INFINITY;
                }
                if (kind >= 3)
                    xv[A / 2] = kind == 3 ? NAN : INFINITY;
                tg_tensor *y = call_smx(ctx, lf, x, -1);
                TEST_CHECK_MSG(y != NULL, "%s", tg_ctx_error(ctx));
                if (!y)
                    continue;
                const float *yv = y->data;
                int bad = 0;
                for (int64_t o = 0; o < rows; o++) {
                    const float *xr = xv + o * A;
                    double m = -INFINITY, s = 0;
                    int nan = 0;
                    for (int64_t j = 0; j < A; j++) {
                        m = xr[j] > m ? xr[j] : m;
                        nan |= xr[j] != xr[j];
                    }
                    for (int64_t j = 0; j < A; j++)
                        s += exp((double)(float)(xr[j] - (float)m));
                    for (int64_t j = 0; j < A; j++) {
                        double got = yv[o * A + j], d = (float)(xr[j] - (float)m);
                        if (nan || isinf(m)) {
                            bad += !isnan(got);
                            continue;
                        }
                        double want = lf ? d - log(s) : exp(d) / s;
                        if (isinf(want))
                            bad += got != want;
                        else    /* 2 ulp, or twice the smallest subnormal */
                            bad += !(fabs(got - want) <= 2 * FLT_EPSILON * fabs(want) + 0x1p-148);
                    }
                }
                TEST_CHECK_MSG(bad == 0, "%s f32, rows of %lld, kind %d: %d mismatches",
                               lf ? "log_softmax" : "softmax", (long long)A, kind, bad);
            }
    tg_ctx_free(ctx);
}

static void test_axes(void)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 11 });
    tg_ctx_set_poison(ctx, 1);
    static const int64_t s3[3] = {3, 4, 5}, s1[3] = {2, 1, 6}, l1[2] = {3, 1003}, l2[2] = {1003, 3};
    for (int lf = 0; lf < 2; lf++) {
        for (int axis = -3; axis < 3; axis++) {
            check_against_naive(ctx, lf, 3, s3, axis);
            check_against_naive(ctx, lf, 3, s1, axis);
        }
        check_against_naive(ctx, lf, 2, l1, -1);
        check_against_naive(ctx, lf, 2, l2, 0);
        tg_ctx_reset(ctx);
    }
    /* f32 rows still sum to 1 to f32 precision. */
    tg_tensor *x = tg_tensor_randn(ctx, TG_F32, TG_DIMS(7, 300), 0, 10);
    tg_tensor *y = tg_softmax(ctx, x, 0);
    for (int64_t c = 0; y && c < 300; c += 37) {
        double s = 0;
        for (int64_t r = 0; r < 7; r++)
            s += tg_tensor_get(y, r * 300 + c);
        TEST_CLOSE(s, 1.0, 1e-6, 0);
    }
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* ---- descriptors ------------------------------------------------------------- */

static void test_descriptors(void)
{
    tu_check_op("softmax", 2, TU_FWD_FLOPS | TU_EDGE_SHAPE);
    tu_check_op("log_softmax", 2, TU_FWD_FLOPS | TU_EDGE_SHAPE);
}

/* ---- errors ------------------------------------------------------------------ */

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(2, 3), -1, 1);
    TU_EXPECT_ERR(ctx, tg_softmax(ctx, x, 2), TG_ERR_ARG, "softmax: axis 2 out of range for 2 dims");
    TU_EXPECT_ERR(ctx, tg_log_softmax(ctx, x, -3), TG_ERR_ARG, "log_softmax: axis -3 out of range for 2 dims");
    TU_EXPECT_ERR(ctx, tg_softmax(ctx, tg_tensor_scalar(ctx, TG_F64, 1), 1), TG_ERR_ARG,
                 "softmax: axis 1 out of range for 0 dims");
    int32_t iv[3] = {1, 2, 3};
    tg_tensor *xi = tg_tensor_from(ctx, TG_I32, TG_DIMS(3), iv);
    TU_EXPECT_ERR(ctx, tg_softmax(ctx, xi, 0), TG_ERR_ARG, "softmax: input 0 is i32, expected f32 or f64");
    TU_EXPECT_ERR(ctx, tg_log_softmax(ctx, xi, -1), TG_ERR_ARG, "log_softmax: input 0 is i32");
    TU_EXPECT_ERR(ctx, tg_log_softmax(ctx, NULL, 0), TG_ERR_ARG, "log_softmax: input 0 is NULL");
    /* Sticky. */
    TEST_CHECK(tg_softmax(ctx, x, 5) == NULL && tg_softmax(ctx, x, 0) == NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_softmax(ctx, x, 0) != NULL);
    tg_ctx_free(ctx);
}

int main(void)
{
    test_hand();
    test_stability();
    test_axes();
    test_f32_rows();
    test_descriptors();
    test_errors();
    return test_report("test_softmax");
}
