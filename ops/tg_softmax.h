/* tg_softmax.h — recording functions of the softmax family (ops/softmax.c). */
#ifndef TG_SOFTMAX_H
#define TG_SOFTMAX_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = exp(x - m) / sum exp(x - m) along `axis`, m the max along the axis.
 * x: any float shape; y: same shape and dtype. `axis` may be negative (-1 is
 * the last); a scalar accepts 0 or -1 (y = 1). Stable: logits of +-1e4 give
 * finite outputs and VJPs (softmax([1e4, 0, -1e4]) = [1, 0, 0]); sums are
 * accumulated in double. A slice that is all -inf, or holds +inf or NaN,
 * gives NaN (as PyTorch).
 * VJP: dx += y * (dy - sum_axis(dy * y)), from the saved output.
 * Errors: axis out of range ("softmax: axis 2 out of range for 2 dims"),
 * integer input. */
tg_tensor *tg_softmax(tg_ctx *ctx, tg_tensor *x, int axis);

/* y = x - m - log(sum exp(x - m)) along `axis` (the log of tg_softmax,
 * computed directly so it stays finite where softmax underflows to 0:
 * log_softmax([1e4, 0, -1e4]) = [0, -1e4, -2e4]).
 * Shapes, axis, special values and errors as tg_softmax.
 * VJP: dx += dy - exp(y) * sum_axis(dy), from the saved output. */
tg_tensor *tg_log_softmax(tg_ctx *ctx, tg_tensor *x, int axis);

#ifdef __cplusplus
}
#endif
#endif
