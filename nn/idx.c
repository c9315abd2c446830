/* idx.c — the IDX file format (MNIST, Fashion-MNIST), gzipped or raw, read
 * defensively: each header field is validated before use, sizes are capped
 * before anything is allocated, the data must be exactly as long as the
 * header says, and every failure names the file and the reason.
 * Files are read through zlib's gz API, buffers (tg_idx_load_memory) with
 * inflate; both feed the same header and data checks.
 * Also the dataset loaders built on it (an images file + a labels file).
 * Batching, subsets and scaling live in batch.c. */
#define _DEFAULT_SOURCE 1   /* madvise, MADV_HUGEPAGE */
#include "tg_data.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define HDR_MAX (4 + 4 * TG_IDX_MAX_DIMS)
#define CUT_NOTE " (the gzip stream is cut off)"

/* Ask for transparent huge pages over the 2 MiB-aligned interior of a large
 * fresh allocation, before its first touch: a batch gathers rows from all
 * over the images, and with 4 KiB pages nearly every row costs a TLB miss
 * (measured: the batch copies of a default training epoch, 34 -> 25 ms); the
 * first touch also takes 512 times fewer page faults. Advice only: a
 * failure or a kernel without THP changes nothing. */
static void advise_huge(void *p, size_t bytes)
{
#if defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)1 << 21;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (e > a)
        (void)madvise((void *)a, (size_t)(e - a), MADV_HUGEPAGE);
#else
    (void)p; (void)bytes;
#endif
}

static tg_status fail(char *err, size_t cap, tg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static tg_status fail(char *err, size_t cap, tg_status s, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return s;
}

const char *tg_idx_type_name(int type)
{
    switch (type) {
    case TG_IDX_U8:  return "u8";
    case TG_IDX_I8:  return "i8";
    case TG_IDX_I16: return "i16";
    case TG_IDX_I32: return "i32";
    case TG_IDX_F32: return "f32";
    case TG_IDX_F64: return "f64";
    }
    return "unknown";
}

static size_t idx_elem_size(int type)
{
    switch (type) {
    case TG_IDX_U8: case TG_IDX_I8: return 1;
    case TG_IDX_I16:                return 2;
    case TG_IDX_I32: case TG_IDX_F32: return 4;
    case TG_IDX_F64:                return 8;
    }
    return 0;
}

/* "60000x28x28" for messages. */
static const char *dims_str(int nd, const int64_t *dims, char *buf, size_t cap)
{
    return tg_shape_str(nd, dims, buf, cap);
}

/* ---- reading through zlib ------------------------------------------------
 * Two sources feed the same validation code (read_header, read_data):
 * - a file: gzdopen reads gzip streams and passes other files through
 *   unchanged, so one path serves both; the gzip magic is looked at only for
 *   messages and to decide whether the file size on disk is the data size.
 * - a buffer: raw bytes are copied out; gzip data (same magic test) is
 *   inflated with zlib's inflate, following gzread's rules: concatenated
 *   members are read one after another, and bytes after a member that do not
 *   start another one are ignored. */
typedef struct reader {
    gzFile      gz;          /* a file, or NULL for a buffer           */
    const char *path;        /* the file name, or the buffer's label   */
    int         gzipped;
    int64_t     disk_size;   /* size of raw data known up front, else -1 */
    /* a buffer */
    const unsigned char *mem;
    size_t      mem_len, mem_pos;   /* raw: read position; gzip: input fed */
    z_stream    zs;
    int         zs_live;     /* inflateInit2 succeeded                 */
    int         zs_done;     /* no more output (end of the last member) */
} reader;

static tg_status rd_open(reader *r, const char *path, char *err, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->disk_size = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, cap, TG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fail(err, cap, TG_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return fail(err, cap, TG_ERR_IO, "%s: cannot read: %s", path, strerror(EISDIR));
    }
    unsigned char magic[2] = {0, 0};
    ssize_t got = S_ISREG(st.st_mode) ? pread(fd, magic, 2, 0) : 0;
    if (got < 0) {
        int e = errno;
        close(fd);
        return fail(err, cap, TG_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    r->gzipped = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (S_ISREG(st.st_mode) && !r->gzipped)
        r->disk_size = (int64_t)st.st_size;
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) {
        close(fd);
        return fail(err, cap, TG_ERR_NOMEM, "%s: out of memory opening the file", path);
    }
    gzbuffer(r->gz, 1u << 17);
    return TG_OK;
}

/* zlib's allocations for a buffer go through tg_malloc like everything else. */
static voidpf zs_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    if (size && items > SIZE_MAX / size)
        return Z_NULL;
    return tg_malloc((size_t)items * size);
}

static void zs_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    tg_free(p);
}

static tg_status rd_open_memory(reader *r, const void *buf, size_t len, const char *name,
                                char *err, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->path = name;
    r->disk_size = -1;
    r->mem = buf;
    r->mem_len = len;
    r->gzipped = len >= 2 && r->mem[0] == 0x1f && r->mem[1] == 0x8b;
    if (!r->gzipped) {
        r->disk_size = len > (size_t)INT64_MAX ? INT64_MAX : (int64_t)len;
        return TG_OK;
    }
    r->zs.zalloc = zs_alloc;
    r->zs.zfree = zs_free;
    r->zs.opaque = Z_NULL;
    int zr = inflateInit2(&r->zs, 15 + 16);          /* gzip only */
    if (zr == Z_MEM_ERROR)
        return fail(err, cap, TG_ERR_NOMEM, "%s: out of memory in zlib", name);
    if (zr != Z_OK)
        return fail(err, cap, TG_ERR_FORMAT, "%s: zlib cannot start inflating: %s", name,
                    r->zs.msg ? r->zs.msg : "unknown zlib error");
    r->zs_live = 1;
    return TG_OK;
}

static void rd_close(reader *r)
{
    if (r->gz)
        gzclose(r->gz);
    r->gz = NULL;
    if (r->zs_live)
        inflateEnd(&r->zs);
    r->zs_live = 0;
}

/* Input bytes of a gzip buffer inflate has not consumed yet, and the k-th. */
static size_t unread(const reader *r)
{
    return r->zs.avail_in + (r->mem_len - r->mem_pos);
}

static unsigned char unread_at(const reader *r, size_t k)
{
    return k < r->zs.avail_in ? r->zs.next_in[k] : r->mem[r->mem_pos + (k - r->zs.avail_in)];
}

/* rd_read for a buffer: same contract. */
static tg_status mem_read(reader *r, unsigned char *p, size_t len, size_t *got, int *cut,
                          char *err, size_t cap)
{
    if (!r->gzipped) {
        size_t n = r->mem_len - r->mem_pos;
        if (n > len)
            n = len;
        if (n)
            memcpy(p, r->mem + r->mem_pos, n);
        r->mem_pos += n;
        *got = n;
        return TG_OK;
    }
    z_stream *zs = &r->zs;
    while (*got < len && !r->zs_done) {
        if (zs->avail_in == 0 && r->mem_pos < r->mem_len) {
            size_t feed = r->mem_len - r->mem_pos;
            if (feed > (1u << 30))
                feed = 1u << 30;
            zs->next_in = (Bytef *)(r->mem + r->mem_pos);
            zs->avail_in = (uInt)feed;
            r->mem_pos += feed;
        }
        size_t want = len - *got;
        if (want > (1u << 30))
            want = 1u << 30;
        zs->next_out = p + *got;
        zs->avail_out = (uInt)want;
        int zr = inflate(zs, Z_NO_FLUSH);
        *got += want - zs->avail_out;
        if (zr == Z_STREAM_END) {
            /* Another member follows when the rest starts with the gzip magic
             * (gzread's rule; anything else after a member is ignored). */
            if (unread(r) >= 2 && unread_at(r, 0) == 0x1f && unread_at(r, 1) == 0x8b)
                inflateReset(zs);
            else
                r->zs_done = 1;
        } else if (zr == Z_MEM_ERROR) {
            return fail(err, cap, TG_ERR_NOMEM, "%s: out of memory in zlib", r->path);
        } else if (zr == Z_BUF_ERROR && unread(r) == 0) {
            *cut = 1;                /* the input ran out inside a member */
            return TG_OK;
        } else if (zr != Z_OK) {
            return fail(err, cap, TG_ERR_FORMAT, "%s: corrupt gzip data: %s", r->path,
                        zs->msg ? zs->msg : "compressed data error");
        }
    }
    return TG_OK;
}

/* Read up to len bytes; *got receives how many arrived (fewer at the end of
 * the data). A read error or corrupt gzip data is an error; the end of a
 * gzip stream cut short is reported through *cut (the caller words it). */
static tg_status rd_read(reader *r, void *buf, size_t len, size_t *got, int *cut,
                         char *err, size_t cap)
{
    unsigned char *p = buf;
    *got = 0;
    *cut = 0;
    if (!r->gz)
        return mem_read(r, p, len, got, cut, err, cap);
    while (*got < len) {
        size_t want = len - *got;
        if (want > (1u << 30))
            want = 1u << 30;
        z_off_t before = gztell(r->gz);
        int n = gzread(r->gz, p + *got, (unsigned)want);
        /* NOTE: on a cut-off stream zlib may drop the count of bytes it did
         * deliver in this call; its position counter still has them. */
        z_off_t after = gztell(r->gz);
        if (n > 0)
            *got += (size_t)n;
        else if (after > before)
            *got += (size_t)(after - before);
        if (n < 0 || (n == 0 && *got < len)) {
            int zerr = Z_OK;
            const char *zmsg = gzerror(r->gz, &zerr);
            if (zerr == Z_ERRNO)
                return fail(err, cap, TG_ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
            if (zerr == Z_BUF_ERROR) {
                *cut = 1;
                return TG_OK;
            }
            if (zerr == Z_MEM_ERROR)
                return fail(err, cap, TG_ERR_NOMEM, "%s: out of memory in zlib", r->path);
            if (zerr != Z_OK) {
                /* zlib prefixes its message with "<fd:N>: "; we name the file. */
                const char *m = zmsg ? zmsg : "unknown zlib error";
                const char *colon = strstr(m, ": ");
                if (strncmp(m, "<fd:", 4) == 0 && colon)
                    m = colon + 2;
                return fail(err, cap, TG_ERR_FORMAT, "%s: corrupt gzip data: %s", r->path, m);
            }
            return TG_OK;   /* clean end of data */
        }
    }
    return TG_OK;
}

/* ---- the IDX reader ---------------------------------------------------- */
/* Header: 00 00 type ndims, then ndims big-endian u32 dims. */
static tg_status read_header(reader *r, tg_idx *a, int64_t *hdr_bytes, char *err, size_t cap)
{
    const char *path = r->path;
    unsigned char h[HDR_MAX];
    size_t got;
    int cut;
    tg_status s = rd_read(r, h, 4, &got, &cut, err, cap);
    if (s != TG_OK)
        return s;
    if (got == 0 && !cut)
        return fail(err, cap, TG_ERR_FORMAT, "%s: empty %sfile (0 bytes), expected an IDX header",
                    path, r->gzipped ? "gzip " : "");
    if (got < 4)
        return fail(err, cap, TG_ERR_FORMAT, "%s: truncated header: %zu bytes, an IDX header "
                    "starts with 4 magic bytes%s", path, got, cut ? CUT_NOTE : "");
    if (h[0] != 0 || h[1] != 0)
        return fail(err, cap, TG_ERR_FORMAT, "%s: not an IDX file: magic %02x %02x %02x %02x, "
                    "expected 00 00 <type> <ndims>", path, h[0], h[1], h[2], h[3]);
    if (idx_elem_size(h[2]) == 0)
        return fail(err, cap, TG_ERR_FORMAT, "%s: unknown IDX element type 0x%02x (known: 0x08 u8, "
                    "0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)", path, h[2]);
    if (h[3] < 1 || h[3] > TG_IDX_MAX_DIMS)
        return fail(err, cap, TG_ERR_FORMAT, "%s: header declares %d dimensions, expected 1 to %d",
                    path, h[3], TG_IDX_MAX_DIMS);
    a->type = (tg_idx_type)h[2];
    a->ndims = h[3];
    a->elem_size = idx_elem_size(h[2]);
    size_t need = 4 * (size_t)a->ndims;
    s = rd_read(r, h + 4, need, &got, &cut, err, cap);
    if (s != TG_OK)
        return s;
    if (got < need)
        return fail(err, cap, TG_ERR_FORMAT, "%s: truncated header: %zu bytes, expected %zu "
                    "(4 magic bytes and %d dimensions)%s", path, 4 + got, 4 + need, a->ndims,
                    cut ? CUT_NOTE : "");
    *hdr_bytes = (int64_t)(4 + need);

    /* Dimensions are < 2^32 and the running product is capped at 2^31 before
     * each multiplication, so the product cannot overflow 64 bits. */
    uint64_t numel = 1;
    int too_big = 0;
    for (int i = 0; i < a->ndims; i++) {
        const unsigned char *b = h + 4 + 4 * i;
        uint32_t d = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        a->dims[i] = d;
        if (d == 0)
            return fail(err, cap, TG_ERR_FORMAT, "%s: dimension %d of %d is 0 (every dimension "
                        "must be at least 1)", path, i + 1, a->ndims);
        if (!too_big) {
            numel *= d;
            too_big = numel > (uint64_t)TG_IDX_MAX_ELEMS;
        }
    }
    char ds[TG_SHAPE_STR_MAX];
    if (too_big || numel * a->elem_size > (uint64_t)SIZE_MAX)
        return fail(err, cap, TG_ERR_FORMAT, "%s: header declares %s elements, more than the "
                    "limit of %lld (2^31): a corrupt header or not an IDX file", path,
                    dims_str(a->ndims, a->dims, ds, sizeof ds), (long long)TG_IDX_MAX_ELEMS);
    a->numel = (int64_t)numel;
    return TG_OK;
}

/* Big-endian elements to host order, in place, independent of the host. */
static void to_host_order(tg_idx *a)
{
    unsigned char *p = a->data;
    size_t n = (size_t)a->numel;
    if (a->elem_size == 2) {
        for (size_t i = 0; i < n; i++, p += 2) {
            uint16_t v = (uint16_t)(p[0] << 8 | p[1]);
            memcpy(p, &v, 2);
        }
    } else if (a->elem_size == 4) {
        for (size_t i = 0; i < n; i++, p += 4) {
            uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            memcpy(p, &v, 4);
        }
    } else if (a->elem_size == 8) {
        for (size_t i = 0; i < n; i++, p += 8) {
            uint64_t v = 0;
            for (int k = 0; k < 8; k++)
                v = v << 8 | p[k];
            memcpy(p, &v, 8);
        }
    }
}

/* Read exactly `want` data bytes into a buffer that grows with what actually
 * arrives (a gzip header may promise more than the stream holds), then make
 * sure nothing follows. */
static tg_status read_data(reader *r, tg_idx *a, int64_t hdr_bytes, char *err, size_t cap)
{
    const char *path = r->path;
    size_t want = (size_t)a->numel * a->elem_size;
    char ds[TG_SHAPE_STR_MAX];
    dims_str(a->ndims, a->dims, ds, sizeof ds);

    if (r->disk_size >= 0) {           /* a raw file: check its size first */
        int64_t have = r->disk_size - hdr_bytes;
        if (have < (int64_t)want)
            return fail(err, cap, TG_ERR_FORMAT, "%s: truncated data: a %s %s array needs %zu "
                        "bytes after the header, the file has %lld", path, ds,
                        tg_idx_type_name(a->type), want, (long long)have);
        if (have > (int64_t)want)
            return fail(err, cap, TG_ERR_FORMAT, "%s: %lld trailing bytes: a %s %s array needs "
                        "%zu bytes after the header, the file has %lld", path,
                        (long long)(have - (int64_t)want), ds, tg_idx_type_name(a->type), want,
                        (long long)have);
    }

    size_t room = r->disk_size >= 0 || want < ((size_t)1 << 20) ? want : (size_t)1 << 20;
    unsigned char *buf = tg_malloc(room);
    if (!buf)
        return fail(err, cap, TG_ERR_NOMEM, "%s: out of memory for %zu bytes", path, room);
    advise_huge(buf, room);           /* a known size: in huge pages at once */
    size_t have = 0;
    for (;;) {
        size_t got;
        int cut;
        tg_status s = rd_read(r, buf + have, room - have, &got, &cut, err, cap);
        if (s != TG_OK) {
            tg_free(buf);
            return s;
        }
        have += got;
        if (have < room) {
            tg_free(buf);
            return fail(err, cap, TG_ERR_FORMAT, "%s: truncated data: a %s %s array needs %zu "
                        "bytes after the header, the file has %zu%s", path, ds,
                        tg_idx_type_name(a->type), want, have, cut ? CUT_NOTE : "");
        }
        if (have == want)
            break;
        size_t grow = room > want / 2 ? want : room * 2;
        /* The last step is a fresh buffer in huge pages (advised before the
         * first touch; a realloc would keep the 4 KiB pages already written
         * and split huge ones it moves), holding a copy of what came so far. */
        unsigned char *nb = grow == want && want >= ((size_t)4 << 20) ? tg_malloc(grow) : tg_realloc(buf, grow);
        if (!nb) {
            tg_free(buf);
            return fail(err, cap, TG_ERR_NOMEM, "%s: out of memory for %zu bytes", path, grow);
        }
        if (grow == want && want >= ((size_t)4 << 20)) {
            advise_huge(nb, grow);
            memcpy(nb, buf, have);
            tg_free(buf);
        }
        buf = nb;
        room = grow;
    }

    /* Anything after the data is an error; reading on to the end also makes
     * zlib verify the gzip trailer (CRC and length). Count up to a bound. */
    unsigned char extra[4096];
    size_t n_extra = 0, got;
    int cut;
    tg_status s;
    do {
        s = rd_read(r, extra, sizeof extra, &got, &cut, err, cap);
        n_extra += got;
    } while (s == TG_OK && got == sizeof extra && n_extra < ((size_t)1 << 20));
    if (s == TG_OK && cut)
        s = fail(err, cap, TG_ERR_FORMAT, "%s: corrupt gzip data: the stream is cut off after "
                 "the data (missing gzip trailer)", path);
    if (s == TG_OK && n_extra)
        s = fail(err, cap, TG_ERR_FORMAT, "%s: %s%zu trailing bytes after the %zu data bytes of "
                 "a %s %s array", path, got == sizeof extra ? "more than " : "", n_extra, want,
                 ds, tg_idx_type_name(a->type));
    if (s != TG_OK) {
        tg_free(buf);
        return s;
    }
    a->data = buf;
    to_host_order(a);
    return TG_OK;
}

/* Header, then data, from an opened reader; closes it. */
static tg_status load(reader *r, tg_idx *out, char *err, size_t err_cap)
{
    tg_idx a;
    memset(&a, 0, sizeof a);
    int64_t hdr = 0;
    tg_status s = read_header(r, &a, &hdr, err, err_cap);
    if (s == TG_OK)
        s = read_data(r, &a, hdr, err, err_cap);
    rd_close(r);
    if (s == TG_OK)
        *out = a;
    return s;
}

tg_status tg_idx_load(const char *path, tg_idx *out, char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (!out)
        return fail(err, err_cap, TG_ERR_ARG, "tg_idx_load: output is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return fail(err, err_cap, TG_ERR_ARG, "tg_idx_load: path is NULL");
    reader r;
    tg_status s = rd_open(&r, path, err, err_cap);
    if (s != TG_OK)
        return s;
    return load(&r, out, err, err_cap);
}

tg_status tg_idx_load_memory(const void *buf, size_t len, const char *name, tg_idx *out,
                             char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (!name)
        name = "<memory>";
    if (!out)
        return fail(err, err_cap, TG_ERR_ARG, "tg_idx_load_memory: output is NULL");
    memset(out, 0, sizeof *out);
    if (!buf && len)
        return fail(err, err_cap, TG_ERR_ARG, "%s: buffer is NULL", name);
    reader r;
    tg_status s = rd_open_memory(&r, buf ? buf : "", len, name, err, err_cap);
    if (s != TG_OK) {
        rd_close(&r);
        return s;
    }
    return load(&r, out, err, err_cap);
}

void tg_idx_free(tg_idx *a)
{
    if (!a)
        return;
    tg_free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- datasets from IDX pairs ------------------------------------------- */
void tg_dataset_free(tg_dataset *ds)
{
    if (!ds)
        return;
    tg_free(ds->x);
    tg_free(ds->y);
    tg_free(ds->x8);
    memset(ds, 0, sizeof *ds);
}

static tg_status images_to_float(const tg_idx *im, const char *path, float **x,
                                 char *err, size_t cap)
{
    size_t n = (size_t)im->numel;
    if (n > SIZE_MAX / sizeof(float))
        return fail(err, cap, TG_ERR_NOMEM, "%s: %zu elements do not fit in memory", path, n);
    float *v = tg_malloc(n * sizeof(float));
    if (!v)
        return fail(err, cap, TG_ERR_NOMEM, "%s: out of memory for %zu floats", path, n);
    advise_huge(v, n * sizeof(float));
    if (im->type == TG_IDX_U8) {
        /* NOTE: a table of b / 255.0f makes 255 exactly 1.0 (a multiply by
         * the rounded 1/255 would not always). */
        float lut[256];
        for (int i = 0; i < 256; i++)
            lut[i] = (float)i / 255.0f;
        const unsigned char *p = im->data;
        for (size_t i = 0; i < n; i++)
            v[i] = lut[p[i]];
    } else if (im->type == TG_IDX_F32) {
        memcpy(v, im->data, n * sizeof(float));
    } else {
        const double *p = im->data;
        for (size_t i = 0; i < n; i++)
            v[i] = (float)p[i];
    }
    *x = v;
    return TG_OK;
}

tg_status tg_dataset_compact(tg_dataset *ds)
{
    if (!ds)
        return TG_ERR_ARG;
    if (ds->x8)
        return TG_OK;
    if (!ds->x || ds->n <= 0 || ds->d <= 0)
        return TG_ERR_ARG;
    size_t n = (size_t)(ds->n * ds->d);
    for (size_t i = 0; i < n; i++) {          /* every value a byte / 255? */
        float v = ds->x[i] * 255.0f;
        if (!(v >= 0 && v <= 255))
            return TG_ERR_ARG;
        int b = (int)(v + 0.5f);
        if ((float)b / 255.0f != ds->x[i])
            return TG_ERR_ARG;
    }
    uint8_t *x8 = tg_malloc(n);
    if (!x8)
        return TG_ERR_NOMEM;
    advise_huge(x8, n);
    for (size_t i = 0; i < n; i++)
        x8[i] = (uint8_t)(ds->x[i] * 255.0f + 0.5f);
    tg_free(ds->x);
    ds->x = NULL;
    ds->x8 = x8;
    return TG_OK;
}

static int64_t label_at(const tg_idx *lb, size_t i)
{
    switch (lb->type) {
    case TG_IDX_U8:  return ((const uint8_t *)lb->data)[i];
    case TG_IDX_I8:  return ((const int8_t *)lb->data)[i];
    case TG_IDX_I16: return ((const int16_t *)lb->data)[i];
    default:         return ((const int32_t *)lb->data)[i];
    }
}

static tg_status labels_to_i32(const tg_idx *lb, const char *path, int32_t **y,
                               int64_t *n_classes, char *err, size_t cap)
{
    size_t n = (size_t)lb->numel;
    int32_t *v = tg_malloc(n * sizeof(int32_t));
    if (!v)
        return fail(err, cap, TG_ERR_NOMEM, "%s: out of memory for %zu labels", path, n);
    int64_t max = -1;
    for (size_t i = 0; i < n; i++) {
        int64_t l = label_at(lb, i);
        if (l < 0) {
            tg_free(v);
            return fail(err, cap, TG_ERR_FORMAT, "%s: label %lld at index %zu is negative "
                        "(class labels must be >= 0)", path, (long long)l, i);
        }
        v[i] = (int32_t)l;
        if (l > max)
            max = l;
    }
    *y = v;
    *n_classes = max + 1;
    return TG_OK;
}

tg_status tg_idx_load_pair(const char *images_path, const char *labels_path,
                           tg_dataset *out, char *err, size_t err_cap)
{
    return tg_idx_load_pair_flags(images_path, labels_path, 0, out, err, err_cap);
}

tg_status tg_idx_load_pair_flags(const char *images_path, const char *labels_path, unsigned flags,
                                 tg_dataset *out, char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (!out)
        return fail(err, err_cap, TG_ERR_ARG, "tg_idx_load_pair: output is NULL");
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path)
        return fail(err, err_cap, TG_ERR_ARG, "tg_idx_load_pair: a path is NULL");

    tg_idx im, lb;
    memset(&lb, 0, sizeof lb);
    char d1[TG_SHAPE_STR_MAX];
    tg_status s = tg_idx_load(images_path, &im, err, err_cap);
    if (s != TG_OK)
        return s;
    if (im.type != TG_IDX_U8 && im.type != TG_IDX_F32 && im.type != TG_IDX_F64) {
        s = fail(err, err_cap, TG_ERR_FORMAT, "%s: images must be u8 (0x08), f32 (0x0D) or "
                 "f64 (0x0E) elements, this file holds %s", images_path,
                 tg_idx_type_name(im.type));
        goto done;
    }
    s = tg_idx_load(labels_path, &lb, err, err_cap);
    if (s != TG_OK)
        goto done;
    if (lb.type != TG_IDX_U8 && lb.type != TG_IDX_I8 && lb.type != TG_IDX_I16 &&
        lb.type != TG_IDX_I32) {
        s = fail(err, err_cap, TG_ERR_FORMAT, "%s: labels must be integers (u8, i8, i16 or "
                 "i32), this file holds %s", labels_path, tg_idx_type_name(lb.type));
        goto done;
    }
    if (lb.ndims != 1) {
        s = fail(err, err_cap, TG_ERR_FORMAT, "%s: labels must be 1-dimensional, this file "
                 "holds a %s array", labels_path, dims_str(lb.ndims, lb.dims, d1, sizeof d1));
        goto done;
    }
    if (lb.dims[0] != im.dims[0]) {
        s = fail(err, err_cap, TG_ERR_FORMAT, "%s holds %lld images but %s holds %lld labels",
                 images_path, (long long)im.dims[0], labels_path, (long long)lb.dims[0]);
        goto done;
    }

    tg_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = im.dims[0];
    ds.ndims = im.ndims - 1;
    ds.d = 1;
    for (int i = 0; i < ds.ndims; i++) {
        ds.dims[i] = im.dims[i + 1];
        ds.d *= ds.dims[i];
    }
    if ((flags & TG_LOAD_BYTES) && im.type == TG_IDX_U8) {
        ds.x8 = im.data;                  /* the pixels as read: no copy */
        im.data = NULL;
    } else {
        s = images_to_float(&im, images_path, &ds.x, err, err_cap);
    }
    if (s == TG_OK)
        s = labels_to_i32(&lb, labels_path, &ds.y, &ds.n_classes, err, err_cap);
    if (s == TG_OK)
        *out = ds;
    else
        tg_dataset_free(&ds);
done:
    tg_idx_free(&im);
    tg_idx_free(&lb);
    return s;
}

/* "<dir>/<stem>.gz" when it exists, else "<dir>/<stem>" when that exists,
 * else the .gz name (so the error names the file we looked for first). */
static tg_status pick_file(const char *dir, const char *stem, char *buf, size_t n,
                           char *err, size_t cap)
{
    int w = snprintf(buf, n, "%s/%s", dir, stem);
    if (w < 0 || (size_t)w + 4 >= n)
        return fail(err, cap, TG_ERR_ARG, "fashion-mnist: directory name too long: %s", dir);
    if (access(buf, F_OK) == 0) {
        char gz[4096 + 64];
        snprintf(gz, sizeof gz, "%s.gz", buf);
        if (access(gz, F_OK) == 0)
            memcpy(buf, gz, strlen(gz) + 1);
        return TG_OK;
    }
    memcpy(buf + w, ".gz", 4);
    return TG_OK;
}

tg_status tg_fashion_mnist_load(const char *dir, int train, tg_dataset *out,
                                char *err, size_t err_cap)
{
    return tg_fashion_mnist_load_flags(dir, train, 0, out, err, err_cap);
}

tg_status tg_fashion_mnist_load_flags(const char *dir, int train, unsigned flags, tg_dataset *out,
                                      char *err, size_t err_cap)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!dir || !out)
        return fail(err, err_cap, TG_ERR_ARG, "tg_fashion_mnist_load: NULL argument");
    const char *pre = train ? "train" : "t10k";
    char stem[32], images[4096], labels[4096];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", pre);
    tg_status s = pick_file(dir, stem, images, sizeof images, err, err_cap);
    if (s != TG_OK)
        return s;
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", pre);
    s = pick_file(dir, stem, labels, sizeof labels, err, err_cap);
    if (s != TG_OK)
        return s;
    return tg_idx_load_pair_flags(images, labels, flags, out, err, err_cap);
}
