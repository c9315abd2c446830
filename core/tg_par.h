/* tg_par.h — the library's threading helpers (private: core/, graph/, ops/,
 * nn/ internals include it; not installed). OpenMP when the build found it
 * (TG_HAVE_OPENMP), else everything runs on the calling thread and the
 * pragmas vanish.
 *
 * Rules every parallel loop in tapegrad keeps:
 *   - The thread count is the context's (tg_ctx_threads), cut down by a
 *     size threshold (tg_par_threads), so a small tensor never pays for a
 *     parallel region: the serial path is a plain branch, not an OpenMP
 *     region with if(0).
 *   - Static partitions only (tg_par_range): which thread does which
 *     element depends on the sizes and the thread count alone.
 *   - A result never depends on the partition: each output element is
 *     computed by one thread in the same order as the serial code, and sums
 *     over many elements use fixed blocks whose partial sums are combined in
 *     block order (tg_par_range's grain), so results are bit-identical for
 *     any thread count, and the same run twice gives the same bits.
 */
#ifndef TG_PAR_H
#define TG_PAR_H

#include "tg_core.h"

#ifdef TG_HAVE_OPENMP
#include <omp.h>
#define TG_PRAGMA_(x) _Pragma(#x)
#define TG_OMP(x) TG_PRAGMA_(omp x)
static inline int tg_par_id(void) { return omp_get_thread_num(); }
static inline int tg_par_n(void) { return omp_get_num_threads(); }
#else
#define TG_OMP(x)
static inline int tg_par_id(void) { return 0; }
static inline int tg_par_n(void) { return 1; }
#endif

/* Threads worth using for `work` units when each thread should get at least
 * `min_per_thread` of them: between 1 and the context's count (1 without
 * OpenMP, or with a NULL context). */
static inline int tg_par_threads(const tg_ctx *ctx, double work, double min_per_thread)
{
#ifdef TG_HAVE_OPENMP
    if (work < 2 * min_per_thread)           /* the common, small case: one compare */
        return 1;
    int nt = ctx ? tg_ctx_threads(ctx) : 1;
    if (nt > 1 && work < min_per_thread * nt)
        nt = (int)(work / min_per_thread);
    return nt;
#else
    (void)ctx; (void)work; (void)min_per_thread;
    return 1;
#endif
}

/* Part t of nt of [0, n): [*lo, *hi), boundaries at multiples of grain
 * (grain >= 1), parts as even as the grain allows, in order. */
static inline void tg_par_range(int64_t n, int64_t grain, int t, int nt, int64_t *lo, int64_t *hi)
{
    int64_t units = (n + grain - 1) / grain;
    int64_t a = units * t / nt, b = units * (t + 1) / nt;
    *lo = a * grain < n ? a * grain : n;
    *hi = b * grain < n ? b * grain : n;
}

/* Run the statements `...` over a range [lo, hi) of [0, n): on nt threads,
 * each its own part (grain as tg_par_range), or, for nt <= 1, once over the
 * whole range on the calling thread. lo and hi are declared by the macro;
 * variables from outside are shared (read them, or write disjoint parts).
 * TG_PAR_PART in the statements is the part's index, 0 to nt - 1 (0 when
 * serial): index per-part scratch with it, not with tg_par_id(), which in
 * the serial case is the caller's thread number inside a parallel region
 * of its own (a context used by one thread of a user's OpenMP loop). */
#define TG_PAR_PART tg_par_part_
#define TG_PAR_FOR(nt, n, grain, lo, hi, ...)                                      \
    do {                                                                           \
        const int64_t tg_pn_ = (n), tg_pg_ = (grain);                              \
        const int tg_pt_ = (nt);                                                   \
        if (tg_pt_ > 1) {                                                          \
            TG_OMP(parallel num_threads(tg_pt_))                                   \
            {                                                                      \
                const int tg_par_part_ = tg_par_id();                              \
                int64_t lo, hi;                                                    \
                tg_par_range(tg_pn_, tg_pg_, tg_par_part_, tg_par_n(), &lo, &hi);  \
                (void)tg_par_part_;                                                \
                __VA_ARGS__                                                        \
            }                                                                      \
        } else {                                                                   \
            const int tg_par_part_ = 0;                                            \
            const int64_t lo = 0, hi = tg_pn_;                                     \
            (void)tg_pg_;                                                          \
            (void)tg_par_part_;                                                    \
            __VA_ARGS__                                                            \
        }                                                                          \
    } while (0)

/* Thresholds (measured on a Zen 4 core, benchmarks/bench_par.c): an
 * OpenMP fork/join costs a few microseconds, so a part must be worth more
 * than that. Elements per thread for streaming loops (elementwise ops, the
 * optimizers), and flops per thread for GEMM. */
#define TG_PAR_MIN_ELEMS (32 * 1024)
#define TG_PAR_MIN_FLOPS (2.0 * 1024 * 1024)

#endif
