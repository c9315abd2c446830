/* bench_probe.c — the benchmark's clocks, its adaptive timing loop, the
 * roofline arithmetic, and the machine probe (single-thread GEMM peak and
 * memory bandwidth, plus what Google Benchmark's JSON context records:
 * CPUs, clock, caches, load). Knows no particular op. */
#include "bench_impl.h"
#include "gemm.h"
#include "tg_par.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 4096

double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double bench_cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile q of sorted v[0..n) with linear interpolation. */
static double quantile(const double *v, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)pos;
    if (i >= n - 1)
        return v[n - 1];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

tg_status bench_measure(void (*fn)(void *), void *ud, double budget, int min_reps, tg_bench_stats *st)
{
    st->iterations = 0;
    st->samples = 0;
    double *wall = tg_malloc(2 * MAX_SAMPLES * sizeof(double));
    if (!wall)
        return TG_ERR_NOMEM;
    double *cpu = wall + MAX_SAMPLES;

    /* Warm-up, which also sizes the batches. */
    long calls = 0;
    double t0 = bench_now(), t;
    do {
        fn(ud);
        calls++;
        t = bench_now() - t0;
    } while (t < 0.1 * budget);
    double per_call = t / (double)calls;
    double target = fmax(budget / 64, 20e-6);
    long k = per_call > 0 ? (long)ceil(target / per_call) : 1000;
    if (k < 1)
        k = 1;

    int s = 0;
    double start = bench_now();
    while (s < MAX_SAMPLES) {
        double c0 = bench_cpu_now(), w0 = bench_now();
        for (long i = 0; i < k; i++)
            fn(ud);
        double w1 = bench_now(), c1 = bench_cpu_now();
        wall[s] = (w1 - w0) / (double)k * 1e9;
        cpu[s] = (c1 - c0) / (double)k * 1e9;
        s++;
        if (s >= min_reps && w1 - start >= budget)
            break;
    }
    qsort(wall, (size_t)s, sizeof *wall, cmp_double);
    qsort(cpu, (size_t)s, sizeof *cpu, cmp_double);
    st->samples = s;
    st->iterations = (int64_t)s * k;
    st->median_ns = quantile(wall, s, 0.5);
    st->min_ns = wall[0];
    st->q1_ns = quantile(wall, s, 0.25);
    st->q3_ns = quantile(wall, s, 0.75);
    st->iqr_ns = st->q3_ns - st->q1_ns;
    st->cpu_ns = quantile(cpu, s, 0.5);
    tg_free(wall);
    return TG_OK;
}

void bench_rates(tg_bench_stats *st, double flops, double bytes, const tg_bench_machine *m, tg_dtype dt,
                 int threads)
{
    st->flops = flops;
    st->bytes = bytes;
    st->gflops = st->gbps = st->pct_peak = 0;
    st->bound = TG_BENCH_BOUND_UNKNOWN;
    if (!(st->median_ns > 0) || (flops <= 0 && bytes <= 0))
        return;
    st->gflops = flops / st->median_ns;     /* flop/ns = GFLOP/s */
    st->gbps = bytes / st->median_ns;
    int nt = threads < 1 ? 1 : m && m->num_cpus > 0 && threads > m->num_cpus ? m->num_cpus : threads;
    double peak = m ? nt * (dt == TG_F64 ? m->gemm_gflops_f64 : m->gemm_gflops_f32) : 0;
    double bw = m ? (nt > 1 && m->mem_gbps_all > 0 ? m->mem_gbps_all : m->mem_gbps) : 0;
    int compute = bytes <= 0 || (flops > 0 && peak > 0 && bw > 0 && flops / bytes > peak / bw);
    st->bound = compute ? TG_BENCH_BOUND_COMPUTE : TG_BENCH_BOUND_MEMORY;
    if (compute && peak > 0)
        st->pct_peak = 100 * st->gflops / peak;
    else if (!compute && bw > 0)
        st->pct_peak = 100 * st->gbps / bw;
}

/* ---- the machine probe ---------------------------------------------------- */

typedef struct gemm_probe {
    tg_ctx  *ctx;
    tg_dtype dt;
    void    *a, *b, *c;
    int      failed;
} gemm_probe;

#define GEMM_N 256

static void gemm_call(void *ud)
{
    gemm_probe *g = ud;
    if (tg_gemm(g->ctx, g->dt, 0, 0, GEMM_N, GEMM_N, GEMM_N, g->a, GEMM_N, g->b, GEMM_N, 0.0, g->c,
                GEMM_N) != TG_OK)
        g->failed = 1;
}

/* Best-batch GFLOP/s of tg_gemm at 256³ in dt; 0 on failure. */
static double probe_gemm(tg_dtype dt, double budget)
{
    gemm_probe g = { .dt = dt };
    size_t n = (size_t)GEMM_N * GEMM_N, es = tg_dtype_size(dt);
    g.ctx = tg_ctx_new(NULL);
    g.a = tg_malloc(n * es);
    g.b = tg_malloc(n * es);
    g.c = tg_malloc(n * es);
    double r = 0;
    if (g.ctx && g.a && g.b && g.c) {
        tg_rng rng;
        tg_rng_seed(&rng, 256);
        for (size_t i = 0; i < n; i++) {
            double x = 2 * tg_rng_uniform(&rng) - 1, y = 2 * tg_rng_uniform(&rng) - 1;
            if (dt == TG_F32) {
                ((float *)g.a)[i] = (float)x;
                ((float *)g.b)[i] = (float)y;
            } else {
                ((double *)g.a)[i] = x;
                ((double *)g.b)[i] = y;
            }
        }
        tg_bench_stats st;
        gemm_call(&g);
        if (!g.failed && bench_measure(gemm_call, &g, budget, 5, &st) == TG_OK && !g.failed)
            r = 2.0 * GEMM_N * GEMM_N * GEMM_N / st.min_ns;
    }
    tg_free(g.a);
    tg_free(g.b);
    tg_free(g.c);
    tg_ctx_free(g.ctx);
    return r;
}

typedef struct mem_probe {
    double *a, *b, *c;
    size_t  n;
    int     nt;              /* threads of triad_call */
} mem_probe;

/* The triad a = b + 3c on p->nt threads (1: the calling thread), each its
 * own contiguous part. */
static void triad_call(void *ud)
{
    mem_probe *p = ud;
    TG_PAR_FOR(p->nt, (int64_t)p->n, 4096, lo, hi, {
        double *restrict a = p->a;
        const double *restrict b = p->b, *restrict c = p->c;
        for (int64_t i = lo; i < hi; i++)
            a[i] = b[i] + 3.0 * c[i];
    });
}

static void copy_call(void *ud)
{
    mem_probe *p = ud;
    memcpy(p->a, p->b, p->n * sizeof(double));
}

/* Read a small text file into buf; 0 on failure. */
static int read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return 1;
}

/* CPUs in a list such as "0-3,8,10-11". */
static int count_cpu_list(const char *s)
{
    int count = 0;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s)
            break;
        s = end;
        if (*s == '-') {
            b = strtol(s + 1, &end, 10);
            s = end;
        }
        count += (int)(b - a + 1);
        if (*s == ',')
            s++;
    }
    return count;
}

static void machine_info(tg_bench_machine *m)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    m->num_cpus = ncpu > 0 ? (int)ncpu : 1;
    if (gethostname(m->host_name, sizeof m->host_name) != 0)
        snprintf(m->host_name, sizeof m->host_name, "unknown");
    m->host_name[sizeof m->host_name - 1] = '\0';
    char buf[4096];
    if (read_text("/proc/loadavg", buf, sizeof buf))
        sscanf(buf, "%lf %lf %lf", &m->load_avg[0], &m->load_avg[1], &m->load_avg[2]);
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "cpu MHz", 7) == 0) {
                const char *colon = strchr(line, ':');
                if (colon)
                    m->mhz_per_cpu = strtod(colon + 1, NULL);
                break;
            }
        fclose(f);
    }
    for (int i = 0; i < 16 && m->n_caches < TG_BENCH_MAX_CACHES; i++) {
        char path[128], size[64], level[16];
        tg_bench_cache *c = &m->caches[m->n_caches];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        if (!read_text(path, level, sizeof level))
            break;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!read_text(path, size, sizeof size))
            continue;
        c->level = atoi(level);
        char *end;
        c->size = strtoll(size, &end, 10);
        if (*end == 'K')
            c->size <<= 10;
        else if (*end == 'M')
            c->size <<= 20;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if (!read_text(path, c->type, sizeof c->type))
            snprintf(c->type, sizeof c->type, "Unified");
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/shared_cpu_list", i);
        c->num_sharing = read_text(path, buf, sizeof buf) ? count_cpu_list(buf) : 1;
        m->n_caches++;
    }
}

tg_status tg_bench_probe(tg_bench_machine *m, double budget)
{
    if (!m)
        return TG_ERR_ARG;
    memset(m, 0, sizeof *m);
    machine_info(m);
    if (budget < 0)
        return TG_OK;
    if (!(budget > 0))
        budget = 0.2;

    m->gemm_gflops_f32 = probe_gemm(TG_F32, budget);
    m->gemm_gflops_f64 = probe_gemm(TG_F64, budget);

    int64_t llc = 0;
    for (int i = 0; i < m->n_caches; i++)
        if (m->caches[i].size > llc)
            llc = m->caches[i].size;
    int64_t bytes = 4 * llc;
    if (bytes < ((int64_t)64 << 20))
        bytes = (int64_t)64 << 20;
    if (bytes > ((int64_t)512 << 20))
        bytes = (int64_t)512 << 20;
    mem_probe p = { .n = (size_t)bytes / sizeof(double), .nt = 1 };
    p.a = tg_malloc(p.n * sizeof(double));
    p.b = tg_malloc(p.n * sizeof(double));
    p.c = tg_malloc(p.n * sizeof(double));
    tg_status st = TG_OK;
    if (p.a && p.b && p.c) {
        m->mem_array_bytes = bytes;
        for (size_t i = 0; i < p.n; i++) {     /* first touch: no page faults while timing */
            p.a[i] = 0;
            p.b[i] = (double)(i & 1023);
            p.c[i] = 1.0 / (double)((i & 7) + 1);
        }
        tg_bench_stats s;
        if (bench_measure(triad_call, &p, budget, 5, &s) == TG_OK)
            m->mem_gbps = 24.0 * (double)p.n / s.min_ns;
        if (bench_measure(copy_call, &p, budget, 5, &s) == TG_OK)
            m->copy_gbps = 16.0 * (double)p.n / s.min_ns;
        m->mem_gbps_all = m->mem_gbps;
#ifdef TG_HAVE_OPENMP
        p.nt = m->num_cpus;
        if (p.nt > 1 && bench_measure(triad_call, &p, budget, 5, &s) == TG_OK)
            m->mem_gbps_all = 24.0 * (double)p.n / s.min_ns;
#endif
    } else {
        st = TG_ERR_NOMEM;
    }
    tg_free(p.a);
    tg_free(p.b);
    tg_free(p.c);
    if (st == TG_OK && (m->gemm_gflops_f32 <= 0 || m->gemm_gflops_f64 <= 0))
        st = TG_ERR_BACKEND;
    return st;
}
