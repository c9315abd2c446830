/* test_tape.c — recording, the reverse sweep, accumulation, no-grad,
 * detach, retained gradients, and the errors of backward. */
#include "tapegrad.h"
#include "test.h"

#include <string.h>

static void test_exp_chain(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    double xv[3] = {0.5, -1.0, 2.0};
    tg_tensor *x = tg_tensor_from(ctx, TG_F64, TG_DIMS(3), xv);
    TEST_CHECK(tg_tensor_requires_grad(x) == TG_OK);
    /* y = exp(exp(x)); dy/dx = exp(exp(x)) * exp(x) */
    tg_tensor *y = tg_exp(ctx, tg_exp(ctx, x));
    TEST_CHECK(y != NULL);
    TEST_CHECK(tg_tape_size(ctx) == 2);
    double sv[3] = {1, 2, 3};
    tg_tensor *seed = tg_tensor_from(ctx, TG_F64, TG_DIMS(3), sv);
    TEST_CHECK(tg_backward_seed(ctx, y, seed) == TG_OK);
    for (int i = 0; i < 3; i++)
        TEST_CLOSE(tg_tensor_grad_get(x, i), sv[i] * exp(exp(xv[i])) * exp(xv[i]), 0, 1e-14);
    /* A second sweep accumulates. */
    TEST_CHECK(tg_backward_seed(ctx, y, seed) == TG_OK);
    for (int i = 0; i < 3; i++)
        TEST_CLOSE(tg_tensor_grad_get(x, i), 2 * sv[i] * exp(exp(xv[i])) * exp(xv[i]), 0, 1e-14);
    tg_tensor_zero_grad(x);
    TEST_CHECK(tg_tensor_grad_get(x, 1) == 0.0);
    tg_ctx_free(ctx);
}

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(2, 2), -1, 1);
    tg_tensor_requires_grad(x);
    tg_tensor *y = tg_exp(ctx, x);
    TEST_CHECK(tg_backward(ctx, y) == TG_ERR_STATE);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "scalar") != NULL);
    TEST_CHECK(tg_exp(ctx, x) == NULL);          /* sticky */
    tg_ctx_clear_error(ctx);

    tg_tensor *c = tg_tensor_rand(ctx, TG_F32, TG_DIMS(1), -1, 1);
    TEST_CHECK(tg_backward(ctx, tg_exp(ctx, c)) == TG_ERR_STATE);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "does not require a gradient") != NULL);
    tg_ctx_clear_error(ctx);

    TEST_CHECK(tg_exp(ctx, NULL) == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_ARG);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "exp: input 0 is NULL") != NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_backward(ctx, NULL) == TG_ERR_ARG);
    tg_ctx_free(ctx);
}

static void test_no_grad_detach_retain(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F64, TG_DIMS(1), -1, 1);
    tg_tensor_requires_grad(x);
    TG_NO_GRAD(ctx) {
        tg_tensor *y = tg_exp(ctx, x);
        TEST_CHECK(y && !(y->flags & TG_TENSOR_REQUIRES_GRAD));
    }
    TEST_CHECK(tg_grad_enabled(ctx));
    TEST_CHECK(tg_tape_size(ctx) == 0);
    tg_tensor *d = tg_detach(ctx, x);
    TEST_CHECK(d && !(d->flags & TG_TENSOR_REQUIRES_GRAD) && d->data == x->data);
    TEST_CHECK(!(tg_exp(ctx, d)->flags & TG_TENSOR_REQUIRES_GRAD));

    tg_tensor *m = tg_exp(ctx, x), *k = tg_exp(ctx, x);
    tg_retain_grad(m);
    tg_tensor *l1 = tg_exp(ctx, m), *l2 = tg_exp(ctx, k);
    TEST_CHECK(tg_backward(ctx, l1) == TG_OK);
    TEST_CHECK(m->grad != NULL);
    TEST_CLOSE(tg_tensor_grad_get(m, 0), tg_tensor_get(l1, 0), 0, 1e-15);
    TEST_CHECK(tg_backward(ctx, l2) == TG_OK);
    TEST_CHECK(k->grad == NULL);          /* released after the sweep */
    tg_ctx_free(ctx);
}

static void test_dot(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(4, 3), -1, 1);
    tg_tensor *w = tg_tensor_rand(ctx, TG_F32, TG_DIMS(3, 2), -1, 1);
    tg_tensor_requires_grad(w);
    w->name = "w";
    tg_tensor *loss = tg_sum_all(ctx, tg_relu(ctx, tg_matmul(ctx, x, w)));
    char buf[4096] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    TEST_CHECK(tg_graph_dot(ctx, loss, f) == TG_OK);
    fclose(f);
    TEST_CHECK(strncmp(buf, "digraph", 7) == 0);
    TEST_CHECK(strstr(buf, "matmul\\n4x2 f32") != NULL);
    TEST_CHECK(strstr(buf, "relu\\n4x2 f32") != NULL);
    TEST_CHECK(strstr(buf, "sum\\nscalar f32") != NULL);
    TEST_CHECK(strstr(buf, "w\\n3x2 f32\\nrequires grad") != NULL);
    TEST_CHECK(strstr(buf, "leaf\\n4x3 f32") != NULL);
    int edges = 0;
    for (const char *p = buf; (p = strstr(p, "->")) != NULL; p += 2)
        edges++;
    TEST_CHECK(edges == 4);
    TEST_CHECK(tg_graph_dot(ctx, NULL, stdout) == TG_ERR_ARG);
    tg_ctx_free(ctx);
}

int main(void)
{
    test_dot();
    test_exp_chain();
    test_errors();
    test_no_grad_detach_retain();
    return test_report("test_tape");
}
