/* bench_anomaly.c — what anomaly mode costs: CPU time per training step of
 * the 784-128-10 MLP (batch 128, Adam) with tg_ctx_set_anomaly off and on,
 * alternating blocks of steps so load on the machine hits both alike.
 * Prints the medians and the overhead in percent.
 *   usage: bench_anomaly [ROUNDS]   (default 15 rounds of 20 steps each) */
#include <tapegrad.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"

enum { B = 128, D = 784, STEPS = 20 };



int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    if (rounds < 1 || rounds > 1000)
        rounds = 15;
    char err[256];
    tg_model *m = tg_model_from_spec("784-128relu-10", TG_F32, 42, err, sizeof err);
    tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_ADAM, 1e-3);
    tg_optim *o = m ? tg_optim_new(tg_model_params(m), &cfg, err, sizeof err) : NULL;
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 1 });
    float *x = malloc(sizeof(float) * B * D);
    int32_t *y = malloc(sizeof(int32_t) * B);
    double *t[2] = { malloc(sizeof(double) * (size_t)rounds), malloc(sizeof(double) * (size_t)rounds) };
    if (!m || !o || !ctx || !x || !y || !t[0] || !t[1]) {
        fprintf(stderr, "bench_anomaly: setup failed %s\n", err);
        return 1;
    }
    tg_rng r;
    tg_rng_seed(&r, 7);
    for (int i = 0; i < B * D; i++) x[i] = (float)tg_rng_uniform(&r);
    for (int i = 0; i < B; i++) y[i] = (int32_t)tg_rng_below(&r, 10);
    for (int rd = -1; rd < rounds; rd++) {          /* round -1 warms up */
        for (int on = 0; on < 2; on++) {
            tg_ctx_set_anomaly(ctx, on);
            double c0 = cpu_now();
            for (int s = 0; s < STEPS; s++) {
                tg_tensor *xt = tg_tensor_wrap(ctx, TG_F32, TG_DIMS(B, D), x);
                tg_tensor *yt = tg_tensor_wrap(ctx, TG_I32, TG_DIMS(B), y);
                tg_tensor *loss = tg_cross_entropy(ctx, tg_model_forward(ctx, m, xt), yt, TG_REDUCE_MEAN);
                tg_params_zero_grad(tg_model_params(m));
                if (tg_backward(ctx, loss) != TG_OK) {
                    fprintf(stderr, "bench_anomaly: %s\n", tg_ctx_error(ctx));
                    return 1;
                }
                tg_optim_step(o);
                tg_ctx_reset(ctx);
            }
            if (rd >= 0)
                t[on][rd] = (cpu_now() - c0) / STEPS;
        }
    }
    qsort(t[0], (size_t)rounds, sizeof(double), cmp_d);
    qsort(t[1], (size_t)rounds, sizeof(double), cmp_d);
    double off = t[0][rounds / 2], on = t[1][rounds / 2];
    printf("784-128-10 b128 step, CPU time, median of %d rounds of %d steps:\n", rounds, STEPS);
    printf("  anomaly off %.3f ms   anomaly on %.3f ms   overhead %+.1f%%\n", off * 1e3, on * 1e3,
           100 * (on - off) / off);
    free(x); free(y); free(t[0]); free(t[1]);
    tg_ctx_free(ctx); tg_optim_free(o); tg_model_free(m);
    return 0;
}
