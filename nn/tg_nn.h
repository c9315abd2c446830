/* tg_nn.h — layers and models on top of the op set: dense layers,
 * activations, dropout, batch and layer norm, residual blocks, sequential
 * composition, initialisers, and a model builder from a compact spec such as
 * "784-128relu-10".
 *
 * A tg_model owns a parameter store (tg_optim.h) with every trainable tensor,
 * a second store of non-trainable buffers (batch-norm running statistics),
 * its layers, an RNG for initialisation and dropout masks, and the
 * train/eval flag. tg_model_forward records ops on a context like any other
 * code, so tg_backward fills the parameter gradients the optimizer reads.
 */
#ifndef TG_NN_H
#define TG_NN_H

#include "tg_ops.h"
#include "tg_optim.h"
#include "tg_checkpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- initialisers --------------------------------------------------------- */
typedef enum tg_init {
    TG_INIT_XAVIER_UNIFORM = 0,  /* U(±sqrt(6 / (fan_in + fan_out)))       */
    TG_INIT_XAVIER_NORMAL,       /* N(0, 2 / (fan_in + fan_out))           */
    TG_INIT_HE_UNIFORM,          /* U(±sqrt(6 / fan_in))   (Kaiming, ReLU) */
    TG_INIT_HE_NORMAL,           /* N(0, 2 / fan_in)                       */
    TG_INIT_ZEROS,
    TG_INIT_CONSTANT             /* every element = value                  */
} tg_init;

/* Fill t (f32 or f64) from `rng`. Same seed, same values on every machine. */
tg_status tg_init_tensor(tg_tensor *t, tg_init kind, int64_t fan_in, int64_t fan_out,
                         double value, tg_rng *rng);
const char *tg_init_name(tg_init kind);
int         tg_init_parse(const char *name);   /* -1 when unknown */

/* ---- activations ------------------------------------------------------------ */
typedef enum tg_act {
    TG_ACT_NONE = 0, TG_ACT_RELU, TG_ACT_SIGMOID, TG_ACT_TANH, TG_ACT_LEAKY_RELU,
    TG_ACT_GELU, TG_ACT_ELU, TG_ACT_SILU, TG_ACT_SOFTPLUS, TG_ACT_SOFTMAX
} tg_act;

const char *tg_act_name(tg_act a);
int         tg_act_parse(const char *name);     /* -1 when unknown */
/* Apply an activation (leaky_relu slope / elu alpha in `param`; softmax over
 * the last axis). TG_ACT_NONE returns x. */
tg_tensor  *tg_activate(tg_ctx *ctx, tg_tensor *x, tg_act a, double param);

/* ---- layers ------------------------------------------------------------------ */
typedef struct tg_model tg_model;
typedef struct tg_layer tg_layer;

/* A user's own layer: forward(ctx, x, training, ud) records ops and returns y. */
typedef tg_tensor *(*tg_layer_fn)(tg_ctx *ctx, tg_tensor *x, int training, void *ud);

/* ---- the model ------------------------------------------------------------- */

/* An empty model whose parameters have dtype dt; NULL when out of memory. */
tg_model *tg_model_new(tg_dtype dt, uint64_t seed);
void      tg_model_free(tg_model *m);

/* Builders: each appends a layer to the model (or to the residual block
 * being built). Parameter names are "<layer><k>.<what>", e.g. dense1.weight,
 * dense1.bias, bn2.gamma. On failure (bad sizes, no memory) they return a
 * status and the model is unchanged. `in` must match the previous layer's
 * output width when known. */
tg_status tg_model_add_dense(tg_model *m, int64_t in, int64_t out, tg_init w_init);
/* param: the leaky_relu slope or elu alpha; 0 selects PyTorch's default
 * (0.01, 1.0). Ignored by the other activations. */
tg_status tg_model_add_activation(tg_model *m, tg_act a, double param);
tg_status tg_model_add_dropout(tg_model *m, double p);
/* momentum as PyTorch's (running = (1 − momentum)·running + momentum·batch). */
tg_status tg_model_add_batchnorm(tg_model *m, int64_t features, double momentum, double eps);
tg_status tg_model_add_layernorm(tg_model *m, int64_t features, double eps);
tg_status tg_model_add_custom(tg_model *m, const char *name, tg_layer_fn fn, void *ud);
/* y = x + f(x), f being every layer added between begin and end (width must
 * be preserved). Blocks nest. */
tg_status tg_model_begin_residual(tg_model *m);
tg_status tg_model_end_residual(tg_model *m);

/* Build from a spec: widths separated by '-', the first the input width;
 * each later width may carry an activation and '_'-separated modifiers:
 *   784-128relu-10                   the classic classifier (logits out)
 *   784-256relu_bn_d0.2-128tanh-10   bn: batch norm before the activation,
 *                                    ln: layer norm before the activation,
 *                                    d<p>: dropout after it,
 *                                    res: residual x + act(dense(x)) (needs
 *                                    equal widths)
 * Activations: relu sigmoid tanh leaky_relu (or leaky) gelu elu silu softplus
 * softmax.
 * Dense weights use He uniform before ReLU-like activations and Xavier
 * uniform otherwise; biases start at zero. NULL on a bad spec, with the
 * position and reason in err. */
tg_model *tg_model_from_spec(const char *spec, tg_dtype dt, uint64_t seed, char *err, size_t err_cap);

/* Run the model on x (B, in) in the model's current mode; the output is an
 * arena tensor on ctx. Records on the tape as usual. */
tg_tensor *tg_model_forward(tg_ctx *ctx, tg_model *m, tg_tensor *x);

void       tg_model_set_training(tg_model *m, int on);   /* default: training */
int        tg_model_training(const tg_model *m);
tg_params *tg_model_params(tg_model *m);    /* trainable parameters            */
tg_params *tg_model_buffers(tg_model *m);   /* running statistics (no gradient) */
tg_rng    *tg_model_rng(tg_model *m);       /* drives dropout masks; checkpointed */
int64_t    tg_model_in_features(const tg_model *m);
int64_t    tg_model_out_features(const tg_model *m);
/* Short description, one layer per line, e.g. for `tapegrad train`. */
void       tg_model_describe(const tg_model *m, char *buf, size_t cap);

/* ---- checkpoints ------------------------------------------------------------ */
/* A model checkpoint is a safetensors file (tg_checkpoint.h) holding
 *   param.<name>                 every parameter
 *   buffer.<name>                every buffer (running statistics)
 *   optim.<state>.<name>         the optimizer's state for each parameter
 * and in "__metadata__": format "tapegrad-checkpoint-1", dtype, the model's
 * RNG state (model_rng), the optimizer's kind and step count (optim,
 * optim_steps), plus the caller's own pairs (`extra`: e.g. the spec, the
 * epoch, the data seed). Saving is crash-safe (temporary file + rename).
 * `o` may be NULL (no optimizer state is written). */
tg_status tg_model_save(const char *path, tg_model *m, tg_optim *o,
                        const tg_st_meta *extra, int n_extra, char *err, size_t err_cap);

/* Load a checkpoint into `m` (and `o` unless NULL: then the file must hold
 * the same optimizer kind's state). All or nothing: every name, dtype and
 * shape is checked first; on any mismatch (TG_ERR_SHAPE, naming the tensor
 * and both shapes) or bad file (TG_ERR_IO, TG_ERR_FORMAT) nothing in m or o
 * changes. Restores parameters, buffers, the model RNG, the optimizer state
 * and step count. */
tg_status tg_model_load(const char *path, tg_model *m, tg_optim *o, char *err, size_t err_cap);

#ifdef __cplusplus
}
#endif
#endif
