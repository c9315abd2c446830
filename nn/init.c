/* init.c — parameter initialisers (Glorot/Xavier, He/Kaiming, zeros,
 * constant) and the activation helpers shared by layers and specs. */
#include "tg_nn.h"

#include <math.h>
#include <string.h>

static const char *init_names[] = { "xavier_uniform", "xavier_normal", "he_uniform", "he_normal",
                                    "zeros", "constant" };

const char *tg_init_name(tg_init k)
{
    return (unsigned)k < sizeof init_names / sizeof *init_names ? init_names[k] : "unknown";
}

int tg_init_parse(const char *name)
{
    for (unsigned k = 0; name && k < sizeof init_names / sizeof *init_names; k++)
        if (strcmp(name, init_names[k]) == 0)
            return (int)k;
    return -1;
}

tg_status tg_init_tensor(tg_tensor *t, tg_init kind, int64_t fan_in, int64_t fan_out, double value, tg_rng *rng)
{
    if (!t || !tg_dtype_is_float(t->dtype) || !rng || (unsigned)kind > TG_INIT_CONSTANT)
        return TG_ERR_ARG;
    if ((kind <= TG_INIT_HE_NORMAL) && (fan_in <= 0 || fan_out <= 0))
        return TG_ERR_ARG;
    double a = 0;
    switch (kind) {
    case TG_INIT_XAVIER_UNIFORM: a = sqrt(6.0 / (double)(fan_in + fan_out)); break;
    case TG_INIT_XAVIER_NORMAL:  a = sqrt(2.0 / (double)(fan_in + fan_out)); break;
    case TG_INIT_HE_UNIFORM:     a = sqrt(6.0 / (double)fan_in); break;
    case TG_INIT_HE_NORMAL:      a = sqrt(2.0 / (double)fan_in); break;
    case TG_INIT_ZEROS:          break;
    case TG_INIT_CONSTANT:       a = value; break;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        double v;
        switch (kind) {
        case TG_INIT_XAVIER_UNIFORM:
        case TG_INIT_HE_UNIFORM:     v = a * (2 * tg_rng_uniform(rng) - 1); break;
        case TG_INIT_XAVIER_NORMAL:
        case TG_INIT_HE_NORMAL:      v = a * tg_rng_normal(rng); break;
        case TG_INIT_CONSTANT:       v = a; break;
        default:                     v = 0; break;
        }
        tg_tensor_set(t, i, v);
    }
    return TG_OK;
}

static const char *act_names[] = { "none", "relu", "sigmoid", "tanh", "leaky_relu", "gelu", "elu",
                                   "silu", "softplus", "softmax" };

const char *tg_act_name(tg_act a)
{
    return (unsigned)a < sizeof act_names / sizeof *act_names ? act_names[a] : "unknown";
}

int tg_act_parse(const char *name)
{
    for (unsigned k = 0; name && k < sizeof act_names / sizeof *act_names; k++)
        if (strcmp(name, act_names[k]) == 0)
            return (int)k;
    return -1;
}

tg_tensor *tg_activate(tg_ctx *ctx, tg_tensor *x, tg_act a, double param)
{
    switch (a) {
    case TG_ACT_NONE:       return x;
    case TG_ACT_RELU:       return tg_relu(ctx, x);
    case TG_ACT_SIGMOID:    return tg_sigmoid(ctx, x);
    case TG_ACT_TANH:       return tg_tanh(ctx, x);
    case TG_ACT_LEAKY_RELU: return tg_leaky_relu(ctx, x, param);
    case TG_ACT_GELU:       return tg_gelu(ctx, x, TG_GELU_ERF);
    case TG_ACT_ELU:        return tg_elu(ctx, x, param);
    case TG_ACT_SILU:       return tg_silu(ctx, x);
    case TG_ACT_SOFTPLUS:   return tg_softplus(ctx, x);
    case TG_ACT_SOFTMAX:    return tg_softmax(ctx, x, -1);
    }
    tg_ctx_fail(ctx, TG_ERR_ARG, "activate: unknown activation %d", (int)a);
    return NULL;
}
