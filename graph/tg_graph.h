/* tg_graph.h — the op interface, recording, the reverse sweep.
 *
 * An op is a tg_op_def: shape inference, a forward kernel, a VJP, sample
 * inputs for gradient checking and benchmarking, and its cost. Built-in ops
 * (ops/) and a user's own ops use the same struct and go through the same
 * tg_apply, gradient checker and benchmark.
 *
 * Recording: tg_apply runs an op and, when grad mode is on and some input
 * requires a gradient, appends a node to the context's tape. Recording order
 * is a topological order, so tg_backward sweeps the tape in reverse calling
 * each node's VJP, which ACCUMULATES (+=) into its inputs' gradients. An
 * intermediate's gradient buffer is zeroed only when its first contributor
 * needs that: an op that declares it writes a fresh buffer whole
 * (tg_op_def.overwrites) gets it unzeroed, one whose contribution is the
 * output's gradient itself (tg_op_def.passes_grad) gets that buffer.
 */
#ifndef TG_GRAPH_H
#define TG_GRAPH_H

#include <stdio.h>
#include "tg_core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TG_MAX_IN     16   /* most inputs an op can take (concat, stack) */
#define TG_VARIADIC   (-1) /* tg_op_def.n_in for ops taking 1..TG_MAX_IN  */
#define TG_MAX_PARAMS 8

/* Small op parameters (axes, slopes, flags), copied into the node. Each op
 * documents which slots it uses. */
typedef struct tg_op_params {
    double  f[TG_MAX_PARAMS];
    int64_t i[TG_MAX_PARAMS];
} tg_op_params;

struct tg_op_def;

/* One application of an op. Lives in the context's arena. */
typedef struct tg_node {
    const struct tg_op_def *def;
    tg_ctx       *ctx;
    int           n_in;
    tg_tensor    *in[TG_MAX_IN];
    tg_tensor    *out;
    void         *saved;   /* op-private data from forward, in the arena     */
    tg_op_params  p;
    void         *user;    /* for a user's op: whatever it passed to tg_apply */
    const char   *file;    /* where the op was recorded, when known          */
    int           line;
} tg_node;

/* Work of one call, for GFLOP/s and GB/s. Backward figures count the VJP of
 * every differentiable input. */
typedef struct tg_op_cost {
    double fwd_flops, fwd_bytes;
    double bwd_flops, bwd_bytes;
} tg_op_cost;

/* The layout of tg_op_def, raised whenever it changes (2: overwrites and
 * passes_grad). A shared object that exports ops to the tapegrad commands
 * (--load) exports it beside them, so an object built against another
 * layout is refused instead of misread:
 *     const tg_op_def *const tg_user_ops[] = { &my_op_def, NULL };
 *     const int tg_user_ops_abi = TG_OP_ABI; */
#define TG_OP_ABI 2

typedef struct tg_op_def {
    const char *name;
    int         n_in;          /* inputs, or TG_VARIADIC                      */
    uint32_t    nondiff;       /* bit i: input i never gets a gradient (labels,
                                  indices, masks); the checker skips it       */

    /* Validate n->in and n->p; write the output's dtype, ndim and shape. On
     * bad input record the error with tg_ctx_fail(n->ctx, ...) naming the op
     * and the shapes, and return its status. Inputs are never NULL here. */
    tg_status (*shape)(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape);

    /* Compute n->out->data (already allocated). May allocate n->saved from
     * the arena with tg_ctx_alloc. Returns TG_OK or a recorded error. */
    tg_status (*forward)(tg_node *n);

    /* The VJP: read n->out->grad and ADD the contribution to n->in[i]->grad
     * for every input whose grad is not NULL (NULL means: not needed). Must
     * not write anywhere else, nor read memory it did not write. NULL for an
     * op with no differentiable input. */
    void (*backward)(tg_node *n);

    /* Bit i: the VJP may be handed an UNWRITTEN gradient buffer for input i
     * and then writes every element of it (=, not +=). The sweep does so
     * when this node is the first to contribute to an intermediate's
     * gradient, sparing the buffer's zeroing and the VJP's read of it; it
     * marks the buffer TG_TENSOR_GRAD_ZERO ("take it as +0"), which the
     * VJP must test per call: without the flag it adds as always. An op
     * declaring bit i must, when in[i] has the flag, write all of
     * in[i]->grad with the bits adding to +0 would give (0 + g: write
     * `(T)0 + g`, not g, so -0 becomes +0), unless another input is the
     * same tensor or shares its gradient (tg_vjp_overwrites, below,
     * checks all of it); the gradient checker's "overwrite" contract
     * holds it to that with a poisoned buffer. 0: the VJP only ever adds,
     * and the sweep zeroes the buffer first. */
    uint32_t overwrites;

    /* Bit i: input i's contribution is the output's gradient itself, value
     * for value, whenever input i has the output's dtype and element count
     * (add, sub's first input, reshape). The sweep may then make the
     * output's gradient buffer input i's (no copy: its first contribution
     * is in place) and call the VJP with in[i]->grad NULL for that input;
     * it does so for an intermediate input no VJP has written yet, when
     * neither tensor keeps its gradient (tg_retain_grad) and no other input
     * shares it. The checker's "pass" contract holds the op to it. */
    uint32_t passes_grad;

    /* Sample inputs for gradient checking and benchmarking: case `variant`
     * (0 .. n_samples-1) in float dtype `dt`. Fill n->in, n->n_in and n->p
     * with tensors made in n->ctx (values off kinks and inside the domain;
     * the cases should include edge shapes such as size-1 dims). Returns
     * TG_OK, or TG_ERR_ARG for a variant out of range. */
    tg_status (*sample)(tg_node *n, tg_dtype dt, int variant);
    int n_samples;

    /* Cost of one call with n's inputs and output. NULL: unknown. */
    void (*cost)(const tg_node *n, tg_op_cost *c);

    /* Gradient-check hints: relative tolerance multiplier (0 = 1) and,
     * where the op is only piecewise smooth, whether kinks are expected. */
    double check_tol_scale;

    /* Optional, for the benchmark at a user-given problem size: like
     * sample, but fill n->in, n->n_in and n->p with inputs (dtype dt) for
     * the problem `shape` (ndim dims), in the op's own terms (matmul: M,N,K
     * or B,M,N,K). TG_ERR_SHAPE (through tg_op_fail) when the shape does
     * not describe a problem of this op. NULL: the benchmark applies a
     * generic rule (see tg_bench.h). */
    tg_status (*sample_shape)(tg_node *n, tg_dtype dt, int ndim, const int64_t *shape);
} tg_op_def;

/* Whether another input of n is input i's tensor, or has a gradient buffer
 * and it is input i's: a contribution through it adds to input i's, so
 * input i's gradient may not be overwritten nor handed a buffer. */
static inline int tg_node_input_shared(const tg_node *n, int i)
{
    const tg_tensor *t = n->in[i];
    for (int k = 0; k < n->n_in; k++)
        if (k != i && (n->in[k] == t || (t->grad && n->in[k]->grad == t->grad)))
            return 1;
    return 0;
}

/* For a VJP (built-in or a user's): whether it writes input i's gradient
 * instead of adding to it. The op declares it may (tg_op_def.overwrites
 * bit i), the gradient is to be taken as +0 (TG_TENSOR_GRAD_ZERO: the
 * sweep's fresh buffer, unwritten, or a parameter's zeroed one) and no
 * other input shares it (tg_node_input_shared). When it says 1, the VJP
 * must write every element, as `(T)0 + g`. */
static inline int tg_vjp_overwrites(const tg_node *n, int i)
{
    const tg_tensor *t = n->in[i];
    return t->grad && (t->flags & TG_TENSOR_GRAD_ZERO) && ((n->def->overwrites >> i) & 1u) &&
           !tg_node_input_shared(n, i);
}

/* ---- applying and recording ---------------------------------------------- */

/* Run `def` on `in[0..n_in)` with params `p` (NULL = all zero) and return the
 * output, an arena tensor valid until tg_ctx_reset. Records a node when grad
 * mode is on and an input requires a gradient; the output then requires one.
 * Returns NULL when an input is NULL, the context already has an error, or
 * the op rejects its inputs (the error names the op and the shapes). */
tg_tensor *tg_apply(tg_ctx *ctx, const tg_op_def *def, tg_tensor *const *in, int n_in,
                    const tg_op_params *p, void *user);

/* Like tg_apply, remembering the caller's file:line for error reports. */
tg_tensor *tg_apply_at(tg_ctx *ctx, const tg_op_def *def, tg_tensor *const *in, int n_in,
                       const tg_op_params *p, void *user, const char *file, int line);

/* Lower level, for the gradient checker and the benchmark: with n->def,
 * n->ctx, n->in, n->n_in, n->p (and n->user) filled in, validate, allocate
 * n->out in the arena and run forward. Never records. */
tg_status tg_node_run(tg_node *n);

/* Grad mode. Returns the previous setting, so scopes nest:
 *     int prev = tg_set_grad_enabled(ctx, 0); ... tg_set_grad_enabled(ctx, prev); */
int tg_set_grad_enabled(tg_ctx *ctx, int on);
int tg_grad_enabled(const tg_ctx *ctx);
#define TG_NO_GRAD(ctx) \
    for (int tg_ng_prev_ = tg_set_grad_enabled((ctx), 0), tg_ng_once_ = 1; tg_ng_once_; \
         tg_ng_once_ = 0, tg_set_grad_enabled((ctx), tg_ng_prev_))

/* A tensor sharing t's data that requires no gradient and is cut from the
 * graph. Arena header; the data stays owned by t. */
tg_tensor *tg_detach(tg_ctx *ctx, tg_tensor *t);

/* Keep this intermediate's gradient after tg_backward (otherwise only
 * leaves keep theirs; intermediate gradients are released after the sweep). */
void tg_retain_grad(tg_tensor *t);

/* ---- the reverse sweep --------------------------------------------------- */

/* Backpropagate from a scalar `loss` (numel 1): every tensor that requires a
 * gradient and that the loss depends on gets d loss / d tensor ADDED to its
 * grad. Calling it twice without zeroing accumulates. Errors (recorded on
 * the context and returned): NULL loss, a loss with more than one element,
 * a loss that requires no gradient. */
tg_status tg_backward(tg_ctx *ctx, tg_tensor *loss);

/* Vector-Jacobian product from a non-scalar output: as tg_backward, with
 * `seed` (same shape as out) as d loss / d out. A seed of out's dtype is
 * read in place, not copied (unless it shares memory with a gradient the
 * sweep writes first): it must not change until this returns. */
tg_status tg_backward_seed(tg_ctx *ctx, tg_tensor *out, const tg_tensor *seed);

/* Number of recorded nodes, and node i (0-based, recording order). */
size_t   tg_tape_size(const tg_ctx *ctx);
tg_node *tg_tape_node(const tg_ctx *ctx, size_t i);

/* Write the graph that `root` depends on as Graphviz dot: one box per op
 * (name, output shape and dtype), one ellipse per leaf. */
tg_status tg_graph_dot(tg_ctx *ctx, const tg_tensor *root, FILE *f);

/* ---- helpers for writing ops -------------------------------------------- */

/* Records "<op>: <message>" on n's context and returns s. */
tg_status tg_op_fail(const tg_node *n, tg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Allocate (from the arena) an uninitialised buffer the VJP can use; on
 * failure the context's error is set and NULL returned. */
void *tg_node_scratch(tg_node *n, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif /* TG_GRAPH_H */
