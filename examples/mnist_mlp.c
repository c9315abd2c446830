/* mnist_mlp.c — the classic 784-128-10 classifier, as a program to copy:
 * load Fashion-MNIST, build the model layer by layer, train with Adam on
 * shuffled minibatches, evaluate, save a checkpoint. `tapegrad train` does
 * the same with every option; this is the loop laid bare.
 *
 *   usage: mnist_mlp [EPOCHS [TRAIN_IMAGES [DATA_DIR]]]     (10, all, Debian's)
 *   build: gcc -O2 mnist_mlp.c $(pkg-config --cflags --libs tapegrad)
 */
#include <tapegrad.h>
#include <stdio.h>
#include <stdlib.h>

enum { BATCH = 128 };

static double accuracy(tg_ctx *ctx, tg_model *m, const tg_dataset *ds)
{
    int64_t correct = 0;
    tg_model_set_training(m, 0);
    TG_NO_GRAD(ctx) {
        for (int64_t s = 0; s < ds->n; s += 1000) {
            int64_t b = ds->n - s < 1000 ? ds->n - s : 1000;
            tg_tensor *x = tg_tensor_wrap(ctx, TG_F32, TG_DIMS(b, ds->d), ds->x + s * ds->d);
            tg_tensor *logits = tg_model_forward(ctx, m, x);
            for (int64_t i = 0; logits && i < b; i++) {
                const float *row = (const float *)logits->data + i * 10;
                int best = 0;
                for (int k = 1; k < 10; k++)
                    if (row[k] > row[best])
                        best = k;
                correct += best == ds->y[s + i];
            }
            tg_ctx_reset(ctx);
        }
    }
    tg_model_set_training(m, 1);
    return (double)correct / (double)ds->n;
}

int main(int argc, char **argv)
{
    int epochs = argc > 1 ? atoi(argv[1]) : 10;
    long limit = argc > 2 ? atol(argv[2]) : 0;
    const char *dir = argc > 3 ? argv[3] : "/usr/share/datasets/fashion-mnist";
    char err[512];

    tg_dataset train, test;
    if (tg_fashion_mnist_load(dir, 1, &train, err, sizeof err) != TG_OK ||
        tg_fashion_mnist_load(dir, 0, &test, err, sizeof err) != TG_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (limit > 0 && limit < train.n)
        train.n = limit;          /* the first `limit` images; the buffers stay owned */

    /* 784 -> 128 (ReLU) -> 10 logits. He initialisation for the ReLU layer. */
    tg_model *m = tg_model_new(TG_F32, 42);
    if (!m || tg_model_add_dense(m, 784, 128, TG_INIT_HE_UNIFORM) != TG_OK ||
        tg_model_add_activation(m, TG_ACT_RELU, 0) != TG_OK ||
        tg_model_add_dense(m, 128, 10, TG_INIT_XAVIER_UNIFORM) != TG_OK) {
        fprintf(stderr, "could not build the model\n");
        return 1;
    }
    tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_ADAM, 1e-3);
    tg_optim *opt = tg_optim_new(tg_model_params(m), &cfg, err, sizeof err);
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 42 });
    tg_batch_iter it;
    float *xb = malloc(sizeof(float) * BATCH * 784);
    int32_t *yb = malloc(sizeof(int32_t) * BATCH);
    if (!opt || !ctx || !xb || !yb || tg_batch_iter_init(&it, &train, BATCH, 1, 42, 0) != TG_OK) {
        fprintf(stderr, "setup failed: %s\n", err);
        return 1;
    }

    for (int epoch = 0; epoch < epochs; epoch++) {
        double sum = 0;
        int64_t n = 0, b;
        tg_batch_iter_seek_epoch(&it, epoch);
        while ((b = tg_batch_iter_next(&it, xb, yb)) > 0) {
            tg_tensor *x = tg_tensor_wrap(ctx, TG_F32, TG_DIMS(b, 784), xb);
            tg_tensor *y = tg_tensor_wrap(ctx, TG_I32, TG_DIMS(b), yb);
            tg_tensor *loss = tg_cross_entropy(ctx, tg_model_forward(ctx, m, x), y, TG_REDUCE_MEAN);
            tg_params_zero_grad(tg_model_params(m));
            if (tg_backward(ctx, loss) != TG_OK) {       /* one check covers the whole step */
                fprintf(stderr, "%s\n", tg_ctx_error(ctx));
                return 1;
            }
            sum += tg_tensor_get(loss, 0);
            n++;
            tg_optim_step(opt);
            tg_ctx_reset(ctx);                           /* every intermediate dies here */
        }
        printf("epoch %d  train loss %.4f  test accuracy %.4f\n", epoch + 1, sum / (double)n,
               accuracy(ctx, m, &test));
    }
    double acc = accuracy(ctx, m, &test);
    tg_st_meta meta[] = { { "spec", "784-128relu-10" } };
    if (tg_model_save("mnist_mlp.ckpt", m, opt, meta, 1, err, sizeof err) != TG_OK)
        fprintf(stderr, "%s\n", err);
    printf("test_accuracy=%.4f\n", acc);

    free(xb);
    free(yb);
    tg_batch_iter_free(&it);
    tg_ctx_free(ctx);
    tg_optim_free(opt);
    tg_model_free(m);
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    return acc > 0.5 ? 0 : 1;
}
