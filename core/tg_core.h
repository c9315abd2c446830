/* tg_core.h — tapegrad's core: status codes, dtypes, tensors, the context.
 *
 * Everything above this layer (graph/, ops/, nn/) builds on what is declared
 * here. This header knows nothing of tapes or ops.
 *
 * Conventions used throughout tapegrad:
 *   - Tensors are contiguous and row-major, 0 to TG_MAX_DIMS dims. A tensor
 *     with ndim 0 is a scalar holding one element.
 *   - Functions that can fail either return tg_status, or return a pointer
 *     and record the failure in the context's sticky error (first error wins;
 *     every later op on that context returns NULL at once). The library never
 *     aborts, exits or prints on behalf of its caller.
 */
#ifndef TG_CORE_H
#define TG_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TG_MAX_DIMS 6

/* ---- status ------------------------------------------------------------ */
typedef enum tg_status {
    TG_OK          =  0,
    TG_ERR_NOMEM   = -1,  /* an allocation failed                          */
    TG_ERR_SHAPE   = -2,  /* shapes do not fit the op                      */
    TG_ERR_ARG     = -3,  /* bad argument: NULL, axis out of range, dtype  */
    TG_ERR_STATE   = -4,  /* wrong moment: e.g. backward on non-scalar     */
    TG_ERR_BACKEND = -5,  /* a kernel backend failed                       */
    TG_ERR_IO      = -6,  /* a file could not be read or written           */
    TG_ERR_FORMAT  = -7,  /* a file's content is corrupt or truncated      */
    TG_ERR_NUMERIC = -8   /* NaN/Inf where a finite value is required      */
} tg_status;

/* A static, human-readable name for a status ("shape error", ...). */
const char *tg_status_str(tg_status s);

/* ---- dtypes ------------------------------------------------------------ */
typedef enum tg_dtype {
    TG_F32 = 0,
    TG_F64 = 1,
    TG_I32 = 2   /* integer data: class labels, indices, masks; never has a gradient */
} tg_dtype;

size_t      tg_dtype_size(tg_dtype dt);   /* 4, 8, 4; 0 for an invalid value */
const char *tg_dtype_name(tg_dtype dt);   /* "f32", "f64", "i32"            */
static inline int tg_dtype_is_float(tg_dtype dt) { return dt == TG_F32 || dt == TG_F64; }

/* ---- allocator hook ---------------------------------------------------- */
/* Every heap allocation tapegrad makes goes through this hook (the arena's
 * chunks, persistent tensors, the tape's node array, kernel caches): tests
 * count or fail allocations through it. `ptr == NULL` allocates, `size == 0`
 * frees, otherwise reallocates (lua_Alloc's contract). Alignment returned is
 * that of malloc; tapegrad aligns further itself. */
typedef void *(*tg_alloc_fn)(void *ud, void *ptr, size_t old_size, size_t size);

/* Install `fn` (NULL restores the default, malloc/realloc/free). Not thread
 * safe: call it before creating any context. */
void tg_set_allocator(tg_alloc_fn fn, void *ud);

/* Allocation through the hook; memory is 16-byte aligned. tg_free(NULL) is
 * a no-op; tg_realloc(NULL, n) allocates. NULL on failure (or size 0). */
void *tg_malloc(size_t size);
void *tg_calloc(size_t size);            /* zeroed */
void *tg_realloc(void *p, size_t size);
void  tg_free(void *p);

/* ---- the context ------------------------------------------------------- */
/* tg_ctx owns: an arena for intermediate tensors and their gradients (reset in
 * O(1) by tg_ctx_reset), the sticky error state, the RNG, the thread count,
 * the grad-mode flag, and (through graph/) the tape. Opaque. */
typedef struct tg_ctx tg_ctx;

typedef struct tg_ctx_opts {
    size_t   arena_bytes;  /* first arena chunk; 0 = 1 MiB. More chunks are added
                              as needed during the first steps, then reused.  */
    uint64_t seed;         /* RNG seed; 0 is a valid seed                      */
    int      n_threads;    /* 0 = 1                                            */
} tg_ctx_opts;

/* Create a context; NULL only when out of memory. `opts` may be NULL. */
tg_ctx *tg_ctx_new(const tg_ctx_opts *opts);
/* Free the context, its arena, its tape and every tensor made in it. NULL ok. */
void    tg_ctx_free(tg_ctx *ctx);

/* End of a step: every tensor made in the arena (tg_tensor_new & friends, op
 * outputs, intermediate gradients) becomes invalid; the tape is cleared; the
 * sticky error is cleared. O(1) in the number of tensors; after the first
 * step of a repeated computation it allocates nothing. Persistent tensors
 * (tg_tensor_create) are untouched. */
void    tg_ctx_reset(tg_ctx *ctx);

/* Sticky error: the first failure since the last reset or clear. */
tg_status   tg_ctx_status(const tg_ctx *ctx);
const char *tg_ctx_error(const tg_ctx *ctx);     /* "" when status is TG_OK   */
void        tg_ctx_clear_error(tg_ctx *ctx);
/* Record a failure (no effect if an error is already recorded); returns `s`.
 * The message should name the op or file and the reason, e.g.
 * "matmul: inner dims differ (32x784 · 128x10)". */
tg_status   tg_ctx_fail(tg_ctx *ctx, tg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Anomaly mode (off by default): every op's forward output and every VJP
 * result is checked for NaN and Inf; the first one found stops the step with
 * TG_ERR_NUMERIC and a message naming the op, its input shapes, the first bad
 * index and value, and where the op was recorded (file:line, captured by the
 * call-site macros of tapegrad.h). Costs one pass over each output. */
void tg_ctx_set_anomaly(tg_ctx *ctx, int on);
int  tg_ctx_anomaly(const tg_ctx *ctx);
/* Call sites: the macros of tapegrad.h push the caller's file:line before a
 * recording function runs and pop it after, so every op recorded inside the
 * call (one op, or a whole model's forward) reports that site. Both return
 * their second-to-last argument's context / result for use in expressions.
 * Nesting is fine in any argument evaluation order. */
tg_ctx *tg_ctx_site_push(tg_ctx *ctx, const char *file, int line);
struct tg_tensor *tg_ctx_site_pop(tg_ctx *ctx, struct tg_tensor *result);

int  tg_ctx_threads(const tg_ctx *ctx);
void tg_ctx_set_threads(tg_ctx *ctx, int n);      /* n < 1 is taken as 1 */

/* Arena allocation: 64-byte aligned, valid until the next tg_ctx_reset.
 * Returns NULL (and records TG_ERR_NOMEM naming `what`) on failure. */
void  *tg_ctx_alloc(tg_ctx *ctx, size_t bytes, const char *what);
/* Bytes handed out since the last reset, and the arena's total capacity. */
size_t tg_ctx_arena_used(const tg_ctx *ctx);
size_t tg_ctx_arena_capacity(const tg_ctx *ctx);
/* Mark/rewind: memory allocated after a mark is released by rewinding to it.
 * Only for scratch the caller alone uses: rewinding below tensors or tape
 * nodes that are still in use leaves them dangling. */
size_t tg_ctx_arena_mark(const tg_ctx *ctx);
void   tg_ctx_arena_rewind(tg_ctx *ctx, size_t mark);
/* Debug aid used by the gradient checker: when on, every arena allocation is
 * filled with 0xFF bytes (a NaN in f32 and f64), so code that reads memory
 * it never wrote produces NaN instead of plausible garbage. */
void   tg_ctx_set_poison(tg_ctx *ctx, int on);

/* ---- random numbers ---------------------------------------------------- */
/* xoshiro256** seeded by splitmix64: the same seed gives the same sequence
 * on every machine. Normal deviates use the polar method in double. */
typedef struct tg_rng { uint64_t s[4]; } tg_rng;

void     tg_rng_seed(tg_rng *r, uint64_t seed);
uint64_t tg_rng_u64(tg_rng *r);
double   tg_rng_uniform(tg_rng *r);          /* [0, 1), 53 random bits   */
double   tg_rng_normal(tg_rng *r);           /* mean 0, std 1            */
uint64_t tg_rng_below(tg_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
tg_rng  *tg_ctx_rng(tg_ctx *ctx);            /* the context's generator  */

/* ---- tensors ----------------------------------------------------------- */
enum {
    TG_TENSOR_REQUIRES_GRAD = 1u << 0,  /* gradients flow to this tensor        */
    TG_TENSOR_PERSISTENT    = 1u << 1,  /* heap-owned (tg_tensor_create)        */
    TG_TENSOR_RETAIN_GRAD   = 1u << 2,  /* keep this intermediate's gradient    */
    TG_TENSOR_VIEW          = 1u << 3,  /* data is borrowed, not owned          */
    /* grad is to be taken as +0.0: the next contribution may overwrite
     * instead of add (0 + x == x). Set by the parameter store's zero_grad
     * (the buffer holds zeros) and by the reverse sweep on an intermediate's
     * fresh buffer before the first VJP into it (zeros, or unwritten bytes
     * when that VJP declared it overwrites: tg_op_def.overwrites). Cleared
     * by the tape after every VJP into the tensor and by anything else that
     * writes the gradient. */
    TG_TENSOR_GRAD_ZERO     = 1u << 4,
    /* Internal to the reverse sweep: grad is a buffer nobody has written
     * yet. The sweep zeroes it or hands it to an overwriting VJP (marked
     * TG_TENSOR_GRAD_ZERO) before any VJP sees it; no op sees this flag. */
    TG_TENSOR_GRAD_UNDEF    = 1u << 5
};

/* A tensor. Fields are read-only for users except through the functions
 * below; `data` and `grad` point at numel contiguous elements of `dtype`.
 * `grad` is NULL unless the tensor needs a gradient: leaves get one from
 * tg_tensor_requires_grad, intermediates during tg_backward. */
typedef struct tg_tensor {
    tg_dtype  dtype;
    int       ndim;
    int64_t   shape[TG_MAX_DIMS];
    int64_t   numel;
    void     *data;
    void     *grad;
    uint32_t  flags;
    int32_t   node;        /* index of the producing tape node, -1 for a leaf */
    tg_ctx   *ctx;         /* arena tensors: their context; persistent: NULL  */
    const char *name;      /* optional label (graph export, errors); not owned */
} tg_tensor;

/* Shape literal helper: tg_tensor_new(ctx, TG_F32, TG_DIMS(3, 4)). */
#define TG_DIMS(...) \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

/* Arena tensors, valid until the next tg_ctx_reset(ctx). On failure (bad
 * ndim or dims, out of memory, error already set) they return NULL with the
 * context's error set. `new` leaves data uninitialised. */
tg_tensor *tg_tensor_new  (tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape);
tg_tensor *tg_tensor_zeros(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape);
tg_tensor *tg_tensor_fill (tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, double v);
tg_tensor *tg_tensor_scalar(tg_ctx *ctx, tg_dtype dt, double v);
/* Copies numel elements from `src`, which holds elements of dtype `dt`. */
tg_tensor *tg_tensor_from (tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, const void *src);
/* Uniform in [lo, hi) / normal(mean, std), from the context's RNG. */
tg_tensor *tg_tensor_rand (tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, double lo, double hi);
tg_tensor *tg_tensor_randn(tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, double mean, double std);
/* A copy of `t` (data only; no gradient, not recorded) converted to `dt`. */
tg_tensor *tg_tensor_cast (tg_ctx *ctx, const tg_tensor *t, tg_dtype dt);
/* A tensor header over memory the caller owns (not copied, not freed). */
tg_tensor *tg_tensor_wrap (tg_ctx *ctx, tg_dtype dt, int ndim, const int64_t *shape, void *data);

/* Persistent (heap) tensors: live until tg_tensor_destroy. Used for
 * parameters and data that outlive a step. `status` may be NULL. Data is
 * zeroed. */
tg_tensor *tg_tensor_create(tg_dtype dt, int ndim, const int64_t *shape, tg_status *status);
void       tg_tensor_destroy(tg_tensor *t);

/* Mark a leaf as needing a gradient: allocates a zeroed grad buffer (from the
 * heap for persistent tensors, from the arena otherwise). Integer tensors
 * cannot require a gradient (TG_ERR_ARG). */
tg_status tg_tensor_requires_grad(tg_tensor *t);
/* Set the gradient to zero (no-op when it has none). */
void      tg_tensor_zero_grad(tg_tensor *t);

/* Element access as double (flat index); for tests, examples and tools. */
double tg_tensor_get(const tg_tensor *t, int64_t i);
void   tg_tensor_set(tg_tensor *t, int64_t i, double v);
double tg_tensor_grad_get(const tg_tensor *t, int64_t i);  /* 0 when no grad */

/* Shape utilities. */
int64_t tg_shape_numel(int ndim, const int64_t *shape);
int     tg_shape_equal(int nd_a, const int64_t *a, int nd_b, const int64_t *b);
/* Writes "3x4" ("scalar" for ndim 0) into buf; returns buf. */
char   *tg_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);
#define TG_SHAPE_STR_MAX 96

/* Internal invariants only; never for user input. */
#ifdef NDEBUG
#define TG_ASSERT(c) do { (void)sizeof(c); } while (0)
#else
void tg_assert_fail(const char *expr, const char *file, int line);
#define TG_ASSERT(c) do { if (!(c)) tg_assert_fail(#c, __FILE__, __LINE__); } while (0)
#endif

#ifdef __cplusplus
}
#endif
#endif /* TG_CORE_H */
