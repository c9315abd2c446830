/* gradcheck_impl.h — private to graph/gradcheck*.c: resolved options, the
 * scalar-loss evaluator the numeric core differentiates, and report helpers.
 * gradcheck.c holds the numeric core and the report, gradcheck_op.c the op
 * check with its contracts, gradcheck_fn.c the composite-function check. */
#ifndef TG_GRADCHECK_IMPL_H
#define TG_GRADCHECK_IMPL_H

#include "tg_gradcheck.h"

/* Options with every default resolved. */
typedef struct gc_cfg {
    double   atol, rtol;   /* gradient tolerances                            */
    double   c;            /* step coefficient: h = c * max(1, |x|)          */
    int      four_point;
    int64_t  max_full;
    int      n_dirs;
    tg_dtype dt;           /* dtype of the code under test                   */
    uint64_t seed;
    unsigned contracts;    /* TG_GC_* bits to check                          */
} gc_cfg;

void gc_cfg_init(gc_cfg *cfg, const tg_gradcheck_opts *o, double tol_scale);

/* Something whose scalar loss L = <u, f(x)> can be evaluated at the current
 * value of its f64 inputs. `S` receives sum |u_i f_i|, the scale of L's
 * rounding error. A non-finite L is TG_OK; an error is the check's own
 * failure (e.g. no memory). */
typedef struct gc_eval {
    tg_status (*loss)(struct gc_eval *e, double *L, double *S);
} gc_eval;

/* Where the values being compared live, for the report. */
typedef struct gc_where {
    int            variant, input, alias;
    int            ndim;
    const int64_t *shape;
} gc_where;

/* Compare `analytic` (n doubles) with f64 finite differences of ev's loss
 * with respect to the f64 array `x` (n elements, perturbed in place and
 * restored bit-exactly). Records every comparison in rep; *n_fail receives
 * the number of failures. `rng` draws the directions for large inputs. */
tg_status gc_check_input(const gc_cfg *cfg, tg_rng *rng, gc_eval *ev, double *x, int64_t n,
                         const double *analytic, const gc_where *w,
                         tg_gradcheck_report *rep, int64_t *n_fail);

/* ---- report helpers ---- */
void gc_report_begin(tg_gradcheck_report *rep, const char *op, tg_dtype dt);
/* Record a contract failure; the first one's detail is kept. */
void gc_contract_fail(tg_gradcheck_report *rep, unsigned bit, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Record a compared point (updates maxima, failures and the worst list). */
void gc_record(tg_gradcheck_report *rep, const tg_gradcheck_elem *e);
/* Set passed and compose rep->message. */
void gc_report_finish(tg_gradcheck_report *rep);
/* Record the check's own failure in rep->message and return s. */
tg_status gc_report_error(tg_gradcheck_report *rep, tg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* "[1, 3]" for flat index k of a shape; "[]" for a scalar. */
char *gc_coord_str(int ndim, const int64_t *shape, int64_t k, char *buf, size_t cap);
void  gc_unravel(int ndim, const int64_t *shape, int64_t k, int64_t *coord);

/* Utilities over raw tensor memory. */
double gc_get(const void *p, tg_dtype dt, int64_t i);
void   gc_set(void *p, tg_dtype dt, int64_t i, double v);
/* v rounded to dtype dt (f32 rounding; identity otherwise). */
double gc_round(double v, tg_dtype dt);

/* Neumaier-compensated sum of u_i * y_i and sum |u_i * y_i|. */
void gc_dot(const double *u, const void *y, tg_dtype ydt, int64_t n, double *L, double *S);

/* First element where the f32 forward y32 and the f64 forward y64 (same
 * inputs) disagree beyond f32 tolerance (times scale), or -1. */
int64_t gc_f32_mismatch(const double *y32, const double *y64, int64_t n, double scale);
/* Zero the context's free arena memory (every byte the next allocations
 * will hand out, up to the arena's capacity) without moving its position:
 * reference runs start from zeroed memory, poisoned runs from NaN bytes, so
 * a read of memory nobody wrote shows as a difference. */
void gc_scrub(tg_ctx *ctx);
/* First element where a and b differ bitwise, or -1. */
int64_t gc_first_diff(const double *a, const double *b, int64_t n);

#endif
