/* tg_gradcheck.h — the gradient checker: compares an op's VJP (or a composite
 * function's tape gradient) with finite differences and checks the contracts
 * every VJP must keep, and says precisely where it is wrong.
 *
 * Method (tg_gradcheck_op):
 *   - The op runs at the node level (tg_node_run + def->backward), in a
 *     private context, on its own sample inputs (def->sample in f64; for an
 *     f32 check the float inputs are rounded to f32, so the f32 op and the
 *     f64 differences see the very same point).
 *   - The output is scalarised with a random cotangent u: L(x) = <u, f(x)>.
 *     Analytic: out->grad = u, zeroed input gradients, one call of backward.
 *   - Numeric: always in f64, with the op's f64 forward. Central differences
 *     (2- or 4-point) with a step scaled to |x|: h = c * max(1, |x|). Every
 *     element of inputs up to max_full elements; larger inputs are checked
 *     along random directions v: (L(x+hv) - L(x-hv)) / 2h against <grad, v>.
 *   - An element compares as |a - n| <= atol * max(1, g) + rtol * |n| + noise,
 *     where g is the largest |numeric| of that input and noise is the f64
 *     rounding floor of the difference quotient (16 eps sum|u_i f_i| / h).
 *     An element that fails is retried at h/2 (a kink or a steep stretch
 *     within h of x spoils the first estimate).
 *   - Kinks: an element that still fails but whose left and right one-sided
 *     differences disagree, by a jump that stays when the step is halved, and
 *     whose analytic value lies between them (a subgradient), is counted as
 *     non-differentiable (n_nondiff), not as a failure. So is a point where f
 *     is not finite within one step. An analytic value outside the one-sided
 *     slopes at a kink is a failure.
 *   - Inputs marked in def->nondiff and integer inputs are not checked. An
 *     op without a VJP (backward NULL) is checked as having a zero gradient:
 *     right for piecewise-constant ops, caught when a VJP was forgotten.
 *   - The contracts (TG_GC_* below) are checked on every variant.
 *   - Before every forward run the context's RNG is restored, so ops that
 *     draw random numbers (dropout) see the same draws each time. Reference
 *     runs start from zeroed arena memory and the uninit run from NaN bytes,
 *     so a read of memory nobody wrote shows as a difference.
 *
 * The library never prints; tg_gradcheck_report_print formats a report for
 * programs. Each call works in its own private context: calls with distinct
 * reports may run in parallel when the ops themselves are thread safe.
 */
#ifndef TG_GRADCHECK_H
#define TG_GRADCHECK_H

#include <stdio.h>
#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Contracts every VJP must keep: one bit each in report.contract_failures. */
enum {
    TG_GC_ACCUMULATE = 1u << 0,  /* adds into input grads (+=), never overwrites      */
    TG_GC_WRITES     = 1u << 1,  /* writes nothing but its input gradients: input and
                                    output data, out->grad and guard words around
                                    every gradient buffer stay intact              */
    TG_GC_UNINIT     = 1u << 2,  /* reads no uninitialised memory: with fresh arena
                                    memory poisoned (NaN bytes) the forward and the
                                    gradients are bit-identical                    */
    TG_GC_DETERMINISM = 1u << 3, /* two identical VJP runs give identical bits      */
    TG_GC_ALIAS      = 1u << 4,  /* one tensor passed as inputs i and j gets the sum
                                    of both contributions (d/dx f(x, x))           */
    TG_GC_NULL_GRAD  = 1u << 5,  /* an input's gradient does not change when the
                                    other inputs' grads are NULL (not needed)      */
    TG_GC_FWD_DETERMINISM = 1u << 6, /* two forward runs give identical bits       */
    TG_GC_FWD_FINITE = 1u << 7,  /* the forward is finite on the op's own samples   */
    TG_GC_FWD_F32    = 1u << 8,  /* (f32 checks) the f32 forward agrees with the f64
                                    forward at the same inputs                     */
    TG_GC_OVERWRITE  = 1u << 9,  /* every input the op declares it overwrites
                                    (tg_op_def.overwrites), handed over as the
                                    sweep hands a fresh gradient (NaN bytes,
                                    flagged TG_TENSOR_GRAD_ZERO), gets the bits
                                    it gets from a zeroed buffer                   */
    TG_GC_PASS       = 1u << 10  /* every input the op declares it passes the output's
                                    gradient to (tg_op_def.passes_grad), when it has
                                    the output's size, gets exactly that gradient  */
};
#define TG_GC_N_CONTRACTS 11
#define TG_GC_ALL_CONTRACTS ((1u << TG_GC_N_CONTRACTS) - 1)

/* Short name of one contract bit ("accumulate", "alias", ...); "?" if unknown. */
const char *tg_gradcheck_contract_name(unsigned bit);

/* Options. A zeroed struct (or NULL) means: f64, every variant, every
 * contract, automatic tolerances and steps, seed 0. */
typedef struct tg_gradcheck_opts {
    int      f32;            /* run the op under test in f32 (default f64); the
                                finite differences are always f64             */
    int      single_variant; /* non-zero: check only sample `variant`          */
    int      variant;
    double   atol, rtol;     /* 0 = defaults: f64 1e-6 / 1e-5, f32 1e-4 / 2e-3,
                                times def->check_tol_scale when set            */
    double   step;           /* c in h = c * max(1, |x|); 0 = auto:
                                cbrt(eps) (2-point), eps^(1/5) (4-point)       */
    int      four_point;     /* 4-point central stencil instead of 2-point     */
    int64_t  max_full;       /* inputs with more elements are checked along
                                random directions; 0 = 512                     */
    int      n_dirs;         /* directions per large input; 0 = 8              */
    uint64_t seed;           /* sample inputs, cotangent, directions           */
    unsigned skip_contracts; /* TG_GC_* bits not to check                      */
} tg_gradcheck_opts;

/* One compared element (or direction). */
typedef struct tg_gradcheck_elem {
    int     variant;         /* sample variant (-1 for a composite function)   */
    int     input;           /* input index                                    */
    int     alias;           /* aliasing check: the other input passed the same
                                tensor; -1 otherwise                           */
    int     dir;             /* directional check: direction number; -1 for an
                                element check                                  */
    int64_t index;           /* flat (row-major) element index; -1 for a direction */
    int     ndim;            /* coordinates of the element in the input        */
    int64_t coord[TG_MAX_DIMS];
    double  analytic, numeric;
    double  abs_err, rel_err;/* |a - n|, |a - n| / max(|a|, |n|)               */
    double  tol;             /* the tolerance it was held to                   */
    double  step;            /* h used                                         */
} tg_gradcheck_elem;

#define TG_GC_WORST 8

typedef struct tg_gradcheck_report {
    const char *op;              /* op name, "fn" for a composite function     */
    tg_dtype dtype;              /* dtype the op ran in                         */
    int      passed;             /* 1 when every comparison and contract held   */
    int      n_variants;         /* sample variants checked                     */
    double   max_abs_err, max_rel_err; /* over compared (differentiable) points */
    int64_t  n_checked;          /* elements and directions compared            */
    int64_t  n_failed;           /* of which outside tolerance                  */
    int64_t  n_nondiff;          /* skipped as non-differentiable (kinks)       */
    int      n_alias_pairs;      /* input pairs checked for aliasing            */
    tg_gradcheck_elem worst[TG_GC_WORST]; /* largest error / tolerance first    */
    int      n_worst;
    unsigned contract_failures;  /* TG_GC_* bits that failed                    */
    char     contract_detail[256]; /* what the first contract failure saw       */
    char     message[512];       /* one line naming the op, dtype, variant, input
                                    and element of the worst failure            */
} tg_gradcheck_report;

/* Check `def` on its sample inputs (all variants, or opts->variant). Fills
 * `rep` (required). A wrong VJP or a broken contract gives TG_OK with
 * rep->passed == 0. The status reports the check's own failure, with
 * rep->message saying why: TG_ERR_ARG (NULL def or rep, an op without
 * sample inputs, a variant out of range), TG_ERR_NOMEM, or the op's own
 * error when its sample or its forward fails on its own samples. */
tg_status tg_gradcheck_op(const tg_op_def *def, const tg_gradcheck_opts *opts,
                          tg_gradcheck_report *rep);

/* A composite function: records ops on `ctx` from `inputs` and returns the
 * output (NULL with ctx's error set on failure). It must make any tensor it
 * creates in inputs[0]'s dtype, and must not keep pointers across calls. */
typedef tg_tensor *(*tg_gradcheck_fn)(tg_ctx *ctx, tg_tensor *const *inputs, int n_inputs,
                                      void *ud);

/* Check the tape's gradient of fn against f64 finite differences at
 * `inputs` (1..TG_MAX_IN float tensors, all differentiated; read only, any
 * context). fn runs in a private context: analytic in opts->f32 ? f32 : f64
 * through tg_backward_seed, numeric in f64 under no-grad. Contracts checked:
 * determinism, uninit, fwd_determinism, fwd_finite. Status as for
 * tg_gradcheck_op (TG_ERR_ARG for bad inputs; fn's error when it fails). */
tg_status tg_gradcheck_fn_check(tg_gradcheck_fn fn, void *ud, tg_tensor *const *inputs,
                                int n_inputs, const tg_gradcheck_opts *opts,
                                tg_gradcheck_report *rep);

/* Print a report: the summary line, the worst elements (variant, input,
 * coordinates, analytic, numeric, abs/rel error, tolerance, step) and the
 * failed contracts. For programs; the library itself never prints. */
void tg_gradcheck_report_print(const tg_gradcheck_report *rep, FILE *f);

#ifdef __cplusplus
}
#endif
#endif /* TG_GRADCHECK_H */
