/* test_stress.c — numerics under stress, in f32 and f64. The rule tested:
 * where the mathematics has a finite answer tapegrad gives it, with no NaN
 * or Inf in a value or a gradient (logits of +-1e4, saturated activations,
 * constant inputs to the norms, single elements); where it has none, either
 * the IEEE value comes out and anomaly mode (tg_ctx_set_anomaly) stops the
 * step naming the op (log(0), overflow), or — when the shapes alone decide
 * it (an empty batch under MEAN, batch norm of one value) — a clear error.
 * Expected values are computed here in double from closed forms or a small
 * independent reference (ref_row). Most cases run with anomaly mode on, so
 * any NaN/Inf produced along the way fails the case at once. */
#include "tapegrad.h"
#include "test.h"
#include "test_util.h"

#include <math.h>
#include <string.h>

static const tg_dtype dts[2] = { TG_F32, TG_F64 };

/* Tolerances: f64 to ~1e-12 relative; f32 to its rounding, with an absolute
 * floor below the normal range (f32 denormals carry few bits). */
static double rtol_of(tg_dtype dt) { return dt == TG_F32 ? 3e-6 : 1e-12; }
static double atol_of(tg_dtype dt) { return dt == TG_F32 ? 1e-30 : 1e-300; }

#define CHECK_VALUES(what, t, grad, want, n, dt) \
    tu_check_values(what, t, grad, want, n, atol_of(dt), rtol_of(dt))

static tg_ctx *anomaly_ctx(void)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 5 });
    tg_ctx_set_poison(ctx, 1);
    tg_ctx_set_anomaly(ctx, 1);
    return ctx;
}

/* Every value (or gradient) of t is finite. */
static int all_finite(const tg_tensor *t, int grad)
{
    if (!t || (grad && !t->grad))
        return 0;
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(grad ? tg_tensor_grad_get(t, i) : tg_tensor_get(t, i)))
            return 0;
    return 1;
}

/* The context failed in anomaly mode with a message containing `text`; the
 * error is cleared. */
#define EXPECT_ANOMALY(ctx, text) do {                                              \
        TEST_CHECK_MSG(tg_ctx_status(ctx) == TG_ERR_NUMERIC &&                      \
                       strstr(tg_ctx_error(ctx), (text)) != NULL,                   \
                       "status %d, error \"%s\", expected \"%s\"",                  \
                       (int)tg_ctx_status(ctx), tg_ctx_error(ctx), (text));         \
        tg_ctx_clear_error(ctx);                                                    \
    } while (0)

/* Softmax s, log-softmax ls and log-sum-exp of a row, in double. */
static double ref_row(const double *x, int n, double *s, double *ls)
{
    double m = -INFINITY, z = 0;
    for (int j = 0; j < n; j++)
        m = x[j] > m ? x[j] : m;
    for (int j = 0; j < n; j++)
        z += exp(x[j] - m);
    for (int j = 0; j < n; j++) {
        if (s)
            s[j] = exp(x[j] - m) / z;
        if (ls)
            ls[j] = (x[j] - m) - log(z);
    }
    return m + log(z);
}

/* ---- logits of +-1e4 -------------------------------------------------------- */

/* Three rows: one dominant logit, two close ones far above a third, and all
 * equal at -1e4. Every value is exact in f32. */
static const double LOGITS[9] = { 1e4, 0, -1e4,   1e4, 1e4 - 1, -1e4,   -1e4, -1e4, -1e4 };
static const double DY[9] = { 1, 2, 3,   -1, 0.5, 2,   0.25, -2, 1 };
static const double DYR[3] = { 1, -2, 0.5 };

static void transpose3(const double *a, double *t)
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            t[j * 3 + i] = a[i * 3 + j];
}

static void test_softmax_family_huge(void)
{
    double s[9], ls[9], lse[3];
    for (int i = 0; i < 3; i++)
        lse[i] = ref_row(LOGITS + 3 * i, 3, s + 3 * i, ls + 3 * i);
    /* Expected gradients for upstream DY (softmax, log_softmax) and DYR (lse). */
    double g_sm[9], g_lsm[9], g_lse[9];
    for (int i = 0; i < 3; i++) {
        double sdy = 0, dys = 0;
        for (int j = 0; j < 3; j++) {
            sdy += DY[3 * i + j] * s[3 * i + j];
            dys += DY[3 * i + j];
        }
        for (int j = 0; j < 3; j++) {
            int k = 3 * i + j;
            g_sm[k] = s[k] * (DY[k] - sdy);
            g_lsm[k] = DY[k] - s[k] * dys;
            g_lse[k] = DYR[i] * s[k];
        }
    }
    TEST_CHECK(s[0] == 1 && s[2] == 0 && ls[2] == -2e4 && lse[0] == 1e4);   /* the reference itself */
    double xT[9], sT[9], lsT[9], gsT[9], glT[9], dyT[9], geT[9];
    transpose3(LOGITS, xT);
    transpose3(s, sT);
    transpose3(ls, lsT);
    transpose3(g_sm, gsT);
    transpose3(g_lsm, glT);
    transpose3(DY, dyT);
    transpose3(g_lse, geT);

    for (int d = 0; d < 2; d++) {
        tg_dtype dt = dts[d];
        tg_ctx *ctx = anomaly_ctx();
        const int64_t sh[2] = { 3, 3 };
        int last = -1, first = 0;
        /* Over the last axis (contiguous rows) and over axis 0 of the
         * transpose (the strided kernels): the same numbers. */
        for (int ax = 0; ax < 2; ax++) {
            const double *xin = ax ? xT : LOGITS, *dy = ax ? dyT : DY;
            int axis = ax ? first : last;
            tg_tensor *x = tu_tensor(ctx, dt, 2, sh, xin, 1);
            tg_tensor *y = tg_softmax(ctx, x, axis);
            TEST_CHECK_MSG(tu_vjp(ctx, y, dy) == TG_OK, "softmax %s axis %d: %s", tg_dtype_name(dt), axis,
                           tg_ctx_error(ctx));
            CHECK_VALUES("softmax(+-1e4)", y, 0, ax ? sT : s, 9, dt);
            CHECK_VALUES("softmax(+-1e4)", x, 1, ax ? gsT : g_sm, 9, dt);

            x = tu_tensor(ctx, dt, 2, sh, xin, 1);
            y = tg_log_softmax(ctx, x, axis);
            TEST_CHECK_MSG(tu_vjp(ctx, y, dy) == TG_OK, "log_softmax: %s", tg_ctx_error(ctx));
            CHECK_VALUES("log_softmax(+-1e4)", y, 0, ax ? lsT : ls, 9, dt);
            CHECK_VALUES("log_softmax(+-1e4)", x, 1, ax ? glT : g_lsm, 9, dt);

            x = tu_tensor(ctx, dt, 2, sh, xin, 1);
            y = tg_logsumexp(ctx, x, ax ? &first : &last, 1, 0);
            TEST_CHECK_MSG(tu_vjp(ctx, y, DYR) == TG_OK, "logsumexp: %s", tg_ctx_error(ctx));
            CHECK_VALUES("logsumexp(+-1e4)", y, 0, lse, 3, dt);
            /* f32 too: the VJP uses the result before rounding (1e4 + 0.31
             * is only known to ~5e-4 in f32). */
            CHECK_VALUES("logsumexp(+-1e4)", x, 1, ax ? geT : g_lse, 9, dt);
        }
        tg_ctx_free(ctx);
    }
}

static void test_losses_huge(void)
{
    /* cross_entropy: row 0's label is the -1e4 logit (loss 2e4, where
     * -log(softmax) would be -log(0) = inf), row 1's the runner-up, row 2's
     * one of three equal logits (ln 3). */
    const int32_t labels[3] = { 2, 1, 0 };
    double s[9], l[3], sum = 0;
    for (int i = 0; i < 3; i++) {
        l[i] = ref_row(LOGITS + 3 * i, 3, s + 3 * i, NULL) - LOGITS[3 * i + labels[i]];
        sum += l[i];
    }
    TEST_CHECK(l[0] == 2e4);
    /* bce_with_logits: targets exactly 0 and 1 (and 0.5) under huge logits. */
    const double bx[9] = { 1e4, -1e4, 1e4, -1e4, 1e4, -1e4, 50, -50, 0 };
    const double bt[9] = { 1, 0, 0, 1, 0.5, 0.5, 1, 0, 0.5 };
    double bl[9], bdx[9], bdt[9], bsum = 0;
    for (int i = 0; i < 9; i++) {
        double x = bx[i], sig = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
        bl[i] = (x > 0 ? x : 0) - x * bt[i] + log1p(exp(-fabs(x)));
        bsum += bl[i];
        bdx[i] = (sig - bt[i]) / 9;     /* MEAN */
        bdt[i] = -x / 9;
    }
    TEST_CHECK(bl[0] == 0 && bl[1] == 0 && bl[2] == 1e4 && bl[3] == 1e4 && bl[4] == 5e3);

    for (int d = 0; d < 2; d++) {
        tg_dtype dt = dts[d];
        tg_ctx *ctx = anomaly_ctx();
        const int64_t sh[2] = { 3, 3 };
        tg_tensor *lab = tg_tensor_from(ctx, TG_I32, TG_DIMS(3), labels);
        for (int r = TG_REDUCE_MEAN; r <= TG_REDUCE_NONE; r++) {
            tg_tensor *x = tu_tensor(ctx, dt, 2, sh, LOGITS, 1);
            tg_tensor *y = tg_cross_entropy(ctx, x, lab, (tg_reduction)r);
            double g[3], want_dx[9];
            for (int i = 0; i < 3; i++)
                g[i] = r == TG_REDUCE_MEAN ? 1.0 / 3 : r == TG_REDUCE_SUM ? 1 : DYR[i];
            for (int k = 0; k < 9; k++)
                want_dx[k] = (s[k] - (k % 3 == labels[k / 3])) * g[k / 3];
            TEST_CHECK_MSG(tu_vjp(ctx, y, r == TG_REDUCE_NONE ? DYR : (const double[]){ 1 }) == TG_OK,
                           "cross_entropy %s r%d: %s", tg_dtype_name(dt), r, tg_ctx_error(ctx));
            double want_y = r == TG_REDUCE_MEAN ? sum / 3 : sum;
            CHECK_VALUES("cross_entropy(+-1e4)", y, 0, r == TG_REDUCE_NONE ? l : &want_y, r == TG_REDUCE_NONE ? 3 : 1,
                         dt);
            CHECK_VALUES("cross_entropy(+-1e4)", x, 1, want_dx, 9, dt);
        }
        /* A single sample as 1-D logits. */
        tg_tensor *x1 = tu_tensor(ctx, dt, 1, (const int64_t[]){ 3 }, LOGITS, 1);
        tg_tensor *y1 = tg_cross_entropy(ctx, x1, tg_tensor_from(ctx, TG_I32, TG_DIMS(1), (int32_t[]){ 2 }),
                                         TG_REDUCE_MEAN);
        TEST_CHECK(tg_backward(ctx, y1) == TG_OK);
        CHECK_VALUES("cross_entropy 1-D", y1, 0, l, 1, dt);
        CHECK_VALUES("cross_entropy 1-D", x1, 1, ((const double[]){ 1, 0, -1 }), 3, dt);

        tg_tensor *x = tu_tensor(ctx, dt, 1, (const int64_t[]){ 9 }, bx, 1);
        tg_tensor *t = tu_tensor(ctx, dt, 1, (const int64_t[]){ 9 }, bt, 1);
        tg_tensor *y = tg_bce_with_logits(ctx, x, t, TG_REDUCE_MEAN);
        TEST_CHECK_MSG(tg_backward(ctx, y) == TG_OK, "bce %s: %s", tg_dtype_name(dt), tg_ctx_error(ctx));
        CHECK_VALUES("bce_with_logits(+-1e4)", y, 0, ((const double[]){ bsum / 9 }), 1, dt);
        CHECK_VALUES("bce_with_logits(+-1e4)", x, 1, bdx, 9, dt);
        CHECK_VALUES("bce_with_logits(+-1e4)", t, 1, bdt, 9, dt);
        y = tg_bce_with_logits(ctx, x, t, TG_REDUCE_NONE);
        CHECK_VALUES("bce_with_logits(+-1e4) NONE", y, 0, bl, 9, dt);
        tg_ctx_free(ctx);
    }
}

/* softplus and the stable log-sigmoid -softplus(-x) at +-1e4: finite. */
static void test_softplus_huge(void)
{
    const double xs[5] = { 1e4, -1e4, 100, -100, 0 };
    double sp[5], dsp[5], lsg[5], dlsg[5];
    for (int i = 0; i < 5; i++) {
        double x = xs[i];
        sp[i] = (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
        dsp[i] = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));   /* sigmoid(x) */
        lsg[i] = -((-x > 0 ? -x : 0) + log1p(exp(-fabs(x))));          /* log sigmoid(x) */
        dlsg[i] = 1 - dsp[i] == 0 ? exp(-x) : (x >= 0 ? exp(-x) / (1 + exp(-x)) : 1 / (1 + exp(x)));
    }
    TEST_CHECK(sp[0] == 1e4 && sp[1] == 0 && lsg[1] == -1e4 && lsg[0] == 0);
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = dts[d];
        tg_ctx *ctx = anomaly_ctx();
        const int64_t sh[1] = { 5 };
        tg_tensor *x = tu_tensor(ctx, dt, 1, sh, xs, 1);
        tg_tensor *y = tg_softplus(ctx, x);
        TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, y)) == TG_OK);
        CHECK_VALUES("softplus(+-1e4)", y, 0, sp, 5, dt);
        CHECK_VALUES("softplus(+-1e4)", x, 1, dsp, 5, dt);
        x = tu_tensor(ctx, dt, 1, sh, xs, 1);
        y = tg_neg(ctx, tg_softplus(ctx, tg_neg(ctx, x)));
        TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, y)) == TG_OK);
        CHECK_VALUES("-softplus(-x) (log sigmoid)", y, 0, lsg, 5, dt);
        CHECK_VALUES("-softplus(-x) (log sigmoid)", x, 1, dlsg, 5, dt);
        tg_ctx_free(ctx);
    }
}

/* A whole training step whose logits are +-1e4: one dense layer on one-hot
 * rows, so the logits are the weight rows and every gradient is known in
 * closed form; then an Adam step, and the next forward, stay finite. */
static void test_model_step_huge(void)
{
    static const double W[12] = { 1e4, 0, -1e4,   1e4, 1e4 - 1, -1e4,   -1e4, -1e4, -1e4,   -1e4, 1e4, 1e4 };
    const int32_t labels[4] = { 2, 1, 0, 0 };
    double s[12], loss = 0, dW[12], db[3] = { 0, 0, 0 };
    for (int i = 0; i < 4; i++)
        loss += (ref_row(W + 3 * i, 3, s + 3 * i, NULL) - W[3 * i + labels[i]]) / 4;
    for (int k = 0; k < 12; k++) {
        dW[k] = (s[k] - (k % 3 == labels[k / 3])) / 4;
        db[k % 3] += dW[k];
    }
    static const double eye[16] = { 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1 };
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = dts[d];
        char err[128];
        tg_model *m = tg_model_from_spec("4-3", dt, 1, err, sizeof err);
        tg_params *p = tg_model_params(m);
        tg_tensor *w = tg_params_find(p, "dense1.weight"), *b = tg_params_find(p, "dense1.bias");
        TEST_CHECK(w && b && w->numel == 12);
        if (!w || !b) {
            tg_model_free(m);
            continue;
        }
        for (int k = 0; k < 12; k++)
            tg_tensor_set(w, k, W[k]);
        tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_ADAM, 1e-3);
        tg_optim *opt = tg_optim_new(p, &cfg, err, sizeof err);
        tg_ctx *ctx = anomaly_ctx();
        for (int step = 0; step < 3; step++) {
            tg_tensor *x = tu_tensor(ctx, dt, 2, (const int64_t[]){ 4, 4 }, eye, 0);
            tg_tensor *l = tg_cross_entropy(ctx, tg_model_forward(ctx, m, x),
                                            tg_tensor_from(ctx, TG_I32, TG_DIMS(4), labels), TG_REDUCE_MEAN);
            tg_params_zero_grad(p);
            TEST_CHECK_MSG(tg_backward(ctx, l) == TG_OK, "step %d %s: %s", step, tg_dtype_name(dt),
                           tg_ctx_error(ctx));
            TEST_CHECK(all_finite(l, 0) && all_finite(w, 1) && all_finite(b, 1));
            if (step == 0) {
                CHECK_VALUES("model CE loss at +-1e4", l, 0, &loss, 1, dt);
                CHECK_VALUES("model CE dW at +-1e4", w, 1, dW, 12, dt);
                CHECK_VALUES("model CE db at +-1e4", b, 1, db, 3, dt);
            }
            TEST_CHECK(tg_optim_step(opt) == TG_OK);
            TEST_CHECK(all_finite(w, 0) && all_finite(b, 0));
            tg_ctx_reset(ctx);
        }
        /* The weights moved by about lr per step (Adam), nothing more. */
        TEST_CHECK(fabs(tg_tensor_get(w, 3) - W[3]) > 1e-3 && fabs(tg_tensor_get(w, 3) - W[3]) < 1e-2);
        tg_optim_free(opt);
        tg_model_free(m);

        /* Binary: logits +-1e4 against targets exactly 0 and 1. */
        m = tg_model_from_spec("4-1", dt, 1, err, sizeof err);
        p = tg_model_params(m);
        w = tg_params_find(p, "dense1.weight");
        b = tg_params_find(p, "dense1.bias");
        const double wb[4] = { 1e4, -1e4, 1e4, -1e4 }, tb[4] = { 1, 1, 0, 0 };
        for (int k = 0; k < 4; k++)
            tg_tensor_set(w, k, wb[k]);
        tg_tensor *x = tu_tensor(ctx, dt, 2, (const int64_t[]){ 4, 4 }, eye, 0);
        tg_tensor *t = tu_tensor(ctx, dt, 2, (const int64_t[]){ 4, 1 }, tb, 0);
        tg_tensor *l = tg_bce_with_logits(ctx, tg_model_forward(ctx, m, x), t, TG_REDUCE_MEAN);
        TEST_CHECK_MSG(tg_backward(ctx, l) == TG_OK, "bce model: %s", tg_ctx_error(ctx));
        CHECK_VALUES("model BCE loss at +-1e4", l, 0, ((const double[]){ 5e3 }), 1, dt);
        CHECK_VALUES("model BCE dW at +-1e4", w, 1, ((const double[]){ 0, -0.25, 0.25, 0 }), 4, dt);
        CHECK_VALUES("model BCE db at +-1e4", b, 1, ((const double[]){ 0 }), 1, dt);
        tg_ctx_free(ctx);
        tg_model_free(m);
    }
}

/* ---- probabilities of exactly 0 and 1 ----------------------------------------- */

static void test_probabilities_0_1(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = dts[d];
        tg_ctx *ctx = tg_ctx_new(NULL);
        const int64_t sh[1] = { 3 };
        const double xs[3] = { 1e4, -1e4, 0 };
        /* sigmoid rounds to exactly 1 and 0 (the correctly rounded values). */
        tg_tensor *x = tu_tensor(ctx, dt, 1, sh, xs, 1);
        tg_tensor *p = tg_sigmoid(ctx, x);
        TEST_CHECK(p && tg_tensor_get(p, 0) == 1 && tg_tensor_get(p, 1) == 0 && tg_tensor_get(p, 2) == 0.5);
        /* log(p) at p = 0 has no finite value: IEEE -inf with anomaly mode
         * off, a clear stop with it on. (log sigmoid(x) itself is finite:
         * -softplus(-x), tested above.) */
        tg_tensor *lp = tg_log(ctx, p);
        TEST_CHECK(lp && tg_tensor_get(lp, 1) == -INFINITY && tg_tensor_get(lp, 0) == 0);
        tg_tensor *l1p = tg_log(ctx, tg_rsub_scalar(ctx, p, 1.0));     /* log(1 - p) at p = 1 */
        TEST_CHECK(l1p && tg_tensor_get(l1p, 0) == -INFINITY);
        /* Binary cross-entropy by hand on probabilities with targets 1, 0,
         * 0.5: t log p + (1 - t) log(1 - p) meets 0 * -inf = NaN. */
        tg_tensor *t = tu_tensor(ctx, dt, 1, sh, (const double[]){ 1, 0, 0.5 }, 0);
        tg_tensor *bce = tg_neg(ctx, tg_add(ctx, tg_mul(ctx, t, lp), tg_mul(ctx, tg_rsub_scalar(ctx, t, 1.0), l1p)));
        TEST_CHECK(bce && isnan(tg_tensor_get(bce, 0)) && isnan(tg_tensor_get(bce, 1)));
        TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
        /* ... and its gradient: log's VJP divides by p = 0. */
        TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, lp)) == TG_OK && !all_finite(x, 1));

        tg_ctx_set_anomaly(ctx, 1);
        x = tu_tensor(ctx, dt, 1, sh, xs, 1);
        TEST_CHECK(tg_log(ctx, tg_sigmoid(ctx, x)) == NULL);
        EXPECT_ANOMALY(ctx, d ? "anomaly: log (inputs 3 f64) produced -inf at index 1, recorded at"
                              : "anomaly: log (inputs 3 f32) produced -inf at index 1, recorded at");
        TEST_CHECK(tg_log(ctx, tg_rsub_scalar(ctx, tg_sigmoid(ctx, x), 1.0)) == NULL);
        EXPECT_ANOMALY(ctx, "anomaly: log (inputs 3 ");
        /* The stable forms stay finite under anomaly mode. */
        tg_tensor *ok = tg_bce_with_logits(ctx, x, t, TG_REDUCE_SUM);
        TEST_CHECK(ok && tg_backward(ctx, ok) == TG_OK && all_finite(x, 1));
        TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, tg_log_softmax(ctx, x, -1))) == TG_OK);
        tg_ctx_reset(ctx);
        tg_ctx_set_anomaly(ctx, 1);
        if (dt == TG_F32) {
            /* log(sigmoid(-100)): the forward is finite (sigmoid is a
             * denormal, 3.8e-44) but 1/p = 2.6e43 overflows f32 in log's
             * VJP; anomaly mode names the VJP. */
            tg_tensor *xm = tu_tensor(ctx, dt, 1, (const int64_t[]){ 1 }, (const double[]){ -100 }, 1);
            tg_tensor *y = tg_log(ctx, tg_sigmoid(ctx, xm));
            TEST_CHECK(y && isfinite(tg_tensor_get(y, 0)));
            TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, y)) == TG_ERR_NUMERIC);
            EXPECT_ANOMALY(ctx, "the VJP of log (inputs 1 f32) wrote inf into the gradient of input 0 at index 0");
        }
        tg_ctx_free(ctx);
    }
}

/* ---- saturation ------------------------------------------------------------------ */

/* sigmoid and tanh saturate to exactly +-1 / 0 with gradients exactly 0 or
 * tiny, never NaN; the other activations at huge |x| give x (or their
 * asymptote) with gradient 1 (or 0). */
static void test_saturation(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = dts[d];
        double big = dt == TG_F32 ? 1e30 : 1e300;   /* x^2 and x^3 overflow */
        const double xs[8] = { 1e4, -1e4, 100, -100, 40, -40, big, -big };
        const int64_t sh[1] = { 8 };
        tg_ctx *ctx = anomaly_ctx();
        tg_tensor *x = tu_tensor(ctx, dt, 1, sh, xs, 1);
        tg_tensor *y = tg_sigmoid(ctx, x);
        TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, y)) == TG_OK && all_finite(x, 1));
        for (int i = 0; i < 8; i++) {
            double g = tg_tensor_grad_get(x, i);
            TEST_CHECK_MSG(g >= 0 && g <= 1e-17, "sigmoid'(%g) = %g", xs[i], g);
            if (xs[i] > 0)
                TEST_CHECK(tg_tensor_get(y, i) == 1.0);     /* 1 - e^-40 rounds to 1 */
            else if (xs[i] <= -1e4)
                TEST_CHECK(tg_tensor_get(y, i) == 0.0);
        }
        x = tu_tensor(ctx, dt, 1, sh, xs, 1);
        y = tg_tanh(ctx, x);
        TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, y)) == TG_OK);
        for (int i = 0; i < 8; i++) {
            TEST_CHECK(tg_tensor_get(y, i) == (xs[i] > 0 ? 1.0 : -1.0));
            TEST_CHECK_MSG(tg_tensor_grad_get(x, i) == 0, "tanh'(%g) = %g", xs[i], tg_tensor_grad_get(x, i));
        }
        /* Activations that are x for large x and 0 (elu: -1) for very
         * negative x, with gradients 1 and 0. */
        static const char *names[7] = { "relu", "softplus", "silu", "gelu", "gelu_tanh", "elu", "leaky_relu" };
        for (int a = 0; a < 7; a++) {
            x = tu_tensor(ctx, dt, 1, sh, xs, 1);
            y = a == 0 ? tg_relu(ctx, x) : a == 1 ? tg_softplus(ctx, x) : a == 2 ? tg_silu(ctx, x)
              : a == 3 ? tg_gelu(ctx, x, TG_GELU_ERF) : a == 4 ? tg_gelu(ctx, x, TG_GELU_TANH)
              : a == 5 ? tg_elu(ctx, x, 1.0) : tg_leaky_relu(ctx, x, 0.01);
            TEST_CHECK_MSG(tg_backward(ctx, tg_sum_all(ctx, y)) == TG_OK, "%s %s: %s", names[a], tg_dtype_name(dt),
                           tg_ctx_error(ctx));
            tg_ctx_clear_error(ctx);   /* one failure does not hide the next activation's */
            for (int i = 0; y && i < 8; i++) {
                if (fabs(xs[i]) < 1e4)
                    continue;                   /* 40, 100: not saturated in every one */
                double want_y = xs[i] > 0 ? xs[i] : a == 5 ? -1 : a == 6 ? 0.01 * xs[i] : 0;
                double want_g = xs[i] > 0 ? 1 : a == 6 ? 0.01 : 0;
                TEST_CHECK_MSG(tu_close(tg_tensor_get(y, i), want_y, 0, rtol_of(dt)) &&
                               tu_close(tg_tensor_grad_get(x, i), want_g, 0, rtol_of(dt)),
                               "%s(%g) = %g, gradient %g (%s)", names[a], xs[i], tg_tensor_get(y, i),
                               tg_tensor_grad_get(x, i), tg_dtype_name(dt));
            }
        }
        tg_ctx_free(ctx);
    }
}

/* ---- constant inputs: variance 0 -------------------------------------------------- */

static void test_constant_variance(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = dts[d];
        tg_ctx *ctx = anomaly_ctx();
        /* var of a constant: 0 (or a rounding residue), gradient ~0. 0.1 is
         * inexact, so its mean in double may differ from it in the last bit. */
        for (int c = 0; c <= 1; c++) {
            tg_tensor *x = tg_tensor_fill(ctx, dt, TG_DIMS(2, 5), 0.1);
            tg_tensor_requires_grad(x);
            int ax = 1;
            tg_tensor *v = tg_var(ctx, x, &ax, 1, 0, c);
            TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, v)) == TG_OK);
            for (int i = 0; i < 2; i++)
                TEST_CHECK_MSG(tg_tensor_get(v, i) >= 0 && tg_tensor_get(v, i) < 1e-30, "var = %g",
                               tg_tensor_get(v, i));
            for (int i = 0; i < 10; i++)
                TEST_CHECK(fabs(tg_tensor_grad_get(x, i)) < 1e-15);
        }
        /* Correction 1 of a single element: no sample variance exists. tg_var
         * follows PyTorch (0/0 = NaN, documented in tg_reduce.h); anomaly
         * mode names it. Correction 0 of one element is 0. */
        tg_tensor *one = tg_tensor_fill(ctx, dt, TG_DIMS(1), 3.5);
        tg_tensor_requires_grad(one);
        TEST_CHECK(tg_var(ctx, one, NULL, 0, 0, 1) == NULL);
        EXPECT_ANOMALY(ctx, "anomaly: var (inputs 1 ");
        tg_tensor *v0 = tg_var(ctx, one, NULL, 0, 0, 0);
        TEST_CHECK(tg_backward(ctx, v0) == TG_OK && tg_tensor_get(v0, 0) == 0 && tg_tensor_grad_get(one, 0) == 0);
        tg_ctx_set_anomaly(ctx, 0);
        tg_tensor *vn = tg_var(ctx, one, NULL, 0, 0, 1);
        TEST_CHECK(vn && isnan(tg_tensor_get(vn, 0)));
        tg_ctx_set_anomaly(ctx, 1);

        /* batch_norm (training) of a constant channel: var 0, rstd = 1/sqrt(eps),
         * y = beta; dx = gamma rstd (dy - mean(dy)) (the exact derivative with
         * eps > 0), dgamma = 0, dbeta = sum dy. */
        const double cst[6] = { 0.1, 1e4, 0.1, 1e4, 0.1, 1e4 };   /* two constant channels */
        const double dy[6] = { 1, 1.5, 2, 2.5, 3, 3.5 };
        tg_tensor *x = tu_tensor(ctx, dt, 2, (const int64_t[]){ 3, 2 }, cst, 1);
        tg_tensor *g = tu_tensor(ctx, dt, 1, (const int64_t[]){ 2 }, (const double[]){ 2, 3 }, 1);
        tg_tensor *b = tu_tensor(ctx, dt, 1, (const int64_t[]){ 2 }, (const double[]){ 0.5, -1 }, 1);
        tg_tensor *y = tg_batch_norm(ctx, x, g, b, 1e-5, NULL);
        TEST_CHECK_MSG(tu_vjp(ctx, y, dy) == TG_OK, "batch_norm constant: %s", tg_ctx_error(ctx));
        double r = 1 / sqrt(1e-5);
        double want_dx[6] = { 2 * r * (1 - 2), 3 * r * (1.5 - 2.5), 0, 0, 2 * r * (3 - 2), 3 * r * (3.5 - 2.5) };
        tu_check_values("batch_norm constant y", y, 0, ((const double[]){ 0.5, -1, 0.5, -1, 0.5, -1 }), 6, 1e-9, 0);
        tu_check_values("batch_norm constant dx", x, 1, want_dx, 6, 1e-9, rtol_of(dt));
        tu_check_values("batch_norm constant dgamma", g, 1, ((const double[]){ 0, 0 }), 2, 1e-9, 0);
        CHECK_VALUES("batch_norm constant dbeta", b, 1, ((const double[]){ 6, 7.5 }), 2, dt);

        /* layer_norm of a constant row, and of rows of one element: y = beta. */
        for (int k = 0; k < 2; k++) {
            const int64_t shp[2] = { k ? 6 : 2, k ? 1 : 3 };
            tg_tensor *xl = tu_tensor(ctx, dt, 2, shp, cst, 1);
            if (!k)
                for (int i = 0; i < 6; i++)
                    tg_tensor_set(xl, i, 7);
            tg_tensor *yl = tg_layer_norm(ctx, xl, NULL, NULL, 1e-5);
            TEST_CHECK_MSG(tu_vjp(ctx, yl, dy) == TG_OK, "layer_norm: %s", tg_ctx_error(ctx));
            tu_check_values("layer_norm constant y", yl, 0, ((const double[]){ 0, 0, 0, 0, 0, 0 }), 6, 1e-9, 0);
            TEST_CHECK(all_finite(xl, 1));
            if (k)   /* D = 1: dx = rstd (dy - mean over the row of dy) = 0 */
                tu_check_values("layer_norm D=1 dx", xl, 1, ((const double[]){ 0, 0, 0, 0, 0, 0 }), 6, 0, 0);
        }
        tg_ctx_free(ctx);

        /* The batch-norm layer: training on a constant batch, then eval with
         * a running variance of exactly 0: finite, (x - mean) / sqrt(eps). */
        tg_model *m = tg_model_new(dt, 3);
        TEST_CHECK(tg_model_add_batchnorm(m, 2, 0.1, 1e-5) == TG_OK);
        ctx = anomaly_ctx();
        tg_tensor *xb = tu_tensor(ctx, dt, 2, (const int64_t[]){ 3, 2 }, (const double[]){ 0.5, 4, 0.5, 4, 0.5, 4 }, 0);
        y = tg_model_forward(ctx, m, xb);
        TEST_CHECK_MSG(y && tg_backward(ctx, tg_sum_all(ctx, tg_mul(ctx, y, y))) == TG_OK, "%s", tg_ctx_error(ctx));
        tu_check_values("bn layer train, constant", y, 0, ((const double[]){ 0, 0, 0, 0, 0, 0 }), 6, 1e-9, 0);
        tg_tensor *rm = tg_params_find(tg_model_buffers(m), "bn1.running_mean");
        tg_tensor *rv = tg_params_find(tg_model_buffers(m), "bn1.running_var");
        CHECK_VALUES("bn running_var after a constant batch", rv, 0, ((const double[]){ 0.9, 0.9 }), 2, dt);
        CHECK_VALUES("bn running_mean", rm, 0, ((const double[]){ 0.05, 0.4 }), 2, dt);
        tg_tensor_set(rv, 0, 0);
        tg_tensor_set(rv, 1, 0);
        tg_model_set_training(m, 0);
        y = tg_model_forward(ctx, m, xb);
        double e0 = 0.45 / sqrt(1e-5), e1 = 3.6 / sqrt(1e-5);
        TEST_CHECK_MSG(y != NULL, "%s", tg_ctx_error(ctx));
        tu_check_values("bn layer eval, running var 0", y, 0, ((const double[]){ e0, e1, e0, e1, e0, e1 }), 6, 0,
                        dt == TG_F32 ? 1e-5 : 1e-12);
        tg_ctx_free(ctx);
        tg_model_free(m);
    }
}

/* ---- empty batches --------------------------------------------------------------- */

static void test_empty_batch(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = dts[d];
        char err[128];
        tg_model *m = tg_model_from_spec("784-32relu_ln_d0.5-10", dt, 1, err, sizeof err);
        tg_model *mbn = tg_model_from_spec("784-32relu_bn-10", dt, 1, err, sizeof err);
        tg_ctx *ctx = anomaly_ctx();
        tg_tensor *x = tg_tensor_new(ctx, dt, TG_DIMS(0, 784));
        tg_tensor *lab = tg_tensor_new(ctx, TG_I32, TG_DIMS(0));
        /* The forward of an empty batch is an empty batch. */
        tg_tensor *z = tg_model_forward(ctx, m, x);
        TEST_CHECK_MSG(tu_shape_is(z, TG_DIMS(0, 10)), "%s", tg_ctx_error(ctx));
        /* MEAN over zero losses: a clear error, not NaN. */
        TU_EXPECT_ERR_IS(ctx, tg_cross_entropy(ctx, z, lab, TG_REDUCE_MEAN), TG_ERR_SHAPE,
                         "cross_entropy: empty batch (0x10): the mean of zero losses is undefined "
                         "(TG_REDUCE_SUM gives 0)");
        z = tg_model_forward(ctx, m, x);
        tg_tensor *t = tg_tensor_new(ctx, dt, TG_DIMS(0, 10));
        TU_EXPECT_ERR(ctx, tg_mse_loss(ctx, z, t, TG_REDUCE_MEAN), TG_ERR_SHAPE, "mse: empty batch (0x10)");
        TU_EXPECT_ERR(ctx, tg_l1_loss(ctx, z, t, TG_REDUCE_MEAN), TG_ERR_SHAPE, "l1: empty batch (0x10)");
        TU_EXPECT_ERR(ctx, tg_huber_loss(ctx, z, t, 1.0, TG_REDUCE_MEAN), TG_ERR_SHAPE, "huber: empty batch (0x10)");
        TU_EXPECT_ERR(ctx, tg_bce_with_logits(ctx, z, t, TG_REDUCE_MEAN), TG_ERR_SHAPE,
                      "bce_with_logits: empty batch (0x10)");
        /* SUM over zero losses is 0, its gradients 0; NONE is empty. */
        tg_params_zero_grad(tg_model_params(m));
        z = tg_model_forward(ctx, m, x);
        tg_tensor *l = tg_cross_entropy(ctx, z, lab, TG_REDUCE_SUM);
        TEST_CHECK_MSG(l && tg_tensor_get(l, 0) == 0 && tg_backward(ctx, l) == TG_OK, "%s", tg_ctx_error(ctx));
        tg_tensor *w = tg_params_find(tg_model_params(m), "dense1.weight");
        TEST_CHECK(w && all_finite(w, 1) && tg_tensor_grad_get(w, 0) == 0 && tg_tensor_grad_get(w, w->numel - 1) == 0);
        l = tg_bce_with_logits(ctx, z, t, TG_REDUCE_SUM);
        TEST_CHECK(l && tg_tensor_get(l, 0) == 0);
        TEST_CHECK(tu_shape_is(tg_cross_entropy(ctx, z, lab, TG_REDUCE_NONE), TG_DIMS(0)));
        TEST_CHECK(tu_shape_is(tg_mse_loss(ctx, z, t, TG_REDUCE_NONE), TG_DIMS(0, 10)));
        TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
        /* Batch norm cannot train on it (the existing clear error); in eval
         * mode it passes through. */
        TU_EXPECT_ERR(ctx, tg_model_forward(ctx, mbn, x), TG_ERR_SHAPE,
                      "batch_norm: expected more than 1 value per channel when training, got input of shape 0x32");
        tg_model_set_training(mbn, 0);
        TEST_CHECK(tu_shape_is(tg_model_forward(ctx, mbn, x), TG_DIMS(0, 10)));
        /* Empty softmax rows and an empty sum. */
        TEST_CHECK(tu_shape_is(tg_log_softmax(ctx, t, -1), TG_DIMS(0, 10)));
        tg_tensor *s = tg_sum_all(ctx, t);
        TEST_CHECK(s && tg_tensor_get(s, 0) == 0);
        TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
        tg_ctx_free(ctx);
        tg_model_free(m);
        tg_model_free(mbn);
    }
}

/* ---- single elements -------------------------------------------------------------- */

static void test_single_element(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = dts[d];
        tg_ctx *ctx = anomaly_ctx();
        const int64_t s11[2] = { 1, 1 };
        /* 1x1 matmul, plain and transposed. */
        for (int tr = 0; tr < 2; tr++) {
            tg_tensor *a = tu_tensor(ctx, dt, 2, s11, (const double[]){ 3 }, 1);
            tg_tensor *b = tu_tensor(ctx, dt, 2, s11, (const double[]){ -2 }, 1);
            tg_tensor *c = tr ? tg_matmul_t(ctx, a, b, 1, 1) : tg_matmul(ctx, a, b);
            TEST_CHECK_MSG(tu_shape_is(c, 2, s11) && tu_vjp(ctx, c, (const double[]){ 0.5 }) == TG_OK, "%s",
                           tg_ctx_error(ctx));
            TEST_CHECK(tg_tensor_get(c, 0) == -6 && tg_tensor_grad_get(a, 0) == -1 && tg_tensor_grad_get(b, 0) == 1.5);
        }
        /* Reductions over a 1-element axis: the value itself (var: 0), with
         * gradient dy (var: 0). */
        const char *names[6] = { "sum", "mean", "max", "min", "logsumexp", "var" };
        for (int op = 0; op < 6; op++) {
            tg_tensor *x = tu_tensor(ctx, dt, 2, (const int64_t[]){ 2, 1 }, (const double[]){ 2.5, -1e4 }, 1);
            int ax = 1;
            tg_tensor *y = op == 0 ? tg_sum(ctx, x, &ax, 1, 0) : op == 1 ? tg_mean(ctx, x, &ax, 1, 0)
                         : op == 2 ? tg_max(ctx, x, &ax, 1, 0) : op == 3 ? tg_min(ctx, x, &ax, 1, 0)
                         : op == 4 ? tg_logsumexp(ctx, x, &ax, 1, 0) : tg_var(ctx, x, &ax, 1, 0, 0);
            TEST_CHECK_MSG(tu_vjp(ctx, y, (const double[]){ 2, 3 }) == TG_OK, "%s: %s", names[op], tg_ctx_error(ctx));
            double wy[2] = { 2.5, -1e4 }, wg[2] = { 2, 3 };
            if (op == 5)
                wy[0] = wy[1] = wg[0] = wg[1] = 0;
            tu_check_values(names[op], y, 0, wy, 2, 0, 0);
            tu_check_values(names[op], x, 1, wg, 2, 0, 0);
        }
        /* softmax of one element is 1 with zero gradient; log_softmax 0. */
        for (int op = 0; op < 2; op++) {
            tg_tensor *x = tu_tensor(ctx, dt, 2, (const int64_t[]){ 3, 1 }, (const double[]){ 1e4, 0, -7 }, 1);
            tg_tensor *y = op ? tg_log_softmax(ctx, x, -1) : tg_softmax(ctx, x, -1);
            TEST_CHECK(tu_vjp(ctx, y, (const double[]){ 1, 2, 3 }) == TG_OK);
            tu_check_values(op ? "log_softmax of one" : "softmax of one", y, 0,
                            op ? (const double[]){ 0, 0, 0 } : (const double[]){ 1, 1, 1 }, 3, 0, 0);
            tu_check_values("softmax of one", x, 1, ((const double[]){ 0, 0, 0 }), 3, 0, 0);
        }
        /* cross_entropy with one class: loss 0, gradient 0. */
        tg_tensor *x = tu_tensor(ctx, dt, 2, (const int64_t[]){ 2, 1 }, (const double[]){ 1e4, -3 }, 1);
        tg_tensor *l = tg_cross_entropy(ctx, x, tg_tensor_from(ctx, TG_I32, TG_DIMS(2), (int32_t[]){ 0, 0 }),
                                        TG_REDUCE_MEAN);
        TEST_CHECK(tg_backward(ctx, l) == TG_OK && tg_tensor_get(l, 0) == 0);
        tu_check_values("cross_entropy, one class", x, 1, ((const double[]){ 0, 0 }), 2, 0, 0);
        /* batch norm of one value per channel: the clear error, for the op
         * and through the layer. */
        tg_tensor *x1 = tu_tensor(ctx, dt, 2, (const int64_t[]){ 1, 3 }, NULL, 1);
        TU_EXPECT_ERR_IS(ctx, tg_batch_norm(ctx, x1, NULL, NULL, 1e-5, NULL), TG_ERR_SHAPE,
                         "batch_norm: expected more than 1 value per channel when training, got input of shape 1x3");
        tg_model *m = tg_model_new(dt, 1);
        tg_model_add_batchnorm(m, 3, 0.1, 1e-5);
        TU_EXPECT_ERR(ctx, tg_model_forward(ctx, m, x1), TG_ERR_SHAPE,
                      "batch_norm: expected more than 1 value per channel when training");
        tg_model_set_training(m, 0);
        TEST_CHECK(all_finite(tg_model_forward(ctx, m, x1), 0));
        tg_model_free(m);
        tg_ctx_free(ctx);
    }
}

/* ---- denormals and huge magnitudes ------------------------------------------------- */

/* exp, log, sqrt, pow on denormals and on huge values: no crash, the IEEE
 * results (compared with libm in the op's precision), and anomaly mode
 * naming the op where the result or gradient is not finite. */
static void test_denormals_huge(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = dts[d];
        int f32 = dt == TG_F32;
        /* Denormals: `den` just below the normal range (1/den is finite),
         * `tiny` the smallest (1/tiny overflows). */
        double den = f32 ? 1e-38 : 1e-308, tiny = f32 ? 1.4e-45 : 4.9e-324;
        double huge = f32 ? 3e38 : 1e308;
        const double xs[5] = { den, tiny, huge, f32 ? 80 : 700, f32 ? -100 : -740 };
        const int64_t sh[1] = { 5 };
        tg_ctx *ctx = tg_ctx_new(NULL);
        tg_tensor *x = tu_tensor(ctx, dt, 1, sh, xs, 1);
        double xv[5];
        for (int i = 0; i < 5; i++)
            xv[i] = tg_tensor_get(x, i);   /* as stored: still denormal, not flushed */
        for (int i = 0; i < 2; i++)
            TEST_CHECK(f32 ? fpclassify((float)xv[i]) == FP_SUBNORMAL : fpclassify(xv[i]) == FP_SUBNORMAL);
        double w_exp[5], w_log[5], w_sqrt[5], g_log[5];
        for (int i = 0; i < 5; i++) {
            w_exp[i] = f32 ? (double)expf((float)xv[i]) : exp(xv[i]);
            w_log[i] = f32 ? (double)logf((float)xv[i]) : log(xv[i]);
            w_sqrt[i] = f32 ? (double)sqrtf((float)xv[i]) : sqrt(xv[i]);
            g_log[i] = f32 ? (double)(1.0f / (float)xv[i]) : 1.0 / xv[i];
        }
        TEST_CHECK(isinf(w_exp[2]) && isfinite(w_exp[3]) && w_exp[4] > 0 && isinf(g_log[1]));
        tg_tensor *y = tg_exp(ctx, x);
        CHECK_VALUES("exp(denormal, huge)", y, 0, w_exp, 5, dt);
        y = tg_log(ctx, x);
        TEST_CHECK(tu_vjp(ctx, y, (const double[]){ 1, 1, 1, 1, 1 }) == TG_OK);
        CHECK_VALUES("log(denormal, huge)", y, 0, w_log, 5, dt);   /* log of a negative: NaN, as libm */
        CHECK_VALUES("log'(denormal, huge)", x, 1, g_log, 5, dt);
        y = tg_sqrt(ctx, x);
        CHECK_VALUES("sqrt(denormal, huge)", y, 0, w_sqrt, 5, dt);
        /* pow: a denormal squared underflows to 0, a huge one overflows; x^-1
         * of `den` is finite, of `tiny` it overflows. */
        tg_tensor *sq = tg_pow_scalar(ctx, x, 2.0);
        TEST_CHECK(sq && tg_tensor_get(sq, 0) == 0 && tg_tensor_get(sq, 1) == 0 && isinf(tg_tensor_get(sq, 2)));
        tg_tensor *inv = tg_pow_scalar(ctx, x, -1.0);
        TEST_CHECK(inv && tu_close(tg_tensor_get(inv, 0), 1 / xv[0], 0, rtol_of(dt)) && isinf(tg_tensor_get(inv, 1)));
        /* a^b on denormal and huge bases: every value and gradient finite.
         * d/da a^2 = 2a at a denormal is a denormal; d/db = a^2 log a = 0. */
        const int64_t s4[1] = { 4 };
        tg_tensor *pa = tu_tensor(ctx, dt, 1, s4, (const double[]){ den, tiny, huge, 3 }, 1);
        tg_tensor *pb = tu_tensor(ctx, dt, 1, s4, (const double[]){ 2, 2, 0.5, 0 }, 1);
        tg_tensor *pw = tg_pow(ctx, pa, pb);
        TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, pw)) == TG_OK);
        TEST_CHECK(pw && tg_tensor_get(pw, 0) == 0 && tg_tensor_get(pw, 1) == 0 && tg_tensor_get(pw, 3) == 1 &&
                   tu_close(tg_tensor_get(pw, 2), w_sqrt[2], 0, rtol_of(dt)));
        TEST_CHECK(all_finite(pw, 0) && all_finite(pa, 1) && all_finite(pb, 1));
        TEST_CHECK(tu_close(tg_tensor_grad_get(pa, 0), 2 * xv[0], 0, rtol_of(dt)) && tg_tensor_grad_get(pb, 0) == 0);
        TEST_CHECK(tu_close(tg_tensor_grad_get(pb, 3), log(3), 0, rtol_of(dt)));
        TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
        /* A matmul keeps denormals (no flush-to-zero in the kernels). */
        tg_tensor *a = tu_tensor(ctx, dt, 2, (const int64_t[]){ 1, 2 }, xs, 0);
        tg_tensor *i2 = tu_tensor(ctx, dt, 2, (const int64_t[]){ 2, 2 }, (const double[]){ 1, 0, 0, 1 }, 0);
        tg_tensor *mm = tg_matmul(ctx, a, i2);
        TEST_CHECK(mm && tg_tensor_get(mm, 0) == xv[0] && tg_tensor_get(mm, 1) == xv[1]);
        /* Anomaly mode on the results that are not finite. */
        tg_ctx_set_anomaly(ctx, 1);
        TEST_CHECK(tg_exp(ctx, x) == NULL);
        EXPECT_ANOMALY(ctx, "anomaly: exp (inputs 5 ");
        TEST_CHECK(tg_pow_scalar(ctx, x, 2.0) == NULL);
        EXPECT_ANOMALY(ctx, "anomaly: pow_scalar (inputs 5 ");
        tg_tensor *xd = tu_tensor(ctx, dt, 1, (const int64_t[]){ 1 }, (const double[]){ tiny }, 1);
        TEST_CHECK(tg_backward(ctx, tg_sum_all(ctx, tg_log(ctx, xd))) == TG_ERR_NUMERIC);
        EXPECT_ANOMALY(ctx, "the VJP of log (inputs 1 ");
        tg_tensor *z = tu_tensor(ctx, dt, 1, (const int64_t[]){ 1 }, (const double[]){ 0 }, 0);
        TEST_CHECK(tg_log(ctx, z) == NULL);
        EXPECT_ANOMALY(ctx, "produced -inf at index 0");
        tg_ctx_free(ctx);
    }
}

int main(void)
{
    test_softmax_family_huge();
    test_losses_huge();
    test_softplus_huge();
    test_model_step_huge();
    test_probabilities_0_1();
    test_saturation();
    test_constant_variance();
    test_empty_batch();
    test_single_element();
    test_denormals_huge();
    return test_report("test_stress");
}
