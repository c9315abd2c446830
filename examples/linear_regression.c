/* linear_regression.c — fit y = w·x + b to 100 noisy points of
 * y = x + 2 + noise by gradient descent on the mean squared error, using the
 * nn layer's parameter store and SGD. Recovers w ≈ 1, b ≈ 2. */
#include <tapegrad.h>
#include <math.h>
#include <stdio.h>

enum { N = 100 };

int main(void)
{
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    double xs[N], ys[N];
    for (int i = 0; i < N; i++) {
        xs[i] = 4.0 * tg_rng_uniform(&rng) - 2.0;
        ys[i] = xs[i] + 2.0 + 0.1 * tg_rng_normal(&rng);
    }

    tg_params *p = tg_params_new(TG_F64);
    tg_tensor *w = tg_params_add(p, "w", TG_DIMS(1, 1), NULL);
    tg_tensor *b = tg_params_add(p, "b", TG_DIMS(1), NULL);
    tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_SGD, 0.1);
    tg_optim *opt = tg_optim_new(p, &cfg, NULL, 0);
    tg_ctx *ctx = tg_ctx_new(NULL);
    if (!w || !b || !opt || !ctx)
        return 1;

    double loss_v = 0;
    for (int step = 0; step < 300; step++) {
        tg_tensor *x = tg_tensor_wrap(ctx, TG_F64, TG_DIMS(N, 1), xs);
        tg_tensor *y = tg_tensor_wrap(ctx, TG_F64, TG_DIMS(N, 1), ys);
        tg_tensor *pred = tg_add(ctx, tg_matmul(ctx, x, w), b);
        tg_tensor *loss = tg_mse_loss(ctx, pred, y, TG_REDUCE_MEAN);
        tg_params_zero_grad(p);
        if (tg_backward(ctx, loss) != TG_OK) {
            fprintf(stderr, "%s\n", tg_ctx_error(ctx));
            return 1;
        }
        loss_v = tg_tensor_get(loss, 0);
        tg_optim_step(opt);
        if (step % 50 == 0)
            printf("step %3d  loss %.6f  w %.4f  b %.4f\n", step, loss_v,
                   tg_tensor_get(w, 0), tg_tensor_get(b, 0));
        tg_ctx_reset(ctx);
    }
    double wv = tg_tensor_get(w, 0), bv = tg_tensor_get(b, 0);
    printf("fit: y = %.4f x + %.4f  (true: y = x + 2), final loss %.5f\n", wv, bv, loss_v);
    int ok = fabs(wv - 1) < 0.05 && fabs(bv - 2) < 0.05;
    tg_ctx_free(ctx);
    tg_optim_free(opt);
    tg_params_free(p);
    return ok ? 0 : 1;
}
