/* bench_gemm.c — throughput of tg_gemm (libxsmm, blocked) per shape and
 * transpose case, f32 and f64. Each case is first validated against
 * tg_gemm_ref on sampled rows of C, then timed: the median of 7 repeats,
 * each long enough (>= 30 ms) to swamp the clock. Prints GFLOP/s by thread
 * CPU time (median, min, max; robust on a shared machine) and by wall time.
 *
 *   bench_gemm [--cold] [-t THREADS] [f32|f64] [M N K ta tb]...   no shape: the standard list
 *
 * --cold times each call alone after a read-and-write pass over 96 MiB
 * (more than the L3): the operands come from memory, as a layer's weights
 * do in a training step (beta 1, no TG_GEMM_C_COLD hint).
 *
 * With threads, "cpu" is the process CPU time of all threads (their sum:
 * the GFLOP/s per core), and the wall figure is the one to compare with a
 * multi-core peak; on a loaded machine take its max (best repeat).
 */
#include "gemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU time of this thread: on a shared machine, time spent descheduled
 * does not count against the kernel (cache interference still does). */
static int n_threads = 1;
static size_t cold_bytes;   /* --cold: evict the caches before each call */
static char *cold_buf;

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(n_threads > 1 ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct shape { int64_t M, N, K; int ta, tb; const char *what; } shape;

static void fill(tg_rng *r, tg_dtype dt, void *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double v = 2 * tg_rng_uniform(r) - 1;
        if (dt == TG_F32)
            ((float *)p)[i] = (float)v;
        else
            ((double *)p)[i] = v;
    }
}

static double get(tg_dtype dt, const void *p, int64_t i)
{
    return dt == TG_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
}

/* Compare a few rows of C with the reference; returns the worst error
 * relative to sqrt(K) (inputs are uniform in [-1, 1]). */
static double validate(tg_ctx *ctx, tg_dtype dt, const shape *s, const void *A, int64_t lda,
                       const void *B, int64_t ldb, void *C, void *R, int64_t ldc)
{
    size_t es = tg_dtype_size(dt);
    memset(C, 0, (size_t)(s->M * ldc) * es);
    if (tg_gemm(ctx, dt, s->ta, s->tb, s->M, s->N, s->K, A, lda, B, ldb, 0.0, C, ldc) != TG_OK)
        return INFINITY;
    double worst = 0;
    int64_t rows[8] = {0, s->M - 1, s->M / 2, s->M / 3, s->M / 5, s->M / 7, (s->M * 5) / 6, s->M / 11};
    for (int r = 0; r < 8; r++) {
        int64_t i = rows[r];
        const char *a = (const char *)A + (size_t)(s->ta ? i : i * lda) * es;
        tg_gemm_ref(dt, s->ta, s->tb, 1, s->N, s->K, a, lda, B, ldb, 0.0, R, s->N);
        for (int64_t j = 0; j < s->N; j++) {
            double e = fabs(get(dt, C, i * ldc + j) - get(dt, R, j)) / sqrt((double)s->K);
            if (!(e <= worst))
                worst = e;
        }
    }
    return worst;
}

static void run(tg_ctx *ctx, tg_dtype dt, const shape *s)
{
    size_t es = tg_dtype_size(dt);
    int64_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N, ldc = s->N;
    int64_t na = (s->ta ? s->K : s->M) * lda, nb = (s->tb ? s->N : s->K) * ldb;
    void *A = malloc((size_t)na * es), *B = malloc((size_t)nb * es);
    void *C = malloc((size_t)(s->M * ldc) * es), *R = malloc((size_t)s->N * es);
    if (!A || !B || !C || !R) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    fill(tg_ctx_rng(ctx), dt, A, na);
    fill(tg_ctx_rng(ctx), dt, B, nb);
    double err = validate(ctx, dt, s, A, lda, B, ldb, C, R, ldc);
    double tol = dt == TG_F32 ? 1e-5 : 1e-13;
    double flop = 2.0 * (double)s->M * (double)s->N * (double)s->K;

    if (cold_bytes) {
        /* Each call timed alone after every operand has been evicted (a
         * read-and-write pass over a buffer larger than the L3): the weights
         * of a layer as a training step meets them. C is accumulated into
         * (beta 1) and not hinted. Median of 15 calls. */
        double rate[15];
        for (int r = 0; r < 15; r++) {
            for (size_t i = 0; i < cold_bytes; i += 64)   /* read and write every line */
                cold_buf[i] = (char)(cold_buf[i] + 1);
            double c0 = cpu_now();
            tg_gemm(ctx, dt, s->ta, s->tb, s->M, s->N, s->K, A, lda, B, ldb, 1.0, C, ldc);
            rate[r] = flop / (cpu_now() - c0) * 1e-9;
        }
        qsort(rate, 15, sizeof rate[0], cmp_d);
        printf("%s %5lld x %5lld x %5lld  %c%c  %6.1f GFLOP/s (cold operands; cpu; min %5.1f max %5.1f)  err %.1e %s  %s\n",
               tg_dtype_name(dt), (long long)s->M, (long long)s->N, (long long)s->K,
               s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', rate[7], rate[0], rate[14], err,
               err <= tol ? "ok" : "WRONG", s->what ? s->what : "");
        fflush(stdout);
        free(A); free(B); free(C); free(R);
        return;
    }

    double t0 = now();
    long iters = 0;
    while (now() - t0 < 0.03 || iters < 3) {
        tg_gemm(ctx, dt, s->ta, s->tb, s->M, s->N, s->K, A, lda, B, ldb, 1.0, C, ldc);
        iters++;
    }
    double rate[7], wall[7];
    for (int r = 0; r < 7; r++) {
        t0 = now();
        double c0 = cpu_now();
        for (long it = 0; it < iters; it++)
            tg_gemm(ctx, dt, s->ta, s->tb, s->M, s->N, s->K, A, lda, B, ldb, 1.0, C, ldc);
        rate[r] = flop * (double)iters / (cpu_now() - c0) * 1e-9;
        wall[r] = flop * (double)iters / (now() - t0) * 1e-9;
    }
    qsort(rate, 7, sizeof rate[0], cmp_d);
    qsort(wall, 7, sizeof wall[0], cmp_d);
    printf("%s %5lld x %5lld x %5lld  %c%c  %6.1f GFLOP/s (cpu; min %5.1f max %5.1f)  wall %6.1f max %6.1f  err %.1e %s  %s\n",
           tg_dtype_name(dt), (long long)s->M, (long long)s->N, (long long)s->K,
           s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', rate[3], rate[0], rate[6], wall[3], wall[6], err,
           err <= tol ? "ok" : "WRONG", s->what ? s->what : "");
    fflush(stdout);
    free(A); free(B); free(C); free(R);
}

static const shape standard[] = {
    {  64,   64,   64, 0, 0, "" },
    { 128,  128,  128, 0, 0, "" },
    { 256,  256,  256, 0, 0, "" },
    { 256,  256,  256, 0, 1, "" },
    { 256,  256,  256, 1, 0, "" },
    { 256,  256,  256, 1, 1, "" },
    { 512,  512,  512, 0, 0, "" },
    {1024, 1024, 1024, 0, 0, "" },
    {1024, 1024, 1024, 0, 1, "" },
    {1024, 1024, 1024, 1, 0, "" },
    {1024, 1024, 1024, 1, 1, "" },
    { 128,  128,  784, 0, 0, "mlp fwd  x·W1" },
    { 128,  784,  128, 0, 1, "mlp dx = dh·W1t" },
    { 784,  128,  128, 1, 0, "mlp dW1 = xt·dh" },
    { 128,   10,  128, 0, 0, "mlp fwd  h·W2" },
    { 128,  128,   10, 0, 1, "mlp dh = dy·W2t" },
    { 128,   10,  128, 1, 0, "mlp dW2 = ht·dy" },
    {  10, 1024,  128, 0, 0, "skinny M" },
    {1024,   10,  128, 0, 0, "skinny N" },
};

int main(int argc, char **argv)
{
    int do32 = 1, do64 = 1, a = 1;
    if (argc > 1 && strcmp(argv[1], "--cold") == 0) {
        cold_bytes = (size_t)96 << 20;
        if (!(cold_buf = calloc(1, cold_bytes))) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        argv++;
        argc--;
    }
    if (argc > 2 && strcmp(argv[1], "-t") == 0) {
        n_threads = atoi(argv[2]) > 0 ? atoi(argv[2]) : 1;
        argv += 2;
        argc -= 2;
    }
    if (argc > 1 && strcmp(argv[1], "f32") == 0) { do64 = 0; a++; }
    else if (argc > 1 && strcmp(argv[1], "f64") == 0) { do32 = 0; a++; }
    shape custom[16];
    int n_custom = 0;
    while (a + 5 <= argc && n_custom < 16) {
        custom[n_custom] = (shape){ atoll(argv[a]), atoll(argv[a + 1]), atoll(argv[a + 2]),
                                    atoi(argv[a + 3]), atoi(argv[a + 4]), "" };
        n_custom++;
        a += 5;
    }
    const shape *list = n_custom ? custom : standard;
    int n = n_custom ? n_custom : (int)(sizeof standard / sizeof standard[0]);
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .arena_bytes = 16u << 20, .seed = 1, .n_threads = n_threads });
    for (int d = 0; d < 2; d++) {
        if ((d == 0 && !do32) || (d == 1 && !do64))
            continue;
        for (int i = 0; i < n; i++)
            run(ctx, d ? TG_F64 : TG_F32, &list[i]);
    }
    if (tg_ctx_status(ctx) != TG_OK)
        fprintf(stderr, "error: %s\n", tg_ctx_error(ctx));
    tg_ctx_free(ctx);
    return 0;
}
