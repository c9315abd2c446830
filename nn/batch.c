/* batch.c — what is done with a dataset once it is in memory: the seeded
 * minibatch iterator (Fisher–Yates per epoch, reproducible from (seed, epoch)
 * alone), subsets, and standardisation. Reading files is idx.c's job. */
#include "tg_data.h"
#include "tg_par.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- the iterator ------------------------------------------------------ */
/* The generator of epoch k is seeded with a value mixing the user's seed and
 * k: tg_rng_seed runs it through splitmix64, so neighbouring epochs get
 * unrelated streams. Only integer arithmetic: the same on every machine. */
static uint64_t epoch_seed(uint64_t seed, int64_t epoch)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    uint64_t base = tg_rng_u64(&r);
    return base ^ (0x9E3779B97F4A7C15ull * ((uint64_t)epoch + 1));
}

static void make_order(tg_batch_iter *it)
{
    int64_t n = it->ds->n;
    for (int64_t i = 0; i < n; i++)
        it->perm[i] = i;
    if (!it->shuffle)
        return;
    tg_rng r;
    tg_rng_seed(&r, epoch_seed(it->seed, it->epoch));
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)tg_rng_below(&r, (uint64_t)i + 1);
        int64_t t = it->perm[i];
        it->perm[i] = it->perm[j];
        it->perm[j] = t;
    }
}

tg_status tg_batch_iter_init(tg_batch_iter *it, const tg_dataset *ds, int64_t batch_size,
                             int shuffle, uint64_t seed, int drop_last)
{
    if (!it)
        return TG_ERR_ARG;
    memset(it, 0, sizeof *it);
    if (!ds || ds->n <= 0 || ds->d <= 0 || batch_size < 1 ||
        (uint64_t)ds->n > SIZE_MAX / sizeof(int64_t))
        return TG_ERR_ARG;
    it->perm = tg_malloc((size_t)ds->n * sizeof(int64_t));
    if (!it->perm)
        return TG_ERR_NOMEM;
    it->ds = ds;
    it->batch = batch_size;
    it->shuffle = shuffle != 0;
    it->seed = seed;
    it->drop_last = drop_last != 0;
    it->threads = 1;
    make_order(it);
    return TG_OK;
}

void tg_batch_iter_free(tg_batch_iter *it)
{
    if (!it)
        return;
    tg_free(it->perm);
    memset(it, 0, sizeof *it);
}

/* Samples [lo, hi) of a batch. Compacted samples are converted with the
 * loader's expression, b / 255.0f (vectorised), each byte row and its label
 * prefetched a few rows ahead: gathering bytes is latency-bound otherwise
 * (measured, the default training epoch's copies: 28-34 ms for float rows,
 * 14-16 ms for bytes; 12.9-13.8 ms with the labels prefetched too, against
 * 13.6-15.0: a label is a random 4-byte load from 240 KB, an L3 miss
 * after each step's GEMMs). */
#define PREFETCH 4

static void gather(const tg_dataset *ds, const int64_t *idx, int64_t lo, int64_t hi, float *x, int32_t *y)
{
    size_t d = (size_t)ds->d;
    for (int64_t i = lo; i < hi; i++) {
        if (x && ds->x8) {
            if (i + PREFETCH < hi) {
                const uint8_t *p = ds->x8 + (size_t)idx[i + PREFETCH] * d;
                for (size_t k = 0; k < d; k += 64)
                    __builtin_prefetch(p + k);
                if (y)
                    __builtin_prefetch(ds->y + idx[i + PREFETCH]);
            }
            const uint8_t *src = ds->x8 + (size_t)idx[i] * d;
            float *dst = x + (size_t)i * d;
            for (size_t k = 0; k < d; k++)
                dst[k] = (float)src[k] / 255.0f;
        } else if (x) {
            memcpy(x + (size_t)i * d, ds->x + (size_t)idx[i] * d, d * sizeof(float));
        }
        if (y)
            y[i] = ds->y[idx[i]];
    }
}

int64_t tg_batch_iter_next(tg_batch_iter *it, float *x, int32_t *y)
{
    if (!it || !it->perm)
        return 0;
    const tg_dataset *ds = it->ds;
    int64_t left = ds->n - it->pos;
    int64_t b = left < it->batch ? left : it->batch;
    if (b <= 0 || (it->drop_last && b < it->batch))
        return 0;
    const int64_t *idx = it->perm + it->pos;
    int64_t elems = x ? b * ds->d : 0;
    int nt = elems / TG_PAR_MIN_ELEMS < it->threads ? (int)(elems / TG_PAR_MIN_ELEMS) : it->threads;
    TG_PAR_FOR(nt, b, 1, lo, hi, { gather(ds, idx, lo, hi, x, y); });
    it->pos += b;
    return b;
}

void tg_batch_iter_set_threads(tg_batch_iter *it, int n)
{
    if (it)
        it->threads = n < 1 ? 1 : n;
}

const int64_t *tg_batch_iter_indices(const tg_batch_iter *it)
{
    if (!it || !it->perm || it->pos == 0)
        return NULL;
    /* The last batch ended at pos and had batch_size samples, or fewer if it
     * was the final, partial one. */
    int64_t last = it->pos % it->batch ? it->pos % it->batch : it->batch;
    return it->perm + (it->pos - last);
}

void tg_batch_iter_reset(tg_batch_iter *it)
{
    if (!it || !it->perm)
        return;
    it->epoch++;
    it->pos = 0;
    make_order(it);
}

tg_status tg_batch_iter_seek_epoch(tg_batch_iter *it, int64_t epoch)
{
    if (!it || !it->perm || epoch < 0)
        return TG_ERR_ARG;
    it->epoch = epoch;
    it->pos = 0;
    make_order(it);
    return TG_OK;
}

int64_t tg_batch_iter_epoch(const tg_batch_iter *it)
{
    return it ? it->epoch : 0;
}

int64_t tg_batch_iter_num_batches(const tg_batch_iter *it)
{
    if (!it || !it->perm)
        return 0;
    int64_t n = it->ds->n;
    return it->drop_last ? n / it->batch : (n + it->batch - 1) / it->batch;
}

/* ---- subsets and scaling ----------------------------------------------- */
static tg_status fail(char *err, size_t cap, tg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static tg_status fail(char *err, size_t cap, tg_status s, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return s;
}

tg_status tg_dataset_subset(const tg_dataset *src, int64_t start, int64_t count,
                            tg_dataset *out, char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (!out)
        return fail(err, err_cap, TG_ERR_ARG, "tg_dataset_subset: output is NULL");
    memset(out, 0, sizeof *out);
    if (!src || (!src->x && !src->x8) || !src->y || src->d <= 0)
        return fail(err, err_cap, TG_ERR_ARG, "tg_dataset_subset: empty source dataset");
    if (start < 0 || count < 1 || start > src->n || count > src->n - start)
        return fail(err, err_cap, TG_ERR_ARG, "tg_dataset_subset: samples [%lld, %lld + %lld) "
                    "are not inside a dataset of %lld", (long long)start, (long long)start,
                    (long long)count, (long long)src->n);
    tg_dataset ds = *src;
    ds.n = count;
    size_t d = (size_t)src->d;
    size_t es = src->x8 ? 1 : sizeof(float);
    void *xs = tg_malloc((size_t)count * d * es);
    ds.x = src->x8 ? NULL : xs;
    ds.x8 = src->x8 ? xs : NULL;
    ds.y = tg_malloc((size_t)count * sizeof(int32_t));
    if (!xs || !ds.y) {
        tg_free(xs);
        tg_free(ds.y);
        return fail(err, err_cap, TG_ERR_NOMEM, "tg_dataset_subset: out of memory for %lld "
                    "samples", (long long)count);
    }
    memcpy(xs, src->x8 ? (const void *)(src->x8 + (size_t)start * d) : (const void *)(src->x + (size_t)start * d),
           (size_t)count * d * es);
    memcpy(ds.y, src->y + start, (size_t)count * sizeof(int32_t));
    *out = ds;
    return TG_OK;
}

tg_status tg_dataset_normalize(tg_dataset *ds, double mean, double std)
{
    if (!ds || (ds->n > 0 && !ds->x) || !isfinite(mean) || !isfinite(std) || !(std > 0))
        return TG_ERR_ARG;
    size_t len = (size_t)(ds->n * ds->d);
    float m = (float)mean;
    float inv = (float)(1.0 / std);
    for (size_t i = 0; i < len; i++)
        ds->x[i] = (ds->x[i] - m) * inv;
    return TG_OK;
}

tg_status tg_dataset_standardize(tg_dataset *ds, double *mean, double *std)
{
    if (!ds || ds->n <= 0 || ds->d <= 0 || !ds->x)
        return TG_ERR_ARG;
    size_t len = (size_t)(ds->n * ds->d);
    /* Two passes in double: the mean, then the squared deviations from it
     * (no cancellation, unlike E[x^2] - E[x]^2). */
    double sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += ds->x[i];
    double mu = sum / (double)len;
    if (!isfinite(mu))
        return TG_ERR_NUMERIC;
    double ss = 0;
    for (size_t i = 0; i < len; i++) {
        double t = ds->x[i] - mu;
        ss += t * t;
    }
    double sd = sqrt(ss / (double)len);
    if (!isfinite(sd))
        return TG_ERR_NUMERIC;
    if (sd == 0)
        sd = 1;
    if (mean)
        *mean = mu;
    if (std)
        *std = sd;
    return tg_dataset_normalize(ds, mu, sd);
}
