/* tg_core_impl.h — private to the library: the context's layout, shared by
 * core/ and graph/. Never installed; nn/ and users must not include it. */
#ifndef TG_CORE_IMPL_H
#define TG_CORE_IMPL_H

#include "tg_core.h"

typedef struct tg_chunk {
    struct tg_chunk *next;
    size_t           cap;     /* usable bytes after the header          */
    size_t           base;    /* arena offset of this chunk's first byte */
    unsigned char   *mem;     /* 64-byte aligned start of usable bytes  */
} tg_chunk;

typedef struct tg_arena {
    tg_chunk *head;           /* chunks in allocation order             */
    tg_chunk *cur;            /* chunk currently bump-allocated from    */
    size_t    off;            /* offset inside cur                      */
    size_t    min_chunk;
    size_t    capacity;       /* sum of all chunk capacities            */
    size_t    peak;           /* highest used() since creation          */
    int       poison;
} tg_arena;

/* The graph layer keeps its tape here without core knowing its layout. */
typedef struct tg_ctx_ext {
    void  *state;
    void (*reset)(void *state);
    void (*destroy)(void *state);
} tg_ctx_ext;

#define TG_SITE_DEPTH 32

struct tg_ctx {
    tg_arena   arena;
    tg_status  status;
    char       msg[512];
    tg_rng     rng;
    int        n_threads;
    int        grad_enabled;  /* 1 unless inside a no-grad scope        */
    int        anomaly;       /* check outputs and VJPs for NaN/Inf     */
    const char *site_file[TG_SITE_DEPTH]; /* call-site stack (tapegrad.h macros) */
    int        site_line[TG_SITE_DEPTH];
    int        site_depth;    /* may exceed TG_SITE_DEPTH: deeper sites unrecorded */
    tg_ctx_ext tape;          /* owned by graph/                        */
};

size_t tg_arena_used(const tg_arena *a);

#endif
