/* bench_util.h — timing and order statistics shared by the benchmark
 * programs (header-only; each program includes it once). */
#ifndef TG_BENCH_UTIL_H
#define TG_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

static inline double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU time of the whole process (every thread): on a loaded machine a
 * one-thread run's CPU time shows what descheduling hides in wall time. */
static inline double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct stats { double med, min, max, p25, p75; int n; } stats;

/* Quantiles by linear interpolation; sorts v in place. */
static inline double quantile(const double *v, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)pos;
    return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[n - 1];
}

static inline stats stats_of(double *v, int n)
{
    stats s = { 0, 0, 0, 0, 0, n };
    if (n <= 0)
        return s;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    s.med = quantile(v, n, 0.5);
    s.p25 = quantile(v, n, 0.25);
    s.p75 = quantile(v, n, 0.75);
    s.min = v[0];
    s.max = v[n - 1];
    return s;
}

#endif
