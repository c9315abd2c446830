/* test_nn.c — the nn layer's layers and models (nn/model.c, nn/init.c):
 * initialisers, the spec parser and its errors, builders (and their
 * out-of-memory paths), and the model's input checks. The layers in use
 * are tested in test_nn_layers.c. */
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
    return test_report("test_nn");
}
