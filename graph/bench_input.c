/* bench_input.c — the benchmark's inputs: an op's sample variant, or a
 * user-given problem size through the op's sample_shape hook or the generic
 * rule of tg_bench.h (variant 0's inputs re-made at the user's shape), and
 * the case labels. Knows no particular op. */
#include "bench_impl.h"

#include <math.h>
#include <string.h>

static tg_status sample_failed(tg_node *n, tg_status st, const char *what, char *why, size_t cap)
{
    tg_status cs = tg_ctx_status(n->ctx);
    snprintf(why, cap, "%s: %s", what,
             cs != TG_OK ? tg_ctx_error(n->ctx) : st != TG_OK ? tg_status_str(st) : "no inputs");
    return st != TG_OK ? st : cs != TG_OK ? cs : TG_ERR_ARG;
}

/* Range of a tensor's values: min, max, and the smallest |x|. */
typedef struct range { double lo, hi, minabs; } range;

static range range_of(const tg_tensor *t)
{
    range r = { INFINITY, -INFINITY, INFINITY };
    for (int64_t k = 0; k < t->numel; k++) {
        double v = tg_tensor_get(t, k);
        if (!isfinite(v))
            continue;
        r.lo = fmin(r.lo, v);
        r.hi = fmax(r.hi, v);
        r.minabs = fmin(r.minabs, fabs(v));
    }
    if (r.lo > r.hi)
        r.lo = r.hi = r.minabs = 0;
    return r;
}

/* A float tensor of `shape` with values like the sample's: uniform in
 * [lo, hi], and when the sample straddles 0 but keeps |x| >= g > 0 (off a
 * kink or a pole), uniform over [lo, -g] ∪ [g, hi]. */
static tg_tensor *remake_float(tg_ctx *ctx, const tg_tensor *s, int ndim, const int64_t *shape)
{
    range r = range_of(s);
    tg_tensor *t = tg_tensor_new(ctx, TG_F64, ndim, shape);
    if (!t)
        return NULL;
    tg_rng *rng = tg_ctx_rng(ctx);
    double *d = t->data;
    int gap = r.lo < 0 && r.hi > 0 && r.minabs > 0;
    double neg = gap ? -r.minabs - r.lo : 0, pos = gap ? r.hi - r.minabs : 0;
    for (int64_t k = 0; k < t->numel; k++) {
        double u = tg_rng_uniform(rng);
        if (!gap) {
            d[k] = r.lo + u * (r.hi - r.lo);
        } else {
            double x = u * (neg + pos);     /* a point on both stretches laid end to end */
            d[k] = x < neg ? r.lo + x : r.minabs + (x - neg);
        }
    }
    return t;
}

/* An i32 tensor of `shape`, uniform integers in the sample's [min, max]. */
static tg_tensor *remake_int(tg_ctx *ctx, const tg_tensor *s, int ndim, const int64_t *shape)
{
    range r = range_of(s);
    tg_tensor *t = tg_tensor_new(ctx, s->dtype, ndim, shape);
    if (!t)
        return NULL;
    int64_t lo = (int64_t)r.lo, span = (int64_t)r.hi - lo + 1;
    tg_rng *rng = tg_ctx_rng(ctx);
    for (int64_t k = 0; k < t->numel; k++)
        tg_tensor_set(t, k, (double)(lo + (int64_t)tg_rng_below(rng, (uint64_t)span)));
    return t;
}

static tg_status generic_shape(tg_node *proto, int ndim, const int64_t *shape, char *why, size_t cap)
{
    const tg_op_def *def = proto->def;
    tg_node s0 = *proto;
    tg_status st = def->sample(&s0, TG_F64, 0);
    if (st != TG_OK || tg_ctx_status(s0.ctx) != TG_OK || s0.n_in < 1 || s0.n_in > TG_MAX_IN)
        return sample_failed(&s0, st, "sample 0 failed", why, cap);
    const tg_tensor *f0 = NULL;
    for (int i = 0; i < s0.n_in; i++) {
        const tg_tensor *x = s0.in[i];
        if (!x)
            return sample_failed(&s0, TG_ERR_ARG, "sample 0 left an input NULL", why, cap);
        if (!tg_dtype_is_float(x->dtype))
            continue;
        if (!f0) {
            f0 = x;
        } else if (!tg_shape_equal(x->ndim, x->shape, f0->ndim, f0->shape)) {
            char a[TG_SHAPE_STR_MAX], b[TG_SHAPE_STR_MAX];
            snprintf(why, cap, "needs a sample_shape hook: its sample's float inputs differ in shape "
                     "(%s and %s), so no single user shape fits them",
                     tg_shape_str(f0->ndim, f0->shape, a, sizeof a), tg_shape_str(x->ndim, x->shape, b, sizeof b));
            return TG_ERR_ARG;
        }
    }
    if (!f0) {
        snprintf(why, cap, "needs a sample_shape hook: its sample has no float input");
        return TG_ERR_ARG;
    }
    proto->n_in = s0.n_in;
    proto->p = s0.p;
    proto->user = s0.user;
    for (int i = 0; i < s0.n_in; i++) {
        const tg_tensor *x = s0.in[i];
        tg_tensor *t;
        if (tg_dtype_is_float(x->dtype)) {
            t = remake_float(proto->ctx, x, ndim, shape);
        } else if (tg_shape_equal(x->ndim, x->shape, f0->ndim, f0->shape)) {
            t = remake_int(proto->ctx, x, ndim, shape);
        } else if (x->ndim > 0 && x->ndim < f0->ndim && ndim == f0->ndim &&
                   memcmp(x->shape, f0->shape, (size_t)x->ndim * sizeof(int64_t)) == 0) {
            t = remake_int(proto->ctx, x, x->ndim, shape);   /* labels of logits: a leading part */
        } else {
            t = s0.in[i];                                    /* kept as sampled */
        }
        if (!t)
            return sample_failed(proto, TG_ERR_NOMEM, "making the inputs", why, cap);
        proto->in[i] = t;
    }
    return TG_OK;
}

tg_status bench_make_inputs(tg_node *proto, int variant, int ndim, const int64_t *shape, char *why, size_t cap)
{
    const tg_op_def *def = proto->def;
    tg_status st;
    if (variant >= 0) {
        st = def->sample(proto, TG_F64, variant);
    } else if (def->sample_shape) {
        st = def->sample_shape(proto, TG_F64, ndim, shape);
    } else {
        st = generic_shape(proto, ndim, shape, why, cap);
        if (st != TG_OK)
            return st;
    }
    if (st != TG_OK || tg_ctx_status(proto->ctx) != TG_OK)
        return sample_failed(proto, st, variant >= 0 ? "the sample failed" : "sample_shape failed", why, cap);
    if (proto->n_in < 1 || proto->n_in > TG_MAX_IN) {
        snprintf(why, cap, "the sample gave %d inputs", proto->n_in);
        return TG_ERR_ARG;
    }
    for (int i = 0; i < proto->n_in; i++) {
        tg_tensor *x = proto->in[i];
        if (!x) {
            snprintf(why, cap, "the sample left input %d NULL", i);
            return TG_ERR_ARG;
        }
        if (!tg_dtype_is_float(x->dtype))
            continue;
        /* f64, rounded to f32: the f32 run and its f64 reference (or the
         * f64 run and its f32 cross-check) see the very same point. */
        if (x->dtype != TG_F64 && !(x = proto->in[i] = tg_tensor_cast(proto->ctx, x, TG_F64)))
            return sample_failed(proto, TG_ERR_NOMEM, "copying the sample", why, cap);
        double *d = x->data;
        for (int64_t k = 0; k < x->numel; k++)
            d[k] = (double)(float)d[k];
    }
    return TG_OK;
}

void bench_label(char *buf, size_t cap, int variant, const tg_node *proto, int ndim, const int64_t *shape)
{
    char s[TG_SHAPE_STR_MAX];
    if (variant < 0) {
        snprintf(buf, cap, "%s", tg_shape_str(ndim, shape, s, sizeof s));
        return;
    }
    size_t off = (size_t)snprintf(buf, cap, "v%d:", variant);
    for (int i = 0; i < proto->n_in && i < TG_MAX_IN && off < cap; i++) {
        const tg_tensor *x = proto->in[i];
        int w = snprintf(buf + off, cap - off, "%s%s", i ? "," : "",
                         x ? tg_shape_str(x->ndim, x->shape, s, sizeof s) : "?");
        if (w < 0 || (size_t)w >= cap - off) {
            if (cap > 4)
                snprintf(buf + cap - 4, 4, "...");
            return;
        }
        off += (size_t)w;
    }
}
