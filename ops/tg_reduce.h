/* tg_reduce.h — recording functions of the reduce family (ops/reduce.c). */
#ifndef TG_REDUCE_H
#define TG_REDUCE_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
