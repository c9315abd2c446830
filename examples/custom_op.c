/* custom_op.c — writing your own op, outside the library, and proving its
 * gradient right with tapegrad's gradient checker.
 *
 * The op: a "scaled softsign" with a learnable scale per feature,
 *     y[..., j] = s[j] * x[..., j] / (1 + |x[..., j]|)
 *     x: any shape (..., C) with ndim >= 1;  s: (C);  y: same shape as x
 * Its VJP (dy = dL/dy; the sum runs over every leading index):
 *     dx[..., j] += dy[..., j] * s[j] / (1 + |x[..., j]|)^2
 *     ds[j]      += sum dy[..., j] * x[..., j] / (1 + |x[..., j]|)
 *
 * An op is a tg_op_def: shape inference, forward, VJP, sample inputs (for
 * the checker and benchmarks). Nothing is registered globally: the op is
 * used through tg_apply, and checked with tg_gradcheck_op exactly as the
 * built-in ops are. The program exits 0 only when every check passes.
 *
 * Build against an installed tapegrad:
 *     cc -O2 custom_op.c $(pkg-config --cflags --libs tapegrad) -lm -o custom_op
 * (for a non-system prefix, point PKG_CONFIG_PATH at $prefix/lib/<triplet>/pkgconfig
 * and LD_LIBRARY_PATH at $prefix/lib/<triplet>.)
 *
 * The same definition, exported from a shared object as
 *     const tg_op_def *const tg_user_ops[] = { &scaled_softsign_def, NULL };
 *     const int tg_user_ops_abi = TG_OP_ABI;
 * can be checked from the command line:
 *     tapegrad gradcheck --load ./libmyops.so --op scaled_softsign
 */
#include <tapegrad.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Run `...` with T = float or double according to dt. */
#define DISPATCH(dt, T, ...)                                     \
    do {                                                         \
        if ((dt) == TG_F32) { typedef float T; __VA_ARGS__ }     \
        else                { typedef double T; __VA_ARGS__ }    \
    } while (0)

static tg_status ss_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    const tg_tensor *x = n->in[0], *s = n->in[1];
    char a[TG_SHAPE_STR_MAX], b[TG_SHAPE_STR_MAX];
    if (!tg_dtype_is_float(x->dtype) || x->dtype != s->dtype)
        return tg_op_fail(n, TG_ERR_ARG, "x and s must have the same float dtype (%s, %s)",
                          tg_dtype_name(x->dtype), tg_dtype_name(s->dtype));
    if (x->ndim < 1 || s->ndim != 1 || s->shape[0] != x->shape[x->ndim - 1])
        return tg_op_fail(n, TG_ERR_SHAPE, "s must be (C) for x (..., C): got x %s, s %s",
                          tg_shape_str(x->ndim, x->shape, a, sizeof a),
                          tg_shape_str(s->ndim, s->shape, b, sizeof b));
    *dt = x->dtype;
    *ndim = x->ndim;
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    return TG_OK;
}

static tg_status ss_forward(tg_node *n)
{
    int64_t C = n->in[1]->numel, rows = n->out->numel / (C ? C : 1);
    DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *s = n->in[1]->data;
        T *y = n->out->data;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < C; j++) {
                T v = x[r * C + j];
                y[r * C + j] = s[j] * v / (1 + (T)fabs(v));
            }
    });
    return TG_OK;
}

/* Accumulates (+=) into each gradient that is wanted (non-NULL); x and s
 * may be one tensor only if shapes allow, so each input is handled on its
 * own and nothing else is written. */
static void ss_backward(tg_node *n)
{
    int64_t C = n->in[1]->numel, rows = n->out->numel / (C ? C : 1);
    DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data, *s = n->in[1]->data, *dy = n->out->grad;
        T *dx = n->in[0]->grad, *ds = n->in[1]->grad;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < C; j++) {
                T v = x[r * C + j], d = 1 + (T)fabs(v);
                if (dx)
                    dx[r * C + j] += dy[r * C + j] * s[j] / (d * d);
                if (ds)
                    ds[j] += dy[r * C + j] * v / d;
            }
    });
}

/* Sample inputs for the checker: x away from 0 (where softsign's second
 * derivative jumps), edge shapes (a single row, 1-D x, 3-D x, C = 1). */
static tg_status ss_sample(tg_node *n, tg_dtype dt, int variant)
{
    static const struct { int nd; int64_t x[3]; } cases[] = {
        { 2, {4, 5} }, { 2, {1, 3} }, { 1, {6} }, { 3, {2, 3, 1} },
    };
    if (variant < 0 || variant >= (int)(sizeof cases / sizeof cases[0]))
        return TG_ERR_ARG;
    int nd = cases[variant].nd;
    const int64_t *xs = cases[variant].x;
    tg_rng *rng = tg_ctx_rng(n->ctx);
    tg_tensor *x = tg_tensor_new(n->ctx, dt, nd, xs);
    tg_tensor *s = tg_tensor_rand(n->ctx, dt, 1, &xs[nd - 1], 0.5, 2.0);
    if (!x || !s)
        return tg_ctx_status(n->ctx);
    for (int64_t i = 0; i < x->numel; i++) {
        double m = 0.1 + 2.9 * tg_rng_uniform(rng);
        tg_tensor_set(x, i, tg_rng_uniform(rng) < 0.5 ? -m : m);
    }
    n->n_in = 2;
    n->in[0] = x;
    n->in[1] = s;
    return TG_OK;
}

static void ss_cost(const tg_node *n, tg_op_cost *c)
{
    double e = (double)n->out->numel, w = (double)tg_dtype_size(n->out->dtype);
    c->fwd_flops = 4 * e;
    c->fwd_bytes = 2 * e * w;
    c->bwd_flops = 9 * e;
    c->bwd_bytes = 4 * e * w;
}

static const tg_op_def scaled_softsign_def = {
    .name = "scaled_softsign", .n_in = 2,
    .shape = ss_shape, .forward = ss_forward, .backward = ss_backward,
    .sample = ss_sample, .n_samples = 4, .cost = ss_cost,
};

/* The recording function a user calls, like the built-in tg_exp. */
static tg_tensor *scaled_softsign(tg_ctx *ctx, tg_tensor *x, tg_tensor *s)
{
    tg_tensor *in[2] = { x, s };
    return tg_apply(ctx, &scaled_softsign_def, in, 2, NULL, NULL);
}

/* A composite for tg_gradcheck_fn_check: exp(scaled_softsign(x, s)). */
static tg_tensor *composite(tg_ctx *ctx, tg_tensor *const *in, int n_in, void *ud)
{
    (void)n_in, (void)ud;
    return tg_exp(ctx, scaled_softsign(ctx, in[0], in[1]));
}

int main(void)
{
    int failures = 0;

    /* 1. The op on the tape, like any built-in. */
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tg_tensor_from(ctx, TG_F64, TG_DIMS(2, 2), (double[]){ -1, 0.5, 2, -3 });
    tg_tensor *s = tg_tensor_from(ctx, TG_F64, TG_DIMS(2), (double[]){ 2, 0.5 });
    tg_tensor_requires_grad(x);
    tg_tensor_requires_grad(s);
    tg_tensor *y = scaled_softsign(ctx, x, s);
    tg_tensor *seed = tg_tensor_fill(ctx, TG_F64, TG_DIMS(2, 2), 1.0);
    if (!y || tg_backward_seed(ctx, y, seed) != TG_OK) {
        fprintf(stderr, "custom_op: %s\n", tg_ctx_error(ctx));
        tg_ctx_free(ctx);
        return 1;
    }
    printf("y = [%g %g; %g %g], dL/ds = [%g %g]\n", tg_tensor_get(y, 0), tg_tensor_get(y, 1),
           tg_tensor_get(y, 2), tg_tensor_get(y, 3), tg_tensor_grad_get(s, 0), tg_tensor_grad_get(s, 1));
    /* A shape error is reported, not a crash. */
    if (scaled_softsign(ctx, x, x) == NULL)
        printf("as expected: %s\n", tg_ctx_error(ctx));
    tg_ctx_clear_error(ctx);

    /* 2. Gradient-check the op in f64 and f32, every sample variant. */
    for (int f32 = 0; f32 <= 1; f32++) {
        tg_gradcheck_opts opts = { .f32 = f32, .seed = 42 };
        tg_gradcheck_report rep;
        tg_status st = tg_gradcheck_op(&scaled_softsign_def, &opts, &rep);
        tg_gradcheck_report_print(&rep, stdout);
        failures += st != TG_OK || !rep.passed;
    }

    /* 3. And a composite of it with a built-in op, through the tape. */
    tg_tensor *in[2] = { tg_tensor_rand(ctx, TG_F64, TG_DIMS(3, 4), 0.2, 2),
                         tg_tensor_rand(ctx, TG_F64, TG_DIMS(4), 0.5, 1.5) };
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck_fn_check(composite, NULL, in, 2, NULL, &rep);
    tg_gradcheck_report_print(&rep, stdout);
    failures += st != TG_OK || !rep.passed;

    tg_ctx_free(ctx);
    printf("%s\n", failures ? "custom_op: FAILED" : "custom_op: all checks passed");
    return failures ? 1 : 0;
}
