/* tg_norm.h — recording functions of the normalisation family (ops/norm.c,
 * ops/dropout.c): batch norm, layer norm, dropout.
 *
 * Each is one fused op (one forward kernel, one VJP). Common rules:
 *   - x is f32 or f64; gamma and beta, when given, have x's dtype; the output
 *     has x's dtype and shape. Statistics are accumulated in double for both
 *     dtypes, and the variance is computed in two passes (mean first), so
 *     inputs with a large mean relative to their spread lose nothing.
 *   - On bad input the function returns NULL and records on the context an
 *     error naming the op and the shapes or values ("layer_norm: gamma shape
 *     4 does not match axis 1 of x (3x5): expected 5"); a NULL x gives NULL.
 *   - Descriptor parameters (for tooling that builds nodes by hand): norms:
 *     n->p.f[0] = eps; dropout: n->p.f[0] = p, n->p.i[0] = seed (its bits).
 *     batch_norm's n->user is the tg_bn_stats pointer (or NULL).
 * The returned tensor lives in the context's arena until tg_ctx_reset.
 */
#ifndef TG_NORM_H
#define TG_NORM_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Batch statistics written by tg_batch_norm's forward when `stats` is not
 * NULL (the nn layer updates its running mean/var from them): C entries
 * each, of x's dtype, in memory the caller owns; a NULL field is skipped.
 * `var` is the biased (population) batch variance; PyTorch's running_var
 * uses the unbiased one, var * M / (M - 1) with M the values per channel. */
typedef struct tg_bn_stats { void *mean; void *var; } tg_bn_stats;

/* Training-mode batch normalisation, per channel (axis 1):
 *     y = gamma_c (x - mean_c) / sqrt(var_c + eps) + beta_c
 * x: (N, C) or (N, C, d1, ...); channel c is normalised over all of its
 * M = N * d1 * ... values (PyTorch's BatchNorm1d/2d/3d), with the biased
 * variance. gamma, beta: (C); either may be NULL (no scale: 1; no shift: 0).
 * All three are differentiable. The forward saves mean and 1/sqrt(var + eps)
 * per channel (arena); with xh = (x - mean) rstd the VJP is
 *     dbeta_c += sum dy,  dgamma_c += sum dy xh,
 *     dx += gamma_c rstd_c / M (M dy - sum dy - xh sum(dy xh)).
 * A constant channel gives y = beta (rstd = 1/sqrt(eps): finite).
 * Errors: x not float or with fewer than 2 dims; gamma/beta not (C) or of
 * another dtype; M < 2 ("expected more than 1 value per channel when
 * training", as PyTorch: TG_ERR_SHAPE); eps <= 0 or not finite (TG_ERR_ARG). */
tg_tensor *tg_batch_norm(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, double eps,
                         tg_bn_stats *stats);

/* Layer normalisation over the LAST axis of x (size D):
 *     y = gamma (x - mean) / sqrt(var + eps) + beta     (biased variance)
 * x: any shape with ndim >= 1; gamma, beta: (D); either may be NULL (no
 * affine: the wrapper passes a constant ones/zeros (D) tensor that needs no
 * gradient, so the op always takes three inputs). All are differentiable.
 * Saves mean and rstd per row; with gdy = gamma dy the VJP is
 *     dbeta += sum over rows of dy,  dgamma += sum over rows of dy xh,
 *     dx += rstd / D (D gdy - sum gdy - xh sum(gdy xh))   (per row).
 * A constant row (D == 1 included) gives y = beta.
 * Errors: x not float or 0-d; gamma/beta not (D) or of another dtype
 * (TG_ERR_SHAPE / TG_ERR_ARG); eps <= 0 or not finite (TG_ERR_ARG). */
tg_tensor *tg_layer_norm(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, double eps);

/* Inverted dropout: y = x m / (1 - p), m_i ~ Bernoulli(1 - p).
 * The mask is a pure function of (seed, flat index i, p): with
 * G = 0x9e3779b97f4a7c15 and mix the splitmix64 finaliser,
 *     h_i = mix(mix(seed + G) + (i + 1) G),  keep_i = (h_i >> 11) 2^-53 >= p
 * in 64-bit integer arithmetic: the same on every machine and for any thread
 * count. It is recomputed in the VJP (dx += dy m / (1 - p)), never stored.
 * y is computed as x * (keep ? 1/(1-p) : 0), as PyTorch does, so a NaN or
 * inf in a dropped position gives NaN. p == 0 gives y == x exactly.
 * The caller (the nn layer) passes a fresh seed each step; eval mode does
 * not call this. x: any float shape, ndim 0 included.
 * Errors: x not float; p outside [0, 1) or NaN (TG_ERR_ARG). */
tg_tensor *tg_dropout(tg_ctx *ctx, tg_tensor *x, double p, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
