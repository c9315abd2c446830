/* test_loss.c — the loss family: PyTorch reference values (ops.json) for
 * forward and input gradients in f64 and f32, hand-computed cases, the
 * stability cases (logits of +-1e4), numeric gradient checks of every
 * sample variant (accumulation and poisoned memory included), inputs
 * aliased to each other, and the error messages. */
#include "tapegrad.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ---- reference cases ------------------------------------------------------
 * Copied from /work/shared/reference/ops.json (PyTorch 1.13, float64, upstream
 * gradient 1). Labels are int64 there and converted to i32 here. */
typedef struct ref_case {
    const char  *op;
    tg_reduction red;
    double       delta;
    const char  *note;
    int          nda;
    int64_t      sa[2];
    int          ndb;
    int64_t      sb[2];
    double       a[20];
    double       b[20];        /* float targets (unused for labels)  */
    int64_t      labels[8];    /* cross_entropy                       */
    double       out;
    double       ga[20];
    double       gb[20];
    int          has_gb;
} ref_case;

static const ref_case refs[] = {
    { "cross_entropy", TG_REDUCE_MEAN, 0.0, "",
      2, {5, 4}, 1, {5},
      {-3.8768315608708965, 0.02634598498129126, -2.662067132822277, 2.043288758615514,
       2.3959772595579585, -0.8290852597056455, -1.1257519627616395, -2.14950187473237,
       2.329800182925646, 1.1762446882181248, -2.9782282138022023, -2.719027593967243,
       0.2737836394227626, -1.9696764718541822, 1.7767900929477074, -0.9932327472729909,
       3.3886766695519244, -1.248762036830148, 3.2508286037932956, -3.33503771607539},
      {0}, {3, 0, 1, 1, 2},
      1.286851390645173,
      {0.00046905887986448667, 0.02324640673035815, 0.0015804939947126166, -0.025295959604935248,
       -0.014800526502344669, 0.007362289517096288, 0.00547232874948415, 0.0019659082357641965,
       0.15072936065845643, -0.15244293204787013, 0.0007463635376833918, 0.0009672078517302977,
       0.03399657891688183, -0.19639327633516168, 0.15282085499475095, 0.009575842423528895,
       0.10626339950082242, 0.0010288917030046101, -0.1074200267148698, 0.00012773551104276623},
      {0}, 0 },
    { "cross_entropy", TG_REDUCE_SUM, 0.0, "",
      2, {5, 4}, 1, {5},
      {-3.8768315608708965, 0.02634598498129126, -2.662067132822277, 2.043288758615514,
       2.3959772595579585, -0.8290852597056455, -1.1257519627616395, -2.14950187473237,
       2.329800182925646, 1.1762446882181248, -2.9782282138022023, -2.719027593967243,
       0.2737836394227626, -1.9696764718541822, 1.7767900929477074, -0.9932327472729909,
       3.3886766695519244, -1.248762036830148, 3.2508286037932956, -3.33503771607539},
      {0}, {3, 0, 1, 1, 2},
      6.434256953225865,
      {0.002345294399322433, 0.11623203365179074, 0.007902469973563083, -0.12647979802467624,
       -0.07400263251172334, 0.03681144758548144, 0.027361643747420752, 0.009829541178820981,
       0.7536468032922821, -0.7622146602393507, 0.003731817688416959, 0.0048360392586514886,
       0.16998289458440913, -0.9819663816758083, 0.7641042749737548, 0.047879212117644475,
       0.5313169975041121, 0.0051444585150230504, -0.537100133574349, 0.0006386775552138311},
      {0}, 0 },
    { "cross_entropy", TG_REDUCE_MEAN, 0.0, "stability",
      2, {2, 3}, 1, {2},
      {10000.0, -10000.0, 0.0, -10000.0, 10000.0, 10000.0},
      {0}, {1, 0},
      20000.34657359028,
      {0.5, -0.5, 0.0, -0.5, 0.25, 0.25},
      {0}, 0 },
    { "bce_with_logits", TG_REDUCE_MEAN, 0.0, "",
      2, {3, 4}, 2, {3, 4},
      {1.6737507370816909, 0.6036114506802268, -3.635119354789788, -3.3026390968096404,
       -3.877851541654958, 5.661908144681027, -2.9509100797544026, -1.3912660123009402,
       3.0057064010763903, 2.576118558814574, -2.2052126799064204, -0.21348056539202753},
      {0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0}, {0},
      2.102201161398478,
      {0.07017293761126313, -0.029459823839252552, -0.08119143938435487, -0.0803766030317066,
       -0.08164369739557951, -0.0002886531840587588, -0.07919220697743805, 0.016600476842404236,
       0.07940260485039506, 0.07744239217348398, -0.07505971963309692, -0.04609736418014395},
      {-0.1394792280901409, -0.050300954223352234, 0.302926612899149, 0.2752199247341367,
       0.32315429513791316, -0.4718256787234189, 0.24590917331286688, 0.11593883435841168,
       -0.2504755334230325, -0.21467654656788115, 0.18376772332553504, 0.017790047116002294}, 1 },
    { "bce_with_logits", TG_REDUCE_MEAN, 0.0, "stability",
      2, {1, 2}, 2, {1, 2},
      {80.0, -80.0},
      {0.0, 1.0}, {0},
      80.0,
      {0.5, -0.5},
      {-40.0, 40.0}, 1 },
    { "mse", TG_REDUCE_MEAN, 0.0, "",
      2, {3, 4}, 2, {3, 4},
      {-1.9964403026569038, -0.07826392556438577, 0.1413700409198957, -1.07190474825033,
       0.9063279845950074, 1.208356717997248, 0.03631841578609407, -0.5014720206310606,
       -1.2191805484376887, 0.6543229156268899, -0.6236433967610089, 0.13165116664485144},
      {-1.9733572109884752, 1.9147486285804263, -0.5349071338262421, -1.4528534716325647,
       1.579115691154835, -1.9906213582923198, 1.3198804597721767, -1.1094042277589513,
       1.7846179656567065, -1.318960695517732, 0.8158237738044138, -1.3233946700008064}, {0},
      2.865349965174714,
      {-0.0038471819447380984, -0.33216875902413534, 0.11271286245768963, 0.0634914538970391,
       -0.11213128442663792, 0.5331630127149279, -0.21392700733101377, 0.10132203452131512,
       -0.5006330856823992, 0.32888060185743695, -0.2399111950942371, 0.24250763944094295},
      {0.0038471819447380984, 0.33216875902413534, -0.11271286245768963, -0.0634914538970391,
       0.11213128442663792, -0.5331630127149279, 0.21392700733101377, -0.10132203452131512,
       0.5006330856823992, -0.32888060185743695, 0.2399111950942371, -0.24250763944094295}, 1 },
    { "huber", TG_REDUCE_MEAN, 1.0, "",
      2, {3, 4}, 2, {3, 4},
      {-1.9964403026569038, -0.07826392556438577, 0.1413700409198957, -1.07190474825033,
       0.9063279845950074, 1.208356717997248, 0.03631841578609407, -0.5014720206310606,
       -1.2191805484376887, 0.6543229156268899, -0.6236433967610089, 0.13165116664485144},
      {-1.9733572109884752, 1.9147486285804263, -0.5349071338262421, -1.4528534716325647,
       1.579115691154835, -1.9906213582923198, 1.3198804597721767, -1.1094042277589513,
       1.7846179656567065, -1.318960695517732, 0.8158237738044138, -1.3233946700008064}, {0},
      0.9633135856813619,
      {-0.0019235909723690492, -0.08333333333333333, 0.05635643122884482, 0.03174572694851955,
       -0.05606564221331896, 0.08333333333333333, -0.08333333333333333, 0.05066101726065756,
       -0.08333333333333333, 0.08333333333333333, -0.08333333333333333, 0.08333333333333333},
      {0.0019235909723690492, 0.08333333333333333, -0.05635643122884482, -0.03174572694851955,
       0.05606564221331896, -0.08333333333333333, 0.08333333333333333, -0.05066101726065756,
       0.08333333333333333, -0.08333333333333333, 0.08333333333333333, -0.08333333333333333}, 1 },
    { "l1", TG_REDUCE_MEAN, 0.0, "",
      2, {3, 4}, 2, {3, 4},
      {-1.9964403026569038, -0.07826392556438577, 0.1413700409198957, -1.07190474825033,
       0.9063279845950074, 1.208356717997248, 0.03631841578609407, -0.5014720206310606,
       -1.2191805484376887, 0.6543229156268899, -0.6236433967610089, 0.13165116664485144},
      {-1.9733572109884752, 1.9147486285804263, -0.5349071338262421, -1.4528534716325647,
       1.579115691154835, -1.9906213582923198, 1.3198804597721767, -1.1094042277589513,
       1.7846179656567065, -1.318960695517732, 0.8158237738044138, -1.3233946700008064}, {0},
      1.3923480591962567,
      {-0.08333333333333333, -0.08333333333333333, 0.08333333333333333, 0.08333333333333333,
       -0.08333333333333333, 0.08333333333333333, -0.08333333333333333, 0.08333333333333333,
       -0.08333333333333333, 0.08333333333333333, -0.08333333333333333, 0.08333333333333333},
      {0.08333333333333333, 0.08333333333333333, -0.08333333333333333, -0.08333333333333333,
       0.08333333333333333, -0.08333333333333333, 0.08333333333333333, -0.08333333333333333,
       0.08333333333333333, -0.08333333333333333, 0.08333333333333333, -0.08333333333333333}, 1 },
};

#define N_REFS ((int)(sizeof refs / sizeof refs[0]))

static tg_tensor *call_loss(tg_ctx *ctx, const char *op, tg_tensor *a, tg_tensor *b,
                            tg_reduction r, double delta)
{
    if (strcmp(op, "mse") == 0)
        return tg_mse_loss(ctx, a, b, r);
    if (strcmp(op, "l1") == 0)
        return tg_l1_loss(ctx, a, b, r);
    if (strcmp(op, "huber") == 0)
        return tg_huber_loss(ctx, a, b, delta, r);
    if (strcmp(op, "cross_entropy") == 0)
        return tg_cross_entropy(ctx, a, b, r);
    if (strcmp(op, "bce_with_logits") == 0)
        return tg_bce_with_logits(ctx, a, b, r);
    return NULL;
}

static void test_reference(void)
{
    int seen[5] = {0};
    static const char *names[5] = { "mse", "l1", "huber", "cross_entropy", "bce_with_logits" };
    for (int k = 0; k < N_REFS; k++) {
        const ref_case *c = &refs[k];
        for (int w = 0; w < 5; w++)
            seen[w] += strcmp(c->op, names[w]) == 0;
        int is_ce = strcmp(c->op, "cross_entropy") == 0;
        for (int f = 0; f < 2; f++) {
            tg_dtype dt = f ? TG_F32 : TG_F64;
            /* f64: tight; f32: single-precision rounding of inputs and results */
            double rtol = f ? 2e-5 : 1e-12, atol = f ? 2e-6 : 1e-14;
            tg_ctx *ctx = tg_ctx_new(NULL);
            tg_tensor *a64 = tg_tensor_from(ctx, TG_F64, c->nda, c->sa, c->a);
            tg_tensor *a = tg_tensor_cast(ctx, a64, dt), *b;
            if (is_ce) {
                int32_t lab[8];
                for (int64_t i = 0; i < c->sb[0]; i++) {
                    TEST_CHECK(c->labels[i] >= 0 && c->labels[i] <= INT32_MAX);
                    lab[i] = (int32_t)c->labels[i];
                }
                b = tg_tensor_from(ctx, TG_I32, c->ndb, c->sb, lab);
            } else {
                b = tg_tensor_cast(ctx, tg_tensor_from(ctx, TG_F64, c->ndb, c->sb, c->b), dt);
            }
            TEST_CHECK(tg_tensor_requires_grad(a) == TG_OK);
            if (!is_ce)
                TEST_CHECK(tg_tensor_requires_grad(b) == TG_OK);
            tg_tensor *y = call_loss(ctx, c->op, a, b, c->red, c->delta);
            TEST_CHECK_MSG(y != NULL, "%s: %s", c->op, tg_ctx_error(ctx));
            if (!y) {
                tg_ctx_free(ctx);
                continue;
            }
            TEST_CHECK(y->ndim == 0 && y->numel == 1 && y->dtype == dt);
            TEST_CHECK_MSG(fabs(tg_tensor_get(y, 0) - c->out) <= atol + rtol * fabs(c->out),
                           "%s %s case %d (%s): loss %.17g, expected %.17g", c->op,
                           tg_dtype_name(dt), k, c->note, tg_tensor_get(y, 0), c->out);
            TEST_CHECK(tg_backward(ctx, y) == TG_OK);
            for (int64_t i = 0; i < a->numel; i++)
                TEST_CHECK_MSG(fabs(tg_tensor_grad_get(a, i) - c->ga[i]) <= atol + rtol * fabs(c->ga[i]),
                               "%s %s case %d: d input0[%lld] = %.17g, expected %.17g", c->op,
                               tg_dtype_name(dt), k, (long long)i, tg_tensor_grad_get(a, i), c->ga[i]);
            if (c->has_gb)
                for (int64_t i = 0; i < b->numel; i++)
                    TEST_CHECK_MSG(fabs(tg_tensor_grad_get(b, i) - c->gb[i]) <= atol + rtol * fabs(c->gb[i]),
                                   "%s %s case %d: d input1[%lld] = %.17g, expected %.17g", c->op,
                                   tg_dtype_name(dt), k, (long long)i, tg_tensor_grad_get(b, i), c->gb[i]);
            else
                TEST_CHECK(b->grad == NULL);
            tg_ctx_free(ctx);
        }
    }
    /* every op of the family has reference cases; CE has mean, sum, stability */
    for (int w = 0; w < 5; w++)
        TEST_CHECK_MSG(seen[w] > 0, "no reference case for %s", names[w]);
    TEST_CHECK(seen[3] == 3);
}

/* ---- hand-computed cases ------------------------------------------------- */

/* A tensor of `dt` from doubles, requiring a gradient when `grad`. */
static tg_tensor *mk(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, const double *v, int grad)
{
    tg_tensor *t = tg_tensor_new(ctx, dt, ndim, shape);
    if (!t)
        return NULL;
    for (int64_t i = 0; i < t->numel; i++)
        tg_tensor_set(t, i, v[i]);
    if (grad)
        tg_tensor_requires_grad(t);
    return t;
}

static tg_tensor *mk_labels(tg_ctx *ctx, int ndim, const int64_t *shape, const int32_t *v)
{
    return tg_tensor_from(ctx, TG_I32, ndim, shape, v);
}

static void test_mse_hand(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        tg_ctx *ctx = tg_ctx_new(NULL);
        const double pv[2] = {1, 2}, tv[2] = {0, 0};
        const int64_t sh[1] = {2};
        tg_tensor *p = mk(ctx, dt, 1, sh, pv, 1), *t = mk(ctx, dt, 1, sh, tv, 1);
        tg_tensor *y = tg_mse_loss(ctx, p, t, TG_REDUCE_MEAN);
        TEST_CHECK(y && y->ndim == 0);
        TEST_CHECK(tg_tensor_get(y, 0) == 2.5);                /* (1 + 4) / 2 */
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        TEST_CHECK(tg_tensor_grad_get(p, 0) == 1.0 && tg_tensor_grad_get(p, 1) == 2.0);
        TEST_CHECK(tg_tensor_grad_get(t, 0) == -1.0 && tg_tensor_grad_get(t, 1) == -2.0);

        y = tg_mse_loss(ctx, p, t, TG_REDUCE_SUM);
        TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 5.0);
        y = tg_mse_loss(ctx, p, t, TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 1 && y->shape[0] == 2);
        TEST_CHECK(tg_tensor_get(y, 0) == 1.0 && tg_tensor_get(y, 1) == 4.0);
        /* NONE with a seed: dp = 2 d * seed */
        tg_tensor_zero_grad(p);
        const double sv[2] = {3, -1};
        TEST_CHECK(tg_backward_seed(ctx, y, mk(ctx, dt, 1, sh, sv, 0)) == TG_OK);
        TEST_CHECK(tg_tensor_grad_get(p, 0) == 6.0 && tg_tensor_grad_get(p, 1) == -4.0);
        tg_ctx_free(ctx);
    }
}

static void test_l1_huber_hand(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        tg_ctx *ctx = tg_ctx_new(NULL);
        const int64_t sh[1] = {3};
        const double pv[3] = {1, -2, 3}, tv[3] = {0, 0, 3};
        tg_tensor *p = mk(ctx, dt, 1, sh, pv, 1), *t = mk(ctx, dt, 1, sh, tv, 1);
        tg_tensor *y = tg_l1_loss(ctx, p, t, TG_REDUCE_MEAN);
        TEST_CHECK(y && tg_tensor_get(y, 0) == 1.0);           /* (1 + 2 + 0) / 3 */
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        TEST_CLOSE(tg_tensor_grad_get(p, 0), 1.0 / 3, 0, 1e-7);
        TEST_CLOSE(tg_tensor_grad_get(p, 1), -1.0 / 3, 0, 1e-7);
        TEST_CHECK(tg_tensor_grad_get(p, 2) == 0.0);            /* d == 0: gradient 0 */
        TEST_CHECK(tg_tensor_grad_get(t, 2) == 0.0);
        TEST_CLOSE(tg_tensor_grad_get(t, 0), -1.0 / 3, 0, 1e-7);
        y = tg_l1_loss(ctx, p, t, TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 1 && tg_tensor_get(y, 1) == 2.0 && tg_tensor_get(y, 2) == 0.0);

        /* huber, delta 1: d = 0.5 -> 0.125; d = -3 -> 1 * (3 - 0.5) = 2.5; d = 1 -> 0.5 (linear branch) */
        const double hp[3] = {0.5, -3, 1}, hz[3] = {0, 0, 0};
        tg_tensor *q = mk(ctx, dt, 1, sh, hp, 1), *z = mk(ctx, dt, 1, sh, hz, 1);
        y = tg_huber_loss(ctx, q, z, 1.0, TG_REDUCE_SUM);
        TEST_CHECK(y && tg_tensor_get(y, 0) == 3.125);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        TEST_CHECK(tg_tensor_grad_get(q, 0) == 0.5 && tg_tensor_grad_get(q, 1) == -1.0 &&
                   tg_tensor_grad_get(q, 2) == 1.0);
        TEST_CHECK(tg_tensor_grad_get(z, 0) == -0.5 && tg_tensor_grad_get(z, 1) == 1.0);
        /* delta 2: d = -3 -> 2 * (3 - 1) = 4; d = 1 -> 0.5 */
        y = tg_huber_loss(ctx, q, z, 2.0, TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 1 && tg_tensor_get(y, 0) == 0.125 && tg_tensor_get(y, 1) == 4.0 &&
                   tg_tensor_get(y, 2) == 0.5);
        y = tg_huber_loss(ctx, q, z, 2.0, TG_REDUCE_MEAN);
        TEST_CLOSE(tg_tensor_get(y, 0), 4.625 / 3, 0, 1e-7);
        tg_ctx_free(ctx);
    }
}

static void test_ce_hand(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        double tol = f ? 1e-6 : 1e-15;
        tg_ctx *ctx = tg_ctx_new(NULL);
        /* uniform logits over C = 5 classes: loss log 5 per row, whatever the label */
        const int64_t sh[2] = {3, 5}, sl[1] = {3};
        double xv[15];
        for (int i = 0; i < 15; i++)
            xv[i] = 0.7;
        const int32_t lab[3] = {0, 4, 2};
        tg_tensor *x = mk(ctx, dt, 2, sh, xv, 1), *c = mk_labels(ctx, 1, sl, lab);
        tg_tensor *y = tg_cross_entropy(ctx, x, c, TG_REDUCE_MEAN);
        TEST_CHECK(y && y->ndim == 0);
        TEST_CLOSE(tg_tensor_get(y, 0), log(5.0), 0, tol);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++)
                TEST_CLOSE(tg_tensor_grad_get(x, i * 5 + j), (0.2 - (j == lab[i])) / 3, tol, tol);
        y = tg_cross_entropy(ctx, x, c, TG_REDUCE_SUM);
        TEST_CLOSE(tg_tensor_get(y, 0), 3 * log(5.0), 0, tol);
        y = tg_cross_entropy(ctx, x, c, TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 1 && y->shape[0] == 3);
        for (int i = 0; i < 3; i++)
            TEST_CLOSE(tg_tensor_get(y, i), log(5.0), 0, tol);
        /* NONE with a seed weights each row's gradient */
        tg_tensor_zero_grad(x);
        const double sv[3] = {1, 0, -2};
        TEST_CHECK(tg_backward_seed(ctx, y, mk(ctx, dt, 1, sl, sv, 0)) == TG_OK);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++)
                TEST_CLOSE(tg_tensor_grad_get(x, i * 5 + j), (0.2 - (j == lab[i])) * sv[i], tol, tol);

        /* a single sample: logits (C) with a 0-d label, and with a (1) label */
        const int64_t sc[1] = {3}, s1[1] = {1};
        const double v3[3] = {1, 2, 3};
        const int32_t two = 2;
        tg_tensor *x1 = mk(ctx, dt, 1, sc, v3, 1);
        double lse = log(exp(1.0) + exp(2.0) + exp(3.0));
        y = tg_cross_entropy(ctx, x1, tg_tensor_from(ctx, TG_I32, 0, NULL, &two), TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 0);
        TEST_CLOSE(tg_tensor_get(y, 0), lse - 3, 0, 4 * tol);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        for (int j = 0; j < 3; j++)
            TEST_CLOSE(tg_tensor_grad_get(x1, j), exp(v3[j] - lse) - (j == 2), tol, tol);
        y = tg_cross_entropy(ctx, x1, mk_labels(ctx, 1, s1, &two), TG_REDUCE_MEAN);
        TEST_CHECK(y && y->ndim == 0);
        TEST_CLOSE(tg_tensor_get(y, 0), lse - 3, 0, 4 * tol);
        tg_ctx_free(ctx);
    }
}

static void test_bce_hand(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        double tol = f ? 1e-6 : 1e-15;
        tg_ctx *ctx = tg_ctx_new(NULL);
        const int64_t sh[1] = {2};
        const double xv[2] = {0, 2}, tv[2] = {0.3, 1};
        tg_tensor *x = mk(ctx, dt, 1, sh, xv, 1), *t = mk(ctx, dt, 1, sh, tv, 1);
        tg_tensor *y = tg_bce_with_logits(ctx, x, t, TG_REDUCE_SUM);
        /* x = 0: log 2 for any t; x = 2, t = 1: -log sigmoid(2) = log1p(exp(-2)) */
        TEST_CLOSE(tg_tensor_get(y, 0), log(2.0) + log1p(exp(-2.0)), 0, tol);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        TEST_CLOSE(tg_tensor_grad_get(x, 0), 0.5 - 0.3, tol, tol);
        TEST_CLOSE(tg_tensor_grad_get(x, 1), 1 / (1 + exp(-2.0)) - 1, tol, tol);
        TEST_CHECK(tg_tensor_grad_get(t, 0) == 0.0 && tg_tensor_grad_get(t, 1) == -2.0);
        y = tg_bce_with_logits(ctx, x, t, TG_REDUCE_NONE);
        TEST_CHECK(y && y->ndim == 1 && y->shape[0] == 2);
        TEST_CLOSE(tg_tensor_get(y, 0), log(2.0), 0, tol);
        tg_ctx_free(ctx);
    }
}

/* ---- stability ------------------------------------------------------------- */

static void test_stability(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        tg_ctx *ctx = tg_ctx_new(NULL);
        /* CE: row 0 picks a logit 2e4 below the max -> exactly 2e4; row 1
         * ties two maxima and picks a third logit -> 2e4 + log 2. */
        const int64_t sh[2] = {2, 3}, sl[1] = {2};
        const double xv[6] = {1e4, -1e4, 0, -1e4, 1e4, 1e4};
        const int32_t lab[2] = {1, 0};
        tg_tensor *x = mk(ctx, dt, 2, sh, xv, 1);
        tg_tensor *y = tg_cross_entropy(ctx, x, mk_labels(ctx, 1, sl, lab), TG_REDUCE_NONE);
        TEST_CHECK(y && isfinite(tg_tensor_get(y, 0)) && isfinite(tg_tensor_get(y, 1)));
        TEST_CHECK(tg_tensor_get(y, 0) == 2e4);
        TEST_CLOSE(tg_tensor_get(y, 1), 2e4 + log(2.0), 0, f ? 1e-7 : 1e-16);
        const double seed[2] = {1, 1};
        TEST_CHECK(tg_backward_seed(ctx, y, mk(ctx, dt, 1, sl, seed, 0)) == TG_OK);
        const double gx[6] = {1, -1, 0, -1, 0.5, 0.5};     /* softmax - onehot, exact */
        for (int i = 0; i < 6; i++)
            TEST_CHECK_MSG(tg_tensor_grad_get(x, i) == gx[i], "%s dx[%d] = %.17g, expected %g",
                           tg_dtype_name(dt), i, tg_tensor_grad_get(x, i), gx[i]);

        /* BCE: |x| = 1e4 on the wrong side of the target: loss 1e4 each,
         * dx = sigmoid(x) - t = +-1, dt = -x; and on the right side: 0. */
        const int64_t sb[1] = {4};
        const double bx[4] = {1e4, -1e4, 1e4, -1e4}, bt[4] = {0, 1, 1, 0};
        tg_tensor *l = mk(ctx, dt, 1, sb, bx, 1), *t = mk(ctx, dt, 1, sb, bt, 1);
        y = tg_bce_with_logits(ctx, l, t, TG_REDUCE_SUM);
        TEST_CHECK(y && tg_tensor_get(y, 0) == 2e4);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        const double gl[4] = {1, -1, 0, 0}, gt[4] = {-1e4, 1e4, -1e4, 1e4};
        for (int i = 0; i < 4; i++) {
            TEST_CHECK(tg_tensor_grad_get(l, i) == gl[i]);
            TEST_CHECK(tg_tensor_grad_get(t, i) == gt[i]);
        }
        y = tg_bce_with_logits(ctx, l, t, TG_REDUCE_NONE);
        TEST_CHECK(y && tg_tensor_get(y, 2) == 0.0 && tg_tensor_get(y, 3) == 0.0);
        tg_ctx_free(ctx);
    }
}

/* Empty inputs: MEAN over nothing is NaN (as PyTorch), SUM is 0, NONE empty. */
static void test_empty(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *e = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(0, 3));
    tg_tensor *y = tg_mse_loss(ctx, e, e, TG_REDUCE_MEAN);
    TEST_CHECK(y && isnan(tg_tensor_get(y, 0)));
    y = tg_bce_with_logits(ctx, e, e, TG_REDUCE_SUM);
    TEST_CHECK(y && tg_tensor_get(y, 0) == 0.0);
    y = tg_cross_entropy(ctx, e, tg_tensor_zeros(ctx, TG_I32, TG_DIMS(0)), TG_REDUCE_NONE);
    TEST_CHECK(y && y->ndim == 1 && y->numel == 0);
    y = tg_cross_entropy(ctx, e, tg_tensor_zeros(ctx, TG_I32, TG_DIMS(0)), TG_REDUCE_MEAN);
    TEST_CHECK(y && isnan(tg_tensor_get(y, 0)));
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* ---- aliased inputs ------------------------------------------------------- */

static void test_aliased(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    const int64_t sh[1] = {3};
    const double xv[3] = {-1.5, 0.25, 2};
    tg_tensor *x = mk(ctx, TG_F64, 1, sh, xv, 1);
    /* mse/l1/huber(x, x) are identically 0: so is their gradient */
    tg_tensor *y = tg_mse_loss(ctx, x, x, TG_REDUCE_SUM);
    TEST_CHECK(y && tg_tensor_get(y, 0) == 0.0 && tg_backward(ctx, y) == TG_OK);
    TEST_CHECK(tg_backward(ctx, tg_l1_loss(ctx, x, x, TG_REDUCE_MEAN)) == TG_OK);
    TEST_CHECK(tg_backward(ctx, tg_huber_loss(ctx, x, x, 1.0, TG_REDUCE_MEAN)) == TG_OK);
    for (int i = 0; i < 3; i++)
        TEST_CHECK(tg_tensor_grad_get(x, i) == 0.0);
    /* bce(x, x) = softplus(x) - x^2: d/dx = sigmoid(x) - 2x */
    y = tg_bce_with_logits(ctx, x, x, TG_REDUCE_SUM);
    TEST_CHECK(tg_backward(ctx, y) == TG_OK);
    for (int i = 0; i < 3; i++)
        TEST_CLOSE(tg_tensor_grad_get(x, i), 1 / (1 + exp(-xv[i])) - 2 * xv[i], 1e-15, 1e-14);
    tg_ctx_free(ctx);
}

/* ---- numeric gradient check of every sample variant ----------------------
 * For L = sum_k w_k y_k with random w: the VJP of w, added to gradients that
 * start at 0.25 (it must accumulate), against central differences in f64.
 * Fresh arena memory is poisoned with NaN, so a VJP or forward that reads
 * memory it never wrote shows up as NaN. The f32 forward on the same inputs
 * must agree with f64 to single precision. */
static double weighted(const tg_node *n, const double *w)
{
    double s = 0;
    for (int64_t k = 0; k < n->out->numel; k++)
        s += w[k] * tg_tensor_get(n->out, k);
    return s;
}

static int rerun(tg_node *base, tg_node *tmp)
{
    *tmp = *base;
    tmp->out = NULL;
    tmp->saved = NULL;
    return tg_node_run(tmp) == TG_OK;
}

static void gradcheck_op(const char *name)
{
    const tg_op_def *def = tg_op_find(name);
    TEST_CHECK_MSG(def != NULL, "%s is not registered", name);
    if (!def)
        return;
    TEST_CHECK(def->n_samples >= 2 && def->n_samples <= 4 && def->backward && def->cost);
    tg_ctx_opts opts = { .seed = 42 };
    tg_ctx *ctx = tg_ctx_new(&opts);
    tg_ctx_set_poison(ctx, 1);
    for (int v = 0; v < def->n_samples; v++) {
        tg_node n;
        memset(&n, 0, sizeof n);
        n.def = def;
        n.ctx = ctx;
        TEST_CHECK(def->sample(&n, TG_F64, v) == TG_OK);
        TEST_CHECK_MSG(tg_node_run(&n) == TG_OK, "%s variant %d: %s", name, v, tg_ctx_error(ctx));
        if (tg_ctx_status(ctx) != TG_OK)
            break;
        int64_t m = n.out->numel;
        double *w = malloc(sizeof(double) * (size_t)m);
        for (int64_t k = 0; k < m; k++)
            w[k] = tg_rng_uniform(tg_ctx_rng(ctx)) * 2 - 1;
        n.out->grad = tg_ctx_alloc(ctx, sizeof(double) * (size_t)m, "test");
        memcpy(n.out->grad, w, sizeof(double) * (size_t)m);
        for (int i = 0; i < n.n_in; i++) {
            tg_tensor *x = n.in[i];
            int diff = !(def->nondiff & (1u << i));
            TEST_CHECK(diff == tg_dtype_is_float(x->dtype));
            if (!diff)
                continue;
            x->grad = tg_ctx_alloc(ctx, sizeof(double) * (size_t)x->numel, "test");
            for (int64_t k = 0; k < x->numel; k++)
                ((double *)x->grad)[k] = 0.25;
        }
        def->backward(&n);
        TEST_CHECK(tg_ctx_status(ctx) == TG_OK);

        for (int i = 0; i < n.n_in; i++) {
            tg_tensor *x = n.in[i];
            if (!x->grad)
                continue;
            for (int64_t k = 0; k < x->numel; k++) {
                double *px = (double *)x->data + k, x0 = *px, h = 1e-6;
                size_t mark = tg_ctx_arena_mark(ctx);
                tg_node tmp;
                *px = x0 + h;
                int ok = rerun(&n, &tmp);
                double fp = weighted(&tmp, w);
                *px = x0 - h;
                ok = ok && rerun(&n, &tmp);
                double fm = weighted(&tmp, w);
                *px = x0;
                tg_ctx_arena_rewind(ctx, mark);
                double num = (fp - fm) / (2 * h), ana = ((double *)x->grad)[k] - 0.25;
                TEST_CHECK_MSG(ok && fabs(num - ana) <= 1e-7 + 1e-6 * fabs(num),
                               "%s variant %d input %d [%lld]: VJP %.12g, numeric %.12g",
                               name, v, i, (long long)k, ana, num);
            }
        }

        /* f32 on the same inputs agrees with f64 */
        tg_node n32 = n;
        n32.out = NULL;
        n32.saved = NULL;
        for (int i = 0; i < n.n_in; i++)
            if (tg_dtype_is_float(n.in[i]->dtype))
                n32.in[i] = tg_tensor_cast(ctx, n.in[i], TG_F32);
        TEST_CHECK(tg_node_run(&n32) == TG_OK && n32.out->dtype == TG_F32);
        for (int64_t k = 0; k < m && n32.out; k++) {
            double a = tg_tensor_get(n32.out, k), b = tg_tensor_get(n.out, k);
            TEST_CHECK_MSG(fabs(a - b) <= 1e-5 + 1e-5 * fabs(b), "%s variant %d f32 y[%lld] = %.9g, f64 %.9g",
                           name, v, (long long)k, a, b);
        }

        tg_op_cost c;
        memset(&c, 0, sizeof c);
        def->cost(&n, &c);
        TEST_CHECK(c.fwd_flops > 0 && c.fwd_bytes > 0 && c.bwd_flops > 0 && c.bwd_bytes > 0);
        free(w);
    }
    /* variants out of range are refused */
    tg_node bad;
    memset(&bad, 0, sizeof bad);
    bad.def = def;
    bad.ctx = ctx;
    TEST_CHECK(def->sample(&bad, TG_F64, def->n_samples) == TG_ERR_ARG);
    TEST_CHECK(def->sample(&bad, TG_F64, -1) == TG_ERR_ARG);
    tg_ctx_free(ctx);
}

static void test_gradcheck(void)
{
    gradcheck_op("mse");
    gradcheck_op("l1");
    gradcheck_op("huber");
    gradcheck_op("cross_entropy");
    gradcheck_op("bce_with_logits");
}

/* ---- errors --------------------------------------------------------------- */

/* `y` must be NULL with status `s` and a message containing `msg`; clears. */
static void expect_error(tg_ctx *ctx, const tg_tensor *y, tg_status s, const char *msg)
{
    TEST_CHECK(y == NULL);
    TEST_CHECK_MSG(tg_ctx_status(ctx) == s, "status %d, expected %d (%s)", (int)tg_ctx_status(ctx),
                   (int)s, tg_ctx_error(ctx));
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), msg) != NULL, "message \"%s\" lacks \"%s\"",
                   tg_ctx_error(ctx), msg);
    tg_ctx_clear_error(ctx);
}

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *a = tg_tensor_rand(ctx, TG_F64, TG_DIMS(2, 3), -1, 1);
    tg_tensor *b = tg_tensor_rand(ctx, TG_F64, TG_DIMS(3, 2), -1, 1);
    tg_tensor *a32 = tg_tensor_rand(ctx, TG_F32, TG_DIMS(2, 3), -1, 1);
    tg_tensor *ai = tg_tensor_zeros(ctx, TG_I32, TG_DIMS(2, 3));
    tg_tensor_requires_grad(a);

    expect_error(ctx, tg_mse_loss(ctx, a, b, TG_REDUCE_MEAN), TG_ERR_SHAPE,
                 "mse: pred shape 2x3 differs from target shape 3x2");
    expect_error(ctx, tg_l1_loss(ctx, a, b, TG_REDUCE_SUM), TG_ERR_SHAPE,
                 "l1: pred shape 2x3 differs from target shape 3x2");
    expect_error(ctx, tg_huber_loss(ctx, a, b, 1.0, TG_REDUCE_NONE), TG_ERR_SHAPE,
                 "huber: pred shape 2x3 differs from target shape 3x2");
    expect_error(ctx, tg_bce_with_logits(ctx, a, tg_tensor_rand(ctx, TG_F64, TG_DIMS(6), 0, 1), TG_REDUCE_MEAN),
                 TG_ERR_SHAPE, "bce_with_logits: logits shape 2x3 differs from targets shape 6");
    expect_error(ctx, tg_mse_loss(ctx, a, a32, TG_REDUCE_MEAN), TG_ERR_ARG, "mse: mixed dtypes (f64 and f32)");
    expect_error(ctx, tg_l1_loss(ctx, a, ai, TG_REDUCE_MEAN), TG_ERR_ARG, "l1: input 1 is i32");
    expect_error(ctx, tg_bce_with_logits(ctx, ai, a, TG_REDUCE_MEAN), TG_ERR_ARG,
                 "bce_with_logits: input 0 is i32");
    expect_error(ctx, tg_mse_loss(ctx, a, a, (tg_reduction)7), TG_ERR_ARG,
                 "mse: reduction 7 is not MEAN (0), SUM (1) or NONE (2)");
    expect_error(ctx, tg_huber_loss(ctx, a, a, 0.0, TG_REDUCE_MEAN), TG_ERR_ARG,
                 "huber: delta must be finite and > 0, got 0");
    expect_error(ctx, tg_huber_loss(ctx, a, a, -1.5, TG_REDUCE_MEAN), TG_ERR_ARG,
                 "huber: delta must be finite and > 0, got -1.5");
    expect_error(ctx, tg_huber_loss(ctx, a, a, NAN, TG_REDUCE_MEAN), TG_ERR_ARG, "huber: delta must be");
    expect_error(ctx, tg_mse_loss(ctx, NULL, a, TG_REDUCE_MEAN), TG_ERR_ARG, "mse: input 0 is NULL");

    /* cross_entropy */
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(4, 10), -1, 1);
    tg_tensor_requires_grad(x);
    const int32_t bad_hi[4] = {0, 9, 2, 12}, bad_lo[4] = {3, -1, 0, 0}, good[4] = {0, 9, 2, 5};
    const int32_t bad_c[4] = {10, 0, 0, 0};
    const int64_t s4[1] = {4}, s3[1] = {3};
    size_t taped = tg_tape_size(ctx);
    expect_error(ctx, tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, bad_hi), TG_REDUCE_MEAN), TG_ERR_ARG,
                 "cross_entropy: label 12 at row 3 outside [0, 10)");
    expect_error(ctx, tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, bad_lo), TG_REDUCE_NONE), TG_ERR_ARG,
                 "cross_entropy: label -1 at row 1 outside [0, 10)");
    expect_error(ctx, tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, bad_c), TG_REDUCE_SUM), TG_ERR_ARG,
                 "cross_entropy: label 10 at row 0 outside [0, 10)");
    TEST_CHECK(tg_tape_size(ctx) == taped);             /* nothing recorded */
    expect_error(ctx, tg_cross_entropy(ctx, x, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(4)), TG_REDUCE_MEAN),
                 TG_ERR_ARG, "cross_entropy: labels are f32, expected i32 class indices");
    expect_error(ctx, tg_cross_entropy(ctx, x, tg_tensor_zeros(ctx, TG_F64, TG_DIMS(4)), TG_REDUCE_MEAN),
                 TG_ERR_ARG, "cross_entropy: labels are f64, expected i32");
    expect_error(ctx, tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s3, good), TG_REDUCE_MEAN), TG_ERR_SHAPE,
                 "cross_entropy: labels shape 3 does not fit logits 4x10");
    expect_error(ctx, tg_cross_entropy(ctx, x, tg_tensor_zeros(ctx, TG_I32, TG_DIMS(4, 1)), TG_REDUCE_MEAN),
                 TG_ERR_SHAPE, "labels shape 4x1 does not fit logits 4x10");
    expect_error(ctx, tg_cross_entropy(ctx, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(10)),
                                       mk_labels(ctx, 1, s4, good), TG_REDUCE_MEAN),
                 TG_ERR_SHAPE, "labels shape 4 does not fit logits 10 (expected a single label)");
    expect_error(ctx, tg_cross_entropy(ctx, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 3, 4)),
                                       mk_labels(ctx, 1, s4, good), TG_REDUCE_MEAN),
                 TG_ERR_SHAPE, "cross_entropy: logits must be (N, C) or (C), got 2x3x4");
    expect_error(ctx, tg_cross_entropy(ctx, tg_tensor_zeros(ctx, TG_I32, TG_DIMS(4, 10)),
                                       mk_labels(ctx, 1, s4, good), TG_REDUCE_MEAN),
                 TG_ERR_ARG, "cross_entropy: input 0 is i32");
    expect_error(ctx, tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, good), (tg_reduction)-1), TG_ERR_ARG,
                 "cross_entropy: reduction -1 is not");

    /* the error is sticky: the next call returns NULL at once */
    TEST_CHECK(tg_mse_loss(ctx, a, b, TG_REDUCE_MEAN) == NULL);
    TEST_CHECK(tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, good), TG_REDUCE_MEAN) == NULL);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "mse: pred shape") != NULL);
    tg_ctx_clear_error(ctx);
    /* and after clearing, valid input works */
    tg_tensor *y = tg_cross_entropy(ctx, x, mk_labels(ctx, 1, s4, good), TG_REDUCE_MEAN);
    TEST_CHECK(y != NULL && isfinite(tg_tensor_get(y, 0)));
    TEST_CHECK(tg_tape_size(ctx) == taped + 1);
    tg_ctx_free(ctx);
}

int main(void)
{
    test_reference();
    test_mse_hand();
    test_l1_huber_hand();
    test_ce_hand();
    test_bce_hand();
    test_stability();
    test_empty();
    test_aliased();
    test_gradcheck();
    test_errors();
    return test_report("test_loss");
}
