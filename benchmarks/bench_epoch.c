/* bench_epoch.c — the cost of a training epoch (or of N steps), the loop of
 * `tapegrad train` (cli/train.c) without evaluation, checkpoints or output:
 * batch copy, tg_tensor_wrap, model forward, cross-entropy, zero_grad,
 * backward, Adam step, tg_ctx_reset.
 *
 *   bench_epoch [--arch SPEC] [--batch N] [--threads N] [--steps N]
 *               [--reps N] [--data DIR] [--phases] [--float] [--zero-pass]
 *
 * Data: Fashion-MNIST from --data (default Debian's); a model whose input is
 * not 784 wide trains on random inputs of its width. --steps 0 (default) is
 * one epoch. The images stay bytes as tapegrad train loads them
 * (--float: loaded as floats); gradients are zeroed by the optimizer step
 * as tapegrad train does (--zero-pass: tg_params_zero_grad before each
 * backward). Each repeat runs the same steps again (the first repeat also
 * pays first-touch and JIT costs; it is reported apart). Reported per
 * repeat: wall time, process CPU time (all threads) and this thread's CPU
 * time; the median and minimum over the repeats after the first. With
 * --phases, this thread's CPU time per phase (median over steps, summed):
 * clock reads add ~100 ns per phase per step. On a shared machine, the
 * thread CPU time at 1 thread is the robust figure; at 2 threads the minimum
 * wall time is the closest to an unloaded run. */
#include "tapegrad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

static double clk(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long minflt(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { PH_BATCH, PH_FWD, PH_ZERO, PH_BWD, PH_OPT, PH_RESET, N_PH };
static const char *ph_name[N_PH] = { "batch", "forward", "zero_grad", "backward", "optim", "reset" };

int main(int argc, char **argv)
{
    const char *arch = "784-128relu-10", *data = "/usr/share/datasets/fashion-mnist";
    int64_t batch = 128, steps = 0;
    int threads = 1, reps = 5, phases = 0, compact = 1, zero_pass = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--phases")) { phases = 1; continue; }
        if (!strcmp(a, "--float")) { compact = 0; continue; }
        if (!strcmp(a, "--zero-pass")) { zero_pass = 1; continue; }
        if (!v) { fprintf(stderr, "%s needs a value\n", a); return 2; }
        if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--batch")) batch = atoll(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoll(v);
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else { fprintf(stderr, "unknown option %s\n", a); return 2; }
        i++;
    }
    if (reps < 2)
        reps = 2;
    char err[512];
    tg_model *m = tg_model_from_spec(arch, TG_F32, 42, err, sizeof err);
    if (!m) { fprintf(stderr, "%s\n", err); return 1; }
    int64_t D = tg_model_in_features(m);
    tg_dataset ds;
    memset(&ds, 0, sizeof ds);
    if (D == 784) {
        if (tg_fashion_mnist_load_flags(data, 1, compact ? TG_LOAD_BYTES : 0, &ds, err, sizeof err) != TG_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    } else {
        ds.n = 60000 / 128 * batch < 60000 ? 60000 : batch;
        ds.d = D;
        ds.x = tg_malloc((size_t)(ds.n * D) * sizeof(float));
        ds.y = tg_malloc((size_t)ds.n * sizeof(int32_t));
        tg_rng r;
        tg_rng_seed(&r, 1);
        for (int64_t i = 0; i < ds.n * D; i++)
            ds.x[i] = (float)tg_rng_uniform(&r);
        for (int64_t i = 0; i < ds.n; i++)
            ds.y[i] = (int32_t)tg_rng_below(&r, 10);
        ds.n_classes = 10;
    }
    tg_params_set_threads(tg_model_params(m), threads);
    tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_ADAM, 1e-3);
    tg_optim *o = tg_optim_new(tg_model_params(m), &cfg, err, sizeof err);
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 42, .n_threads = threads });
    tg_batch_iter it;
    if (!o || !ctx || tg_batch_iter_init(&it, &ds, batch, 1, 42, 0) != TG_OK) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    tg_batch_iter_set_threads(&it, threads);
    int64_t per_epoch = tg_batch_iter_num_batches(&it);
    if (steps <= 0 || steps > per_epoch)
        steps = per_epoch;
    float *xb = malloc((size_t)(batch * D) * sizeof *xb);
    int32_t *yb = malloc((size_t)batch * sizeof *yb);
    double *ph = calloc((size_t)(steps * N_PH), sizeof *ph);
    double *wall = calloc((size_t)reps, sizeof *wall), *pcpu = calloc((size_t)reps, sizeof *pcpu);
    double *tcpu = calloc((size_t)reps, sizeof *tcpu);
    double phase_sum[N_PH] = {0};
    double loss_sum = 0;
    long faults[2] = {0, 0};
    for (int r = 0; r < reps; r++) {
        long f0 = minflt();
        tg_batch_iter_seek_epoch(&it, 0);
        double w0 = clk(CLOCK_MONOTONIC), p0 = clk(CLOCK_PROCESS_CPUTIME_ID), t0 = clk(CLOCK_THREAD_CPUTIME_ID);
        for (int64_t s = 0; s < steps; s++) {
            double c[N_PH + 1] = {0};
            if (phases) c[0] = clk(CLOCK_THREAD_CPUTIME_ID);
            int64_t b = tg_batch_iter_next(&it, xb, yb);
            tg_tensor *x = tg_tensor_wrap(ctx, TG_F32, TG_DIMS(b, D), xb);
            tg_tensor *y = tg_tensor_wrap(ctx, TG_I32, TG_DIMS(b), yb);
            if (phases) c[1] = clk(CLOCK_THREAD_CPUTIME_ID);
            tg_tensor *loss = tg_cross_entropy(ctx, tg_model_forward(ctx, m, x), y, TG_REDUCE_MEAN);
            if (phases) c[2] = clk(CLOCK_THREAD_CPUTIME_ID);
            if (zero_pass)
                tg_params_zero_grad(tg_model_params(m));
            if (phases) c[3] = clk(CLOCK_THREAD_CPUTIME_ID);
            if (tg_backward(ctx, loss) != TG_OK) {
                fprintf(stderr, "step %lld: %s\n", (long long)s, tg_ctx_error(ctx));
                return 1;
            }
            if (phases) c[4] = clk(CLOCK_THREAD_CPUTIME_ID);
            loss_sum += tg_tensor_get(loss, 0);
            if (zero_pass)
                tg_optim_step(o);
            else
                tg_optim_step_and_zero_grad(o);
            if (phases) c[5] = clk(CLOCK_THREAD_CPUTIME_ID);
            tg_ctx_reset(ctx);
            if (phases) {
                c[6] = clk(CLOCK_THREAD_CPUTIME_ID);
                for (int k = 0; k < N_PH; k++)
                    ph[k * steps + s] = c[k + 1] - c[k];
            }
        }
        wall[r] = clk(CLOCK_MONOTONIC) - w0;
        pcpu[r] = clk(CLOCK_PROCESS_CPUTIME_ID) - p0;
        tcpu[r] = clk(CLOCK_THREAD_CPUTIME_ID) - t0;
        faults[r > 0] += minflt() - f0;
        if (phases && r > 0)
            for (int k = 0; k < N_PH; k++) {
                qsort(ph + k * steps, (size_t)steps, sizeof *ph, cmp_d);
                phase_sum[k] += ph[k * steps + steps / 2] * (double)steps / (reps - 1);
            }
    }
    printf("%s batch %lld, %lld steps, %d thread(s), %d repeats (first apart); mean loss %.6f\n", arch,
           (long long)batch, (long long)steps, threads, reps, loss_sum / (double)(reps * steps));
    printf("first repeat: wall %.4f s  process cpu %.4f s  thread cpu %.4f s  page faults %ld (later: %ld per repeat)\n",
           wall[0], pcpu[0], tcpu[0], faults[0], faults[1] / (reps - 1));
    qsort(wall + 1, (size_t)reps - 1, sizeof *wall, cmp_d);
    qsort(pcpu + 1, (size_t)reps - 1, sizeof *pcpu, cmp_d);
    qsort(tcpu + 1, (size_t)reps - 1, sizeof *tcpu, cmp_d);
    int mid = 1 + (reps - 1) / 2;
    printf("later:  wall median %.4f min %.4f s | process cpu median %.4f min %.4f s | thread cpu median %.4f min %.4f s\n",
           wall[mid], wall[1], pcpu[mid], pcpu[1], tcpu[mid], tcpu[1]);
    printf("per step: wall min %.3f ms, thread cpu median %.3f ms\n", 1e3 * wall[1] / (double)steps,
           1e3 * tcpu[mid] / (double)steps);
    if (phases) {
        printf("phases (this thread's cpu, median step x steps):");
        for (int k = 0; k < N_PH; k++)
            printf("  %s %.4f s", ph_name[k], phase_sum[k]);
        printf("\n");
    }
    free(xb); free(yb); free(ph); free(wall); free(pcpu); free(tcpu);
    tg_batch_iter_free(&it);
    tg_ctx_free(ctx);
    tg_optim_free(o);
    tg_model_free(m);
    tg_dataset_free(&ds);
    return 0;
}
