/* cli.h — shared by the tapegrad program's command files: exit codes,
 * argument helpers and the command entry points. */
#ifndef TG_CLI_H
#define TG_CLI_H

#include "tapegrad.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_PASS = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

int cmd_gradcheck(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* ---- the ops a command sees (user_ops.c) ---------------------------------- */

/* The registry's ops, then those loaded with cli_load_user_ops. */
size_t           cli_op_count(void);
const tg_op_def *cli_op_get(size_t i);            /* NULL when out of range */
const tg_op_def *cli_op_find(const char *name);   /* NULL when unknown      */
/* Load a shared object and append its NULL-terminated tg_user_ops[]; on
 * failure prints "tapegrad <cmd>: ..." to stderr and returns -1. */
int cli_load_user_ops(const char *cmd, const char *path);
/* "tapegrad <cmd>: unknown op 'x'; close names: ..." (or "; see <hint>"). */
void cli_unknown_op(const char *cmd, const char *name, const char *list_hint);

/* ---- argument helpers ---------------------------------------------------- */

/* Matches "--name" (value in the next argument) or "--name=value". Returns
 * 1 and sets *val when matched, -1 when the value is missing. */
static inline int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

static inline int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return 0;
    *out = v;
    return 1;
}

static inline int parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v < (uint64_t)lo || v > (uint64_t)hi)
        return 0;
    *out = (int)v;
    return 1;
}

static inline int parse_pos_double(const char *s, double *out)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v > 0))
        return 0;
    *out = v;
    return 1;
}

static inline int parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v != v)
        return 0;
    *out = v;
    return 1;
}

#endif
