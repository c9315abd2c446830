/* tg_activation.h — recording functions of the activation family (ops/activation.c). */
#ifndef TG_ACTIVATION_H
#define TG_ACTIVATION_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
