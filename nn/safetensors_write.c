/* safetensors_write.c — writing safetensors checkpoints: deterministic bytes
 * (entries and metadata in the caller's order, compact JSON built here by
 * hand, padded with spaces to a multiple of 8) and crash-safe replacement of
 * the target (a uniquely named, locked temporary file, fsync, rename, fsync
 * of the directory; temporaries of writers that died are removed by the next
 * save). Reading is safetensors.c's job. */
#define _DEFAULT_SOURCE   /* flock(): the temporary's liveness lock */
#include "safetensors_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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

/* ---- crash-safe replacement --------------------------------------------
 * The bytes go to a temporary "<path>.tmp.<pid>.<n>" in the same directory
 * (so the rename cannot cross file systems), created with O_EXCL: n counts
 * this process's saves, so threads saving the same path never share a
 * temporary, and a name left by a dead process whose pid came back is
 * skipped rather than reused. The writer holds an exclusive flock on its
 * temporary from creation to rename; a lock dies with its process (SIGKILL
 * included), so a temporary nobody holds locked belongs to a writer that
 * died, and the next save of the same path deletes it. A crash at any point
 * leaves the target either untouched or completely replaced; a load reads
 * only the target, so a leftover temporary can never be mistaken for it. */

/* "dir" and "base" of a path: "a/b/c" -> "a/b", "c"; "c" -> ".", "c";
 * "/c" -> "/", "c". One allocation holding both strings. */
static char *split_path(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (slash && n == 0)
        n = 1;
    const char *b = slash ? slash + 1 : path;
    size_t bl = strlen(b);
    char *dir = tg_malloc(n + 1 + bl + 1);
    if (!dir)
        return NULL;
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    memcpy(dir + n + 1, b, bl + 1);
    *base = dir + n + 1;
    return dir;
}

/* name == base ".tmp." digits "." digits; *pid gets the first number. */
static int is_temp_name(const char *name, const char *base, size_t bl, long *pid)
{
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0)
        return 0;
    const char *p = name + bl + 5;
    long v = 0;
    int fields = 0;
    for (;;) {
        const char *start = p;
        for (; *p >= '0' && *p <= '9'; p++)
            if (fields == 0 && v < 100000000)
                v = v * 10 + (*p - '0');
        if (p == start)
            return 0;
        if (++fields == 2)
            break;
        if (*p++ != '.')
            return 0;
    }
    *pid = v;
    return *p == '\0';
}

/* Delete the temporaries of `base` in `dir` that no live writer holds: a
 * writer that died (SIGKILL, power cut) could not remove its own. Our own
 * pid's names are left alone (another thread's, or a dead process's whose pid
 * we now have: harmless). Best effort; errors are ignored. */
static void remove_stale_temps(const char *dir, const char *base)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    int dfd = dirfd(d);
    size_t bl = strlen(base);
    long self = (long)getpid(), pid;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_temp_name(de->d_name, base, bl, &pid) || pid == self)
            continue;
        int fd = openat(dfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
            continue;
        struct stat a, b;
        /* Locked by us now and still the file of that name: its writer is
         * gone, and none can come back (a writer checks after locking that
         * its name still leads to its file). */
        if (fstat(fd, &a) == 0 && S_ISREG(a.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
            fstatat(dfd, de->d_name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            unlinkat(dfd, de->d_name, 0);
        close(fd);
    }
    closedir(d);
}

static atomic_uint tmp_seq;   /* per-process temporary names; atomic: threads save at once */

/* Create and lock a fresh temporary; its name in tmp (cap bytes). -1 with
 * errno set on failure. */
static int create_temp(const char *path, char *tmp, size_t cap, mode_t mode)
{
    for (int attempt = 0; attempt < 64; attempt++) {
        snprintf(tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(),
                 atomic_fetch_add(&tmp_seq, 1u));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0) {
            if (errno == EEXIST)
                continue;
            /* The name is ours alone (pid + fresh number), so nothing else
             * can be lost by removing it; some environments (valgrind's
             * descriptor limit) create the file and then fail the open. */
            int e = errno;
            unlink(tmp);
            errno = e;
            return -1;
        }
        int r;
        while ((r = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
            ;
        /* A file system without flock: go on unlocked (a cleaner there cannot
         * lock either, so it removes nothing). */
        struct stat a, b;
        if (r != 0 || (fstat(fd, &a) == 0 && stat(tmp, &b) == 0 &&
                       a.st_dev == b.st_dev && a.st_ino == b.st_ino))
            return fd;
        close(fd);   /* a cleaner took it for a dead writer's between open and lock */
    }
    errno = EEXIST;
    return -1;
}

/* write(2) until done: short writes continue, EINTR retries. */
static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n < ((size_t)1 << 30) ? n : ((size_t)1 << 30));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return 0;
        if (w == 0) {
            errno = EIO;        /* no progress and no reason: do not spin */
            return 0;
        }
        c += w;
        n -= (size_t)w;
    }
    return 1;
}

static int fsync_retry(int fd)
{
    int r;
    while ((r = fsync(fd)) != 0 && errno == EINTR)
        ;
    return r;
}

static tg_status fsync_dir(const char *path, const char *dir, char *err, size_t cap)
{
    tg_status s = TG_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* NOTE: some file systems cannot fsync a directory (EINVAL); the rename
     * has happened, so there is nothing better to do there. */
    if (fd < 0 || (fsync_retry(fd) != 0 && errno != EINVAL))
        s = st_fail(err, cap, TG_ERR_IO, "checkpoint %s: written, but syncing directory %s "
                    "failed: %s", path, dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    return s;
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

    /* A directory in the way fails now, not after writing every byte. A file
     * already there lends the new one its permission bits. (lstat: like the
     * rename, a symbolic link at `path` is replaced, not followed.) */
    mode_t mode = 0666;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return st_fail(err, err_cap, TG_ERR_IO, "checkpoint %s: cannot replace it: %s",
                           path, strerror(EISDIR));
        if (S_ISREG(st.st_mode))
            mode = st.st_mode & 0777;
    }

    sbuf hb = {0};
    build_header(&hb, entries, n, meta, n_meta);
    size_t plen = strlen(path), tcap = plen + 48;
    const char *base = NULL;
    char *dir = split_path(path, &base);
    char *tmp = tg_malloc(tcap);
    if (hb.oom || !dir || !tmp) {
        s = st_fail(err, err_cap, TG_ERR_NOMEM, "checkpoint %s: out of memory", path);
        goto done;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hb.len >> (8 * i));

    remove_stale_temps(dir, base);
    int fd = create_temp(path, tmp, tcap, mode);
    if (fd < 0) {
        s = st_fail(err, err_cap, TG_ERR_IO, "checkpoint %s: cannot create temporary file %s: "
                    "%s", path, tmp, strerror(errno));
        goto done;
    }
    if (mode != 0666)
        (void)fchmod(fd, mode);   /* exact bits, past the umask; best effort */
    int ok = write_all(fd, len8, 8) && write_all(fd, hb.p, hb.len);
    for (int i = 0; i < n && ok; i++)
        ok = write_all(fd, entries[i].data, entry_bytes(&entries[i]));
    if (!ok || fsync_retry(fd) != 0) {
        int e = errno;
        unlink(tmp);
        close(fd);
        s = st_fail(err, err_cap, TG_ERR_IO, "checkpoint %s: writing %s failed: %s (the "
                    "previous file is untouched)", path, tmp, strerror(e));
        goto done;
    }
    /* Renamed while still locked: a concurrent save's cleanup must not take
     * the finished temporary for a dead writer's. */
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        close(fd);
        s = st_fail(err, err_cap, TG_ERR_IO, "checkpoint %s: cannot replace it with %s: %s "
                    "(the previous file is untouched)", path, tmp, strerror(e));
        goto done;
    }
    /* NOTE: after a successful fsync, close has nothing left to report on
     * Linux file systems; its result is checked all the same. */
    if (close(fd) != 0 && errno != EINTR) {
        s = st_fail(err, err_cap, TG_ERR_IO, "checkpoint %s: written, but closing it failed: "
                    "%s", path, strerror(errno));
        goto done;
    }
    s = fsync_dir(path, dir, err, err_cap);
done:
    tg_free(tmp);
    tg_free(dir);
    tg_free(hb.p);
    return s;
}
