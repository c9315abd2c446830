/* rng.c — xoshiro256** seeded through splitmix64 (Blackman & Vigna), the same
 * sequence on every machine; normals by Marsaglia's polar method. */
#include "tg_core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void tg_rng_seed(tg_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tg_rng_u64(tg_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double tg_rng_uniform(tg_rng *r)
{
    return (double)(tg_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t tg_rng_below(tg_rng *r, uint64_t n)
{
    /* Rejection sampling: no modulo bias. */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = tg_rng_u64(r); while (x >= lim);
    return x % n;
}

double tg_rng_normal(tg_rng *r)
{
    /* NOTE: only sqrt (exact in IEEE) and log enter; values are rounded to
     * the tensor's dtype afterwards, so libm differences do not show. */
    double u, v, s;
    do {
        u = 2.0 * tg_rng_uniform(r) - 1.0;
        v = 2.0 * tg_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}
