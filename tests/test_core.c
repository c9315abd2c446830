/* test_core.c — the context's arena, error state, RNG and tensor creation. */
#include "tapegrad.h"
#include "test.h"

#include <stdint.h>
#include <string.h>

static void test_arena(void)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .arena_bytes = 1000 });
    void *a = tg_ctx_alloc(ctx, 10, "t");
    void *b = tg_ctx_alloc(ctx, 3000, "t");   /* larger than the first chunk */
    TEST_CHECK(a && b && ((uintptr_t)a % 64) == 0 && ((uintptr_t)b % 64) == 0);
    size_t m = tg_ctx_arena_mark(ctx);
    void *c = tg_ctx_alloc(ctx, 100, "t");
    tg_ctx_arena_rewind(ctx, m);
    TEST_CHECK(tg_ctx_alloc(ctx, 100, "t") == c);    /* rewound space is reused */
    size_t cap = tg_ctx_arena_capacity(ctx);
    tg_ctx_reset(ctx);
    TEST_CHECK(tg_ctx_arena_used(ctx) == 0);
    TEST_CHECK(tg_ctx_alloc(ctx, 10, "t") == a);      /* same sequence, same places */
    TEST_CHECK(tg_ctx_alloc(ctx, 3000, "t") == b);
    TEST_CHECK(tg_ctx_arena_capacity(ctx) == cap);    /* nothing new */
    tg_ctx_set_poison(ctx, 1);
    unsigned char *p = tg_ctx_alloc(ctx, 64, "t");
    TEST_CHECK(p && p[0] == 0xFF && p[63] == 0xFF);
    float f; memcpy(&f, p, 4);
    TEST_CHECK(f != f);                               /* poison is NaN */
    /* An impossible request fails cleanly, naming who asked. */
    TEST_CHECK(tg_ctx_alloc(ctx, SIZE_MAX - 8, "bigop") == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_NOMEM);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "bigop") != NULL);
    tg_ctx_free(ctx);
}

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK && strcmp(tg_ctx_error(ctx), "") == 0);
    TEST_CHECK(tg_tensor_new(ctx, TG_F32, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1}) == NULL);
    TEST_CHECK(tg_ctx_status(ctx) == TG_ERR_ARG);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "ndim 7") != NULL);
    /* Sticky: the first error stays, later calls return NULL at once. */
    TEST_CHECK(tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2)) == NULL);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "ndim 7") != NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_tensor_new(ctx, TG_F32, TG_DIMS(2, -3)) == NULL);
    TEST_CHECK(strstr(tg_ctx_error(ctx), "negative dimension") != NULL);
    tg_ctx_reset(ctx);                                /* reset clears the error */
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    TEST_CHECK(tg_tensor_new(ctx, (tg_dtype)9, TG_DIMS(2)) == NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tg_tensor_from(ctx, TG_F32, TG_DIMS(2), NULL) == NULL);
    tg_ctx_clear_error(ctx);
    tg_tensor *i = tg_tensor_zeros(ctx, TG_I32, TG_DIMS(3));
    TEST_CHECK(tg_tensor_requires_grad(i) == TG_ERR_ARG);
    TEST_CHECK(strcmp(tg_status_str(TG_ERR_SHAPE), "shape error") == 0);
    tg_ctx_free(ctx);
}

static void test_rng(void)
{
    /* xoshiro256** seeded by splitmix64(42): values from an independent
     * implementation of the published algorithms. */
    tg_rng r;
    tg_rng_seed(&r, 42);
    TEST_CHECK(tg_rng_u64(&r) == 0x15780b2e0c2ec716ull);
    TEST_CHECK(tg_rng_u64(&r) == 0x6104d9866d113a7eull);
    TEST_CHECK(tg_rng_u64(&r) == 0xae17533239e499a1ull);

    tg_ctx *a = tg_ctx_new(&(tg_ctx_opts){ .seed = 7 });
    tg_ctx *b = tg_ctx_new(&(tg_ctx_opts){ .seed = 7 });
    tg_tensor *x = tg_tensor_randn(a, TG_F32, TG_DIMS(1000), 0, 1);
    tg_tensor *y = tg_tensor_randn(b, TG_F32, TG_DIMS(1000), 0, 1);
    TEST_CHECK(memcmp(x->data, y->data, 4000) == 0);
    double mean = 0, var = 0;
    for (int i = 0; i < 1000; i++) mean += tg_tensor_get(x, i) / 1000;
    for (int i = 0; i < 1000; i++) var += pow(tg_tensor_get(x, i) - mean, 2) / 1000;
    TEST_CHECK(fabs(mean) < 0.1 && fabs(var - 1) < 0.15);
    tg_tensor *u = tg_tensor_rand(a, TG_F64, TG_DIMS(1000), -2, 3);
    double lo = 9, hi = -9;
    for (int i = 0; i < 1000; i++) {
        double v = tg_tensor_get(u, i);
        lo = v < lo ? v : lo; hi = v > hi ? v : hi;
    }
    TEST_CHECK(lo >= -2 && hi < 3 && lo < -1.9 && hi > 2.9);
    tg_ctx_free(a);
    tg_ctx_free(b);
}

static void test_tensors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *s = tg_tensor_scalar(ctx, TG_F64, 2.5);
    TEST_CHECK(s && s->ndim == 0 && s->numel == 1 && tg_tensor_get(s, 0) == 2.5);
    tg_tensor *z = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(2, 3, 4));
    TEST_CHECK(z && z->numel == 24 && tg_tensor_get(z, 23) == 0.0);
    tg_tensor *f = tg_tensor_fill(ctx, TG_I32, TG_DIMS(5), 3);
    TEST_CHECK(f && tg_tensor_get(f, 4) == 3.0);
    float src[6] = {1, 2, 3, 4, 5, 6};
    tg_tensor *t = tg_tensor_from(ctx, TG_F32, TG_DIMS(2, 3), src);
    tg_tensor *d = tg_tensor_cast(ctx, t, TG_F64);
    TEST_CHECK(d && d->dtype == TG_F64 && tg_tensor_get(d, 5) == 6.0);
    TEST_CHECK(tg_tensor_get(t, 6) != tg_tensor_get(t, 6));  /* out of range: NaN */
    char buf[TG_SHAPE_STR_MAX];
    TEST_CHECK(strcmp(tg_shape_str(t->ndim, t->shape, buf, sizeof buf), "2x3") == 0);
    TEST_CHECK(strcmp(tg_shape_str(0, NULL, buf, sizeof buf), "scalar") == 0);
    tg_tensor *w = tg_tensor_wrap(ctx, TG_F32, TG_DIMS(6), src);
    TEST_CHECK(w && w->data == (void *)src);
    tg_tensor *e = tg_tensor_zeros(ctx, TG_F32, TG_DIMS(0, 3));
    TEST_CHECK(e && e->numel == 0);

    tg_status st;
    tg_tensor *p = tg_tensor_create(TG_F64, TG_DIMS(4, 4), &st);
    TEST_CHECK(p && st == TG_OK && tg_tensor_get(p, 15) == 0.0);
    TEST_CHECK(tg_tensor_requires_grad(p) == TG_OK && tg_tensor_grad_get(p, 3) == 0.0);
    tg_ctx_reset(ctx);                                /* persistent survives */
    tg_tensor_set(p, 3, 1.5);
    TEST_CHECK(tg_tensor_get(p, 3) == 1.5);
    tg_tensor_destroy(p);
    TEST_CHECK(tg_tensor_create(TG_F64, TG_DIMS(-1), &st) == NULL && st == TG_ERR_ARG);
    tg_ctx_free(ctx);
}

int main(void)
{
    test_arena();
    test_errors();
    test_rng();
    test_tensors();
    return test_report("test_core");
}
