/* smx_row.h — the exps of an f32 row for softmax, log_softmax (softmax.c) and
 * cross_entropy (loss.c), private to ops/: smx_softmax_row_f32 gives
 * y = softmax(x); smx_row_sum_f32 the max and the sum of exp(x - max) in
 * double alone, for log_softmax (which then writes (x - max) - log(sum));
 * smx_row_sum2_f32 the same pair in fewer operations and less closely,
 * for cross_entropy (its logsumexp; a max pass without the min, then the
 * exps as 2^t: "the sum alone", below).
 *
 * smx_rows_streamed_f32 runs whole blocks of rows for both ops, writing
 * each row's output with streaming stores while the next row's exps run.
 *
 * Passes over a row, those after the first on data it brought into L1/L2:
 * max and min; the exps and their sum (stored as y for softmax only); then
 * softmax's scaling of y, or log_softmax's y = x - max - log(sum). While
 * one row's exps are computed, the next row's x is prefetched into L2 (L1
 * holds this row), so memory streams while the exps run (measured: into L1
 * is no better or slower; prefetching y as well is slower). The max, the
 * exps and the sums run over 16 or more lanes, so none is one chain of
 * dependent adds or compares.
 *
 * NOTE: one exp is a chain of ~12 dependent operations; a plain loop of
 * tg_vm_expf keeps too few of them in flight (measured: half the issue rate).
 * smx_exp_blk computes exp one step over a block of SMX_B elements at a
 * time, so the compiler interleaves 4 independent vectors. The arguments
 * are d = x - max <= 0 (max finite), so it is tg_vm_exp_nonposf's
 * polynomial (fitted, degree 4 + 2: one FMA fewer than tg_vm_expf's Taylor
 * series; <= 1 ulp like it), with tg_vm_expf's reduction; when the row's
 * min - max >= SMX_LO_MIN the scaling by 2^k is an add to the exponent bits
 * (exact: the result is normal), otherwise by two normal factors, as
 * tg_vm_expf (with AVX-512 the normal blocks run in explicit vector code,
 * smx_exp_blocks16, same bits). The elements past the last whole block,
 * every element of a row shorter than SMX_B (the 10 logits of the training
 * run's loss), and rows with a NaN or an infinite max take tg_vm_expf's
 * bits (tg_vm16_expf_as_scalar with AVX-512). Measured and dropped: one
 * loop per row that also reads the next row's max/min and finishes the
 * previous row in place (three streams; rows 4 KiB apart staggered):
 * softmax 4096x4096 8.2 -> 10.4-13 ms, 1 thread. What pays is only the
 * previous row's finished output leaving with streaming stores during
 * this row's exps (smx_tail, smx_rows_streamed_f32). */
#ifndef TG_SMX_ROW_H
#define TG_SMX_ROW_H

#include "ops_common.h"

#define SMX_B 64
#define SMX_LO_MIN -86.0f           /* exp(d) >= 2^-124 */

#if defined(__GNUC__)
#define SMX_INLINE static inline __attribute__((always_inline))
#else
#define SMX_INLINE static inline
#endif

/* yb[j] = exp(xb[j] - m) for j < SMX_B; `normal`: every xb[j] - m >= SMX_LO_MIN
 * (no clamp, and 2^k goes into the exponent bits: k << 23 is bits(t) << 23,
 * as bits(TG_VM_RNDF) << 23 wraps to 0). */
SMX_INLINE void smx_exp_blk(float *restrict yb, const float *restrict xb, float m, int normal)
{
    float d[SMX_B], kf[SMX_B], r[SMX_B], p[SMX_B];
    uint32_t tb[SMX_B];
    for (int j = 0; j < SMX_B; j++) {
        float v = xb[j] - m;
        d[j] = normal || v >= -104.0f ? v : -104.0f;  /* exp(-104) = 0 in f32 */
    }
    for (int j = 0; j < SMX_B; j++) {
        float t = d[j] * (float)TG_VM_LOG2E + TG_VM_RNDF;
        kf[j] = t - TG_VM_RNDF;
        tb[j] = tg_vm_f2u(t);
    }
    for (int j = 0; j < SMX_B; j++)
        r[j] = TG_VM_FMAF(-kf[j], TG_VM_LN2F_HI, d[j]);
    for (int j = 0; j < SMX_B; j++)
        r[j] = TG_VM_FMAF(-kf[j], TG_VM_LN2F_LO, r[j]);
    for (int j = 0; j < SMX_B; j++)
        p[j] = tg_vm_em1_p4f(r[j]);
    for (int j = 0; j < SMX_B; j++)
        p[j] = TG_VM_FMAF(p[j], r[j], 1.0f);
    for (int j = 0; j < SMX_B; j++)
        p[j] = TG_VM_FMAF(p[j], r[j], 1.0f);
    if (normal) {
        for (int j = 0; j < SMX_B; j++)
            yb[j] = tg_vm_u2f(tg_vm_f2u(p[j]) + (tb[j] << 23));
    } else {
        for (int j = 0; j < SMX_B; j++) {
            float s1, s2;
            tg_vm_scalef((int32_t)(tb[j] - tg_vm_f2u(TG_VM_RNDF)), &s1, &s2);
            yb[j] = (p[j] * s1) * s2;
        }
    }
}

/* The previous row's output, written with streaming stores while this
 * row's exps run (smx_rows_streamed_f32): dst[k] =
 * src[k] * a (softmax: src its exps, a = 1 / sum) or, with lf, (src[k] - a)
 * - b (log_softmax: src its x, a its max, b log(sum)). The exps of a row
 * are compute-bound and its stores memory-bound: one row's stores overlap
 * the next row's arithmetic instead of leaving in one burst after it (the
 * burst made a streamed softmax slower than plain stores). dst is 64-byte
 * aligned; `done` counts the elements written so far. */
typedef struct smx_tail {
    const float *src;
    float *dst;
    float a, b;
    int lf;
    int64_t done;
} smx_tail;

#ifdef TG_VM16
/* 16 of a tail's elements from k: a and b broadcast, held by the caller in
 * registers (a store through dst could alias the struct's fields). */
SMX_INLINE void smx_tail16(const float *src, float *dst, int lf, __m512 a, __m512 b, int64_t k)
{
    __m512 v = _mm512_loadu_ps(src + k);
    v = lf ? _mm512_sub_ps(_mm512_sub_ps(v, a), b) : _mm512_mul_ps(v, a);
    _mm512_stream_ps(dst + k, v);
}
#endif

/* Writes the elements of tail t from t->done to n (n a multiple of 16 with
 * AVX-512, else any); none if t is NULL. */
SMX_INLINE void smx_tail_to(smx_tail *t, int64_t n)
{
    if (!t)
        return;
    int64_t k = t->done;
#ifdef TG_VM16
    const __m512 a = _mm512_set1_ps(t->a), b = _mm512_set1_ps(t->b);
    for (; k + 16 <= n; k += 16)
        smx_tail16(t->src, t->dst, t->lf, a, b, k);
#endif
    for (; k < n; k++)
        t->dst[k] = t->lf ? (t->src[k] - t->a) - t->b : t->src[k] * t->a;
    t->done = k;
}

#ifdef TG_VM16
/* smx_exp_blk with normal = 1 and the lane sums of smx_exp_row, over 16
 * lanes in explicit vector code, the same operations in the same order (so
 * the same bits): left to the compiler, the double lane sums came out as
 * 16 scalar converts and adds per block in one build (softmax 7.4 -> 10.5
 * ms at 4096x4096). Returns the elements done (whole blocks); y NULL:
 * the sums only, and the lines of yw (if not NULL) prefetched for
 * writing. tail (or NULL; none of it written yet): the previous row's
 * output, 64 elements streamed per block, tail->done set to the elements
 * written. */
/* Block a of the next row xn (if not NULL) into L2, a line per 16
 * elements: L1 holds this row. */
SMX_INLINE void smx_prefetch_blk(const float *xn, int64_t a)
{
    if (xn)
        for (int j = 0; j < SMX_B; j += 16)
            _mm_prefetch((const char *)(xn + a + j), _MM_HINT_T1);
}

/* 16 f32 values into the double lanes s0 (0-7) and s1 (8-15). */
SMX_INLINE void smx_lanes_add(__m512d *s0, __m512d *s1, __m512 f)
{
    *s0 = _mm512_add_pd(*s0, _mm512_cvtps_pd(_mm512_castps512_ps256(f)));
    *s1 = _mm512_add_pd(*s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1))));
}

_Static_assert(SMX_B == 64, "smx_exp_blocks16 sums 4 vectors a block");
SMX_INLINE int64_t smx_exp_blocks16(float *restrict y, const float *restrict x, int64_t A, float m,
                                    const float *xn, float *yw, double lane[16], smx_tail *tail)
{
    const __m512 vm = _mm512_set1_ps(m);
    __m512d s0 = _mm512_loadu_pd(lane), s1 = _mm512_loadu_pd(lane + 8);
    /* the tail: 0 none, 1 softmax's, 2 log_softmax's */
    const int tl = tail ? 1 + (tail->lf != 0) : 0;
    const float *ts = tl ? tail->src : NULL;
    float *td = tl ? tail->dst : NULL;
    const __m512 ta = _mm512_set1_ps(tl ? tail->a : 0), tb = _mm512_set1_ps(tl ? tail->b : 0);
    int64_t a = 0;
    for (; a + SMX_B <= A; a += SMX_B) {
        smx_prefetch_blk(xn, a);
        __m512 e[SMX_B / 16];
        for (int v = 0; v < SMX_B / 16; v++) {
            __m512 t, kf, p = tg_vm16_exp_core(_mm512_sub_ps(_mm512_loadu_ps(x + a + 16 * v), vm), 0, &t, &kf);
            (void)kf;
            __m512i b = _mm512_add_epi32(_mm512_castps_si512(p),
                                         _mm512_slli_epi32(_mm512_castps_si512(t), 23));
            e[v] = _mm512_castsi512_ps(b);
            if (y)
                _mm512_storeu_ps(y + a + 16 * v, e[v]);
            else if (yw)
                _mm_prefetch((const char *)(yw + a + 16 * v), _MM_HINT_ET0);
        }
        if (tl == 1)                      /* the previous row's 64, streamed */
            for (int v = 0; v < SMX_B / 16; v++)
                smx_tail16(ts, td, 0, ta, tb, a + 16 * v);
        else if (tl == 2)
            for (int v = 0; v < SMX_B / 16; v++)
                smx_tail16(ts, td, 1, ta, tb, a + 16 * v);
        smx_lanes_add(&s0, &s1, _mm512_add_ps(_mm512_add_ps(e[0], e[1]), _mm512_add_ps(e[2], e[3])));
    }
    _mm512_storeu_pd(lane, s0);
    _mm512_storeu_pd(lane + 8, s1);
    if (tl)
        tail->done = a;
    return a;
}
#endif

/* y[a] = exp(x[a] - m) for a < A; returns the sum of y in double: lane j
 * adds y[j], y[j + 16], ... (in blocks of SMX_B, 4 at a time in float:
 * (y[j] + y[j + 16]) + (y[j + 32] + y[j + 48])), then the lanes in order.
 * `fast`: m is finite; `normal`: also the row's min - m >= SMX_LO_MIN. xn:
 * the next row, prefetched a line per 16 elements (or NULL). y NULL: the
 * sum alone, the same bits, nothing stored; yw (with y NULL, or NULL):
 * the row the caller writes next, its lines prefetched for writing while
 * the exps run (log_softmax: the write-allocate reads of y then overlap
 * the arithmetic, 8.2-8.6 -> 7.4-8.1 ms at 4096x4096, 1 thread). tail (or
 * NULL; none of it written yet): the previous row's output, of A elements
 * too, written whole by the time this returns (streamed during the blocks
 * where they run, the rest after). */
SMX_INLINE double smx_exp_row(float *restrict y, const float *restrict x, int64_t A, float m,
                          int fast, int normal, const float *xn, float *yw, smx_tail *tail)
{
    double lane[16] = {0};
    float buf[SMX_B];               /* the exps of a block when y is NULL */
    int64_t a = 0;
#ifdef TG_VM16
    if (fast && normal)
        a = smx_exp_blocks16(y, x, A, m, xn, yw, lane, tail);
#endif
    for (; fast && a + SMX_B <= A; a += SMX_B) {
#if defined(__GNUC__)
        for (int j = 0; xn && j < SMX_B; j += 16)
            __builtin_prefetch(xn + a + j, 0, 2);   /* to L2: L1 holds this row */
#endif
        float *yb = y ? y + a : buf;
#if defined(__GNUC__)
        for (int j = 0; !y && yw && j < SMX_B; j += 16)
            __builtin_prefetch(yw + a + j, 1, 3);
#endif
        if (normal)
            smx_exp_blk(yb, x + a, m, 1);
        else
            smx_exp_blk(yb, x + a, m, 0);
        {
            float f[16];
            for (int j = 0; j < 16; j++)
                f[j] = (yb[j] + yb[16 + j]) + (yb[32 + j] + yb[48 + j]);
            for (int j = 0; j < 16; j++)
                lane[j] += (double)f[j];
        }
    }
    if (A < 16) {
        /* A short row (the logits of a classifier): lane j would hold exp
         * j alone and the others +0, so the sum is the exps' in order;
         * kept in a register (the lanes' stores and reloads made a
         * 10-element row's sum a chain through memory). */
        float *yb = y ? y : buf;
#ifdef TG_VM16
        __mmask16 k = (__mmask16)((1u << A) - 1);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x), _mm512_set1_ps(m));
        _mm512_mask_storeu_ps(yb, k, tg_vm16_expf_as_scalar(d));
#else
        for (int64_t b = 0; b < A; b++)
            yb[b] = tg_vm_expf(x[b] - m);
#endif
        double s = 0;
        for (int64_t b = 0; b < A; b++)
            s += (double)yb[b];
        smx_tail_to(tail, A);
        return s;
    }
    /* The rest (a % 16 == 0 here), SMX_B at a time: the exps in a loop of
     * their own, then their sum into the lanes in the same order. */
    for (int j = 0; a < A;) {
        int64_t nb = A - a < SMX_B ? A - a : SMX_B;
        float *yb = y ? y + a : buf;
#ifdef TG_VM16
        for (int64_t b = 0; b < nb; b += 16) {   /* tg_vm_expf's bits, 16 at a time */
            __mmask16 k = nb - b >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (nb - b)) - 1);
            __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + a + b), _mm512_set1_ps(m));
            _mm512_mask_storeu_ps(yb + b, k, tg_vm16_expf_as_scalar(d));
        }
#else
        for (int64_t b = 0; b < nb; b++)
            yb[b] = tg_vm_expf(x[a + b] - m);
#endif
        for (int64_t b = 0; b < nb; b++, j = (j + 1) & 15)
            lane[j] += (double)yb[b];
        a += nb;
    }
    smx_tail_to(tail, A);            /* what the blocks did not write */
    double s = 0;
    for (int j = 0; j < 16; j++)
        s += lane[j];
    return s;
}

#ifdef TG_VM16
/* The max (NaN if an element is NaN) and, with want_min, the min of a row,
 * in vector code with a separate NaN flag: max and min are exact whatever
 * the order (a zero's sign aside, which no result depends on: exp(x - m)
 * and m + log(sum) are the same for m = +0 and -0). The scalar combine of
 * 64 lanes this replaced was most of a 64-element row's time
 * (cross_entropy 262144x64, 1 thread). want_min is a constant at each
 * call, so the min's operations fold away where it is 0. */
SMX_INLINE void smx_row_ext16(const float *x, int64_t A, int want_min, float *mx, float *mn)
{
    __m512 h0 = _mm512_set1_ps(-INFINITY), h1 = h0, h2 = h0, h3 = h0;
    __m512 l0 = _mm512_set1_ps(INFINITY), l1 = l0, l2 = l0, l3 = l0;
    __mmask16 bad = 0;
    int64_t a = 0;
    for (; a + SMX_B <= A; a += SMX_B) {
        __m512 v0 = _mm512_loadu_ps(x + a), v1 = _mm512_loadu_ps(x + a + 16);
        __m512 v2 = _mm512_loadu_ps(x + a + 32), v3 = _mm512_loadu_ps(x + a + 48);
        h0 = _mm512_max_ps(h0, v0);
        h1 = _mm512_max_ps(h1, v1);
        h2 = _mm512_max_ps(h2, v2);
        h3 = _mm512_max_ps(h3, v3);
        if (want_min) {
            l0 = _mm512_min_ps(l0, v0);
            l1 = _mm512_min_ps(l1, v1);
            l2 = _mm512_min_ps(l2, v2);
            l3 = _mm512_min_ps(l3, v3);
        }
        bad |= _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(v2, v3, _CMP_UNORD_Q);
    }
    for (; a < A; a += 16) {
        __mmask16 k = A - a >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (A - a)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, x + a);
        h0 = _mm512_mask_max_ps(h0, k, h0, v);
        if (want_min)
            l0 = _mm512_mask_min_ps(l0, k, l0, v);
        bad |= _mm512_mask_cmp_ps_mask(k, v, v, _CMP_UNORD_Q);
    }
    float h = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(h0, h1), _mm512_max_ps(h2, h3)));
    if (want_min)
        *mn = _mm512_reduce_min_ps(_mm512_min_ps(_mm512_min_ps(l0, l1), _mm512_min_ps(l2, l3)));
    *mx = bad ? NAN : h;
}
#endif

/* The max and min of a row as floats, the max NaN if an element is NaN (as
 * tg_row_ext), over SMX_B lanes (or 16-lane vectors) and a separate NaN
 * flag. */
static inline void smx_row_range(const float *x, int64_t A, float *mx, float *mn)
{
#ifdef TG_VM16
    smx_row_ext16(x, A, 1, mx, mn);
#else
    if (A < SMX_B) {            /* a short row (the logits of a classifier) */
        float h = -INFINITY, l = INFINITY;
        int nan = 0;
        for (int64_t a = 0; a < A; a++) {
            h = x[a] > h ? x[a] : h;
            l = x[a] < l ? x[a] : l;
            nan |= x[a] != x[a];
        }
        *mx = nan ? NAN : h;
        *mn = l;
        return;
    }
    float hi[SMX_B], lo[SMX_B];
    int nan[SMX_B];
    for (int j = 0; j < SMX_B; j++) {
        hi[j] = -INFINITY;
        lo[j] = INFINITY;
        nan[j] = 0;
    }
    int64_t a = 0;
    for (; a + SMX_B <= A; a += SMX_B)
        for (int j = 0; j < SMX_B; j++) {
            float v = x[a + j];
            hi[j] = v > hi[j] ? v : hi[j];
            lo[j] = v < lo[j] ? v : lo[j];
            nan[j] |= v != v;
        }
    for (int j = 0; a < A; a++, j++) {
        hi[j] = x[a] > hi[j] ? x[a] : hi[j];
        lo[j] = x[a] < lo[j] ? x[a] : lo[j];
        nan[j] |= x[a] != x[a];
    }
    for (int j = 1; j < SMX_B; j++) {
        hi[0] = hi[j] > hi[0] ? hi[j] : hi[0];
        lo[0] = lo[j] < lo[0] ? lo[j] : lo[0];
        nan[0] |= nan[j];
    }
    *mx = nan[0] ? NAN : hi[0];
    *mn = lo[0];
#endif
}

/* y[a] = exp(x[a] - max) for a < A (y NULL: not stored), *mx = the max (NaN
 * if an element is); returns the sum of the exps in double (lanes as
 * smx_exp_row). xn: the next row, prefetched (or NULL); yw, tail: as
 * smx_exp_row. A row with a NaN or +inf gives a NaN sum. */
static inline double smx_row_exps_f32(const float *restrict x, float *restrict y, int64_t A,
                                      const float *xn, float *yw, float *mx, smx_tail *tail)
{
    float mn;
    smx_row_range(x, A, mx, &mn);
    return smx_exp_row(y, x, A, *mx, isfinite(*mx), mn - *mx >= SMX_LO_MIN, xn, yw, tail);
}

/* The row's max (*mx) and the sum of exp(x - max) in double, the exps not
 * kept; yw (or NULL): the row the caller writes next, prefetched for
 * writing meanwhile. */
static inline double smx_row_sum_f32(const float *restrict x, int64_t A, const float *xn, float *yw,
                                     float *mx)
{
    return smx_row_exps_f32(x, NULL, A, xn, yw, mx, NULL);
}

/* ---- the sum alone, for cross_entropy's forward -------------------------
 * smx_row_sum2_f32 gives what smx_row_sum_f32 gives, the max and the sum of
 * exp(x - max), in fewer operations, for a caller that wants the sum alone:
 * no min in the max pass (vscalefps takes any exponent, so no row needs
 * the two-factor scaling), and each exp as 2^t, t = d log2e, d = x - max:
 * f = t - round(t) in one vreduceps (exact), k = t - f, 2^f = 1 + c1 f +
 * ... + c5 f^5 (scripts/fit_exp2.py: relative error < 9.2e-8, <= 2.03 ulp
 * in float, 2^0 = 1 exactly, so the max's term is exactly 1 and a
 * confident row's loss keeps its digits), 2^k by vscalefps (one rounding,
 * also into the subnormals; 0 below d ~ -103.97, and no clamp needed:
 * a huge negative t has f = 0). Per 16 elements: a multiply, 5 FMAs and
 * the vscalefps on the FMA pipes, vreduceps and two subtractions (x - m,
 * t - f) besides; smx_exp_blk's reduction in ln2 units and degree-6
 * polynomial take 9 on the FMA pipes and 6 more. The row measured 10-15 %
 * faster in a standalone loop; the op, below.
 * NOTE the cost: t is rounded once, so f carries t's rounding error and a
 * term at depth d below the max is within ~(2 + 3|d|/4) ulp of
 * exp((float)d) (14 ulp at d = -12.5; smx_exp_blk's terms are within 1
 * ulp at any depth). A term's share of the sum falls as e^d, so the sum
 * is off by ~2e-7 for spread logits and by up to ~6e-7 where most of the
 * mass sits at one depth d0 (one logit at the max, thousands at d0 in
 * [-8, -2]: the reviewer's worst case, 5.4e-7 against the exact sum at
 * 4096 columns): an f32 loss within ~1.5 ulp, softmax in the VJP (which
 * keeps smx_exp_blk's exps) scaled by 1 / sum within that. Capturing t's
 * rounding (an FMA, a clamp, an add) or reducing in ln2 units with a
 * clamp gave back all or half the gain (standalone loop, alternating).
 * Measured (tapegrad bench --op cross_entropy --threads 1, alternating
 * with the previous build): 16x4096 forward 16.5 -> 13.2 us, 4096x4096
 * 4.4-4.9 -> 3.5-3.9 ms; degree 6 (<= 0.95 ulp) took 14.1 us. Rows under
 * SMX_B elements (a classifier's 10 logits), and rows whose max is not
 * finite, are smx_row_sum_f32's, bit for bit. test_vmath's test_smx_sum2
 * holds the sum to 3e-7 of the exact one plus each term's |d| 2^-24. */
#define SMX_E2_C1 6.931470037e-01f
#define SMX_E2_C2 2.402224243e-01f
#define SMX_E2_C3 5.550733581e-02f
#define SMX_E2_C4 9.671509266e-03f
#define SMX_E2_C5 1.326470869e-03f

#ifdef TG_VM16
/* exp(d) over 16 lanes as above: 0 for d below ~-103.97, inf above ~88.7,
 * NaN for NaN. */
static inline __m512 smx_exp2_16(__m512 d)
{
    __m512 t = _mm512_mul_ps(d, _mm512_set1_ps((float)TG_VM_LOG2E));
    __m512 f = _mm512_reduce_ps(t, _MM_FROUND_TO_NEAREST_INT);   /* t - round(t), exact */
    __m512 k = _mm512_sub_ps(t, f);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(SMX_E2_C5), f, _mm512_set1_ps(SMX_E2_C4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SMX_E2_C3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SMX_E2_C2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SMX_E2_C1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

#endif

/* The row's max (*mx, NaN if an element is) and the sum of exp(x - max) in
 * double, as smx_row_sum_f32 (above); xn: the next row, prefetched to L2
 * a line per 16 elements (or NULL). Lanes as smx_exp_row's: element a in
 * lane a % 16, a block's four per lane summed in float first. */
static inline double smx_row_sum2_f32(const float *restrict x, int64_t A, const float *xn, float *mx)
{
#ifdef TG_VM16
    float m = NAN;
    if (A >= SMX_B)
        smx_row_ext16(x, A, 0, &m, NULL);
    if (isfinite(m)) {
        const __m512 vm = _mm512_set1_ps(m);
        __m512d s0 = _mm512_setzero_pd(), s1 = s0;
        int64_t a = 0;
        for (; a + SMX_B <= A; a += SMX_B) {
            smx_prefetch_blk(xn, a);
            __m512 e[SMX_B / 16];
            for (int v = 0; v < SMX_B / 16; v++)
                e[v] = smx_exp2_16(_mm512_sub_ps(_mm512_loadu_ps(x + a + 16 * v), vm));
            smx_lanes_add(&s0, &s1, _mm512_add_ps(_mm512_add_ps(e[0], e[1]), _mm512_add_ps(e[2], e[3])));
        }
        for (; a < A; a += 16) {
            __mmask16 k = A - a >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (A - a)) - 1);
            smx_lanes_add(&s0, &s1,
                          _mm512_maskz_mov_ps(k, smx_exp2_16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + a), vm))));
        }
        double lane[16], s = 0;
        _mm512_storeu_pd(lane, s0);
        _mm512_storeu_pd(lane + 8, s1);
        for (int j = 0; j < 16; j++)
            s += lane[j];
        *mx = m;
        return s;
    }
#endif
    return smx_row_sum_f32(x, A, xn, NULL, mx);
}

/* y = softmax(x) over the row; returns the sum of exp(x - max) in double,
 * *mx the max (the caller's logsumexp is max + log(sum)).
 * NOTE: y * (float)(1 / s), not (float)(y * (1 / s)) in double: within
 * 1 ulp of it, at a third of the cost. */
static inline double smx_softmax_row_f32(const float *restrict x, float *restrict y, int64_t A,
                                         const float *xn, float *mx)
{
    double s = smx_row_exps_f32(x, y, A, xn, NULL, mx, NULL);
    float inv = (float)(1.0 / s);
    for (int64_t a = 0; a < A; a++)
        y[a] *= inv;
    return s;
}


/* A row of exps at the address of the current x row plus 1, 2 or 3 KiB
 * modulo 4 KiB, whichever is furthest from the two rows written or read
 * at the same columns meanwhile: y's previous row (being streamed) and the
 * previous row's exps (read back for it). Rows that share the low 12
 * address bits at the same column make loads wait on unrelated stores (4K
 * aliasing; with x, y and the scratch all at one offset, as the arena lays
 * them out, softmax took 10.0 ms at 4096x4096 instead of 5.7). slot:
 * SMX_SLACK + A floats. */
#define SMX_SLACK 1024
#define SMX_SCRATCH(A) (2 * ((size_t)(A) + SMX_SLACK))
static inline unsigned smx_dist4k(uintptr_t a, uintptr_t b)
{
    uintptr_t d = (a - b) & 4095;
    return (unsigned)(d < 4096 - d ? d : 4096 - d);
}

SMX_INLINE float *smx_unaliased(float *slot, const float *x, const float *y, const float *prev)
{
    uintptr_t best = 1024;
    unsigned dist = 0;
    for (uintptr_t c = 1024; c <= 3072; c += 1024) {
        uintptr_t at = (uintptr_t)x + c;
        unsigned dy = smx_dist4k(at, (uintptr_t)y), dp = prev ? smx_dist4k(at, (uintptr_t)prev) : 4096;
        unsigned d = dy < dp ? dy : dp;
        if (d > dist) {
            dist = d;
            best = c;
        }
    }
    uintptr_t off = (((uintptr_t)x + best) - (uintptr_t)slot) & 4095;
    return slot + off / sizeof(float);
}

/* Softmax (lf = 0) or log_softmax (lf = 1) over `rows` contiguous rows of
 * A, y written with streaming stores, each row's during the next row's
 * exps (smx_tail); the same bits as smx_softmax_row_f32 and log_softmax's
 * (x - max) - log(sum) row by row. y 64-byte aligned and A a multiple of
 * 16 (every row aligned); scr: SMX_SCRATCH(A) floats for softmax's exps
 * (log_softmax streams from x; NULL). The caller fences
 * (tg_stream_fence). */
static inline void smx_rows_streamed_f32(const float *x, float *y, int64_t rows, int64_t A, int lf,
                                         float *scr)
{
    smx_tail t;
    memset(&t, 0, sizeof t);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * A, *xn = r + 1 < rows ? xr + A : NULL;
        float *e = NULL, m;
        if (!lf)
            e = smx_unaliased(scr + (size_t)(r & 1) * ((size_t)A + SMX_SLACK), xr, r ? y + (r - 1) * A : y,
                              r ? t.src : NULL);
        double s = smx_row_exps_f32(xr, e, A, xn, NULL, &m, r ? &t : NULL);
        if (lf)
            t = (smx_tail){ .src = xr, .dst = y + r * A, .a = m, .b = (float)log(s), .lf = 1 };
        else
            t = (smx_tail){ .src = e, .dst = y + r * A, .a = (float)(1.0 / s) };
    }
    if (rows)
        smx_tail_to(&t, A);
}

#endif
