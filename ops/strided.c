/* strided.c — the strided copy / add kernel behind the shape ops (see
 * strided.h). Size-1 dims are dropped and dims contiguous in both operands
 * merged, so most walks become one or two long loops; when the two
 * innermost dims form a transpose (src contiguous along the outer one, dst
 * along the inner one) the copy runs in square tiles so that both sides
 * stay in cache. No allocation, no threads. */
#include "strided.h"

#define WALK_TILE 32

void tg_row_strides(int nd, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) {
        stride[k] = s;
        s *= shape[k];
    }
}

/* Returns 0 when the walk is empty (a zero-size dim). */
static int walk_simplify(tg_walk *w)
{
    int m = 0;
    for (int k = 0; k < w->nd; k++) {
        if (w->shape[k] == 0)
            return 0;
        if (w->shape[k] == 1)
            continue;
        if (m > 0 && w->ds[m - 1] == w->ds[k] * w->shape[k] && w->ss[m - 1] == w->ss[k] * w->shape[k]) {
            w->shape[m - 1] *= w->shape[k];
            w->ds[m - 1] = w->ds[k];
            w->ss[m - 1] = w->ss[k];
        } else {
            w->shape[m] = w->shape[k];
            w->ds[m] = w->ds[k];
            w->ss[m] = w->ss[k];
            m++;
        }
    }
    w->nd = m;
    return 1;
}

#define OP_SET(d, s) ((d) = (s))
#define OP_ADD(d, s) ((d) += (s))
#define OP_ZADD(d, s) ((d) = 0 + (s))   /* into a fresh gradient: -0 becomes +0 as with += */

/* One line of n elements, or an R x C tile walk with dst stride (dr, 1) and
 * src stride (1, sc). */
#define WALK_LINE(OP, d, s, n, dsi, ssi)                                     \
    do {                                                                     \
        if ((dsi) == 1 && (ssi) == 1)                                        \
            for (int64_t k_ = 0; k_ < (n); k_++) OP((d)[k_], (s)[k_]);       \
        else                                                                 \
            for (int64_t k_ = 0; k_ < (n); k_++) OP((d)[k_ * (dsi)], (s)[k_ * (ssi)]); \
    } while (0)

#define WALK_TRANSPOSE(OP, d, s, R, C, dr, sc)                               \
    do {                                                                     \
        for (int64_t r0_ = 0; r0_ < (R); r0_ += WALK_TILE)                   \
            for (int64_t c0_ = 0; c0_ < (C); c0_ += WALK_TILE) {             \
                int64_t r1_ = r0_ + WALK_TILE < (R) ? r0_ + WALK_TILE : (R);  \
                int64_t c1_ = c0_ + WALK_TILE < (C) ? c0_ + WALK_TILE : (C);  \
                for (int64_t r_ = r0_; r_ < r1_; r_++)                       \
                    for (int64_t c_ = c0_; c_ < c1_; c_++)                   \
                        OP((d)[r_ * (dr) + c_], (s)[r_ + c_ * (sc)]);        \
            }                                                                \
    } while (0)

#define WALK_KERNEL(T, S)                                                    \
static void walk_##S(const tg_walk *w, T *dst, const T *src, int add)        \
{                                                                            \
    int nd = w->nd;                                                          \
    int tr = nd >= 2 && w->ss[nd - 2] == 1 && w->ds[nd - 1] == 1;            \
    int inner = nd == 0 ? 0 : tr ? nd - 2 : nd - 1;                          \
    int64_t idx[TG_MAX_DIMS] = {0}, doff = 0, soff = 0;                      \
    for (;;) {                                                               \
        T *d = dst + doff;                                                   \
        const T *s = src + soff;                                             \
        if (nd == 0) {                                                       \
            if (add == 1) OP_ADD(d[0], s[0]);                                \
            else if (add) OP_ZADD(d[0], s[0]);                               \
            else OP_SET(d[0], s[0]);                                         \
        } else if (tr) {                                                     \
            int64_t R = w->shape[nd - 2], C = w->shape[nd - 1];              \
            int64_t dr = w->ds[nd - 2], sc = w->ss[nd - 1];                  \
            if (add == 1) WALK_TRANSPOSE(OP_ADD, d, s, R, C, dr, sc);        \
            else if (add) WALK_TRANSPOSE(OP_ZADD, d, s, R, C, dr, sc);       \
            else          WALK_TRANSPOSE(OP_SET, d, s, R, C, dr, sc);        \
        } else {                                                             \
            int64_t L = w->shape[nd - 1], dsi = w->ds[nd - 1], ssi = w->ss[nd - 1]; \
            if (add == 1) WALK_LINE(OP_ADD, d, s, L, dsi, ssi);              \
            else if (add) WALK_LINE(OP_ZADD, d, s, L, dsi, ssi);             \
            else          WALK_LINE(OP_SET, d, s, L, dsi, ssi);              \
        }                                                                    \
        int k = inner - 1;                                                   \
        for (; k >= 0; k--) {                                                \
            doff += w->ds[k];                                                \
            soff += w->ss[k];                                                \
            if (++idx[k] < w->shape[k])                                      \
                break;                                                       \
            doff -= w->ds[k] * w->shape[k];                                  \
            soff -= w->ss[k] * w->shape[k];                                  \
            idx[k] = 0;                                                      \
        }                                                                    \
        if (k < 0)                                                           \
            return;                                                          \
    }                                                                        \
}

WALK_KERNEL(float, f32)
WALK_KERNEL(double, f64)

/* Run the walk (a copy of w is simplified) on float data of dtype dt. */
void tg_walk_run(tg_dtype dt, tg_walk w, void *dst, int64_t doff, const void *src, int64_t soff, int add)
{
    if (!walk_simplify(&w))
        return;
    if (dt == TG_F32)
        walk_f32(&w, (float *)dst + doff, (const float *)src + soff, add);
    else
        walk_f64(&w, (double *)dst + doff, (const double *)src + soff, add);
}

/* Exchange the roles of source and destination (forward copy -> VJP add). */
tg_walk tg_walk_swap(tg_walk w)
{
    for (int k = 0; k < w.nd; k++) {
        int64_t t = w.ds[k];
        w.ds[k] = w.ss[k];
        w.ss[k] = t;
    }
    return w;
}

/* A walk over `shape` with both operands contiguous. */
tg_walk tg_walk_flat(int nd, const int64_t *shape)
{
    tg_walk w;
    w.nd = nd;
    for (int k = 0; k < nd; k++)
        w.shape[k] = shape[k];
    tg_row_strides(nd, shape, w.ds);
    tg_row_strides(nd, shape, w.ss);
    return w;
}

