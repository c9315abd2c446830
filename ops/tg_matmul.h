/* tg_matmul.h — recording functions of the matmul family (ops/matmul.c). */
#ifndef TG_MATMUL_H
#define TG_MATMUL_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* C = A·B, row-major, the usual mathematical convention:
 *     A (M,K)   · B (K,N)   -> C (M,N)
 *     A (B,M,K) · B (B,K,N) -> C (B,M,N)   batched, same batch size
 *     A (B,M,K) · B (K,N)   -> C (B,M,N)   B shared by every batch entry
 *     A (M,K)   · B (B,K,N) -> C (B,M,N)   A shared by every batch entry
 * f32 or f64, both the same. Gradients flow to both inputs (a shared
 * operand's gradient is summed over the batch); a and b may be the same
 * tensor. Returns an arena tensor, or NULL with the context's error set:
 * "matmul: inner dims differ (32x784 · 128x10)", a batch mismatch, an input
 * that is not 2-D or 3-D, mixed dtypes, a NULL input. */
tg_tensor *tg_matmul(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);

/* C = op(A)·op(B) with op(X) = Xᵀ (the last two dims swapped) when its flag
 * is set: e.g. tg_matmul_t(ctx, x, w, 0, 1) is x·wᵀ for w stored (N,K).
 * Shapes and errors as tg_matmul, for the transposed operands (an error
 * marks them: "inner dims differ (3x5 · 5x4ᵀ)"). No transposed copy is
 * made: the flags go to the GEMM. */
tg_tensor *tg_matmul_t(tg_ctx *ctx, tg_tensor *a, tg_tensor *b, int trans_a, int trans_b);

/* A dense layer in one op: y = x·w + b, or relu(x·w + b) when `relu` is
 * non-zero. x (M,K) or (B,M,K), w (K,N), b (N) -> y (M,N) or (B,M,N); f32 or
 * f64, all the same. Bit for bit the values and gradients of
 * tg_relu(ctx, tg_add(ctx, tg_matmul(ctx, x, w), b)) (or without the relu),
 * with one GEMM and one pass over y instead of three ops, and no
 * intermediate tensors. Errors name the shapes: "linear: inner dims differ
 * (32x784 · 128x10)", "linear: bias (5) does not fit W 3x4 (expected (4))". */
tg_tensor *tg_linear(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b, int relu);

#ifdef __cplusplus
}
#endif
#endif
