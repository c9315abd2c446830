/* test_shape.c — the shape family (shape.c, index.c): PyTorch reference
 * cases (forward and VJP for one upstream gradient), hand-computed cases,
 * a central-difference check of every sample variant, the tiled transpose
 * against a naive loop, a tensor passed twice to concat/stack, and the
 * errors (each returns NULL with a clear message and no crash). */
#include "tapegrad.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- reference values, copied from /work/shared/reference/ops.json
 * (PyTorch 1.13, float64) ------------------------------------------------ */
/* permute {"perm": [2, 0, 1]} */
static const double ref_permute_x0[24] = {
    -0.32717058171932534, 1.3937823768832933, -1.8129083867379094, 0.25097384223489705,
    -1.0213829890402795, 1.3349130467087069, -1.5777192419539738, -0.024482660400113598,
    0.82708988072124123, -1.1460625988865156, 1.1370697448541307, 1.1235228615969874,
    0.30298490896552455, 0.21557656431880234, 1.2532698508951956, -1.2427020595352269,
    -0.89451687109884581, 0.30881855420176363, 1.8607482278317211, 0.019826246063951558,
    -1.8319937241594091, 1.7774462693088133, -0.3606727406302932, -0.48737428033437169,
};

static const double ref_permute_y[24] = {
    -0.32717058171932534, -1.0213829890402795, 0.82708988072124123, 0.30298490896552455,
    -0.89451687109884581, -1.8319937241594091, 1.3937823768832933, 1.3349130467087069,
    -1.1460625988865156, 0.21557656431880234, 0.30881855420176363, 1.7774462693088133,
    -1.8129083867379094, -1.5777192419539738, 1.1370697448541307, 1.2532698508951956,
    1.8607482278317211, -0.3606727406302932, 0.25097384223489705, -0.024482660400113598,
    1.1235228615969874, -1.2427020595352269, 0.019826246063951558, -0.48737428033437169,
};

static const double ref_permute_dy[24] = {
    1.0083332993698462, -0.61347346652612389, -0.79604040820619604, 0.40036746026223513,
    1.4137724741481534, -1.9714819896903957, 1.7300493797604761, 0.50224551713667687,
    -1.1968719986092444, -0.94161809990910061, -1.5339005433585968, -1.0795129525120961,
    1.4262193848845741, -0.55474754985117736, -1.391509890003503, 0.30618609850152811,
    -0.39602296208235277, 0.28187407071740456, -1.3054057928518423, -1.0260622557143337,
    -0.55501286703258934, 0.70409067139734693, 1.7339460592052429, -0.94409930378832829,
};

static const double ref_permute_dx0[24] = {
    1.0083332993698462, 1.7300493797604761, 1.4262193848845741, -1.3054057928518423,
    -0.61347346652612389, 0.50224551713667687, -0.55474754985117736, -1.0260622557143337,
    -0.79604040820619604, -1.1968719986092444, -1.391509890003503, -0.55501286703258934,
    0.40036746026223513, -0.94161809990910061, 0.30618609850152811, 0.70409067139734693,
    1.4137724741481534, -1.5339005433585968, -0.39602296208235277, 1.7339460592052429,
    -1.9714819896903957, -1.0795129525120961, 0.28187407071740456, -0.94409930378832829,
};

/* slice {"axis": 1, "start": 1, "stop": 3} */
static const double ref_slice_x0[24] = {
    -0.32717058171932534, 1.3937823768832933, -1.8129083867379094, 0.25097384223489705,
    -1.0213829890402795, 1.3349130467087069, -1.5777192419539738, -0.024482660400113598,
    0.82708988072124123, -1.1460625988865156, 1.1370697448541307, 1.1235228615969874,
    0.30298490896552455, 0.21557656431880234, 1.2532698508951956, -1.2427020595352269,
    -0.89451687109884581, 0.30881855420176363, 1.8607482278317211, 0.019826246063951558,
    -1.8319937241594091, 1.7774462693088133, -0.3606727406302932, -0.48737428033437169,
};

static const double ref_slice_y[16] = {
    -1.0213829890402795, 1.3349130467087069, -1.5777192419539738, -0.024482660400113598,
    0.82708988072124123, -1.1460625988865156, 1.1370697448541307, 1.1235228615969874,
    -0.89451687109884581, 0.30881855420176363, 1.8607482278317211, 0.019826246063951558,
    -1.8319937241594091, 1.7774462693088133, -0.3606727406302932, -0.48737428033437169,
};

static const double ref_slice_dy[16] = {
    -0.34010146715203504, -0.21661920927424605, -0.28461889735540113, 0.59348508930267929,
    -1.7676283171977007, -0.75373623988304495, 0.9660164427264224, -1.8740512312308097,
    -0.052157094346582333, 1.2141419647188516, 1.000779020986859, 1.1716304843625442,
    0.34911879888857422, -0.20427935200961844, -1.4585691652815451, -1.0149805004471846,
};

static const double ref_slice_dx0[24] = {
    0, 0, 0, 0, -0.34010146715203504, -0.21661920927424605, -0.28461889735540113,
    0.59348508930267929, -1.7676283171977007, -0.75373623988304495, 0.9660164427264224,
    -1.8740512312308097, 0, 0, 0, 0, -0.052157094346582333, 1.2141419647188516,
    1.000779020986859, 1.1716304843625442, 0.34911879888857422, -0.20427935200961844,
    -1.4585691652815451, -1.0149805004471846,
};

/* concat {"axis": 1} */
static const double ref_concat_x0[6] = {
    1.3964921953429306, -1.9223285646701314, 0.40188585860808734, -1.6475297929570032,
    1.4181490926299065, 1.6752525444041924,
};

static const double ref_concat_x1[4] = {
    1.897866164387354, 1.1766494230072588, 1.8536416222185372, -1.4055557741310576,
};

static const double ref_concat_y[10] = {
    1.3964921953429306, -1.9223285646701314, 0.40188585860808734, 1.897866164387354,
    1.1766494230072588, -1.6475297929570032, 1.4181490926299065, 1.6752525444041924,
    1.8536416222185372, -1.4055557741310576,
};

static const double ref_concat_dy[10] = {
    1.2433637236686756, -0.53387770300312054, 1.6243707539967644, 1.0498435826069175,
    -1.0295008884105785, 0.74307269751119431, 1.1685575573190312, -1.9243561940536269,
    -1.3429714250231788, 0.97819709933669285,
};

static const double ref_concat_dx0[6] = {
    1.2433637236686756, -0.53387770300312054, 1.6243707539967644, 0.74307269751119431,
    1.1685575573190312, -1.9243561940536269,
};

static const double ref_concat_dx1[4] = {
    1.0498435826069175, -1.0295008884105785, -1.3429714250231788, 0.97819709933669285,
};

/* stack {"axis": 0} */
static const double ref_stack_x0[6] = {
    -0.37223556177728145, 1.2775744094426327, -0.24633054960447032, 1.3832179854354347,
    -0.98791514072583375, 0.6085913874144353,
};

static const double ref_stack_x1[6] = {
    -0.38941307092959931, 0.51145907252807588, 0.031060608657728306, -0.79272822019976097,
    1.6590044601989002, 0.86208665428659748,
};

static const double ref_stack_y[12] = {
    -0.37223556177728145, 1.2775744094426327, -0.24633054960447032, 1.3832179854354347,
    -0.98791514072583375, 0.6085913874144353, -0.38941307092959931, 0.51145907252807588,
    0.031060608657728306, -0.79272822019976097, 1.6590044601989002, 0.86208665428659748,
};

static const double ref_stack_dy[12] = {
    0.76900471528331238, 0.26597587974235726, -1.7004521786745457, -0.95476331701269768,
    0.57661915973980848, -1.2988824332683802, -1.9233847328582683, -1.7436978203108229,
    -0.52595154015103018, -1.8514592180562239, 1.3444263049774792, 1.0137856843285555,
};

static const double ref_stack_dx0[6] = {
    0.76900471528331238, 0.26597587974235726, -1.7004521786745457, -0.95476331701269768,
    0.57661915973980848, -1.2988824332683802,
};

static const double ref_stack_dx1[6] = {
    -1.9233847328582683, -1.7436978203108229, -0.52595154015103018, -1.8514592180562239,
    1.3444263049774792, 1.0137856843285555,
};

/* gather_rows {} */
static const double ref_gather_rows_x0[18] = {
    0.87922046948199561, -1.6021514066810179, 1.8823201235514935, -1.5103824227997347,
    1.1994993073055022, -0.16477723381990117, 1.659000417301713, -1.7689149980665118,
    1.0769407132394511, 1.4042115988699986, 1.4337344044326477, 0.035212758177170844,
    1.4713855495355102, -1.2412308019624709, -1.863360332188742, -1.2937113114352976,
    -1.1656181228659253, -0.68962768197011037,
};

static const int32_t ref_gather_rows_idx[4] = { 4, 0, 4, 2 };
static const double ref_gather_rows_y[12] = {
    1.4713855495355102, -1.2412308019624709, -1.863360332188742, 0.87922046948199561,
    -1.6021514066810179, 1.8823201235514935, 1.4713855495355102, -1.2412308019624709,
    -1.863360332188742, 1.659000417301713, -1.7689149980665118, 1.0769407132394511,
};

static const double ref_gather_rows_dy[12] = {
    -1.663648425873379, -1.1517584055790282, 1.8828063092861913, 0.59367657910116067,
    1.2037912688863357, -1.1725675904318589, 0.56794312387644164, 0.45826515915993316,
    1.781550525863306, 0.70182319997083642, -0.75793845941910565, 1.0557236460191701,
};

static const double ref_gather_rows_dx0[18] = {
    0.59367657910116067, 1.2037912688863357, -1.1725675904318589, 0, 0, 0,
    0.70182319997083642, -0.75793845941910565, 1.0557236460191701, 0, 0, 0,
    -1.0957053019969374, -0.69349324641909504, 3.6643568351494973, 0, 0, 0,
};


/* ---- helpers -------------------------------------------------------------- */

static tg_tensor *leaf(tg_ctx *ctx, tg_dtype dt, int nd, const int64_t *shape, const double *v)
{
    tg_tensor *t = tg_tensor_new(ctx, dt, nd, shape);
    for (int64_t i = 0; t && i < t->numel; i++)
        tg_tensor_set(t, i, v ? v[i] : (double)(i + 1));
    if (t)
        tg_tensor_requires_grad(t);
    return t;
}

static tg_tensor *index_i32(tg_ctx *ctx, int nd, const int64_t *shape, const int32_t *v)
{
    return tg_tensor_from(ctx, TG_I32, nd, shape, v);
}

/* max |t[i] - want[i]| over n elements (grad when `grad`); 1e300 on a size
 * mismatch or a NULL tensor. */
static double max_diff(const tg_tensor *t, const double *want, int64_t n, int grad)
{
    if (!t || t->numel != n || (grad && !t->grad))
        return 1e300;
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = grad ? tg_tensor_grad_get(t, i) : tg_tensor_get(t, i);
        double d = fabs(v - want[i]);
        if (!(d <= m))
            m = d;   /* NaN propagates */
    }
    return m;
}

static int has_shape(const tg_tensor *t, int nd, const int64_t *shape)
{
    return t && tg_shape_equal(t->ndim, t->shape, nd, shape);
}

/* Backward from y with upstream `dy` (numel of y values). */
static tg_status vjp(tg_ctx *ctx, tg_tensor *y, const double *dy)
{
    if (!y)
        return TG_ERR_ARG;
    tg_tensor *seed = tg_tensor_from(ctx, TG_F64, y->ndim, y->shape, dy);
    if (y->dtype != TG_F64)
        seed = tg_tensor_cast(ctx, seed, y->dtype);
    return tg_backward_seed(ctx, y, seed);
}

#define MSG_HAS(ctx, s) (strstr(tg_ctx_error(ctx), (s)) != NULL)
#define CHECK_ERR(ctx, call, status, text) do {                                     \
        tg_tensor *r_ = (call);                                                    \
        TEST_CHECK_MSG(r_ == NULL, "%s did not fail", #call);                      \
        TEST_CHECK_MSG(tg_ctx_status(ctx) == (status), "%s: status %d, error '%s'", \
                       #call, (int)tg_ctx_status(ctx), tg_ctx_error(ctx));         \
        TEST_CHECK_MSG(MSG_HAS(ctx, text), "%s: error '%s' lacks '%s'", #call,     \
                       tg_ctx_error(ctx), text);                                   \
        tg_ctx_clear_error(ctx);                                                   \
    } while (0)

/* ---- reference cases ------------------------------------------------------ */

static void test_reference(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);

    /* permute (2, 0, 1) of 2x3x4 */
    tg_tensor *x = leaf(ctx, TG_F64, TG_DIMS(2, 3, 4), ref_permute_x0);
    tg_tensor *y = tg_permute(ctx, x, (const int[]){2, 0, 1});
    TEST_CHECK(has_shape(y, TG_DIMS(4, 2, 3)));
    TEST_CHECK(max_diff(y, ref_permute_y, 24, 0) == 0);
    TEST_CHECK(vjp(ctx, y, ref_permute_dy) == TG_OK);
    TEST_CHECK(max_diff(x, ref_permute_dx0, 24, 1) == 0);

    /* slice axis 1, 1:3 of 2x3x4 */
    x = leaf(ctx, TG_F64, TG_DIMS(2, 3, 4), ref_slice_x0);
    y = tg_slice(ctx, x, 1, 1, 3, 1);
    TEST_CHECK(has_shape(y, TG_DIMS(2, 2, 4)));
    TEST_CHECK(max_diff(y, ref_slice_y, 16, 0) == 0);
    TEST_CHECK(vjp(ctx, y, ref_slice_dy) == TG_OK);
    TEST_CHECK(max_diff(x, ref_slice_dx0, 24, 1) == 0);

    /* concat 2x3 and 2x2 along axis 1 */
    tg_tensor *a = leaf(ctx, TG_F64, TG_DIMS(2, 3), ref_concat_x0);
    tg_tensor *b = leaf(ctx, TG_F64, TG_DIMS(2, 2), ref_concat_x1);
    y = tg_concat(ctx, (tg_tensor *[]){a, b}, 2, 1);
    TEST_CHECK(has_shape(y, TG_DIMS(2, 5)));
    TEST_CHECK(max_diff(y, ref_concat_y, 10, 0) == 0);
    TEST_CHECK(vjp(ctx, y, ref_concat_dy) == TG_OK);
    TEST_CHECK(max_diff(a, ref_concat_dx0, 6, 1) == 0);
    TEST_CHECK(max_diff(b, ref_concat_dx1, 4, 1) == 0);

    /* stack two 2x3 along axis 0 */
    a = leaf(ctx, TG_F64, TG_DIMS(2, 3), ref_stack_x0);
    b = leaf(ctx, TG_F64, TG_DIMS(2, 3), ref_stack_x1);
    y = tg_stack(ctx, (tg_tensor *[]){a, b}, 2, 0);
    TEST_CHECK(has_shape(y, TG_DIMS(2, 2, 3)));
    TEST_CHECK(max_diff(y, ref_stack_y, 12, 0) == 0);
    TEST_CHECK(vjp(ctx, y, ref_stack_dy) == TG_OK);
    TEST_CHECK(max_diff(a, ref_stack_dx0, 6, 1) == 0);
    TEST_CHECK(max_diff(b, ref_stack_dx1, 6, 1) == 0);

    /* gather_rows: 6x3 table, indices 4 0 4 2 (4 repeated: accumulates) */
    tg_tensor *t = leaf(ctx, TG_F64, TG_DIMS(6, 3), ref_gather_rows_x0);
    tg_tensor *idx = index_i32(ctx, TG_DIMS(4), ref_gather_rows_idx);
    y = tg_gather_rows(ctx, t, idx);
    TEST_CHECK(has_shape(y, TG_DIMS(4, 3)));
    TEST_CHECK(max_diff(y, ref_gather_rows_y, 12, 0) == 0);
    TEST_CHECK(vjp(ctx, y, ref_gather_rows_dy) == TG_OK);
    TEST_CHECK(max_diff(t, ref_gather_rows_dx0, 18, 1) < 1e-15);
    TEST_CHECK(idx->grad == NULL);

    /* The same in f32: values equal after rounding. */
    tg_tensor *x32 = tg_tensor_from(ctx, TG_F64, TG_DIMS(2, 3, 4), ref_permute_x0);
    x32 = tg_tensor_cast(ctx, x32, TG_F32);
    tg_tensor_requires_grad(x32);
    y = tg_permute(ctx, x32, (const int[]){2, 0, 1});
    TEST_CHECK(y && y->dtype == TG_F32);
    TEST_CHECK(max_diff(y, ref_permute_y, 24, 0) < 1e-6);
    TEST_CHECK(vjp(ctx, y, ref_permute_dy) == TG_OK);
    TEST_CHECK(max_diff(x32, ref_permute_dx0, 24, 1) < 1e-6);

    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* ---- hand-computed cases --------------------------------------------------- */

static void test_hand(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);

    /* transpose of [[1 2 3] [4 5 6]] is [[1 4] [2 5] [3 6]]; the VJP of a
     * transpose is the transpose of dy. */
    tg_tensor *x = leaf(ctx, TG_F64, TG_DIMS(2, 3), NULL);
    tg_tensor *y = tg_transpose(ctx, x, 0, -1);
    TEST_CHECK(has_shape(y, TG_DIMS(3, 2)));
    TEST_CHECK(max_diff(y, (const double[]){1, 4, 2, 5, 3, 6}, 6, 0) == 0);
    TEST_CHECK(vjp(ctx, y, (const double[]){10, 40, 20, 50, 30, 60}) == TG_OK);
    TEST_CHECK(max_diff(x, (const double[]){10, 20, 30, 40, 50, 60}, 6, 1) == 0);

    /* slice of 1..7 with start -6, stop -1, step 2: indices 1, 3, 5 */
    x = leaf(ctx, TG_F64, TG_DIMS(7), NULL);
    y = tg_slice(ctx, x, -1, -6, -1, 2);
    TEST_CHECK(has_shape(y, TG_DIMS(3)));
    TEST_CHECK(max_diff(y, (const double[]){2, 4, 6}, 3, 0) == 0);
    TEST_CHECK(vjp(ctx, y, (const double[]){1, 2, 3}) == TG_OK);
    TEST_CHECK(max_diff(x, (const double[]){0, 1, 0, 2, 0, 3, 0}, 7, 1) == 0);
    /* clamping: -100:100 is everything; 5:2 is empty */
    y = tg_slice(ctx, x, 0, -100, 100, 3);
    TEST_CHECK(max_diff(y, (const double[]){1, 4, 7}, 3, 0) == 0);
    y = tg_slice(ctx, x, 0, 5, 2, 1);
    TEST_CHECK(has_shape(y, TG_DIMS(0)));
    TEST_CHECK(vjp(ctx, y, (const double[]){0}) == TG_OK);   /* an empty VJP: nothing changes */
    TEST_CHECK(max_diff(x, (const double[]){0, 1, 0, 2, 0, 3, 0}, 7, 1) == 0);

    /* broadcast_to: x 2x1 -> 3x2x4. The VJP sums dy over axes 0 and 2. */
    x = leaf(ctx, TG_F64, TG_DIMS(2, 1), (const double[]){1.5, -2});
    y = tg_broadcast_to(ctx, x, TG_DIMS(3, 2, 4));
    TEST_CHECK(has_shape(y, TG_DIMS(3, 2, 4)));
    double want[24], dy[24], s0 = 0, s1 = 0;
    for (int i = 0; i < 24; i++) {
        want[i] = (i / 4) % 2 ? -2 : 1.5;
        dy[i] = i + 1;
        if ((i / 4) % 2) s1 += dy[i]; else s0 += dy[i];
    }
    TEST_CHECK(max_diff(y, want, 24, 0) == 0);
    TEST_CHECK(vjp(ctx, y, dy) == TG_OK);
    TEST_CHECK(max_diff(x, (const double[]){s0, s1}, 2, 1) == 0);
    TEST_CHECK(s0 == 1 + 2 + 3 + 4 + 9 + 10 + 11 + 12 + 17 + 18 + 19 + 20);
    /* a scalar to 2x2: the VJP is the sum of dy */
    x = leaf(ctx, TG_F32, 0, NULL, (const double[]){3});
    y = tg_broadcast_to(ctx, x, TG_DIMS(2, 2));
    TEST_CHECK(max_diff(y, (const double[]){3, 3, 3, 3}, 4, 0) == 0);
    TEST_CHECK(vjp(ctx, y, (const double[]){1, 2, 3, 4.5}) == TG_OK);
    TEST_CHECK(max_diff(x, (const double[]){10.5}, 1, 1) == 0);

    /* reshape with -1, a scalar reshape; the VJP is a plain copy */
    x = leaf(ctx, TG_F64, TG_DIMS(2, 3), NULL);
    y = tg_reshape(ctx, x, TG_DIMS(-1, 2));
    TEST_CHECK(has_shape(y, TG_DIMS(3, 2)));
    TEST_CHECK(max_diff(y, (const double[]){1, 2, 3, 4, 5, 6}, 6, 0) == 0);
    TEST_CHECK(vjp(ctx, y, (const double[]){6, 5, 4, 3, 2, 1}) == TG_OK);
    TEST_CHECK(max_diff(x, (const double[]){6, 5, 4, 3, 2, 1}, 6, 1) == 0);
    x = leaf(ctx, TG_F64, TG_DIMS(1, 1), (const double[]){7});
    y = tg_reshape(ctx, x, 0, NULL);
    TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 7);

    /* index_select along axis 1 with a repeated index: [[1 2 3] [4 5 6]]
     * columns 2 0 2 -> [[3 1 3] [6 4 6]]; the VJP adds both copies of col 2. */
    x = leaf(ctx, TG_F64, TG_DIMS(2, 3), NULL);
    tg_tensor *idx = index_i32(ctx, TG_DIMS(3), (const int32_t[]){2, 0, 2});
    y = tg_index_select(ctx, x, -1, idx);
    TEST_CHECK(has_shape(y, TG_DIMS(2, 3)));
    TEST_CHECK(max_diff(y, (const double[]){3, 1, 3, 6, 4, 6}, 6, 0) == 0);
    TEST_CHECK(vjp(ctx, y, (const double[]){1, 2, 3, 4, 5, 6}) == TG_OK);
    TEST_CHECK(max_diff(x, (const double[]){2, 0, 4, 5, 0, 10}, 6, 1) == 0);

    /* gather_rows with a 2-D index: out shape idx.shape + row shape */
    x = leaf(ctx, TG_F32, TG_DIMS(3, 2), NULL);
    idx = index_i32(ctx, TG_DIMS(2, 2), (const int32_t[]){1, 1, 0, 2});
    y = tg_gather_rows(ctx, x, idx);
    TEST_CHECK(has_shape(y, TG_DIMS(2, 2, 2)));
    TEST_CHECK(max_diff(y, (const double[]){3, 4, 3, 4, 1, 2, 5, 6}, 8, 0) == 0);
    TEST_CHECK(vjp(ctx, y, (const double[]){1, 1, 1, 1, 1, 1, 1, 1}) == TG_OK);
    TEST_CHECK(max_diff(x, (const double[]){1, 1, 2, 2, 1, 1}, 6, 1) == 0);

    /* stack along the last axis of 1-D inputs: columns */
    tg_tensor *a = leaf(ctx, TG_F64, TG_DIMS(3), (const double[]){1, 2, 3});
    tg_tensor *b = leaf(ctx, TG_F64, TG_DIMS(3), (const double[]){4, 5, 6});
    y = tg_stack(ctx, (tg_tensor *[]){a, b}, 2, -1);
    TEST_CHECK(has_shape(y, TG_DIMS(3, 2)));
    TEST_CHECK(max_diff(y, (const double[]){1, 4, 2, 5, 3, 6}, 6, 0) == 0);

    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* The same tensor twice: each slab's gradient is added. */
static void test_same_tensor_twice(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = leaf(ctx, TG_F64, TG_DIMS(2, 2), NULL);
    tg_tensor *y = tg_concat(ctx, (tg_tensor *[]){x, x}, 2, 0);
    TEST_CHECK(has_shape(y, TG_DIMS(4, 2)));
    TEST_CHECK(max_diff(y, (const double[]){1, 2, 3, 4, 1, 2, 3, 4}, 8, 0) == 0);
    TEST_CHECK(vjp(ctx, y, (const double[]){1, 2, 3, 4, 10, 20, 30, 40}) == TG_OK);
    TEST_CHECK(max_diff(x, (const double[]){11, 22, 33, 44}, 4, 1) == 0);

    tg_tensor_zero_grad(x);
    y = tg_stack(ctx, (tg_tensor *[]){x, x, x}, 3, 1);
    TEST_CHECK(has_shape(y, TG_DIMS(2, 3, 2)));
    TEST_CHECK(max_diff(y, (const double[]){1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}, 12, 0) == 0);
    TEST_CHECK(vjp(ctx, y, (const double[]){1, 2, 10, 20, 100, 200, 3, 4, 30, 40, 300, 400}) == TG_OK);
    TEST_CHECK(max_diff(x, (const double[]){111, 222, 333, 444}, 4, 1) == 0);
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* The tiled transpose (with partial tiles) and a general permute against a
 * naive loop, forward and VJP, both dtypes. */
static void test_transpose_sizes(void)
{
    static const int64_t sizes[][3] = { {1, 67, 131}, {3, 33, 65}, {2, 1, 40}, {1, 64, 64} };
    for (int dt = 0; dt < 2; dt++)
        for (int c = 0; c < 4; c++) {
            tg_ctx *ctx = tg_ctx_new(NULL);
            tg_ctx_set_poison(ctx, 1);
            int64_t B = sizes[c][0], M = sizes[c][1], N = sizes[c][2];
            tg_tensor *x = tg_tensor_rand(ctx, dt ? TG_F64 : TG_F32, TG_DIMS(B, M, N), -1, 1);
            tg_tensor_requires_grad(x);
            tg_tensor *y = tg_transpose(ctx, x, 1, 2);
            TEST_CHECK(has_shape(y, TG_DIMS(B, N, M)));
            int bad = 0;
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++)
                        bad += tg_tensor_get(y, (b * N + j) * M + i) != tg_tensor_get(x, (b * M + i) * N + j);
            TEST_CHECK_MSG(bad == 0, "transpose %lldx%lldx%lld: %d wrong", (long long)B, (long long)M,
                           (long long)N, bad);
            double *dy = malloc(sizeof(double) * (size_t)(B * M * N));
            for (int64_t i = 0; i < B * M * N; i++)
                dy[i] = (double)(i % 97) - 48;
            TEST_CHECK(vjp(ctx, y, dy) == TG_OK);
            TEST_CHECK(vjp(ctx, y, dy) == TG_OK);   /* accumulates */
            bad = 0;
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++)
                        bad += tg_tensor_grad_get(x, (b * M + i) * N + j) != 2 * dy[(b * N + j) * M + i];
            TEST_CHECK_MSG(bad == 0, "transpose VJP %lldx%lldx%lld: %d wrong", (long long)B, (long long)M,
                           (long long)N, bad);

            /* permute (1, 2, 0): y[i, j, b] = x[b, i, j] */
            y = tg_permute(ctx, x, (const int[]){1, 2, 0});
            TEST_CHECK(has_shape(y, TG_DIMS(M, N, B)));
            bad = 0;
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++)
                        bad += tg_tensor_get(y, (i * N + j) * B + b) != tg_tensor_get(x, (b * M + i) * N + j);
            TEST_CHECK(bad == 0);
            free(dy);
            tg_ctx_free(ctx);
        }
}

/* ---- every sample variant against central differences --------------------- */

static const char *const family[] = {
    "reshape", "permute", "slice", "concat", "stack", "broadcast_to", "index_select", "gather_rows",
};

/* L = sum(w * op(inputs)); compare dL/dx from the VJP with central
 * differences of the forward for every element of every differentiable
 * input. Poisoned arena memory catches outputs left unwritten. */
static void check_variant(const tg_op_def *def, int v)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 1234u + (uint64_t)v });
    tg_ctx_set_poison(ctx, 1);
    tg_node n;
    memset(&n, 0, sizeof n);
    n.def = def;
    n.ctx = ctx;
    TEST_CHECK_MSG(def->sample(&n, TG_F64, v) == TG_OK, "%s sample %d", def->name, v);
    TEST_CHECK_MSG(tg_node_run(&n) == TG_OK, "%s sample %d: %s", def->name, v, tg_ctx_error(ctx));
    if (tg_ctx_status(ctx) != TG_OK) {
        tg_ctx_free(ctx);
        return;
    }
    tg_tensor *y = n.out;
    TEST_CHECK_MSG(y->numel > 0 && y->numel <= 64, "%s sample %d: %lld outputs", def->name, v, (long long)y->numel);
    int nan = 0;
    for (int64_t i = 0; i < y->numel; i++)
        nan += isnan(tg_tensor_get(y, i));
    TEST_CHECK_MSG(nan == 0, "%s sample %d: %d unwritten outputs", def->name, v, nan);

    /* random upstream gradient, zeroed input gradients */
    tg_rng *r = tg_ctx_rng(ctx);
    y->grad = tg_ctx_alloc(ctx, sizeof(double) * (size_t)y->numel, "test");
    for (int64_t i = 0; i < y->numel; i++)
        ((double *)y->grad)[i] = 2 * tg_rng_uniform(r) - 1;
    for (int i = 0; i < n.n_in; i++) {
        n.in[i]->grad = NULL;
        if (!(def->nondiff & (1u << i))) {
            TEST_CHECK(n.in[i]->dtype == TG_F64);
            n.in[i]->grad = tg_ctx_alloc(ctx, sizeof(double) * (size_t)(n.in[i]->numel + 1), "test");
            memset(n.in[i]->grad, 0, sizeof(double) * (size_t)(n.in[i]->numel + 1));
        } else {
            TEST_CHECK(n.in[i]->dtype == TG_I32);
        }
    }
    def->backward(&n);

    double worst = 0;
    for (int i = 0; i < n.n_in; i++) {
        tg_tensor *x = n.in[i];
        if (def->nondiff & (1u << i))
            continue;
        for (int64_t e = 0; e < x->numel; e++) {
            double x0 = tg_tensor_get(x, e), f[2];
            for (int s = 0; s < 2; s++) {
                tg_tensor_set(x, e, x0 + (s ? -1e-6 : 1e-6));
                def->forward(&n);
                f[s] = 0;
                for (int64_t k = 0; k < y->numel; k++)
                    f[s] += ((double *)y->grad)[k] * tg_tensor_get(y, k);
            }
            tg_tensor_set(x, e, x0);
            double num = (f[0] - f[1]) / 2e-6, ana = ((double *)x->grad)[e];
            double err = fabs(num - ana) / (1 + fabs(num));
            if (err > worst)
                worst = err;
        }
        TEST_CHECK_MSG(((double *)x->grad)[x->numel] == 0, "%s sample %d wrote past input %d's grad",
                       def->name, v, i);
    }
    TEST_CHECK_MSG(worst < 1e-8, "%s sample %d: relative gradient error %g", def->name, v, worst);

    /* f32 forward agrees with f64 forward on the same sample */
    tg_ctx *c32 = tg_ctx_new(&(tg_ctx_opts){ .seed = 1234u + (uint64_t)v });
    tg_node m;
    memset(&m, 0, sizeof m);
    m.def = def;
    m.ctx = c32;
    TEST_CHECK(def->sample(&m, TG_F32, v) == TG_OK);
    TEST_CHECK_MSG(tg_node_run(&m) == TG_OK, "%s f32 sample %d: %s", def->name, v, tg_ctx_error(c32));
    def->forward(&n);
    if (m.out) {
        TEST_CHECK(m.out->dtype == TG_F32 && tg_shape_equal(m.out->ndim, m.out->shape, y->ndim, y->shape));
        double d = 0;
        for (int64_t k = 0; k < y->numel && k < m.out->numel; k++)
            d = fmax(d, fabs(tg_tensor_get(m.out, k) - tg_tensor_get(y, k)));
        TEST_CHECK_MSG(d < 1e-6, "%s sample %d: f32 differs from f64 by %g", def->name, v, d);
        tg_op_cost c = {0};
        def->cost(&m, &c);
        TEST_CHECK(c.fwd_bytes > 0 && c.bwd_bytes > 0 && c.bwd_flops > 0);
    }
    tg_ctx_free(c32);
    tg_ctx_free(ctx);
}

static void test_samples(void)
{
    for (size_t f = 0; f < sizeof family / sizeof family[0]; f++) {
        const tg_op_def *def = tg_op_find(family[f]);
        TEST_CHECK_MSG(def != NULL, "op %s not registered", family[f]);
        if (!def)
            continue;
        TEST_CHECK(def->n_samples >= 2 && def->n_samples <= 4 && def->sample && def->cost && def->backward);
        for (int v = 0; v < def->n_samples; v++)
            check_variant(def, v);
        tg_node n;
        memset(&n, 0, sizeof n);
        n.def = def;
        n.ctx = tg_ctx_new(NULL);
        TEST_CHECK(def->sample(&n, TG_F64, def->n_samples) == TG_ERR_ARG);
        tg_ctx_free(n.ctx);
    }
    const tg_op_def *is = tg_op_find("index_select"), *gr = tg_op_find("gather_rows");
    TEST_CHECK(is && is->nondiff == 2u && gr && gr->nondiff == 2u);
    TEST_CHECK(tg_op_find("concat") && tg_op_find("concat")->n_in == TG_VARIADIC);
    TEST_CHECK(tg_op_find("stack") && tg_op_find("stack")->n_in == TG_VARIADIC);
}

/* ---- errors ---------------------------------------------------------------- */

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = leaf(ctx, TG_F64, TG_DIMS(2, 3), NULL);
    tg_tensor *x32 = leaf(ctx, TG_F32, TG_DIMS(2, 3), NULL);
    tg_tensor *z = leaf(ctx, TG_F64, TG_DIMS(3, 4), NULL);

    /* reshape */
    CHECK_ERR(ctx, tg_reshape(ctx, x, TG_DIMS(4, 2)), TG_ERR_SHAPE,
              "reshape: cannot reshape 2x3 (6 elements) into 4x2 (8 elements)");
    CHECK_ERR(ctx, tg_reshape(ctx, x, TG_DIMS(4, -1)), TG_ERR_SHAPE, "reshape: cannot reshape 2x3 (6 elements) into 4x-1");
    CHECK_ERR(ctx, tg_reshape(ctx, x, TG_DIMS(-1, -1)), TG_ERR_ARG, "more than one -1");
    CHECK_ERR(ctx, tg_reshape(ctx, x, TG_DIMS(-2, -3)), TG_ERR_ARG, "negative dimension -2");
    CHECK_ERR(ctx, tg_reshape(ctx, x, 7, (const int64_t[]){1, 1, 1, 1, 1, 2, 3}), TG_ERR_ARG, "ndim 7");
    CHECK_ERR(ctx, tg_reshape(ctx, x, TG_DIMS(INT64_MAX / 2, 4)), TG_ERR_SHAPE, "too many elements");

    /* permute / transpose */
    CHECK_ERR(ctx, tg_permute(ctx, x, (const int[]){0, 0}), TG_ERR_ARG,
              "permute: perm (0, 0) is not a permutation of 0..1 for 2x3");
    CHECK_ERR(ctx, tg_permute(ctx, x, (const int[]){-1, 0}), TG_ERR_ARG, "perm (-1, 0) is not a permutation");
    CHECK_ERR(ctx, tg_permute(ctx, x, (const int[]){0, 2}), TG_ERR_ARG, "not a permutation");
    CHECK_ERR(ctx, tg_permute(ctx, x, NULL), TG_ERR_ARG, "NULL perm");
    CHECK_ERR(ctx, tg_transpose(ctx, x, 0, 2), TG_ERR_ARG, "transpose: axis 2 out of range for 2x3");
    CHECK_ERR(ctx, tg_transpose(ctx, x, -3, 1), TG_ERR_ARG, "axis -3 out of range");

    /* slice */
    CHECK_ERR(ctx, tg_slice(ctx, x, 2, 0, 1, 1), TG_ERR_ARG, "slice: axis 2 out of range for 2 dims");
    CHECK_ERR(ctx, tg_slice(ctx, x, 0, 0, 1, 0), TG_ERR_ARG, "slice: step must be >= 1, got 0");
    CHECK_ERR(ctx, tg_slice(ctx, x, 0, 0, 1, -1), TG_ERR_ARG, "step must be >= 1, got -1");

    /* concat / stack */
    CHECK_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x, x, z}, 3, 1), TG_ERR_SHAPE,
              "concat: input 2 has shape 3x4, input 0 has 2x3 (all dims but axis 1 must match)");
    CHECK_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x, z}, 2, 0), TG_ERR_SHAPE, "input 1 has shape 3x4");
    CHECK_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x, x}, 2, 2), TG_ERR_ARG, "concat: axis 2 out of range for 2 dims");
    CHECK_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x, x32}, 2, 0), TG_ERR_ARG, "concat: input 1 is f32, input 0 is f64");
    CHECK_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x}, 0, 0), TG_ERR_ARG, "concat: takes 1 to 16 inputs, got 0");
    tg_tensor *many[17];
    for (int i = 0; i < 17; i++)
        many[i] = x;
    CHECK_ERR(ctx, tg_concat(ctx, many, 17, 0), TG_ERR_ARG, "got 17");
    TEST_CHECK(has_shape(tg_concat(ctx, many, 16, 0), TG_DIMS(32, 3)));
    CHECK_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x, NULL}, 2, 0), TG_ERR_ARG, "concat: input 1 is NULL");
    tg_tensor *sc = tg_tensor_scalar(ctx, TG_F64, 1);
    CHECK_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){sc, sc}, 2, 0), TG_ERR_SHAPE, "cannot concat scalars");
    CHECK_ERR(ctx, tg_stack(ctx, (tg_tensor *[]){x, z}, 2, 0), TG_ERR_SHAPE,
              "stack: input 1 has shape 3x4, input 0 has 2x3");
    CHECK_ERR(ctx, tg_stack(ctx, (tg_tensor *[]){x, x}, 2, 3), TG_ERR_ARG, "stack: axis 3 out of range for 3 dims");
    TEST_CHECK(has_shape(tg_stack(ctx, (tg_tensor *[]){x, x}, 2, -3), TG_DIMS(2, 2, 3)));
    TEST_CHECK(has_shape(tg_stack(ctx, (tg_tensor *[]){sc, sc}, 2, 0), TG_DIMS(2)));

    /* broadcast_to */
    CHECK_ERR(ctx, tg_broadcast_to(ctx, x, TG_DIMS(4, 3)), TG_ERR_SHAPE,
              "broadcast_to: cannot broadcast 2x3 to 4x3 (axis 0: 2 vs 4)");
    CHECK_ERR(ctx, tg_broadcast_to(ctx, x, TG_DIMS(3)), TG_ERR_SHAPE, "target has fewer dims");
    CHECK_ERR(ctx, tg_broadcast_to(ctx, x, TG_DIMS(-1, 2, 3)), TG_ERR_ARG, "negative dimension -1");

    /* index_select / gather_rows: the first bad index and its position */
    tg_tensor *t6 = leaf(ctx, TG_F64, TG_DIMS(6, 2), NULL);
    tg_tensor *bad = index_i32(ctx, TG_DIMS(4), (const int32_t[]){1, 5, 7, 9});
    CHECK_ERR(ctx, tg_index_select(ctx, t6, 0, bad), TG_ERR_ARG,
              "index_select: index 7 at position 2 out of range for axis 0 of size 6");
    tg_tensor *neg = index_i32(ctx, TG_DIMS(2), (const int32_t[]){0, -1});
    CHECK_ERR(ctx, tg_index_select(ctx, t6, 1, neg), TG_ERR_ARG,
              "index -1 at position 1 out of range for axis 1 of size 2");
    CHECK_ERR(ctx, tg_index_select(ctx, t6, 2, neg), TG_ERR_ARG, "index_select: axis 2 out of range");
    CHECK_ERR(ctx, tg_index_select(ctx, t6, 0, x), TG_ERR_ARG, "index input 1 is f64, expected i32");
    tg_tensor *idx2 = index_i32(ctx, TG_DIMS(1, 2), (const int32_t[]){0, 1});
    CHECK_ERR(ctx, tg_index_select(ctx, t6, 0, idx2), TG_ERR_SHAPE, "index input 1 has shape 1x2, expected 1-D");
    CHECK_ERR(ctx, tg_index_select(ctx, t6, 0, NULL), TG_ERR_ARG, "index_select: input 1 is NULL");
    CHECK_ERR(ctx, tg_gather_rows(ctx, t6, bad), TG_ERR_ARG,
              "gather_rows: index 7 at position 2 out of range for axis 0 of size 6");
    CHECK_ERR(ctx, tg_gather_rows(ctx, sc, neg), TG_ERR_ARG, "at least 1 dim");
    CHECK_ERR(ctx, tg_gather_rows(ctx, bad, neg), TG_ERR_ARG, "gather_rows: input 0 is i32");

    /* integer data is rejected by the float ops */
    CHECK_ERR(ctx, tg_reshape(ctx, bad, TG_DIMS(2, 2)), TG_ERR_ARG, "reshape: input 0 is i32");

    /* NULL inputs and a sticky error */
    CHECK_ERR(ctx, tg_transpose(ctx, NULL, 0, 1), TG_ERR_ARG, "permute: input 0 is NULL");
    CHECK_ERR(ctx, tg_broadcast_to(ctx, NULL, TG_DIMS(2)), TG_ERR_ARG, "broadcast_to: input 0 is NULL");
    TEST_CHECK(tg_reshape(ctx, x, TG_DIMS(5)) == NULL);
    TEST_CHECK(tg_reshape(ctx, x, TG_DIMS(6)) == NULL);        /* sticky: still NULL */
    TEST_CHECK(MSG_HAS(ctx, "into 5 (5 elements)"));
    tg_ctx_clear_error(ctx);
    TEST_CHECK(has_shape(tg_reshape(ctx, x, TG_DIMS(6)), TG_DIMS(6)));
    TEST_CHECK(tg_reshape(NULL, x, TG_DIMS(6)) == NULL);
    tg_ctx_free(ctx);
}

int main(void)
{
    test_reference();
    test_hand();
    test_same_tensor_twice();
    test_transpose_sizes();
    test_samples();
    test_errors();
    return test_report("test_shape");
}
