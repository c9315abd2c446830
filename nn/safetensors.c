/* safetensors.c — reading safetensors files and loading checkpoints into a
 * model's tensors, all or nothing. The file is treated as hostile: the header
 * length is checked against the file and a cap before anything is allocated,
 * the JSON is parsed by jansson with duplicate keys rejected, and every dtype,
 * shape and offset is validated (the byte ranges must tile the data buffer)
 * before a single data byte is exposed. Writing lives in safetensors_write.c. */
#include "safetensors_impl.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; tapegrad reads it in place on little-endian hosts only"
#endif

typedef struct st_tensor {
    tg_st_info info;
    uint64_t   begin, end;      /* byte range in the data buffer */
} st_tensor;

struct tg_st_file {
    int            n;
    st_tensor     *t;           /* header order                  */
    st_tensor    **by_name;     /* sorted by name, for find      */
    int64_t       *dims;        /* every tensor's shape, pooled  */
    int            n_meta;
    char         **meta;        /* key0, value0, key1, ...       */
    unsigned char *data;
    size_t         data_len;
};

/* Every dtype the format defines, so any valid file opens; only the first
 * three have tapegrad equivalents. */
static const struct { const char *name; size_t size; int dtype; } dtypes[] = {
    {"F32", 4, TG_F32}, {"F64", 8, TG_F64}, {"I32", 4, TG_I32},
    {"BOOL", 1, -1}, {"U8", 1, -1}, {"I8", 1, -1}, {"F8_E5M2", 1, -1}, {"F8_E4M3", 1, -1},
    {"I16", 2, -1}, {"U16", 2, -1}, {"F16", 2, -1}, {"BF16", 2, -1},
    {"U32", 4, -1}, {"I64", 8, -1}, {"U64", 8, -1},
};
#define N_DTYPES (int)(sizeof dtypes / sizeof dtypes[0])

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = tg_malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* "784x128" (any rank, truncated to fit). */
static const char *shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    if (ndim == 0)
        snprintf(buf, cap, "scalar");
    else if (ndim > TG_MAX_DIMS) {
        char head[TG_SHAPE_STR_MAX];
        snprintf(buf, cap, "%sx... (%d dims)", tg_shape_str(TG_MAX_DIMS, shape, head, sizeof head),
                 ndim);
    } else
        tg_shape_str(ndim, shape, buf, cap);
    return buf;
}

void tg_safetensors_close(tg_st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        tg_free((char *)f->t[i].info.name);
    for (int i = 0; i < 2 * f->n_meta; i++)
        tg_free(f->meta[i]);
    tg_free(f->t);
    tg_free(f->by_name);
    tg_free(f->dims);
    tg_free(f->meta);
    tg_free(f->data);
    tg_free(f);
}

/* ---- header validation -------------------------------------------------- */
static int cmp_offset(const void *a, const void *b)
{
    const st_tensor *x = *(st_tensor *const *)a, *y = *(st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(st_tensor *const *)a)->info.name, (*(st_tensor *const *)b)->info.name);
}

/* A non-negative JSON integer, or -1. */
static int64_t json_uint(const json_t *v)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    return (int64_t)json_integer_value(v);
}

static tg_status parse_metadata(tg_st_file *f, const char *label, json_t *obj,
                                char *err, size_t cap)
{
    if (!json_is_object(obj))
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", label);
    size_t n = json_object_size(obj);
    if (n == 0)
        return TG_OK;
    f->meta = tg_calloc(2 * n * sizeof(char *));
    if (!f->meta)
        return st_fail(err, cap, TG_ERR_NOMEM, "%s: out of memory for metadata", label);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (!json_is_string(v))
            return st_fail(err, cap, TG_ERR_FORMAT, "%s: metadata value for key '%.80s' is not a "
                        "string", label, key);
        char *k = dup_str(key), *s = dup_str(json_string_value(v));
        f->meta[2 * f->n_meta] = k;
        f->meta[2 * f->n_meta + 1] = s;
        f->n_meta++;
        if (!k || !s)
            return st_fail(err, cap, TG_ERR_NOMEM, "%s: out of memory for metadata", label);
    }
    return TG_OK;
}

/* One tensor's entry: dtype, shape, offsets, all checked. Its dims go to
 * `dims` (room for its rank, counted beforehand). */
static tg_status parse_tensor(st_tensor *t, const char *label, const char *name, json_t *obj,
                              int64_t *dims, uint64_t data_len, char *err, size_t cap)
{
    if (!json_is_object(obj))
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: entry for tensor '%.80s' is not a JSON "
                    "object", label, name);
    json_t *jd = json_object_get(obj, "dtype");
    json_t *js = json_object_get(obj, "shape");
    json_t *jo = json_object_get(obj, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo))
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: tensor '%.80s' needs a string \"dtype\", an "
                    "array \"shape\" and an array \"data_offsets\"", label, name);
    const char *dn = json_string_value(jd);
    int k = 0;
    while (k < N_DTYPES && strcmp(dtypes[k].name, dn) != 0)
        k++;
    if (k == N_DTYPES)
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: tensor '%.80s' has unknown dtype \"%.32s\"",
                    label, name, dn);
    t->info.dtype_name = dtypes[k].name;
    t->info.dtype = dtypes[k].dtype;
    t->info.elem_size = dtypes[k].size;

    /* numel and bytes stay below 2^63: checked before each multiplication. */
    uint64_t numel = 1;
    t->info.ndim = (int)json_array_size(js);
    t->info.shape = dims;
    for (int i = 0; i < t->info.ndim; i++) {
        int64_t d = json_uint(json_array_get(js, (size_t)i));
        if (d < 0)
            return st_fail(err, cap, TG_ERR_FORMAT, "%s: tensor '%.80s': shape entry %d is not a "
                        "non-negative integer", label, name, i);
        dims[i] = d;
        if (d && numel > (uint64_t)INT64_MAX / (uint64_t)d)
            return st_fail(err, cap, TG_ERR_FORMAT, "%s: tensor '%.80s': the element count of its "
                        "shape overflows", label, name);
        numel *= (uint64_t)d;
    }
    if (numel > (uint64_t)INT64_MAX / t->info.elem_size)
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: tensor '%.80s': its byte size overflows",
                    label, name);
    uint64_t bytes = numel * t->info.elem_size;
    int64_t b, e;
    if (json_array_size(jo) != 2 || (b = json_uint(json_array_get(jo, 0))) < 0 ||
        (e = json_uint(json_array_get(jo, 1))) < 0)
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: tensor '%.80s': \"data_offsets\" must be two "
                    "non-negative integers [begin, end]", label, name);
    char sh[TG_SHAPE_STR_MAX];
    if (e < b || (uint64_t)(e - b) != bytes)
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: tensor '%.80s': data_offsets [%lld, %lld] "
                    "span %lld bytes, a %s %s tensor takes %llu", label, name, (long long)b,
                    (long long)e, (long long)(e - b), dn,
                    shape_str(t->info.ndim, dims, sh, sizeof sh), (unsigned long long)bytes);
    if ((uint64_t)e > data_len)
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: tensor '%.80s': data_offsets [%lld, %lld] run "
                    "past the end of the %llu-byte data buffer", label, name, (long long)b,
                    (long long)e, (unsigned long long)data_len);
    t->info.numel = (int64_t)numel;
    t->info.nbytes = (size_t)bytes;
    t->begin = (uint64_t)b;
    t->end = (uint64_t)e;
    t->info.name = dup_str(name);
    if (!t->info.name)
        return st_fail(err, cap, TG_ERR_NOMEM, "%s: out of memory", label);
    return TG_OK;
}

/* The byte ranges, sorted by begin, must follow each other with no gap and
 * no overlap from 0 to data_len. */
static tg_status check_tiling(tg_st_file *f, const char *label, uint64_t data_len,
                              char *err, size_t cap)
{
    if (f->n == 0)
        return data_len == 0 ? TG_OK
             : st_fail(err, cap, TG_ERR_FORMAT, "%s: no tensors, yet %llu data bytes follow the "
                    "header", label, (unsigned long long)data_len);
    st_tensor **o = tg_malloc((size_t)f->n * sizeof *o);
    if (!o)
        return st_fail(err, cap, TG_ERR_NOMEM, "%s: out of memory", label);
    for (int i = 0; i < f->n; i++)
        o[i] = &f->t[i];
    qsort(o, (size_t)f->n, sizeof *o, cmp_offset);
    tg_status s = TG_OK;
    uint64_t at = 0;
    const char *prev = NULL;
    for (int i = 0; i < f->n && s == TG_OK; i++) {
        if (o[i]->begin > at)
            s = st_fail(err, cap, TG_ERR_FORMAT, "%s: hole in the data buffer: bytes [%llu, %llu) "
                     "belong to no tensor (before '%.80s')", label, (unsigned long long)at,
                     (unsigned long long)o[i]->begin, o[i]->info.name);
        else if (o[i]->begin < at)
            s = st_fail(err, cap, TG_ERR_FORMAT, "%s: tensors '%.80s' and '%.80s' overlap in the "
                     "data buffer (byte %llu)", label, prev, o[i]->info.name,
                     (unsigned long long)o[i]->begin);
        at = o[i]->end;
        prev = o[i]->info.name;
    }
    if (s == TG_OK && at != data_len)
        s = st_fail(err, cap, TG_ERR_FORMAT, "%s: %llu bytes at the end of the data buffer belong "
                 "to no tensor", label, (unsigned long long)(data_len - at));
    tg_free(o);
    return s;
}

/* Parse and validate the header into *out; data is attached by the caller. */
static tg_status parse_header(const char *label, const char *hdr, size_t hlen,
                              uint64_t data_len, tg_st_file **out, char *err, size_t cap)
{
    *out = NULL;
    if (hlen == 0 || hdr[0] != '{')
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: the header does not start with '{' (not "
                       "a safetensors file?)", label);
    json_error_t je;
    json_t *root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: the header is not valid JSON: %s (line "
                       "%d, column %d)", label, je.text, je.line, je.column);
    tg_status s = TG_OK;
    tg_st_file *f = tg_calloc(sizeof *f);
    if (!f) {
        s = st_fail(err, cap, TG_ERR_NOMEM, "%s: out of memory", label);
        goto out;
    }
    if (!json_is_object(root)) {
        s = st_fail(err, cap, TG_ERR_FORMAT, "%s: the header is not a JSON object", label);
        goto out;
    }
    /* Count tensors and dims first, so each pool is one allocation. */
    size_t n = 0, total_dims = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        n++;
        json_t *js = json_object_get(v, "shape");
        if (json_is_array(js))
            total_dims += json_array_size(js);
    }
    if (n > (size_t)INT32_MAX || total_dims > (size_t)INT32_MAX) {
        s = st_fail(err, cap, TG_ERR_FORMAT, "%s: too many tensors or dims", label);
        goto out;
    }
    if (n) {
        f->t = tg_calloc(n * sizeof *f->t);
        f->by_name = tg_malloc(n * sizeof *f->by_name);
        f->dims = total_dims ? tg_malloc(total_dims * sizeof *f->dims) : NULL;
        if (!f->t || !f->by_name || (total_dims && !f->dims)) {
            s = st_fail(err, cap, TG_ERR_NOMEM, "%s: out of memory for %zu tensors", label, n);
            goto out;
        }
    }
    size_t used = 0;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "__metadata__") == 0)
            s = parse_metadata(f, label, v, err, cap);
        else {
            s = parse_tensor(&f->t[f->n], label, key, v, f->dims ? f->dims + used : NULL,
                             data_len, err, cap);
            if (s == TG_OK) {
                used += (size_t)f->t[f->n].info.ndim;
                f->by_name[f->n] = &f->t[f->n];
                f->n++;
            }
        }
        if (s != TG_OK)
            goto out;
    }
    s = check_tiling(f, label, data_len, err, cap);
    if (s == TG_OK && f->n)
        qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
out:
    json_decref(root);
    if (s != TG_OK)
        tg_safetensors_close(f);
    else
        *out = f;
    return s;
}

/* Take ownership of the data buffer and point each tensor at its bytes. */
static void attach_data(tg_st_file *f, unsigned char *data, size_t len)
{
    f->data = data;
    f->data_len = len;
    for (int i = 0; i < f->n; i++)
        f->t[i].info.data = data ? data + f->t[i].begin : NULL;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The 8-byte length prefix against the file size and the cap. */
static tg_status check_header_len(const char *label, uint64_t hlen, uint64_t size,
                                  char *err, size_t cap)
{
    if (hlen > TG_ST_MAX_HEADER)
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: header length %llu exceeds the limit of "
                       "%u bytes", label, (unsigned long long)hlen, TG_ST_MAX_HEADER);
    if (hlen > size - 8)
        return st_fail(err, cap, TG_ERR_FORMAT, "%s: header length %llu runs past the end of "
                       "the file (%llu bytes)", label, (unsigned long long)hlen,
                       (unsigned long long)size);
    return TG_OK;
}

/* ---- opening ----------------------------------------------------------- */
tg_st_file *tg_safetensors_open_memory(const void *buf, size_t len, const char *name,
                                       char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    const char *label = name ? name : "<memory>";
    const unsigned char *p = buf;
    if (!p && len) {
        st_fail(err, err_cap, TG_ERR_ARG, "%s: buffer is NULL", label);
        return NULL;
    }
    if (len < 8) {
        st_fail(err, err_cap, TG_ERR_FORMAT, "%s: truncated: %zu bytes, a safetensors file "
                "starts with an 8-byte header length", label, len);
        return NULL;
    }
    uint64_t hlen = le64(p);
    tg_st_file *f = NULL;
    if (check_header_len(label, hlen, len, err, err_cap) != TG_OK ||
        parse_header(label, (const char *)p + 8, (size_t)hlen, len - 8 - hlen, &f, err,
                     err_cap) != TG_OK)
        return NULL;
    size_t dlen = len - 8 - (size_t)hlen;
    unsigned char *data = dlen ? tg_malloc(dlen) : NULL;
    if (dlen && !data) {
        tg_safetensors_close(f);
        st_fail(err, err_cap, TG_ERR_NOMEM, "%s: out of memory for %zu data bytes", label, dlen);
        return NULL;
    }
    if (dlen)
        memcpy(data, p + 8 + hlen, dlen);
    attach_data(f, data, dlen);
    return f;
}

static tg_status open_file(const char *path, tg_st_file **out, char *err, size_t cap)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return st_fail(err, cap, TG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    tg_status s = TG_OK;
    tg_st_file *f = NULL;
    char *hdr = NULL;
    unsigned char *data = NULL;
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        s = st_fail(err, cap, TG_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        s = st_fail(err, cap, TG_ERR_IO, "%s: cannot read: %s", path,
                    S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    unsigned char h8[8];
    if (size < 8) {
        s = st_fail(err, cap, TG_ERR_FORMAT, "%s: truncated: %llu bytes, a safetensors file "
                    "starts with an 8-byte header length", path, (unsigned long long)size);
        goto out;
    }
    if (fread(h8, 1, 8, fp) != 8)
        goto read_error;
    uint64_t hlen = le64(h8);
    s = check_header_len(path, hlen, size, err, cap);
    if (s != TG_OK)
        goto out;
    uint64_t dlen = size - 8 - hlen;
    if (dlen > SIZE_MAX) {
        s = st_fail(err, cap, TG_ERR_NOMEM, "%s: %llu data bytes do not fit in memory", path,
                    (unsigned long long)dlen);
        goto out;
    }
    hdr = tg_malloc(hlen ? (size_t)hlen : 1);
    if (!hdr) {
        s = st_fail(err, cap, TG_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path,
                    (unsigned long long)hlen);
        goto out;
    }
    if (fread(hdr, 1, (size_t)hlen, fp) != (size_t)hlen)
        goto read_error;
    s = parse_header(path, hdr, (size_t)hlen, dlen, &f, err, cap);
    if (s != TG_OK)
        goto out;
    /* Only now, with the header valid, is the data buffer allocated: its size
     * is what the file on disk actually holds. */
    data = dlen ? tg_malloc((size_t)dlen) : NULL;
    if (dlen && !data) {
        s = st_fail(err, cap, TG_ERR_NOMEM, "%s: out of memory for %llu data bytes", path,
                    (unsigned long long)dlen);
        goto out;
    }
    if (dlen && fread(data, 1, (size_t)dlen, fp) != (size_t)dlen)
        goto read_error;
    attach_data(f, data, (size_t)dlen);
    *out = f;
    f = NULL;
    data = NULL;
    goto out;

read_error:
    if (ferror(fp))
        s = st_fail(err, cap, TG_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    else
        s = st_fail(err, cap, TG_ERR_IO, "%s: read failed: the file shrank while being read",
                    path);
out:
    tg_safetensors_close(f);
    tg_free(hdr);
    tg_free(data);
    fclose(fp);
    return s;
}

tg_st_file *tg_safetensors_open(const char *path, char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (!path) {
        st_fail(err, err_cap, TG_ERR_ARG, "tg_safetensors_open: path is NULL");
        return NULL;
    }
    tg_st_file *f;
    open_file(path, &f, err, err_cap);
    return f;
}

/* ---- queries ----------------------------------------------------------- */
int tg_safetensors_count(const tg_st_file *f)
{
    return f ? f->n : 0;
}

tg_status tg_safetensors_get(const tg_st_file *f, int i, tg_st_info *info)
{
    if (!f || i < 0 || i >= f->n)
        return TG_ERR_ARG;
    if (info)
        *info = f->t[i].info;
    return TG_OK;
}

static const st_tensor *find(const tg_st_file *f, const char *name)
{
    if (!f || !name || f->n == 0)
        return NULL;
    st_tensor key;
    key.info.name = name;
    const st_tensor *kp = &key;
    st_tensor *const *hit = bsearch(&kp, f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
    return hit ? *hit : NULL;
}

tg_status tg_safetensors_find(const tg_st_file *f, const char *name, tg_st_info *info)
{
    const st_tensor *t = find(f, name);
    if (!t)
        return TG_ERR_ARG;
    if (info)
        *info = t->info;
    return TG_OK;
}

const char *tg_safetensors_meta(const tg_st_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0)
            return f->meta[2 * i + 1];
    return NULL;
}

int tg_safetensors_meta_count(const tg_st_file *f)
{
    return f ? f->n_meta : 0;
}

tg_status tg_safetensors_meta_get(const tg_st_file *f, int i, const char **key,
                                  const char **value)
{
    if (!f || i < 0 || i >= f->n_meta)
        return TG_ERR_ARG;
    if (key)
        *key = f->meta[2 * i];
    if (value)
        *value = f->meta[2 * i + 1];
    return TG_OK;
}

/* ---- checkpoints ------------------------------------------------------- */
static tg_status check_targets(const tg_st_entry *t, int n, char *err, size_t cap)
{
    if (n < 0 || (n > 0 && !t))
        return st_fail(err, cap, TG_ERR_ARG, "tg_safetensors_load_into: bad target list");
    for (int i = 0; i < n; i++) {
        if (!t[i].name || !st_dtype_name(t[i].dtype) || t[i].ndim < 0 ||
            (t[i].ndim > 0 && !t[i].shape) ||
            st_checked_numel(t[i].ndim, t[i].shape, tg_dtype_size(t[i].dtype)) < 0)
            return st_fail(err, cap, TG_ERR_ARG, "tg_safetensors_load_into: target %d has no name, "
                        "an invalid dtype or a bad shape", i);
        if (st_checked_numel(t[i].ndim, t[i].shape, 0) != 0 && !t[i].data)
            return st_fail(err, cap, TG_ERR_ARG, "tg_safetensors_load_into: target '%.80s' has no "
                        "data buffer", t[i].name);
        for (int j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0)
                return st_fail(err, cap, TG_ERR_ARG, "tg_safetensors_load_into: tensor name "
                            "'%.80s' appears twice among the targets", t[i].name);
    }
    return TG_OK;
}

tg_status tg_safetensors_load_into(const char *path, const tg_st_entry *targets, int n,
                                   unsigned flags, char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    tg_status s = check_targets(targets, n, err, err_cap);
    if (s != TG_OK)
        return s;
    if (!path)
        return st_fail(err, err_cap, TG_ERR_ARG, "tg_safetensors_load_into: path is NULL");
    tg_st_file *f;
    s = open_file(path, &f, err, err_cap);
    if (s != TG_OK)
        return s;

    /* Check everything first ... */
    char a[TG_SHAPE_STR_MAX], b[TG_SHAPE_STR_MAX];
    for (int i = 0; i < n && s == TG_OK; i++) {
        const tg_st_entry *t = &targets[i];
        const st_tensor *ft = find(f, t->name);
        if (!ft)
            s = st_fail(err, err_cap, TG_ERR_SHAPE, "checkpoint %s: no tensor '%.80s' (the model "
                     "has it, the file does not)", path, t->name);
        else if (ft->info.dtype != (int)t->dtype)
            s = st_fail(err, err_cap, TG_ERR_SHAPE, "checkpoint %s: tensor '%.80s' is %s, model "
                     "expects %s", path, t->name, ft->info.dtype_name, st_dtype_name(t->dtype));
        else if (!tg_shape_equal(ft->info.ndim, ft->info.shape, t->ndim, t->shape))
            s = st_fail(err, err_cap, TG_ERR_SHAPE, "checkpoint %s: tensor '%.80s' has shape %s, "
                     "model expects %s", path, t->name,
                     shape_str(ft->info.ndim, ft->info.shape, a, sizeof a),
                     shape_str(t->ndim, t->shape, b, sizeof b));
    }
    if (s == TG_OK && (flags & TG_ST_NO_EXTRA) && f->n > n) {
        /* Every target was found and names are unique: some file tensor is
         * not a target. Name it. */
        for (int i = 0; i < f->n; i++) {
            int j = 0;
            while (j < n && strcmp(f->t[i].info.name, targets[j].name) != 0)
                j++;
            if (j == n) {
                s = st_fail(err, err_cap, TG_ERR_SHAPE, "checkpoint %s: holds tensor '%.80s' that "
                         "the model does not have", path, f->t[i].info.name);
                break;
            }
        }
    }
    /* ... then copy. */
    for (int i = 0; i < n && s == TG_OK; i++) {
        const st_tensor *ft = find(f, targets[i].name);
        if (ft->info.nbytes)
            memcpy(targets[i].data, ft->info.data, ft->info.nbytes);
    }
    tg_safetensors_close(f);
    return s;
}
