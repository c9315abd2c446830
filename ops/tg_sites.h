/* tg_sites.h — call sites for anomaly mode and error reports.
 *
 * Every public recording function is shadowed by a function-like macro of
 * the same name that pushes the caller's __FILE__:__LINE__ on the context
 * for the duration of the call, so anomaly mode (tg_ctx_set_anomaly) can say
 * where a bad op was recorded. The macros evaluate `ctx` three times: pass a
 * variable. Taking a function's address (&tg_add) is unaffected. Define
 * TG_NO_CALL_SITES before including tapegrad.h to get the bare functions.
 * tests/test_sites.sh checks that every public recording function is here. */
#ifndef TG_SITES_H
#define TG_SITES_H
#ifndef TG_NO_CALL_SITES

#include "tg_core.h"

#define TG_AT_(f, ctx, ...) \
    tg_ctx_site_pop((ctx), f(tg_ctx_site_push((ctx), __FILE__, __LINE__), __VA_ARGS__))

#define tg_abs(ctx, ...) TG_AT_(tg_abs, ctx, __VA_ARGS__)
#define tg_add(ctx, ...) TG_AT_(tg_add, ctx, __VA_ARGS__)
#define tg_add_scalar(ctx, ...) TG_AT_(tg_add_scalar, ctx, __VA_ARGS__)
#define tg_batch_norm(ctx, ...) TG_AT_(tg_batch_norm, ctx, __VA_ARGS__)
#define tg_bce_with_logits(ctx, ...) TG_AT_(tg_bce_with_logits, ctx, __VA_ARGS__)
#define tg_broadcast_to(ctx, ...) TG_AT_(tg_broadcast_to, ctx, __VA_ARGS__)
#define tg_clamp(ctx, ...) TG_AT_(tg_clamp, ctx, __VA_ARGS__)
#define tg_concat(ctx, ...) TG_AT_(tg_concat, ctx, __VA_ARGS__)
#define tg_cross_entropy(ctx, ...) TG_AT_(tg_cross_entropy, ctx, __VA_ARGS__)
#define tg_div(ctx, ...) TG_AT_(tg_div, ctx, __VA_ARGS__)
#define tg_div_scalar(ctx, ...) TG_AT_(tg_div_scalar, ctx, __VA_ARGS__)
#define tg_dropout(ctx, ...) TG_AT_(tg_dropout, ctx, __VA_ARGS__)
#define tg_elu(ctx, ...) TG_AT_(tg_elu, ctx, __VA_ARGS__)
#define tg_exp(ctx, ...) TG_AT_(tg_exp, ctx, __VA_ARGS__)
#define tg_gather_rows(ctx, ...) TG_AT_(tg_gather_rows, ctx, __VA_ARGS__)
#define tg_gelu(ctx, ...) TG_AT_(tg_gelu, ctx, __VA_ARGS__)
#define tg_huber_loss(ctx, ...) TG_AT_(tg_huber_loss, ctx, __VA_ARGS__)
#define tg_index_select(ctx, ...) TG_AT_(tg_index_select, ctx, __VA_ARGS__)
#define tg_l1_loss(ctx, ...) TG_AT_(tg_l1_loss, ctx, __VA_ARGS__)
#define tg_layer_norm(ctx, ...) TG_AT_(tg_layer_norm, ctx, __VA_ARGS__)
#define tg_leaky_relu(ctx, ...) TG_AT_(tg_leaky_relu, ctx, __VA_ARGS__)
#define tg_log(ctx, ...) TG_AT_(tg_log, ctx, __VA_ARGS__)
#define tg_log_softmax(ctx, ...) TG_AT_(tg_log_softmax, ctx, __VA_ARGS__)
#define tg_logsumexp(ctx, ...) TG_AT_(tg_logsumexp, ctx, __VA_ARGS__)
#define tg_matmul(ctx, ...) TG_AT_(tg_matmul, ctx, __VA_ARGS__)
#define tg_matmul_t(ctx, ...) TG_AT_(tg_matmul_t, ctx, __VA_ARGS__)
#define tg_linear(ctx, ...) TG_AT_(tg_linear, ctx, __VA_ARGS__)
#define tg_max(ctx, ...) TG_AT_(tg_max, ctx, __VA_ARGS__)
#define tg_maximum(ctx, ...) TG_AT_(tg_maximum, ctx, __VA_ARGS__)
#define tg_mean(ctx, ...) TG_AT_(tg_mean, ctx, __VA_ARGS__)
#define tg_mean_all(ctx, ...) TG_AT_(tg_mean_all, ctx, __VA_ARGS__)
#define tg_min(ctx, ...) TG_AT_(tg_min, ctx, __VA_ARGS__)
#define tg_minimum(ctx, ...) TG_AT_(tg_minimum, ctx, __VA_ARGS__)
#define tg_model_forward(ctx, ...) TG_AT_(tg_model_forward, ctx, __VA_ARGS__)
#define tg_mse_loss(ctx, ...) TG_AT_(tg_mse_loss, ctx, __VA_ARGS__)
#define tg_mul(ctx, ...) TG_AT_(tg_mul, ctx, __VA_ARGS__)
#define tg_mul_scalar(ctx, ...) TG_AT_(tg_mul_scalar, ctx, __VA_ARGS__)
#define tg_neg(ctx, ...) TG_AT_(tg_neg, ctx, __VA_ARGS__)
#define tg_permute(ctx, ...) TG_AT_(tg_permute, ctx, __VA_ARGS__)
#define tg_pow(ctx, ...) TG_AT_(tg_pow, ctx, __VA_ARGS__)
#define tg_pow_scalar(ctx, ...) TG_AT_(tg_pow_scalar, ctx, __VA_ARGS__)
#define tg_rdiv_scalar(ctx, ...) TG_AT_(tg_rdiv_scalar, ctx, __VA_ARGS__)
#define tg_relu(ctx, ...) TG_AT_(tg_relu, ctx, __VA_ARGS__)
#define tg_reshape(ctx, ...) TG_AT_(tg_reshape, ctx, __VA_ARGS__)
#define tg_rsub_scalar(ctx, ...) TG_AT_(tg_rsub_scalar, ctx, __VA_ARGS__)
#define tg_sigmoid(ctx, ...) TG_AT_(tg_sigmoid, ctx, __VA_ARGS__)
#define tg_silu(ctx, ...) TG_AT_(tg_silu, ctx, __VA_ARGS__)
#define tg_slice(ctx, ...) TG_AT_(tg_slice, ctx, __VA_ARGS__)
#define tg_softmax(ctx, ...) TG_AT_(tg_softmax, ctx, __VA_ARGS__)
#define tg_softplus(ctx, ...) TG_AT_(tg_softplus, ctx, __VA_ARGS__)
#define tg_sqrt(ctx, ...) TG_AT_(tg_sqrt, ctx, __VA_ARGS__)
#define tg_square(ctx, ...) TG_AT_(tg_square, ctx, __VA_ARGS__)
#define tg_stack(ctx, ...) TG_AT_(tg_stack, ctx, __VA_ARGS__)
#define tg_sub(ctx, ...) TG_AT_(tg_sub, ctx, __VA_ARGS__)
#define tg_sub_scalar(ctx, ...) TG_AT_(tg_sub_scalar, ctx, __VA_ARGS__)
#define tg_sum(ctx, ...) TG_AT_(tg_sum, ctx, __VA_ARGS__)
#define tg_sum_all(ctx, ...) TG_AT_(tg_sum_all, ctx, __VA_ARGS__)
#define tg_tanh(ctx, ...) TG_AT_(tg_tanh, ctx, __VA_ARGS__)
#define tg_transpose(ctx, ...) TG_AT_(tg_transpose, ctx, __VA_ARGS__)
#define tg_var(ctx, ...) TG_AT_(tg_var, ctx, __VA_ARGS__)
#define tg_where(ctx, ...) TG_AT_(tg_where, ctx, __VA_ARGS__)

#endif
#endif
