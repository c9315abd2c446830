/* bench_sweep.c — what the reverse sweep costs on a graph of large
 * elementwise intermediates, where moving gradient buffers is most of the
 * work (benchmarks/torch_sweep.py times the same graph in PyTorch):
 *
 *   a = tanh(x); b = 2a; c = b + a; d = relu(c); e = sigmoid(d); L = sum(e)
 *
 * x an n×n f32 leaf that requires a gradient; five n×n intermediates, one
 * (a) with two consumers. Per iteration: forward, tg_backward, reset; the
 * leaf's gradient accumulates across iterations, as over a training run's
 * micro-batches. Prints ms for the forward, the backward and both (median,
 * min over the iterations of a time budget), and the sum of the first
 * iteration's gradient (the same in every build, and in torch_sweep.py up
 * to float rounding).
 *
 *   bench_sweep [--threads T] [--seconds S] [--json FILE] [N ...]
 *   (default N: 512 2048 4096; --json: the figures as benchmarks/compare.py
 *   reads them, keys "sweep/n<N>/t<T>")
 */
#include <tapegrad.h>
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_sweep: %s: %s\n", what, why);
    exit(1);
}

static FILE *json;      /* --json: one result per size */
static int   n_json;

static void bench(int64_t n, int threads, double seconds)
{
    int64_t sh[2] = { n, n };
    size_t bytes = (size_t)(n * n) * sizeof(float);
    tg_ctx_opts co = { .arena_bytes = 8 * bytes + ((size_t)1 << 20), .seed = 1, .n_threads = threads };
    tg_ctx *ctx = tg_ctx_new(&co);
    tg_status st;
    tg_tensor *x = tg_tensor_create(TG_F32, 2, sh, &st);
    if (!ctx || !x || tg_tensor_requires_grad(x) != TG_OK)
        die("setup", "out of memory");
    float *xv = x->data;
    for (int64_t i = 0; i < n * n; i++)
        xv[i] = (float)((i * 7919) % 1001 - 500) * 0.004f;   /* [-2, 2]: both relu sides */
    enum { MAX_REPS = 4096, WARM = 3 };
    static double fw[MAX_REPS], bw[MAX_REPS], tot[MAX_REPS];
    int reps = 0;
    double start = 0, checksum = 0;
    for (int r = -WARM; r < MAX_REPS; r++) {
        if (r == 0)
            start = now();
        else if (r >= 10 && now() - start > seconds)
            break;
        double t0 = now();
        tg_tensor *a = tg_tanh(ctx, x);
        tg_tensor *c = tg_add(ctx, tg_mul_scalar(ctx, a, 2.0), a);
        tg_tensor *L = tg_sum_all(ctx, tg_sigmoid(ctx, tg_relu(ctx, c)));
        double t1 = now();
        if (!L || tg_backward(ctx, L) != TG_OK)
            die("sweep", tg_ctx_error(ctx));
        tg_ctx_reset(ctx);
        double t2 = now();
        if (r == -WARM)
            for (int64_t i = 0; i < n * n; i++)
                checksum += tg_tensor_grad_get(x, i);
        if (r >= 0) {
            fw[reps] = (t1 - t0) * 1e3;
            bw[reps] = (t2 - t1) * 1e3;
            tot[reps] = (t2 - t0) * 1e3;
            reps++;
        }
    }
    stats f = stats_of(fw, reps), b = stats_of(bw, reps), t = stats_of(tot, reps);
    printf("%6lld  %3d  %9.3f %9.3f  %9.3f %9.3f  %9.3f %9.3f  %6d  %.6e\n", (long long)n, threads, f.med, f.min,
           b.med, b.min, t.med, t.min, reps, checksum);
    fflush(stdout);
    if (json)
        fprintf(json, "%s\n    \"sweep/n%lld/t%d\": {\"ms\": %.4f, \"min_ms\": %.4f, \"fwd_ms\": %.4f, "
                "\"min_fwd_ms\": %.4f, \"bwd_ms\": %.4f, \"min_bwd_ms\": %.4f, \"reps\": %d, \"checksum\": %.9e}",
                n_json++ ? "," : "", (long long)n, threads, t.med, t.min, f.med, f.min, b.med, b.min, reps, checksum);
    tg_tensor_destroy(x);
    tg_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    int threads = 1;
    double seconds = 2.0;
    int64_t sizes[16];
    int ns = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            if (!(json = fopen(argv[++i], "w")))
                die(argv[i], "cannot open for writing");
        }
        else if (argv[i][0] != '-' && ns < 16 && atoll(argv[i]) > 0)
            sizes[ns++] = atoll(argv[i]);
        else
            die(argv[i], "usage: bench_sweep [--threads T] [--seconds S] [--json FILE] [N ...]");
    }
    if (threads < 1)
        die("--threads", "must be at least 1");
    if (!ns) {
        sizes[ns++] = 512;
        sizes[ns++] = 2048;
        sizes[ns++] = 4096;
    }
    printf("tanh, 2a, +a, relu, sigmoid, sum on an n x n f32 leaf: forward, backward (the sweep), both (ms)\n");
    printf("%6s  %3s  %9s %9s  %9s %9s  %9s %9s  %6s  %s\n", "n", "thr", "fwd", "min", "bwd", "min", "total", "min",
           "iters", "sum of dL/dx");
    if (json)
        fprintf(json, "{\"benchmark\": \"bench_sweep\", \"threads\": %d, \"results\": {", threads);
    for (int i = 0; i < ns; i++)
        bench(sizes[i], threads, seconds);
    if (json && (fprintf(json, "\n}}\n") < 0 || fclose(json) != 0))
        die("--json", "write failed");
    return 0;
}
