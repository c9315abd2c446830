/* bench_train.c — training benchmarks of tapegrad, the C side of the
 * PyTorch comparison (benchmarks/torch_train.py runs the same work):
 *
 *   peak    single-thread f32 256³ GEMM (tg_gemm, and tg_matmul in a no-grad
 *           loop), the ceiling the training figures are compared with
 *   step    one Adam training step of an MLP (forward, cross-entropy,
 *           backward, optimizer step, zero_grad, reset): ms per step (median,
 *           min, IQR over many steps after warm-up), the share of forward,
 *           backward and optimizer, GEMM GFLOP/s and % of peak
 *   epoch   seconds per Fashion-MNIST epoch with `tapegrad train`'s
 *           defaults (784-128relu-10, Adam 1e-3, batch 128, shuffled)
 *   tiny    ns per recorded op in a chain of 1000 add/mul on 0-d tensors,
 *           forward + backward + reset
 *   mem     peak RSS (VmHWM) of a training run in a fresh process, against
 *           parameters + gradients + Adam state + one step's activations
 *
 * Times are wall clock (a 2-thread run cannot be judged by one thread's CPU
 * time); medians keep descheduling on a shared machine out of the figures.
 *
 *   bench_train [--quick] [--json FILE] [--threads 1,2] [--only LIST]
 *               [--data DIR] [--seconds S] [--epochs N] [--filter KEY-PART]
 *   LIST: comma-separated of peak,step,epoch,tiny,mem (default: all); step
 *   measures the peak too (its %peak is against this machine's)
 *   --filter: only the step cases whose JSON key contains KEY-PART, e.g.
 *   "1024-1024-10/b128/t1" (for profiling one case with --seconds 10)
 */
#include <tapegrad.h>
#include "bench_util.h"
#include "gemm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/utsname.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define MAX_RESULTS 128
#define MAX_THREADS 8

enum { S_PEAK = 1, S_STEP = 2, S_EPOCH = 4, S_TINY = 8, S_MEM = 16, S_ALL = 31 };

typedef struct opts {
    int quick;
    const char *json, *data;
    int threads[MAX_THREADS], n_threads;
    unsigned sections;
    double seconds;     /* time budget per step configuration */
    const char *filter; /* run only step cases whose key contains this */
    int epochs;         /* measured epochs per thread count   */
} opts;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_train: %s: %s\n", what, why);
    exit(1);
}

/* ---- JSON results: "key": { fields } ----------------------------------------- */

static struct { char key[96]; char body[640]; } results[MAX_RESULTS];
static int n_results;

static void result(const char *key, const char *fmt, ...)
{
    if (n_results == MAX_RESULTS)
        return;
    va_list ap;
    va_start(ap, fmt);
    snprintf(results[n_results].key, sizeof results[0].key, "%s", key);
    vsnprintf(results[n_results].body, sizeof results[0].body, fmt, ap);
    va_end(ap);
    n_results++;
}

static void read_line_of(const char *path, const char *prefix, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    char line[512];
    out[0] = '\0';
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            char *v = strchr(line, ':');
            v = v ? v + 1 : line + strlen(prefix);
            while (*v == ' ' || *v == '\t')
                v++;
            v[strcspn(v, "\n")] = '\0';
            snprintf(out, cap, "%s", v);
            break;
        }
    }
    fclose(f);
}

/* A /proc/self/status field in kB (VmHWM, VmRSS); -1 when unavailable. */
static long status_kb(const char *field)
{
    char v[128];
    read_line_of("/proc/self/status", field, v, sizeof v);
    return v[0] ? atol(v) : -1;
}

static void loadavg(char *out, size_t cap)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;
    if (!f || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
        a = b = c = -1;
    if (f)
        fclose(f);
    snprintf(out, cap, "[%.2f, %.2f, %.2f]", a, b, c);
}

static void write_json(const char *path, const char *load0)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die(path, strerror(errno));
    char cpu[256], mem[64], load1[64];
    struct utsname u;
    read_line_of("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    read_line_of("/proc/meminfo", "MemTotal", mem, sizeof mem);
    loadavg(load1, sizeof load1);
    if (uname(&u) != 0)
        strcpy(u.release, "?");
    fprintf(f, "{\n  \"impl\": \"tapegrad\",\n  \"machine\": {\"cpu\": \"%s\", \"cpus\": %ld, "
               "\"mem\": \"%s\", \"kernel\": \"%s\", \"compiler\": \"gcc %s\"},\n"
               "  \"loadavg_start\": %s,\n  \"loadavg_end\": %s,\n  \"results\": {\n",
            cpu, sysconf(_SC_NPROCESSORS_ONLN), mem, u.release, __VERSION__, load0, load1);
    for (int i = 0; i < n_results; i++)
        fprintf(f, "    \"%s\": {%s}%s\n", results[i].key, results[i].body, i + 1 < n_results ? "," : "");
    fprintf(f, "  }\n}\n");
    if (fclose(f) != 0)
        die(path, "write failed");
}

/* ---- GEMM peak ------------------------------------------------------------- */

static void fill_uniform(tg_rng *r, float *p, int64_t n, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)(lo + (hi - lo) * tg_rng_uniform(r));
}

static double thread_cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Best and median GFLOP/s over `reps` timed batches of 256³ products, by
 * tg_gemm (kind 0) or by tg_matmul with grad mode off (kind 1). Rates are
 * by this thread's CPU time: the peak is a property of the core, and on a
 * shared machine wall time halves it whenever another process runs (the
 * best wall-clock rate is returned in *wall_best). */
static void gemm_rate(int kind, int reps, double min_s, double *best, double *median, double *wall_best)
{
    const int64_t n = 256;
    const double flop = 2.0 * n * n * n;
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .arena_bytes = 4u << 20, .seed = 7 });
    tg_tensor *a = tg_tensor_create(TG_F32, TG_DIMS(n, n), NULL);
    tg_tensor *b = tg_tensor_create(TG_F32, TG_DIMS(n, n), NULL);
    float *c = malloc(sizeof(float) * (size_t)(n * n));
    if (!ctx || !a || !b || !c)
        die("peak", "out of memory");
    fill_uniform(tg_ctx_rng(ctx), a->data, n * n, -1, 1);
    fill_uniform(tg_ctx_rng(ctx), b->data, n * n, -1, 1);
    double rate[32], wall = 0;
    long iters = 1;
    tg_set_grad_enabled(ctx, 0);
    for (int r = -1; r < reps; r++) {       /* r = -1: warm-up, sizes the batch */
        double t0 = now(), c0 = thread_cpu_now();
        for (long i = 0; i < iters; i++) {
            if (kind == 0)
                tg_gemm(ctx, TG_F32, 0, 0, n, n, n, a->data, n, b->data, n, 0.0, c, n);
            else if (!tg_matmul(ctx, a, b))
                die("peak: tg_matmul", tg_ctx_error(ctx));
            tg_ctx_reset(ctx);
        }
        double dc = thread_cpu_now() - c0, dt = now() - t0;
        if (r < 0) {
            while (dc * (double)iters < min_s * 0.9 && iters < (1L << 20))
                iters *= 2;
            continue;
        }
        rate[r] = flop * (double)iters / dc * 1e-9;
        if (flop * (double)iters / dt * 1e-9 > wall)
            wall = flop * (double)iters / dt * 1e-9;
    }
    if (tg_ctx_status(ctx) != TG_OK)
        die("peak", tg_ctx_error(ctx));
    stats s = stats_of(rate, reps);
    *best = s.max;
    *median = s.med;
    *wall_best = wall;
    free(c);
    tg_tensor_destroy(a);
    tg_tensor_destroy(b);
    tg_ctx_free(ctx);
}

static double bench_peak(const opts *o)
{
    int reps = o->quick ? 3 : 11;
    double min_s = o->quick ? 0.002 : 0.03;
    double g_best, g_med, g_wall, m_best, m_med, m_wall;
    gemm_rate(0, reps, min_s, &g_best, &g_med, &g_wall);
    gemm_rate(1, reps, min_s, &m_best, &m_med, &m_wall);
    double peak = g_best > m_best ? g_best : m_best;
    printf("GEMM peak, 1 thread, f32 256x256x256, GFLOP/s by thread CPU time: tg_gemm best %.1f (median %.1f),\n"
           "  tg_matmul no-grad best %.1f (median %.1f); by wall time: best %.1f and %.1f\n"
           "  peak used below: %.1f GFLOP/s per thread\n\n",
           g_best, g_med, m_best, m_med, g_wall, m_wall, peak);
    result("peak/gemm/f32/256x256x256/t1", "\"gflops_best\": %.2f, \"gflops_median\": %.2f, \"wall_gflops_best\": %.2f",
           g_best, g_med, g_wall);
    result("peak/matmul_nograd/f32/256x256x256/t1",
           "\"gflops_best\": %.2f, \"gflops_median\": %.2f, \"wall_gflops_best\": %.2f", m_best, m_med, m_wall);
    return peak;
}

/* ---- models ------------------------------------------------------------------ */

typedef struct mlp_cfg {
    const char *name;       /* for tables and JSON keys: widths only   */
    const char *spec;       /* tg_model_from_spec                      */
    int64_t widths[4];
    int n_layers;           /* dense layers                            */
} mlp_cfg;

static const mlp_cfg MLP_SMALL = { "784-128-10", "784-128relu-10", { 784, 128, 10 }, 2 };
static const mlp_cfg MLP_BIG = { "784-1024-1024-10", "784-1024relu-1024relu-10", { 784, 1024, 1024, 10 }, 3 };

/* GEMM flops of one training step: forward x·W for every layer, dW for
 * every layer, dx for every layer but the first (the input needs no
 * gradient, as in PyTorch). Elementwise work is left out. */
static double step_flops(const mlp_cfg *m, int64_t B)
{
    double f = 0;
    for (int l = 0; l < m->n_layers; l++) {
        double mk = 2.0 * (double)B * (double)m->widths[l] * (double)m->widths[l + 1];
        f += mk * (l == 0 ? 2 : 3);
    }
    return f;
}

static int64_t param_count(const mlp_cfg *m)
{
    int64_t p = 0;
    for (int l = 0; l < m->n_layers; l++)
        p += m->widths[l] * m->widths[l + 1] + m->widths[l + 1];
    return p;
}

/* Bytes a step must hold at its peak (f32): parameters, their gradients,
 * Adam's two moments; every recorded intermediate (per dense layer the
 * matmul and bias-add outputs, per hidden layer the ReLU output, the
 * cross-entropy's saved max and 1/sum per row) with an equal-sized
 * gradient. The input batch is data, counted apart. */
static double expected_bytes(const mlp_cfg *m, int64_t B, double *state, double *act)
{
    double P = (double)param_count(m), a = 0;
    for (int l = 0; l < m->n_layers; l++) {
        int hidden = l + 1 < m->n_layers;
        a += (double)(B * m->widths[l + 1]) * (2 + hidden) * 2;
    }
    a += (double)(2 * B);                                      /* cross-entropy's (max, 1/sum) */
    *state = 4 * P * 4;
    *act = a * 4;
    return *state + *act;
}

typedef struct trainer {
    tg_model *m;
    tg_optim *opt;
    tg_ctx *ctx;
} trainer;

static void trainer_init(trainer *t, const mlp_cfg *mc, int threads)
{
    char err[256];
    t->m = tg_model_from_spec(mc->spec, TG_F32, 42, err, sizeof err);
    if (!t->m)
        die(mc->spec, err);
    tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_ADAM, 1e-3);
    t->opt = tg_optim_new(tg_model_params(t->m), &cfg, err, sizeof err);
    t->ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 42, .n_threads = threads });
    if (!t->opt || !t->ctx)
        die(mc->spec, "could not create the optimizer or context");
    tg_params_set_threads(tg_model_params(t->m), threads);   /* the optimizer's threads, as tapegrad train */
}

static void trainer_free(trainer *t)
{
    tg_ctx_free(t->ctx);
    tg_optim_free(t->opt);
    tg_model_free(t->m);
}

/* One step, in PyTorch's order: forward + loss, backward, optimizer step
 * and zero_grad (fused, as tapegrad train runs them), then reset the arena.
 * Phase end times go to ph[0..2] when not NULL. Returns the loss. */
static double train_step(trainer *t, float *x, int32_t *y, int64_t B, int64_t D, double *ph)
{
    tg_ctx *ctx = t->ctx;
    tg_tensor *xt = tg_tensor_wrap(ctx, TG_F32, TG_DIMS(B, D), x);
    tg_tensor *yt = tg_tensor_wrap(ctx, TG_I32, TG_DIMS(B), y);
    tg_tensor *loss = tg_cross_entropy(ctx, tg_model_forward(ctx, t->m, xt), yt, TG_REDUCE_MEAN);
    if (ph)
        ph[0] = now();
    if (tg_backward(ctx, loss) != TG_OK)
        die("step", tg_ctx_error(ctx));
    if (ph)
        ph[1] = now();
    double lv = tg_tensor_get(loss, 0);
    tg_optim_step_and_zero_grad(t->opt);   /* as tapegrad train: one pass over the gradients */
    tg_ctx_reset(ctx);
    if (ph)
        ph[2] = now();
    return lv;
}

/* Arena bytes in use at the peak of a step (after backward), from one
 * forward + backward on (x, y) whose gradients are then discarded. */
static size_t arena_at_peak(trainer *t, float *x, int32_t *y, int64_t B, int64_t D)
{
    tg_ctx *ctx = t->ctx;
    tg_tensor *xt = tg_tensor_wrap(ctx, TG_F32, TG_DIMS(B, D), x);
    tg_tensor *yt = tg_tensor_wrap(ctx, TG_I32, TG_DIMS(B), y);
    tg_backward(ctx, tg_cross_entropy(ctx, tg_model_forward(ctx, t->m, xt), yt, TG_REDUCE_MEAN));
    size_t used = tg_ctx_arena_used(ctx);
    tg_params_zero_grad(tg_model_params(t->m));
    tg_ctx_reset(ctx);
    return used;
}

/* A few distinct random batches (pixels in [0, 1), labels in [0, C)). */
static void random_batches(int nb, int64_t B, int64_t D, int64_t C, float **x, int32_t **y)
{
    tg_rng r;
    tg_rng_seed(&r, 1234);
    *x = malloc(sizeof(float) * (size_t)(nb * B * D));
    *y = malloc(sizeof(int32_t) * (size_t)(nb * B));
    if (!*x || !*y)
        die("batches", "out of memory");
    fill_uniform(&r, *x, nb * B * D, 0, 1);
    for (int64_t i = 0; i < nb * B; i++)
        (*y)[i] = (int32_t)tg_rng_below(&r, (uint64_t)C);
}

/* ---- train step ---------------------------------------------------------------- */

enum { N_BATCHES = 8 };

static void bench_step(const opts *o, const mlp_cfg *mc, int64_t B, int threads, double peak)
{
    const int64_t D = mc->widths[0], C = mc->widths[mc->n_layers];
    char key[96];
    snprintf(key, sizeof key, "step/%s/b%lld/t%d", mc->name, (long long)B, threads);
    if (o->filter && !strstr(key, o->filter))
        return;
    float *xs;
    int32_t *ys;
    random_batches(N_BATCHES, B, D, C, &xs, &ys);
    trainer t;
    trainer_init(&t, mc, threads);

    int max_steps = o->quick ? 5 : 4000, min_steps = o->quick ? 3 : 30;
    double budget = o->quick ? 0.05 : o->seconds;
    double *tot = malloc(sizeof(double) * 5 * (size_t)max_steps);
    if (!tot)
        die("step", "out of memory");
    double *fw = tot + max_steps, *bw = fw + max_steps, *op = bw + max_steps, *cpu = op + max_steps;

    /* Warm-up: JIT kernels, arena growth, caches; at least 5 steps or 0.1 s. */
    double w0 = now();
    for (int s = 0; s < 5 || (!o->quick && now() - w0 < 0.1 * budget); s++)
        train_step(&t, xs + (s % N_BATCHES) * B * D, ys + (s % N_BATCHES) * B, B, D, NULL);

    int n = 0;
    double m0 = now(), ph[3];
    size_t arena_used = 0;
    while (n < max_steps && (n < min_steps || now() - m0 < budget)) {
        int k = n % N_BATCHES;
        if (n == 0)
            arena_used = arena_at_peak(&t, xs, ys, B, D);
        double t0 = now(), c0 = cpu_now();
        train_step(&t, xs + k * B * D, ys + k * B, B, D, ph);
        cpu[n] = cpu_now() - c0;
        tot[n] = ph[2] - t0;
        fw[n] = ph[0] - t0;
        bw[n] = ph[1] - ph[0];
        op[n] = ph[2] - ph[1];
        n++;
    }
    stats st = stats_of(tot, n), sf = stats_of(fw, n), sb = stats_of(bw, n), so = stats_of(op, n);
    stats sc = stats_of(cpu, n);
    double gflop = step_flops(mc, B) * 1e-9, gfs = gflop / st.med;
    double pct = 100.0 * gfs / (peak * threads);
    double pct_cpu = 100.0 * gflop / sc.med / peak;   /* CPU time over all threads vs 1-thread peak */
    printf("%-18s %5lld %3d  %9.3f %9.3f  %8.3f-%-8.3f %4.0f%% %4.0f%% %4.0f%%  %7.1f %5.1f%% %5.1f%%  %6d\n",
           mc->name, (long long)B, threads, st.med * 1e3, st.min * 1e3, st.p25 * 1e3, st.p75 * 1e3,
           100 * sf.med / st.med, 100 * sb.med / st.med, 100 * so.med / st.med, gfs, pct, pct_cpu, n);
    fflush(stdout);
    result(key, "\"ms\": %.5f, \"min_ms\": %.5f, \"p25_ms\": %.5f, \"p75_ms\": %.5f, \"steps\": %d, "
                "\"fwd_ms\": %.5f, \"bwd_ms\": %.5f, \"opt_ms\": %.5f, \"gflop_per_step\": %.5f, "
                "\"gflops\": %.2f, \"pct_peak\": %.2f, \"cpu_ms\": %.5f, \"pct_peak_cpu\": %.2f, \"arena_bytes\": %zu",
           st.med * 1e3, st.min * 1e3, st.p25 * 1e3, st.p75 * 1e3, n, sf.med * 1e3, sb.med * 1e3,
           so.med * 1e3, gflop, gfs, pct, sc.med * 1e3, pct_cpu, arena_used);
    free(tot);
    free(xs);
    free(ys);
    trainer_free(&t);
}

/* ---- Fashion-MNIST epoch ------------------------------------------------------- */

/* One epoch of `tapegrad train`'s loop; returns the mean loss. */
static double run_epoch(trainer *t, tg_batch_iter *it, int64_t epoch, float *xb, int32_t *yb, int64_t D,
                        int64_t max_batches)
{
    double sum = 0;
    int64_t nb = 0, b;
    tg_batch_iter_seek_epoch(it, epoch);
    while ((max_batches <= 0 || nb < max_batches) && (b = tg_batch_iter_next(it, xb, yb)) > 0) {
        double lv = train_step(t, xb, yb, b, D, NULL);
        if (!isfinite(lv))
            die("epoch", "the loss is not finite");
        sum += lv;
        nb++;
    }
    return sum / (double)(nb ? nb : 1);
}

static void bench_epoch(const opts *o, const tg_dataset *ds, int threads)
{
    trainer t;
    trainer_init(&t, &MLP_SMALL, threads);
    tg_batch_iter it;
    const int64_t B = 128;
    float *xb = malloc(sizeof(float) * (size_t)(B * ds->d));
    int32_t *yb = malloc(sizeof(int32_t) * (size_t)B);
    if (!xb || !yb || tg_batch_iter_init(&it, ds, B, 1, 42, 0) != TG_OK)
        die("epoch", "out of memory");
    int measured = o->quick ? 1 : o->epochs;
    double secs[64], cpus[64], loss1 = 0, lossN = 0;
    if (measured > 64)
        measured = 64;
    /* Warm-up: 20 steps (JIT kernels, arena), not counted; epochs then
     * start from epoch 0 with the model as initialised plus those steps. */
    if (!o->quick)
        run_epoch(&t, &it, 1000, xb, yb, ds->d, 20);
    for (int e = 0; e < measured; e++) {
        double t0 = now(), c0 = cpu_now();
        double l = run_epoch(&t, &it, e, xb, yb, ds->d, 0);
        secs[e] = now() - t0;
        cpus[e] = cpu_now() - c0;
        if (e == 0)
            loss1 = l;
        lossN = l;
    }
    stats s = stats_of(secs, measured), sc = stats_of(cpus, measured);
    printf("Fashion-MNIST epoch  %3d   %9.3f %9.3f  %6d   %7lld  %.4f -> %.4f\n", threads, s.med, s.min,
           measured, (long long)ds->n, loss1, lossN);
    fflush(stdout);
    char key[96];
    snprintf(key, sizeof key, "epoch/fashion-mnist/784-128-10/b128/t%d", threads);
    result(key, "\"s\": %.5f, \"min_s\": %.5f, \"epochs\": %d, \"images\": %lld, \"loss_first\": %.5f, "
                "\"loss_last\": %.5f, \"cpu_s\": %.5f", s.med, s.min, measured, (long long)ds->n, loss1, lossN, sc.med);
    free(xb);
    free(yb);
    tg_batch_iter_free(&it);
    trainer_free(&t);
}

/* ---- chain of tiny recorded ops ------------------------------------------------ */

enum { CHAIN = 1000 };

static void bench_tiny(const opts *o, int threads)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 1, .n_threads = threads });
    if (!ctx)
        die("tiny", "out of memory");
    int warm = o->quick ? 2 : 50, reps = o->quick ? 5 : 1000;
    double *fw = malloc(sizeof(double) * 3 * (size_t)reps);
    if (!fw)
        die("tiny", "out of memory");
    double *bw = fw + reps, *tot = bw + reps, xgrad = 0;
    double start = 0;
    for (int r = -warm; r < reps; r++) {
        if (r == 0)
            start = now();
        else if (r >= 30 && now() - start > o->seconds) {
            reps = r;                 /* the time budget is spent */
            break;
        }
        double t0 = now();
        tg_tensor *x = tg_tensor_scalar(ctx, TG_F32, 1.0);
        tg_tensor *c_mul = tg_tensor_scalar(ctx, TG_F32, 1.0001);
        tg_tensor *c_add = tg_tensor_scalar(ctx, TG_F32, 0.001);
        tg_tensor_requires_grad(x);
        tg_tensor *y = x;
        for (int i = 0; i < CHAIN; i++)
            y = (i & 1) ? tg_mul(ctx, y, c_mul) : tg_add(ctx, y, c_add);
        double t1 = now();
        if (tg_backward(ctx, y) != TG_OK)
            die("tiny", tg_ctx_error(ctx));
        xgrad = tg_tensor_grad_get(x, 0);
        tg_ctx_reset(ctx);
        double t3 = now();
        if (r >= 0) {
            fw[r] = (t1 - t0) / CHAIN * 1e9;
            bw[r] = (t3 - t1) / CHAIN * 1e9;
            tot[r] = (t3 - t0) / CHAIN * 1e9;
        }
    }
    stats sf = stats_of(fw, reps), sb = stats_of(bw, reps), st = stats_of(tot, reps);
    printf("tiny op chain        %3d   %9.1f %9.1f  %9.1f %9.1f   (dx = %.4f)\n", threads, st.med, st.min,
           sf.med, sb.med, xgrad);
    fflush(stdout);
    char key[96];
    snprintf(key, sizeof key, "tiny/chain%d/t%d", CHAIN, threads);
    result(key, "\"ns_per_op\": %.2f, \"min_ns_per_op\": %.2f, \"p25_ns\": %.2f, \"p75_ns\": %.2f, "
                "\"fwd_ns\": %.2f, \"bwd_ns\": %.2f, \"reps\": %d",
           st.med, st.min, st.p25, st.p75, sf.med, sb.med, reps);
    free(fw);
    tg_ctx_free(ctx);
}

/* ---- peak memory ------------------------------------------------------------- */

/* Child mode (a fresh process, so VmHWM is this run's alone):
 *   --mem-child MODEL-NAME BATCH STEPS [DATA_DIR]
 * Measures RSS at start, after libxsmm's initialisation (first GEMM), after
 * loading the data (Fashion-MNIST when DATA_DIR is given, else the random
 * batch pool) with the loader's own peak, then resets VmHWM (clear_refs 5)
 * and trains STEPS steps: the training run's peak above the loaded state.
 * Prints "start xsmm data load_hwm train_hwm (kB) arena_used arena_cap
 * data_bytes". */
static int mem_child(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    const mlp_cfg *mc = strcmp(argv[2], MLP_BIG.name) == 0 ? &MLP_BIG : &MLP_SMALL;
    int64_t B = atoll(argv[3]);
    int steps = atoi(argv[4]);
    const int64_t D = mc->widths[0];
    long start = status_kb("VmRSS");

    float a[64] = { 0 }, c[64];
    tg_ctx *init = tg_ctx_new(NULL);
    tg_gemm(init, TG_F32, 0, 0, 8, 8, 8, a, 8, a, 8, 0.0, c, 8);
    tg_ctx_free(init);
    long xsmm = status_kb("VmRSS");

    double data_bytes;
    char err[512];
    tg_dataset ds = { 0 };
    tg_batch_iter it = { 0 };
    float *xs;
    int32_t *ys;
    if (argc > 5) {
        if (tg_fashion_mnist_load_flags(argv[5], 1, TG_LOAD_BYTES, &ds, err, sizeof err) != TG_OK)
            die("mem", err);
        data_bytes = (double)ds.n * (double)ds.d + (double)ds.n * 4;   /* u8 pixels, i32 labels */
        xs = malloc(sizeof(float) * (size_t)(B * D));
        ys = malloc(sizeof(int32_t) * (size_t)B);
        if (!xs || !ys || tg_batch_iter_init(&it, &ds, B, 1, 42, 0) != TG_OK)
            die("mem", "out of memory");
    } else {
        random_batches(N_BATCHES, B, D, mc->widths[mc->n_layers], &xs, &ys);
        data_bytes = (double)(N_BATCHES * B) * (double)(D + 1) * 4;
    }
    long data = status_kb("VmRSS"), load_hwm = status_kb("VmHWM");
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int cleared = f && fputs("5", f) >= 0;
    if (f)
        cleared = (fclose(f) == 0) && cleared;

    trainer t;
    trainer_init(&t, mc, 1);
    if (argc > 5)
        run_epoch(&t, &it, 0, xs, ys, D, steps);
    else
        for (int s = 0; s < steps; s++)
            train_step(&t, xs + (s % N_BATCHES) * B * D, ys + (s % N_BATCHES) * B, B, D, NULL);
    size_t used = arena_at_peak(&t, xs, ys, B, D);
    long train_hwm = status_kb("VmHWM");
    printf("%ld %ld %ld %ld %ld %zu %zu %.0f\n", start, xsmm, data, load_hwm, cleared ? train_hwm : -1,
           used, tg_ctx_arena_capacity(t.ctx), data_bytes);
    free(xs);
    free(ys);
    tg_batch_iter_free(&it);
    tg_dataset_free(&ds);
    trainer_free(&t);
    return 0;
}

static void bench_mem(const opts *o, const char *self, const mlp_cfg *mc, int64_t B, const char *data)
{
    char cmd[1024], line[256];
    int steps = o->quick ? 3 : 50;
    snprintf(cmd, sizeof cmd, "'%s' --mem-child %s %lld %d %s%s%s", self, mc->name, (long long)B, steps,
             data ? "'" : "", data ? data : "", data ? "'" : "");
    FILE *p = popen(cmd, "r");
    long start = -1, xsmm = -1, dat = -1, load_hwm = -1, train_hwm = -1;
    size_t used = 0, cap = 0;
    double data_bytes = 0;
    int ok = p && fgets(line, sizeof line, p) &&
             sscanf(line, "%ld %ld %ld %ld %ld %zu %zu %lf", &start, &xsmm, &dat, &load_hwm, &train_hwm, &used,
                    &cap, &data_bytes) == 8;
    if (p)
        ok = (pclose(p) == 0) && ok;
    if (!ok) {
        printf("memory %-16s b%lld: the child run failed\n", mc->name, (long long)B);
        return;
    }
    const double MB = 1024.0 * 1024.0, K = 1024.0;
    double state, act, expect = expected_bytes(mc, B, &state, &act);
    double peak = (double)(train_hwm > load_hwm ? train_hwm : load_hwm) * K;
    double train = train_hwm >= 0 ? (double)(train_hwm - dat) * K : NAN;
    printf("%-16s %5lld %-6s %8.1f %7.1f %7.1f %7.1f %7.1f  %8.2f  %8.2f (%.2f + %.2f)  %6.2f %6.2f\n",
           mc->name, (long long)B, data ? "fmnist" : "rand", peak / MB, start / K, (xsmm - start) / K,
           (dat - xsmm) / K, (load_hwm - dat) / K, train / MB, expect / MB, state / MB, act / MB,
           (double)used / MB, (double)cap / MB);
    fflush(stdout);
    char key[96];
    snprintf(key, sizeof key, "mem/%s/b%lld/%s", mc->name, (long long)B, data ? "fashion-mnist" : "random");
    result(key, "\"vmhwm_mb\": %.2f, \"start_rss_mb\": %.2f, \"libxsmm_init_mb\": %.2f, \"data_rss_mb\": %.2f, "
                "\"data_bytes_mb\": %.2f, \"loader_transient_mb\": %.2f, \"train_delta_mb\": %.3f, "
                "\"expected_mb\": %.3f, \"state_mb\": %.3f, \"activations_mb\": %.3f, "
                "\"arena_used_mb\": %.3f, \"arena_capacity_mb\": %.3f",
           peak / MB, start / K, (xsmm - start) / K, (dat - xsmm) / K, data_bytes / MB, (load_hwm - dat) / K,
           train / MB, expect / MB, state / MB, act / MB, (double)used / MB, (double)cap / MB);
}

/* ---- main -------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_train [--quick] [--json FILE] [--threads 1,2] [--only peak,step,epoch,tiny,mem]\n"
                    "                   [--data DIR] [--seconds S] [--epochs N] [--filter KEY-PART]\n");
    exit(2);
}

static void parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){ .data = DEFAULT_DATA, .threads = { 1, 2 }, .n_threads = 2, .sections = S_ALL,
                 .seconds = 1.5, .epochs = 3 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick"))
            o->quick = 1;
        else if (!strcmp(a, "--json") && v)
            o->json = argv[++i];
        else if (!strcmp(a, "--data") && v)
            o->data = argv[++i];
        else if (!strcmp(a, "--filter") && v)
            o->filter = argv[++i];
        else if (!strcmp(a, "--seconds") && v)
            o->seconds = atof(argv[++i]);
        else if (!strcmp(a, "--epochs") && v)
            o->epochs = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && v) {
            char buf[64], *save = NULL;
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            o->n_threads = 0;
            for (char *t = strtok_r(buf, ",", &save); t && o->n_threads < MAX_THREADS; t = strtok_r(NULL, ",", &save))
                if (atoi(t) >= 1)
                    o->threads[o->n_threads++] = atoi(t);
            if (!o->n_threads)
                usage();
        } else if (!strcmp(a, "--only") && v) {
            const char *s = argv[++i];
            o->sections = (strstr(s, "peak") ? S_PEAK : 0) | (strstr(s, "step") ? S_STEP : 0) |
                          (strstr(s, "epoch") ? S_EPOCH : 0) | (strstr(s, "tiny") ? S_TINY : 0) |
                          (strstr(s, "mem") ? S_MEM : 0);
            if (!o->sections)
                usage();
        } else
            usage();
    }
    if (o->epochs < 1 || o->seconds <= 0)
        usage();
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--mem-child"))
        return mem_child(argc, argv);
    opts o;
    parse_args(argc, argv, &o);
    char load0[64], cpu[256];
    loadavg(load0, sizeof load0);
    read_line_of("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    printf("tapegrad bench_train%s: f32, Adam lr 1e-3, threads", o.quick ? " (--quick: tiny counts, figures meaningless)" : "");
    for (int i = 0; i < o.n_threads; i++)
        printf(" %d", o.threads[i]);
    printf("; %s, %ld cpus, load %s\n\n", cpu, sysconf(_SC_NPROCESSORS_ONLN), load0);

    /* The step's %peak needs this machine's peak: measured whenever steps
     * run (a fixed figure went stale when the machine did: a Zen 5 core
     * runs twice the Zen 4's 110 GFLOP/s, and the table read 130 %). */
    double peak = 0;
    if (o.sections & (S_PEAK | S_STEP))
        peak = bench_peak(&o);
    if (o.sections & S_STEP) {
        printf("train step (fwd+CE, backward, Adam, zero_grad); shares are medians of each phase\n");
        printf("%-18s %5s %3s  %9s %9s  %17s %5s %5s %5s  %7s %6s %6s  %6s\n", "model", "batch", "thr", "ms/step",
               "min ms", "IQR ms", "fwd", "bwd", "opt", "GFLOP/s", "%peak", "%pkcpu", "steps");
        const struct { const mlp_cfg *m; int64_t B; } cases[] = {
            { &MLP_SMALL, 32 }, { &MLP_SMALL, 128 }, { &MLP_SMALL, 512 }, { &MLP_BIG, 128 } };
        for (int t = 0; t < o.n_threads; t++)
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
                bench_step(&o, cases[c].m, cases[c].B, o.threads[t], peak);
        printf("  (GFLOP/s counts the step's GEMM work only; %%peak: by wall time, against threads x the\n"
               "   1-thread peak; %%pkcpu: by the process's CPU time per step, against the 1-thread peak)\n\n");
    }
    tg_dataset ds;
    int have_data = 0;
    if (o.sections & (S_EPOCH | S_MEM)) {
        char err[512];
        /* Images held as bytes, as `tapegrad train` holds them (the batch
         * iterator converts the rows it gathers). */
        have_data = tg_fashion_mnist_load_flags(o.data, 1, TG_LOAD_BYTES, &ds, err, sizeof err) == TG_OK;
        if (!have_data)
            printf("Fashion-MNIST not available (%s): epoch benchmark skipped\n\n", err);
    }
    if ((o.sections & S_EPOCH) && have_data) {
        if (o.quick && ds.n > 2048)
            ds.n = 2048;              /* the first 2048 images; the buffers stay owned */
        printf("Fashion-MNIST epoch (784-128relu-10, Adam 1e-3, batch 128, shuffled; after a 20-step warm-up)\n");
        printf("%-20s %3s   %9s %9s  %6s   %7s  %s\n", "", "thr", "s/epoch", "min s", "epochs", "images",
               "train loss first -> last");
        for (int t = 0; t < o.n_threads; t++)
            bench_epoch(&o, &ds, o.threads[t]);
        printf("\n");
    }
    if (have_data)
        tg_dataset_free(&ds);
    if (o.sections & S_TINY) {
        printf("chain of %d recorded add/mul on 0-d f32 tensors, forward + backward + reset\n", CHAIN);
        printf("%-20s %3s   %9s %9s  %9s %9s\n", "", "thr", "ns/op", "min ns", "fwd ns", "bwd ns");
        for (int t = 0; t < o.n_threads; t++)
            bench_tiny(&o, o.threads[t]);
        printf("\n");
    }
    if (o.sections & S_MEM) {
        char self[1024];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0)
            die("mem", "cannot find /proc/self/exe");
        self[n] = '\0';
        printf("peak memory of a training run, each in a fresh process (MiB): peak VmHWM; RSS at start;\n"
               "added by libxsmm's initialisation; by the data (Fashion-MNIST, or the random batch pool);\n"
               "the loader's transient above that; then VmHWM is reset and the training run's own peak\n"
               "above the loaded state (train) is compared with the expected figure: params + grads +\n"
               "Adam moments (state) + one step's activations with their gradients (act)\n");
        printf("%-16s %5s %-6s %8s %7s %7s %7s %7s  %8s  %-23s %6s %6s\n", "model", "batch", "data", "VmHWM",
               "start", "xsmm", "data", "load", "train", "expected (state + act)", "arena", "cap");
        bench_mem(&o, self, &MLP_SMALL, 128, NULL);
        bench_mem(&o, self, &MLP_BIG, 128, NULL);
        if (access(o.data, R_OK) == 0)
            bench_mem(&o, self, &MLP_SMALL, 128, o.data);
        printf("\n");
    }
    if (o.json)
        write_json(o.json, load0);
    return 0;
}
