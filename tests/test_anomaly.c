/* test_anomaly.c — anomaly mode: off by default; when on, the first NaN/Inf
 * in an op's output or in a VJP's result stops the step with TG_ERR_NUMERIC
 * and a message naming the op, its input shapes, the index, the value and
 * where the op was recorded. */
#include "tapegrad.h"
#include "test.h"

#include <math.h>
#include <string.h>

static void forward_case(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_from(ctx, TG_F32, TG_DIMS(3), (float[]){1, -1, 2});
    /* Off: log(-1) is NaN and nothing complains (IEEE semantics). */
    TEST_CHECK(tg_log(ctx, x) != NULL && tg_ctx_status(ctx) == TG_OK);
    tg_ctx_set_anomaly(ctx, 1);
    TEST_CHECK(tg_ctx_anomaly(ctx) == 1);
    int line = __LINE__ + 1;
    TEST_CHECK(tg_log(ctx, x) == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_NUMERIC);
    char where[64];
    snprintf(where, sizeof where, "test_anomaly.c:%d", line);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), "anomaly: log (inputs 3 f32) produced") &&
                   strstr(tg_ctx_error(ctx), "nan at index 1, recorded at") &&
                   strstr(tg_ctx_error(ctx), where), "%s", tg_ctx_error(ctx));
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
    int line = __LINE__ + 1;
    tg_tensor *l = tg_sum_all(ctx, tg_mul_scalar(ctx, tg_sqrt(ctx, z), 2.0));
    TEST_CHECK(l != NULL);
    TEST_CHECK(tg_backward(ctx, l) == TG_ERR_NUMERIC);
    char where[64];
    snprintf(where, sizeof where, "test_anomaly.c:%d", line);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), "the VJP of sqrt (inputs 2x2 f64) wrote inf into the gradient of input 0 at index 2") &&
                   strstr(tg_ctx_error(ctx), where), "%s", tg_ctx_error(ctx));
    tg_ctx_reset(ctx);
    /* A clean step passes untouched. */
    tg_tensor *w = tg_tensor_rand(ctx, TG_F32, TG_DIMS(4, 3), -1, 1);
    tg_tensor_requires_grad(w);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(5, 4), -1, 1);
    TEST_CHECK(tg_backward(ctx, tg_mean_all(ctx, tg_tanh(ctx, tg_matmul(ctx, x, w)))) == TG_OK);
    tg_ctx_free(ctx);
}

/* A model's forward reports the model call's site for every op inside it;
 * nested calls pop back to the outer site whatever the argument order. */
static void site_case(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_anomaly(ctx, 1);
    char err[128];
    tg_model *m = tg_model_from_spec("3-4relu-2", TG_F32, 1, err, sizeof err);
    tg_tensor *x = tg_tensor_from(ctx, TG_F32, TG_DIMS(1, 3), (float[]){1, INFINITY, 0});
    int line = __LINE__ + 1;
    TEST_CHECK(tg_relu(ctx, tg_model_forward(ctx, m, x)) == NULL);
    char where[64];
    snprintf(where, sizeof where, "test_anomaly.c:%d", line);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), "linear") && strstr(tg_ctx_error(ctx), where), "%s", tg_ctx_error(ctx));
    tg_ctx_reset(ctx);
    tg_tensor *y = tg_tensor_from(ctx, TG_F32, TG_DIMS(2), (float[]){1, 0});
    line = __LINE__ + 1;
    tg_tensor *r = tg_div(ctx, tg_exp(ctx, y), tg_mul(ctx, y, tg_exp(ctx, y)));
    snprintf(where, sizeof where, "test_anomaly.c:%d", line);
    TEST_CHECK_MSG(r == NULL && strstr(tg_ctx_error(ctx), "div (") && strstr(tg_ctx_error(ctx), where),
                   "%s", tg_ctx_error(ctx));
    tg_model_free(m);
    tg_ctx_free(ctx);
}

int main(void)
{
    forward_case();
    backward_case();
    site_case();
    return test_report("test_anomaly");
}
