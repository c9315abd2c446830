/* test_matmul.c — the matmul op: forward and both VJPs against PyTorch
 * float64 references (copied from /work/shared/reference/ops.json; every
 * transpose case is checked by feeding transposed copies of the same data),
 * central-difference gradients for every rank combination and transpose
 * case, the same tensor as both inputs, accumulation into existing
 * gradients, the sample variants, and the error messages. */
#include "tapegrad.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ---- PyTorch 1.13 float64 references ------------------------------------ */
/* case 0: [5, 4] · [4, 3] */
static const double ref0_a[20] = {
    -0.98076948874518077, -0.72101036797522466, 1.2924419443905721, -1.5296526773795578,
    -1.2620051852524541, 0.29257279729929131, 1.850963583761319, -1.077145489340972,
    -1.0617131029514484, 0.79420709243904986, 0.21310478283014733, 0.80447959786119805,
    1.8527606165741917, 0.55831008744948152, -1.5333028678900869, 1.4608843801060649,
    1.1172639973021599, -0.16739809048631571, 1.0689122371144535, -1.7897717218949483,
};

static const double ref0_b[12] = {
    -1.4973739235399863, -0.7820982034696331, -0.65936978935182289, -1.9013131549530198,
    0.43372514078413849, 0.91584928782026687, 0.89664889153366012, 1.5905156712913819,
    0.91618165549835151, 0.016867969994118326, 1.0712793893247747, -1.1809458923173168,
};

static const double ref0_c[15] = {
    3.9725096562854438, 0.87130151249388899, 2.9769015854463041, 2.9749163353379831,
    2.9039709907804547, 4.067950102705912, 0.28439522705164522, 2.3756004024378661,
    0.67263136121794798, -5.1859899106212541, -2.0806145420228095, -3.8403358492170967,
    -0.42643662686046163, -1.1636388183511963, 2.2029397976336309,
};

static const double ref0_dc[15] = {
    0.31940767241728274, -1.8144269017349881, -1.4949924100086998, 0.10080243522908905,
    0.68674168125836532, 1.871248928925628, 1.5929510870923558, -1.705157230941575,
    -1.1568963495113711, 0.31198605629868981, -1.322197943779345, -0.59347705725417033,
    1.9064143465602195, 0.21651278149988817, 0.96751415734728763,
};

static const double ref0_da[20] = {
    1.9265401309876757, -2.7634443067606127, -3.969162507361105, -0.17286523858553535,
    -1.9218833851917647, 1.8199821351247274, 2.8970617395350766, -1.4724511947427901,
    -0.28882051005490134, -4.827811114916492, -2.3436886840550208, -0.43359795413428964,
    0.95824969347815447, -1.7101892225367068, -2.366967391391527, -0.71031654139329836,
    -3.6618989935660582, -2.6446864873059672, 2.9401700050540773, -0.87847884953778643,
};

static const double ref0_db[12] = {
    0.57626805433268735, 0.51543641496198722, 0.31440691983622376, 0.91938369938834597,
    -0.61954569955159389, 0.21326202504758793, 2.4982835146139002, 0.82147830998843163,
    3.229050377318091, -2.271935970984321, -1.6551287168323772, -3.2581185528635608,
};

/* case 1: [2, 5, 4] · [2, 4, 3] — batched */
static const double ref1_a[40] = {
    1.2739237740602287, 1.8022752312028438, -0.16044658672219425, -0.71394945892075956,
    -0.47319781775211389, -0.46500547730408037, 1.6238988979915763, 1.0363488719612479,
    0.21779872245385512, 0.015028593343572094, 0.88552296720550228, 0.1506072352468073,
    -0.35204943874863837, 1.919808357844158, -0.2989819800662934, -0.23111352626795645,
    0.25016923382089962, 1.1144734066417188, 0.45009519063452252, 0.79257389060894612,
    0.17431341604608397, -0.82748328727392106, -0.94756928204145385, 1.3039533808461101,
    -1.088792215237699, -1.421442353687937, -0.49445664403656941, 0.50971194863439395,
    -0.95347402288040373, 1.7635448407696952, -1.6392865166598676, 0.32515953329887726,
    -1.5299247358642272, -0.61575854352406889, -0.41101563583697409, -0.10355124686750461,
    -0.412717257644029, -0.70416104028951265, -1.7987782872264484, 0.32689335417338805,
};

static const double ref1_b[24] = {
    0.73466234412205011, 1.3789004511725333, -0.040299425123432986, 0.54540739467448596,
    -1.9495484619643677, 1.0389662981494951, -0.88656339779538085, 0.51122262280949293,
    0.92892439688869821, -0.88271941412948829, 0.35215866507599936, 0.92713642658964357,
    -0.43233649939721008, -0.55407835528139548, 0.47987314573858786, -1.0284702506653973,
    0.25448679996768542, 0.57626186662728651, 1.6270096383765922, -0.10125567920734069,
    -1.2919179865538588, -0.33980916329641842, 1.4030815555116622, 0.92509311108226155,
};

static const double ref1_c[30] = {
    2.6913411836062942, -2.0904562514871312, 1.0101935305504757, -2.9557526376799661,
    1.4491911178025183, 2.0052606749266197, -0.7498109551664045, 0.77676080238611744,
    0.96905438083278905, 1.2575150854399733, -4.4624355441407477, 1.5167981483081283,
    -0.30702632901642185, -1.3185508392723699, 2.3007471616281583, -1.2091197704411825,
    1.6183328444899936, 2.0372613523435623, 0.95494527231616289, 1.0067718610168446,
    -0.23127672510119818, -4.1791589347423272, 1.5993106149583762, 2.9773436433288389,
    0.66119290977840772, 0.58732258289925077, -0.65380401585377346, -2.1350695517627911,
    0.69027256258301006, 2.0224477288850768,
};

static const double ref1_dc[30] = {
    0.49648609200189808, -1.1565052905961237, 0.40507918977715951, -0.37133079239269007,
    0.027643662374325029, 0.86855234879358534, 0.36180385934329928, -0.86215283191724579,
    -1.8294257194064119, 1.5245127393315601, -1.3291966899392533, -0.21743371983161364,
    0.93776367888311762, 1.1601799455669388, -1.2446456953650471, -1.2468388764821858,
    -0.82281491649660499, -0.5485435240093155, 0.54139043601575754, -0.13994509331873095,
    -0.60970231253753848, -1.5188953370761653, 1.1892555221459808, 0.32813874064007509,
    -0.86699720501417188, -1.1233199158310256, -0.46948635826756169, 0.81851346318049067,
    1.5159195163431716, -1.9436896276033351,
};

static const double ref1_da[40] = {
    -1.2462804892897921, 2.9463139227263717, -0.65511012257904766, -0.46996759904919255,
    -0.26968705220988298, 0.6459773990688833, 1.1501598213621205, 1.1427823757151945,
    -0.84929445269471371, -0.02257243968106315, -2.460912273922518, -2.3191131053304233,
    -0.7040653588213589, 3.196907576839763, -2.2330720992824213, -2.0153958460729164,
    2.3388708189499328, -3.0435087141830541, -1.3944584706830987, -1.5731711467077523,
    0.73172658436321547, 0.75683644169817899, -1.2366309412320895, -1.2382429927432019,
    -0.44910206545991826, -0.943766329116693, 1.6827030770089944, -0.94435521943846834,
    0.15519811897194394, 2.0538823434260332, -3.0156045698722003, 2.4883159299854425,
    0.7719478923982741, 0.33526365687600457, -0.69033241727148864, -1.7158144558056456,
    -2.12653589367281, -1.5761094528743, 3.6893214236635909, 0.050726453373155955,
};

static const double ref1_db[24] = {
    0.5848945418641337, -0.91597201382207549, -0.52822829128556648, 5.0447978221165481,
    -3.3689654570349186, -1.5058667050777932, -0.39599645192610422, 0.3865889773903412,
    -0.76975114006819845, -0.2938924531929471, 1.9512120177833663, -0.60082937862444874,
    1.6300506494272877, -0.032032017710721172, 1.7758219163622213, -2.4589613543169744,
    2.6013372868524063, 3.5570154180992084, 2.2877019293064418, -3.3657606831750373,
    3.9725738727078861, -1.486404640154217, -0.14568101456984822, -1.5061136207731709,
};

/* ---- helpers -------------------------------------------------------------- */

/* The last two dims of a (nb, r, c) array, swapped: out is (nb, c, r). */
static void transpose_last2(const double *in, int64_t nb, int64_t r, int64_t c, double *out)
{
    for (int64_t b = 0; b < nb; b++)
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < c; j++)
                out[b * r * c + j * r + i] = in[b * r * c + i * c + j];
}

static tg_tensor *make(tg_ctx *ctx, tg_dtype dt, int nb, int64_t r, int64_t c, const double *v)
{
    int64_t shape[3] = { nb, r, c };
    tg_tensor *t = nb ? tg_tensor_new(ctx, dt, 3, shape) : tg_tensor_new(ctx, dt, 2, shape + 1);
    for (int64_t i = 0; t && i < t->numel; i++)
        tg_tensor_set(t, i, v[i]);
    return t;
}

static double max_err(const tg_tensor *t, int grad, const double *want, int64_t n)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        double got = grad ? tg_tensor_grad_get(t, i) : tg_tensor_get(t, i);
        double d = fabs(got - want[i]) / (1 + fabs(want[i]));
        if (!(d <= e))
            e = d;
    }
    return e;
}

/* One reference case, with A (nb, M, K) and B (nb, K, N) (nb = 0: 2-D),
 * fed as stored or transposed according to ta, tb. */
static void check_reference(tg_dtype dt, int nb, int64_t M, int64_t K, int64_t N, int ta, int tb,
                            const double *ra, const double *rb, const double *rc,
                            const double *rdc, const double *rda, const double *rdb)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_poison(ctx, 1);   /* fresh arena memory is NaN: unwritten reads show */
    int64_t bn = nb ? nb : 1;
    double *at = malloc(sizeof(double) * (size_t)(bn * M * K)), *bt = malloc(sizeof(double) * (size_t)(bn * K * N));
    double *dat = malloc(sizeof(double) * (size_t)(bn * M * K)), *dbt = malloc(sizeof(double) * (size_t)(bn * K * N));
    transpose_last2(ra, bn, M, K, at);
    transpose_last2(rb, bn, K, N, bt);
    transpose_last2(rda, bn, M, K, dat);
    transpose_last2(rdb, bn, K, N, dbt);
    tg_tensor *a = ta ? make(ctx, dt, nb, K, M, at) : make(ctx, dt, nb, M, K, ra);
    tg_tensor *b = tb ? make(ctx, dt, nb, N, K, bt) : make(ctx, dt, nb, K, N, rb);
    tg_tensor_requires_grad(a);
    tg_tensor_requires_grad(b);
    tg_tensor *c = tg_matmul_t(ctx, a, b, ta, tb);
    TEST_CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "  %s\n", tg_ctx_error(ctx));
    } else {
        double tol = dt == TG_F64 ? 1e-13 : 2e-6;
        TEST_CHECK(c->ndim == (nb ? 3 : 2) && c->shape[c->ndim - 2] == M && c->shape[c->ndim - 1] == N);
        TEST_CHECK_MSG(max_err(c, 0, rc, bn * M * N) < tol, "forward %s nb=%d ta=%d tb=%d",
                       tg_dtype_name(dt), nb, ta, tb);
        tg_tensor *seed = make(ctx, dt, nb, M, N, rdc);
        TEST_CHECK(tg_backward_seed(ctx, c, seed) == TG_OK);
        TEST_CHECK_MSG(max_err(a, 1, ta ? dat : rda, bn * M * K) < tol, "dA %s nb=%d ta=%d tb=%d",
                       tg_dtype_name(dt), nb, ta, tb);
        TEST_CHECK_MSG(max_err(b, 1, tb ? dbt : rdb, bn * K * N) < tol, "dB %s nb=%d ta=%d tb=%d",
                       tg_dtype_name(dt), nb, ta, tb);
    }
    free(at); free(bt); free(dat); free(dbt);
    tg_ctx_free(ctx);
}

static void test_reference(void)
{
    for (int d = 0; d < 2; d++)
        for (int t = 0; t < 4; t++) {
            tg_dtype dt = d ? TG_F32 : TG_F64;
            check_reference(dt, 0, 5, 4, 3, t & 1, t >> 1, ref0_a, ref0_b, ref0_c, ref0_dc, ref0_da, ref0_db);
            check_reference(dt, 2, 5, 4, 3, t & 1, t >> 1, ref1_a, ref1_b, ref1_c, ref1_dc, ref1_da, ref1_db);
        }
}

/* Existing gradients are added to, not overwritten. */
static void test_accumulates(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *a = make(ctx, TG_F64, 0, 5, 4, ref0_a), *b = make(ctx, TG_F64, 0, 4, 3, ref0_b);
    tg_tensor_requires_grad(a);
    tg_tensor_requires_grad(b);
    for (int64_t i = 0; i < a->numel; i++)
        ((double *)a->grad)[i] = 1.0;
    for (int64_t i = 0; i < b->numel; i++)
        ((double *)b->grad)[i] = -2.0;
    tg_tensor *c = tg_matmul(ctx, a, b);
    TEST_CHECK(tg_backward_seed(ctx, c, make(ctx, TG_F64, 0, 5, 3, ref0_dc)) == TG_OK);
    for (int64_t i = 0; i < a->numel; i++)
        TEST_CLOSE(tg_tensor_grad_get(a, i), 1.0 + ref0_da[i], 1e-13, 1e-13);
    for (int64_t i = 0; i < b->numel; i++)
        TEST_CLOSE(tg_tensor_grad_get(b, i), -2.0 + ref0_db[i], 1e-13, 1e-13);
    tg_ctx_free(ctx);
}

/* ---- central differences ------------------------------------------------- */

/* f = sum(seed ⊙ op(a)·op(b)), recomputed without recording. */
static double objective(tg_ctx *ctx, tg_tensor *a, tg_tensor *b, int ta, int tb, const tg_tensor *seed)
{
    double f = 0;
    size_t mark = tg_ctx_arena_mark(ctx);
    TG_NO_GRAD(ctx) {
        tg_tensor *c = tg_matmul_t(ctx, a, b, ta, tb);
        for (int64_t i = 0; c && i < c->numel; i++)
            f += tg_tensor_get(seed, i) * tg_tensor_get(c, i);
    }
    tg_ctx_arena_rewind(ctx, mark);
    return f;
}

/* Compare every gradient element of a and b (which may be the same tensor)
 * with central differences; the product is bilinear, so the differences are
 * exact up to rounding. Returns the worst absolute error. */
static double numgrad_err(tg_ctx *ctx, tg_tensor *a, tg_tensor *b, int ta, int tb)
{
    tg_tensor_requires_grad(a);
    if (b != a)
        tg_tensor_requires_grad(b);
    tg_tensor *c = tg_matmul_t(ctx, a, b, ta, tb);
    if (!c) {
        fprintf(stderr, "  %s\n", tg_ctx_error(ctx));
        return INFINITY;
    }
    tg_tensor *seed = tg_tensor_rand(ctx, TG_F64, c->ndim, c->shape, -1, 1);
    if (tg_backward_seed(ctx, c, seed) != TG_OK)
        return INFINITY;
    double worst = 0, h = 1e-4;
    tg_tensor *ts[2] = { a, b };
    for (int k = 0; k < (b == a ? 1 : 2); k++) {
        tg_tensor *t = ts[k];
        for (int64_t i = 0; i < t->numel; i++) {
            double x = tg_tensor_get(t, i);
            tg_tensor_set(t, i, x + h);
            double fp = objective(ctx, a, b, ta, tb, seed);
            tg_tensor_set(t, i, x - h);
            double fm = objective(ctx, a, b, ta, tb, seed);
            tg_tensor_set(t, i, x);
            double e = fabs((fp - fm) / (2 * h) - tg_tensor_grad_get(t, i));
            if (!(e <= worst))
                worst = e;
        }
    }
    return worst;
}

static void test_numeric_all_cases(void)
{
    static const int64_t dims[][4] = { {3, 4, 2, 2}, {1, 5, 1, 3}, {2, 1, 3, 2} };   /* M K N nb */
    for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++)
        for (int ranks = 0; ranks < 4; ranks++)      /* bit 0: A is 3-D, bit 1: B is 3-D */
            for (int t = 0; t < 4; t++) {
                int ta = t & 1, tb = t >> 1;
                int64_t M = dims[s][0], K = dims[s][1], N = dims[s][2], nb = dims[s][3];
                tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 100 + (uint64_t)(s * 16 + (size_t)ranks * 4 + (size_t)t) });
                tg_ctx_set_poison(ctx, 1);
                int64_t sa[3] = { nb, ta ? K : M, ta ? M : K }, sb[3] = { nb, tb ? N : K, tb ? K : N };
                tg_tensor *a = ranks & 1 ? tg_tensor_rand(ctx, TG_F64, 3, sa, -1, 1)
                                         : tg_tensor_rand(ctx, TG_F64, 2, sa + 1, -1, 1);
                tg_tensor *b = ranks & 2 ? tg_tensor_rand(ctx, TG_F64, 3, sb, -1, 1)
                                         : tg_tensor_rand(ctx, TG_F64, 2, sb + 1, -1, 1);
                double e = numgrad_err(ctx, a, b, ta, tb);
                TEST_CHECK_MSG(e < 1e-9, "M=%lld K=%lld N=%lld nb=%lld ranks=%d ta=%d tb=%d: err %g",
                               (long long)M, (long long)K, (long long)N, (long long)nb, ranks, ta, tb, e);
                tg_ctx_free(ctx);
            }
}

/* The same tensor as both inputs: x·xᵀ, xᵀ·x, batched x·xᵀ. */
static void test_same_tensor(void)
{
    for (int v = 0; v < 3; v++) {
        tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 5 });
        tg_tensor *x = v < 2 ? tg_tensor_rand(ctx, TG_F64, TG_DIMS(3, 4), -1, 1)
                             : tg_tensor_rand(ctx, TG_F64, TG_DIMS(2, 3, 4), -1, 1);
        double e = numgrad_err(ctx, x, x, v == 1, v != 1);
        TEST_CHECK_MSG(e < 1e-9, "variant %d: err %g", v, e);
        tg_ctx_free(ctx);
    }
    /* Hand-checked: x = [1 2], C = x·xᵀ = 5, dC = 1 -> dx = 2x. */
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_from(ctx, TG_F32, TG_DIMS(1, 2), (const float[]){1, 2});
    tg_tensor_requires_grad(x);
    tg_tensor *c = tg_matmul_t(ctx, x, x, 0, 1);
    TEST_CHECK(c && c->numel == 1 && tg_tensor_get(c, 0) == 5.0);
    TEST_CHECK(tg_backward(ctx, c) == TG_OK);
    TEST_CHECK(tg_tensor_grad_get(x, 0) == 2.0 && tg_tensor_grad_get(x, 1) == 4.0);
    tg_ctx_free(ctx);
}

/* Shapes large enough to take the blocked GEMM paths, f32 against a naive
 * double product: a dense layer (3-D · 2-D) and a batched NT product. */
static void test_larger_forward(void)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 9 });
    tg_ctx_set_poison(ctx, 1);
    for (int v = 0; v < 2; v++) {
        tg_tensor *a = tg_tensor_rand(ctx, TG_F32, TG_DIMS(3, 70, 130), -1, 1);
        tg_tensor *b = v ? tg_tensor_rand(ctx, TG_F32, TG_DIMS(3, 90, 130), -1, 1)
                         : tg_tensor_rand(ctx, TG_F32, TG_DIMS(130, 90), -1, 1);
        tg_tensor *c = tg_matmul_t(ctx, a, b, 0, v);
        TEST_CHECK(c && c->shape[0] == 3 && c->shape[1] == 70 && c->shape[2] == 90);
        double worst = 0;
        for (int64_t q = 0; c && q < 3; q++)
            for (int64_t i = 0; i < 70; i++)
                for (int64_t j = 0; j < 90; j++) {
                    double s = 0;
                    for (int64_t p = 0; p < 130; p++)
                        s += tg_tensor_get(a, (q * 70 + i) * 130 + p) *
                             (v ? tg_tensor_get(b, (q * 90 + j) * 130 + p) : tg_tensor_get(b, p * 90 + j));
                    double e = fabs(tg_tensor_get(c, (q * 70 + i) * 90 + j) - s);
                    if (!(e <= worst))
                        worst = e;
                }
        TEST_CHECK_MSG(worst < 1e-4, "variant %d: err %g", v, worst);
    }
    tg_ctx_free(ctx);
}

/* ---- descriptor: samples and cost ---------------------------------------- */

static void test_samples(void)
{
    const tg_op_def *def = tg_op_find("matmul");
    TEST_CHECK(def != NULL && def->n_samples >= 4 && def->backward && def->cost);
    for (int v = 0; def && v < def->n_samples; v++)
        for (int d = 0; d < 2; d++) {
            tg_ctx *ctx = tg_ctx_new(NULL);
            tg_node n;
            memset(&n, 0, sizeof n);
            n.def = def;
            n.ctx = ctx;
            TEST_CHECK(def->sample(&n, d ? TG_F32 : TG_F64, v) == TG_OK);
            TEST_CHECK(n.n_in == 2 && n.in[0]->numel <= 60 && n.in[1]->numel <= 60);
            TEST_CHECK_MSG(tg_node_run(&n) == TG_OK, "variant %d: %s", v, tg_ctx_error(ctx));
            tg_op_cost cost = {0};
            def->cost(&n, &cost);
            TEST_CHECK(cost.fwd_flops > 0 && cost.bwd_flops == 2 * cost.fwd_flops && cost.fwd_bytes > 0);
            tg_ctx_free(ctx);
        }
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_node n;
    memset(&n, 0, sizeof n);
    n.def = def;
    n.ctx = ctx;
    TEST_CHECK(def && def->sample(&n, TG_F64, def->n_samples) == TG_ERR_ARG);
    tg_ctx_free(ctx);
}

/* ---- errors ---------------------------------------------------------------- */

static void expect_error(tg_ctx *ctx, tg_tensor *c, tg_status s, const char *msg)
{
    TEST_CHECK(c == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == s);
    TEST_CHECK_MSG(strcmp(tg_ctx_error(ctx), msg) == 0, "got \"%s\", want \"%s\"", tg_ctx_error(ctx), msg);
    tg_ctx_clear_error(ctx);
}

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(32, 784));
    tg_tensor *w = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(128, 10));
    expect_error(ctx, tg_matmul(ctx, x, w), TG_ERR_SHAPE, "matmul: inner dims differ (32x784 · 128x10)");

    tg_tensor *a = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(3, 5));
    tg_tensor *b = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(5, 4));
    expect_error(ctx, tg_matmul_t(ctx, a, b, 0, 1), TG_ERR_SHAPE, "matmul: inner dims differ (3x5 · 5x4ᵀ)");
    expect_error(ctx, tg_matmul_t(ctx, a, b, 1, 0), TG_ERR_SHAPE, "matmul: inner dims differ (3x5ᵀ · 5x4)");
    TEST_CHECK(tg_matmul_t(ctx, a, a, 0, 1) != NULL);          /* 3x5 · 5x3 */

    tg_tensor *v = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(5));
    expect_error(ctx, tg_matmul(ctx, v, b), TG_ERR_SHAPE, "matmul: input 0 is 1-D (5), expected 2-D or 3-D");
    tg_tensor *h = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(1, 2, 3, 5));
    expect_error(ctx, tg_matmul(ctx, a, h), TG_ERR_SHAPE, "matmul: input 1 is 4-D (1x2x3x5), expected 2-D or 3-D");
    tg_tensor *s = tg_tensor_scalar(ctx, TG_F32, 1);
    expect_error(ctx, tg_matmul(ctx, s, s), TG_ERR_SHAPE, "matmul: input 0 is 0-D (scalar), expected 2-D or 3-D");

    tg_tensor *p = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 3, 4));
    tg_tensor *q = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(3, 4, 5));
    expect_error(ctx, tg_matmul(ctx, p, q), TG_ERR_SHAPE, "matmul: batch sizes differ (2x3x4 · 3x4x5)");

    tg_tensor *b64 = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(5, 4));
    expect_error(ctx, tg_matmul(ctx, a, b64), TG_ERR_ARG, "matmul: mixed dtypes (f32 and f64)");
    tg_tensor *ai = tg_tensor_zeros(ctx, TG_I32, TG_DIMS(3, 5));
    expect_error(ctx, tg_matmul(ctx, ai, b), TG_ERR_ARG, "matmul: input 0 is i32, expected f32 or f64");
    expect_error(ctx, tg_matmul(ctx, a, NULL), TG_ERR_ARG, "matmul: input 1 is NULL");

    /* Sticky: after a failure, even a valid product returns NULL. */
    TEST_CHECK(tg_matmul(ctx, x, w) == NULL);
    TEST_CHECK(tg_matmul(ctx, a, b) == NULL);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "inner dims differ") != NULL);
    tg_ctx_clear_error(ctx);
    tg_tensor *c = tg_matmul(ctx, a, b);
    TEST_CHECK(c && c->shape[0] == 3 && c->shape[1] == 4 && tg_tensor_get(c, 0) == 0.0);

    /* Empty dims are fine: K = 0 gives zeros; M = 0 an empty result. */
    tg_tensor *e0 = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(2, 0)), *e1 = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(0, 3));
    tg_tensor *z = tg_matmul(ctx, e0, e1);
    TEST_CHECK(z && z->numel == 6 && tg_tensor_get(z, 5) == 0.0);
    tg_tensor *e2 = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(0, 2)), *e3 = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(2, 3));
    z = tg_matmul(ctx, e2, e3);
    TEST_CHECK(z && z->numel == 0 && z->shape[0] == 0 && z->shape[1] == 3);
    tg_ctx_free(ctx);
}

/* ---- linear ------------------------------------------------------------------
 * tg_linear(x, w, b, relu) against the three ops it fuses: the same values
 * and the same gradients of x, w and b (compared with ==, which also
 * equates +0 and -0), for relu and none, 2-D and 3-D x, f32 and f64, one
 * and two threads; and its errors. */
static void linear_pair(tg_dtype dt, int relu, int threads, int three_d)
{
    const int64_t M = 150, K = 70, N = 530, B = 2;
    double *vals[2][4];
    int64_t counts[4];
    for (int fused = 0; fused < 2; fused++) {
        tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 4, .n_threads = threads });
        tg_tensor *x = three_d ? tg_tensor_rand(ctx, dt, TG_DIMS(B, M / B, K), -1, 1)
                               : tg_tensor_rand(ctx, dt, TG_DIMS(M, K), -1, 1);
        tg_tensor *w = tg_tensor_rand(ctx, dt, TG_DIMS(K, N), -1, 1);
        tg_tensor *b = tg_tensor_rand(ctx, dt, TG_DIMS(N), -1, 1);
        tg_tensor_requires_grad(x);
        tg_tensor_requires_grad(w);
        tg_tensor_requires_grad(b);
        tg_tensor *y = fused ? tg_linear(ctx, x, w, b, relu) : tg_add(ctx, tg_matmul(ctx, x, w), b);
        if (!fused && relu)
            y = tg_relu(ctx, y);
        tg_tensor *seed = y ? tg_tensor_rand(ctx, dt, y->ndim, y->shape, -1, 1) : NULL;
        TEST_CHECK(seed && tg_backward_seed(ctx, y, seed) == TG_OK);
        const tg_tensor *t[4] = { y, x, w, b };
        for (int k = 0; k < 4; k++) {
            counts[k] = t[k] ? t[k]->numel : 0;
            vals[fused][k] = malloc(sizeof(double) * (size_t)(counts[k] ? counts[k] : 1));
            for (int64_t i = 0; i < counts[k]; i++)
                vals[fused][k][i] = k ? tg_tensor_grad_get(t[k], i) : tg_tensor_get(t[k], i);
        }
        tg_ctx_free(ctx);
    }
    for (int k = 0; k < 4; k++) {
        int64_t bad = -1;
        for (int64_t i = 0; i < counts[k] && bad < 0; i++)
            if (!(vals[0][k][i] == vals[1][k][i]))
                bad = i;
        TEST_CHECK_MSG(bad < 0, "linear %s relu=%d threads=%d 3-D=%d: %s differs at %lld (%.17g vs %.17g)",
                       tg_dtype_name(dt), relu, threads, three_d, k ? "a gradient" : "y", (long long)bad,
                       bad >= 0 ? vals[1][k][bad] : 0.0, bad >= 0 ? vals[0][k][bad] : 0.0);
        free(vals[0][k]);
        free(vals[1][k]);
    }
}

static void test_linear(void)
{
    for (int d = 0; d < 2; d++)
        for (int relu = 0; relu < 2; relu++)
            for (int threads = 1; threads <= 2; threads++)
                linear_pair(d ? TG_F64 : TG_F32, relu, threads, relu ^ (threads - 1));

    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(32, 784));
    tg_tensor *w = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(128, 10));
    tg_tensor *b = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(10));
    expect_error(ctx, tg_linear(ctx, x, w, b, 1), TG_ERR_SHAPE, "linear: inner dims differ (32x784 · 128x10)");
    tg_tensor *w2 = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(784, 4));
    expect_error(ctx, tg_linear(ctx, x, w2, b, 0), TG_ERR_SHAPE, "linear: bias 10 does not fit W 784x4 (expected (4))");
    tg_tensor *b64 = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(4));
    expect_error(ctx, tg_linear(ctx, x, w2, b64, 0), TG_ERR_ARG, "linear: mixed dtypes (f32 and f64)");
    tg_tensor *v = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(784));
    expect_error(ctx, tg_linear(ctx, v, w2, b, 0), TG_ERR_SHAPE, "linear: x must be 2-D or 3-D and W 2-D (x 784, W 784x4)");
    tg_tensor *b4 = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(4));
    tg_tensor *y = tg_linear(ctx, x, w2, b4, 1);
    TEST_CHECK(y && y->ndim == 2 && y->shape[0] == 32 && y->shape[1] == 4);
    tg_ctx_free(ctx);
}

int main(void)
{
    test_linear();
    test_reference();
    test_accumulates();
    test_numeric_all_cases();
    test_same_tensor();
    test_larger_forward();
    test_samples();
    test_errors();
    return test_report("test_matmul");
}
