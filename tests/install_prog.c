/* A user's program, built outside the tree against the installed library. */
#include <tapegrad.h>
#include <math.h>
#include <stdio.h>

int main(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_scalar(ctx, TG_F64, 0.5);
    tg_tensor_requires_grad(x);
    tg_tensor *y = tg_exp(ctx, x);
    if (tg_backward(ctx, y) != TG_OK) {
        fprintf(stderr, "backward failed: %s\n", tg_ctx_error(ctx));
        return 1;
    }
    /* A 128x128 product runs on a libxsmm JIT kernel inside the library. */
    tg_tensor *a = tg_tensor_fill(ctx, TG_F32, TG_DIMS(128, 128), 0.5);
    tg_tensor *c = tg_matmul(ctx, a, a);
    if (!c || tg_tensor_get(c, 129) != 32.0) {
        fprintf(stderr, "matmul: %s\n", c ? "wrong value" : tg_ctx_error(ctx));
        return 1;
    }
    double g = tg_tensor_grad_get(x, 0);
    printf("d exp(x)/dx at 0.5 = %.6f (expected %.6f)\n", g, exp(0.5));
    tg_ctx_free(ctx);
    return fabs(g - exp(0.5)) < 1e-12 ? 0 : 1;
}
