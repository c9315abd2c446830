/* tg_loss.h — recording functions of the loss family (ops/loss.c).
 *
 * Every loss is one fused op (one forward kernel, one VJP), not a
 * composition of other ops. Common rules:
 *   - `r` chooses the reduction over the per-element (or per-row) losses:
 *     TG_REDUCE_MEAN and TG_REDUCE_SUM give a scalar (ndim 0); TG_REDUCE_NONE
 *     gives the unreduced losses. MEAN over zero losses (an empty batch) is
 *     an error, TG_ERR_SHAPE: "cross_entropy: empty batch (0x10): the mean
 *     of zero losses is undefined (TG_REDUCE_SUM gives 0)" (PyTorch returns
 *     NaN); SUM over zero losses is 0, NONE an empty tensor.
 *   - Float inputs are f32 or f64, all of the same dtype; the output has that
 *     dtype. Inputs must have exactly the stated shapes: no broadcasting.
 *   - On bad input the function returns NULL and records on the context an
 *     error naming the op and the shapes or values ("mse: pred shape 2x3
 *     differs from target shape 3x2"); a NULL input gives NULL.
 *   - Descriptor parameters (for tooling that builds nodes by hand):
 *     n->p.i[0] = reduction (0 MEAN, 1 SUM, 2 NONE), n->p.f[0] = huber's delta.
 * The returned tensor lives in the context's arena until tg_ctx_reset.
 */
#ifndef TG_LOSS_H
#define TG_LOSS_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_reduction {
    TG_REDUCE_MEAN = 0,   /* mean over all losses: scalar                     */
    TG_REDUCE_SUM  = 1,   /* sum of all losses: scalar                        */
    TG_REDUCE_NONE = 2    /* no reduction: one loss per element (per row, CE) */
} tg_reduction;

/* Mean squared error: l_i = (pred_i - target_i)^2.
 * pred, target: same shape, same float dtype; both differentiable.
 * VJP: dpred_i += 2 (pred_i - target_i) g_i, dtarget_i -= the same, where
 * g_i = dy (SUM), dy / numel (MEAN), dy_i (NONE).
 * Errors: shape mismatch (TG_ERR_SHAPE), mixed or integer dtypes, bad
 * reduction (TG_ERR_ARG). */
tg_tensor *tg_mse_loss(tg_ctx *ctx, tg_tensor *pred, tg_tensor *target, tg_reduction r);

/* L1 (mean absolute error): l_i = |pred_i - target_i|.
 * pred, target: same shape, same float dtype; both differentiable.
 * VJP: dpred_i += sign(d_i) g_i, dtarget_i -= the same, with d = pred - target
 * and sign(0) = 0 (the gradient at d == 0 is 0, as PyTorch).
 * Errors: as tg_mse_loss. */
tg_tensor *tg_l1_loss(tg_ctx *ctx, tg_tensor *pred, tg_tensor *target, tg_reduction r);

/* Huber loss (PyTorch's HuberLoss), with d = pred - target:
 *     l_i = 0.5 d_i^2                      if |d_i| < delta
 *         = delta (|d_i| - 0.5 delta)      otherwise
 * pred, target: same shape, same float dtype; both differentiable.
 * VJP: dpred_i += clamp(d_i, -delta, delta) g_i, dtarget_i -= the same.
 * Errors: as tg_mse_loss; delta <= 0 or not finite (TG_ERR_ARG). */
tg_tensor *tg_huber_loss(tg_ctx *ctx, tg_tensor *pred, tg_tensor *target, double delta, tg_reduction r);

/* Softmax cross-entropy on logits with integer class labels:
 *     l_i = logsumexp_j(x_ij) - x_i,label_i
 * computed stably (the row maximum is subtracted before exp), so logits of
 * +-1e4 give a finite loss and gradient.
 * logits: (N, C) f32/f64; labels: (N) TG_I32 class indices in [0, C).
 * A single sample may be given as logits (C) with a 0-d or 1-element label.
 * Output: MEAN/SUM a scalar; NONE (N), or a 0-d scalar for 1-D logits.
 * Labels are not differentiable. The forward saves each row's max and
 * 1 / sum exp(x - max) (2N values, arena), not the N*C softmax; the VJP
 * recomputes softmax(x) from the logits, which (as every op's inputs) must
 * not change between forward and backward:
 * dx_ij += (softmax(x)_ij - [j == label_i]) g_i with
 * g_i = dy / N (MEAN), dy (SUM), dy_i (NONE).
 * Errors: logits not 1-D/2-D, or labels of the wrong shape (TG_ERR_SHAPE);
 * labels not i32, a label outside [0, C) (TG_ERR_ARG, checked before anything
 * is computed: "cross_entropy: label 12 at row 3 outside [0, 10)"). */
tg_tensor *tg_cross_entropy(tg_ctx *ctx, tg_tensor *logits, tg_tensor *labels, tg_reduction r);

/* Binary cross-entropy on logits (sigmoid folded in), elementwise:
 *     l_i = max(x_i, 0) - x_i t_i + log1p(exp(-|x_i|))
 * which equals -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) and stays
 * finite for any finite x. logits, targets: same shape, same float dtype.
 * Targets are usually in [0, 1] but are not checked, and are differentiable
 * (as in PyTorch): dx_i += (sigmoid(x_i) - t_i) g_i, dt_i += -x_i g_i.
 * Errors: as tg_mse_loss. */
tg_tensor *tg_bce_with_logits(tg_ctx *ctx, tg_tensor *logits, tg_tensor *targets, tg_reduction r);

#ifdef __cplusplus
}
#endif
#endif
