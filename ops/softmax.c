/* softmax.c — softmax and log-softmax over one axis (any axis, negative
 * allowed), computed stably by subtracting the slice's max, with one exp per
 * element (vmath.h, vectorised) and the sums in double (over lanes along a
 * contiguous row; an f32 row goes through smx_row.h). Cross-entropy on
 * logits lives in loss.c, logsumexp in reduce.c.
 *
 * Layout shared by both ops: the axis splits x into (outer, A, inner), A the
 * axis length; slice (o, i) holds x[(o * A + a) * inner + i], a < A.
 * inner == 1 (the last axis) is a contiguous row; inner > 1 is handled a row
 * of `inner` slices at a time, so memory is read contiguously either way.
 * Params: p.i[0] = axis as given (normalised by the shape function).
 * Threads (large inputs) take blocks of slices; each slice is computed by
 * one thread exactly as the serial loop does (smx_threads).
 */
#include "ops_common.h"
#include "smx_row.h"

typedef struct smx_layout {
    int64_t outer, A, inner;
} smx_layout;

static tg_status smx_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    const tg_tensor *x = n->in[0];
    int axis;
    /* A scalar is a slice of one: axis 0 or -1 (as PyTorch). */
    if (!(x->ndim == 0 && n->p.i[0] == -1) && (s = tg_norm_axis(n, n->p.i[0], x->ndim, &axis)) != TG_OK)
        return s;
    tg_shape_like(n, 0, dt, ndim, shape);
    return TG_OK;
}

static smx_layout smx_layout_of(const tg_node *n)
{
    const tg_tensor *x = n->in[0];
    smx_layout L = { 1, 1, 1 };
    int64_t a = n->p.i[0] < 0 ? n->p.i[0] + x->ndim : n->p.i[0];
    for (int k = 0; k < x->ndim; k++) {
        if (k < a)
            L.outer *= x->shape[k];
        else if (k == a)
            L.A = x->shape[k];
        else
            L.inner *= x->shape[k];
    }
    return L;
}

/* Scratch of `k` * inner doubles for the inner > 1 kernels (NULL: error set). */
static double *smx_work(tg_node *n, const smx_layout *L, int k)
{
    return tg_node_scratch(n, (size_t)k * (size_t)(L->inner ? L->inner : 1) * sizeof(double));
}

/* Threads for a pass over the op's slices: by blocks of `outer` (each
 * thread its own scratch), or, when there are too few of those, by ranges
 * of the `inner` slices of each block (*by_inner; the threads share the
 * scratch, each using its own indices). Every slice is computed by one
 * thread exactly as in the serial loop. */
static int smx_threads(const tg_node *n, const smx_layout *L, int *by_inner)
{
    int nt = tg_par_threads(n->ctx, (double)(L->outer * L->A * L->inner), TG_PAR_MIN_ELEMS);
    *by_inner = 0;
    if (nt <= 1 || L->outer >= nt)
        return nt < L->outer ? nt : (int)(L->outer ? L->outer : 1);
    if (L->inner < 16 * (int64_t)nt)
        return L->outer > 1 ? (int)L->outer : 1;
    *by_inner = 1;
    return nt;
}

/* How an f32 softmax or log_softmax writes y, large (stream.h) and in
 * contiguous rows of a multiple of 16 (each row 64-byte aligned), with
 * AVX-512: rows of SMX_STREAM_MIN or more with streaming stores, each
 * row's during the next row's exps (smx_rows_streamed_f32: 2); shorter
 * ones, log_softmax's only, streamed after the row's exps (1); else
 * ordinary stores (0). Shorter rows lose with the first (softmax
 * 16384x1024, 1 thread, standalone: 7.0 ms either way; 8192x2048 7.5 ->
 * 7.3; 4096x4096 7.7 -> 6.0): a row's stores then lag its exps by too
 * little. */
#define SMX_STREAM_MIN 2048
static int smx_streamed(const tg_node *n, const smx_layout *L)
{
#if defined(TG_VM16)
    if (L->inner != 1 || L->A % 16 || n->out->dtype != TG_F32 ||
        !tg_stream_wanted(n->out->data, (size_t)n->out->numel * sizeof(float)))
        return 0;
    return L->A >= SMX_STREAM_MIN ? 2 : 1;
#else
    (void)n; (void)L;
    return 0;
#endif
}

/* The ranges of unit range [u0, u1) in slice terms. */
#define SMX_RANGES_(L, by_inner, u0, u1, o0, o1, i0, i1)                         \
    const int64_t o0 = (by_inner) ? 0 : (u0), o1 = (by_inner) ? (L).outer : (u1); \
    const int64_t i0 = (by_inner) ? (u0) : 0, i1 = (by_inner) ? (u1) : (L).inner;

/* m[i] = max over slice (o, i) of the block xo; NaN propagates into m. An
 * all -inf (or a +inf) slice then gives NaN outputs, as in PyTorch. */
#define SMX_MAX(T, L, xo, m, i0, i1) do {                                       \
        for (int64_t i_ = (i0); i_ < (i1); i_++)                                \
            (m)[i_] = -INFINITY;                                                \
        for (int64_t a_ = 0; a_ < (L).A; a_++) {                                \
            const T *row_ = (xo) + a_ * (L).inner;                              \
            for (int64_t i_ = (i0); i_ < (i1); i_++) {                          \
                double v_ = (double)row_[i_];                                   \
                if (v_ != v_ || v_ > (m)[i_])                                   \
                    (m)[i_] = v_;                                               \
            }                                                                   \
        }                                                                       \
    } while (0)

/* The VJP of both ops: for each slice, S = the sum over the axis of RED (in
 * double: a product of two floats is exact there), then dx[k] += (T)(UPD)
 * for every element k of the slice, UPD in T with S rounded to T (f32:
 * float arithmetic, as PyTorch's; in double it took 1.3x as long at 4096²:
 * converting every operand cost more than the memory traffic it overlaps
 * with; as in PyTorch, a row whose sum of dy overflows f32 gives NaN where
 * exp(y) underflows to 0). RED and UPD see y[k] and dy[k], UPD also S. A
 * contiguous row (inner == 1) sums into one double; otherwise a row of
 * `inner` slices at a time sums into the scratch acc[i], so memory is read
 * in order either way. Into a fresh gradient (tg_vjp_overwrites)
 * dx[k] = (T)0 + (T)(UPD), dx unread. */
#define SMX_BACKWARD(fn, RED, UPD)                                              \
    static void fn(tg_node *n)                                                  \
    {                                                                           \
        if (!n->in[0]->grad)                                                    \
            return;                                                             \
        smx_layout L = smx_layout_of(n);                                        \
        int by_inner, nt = smx_threads(n, &L, &by_inner);                       \
        double *acc0 = smx_work(n, &L, by_inner ? 1 : nt);                      \
        if (!acc0)                                                              \
            return;                                                             \
        const int ow_ = tg_vjp_overwrites(n, 0);                                \
        TG_DISPATCH(n->out->dtype, T, {                                         \
            const T *y = n->out->data, *dy = n->out->grad;                      \
            T *dx = n->in[0]->grad;                                             \
            TG_PAR_FOR(nt, by_inner ? L.inner : L.outer, 1, u0, u1, {           \
            SMX_RANGES_(L, by_inner, u0, u1, o0, o1, i0, i1)                    \
            double *acc = acc0 + (by_inner ? 0 : (size_t)TG_PAR_PART * (size_t)L.inner); \
            for (int64_t o = o0; o < o1; o++) {                                 \
                const int64_t base = o * L.A * L.inner;                         \
                if (L.inner == 1) {                                             \
                    double S;                                                   \
                    TG_LANE_SUM(S, k, base, base + L.A, RED);                   \
                    for (int64_t k = base; k < base + L.A; k++)                 \
                        dx[k] = (ow_ ? (T)0 : dx[k]) + (T)(UPD);                \
                    continue;                                                   \
                }                                                               \
                for (int64_t i = i0; i < i1; i++)                               \
                    acc[i] = 0;                                                 \
                for (int64_t a = 0; a < L.A; a++)                               \
                    for (int64_t i = i0; i < i1; i++) {                         \
                        const int64_t k = base + a * L.inner + i;               \
                        acc[i] += RED;                                          \
                    }                                                           \
                for (int64_t a = 0; a < L.A; a++)                               \
                    for (int64_t i = i0; i < i1; i++) {                         \
                        const int64_t k = base + a * L.inner + i;               \
                        const double S = acc[i];                                \
                        dx[k] = (ow_ ? (T)0 : dx[k]) + (T)(UPD);                \
                    }                                                           \
            }                                                                   \
            });                                                                 \
        });                                                                     \
    }

/* One f32 row of softmax (lf = 0) or log_softmax (lf = 1), where
 * smx_rows_streamed_f32 does not apply. xn: the next row, prefetched (or
 * NULL). st: log_softmax writes y with streaming stores
 * (stream.h; y 64-byte aligned) instead of prefetching it for writing
 * (4096², 1 thread, alternating with the previous build: 6.6-7.3 ms
 * against 7.3-8.1). Measured for softmax: its exps into a scratch row,
 * then y = e / sum streamed, 8.8-9.1 ms against 7.3-7.7 (the stores of a
 * row leave in one burst after its exps; the core waits for them); the
 * same stores spread over the next row's exps pay (smx_rows_streamed_f32). */
static void smx_row_f32(const float *restrict x, float *restrict y, int64_t A, int lf,
                        const float *xn, int st)
{
    float m;
    if (!lf) {
        smx_softmax_row_f32(x, y, A, xn, &m);
        return;
    }
    double s = smx_row_sum_f32(x, A, xn, st ? NULL : y, &m);   /* y prefetched for writing */
    /* NOTE: in float, as PyTorch: x - m <= 0 and -log(s) <= 0, so nothing
     * cancels; within ~1.5 ulp of the value in double. */
    float ls = (float)log(s);
    int64_t a = 0;
#if defined(TG_VM16)
    if (st) {
        const __m512 vm = _mm512_set1_ps(m), vls = _mm512_set1_ps(ls);
        for (; a + 16 <= A; a += 16)
            _mm512_stream_ps(y + a, _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + a), vm), vls));
    }
#endif
    for (; a < A; a++)
        y[a] = (x[a] - m) - ls;
}

/* max, subtract, exp (~10), sum, scale forward; the VJP reads y and dy and
 * reads + writes dx. */
static void smx_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 14, 4); }

/* Samples: 0: 3x5 over axis -1; 1: 4x3 over axis 0; 2: 2x3x4 over axis 1
 * (a middle axis); 3: 5x1 over axis -1 (a size-1 axis: y = 1, dx = 0). */
static tg_status smx_sample(tg_node *n, tg_dtype dt, int v)
{
    static const int64_t shapes[4][3] = { {3, 5}, {4, 3}, {2, 3, 4}, {5, 1} };
    static const int nds[4] = { 2, 2, 3, 2 };
    static const int64_t axes[4] = { -1, 0, 1, -1 };
    if (v < 0 || v > 3)
        return TG_ERR_ARG;
    n->n_in = 1;
    n->p.i[0] = axes[v];
    n->in[0] = tg_sample_uniform(n, dt, nds[v], shapes[v], -3, 3);
    return tg_sample_done(n);
}

static tg_tensor *smx_apply(tg_ctx *ctx, const tg_op_def *def, tg_tensor *x, int axis)
{
    tg_op_params p;
    memset(&p, 0, sizeof p);
    p.i[0] = axis;
    return tg_apply(ctx, def, &x, 1, &p, NULL);
}

/* ---- softmax --------------------------------------------------------------
 * y = exp(x - m) / sum_axis exp(x - m),  m = max over the axis
 * x, y: any shape (same); the axis may be negative.
 * VJP: dx += y * (dy - sum_axis(dy * y))   (reuses the output y)
 * Stable for logits of +-1e4: softmax([1e4, 0, -1e4]) = [1, 0, 0], VJP finite.
 */
static tg_status softmax_forward(tg_node *n)
{
    smx_layout L = smx_layout_of(n);
    int by_inner, nt = smx_threads(n, &L, &by_inner);
    int st = smx_streamed(n, &L) == 2;
    double *work = smx_work(n, &L, 2 * (by_inner ? 1 : nt));
    float *scr = st ? tg_node_scratch(n, (size_t)nt * SMX_SCRATCH(L.A) * sizeof(float)) : NULL;
    if (!work || (st && !scr))
        return tg_ctx_status(n->ctx);
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        T *y = n->out->data;
        TG_PAR_FOR(nt, by_inner ? L.inner : L.outer, 1, u0, u1, {
        SMX_RANGES_(L, by_inner, u0, u1, o0, o1, i0, i1)
        double *m = work + (by_inner ? 0 : (size_t)TG_PAR_PART * 2 * (size_t)L.inner), *s = m + L.inner;
        if (st) {
            smx_rows_streamed_f32((const float *)x + o0 * L.A, (float *)y + o0 * L.A, o1 - o0, L.A, 0,
                                  scr + (size_t)TG_PAR_PART * SMX_SCRATCH(L.A));
            tg_stream_fence();
        } else
        for (int64_t o = o0; o < o1; o++) {
            const T *xo = x + o * L.A * L.inner;
            T *yo = y + o * L.A * L.inner;
            if (L.inner == 1 && sizeof(T) == sizeof(float)) {
                smx_row_f32((const float *)xo, (float *)yo, L.A, 0,
                            o + 1 < o1 ? (const float *)(xo + L.A) : NULL, 0);
                continue;
            }
            if (L.inner == 1) {                      /* a contiguous row */
                T mt = (T)tg_row_ext(xo, L.A, 1);
                for (int64_t a = 0; a < L.A; a++)
                    yo[a] = VM(exp, (T)(xo[a] - mt));
                double inv = 1.0 / tg_row_sum(yo, L.A);
                for (int64_t a = 0; a < L.A; a++)
                    yo[a] = (T)((double)yo[a] * inv);
                continue;
            }
            SMX_MAX(T, L, xo, m, i0, i1);
            for (int64_t i = i0; i < i1; i++)
                s[i] = 0;
            for (int64_t a = 0; a < L.A; a++)        /* y = exp(x - m), s = sum y */
                for (int64_t i = i0; i < i1; i++) {
                    int64_t k = a * L.inner + i;
                    yo[k] = VM(exp, (T)(xo[k] - (T)m[i]));
                    s[i] += (double)yo[k];
                }
            for (int64_t i = i0; i < i1; i++)
                s[i] = 1.0 / s[i];
            for (int64_t a = 0; a < L.A; a++)
                for (int64_t i = i0; i < i1; i++) {
                    int64_t k = a * L.inner + i;
                    yo[k] = (T)((double)yo[k] * s[i]);
                }
        }
        });
    });
    return TG_OK;
}

SMX_BACKWARD(softmax_backward, (double)dy[k] * (double)y[k], y[k] * (dy[k] - (T)S))

const tg_op_def tg_op_softmax_def = {
    .name = "softmax", .n_in = 1, .overwrites = 1,
    .shape = smx_shape, .forward = softmax_forward, .backward = softmax_backward,
    .sample = smx_sample, .n_samples = 4, .cost = smx_cost,
};

tg_tensor *tg_softmax(tg_ctx *ctx, tg_tensor *x, int axis)
{
    return smx_apply(ctx, &tg_op_softmax_def, x, axis);
}

/* ---- log_softmax ----------------------------------------------------------
 * y = (x - m) - log(sum_axis exp(x - m)),  m = max over the axis
 * x, y: any shape (same); the axis may be negative.
 * VJP: dx += dy - exp(y) * sum_axis(dy)    (exp(y) is the softmax; reuses y)
 * Stable for logits of +-1e4: log_softmax([1e4, 0, -1e4]) = [0, -1e4, -2e4].
 */
static tg_status log_softmax_forward(tg_node *n)
{
    smx_layout L = smx_layout_of(n);
    int by_inner, nt = smx_threads(n, &L, &by_inner);
    int how = smx_streamed(n, &L), st = how == 2;
    double *work = smx_work(n, &L, 2 * (by_inner ? 1 : nt));
    if (!work)
        return tg_ctx_status(n->ctx);
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        T *y = n->out->data;
        TG_PAR_FOR(nt, by_inner ? L.inner : L.outer, 1, u0, u1, {
        SMX_RANGES_(L, by_inner, u0, u1, o0, o1, i0, i1)
        double *m = work + (by_inner ? 0 : (size_t)TG_PAR_PART * 2 * (size_t)L.inner), *s = m + L.inner;
        if (st) {
            smx_rows_streamed_f32((const float *)x + o0 * L.A, (float *)y + o0 * L.A, o1 - o0, L.A, 1, NULL);
            tg_stream_fence();
        } else
        for (int64_t o = o0; o < o1; o++) {
            const T *xo = x + o * L.A * L.inner;
            T *yo = y + o * L.A * L.inner;
            if (L.inner == 1 && sizeof(T) == sizeof(float)) {
                smx_row_f32((const float *)xo, (float *)yo, L.A, 1,
                            o + 1 < o1 ? (const float *)(xo + L.A) : NULL, how == 1);
                continue;
            }
            if (L.inner == 1) {                      /* a contiguous row */
                double mx = tg_row_ext(xo, L.A, 1);
                for (int64_t a = 0; a < L.A; a++)    /* y holds exp(x - m) for the sum */
                    yo[a] = VM(exp, (T)(xo[a] - (T)mx));
                double ls = log(tg_row_sum(yo, L.A));
                for (int64_t a = 0; a < L.A; a++)
                    yo[a] = (T)(((double)xo[a] - mx) - ls);
                continue;
            }
            SMX_MAX(T, L, xo, m, i0, i1);
            for (int64_t i = i0; i < i1; i++)
                s[i] = 0;
            for (int64_t a = 0; a < L.A; a++)
                for (int64_t i = i0; i < i1; i++) {
                    int64_t k = a * L.inner + i;
                    s[i] += (double)VM(exp, (T)(xo[k] - (T)m[i]));
                }
            for (int64_t i = i0; i < i1; i++)
                s[i] = log(s[i]);
            for (int64_t a = 0; a < L.A; a++)
                for (int64_t i = i0; i < i1; i++) {
                    int64_t k = a * L.inner + i;
                    yo[k] = (T)(((double)xo[k] - m[i]) - s[i]);
                }
        }
        if (how == 1)
            tg_stream_fence();
        });
    });
    return TG_OK;
}

/* exp(y) with y = log_softmax(x) <= 0: the exp for x <= 0 (in f32 one
 * scaling and a fitted polynomial, fewer operations than the general one) */
SMX_BACKWARD(log_softmax_backward, (double)dy[k], dy[k] - VM(exp_nonpos, y[k]) * (T)S)

const tg_op_def tg_op_log_softmax_def = {
    .name = "log_softmax", .n_in = 1, .overwrites = 1,
    .shape = smx_shape, .forward = log_softmax_forward, .backward = log_softmax_backward,
    .sample = smx_sample, .n_samples = 4, .cost = smx_cost,
};

tg_tensor *tg_log_softmax(tg_ctx *ctx, tg_tensor *x, int axis)
{
    return smx_apply(ctx, &tg_op_log_softmax_def, x, axis);
}
