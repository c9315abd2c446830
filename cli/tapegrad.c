/* tapegrad.c — the command-line program: `tapegrad <command> [options]`.
 *
 *   gradcheck   check ops' VJPs against finite differences (library code:
 *               tg_gradcheck_op, the same as tests/test_ops_grad.c): the
 *               registered ops, and a user's own ops loaded from a shared
 *               object (--load, user_ops.c) that exports
 *                   const tg_op_def *const tg_user_ops[] = { &my_op_def, NULL };
 *   train, eval (train.c), bench (bench.c)
 *
 * Each command is one entry in `commands[]` and one cmd_<name>(argc, argv)
 * function receiving its own arguments (argv[0] is the command's name).
 *
 * Exit status: 0 success, 1 a check failed, 2 usage error.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TAPEGRAD_VERSION
#define TAPEGRAD_VERSION "unknown"
#endif


/* ---- gradcheck ----------------------------------------------------------- */

static void gradcheck_usage(FILE *f)
{
    fprintf(f,
        "usage: tapegrad gradcheck --all  [options]   check every registered op\n"
        "       tapegrad gradcheck --op NAME [--variant K] [options]\n"
        "                                             check one op, show its worst elements\n"
        "       tapegrad gradcheck --list             list the registered ops\n"
        "options:\n"
        "  --dtype f32|f64|both   dtype the ops run in (default both); differences are f64\n"
        "  --four-point           4-point central differences\n"
        "  --seed N               sample inputs, cotangents, directions (default 0)\n"
        "  --atol X, --rtol X     tolerances (default: per dtype, times the op's scale)\n"
        "  --max-full N           larger inputs are checked along random directions (512)\n"
        "  --dirs N               directions per large input (8)\n"
        "  --load LIB.so          also check the ops a shared object exports as\n"
        "                         const tg_op_def *const tg_user_ops[] (NULL-terminated)\n"
        "  -v, --verbose          print each op's full report\n");
}

typedef struct gc_cli {
    int         all, list, verbose, variant;   /* variant -1: all */
    const char *op;
    int         dtypes[2], n_dtypes;           /* values of opts.f32 to run */
    tg_gradcheck_opts opts;
} gc_cli;

static int gradcheck_args(int argc, char **argv, gc_cli *c)
{
    memset(c, 0, sizeof *c);
    c->variant = -1;
    c->dtypes[0] = 0;
    c->dtypes[1] = 1;
    c->n_dtypes = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m;
        uint64_t u;
        if (!strcmp(a, "--all"))
            c->all = 1;
        else if (!strcmp(a, "--list"))
            c->list = 1;
        else if (!strcmp(a, "--four-point"))
            c->opts.four_point = 1;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            c->verbose = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return 1;
        else if ((m = opt_value(argc, argv, &i, "--op", &v)) != 0) {
            if (m < 0) goto missing;
            c->op = v;
        } else if ((m = opt_value(argc, argv, &i, "--load", &v)) != 0) {
            if (m < 0) goto missing;
            if (cli_load_user_ops("gradcheck", v) != 0) return -2;
        } else if ((m = opt_value(argc, argv, &i, "--variant", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_int(v, 0, 1 << 20, &c->variant)) goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--dtype", &v)) != 0) {
            if (m < 0) goto missing;
            if (!strcmp(v, "f64")) c->n_dtypes = 1, c->dtypes[0] = 0;
            else if (!strcmp(v, "f32")) c->n_dtypes = 1, c->dtypes[0] = 1;
            else if (!strcmp(v, "both")) c->n_dtypes = 2;
            else goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--seed", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_u64(v, &c->opts.seed)) goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--atol", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_pos_double(v, &c->opts.atol)) goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--rtol", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_pos_double(v, &c->opts.rtol)) goto bad;
        } else if ((m = opt_value(argc, argv, &i, "--max-full", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_u64(v, &u) || u < 1 || u > INT64_MAX) goto bad;
            c->opts.max_full = (int64_t)u;
        } else if ((m = opt_value(argc, argv, &i, "--dirs", &v)) != 0) {
            if (m < 0) goto missing;
            if (!parse_int(v, 1, 1 << 16, &c->opts.n_dirs)) goto bad;
        } else {
            fprintf(stderr, "tapegrad gradcheck: unknown option '%s'\n", a);
            return -1;
        }
        continue;
missing:
        fprintf(stderr, "tapegrad gradcheck: %s needs a value\n", a);
        return -1;
bad:
        fprintf(stderr, "tapegrad gradcheck: bad value '%s' for %s\n", v, a);
        return -1;
    }
    if (c->all + c->list + (c->op != NULL) != 1) {
        fprintf(stderr, "tapegrad gradcheck: give exactly one of --all, --op NAME, --list\n");
        return -1;
    }
    if (c->variant >= 0 && !c->op) {
        fprintf(stderr, "tapegrad gradcheck: --variant needs --op\n");
        return -1;
    }
    return 0;
}

static int name_width(void)
{
    int w = 8;
    for (size_t i = 0; i < cli_op_count(); i++) {
        int l = (int)strlen(cli_op_get(i)->name);
        w = l > w ? l : w;
    }
    return w;
}

static int gradcheck_list(void)
{
    int w = name_width();
    printf("%-*s  %6s  %8s  %s\n", w, "op", "inputs", "variants", "notes");
    for (size_t i = 0; i < cli_op_count(); i++) {
        const tg_op_def *d = cli_op_get(i);
        char in[16], notes[128] = "";
        if (d->n_in == TG_VARIADIC)
            snprintf(in, sizeof in, "1..%d", TG_MAX_IN);
        else
            snprintf(in, sizeof in, "%d", d->n_in);
        size_t off = 0;
        if (!d->sample || d->n_samples < 1)
            off += (size_t)snprintf(notes + off, sizeof notes - off, "NO SAMPLE ");
        if (!d->backward)
            off += (size_t)snprintf(notes + off, sizeof notes - off, "no VJP ");
        if (d->nondiff && off < sizeof notes) {
            off += (size_t)snprintf(notes + off, sizeof notes - off, "nondiff inputs:");
            for (int b = 0; b < 32 && off < sizeof notes; b++)
                if (d->nondiff & (1u << b))
                    off += (size_t)snprintf(notes + off, sizeof notes - off, " %d", b);
        }
        printf("%-*s  %6s  %8d%s%s\n", w, d->name, in, d->n_samples, notes[0] ? "  " : "", notes);
    }
    return EXIT_PASS;
}

/* "FAIL gradient (3 wrong), accumulate" etc. */
static void result_str(tg_status st, const tg_gradcheck_report *r, char *buf, size_t cap)
{
    if (st != TG_OK) {
        snprintf(buf, cap, "ERROR");
        return;
    }
    if (r->passed) {
        snprintf(buf, cap, "PASS");
        return;
    }
    size_t off = (size_t)snprintf(buf, cap, "FAIL");
    const char *sep = " ";
    if (r->n_failed && off < cap) {
        off += (size_t)snprintf(buf + off, cap - off, " gradient (%lld wrong)", (long long)r->n_failed);
        sep = ", ";
    }
    for (int b = 0; b < TG_GC_N_CONTRACTS && off < cap; b++)
        if (r->contract_failures & (1u << b)) {
            off += (size_t)snprintf(buf + off, cap - off, "%s%s", sep, tg_gradcheck_contract_name(1u << b));
            sep = ", ";
        }
}

static void print_row(int w, const tg_op_def *d, int f32, tg_status st, const tg_gradcheck_report *r)
{
    char res[200];
    result_str(st, r, res, sizeof res);
    if (st != TG_OK)
        printf("%-*s  %-5s  %8s  %8s  %8s  %11s  %11s  %s\n", w, d->name, f32 ? "f32" : "f64",
               "-", "-", "-", "-", "-", res);
    else
        printf("%-*s  %-5s  %8d  %8lld  %8lld  %11.3e  %11.3e  %s\n", w, d->name, f32 ? "f32" : "f64",
               r->n_variants, (long long)r->n_checked, (long long)r->n_nondiff, r->max_abs_err,
               r->max_rel_err, res);
}

static void print_header(int w)
{
    printf("%-*s  %-5s  %8s  %8s  %8s  %11s  %11s  %s\n", w, "op", "dtype", "variants", "checked",
           "nondiff", "max abs err", "max rel err", "result");
}

static int gradcheck_all(gc_cli *c)
{
    int w = name_width(), passed = 0, failed = 0;
    size_t n_ops = cli_op_count();
    /* Failing reports are kept to print their messages after the table. */
    tg_gradcheck_report *fails = calloc(n_ops * 2 + 1, sizeof *fails);
    if (!fails) {
        fprintf(stderr, "tapegrad gradcheck: out of memory\n");
        return EXIT_FAIL;
    }
    print_header(w);
    for (size_t i = 0; i < n_ops; i++) {
        const tg_op_def *d = cli_op_get(i);
        for (int t = 0; t < c->n_dtypes; t++) {
            tg_gradcheck_opts o = c->opts;
            o.f32 = c->dtypes[t];
            tg_gradcheck_report r;
            tg_status st = tg_gradcheck_op(d, &o, &r);
            print_row(w, d, o.f32, st, &r);
            if (c->verbose) {
                tg_gradcheck_report_print(&r, stdout);
                printf("\n");
            }
            if (st == TG_OK && r.passed) {
                passed++;
            } else {
                fails[failed++] = r;
            }
            fflush(stdout);
        }
    }
    if (failed && !c->verbose) {
        printf("\nfailures:\n");
        for (int i = 0; i < failed; i++)
            printf("  %s\n", fails[i].message);
    }
    free(fails);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? EXIT_FAIL : EXIT_PASS;
}

static int gradcheck_one(gc_cli *c)
{
    const tg_op_def *d = cli_op_find(c->op);
    if (!d) {
        cli_unknown_op("gradcheck", c->op, "'tapegrad gradcheck --list'");
        return EXIT_USAGE;
    }
    int passed = 0, failed = 0;
    for (int t = 0; t < c->n_dtypes; t++) {
        tg_gradcheck_opts o = c->opts;
        o.f32 = c->dtypes[t];
        if (c->variant >= 0) {
            o.single_variant = 1;
            o.variant = c->variant;
        }
        tg_gradcheck_report r;
        tg_status st = tg_gradcheck_op(d, &o, &r);
        if (st == TG_ERR_ARG && c->variant >= 0 && c->variant >= d->n_samples) {
            fprintf(stderr, "tapegrad gradcheck: %s has variants 0..%d, not %d\n", d->name,
                    d->n_samples - 1, c->variant);
            return EXIT_USAGE;
        }
        tg_gradcheck_report_print(&r, stdout);
        printf("\n");
        if (st == TG_OK && r.passed)
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? EXIT_FAIL : EXIT_PASS;
}

int cmd_gradcheck(int argc, char **argv)
{
    gc_cli c;
    int r = gradcheck_args(argc, argv, &c);
    if (r != 0) {
        if (r != -2)            /* -2: the error said it all (a user library failed to load) */
            gradcheck_usage(r > 0 ? stdout : stderr);
        return r > 0 ? EXIT_PASS : EXIT_USAGE;
    }
    if (c.list)
        return gradcheck_list();
    return c.all ? gradcheck_all(&c) : gradcheck_one(&c);
}

/* ---- the command table --------------------------------------------------- */

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    { "gradcheck", cmd_gradcheck, "check ops' gradients (VJPs) against finite differences" },
    { "train",     cmd_train,     "train a model on Fashion-MNIST (or any IDX data set)" },
    { "eval",      cmd_eval,      "evaluate a checkpoint on the test set" },
    { "bench",     cmd_bench,     "benchmark op throughput (kernel, engine, first call; % of peak)" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tapegrad <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s  %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'tapegrad <command> --help' describes a command's options.\n"
               "'tapegrad --version' prints the version.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return EXIT_PASS;
    }
    if (!strcmp(cmd, "--version")) {
        printf("tapegrad %s\n", TAPEGRAD_VERSION);
        return EXIT_PASS;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tapegrad: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
