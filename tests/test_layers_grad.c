/* test_layers_grad.c — every layer kind of nn/model.c gradient-checked
 * through tg_gradcheck_fn_check, the checker the ops use, with the layer's
 * parameters among the checked inputs.
 *
 * The function under check runs the model's own code path
 * (tg_model_forward): before each call it points the data and grad of
 * every model parameter at the checker's input tensors, so the checker's
 * perturbations reach the layer code and the reverse sweep accumulates
 * into the gradients the checker compares. The checker runs the analytic
 * pass in the tested dtype and the finite differences in f64, so each case
 * holds two models built identically (one f32, one f64) and picks the one
 * matching the inputs' dtype. The model's RNG is restored before every
 * call, so dropout sees the same seed (its mask is a pure function of it).
 * Every case is checked in f64 (default, tight tolerances) and f32. */
#include "tapegrad.h"
#include "test.h"

#include <string.h>

#define MAXP 15

typedef tg_status (*build_fn)(tg_model *m, const void *arg);

typedef struct gcase {
    tg_model  *m[2];                 /* [0] f32, [1] f64: same structure */
    tg_rng     rng0;                 /* dropout seeds restart here       */
    int        training;
    int        n_params;
    void      *orig_data[2][MAXP], *orig_grad[2][MAXP];
    const int32_t *labels;           /* cross-entropy on top when set    */
    int64_t    batch;
    int        calls;
} gcase;

static tg_model *pick(gcase *g, tg_dtype dt) { return g->m[dt == TG_F64]; }

static tg_tensor *model_fn(tg_ctx *ctx, tg_tensor *const *in, int n, void *ud)
{
    gcase *g = ud;
    tg_model *m = pick(g, in[0]->dtype);
    tg_params *p = tg_model_params(m);
    if (n != 1 + tg_params_count(p)) {
        tg_ctx_fail(ctx, TG_ERR_ARG, "model_fn: %d inputs for %d parameters", n, tg_params_count(p));
        return NULL;
    }
    for (int i = 0; i < tg_params_count(p); i++) {
        tg_tensor *t = tg_params_get(p, i);
        t->data = in[i + 1]->data;
        t->grad = in[i + 1]->grad;
    }
    *tg_model_rng(m) = g->rng0;
    tg_model_set_training(m, g->training);
    g->calls++;
    tg_tensor *y = tg_model_forward(ctx, m, in[0]);
    if (g->labels) {
        tg_tensor *lb = tg_tensor_from(ctx, TG_I32, TG_DIMS(g->batch), g->labels);
        y = tg_cross_entropy(ctx, y, lb, TG_REDUCE_MEAN);
    }
    return y;
}

static void restore(gcase *g)
{
    for (int k = 0; k < 2; k++) {
        if (!g->m[k])
            continue;
        tg_params *p = tg_model_params(g->m[k]);
        for (int i = 0; i < tg_params_count(p); i++) {
            tg_params_get(p, i)->data = g->orig_data[k][i];
            tg_params_get(p, i)->grad = g->orig_grad[k][i];
        }
    }
}

/* Build the case's two models with `build` (or from `spec`) and seed 7. */
static int setup(gcase *g, build_fn build, const void *arg, const char *spec)
{
    memset(g, 0, sizeof *g);
    g->training = 1;
    for (int k = 0; k < 2; k++) {
        tg_dtype dt = k ? TG_F64 : TG_F32;
        char err[200] = "";
        if (spec) {
            g->m[k] = tg_model_from_spec(spec, dt, 7, err, sizeof err);
            TEST_CHECK_MSG(g->m[k] != NULL, "%s: %s", spec, err);
        } else {
            g->m[k] = tg_model_new(dt, 7);
            tg_status st = g->m[k] ? build(g->m[k], arg) : TG_ERR_NOMEM;
            TEST_CHECK_MSG(st == TG_OK, "build: %s", tg_status_str(st));
            if (st != TG_OK) {
                tg_model_free(g->m[k]);
                g->m[k] = NULL;
            }
        }
        if (!g->m[k])
            return 0;
        tg_params *p = tg_model_params(g->m[k]);
        g->n_params = tg_params_count(p);
        TEST_CHECK(g->n_params < MAXP);
        if (g->n_params >= MAXP)
            return 0;
        for (int i = 0; i < g->n_params; i++) {
            g->orig_data[k][i] = tg_params_get(p, i)->data;
            g->orig_grad[k][i] = tg_params_get(p, i)->grad;
        }
    }
    g->rng0 = *tg_model_rng(g->m[1]);
    return 1;
}

static void teardown(gcase *g)
{
    restore(g);
    tg_model_free(g->m[0]);
    tg_model_free(g->m[1]);
}

/* The checker's inputs (f64, persistent): x random normal (B, in), then the
 * model's own initial parameters, with norm gammas and betas and dense
 * biases moved off their trivial 1 / 0 so every term of the VJP matters. */
static int make_inputs(gcase *g, tg_rng *r, int64_t B, int64_t in, tg_tensor **xs)
{
    tg_params *p = tg_model_params(g->m[1]);
    xs[0] = tg_tensor_create(TG_F64, TG_DIMS(B, in), NULL);
    if (!xs[0])
        return 0;
    for (int64_t k = 0; k < xs[0]->numel; k++)
        tg_tensor_set(xs[0], k, tg_rng_normal(r));
    for (int i = 0; i < g->n_params; i++) {
        tg_tensor *t = tg_params_get(p, i);
        const char *name = tg_params_name(p, i);
        xs[i + 1] = tg_tensor_create(TG_F64, t->ndim, t->shape, NULL);
        if (!xs[i + 1])
            return 0;
        int shift = strstr(name, ".gamma") || strstr(name, ".beta") || strstr(name, ".bias");
        for (int64_t k = 0; k < t->numel; k++)
            tg_tensor_set(xs[i + 1], k, tg_tensor_get(t, k) + (shift ? 0.5 * tg_rng_normal(r) : 0));
    }
    return 1;
}

/* Check `g` on x (B, in) plus its parameters, in f64 and f32. */
static void check_case(const char *what, gcase *g, int64_t B, int64_t in)
{
    tg_rng r;
    tg_rng_seed(&r, 1234);
    tg_tensor *xs[MAXP + 1] = { 0 };
    int n = 1 + g->n_params;
    TEST_CHECK(make_inputs(g, &r, B, in, xs));
    for (int f32 = 0; f32 <= 1 && xs[n - 1]; f32++) {
        tg_gradcheck_opts o = { .f32 = f32, .seed = 99 };
        tg_gradcheck_report rep;
        int calls = g->calls;
        tg_status st = tg_gradcheck_fn_check(model_fn, g, xs, n, &o, &rep);
        TEST_CHECK_MSG(st == TG_OK && rep.passed, "%s %s: %s", what, f32 ? "f32" : "f64", rep.message);
        if (!(st == TG_OK && rep.passed))
            tg_gradcheck_report_print(&rep, stderr);
        /* Every element of every input was compared (the inputs are small). */
        int64_t total = 0;
        for (int i = 0; i < n; i++)
            total += xs[i]->numel;
        TEST_CHECK_MSG(rep.n_checked + rep.n_nondiff == total, "%s: %lld compared of %lld", what,
                       (long long)(rep.n_checked + rep.n_nondiff), (long long)total);
        TEST_CHECK(rep.n_nondiff * 10 <= total);          /* kinks are rare */
        TEST_CHECK(g->calls > calls + 2 * total);          /* the model really ran */
    }
    restore(g);
    for (int i = 0; i < n; i++)
        tg_tensor_destroy(xs[i]);
}

/* ---- the layers ----------------------------------------------------------- */

typedef struct act_arg { tg_act a; double param; } act_arg;

static tg_status build_dense(tg_model *m, const void *arg)
{
    (void)arg;
    return tg_model_add_dense(m, 4, 3, TG_INIT_XAVIER_UNIFORM);
}

static tg_status build_act(tg_model *m, const void *arg)
{
    const act_arg *a = arg;
    tg_status st = tg_model_add_dense(m, 4, 5, TG_INIT_XAVIER_NORMAL);
    return st ? st : tg_model_add_activation(m, a->a, a->param);
}

static tg_status build_bn(tg_model *m, const void *arg)
{
    (void)arg;
    return tg_model_add_batchnorm(m, 4, 0.1, 1e-5);
}

static tg_status build_ln(tg_model *m, const void *arg)
{
    (void)arg;
    return tg_model_add_layernorm(m, 5, 1e-5);
}

static tg_status build_dropout(tg_model *m, const void *arg)
{
    (void)arg;
    tg_status st = tg_model_add_dense(m, 4, 6, TG_INIT_XAVIER_UNIFORM);
    return st ? st : tg_model_add_dropout(m, 0.4);
}

static tg_status build_res(tg_model *m, const void *arg)
{
    (void)arg;
    tg_status st = tg_model_add_dense(m, 4, 5, TG_INIT_HE_UNIFORM);
    if (!st) st = tg_model_begin_residual(m);
    if (!st) st = tg_model_add_dense(m, 5, 5, TG_INIT_XAVIER_UNIFORM);
    if (!st) st = tg_model_add_layernorm(m, 5, 1e-5);
    if (!st) st = tg_model_add_activation(m, TG_ACT_TANH, 0);
    if (!st) st = tg_model_begin_residual(m);          /* nested */
    if (!st) st = tg_model_add_dense(m, 5, 5, TG_INIT_XAVIER_UNIFORM);
    if (!st) st = tg_model_add_activation(m, TG_ACT_SIGMOID, 0);
    if (!st) st = tg_model_end_residual(m);
    if (!st) st = tg_model_end_residual(m);
    return st;
}

/* A user's layer: y = x * x + x, recorded with public ops. */
static tg_tensor *square_plus(tg_ctx *ctx, tg_tensor *x, int training, void *ud)
{
    (void)training; (void)ud;
    return tg_add(ctx, tg_mul(ctx, x, x), x);
}

/* A broken user's layer: the same values, but computed from an unrecorded
 * copy of x, so no gradient flows back through it. */
static tg_tensor *square_plus_detached(tg_ctx *ctx, tg_tensor *x, int training, void *ud)
{
    (void)training; (void)ud;
    tg_tensor *c = tg_tensor_cast(ctx, x, x->dtype);
    return tg_add(ctx, tg_mul(ctx, c, c), x);
}

typedef struct custom_arg { tg_layer_fn fn; } custom_arg;

static tg_status build_custom(tg_model *m, const void *arg)
{
    tg_status st = tg_model_add_dense(m, 4, 3, TG_INIT_XAVIER_UNIFORM);
    if (!st) st = tg_model_add_custom(m, "sqp", ((const custom_arg *)arg)->fn, NULL);
    if (!st) st = tg_model_add_dense(m, 3, 2, TG_INIT_XAVIER_UNIFORM);
    return st;
}

static void test_dense(void)
{
    gcase g;
    if (setup(&g, build_dense, NULL, NULL)) {
        TEST_CHECK(g.n_params == 2);
        check_case("dense", &g, 3, 4);
    }
    teardown(&g);
}

static void test_activations(void)
{
    static const act_arg acts[] = {
        { TG_ACT_SIGMOID, 0 }, { TG_ACT_TANH, 0 }, { TG_ACT_RELU, 0 }, { TG_ACT_LEAKY_RELU, 0.2 },
        { TG_ACT_GELU, 0 }, { TG_ACT_SOFTMAX, 0 }, { TG_ACT_ELU, 0.7 }, { TG_ACT_SILU, 0 },
        { TG_ACT_SOFTPLUS, 0 },
    };
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
        gcase g;
        if (setup(&g, build_act, &acts[i], NULL)) {
            char what[64];
            snprintf(what, sizeof what, "dense+%s", tg_act_name(acts[i].a));
            check_case(what, &g, 3, 4);
        }
        teardown(&g);
    }
}

static void test_batchnorm(void)
{
    gcase g;
    if (setup(&g, build_bn, NULL, NULL)) {
        TEST_CHECK(g.n_params == 2);
        check_case("batch norm (train)", &g, 6, 4);
        /* Eval mode: running statistics (moved off 0 / 1 by the train-mode
         * runs above) normalise; gamma and beta still get gradients. */
        tg_params *b64 = tg_model_buffers(g.m[1]), *b32 = tg_model_buffers(g.m[0]);
        TEST_CHECK(tg_params_count(b64) == 2 && tg_params_count(b32) == 2);
        TEST_CHECK(tg_tensor_get(tg_params_find(b64, "bn1.running_mean"), 0) != 0);
        /* The f64 model ran more often (finite differences): give the f32
         * model the same statistics, as the checker compares the two. */
        for (int i = 0; i < tg_params_count(b64); i++)
            for (int64_t k = 0; k < 4; k++)
                tg_tensor_set(tg_params_get(b32, i), k, tg_tensor_get(tg_params_get(b64, i), k));
        g.training = 0;
        check_case("batch norm (eval)", &g, 6, 4);
    }
    teardown(&g);
}

static void test_layernorm(void)
{
    gcase g;
    if (setup(&g, build_ln, NULL, NULL))
        check_case("layer norm", &g, 3, 5);
    teardown(&g);
}

static void test_dropout(void)
{
    gcase g;
    if (setup(&g, build_dropout, NULL, NULL)) {
        check_case("dropout (train)", &g, 4, 4);
        /* The check above was not vacuous: with the restored seed the mask
         * drops some of the 24 outputs and scales the rest by 1/(1 - p). */
        tg_ctx *ctx = tg_ctx_new(NULL);
        tg_model *m = g.m[1];
        *tg_model_rng(m) = g.rng0;
        tg_tensor *x = tg_tensor_fill(ctx, TG_F64, TG_DIMS(4, 4), 1.0);
        tg_tensor *y = tg_model_forward(ctx, m, x);
        tg_model_set_training(m, 0);
        tg_tensor *y0 = tg_model_forward(ctx, m, x);
        int zeros = 0, scaled = 0;
        for (int64_t k = 0; y && y0 && k < y->numel; k++) {
            double a = tg_tensor_get(y, k), b = tg_tensor_get(y0, k);
            zeros += a == 0;
            scaled += fabs(a - b / 0.6) <= 1e-12 * fabs(b);
        }
        TEST_CHECK_MSG(zeros > 0 && zeros < 24 && zeros + scaled == 24, "%d dropped, %d kept", zeros,
                       scaled);
        tg_ctx_free(ctx);
    }
    teardown(&g);
}

static void test_residual(void)
{
    gcase g;
    if (setup(&g, build_res, NULL, NULL)) {
        TEST_CHECK(g.n_params == 8);
        check_case("residual (nested)", &g, 3, 4);
    }
    teardown(&g);
}

static void test_custom(void)
{
    gcase g;
    const custom_arg good = { square_plus }, broken = { square_plus_detached };
    if (setup(&g, build_custom, &good, NULL))
        check_case("custom", &g, 3, 4);
    teardown(&g);

    /* The wrapper catches a layer that loses its gradient: the first dense
     * layer's parameters get only the part that flows through "+ x". */
    if (setup(&g, build_custom, &broken, NULL)) {
        tg_rng r;
        tg_rng_seed(&r, 5);
        tg_tensor *xs[5] = { 0 };
        TEST_CHECK(make_inputs(&g, &r, 3, 4, xs));
        tg_gradcheck_report rep;
        tg_status st = tg_gradcheck_fn_check(model_fn, &g, xs, 5, NULL, &rep);
        TEST_CHECK_MSG(st == TG_OK && !rep.passed && rep.worst[0].input <= 2, "%s", rep.message);
        restore(&g);
        for (int i = 0; i < 5; i++)
            tg_tensor_destroy(xs[i]);
    }
    teardown(&g);
}

/* Whole models from specs, with the loss on top. */
static void test_spec_models(void)
{
    static const int32_t labels[8] = { 0, 2, 1, 1, 0, 2, 2, 0 };
    static const char *specs[] = {
        "6-5relu_bn-5tanh_res-3",
        "6-7leaky_relu_ln_d0.25-7gelu_res_bn-4elu-3softplus",
        "6-6silu_res_d0.5-5sigmoid_ln-3",
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        gcase g;
        if (setup(&g, NULL, NULL, specs[i])) {
            g.labels = labels;
            g.batch = 8;
            check_case(specs[i], &g, 8, 6);
        }
        teardown(&g);
    }
}

int main(void)
{
    test_dense();
    test_activations();
    test_batchnorm();
    test_layernorm();
    test_dropout();
    test_residual();
    test_custom();
    test_spec_models();
    return test_report("test_layers_grad");
}
