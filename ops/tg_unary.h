/* tg_unary.h — recording functions of the unary family (ops/unary.c).
 *
 * Each takes a float tensor x (f32 or f64, any shape including ndim 0) and
 * returns a new tensor of the same dtype and shape, an arena tensor valid
 * until tg_ctx_reset. Errors (recorded on ctx, NULL returned): x NULL
 * (TG_ERR_ARG, "<op>: input 0 is NULL"), x an integer tensor (TG_ERR_ARG,
 * "<op>: input 0 is i32, expected f32 or f64"), an error already set on ctx.
 * Domain edges follow IEEE arithmetic and are not errors: log(0) = -inf,
 * log and sqrt of a negative number are NaN, NaN inputs give NaN outputs.
 */
#ifndef TG_UNARY_H
#define TG_UNARY_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = -x.                    VJP: dx = -dy. */
tg_tensor *tg_neg(tg_ctx *ctx, tg_tensor *x);

/* y = exp(x), elementwise.   VJP: dx = dy * y (overflows to +inf above
 * x ~ 709.8 in f64, ~ 88.7 in f32, as IEEE exp does). */
tg_tensor *tg_exp(tg_ctx *ctx, tg_tensor *x);

/* y = log(x) (natural).      VJP: dx = dy / x. log(0) = -inf, log(x<0) = NaN. */
tg_tensor *tg_log(tg_ctx *ctx, tg_tensor *x);

/* y = sqrt(x).               VJP: dx = dy / (2 y); +inf at x = 0. */
tg_tensor *tg_sqrt(tg_ctx *ctx, tg_tensor *x);

/* y = |x|.                   VJP: dx = dy * sign(x), with gradient 0 at
 * x = 0 (as PyTorch). */
tg_tensor *tg_abs(tg_ctx *ctx, tg_tensor *x);

/* y = x^2.                   VJP: dx = 2 x dy. */
tg_tensor *tg_square(tg_ctx *ctx, tg_tensor *x);

/* y = min(max(x, lo), hi).   VJP: dx = dy where lo <= x <= hi, else 0.
 * At exactly a bound the gradient passes, as in PyTorch (its clamp
 * backward masks with lo <= x <= hi); with lo == hi it passes only where
 * x == lo. NaN x gives NaN and gradient 0. Bounds may be +-inf (a one-sided
 * clamp); they are rounded to x's dtype. Extra errors: lo > hi or a NaN
 * bound (TG_ERR_ARG, "clamp: lo 1 > hi 0"). Node params: p.f[0] = lo,
 * p.f[1] = hi. */
tg_tensor *tg_clamp(tg_ctx *ctx, tg_tensor *x, double lo, double hi);

#ifdef __cplusplus
}
#endif
#endif
