/* test_binary.c — the binary family: hand-computed broadcasting forwards and
 * un-broadcast gradients (ties, pow at 0, aliased inputs), every broadcast
 * layout against a naive index-arithmetic reference, determinism, where's
 * NaN-safety, the tensor-scalar forms, the descriptors, and errors. (Every
 * sample variant is gradient-checked by test_ops_grad.c, the PyTorch
 * reference cases are in test_reference.c.) */
#include "tapegrad.h"
#include "test.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef tg_tensor *(*bin_fn)(tg_ctx *, tg_tensor *, tg_tensor *);

/* y = f(a, b) with a, b leaves requiring grad; VJP with seed dy; compare the
 * output and both gradients (NULL: skip) in f64 and f32. */
static void check_bin(const char *what, bin_fn f,
                      int nda, const int64_t *sa, const double *a,
                      int ndb, const int64_t *sb, const double *b,
                      const double *y, const double *dy, const double *ga, const double *gb, double rtol)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        double tol = d ? 2e-6 : rtol;
        tg_ctx *ctx = tg_ctx_new(NULL);
        tg_tensor *ta = tu_tensor(ctx, dt, nda, sa, a, 0), *tb = tu_tensor(ctx, dt, ndb, sb, b, 0);
        tg_tensor_requires_grad(ta);
        tg_tensor_requires_grad(tb);
        tg_tensor *ty = f(ctx, ta, tb);
        TEST_CHECK_MSG(ty != NULL, "%s: %s", what, tg_ctx_error(ctx));
        if (!ty) {
            tg_ctx_free(ctx);
            continue;
        }
        TEST_CHECK(ty->dtype == dt);
        tg_tensor *seed = tu_tensor(ctx, dt, ty->ndim, ty->shape, dy, 0);
        TEST_CHECK(tg_backward_seed(ctx, ty, seed) == TG_OK);
        for (int64_t i = 0; i < ty->numel; i++)
            TEST_CLOSE(tg_tensor_get(ty, i), y[i], tol, tol);
        for (int64_t i = 0; ga && i < ta->numel; i++)
            TEST_CLOSE(tg_tensor_grad_get(ta, i), ga[i], tol, tol);
        for (int64_t i = 0; gb && i < tb->numel; i++)
            TEST_CLOSE(tg_tensor_grad_get(tb, i), gb[i], tol, tol);
        tg_ctx_free(ctx);
    }
}

/* ---- hand-computed cases ------------------------------------------------ */

static void test_hand(void)
{
    /* (2,3) + (3): b is a row bias. dy = [[1,2,3],[4,5,6]] -> db = column sums. */
    {
        const double a[] = {1, 2, 3, 4, 5, 6}, b[] = {10, 20, 30};
        const double y[] = {11, 22, 33, 14, 25, 36}, dy[] = {1, 2, 3, 4, 5, 6}, gb[] = {5, 7, 9};
        check_bin("add row bias", tg_add, TG_DIMS(2, 3), a, TG_DIMS(3), b, y, dy, dy, gb, 0);
    }
    /* (2,1) * (1,3) -> (2,3): a = [[2],[3]], b = [[1,4,5]], dy = [[1,0,2],[3,1,1]].
     * da_i = sum_j dy_ij b_j = [1+0+10, 3+4+5] = [11, 12];
     * db_j = sum_i dy_ij a_i = [2+9, 0+3, 4+3] = [11, 3, 7]. */
    {
        const double a[] = {2, 3}, b[] = {1, 4, 5};
        const double y[] = {2, 8, 10, 3, 12, 15}, dy[] = {1, 0, 2, 3, 1, 1};
        const double ga[] = {11, 12}, gb[] = {11, 3, 7};
        check_bin("mul outer", tg_mul, TG_DIMS(2, 1), a, TG_DIMS(1, 3), b, y, dy, ga, gb, 0);
    }
    /* (2,2) - scalar 3: db = -sum(dy) = -10. */
    {
        const double a[] = {1, 2, 3, 4}, b[] = {3};
        const double y[] = {-2, -1, 0, 1}, dy[] = {1, 2, 3, 4}, gb[] = {-10};
        check_bin("sub scalar tensor", tg_sub, TG_DIMS(2, 2), a, 0, NULL, b, y, dy, dy, gb, 0);
    }
    /* (2,1) / (2): a = [[6],[8]], b = [2,4] -> [[3,1.5],[4,2]]; dy = 1.
     * da_i = 1/2 + 1/4 = 0.75; db_j = -(6 + 8) / b_j^2 = [-3.5, -0.875]. */
    {
        const double a[] = {6, 8}, b[] = {2, 4};
        const double y[] = {3, 1.5, 4, 2}, dy[] = {1, 1, 1, 1};
        const double ga[] = {0.75, 0.75}, gb[] = {-3.5, -0.875};
        check_bin("div", tg_div, TG_DIMS(2, 1), a, TG_DIMS(2), b, y, dy, ga, gb, 0);
    }
    /* pow: a = [2,4] (2), b = [[3],[0.5]] (2,1) -> [[8,64],[sqrt2, 2]]; dy = 1.
     * da_j = 3 a^2 + 0.5 a^-0.5 = [12 + 0.5/sqrt2, 48.25];
     * db_i = sum_j y_ij log a_j = [8 ln2 + 64 ln4, sqrt2 ln2 + 2 ln4]
     *      = [136 ln2, (sqrt2 + 4) ln2]. */
    {
        const double a[] = {2, 4}, b[] = {3, 0.5}, r2 = sqrt(2.0), l2 = log(2.0);
        const double y[] = {8, 64, r2, 2}, dy[] = {1, 1, 1, 1};
        const double ga[] = {12 + 0.5 / r2, 48.25}, gb[] = {136 * l2, (r2 + 4) * l2};
        check_bin("pow", tg_pow, TG_DIMS(2), a, TG_DIMS(2, 1), b, y, dy, ga, gb, 1e-15);
    }
    /* pow at a == 0: da = 0 where b == 0 (not 0 * inf), db = 0 where b >= 0. */
    {
        const double a[] = {0, 0, 2}, b[] = {0, 2, 0};
        const double y[] = {1, 0, 1}, dy[] = {1, 1, 1}, ga[] = {0, 0, 0}, gb[] = {0, 0, log(2.0)};
        check_bin("pow at 0", tg_pow, TG_DIMS(3), a, TG_DIMS(3), b, y, dy, ga, gb, 1e-15);
    }
    /* maximum / minimum with a tie at index 1: dy splits half/half. */
    {
        const double a[] = {1, 5, 3}, b[] = {2, 5, 1}, dy[] = {2, 4, 6};
        const double ymax[] = {2, 5, 3}, gamax[] = {0, 2, 6}, gbmax[] = {2, 2, 0};
        const double ymin[] = {1, 5, 1}, gamin[] = {2, 2, 0}, gbmin[] = {0, 2, 6};
        check_bin("maximum tie", tg_maximum, TG_DIMS(3), a, TG_DIMS(3), b, ymax, dy, gamax, gbmax, 0);
        check_bin("minimum tie", tg_minimum, TG_DIMS(3), a, TG_DIMS(3), b, ymin, dy, gamin, gbmin, 0);
    }
    /* maximum broadcast: a (2,2) = [[1,4],[3,0]] with b (1) = [2]: db sums
     * over the positions where b won: dy 1, 4 -> 5. */
    {
        const double a[] = {1, 4, 3, 0}, b[] = {2}, dy[] = {1, 2, 3, 4};
        const double y[] = {2, 4, 3, 2}, ga[] = {0, 2, 3, 0}, gb[] = {5};
        check_bin("maximum bcast", tg_maximum, TG_DIMS(2, 2), a, TG_DIMS(1), b, y, dy, ga, gb, 0);
    }
    /* The same tensor as both inputs: mul(x, x) -> 2x, add(x, x) -> 2, sub -> 0. */
    {
        tg_ctx *ctx = tg_ctx_new(NULL);
        const double xv[] = {3, -2};
        tg_tensor *x = tu_tensor(ctx, TG_F64, TG_DIMS(2), xv, 0);
        tg_tensor_requires_grad(x);
        TEST_CHECK(tg_backward_seed(ctx, tg_mul(ctx, x, x), tg_tensor_fill(ctx, TG_F64, TG_DIMS(2), 1)) == TG_OK);
        TEST_CHECK(tg_tensor_grad_get(x, 0) == 6 && tg_tensor_grad_get(x, 1) == -4);
        tg_tensor_zero_grad(x);
        TEST_CHECK(tg_backward_seed(ctx, tg_add(ctx, x, x), tg_tensor_fill(ctx, TG_F64, TG_DIMS(2), 1)) == TG_OK);
        TEST_CHECK(tg_tensor_grad_get(x, 0) == 2 && tg_tensor_grad_get(x, 1) == 2);
        tg_tensor_zero_grad(x);
        TEST_CHECK(tg_backward_seed(ctx, tg_sub(ctx, x, x), tg_tensor_fill(ctx, TG_F64, TG_DIMS(2), 1)) == TG_OK);
        TEST_CHECK(tg_tensor_grad_get(x, 0) == 0 && tg_tensor_grad_get(x, 1) == 0);
        tg_ctx_free(ctx);
    }
}

/* ---- every layout against a naive reference ----------------------------- */

/* Offset into x (shape ndx, xs) of output element `flat` (shape nd, os). */
static int64_t bidx(int nd, const int64_t *os, int64_t flat, int ndx, const int64_t *xs)
{
    int64_t off = 0, stride = 1;
    for (int k = nd - 1; k >= 0; k--) {
        int64_t i = flat % os[k];
        flat /= os[k];
        int kx = ndx - nd + k;
        if (kx >= 0) {
            if (xs[kx] != 1)
                off += i * stride;
            stride *= xs[kx];
        }
    }
    return off;
}

static void test_layouts(void)
{
    static const struct { int nd[3]; int64_t s[3][6]; } c[] = {
        { {2, 2, 1}, { {3, 4}, {3, 4}, {1} } },            /* flat */
        { {3, 1, 2}, { {1, 1, 3}, {3}, {1, 1} } },         /* equal numel, different rank */
        { {2, 1, 0}, { {5, 7}, {7} } },                     /* row bias */
        { {2, 2, 2}, { {5, 7}, {1, 7}, {5, 1} } },
        { {2, 2, 1}, { {5, 1}, {1, 7}, {7} } },             /* outer product */
        { {1, 2, 0}, { {7}, {5, 7} } },                     /* bias first */
        { {0, 2, 2}, { {0}, {4, 3}, {4, 1} } },             /* scalar */
        { {2, 0, 3}, { {4, 3}, {0}, {2, 1, 3} } },
        { {4, 3, 1}, { {2, 3, 4, 5}, {3, 1, 5}, {5} } },
        { {4, 3, 2}, { {2, 1, 3, 1}, {3, 1, 6}, {3, 1} } },
        { {3, 3, 3}, { {3, 1, 1}, {1, 1, 4}, {1, 2, 1} } },
        { {5, 5, 1}, { {2, 3, 1, 5, 1}, {1, 3, 4, 1, 2}, {1} } },
        { {6, 6, 6}, { {2, 1, 2, 1, 2, 1}, {1, 2, 1, 2, 1, 2}, {2, 2, 1, 1, 2, 2} } },
        { {2, 2, 1}, { {3, 21}, {3, 1}, {21} } },           /* long rows: 8 lanes + tail */
        { {2, 2, 2}, { {0, 3}, {1, 3}, {0, 1} } },          /* empty */
    };
    for (size_t ci = 0; ci < sizeof c / sizeof c[0]; ci++) {
        tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 100 + ci });
        tg_tensor *in[3];
        for (int k = 0; k < 3; k++) {
            in[k] = tg_tensor_rand(ctx, TG_F64, c[ci].nd[k], c[ci].s[k], 0.5, 2);
            if (k)
                tg_tensor_requires_grad(in[k]);
        }
        tg_tensor *mask = tg_tensor_new(ctx, TG_I32, in[0]->ndim, in[0]->shape);
        for (int64_t i = 0; i < mask->numel; i++)
            tg_tensor_set(mask, i, tg_tensor_get(in[0], i) > 1.25);
        tg_tensor *p = tg_mul(ctx, in[1], in[2]);      /* binary layout */
        tg_tensor *w = tg_where(ctx, mask, in[1], in[2]);  /* 3-operand layout */
        TEST_CHECK_MSG(p && w, "case %zu: %s", ci, tg_ctx_error(ctx));
        if (!p || !w) {
            tg_ctx_free(ctx);
            continue;
        }
        int64_t nd = w->ndim, n = w->numel;
        /* y = sum(p * u) + sum(w * v) with random u, v (p broadcast to w) */
        tg_tensor *u = tg_tensor_rand(ctx, TG_F64, p->ndim, p->shape, -1, 1);
        tg_tensor *v = tg_tensor_rand(ctx, TG_F64, w->ndim, w->shape, -1, 1);
        TEST_CHECK(tg_backward_seed(ctx, p, u) == TG_OK);
        TEST_CHECK(tg_backward_seed(ctx, w, v) == TG_OK);
        double *g1 = calloc((size_t)in[1]->numel + 1, sizeof(double));
        double *g2 = calloc((size_t)in[2]->numel + 1, sizeof(double));
        for (int64_t i = 0; i < p->numel; i++) {
            int64_t o1 = bidx(p->ndim, p->shape, i, in[1]->ndim, in[1]->shape);
            int64_t o2 = bidx(p->ndim, p->shape, i, in[2]->ndim, in[2]->shape);
            double a = tg_tensor_get(in[1], o1), b = tg_tensor_get(in[2], o2);
            TEST_CHECK(tg_tensor_get(p, i) == a * b);
            g1[o1] += tg_tensor_get(u, i) * b;
            g2[o2] += tg_tensor_get(u, i) * a;
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t o0 = bidx((int)nd, w->shape, i, in[0]->ndim, in[0]->shape);
            int64_t o1 = bidx((int)nd, w->shape, i, in[1]->ndim, in[1]->shape);
            int64_t o2 = bidx((int)nd, w->shape, i, in[2]->ndim, in[2]->shape);
            int t = tg_tensor_get(mask, o0) != 0;
            TEST_CHECK(tg_tensor_get(w, i) == (t ? tg_tensor_get(in[1], o1) : tg_tensor_get(in[2], o2)));
            (t ? g1 : g2)[t ? o1 : o2] += tg_tensor_get(v, i);
        }
        for (int64_t i = 0; i < in[1]->numel; i++)
            TEST_CLOSE(tg_tensor_grad_get(in[1], i), g1[i], 1e-13, 1e-13);
        for (int64_t i = 0; i < in[2]->numel; i++)
            TEST_CLOSE(tg_tensor_grad_get(in[2], i), g2[i], 1e-13, 1e-13);
        free(g1);
        free(g2);
        tg_ctx_free(ctx);
    }
}

/* Same inputs, fresh contexts: bit-identical gradients. */
static void test_determinism(void)
{
    double first[8] = {0};
    for (int run = 0; run < 2; run++) {
        tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 5 });
        tg_tensor *a = tg_tensor_rand(ctx, TG_F32, TG_DIMS(64, 1, 8), -1, 1);
        tg_tensor *b = tg_tensor_rand(ctx, TG_F32, TG_DIMS(33, 1), -1, 1);
        tg_tensor_requires_grad(a);
        tg_tensor_requires_grad(b);
        tg_tensor *y = tg_mul(ctx, a, b);
        TEST_CHECK(tg_backward_seed(ctx, y, tg_tensor_rand(ctx, TG_F32, y->ndim, y->shape, -1, 1)) == TG_OK);
        for (int i = 0; i < 8; i++) {
            double g = i < 4 ? tg_tensor_grad_get(a, i * 100) : tg_tensor_grad_get(b, i * 7);
            if (run == 0)
                first[i] = g;
            else
                TEST_CHECK(memcmp(&first[i], &g, sizeof g) == 0);
        }
        tg_ctx_free(ctx);
    }
}

/* ---- where: the untaken branch never leaks NaN -------------------------- */

static void test_where(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    /* b holds inf and NaN where the mask selects a. */
    const double mv[] = {1, 1, 0, 1}, av[] = {1, 2, 3, 4}, bv[] = {INFINITY, NAN, 7, -INFINITY};
    const double dyv[] = {0.5, -1, 2, 3};
    tg_tensor *m = tu_tensor(ctx, TG_I32, TG_DIMS(4), mv, 0);
    tg_tensor *a = tu_tensor(ctx, TG_F64, TG_DIMS(4), av, 0), *b = tu_tensor(ctx, TG_F64, TG_DIMS(4), bv, 0);
    tg_tensor_requires_grad(a);
    tg_tensor_requires_grad(b);
    tg_tensor *y = tg_where(ctx, m, a, b);
    TEST_CHECK(y && tg_backward_seed(ctx, y, tu_tensor(ctx, TG_F64, TG_DIMS(4), dyv, 0)) == TG_OK);
    const double ya[] = {1, 2, 7, 4}, ga[] = {0.5, -1, 0, 3}, gb[] = {0, 0, 2, 0};
    for (int i = 0; i < 4; i++) {
        TEST_CHECK(tg_tensor_get(y, i) == ya[i]);
        TEST_CHECK(tg_tensor_grad_get(a, i) == ga[i]);
        TEST_CHECK(tg_tensor_grad_get(b, i) == gb[i]);
    }

    /* End to end: where(m, exp(x), pow(z, 0.5)) with z < 0 (NaN) where m is
     * false; x's gradient is exp(x) where m, exactly 0 elsewhere. */
    const double xv[] = {0.1, -0.3, 0.7, 1.2}, zv[] = {4, -1, -2, 9}, m2v[] = {1, 0, 0, 1};
    tg_tensor *x = tu_tensor(ctx, TG_F64, TG_DIMS(4), xv, 0), *z = tu_tensor(ctx, TG_F64, TG_DIMS(4), zv, 0);
    tg_tensor *m2 = tu_tensor(ctx, TG_F32, TG_DIMS(4), m2v, 0);
    tg_tensor_requires_grad(x);
    tg_tensor *sq = tg_pow_scalar(ctx, z, 0.5);
    TEST_CHECK(sq && isnan(tg_tensor_get(sq, 1)));
    tg_tensor *y2 = tg_where(ctx, m2, tg_exp(ctx, x), sq);
    TEST_CHECK(y2 && tg_backward_seed(ctx, y2, tu_tensor(ctx, TG_F64, TG_DIMS(4), dyv, 0)) == TG_OK);
    for (int i = 0; i < 4; i++) {
        double g = tg_tensor_grad_get(x, i);
        TEST_CHECK(isfinite(g));
        TEST_CLOSE(g, m2v[i] ? dyv[i] * exp(xv[i]) : 0.0, 0, 1e-15);
    }
    TEST_CHECK(y2 && isnan(tg_tensor_get(y2, 1)) && tg_tensor_get(y2, 3) == exp(1.2));

    /* Broadcast: mask (2,1) f64 with NaN (= true), a (3), b scalar -> (2,3). */
    const double m3v[] = {NAN, 0}, a3v[] = {1, 2, 3}, b3v[] = {-5}, dy3[] = {1, 2, 3, 4, 5, 6};
    tg_tensor *m3 = tu_tensor(ctx, TG_F64, TG_DIMS(2, 1), m3v, 0);
    tg_tensor *a3 = tu_tensor(ctx, TG_F64, TG_DIMS(3), a3v, 0), *b3 = tu_tensor(ctx, TG_F64, 0, NULL, b3v, 0);
    tg_tensor_requires_grad(m3);   /* a float mask that requires grad gets none */
    tg_tensor_requires_grad(a3);
    tg_tensor_requires_grad(b3);
    tg_tensor *y3 = tg_where(ctx, m3, a3, b3);
    TEST_CHECK(y3 && y3->ndim == 2 && y3->shape[0] == 2 && y3->shape[1] == 3);
    TEST_CHECK(y3 && tg_backward_seed(ctx, y3, tu_tensor(ctx, TG_F64, TG_DIMS(2, 3), dy3, 0)) == TG_OK);
    const double y3v[] = {1, 2, 3, -5, -5, -5};
    for (int i = 0; y3 && i < 6; i++)
        TEST_CHECK(tg_tensor_get(y3, i) == y3v[i]);
    for (int i = 0; i < 3; i++)
        TEST_CHECK(tg_tensor_grad_get(a3, i) == dy3[i]);
    TEST_CHECK(tg_tensor_grad_get(b3, 0) == 15);
    TEST_CHECK(tg_tensor_grad_get(m3, 0) == 0 && tg_tensor_grad_get(m3, 1) == 0);
    tg_ctx_free(ctx);
}

/* ---- tensor-scalar forms ------------------------------------------------ */

static void test_scalar_forms(void)
{
    typedef tg_tensor *(*sc_fn)(tg_ctx *, tg_tensor *, double);
    const double xv[] = {1, -2, 4}, dyv[] = {1, 2, -1};
    const struct { const char *op, *rec; sc_fn f; double c, y[3], g[3]; } c[] = {
        { "add", "add_scalar", tg_add_scalar, 1.5, {2.5, -0.5, 5.5}, {1, 2, -1} },
        { "sub", "add_scalar", tg_sub_scalar, 1.5, {-0.5, -3.5, 2.5}, {1, 2, -1} },
        { "rsub", "rsub_scalar", tg_rsub_scalar, 1.5, {0.5, 3.5, -2.5}, {-1, -2, 1} },
        { "mul", "mul_scalar", tg_mul_scalar, -3, {-3, 6, -12}, {-3, -6, 3} },
        { "div", "div_scalar", tg_div_scalar, 4, {0.25, -0.5, 1}, {0.25, 0.5, -0.25} },
        /* c / x: dx = -dy c / x^2 = [-8, -2*8/4, 8/16] */
        { "rdiv", "rdiv_scalar", tg_rdiv_scalar, 8, {8, -4, 2}, {-8, -4, 0.5} },
        /* x^2: dx = 2 x dy */
        { "pow", "pow_scalar", tg_pow_scalar, 2, {1, 4, 16}, {2, -8, -8} },
        /* x^0 = 1 with gradient 0 */
        { "pow0", "pow_scalar", tg_pow_scalar, 0, {1, 1, 1}, {0, 0, 0} },
    };
    for (int d = 0; d < 2; d++)
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
            tg_ctx *ctx = tg_ctx_new(NULL);
            tg_tensor *x = tu_tensor(ctx, d ? TG_F32 : TG_F64, TG_DIMS(3), xv, 0);
            tg_tensor_requires_grad(x);
            tg_tensor *y = c[i].f(ctx, x, c[i].c);
            TEST_CHECK_MSG(y != NULL, "%s: %s", c[i].op, tg_ctx_error(ctx));
            if (!y) {
                tg_ctx_free(ctx);
                continue;
            }
            TEST_CHECK(tg_tape_size(ctx) == 1 && strcmp(tg_tape_node(ctx, 0)->def->name, c[i].rec) == 0);
            TEST_CHECK(tg_backward_seed(ctx, y, tu_tensor(ctx, x->dtype, TG_DIMS(3), dyv, 0)) == TG_OK);
            for (int k = 0; k < 3; k++) {
                TEST_CLOSE(tg_tensor_get(y, k), c[i].y[k], 0, 0);
                TEST_CLOSE(tg_tensor_grad_get(x, k), c[i].g[k], 0, 0);
            }
            tg_ctx_free(ctx);
        }
    /* div_scalar matches div by a scalar tensor bit for bit; sub_scalar records
     * add_scalar with -c. */
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(50), -3, 3);
    tg_tensor *q1 = tg_div_scalar(ctx, x, 3.0), *q2 = tg_div(ctx, x, tg_tensor_scalar(ctx, TG_F32, 3.0));
    TEST_CHECK(q1 && q2 && memcmp(q1->data, q2->data, 50 * sizeof(float)) == 0);
    tg_tensor_requires_grad(x);
    TEST_CHECK(tg_sub_scalar(ctx, x, 2.5) != NULL);
    TEST_CHECK(tg_tape_node(ctx, 0)->p.f[0] == -2.5);
    tg_ctx_free(ctx);
}

/* ---- descriptors ------------------------------------------------------------ */

static void test_descriptors(void)
{
    static const char *ops[] = { "add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                 "add_scalar", "rsub_scalar", "mul_scalar", "div_scalar",
                                 "rdiv_scalar", "pow_scalar", "where" };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        tu_check_op(ops[i], 2, TU_FWD_FLOPS | TU_EDGE_SHAPE);
    TEST_CHECK(tg_op_find("where") && tg_op_find("where")->nondiff == 1u);   /* the mask */
}

/* ---- errors -------------------------------------------------------------- */

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *a23 = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 3));
    tg_tensor *a43 = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(4, 3));
    tg_tensor *d23 = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(2, 3));
    tg_tensor *i23 = tg_tensor_zeros(ctx, TG_I32, TG_DIMS(2, 3));
    tg_tensor *m4 = tg_tensor_zeros(ctx, TG_I32, TG_DIMS(4));

    TU_EXPECT_ERR_IS(ctx, tg_add(ctx, a23, a43), TG_ERR_SHAPE, "add: cannot broadcast 2x3 with 4x3 (axis 0: 2 vs 4)");
    TU_EXPECT_ERR_IS(ctx, tg_maximum(ctx, a43, tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 1, 2))), TG_ERR_SHAPE,
               "maximum: cannot broadcast 4x3 with 2x1x2 (axis 2: 3 vs 2)");
    TU_EXPECT_ERR_IS(ctx, tg_add(ctx, a23, d23), TG_ERR_ARG, "add: mixed dtypes (f32 and f64)");
    TU_EXPECT_ERR_IS(ctx, tg_pow(ctx, d23, a23), TG_ERR_ARG, "pow: mixed dtypes (f64 and f32)");
    TU_EXPECT_ERR_IS(ctx, tg_mul(ctx, i23, a23), TG_ERR_ARG, "mul: input 0 is i32, expected f32 or f64");
    TU_EXPECT_ERR_IS(ctx, tg_sub(ctx, a23, NULL), TG_ERR_ARG, "sub: input 1 is NULL");
    TU_EXPECT_ERR_IS(ctx, tg_div(ctx, NULL, a23), TG_ERR_ARG, "div: input 0 is NULL");
    TU_EXPECT_ERR_IS(ctx, tg_where(ctx, NULL, a23, a23), TG_ERR_ARG, "where: input 0 is NULL");
    TU_EXPECT_ERR_IS(ctx, tg_where(ctx, i23, a23, d23), TG_ERR_ARG, "where: mixed dtypes (f32 and f64)");
    TU_EXPECT_ERR_IS(ctx, tg_where(ctx, i23, a23, a43), TG_ERR_SHAPE, "where: cannot broadcast 2x3 with 4x3 (axis 0: 2 vs 4)");
    TU_EXPECT_ERR_IS(ctx, tg_where(ctx, m4, a23, a23), TG_ERR_SHAPE, "where: cannot broadcast 4 with 2x3 (axis 1: 4 vs 3)");
    TU_EXPECT_ERR_IS(ctx, tg_where(ctx, i23, i23, i23), TG_ERR_ARG, "where: input 1 is i32, expected f32 or f64");
    TU_EXPECT_ERR_IS(ctx, tg_mul_scalar(ctx, i23, 2), TG_ERR_ARG, "mul_scalar: input 0 is i32, expected f32 or f64");
    TU_EXPECT_ERR_IS(ctx, tg_pow_scalar(ctx, NULL, 2), TG_ERR_ARG, "pow_scalar: input 0 is NULL");
    TU_EXPECT_ERR_IS(ctx, tg_sub_scalar(ctx, NULL, 2), TG_ERR_ARG, "add_scalar: input 0 is NULL");

    /* Sticky: after an error every op returns NULL and the first message stays. */
    TEST_CHECK(tg_add(ctx, a23, a43) == NULL);
    TEST_CHECK(tg_add(ctx, a23, a23) == NULL);
    TEST_CHECK(tg_where(ctx, i23, a23, a23) == NULL);
    TEST_CHECK(tg_add_scalar(ctx, a23, 1) == NULL);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "add: cannot broadcast") == tg_ctx_error(ctx));
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_add(ctx, a23, a23) != NULL);
    tg_ctx_free(ctx);
}

/* pow_scalar in f32: c = 2 runs as x * x, the bits of (float)pow(x, 2.0)
 * (x^2 is exact in double); other c through tg_vm_powcf_n, within an ulp
 * of (float)pow(x, c) and the very value for the special inputs (zeros of
 * both signs, infinities, NaN, negatives with integer and other c). */
static void test_pow_scalar_f32(void)
{
    static const float cs[] = { 2, 2.5f, -1.5f, 3, -3, 0.5f, 1, -1, 7, 1e-3f, 100, -2, 1e10f,
                                INFINITY, -INFINITY, NAN };
    static const float sp[] = { -0.0f, 0.0f, INFINITY, -INFINITY, NAN, 1e-30f, 3e19f, -1e-45f, 1.5e-23f,
                                -2.0f, -0.5f, 1.0f, -1.0f };
    enum { NSP = sizeof sp / sizeof sp[0] };
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 8 });
        tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(4099), -8, 8);
        TEST_CHECK(x != NULL);
        float *xv = x ? x->data : NULL;
        for (size_t k = 0; xv && k < NSP; k++)
            xv[k * 7] = sp[k];
        tg_tensor *y = x ? tg_pow_scalar(ctx, x, cs[ci]) : NULL;
        int bad = 0;
        for (int64_t i = 0; y && i < x->numel; i++) {
            float want = (float)pow(xv[i], (double)cs[ci]), got = ((const float *)y->data)[i];
            int special = i % 7 == 0 && i / 7 < NSP, same = !memcmp(&want, &got, sizeof got) ||
                                                           (want != want && got != got);
            int near = fabsf(got - want) <= fabsf(nextafterf(want, INFINITY) - want);
            bad += !same && (special || cs[ci] == 2 || !near);
        }
        TEST_CHECK_MSG(y && bad == 0, "pow_scalar(x, %g): %d elements off", (double)cs[ci], bad);
        if (!isfinite(cs[ci])) {
            tg_ctx_free(ctx);
            continue;
        }
        /* the VJP at positive x: c x^(c-1), within 2 ulp of libm's */
        tg_tensor *xp = tg_tensor_rand(ctx, TG_F32, TG_DIMS(1031), 0.1, 8);
        TEST_CHECK(xp && tg_tensor_requires_grad(xp) == TG_OK);
        TEST_CHECK(xp && tg_backward(ctx, tg_sum_all(ctx, tg_pow_scalar(ctx, xp, cs[ci]))) == TG_OK);
        bad = 0;
        for (int64_t i = 0; xp && xp->grad && i < xp->numel; i++) {
            float v = ((const float *)xp->data)[i], got = ((const float *)xp->grad)[i];
            float want = 1.0f * cs[ci] * (float)pow(v, (double)(cs[ci] - 1));
            bad += !(got == want || fabsf(got - want) <= 2 * fabsf(nextafterf(want, INFINITY) - want));
        }
        TEST_CHECK_MSG(xp && xp->grad && bad == 0, "pow_scalar(x, %g) VJP: %d elements off", (double)cs[ci], bad);
        tg_ctx_free(ctx);
    }
}

/* pow of two f32 tensors of one shape runs tg_vm_powf per element (each
 * lane its own exponent): every pair of special and ordinary bases and
 * exponents, the very value of (float)pow(x, c) for the special ones
 * (zeros, infinities, NaN, +-1, negative bases with odd, even and
 * non-integer exponents, integers about 2^23 and 2^24 where parity stops)
 * and within an ulp for the rest; the VJP at positive bases within 2 ulp of
 * libm's formulas; a broadcast exponent (libm's pow) within an ulp. */
static void test_pow_f32(void)
{
    static const float xs[] = { -0.0f, 0.0f, INFINITY, -INFINITY, NAN, 1.0f, -1.0f, -2.0f, -0.5f, 2.0f, 0.5f,
                                1e-30f, 3e19f, -1e-45f, 1.5e-23f, -3.25f, 7.5f, 0.999f, -1.001f };
    static const float cs[] = { 0.0f, -0.0f, 1, -1, 2, 3, -3, 2.5f, -1.5f, 0.5f, 8388607.5f, 8388609.0f,
                                16777215.0f, 16777216.0f, -8388609.0f, 3e10f, 1e-3f, 100, -7,
                                INFINITY, -INFINITY, NAN };
    enum { NX = sizeof xs / sizeof xs[0], NC = sizeof cs / sizeof cs[0] };
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 9 });
    tg_tensor *a = tg_tensor_new(ctx, TG_F32, TG_DIMS(NX, NC)), *c = tg_tensor_new(ctx, TG_F32, TG_DIMS(NX, NC));
    TEST_CHECK(a && c);
    for (int i = 0; a && c && i < NX; i++)
        for (int j = 0; j < NC; j++) {
            ((float *)a->data)[i * NC + j] = xs[i];
            ((float *)c->data)[i * NC + j] = cs[j];
        }
    tg_tensor *y = a && c ? tg_pow(ctx, a, c) : NULL;
    int bad = 0;
    for (int i = 0; y && i < NX; i++)
        for (int j = 0; j < NC; j++) {
            float want = (float)pow((double)xs[i], (double)cs[j]), got = ((const float *)y->data)[i * NC + j];
            int same = !memcmp(&want, &got, sizeof got) || (want != want && got != got);
            int special = i < 15 || j < 16 || !isfinite(cs[j]);
            int near = fabsf(got - want) <= fabsf(nextafterf(want, INFINITY) - want);
            int off = !same && (special || !near);
            TEST_CHECK_MSG(!off, "pow(%g, %g) = %.9g, libm %.9g", (double)xs[i], (double)cs[j], (double)got,
                           (double)want);
            bad += off;
        }
    TEST_CHECK_MSG(y && bad == 0, "pow: %d pairs off", bad);

    /* random pairs, flat and with the exponent broadcast along rows */
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(64, 33), 0.05, 6);
    tg_tensor *e = tg_tensor_rand(ctx, TG_F32, TG_DIMS(64, 33), -4, 4);
    tg_tensor *e1 = tg_tensor_rand(ctx, TG_F32, TG_DIMS(64, 1), -4, 4);
    TEST_CHECK(x && e && e1 && tg_tensor_requires_grad(x) == TG_OK && tg_tensor_requires_grad(e) == TG_OK);
    tg_tensor *yf = tg_pow(ctx, x, e), *yb = tg_pow(ctx, x, e1);
    TEST_CHECK(yf && yb && tg_backward(ctx, tg_sum_all(ctx, yf)) == TG_OK);
    bad = 0;
    for (int64_t k = 0; yf && yb && x->grad && e->grad && k < x->numel; k++) {
        float xv = ((const float *)x->data)[k], ev = ((const float *)e->data)[k], bv = ((const float *)e1->data)[k / 33];
        float yv = (float)pow(xv, ev), yb_want = (float)pow(xv, bv);
        float gx = 1.0f * ev * (float)pow(xv, (double)(ev - 1)), ge = 1.0f * yv * (float)log(xv);
        float got[4] = { ((const float *)yf->data)[k], ((const float *)yb->data)[k],
                         ((const float *)x->grad)[k], ((const float *)e->grad)[k] };
        float want[4] = { yv, yb_want, gx, ge };
        for (int q = 0; q < 4; q++)
            bad += !(got[q] == want[q] ||
                     fabsf(got[q] - want[q]) <= (q < 2 ? 1 : 2) * fabsf(nextafterf(want[q], INFINITY) - want[q]));
    }
    TEST_CHECK_MSG(bad == 0, "pow on random operands: %d values off", bad);
    tg_ctx_free(ctx);
}

int main(void)
{
    test_hand();
    test_pow_scalar_f32();
    test_pow_f32();
    test_layouts();
    test_determinism();
    test_where();
    test_scalar_forms();
    test_descriptors();
    test_errors();
    return test_report("test_binary");
}
