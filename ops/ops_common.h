/* ops_common.h — helpers shared by the op family files (private to ops/):
 * input checks that produce the standard error messages, axis handling,
 * broadcasting iterators, dtype dispatch, sample-input makers. */
#ifndef TG_OPS_COMMON_H
#define TG_OPS_COMMON_H

#include "tg_ops.h"

#include <math.h>
#include <string.h>

/* Run `...` once with T = float or T = double according to dt. */
#define TG_DISPATCH(dt, T, ...)                                  \
    do {                                                         \
        if ((dt) == TG_F32) { typedef float T; __VA_ARGS__ }     \
        else                { typedef double T; __VA_ARGS__ }    \
    } while (0)

#define TG_SHAPE_OF(t, buf) tg_shape_str((t)->ndim, (t)->shape, (buf), sizeof(buf))

/* Input i must be f32 or f64. */
static inline tg_status tg_chk_float(const tg_node *n, int i)
{
    if (!tg_dtype_is_float(n->in[i]->dtype))
        return tg_op_fail(n, TG_ERR_ARG, "input %d is %s, expected f32 or f64", i,
                          tg_dtype_name(n->in[i]->dtype));
    return TG_OK;
}

/* Inputs i and j must have the same float dtype. */
static inline tg_status tg_chk_same_dtype(const tg_node *n, int i, int j)
{
    tg_status s;
    if ((s = tg_chk_float(n, i)) != TG_OK || (s = tg_chk_float(n, j)) != TG_OK)
        return s;
    if (n->in[i]->dtype != n->in[j]->dtype)
        return tg_op_fail(n, TG_ERR_ARG, "mixed dtypes (%s and %s)",
                          tg_dtype_name(n->in[i]->dtype), tg_dtype_name(n->in[j]->dtype));
    return TG_OK;
}

/* Inputs i and j must have identical shapes. */
static inline tg_status tg_chk_same_shape(const tg_node *n, int i, int j)
{
    const tg_tensor *a = n->in[i], *b = n->in[j];
    if (!tg_shape_equal(a->ndim, a->shape, b->ndim, b->shape)) {
        char sa[TG_SHAPE_STR_MAX], sb[TG_SHAPE_STR_MAX];
        return tg_op_fail(n, TG_ERR_SHAPE, "shapes differ (%s vs %s)", TG_SHAPE_OF(a, sa), TG_SHAPE_OF(b, sb));
    }
    return TG_OK;
}

/* Normalise a possibly negative axis for a tensor of `ndim` dims. */
static inline tg_status tg_norm_axis(const tg_node *n, int64_t axis, int ndim, int *out)
{
    if (axis < -ndim || axis >= (ndim ? ndim : 1))
        return tg_op_fail(n, TG_ERR_ARG, "axis %lld out of range for %d dims", (long long)axis, ndim);
    *out = (int)(axis < 0 ? axis + ndim : axis);
    return TG_OK;
}

/* NumPy broadcasting of two shapes (right-aligned, 1 stretches). */
static inline tg_status tg_broadcast_shape(const tg_node *n, const tg_tensor *a, const tg_tensor *b,
                                           int *ndim, int64_t *out)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = 0; k < nd; k++) {
        int ia = a->ndim - nd + k, ib = b->ndim - nd + k;
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[TG_SHAPE_STR_MAX], sb[TG_SHAPE_STR_MAX];
            return tg_op_fail(n, TG_ERR_SHAPE, "cannot broadcast %s with %s (axis %d: %lld vs %lld)",
                              TG_SHAPE_OF(a, sa), TG_SHAPE_OF(b, sb), k, (long long)da, (long long)db);
        }
        out[k] = da == 1 ? db : da;
    }
    *ndim = nd;
    return TG_OK;
}

/* Strides of `t` seen through an output of shape (nd, shape): 0 on
 * broadcast axes. Elements of the output in row-major order map to input
 * offsets by sum(index[k] * stride[k]). */
static inline void tg_broadcast_strides(const tg_tensor *t, int nd, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) {
        int it = t->ndim - nd + k;
        int64_t d = it >= 0 ? t->shape[it] : 1;
        stride[k] = (d == 1 && shape[k] != 1) ? 0 : s;
        s *= d;
    }
}

/* A row-major multi-index counter over `shape` that keeps offsets into up to
 * three broadcast inputs in step. */
typedef struct tg_bcast_iter {
    int     nd;
    int64_t shape[TG_MAX_DIMS];
    int64_t idx[TG_MAX_DIMS];
    int64_t stride[3][TG_MAX_DIMS];
    int64_t off[3];
    int     n_ops;
} tg_bcast_iter;

static inline void tg_bcast_init(tg_bcast_iter *it, int nd, const int64_t *shape,
                                 const tg_tensor *const *ops, int n_ops)
{
    it->nd = nd;
    it->n_ops = n_ops;
    for (int k = 0; k < nd; k++) {
        it->shape[k] = shape[k];
        it->idx[k] = 0;
    }
    for (int j = 0; j < n_ops; j++) {
        tg_broadcast_strides(ops[j], nd, shape, it->stride[j]);
        it->off[j] = 0;
    }
}

static inline void tg_bcast_next(tg_bcast_iter *it)
{
    for (int k = it->nd - 1; k >= 0; k--) {
        if (++it->idx[k] < it->shape[k]) {
            for (int j = 0; j < it->n_ops; j++)
                it->off[j] += it->stride[j][k];
            return;
        }
        it->idx[k] = 0;
        for (int j = 0; j < it->n_ops; j++)
            it->off[j] -= it->stride[j][k] * (it->shape[k] - 1);
    }
}

/* A sample input in [lo, hi) (f64 draws rounded to dt), made in n's context. */
static inline tg_tensor *tg_sample_uniform(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape,
                                           double lo, double hi)
{
    return tg_tensor_rand(n->ctx, dt, ndim, shape, lo, hi);
}

/* Like tg_sample_uniform but |x| >= gap: keeps samples off a kink at 0. */
static inline tg_tensor *tg_sample_away0(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape,
                                         double lim, double gap)
{
    tg_tensor *t = tg_tensor_new(n->ctx, dt, ndim, shape);
    if (t) {
        tg_rng *r = tg_ctx_rng(n->ctx);
        for (int64_t i = 0; i < t->numel; i++) {
            double u = gap + (lim - gap) * tg_rng_uniform(r);
            tg_tensor_set(t, i, tg_rng_uniform(r) < 0.5 ? -u : u);
        }
    }
    return t;
}

#define TG_NUMEL(t) ((size_t)(t)->numel)

#endif
