/* tg_bench.h — the op-throughput benchmark: times any tg_op_def (built-in
 * or a user's, the same interface the gradient checker takes) and reports
 * time per call, GFLOP/s and GB/s from the op's cost(), and the share of
 * this machine's measured peak.
 *
 * Method (tg_bench_op), per case (a sample variant, or a user-given shape):
 *   - Inputs: the op's sample (def->sample in f64, float inputs rounded to
 *     f32 so both dtypes see the very same point), or at a user shape the
 *     op's sample_shape hook, or the generic rule below.
 *   - Check first: the output in the benchmarked dtype is compared with the
 *     op's forward in the other dtype at the same inputs (f64 is the
 *     reference of an f32 run, and f32 cross-checks an f64 run), and, for
 *     matmul, with the naive GEMM of core/gemm_ref.c on sampled rows. A
 *     mismatch is reported in the case and the case is not timed.
 *   - Kernel time: def->forward and def->backward called directly on a
 *     prepared node (output, cotangent and input gradients allocated once;
 *     the arena rewound between calls): "fwd", "bwd" (the VJP alone, at the
 *     last forward's saved state) and "fwdbwd".
 *   - Engine time: the same op through tg_apply with recording ("engine_fwd"),
 *     and tg_apply + tg_backward_seed + tg_ctx_reset ("engine_fwdbwd"), on
 *     heap inputs that require gradients, as a training step runs it. The
 *     engine overhead is engine minus kernel median.
 *   - First call: the first forward and the first VJP of the case are timed
 *     alone (libxsmm JIT code generation for a new shape, cold caches),
 *     apart from the warm calls. "First" means first in this process for
 *     that shape and dtype: the GEMM probe (256³) and a reference run in the
 *     other dtype may have generated some kernels already.
 *   - Timing: a warm-up (a tenth of the budget), then batches of calls, each
 *     batch long enough to swamp the clock, until the time budget is spent
 *     and at least min_reps batches are in; median, minimum and IQR of the
 *     per-call wall time over the batches, and the median process CPU time.
 *   - Roofline: an op phase is compute-bound when its arithmetic intensity
 *     (flops / bytes) is above the machine balance (GEMM peak / memory
 *     bandwidth): its share of peak is then GFLOP/s over the single-thread
 *     GEMM peak times the thread count (capped at the CPUs), else GB/s over
 *     the memory bandwidth measured with as many threads (one, or all CPUs
 *     for a multi-thread run). Small inputs that stay in cache can exceed
 *     100% of the (DRAM) bandwidth.
 *
 * Generic user-shape rule, for an op without a sample_shape hook: when
 * every float input of sample variant 0 has the same shape, the float
 * inputs are made at the user's shape with values in the sample's range
 * (uniform in [min, max]; when the sample keeps away from 0, so do they),
 * and the params of variant 0 are kept. Integer inputs (labels, indices,
 * masks) of the float inputs' shape take the user's shape, those whose
 * shape is a leading part of it (labels of logits) the matching leading
 * part of the user's shape, values uniform in the sample's [min, max]; any
 * other integer input is kept as sampled. Otherwise the case reports that
 * the op "needs a sample_shape hook". The op's own shape function still
 * judges the result (an error names the shapes). The built-in hooks read
 * the shape as: matmul M,N,K or B,M,N,K; linear M,N,K; batch_norm
 * N,C[,spatial...]; layer_norm ...,D (normalised over D); permute x with
 * its axes reversed; reshape x flattened; concat and broadcast_to the
 * output (two halves of its first axis; a first axis of 1 repeated).
 *
 * The library never prints on its own; tg_bench_print and the writers
 * format results for programs. Each tg_bench_op call works in private
 * contexts; timings are only meaningful one at a time.
 */
#ifndef TG_BENCH_H
#define TG_BENCH_H

#include <stdio.h>
#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the machine's peaks -------------------------------------------------- */

typedef struct tg_bench_cache {
    char    type[16];        /* "Data", "Instruction", "Unified"        */
    int     level;
    int64_t size;            /* bytes                                    */
    int     num_sharing;     /* CPUs sharing it                          */
} tg_bench_cache;

#define TG_BENCH_MAX_CACHES 8

typedef struct tg_bench_machine {
    double  gemm_gflops_f32; /* single-thread tg_gemm, 256³, best batch  */
    double  gemm_gflops_f64;
    double  mem_gbps;        /* triad a = b + s·c over arrays far larger
                                than the last-level cache (best batch;
                                24 bytes per element, no write-allocate) */
    double  copy_gbps;       /* copy a = b, same arrays (16 bytes)        */
    double  mem_gbps_all;    /* the triad on num_cpus threads, each its own
                                part (= mem_gbps without OpenMP or with
                                one CPU): the bound for a multi-thread run */
    int64_t mem_array_bytes; /* size of each probe array                  */
    int     num_cpus;
    double  mhz_per_cpu;     /* from /proc/cpuinfo, 0 when unknown        */
    double  load_avg[3];     /* at probe time, from /proc/loadavg         */
    char    host_name[64];
    int     n_caches;
    tg_bench_cache caches[TG_BENCH_MAX_CACHES];
} tg_bench_machine;

/* Measure the machine: tg_gemm f32 and f64 at 256³ on one thread, and the
 * memory bandwidth on one thread and on all CPUs (arrays of max(4 × last-level cache, 64 MiB), capped at
 * 512 MiB, each). `time_budget` seconds per probe (0 = 0.2; negative: only
 * describe the machine — CPUs, caches, load — and leave the peaks 0, so no
 * % of peak is reported). Fills *m (required). TG_ERR_NOMEM when the probe
 * arrays cannot be allocated (the bandwidth figures are then 0),
 * TG_ERR_BACKEND when the GEMM fails. */
tg_status tg_bench_probe(tg_bench_machine *m, double time_budget);

/* ---- options and results -------------------------------------------------- */

/* The timed phases of one case. */
enum {
    TG_BENCH_FWD = 0,        /* def->forward                                */
    TG_BENCH_BWD,            /* def->backward (the VJP only), adding into the
                                input gradients (as into a leaf's)          */
    TG_BENCH_BWD_FRESH,      /* the VJP writing fresh gradients, as the sweep
                                hands them to an op that declares it
                                (tg_op_def.overwrites); only for such ops.
                                Bytes: bwd's less one read of each of those
                                gradients                                   */
    TG_BENCH_FWDBWD,         /* forward then VJP                            */
    TG_BENCH_ENGINE_FWD,     /* tg_apply, recording                         */
    TG_BENCH_ENGINE_FWDBWD,  /* tg_apply + tg_backward_seed + tg_ctx_reset  */
    TG_BENCH_N_PHASES
};

/* "fwd", "bwd", "bwd_fresh", "fwdbwd", "engine_fwd", "engine_fwdbwd"; "?"
 * if unknown. */
const char *tg_bench_phase_name(int phase);

enum { TG_BENCH_BOUND_UNKNOWN = 0, TG_BENCH_BOUND_COMPUTE, TG_BENCH_BOUND_MEMORY };

typedef struct tg_bench_opts {
    tg_dtype dtype;          /* TG_F32 (the zero value) or TG_F64           */
    int      threads;        /* tg_ctx_set_threads on the bench contexts; 0 = 1 */
    double   time_budget;    /* seconds per measurement; 0 = 0.2            */
    int      min_reps;       /* timed batches at least; 0 = 5               */
    int      single_variant; /* non-zero: only sample `variant`             */
    int      variant;
    int      ndim;           /* > 0: benchmark at this user shape instead   */
    int64_t  shape[TG_MAX_DIMS];  /* of the samples (a single case)         */
    uint64_t seed;           /* sample inputs, cotangent                    */
    const tg_bench_machine *machine;  /* peaks for the % figures; NULL:
                                         tg_bench_op probes on every call   */
} tg_bench_opts;

typedef struct tg_bench_stats {
    int64_t iterations;      /* calls timed (0: not measured)               */
    int     samples;         /* timed batches                               */
    double  median_ns, min_ns, q1_ns, q3_ns, iqr_ns;  /* wall, per call     */
    double  cpu_ns;          /* median process CPU time per call            */
    double  flops, bytes;    /* work of one call, from the op's cost()      */
    double  gflops, gbps;    /* at the median                               */
    int     bound;           /* TG_BENCH_BOUND_*                            */
    double  pct_peak;        /* % of the bound resource's peak (0: unknown) */
} tg_bench_stats;

typedef struct tg_bench_case {
    int        variant;      /* sample variant; -1 for the user shape        */
    char       label[96];    /* "v0:3x4,3x4" (input shapes), or the user's
                                shape "4096x4096"                           */
    tg_status  status;       /* TG_OK: checked (then timed unless mismatch) */
    int        mismatch;     /* output disagreed with the reference         */
    char       message[320]; /* why not timed: the mismatch (element, values)
                                or the error                                */
    int        has_cost, has_backward;
    int        has_fresh;    /* the op overwrites a differentiable input's
                                gradient: bwd_fresh is timed                */
    tg_op_cost cost;
    tg_bench_stats phase[TG_BENCH_N_PHASES];
    double     overhead_fwd_ns;    /* engine_fwd - fwd (medians)             */
    double     overhead_fwdbwd_ns; /* engine_fwdbwd - fwdbwd                 */
    double     first_fwd_ns, first_bwd_ns;  /* first calls, alone           */
} tg_bench_case;

#define TG_BENCH_MAX_CASES 8

typedef struct tg_bench_result {
    char      op[64];
    tg_dtype  dtype;
    int       threads;
    int       n_cases;
    tg_bench_case cases[TG_BENCH_MAX_CASES];
    int       n_timed, n_mismatch, n_error;
    tg_bench_machine machine;
    char      message[320];  /* the harness's own failure, "" otherwise     */
} tg_bench_result;

/* Benchmark `def` (see the method above). Fills `res` (required). A
 * mismatch or an op that rejects the user shape gives TG_OK with the case
 * marked (status, mismatch, message). The status reports the harness's own
 * failure, with res->message saying why: TG_ERR_ARG for a NULL or
 * incomplete def, an op without samples, a variant out of range, a bad
 * dtype or shape in opts; TG_ERR_NOMEM. */
tg_status tg_bench_op(const tg_op_def *def, const tg_bench_opts *opts, tg_bench_result *res);

/* ---- output ---------------------------------------------------------------- */

/* The benchmark name of a case's phase:
 *   "<op>/<dtype>/<label>/<phase>" plus "/threads:N" when N > 1
 * e.g. "add/f32/4096x4096/fwd". Returns buf. */
char *tg_bench_name(const tg_bench_result *r, const tg_bench_case *c, int phase,
                    char *buf, size_t cap);

/* An aligned table: one row per timed phase (median, min, IQR, cpu, GFLOP/s,
 * GB/s, % of peak and its resource, first call or engine overhead), and
 * one line per case that was not timed. Times are wall clock except "cpu"
 * (median process CPU time per call: on a loaded machine the wall median
 * grows with time spent descheduled, CPU time much less). `header`
 * non-zero: column heads. */
void tg_bench_print(FILE *f, const tg_bench_result *r, int header);
/* One line describing the machine's peaks. */
void tg_bench_print_machine(FILE *f, const tg_bench_machine *m);

/* Google Benchmark's JSON layout ("context" with date, host_name, num_cpus,
 * mhz_per_cpu, caches, load_avg and the measured peaks; "benchmarks": one
 * entry per timed phase with name, run_name, run_type "iteration",
 * iterations, real_time (median), cpu_time, time_unit "ns" and counters
 * GFLOPS, GBps, pct_peak, min_ns, iqr_ns, first_call_ns, overhead_ns), so
 * Google Benchmark's tools/compare.py can diff two runs. The context is
 * taken from res[0]->machine. TG_ERR_IO when the write fails. */
tg_status tg_bench_write_json(FILE *f, const tg_bench_result *const *res, int n);
/* One CSV row per timed phase, with a header. */
tg_status tg_bench_write_csv(FILE *f, const tg_bench_result *const *res, int n);

/* ---- comparison with a baseline ------------------------------------------- */

typedef struct tg_bench_delta {
    char   name[256];
    double base_ns, new_ns;  /* medians (real_time)                         */
    double change;           /* new / base - 1                              */
    int    regression;       /* change > threshold                          */
} tg_bench_delta;

typedef struct tg_bench_comparison {
    double threshold;
    int    n_compared, n_regressions, n_improvements;
    int    n_new;            /* timed now, absent from the baseline         */
    int    n_deltas;
    tg_bench_delta *deltas;  /* n_compared entries, heap: tg_bench_comparison_free */
    char   message[320];     /* why the baseline could not be used          */
} tg_bench_comparison;

/* Compare the medians of `res` with a JSON file written by
 * tg_bench_write_json (or Google Benchmark: entries of run_type "iteration",
 * any time_unit), matching by name. A benchmark slower by more than
 * `threshold` (0.1 = 10%; <= 0 means 0.1) is flagged as a regression,
 * faster by as much as an improvement. TG_ERR_IO / TG_ERR_FORMAT when the
 * baseline cannot be read or parsed (cmp->message says why), TG_ERR_NOMEM. */
tg_status tg_bench_compare(const char *baseline_json, const tg_bench_result *const *res, int n,
                           double threshold, tg_bench_comparison *cmp);
void tg_bench_comparison_free(tg_bench_comparison *cmp);
/* Each compared benchmark with its change; regressions marked. */
void tg_bench_comparison_print(FILE *f, const tg_bench_comparison *cmp);

#ifdef __cplusplus
}
#endif
#endif /* TG_BENCH_H */
