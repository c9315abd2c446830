/* test_ops_f32.c — for every registered op and sample variant, the f32
 * forward agrees with the f64 forward at the same inputs (the f64 sample
 * rounded to f32), within an f32 tolerance: |y32 - y64| <= s * (1e-5 *
 * max(1, max|y64|) + 1e-4 |y64|), s = the op's check_tol_scale (or 1).
 * Also: float inputs of one dtype give an output of that dtype, and
 * integer outputs agree exactly. Ops run at the node level (tg_node_run). */
#include "tapegrad.h"
#include "test.h"

#include <math.h>
#include <string.h>

static int run(tg_node *n, const tg_node *proto, tg_tensor *const *in)
{
    *n = *proto;
    n->out = NULL;
    n->saved = NULL;
    for (int i = 0; i < n->n_in; i++)
        n->in[i] = in[i];
    return tg_node_run(n) == TG_OK;
}

static void check_variant(const tg_op_def *d, int v)
{
    tg_ctx_opts co = { .seed = 1234 + (uint64_t)v };
    tg_ctx *ctx = tg_ctx_new(&co);
    tg_node proto;
    memset(&proto, 0, sizeof proto);
    proto.def = d;
    proto.ctx = ctx;
    tg_status st = d->sample(&proto, TG_F64, v);
    TEST_CHECK_MSG(st == TG_OK && tg_ctx_status(ctx) == TG_OK, "%s variant %d: sample failed: %s",
                   d->name, v, tg_ctx_error(ctx));
    if (st != TG_OK || tg_ctx_status(ctx) != TG_OK) {
        tg_ctx_free(ctx);
        return;
    }
    tg_rng rng_after = *tg_ctx_rng(ctx);   /* both forwards see the same draws */
    tg_tensor *x64[TG_MAX_IN], *x32[TG_MAX_IN];
    int n_float = 0;
    for (int i = 0; i < proto.n_in; i++) {
        tg_tensor *x = proto.in[i];
        if (tg_dtype_is_float(x->dtype)) {
            x32[i] = tg_tensor_cast(ctx, x, TG_F32);
            x64[i] = tg_tensor_cast(ctx, x32[i], TG_F64);   /* exactly the f32 values */
            n_float++;
        } else {
            x32[i] = x64[i] = x;
        }
    }
    tg_node n64, n32;
    *tg_ctx_rng(ctx) = rng_after;
    int ok64 = run(&n64, &proto, x64);
    TEST_CHECK_MSG(ok64, "%s variant %d: f64 forward failed: %s", d->name, v, tg_ctx_error(ctx));
    *tg_ctx_rng(ctx) = rng_after;
    int ok32 = ok64 && run(&n32, &proto, x32);
    TEST_CHECK_MSG(!ok64 || ok32, "%s variant %d: f32 forward failed: %s", d->name, v, tg_ctx_error(ctx));
    if (!ok64 || !ok32) {
        tg_ctx_free(ctx);
        return;
    }
    const tg_tensor *y64 = n64.out, *y32 = n32.out;
    TEST_CHECK_MSG(tg_shape_equal(y64->ndim, y64->shape, y32->ndim, y32->shape),
                   "%s variant %d: f32 and f64 output shapes differ", d->name, v);
    int fl = tg_dtype_is_float(y64->dtype);
    if (fl && n_float) {
        TEST_CHECK_MSG(y64->dtype == TG_F64 && y32->dtype == TG_F32, "%s variant %d: outputs are %s and %s",
                       d->name, v, tg_dtype_name(y64->dtype), tg_dtype_name(y32->dtype));
    }
    double ymax = 0;
    for (int64_t k = 0; k < y64->numel; k++)
        if (isfinite(tg_tensor_get(y64, k)))
            ymax = fmax(ymax, fabs(tg_tensor_get(y64, k)));
    double s = d->check_tol_scale > 0 ? d->check_tol_scale : 1.0;
    int64_t bad = 0;
    for (int64_t k = 0; k < y64->numel && y64->numel == y32->numel; k++) {
        double a = tg_tensor_get(y32, k), b = tg_tensor_get(y64, k);
        double tol = fl ? s * (1e-5 * fmax(1.0, ymax) + 1e-4 * fabs(b)) : 0;
        if (!(fabs(a - b) <= tol) && bad++ == 0)
            TEST_CHECK_MSG(0, "%s variant %d: output element %lld: f32 %.9g, f64 %.17g (tol %.3g)",
                           d->name, v, (long long)k, a, b, tol);
    }
    if (!bad)
        TEST_CHECK(1);
    tg_ctx_free(ctx);
}

int main(void)
{
    for (size_t i = 0; i < tg_op_count(); i++) {
        const tg_op_def *d = tg_op_get(i);
        TEST_CHECK_MSG(d->sample && d->n_samples >= 1, "%s: no sample inputs", d->name);
        for (int v = 0; d->sample && v < d->n_samples; v++)
            check_variant(d, v);
    }
    return test_report("test_ops_f32");
}
