/* tg_shape.h — recording functions of the shape family (ops/shape.c,
 * ops/index.c): ops that move elements without arithmetic.
 *
 * Tensors are contiguous and row-major, so every one of these ops
 * materialises its output (no strided views). Each returns an arena tensor
 * valid until tg_ctx_reset(ctx), or NULL with the context's error set: a NULL
 * input or an earlier error gives NULL, and bad shapes, axes or indices give
 * a message naming the op and the shapes. Inputs are f32 or f64 (index
 * tensors are i32); the output has the input's dtype. Axes may be negative
 * (counted from the end) unless stated otherwise. */
#ifndef TG_SHAPE_H
#define TG_SHAPE_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = x with shape (shape[0], .., shape[ndim-1]): the same elements in the
 * same row-major order. One entry may be -1: it is inferred from the element
 * count. ndim 0 makes a scalar (x must have one element).
 * VJP: dx += dy reshaped to x's shape.
 * Errors: ndim outside 0..TG_MAX_DIMS, more than one -1, a negative dim
 * other than -1 (TG_ERR_ARG); an element count that does not match
 * (TG_ERR_SHAPE: "reshape: cannot reshape 2x3 (6 elements) into 4x2 (8 elements)"). */
tg_tensor *tg_reshape(tg_ctx *ctx, tg_tensor *x, int ndim, const int64_t *shape);

/* y = x with its axes reordered: y.shape[k] = x.shape[perm[k]] and
 * y[i_0, .., i_{d-1}] = x[j] where j[perm[k]] = i_k. `perm` has x->ndim
 * entries forming a permutation of 0..ndim-1 (negative entries are not
 * allowed). VJP: dx += dy permuted by the inverse permutation.
 * Errors: NULL perm, entries out of range or repeated (TG_ERR_ARG). */
tg_tensor *tg_permute(tg_ctx *ctx, tg_tensor *x, const int *perm);

/* y = x with axes ax0 and ax1 swapped (a permute). For a 2-D x: y = xᵀ.
 * Swaps of the two last axes run as a cache-blocked transpose.
 * Errors: an axis outside -ndim..ndim-1 (TG_ERR_ARG). */
tg_tensor *tg_transpose(tg_ctx *ctx, tg_tensor *x, int ax0, int ax1);

/* y = x[..., start:stop:step, ...] along `axis`, with Python semantics:
 * negative start/stop count from the end of the axis, then both are clamped
 * to [0, size] (pass INT64_MAX as stop for "to the end"). y has x's shape
 * with len(range(start, stop, step)) along axis, which may be 0.
 * VJP: dx[..., start + j*step, ...] += dy[..., j, ...]; other entries of dx
 * are untouched.
 * Errors: a scalar x, axis out of range, step < 1 (TG_ERR_ARG). */
tg_tensor *tg_slice(tg_ctx *ctx, tg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step);

/* y = xs[0], .., xs[n-1] joined along existing `axis`. 1 <= n <= TG_MAX_IN
 * (16). All inputs have the same dtype and ndim (>= 1) and equal dims except
 * along axis; y.shape[axis] = sum of xs[i]->shape[axis]. The same tensor
 * may appear more than once.
 * VJP: dxs[i] += the part of dy that xs[i] was copied to.
 * Errors: n out of range (TG_ERR_ARG); mixed dtypes (TG_ERR_ARG); scalar
 * inputs, mismatched shapes (TG_ERR_SHAPE, naming the offending input index
 * and both shapes: "concat: input 2 has shape 2x4, input 0 has 3x4 (all
 * dims but axis 1 must match)"); axis out of range (TG_ERR_ARG). */
tg_tensor *tg_concat(tg_ctx *ctx, tg_tensor *const *xs, int n, int axis);

/* y = xs[0], .., xs[n-1] stacked along a new axis `axis` (in
 * -(d+1)..d for d-dim inputs): y has d+1 dims, y.shape[axis] = n, and
 * y[.., i, ..] = xs[i]. 1 <= n <= TG_MAX_IN; all inputs have the same dtype
 * and shape (d + 1 <= TG_MAX_DIMS). The same tensor may appear twice.
 * VJP: dxs[i] += dy[.., i, ..].
 * Errors: as tg_concat (an input whose shape differs from input 0 is named
 * with both shapes). */
tg_tensor *tg_stack(tg_ctx *ctx, tg_tensor *const *xs, int n, int axis);

/* y = x broadcast to `shape` by NumPy rules: shapes are aligned on the
 * right; each dim of x must equal the target's or be 1 (it is repeated);
 * missing leading dims are added. ndim >= x->ndim.
 * VJP: dx += dy summed over every broadcast (stretched or added) axis.
 * Errors: ndim outside x->ndim..TG_MAX_DIMS, negative target dims, an
 * incompatible dim ("broadcast_to: cannot broadcast 2x3 to 4x3 (axis 0:
 * 2 vs 4)"). */
tg_tensor *tg_broadcast_to(tg_ctx *ctx, tg_tensor *x, int ndim, const int64_t *shape);

/* y[..., j, ...] = x[..., idx[j], ...] along `axis`. idx is a 1-D TG_I32
 * tensor of m values in [0, x->shape[axis]) (repeats allowed; no negative
 * wrap-around); y is x's shape with m along axis. idx gets no gradient.
 * VJP (scatter-add): dx[..., idx[j], ...] += dy[..., j, ...]; repeated
 * indices accumulate.
 * Errors: idx not i32 or not 1-D, axis out of range, and any index out of
 * range, reported before anything is written with the first bad value and
 * its position: "index_select: index 7 at position 2 out of range for axis
 * 0 of size 6". */
tg_tensor *tg_index_select(tg_ctx *ctx, tg_tensor *x, int axis, tg_tensor *idx);

/* Embedding lookup: y[i..., :] = table[idx[i...], :].
 * table: R x D1 x .. (ndim >= 1); idx: TG_I32 of any shape with values in
 * [0, R); y: idx.shape + table.shape[1:] (at most TG_MAX_DIMS dims).
 * idx gets no gradient.
 * VJP (scatter-add): dtable[idx[i], :] += dy[i, :]; repeats accumulate.
 * Errors: a scalar table, idx not i32, too many output dims, an index out of
 * range (first bad value and its flat position in idx, before any write). */
tg_tensor *tg_gather_rows(tg_ctx *ctx, tg_tensor *table, tg_tensor *idx);

#ifdef __cplusplus
}
#endif
#endif
