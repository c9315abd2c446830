/* bench.c — `tapegrad bench`: op throughput through the library's
 * tg_bench_op (graph/tg_bench.h): every registered op (and a user's, with
 * --load) or the named ones, at their sample shapes or one problem size,
 * per dtype and thread count. An aligned table on stdout; Google Benchmark
 * JSON and CSV on request; a baseline JSON compared by median.
 *
 * Exit status: 0, or 1 when an output mismatched its reference, an op
 * named with --op could not be timed, or --baseline flagged a regression;
 * 2 for a usage error. */
#include "cli.h"

#include <unistd.h>

#define MAX_OPS     256
#define MAX_THREADS 16

typedef struct bench_cli {
    const char *ops[MAX_OPS];
    int         n_ops;
    int         dtypes[2], n_dtypes;        /* tg_dtype values to run */
    int         threads[MAX_THREADS], n_threads;
    const char *json, *csv, *baseline;
    double      threshold;
    int         list, no_probe;
    tg_bench_opts opts;
} bench_cli;

static void bench_usage(FILE *f)
{
    fprintf(f,
        "usage: tapegrad bench [--op NAME]... [options]\n"
        "Times each op's forward, VJP and both as raw kernels, and through the engine\n"
        "(tg_apply + tg_backward_seed), after checking its output against a reference.\n"
        "options:\n"
        "  --op NAME            an op to benchmark (repeat for more; default: every op)\n"
        "  --shape DIMS         a problem size instead of the ops' sample shapes, e.g.\n"
        "                       4096x4096 (elementwise ops), 1024x1024x1024 (matmul: MxNxK,\n"
        "                       or BxMxNxK batched); batch_norm NxC[xS], layer_norm ...xD,\n"
        "                       concat/broadcast_to the output's shape (tg_bench.h)\n"
        "  --variant K          only sample variant K\n"
        "  --dtype f32|f64|both dtype to run (default f32)\n"
        "  --threads LIST       thread counts to sweep, e.g. 1,2 (default 1)\n"
        "  --time-budget S      seconds per measurement (default 0.2)\n"
        "  --min-reps N         timed batches at least (default 5)\n"
        "  --seed N             sample inputs and cotangent (default 0)\n"
        "  --json FILE          write Google Benchmark JSON (compare.py can diff two)\n"
        "  --csv FILE           write one CSV row per measurement\n"
        "  --baseline FILE      compare medians with an earlier --json; exit 1 on a regression\n"
        "  --threshold X        regression threshold for --baseline (default 0.1 = 10%%)\n"
        "  --load LIB.so        also the ops a shared object exports as\n"
        "                       const tg_op_def *const tg_user_ops[] (NULL-terminated)\n"
        "  --no-probe           skip measuring the machine's peaks (no %% of peak)\n"
        "  --list               list the ops and exit\n"
        "%%peak: c = share of the single-thread GEMM peak times the thread count (compute-bound\n"
        "       phases), m = share of the memory bandwidth measured on as many threads (memory-bound;\n"
        "       cache-resident data can exceed 100).\n");
}

/* "4096x4096", "1024,1024,1024". */
static int parse_shape(const char *s, tg_bench_opts *o)
{
    int nd = 0;
    while (*s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || errno || v < 1 || nd == TG_MAX_DIMS)
            return 0;
        o->shape[nd++] = v;
        s = end;
        if (*s == 'x' || *s == ',') {
            if (!*++s)
                return 0;
        } else if (*s) {
            return 0;
        }
    }
    o->ndim = nd;
    return nd > 0;
}

static int parse_threads(const char *s, bench_cli *c)
{
    c->n_threads = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 1 || v > 1024 || c->n_threads == MAX_THREADS)
            return 0;
        c->threads[c->n_threads++] = (int)v;
        s = end;
        if (*s == ',') {
            if (!*++s)
                return 0;
        } else if (*s) {
            return 0;
        }
    }
    return c->n_threads > 0;
}

static int bench_args(int argc, char **argv, bench_cli *c)
{
    memset(c, 0, sizeof *c);
    c->dtypes[0] = TG_F32;
    c->n_dtypes = 1;
    c->threads[0] = 1;
    c->n_threads = 1;
    c->threshold = 0.1;
    int variant = -1, have_threshold = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return 1;
        else if (!strcmp(a, "--list"))
            c->list = 1;
        else if (!strcmp(a, "--no-probe"))
            c->no_probe = 1;
        else if ((m = opt_value(argc, argv, &i, "--op", &v)) != 0) {
            if (m < 0) goto missing;
            if (c->n_ops == MAX_OPS) goto bad;
            c->ops[c->n_ops++] = v;
        } else if ((m = opt_value(argc, argv, &i, "--shape", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_shape(v, &c->opts)) goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--variant", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_int(v, 0, 1 << 20, &variant)) goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--dtype", &v)) != 0) {
            if (m < 0) goto missing;
            if (!strcmp(v, "f32")) c->n_dtypes = 1, c->dtypes[0] = TG_F32;
            else if (!strcmp(v, "f64")) c->n_dtypes = 1, c->dtypes[0] = TG_F64;
            else if (!strcmp(v, "both")) c->n_dtypes = 2, c->dtypes[0] = TG_F32, c->dtypes[1] = TG_F64;
            else goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--threads", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_threads(v, c)) goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--time-budget", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_pos_double(v, &c->opts.time_budget)) goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--min-reps", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_int(v, 1, 1 << 20, &c->opts.min_reps)) goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--seed", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_u64(v, &c->opts.seed)) goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--json", &v)) != 0) {
            if (m < 0) goto missing;
            c->json = v;
        } else if ((m = opt_value(argc, argv, &i, "--csv", &v)) != 0) {
            if (m < 0) goto missing;
            c->csv = v;
        } else if ((m = opt_value(argc, argv, &i, "--baseline", &v)) != 0) {
            if (m < 0) goto missing;
            c->baseline = v;
        } else if ((m = opt_value(argc, argv, &i, "--threshold", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_pos_double(v, &c->threshold)) goto bad;
            have_threshold = 1;
        } else if ((m = opt_value(argc, argv, &i, "--load", &v)) != 0) {
            if (m < 0) goto missing;
            if (cli_load_user_ops("bench", v) != 0) return -2;
        } else {
            fprintf(stderr, "tapegrad bench: unknown option '%s'\n", a);
            return -1;
        }
        continue;
missing:
        fprintf(stderr, "tapegrad bench: %s needs a value\n", a);
        return -1;
bad:
        fprintf(stderr, "tapegrad bench: bad value '%s' for %s\n", v, a);
        return -1;
    }
    if (have_threshold && !c->baseline) {
        fprintf(stderr, "tapegrad bench: --threshold needs --baseline\n");
        return -1;
    }
    if (variant >= 0) {
        if (c->opts.ndim > 0 || c->n_ops != 1) {
            fprintf(stderr, "tapegrad bench: --variant needs exactly one --op and no --shape\n");
            return -1;
        }
        c->opts.single_variant = 1;
        c->opts.variant = variant;
    }
    for (int k = 0; k < c->n_ops; k++)
        if (!cli_op_find(c->ops[k])) {
            cli_unknown_op("bench", c->ops[k], "'tapegrad bench --list'");
            return -2;
        }
    return 0;
}

static int bench_list(void)
{
    printf("%-16s %8s  %s\n", "op", "variants", "user shape");
    for (size_t i = 0; i < cli_op_count(); i++) {
        const tg_op_def *d = cli_op_get(i);
        printf("%-16s %8d  %s\n", d->name, d->n_samples, d->sample_shape ? "sample_shape hook" : "generic rule");
    }
    return EXIT_PASS;
}

static int write_file(const char *path, const char *what, tg_status (*w)(FILE *, const tg_bench_result *const *, int),
                      const tg_bench_result *const *res, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "tapegrad bench: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    tg_status st = w(f, res, n);
    if (fclose(f) != 0 || st != TG_OK) {
        fprintf(stderr, "tapegrad bench: writing %s failed\n", path);
        return -1;
    }
    fprintf(stderr, "%s written to %s\n", what, path);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    bench_cli c;
    int r = bench_args(argc, argv, &c);
    if (r != 0) {
        if (r == -1)
            bench_usage(stderr);
        else if (r > 0)
            bench_usage(stdout);
        return r > 0 ? EXIT_PASS : EXIT_USAGE;
    }
    if (c.list)
        return bench_list();

    size_t n_ops = c.n_ops ? (size_t)c.n_ops : cli_op_count();
    size_t n_runs = n_ops * (size_t)c.n_dtypes * (size_t)c.n_threads;
    tg_bench_result *res = calloc(n_runs ? n_runs : 1, sizeof *res);
    const tg_bench_result **ptrs = calloc(n_runs ? n_runs : 1, sizeof *ptrs);
    if (!res || !ptrs) {
        fprintf(stderr, "tapegrad bench: out of memory\n");
        free(res);
        free(ptrs);
        return EXIT_FAIL;
    }

    tg_bench_machine machine;
    tg_status pst = tg_bench_probe(&machine, c.no_probe ? -1.0
                                   : c.opts.time_budget > 0 && c.opts.time_budget < 0.2 ? c.opts.time_budget : 0.2);
    if (pst != TG_OK)
        fprintf(stderr, "tapegrad bench: the machine probe failed (%s); %% of peak may be missing\n",
                tg_status_str(pst));
    tg_bench_print_machine(stdout, &machine);
    printf("\n");
    fflush(stdout);
    c.opts.machine = &machine;

    int n_res = 0, timed = 0, mismatches = 0, untimed = 0, failed_named = 0;
    for (size_t i = 0; i < n_ops; i++) {
        const tg_op_def *d = c.n_ops ? cli_op_find(c.ops[i]) : cli_op_get(i);
        for (int t = 0; t < c.n_dtypes; t++)
            for (int h = 0; h < c.n_threads; h++) {
                tg_bench_opts o = c.opts;
                o.dtype = (tg_dtype)c.dtypes[t];
                o.threads = c.threads[h];
                tg_bench_result *br = &res[n_res];
                tg_status st = tg_bench_op(d, &o, br);
                if (st == TG_ERR_NOMEM) {
                    fprintf(stderr, "tapegrad bench: %s: out of memory\n", d->name);
                    free(res);
                    free(ptrs);
                    return EXIT_FAIL;
                }
                ptrs[n_res++] = br;
                tg_bench_print(stdout, br, n_res == 1);
                fflush(stdout);
                timed += br->n_timed;
                mismatches += br->n_mismatch;
                untimed += br->n_error + (st != TG_OK);
                if (c.n_ops && (br->n_error || st != TG_OK))
                    failed_named = 1;
            }
    }
    printf("\n%d cases timed, %d mismatched their reference (not timed), %d could not be timed\n",
           timed, mismatches, untimed);

    int status = mismatches || failed_named ? EXIT_FAIL : EXIT_PASS;
    if (c.json && write_file(c.json, "JSON", tg_bench_write_json, ptrs, n_res) != 0)
        status = EXIT_FAIL;
    if (c.csv && write_file(c.csv, "CSV", tg_bench_write_csv, ptrs, n_res) != 0)
        status = EXIT_FAIL;
    if (c.baseline) {
        tg_bench_comparison cmp;
        tg_status st = tg_bench_compare(c.baseline, ptrs, n_res, c.threshold, &cmp);
        if (st != TG_OK) {
            fprintf(stderr, "tapegrad bench: baseline: %s\n", cmp.message);
            status = EXIT_FAIL;
        } else {
            printf("\n");
            tg_bench_comparison_print(stdout, &cmp);
            if (cmp.n_regressions)
                status = EXIT_FAIL;
        }
        tg_bench_comparison_free(&cmp);
    }
    free(res);
    free(ptrs);
    return status;
}
