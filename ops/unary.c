/* unary.c — elementwise ops of one input: neg, exp, log, sqrt, abs, square,
 * clamp. Each is one block: banner with math and VJP, shape, forward,
 * backward, sample, cost, descriptor, public wrapper. Activations live in
 * activation.c. */
#include "ops_common.h"

static tg_status same_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    *dt = n->in[0]->dtype;
    *ndim = n->in[0]->ndim;
    memcpy(shape, n->in[0]->shape, sizeof(int64_t) * (size_t)*ndim);
    return TG_OK;
}

/* Elementwise cost: `f` flops per element forward, `b` backward; bytes read
 * and written once each. */
static void ew_cost(const tg_node *n, tg_op_cost *c, double f, double b)
{
    double e = (double)n->out->numel, w = (double)tg_dtype_size(n->out->dtype);
    c->fwd_flops = f * e;
    c->fwd_bytes = 2 * e * w;
    c->bwd_flops = b * e;
    c->bwd_bytes = 4 * e * w;   /* read dy and a saved value, read+write dx */
}

/* ---- exp ----------------------------------------------------------------
 * y = exp(x)            x, y: any shape
 * VJP: dx += dy * y     (reuses the forward output)
 */
static tg_status exp_forward(tg_node *n)
{
    size_t len = TG_NUMEL(n->out);
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        T *y = n->out->data;
        for (size_t i = 0; i < len; i++)
            y[i] = (T)exp(x[i]);
    });
    return TG_OK;
}

static void exp_backward(tg_node *n)
{
    size_t len = TG_NUMEL(n->out);
    TG_DISPATCH(n->out->dtype, T, {
        const T *y = n->out->data, *dy = n->out->grad;
        T *dx = n->in[0]->grad;
        if (dx)
            for (size_t i = 0; i < len; i++)
                dx[i] += dy[i] * y[i];
    });
}

static tg_status exp_sample(tg_node *n, tg_dtype dt, int v)
{
    static const int64_t shapes[][2] = { {3, 5}, {1, 7} };
    if (v < 0 || v > 1)
        return TG_ERR_ARG;
    n->n_in = 1;
    n->in[0] = tg_sample_uniform(n, dt, 2, shapes[v], -2, 2);
    return n->in[0] ? TG_OK : tg_ctx_status(n->ctx);
}

static void exp_cost(const tg_node *n, tg_op_cost *c) { ew_cost(n, c, 10, 1); }

const tg_op_def tg_op_exp_def = {
    .name = "exp", .n_in = 1,
    .shape = same_shape, .forward = exp_forward, .backward = exp_backward,
    .sample = exp_sample, .n_samples = 2, .cost = exp_cost,
};

tg_tensor *tg_exp(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_exp_def, &x, 1, NULL, NULL);
}
