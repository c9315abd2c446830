/* tg_binary.h — recording functions of the binary family (ops/binary.c). */
#ifndef TG_BINARY_H
#define TG_BINARY_H

#include "tg_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
