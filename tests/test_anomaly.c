/* test_anomaly.c — anomaly mode: off by default; when on, the first NaN/Inf
 * in an op's output or in a VJP's result stops the step with TG_ERR_NUMERIC
 * and a message naming the op, its input shapes, the index, the value and
 * where the op was recorded. */
#include "tapegrad.h"
#include "test.h"

#include <string.h>

static void forward_case(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_from(ctx, TG_F32, TG_DIMS(3), (float[]){1, -1, 2});
    /* Off: log(-1) is NaN and nothing complains (IEEE semantics). */
    TEST_CHECK(tg_log(ctx, x) != NULL && tg_ctx_status(ctx) == TG_OK);
    tg_ctx_set_anomaly(ctx, 1);
    TEST_CHECK(tg_ctx_anomaly(ctx) == 1);
    TEST_CHECK(tg_log(ctx, x) == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_NUMERIC);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), "anomaly: log (inputs 3 f32) produced") &&
                   strstr(tg_ctx_error(ctx), "nan at index 1"), "%s", tg_ctx_error(ctx));
    tg_ctx_clear_error(ctx);
    /* The recording site, when the caller gives it. */
    tg_tensor *two[2] = { x, x };
    TEST_CHECK(tg_apply_at(ctx, tg_op_find("div"), two, 2, NULL, NULL, "model.c", 42) != NULL);
    tg_tensor *z = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(3));
    tg_tensor *xz[2] = { x, z };
    TEST_CHECK(tg_apply_at(ctx, tg_op_find("div"), xz, 2, NULL, NULL, "model.c", 42) == NULL);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), "div (inputs 3 f32, 3 f32) produced inf at index 0, recorded at model.c:42"),
                   "%s", tg_ctx_error(ctx));
    tg_ctx_free(ctx);
}

static void backward_case(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_anomaly(ctx, 1);
    /* sqrt'(0) = inf: the forward is finite, the VJP is not. */
    tg_tensor *z = tg_tensor_from(ctx, TG_F64, TG_DIMS(2, 2), (double[]){4, 1, 0, 9});
    tg_tensor_requires_grad(z);
    tg_tensor *l = tg_sum_all(ctx, tg_sqrt(ctx, z));
    TEST_CHECK(l != NULL);
    TEST_CHECK(tg_backward(ctx, l) == TG_ERR_NUMERIC);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), "the VJP of sqrt (inputs 2x2 f64) wrote inf into the gradient of input 0 at index 2"),
                   "%s", tg_ctx_error(ctx));
    tg_ctx_reset(ctx);
    /* A clean step passes untouched. */
    tg_tensor *w = tg_tensor_rand(ctx, TG_F32, TG_DIMS(4, 3), -1, 1);
    tg_tensor_requires_grad(w);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(5, 4), -1, 1);
    TEST_CHECK(tg_backward(ctx, tg_mean_all(ctx, tg_tanh(ctx, tg_matmul(ctx, x, w)))) == TG_OK);
    tg_ctx_free(ctx);
}

int main(void)
{
    forward_case();
    backward_case();
    return test_report("test_anomaly");
}
