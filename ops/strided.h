/* strided.h — private to ops/: the strided copy / add kernel the shape ops
 * are built on. A walk visits every multi-index of `shape` and does
 *     dst[doff + sum idx[k]*ds[k]]  =  or +=  src[soff + sum idx[k]*ss[k]]
 * Permute, slice, concat, stack and broadcast_to are each one walk forward
 * and one walk (roles swapped, adding) for the VJP. Not installed. */
#ifndef TG_STRIDED_H
#define TG_STRIDED_H

#include "tg_core.h"

typedef struct tg_walk {
    int     nd;
    int64_t shape[TG_MAX_DIMS];
    int64_t ds[TG_MAX_DIMS];   /* destination strides, in elements (0: repeat) */
    int64_t ss[TG_MAX_DIMS];   /* source strides, in elements (0: repeat)      */
} tg_walk;

/* Row-major strides of a contiguous tensor of this shape. */
void tg_row_strides(int nd, const int64_t *shape, int64_t *stride);

/* A walk over `shape` with both operands contiguous. */
tg_walk tg_walk_flat(int nd, const int64_t *shape);

/* The same walk with source and destination exchanged (forward gather ->
 * VJP scatter). */
tg_walk tg_walk_swap(tg_walk w);

/* Run w on f32 or f64 data (dt); `add`: 0 copies (=), TG_WALK_ADD adds
 * (+=), TG_WALK_FRESH writes 0 + src (a VJP into a fresh gradient: the
 * bits += gives from zeros; only where every destination element is
 * visited once, no zero destination stride). Elements
 * are offsets from dst + doff and src + soff. dst must not overlap src.
 * Where the destination stride is 0 (a reduction) values are added in
 * row-major order of the walk: results are deterministic. */
enum { TG_WALK_COPY = 0, TG_WALK_ADD = 1, TG_WALK_FRESH = 2 };
void tg_walk_run(tg_dtype dt, tg_walk w, void *dst, int64_t doff, const void *src, int64_t soff, int add);

#endif
