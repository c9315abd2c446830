/* test_nn_layers.c — the nn layer's layers in use (nn/model.c): dropout,
 * batch norm running statistics, layer norm, residual blocks, custom layers,
 * training through the flat gradient block, determinism, and L1/L2
 * penalties on a model's parameters. Expected values are worked out by hand
 * in the comments next to them. (Initialisers, specs and builders:
 * test_nn.c.) */
#include "tapegrad.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }
static void test_dropout(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    const double p = 0.3;
    tg_model *m = tg_model_new(TG_F64, 11), *m2 = tg_model_new(TG_F64, 11), *m3 = tg_model_new(TG_F64, 12);
    tg_model *ms[3] = { m, m2, m3 };
    for (int i = 0; i < 3; i++)
        TEST_CHECK(tg_model_add_dropout(ms[i], p) == TG_OK);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F64, TG_DIMS(100, 100), 1, 2);
    tg_tensor *y1 = tg_model_forward(ctx, m, x), *y2 = tg_model_forward(ctx, m, x);
    tg_tensor *z1 = tg_model_forward(ctx, m2, x), *z2 = tg_model_forward(ctx, m2, x);
    tg_tensor *w1 = tg_model_forward(ctx, m3, x);
    TEST_CHECK(y1 && y2 && z1 && z2 && w1);
    if (!(y1 && y2 && z1 && z2 && w1))
        return;
    int64_t n = x->numel, drop = 0, bad = 0, same12 = 0, diff_seed = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = tg_tensor_get(y1, i), xi = tg_tensor_get(x, i);
        drop += a == 0;
        bad += a != 0 && a != xi * (1 / (1 - p));      /* kept: scaled by 1/(1-p) */
        same12 += (a == 0) == (tg_tensor_get(y2, i) == 0);
        diff_seed += (a == 0) != (tg_tensor_get(w1, i) == 0);
    }
    /* 10000 Bernoulli(0.3): sd 0.0046 */
    TEST_CHECK_MSG(fabs((double)drop / (double)n - p) < 0.02, "dropped %lld of %lld", (long long)drop, (long long)n);
    TEST_CHECK(bad == 0);
    /* a new mask each step: two masks agree at about p² + (1-p)² = 58% */
    TEST_CHECK_MSG(same12 > 0.5 * (double)n && same12 < 0.66 * (double)n, "%lld", (long long)same12);
    TEST_CHECK(diff_seed > 0.3 * (double)n);
    /* reproducible from the model seed, step by step */
    TEST_CHECK(memcmp(y1->data, z1->data, (size_t)n * 8) == 0);
    TEST_CHECK(memcmp(y2->data, z2->data, (size_t)n * 8) == 0);
    /* eval: the identity */
    tg_model_set_training(m, 0);
    TEST_CHECK(tg_model_training(m) == 0);
    tg_tensor *e = tg_model_forward(ctx, m, x);
    TEST_CHECK(e && memcmp(e->data, x->data, (size_t)n * 8) == 0);
    /* p = 0: the identity in train mode too */
    tg_model *m0 = tg_model_new(TG_F32, 1);
    tg_model_add_dropout(m0, 0);
    tg_tensor *xf = tg_tensor_rand(ctx, TG_F32, TG_DIMS(5, 5), -1, 1);
    tg_tensor *yf = tg_model_forward(ctx, m0, xf);
    TEST_CHECK(yf && memcmp(yf->data, xf->data, 25 * 4) == 0);
    /* the gradient goes through the kept elements only */
    tg_model_set_training(m, 1);
    tg_ctx_reset(ctx);
    tg_tensor *xg = tg_tensor_fill(ctx, TG_F64, TG_DIMS(10, 10), 1.0);
    tg_tensor_requires_grad(xg);
    tg_tensor *yg = tg_model_forward(ctx, m, xg);
    TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, yg)) == TG_OK);
    int ok = 1;
    for (int64_t i = 0; i < 100; i++)
        ok &= fabs(tg_tensor_grad_get(xg, i) - tg_tensor_get(yg, i)) <= 1e-15 * tg_tensor_get(yg, i); /* x = 1: dy/dx = y */
    TEST_CHECK(ok);
    tg_model_free(m0);
    for (int i = 0; i < 3; i++)
        tg_model_free(ms[i]);
    tg_ctx_free(ctx);
}

/* ---- batch norm, layer norm ------------------------------------------------------- */

static void set_vals(tg_tensor *t, const double *v)
{
    for (int64_t i = 0; i < t->numel; i++)
        tg_tensor_set(t, i, v[i]);
}

static tg_tensor *from(tg_ctx *ctx, tg_dtype dt, int64_t r, int64_t c, const double *v)
{
    tg_tensor *t = tg_tensor_new(ctx, dt, TG_DIMS(r, c));
    if (t)
        set_vals(t, v);
    return t;
}

static void test_batchnorm(tg_dtype dt)
{
    const double tol = dt == TG_F64 ? 1e-12 : 1e-6, eps = 1e-5;
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_model *m = tg_model_new(dt, 1);
    TEST_CHECK(tg_model_add_batchnorm(m, 3, 0.1, eps) == TG_OK);
    tg_tensor *rm = tg_params_find(tg_model_buffers(m), "bn1.running_mean");
    tg_tensor *rv = tg_params_find(tg_model_buffers(m), "bn1.running_var");
    TEST_CHECK(rm && rv && tg_params_count(tg_model_params(m)) == 2);
    if (!rm || !rv)
        return;
    /* Batch 1, per channel (columns):
     *   c0: 1 2 3 4     mean 2.5, biased var 1.25, unbiased 5/3
     *   c1: 0 0 0 0     mean 0,   var 0 (constant channel)
     *   c2: -2 2 -2 2   mean 0,   biased var 4, unbiased 16/3
     * running_mean = 0.9 * 0 + 0.1 * mean = (0.25, 0, 0)
     * running_var  = 0.9 * 1 + 0.1 * unbiased = (0.9 + 1/6, 0.9, 0.9 + 8/15) */
    const double b1[12] = { 1, 0, -2,  2, 0, 2,  3, 0, -2,  4, 0, 2 };
    tg_tensor *y = tg_model_forward(ctx, m, from(ctx, dt, 4, 3, b1));
    TEST_CHECK_MSG(y != NULL, "%s", tg_ctx_error(ctx));
    if (!y)
        return;
    TEST_CLOSE(tg_tensor_get(rm, 0), 0.25, tol, 0);
    TEST_CLOSE(tg_tensor_get(rm, 1), 0.0, tol, 0);
    TEST_CLOSE(tg_tensor_get(rm, 2), 0.0, tol, 0);
    TEST_CLOSE(tg_tensor_get(rv, 0), 0.9 + 1.0 / 6, tol, 0);
    TEST_CLOSE(tg_tensor_get(rv, 1), 0.9, tol, 0);
    TEST_CLOSE(tg_tensor_get(rv, 2), 0.9 + 8.0 / 15, tol, 0);
    /* train-mode output from the batch statistics (gamma 1, beta 0):
     * c0 row 0: (1 - 2.5) / sqrt(1.25 + eps); the constant c1 gives 0;
     * c2 row 1: 2 / sqrt(4 + eps) */
    TEST_CLOSE(tg_tensor_get(y, 0), -1.5 / sqrt(1.25 + eps), tol, tol);
    TEST_CLOSE(tg_tensor_get(y, 4), 0.0, 0, 0);
    TEST_CLOSE(tg_tensor_get(y, 5), 2 / sqrt(4 + eps), tol, tol);
    /* Batch 2:
     *   c0: 10 10 12 12  mean 11,  unbiased var 4/3
     *   c1: 1 2 3 4      mean 2.5, unbiased var 5/3
     *   c2: 5 5 5 5      mean 5,   var 0
     * running_mean = 0.9 * (0.25, 0, 0) + 0.1 * (11, 2.5, 5) = (1.325, 0.25, 0.5)
     * running_var  = 0.9 * (0.9 + 1/6, 0.9, 0.9 + 8/15) + 0.1 * (4/3, 5/3, 0)
     *              = (0.81 + 0.15 + 2/15, 0.81 + 1/6, 0.81 + 0.48) */
    const double b2[12] = { 10, 1, 5,  10, 2, 5,  12, 3, 5,  12, 4, 5 };
    tg_ctx_reset(ctx);
    y = tg_model_forward(ctx, m, from(ctx, dt, 4, 3, b2));
    TEST_CHECK(y != NULL);
    const double want_rm[3] = { 1.325, 0.25, 0.5 };
    const double want_rv[3] = { 0.81 + 0.15 + 2.0 / 15, 0.81 + 1.0 / 6, 0.81 + 0.48 };
    for (int c = 0; c < 3; c++) {
        TEST_CLOSE(tg_tensor_get(rm, c), want_rm[c], tol, 0);
        TEST_CLOSE(tg_tensor_get(rv, c), want_rv[c], tol, 0);
    }
    /* The constant channel's output is finite (beta). */
    for (int64_t i = 2; y && i < 12; i += 3)
        TEST_CHECK(tg_tensor_get(y, i) == 0);

    /* Eval: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta,
     * and the statistics stay as they are. */
    const double gamma[3] = { 2, -1, 0.5 }, beta[3] = { 0.1, 0.2, 0.3 };
    set_vals(tg_params_find(tg_model_params(m), "bn1.gamma"), gamma);
    set_vals(tg_params_find(tg_model_params(m), "bn1.beta"), beta);
    tg_model_set_training(m, 0);
    const double xe[6] = { 3, -1, 0.5,  1.325, 7, -4 };
    tg_ctx_reset(ctx);
    y = tg_model_forward(ctx, m, from(ctx, dt, 2, 3, xe));
    TEST_CHECK_MSG(y != NULL, "%s", tg_ctx_error(ctx));
    for (int64_t i = 0; y && i < 6; i++) {
        int c = (int)(i % 3);
        TEST_CLOSE(tg_tensor_get(y, i), gamma[c] * (xe[i] - want_rm[c]) / sqrt(want_rv[c] + eps) + beta[c], tol, tol);
    }
    TEST_CLOSE(tg_tensor_get(y, 3), beta[0], tol, 0);     /* x = running mean */
    for (int c = 0; c < 3; c++)
        TEST_CLOSE(tg_tensor_get(rm, c), want_rm[c], tol, 0);
    /* eval mode: a single row is fine; train mode needs two */
    tg_ctx_reset(ctx);
    TEST_CHECK(tg_model_forward(ctx, m, from(ctx, dt, 1, 3, xe)) != NULL);
    tg_model_set_training(m, 1);
    TEST_CHECK(tg_model_forward(ctx, m, from(ctx, dt, 1, 3, xe)) == NULL);
    TEST_CHECK_MSG(has(tg_ctx_error(ctx), "more than 1 value per channel"), "%s", tg_ctx_error(ctx));
    TEST_CLOSE(tg_tensor_get(rm, 0), want_rm[0], tol, 0);     /* untouched by the failure */

    /* A constant input in train mode; then eval with its zero variance. */
    tg_model *mc = tg_model_new(dt, 1);
    tg_model_add_batchnorm(mc, 2, 1.0, eps);               /* momentum 1: the last batch */
    const double cst[6] = { 7, -3, 7, -3, 7, -3 };
    tg_ctx_reset(ctx);
    y = tg_model_forward(ctx, mc, from(ctx, dt, 3, 2, cst));
    TEST_CHECK(y && tg_tensor_get(y, 0) == 0 && tg_tensor_get(y, 5) == 0);
    tg_tensor *cv = tg_params_find(tg_model_buffers(mc), "bn1.running_var");
    TEST_CHECK(tg_tensor_get(cv, 0) == 0 && tg_tensor_get(cv, 1) == 0);
    tg_model_set_training(mc, 0);
    const double off[2] = { 8, -3 };
    y = tg_model_forward(ctx, mc, from(ctx, dt, 1, 2, off));
    TEST_CHECK(y && isfinite(tg_tensor_get(y, 0)) && tg_tensor_get(y, 1) == 0);
    TEST_CLOSE(y ? tg_tensor_get(y, 0) : 0, 1 / sqrt(eps), 0, 1e-5);
    tg_model_free(mc);

    /* momentum 0.3 */
    tg_model *m3 = tg_model_new(dt, 1);
    tg_model_add_batchnorm(m3, 3, 0.3, eps);
    tg_ctx_reset(ctx);
    tg_model_forward(ctx, m3, from(ctx, dt, 4, 3, b1));
    TEST_CLOSE(tg_tensor_get(tg_params_find(tg_model_buffers(m3), "bn1.running_var"), 0), 0.7 + 0.3 * 5 / 3.0, tol, 0);
    TEST_CLOSE(tg_tensor_get(tg_params_find(tg_model_buffers(m3), "bn1.running_mean"), 0), 0.75, tol, 0);
    tg_model_free(m3);
    tg_model_free(m);
    tg_ctx_free(ctx);
}

static void test_layernorm(tg_dtype dt)
{
    const double tol = dt == TG_F64 ? 1e-12 : 1e-6, eps = 1e-5;
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_model *m = tg_model_new(dt, 1);
    TEST_CHECK(tg_model_add_layernorm(m, 4, eps) == TG_OK);
    const double gamma[4] = { 1, -1, 2, 0.5 }, beta[4] = { 0, 1, 0, -1 };
    set_vals(tg_params_find(tg_model_params(m), "ln1.gamma"), gamma);
    set_vals(tg_params_find(tg_model_params(m), "ln1.beta"), beta);
    /* Row 0: 1 2 3 4: mean 2.5, var 1.25, r = 1 / sqrt(1.25 + eps)
     *   y = (-1.5 r, 0.5 r + 1, r, 0.75 r - 1)
     * Row 1: constant: y = beta. Row 2: 0 0 0 8: mean 2, var 12,
     *   r = 1 / sqrt(12 + eps): y = (-2 r, 2 r + 1, -4 r, 3 r - 1). */
    const double x[12] = { 1, 2, 3, 4,  5, 5, 5, 5,  0, 0, 0, 8 };
    tg_tensor *y = tg_model_forward(ctx, m, from(ctx, dt, 3, 4, x));
    TEST_CHECK(y != NULL);
    double r = 1 / sqrt(1.25 + eps), q = 1 / sqrt(12 + eps);
    const double want[12] = { -1.5 * r, 0.5 * r + 1, r, 0.75 * r - 1,  0, 1, 0, -1,
                              -2 * q, 2 * q + 1, -4 * q, 3 * q - 1 };
    for (int i = 0; y && i < 12; i++)
        TEST_CLOSE(tg_tensor_get(y, i), want[i], tol, tol);
    /* the same in eval mode: layer norm has no running statistics */
    tg_model_set_training(m, 0);
    tg_tensor *y2 = tg_model_forward(ctx, m, from(ctx, dt, 3, 4, x));
    TEST_CHECK(y && y2 && memcmp(y->data, y2->data, 12 * tg_dtype_size(dt)) == 0);
    tg_model_free(m);
    tg_ctx_free(ctx);
}

/* ---- residual, custom ------------------------------------------------------------- */

typedef struct seen { int calls, train_calls; void *ud; } seen;

static tg_tensor *spy(tg_ctx *ctx, tg_tensor *x, int training, void *ud)
{
    seen *s = ud;
    s->calls++;
    s->train_calls += training;
    s->ud = ud;
    return tg_mul_scalar(ctx, x, training ? 2.0 : 3.0);
}

static void test_residual_and_custom(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_model *m = tg_model_new(TG_F64, 1);
    TEST_CHECK(tg_model_begin_residual(m) == TG_OK);
    TEST_CHECK(tg_model_add_dense(m, 2, 2, TG_INIT_ZEROS) == TG_OK);
    TEST_CHECK(tg_model_add_activation(m, TG_ACT_RELU, 0) == TG_OK);
    TEST_CHECK(tg_model_end_residual(m) == TG_OK);
    seen s = { 0, 0, NULL };
    TEST_CHECK(tg_model_add_custom(m, "spy", spy, &s) == TG_OK);
    /* W = [[1, -1], [2, 0.5]] (in x out), b = (0.5, -3)
     * x = (1, 2):  xW + b = (5.5, -3): relu (5.5, 0): x + f(x) = (6.5, 2)
     * x = (-1, 1): xW + b = (1.5, -1.5): relu (1.5, 0): (0.5, 1)
     * then the spy doubles (train) or triples (eval). */
    const double w[4] = { 1, -1, 2, 0.5 }, b[2] = { 0.5, -3 }, x[4] = { 1, 2, -1, 1 };
    set_vals(tg_params_find(tg_model_params(m), "dense1.weight"), w);
    set_vals(tg_params_find(tg_model_params(m), "dense1.bias"), b);
    tg_tensor *y = tg_model_forward(ctx, m, from(ctx, TG_F64, 2, 2, x));
    const double want[4] = { 6.5, 2, 0.5, 1 };
    for (int i = 0; y && i < 4; i++)
        TEST_CHECK(tg_tensor_get(y, i) == 2 * want[i]);
    TEST_CHECK(s.calls == 1 && s.train_calls == 1 && s.ud == &s);
    tg_model_set_training(m, 0);
    y = tg_model_forward(ctx, m, from(ctx, TG_F64, 2, 2, x));
    for (int i = 0; y && i < 4; i++)
        TEST_CHECK(tg_tensor_get(y, i) == 3 * want[i]);
    TEST_CHECK(s.calls == 2 && s.train_calls == 1);
    char d[256];
    tg_model_describe(m, d, sizeof d);
    TEST_CHECK_MSG(!strcmp(d, "res1: residual x + f(x)\n  dense1: dense 2 -> 2\n  act1: relu\nspy: custom\n"), "%s", d);
    tg_model_free(m);

    /* Activation layers pass their parameter: leaky slope 0.2, elu alpha 0.5;
     * 0 means the default (0.01, 1). */
    struct { tg_act a; double p, x, want; } acts[] = {
        { TG_ACT_LEAKY_RELU, 0.2, -2, -0.4 }, { TG_ACT_LEAKY_RELU, 0, -2, -0.02 },
        { TG_ACT_ELU, 0.5, -1, 0.5 * expm1(-1) }, { TG_ACT_ELU, 0, -1, expm1(-1) },
        { TG_ACT_RELU, 0, -1, 0 }, { TG_ACT_SIGMOID, 0, 0, 0.5 }, { TG_ACT_TANH, 0, 1, tanh(1) },
        { TG_ACT_SOFTPLUS, 0, 0, log(2) }, { TG_ACT_SILU, 0, 1, 1 / (1 + exp(-1)) },
        { TG_ACT_GELU, 0, 1, 0.5 * (1 + erf(1 / sqrt(2))) }, { TG_ACT_SOFTMAX, 0, 3, 1 },
    };
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
        tg_model *ma = tg_model_new(TG_F64, 1);
        tg_model_add_activation(ma, acts[i].a, acts[i].p);
        tg_tensor *ya = tg_model_forward(ctx, ma, from(ctx, TG_F64, 1, 1, &acts[i].x));
        TEST_CHECK_MSG(ya && fabs(tg_tensor_get(ya, 0) - acts[i].want) < 1e-12, "%s(%g)",
                       tg_act_name(acts[i].a), acts[i].p);
        tg_model_free(ma);
    }
    tg_ctx_free(ctx);
}

/* ---- training through the parameter store ------------------------------------------ */

static double xs[32 * 6];
static int32_t ys[32];

static tg_tensor *loss_of(tg_ctx *ctx, tg_model *m)
{
    tg_dtype dt = tg_params_dtype(tg_model_params(m));
    tg_tensor *x = tg_tensor_new(ctx, dt, TG_DIMS(32, 6));
    for (int64_t i = 0; x && i < 32 * 6; i++)
        tg_tensor_set(x, i, xs[i]);
    tg_tensor *y = tg_tensor_from(ctx, TG_I32, TG_DIMS(32), ys);
    return tg_cross_entropy(ctx, tg_model_forward(ctx, m, x), y, TG_REDUCE_MEAN);
}

static void make_data(void)
{
    tg_rng r;
    tg_rng_seed(&r, 77);
    for (int i = 0; i < 32; i++) {
        ys[i] = (int32_t)tg_rng_below(&r, 3);
        for (int j = 0; j < 6; j++)
            xs[i * 6 + j] = tg_rng_normal(&r) + (j == ys[i] ? 1.5 : 0);
    }
}

static int train(tg_model *m, int steps, tg_optim_kind kind)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 3 });
    tg_optim_config c = tg_optim_defaults(kind, 0.01);
    tg_optim *o = tg_optim_new(tg_model_params(m), &c, NULL, 0);
    int ok = ctx && o;
    for (int s = 0; ok && s < steps; s++) {
        tg_params_zero_grad(tg_model_params(m));
        ok = tg_backward(ctx, loss_of(ctx, m)) == TG_OK && tg_optim_step(o) == TG_OK;
        tg_ctx_reset(ctx);
    }
    tg_optim_free(o);
    tg_ctx_free(ctx);
    return ok;
}

static void test_optimizer_link(void)
{
    char err[200];
    tg_model *m = tg_model_from_spec("6-8tanh_bn-3", TG_F64, 5, err, sizeof err);
    tg_params *p = tg_model_params(m);
    tg_ctx *ctx = tg_ctx_new(NULL);
    int64_t len = tg_params_len(p);
    double *before = malloc((size_t)len * sizeof *before), *g = malloc((size_t)len * sizeof *g);
    /* every parameter's value and gradient are views into the flat blocks */
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_get(p, i);
        TEST_CHECK((double *)t->data == (double *)tg_params_values(p) + tg_params_offset(p, i));
        TEST_CHECK((double *)t->grad == (double *)tg_params_grads(p) + tg_params_offset(p, i));
    }
    memcpy(before, tg_params_values(p), (size_t)len * sizeof *before);
    tg_params_zero_grad(p);
    TEST_CHECK(tg_backward(ctx, loss_of(ctx, m)) == TG_OK);
    memcpy(g, tg_params_grads(p), (size_t)len * sizeof *g);
    int64_t nonzero = 0;
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_get(p, i);
        for (int64_t k = 0; k < t->numel; k++)
            nonzero += g[tg_params_offset(p, i) + k] != 0;
    }
    TEST_CHECK_MSG(nonzero == tg_params_numel(p), "%lld of %lld gradients non-zero", (long long)nonzero,
                   (long long)tg_params_numel(p));
    /* One Adam step: w -= lr g / (|g| + eps) with bias-corrected moments
     * (m = g, v = g² after one step): about lr against the gradient's sign. */
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_ADAM, 0.01);
    tg_optim *o = tg_optim_new(p, &c, err, sizeof err);
    TEST_CHECK(o && tg_optim_step(o) == TG_OK);
    const double *after = tg_params_values(p);
    int bad = 0;
    for (int64_t k = 0; k < len; k++)
        bad += fabs(after[k] - (before[k] - 0.01 * g[k] / (fabs(g[k]) + 1e-8))) > 1e-12;
    TEST_CHECK_MSG(bad == 0, "%d parameters off the Adam step", bad);
    TEST_CHECK(after[0] != before[0] && fabs(after[0] - before[0]) > 0.0099);
    tg_params_zero_grad(p);
    int nz = 0;
    for (int64_t k = 0; k < len; k++)
        nz += ((double *)tg_params_grads(p))[k] != 0;
    TEST_CHECK(nz == 0);
    /* Gradients written by hand after zero_grad and announced with
     * tg_params_touch_grads are added to, not overwritten: the backward
     * then gives g + 0.5 everywhere (and plain g again after a zero_grad). */
    tg_ctx_reset(ctx);
    double *gw = tg_params_grads(p);
    for (int64_t k = 0; k < len; k++)
        gw[k] = 0.5;
    tg_params_touch_grads(p);
    TEST_CHECK(tg_backward(ctx, loss_of(ctx, m)) == TG_OK);
    double *g2 = malloc((size_t)len * sizeof *g2);
    memcpy(g2, tg_params_grads(p), (size_t)len * sizeof *g2);
    tg_ctx_reset(ctx);
    tg_params_zero_grad(p);
    TEST_CHECK(tg_backward(ctx, loss_of(ctx, m)) == TG_OK);
    int off = 0;
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_get(p, i);
        for (int64_t k = 0, o0 = tg_params_offset(p, i); k < t->numel; k++)
            off += fabs(g2[o0 + k] - (((double *)tg_params_grads(p))[o0 + k] + 0.5)) > 1e-12;
    }
    TEST_CHECK_MSG(off == 0, "%d gradients lost the hand-written 0.5", off);
    free(g2);
    tg_params_zero_grad(p);
    /* a few more steps lower the loss */
    tg_ctx_reset(ctx);
    double l0 = tg_tensor_get(loss_of(ctx, m), 0);
    TEST_CHECK(train(m, 30, TG_OPTIM_ADAM));
    tg_ctx_reset(ctx);
    double l1 = tg_tensor_get(loss_of(ctx, m), 0);
    TEST_CHECK_MSG(l1 < 0.8 * l0, "loss %g -> %g", l0, l1);
    tg_optim_free(o);
    free(before);
    free(g);
    tg_model_free(m);
    tg_ctx_free(ctx);
}

static int same_block(tg_params *a, tg_params *b)
{
    size_t n = (size_t)tg_params_len(a) * tg_dtype_size(tg_params_dtype(a));
    return tg_params_len(a) == tg_params_len(b) && memcmp(tg_params_values(a), tg_params_values(b), n) == 0;
}

static void test_determinism(void)
{
    const char *spec = "6-16relu_bn_d0.2-16tanh_ln_res_d0.1-3";
    for (int f64 = 0; f64 <= 1; f64++) {
        tg_dtype dt = f64 ? TG_F64 : TG_F32;
        tg_model *a = tg_model_from_spec(spec, dt, 21, NULL, 0), *b = tg_model_from_spec(spec, dt, 21, NULL, 0);
        tg_model *c = tg_model_from_spec(spec, dt, 22, NULL, 0);
        TEST_CHECK(a && b && c);
        if (!(a && b && c))
            return;
        TEST_CHECK(same_block(tg_model_params(a), tg_model_params(b)));
        TEST_CHECK(!same_block(tg_model_params(a), tg_model_params(c)));
        TEST_CHECK(train(a, 20, TG_OPTIM_ADAM) && train(b, 20, TG_OPTIM_ADAM) && train(c, 20, TG_OPTIM_ADAM));
        TEST_CHECK(same_block(tg_model_params(a), tg_model_params(b)));
        TEST_CHECK(same_block(tg_model_buffers(a), tg_model_buffers(b)));
        TEST_CHECK(memcmp(tg_model_rng(a), tg_model_rng(b), sizeof(tg_rng)) == 0);
        TEST_CHECK(!same_block(tg_model_params(a), tg_model_params(c)));
        /* different dropout masks alone (same initial weights) also differ */
        tg_model *d = tg_model_from_spec(spec, dt, 21, NULL, 0);
        tg_rng_seed(tg_model_rng(d), 1000);
        TEST_CHECK(train(d, 20, TG_OPTIM_ADAM));
        TEST_CHECK(!same_block(tg_model_params(a), tg_model_params(d)));
        tg_model_free(a);
        tg_model_free(b);
        tg_model_free(c);
        tg_model_free(d);
    }
}

/* L2 / L1 through a model's parameters: the penalty's gradient is added to
 * the loss's gradient exactly, and equals the tape's gradient of the same
 * penalty written with ops. */
static void test_penalties(void)
{
    tg_model *m = tg_model_from_spec("6-5tanh-3", TG_F64, 9, NULL, 0);
    tg_params *p = tg_model_params(m);
    tg_ctx *ctx = tg_ctx_new(NULL);
    int64_t len = tg_params_len(p);
    double *g0 = malloc((size_t)len * sizeof *g0), *gp = malloc((size_t)len * sizeof *gp);
    const double *w = tg_params_values(p), *g = tg_params_grads(p);
    const double lam = 0.03;
    for (int l1 = 0; l1 <= 1; l1++) {
        tg_params_zero_grad(p);
        tg_ctx_reset(ctx);
        TEST_CHECK(tg_backward(ctx, loss_of(ctx, m)) == TG_OK);
        memcpy(g0, g, (size_t)len * sizeof *g0);
        double pen = l1 ? tg_params_l1_penalty(p, lam, ".weight") : tg_params_l2_penalty(p, lam, ".weight");
        double want_pen = 0;
        int bad = 0;
        for (int i = 0; i < tg_params_count(p); i++) {
            int is_w = has(tg_params_name(p, i), ".weight");
            tg_tensor *t = tg_params_get(p, i);
            for (int64_t k = 0, o = tg_params_offset(p, i); k < t->numel; k++, o++) {
                double dp = !is_w ? 0 : l1 ? lam * ((w[o] > 0) - (w[o] < 0)) : 2 * lam * w[o];
                want_pen += !is_w ? 0 : l1 ? fabs(w[o]) : w[o] * w[o];
                bad += g[o] != g0[o] + dp;
            }
        }
        TEST_CHECK_MSG(bad == 0, "%s: %d gradients off", l1 ? "l1" : "l2", bad);
        TEST_CLOSE(pen, lam * want_pen, 1e-14, 1e-12);
        memcpy(gp, g, (size_t)len * sizeof *gp);
        /* the same penalty recorded on the tape */
        tg_params_zero_grad(p);
        tg_ctx_reset(ctx);
        tg_tensor *loss = loss_of(ctx, m);
        for (int i = 0; i < tg_params_count(p); i++) {
            if (!has(tg_params_name(p, i), ".weight"))
                continue;
            tg_tensor *t = tg_params_get(p, i);
            tg_tensor *r = tg_sum_all(ctx, l1 ? tg_abs(ctx, t) : tg_square(ctx, t));
            loss = tg_add(ctx, loss, tg_mul_scalar(ctx, r, lam));
        }
        TEST_CHECK(tg_backward(ctx, loss) == TG_OK);
        double maxd = 0;
        for (int64_t k = 0; k < len; k++)
            maxd = fmax(maxd, fabs(g[k] - gp[k]));
        TEST_CHECK_MSG(maxd < 1e-15, "%s: tape and penalty gradients differ by %g", l1 ? "l1" : "l2", maxd);
    }
    free(gp);
    free(g0);
    tg_model_free(m);
    tg_ctx_free(ctx);
}

static void test_norms(void)
{
    test_batchnorm(TG_F64);
    test_batchnorm(TG_F32);
    test_layernorm(TG_F64);
    test_layernorm(TG_F32);
}

static void test_training(void)
{
    make_data();
    test_optimizer_link();
    test_determinism();
    test_penalties();
}

int main(void)
{
    test_dropout();
    test_norms();
    test_residual_and_custom();
    test_training();
    return test_report("test_nn_layers");
}
