/* ew_check.h — checks shared by test_unary.c and test_activation.c for
 * elementwise ops of one float input:
 *   - ew_check_ref: a PyTorch reference case (ops.json: 3x5 input, forward
 *     output, upstream gradient, input gradient) through the public wrapper;
 *   - ew_check_samples: every sample variant of an op descriptor, gradient
 *     checked by central differences in f64, the f32 path compared with f64,
 *     accumulation (+=), a NULL input grad, the cost hook and the variant range.
 * Include after test.h and tapegrad.h. */
#ifndef TG_EW_CHECK_H
#define TG_EW_CHECK_H

#include <string.h>

typedef struct {
    const char   *op;
    double        p0, p1;     /* op parameters (clamp lo/hi, slope, alpha, approx) */
    const double *x;          /* 15 inputs, shape 3x5                             */
    double        out[15], up[15], grad[15];
} ref_case;

/* Calls the public wrapper of rc->op with rc's parameters. */
typedef tg_tensor *(*ew_apply_fn)(tg_ctx *ctx, tg_tensor *x, const ref_case *rc);

static int ew_close(double a, double b, double atol, double rtol)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    return fabs(a - b) <= atol + rtol * fabs(b);
}

static tg_tensor *ew_tensor(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    tg_tensor *t = tg_tensor_new(ctx, dt, ndim, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            tg_tensor_set(t, i, v[i]);
    return t;
}

/* Forward and VJP of one reference case in dtype dt, within tol (absolute
 * and relative). */
static void ew_check_ref(const ref_case *rc, ew_apply_fn fn, tg_dtype dt, double tol)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_poison(ctx, 1);
    tg_tensor *x = ew_tensor(ctx, dt, TG_DIMS(3, 5), rc->x);
    tg_tensor *up = ew_tensor(ctx, dt, TG_DIMS(3, 5), rc->up);
    TEST_CHECK(x && up && tg_tensor_requires_grad(x) == TG_OK);
    tg_tensor *y = fn(ctx, x, rc);
    TEST_CHECK_MSG(y != NULL, "%s: %s", rc->op, tg_ctx_error(ctx));
    if (y) {
        TEST_CHECK(y->dtype == dt && y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 5);
        TEST_CHECK(tg_backward_seed(ctx, y, up) == TG_OK);
        for (int i = 0; i < 15; i++) {
            double yo = tg_tensor_get(y, i), g = tg_tensor_grad_get(x, i);
            TEST_CHECK_MSG(ew_close(yo, rc->out[i], tol, tol), "%s(%g, %g) %s forward [%d]: %.17g vs %.17g",
                           rc->op, rc->p0, rc->p1, tg_dtype_name(dt), i, yo, rc->out[i]);
            TEST_CHECK_MSG(ew_close(g, rc->grad[i], tol, tol), "%s(%g, %g) %s grad [%d]: %.17g vs %.17g",
                           rc->op, rc->p0, rc->p1, tg_dtype_name(dt), i, g, rc->grad[i]);
        }
    }
    tg_ctx_free(ctx);
}

/* sum(seed * op(x)) without recording. */
static double ew_dot(tg_ctx *ctx, const tg_op_def *def, tg_tensor *x, const tg_op_params *p, const tg_tensor *seed)
{
    double s = 0;
    TG_NO_GRAD(ctx) {
        tg_tensor *y = tg_apply(ctx, def, &x, 1, p, NULL);
        if (y)
            for (int64_t i = 0; i < y->numel; i++)
                s += tg_tensor_get(seed, i) * tg_tensor_get(y, i);
    }
    return s;
}

static void ew_check_samples(const char *name)
{
    const tg_op_def *def = tg_op_find(name);
    TEST_CHECK_MSG(def != NULL, "op %s not registered", name);
    if (!def)
        return;
    TEST_CHECK_MSG(def->n_samples >= 2 && def->n_samples <= 4 && def->sample && def->cost && def->backward,
                   "%s: incomplete descriptor", name);
    int saw_edge = 0;
    for (int v = 0; v < def->n_samples; v++) {
        tg_ctx_opts o = { .seed = 100u + (uint64_t)v };
        tg_ctx *ctx = tg_ctx_new(&o);
        tg_ctx_set_poison(ctx, 1);
        tg_node n;
        memset(&n, 0, sizeof n);
        n.def = def;
        n.ctx = ctx;
        TEST_CHECK_MSG(def->sample(&n, TG_F64, v) == TG_OK, "%s sample %d", name, v);
        tg_tensor *x = n.in[0];
        TEST_CHECK(n.n_in == 1 && x && x->dtype == TG_F64 && x->numel <= 60);
        if (!x || x->numel > 60) {
            tg_ctx_free(ctx);
            continue;
        }
        saw_edge |= x->ndim == 0 || x->numel == 1;
        for (int k = 0; k < x->ndim; k++)
            saw_edge |= x->shape[k] == 1;
        TEST_CHECK(tg_tensor_requires_grad(x) == TG_OK);
        tg_tensor *y = tg_apply(ctx, def, &x, 1, &n.p, NULL);
        tg_tensor *seed = y ? tg_tensor_randn(ctx, TG_F64, y->ndim, y->shape, 0, 1) : NULL;
        TEST_CHECK_MSG(y && seed && tg_backward_seed(ctx, y, seed) == TG_OK, "%s sample %d: %s",
                       name, v, tg_ctx_error(ctx));
        if (!y || !seed) {
            tg_ctx_free(ctx);
            continue;
        }
        double g1[64];
        const double h = 1e-6;
        for (int64_t j = 0; j < x->numel; j++) {
            double x0 = tg_tensor_get(x, j);
            tg_tensor_set(x, j, x0 + h);
            double fp = ew_dot(ctx, def, x, &n.p, seed);
            tg_tensor_set(x, j, x0 - h);
            double fm = ew_dot(ctx, def, x, &n.p, seed);
            tg_tensor_set(x, j, x0);
            double num = (fp - fm) / (2 * h);
            g1[j] = tg_tensor_grad_get(x, j);
            TEST_CHECK_MSG(ew_close(g1[j], num, 1e-7, 1e-6), "%s sample %d grad [%lld] at x = %.17g: %.17g vs numeric %.17g",
                           name, v, (long long)j, x0, g1[j], num);
        }
        /* The VJP accumulates: a second sweep doubles the gradient. */
        TEST_CHECK(tg_backward_seed(ctx, y, seed) == TG_OK);
        for (int64_t j = 0; j < x->numel; j++)
            TEST_CHECK_MSG(tg_tensor_grad_get(x, j) == 2 * g1[j], "%s sample %d: no accumulation", name, v);

        /* f32 path on the same inputs, forward and VJP. */
        tg_tensor *x32 = tg_tensor_cast(ctx, x, TG_F32), *s32 = tg_tensor_cast(ctx, seed, TG_F32);
        TEST_CHECK(x32 && s32 && tg_tensor_requires_grad(x32) == TG_OK);
        tg_tensor *y32 = tg_apply(ctx, def, &x32, 1, &n.p, NULL);
        TEST_CHECK(y32 && y32->dtype == TG_F32 && tg_backward_seed(ctx, y32, s32) == TG_OK);
        for (int64_t j = 0; y32 && j < x->numel; j++) {
            TEST_CHECK_MSG(ew_close(tg_tensor_get(y32, j), tg_tensor_get(y, j), 1e-6, 1e-5),
                           "%s sample %d f32 forward [%lld]", name, v, (long long)j);
            TEST_CHECK_MSG(ew_close(tg_tensor_grad_get(x32, j), g1[j], 1e-5, 1e-4),
                           "%s sample %d f32 grad [%lld]: %.9g vs %.9g", name, v, (long long)j,
                           tg_tensor_grad_get(x32, j), g1[j]);
        }

        /* A VJP with no input gradient wanted writes nothing and survives. */
        tg_node m = n;
        tg_tensor *xd = tg_tensor_cast(ctx, x, TG_F64);
        m.in[0] = xd;
        TEST_CHECK(tg_node_run(&m) == TG_OK && xd->grad == NULL);
        if (m.out) {
            m.out->grad = seed->data;
            def->backward(&m);
            TEST_CHECK(xd->grad == NULL);
        }

        tg_op_cost c = {0};
        n.out = y;
        def->cost(&n, &c);
        TEST_CHECK_MSG(c.fwd_flops > 0 && c.bwd_flops > 0 && c.fwd_bytes >= 2 * 8 * (double)y->numel &&
                       c.bwd_bytes >= 3 * 8 * (double)y->numel, "%s cost", name);
        TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
        tg_ctx_free(ctx);
    }
    TEST_CHECK_MSG(saw_edge, "%s: no sample with an edge shape", name);
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_node n;
    memset(&n, 0, sizeof n);
    n.def = def;
    n.ctx = ctx;
    TEST_CHECK(def->sample(&n, TG_F64, def->n_samples) == TG_ERR_ARG);
    TEST_CHECK(def->sample(&n, TG_F64, -1) == TG_ERR_ARG);
    tg_ctx_free(ctx);
}

/* The op must reject integer and NULL inputs with a clear message. */
static void ew_check_bad_inputs(const char *name, ew_apply_fn fn, const ref_case *rc)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    char want[64];
    tg_tensor *ok = tg_tensor_zeros(ctx, TG_F64, TG_DIMS(2));
    tg_tensor *xi = tg_tensor_zeros(ctx, TG_I32, TG_DIMS(2, 3));
    TEST_CHECK(fn(ctx, xi, rc) == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_ARG);
    snprintf(want, sizeof want, "%s: input 0 is i32, expected f32 or f64", name);
    TEST_CHECK_MSG(strstr(tg_ctx_error(ctx), want) != NULL, "%s: message '%s'", name, tg_ctx_error(ctx));
    tg_ctx_clear_error(ctx);
    TEST_CHECK(fn(ctx, NULL, rc) == NULL);
    snprintf(want, sizeof want, "%s: input 0 is NULL", name);
    TEST_CHECK_MSG(tg_ctx_status(ctx) == TG_ERR_ARG && strstr(tg_ctx_error(ctx), want) != NULL,
                   "%s: message '%s'", name, tg_ctx_error(ctx));
    /* Sticky: a valid call after an error returns NULL too. */
    TEST_CHECK(ok != NULL && fn(ctx, ok, rc) == NULL);
    tg_ctx_free(ctx);
}

/* A ref_case holding only an op name and parameters, for ew_run. */
#define EW_OP(name, a, b) (&(const ref_case){ .op = (name), .p0 = (a), .p1 = (b) })

/* y = fn(x) for the n values xs (shape n, or a scalar when n is 0: one
 * value, ndim 0) in dtype dt with upstream gradient 1: fills y[] and g[]
 * (d sum(y) / dx). Returns 0 (and leaves the arrays alone) if the op failed. */
static int ew_run(ew_apply_fn fn, const ref_case *rc, tg_dtype dt, int n, const double *xs, double *y, double *g)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_poison(ctx, 1);
    int64_t shape[1] = { n };
    tg_tensor *x = ew_tensor(ctx, dt, n ? 1 : 0, shape, xs);
    if (x)
        tg_tensor_requires_grad(x);
    tg_tensor *out = fn(ctx, x, rc);
    tg_tensor *ones = out ? tg_tensor_fill(ctx, dt, out->ndim, out->shape, 1.0) : NULL;
    int ok = ones && tg_backward_seed(ctx, out, ones) == TG_OK;
    TEST_CHECK_MSG(ok, "%s: %s", rc->op, tg_ctx_error(ctx));
    for (int64_t i = 0; ok && i < x->numel; i++) {
        y[i] = tg_tensor_get(out, i);
        g[i] = tg_tensor_grad_get(x, i);
    }
    tg_ctx_free(ctx);
    return ok;
}

#endif
