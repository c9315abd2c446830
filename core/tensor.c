/* tensor.c — creating tensors in the arena or on the heap, element access,
 * shape utilities. Tensors are contiguous row-major; no strides. */
#include "tg_core_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int64_t tg_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

int tg_shape_equal(int nd_a, const int64_t *a, int nd_b, const int64_t *b)
{
    if (nd_a != nd_b)
        return 0;
    for (int i = 0; i < nd_a; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

char *tg_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    if (!cap)
        return buf;
    if (ndim == 0) {
        snprintf(buf, cap, "scalar");
        return buf;
    }
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && off < cap; i++) {
        int w = snprintf(buf + off, cap - off, i ? "x%lld" : "%lld", (long long)shape[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return buf;
}

/* Validate dims; on success fill numel and byte count. */
static tg_status check_shape(tg_ctx *ctx, const char *who, tg_dtype dt, int ndim,
                             const int64_t *shape, int64_t *numel, size_t *bytes)
{
    if (tg_dtype_size(dt) == 0)
        return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: invalid dtype %d", who, (int)dt);
    if (ndim < 0 || ndim > TG_MAX_DIMS)
        return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: ndim %d outside 0..%d", who, ndim, TG_MAX_DIMS);
    if (ndim > 0 && !shape)
        return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: NULL shape for ndim %d", who, ndim);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: negative dimension %lld at axis %d",
                               who, (long long)shape[i], i);
        if (shape[i] && n > (INT64_MAX / 8) / shape[i])
            return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: shape too large", who);
        n *= shape[i];
    }
    *numel = n;
    *bytes = (size_t)n * tg_dtype_size(dt);
    return TG_OK;
}

static void init_header(tg_tensor *t, tg_dtype dt, int ndim, const int64_t *shape, int64_t n)
{
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = n;
    t->node = -1;
}

static tg_tensor *arena_tensor(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape,
                               const char *who, int with_data)
{
    if (!ctx || ctx->status != TG_OK)
        return NULL;
    int64_t n = 0;
    size_t bytes = 0;
    if (check_shape(ctx, who, dt, ndim, shape, &n, &bytes) != TG_OK)
        return NULL;
    tg_tensor *t = tg_ctx_alloc(ctx, sizeof *t, who);
    if (!t)
        return NULL;
    init_header(t, dt, ndim, shape, n);
    t->ctx = ctx;
    if (with_data) {
        t->data = tg_ctx_alloc(ctx, bytes, who);
        if (!t->data)
            return NULL;
    }
    return t;
}

tg_tensor *tg_tensor_new(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape)
{
    return arena_tensor(ctx, dt, ndim, shape, "tensor_new", 1);
}

tg_tensor *tg_tensor_zeros(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape)
{
    tg_tensor *t = arena_tensor(ctx, dt, ndim, shape, "tensor_zeros", 1);
    if (t)
        memset(t->data, 0, (size_t)t->numel * tg_dtype_size(dt));
    return t;
}

tg_tensor *tg_tensor_fill(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, double v)
{
    tg_tensor *t = arena_tensor(ctx, dt, ndim, shape, "tensor_fill", 1);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            tg_tensor_set(t, i, v);
    return t;
}

tg_tensor *tg_tensor_scalar(tg_ctx *ctx, tg_dtype dt, double v)
{
    return tg_tensor_fill(ctx, dt, 0, NULL, v);
}

tg_tensor *tg_tensor_from(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, const void *src)
{
    if (ctx && ctx->status == TG_OK && !src) {
        tg_ctx_fail(ctx, TG_ERR_ARG, "tensor_from: NULL source");
        return NULL;
    }
    tg_tensor *t = arena_tensor(ctx, dt, ndim, shape, "tensor_from", 1);
    if (t && t->numel)
        memcpy(t->data, src, (size_t)t->numel * tg_dtype_size(dt));
    return t;
}

tg_tensor *tg_tensor_wrap(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, void *data)
{
    if (ctx && ctx->status == TG_OK && !data) {
        tg_ctx_fail(ctx, TG_ERR_ARG, "tensor_wrap: NULL data");
        return NULL;
    }
    tg_tensor *t = arena_tensor(ctx, dt, ndim, shape, "tensor_wrap", 0);
    if (t) {
        t->data = data;
        t->flags |= TG_TENSOR_VIEW;
    }
    return t;
}

tg_tensor *tg_tensor_rand(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, double lo, double hi)
{
    tg_tensor *t = arena_tensor(ctx, dt, ndim, shape, "tensor_rand", 1);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            tg_tensor_set(t, i, lo + (hi - lo) * tg_rng_uniform(&ctx->rng));
    return t;
}

tg_tensor *tg_tensor_randn(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, double mean, double std)
{
    tg_tensor *t = arena_tensor(ctx, dt, ndim, shape, "tensor_randn", 1);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            tg_tensor_set(t, i, mean + std * tg_rng_normal(&ctx->rng));
    return t;
}

tg_tensor *tg_tensor_cast(tg_ctx *ctx, const tg_tensor *src, tg_dtype dt)
{
    if (ctx && ctx->status == TG_OK && !src) {
        tg_ctx_fail(ctx, TG_ERR_ARG, "tensor_cast: NULL tensor");
        return NULL;
    }
    if (!src)
        return NULL;
    tg_tensor *t = arena_tensor(ctx, dt, src->ndim, src->shape, "tensor_cast", 1);
    if (!t)
        return NULL;
    if (dt == src->dtype)
        memcpy(t->data, src->data, (size_t)t->numel * tg_dtype_size(dt));
    else
        for (int64_t i = 0; i < t->numel; i++)
            tg_tensor_set(t, i, tg_tensor_get(src, i));
    return t;
}

tg_tensor *tg_tensor_create(tg_dtype dt, int ndim, const int64_t *shape, tg_status *status)
{
    tg_status dummy;
    if (!status)
        status = &dummy;
    *status = TG_ERR_ARG;
    if (tg_dtype_size(dt) == 0 || ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && !shape))
        return NULL;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && n > (INT64_MAX / 8) / shape[i]))
            return NULL;
        n *= shape[i];
    }
    *status = TG_ERR_NOMEM;
    tg_tensor *t = tg_calloc(sizeof *t);
    if (!t)
        return NULL;
    init_header(t, dt, ndim, shape, n);
    t->flags = TG_TENSOR_PERSISTENT;
    t->data = tg_calloc(n ? (size_t)n * tg_dtype_size(dt) : 1);
    if (!t->data) {
        tg_free(t);
        return NULL;
    }
    *status = TG_OK;
    return t;
}

void tg_tensor_destroy(tg_tensor *t)
{
    if (!t || !(t->flags & TG_TENSOR_PERSISTENT))
        return;
    if (!(t->flags & TG_TENSOR_VIEW)) {
        tg_free(t->data);
        tg_free(t->grad);
    }
    tg_free(t);
}

tg_status tg_tensor_requires_grad(tg_tensor *t)
{
    if (!t)
        return TG_ERR_ARG;
    if (!tg_dtype_is_float(t->dtype)) {
        if (t->ctx)
            tg_ctx_fail(t->ctx, TG_ERR_ARG, "requires_grad: %s tensor cannot have a gradient",
                        tg_dtype_name(t->dtype));
        return TG_ERR_ARG;
    }
    t->flags |= TG_TENSOR_REQUIRES_GRAD;
    if (t->grad)
        return TG_OK;
    size_t bytes = (size_t)(t->numel ? t->numel : 1) * tg_dtype_size(t->dtype);
    if (t->flags & TG_TENSOR_PERSISTENT) {
        t->grad = tg_calloc(bytes);
    } else {
        t->grad = tg_ctx_alloc(t->ctx, bytes, "requires_grad");
        if (t->grad)
            memset(t->grad, 0, bytes);
    }
    if (!t->grad) {
        t->flags &= ~(uint32_t)TG_TENSOR_REQUIRES_GRAD;
        return TG_ERR_NOMEM;
    }
    return TG_OK;
}

void tg_tensor_zero_grad(tg_tensor *t)
{
    if (t && t->grad)
        memset(t->grad, 0, (size_t)t->numel * tg_dtype_size(t->dtype));
}

static double get_raw(const void *p, tg_dtype dt, int64_t i)
{
    switch (dt) {
    case TG_F32: return ((const float *)p)[i];
    case TG_F64: return ((const double *)p)[i];
    case TG_I32: return ((const int32_t *)p)[i];
    }
    return NAN;
}

double tg_tensor_get(const tg_tensor *t, int64_t i)
{
    if (!t || !t->data || i < 0 || i >= t->numel)
        return NAN;
    return get_raw(t->data, t->dtype, i);
}

double tg_tensor_grad_get(const tg_tensor *t, int64_t i)
{
    if (!t || !t->grad || i < 0 || i >= t->numel)
        return 0.0;
    return get_raw(t->grad, t->dtype, i);
}

void tg_tensor_set(tg_tensor *t, int64_t i, double v)
{
    if (!t || !t->data || i < 0 || i >= t->numel)
        return;
    switch (t->dtype) {
    case TG_F32: ((float *)t->data)[i] = (float)v; break;
    case TG_F64: ((double *)t->data)[i] = v; break;
    case TG_I32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    }
}
