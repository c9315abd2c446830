/* gradcheck.c — the gradient checker's numeric core (f64 finite differences,
 * kink detection, directional checks for large inputs), the report and its
 * printing, and helpers shared by gradcheck_op.c (an op's VJP and its
 * contracts) and gradcheck_fn.c (a composite function through the tape).
 * Knows no particular op; never prints except in tg_gradcheck_report_print. */
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

/* A random direction: normal entries scaled so the largest is 1 (a step h
 * moves no element by more than h). */
static void make_direction(tg_rng *rng, double *v, int64_t n)
{
    double vmax = 0;
    for (int64_t m = 0; m < n; m++) {
        v[m] = tg_rng_normal(rng);
        vmax = fmax(vmax, fabs(v[m]));
    }
    for (int64_t m = 0; m < n; m++)
        v[m] /= vmax;
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
    /* Directions are regenerated from the RNG state saved before each one:
     * memory stays O(n) however many directions there are. */
    tg_rng *dir_rng = full ? NULL : tg_malloc((size_t)n_pts * sizeof *dir_rng);
    double *x0 = full ? NULL : tg_malloc((size_t)n * sizeof(double));
    double *v = full ? NULL : tg_malloc((size_t)n * sizeof(double));
    if (!pts || (!full && (!x0 || !v || !dir_rng))) {
        tg_free(pts), tg_free(dir_rng), tg_free(x0), tg_free(v);
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
            dir_rng[p] = *rng;
            make_direction(rng, v, n);
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
            tg_rng r = dir_rng[p];
            make_direction(&r, v, n);
            ln.v = v;
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
    tg_free(dir_rng);
    tg_free(x0);
    tg_free(v);
    return st;
}

/* ---- the report ---------------------------------------------------------- */

static const char *const contract_names[TG_GC_N_CONTRACTS] = {
    "accumulate", "writes", "uninit", "determinism", "alias", "null_grad",
    "fwd_determinism", "fwd_finite", "fwd_f32", "overwrite", "pass",
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
