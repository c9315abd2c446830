/* test_par.c — threads never change a result: the parameter store's loops
 * (zero_grad, clipping) and every optimizer's step (also the step that
 * zeroes the gradients), on blocks large enough
 * to be split, give bit-identical values for 1, 2 and 3 threads; the same
 * for ops on tensors above the threading threshold (forward and VJP), and
 * for a short training run of an MLP. (GEMM: tests/test_gemm.c.) */
#include "tapegrad.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

#define BIG 150001   /* elements: several threads' worth, odd */

/* A store with one BIG-element parameter and a small one, values and
 * gradients from a fixed stream. */
static tg_params *make_store(tg_dtype dt, int threads)
{
    tg_params *p = tg_params_new(dt);
    tg_tensor *a = tg_params_add(p, "a.weight", TG_DIMS(BIG), NULL);
    tg_tensor *b = tg_params_add(p, "b.bias", TG_DIMS(7), NULL);
    tg_params_set_threads(p, threads);
    tg_rng r;
    tg_rng_seed(&r, 5);
    tg_tensor *ts[2] = { a, b };
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < ts[k]->numel; i++) {
            tg_tensor_set(ts[k], i, tg_rng_uniform(&r) - 0.5);
            double g = tg_rng_uniform(&r) - 0.5;
            if (dt == TG_F32)
                ((float *)ts[k]->grad)[i] = (float)g;
            else
                ((double *)ts[k]->grad)[i] = g;
        }
    return p;
}

static void test_optimizers(void)
{
    for (int d = 0; d < 2; d++)
        for (int kind = TG_OPTIM_SGD; kind <= TG_OPTIM_ADAGRAD; kind++) {
            tg_dtype dt = d ? TG_F64 : TG_F32;
            size_t es = tg_dtype_size(dt);
            void *ref = NULL, *ref_g = NULL;
            size_t bytes = 0;
            double ref_norm = 0;
            for (int threads = 1; threads <= 3; threads++) {
                tg_params *p = make_store(dt, threads);
                TEST_CHECK(tg_params_threads(p) == threads);
                tg_optim_config c = tg_optim_defaults((tg_optim_kind)kind, 1e-2);
                c.momentum = kind == TG_OPTIM_SGD || kind == TG_OPTIM_RMSPROP ? 0.9 : 0;
                c.weight_decay = 0.01;
                tg_optim *o = tg_optim_new(p, &c, NULL, 0);
                double norm = 0;
                for (int s = 0; s < 3; s++) {
                    norm += tg_clip_grad_norm(p, 50.0);   /* scales: the norm is ~120 */
                    tg_clip_grad_value(p, 0.4);
                    tg_optim_step(o);
                }
                bytes = (size_t)tg_params_len(p) * es;
                if (threads == 1) {
                    ref = malloc(bytes);
                    ref_g = malloc(bytes);
                    memcpy(ref, tg_params_values(p), bytes);
                    memcpy(ref_g, tg_params_grads(p), bytes);
                    ref_norm = norm;
                } else {
                    TEST_CHECK_MSG(memcmp(ref, tg_params_values(p), bytes) == 0, "%s %s, %d threads: values",
                                   tg_optim_kind_name((tg_optim_kind)kind), tg_dtype_name(dt), threads);
                    TEST_CHECK(memcmp(ref_g, tg_params_grads(p), bytes) == 0);
                    TEST_CHECK(norm == ref_norm);
                }
                /* The fused step: the same values, and the gradients zeroed. */
                tg_params *q = make_store(dt, threads);
                tg_optim *oq = tg_optim_new(q, &c, NULL, 0);
                for (int s = 0; s < 3; s++) {
                    tg_clip_grad_norm(q, 50.0);
                    tg_clip_grad_value(q, 0.4);
                    if (s < 2)
                        tg_optim_step(oq);
                    else
                        TEST_CHECK(tg_optim_step_and_zero_grad(oq) == TG_OK);
                }
                TEST_CHECK(memcmp(tg_params_values(q), tg_params_values(p), bytes) == 0);
                const unsigned char *gq = tg_params_grads(q);
                size_t nzq = 0;
                for (size_t i = 0; i < bytes; i++)
                    nzq += gq[i] != 0;
                TEST_CHECK(nzq == 0);
                tg_optim_free(oq);
                tg_params_free(q);
                tg_params_zero_grad(p);
                const unsigned char *g = tg_params_grads(p);
                size_t nz = 0;
                for (size_t i = 0; i < bytes; i++)
                    nz += g[i] != 0;
                TEST_CHECK(nz == 0);
                tg_optim_free(o);
                tg_params_free(p);
            }
            free(ref);
            free(ref_g);
        }
}

/* ---- ops ------------------------------------------------------------------
 * Each case records an op (or a few) on large inputs, runs the VJP from a
 * random cotangent, and snapshots the output and every input gradient; the
 * snapshots for 2 and 3 threads must equal the 1-thread one byte for byte. */
typedef tg_tensor *(*build_fn)(tg_ctx *ctx, tg_tensor **in);

typedef struct pcase {
    const char *name;
    int         n_in;
    int         nd[3];
    int64_t     shape[3][3];
    build_fn    f;
} pcase;

static tg_tensor *b_relu(tg_ctx *c, tg_tensor **in) { return tg_relu(c, in[0]); }
static tg_tensor *b_exp(tg_ctx *c, tg_tensor **in) { return tg_exp(c, in[0]); }
static tg_tensor *b_gelu(tg_ctx *c, tg_tensor **in) { return tg_gelu(c, in[0], TG_GELU_TANH); }
static tg_tensor *b_gelu_erf(tg_ctx *c, tg_tensor **in) { return tg_gelu(c, in[0], TG_GELU_ERF); }
static tg_tensor *b_softplus(tg_ctx *c, tg_tensor **in) { return tg_softplus(c, in[0]); }
static tg_tensor *b_add(tg_ctx *c, tg_tensor **in) { return tg_add(c, in[0], in[1]); }
static tg_tensor *b_mul(tg_ctx *c, tg_tensor **in) { return tg_mul(c, in[0], in[1]); }
static tg_tensor *b_sub(tg_ctx *c, tg_tensor **in) { return tg_sub(c, in[0], in[1]); }
static tg_tensor *b_div(tg_ctx *c, tg_tensor **in) { return tg_div(c, in[0], in[1]); }
static tg_tensor *b_max(tg_ctx *c, tg_tensor **in) { return tg_maximum(c, in[0], in[1]); }
static tg_tensor *b_where(tg_ctx *c, tg_tensor **in)
{
    return tg_where(c, tg_detach(c, in[0]), in[1], in[2]);   /* mask: nonzero values */
}
static tg_tensor *b_mul_scalar(tg_ctx *c, tg_tensor **in) { return tg_mul_scalar(c, in[0], 1.5); }
static tg_tensor *b_softmax_last(tg_ctx *c, tg_tensor **in) { return tg_softmax(c, in[0], -1); }
static tg_tensor *b_softmax_mid(tg_ctx *c, tg_tensor **in) { return tg_softmax(c, in[0], 1); }
static tg_tensor *b_softmax_first(tg_ctx *c, tg_tensor **in) { return tg_softmax(c, in[0], 0); }
static tg_tensor *b_logsoftmax_last(tg_ctx *c, tg_tensor **in) { return tg_log_softmax(c, in[0], -1); }
static tg_tensor *b_logsoftmax_mid(tg_ctx *c, tg_tensor **in) { return tg_log_softmax(c, in[0], 1); }
static tg_tensor *b_logsoftmax_first(tg_ctx *c, tg_tensor **in) { return tg_log_softmax(c, in[0], 0); }
static tg_tensor *ce(tg_ctx *c, tg_tensor *x, tg_reduction r)
{
    tg_tensor *lab = tg_tensor_new(c, TG_I32, TG_DIMS(x->shape[0]));
    for (int64_t i = 0; i < x->shape[0]; i++)
        ((int32_t *)lab->data)[i] = (int32_t)((i * 7919) % x->shape[1]);
    return tg_cross_entropy(c, x, lab, r);
}
static tg_tensor *b_ce_mean(tg_ctx *c, tg_tensor **in) { return ce(c, in[0], TG_REDUCE_MEAN); }
static tg_tensor *b_ce_none(tg_ctx *c, tg_tensor **in) { return ce(c, in[0], TG_REDUCE_NONE); }
static tg_tensor *b_bn(tg_ctx *c, tg_tensor **in) { return tg_batch_norm(c, in[0], in[1], in[2], 1e-5, NULL); }
static tg_tensor *b_ln(tg_ctx *c, tg_tensor **in) { return tg_layer_norm(c, in[0], in[1], in[2], 1e-5); }
static const int ax_last[1] = { -1 }, ax_first[1] = { 0 }, ax_02[2] = { 0, 2 }, ax_1[1] = { 1 };
static tg_tensor *b_sum_last(tg_ctx *c, tg_tensor **in) { return tg_sum(c, in[0], ax_last, 1, 0); }
static tg_tensor *b_sum_all(tg_ctx *c, tg_tensor **in) { return tg_sum_all(c, in[0]); }
static tg_tensor *b_mean_last(tg_ctx *c, tg_tensor **in) { return tg_mean(c, in[0], ax_last, 1, 0); }
static tg_tensor *b_sum_first(tg_ctx *c, tg_tensor **in) { return tg_sum(c, in[0], ax_first, 1, 1); }
static tg_tensor *b_mean_02(tg_ctx *c, tg_tensor **in) { return tg_mean(c, in[0], ax_02, 2, 0); }
static tg_tensor *b_var_1(tg_ctx *c, tg_tensor **in) { return tg_var(c, in[0], ax_1, 1, 0, 1); }
static tg_tensor *b_var_first(tg_ctx *c, tg_tensor **in) { return tg_var(c, in[0], ax_first, 1, 0, 0); }
static tg_tensor *b_max_last(tg_ctx *c, tg_tensor **in) { return tg_max(c, in[0], ax_last, 1, 0); }
static tg_tensor *b_min_first(tg_ctx *c, tg_tensor **in) { return tg_min(c, in[0], ax_first, 1, 0); }
static tg_tensor *b_lse_1(tg_ctx *c, tg_tensor **in) { return tg_logsumexp(c, in[0], ax_1, 1, 1); }
static tg_tensor *b_lse_first(tg_ctx *c, tg_tensor **in) { return tg_logsumexp(c, in[0], ax_first, 1, 0); }
static tg_tensor *b_dropout(tg_ctx *c, tg_tensor **in) { return tg_dropout(c, in[0], 0.3, 12345); }

static const pcase cases[] = {
    { "relu",  1, {2}, { {300, 700} }, b_relu },
    { "exp",   1, {1}, { {100003} }, b_exp },
    { "gelu",  1, {3}, { {3, 200, 170} }, b_gelu },
    /* 16-lane kernels with a masked tail: sizes not a multiple of 16 */
    { "gelu erf", 1, {3}, { {3, 200, 171} }, b_gelu_erf },
    { "softplus", 1, {3}, { {3, 200, 171} }, b_softplus },
    { "mul_scalar", 1, {2}, { {256, 513} }, b_mul_scalar },
    { "add flat", 2, {2, 2}, { {300, 700}, {300, 700} }, b_add },
    { "add bias (rows, columns)", 2, {2, 1}, { {128, 1024}, {1024} }, b_add },
    { "add bias, short rows", 2, {2, 1}, { {4096, 40}, {40} }, b_add },
    { "mul column (row lanes)", 2, {2, 2}, { {700, 300}, {700, 1} }, b_mul },
    { "sub 3-D broadcast", 2, {3, 2}, { {40, 50, 60}, {50, 1} }, b_sub },
    { "div outer broadcast", 2, {3, 3}, { {30, 40, 60}, {30, 1, 60} }, b_div },
    { "maximum", 2, {2, 1}, { {400, 300}, {300} }, b_max },
    { "where", 3, {2, 2, 1}, { {200, 400}, {200, 400}, {400} }, b_where },
    { "softmax rows", 1, {2}, { {500, 300} }, b_softmax_last },
    { "softmax middle axis", 1, {3}, { {20, 50, 90} }, b_softmax_mid },
    { "softmax axis 0 (by columns)", 1, {2}, { {100, 900} }, b_softmax_first },
    { "log_softmax rows (blocks of 64 and a tail)", 1, {2}, { {500, 229} }, b_logsoftmax_last },
    { "log_softmax middle axis", 1, {3}, { {20, 50, 90} }, b_logsoftmax_mid },
    { "log_softmax axis 0", 1, {2}, { {100, 900} }, b_logsoftmax_first },
    { "cross_entropy mean", 1, {2}, { {700, 100} }, b_ce_mean },
    { "cross_entropy none", 1, {2}, { {700, 100} }, b_ce_none },
    { "batch_norm (N, C)", 3, {2, 1, 1}, { {256, 520}, {520}, {520} }, b_bn },
    { "batch_norm (N, C, S)", 3, {3, 1, 1}, { {64, 70, 30}, {70}, {70} }, b_bn },
    { "layer_norm", 3, {2, 1, 1}, { {300, 520}, {520}, {520} }, b_ln },
    { "dropout", 1, {2}, { {300, 700} }, b_dropout },
    { "sum last axis", 1, {2}, { {500, 300} }, b_sum_last },
    { "sum of all, 300000 (chunked)", 1, {2}, { {600, 500} }, b_sum_all },
    { "mean last axis, runs of 150000 (chunked)", 1, {2}, { {3, 150000} }, b_mean_last },
    { "sum axis 0 (by columns)", 1, {2}, { {300, 500} }, b_sum_first },
    { "mean axes (0, 2)", 1, {3}, { {30, 40, 70} }, b_mean_02 },
    { "var middle axis, 2 blocks", 1, {3}, { {2, 300, 200} }, b_var_1 },
    { "var axis 0", 1, {2}, { {300, 500} }, b_var_first },
    { "max last axis", 1, {2}, { {500, 300} }, b_max_last },
    { "min axis 0", 1, {2}, { {300, 500} }, b_min_first },
    { "logsumexp middle axis", 1, {3}, { {20, 60, 90} }, b_lse_1 },
    { "logsumexp axis 0", 1, {2}, { {300, 500} }, b_lse_first },
};

/* The output and the input gradients of case k on `threads` threads. */
static unsigned char *run_case(const pcase *pc, tg_dtype dt, int threads, size_t *bytes)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 9, .n_threads = threads });
    tg_tensor *in[3];
    for (int i = 0; i < pc->n_in; i++) {
        in[i] = tg_tensor_rand(ctx, dt, pc->nd[i], pc->shape[i], 0.25, 2.0);
        tg_tensor *sign = tg_tensor_rand(ctx, dt, pc->nd[i], pc->shape[i], 0, 1);
        for (int64_t k = 0; k < in[i]->numel; k++)        /* both signs, |x| >= 0.25 */
            if (tg_tensor_get(sign, k) < 0.5)
                tg_tensor_set(in[i], k, -tg_tensor_get(in[i], k));
        tg_tensor_requires_grad(in[i]);
    }
    tg_tensor *out = pc->f(ctx, in);
    tg_tensor *seed = out ? tg_tensor_rand(ctx, dt, out->ndim, out->shape, -1, 1) : NULL;
    unsigned char *buf = NULL;
    *bytes = 0;
    if (seed && tg_backward_seed(ctx, out, seed) == TG_OK) {
        size_t es = tg_dtype_size(dt), n = (size_t)out->numel * es;
        for (int i = 0; i < pc->n_in; i++)
            n += (size_t)in[i]->numel * es;
        buf = malloc(n);
        size_t off = (size_t)out->numel * es;
        memcpy(buf, out->data, off);
        for (int i = 0; i < pc->n_in; i++) {
            memcpy(buf + off, in[i]->grad, (size_t)in[i]->numel * es);
            off += (size_t)in[i]->numel * es;
        }
        *bytes = n;
    } else {
        fprintf(stderr, "  %s: %s\n", pc->name, tg_ctx_error(ctx));
    }
    tg_ctx_free(ctx);
    return buf;
}

static void test_ops(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int d = 0; d < 2; d++) {
            tg_dtype dt = d ? TG_F64 : TG_F32;
            size_t n1, n;
            unsigned char *ref = run_case(&cases[k], dt, 1, &n1);
            TEST_CHECK_MSG(ref != NULL, "%s %s", cases[k].name, tg_dtype_name(dt));
            for (int threads = 2; ref && threads <= 3; threads++) {
                unsigned char *got = run_case(&cases[k], dt, threads, &n);
                TEST_CHECK_MSG(got && n == n1 && memcmp(ref, got, n) == 0, "%s %s, %d threads",
                               cases[k].name, tg_dtype_name(dt), threads);
                free(got);
            }
            free(ref);
        }
}

int main(void)
{
    test_optimizers();
    test_ops();
    return test_report("test_par");
}
