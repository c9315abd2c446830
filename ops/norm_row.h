/* norm_row.h — f32 row kernels of layer_norm on AVX-512 (private to
 * ops/norm.c, which includes it once).
 *
 * The statistics stay in double (sums over 32 lanes: element j into lane
 * j % 32, four independent chains of adds, the lanes then added in a fixed
 * order), as in the generic code; the elementwise parts run in f32 on
 * coefficients rounded once per row. The generic loops did every element in
 * double, and the conversions to and from double set their pace: layer_norm
 * 128x1024 forward 74 us, VJP 150 us, slower than PyTorch's 66 and 90 (see
 * benchmarks/RESULTS.md).
 *
 * x - mu is taken as (x - mu_hi) - mu_lo with mu = mu_hi + mu_lo (both
 * floats): a row with a large offset and a small spread (1e4 + {-1, 0, 1})
 * loses nothing to mu's rounding to float (x - mu_hi is exact there by
 * Sterbenz's lemma). Each output is then within a few ulp of the same
 * formula in double. */
#ifndef TG_NORM_ROW_H
#define TG_NORM_ROW_H

#include "vmath16.h"

#if defined(TG_VM16)
#define TG_NORM_ROW_F32 1

/* Mask of the first n lanes (none for n <= 0, all 16 from 16). */
static inline __mmask16 nr_mask(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* The four lane accumulators of 8 doubles, added in a fixed order. */
static inline double nr_total(__m512d a0, __m512d a1, __m512d a2, __m512d a3)
{
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a0, a1), _mm512_add_pd(a2, a3)));
}

/* Sums of x[0..D) (nr_sum) and of (x - mu)^2 (nr_ssd) in double, 32
 * elements a step. The upper 16's address stays inside the row when it is
 * empty (NR_HI): an empty-mask load past the end of the tensor may be a
 * fault-suppression assist (see loss.c's PAIR_BACKWARD). */
#define NR_HI(x, j, D) ((D) - (j) > 16 ? (x) + (j) + 16 : (x) + (j))
static inline double nr_sum(const float *x, int64_t D)
{
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t j = 0; j < D; j += 32) {
        __m512 u = tg_vm16_ld(nr_mask(D - j), x + j);
        __m512 w = tg_vm16_ld(nr_mask(D - j - 16), NR_HI(x, j, D));
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(u)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1))));
        a2 = _mm512_add_pd(a2, _mm512_cvtps_pd(_mm512_castps512_ps256(w)));
        a3 = _mm512_add_pd(a3, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1))));
    }
    return nr_total(a0, a1, a2, a3);
}

/* (x - mu) in double for 8 floats, squared into acc. Masked-off lanes of x
 * are 0 and would add mu^2: the caller masks them (m8). */
#define NR_SQ(acc, v8, m8)                                                              \
    do {                                                                                \
        __m512d d_ = _mm512_sub_pd(_mm512_cvtps_pd(v8), vmu);                           \
        acc = _mm512_mask3_fmadd_pd(d_, d_, acc, (__mmask8)(m8));                       \
    } while (0)

static inline double nr_ssd(const float *x, int64_t D, double mu)
{
    const __m512d vmu = _mm512_set1_pd(mu);
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t j = 0; j < D; j += 32) {
        __mmask16 mu_ = nr_mask(D - j), mw = nr_mask(D - j - 16);
        __m512 u = tg_vm16_ld(mu_, x + j), w = tg_vm16_ld(mw, NR_HI(x, j, D));
        NR_SQ(a0, _mm512_castps512_ps256(u), mu_);
        NR_SQ(a1, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1)), mu_ >> 8);
        NR_SQ(a2, _mm512_castps512_ps256(w), mw);
        NR_SQ(a3, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1)), mw >> 8);
    }
    return nr_total(a0, a1, a2, a3);
}

/* mu split into two floats whose sum is mu to ~48 bits. */
typedef struct nr_mu { float hi, lo; } nr_mu;
static inline nr_mu nr_split(double mu)
{
    nr_mu m;
    m.hi = (float)mu;
    m.lo = (float)(mu - (double)m.hi);
    return m;
}

/* (x - mu) * rs for 16 floats. */
static inline __m512 nr_xhat(__m512 x, __m512 hi, __m512 lo, __m512 rs)
{
    return _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(x, hi), lo), rs);
}

/* y = (x - mu) rs g + b over a row. */
static inline void nr_norm(const float *x, const float *g, const float *b, float *y, int64_t D, double mu,
                           double rs)
{
    nr_mu m = nr_split(mu);
    const __m512 hi = _mm512_set1_ps(m.hi), lo = _mm512_set1_ps(m.lo), r = _mm512_set1_ps((float)rs);
    for (int64_t j = 0; j < D; j += 16) {
        __mmask16 k = nr_mask(D - j);
        __m512 xh = nr_xhat(tg_vm16_ld(k, x + j), hi, lo, r);
        __m512 v = _mm512_add_ps(_mm512_mul_ps(xh, tg_vm16_ld(k, g + j)), tg_vm16_ld(k, b + j));
        tg_vm16_st(y + j, k, v);
    }
}

/* The VJP's row sums s1 = sum g dy, s2 = sum g dy xh, in double (the
 * products in f32), 32 elements a step: four chains of adds per sum. */
#define NR_ADD2(a, b, v)                                                                \
    do {                                                                                \
        a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));               \
        b = _mm512_add_pd(b, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))); \
    } while (0)
static inline void nr_vjp_sums(const float *x, const float *g, const float *dy, int64_t D, double mu, double rs,
                               double *s1, double *s2)
{
    nr_mu m = nr_split(mu);
    const __m512 hi = _mm512_set1_ps(m.hi), lo = _mm512_set1_ps(m.lo), r = _mm512_set1_ps((float)rs);
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int64_t j = 0; j < D; j += 32) {
        __mmask16 k = nr_mask(D - j), kw = nr_mask(D - j - 16);
        __m512 gu = _mm512_mul_ps(tg_vm16_ld(k, g + j), tg_vm16_ld(k, dy + j));
        __m512 gw = _mm512_mul_ps(tg_vm16_ld(kw, NR_HI(g, j, D)), tg_vm16_ld(kw, NR_HI(dy, j, D)));
        /* masked-off lanes: gdy is 0 but xhat of 0 is not */
        __m512 pu = _mm512_maskz_mul_ps(k, gu, nr_xhat(tg_vm16_ld(k, x + j), hi, lo, r));
        __m512 pw = _mm512_maskz_mul_ps(kw, gw, nr_xhat(tg_vm16_ld(kw, NR_HI(x, j, D)), hi, lo, r));
        NR_ADD2(a0, a1, gu);
        NR_ADD2(a2, a3, gw);
        NR_ADD2(b0, b1, pu);
        NR_ADD2(b2, b3, pw);
    }
    *s1 = nr_total(a0, a1, a2, a3);
    *s2 = nr_total(b0, b1, b2, b3);
}

/* dx (+)= rs (g dy - s1/D) - xh rs/D s2 over a row (ow: dx starts as +0):
 * the mean of g dy subtracted before scaling, so that g dy - s1/D is 0
 * exactly where it should be (D = 1, or g dy constant along the row). */
static inline void nr_vjp_dx(const float *x, const float *g, const float *dy, float *dx, int64_t D, double mu,
                             double rs, double s1, double s2, int ow)
{
    nr_mu m = nr_split(mu);
    const __m512 hi = _mm512_set1_ps(m.hi), lo = _mm512_set1_ps(m.lo), r = _mm512_set1_ps((float)rs);
    const __m512 c1 = _mm512_set1_ps((float)(s1 / (double)D)), c2 = _mm512_set1_ps((float)(rs / (double)D * s2));
    for (int64_t j = 0; j < D; j += 16) {
        __mmask16 k = nr_mask(D - j);
        __m512 gdy = _mm512_mul_ps(tg_vm16_ld(k, g + j), tg_vm16_ld(k, dy + j));
        __m512 xh = nr_xhat(tg_vm16_ld(k, x + j), hi, lo, r);
        __m512 v = _mm512_sub_ps(_mm512_mul_ps(r, _mm512_sub_ps(gdy, c1)), _mm512_mul_ps(xh, c2));
        __m512 d = ow ? _mm512_setzero_ps() : tg_vm16_ld(k, dx + j);
        tg_vm16_st(dx + j, k, _mm512_add_ps(d, v));
    }
}

#endif
#endif
