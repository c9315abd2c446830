/* gradcheck.c — the gradient checker's numeric core (f64 finite differences,
 * kink detection, directional checks for large inputs), the report, and the
 * check of a composite function through the tape. The op check with its VJP
 * contracts is in gradcheck_op.c. Knows no particular op; never prints
 * except in tg_gradcheck_report_print. */
#include "gradcheck_impl.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- options ------------------------------------------------------------- */

void gc_cfg_init(gc_cfg *cfg, const tg_gradcheck_opts *o, double tol_scale)
{
    tg_gradcheck_opts z;
    if (!o) {
        memset(&z, 0, sizeof z);
        o = &z;
    }
    double s = tol_scale > 0 ? tol_scale : 1.0;
    cfg->dt = o->f32 ? TG_F32 : TG_F64;
    cfg->atol = o->atol > 0 ? o->atol : s * (o->f32 ? 1e-4 : 1e-6);
    cfg->rtol = o->rtol > 0 ? o->rtol : s * (o->f32 ? 2e-3 : 1e-5);
    cfg->four_point = o->four_point != 0;
    /* Step balancing truncation against rounding: h^2 ~ eps/h for the
     * 2-point stencil (h ~ eps^(1/3)), h^4 ~ eps/h for the 4-point one. */
    cfg->c = o->step > 0 ? o->step : (cfg->four_point ? pow(DBL_EPSILON, 0.2) : cbrt(DBL_EPSILON));
    cfg->max_full = o->max_full > 0 ? o->max_full : 512;
    cfg->n_dirs = o->n_dirs > 0 ? o->n_dirs : 8;
    cfg->seed = o->seed;
    cfg->contracts = TG_GC_ALL_CONTRACTS & ~o->skip_contracts;
}

/* ---- raw memory helpers -------------------------------------------------- */

double gc_get(const void *p, tg_dtype dt, int64_t i)
{
    switch (dt) {
    case TG_F32: return ((const float *)p)[i];
    case TG_F64: return ((const double *)p)[i];
    case TG_I32: return ((const int32_t *)p)[i];
    }
    return NAN;
}

void gc_set(void *p, tg_dtype dt, int64_t i, double v)
{
    switch (dt) {
    case TG_F32: ((float *)p)[i] = (float)v; break;
    case TG_F64: ((double *)p)[i] = v; break;
    case TG_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    }
}

double gc_round(double v, tg_dtype dt) { return dt == TG_F32 ? (double)(float)v : v; }

void gc_dot(const double *u, const void *y, tg_dtype ydt, int64_t n, double *L, double *S)
{
    double sum = 0, comp = 0, abs_sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double t = u[i] * gc_get(y, ydt, i);
        double s = sum + t;       /* Neumaier: keep the lost low-order part */
        comp += fabs(sum) >= fabs(t) ? (sum - s) + t : (t - s) + sum;
        sum = s;
        abs_sum += fabs(t);
    }
    *L = sum + comp;
    *S = abs_sum;
}

void gc_unravel(int ndim, const int64_t *shape, int64_t k, int64_t *coord)
{
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t s = shape[d] > 0 ? shape[d] : 1;
        coord[d] = k % s;
        k /= s;
    }
}

char *gc_coord_str(int ndim, const int64_t *shape, int64_t k, char *buf, size_t cap)
{
    int64_t c[TG_MAX_DIMS];
    gc_unravel(ndim, shape, k, c);
    size_t off = 0;
    buf[0] = '\0';
    for (int d = 0; d <= ndim && off < cap; d++) {
        int w = d == ndim ? snprintf(buf + off, cap - off, "]")
                          : snprintf(buf + off, cap - off, d ? ", %lld" : "[%lld", (long long)c[d]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    if (ndim == 0)
        snprintf(buf, cap, "[]");
    return buf;
}

/* ---- the numeric core ---------------------------------------------------- */

/* A line through the input: element k moved by t, or (k < 0) all of x
 * moved by t * v from x0. */
typedef struct gc_line {
    double       *x;
    int64_t       n, k;
    double        xk0;
    const double *v, *x0;
} gc_line;

static tg_status line_loss(gc_eval *ev, gc_line *ln, double t, double *L)
{
    double S;
    tg_status st;
    if (ln->k >= 0) {
        ln->x[ln->k] = ln->xk0 + t;
        st = ev->loss(ev, L, &S);
        ln->x[ln->k] = ln->xk0;
    } else {
        for (int64_t m = 0; m < ln->n; m++)
            ln->x[m] = ln->x0[m] + t * ln->v[m];
        st = ev->loss(ev, L, &S);
        memcpy(ln->x, ln->x0, (size_t)ln->n * sizeof(double));
    }
    return st;
}

/* Difference quotients along a line with step h. */
typedef struct gc_pt {
    double num, fwd, bwd, h;
    int    finite;
} gc_pt;

static tg_status stencil(const gc_cfg *cfg, gc_eval *ev, gc_line *ln, double h, double L0, gc_pt *p)
{
    double Lp, Lm, L2p = 0, L2m = 0;
    tg_status st;
    if ((st = line_loss(ev, ln, h, &Lp)) != TG_OK || (st = line_loss(ev, ln, -h, &Lm)) != TG_OK)
        return st;
    p->h = h;
    p->fwd = (Lp - L0) / h;
    p->bwd = (L0 - Lm) / h;
    if (cfg->four_point) {
        if ((st = line_loss(ev, ln, 2 * h, &L2p)) != TG_OK || (st = line_loss(ev, ln, -2 * h, &L2m)) != TG_OK)
            return st;
        p->num = (-L2p + 8 * Lp - 8 * Lm + L2m) / (12 * h);
    } else {
        p->num = (Lp - Lm) / (2 * h);
    }
    p->finite = isfinite(Lp) && isfinite(Lm) && isfinite(L2p) && isfinite(L2m);
    return TG_OK;
}

/* Rounding floor of a difference quotient: L carries about eps * S of
 * rounding error, divided by the step. */
static double noise_floor(const gc_cfg *cfg, double S0, double h)
{
    return (cfg->four_point ? 24.0 : 16.0) * DBL_EPSILON * S0 / h;
}

enum { GC_PASS, GC_FAIL, GC_NONDIFF };

/* Judge analytic `a` against the quotients `p` (step h). When it fails, retry
 * at h/2 (a kink or steep region within h of x spoils the first estimate),
 * then decide between a kink and a real failure. Fills e->numeric, tol,
 * step; returns GC_PASS / GC_FAIL / GC_NONDIFF through *out. */
static tg_status judge(const gc_cfg *cfg, gc_eval *ev, gc_line *ln, double L0, double S0,
                       double atol_eff, double a, const gc_pt *p, tg_gradcheck_elem *e, int *out)
{
    e->analytic = a;
    e->numeric = p->num;
    e->step = p->h;
    e->tol = atol_eff + cfg->rtol * fabs(p->num) + noise_floor(cfg, S0, p->h);
    if (!isfinite(a)) {
        *out = GC_FAIL;
        return TG_OK;
    }
    if (!p->finite) {          /* f undefined within a step: not differentiable here */
        *out = GC_NONDIFF;
        return TG_OK;
    }
    if (fabs(a - p->num) <= e->tol) {
        *out = GC_PASS;
        return TG_OK;
    }
    gc_pt q;
    tg_status st = stencil(cfg, ev, ln, p->h / 2, L0, &q);
    if (st != TG_OK)
        return st;
    *out = GC_FAIL;
    if (!q.finite)
        return TG_OK;
    double tol2 = atol_eff + cfg->rtol * fabs(q.num) + noise_floor(cfg, S0, q.h);
    if (fabs(a - q.num) <= tol2) {
        e->numeric = q.num;
        e->step = q.h;
        e->tol = tol2;
        *out = GC_PASS;
        return TG_OK;
    }
    /* A kink: the one-sided slopes differ by a jump that does not shrink
     * with the step (on a smooth curve the gap halves with h), and the
     * analytic value is one of them or between them (a subgradient). */
    double gap = fabs(p->fwd - p->bwd), gap2 = fabs(q.fwd - q.bwd);
    double lo = fmin(q.fwd, q.bwd) - tol2, hi = fmax(q.fwd, q.bwd) + tol2;
    if (gap2 > tol2 && gap2 >= 0.6 * gap && a >= lo && a <= hi)
        *out = GC_NONDIFF;
    return TG_OK;
}

static void record(tg_gradcheck_report *rep, tg_gradcheck_elem *e, int outcome, int64_t *n_fail)
{
    if (outcome == GC_NONDIFF) {
        rep->n_nondiff++;
        return;
    }
    e->abs_err = fabs(e->analytic - e->numeric);
    double m = fmax(fabs(e->analytic), fabs(e->numeric));
    e->rel_err = m > 0 ? e->abs_err / m : (e->abs_err > 0 ? INFINITY : 0);
    if (!isfinite(e->analytic)) {
        e->abs_err = e->rel_err = INFINITY;
    }
    if (outcome == GC_FAIL)
        (*n_fail)++;
    gc_record(rep, e);
}

static void elem_init(tg_gradcheck_elem *e, const gc_where *w)
{
    memset(e, 0, sizeof *e);
    e->variant = w->variant;
    e->input = w->input;
    e->alias = w->alias;
    e->dir = -1;
    e->index = -1;
}

tg_status gc_check_input(const gc_cfg *cfg, tg_rng *rng, gc_eval *ev, double *x, int64_t n,
                         const double *analytic, const gc_where *w,
                         tg_gradcheck_report *rep, int64_t *n_fail)
{
    *n_fail = 0;
    if (n <= 0)
        return TG_OK;
    double L0, S0;
    tg_status st = ev->loss(ev, &L0, &S0);
    if (st != TG_OK)
        return st;
    int full = n <= cfg->max_full;
    int64_t n_pts = full ? n : cfg->n_dirs;
    gc_pt *pts = tg_malloc((size_t)n_pts * sizeof *pts);
    double *x0 = full ? NULL : tg_malloc((size_t)n * sizeof(double));
    double *dirs = full ? NULL : tg_malloc((size_t)n * (size_t)n_pts * sizeof(double));
    if (!pts || (!full && (!x0 || !dirs))) {
        tg_free(pts), tg_free(x0), tg_free(dirs);
        return TG_ERR_NOMEM;
    }

    /* Pass 1: central differences at every element / along every direction. */
    gc_line ln = { .x = x, .n = n, .k = -1, .x0 = x0 };
    double xmax = 0;
    if (!full) {
        memcpy(x0, x, (size_t)n * sizeof(double));
        for (int64_t m = 0; m < n; m++)
            xmax = fmax(xmax, fabs(x[m]));
    }
    double gmax = 0;
    for (int64_t p = 0; p < n_pts && st == TG_OK; p++) {
        double h;
        if (full) {
            ln.k = p;
            ln.xk0 = x[p];
            h = cfg->c * fmax(1.0, fabs(x[p]));
            h = (x[p] + h) - x[p];            /* a step the input can represent */
        } else {
            double *v = dirs + p * n, vmax = 0;
            for (int64_t m = 0; m < n; m++) {
                v[m] = tg_rng_normal(rng);
                vmax = fmax(vmax, fabs(v[m]));
            }
            for (int64_t m = 0; m < n; m++)
                v[m] /= vmax;                  /* largest move of any element: h */
            ln.v = v;
            h = cfg->c * fmax(1.0, xmax);
        }
        st = stencil(cfg, ev, &ln, h, L0, &pts[p]);
        if (st == TG_OK && pts[p].finite && isfinite(pts[p].num))
            gmax = fmax(gmax, fabs(pts[p].num));
    }

    /* Pass 2: compare, with atol relative to the input's largest gradient. */
    double atol_eff = cfg->atol * fmax(1.0, gmax);
    for (int64_t p = 0; p < n_pts && st == TG_OK; p++) {
        tg_gradcheck_elem e;
        elem_init(&e, w);
        double a;
        if (full) {
            ln.k = p;
            ln.xk0 = x[p];
            e.index = p;
            e.ndim = w->ndim;
            gc_unravel(w->ndim, w->shape, p, e.coord);
            a = analytic[p];
        } else {
            ln.v = dirs + p * n;
            e.dir = (int)p;
            a = 0;
            for (int64_t m = 0; m < n; m++)
                a += analytic[m] * ln.v[m];
        }
        int outcome;
        st = judge(cfg, ev, &ln, L0, S0, atol_eff, a, &pts[p], &e, &outcome);
        if (st == TG_OK)
            record(rep, &e, outcome, n_fail);
    }
    tg_free(pts);
    tg_free(x0);
    tg_free(dirs);
    return st;
}

/* ---- the report ---------------------------------------------------------- */

static const char *const contract_names[TG_GC_N_CONTRACTS] = {
    "accumulate", "writes", "uninit", "determinism", "alias", "null_grad",
    "fwd_determinism", "fwd_finite", "fwd_f32",
};

const char *tg_gradcheck_contract_name(unsigned bit)
{
    for (int i = 0; i < TG_GC_N_CONTRACTS; i++)
        if (bit == 1u << i)
            return contract_names[i];
    return "?";
}

void gc_report_begin(tg_gradcheck_report *rep, const char *op, tg_dtype dt)
{
    memset(rep, 0, sizeof *rep);
    rep->op = op ? op : "(unnamed op)";
    rep->dtype = dt;
}

void gc_contract_fail(tg_gradcheck_report *rep, unsigned bit, const char *fmt, ...)
{
    if (!rep->contract_failures) {
        va_list ap;
        va_start(ap, fmt);
        int w = snprintf(rep->contract_detail, sizeof rep->contract_detail, "%s: ",
                         tg_gradcheck_contract_name(bit));
        if (w > 0 && (size_t)w < sizeof rep->contract_detail)
            vsnprintf(rep->contract_detail + w, sizeof rep->contract_detail - (size_t)w, fmt, ap);
        va_end(ap);
    }
    rep->contract_failures |= bit;
}

static double ratio(const tg_gradcheck_elem *e)
{
    double r = e->abs_err / e->tol;
    return isnan(r) || !isfinite(e->abs_err) ? INFINITY : r;
}

void gc_record(tg_gradcheck_report *rep, const tg_gradcheck_elem *e)
{
    rep->n_checked++;
    if (isfinite(e->abs_err)) {
        rep->max_abs_err = fmax(rep->max_abs_err, e->abs_err);
        rep->max_rel_err = fmax(rep->max_rel_err, e->rel_err);
    } else {
        rep->max_abs_err = rep->max_rel_err = INFINITY;
    }
    if (ratio(e) > 1.0)
        rep->n_failed++;
    /* Insert into the worst list, largest error/tolerance first. */
    int pos = rep->n_worst;
    while (pos > 0 && ratio(&rep->worst[pos - 1]) < ratio(e))
        pos--;
    if (pos >= TG_GC_WORST)
        return;
    int last = rep->n_worst < TG_GC_WORST ? rep->n_worst : TG_GC_WORST - 1;
    memmove(&rep->worst[pos + 1], &rep->worst[pos], (size_t)(last - pos) * sizeof *e);
    rep->worst[pos] = *e;
    if (rep->n_worst < TG_GC_WORST)
        rep->n_worst++;
}

static int contract_list(unsigned bits, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < TG_GC_N_CONTRACTS; i++)
        if (bits & (1u << i)) {
            int w = snprintf(buf + off, cap - off, "%s%s", off ? ", " : "", contract_names[i]);
            if (w < 0 || (size_t)w >= cap - off)
                break;
            off += (size_t)w;
        }
    return (int)off;
}

/* "variant 1 input 0 [1, 3] (flat 7)" or "input 2 direction 4". */
static void where_str(const tg_gradcheck_elem *e, const int64_t *shape, char *buf, size_t cap)
{
    char v[32] = "", a[48] = "", loc[160];
    if (e->variant >= 0)
        snprintf(v, sizeof v, "variant %d ", e->variant);
    if (e->alias >= 0)
        snprintf(a, sizeof a, " (same tensor as input %d)", e->alias);
    if (e->dir >= 0) {
        snprintf(loc, sizeof loc, "direction %d", e->dir);
    } else {
        size_t off = 0;
        off += (size_t)snprintf(loc, sizeof loc, "[");
        for (int d = 0; d < e->ndim && off < sizeof loc; d++)
            off += (size_t)snprintf(loc + off, sizeof loc - off, d ? ", %lld" : "%lld",
                                    (long long)e->coord[d]);
        if (off < sizeof loc)
            snprintf(loc + off, sizeof loc - off, "] (flat %lld)", (long long)e->index);
    }
    (void)shape;
    snprintf(buf, cap, "%sinput %d%s %s", v, e->input, a, loc);
}

void gc_report_finish(tg_gradcheck_report *rep)
{
    rep->passed = rep->n_failed == 0 && rep->contract_failures == 0;
    const char *dt = tg_dtype_name(rep->dtype);
    if (rep->passed) {
        snprintf(rep->message, sizeof rep->message,
                 "%s %s: PASS: %d variant%s, %lld checked, %lld non-differentiable, "
                 "max abs err %.3g, max rel err %.3g",
                 rep->op, dt, rep->n_variants, rep->n_variants == 1 ? "" : "s",
                 (long long)rep->n_checked, (long long)rep->n_nondiff,
                 rep->max_abs_err, rep->max_rel_err);
        return;
    }
    char names[160];
    contract_list(rep->contract_failures, names, sizeof names);
    if (rep->n_failed) {
        const tg_gradcheck_elem *e = &rep->worst[0];
        char loc[256];
        where_str(e, NULL, loc, sizeof loc);
        int w = snprintf(rep->message, sizeof rep->message,
                         "%s %s: FAIL: %s: analytic %.10g, numeric %.10g (abs err %.3g, rel err %.3g, "
                         "tol %.3g, h %.3g); %lld of %lld wrong",
                         rep->op, dt, loc, e->analytic, e->numeric, e->abs_err, e->rel_err,
                         e->tol, e->step, (long long)rep->n_failed, (long long)rep->n_checked);
        if (rep->contract_failures && w > 0 && (size_t)w < sizeof rep->message)
            snprintf(rep->message + w, sizeof rep->message - (size_t)w, "; contracts failed: %s", names);
    } else {
        snprintf(rep->message, sizeof rep->message, "%s %s: FAIL: contract%s %s: %s", rep->op, dt,
                 strchr(names, ',') ? "s" : "", names, rep->contract_detail);
    }
}

tg_status gc_report_error(tg_gradcheck_report *rep, tg_status s, const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    rep->passed = 0;
    snprintf(rep->message, sizeof rep->message, "%s %s: ERROR: %s", rep->op,
             tg_dtype_name(rep->dtype), buf);
    return s;
}

void tg_gradcheck_report_print(const tg_gradcheck_report *rep, FILE *f)
{
    if (!rep || !f)
        return;
    fprintf(f, "%s\n", rep->message);
    if (rep->n_worst > 0) {
        fprintf(f, "  %-7s %-5s %-26s %16s %16s %10s %10s %10s %10s\n", "variant", "input",
                "element", "analytic", "numeric", "abs err", "rel err", "tol", "step");
        for (int i = 0; i < rep->n_worst; i++) {
            const tg_gradcheck_elem *e = &rep->worst[i];
            char var[16] = "-", in[24], loc[64];
            if (e->variant >= 0)
                snprintf(var, sizeof var, "%d", e->variant);
            if (e->alias >= 0)
                snprintf(in, sizeof in, "%d=%d", e->input, e->alias);
            else
                snprintf(in, sizeof in, "%d", e->input);
            if (e->dir >= 0) {
                snprintf(loc, sizeof loc, "direction %d", e->dir);
            } else {
                size_t off = (size_t)snprintf(loc, sizeof loc, "[");
                for (int d = 0; d < e->ndim && off < sizeof loc; d++)
                    off += (size_t)snprintf(loc + off, sizeof loc - off, d ? ",%lld" : "%lld",
                                            (long long)e->coord[d]);
                if (off < sizeof loc)
                    snprintf(loc + off, sizeof loc - off, "] #%lld", (long long)e->index);
            }
            fprintf(f, "  %-7s %-5s %-26s %16.9g %16.9g %10.3g %10.3g %10.3g %10.3g%s\n", var, in,
                    loc, e->analytic, e->numeric, e->abs_err, e->rel_err, e->tol, e->step,
                    ratio(e) > 1.0 ? "  <- wrong" : "");
        }
    }
    if (rep->contract_failures) {
        char names[160];
        contract_list(rep->contract_failures, names, sizeof names);
        fprintf(f, "  contracts failed: %s\n  first: %s\n", names, rep->contract_detail);
    }
}

/* ---- f32 vs f64 forward ---------------------------------------------------- */

int64_t gc_f32_mismatch(const double *y32, const double *y64, int64_t n, double scale)
{
    double ymax = 0;
    for (int64_t k = 0; k < n; k++)
        if (isfinite(y64[k]))
            ymax = fmax(ymax, fabs(y64[k]));
    double s = scale > 0 ? scale : 1.0;
    for (int64_t k = 0; k < n; k++)
        if (!(fabs(y32[k] - y64[k]) <= s * (1e-5 * fmax(1.0, ymax) + 1e-4 * fabs(y64[k]))))
            return k;
    return -1;
}

void gc_scrub(tg_ctx *ctx)
{
    size_t mark = tg_ctx_arena_mark(ctx);
    /* Chunk sizes are multiples of 64 and allocations are 64-aligned, so
     * 64-byte pieces cover every chunk to its end without growing the arena. */
    while (tg_ctx_arena_used(ctx) + 64 <= tg_ctx_arena_capacity(ctx)) {
        void *p = tg_ctx_alloc(ctx, 64, "gradcheck");
        if (!p)
            break;
        memset(p, 0, 64);
    }
    tg_ctx_arena_rewind(ctx, mark);
}

int64_t gc_first_diff(const double *a, const double *b, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        if (memcmp(&a[k], &b[k], sizeof(double)) != 0)
            return k;
    return -1;
}

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
