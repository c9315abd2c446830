/* tg_loss.h — recording functions of the loss family (ops/loss.c). */
#ifndef TG_LOSS_H
#define TG_LOSS_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
