/* test_cli.c — the tapegrad program: `gradcheck` output, exit statuses and
 * usage errors. argv[1] is the tapegrad executable, argv[2] a shared object
 * with user ops (tests/gradcheck_plugin.c). */
#include "tapegrad.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char *out;            /* everything the last run printed */
static size_t out_cap;
static const char *exe, *plugin, *oldabi, *noabi;

/* Run `tapegrad <args>` with stderr merged into out; returns the exit status.
 * $TG_TEST_WRAPPER, when set, goes in front (valgrind: tests/meson.build). */
static int run(const char *args)
{
    char cmd[1024];
    const char *wrap = getenv("TG_TEST_WRAPPER");
    snprintf(cmd, sizeof cmd, "%s '%s' %s 2>&1", wrap ? wrap : "", exe, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = 0;
    for (;;) {
        if (out_cap - n < 4096) {
            char *b = realloc(out, out_cap * 2 + 8192);
            if (!b)
                break;
            out = b;
            out_cap = out_cap * 2 + 8192;
        }
        size_t got = fread(out + n, 1, out_cap - n - 1, p);
        n += got;
        if (got == 0)
            break;
    }
    if (out)
        out[n] = '\0';
    int st = pclose(p);
    return out && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int has(const char *sub) { return out && strstr(out, sub) != NULL; }

/* The last line of out, without its newline. */
static const char *last_line(void)
{
    static char line[256];
    size_t n = strlen(out);
    while (n && out[n - 1] == '\n')
        n--;
    size_t b = n;
    while (b && out[b - 1] != '\n')
        b--;
    snprintf(line, sizeof line, "%.*s", (int)(n - b), out + b);
    return line;
}

static void test_all(void)
{
    char want[64];
    TEST_CHECK_MSG(run("gradcheck --all") == 0, "%s", out);
    snprintf(want, sizeof want, "%zu passed, 0 failed", 2 * tg_op_count());
    TEST_CHECK_MSG(strcmp(last_line(), want) == 0, "last line '%s'", last_line());
    TEST_CHECK(has("max abs err") && has("exp ") && has(" f64 ") && has(" f32 ") && has("PASS"));

    TEST_CHECK(run("gradcheck --all --dtype f32 --four-point --seed 7 --max-full=4 --dirs 3") == 0);
    snprintf(want, sizeof want, "%zu passed, 0 failed", tg_op_count());
    TEST_CHECK_MSG(strcmp(last_line(), want) == 0, "last line '%s'", last_line());
    TEST_CHECK(!has(" f64 "));
    TEST_CHECK(run("gradcheck --all -v --dtype=f64") == 0 && has("analytic") && has("numeric"));
}

static void test_one(void)
{
    TEST_CHECK(run("gradcheck --op exp --variant 1") == 0);
    TEST_CHECK(has("exp f64: PASS: 1 variant") && has("exp f32: PASS") && has("step"));
    TEST_CHECK(strcmp(last_line(), "2 passed, 0 failed") == 0);
    TEST_CHECK(run("gradcheck --op ex") == 2 && has("unknown op 'ex'") && has("close names: exp"));
    TEST_CHECK(run("gradcheck --op qqqqqqqq") == 2 && has("--list"));
    char want[64];
    snprintf(want, sizeof want, "variants 0..%d, not 99", tg_op_find("exp")->n_samples - 1);
    TEST_CHECK(run("gradcheck --op exp --variant 99") == 2 && has(want));
    TEST_CHECK(run("gradcheck --list") == 0 && has("exp") && has("variants"));
}

static void test_usage_errors(void)
{
    TEST_CHECK(run("") == 2 && has("usage: tapegrad <command>"));
    TEST_CHECK(run("frobnicate") == 2 && has("unknown command 'frobnicate'") && has("gradcheck"));
    TEST_CHECK(run("--help") == 0 && has("gradcheck"));
    TEST_CHECK(run("--version") == 0 && has("tapegrad "));
    TEST_CHECK(run("gradcheck") == 2 && has("exactly one of"));
    TEST_CHECK(run("gradcheck --all --list") == 2);
    TEST_CHECK(run("gradcheck --all --dtype f16") == 2 && has("bad value 'f16' for --dtype"));
    TEST_CHECK(run("gradcheck --all --seed") == 2 && has("needs a value"));
    TEST_CHECK(run("gradcheck --all --seed -3") == 2);
    TEST_CHECK(run("gradcheck --all --bogus") == 2 && has("unknown option '--bogus'"));
    TEST_CHECK(run("gradcheck --all --variant 0") == 2 && has("--variant needs --op"));
    TEST_CHECK(run("gradcheck --help") == 0 && has("--four-point"));
    TEST_CHECK(run("gradcheck --all --load /nonexistent.so") == 2 && has("cannot load"));
}

static void test_user_ops(void)
{
    char args[512], want[64];
    snprintf(args, sizeof args, "gradcheck --all --load '%s'", plugin);
    TEST_CHECK_MSG(run(args) == 1, "%s", out);
    snprintf(want, sizeof want, "%zu passed, 2 failed", 2 * tg_op_count() + 2);
    TEST_CHECK_MSG(strcmp(last_line(), want) == 0, "last line '%s'", last_line());
    TEST_CHECK(has("plug_cube ") && has("FAIL gradient (1 wrong)"));
    TEST_CHECK(has("plug_cube_bad f64: FAIL: variant 0 input 0 [1, 1] (flat 4)"));

    snprintf(args, sizeof args, "gradcheck --load '%s' --op plug_cube_bad --dtype f64", plugin);
    TEST_CHECK(run(args) == 1 && has("[1,1] #4") && has("<- wrong"));
    TEST_CHECK(strcmp(last_line(), "0 passed, 1 failed") == 0);
    snprintf(args, sizeof args, "gradcheck --load '%s' --op plug_cube", plugin);
    TEST_CHECK(run(args) == 0);
    snprintf(args, sizeof args, "gradcheck --load '%s' --load '%s' --list", plugin, plugin);
    TEST_CHECK(run(args) == 2 && has("already exists"));
    /* Objects built against another tg_op_def layout, or not saying which:
     * refused, not misread. */
    snprintf(args, sizeof args, "gradcheck --load '%s' --op plug_cube", oldabi);
    TEST_CHECK_MSG(run(args) == 2 && has("built against op layout 1"), "%s", out);
    snprintf(args, sizeof args, "bench --load '%s' --list", noabi);
    TEST_CHECK_MSG(run(args) == 2 && has("exports no tg_user_ops_abi"), "%s", out);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: test_cli TAPEGRAD PLUGIN.so OLDABI_PLUGIN.so NOABI_PLUGIN.so\n");
        return 2;
    }
    exe = argv[1];
    plugin = argv[2];
    oldabi = argv[3];
    noabi = argv[4];
    test_all();
    test_one();
    test_usage_errors();
    test_user_ops();
    free(out);
    return test_report("test_cli");
}
