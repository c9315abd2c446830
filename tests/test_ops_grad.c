/* test_ops_grad.c — every registered op, every sample variant, gradient-
 * checked by the library's checker in f64 and in f32 (the f32 VJP against
 * f64 finite differences), with all VJP contracts. Table-driven over the
 * registry: a new op is covered with no change here, and an op without
 * sample inputs fails. */
#include "tapegrad.h"
#include "test.h"

#include <string.h>

static void check_op(const tg_op_def *d)
{
    TEST_CHECK_MSG(d->name && tg_op_find(d->name) == d, "op name %s is not unique in the registry",
                   d->name ? d->name : "(null)");
    TEST_CHECK_MSG(d->sample != NULL && d->n_samples >= 1,
                   "%s: no sample inputs (.sample and .n_samples >= 1 are required)", d->name);
    if (!d->sample || d->n_samples < 1)
        return;
    for (int f32 = 0; f32 <= 1; f32++)
        for (int v = 0; v < d->n_samples; v++) {
            tg_gradcheck_opts o = { .f32 = f32, .single_variant = 1, .variant = v };
            tg_gradcheck_report r;
            tg_status st = tg_gradcheck_op(d, &o, &r);
            TEST_CHECK_MSG(st == TG_OK && r.passed, "%s", r.message);
            if (st != TG_OK || !r.passed)
                tg_gradcheck_report_print(&r, stderr);
            TEST_CHECK_MSG(st != TG_OK || r.n_variants == 1, "%s variant %d: %d variants checked",
                           d->name, v, r.n_variants);
        }
}

int main(void)
{
    TEST_CHECK(tg_op_count() >= 1);
    for (size_t i = 0; i < tg_op_count(); i++)
        check_op(tg_op_get(i));
    TEST_CHECK(tg_op_get(tg_op_count()) == NULL);
    return test_report("test_ops_grad");
}
