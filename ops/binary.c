/* binary.c — elementwise ops of two tensors with NumPy broadcasting (add,
 * sub, mul, div, pow, maximum, minimum), their tensor-scalar forms, and
 * where(mask, a, b). Each op is one block: banner with math and VJP, forward,
 * backward, sample, cost, descriptor, public wrapper. Comparisons producing
 * masks and one-input ops live elsewhere (unary.c, activation.c).
 *
 * Broadcasting VJPs "un-broadcast": a stretched input receives the sum of the
 * upstream gradient over the axes it was stretched along, in an order fixed
 * by the shapes alone (row-major over the output; 8 fixed lanes along an
 * inner row the input is stretched over), so results are bit-identical from
 * run to run. */
#include "ops_common.h"
#include "ew_layout.h"

/* ---- shared pieces of the two-tensor ops -------------------------------- */

static tg_status bin_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s = tg_chk_same_dtype(n, 0, 1);
    if (s != TG_OK)
        return s;
    *dt = n->in[0]->dtype;
    return tg_broadcast_shape(n, n->in[0], n->in[1], ndim, shape);
}

static void bin_layout(const tg_node *n, ew_layout *L)
{
    const tg_tensor *ops[2] = { n->in[0], n->in[1] };
    ew_layout_init(L, n->out, ops, 2);
}

/* Forward of a binary op: y = EXPR, where EXPR names the operand values
 * `a` and `b`. With STREAM (BIN_FORWARD_ST, for cheap EXPRs), equal shapes
 * (the flat layout) and an output over 3/4 of the last-level cache go
 * through streaming stores (stream.h; add 4096², f32, 1 thread: min
 * 9.0-9.2 -> 5.6-6.0 ms). */
#define BIN_FORWARD_(fn, EXPR, STREAM)                                             \
    static tg_status fn(tg_node *n)                                                \
    {                                                                              \
        ew_layout L;                                                               \
        bin_layout(n, &L);                                                         \
        int nt = EW_THREADS_(n, &L);                                               \
        int st = (STREAM) && L.flat &&                                             \
                 tg_stream_wanted(n->out->data, (size_t)L.numel * tg_dtype_size(n->out->dtype)); \
        TG_DISPATCH(n->out->dtype, T, {                                            \
            const T *A = n->in[0]->data, *B = n->in[1]->data;                      \
            T *Y = n->out->data;                                                   \
            if (st)                                                                \
                TG_PAR_FOR(nt, L.numel, 16, lo_, hi_, {                            \
                    TG_STREAM_CHUNKS(T, 1, Y, lo_, hi_, {                          \
                        const T *A_ = A + c_, *B_ = B + c_;                        \
                        for (size_t i_ = 0; i_ < cn_; i_++) {                      \
                            const T a = A_[i_], b = B_[i_];                        \
                            y[i_] = (T)(EXPR);                                     \
                        }                                                          \
                    });                                                            \
                });                                                                \
            else                                                                   \
                EW_FOR(&L, nt, 2, { const T a = A[i0], b = B[i1]; Y[io] = (T)(EXPR); }); \
        });                                                                        \
        return TG_OK;                                                              \
    }
#define BIN_FORWARD(fn, EXPR)    BIN_FORWARD_(fn, EXPR, 0)
#define BIN_FORWARD_ST(fn, EXPR) BIN_FORWARD_(fn, EXPR, 1)

/* Whether a binary VJP may write both gradients in one pass over dy: equal
 * shapes (no un-broadcast), two distinct gradients, both accumulated or
 * both fresh. One pass reads dy (and the operands) once instead of twice:
 * add 4096², f32, 1 thread, both accumulated: see the commit. */
static int bin_same_shapes(const tg_node *n, const ew_layout *L)
{
    return L->flat && n->in[0]->numel == L->numel && n->in[1]->numel == L->numel;
}
static int bin_both_ok(const tg_node *n, const ew_layout *L)
{
    return bin_same_shapes(n, L) && n->in[0]->grad && n->in[1]->grad && !tg_node_input_shared(n, 0) &&
           tg_vjp_overwrites(n, 0) == tg_vjp_overwrites(n, 1);
}

/* Backward of a binary op: da += GA, db += GB (each un-broadcast), where GA
 * and GB name the operand values `a`, `b`, the output `y` and the upstream
 * gradient `g`. Each input's contribution is accumulated on its own, so
 * op(x, x) gets both; a fresh gradient is written (EW_ACC's OW). With equal
 * shapes (bin_both_ok) both in one pass, each element by the same
 * expression either way: the same bits. */
#define BIN_VALS                                                                   \
    const T a = A[i0], b = B[i1], y = Y[io], g = DY[io];                           \
    (void)a; (void)b; (void)y; (void)g;
#define BIN_BOTH(lo, hi, GA, GB, OP)                                               \
    for (int64_t io = (lo); io < (hi); io++) {                                     \
        const int64_t i0 = io, i1 = io;                                            \
        BIN_VALS                                                                   \
        DA[io] OP (T)(GA);                                                         \
        DB[io] OP (T)(GB);                                                         \
    }
#define BIN_BACKWARD(fn, GA, GB)                                                   \
    static void fn(tg_node *n)                                                     \
    {                                                                              \
        ew_layout L;                                                               \
        bin_layout(n, &L);                                                         \
        int nt = EW_THREADS_(n, &L);                                               \
        int both = bin_both_ok(n, &L), ow = both && tg_vjp_overwrites(n, 0);       \
        size_t bytes = (size_t)L.numel * tg_dtype_size(n->out->dtype);             \
        int st = ow && tg_stream_wanted(n->in[0]->grad, bytes) &&                  \
                 tg_stream_wanted(n->in[1]->grad, bytes);                          \
        const uint64_t ones = tg_ew_ones;                                          \
        const double one_d_ = tg_ew_one;                                           \
        TG_DISPATCH(n->out->dtype, T, {                                            \
            const T one = (T)one_d_;                                               \
            (void)one; (void)ones;                                                 \
            const T *A = n->in[0]->data, *B = n->in[1]->data;                      \
            const T *Y = n->out->data, *DY = n->out->grad;                         \
            T *da = n->in[0]->grad, *db = n->in[1]->grad;                          \
            T *restrict DA = da, *restrict DB = db;                                \
            if (st)                                                                \
                TG_PAR_FOR(nt, L.numel, 16, lo_, hi_, {                            \
                    _Alignas(64) T fa_[TG_STREAM_CHUNK], fb_[TG_STREAM_CHUNK];     \
                    for (int64_t c_ = lo_; c_ < hi_; c_ += TG_STREAM_CHUNK) {      \
                        int64_t ce_ = hi_ - c_ < TG_STREAM_CHUNK ? hi_ : c_ + TG_STREAM_CHUNK; \
                        for (int64_t io = c_; io < ce_; io++) {                    \
                            const int64_t i0 = io, i1 = io;                        \
                            BIN_VALS                                               \
                            fa_[io - c_] = (T)0 + (T)(GA);                         \
                            fb_[io - c_] = (T)0 + (T)(GB);                         \
                        }                                                          \
                        tg_stream_copy(DA + c_, fa_, (size_t)(ce_ - c_) * sizeof(T)); \
                        tg_stream_copy(DB + c_, fb_, (size_t)(ce_ - c_) * sizeof(T)); \
                    }                                                              \
                    tg_stream_fence();                                             \
                });                                                                \
            else if (ow)                                                           \
                TG_PAR_FOR(nt, L.numel, 16, lo_, hi_, { BIN_BOTH(lo_, hi_, (T)0 + (T)(GA), (T)0 + (T)(GB), =) }); \
            else if (both)                                                         \
                TG_PAR_FOR(nt, L.numel, 16, lo_, hi_, { BIN_BOTH(lo_, hi_, GA, GB, +=) }); \
            else {                                                                 \
                if (da)                                                            \
                    EW_ACC(&L, nt, 2, 0, T, da, tg_vjp_overwrites(n, 0), n->in[0]->numel, GA, BIN_VALS); \
                if (db)                                                            \
                    EW_ACC(&L, nt, 2, 1, T, db, tg_vjp_overwrites(n, 1), n->in[1]->numel, GB, BIN_VALS); \
            }                                                                      \
        });                                                                        \
    }

/* Value ranges of the samples: plain, divisor away from 0, pow base in
 * [0.5, 2], and maximum/minimum values that never tie. */
enum { S_PLAIN, S_DIV, S_POW, S_NOTIE };

/* Values on a grid (m + off) * 0.2, m in [-10, 10]: operands drawn with
 * offsets 0.25 and 0.75 differ by at least 0.1, so they never tie. */
static tg_tensor *sample_grid(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape, double off)
{
    tg_tensor *t = tg_tensor_new(n->ctx, dt, ndim, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            tg_tensor_set(t, i, ((double)tg_rng_below(tg_ctx_rng(n->ctx), 21) - 10 + off) * 0.2);
    return t;
}

/* Variants: equal shapes; (2,3,4) with (3,1); (4,1,3) with (5,1); a scalar
 * (ndim 0) with (2,3). */
static tg_status bin_sample(tg_node *n, tg_dtype dt, int v, int kind)
{
    static const int nds[4][2] = { {2, 2}, {3, 2}, {3, 2}, {0, 2} };
    static const int64_t shapes[4][2][3] = {
        { {3, 4}, {3, 4} }, { {2, 3, 4}, {3, 1} }, { {4, 1, 3}, {5, 1} }, { {0}, {2, 3} },
    };
    if (v < 0 || v > 3)
        return TG_ERR_ARG;
    n->n_in = 2;
    for (int i = 0; i < 2; i++) {
        int nd = nds[v][i];
        const int64_t *sh = shapes[v][i];
        switch (kind) {
        case S_DIV:   n->in[i] = i ? tg_sample_away0(n, dt, nd, sh, 2, 0.5) : tg_sample_uniform(n, dt, nd, sh, -2, 2); break;
        case S_POW:   n->in[i] = i ? tg_sample_uniform(n, dt, nd, sh, -1.5, 1.5) : tg_sample_uniform(n, dt, nd, sh, 0.5, 2); break;
        case S_NOTIE: n->in[i] = sample_grid(n, dt, nd, sh, i ? 0.75 : 0.25); break;
        default:      n->in[i] = tg_sample_uniform(n, dt, nd, sh, -2, 2); break;
        }
        if (!n->in[i])
            return tg_ctx_status(n->ctx);
    }
    return TG_OK;
}

/* Cost: `f` flops per output element forward, `b` per output element and
 * differentiable input backward (the += included); every operand read once,
 * the output written once. The VJP reads dy, reads and writes each dx, and
 * reads the operands only when `reads` (add and sub never do). */
static void bin_cost_rw(const tg_node *n, tg_op_cost *c, double f, double b, int reads)
{
    double e = (double)n->out->numel, w = (double)tg_dtype_size(n->out->dtype);
    double in = 0;
    for (int i = 0; i < n->n_in; i++)
        in += (double)n->in[i]->numel;
    c->fwd_flops = f * e;
    c->fwd_bytes = (in + e) * w;
    c->bwd_flops = 2 * b * e;
    c->bwd_bytes = (e + (reads ? 3 : 2) * in) * w;
}

static void bin_cost(const tg_node *n, tg_op_cost *c, double f, double b) { bin_cost_rw(n, c, f, b, 1); }

static tg_tensor *bin_apply(tg_ctx *ctx, const tg_op_def *def, tg_tensor *a, tg_tensor *b)
{
    tg_tensor *in[2] = { a, b };
    return tg_apply(ctx, def, in, 2, NULL, NULL);
}

/* ---- add -----------------------------------------------------------------
 * y = a + b                a, b: any shapes that broadcast to y
 * VJP: da += sum_stretched(dy), db += sum_stretched(dy)
 */
BIN_FORWARD_ST(add_forward, a + b)
BIN_BACKWARD(add_backward, g, g)
static tg_status add_sample(tg_node *n, tg_dtype dt, int v) { return bin_sample(n, dt, v, S_PLAIN); }
static void add_cost(const tg_node *n, tg_op_cost *c) { bin_cost_rw(n, c, 1, 1, 0); }

const tg_op_def tg_op_add_def = {
    .name = "add", .n_in = 2, .overwrites = 3, .passes_grad = 3,
    .shape = bin_shape, .forward = add_forward, .backward = add_backward,
    .sample = add_sample, .n_samples = 4, .cost = add_cost,
};

tg_tensor *tg_add(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) { return bin_apply(ctx, &tg_op_add_def, a, b); }

/* ---- sub -----------------------------------------------------------------
 * y = a - b                a, b: any shapes that broadcast to y
 * VJP: da += sum_stretched(dy), db += sum_stretched(-dy)
 */
BIN_FORWARD_ST(sub_forward, a - b)
BIN_BACKWARD(sub_backward, g, -g)
static tg_status sub_sample(tg_node *n, tg_dtype dt, int v) { return bin_sample(n, dt, v, S_PLAIN); }
static void sub_cost(const tg_node *n, tg_op_cost *c) { bin_cost_rw(n, c, 1, 1, 0); }

const tg_op_def tg_op_sub_def = {
    .name = "sub", .n_in = 2, .overwrites = 3, .passes_grad = 1,
    .shape = bin_shape, .forward = sub_forward, .backward = sub_backward,
    .sample = sub_sample, .n_samples = 4, .cost = sub_cost,
};

tg_tensor *tg_sub(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) { return bin_apply(ctx, &tg_op_sub_def, a, b); }

/* ---- mul -----------------------------------------------------------------
 * y = a * b                a, b: any shapes that broadcast to y
 * VJP: da += sum_stretched(dy * b), db += sum_stretched(dy * a)
 */
BIN_FORWARD_ST(mul_forward, a * b)
BIN_BACKWARD(mul_backward, g * b, g * a)
static tg_status mul_sample(tg_node *n, tg_dtype dt, int v) { return bin_sample(n, dt, v, S_PLAIN); }
static void mul_cost(const tg_node *n, tg_op_cost *c) { bin_cost(n, c, 1, 2); }

const tg_op_def tg_op_mul_def = {
    .name = "mul", .n_in = 2, .overwrites = 3,
    .shape = bin_shape, .forward = mul_forward, .backward = mul_backward,
    .sample = mul_sample, .n_samples = 4, .cost = mul_cost,
};

tg_tensor *tg_mul(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) { return bin_apply(ctx, &tg_op_mul_def, a, b); }

/* ---- div -----------------------------------------------------------------
 * y = a / b                a, b: any shapes that broadcast to y
 * VJP: da += sum_stretched(dy / b), db += sum_stretched(-dy * (a / b) / b)
 * NOTE: IEEE semantics at b == 0 (inf or NaN), as PyTorch. a/b/b rather than
 * a/(b*b) keeps db finite where b*b would underflow.
 */
BIN_FORWARD_ST(div_forward, a / b)
BIN_BACKWARD(div_backward, g / b, -g * (a / b) / b)
static tg_status div_sample(tg_node *n, tg_dtype dt, int v) { return bin_sample(n, dt, v, S_DIV); }
static void div_cost(const tg_node *n, tg_op_cost *c) { bin_cost(n, c, 1, 3); }

const tg_op_def tg_op_div_def = {
    .name = "div", .n_in = 2, .overwrites = 3,
    .shape = bin_shape, .forward = div_forward, .backward = div_backward,
    .sample = div_sample, .n_samples = 4, .cost = div_cost,
};

tg_tensor *tg_div(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) { return bin_apply(ctx, &tg_op_div_def, a, b); }

/* ---- pow -----------------------------------------------------------------
 * y = a ^ b                a, b: any shapes that broadcast to y
 * VJP: da += sum_stretched(dy * b * a^(b-1))   (0 where b == 0)
 *      db += sum_stretched(dy * y * log(a))    (0 where a == 0 and b >= 0)
 * NOTE: as PyTorch: for a < 0, log(a) is NaN and so is db (y itself is NaN
 * unless b is an integer); the two masked cases avoid 0 * inf at a == 0.
 */
/* libm's pow and log per element (4096x4096 f32, 1 thread: forward 180-186
 * ms, VJP 314-320), except f32 operands of one shape (the flat layout): the
 * forward through tg_vm_powf_n, the VJP a chunk at a time through it and a
 * vectorised log (vmath.h; within an ulp of libm's double pow and log
 * rounded to float, IEEE's special cases exact). */
BIN_FORWARD(pow_forward_libm, pow(a, b))
BIN_BACKWARD(pow_backward_libm, b == 0 ? 0 : g * b * (T)pow(a, b - 1),
             a == 0 && b >= 0 ? 0 : g * y * (T)log(a))
static int pow_flat_f32(const tg_node *n)
{
    ew_layout L;
    bin_layout(n, &L);
    return n->out->dtype == TG_F32 && bin_same_shapes(n, &L);
}
static tg_status pow_forward(tg_node *n)
{
    if (!pow_flat_f32(n))
        return pow_forward_libm(n);
    const int64_t len = (int64_t)TG_NUMEL(n->out);
    const float *a = n->in[0]->data, *b = n->in[1]->data;
    float *y = n->out->data;
    TG_PAR_FOR(tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS), len, 16, lo, hi,
               { tg_vm_powf_n(a + lo, b + lo, y + lo, (size_t)(hi - lo)); });
    return TG_OK;
}
/* The flat f32 VJP over elements [0, m) of a chunk (m <= 256). */
static void pow_vjp_chunk(const float *a, const float *b, const float *y, const float *g,
                          float *da, int ow_a, float *db, int ow_b, size_t m)
{
    float t[256], p[256];
    if (da) {   /* da (+)= g b a^(b-1), 0 where b == 0 */
        for (size_t k = 0; k < m; k++)
            t[k] = b[k] - 1;
        tg_vm_powf_n(a, t, p, m);
        for (size_t k = 0; k < m; k++) {   /* the product first: no masked loads */
            float v = g[k] * b[k] * p[k];
            da[k] = (ow_a ? 0.0f : da[k]) + (b[k] == 0 ? 0.0f : v);
        }
    }
    if (db) {   /* db (+)= g y log(a), 0 where a == 0 and b >= 0 */
        for (size_t k = 0; k < m; k++)
            p[k] = tg_vm_logf(a[k]);
        for (size_t k = 0; k < m; k++) {
            float v = g[k] * y[k] * p[k];
            db[k] = (ow_b ? 0.0f : db[k]) + (a[k] == 0 && b[k] >= 0 ? 0.0f : v);
        }
    }
}
static void pow_backward(tg_node *n)
{
    if (!pow_flat_f32(n)) {
        pow_backward_libm(n);
        return;
    }
    const int64_t len = (int64_t)TG_NUMEL(n->out);
    const float *A = n->in[0]->data, *B = n->in[1]->data, *Y = n->out->data, *DY = n->out->grad;
    float *da = n->in[0]->grad, *db = n->in[1]->grad;
    const int ow_a = da && tg_vjp_overwrites(n, 0), ow_b = db && tg_vjp_overwrites(n, 1);
    TG_PAR_FOR(tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS), len, 16, lo, hi, {
        for (int64_t i = lo; i < hi; i += 256)
            pow_vjp_chunk(A + i, B + i, Y + i, DY + i, da ? da + i : NULL, ow_a, db ? db + i : NULL, ow_b,
                          hi - i < 256 ? (size_t)(hi - i) : 256);
    });
}
static tg_status pow_sample(tg_node *n, tg_dtype dt, int v) { return bin_sample(n, dt, v, S_POW); }
static void pow_cost(const tg_node *n, tg_op_cost *c) { bin_cost(n, c, 20, 20); }

const tg_op_def tg_op_pow_def = {
    .name = "pow", .n_in = 2, .overwrites = 3,
    .shape = bin_shape, .forward = pow_forward, .backward = pow_backward,
    .sample = pow_sample, .n_samples = 4, .cost = pow_cost,
};

tg_tensor *tg_pow(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) { return bin_apply(ctx, &tg_op_pow_def, a, b); }

/* ---- maximum -------------------------------------------------------------
 * y = max(a, b)            a, b: any shapes that broadcast to y; NaN propagates
 * VJP: dy goes to the larger input; on an exact tie (a == b) each gets dy/2
 *      (as PyTorch). Where a or b is NaN, both get dy (PyTorch's masks).
 */
BIN_FORWARD_ST(maximum_forward, (a != a || a > b) ? a : b)
/* g·(½ or `one`), kept or zeroed by TG_KEEP (ops_common.h): as selects
 * between g / 2, 0 and g, dy was read with a masked load per arm. Same
 * bits: g·0.5 = g / 2 exactly, g·1 = g. */
#define MAXMIN_GRAD(keep) TG_KEEP(g * (a == b ? (T)0.5 : one), (keep))
BIN_BACKWARD(maximum_backward, MAXMIN_GRAD(!(a < b)), MAXMIN_GRAD(!(a > b)))
static tg_status maximum_sample(tg_node *n, tg_dtype dt, int v) { return bin_sample(n, dt, v, S_NOTIE); }
static void maximum_cost(const tg_node *n, tg_op_cost *c) { bin_cost(n, c, 1, 2); }

const tg_op_def tg_op_maximum_def = {
    .name = "maximum", .n_in = 2, .overwrites = 3,
    .shape = bin_shape, .forward = maximum_forward, .backward = maximum_backward,
    .sample = maximum_sample, .n_samples = 4, .cost = maximum_cost,
};

tg_tensor *tg_maximum(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) { return bin_apply(ctx, &tg_op_maximum_def, a, b); }

/* ---- minimum -------------------------------------------------------------
 * y = min(a, b)            a, b: any shapes that broadcast to y; NaN propagates
 * VJP: dy goes to the smaller input; on an exact tie each gets dy/2.
 */
BIN_FORWARD_ST(minimum_forward, (a != a || a < b) ? a : b)
BIN_BACKWARD(minimum_backward, MAXMIN_GRAD(!(a > b)), MAXMIN_GRAD(!(a < b)))
static tg_status minimum_sample(tg_node *n, tg_dtype dt, int v) { return bin_sample(n, dt, v, S_NOTIE); }
static void minimum_cost(const tg_node *n, tg_op_cost *c) { bin_cost(n, c, 1, 2); }

const tg_op_def tg_op_minimum_def = {
    .name = "minimum", .n_in = 2, .overwrites = 3,
    .shape = bin_shape, .forward = minimum_forward, .backward = minimum_backward,
    .sample = minimum_sample, .n_samples = 4, .cost = minimum_cost,
};

tg_tensor *tg_minimum(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) { return bin_apply(ctx, &tg_op_minimum_def, a, b); }

/* ---- shared pieces of the tensor-scalar ops ------------------------------
 * One tensor x and a constant c in n->p.f[0] (rounded to x's dtype before
 * use, as PyTorch does with a Python scalar: p0 in the loops of
 * TG_EW_FORWARD/TG_EW_BACKWARD, ops_common.h). No broadcasting: y has x's
 * shape (tg_shape_as_input), and the cost is tg_ew_cost's. */

/* Variants: a (3,4) matrix with constant c0, a scalar (ndim 0) with c1.
 * Values uniform in [lo, hi), or |x| in [gap, hi) when gap > 0. */
static tg_status sc_sample(tg_node *n, tg_dtype dt, int v, double lo, double hi, double gap,
                           double c0, double c1)
{
    static const int64_t shape[2] = {3, 4};
    if (v < 0 || v > 1)
        return TG_ERR_ARG;
    int nd = v == 0 ? 2 : 0;
    n->n_in = 1;
    n->in[0] = gap > 0 ? tg_sample_away0(n, dt, nd, shape, hi, gap) : tg_sample_uniform(n, dt, nd, shape, lo, hi);
    n->p.f[0] = v == 0 ? c0 : c1;
    return n->in[0] ? TG_OK : tg_ctx_status(n->ctx);
}

static tg_tensor *sc_apply(tg_ctx *ctx, const tg_op_def *def, tg_tensor *x, double c)
{
    tg_op_params p;
    memset(&p, 0, sizeof p);
    p.f[0] = c;
    return tg_apply(ctx, def, &x, 1, &p, NULL);
}

/* ---- add_scalar ----------------------------------------------------------
 * y = x + c                x, y: any shape; c = p.f[0]
 * VJP: dx += dy
 */
TG_EW_FORWARD_ST(add_scalar_forward, y[i] = x[i] + p0)
TG_EW_BACKWARD(add_scalar_backward, , dy[i])
static tg_status add_scalar_sample(tg_node *n, tg_dtype dt, int v) { return sc_sample(n, dt, v, -2, 2, 0, 0.75, -1.25); }
static void add_scalar_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 1, 1); }

const tg_op_def tg_op_add_scalar_def = {
    .name = "add_scalar", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = add_scalar_forward, .backward = add_scalar_backward,
    .sample = add_scalar_sample, .n_samples = 2, .cost = add_scalar_cost,
};

tg_tensor *tg_add_scalar(tg_ctx *ctx, tg_tensor *x, double c) { return sc_apply(ctx, &tg_op_add_scalar_def, x, c); }

/* x - c is x + (-c) exactly (negation is exact), so it records add_scalar. */
tg_tensor *tg_sub_scalar(tg_ctx *ctx, tg_tensor *x, double c) { return sc_apply(ctx, &tg_op_add_scalar_def, x, -c); }

/* ---- rsub_scalar ---------------------------------------------------------
 * y = c - x                x, y: any shape; c = p.f[0]
 * VJP: dx += -dy
 */
TG_EW_FORWARD_ST(rsub_scalar_forward, y[i] = p0 - x[i])
TG_EW_BACKWARD(rsub_scalar_backward, , -dy[i])
static tg_status rsub_scalar_sample(tg_node *n, tg_dtype dt, int v) { return sc_sample(n, dt, v, -2, 2, 0, 1.5, -0.25); }
static void rsub_scalar_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 1, 1); }

const tg_op_def tg_op_rsub_scalar_def = {
    .name = "rsub_scalar", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = rsub_scalar_forward, .backward = rsub_scalar_backward,
    .sample = rsub_scalar_sample, .n_samples = 2, .cost = rsub_scalar_cost,
};

tg_tensor *tg_rsub_scalar(tg_ctx *ctx, tg_tensor *x, double c) { return sc_apply(ctx, &tg_op_rsub_scalar_def, x, c); }

/* ---- mul_scalar ----------------------------------------------------------
 * y = x * c                x, y: any shape; c = p.f[0]
 * VJP: dx += dy * c
 */
TG_EW_FORWARD_ST(mul_scalar_forward, y[i] = x[i] * p0)
TG_EW_BACKWARD(mul_scalar_backward, , dy[i] * p0)
static tg_status mul_scalar_sample(tg_node *n, tg_dtype dt, int v) { return sc_sample(n, dt, v, -2, 2, 0, -1.5, 2.5); }
static void mul_scalar_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 1, 1); }

const tg_op_def tg_op_mul_scalar_def = {
    .name = "mul_scalar", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = mul_scalar_forward, .backward = mul_scalar_backward,
    .sample = mul_scalar_sample, .n_samples = 2, .cost = mul_scalar_cost,
};

tg_tensor *tg_mul_scalar(tg_ctx *ctx, tg_tensor *x, double c) { return sc_apply(ctx, &tg_op_mul_scalar_def, x, c); }

/* ---- div_scalar ----------------------------------------------------------
 * y = x / c                x, y: any shape; c = p.f[0] (c == 0 gives inf/NaN)
 * VJP: dx += dy / c
 * NOTE: its own descriptor rather than mul_scalar(1/c): x * (1/c) is not
 * always x / c, and div_scalar matches div by a scalar tensor bit for bit.
 */
TG_EW_FORWARD_ST(div_scalar_forward, y[i] = x[i] / p0)
TG_EW_BACKWARD(div_scalar_backward, , dy[i] / p0)
static tg_status div_scalar_sample(tg_node *n, tg_dtype dt, int v) { return sc_sample(n, dt, v, -2, 2, 0, 0.8, -2.5); }
static void div_scalar_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 1, 1); }

const tg_op_def tg_op_div_scalar_def = {
    .name = "div_scalar", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = div_scalar_forward, .backward = div_scalar_backward,
    .sample = div_scalar_sample, .n_samples = 2, .cost = div_scalar_cost,
};

tg_tensor *tg_div_scalar(tg_ctx *ctx, tg_tensor *x, double c) { return sc_apply(ctx, &tg_op_div_scalar_def, x, c); }

/* ---- rdiv_scalar ---------------------------------------------------------
 * y = c / x                x, y: any shape; c = p.f[0]
 * VJP: dx += -dy * (y / x)       (= -dy * c / x^2, without squaring x)
 */
TG_EW_FORWARD_ST(rdiv_scalar_forward, y[i] = p0 / x[i])
TG_EW_BACKWARD(rdiv_scalar_backward, , -dy[i] * (y[i] / x[i]))
static tg_status rdiv_scalar_sample(tg_node *n, tg_dtype dt, int v) { return sc_sample(n, dt, v, -2, 2, 0.5, 1.5, -0.7); }
static void rdiv_scalar_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 1, 3); }

const tg_op_def tg_op_rdiv_scalar_def = {
    .name = "rdiv_scalar", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = rdiv_scalar_forward, .backward = rdiv_scalar_backward,
    .sample = rdiv_scalar_sample, .n_samples = 2, .cost = rdiv_scalar_cost,
};

tg_tensor *tg_rdiv_scalar(tg_ctx *ctx, tg_tensor *x, double c) { return sc_apply(ctx, &tg_op_rdiv_scalar_def, x, c); }

/* ---- pow_scalar ----------------------------------------------------------
 * y = x ^ c                x, y: any shape; c = p.f[0]
 * VJP: dx += dy * c * x^(c-1)     (0 when c == 0, as PyTorch)
 */
/* libm's pow (4096x4096 f32, 1 thread: 190 ms) but for c = 2, x * x (6.2 ms, the same
 * bits in f32), and f32 forwards through tg_vm_powcf_n (66 ms then, ~47 since the
 * lighter tg_vm_pow_core; vmath.h) for c != 0. */
TG_EW_FORWARD(pow_scalar_libm, y[i] = p0 == (T)2 ? x[i] * x[i] : (T)pow(x[i], p0))
static tg_status pow_scalar_forward(tg_node *n)
{
    const float c = (float)n->p.f[0], *x = n->in[0]->data;
    if (n->out->dtype != TG_F32 || c == 0 || c == 2)
        return pow_scalar_libm(n);
    const size_t len = TG_NUMEL(n->out);
    float *y = n->out->data;
    TG_PAR_FOR(tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS), (int64_t)len, 16, lo, hi,
               { tg_vm_powcf_n(x + lo, y + lo, (size_t)(hi - lo), c); });
    return TG_OK;
}
TG_EW_BACKWARD(pow_scalar_bwd_libm, , p0 == 0 ? 0 : dy[i] * p0 * (p0 == (T)2 ? x[i] : (T)pow(x[i], p0 - 1)))
/* f32 with c other than 0, 1, 2: x^(c - 1) a chunk at a time through
 * tg_vm_powcf_n, then the same products (4096x4096, 1 thread: 204 -> 68 ms) */
static void pow_scalar_backward(tg_node *n)
{
    const float c = (float)n->p.f[0];
    if (n->out->dtype != TG_F32 || c == 0 || c == 1 || c == 2 || !n->in[0]->grad) {
        pow_scalar_bwd_libm(n);
        return;
    }
    const int64_t len = (int64_t)TG_NUMEL(n->out);
    const float *x = n->in[0]->data, *dy = n->out->grad;
    float *dx = n->in[0]->grad;
    const int ow = tg_vjp_overwrites(n, 0);
    TG_PAR_FOR(tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS), len, 16, lo, hi, {
        float p[256];
        for (int64_t i0 = lo; i0 < hi; i0 += 256) {
            size_t m = hi - i0 < 256 ? (size_t)(hi - i0) : 256;
            tg_vm_powcf_n(x + i0, p, m, c - 1);
            for (size_t k = 0; k < m; k++)
                dx[i0 + k] = (ow ? 0.0f : dx[i0 + k]) + dy[i0 + k] * c * p[k];
        }
    });
}
static tg_status pow_scalar_sample(tg_node *n, tg_dtype dt, int v) { return sc_sample(n, dt, v, 0.5, 2, 0, 2.5, -1.5); }
static void pow_scalar_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 20, 22); }

const tg_op_def tg_op_pow_scalar_def = {
    .name = "pow_scalar", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = pow_scalar_forward, .backward = pow_scalar_backward,
    .sample = pow_scalar_sample, .n_samples = 2, .cost = pow_scalar_cost,
};

tg_tensor *tg_pow_scalar(tg_ctx *ctx, tg_tensor *x, double c) { return sc_apply(ctx, &tg_op_pow_scalar_def, x, c); }

/* ---- where ---------------------------------------------------------------
 * y = mask ? a : b         mask: i32, f32 or f64 (non-zero, NaN included, is
 *                          true); a, b: same float dtype; all three broadcast
 *                          together to y. Input 0 (mask) takes no gradient.
 * VJP: da += sum_stretched(mask ? dy : 0), db += sum_stretched(mask ? 0 : dy)
 * NOTE: the branch not taken gets exactly 0: the VJP never multiplies by a
 * branch's values, so inf/NaN there cannot leak into the other's gradient.
 * (An op *producing* the untaken branch still sees dy = 0 and may turn it
 * into NaN itself, e.g. 0 / (2 sqrt(y)) at y == 0; mask its input instead.)
 * Forward saves the mask as bytes (mask's numel) in n->saved.
 */
static tg_status where_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s = tg_chk_same_dtype(n, 1, 2);
    if (s != TG_OK)
        return s;
    tg_tensor ab;
    memset(&ab, 0, sizeof ab);
    if ((s = tg_broadcast_shape(n, n->in[1], n->in[2], &ab.ndim, ab.shape)) != TG_OK)
        return s;
    *dt = n->in[1]->dtype;
    return tg_broadcast_shape(n, n->in[0], &ab, ndim, shape);
}

static void where_layout(const tg_node *n, ew_layout *L)
{
    const tg_tensor *ops[3] = { n->in[0], n->in[1], n->in[2] };
    ew_layout_init(L, n->out, ops, 3);
}

/* Mask, a, b and y all of y's shape: the mask's bytes and y in one pass
 * instead of two, each value read plainly (TG_SELECT: as `M ? a : b`, gcc
 * read a and b with masked loads). 4096², i32 mask, 1 thread: 8.4-8.8 ms
 * -> 8.1-8.6 (at the triad's speed either way). */
#define WHERE_FUSED(U)                                                            \
    TG_DISPATCH(n->out->dtype, T, {                                               \
        const U *m = mask->data;                                                  \
        const T *A = n->in[1]->data, *B = n->in[2]->data;                         \
        T *Y = n->out->data;                                                      \
        TG_PAR_FOR(nt, mn, 64, lo, hi, {                                          \
            for (int64_t i = lo; i < hi; i++) {                                   \
                const int c = m[i] != 0;                                          \
                M[i] = (uint8_t)c;                                                \
                Y[i] = TG_SELECT(c, A[i], B[i]);                                  \
            }                                                                     \
        });                                                                       \
    })

static tg_status where_forward(tg_node *n)
{
    const tg_tensor *mask = n->in[0];
    uint8_t *M = tg_ctx_alloc(n->ctx, (size_t)(mask->numel ? mask->numel : 1), "where");
    if (!M)
        return tg_ctx_status(n->ctx);
    const int64_t mn = mask->numel;
    if (mn == n->out->numel && n->in[1]->numel == mn && n->in[2]->numel == mn) {
        const uint64_t ones = tg_ew_ones;
        int nt = tg_par_threads(n->ctx, (double)mn, TG_PAR_MIN_ELEMS);
        n->saved = M;
        if (mask->dtype == TG_I32)
            WHERE_FUSED(int32_t);
        else if (mask->dtype == TG_F32)
            WHERE_FUSED(float);
        else
            WHERE_FUSED(double);
        return TG_OK;
    }
    if (mask->dtype == TG_I32) {
        const int32_t *m = mask->data;
        for (int64_t i = 0; i < mn; i++)
            M[i] = m[i] != 0;
    } else {
        TG_DISPATCH(mask->dtype, U, {
            const U *m = mask->data;
            for (int64_t i = 0; i < mn; i++)
                M[i] = m[i] != 0;
        });
    }
    n->saved = M;
    ew_layout L;
    where_layout(n, &L);
    TG_DISPATCH(n->out->dtype, T, {
        const T *A = n->in[1]->data, *B = n->in[2]->data;
        T *Y = n->out->data;
        EW_FOR(&L, EW_THREADS_(n, &L), 3, { const T a = A[i1], b = B[i2]; Y[io] = M[i0] ? a : b; });
    });
    return TG_OK;
}

static void where_backward(tg_node *n)
{
    const uint8_t *M = n->saved;
    ew_layout L;
    where_layout(n, &L);
    const uint64_t ones = tg_ew_ones;   /* TG_KEEP: no masked load of dy */
    TG_DISPATCH(n->out->dtype, T, {
        const T *DY = n->out->grad;
        T *da = n->in[1]->grad, *db = n->in[2]->grad;
        if (da)
            EW_ACC(&L, EW_THREADS_(n, &L), 3, 1, T, da, tg_vjp_overwrites(n, 1), n->in[1]->numel,
                   TG_KEEP(g, M[i0]), const T g = DY[io];);
        if (db)
            EW_ACC(&L, EW_THREADS_(n, &L), 3, 2, T, db, tg_vjp_overwrites(n, 2), n->in[2]->numel,
                   TG_KEEP(g, !M[i0]), const T g = DY[io];);
    });
}

/* Variants: all (2,3) with an i32 mask; mask (3,1) in dt, a (2,3,4), b a
 * scalar; i32 mask (4,1,3), a (5,1), b (1,3) -> (4,5,3). */
static tg_status where_sample(tg_node *n, tg_dtype dt, int v)
{
    static const int nds[3][3] = { {2, 2, 2}, {2, 3, 0}, {3, 2, 2} };
    static const int64_t shapes[3][3][3] = {
        { {2, 3}, {2, 3}, {2, 3} }, { {3, 1}, {2, 3, 4}, {0} }, { {4, 1, 3}, {5, 1}, {1, 3} },
    };
    static const double mvals[3] = {0, 1.5, -0.5};   /* float mask: non-zero = true */
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    n->n_in = 3;
    tg_dtype mdt = v == 1 ? dt : TG_I32;
    tg_tensor *m = n->in[0] = tg_tensor_new(n->ctx, mdt, nds[v][0], shapes[v][0]);
    for (int i = 1; i < 3; i++)
        n->in[i] = tg_sample_uniform(n, dt, nds[v][i], shapes[v][i], -2, 2);
    if (!m || !n->in[1] || !n->in[2])
        return tg_ctx_status(n->ctx);
    tg_rng *r = tg_ctx_rng(n->ctx);
    for (int64_t i = 0; i < m->numel; i++) {
        int k = i < 2 ? (int)(1 - i) : (int)tg_rng_below(r, 2);   /* both branches taken */
        tg_tensor_set(m, i, mdt == TG_I32 ? k : k ? mvals[1 + tg_rng_below(r, 2)] : 0.0);
    }
    return TG_OK;
}

static void where_cost(const tg_node *n, tg_op_cost *c) { bin_cost(n, c, 1, 1); }

const tg_op_def tg_op_where_def = {
    .name = "where", .n_in = 3, .nondiff = 1u << 0, .overwrites = 6,
    .shape = where_shape, .forward = where_forward, .backward = where_backward,
    .sample = where_sample, .n_samples = 3, .cost = where_cost,
};

tg_tensor *tg_where(tg_ctx *ctx, tg_tensor *mask, tg_tensor *a, tg_tensor *b)
{
    tg_tensor *in[3] = { mask, a, b };
    return tg_apply(ctx, &tg_op_where_def, in, 3, NULL, NULL);
}
