/* test_reduce.c — the reduce family (sum, mean, var, max, min, logsumexp):
 * hand-computed cases, ties, special values, every axis set of a 4-d tensor
 * against a naive loop, f32 accumulation, the descriptors, and errors.
 * (Every sample variant is gradient-checked by test_ops_grad.c, the PyTorch
 * reference cases are in test_reference.c.) */
#include "tapegrad.h"
#include "test.h"
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

static tg_tensor *call_reduce(tg_ctx *ctx, const char *op, tg_tensor *x, const int *axes, int n_axes,
                              int keepdims, int correction)
{
    if (!strcmp(op, "sum"))
        return tg_sum(ctx, x, axes, n_axes, keepdims);
    if (!strcmp(op, "mean"))
        return tg_mean(ctx, x, axes, n_axes, keepdims);
    if (!strcmp(op, "var"))
        return tg_var(ctx, x, axes, n_axes, keepdims, correction);
    if (!strcmp(op, "max"))
        return tg_max(ctx, x, axes, n_axes, keepdims);
    if (!strcmp(op, "min"))
        return tg_min(ctx, x, axes, n_axes, keepdims);
    if (!strcmp(op, "logsumexp"))
        return tg_logsumexp(ctx, x, axes, n_axes, keepdims);
    return NULL;
}

/* ---- small cases by hand --------------------------------------------------- */

static void test_hand(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    static const double v[6] = {1, 2, 3, 4, 5, 6};   /* [[1 2 3] [4 5 6]] */
    static const int64_t s23[2] = {2, 3}, s3[1] = {3}, s2[1] = {2}, s21[2] = {2, 1}, s11[2] = {1, 1};
    tg_tensor *x = tg_tensor_from(ctx, TG_F64, 2, s23, v);
    int a0[1] = {0}, a1[1] = {1}, am1[1] = {-1}, a01[2] = {0, 1}, a10[2] = {-1, 0};

    tg_tensor *y = tg_sum(ctx, x, a0, 1, 0);
    TEST_CHECK(tu_shape_is(y, 1, s3));
    TEST_CHECK(tg_tensor_get(y, 0) == 5 && tg_tensor_get(y, 1) == 7 && tg_tensor_get(y, 2) == 9);
    y = tg_sum(ctx, x, a1, 1, 0);
    TEST_CHECK(tu_shape_is(y, 1, s2) && tg_tensor_get(y, 0) == 6 && tg_tensor_get(y, 1) == 15);
    y = tg_sum(ctx, x, am1, 1, 1);
    TEST_CHECK(tu_shape_is(y, 2, s21) && tg_tensor_get(y, 0) == 6 && tg_tensor_get(y, 1) == 15);
    y = tg_sum(ctx, x, a01, 2, 0);
    TEST_CHECK(y && y->ndim == 0 && y->numel == 1 && tg_tensor_get(y, 0) == 21);
    y = tg_sum(ctx, x, a10, 2, 1);
    TEST_CHECK(tu_shape_is(y, 2, s11) && tg_tensor_get(y, 0) == 21);
    y = tg_sum(ctx, x, NULL, 0, 1);
    TEST_CHECK(tu_shape_is(y, 2, s11) && tg_tensor_get(y, 0) == 21);
    y = tg_sum_all(ctx, x);
    TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 21);

    y = tg_mean(ctx, x, a0, 1, 0);
    TEST_CHECK(tu_shape_is(y, 1, s3) && tg_tensor_get(y, 0) == 2.5 && tg_tensor_get(y, 2) == 4.5);
    y = tg_mean_all(ctx, x);
    TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 3.5);

    y = tg_var(ctx, x, a1, 1, 0, 0);               /* rows 1 2 3 and 4 5 6: 2/3 */
    TEST_CLOSE(tg_tensor_get(y, 0), 2.0 / 3, 0, 1e-15);
    TEST_CLOSE(tg_tensor_get(y, 1), 2.0 / 3, 0, 1e-15);
    y = tg_var(ctx, x, a1, 1, 0, 1);
    TEST_CLOSE(tg_tensor_get(y, 1), 1.0, 0, 1e-15);
    y = tg_var(ctx, x, NULL, 0, 0, 1);             /* 1..6: 3.5 */
    TEST_CLOSE(tg_tensor_get(y, 0), 3.5, 0, 1e-15);

    y = tg_max(ctx, x, a0, 1, 0);
    TEST_CHECK(tg_tensor_get(y, 0) == 4 && tg_tensor_get(y, 1) == 5 && tg_tensor_get(y, 2) == 6);
    y = tg_min(ctx, x, am1, 1, 1);
    TEST_CHECK(tu_shape_is(y, 2, s21) && tg_tensor_get(y, 0) == 1 && tg_tensor_get(y, 1) == 4);
    y = tg_max(ctx, x, NULL, 0, 0);
    TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 6);

    y = tg_logsumexp(ctx, x, a1, 1, 0);
    TEST_CLOSE(tg_tensor_get(y, 0), 3 + log(1 + exp(-1) + exp(-2)), 0, 1e-15);
    TEST_CLOSE(tg_tensor_get(y, 1), 6 + log(1 + exp(-1) + exp(-2)), 0, 1e-15);
    double l3[2] = {0, log(3.0)};
    y = tg_logsumexp(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(2), l3), NULL, 0, 0);
    TEST_CLOSE(tg_tensor_get(y, 0), log(4.0), 0, 1e-15);
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);

    /* VJPs by hand, and accumulation (+=) into a grad that is not zero. */
    TEST_CHECK(tg_tensor_requires_grad(x) == TG_OK);
    double s123[3] = {1, 2, 3}, s36[2] = {3, 6};
    y = tg_sum(ctx, x, a0, 1, 0);
    TEST_CHECK(tg_backward_seed(ctx, y, tg_tensor_from(ctx, TG_F64, TG_DIMS(3), s123)) == TG_OK);
    for (int i = 0; i < 6; i++)
        TEST_CHECK(tg_tensor_grad_get(x, i) == s123[i % 3]);
    y = tg_mean(ctx, x, a1, 1, 0);
    TEST_CHECK(tg_backward_seed(ctx, y, tg_tensor_from(ctx, TG_F64, TG_DIMS(2), s36)) == TG_OK);
    for (int i = 0; i < 6; i++)
        TEST_CHECK(tg_tensor_grad_get(x, i) == s123[i % 3] + (i < 3 ? 1 : 2));
    tg_tensor_zero_grad(x);
    TEST_CHECK(tg_backward(ctx, tg_var(ctx, x, NULL, 0, 0, 0)) == TG_OK);  /* 2 (x - 3.5) / 6 */
    for (int i = 0; i < 6; i++)
        TEST_CLOSE(tg_tensor_grad_get(x, i), 2 * (v[i] - 3.5) / 6, 0, 1e-15);
    tg_ctx_free(ctx);
}

/* ---- max / min ties: the gradient is split evenly among tied elements ---- */

static void test_ties(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        tg_ctx *ctx = tg_ctx_new(NULL);
        static const double a[4] = {3, 1, 3, 2}, b[4] = {2, 2, 2, 5};
        static const int64_t s4[1] = {4};
        tg_tensor *x = tu_tensor(ctx, dt, 1, s4, a, 1);
        tg_tensor *y = tg_max(ctx, x, NULL, 0, 0);
        TEST_CHECK(y && tg_tensor_get(y, 0) == 3);
        TEST_CHECK(tg_backward(ctx, y) == TG_OK);
        TEST_CHECK(tg_tensor_grad_get(x, 0) == 0.5 && tg_tensor_grad_get(x, 1) == 0 &&
                   tg_tensor_grad_get(x, 2) == 0.5 && tg_tensor_grad_get(x, 3) == 0);

        tg_tensor *z = tu_tensor(ctx, dt, 1, s4, b, 1);
        double three = 3;
        y = tg_min(ctx, z, NULL, 0, 1);
        TEST_CHECK(tg_backward_seed(ctx, y, tu_tensor(ctx, dt, 1, (const int64_t[]){1}, &three, 0)) == TG_OK);
        for (int i = 0; i < 3; i++)
            TEST_CLOSE(tg_tensor_grad_get(z, i), 1.0, 0, 1e-7);
        TEST_CHECK(tg_tensor_grad_get(z, 3) == 0);

        /* Column path (axis 0 of 3x2) and ties within a column. */
        static const double c[6] = {1, 5, 1, 2, 0, 5}, dyv[2] = {2, 4}, want[6] = {1, 2, 1, 0, 0, 2};
        tg_tensor *w = tu_tensor(ctx, dt, 2, (const int64_t[]){3, 2}, c, 1);
        int ax0 = 0;
        y = tg_max(ctx, w, &ax0, 1, 0);
        TEST_CHECK(y && tg_tensor_get(y, 0) == 1 && tg_tensor_get(y, 1) == 5);
        TEST_CHECK(tg_backward_seed(ctx, y, tu_tensor(ctx, dt, 1, (const int64_t[]){2}, dyv, 0)) == TG_OK);
        for (int i = 0; i < 6; i++)
            TEST_CHECK_MSG(tg_tensor_grad_get(w, i) == want[i], "column ties: dx[%d] = %g", i,
                           tg_tensor_grad_get(w, i));
        tg_ctx_free(ctx);
    }
}

/* ---- special values, empty axes, scalars, var with too few elements ------- */

static void test_special(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_poison(ctx, 1);
    double ninf[3] = {-INFINITY, -INFINITY, -INFINITY}, pinf[3] = {1, INFINITY, -INFINITY};
    tg_tensor *x = tg_tensor_from(ctx, TG_F64, TG_DIMS(3), ninf);
    tg_tensor_requires_grad(x);
    tg_tensor *y = tg_logsumexp(ctx, x, NULL, 0, 0);
    TEST_CHECK(y && tg_tensor_get(y, 0) == -INFINITY);
    TEST_CHECK(tg_backward(ctx, y) == TG_OK);
    for (int i = 0; i < 3; i++)
        TEST_CHECK(tg_tensor_grad_get(x, i) == 0);       /* no NaN */
    y = tg_logsumexp(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(3), pinf), NULL, 0, 0);
    TEST_CHECK(y && tg_tensor_get(y, 0) == INFINITY);
    /* Rows over the last axis into a fresh (poisoned) gradient, f32 and
     * f64: the all -inf row gets zeros, the other the softmax. */
    for (int d = 0; d < 2; d++) {
        double rows[2][3] = { {-INFINITY, -INFINITY, -INFINITY}, {0.5, -1, 2} };
        tg_tensor *x2 = tu_tensor(ctx, d ? TG_F32 : TG_F64, 2, (const int64_t[]){2, 3}, &rows[0][0], 1);
        tg_tensor *l = tg_logsumexp(ctx, tg_add_scalar(ctx, x2, 0.0), (const int[]){1}, 1, 0);
        TEST_CHECK_MSG(l && tg_backward(ctx, tg_sum_all(ctx, l)) == TG_OK, "%s", tg_ctx_error(ctx));
        double z = exp(0.5) + exp(-1.0) + exp(2.0);
        for (int i = 0; i < 3; i++) {
            TEST_CHECK(tg_tensor_grad_get(x2, i) == 0);
            TEST_CLOSE(tg_tensor_grad_get(x2, 3 + i), exp(rows[1][i]) / z, 0, d ? 1e-6 : 1e-15);
        }
    }
    for (int d = 0; d < 2; d++) {
        double big[2] = {1e4, 1e4}, small[3] = {-1e4, -1e4, -1e4 - 1};
        tg_dtype dt = d ? TG_F32 : TG_F64;
        y = tg_logsumexp(ctx, tu_tensor(ctx, dt, 1, (const int64_t[]){2}, big, 0), NULL, 0, 0);
        TEST_CLOSE(tg_tensor_get(y, 0), 1e4 + log(2.0), 0, d ? 1e-7 : 1e-15);
        y = tg_logsumexp(ctx, tu_tensor(ctx, dt, 1, (const int64_t[]){3}, small, 0), NULL, 0, 0);
        TEST_CLOSE(tg_tensor_get(y, 0), -1e4 + log(2 + exp(-1.0)), 0, d ? 1e-7 : 1e-15);
    }

    double nanv[3] = {1, NAN, 2};
    tg_tensor *xn = tg_tensor_from(ctx, TG_F64, TG_DIMS(3), nanv);
    tg_tensor_requires_grad(xn);
    y = tg_max(ctx, xn, NULL, 0, 0);
    TEST_CHECK(y && isnan(tg_tensor_get(y, 0)));
    TEST_CHECK(tg_backward(ctx, y) == TG_OK);              /* NaN to the whole slice (PyTorch) */
    for (int i = 0; i < 3; i++)
        TEST_CHECK(isnan(tg_tensor_grad_get(xn, i)));
    y = tg_min(ctx, tg_tensor_from(ctx, TG_F64, TG_DIMS(3), nanv), NULL, 0, 0);
    TEST_CHECK(y && isnan(tg_tensor_get(y, 0)));

    /* var with N - correction <= 0 follows PyTorch. */
    double one = 4, two[2] = {1, 2};
    tg_tensor *x1 = tg_tensor_from(ctx, TG_F64, TG_DIMS(1), &one);
    tg_tensor_requires_grad(x1);
    y = tg_var(ctx, x1, NULL, 0, 0, 1);
    TEST_CHECK(y && isnan(tg_tensor_get(y, 0)));
    TEST_CHECK(tg_backward(ctx, y) == TG_OK && isnan(tg_tensor_grad_get(x1, 0)));
    tg_tensor *x2 = tg_tensor_from(ctx, TG_F64, TG_DIMS(2), two);
    tg_tensor_requires_grad(x2);
    y = tg_var(ctx, x2, NULL, 0, 0, 2);
    TEST_CHECK(y && tg_tensor_get(y, 0) == INFINITY);
    TEST_CHECK(tg_backward(ctx, y) == TG_OK);
    TEST_CHECK(tg_tensor_grad_get(x2, 0) == INFINITY && tg_tensor_grad_get(x2, 1) == INFINITY);
    y = tg_var(ctx, x2, NULL, 0, 0, 3);             /* divisor max(0, 2 - 3) = 0 */
    TEST_CHECK(y && tg_tensor_get(y, 0) == INFINITY);

    /* Empty reduced axis: sum 0, mean NaN, logsumexp -inf, var NaN; the
     * output of reducing the non-empty axis is empty. */
    tg_tensor *e = tg_tensor_new(ctx, TG_F64, TG_DIMS(2, 0));
    int a1 = 1, a0 = 0;
    y = tg_sum(ctx, e, &a1, 1, 0);
    TEST_CHECK(y && y->numel == 2 && tg_tensor_get(y, 0) == 0 && tg_tensor_get(y, 1) == 0);
    y = tg_mean(ctx, e, &a1, 1, 0);
    TEST_CHECK(y && isnan(tg_tensor_get(y, 1)));
    y = tg_logsumexp(ctx, e, &a1, 1, 0);
    TEST_CHECK(y && tg_tensor_get(y, 0) == -INFINITY);
    y = tg_var(ctx, e, &a1, 1, 1, 0);
    TEST_CHECK(y && y->ndim == 2 && y->shape[1] == 1 && isnan(tg_tensor_get(y, 0)));
    y = tg_sum(ctx, e, &a0, 1, 0);
    TEST_CHECK(y && y->ndim == 1 && y->numel == 0);

    /* A scalar: axis 0 or -1 or none; the value passes through. */
    tg_tensor *s = tg_tensor_scalar(ctx, TG_F64, 2.5);
    tg_tensor_requires_grad(s);
    int m1 = -1;
    y = tg_sum(ctx, s, &a0, 1, 0);
    TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 2.5);
    y = tg_max(ctx, s, &m1, 1, 1);
    TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 2.5);
    y = tg_mean_all(ctx, s);
    TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 2.5);
    TEST_CHECK(tg_backward(ctx, y) == TG_OK && tg_tensor_grad_get(s, 0) == 1);
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* ---- every axis set of a 4-d tensor (and long slices) vs a naive loop ------ */

enum { OP_SUM, OP_MEAN, OP_VAR0, OP_VAR1, OP_MAX, OP_MIN, OP_LSE, N_OPS };
static const char *const op_names[N_OPS] = {"sum", "mean", "var", "var", "max", "min", "logsumexp"};

/* Naive forward and VJP in double: for each input element, its output index
 * is the row-major index over the kept axes. */
static void naive(int op, int nd, const int64_t *shape, int mask, const double *x, const double *dy,
                  double *y, double *dx, int64_t n_out)
{
    int64_t numel = tg_shape_numel(nd, shape), R = 1;
    for (int k = 0; k < nd; k++)
        if ((mask >> k) & 1)
            R *= shape[k];
    int64_t *oi = malloc(sizeof(int64_t) * (size_t)numel);
    double *a = calloc((size_t)n_out, sizeof(double)), *b = calloc((size_t)n_out, sizeof(double));
    for (int64_t f = 0; f < numel; f++) {
        int64_t rem = f, o = 0, mul = 1;
        for (int k = nd - 1; k >= 0; k--) {
            int64_t ik = rem % shape[k];
            rem /= shape[k];
            if (!((mask >> k) & 1)) {
                o += ik * mul;
                mul *= shape[k];
            }
        }
        oi[f] = o;
    }
    for (int64_t o = 0; o < n_out; o++)
        a[o] = op == OP_MAX || op == OP_LSE ? -INFINITY : op == OP_MIN ? INFINITY : 0;
    for (int64_t f = 0; f < numel; f++) {
        double *t = &a[oi[f]];
        if (op == OP_MAX || op == OP_LSE)
            *t = x[f] > *t ? x[f] : *t;
        else if (op == OP_MIN)
            *t = x[f] < *t ? x[f] : *t;
        else
            *t += x[f];
    }
    for (int64_t f = 0; f < numel; f++) {   /* second pass: exp sums, squared deviations */
        double m = op == OP_LSE ? a[oi[f]] : a[oi[f]] / (double)R;
        b[oi[f]] += op == OP_LSE ? exp(x[f] - m) : (x[f] - m) * (x[f] - m);
    }
    double div = op == OP_VAR1 ? (double)R - 1 : (double)R;
    for (int64_t o = 0; o < n_out; o++)
        y[o] = op == OP_SUM || op == OP_MAX || op == OP_MIN ? a[o]
             : op == OP_MEAN ? a[o] / (double)R
             : op == OP_LSE ? a[o] + log(b[o]) : b[o] / div;
    for (int64_t f = 0; f < numel; f++) {
        int64_t o = oi[f];
        dx[f] = op == OP_SUM ? dy[o] : op == OP_MEAN ? dy[o] / (double)R
              : op == OP_LSE ? dy[o] * exp(x[f] - y[o])
              : op == OP_MAX || op == OP_MIN ? (x[f] == y[o] ? dy[o] : 0)
              : dy[o] * 2 * (x[f] - a[o] / (double)R) / div;
    }
    free(oi);
    free(a);
    free(b);
}

static void check_against_naive(tg_ctx *ctx, int op, int nd, const int64_t *shape, int mask, int keep,
                                double tol)
{
    int axes[TG_MAX_DIMS], n_axes = 0;
    for (int k = 0; k < nd; k++)
        if ((mask >> k) & 1)
            axes[n_axes++] = k - (k & 1) * nd;     /* mix positive and negative axes */
    int64_t R = 1;
    for (int k = 0; k < nd; k++)
        R *= (mask >> k) & 1 ? shape[k] : 1;
    if (n_axes == 0 || (op == OP_VAR1 && R == 1))   /* var of 1 sample: NaN, tested elsewhere */
        return;
    tg_tensor *x = tg_tensor_randn(ctx, TG_F64, nd, shape, 0, 1);
    tg_tensor_requires_grad(x);
    tg_tensor *y = call_reduce(ctx, op_names[op], x, axes, n_axes, keep, op == OP_VAR1);
    TEST_CHECK_MSG(y != NULL, "%s mask %d: %s", op_names[op], mask, tg_ctx_error(ctx));
    if (!y)
        return;
    int64_t n_out = y->numel;
    TEST_CHECK(y->ndim == (keep ? nd : nd - n_axes));
    tg_tensor *dy = tg_tensor_randn(ctx, TG_F64, y->ndim, y->shape, 0, 1);
    double *wy = malloc(sizeof(double) * (size_t)n_out), *wdx = malloc(sizeof(double) * (size_t)x->numel);
    naive(op, nd, shape, mask, x->data, dy->data, wy, wdx, n_out);
    int bad = 0;
    for (int64_t o = 0; o < n_out; o++)
        bad += !(fabs(tg_tensor_get(y, o) - wy[o]) <= tol * (1 + fabs(wy[o])));
    TEST_CHECK(tg_backward_seed(ctx, y, dy) == TG_OK);
    for (int64_t f = 0; f < x->numel; f++)
        bad += !(fabs(tg_tensor_grad_get(x, f) - wdx[f]) <= tol * (1 + fabs(wdx[f])));
    TEST_CHECK_MSG(bad == 0, "%s over mask %d keepdims %d: %d mismatches", op_names[op], mask, keep, bad);
    free(wy);
    free(wdx);
}

static void test_axis_sets(void)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 7 });
    tg_ctx_set_poison(ctx, 1);
    static const int64_t s4[4] = {3, 4, 1, 5}, s3[3] = {2, 3, 4};
    for (int op = 0; op < N_OPS; op++)
        for (int keep = 0; keep < 2; keep++) {
            for (int mask = 1; mask < 16; mask++)
                check_against_naive(ctx, op, 4, s4, mask, keep, 1e-12);
            for (int mask = 1; mask < 8; mask++)
                check_against_naive(ctx, op, 3, s3, mask, keep, 1e-12);
            tg_ctx_reset(ctx);
        }
    /* Long slices: the 8-lane contiguous sums and the column path. */
    static const int64_t l1[2] = {3, 1037}, l2[2] = {1037, 3}, l3[3] = {5, 129, 7};
    for (int op = 0; op < N_OPS; op++) {
        check_against_naive(ctx, op, 2, l1, 2, 0, 1e-11);
        check_against_naive(ctx, op, 2, l1, 3, 0, 1e-11);
        check_against_naive(ctx, op, 2, l2, 1, 1, 1e-11);
        check_against_naive(ctx, op, 3, l3, 5, 0, 1e-11);
        tg_ctx_reset(ctx);
    }
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* f32 sums accumulate in double: 2^24 + 1 + 1 + ... stays exact where a
 * float accumulator would drop every 1. */
static void test_f32_accuracy(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_fill(ctx, TG_F32, TG_DIMS(1001), 1.0);
    tg_tensor_set(x, 0, 16777216.0);
    TEST_CHECK(tg_tensor_get(tg_sum_all(ctx, x), 0) == 16777216.0 + 1000);
    tg_tensor *c = tg_tensor_fill(ctx, TG_F32, TG_DIMS(1001, 2), 1.0);
    tg_tensor_set(c, 0, 16777216.0);
    int a0 = 0;
    TEST_CHECK(tg_tensor_get(tg_sum(ctx, c, &a0, 1, 0), 0) == 16777216.0 + 1000);
    /* Deterministic: the same call gives the same bits. */
    tg_tensor *r = tg_tensor_randn(ctx, TG_F32, TG_DIMS(37, 53), 0, 1);
    int a1 = 1;
    tg_tensor *y1 = tg_logsumexp(ctx, r, &a1, 1, 0), *y2 = tg_logsumexp(ctx, r, &a1, 1, 0);
    TEST_CHECK(y1 && y2 && memcmp(y1->data, y2->data, 37 * sizeof(float)) == 0);
    tg_ctx_free(ctx);
}

/* ---- descriptors ------------------------------------------------------------- */

static void test_descriptors(void)
{
    static const char *const names[] = {"sum", "mean", "var", "max", "min", "logsumexp"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        tu_check_op(names[k], 2, TU_FWD_FLOPS | TU_EDGE_SHAPE);
}

/* ---- errors ------------------------------------------------------------------ */

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(2, 3, 4), -1, 1);
    int a3[1] = {3}, am4[1] = {-4}, dup[2] = {2, -1}, dup0[2] = {0, 0};
    TU_EXPECT_ERR(ctx, tg_sum(ctx, x, a3, 1, 0), TG_ERR_ARG, "sum: axis 3 out of range for 3 dims");
    TU_EXPECT_ERR(ctx, tg_max(ctx, x, am4, 1, 1), TG_ERR_ARG, "max: axis -4 out of range for 3 dims");
    TU_EXPECT_ERR(ctx, tg_mean(ctx, x, dup, 2, 0), TG_ERR_ARG, "mean: axis -1 repeated");
    TU_EXPECT_ERR(ctx, tg_var(ctx, x, dup0, 2, 0, 1), TG_ERR_ARG, "var: axis 0 repeated");
    TU_EXPECT_ERR(ctx, tg_logsumexp(ctx, x, a3, -1, 0), TG_ERR_ARG, "logsumexp: bad axis list");
    TU_EXPECT_ERR(ctx, tg_min(ctx, x, NULL, 2, 0), TG_ERR_ARG, "min: bad axis list");
    int a1 = 1;
    TU_EXPECT_ERR(ctx, tg_sum(ctx, tg_tensor_scalar(ctx, TG_F64, 1), &a1, 1, 0), TG_ERR_ARG,
                 "sum: axis 1 out of range for 0 dims");

    int32_t iv[4] = {1, 2, 3, 4};
    tg_tensor *xi = tg_tensor_from(ctx, TG_I32, TG_DIMS(4), iv);
    TU_EXPECT_ERR(ctx, tg_sum_all(ctx, xi), TG_ERR_ARG, "sum: input 0 is i32, expected f32 or f64");
    TU_EXPECT_ERR(ctx, tg_logsumexp(ctx, xi, NULL, 0, 0), TG_ERR_ARG, "logsumexp: input 0 is i32");
    TU_EXPECT_ERR(ctx, tg_mean_all(ctx, NULL), TG_ERR_ARG, "mean: input 0 is NULL");

    tg_tensor *e = tg_tensor_new(ctx, TG_F32, TG_DIMS(3, 0));
    TU_EXPECT_ERR(ctx, tg_max(ctx, e, &a1, 1, 0), TG_ERR_SHAPE, "max: cannot reduce over empty axis 1 (shape 3x0)");
    TU_EXPECT_ERR(ctx, tg_min(ctx, e, NULL, 0, 0), TG_ERR_SHAPE, "min: cannot reduce over empty axis");

    /* A hand-made node with a mask naming a missing axis. */
    tg_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = 8;
    TU_EXPECT_ERR(ctx, tg_apply(ctx, tg_op_find("sum"), &x, 1, &p, NULL), TG_ERR_ARG, "sum: axis mask 0x8 out of range");

    /* Sticky: after an error every later call returns NULL at once. */
    TEST_CHECK(tg_sum(ctx, x, a3, 1, 0) == NULL);
    TEST_CHECK(tg_sum_all(ctx, x) == NULL);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "axis 3") != NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_sum_all(ctx, x) != NULL);
    tg_ctx_free(ctx);
}

/* f32 logsumexp over contiguous rows (the softmax row kernel's path, rows
 * short and long, narrow and 250 wide) against the exact value in long
 * double; rows with a NaN, a +inf and all -inf take the other path and
 * keep their special results. */
static void test_lse_rows(void)
{
    static const int64_t lens[] = {5, 17, 100, 1000, 4096};
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_rng r;
    tg_rng_seed(&r, 5);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t R = 6, C = lens[li];
        float *v = malloc(sizeof(float) * (size_t)(R * C));
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) {
                double u = tg_rng_uniform(&r);
                v[i * C + j] = (float)(i == 0 ? 60 * u - 30 : i == 1 ? 250 * u - 200 : i == 2 ? 1e4 + u : 2 * u);
            }
        v[3 * C + C / 2] = NAN;
        v[4 * C + C - 1] = INFINITY;
        for (int64_t j = 0; j < C; j++)
            v[5 * C + j] = -INFINITY;
        tg_tensor *x = tg_tensor_from(ctx, TG_F32, TG_DIMS(R, C), v);
        tg_tensor *y = tg_logsumexp(ctx, x, (const int[]){1}, 1, 0);
        TEST_CHECK_MSG(y != NULL, "%s", tg_ctx_error(ctx));
        for (int64_t i = 0; y && i < 3; i++) {
            long double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < C; j++)
                m = v[i * C + j] > m ? v[i * C + j] : m;
            for (int64_t j = 0; j < C; j++)
                s += expl((long double)v[i * C + j] - m);
            double ref = (double)(m + logl(s)), got = tg_tensor_get(y, i);
            TEST_CHECK_MSG(fabs(got - ref) <= 2 * FLT_EPSILON * fmax(1, fabs(ref)),
                           "row %lld of %lld: %.9g vs %.9g", (long long)i, (long long)C, got, ref);
        }
        TEST_CHECK(y && isnan(tg_tensor_get(y, 3)));
        TEST_CHECK(y && tg_tensor_get(y, 4) == INFINITY);
        TEST_CHECK(y && tg_tensor_get(y, 5) == -INFINITY);
        /* The VJP (the softmax of each row) into a fresh gradient: rows 0-2
         * against the exact softmax; the +inf row gives 0 at its finite
         * entries (and NaN at the inf: exp(inf - inf)), the all -inf row
         * zeros. */
        tg_tensor *xg = tg_tensor_from(ctx, TG_F32, TG_DIMS(R, C), v);
        tg_tensor_requires_grad(xg);
        tg_tensor *l = tg_logsumexp(ctx, xg, (const int[]){1}, 1, 0);
        TEST_CHECK_MSG(l && tg_backward(ctx, tg_sum_all(ctx, l)) == TG_OK, "%s", tg_ctx_error(ctx));
        for (int64_t i = 0; l && i < R; i++) {
            if (i == 3)
                continue;
            long double m = -INFINITY, s = 0;
            for (int64_t j = 0; i < 3 && j < C; j++)
                m = v[i * C + j] > m ? v[i * C + j] : m;
            for (int64_t j = 0; i < 3 && j < C; j++)
                s += expl((long double)v[i * C + j] - m);
            int bad = 0;
            for (int64_t j = 0; j < C && !bad; j++) {
                double got = tg_tensor_grad_get(xg, i * C + j);
                if (i < 3) {   /* x - lse is rounded to float: |d| ulp */
                    long double d = (long double)v[i * C + j] - m - logl(s);
                    double ref = (double)expl(d);
                    bad = !(fabs(got - ref) <= ((double)fabsl(d) + 4) * FLT_EPSILON * ref + 1e-37);
                } else if (i == 4)
                    bad = j == C - 1 ? !isnan(got) : got != 0;
                else
                    bad = got != 0;
                if (bad)
                    TEST_CHECK_MSG(0, "grad row %lld of %lld, elem %lld: %.9g", (long long)i, (long long)C,
                                   (long long)j, got);
            }
        }
        free(v);
        tg_ctx_reset(ctx);
    }
    tg_ctx_free(ctx);
}

int main(void)
{
    test_hand();
    test_ties();
    test_special();
    test_axis_sets();
    test_f32_accuracy();
    test_lse_rows();
    test_descriptors();
    test_errors();
    return test_report("test_reduce");
}
