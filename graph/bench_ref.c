/* bench_ref.c — independent references for the benchmark's output check,
 * beyond the op's own forward in the other dtype: where a built-in op has
 * a simple, separately written reference it is listed here by name and
 * checked on the op's documented semantics (never its internals).
 *   matmul   core/gemm_ref.c's naive GEMM on up to 8 sampled rows
 * A user's op of the same name is checked the same way. */
#include "bench_impl.h"
#include "gemm.h"

#include <float.h>
#include <math.h>
#include <string.h>

static double absmax(const tg_tensor *t)
{
    double m = 0;
    for (int64_t k = 0; k < t->numel; k++)
        m = fmax(m, fabs(tg_tensor_get(t, k)));
    return m;
}

/* C = op(A)·op(B) per tg_matmul.h: 2-D or 3-D operands (a 2-D one shared
 * over the batch), p.i[0], p.i[1] the transpose flags. */
static int matmul_ref(const tg_node *n, char *msg, size_t cap)
{
    const tg_tensor *a = n->in[0], *b = n->in[1], *c = n->out;
    tg_dtype dt = c->dtype;
    if (n->n_in != 2 || !tg_dtype_is_float(dt) || a->dtype != dt || b->dtype != dt ||
        (a->ndim != 2 && a->ndim != 3) || (b->ndim != 2 && b->ndim != 3))
        return 0;
    int ta = n->p.i[0] != 0, tb = n->p.i[1] != 0;
    int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int64_t br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    int64_t M = ta ? ac : ar, K = ta ? ar : ac, N = tb ? br : bc;
    int64_t nb = a->ndim == 3 ? a->shape[0] : b->ndim == 3 ? b->shape[0] : 1;
    int64_t sa = a->ndim == 3 ? ar * ac : 0, sb = b->ndim == 3 ? br * bc : 0;
    if (c->numel != nb * M * N || M < 1 || N < 1) {
        snprintf(msg, cap, "matmul reference: output has %lld elements, expected %lld",
                 (long long)c->numel, (long long)(nb * M * N));
        return 1;
    }
    size_t es = tg_dtype_size(dt);
    void *row = tg_malloc((size_t)N * es);
    if (!row) {
        snprintf(msg, cap, "matmul reference: out of memory");
        return -1;
    }
    double eps = dt == TG_F32 ? FLT_EPSILON : DBL_EPSILON;
    double tol = 2.0 * (double)(K + 2) * eps * absmax(a) * absmax(b) + DBL_MIN;
    const int64_t rows[8] = { 0, M - 1, M / 2, M / 3, (M * 5) / 6, M / 7, M / 5, (M * 2) / 3 };
    int bad = 0;
    for (int r = 0; r < 8 && !bad; r++) {
        int64_t bi = (nb - 1) * (r % 3) / 2, i = rows[r];   /* batch 0, last, middle in turn */
        const char *ap = (const char *)a->data + (size_t)(bi * sa + (ta ? i : i * ac)) * es;
        const char *bp = (const char *)b->data + (size_t)(bi * sb) * es;
        if (tg_gemm_ref(dt, ta, tb, 1, N, K, ap, ac > 0 ? ac : 1, bp, bc > 0 ? bc : 1, 0.0, row, N) != TG_OK) {
            snprintf(msg, cap, "matmul reference: the naive GEMM rejected the operands");
            tg_free(row);
            return -1;
        }
        for (int64_t j = 0; j < N; j++) {
            double want = dt == TG_F32 ? ((float *)row)[j] : ((double *)row)[j];
            double got = tg_tensor_get(c, (bi * M + i) * N + j);
            if (!(fabs(got - want) <= tol)) {
                snprintf(msg, cap, "output [%lld, %lld, %lld] is %.9g, the naive GEMM gives %.9g "
                         "(tolerance %.2g)", (long long)bi, (long long)i, (long long)j, got, want, tol);
                bad = 1;
                break;
            }
        }
    }
    tg_free(row);
    return bad;
}

int bench_ref_check(const tg_node *n, char *msg, size_t cap)
{
    if (n->def && n->def->name && strcmp(n->def->name, "matmul") == 0)
        return matmul_ref(n, msg, cap);
    return 0;
}
