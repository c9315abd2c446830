/* model.c — layers and the sequential model: dense, activation, dropout,
 * batch norm, layer norm, custom and residual layers, built one by one or
 * from a spec string. Layers only record public ops; the parameter store
 * holds their weights, the buffer store their running statistics. */
#include "tg_nn.h"

#include <ctype.h>
#include <errno.h>
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
    int64_t    in, width;         /* input width, current output width (-1)  */
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
    m->in = m->width = -1;
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

tg_params *tg_model_params(tg_model *m) { return m->params; }
tg_params *tg_model_buffers(tg_model *m) { return m->buffers; }
tg_rng *tg_model_rng(tg_model *m) { return &m->rng; }
void tg_model_set_training(tg_model *m, int on) { m->training = on != 0; }
int tg_model_training(const tg_model *m) { return m->training; }
int64_t tg_model_in_features(const tg_model *m) { return m->in; }
int64_t tg_model_out_features(const tg_model *m) { return m->width; }

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

/* Undo the last append (a builder failed after it). */
static void drop_last(tg_model *m)
{
    tg_layer *parent = m->open[m->depth - 1];
    tg_layer *l = parent->kids[--parent->n_kids];
    m->counter[l->kind]--;
    layer_free(l);
    tg_free(l);
}

static tg_tensor *add_named(tg_params *p, const tg_layer *l, const char *what, int ndim, const int64_t *shape)
{
    char name[64];
    snprintf(name, sizeof name, "%s.%s", l->name, what);
    return tg_params_add(p, name, ndim, shape, NULL);
}

static tg_status check_width(const tg_model *m, int64_t in)
{
    if (in <= 0 || (m->width >= 0 && in != m->width))
        return TG_ERR_SHAPE;
    return TG_OK;
}

tg_status tg_model_add_dense(tg_model *m, int64_t in, int64_t out, tg_init init)
{
    if (!m || out <= 0 || check_width(m, in) != TG_OK)
        return m && out > 0 ? TG_ERR_SHAPE : TG_ERR_ARG;
    tg_layer *l = append(m, L_DENSE, "dense");
    if (!l)
        return TG_ERR_NOMEM;
    l->in = in;
    l->out = out;
    l->w = add_named(m->params, l, "weight", TG_DIMS(in, out));
    l->b = l->w ? add_named(m->params, l, "bias", TG_DIMS(out)) : NULL;
    if (!l->w || !l->b || tg_init_tensor(l->w, init, in, out, 0, &m->rng) != TG_OK) {
        drop_last(m);   /* NOTE: a parameter already added stays, unused */
        return TG_ERR_NOMEM;
    }
    if (m->in < 0)
        m->in = in;
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
    tg_layer *l = append(m, L_BN, "bn");
    if (!l)
        return TG_ERR_NOMEM;
    l->in = l->out = features;
    l->param = momentum;
    l->eps = eps;
    l->w = add_named(m->params, l, "gamma", TG_DIMS(features));
    l->b = l->w ? add_named(m->params, l, "beta", TG_DIMS(features)) : NULL;
    l->rmean = l->b ? add_named(m->buffers, l, "running_mean", TG_DIMS(features)) : NULL;
    l->rvar = l->rmean ? add_named(m->buffers, l, "running_var", TG_DIMS(features)) : NULL;
    if (!l->rvar) {
        drop_last(m);
        return TG_ERR_NOMEM;
    }
    tg_init_tensor(l->w, TG_INIT_CONSTANT, 1, 1, 1.0, &m->rng);
    tg_init_tensor(l->rvar, TG_INIT_CONSTANT, 1, 1, 1.0, &m->rng);
    if (m->width < 0)
        m->in = features;
    m->width = features;
    return TG_OK;
}

tg_status tg_model_add_layernorm(tg_model *m, int64_t features, double eps)
{
    if (!m || !(eps > 0))
        return TG_ERR_ARG;
    if (check_width(m, features) != TG_OK)
        return TG_ERR_SHAPE;
    tg_layer *l = append(m, L_LN, "ln");
    if (!l)
        return TG_ERR_NOMEM;
    l->in = l->out = features;
    l->eps = eps;
    l->w = add_named(m->params, l, "gamma", TG_DIMS(features));
    l->b = l->w ? add_named(m->params, l, "beta", TG_DIMS(features)) : NULL;
    if (!l->b) {
        drop_last(m);
        return TG_ERR_NOMEM;
    }
    tg_init_tensor(l->w, TG_INIT_CONSTANT, 1, 1, 1.0, &m->rng);
    if (m->width < 0)
        m->in = features;
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
    if (l->in >= 0 && m->width >= 0 && l->in != m->width)
        return TG_ERR_SHAPE;
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
        for (int i = 0; i < l->n_kids && x; i++)
            x = layer_forward(ctx, m, l->kids[i], x);
        return x;
    case L_RESIDUAL: {
        tg_tensor *y = x;
        for (int i = 0; i < l->n_kids && y; i++)
            y = layer_forward(ctx, m, l->kids[i], y);
        return tg_add(ctx, x, y);
    }
    case L_DENSE:
        return tg_add(ctx, tg_matmul(ctx, x, l->w), l->b);
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
    case L_CUSTOM:
        return x ? l->fn(ctx, x, m->training, l->ud) : NULL;
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
    if (x && m->in > 0 && (x->ndim < 1 || x->shape[x->ndim - 1] != m->in)) {
        char s[TG_SHAPE_STR_MAX];
        tg_ctx_fail(ctx, TG_ERR_SHAPE, "model_forward: input %s, model expects (batch, %lld)",
                    tg_shape_str(x->ndim, x->shape, s, sizeof s), (long long)m->in);
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
    size_t off = 0;
    describe(&m->root, 0, buf, cap, &off);
}

/* ---- spec ---------------------------------------------------------------------- */

static int spec_fail(char *err, size_t cap, const char *spec, const char *at, const char *why)
{
    if (err && cap)
        snprintf(err, cap, "model spec '%s': %s at position %d", spec, why, (int)(at - spec) + 1);
    return 0;
}

/* Parse one layer token after the input width: WIDTH[act][_mod...]. */
static int spec_layer(tg_model *m, const char *spec, const char *tok, size_t len, char *err, size_t cap)
{
    char buf[96];
    if (len == 0 || len >= sizeof buf)
        return spec_fail(err, cap, spec, tok, len ? "layer token too long" : "empty layer");
    memcpy(buf, tok, len);
    buf[len] = '\0';
    char *p = buf;
    errno = 0;
    long long width = strtoll(p, &p, 10);
    if (p == buf || errno || width <= 0 || width > (1LL << 24))
        return spec_fail(err, cap, spec, tok, "expected a positive width");
    char act[32] = "";
    size_t a = 0;
    while (*p && *p != '_' && a + 1 < sizeof act)
        act[a++] = *p++;
    act[a] = '\0';
    /* "leaky_relu" contains the modifier separator: take it whole ("leaky"
     * is its short form). */
    if (!strcmp(act, "leaky") && !strncmp(p, "_relu", 5) && (p[5] == '_' || !p[5]))
        p += 5;
    int ak = a ? tg_act_parse(act) : TG_ACT_NONE;
    if (a && !strcmp(act, "leaky"))
        ak = TG_ACT_LEAKY_RELU;
    if (ak < 0)
        return spec_fail(err, cap, spec, tok, "unknown activation");
    int bn = 0, ln = 0, res = 0;
    double drop = 0;
    while (*p == '_') {
        p++;
        if (!strncmp(p, "bn", 2) && (p[2] == '_' || !p[2])) { bn = 1; p += 2; }
        else if (!strncmp(p, "ln", 2) && (p[2] == '_' || !p[2])) { ln = 1; p += 2; }
        else if (!strncmp(p, "res", 3) && (p[3] == '_' || !p[3])) { res = 1; p += 3; }
        else if (*p == 'd') {
            char *e;
            drop = strtod(p + 1, &e);
            if (e == p + 1 || !(drop >= 0 && drop < 1))
                return spec_fail(err, cap, spec, tok, "dropout needs a probability in [0, 1)");
            p = e;
        } else {
            return spec_fail(err, cap, spec, tok, "unknown modifier (bn, ln, res, d<p>)");
        }
    }
    if (*p)
        return spec_fail(err, cap, spec, tok, "unexpected characters");
    if (res && width != m->width)
        return spec_fail(err, cap, spec, tok, "a residual layer must keep its width");
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
        return spec_fail(err, cap, spec, tok, tg_status_str(s));
    return 1;
}

tg_model *tg_model_from_spec(const char *spec, tg_dtype dt, uint64_t seed, char *err, size_t cap)
{
    if (!spec) {
        if (err && cap)
            snprintf(err, cap, "model spec: NULL");
        return NULL;
    }
    const char *p = spec;
    char *end;
    errno = 0;
    long long in = strtoll(p, &end, 10);
    if (end == p || errno || in <= 0 || in > (1LL << 24) || (*end && *end != '-')) {
        spec_fail(err, cap, spec, p, "expected the input width first");
        return NULL;
    }
    if (!*end) {
        spec_fail(err, cap, spec, end, "no layers after the input width");
        return NULL;
    }
    tg_model *m = tg_model_new(dt, seed);
    if (!m) {
        if (err && cap)
            snprintf(err, cap, "model spec: out of memory");
        return NULL;
    }
    m->in = m->width = in;
    p = end;
    while (*p == '-') {
        const char *tok = ++p;
        while (*p && *p != '-')
            p++;
        if (!spec_layer(m, spec, tok, (size_t)(p - tok), err, cap)) {
            tg_model_free(m);
            return NULL;
        }
    }
    return m;
}
