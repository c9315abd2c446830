/* gradcheck_op.c — tg_gradcheck_op: an op's VJP against f64 finite
 * differences on the op's own sample inputs, at the node level (tg_node_run
 * + def->backward, no tape), plus the contracts every VJP must keep
 * (accumulate, writes, uninit, determinism, alias, null_grad, and the
 * forward's determinism, finiteness and f32/f64 agreement). The numeric
 * core and the report live in gradcheck.c. */
#include "gradcheck_impl.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define GUARD_BYTES 64           /* canary bytes on each side of a grad buffer */
#define CANARY      0xA7
#define MAX_ALIAS_PAIRS 3        /* aliasing checks per variant                */

/* A buffer of `bytes` with canary guards before and after. */
typedef struct gbuf {
    unsigned char *base;
    void          *body;
    size_t         bytes;
} gbuf;

typedef struct op_state {
    gc_eval              ev;
    const tg_op_def     *def;
    const gc_cfg        *cfg;
    tg_gradcheck_report *rep;
    tg_ctx              *ctx;
    int                  variant;
    tg_node              proto;              /* the sample: n_in, p, user        */
    int                  n_in, n_diff;
    int                  diff[TG_MAX_IN];    /* input gets a gradient            */
    tg_tensor           *x64[TG_MAX_IN];     /* f64 inputs for the numerics      */
    tg_tensor           *xt[TG_MAX_IN];      /* inputs in the tested dtype       */
    void                *xt_copy[TG_MAX_IN]; /* their pristine bytes             */
    tg_tensor           *arr64[TG_MAX_IN];   /* arrangement the numerics run on  */
    int                  ondim;              /* output of the tested forward     */
    int64_t              oshape[TG_MAX_DIMS];
    int64_t              onumel;
    tg_dtype             odt;
    double              *u;                  /* cotangent, rounded to odt        */
    gbuf                 ubuf;               /* out->grad                        */
    gbuf                 gb[TG_MAX_IN];      /* input gradients                  */
    void                *ycopy;              /* output bytes before the VJP      */
    double              *y, *yr, *y64;       /* forward values: tested, rerun, f64 */
    double              *G[TG_MAX_IN], *R[TG_MAX_IN], *g0[TG_MAX_IN];
    size_t               mark;               /* arena position after the sample  */
    tg_rng               ctx_rng;            /* ctx RNG state after the sample   */
    tg_rng               rng;                /* the checker's own draws          */
    char                 err[400];
} op_state;

static size_t tbytes(const tg_tensor *t) { return (size_t)t->numel * tg_dtype_size(t->dtype); }

static void *xalloc(size_t bytes) { return tg_malloc(bytes ? bytes : 1); }

static int gbuf_alloc(gbuf *b, size_t bytes)
{
    b->bytes = bytes;
    b->base = tg_malloc(bytes + 2 * GUARD_BYTES);
    b->body = b->base ? b->base + GUARD_BYTES : NULL;
    return b->base != NULL;
}

/* Canaries on both sides, a zeroed body. */
static void gbuf_arm(gbuf *b)
{
    memset(b->base, CANARY, GUARD_BYTES);
    memset(b->base + GUARD_BYTES + b->bytes, CANARY, GUARD_BYTES);
    memset(b->body, 0, b->bytes);
}

/* 1 when both guards are intact; else 0 with *where the offset of the first
 * damaged byte relative to the body (negative: before it). */
static int gbuf_intact(const gbuf *b, long *where)
{
    for (long i = 0; i < GUARD_BYTES; i++)
        if (b->base[i] != CANARY) {
            *where = i - GUARD_BYTES;
            return 0;
        }
    const unsigned char *after = b->base + GUARD_BYTES + b->bytes;
    for (long i = 0; i < GUARD_BYTES; i++)
        if (after[i] != CANARY) {
            *where = (long)b->bytes + i;
            return 0;
        }
    return 1;
}

static void capture(const void *src, tg_dtype dt, int64_t n, double *dst)
{
    for (int64_t k = 0; k < n; k++)
        dst[k] = gc_get(src, dt, k);
}

/* Record the context's error as the check's own failure, clear it. */
static tg_status ctx_err(op_state *s, const char *what)
{
    tg_status st = tg_ctx_status(s->ctx);
    snprintf(s->err, sizeof s->err, "variant %d: %s: %s", s->variant, what,
             st != TG_OK ? tg_ctx_error(s->ctx) : "failed without an error message");
    tg_ctx_clear_error(s->ctx);
    return st != TG_OK ? st : TG_ERR_STATE;
}

/* Run the forward on arrangement `arr` in a fresh node, arena rewound (and
 * its free memory zeroed when `scrub`) and the ctx RNG restored, so every
 * run starts from the same state. */
static tg_status forward(op_state *s, tg_node *n, tg_tensor *const *arr, const char *what, int scrub)
{
    tg_ctx_arena_rewind(s->ctx, s->mark);
    if (scrub)
        gc_scrub(s->ctx);
    *tg_ctx_rng(s->ctx) = s->ctx_rng;
    *n = s->proto;
    n->ctx = s->ctx;
    n->def = s->def;
    n->out = NULL;
    n->saved = NULL;
    for (int i = 0; i < s->n_in; i++)
        n->in[i] = arr[i];
    if (tg_node_run(n) != TG_OK)
        return ctx_err(s, what);
    return TG_OK;
}

static int out_matches(const op_state *s, const tg_tensor *y)
{
    return y->dtype == s->odt && tg_shape_equal(y->ndim, y->shape, s->ondim, s->oshape);
}

/* The numerics' loss: <u, f64 forward at arr64>. */
static tg_status op_loss(gc_eval *ev, double *L, double *S)
{
    op_state *s = (op_state *)ev;
    tg_node n;
    tg_status st = forward(s, &n, s->arr64, "f64 forward at a perturbed point", 0);
    if (st != TG_OK)
        return st;
    if (!tg_shape_equal(n.out->ndim, n.out->shape, s->ondim, s->oshape)) {
        snprintf(s->err, sizeof s->err, "variant %d: the f64 output shape differs from the %s one",
                 s->variant, tg_dtype_name(s->cfg->dt));
        return TG_ERR_SHAPE;
    }
    gc_dot(s->u, n.out->data, n.out->dtype, s->onumel, L, S);
    return TG_OK;
}

/* ---- one analytic run ---------------------------------------------------- */

typedef struct run_spec {
    tg_tensor *const *arr;    /* typed arrangement (aliasing: arr[j] == arr[i]) */
    unsigned mask;            /* inputs whose grad is set (others NULL)         */
    int      prefill;         /* grads start at g0 instead of 0                 */
    int      poison;
    int      fresh;           /* inputs the op overwrites start as the sweep's
                                 fresh buffers: NaN bytes, TG_TENSOR_GRAD_ZERO  */
    double **g;               /* per owning input: the gradient after the VJP   */
    double  *y;               /* forward values, or NULL                        */
} run_spec;

static int owner_of(const op_state *s, const tg_tensor *t)
{
    for (int i = 0; i < s->n_in; i++)
        if (s->xt[i] == t)
            return i;
    return -1;
}

/* After the VJP: nothing but the gradient bodies may have changed. */
static void check_writes(op_state *s, const tg_node *n, const unsigned char *owned)
{
    if (!(s->cfg->contracts & TG_GC_WRITES))
        return;
    long at;
    for (int i = 0; i < s->n_in; i++) {
        if (owned[i] && !gbuf_intact(&s->gb[i], &at))
            gc_contract_fail(s->rep, TG_GC_WRITES, "variant %d: the VJP wrote %s input %d's gradient "
                             "(at byte offset %ld of a %zu-byte buffer)", s->variant,
                             at < 0 ? "before the start of" : "past the end of", i, at, s->gb[i].bytes);
        if (memcmp(s->xt[i]->data, s->xt_copy[i], tbytes(s->xt[i])) != 0) {
            int64_t k = 0;
            size_t es = tg_dtype_size(s->xt[i]->dtype);
            while (memcmp((char *)s->xt[i]->data + k * es, (char *)s->xt_copy[i] + k * es, es) == 0)
                k++;
            gc_contract_fail(s->rep, TG_GC_WRITES, "variant %d: input %d's data changed at element %lld",
                             s->variant, i, (long long)k);
            memcpy(s->xt[i]->data, s->xt_copy[i], tbytes(s->xt[i]));
        }
    }
    if (!gbuf_intact(&s->ubuf, &at))
        gc_contract_fail(s->rep, TG_GC_WRITES, "variant %d: the VJP wrote outside out->grad (byte %ld)",
                         s->variant, at);
    for (int64_t k = 0; k < s->onumel; k++)
        if (gc_get(s->ubuf.body, s->odt, k) != s->u[k]) {
            gc_contract_fail(s->rep, TG_GC_WRITES, "variant %d: the VJP changed out->grad element %lld",
                             s->variant, (long long)k);
            break;
        }
    if (memcmp(n->out->data, s->ycopy, tbytes(n->out)) != 0)
        gc_contract_fail(s->rep, TG_GC_WRITES, "variant %d: the VJP changed the output's data", s->variant);
}

static tg_status analytic(op_state *s, const run_spec *r)
{
    tg_ctx_set_poison(s->ctx, r->poison);
    tg_node n;
    tg_status st = forward(s, &n, r->arr, "forward", !r->poison);
    if (st == TG_OK && !out_matches(s, n.out)) {
        snprintf(s->err, sizeof s->err, "variant %d: the output's shape or dtype changed between runs", s->variant);
        st = TG_ERR_STATE;
    }
    if (st != TG_OK) {
        tg_ctx_set_poison(s->ctx, 0);
        return st;
    }
    if (r->y)
        capture(n.out->data, s->odt, s->onumel, r->y);
    memcpy(s->ycopy, n.out->data, tbytes(n.out));
    gbuf_arm(&s->ubuf);
    for (int64_t k = 0; k < s->onumel; k++)
        gc_set(s->ubuf.body, s->odt, k, s->u[k]);
    n.out->grad = s->ubuf.body;

    unsigned char owned[TG_MAX_IN] = {0};
    for (int i = 0; i < s->n_in; i++)
        s->xt[i]->grad = NULL;
    for (int i = 0; i < s->n_in; i++) {
        int o = owner_of(s, r->arr[i]);
        if (!s->diff[i] || !(r->mask & (1u << i)) || o < 0 || owned[o])
            continue;
        owned[o] = 1;
        gbuf_arm(&s->gb[o]);
        if (r->prefill)
            for (int64_t k = 0; k < s->xt[o]->numel; k++)
                gc_set(s->gb[o].body, s->xt[o]->dtype, k, s->g0[o][k]);
        if (r->fresh && ((s->def->overwrites >> o) & 1u)) {
            memset(s->gb[o].body, 0xFF, s->gb[o].bytes);   /* NaN in f32 and f64 */
            s->xt[o]->flags |= TG_TENSOR_GRAD_ZERO;
        }
        s->xt[o]->grad = s->gb[o].body;
    }
    if (s->def->backward)
        s->def->backward(&n);
    for (int i = 0; i < s->n_in; i++)
        s->xt[i]->flags &= ~(uint32_t)TG_TENSOR_GRAD_ZERO;
    if (tg_ctx_status(s->ctx) != TG_OK)
        st = ctx_err(s, "backward");
    check_writes(s, &n, owned);
    for (int i = 0; i < s->n_in; i++) {
        if (owned[i])
            capture(s->gb[i].body, s->xt[i]->dtype, s->xt[i]->numel, r->g[i]);
        s->xt[i]->grad = NULL;
    }
    tg_ctx_set_poison(s->ctx, 0);
    return st;
}

/* ---- the contracts ------------------------------------------------------- */

/* |a - b| within the gradient tolerance (b the reference), plus `extra`. */
static int grad_close(const gc_cfg *cfg, double a, double b, double gmax, double extra)
{
    return fabs(a - b) <= cfg->atol * fmax(1.0, gmax) + cfg->rtol * fabs(b) + extra;
}

static double absmax(const double *v, int64_t n)
{
    double m = 0;
    for (int64_t k = 0; k < n; k++)
        if (isfinite(v[k]))
            m = fmax(m, fabs(v[k]));
    return m;
}

static void contract_elem(op_state *s, unsigned bit, int i, int64_t k, const char *fmt, double a, double b)
{
    char c[96], what[160];
    gc_coord_str(s->xt[i]->ndim, s->xt[i]->shape, k, c, sizeof c);
    snprintf(what, sizeof what, fmt, a, b);
    gc_contract_fail(s->rep, bit, "variant %d: input %d %s (flat %lld): %s", s->variant, i, c,
                     (long long)k, what);
}

/* The same run again (determinism), or with poisoned fresh memory (uninit):
 * forward values and gradients bit-identical to the reference run. */
static tg_status rerun(op_state *s, unsigned all, int poison)
{
    unsigned gbit = poison ? TG_GC_UNINIT : TG_GC_DETERMINISM;
    unsigned fbit = poison ? TG_GC_UNINIT : TG_GC_FWD_DETERMINISM;
    if (!(s->cfg->contracts & (gbit | fbit)))
        return TG_OK;
    run_spec r = { s->xt, all, 0, poison, 0, s->R, s->yr };
    tg_status st = analytic(s, &r);
    if (st != TG_OK)
        return st;
    const char *how = poison ? "with poisoned memory" : "on a second run";
    int64_t k;
    if ((s->cfg->contracts & fbit) && (k = gc_first_diff(s->y, s->yr, s->onumel)) >= 0)
        gc_contract_fail(s->rep, fbit, "variant %d: output element %lld is %.17g, then %.17g %s",
                         s->variant, (long long)k, s->y[k], s->yr[k], how);
    for (int i = 0; i < s->n_in && (s->cfg->contracts & gbit); i++)
        if (s->diff[i] && (k = gc_first_diff(s->G[i], s->R[i], s->xt[i]->numel)) >= 0) {
            contract_elem(s, gbit, i, k, poison ? "gradient %.17g, then %.17g with poisoned memory"
                                                : "gradient %.17g, then %.17g on a second run",
                          s->G[i][k], s->R[i][k]);
            break;
        }
    return TG_OK;
}

/* Overwrite: the declared inputs' gradients as fresh sweep buffers (NaN
 * bytes, TG_TENSOR_GRAD_ZERO) end bit for bit as from zeros: the VJP wrote
 * every element, as 0 + g. */
static tg_status overwrite_contract(op_state *s, unsigned all)
{
    unsigned decl = s->def->overwrites & all;
    if (!(s->cfg->contracts & TG_GC_OVERWRITE) || !decl)
        return TG_OK;
    run_spec r = { s->xt, all, 0, 0, 1, s->R, NULL };
    tg_status st = analytic(s, &r);
    if (st != TG_OK)
        return st;
    int64_t k;
    for (int i = 0; i < s->n_in; i++)
        if (((decl >> i) & 1u) && (k = gc_first_diff(s->G[i], s->R[i], s->xt[i]->numel)) >= 0) {
            contract_elem(s, TG_GC_OVERWRITE, i, k,
                          "%.17g into a fresh buffer (declared overwritten), %.17g into zeros: "
                          "left unwritten or added to?", s->R[i][k], s->G[i][k]);
            break;
        }
    return TG_OK;
}

/* Pass: a declared input of the output's size gets the cotangent itself
 * (the reference run's gradient, from zeros, equals u as a value). */
static void pass_contract(op_state *s, unsigned all)
{
    unsigned decl = s->def->passes_grad & all;
    for (int i = 0; i < s->n_in && (s->cfg->contracts & TG_GC_PASS); i++) {
        if (!((decl >> i) & 1u) || s->xt[i]->numel != s->onumel)
            continue;
        for (int64_t k = 0; k < s->onumel; k++) {
            double u = gc_round(s->u[k], s->odt);
            if (s->G[i][k] != u) {
                contract_elem(s, TG_GC_PASS, i, k, "gradient %.17g where the output's is %.17g "
                              "(declared passed through)", s->G[i][k], u);
                break;
            }
        }
    }
}

static tg_status accumulate_contracts(op_state *s, unsigned all)
{
    const gc_cfg *cfg = s->cfg;
    tg_status st;
    int64_t k;
    /* Accumulate: from a prefilled g0 the VJP must end at g0 + G. */
    if (cfg->contracts & TG_GC_ACCUMULATE) {
        run_spec r = { s->xt, all, 1, 0, 0, s->R, NULL };
        if ((st = analytic(s, &r)) != TG_OK)
            return st;
        double eps = cfg->dt == TG_F32 ? FLT_EPSILON : DBL_EPSILON;
        for (int i = 0; i < s->n_in; i++) {
            if (!s->diff[i])
                continue;
            double gmax = absmax(s->G[i], s->xt[i]->numel);
            for (k = 0; k < s->xt[i]->numel; k++) {
                double got = s->R[i][k] - s->g0[i][k];
                if (!grad_close(cfg, got, s->G[i][k], gmax, 16 * eps * (fabs(s->g0[i][k]) + fabs(s->G[i][k])))) {
                    contract_elem(s, TG_GC_ACCUMULATE, i, k,
                                  "the VJP added %.10g to a pre-filled gradient; from zero it gives %.10g "
                                  "(overwrites instead of +=?)", got, s->G[i][k]);
                    break;
                }
            }
        }
    }
    /* NULL grads: each input alone gets the gradient it gets with all. */
    if ((cfg->contracts & TG_GC_NULL_GRAD) && s->n_diff >= 2)
        for (int i = 0; i < s->n_in; i++) {
            if (!s->diff[i])
                continue;
            run_spec r = { s->xt, 1u << i, 0, 0, 0, s->R, NULL };
            if ((st = analytic(s, &r)) != TG_OK)
                return st;
            double gmax = absmax(s->G[i], s->xt[i]->numel);
            for (k = 0; k < s->xt[i]->numel; k++)
                if (!grad_close(cfg, s->R[i][k], s->G[i][k], gmax, 0)) {
                    contract_elem(s, TG_GC_NULL_GRAD, i, k,
                                  "gradient %.10g when the other inputs' grads are NULL, %.10g with all",
                                  s->R[i][k], s->G[i][k]);
                    break;
                }
        }
    return TG_OK;
}

/* Inputs i and j as one tensor: the VJP must sum both contributions. */
static tg_status alias_checks(op_state *s)
{
    int pairs = 0;
    for (int i = 0; i < s->n_in && pairs < MAX_ALIAS_PAIRS; i++)
        for (int j = i + 1; j < s->n_in && pairs < MAX_ALIAS_PAIRS; j++) {
            const tg_tensor *a = s->xt[i], *b = s->xt[j];
            if (!s->diff[i] || !s->diff[j] || a->dtype != b->dtype ||
                !tg_shape_equal(a->ndim, a->shape, b->ndim, b->shape))
                continue;
            tg_tensor *arr[TG_MAX_IN];
            for (int k = 0; k < s->n_in; k++) {
                arr[k] = s->xt[k];
                s->arr64[k] = s->x64[k];
            }
            arr[j] = s->xt[i];
            s->arr64[j] = s->x64[i];
            /* An op may reject or be undefined at f(x, x): nothing to judge then. */
            tg_node n;
            if (forward(s, &n, arr, "aliased forward", 0) != TG_OK || !out_matches(s, n.out))
                continue;
            int finite = 1;
            for (int64_t k = 0; k < s->onumel; k++)
                finite &= isfinite(gc_get(n.out->data, s->odt, k));
            if (!finite)
                continue;
            pairs++;
            s->rep->n_alias_pairs++;
            run_spec r = { arr, (1u << i) | (1u << j), 0, 0, 0, s->R, NULL };
            tg_status st = analytic(s, &r);
            if (st != TG_OK)
                return st;
            gc_where w = { s->variant, i, j, s->x64[i]->ndim, s->x64[i]->shape };
            int64_t nf;
            st = gc_check_input(s->cfg, &s->rng, &s->ev, s->x64[i]->data, s->x64[i]->numel, s->R[i],
                                &w, s->rep, &nf);
            if (st != TG_OK)
                return st;
            if (nf)
                gc_contract_fail(s->rep, TG_GC_ALIAS, "variant %d: inputs %d and %d as one tensor: %lld of "
                                 "%lld gradient values wrong (not the sum of both contributions)",
                                 s->variant, i, j, (long long)nf, (long long)s->x64[i]->numel);
        }
    for (int k = 0; k < s->n_in; k++)
        s->arr64[k] = s->x64[k];
    return TG_OK;
}

/* ---- one variant --------------------------------------------------------- */

static tg_status setup_inputs(op_state *s)
{
    const gc_cfg *cfg = s->cfg;
    tg_status st = s->def->sample(&s->proto, TG_F64, s->variant);
    if (st != TG_OK || tg_ctx_status(s->ctx) != TG_OK) {
        tg_status e = ctx_err(s, "the sample failed");
        return st != TG_OK ? st : e;
    }
    s->n_in = s->proto.n_in;
    if (s->n_in < 1 || s->n_in > TG_MAX_IN) {
        snprintf(s->err, sizeof s->err, "variant %d: the sample gave %d inputs", s->variant, s->n_in);
        return TG_ERR_ARG;
    }
    s->ctx_rng = *tg_ctx_rng(s->ctx);
    for (int i = 0; i < s->n_in; i++) {
        tg_tensor *x = s->proto.in[i];
        if (!x) {
            snprintf(s->err, sizeof s->err, "variant %d: the sample left input %d NULL", s->variant, i);
            return TG_ERR_ARG;
        }
        int fl = tg_dtype_is_float(x->dtype);
        s->x64[i] = tg_tensor_cast(s->ctx, x, fl ? TG_F64 : x->dtype);
        if (s->x64[i] && fl && cfg->dt == TG_F32)    /* the f32 op and the f64 numerics: one point */
            for (int64_t k = 0; k < x->numel; k++)
                ((double *)s->x64[i]->data)[k] = gc_round(((double *)s->x64[i]->data)[k], TG_F32);
        s->xt[i] = s->x64[i] ? tg_tensor_cast(s->ctx, s->x64[i], fl ? cfg->dt : x->dtype) : NULL;
        if (!s->xt[i])
            return ctx_err(s, "copying the sample");
        s->arr64[i] = s->x64[i];
        /* An op without a VJP is checked too: its gradient is then zero,
         * right for piecewise-constant ops, caught when it was forgotten. */
        s->diff[i] = fl && !(s->def->nondiff & (1u << i)) && x->numel > 0;
        s->n_diff += s->diff[i];
        if (!(s->xt_copy[i] = xalloc(tbytes(s->xt[i]))))
            return TG_ERR_NOMEM;
        memcpy(s->xt_copy[i], s->xt[i]->data, tbytes(s->xt[i]));
    }
    s->mark = tg_ctx_arena_mark(s->ctx);
    return TG_OK;
}

/* Forward contracts; fills the output facts, y64 and y. *go = 0 when the
 * gradient checks cannot run (non-finite forward). */
static tg_status forward_checks(op_state *s, int *go)
{
    const gc_cfg *cfg = s->cfg;
    tg_node n;
    tg_status st = forward(s, &n, s->x64, "the forward fails on its own sample (f64)", 0);
    if (st != TG_OK)
        return st;
    int64_t nout = n.out->numel;
    if (!(s->y64 = xalloc((size_t)nout * sizeof(double))) || !(s->y = xalloc((size_t)nout * sizeof(double))) ||
        !(s->yr = xalloc((size_t)nout * sizeof(double))))
        return TG_ERR_NOMEM;
    capture(n.out->data, n.out->dtype, nout, s->y64);
    tg_dtype dt64 = n.out->dtype;
    int nd64 = n.out->ndim;
    int64_t sh64[TG_MAX_DIMS];
    memcpy(sh64, n.out->shape, sizeof sh64);
    if ((st = forward(s, &n, s->x64, "the f64 forward failed on a second run", 0)) != TG_OK)
        return st;
    capture(n.out->data, n.out->dtype, nout, s->yr);
    int64_t k;
    if ((cfg->contracts & TG_GC_FWD_DETERMINISM) && (k = gc_first_diff(s->y64, s->yr, nout)) >= 0)
        gc_contract_fail(s->rep, TG_GC_FWD_DETERMINISM, "variant %d: f64 output element %lld is %.17g, "
                         "then %.17g", s->variant, (long long)k, s->y64[k], s->yr[k]);

    if ((st = forward(s, &n, s->xt, cfg->dt == TG_F32 ? "the forward fails on its own sample (f32)"
                                                      : "the forward failed", 0)) != TG_OK)
        return st;
    if (!tg_shape_equal(n.out->ndim, n.out->shape, nd64, sh64) ||
        (tg_dtype_is_float(dt64) != tg_dtype_is_float(n.out->dtype))) {
        snprintf(s->err, sizeof s->err, "variant %d: the f32 and f64 outputs differ in shape", s->variant);
        return TG_ERR_STATE;
    }
    s->odt = n.out->dtype;
    s->ondim = n.out->ndim;
    memcpy(s->oshape, n.out->shape, sizeof s->oshape);
    s->onumel = nout;
    capture(n.out->data, s->odt, nout, s->y);
    if (cfg->dt == TG_F32 && (cfg->contracts & TG_GC_FWD_F32) &&
        (k = gc_f32_mismatch(s->y, s->y64, nout, s->def->check_tol_scale)) >= 0)
        gc_contract_fail(s->rep, TG_GC_FWD_F32, "variant %d: output element %lld: f32 %.9g, f64 %.17g",
                         s->variant, (long long)k, s->y[k], s->y64[k]);
    *go = 1;
    for (k = 0; k < nout; k++)
        if (!isfinite(s->y64[k]) || !isfinite(s->y[k])) {
            gc_contract_fail(s->rep, TG_GC_FWD_FINITE, "variant %d: output element %lld is %g (%s) on the "
                             "op's own sample", s->variant, (long long)k,
                             isfinite(s->y64[k]) ? s->y[k] : s->y64[k],
                             isfinite(s->y64[k]) ? tg_dtype_name(s->odt) : "f64");
            *go = 0;
            break;
        }
    return TG_OK;
}

static tg_status grad_setup(op_state *s)
{
    size_t ob = (size_t)s->onumel;
    if (!(s->u = xalloc(ob * sizeof(double))) || !(s->ycopy = xalloc(ob * tg_dtype_size(s->odt))) ||
        !gbuf_alloc(&s->ubuf, ob * tg_dtype_size(s->odt)))
        return TG_ERR_NOMEM;
    for (int64_t k = 0; k < s->onumel; k++)
        s->u[k] = gc_round(tg_rng_normal(&s->rng), s->odt);
    for (int i = 0; i < s->n_in; i++) {
        if (!s->diff[i])
            continue;
        size_t n = (size_t)s->xt[i]->numel;
        if (!gbuf_alloc(&s->gb[i], n * tg_dtype_size(s->xt[i]->dtype)) ||
            !(s->G[i] = xalloc(n * sizeof(double))) || !(s->R[i] = xalloc(n * sizeof(double))) ||
            !(s->g0[i] = xalloc(n * sizeof(double))))
            return TG_ERR_NOMEM;
        for (size_t k = 0; k < n; k++) {   /* |g0| in [0.5, 1.5): an overwrite always shows */
            double m = 0.5 + tg_rng_uniform(&s->rng);
            s->g0[i][k] = gc_round(tg_rng_uniform(&s->rng) < 0.5 ? -m : m, s->xt[i]->dtype);
        }
    }
    return TG_OK;
}

static tg_status check_variant(op_state *s)
{
    tg_status st = setup_inputs(s);
    int go = 0;
    if (st == TG_OK)
        st = forward_checks(s, &go);
    if (st != TG_OK || !go || !s->n_diff || !tg_dtype_is_float(s->odt) || s->onumel == 0)
        return st;
    if ((st = grad_setup(s)) != TG_OK)
        return st;
    unsigned all = 0;
    for (int i = 0; i < s->n_in; i++)
        all |= (unsigned)s->diff[i] << i;
    /* A warm-up run grows the arena, so the reference run and every later
     * one start from memory gc_scrub reaches. */
    run_spec r = { s->xt, all, 0, 0, 0, s->G, s->y };
    if ((st = analytic(s, &r)) != TG_OK || (st = analytic(s, &r)) != TG_OK ||
        (st = rerun(s, all, 0)) != TG_OK || (st = accumulate_contracts(s, all)) != TG_OK ||
        (st = overwrite_contract(s, all)) != TG_OK)
        return st;
    pass_contract(s, all);
    for (int i = 0; i < s->n_in; i++) {
        if (!s->diff[i])
            continue;
        gc_where w = { s->variant, i, -1, s->x64[i]->ndim, s->x64[i]->shape };
        int64_t nf;
        st = gc_check_input(s->cfg, &s->rng, &s->ev, s->x64[i]->data, s->x64[i]->numel, s->G[i], &w,
                            s->rep, &nf);
        if (st != TG_OK)
            return st;
    }
    if ((s->cfg->contracts & TG_GC_ALIAS) && (st = alias_checks(s)) != TG_OK)
        return st;
    /* Poisoned memory last: no later run may inherit the NaN bytes. */
    return rerun(s, all, 1);
}

static void state_free(op_state *s)
{
    for (int i = 0; i < TG_MAX_IN; i++) {
        tg_free(s->xt_copy[i]);
        tg_free(s->gb[i].base);
        tg_free(s->G[i]);
        tg_free(s->R[i]);
        tg_free(s->g0[i]);
    }
    tg_free(s->u);
    tg_free(s->ubuf.base);
    tg_free(s->ycopy);
    tg_free(s->y);
    tg_free(s->yr);
    tg_free(s->y64);
    tg_ctx_free(s->ctx);
}

tg_status tg_gradcheck_op(const tg_op_def *def, const tg_gradcheck_opts *opts, tg_gradcheck_report *rep)
{
    if (!rep)
        return TG_ERR_ARG;
    gc_cfg cfg;
    gc_cfg_init(&cfg, opts, def ? def->check_tol_scale : 0);
    gc_report_begin(rep, def ? def->name : "(NULL op)", cfg.dt);
    if (!def || !def->shape || !def->forward)
        return gc_report_error(rep, TG_ERR_ARG, "incomplete op definition (no %s)",
                               !def ? "definition" : !def->shape ? "shape function" : "forward");
    if (!def->sample || def->n_samples < 1)
        return gc_report_error(rep, TG_ERR_ARG, "the op has no sample inputs (.sample and .n_samples >= 1 "
                               "are required to check it)");
    int first = 0, last = def->n_samples - 1;
    if (opts && opts->single_variant) {
        if (opts->variant < 0 || opts->variant >= def->n_samples)
            return gc_report_error(rep, TG_ERR_ARG, "variant %d out of range (the op has %d)",
                                   opts->variant, def->n_samples);
        first = last = opts->variant;
    }
    tg_status st = TG_OK;
    for (int v = first; v <= last && st == TG_OK; v++) {
        op_state s;
        memset(&s, 0, sizeof s);
        s.ev.loss = op_loss;
        s.def = def;
        s.cfg = &cfg;
        s.rep = rep;
        s.variant = v;
        uint64_t vseed = cfg.seed + 0x9E3779B97F4A7C15ull * (uint64_t)(v + 1);
        tg_rng_seed(&s.rng, vseed ^ 0xC0FFEEull);
        tg_ctx_opts co = { .seed = vseed };
        s.ctx = tg_ctx_new(&co);
        s.proto.def = def;
        s.proto.ctx = s.ctx;
        st = s.ctx ? check_variant(&s) : TG_ERR_NOMEM;
        if (st != TG_OK)
            gc_report_error(rep, st, "%s", s.err[0] ? s.err : tg_status_str(st));
        else
            rep->n_variants++;
        state_free(&s);
    }
    if (st == TG_OK)
        gc_report_finish(rep);
    return st;
}
