/* binary_classifier.c — logistic regression on four points: two of class 0
 * near the origin, two of class 1 further out. One dense layer (2 -> 1),
 * binary cross-entropy on logits, plain SGD. Exits 0 when all four points
 * are classified correctly. */
#include <tapegrad.h>
#include <stdio.h>

int main(void)
{
    const float xs[4][2] = { {0.0f, 0.2f}, {0.3f, 0.1f}, {1.0f, 0.9f}, {0.8f, 1.2f} };
    const float ts[4] = { 0, 0, 1, 1 };
    char err[200];
    tg_model *m = tg_model_from_spec("2-1", TG_F32, 1, err, sizeof err);
    tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_SGD, 0.5);
    tg_optim *opt = m ? tg_optim_new(tg_model_params(m), &cfg, err, sizeof err) : NULL;
    tg_ctx *ctx = tg_ctx_new(NULL);
    if (!m || !opt || !ctx) {
        fprintf(stderr, "setup failed: %s\n", err);
        return 1;
    }
    tg_tensor *logits = NULL;
    for (int step = 0; step <= 500; step++) {
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
        if (step % 100 == 0)
            printf("step %3d  loss %.5f\n", step, tg_tensor_get(loss, 0));
    }
    int correct = 0;
    for (int i = 0; i < 4; i++) {
        double z = tg_tensor_get(logits, i);
        correct += (z > 0) == (ts[i] > 0.5f);
        printf("point (%.1f, %.1f)  class %g  logit %+.3f\n", xs[i][0], xs[i][1], ts[i], z);
    }
    printf("accuracy %d/4\n", correct);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_ctx_free(ctx);
    return correct == 4 ? 0 : 1;
}
