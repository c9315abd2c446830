/* bench.c — tg_bench_op: for each case (sample variant or user shape) make
 * the inputs, check the output against a reference, then time the kernel
 * (def->forward / def->backward on a prepared node) and the engine path
 * (tg_apply with recording + tg_backward_seed), with the first calls apart.
 * Inputs and the reference live in bench_input.c and bench_ref.c, clocks
 * and the machine probe in bench_probe.c, output in bench_io.c. */
#include "bench_impl.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct cfg {
    tg_dtype dt;
    int      threads, min_reps;
    double   budget;
    uint64_t seed;
    int      ndim;
    const int64_t *shape;
    const tg_bench_machine *machine;
} cfg;

/* One case's state. Three contexts: sctx holds the f64 sample and the
 * reference run, kctx the kernel node, ectx the engine's per-call arena. */
typedef struct bstate {
    const tg_op_def *def;
    const cfg       *cfg;
    tg_bench_case   *c;
    tg_ctx          *sctx, *kctx, *ectx;
    tg_node          proto;               /* the sample (f64, in sctx)      */
    tg_node          n;                   /* the kernel node (in kctx)      */
    int              diff[TG_MAX_IN];
    tg_tensor       *u;                   /* cotangent, in kctx             */
    void            *g[TG_MAX_IN];        /* kernel input gradients         */
    size_t           mark_fwd, mark_bwd;
    uint32_t         fresh;               /* fresh_mask, for bwd_fresh     */
    tg_rng           rng;                 /* sctx's RNG after the sample    */
    tg_tensor       *ein[TG_MAX_IN];      /* engine inputs (heap)           */
    tg_tensor       *eseed;
    int              failed;              /* a timed call failed            */
    char             err[320];
} bstate;

static const char *phase_names[TG_BENCH_N_PHASES] = {
    "fwd", "bwd", "bwd_fresh", "fwdbwd", "engine_fwd", "engine_fwdbwd",
};

const char *tg_bench_phase_name(int phase)
{
    return phase >= 0 && phase < TG_BENCH_N_PHASES ? phase_names[phase] : "?";
}

static tg_status ctx_err(bstate *s, tg_ctx *ctx, tg_status st, const char *what)
{
    tg_status cs = tg_ctx_status(ctx);
    snprintf(s->err, sizeof s->err, "%s: %s", what,
             cs != TG_OK ? tg_ctx_error(ctx) : tg_status_str(st != TG_OK ? st : TG_ERR_STATE));
    return cs != TG_OK ? cs : st != TG_OK ? st : TG_ERR_STATE;
}

/* ---- the kernel node ------------------------------------------------------- */

/* The node in kctx on inputs cast to the benchmarked dtype, with its output
 * (and for the VJP the cotangent and zeroed input gradients) allocated, so
 * the timed calls run def->forward / def->backward alone. */
static tg_status prepare_node(bstate *s)
{
    const tg_op_def *def = s->def;
    tg_node *n = &s->n;
    memset(n, 0, sizeof *n);
    n->def = def;
    n->ctx = s->kctx;
    n->n_in = s->proto.n_in;
    n->p = s->proto.p;
    n->user = s->proto.user;
    if (def->n_in != TG_VARIADIC && n->n_in != def->n_in) {
        snprintf(s->err, sizeof s->err, "the sample gave %d inputs, the op takes %d", n->n_in, def->n_in);
        return TG_ERR_ARG;
    }
    int n_diff = 0;
    for (int i = 0; i < n->n_in; i++) {
        const tg_tensor *x = s->proto.in[i];
        int fl = tg_dtype_is_float(x->dtype);
        if (!(n->in[i] = tg_tensor_cast(s->kctx, x, fl ? s->cfg->dt : x->dtype)))
            return ctx_err(s, s->kctx, TG_ERR_NOMEM, "copying the inputs");
        s->diff[i] = fl && !(def->nondiff & (1u << i)) && x->numel > 0;
        n_diff += s->diff[i];
    }
    tg_dtype odt = TG_F32;
    int ondim = 0;
    int64_t oshape[TG_MAX_DIMS] = {0};
    tg_status st = def->shape(n, &odt, &ondim, oshape);
    if (st != TG_OK)
        return ctx_err(s, s->kctx, st, "the op rejects its inputs");
    if (!(n->out = tg_tensor_zeros(s->kctx, odt, ondim, oshape)))
        return ctx_err(s, s->kctx, TG_ERR_NOMEM, "allocating the output");
    s->c->has_backward = def->backward && n_diff && tg_dtype_is_float(odt);
    if (s->c->has_backward) {
        tg_rng rng;
        tg_rng_seed(&rng, s->cfg->seed ^ 0x5EEDull);
        if (!(s->u = tg_tensor_new(s->kctx, odt, ondim, oshape)))
            return ctx_err(s, s->kctx, TG_ERR_NOMEM, "allocating the cotangent");
        for (int64_t k = 0; k < s->u->numel; k++)
            tg_tensor_set(s->u, k, 2 * tg_rng_uniform(&rng) - 1);
        for (int i = 0; i < n->n_in; i++) {
            if (!s->diff[i])
                continue;
            size_t bytes = (size_t)n->in[i]->numel * tg_dtype_size(n->in[i]->dtype);
            if (!(s->g[i] = tg_ctx_alloc(s->kctx, bytes, "bench")))
                return ctx_err(s, s->kctx, TG_ERR_NOMEM, "allocating the gradients");
            memset(s->g[i], 0, bytes);
        }
    }
    s->mark_fwd = tg_ctx_arena_mark(s->kctx);
    return TG_OK;
}

static void grads_on(bstate *s)
{
    s->n.out->grad = s->u->data;
    for (int i = 0; i < s->n.n_in; i++)
        s->n.in[i]->grad = s->diff[i] ? s->g[i] : NULL;
}

/* ---- the check ------------------------------------------------------------- */

/* The op's forward in the other dtype at the same inputs (sctx). */
static tg_status reference(bstate *s, tg_node *r)
{
    tg_dtype other = s->cfg->dt == TG_F32 ? TG_F64 : TG_F32;
    *r = s->proto;
    r->out = NULL;
    r->saved = NULL;
    for (int i = 0; i < r->n_in; i++)
        if (tg_dtype_is_float(r->in[i]->dtype) && other != TG_F64 &&
            !(r->in[i] = tg_tensor_cast(s->sctx, r->in[i], other)))
            return ctx_err(s, s->sctx, TG_ERR_NOMEM, "copying the inputs for the reference");
    *tg_ctx_rng(s->sctx) = s->rng;
    tg_status st = tg_node_run(r);
    if (st != TG_OK)
        return ctx_err(s, s->sctx, st, other == TG_F64 ? "the f64 reference forward failed"
                                                        : "the f32 cross-check forward failed");
    return TG_OK;
}

/* Compare the tested output y with the reference ref: f32 tolerances
 * (times the op's check_tol_scale), widened by the rounding a reduction of
 * L = inputs/outputs terms may add. 1 with c->message set on a mismatch. */
static int compare(bstate *s, const tg_tensor *y, const tg_tensor *ref)
{
    tg_bench_case *c = s->c;
    const char *tn = tg_dtype_name(s->cfg->dt), *rn = tg_dtype_name(ref->dtype);
    if (!tg_shape_equal(y->ndim, y->shape, ref->ndim, ref->shape)) {
        char a[TG_SHAPE_STR_MAX], b[TG_SHAPE_STR_MAX];
        snprintf(c->message, sizeof c->message, "output shape %s in %s, %s in %s",
                 tg_shape_str(y->ndim, y->shape, a, sizeof a), tn, tg_shape_str(ref->ndim, ref->shape, b, sizeof b), rn);
        return 1;
    }
    double ymax = 0, xmax = 0, nin = 0;
    for (int64_t k = 0; k < ref->numel; k++)
        if (isfinite(tg_tensor_get(ref, k)))
            ymax = fmax(ymax, fabs(tg_tensor_get(ref, k)));
    for (int i = 0; i < s->proto.n_in; i++) {
        const tg_tensor *x = s->proto.in[i];
        if (!tg_dtype_is_float(x->dtype))
            continue;
        nin += (double)x->numel;
        for (int64_t k = 0; k < x->numel; k++)
            xmax = fmax(xmax, fabs(((const double *)x->data)[k]));
    }
    double L = fmax(1.0, nin / (double)(ref->numel ? ref->numel : 1));
    double sc = s->def->check_tol_scale > 0 ? s->def->check_tol_scale : 1.0;
    double widen = L * FLT_EPSILON * fmax(xmax, xmax * xmax);
    int exact = !tg_dtype_is_float(y->dtype);
    for (int64_t k = 0; k < y->numel; k++) {
        double a = tg_tensor_get(y, k), b = tg_tensor_get(ref, k);
        double tol = exact ? 0 : sc * (1e-5 * fmax(1.0, ymax) + 1e-4 * fabs(b)) + widen;
        int ok = isfinite(b) ? fabs(a - b) <= tol : (isnan(b) ? isnan(a) : a == b);
        if (!ok) {
            snprintf(c->message, sizeof c->message, "output element %lld: %s %.9g, %s reference %.17g "
                     "(tolerance %.2g)", (long long)k, tn, a, rn, b, tol);
            return 1;
        }
    }
    return 0;
}

/* First forward (timed alone), the check against the references, the
 * first VJP (timed alone). 1 when the case may be timed. */
static int first_calls_and_check(bstate *s)
{
    tg_bench_case *c = s->c;
    tg_node *n = &s->n;
    *tg_ctx_rng(s->kctx) = s->rng;
    double t0 = bench_now();
    tg_status st = s->def->forward(n);
    c->first_fwd_ns = (bench_now() - t0) * 1e9;
    if (st != TG_OK || tg_ctx_status(s->kctx) != TG_OK) {
        c->status = ctx_err(s, s->kctx, st, "the forward failed");
        snprintf(c->message, sizeof c->message, "%s", s->err);
        return 0;
    }
    tg_node r;
    if ((st = reference(s, &r)) != TG_OK) {
        c->status = st;
        snprintf(c->message, sizeof c->message, "%s", s->err);
        return 0;
    }
    if (compare(s, n->out, r.out)) {
        c->mismatch = 1;
        return 0;
    }
    char msg[300];
    int rc = bench_ref_check(n, msg, sizeof msg);
    if (rc != 0) {
        if (rc > 0)
            c->mismatch = 1;
        else
            c->status = TG_ERR_STATE;
        snprintf(c->message, sizeof c->message, "%s", msg);
        return 0;
    }
    if (!c->has_backward)
        return 1;
    grads_on(s);
    s->mark_bwd = tg_ctx_arena_mark(s->kctx);
    t0 = bench_now();
    s->def->backward(n);
    c->first_bwd_ns = (bench_now() - t0) * 1e9;
    tg_ctx_arena_rewind(s->kctx, s->mark_bwd);
    if (tg_ctx_status(s->kctx) != TG_OK) {
        c->status = ctx_err(s, s->kctx, TG_ERR_STATE, "the VJP failed");
        snprintf(c->message, sizeof c->message, "%s", s->err);
        return 0;
    }
    for (int i = 0; i < n->n_in; i++)
        for (int64_t k = 0; s->diff[i] && k < n->in[i]->numel; k++)
            if (!isfinite(tg_tensor_grad_get(n->in[i], k))) {
                c->mismatch = 1;
                snprintf(c->message, sizeof c->message, "the VJP gives %g for input %d element %lld",
                         tg_tensor_grad_get(n->in[i], k), i, (long long)k);
                return 0;
            }
    return 1;
}

/* ---- the timed calls ------------------------------------------------------- */

static void kernel_fwd(void *ud)
{
    bstate *s = ud;
    tg_ctx_arena_rewind(s->kctx, s->mark_fwd);
    if (s->def->forward(&s->n) != TG_OK)
        s->failed = 1;
}

static void kernel_bwd(void *ud)
{
    bstate *s = ud;
    s->def->backward(&s->n);
    tg_ctx_arena_rewind(s->kctx, s->mark_bwd);
}

/* The inputs whose gradient the VJP may write fresh: declared by the op and
 * given a buffer here. */
static uint32_t fresh_mask(const bstate *s)
{
    uint32_t m = 0;
    for (int i = 0; i < s->n.n_in; i++)
        if (((s->def->overwrites >> i) & 1u) && s->n.in[i]->grad)
            m |= 1u << i;
    return m;
}

/* The VJP into fresh gradients: each call finds them flagged
 * TG_TENSOR_GRAD_ZERO, as the sweep leaves them (their old values are
 * overwritten, never read). */
static void kernel_bwd_fresh(void *ud)
{
    bstate *s = ud;
    const uint32_t m = s->fresh;
    for (int i = 0; i < s->n.n_in; i++)
        if ((m >> i) & 1u)
            s->n.in[i]->flags |= TG_TENSOR_GRAD_ZERO;
    s->def->backward(&s->n);
    for (int i = 0; i < s->n.n_in; i++)
        s->n.in[i]->flags &= ~(uint32_t)TG_TENSOR_GRAD_ZERO;
    tg_ctx_arena_rewind(s->kctx, s->mark_bwd);
}

static void kernel_fwdbwd(void *ud)
{
    bstate *s = ud;
    tg_ctx_arena_rewind(s->kctx, s->mark_fwd);
    if (s->def->forward(&s->n) != TG_OK)
        s->failed = 1;
    s->def->backward(&s->n);
}

static void engine_fwd(void *ud)
{
    bstate *s = ud;
    if (!tg_apply(s->ectx, s->def, s->ein, s->n.n_in, &s->n.p, s->n.user) && !s->failed) {
        s->failed = 1;
        snprintf(s->err, sizeof s->err, "tg_apply failed: %s", tg_ctx_error(s->ectx));
    }
    tg_ctx_reset(s->ectx);
}

static void engine_fwdbwd(void *ud)
{
    bstate *s = ud;
    tg_tensor *y = tg_apply(s->ectx, s->def, s->ein, s->n.n_in, &s->n.p, s->n.user);
    if ((!y || tg_backward_seed(s->ectx, y, s->eseed) != TG_OK) && !s->failed) {
        s->failed = 1;
        snprintf(s->err, sizeof s->err, "tg_apply + tg_backward_seed failed: %s", tg_ctx_error(s->ectx));
    }
    tg_ctx_reset(s->ectx);
}

/* Heap copies of the kernel inputs (gradients where the VJP gives one) and
 * of the cotangent, as a training step holds its parameters. */
static tg_status engine_setup(bstate *s)
{
    tg_ctx_opts co = { .seed = s->cfg->seed, .n_threads = s->cfg->threads };
    if (!(s->ectx = tg_ctx_new(&co)))
        return TG_ERR_NOMEM;
    for (int i = 0; i < s->n.n_in; i++) {
        const tg_tensor *x = s->n.in[i];
        tg_status st;
        if (!(s->ein[i] = tg_tensor_create(x->dtype, x->ndim, x->shape, &st)))
            return st;
        memcpy(s->ein[i]->data, x->data, (size_t)x->numel * tg_dtype_size(x->dtype));
        if (s->c->has_backward && s->diff[i] && (st = tg_tensor_requires_grad(s->ein[i])) != TG_OK)
            return st;
    }
    if (s->c->has_backward) {
        const tg_tensor *u = s->u;
        tg_status st;
        if (!(s->eseed = tg_tensor_create(u->dtype, u->ndim, u->shape, &st)))
            return st;
        memcpy(s->eseed->data, u->data, (size_t)u->numel * tg_dtype_size(u->dtype));
    }
    return TG_OK;
}

static tg_status time_phase(bstate *s, int phase, void (*fn)(void *))
{
    tg_bench_stats *st = &s->c->phase[phase];
    tg_status r = bench_measure(fn, s, s->cfg->budget, s->cfg->min_reps, st);
    tg_ctx *ctx = phase >= TG_BENCH_ENGINE_FWD ? s->ectx : s->kctx;
    if (r == TG_OK && (s->failed || tg_ctx_status(ctx) != TG_OK)) {
        if (!s->err[0])
            snprintf(s->err, sizeof s->err, "%s failed while timed: %s", phase_names[phase],
                     tg_ctx_status(ctx) != TG_OK ? tg_ctx_error(ctx) : "error status");
        r = TG_ERR_STATE;
    }
    if (r != TG_OK)
        st->iterations = 0;
    return r;
}

static tg_status time_case(bstate *s)
{
    tg_bench_case *c = s->c;
    tg_status st;
    if ((st = time_phase(s, TG_BENCH_FWD, kernel_fwd)) != TG_OK)
        return st;
    if (c->has_backward) {
        /* The VJP alone, at the saved state of the last forward. */
        grads_on(s);
        s->mark_bwd = tg_ctx_arena_mark(s->kctx);
        if ((st = time_phase(s, TG_BENCH_BWD, kernel_bwd)) != TG_OK)
            return st;
        s->fresh = fresh_mask(s);
        c->has_fresh = s->fresh != 0;
        if (c->has_fresh && (st = time_phase(s, TG_BENCH_BWD_FRESH, kernel_bwd_fresh)) != TG_OK)
            return st;
        if ((st = time_phase(s, TG_BENCH_FWDBWD, kernel_fwdbwd)) != TG_OK)
            return st;
    }
    if ((st = engine_setup(s)) != TG_OK) {
        snprintf(s->err, sizeof s->err, "setting up the engine run: %s", tg_status_str(st));
        return st;
    }
    if ((st = time_phase(s, TG_BENCH_ENGINE_FWD, engine_fwd)) != TG_OK)
        return st;
    if (c->has_backward && (st = time_phase(s, TG_BENCH_ENGINE_FWDBWD, engine_fwdbwd)) != TG_OK)
        return st;

    const tg_op_cost *k = &c->cost;
    double ff = k->fwd_flops, fb = k->fwd_bytes, bf = k->bwd_flops, bb = k->bwd_bytes, bfresh = bb;
    for (int i = 0; i < s->n.n_in; i++)   /* the fresh gradients are not read */
        if ((s->fresh >> i) & 1u)
            bfresh -= (double)s->n.in[i]->numel * (double)tg_dtype_size(s->n.in[i]->dtype);
    const double flops[TG_BENCH_N_PHASES] = { ff, bf, bf, ff + bf, ff, ff + bf };
    const double bytes[TG_BENCH_N_PHASES] = { fb, bb, bfresh > 0 ? bfresh : 0, fb + bb, fb, fb + bb };
    for (int p = 0; p < TG_BENCH_N_PHASES; p++)
        if (c->phase[p].iterations > 0)
            bench_rates(&c->phase[p], c->has_cost ? flops[p] : 0, c->has_cost ? bytes[p] : 0,
                        s->cfg->machine, s->cfg->dt, s->cfg->threads);
    c->overhead_fwd_ns = c->phase[TG_BENCH_ENGINE_FWD].median_ns - c->phase[TG_BENCH_FWD].median_ns;
    if (c->has_backward)
        c->overhead_fwdbwd_ns = c->phase[TG_BENCH_ENGINE_FWDBWD].median_ns - c->phase[TG_BENCH_FWDBWD].median_ns;
    return TG_OK;
}

static void state_free(bstate *s)
{
    for (int i = 0; i < TG_MAX_IN; i++)
        tg_tensor_destroy(s->ein[i]);
    tg_tensor_destroy(s->eseed);
    tg_ctx_free(s->sctx);
    tg_ctx_free(s->kctx);
    tg_ctx_free(s->ectx);
}

/* One case: inputs, check, timing. Errors of the op go into the case;
 * the return value is the harness's own failure (TG_ERR_NOMEM). */
static tg_status run_case(const tg_op_def *def, const cfg *cfg, int variant, tg_bench_case *c)
{
    bstate s;
    memset(&s, 0, sizeof s);
    memset(c, 0, sizeof *c);
    s.def = def;
    s.cfg = cfg;
    s.c = c;
    c->variant = variant;
    uint64_t vseed = cfg->seed + 0x9E3779B97F4A7C15ull * (uint64_t)(variant + 2);
    tg_ctx_opts co = { .seed = vseed, .n_threads = cfg->threads };
    s.sctx = tg_ctx_new(&co);
    s.kctx = tg_ctx_new(&co);
    if (!s.sctx || !s.kctx) {
        state_free(&s);
        return TG_ERR_NOMEM;
    }
    s.proto.def = def;
    s.proto.ctx = s.sctx;
    tg_status st = bench_make_inputs(&s.proto, variant, cfg->ndim, cfg->shape, c->message, sizeof c->message);
    bench_label(c->label, sizeof c->label, variant, &s.proto, cfg->ndim, cfg->shape);
    if (st != TG_OK) {
        c->status = st;
        state_free(&s);
        return st == TG_ERR_NOMEM ? st : TG_OK;
    }
    s.rng = *tg_ctx_rng(s.sctx);
    if ((st = prepare_node(&s)) != TG_OK) {
        c->status = st;
        snprintf(c->message, sizeof c->message, "%s", s.err);
    } else if (first_calls_and_check(&s)) {
        if (def->cost) {
            def->cost(&s.n, &c->cost);
            c->has_cost = 1;
        }
        /* The f64 sample and the reference are no longer needed. */
        tg_ctx_free(s.sctx);
        s.sctx = NULL;
        if ((st = time_case(&s)) != TG_OK) {
            c->status = st;
            snprintf(c->message, sizeof c->message, "%s", s.err[0] ? s.err : tg_status_str(st));
            for (int p = 0; p < TG_BENCH_N_PHASES; p++)
                c->phase[p].iterations = 0;
        }
    }
    state_free(&s);
    return st == TG_ERR_NOMEM ? st : TG_OK;
}

tg_status tg_bench_op(const tg_op_def *def, const tg_bench_opts *opts, tg_bench_result *res)
{
    if (!res)
        return TG_ERR_ARG;
    memset(res, 0, sizeof *res);
    tg_bench_opts o;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    snprintf(res->op, sizeof res->op, "%s", def && def->name ? def->name : "(NULL op)");
    res->dtype = o.dtype;
    res->threads = o.threads > 0 ? o.threads : 1;
    if (!def || !def->name || !def->shape || !def->forward) {
        snprintf(res->message, sizeof res->message, "incomplete op definition (no %s)",
                 !def ? "definition" : !def->name ? "name" : !def->shape ? "shape function" : "forward");
        return TG_ERR_ARG;
    }
    if (!def->sample || def->n_samples < 1) {
        snprintf(res->message, sizeof res->message, "the op has no sample inputs (.sample and .n_samples "
                 ">= 1 are required to benchmark it)");
        return TG_ERR_ARG;
    }
    if (o.dtype != TG_F32 && o.dtype != TG_F64) {
        snprintf(res->message, sizeof res->message, "dtype must be f32 or f64");
        return TG_ERR_ARG;
    }
    if (o.ndim < 0 || o.ndim > TG_MAX_DIMS) {
        snprintf(res->message, sizeof res->message, "shape has %d dims (1..%d)", o.ndim, TG_MAX_DIMS);
        return TG_ERR_ARG;
    }
    for (int k = 0; k < o.ndim; k++)
        if (o.shape[k] < 1) {
            snprintf(res->message, sizeof res->message, "shape dim %d is %lld", k, (long long)o.shape[k]);
            return TG_ERR_ARG;
        }
    int first = 0, last = def->n_samples - 1;
    if (o.ndim > 0) {
        first = last = -1;
    } else if (o.single_variant) {
        if (o.variant < 0 || o.variant >= def->n_samples) {
            snprintf(res->message, sizeof res->message, "variant %d out of range (the op has %d)",
                     o.variant, def->n_samples);
            return TG_ERR_ARG;
        }
        first = last = o.variant;
    }
    if (last - first + 1 > TG_BENCH_MAX_CASES)
        last = first + TG_BENCH_MAX_CASES - 1;

    if (o.machine) {
        res->machine = *o.machine;
    } else {
        tg_status st = tg_bench_probe(&res->machine, o.time_budget);
        if (st == TG_ERR_NOMEM) {
            snprintf(res->message, sizeof res->message, "the machine probe ran out of memory");
            return st;
        }
    }
    cfg c = {
        .dt = o.dtype, .threads = res->threads,
        .min_reps = o.min_reps > 0 ? o.min_reps : 5,
        .budget = o.time_budget > 0 ? o.time_budget : 0.2,
        .seed = o.seed, .ndim = o.ndim, .shape = o.shape, .machine = &res->machine,
    };
    for (int v = first; v <= last; v++) {
        tg_bench_case *bc = &res->cases[res->n_cases++];
        tg_status st = run_case(def, &c, v, bc);
        if (st != TG_OK) {
            snprintf(res->message, sizeof res->message, "%s: %s", bc->label, tg_status_str(st));
            return st;
        }
        if (bc->mismatch)
            res->n_mismatch++;
        else if (bc->status != TG_OK)
            res->n_error++;
        else
            res->n_timed++;
    }
    return TG_OK;
}
