/* tape.c — tg_apply (run an op, record it), the tape, and the reverse sweep.
 * Recording order is topological, so backward is a mark pass plus one
 * reverse loop: no sort, no recursion, no hash map. Knows no particular op. */
#include "tg_graph.h"
#include "../core/tg_core_impl.h"

#include <math.h>
#include <string.h>

typedef struct tape {
    tg_node **nodes;
    size_t    n, cap;
    uint8_t  *mark;     /* one byte per node, grown with nodes */
} tape;

static void tape_reset(void *state)
{
    tape *t = state;
    t->n = 0;
}

static void tape_destroy(void *state)
{
    tape *t = state;
    tg_free(t->nodes);
    tg_free(t->mark);
    tg_free(t);
}

static tape *get_tape(tg_ctx *ctx)
{
    if (ctx->tape.state)
        return ctx->tape.state;
    tape *t = tg_calloc(sizeof *t);
    if (!t) {
        tg_ctx_fail(ctx, TG_ERR_NOMEM, "tape: out of memory");
        return NULL;
    }
    ctx->tape.state = t;
    ctx->tape.reset = tape_reset;
    ctx->tape.destroy = tape_destroy;
    return t;
}

static tg_status tape_push(tg_ctx *ctx, tg_node *n)
{
    tape *t = get_tape(ctx);
    if (!t)
        return TG_ERR_NOMEM;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        tg_node **nodes = tg_realloc(t->nodes, cap * sizeof *nodes);
        if (!nodes)
            return tg_ctx_fail(ctx, TG_ERR_NOMEM, "%s: out of memory growing the tape", n->def->name);
        t->nodes = nodes;
        uint8_t *mark = tg_realloc(t->mark, cap);
        if (!mark)
            return tg_ctx_fail(ctx, TG_ERR_NOMEM, "%s: out of memory growing the tape", n->def->name);
        t->mark = mark;
        t->cap = cap;
    }
    if (t->n >= INT32_MAX)
        return tg_ctx_fail(ctx, TG_ERR_STATE, "%s: tape holds too many nodes", n->def->name);
    n->out->node = (int32_t)t->n;
    t->nodes[t->n++] = n;
    return TG_OK;
}

size_t tg_tape_size(const tg_ctx *ctx)
{
    const tape *t = ctx->tape.state;
    return t ? t->n : 0;
}

tg_node *tg_tape_node(const tg_ctx *ctx, size_t i)
{
    const tape *t = ctx->tape.state;
    return t && i < t->n ? t->nodes[i] : NULL;
}

tg_status tg_op_fail(const tg_node *n, tg_status s, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return tg_ctx_fail(n->ctx, s, "%s: %s", n->def && n->def->name ? n->def->name : "op", buf);
}

void *tg_node_scratch(tg_node *n, size_t bytes)
{
    return tg_ctx_alloc(n->ctx, bytes, n->def ? n->def->name : "op");
}

tg_status tg_node_run(tg_node *n)
{
    tg_ctx *ctx = n->ctx;
    if (!ctx)
        return TG_ERR_ARG;
    if (ctx->status != TG_OK)
        return ctx->status;
    const tg_op_def *def = n->def;
    if (!def || !def->name || !def->shape || !def->forward)
        return tg_ctx_fail(ctx, TG_ERR_ARG, "apply: incomplete op definition (%s)",
                           def && def->name ? def->name : "unnamed");
    if (n->n_in < 0 || n->n_in > TG_MAX_IN ||
        (def->n_in != TG_VARIADIC && n->n_in != def->n_in) ||
        (def->n_in == TG_VARIADIC && n->n_in < 1))
        return tg_op_fail(n, TG_ERR_ARG, "takes %d inputs, got %d",
                          def->n_in == TG_VARIADIC ? TG_MAX_IN : def->n_in, n->n_in);
    for (int i = 0; i < n->n_in; i++) {
        if (!n->in[i])
            return tg_op_fail(n, TG_ERR_ARG, "input %d is NULL", i);
        if (!n->in[i]->data && n->in[i]->numel)
            return tg_op_fail(n, TG_ERR_ARG, "input %d has no data", i);
    }
    tg_dtype dt = TG_F32;
    int ndim = 0;
    int64_t shape[TG_MAX_DIMS] = {0};
    tg_status s = def->shape(n, &dt, &ndim, shape);
    if (s != TG_OK)
        return ctx->status != TG_OK ? ctx->status : tg_op_fail(n, s, "rejected its inputs");
    n->out = tg_tensor_new(ctx, dt, ndim, shape);
    if (!n->out)
        return ctx->status;
    n->out->name = NULL;
    s = def->forward(n);
    if (s != TG_OK)
        return ctx->status != TG_OK ? ctx->status : tg_op_fail(n, s, "forward failed");
    return ctx->status;
}

/* ---- anomaly mode -------------------------------------------------------- */

/* Index of the first NaN/Inf among n floats of dtype dt, or -1. */
static int64_t first_bad(const void *p, tg_dtype dt, int64_t n)
{
    if (dt == TG_F32) {
        const float *x = p;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(x[i]))
                return i;
    } else if (dt == TG_F64) {
        const double *x = p;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(x[i]))
                return i;
    }
    return -1;
}

static void describe_inputs(const tg_node *n, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < n->n_in && off < cap; i++) {
        char s[TG_SHAPE_STR_MAX];
        int w = snprintf(buf + off, cap - off, "%s%s %s", i ? ", " : "",
                         tg_shape_str(n->in[i]->ndim, n->in[i]->shape, s, sizeof s),
                         tg_dtype_name(n->in[i]->dtype));
        off += w > 0 ? (size_t)w : 0;
    }
}

/* Record TG_ERR_NUMERIC if t (data, or grad when `grad`) holds NaN/Inf. */
static int anomaly_check(tg_node *n, const tg_tensor *t, int grad, int input)
{
    const void *p = grad ? t->grad : t->data;
    if (!p || !tg_dtype_is_float(t->dtype))
        return 0;
    int64_t i = first_bad(p, t->dtype, t->numel);
    if (i < 0)
        return 0;
    double v = grad ? tg_tensor_grad_get(t, i) : tg_tensor_get(t, i);
    char ins[256], where[160] = "";
    describe_inputs(n, ins, sizeof ins);
    if (n->file)
        snprintf(where, sizeof where, ", recorded at %s:%d", n->file, n->line);
    if (grad)
        tg_ctx_fail(n->ctx, TG_ERR_NUMERIC, "anomaly: the VJP of %s (inputs %s) wrote %g into the "
                    "gradient of input %d at index %lld%s", n->def->name, ins, v, input, (long long)i, where);
    else
        tg_ctx_fail(n->ctx, TG_ERR_NUMERIC, "anomaly: %s (inputs %s) produced %g at index %lld%s",
                    n->def->name, ins, v, (long long)i, where);
    return 1;
}

tg_tensor *tg_apply_at(tg_ctx *ctx, const tg_op_def *def, tg_tensor *const *in, int n_in,
                       const tg_op_params *p, void *user, const char *file, int line)
{
    if (!ctx || ctx->status != TG_OK)
        return NULL;
    int d = ctx->site_depth;             /* pushed by a call-site macro */
    if (!file && d > 0 && d <= TG_SITE_DEPTH) {
        file = ctx->site_file[d - 1];
        line = ctx->site_line[d - 1];
    }
    if (!def)
        return tg_ctx_fail(ctx, TG_ERR_ARG, "apply: NULL op definition"), NULL;
    if (n_in < 0 || n_in > TG_MAX_IN || (n_in > 0 && !in))
        return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: bad input count %d", def->name, n_in), NULL;
    tg_node *n = tg_ctx_alloc(ctx, sizeof *n, def->name);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->def = def;
    n->ctx = ctx;
    n->n_in = n_in;
    for (int i = 0; i < n_in; i++)
        n->in[i] = in[i];
    if (p)
        n->p = *p;
    n->user = user;
    n->file = file;
    n->line = line;
    for (int i = 0; i < n_in; i++)
        if (!in[i])
            return tg_op_fail(n, TG_ERR_ARG, "input %d is NULL", i), NULL;
    if (tg_node_run(n) != TG_OK)
        return NULL;
    if (ctx->anomaly && anomaly_check(n, n->out, 0, 0))
        return NULL;
    int needs = 0;
    if (ctx->grad_enabled && def->backward)
        for (int i = 0; i < n_in; i++)
            if ((in[i]->flags & TG_TENSOR_REQUIRES_GRAD) && !(def->nondiff & (1u << i)))
                needs = 1;
    if (needs) {
        if (!tg_dtype_is_float(n->out->dtype))
            return tg_op_fail(n, TG_ERR_STATE, "integer output cannot carry a gradient"), NULL;
        n->out->flags |= TG_TENSOR_REQUIRES_GRAD;
        if (tape_push(ctx, n) != TG_OK)
            return NULL;
    }
    return n->out;
}

tg_tensor *tg_apply(tg_ctx *ctx, const tg_op_def *def, tg_tensor *const *in, int n_in,
                    const tg_op_params *p, void *user)
{
    return tg_apply_at(ctx, def, in, n_in, p, user, NULL, 0);
}

int tg_set_grad_enabled(tg_ctx *ctx, int on)
{
    int prev = ctx->grad_enabled;
    ctx->grad_enabled = on != 0;
    return prev;
}

int tg_grad_enabled(const tg_ctx *ctx) { return ctx->grad_enabled; }

tg_tensor *tg_detach(tg_ctx *ctx, tg_tensor *t)
{
    if (!ctx || ctx->status != TG_OK)
        return NULL;
    if (!t)
        return tg_ctx_fail(ctx, TG_ERR_ARG, "detach: NULL tensor"), NULL;
    tg_tensor *d = tg_ctx_alloc(ctx, sizeof *d, "detach");
    if (!d)
        return NULL;
    *d = *t;
    d->grad = NULL;
    d->flags = TG_TENSOR_VIEW;
    d->node = -1;
    d->ctx = ctx;
    return d;
}

void tg_retain_grad(tg_tensor *t)
{
    if (t)
        t->flags |= TG_TENSOR_RETAIN_GRAD;
}

/* ---- backward ------------------------------------------------------------ */

/* Bytes of t's gradient buffer (gradients are f32 or f64; inline: the sweep
 * asks for every node). */
static inline size_t grad_bytes(const tg_tensor *t)
{
    return (size_t)(t->numel ? t->numel : 1) * (t->dtype == TG_F64 ? 8u : 4u);
}

/* A gradient buffer for t, left unwritten (TG_TENSOR_GRAD_UNDEF: resolved by
 * resolve_fresh before any VJP reads it), except for the sweep's root,
 * whose buffer add_seed fills whole (the seed is written, not added). */
static int grad_alloc(tg_ctx *ctx, tg_tensor *t, const tg_tensor *root)
{
    t->grad = tg_ctx_alloc(ctx, grad_bytes(t), "backward");
    if (!t->grad)
        return 0;
    t->flags &= ~(uint32_t)(TG_TENSOR_GRAD_ZERO | TG_TENSOR_GRAD_UNDEF);
    if (t != root)
        t->flags |= TG_TENSOR_GRAD_UNDEF;
    return 1;
}

/* Intermediate gradients die when the sweep has run their producer's VJP
 * (unless retained); their buffers go on a free list, threaded through the
 * buffers themselves, and the next fresh gradient of the same byte size
 * takes one back: a chain of same-shaped intermediates cycles through two
 * or three buffers instead of touching a new one per node (bench_sweep
 * 4096: peak RSS 725 -> 593 MB; time within noise). Buffers too small to
 * hold the link are not kept. */
typedef struct grad_free {
    struct grad_free *next;
    size_t bytes;
} grad_free;

static inline void grad_give(grad_free **fl, tg_tensor *t)
{
    size_t bytes = grad_bytes(t);
    if (bytes >= sizeof(grad_free)) {
        grad_free *f = t->grad;
        f->next = *fl;
        f->bytes = bytes;
        *fl = f;
    }
    t->grad = NULL;
    t->flags &= ~(uint32_t)(TG_TENSOR_GRAD_ZERO | TG_TENSOR_GRAD_UNDEF);
}

/* A fresh (unwritten, TG_TENSOR_GRAD_UNDEF) gradient buffer for t: a dead
 * one of its size from the first few on the list, else from the arena
 * (room the sweep reserved, unless VJP scratch has taken it meanwhile). */
static int grad_take(tg_ctx *ctx, grad_free **fl, tg_tensor *t)
{
    size_t bytes = grad_bytes(t);
    grad_free **pp = fl;
    for (int k = 0; *pp && k < 8; k++, pp = &(*pp)->next)
        if ((*pp)->bytes == bytes) {
            t->grad = *pp;
            *pp = (*pp)->next;
            break;
        }
    if (!t->grad && !(t->grad = tg_ctx_alloc(ctx, bytes, "backward")))
        return 0;
    t->flags = (t->flags & ~(uint32_t)TG_TENSOR_GRAD_ZERO) | TG_TENSOR_GRAD_UNDEF;
    return 1;
}

/* Whether input i of n takes a gradient from n's VJP that the sweep must
 * provide: a diff edge to an intermediate the loss depends on. */
static inline int needs_grad(const tape *tp, const tg_node *n, int i)
{
    const tg_tensor *t = n->in[i];
    return !(n->def->nondiff & (1u << i)) && t->node >= 0 && (t->flags & TG_TENSOR_REQUIRES_GRAD) &&
           tp->mark[t->node];
}

/* Zero an unwritten gradient buffer; it then reads as +0 to every VJP. */
static void grad_zero_now(tg_tensor *t)
{
    memset(t->grad, 0, grad_bytes(t));
    t->flags = (t->flags & ~(uint32_t)TG_TENSOR_GRAD_UNDEF) | TG_TENSOR_GRAD_ZERO;
}

/* Before n's VJP, when the op passes its output's gradient through to an
 * input (tg_op_def.passes_grad): the first such input that takes it —
 * without a buffer yet (this is its first contribution), an intermediate
 * whose gradient is released after the sweep, the output's dtype and size,
 * not shared with another input of n — gets the output's buffer as its
 * gradient (the output's gradient is not read after n, nor kept: not
 * retained). Returns that input's index, or -1. */
static int pass_through(const tape *tp, tg_node *n)
{
    tg_tensor *o = n->out;
    uint32_t pass = n->def->passes_grad;
    if (!pass || !o->grad || (o->flags & TG_TENSOR_RETAIN_GRAD))
        return -1;
    for (int i = 0; i < n->n_in; i++) {
        tg_tensor *t = n->in[i];
        if (!((pass >> i) & 1u) || !needs_grad(tp, n, i) || t->grad || (t->flags & TG_TENSOR_RETAIN_GRAD) ||
            t->dtype != o->dtype || t->numel != o->numel)
            continue;
        if (tg_node_input_shared(n, i))
            continue;
        t->grad = o->grad;
        t->flags &= ~(uint32_t)(TG_TENSOR_GRAD_UNDEF | TG_TENSOR_GRAD_ZERO);
        return i;
    }
    return -1;
}

/* Before n's VJP (after pass_through), its inputs' unwritten gradient
 * buffers. Each is handed over unzeroed, marked
 * TG_TENSOR_GRAD_ZERO, when the op declared it overwrites that input
 * (tg_op_def.overwrites) and no other input of n shares the buffer (the
 * second contribution must add to the first); otherwise zeroed. Inputs that
 * take no gradient from n (nondiff) are left for their real consumer. */
static uint32_t resolve_fresh(tg_node *n)
{
    uint32_t handed = 0;   /* inputs handed over unwritten */
    for (int i = 0; i < n->n_in; i++) {
        tg_tensor *t = n->in[i];
        if (!(t->flags & TG_TENSOR_GRAD_UNDEF) || (n->def->nondiff & (1u << i)))
            continue;
        if (((n->def->overwrites >> i) & 1u) && !tg_node_input_shared(n, i)) {
            t->flags = (t->flags & ~(uint32_t)TG_TENSOR_GRAD_UNDEF) | TG_TENSOR_GRAD_ZERO;
            handed |= 1u << i;
        } else {
            grad_zero_now(t);
        }
    }
    return handed;
}

/* Seed the root's gradient: g = seed (fresh buffer) or g += seed (a leaf
 * that accumulates across sweeps). A NULL seed means ones. */
#define SEED_LOOP(T, g, n, seed, assign)                                          \
    do {                                                                          \
        if (!(seed))                                                              \
            for (size_t i = 0; i < (n); i++) (g)[i] = (assign ? 0 : (g)[i]) + (T)1; \
        else if ((seed)->dtype == (sizeof(T) == 4 ? TG_F32 : TG_F64))             \
            for (size_t i = 0; i < (n); i++)                                      \
                (g)[i] = (assign ? 0 : (g)[i]) + ((const T *)(seed)->data)[i];     \
        else                                                                      \
            for (size_t i = 0; i < (n); i++)                                      \
                (g)[i] = (assign ? 0 : (g)[i]) + (T)tg_tensor_get((seed), (int64_t)i); \
    } while (0)

static void add_seed(tg_tensor *out, const tg_tensor *seed, int assign)
{
    size_t n = (size_t)out->numel;
    if (out->dtype == TG_F32) {
        float *g = out->grad;
        SEED_LOOP(float, g, n, seed, assign);
    } else {
        double *g = out->grad;
        SEED_LOOP(double, g, n, seed, assign);
    }
}

static tg_status sweep(tg_ctx *ctx, tg_tensor *out, const tg_tensor *seed, const char *who)
{
    if (ctx->status != TG_OK)
        return ctx->status;
    if (!out)
        return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: NULL loss", who);
    if (!(out->flags & TG_TENSOR_REQUIRES_GRAD))
        return tg_ctx_fail(ctx, TG_ERR_STATE,
                           "%s: the loss does not require a gradient (nothing it depends on requires one)", who);
    if (!tg_dtype_is_float(out->dtype))
        return tg_ctx_fail(ctx, TG_ERR_ARG, "%s: %s loss", who, tg_dtype_name(out->dtype));

    tape *tp = ctx->tape.state;
    if (out->node < 0 || !tp || (size_t)out->node >= tp->n || tp->nodes[out->node]->out != out) {
        /* A leaf: its gradient with respect to itself is the seed. */
        if (out->node >= 0)
            return tg_ctx_fail(ctx, TG_ERR_STATE, "%s: the loss belongs to a tape that was reset", who);
        if (!out->grad && tg_tensor_requires_grad(out) != TG_OK)
            return tg_ctx_fail(ctx, TG_ERR_NOMEM, "%s: out of memory", who);
        add_seed(out, seed, 0);
        out->flags &= ~(uint32_t)TG_TENSOR_GRAD_ZERO;
        return TG_OK;
    }

    /* 1. Mark every node the output depends on through gradient-carrying edges. */
    size_t last = (size_t)out->node;
    memset(tp->mark, 0, last + 1);
    tp->mark[last] = 1;
    for (size_t k = last + 1; k-- > 0;) {
        if (!tp->mark[k])
            continue;
        tg_node *n = tp->nodes[k];
        for (int i = 0; i < n->n_in; i++) {
            const tg_tensor *x = n->in[i];
            if (x->node >= 0 && (x->flags & TG_TENSOR_REQUIRES_GRAD) && !(n->def->nondiff & (1u << i)))
                tp->mark[x->node] = 1;
        }
    }

    /* 2. Gradient buffers: retained ones now, the rest above an arena mark,
     *    released once the sweep is done. Those are taken when the sweep
     *    reaches a tensor's first consumer (grad_take, reusing dead ones)
     *    from room reserved here for all of them at once, so an arena that
     *    cannot hold them fails before any VJP has added into a leaf (VJP
     *    scratch may still need more, mid-sweep, as before). Each buffer
     *    is zeroed, or handed to a VJP that overwrites it, at its first
     *    consumer (resolve_fresh). */
    for (size_t k = 0; k <= last; k++)
        if (tp->mark[k] && (tp->nodes[k]->out->flags & TG_TENSOR_RETAIN_GRAD))
            if (!grad_alloc(ctx, tp->nodes[k]->out, out))
                return ctx->status;
    size_t arena_mark = tg_ctx_arena_mark(ctx), reserve = 0;
    for (size_t k = 0; k <= last; k++) {
        tg_tensor *o = tp->nodes[k]->out;
        if (tp->mark[k] && !(o->flags & TG_TENSOR_RETAIN_GRAD)) {
            size_t b = (grad_bytes(o) + 63) & ~(size_t)63;   /* the arena's alignment, at most */
            if (reserve > SIZE_MAX - b)
                return tg_ctx_fail(ctx, TG_ERR_NOMEM, "%s: gradient buffers exceed the address space", who);
            reserve += b;
        }
        if (!tp->mark[k] || !(o->flags & TG_TENSOR_RETAIN_GRAD)) {
            o->grad = NULL;   /* unmarked: no gradient in this sweep */
            o->flags &= ~(uint32_t)(TG_TENSOR_GRAD_ZERO | TG_TENSOR_GRAD_UNDEF);
        }
    }
    if (reserve && !tg_ctx_alloc(ctx, reserve, "backward"))
        return ctx->status;
    tg_ctx_arena_rewind(ctx, arena_mark);
    grad_free *fl = NULL;
    /* A seed of the output's dtype is read in place: the output's gradient
     * borrows its data (no VJP writes out->grad; it is never handed on nor
     * given back), sparing a copy of the output's size. */
    void *borrowed = seed && seed->dtype == out->dtype && seed->data && !out->grad ? seed->data : NULL;
    /* ... unless the seed's bytes are (part of) a gradient the root's VJP
     * writes: a leaf input's (a wrapped gradient buffer); intermediate
     * inputs have none yet. Only the root's VJP reads the seed. */
    if (borrowed) {
        const tg_node *rn = tp->nodes[last];
        const char *s0 = borrowed, *s1 = s0 + grad_bytes(out);
        for (int i = 0; i < rn->n_in; i++) {
            const tg_tensor *t = rn->in[i];
            const char *g0 = t->grad, *g1 = g0 ? g0 + grad_bytes(t) : NULL;
            if (g0 && s0 < g1 && g0 < s1)
                borrowed = NULL;
        }
    }
    if (borrowed) {
        out->grad = borrowed;
    } else {
        if (!out->grad && !grad_take(ctx, &fl, out))
            return ctx->status;
        add_seed(out, seed, 1);
    }
    out->flags &= ~(uint32_t)TG_TENSOR_GRAD_UNDEF;

    /* 3. The reverse sweep. */
    tg_status st = TG_OK;
    for (size_t k = last + 1; k-- > 0;) {
        if (!tp->mark[k])
            continue;
        tg_node *n = tp->nodes[k];
        if (!n->out->grad && !grad_take(ctx, &fl, n->out)) {   /* no consumer took one */
            st = ctx->status;
            break;
        }
        if (n->out->flags & TG_TENSOR_GRAD_UNDEF)
            grad_zero_now(n->out);   /* no consumer wrote it; the VJP reads it */
        int pass = n->out->grad == borrowed ? -1 : pass_through(tp, n);
        for (int i = 0; i < n->n_in && ctx->status == TG_OK; i++)
            if (needs_grad(tp, n, i) && !n->in[i]->grad)
                grad_take(ctx, &fl, n->in[i]);
        if (ctx->status != TG_OK) {
            st = ctx->status;
            break;
        }
        uint32_t handed = resolve_fresh(n);
        void *passed = NULL;
        if (pass >= 0) {             /* already holds its contribution */
            passed = n->in[pass]->grad;
            n->in[pass]->grad = NULL;
        }
        n->def->backward(n);
        if (pass >= 0)
            n->in[pass]->grad = passed;
        /* n's output gradient is dead now, unless kept or handed on. */
        if (!(n->out->flags & TG_TENSOR_RETAIN_GRAD)) {
            if (pass >= 0 || n->out->grad == borrowed)
                n->out->grad = NULL;
            else
                grad_give(&fl, n->out);
        }
        /* The VJP may have written any input's gradient: none is known to
         * be zero any more (TG_TENSOR_GRAD_ZERO). */
        for (int i = 0; i < n->n_in; i++)
            n->in[i]->flags &= ~(uint32_t)TG_TENSOR_GRAD_ZERO;
        if (ctx->anomaly)
            for (int i = 0; i < n->n_in && ctx->status == TG_OK; i++)
                if (n->in[i]->grad && !(n->def->nondiff & (1u << i)))
                    anomaly_check(n, n->in[i], 1, i);
        if (ctx->status != TG_OK) {
            /* A retained gradient the failed VJP was to write whole may
             * hold old bytes: zeros instead (the others are dropped). */
            for (int i = 0; i < n->n_in; i++)
                if (((handed >> i) & 1u) && (n->in[i]->flags & TG_TENSOR_RETAIN_GRAD))
                    memset(n->in[i]->grad, 0, grad_bytes(n->in[i]));
            st = ctx->status;
            break;
        }
    }

    /* 4. Release intermediate gradients nobody asked to keep. A retained one
     *    the sweep did not reach (it stopped at an error) is zeroed. */
    for (size_t k = 0; k <= last; k++) {
        tg_tensor *o = tp->nodes[k]->out;
        if (!(o->flags & TG_TENSOR_RETAIN_GRAD)) {
            o->grad = NULL;
            o->flags &= ~(uint32_t)(TG_TENSOR_GRAD_ZERO | TG_TENSOR_GRAD_UNDEF);
        } else if (o->grad && (o->flags & TG_TENSOR_GRAD_UNDEF)) {
            grad_zero_now(o);
        }
    }
    tg_ctx_arena_rewind(ctx, arena_mark);
    return st;
}

tg_status tg_backward(tg_ctx *ctx, tg_tensor *loss)
{
    if (!ctx)
        return TG_ERR_ARG;
    if (ctx->status == TG_OK && loss && loss->numel != 1) {
        char b[TG_SHAPE_STR_MAX];
        return tg_ctx_fail(ctx, TG_ERR_STATE,
                           "backward: the loss must be a scalar, got shape %s (use tg_backward_seed for a VJP)",
                           tg_shape_str(loss->ndim, loss->shape, b, sizeof b));
    }
    return sweep(ctx, loss, NULL, "backward");
}

tg_status tg_backward_seed(tg_ctx *ctx, tg_tensor *out, const tg_tensor *seed)
{
    if (!ctx)
        return TG_ERR_ARG;
    if (ctx->status == TG_OK && out) {
        if (!seed)
            return tg_ctx_fail(ctx, TG_ERR_ARG, "backward_seed: NULL seed");
        if (!tg_shape_equal(out->ndim, out->shape, seed->ndim, seed->shape)) {
            char a[TG_SHAPE_STR_MAX], b[TG_SHAPE_STR_MAX];
            return tg_ctx_fail(ctx, TG_ERR_SHAPE, "backward_seed: seed shape %s differs from output %s",
                               tg_shape_str(seed->ndim, seed->shape, a, sizeof a),
                               tg_shape_str(out->ndim, out->shape, b, sizeof b));
        }
    }
    return sweep(ctx, out, seed, "backward_seed");
}
