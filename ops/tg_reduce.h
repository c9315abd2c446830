/* tg_reduce.h — recording functions of the reduce family (ops/reduce.c).
 *
 * Every reduction takes the same axis arguments:
 *   axes, n_axes  the axes to reduce; negative axes count from the end
 *                 (-1 is the last). n_axes == 0 reduces over every axis
 *                 (axes may then be NULL). A scalar (ndim 0) accepts axis
 *                 0 or -1 and is returned unchanged in value.
 *   keepdims      non-zero: reduced axes stay, with size 1 (the result
 *                 broadcasts against x); zero: they are removed, so reducing
 *                 every axis gives a scalar (ndim 0).
 * Shapes, e.g. x: 2x3x4, axes {0, 2}: keepdims 1 -> 1x3x1, keepdims 0 -> 3.
 *
 * Numbers: sums accumulate in double, in a fixed order, also for f32 input;
 * results are rounded to x's dtype. The output has x's dtype.
 *
 * Errors (NULL returned, the context's error set, message prefixed with the
 * op's name): integer (i32) input; an axis out of range
 * ("sum: axis 3 out of range for 3 dims"); an axis given twice, also as
 * 2 and -1 of a 3-d tensor ("sum: axis -1 repeated in the axis list");
 * n_axes < 0 or axes NULL with n_axes > 0; max/min over an empty axis.
 *
 * Recorded node params (for tools reading the tape): p.i[0] is the bitmask of
 * reduced axes after normalisation (bit k = axis k), p.i[1] keepdims (0/1),
 * p.i[2] the correction of var (0 for the others).
 */
#ifndef TG_REDUCE_H
#define TG_REDUCE_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = sum of x over the axes. Over an empty axis the sum is 0.
 * VJP: dx += dy broadcast back over the reduced axes. */
tg_tensor *tg_sum(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims);

/* y = sum over the axes / N, N the number of elements reduced into each
 * output (NaN over an empty axis). VJP: dx += dy / N broadcast back. */
tg_tensor *tg_mean(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims);

/* y = sum (x - mean)^2 / (N - correction) over the axes (two passes, in
 * double). correction 0 is the population variance, 1 the sample (unbiased)
 * variance, as torch.var(correction=). VJP: dx += dy * 2 (x - mean) / (N - c).
 * When N - correction <= 0 this follows PyTorch: the divisor is taken as 0,
 * so y is +inf (NaN when every x equals the mean), and the VJP is
 * dy * (x == mean ? NaN : inf). */
tg_tensor *tg_var(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims,
                  int correction);

/* y = max / min of x over the axes (NaN if the slice holds a NaN).
 * VJP: dy goes to the arg-max (arg-min) element; when k elements tie for the
 * extreme, each gets dy / k (PyTorch's amax/amin semantics). A slice whose
 * result is NaN passes NaN to all its elements. Error over an empty axis. */
tg_tensor *tg_max(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims);
tg_tensor *tg_min(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims);

/* y = log(sum exp(x)) over the axes, computed stably as
 * m + log(sum exp(x - m)) with m the slice's max (the sum in double).
 * A slice of all -inf gives -inf (no NaN), one holding +inf gives +inf, an
 * empty slice -inf. VJP: dx += dy * exp(x - y), i.e. dy times the softmax
 * of the slice; an all -inf slice passes no gradient (0, where PyTorch
 * gives NaN). */
tg_tensor *tg_logsumexp(tg_ctx *ctx, tg_tensor *x, const int *axes, int n_axes, int keepdims);

/* Sum / mean of every element: a scalar (ndim 0). Same as tg_sum(ctx, x,
 * NULL, 0, 0) and tg_mean(ctx, x, NULL, 0, 0). */
tg_tensor *tg_sum_all(tg_ctx *ctx, tg_tensor *x);
tg_tensor *tg_mean_all(tg_ctx *ctx, tg_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
