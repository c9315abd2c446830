/* vmath16.h — the f32 kernels of vmath.h over 16 lanes, as explicit AVX-512
 * code (private to ops/; included by vmath.h, whose constants, scalar
 * kernels and bounds they share). Defines TG_VM16 where the build has
 * AVX-512; elsewhere it is empty and callers take the scalar functions. */
#ifndef TG_VMATH16_H
#define TG_VMATH16_H

#include "vmath.h"

/* ---- f32 over 16 lanes with AVX-512 -----------------------------------------
 * Explicit vector code where AVX-512 is there (TG_VM16 defined; other
 * targets use the scalar functions above): exp (tg_vm16_expf, range
 * reduction as the scalar exp, 2^k by vscalefps), and softplus, the exact
 * gelu and its derivative as piecewise polynomials: on the intervals
 * j = round(2a) of a = |x| (|a - j/2| <= 1/4; for gelu's exp-free part
 * j = round(8a)), coefficient k of every lane's interval comes from a
 * 32-entry table in one instruction (vpermt2ps, the table in two
 * registers), so a low degree is enough and there is no division and no
 * range reduction; exp's 2^k goes in with vscalefps (one rounding, also
 * into the subnormals). Each table column is the Chebyshev interpolant of
 * its interval rounded to float (softplus and the wide gelu generated in
 * long double, the exp-free gelu by scripts/gen_gelu_q.py). Bounds in
 * tests/test_vmath.c. */
/* With FMA too: the scalar kernels' TG_VM_FMAF is then one fused rounding,
 * as the vector kernels' (without it, it rounds through double). */
#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>
#define TG_VM16 1

/* Loads and stores of 16 f32 lanes under mask k, plain when k is full: a
 * masked load is a different instruction even with every lane on, and on
 * the Zen 5 a row streamed from memory that way goes at about half speed
 * (layer_norm 4096x4096, 1 thread: forward 12.9-16.6 -> 8.3-8.8 ms, VJP
 * 31-39 -> 23.6-25.7). The
 * same values either way; loops that mask only their last block use these
 * for every block. */
static inline __m512 tg_vm16_ld(__mmask16 k, const float *p)
{
    return k == (__mmask16)0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(k, p);
}
static inline void tg_vm16_st(float *p, __mmask16 k, __m512 v)
{
    if (k == (__mmask16)0xffff)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, k, v);
}

/* softplus(-a) = log1p(exp(-a)) around a = j/2, degree 5 (error < 1.4e-8
 * relative), j = 0..31. */
static const float tg_vm16_softplus_tab[6][32] = {
    { 6.93147182e-01, 4.74076986e-01, 3.13261688e-01, 2.01413274e-01,
     1.26928017e-01, 7.88897350e-02, 4.85873520e-02, 2.97504179e-02,
     1.81499273e-02, 1.10477451e-02, 6.71534846e-03, 4.07844316e-03,
     2.47568521e-03, 1.50231016e-03, 9.11466486e-04, 5.52931509e-04,
     3.35406367e-04, 2.03447678e-04, 1.23402191e-04, 7.48490274e-05,
     4.53989014e-05, 2.75360708e-05, 1.67015623e-05, 1.01300420e-05,
     6.14419332e-06, 3.72664636e-06, 2.26032694e-06, 1.37095822e-06,
     8.31528382e-07, 5.04347554e-07, 3.05902290e-07, 1.85539122e-07 },
    { -5.00000000e-01, -3.77540678e-01, -2.68941432e-01, -1.82425529e-01,
     -1.19202919e-01, -7.58581832e-02, -4.74258736e-02, -2.93122306e-02,
     -1.79862101e-02, -1.09869428e-02, -6.69285096e-03, -4.07013763e-03,
     -2.47262325e-03, -1.50118221e-03, -9.11051175e-04, -5.52778656e-04,
     -3.35350138e-04, -2.03426986e-04, -1.23394580e-04, -7.48462262e-05,
     -4.53978682e-05, -2.75356906e-05, -1.67014223e-05, -1.01299911e-05,
     -6.14417468e-06, -3.72663931e-06, -2.26032421e-06, -1.37095719e-06,
     -8.31528041e-07, -5.04347383e-07, -3.05902233e-07, -1.85539108e-07 },
    { 1.24999240e-01, 1.17501445e-01, 9.83061194e-02, 7.45735914e-02,
     5.24970591e-02, 3.50519679e-02, 2.25883462e-02, 1.42264906e-02,
     8.83132592e-03, 5.43309189e-03, 3.32401204e-03, 2.02677492e-03,
     1.23324769e-03, 7.49459956e-04, 4.55107889e-04, 2.76234874e-04,
     1.67617822e-04, 1.01692181e-04, 6.16893012e-05, 3.74200863e-05,
     2.26977645e-05, 1.37673824e-05, 8.35052015e-06, 5.06491324e-06,
     3.07204959e-06, 1.86330135e-06, 1.13015267e-06, 6.85473481e-07,
     4.15761122e-07, 2.52172043e-07, 1.52950136e-07, 9.27689641e-08 },
    { -4.72279466e-17, -9.59262997e-03, -1.51428347e-02, -1.57883652e-02,
     -1.33271292e-02, -9.91134346e-03, -6.81527983e-03, -4.46416857e-03,
     -2.83788890e-03, -1.77124096e-03, -1.09317619e-03, -6.70094392e-04,
     -4.09051048e-04, -2.49070814e-04, -1.51426735e-04, -9.19768136e-05,
     -5.58353277e-05, -3.38837199e-05, -2.05580964e-05, -1.24715380e-05,
     -7.56526106e-06, -4.58889053e-06, -2.78342350e-06, -1.68827614e-06,
     -1.02400759e-06, -6.21097968e-07, -3.76717168e-07, -2.28491331e-07,
     -1.38587296e-07, -8.40575538e-08, -5.09835232e-08, -3.09230863e-08 },
    { -5.17595420e-03, -3.99725372e-03, -1.47845375e-03, 6.37705205e-04,
     1.60752190e-03, 1.68765441e-03, 1.37146609e-03, 9.84045095e-04,
     6.59118465e-04, 4.24214202e-04, 2.66651041e-04, 1.65255973e-04,
     1.01548212e-04, 6.20803185e-05, 3.78341829e-05, 2.30142359e-05,
     1.39834046e-05, 8.49041226e-06, 5.15302600e-06, 3.12669431e-06,
     1.89688706e-06, 1.15068610e-06, 6.97987502e-07, 4.23373280e-07,
     2.56797136e-07, 1.55758386e-07, 9.44733500e-08, 5.73013956e-08,
     3.47552032e-08, 2.10801527e-08, 1.27857795e-08, 7.75497444e-09 },
    { 5.85381876e-16, 8.65748967e-04, 1.02396309e-03, 6.23329834e-04,
     1.75170833e-04, -7.70853731e-05, -1.55284928e-04, -1.46788429e-04,
     -1.11835609e-04, -7.70910774e-05, -5.03736192e-05, -3.19320643e-05,
     -1.98862544e-05, -1.22549036e-05, -7.50465142e-06, -4.57829810e-06,
     -2.78665470e-06, -1.69379462e-06, -1.02866522e-06, -6.24405516e-07,
     -3.78900836e-07, -2.29881124e-07, -1.39454286e-07, -8.45922585e-08,
     -5.13110940e-08, -3.11229620e-08, -1.88774774e-08, -1.14499326e-08,
     -6.94479541e-09, -4.21225366e-09, -2.55486921e-09, -1.54960944e-09 },
};

/* Q(a) exp(a^2/2), Q(a) = erfc(a / sqrt 2) / 2 the normal tail, around
 * a = j/2, degree 6 (error < 8.2e-9 relative), j = 0..29 (30, 31 repeat 29). */
static const float tg_vm16_gelu_tab[7][32] = {
    { 5.00000000e-01, 3.49618822e-01, 2.61578292e-01, 2.05780670e-01,
     1.68101996e-01, 1.41331330e-01, 1.21513948e-01, 1.06345154e-01,
     9.44106430e-02, 8.48033950e-02, 7.69193023e-02, 7.03426972e-02,
     6.47793114e-02, 6.00156747e-02, 5.58934808e-02, 5.22930957e-02,
     4.91225459e-02, 4.63100448e-02, 4.37987894e-02, 4.15432900e-02,
     3.95066924e-02, 3.76588590e-02, 3.59748900e-02, 3.44340578e-02,
     3.30189727e-02, 3.17149274e-02, 3.05094142e-02, 2.93917321e-02,
     2.83526611e-02, 2.73842253e-02, 2.73842253e-02, 2.73842253e-02 },
    { -3.98942381e-01, -2.24132895e-01, -1.37364000e-01, -9.02712792e-02,
     -6.27382770e-02, -4.56139520e-02, -3.44004370e-02, -2.67342422e-02,
     -2.12997161e-02, -1.73270162e-02, -1.43457558e-02, -1.20574636e-02,
     -1.02663944e-02, -8.84039048e-03, -7.68790348e-03, -6.74405182e-03,
     -5.96191082e-03, -5.30691398e-03, -4.75318078e-03, -4.28103982e-03,
     -3.87533940e-03, -3.52426386e-03, -3.21849459e-03, -2.95060663e-03,
     -2.71462742e-03, -2.50571081e-03, -2.31989194e-03, -2.15390348e-03,
     -2.00503296e-03, -1.87101518e-03, -1.87101518e-03, -1.87101518e-03 },
    { 2.50000030e-01, 1.18776210e-01, 6.21071532e-02, 3.51868756e-02,
     2.13127229e-02, 1.36482259e-02, 9.15632118e-03, 6.38765236e-03,
     4.60589025e-03, 3.41591029e-03, 2.59526377e-03, 2.01332313e-03,
     1.59047381e-03, 1.27656804e-03, 1.03907962e-03, 8.56353494e-04,
     7.13630288e-04, 6.00636122e-04, 5.10081882e-04, 4.36705974e-04,
     3.76650103e-04, 3.27044138e-04, 2.85724673e-04, 2.51041289e-04,
     2.21720693e-04, 1.96770416e-04, 1.75409485e-04, 1.57017843e-04,
     1.41099139e-04, 1.27252933e-04, 1.27252933e-04, 1.27252933e-04 },
    { -1.32967621e-01, -5.49113899e-02, -2.50845533e-02, -1.24966390e-02,
     -6.70415070e-03, -3.83107923e-03, -2.31046951e-03, -1.45914394e-03,
     -9.58713586e-04, -6.51804381e-04, -4.56477894e-04, -3.28061549e-04,
     -2.41183530e-04, -1.80899369e-04, -1.38115225e-04, -1.07133499e-04,
     -8.42893860e-05, -6.71689995e-05, -5.41478039e-05, -4.41109114e-05,
     -3.62794090e-05, -3.01001437e-05, -2.51743531e-05, -2.12105806e-05,
     -1.79930648e-05, -1.53601832e-05, -1.31895404e-05, -1.13874930e-05,
     -9.88171723e-06, -8.61585522e-06, -8.61585522e-06, -8.61585522e-06 },
    { 6.24955036e-02, 2.28285789e-02, 9.25508048e-03, 4.11025435e-03,
     1.97601109e-03, 1.01758947e-03, 5.56207960e-04, 3.20151972e-04,
     1.92753723e-04, 1.20694749e-04, 7.82169154e-05, 5.22451628e-05,
     3.58425677e-05, 2.51801594e-05, 1.80680199e-05, 1.32129026e-05,
     9.82869096e-06, 7.42484053e-06, 5.68786891e-06, 4.41304428e-06,
     3.46397792e-06, 2.74813738e-06, 2.20168499e-06, 1.77989261e-06,
     1.45097079e-06, 1.19202480e-06, 9.86361329e-07, 8.21669346e-07,
     6.88771308e-07, 5.80757387e-07, 5.80757387e-07, 5.80757387e-07 },
    { -2.70153470e-02, -8.81271437e-03, -3.19986604e-03, -1.27750193e-03,
     -5.54499275e-04, -2.59018678e-04, -1.29041975e-04, -6.80244266e-05,
     -3.76832140e-05, -2.18073055e-05, -1.31161660e-05, -8.16305783e-06,
     -5.23716881e-06, -3.45240505e-06, -2.33187325e-06, -1.60985326e-06,
     -1.13356020e-06, -8.12599012e-07, -5.92076617e-07, -4.37856073e-07,
     -3.28240077e-07, -2.49158717e-07, -1.91318193e-07, -1.48473902e-07,
     -1.16363275e-07, -9.20337797e-08, -7.34121883e-08, -5.90241314e-08,
     -4.78086086e-08, -3.89935693e-08, -3.89935693e-08, -3.89935693e-08 },
    { 1.05602015e-02, 3.11529730e-03, 1.02461886e-03, 3.71446076e-04,
     1.46848397e-04, 6.26970868e-05, 2.86561044e-05, 1.39119402e-05,
     7.12477458e-06, 3.82605594e-06, 2.14312195e-06, 1.24644407e-06,
     7.49726382e-07, 4.64766828e-07, 2.96047489e-07, 1.93258856e-07,
     1.28994074e-07, 8.78567690e-08, 6.09514075e-08, 4.30044658e-08,
     3.08148991e-08, 2.23969518e-08, 1.64937486e-08, 1.22948993e-08,
     9.26877153e-09, 7.06098646e-09, 5.43179279e-09, 4.21669943e-09,
     3.30140293e-09, 2.60550137e-09, 2.60550137e-09, 2.60550137e-09 },
};

/* Rows 0 and 1 of the same interpolants for S(a) = R(a) - a / sqrt(2 pi)
 * (gelu' = 1 - exp(-a^2/2) S(a) for x >= 0, exp(-a^2/2) S(a) for x < 0),
 * rows 2..6 being R's: (j/2 + t) / sqrt(2 pi) taken off the interpolant
 * before rounding to float, so near the zero of S at a = 0.7518 there is
 * no cancellation, only the roundings of the coefficients and the Horner
 * steps (~1e-8 absolute). */
static const float tg_vm16_gelu_df_tab[2][32] = {
    { 5.00000000e-01, 1.50147691e-01, -1.37363985e-01, -3.92632753e-01,
     -6.29782557e-01, -8.56024384e-01, -1.07531285e+00, -1.28995287e+00,
     -1.50135851e+00, -1.71043682e+00, -1.91779208e+00, -2.12383986e+00,
     -2.32887435e+00, -2.53310919e+00, -2.73670244e+00, -2.93977404e+00,
     -3.14241576e+00, -3.34469938e+00, -3.54668164e+00, -3.74840832e+00,
     -3.94991612e+00, -4.15123510e+00, -4.35239029e+00, -4.55340195e+00,
     -4.75428820e+00, -4.95506334e+00, -5.15574026e+00, -5.35632896e+00,
     -5.55683947e+00, -5.75727892e+00, -5.75727892e+00, -5.75727892e+00 },
    { -7.97884643e-01, -6.23075187e-01, -5.36306262e-01, -4.89213556e-01,
     -4.61680561e-01, -4.44556236e-01, -4.33342725e-01, -4.25676525e-01,
     -4.20241982e-01, -4.16269302e-01, -4.13288027e-01, -4.10999745e-01,
     -4.09208685e-01, -4.07782674e-01, -4.06630188e-01, -4.05686319e-01,
     -4.04904187e-01, -4.04249191e-01, -4.03695464e-01, -4.03223306e-01,
     -4.02817607e-01, -4.02466536e-01, -4.02160764e-01, -4.01892900e-01,
     -4.01656896e-01, -4.01447982e-01, -4.01262164e-01, -4.01096195e-01,
     -4.00947303e-01, -4.00813282e-01, -4.00813282e-01, -4.00813282e-01 },
};

/* Coefficient k of table `tab` for the intervals in j's low 5 bits. */
#define TG_VM16_COEF(tab, k, j) \
    _mm512_permutex2var_ps(_mm512_loadu_ps(tab[k]), j, _mm512_loadu_ps(tab[k] + 16))

/* t = a - j/2 (exact) with j = round(2a) in the low bits of *j, 0 <= a < 2^21. */
static inline __m512 tg_vm16_halfstep(__m512 a, __m512i *j)
{
    const __m512 rnd = _mm512_set1_ps(TG_VM_RNDF);
    __m512 t2 = _mm512_fmadd_ps(a, _mm512_set1_ps(2.0f), rnd);
    *j = _mm512_castps_si512(t2);
    return _mm512_fnmadd_ps(_mm512_sub_ps(t2, rnd), _mm512_set1_ps(0.5f), a);
}

/* exp(d) = 2^k p for |d| <= 104, 16 lanes: the scalar kernels' reduction
 * with t = d log2e + RNDF in one FMA (fused = 1, as tg_vm_exp_nonpos_coref)
 * or as a product then a sum (fused = 0, as smx_exp_blk and tg_vm_expf),
 * k = t - RNDF, r = d - k ln2 in two steps, and p = 1 + r + r^2 P4(r) (the
 * fitted polynomial). Returns p; *t and *k for the caller's scaling by 2^k
 * (vscalefps, or t's low bits into the exponent field). */
static inline __m512 tg_vm16_exp_core(__m512 d, int fused, __m512 *t_, __m512 *k_)
{
    const __m512 rnd = _mm512_set1_ps(TG_VM_RNDF), one = _mm512_set1_ps(1.0f);
    const __m512 l2e = _mm512_set1_ps((float)TG_VM_LOG2E);
    __m512 t = fused ? _mm512_fmadd_ps(d, l2e, rnd) : _mm512_add_ps(_mm512_mul_ps(d, l2e), rnd);
    __m512 k = _mm512_sub_ps(t, rnd);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(TG_VM_LN2F_HI), d);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(TG_VM_LN2F_LO), r);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(TG_VM_EM1_P4_C4), r, _mm512_set1_ps(TG_VM_EM1_P4_C3));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(TG_VM_EM1_P4_C2));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(TG_VM_EM1_P4_C1));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.5f));
    *t_ = t;
    *k_ = k;
    return _mm512_fmadd_ps(_mm512_fmadd_ps(q, r, one), r, one);
}

/* exp(y) for -104 <= y <= 0, as tg_vm_exp_nonpos_coref with the scaling by
 * vscalefps. */
static inline __m512 tg_vm16_exp_nonpos(__m512 y)
{
    __m512 t, k, p = tg_vm16_exp_core(y, 1, &t, &k);
    return _mm512_scalef_ps(p, k);
}

/* exp(x) for any x, as tg_vm_expf (clamped to [-104, 89], NaN passes) with
 * the rounding of x log2e to k in one FMA, the fitted polynomial of
 * tg_vm_exp_nonpos_coref (|r| <= ln2/2 here too) and 2^k by vscalefps (one
 * rounding, also into the subnormals and to inf): 13 operations where the
 * auto-vectorised tg_vm_expf takes ~22. Within 1 ulp (tests/test_vmath.c);
 * not always tg_vm_expf's bits, so the exp op (unary.c) uses it, not the
 * softmax rows. */
static inline __m512 tg_vm16_expf(__m512 x)
{
    __m512 xc = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 t, k, p = tg_vm16_exp_core(xc, 1, &t, &k);
    return _mm512_scalef_ps(p, k);
}

/* softplus(x) = max(x, 0) + g(|x|), g(a) = log1p(exp(-a)) from the table for
 * a <= 15.5 (beyond, g < ulp(x)/2 for x > 0); for x < -15.5, rare, g = e -
 * e^2/2 with e = exp(x) (relative error < e^2/3). NaN passes (max(0, NaN)). */
static inline __m512 tg_vm16_softplusf(__m512 x)
{
    __m512 a = _mm512_min_ps(_mm512_abs_ps(x), _mm512_set1_ps(15.5f));
    __m512i j;
    __m512 t = tg_vm16_halfstep(a, &j);
    __m512 g = TG_VM16_COEF(tg_vm16_softplus_tab, 5, j);
    for (int k = 4; k >= 0; k--)
        g = _mm512_fmadd_ps(g, t, TG_VM16_COEF(tg_vm16_softplus_tab, k, j));
    __m512 y = _mm512_add_ps(_mm512_max_ps(_mm512_setzero_ps(), x), g);
    __mmask16 far = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-15.5f), _CMP_LT_OQ);
    if (far) {
        __m512 e = tg_vm16_exp_nonpos(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)));
        y = _mm512_mask_mov_ps(y, far, _mm512_fmadd_ps(_mm512_mul_ps(e, _mm512_set1_ps(-0.5f)), e, e));
    }
    return y;
}

/* The normal tail Q(a) = exp(-a^2/2) R(a) of a = min(|x|, amax) (NaN
 * passes): returns R(a) from the table, its rows 0 and 1 from `low`
 * (tg_vm16_gelu_tab, or tg_vm16_gelu_df_tab for S(a)), and a, p and k
 * with exp(-a^2/2) = p 2^k. a^2 = a2 + l2 exactly, and exp(-(a2 + l2)/2) =
 * 2^k exp(r) with r2 = 2r = -a2 - l2 - 2k ln2 (the polynomial of
 * tg_vm16_exp_nonpos rescaled to r2: the same values). 2^k is left to the caller, to put in
 * last (vscalefps: one rounding into the subnormals). */
static inline __m512 tg_vm16_normal_tail(__m512 x, float amax, const float (*low)[32], __m512 *a_,
                                         __m512 *p_, __m512 *k_)
{
    const __m512 rnd = _mm512_set1_ps(TG_VM_RNDF), one = _mm512_set1_ps(1.0f);
    __m512 a = _mm512_min_ps(_mm512_set1_ps(amax), _mm512_abs_ps(x));   /* NaN passes */
    __m512i j;
    __m512 t = tg_vm16_halfstep(a, &j);
    __m512 R = TG_VM16_COEF(tg_vm16_gelu_tab, 6, j);
    for (int k = 5; k >= 2; k--)
        R = _mm512_fmadd_ps(R, t, TG_VM16_COEF(tg_vm16_gelu_tab, k, j));
    R = _mm512_fmadd_ps(R, t, TG_VM16_COEF(low, 1, j));
    R = _mm512_fmadd_ps(R, t, TG_VM16_COEF(low, 0, j));
    __m512 a2 = _mm512_mul_ps(a, a), l2 = _mm512_fmsub_ps(a, a, a2);
    __m512 te = _mm512_fmadd_ps(a2, _mm512_set1_ps((float)(-0.5 * TG_VM_LOG2E)), rnd);
    __m512 k = _mm512_sub_ps(te, rnd);
    __m512 r2 = _mm512_fnmsub_ps(k, _mm512_set1_ps(2.0f * TG_VM_LN2F_HI), a2);
    r2 = _mm512_fnmadd_ps(k, _mm512_set1_ps(2.0f * TG_VM_LN2F_LO), r2);
    r2 = _mm512_sub_ps(r2, l2);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(TG_VM_EM1_P4_C4 / 64), r2, _mm512_set1_ps(TG_VM_EM1_P4_C3 / 32));
    q = _mm512_fmadd_ps(q, r2, _mm512_set1_ps(TG_VM_EM1_P4_C2 / 16));
    q = _mm512_fmadd_ps(q, r2, _mm512_set1_ps(TG_VM_EM1_P4_C1 / 8));
    q = _mm512_fmadd_ps(q, r2, _mm512_set1_ps(0.5f / 4));
    *p_ = _mm512_fmadd_ps(_mm512_fmadd_ps(q, r2, _mm512_set1_ps(0.5f)), r2, one);
    *a_ = a;
    *k_ = k;
    return R;
}

/* gelu(x) = x Phi(x) = pos - a Q(a), a = |x|, pos = max(x, 0), for any x: x Q(a) for
 * x < 0 and x - x Q(x) for x >= 0, one branch for both signs. a Q(a) is
 * scaled by 2^k last, one rounding into the subnormals. a is clamped to
 * 14.5, where a Q(a) rounds to 0; the sign of x is or-ed back (gelu(-0) =
 * gelu(-1e4) = -0). NaN passes. */
static inline __m512 tg_vm16_gelu_erf_widef(__m512 x)
{
    __m512 a, p, k;
    __m512 R = tg_vm16_normal_tail(x, 14.5f, tg_vm16_gelu_tab, &a, &p, &k);
    __m512 aq = _mm512_scalef_ps(_mm512_mul_ps(_mm512_mul_ps(a, R), p), k);
    __mmask16 nonneg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    __m512 y = _mm512_sub_ps(_mm512_maskz_mov_ps(nonneg, x), aq);
    __m512i sign = _mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
    return _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(y), sign));
}

/* The normal tail Q(a) straight from a table (no exp) where a gelu's a =
 * |x| is below 3.9375, degree 6: the interpolants are within ~4e-11 of Q
 * relative, the table with its coefficients rounded to float within 7.2e-8
 * (~1.2 ulp, mostly the constant term's rounding). Generated by
 * scripts/gen_gelu_q.py. */
/* Q(a) around a = j/8, entry j = 0..31 (a < 3.9375) */
static const float tg_vm16_q8_tab[7][32] = {
    { 5.00000000e-01, 4.50261772e-01, 4.01293665e-01, 3.53830248e-01,
     3.08537543e-01, 2.65985519e-01, 2.26627350e-01, 1.90786958e-01,
     1.58655256e-01, 1.30294517e-01, 1.05649777e-01, 8.45657215e-02,
     6.68072030e-02, 5.20812795e-02, 4.00591567e-02, 3.03963609e-02,
     2.27501318e-02, 1.67933069e-02, 1.22244731e-02, 8.77447519e-03,
     6.20966544e-03, 4.33244836e-03, 2.97976332e-03, 2.02013738e-03,
     1.34989806e-03, 8.89025279e-04, 5.77025057e-04, 3.69078451e-04,
     2.32629085e-04, 1.44480728e-04, 8.84172841e-05, 5.33123493e-05 },
    { -3.98942292e-01, -3.95837694e-01, -3.86668116e-01, -3.71855080e-01,
     -3.52065325e-01, -3.28160971e-01, -3.01137418e-01, -2.72055000e-01,
     -2.41970718e-01, -2.11876646e-01, -1.82649091e-01, -1.55012265e-01,
     -1.29517600e-01, -1.06538266e-01, -8.62773210e-02, -6.87862784e-02,
     -5.39909676e-02, -4.17209864e-02, -3.17396522e-02, -2.37719007e-02,
     -1.75283011e-02, -1.27241816e-02, -9.09356214e-03, -6.39812043e-03,
     -4.43184841e-03, -3.02225794e-03, -2.02904805e-03, -1.34111883e-03,
     -8.72682722e-04, -5.59061533e-04, -3.52595671e-04, -2.18931644e-04 },
    { -0.00000000e+00, 2.47398559e-02, 4.83335145e-02, 6.97228312e-02,
     8.80163312e-02, 1.02550305e-01, 1.12926535e-01, 1.19024061e-01,
     1.20985359e-01, 1.19180612e-01, 1.14155680e-01, 1.06570929e-01,
     9.71381962e-02, 8.65623429e-02, 7.54926503e-02, 6.44871369e-02,
     5.39909676e-02, 4.43285480e-02, 3.57071087e-02, 2.82291323e-02,
     2.19103750e-02, 1.67004876e-02, 1.25036482e-02, 9.19729751e-03,
     6.64777262e-03, 4.72227810e-03, 3.29720299e-03, 2.26313807e-03,
     1.52719475e-03, 1.01329898e-03, 6.61116908e-04, 4.24180034e-04 },
    { 6.64903671e-02, 6.49421066e-02, 6.04168810e-02, 5.32604866e-02,
     4.40081619e-02, 3.33288498e-02, 2.19579432e-02, 1.06271561e-02,
     1.02485993e-08, -9.37994476e-03, -1.71233416e-02, -2.30096243e-02,
     -2.69828252e-02, -2.91315522e-02, -2.96578258e-02, -2.88400780e-02,
     -2.69954856e-02, -2.44458932e-02, -2.14903932e-02, -1.83860827e-02,
     -1.53372660e-02, -1.24922330e-02, -9.94608644e-03, -7.74772558e-03,
     -5.90913231e-03, -4.41533048e-03, -3.23379552e-03, -2.32251035e-03,
     -1.63627975e-03, -1.13122573e-03, -7.67629768e-04, -5.11410239e-04 },
    { 0.00000000e+00, -6.15274860e-03, -1.18316384e-02, -1.66136380e-02,
     -2.01704055e-02, -2.22993456e-02, -2.29381993e-02, -2.21620295e-02,
     -2.01642253e-02, -1.72253232e-02, -1.36748999e-02, -9.85226221e-03,
     -6.07113959e-03, -2.59236433e-03, 3.93188500e-04, 2.77092936e-03,
     4.49924590e-03, 5.59878675e-03, 6.13715872e-03, 6.21187920e-03,
     5.93406055e-03, 5.41461213e-03, 4.75399196e-03, 4.03579418e-03,
     3.32388678e-03, 2.66243075e-03, 2.07792525e-03, 1.58242881e-03,
     1.17721269e-03, 8.56290513e-04, 6.09467155e-04, 4.24732338e-04 },
    { -9.96544398e-03, -9.57982522e-03, -8.46453197e-03, -6.73853094e-03,
     -4.58195340e-03, -2.21206294e-03, 1.44695427e-04, 2.28018686e-03,
     4.02759714e-03, 5.27695986e-03, 5.98165439e-03, 6.15593651e-03,
     5.86495409e-03, 5.20970114e-03, 4.30978695e-03, 3.28679383e-03,
     2.25042785e-03, 1.28884509e-03, 4.63638309e-04, -1.90830746e-04,
     -6.64645107e-04, -9.67284199e-04, -1.12154870e-03, -1.15752756e-03,
     -1.10738480e-03, -1.00141275e-03, -8.65485927e-04, -7.19815725e-04,
     -5.78752893e-04, -4.51320084e-04, -3.42162530e-04, -2.52653175e-04 },
    { -0.00000000e+00, 1.01923966e-03, 1.92889466e-03, 2.63445103e-03,
     3.06901522e-03, 3.20132053e-03, 3.03804106e-03, 2.62034149e-03,
     2.01560231e-03, 1.30605453e-03, 5.76429651e-04, -9.73086862e-05,
     -6.56510587e-04, -1.06470496e-03, -1.30858051e-03, -1.39556755e-03,
     -1.34898699e-03, -1.20196247e-03, -9.91257373e-04, -7.51974701e-04,
     -5.13709383e-04, -2.98373139e-04, -1.19593475e-04, 1.66377577e-05,
     1.10498731e-04, 1.66496378e-04, 1.91620842e-04, 1.93756481e-04,
     1.80490664e-04, 1.58355295e-04, 1.32459987e-04, 1.06431078e-04 },
};

#define TG_VM16_GELU_NEAR 3.9375f    /* the table's reach */

/* gelu(x) = pos - a Q(a) with Q(a) from tg_vm16_q8_tab (no exp, and no sign
 * fix-up: a Q(a) > 0 there, and -0 gives -0 - 0 = -0), for lanes with |x| <
 * TG_VM16_GELU_NEAR (NaN passes); about half the operations of
 * tg_vm16_gelu_erf_widef. */
static inline __m512 tg_vm16_gelu_erf_nearf(__m512 x)
{
    const __m512 rnd = _mm512_set1_ps(TG_VM_RNDF);
    __m512 a = _mm512_abs_ps(x);
    __m512 t8 = _mm512_fmadd_ps(a, _mm512_set1_ps(8.0f), rnd);
    __m512i j = _mm512_castps_si512(t8);
    __m512 t = _mm512_fnmadd_ps(_mm512_sub_ps(t8, rnd), _mm512_set1_ps(0.125f), a);   /* exact */
    __m512 q = TG_VM16_COEF(tg_vm16_q8_tab, 6, j);
    for (int k = 5; k >= 0; k--)
        q = _mm512_fmadd_ps(q, t, TG_VM16_COEF(tg_vm16_q8_tab, k, j));
    __m512 pos = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), x);
    return _mm512_fnmadd_ps(a, q, pos);
}

/* The lanes with |x| >= TG_VM16_GELU_NEAR (false for NaN). */
static inline __mmask16 tg_vm16_gelu_far(__m512 x)
{
    return _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(TG_VM16_GELU_NEAR), _CMP_GE_OQ);
}

/* gelu(x), every lane: tg_vm16_gelu_erf_nearf, and the far lanes (if any)
 * from tg_vm16_gelu_erf_widef, so a lane's result never depends on its
 * neighbours. The cost depends on the data: 4096^2 elements, 1 thread,
 * the kernel alone: N(0, 1) or uniform [-3, 3] 5.7-5.9 ms (every vector
 * near), N(0, 1.5^2) 7.6, N(0, 2^2) 14.7 and uniform [-6, 6] 15.3 (most
 * vectors have a far lane and pay for both paths, plus the mispredicted
 * branch), against 9.9 ms for tg_vm16_gelu_erf_widef on every vector.
 * Gathering the far lanes to run the wide path 16 at a time was measured
 * and is no better (13.1 ms at N(0, 2^2), 20.6 at uniform [-6, 6]). */
static inline __m512 tg_vm16_gelu_erff(__m512 x)
{
    __m512 y = tg_vm16_gelu_erf_nearf(x);
    __mmask16 far = tg_vm16_gelu_far(x);
    return far ? _mm512_mask_mov_ps(y, far, tg_vm16_gelu_erf_widef(x)) : y;
}

/* gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi): with
 * a = |x| and s = Q(a) - a phi(a) = exp(-a^2/2) S(a), S(a) = R(a) - a /
 * sqrt(2 pi) (its own rows 0 and 1), s for x < 0 and 1 - s for x >= 0: the
 * exp of the forward serves both terms. s is scaled by 2^k last (one
 * rounding into the subnormals); a is clamped to 14.6, where s rounds to -0
 * (gelu'(-inf) = -0, gelu'(inf) = 1). Near the zero of gelu' at x = -0.7518
 * the error is absolute rather than relative (bound in tests/test_vmath.c).
 * NaN passes. */
static inline __m512 tg_vm16_gelu_erf_df(__m512 x)
{
    __m512 a, p, k;
    __m512 S = tg_vm16_normal_tail(x, 14.6f, tg_vm16_gelu_df_tab, &a, &p, &k);
    __m512 s = _mm512_scalef_ps(_mm512_mul_ps(S, p), k);
    __mmask16 nonneg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mask_sub_ps(s, nonneg, _mm512_set1_ps(1.0f), s);
}

/* sigmoid and tanh over 16 lanes: tg_vm_sigmoidf's and tg_vm_tanhf's
 * operations one for one, so the same bits in every lane (NaN in, NaN out,
 * its payload aside; tests/test_vmath.c compares them over a sweep of all
 * floats), where
 * the compiler's vectorisation of the scalar functions ran 15-20 % slower
 * (4096x4096 sigmoid, 1 thread: 5.9 -> 5.0-5.1 ms in a standalone loop).
 * exp_nonpos's 2^(k+64) 2^-64 is one vscalefps here: the same single
 * rounding. */
static inline __m512 tg_vm16_sigmoidf(__m512 x)
{
    /* a = min(|x|, 104): vminps returns its second operand for a NaN */
    __m512 a = _mm512_min_ps(_mm512_set1_ps(104.0f), _mm512_abs_ps(x));
    __m512 na = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a),   /* -a, as the scalar */
                                                     _mm512_set1_epi32((int)0x80000000u)));
    __m512 e = tg_vm16_exp_nonpos(na);
    __m512 r = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    __mmask16 nonneg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mask_blend_ps(nonneg, _mm512_mul_ps(e, r), r);
}

/* tg_vm_expf over 16 lanes, its operations one for one (the clamps as
 * vmaxps/vminps with the bound first, so a NaN passes; the product and sum
 * for t unfused, as the scalar's): the same bits in every lane, unlike
 * tg_vm16_expf. For the exps the softmax rows take one element at a time
 * (rows under 64, the part of a row past its last 64-block): 10 scalar
 * calls made a third of a 10-logit row's cross_entropy. */
static inline __m512 tg_vm16_expf_as_scalar(__m512 x)
{
    const __m512 rnd = _mm512_set1_ps(TG_VM_RNDF);
    __m512 xc = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 t = _mm512_add_ps(_mm512_mul_ps(xc, _mm512_set1_ps((float)TG_VM_LOG2E)), rnd);
    __m512 kf = _mm512_sub_ps(t, rnd);
    __m512i k = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(rnd));
    __m512 r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(TG_VM_LN2F_HI), xc);
    r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(TG_VM_LN2F_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 5040), r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i k1 = _mm512_srai_epi32(k, 1), k2 = _mm512_sub_epi32(k, k1), b = _mm512_set1_epi32(127);
    __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k1, b), 23));
    __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k2, b), 23));
    return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

static inline __m512 tg_vm16_tanhf(__m512 x)
{
    const __m512 rnd = _mm512_set1_ps(TG_VM_RNDF), one = _mm512_set1_ps(1.0f);
    __m512 a = _mm512_min_ps(_mm512_set1_ps(10.0f), _mm512_abs_ps(x)), x2 = _mm512_add_ps(a, a);
    /* tg_vm_expm1_partsf(x2): s = 2^k, r + rlo = x2 - k ln2, q = rlo + r^2 P5(r) */
    __m512 t = _mm512_fmadd_ps(x2, _mm512_set1_ps((float)TG_VM_LOG2E), rnd), kf = _mm512_sub_ps(t, rnd);
    __m512 r1 = _mm512_fnmadd_ps(kf, _mm512_set1_ps(TG_VM_LN2F_HI), x2);
    __m512 klo = _mm512_mul_ps(kf, _mm512_set1_ps(TG_VM_LN2F_LO)), r = _mm512_sub_ps(r1, klo);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.9891981314e-4f), r, _mm512_set1_ps(1.39345419283e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.33331002423e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.16664568097e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.66666666825e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.500000001429f));
    __m512 q = _mm512_fmadd_ps(_mm512_mul_ps(r, r), p, _mm512_sub_ps(_mm512_sub_ps(r1, r), klo));
    __m512 s = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(_mm512_castps_si512(t), 23),
                                                    _mm512_set1_epi32(0x3f800000)));
    __m512 u = _mm512_fmadd_ps(s, q, _mm512_fmadd_ps(s, r, _mm512_sub_ps(s, one)));
    __m512 v = _mm512_div_ps(u, _mm512_add_ps(u, _mm512_set1_ps(2.0f)));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v),
                                               _mm512_and_si512(_mm512_castps_si512(x),
                                                                _mm512_set1_epi32((int)0x80000000u))));
}
#endif

#endif
