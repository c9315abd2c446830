/* tg_unary.h — recording functions of the unary family (ops/unary.c). */
#ifndef TG_UNARY_H
#define TG_UNARY_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = exp(x), elementwise. */
tg_tensor *tg_exp(tg_ctx *ctx, tg_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
