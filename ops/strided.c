/* strided.c — the strided copy / add kernel behind the shape ops (see
 * strided.h). Size-1 dims are dropped and dims contiguous in both operands
 * merged, so most walks become one or two long loops; a walk with one dim
 * contiguous in the source and another in the destination has them moved
 * innermost, where they form a transpose (src contiguous along the outer
 * one, dst along the inner one), run in tiles transposed in registers
 * (with AVX; square tiles element by element elsewhere) and, for a large
 * output written whole, streaming stores. No allocation, no threads. */
#include "strided.h"
#include "tg_tile.h"
#include "stream.h"

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

/* The transpose with the tiles transposed in registers (tg_tile.h): panels
 * of 2B source rows (2B destination columns) swept along the rows, each
 * step two BxB tiles (8x8 f32, 4x4 f64) side by side, so every destination
 * line is written whole in one step (16 f32 or 8 f64: 64 bytes) and the
 * source is read as 2B sequential streams; the edges element by element.
 * 4096x4096 f32 permute (1, 0), 1 thread, tapegrad bench: 46 ms with the
 * 32x32 tiles copied element by element (a tile's rows, a power of two
 * apart, fell into the same few cache sets). */
#if defined(TG_TILE_AVX)
#define TR_VEC(T, V, B, TILE, LD, ADD, ST, NT, ZERO)                            \
    static void walk_tr_##T(int add, T *d, const T *s, int64_t R, int64_t C, int64_t dr, int64_t sc) \
    {                                                                           \
        int64_t rv = R / B * B, cv = C / (2 * B) * (2 * B);                     \
        /* whole lines, over the streaming threshold, not accumulated:          \
         * streaming stores (stream.h) */                                       \
        int nt = add != 1 && (dr * (int64_t)sizeof(T)) % 64 == 0 &&              \
                 tg_stream_wanted(d, (size_t)(R * C) * sizeof(T));               \
        for (int64_t c = 0; c < cv; c += 2 * B)                                 \
            for (int64_t r = 0; r < rv; r += B) {                               \
                V t[B], u[B];                                                   \
                TILE(s + r + c * sc, sc, t);                                    \
                TILE(s + r + (c + B) * sc, sc, u);                              \
                for (int j = 0; j < B; j++) {                                   \
                    T *o = d + (r + j) * dr + c;                                \
                    V v = t[j], w = u[j];                                       \
                    if (add == 1) {                                             \
                        v = ADD(LD(o), v);                                      \
                        w = ADD(LD(o + B), w);                                  \
                    } else if (add) {                                           \
                        v = ADD(ZERO(), v);                                     \
                        w = ADD(ZERO(), w);                                     \
                    }                                                           \
                    if (nt) {                                                   \
                        NT(o, v);                                               \
                        NT(o + B, w);                                           \
                    } else {                                                    \
                        ST(o, v);                                               \
                        ST(o + B, w);                                           \
                    }                                                           \
                }                                                               \
            }                                                                   \
        if (nt)                                                                 \
            tg_stream_fence();                                                  \
        for (int64_t r = 0; r < R; r++)         /* the edges */                 \
            for (int64_t c = r < rv ? cv : 0; c < C; c++) {                     \
                T v = s[r + c * sc];                                            \
                T *o = d + r * dr + c;                                          \
                *o = add == 1 ? *o + v : add ? 0 + v : v;                       \
            }                                                                   \
    }
TR_VEC(float, __m256, 8, tg_tile8_f32, _mm256_loadu_ps, _mm256_add_ps, _mm256_storeu_ps, _mm256_stream_ps,
       _mm256_setzero_ps)
TR_VEC(double, __m256d, 4, tg_tile4_f64, _mm256_loadu_pd, _mm256_add_pd, _mm256_storeu_pd, _mm256_stream_pd,
       _mm256_setzero_pd)
#define WALK_TR(T, add, d, s, R, C, dr, sc) walk_tr_##T(add, d, s, R, C, dr, sc)
#else
#define WALK_TR(T, add, d, s, R, C, dr, sc) do {                                \
        if (add == 1) WALK_TRANSPOSE(OP_ADD, d, s, R, C, dr, sc);               \
        else if (add) WALK_TRANSPOSE(OP_ZADD, d, s, R, C, dr, sc);              \
        else          WALK_TRANSPOSE(OP_SET, d, s, R, C, dr, sc);               \
    } while (0)
#endif

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
            WALK_TR(T, add, d, s, R, C, dr, sc);                             \
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

/* A walk whose source is contiguous along one dim and destination along
 * another, neither innermost pair, gets those two moved innermost (source's
 * first) so it runs as transposes: permute (2, 1, 0) of 64x64x64, 1 thread,
 * 839 -> ~90 us. Only where no destination stride is 0: every destination
 * element is then written once, and the order of the walk changes no bit. */
static void walk_order_transpose(tg_walk *w)
{
    int nd = w->nd, a = -1, b = -1;
    if (nd < 2 || (w->ss[nd - 2] == 1 && w->ds[nd - 1] == 1))
        return;
    for (int k = 0; k < nd; k++) {
        if (w->ds[k] == 0)
            return;
        if (w->ss[k] == 1 && a < 0)
            a = k;
        if (w->ds[k] == 1 && b < 0)
            b = k;
    }
    if (a < 0 || b < 0 || a == b)
        return;
    tg_walk o = *w;
    int m = 0;
    for (int k = 0; k < nd; k++)
        if (k != a && k != b) {
            o.shape[m] = w->shape[k];
            o.ds[m] = w->ds[k];
            o.ss[m] = w->ss[k];
            m++;
        }
    int last[2] = { a, b };
    for (int q = 0; q < 2; q++, m++) {
        o.shape[m] = w->shape[last[q]];
        o.ds[m] = w->ds[last[q]];
        o.ss[m] = w->ss[last[q]];
    }
    *w = o;
}

/* Run the walk (a copy of w is simplified) on float data of dtype dt. */
void tg_walk_run(tg_dtype dt, tg_walk w, void *dst, int64_t doff, const void *src, int64_t soff, int add)
{
    if (!walk_simplify(&w))
        return;
    walk_order_transpose(&w);
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

