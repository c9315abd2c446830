/* gemm_ref.c — the naive row-major GEMM: the reference the fast path is
 * tested against, and its fallback when libxsmm cannot provide a kernel.
 * Clarity over speed: one dot product per element of C, accumulated in
 * double. No libxsmm here, no scratch, no context. */
#include "gemm.h"

tg_status tg_gemm_check(tg_dtype dt, int trans_a, int trans_b,
                        int64_t M, int64_t N, int64_t K,
                        const void *A, int64_t lda, const void *B, int64_t ldb,
                        double beta, const void *C, int64_t ldc, const char **why)
{
    const char *w = NULL;
    if (dt != TG_F32 && dt != TG_F64)
        w = "dtype must be f32 or f64";
    else if (beta != 0.0 && beta != 1.0)
        w = "beta must be 0 or 1";
    else if (M < 0 || N < 0 || K < 0)
        w = "negative size";
    else if (lda < 1 || lda < (trans_a ? M : K))
        w = "lda too small";
    else if (ldb < 1 || ldb < (trans_b ? K : N))
        w = "ldb too small";
    else if (ldc < 1 || ldc < N)
        w = "ldc too small";
    else if ((M && N && !C) || (M && N && K && (!A || !B)))
        w = "NULL matrix";
    if (why)
        *why = w;
    return w ? TG_ERR_ARG : TG_OK;
}

#define REF_BODY(T)                                                                 \
    do {                                                                            \
        const T *a = A, *b = B;                                                     \
        T *c = C;                                                                   \
        int64_t sai = trans_a ? 1 : lda, sap = trans_a ? lda : 1;                    \
        int64_t sbp = trans_b ? 1 : ldb, sbj = trans_b ? ldb : 1;                    \
        for (int64_t i = 0; i < M; i++)                                             \
            for (int64_t j = 0; j < N; j++) {                                       \
                double s = 0;                                                       \
                for (int64_t p = 0; p < K; p++)                                     \
                    s += (double)a[i * sai + p * sap] * (double)b[p * sbp + j * sbj]; \
                T *cij = &c[i * ldc + j];                                           \
                *cij = beta == 0.0 ? (T)s : (T)((double)*cij + s);                  \
            }                                                                       \
    } while (0)

tg_status tg_gemm_ref(tg_dtype dt, int trans_a, int trans_b,
                      int64_t M, int64_t N, int64_t K,
                      const void *A, int64_t lda, const void *B, int64_t ldb,
                      double beta, void *C, int64_t ldc)
{
    tg_status s = tg_gemm_check(dt, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc, NULL);
    if (s != TG_OK)
        return s;
    if (dt == TG_F32)
        REF_BODY(float);
    else
        REF_BODY(double);
    return TG_OK;
}
