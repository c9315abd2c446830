/* gradcheck_fn.c — tg_gradcheck_fn_check: the tape's gradient of a
 * composite function (ops recorded by a user's function) against f64 finite
 * differences, in a private context, with the determinism and uninit
 * contracts. The numeric core and the report are in gradcheck.c. */
#include "gradcheck_impl.h"

#include <math.h>
#include <string.h>

/* ---- composite functions through the tape -------------------------------- */

typedef struct fn_state {
    gc_eval         ev;
    tg_ctx         *ctx;
    tg_gradcheck_fn fn;
    void           *ud;
    int             n;
    tg_tensor      *x64[TG_MAX_IN];   /* f64 copies, perturbed by the numeric core */
    tg_tensor      *xt[TG_MAX_IN];    /* copies in the tested dtype, with grads     */
    double         *G[TG_MAX_IN];     /* analytic gradient                          */
    double         *G2[TG_MAX_IN];    /* a rerun's gradient                         */
    int             ndim;             /* output shape                               */
    int64_t         shape[TG_MAX_DIMS];
    int64_t         numel;
    double         *u;                /* cotangent (rounded to the tested dtype)    */
    double         *y64, *y, *y2;     /* f64 forward, tested forward, a rerun's     */
    uint64_t        ctx_seed;
    tg_status       err;              /* fn's failure, with its message saved       */
    char            msg[400];
} fn_state;

static tg_status fn_fail(fn_state *s, tg_status st, const char *what)
{
    if (st == TG_OK)
        st = TG_ERR_STATE;
    s->err = st;
    snprintf(s->msg, sizeof s->msg, "%s: %s", what,
             tg_ctx_status(s->ctx) != TG_OK ? tg_ctx_error(s->ctx) : tg_status_str(st));
    return st;
}

static int same_out_shape(const fn_state *s, const tg_tensor *y)
{
    return tg_shape_equal(y->ndim, y->shape, s->ndim, s->shape) && tg_dtype_is_float(y->dtype);
}

static void fn_begin(fn_state *s, int poison, int scrub)
{
    tg_ctx_reset(s->ctx);
    tg_ctx_set_poison(s->ctx, 0);
    if (scrub)
        gc_scrub(s->ctx);
    tg_ctx_set_poison(s->ctx, poison);
    tg_rng_seed(tg_ctx_rng(s->ctx), s->ctx_seed);   /* same draws every call */
}

static tg_status fn_loss(gc_eval *ev, double *L, double *S)
{
    fn_state *s = (fn_state *)ev;
    fn_begin(s, 0, 0);
    int prev = tg_set_grad_enabled(s->ctx, 0);
    tg_tensor *y = s->fn(s->ctx, s->x64, s->n, s->ud);
    tg_set_grad_enabled(s->ctx, prev);
    if (!y)
        return fn_fail(s, tg_ctx_status(s->ctx), "the function failed at a perturbed point");
    if (!same_out_shape(s, y))
        return fn_fail(s, TG_ERR_SHAPE, "the output shape changed between calls");
    gc_dot(s->u, y->data, y->dtype, s->numel, L, S);
    tg_ctx_reset(s->ctx);
    return TG_OK;
}

/* One analytic run: forward with grad on, VJP seeded with u. Gradients go
 * to g[i], the forward's values to y. */
static tg_status fn_grad(fn_state *s, int poison, double **g, double *y)
{
    fn_begin(s, poison, !poison);
    for (int i = 0; i < s->n; i++)
        tg_tensor_zero_grad(s->xt[i]);
    tg_status st = TG_OK;
    tg_tensor *out = s->fn(s->ctx, s->xt, s->n, s->ud);
    if (!out) {
        st = fn_fail(s, tg_ctx_status(s->ctx), "the function failed");
    } else if (!same_out_shape(s, out)) {
        st = fn_fail(s, TG_ERR_SHAPE, "the output shape changed between calls");
    } else {
        for (int64_t k = 0; k < s->numel; k++)
            y[k] = gc_get(out->data, out->dtype, k);
        if (out->flags & TG_TENSOR_REQUIRES_GRAD) {   /* else: constant in the inputs */
            tg_tensor *seed = tg_tensor_new(s->ctx, out->dtype, out->ndim, out->shape);
            if (seed)
                for (int64_t k = 0; k < s->numel; k++)
                    gc_set(seed->data, seed->dtype, k, s->u[k]);
            if (!seed || tg_backward_seed(s->ctx, out, seed) != TG_OK)
                st = fn_fail(s, tg_ctx_status(s->ctx), "backward failed");
        }
    }
    for (int i = 0; i < s->n && st == TG_OK; i++)
        for (int64_t k = 0; k < s->xt[i]->numel; k++)
            g[i][k] = gc_get(s->xt[i]->grad, s->xt[i]->dtype, k);
    fn_begin(s, 0, 0);
    return st;
}

static void fn_free(fn_state *s)
{
    for (int i = 0; i < s->n; i++) {
        tg_tensor_destroy(s->x64[i]);
        tg_tensor_destroy(s->xt[i]);
        tg_free(s->G[i]);
        tg_free(s->G2[i]);
    }
    tg_free(s->u);
    tg_free(s->y64);
    tg_free(s->y);
    tg_free(s->y2);
    tg_ctx_free(s->ctx);
}

static tg_status fn_setup(fn_state *s, const gc_cfg *cfg, tg_tensor *const *inputs)
{
    tg_status st = TG_OK;
    tg_ctx_opts co = { .seed = s->ctx_seed };
    if (!(s->ctx = tg_ctx_new(&co)))
        return TG_ERR_NOMEM;
    for (int i = 0; i < s->n && st == TG_OK; i++) {
        const tg_tensor *x = inputs[i];
        s->x64[i] = tg_tensor_create(TG_F64, x->ndim, x->shape, &st);
        if (st == TG_OK)
            s->xt[i] = tg_tensor_create(cfg->dt, x->ndim, x->shape, &st);
        if (st == TG_OK)
            st = tg_tensor_requires_grad(s->xt[i]);
        size_t gbytes = (size_t)(x->numel ? x->numel : 1) * sizeof(double);
        if (st == TG_OK && (!(s->G[i] = tg_malloc(gbytes)) || !(s->G2[i] = tg_malloc(gbytes))))
            st = TG_ERR_NOMEM;
        for (int64_t k = 0; st == TG_OK && k < x->numel; k++) {
            double v = gc_round(gc_get(x->data, x->dtype, k), cfg->dt);
            gc_set(s->x64[i]->data, TG_F64, k, v);
            gc_set(s->xt[i]->data, cfg->dt, k, v);
        }
    }
    return st;
}

/* The same run again (determinism), or with poisoned arena memory (uninit):
 * forward values and gradients must be bit-identical to the first run. */
static tg_status fn_rerun(fn_state *s, const gc_cfg *cfg, tg_gradcheck_report *rep, int poison)
{
    unsigned gbit = poison ? TG_GC_UNINIT : TG_GC_DETERMINISM;
    unsigned fbit = poison ? TG_GC_UNINIT : TG_GC_FWD_DETERMINISM;
    if (!(cfg->contracts & (gbit | fbit)))
        return TG_OK;
    tg_status st = fn_grad(s, poison, s->G2, s->y2);
    if (st != TG_OK)
        return gc_report_error(rep, st, "%s", s->msg);
    const char *how = poison ? " with poisoned memory" : " on a second run";
    int64_t k;
    if ((cfg->contracts & fbit) && (k = gc_first_diff(s->y, s->y2, s->numel)) >= 0)
        gc_contract_fail(rep, fbit, "output element %lld: %.17g, then %.17g%s", (long long)k,
                         s->y[k], s->y2[k], how);
    for (int i = 0; i < s->n && (cfg->contracts & gbit); i++)
        if ((k = gc_first_diff(s->G[i], s->G2[i], s->xt[i]->numel)) >= 0) {
            char c[96];
            gc_coord_str(s->xt[i]->ndim, s->xt[i]->shape, k, c, sizeof c);
            gc_contract_fail(rep, gbit, "input %d %s gradient %.17g, then %.17g%s", i, c,
                             s->G[i][k], s->G2[i][k], how);
            break;
        }
    return TG_OK;
}

static tg_status fn_check_body(fn_state *s, const gc_cfg *cfg, tg_gradcheck_report *rep, tg_rng *rng)
{
    /* The f64 forward at the inputs fixes the output shape; it must be finite. */
    fn_begin(s, 0, 0);
    tg_tensor *y64 = s->fn(s->ctx, s->x64, s->n, s->ud);
    if (!y64)
        return gc_report_error(rep, fn_fail(s, tg_ctx_status(s->ctx), "f64"),
                               "the function failed on its inputs: %s", s->msg);
    if (!tg_dtype_is_float(y64->dtype))
        return gc_report_error(rep, TG_ERR_ARG, "the function's output is %s", tg_dtype_name(y64->dtype));
    s->ndim = y64->ndim;
    memcpy(s->shape, y64->shape, sizeof s->shape);
    s->numel = y64->numel;
    size_t ob = (size_t)(s->numel ? s->numel : 1) * sizeof(double);
    if (!(s->u = tg_malloc(ob)) || !(s->y64 = tg_malloc(ob)) || !(s->y = tg_malloc(ob)) ||
        !(s->y2 = tg_malloc(ob)))
        return gc_report_error(rep, TG_ERR_NOMEM, "out of memory");
    int64_t bad = -1;
    for (int64_t k = 0; k < s->numel; k++) {
        s->y64[k] = gc_get(y64->data, y64->dtype, k);
        s->u[k] = gc_round(tg_rng_normal(rng), cfg->dt);
        if (!isfinite(s->y64[k]) && bad < 0)
            bad = k;
    }
    fn_begin(s, 0, 0);
    if (bad >= 0) {
        gc_contract_fail(rep, TG_GC_FWD_FINITE, "output element %lld is %g at the given inputs",
                         (long long)bad, s->y64[bad]);
        return TG_OK;
    }

    /* A warm-up run grows the arena, so every later run starts from memory
     * that gc_scrub reaches. */
    tg_status st = fn_grad(s, 0, s->G, s->y);
    if (st == TG_OK)
        st = fn_grad(s, 0, s->G, s->y);
    if (st != TG_OK)
        return gc_report_error(rep, st, "%s", s->msg);
    int64_t k;
    if (cfg->dt == TG_F32 && (cfg->contracts & TG_GC_FWD_F32) &&
        (k = gc_f32_mismatch(s->y, s->y64, s->numel, 1.0)) >= 0)
        gc_contract_fail(rep, TG_GC_FWD_F32, "output element %lld: f32 %.9g, f64 %.17g",
                         (long long)k, s->y[k], s->y64[k]);
    if ((st = fn_rerun(s, cfg, rep, 0)) != TG_OK)
        return st;

    for (int i = 0; i < s->n; i++) {
        gc_where w = { -1, i, -1, s->x64[i]->ndim, s->x64[i]->shape };
        int64_t nf;
        st = gc_check_input(cfg, rng, &s->ev, s->x64[i]->data, s->x64[i]->numel, s->G[i], &w, rep, &nf);
        if (st != TG_OK)
            return gc_report_error(rep, st, "%s", s->err != TG_OK ? s->msg : "out of memory");
    }
    /* Poisoned memory last: nothing after it may inherit the NaN bytes. */
    return fn_rerun(s, cfg, rep, 1);
}

tg_status tg_gradcheck_fn_check(tg_gradcheck_fn fn, void *ud, tg_tensor *const *inputs,
                                int n_inputs, const tg_gradcheck_opts *opts,
                                tg_gradcheck_report *rep)
{
    if (!rep)
        return TG_ERR_ARG;
    gc_cfg cfg;
    gc_cfg_init(&cfg, opts, 0);
    gc_report_begin(rep, "fn", cfg.dt);
    if (!fn)
        return gc_report_error(rep, TG_ERR_ARG, "NULL function");
    if (n_inputs < 1 || n_inputs > TG_MAX_IN || !inputs)
        return gc_report_error(rep, TG_ERR_ARG, "need 1..%d inputs, got %d", TG_MAX_IN, n_inputs);
    for (int i = 0; i < n_inputs; i++)
        if (!inputs[i] || !inputs[i]->data || !tg_dtype_is_float(inputs[i]->dtype))
            return gc_report_error(rep, TG_ERR_ARG, "input %d is %s", i,
                                   !inputs[i] || !inputs[i]->data ? "NULL" : "not a float tensor");

    fn_state s;
    memset(&s, 0, sizeof s);
    s.ev.loss = fn_loss;
    s.fn = fn;
    s.ud = ud;
    s.n = n_inputs;
    s.ctx_seed = cfg.seed ^ 0x5EEDF00Dull;
    rep->n_variants = 1;
    tg_rng rng;
    tg_rng_seed(&rng, cfg.seed ^ 0xC0FFEEull);
    tg_status st = fn_setup(&s, &cfg, inputs);
    if (st != TG_OK)
        st = gc_report_error(rep, st, "setting up the check: %s", tg_status_str(st));
    else
        st = fn_check_body(&s, &cfg, rep, &rng);
    fn_free(&s);
    if (st == TG_OK)
        gc_report_finish(rep);
    return st;
}
