/* test_bad_input.c — bad input never crashes and always gets a clear error.
 * Named cases check the exact wording; then every registered op is fed,
 * from its own sample inputs, a NULL input, the other float dtype, an
 * integer tensor and a reshaped input: each call either succeeds with a
 * valid output or returns NULL with an error that names the op. (The
 * sanitizer build runs this too, so an out-of-bounds access fails it.) */
#include "tapegrad.h"
#include "test.h"
#include "test_util.h"

#include <string.h>

static void named_cases(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *a = tg_tensor_rand(ctx, TG_F32, TG_DIMS(32, 784), -1, 1);
    tg_tensor *w = tg_tensor_rand(ctx, TG_F32, TG_DIMS(128, 10), -1, 1);
    tg_tensor *d = tg_tensor_rand(ctx, TG_F64, TG_DIMS(32, 784), -1, 1);
    tg_tensor *b = tg_tensor_rand(ctx, TG_F32, TG_DIMS(4, 3), -1, 1);
    TU_EXPECT_ERR(ctx, tg_matmul(ctx, a, w), TG_ERR_SHAPE, "matmul: inner dims differ (32x784 · 128x10)");
    TU_EXPECT_ERR(ctx, tg_add(ctx, a, b), TG_ERR_SHAPE, "add: cannot broadcast 32x784 with 4x3");
    TU_EXPECT_ERR(ctx, tg_add(ctx, a, d), TG_ERR_ARG, "add: mixed dtypes (f32 and f64)");
    TU_EXPECT_ERR(ctx, tg_mul(ctx, a, NULL), TG_ERR_ARG, "mul: input 1 is NULL");
    TU_EXPECT_ERR(ctx, tg_sum(ctx, b, (int[]){2}, 1, 0), TG_ERR_ARG, "sum: axis 2 out of range");
    TU_EXPECT_ERR(ctx, tg_softmax(ctx, b, -3), TG_ERR_ARG, "softmax: axis -3 out of range");
    TU_EXPECT_ERR(ctx, tg_reshape(ctx, b, TG_DIMS(5, 2)), TG_ERR_SHAPE, "reshape");
    tg_tensor *lab = tg_tensor_fill(ctx, TG_I32, TG_DIMS(4), 3);
    TU_EXPECT_ERR(ctx, tg_cross_entropy(ctx, b, lab, TG_REDUCE_MEAN), TG_ERR_ARG, "cross_entropy: label 3");
    TU_EXPECT_ERR(ctx, tg_exp(ctx, lab), TG_ERR_ARG, "exp: input 0 is i32");

    tg_tensor_requires_grad(b);
    tg_tensor *y = tg_exp(ctx, b);
    TEST_CHECK(tg_backward(ctx, y) == TG_ERR_STATE);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "backward: the loss must be a scalar, got shape 4x3") != NULL);
    tg_ctx_clear_error(ctx);
    /* After an error and a reset, the context works again. */
    tg_ctx_reset(ctx);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(2, 2), -1, 1);
    TEST_CHECK(tg_matmul(ctx, x, x) != NULL);
    tg_ctx_free(ctx);
}

/* The call either worked or failed with the op's name in the message. */
static int clean(tg_ctx *ctx, const tg_op_def *def, tg_tensor *out)
{
    if (out)
        return tg_ctx_status(ctx) == TG_OK && out->numel >= 0;
    return tg_ctx_status(ctx) != TG_OK && strncmp(tg_ctx_error(ctx), def->name, strlen(def->name)) == 0;
}

static void registry_cases(void)
{
    int checked = 0;
    for (size_t id = 0; id < tg_op_count(); id++) {
        const tg_op_def *def = tg_op_get(id);
        if (!def->sample)
            continue;
        for (int v = 0; v < def->n_samples; v++) {
            for (int mode = 0; mode < 4; mode++) {
                for (int which = 0; which < TG_MAX_IN; which++) {
                    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = (uint64_t)v });
                    tg_node n = { .def = def, .ctx = ctx };
                    if (def->sample(&n, TG_F64, v) != TG_OK || which >= n.n_in) {
                        tg_ctx_free(ctx);
                        break;
                    }
                    tg_tensor *x = n.in[which];
                    switch (mode) {
                    case 0: n.in[which] = NULL; break;
                    case 1: n.in[which] = tg_tensor_cast(ctx, x, x->dtype == TG_F64 ? TG_F32 : TG_F64); break;
                    case 2: n.in[which] = tg_tensor_cast(ctx, x, x->dtype == TG_I32 ? TG_F64 : TG_I32); break;
                    case 3: /* one more element along a new leading axis */
                        n.in[which] = tg_tensor_zeros(ctx, x->dtype, x->ndim < TG_MAX_DIMS ? x->ndim + 1 : 1,
                                                      (int64_t[]){2, x->ndim > 0 ? x->shape[0] : 1,
                                                                  x->ndim > 1 ? x->shape[1] : 1,
                                                                  x->ndim > 2 ? x->shape[2] : 1,
                                                                  x->ndim > 3 ? x->shape[3] : 1, 1});
                        break;
                    }
                    tg_tensor *out = tg_apply(ctx, def, n.in, n.n_in, &n.p, NULL);
                    TEST_CHECK_MSG(clean(ctx, def, out), "%s variant %d mode %d input %d: %s",
                                   def->name, v, mode, which, tg_ctx_error(ctx));
                    if (mode == 0)
                        TEST_CHECK_MSG(out == NULL, "%s accepted a NULL input %d", def->name, which);
                    checked++;
                    tg_ctx_free(ctx);
                }
            }
        }
    }
    TEST_CHECK(checked > 100);
}

int main(void)
{
    named_cases();
    registry_cases();
    return test_report("test_bad_input");
}
