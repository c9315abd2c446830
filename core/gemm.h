/* gemm.h — row-major matrix products for the library's own kernels (private:
 * not installed; ops/ and nn/ internals include it, users do not).
 *
 * One convention, the usual mathematical one:
 *
 *     C = op(A) · op(B) + beta · C        op(X) = X, or Xᵀ when its flag is set
 *
 * row-major, C: M×N with leading dimension ldc (elements between rows),
 * op(A): M×K, op(B): K×N. A is stored M×K (lda >= K), or K×M when trans_a
 * (lda >= M); B is stored K×N (ldb >= N), or N×K when trans_b (ldb >= K).
 * beta is 0 (C is written, never read: NaN in C does not propagate) or 1
 * (accumulate); any other value is TG_ERR_ARG. A and B may alias each other
 * (both are read-only); C must not overlap A or B.
 *
 * The column-major libxsmm mapping, blocking and operand packing stay inside
 * gemm_xsmm.c. Results are deterministic: the same call gives bit-identical
 * results every time (the blocking does not depend on the thread count).
 */
#ifndef TG_GEMM_H
#define TG_GEMM_H

#include "tg_core.h"

/* The fast GEMM on libxsmm JIT kernels. Scratch (packed and transposed
 * operands) comes from ctx's arena and is released before returning; after
 * the first call of a shape it allocates nothing on the heap. dt is TG_F32 or
 * TG_F64. Errors (also recorded on ctx as "gemm: ..."): TG_ERR_ARG for a bad
 * dtype, beta, negative size, too-small leading dimension or NULL pointer;
 * TG_ERR_NOMEM when the arena cannot hold the scratch. M, N or K of 0 is
 * fine (K == 0 gives C = beta·C). */
tg_status tg_gemm(tg_ctx *ctx, tg_dtype dt, int trans_a, int trans_b,
                  int64_t M, int64_t N, int64_t K,
                  const void *A, int64_t lda, const void *B, int64_t ldb,
                  double beta, void *C, int64_t ldc);

/* Hints for tg_gemm_ex about how C is used next (an OR of these; unknown
 * bits are ignored).
 *
 * TG_GEMM_C_COLD: nothing reads C soon (a parameter's gradient, which only
 * the optimizer reads, after the rest of the backward). C's blocks are then
 * written with libxsmm's streaming-store kernels, around the caches: no
 * read of each line before its overwrite, and the caches stay with the
 * operands. It applies only where every C block is written once and
 * aligned: beta 0, K within one K block (1024 f32, 512 f64), M·N over
 * 1 MiB, C 64-byte aligned with ldc·(element size) a multiple of 64; then
 * to the full 64-column chunks (a narrower last chunk uses the plain
 * kernel), and not in the swapped orientation of a short A·Bᵀ (C comes
 * from a transposed add there). Elsewhere, or where libxsmm has no such
 * kernel, it is ignored. tg_gemm_ex fences its own streaming stores
 * before returning: C is readable by any thread afterwards. The bits of
 * C are the same with or without the hint (784-1024-1024-10 step, f32,
 * 1 thread: median 13.72-13.99 -> 13.15-13.82 ms with the weight
 * gradients hinted; benchmarks/RESULTS.md). */
enum { TG_GEMM_C_COLD = 1u << 0 };

/* tg_gemm with hints: the same contract, scratch, determinism and errors
 * as tg_gemm (hints 0 is tg_gemm). */
tg_status tg_gemm_ex(tg_ctx *ctx, unsigned hints, tg_dtype dt, int trans_a, int trans_b,
                     int64_t M, int64_t N, int64_t K,
                     const void *A, int64_t lda, const void *B, int64_t ldb,
                     double beta, void *C, int64_t ldc);

/* The naive reference: same contract, no context, no scratch. Accumulates in
 * double for both dtypes. Used by tests and as the fallback when libxsmm
 * cannot provide a kernel. */
tg_status tg_gemm_ref(tg_dtype dt, int trans_a, int trans_b,
                      int64_t M, int64_t N, int64_t K,
                      const void *A, int64_t lda, const void *B, int64_t ldb,
                      double beta, void *C, int64_t ldc);

/* Argument checks shared by both (NULL ctx allowed): TG_OK or TG_ERR_ARG,
 * with the reason written to why (a static string). */
tg_status tg_gemm_check(tg_dtype dt, int trans_a, int trans_b,
                        int64_t M, int64_t N, int64_t K,
                        const void *A, int64_t lda, const void *B, int64_t ldb,
                        double beta, const void *C, int64_t ldc, const char **why);

#endif
