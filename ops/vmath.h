/* vmath.h — exp, expm1, log, log1p, tanh and sigmoid for f32 and f64 as
 * static inline, branch-free functions (private to ops/). They contain no
 * calls and no table lookups, so a loop that calls them auto-vectorises
 * (gcc -O3 -march=native: 16 f32 or 8 f64 lanes with AVX-512), where the
 * libm functions stay one scalar call per element. With AVX-512 (TG_VM16)
 * there are also explicit 16-lane f32 kernels for exp, and for softplus,
 * gelu (erf) and gelu's derivative as piecewise polynomials whose
 * coefficients come from small tables held in registers (vpermt2ps), in
 * vmath16.h; gelu without any exp where |x| < 3.9375. pow for f32
 * (tg_vm_powf, tg_vm_powcf_n, tg_vm_powf_n) is exp(c log|x|) in double, to
 * ~2^-43 (tg_vm_pow_core), with IEEE's special cases by bit operations
 * (checked in tests/test_binary.c).
 *
 * Method (the textbook one): exp and expm1 reduce x = k ln2 + r, |r| <= ln2/2,
 * with ln2 split in two (Cody-Waite; the high part has few bits, so k ln2_hi
 * is exact), evaluate a Taylor polynomial of r, and scale by 2^k written into
 * the exponent bits (in two halves, so subnormal results and 2^128 (2^1024)
 * need no special case). log splits x = 2^e m, sqrt(1/2) <= m < sqrt 2, and
 * with f = m - 1, s = f / (2 + f) uses log(1 + f) = f - s (f - R(s^2)),
 * R the atanh series. Every conditional is a select between two values
 * computed before it (an arithmetic operation inside a ?: arm may trap, so
 * gcc keeps it as a branch, which stops vectorisation): blends only; the special values come out as libm's (exp(-inf) = 0,
 * exp(+inf) = inf, exp(NaN) = NaN, overflow to inf, underflow through the
 * subnormals to 0, log(0) = -inf, log(x < 0) = NaN, tanh(+-0) = +-0).
 *
 * The f32 activations (tanh, sigmoid, softplus, erfc, and exp and expm1 of
 * x <= 0) use kernels for a restricted range instead: polynomials of lower
 * degree fitted to the reduced range, 2^k scaled in at once, and for tanh
 * one expm1 and one division, for softplus a log1p polynomial on [0, 1]
 * without division (see their comments).
 *
 * Accuracy, asserted by tests/test_vmath.c against double (f32) or long
 * double (f64) libm over dense sweeps (max measured in brackets):
 *   f32: exp (0.75), expm1 (0.98), log (0.88), log1p (0.93) <= 1 ulp;
 *        exp_nonpos (0.91), expm1_nonpos (0.79) <= 1 ulp;
 *        tanh (2.40), sigmoid (2.62) <= 3 ulp; softplus (2.03) <= 2.5 ulp;
 *        erfc (4.42) <= 5 ulp
 *   f32, 16 lanes: exp (0.91) <= 1 ulp; softplus (1.71) <= 2 ulp; gelu (3.61) <= 4 ulp against
 *        x erfc(-x/sqrt 2)/2; gelu' (2.41) <= 3 ulp or 2^-26 absolute
 *   f64: exp (0.65), log (0.86), log1p (0.83) <= 1 ulp; expm1 (1.11) <= 1.5;
 *        tanh (2.47), sigmoid (2.66) <= 3 ulp
 * Not correctly rounded: results may differ from libm's in the last bit.
 *
 * VM(fn, v) calls tg_vm_<fn>f for a float v and tg_vm_<fn> for a double. */
#ifndef TG_VMATH_H
#define TG_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define VM(fn, v) _Generic((v), float: tg_vm_##fn##f, default: tg_vm_##fn)(v)

/* Every kernel here is inlined where it is called, always: a loop that
 * calls one vectorises only if it is, and gcc's inliner gives up on them
 * once a function holds several copies of the loop (a VJP's add, write and
 * streamed-write loops): silu's VJP then called tg_vm_exp_nonpos_coref
 * once per element, 15x slower. */
#if defined(__GNUC__)
#define TG_VM_INLINE static inline __attribute__((always_inline))
#else
#define TG_VM_INLINE static inline
#endif

TG_VM_INLINE uint32_t tg_vm_f2u(float f)     { uint32_t u; memcpy(&u, &f, 4); return u; }
TG_VM_INLINE float    tg_vm_u2f(uint32_t u)  { float f; memcpy(&f, &u, 4); return f; }
TG_VM_INLINE uint64_t tg_vm_d2u(double d)    { uint64_t u; memcpy(&u, &d, 8); return u; }
TG_VM_INLINE double   tg_vm_u2d(uint64_t u)  { double d; memcpy(&d, &u, 8); return d; }

/* The constant-count loops of the series below, unrolled whole: a loop
 * left rolled inside an element loop stops its vectorisation (measured:
 * pow 128x1024 forward 0.43 -> 2.3 ms with tg_vm_em1_q rolled). */
#if defined(__GNUC__) && !defined(__clang__)
#define TG_VM_UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define TG_VM_UNROLL _Pragma("unroll")
#else
#define TG_VM_UNROLL
#endif

/* a * b + c: one fused operation where the target has FMA (the Horner steps
 * of the polynomials; ISO C mode does not contract a * b + c by itself). */
#ifdef __FMA__
#define TG_VM_FMAF(a, b, c) fmaf(a, b, c)
#define TG_VM_FMA(a, b, c)  fma(a, b, c)
#else
/* Without FMA hardware: f32 through double, where a float product is exact
 * and the sum rounds once more (the bounds in tests/test_vmath.c hold for
 * portable builds too: erfcf's exp(-x^2) needs x^2's rounding error, which
 * a plain float a * b + c loses); f64 plainly. Both vectorise. */
#define TG_VM_FMAF(a, b, c) ((float)((double)(a) * (double)(b) + (double)(c)))
#define TG_VM_FMA(a, b, c)  ((a) * (b) + (c))
#endif

/* ln 2 = LN2_HI + LN2_LO, LN2_HI with 9 (f32) or 32 (f64) significant bits */
#define TG_VM_LN2F_HI   0.693359375f
#define TG_VM_LN2F_LO  -2.12194440e-4f
#define TG_VM_LN2_HI    6.93147180369123816490e-01
#define TG_VM_LN2_LO    1.90821492927058770002e-10
#define TG_VM_LOG2E     1.44269504088896338700
/* Adding then subtracting 1.5 * 2^23 (2^52) rounds to an integer. */
#define TG_VM_RNDF      12582912.0f
#define TG_VM_RND       6755399441055744.0

/* ---- f32 ------------------------------------------------------------------ */

/* exp(r) - 1 - r for |r| <= ~0.35: Taylor to degree 8 (truncation < 2e-10 r). */
TG_VM_INLINE float tg_vm_em1_polyf(float r)
{
    float q = 1.0f / 40320;
    q = TG_VM_FMAF(q, r, 1.0f / 5040);
    q = TG_VM_FMAF(q, r, 1.0f / 720);
    q = TG_VM_FMAF(q, r, 1.0f / 120);
    q = TG_VM_FMAF(q, r, 1.0f / 24);
    q = TG_VM_FMAF(q, r, 1.0f / 6);
    q = TG_VM_FMAF(q, r, 0.5f);
    return (r * r) * q;
}

/* 2^k for -252 <= k <= 254 as two normal factors s1 * s2. */
TG_VM_INLINE void tg_vm_scalef(int32_t k, float *s1, float *s2)
{
    int32_t k1 = k >> 1, k2 = k - k1;
    *s1 = tg_vm_u2f((uint32_t)(k1 + 127) << 23);
    *s2 = tg_vm_u2f((uint32_t)(k2 + 127) << 23);
}

/* The clamps are written so that NaN passes through them, and NaN then
 * propagates through the arithmetic (k comes from the bits of t, never from
 * converting a NaN to an integer): no final blend for it. */
TG_VM_INLINE float tg_vm_expf(float x)
{
    float xc = x < -104.0f ? -104.0f : x;    /* exp(-104) = 0 */
    xc = xc > 89.0f ? 89.0f : xc;            /* exp(89) = inf */
    float t = xc * (float)TG_VM_LOG2E + TG_VM_RNDF, kf = t - TG_VM_RNDF;
    int32_t k = (int32_t)(tg_vm_f2u(t) - tg_vm_f2u(TG_VM_RNDF));
    float r = TG_VM_FMAF(-kf, TG_VM_LN2F_HI, xc);   /* exact */
    r = TG_VM_FMAF(-kf, TG_VM_LN2F_LO, r);
    float p = 1.0f / 5040;                   /* exp(r): Taylor to degree 7 */
    p = TG_VM_FMAF(p, r, 1.0f / 720);
    p = TG_VM_FMAF(p, r, 1.0f / 120);
    p = TG_VM_FMAF(p, r, 1.0f / 24);
    p = TG_VM_FMAF(p, r, 1.0f / 6);
    p = TG_VM_FMAF(p, r, 0.5f);
    p = TG_VM_FMAF(p, r, 1.0f);
    p = TG_VM_FMAF(p, r, 1.0f);
    float s1, s2;
    tg_vm_scalef(k, &s1, &s2);
    return (p * s1) * s2;
}

/* expm1(x) = 2^k (expm1(r) + 1) - 1 = 2 ((2^(k-1) - 1/2) + 2^(k-1) r + 2^(k-1) q),
 * q = expm1(r) - r, the first sum kept exact (Fast2Sum); below -20 expm1 is
 * -1 in f32, so k >= -29 and 2^(k-1) is normal. */
TG_VM_INLINE float tg_vm_expm1f(float x)
{
    float xc = x < -20.0f ? -20.0f : x;      /* NaN passes, as in expf */
    xc = xc > 89.0f ? 89.0f : xc;
    float t = xc * (float)TG_VM_LOG2E + TG_VM_RNDF, kf = t - TG_VM_RNDF;
    int32_t k = (int32_t)(tg_vm_f2u(t) - tg_vm_f2u(TG_VM_RNDF));
    float r1 = xc - kf * TG_VM_LN2F_HI, klo = kf * TG_VM_LN2F_LO;   /* r1 exact */
    float r = r1 - klo, rlo = (r1 - r) - klo;   /* x - k ln2 = r + rlo */
    float h = tg_vm_u2f((uint32_t)(k + 126) << 23);   /* 2^(k-1) */
    /* h - 1/2 is exact up to h = 2^23; beyond, the 1/2 joins the small terms */
    float hm = h - 0.5f, a = kf <= 24.0f ? hm : h, c = kf <= 24.0f ? 0.0f : -0.5f;
    float b = h * r, ab = a + b, aberr = (a - ab) + b;   /* |a| >= |b| */
    float y = 2.0f * (ab + ((h * (tg_vm_em1_polyf(r) + rlo) + aberr) + c));
    return fabsf(x) < 0x1p-25f ? x : y;     /* keeps -0 and subnormals */
}

/* log(1 + f) - f for sqrt(1/2) - 1 <= f < sqrt(2) - 1. */
TG_VM_INLINE float tg_vm_log1p_coref(float f)
{
    float s = f / (2.0f + f), z = s * s;
    float R = 2.0f / 11;
    R = TG_VM_FMAF(R, z, 2.0f / 9);
    R = TG_VM_FMAF(R, z, 2.0f / 7);
    R = TG_VM_FMAF(R, z, 2.0f / 5);
    R = TG_VM_FMAF(R, z, 2.0f / 3);
    R = R * z;
    return -s * (f - R);
}

/* log(y) for y > 0 finite, plus `c` (a small correction added before the
 * final rounding); other y give -inf (0), NaN (y < 0, NaN) or y (+inf). */
TG_VM_INLINE float tg_vm_log_plusf(float y, float c)
{
    int sub = y < 0x1p-126f;                 /* subnormal: scale by 2^23 first */
    float ysc = y * 0x1p23f, ys = sub ? ysc : y;
    uint32_t u = tg_vm_f2u(ys) + (0x3f800000u - 0x3f3504f3u);
    /* the exponent as a float through the bits (an int to float conversion
     * counts as a possible trap and would stay a branch) */
    float ef = (tg_vm_u2f(0x4b000000u | (u >> 23)) - 8388735.0f) - (sub ? 23.0f : 0.0f);
    float f = tg_vm_u2f((u & 0x007fffffu) + 0x3f3504f3u) - 1.0f;
    float a = ef * TG_VM_LN2F_HI, ab = a + f, aberr = (a - ab) + f;   /* |a| >= |f| or a = 0 */
    float r = ab + ((tg_vm_log1p_coref(f) + (ef * TG_VM_LN2F_LO + c)) + aberr);
    float special = y == 0 ? -INFINITY : (y < 0 ? NAN : y);
    return ((y > 0) & (y <= 0x1.fffffep127f)) ? r : special;
}

TG_VM_INLINE float tg_vm_logf(float x) { return tg_vm_log_plusf(x, 0.0f); }

/* log1p(x) = log(1 + x) + the rounding error of 1 + x, divided by 1 + x. */
TG_VM_INLINE float tg_vm_log1pf(float x)
{
    float y = 1.0f + x;
    float cy = (x - (y - 1.0f)) / y, c = ((y > 0) & (y <= 0x1.fffffep127f)) ? cy : 0.0f;
    float l = tg_vm_log_plusf(y, c);
    return fabsf(x) < 0x1p-25f ? x : l;     /* keeps -0 and subnormals */
}

/* ---- f32 kernels with a restricted range (activation.c) -------------------
 * Cheaper than the general functions above where the caller's range allows:
 * 2^k scaled in once instead of twice, polynomials of lower degree fitted
 * over the reduced range instead of Taylor's. Bounds in tests/test_vmath.c. */

/* e^r - 1 - r = r^2 P(r) for |r| <= 1.01 ln2/2: P of degree 4, the Chebyshev
 * interpolant of (e^r - 1 - r)/r^2 (|error| < 6.9e-8, so < 8.3e-9 for r^2 P):
 * enough for exp, whose result is near 1. */
#define TG_VM_EM1_P4_C4 1.3926926614e-3f    /* its coefficients, highest first */
#define TG_VM_EM1_P4_C3 8.36377387441e-3f
#define TG_VM_EM1_P4_C2 4.16665501103e-2f
#define TG_VM_EM1_P4_C1 1.66665733819e-1f
TG_VM_INLINE float tg_vm_em1_p4f(float r)
{
    float q = TG_VM_EM1_P4_C4;
    q = TG_VM_FMAF(q, r, TG_VM_EM1_P4_C3);
    q = TG_VM_FMAF(q, r, TG_VM_EM1_P4_C2);
    q = TG_VM_FMAF(q, r, TG_VM_EM1_P4_C1);
    return TG_VM_FMAF(q, r, 0.5f);
}

/* exp(x) for -104 <= x <= 0 (NaN passes): 2^k p(r) with p = 1 + r + r^2 P(r)
 * in Horner form, 2^k put in as 2^(k+64) 2^-64 so that the subnormal
 * results below exp(-87.3) round once. */
TG_VM_INLINE float tg_vm_exp_nonpos_coref(float x)
{
    float t = TG_VM_FMAF(x, (float)TG_VM_LOG2E, TG_VM_RNDF), kf = t - TG_VM_RNDF;
    float r = TG_VM_FMAF(-kf, TG_VM_LN2F_HI, x);   /* exact */
    r = TG_VM_FMAF(-kf, TG_VM_LN2F_LO, r);
    float p = TG_VM_FMAF(tg_vm_em1_p4f(r), r, 1.0f);
    p = TG_VM_FMAF(p, r, 1.0f);
    /* t's bits are those of 1.5 * 2^23 + k: shifted by 23, k + 191 is left
     * in the exponent field (41 <= k + 191 <= 191) */
    float s = tg_vm_u2f((tg_vm_f2u(t) << 23) + ((127u + 64u) << 23));
    return (p * s) * 0x1p-64f;
}

/* exp(x) for x <= 0; x > 0 gives 1 (exp(0)), NaN passes, exp(-104) = 0. */
TG_VM_INLINE float tg_vm_exp_nonposf(float x)
{
    float xc = x < -104.0f ? -104.0f : x;
    return tg_vm_exp_nonpos_coref(xc > 0.0f ? 0.0f : xc);
}

/* The same P of degree 5 (|error| < 1.5e-9, so < 1.8e-10 for r^2 P): expm1,
 * whose result may be as small as r, needs it. */
TG_VM_INLINE float tg_vm_em1_p5f(float r)
{
    float q = 1.9891981314e-4f;
    q = TG_VM_FMAF(q, r, 1.39345419283e-3f);
    q = TG_VM_FMAF(q, r, 8.33331002423e-3f);
    q = TG_VM_FMAF(q, r, 4.16664568097e-2f);
    q = TG_VM_FMAF(q, r, 1.66666666825e-1f);
    return TG_VM_FMAF(q, r, 0.500000001429f);
}

/* The parts of expm1(x) = (s - 1) + s r + s q for -20 <= x <= 20 (NaN
 * passes): x = k ln2 + r + rlo, s = 2^k (-29 <= k <= 29), q = rlo + r^2 P(r)
 * ~ e^(r + rlo) - 1 - r. s r is exact, and so is s - 1 for -24 <= k <= 24. */
TG_VM_INLINE void tg_vm_expm1_partsf(float x, float *s, float *r, float *q)
{
    float t = TG_VM_FMAF(x, (float)TG_VM_LOG2E, TG_VM_RNDF), kf = t - TG_VM_RNDF;
    float r1 = TG_VM_FMAF(-kf, TG_VM_LN2F_HI, x), klo = kf * TG_VM_LN2F_LO;   /* r1 exact */
    *r = r1 - klo;
    *q = TG_VM_FMAF(*r * *r, tg_vm_em1_p5f(*r), (r1 - *r) - klo);
    *s = tg_vm_u2f((tg_vm_f2u(t) << 23) + 0x3f800000u);
}

/* expm1(x) for x <= 0: x > 0 gives expm1(0) = 0, x < -20 gives -1 (correct
 * in f32), NaN passes, expm1(-0) = +0. The sum (s - 1) + s r is kept exact
 * (Fast2Sum: |s - 1| >= |s r| for k < 0, s - 1 = 0 for k = 0; for k < -24
 * the result rounds to -1 anyway) and its error added to s q. */
TG_VM_INLINE float tg_vm_expm1_nonposf(float x)
{
    float xc = x < -20.0f ? -20.0f : x, s, r, q;
    tg_vm_expm1_partsf(xc > 0.0f ? 0.0f : xc, &s, &r, &q);
    float a = s - 1.0f, b = s * r, ab = a + b, aberr = (a - ab) + b;
    return ab + TG_VM_FMAF(s, q, aberr);
}

/* log1p(e) for 0 <= e <= 1 (softplus) as e + e^2 Q(e), Q of degree 8 the
 * Chebyshev interpolant of (log1p(e)/e - 1)/e on [0, 1] (relative error of
 * the sum < 2.3e-8): no division, no range split, and the final FMA adds
 * the correction e^2 Q to e with one rounding. */
TG_VM_INLINE float tg_vm_log1p_unitf(float e)
{
    float q = -4.46621160127e-3f;
    q = TG_VM_FMAF(q, e, 2.52240543467e-2f);
    q = TG_VM_FMAF(q, e, -6.67577250632e-2f);
    q = TG_VM_FMAF(q, e, 1.15618454464e-1f);
    q = TG_VM_FMAF(q, e, -1.58475657205e-1f);
    q = TG_VM_FMAF(q, e, 1.98541062312e-1f);
    q = TG_VM_FMAF(q, e, -2.49865261682e-1f);
    q = TG_VM_FMAF(q, e, 3.33328418874e-1f);
    q = TG_VM_FMAF(q, e, -4.99999969831e-1f);
    return TG_VM_FMAF(e, e * q, e);
}

/* softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): never
 * overflows; NaN passes through. */
TG_VM_INLINE float tg_vm_softplusf(float x)
{
    float pos = x > 0 ? x : 0.0f, a = fabsf(x);
    a = a > 104.0f ? 104.0f : a;             /* exp(-104) = 0; NaN passes */
    return pos + tg_vm_log1p_unitf(tg_vm_exp_nonpos_coref(-a));
}

/* tanh|x| = t / (t + 2), t = expm1(2|x|) (one exponential, no cancellation;
 * |x| clamped to 10, where tanh is 1 in f32). t's relative error reaches
 * tanh damped by 2 / (t + 2), so t = s q + (s r + (s - 1)), rounded twice,
 * is close enough. The sign of x is put back through the sign bit
 * (tanh(-0) = -0); NaN passes. */
TG_VM_INLINE float tg_vm_tanhf(float x)
{
    float a = fabsf(x), s, r, q;
    a = a > 10.0f ? 10.0f : a;
    tg_vm_expm1_partsf(a + a, &s, &r, &q);
    float t = TG_VM_FMAF(s, q, TG_VM_FMAF(s, r, s - 1.0f)), v = t / (t + 2.0f);
    return tg_vm_u2f(tg_vm_f2u(v) | (tg_vm_f2u(x) & 0x80000000u));
}

/* 1 / (1 + exp(-x)) without overflow: e = exp(-|x|) in [0, 1], 1/(1+e) for
 * x >= 0, e/(1+e) for x < 0 (down through the subnormals). */
TG_VM_INLINE float tg_vm_sigmoidf(float x)
{
    float a = fabsf(x);
    a = a > 104.0f ? 104.0f : a;             /* NaN passes */
    float e = tg_vm_exp_nonpos_coref(-a), r = 1.0f / (1.0f + e), er = e * r;
    return x >= 0 ? r : er;
}

/* erfc(x): for a = |x| <= 10.1 (erfc(10.06) = 0 in f32), erfc(a) =
 * exp(-a^2) q(a) / (a + 2), q(a) = erfc(a) exp(a^2) (a + 2) smooth (2 at 0,
 * ~1/sqrt(pi) far out), a degree-10 polynomial in t = (a - 2)/(a + 2) in
 * [-1, 0.67] fitted for least relative error (3.4e-9, well conditioned: the
 * terms sum to at most 2.4 q); a^2 = h + l exactly (FMA), exp(-a^2) =
 * exp(-h) (1 - l). erfc(-a) = 2 - erfc(a). NaN passes through. */
TG_VM_INLINE float tg_vm_erfcf(float x)
{
    float a = fabsf(x);
    a = a > 10.1f ? 10.1f : a;
    float d = 1.0f / (a + 2.0f), t = (a - 2.0f) * d;
    float q = 6.948141589e-05f;
    q = TG_VM_FMAF(q, t, 4.694128161e-05f);
    q = TG_VM_FMAF(q, t, -5.925621047e-04f);
    q = TG_VM_FMAF(q, t, -8.320650088e-04f);
    q = TG_VM_FMAF(q, t, 3.062605323e-03f);
    q = TG_VM_FMAF(q, t, 6.475879767e-03f);
    q = TG_VM_FMAF(q, t, -2.150572212e-02f);
    q = TG_VM_FMAF(q, t, -3.644178388e-02f);
    q = TG_VM_FMAF(q, t, 2.794717708e-01f);
    q = TG_VM_FMAF(q, t, -6.871606971e-01f);
    q = TG_VM_FMAF(q, t, 1.021582709e+00f);
    float h = a * a, l = TG_VM_FMAF(a, a, -h);
    float e = tg_vm_exp_nonpos_coref(-h);   /* -102.01 <= -h <= 0 */
    float r = (q * d) * TG_VM_FMAF(e, -l, e);
    return x < 0 ? 2.0f - r : r;
}

/* ---- f64 ------------------------------------------------------------------ */

/* 1 / k! for k <= 13, as the literals 1.0 / k! (exact factorials). */
static const double tg_vm_inv_fact[14] = {
    1.0, 1.0, 0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0, 1.0 / 5040.0, 1.0 / 40320.0,
    1.0 / 362880.0, 1.0 / 3628800.0, 1.0 / 39916800.0, 1.0 / 479001600.0, 1.0 / 6227020800.0,
};

/* q with r^2 q = exp(r) - 1 - r to Taylor degree n (2 <= n <= 13): 1/2 +
 * r/6 + ... + r^(n-2)/n!. n a constant, so the loop unrolls into the
 * Horner steps with the table's entries folded. */
TG_VM_INLINE double tg_vm_em1_q(double r, int n)
{
    double q = tg_vm_inv_fact[n];
    TG_VM_UNROLL
    for (int k = n - 1; k >= 2; k--)
        q = TG_VM_FMA(q, r, tg_vm_inv_fact[k]);
    return q;
}

/* exp(r) - 1 - r for |r| <= ~0.35: Taylor to degree 13 (truncation < 2e-17 r). */
TG_VM_INLINE double tg_vm_em1_poly(double r) { return (r * r) * tg_vm_em1_q(r, 13); }

TG_VM_INLINE double tg_vm_exp(double x)
{
    double xc = x < -746.0 ? -746.0 : x;
    xc = xc > 710.0 ? 710.0 : xc;
    double t = xc * TG_VM_LOG2E + TG_VM_RND, kf = t - TG_VM_RND;
    int64_t k = (int64_t)(tg_vm_d2u(t) - tg_vm_d2u(TG_VM_RND));
    double r1 = xc - kf * TG_VM_LN2_HI, klo = kf * TG_VM_LN2_LO;   /* r1 exact */
    double r = r1 - klo, rlo = (r1 - r) - klo;   /* x - k ln2 = r + rlo */
    int64_t k1 = k >> 1, k2 = k - k1;
    double s1 = tg_vm_u2d((uint64_t)(k1 + 1023) << 52), s2 = tg_vm_u2d((uint64_t)(k2 + 1023) << 52);
    double p = 1.0 + r, perr = ((1.0 - p) + r) + rlo;
    return ((p + (tg_vm_em1_poly(r) + perr)) * s1) * s2;
}

TG_VM_INLINE double tg_vm_expm1(double x)
{
    double xc = x < -40.0 ? -40.0 : x;       /* expm1(-40) = -1 in f64 */
    xc = xc > 710.0 ? 710.0 : xc;
    double t = xc * TG_VM_LOG2E + TG_VM_RND, kf = t - TG_VM_RND;
    int64_t k = (int64_t)(tg_vm_d2u(t) - tg_vm_d2u(TG_VM_RND));
    double r1 = xc - kf * TG_VM_LN2_HI, klo = kf * TG_VM_LN2_LO;   /* r1 exact */
    double r = r1 - klo, rlo = (r1 - r) - klo;   /* x - k ln2 = r + rlo */
    double h = tg_vm_u2d((uint64_t)(k + 1022) << 52);
    double hm = h - 0.5, a = kf <= 53.0 ? hm : h, c = kf <= 53.0 ? 0.0 : -0.5;
    double b = h * r, ab = a + b, aberr = (a - ab) + b;
    double y = 2.0 * (ab + ((h * (tg_vm_em1_poly(r) + rlo) + aberr) + c));
    return fabs(x) < 0x1p-54 ? x : y;
}

/* The f64 counterparts, so VM(exp_nonpos, v) and VM(expm1_nonpos, v) work
 * in either dtype: the general kernels on min(x, 0) (NaN passes). */
TG_VM_INLINE double tg_vm_exp_nonpos(double x) { return tg_vm_exp(x > 0 ? 0.0 : x); }
TG_VM_INLINE double tg_vm_expm1_nonpos(double x) { return tg_vm_expm1(x > 0 ? 0.0 : x); }

/* log1p(f) - f = -s (f - R), s = f / (2 + f), R = 2/3 z + 2/5 z^2 + ... +
 * 2/(2n+1) z^n, z = s^2 (the atanh series, n terms; n a constant, so the
 * loop unrolls into the Horner steps with the quotients folded). */
TG_VM_INLINE double tg_vm_log1p_corr(double f, int n)
{
    double s = f / (2.0 + f), z = s * s;
    double R = 2.0 / (2 * n + 1);
    TG_VM_UNROLL
    for (int k = n - 1; k >= 1; k--)
        R = TG_VM_FMA(R, z, 2.0 / (2 * k + 1));
    R = R * z;
    return -s * (f - R);
}

/* Full double precision: 11 terms (z <= 0.0295). */
TG_VM_INLINE double tg_vm_log1p_core(double f) { return tg_vm_log1p_corr(f, 11); }

/* A positive normal double y as 2^ef (1 + f), 1 + f in [sqrt2/2, sqrt2). */
TG_VM_INLINE double tg_vm_log_split(double y, double *ef)
{
    uint64_t u = tg_vm_d2u(y) + (0x3ff0000000000000ull - 0x3fe6a09e667f3bcdull);
    *ef = tg_vm_u2d(0x4330000000000000ull | (u >> 52)) - 4503599627371519.0;
    return tg_vm_u2d((u & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull) - 1.0;
}

TG_VM_INLINE double tg_vm_log_plus(double y, double c)
{
    int sub = y < 0x1p-1022;
    double ysc = y * 0x1p54, ys = sub ? ysc : y, ef;
    double f = tg_vm_log_split(ys, &ef);
    ef -= sub ? 54.0 : 0.0;
    double a = ef * TG_VM_LN2_HI, ab = a + f, aberr = (a - ab) + f;
    double r = ab + ((tg_vm_log1p_core(f) + (ef * TG_VM_LN2_LO + c)) + aberr);
    double special = y == 0 ? -INFINITY : (y < 0 ? NAN : y);
    return ((y > 0) & (y <= 0x1.fffffffffffffp1023)) ? r : special;
}

TG_VM_INLINE double tg_vm_log(double x) { return tg_vm_log_plus(x, 0.0); }

TG_VM_INLINE double tg_vm_log1p(double x)
{
    double y = 1.0 + x;
    double cy = (x - (y - 1.0)) / y, c = ((y > 0) & (y <= 0x1.fffffffffffffp1023)) ? cy : 0.0;
    double l = tg_vm_log_plus(y, c);
    return fabs(x) < 0x1p-54 ? x : l;
}

TG_VM_INLINE double tg_vm_log1p_unit(double e)
{
    int hi = e >= 0.5;
    double fh = (e - 1.0) * 0.5, f = hi ? fh : e;
    double c = hi ? TG_VM_LN2_LO : 0.0, k = hi ? TG_VM_LN2_HI : 0.0;
    return k + (f + (tg_vm_log1p_core(f) + c));
}

TG_VM_INLINE double tg_vm_softplus(double x)
{
    double pos = x > 0 ? x : 0.0;
    return pos + tg_vm_log1p_unit(tg_vm_exp(-fabs(x)));
}

TG_VM_INLINE double tg_vm_tanh(double x)
{
    double a = fabs(x);
    a = a > 40.0 ? 40.0 : a;
    double t = tg_vm_expm1(-2.0 * a);
    double v = -t / (t + 2.0);
    return tg_vm_u2d(tg_vm_d2u(v) | (tg_vm_d2u(x) & 0x8000000000000000ull));
}

TG_VM_INLINE double tg_vm_sigmoid(double x)
{
    double e = tg_vm_exp(-fabs(x)), r = 1.0 / (1.0 + e), er = e * r;
    return x >= 0 ? r : er;
}

/* erfc in f64 is libm's (scalar). */
TG_VM_INLINE double tg_vm_erfc(double x) { return erfc(x); }

/* The 16-lane f32 kernels (AVX-512 builds): vmath16.h. */
/* x^c for f32 x and c, as (float)pow((double)x, (double)c): exp(c log|x|)
 * in double (tg_vm_pow_core, below: the float is libm's but for values
 * within ~2^-19 ulp of a rounding boundary, and then 1 ulp off), then
 * IEEE's rules for pow by bit operations: c = 0
 * and x = +-1 give 1 (x^0 = 1 for NaN x too; (-1)^c for an odd integer c
 * gets its sign below); an odd integer c keeps x's sign; a non-integer c
 * (NaN too) gives NaN for finite negative x (-0 and -inf follow +0 and
 * +inf; (-1)^+-inf = 1). Branch-free, so a loop over it vectorises
 * (libm's pow an element: 4096x4096, 1 thread, 179-190 ms). */
/* exp(c ln a) in double for a = |x| of a float x (so a is 0, inf, NaN or
 * a normal double: no subnormal path) and a float's result: ln a as
 * tg_vm_log_plus without its compensations and with the atanh series to
 * z^8 (truncation < 2^-50 relative, z = s^2 <= 0.0295), c ln a clamped to
 * [-110, 100] (beyond, the float result is 0 or inf), exp to degree 11
 * (truncation < 2^-46) and 2^k in one exact multiply (k in [-159, 144]).
 * The result is within ~2^-43 of exp(c ln a) (test_pow_core: 2^-43.1 at
 * worst, ln a's error times |c ln a| <= 110), so its rounding to float is
 * libm's pow's but within ~2^-19 ulp of a rounding boundary (1 of 20 M
 * random pairs 1 ulp off, as with the full-precision tg_vm_log and
 * tg_vm_exp before; none further). One term fewer in each series (2^-38)
 * put 23 of 4 M pairs near x = sqrt2 2^e an ulp off (review). As before,
 * exact ties are the approximation's to round: 0.5^150 = 2^-150 gives
 * 2^-149 where libm gives 0, pow(4097, 2) 16785410 where libm's is
 * 16785408. The full-precision pair cost a third more (tapegrad bench
 * --threads 1, alternating: pow 128x1024 forward 576-668 -> 416-433 us
 * (PyTorch 527), VJP 683-741 -> 521-581; 4096x4096 73-76 -> 53-56 ms,
 * 96-99 -> 73-84; pow_scalar 128x1024 512-525 -> 357-372 us). */
TG_VM_INLINE double tg_vm_pow_core(double a, double c)
{
    double ef, f = tg_vm_log_split(a, &ef);
    double l = (ef * TG_VM_LN2_HI + f) + (ef * TG_VM_LN2_LO + tg_vm_log1p_corr(f, 8));
    l = a == 0 ? -INFINITY : (a <= 0x1.fffffffffffffp1023 ? l : a);   /* inf, NaN pass */
    double y = c * l;
    y = y < -110.0 ? -110.0 : y;
    y = y > 100.0 ? 100.0 : y;                                          /* NaN passes */
    double t = y * TG_VM_LOG2E + TG_VM_RND, kf = t - TG_VM_RND;
    int64_t k = (int64_t)(tg_vm_d2u(t) - tg_vm_d2u(TG_VM_RND));
    double r = (y - kf * TG_VM_LN2_HI) - kf * TG_VM_LN2_LO;
    double p = 1.0 + TG_VM_FMA(r * r, tg_vm_em1_q(r, 11), r);
    return p * tg_vm_u2d((uint64_t)(k + 1023) << 52);
}

/* The part after c's class: c_int and c_odd are 0 or 1. */
TG_VM_INLINE float tg_vm_powf_cls(float x, double cd, uint64_t c_int, uint64_t c_odd)
{
    double ax = fabs((double)x);
    double r0 = tg_vm_pow_core(ax, cd);
    double r = (ax == 1.0) | (cd == 0.0) ? 1.0 : r0;      /* not 0 * inf */
    uint64_t neg = (uint64_t)(tg_vm_f2u(x) >> 31);         /* -0 too */
    uint64_t fin = (uint64_t)((ax != 0) & (ax < INFINITY));
    uint64_t ru = tg_vm_d2u(r) ^ ((c_odd & neg) << 63);
    uint64_t bad = (uint64_t)0 - (neg & fin & (c_int ^ 1)); /* all ones or 0 */
    return (float)tg_vm_u2d((ru & ~bad) | (0x7ff8000000000000ull & bad));
}

/* c is an integer when |c| >= 2^23 (every float there is) or c rounds to
 * itself ((c + R) - R, exact below 2^51; floor() here kept GCC from
 * vectorising a loop over two tensors); odd when below 2^24 and c/2 does
 * not. NaN is neither; +-inf is even. */
#define TG_VM_POW_CLASS(cd, c_int, c_odd)                                              \
    const double ac_ = fabs(cd), h_ = (cd) * 0.5, R_ = 0x1.8p52;                       \
    const uint64_t c_int = (uint64_t)((ac_ >= 0x1p23) | ((cd) == ((cd) + R_) - R_));   \
    const uint64_t c_odd = c_int & (uint64_t)((ac_ < 0x1p24) & (h_ != (h_ + R_) - R_))

TG_VM_INLINE float tg_vm_powf(float x, float c)
{
    const double cd = (double)c;
    TG_VM_POW_CLASS(cd, c_int, c_odd);
    return tg_vm_powf_cls(x, cd, c_int, c_odd);
}

/* y[i] = x[i]^c (pow_scalar): tg_vm_powf with c's class found once (and
 * the c = 0 case left out: pow_scalar does not come here for it). */
static inline void tg_vm_powcf_n(const float *x, float *y, size_t n, float c)
{
    const double cd = (double)c;
    TG_VM_POW_CLASS(cd, c_int, c_odd);
    const uint64_t odd = c_odd << 63, nan_ok = (uint64_t)0 - (c_int ^ 1);
    for (size_t i = 0; i < n; i++) {
        double ax = fabs((double)x[i]), r0 = tg_vm_pow_core(ax, cd);
        double r = ax == 1.0 ? 1.0 : r0;
        uint64_t neg = (uint64_t)(tg_vm_f2u(x[i]) >> 31);
        uint64_t fin = (uint64_t)((ax != 0) & (ax < INFINITY));
        uint64_t ru = tg_vm_d2u(r) ^ (odd & (neg << 63));
        uint64_t bad = nan_ok & ((uint64_t)0 - (neg & fin));
        y[i] = (float)tg_vm_u2d((ru & ~bad) | (0x7ff8000000000000ull & bad));
    }
}

/* y[i] = a[i]^b[i] (pow of two f32 tensors of one shape). */
static inline void tg_vm_powf_n(const float *a, const float *b, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tg_vm_powf(a[i], b[i]);
}

#include "vmath16.h"

#endif
