/* test_nn.c — the nn layer's layers and models (nn/model.c, nn/init.c):
 * initialisers, the spec parser and its errors, builders, dropout, batch
 * norm running statistics, layer norm, residual blocks, custom layers,
 * input checks, training through the flat gradient block, determinism,
 * and L1/L2 penalties on a model's parameters. Expected values are worked
 * out by hand in the comments next to them. */
#include "tapegrad.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* ---- initialisers ----------------------------------------------------------- */

typedef struct stats { double mean, var, maxabs, within1; } stats;

static stats moments(const tg_tensor *t, double sd)
{
    stats s = { 0, 0, 0, 0 };
    for (int64_t i = 0; i < t->numel; i++)
        s.mean += tg_tensor_get(t, i);
    s.mean /= (double)t->numel;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = tg_tensor_get(t, i);
        s.var += (v - s.mean) * (v - s.mean);
        s.maxabs = fabs(v) > s.maxabs ? fabs(v) : s.maxabs;
        s.within1 += fabs(v) <= sd;
    }
    s.var /= (double)(t->numel - 1);
    s.within1 /= (double)t->numel;
    return s;
}

static void test_init_distributions(tg_dtype dt)
{
    /* 200000 samples: the sample variance of a uniform has relative sd
     * sqrt(0.8 / n) = 0.2%, of a normal sqrt(2 / n) = 0.3%; 2% is > 6 sd.
     * P(|z| <= 1) = 0.6827, sd 0.001. */
    tg_status st;
    tg_tensor *t = tg_tensor_create(dt, TG_DIMS(400, 500), &st);
    TEST_CHECK(t != NULL);
    if (!t)
        return;
    tg_rng r;
    tg_rng_seed(&r, 42);
    const int64_t fi = 300, fo = 100;
    struct { tg_init k; double bound, sd; } cases[] = {
        { TG_INIT_XAVIER_UNIFORM, sqrt(6.0 / 400), sqrt(6.0 / 400) / sqrt(3.0) },
        { TG_INIT_HE_UNIFORM,     sqrt(6.0 / 300), sqrt(6.0 / 300) / sqrt(3.0) },
        { TG_INIT_XAVIER_NORMAL,  0,               sqrt(2.0 / 400) },
        { TG_INIT_HE_NORMAL,      0,               sqrt(2.0 / 300) },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        TEST_CHECK(tg_init_tensor(t, cases[c].k, fi, fo, 0, &r) == TG_OK);
        stats s = moments(t, cases[c].sd);
        const char *nm = tg_init_name(cases[c].k);
        TEST_CHECK_MSG(fabs(s.mean) < 0.01 * cases[c].sd, "%s mean %g", nm, s.mean);
        TEST_CHECK_MSG(fabs(sqrt(s.var) / cases[c].sd - 1) < 0.02, "%s %s: sd %g, expected %g", nm,
                       tg_dtype_name(dt), sqrt(s.var), cases[c].sd);
        if (cases[c].bound > 0) {
            /* f32 rounding may reach the bound itself, never beyond. */
            double b = dt == TG_F32 ? (double)(float)cases[c].bound : cases[c].bound;
            TEST_CHECK_MSG(s.maxabs <= b && s.maxabs > 0.999 * b, "%s: max |w| %.9g, bound %.9g", nm,
                           s.maxabs, b);
            TEST_CLOSE(s.within1, 1 / sqrt(3.0), 0.005, 0);   /* uniform: P(|w| <= sd) */
        } else {
            TEST_CLOSE(s.within1, 0.682689, 0.005, 0);
            TEST_CHECK(s.maxabs > 3.5 * cases[c].sd);          /* has tails */
        }
    }
    /* zeros and constant overwrite whatever was there */
    TEST_CHECK(tg_init_tensor(t, TG_INIT_ZEROS, 0, 0, 0, &r) == TG_OK);
    stats z = moments(t, 1);
    TEST_CHECK(z.maxabs == 0);
    TEST_CHECK(tg_init_tensor(t, TG_INIT_CONSTANT, 0, 0, -0.25, &r) == TG_OK);
    int all = 1;
    for (int64_t i = 0; i < t->numel; i++)
        all &= tg_tensor_get(t, i) == -0.25;
    TEST_CHECK(all);
    tg_tensor_destroy(t);
}

static void test_init_seeds_and_errors(void)
{
    tg_tensor *a = tg_tensor_create(TG_F64, TG_DIMS(64), NULL), *b = tg_tensor_create(TG_F64, TG_DIMS(64), NULL);
    tg_rng r1, r2;
    for (int k = TG_INIT_XAVIER_UNIFORM; k <= TG_INIT_HE_NORMAL; k++) {
        tg_rng_seed(&r1, 3);
        tg_rng_seed(&r2, 3);
        tg_init_tensor(a, (tg_init)k, 8, 8, 0, &r1);
        tg_init_tensor(b, (tg_init)k, 8, 8, 0, &r2);
        TEST_CHECK(memcmp(a->data, b->data, 64 * sizeof(double)) == 0);
        tg_rng_seed(&r2, 4);
        tg_init_tensor(b, (tg_init)k, 8, 8, 0, &r2);
        int diff = 0;
        for (int i = 0; i < 64; i++)
            diff += tg_tensor_get(a, i) != tg_tensor_get(b, i);
        TEST_CHECK_MSG(diff == 64, "%s: %d of 64 differ between seeds", tg_init_name((tg_init)k), diff);
    }
    /* f32 gets the f64 draws rounded: same stream, same values */
    tg_tensor *f = tg_tensor_create(TG_F32, TG_DIMS(64), NULL);
    tg_rng_seed(&r1, 3);
    tg_rng_seed(&r2, 3);
    tg_init_tensor(a, TG_INIT_HE_UNIFORM, 8, 8, 0, &r1);
    tg_init_tensor(f, TG_INIT_HE_UNIFORM, 8, 8, 0, &r2);
    TEST_CHECK(tg_tensor_get(f, 17) == (double)(float)tg_tensor_get(a, 17));

    TEST_CHECK(tg_init_tensor(a, TG_INIT_HE_UNIFORM, 0, 8, 0, &r1) == TG_ERR_ARG);
    TEST_CHECK(tg_init_tensor(a, TG_INIT_XAVIER_NORMAL, 8, -1, 0, &r1) == TG_ERR_ARG);
    TEST_CHECK(tg_init_tensor(a, (tg_init)17, 8, 8, 0, &r1) == TG_ERR_ARG);
    TEST_CHECK(tg_init_tensor(a, TG_INIT_ZEROS, 8, 8, 0, NULL) == TG_ERR_ARG);
    TEST_CHECK(tg_init_tensor(NULL, TG_INIT_ZEROS, 8, 8, 0, &r1) == TG_ERR_ARG);
    tg_tensor *i32 = tg_tensor_create(TG_I32, TG_DIMS(4), NULL);
    TEST_CHECK(tg_init_tensor(i32, TG_INIT_ZEROS, 1, 1, 0, &r1) == TG_ERR_ARG);
    for (int k = 0; k <= TG_INIT_CONSTANT; k++)
        TEST_CHECK(tg_init_parse(tg_init_name((tg_init)k)) == k);
    TEST_CHECK(tg_init_parse("he") == -1 && tg_init_parse(NULL) == -1);
    TEST_CHECK(strcmp(tg_init_name((tg_init)99), "unknown") == 0);
    for (int k = 0; k <= TG_ACT_SOFTMAX; k++)
        TEST_CHECK(tg_act_parse(tg_act_name((tg_act)k)) == k);
    TEST_CHECK(tg_act_parse("ReLU") == -1 && tg_act_parse(NULL) == -1);
    tg_tensor_destroy(a);
    tg_tensor_destroy(b);
    tg_tensor_destroy(f);
    tg_tensor_destroy(i32);
}

/* ---- specs ------------------------------------------------------------------------- */

static void expect_param(tg_params *p, const char *name, int ndim, int64_t d0, int64_t d1)
{
    tg_tensor *t = tg_params_find(p, name);
    TEST_CHECK_MSG(t && t->ndim == ndim && t->shape[0] == d0 && (ndim < 2 || t->shape[1] == d1),
                   "%s: expected %lldx%lld", name, (long long)d0, (long long)d1);
}

static void test_spec_valid(void)
{
    char err[256] = "", d[1024];
    tg_model *m = tg_model_from_spec("784-128relu-10", TG_F32, 1, err, sizeof err);
    TEST_CHECK_MSG(m != NULL, "%s", err);
    if (!m)
        return;
    tg_model_describe(m, d, sizeof d);
    TEST_CHECK_MSG(!strcmp(d, "dense1: dense 784 -> 128\nact1: relu\ndense2: dense 128 -> 10\n"), "%s", d);
    tg_params *p = tg_model_params(m);
    TEST_CHECK(tg_params_count(p) == 4 && tg_params_count(tg_model_buffers(m)) == 0);
    TEST_CHECK(!strcmp(tg_params_name(p, 0), "dense1.weight") && !strcmp(tg_params_name(p, 3), "dense2.bias"));
    expect_param(p, "dense1.weight", 2, 784, 128);
    expect_param(p, "dense1.bias", 1, 128, 0);
    expect_param(p, "dense2.weight", 2, 128, 10);
    expect_param(p, "dense2.bias", 1, 10, 0);
    TEST_CHECK(tg_params_numel(p) == 784 * 128 + 128 + 128 * 10 + 10);
    TEST_CHECK(tg_model_in_features(m) == 784 && tg_model_out_features(m) == 10);
    TEST_CHECK(tg_model_training(m) == 1);
    /* He uniform before relu (bound sqrt(6/784)), Xavier uniform before the
     * logits (sqrt(6/138)); biases zero. */
    tg_tensor *w1 = tg_params_find(p, "dense1.weight"), *w2 = tg_params_find(p, "dense2.weight");
    double m1 = 0, m2 = 0, b = 0;
    for (int64_t i = 0; i < w1->numel; i++) m1 = fmax(m1, fabs(tg_tensor_get(w1, i)));
    for (int64_t i = 0; i < w2->numel; i++) m2 = fmax(m2, fabs(tg_tensor_get(w2, i)));
    for (int64_t i = 0; i < 128; i++) b = fmax(b, fabs(tg_tensor_get(tg_params_find(p, "dense1.bias"), i)));
    TEST_CHECK_MSG(m1 <= (float)sqrt(6.0 / 784) && m1 > 0.99 * sqrt(6.0 / 784), "%g", m1);
    TEST_CHECK_MSG(m2 <= (float)sqrt(6.0 / 138) && m2 > 0.98 * sqrt(6.0 / 138), "%g", m2);
    TEST_CHECK(b == 0);
    tg_model_free(m);

    m = tg_model_from_spec("784-256relu_bn_d0.2-128leaky_relu_ln-10softmax", TG_F64, 1, err, sizeof err);
    TEST_CHECK_MSG(m != NULL, "%s", err);
    if (m) {
        tg_model_describe(m, d, sizeof d);
        TEST_CHECK_MSG(!strcmp(d, "dense1: dense 784 -> 256\nbn1: batch norm 256\nact1: relu\n"
                                  "dropout1: dropout p=0.2\ndense2: dense 256 -> 128\nln1: layer norm 128\n"
                                  "act2: leaky_relu\ndense3: dense 128 -> 10\nact3: softmax\n"), "%s", d);
        p = tg_model_params(m);
        TEST_CHECK(tg_params_count(p) == 10);
        expect_param(p, "bn1.gamma", 1, 256, 0);
        expect_param(p, "bn1.beta", 1, 256, 0);
        expect_param(p, "ln1.gamma", 1, 128, 0);
        expect_param(tg_model_buffers(m), "bn1.running_mean", 1, 256, 0);
        expect_param(tg_model_buffers(m), "bn1.running_var", 1, 256, 0);
        TEST_CHECK(tg_tensor_get(tg_params_find(p, "bn1.gamma"), 255) == 1);
        TEST_CHECK(tg_tensor_get(tg_params_find(p, "ln1.beta"), 5) == 0);
        TEST_CHECK(tg_tensor_get(tg_params_find(tg_model_buffers(m), "bn1.running_var"), 3) == 1);
        TEST_CHECK(tg_tensor_get(tg_params_find(tg_model_buffers(m), "bn1.running_mean"), 3) == 0);
    }
    tg_model_free(m);

    m = tg_model_from_spec("8-8relu_res-8tanh_ln_res_d0.5-3leaky", TG_F32, 1, err, sizeof err);
    TEST_CHECK_MSG(m != NULL, "%s", err);
    if (m) {
        tg_model_describe(m, d, sizeof d);
        TEST_CHECK_MSG(!strcmp(d, "res1: residual x + f(x)\n  dense1: dense 8 -> 8\n  act1: relu\n"
                                  "res2: residual x + f(x)\n  dense2: dense 8 -> 8\n  ln1: layer norm 8\n"
                                  "  act2: tanh\n  dropout1: dropout p=0.5\ndense3: dense 8 -> 3\n"
                                  "act3: leaky_relu\n"), "%s", d);
        /* a short buffer is truncated, never overrun */
        char small[12];
        memset(small, 'x', sizeof small);
        tg_model_describe(m, small, 10);
        TEST_CHECK(strlen(small) == 9 && small[10] == 'x' && !strncmp(small, "res1: res", 9));
    }
    tg_model_free(m);
    /* no err buffer is fine both ways */
    m = tg_model_from_spec("3-2", TG_F32, 0, NULL, 0);
    TEST_CHECK(m != NULL && tg_params_count(tg_model_params(m)) == 2);
    tg_model_free(m);
    TEST_CHECK(tg_model_from_spec("3-", TG_F32, 0, NULL, 0) == NULL);
    TEST_CHECK(tg_model_from_spec("3-2", TG_I32, 0, err, sizeof err) == NULL);
}

static void test_spec_errors(void)
{
    static const struct { const char *spec, *why; int pos; } bad[] = {
        { "",                 "expected the input width first",                  1 },
        { "abc",              "expected the input width first",                  1 },
        { "784",              "no layers after the input width",                 4 },
        { "784x-10",          "expected '-' after the input width",              4 },
        { "99999999999-10",   "input width of at most 16777216",                 1 },
        { "784-",             "empty layer",                                     5 },
        { "784--10",          "empty layer",                                     5 },
        { "784-10relu-",      "empty layer",                                     12 },
        { "784-0",            "expected a positive width",                       5 },
        { "784-relu",         "expected a positive width",                       5 },
        { "784-99999999999",  "width above the maximum of 16777216",             5 },
        { " 784-10",          "expected the input width first",                  1 },
        { "784- 10",          "expected a positive width",                       5 },
        { "784-+10",          "expected a positive width",                       5 },
        { "784-12foo",        "unknown activation 'foo'",                        7 },
        { "784-12relu_d1.5",  "dropout needs a probability in [0, 1)",           12 },
        { "784-12relu_d",     "dropout needs a probability in [0, 1)",           12 },
        { "784-12relu_d 0.5", "dropout needs a probability in [0, 1)",           12 },
        { "784-12relu_dnan",  "dropout needs a probability in [0, 1)",           12 },
        { "784-12relu_res",   "a residual layer must keep its width (784 -> 12)", 12 },
        { "784-12relu_bnx",   "unknown modifier",                                12 },
        { "784-12relu_",      "unknown modifier",                                12 },
        { "784-12relu_bn_bn", "bn given twice",                                  15 },
        { "784-9_d0.5_d0.2",  "dropout given twice",                             12 },
        { "784-9_d.5.",       "dropout needs a probability in [0, 1), got 'd.5.'", 7 },
        { "784-9_d1e-1",      "dropout needs a probability in [0, 1)",           7 },
        { "784-9relu-9tanh_res-3-5leaky_relux", "unknown modifier 'relux'", 30 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[256] = "", want[64];
        tg_model *m = tg_model_from_spec(bad[i].spec, TG_F32, 1, err, sizeof err);
        snprintf(want, sizeof want, "at position %d", bad[i].pos);
        TEST_CHECK_MSG(m == NULL && has(err, bad[i].why) && has(err, want) && has(err, bad[i].spec),
                       "spec '%s': got \"%s\", want \"%s\" %s", bad[i].spec, err, bad[i].why, want);
        tg_model_free(m);
    }
    char err[64];
    TEST_CHECK(tg_model_from_spec(NULL, TG_F32, 1, err, sizeof err) == NULL && has(err, "NULL"));
    /* a tiny error buffer is truncated, not overrun */
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    TEST_CHECK(tg_model_from_spec("784-", TG_F32, 1, tiny, 5) == NULL && strlen(tiny) == 4 && tiny[5] == 'x');
}

/* ---- builders -------------------------------------------------------------------- */

static tg_tensor *ident(tg_ctx *ctx, tg_tensor *x, int training, void *ud)
{
    (void)ctx; (void)training; (void)ud;
    return x;
}

static tg_tensor *first_two(tg_ctx *ctx, tg_tensor *x, int training, void *ud)
{
    (void)training; (void)ud;
    return tg_slice(ctx, x, 1, 0, 2, 1);
}

static tg_tensor *null_layer(tg_ctx *ctx, tg_tensor *x, int training, void *ud)
{
    (void)ctx; (void)x; (void)training; (void)ud;
    return NULL;
}

static void test_builders(void)
{
    tg_model *m = tg_model_new(TG_F32, 1);
    char d0[512], d1[512];
    TEST_CHECK(tg_model_add_dense(m, 4, 3, TG_INIT_HE_NORMAL) == TG_OK);
    tg_model_describe(m, d0, sizeof d0);
    /* failures leave the model as it was */
    TEST_CHECK(tg_model_add_dense(m, 5, 2, TG_INIT_ZEROS) == TG_ERR_SHAPE);     /* 3 != 5 */
    TEST_CHECK(tg_model_add_dense(m, 3, 0, TG_INIT_ZEROS) == TG_ERR_ARG);
    TEST_CHECK(tg_model_add_dense(m, 3, 2, (tg_init)42) == TG_ERR_ARG);
    TEST_CHECK(tg_model_add_batchnorm(m, 4, 0.1, 1e-5) == TG_ERR_SHAPE);
    TEST_CHECK(tg_model_add_batchnorm(m, 3, 1.5, 1e-5) == TG_ERR_ARG);
    TEST_CHECK(tg_model_add_batchnorm(m, 3, 0.1, 0) == TG_ERR_ARG);
    TEST_CHECK(tg_model_add_layernorm(m, 2, 1e-5) == TG_ERR_SHAPE);
    TEST_CHECK(tg_model_add_dropout(m, 1.0) == TG_ERR_ARG && tg_model_add_dropout(m, NAN) == TG_ERR_ARG);
    TEST_CHECK(tg_model_add_activation(m, (tg_act)77, 0) == TG_ERR_ARG);
    TEST_CHECK(tg_model_add_custom(m, "c", NULL, NULL) == TG_ERR_ARG);
    TEST_CHECK(tg_model_end_residual(m) == TG_ERR_STATE);
    tg_model_describe(m, d1, sizeof d1);
    TEST_CHECK_MSG(!strcmp(d0, d1), "%s", d1);
    TEST_CHECK(tg_params_count(tg_model_params(m)) == 2 && tg_model_out_features(m) == 3);
    /* ... and the next layer gets the next name */
    TEST_CHECK(tg_model_add_dense(m, 3, 2, TG_INIT_ZEROS) == TG_OK);
    TEST_CHECK(tg_params_find(tg_model_params(m), "dense2.weight") != NULL);
    TEST_CHECK(tg_params_count(tg_model_params(m)) == 4);
    TEST_CHECK(tg_model_begin_residual(m) == TG_OK);
    TEST_CHECK(tg_model_add_dense(m, 2, 5, TG_INIT_ZEROS) == TG_OK);
    TEST_CHECK(tg_model_end_residual(m) == TG_ERR_SHAPE);          /* 2 -> 5 */
    tg_ctx *ctx = tg_ctx_new(NULL);
    TEST_CHECK(tg_model_forward(ctx, m, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(1, 4))) == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_STATE && has(tg_ctx_error(ctx), "residual block is still open"));
    tg_model_free(m);

    /* A residual block first: its width is checked against its own input. */
    m = tg_model_new(TG_F64, 1);
    TEST_CHECK(tg_model_begin_residual(m) == TG_OK);
    TEST_CHECK(tg_model_add_dense(m, 4, 6, TG_INIT_ZEROS) == TG_OK);
    TEST_CHECK(tg_model_end_residual(m) == TG_ERR_SHAPE);
    TEST_CHECK(tg_model_add_dense(m, 6, 4, TG_INIT_ZEROS) == TG_OK);
    TEST_CHECK(tg_model_end_residual(m) == TG_OK);
    TEST_CHECK(tg_model_in_features(m) == 4 && tg_model_out_features(m) == 4);
    tg_model_free(m);

    /* A user's layer may change the width: the model's input width stays
     * what the first layer says, or unknown when a user's layer is first. */
    m = tg_model_new(TG_F64, 1);
    TEST_CHECK(tg_model_add_dense(m, 5, 3, TG_INIT_ZEROS) == TG_OK);
    TEST_CHECK(tg_model_add_custom(m, NULL, first_two, NULL) == TG_OK);
    TEST_CHECK(tg_model_out_features(m) == -1);
    TEST_CHECK(tg_model_add_batchnorm(m, 2, 0.1, 1e-5) == TG_OK);
    TEST_CHECK(tg_model_add_layernorm(m, 2, 1e-5) == TG_OK);
    TEST_CHECK(tg_model_in_features(m) == 5 && tg_model_out_features(m) == 2);
    tg_ctx_reset(ctx);
    tg_tensor *y = tg_model_forward(ctx, m, tg_tensor_rand(ctx, TG_F64, TG_DIMS(4, 5), -1, 1));
    TEST_CHECK_MSG(y && y->shape[1] == 2, "%s", tg_ctx_error(ctx));
    tg_model_free(m);

    m = tg_model_new(TG_F64, 1);
    TEST_CHECK(tg_model_add_custom(m, "front", first_two, NULL) == TG_OK);
    TEST_CHECK(tg_model_add_dense(m, 2, 3, TG_INIT_ZEROS) == TG_OK);
    TEST_CHECK(tg_model_in_features(m) == -1 && tg_model_out_features(m) == 3);
    tg_model_describe(m, d0, sizeof d0);
    TEST_CHECK_MSG(!strcmp(d0, "front: custom\ndense1: dense 2 -> 3\n"), "%s", d0);
    tg_ctx_reset(ctx);
    y = tg_model_forward(ctx, m, tg_tensor_rand(ctx, TG_F64, TG_DIMS(4, 7), -1, 1));
    TEST_CHECK_MSG(y && y->shape[0] == 4 && y->shape[1] == 3, "%s", tg_ctx_error(ctx));
    tg_model_free(m);

    /* A user's layer that returns NULL without saying why. */
    m = tg_model_new(TG_F32, 1);
    tg_model_add_custom(m, "broken", null_layer, NULL);
    tg_ctx_reset(ctx);
    TEST_CHECK(tg_model_forward(ctx, m, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 2))) == NULL);
    TEST_CHECK_MSG(tg_ctx_status(ctx) != TG_OK && has(tg_ctx_error(ctx), "broken"), "%s", tg_ctx_error(ctx));
    tg_model_free(m);

    /* An empty model, and one of identities, return the input. */
    m = tg_model_new(TG_F32, 1);
    tg_ctx_reset(ctx);
    tg_tensor *x = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 2));
    TEST_CHECK(tg_model_forward(ctx, m, x) == x);
    tg_model_add_custom(m, NULL, ident, NULL);
    tg_model_add_activation(m, TG_ACT_NONE, 0);
    TEST_CHECK(tg_model_forward(ctx, m, x) == x);
    tg_model_free(m);
    TEST_CHECK(tg_model_new(TG_I32, 1) == NULL);
    tg_model_free(NULL);
    tg_ctx_free(ctx);
}

/* Out of memory in the middle of a builder: the model stays usable and
 * the next layer of the kind gets a fresh name. */
static long fail_after = -1;

static void *failing_alloc(void *ud, void *ptr, size_t old_size, size_t size)
{
    (void)ud; (void)old_size;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    return realloc(ptr, size);
}

static void test_builders_oom(void)
{
    int failures = 0, done = 0;
    for (long n = 0; n < 60 && !done; n++) {
        tg_model *m = tg_model_new(TG_F64, 1);
        tg_model_add_dense(m, 3, 4, TG_INIT_HE_UNIFORM);
        tg_set_allocator(failing_alloc, NULL);
        fail_after = n;
        tg_status s1 = tg_model_add_batchnorm(m, 4, 0.1, 1e-5);
        tg_status s2 = s1 == TG_OK ? tg_model_add_dense(m, 4, 2, TG_INIT_ZEROS) : TG_ERR_NOMEM;
        fail_after = -1;
        tg_set_allocator(NULL, NULL);
        done = s1 == TG_OK && s2 == TG_OK;
        failures += !done;
        TEST_CHECK(done || s1 == TG_ERR_NOMEM || s2 == TG_ERR_NOMEM);
        if (s1 != TG_OK)
            TEST_CHECK(tg_model_add_batchnorm(m, 4, 0.1, 1e-5) == TG_OK);
        if (s2 != TG_OK)
            TEST_CHECK(tg_model_add_dense(m, 4, 2, TG_INIT_ZEROS) == TG_OK);
        /* the model is whole: bn then dense, and it runs */
        tg_ctx *ctx = tg_ctx_new(NULL);
        tg_tensor *y = tg_model_forward(ctx, m, tg_tensor_rand(ctx, TG_F64, TG_DIMS(3, 3), -1, 1));
        TEST_CHECK_MSG(y && y->shape[1] == 2 && tg_model_out_features(m) == 2, "n=%ld: %s", n, tg_ctx_error(ctx));
        tg_ctx_free(ctx);
        tg_model_free(m);
    }
    TEST_CHECK(done && failures >= 4);
    /* specs too: NULL with "out of memory", nothing leaked (ASan) */
    for (long n = 0; n < 40; n++) {
        char err[200] = "";
        tg_set_allocator(failing_alloc, NULL);
        fail_after = n;
        tg_model *m = tg_model_from_spec("5-4relu_bn-4tanh_ln_res-2", TG_F32, 1, err, sizeof err);
        fail_after = -1;
        tg_set_allocator(NULL, NULL);
        TEST_CHECK_MSG(m || has(err, "out of memory"), "%s", err);
        tg_model_free(m);
    }
}

/* ---- forward checks ---------------------------------------------------------------- */

static void test_input_checks(void)
{
    char err[200];
    tg_model *m = tg_model_from_spec("784-128relu-10", TG_F32, 1, err, sizeof err);
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(32, 10));
    TEST_CHECK(tg_model_forward(ctx, m, x) == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_SHAPE);
    TEST_CHECK_MSG(!strcmp(tg_ctx_error(ctx), "model_forward: input 32x10, model expects (batch, 784)"), "%s",
                   tg_ctx_error(ctx));
    /* the error is sticky: a good input now also gives NULL */
    TEST_CHECK(tg_model_forward(ctx, m, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 784))) == NULL);
    tg_ctx_reset(ctx);
    TEST_CHECK(tg_model_forward(ctx, m, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(784))) == NULL);
    TEST_CHECK_MSG(has(tg_ctx_error(ctx), "input 784, model expects (batch, 784)"), "%s", tg_ctx_error(ctx));
    tg_ctx_reset(ctx);
    TEST_CHECK(tg_model_forward(ctx, m, tg_tensor_zeros(ctx, TG_F64, TG_DIMS(2, 784))) == NULL);
    TEST_CHECK_MSG(has(tg_ctx_error(ctx), "model_forward: input is f64, model is f32"), "%s", tg_ctx_error(ctx));
    tg_ctx_reset(ctx);
    TEST_CHECK(tg_model_forward(ctx, NULL, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 784))) == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_ARG);
    tg_ctx_reset(ctx);
    tg_tensor *y = tg_model_forward(ctx, m, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(3, 784)));
    TEST_CHECK(y && y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 10 && y->dtype == TG_F32);
    tg_model_free(m);

    /* batch norm takes (batch, features) only: axis 1 in train mode and the
     * last axis in eval mode would otherwise be different axes */
    m = tg_model_from_spec("4-4relu_bn-2", TG_F32, 1, err, sizeof err);
    tg_ctx_reset(ctx);
    TEST_CHECK(tg_model_forward(ctx, m, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 4, 4))) == NULL);
    TEST_CHECK_MSG(has(tg_ctx_error(ctx), "bn1: input 2x4x4, expected (batch, 4)"), "%s", tg_ctx_error(ctx));
    tg_model_free(m);
    tg_ctx_free(ctx);
}

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
    test_init_distributions(TG_F64);
    test_init_distributions(TG_F32);
    test_init_seeds_and_errors();
    test_spec_valid();
    test_spec_errors();
    test_builders();
    test_builders_oom();
    test_input_checks();
    test_dropout();
    test_norms();
    test_residual_and_custom();
    test_training();
    return test_report("test_nn");
}
