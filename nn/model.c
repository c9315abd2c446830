/* model.c — layers and the sequential model: dense, activation, dropout,
 * batch norm, layer norm, custom and residual layers, built one by one or
 * from a spec string. Layers only record public ops; the parameter store
 * holds their weights, the buffer store their running statistics. */
#include "tg_nn.h"

#include <ctype.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { L_SEQ, L_DENSE, L_ACT, L_DROPOUT, L_BN, L_LN, L_CUSTOM, L_RESIDUAL } lkind;

struct tg_layer {
    lkind       kind;
    char        name[32];
    tg_tensor  *w, *b;            /* dense weight/bias, norm gamma/beta      */
    tg_tensor  *rmean, *rvar;     /* batch norm running statistics (buffers) */
    tg_act      act;
    double      param;            /* activation param, dropout p, bn momentum */
    double      eps;
    int64_t     in, out;
    tg_layer_fn fn;
    void       *ud;
    tg_layer  **kids;             /* L_SEQ, L_RESIDUAL */
    int         n_kids, cap_kids;
};

#define MAX_DEPTH 16

struct tg_model {
    tg_params *params, *buffers;
    tg_rng     rng;
    int        training;
    tg_dtype   dt;
    tg_layer   root;
    tg_layer  *open[MAX_DEPTH];   /* open[0] = &root, then residual blocks   */
    int        depth;
    int64_t    width;             /* current output width (-1: unknown)      */
    int        counter[8];        /* per kind, for names                     */
};

static void layer_free(tg_layer *l)
{
    for (int i = 0; i < l->n_kids; i++) {
        layer_free(l->kids[i]);
        tg_free(l->kids[i]);
    }
    tg_free(l->kids);
}

tg_model *tg_model_new(tg_dtype dt, uint64_t seed)
{
    if (!tg_dtype_is_float(dt))
        return NULL;
    tg_model *m = tg_calloc(sizeof *m);
    if (!m)
        return NULL;
    m->params = tg_params_new(dt);
    m->buffers = tg_params_new(dt);
    if (!m->params || !m->buffers) {
        tg_model_free(m);
        return NULL;
    }
    tg_rng_seed(&m->rng, seed);
    m->training = 1;
    m->dt = dt;
    m->root.kind = L_SEQ;
    m->open[0] = &m->root;
    m->depth = 1;
    m->width = -1;
    return m;
}

void tg_model_free(tg_model *m)
{
    if (!m)
        return;
    layer_free(&m->root);
    tg_params_free(m->params);
    tg_params_free(m->buffers);
    tg_free(m);
}

tg_params *tg_model_params(tg_model *m) { return m ? m->params : NULL; }
tg_params *tg_model_buffers(tg_model *m) { return m ? m->buffers : NULL; }
tg_rng *tg_model_rng(tg_model *m) { return m ? &m->rng : NULL; }
void tg_model_set_training(tg_model *m, int on) { if (m) m->training = on != 0; }
int tg_model_training(const tg_model *m) { return m ? m->training : 0; }

/* The input width a sequence of layers expects: the first layer that
 * fixes one says (dense, norms, or a residual block through its own
 * layers); 0 when no layer fixes it (activations, dropout only); -1 when a
 * user's layer comes first (it may take any width). */
static int64_t seq_in(const tg_layer *l)
{
    for (int i = 0; i < l->n_kids; i++) {
        const tg_layer *k = l->kids[i];
        switch (k->kind) {
        case L_DENSE: case L_BN: case L_LN: return k->in;
        case L_CUSTOM:                      return -1;
        case L_RESIDUAL: {
            int64_t r = seq_in(k);
            if (r != 0)
                return r;
            break;
        }
        default: break;
        }
    }
    return 0;
}

int64_t tg_model_in_features(const tg_model *m)
{
    if (!m)
        return -1;
    int64_t r = seq_in(&m->root);
    return r > 0 ? r : -1;
}
int64_t tg_model_out_features(const tg_model *m) { return m ? m->width : -1; }

/* A new layer appended to the innermost open container. */
static tg_layer *append(tg_model *m, lkind kind, const char *prefix)
{
    tg_layer *parent = m->open[m->depth - 1];
    if (parent->n_kids == parent->cap_kids) {
        int cap = parent->cap_kids ? 2 * parent->cap_kids : 8;
        tg_layer **k = tg_realloc(parent->kids, (size_t)cap * sizeof *k);
        if (!k)
            return NULL;
        parent->kids = k;
        parent->cap_kids = cap;
    }
    tg_layer *l = tg_calloc(sizeof *l);
    if (!l)
        return NULL;
    l->kind = kind;
    snprintf(l->name, sizeof l->name, "%s%d", prefix, ++m->counter[kind]);
    parent->kids[parent->n_kids++] = l;
    return l;
}

/* Undo the last append (a builder failed after it), with the parameters
 * and buffers it had added: the store goes back to np and nb entries, and
 * the layer's number is free again. */
static void drop_last(tg_model *m, int np, int nb)
{
    tg_layer *parent = m->open[m->depth - 1];
    tg_layer *l = parent->kids[--parent->n_kids];
    tg_params_truncate(m->params, np);
    tg_params_truncate(m->buffers, nb);
    m->counter[l->kind]--;
    layer_free(l);
    tg_free(l);
}

static tg_tensor *add_named(tg_params *p, const tg_layer *l, const char *what, int ndim, const int64_t *shape,
                            tg_status *st)
{
    char name[64];
    snprintf(name, sizeof name, "%s.%s", l->name, what);
    return tg_params_add(p, name, ndim, shape, st);
}

static tg_status check_width(const tg_model *m, int64_t in)
{
    if (in <= 0 || (m->width >= 0 && in != m->width))
        return TG_ERR_SHAPE;
    return TG_OK;
}

tg_status tg_model_add_dense(tg_model *m, int64_t in, int64_t out, tg_init init)
{
    /* Every argument is checked before anything is added; a failure after
     * that (out of memory) takes back what was added. */
    if (!m || out <= 0 || (unsigned)init > TG_INIT_CONSTANT)
        return TG_ERR_ARG;
    if (check_width(m, in) != TG_OK)
        return TG_ERR_SHAPE;
    int np = tg_params_count(m->params), nb = tg_params_count(m->buffers);
    tg_layer *l = append(m, L_DENSE, "dense");
    if (!l)
        return TG_ERR_NOMEM;
    l->in = in;
    l->out = out;
    tg_status st = TG_ERR_NOMEM;
    l->w = add_named(m->params, l, "weight", TG_DIMS(in, out), &st);
    l->b = l->w ? add_named(m->params, l, "bias", TG_DIMS(out), &st) : NULL;
    if (l->b)
        st = tg_init_tensor(l->w, init, in, out, 0, &m->rng);
    if (st != TG_OK) {
        drop_last(m, np, nb);
        return st;
    }
    m->width = out;
    return TG_OK;
}

tg_status tg_model_add_activation(tg_model *m, tg_act a, double param)
{
    if (!m || (unsigned)a > TG_ACT_SOFTMAX)
        return TG_ERR_ARG;
    tg_layer *l = append(m, L_ACT, "act");
    if (!l)
        return TG_ERR_NOMEM;
    l->act = a;
    l->param = a == TG_ACT_LEAKY_RELU && param == 0 ? 0.01 : a == TG_ACT_ELU && param == 0 ? 1.0 : param;
    return TG_OK;
}

tg_status tg_model_add_dropout(tg_model *m, double p)
{
    if (!m || !(p >= 0 && p < 1))
        return TG_ERR_ARG;
    tg_layer *l = append(m, L_DROPOUT, "dropout");
    if (!l)
        return TG_ERR_NOMEM;
    l->param = p;
    return TG_OK;
}

tg_status tg_model_add_batchnorm(tg_model *m, int64_t features, double momentum, double eps)
{
    if (!m || !(momentum >= 0 && momentum <= 1) || !(eps > 0))
        return TG_ERR_ARG;
    if (check_width(m, features) != TG_OK)
        return TG_ERR_SHAPE;
    int np = tg_params_count(m->params), nb = tg_params_count(m->buffers);
    tg_layer *l = append(m, L_BN, "bn");
    if (!l)
        return TG_ERR_NOMEM;
    l->in = l->out = features;
    l->param = momentum;
    l->eps = eps;
    tg_status st = TG_ERR_NOMEM;
    l->w = add_named(m->params, l, "gamma", TG_DIMS(features), &st);
    l->b = l->w ? add_named(m->params, l, "beta", TG_DIMS(features), &st) : NULL;
    l->rmean = l->b ? add_named(m->buffers, l, "running_mean", TG_DIMS(features), &st) : NULL;
    l->rvar = l->rmean ? add_named(m->buffers, l, "running_var", TG_DIMS(features), &st) : NULL;
    if (!l->rvar) {
        drop_last(m, np, nb);
        return st;
    }
    tg_init_tensor(l->w, TG_INIT_CONSTANT, 1, 1, 1.0, &m->rng);
    tg_init_tensor(l->rvar, TG_INIT_CONSTANT, 1, 1, 1.0, &m->rng);
    m->width = features;
    return TG_OK;
}

tg_status tg_model_add_layernorm(tg_model *m, int64_t features, double eps)
{
    if (!m || !(eps > 0))
        return TG_ERR_ARG;
    if (check_width(m, features) != TG_OK)
        return TG_ERR_SHAPE;
    int np = tg_params_count(m->params), nb = tg_params_count(m->buffers);
    tg_layer *l = append(m, L_LN, "ln");
    if (!l)
        return TG_ERR_NOMEM;
    l->in = l->out = features;
    l->eps = eps;
    tg_status st = TG_ERR_NOMEM;
    l->w = add_named(m->params, l, "gamma", TG_DIMS(features), &st);
    l->b = l->w ? add_named(m->params, l, "beta", TG_DIMS(features), &st) : NULL;
    if (!l->b) {
        drop_last(m, np, nb);
        return st;
    }
    tg_init_tensor(l->w, TG_INIT_CONSTANT, 1, 1, 1.0, &m->rng);
    m->width = features;
    return TG_OK;
}

tg_status tg_model_add_custom(tg_model *m, const char *name, tg_layer_fn fn, void *ud)
{
    if (!m || !fn)
        return TG_ERR_ARG;
    tg_layer *l = append(m, L_CUSTOM, "custom");
    if (!l)
        return TG_ERR_NOMEM;
    if (name)
        snprintf(l->name, sizeof l->name, "%s", name);
    l->fn = fn;
    l->ud = ud;
    m->width = -1;      /* unknown after a user's layer */
    return TG_OK;
}

tg_status tg_model_begin_residual(tg_model *m)
{
    if (!m || m->depth >= MAX_DEPTH)
        return TG_ERR_STATE;
    tg_layer *l = append(m, L_RESIDUAL, "res");
    if (!l)
        return TG_ERR_NOMEM;
    l->in = m->width;
    m->open[m->depth++] = l;
    return TG_OK;
}

tg_status tg_model_end_residual(tg_model *m)
{
    if (!m || m->depth <= 1)
        return TG_ERR_STATE;
    tg_layer *l = m->open[m->depth - 1];
    /* The block's input width: the width before it, or, when that is not
     * known (the block comes first, or after a user's layer), what its
     * first layer takes. */
    int64_t in = l->in > 0 ? l->in : seq_in(l);
    if (in > 0 && m->width >= 0 && in != m->width)
        return TG_ERR_SHAPE;
    l->in = l->out = in > 0 ? in : -1;
    if (in > 0)
        m->width = in;      /* x + f(x) has x's width, whatever f's layers are */
    m->depth--;
    return TG_OK;
}

/* ---- forward --------------------------------------------------------------- */

static tg_tensor *bn_forward(tg_ctx *ctx, tg_model *m, tg_layer *l, tg_tensor *x)
{
    if (!x)
        return NULL;
    size_t es = tg_dtype_size(m->dt);
    int64_t C = l->out;
    /* (batch, C) only: the op normalises axis 1 in training while eval
     * broadcasts the statistics over the last axis, which for a 3-D input
     * are different axes (and a (B, T, C) input would be normalised per
     * time step in training). */
    if (x->ndim != 2 || x->shape[1] != C) {
        char s[TG_SHAPE_STR_MAX];
        tg_ctx_fail(ctx, TG_ERR_SHAPE, "model_forward: batch norm %s: input %s, expected (batch, %lld)", l->name,
                    tg_shape_str(x->ndim, x->shape, s, sizeof s), (long long)C);
        return NULL;
    }
    if (m->training) {
        tg_bn_stats st = { tg_ctx_alloc(ctx, (size_t)C * es, "batchnorm"),
                           tg_ctx_alloc(ctx, (size_t)C * es, "batchnorm") };
        if (!st.mean || !st.var)
            return NULL;
        tg_tensor *y = tg_batch_norm(ctx, x, l->w, l->b, l->eps, &st);
        if (!y)
            return NULL;
        double n = (double)(x->numel / C), mom = l->param;
        double unbias = n > 1 ? n / (n - 1) : 1;
        for (int64_t c = 0; c < C; c++) {
            double bm = es == 4 ? ((float *)st.mean)[c] : ((double *)st.mean)[c];
            double bv = es == 4 ? ((float *)st.var)[c] : ((double *)st.var)[c];
            tg_tensor_set(l->rmean, c, (1 - mom) * tg_tensor_get(l->rmean, c) + mom * bm);
            tg_tensor_set(l->rvar, c, (1 - mom) * tg_tensor_get(l->rvar, c) + mom * bv * unbias);
        }
        return y;
    }
    /* Eval: y = (x − running_mean) · gamma / sqrt(running_var + eps) + beta. */
    tg_tensor *rs = tg_tensor_new(ctx, m->dt, TG_DIMS(C));
    tg_tensor *rm = tg_tensor_wrap(ctx, m->dt, TG_DIMS(C), l->rmean->data);
    if (!rs || !rm)
        return NULL;
    for (int64_t c = 0; c < C; c++)
        tg_tensor_set(rs, c, 1.0 / sqrt(tg_tensor_get(l->rvar, c) + l->eps));
    return tg_add(ctx, tg_mul(ctx, tg_sub(ctx, x, rm), tg_mul(ctx, l->w, rs)), l->b);
}

static tg_tensor *layer_forward(tg_ctx *ctx, tg_model *m, tg_layer *l, tg_tensor *x)
{
    switch (l->kind) {
    case L_SEQ:
        for (int i = 0; i < l->n_kids && x; i++) {
            /* A dense layer followed by a relu is one fused op (tg_linear:
             * the same values and gradients, one pass less and no
             * intermediate tensors). */
            const tg_layer *k = l->kids[i], *next = i + 1 < l->n_kids ? l->kids[i + 1] : NULL;
            if (k->kind == L_DENSE && next && next->kind == L_ACT && next->act == TG_ACT_RELU) {
                x = tg_linear(ctx, x, k->w, k->b, 1);
                i++;
                continue;
            }
            x = layer_forward(ctx, m, l->kids[i], x);
        }
        return x;
    case L_RESIDUAL: {
        tg_tensor *y = x;
        for (int i = 0; i < l->n_kids && y; i++)
            y = layer_forward(ctx, m, l->kids[i], y);
        return tg_add(ctx, x, y);
    }
    case L_DENSE:
        return tg_linear(ctx, x, l->w, l->b, 0);
    case L_ACT:
        return tg_activate(ctx, x, l->act, l->param);
    case L_DROPOUT:
        if (!m->training || l->param == 0)
            return x;
        return tg_dropout(ctx, x, l->param, tg_rng_u64(&m->rng));
    case L_BN:
        return bn_forward(ctx, m, l, x);
    case L_LN:
        return tg_layer_norm(ctx, x, l->w, l->b, l->eps);
    case L_CUSTOM: {
        tg_tensor *y = x ? l->fn(ctx, x, m->training, l->ud) : NULL;
        if (x && !y && tg_ctx_status(ctx) == TG_OK)
            tg_ctx_fail(ctx, TG_ERR_STATE, "model_forward: layer %s returned NULL without an error", l->name);
        return y;
    }
    }
    return NULL;
}

tg_tensor *tg_model_forward(tg_ctx *ctx, tg_model *m, tg_tensor *x)
{
    if (!ctx || tg_ctx_status(ctx) != TG_OK)
        return NULL;
    if (!m) {
        tg_ctx_fail(ctx, TG_ERR_ARG, "model_forward: NULL model");
        return NULL;
    }
    if (m->depth != 1) {
        tg_ctx_fail(ctx, TG_ERR_STATE, "model_forward: a residual block is still open");
        return NULL;
    }
    if (x && x->dtype != m->dt) {
        tg_ctx_fail(ctx, TG_ERR_ARG, "model_forward: input is %s, model is %s", tg_dtype_name(x->dtype),
                    tg_dtype_name(m->dt));
        return NULL;
    }
    int64_t in = tg_model_in_features(m);
    if (x && in > 0 && (x->ndim < 2 || x->shape[x->ndim - 1] != in)) {
        char s[TG_SHAPE_STR_MAX];
        tg_ctx_fail(ctx, TG_ERR_SHAPE, "model_forward: input %s, model expects (batch, %lld)",
                    tg_shape_str(x->ndim, x->shape, s, sizeof s), (long long)in);
        return NULL;
    }
    return layer_forward(ctx, m, &m->root, x);
}

/* ---- describe --------------------------------------------------------------- */

static void describe(const tg_layer *l, int indent, char *buf, size_t cap, size_t *off)
{
    for (int i = 0; i < l->n_kids; i++) {
        const tg_layer *k = l->kids[i];
        char line[160];
        switch (k->kind) {
        case L_DENSE:    snprintf(line, sizeof line, "%s: dense %lld -> %lld", k->name, (long long)k->in, (long long)k->out); break;
        case L_ACT:      snprintf(line, sizeof line, "%s: %s", k->name, tg_act_name(k->act)); break;
        case L_DROPOUT:  snprintf(line, sizeof line, "%s: dropout p=%g", k->name, k->param); break;
        case L_BN:       snprintf(line, sizeof line, "%s: batch norm %lld", k->name, (long long)k->out); break;
        case L_LN:       snprintf(line, sizeof line, "%s: layer norm %lld", k->name, (long long)k->out); break;
        case L_CUSTOM:   snprintf(line, sizeof line, "%s: custom", k->name); break;
        case L_RESIDUAL: snprintf(line, sizeof line, "%s: residual x + f(x)", k->name); break;
        default:         snprintf(line, sizeof line, "sequence"); break;
        }
        if (*off < cap) {
            int w = snprintf(buf + *off, cap - *off, "%*s%s\n", indent, "", line);
            *off += w > 0 ? (size_t)w : 0;
        }
        if (k->kind == L_RESIDUAL)
            describe(k, indent + 2, buf, cap, off);
    }
}

void tg_model_describe(const tg_model *m, char *buf, size_t cap)
{
    if (!buf || !cap)
        return;
    buf[0] = '\0';
    if (!m)
        return;
    size_t off = 0;
    describe(&m->root, 0, buf, cap, &off);
}

/* ---- spec ---------------------------------------------------------------------- */

#define SPEC_MAX_WIDTH (1LL << 24)

typedef struct spec_src { const char *spec; char *err; size_t cap; } spec_src;

/* "model spec '<spec>': <why> at position <1-based offset of at>"; 0. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int spec_fail(const spec_src *s, const char *at, const char *fmt, ...)
{
    if (s->err && s->cap) {
        char why[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        snprintf(s->err, s->cap, "model spec '%s': %s at position %d", s->spec, why, (int)(at - s->spec) + 1);
    }
    return 0;
}

/* Digits only (no sign, no blanks): 1 with the width in *w and the end in
 * *end; 0 when there is no digit; -1 when the number is 0 or too large. */
static int spec_width(const char *p, const char **end, long long *w)
{
    long long v = 0;
    const char *q = p;
    while (isdigit((unsigned char)*q)) {
        if (v <= SPEC_MAX_WIDTH)
            v = v * 10 + (*q - '0');
        q++;
    }
    *end = q;
    *w = v;
    return q == p ? 0 : v < 1 || v > SPEC_MAX_WIDTH ? -1 : 1;
}

static int span_is(const char *p, const char *e, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(e - p) == n && !strncmp(p, word, n);
}

/* Parse one layer token [tok, end) after the input width:
 * WIDTH[act][_mod...]; errors name the offending part's position. */
static int spec_layer(tg_model *m, const spec_src *src, const char *tok, const char *end)
{
    if (tok == end)
        return spec_fail(src, tok, "empty layer");
    const char *p;
    long long width;
    int wr = spec_width(tok, &p, &width);
    if (wr == 0)
        return spec_fail(src, tok, "expected a positive width");
    if (wr < 0)
        return width == 0 ? spec_fail(src, tok, "expected a positive width")
                           : spec_fail(src, tok, "width above the maximum of %lld", SPEC_MAX_WIDTH);
    /* The activation runs to the first '_'; "leaky_relu" contains one. */
    const char *a0 = p;
    while (p < end && *p != '_')
        p++;
    int ak = TG_ACT_NONE;
    if (span_is(a0, p, "leaky")) {
        ak = TG_ACT_LEAKY_RELU;
        if (end - p >= 5 && !strncmp(p, "_relu", 5) && (p + 5 == end || p[5] == '_'))
            p += 5;
    } else if (p > a0) {
        ak = -1;
        for (int k = TG_ACT_RELU; k <= TG_ACT_SOFTMAX && ak < 0; k++)
            if (span_is(a0, p, tg_act_name((tg_act)k)))
                ak = k;
        if (ak < 0)
            return spec_fail(src, a0, "unknown activation '%.*s'", (int)(p - a0), a0);
    }
    int bn = 0, ln = 0, res = 0, has_drop = 0;
    const char *res_at = NULL;
    double drop = 0;
    while (p < end) {              /* *p == '_' */
        const char *mod = ++p;
        while (p < end && *p != '_')
            p++;
        int *flag = span_is(mod, p, "bn") ? &bn : span_is(mod, p, "ln") ? &ln : span_is(mod, p, "res") ? &res : NULL;
        if (flag) {
            if (*flag)
                return spec_fail(src, mod, "%.*s given twice", (int)(p - mod), mod);
            *flag = 1;
            if (flag == &res)
                res_at = mod;
            continue;
        }
        if (*mod == 'd') {
            if (has_drop)
                return spec_fail(src, mod, "dropout given twice");
            has_drop = 1;
            /* d<p>: a plain decimal in [0, 1): digits and at most one '.',
             * no sign, blank, exponent or nan. */
            char num[32];
            size_t n = (size_t)(p - mod - 1);
            int ok = n > 0 && n < sizeof num, dots = 0;
            for (size_t k = 0; ok && k < n; k++) {
                dots += mod[1 + k] == '.';
                ok = (isdigit((unsigned char)mod[1 + k]) || mod[1 + k] == '.') && dots <= 1;
            }
            if (ok) {
                memcpy(num, mod + 1, n);
                num[n] = '\0';
                drop = strtod(num, NULL);
            }
            if (!ok || !(drop >= 0 && drop < 1))
                return spec_fail(src, mod, "dropout needs a probability in [0, 1), got '%.*s'", (int)(p - mod), mod);
            continue;
        }
        return spec_fail(src, mod, "unknown modifier '%.*s' (bn, ln, res, d<p>)", (int)(p - mod), mod);
    }
    if (res && width != m->width)
        return spec_fail(src, res_at, "a residual layer must keep its width (%lld -> %lld)", (long long)m->width,
                         width);
    int relu_like = ak == TG_ACT_RELU || ak == TG_ACT_LEAKY_RELU || ak == TG_ACT_ELU ||
                    ak == TG_ACT_GELU || ak == TG_ACT_SILU;
    tg_status s = TG_OK;
    if (res)
        s = tg_model_begin_residual(m);
    if (s == TG_OK)
        s = tg_model_add_dense(m, m->width, width, relu_like ? TG_INIT_HE_UNIFORM : TG_INIT_XAVIER_UNIFORM);
    if (s == TG_OK && bn)
        s = tg_model_add_batchnorm(m, width, 0.1, 1e-5);
    if (s == TG_OK && ln)
        s = tg_model_add_layernorm(m, width, 1e-5);
    if (s == TG_OK && ak != TG_ACT_NONE)
        s = tg_model_add_activation(m, (tg_act)ak, 0);
    if (s == TG_OK && drop > 0)
        s = tg_model_add_dropout(m, drop);
    if (s == TG_OK && res)
        s = tg_model_end_residual(m);
    if (s != TG_OK)
        return spec_fail(src, tok, "%s", tg_status_str(s));
    return 1;
}

tg_model *tg_model_from_spec(const char *spec, tg_dtype dt, uint64_t seed, char *err, size_t cap)
{
    if (!spec) {
        if (err && cap)
            snprintf(err, cap, "model spec: NULL");
        return NULL;
    }
    spec_src src = { spec, err, cap };
    const char *p;
    long long in;
    int wr = spec_width(spec, &p, &in);
    if (wr <= 0) {
        if (wr == 0)
            spec_fail(&src, spec, "expected the input width first");
        else
            spec_fail(&src, spec, "expected an input width of at most %lld", SPEC_MAX_WIDTH);
        return NULL;
    }
    if (*p && *p != '-') {
        spec_fail(&src, p, "expected '-' after the input width");
        return NULL;
    }
    if (!*p) {
        spec_fail(&src, p, "no layers after the input width");
        return NULL;
    }
    tg_model *m = tg_model_new(dt, seed);
    if (!m) {
        if (err && cap)
            snprintf(err, cap, "model spec '%s': %s", spec, tg_dtype_is_float(dt) ? "out of memory" : "dtype must be f32 or f64");
        return NULL;
    }
    m->width = in;
    while (*p == '-') {
        const char *tok = ++p;
        while (*p && *p != '-')
            p++;
        if (!spec_layer(m, &src, tok, p)) {
            tg_model_free(m);
            return NULL;
        }
    }
    return m;
}
