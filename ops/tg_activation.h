/* tg_activation.h — recording functions of the activation family
 * (ops/activation.c).
 *
 * Each takes a float tensor x (f32 or f64, any shape including ndim 0) and
 * returns a new tensor of the same dtype and shape, an arena tensor valid
 * until tg_ctx_reset. Errors (recorded on ctx, NULL returned): x NULL
 * (TG_ERR_ARG, "<op>: input 0 is NULL"), x an integer tensor (TG_ERR_ARG,
 * "<op>: input 0 is i32, expected f32 or f64"), a bad parameter
 * (TG_ERR_ARG, named below), an error already set on ctx.
 * All are finite with finite gradients for |x| up to 1e4 and beyond
 * (stable formulations); NaN inputs give NaN outputs.
 */
#ifndef TG_ACTIVATION_H
#define TG_ACTIVATION_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GELU variants: exact (x * Phi(x), Phi the standard normal CDF) or
 * PyTorch's approximate='tanh'. */
typedef enum { TG_GELU_ERF = 0, TG_GELU_TANH = 1 } tg_gelu_approx;

/* y = 1 / (1 + exp(-x)), computed as 1/(1+e) for x >= 0 and e/(1+e) for
 * x < 0 with e = exp(-|x|), so nothing overflows.  VJP: dx = dy * y (1 - y). */
tg_tensor *tg_sigmoid(tg_ctx *ctx, tg_tensor *x);

/* y = tanh(x).               VJP: dx = dy * (1 - y^2). */
tg_tensor *tg_tanh(tg_ctx *ctx, tg_tensor *x);

/* y = max(x, 0).             VJP: dx = dy where x > 0, else 0 (gradient 0 at
 * exactly x = 0, as PyTorch). NaN x gives NaN. */
tg_tensor *tg_relu(tg_ctx *ctx, tg_tensor *x);

/* y = x for x > 0, slope * x otherwise.  VJP: dx = dy for x > 0, slope * dy
 * otherwise (so slope at exactly x = 0, as PyTorch). PyTorch's default
 * slope is 0.01. Extra error: slope not finite. Node params: p.f[0] = slope. */
tg_tensor *tg_leaky_relu(tg_ctx *ctx, tg_tensor *x, double slope);

/* y = x for x > 0, alpha * (exp(x) - 1) otherwise (via expm1).
 * VJP: dx = dy for x > 0, dy * alpha * exp(x) otherwise (alpha at x = 0, as
 * PyTorch). PyTorch's default alpha is 1. Extra error: alpha not finite.
 * Node params: p.f[0] = alpha. */
tg_tensor *tg_elu(tg_ctx *ctx, tg_tensor *x, double alpha);

/* y = log(1 + exp(x)) (beta 1), computed as max(x, 0) + log1p(exp(-|x|)):
 * finite for every finite x, and exact to rounding for large |x| (PyTorch
 * switches to y = x above x = 20; the two agree to ~2e-9 there).
 * VJP: dx = dy * sigmoid(x), evaluated from the output as -expm1(-y). */
tg_tensor *tg_softplus(tg_ctx *ctx, tg_tensor *x);

/* y = x * sigmoid(x) (SiLU, "swish").
 * VJP: dx = dy * s (1 + x (1 - s)), s = sigmoid(x). */
tg_tensor *tg_silu(tg_ctx *ctx, tg_tensor *x);

/* TG_GELU_ERF:  y = x * Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2 (erfc keeps
 *               relative accuracy for negative x);
 *               VJP: dx = dy * (Phi(x) + x * phi(x)), phi the normal density.
 * TG_GELU_TANH: y = x/2 * (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
 *               VJP: dx = dy * ((1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi)
 *                    (1 + 3 * 0.044715 x^2)), t = tanh(u).
 * Extra error: approx not one of the two values. Node params: p.i[0] = approx. */
tg_tensor *tg_gelu(tg_ctx *ctx, tg_tensor *x, tg_gelu_approx approx);

#ifdef __cplusplus
}
#endif
#endif
