/* index.c — the index-driven members of the shape family: index_select and
 * gather_rows (embedding lookup). Index tensors are TG_I32, never
 * differentiated, and checked completely in the shape function, before the
 * output exists, so a bad index leaves nothing half-written. The VJPs are
 * scatter-adds run in index order: repeated indices accumulate, and the
 * result is deterministic. Registered through list_shape.h. */
#include "ops_common.h"

/* The index input must be i32 with `want_ndim` dims (-1: any), and every
 * value in [0, size). The message names the first bad value and where. */
static tg_status check_index(const tg_node *n, int i, int want_ndim, int axis, int64_t size)
{
    const tg_tensor *idx = n->in[i];
    char sb[TG_SHAPE_STR_MAX];
    if (idx->dtype != TG_I32)
        return tg_op_fail(n, TG_ERR_ARG, "index input %d is %s, expected i32", i, tg_dtype_name(idx->dtype));
    if (want_ndim >= 0 && idx->ndim != want_ndim)
        return tg_op_fail(n, TG_ERR_SHAPE, "index input %d has shape %s, expected %d-D", i,
                          TG_SHAPE_OF(idx, sb), want_ndim);
    const int32_t *v = idx->data;
    for (int64_t j = 0; j < idx->numel; j++)
        if (v[j] < 0 || v[j] >= size)
            return tg_op_fail(n, TG_ERR_ARG, "index %d at position %lld out of range for axis %d of size %lld",
                              (int)v[j], (long long)j, axis, (long long)size);
    return TG_OK;
}

/* Scatter-add rows: dst[(o*rows + idx[j]) * inner + k] += src[(o*m + j) * inner + k]. */
static void scatter_rows(tg_dtype dt, void *dst, const void *src, const int32_t *idx, int64_t m,
                         int64_t outer, int64_t rows, int64_t inner)
{
    TG_DISPATCH(dt, T, {
        T *d = dst;
        const T *s = src;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < m; j++) {
                if (idx[j] < 0 || idx[j] >= rows)   /* changed after forward: skip, never write out of range */
                    continue;
                T *dr = d + (o * rows + idx[j]) * inner;
                const T *sr = s + (o * m + j) * inner;
                for (int64_t k = 0; k < inner; k++)
                    dr[k] += sr[k];
            }
    });
}

/* Gather rows: dst[(o*m + j) * inner + k] = src[(o*rows + idx[j]) * inner + k]. */
static void gather_rows_copy(size_t es, void *dst, const void *src, const int32_t *idx, int64_t m,
                             int64_t outer, int64_t rows, int64_t inner)
{
    size_t row = (size_t)inner * es;
    if (!row)
        return;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++)
            memcpy((char *)dst + (size_t)(o * m + j) * row,
                   (const char *)src + (size_t)(o * rows + idx[j]) * row, row);
}

static void gather_cost(const tg_node *n, tg_op_cost *c)
{
    double e = (double)n->out->numel, w = (double)tg_dtype_size(n->out->dtype);
    double ni = (double)n->in[1]->numel * 4;
    c->fwd_flops = 0;
    c->fwd_bytes = 2 * e * w + ni;
    c->bwd_flops = e;
    c->bwd_bytes = 3 * e * w + ni;
}

/* An i32 index sample with values in [0, hi), drawn from n's RNG; with
 * `repeat` the last index repeats the first, so accumulation is exercised. */
static tg_tensor *sample_index(tg_node *n, int ndim, const int64_t *shape, int64_t hi, int repeat)
{
    tg_tensor *t = tg_tensor_new(n->ctx, TG_I32, ndim, shape);
    if (!t)
        return NULL;
    int32_t *v = t->data;
    tg_rng *r = tg_ctx_rng(n->ctx);
    for (int64_t j = 0; j < t->numel; j++)
        v[j] = (int32_t)tg_rng_below(r, (uint64_t)hi);
    if (repeat && t->numel >= 2)
        v[t->numel - 1] = v[0];
    return t;
}


/* ---- index_select ---------------------------------------------------------
 * y[..., j, ...] = x[..., idx[j], ...] along `axis`.
 * x: any shape, ndim >= 1; idx: 1-D i32 of m values in [0, x.shape[axis]);
 * y: x's shape with m along axis.
 * VJP: dx[..., idx[j], ...] += dy[..., j, ...]   (scatter-add)
 * Params: i[0] = axis. Input 1 (idx) is nondiff.
 */
static void isel_dims(const tg_node *n, int axis, int64_t *outer, int64_t *rows, int64_t *inner)
{
    const tg_tensor *x = n->in[0];
    *outer = 1;
    *inner = 1;
    for (int k = 0; k < axis; k++)
        *outer *= x->shape[k];
    for (int k = axis + 1; k < x->ndim; k++)
        *inner *= x->shape[k];
    *rows = x->shape[axis];
}

static int isel_axis(const tg_node *n)
{
    int64_t a = n->p.i[0];
    return (int)(a < 0 ? a + n->in[0]->ndim : a);
}

static tg_status index_select_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    const tg_tensor *x = n->in[0];
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    if (x->ndim == 0)
        return tg_op_fail(n, TG_ERR_ARG, "cannot index a scalar");
    int axis = 0;
    if ((s = tg_norm_axis(n, n->p.i[0], x->ndim, &axis)) != TG_OK)
        return s;
    if ((s = check_index(n, 1, 1, axis, x->shape[axis])) != TG_OK)
        return s;
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[axis] = n->in[1]->numel;
    *dt = x->dtype;
    *ndim = x->ndim;
    return TG_OK;
}

static tg_status index_select_forward(tg_node *n)
{
    int64_t outer, rows, inner;
    isel_dims(n, isel_axis(n), &outer, &rows, &inner);
    gather_rows_copy(tg_dtype_size(n->out->dtype), n->out->data, n->in[0]->data, n->in[1]->data,
                     n->in[1]->numel, outer, rows, inner);
    return TG_OK;
}

static void index_select_backward(tg_node *n)
{
    if (!n->in[0]->grad)
        return;
    int64_t outer, rows, inner;
    isel_dims(n, isel_axis(n), &outer, &rows, &inner);
    scatter_rows(n->out->dtype, n->in[0]->grad, n->out->grad, n->in[1]->data, n->in[1]->numel,
                 outer, rows, inner);
}

static tg_status index_select_sample(tg_node *n, tg_dtype dt, int v)
{
    static const int64_t xs[][3] = { {5, 3}, {2, 4, 3}, {6}, {3, 1} };
    static const int     nd[] = { 2, 3, 1, 2 };
    static const int64_t axis[] = { 0, -2, 0, -1 };
    static const int64_t m[] = { 4, 6, 1, 3 };
    if (v < 0 || v > 3)
        return TG_ERR_ARG;
    n->n_in = 2;
    n->in[0] = tg_sample_uniform(n, dt, nd[v], xs[v], -2, 2);
    int ax = (int)(axis[v] < 0 ? axis[v] + nd[v] : axis[v]);
    n->in[1] = sample_index(n, 1, &m[v], xs[v][ax], 1);
    n->p.i[0] = axis[v];
    return tg_sample_done(n);
}

const tg_op_def tg_op_index_select_def = {
    .name = "index_select", .n_in = 2, .nondiff = 1u << 1,
    .shape = index_select_shape, .forward = index_select_forward, .backward = index_select_backward,
    .sample = index_select_sample, .n_samples = 4, .cost = gather_cost,
};

tg_tensor *tg_index_select(tg_ctx *ctx, tg_tensor *x, int axis, tg_tensor *idx)
{
    tg_tensor *in[2] = { x, idx };
    tg_op_params p = {0};
    p.i[0] = axis;
    return tg_apply(ctx, &tg_op_index_select_def, in, 2, &p, NULL);
}

/* ---- gather_rows ----------------------------------------------------------
 * y[i..., :] = table[idx[i...], :]        (embedding lookup)
 * table: R x D... (ndim >= 1); idx: any shape of i32 in [0, R);
 * y: idx.shape + table.shape[1:] (at most TG_MAX_DIMS dims).
 * VJP: dtable[idx[i], :] += dy[i, :]   (scatter-add; repeats accumulate)
 * Input 1 (idx) is nondiff.
 */
static void grows_dims(const tg_node *n, int64_t *rows, int64_t *inner)
{
    const tg_tensor *t = n->in[0];
    *rows = t->shape[0];
    *inner = 1;
    for (int k = 1; k < t->ndim; k++)
        *inner *= t->shape[k];
}

static tg_status gather_rows_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    const tg_tensor *t = n->in[0], *idx = n->in[1];
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    char st[TG_SHAPE_STR_MAX], si[TG_SHAPE_STR_MAX];
    if (t->ndim == 0)
        return tg_op_fail(n, TG_ERR_ARG, "the table must have at least 1 dim, got a scalar");
    if (idx->ndim + t->ndim - 1 > TG_MAX_DIMS)
        return tg_op_fail(n, TG_ERR_SHAPE, "index %s into table %s would give %d dims (max %d)",
                          TG_SHAPE_OF(idx, si), TG_SHAPE_OF(t, st), idx->ndim + t->ndim - 1, TG_MAX_DIMS);
    if ((s = check_index(n, 1, -1, 0, t->shape[0])) != TG_OK)
        return s;
    int nd = 0;
    for (int k = 0; k < idx->ndim; k++)
        shape[nd++] = idx->shape[k];
    for (int k = 1; k < t->ndim; k++)
        shape[nd++] = t->shape[k];
    *dt = t->dtype;
    *ndim = nd;
    return TG_OK;
}

static tg_status gather_rows_forward(tg_node *n)
{
    int64_t rows, inner;
    grows_dims(n, &rows, &inner);
    gather_rows_copy(tg_dtype_size(n->out->dtype), n->out->data, n->in[0]->data, n->in[1]->data,
                     n->in[1]->numel, 1, rows, inner);
    return TG_OK;
}

static void gather_rows_backward(tg_node *n)
{
    if (!n->in[0]->grad)
        return;
    int64_t rows, inner;
    grows_dims(n, &rows, &inner);
    scatter_rows(n->out->dtype, n->in[0]->grad, n->out->grad, n->in[1]->data, n->in[1]->numel,
                 1, rows, inner);
}

static tg_status gather_rows_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    n->n_in = 2;
    if (v == 0) {          /* 6x3 table, 4 lookups with a repeat */
        n->in[0] = tg_sample_uniform(n, dt, TG_DIMS(6, 3), -2, 2);
        n->in[1] = sample_index(n, TG_DIMS(4), 6, 1);
    } else if (v == 1) {   /* 2-D index (batch x sequence) */
        n->in[0] = tg_sample_uniform(n, dt, TG_DIMS(5, 2), -2, 2);
        n->in[1] = sample_index(n, TG_DIMS(2, 3), 5, 1);
    } else {               /* 1-D table: scalar rows */
        n->in[0] = tg_sample_uniform(n, dt, TG_DIMS(4), -2, 2);
        n->in[1] = sample_index(n, TG_DIMS(5), 4, 1);
    }
    return tg_sample_done(n);
}

const tg_op_def tg_op_gather_rows_def = {
    .name = "gather_rows", .n_in = 2, .nondiff = 1u << 1,
    .shape = gather_rows_shape, .forward = gather_rows_forward, .backward = gather_rows_backward,
    .sample = gather_rows_sample, .n_samples = 3, .cost = gather_cost,
};

tg_tensor *tg_gather_rows(tg_ctx *ctx, tg_tensor *table, tg_tensor *idx)
{
    tg_tensor *in[2] = { table, idx };
    return tg_apply(ctx, &tg_op_gather_rows_def, in, 2, NULL, NULL);
}
