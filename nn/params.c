/* params.c — the parameter store: named parameters whose values and
 * gradients are each one contiguous 64-byte-aligned block, plus the L1/L2
 * penalties and gradient clipping that act on those blocks. */
#include "tg_optim.h"
#include "tg_par.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 128
#define PAD 16               /* elements: every parameter starts 64-byte aligned in f32 */

typedef struct param {
    char       name[NAME_MAX_LEN];
    tg_tensor *t;
    int64_t    offset;
} param;

struct tg_params {
    tg_dtype dt;
    param   *items;
    int      n, cap;
    int64_t  len;            /* elements in each block, padding included */
    void    *values_raw, *grads_raw;   /* as allocated */
    void    *values, *grads;           /* 64-byte aligned */
    int      threads;                  /* for the loops over the blocks */
};

static size_t esize(const tg_params *p) { return tg_dtype_size(p->dt); }

tg_params *tg_params_new(tg_dtype dt)
{
    if (!tg_dtype_is_float(dt))
        return NULL;
    tg_params *p = tg_calloc(sizeof *p);
    if (p) {
        p->dt = dt;
        p->threads = 1;
    }
    return p;
}

void tg_params_free(tg_params *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        tg_free(p->items[i].t);
    tg_free(p->items);
    tg_free(p->values_raw);
    tg_free(p->grads_raw);
    tg_free(p);
}

static void *align64(void *raw) { return (void *)(((uintptr_t)raw + 63) & ~(uintptr_t)63); }

static void repoint(tg_params *p)
{
    for (int i = 0; i < p->n; i++) {
        tg_tensor *t = p->items[i].t;
        t->data = (char *)p->values + (size_t)p->items[i].offset * esize(p);
        t->grad = (char *)p->grads + (size_t)p->items[i].offset * esize(p);
    }
}

tg_tensor *tg_params_add(tg_params *p, const char *name, int ndim, const int64_t *shape, tg_status *st)
{
    tg_status dummy;
    if (!st)
        st = &dummy;
    *st = TG_ERR_ARG;
    if (!p || !name || !*name || strlen(name) >= NAME_MAX_LEN || ndim < 0 || ndim > TG_MAX_DIMS ||
        (ndim && !shape) || tg_params_find(p, name))
        return NULL;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || numel > (INT64_MAX / 16) / shape[i])
            return NULL;
        numel *= shape[i];
    }
    *st = TG_ERR_NOMEM;
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        param *items = tg_realloc(p->items, (size_t)cap * sizeof *items);
        if (!items)
            return NULL;
        p->items = items;
        p->cap = cap;
    }
    int64_t offset = p->len;
    int64_t len = offset + (numel + PAD - 1) / PAD * PAD;
    size_t bytes = (size_t)len * esize(p) + 64;
    void *vr = tg_calloc(bytes), *gr = tg_calloc(bytes);
    tg_tensor *t = tg_calloc(sizeof *t);
    if (!vr || !gr || !t) {
        tg_free(vr); tg_free(gr); tg_free(t);
        return NULL;
    }
    void *v = align64(vr), *g = align64(gr);
    if (p->len) {
        memcpy(v, p->values, (size_t)p->len * esize(p));
        memcpy(g, p->grads, (size_t)p->len * esize(p));
    }
    tg_free(p->values_raw);
    tg_free(p->grads_raw);
    p->values_raw = vr; p->grads_raw = gr;
    p->values = v; p->grads = g;
    p->len = len;

    t->dtype = p->dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = numel;
    t->flags = TG_TENSOR_PERSISTENT | TG_TENSOR_VIEW | TG_TENSOR_REQUIRES_GRAD;
    t->node = -1;
    param *it = &p->items[p->n++];
    snprintf(it->name, sizeof it->name, "%s", name);
    it->t = t;
    it->offset = offset;
    t->name = it->name;
    repoint(p);
    /* Names live in items[], which may move: refresh every tensor's label. */
    for (int i = 0; i < p->n; i++)
        p->items[i].t->name = p->items[i].name;
    *st = TG_OK;
    return t;
}

void tg_params_truncate(tg_params *p, int n)
{
    if (!p || n < 0 || n >= p->n)
        return;
    /* Parameters sit in the blocks in the order they were added, so the
     * first one removed starts where the kept ones end. The blocks keep
     * their size (the space is reused by the next add). */
    int64_t len = p->items[n].offset;
    for (int i = n; i < p->n; i++)
        tg_free(p->items[i].t);
    memset((char *)p->values + (size_t)len * esize(p), 0, (size_t)(p->len - len) * esize(p));
    memset((char *)p->grads + (size_t)len * esize(p), 0, (size_t)(p->len - len) * esize(p));
    p->n = n;
    p->len = len;
}

int tg_params_count(const tg_params *p) { return p ? p->n : 0; }
tg_tensor *tg_params_get(const tg_params *p, int i) { return p && i >= 0 && i < p->n ? p->items[i].t : NULL; }
const char *tg_params_name(const tg_params *p, int i) { return p && i >= 0 && i < p->n ? p->items[i].name : NULL; }
tg_dtype tg_params_dtype(const tg_params *p) { return p->dt; }
void *tg_params_values(const tg_params *p) { return p->values; }
void *tg_params_grads(const tg_params *p) { return p->grads; }
int64_t tg_params_len(const tg_params *p) { return p->len; }
int64_t tg_params_offset(const tg_params *p, int i) { return p && i >= 0 && i < p->n ? p->items[i].offset : -1; }

tg_tensor *tg_params_find(const tg_params *p, const char *name)
{
    if (!p || !name)
        return NULL;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0)
            return p->items[i].t;
    return NULL;
}

int64_t tg_params_numel(const tg_params *p)
{
    int64_t n = 0;
    for (int i = 0; p && i < p->n; i++)
        n += p->items[i].t->numel;
    return n;
}

void tg_params_set_threads(tg_params *p, int n)
{
    if (p)
        p->threads = n < 1 ? 1 : n;
}

int tg_params_threads(const tg_params *p) { return p ? p->threads : 1; }

/* Threads for a pass over the whole block: the store's count, fewer when
 * the block is too small for each to get TG_PAR_MIN_ELEMS. */
static int block_threads(const tg_params *p)
{
    int64_t k = p->len / TG_PAR_MIN_ELEMS;
    return k < p->threads ? (int)(k < 1 ? 1 : k) : p->threads;
}

/* TG_TENSOR_GRAD_ZERO on every parameter (zero) or on none: set where the
 * store has just zeroed all gradients, so that the next backward's first
 * contribution to each may overwrite it; cleared by anything here that
 * writes gradients (the tape clears it after each VJP). */
static void mark_grads_zero(tg_params *p, int zero)
{
    for (int i = 0; p && i < p->n; i++) {
        if (zero)
            p->items[i].t->flags |= TG_TENSOR_GRAD_ZERO;
        else
            p->items[i].t->flags &= ~(uint32_t)TG_TENSOR_GRAD_ZERO;
    }
}

void tg_params_zero_grad(tg_params *p)
{
    if (!p || !p->len)
        return;
    char *g = p->grads;
    size_t es = esize(p);
    TG_PAR_FOR(block_threads(p), p->len, 16, lo, hi, {
        memset(g + (size_t)lo * es, 0, (size_t)(hi - lo) * es);
    });
    mark_grads_zero(p, 1);
}

void tg_params_touch_grads(tg_params *p) { mark_grads_zero(p, 0); }

static int name_matches(const char *name, const char *filter)
{
    if (!filter)
        return 1;
    size_t n = strlen(name), f = strlen(filter);
    return n >= f && strcmp(name + n - f, filter) == 0;
}

/* L1 (l1 = 1) or L2 penalty over matching parameters; adds its gradient. */
static double penalty(tg_params *p, double lambda, const char *filter, int l1)
{
    double total = 0;
    mark_grads_zero(p, 0);
    for (int i = 0; p && i < p->n; i++) {
        if (!name_matches(p->items[i].name, filter))
            continue;
        tg_tensor *t = p->items[i].t;
        if (p->dt == TG_F32) {
            float *w = t->data, *g = t->grad;
            for (int64_t k = 0; k < t->numel; k++) {
                total += l1 ? fabs((double)w[k]) : (double)w[k] * w[k];
                g[k] += (float)(l1 ? lambda * ((w[k] > 0) - (w[k] < 0)) : 2 * lambda * w[k]);
            }
        } else {
            double *w = t->data, *g = t->grad;
            for (int64_t k = 0; k < t->numel; k++) {
                total += l1 ? fabs(w[k]) : w[k] * w[k];
                g[k] += l1 ? lambda * ((w[k] > 0) - (w[k] < 0)) : 2 * lambda * w[k];
            }
        }
    }
    return lambda * total;
}

double tg_params_l2_penalty(tg_params *p, double lambda, const char *filter) { return penalty(p, lambda, filter, 0); }
double tg_params_l1_penalty(tg_params *p, double lambda, const char *filter) { return penalty(p, lambda, filter, 1); }

/* The squared norm in fixed blocks of SS_BLOCK elements: each block summed
 * in order, the block sums added in block order, so the result does not
 * depend on how many threads computed the blocks. */
#define SS_BLOCK 4096
#define SS_MAX_PARTS 64

static double sum_squares(const tg_params *p)
{
    int64_t nblk = (p->len + SS_BLOCK - 1) / SS_BLOCK;
    double total = 0;
    /* Blocks go in batches of SS_MAX_PARTS partial sums (no allocation). */
    for (int64_t b0 = 0; b0 < nblk; b0 += SS_MAX_PARTS) {
        int64_t nb = nblk - b0 < SS_MAX_PARTS ? nblk - b0 : SS_MAX_PARTS;
        double part[SS_MAX_PARTS];
        int64_t elems = nb * SS_BLOCK;
        int nt = elems / TG_PAR_MIN_ELEMS < p->threads ? (int)(elems / TG_PAR_MIN_ELEMS) : p->threads;
        TG_PAR_FOR(nt, nb, 1, lo, hi, {
            for (int64_t b = lo; b < hi; b++) {
                int64_t k0 = (b0 + b) * SS_BLOCK, k1 = k0 + SS_BLOCK < p->len ? k0 + SS_BLOCK : p->len;
                double ss = 0;
                if (p->dt == TG_F32) {
                    const float *g = p->grads;
                    for (int64_t k = k0; k < k1; k++)
                        ss += (double)g[k] * g[k];
                } else {
                    const double *g = p->grads;
                    for (int64_t k = k0; k < k1; k++)
                        ss += g[k] * g[k];
                }
                part[b] = ss;
            }
        });
        for (int64_t b = 0; b < nb; b++)
            total += part[b];
    }
    return total;
}

double tg_clip_grad_norm(tg_params *p, double max_norm)
{
    if (!p || !p->len)
        return 0;
    double norm = sqrt(sum_squares(p));
    if (!isfinite(norm) || norm <= max_norm)
        return norm;
    double scale = max_norm / (norm + 1e-6);      /* PyTorch's clip_grad_norm_ */
    mark_grads_zero(p, 0);
    TG_PAR_FOR(block_threads(p), p->len, 16, lo, hi, {
        if (p->dt == TG_F32) {
            float *g = p->grads;
            for (int64_t k = lo; k < hi; k++)
                g[k] = (float)(g[k] * scale);
        } else {
            double *g = p->grads;
            for (int64_t k = lo; k < hi; k++)
                g[k] *= scale;
        }
    });
    return norm;
}

void tg_clip_grad_value(tg_params *p, double v)
{
    if (!p)
        return;
    mark_grads_zero(p, 0);
    TG_PAR_FOR(block_threads(p), p->len, 16, lo, hi, {
        if (p->dt == TG_F32) {
            float *g = p->grads, lim = (float)v;
            for (int64_t k = lo; k < hi; k++)
                g[k] = g[k] > lim ? lim : g[k] < -lim ? -lim : g[k];
        } else {
            double *g = p->grads;
            for (int64_t k = lo; k < hi; k++)
                g[k] = g[k] > v ? v : g[k] < -v ? -v : g[k];
        }
    });
}
