/* ops_common.h — helpers shared by the op family files (private to ops/):
 * input checks that produce the standard error messages, axis handling,
 * broadcasting iterators, dtype dispatch, sample-input makers, the loop
 * skeleton and cost of elementwise ops, and an 8-lane row max/min kernel. */
#ifndef TG_OPS_COMMON_H
#define TG_OPS_COMMON_H

#include "tg_ops.h"
#include "tg_par.h"
#include "stream.h"
#include "vmath.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Run `...` once with T = float or T = double according to dt. */
#define TG_DISPATCH(dt, T, ...)                                  \
    do {                                                         \
        if ((dt) == TG_F32) { typedef float T; __VA_ARGS__ }     \
        else                { typedef double T; __VA_ARGS__ }    \
    } while (0)

#define TG_SHAPE_OF(t, buf) tg_shape_str((t)->ndim, (t)->shape, (buf), sizeof(buf))

/* The libm function for the element type: TGM(exp, v) is expf(v) for a float
 * v and exp(v) for a double, so f32 kernels stay in single precision (and
 * vectorise). */
#define TGM(fn, v) _Generic((v), float: fn##f, default: fn)(v)

/* Input i must be f32 or f64. */
static inline tg_status tg_chk_float(const tg_node *n, int i)
{
    if (!tg_dtype_is_float(n->in[i]->dtype))
        return tg_op_fail(n, TG_ERR_ARG, "input %d is %s, expected f32 or f64", i,
                          tg_dtype_name(n->in[i]->dtype));
    return TG_OK;
}

/* Inputs i and j must have the same float dtype. */
static inline tg_status tg_chk_same_dtype(const tg_node *n, int i, int j)
{
    tg_status s;
    if ((s = tg_chk_float(n, i)) != TG_OK || (s = tg_chk_float(n, j)) != TG_OK)
        return s;
    if (n->in[i]->dtype != n->in[j]->dtype)
        return tg_op_fail(n, TG_ERR_ARG, "mixed dtypes (%s and %s)",
                          tg_dtype_name(n->in[i]->dtype), tg_dtype_name(n->in[j]->dtype));
    return TG_OK;
}

/* Inputs i and j must have identical shapes. */
static inline tg_status tg_chk_same_shape(const tg_node *n, int i, int j)
{
    const tg_tensor *a = n->in[i], *b = n->in[j];
    if (!tg_shape_equal(a->ndim, a->shape, b->ndim, b->shape)) {
        char sa[TG_SHAPE_STR_MAX], sb[TG_SHAPE_STR_MAX];
        return tg_op_fail(n, TG_ERR_SHAPE, "shapes differ (%s vs %s)", TG_SHAPE_OF(a, sa), TG_SHAPE_OF(b, sb));
    }
    return TG_OK;
}

/* The output takes input i's dtype and shape. */
static inline void tg_shape_like(const tg_node *n, int i, tg_dtype *dt, int *ndim, int64_t *shape)
{
    *dt = n->in[i]->dtype;
    *ndim = n->in[i]->ndim;
    memcpy(shape, n->in[i]->shape, sizeof(int64_t) * (size_t)*ndim);
}

/* Shape function of an op whose output is like its one float input. */
static inline tg_status tg_shape_as_input(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s = tg_chk_float(n, 0);
    if (s == TG_OK)
        tg_shape_like(n, 0, dt, ndim, shape);
    return s;
}

/* Normalise a possibly negative axis for a tensor of `ndim` dims. */
static inline tg_status tg_norm_axis(const tg_node *n, int64_t axis, int ndim, int *out)
{
    if (axis < -ndim || axis >= (ndim ? ndim : 1))
        return tg_op_fail(n, TG_ERR_ARG, "axis %lld out of range for %d dims", (long long)axis, ndim);
    *out = (int)(axis < 0 ? axis + ndim : axis);
    return TG_OK;
}

/* NumPy broadcasting of two shapes (right-aligned, 1 stretches). */
static inline tg_status tg_broadcast_shape(const tg_node *n, const tg_tensor *a, const tg_tensor *b,
                                           int *ndim, int64_t *out)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = 0; k < nd; k++) {
        int ia = a->ndim - nd + k, ib = b->ndim - nd + k;
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[TG_SHAPE_STR_MAX], sb[TG_SHAPE_STR_MAX];
            return tg_op_fail(n, TG_ERR_SHAPE, "cannot broadcast %s with %s (axis %d: %lld vs %lld)",
                              TG_SHAPE_OF(a, sa), TG_SHAPE_OF(b, sb), k, (long long)da, (long long)db);
        }
        out[k] = da == 1 ? db : da;
    }
    *ndim = nd;
    return TG_OK;
}

/* Strides of `t` seen through an output of shape (nd, shape): 0 on
 * broadcast axes. Elements of the output in row-major order map to input
 * offsets by sum(index[k] * stride[k]). */
static inline void tg_broadcast_strides(const tg_tensor *t, int nd, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) {
        int it = t->ndim - nd + k;
        int64_t d = it >= 0 ? t->shape[it] : 1;
        stride[k] = (d == 1 && shape[k] != 1) ? 0 : s;
        s *= d;
    }
}

/* A row-major multi-index counter over `shape` that keeps offsets into up to
 * three broadcast inputs in step. */
typedef struct tg_bcast_iter {
    int     nd;
    int64_t shape[TG_MAX_DIMS];
    int64_t idx[TG_MAX_DIMS];
    int64_t stride[3][TG_MAX_DIMS];
    int64_t off[3];
    int     n_ops;
} tg_bcast_iter;

static inline void tg_bcast_init(tg_bcast_iter *it, int nd, const int64_t *shape,
                                 const tg_tensor *const *ops, int n_ops)
{
    it->nd = nd;
    it->n_ops = n_ops;
    for (int k = 0; k < nd; k++) {
        it->shape[k] = shape[k];
        it->idx[k] = 0;
    }
    for (int j = 0; j < n_ops; j++) {
        tg_broadcast_strides(ops[j], nd, shape, it->stride[j]);
        it->off[j] = 0;
    }
}

static inline void tg_bcast_next(tg_bcast_iter *it)
{
    for (int k = it->nd - 1; k >= 0; k--) {
        if (++it->idx[k] < it->shape[k]) {
            for (int j = 0; j < it->n_ops; j++)
                it->off[j] += it->stride[j][k];
            return;
        }
        it->idx[k] = 0;
        for (int j = 0; j < it->n_ops; j++)
            it->off[j] -= it->stride[j][k] * (it->shape[k] - 1);
    }
}

/* A sample input in [lo, hi) (f64 draws rounded to dt), made in n's context. */
static inline tg_tensor *tg_sample_uniform(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape,
                                           double lo, double hi)
{
    return tg_tensor_rand(n->ctx, dt, ndim, shape, lo, hi);
}

/* Like tg_sample_uniform but |x| >= gap: keeps samples off a kink at 0. */
static inline tg_tensor *tg_sample_away0(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape,
                                         double lim, double gap)
{
    tg_tensor *t = tg_tensor_new(n->ctx, dt, ndim, shape);
    if (t) {
        tg_rng *r = tg_ctx_rng(n->ctx);
        for (int64_t i = 0; i < t->numel; i++) {
            double u = gap + (lim - gap) * tg_rng_uniform(r);
            tg_tensor_set(t, i, tg_rng_uniform(r) < 0.5 ? -u : u);
        }
    }
    return t;
}

/* A sample's status once it made its inputs: TG_OK when inputs 0..n_in-1
 * all exist, else the context's error (TG_ERR_NOMEM if none is set). */
static inline tg_status tg_sample_done(const tg_node *n)
{
    for (int i = 0; i < n->n_in; i++)
        if (!n->in[i])
            return tg_ctx_status(n->ctx) != TG_OK ? tg_ctx_status(n->ctx) : TG_ERR_NOMEM;
    return TG_OK;
}

#define TG_NUMEL(t) ((size_t)(t)->numel)

/* ---- the max or min of a contiguous row (reduce.c, softmax.c, loss.c) -----
 * tg_row_ext(x, len, is_max): the max (or min) of x[0 .. len) as a double,
 * NaN if an element is NaN, -inf (+inf) for len 0. 32 running lanes, each
 * NaN-sticky (a NaN lane stays NaN: nothing compares greater), so the
 * compare-select loop vectorises with no separate NaN flag; deterministic. */
#define TG_ROW_EXT_LANES 32
#define TG_ROW_EXT_LOOPS_(T, CMP)                                                 \
    for (; i + TG_ROW_EXT_LANES <= len; i += TG_ROW_EXT_LANES)                    \
        for (int j = 0; j < TG_ROW_EXT_LANES; j++) {                              \
            T v = x[i + j];                                                       \
            m[j] = ((v CMP m[j]) | (v != v)) ? v : m[j];                          \
        }                                                                         \
    for (int j = 0; i < len; i++, j++)                                            \
        m[j] = ((x[i] CMP m[j]) | (x[i] != x[i])) ? x[i] : m[j];                  \
    for (int j = 1; j < TG_ROW_EXT_LANES; j++)                                    \
        m[0] = ((m[j] CMP m[0]) | (m[j] != m[j])) ? m[j] : m[0];

#define TG_DEF_ROW_EXT_(T, sfx)                                                   \
    static inline double tg_row_ext_##sfx(const T *x, int64_t len, int is_max)    \
    {                                                                             \
        T m[TG_ROW_EXT_LANES];                                                    \
        int64_t i = 0;                                                            \
        for (int j = 0; j < TG_ROW_EXT_LANES; j++)                                \
            m[j] = is_max ? (T)-INFINITY : (T)INFINITY;                           \
        if (is_max) {                                                             \
            TG_ROW_EXT_LOOPS_(T, >)                                               \
        } else {                                                                  \
            TG_ROW_EXT_LOOPS_(T, <)                                               \
        }                                                                         \
        return (double)m[0];                                                      \
    }
TG_DEF_ROW_EXT_(float, f32)
TG_DEF_ROW_EXT_(double, f64)
#define tg_row_ext(x, len, is_max) \
    _Generic((x), const float *: tg_row_ext_f32, const double *: tg_row_ext_f64)(x, len, is_max)

/* ---- sums of a contiguous row in double (softmax.c, loss.c) ---------------
 * tg_row_sum(x, len): the sum of x[0 .. len) in double, over 16 lanes
 * (lane j adds x[j], x[j + 16], ...; the lanes are then added in order), so
 * the loop vectorises; the order is fixed, whatever the thread count.
 * TG_LANE_SUM(S, k, k0, k1, EXPR): the same for the double EXPR of k over
 * k0 <= k < k1 (EXPR may read any arrays at k). */
#define TG_LANE_SUM(S, k, k0, k1, EXPR) do {                                     \
        double lane_[16] = {0};                                                   \
        int64_t kb_ = (k0);                                                       \
        for (; kb_ + 16 <= (k1); kb_ += 16)                                       \
            for (int j_ = 0; j_ < 16; j_++) {                                     \
                const int64_t k = kb_ + j_;                                       \
                lane_[j_] += (EXPR);                                              \
            }                                                                     \
        for (int j_ = 0; kb_ + j_ < (k1); j_++) {                                 \
            const int64_t k = kb_ + j_;                                           \
            lane_[j_] += (EXPR);                                                  \
        }                                                                         \
        double s_ = 0;                                                            \
        for (int j_ = 0; j_ < 16; j_++)                                           \
            s_ += lane_[j_];                                                      \
        (S) = s_;                                                                 \
    } while (0)

static inline double tg_row_sum_f32(const float *x, int64_t len)
{
    double s;
    TG_LANE_SUM(s, k, 0, len, (double)x[k]);
    return s;
}

static inline double tg_row_sum_f64(const double *x, int64_t len)
{
    double s;
    TG_LANE_SUM(s, k, 0, len, x[k]);
    return s;
}
#define tg_row_sum(x, len) \
    _Generic((x), float *: tg_row_sum_f32, const float *: tg_row_sum_f32, \
                  double *: tg_row_sum_f64, const double *: tg_row_sum_f64)(x, len)

/* ---- selecting a gradient without a masked load ------------------------
 * TG_KEEP(v, c): v where c, else +0, exactly `c ? v : (T)0`;
 * TG_FLIP(v, c): -v where c, else v; TG_SELECT(c, a, b): c ? a : b, bit
 * for bit. Written as selects, gcc reads v (a dy[i] streamed from memory)
 * with a masked load, which out of cache runs at half speed or worse
 * (relu's VJP into a fresh gradient, 4096², 1 thread: 7.7-8.0 -> 3.7-4.6
 * ms). Here v's bits are ANDed (XORed) with a mask built from c and from
 * `ones`, all bits set but read from tg_ew_ones, so gcc cannot prove the
 * mask a select and the read of v stays plain. `ones` must be in scope
 * (TG_EW_BACKWARD declares it; read it once, outside the loop: it is
 * volatile). */
extern const volatile uint64_t tg_ew_ones;
static inline __attribute__((always_inline)) float tg_keep_f32(float v, int c, uint64_t ones)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    u &= (uint32_t)(c ? ones : ~ones);
    memcpy(&v, &u, 4);
    return v;
}
static inline __attribute__((always_inline)) double tg_keep_f64(double v, int c, uint64_t ones)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    u &= c ? ones : ~ones;
    memcpy(&v, &u, 8);
    return v;
}
static inline __attribute__((always_inline)) float tg_flip_f32(float v, int c, uint64_t ones)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    u ^= ((uint32_t)(c != 0) << 31) & (uint32_t)ones;
    memcpy(&v, &u, 4);
    return v;
}
static inline __attribute__((always_inline)) double tg_flip_f64(double v, int c, uint64_t ones)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    u ^= ((uint64_t)(c != 0) << 63) & ones;
    memcpy(&v, &u, 8);
    return v;
}
static inline __attribute__((always_inline)) float tg_select_f32(int c, float a, float b, uint64_t ones)
{
    uint32_t u, w, m = (uint32_t)(c ? ones : ~ones);
    memcpy(&u, &a, 4);
    memcpy(&w, &b, 4);
    u = (u & m) | (w & ~m);
    memcpy(&a, &u, 4);
    return a;
}
static inline __attribute__((always_inline)) double tg_select_f64(int c, double a, double b, uint64_t ones)
{
    uint64_t u, w, m = c ? ones : ~ones;
    memcpy(&u, &a, 8);
    memcpy(&w, &b, 8);
    u = (u & m) | (w & ~m);
    memcpy(&a, &u, 8);
    return a;
}
#define TG_SELECT(c, a, b) _Generic((a), float: tg_select_f32, double: tg_select_f64)((c), (a), (b), ones)
#define TG_KEEP(v, c) _Generic((v), float: tg_keep_f32, double: tg_keep_f64)((v), (c), ones)
#define TG_FLIP(v, c) _Generic((v), float: tg_flip_f32, double: tg_flip_f64)((v), (c), ones)

/* ---- elementwise ops of one input (unary.c, activation.c, binary.c) -------
 * TG_EW_FORWARD(fn, ...)   defines `static tg_status fn(tg_node *n)`
 * TG_EW_BACKWARD(fn, LET, G)  defines `static void fn(tg_node *n)`, the VJP
 *                          (below: dx[i] += G, or = when overwriting)
 * Each runs the statements `...` for every element i, with T the element
 * type (TG_DISPATCH), x = input 0's data, y = the output's data and, in the
 * VJP, dy = out->grad and dx = input 0's grad (the VJP does nothing when dx
 * is NULL). p0, p1 are the parameters n->p.f[0], n->p.f[1] rounded to T,
 * read once before the loop. The statements stay a plain loop body, so the
 * loops remain type-specialised and vectorisable. Above TG_PAR_MIN_ELEMS
 * elements per thread, the context's threads take fixed ranges of i.
 * In the VJP, `one` is 1 in T that the compiler cannot see through
 * (tg_ew_one): `dy[i] * (c ? one : s)` stays one plain load of dy and a
 * multiply by a selected factor, where with a literal 1 gcc folds it back
 * into `c ? dy[i] : dy[i] * s` and reads dy with a masked load per arm
 * (elu's VJP at 4096², 1 thread: 10.3-14.5 -> 5.9-7.9 ms). */
extern const volatile double tg_ew_one;
#define TG_EW_FORWARD(fn, ...)                                                   \
    static tg_status fn(tg_node *n)                                              \
    {                                                                            \
        size_t len = TG_NUMEL(n->out);                                           \
        int nt_ = tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS);         \
        TG_DISPATCH(n->out->dtype, T, {                                          \
            const T *x = n->in[0]->data;                                         \
            T *y = n->out->data;                                                 \
            const T p0 = (T)n->p.f[0], p1 = (T)n->p.f[1];                        \
            (void)p0; (void)p1;                                                  \
            TG_PAR_FOR(nt_, (int64_t)len, 16, lo_, hi_, {                        \
                for (size_t i = (size_t)lo_; i < (size_t)hi_; i++) {             \
                    __VA_ARGS__;                                                 \
                }                                                                \
            });                                                                  \
        });                                                                      \
        return TG_OK;                                                            \
    }

/* Elements per scratch chunk of a streamed output (stream.h): 4 KiB of f32,
 * computed in L1, then stored around the caches. */
#define TG_STREAM_CHUNK 1024

/* With st (stream.h) set, run `...` once per chunk of [lo, hi)
 * (TG_STREAM_CHUNK elements; c_ is the chunk's first element, cn_ its
 * length) with `y` pointing at a scratch chunk that is then copied to dst
 * with streaming stores, and fence; without, run it once over the whole
 * range with `y` = dst + lo. `...`
 * indexes y from 0 and must offset its inputs by c_. With st, dst + lo
 * must be 64-byte aligned (a 64-byte aligned dst and lo a multiple of 16
 * elements: TG_PAR_FOR's grain). */
#define TG_STREAM_CHUNKS(T, st, dst, lo, hi, ...)                                \
    do {                                                                         \
        _Alignas(64) T buf_[TG_STREAM_CHUNK];                                    \
        /* not streamed: one chunk, the plain loop over [lo, hi) */             \
        const size_t cs_ = (st) ? TG_STREAM_CHUNK : (size_t)(hi) - (size_t)(lo); \
        for (size_t c_ = (size_t)(lo); c_ < (size_t)(hi); c_ += cs_) {           \
            size_t cn_ = (size_t)(hi) - c_ < cs_ ? (size_t)(hi) - c_ : cs_;       \
            T *y = (st) ? buf_ : (dst) + c_;                                     \
            __VA_ARGS__                                                          \
            if (st)                                                              \
                tg_stream_copy((dst) + c_, buf_, cn_ * sizeof(T));               \
        }                                                                        \
        if (st)                                                                  \
            tg_stream_fence();                                                   \
    } while (0)

/* TG_EW_FORWARD for ops whose arithmetic is cheap next to moving the data
 * (relu, neg, the tensor-scalar ops...): an output over 3/4 of the
 * last-level cache is written with streaming stores (stream.h; relu
 * 4096², f32, 1 thread: 3.4-4.3 ms against 5.4-6.4). Compute-bound ops
 * keep TG_EW_FORWARD: their loop runs slower cut into chunks (sigmoid
 * 6.3 -> 7.7 ms) and the stores are not what limits them; nor do the
 * 16-lane kernels below stream (measured: gelu 5.7 -> 6.7-7.1 ms,
 * softplus 5.0-5.2 -> 5.4-7.4, exp within noise).
 * Unlike TG_EW_FORWARD's, the body sees x and y offset to the current
 * chunk and i counting from 0 in it: `y[i] = f(x[i])` reads the same. */
#define TG_EW_FORWARD_ST(fn, ...)                                                \
    static tg_status fn(tg_node *n)                                              \
    {                                                                            \
        size_t len = TG_NUMEL(n->out);                                           \
        int nt_ = tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS);         \
        int st_ = tg_stream_wanted(n->out->data, len * tg_dtype_size(n->out->dtype)); \
        TG_DISPATCH(n->out->dtype, T, {                                          \
            const T p0 = (T)n->p.f[0], p1 = (T)n->p.f[1];                        \
            (void)p0; (void)p1;                                                  \
            TG_PAR_FOR(nt_, (int64_t)len, 16, lo_, hi_, {                        \
                TG_STREAM_CHUNKS(T, st_, (T *)n->out->data, lo_, hi_, {          \
                    const T *x = (const T *)n->in[0]->data + c_;                 \
                    for (size_t i = 0; i < cn_; i++) {                           \
                        __VA_ARGS__;                                             \
                    }                                                            \
                });                                                              \
            });                                                                  \
        });                                                                      \
        return TG_OK;                                                            \
    }

/* dst[i] = (T)0 + G for i in [lo, hi) (the statements `...` first, as
 * TG_EW_BACKWARD's LET),
 * computed a TG_STREAM_CHUNK at a time in L1 and stored with streaming
 * stores, then fenced: a fresh gradient over the streaming threshold
 * (stream.h) is not read back by its write-allocate; the next VJP reads it
 * from memory either way. dst + lo 64-byte aligned. */
#define TG_STREAM_FRESH(T, dst, lo, hi, G, ...)                                  \
    do {                                                                         \
        _Alignas(64) T fbuf_[TG_STREAM_CHUNK];                                   \
        for (size_t c_ = (lo); c_ < (hi); c_ += TG_STREAM_CHUNK) {               \
            size_t ce_ = (hi) - c_ < TG_STREAM_CHUNK ? (hi) : c_ + TG_STREAM_CHUNK; \
            for (size_t i = c_; i < ce_; i++) {                                  \
                __VA_ARGS__;                                                     \
                fbuf_[i - c_] = (T)0 + (T)(G);                                   \
            }                                                                    \
            tg_stream_copy((dst) + c_, fbuf_, (ce_ - c_) * sizeof(T));           \
        }                                                                        \
        tg_stream_fence();                                                       \
    } while (0)

/* TG_EW_BACKWARD(fn, LET, G): for every element i, run the statements LET
 * (may be empty) and then dx[i] += G, or dx[i] = (T)0 + G when the sweep
 * hands over a fresh gradient (tg_vjp_overwrites; declare the op's
 * `.overwrites = 1`): the same bits without reading dx (streamed over the
 * threshold, TG_STREAM_FRESH). Write a subtracted
 * contribution as G = -(...): d + -(e) is d - e exactly. */
#define TG_EW_BACKWARD(fn, LET, G)                                               \
    static void fn(tg_node *n)                                                   \
    {                                                                            \
        size_t len = TG_NUMEL(n->out);                                           \
        int nt_ = tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS);         \
        int ow_ = tg_vjp_overwrites(n, 0);                                       \
        const double one_d_ = tg_ew_one;                                         \
        const uint64_t ones = tg_ew_ones;                                        \
        int st_ = ow_ && tg_stream_wanted(n->in[0]->grad, len * tg_dtype_size(n->out->dtype)); \
        TG_DISPATCH(n->out->dtype, T, {                                          \
            const T *x = n->in[0]->data, *y = n->out->data, *dy = n->out->grad;  \
            T *dx = n->in[0]->grad;                                              \
            const T p0 = (T)n->p.f[0], p1 = (T)n->p.f[1], one = (T)one_d_;         \
            (void)x; (void)y; (void)p0; (void)p1; (void)one; (void)ones;        \
            if (dx && st_)                                                       \
                TG_PAR_FOR(nt_, (int64_t)len, 16, lo_, hi_, {                    \
                    TG_STREAM_FRESH(T, dx, (size_t)lo_, (size_t)hi_, G, LET);    \
                });                                                              \
            else if (dx && ow_)                                                  \
                TG_PAR_FOR(nt_, (int64_t)len, 16, lo_, hi_, {                    \
                    for (size_t i = (size_t)lo_; i < (size_t)hi_; i++) {         \
                        LET;                                                     \
                        dx[i] = (T)0 + (G);                                      \
                    }                                                            \
                });                                                              \
            else if (dx)                                                         \
                TG_PAR_FOR(nt_, (int64_t)len, 16, lo_, hi_, {                    \
                    for (size_t i = (size_t)lo_; i < (size_t)hi_; i++) {         \
                        LET;                                                     \
                        dx[i] += (G);                                            \
                    }                                                            \
                });                                                              \
        });                                                                      \
    }

/* Elementwise cost: `f` flops per element forward, `b` backward (a libm
 * call counts as ~10); bytes: forward reads x and writes y, backward reads dy
 * and one saved value (x or y) and reads+writes dx (the accumulating VJP,
 * as the benchmark times it). */
static inline void tg_ew_cost(const tg_node *n, tg_op_cost *c, double f, double b)
{
    double e = (double)n->out->numel, w = (double)tg_dtype_size(n->out->dtype);
    c->fwd_flops = f * e;
    c->fwd_bytes = 2 * e * w;
    c->bwd_flops = b * e;
    c->bwd_bytes = 4 * e * w;
}

/* Sample shapes of the elementwise ops: variant v < TG_EW_N_SHAPES is a 3x5
 * matrix, a 2x1x4 tensor (a size-1 dim) or a scalar (ndim 0). Writes the
 * shape, returns its ndim. */
#define TG_EW_N_SHAPES 3
static inline int tg_ew_sample_shape(int v, int64_t shape[3])
{
    static const int64_t s[TG_EW_N_SHAPES][3] = { {3, 5}, {2, 1, 4}, {1} };
    static const int nd[TG_EW_N_SHAPES] = { 2, 3, 0 };
    memcpy(shape, s[v], sizeof s[v]);
    return nd[v];
}

/* One input of shape variant v: uniform in [lo, hi), or, with gap > 0,
 * gap <= |x| < hi (off a kink at 0). TG_ERR_ARG for v out of range. */
static inline tg_status tg_ew_sample(tg_node *n, tg_dtype dt, int v, double lo, double hi, double gap)
{
    if (v < 0 || v >= TG_EW_N_SHAPES)
        return TG_ERR_ARG;
    int64_t sh[3];
    int nd = tg_ew_sample_shape(v, sh);
    n->n_in = 1;
    n->in[0] = gap > 0 ? tg_sample_away0(n, dt, nd, sh, hi, gap) : tg_sample_uniform(n, dt, nd, sh, lo, hi);
    return tg_sample_done(n);
}

/* Where vmath16.h has a 16-lane f32 kernel (AVX-512), TG_FORWARD_F32X16 defines
 * `fn` to run it on f32 (the tail masked, so every element goes through the
 * same code whatever the thread split) and `fallback` on f64. */
#ifdef TG_VM16
#define TG_FORWARD_F32X16(fn, vf, fallback)                                          \
    static tg_status fn(tg_node *n)                                                  \
    {                                                                                \
        if (n->out->dtype != TG_F32)                                                 \
            return fallback(n);                                                      \
        size_t len = TG_NUMEL(n->out);                                               \
        int nt_ = tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS);             \
        const float *x = n->in[0]->data;                                             \
        float *y = n->out->data;                                                     \
        TG_PAR_FOR(nt_, (int64_t)len, 16, lo_, hi_, {                                \
            size_t i = (size_t)lo_;                                                  \
            for (; i + 16 <= (size_t)hi_; i += 16)                                   \
                _mm512_storeu_ps(y + i, vf(_mm512_loadu_ps(x + i)));                 \
            if (i < (size_t)hi_) {                                                   \
                __mmask16 m = (__mmask16)((1u << ((size_t)hi_ - i)) - 1);            \
                _mm512_mask_storeu_ps(y + i, m, vf(_mm512_maskz_loadu_ps(m, x + i))); \
            }                                                                        \
        });                                                                          \
        return TG_OK;                                                                \
    }
#endif

/* A forward with a 16-lane f32 kernel `vf` where the build has one, and the
 * loop body `...` (TG_EW_FORWARD's) for f64 and for builds without. */
#ifdef TG_VM16
#define TG_EW_FORWARD_X16(fn, vf, ...) TG_EW_FORWARD(fn##_any, __VA_ARGS__) TG_FORWARD_F32X16(fn, vf, fn##_any)
#else
#define TG_EW_FORWARD_X16(fn, vf, ...) TG_EW_FORWARD(fn, __VA_ARGS__)
#endif

#endif
