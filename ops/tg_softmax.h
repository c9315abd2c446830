/* tg_softmax.h — recording functions of the softmax family (ops/softmax.c). */
#ifndef TG_SOFTMAX_H
#define TG_SOFTMAX_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
