/* tg_checkpoint.h — safetensors files: tapegrad's checkpoint format.
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * u64 N, N bytes of UTF-8 JSON (an object; may be padded at the end with
 * spaces), then the data buffer. The JSON maps each tensor name to
 *   {"dtype": "F32", "shape": [784, 128], "data_offsets": [begin, end]}
 * with offsets relative to the start of the data buffer, plus an optional
 * "__metadata__" object of string values. Tensors are row-major and
 * little-endian, and their byte ranges tile the buffer exactly.
 *
 * Writing is crash-safe (temporary file, fsync, rename, fsync of the
 * directory) and deterministic (same entries → same bytes). Reading treats the
 * file as hostile: every number in the header is checked before it is used.
 *
 * Errors: a tg_status plus a message naming the file and the problem in a
 * caller-provided buffer `err` of `err_cap` bytes (NUL-terminated when
 * err_cap > 0; `err` may be NULL):
 *   TG_ERR_IO      the file could not be opened, read, written or renamed
 *                  (strerror's text is in the message)
 *   TG_ERR_FORMAT  the content is malformed or truncated
 *   TG_ERR_SHAPE   load_into: the file does not fit the targets (a tensor
 *                  missing, a dtype or shape differing, an extra tensor)
 *   TG_ERR_ARG     bad arguments (NULL pointers, invalid or duplicate names,
 *                  negative or overflowing dims, an invalid dtype)
 *   TG_ERR_NOMEM   an allocation failed
 * All memory comes from tg_malloc (jansson's parser allocates internally with
 * malloc and frees before returning).
 *
 * NOTE: data is written and read in host byte order; tapegrad builds only on
 * little-endian hosts, which is what the format requires.
 */
#ifndef TG_CHECKPOINT_H
#define TG_CHECKPOINT_H

#include "tg_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Header length limit when reading (the reference implementation's). */
#define TG_ST_MAX_HEADER 100000000u

/* One tensor to save, or a destination to load into. `shape` holds `ndim`
 * dims (ndim 0 = a scalar); `data` holds numel elements of `dtype`: save reads
 * it, load_into overwrites it. `name`: non-empty UTF-8, not "__metadata__". */
typedef struct tg_st_entry {
    const char    *name;
    tg_dtype       dtype;
    int            ndim;
    const int64_t *shape;
    void          *data;
} tg_st_entry;

/* An entry describing a tensor (borrows its shape and data). */
static inline tg_st_entry tg_st_entry_of(const char *name, tg_tensor *t)
{
    tg_st_entry e = { name, t->dtype, t->ndim, t->shape, t->data };
    return e;
}

/* One "__metadata__" pair (UTF-8 strings). */
typedef struct tg_st_meta {
    const char *key;
    const char *value;
} tg_st_meta;

/* Write `n` tensors (n >= 0; in the order given) and `n_meta` metadata pairs
 * (written in the given order; none: no "__metadata__" key) to `path`.
 * Written to a new "<path>.tmp.<pid>.<n>" first (unique per process and
 * call, so threads may save the same path at once: the last rename wins),
 * fsync'ed, renamed over `path`, then the directory is fsync'ed: a crash or
 * failure at any point leaves either the previous file or the new one, never
 * a mix. On failure the temporary file is removed and `path` is untouched. A
 * process killed mid-save cannot remove its temporary; the next save of the
 * same path does (a writer holds a flock on its temporary until the rename,
 * so only dead writers' temporaries are taken). Loads read `path` only. A
 * directory at `path` fails at once (TG_ERR_IO); an existing file's
 * permission bits carry over to its replacement. The header is compact JSON
 * padded with spaces so the data starts at a multiple of 8. */
tg_status tg_safetensors_save(const char *path, const tg_st_entry *entries, int n,
                              const tg_st_meta *meta, int n_meta, char *err, size_t err_cap);

/* ---- reading ----------------------------------------------------------- */
typedef struct tg_st_file tg_st_file;   /* an opened, validated file; opaque */

/* What the file says about one tensor. Pointers stay valid until close. */
typedef struct tg_st_info {
    const char    *name;
    const char    *dtype_name;  /* as in the file: "F32", "BF16", "I64", ...     */
    int            dtype;       /* the tg_dtype for F32, F64, I32; -1 otherwise  */
    size_t         elem_size;   /* bytes per element                              */
    int            ndim;
    const int64_t *shape;       /* ndim dims (NULL for a scalar)                  */
    int64_t        numel;
    const void    *data;        /* nbytes bytes, little-endian. The data buffer is
                                   16-byte aligned, so this is aligned exactly when
                                   the file's offset is a multiple of the element
                                   size (not guaranteed by the format): memcpy
                                   when unsure                                    */
    size_t         nbytes;
} tg_st_info;

/* Read all of `path` and validate it: header length within the file and the
 * TG_ST_MAX_HEADER cap, a JSON object with no duplicate keys, known dtypes,
 * non-negative dims whose byte count does not overflow and equals the
 * tensor's data_offsets span, offsets in range, ranges tiling the data buffer
 * with no hole or overlap, metadata values that are strings. NULL on failure
 * (message in err). Close with tg_safetensors_close. */
tg_st_file *tg_safetensors_open(const char *path, char *err, size_t err_cap);
/* The same from memory (`len` bytes; copied, so `buf` may go away). `name`
 * labels messages. For tools and fuzzers. */
tg_st_file *tg_safetensors_open_memory(const void *buf, size_t len, const char *name,
                                       char *err, size_t err_cap);
void        tg_safetensors_close(tg_st_file *f);      /* NULL ok */

/* Tensors in header order. get: 0 <= i < count, else TG_ERR_ARG. find:
 * TG_ERR_ARG when there is no tensor of that name. `info` may be NULL. */
int         tg_safetensors_count(const tg_st_file *f);
tg_status   tg_safetensors_get(const tg_st_file *f, int i, tg_st_info *info);
tg_status   tg_safetensors_find(const tg_st_file *f, const char *name, tg_st_info *info);
/* A "__metadata__" value, or NULL when absent. Also by index (header order). */
const char *tg_safetensors_meta(const tg_st_file *f, const char *key);
int         tg_safetensors_meta_count(const tg_st_file *f);
tg_status   tg_safetensors_meta_get(const tg_st_file *f, int i, const char **key,
                                    const char **value);

/* Flags for tg_safetensors_load_into. */
enum {
    TG_ST_NO_EXTRA = 1u << 0   /* the file may hold no tensor besides the targets */
};

/* All-or-nothing load of a checkpoint: opens and validates `path`, checks
 * that each of the `n` targets exists in the file with exactly its dtype and
 * shape (and with TG_ST_NO_EXTRA, that the file holds nothing else), and only
 * then copies every tensor into its target's data. On any error no target is
 * written. A mismatch is TG_ERR_SHAPE with a message naming the tensor and
 * both shapes (or dtypes), e.g.
 * "checkpoint model.ckpt: tensor 'dense1.weight' has shape 784x64, model
 * expects 784x128". */
tg_status tg_safetensors_load_into(const char *path, const tg_st_entry *targets, int n,
                                   unsigned flags, char *err, size_t err_cap);

#ifdef __cplusplus
}
#endif
#endif /* TG_CHECKPOINT_H */
