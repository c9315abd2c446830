/* test_sweep_fuzz.c — the reverse sweep's fresh, handed-on and reused
 * gradient buffers against the plain sweep, on random graphs.
 *
 * Each graph draws 4..23 nodes from elementwise, binary (broadcasting),
 * reduction, reshape and softmax ops over a pool that starts with five
 * leaves of shapes (4,3), (1,3), (4,1), (3,) and (1,1) plus an empty (0,3)
 * one, retains some intermediates' gradients, and sums a few pool entries
 * into the loss. It is built twice in a poisoned arena (unwritten memory
 * reads NaN): with the built-in ops, and with copies whose `overwrites` and
 * `passes_grad` are cleared, so the sweep zeroes every buffer and every VJP
 * adds. The leaves' and the retained gradients must agree as values (a
 * handed-on buffer may keep a -0 that 0 + g makes +0); every other graph
 * flags the leaves TG_TENSOR_GRAD_ZERO, as zero_grad leaves parameters. */
#include "tapegrad.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

enum { TANH, SIGMOID, MUL_SCALAR, NEG, SQUARE, ADD, SUB, MUL, SUM, RESHAPE, SOFTMAX, LOG_SOFTMAX, N_OPS };
static const char *const names[N_OPS] = { "tanh", "sigmoid", "mul_scalar", "neg", "square", "add",
                                          "sub", "mul", "sum", "reshape", "softmax", "log_softmax" };
enum { N_LEAVES = 6, MAX_POOL = 40, MAX_VALUES = 4096 };

static uint64_t state;
static unsigned pick(unsigned n)   /* xorshift64 */
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (unsigned)(state % n);
}

static int broadcastable(const tg_tensor *a, const tg_tensor *b)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = 0; k < nd; k++) {
        int ia = a->ndim - nd + k, ib = b->ndim - nd + k;
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return 0;
    }
    return 1;
}

/* Build graph `seed` with the ops `defs`, sweep, and write the leaves' and
 * retained gradients to out. Returns how many values, or -1. */
static int graph(tg_ctx *ctx, const tg_op_def *const *defs, tg_tensor *const *leaves, uint64_t seed, double *out)
{
    state = seed;
    tg_tensor *pool[MAX_POOL], *kept[MAX_POOL];
    int np = 0, nk = 0;
    for (int i = 0; i < N_LEAVES; i++)
        pool[np++] = leaves[i];
    for (int k = 4 + (int)pick(20); k > 0 && np < MAX_POOL; k--) {
        unsigned op = pick(N_OPS);
        tg_tensor *in[2] = { pool[pick((unsigned)np)], NULL }, *y;
        tg_op_params p;
        memset(&p, 0, sizeof p);
        int n_in = 1;
        if (op >= ADD && op <= MUL) {
            for (int t = 0; t < 10 && !in[1]; t++) {
                tg_tensor *c = pool[pick((unsigned)np)];
                if (broadcastable(in[0], c))
                    in[1] = c;
            }
            if (!in[1])
                continue;
            n_in = 2;
        } else if (op == MUL_SCALAR) {
            p.f[0] = 0.75;
        } else if (op == SUM || op == SOFTMAX || op == LOG_SOFTMAX) {
            if (in[0]->ndim == 0)
                continue;
            p.i[0] = op == SUM ? 1 : -1;          /* sum: axes mask {0}; softmax: the last axis */
            p.i[1] = op == SUM ? pick(2) : 0;     /* keepdims */
        } else if (op == RESHAPE) {               /* add or drop a leading 1 */
            const tg_tensor *a = in[0];
            if (a->ndim >= 1 && a->shape[0] == 1) {
                p.i[0] = a->ndim - 1;
                for (int d = 1; d < a->ndim; d++)
                    p.i[d] = a->shape[d];
            } else {
                if (a->ndim >= 6)
                    continue;
                p.i[0] = a->ndim + 1;
                p.i[1] = 1;
                for (int d = 0; d < a->ndim; d++)
                    p.i[2 + d] = a->shape[d];
            }
        }
        if (!(y = tg_apply(ctx, defs[op], in, n_in, &p, NULL))) {
            TEST_CHECK_MSG(0, "graph %llx: %s: %s", (unsigned long long)seed, names[op], tg_ctx_error(ctx));
            return -1;
        }
        if (pick(5) == 0) {
            tg_retain_grad(y);
            kept[nk++] = y;
        }
        pool[np++] = y;
    }
    tg_tensor *loss = NULL;
    for (int j = np - 1; j >= N_LEAVES; j--) {
        if (j != np - 1 && pick(3))
            continue;
        tg_op_params ps;
        memset(&ps, 0, sizeof ps);
        ps.i[0] = ((int64_t)1 << pool[j]->ndim) - 1;   /* every axis */
        tg_tensor *s = tg_apply(ctx, defs[SUM], &pool[j], 1, &ps, NULL), *in[2] = { loss, s };
        loss = loss ? tg_apply(ctx, defs[ADD], in, 2, NULL, NULL) : s;
    }
    if (!loss || tg_backward(ctx, loss) != TG_OK) {
        TEST_CHECK_MSG(np == N_LEAVES, "graph %llx: %s", (unsigned long long)seed, tg_ctx_error(ctx));
        return -1;
    }
    int n = 0;
    for (int i = 0; i < N_LEAVES; i++)
        for (int64_t k = 0; k < leaves[i]->numel && n < MAX_VALUES; k++)
            out[n++] = tg_tensor_grad_get(leaves[i], k);
    for (int i = 0; i < nk; i++)
        for (int64_t k = 0; k < kept[i]->numel && n < MAX_VALUES; k++)
            out[n++] = kept[i]->grad ? tg_tensor_grad_get(kept[i], k) : NAN;
    return n;
}

int main(void)
{
    tg_op_def plain[N_OPS];
    const tg_op_def *builtin[N_OPS], *stripped[N_OPS];
    for (int i = 0; i < N_OPS; i++) {
        builtin[i] = tg_op_find(names[i]);
        TEST_CHECK_MSG(builtin[i] != NULL, "no op %s", names[i]);
        if (!builtin[i])
            return test_report("test_sweep_fuzz");
        plain[i] = *builtin[i];
        plain[i].overwrites = plain[i].passes_grad = 0;
        stripped[i] = &plain[i];
    }
    static const int64_t shapes[N_LEAVES][2] = { {4, 3}, {1, 3}, {4, 1}, {3, 0}, {1, 1}, {0, 3} };
    static const int nds[N_LEAVES] = { 2, 2, 2, 1, 2, 2 };
    tg_tensor *leaves[N_LEAVES];
    for (int i = 0; i < N_LEAVES; i++) {
        tg_status st;
        leaves[i] = tg_tensor_create(TG_F64, nds[i], shapes[i], &st);
        TEST_CHECK(leaves[i] && tg_tensor_requires_grad(leaves[i]) == TG_OK);
        if (!leaves[i])
            return test_report("test_sweep_fuzz");
        for (int64_t k = 0; k < leaves[i]->numel; k++)
            ((double *)leaves[i]->data)[k] = 0.8 * sin(1.3 * (double)k + i);
    }
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_ctx_set_poison(ctx, 1);
    static double a[MAX_VALUES], b[MAX_VALUES];
    int graphs = 0, bad = 0;
    for (int it = 0; it < 400; it++) {
        uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(it + 1);
        int n[2];
        for (int side = 0; side < 2; side++) {
            for (int i = 0; i < N_LEAVES; i++) {
                tg_tensor_zero_grad(leaves[i]);
                if (side == 0 && (it & 1))
                    leaves[i]->flags |= TG_TENSOR_GRAD_ZERO;
            }
            n[side] = graph(ctx, side ? stripped : builtin, leaves, seed, side ? b : a);
            tg_ctx_reset(ctx);
            for (int i = 0; i < N_LEAVES; i++)
                leaves[i]->flags &= ~(uint32_t)TG_TENSOR_GRAD_ZERO;
        }
        if (n[0] < 0 || n[1] < 0)
            continue;
        graphs++;
        int k = 0;
        while (k < n[0] && (a[k] == b[k] || (isnan(a[k]) && isnan(b[k]))))
            k++;
        if (n[0] != n[1] || k < n[0]) {
            if (bad++ < 5)
                TEST_CHECK_MSG(0, "graph %d: value %d of %d: %.17g, plain sweep %.17g", it, k, n[0],
                               k < n[0] ? a[k] : 0, k < n[0] ? b[k] : 0);
        }
    }
    TEST_CHECK_MSG(bad == 0, "%d of %d graphs differ", bad, graphs);
    TEST_CHECK_MSG(graphs >= 300, "only %d graphs ran", graphs);
    tg_ctx_free(ctx);
    for (int i = 0; i < N_LEAVES; i++)
        tg_tensor_destroy(leaves[i]);
    return test_report("test_sweep_fuzz");
}
