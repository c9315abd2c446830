/* test_util.h — helpers shared by the op-family tests (include after
 * tapegrad.h and test.h). Gradients and the VJP contracts of every sample
 * variant are checked over the whole registry by test_ops_grad.c and
 * test_ops_f32.c, and the PyTorch reference cases by test_reference.c; the
 * family tests keep hand-computed cases, edge cases and errors, and use:
 *   tu_tensor        a tensor of any dtype from doubles (optionally a leaf
 *                    that requires a gradient)
 *   tu_close         |a - b| <= atol + rtol |b|; NaN matches NaN, inf itself
 *   tu_check_values  a tensor's data (or gradient) against expected doubles
 *   tu_shape_is      t is non-NULL and has the given shape
 *   tu_vjp           backward from y with an upstream gradient of doubles
 *   TU_EXPECT_ERR    a call returns NULL, sets a status and a message
 *                    containing a text (TU_EXPECT_ERR_IS: exactly that text),
 *                    then clears the error
 *   tu_check_op      what the registry-wide checks do not look at: an op's
 *                    descriptor, sample range, cost hook, edge-shape sample,
 *                    and a VJP with no gradient wanted
 *   tu_run1          y = op(x) and d sum(y) / dx for a few values of x, for
 *                    elementwise ops of one input (tu_op1 names the op)
 *   tu_check_bad_input1  an op of one input rejects i32 and NULL inputs */
#ifndef TG_TEST_UTIL_H
#define TG_TEST_UTIL_H

#include <math.h>
#include <string.h>

/* A tensor of dtype dt holding `v` (NULL: 1, 2, 3, ...), requiring a
 * gradient when `grad`. */
static inline tg_tensor *tu_tensor(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, const double *v,
                                   int grad)
{
    tg_tensor *t = tg_tensor_new(ctx, dt, ndim, shape);
    if (!t)
        return NULL;
    for (int64_t i = 0; i < t->numel; i++)
        tg_tensor_set(t, i, v ? v[i] : (double)(i + 1));
    if (grad)
        tg_tensor_requires_grad(t);
    return t;
}

static inline int tu_close(double a, double b, double atol, double rtol)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    return fabs(a - b) <= atol + rtol * fabs(b);
}

/* t's data (grad when `grad`) has n elements, each within atol + rtol |want|
 * (0, 0: bit-exact values). Reports the first mismatch under the caller's
 * label `what`. */
#define tu_check_values(/* what, t, grad, want, n, atol, rtol */...) \
    tu_check_values_at(__FILE__, __LINE__, __VA_ARGS__)

static inline void tu_check_values_at(const char *file, int line, const char *what, const tg_tensor *t, int grad,
                                      const double *want, int64_t n, double atol, double rtol)
{
    const char *bad = NULL;
    int64_t at = -1;
    double got = 0;
    if (!t)
        bad = "no tensor";
    else if (t->numel != n)
        bad = "element count differs";
    else if (grad && !t->grad)
        bad = "no gradient";
    for (int64_t i = 0; !bad && i < n; i++) {
        got = grad ? tg_tensor_grad_get(t, i) : tg_tensor_get(t, i);
        if (!tu_close(got, want[i], atol, rtol)) {
            bad = "value";
            at = i;
        }
    }
    if (!bad) {
        test_passed_++;
        return;
    }
    test_failed_++;
    fprintf(stderr, "FAIL %s:%d: %s%s: %s", file, line, what, grad ? " (gradient)" : "", bad);
    if (at >= 0)
        fprintf(stderr, " at [%lld]: %.17g, expected %.17g", (long long)at, got, want[at]);
    fputc('\n', stderr);
}

static inline int tu_shape_is(const tg_tensor *t, int ndim, const int64_t *shape)
{
    return t && tg_shape_equal(t->ndim, t->shape, ndim, shape);
}

/* Backward from y with upstream gradient dy (y->numel doubles) in y's dtype. */
static inline tg_status tu_vjp(tg_ctx *ctx, tg_tensor *y, const double *dy)
{
    if (!y)
        return TG_ERR_ARG;
    return tg_backward_seed(ctx, y, tu_tensor(ctx, y->dtype, y->ndim, y->shape, dy, 0));
}

#define TU_EXPECT_ERR_(ctx, call, st, text, exact) do {                               \
        tg_tensor *r_ = (call);                                                        \
        const char *e_ = tg_ctx_error(ctx);                                            \
        TEST_CHECK_MSG(r_ == NULL && tg_ctx_status(ctx) == (st) &&                     \
                       ((exact) ? strcmp(e_, (text)) == 0 : strstr(e_, (text)) != NULL), \
                       "%s: %s, status %d, error \"%s\", expected %d and \"%s\"", #call, \
                       r_ ? "returned a tensor" : "returned NULL", (int)tg_ctx_status(ctx), \
                       e_, (int)(st), (text));                                         \
        tg_ctx_clear_error(ctx);                                                       \
    } while (0)
#define TU_EXPECT_ERR(ctx, call, st, text)    TU_EXPECT_ERR_(ctx, call, st, text, 0)
#define TU_EXPECT_ERR_IS(ctx, call, st, text) TU_EXPECT_ERR_(ctx, call, st, text, 1)

/* ---- the descriptor of a registered op ------------------------------------ */

enum {
    TU_FWD_FLOPS  = 1u << 0,   /* the forward costs flops (not a pure copy)     */
    TU_EDGE_SHAPE = 1u << 1,   /* some sample has a scalar or a size-1 dim      */
    TU_EW_BYTES   = 1u << 2    /* elementwise traffic: forward moves >= 2, the
                                  VJP >= 3 elements per output element        */
};

/* Checks of `name`'s descriptor that the registry-wide gradient and f32
 * tests do not make: it is registered with a sample, a VJP and a cost hook;
 * 1..4 variants (at least `min_variants`), and variants out of range are
 * refused with TG_ERR_ARG; every variant is small (inputs <= 60 elements,
 * output <= 64), integer inputs are marked nondiff and the differentiable
 * ones are float; the cost is positive (flags: see above); and a VJP with
 * no input gradient wanted (all NULL) writes none. */
static inline void tu_check_op(const char *name, int min_variants, unsigned flags)
{
    const tg_op_def *def = tg_op_find(name);
    TEST_CHECK_MSG(def != NULL, "op %s is not registered", name);
    if (!def)
        return;
    TEST_CHECK_MSG(def->sample && def->backward && def->cost, "%s: descriptor lacks sample, backward or cost",
                   name);
    TEST_CHECK_MSG(def->n_samples >= min_variants && def->n_samples <= 4, "%s: %d sample variants", name,
                   def->n_samples);
    if (!def->sample || !def->backward || !def->cost)
        return;
    int saw_edge = 0;
    for (int v = 0; v < def->n_samples; v++) {
        tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 100u + (uint64_t)v });
        tg_ctx_set_poison(ctx, 1);
        tg_node n;
        memset(&n, 0, sizeof n);
        n.def = def;
        n.ctx = ctx;
        int ok = def->sample(&n, TG_F64, v) == TG_OK && tg_node_run(&n) == TG_OK;
        TEST_CHECK_MSG(ok, "%s variant %d: %s", name, v, tg_ctx_error(ctx));
        if (!ok) {
            tg_ctx_free(ctx);
            continue;
        }
        TEST_CHECK_MSG(n.out->numel <= 64, "%s variant %d: %lld outputs", name, v, (long long)n.out->numel);
        for (int i = 0; i < n.n_in; i++) {
            const tg_tensor *x = n.in[i];
            int nondiff = (def->nondiff >> i) & 1;
            TEST_CHECK_MSG(x->numel <= 60, "%s variant %d: input %d has %lld elements", name, v, i,
                           (long long)x->numel);
            TEST_CHECK_MSG(tg_dtype_is_float(x->dtype) || nondiff, "%s variant %d: input %d is %s but not nondiff",
                           name, v, i, tg_dtype_name(x->dtype));
            saw_edge |= x->ndim == 0;
            for (int k = 0; k < x->ndim; k++)
                saw_edge |= x->shape[k] == 1;
        }
        tg_op_cost c;
        memset(&c, 0, sizeof c);
        def->cost(&n, &c);
        double e = (double)n.out->numel * 8;
        int cost_ok = c.fwd_bytes > 0 && c.bwd_bytes > 0 && c.bwd_flops > 0 &&
                      (!(flags & TU_FWD_FLOPS) || c.fwd_flops > 0) &&
                      (!(flags & TU_EW_BYTES) || (c.fwd_bytes >= 2 * e && c.bwd_bytes >= 3 * e));
        TEST_CHECK_MSG(cost_ok, "%s variant %d: cost %g/%g flops, %g/%g bytes", name, v, c.fwd_flops,
                       c.bwd_flops, c.fwd_bytes, c.bwd_bytes);
        /* All input gradients NULL: the VJP must write none (nor crash). */
        n.out->grad = tg_tensor_fill(ctx, TG_F64, n.out->ndim, n.out->shape, 1.0)->data;
        for (int i = 0; i < n.n_in; i++)
            n.in[i]->grad = NULL;
        def->backward(&n);
        int none = 1;
        for (int i = 0; i < n.n_in; i++)
            none &= n.in[i]->grad == NULL;
        TEST_CHECK_MSG(none && tg_ctx_status(ctx) == TG_OK, "%s variant %d: VJP with no gradient wanted", name, v);
        tg_ctx_free(ctx);
    }
    TEST_CHECK_MSG(!(flags & TU_EDGE_SHAPE) || saw_edge, "%s: no sample with a scalar or a size-1 dim", name);
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_node n;
    memset(&n, 0, sizeof n);
    n.def = def;
    n.ctx = ctx;
    TEST_CHECK_MSG(def->sample(&n, TG_F64, def->n_samples) == TG_ERR_ARG &&
                   def->sample(&n, TG_F64, -1) == TG_ERR_ARG, "%s: a variant out of range is not refused", name);
    tg_ctx_free(ctx);
}

/* ---- elementwise ops of one input ------------------------------------------ */

/* An op by name with up to two parameters (bounds, slope, alpha, approx). */
typedef struct tu_op1 {
    const char *op;
    double      p0, p1;
} tu_op1;

/* Calls the op's public wrapper on x. */
typedef tg_tensor *(*tu_apply1_fn)(tg_ctx *ctx, tg_tensor *x, const tu_op1 *op);

#define TU_OP1(name, a, b) (&(const tu_op1){ .op = (name), .p0 = (a), .p1 = (b) })

/* y = op(x) for the n values xs (shape n, or a scalar when n is 0: one
 * value, ndim 0) in dtype dt with upstream gradient 1, on poisoned arena
 * memory: fills y[] and g[] (d sum(y) / dx). Returns 0 (and leaves the
 * arrays alone) if the op failed. */
static inline int tu_run1(tu_apply1_fn fn, const tu_op1 *op, tg_dtype dt, int n, const double *xs, double *y,
                          double *g)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_poison(ctx, 1);
    int64_t shape[1] = { n };
    tg_tensor *x = tu_tensor(ctx, dt, n ? 1 : 0, shape, xs, 1);
    tg_tensor *out = fn(ctx, x, op);
    tg_tensor *ones = out ? tg_tensor_fill(ctx, dt, out->ndim, out->shape, 1.0) : NULL;
    int ok = ones && tg_backward_seed(ctx, out, ones) == TG_OK;
    TEST_CHECK_MSG(ok, "%s: %s", op->op, tg_ctx_error(ctx));
    for (int64_t i = 0; ok && i < x->numel; i++) {
        y[i] = tg_tensor_get(out, i);
        g[i] = tg_tensor_grad_get(x, i);
    }
    tg_ctx_free(ctx);
    return ok;
}

/* The op rejects integer and NULL inputs with a clear message, and the
 * error is sticky. */
static inline void tu_check_bad_input1(tu_apply1_fn fn, const tu_op1 *op)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    char want[64];
    tg_tensor *ok = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(2));
    tg_tensor *xi = tg_tensor_zeros(ctx, TG_I32, TG_DIMS(2, 3));
    snprintf(want, sizeof want, "%s: input 0 is i32, expected f32 or f64", op->op);
    TEST_CHECK_MSG(fn(ctx, xi, op) == NULL && tg_ctx_status(ctx) == TG_ERR_ARG &&
                   strstr(tg_ctx_error(ctx), want) != NULL, "%s: message '%s'", op->op, tg_ctx_error(ctx));
    tg_ctx_clear_error(ctx);
    snprintf(want, sizeof want, "%s: input 0 is NULL", op->op);
    TEST_CHECK_MSG(fn(ctx, NULL, op) == NULL && tg_ctx_status(ctx) == TG_ERR_ARG &&
                   strstr(tg_ctx_error(ctx), want) != NULL, "%s: message '%s'", op->op, tg_ctx_error(ctx));
    TEST_CHECK(ok != NULL && fn(ctx, ok, op) == NULL);   /* sticky */
    tg_ctx_free(ctx);
}

#endif
