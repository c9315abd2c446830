/* test_norm.c — the normalisation family: batch_norm, layer_norm, dropout.
 * Reference values computed independently (mpmath at 40 digits: the
 * defining formulas for the forward, numerical differentiation for the
 * VJPs), hand-derived cases (two-element batch, constant channels and rows,
 * large offsets), batch statistics, optional affine parameters, aliased
 * inputs, the descriptors, dropout's mask (exact golden bits, kept fraction,
 * scaling, reproducibility, recomputation in the VJP), and the error
 * messages. (Every sample variant is gradient-checked by test_ops_grad.c.) */
#include "tapegrad.h"
#include "test.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

/* ---- reference cases ------------------------------------------------------
 * Computed outside tapegrad with mpmath at 40 digits (PyTorch was not
 * available): y straight from the definitions (eps = 1e-5, biased variance,
 * batch_norm per channel over axes 0 and 2.., layer_norm over the last axis),
 * and dx, dgamma, dbeta = d sum(up * y) / d input by mpmath.diff, i.e. by
 * numerical differentiation, independent of the fused VJP formula. Inputs
 * are the decimal values shown. */
typedef struct ref_case {
    int     is_bn;
    int     ndim;
    int64_t shape[3];
    double  x[12], g[4], b[4], up[12];
    double  y[12], dx[12], dg[4], db[4];
} ref_case;

static const ref_case refs[] = {
    { 1, 2, {4, 3},
      {-0.7, -1.4, 0.6, -1.71, 0.14, -0.54, -1.77, 0.03, -1.85, -0.27, -1.72, -1.64},
      {0.92, 1.33, 0.62}, {-0.55, 0.25, 0.9},
      {0.15, -0.21, 0.95, -0.91, 0.72, -0.42, -0.71, -0.76, -0.38, 0.63, -0.64, 0.16},
      {0.03745232634268484, -0.81011339486801814, 1.8243908743386328, -1.4009157939145556,
       1.6541501947119788, 1.1013681664511259, -1.486363405018946, 1.4781313668848362,
       0.27052628282600821, 0.64982687259081695, -1.3221681667287968, 0.4037146763842332},
      {-0.051499984130160187, 0.33321401671140999, 0.18984427973545004, -0.17967442936453007,
       1.0933033244267842, -0.39471878311908865, 0.18721430836620245, -1.2229450045003871,
       -0.042616435274820459, 0.04396010512848781, -0.20357233663780708, 0.24749093865845909},
      {2.481695835553603, 0.98227048194651345, 1.5377275184835846},
      {-0.84, -0.89, 0.31} },
    { 1, 3, {3, 2, 2},
      {0.56, -0.51, 0.19, -1.75, -1.76, -1.18, 0.72, -0.29, -0.74, 0.34, -0.19, -0.8},
      {1.29, 1.2}, {-0.51, 0.15},
      {0.05, 0.75, 0.46, -0.42, 0.96, -0.76, -0.16, 0.51, -0.7, -0.02, -0.92, 0.34},
      {1.2581931875629648, -0.4488444461444388, 0.98845162434339984, -2.0052836233121751,
       -2.4430472892605644, -1.5177371700546822, 1.8063277487029126, 0.24773362492346379,
       -0.81577776927780599, 0.90721348717452666, 0.40204987480261711, -0.53927924946021832},
      {0.22282575545951794, 1.1295942953675622, 0.66744736210350275, -0.36463634674127554,
       1.2193107325473027, -1.4108887064052975, -0.37834772928572158, 0.82524036294207437,
       -1.2288179764924769, 0.0679758995233916, -1.3982809428087757, 0.6485772937901958},
      {-0.59679740692076799, 0.50791479022724662},
      {0.28, -0.19} },
    { 0, 2, {3, 4},
      {1.06, 0.29, 1.5, -0.75, 0.78, 0.38, 0.32, -0.18, 1.36, 1.78, -0.1, 0.66},
      {0.56, 1.2, 1.15, 1.49}, {0.64, -0.43, -0.23, 0.34},
      {-0.95, -0.08, -0.66, -0.77, -0.88, 0.54, -0.74, -0.5, -0.22, 0.74, -0.84, -0.1},
      {0.99079105460950712, -0.76018383644820098, 1.0828320092820756, -1.8843501535193963,
       1.3872012247091272, -0.23645494179433912, -0.24686188007094773, -1.866560288588629,
       0.98101295874451488, 1.0062861070273901, -1.8801191507393138, -0.21274616896663251},
      {0.020017591928253652, 0.67287533457271831, -0.32711768621434256, -0.36577524028662933,
       -0.93931724195959299, 2.8900073465508349, -1.43322233805803, -0.51746776653321225,
       -0.56760867629794798, 0.34810825489463443, -0.0098584641663849951, 0.22935888556969858},
      {-1.9032346974051015, 0.99481729795598461, 0.46270326238900444, 1.9270499190610153},
      {-2.05, 1.2, -2.24, -1.37} },
};

static void test_reference(void)
{
    for (int k = 0; k < (int)(sizeof refs / sizeof refs[0]); k++) {
        const ref_case *c = &refs[k];
        int64_t d = c->is_bn ? c->shape[1] : c->shape[c->ndim - 1];
        int64_t n = tg_shape_numel(c->ndim, c->shape);
        for (int f = 0; f < 2; f++) {
            tg_dtype dt = f ? TG_F32 : TG_F64;
            double tol = f ? 3e-6 : 1e-13;
            tg_ctx *ctx = tg_ctx_new(NULL);
            tg_ctx_set_poison(ctx, 1);
            tg_tensor *x = tu_tensor(ctx, dt, c->ndim, c->shape, c->x, 1);
            tg_tensor *g = tu_tensor(ctx, dt, 1, &d, c->g, 1), *b = tu_tensor(ctx, dt, 1, &d, c->b, 1);
            tg_tensor *up = tu_tensor(ctx, dt, c->ndim, c->shape, c->up, 0);
            tg_tensor *y = c->is_bn ? tg_batch_norm(ctx, x, g, b, 1e-5, NULL) : tg_layer_norm(ctx, x, g, b, 1e-5);
            TEST_CHECK_MSG(y != NULL, "case %d: %s", k, tg_ctx_error(ctx));
            if (y) {
                char what[4][32];
                static const char *const names[4] = { "y", "dx", "dgamma", "dbeta" };
                for (int j = 0; j < 4; j++)
                    snprintf(what[j], sizeof what[j], "case %d %s %s", k, tg_dtype_name(dt), names[j]);
                TEST_CHECK(y->dtype == dt && tg_shape_equal(y->ndim, y->shape, c->ndim, c->shape));
                TEST_CHECK(tg_backward_seed(ctx, y, up) == TG_OK);
                tu_check_values(what[0], y, 0, c->y, n, tol, tol);
                tu_check_values(what[1], x, 1, c->dx, n, tol, tol);
                tu_check_values(what[2], g, 1, c->dg, d, tol, tol);
                tu_check_values(what[3], b, 1, c->db, d, tol, tol);
            }
            tg_ctx_free(ctx);
        }
    }
}

/* ---- hand-derived cases ---------------------------------------------------- */

static void test_bn_hand(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        double tol = f ? 1e-7 : 1e-15, eps = 1e-5;
        tg_ctx *ctx = tg_ctx_new(NULL);
        /* x = [[1], [3]]: mean 2, var 1, y = [-r, r] with r = 1/sqrt(1 + eps) */
        const double xv[2] = {1, 3}, dyv[2] = {1, 0};
        tg_tensor *x = tu_tensor(ctx, dt, TG_DIMS(2, 1), xv, 1);
        double mean = -1, var = -1;
        float mean32 = -1, var32 = -1;
        tg_bn_stats st = { f ? (void *)&mean32 : (void *)&mean, f ? (void *)&var32 : (void *)&var };
        tg_tensor *y = tg_batch_norm(ctx, x, NULL, NULL, eps, &st);
        double r = 1 / sqrt(1 + eps);
        TEST_CHECK(y && y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 1);
        TEST_CLOSE(tg_tensor_get(y, 0), -r, 0, tol);
        TEST_CLOSE(tg_tensor_get(y, 1), r, 0, tol);
        TEST_CHECK(f ? mean32 == 2.0f && var32 == 1.0f : mean == 2.0 && var == 1.0);
        /* dy = [1, 0]: dx = r/2 (1 - r^2) [1, -1] = r eps / (2 (1 + eps)) [1, -1] */
        TEST_CHECK(tg_backward_seed(ctx, y, tu_tensor(ctx, dt, TG_DIMS(2, 1), dyv, 0)) == TG_OK);
        double g0 = r * eps / (2 * (1 + eps));
        TEST_CLOSE(tg_tensor_grad_get(x, 0), g0, f ? 1e-9 : 1e-20, f ? 1e-2 : 1e-9);
        TEST_CLOSE(tg_tensor_grad_get(x, 1), -g0, f ? 1e-9 : 1e-20, f ? 1e-2 : 1e-9);

        /* a constant channel next to a varying one: y = beta there, dx finite
         * (x-hat = 0, so dx = gamma rstd / M (M dy - sum dy)) */
        const double cv[6] = {5, -1, 5, 0, 5, 1}, gv[2] = {2, 1}, bv[2] = {0.5, 0}, uv[6] = {1, 0, 2, 0, 0, 0};
        tg_tensor *xc = tu_tensor(ctx, dt, TG_DIMS(3, 2), cv, 1);
        tg_tensor *g = tu_tensor(ctx, dt, TG_DIMS(2), gv, 1), *b = tu_tensor(ctx, dt, TG_DIMS(2), bv, 1);
        y = tg_batch_norm(ctx, xc, g, b, eps, NULL);
        TEST_CHECK(y != NULL);
        for (int i = 0; i < 3 && y; i++)
            TEST_CHECK(tg_tensor_get(y, 2 * i) == 0.5);
        TEST_CHECK(y && tg_backward_seed(ctx, y, tu_tensor(ctx, dt, TG_DIMS(3, 2), uv, 0)) == TG_OK);
        double k = 2 / sqrt(eps) / 3;
        TEST_CLOSE(tg_tensor_grad_get(xc, 0), k * (3 * 1 - 3), 1e-9, tol);
        TEST_CLOSE(tg_tensor_grad_get(xc, 2), k * (3 * 2 - 3), f ? 2e-4 : 1e-9, tol);
        TEST_CLOSE(tg_tensor_grad_get(xc, 4), k * (0 - 3), f ? 2e-4 : 1e-9, tol);
        TEST_CHECK(tg_tensor_grad_get(g, 0) == 0.0 && tg_tensor_grad_get(b, 0) == 3.0);
        for (int i = 0; i < 6; i++)
            TEST_CHECK(isfinite(tg_tensor_grad_get(xc, i)));

        /* a large offset: 1e4 + {-1, 0, 1}; two-pass variance in double keeps y exact-ish */
        const double ov[3] = {1e4 - 1, 1e4, 1e4 + 1};
        y = tg_batch_norm(ctx, tu_tensor(ctx, dt, TG_DIMS(3, 1), ov, 0), NULL, NULL, eps, &st);
        double s = 1 / sqrt(2.0 / 3 + eps);
        TEST_CHECK(y != NULL);
        TEST_CLOSE(tg_tensor_get(y, 0), -s, 0, tol);
        TEST_CHECK(tg_tensor_get(y, 1) == 0.0);
        TEST_CLOSE(tg_tensor_get(y, 2), s, 0, tol);
        TEST_CHECK(f ? mean32 == 1e4f && fabs(var32 - 2.0 / 3) < 1e-7 : mean == 1e4 && fabs(var - 2.0 / 3) < 1e-15);
        tg_ctx_free(ctx);
    }
}

static void test_ln_hand(void)
{
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        double tol = f ? 1e-7 : 1e-15, eps = 1e-5;
        tg_ctx *ctx = tg_ctx_new(NULL);
        /* rows [1, 3] and [4, 4]: the first gives -+r, the constant one 0 */
        const double xv[4] = {1, 3, 4, 4};
        tg_tensor *x = tu_tensor(ctx, dt, TG_DIMS(2, 2), xv, 1);
        tg_tensor *y = tg_layer_norm(ctx, x, NULL, NULL, eps);
        double r = 1 / sqrt(1 + eps);
        TEST_CHECK(y && y->ndim == 2);
        TEST_CLOSE(tg_tensor_get(y, 0), -r, 0, tol);
        TEST_CLOSE(tg_tensor_get(y, 1), r, 0, tol);
        TEST_CHECK(y && tg_tensor_get(y, 2) == 0.0 && tg_tensor_get(y, 3) == 0.0);
        /* sum(y) is invariant (every row sums to 0): its gradient is 0 */
        TEST_CHECK(y && tg_backward_seed(ctx, y, tg_tensor_fill(ctx, dt, TG_DIMS(2, 2), 1.0)) == TG_OK);
        for (int i = 0; i < 4; i++)
            TEST_CLOSE(tg_tensor_grad_get(x, i), 0.0, f ? 1e-6 : 1e-13, 0);

        /* D == 1: every row is constant, y = beta whatever x */
        const double x1[3] = {-7, 0.5, 1e3}, bv[1] = {0.25};
        const int64_t one = 1;
        y = tg_layer_norm(ctx, tu_tensor(ctx, dt, TG_DIMS(3, 1), x1, 0), NULL, tu_tensor(ctx, dt, 1, &one, bv, 0), eps);
        TEST_CHECK(y != NULL);
        for (int i = 0; i < 3 && y; i++)
            TEST_CHECK(tg_tensor_get(y, i) == 0.25);

        /* 1-D x is a single row; a large offset loses nothing */
        const double ov[3] = {1e4 - 1, 1e4, 1e4 + 1};
        y = tg_layer_norm(ctx, tu_tensor(ctx, dt, TG_DIMS(3), ov, 0), NULL, NULL, eps);
        double s = 1 / sqrt(2.0 / 3 + eps);
        TEST_CHECK(y && y->ndim == 1);
        TEST_CLOSE(tg_tensor_get(y, 0), -s, 0, tol);
        TEST_CLOSE(tg_tensor_get(y, 2), s, 0, tol);
        tg_ctx_free(ctx);
    }
}

/* NULL gamma/beta equal ones/zeros exactly; the given one still gets its gradient. */
static void test_optional_affine(void)
{
    tg_ctx_opts o = { .seed = 5 };
    tg_ctx *ctx = tg_ctx_new(&o);
    for (int op = 0; op < 2; op++) {
        tg_tensor *x = tg_tensor_randn(ctx, TG_F64, TG_DIMS(3, 4), 0, 1);
        int64_t d = 4;
        tg_tensor *ones = tg_tensor_fill(ctx, TG_F64, 1, &d, 1), *zeros = tg_tensor_zeros(ctx, TG_F64, 1, &d);
        tg_tensor *g = tg_tensor_randn(ctx, TG_F64, 1, &d, 1, 0.2), *b = tg_tensor_randn(ctx, TG_F64, 1, &d, 0, 1);
        tg_tensor_requires_grad(g);
        tg_tensor_requires_grad(b);
#define NORM(x, g, b) (op ? tg_layer_norm(ctx, x, g, b, 1e-5) : tg_batch_norm(ctx, x, g, b, 1e-5, NULL))
        tg_tensor *pairs[3][2] = {
            { NORM(x, NULL, NULL), NORM(x, ones, zeros) },
            { NORM(x, g, NULL), NORM(x, g, zeros) },
            { NORM(x, NULL, b), NORM(x, ones, b) },
        };
        for (int k = 0; k < 3; k++) {
            TEST_CHECK(pairs[k][0] && pairs[k][1]);
            if (pairs[k][0] && pairs[k][1])
                TEST_CHECK(memcmp(pairs[k][0]->data, pairs[k][1]->data, sizeof(double) * 12) == 0);
        }
        TEST_CHECK(!(pairs[0][0]->flags & TG_TENSOR_REQUIRES_GRAD));   /* nothing to differentiate */
        tg_tensor *seed = tg_tensor_randn(ctx, TG_F64, TG_DIMS(3, 4), 0, 1);
        TEST_CHECK(tg_backward_seed(ctx, pairs[1][0], seed) == TG_OK);
        TEST_CHECK(tg_backward_seed(ctx, pairs[2][0], seed) == TG_OK);
        double gg[4], gb[4];
        for (int j = 0; j < 4; j++) {
            gg[j] = tg_tensor_grad_get(g, j);
            gb[j] = tg_tensor_grad_get(b, j);
        }
        tg_tensor_zero_grad(g);
        tg_tensor_zero_grad(b);
        TEST_CHECK(tg_backward_seed(ctx, pairs[1][1], seed) == TG_OK);
        TEST_CHECK(tg_backward_seed(ctx, pairs[2][1], seed) == TG_OK);
        for (int j = 0; j < 4; j++) {
            TEST_CHECK(gg[j] == tg_tensor_grad_get(g, j) && gg[j] != 0);
            TEST_CHECK(gb[j] == tg_tensor_grad_get(b, j) && gb[j] != 0);
        }
#undef NORM
    }
    tg_ctx_free(ctx);
}

/* One tensor as several inputs: the gradients add up. */
static void test_aliased(void)
{
    tg_ctx_opts o = { .seed = 9 };
    tg_ctx *ctx = tg_ctx_new(&o);
    /* layer_norm(x, x, x) on 1-D x vs copies */
    const double xv[5] = {0.3, -1.2, 0.8, 1.9, -0.4};
    tg_tensor *x = tu_tensor(ctx, TG_F64, TG_DIMS(5), xv, 1);
    tg_tensor *xa = tu_tensor(ctx, TG_F64, TG_DIMS(5), xv, 1), *xg = tu_tensor(ctx, TG_F64, TG_DIMS(5), xv, 1),
              *xb = tu_tensor(ctx, TG_F64, TG_DIMS(5), xv, 1);
    tg_tensor *seed = tg_tensor_randn(ctx, TG_F64, TG_DIMS(5), 0, 1);
    TEST_CHECK(tg_backward_seed(ctx, tg_layer_norm(ctx, x, x, x, 1e-5), seed) == TG_OK);
    TEST_CHECK(tg_backward_seed(ctx, tg_layer_norm(ctx, xa, xg, xb, 1e-5), seed) == TG_OK);
    for (int i = 0; i < 5; i++) {
        double want = tg_tensor_grad_get(xa, i) + tg_tensor_grad_get(xg, i) + tg_tensor_grad_get(xb, i);
        TEST_CLOSE(tg_tensor_grad_get(x, i), want, 1e-15, 1e-14);
    }
    /* batch_norm(x, g, g) */
    const double bv[6] = {0.3, -1.2, 0.8, 1.9, -0.4, 0.1}, gv[2] = {0.7, -1.1};
    tg_tensor *bx = tu_tensor(ctx, TG_F64, TG_DIMS(3, 2), bv, 0);
    tg_tensor *g = tu_tensor(ctx, TG_F64, TG_DIMS(2), gv, 1), *g1 = tu_tensor(ctx, TG_F64, TG_DIMS(2), gv, 1),
              *g2 = tu_tensor(ctx, TG_F64, TG_DIMS(2), gv, 1);
    tg_tensor *s2 = tg_tensor_randn(ctx, TG_F64, TG_DIMS(3, 2), 0, 1);
    TEST_CHECK(tg_backward_seed(ctx, tg_batch_norm(ctx, bx, g, g, 1e-5, NULL), s2) == TG_OK);
    TEST_CHECK(tg_backward_seed(ctx, tg_batch_norm(ctx, bx, g1, g2, 1e-5, NULL), s2) == TG_OK);
    for (int i = 0; i < 2; i++)
        TEST_CLOSE(tg_tensor_grad_get(g, i), tg_tensor_grad_get(g1, i) + tg_tensor_grad_get(g2, i), 1e-15, 1e-14);
    tg_ctx_free(ctx);
}

/* ---- descriptors ----------------------------------------------------------- */

static void test_descriptors(void)
{
    static const char *const names[] = { "batch_norm", "layer_norm", "dropout" };
    for (int i = 0; i < 3; i++)
        tu_check_op(names[i], 2, TU_FWD_FLOPS | TU_EDGE_SHAPE);
}

/* ---- dropout --------------------------------------------------------------- */

/* keep bits of the first 32 elements for p = 0.3, from an independent
 * Python implementation of the documented hash. */
static void test_dropout_golden(void)
{
    static const struct { uint64_t seed; const char *bits; } gold[] = {
        { 42, "11101001011000111110111011111111" },
        { 0xfedcba9876543210ull, "11011100011011101010111110111110" },
    };
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        tg_ctx *ctx = tg_ctx_new(NULL);
        tg_tensor *x = tg_tensor_fill(ctx, dt, TG_DIMS(4, 8), 1.0);
        for (int s = 0; s < 2; s++) {
            tg_tensor *y = tg_dropout(ctx, x, 0.3, gold[s].seed);
            TEST_CHECK(y && y->dtype == dt && y->ndim == 2 && y->shape[1] == 8);
            for (int i = 0; i < 32 && y; i++) {
                int kept = tg_tensor_get(y, i) != 0;
                TEST_CHECK_MSG(kept == (gold[s].bits[i] == '1'), "%s seed %llx element %d", tg_dtype_name(dt),
                               (unsigned long long)gold[s].seed, i);
            }
        }
        tg_ctx_free(ctx);
    }
}

static void test_dropout_stats(void)
{
    const double p = 0.3;
    const int64_t n = 100000;
    tg_ctx_opts o = { .seed = 3, .arena_bytes = 8u << 20 };
    tg_ctx *ctx = tg_ctx_new(&o);
    for (int f = 0; f < 2; f++) {
        tg_dtype dt = f ? TG_F32 : TG_F64;
        tg_tensor *x = tg_tensor_rand(ctx, dt, 1, &n, 0.5, 2);   /* never 0: kept <=> y != 0 */
        TEST_CHECK(tg_tensor_requires_grad(x) == TG_OK);
        tg_tensor *y = tg_dropout(ctx, x, p, 1234);
        TEST_CHECK(y != NULL);
        if (!y)
            continue;
        int64_t kept = 0, bad_scale = 0, bad_drop = 0;
        double far = 0;
        TG_NO_GRAD(ctx) {
            for (int64_t i = 0; i < n; i++) {
                double xi = tg_tensor_get(x, i), yi = tg_tensor_get(y, i);
                if (yi != 0) {
                    kept++;
                    double exact = f ? (double)((float)xi * (float)(1 / (1 - p))) : xi * (1 / (1 - p));
                    bad_scale += yi != exact;
                    double rel = fabs(yi - xi / (1 - p)) / (xi / (1 - p));
                    far = rel > far ? rel : far;
                } else {
                    bad_drop += yi != 0;
                }
            }
        }
        /* binomial: std of the kept fraction is sqrt(p (1 - p) / n) = 0.00145 */
        double frac = (double)kept / (double)n, sd = sqrt(p * (1 - p) / (double)n);
        TEST_CHECK_MSG(fabs(frac - (1 - p)) < 4 * sd, "kept fraction %.5f, expected %.2f +- %.5f", frac, 1 - p, 4 * sd);
        TEST_CHECK(bad_scale == 0 && bad_drop == 0);
        TEST_CHECK_MSG(far <= (f ? 1.2e-7 : 2.3e-16), "kept y differs from x/(1-p) by %.3g", far);

        /* the VJP recomputes the same mask: dx = dy m */
        tg_tensor *seed = tg_tensor_fill(ctx, dt, 1, &n, 2.0);
        TEST_CHECK(tg_backward_seed(ctx, y, seed) == TG_OK);
        int64_t mism = 0;
        for (int64_t i = 0; i < n; i++) {
            double want = tg_tensor_get(y, i) != 0 ? 2.0 * (f ? (double)(float)(1 / (1 - p)) : 1 / (1 - p)) : 0.0;
            mism += tg_tensor_grad_get(x, i) != want;
        }
        TEST_CHECK_MSG(mism == 0, "%lld VJP elements disagree with the forward mask", (long long)mism);

        /* same seed: same output (also under another thread count);
         * another seed: another mask; f32 and f64 share the mask */
        tg_ctx_set_threads(ctx, 2);
        tg_tensor *y2 = tg_dropout(ctx, x, p, 1234), *y3 = tg_dropout(ctx, x, p, 1235);
        tg_ctx_set_threads(ctx, 1);
        TEST_CHECK(y2 && memcmp(y->data, y2->data, (size_t)n * tg_dtype_size(dt)) == 0);
        int64_t differ = 0;
        for (int64_t i = 0; y3 && i < n; i++)
            differ += (tg_tensor_get(y, i) != 0) != (tg_tensor_get(y3, i) != 0);
        TEST_CHECK_MSG(differ > n / 4, "seeds 1234 and 1235 differ in %lld places", (long long)differ);
        tg_tensor *yo = tg_dropout(ctx, tg_tensor_cast(ctx, x, f ? TG_F64 : TG_F32), p, 1234);
        int64_t cross = 0;
        for (int64_t i = 0; yo && i < n; i++)
            cross += (tg_tensor_get(y, i) != 0) != (tg_tensor_get(yo, i) != 0);
        TEST_CHECK(yo && cross == 0);

        /* p = 0 is the identity, bit for bit; the gradient passes unchanged */
        tg_tensor_zero_grad(x);
        tg_tensor *y0 = tg_dropout(ctx, x, 0.0, 99);
        TEST_CHECK(y0 && memcmp(y0->data, x->data, (size_t)n * tg_dtype_size(dt)) == 0);
        TEST_CHECK(tg_backward_seed(ctx, y0, seed) == TG_OK);
        int64_t g0 = 0;
        for (int64_t i = 0; i < n; i++)
            g0 += tg_tensor_grad_get(x, i) != 2.0;
        TEST_CHECK(g0 == 0);
        tg_ctx_reset(ctx);
    }
    /* a large p keeps about 1 - p as well, scaled by 1/(1 - p) = 10 */
    tg_tensor *x = tg_tensor_fill(ctx, TG_F64, 1, &n, 1.0), *y = tg_dropout(ctx, x, 0.9, 7);
    int64_t kept = 0, bad = 0;
    for (int64_t i = 0; y && i < n; i++) {
        double v = tg_tensor_get(y, i);
        kept += v != 0;
        bad += v != 0 && v != 1 / (1 - 0.9);
    }
    TEST_CHECK(y && fabs((double)kept / (double)n - 0.1) < 4 * sqrt(0.09 / (double)n) && bad == 0);
    tg_ctx_free(ctx);
}

/* ---- errors --------------------------------------------------------------- */

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F64, TG_DIMS(4, 3), -1, 1);
    tg_tensor *g3 = tg_tensor_fill(ctx, TG_F64, TG_DIMS(3), 1), *g4 = tg_tensor_fill(ctx, TG_F64, TG_DIMS(4), 1);
    tg_tensor *g2d = tg_tensor_fill(ctx, TG_F64, TG_DIMS(1, 3), 1), *g32 = tg_tensor_fill(ctx, TG_F32, TG_DIMS(3), 1);
    tg_tensor *xi = tg_tensor_zeros(ctx, TG_I32, TG_DIMS(4, 3));

    /* batch_norm */
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, x, g4, g3, 1e-5, NULL), TG_ERR_SHAPE,
                 "batch_norm: gamma shape 4 does not match axis 1 of x (4x3): expected 3");
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, x, g3, g2d, 1e-5, NULL), TG_ERR_SHAPE,
                 "batch_norm: beta shape 1x3 does not match axis 1 of x (4x3)");
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, x, g32, NULL, 1e-5, NULL), TG_ERR_ARG,
                 "batch_norm: mixed dtypes (f64 and f32)");
    /* one value per channel fails (PyTorch's wording); one sample with two
     * spatial values is fine, as in PyTorch */
    tg_tensor *n1 = tg_tensor_rand(ctx, TG_F64, TG_DIMS(1, 3), -1, 1);
    tg_tensor *n1s1 = tg_tensor_rand(ctx, TG_F64, TG_DIMS(1, 3, 1), -1, 1);
    tg_tensor *n1s2 = tg_tensor_rand(ctx, TG_F64, TG_DIMS(1, 3, 2), -1, 1);
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, n1, g3, g3, 1e-5, NULL), TG_ERR_SHAPE,
                 "batch_norm: expected more than 1 value per channel when training, got input of shape 1x3");
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, n1s1, NULL, NULL, 1e-5, NULL), TG_ERR_SHAPE,
                 "more than 1 value per channel");
    TEST_CHECK(tg_batch_norm(ctx, n1s2, NULL, NULL, 1e-5, NULL) != NULL);
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, g3, NULL, NULL, 1e-5, NULL), TG_ERR_SHAPE,
                 "batch_norm: x must be (N, C, ...) with at least 2 dims, got 3");
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, x, g3, g3, 0, NULL), TG_ERR_ARG,
                 "batch_norm: eps must be finite and > 0, got 0");
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, x, g3, g3, -1e-5, NULL), TG_ERR_ARG, "eps must be finite and > 0");
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, x, g3, g3, NAN, NULL), TG_ERR_ARG, "eps must be finite and > 0");
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, xi, NULL, NULL, 1e-5, NULL), TG_ERR_ARG,
                 "batch_norm: input 0 is i32, expected f32 or f64");
    TU_EXPECT_ERR(ctx, tg_batch_norm(ctx, NULL, g3, g3, 1e-5, NULL), TG_ERR_ARG, "batch_norm: input 0 is NULL");

    /* layer_norm */
    TU_EXPECT_ERR(ctx, tg_layer_norm(ctx, x, g4, NULL, 1e-5), TG_ERR_SHAPE,
                 "layer_norm: gamma shape 4 does not match axis 1 of x (4x3): expected 3");
    TU_EXPECT_ERR(ctx, tg_layer_norm(ctx, x, NULL, g4, 1e-5), TG_ERR_SHAPE, "layer_norm: beta shape 4");
    TU_EXPECT_ERR(ctx, tg_layer_norm(ctx, x, g3, g32, 1e-5), TG_ERR_ARG, "layer_norm: mixed dtypes (f64 and f32)");
    TU_EXPECT_ERR(ctx, tg_layer_norm(ctx, tg_tensor_scalar(ctx, TG_F64, 1), NULL, NULL, 1e-5), TG_ERR_SHAPE,
                 "layer_norm: x must have at least 1 dim, got a scalar");
    TU_EXPECT_ERR(ctx, tg_layer_norm(ctx, x, NULL, NULL, 0), TG_ERR_ARG,
                 "layer_norm: eps must be finite and > 0, got 0");
    TU_EXPECT_ERR(ctx, tg_layer_norm(ctx, x, NULL, NULL, INFINITY), TG_ERR_ARG, "eps must be finite");
    TU_EXPECT_ERR(ctx, tg_layer_norm(ctx, xi, NULL, NULL, 1e-5), TG_ERR_ARG, "layer_norm: input 0 is i32");

    /* dropout */
    TU_EXPECT_ERR(ctx, tg_dropout(ctx, x, 1.0, 1), TG_ERR_ARG, "dropout: p must be in [0, 1), got 1");
    TU_EXPECT_ERR(ctx, tg_dropout(ctx, x, -0.1, 1), TG_ERR_ARG, "dropout: p must be in [0, 1), got -0.1");
    TU_EXPECT_ERR(ctx, tg_dropout(ctx, x, NAN, 1), TG_ERR_ARG, "dropout: p must be in [0, 1)");
    TU_EXPECT_ERR(ctx, tg_dropout(ctx, xi, 0.5, 1), TG_ERR_ARG, "dropout: input 0 is i32, expected f32 or f64");
    TU_EXPECT_ERR(ctx, tg_dropout(ctx, NULL, 0.5, 1), TG_ERR_ARG, "dropout: input 0 is NULL");

    /* a sticky error: every op returns NULL at once, allocating nothing */
    tg_ctx_fail(ctx, TG_ERR_STATE, "earlier failure");
    size_t used = tg_ctx_arena_used(ctx);
    TEST_CHECK(tg_batch_norm(ctx, x, NULL, NULL, 1e-5, NULL) == NULL);
    TEST_CHECK(tg_layer_norm(ctx, x, NULL, NULL, 1e-5) == NULL);
    TEST_CHECK(tg_dropout(ctx, x, 0.5, 1) == NULL);
    TEST_CHECK(tg_ctx_arena_used(ctx) == used && strcmp(tg_ctx_error(ctx), "earlier failure") == 0);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_layer_norm(ctx, x, NULL, NULL, 1e-5) != NULL);
    tg_ctx_free(ctx);
}

/* Grad mode off: the ops compute and record nothing; stats are still written. */
static void test_no_grad(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_randn(ctx, TG_F32, TG_DIMS(5, 2, 3), 0, 1);
    TEST_CHECK(tg_tensor_requires_grad(x) == TG_OK);
    float mean[2] = {NAN, NAN}, var[2] = {NAN, NAN};
    tg_bn_stats st = { mean, NULL };
    TG_NO_GRAD(ctx) {
        tg_tensor *y = tg_batch_norm(ctx, x, NULL, NULL, 1e-5, &st);
        TEST_CHECK(y && !(y->flags & TG_TENSOR_REQUIRES_GRAD));
        TEST_CHECK(tg_dropout(ctx, tg_layer_norm(ctx, x, NULL, NULL, 1e-5), 0.5, 3) != NULL);
    }
    TEST_CHECK(tg_tape_size(ctx) == 0);
    TEST_CHECK(isfinite(mean[0]) && isfinite(mean[1]) && isnan(var[0]) && isnan(var[1]));
    double m0 = 0;
    for (int i = 0; i < 5; i++)
        for (int s = 0; s < 3; s++)
            m0 += tg_tensor_get(x, i * 6 + s);
    TEST_CLOSE(mean[0], m0 / 15, 1e-6, 1e-6);
    tg_ctx_free(ctx);
}

/* ---- f32 at sizes the fast paths take -----------------------------------
 * layer_norm rows (AVX-512: 32-lane sums, masked tails) and batch_norm on
 * (N, C) (8 rows at a time; the elementwise parts in f32 on per-channel
 * coefficients) against the formulas evaluated plainly in double on the
 * same f32 inputs (the formulas themselves are checked by the mpmath
 * references above), with and without a large offset (1e3 + N(0, 1): x -
 * mu must not lose mu's rounding to float). */
static void norm_ref(int is_bn, int64_t R, int64_t D, const float *x, const float *g, const float *b,
                     const float *up, double *y, double *dx, double *dg, double *db)
{
    /* layer_norm: groups are rows (stride 1 within, D between); batch_norm:
     * groups are columns (stride D within, 1 between) */
    int64_t groups = is_bn ? D : R, len = is_bn ? R : D, in = is_bn ? D : 1, out = is_bn ? 1 : D;
    for (int64_t j = 0; j < D; j++)
        dg[j] = db[j] = 0;
    for (int64_t q = 0; q < groups; q++) {
        double mu = 0, var = 0, s1 = 0, s2 = 0;
        for (int64_t k = 0; k < len; k++)
            mu += x[q * out + k * in];
        mu /= (double)len;
        for (int64_t k = 0; k < len; k++)
            var += ((double)x[q * out + k * in] - mu) * ((double)x[q * out + k * in] - mu);
        double rs = 1 / sqrt(var / (double)len + 1e-5);
        for (int64_t k = 0; k < len; k++) {
            int64_t e = q * out + k * in, c = is_bn ? q : k;
            double xh = ((double)x[e] - mu) * rs, gu = (double)g[c] * up[e];
            y[e] = xh * g[c] + b[c];
            dg[c] += up[e] * xh;
            db[c] += up[e];
            s1 += gu;
            s2 += gu * xh;
        }
        for (int64_t k = 0; k < len; k++) {
            int64_t e = q * out + k * in, c = is_bn ? q : k;
            double xh = ((double)x[e] - mu) * rs;
            dx[e] = rs / (double)len * ((double)len * g[c] * up[e] - s1 - xh * s2);
        }
    }
}

static void test_f32_paths(void)
{
    static const struct { int is_bn; int64_t R, D; } cs[] = {
        { 0, 9, 77 }, { 0, 5, 1024 }, { 0, 3, 16 }, { 1, 19, 37 }, { 1, 64, 48 }, { 1, 8, 5 },
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
        for (int off = 0; off < 2; off++) {
            int64_t R = cs[k].R, D = cs[k].D, n = R * D;
            tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 11 + k });
            tg_tensor *x = tg_tensor_randn(ctx, TG_F32, TG_DIMS(R, D), off ? 1e3 : 0, 1);
            tg_tensor *g = tg_tensor_randn(ctx, TG_F32, TG_DIMS(D), 1, 0.5), *b = tg_tensor_randn(ctx, TG_F32, TG_DIMS(D), 0, 1);
            tg_tensor *up = tg_tensor_randn(ctx, TG_F32, TG_DIMS(R, D), 0, 1);
            double *want = malloc(sizeof(double) * (size_t)(2 * n + 2 * D));
            TEST_CHECK(x && g && b && up && want);
            if (!x || !g || !b || !up || !want) {
                free(want);
                tg_ctx_free(ctx);
                continue;
            }
            tg_tensor_requires_grad(x);
            tg_tensor_requires_grad(g);
            tg_tensor_requires_grad(b);
            tg_tensor *y = cs[k].is_bn ? tg_batch_norm(ctx, x, g, b, 1e-5, NULL) : tg_layer_norm(ctx, x, g, b, 1e-5);
            TEST_CHECK(y && tg_backward_seed(ctx, y, up) == TG_OK);
            norm_ref(cs[k].is_bn, R, D, x->data, g->data, b->data, up->data, want, want + n, want + 2 * n,
                     want + 2 * n + D);
            char what[64];
            snprintf(what, sizeof what, "%s %lldx%lld offset %d", cs[k].is_bn ? "batch_norm" : "layer_norm",
                     (long long)R, (long long)D, off);
            tu_check_values(what, y, 0, want, n, 2e-6, 2e-6);
            tu_check_values(what, x, 1, want + n, n, 2e-5, 2e-6);
            tu_check_values(what, g, 1, want + 2 * n, D, 2e-5, 2e-6);
            tu_check_values(what, b, 1, want + 2 * n + D, D, 2e-5, 2e-6);
            free(want);
            tg_ctx_free(ctx);
        }
}

/* The f32 paths hand a row or channel to the double formula where floats
 * would overflow: a constant row with eps = 1e-80 (rstd 1e40), gamma near
 * FLT_MAX, values near +-FLT_MAX, g dy beyond float. Each result against
 * the same op in f64 on the same values (finite there). */
static void test_f32_extremes(void)
{
    static const struct { int is_bn; int64_t R, D; double eps, x0, x1, g, dy; } cs[] = {
        { 0, 2, 5, 1e-80, 3, 3, 1, 1 },        /* constant rows, tiny eps  */
        { 1, 5, 2, 1e-80, 3, 3, 1, 1 },        /* constant channels        */
        { 1, 4, 2, 1e-5, 3, 3, 3e38, 1 },      /* gamma near FLT_MAX       */
        { 0, 1, 3, 1e-5, 3e38, -3e38, 1, 1 },  /* x - mu beyond float      */
        { 1, 3, 1, 1e-5, 3e38, -3e38, 1, 1 },
        { 0, 2, 33, 1e-5, 1, -2, 3e38, 2 },    /* g dy beyond float        */
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        tg_tensor *t[2][4];
        for (int f = 0; f < 2; f++) {
            tg_dtype dt = f ? TG_F32 : TG_F64;
            tg_ctx *ctx = tg_ctx_new(NULL);
            int64_t R = cs[k].R, D = cs[k].D, n = R * D;
            tg_tensor *x = tg_tensor_new(ctx, dt, TG_DIMS(R, D)), *up = tg_tensor_fill(ctx, dt, TG_DIMS(R, D), cs[k].dy);
            tg_tensor *g = tg_tensor_fill(ctx, dt, TG_DIMS(D), cs[k].g), *b = tg_tensor_fill(ctx, dt, TG_DIMS(D), 0.5);
            for (int64_t e = 0; x && e < n; e++)   /* x0 first (row-major), x1 after */
                tg_tensor_set(x, e, e == 0 ? cs[k].x0 : cs[k].x1 + (cs[k].dy == 2 ? 0.01 * (double)(e % 7) : 0));
            tg_tensor_requires_grad(x);
            tg_tensor *y = cs[k].is_bn ? tg_batch_norm(ctx, x, g, b, cs[k].eps, NULL)
                                       : tg_layer_norm(ctx, x, g, b, cs[k].eps);
            TEST_CHECK_MSG(y && tg_backward_seed(ctx, y, up) == TG_OK, "case %zu: %s", k, tg_ctx_error(ctx));
            double *vals = malloc(sizeof(double) * 2 * (size_t)n);
            for (int64_t e = 0; vals && y && e < n; e++) {
                vals[e] = tg_tensor_get(y, e);
                vals[n + e] = x->grad ? tg_tensor_grad_get(x, e) : NAN;
            }
            t[f][0] = (tg_tensor *)vals;
            tg_ctx_free(ctx);
        }
        double *w = (double *)t[0][0], *got = (double *)t[1][0];
        int64_t n = cs[k].R * cs[k].D;
        int bad = 0;
        for (int64_t e = 0; w && got && e < 2 * n; e++) {
            double want = (double)(float)w[e];
            /* beyond float in f64 too: the same infinity */
            int ok = isfinite(w[e]) && (got[e] == want || (isfinite(want) && fabs(got[e] - want) <=
                                                           1e-5 * fabs(want) + (e < n ? 1e-6 : 1e-6 * fabs(cs[k].g))));
            if (!ok && bad++ < 3)
                TEST_CHECK_MSG(ok, "case %zu %s[%lld]: f32 %.9g, f64 %.9g", k, e < n ? "y" : "dx",
                               (long long)(e % n), got[e], w[e]);
        }
        TEST_CHECK_MSG(w && got && bad == 0, "case %zu: %d values off", k, bad);
        free(w);
        free(got);
    }
}

int main(void)
{
    test_reference();
    test_f32_paths();
    test_f32_extremes();
    test_bn_hand();
    test_ln_hand();
    test_optional_affine();
    test_aliased();
    test_descriptors();
    test_dropout_golden();
    test_dropout_stats();
    test_errors();
    test_no_grad();
    return test_report("test_norm");
}
