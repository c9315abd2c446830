/* test_shape.c — the shape family (shape.c, index.c): hand-computed cases
 * (exact values and gradients), the tiled transpose against a naive loop, a
 * tensor passed twice to concat/stack, the descriptors, and the errors (each
 * returns NULL with a clear message and no crash). (Every sample variant is
 * gradient-checked by test_ops_grad.c, the PyTorch reference cases are in
 * test_reference.c.) */
#include "tapegrad.h"
#include "stream.h"
#include "test.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------- */

static tg_tensor *index_i32(tg_ctx *ctx, int nd, const int64_t *shape, const int32_t *v)
{
    return tg_tensor_from(ctx, TG_I32, nd, shape, v);
}

/* ---- hand-computed cases --------------------------------------------------- */

static void test_hand(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);

    /* transpose of [[1 2 3] [4 5 6]] is [[1 4] [2 5] [3 6]]; the VJP of a
     * transpose is the transpose of dy. */
    tg_tensor *x = tu_tensor(ctx, TG_F64, TG_DIMS(2, 3), NULL, 1);
    tg_tensor *y = tg_transpose(ctx, x, 0, -1);
    TEST_CHECK(tu_shape_is(y, TG_DIMS(3, 2)));
    tu_check_values("y", y, 0, (const double[]){1, 4, 2, 5, 3, 6}, 6, 0, 0);
    TEST_CHECK(tu_vjp(ctx, y, (const double[]){10, 40, 20, 50, 30, 60}) == TG_OK);
    tu_check_values("x", x, 1, (const double[]){10, 20, 30, 40, 50, 60}, 6, 0, 0);

    /* slice of 1..7 with start -6, stop -1, step 2: indices 1, 3, 5 */
    x = tu_tensor(ctx, TG_F64, TG_DIMS(7), NULL, 1);
    y = tg_slice(ctx, x, -1, -6, -1, 2);
    TEST_CHECK(tu_shape_is(y, TG_DIMS(3)));
    tu_check_values("y", y, 0, (const double[]){2, 4, 6}, 3, 0, 0);
    TEST_CHECK(tu_vjp(ctx, y, (const double[]){1, 2, 3}) == TG_OK);
    tu_check_values("x", x, 1, (const double[]){0, 1, 0, 2, 0, 3, 0}, 7, 0, 0);
    /* clamping: -100:100 is everything; 5:2 is empty */
    y = tg_slice(ctx, x, 0, -100, 100, 3);
    tu_check_values("y", y, 0, (const double[]){1, 4, 7}, 3, 0, 0);
    y = tg_slice(ctx, x, 0, 5, 2, 1);
    TEST_CHECK(tu_shape_is(y, TG_DIMS(0)));
    TEST_CHECK(tu_vjp(ctx, y, (const double[]){0}) == TG_OK);   /* an empty VJP: nothing changes */
    tu_check_values("x", x, 1, (const double[]){0, 1, 0, 2, 0, 3, 0}, 7, 0, 0);

    /* broadcast_to: x 2x1 -> 3x2x4. The VJP sums dy over axes 0 and 2. */
    x = tu_tensor(ctx, TG_F64, TG_DIMS(2, 1), (const double[]){1.5, -2}, 1);
    y = tg_broadcast_to(ctx, x, TG_DIMS(3, 2, 4));
    TEST_CHECK(tu_shape_is(y, TG_DIMS(3, 2, 4)));
    double want[24], dy[24], s0 = 0, s1 = 0;
    for (int i = 0; i < 24; i++) {
        want[i] = (i / 4) % 2 ? -2 : 1.5;
        dy[i] = i + 1;
        if ((i / 4) % 2) s1 += dy[i]; else s0 += dy[i];
    }
    tu_check_values("y", y, 0, want, 24, 0, 0);
    TEST_CHECK(tu_vjp(ctx, y, dy) == TG_OK);
    tu_check_values("x", x, 1, (const double[]){s0, s1}, 2, 0, 0);
    TEST_CHECK(s0 == 1 + 2 + 3 + 4 + 9 + 10 + 11 + 12 + 17 + 18 + 19 + 20);
    /* a scalar to 2x2: the VJP is the sum of dy */
    x = tu_tensor(ctx, TG_F32, 0, NULL, (const double[]){3}, 1);
    y = tg_broadcast_to(ctx, x, TG_DIMS(2, 2));
    tu_check_values("y", y, 0, (const double[]){3, 3, 3, 3}, 4, 0, 0);
    TEST_CHECK(tu_vjp(ctx, y, (const double[]){1, 2, 3, 4.5}) == TG_OK);
    tu_check_values("x", x, 1, (const double[]){10.5}, 1, 0, 0);

    /* reshape with -1, a scalar reshape; the VJP is a plain copy */
    x = tu_tensor(ctx, TG_F64, TG_DIMS(2, 3), NULL, 1);
    y = tg_reshape(ctx, x, TG_DIMS(-1, 2));
    TEST_CHECK(tu_shape_is(y, TG_DIMS(3, 2)));
    tu_check_values("y", y, 0, (const double[]){1, 2, 3, 4, 5, 6}, 6, 0, 0);
    TEST_CHECK(tu_vjp(ctx, y, (const double[]){6, 5, 4, 3, 2, 1}) == TG_OK);
    tu_check_values("x", x, 1, (const double[]){6, 5, 4, 3, 2, 1}, 6, 0, 0);
    x = tu_tensor(ctx, TG_F64, TG_DIMS(1, 1), (const double[]){7}, 1);
    y = tg_reshape(ctx, x, 0, NULL);
    TEST_CHECK(y && y->ndim == 0 && tg_tensor_get(y, 0) == 7);

    /* index_select along axis 1 with a repeated index: [[1 2 3] [4 5 6]]
     * columns 2 0 2 -> [[3 1 3] [6 4 6]]; the VJP adds both copies of col 2. */
    x = tu_tensor(ctx, TG_F64, TG_DIMS(2, 3), NULL, 1);
    tg_tensor *idx = index_i32(ctx, TG_DIMS(3), (const int32_t[]){2, 0, 2});
    y = tg_index_select(ctx, x, -1, idx);
    TEST_CHECK(tu_shape_is(y, TG_DIMS(2, 3)));
    tu_check_values("y", y, 0, (const double[]){3, 1, 3, 6, 4, 6}, 6, 0, 0);
    TEST_CHECK(tu_vjp(ctx, y, (const double[]){1, 2, 3, 4, 5, 6}) == TG_OK);
    tu_check_values("x", x, 1, (const double[]){2, 0, 4, 5, 0, 10}, 6, 0, 0);

    /* gather_rows with a 2-D index: out shape idx.shape + row shape */
    x = tu_tensor(ctx, TG_F32, TG_DIMS(3, 2), NULL, 1);
    idx = index_i32(ctx, TG_DIMS(2, 2), (const int32_t[]){1, 1, 0, 2});
    y = tg_gather_rows(ctx, x, idx);
    TEST_CHECK(tu_shape_is(y, TG_DIMS(2, 2, 2)));
    tu_check_values("y", y, 0, (const double[]){3, 4, 3, 4, 1, 2, 5, 6}, 8, 0, 0);
    TEST_CHECK(tu_vjp(ctx, y, (const double[]){1, 1, 1, 1, 1, 1, 1, 1}) == TG_OK);
    tu_check_values("x", x, 1, (const double[]){1, 1, 2, 2, 1, 1}, 6, 0, 0);

    /* stack along the last axis of 1-D inputs: columns */
    tg_tensor *a = tu_tensor(ctx, TG_F64, TG_DIMS(3), (const double[]){1, 2, 3}, 1);
    tg_tensor *b = tu_tensor(ctx, TG_F64, TG_DIMS(3), (const double[]){4, 5, 6}, 1);
    y = tg_stack(ctx, (tg_tensor *[]){a, b}, 2, -1);
    TEST_CHECK(tu_shape_is(y, TG_DIMS(3, 2)));
    tu_check_values("y", y, 0, (const double[]){1, 4, 2, 5, 3, 6}, 6, 0, 0);

    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* The same tensor twice: each slab's gradient is added. */
static void test_same_tensor_twice(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tu_tensor(ctx, TG_F64, TG_DIMS(2, 2), NULL, 1);
    tg_tensor *y = tg_concat(ctx, (tg_tensor *[]){x, x}, 2, 0);
    TEST_CHECK(tu_shape_is(y, TG_DIMS(4, 2)));
    tu_check_values("y", y, 0, (const double[]){1, 2, 3, 4, 1, 2, 3, 4}, 8, 0, 0);
    TEST_CHECK(tu_vjp(ctx, y, (const double[]){1, 2, 3, 4, 10, 20, 30, 40}) == TG_OK);
    tu_check_values("x", x, 1, (const double[]){11, 22, 33, 44}, 4, 0, 0);

    tg_tensor_zero_grad(x);
    y = tg_stack(ctx, (tg_tensor *[]){x, x, x}, 3, 1);
    TEST_CHECK(tu_shape_is(y, TG_DIMS(2, 3, 2)));
    tu_check_values("y", y, 0, (const double[]){1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4}, 12, 0, 0);
    TEST_CHECK(tu_vjp(ctx, y, (const double[]){1, 2, 10, 20, 100, 200, 3, 4, 30, 40, 300, 400}) == TG_OK);
    tu_check_values("x", x, 1, (const double[]){111, 222, 333, 444}, 4, 0, 0);
    TEST_CHECK(tg_ctx_status(ctx) == TG_OK);
    tg_ctx_free(ctx);
}

/* Elements of permute(x, perm) (x 3-D) unlike x at the naive index, or -1
 * for a wrong shape: y[idx[perm[0]], idx[perm[1]], idx[perm[2]]] = x[idx]. */
static int permute_wrong(tg_ctx *ctx, const tg_tensor *x, const int perm[3])
{
    tg_tensor *y = tg_permute(ctx, (tg_tensor *)x, perm);
    const int64_t *s = x->shape;
    if (!y || y->ndim != 3 || y->shape[0] != s[perm[0]] || y->shape[1] != s[perm[1]] || y->shape[2] != s[perm[2]])
        return -1;
    int bad = 0;
    int64_t idx[3];
    for (idx[0] = 0; idx[0] < s[0]; idx[0]++)
        for (idx[1] = 0; idx[1] < s[1]; idx[1]++)
            for (idx[2] = 0; idx[2] < s[2]; idx[2]++) {
                int64_t yi = (idx[perm[0]] * y->shape[1] + idx[perm[1]]) * y->shape[2] + idx[perm[2]];
                bad += tg_tensor_get(y, yi) != tg_tensor_get(x, (idx[0] * s[1] + idx[1]) * s[2] + idx[2]);
            }
    return bad;
}

/* The tiled transpose (with partial tiles and panels) and general permutes
 * (one whose walk is reordered into transposes) against a naive loop,
 * forward and VJP (into a fresh gradient, then adding), both dtypes, with
 * ordinary stores and with the streaming stores of large outputs (the
 * threshold forced to 0). */
static void test_transpose_sizes(void)
{
    static const int64_t sizes[][3] = { {1, 67, 131}, {3, 33, 65}, {2, 1, 40}, {1, 64, 64}, {2, 48, 80},
                                        {1, 256, 200} };
    enum { NS = sizeof sizes / sizeof sizes[0] };
    for (int st = 0; st < 2; st++)
    for (int dt = 0; dt < 2; dt++)
        for (int c = 0; c < NS; c++) {
            tg_stream_set_min_bytes(0, st);
            tg_ctx *ctx = tg_ctx_new(NULL);
            tg_ctx_set_poison(ctx, 1);
            int64_t B = sizes[c][0], M = sizes[c][1], N = sizes[c][2];
            tg_tensor *x = tg_tensor_rand(ctx, dt ? TG_F64 : TG_F32, TG_DIMS(B, M, N), -1, 1);
            tg_tensor_requires_grad(x);
            tg_tensor *y = tg_transpose(ctx, x, 1, 2);
            TEST_CHECK(tu_shape_is(y, TG_DIMS(B, N, M)));
            int bad = 0;
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++)
                        bad += tg_tensor_get(y, (b * N + j) * M + i) != tg_tensor_get(x, (b * M + i) * N + j);
            TEST_CHECK_MSG(bad == 0, "transpose %lldx%lldx%lld: %d wrong", (long long)B, (long long)M,
                           (long long)N, bad);
            double *dy = malloc(sizeof(double) * (size_t)(B * M * N));
            for (int64_t i = 0; i < B * M * N; i++)
                dy[i] = (double)(i % 97) - 48;
            TEST_CHECK(tu_vjp(ctx, y, dy) == TG_OK);
            TEST_CHECK(tu_vjp(ctx, y, dy) == TG_OK);   /* accumulates */
            bad = 0;
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++)
                        bad += tg_tensor_grad_get(x, (b * M + i) * N + j) != 2 * dy[(b * N + j) * M + i];
            TEST_CHECK_MSG(bad == 0, "transpose VJP %lldx%lldx%lld: %d wrong", (long long)B, (long long)M,
                           (long long)N, bad);

            /* permute (1, 2, 0), and (2, 1, 0), whose walk is reordered */
            static const int perms[2][3] = { {1, 2, 0}, {2, 1, 0} };
            for (int q = 0; q < 2; q++)
                TEST_CHECK_MSG(permute_wrong(ctx, x, perms[q]) == 0, "permute (%d, %d, %d) of %lldx%lldx%lld",
                               perms[q][0], perms[q][1], perms[q][2], (long long)B, (long long)M, (long long)N);
            free(dy);
            tg_ctx_free(ctx);
        }
    tg_stream_set_min_bytes(0, 0);
}

/* broadcast_to's VJP sums each repeated row in the walk's row-major order
 * (strided.h): upstream values whose f32 sum depends on the order (a large
 * one first, then ones that each round away) must give the sequential sum.
 * And a fresh gradient written by a transposing walk turns -0 into +0 (as
 * += from zeros would). */
static void test_walk_order_and_zero(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_poison(ctx, 1);
    enum { R = 3, C = 40 };
    tg_tensor *x = tg_tensor_rand(ctx, TG_F32, TG_DIMS(R, 1), -1, 1);
    TEST_CHECK(x && tg_tensor_requires_grad(x) == TG_OK);
    double dy[R * C];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            dy[r * C + c] = c == 0 ? 1e8 : 1.0 + r;
    TEST_CHECK(tu_vjp(ctx, tg_broadcast_to(ctx, x, 2, (const int64_t[]){R, C}), dy) == TG_OK);
    for (int r = 0; r < R; r++) {
        float want = 0;
        for (int c = 0; c < C; c++)
            want += (float)dy[r * C + c];
        TEST_CHECK_MSG((float)tg_tensor_grad_get(x, r) == want, "broadcast_to VJP row %d: %.9g, want %.9g", r,
                       tg_tensor_grad_get(x, r), (double)want);
    }

    /* z = x * 1 (its gradient fresh, kept), y = zᵀ, dy all -0 */
    enum { M = 40, N = 48 };
    tg_tensor *a = tg_tensor_rand(ctx, TG_F32, TG_DIMS(M, N), -1, 1);
    TEST_CHECK(a && tg_tensor_requires_grad(a) == TG_OK);
    tg_tensor *z = tg_mul_scalar(ctx, a, 1.0);
    tg_retain_grad(z);
    double *mz = malloc(sizeof(double) * M * N);
    TEST_CHECK(mz != NULL);
    for (int i = 0; mz && i < M * N; i++)
        mz[i] = -0.0;
    TEST_CHECK(mz && tu_vjp(ctx, tg_transpose(ctx, z, 0, 1), mz) == TG_OK);
    int neg = 0;
    for (int i = 0; z && z->grad && i < M * N; i++)
        neg += signbit(((const float *)z->grad)[i]) != 0;
    TEST_CHECK_MSG(z && z->grad && neg == 0, "transpose VJP into a fresh gradient: %d of -0 kept", neg);
    free(mz);
    tg_ctx_free(ctx);
}

/* ---- descriptors ----------------------------------------------------------- */

static void test_descriptors(void)
{
    static const char *const family[] = {
        "reshape", "permute", "slice", "concat", "stack", "broadcast_to", "index_select", "gather_rows",
    };
    for (size_t f = 0; f < sizeof family / sizeof family[0]; f++)
        tu_check_op(family[f], 2, 0);
    const tg_op_def *is = tg_op_find("index_select"), *gr = tg_op_find("gather_rows");
    TEST_CHECK(is && is->nondiff == 2u && gr && gr->nondiff == 2u);
    TEST_CHECK(tg_op_find("concat") && tg_op_find("concat")->n_in == TG_VARIADIC);
    TEST_CHECK(tg_op_find("stack") && tg_op_find("stack")->n_in == TG_VARIADIC);
}

/* ---- errors ---------------------------------------------------------------- */

static void test_errors(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *x = tu_tensor(ctx, TG_F64, TG_DIMS(2, 3), NULL, 1);
    tg_tensor *x32 = tu_tensor(ctx, TG_F32, TG_DIMS(2, 3), NULL, 1);
    tg_tensor *z = tu_tensor(ctx, TG_F64, TG_DIMS(3, 4), NULL, 1);

    /* reshape */
    TU_EXPECT_ERR(ctx, tg_reshape(ctx, x, TG_DIMS(4, 2)), TG_ERR_SHAPE,
              "reshape: cannot reshape 2x3 (6 elements) into 4x2 (8 elements)");
    TU_EXPECT_ERR(ctx, tg_reshape(ctx, x, TG_DIMS(4, -1)), TG_ERR_SHAPE, "reshape: cannot reshape 2x3 (6 elements) into 4x-1");
    TU_EXPECT_ERR(ctx, tg_reshape(ctx, x, TG_DIMS(-1, -1)), TG_ERR_ARG, "more than one -1");
    TU_EXPECT_ERR(ctx, tg_reshape(ctx, x, TG_DIMS(-2, -3)), TG_ERR_ARG, "negative dimension -2");
    TU_EXPECT_ERR(ctx, tg_reshape(ctx, x, 7, (const int64_t[]){1, 1, 1, 1, 1, 2, 3}), TG_ERR_ARG, "ndim 7");
    TU_EXPECT_ERR(ctx, tg_reshape(ctx, x, TG_DIMS(INT64_MAX / 2, 4)), TG_ERR_SHAPE, "too many elements");

    /* permute / transpose */
    TU_EXPECT_ERR(ctx, tg_permute(ctx, x, (const int[]){0, 0}), TG_ERR_ARG,
              "permute: perm (0, 0) is not a permutation of 0..1 for 2x3");
    TU_EXPECT_ERR(ctx, tg_permute(ctx, x, (const int[]){-1, 0}), TG_ERR_ARG, "perm (-1, 0) is not a permutation");
    TU_EXPECT_ERR(ctx, tg_permute(ctx, x, (const int[]){0, 2}), TG_ERR_ARG, "not a permutation");
    TU_EXPECT_ERR(ctx, tg_permute(ctx, x, NULL), TG_ERR_ARG, "NULL perm");
    TU_EXPECT_ERR(ctx, tg_transpose(ctx, x, 0, 2), TG_ERR_ARG, "transpose: axis 2 out of range for 2x3");
    TU_EXPECT_ERR(ctx, tg_transpose(ctx, x, -3, 1), TG_ERR_ARG, "axis -3 out of range");

    /* slice */
    TU_EXPECT_ERR(ctx, tg_slice(ctx, x, 2, 0, 1, 1), TG_ERR_ARG, "slice: axis 2 out of range for 2 dims");
    TU_EXPECT_ERR(ctx, tg_slice(ctx, x, 0, 0, 1, 0), TG_ERR_ARG, "slice: step must be >= 1, got 0");
    TU_EXPECT_ERR(ctx, tg_slice(ctx, x, 0, 0, 1, -1), TG_ERR_ARG, "step must be >= 1, got -1");

    /* concat / stack */
    TU_EXPECT_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x, x, z}, 3, 1), TG_ERR_SHAPE,
              "concat: input 2 has shape 3x4, input 0 has 2x3 (all dims but axis 1 must match)");
    TU_EXPECT_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x, z}, 2, 0), TG_ERR_SHAPE, "input 1 has shape 3x4");
    TU_EXPECT_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x, x}, 2, 2), TG_ERR_ARG, "concat: axis 2 out of range for 2 dims");
    TU_EXPECT_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x, x32}, 2, 0), TG_ERR_ARG, "concat: input 1 is f32, input 0 is f64");
    TU_EXPECT_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x}, 0, 0), TG_ERR_ARG, "concat: takes 1 to 16 inputs, got 0");
    tg_tensor *many[17];
    for (int i = 0; i < 17; i++)
        many[i] = x;
    TU_EXPECT_ERR(ctx, tg_concat(ctx, many, 17, 0), TG_ERR_ARG, "got 17");
    TEST_CHECK(tu_shape_is(tg_concat(ctx, many, 16, 0), TG_DIMS(32, 3)));
    TU_EXPECT_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){x, NULL}, 2, 0), TG_ERR_ARG, "concat: input 1 is NULL");
    tg_tensor *sc = tg_tensor_scalar(ctx, TG_F64, 1);
    TU_EXPECT_ERR(ctx, tg_concat(ctx, (tg_tensor *[]){sc, sc}, 2, 0), TG_ERR_SHAPE, "cannot concat scalars");
    TU_EXPECT_ERR(ctx, tg_stack(ctx, (tg_tensor *[]){x, z}, 2, 0), TG_ERR_SHAPE,
              "stack: input 1 has shape 3x4, input 0 has 2x3");
    TU_EXPECT_ERR(ctx, tg_stack(ctx, (tg_tensor *[]){x, x}, 2, 3), TG_ERR_ARG, "stack: axis 3 out of range for 3 dims");
    TEST_CHECK(tu_shape_is(tg_stack(ctx, (tg_tensor *[]){x, x}, 2, -3), TG_DIMS(2, 2, 3)));
    TEST_CHECK(tu_shape_is(tg_stack(ctx, (tg_tensor *[]){sc, sc}, 2, 0), TG_DIMS(2)));

    /* broadcast_to */
    TU_EXPECT_ERR(ctx, tg_broadcast_to(ctx, x, TG_DIMS(4, 3)), TG_ERR_SHAPE,
              "broadcast_to: cannot broadcast 2x3 to 4x3 (axis 0: 2 vs 4)");
    TU_EXPECT_ERR(ctx, tg_broadcast_to(ctx, x, TG_DIMS(3)), TG_ERR_SHAPE, "target has fewer dims");
    TU_EXPECT_ERR(ctx, tg_broadcast_to(ctx, x, TG_DIMS(-1, 2, 3)), TG_ERR_ARG, "negative dimension -1");

    /* index_select / gather_rows: the first bad index and its position */
    tg_tensor *t6 = tu_tensor(ctx, TG_F64, TG_DIMS(6, 2), NULL, 1);
    tg_tensor *bad = index_i32(ctx, TG_DIMS(4), (const int32_t[]){1, 5, 7, 9});
    TU_EXPECT_ERR(ctx, tg_index_select(ctx, t6, 0, bad), TG_ERR_ARG,
              "index_select: index 7 at position 2 out of range for axis 0 of size 6");
    tg_tensor *neg = index_i32(ctx, TG_DIMS(2), (const int32_t[]){0, -1});
    TU_EXPECT_ERR(ctx, tg_index_select(ctx, t6, 1, neg), TG_ERR_ARG,
              "index -1 at position 1 out of range for axis 1 of size 2");
    TU_EXPECT_ERR(ctx, tg_index_select(ctx, t6, 2, neg), TG_ERR_ARG, "index_select: axis 2 out of range");
    TU_EXPECT_ERR(ctx, tg_index_select(ctx, t6, 0, x), TG_ERR_ARG, "index input 1 is f64, expected i32");
    tg_tensor *idx2 = index_i32(ctx, TG_DIMS(1, 2), (const int32_t[]){0, 1});
    TU_EXPECT_ERR(ctx, tg_index_select(ctx, t6, 0, idx2), TG_ERR_SHAPE, "index input 1 has shape 1x2, expected 1-D");
    TU_EXPECT_ERR(ctx, tg_index_select(ctx, t6, 0, NULL), TG_ERR_ARG, "index_select: input 1 is NULL");
    TU_EXPECT_ERR(ctx, tg_gather_rows(ctx, t6, bad), TG_ERR_ARG,
              "gather_rows: index 7 at position 2 out of range for axis 0 of size 6");
    TU_EXPECT_ERR(ctx, tg_gather_rows(ctx, sc, neg), TG_ERR_ARG, "at least 1 dim");
    TU_EXPECT_ERR(ctx, tg_gather_rows(ctx, bad, neg), TG_ERR_ARG, "gather_rows: input 0 is i32");

    /* integer data is rejected by the float ops */
    TU_EXPECT_ERR(ctx, tg_reshape(ctx, bad, TG_DIMS(2, 2)), TG_ERR_ARG, "reshape: input 0 is i32");

    /* NULL inputs and a sticky error */
    TU_EXPECT_ERR(ctx, tg_transpose(ctx, NULL, 0, 1), TG_ERR_ARG, "permute: input 0 is NULL");
    TU_EXPECT_ERR(ctx, tg_broadcast_to(ctx, NULL, TG_DIMS(2)), TG_ERR_ARG, "broadcast_to: input 0 is NULL");
    TEST_CHECK(tg_reshape(ctx, x, TG_DIMS(5)) == NULL);
    TEST_CHECK(tg_reshape(ctx, x, TG_DIMS(6)) == NULL);        /* sticky: still NULL */
    TEST_CHECK(strstr(tg_ctx_error(ctx), "into 5 (5 elements)") != NULL);
    tg_ctx_clear_error(ctx);
    TEST_CHECK(tu_shape_is(tg_reshape(ctx, x, TG_DIMS(6)), TG_DIMS(6)));
    TEST_CHECK(tg_reshape(NULL, x, TG_DIMS(6)) == NULL);
    tg_ctx_free(ctx);
}

int main(void)
{
    test_hand();
    test_same_tensor_twice();
    test_transpose_sizes();
    test_walk_order_and_zero();
    test_descriptors();
    test_errors();
    return test_report("test_shape");
}
