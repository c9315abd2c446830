/* dropout.c — inverted dropout as one fused op (listed with the norm family
 * in list_norm.h, declared in tg_norm.h): the mask from a counter-based
 * hash, recomputed in the VJP, never stored. */
#include "ops_common.h"

/* ---- dropout ----------------------------------------------------------------
 * Inverted dropout:  y_i = x_i m_i,  m_i = keep_i / (1 - p)     x, y: any shape
 * keep_i = [u_i >= p] with u_i = (h_i >> 11) 2^-53 in [0, 1) and
 *     h_i = mix(mix(seed + G) + (i + 1) G),  G = 0x9e3779b97f4a7c15,
 * mix = the splitmix64 finaliser: a pure function of (seed, i, p) in integer
 * arithmetic, identical on every machine and for any thread count. The mask
 * is recomputed in the VJP, not stored.  p.f[0] = p in [0, 1); p.i[0] = seed
 * (the uint64 seed's bits).  VJP: dx += dy m.
 * NOTE: y is x times the mask, as PyTorch computes it, so a NaN or inf x in a
 * dropped position gives NaN; p == 0 gives y == x exactly (m = 1).
 */
#define DROP_GOLDEN 0x9e3779b97f4a7c15ull

static inline uint64_t drop_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* keep_i as an integer compare: (h >> 11) 2^-53 >= p exactly when h >> 11
 * >= ceil(p 2^53) (both exact; p in [0, 1), checked by dropout_shape). The
 * loops run c = key + (i + 1) G by one addition per element: a 64-bit
 * multiply and a conversion to double fewer (128x1024 f32, 1 thread:
 * forward 51 -> 32 us, VJP 52 -> 35; tapegrad bench --op dropout). */
static inline uint64_t drop_thr(double p) { return (uint64_t)ceil(p * 0x1.0p53); }
#define DROP_LOOP(lo, hi, key, thr, keep, BODY) do {                           \
        uint64_t c_ = (key) + ((uint64_t)(lo) + 1) * DROP_GOLDEN;               \
        for (size_t i = (size_t)(lo); i < (size_t)(hi); i++, c_ += DROP_GOLDEN) { \
            int keep = (drop_mix(c_) >> 11) >= (thr);                           \
            BODY;                                                               \
        }                                                                       \
    } while (0)

/* The mask's key, from the seed: the forward and the VJP derive it here so
 * that both see the same mask. */
static inline uint64_t drop_key(const tg_node *n)
{
    return drop_mix((uint64_t)n->p.i[0] + DROP_GOLDEN);
}

static tg_status dropout_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    double p = n->p.f[0];
    if (!(p >= 0 && p < 1))
        return tg_op_fail(n, TG_ERR_ARG, "p must be in [0, 1), got %g", p);
    tg_shape_like(n, 0, dt, ndim, shape);
    return TG_OK;
}

static tg_status dropout_forward(tg_node *n)
{
    size_t len = TG_NUMEL(n->out);
    double p = n->p.f[0];
    uint64_t key = drop_key(n), thr = drop_thr(p);
    int nt = tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS / 4);   /* a hash per element */
    TG_DISPATCH(n->out->dtype, T, {
        const T *x = n->in[0]->data;
        T *y = n->out->data, scale = (T)(1.0 / (1.0 - p));
        TG_PAR_FOR(nt, (int64_t)len, 16, lo, hi, {
            DROP_LOOP(lo, hi, key, thr, keep, y[i] = x[i] * (keep ? scale : (T)0));
        });
    });
    return TG_OK;
}

static void dropout_backward(tg_node *n)
{
    size_t len = TG_NUMEL(n->out);
    double p = n->p.f[0];
    uint64_t key = drop_key(n), thr = drop_thr(p);
    int nt = tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS / 4);
    TG_DISPATCH(n->out->dtype, T, {
        const T *dy = n->out->grad;
        T *dx = n->in[0]->grad, scale = (T)(1.0 / (1.0 - p));
        const int ow = tg_vjp_overwrites(n, 0);
        if (dx && ow)
            TG_PAR_FOR(nt, (int64_t)len, 16, lo, hi, {
                DROP_LOOP(lo, hi, key, thr, keep, dx[i] = (T)0 + dy[i] * (keep ? scale : (T)0));
            });
        else if (dx)
            TG_PAR_FOR(nt, (int64_t)len, 16, lo, hi, {
                DROP_LOOP(lo, hi, key, thr, keep, dx[i] = dx[i] + dy[i] * (keep ? scale : (T)0));
            });
    });
}

/* (3, 5) with p = 0.3; (2, 1, 4) with p = 0.5; a scalar with p = 0.3;
 * (4) with p = 0 (the identity). */
static tg_status dropout_sample(tg_node *n, tg_dtype dt, int v)
{
    static const struct { int ndim; int64_t shape[3]; double p; } sh[] = {
        { 2, {3, 5}, 0.3 }, { 3, {2, 1, 4}, 0.5 }, { 0, {1}, 0.3 }, { 1, {4}, 0.0 },
    };
    if (v < 0 || v > 3)
        return TG_ERR_ARG;
    n->n_in = 1;
    n->in[0] = tg_sample_uniform(n, dt, sh[v].ndim, sh[v].shape, -2, 2);
    if (!n->in[0])
        return tg_ctx_status(n->ctx);
    n->p.f[0] = sh[v].p;
    n->p.i[0] = (int64_t)(tg_rng_u64(tg_ctx_rng(n->ctx)) >> 1);
    return TG_OK;
}

/* ~12 integer ops of hashing plus a multiply per element, both ways. */
static void dropout_cost(const tg_node *n, tg_op_cost *c)
{
    double e = (double)n->out->numel, w = (double)tg_dtype_size(n->out->dtype);
    c->fwd_flops = 13 * e;
    c->fwd_bytes = 2 * e * w;
    c->bwd_flops = 14 * e;
    c->bwd_bytes = 3 * e * w;
}

const tg_op_def tg_op_dropout_def = {
    .name = "dropout", .n_in = 1, .overwrites = 1,
    .shape = dropout_shape, .forward = dropout_forward, .backward = dropout_backward,
    .sample = dropout_sample, .n_samples = 4, .cost = dropout_cost,
};

tg_tensor *tg_dropout(tg_ctx *ctx, tg_tensor *x, double p, uint64_t seed)
{
    tg_op_params q;
    memset(&q, 0, sizeof q);
    q.f[0] = p;
    memcpy(&q.i[0], &seed, sizeof seed);   /* the bits, whatever the sign */
    return tg_apply(ctx, &tg_op_dropout_def, &x, 1, &q, NULL);
}
