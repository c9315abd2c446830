/* reduce_run.h — the contiguous run kernels of the reductions (private to
 * ops/reduce.c, which includes it once): sums in double over a run of
 * `len` elements, per dtype, and RUN_KERNEL(name, x) to pick one by x's
 * type. */
#ifndef TG_REDUCE_RUN_H
#define TG_REDUCE_RUN_H

#include "ops_common.h"
#include "vmath.h"

/* Contiguous kernels on a run of `len` elements, per dtype. Sums are in
 * double, element i in partial sum i % 32, combined in a fixed order:
 * deterministic, and four independent vector chains (eight partial sums
 * were one chain: sum of 1024x1024 f32 in cache 131-152 -> 92-94 us).
 *   dsum:  sum (x - mu)           dssd: sum (x - mu)^2
 *   dsexp: sum exp(x - shift)  (ops/vmath.h's exp, 16 lanes as tg_row_sum)
 * (The max or min of a run is tg_row_ext, ops_common.h.) */
#define RUN_PARTS 32
static inline double run_parts_total(const double *a)
{
    double b[8];
    for (int j = 0; j < 8; j++)
        b[j] = (a[j] + a[j + 8]) + (a[j + 16] + a[j + 24]);
    return ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}
/* The sum of EXPR over the run, d = (double)x[i] - mu in it. */
#define RUN_SUM(x, len, mu, EXPR) do {                                         \
        double a_[RUN_PARTS] = {0};                                             \
        int64_t i_ = 0;                                                         \
        for (; i_ + RUN_PARTS <= (len); i_ += RUN_PARTS)                        \
            for (int j_ = 0; j_ < RUN_PARTS; j_++) {                            \
                double d = (double)(x)[i_ + j_] - (mu);                         \
                a_[j_] += (EXPR);                                               \
            }                                                                   \
        for (int j_ = 0; i_ + j_ < (len); j_++) {                               \
            double d = (double)(x)[i_ + j_] - (mu);                             \
            a_[j_] += (EXPR);                                                   \
        }                                                                       \
        return run_parts_total(a_);                                             \
    } while (0)
#define DEF_RUN_KERNELS(T, sfx)                                                 \
    static double dsum_##sfx(const T *x, int64_t len, double mu) { RUN_SUM(x, len, mu, d); } \
    static double dssd_##sfx(const T *x, int64_t len, double mu) { RUN_SUM(x, len, mu, d * d); } \
    static double dsexp_##sfx(const T *x, int64_t len, double shift)           \
    {                                                                           \
        double s;                                                               \
        const T sh = (T)shift;                                                  \
        TG_LANE_SUM(s, k, 0, len, (double)VM(exp, (T)(x[k] - sh)));             \
        return s;                                                               \
    }
DEF_RUN_KERNELS(float, f32)
DEF_RUN_KERNELS(double, f64)
#define RUN_KERNEL(name, x) _Generic((x), const float *: name##_f32, const double *: name##_f64)

#endif
