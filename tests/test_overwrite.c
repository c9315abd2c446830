/* test_overwrite.c — VJPs that write a fresh gradient instead of adding to
 * it (tg_op_def.overwrites, TG_TENSOR_GRAD_ZERO), and ops whose output's
 * gradient the sweep hands on to an input (tg_op_def.passes_grad).
 *
 * - The reverse sweep: for every built-in op that declares it, over every
 *   sample variant, f32 and f64, the leaves' gradients are bit for bit those
 *   of the same graph with the op's declaration removed (the sweep then
 *   zeroes each buffer and the VJP adds), with the op the only consumer of
 *   its inputs, with a second consumer recorded after it (the op's VJP then
 *   runs second and must add), and with one tensor passed as every input;
 *   where the op passes its output's gradient on, equal as values (the
 *   buffer handed on keeps a -0 that 0 + g makes +0).
 * - A small graph against its closed form (fan-out through an overwriting
 *   op and an adding one).
 * - The gradient checker's "overwrite" contract: a correct user op passes,
 *   one that leaves an element unwritten or that adds into the fresh buffer
 *   fails, named. */
#include "tapegrad.h"
#include "stream.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- an identity op that only ever adds: puts an intermediate between a
 *      leaf and the op under test --------------------------------------- */

static tg_status same_shape(const tg_node *n, tg_dtype *dt, int *nd, int64_t *sh)
{
    *dt = n->in[0]->dtype;
    *nd = n->in[0]->ndim;
    memcpy(sh, n->in[0]->shape, sizeof(int64_t) * (size_t)n->in[0]->ndim);
    return TG_OK;
}

static size_t bytes_of(const tg_tensor *t) { return (size_t)t->numel * tg_dtype_size(t->dtype); }

static tg_status ident_forward(tg_node *n)
{
    memcpy(n->out->data, n->in[0]->data, bytes_of(n->out));
    return TG_OK;
}

static void ident_backward(tg_node *n)
{
    if (!n->in[0]->grad)
        return;
    for (int64_t k = 0; k < n->out->numel; k++)
        if (n->out->dtype == TG_F32)
            ((float *)n->in[0]->grad)[k] += ((const float *)n->out->grad)[k];
        else
            ((double *)n->in[0]->grad)[k] += ((const double *)n->out->grad)[k];
}

static const tg_op_def ident_def = { .name = "t_ident", .n_in = 1, .shape = same_shape,
                                     .forward = ident_forward, .backward = ident_backward };

/* ---- the sweep against the same graph without the declaration ---------- */

enum { ALONE, SECOND_CONSUMER, ONE_TENSOR };

/* Run op `def` on sample `v` (dtype dt) behind identity ops, seed its output
 * with fixed values and sweep; the leaves' gradients go to g (flat, in
 * input order). Returns the number of values written, or -1 when the
 * variant does not apply (ONE_TENSOR with differing inputs) or fails. */
static int64_t run(const tg_op_def *def, tg_dtype dt, int v, int mode, int threads, double *g, int64_t cap)
{
    tg_ctx_opts o = { .seed = 7, .n_threads = threads };
    tg_ctx *ctx = tg_ctx_new(&o);
    if (!ctx)
        return -1;
    tg_node s = { .def = def, .ctx = ctx };
    int64_t got = -1;
    if (def->sample(&s, dt, v) != TG_OK)
        goto out;
    tg_tensor *leaf[TG_MAX_IN] = {0}, *in[TG_MAX_IN];
    for (int i = 0; i < s.n_in; i++) {
        in[i] = s.in[i];
        if ((def->nondiff >> i) & 1u || !tg_dtype_is_float(s.in[i]->dtype))
            continue;
        if (mode == ONE_TENSOR && (s.in[i]->dtype != s.in[0]->dtype ||
                                   !tg_shape_equal(s.in[i]->ndim, s.in[i]->shape, s.in[0]->ndim, s.in[0]->shape)))
            goto out;
        leaf[i] = s.in[i];
        if (tg_tensor_requires_grad(leaf[i]) != TG_OK)
            goto out;
        in[i] = tg_apply(ctx, &ident_def, &leaf[i], 1, NULL, NULL);
        if (mode == ONE_TENSOR && i > 0)
            in[i] = in[0];
    }
    if (mode == ONE_TENSOR && (s.n_in < 2 || !leaf[0]))
        goto out;
    tg_tensor *y = tg_apply(ctx, def, in, s.n_in, &s.p, s.user);
    if (!y)
        goto out;
    tg_tensor *seed = tg_tensor_new(ctx, y->dtype, y->ndim, y->shape);
    if (!seed)
        goto out;
    for (int64_t k = 0; k < y->numel; k++)
        tg_tensor_set(seed, k, 0.25 + 0.125 * (double)(k % 7) - 0.5 * (double)(k % 2));
    if (mode == SECOND_CONSUMER) {
        /* A later consumer of every intermediate: its VJP runs first. */
        for (int i = 0; i < s.n_in; i++)
            if (leaf[i]) {
                tg_tensor *t = tg_apply(ctx, &ident_def, &in[i], 1, NULL, NULL);
                tg_tensor *c = tg_sum_all(ctx, tg_mul_scalar(ctx, t, 0.75));
                tg_tensor *yc = tg_sum_all(ctx, tg_mul(ctx, y, seed));
                y = tg_add(ctx, yc, c);
                seed = NULL;
                break;
            }
    }
    if (seed ? tg_backward_seed(ctx, y, seed) != TG_OK : tg_backward(ctx, y) != TG_OK)
        goto out;
    got = 0;
    for (int i = 0; i < s.n_in; i++)
        for (int64_t k = 0; leaf[i] && k < leaf[i]->numel && got < cap; k++)
            g[got++] = tg_tensor_grad_get(leaf[i], k);
out:
    tg_ctx_free(ctx);
    return got;
}

/* a == b bit for bit, or (pass-through: the output's gradient itself, not
 * 0 + it) a signed zero against the other. */
static int same(double a, double b, int pass)
{
    return memcmp(&a, &b, sizeof a) == 0 || (pass && a == b);
}

static void check_op(const tg_op_def *def)
{
    tg_op_def adds = *def;
    adds.overwrites = 0;
    adds.passes_grad = 0;
    static double a[1 << 14], b[1 << 14];
    int n_cases = 0;
    for (int dt = 0; dt < 4; dt++)   /* f64, f32, then both with every fresh gradient streamed */
        for (int v = 0; v < def->n_samples; v++)
            for (int mode = ALONE; mode <= ONE_TENSOR; mode++)
                for (int threads = 1; threads <= 2; threads++) {
                    tg_dtype t = dt & 1 ? TG_F32 : TG_F64;
                    tg_stream_set_min_bytes(0, dt >= 2);
                    int64_t na = run(def, t, v, mode, threads, a, 1 << 14);
                    tg_stream_set_min_bytes(0, 0);
                    int64_t nb = run(&adds, t, v, mode, threads, b, 1 << 14);
                    TEST_CHECK_MSG(na == nb, "%s variant %d mode %d: %lld vs %lld gradients", def->name, v, mode,
                                   (long long)na, (long long)nb);
                    if (na <= 0 || na != nb)
                        continue;
                    n_cases++;
                    int64_t k = 0;
                    while (k < na && same(a[k], b[k], def->passes_grad != 0))
                        k++;
                    TEST_CHECK_MSG(k == na, "%s %s%s variant %d mode %d threads %d: gradient %lld is %.17g "
                                   "overwriting, %.17g adding", def->name, dt & 1 ? "f32" : "f64",
                                   dt >= 2 ? " streamed" : "", v, mode, threads,
                                   (long long)k, k < na ? a[k] : 0, k < na ? b[k] : 0);
                }
    TEST_CHECK_MSG(n_cases > 0, "%s: no case ran", def->name);
}

/* Fresh gradients written with streaming stores (stream.h; the threshold
 * forced to 0) hold the bits of ordinary stores: a bench_sweep-like graph
 * (tanh, scalar mul, add, relu, sigmoid, mul, sub, sum) over 70001
 * elements (chunks of 1024 and a partial one, a thread split inside a
 * chunk), f32 and f64, 1 and 2 threads. */
static void sweep_graph(tg_dtype dt, int threads, double *g, int64_t n)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 3, .n_threads = threads });
    int64_t sh[1] = { n };
    tg_tensor *x = tg_tensor_rand(ctx, dt, 1, sh, -2, 2);
    TEST_CHECK(x && tg_tensor_requires_grad(x) == TG_OK);
    tg_tensor *a = tg_tanh(ctx, tg_mul_scalar(ctx, x, 1.0));
    tg_tensor *c = tg_add(ctx, tg_mul_scalar(ctx, a, 2.0), a);
    tg_tensor *d = tg_sub(ctx, tg_mul(ctx, tg_sigmoid(ctx, tg_relu(ctx, c)), a), tg_neg(ctx, c));
    TEST_CHECK_MSG(d && tg_backward(ctx, tg_sum_all(ctx, d)) == TG_OK, "%s", tg_ctx_error(ctx));
    for (int64_t k = 0; k < n; k++)
        g[k] = tg_tensor_grad_get(x, k);
    tg_ctx_free(ctx);
}

static void test_streamed_fresh(void)
{
    enum { N = 70001 };
    static double plain[N], streamed[N];
    for (int dt = 0; dt < 2; dt++)
        for (int threads = 1; threads <= 2; threads++) {
            tg_stream_set_min_bytes(SIZE_MAX, 1);
            sweep_graph(dt ? TG_F32 : TG_F64, threads, plain, N);
            tg_stream_set_min_bytes(0, 1);
            sweep_graph(dt ? TG_F32 : TG_F64, threads, streamed, N);
            tg_stream_set_min_bytes(0, 0);
            TEST_CHECK_MSG(memcmp(plain, streamed, sizeof plain) == 0, "%s, %d threads: streamed fresh gradients "
                           "differ", dt ? "f32" : "f64", threads);
        }
}

/* cross_entropy's VJP into a fresh f32 gradient writes each row (with
 * streaming stores when the rows are whole vectors and the threshold is
 * met) and subtracts g at the label's lane before the store: x.grad of
 * CE(x * 1) must hold the bits of the accumulating VJP (forced by a second,
 * zero, contribution recorded after it: sum(z * 0) runs first), streamed
 * or not, and match softmax - onehot in double. Rows of 80 (vector blocks
 * and a tail; 300 of them split over 2 threads), 64, 4133 (no whole
 * vectors at the end) and 10 (masked vectors); labels in the blocks and
 * in the tails; 1 and 2 threads. */
static void ce_grads(int64_t rows, int64_t cols, int threads, int accumulate, float *g)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 9, .n_threads = threads });
    int64_t sh[2] = { rows, cols };
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, 2, sh, -4, 4);
    tg_tensor *lab = tg_tensor_new(ctx, TG_I32, 1, sh);
    TEST_CHECK(x && lab && tg_tensor_requires_grad(x) == TG_OK);
    for (int64_t i = 0; lab && i < rows; i++)
        tg_tensor_set(lab, i, (double)((i * 37 + cols - 1 - (i % 3)) % cols));
    tg_tensor *z = tg_mul_scalar(ctx, x, 1.0);
    tg_tensor *L = tg_cross_entropy(ctx, z, lab, TG_REDUCE_MEAN);
    if (accumulate)
        L = tg_add(ctx, L, tg_sum_all(ctx, tg_mul_scalar(ctx, z, 0.0)));
    TEST_CHECK_MSG(L && tg_backward(ctx, L) == TG_OK, "%s", tg_ctx_error(ctx));
    for (int64_t k = 0; k < rows * cols; k++)
        g[k] = (float)tg_tensor_grad_get(x, k);
    for (int64_t i = 0; i < rows; i++) {   /* softmax - onehot, over rows */
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < cols; j++)
            mx = fmax(mx, tg_tensor_get(x, i * cols + j));
        for (int64_t j = 0; j < cols; j++)
            sum += exp(tg_tensor_get(x, i * cols + j) - mx);
        for (int64_t j = 0; j < cols; j++) {
            double want = (exp(tg_tensor_get(x, i * cols + j) - mx) / sum -
                           (j == (int64_t)tg_tensor_get(lab, i))) / (double)rows;
            TEST_CLOSE(g[i * cols + j], want, 1e-7, 1e-4);
        }
    }
    tg_ctx_free(ctx);
}

static void test_ce_fresh(void)
{
    static const int64_t shapes[][2] = { {37, 80}, {300, 80}, {9, 64}, {3, 4133}, {12, 10} };
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (int threads = 1; threads <= 2; threads++) {
            int64_t n = shapes[k][0] * shapes[k][1];
            float *acc = malloc((size_t)n * sizeof *acc), *fresh = malloc((size_t)n * sizeof *fresh);
            float *streamed = malloc((size_t)n * sizeof *streamed);
            TEST_CHECK(acc && fresh && streamed);
            if (!acc || !fresh || !streamed) {
                free(acc); free(fresh); free(streamed);
                return;
            }
            tg_stream_set_min_bytes(SIZE_MAX, 1);
            ce_grads(shapes[k][0], shapes[k][1], threads, 1, acc);
            ce_grads(shapes[k][0], shapes[k][1], threads, 0, fresh);
            tg_stream_set_min_bytes(0, 1);
            ce_grads(shapes[k][0], shapes[k][1], threads, 0, streamed);
            tg_stream_set_min_bytes(0, 0);
            TEST_CHECK_MSG(!memcmp(acc, fresh, (size_t)n * sizeof *acc) &&
                           !memcmp(acc, streamed, (size_t)n * sizeof *acc),
                           "cross_entropy %lldx%lld, %d threads: the fresh gradient (%s) differs from the "
                           "accumulated one", (long long)shapes[k][0], (long long)shapes[k][1], threads,
                           memcmp(acc, fresh, (size_t)n * sizeof *acc) ? "plain" : "streamed");
            free(acc); free(fresh); free(streamed);
        }
}

/* ---- a graph with a closed form ------------------------------------------ */

/* L = sum(tanh(2x)) + sum(2x): a = 2x feeds tanh (recorded first, so its VJP
 * runs last and adds) and the sum (whose VJP runs first into the fresh
 * buffer). dL/dx = 2 (1 - tanh(2x)^2) + 2. And x·x through matmul, one
 * tensor as both inputs: d sum(x·x)/dx = (1ᵀ... ) checked in closed form. */
static void test_closed_form(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    int64_t sh[2] = { 3, 3 };
    double xs[9] = { -1.5, -0.75, -0.1, 0, 0.2, 0.5, 0.9, 1.3, 2.0 };
    tg_tensor *x = tg_tensor_from(ctx, TG_F64, 2, sh, xs);
    TEST_CHECK(x && tg_tensor_requires_grad(x) == TG_OK);
    tg_tensor *a = tg_mul_scalar(ctx, x, 2.0);
    tg_tensor *l = tg_add(ctx, tg_sum_all(ctx, tg_tanh(ctx, a)), tg_sum_all(ctx, a));
    TEST_CHECK_MSG(l && tg_backward(ctx, l) == TG_OK, "%s", tg_ctx_error(ctx));
    for (int k = 0; k < 9; k++) {
        double t = tanh(2 * xs[k]);
        TEST_CLOSE(tg_tensor_grad_get(x, k), 2 * (1 - t * t) + 2, 1e-15, 1e-14);
    }
    /* S = sum(X·X): dS/dX = 1·(X·1)ᵀ... element (i, j): sum_k X[j][k] + sum_k X[k][i]. */
    tg_tensor_zero_grad(x);
    tg_tensor *b = tg_mul_scalar(ctx, x, 1.0);
    tg_tensor *s = tg_sum_all(ctx, tg_matmul(ctx, b, b));
    TEST_CHECK_MSG(s && tg_backward(ctx, s) == TG_OK, "%s", tg_ctx_error(ctx));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double want = 0;
            for (int k = 0; k < 3; k++)
                want += xs[j * 3 + k] + xs[k * 3 + i];
            TEST_CLOSE(tg_tensor_grad_get(x, i * 3 + j), want, 1e-14, 1e-14);
        }
    tg_ctx_free(ctx);
}

/* Pass-through (add, reshape): L = sum(reshape(r + r²)), r = h + tanh(h),
 * h = 1·x. dL/dr = 1 + 2r; dL/dx = (1 + 2r)(2 - tanh(h)²). add hands its
 * output's gradient buffer to r (once, not to r twice), reshape to its
 * input; r's retained gradient must stay dL/dr although h's gradient is
 * accumulated after it (a retained gradient is never handed on). */
static void test_residual(void)
{
    for (int retain = 0; retain < 2; retain++) {
        tg_ctx *ctx = tg_ctx_new(NULL);
        int64_t sh[2] = { 2, 3 }, flat[1] = { 6 };
        double xs[6] = { -1.2, -0.3, 0, 0.4, 0.8, 1.6 };
        tg_tensor *x = tg_tensor_from(ctx, TG_F64, 2, sh, xs);
        TEST_CHECK(x && tg_tensor_requires_grad(x) == TG_OK);
        tg_tensor *h = tg_mul_scalar(ctx, x, 1.0);
        tg_tensor *r = tg_add(ctx, h, tg_tanh(ctx, h));
        if (retain)
            tg_retain_grad(r);
        tg_tensor *q = tg_add(ctx, r, tg_square(ctx, r));
        tg_tensor *L = tg_sum_all(ctx, tg_reshape(ctx, q, 1, flat));
        TEST_CHECK_MSG(L && tg_backward(ctx, L) == TG_OK, "%s", tg_ctx_error(ctx));
        for (int k = 0; k < 6; k++) {
            double t = tanh(xs[k]), rv = xs[k] + t;
            TEST_CLOSE(tg_tensor_grad_get(x, k), (1 + 2 * rv) * (2 - t * t), 1e-15, 1e-14);
            if (retain)
                TEST_CLOSE(tg_tensor_grad_get(r, k), 1 + 2 * rv, 1e-15, 1e-15);
        }
        TEST_CHECK(retain || r->grad == NULL);
        tg_ctx_free(ctx);
    }
}

/* A DAG with fan-out, broadcasting, reshapes, pass-through and buffers the
 * sweep frees and takes back (same-sized gradients die and are reused),
 * with some intermediates retained or not (ud): its tape gradient against
 * f64 finite differences (tg_gradcheck_fn_check, independent of the sweep). */
static tg_tensor *dag(tg_ctx *ctx, tg_tensor *const *in, int n_in, void *ud)
{
    (void)n_in;
    int retain = *(const int *)ud;
    int64_t t64[2] = { 6, 4 };
    tg_tensor *a = tg_tanh(ctx, in[0]);                      /* (4, 6) */
    tg_tensor *b = tg_add(ctx, a, in[1]);                     /* + (6): broadcast */
    tg_tensor *c = tg_mul(ctx, b, a);
    tg_tensor *f = tg_add(ctx, tg_reshape(ctx, c, 2, t64), tg_reshape(ctx, a, 2, t64));
    tg_tensor *g = tg_sub(ctx, tg_sigmoid(ctx, f), tg_reshape(ctx, b, 2, t64));
    int ax = 0;
    tg_tensor *k = tg_sum(ctx, tg_square(ctx, g), &ax, 1, 0);  /* (4) */
    if (retain && c && f) {
        tg_retain_grad(c);
        tg_retain_grad(f);
    }
    return tg_mul(ctx, k, tg_exp(ctx, k));
}

static void test_dag(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    int64_t xs[2] = { 4, 6 }, ws[1] = { 6 };
    tg_tensor *in[2] = { tg_tensor_rand(ctx, TG_F64, 2, xs, -1, 1), tg_tensor_rand(ctx, TG_F64, 1, ws, -0.5, 0.5) };
    for (int retain = 0; retain < 2; retain++)
        for (int f32 = 0; f32 < 2; f32++) {
            tg_gradcheck_report r;
            tg_gradcheck_opts o = { .f32 = f32 };
            TEST_CHECK(tg_gradcheck_fn_check(dag, &retain, in, 2, &o, &r) == TG_OK);
            TEST_CHECK_MSG(r.passed, "retain %d f32 %d: %s", retain, f32, r.message);
        }
    tg_ctx_free(ctx);
}

/* An empty output with a broadcast operand that has elements: (0, 3) +
 * (3). The (3) operand's fresh gradient must come out zeros, though no
 * element of the output reaches it (found by review: the equal-shape path
 * wrote nothing). The arena is poisoned (NaN bytes), so a gradient left
 * unwritten shows. Each binary op, each side. */
static void test_empty_broadcast(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_poison(ctx, 1);
    int64_t e[2] = { 0, 3 }, v[1] = { 3 };
    double pv[3] = { 0.5, -1, 2 };
    tg_tensor *(*const ops[])(tg_ctx *, tg_tensor *, tg_tensor *) = { tg_add, tg_sub, tg_mul, tg_div };
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
        for (int side = 0; side < 2; side++) {
            tg_tensor *p = tg_tensor_from(ctx, TG_F64, 1, v, pv);
            TEST_CHECK(p && tg_tensor_requires_grad(p) == TG_OK && p->grad);
            if (p && p->grad)
                memset(p->grad, 0, 3 * sizeof(double));   /* the poisoned arena gave NaN */
            tg_tensor *q = tg_mul_scalar(ctx, tg_exp(ctx, p), 2.0), *z = tg_tensor_fill(ctx, TG_F64, 2, e, 1.0);
            tg_tensor *L = tg_sum_all(ctx, side ? ops[o](ctx, q, z) : ops[o](ctx, z, q));
            TEST_CHECK_MSG(L && tg_backward(ctx, L) == TG_OK, "%s", tg_ctx_error(ctx));
            for (int k = 0; k < 3; k++)
                TEST_CHECK_MSG(tg_tensor_grad_get(p, k) == 0.0, "op %zu side %d: dL/dp[%d] = %g", o, side, k,
                               tg_tensor_grad_get(p, k));
            tg_ctx_reset(ctx);
        }
    tg_ctx_free(ctx);
}

/* A VJP that fails (its scratch, say) after the sweep handed it a retained
 * gradient unwritten: the retained gradient reads zeros afterwards, not old
 * bytes (poisoned arena: NaN). */
static void failing_backward(tg_node *n)
{
    tg_ctx_fail(n->ctx, TG_ERR_NOMEM, "t_fail: no scratch");
}

static const tg_op_def fail_def = { .name = "t_fail", .n_in = 1, .overwrites = 1, .shape = same_shape,
                                    .forward = ident_forward, .backward = failing_backward };

static void test_failed_vjp_retained(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_poison(ctx, 1);
    int64_t v[1] = { 4 };
    tg_tensor *x = tg_tensor_fill(ctx, TG_F64, 1, v, 0.5);
    TEST_CHECK(x && tg_tensor_requires_grad(x) == TG_OK);
    tg_tensor *h = tg_mul_scalar(ctx, x, 3.0);
    tg_retain_grad(h);
    tg_tensor *L = tg_sum_all(ctx, tg_apply(ctx, &fail_def, &h, 1, NULL, NULL));
    TEST_CHECK(L && tg_backward(ctx, L) == TG_ERR_NOMEM);
    TEST_CHECK(h->grad != NULL);
    for (int k = 0; k < 4 && h->grad; k++)
        TEST_CHECK_MSG(tg_tensor_grad_get(h, k) == 0.0, "retained gradient %d: %g", k, tg_tensor_grad_get(h, k));
    for (int k = 0; k < 4; k++)
        TEST_CHECK(tg_tensor_grad_get(x, k) == 0.0);   /* the sweep stopped before x */
    tg_ctx_free(ctx);
}

/* tg_backward_seed reads a seed of the output's dtype in place: the seed
 * is left as it was, also when the root is an add or a reshape (whose
 * output buffer would otherwise be handed on and added into), and the
 * gradients are the seed's pull-back. */
static void test_seed_in_place(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    int64_t sh[2] = { 2, 3 }, flat[1] = { 6 };
    double sv[6] = { 0.5, -1.25, 2, -0.0, 3.5, -4 }, xv[6] = { 1, 2, 3, 4, 5, 6 };
    for (int root = 0; root < 4; root++) {
        tg_tensor *x = tg_tensor_from(ctx, TG_F64, 2, sh, xv);
        TEST_CHECK(x && tg_tensor_requires_grad(x) == TG_OK);
        tg_tensor *h = tg_mul_scalar(ctx, x, 2.0), *y;
        tg_tensor *seed = tg_tensor_from(ctx, TG_F64, root == 2 ? 1 : 2, root == 2 ? flat : sh, sv);
        if (root == 0)
            y = tg_add(ctx, h, x);                     /* dx = 2 s + s */
        else if (root == 1)
            y = tg_sub(ctx, h, tg_tanh(ctx, x));      /* dx = 2 s - s (1 - tanh^2) */
        else if (root == 2)
            y = tg_reshape(ctx, tg_add(ctx, h, x), 1, flat);
        else                                           /* h has a second consumer */
            y = tg_add(ctx, h, tg_tanh(ctx, h));      /* dx = 2 s (2 - tanh(2x)^2) */
        TEST_CHECK_MSG(y && seed && tg_backward_seed(ctx, y, seed) == TG_OK, "%s", tg_ctx_error(ctx));
        TEST_CHECK(seed && memcmp(seed->data, sv, sizeof sv) == 0);
        for (int k = 0; k < 6; k++) {
            double t = tanh(xv[k]), t2 = tanh(2 * xv[k]);
            double want = root == 1 ? 2 * sv[k] - sv[k] * (1 - t * t)
                        : root == 3 ? 2 * sv[k] * (2 - t2 * t2) : 3 * sv[k];
            TEST_CLOSE(tg_tensor_grad_get(x, k), want, 1e-15, 1e-15);
        }
        tg_ctx_reset(ctx);
    }
    /* A seed over the very gradient the root's VJP adds into (found by
     * review): copied, not borrowed, so x's gradient g becomes g + 2g. */
    tg_tensor *x = tg_tensor_from(ctx, TG_F64, 2, sh, xv);
    TEST_CHECK(x && tg_tensor_requires_grad(x) == TG_OK);
    for (int k = 0; k < 6 && x; k++)
        ((double *)x->grad)[k] = sv[k];
    tg_tensor *y = tg_add(ctx, x, x), *seed = x ? tg_tensor_wrap(ctx, TG_F64, 2, sh, x->grad) : NULL;
    TEST_CHECK_MSG(y && seed && tg_backward_seed(ctx, y, seed) == TG_OK, "%s", tg_ctx_error(ctx));
    for (int k = 0; k < 6; k++)
        TEST_CLOSE(tg_tensor_grad_get(x, k), 3 * sv[k], 0, 0);
    tg_ctx_free(ctx);
}

/* ---- the checker's contract ---------------------------------------------- */

static tg_status twice_forward(tg_node *n)
{
    for (int64_t k = 0; k < n->out->numel; k++)
        ((double *)n->out->data)[k] = 2 * ((const double *)n->in[0]->data)[k];
    return TG_OK;
}

static int bug;   /* 0: correct; 1: the last element left; 2: adds regardless */

static void twice_backward(tg_node *n)
{
    double *dx = n->in[0]->grad;
    const double *dy = n->out->grad;
    if (!dx)
        return;
    int ow = tg_vjp_overwrites(n, 0) && bug != 2;   /* the public test a user's VJP makes */
    int64_t len = n->out->numel - (ow && bug == 1 ? 1 : 0);
    for (int64_t k = 0; k < len; k++)
        dx[k] = (ow ? 0.0 : dx[k]) + 2 * dy[k];
}

static tg_status twice_sample(tg_node *n, tg_dtype dt, int v)
{
    int64_t sh[2] = { 2, 3 };
    if (v != 0)
        return TG_ERR_ARG;
    (void)dt;
    n->n_in = 1;
    n->in[0] = tg_tensor_rand(n->ctx, TG_F64, 2, sh, -1, 1);
    return n->in[0] ? TG_OK : TG_ERR_NOMEM;
}

static const tg_op_def twice_def = { .name = "t_twice", .n_in = 1, .overwrites = 1, .shape = same_shape,
                                     .forward = twice_forward, .backward = twice_backward,
                                     .sample = twice_sample, .n_samples = 1 };

static void test_contract(void)
{
    tg_gradcheck_report r;
    for (bug = 0; bug <= 2; bug++) {
        TEST_CHECK(tg_gradcheck_op(&twice_def, NULL, &r) == TG_OK);
        if (bug == 0) {
            TEST_CHECK_MSG(r.passed, "%s", r.message);
            continue;
        }
        TEST_CHECK(!r.passed);
        TEST_CHECK_MSG(r.contract_failures == TG_GC_OVERWRITE, "bug %d: contracts 0x%x: %s", bug,
                       r.contract_failures, r.message);
        TEST_CHECK_MSG(strstr(r.message, "overwrite") && strstr(r.message, "input 0"), "%s", r.message);
        if (bug == 1)
            TEST_CHECK_MSG(strstr(r.message, "[1, 2] (flat 5)"), "%s", r.message);
        /* Without the declaration the same code passes: the contract only
         * holds ops to what they declare. */
        tg_op_def undeclared = twice_def;
        undeclared.overwrites = 0;
        TEST_CHECK(tg_gradcheck_op(&undeclared, NULL, &r) == TG_OK);
        TEST_CHECK_MSG(r.passed, "%s", r.message);
    }
    TEST_CHECK(strcmp(tg_gradcheck_contract_name(TG_GC_OVERWRITE), "overwrite") == 0);
}

int main(void)
{
    int declared = 0;
    for (size_t id = 0; id < tg_op_count(); id++) {
        const tg_op_def *def = tg_op_get(id);
        if ((def->overwrites || def->passes_grad) && def->backward) {
            declared++;
            check_op(def);
        }
    }
    TEST_CHECK(declared >= 20);
    TEST_CHECK(tg_op_find("tanh")->overwrites == 1 && tg_op_find("matmul")->overwrites == 3);
    TEST_CHECK(tg_op_find("add")->passes_grad == 3 && tg_op_find("reshape")->passes_grad == 1);
    test_residual();
    test_dag();
    test_empty_broadcast();
    test_failed_vjp_retained();
    test_seed_in_place();
    test_streamed_fresh();
    test_ce_fresh();
    test_closed_form();
    test_contract();
    return test_report("test_overwrite");
}
