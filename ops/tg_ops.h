/* tg_ops.h — the built-in ops: the registry and every family's recording
 * functions. Each recording function returns an arena tensor valid until
 * tg_ctx_reset, or NULL with the context's error set (a NULL input gives
 * NULL, so calls nest and the caller checks once). */
#ifndef TG_OPS_H
#define TG_OPS_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_op_id {
#define TG_OP(E, n) TG_OP_##E,
#include "op_list.h"
#undef TG_OP
    TG_OP_COUNT
} tg_op_id;

/* The registry of built-in ops. */
size_t           tg_op_count(void);
const tg_op_def *tg_op_get(size_t id);               /* NULL when out of range */
const tg_op_def *tg_op_find(const char *name);       /* NULL when unknown      */

#ifdef __cplusplus
}
#endif

#include "tg_unary.h"
#include "tg_binary.h"
#include "tg_activation.h"
#include "tg_matmul.h"
#include "tg_reduce.h"
#include "tg_shape.h"
#include "tg_softmax.h"
#include "tg_loss.h"
#include "tg_norm.h"

#endif
