/* test_softmax.c — softmax and log_softmax: every PyTorch reference case
 * (ops.json, f64 tight, f32 looser), hand values, stability at +-1e4, every
 * axis of a 3-d tensor against a naive loop, numerical gradients of the op
 * samples, and errors. */
#include "tapegrad.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* ---- reference data ------------------------------------------------------
 * From /work/shared/reference/ops.json (PyTorch 1.13, float64): every case of
 * softmax and log_softmax. x is the input, y the output, dy the upstream
 * gradient the VJP is applied to, dx the resulting input gradient. Generated
 * by a script; numbers are Python reprs (exact round trip). */
typedef struct ref_case {
    const char *op;
    int axis;
    int nd;
    int64_t shape[2];
    const double *x, *y, *dy, *dx;
} ref_case;

static const double ref_x0[24] = {
    4.812755049106215, 0.001049465669742844, -0.3087870965994126, -5.302364064094835,
    4.644025367623904, 2.9066770599549168, 0.5383618006107769, -2.868079272642137,
    2.9229772863791204, 2.1900695703898823, 4.337022488382448, -1.8610113797106207,
    -5.951537618546059, 4.521900105021167, 3.9273914358040787, 2.82961506435458,
    5.668880429469241, 3.360849419860119, 3.873680794281469, 1.374503898485814,
    3.239658655131777, -5.915594791687775, 4.169412662260076, -3.6892557824098446
};
static const double ref_x1[24] = {
    -0.5969456569640643, 5.4067736402805, -1.6296998551298785, -5.417359866290813,
    0.9193993562448521, -3.298535808547864, -1.7966683135198336, 0.5159708128228853,
    0.24365601562140515, -4.897847607090679, -0.32777116090729663, -4.3731774025269905,
    -2.0501846443454035, -3.027032158866046, -3.3449456397670376, -5.78537356628307,
    2.0630589038655525, 5.114635651398093, -2.4658796560369334, 5.790446624295978,
    5.570879935546335, -5.1483928169019855, -5.876992231215258, 5.224833388715883
};
static const double ref_x2[24] = {
    -5.184665306754871, 2.8612351671542147, 5.047714210437244, -1.3955241768109747,
    4.39828715046774, 2.982576718561541, 2.9455523815410594, 4.438825532300078,
    1.1799448117619677, 2.4207109889050558, -3.1814114667089144, 0.4161724020463371,
    3.762834317145913, 0.29204471732946446, -3.5731958602971816, -3.609451330201874,
    -0.34531774328712217, -0.8052270257503049, 3.1759760478328642, -5.899317946013127,
    0.38103157856622927, -4.107400082061369, -2.641082974011938, 4.334533159369903
};
static const double ref_x3[6] = {
    10000.0, -10000.0, 0.0, -10000.0, 10000.0, 10000.0
};
static const double ref0_y[24] = {
    0.7117785971411181, 0.0103178445929307, 0.007678918702768918, 0.0001924009220115751,
    0.19438363582131, 0.38688680653423835, 0.009908308578171637, 0.0005855206325626739,
    0.19446323582847044, 0.3452468560273872, 0.14299802677204393, 0.003288540078002512,
    1.504776560385236e-05, 0.9483517903789803, 0.5309443830515365, 0.6544565390415887,
    0.5416872321681185, 0.6092962000036429, 0.2782980465151064, 0.04074484439552635,
    0.2669134624172241, 0.00010420400901247212, 0.12093110523852756, 0.0005284533841162634
};
static const double ref0_dy[24] = {
    1.6184179113296753, 1.6274217169822172, 1.1896528871965173, -1.8969640842406759,
    0.6955585463004477, -1.2746801175129137, 0.14799801445527017, 1.6395681451785173,
    0.11250293528481548, 0.48997239848176743, -0.4594337466356335, -0.9171366728999408,
    -0.5451738107010908, 0.9000496129603137, 1.8708304600638064, -1.0103286871455466,
    0.8378498875547598, 1.2558928621524044, -1.243004182200476, -0.4739066942059962,
    0.9970672155363767, -0.0795526895118126, 1.200033492749454, -1.3580393975613743
};
static const double ref0_dx[24] = {
    0.5772026962058454, 0.008000619969761895, -0.0007740168263096442, -0.0002702340273869268,
    0.0052634235174832235, -0.5969664371905069, -0.006534428310686894, 0.00046113394824909314,
    -0.2290674989240893, 0.3391706672739054, -0.1612895893018362, -0.003898422198141093,
    -2.0354534876408022e-05, 0.04556234811786453, 0.3081494693108384, -0.3389434565146285,
    0.09174494055822682, 0.6017243145833414, -0.5706479133602822, -0.0540241020358756,
    -0.0783079535604393, 4.3023268110005495e-05, 0.0642812252261262, -0.0008594551946935473
};
static const double ref1_y[24] = {
    -0.33998837499942175, -4.573880398016596, -4.8692765356452465, -8.555929227584196,
    -1.637921568372874, -0.9496231183113854, -4.61438162349486, -7.443009136328476,
    -1.637512152666714, -1.0634955930994785, -1.9449244476143295, -5.717311557976923,
    -11.104281042651696, -0.0530297586651707, -0.6330980032417556, -0.42395009913478077,
    -0.6130665065275368, -0.495450758406183, -1.279062629824168, -3.200425965200524,
    -1.3208307839140572, -9.169159955177134, -2.1125342737367023, -7.545555960676147
};
static const double ref1_dy[24] = {
    0.01338822464222833, 1.1523563187180588, 0.9859260951531654, -0.4984062657318642,
    0.32303586553516084, 0.4985992715236631, -0.8207375582265963, -0.14063932828091774,
    0.19113624786303918, -1.4160331948485, -1.883085151656113, 0.3442836343847877,
    -1.44501834182836, -1.4747936411477962, 1.3511248964551066, -1.9579893498024843,
    1.39563544927391, -1.361738111594995, -0.5804044708902572, -0.6034934655551649,
    -0.781551607699118, -0.5998290588931301, -0.8919038567231952, -1.8606827045131569
};
static const double ref1_dx[24] = {
    2.0296948089582014, 1.1633610234251535, 0.9725138221334273, -0.497545799194342,
    0.528366739393724, 1.4192110946279806, -0.7926695776693767, -0.14001482947176933,
    -0.14852016890468628, 0.12799977386277273, -1.7320338058311724, 0.35210884016960575,
    -1.4449757149370932, -0.46330996182238854, 0.42375851852798885, 0.9689090570253824,
    1.9678292569941827, 0.08810529485429261, 0.20795048364826887, -0.5600362321309956,
    -1.2477521717567297, -0.599363031693814, -0.7641621905567341, -1.859425229651879
};
static const double ref2_y[24] = {
    0.0024335708742320005, 0.9854308645947194, 0.0008664121811486611, 1.9622968530175846e-05,
    0.011086239864617277, 0.0001632895167526592, 0.04299294957948464, 0.4342738236969901,
    0.33074922774214993, 0.0019345153798256446, 0.18678034328575835, 0.003269140315791274,
    0.0007374912726024656, 0.0002776626089770559, 0.00020204556857453945,
    1.7602929418854946e-05, 0.04509369893763685, 0.9536714986827904, 0.00010948671228280343,
    0.42173375146740666, 0.33859594893926404, 7.48791233727907e-06, 3.6135498159042383e-06,
    0.23954971141889334
};
static const double ref2_dy[24] = {
    -1.4742584355781316, -1.6931201010326298, -1.9966766846365895, 0.09461938959276717,
    -0.38179890638452196, 1.7193703001526068, 0.6575192897953408, 1.9397242466484088,
    0.5602792232240446, -1.8809474256013554, 1.3084822066914237, 1.6125878104900533,
    -1.91253573432127, 0.33477726475524916, -1.7866524291018662, -0.9646091784470503,
    1.4565065343156798, -0.7520598454349781, 1.5239360189123032, -1.6170153701617194,
    1.8282101371318484, -1.7738249144719211, 0.248104252953949, 0.6298405086393943
};
static const double ref2_dx[24] = {
    0.000495139511712949, -0.015175178292180097, -0.00027634746746787233, 3.477857115005949e-05,
    0.01436689835108046, 0.0005547093257049558, -0.027707434038048706, 0.27695394345317276,
    -0.24531824556185397, -0.006157429581865507, 0.0012137579280298077, 0.0010154078005655915,
    -0.0009287238460222749, 0.00027433385798864067, -0.00022900211817189993,
    -5.481110691576847e-06, 0.09513601626821716, -0.09424714305131984, 0.00015720418060203087,
    -0.7191077235178025, 0.5891918170589181, -1.3941984189984471e-05, 5.781574472719219e-07,
    0.12977206610502506
};
static const double ref3_y[24] = {
    -6.018395604712982, -0.014676307468417374, -7.051149802878796, -10.83880981403973,
    -4.502050591504065, -8.719985756296781, -3.14671913999982, -0.8340800136571009,
    -1.106394810858581, -6.247898433570665, -1.6778219873872828, -5.723228229006976,
    -7.212256303579688, -8.18910381810033, -8.50701729900132, -10.947445225517354,
    -3.099012755368731, -0.047436007836191285, -9.1197073650866, -0.8633810847536897,
    -1.0829477735033324, -11.802220525951652, -12.530819940264925, -1.4289943203337847
};
static const double ref3_dy[24] = {
    1.471632082593128, -1.0655681750802057, 0.10361072831857143, 0.31806040152577664,
    -1.5459093977773635, -1.4863301391483428, -0.7540090697801842, 1.709957327124887,
    1.3738955109813586, -1.465290196607465, -1.9089708594343464, 1.4412471896888959,
    -0.3742197925252495, -1.9767587334473622, -0.5559212283933181, -1.161928687987409,
    -0.7132903168810514, -1.7332200296061977, -0.47642806220396894, -1.9206776610391576,
    -0.9843356734157185, -1.7066322867222938, 0.12628862062809398, -1.311854481011725
};
static const double ref3_dx[24] = {
    1.4769969005353911, 1.1068185999324673, 0.10552073787039455, 0.3181036604481963,
    -1.5214697321125197, -1.4859701666739291, -0.7710699577473475, 1.537624488237707,
    1.2426443273587475, -1.4660578701560067, -1.9830908847509445, 1.439949897057844,
    -0.36941478703043124, -1.9749496674808833, -0.5546048330632711, -1.161813998938569,
    -0.4194895910603664, 4.480272877573522, -0.47574118203627475, 0.7251278791070286,
    1.139893261208205, -1.7065853102593544, 0.1263112907371124, 0.19099406124328305
};
static const double ref4_y[24] = {
    2.041084101701908e-05, 0.06370170810317594, 0.5671877741869523, 0.0009025348568792453,
    0.2962676771395851, 0.07191989487239037, 0.15882428787973196, 0.7070289652000185,
    0.02717210549157406, 0.09396826236350334, 0.00034674509525631214, 0.012659633969915766,
    0.9441188196507471, 0.029354986413518497, 0.0006152182777690553, 0.0005933127471094769,
    0.015519541411118113, 0.009798121499737791, 0.23528139513889626, 2.6930070078330574e-05,
    0.014379991406007162, 0.00016160601598308317, 0.0007002787577021778, 0.7494497986113331
};
static const double ref4_dy[24] = {
    -1.3357407851705672, 0.26293411066052874, 1.2309125394523428, 1.2026311232594638,
    1.2485294576670993, 1.7556692209833251, -0.9365576017140538, 1.0050415614257742,
    -1.8767270616580753, -0.17695454238821862, -0.34423158662527253, 1.4237418720687836,
    1.5429268062990382, 0.3624648625564433, 0.542632734519199, -1.3024326235361592,
    0.996353507120241, 1.169592443695187, 0.8575698074485509, -0.9048086949881653,
    -0.6219337259460591, -0.5518970378639616, 0.007468452772069423, -0.7492494603133095
};
static const double ref4_dx[24] = {
    -5.2004236890304036e-05, -0.060465559775788, 0.010651799462019758, -8.575338517689495e-06,
    0.010783237237807303, 0.03909110265136896, -0.23008635657998283, 0.3485046214449779,
    -0.06491020420793576, -0.0647518285046615, -0.0002969382627171352, 0.011540706110319505,
    0.04635299942939452, -0.033211215059520974, -0.0005851940864443002, -0.001659058396676231,
    -0.007720610638538072, -0.0031769212482149816, 0.2885434966998451, -1.4434580322344613e-05,
    -0.003639969282299597, -2.958855428690888e-05, 0.000263497261590003, -0.28512300154452624
};
static const double ref5_y[24] = {
    -10.799444375866086, -2.7535439019570003, -0.5670648586739713, -7.01030324592219,
    -1.2164919186434746, -2.632202350549674, -1.8399567955182823, -0.3466836447592635,
    -3.605564365297374, -2.364798188154286, -7.9669206437682565, -4.3693367750130045,
    -0.05750325248328644, -3.5282928522997348, -7.39353342992638, -7.429788899831073,
    -4.165655312916321, -4.625564595379505, -1.4469730550578872, -10.52226704890388,
    -4.241917524324522, -8.730349184952122, -7.26403207690269, -0.2884159435208488
};
static const double ref5_dy[24] = {
    1.1139692772257668, -0.6763478512237362, 1.2973598357299347, 1.2057505952208354,
    0.3853768593119429, -1.8091185057158832, -1.4450828618854543, -1.8708354206895281,
    -0.32524139310994027, -0.10168714819835456, -0.7665953309478395, 1.3424037450584425,
    -1.5231208549367827, 0.9533715532920031, 0.7373612214652518, 0.9737571913635508,
    -0.9900473395379059, -0.11989132875534736, 0.38985196112088216, -1.6273708145332133,
    -1.2077814022785427, -1.6738643824389445, -1.1199810536169492, 0.8998893508867125
};
static const double ref5_dx[24] = {
    1.113938314179755, -0.772982718811495, 0.43694153474533043, 1.2043814586782704,
    -0.06405830661085808, -1.9182202821810026, -0.9420802417655505, 0.3683524689207578,
    -0.2391862913437302, 0.19591394800645656, -0.7654971759127625, 1.3824972920948286,
    -1.5527949275799164, 0.9524489130679736, 0.7373418848823071, 0.9737385432811364,
    -0.990535125597919, -0.1201992880535817, 1.410798246863738, -1.627253958055866,
    -1.145382933388513, -1.6731631325093688, -1.1169423645772205, 4.151944141667231
};
static const double ref6_y[6] = {
    0.0, -20000.0, -10000.0, -20000.69314718056, -0.6931471805599453, -0.6931471805599453
};
static const double ref6_dy[6] = {
    -1.6431845800215195, 0.3098204217774394, 1.4650992860975083, 0.021253608879616692,
    1.2943017961611676, 1.1458308843484288
};
static const double ref6_dx[6] = {
    -1.7749197078749477, 0.3098204217774394, 1.4650992860975083, 0.021253608879616692,
    0.06360865146656103, -0.08486226034617772
};
static const double ref7_y[6] = {
    1.0, 0.0, 0.0, 0.0, 0.5, 0.5
};
static const double ref7_dy[6] = {
    -1.4507276382675203, -0.8957812294146335, 0.24009380914089906, -1.5936364862915227,
    0.9631549549255207, 1.659718004446317
};
static const double ref7_dx[6] = {
    0.0, 0.0, 0.0, -0.0, -0.17414076238019904, 0.17414076238019904
};

static const ref_case ref_cases[] = {
    { "softmax", 0, 2, {4, 6}, ref_x0, ref0_y, ref0_dy, ref0_dx },
    { "log_softmax", 0, 2, {4, 6}, ref_x0, ref1_y, ref1_dy, ref1_dx },
    { "softmax", 1, 2, {4, 6}, ref_x1, ref2_y, ref2_dy, ref2_dx },
    { "log_softmax", 1, 2, {4, 6}, ref_x1, ref3_y, ref3_dy, ref3_dx },
    { "softmax", -1, 2, {4, 6}, ref_x2, ref4_y, ref4_dy, ref4_dx },
    { "log_softmax", -1, 2, {4, 6}, ref_x2, ref5_y, ref5_dy, ref5_dx },
    { "log_softmax", 1, 2, {2, 3}, ref_x3, ref6_y, ref6_dy, ref6_dx },
    { "softmax", 1, 2, {2, 3}, ref_x3, ref7_y, ref7_dy, ref7_dx },
};

/* ---- helpers ------------------------------------------------------------- */

static tg_tensor *call_smx(tg_ctx *ctx, int log_form, tg_tensor *x, int axis)
{
    return log_form ? tg_log_softmax(ctx, x, axis) : tg_softmax(ctx, x, axis);
}

static tg_tensor *from_f64(tg_ctx *ctx, tg_dtype dt, int nd, const int64_t *shape, const double *v)
{
    tg_tensor *t = tg_tensor_from(ctx, TG_F64, nd, shape, v);
    return dt == TG_F64 ? t : tg_tensor_cast(ctx, t, dt);
}

static void set_grad(tg_tensor *t, int64_t i, double v)
{
    if (t->dtype == TG_F32)
        ((float *)t->grad)[i] = (float)v;
    else
        ((double *)t->grad)[i] = v;
}

/* ---- the PyTorch reference cases ------------------------------------------ */

static void test_reference(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        double atol = d ? 2e-6 : 1e-13, rtol = d ? 2e-5 : 1e-11;
        for (size_t c = 0; c < sizeof ref_cases / sizeof ref_cases[0]; c++) {
            const ref_case *rc = &ref_cases[c];
            tg_ctx *ctx = tg_ctx_new(NULL);
            tg_ctx_set_poison(ctx, 1);
            tg_tensor *x = from_f64(ctx, dt, rc->nd, rc->shape, rc->x);
            TEST_CHECK(tg_tensor_requires_grad(x) == TG_OK);
            for (int64_t i = 0; i < x->numel; i++)     /* the VJP must add to this */
                set_grad(x, i, 0.25 * (double)(i % 3));
            tg_tensor *y = call_smx(ctx, !strcmp(rc->op, "log_softmax"), x, rc->axis);
            TEST_CHECK_MSG(y && tg_shape_equal(y->ndim, y->shape, rc->nd, rc->shape) && y->dtype == dt,
                           "%s case %zu: %s", rc->op, c, tg_ctx_error(ctx));
            if (!y) {
                tg_ctx_free(ctx);
                continue;
            }
            for (int64_t i = 0; i < y->numel; i++)
                TEST_CLOSE(tg_tensor_get(y, i), rc->y[i], atol, rtol);
            TEST_CHECK(tg_backward_seed(ctx, y, from_f64(ctx, dt, rc->nd, rc->shape, rc->dy)) == TG_OK);
            for (int64_t i = 0; i < x->numel; i++)
                TEST_CLOSE(tg_tensor_grad_get(x, i) - 0.25 * (double)(i % 3), rc->dx[i], atol, rtol);
            tg_ctx_free(ctx);
        }
    }
}

/* ---- hand values, stability, special values --------------------------------- */

static void test_hand(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    double v[3] = {0, log(2.0), log(3.0)};
    tg_tensor *x = tg_tensor_from(ctx, TG_F64, TG_DIMS(3), v);
    tg_tensor *y = tg_softmax(ctx, x, 0), *l = tg_log_softmax(ctx, x, -1);
    for (int i = 0; i < 3; i++) {
        TEST_CLOSE(tg_tensor_get(y, i), (i + 1) / 6.0, 0, 1e-15);
        TEST_CLOSE(tg_tensor_get(l, i), log((i + 1) / 6.0), 0, 1e-15);
    }
    /* Softmax is shift invariant; a size-1 axis gives 1 (log: 0). */
    double w[2 * 3] = {1, 2, 3, 101, 102, 103};
    y = tg_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(2, 3), w), 1);
    for (int i = 0; i < 3; i++)
        TEST_CLOSE(tg_tensor_get(y, i), tg_tensor_get(y, 3 + i), 0, 1e-15);
    y = tg_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(2, 3), w), 0);  /* columns: 1 vs 101 */
    TEST_CLOSE(tg_tensor_get(y, 0), 1 / (1 + exp(100.0)), 0, 1e-14);
    TEST_CLOSE(tg_tensor_get(y, 3), 1 / (1 + exp(-100.0)), 0, 1e-15);
    l = tg_log_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(2, 3), w), 0);
    TEST_CLOSE(tg_tensor_get(l, 0), -100 - log1p(exp(-100.0)), 0, 1e-15);
    y = tg_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(3, 1), w), -1);
    l = tg_log_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(3, 1), w), 1);
    for (int i = 0; i < 3; i++)
        TEST_CHECK(tg_tensor_get(y, i) == 1 && tg_tensor_get(l, i) == 0);
    /* A scalar is a slice of one, along axis 0 or -1. */
    y = tg_softmax(ctx, tg_tensor_scalar(ctx, TG_F32, 7), -1);
    l = tg_log_softmax(ctx, tg_tensor_scalar(ctx, TG_F32, 7), 0);
    TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 1 && l && tg_tensor_get(l, 0) == 0);
    /* Empty tensors pass through. */
    y = tg_softmax(ctx, tg_tensor_new(ctx, TG_F32, TG_DIMS(2, 0)), -1);
    l = tg_log_softmax(ctx, tg_tensor_new(ctx, TG_F64, TG_DIMS(0, 3)), 1);
    TEST_CHECK(y && y->numel == 0 && y->shape[0] == 2 && l && l->numel == 0 && l->shape[1] == 3);
    /* PyTorch's values for degenerate slices: all -inf gives NaN. */
    double ninf[2] = {-INFINITY, -INFINITY};
    y = tg_softmax(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(2), ninf), 0);
    TEST_CHECK(y && isnan(tg_tensor_get(y, 0)));
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

static void test_stability(void)
{
    for (int d = 0; d < 2; d++)
        for (int lf = 0; lf < 2; lf++) {
            tg_dtype dt = d ? TG_F32 : TG_F64;
            tg_ctx *ctx = tg_ctx_new(NULL);
            double v[3] = {1e4, 0, -1e4}, dyv[3] = {0.3, -1.2, 2.5};
            static const int64_t s3[1] = {3};
            tg_tensor *x = from_f64(ctx, dt, 1, s3, v);
            tg_tensor_requires_grad(x);
            tg_tensor *y = call_smx(ctx, lf, x, -1);
            TEST_CHECK(y != NULL);
            static const double want_y[2][3] = { {1, 0, 0}, {0, -1e4, -2e4} };
            for (int i = 0; i < 3; i++)
                TEST_CHECK_MSG(tg_tensor_get(y, i) == want_y[lf][i], "%s %s y[%d] = %g",
                               lf ? "log_softmax" : "softmax", tg_dtype_name(dt), i, tg_tensor_get(y, i));
            TEST_CHECK(tg_backward_seed(ctx, y, from_f64(ctx, dt, 1, s3, dyv)) == TG_OK);
            /* softmax: y (dy - y.dy) = 0; log_softmax: dy - [1 0 0] * sum dy */
            double sum = dyv[0] + dyv[1] + dyv[2];
            for (int i = 0; i < 3; i++) {
                double g = tg_tensor_grad_get(x, i);
                TEST_CHECK(isfinite(g));
                TEST_CLOSE(g, lf ? dyv[i] - (i == 0) * sum : 0.0, 1e-6, 0);
            }
            tg_ctx_free(ctx);
        }
}

/* ---- every axis of 3-d shapes (and long slices) vs a naive loop ------------- */

static void check_against_naive(tg_ctx *ctx, int lf, int nd, const int64_t *shape, int axis)
{
    tg_tensor *x = tg_tensor_randn(ctx, TG_F64, nd, shape, 0, 3);
    tg_tensor_requires_grad(x);
    tg_tensor *y = call_smx(ctx, lf, x, axis);
    TEST_CHECK_MSG(y != NULL, "%s", tg_ctx_error(ctx));
    if (!y)
        return;
    tg_tensor *dy = tg_tensor_randn(ctx, TG_F64, nd, shape, 0, 1);
    TEST_CHECK(tg_backward_seed(ctx, y, dy) == TG_OK);
    int a = axis < 0 ? axis + nd : axis;
    int64_t outer = 1, A = shape[a], inner = 1;
    for (int k = 0; k < nd; k++) {
        if (k < a)
            outer *= shape[k];
        if (k > a)
            inner *= shape[k];
    }
    const double *xv = x->data, *g = dy->data;
    int bad = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double m = -INFINITY, s = 0, gy = 0, gs = 0;
            for (int64_t j = 0; j < A; j++)
                m = fmax(m, xv[(o * A + j) * inner + i]);
            for (int64_t j = 0; j < A; j++)
                s += exp(xv[(o * A + j) * inner + i] - m);
            for (int64_t j = 0; j < A; j++) {
                int64_t k = (o * A + j) * inner + i;
                double p = exp(xv[k] - m) / s;
                gy += g[k] * p;
                gs += g[k];
            }
            for (int64_t j = 0; j < A; j++) {
                int64_t k = (o * A + j) * inner + i;
                double p = exp(xv[k] - m) / s;
                double wy = lf ? xv[k] - m - log(s) : p;
                double wdx = lf ? g[k] - p * gs : p * (g[k] - gy);
                bad += !(fabs(tg_tensor_get(y, k) - wy) <= 1e-12 * (1 + fabs(wy)));
                bad += !(fabs(tg_tensor_grad_get(x, k) - wdx) <= 1e-12 * (1 + fabs(wdx)));
            }
        }
    TEST_CHECK_MSG(bad == 0, "%s axis %d of %dd: %d mismatches", lf ? "log_softmax" : "softmax", axis, nd, bad);
}

static void test_axes(void)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 11 });
    tg_ctx_set_poison(ctx, 1);
    static const int64_t s3[3] = {3, 4, 5}, s1[3] = {2, 1, 6}, l1[2] = {3, 1003}, l2[2] = {1003, 3};
    for (int lf = 0; lf < 2; lf++) {
        for (int axis = -3; axis < 3; axis++) {
            check_against_naive(ctx, lf, 3, s3, axis);
            check_against_naive(ctx, lf, 3, s1, axis);
        }
        check_against_naive(ctx, lf, 2, l1, -1);
        check_against_naive(ctx, lf, 2, l2, 0);
        tg_ctx_reset(ctx);
    }
    /* f32 rows still sum to 1 to f32 precision. */
    tg_tensor *x = tg_tensor_randn(ctx, TG_F32, TG_DIMS(7, 300), 0, 10);
    tg_tensor *y = tg_softmax(ctx, x, 0);
    for (int64_t c = 0; y && c < 300; c += 37) {
        double s = 0;
        for (int64_t r = 0; r < 7; r++)
            s += tg_tensor_get(y, r * 300 + c);
        TEST_CLOSE(s, 1.0, 1e-6, 0);
    }
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* ---- numerical gradients of the op samples (what the registry checker does) */

static double sample_grad_err(const tg_op_def *def, int v, double *fwd32_err)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 200 + (uint64_t)v });
    tg_ctx_set_poison(ctx, 1);
    tg_node n;
    memset(&n, 0, sizeof n);
    n.def = def;
    n.ctx = ctx;
    if (def->sample(&n, TG_F64, v) != TG_OK || tg_node_run(&n) != TG_OK) {
        fprintf(stderr, "%s sample %d: %s\n", def->name, v, tg_ctx_error(ctx));
        tg_ctx_free(ctx);
        return INFINITY;
    }
    tg_tensor *x = n.in[0], *y = n.out;
    tg_tensor *dy = tg_tensor_randn(ctx, TG_F64, y->ndim, y->shape, 0, 1);
    y->grad = dy->data;
    x->grad = tg_ctx_alloc(ctx, sizeof(double) * (size_t)x->numel, "test");
    memset(x->grad, 0, sizeof(double) * (size_t)x->numel);
    def->backward(&n);

    tg_tensor *y64 = y;
    n.in[0] = tg_tensor_cast(ctx, x, TG_F32);
    *fwd32_err = tg_node_run(&n) == TG_OK ? 0 : INFINITY;
    for (int64_t i = 0; *fwd32_err == 0 && i < y64->numel; i++) {
        double e = fabs(tg_tensor_get(n.out, i) - tg_tensor_get(y64, i)) / (1 + fabs(tg_tensor_get(y64, i)));
        *fwd32_err = e > *fwd32_err ? e : *fwd32_err;
    }
    n.in[0] = x;

    double err = 0, h = 1e-6;
    for (int64_t j = 0; j < x->numel; j++) {
        double x0 = tg_tensor_get(x, j), f[2];
        for (int s = 0; s < 2; s++) {
            tg_tensor_set(x, j, x0 + (s ? -h : h));
            f[s] = 0;
            if (tg_node_run(&n) != TG_OK)
                return INFINITY;
            for (int64_t i = 0; i < n.out->numel; i++)
                f[s] += tg_tensor_get(n.out, i) * tg_tensor_get(dy, i);
        }
        tg_tensor_set(x, j, x0);
        double num = (f[0] - f[1]) / (2 * h), an = tg_tensor_grad_get(x, j);
        double e = fabs(num - an) / (1 + fabs(an));
        err = e > err ? e : err;
    }
    tg_ctx_free(ctx);
    return err;
}

static void test_samples(void)
{
    static const char *const names[] = {"softmax", "log_softmax"};
    for (size_t k = 0; k < 2; k++) {
        const tg_op_def *def = tg_op_find(names[k]);
        TEST_CHECK_MSG(def != NULL, "%s is not registered", names[k]);
        if (!def)
            continue;
        TEST_CHECK(def->n_samples >= 2 && def->n_samples <= 4 && def->cost);
        for (int v = 0; v < def->n_samples; v++) {
            double e32 = 0, e = sample_grad_err(def, v, &e32);
            TEST_CHECK_MSG(e < 1e-7, "%s sample %d: gradient error %g", names[k], v, e);
            TEST_CHECK_MSG(e32 < 1e-6, "%s sample %d: f32 forward error %g", names[k], v, e32);
        }
    }
}

/* ---- errors ------------------------------------------------------------------ */

static void expect_error(tg_ctx *ctx, tg_tensor *y, tg_status st, const char *msg)
{
    TEST_CHECK(y == NULL);
    TEST_CHECK_MSG(tg_ctx_status(ctx) == st, "status %d, want %d (%s)", tg_ctx_status(ctx), st,
                   tg_ctx_error(ctx));
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), msg) != NULL, "error \"%s\" lacks \"%s\"", tg_ctx_error(ctx), msg);
    tg_ctx_clear_error(ctx);
}

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(2, 3), -1, 1);
    expect_error(ctx, tg_softmax(ctx, x, 2), TG_ERR_ARG, "softmax: axis 2 out of range for 2 dims");
    expect_error(ctx, tg_log_softmax(ctx, x, -3), TG_ERR_ARG, "log_softmax: axis -3 out of range for 2 dims");
    expect_error(ctx, tg_softmax(ctx, tg_tensor_scalar(ctx, TG_F64, 1), 1), TG_ERR_ARG,
                 "softmax: axis 1 out of range for 0 dims");
    int32_t iv[3] = {1, 2, 3};
    tg_tensor *xi = tg_tensor_from(ctx, TG_I32, TG_DIMS(3), iv);
    expect_error(ctx, tg_softmax(ctx, xi, 0), TG_ERR_ARG, "softmax: input 0 is i32, expected f32 or f64");
    expect_error(ctx, tg_log_softmax(ctx, xi, -1), TG_ERR_ARG, "log_softmax: input 0 is i32");
    expect_error(ctx, tg_log_softmax(ctx, NULL, 0), TG_ERR_ARG, "log_softmax: input 0 is NULL");
    /* Sticky. */
    TEST_CHECK(tg_softmax(ctx, x, 5) == NULL && tg_softmax(ctx, x, 0) == NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_softmax(ctx, x, 0) != NULL);
    tg_ctx_free(ctx);
}

int main(void)
{
    test_reference();
    test_hand();
    test_stability();
    test_axes();
    test_samples();
    test_errors();
    return test_report("test_softmax");
}
