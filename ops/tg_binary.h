/* tg_binary.h — recording functions of the binary family (ops/binary.c):
 * elementwise ops of two tensors with NumPy broadcasting, their
 * tensor-scalar forms, and where.
 *
 * Broadcasting (all two-tensor ops and where): shapes are aligned on the
 * right; each pair of dims must be equal or one of them 1 (a missing leading
 * dim counts as 1); the output takes the larger. (2,3,4) with (3,1) gives
 * (2,3,4); (4,1,3) with (5,1) gives (4,5,3); a scalar (ndim 0) broadcasts
 * to anything. The gradient of a broadcast input is the upstream gradient
 * summed over the axes it was stretched along (fixed order: deterministic).
 *
 * Every function returns an arena tensor valid until tg_ctx_reset(ctx), or
 * NULL with the context's error set:
 *   - a NULL input:          "add: input 1 is NULL"                 (TG_ERR_ARG)
 *   - an i32 input:          "add: input 0 is i32, expected f32 or f64" (TG_ERR_ARG)
 *   - f32 mixed with f64:    "add: mixed dtypes (f32 and f64)"      (TG_ERR_ARG)
 *   - shapes that do not broadcast:
 *       "add: cannot broadcast 2x3 with 4x3 (axis 0: 2 vs 4)"     (TG_ERR_SHAPE)
 *   - an error already recorded on ctx (sticky): NULL at once.
 * Values follow IEEE arithmetic (x / 0 is inf or NaN); nothing is checked.
 */
#ifndef TG_BINARY_H
#define TG_BINARY_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = a + b, broadcast. VJP: da = dy, db = dy (un-broadcast). */
tg_tensor *tg_add(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);

/* y = a - b, broadcast. VJP: da = dy, db = -dy (un-broadcast). */
tg_tensor *tg_sub(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);

/* y = a * b, broadcast. VJP: da = dy * b, db = dy * a (un-broadcast).
 * tg_mul(ctx, x, x) is fine: x gets both contributions (2 x dy). */
tg_tensor *tg_mul(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);

/* y = a / b, broadcast. VJP: da = dy / b, db = -dy * a / b^2 (computed as
 * -dy * (a / b) / b). */
tg_tensor *tg_div(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);

/* y = a ^ b, broadcast (C pow: NaN for a < 0 with a non-integer b).
 * VJP, as PyTorch: da = dy * b * a^(b-1), and 0 where b == 0;
 *                  db = dy * y * log(a), and 0 where a == 0 and b >= 0;
 * for a < 0, log(a) is NaN and so is db. Gradients are meant for a > 0. */
tg_tensor *tg_pow(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);

/* y = max(a, b), broadcast; NaN in either input gives NaN.
 * VJP: dy goes to the larger input; on an exact tie (a == b) each input
 * gets dy / 2 (as PyTorch). Where an input is NaN both get dy. */
tg_tensor *tg_maximum(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);

/* y = min(a, b), broadcast; NaN in either input gives NaN.
 * VJP: dy goes to the smaller input; ties split dy / 2 each, as maximum. */
tg_tensor *tg_minimum(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);

/* Tensor-scalar forms: y has x's shape and dtype; c is rounded to x's dtype
 * before use. Each records one op whose constant is in node->p.f[0]:
 *   tg_add_scalar  y = x + c     op "add_scalar"   VJP dx = dy
 *   tg_sub_scalar  y = x - c     op "add_scalar" with p.f[0] = -c (exact)
 *   tg_rsub_scalar y = c - x     op "rsub_scalar"  VJP dx = -dy
 *   tg_mul_scalar  y = x * c     op "mul_scalar"   VJP dx = dy * c
 *   tg_div_scalar  y = x / c     op "div_scalar"   VJP dx = dy / c
 *   tg_rdiv_scalar y = c / x     op "rdiv_scalar"  VJP dx = -dy * c / x^2
 *   tg_pow_scalar  y = x ^ c     op "pow_scalar"   VJP dx = dy * c * x^(c-1), 0 if c == 0
 * Errors: NULL x, an i32 x ("mul_scalar: input 0 is i32, expected f32 or
 * f64"), or an error already recorded. */
tg_tensor *tg_add_scalar (tg_ctx *ctx, tg_tensor *x, double c);
tg_tensor *tg_sub_scalar (tg_ctx *ctx, tg_tensor *x, double c);
tg_tensor *tg_rsub_scalar(tg_ctx *ctx, tg_tensor *x, double c);
tg_tensor *tg_mul_scalar (tg_ctx *ctx, tg_tensor *x, double c);
tg_tensor *tg_div_scalar (tg_ctx *ctx, tg_tensor *x, double c);
tg_tensor *tg_rdiv_scalar(tg_ctx *ctx, tg_tensor *x, double c);
tg_tensor *tg_pow_scalar (tg_ctx *ctx, tg_tensor *x, double c);

/* y = mask ? a : b, elementwise; mask, a and b broadcast together.
 * mask: i32, f32 or f64, non-zero (NaN included) is true; it never takes a
 * gradient. a, b: the same float dtype, which y takes.
 * VJP: da = dy where mask, db = dy where !mask (un-broadcast); the branch
 * not taken receives exactly 0, so inf or NaN values in it never reach the
 * gradient: d/dx where(m, exp(x), sqrt(y)) is finite even where sqrt(y) is
 * NaN. (The op that computed the untaken branch still gets dy = 0 and may
 * itself produce NaN from 0 * inf, e.g. sqrt at 0: mask its input too.)
 * Errors as above, with the mask's shape included in the broadcast. */
tg_tensor *tg_where(tg_ctx *ctx, tg_tensor *mask, tg_tensor *a, tg_tensor *b);

#ifdef __cplusplus
}
#endif
#endif
