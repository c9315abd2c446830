/* tg_optim.h — the parameter store, optimizers, learning-rate schedules and
 * gradient clipping of the nn layer.
 *
 * Parameters live in a tg_params store: values, gradients and each piece of
 * optimizer state are one contiguous 64-byte-aligned block each, so zeroing
 * gradients is one memset and an optimizer step is one flat loop. The
 * tensors the store hands out are views into those blocks; use them in ops
 * like any tensor, and the reverse sweep accumulates straight into the
 * gradient block the optimizer reads.
 */
#ifndef TG_OPTIM_H
#define TG_OPTIM_H

#include "tg_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameter store ----------------------------------------------------- */
typedef struct tg_params tg_params;

/* An empty store whose parameters have dtype `dt` (TG_F32 or TG_F64); NULL
 * when out of memory or dt is not a float dtype. */
tg_params *tg_params_new(tg_dtype dt);
/* Frees the store and every tensor it handed out. NULL is fine. */
void       tg_params_free(tg_params *p);

/* Add a zero-initialised parameter that requires a gradient. `name` is
 * copied (at most 127 bytes; must be unique). The returned tensor is owned
 * by the store and valid until tg_params_free; its data and grad pointers
 * may move when a later parameter is added, so re-read them rather than
 * caching them across adds. NULL on a duplicate or bad name, bad shape or
 * no memory; `st` (may be NULL) says which. */
tg_tensor *tg_params_add(tg_params *p, const char *name, int ndim, const int64_t *shape, tg_status *st);
/* Remove every parameter from index n on (the last ones added), freeing
 * their tensors; n >= count does nothing. For undoing a builder that failed
 * part-way: call it before an optimizer is made over the store (an
 * optimizer's state is sized by the store when it is made). */
void       tg_params_truncate(tg_params *p, int n);

int         tg_params_count(const tg_params *p);
tg_tensor  *tg_params_get(const tg_params *p, int i);          /* NULL when out of range */
const char *tg_params_name(const tg_params *p, int i);
tg_tensor  *tg_params_find(const tg_params *p, const char *name);
tg_dtype    tg_params_dtype(const tg_params *p);
/* Total elements over all parameters (without alignment padding). */
int64_t     tg_params_numel(const tg_params *p);

/* The flat blocks: `len` elements each (padding included, always zero in
 * the gradient block). Parameter i occupies [offset(i), offset(i)+numel). */
void   *tg_params_values(const tg_params *p);
void   *tg_params_grads(const tg_params *p);
int64_t tg_params_len(const tg_params *p);
int64_t tg_params_offset(const tg_params *p, int i);

/* Zero every gradient. The store then knows they are zero (the tensors'
 * TG_TENSOR_GRAD_ZERO flag), so the next backward's first contribution to a
 * gradient may overwrite it instead of reading and adding to it (matmul and
 * linear do: it saves reading cold gradient memory; the result is the same
 * bits). The tape, the penalties and the clipping keep the flag right. If
 * you write into gradients yourself (through tg_params_grads or a tensor's
 * grad pointer) after zero_grad and before the next backward, call
 * tg_params_touch_grads first, or your values may be overwritten. Writing
 * after backward needs nothing. */
void    tg_params_zero_grad(tg_params *p);
/* Forget that the gradients are zero (see tg_params_zero_grad): the next
 * backward adds to whatever they hold. NULL is fine. */
void    tg_params_touch_grads(tg_params *p);

/* Threads for the loops over the store's blocks: zero_grad, gradient
 * clipping, and the step of every optimizer over this store (n < 1 is
 * taken as 1; the default is 1). Blocks too small to pay for threads stay
 * on the calling thread. Results do not depend on n: every element gets the
 * same arithmetic, and the norm of tg_clip_grad_norm is summed in fixed
 * blocks. No effect in a build without OpenMP. Not thread safe: set it
 * before training. */
void    tg_params_set_threads(tg_params *p, int n);
int     tg_params_threads(const tg_params *p);

/* Penalties added to the gradient (call after backward, before the step):
 * L2: g += 2·lambda·w (the gradient of lambda·Σw²); L1: g += lambda·sign(w).
 * Return the penalty's value lambda·Σw² or lambda·Σ|w| (to add to a
 * reported loss). Only parameters whose name matches `filter` are affected:
 * NULL means all, otherwise a suffix such as ".weight" (biases are usually
 * exempt). */
double tg_params_l2_penalty(tg_params *p, double lambda, const char *filter);
double tg_params_l1_penalty(tg_params *p, double lambda, const char *filter);

/* ---- gradient clipping -------------------------------------------------- */
/* Scale all gradients so their global L2 norm is at most max_norm; returns
 * the norm before clipping (NaN/Inf if a gradient is not finite, and then
 * nothing is scaled). */
double tg_clip_grad_norm(tg_params *p, double max_norm);
/* Clamp every gradient element to [-v, v]. */
void   tg_clip_grad_value(tg_params *p, double v);

/* ---- optimizers ---------------------------------------------------------- */
typedef enum tg_optim_kind {
    TG_OPTIM_SGD = 0,     /* momentum, dampening, Nesterov, L2 weight decay  */
    TG_OPTIM_ADAM,        /* L2 weight decay added to the gradient           */
    TG_OPTIM_ADAMW,       /* decoupled weight decay                          */
    TG_OPTIM_RMSPROP,     /* alpha, momentum, centered                       */
    TG_OPTIM_ADAGRAD      /* lr_decay, initial_accumulator_value             */
} tg_optim_kind;

/* Hyperparameters. tg_optim_defaults fills PyTorch's defaults for a kind;
 * the update rules are PyTorch 1.13's (torch.optim), checked against its
 * values in tests/test_optim.c. */
typedef struct tg_optim_config {
    tg_optim_kind kind;
    double lr;
    double weight_decay;
    double momentum, dampening;   /* SGD, RMSProp (momentum)                 */
    int    nesterov;              /* SGD                                     */
    double beta1, beta2, eps;     /* Adam/AdamW (eps also RMSProp, Adagrad)  */
    double alpha;                 /* RMSProp smoothing                       */
    int    centered;              /* RMSProp                                 */
    double lr_decay;              /* Adagrad                                 */
    double initial_accumulator_value;  /* Adagrad                            */
} tg_optim_config;

tg_optim_config tg_optim_defaults(tg_optim_kind kind, double lr);
const char     *tg_optim_kind_name(tg_optim_kind kind);     /* "adam", ...   */
/* Parse "sgd", "adam", "adamw", "rmsprop", "adagrad"; -1 when unknown. */
int             tg_optim_kind_parse(const char *name);

typedef struct tg_optim tg_optim;

/* An optimizer for every parameter of `p` (which must outlive it and gain no
 * parameters afterwards). Allocates its state blocks now, so steps allocate
 * nothing. NULL on bad hyperparameters (negative lr, beta outside [0,1),
 * Nesterov without momentum, ...) or no memory; `err` (may be NULL)
 * receives the reason. */
tg_optim *tg_optim_new(tg_params *p, const tg_optim_config *cfg, char *err, size_t err_cap);
void      tg_optim_free(tg_optim *o);

/* One update of every parameter from its gradient (gradients unchanged). */
tg_status tg_optim_step(tg_optim *o);
/* tg_optim_step, then every gradient zeroed (tg_params_zero_grad), in one
 * pass over memory: each block of gradients is cleared right after its
 * update, while in cache, instead of a second sweep over the whole block
 * (measured: a 784-1024-1024-10 training step, 14.6 -> 14.2 ms). For a
 * loop that zeroes before every backward: zero once before the first
 * step, then call this instead of tg_optim_step. */
tg_status tg_optim_step_and_zero_grad(tg_optim *o);
void      tg_optim_set_lr(tg_optim *o, double lr);   /* schedules use this */
double    tg_optim_lr(const tg_optim *o);
int64_t   tg_optim_step_count(const tg_optim *o);
const tg_optim_config *tg_optim_config_of(const tg_optim *o);

/* State blocks for checkpoints: n blocks, each tg_params_len elements of the
 * parameters' dtype ("exp_avg", "exp_avg_sq", "momentum_buffer", ...). */
int         tg_optim_state_count(const tg_optim *o);
const char *tg_optim_state_name(const tg_optim *o, int i);
void       *tg_optim_state_data(tg_optim *o, int i);
/* Restore the step counter (with state blocks loaded into state_data). */
void        tg_optim_set_step_count(tg_optim *o, int64_t steps);

/* ---- learning-rate schedules ---------------------------------------------- */
typedef enum tg_sched_kind {
    TG_SCHED_CONSTANT = 0,
    TG_SCHED_STEP,          /* lr · gamma^floor(t / step_size)                 */
    TG_SCHED_EXPONENTIAL,   /* lr · gamma^t                                     */
    TG_SCHED_COSINE         /* eta_min + (lr − eta_min)(1 + cos(π t / t_max))/2 */
} tg_sched_kind;

/* A schedule maps (base lr, step t) to a learning rate. Linear warm-up
 * composes with any kind: for t < warmup_steps the rate is multiplied by
 * warmup_start + (1 − warmup_start)·t/warmup_steps, and the main schedule's
 * clock starts after the warm-up. */
typedef struct tg_schedule {
    tg_sched_kind kind;
    double  gamma;          /* STEP, EXPONENTIAL */
    int64_t step_size;      /* STEP (> 0)        */
    int64_t t_max;          /* COSINE (> 0); t beyond t_max stays at eta_min */
    double  eta_min;        /* COSINE            */
    int64_t warmup_steps;   /* 0 = none          */
    double  warmup_start;   /* factor at t = 0, in [0, 1] */
} tg_schedule;

double tg_schedule_lr(const tg_schedule *s, double base_lr, int64_t t);
/* TG_OK, or TG_ERR_ARG with the reason in err for an invalid schedule. */
tg_status tg_schedule_check(const tg_schedule *s, char *err, size_t err_cap);

#ifdef __cplusplus
}
#endif
#endif
