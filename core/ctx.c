/* ctx.c — the context: a chunked bump arena with O(1) reset, the sticky
 * error, the RNG and the thread count. The tape lives in ctx->tape and is
 * managed by graph/ through the reset/destroy hooks. */
#include "tg_core_impl.h"

#include <stdio.h>
#include <string.h>

#define ALIGN 64
#define DEFAULT_CHUNK (1u << 20)

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

static tg_chunk *chunk_new(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(tg_chunk) - ALIGN)
        return NULL;
    unsigned char *raw = tg_malloc(sizeof(tg_chunk) + ALIGN + cap);
    if (!raw)
        return NULL;
    tg_chunk *c = (tg_chunk *)raw;
    uintptr_t start = (uintptr_t)(raw + sizeof(tg_chunk));
    c->mem = (unsigned char *)round_up(start, ALIGN);
    c->cap = cap;
    c->next = NULL;
    c->base = 0;
    return c;
}

size_t tg_arena_used(const tg_arena *a)
{
    return a->cur ? a->cur->base + a->off : 0;
}

static void *arena_alloc(tg_arena *a, size_t bytes)
{
    bytes = round_up(bytes ? bytes : 1, ALIGN);
    if (bytes == 0)                         /* overflow in round_up */
        return NULL;
    /* Try the current chunk, then the already-owned chunks after it (kept
     * from earlier steps), then grow. Chunks are never reordered, so the
     * same sequence of requests lands in the same places every step. */
    while (a->cur) {
        if (a->cur->cap - a->off >= bytes) {
            void *p = a->cur->mem + a->off;
            a->off += bytes;
            size_t used = tg_arena_used(a);
            if (used > a->peak)
                a->peak = used;
            if (a->poison)
                memset(p, 0xFF, bytes);
            return p;
        }
        if (!a->cur->next)
            break;
        a->cur = a->cur->next;
        a->off = 0;
    }
    size_t cap = a->min_chunk;
    if (a->capacity > cap)
        cap = a->capacity;                  /* geometric growth */
    if (bytes > cap)
        cap = bytes;
    tg_chunk *c = chunk_new(cap);
    if (!c)
        return NULL;
    c->base = a->capacity;
    a->capacity += cap;
    if (a->cur)
        a->cur->next = c;
    else
        a->head = c;
    a->cur = c;
    a->off = 0;
    return arena_alloc(a, bytes);
}

tg_ctx *tg_ctx_new(const tg_ctx_opts *opts)
{
    tg_ctx *ctx = tg_calloc(sizeof *ctx);
    if (!ctx)
        return NULL;
    size_t first = opts && opts->arena_bytes ? opts->arena_bytes : DEFAULT_CHUNK;
    ctx->arena.min_chunk = round_up(first, ALIGN);
    tg_rng_seed(&ctx->rng, opts ? opts->seed : 0);
    ctx->n_threads = opts && opts->n_threads > 0 ? opts->n_threads : 1;
    ctx->grad_enabled = 1;
    return ctx;
}

void tg_ctx_free(tg_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->tape.destroy)
        ctx->tape.destroy(ctx->tape.state);
    tg_chunk *c = ctx->arena.head;
    while (c) {
        tg_chunk *n = c->next;
        tg_free(c);
        c = n;
    }
    tg_free(ctx);
}

void tg_ctx_reset(tg_ctx *ctx)
{
    if (!ctx)
        return;
    ctx->arena.cur = ctx->arena.head;
    ctx->arena.off = 0;
    if (ctx->tape.reset)
        ctx->tape.reset(ctx->tape.state);
    ctx->site_depth = 0;
    tg_ctx_clear_error(ctx);
}

tg_status tg_ctx_status(const tg_ctx *ctx) { return ctx ? ctx->status : TG_ERR_ARG; }

const char *tg_ctx_error(const tg_ctx *ctx)
{
    if (!ctx)
        return "no context";
    return ctx->msg;
}

void tg_ctx_clear_error(tg_ctx *ctx)
{
    ctx->status = TG_OK;
    ctx->msg[0] = '\0';
}

tg_status tg_ctx_fail(tg_ctx *ctx, tg_status s, const char *fmt, ...)
{
    if (!ctx || ctx->status != TG_OK || s == TG_OK)
        return s;
    ctx->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    return s;
}

int tg_ctx_threads(const tg_ctx *ctx) { return ctx->n_threads; }
void tg_ctx_set_anomaly(tg_ctx *ctx, int on) { if (ctx) ctx->anomaly = on != 0; }
int tg_ctx_anomaly(const tg_ctx *ctx) { return ctx ? ctx->anomaly : 0; }

tg_ctx *tg_ctx_site_push(tg_ctx *ctx, const char *file, int line)
{
    if (ctx) {
        if (ctx->site_depth >= 0 && ctx->site_depth < TG_SITE_DEPTH) {
            ctx->site_file[ctx->site_depth] = file;
            ctx->site_line[ctx->site_depth] = line;
        }
        ctx->site_depth++;
    }
    return ctx;
}

struct tg_tensor *tg_ctx_site_pop(tg_ctx *ctx, struct tg_tensor *result)
{
    if (ctx && ctx->site_depth > 0)
        ctx->site_depth--;
    return result;
}
void tg_ctx_set_threads(tg_ctx *ctx, int n) { ctx->n_threads = n < 1 ? 1 : n; }
tg_rng *tg_ctx_rng(tg_ctx *ctx) { return &ctx->rng; }

void *tg_ctx_alloc(tg_ctx *ctx, size_t bytes, const char *what)
{
    void *p = arena_alloc(&ctx->arena, bytes);
    if (!p)
        tg_ctx_fail(ctx, TG_ERR_NOMEM, "%s: out of memory allocating %zu bytes",
                    what ? what : "arena", bytes);
    return p;
}

size_t tg_ctx_arena_used(const tg_ctx *ctx) { return tg_arena_used(&ctx->arena); }
size_t tg_ctx_arena_capacity(const tg_ctx *ctx) { return ctx->arena.capacity; }
size_t tg_ctx_arena_mark(const tg_ctx *ctx) { return tg_arena_used(&ctx->arena); }

void tg_ctx_arena_rewind(tg_ctx *ctx, size_t mark)
{
    tg_arena *a = &ctx->arena;
    if (mark > tg_arena_used(a))
        return;
    tg_chunk *c = a->head;
    if (!c)
        return;
    while (c->next && mark >= c->next->base)
        c = c->next;
    a->cur = c;
    a->off = mark - c->base;
}

void tg_ctx_set_poison(tg_ctx *ctx, int on) { ctx->arena.poison = on != 0; }
