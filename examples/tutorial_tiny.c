/* tutorial_tiny.c — the tiny network of the classic backprop tutorial, by
 * hand: inputs (2, 3), one sigmoid hidden unit, a linear output unit, every
 * weight and bias 0.5, target 1, loss ½(y − ŷ)². Prints the forward values,
 * the loss and every gradient, then takes one SGD step with lr 0.1 and
 * checks each number against the chain rule worked out in closed form. */
#include <tapegrad.h>
#include <math.h>
#include <stdio.h>

static int check(const char *what, double got, double want)
{
    int ok = fabs(got - want) <= 1e-12 * (1 + fabs(want));
    printf("  %-10s = %.9f%s\n", what, got, ok ? "" : "   <-- WRONG");
    return ok;
}

int main(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *w1 = tg_tensor_create(TG_F64, TG_DIMS(2, 1), NULL);   /* input -> hidden */
    tg_tensor *b1 = tg_tensor_create(TG_F64, TG_DIMS(1), NULL);
    tg_tensor *w2 = tg_tensor_create(TG_F64, TG_DIMS(1, 1), NULL);   /* hidden -> output */
    tg_tensor *b2 = tg_tensor_create(TG_F64, TG_DIMS(1), NULL);
    tg_tensor *params[] = { w1, b1, w2, b2 };
    const char *names[] = { "dL/dw1", "dL/db1", "dL/dw2", "dL/db2" };
    for (int p = 0; p < 4; p++) {
        if (!params[p] || tg_tensor_requires_grad(params[p]) != TG_OK)
            return 1;
        for (int64_t i = 0; i < params[p]->numel; i++)
            tg_tensor_set(params[p], i, 0.5);
    }

    tg_tensor *x = tg_tensor_from(ctx, TG_F64, TG_DIMS(1, 2), (double[]){2, 3});
    tg_tensor *t = tg_tensor_from(ctx, TG_F64, TG_DIMS(1, 1), (double[]){1});
    tg_tensor *z = tg_add(ctx, tg_matmul(ctx, x, w1), b1);     /* z = 0.5·2 + 0.5·3 + 0.5 = 3 */
    tg_tensor *h = tg_sigmoid(ctx, z);
    tg_tensor *y = tg_add(ctx, tg_matmul(ctx, h, w2), b2);     /* linear output */
    tg_tensor *loss = tg_mul_scalar(ctx, tg_mse_loss(ctx, y, t, TG_REDUCE_SUM), 0.5);
    if (tg_backward(ctx, loss) != TG_OK) {
        fprintf(stderr, "%s\n", tg_ctx_error(ctx));
        return 1;
    }

    /* The same numbers by the chain rule. */
    double zz = 3, hh = 1 / (1 + exp(-zz)), yy = 0.5 * hh + 0.5, L = 0.5 * (1 - yy) * (1 - yy);
    double dy = yy - 1, dz = dy * 0.5 * hh * (1 - hh);
    double want[] = { dz * 2, dz * 3, dz, dy * hh, dy };
    int ok = 1;
    printf("forward:\n");
    ok &= check("z", tg_tensor_get(z, 0), zz);
    ok &= check("h", tg_tensor_get(h, 0), hh);
    ok &= check("y", tg_tensor_get(y, 0), yy);
    ok &= check("loss", tg_tensor_get(loss, 0), L);
    printf("gradients:\n");
    ok &= check("dL/dw1[0]", tg_tensor_grad_get(w1, 0), want[0]);
    ok &= check("dL/dw1[1]", tg_tensor_grad_get(w1, 1), want[1]);
    ok &= check(names[1], tg_tensor_grad_get(b1, 0), want[2]);
    ok &= check(names[2], tg_tensor_grad_get(w2, 0), want[3]);
    ok &= check(names[3], tg_tensor_grad_get(b2, 0), want[4]);

    printf("after one SGD step (lr 0.1):\n");
    const double lr = 0.1;
    for (int p = 0; p < 4; p++)
        for (int64_t i = 0; i < params[p]->numel; i++)
            tg_tensor_set(params[p], i, tg_tensor_get(params[p], i) - lr * tg_tensor_grad_get(params[p], i));
    ok &= check("w1[0]", tg_tensor_get(w1, 0), 0.5 - lr * want[0]);
    ok &= check("w1[1]", tg_tensor_get(w1, 1), 0.5 - lr * want[1]);
    ok &= check("b1", tg_tensor_get(b1, 0), 0.5 - lr * want[2]);
    ok &= check("w2", tg_tensor_get(w2, 0), 0.5 - lr * want[3]);
    ok &= check("b2", tg_tensor_get(b2, 0), 0.5 - lr * want[4]);

    for (int p = 0; p < 4; p++)
        tg_tensor_destroy(params[p]);
    tg_ctx_free(ctx);
    printf("%s\n", ok ? "all values match the chain rule" : "MISMATCH");
    return ok ? 0 : 1;
}
