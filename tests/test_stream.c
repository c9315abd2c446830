/* test_stream.c — outputs written with streaming stores (ops/stream.h) hold
 * exactly the bits of ordinary stores: every op that streams, f32 and f64,
 * 1 and 2 threads, at sizes that end in a partial chunk and a partial
 * vector, with NaN, infinities and signed zeros among the inputs. The
 * threshold is forced to 0 (everything aligned streams) and to "never". */
#include "tapegrad.h"
#include "stream.h"
#include "test.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

enum { N_OPS = 18 };
static const char *const names[N_OPS] = {
    "relu", "leaky_relu", "neg", "abs", "square", "sqrt", "clamp",
    "add_scalar", "rsub_scalar", "mul_scalar", "div_scalar", "rdiv_scalar",
    "add", "sub", "mul", "div", "maximum", "minimum",
};

static tg_tensor *apply(tg_ctx *ctx, int op, tg_tensor *a, tg_tensor *b)
{
    switch (op) {
    case 0:  return tg_relu(ctx, a);
    case 1:  return tg_leaky_relu(ctx, a, 0.125);
    case 2:  return tg_neg(ctx, a);
    case 3:  return tg_abs(ctx, a);
    case 4:  return tg_square(ctx, a);
    case 5:  return tg_sqrt(ctx, a);
    case 6:  return tg_clamp(ctx, a, -0.5, 0.75);
    case 7:  return tg_add_scalar(ctx, a, 0.3);
    case 8:  return tg_rsub_scalar(ctx, a, 1.7);
    case 9:  return tg_mul_scalar(ctx, a, -2.5);
    case 10: return tg_div_scalar(ctx, a, 3.0);
    case 11: return tg_rdiv_scalar(ctx, a, 0.7);
    case 12: return tg_add(ctx, a, b);
    case 13: return tg_sub(ctx, a, b);
    case 14: return tg_mul(ctx, a, b);
    case 15: return tg_div(ctx, a, b);
    case 16: return tg_maximum(ctx, a, b);
    default: return tg_minimum(ctx, a, b);
    }
}

/* The op on one element, written out here in the element type: the
 * independent reference both arms must match (NaN: any NaN). */
#define REF_BODY(T)                                                               \
    switch (op) {                                                                 \
    case 0:  return a < 0 ? (T)0 : a;                                             \
    case 1:  return a > 0 ? a : (T)0.125 * a;                                     \
    case 2:  return -a;                                                           \
    case 3:  return a < 0 ? -a : a == 0 ? (T)0 : a;                               \
    case 4:  return a * a;                                                        \
    case 5:  return (T)sqrt((double)a);                                           \
    case 6:  { T v = a < (T)-0.5 ? (T)-0.5 : a; return v > (T)0.75 ? (T)0.75 : v; } \
    case 7:  return a + (T)0.3;                                                   \
    case 8:  return (T)1.7 - a;                                                   \
    case 9:  return a * (T)-2.5;                                                  \
    case 10: return a / (T)3.0;                                                   \
    case 11: return (T)0.7 / a;                                                   \
    case 12: return a + b;                                                        \
    case 13: return a - b;                                                        \
    case 14: return a * b;                                                        \
    case 15: return a / b;                                                        \
    case 16: return (a != a || a > b) ? a : b;                                    \
    default: return (a != a || a < b) ? a : b;                                    \
    }
static float  ref_f32(int op, float a, float b)   { REF_BODY(float) }
static double ref_f64(int op, double a, double b) { REF_BODY(double) }

/* Element k of y against the reference, bit for bit (abs: -0 and +0 both
 * accepted; a NaN for a NaN). */
static int matches(tg_dtype dt, int op, const tg_tensor *a, const tg_tensor *b, const tg_tensor *y, int64_t k)
{
    double got = tg_tensor_get(y, k), want;
    if (dt == TG_F32)
        want = ref_f32(op, (float)tg_tensor_get(a, k), (float)tg_tensor_get(b, k));
    else
        want = ref_f64(op, tg_tensor_get(a, k), tg_tensor_get(b, k));
    if (want != want)
        return got != got;
    if (op == 3)
        return got == want;
    return memcmp(&got, &want, sizeof got) == 0;
}

static void fill(tg_tensor *t, tg_rng *r)
{
    static const double special[] = { NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e-40, -1e-310 };
    for (int64_t k = 0; k < t->numel; k++) {
        double v = 4 * tg_rng_uniform(r) - 2;
        if (k % 97 == 5)
            v = special[(k / 97) % 7];
        tg_tensor_set(t, k, v);
    }
}

static void check(tg_dtype dt, int threads, int64_t n)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .n_threads = threads });
    tg_rng r;
    tg_rng_seed(&r, 5 + (uint64_t)n);
    tg_tensor *a = tg_tensor_new(ctx, dt, TG_DIMS(n));
    tg_tensor *b = tg_tensor_new(ctx, dt, TG_DIMS(n));
    TEST_CHECK(a && b);
    if (!a || !b) {
        tg_ctx_free(ctx);
        return;
    }
    fill(a, &r);
    fill(b, &r);
    size_t bytes = (size_t)n * tg_dtype_size(dt);
    for (int op = 0; op < N_OPS; op++) {
        tg_stream_set_min_bytes(SIZE_MAX, 1);
        tg_tensor *plain = apply(ctx, op, a, b);
        tg_stream_set_min_bytes(0, 1);
        tg_tensor *streamed = apply(ctx, op, a, b);
        TEST_CHECK_MSG(plain && streamed, "%s: %s", names[op], tg_ctx_error(ctx));
        if (!plain || !streamed)
            break;
        TEST_CHECK(((uintptr_t)streamed->data & 63) == 0);   /* so it did stream */
        TEST_CHECK_MSG(memcmp(plain->data, streamed->data, bytes) == 0, "%s %s, %d threads, n = %lld",
                       names[op], tg_dtype_name(dt), threads, (long long)n);
        int64_t bad = -1;
        for (int64_t k = 0; k < n && bad < 0; k++)
            if (!matches(dt, op, a, b, streamed, k))
                bad = k;
        TEST_CHECK_MSG(bad < 0, "%s %s, %d threads, n = %lld: element %lld is %.9g, expected the reference",
                       names[op], tg_dtype_name(dt), threads, (long long)n, (long long)bad,
                       bad < 0 ? 0.0 : tg_tensor_get(streamed, bad));
    }
    tg_stream_set_min_bytes(0, 0);
    tg_ctx_free(ctx);
}

/* softmax and log_softmax stream whole f32 rows of a multiple of 16 (each
 * row then starts 64-byte aligned), rows of 2048 or more each during the
 * next row's exps (smx_row.h): rows of 4096, 2064 (a last part under one
 * 64-element block), 2048 and 80 (the row-at-a-time path), one row or
 * many, 1 and 2 threads (37x4096, 40x2064 and 900x80 are large enough to
 * be split), with a NaN row, an infinite one and one whose
 * range passes SMX_LO_MIN (the exps that scale by two factors) among
 * them: the same bits as without streaming. */
static void check_smx(int lf, int threads, int64_t rows, int64_t cols)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .n_threads = threads });
    tg_rng r;
    tg_rng_seed(&r, 77 + (uint64_t)cols);
    tg_tensor *x = tg_tensor_new(ctx, TG_F32, TG_DIMS(rows, cols));
    TEST_CHECK(x != NULL);
    for (int64_t k = 0; x && k < x->numel; k++)
        tg_tensor_set(x, k, 20 * tg_rng_uniform(&r) - 10);
    if (x && rows > 4) {
        tg_tensor_set(x, cols + 3, NAN);
        tg_tensor_set(x, 2 * cols + 1, INFINITY);
        tg_tensor_set(x, 3 * cols + cols / 2, -300);
        tg_tensor_set(x, 4 * cols, 200);
    }
    tg_tensor *(*fn)(tg_ctx *, tg_tensor *, int) = lf ? tg_log_softmax : tg_softmax;
    tg_stream_set_min_bytes(SIZE_MAX, 1);
    tg_tensor *plain = x ? fn(ctx, x, -1) : NULL;
    tg_stream_set_min_bytes(0, 1);
    tg_tensor *streamed = x ? fn(ctx, x, -1) : NULL;
    tg_stream_set_min_bytes(0, 0);
    TEST_CHECK_MSG(plain && streamed, "%s: %s", lf ? "log_softmax" : "softmax", tg_ctx_error(ctx));
    if (plain && streamed) {
        TEST_CHECK(((uintptr_t)streamed->data & 63) == 0);   /* so it could stream */
        TEST_CHECK_MSG(memcmp(plain->data, streamed->data, (size_t)(rows * cols) * sizeof(float)) == 0,
                       "%s %lldx%lld, %d threads", lf ? "log_softmax" : "softmax", (long long)rows,
                       (long long)cols, threads);
    }
    tg_ctx_free(ctx);
}

/* A context of one thread used inside a user's OpenMP region: per-part
 * scratch is indexed by the part (0), not by the calling thread's number
 * in the user's region (1 here: the streamed rows' scratch, and the
 * column sums of a softmax over a leading axis, were written past their
 * end; memcheck (that one) and AddressSanitizer see it). Each thread's
 * softmax and log_softmax, over the last axis and the first, must equal
 * the same computed outside the region. */
static void check_user_region(void)
{
#ifdef _OPENMP
    enum { R = 3, C = 2048, K = 4 };
    static float want[K][R * C], got[2][K][R * C];
    int ok[2] = { 0, 0 };
    for (int k = 0; k < K; k++) {
        tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 4, .n_threads = 1 });
        tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(R, C), -4, 4);
        tg_tensor *y = x ? ((k & 1) ? tg_log_softmax : tg_softmax)(ctx, x, k < 2 ? -1 : 0) : NULL;
        TEST_CHECK(y != NULL);
        if (y)
            memcpy(want[k], y->data, sizeof want[k]);
        tg_ctx_free(ctx);
    }
    tg_stream_set_min_bytes(0, 1);
#pragma omp parallel num_threads(2)
    {
        int t = omp_get_thread_num();
        int good = t < 2;
        for (int k = 0; k < K && good; k++) {
            tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 4, .n_threads = 1, .arena_bytes = 4096 });
            tg_tensor *x = ctx ? tg_tensor_rand(ctx, TG_F32, TG_DIMS(R, C), -4, 4) : NULL;
            tg_tensor *y = x ? ((k & 1) ? tg_log_softmax : tg_softmax)(ctx, x, k < 2 ? -1 : 0) : NULL;
            good = y != NULL;
            if (y)
                memcpy(got[t][k], y->data, sizeof got[t][k]);
            tg_ctx_free(ctx);
        }
        if (t < 2)
            ok[t] = good;
    }
    tg_stream_set_min_bytes(0, 0);
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < K; k++)
            TEST_CHECK_MSG(ok[t] && !memcmp(got[t][k], want[k], sizeof want[k]), "%s over axis %d in a "
                           "user's OpenMP thread %d", (k & 1) ? "log_softmax" : "softmax", k < 2 ? -1 : 0, t);
#endif
}

int main(void)
{
    /* 200003 and 70001: chunks of 1024, a last one of 315 or 369 (a partial
     * vector), and with two threads parts that end inside a chunk; 16 and 1:
     * one partial chunk. */
    static const int64_t sizes[] = { 200003, 70001, 16, 1 };
    for (int d = 0; d < 2; d++)
        for (int threads = 1; threads <= 2; threads++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
                check(d ? TG_F64 : TG_F32, threads, sizes[s]);
    static const int64_t smx_shapes[][2] = { {37, 4096}, {9, 2064}, {40, 2064}, {1, 2048}, {6, 2048}, {900, 80} };
    for (int lf = 0; lf < 2; lf++)
        for (int threads = 1; threads <= 2; threads++)
            for (size_t s = 0; s < sizeof smx_shapes / sizeof smx_shapes[0]; s++)
                check_smx(lf, threads, smx_shapes[s][0], smx_shapes[s][1]);
    check_user_region();
    /* The machine's threshold: never under 1 MiB (stream.c clamps it). */
    TEST_CHECK(tg_stream_min_bytes() >= ((size_t)1 << 20));
    return test_report("test_stream");
}
