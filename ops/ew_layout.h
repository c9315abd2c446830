/* ew_layout.h — how the operands of an elementwise op walk a broadcast
 * output, and the loops over it (private to ops/binary.c, which includes it
 * once): EW_FOR for forwards, EW_ACC for each operand's VJP (un-broadcast,
 * in an order fixed by the shapes alone). */
#ifndef TG_EW_LAYOUT_H
#define TG_EW_LAYOUT_H

#include "ops_common.h"

/* ---- layout: how operands walk a broadcast output ------------------------
 * flat:  every operand has the output's numel (equal shapes): one flat loop.
 * else:  the output's dims, with size-1 dims dropped and neighbours that
 *        every operand walks alike merged, split into outer dims (a
 *        tg_bcast_iter) and one inner row along which operand k advances
 *        (inc bit k set) or stays put (a broadcast value). The inner loops
 *        are specialised per inc pattern, so each is a plain vectorisable
 *        loop; a bias (N) over (M,N) is the all-advance pattern: M
 *        contiguous rows. */
typedef struct ew_layout {
    int64_t numel, inner, outer;
    int     flat;
    int     pat;            /* bit k: operand k advances along the inner row */
    tg_bcast_iter it;
} ew_layout;

static void ew_layout_init(ew_layout *L, const tg_tensor *out, const tg_tensor *const *ops, int n_ops)
{
    memset(L, 0, sizeof *L);
    L->numel = out->numel;
    L->flat = 1;
    for (int k = 0; k < n_ops; k++)
        if (ops[k]->numel != out->numel)
            L->flat = 0;
    if (L->flat || out->numel == 0) {
        L->flat = 1;
        return;
    }
    int64_t st[3][TG_MAX_DIMS], cs[TG_MAX_DIMS], cst[3][TG_MAX_DIMS];
    int cn = 0;
    for (int k = 0; k < n_ops; k++)
        tg_broadcast_strides(ops[k], out->ndim, out->shape, st[k]);
    for (int d = 0; d < out->ndim; d++) {
        int64_t len = out->shape[d];
        if (len == 1)
            continue;
        int merge = cn > 0;
        for (int k = 0; k < n_ops && merge; k++)
            merge = cst[k][cn - 1] == st[k][d] * len;
        if (merge) {
            cs[cn - 1] *= len;
            for (int k = 0; k < n_ops; k++)
                cst[k][cn - 1] = st[k][d];
            continue;
        }
        cs[cn] = len;
        for (int k = 0; k < n_ops; k++)
            cst[k][cn] = st[k][d];
        cn++;
    }
    /* numel > 1 and some operand is smaller, so at least one dim remains,
     * and the innermost one is walked by some operand with stride 1. */
    TG_ASSERT(cn >= 1);
    L->inner = cs[cn - 1];
    L->outer = out->numel / L->inner;
    for (int k = 0; k < n_ops; k++) {
        TG_ASSERT(cst[k][cn - 1] == 0 || cst[k][cn - 1] == 1);
        L->pat |= (int)cst[k][cn - 1] << k;
    }
    TG_ASSERT(L->pat != 0);
    L->it.nd = cn - 1;
    L->it.n_ops = n_ops;
    for (int d = 0; d < cn - 1; d++) {
        L->it.shape[d] = cs[d];
        for (int k = 0; k < n_ops; k++)
            L->it.stride[k][d] = cst[k][d];
    }
}

/* Element offsets for inner position J of the current row, with
 * compile-time advance flags C0..C2. */
#define EW_IDX_(C0, C1, C2, J)                                                     \
    const int64_t io = b_ + (J), i0 = o0_ + ((C0) ? (J) : 0),                      \
                  i1 = o1_ + ((C1) ? (J) : 0), i2 = o2_ + ((C2) ? (J) : 0);        \
    (void)i0; (void)i1; (void)i2;

/* Expand ROW(C0, C1, C2, ...) for the pattern `pat` (bits 0..2); `nops` is
 * a constant 2 or 3 so binary ops compile only their four patterns. */
#define EW_PATTERNS_(pat, nops, ROW, ...)                                          \
    switch ((pat) & ((nops) > 2 ? 7 : 3)) {                                        \
    case 1: ROW(1, 0, 0, __VA_ARGS__) break;                                       \
    case 2: ROW(0, 1, 0, __VA_ARGS__) break;                                       \
    case 3: ROW(1, 1, 0, __VA_ARGS__) break;                                       \
    case 4: ROW(0, 0, 1, __VA_ARGS__) break;                                       \
    case 5: ROW(1, 0, 1, __VA_ARGS__) break;                                       \
    case 6: ROW(0, 1, 1, __VA_ARGS__) break;                                       \
    case 7: ROW(1, 1, 1, __VA_ARGS__) break;                                       \
    default: break;     /* 0: impossible, see ew_layout_init */                   \
    }

/* Position the outer iterator at flat row r. */
static inline void ew_seek(tg_bcast_iter *it, int64_t r)
{
    for (int k = it->nd - 1; k >= 0; k--) {
        it->idx[k] = r % it->shape[k];
        r /= it->shape[k];
    }
    for (int j = 0; j < it->n_ops; j++) {
        it->off[j] = 0;
        for (int k = 0; k < it->nd; k++)
            it->off[j] += it->idx[k] * it->stride[j][k];
    }
}

/* The general path's frame: for each outer row r in [R0, R1), b_ is the
 * row's first output element and o0_..o2_ the operands' offsets; BODY
 * handles inner positions [j0_, j1_) of the row (the whole row: 0, n_). */
#define EW_ROWS_(L, R0, R1, J0, J1, BODY) do {                                     \
        tg_bcast_iter it_ = (L)->it;                                               \
        const int64_t n_ = (L)->inner, j0_ = (J0), j1_ = (J1);                     \
        (void)n_;                                                                  \
        if ((R0) > 0)                                                              \
            ew_seek(&it_, (R0));                                                   \
        for (int64_t r_ = (R0); r_ < (R1); r_++, tg_bcast_next(&it_)) {            \
            const int64_t b_ = r_ * n_, o0_ = it_.off[0], o1_ = it_.off[1], o2_ = it_.off[2]; \
            (void)o0_; (void)o1_; (void)o2_;                                       \
            BODY                                                                   \
        }                                                                          \
    } while (0)

#define EW_FOR_ROW_(C0, C1, C2, ...)                                               \
    for (int64_t j_ = j0_; j_ < j1_; j_++) {                                       \
        EW_IDX_(C0, C1, C2, j_)                                                    \
        __VA_ARGS__                                                                \
    }

/* Threads for an elementwise pass over L's elements (n: the node). */
#define EW_THREADS_(n, L) tg_par_threads((n)->ctx, (double)(L)->numel, TG_PAR_MIN_ELEMS)

/* Run the statement(s) `...` for every output element: `io` is its flat
 * index, i0, i1, i2 the matching element offsets of operands 0, 1, 2 (of
 * NOPS operands). With NT threads: fixed ranges of elements, or of outer
 * rows; every output element is written by one thread. */
#define EW_FOR(L, NT, NOPS, ...) do {                                              \
        const ew_layout *L_ = (L);                                                 \
        if (L_->flat) {                                                            \
            TG_PAR_FOR((NT), L_->numel, 16, lo_, hi_, {                            \
                for (int64_t io = lo_; io < hi_; io++) {                           \
                    const int64_t i0 = io, i1 = io, i2 = io;                       \
                    (void)i0; (void)i1; (void)i2;                                  \
                    __VA_ARGS__                                                    \
                }                                                                  \
            });                                                                    \
        } else {                                                                   \
            int nt_ = (NT) < L_->outer ? (NT) : (int)L_->outer;                    \
            TG_PAR_FOR(nt_, L_->outer, 1, r0_, r1_, {                              \
                EW_ROWS_(L_, r0_, r1_, 0, L_->inner,                               \
                         EW_PATTERNS_(L_->pat, NOPS, EW_FOR_ROW_, __VA_ARGS__));   \
            });                                                                    \
        }                                                                          \
    } while (0)

/* One row of EW_ACC. If operand K advances along the row, add each term in
 * place; else it is broadcast along the row: sum the terms in 8 fixed lanes
 * (lane = position mod 8, combined pairwise) and add the sum once. Either
 * way the order depends only on the shapes: deterministic. (The lanes
 * always see whole rows: ew_acc_split never splits such a row.) */
#define EW_ACC_ROW_(C0, C1, C2, K, T, dx, G, ...)                                  \
    if ((K) == 0 ? (C0) : (K) == 1 ? (C1) : (C2)) {                                \
        T *d_ = (dx) + it_.off[K];                                                 \
        for (int64_t j_ = j0_; j_ < j1_; j_++) {                                   \
            EW_IDX_(C0, C1, C2, j_)                                                \
            __VA_ARGS__                                                            \
            d_[j_] += (T)(G);                                                      \
        }                                                                          \
    } else {                                                                       \
        T l_[8] = {0};                                                             \
        int64_t j_ = j0_;                                                          \
        for (; j_ + 8 <= j1_; j_ += 8)                                             \
            for (int q_ = 0; q_ < 8; q_++) {                                       \
                EW_IDX_(C0, C1, C2, j_ + q_)                                       \
                __VA_ARGS__                                                        \
                l_[q_] += (T)(G);                                                  \
            }                                                                      \
        for (int q_ = 0; j_ + q_ < j1_; q_++) {                                    \
            EW_IDX_(C0, C1, C2, j_ + q_)                                           \
            __VA_ARGS__                                                            \
            l_[q_] += (T)(G);                                                      \
        }                                                                          \
        (dx)[it_.off[K]] += ((l_[0] + l_[1]) + (l_[2] + l_[3])) + ((l_[4] + l_[5]) + (l_[6] + l_[7])); \
    }

/* How EW_ACC may split the un-broadcast into operand K over nt threads so
 * that no two threads add into the same element of dx: by outer rows when
 * K has its own elements in every row (no zero outer stride), by columns
 * when K advances along the rows (each thread adds its columns of every
 * row, rows in order: a bias over a batch), else not at all. Returns the
 * thread count (1: serial) and sets *cols. */
static inline int ew_acc_split(const ew_layout *L, int K, int nt, int *cols)
{
    *cols = 0;
    if (nt <= 1)
        return 1;
    int own_rows = 1;
    for (int d = 0; d < L->it.nd; d++)
        own_rows &= L->it.stride[K][d] != 0;
    if (own_rows)
        return nt < L->outer ? nt : (int)L->outer;
    if (!((L->pat >> K) & 1) || L->inner < 64 * (int64_t)nt)
        return 1;
    *cols = 1;
    return nt;
}

/* dx[offset of operand K] += G for every output element (un-broadcast); the
 * statements `...` run first and may declare values G uses (from io, i0,
 * i1, i2). NT threads as ew_acc_split allows; each element of dx receives
 * its terms in the serial order whatever the split. OW (tg_vjp_overwrites
 * for operand K, whose DXN elements dx holds): dx starts as +0 — written
 * as (T)0 + G with equal shapes, zeroed first when broadcast (an empty
 * output counts as flat, but a broadcast operand may still have elements). */
#define EW_ACC(L, NT, NOPS, K, T, dx, OW, DXN, G, ...) do {                        \
        const ew_layout *L_ = (L);                                                 \
        if (L_->flat && (OW) && L_->numel == (int64_t)(DXN) &&                     \
            tg_stream_wanted((dx), (size_t)L_->numel * sizeof(T))) {               \
            TG_PAR_FOR((NT), L_->numel, 16, lo_, hi_, {                            \
                TG_STREAM_FRESH(T, (dx), (size_t)lo_, (size_t)hi_, G,              \
                                const int64_t io = (int64_t)i;                     \
                                const int64_t i0 = io; const int64_t i1 = io;      \
                                const int64_t i2 = io;                             \
                                (void)i0; (void)i1; (void)i2; __VA_ARGS__);        \
            });                                                                    \
        } else if (L_->flat && (OW) && L_->numel == (int64_t)(DXN)) {              \
            TG_PAR_FOR((NT), L_->numel, 16, lo_, hi_, {                            \
                for (int64_t io = lo_; io < hi_; io++) {                           \
                    const int64_t i0 = io, i1 = io, i2 = io;                       \
                    (void)i0; (void)i1; (void)i2;                                  \
                    __VA_ARGS__                                                    \
                    (dx)[io] = (T)0 + (T)(G);                                      \
                }                                                                  \
            });                                                                    \
        } else if (L_->flat) {                                                     \
            if (OW)   /* an empty output (flat) with a broadcast operand */       \
                memset((dx), 0, (size_t)(DXN) * sizeof(T));                        \
            TG_PAR_FOR((NT), L_->numel, 16, lo_, hi_, {                            \
                for (int64_t io = lo_; io < hi_; io++) {                           \
                    const int64_t i0 = io, i1 = io, i2 = io;                       \
                    (void)i0; (void)i1; (void)i2;                                  \
                    __VA_ARGS__                                                    \
                    (dx)[io] += (T)(G);                                            \
                }                                                                  \
            });                                                                    \
        } else {                                                                   \
            if (OW)                                                                \
                memset((dx), 0, (size_t)(DXN) * sizeof(T));                        \
            int cols_;                                                             \
            int nt_ = ew_acc_split(L_, K, (NT), &cols_);                           \
            TG_PAR_FOR(nt_, cols_ ? L_->inner : L_->outer, cols_ ? 16 : 1, u0_, u1_, { \
                EW_ROWS_(L_, cols_ ? 0 : u0_, cols_ ? L_->outer : u1_,             \
                         cols_ ? u0_ : 0, cols_ ? u1_ : L_->inner,                 \
                         EW_PATTERNS_(L_->pat, NOPS, EW_ACC_ROW_, K, T, dx, G, __VA_ARGS__)); \
            });                                                                    \
        }                                                                          \
    } while (0)

#endif
