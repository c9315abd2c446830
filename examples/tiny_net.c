/* tiny_net.c — the 3-2-1 sigmoid network of the classic backprop tutorial,
 * trained by full-batch gradient descent on the 8 corners of the unit cube:
 * the target is the majority vote of the three inputs.
 *
 *   h = sigmoid(x·W1 + b1)      x: 8x3, W1: 3x2, b1: 2
 *   y = sigmoid(h·W2 + b2)      W2: 2x1, b2: 1
 *   loss = mean((y - t)²)
 *
 * Prints the loss every 500 steps and the final predictions; exits 0 when
 * every corner is classified correctly. */
#include <tapegrad.h>
#include <stdio.h>

enum { N = 8, IN = 3, HID = 2 };

int main(void)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 3 });
    tg_rng rng;
    tg_rng_seed(&rng, 3);

    /* Parameters: persistent tensors with their own gradients. */
    tg_tensor *W1 = tg_tensor_create(TG_F64, TG_DIMS(IN, HID), NULL);
    tg_tensor *b1 = tg_tensor_create(TG_F64, TG_DIMS(HID), NULL);
    tg_tensor *W2 = tg_tensor_create(TG_F64, TG_DIMS(HID, 1), NULL);
    tg_tensor *b2 = tg_tensor_create(TG_F64, TG_DIMS(1), NULL);
    tg_tensor *params[] = { W1, b1, W2, b2 };
    for (int p = 0; p < 4; p++) {
        if (!params[p] || tg_tensor_requires_grad(params[p]) != TG_OK) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (int64_t i = 0; i < params[p]->numel; i++)
            tg_tensor_set(params[p], i, tg_rng_uniform(&rng) * 2 - 1);
    }

    double xs[N * IN], ts[N];
    for (int i = 0; i < N; i++) {
        int ones = 0;
        for (int j = 0; j < IN; j++) {
            xs[i * IN + j] = (i >> j) & 1;
            ones += (i >> j) & 1;
        }
        ts[i] = ones >= 2;
    }

    const double lr = 2.0;
    tg_tensor *y = NULL;
    for (int step = 0; step <= 5000; step++) {
        tg_ctx_reset(ctx);
        tg_tensor *x = tg_tensor_from(ctx, TG_F64, TG_DIMS(N, IN), xs);
        tg_tensor *t = tg_tensor_from(ctx, TG_F64, TG_DIMS(N, 1), ts);
        tg_tensor *h = tg_sigmoid(ctx, tg_add(ctx, tg_matmul(ctx, x, W1), b1));
        y = tg_sigmoid(ctx, tg_add(ctx, tg_matmul(ctx, h, W2), b2));
        tg_tensor *loss = tg_mse_loss(ctx, y, t, TG_REDUCE_MEAN);
        if (tg_backward(ctx, loss) != TG_OK) {
            fprintf(stderr, "step %d: %s\n", step, tg_ctx_error(ctx));
            return 1;
        }
        if (step % 500 == 0)
            printf("step %4d  loss %.6f\n", step, tg_tensor_get(loss, 0));
        /* Plain SGD on the flat parameter data, then zero the gradients. */
        for (int p = 0; p < 4; p++) {
            double *w = params[p]->data, *g = params[p]->grad;
            for (int64_t i = 0; i < params[p]->numel; i++)
                w[i] -= lr * g[i];
            tg_tensor_zero_grad(params[p]);
        }
    }

    int correct = 0;
    for (int i = 0; i < N; i++) {
        double p = tg_tensor_get(y, i);
        correct += (p > 0.5) == (ts[i] > 0.5);
        printf("x = (%g, %g, %g)  target %g  prediction %.3f\n",
               xs[i * IN], xs[i * IN + 1], xs[i * IN + 2], ts[i], p);
    }
    printf("accuracy %d/%d\n", correct, N);
    for (int p = 0; p < 4; p++)
        tg_tensor_destroy(params[p]);
    tg_ctx_free(ctx);
    return correct == N ? 0 : 1;
}
