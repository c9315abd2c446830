/* test_threads.c — independent contexts on concurrent threads. Two training
 * runs, each with its own context, model (dropout and batch norm, so the
 * model RNG and the running statistics matter), optimizer, data and
 * checkpoint file, run on two threads at once and must end bit-identical to
 * the same two runs done one after the other (every parameter, buffer,
 * optimizer state, the RNG, the losses, an eval-mode output, all compared
 * byte for byte). The concurrent runs go first, so both threads meet the
 * library cold: libxsmm's initialisation and the first dispatch of every
 * GEMM kernel (the kernel cache in core/gemm_xsmm.c) happen on both threads
 * at once, for the same kernels. Then two threads save different models to the SAME path over
 * and over: every save succeeds and the file always loads as one of the
 * two, whole. Built with -Db_sanitize=thread (tests/run_tsan.sh) this is the
 * data-race test. */
#include "tapegrad.h"
#include "test.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

/* ---- one training run ------------------------------------------------------ */
typedef struct run {
    const char   *spec;
    tg_dtype      dt;
    tg_optim_kind kind;
    uint64_t      seed;
    int           batch, steps;
    /* results */
    unsigned char *snap;
    size_t         snap_n;
    int            failures;
    char           err[512];
} run;

static void put(unsigned char **p, const void *src, size_t n)
{
    memcpy(*p, src, n);
    *p += n;
}

/* Everything the run produced, as bytes. */
static size_t snapshot(tg_model *m, tg_optim *o, const double *losses, int n_losses,
                       const void *eval_out, size_t eval_bytes, unsigned char *buf)
{
    unsigned char *p = buf;
    tg_params *ps = tg_model_params(m), *bs = tg_model_buffers(m);
    size_t es = tg_dtype_size(tg_params_dtype(ps));
    size_t pn = (size_t)tg_params_len(ps) * es;
    put(&p, tg_params_values(ps), pn);
    if (tg_params_count(bs) > 0)
        put(&p, tg_params_values(bs), (size_t)tg_params_len(bs) * es);
    for (int i = 0; i < tg_optim_state_count(o); i++)
        put(&p, tg_optim_state_data(o, i), pn);
    put(&p, tg_model_rng(m), sizeof(tg_rng));
    int64_t steps = tg_optim_step_count(o);
    put(&p, &steps, sizeof steps);
    put(&p, losses, (size_t)n_losses * sizeof *losses);
    put(&p, eval_out, eval_bytes);
    return (size_t)(p - buf);
}

static void fail(run *r, const char *what, const char *msg)
{
    if (!r->failures++)
        snprintf(r->err, sizeof r->err, "%.60s (seed %llu): %s: %.300s", r->spec,
                 (unsigned long long)r->seed, what, msg);
}

static void *train(void *arg)
{
    run *r = arg;
    char err[512];
    tg_model *m = tg_model_from_spec(r->spec, r->dt, r->seed, err, sizeof err);
    tg_optim_config cfg = tg_optim_defaults(r->kind, r->kind == TG_OPTIM_SGD ? 0.05 : 1e-3);
    if (r->kind == TG_OPTIM_SGD)
        cfg.momentum = 0.9;
    tg_optim *o = m ? tg_optim_new(tg_model_params(m), &cfg, err, sizeof err) : NULL;
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = r->seed + 100 });
    int64_t in = m ? tg_model_in_features(m) : 1, out = m ? tg_model_out_features(m) : 1;
    size_t es = tg_dtype_size(r->dt);
    void *x = malloc((size_t)(r->batch * in) * es);
    int32_t *y = malloc((size_t)r->batch * sizeof *y);
    double *losses = malloc((size_t)r->steps * sizeof *losses);
    if (!m || !o || !ctx || !x || !y || !losses) {
        fail(r, "setup", m && o ? "out of memory" : err);
        goto out;
    }
    tg_rng data;
    tg_rng_seed(&data, r->seed * 7 + 1);
    for (int s = 0; s < r->steps; s++) {
        for (int64_t i = 0; i < r->batch * in; i++) {
            double v = tg_rng_normal(&data);
            if (r->dt == TG_F32)
                ((float *)x)[i] = (float)v;
            else
                ((double *)x)[i] = v;
        }
        for (int i = 0; i < r->batch; i++)
            y[i] = (int32_t)tg_rng_below(&data, (uint64_t)out);
        tg_tensor *xt = tg_tensor_wrap(ctx, r->dt, TG_DIMS(r->batch, in), x);
        tg_tensor *yt = tg_tensor_wrap(ctx, TG_I32, TG_DIMS(r->batch), y);
        tg_tensor *loss = tg_cross_entropy(ctx, tg_model_forward(ctx, m, xt), yt, TG_REDUCE_MEAN);
        tg_params_zero_grad(tg_model_params(m));
        if (tg_backward(ctx, loss) != TG_OK || tg_optim_step(o) != TG_OK) {
            fail(r, "step", tg_ctx_error(ctx));
            goto out;
        }
        losses[s] = tg_tensor_get(loss, 0);
        tg_ctx_reset(ctx);
    }

    /* A checkpoint round trip through this run's own file, into a second
     * model: what comes back is what went out. */
    char path[128];
    snprintf(path, sizeof path, "%s/run%llu.ckpt", dir, (unsigned long long)r->seed);
    tg_model *m2 = tg_model_from_spec(r->spec, r->dt, r->seed + 1, err, sizeof err);
    tg_optim *o2 = m2 ? tg_optim_new(tg_model_params(m2), &cfg, err, sizeof err) : NULL;
    if (!o2 || tg_model_save(path, m, o, NULL, 0, err, sizeof err) != TG_OK ||
        tg_model_load(path, m2, o2, err, sizeof err) != TG_OK) {
        fail(r, "checkpoint", err);
    } else {
        tg_params *a = tg_model_params(m), *b = tg_model_params(m2);
        if (memcmp(tg_params_values(a), tg_params_values(b), (size_t)tg_params_len(a) * es) ||
            memcmp(tg_model_rng(m), tg_model_rng(m2), sizeof(tg_rng)))
            fail(r, "checkpoint", "the loaded model differs from the saved one");
    }
    tg_optim_free(o2);
    tg_model_free(m2);

    /* Eval mode: batch norm uses its running statistics, dropout is off. */
    tg_model_set_training(m, 0);
    tg_tensor *xt = tg_tensor_wrap(ctx, r->dt, TG_DIMS(r->batch, in), x);
    tg_tensor *ev = tg_model_forward(ctx, m, xt);
    if (!ev) {
        fail(r, "eval", tg_ctx_error(ctx));
        goto out;
    }
    size_t eb = (size_t)ev->numel * es;
    r->snap = malloc((size_t)(tg_params_len(tg_model_params(m)) * 4 +
                              tg_params_len(tg_model_buffers(m))) * es + 4096 +
                     (size_t)r->steps * sizeof(double) + eb);
    if (r->snap)
        r->snap_n = snapshot(m, o, losses, r->steps, ev->data, eb, r->snap);
out:
    free(x);
    free(y);
    free(losses);
    tg_ctx_free(ctx);
    tg_optim_free(o);
    tg_model_free(m);
    return NULL;
}

static void reset_run(run *r)
{
    free(r->snap);
    r->snap = NULL;
    r->snap_n = 0;
    r->failures = 0;
    r->err[0] = '\0';
}

/* Run `a` and `b` on two threads at once, then again one after the other
 * on this thread; compare. */
static void concurrent_vs_sequential(run *a, run *b, int rounds)
{
    run seq[2] = { *a, *b };
    reset_run(&seq[0]);
    reset_run(&seq[1]);
    run conc[2];
    for (int round = 0; round < rounds; round++) {
        conc[0] = *a;
        conc[1] = *b;
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            TEST_CHECK(pthread_create(&th[i], NULL, train, &conc[i]) == 0);
        for (int i = 0; i < 2; i++)
            TEST_CHECK(pthread_join(th[i], NULL) == 0);
        if (round == 0)
            for (int i = 0; i < 2; i++)
                train(&seq[i]);
        for (int i = 0; i < 2; i++) {
            TEST_CHECK_MSG(!conc[i].failures, "%s", conc[i].err);
            TEST_CHECK_MSG(!seq[i].failures, "%s", seq[i].err);
            TEST_CHECK(conc[i].snap && seq[i].snap && conc[i].snap_n == seq[i].snap_n);
            TEST_CHECK_MSG(conc[i].snap && seq[i].snap && conc[i].snap_n == seq[i].snap_n &&
                           memcmp(conc[i].snap, seq[i].snap, seq[i].snap_n) == 0,
                           "round %d: %s (seed %llu) on a thread differs from the same run alone",
                           round, conc[i].spec, (unsigned long long)conc[i].seed);
            free(conc[i].snap);
        }
    }
    /* Runs with the same configuration agree with each other too. */
    if (a->spec == b->spec && a->seed == b->seed && a->dt == b->dt && a->kind == b->kind)
        TEST_CHECK(seq[0].snap_n == seq[1].snap_n && memcmp(seq[0].snap, seq[1].snap, seq[0].snap_n) == 0);
    free(seq[0].snap);
    free(seq[1].snap);
}

/* ---- two writers, one path ------------------------------------------------ */
enum { SAVES = 12 };
typedef struct writer { tg_model *m; const char *path; int failures; char err[512]; } writer;

static void *save_loop(void *arg)
{
    writer *w = arg;
    for (int i = 0; i < SAVES; i++)
        if (tg_model_save(w->path, w->m, NULL, NULL, 0, w->err, sizeof w->err) != TG_OK) {
            w->failures++;
            break;
        }
    return NULL;
}

static void same_path_writers(void)
{
    const char *spec = "64-256relu-10";
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/shared.ckpt", dir);
    tg_model *m[2], *probe = tg_model_from_spec(spec, TG_F32, 9, err, sizeof err);
    writer w[2];
    for (int i = 0; i < 2; i++) {
        m[i] = tg_model_from_spec(spec, TG_F32, 1 + (uint64_t)i, err, sizeof err);
        w[i] = (writer){ m[i], path, 0, "" };
    }
    size_t n = (size_t)tg_params_len(tg_model_params(probe)) * sizeof(float);
    for (int round = 0; round < 3; round++) {
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            TEST_CHECK(pthread_create(&th[i], NULL, save_loop, &w[i]) == 0);
        for (int i = 0; i < 2; i++)
            TEST_CHECK(pthread_join(th[i], NULL) == 0);
        for (int i = 0; i < 2; i++)
            TEST_CHECK_MSG(w[i].failures == 0, "%s", w[i].err);
        TEST_CHECK_MSG(tg_model_load(path, probe, NULL, err, sizeof err) == TG_OK, "%s", err);
        const void *got = tg_params_values(tg_model_params(probe));
        TEST_CHECK(memcmp(got, tg_params_values(tg_model_params(m[0])), n) == 0 ||
                   memcmp(got, tg_params_values(tg_model_params(m[1])), n) == 0);
    }
    /* No temporary left behind. */
    int temps = 0;
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d)) != NULL; )
        temps += strstr(de->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    TEST_CHECK(temps == 0);
    for (int i = 0; i < 2; i++)
        tg_model_free(m[i]);
    tg_model_free(probe);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg_threads_XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL);

    /* The same model and seed on both threads first, while every kernel is
     * new: both threads dispatch the same GEMM kernels at once (the same
     * kernel-cache slots), and both results must be identical. */
    run c = { .spec = "64-160relu_bn_d0.2-96relu_bn_d0.1-10", .dt = TG_F32,
              .kind = TG_OPTIM_ADAM, .seed = 3, .batch = 64, .steps = 40 };
    concurrent_vs_sequential(&c, &c, 1);
    /* Different models, dtypes and optimizers (different kernels, again new). */
    run a = { .spec = "48-128relu_bn_d0.2-80relu_bn_d0.1-10", .dt = TG_F32,
              .kind = TG_OPTIM_ADAM, .seed = 1, .batch = 32, .steps = 40 };
    run b = { .spec = "40-128tanh_bn_d0.3-128relu_d0.1-6", .dt = TG_F64,
              .kind = TG_OPTIM_SGD, .seed = 2, .batch = 48, .steps = 40 };
    concurrent_vs_sequential(&a, &b, 2);

    same_path_writers();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    TEST_CHECK(system(cmd) == 0);
    return test_report("test_threads");
}
