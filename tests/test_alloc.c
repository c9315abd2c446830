/* test_alloc.c — after the first step of a recorded computation, repeating
 * training step (forward, backward, clipping, optimizer) + reset
 * allocates nothing on the heap. Counted twice: through
 * tapegrad's allocator hook, and (outside sanitizer builds, which interpose
 * malloc themselves) by interposing malloc/calloc/realloc for the whole
 * process, which also catches any allocation that bypasses the hook. */
#include "tapegrad.h"
#include "test.h"

#include <stdlib.h>

static long hook_count;

static void *counting_alloc(void *ud, void *ptr, size_t old_size, size_t size)
{
    (void)ud; (void)old_size;
    if (size == 0) { free(ptr); return NULL; }
    hook_count++;
    return realloc(ptr, size);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define INTERPOSE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define INTERPOSE 0
#endif
#endif
#ifndef INTERPOSE
#define INTERPOSE 1
#endif

/* Valgrind replaces malloc & co in the executable as well, so under it the
 * interposer below never runs (meson test --setup=valgrind): then only the
 * hook is counted. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#if INTERPOSE
/* glibc exports its allocator under these names; forwarding to them lets
 * the test see every malloc in the process. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static long sys_count;
static int counting;
void *malloc(size_t n) { if (counting) sys_count++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { if (counting) sys_count++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { if (counting) sys_count++; return __libc_realloc(p, n); }
#else
static long sys_count;
static int counting;
#endif

/* One training step of a small MLP (dense, ReLU, batch norm, dropout,
 * softmax cross-entropy, Adam), then a reset: what a training loop does. */
static tg_model *model;
static tg_optim *opt;
static float xb[32 * 64];
static int32_t yb[32];

static int step(tg_ctx *ctx)
{
    tg_tensor *x = tg_tensor_wrap(ctx, TG_F32, TG_DIMS(32, 64), xb);
    tg_tensor *y = tg_tensor_wrap(ctx, TG_I32, TG_DIMS(32), yb);
    tg_tensor *loss = tg_cross_entropy(ctx, tg_model_forward(ctx, model, x), y, TG_REDUCE_MEAN);
    tg_params_zero_grad(tg_model_params(model));
    int ok = tg_backward(ctx, loss) == TG_OK;
    tg_clip_grad_norm(tg_model_params(model), 5.0);
    ok &= tg_optim_step(opt) == TG_OK;
    tg_ctx_reset(ctx);
    return ok;
}

int main(void)
{
    tg_set_allocator(counting_alloc, NULL);
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .arena_bytes = 4096, .seed = 1 });
    TEST_CHECK(ctx != NULL);
    char err[200];
    model = tg_model_from_spec("64-48relu_bn_d0.1-48tanh_res-10", TG_F32, 5, err, sizeof err);
    TEST_CHECK_MSG(model != NULL, "%s", err);
    tg_optim_config cfg = tg_optim_defaults(TG_OPTIM_ADAM, 1e-3);
    opt = tg_optim_new(tg_model_params(model), &cfg, err, sizeof err);
    TEST_CHECK(opt != NULL);
    for (int i = 0; i < 32 * 64; i++) xb[i] = (float)((i * 37) % 101) / 101.0f;
    for (int i = 0; i < 32; i++) yb[i] = i % 10;

    /* The first steps may grow the arena (4 KiB start forces growth) and the tape. */
    TEST_CHECK(step(ctx));
    TEST_CHECK(step(ctx));
#if INTERPOSE
    /* The interposer sees allocations (so a zero below means something). */
    if (!RUNNING_ON_VALGRIND) {
        counting = 1;
        void *volatile probe = malloc(16);
        counting = 0;
        free(probe);
        TEST_CHECK(sys_count == 1);
        sys_count = 0;
    } else {
        printf("test_alloc: under valgrind: counting through the hook only\n");
    }
#endif
    long h0 = hook_count;
    counting = 1;
    int ok = 1;
    for (int i = 0; i < 50; i++)
        ok &= step(ctx);
    counting = 0;
    TEST_CHECK(ok);
    TEST_CHECK_MSG(hook_count == h0, "%ld allocations through the hook in 50 steps", hook_count - h0);
    TEST_CHECK_MSG(sys_count == 0, "%ld malloc calls in 50 steps", sys_count);

    tg_optim_free(opt);
    tg_model_free(model);
    tg_ctx_free(ctx);
    tg_set_allocator(NULL, NULL);
    return test_report("test_alloc");
}
