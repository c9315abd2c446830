/* tg_matmul.h — recording functions of the matmul family (ops/matmul.c). */
#ifndef TG_MATMUL_H
#define TG_MATMUL_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
