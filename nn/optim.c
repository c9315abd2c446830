/* optim.c — SGD (momentum, dampening, Nesterov), Adam, AdamW, RMSProp and
 * Adagrad over a parameter store's flat blocks, and learning-rate schedules.
 * Update rules follow PyTorch 1.13's torch.optim (for_each=False path);
 * tests/test_optim.c checks five steps of each against PyTorch's values.
 * Every state block is allocated at creation: a step allocates nothing. */
#include "tg_optim.h"
#include "tg_par.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define MAX_STATE 3

struct tg_optim {
    tg_params      *p;
    tg_optim_config c;
    double          lr;
    int64_t         t;                 /* steps taken */
    double          bc1, bc2;          /* Adam's bias corrections at t (set by step) */
    int             n_state;
    const char     *state_name[MAX_STATE];
    void           *state_raw[MAX_STATE];
    void           *state[MAX_STATE];
};

const char *tg_optim_kind_name(tg_optim_kind k)
{
    static const char *names[] = { "sgd", "adam", "adamw", "rmsprop", "adagrad" };
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "unknown";
}

int tg_optim_kind_parse(const char *name)
{
    for (int k = TG_OPTIM_SGD; k <= TG_OPTIM_ADAGRAD; k++)
        if (name && strcmp(name, tg_optim_kind_name((tg_optim_kind)k)) == 0)
            return k;
    return -1;
}

tg_optim_config tg_optim_defaults(tg_optim_kind kind, double lr)
{
    tg_optim_config c = { .kind = kind, .lr = lr };
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.alpha = 0.99;
    if (kind == TG_OPTIM_ADAMW)
        c.weight_decay = 1e-2;
    if (kind == TG_OPTIM_ADAGRAD)
        c.eps = 1e-10;
    return c;
}

static int bad(char *err, size_t cap, const char *fmt, const char *kind, double v)
{
    if (err && cap)
        snprintf(err, cap, fmt, kind, v);
    return 1;
}

static int invalid(const tg_optim_config *c, char *err, size_t cap)
{
    const char *k = tg_optim_kind_name(c->kind);
    if ((unsigned)c->kind > TG_OPTIM_ADAGRAD)
        return bad(err, cap, "optimizer: unknown kind%s %g", "", (double)c->kind);
    if (!(c->lr >= 0) || !isfinite(c->lr))
        return bad(err, cap, "%s: invalid learning rate %g", k, c->lr);
    if (!(c->weight_decay >= 0))
        return bad(err, cap, "%s: invalid weight_decay %g", k, c->weight_decay);
    if (!(c->momentum >= 0) || c->momentum >= 1.0 + 1e-12 * 0)
        if (!(c->momentum >= 0 && c->momentum < 1))
            return bad(err, cap, "%s: momentum %g outside [0, 1)", k, c->momentum);
    if (c->kind == TG_OPTIM_SGD && c->nesterov && (c->momentum <= 0 || c->dampening != 0))
        return bad(err, cap, "%s: Nesterov needs momentum > 0 and dampening 0 (momentum %g)", k, c->momentum);
    if ((c->kind == TG_OPTIM_ADAM || c->kind == TG_OPTIM_ADAMW) &&
        (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1)))
        return bad(err, cap, "%s: betas must lie in [0, 1) (beta1 %g)", k, c->beta1);
    if (c->kind != TG_OPTIM_SGD && !(c->eps >= 0))
        return bad(err, cap, "%s: invalid eps %g", k, c->eps);
    if (c->kind == TG_OPTIM_RMSPROP && !(c->alpha >= 0 && c->alpha <= 1))
        return bad(err, cap, "%s: alpha %g outside [0, 1]", k, c->alpha);
    if (c->kind == TG_OPTIM_ADAGRAD && (!(c->lr_decay >= 0) || !(c->initial_accumulator_value >= 0)))
        return bad(err, cap, "%s: invalid lr_decay or initial accumulator (%g)", k, c->lr_decay);
    return 0;
}

static int add_state(tg_optim *o, const char *name, double init)
{
    size_t es = tg_dtype_size(tg_params_dtype(o->p));
    int64_t len = tg_params_len(o->p);
    void *raw = tg_calloc((size_t)len * es + 64);
    if (!raw)
        return 0;
    void *s = (void *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    for (int64_t k = 0; init != 0 && k < len; k++) {
        if (es == 4) ((float *)s)[k] = (float)init;
        else         ((double *)s)[k] = init;
    }
    o->state_raw[o->n_state] = raw;
    o->state[o->n_state] = s;
    o->state_name[o->n_state] = name;
    o->n_state++;
    return 1;
}

tg_optim *tg_optim_new(tg_params *p, const tg_optim_config *cfg, char *err, size_t err_cap)
{
    if (!p || !cfg) {
        if (err && err_cap)
            snprintf(err, err_cap, "optimizer: NULL %s", p ? "config" : "parameter store");
        return NULL;
    }
    if (invalid(cfg, err, err_cap))
        return NULL;
    tg_optim *o = tg_calloc(sizeof *o);
    if (!o)
        goto nomem;
    o->p = p;
    o->c = *cfg;
    o->lr = cfg->lr;
    int ok = 1;
    switch (cfg->kind) {
    case TG_OPTIM_SGD:
        if (cfg->momentum > 0)
            ok = add_state(o, "momentum_buffer", 0);
        break;
    case TG_OPTIM_ADAM:
    case TG_OPTIM_ADAMW:
        ok = add_state(o, "exp_avg", 0) && add_state(o, "exp_avg_sq", 0);
        break;
    case TG_OPTIM_RMSPROP:
        ok = add_state(o, "square_avg", 0);
        if (ok && cfg->momentum > 0)
            ok = add_state(o, "momentum_buffer", 0);
        if (ok && cfg->centered)
            ok = add_state(o, "grad_avg", 0);
        break;
    case TG_OPTIM_ADAGRAD:
        ok = add_state(o, "sum", cfg->initial_accumulator_value);
        break;
    }
    if (ok)
        return o;
    tg_optim_free(o);
nomem:
    if (err && err_cap)
        snprintf(err, err_cap, "optimizer: out of memory for its state");
    return NULL;
}

void tg_optim_free(tg_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n_state; i++)
        tg_free(o->state_raw[i]);
    tg_free(o);
}

void tg_optim_set_lr(tg_optim *o, double lr) { o->lr = lr; }
double tg_optim_lr(const tg_optim *o) { return o->lr; }
int64_t tg_optim_step_count(const tg_optim *o) { return o->t; }
void tg_optim_set_step_count(tg_optim *o, int64_t t) { o->t = t < 0 ? 0 : t; }
const tg_optim_config *tg_optim_config_of(const tg_optim *o) { return &o->c; }
int tg_optim_state_count(const tg_optim *o) { return o->n_state; }
const char *tg_optim_state_name(const tg_optim *o, int i) { return i >= 0 && i < o->n_state ? o->state_name[i] : NULL; }
void *tg_optim_state_data(tg_optim *o, int i) { return i >= 0 && i < o->n_state ? o->state[i] : NULL; }

static void *state_named(tg_optim *o, const char *name)
{
    for (int i = 0; i < o->n_state; i++)
        if (strcmp(o->state_name[i], name) == 0)
            return o->state[i];
    return NULL;
}

/* The update loops, written once for T = float and T = double. Arithmetic
 * runs in T except the scalar coefficients, computed in double. */
#define DEFINE_STEP(T, SQRT, SFX)                                                         \
static void sgd_##SFX(tg_optim *o, T *w, const T *g, int64_t lo, int64_t hi)             \
{                                                                                         \
    const tg_optim_config *c = &o->c;                                                     \
    T *buf = state_named(o, "momentum_buffer");                                           \
    T lr = (T)o->lr, wd = (T)c->weight_decay, mu = (T)c->momentum, damp = (T)(1 - c->dampening); \
    for (int64_t k = lo; k < hi; k++) {                                                   \
        T d = g[k] + wd * w[k];                                                           \
        if (buf) {                                                                        \
            buf[k] = o->t == 1 ? d : mu * buf[k] + damp * d;                              \
            d = c->nesterov ? d + mu * buf[k] : buf[k];                                   \
        }                                                                                 \
        w[k] -= lr * d;                                                                   \
    }                                                                                     \
}                                                                                         \
static void adam_##SFX(tg_optim *o, T *w, const T *g, int64_t lo, int64_t hi)            \
{                                                                                         \
    const tg_optim_config *c = &o->c;                                                     \
    T *m = state_named(o, "exp_avg"), *v = state_named(o, "exp_avg_sq");                  \
    double bc1 = o->bc1, bc2 = o->bc2;                                                    \
    T b1 = (T)c->beta1, b2 = (T)c->beta2, eps = (T)c->eps;                                \
    T step = (T)(o->lr / bc1), rbc2 = (T)(1 / sqrt(bc2));                                 \
    int adamw = c->kind == TG_OPTIM_ADAMW;                                                \
    T wd = (T)c->weight_decay, decay = (T)(1 - o->lr * c->weight_decay);                  \
    for (int64_t k = lo; k < hi; k++) {                                                   \
        T d = g[k];                                                                       \
        if (adamw) w[k] *= decay;                                                         \
        else       d += wd * w[k];                                                        \
        m[k] = b1 * m[k] + (1 - b1) * d;                                                  \
        v[k] = b2 * v[k] + (1 - b2) * d * d;                                              \
        w[k] -= step * m[k] / (SQRT(v[k]) * rbc2 + eps);                                  \
    }                                                                                     \
}                                                                                         \
static void rmsprop_##SFX(tg_optim *o, T *w, const T *g, int64_t lo, int64_t hi)         \
{                                                                                         \
    const tg_optim_config *c = &o->c;                                                     \
    T *sq = state_named(o, "square_avg"), *buf = state_named(o, "momentum_buffer");       \
    T *ga = state_named(o, "grad_avg");                                                   \
    T a = (T)c->alpha, eps = (T)c->eps, lr = (T)o->lr, wd = (T)c->weight_decay, mu = (T)c->momentum; \
    for (int64_t k = lo; k < hi; k++) {                                                   \
        T d = g[k] + wd * w[k];                                                           \
        sq[k] = a * sq[k] + (1 - a) * d * d;                                              \
        T avg;                                                                            \
        if (ga) {                                                                         \
            ga[k] = a * ga[k] + (1 - a) * d;                                              \
            avg = SQRT(sq[k] - ga[k] * ga[k]) + eps;                                      \
        } else {                                                                          \
            avg = SQRT(sq[k]) + eps;                                                      \
        }                                                                                 \
        if (buf) {                                                                        \
            buf[k] = mu * buf[k] + d / avg;                                               \
            w[k] -= lr * buf[k];                                                          \
        } else {                                                                          \
            w[k] -= lr * d / avg;                                                         \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
static void adagrad_##SFX(tg_optim *o, T *w, const T *g, int64_t lo, int64_t hi)         \
{                                                                                         \
    const tg_optim_config *c = &o->c;                                                     \
    T *sum = state_named(o, "sum");                                                       \
    T clr = (T)(o->lr / (1 + (double)(o->t - 1) * c->lr_decay));                          \
    T eps = (T)c->eps, wd = (T)c->weight_decay;                                           \
    for (int64_t k = lo; k < hi; k++) {                                                   \
        T d = g[k] + wd * w[k];                                                           \
        sum[k] += d * d;                                                                  \
        w[k] -= clr * d / (SQRT(sum[k]) + eps);                                           \
    }                                                                                     \
}

DEFINE_STEP(float, sqrtf, f32)
DEFINE_STEP(double, sqrt, f64)

/* f32 Adam/AdamW as explicit AVX-512 code that also zeroes each gradient
 * vector right after reading it (for step_and_zero_grad). The very
 * operations of adam_f32, in the same order, unfused (the build has
 * -ffp-contract=off): the same bits, which test_optim checks against its
 * own scalar float loop. Faster in the training epoch (784-128-10, 1 thread,
 * bench_epoch --phases, alternating: optimizer 25.8-26.1 ms per epoch
 * against 27.8-29.2) than the compiler's vectorisation of adam_f32 and the
 * separate zeroing pass. */
#if defined(__AVX512F__)
#define HAVE_ADAM16 1
static void adam16_f32(tg_optim *o, float *w, float *g, int64_t lo, int64_t hi, int zero)
{
    const tg_optim_config *c = &o->c;
    float *m = state_named(o, "exp_avg"), *v = state_named(o, "exp_avg_sq");
    float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    float step = (float)(o->lr / o->bc1), rbc2 = (float)(1 / sqrt(o->bc2));
    int adamw = c->kind == TG_OPTIM_ADAMW;
    float wd = (float)c->weight_decay, decay = (float)(1 - o->lr * c->weight_decay);
    const __m512 vb1 = _mm512_set1_ps(b1), vb2 = _mm512_set1_ps(b2);
    const __m512 vc1 = _mm512_set1_ps(1 - b1), vc2 = _mm512_set1_ps(1 - b2);
    const __m512 veps = _mm512_set1_ps(eps), vstep = _mm512_set1_ps(step), vr = _mm512_set1_ps(rbc2);
    const __m512 vwd = _mm512_set1_ps(wd), vdecay = _mm512_set1_ps(decay);
    int64_t k = lo;
    for (; k + 16 <= hi; k += 16) {
        __m512 wk = _mm512_loadu_ps(w + k), d = _mm512_loadu_ps(g + k);
        if (adamw)
            wk = _mm512_mul_ps(wk, vdecay);
        else
            d = _mm512_add_ps(d, _mm512_mul_ps(vwd, wk));
        __m512 mk = _mm512_add_ps(_mm512_mul_ps(vb1, _mm512_loadu_ps(m + k)), _mm512_mul_ps(vc1, d));
        __m512 vk = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_loadu_ps(v + k)),
                                  _mm512_mul_ps(_mm512_mul_ps(vc2, d), d));
        __m512 den = _mm512_add_ps(_mm512_mul_ps(_mm512_sqrt_ps(vk), vr), veps);
        wk = _mm512_sub_ps(wk, _mm512_div_ps(_mm512_mul_ps(vstep, mk), den));
        _mm512_storeu_ps(m + k, mk);
        _mm512_storeu_ps(v + k, vk);
        _mm512_storeu_ps(w + k, wk);
        if (zero)
            _mm512_storeu_ps(g + k, _mm512_setzero_ps());
    }
    if (k < hi) {
        adam_f32(o, w, g, k, hi);
        if (zero)
            memset(g + k, 0, (size_t)(hi - k) * sizeof(float));
    }
}
#else
#define HAVE_ADAM16 0
#endif

/* The update is elementwise: threads (the parameter store's count, above
 * a size threshold) take fixed contiguous ranges, and every element gets
 * the same arithmetic whatever the split. With `zero`, each block of
 * ZBLOCK gradients is zeroed right after its update, while still in L1
 * (f32 Adam/AdamW with AVX-512: each vector, as it is read). */
#define ZBLOCK 2048

static tg_status step(tg_optim *o, int zero)
{
    if (!o)
        return TG_ERR_ARG;
    o->t++;
    /* Once per step, not per block (two pow calls per 2048 elements were
     * ~0.3 % of an Adam step of the 1.86 M-parameter MLP). */
    o->bc1 = 1 - pow(o->c.beta1, (double)o->t);
    o->bc2 = 1 - pow(o->c.beta2, (double)o->t);
    int64_t n = tg_params_len(o->p);
    void *w = tg_params_values(o->p);
    void *g = tg_params_grads(o->p);
    int f32 = tg_params_dtype(o->p) == TG_F32;
    size_t es = f32 ? sizeof(float) : sizeof(double);
    int nt = tg_params_threads(o->p);
    if (nt > 1)
        nt = (int)(n / TG_PAR_MIN_ELEMS) < nt ? (int)(n / TG_PAR_MIN_ELEMS) : nt;
    /* Parameters last to first, each ascending: the first layer's weights,
     * which the next forward reads first, are the freshest in cache when
     * it starts (784-1024-1024-10 step, f32, 1 thread, alternating 12 runs
     * each: median 13.16-13.59 ms against 13.26-13.80 in registration
     * order). Reversing the whole range instead (blocks high to low) was
     * slower: the prefetchers lose the stream. */
    int np = tg_params_count(o->p);
    TG_PAR_FOR(nt, n, 16, lo, hi, {
        for (int pi = np - 1; pi >= 0; pi--) {
            int64_t slo = tg_params_offset(o->p, pi), shi = pi + 1 < np ? tg_params_offset(o->p, pi + 1) : n;
            slo = slo > lo ? slo : lo;     /* this thread's part of the parameter */
            shi = shi < hi ? shi : hi;
            for (int64_t b = slo; b < shi; b += ZBLOCK) {
                int64_t e = shi - b < ZBLOCK ? shi : b + ZBLOCK;
                switch (o->c.kind) {
                case TG_OPTIM_SGD:     f32 ? sgd_f32(o, w, g, b, e)     : sgd_f64(o, w, g, b, e);     break;
                case TG_OPTIM_ADAM:
                case TG_OPTIM_ADAMW:
#if HAVE_ADAM16
                    if (f32) {
                        adam16_f32(o, w, g, b, e, zero);
                        continue;   /* zeroed already */
                    }
#endif
                    f32 ? adam_f32(o, w, g, b, e) : adam_f64(o, w, g, b, e);
                    break;
                case TG_OPTIM_RMSPROP: f32 ? rmsprop_f32(o, w, g, b, e) : rmsprop_f64(o, w, g, b, e); break;
                case TG_OPTIM_ADAGRAD: f32 ? adagrad_f32(o, w, g, b, e) : adagrad_f64(o, w, g, b, e); break;
                }
                if (zero)
                    memset((char *)g + (size_t)b * es, 0, (size_t)(e - b) * es);
            }
        }
    });
    return TG_OK;
}

tg_status tg_optim_step(tg_optim *o) { return step(o, 0); }
tg_status tg_optim_step_and_zero_grad(tg_optim *o)
{
    tg_status s = step(o, 1);
    /* As tg_params_zero_grad: every gradient is +0 now (see
     * TG_TENSOR_GRAD_ZERO), so the next backward may overwrite them. */
    for (int i = 0; s == TG_OK && i < tg_params_count(o->p); i++)
        tg_params_get(o->p, i)->flags |= TG_TENSOR_GRAD_ZERO;
    return s;
}

/* ---- schedules ----------------------------------------------------------- */

tg_status tg_schedule_check(const tg_schedule *s, char *err, size_t cap)
{
    const char *why = NULL;
    if (!s)
        why = "NULL schedule";
    else if ((unsigned)s->kind > TG_SCHED_COSINE)
        why = "unknown kind";
    else if (s->kind == TG_SCHED_STEP && s->step_size <= 0)
        why = "step schedule needs step_size > 0";
    else if ((s->kind == TG_SCHED_STEP || s->kind == TG_SCHED_EXPONENTIAL) && !(s->gamma > 0))
        why = "gamma must be > 0";
    else if (s->kind == TG_SCHED_COSINE && s->t_max <= 0)
        why = "cosine schedule needs t_max > 0";
    else if (s->warmup_steps < 0 || !(s->warmup_start >= 0 && s->warmup_start <= 1))
        why = "warm-up needs warmup_steps >= 0 and warmup_start in [0, 1]";
    if (!why)
        return TG_OK;
    if (err && cap)
        snprintf(err, cap, "schedule: %s", why);
    return TG_ERR_ARG;
}

double tg_schedule_lr(const tg_schedule *s, double base, int64_t t)
{
    if (!s)
        return base;
    double f = 1;
    if (t < s->warmup_steps) {
        f = s->warmup_start + (1 - s->warmup_start) * (double)t / (double)s->warmup_steps;
        t = 0;
    } else {
        t -= s->warmup_steps;
    }
    double lr = base;
    switch (s->kind) {
    case TG_SCHED_CONSTANT: break;
    case TG_SCHED_STEP: lr = base * pow(s->gamma, (double)(t / (s->step_size > 0 ? s->step_size : 1))); break;
    case TG_SCHED_EXPONENTIAL: lr = base * pow(s->gamma, (double)t); break;
    case TG_SCHED_COSINE: {
        double tt = t > s->t_max ? (double)s->t_max : (double)t;
        lr = s->eta_min + (base - s->eta_min) * (1 + cos(3.14159265358979323846 * tt / (double)s->t_max)) / 2;
        break;
    }
    }
    return lr * f;
}
