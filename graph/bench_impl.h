/* bench_impl.h — private to graph/bench*.c: clocks, the adaptive timing
 * loop, input construction and the independent references.
 *   bench.c        tg_bench_op: checks, kernel and engine timing
 *   bench_input.c  sample inputs, the user-shape rule, case labels
 *   bench_probe.c  clocks, the timing loop, the machine probe
 *   bench_ref.c    independent references (matmul: the naive GEMM)
 *   bench_io.c     table, JSON, CSV, baseline comparison */
#ifndef TG_BENCH_IMPL_H
#define TG_BENCH_IMPL_H

#include "tg_bench.h"

/* Seconds: monotonic wall clock, and this process's CPU time. */
double bench_now(void);
double bench_cpu_now(void);

/* Time fn(ud): a warm-up of a tenth of `budget` seconds (at least one
 * call), then batches of k calls (k chosen so a batch lasts about budget/64,
 * at least 20 µs) until `budget` seconds and `min_reps` batches. Fills the
 * timing fields of st (not flops, bytes or rates). TG_ERR_NOMEM. */
tg_status bench_measure(void (*fn)(void *), void *ud, double budget, int min_reps,
                        tg_bench_stats *st);

/* Rates, bound and % of peak of st from flops and bytes per call, for a
 * run on `threads` threads (the peaks of that many: see tg_bench.h). */
void bench_rates(tg_bench_stats *st, double flops, double bytes, const tg_bench_machine *m,
                 tg_dtype dt, int threads);

/* Fill proto (def, ctx set; its context's RNG seeded) with f64 inputs: sample
 * `variant`, or (variant < 0) the user shape through the op's sample_shape
 * hook or the generic rule. On failure returns the status with `why` set. */
tg_status bench_make_inputs(tg_node *proto, int variant, int ndim, const int64_t *shape,
                            char *why, size_t cap);

/* "v0:3x4,3x1" for a variant, the shape "4096x4096" for the user's. */
void bench_label(char *buf, size_t cap, int variant, const tg_node *proto, int ndim,
                 const int64_t *shape);

/* An independent reference for the forward of built-in ops that have one
 * (matmul: core/gemm_ref.c's naive GEMM on sampled rows), found by name.
 * Returns 1 with msg set on a mismatch, 0 when the output agrees or there
 * is no reference, -1 with msg set when the reference cannot run. */
int bench_ref_check(const tg_node *n, char *msg, size_t cap);

#endif
