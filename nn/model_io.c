/* model_io.c — saving and loading a model (parameters, buffers, optimizer
 * state, RNG) as a safetensors checkpoint. The file format itself lives in
 * safetensors*.c; this file only decides what goes in and checks that what
 * comes back fits before anything is overwritten. */
#include "tg_nn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FORMAT "tapegrad-checkpoint-1"
#define NAME_CAP 192

/* Every tensor of a checkpoint, in a fixed order, with owned names. */
typedef struct plan {
    tg_st_entry *e;
    char        *names;      /* n × NAME_CAP */
    int          n;
} plan;

static void plan_free(plan *p)
{
    tg_free(p->e);
    tg_free(p->names);
    memset(p, 0, sizeof *p);
}

static int plan_add(plan *p, const char *prefix, const char *state, const char *name,
                    const tg_tensor *t, void *data)
{
    char *dst = p->names + (size_t)p->n * NAME_CAP;
    int w = state ? snprintf(dst, NAME_CAP, "%s.%s.%s", prefix, state, name)
                  : snprintf(dst, NAME_CAP, "%s.%s", prefix, name);
    if (w < 0 || w >= NAME_CAP)
        return 0;
    p->e[p->n++] = (tg_st_entry){ dst, t->dtype, t->ndim, t->shape, data };
    return 1;
}

static tg_status make_plan(tg_model *m, tg_optim *o, plan *p, char *err, size_t cap)
{
    tg_params *pr = tg_model_params(m), *bf = tg_model_buffers(m);
    int np = tg_params_count(pr), nb = tg_params_count(bf), ns = o ? tg_optim_state_count(o) : 0;
    int total = np + nb + ns * np;
    memset(p, 0, sizeof *p);
    p->e = tg_malloc((size_t)(total ? total : 1) * sizeof *p->e);
    p->names = tg_malloc((size_t)(total ? total : 1) * NAME_CAP);
    if (!p->e || !p->names) {
        plan_free(p);
        snprintf(err, cap, "checkpoint: out of memory");
        return TG_ERR_NOMEM;
    }
    size_t es = tg_dtype_size(tg_params_dtype(pr));
    int ok = 1;
    for (int i = 0; i < np && ok; i++)
        ok = plan_add(p, "param", NULL, tg_params_name(pr, i), tg_params_get(pr, i), tg_params_get(pr, i)->data);
    for (int i = 0; i < nb && ok; i++)
        ok = plan_add(p, "buffer", NULL, tg_params_name(bf, i), tg_params_get(bf, i), tg_params_get(bf, i)->data);
    for (int s = 0; s < ns && ok; s++) {
        char *block = tg_optim_state_data(o, s);
        for (int i = 0; i < np && ok; i++)
            ok = plan_add(p, "optim", tg_optim_state_name(o, s), tg_params_name(pr, i), tg_params_get(pr, i),
                          block + (size_t)tg_params_offset(pr, i) * es);
    }
    if (!ok) {
        plan_free(p);
        snprintf(err, cap, "checkpoint: a tensor name is too long");
        return TG_ERR_ARG;
    }
    return TG_OK;
}

static void rng_hex(const tg_rng *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
             r->s[0], r->s[1], r->s[2], r->s[3]);
}

static int rng_parse(const char *s, tg_rng *r)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (int k = 0; k < 4; k++) {
        uint64_t v = 0;
        for (int j = 0; j < 16; j++) {
            char c = s[16 * k + j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return 0;
            v = v << 4 | (uint64_t)d;
        }
        r->s[k] = v;
    }
    return 1;
}

tg_status tg_model_save(const char *path, tg_model *m, tg_optim *o,
                        const tg_st_meta *extra, int n_extra, char *err, size_t cap)
{
    char dummy[8];
    if (!err || !cap) { err = dummy; cap = sizeof dummy; }
    if (!path || !m || n_extra < 0 || (n_extra && !extra)) {
        snprintf(err, cap, "checkpoint: NULL %s", !path ? "path" : !m ? "model" : "metadata");
        return TG_ERR_ARG;
    }
    plan p;
    tg_status s = make_plan(m, o, &p, err, cap);
    if (s != TG_OK)
        return s;
    enum { FIXED = 5 };
    tg_st_meta *meta = tg_malloc((size_t)(FIXED + n_extra) * sizeof *meta);
    if (!meta) {
        plan_free(&p);
        snprintf(err, cap, "checkpoint: out of memory");
        return TG_ERR_NOMEM;
    }
    char rng[80], steps[32];
    rng_hex(tg_model_rng(m), rng, sizeof rng);
    snprintf(steps, sizeof steps, "%" PRId64, o ? tg_optim_step_count(o) : (int64_t)0);
    meta[0] = (tg_st_meta){ "format", FORMAT };
    meta[1] = (tg_st_meta){ "dtype", tg_dtype_name(tg_params_dtype(tg_model_params(m))) };
    meta[2] = (tg_st_meta){ "model_rng", rng };
    meta[3] = (tg_st_meta){ "optim", o ? tg_optim_kind_name(tg_optim_config_of(o)->kind) : "none" };
    meta[4] = (tg_st_meta){ "optim_steps", steps };
    for (int i = 0; i < n_extra; i++)
        meta[FIXED + i] = extra[i];
    s = tg_safetensors_save(path, p.e, p.n, meta, FIXED + n_extra, err, cap);
    tg_free(meta);
    plan_free(&p);
    return s;
}

tg_status tg_model_load(const char *path, tg_model *m, tg_optim *o, char *err, size_t cap)
{
    char dummy[8];
    if (!err || !cap) { err = dummy; cap = sizeof dummy; }
    if (!path || !m) {
        snprintf(err, cap, "checkpoint: NULL %s", path ? "model" : "path");
        return TG_ERR_ARG;
    }
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        snprintf(err, cap, "checkpoint %s: %s", path, strerror(errno));
        return TG_ERR_IO;
    }
    fclose(probe);
    tg_st_file *f = tg_safetensors_open(path, err, cap);
    if (!f)
        return TG_ERR_FORMAT;
    tg_status s = TG_OK;
    plan p = {0};
    const char *fmt = tg_safetensors_meta(f, "format");
    const char *kind = tg_safetensors_meta(f, "optim");
    const char *steps_s = tg_safetensors_meta(f, "optim_steps");
    tg_rng rng;
    long long steps = 0;
    if (!fmt || strcmp(fmt, FORMAT) != 0) {
        snprintf(err, cap, "checkpoint %s: not a tapegrad checkpoint (metadata format is %s)", path,
                 fmt ? fmt : "missing");
        s = TG_ERR_FORMAT;
    } else if (!rng_parse(tg_safetensors_meta(f, "model_rng"), &rng)) {
        snprintf(err, cap, "checkpoint %s: model_rng metadata missing or malformed", path);
        s = TG_ERR_FORMAT;
    } else if (o && (!kind || strcmp(kind, tg_optim_kind_name(tg_optim_config_of(o)->kind)) != 0)) {
        snprintf(err, cap, "checkpoint %s: holds %s optimizer state, the run uses %s", path,
                 kind ? kind : "no", tg_optim_kind_name(tg_optim_config_of(o)->kind));
        s = TG_ERR_SHAPE;
    } else if (o && (!steps_s || sscanf(steps_s, "%lld", &steps) != 1 || steps < 0)) {
        snprintf(err, cap, "checkpoint %s: optim_steps metadata missing or malformed", path);
        s = TG_ERR_FORMAT;
    } else {
        s = make_plan(m, o, &p, err, cap);
    }
    /* Check every tensor before writing any. */
    for (int i = 0; s == TG_OK && i < p.n; i++) {
        tg_st_info info;
        const tg_st_entry *e = &p.e[i];
        if (tg_safetensors_find(f, e->name, &info) != TG_OK) {
            snprintf(err, cap, "checkpoint %s: tensor '%s' is missing", path, e->name);
            s = TG_ERR_SHAPE;
        } else if (info.dtype != (int)e->dtype || !tg_shape_equal(info.ndim, info.shape, e->ndim, e->shape)) {
            char a[TG_SHAPE_STR_MAX], b[TG_SHAPE_STR_MAX];
            snprintf(err, cap, "checkpoint %s: tensor '%s' is %s %s, model expects %s %s", path, e->name,
                     info.dtype_name, tg_shape_str(info.ndim, info.shape, a, sizeof a),
                     tg_dtype_name(e->dtype), tg_shape_str(e->ndim, e->shape, b, sizeof b));
            s = TG_ERR_SHAPE;
        }
    }
    if (s == TG_OK) {
        for (int i = 0; i < p.n; i++) {
            tg_st_info info;
            tg_safetensors_find(f, p.e[i].name, &info);
            memcpy(p.e[i].data, info.data, info.nbytes);
        }
        *tg_model_rng(m) = rng;
        if (o)
            tg_optim_set_step_count(o, steps);
    }
    plan_free(&p);
    tg_safetensors_close(f);
    return s;
}
