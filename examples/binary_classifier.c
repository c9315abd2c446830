/* binary_classifier.c — two four-point binary problems, one training loop:
 *   1. logistic regression: two points of class 0 near the origin, two of
 *      class 1 further out; one dense layer (2 -> 1), plain SGD;
 *   2. XOR: not linearly separable, so it needs a hidden layer; a
 *      2-8tanh-1 network, Adam.
 * Both use binary cross-entropy on the logit. Exits 0 when every point of
 * both problems is classified correctly. */
#include <tapegrad.h>
#include <stdio.h>

typedef struct problem {
    const char *name, *spec;         /* spec: see tg_model_from_spec */
    float xs[4][2], ts[4];
    tg_optim_kind opt;
    double lr;
    int steps;
} problem;

/* Train `pb` from scratch; returns how many of its 4 points end correct. */
static int fit(const problem *pb)
{
    char err[200] = "out of memory";
    tg_model *m = tg_model_from_spec(pb->spec, TG_F32, 42, err, sizeof err);
    tg_optim_config cfg = tg_optim_defaults(pb->opt, pb->lr);
    tg_optim *opt = m ? tg_optim_new(tg_model_params(m), &cfg, err, sizeof err) : NULL;
    tg_ctx *ctx = tg_ctx_new(NULL);
    int correct = -1;
    if (!m || !opt || !ctx) {
        fprintf(stderr, "%s: setup failed: %s\n", pb->name, err);
        goto done;
    }
    printf("%s: model %s, %s lr %g\n", pb->name, pb->spec, tg_optim_kind_name(pb->opt), pb->lr);
    tg_tensor *logits = NULL;
    for (int step = 0; step <= pb->steps; step++) {
        tg_ctx_reset(ctx);
        tg_tensor *x = tg_tensor_from(ctx, TG_F32, TG_DIMS(4, 2), pb->xs);
        tg_tensor *t = tg_tensor_from(ctx, TG_F32, TG_DIMS(4, 1), pb->ts);
        logits = tg_model_forward(ctx, m, x);
        tg_tensor *loss = tg_bce_with_logits(ctx, logits, t, TG_REDUCE_MEAN);
        tg_params_zero_grad(tg_model_params(m));
        if (tg_backward(ctx, loss) != TG_OK) {
            fprintf(stderr, "%s: %s\n", pb->name, tg_ctx_error(ctx));
            goto done;
        }
        tg_optim_step(opt);
        if (step % (pb->steps / 5) == 0)
            printf("  step %3d  loss %.5f\n", step, tg_tensor_get(loss, 0));
    }
    correct = 0;
    for (int i = 0; i < 4; i++) {
        double z = tg_tensor_get(logits, i);   /* the last forward's logits */
        correct += (z > 0) == (pb->ts[i] > 0.5f);
        printf("  point (%.1f, %.1f)  class %g  logit %+.3f\n", pb->xs[i][0], pb->xs[i][1], pb->ts[i], z);
    }
    printf("  accuracy %d/4\n", correct);
done:
    tg_optim_free(opt);
    tg_model_free(m);
    tg_ctx_free(ctx);
    return correct;
}

int main(void)
{
    const problem problems[] = {
        { "logistic regression", "2-1",
          { {0.0f, 0.2f}, {0.3f, 0.1f}, {1.0f, 0.9f}, {0.8f, 1.2f} }, { 0, 0, 1, 1 },
          TG_OPTIM_SGD, 0.5, 500 },
        { "xor", "2-8tanh-1",
          { {0, 0}, {0, 1}, {1, 0}, {1, 1} }, { 0, 1, 1, 0 },
          TG_OPTIM_ADAM, 0.05, 300 },
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof problems / sizeof problems[0]; i++)
        ok &= fit(&problems[i]) == 4;
    return ok ? 0 : 1;
}
