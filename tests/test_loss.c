/* test_loss.c — the loss family: hand-computed cases in f64 and f32 (every
 * reduction, kinks, single samples), the stability cases (logits of +-1e4),
 * empty inputs, inputs aliased to each other, the descriptors, and the error
 * messages. (Every sample variant is gradient-checked by test_ops_grad.c,
 * the PyTorch reference cases are in test_reference.c.) */
#include "tapegrad.h"
#include "test.h"
#include "test_util.h"
#include "vmath.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* ---- hand-computed cases ------------------------------------------------- */

static tg_tensor *mk_labels(tg_ctx *ctx, int ndim, const int64_t *shape, const int32_t *v)
{
    return tg_tensor_from(ctx, TG_I32, ndim, shape, v);
}

static void test_mse_hand(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        tg_ctx *ctx = tg_ctx_new(NULL);
        const double pv[2] = {1, 2}, tv[2] = {0, 0};
        const int64_t sh[1] = {2};
        tg_tensor *p = tu_tensor(ctx, dt, 1, sh, pv, 1), *t = tu_tensor(ctx, dt, 1, sh, tv, 1);
        tg_tensor *y = tg_mse_loss(ctx, p, t, TG_REDUCE_MEAN);
        TEST_CHECK(y && y->ndim == 0);
        TEST_CHECK(tg_tensor_get(y, 0) == 2.5);                /* (1 + 4) / 2 */
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        TEST_CHECK(tg_tensor_grad_get(p, 0) == 1.0 && tg_tensor_grad_get(p, 1) == 2.0);
        TEST_CHECK(tg_tensor_grad_get(t, 0) == -1.0 && tg_tensor_grad_get(t, 1) == -2.0);

        y = tg_mse_loss(ctx, p, t, TG_REDUCE_SUM);
        TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 5.0);
        y = tg_mse_loss(ctx, p, t, TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 1 && y->shape[0] == 2);
        TEST_CHECK(tg_tensor_get(y, 0) == 1.0 && tg_tensor_get(y, 1) == 4.0);
        /* NONE with a seed: dp = 2 d * seed */
        tg_tensor_zero_grad(p);
        const double sv[2] = {3, -1};
        TEST_CHECK(tg_backward_seed(ctx, y, tu_tensor(ctx, dt, 1, sh, sv, 0)) == TG_OK);
        TEST_CHECK(tg_tensor_grad_get(p, 0) == 6.0 && tg_tensor_grad_get(p, 1) == -4.0);
        tg_ctx_free(ctx);
    }
}

static void test_l1_huber_hand(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        tg_ctx *ctx = tg_ctx_new(NULL);
        const int64_t sh[1] = {3};
        const double pv[3] = {1, -2, 3}, tv[3] = {0, 0, 3};
        tg_tensor *p = tu_tensor(ctx, dt, 1, sh, pv, 1), *t = tu_tensor(ctx, dt, 1, sh, tv, 1);
        tg_tensor *y = tg_l1_loss(ctx, p, t, TG_REDUCE_MEAN);
        TEST_CHECK(y && tg_tensor_get(y, 0) == 1.0);           /* (1 + 2 + 0) / 3 */
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        TEST_CLOSE(tg_tensor_grad_get(p, 0), 1.0 / 3, 0, 1e-7);
        TEST_CLOSE(tg_tensor_grad_get(p, 1), -1.0 / 3, 0, 1e-7);
        TEST_CHECK(tg_tensor_grad_get(p, 2) == 0.0);            /* d == 0: gradient 0 */
        TEST_CHECK(tg_tensor_grad_get(t, 2) == 0.0);
        TEST_CLOSE(tg_tensor_grad_get(t, 0), -1.0 / 3, 0, 1e-7);
        y = tg_l1_loss(ctx, p, t, TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 1 && tg_tensor_get(y, 1) == 2.0 && tg_tensor_get(y, 2) == 0.0);

        /* huber, delta 1: d = 0.5 -> 0.125; d = -3 -> 1 * (3 - 0.5) = 2.5; d = 1 -> 0.5 (linear branch) */
        const double hp[3] = {0.5, -3, 1}, hz[3] = {0, 0, 0};
        tg_tensor *q = tu_tensor(ctx, dt, 1, sh, hp, 1), *z = tu_tensor(ctx, dt, 1, sh, hz, 1);
        y = tg_huber_loss(ctx, q, z, 1.0, TG_REDUCE_SUM);
        TEST_CHECK(y && tg_tensor_get(y, 0) == 3.125);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        TEST_CHECK(tg_tensor_grad_get(q, 0) == 0.5 && tg_tensor_grad_get(q, 1) == -1.0 &&
                   tg_tensor_grad_get(q, 2) == 1.0);
        TEST_CHECK(tg_tensor_grad_get(z, 0) == -0.5 && tg_tensor_grad_get(z, 1) == 1.0);
        /* delta 2: d = -3 -> 2 * (3 - 1) = 4; d = 1 -> 0.5 */
        y = tg_huber_loss(ctx, q, z, 2.0, TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 1 && tg_tensor_get(y, 0) == 0.125 && tg_tensor_get(y, 1) == 4.0 &&
                   tg_tensor_get(y, 2) == 0.5);
        y = tg_huber_loss(ctx, q, z, 2.0, TG_REDUCE_MEAN);
        TEST_CLOSE(tg_tensor_get(y, 0), 4.625 / 3, 0, 1e-7);
        tg_ctx_free(ctx);
    }
}

static void test_ce_hand(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        double tol = f ? 1e-6 : 1e-15;
        tg_ctx *ctx = tg_ctx_new(NULL);
        /* uniform logits over C = 5 classes: loss log 5 per row, whatever the label */
        const int64_t sh[2] = {3, 5}, sl[1] = {3};
        double xv[15];
        for (int i = 0; i < 15; i++)
            xv[i] = 0.7;
        const int32_t lab[3] = {0, 4, 2};
        tg_tensor *x = tu_tensor(ctx, dt, 2, sh, xv, 1), *c = mk_labels(ctx, 1, sl, lab);
        tg_tensor *y = tg_cross_entropy(ctx, x, c, TG_REDUCE_MEAN);
        TEST_CHECK(y && y->ndim == 0);
        TEST_CLOSE(tg_tensor_get(y, 0), log(5.0), 0, tol);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++)
                TEST_CLOSE(tg_tensor_grad_get(x, i * 5 + j), (0.2 - (j == lab[i])) / 3, tol, tol);
        y = tg_cross_entropy(ctx, x, c, TG_REDUCE_SUM);
        TEST_CLOSE(tg_tensor_get(y, 0), 3 * log(5.0), 0, tol);
        y = tg_cross_entropy(ctx, x, c, TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 1 && y->shape[0] == 3);
        for (int i = 0; i < 3; i++)
            TEST_CLOSE(tg_tensor_get(y, i), log(5.0), 0, tol);
        /* NONE with a seed weights each row's gradient */
        tg_tensor_zero_grad(x);
        const double sv[3] = {1, 0, -2};
        TEST_CHECK(tg_backward_seed(ctx, y, tu_tensor(ctx, dt, 1, sl, sv, 0)) == TG_OK);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++)
                TEST_CLOSE(tg_tensor_grad_get(x, i * 5 + j), (0.2 - (j == lab[i])) * sv[i], tol, tol);

        /* a single sample: logits (C) with a 0-d label, and with a (1) label */
        const int64_t sc[1] = {3}, s1[1] = {1};
        const double v3[3] = {1, 2, 3};
        const int32_t two = 2;
        tg_tensor *x1 = tu_tensor(ctx, dt, 1, sc, v3, 1);
        double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
        y = tg_cross_entropy(ctx, x1, tg_tensor_from(ctx, TG_I32, 0, NULL, &two), TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 0);
        TEST_CLOSE(tg_tensor_get(y, 0), lse - 3, 0, 4 * tol);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        for (int j = 0; j < 3; j++)
            TEST_CLOSE(tg_tensor_grad_get(x1, j), exp(v3[j] - lse) - (j == 2), tol, tol);
        y = tg_cross_entropy(ctx, x1, mk_labels(ctx, 1, s1, &two), TG_REDUCE_MEAN);
        TEST_CHECK(y && y->ndim == 0);
        TEST_CLOSE(tg_tensor_get(y, 0), lse - 3, 0, 4 * tol);
        tg_ctx_free(ctx);
    }
}

static void test_bce_hand(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        double tol = f ? 1e-6 : 1e-15;
        tg_ctx *ctx = tg_ctx_new(NULL);
        const int64_t sh[1] = {2};
        const double xv[2] = {0, 2}, tv[2] = {0.3, 1};
        tg_tensor *x = tu_tensor(ctx, dt, 1, sh, xv, 1), *t = tu_tensor(ctx, dt, 1, sh, tv, 1);
        tg_tensor *y = tg_bce_with_logits(ctx, x, t, TG_REDUCE_SUM);
        /* x = 0: log 2 for any t; x = 2, t = 1: -log sigmoid(2) = log1p(exp(-2)) */
        TEST_CLOSE(tg_tensor_get(y, 0), log(2.0) + log1p(exp(-2.0)), 0, tol);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        TEST_CLOSE(tg_tensor_grad_get(x, 0), 0.5 - 0.3, tol, tol);
        TEST_CLOSE(tg_tensor_grad_get(x, 1), 1 / (1 + exp(-2.0)) - 1, tol, tol);
        TEST_CHECK(tg_tensor_grad_get(t, 0) == 0.0 && tg_tensor_grad_get(t, 1) == -2.0);
        y = tg_bce_with_logits(ctx, x, t, TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 1 && y->shape[0] == 2);
        TEST_CLOSE(tg_tensor_get(y, 0), log(2.0), 0, tol);
        tg_ctx_free(ctx);
    }
}

/* ---- stability ------------------------------------------------------------- */

static void test_stability(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        tg_ctx *ctx = tg_ctx_new(NULL);
        /* CE: row 0 picks a logit 2e4 below the max -> exactly 2e4; row 1
         * ties two maxima and picks a third logit -> 2e4 + log 2. */
        const int64_t sh[2] = {2, 3}, sl[1] = {2};
        const double xv[6] = {1e4, -1e4, 0, -1e4, 1e4, 1e4};
        const int32_t lab[2] = {1, 0};
        tg_tensor *x = tu_tensor(ctx, dt, 2, sh, xv, 1);
        tg_tensor *y = tg_cross_entropy(ctx, x, mk_labels(ctx, 1, sl, lab), TG_REDUCE_NONE);
        TEST_CHECK(y && isfinite(tg_tensor_get(y, 0)) && isfinite(tg_tensor_get(y, 1)));
        TEST_CHECK(tg_tensor_get(y, 0) == 2e4);
        TEST_CLOSE(tg_tensor_get(y, 1), 2e4 + log(2.0), 0, f ? 1e-7 : 1e-16);
        const double seed[2] = {1, 1};
        TEST_CHECK(tg_backward_seed(ctx, y, tu_tensor(ctx, dt, 1, sl, seed, 0)) == TG_OK);
        const double gx[6] = {1, -1, 0, -1, 0.5, 0.5};     /* softmax - onehot, exact */
        for (int i = 0; i < 6; i++)
            TEST_CHECK_MSG(tg_tensor_grad_get(x, i) == gx[i], "%s dx[%d] = %.17g, expected %g",
                           tg_dtype_name(dt), i, tg_tensor_grad_get(x, i), gx[i]);

        /* BCE: |x| = 1e4 on the wrong side of the target: loss 1e4 each,
         * dx = sigmoid(x) - t = +-1, dt = -x; and on the right side: 0. */
        const int64_t sb[1] = {4};
        const double bx[4] = {1e4, -1e4, 1e4, -1e4}, bt[4] = {0, 1, 1, 0};
        tg_tensor *l = tu_tensor(ctx, dt, 1, sb, bx, 1), *t = tu_tensor(ctx, dt, 1, sb, bt, 1);
        y = tg_bce_with_logits(ctx, l, t, TG_REDUCE_SUM);
        TEST_CHECK(y && tg_tensor_get(y, 0) == 2e4);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        const double gl[4] = {1, -1, 0, 0}, gt[4] = {-1e4, 1e4, -1e4, 1e4};
        for (int i = 0; i < 4; i++) {
            TEST_CHECK(tg_tensor_grad_get(l, i) == gl[i]);
            TEST_CHECK(tg_tensor_grad_get(t, i) == gt[i]);
        }
        y = tg_bce_with_logits(ctx, l, t, TG_REDUCE_NONE);
        TEST_CHECK(y && tg_tensor_get(y, 2) == 0.0 && tg_tensor_get(y, 3) == 0.0);
        tg_ctx_free(ctx);
    }
}

/* Empty inputs: MEAN over nothing is an error (PyTorch: NaN), SUM is 0,
 * NONE empty. (tests/test_stress.c covers every loss and dtype.) */
static void test_empty(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *e = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(0, 3));
    TU_EXPECT_ERR_IS(ctx, tg_mse_loss(ctx, e, e, TG_REDUCE_MEAN), TG_ERR_SHAPE,
                     "mse: empty batch (0x3): the mean of zero losses is undefined (TG_REDUCE_SUM gives 0)");
    tg_tensor *y = tg_bce_with_logits(ctx, e, e, TG_REDUCE_SUM);
    TEST_CHECK(y && tg_tensor_get(y, 0) == 0.0);
    y = tg_cross_entropy(ctx, e, tg_tensor_zeros(ctx, TG_I32, TG_DIMS(0)), TG_REDUCE_NONE);
    TEST_CHECK(y && y->ndim == 1 && y->numel == 0);
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, e, tg_tensor_zeros(ctx, TG_I32, TG_DIMS(0)), TG_REDUCE_MEAN),
                  TG_ERR_SHAPE, "cross_entropy: empty batch (0x3)");
    tg_ctx_free(ctx);
}

/* ---- aliased inputs ------------------------------------------------------- */

static void test_aliased(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    const int64_t sh[1] = {3};
    const double xv[3] = {-1.5, 0.25, 2};
    tg_tensor *x = tu_tensor(ctx, TG_F64, 1, sh, xv, 1);
    /* mse/l1/huber(x, x) are identically 0: so is their gradient */
    tg_tensor *y = tg_mse_loss(ctx, x, x, TG_REDUCE_SUM);
    TEST_CHECK(y && tg_tensor_get(y, 0) == 0.0 && tg_backward(ctx, y) == TG_OK);
    TEST_CHECK(tg_backward(ctx, tg_l1_loss(ctx, x, x, TG_REDUCE_MEAN)) == TG_OK);
    TEST_CHECK(tg_backward(ctx, tg_huber_loss(ctx, x, x, 1.0, TG_REDUCE_MEAN)) == TG_OK);
    for (int i = 0; i < 3; i++)
        TEST_CHECK(tg_tensor_grad_get(x, i) == 0.0);
    /* bce(x, x) = softplus(x) - x^2: d/dx = sigmoid(x) - 2x */
    y = tg_bce_with_logits(ctx, x, x, TG_REDUCE_SUM);
    TEST_CHECK(tg_backward(ctx, y) == TG_OK);
    for (int i = 0; i < 3; i++)
        TEST_CLOSE(tg_tensor_grad_get(x, i), 1 / (1 + exp(-xv[i])) - 2 * xv[i], 1e-15, 1e-14);
    tg_ctx_free(ctx);
}

/* The pair losses' VJP works a chunk of 256 elements at a time: 300 and
 * 1000 elements (a partial chunk), f32, against the per-element formula
 * bit for bit: mse(p, t) MEAN, and bce(x, x), where both contributions go
 * to one gradient, the logits' first: (0 + ga) + gb. */
static void test_pair_chunks(void)
{
    static const int64_t ns[2] = { 300, 1000 };
    for (int k = 0; k < 2; k++) {
        int64_t n = ns[k];
        tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 12 });
        tg_ctx_set_poison(ctx, 1);
        tg_tensor *p = tg_tensor_rand(ctx, TG_F32, TG_DIMS(n), -2, 2);
        tg_tensor *t = tg_tensor_rand(ctx, TG_F32, TG_DIMS(n), -2, 2);
        TEST_CHECK(p && t && tg_tensor_requires_grad(p) == TG_OK && tg_tensor_requires_grad(t) == TG_OK);
        TEST_CHECK(tg_backward(ctx, tg_mse_loss(ctx, p, t, TG_REDUCE_MEAN)) == TG_OK);
        const float *pv = p->data, *tv = t->data, *dp = p->grad, *dt = t->grad;
        const float g = (float)(1.0 / (double)n);
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
            float ga = (pv[i] - tv[i]) * (g + g), gb = -ga;
            bad += dp[i] != 0.0f + ga || dt[i] != 0.0f + gb;
        }
        TEST_CHECK_MSG(bad == 0, "mse VJP over %lld elements: %d differ from the formula", (long long)n, bad);
        tg_tensor_zero_grad(p);
        TEST_CHECK(tg_backward(ctx, tg_bce_with_logits(ctx, p, p, TG_REDUCE_SUM)) == TG_OK);
        bad = 0;
        for (int64_t i = 0; i < n; i++) {
            float ga = (tg_vm_sigmoidf(pv[i]) - pv[i]) * 1.0f, gb = -pv[i] * 1.0f;
            bad += dp[i] != (0.0f + ga) + gb;
        }
        TEST_CHECK_MSG(bad == 0, "bce(x, x) VJP over %lld elements: %d differ", (long long)n, bad);
        /* again, adding to what is there: (d + ga) + gb, in that order */
        float *d0 = malloc((size_t)n * sizeof *d0);
        TEST_CHECK(d0 != NULL);
        if (d0) {
            memcpy(d0, dp, (size_t)n * sizeof *d0);
            TEST_CHECK(tg_backward(ctx, tg_bce_with_logits(ctx, p, p, TG_REDUCE_SUM)) == TG_OK);
            bad = 0;
            for (int64_t i = 0; i < n; i++) {
                float ga = (tg_vm_sigmoidf(pv[i]) - pv[i]) * 1.0f, gb = -pv[i] * 1.0f;
                bad += dp[i] != (d0[i] + ga) + gb;
            }
            TEST_CHECK_MSG(bad == 0, "bce(x, x) VJP added to a gradient over %lld elements: %d differ",
                           (long long)n, bad);
            free(d0);
        }
        tg_ctx_free(ctx);
    }
}

/* ---- descriptors ----------------------------------------------------------- */

static void test_descriptors(void)
{
    static const char *const names[] = { "mse", "l1", "huber", "cross_entropy", "bce_with_logits" };
    for (int i = 0; i < 5; i++)
        tu_check_op(names[i], 2, TU_FWD_FLOPS);
    TEST_CHECK(tg_op_find("cross_entropy")->nondiff == 2u);    /* the labels */
}

/* ---- errors --------------------------------------------------------------- */

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *a = tg_tensor_rand(ctx, TG_F64, TG_DIMS(2, 3), -1, 1);
    tg_tensor *b = tg_tensor_rand(ctx, TG_F64, TG_DIMS(3, 2), -1, 1);
    tg_tensor *a32 = tg_tensor_rand(ctx, TG_F32, TG_DIMS(2, 3), -1, 1);
    tg_tensor *ai = tg_tensor_zeros(ctx, TG_I32, TG_DIMS(2, 3));
    tg_tensor_requires_grad(a);

    TU_EXPECT_ERR(ctx, tg_mse_loss(ctx, a, b, TG_REDUCE_MEAN), TG_ERR_SHAPE,
                 "mse: pred shape 2x3 differs from target shape 3x2");
    TU_EXPECT_ERR(ctx, tg_l1_loss(ctx, a, b, TG_REDUCE_SUM), TG_ERR_SHAPE,
                 "l1: pred shape 2x3 differs from target shape 3x2");
    TU_EXPECT_ERR(ctx, tg_huber_loss(ctx, a, b, 1.0, TG_REDUCE_NONE), TG_ERR_SHAPE,
                 "huber: pred shape 2x3 differs from target shape 3x2");
    TU_EXPECT_ERR(ctx, tg_bce_with_logits(ctx, a, tg_tensor_rand(ctx, TG_F64, TG_DIMS(6), 0, 1), TG_REDUCE_MEAN),
                 TG_ERR_SHAPE, "bce_with_logits: logits shape 2x3 differs from targets shape 6");
    TU_EXPECT_ERR(ctx, tg_mse_loss(ctx, a, a32, TG_REDUCE_MEAN), TG_ERR_ARG, "mse: mixed dtypes (f64 and f32)");
    TU_EXPECT_ERR(ctx, tg_l1_loss(ctx, a, ai, TG_REDUCE_MEAN), TG_ERR_ARG, "l1: input 1 is i32");
    TU_EXPECT_ERR(ctx, tg_bce_with_logits(ctx, ai, a, TG_REDUCE_MEAN), TG_ERR_ARG,
                 "bce_with_logits: input 0 is i32");
    TU_EXPECT_ERR(ctx, tg_mse_loss(ctx, a, a, (tg_reduction)7), TG_ERR_ARG,
                 "mse: reduction 7 is not MEAN (0), SUM (1) or NONE (2)");
    TU_EXPECT_ERR(ctx, tg_huber_loss(ctx, a, a, 0.0, TG_REDUCE_MEAN), TG_ERR_ARG,
                 "huber: delta must be finite and > 0, got 0");
    TU_EXPECT_ERR(ctx, tg_huber_loss(ctx, a, a, -1.5, TG_REDUCE_MEAN), TG_ERR_ARG,
                 "huber: delta must be finite and > 0, got -1.5");
    TU_EXPECT_ERR(ctx, tg_huber_loss(ctx, a, a, NAN, TG_REDUCE_MEAN), TG_ERR_ARG, "huber: delta must be");
    TU_EXPECT_ERR(ctx, tg_mse_loss(ctx, NULL, a, TG_REDUCE_MEAN), TG_ERR_ARG, "mse: input 0 is NULL");

    /* cross_entropy */
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(4, 10), -1, 1);
    tg_tensor_requires_grad(x);
    const int32_t bad_hi[4] = {0, 9, 2, 12}, bad_lo[4] = {3, -1, 0, 0}, good[4] = {0, 9, 2, 5};
    const int32_t bad_c[4] = {10, 0, 0, 0};
    const int64_t s4[1] = {4}, s3[1] = {3};
    size_t taped = tg_tape_size(ctx);
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, bad_hi), TG_REDUCE_MEAN), TG_ERR_ARG,
                 "cross_entropy: label 12 at row 3 outside [0, 10)");
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, bad_lo), TG_REDUCE_NONE), TG_ERR_ARG,
                 "cross_entropy: label -1 at row 1 outside [0, 10)");
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, bad_c), TG_REDUCE_SUM), TG_ERR_ARG,
                 "cross_entropy: label 10 at row 0 outside [0, 10)");
    TEST_CHECK(tg_tape_size(ctx) == taped);             /* nothing recorded */
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, x, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(4)), TG_REDUCE_MEAN),
                 TG_ERR_ARG, "cross_entropy: labels are f32, expected i32 class indices");
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, x, tg_tensor_zeros(ctx, TG_F64, TG_DIMS(4)), TG_REDUCE_MEAN),
                 TG_ERR_ARG, "cross_entropy: labels are f64, expected i32");
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s3, good), TG_REDUCE_MEAN), TG_ERR_SHAPE,
                 "cross_entropy: labels shape 3 does not fit logits 4x10");
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, x, tg_tensor_zeros(ctx, TG_I32, TG_DIMS(4, 1)), TG_REDUCE_MEAN),
                 TG_ERR_SHAPE, "labels shape 4x1 does not fit logits 4x10");
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(10)),
                                       mk_labels(ctx, 1, s4, good), TG_REDUCE_MEAN),
                 TG_ERR_SHAPE, "labels shape 4 does not fit logits 10 (expected a single label)");
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 3, 4)),
                                       mk_labels(ctx, 1, s4, good), TG_REDUCE_MEAN),
                 TG_ERR_SHAPE, "cross_entropy: logits must be (N, C) or (C), got 2x3x4");
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, tg_tensor_zeros(ctx, TG_I32, TG_DIMS(4, 10)),
                                       mk_labels(ctx, 1, s4, good), TG_REDUCE_MEAN),
                 TG_ERR_ARG, "cross_entropy: input 0 is i32");
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, good), (tg_reduction)-1), TG_ERR_ARG,
                 "cross_entropy: reduction -1 is not");

    /* the error is sticky: the next call returns NULL at once */
    TEST_CHECK(tg_mse_loss(ctx, a, b, TG_REDUCE_MEAN) == NULL);
    TEST_CHECK(tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, good), TG_REDUCE_MEAN) == NULL);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "mse: pred shape") != NULL);
    tg_ctx_clear_error(ctx);
    /* and after clearing, valid input works */
    tg_tensor *y = tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, good), TG_REDUCE_MEAN);
    TEST_CHECK(y != NULL && isfinite(tg_tensor_get(y, 0)));
    TEST_CHECK(tg_tape_size(ctx) == taped + 1);
    tg_ctx_free(ctx);
}

/* ---- f32 cross_entropy rows (smx_row.h) vs double --------------------------
 * Rows around the exp block of 64 in a narrow range, a wide one (exps down
 * to 0 through the subnormals) and with -inf entries, through the VJP of SUM
 * with dy = 1 (dx = s, and s - 1 at the label): s within 2 FLT_EPSILON of
 * exp(d) / sum in double, d = x - max rounded to float as the kernel has it;
 * the loss within 1e-6. Rows shorter than a block are the f32 formula bit
 * for bit: s = tg_vm_expf(d) * (float)(1 / sum), the sum in double lanes
 * (element k in lane k % 16). */
static void test_ce_f32_rows(void)
{
    static const int64_t lens[] = { 10, 33, 64, 100, 4133 };
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_rng r;
    tg_rng_seed(&r, 3);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (int kind = 0; kind < 3; kind++) {
            int64_t C = lens[li], N = 3;
            tg_tensor *x = tg_tensor_new(ctx, TG_F32, TG_DIMS(N, C));
            tg_tensor *lab = tg_tensor_new(ctx, TG_I32, TG_DIMS(N));
            float *xv = x->data;
            for (int64_t k = 0; k < N * C; k++) {
                double u = tg_rng_uniform(&r);
                xv[k] = (float)(kind == 1 ? -150 * u : 6 * u - 3);
                if (kind == 2 && k % 3 == 1)
                    xv[k] = -INFINITY;
            }
            for (int64_t i = 0; i < N; i++)
                ((int32_t *)lab->data)[i] = (int32_t)((i * 7) % C);
            tg_tensor_requires_grad(x);
            tg_tensor *y = tg_cross_entropy(ctx, x, lab, TG_REDUCE_SUM);
            TEST_CHECK_MSG(y && tg_backward(ctx, y) == TG_OK, "%s", tg_ctx_error(ctx));
            if (!y)
                continue;
            int bad = 0;
            double acc = 0;
            for (int64_t i = 0; i < N; i++) {
                const float *xr = xv + i * C;
                float m = -INFINITY;
                for (int64_t j = 0; j < C; j++)
                    m = xr[j] > m ? xr[j] : m;
                double lane[16] = {0}, zf = 0, z = 0;
                for (int64_t j = 0; j < C; j++) {
                    lane[j % 16] += (double)tg_vm_expf(xr[j] - m);
                    z += exp((double)(xr[j] - m));
                }
                for (int j = 0; j < 16; j++)
                    zf += lane[j];
                int32_t c = ((int32_t *)lab->data)[i];
                for (int64_t j = 0; j < C; j++) {
                    float got = ((float *)x->grad)[i * C + j] + (j == c ? 1.0f : 0.0f);
                    if (C < 64) {
                        float want = tg_vm_expf(xr[j] - m) * (float)(1.0 / zf);
                        want = (want - (j == c ? 1.0f : 0.0f)) + (j == c ? 1.0f : 0.0f);
                        bad += memcmp(&want, &got, sizeof got) != 0;
                    } else {
                        double want = exp((double)(xr[j] - m)) / z;
                        bad += !(fabs(got - want) <= 2 * FLT_EPSILON * want + 0x1p-148 + (j == c) * FLT_EPSILON);
                    }
                }
                acc += (double)m + log(z) - (double)xr[c];
            }
            double got_y = ((float *)y->data)[0];
            TEST_CHECK_MSG(bad == 0 && (got_y == acc || fabs(got_y - acc) <= 1e-6 * fabs(acc) + 1e-6),
                           "cross_entropy f32, rows of %lld, kind %d: %d softmax values off, "
                           "loss %.9g (want %.9g)", (long long)C, kind, bad, got_y, acc);
            tg_ctx_reset(ctx);
        }
    tg_ctx_free(ctx);
}

int main(void)
{
    test_mse_hand();
    test_l1_huber_hand();
    test_ce_hand();
    test_ce_f32_rows();
    test_bce_hand();
    test_stability();
    test_empty();
    test_aliased();
    test_pair_chunks();
    test_descriptors();
    test_errors();
    return test_report("test_loss");
}
