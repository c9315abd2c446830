/* safetensors_write.c — writing safetensors checkpoints: deterministic bytes
 * (entries and metadata in the caller's order, compact JSON built here by
 * hand, padded with spaces to a multiple of 8) and crash-safe replacement of
 * the target (temporary file, fsync, rename, fsync of the directory).
 * Reading is safetensors.c's job. */
#include "safetensors_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a growable byte buffer for the header ------------------------------ */
typedef struct sbuf {
    char  *p;
    size_t len, cap;
    int    oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *q = tg_realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, long long v)
{
    char t[32];
    int w = snprintf(t, sizeof t, fmt, v);
    sb_put(b, t, (size_t)w);
}

/* A JSON string literal: quotes, backslashes and control characters escaped;
 * other bytes (valid UTF-8, checked beforehand) copied. */
static void sb_json_str(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                        : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
        if (esc) {
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF),
 * as JSON readers require. */
static int utf8_ok(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        unsigned c = *s;
        int n;
        unsigned min;
        if (c < 0x80) { s++; continue; }
        else if ((c & 0xE0) == 0xC0) { n = 1; min = 0x80; c &= 0x1F; }
        else if ((c & 0xF0) == 0xE0) { n = 2; min = 0x800; c &= 0x0F; }
        else if ((c & 0xF8) == 0xF0) { n = 3; min = 0x10000; c &= 0x07; }
        else return 0;
        for (int i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return 0;
            c = c << 6 | (s[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        s += n + 1;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names must be unique: sort a copy of the pointers, compare neighbours. */
static tg_status check_unique(const char **names, int n, const char *what, const char *path,
                              char *err, size_t cap)
{
    if (n < 2)
        return TG_OK;
    const char **s = tg_malloc((size_t)n * sizeof *s);
    if (!s)
        return st_fail(err, cap, TG_ERR_NOMEM, "checkpoint %s: out of memory", path);
    memcpy(s, names, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_str);
    tg_status st = TG_OK;
    for (int i = 1; i < n && st == TG_OK; i++)
        if (strcmp(s[i - 1], s[i]) == 0)
            st = st_fail(err, cap, TG_ERR_ARG, "checkpoint %s: %s '%.80s' appears twice", path,
                         what, s[i]);
    tg_free(s);
    return st;
}

static tg_status check_args(const char *path, const tg_st_entry *e, int n, const tg_st_meta *m,
                            int n_meta, char *err, size_t cap)
{
    if (n < 0 || (n > 0 && !e) || n_meta < 0 || (n_meta > 0 && !m))
        return st_fail(err, cap, TG_ERR_ARG, "checkpoint %s: bad entry or metadata list", path);
    for (int i = 0; i < n; i++) {
        if (!e[i].name || !e[i].name[0] || !utf8_ok(e[i].name) ||
            strcmp(e[i].name, "__metadata__") == 0)
            return st_fail(err, cap, TG_ERR_ARG, "checkpoint %s: entry %d needs a non-empty "
                           "UTF-8 name other than \"__metadata__\"", path, i);
        if (!st_dtype_name(e[i].dtype))
            return st_fail(err, cap, TG_ERR_ARG, "checkpoint %s: tensor '%.80s' has invalid "
                           "dtype %d", path, e[i].name, (int)e[i].dtype);
        int64_t numel = e[i].ndim < 0 || (e[i].ndim > 0 && !e[i].shape) ? -1
                      : st_checked_numel(e[i].ndim, e[i].shape, tg_dtype_size(e[i].dtype));
        if (numel < 0)
            return st_fail(err, cap, TG_ERR_ARG, "checkpoint %s: tensor '%.80s' has a negative "
                           "or overflowing shape", path, e[i].name);
        if (numel > 0 && !e[i].data)
            return st_fail(err, cap, TG_ERR_ARG, "checkpoint %s: tensor '%.80s' has no data",
                           path, e[i].name);
    }
    for (int i = 0; i < n_meta; i++)
        if (!m[i].key || !m[i].value || !utf8_ok(m[i].key) || !utf8_ok(m[i].value))
            return st_fail(err, cap, TG_ERR_ARG, "checkpoint %s: metadata pair %d needs UTF-8 "
                           "key and value strings", path, i);
    return TG_OK;
}

static size_t entry_bytes(const tg_st_entry *e)
{
    return (size_t)st_checked_numel(e->ndim, e->shape, 0) * tg_dtype_size(e->dtype);
}

/* {"__metadata__":{"k":"v"},"name":{"dtype":"F32","shape":[2,3],
 *  "data_offsets":[0,24]},...} then spaces up to a multiple of 8. */
static void build_header(sbuf *b, const tg_st_entry *e, int n, const tg_st_meta *m, int n_meta)
{
    sb_put(b, "{", 1);
    if (n_meta > 0) {
        sb_str(b, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i)
                sb_put(b, ",", 1);
            sb_json_str(b, m[i].key);
            sb_put(b, ":", 1);
            sb_json_str(b, m[i].value);
        }
        sb_put(b, "}", 1);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i || n_meta > 0)
            sb_put(b, ",", 1);
        sb_json_str(b, e[i].name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, st_dtype_name(e[i].dtype));
        sb_str(b, "\",\"shape\":[");
        for (int k = 0; k < e[i].ndim; k++)
            sb_fmt(b, k ? ",%lld" : "%lld", (long long)e[i].shape[k]);
        uint64_t end = off + entry_bytes(&e[i]);
        sb_fmt(b, "],\"data_offsets\":[%lld,", (long long)off);
        sb_fmt(b, "%lld]}", (long long)end);
        off = end;
    }
    sb_put(b, "}", 1);
    while (!b->oom && b->len % 8)     /* a failed put adds nothing: stop */
        sb_put(b, " ", 1);
}

/* ---- crash-safe replacement -------------------------------------------- */
static tg_status fsync_dir(const char *path, char *err, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (slash && n == 0)
        n = 1;                              /* "/file": the root */
    char *dir = tg_malloc(n + 1);
    if (!dir)
        return st_fail(err, cap, TG_ERR_NOMEM, "checkpoint %s: out of memory", path);
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    tg_status s = TG_OK;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    /* NOTE: some file systems cannot fsync a directory (EINVAL); the rename
     * has happened, so there is nothing better to do there. */
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        s = st_fail(err, cap, TG_ERR_IO, "checkpoint %s: written, but syncing directory %s "
                    "failed: %s", path, dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    tg_free(dir);
    return s;
}

static int write_all(FILE *fp, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, fp) == n;
}

tg_status tg_safetensors_save(const char *path, const tg_st_entry *entries, int n,
                              const tg_st_meta *meta, int n_meta, char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (!path || !path[0])
        return st_fail(err, err_cap, TG_ERR_ARG, "tg_safetensors_save: empty path");
    tg_status s = check_args(path, entries, n, meta, n_meta, err, err_cap);
    if (s != TG_OK)
        return s;

    /* Unique tensor names and unique metadata keys. */
    const char **names = tg_malloc(((size_t)n + (size_t)n_meta + 1) * sizeof *names);
    if (!names)
        return st_fail(err, err_cap, TG_ERR_NOMEM, "checkpoint %s: out of memory", path);
    for (int i = 0; i < n; i++)
        names[i] = entries[i].name;
    for (int i = 0; i < n_meta; i++)
        names[n + i] = meta[i].key;
    s = check_unique(names, n, "tensor name", path, err, err_cap);
    if (s == TG_OK)
        s = check_unique(names + n, n_meta, "metadata key", path, err, err_cap);
    tg_free(names);
    if (s != TG_OK)
        return s;

    sbuf hb = {0};
    build_header(&hb, entries, n, meta, n_meta);
    if (hb.oom) {
        tg_free(hb.p);
        return st_fail(err, err_cap, TG_ERR_NOMEM, "checkpoint %s: out of memory for the "
                       "header", path);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hb.len >> (8 * i));

    size_t plen = strlen(path);
    char *tmp = tg_malloc(plen + 32);
    if (!tmp) {
        tg_free(hb.p);
        return st_fail(err, err_cap, TG_ERR_NOMEM, "checkpoint %s: out of memory", path);
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());

    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        s = st_fail(err, err_cap, TG_ERR_IO, "checkpoint %s: cannot create temporary file %s: "
                    "%s", path, tmp, strerror(errno));
        goto done;
    }
    int ok = write_all(fp, len8, 8) && write_all(fp, hb.p, hb.len);
    for (int i = 0; i < n && ok; i++)
        ok = write_all(fp, entries[i].data, entry_bytes(&entries[i]));
    if (!ok || fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        int e = errno;
        fclose(fp);
        unlink(tmp);
        s = st_fail(err, err_cap, TG_ERR_IO, "checkpoint %s: writing %s failed: %s (the "
                    "previous file is untouched)", path, tmp, strerror(e));
        goto done;
    }
    if (fclose(fp) != 0) {
        int e = errno;
        unlink(tmp);
        s = st_fail(err, err_cap, TG_ERR_IO, "checkpoint %s: closing %s failed: %s (the "
                    "previous file is untouched)", path, tmp, strerror(e));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        s = st_fail(err, err_cap, TG_ERR_IO, "checkpoint %s: cannot replace it with %s: %s "
                    "(the previous file is untouched)", path, tmp, strerror(e));
        goto done;
    }
    s = fsync_dir(path, err, err_cap);
done:
    tg_free(tmp);
    tg_free(hb.p);
    return s;
}
