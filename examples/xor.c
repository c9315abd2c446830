/* xor.c — the XOR problem: not linearly separable, so it needs the hidden
 * layer. A 2-8tanh-1 network, binary cross-entropy on the logit, Adam.
 * Exits 0 at 100 % accuracy. */
#include <tapegrad.h>
#include <stdio.h>

int main(void)
{
    const float xs[4][2] = { {0, 0}, {0, 1}, {1, 0}, {1, 1} };
    const float ts[4] = { 0, 1, 1, 0 };
    char err[200];
    tg_model *m = tg_model_from_spec("2-8tanh-1", TG_F32, 42, err, sizeof err);
    tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_ADAM, 0.05);
    tg_optim *opt = m ? tg_optim_new(tg_model_params(m), &cfg, err, sizeof err) : NULL;
    tg_ctx *ctx = tg_ctx_new(NULL);
    if (!m || !opt || !ctx) {
        fprintf(stderr, "setup failed: %s\n", err);
        return 1;
    }
    tg_tensor *logits = NULL;
    for (int step = 0; step <= 300; step++) {
        tg_ctx_reset(ctx);
        tg_tensor *x = tg_tensor_from(ctx, TG_F32, TG_DIMS(4, 2), xs);
        tg_tensor *t = tg_tensor_from(ctx, TG_F32, TG_DIMS(4, 1), ts);
        logits = tg_model_forward(ctx, m, x);
        tg_tensor *loss = tg_bce_with_logits(ctx, logits, t, TG_REDUCE_MEAN);
        tg_params_zero_grad(tg_model_params(m));
        if (tg_backward(ctx, loss) != TG_OK) {
            fprintf(stderr, "%s\n", tg_ctx_error(ctx));
            return 1;
        }
        tg_optim_step(opt);
        if (step % 50 == 0)
            printf("step %3d  loss %.5f\n", step, tg_tensor_get(loss, 0));
    }
    int correct = 0;
    for (int i = 0; i < 4; i++) {
        double z = tg_tensor_get(logits, i);
        correct += (z > 0) == (ts[i] > 0.5f);
        printf("%g xor %g = %g   logit %+.3f\n", xs[i][0], xs[i][1], ts[i], z);
    }
    printf("accuracy %d/4\n", correct);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_ctx_free(ctx);
    return correct == 4 ? 0 : 1;
}
