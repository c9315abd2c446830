/* tg_data.h — datasets: the IDX file format (MNIST, Fashion-MNIST), in-memory
 * datasets of float samples with int32 labels, and a seeded minibatch
 * iterator.
 *
 * File functions treat their input as untrusted: every header field is
 * checked before it is used, nothing is allocated before the sizes it depends
 * on are validated, and a failure returns a status plus a message naming the
 * file and the problem, written into a caller-provided buffer `err` of
 * `err_cap` bytes (always NUL-terminated when err_cap > 0; `err` may be NULL).
 *   TG_ERR_IO      the file could not be opened or read (the message carries
 *                  strerror's text)
 *   TG_ERR_FORMAT  the content is not what it must be (bad magic, truncated,
 *                  trailing bytes, absurd dimensions, corrupt gzip data)
 *   TG_ERR_NOMEM   an allocation failed
 *   TG_ERR_ARG     a NULL or out-of-range argument
 * Nothing is leaked on any path; outputs are left zeroed on failure.
 * All memory comes from tg_malloc (zlib's own internal buffers excepted).
 */
#ifndef TG_DATA_H
#define TG_DATA_H

#include "tg_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDX files --------------------------------------------------------- */
/* IDX (LeCun's MNIST format): bytes 0x00 0x00 <type> <ndims>, then ndims
 * big-endian u32 dimensions (each > 0), then the elements, big-endian,
 * row-major. The file may be gzip-compressed (detected by the gzip magic).
 * Every IDX element type is supported. */
typedef enum tg_idx_type {
    TG_IDX_U8  = 0x08,   /* unsigned byte */
    TG_IDX_I8  = 0x09,   /* signed byte   */
    TG_IDX_I16 = 0x0B,   /* short, 2 bytes */
    TG_IDX_I32 = 0x0C,   /* int, 4 bytes   */
    TG_IDX_F32 = 0x0D,   /* float, 4 bytes */
    TG_IDX_F64 = 0x0E    /* double, 8 bytes */
} tg_idx_type;

#define TG_IDX_MAX_DIMS 4
/* The largest element count accepted (2^31). A bigger declared size is a
 * corrupt header or not an IDX file at all; refusing it keeps a hostile
 * header from making the reader allocate gigabytes. */
#define TG_IDX_MAX_ELEMS ((int64_t)1 << 31)

/* A whole IDX array in memory, elements converted to host byte order. */
typedef struct tg_idx {
    tg_idx_type type;
    int         ndims;                    /* 1..TG_IDX_MAX_DIMS              */
    int64_t     dims[TG_IDX_MAX_DIMS];    /* each > 0; unused entries 0      */
    int64_t     numel;                    /* product of dims                 */
    size_t      elem_size;                /* 1, 2, 4 or 8                    */
    void       *data;                     /* numel elements; owned (tg_free) */
} tg_idx;

/* Read a (possibly gzipped) IDX file. On success `out` owns its data; free
 * it with tg_idx_free. On failure `out` is zeroed. */
tg_status tg_idx_load(const char *path, tg_idx *out, char *err, size_t err_cap);
/* The same from `len` bytes in memory (raw or gzip, told apart by the gzip
 * magic; not retained after the call), with the same checks, limits and
 * messages; `name` (NULL: "<memory>") stands for the file name in them. As
 * with files, gzip members may be concatenated and bytes after the last
 * member that do not start another are ignored. For tools and fuzzers. */
tg_status tg_idx_load_memory(const void *buf, size_t len, const char *name, tg_idx *out,
                             char *err, size_t err_cap);
void      tg_idx_free(tg_idx *a);                /* NULL and zeroed ok */
const char *tg_idx_type_name(int type);          /* "u8", ...; "unknown" */

/* ---- datasets ---------------------------------------------------------- */
/* n samples of d = dims[0]*...*dims[ndims-1] floats each, row-major in x
 * (x[i*d + j]), with one int32 label per sample in y. Fields are plain data;
 * x, y and x8 are owned (tg_malloc) and released by tg_dataset_free. */
typedef struct tg_dataset {
    int64_t  n;           /* number of samples                               */
    int      ndims;       /* dims of one sample: 0..3 (28x28 images: 2)      */
    int64_t  dims[3];
    int64_t  d;           /* elements per sample (1 when ndims is 0)         */
    float   *x;           /* n*d values (NULL once compacted)                */
    int32_t *y;           /* n labels in [0, n_classes)                      */
    int64_t  n_classes;   /* largest label + 1                               */
    uint8_t *x8;          /* compacted samples, x = x8 / 255.0f (see
                             tg_dataset_compact); NULL otherwise             */
} tg_dataset;

/* Load an images file and a labels file (each IDX, gzipped or raw) as one
 * dataset. Images: the first dimension counts samples, the rest (at most
 * three) are the sample's shape; unsigned-byte pixels are scaled to [0, 1]
 * (x = byte / 255), float and double elements are taken as they are, other
 * types are rejected. Labels: a 1-dim array of any integer type, values >= 0.
 * The two counts must match. On failure `out` is zeroed. */
tg_status tg_idx_load_pair(const char *images_path, const char *labels_path,
                           tg_dataset *out, char *err, size_t err_cap);

/* Fashion-MNIST (or MNIST) from `dir`: train != 0 reads
 * train-{images-idx3,labels-idx1}-ubyte[.gz], else t10k-...; the gzipped name
 * is tried first, then the raw one. Debian's dataset-fashion-mnist installs
 * the files in /usr/share/datasets/fashion-mnist. */
tg_status tg_fashion_mnist_load(const char *dir, int train, tg_dataset *out,
                                char *err, size_t err_cap);

/* The same two loaders with flags: TG_LOAD_BYTES keeps u8 images as bytes
 * (x NULL, x8 the pixels: the dataset tg_dataset_compact would make, without
 * ever building the floats: a quarter of the memory and of the first-touch
 * cost); other image types load as floats. Flags 0: as the plain loaders. */
enum { TG_LOAD_BYTES = 1u << 0 };
tg_status tg_idx_load_pair_flags(const char *images_path, const char *labels_path, unsigned flags,
                                 tg_dataset *out, char *err, size_t err_cap);
tg_status tg_fashion_mnist_load_flags(const char *dir, int train, unsigned flags, tg_dataset *out,
                                      char *err, size_t err_cap);

void tg_dataset_free(tg_dataset *ds);            /* NULL and zeroed ok */

/* Store the samples as bytes: when every value of x is b / 255.0f for a
 * byte b (as the loader makes of u8 images), x8 takes the bytes and x is
 * freed and set to NULL: a quarter of the memory, and batches gather 4x
 * fewer bytes (the iterator converts them back to the very same floats).
 * TG_ERR_ARG, and nothing changed, when some value is not such a fraction
 * (e.g. after standardising) or ds has no x; TG_OK at once when already
 * compacted; TG_ERR_NOMEM. Subsets and the iterator take compacted
 * datasets; standardize and normalize need x (TG_ERR_ARG). */
tg_status tg_dataset_compact(tg_dataset *ds);

/* A copy of samples [start, start + count) of `src` (count > 0). n_classes is
 * kept from `src`, so a subset's labels still index the same classes. */
tg_status tg_dataset_subset(const tg_dataset *src, int64_t start, int64_t count,
                            tg_dataset *out, char *err, size_t err_cap);

/* Standardise in place with one mean and standard deviation over every
 * element of x (population std, computed in double). The statistics are
 * returned through mean/std (either may be NULL) so the same transform can be
 * applied to a test set with tg_dataset_normalize. A constant dataset (std 0)
 * is only centred: *std is reported as 1. TG_ERR_NUMERIC if x holds a NaN or
 * infinity. */
tg_status tg_dataset_standardize(tg_dataset *ds, double *mean, double *std);
/* x = (x - mean) / std in place; TG_ERR_ARG unless std > 0 and both are
 * finite. */
tg_status tg_dataset_normalize(tg_dataset *ds, double mean, double std);

/* ---- minibatches ------------------------------------------------------- */
/* Walks a dataset in minibatches, in sample order or in a seeded random
 * order. The order of epoch k is a Fisher–Yates shuffle of 0..n-1 driven by a
 * tg_rng seeded from (seed, k) alone: the same on every machine, independent
 * of how earlier epochs were consumed, so training resumed from a checkpoint
 * at an epoch boundary sees exactly the batches it would have seen.
 * Only init allocates (the permutation); next, reset and seek_epoch never do.
 * The iterator borrows `ds`, which must outlive it and keep its n and d.
 * Fields are private; use the functions. */
typedef struct tg_batch_iter {
    const tg_dataset *ds;
    int64_t   batch;       /* batch size                                */
    int64_t   pos;         /* next position in perm                     */
    int64_t   epoch;       /* current epoch, 0 after init               */
    int64_t  *perm;        /* n sample indices in this epoch's order    */
    uint64_t  seed;
    int       shuffle;
    int       drop_last;
    int       threads;     /* copying threads (tg_batch_iter_set_threads) */
} tg_batch_iter;

/* batch_size >= 1. shuffle: 0 = sample order every epoch. drop_last: skip a
 * final batch smaller than batch_size. Starts at epoch 0. TG_ERR_ARG on bad
 * arguments, TG_ERR_NOMEM. `it` is zeroed on failure. */
tg_status tg_batch_iter_init(tg_batch_iter *it, const tg_dataset *ds, int64_t batch_size,
                             int shuffle, uint64_t seed, int drop_last);
void      tg_batch_iter_free(tg_batch_iter *it);   /* NULL and zeroed ok */

/* Copy the next batch into x (room for batch_size*d floats) and y (room for
 * batch_size labels); either may be NULL to skip it. Returns the number of
 * samples copied: batch_size, fewer for the last batch of an epoch (unless
 * drop_last), 0 when the epoch is over (and again on every later call until
 * reset or seek_epoch). */
int64_t tg_batch_iter_next(tg_batch_iter *it, float *x, int32_t *y);
/* Threads that copy a batch's samples (n < 1 is taken as 1; the default is
 * 1): each copies a fixed range of the batch. No effect without OpenMP or
 * on batches too small to pay for it. */
void    tg_batch_iter_set_threads(tg_batch_iter *it, int n);
/* The dataset indices of the samples the last call to next returned (its
 * return value says how many); NULL before the first batch of an epoch. */
const int64_t *tg_batch_iter_indices(const tg_batch_iter *it);

/* Move on to the next epoch (a new order when shuffling). */
void      tg_batch_iter_reset(tg_batch_iter *it);
/* Jump to the start of epoch k (k >= 0): the order is the one epoch k has
 * when reached by k resets. TG_ERR_ARG for k < 0. */
tg_status tg_batch_iter_seek_epoch(tg_batch_iter *it, int64_t epoch);
int64_t   tg_batch_iter_epoch(const tg_batch_iter *it);
/* Batches per epoch: ceil(n / batch), or floor with drop_last. */
int64_t   tg_batch_iter_num_batches(const tg_batch_iter *it);

#ifdef __cplusplus
}
#endif
#endif /* TG_DATA_H */
