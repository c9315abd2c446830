/* gradcheck_plugin.c — a user's ops in a shared object, for
 * `tapegrad gradcheck --load`: plug_cube (y = x^3, right) and plug_cube_bad
 * (its VJP forgets the factor 3 at element 4). Exported as tg_user_ops[]. */
#include "tapegrad.h"

#include <string.h>

static tg_status cube_shape(const tg_node *n, tg_dtype *dt, int *nd, int64_t *sh)
{
    if (!tg_dtype_is_float(n->in[0]->dtype))
        return tg_op_fail(n, TG_ERR_ARG, "input must be f32 or f64");
    *dt = n->in[0]->dtype;
    *nd = n->in[0]->ndim;
    memcpy(sh, n->in[0]->shape, sizeof(int64_t) * (size_t)*nd);
    return TG_OK;
}

static tg_status cube_forward(tg_node *n)
{
    for (int64_t i = 0; i < n->out->numel; i++) {
        double x = tg_tensor_get(n->in[0], i);
        tg_tensor_set(n->out, i, x * x * x);
    }
    return TG_OK;
}

static void cube_vjp(tg_node *n, int64_t wrong)
{
    tg_tensor *x = n->in[0];
    if (!x->grad)
        return;
    for (int64_t i = 0; i < x->numel; i++) {
        double xv = tg_tensor_get(x, i), g = tg_tensor_grad_get(n->out, i) * xv * xv * (i == wrong ? 1 : 3);
        if (x->dtype == TG_F32)
            ((float *)x->grad)[i] += (float)g;
        else
            ((double *)x->grad)[i] += g;
    }
}

static void cube_backward(tg_node *n) { cube_vjp(n, -1); }
static void cube_bad_backward(tg_node *n) { cube_vjp(n, 4); }

static tg_status cube_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v != 0)
        return TG_ERR_ARG;
    n->n_in = 1;
    n->in[0] = tg_tensor_rand(n->ctx, dt, TG_DIMS(2, 3), 0.5, 1.5);
    return n->in[0] ? TG_OK : tg_ctx_status(n->ctx);
}

static const tg_op_def plug_cube = { .name = "plug_cube", .n_in = 1, .shape = cube_shape,
    .forward = cube_forward, .backward = cube_backward, .sample = cube_sample, .n_samples = 1 };
static const tg_op_def plug_cube_bad = { .name = "plug_cube_bad", .n_in = 1, .shape = cube_shape,
    .forward = cube_forward, .backward = cube_bad_backward, .sample = cube_sample, .n_samples = 1 };

const tg_op_def *const tg_user_ops[] = { &plug_cube, &plug_cube_bad, NULL };
/* Built twice more by tests/meson.build, to see the loader refuse them: as
 * if against another tg_op_def layout, and without the layout at all. */
#ifndef PLUGIN_NO_ABI
#ifndef PLUGIN_ABI
#define PLUGIN_ABI TG_OP_ABI
#endif
const int tg_user_ops_abi = PLUGIN_ABI;
#endif
