/* train.c — `tapegrad train` and `tapegrad eval`: train a model from a spec
 * on an IDX classification data set (Fashion-MNIST by default), with the
 * optimizer, schedule, clipping and penalties chosen by flags; per-epoch CSV,
 * an optional gnuplot chart, crash-safe checkpoints and bit-identical resume.
 * The last line printed is test_accuracy=0.XXXX. */
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

typedef struct train_cfg {
    const char *data, *arch, *ckpt, *resume, *csv, *plot;
    tg_optim_config opt;
    const char *optim_name;
    tg_schedule sched;
    double clip_norm, clip_value, l1, l2;
    int64_t batch, limit, test_limit;
    int epochs, threads, quiet, anomaly;
    uint64_t seed;
    tg_dtype dtype;
} train_cfg;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void train_usage(FILE *f)
{
    fprintf(f,
        "usage: tapegrad train [options]\n"
        "  --data DIR          IDX data set directory (%s)\n"
        "  --arch SPEC         model spec (784-128relu-10); see tg_model_from_spec\n"
        "  --optim NAME        sgd | adam | adamw | rmsprop | adagrad (adam)\n"
        "  --lr X              learning rate (1e-3)\n"
        "  --momentum X --nesterov --dampening X --weight-decay X\n"
        "  --beta1 X --beta2 X --eps X --alpha X --centered --lr-decay X\n"
        "  --schedule KIND     constant | step | exp | cosine (constant)\n"
        "  --gamma X --step-size N (in epochs) --eta-min X --warmup N (steps)\n"
        "  --clip-norm X       clip gradients to a global L2 norm\n"
        "  --clip-value X      clamp each gradient element to [-X, X]\n"
        "  --l1 X --l2 X       weight penalties on *.weight parameters\n"
        "  --batch N           minibatch size (128)\n"
        "  --epochs N          epochs to train in all (10)\n"
        "  --seed N            seed for initialisation, shuffling, dropout (42)\n"
        "  --threads N         thread count (1)\n"
        "  --dtype f32|f64     parameter and activation dtype (f32)\n"
        "  --limit N           use the first N training images only\n"
        "  --test-limit N      use the first N test images only\n"
        "  --checkpoint FILE   save after every epoch (crash-safe)\n"
        "  --resume FILE       continue from a checkpoint of the same run\n"
        "  --csv FILE          per-epoch train loss, test loss, test accuracy\n"
        "  --plot FILE.png     loss/accuracy chart (needs gnuplot)\n"
        "  --detect-anomaly    stop at the first NaN/Inf in any op or VJP, naming it\n"
        "  --quiet             no per-epoch lines\n", DEFAULT_DATA);
}

static int in_range(uint64_t u, uint64_t lo) { return u >= lo && u <= (uint64_t)1 << 40; }

/* Returns 1 parsed, 0 not an option of ours, -1 bad value (message printed). */
static int parse_opt(train_cfg *c, int argc, char **argv, int *i)
{
    const char *v = NULL, *opt = argv[*i];
    int r;
    uint64_t u;
#define STR(name, field) if ((r = opt_value(argc, argv, i, name, &v)) != 0) { if (r < 0) goto missing; c->field = v; return 1; }
#define DBL(name, field) if ((r = opt_value(argc, argv, i, name, &v)) != 0) { if (r < 0 || !parse_double(v, &c->field)) goto bad; return 1; }
#define I64(name, field, lo) if ((r = opt_value(argc, argv, i, name, &v)) != 0) { if (r < 0 || !parse_u64(v, &u) || !in_range(u, lo)) goto bad; c->field = (int64_t)u; return 1; }
#define FLAG(name, field) if (!strcmp(argv[*i], name)) { c->field = 1; return 1; }
    STR("--data", data) STR("--arch", arch) STR("--checkpoint", ckpt) STR("--resume", resume)
    STR("--csv", csv) STR("--plot", plot) STR("--optim", optim_name)
    DBL("--lr", opt.lr) DBL("--momentum", opt.momentum) DBL("--dampening", opt.dampening)
    DBL("--weight-decay", opt.weight_decay) DBL("--beta1", opt.beta1) DBL("--beta2", opt.beta2)
    DBL("--eps", opt.eps) DBL("--alpha", opt.alpha) DBL("--lr-decay", opt.lr_decay)
    DBL("--gamma", sched.gamma) DBL("--eta-min", sched.eta_min)
    DBL("--clip-norm", clip_norm) DBL("--clip-value", clip_value) DBL("--l1", l1) DBL("--l2", l2)
    I64("--batch", batch, 1) I64("--limit", limit, 1) I64("--test-limit", test_limit, 1)
    I64("--step-size", sched.step_size, 1) I64("--warmup", sched.warmup_steps, 0)
    FLAG("--nesterov", opt.nesterov) FLAG("--centered", opt.centered) FLAG("--quiet", quiet) FLAG("--detect-anomaly", anomaly)
    if ((r = opt_value(argc, argv, i, "--epochs", &v)) != 0) {
        if (r < 0 || !parse_int(v, 1, 100000, &c->epochs)) goto bad;
        return 1;
    }
    if ((r = opt_value(argc, argv, i, "--threads", &v)) != 0) {
        if (r < 0 || !parse_int(v, 1, 1024, &c->threads)) goto bad;
        return 1;
    }
    if ((r = opt_value(argc, argv, i, "--seed", &v)) != 0) {
        if (r < 0 || !parse_u64(v, &c->seed)) goto bad;
        return 1;
    }
    if ((r = opt_value(argc, argv, i, "--dtype", &v)) != 0) {
        if (r < 0 || (strcmp(v, "f32") && strcmp(v, "f64"))) goto bad;
        c->dtype = strcmp(v, "f32") ? TG_F64 : TG_F32;
        return 1;
    }
    if ((r = opt_value(argc, argv, i, "--schedule", &v)) != 0) {
        if (r < 0) goto missing;
        if (!strcmp(v, "constant")) c->sched.kind = TG_SCHED_CONSTANT;
        else if (!strcmp(v, "step")) c->sched.kind = TG_SCHED_STEP;
        else if (!strcmp(v, "exp")) c->sched.kind = TG_SCHED_EXPONENTIAL;
        else if (!strcmp(v, "cosine")) c->sched.kind = TG_SCHED_COSINE;
        else goto bad;
        return 1;
    }
    return 0;
#undef STR
#undef DBL
#undef I64
#undef FLAG
missing:
    fprintf(stderr, "tapegrad train: %s needs a value\n", opt);
    return -1;
bad:
    fprintf(stderr, "tapegrad train: bad value for %s: %s\n", opt, v ? v : "(none)");
    return -1;
}

/* ---- data ---------------------------------------------------------------- */

static int load_data(const train_cfg *c, tg_dataset *train, tg_dataset *test, int need_train)
{
    char err[512];
    tg_dataset full;
    if (need_train) {
        /* Byte images stay bytes (4x less memory, faster batches, the same
         * floats in every batch); evaluation reads the test set's floats. */
        if (tg_fashion_mnist_load_flags(c->data, 1, TG_LOAD_BYTES, &full, err, sizeof err) != TG_OK) {
            fprintf(stderr, "tapegrad: %s\n", err);
            return 0;
        }
        if (c->limit && c->limit < full.n) {
            tg_status s = tg_dataset_subset(&full, 0, c->limit, train, err, sizeof err);
            tg_dataset_free(&full);
            if (s != TG_OK) {
                fprintf(stderr, "tapegrad: %s\n", err);
                return 0;
            }
        } else {
            *train = full;
        }
    }
    if (tg_fashion_mnist_load(c->data, 0, &full, err, sizeof err) != TG_OK) {
        fprintf(stderr, "tapegrad: %s\n", err);
        if (need_train)
            tg_dataset_free(train);
        return 0;
    }
    if (c->test_limit && c->test_limit < full.n) {
        tg_status s = tg_dataset_subset(&full, 0, c->test_limit, test, err, sizeof err);
        tg_dataset_free(&full);
        if (s != TG_OK) {
            fprintf(stderr, "tapegrad: %s\n", err);
            if (need_train)
                tg_dataset_free(train);
            return 0;
        }
    } else {
        *test = full;
    }
    return 1;
}

/* Copy float samples into a buffer of the model's dtype when it is f64. */
static const void *as_dtype(const float *x, int64_t n, tg_dtype dt, double *buf)
{
    if (dt == TG_F32)
        return x;
    for (int64_t i = 0; i < n; i++)
        buf[i] = x[i];
    return buf;
}

/* Mean loss and accuracy of `m` (eval mode, no grad) over ds. */
static int evaluate(tg_ctx *ctx, tg_model *m, const tg_dataset *ds, tg_dtype dt, double *loss, double *acc)
{
    const int64_t B = 500, D = ds->d;
    double *buf = dt == TG_F64 ? malloc((size_t)(B * D) * sizeof *buf) : NULL;
    if (dt == TG_F64 && !buf)
        return 0;
    int was = tg_model_training(m);
    tg_model_set_training(m, 0);
    double total = 0;
    int64_t correct = 0;
    int ok = 1;
    TG_NO_GRAD(ctx) {
        for (int64_t s = 0; s < ds->n && ok; s += B) {
            int64_t b = ds->n - s < B ? ds->n - s : B;
            tg_tensor *x = tg_tensor_wrap(ctx, dt, TG_DIMS(b, D), (void *)as_dtype(ds->x + s * D, b * D, dt, buf));
            tg_tensor *y = tg_tensor_wrap(ctx, TG_I32, TG_DIMS(b), ds->y + s);
            tg_tensor *logits = tg_model_forward(ctx, m, x);
            tg_tensor *l = tg_cross_entropy(ctx, logits, y, TG_REDUCE_SUM);
            if (!l) {
                fprintf(stderr, "tapegrad: evaluation failed: %s\n", tg_ctx_error(ctx));
                ok = 0;
                break;
            }
            total += tg_tensor_get(l, 0);
            int64_t C = logits->shape[1];
            for (int64_t i = 0; i < b; i++) {
                int64_t best = 0;
                for (int64_t k = 1; k < C; k++)
                    if (tg_tensor_get(logits, i * C + k) > tg_tensor_get(logits, i * C + best))
                        best = k;
                correct += best == ds->y[s + i];
            }
            tg_ctx_reset(ctx);
        }
    }
    tg_model_set_training(m, was);
    free(buf);
    *loss = total / (double)ds->n;
    *acc = (double)correct / (double)ds->n;
    return ok;
}

/* ---- progress ------------------------------------------------------------- */

static void progress(int epoch, int epochs, int64_t done, int64_t total, double loss, double t0, int64_t samples)
{
    double el = now() - t0, rate = el > 0 ? (double)samples / el : 0;
    double eta = done > 0 ? el / (double)done * (double)(total - done) : 0;
    int w = 30, fill = total ? (int)(w * done / total) : w;
    fprintf(stderr, "\repoch %d/%d [", epoch, epochs);
    for (int k = 0; k < w; k++)
        fputc(k < fill ? '=' : k == fill ? '>' : ' ', stderr);
    fprintf(stderr, "] %lld/%lld  loss %.4f  %.0f samples/s  ETA %.1fs   ",
            (long long)done, (long long)total, loss, rate, eta);
    fflush(stderr);
}

static int draw_plot(const char *png, const char *csv)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "gnuplot 2>&1");
    FILE *g = popen(cmd, "w");
    if (!g)
        return 0;
    fprintf(g,
        "set terminal pngcairo size 900,500 noenhanced\n"
        "set output '%s'\n"
        "set datafile separator ','\n"
        "set key autotitle columnhead\n"
        "set xlabel 'epoch'\nset ylabel 'loss'\nset y2label 'test accuracy'\n"
        "set ytics nomirror\nset y2tics\nset grid\n"
        "plot '%s' using 1:2 with linespoints title 'train loss', "
        "'' using 1:3 with linespoints title 'test loss', "
        "'' using 1:4 axes x1y2 with linespoints title 'test accuracy'\n", png, csv);
    return pclose(g) == 0;
}

/* ---- train ---------------------------------------------------------------- */

static int check_meta(tg_st_file *f, const char *key, const char *want, const char *path)
{
    const char *have = tg_safetensors_meta(f, key);
    if (have && strcmp(have, want) == 0)
        return 1;
    fprintf(stderr, "tapegrad: %s: the checkpoint's %s is '%s', this run's is '%s'\n", path, key,
            have ? have : "(missing)", want);
    return 0;
}

int cmd_train(int argc, char **argv)
{
    train_cfg c = { .data = DEFAULT_DATA, .arch = "784-128relu-10", .optim_name = "adam",
                    .batch = 128, .epochs = 10, .threads = 1, .seed = 42, .dtype = TG_F32 };
    c.opt = tg_optim_defaults(TG_OPTIM_ADAM, 1e-3);
    int lr_set = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            train_usage(stdout);
            return EXIT_PASS;
        }
        double lr_before = c.opt.lr;
        int r = parse_opt(&c, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0) {
            fprintf(stderr, "tapegrad train: unknown option '%s'\n\n", argv[i]);
            train_usage(stderr);
            return EXIT_USAGE;
        }
        lr_set |= c.opt.lr != lr_before;
    }
    /* Hyperparameters not given take the chosen optimizer's defaults. */
    int kind = tg_optim_kind_parse(c.optim_name);
    if (kind < 0) {
        fprintf(stderr, "tapegrad train: unknown optimizer '%s' (sgd, adam, adamw, rmsprop, adagrad)\n", c.optim_name);
        return EXIT_USAGE;
    }
    tg_optim_config d = tg_optim_defaults((tg_optim_kind)kind, lr_set ? c.opt.lr : kind == TG_OPTIM_SGD ? 0.01 : 1e-3);
    tg_optim_config given = c.opt, base = tg_optim_defaults(TG_OPTIM_ADAM, 1e-3);
#define KEEP(f) d.f = given.f != base.f ? given.f : d.f
    KEEP(momentum); KEEP(dampening); KEEP(weight_decay); KEEP(beta1); KEEP(beta2); KEEP(eps);
    KEEP(alpha); KEEP(lr_decay); KEEP(nesterov); KEEP(centered);
#undef KEEP
    c.opt = d;
    char err[512];
    /* Schedule defaults: step halves the rate every epoch, exp decays by 0.95
     * per step, cosine anneals over the whole run (t_max set below). */
    if ((c.sched.kind == TG_SCHED_STEP || c.sched.kind == TG_SCHED_EXPONENTIAL) && c.sched.gamma == 0)
        c.sched.gamma = c.sched.kind == TG_SCHED_STEP ? 0.5 : 0.95;
    if (c.sched.kind == TG_SCHED_STEP && c.sched.step_size == 0)
        c.sched.step_size = 1;

    tg_dataset train, test;
    if (!load_data(&c, &train, &test, 1))
        return EXIT_FAIL;
    int rc = EXIT_FAIL;
    tg_model *m = tg_model_from_spec(c.arch, c.dtype, c.seed, err, sizeof err);
    tg_optim *o = NULL;
    tg_ctx *ctx = NULL;
    tg_batch_iter it;
    int have_it = 0;
    FILE *csv = NULL;
    float *xb = NULL;
    int32_t *yb = NULL;
    double *xd = NULL;
    if (!m) {
        fprintf(stderr, "tapegrad: %s\n", err);
        goto done;
    }
    if (tg_model_in_features(m) != train.d) {
        fprintf(stderr, "tapegrad: the model takes %lld inputs, the data has %lld per sample\n",
                (long long)tg_model_in_features(m), (long long)train.d);
        goto done;
    }
    tg_params_set_threads(tg_model_params(m), c.threads);
    o = tg_optim_new(tg_model_params(m), &c.opt, err, sizeof err);
    if (!o) {
        fprintf(stderr, "tapegrad: %s\n", err);
        goto done;
    }
    ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = c.seed, .n_threads = c.threads });
    if (ctx)
        tg_ctx_set_anomaly(ctx, c.anomaly);
    if (!ctx || tg_batch_iter_init(&it, &train, c.batch, 1, c.seed, 0) != TG_OK) {
        fprintf(stderr, "tapegrad: out of memory\n");
        goto done;
    }
    have_it = 1;
    tg_batch_iter_set_threads(&it, c.threads);
    int64_t per_epoch = tg_batch_iter_num_batches(&it);
    if (c.sched.kind == TG_SCHED_COSINE)
        c.sched.t_max = per_epoch * c.epochs - c.sched.warmup_steps;
    if (c.sched.kind == TG_SCHED_STEP)
        c.sched.step_size *= per_epoch;          /* given in epochs */
    if (tg_schedule_check(&c.sched, err, sizeof err) != TG_OK) {
        fprintf(stderr, "tapegrad: %s\n", err);
        goto done;
    }
    xb = malloc((size_t)(c.batch * train.d) * sizeof *xb);
    yb = malloc((size_t)c.batch * sizeof *yb);
    xd = c.dtype == TG_F64 ? malloc((size_t)(c.batch * train.d) * sizeof *xd) : NULL;
    if (!xb || !yb || (c.dtype == TG_F64 && !xd)) {
        fprintf(stderr, "tapegrad: out of memory\n");
        goto done;
    }

    /* What must match for a resumed run to continue the same run. */
    char seed_s[32], batch_s[32], epoch_s[32], limit_s[32];
    snprintf(seed_s, sizeof seed_s, "%" PRIu64, c.seed);
    snprintf(batch_s, sizeof batch_s, "%" PRId64, c.batch);
    snprintf(limit_s, sizeof limit_s, "%" PRId64, train.n);
    int first_epoch = 0;
    if (c.resume) {
        tg_st_file *f = tg_safetensors_open(c.resume, err, sizeof err);
        if (!f) {
            fprintf(stderr, "tapegrad: %s\n", err);
            goto done;
        }
        long long done_epochs = -1;
        const char *e = tg_safetensors_meta(f, "epoch");
        int ok = check_meta(f, "spec", c.arch, c.resume) && check_meta(f, "seed", seed_s, c.resume) &&
                 check_meta(f, "batch", batch_s, c.resume) && check_meta(f, "train_samples", limit_s, c.resume) &&
                 e && sscanf(e, "%lld", &done_epochs) == 1 && done_epochs >= 0;
        tg_safetensors_close(f);
        if (!ok) {
            if (!e || done_epochs < 0)
                fprintf(stderr, "tapegrad: %s: no valid epoch in the checkpoint\n", c.resume);
            goto done;
        }
        if (tg_model_load(c.resume, m, o, err, sizeof err) != TG_OK) {
            fprintf(stderr, "tapegrad: %s\n", err);
            goto done;
        }
        first_epoch = (int)done_epochs;
        if (!c.quiet)
            printf("resumed from %s after epoch %d\n", c.resume, first_epoch);
    }
    if (c.csv) {
        csv = fopen(c.csv, first_epoch ? "a" : "w");
        if (!csv) {
            fprintf(stderr, "tapegrad: %s: %s\n", c.csv, strerror(errno));
            goto done;
        }
        if (!first_epoch)
            fprintf(csv, "epoch,train_loss,test_loss,test_accuracy,lr,seconds\n");
    }
    if (!c.quiet) {
        char desc[2048];
        tg_model_describe(m, desc, sizeof desc);
        printf("model %s (%lld parameters), %s, batch %lld, %d epochs, %lld training images\n%s",
               c.arch, (long long)tg_params_numel(tg_model_params(m)), tg_optim_kind_name(c.opt.kind),
               (long long)c.batch, c.epochs, (long long)train.n, desc);
    }
    int tty = isatty(STDERR_FILENO) && !c.quiet;
    double test_loss = 0, test_acc = 0;
    tg_params_zero_grad(tg_model_params(m));     /* every step zeroes them after its update */
    for (int epoch = first_epoch; epoch < c.epochs; epoch++) {
        double t0 = now(), sum = 0;
        int64_t nb = 0, seen = 0;
        tg_batch_iter_seek_epoch(&it, epoch);
        int64_t b;
        while ((b = tg_batch_iter_next(&it, xb, yb)) > 0) {
            tg_tensor *x = tg_tensor_wrap(ctx, c.dtype, TG_DIMS(b, train.d),
                                          (void *)as_dtype(xb, b * train.d, c.dtype, xd));
            tg_tensor *y = tg_tensor_wrap(ctx, TG_I32, TG_DIMS(b), yb);
            tg_tensor *loss = tg_cross_entropy(ctx, tg_model_forward(ctx, m, x), y, TG_REDUCE_MEAN);
            tg_params *p = tg_model_params(m);
            if (tg_backward(ctx, loss) != TG_OK) {
                fprintf(stderr, "%stapegrad: epoch %d batch %lld: %s\n", tty ? "\n" : "", epoch + 1,
                        (long long)nb, tg_ctx_error(ctx));
                goto done;
            }
            double lv = tg_tensor_get(loss, 0);
            if (!isfinite(lv)) {
                fprintf(stderr, "%stapegrad: epoch %d batch %lld: the loss is %g; try a lower --lr or --clip-norm\n",
                        tty ? "\n" : "", epoch + 1, (long long)nb, lv);
                goto done;
            }
            if (c.l2 > 0)
                lv += tg_params_l2_penalty(p, c.l2, ".weight");
            if (c.l1 > 0)
                lv += tg_params_l1_penalty(p, c.l1, ".weight");
            if (c.clip_value > 0)
                tg_clip_grad_value(p, c.clip_value);
            if (c.clip_norm > 0)
                tg_clip_grad_norm(p, c.clip_norm);
            tg_optim_set_lr(o, tg_schedule_lr(&c.sched, c.opt.lr, tg_optim_step_count(o)));
            tg_optim_step_and_zero_grad(o);     /* the gradients start at 0 for the next step */
            sum += lv;
            nb++;
            seen += b;
            tg_ctx_reset(ctx);
            if (tty && (nb % 20 == 0 || nb == per_epoch))
                progress(epoch + 1, c.epochs, nb, per_epoch, sum / (double)nb, t0, seen);
        }
        double train_time = now() - t0;
        if (tty)
            fputc('\n', stderr);
        if (!evaluate(ctx, m, &test, c.dtype, &test_loss, &test_acc))
            goto done;
        double train_loss = sum / (double)(nb ? nb : 1);
        if (!c.quiet)
            printf("epoch %2d/%d  train_loss %.4f  test_loss %.4f  test_accuracy %.4f  lr %.3g  %.2fs\n",
                   epoch + 1, c.epochs, train_loss, test_loss, test_acc, tg_optim_lr(o), train_time);
        if (csv) {
            fprintf(csv, "%d,%.6f,%.6f,%.4f,%.6g,%.3f\n", epoch + 1, train_loss, test_loss, test_acc,
                    tg_optim_lr(o), train_time);
            fflush(csv);
        }
        if (c.ckpt) {
            snprintf(epoch_s, sizeof epoch_s, "%d", epoch + 1);
            tg_st_meta meta[] = { { "spec", c.arch }, { "seed", seed_s }, { "batch", batch_s },
                                  { "epoch", epoch_s }, { "train_samples", limit_s } };
            if (tg_model_save(c.ckpt, m, o, meta, 5, err, sizeof err) != TG_OK) {
                fprintf(stderr, "tapegrad: %s\n", err);
                goto done;
            }
        }
        fflush(stdout);
    }
    if (first_epoch >= c.epochs && !evaluate(ctx, m, &test, c.dtype, &test_loss, &test_acc))
        goto done;
    if (c.plot) {
        if (!c.csv) {
            fprintf(stderr, "tapegrad: --plot needs --csv (the chart is drawn from it)\n");
            goto done;
        }
        fclose(csv);
        csv = NULL;
        if (!draw_plot(c.plot, c.csv)) {
            fprintf(stderr, "tapegrad: gnuplot could not draw %s (is gnuplot installed?)\n", c.plot);
            goto done;
        }
    }
    printf("test_accuracy=%.4f\n", test_acc);
    rc = EXIT_PASS;
done:
    if (csv)
        fclose(csv);
    free(xb);
    free(yb);
    free(xd);
    if (have_it)
        tg_batch_iter_free(&it);
    tg_ctx_free(ctx);
    tg_optim_free(o);
    tg_model_free(m);
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    return rc;
}

/* ---- eval ----------------------------------------------------------------- */

int cmd_eval(int argc, char **argv)
{
    train_cfg c = { .data = DEFAULT_DATA, .dtype = TG_F32 };
    const char *ckpt = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tapegrad eval --checkpoint FILE [--data DIR] [--test-limit N]\n");
            return EXIT_PASS;
        }
        if ((r = opt_value(argc, argv, &i, "--checkpoint", &v)) != 0) {
            if (r < 0) {
                fprintf(stderr, "tapegrad eval: --checkpoint needs a value\n");
                return EXIT_USAGE;
            }
            ckpt = v;
            continue;
        }
        r = parse_opt(&c, argc, argv, &i);
        if (r < 0)
            return EXIT_USAGE;
        if (r == 0) {
            fprintf(stderr, "tapegrad eval: unknown option '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!ckpt) {
        fprintf(stderr, "usage: tapegrad eval --checkpoint FILE [--data DIR] [--test-limit N]\n");
        return EXIT_USAGE;
    }
    char err[512], spec[256];
    tg_st_file *f = tg_safetensors_open(ckpt, err, sizeof err);
    if (!f) {
        fprintf(stderr, "tapegrad: %s\n", err);
        return EXIT_FAIL;
    }
    const char *s = tg_safetensors_meta(f, "spec"), *dt = tg_safetensors_meta(f, "dtype");
    snprintf(spec, sizeof spec, "%s", s ? s : "");
    c.dtype = dt && !strcmp(dt, "f64") ? TG_F64 : TG_F32;
    tg_safetensors_close(f);
    if (!*spec) {
        fprintf(stderr, "tapegrad: %s: the checkpoint names no model spec\n", ckpt);
        return EXIT_FAIL;
    }
    tg_model *m = tg_model_from_spec(spec, c.dtype, 0, err, sizeof err);
    if (!m || tg_model_load(ckpt, m, NULL, err, sizeof err) != TG_OK) {
        fprintf(stderr, "tapegrad: %s\n", err);
        tg_model_free(m);
        return EXIT_FAIL;
    }
    tg_dataset train, test;
    int rc = EXIT_FAIL;
    tg_ctx *ctx = tg_ctx_new(NULL);
    double loss, acc;
    if (ctx && load_data(&c, &train, &test, 0)) {
        if (evaluate(ctx, m, &test, c.dtype, &loss, &acc)) {
            printf("model %s, %lld test images\ntest_loss=%.4f\ntest_accuracy=%.4f\n", spec,
                   (long long)test.n, loss, acc);
            rc = EXIT_PASS;
        }
        tg_dataset_free(&test);
    }
    tg_ctx_free(ctx);
    tg_model_free(m);
    return rc;
}
