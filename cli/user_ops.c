/* user_ops.c — the ops the tapegrad commands see: the registry, then a
 * user's ops loaded from shared objects (--load) that export
 *     const tg_op_def *const tg_user_ops[] = { &my_op_def, NULL };
 *     const int tg_user_ops_abi = TG_OP_ABI;   (tg_op_def's layout)
 * Shared by `gradcheck` and `bench`; the handles stay open for the life of
 * the program. */
#include "cli.h"

#include <dlfcn.h>

#define MAX_USER_OPS 256

static const tg_op_def *user_ops[MAX_USER_OPS];
static size_t           n_user_ops;

size_t cli_op_count(void) { return tg_op_count() + n_user_ops; }

const tg_op_def *cli_op_get(size_t i)
{
    return i < tg_op_count() ? tg_op_get(i) : i < cli_op_count() ? user_ops[i - tg_op_count()] : NULL;
}

const tg_op_def *cli_op_find(const char *name)
{
    for (size_t i = 0; i < cli_op_count(); i++)
        if (!strcmp(cli_op_get(i)->name, name))
            return cli_op_get(i);
    return NULL;
}

int cli_load_user_ops(const char *cmd, const char *path)
{
    /* A bare file name means the file here, not a search of the library path. */
    char local[4096];
    if (!strchr(path, '/') && strlen(path) + 3 <= sizeof local) {
        snprintf(local, sizeof local, "./%s", path);
        path = local;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "tapegrad %s: cannot load %s: %s\n", cmd, path, dlerror());
        return -1;
    }
    const tg_op_def *const *list = (const tg_op_def *const *)dlsym(h, "tg_user_ops");
    if (!list) {
        fprintf(stderr, "tapegrad %s: %s exports no tg_user_ops[] "
                        "(const tg_op_def *const tg_user_ops[] = { &my_op, NULL };)\n", cmd, path);
        return -1;
    }
    const int *abi = (const int *)dlsym(h, "tg_user_ops_abi");
    if (!abi || *abi != TG_OP_ABI) {
        if (abi)
            fprintf(stderr, "tapegrad %s: %s was built against op layout %d, this tapegrad has %d: "
                            "rebuild it against these headers\n", cmd, path, *abi, TG_OP_ABI);
        else
            fprintf(stderr, "tapegrad %s: %s exports no tg_user_ops_abi (add "
                            "const int tg_user_ops_abi = TG_OP_ABI; beside tg_user_ops[], built "
                            "against these headers)\n", cmd, path);
        return -1;
    }
    for (size_t i = 0; list[i]; i++) {
        if (!list[i]->name) {
            fprintf(stderr, "tapegrad %s: %s: op %zu has no name\n", cmd, path, i);
            return -1;
        }
        if (cli_op_find(list[i]->name)) {
            fprintf(stderr, "tapegrad %s: %s: op '%s' already exists\n", cmd, path, list[i]->name);
            return -1;
        }
        if (n_user_ops == MAX_USER_OPS) {
            fprintf(stderr, "tapegrad %s: more than %d user ops\n", cmd, MAX_USER_OPS);
            return -1;
        }
        user_ops[n_user_ops++] = list[i];
    }
    return 0;
}

/* Levenshtein distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = diag + (a[i - 1] != b[j - 1]);
            size_t best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

void cli_unknown_op(const char *cmd, const char *name, const char *list_hint)
{
    fprintf(stderr, "tapegrad %s: unknown op '%s'", cmd, name);
    int n = 0;
    size_t lim = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;
    for (size_t i = 0; i < cli_op_count(); i++) {
        const char *op = cli_op_get(i)->name;
        if (edit_distance(name, op) <= lim || (strlen(name) >= 2 && strstr(op, name)) ||
            (strlen(op) >= 2 && strstr(name, op)))
            fprintf(stderr, "%s%s", n++ ? ", " : "; close names: ", op);
    }
    fprintf(stderr, "%s%s\n", n ? "" : "; see ", n ? "" : list_hint);
}
