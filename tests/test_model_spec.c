/* test_model_spec.c — tg_model_from_spec: the layers a spec builds (checked
 * through tg_model_describe) and the refusals, each with its reason and
 * position. Regression cases found while writing the fuzz corpus live here
 * too (tests/fuzz/README.md lists them). */
#include "tg_nn.h"
#include "test.h"

#include <string.h>

/* The spec builds a model whose description holds every fragment. */
static void expect_layers(const char *spec, const char *const *frags, int n)
{
    char err[256] = "", desc[1024] = "";
    tg_model *m = tg_model_from_spec(spec, TG_F32, 1, err, sizeof err);
    TEST_CHECK_MSG(m != NULL, "%s: %s", spec, err);
    if (!m)
        return;
    tg_model_describe(m, desc, sizeof desc);
    for (int i = 0; i < n; i++)
        TEST_CHECK_MSG(strstr(desc, frags[i]) != NULL, "%s: '%s' not in:\n%s", spec, frags[i], desc);
    tg_model_free(m);
}

static void expect_refused(const char *spec, const char *why)
{
    char err[256] = "";
    tg_model *m = tg_model_from_spec(spec, TG_F32, 1, err, sizeof err);
    TEST_CHECK_MSG(m == NULL, "%s was accepted", spec);
    tg_model_free(m);
    TEST_CHECK_MSG(strstr(err, why) != NULL, "%s: '%s' not in '%s'", spec, why, err);
}

int main(void)
{
    expect_layers("4-3relu-2", (const char *[]){ "dense1: dense 4 -> 3", "act1: relu",
                                                 "dense2: dense 3 -> 2" }, 3);
    expect_layers("6-5relu_bn_d0.2-5tanh_res-3",
                  (const char *[]){ "bn1: batch norm 5", "dropout1: dropout p=0.2",
                                    "res1: residual", "  dense2: dense 5 -> 5", "  act2: tanh" }, 5);
    expect_layers("4-4gelu_ln-2softmax", (const char *[]){ "ln1: layer norm 4", "gelu", "softmax" }, 3);
    /* leaky_relu holds the modifier separator '_': it is still one name
     * (it used to be refused as "unknown modifier"); "leaky" is short for it. */
    expect_layers("3-3leaky_relu-2", (const char *[]){ "act1: leaky_relu" }, 1);
    expect_layers("3-3leaky_relu_bn_d0.5-3leaky-2",
                  (const char *[]){ "bn1: batch norm 3", "act1: leaky_relu", "dropout1",
                                    "act2: leaky_relu" }, 4);

    expect_refused("", "expected the input width first at position 1");
    expect_refused("784", "no layers after the input width");
    expect_refused("5--3", "empty layer at position 3");
    expect_refused("1-0", "expected a positive width at position 3");
    expect_refused("5-3relu_res", "a residual layer must keep its width");
    expect_refused("5-5relu_d1", "dropout needs a probability in [0, 1)");
    expect_refused("5-5bogus", "unknown activation 'bogus' at position 4");
    expect_refused("3-3leaky_relux-2", "unknown modifier");
    expect_refused("3-3leaky_reluu", "unknown modifier");
    expect_refused("5-5relu_xx", "unknown modifier 'xx' (bn, ln, res, d<p>) at position 9");
    return test_report("model_spec");
}
