/* tg_shape.h — recording functions of the shape family (ops/shape.c). */
#ifndef TG_SHAPE_H
#define TG_SHAPE_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
