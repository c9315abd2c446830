/* alloc.c — the single allocation hook every heap allocation goes through.
 * A 16-byte header in front of each block stores its size, so callers free
 * without remembering sizes while the hook still sees them (lua_Alloc). */
#include "tg_core.h"

#include <stdlib.h>
#include <string.h>

#define HDR 16

static void *default_alloc(void *ud, void *ptr, size_t old_size, size_t size)
{
    (void)ud; (void)old_size;
    if (size == 0) { free(ptr); return NULL; }
    return realloc(ptr, size);
}

static tg_alloc_fn g_alloc = default_alloc;
static void       *g_ud;

void tg_set_allocator(tg_alloc_fn fn, void *ud)
{
    g_alloc = fn ? fn : default_alloc;
    g_ud = fn ? ud : NULL;
}

void *tg_malloc(size_t size)
{
    if (size == 0 || size > SIZE_MAX - HDR)
        return NULL;
    unsigned char *p = g_alloc(g_ud, NULL, 0, size + HDR);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    return p + HDR;
}

void *tg_calloc(size_t size)
{
    void *p = tg_malloc(size);
    if (p)
        memset(p, 0, size);
    return p;
}

void *tg_realloc(void *p, size_t size)
{
    if (!p)
        return tg_malloc(size);
    if (size == 0 || size > SIZE_MAX - HDR)
        return NULL;
    unsigned char *base = (unsigned char *)p - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    unsigned char *q = g_alloc(g_ud, base, old + HDR, size + HDR);
    if (!q)
        return NULL;          /* the old block stays valid, as with realloc */
    memcpy(q, &size, sizeof size);
    return q + HDR;
}

void tg_free(void *p)
{
    if (!p)
        return;
    unsigned char *base = (unsigned char *)p - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    g_alloc(g_ud, base, old + HDR, 0);
}
