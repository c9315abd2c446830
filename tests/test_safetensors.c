/* test_safetensors.c — checkpoints: round trip of every dtype with metadata,
 * byte-exact determinism and the exact header bytes, all-or-nothing
 * load_into, a catalogue of malformed files (each a clear error naming the
 * file), failed saves that leave the previous file intact.
 * With "--python PYTHON SCRIPT" it runs the cross-check against the
 * independent reader/writer tests/safetensors_reader.py instead. */
#include "tg_checkpoint.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];
static char pathbuf[64][256];
static int  pathi;

static const char *tpath(const char *name)
{
    char *p = pathbuf[pathi++ % 64];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Temporaries a save of `path` left next to it ("<name>.tmp.<pid>.<n>"). */
static int temps_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[256];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    size_t bl = strlen(slash + 1);
    int count = 0;
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d)) != NULL; )
        count += strncmp(de->d_name, slash + 1, bl) == 0 && strncmp(de->d_name + bl, ".tmp.", 5) == 0;
    if (d)
        closedir(d);
    return count;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    *n = 0;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *b = malloc(1 << 16);
    *n = fread(b, 1, 1 << 16, f);
    fclose(f);
    return b;
}


/* ---- the tensors every test saves (same formulas in safetensors_reader.py) */
static float   w[12];        /* dense1.weight F32 3x4: (i - 5) / 4     */
static double  bias[4];      /* dense1.bias   F64 4:   1 / (i + 1)     */
static int32_t labels[5];    /* labels        I32 5:   i*i - 7         */
static double  step = 3.5;   /* step          F64 scalar               */
static float   empty[1];     /* empty         F32 0x3                  */
static const int64_t sh_w[] = {3, 4}, sh_b[] = {4}, sh_l[] = {5}, sh_e[] = {0, 3};

static void fill(void)
{
    for (int i = 0; i < 12; i++) w[i] = (float)(i - 5) * 0.25f;
    for (int i = 0; i < 4; i++) bias[i] = 1.0 / (i + 1.0);
    for (int i = 0; i < 5; i++) labels[i] = i * i - 7;
}

static const tg_st_entry entries[] = {
    { "dense1.weight", TG_F32, 2, sh_w, w },
    { "dense1.bias",   TG_F64, 1, sh_b, bias },
    { "labels",        TG_I32, 1, sh_l, labels },
    { "step",          TG_F64, 0, NULL, &step },
    { "empty",         TG_F32, 2, sh_e, empty },
};
static const tg_st_meta meta[] = {
    { "epoch", "7" },
    { "note",  "tapegrad \xe2\x9c\x93 \"quoted\"\n" },
};

static tg_status save_std(const char *path, char *err, size_t cap)
{
    return tg_safetensors_save(path, entries, 5, meta, 2, err, cap);
}

/* ---- round trip, determinism, layout ------------------------------------ */
static void test_round_trip(void)
{
    char err[512];
    const char *p = tpath("model.safetensors");
    TEST_CHECK_MSG(save_std(p, err, sizeof err) == TG_OK, "%s", err);
    tg_st_file *f = tg_safetensors_open(p, err, sizeof err);
    TEST_CHECK_MSG(f != NULL, "%s", err);
    if (!f)
        return;
    TEST_CHECK(tg_safetensors_count(f) == 5);
    tg_st_info in;
    for (int i = 0; i < 5; i++) {   /* header order is the order given */
        TEST_CHECK(tg_safetensors_get(f, i, &in) == TG_OK && strcmp(in.name, entries[i].name) == 0);
        TEST_CHECK(in.dtype == (int)entries[i].dtype && in.ndim == entries[i].ndim);
    }
    TEST_CHECK(tg_safetensors_get(f, 5, &in) == TG_ERR_ARG);
    TEST_CHECK(tg_safetensors_find(f, "dense1.weight", &in) == TG_OK);
    TEST_CHECK(strcmp(in.dtype_name, "F32") == 0 && in.elem_size == 4 && in.numel == 12 &&
               in.nbytes == 48 && in.shape[0] == 3 && in.shape[1] == 4);
    TEST_CHECK(memcmp(in.data, w, sizeof w) == 0);
    TEST_CHECK(((uintptr_t)in.data % 8) == 0);
    TEST_CHECK(tg_safetensors_find(f, "dense1.bias", &in) == TG_OK && in.dtype == TG_F64 &&
               memcmp(in.data, bias, sizeof bias) == 0);
    TEST_CHECK(tg_safetensors_find(f, "labels", &in) == TG_OK && in.dtype == TG_I32 &&
               memcmp(in.data, labels, sizeof labels) == 0);
    TEST_CHECK(tg_safetensors_find(f, "step", &in) == TG_OK && in.ndim == 0 && in.numel == 1 &&
               memcmp(in.data, &step, 8) == 0);
    TEST_CHECK(tg_safetensors_find(f, "empty", &in) == TG_OK && in.numel == 0 &&
               in.nbytes == 0 && in.shape[0] == 0 && in.shape[1] == 3);
    TEST_CHECK(tg_safetensors_find(f, "nope", &in) == TG_ERR_ARG);
    TEST_CHECK(strcmp(tg_safetensors_meta(f, "epoch"), "7") == 0);
    TEST_CHECK(strcmp(tg_safetensors_meta(f, "note"), meta[1].value) == 0);
    TEST_CHECK(tg_safetensors_meta(f, "missing") == NULL);
    const char *k, *v;
    TEST_CHECK(tg_safetensors_meta_count(f) == 2 && tg_safetensors_meta_get(f, 1, &k, &v) == TG_OK &&
               strcmp(k, "note") == 0);
    tg_safetensors_close(f);

    /* Two saves, same bytes; the header is exactly this, padded to 8. */
    const char *p2 = tpath("model2.safetensors");
    TEST_CHECK(save_std(p2, err, sizeof err) == TG_OK);
    size_t n1, n2;
    unsigned char *b1 = slurp(p, &n1), *b2 = slurp(p2, &n2);
    TEST_CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
    const char *hdr =
        "{\"__metadata__\":{\"epoch\":\"7\",\"note\":\"tapegrad \xe2\x9c\x93 \\\"quoted\\\"\\n\"},"
        "\"dense1.weight\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
        "\"dense1.bias\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[48,80]},"
        "\"labels\":{\"dtype\":\"I32\",\"shape\":[5],\"data_offsets\":[80,100]},"
        "\"step\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[100,108]},"
        "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[108,108]}}";
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    uint64_t n = 0;
    for (int i = 7; b1 && i >= 0; i--)
        n = n << 8 | b1[i];
    TEST_CHECK_MSG(n == padded && n1 == 8 + padded + 108, "header %llu, file %zu",
                   (unsigned long long)n, n1);
    TEST_CHECK(b1 && n1 >= 8 + padded && memcmp(b1 + 8, hdr, hl) == 0);
    for (size_t i = hl; b1 && i < padded && 8 + i < n1; i++)
        TEST_CHECK(b1[8 + i] == ' ');
    TEST_CHECK(b1 && n1 == 8 + padded + 108 && memcmp(b1 + 8 + padded, w, 48) == 0);
    /* The same bytes open from memory (a copy: the buffer may go away). */
    f = b1 ? tg_safetensors_open_memory(b1, n1, "mem", err, sizeof err) : NULL;
    free(b1);
    TEST_CHECK(f && tg_safetensors_count(f) == 5 && tg_safetensors_find(f, "labels", &in) == TG_OK &&
               memcmp(in.data, labels, sizeof labels) == 0);
    tg_safetensors_close(f);
    free(b2);

    /* No tensors at all is a valid file too. */
    const char *p3 = tpath("nothing.safetensors");
    TEST_CHECK(tg_safetensors_save(p3, NULL, 0, NULL, 0, err, sizeof err) == TG_OK);
    f = tg_safetensors_open(p3, err, sizeof err);
    TEST_CHECK(f && tg_safetensors_count(f) == 0 && tg_safetensors_meta_count(f) == 0);
    tg_safetensors_close(f);
    tg_safetensors_close(NULL);
}

/* ---- load_into ---------------------------------------------------------- */
static void test_load_into(void)
{
    char err[512];
    const char *p = tpath("ckpt.safetensors");
    TEST_CHECK(save_std(p, err, sizeof err) == TG_OK);

    float w2[12];
    double b2[4];
    int32_t l2[5];
    double s2;
    memset(w2, 0x11, sizeof w2); memset(b2, 0x22, sizeof b2);
    memset(l2, 0x33, sizeof l2); memset(&s2, 0x44, sizeof s2);
    float w0[12]; double b0[4]; int32_t l0[5];
    memcpy(w0, w2, sizeof w0); memcpy(b0, b2, sizeof b0); memcpy(l0, l2, sizeof l0);
#define UNCHANGED() (memcmp(w0, w2, sizeof w0) == 0 && memcmp(b0, b2, sizeof b0) == 0 && \
                     memcmp(l0, l2, sizeof l0) == 0)

    /* The good target comes first in each list: a later mismatch must keep
     * it from being written. */
    tg_st_entry t[4] = {
        { "dense1.weight", TG_F32, 2, sh_w, w2 },
        { "dense1.bias",   TG_F64, 1, sh_b, b2 },
        { "labels",        TG_I32, 1, sh_l, l2 },
        { "step",          TG_F64, 0, NULL, &s2 },
    };
    t[2].name = "labelz";
    TEST_CHECK(tg_safetensors_load_into(p, t, 3, 0, err, sizeof err) == TG_ERR_SHAPE);
    TEST_CHECK_MSG(strstr(err, p) && strstr(err, "'labelz'"), "%s", err);
    TEST_CHECK(UNCHANGED());
    t[2].name = "labels";
    const int64_t wrong[] = {4, 3};
    t[0].shape = wrong;
    t[2].shape = (const int64_t[]){6};
    TEST_CHECK(tg_safetensors_load_into(p, t, 3, 0, err, sizeof err) == TG_ERR_SHAPE);
    TEST_CHECK_MSG(strstr(err, "checkpoint ") && strstr(err, p) &&
                   strstr(err, "tensor 'dense1.weight' has shape 3x4, model expects 4x3"),
                   "%s", err);
    TEST_CHECK(UNCHANGED());
    t[0].shape = sh_w;
    TEST_CHECK(tg_safetensors_load_into(p, t, 3, 0, err, sizeof err) == TG_ERR_SHAPE);
    TEST_CHECK_MSG(strstr(err, "tensor 'labels' has shape 5, model expects 6"), "%s", err);
    TEST_CHECK(UNCHANGED());
    t[2].shape = sh_l;
    t[1].dtype = TG_F32;
    TEST_CHECK(tg_safetensors_load_into(p, t, 3, 0, err, sizeof err) == TG_ERR_SHAPE);
    TEST_CHECK_MSG(strstr(err, "tensor 'dense1.bias' is F64, model expects F32"), "%s", err);
    TEST_CHECK(UNCHANGED());
    t[1].dtype = TG_F64;
    /* The file holds "step" and "empty" too: refused under TG_ST_NO_EXTRA. */
    TEST_CHECK(tg_safetensors_load_into(p, t, 4, TG_ST_NO_EXTRA, err, sizeof err) == TG_ERR_SHAPE);
    TEST_CHECK_MSG(strstr(err, "holds tensor 'empty' that the model does not have"), "%s", err);
    TEST_CHECK(UNCHANGED());
    /* Duplicate targets, a missing file, a malformed file: nothing written. */
    t[1].name = "dense1.weight";
    TEST_CHECK(tg_safetensors_load_into(p, t, 3, 0, err, sizeof err) == TG_ERR_ARG);
    t[1].name = "dense1.bias";
    TEST_CHECK(tg_safetensors_load_into(tpath("missing.st"), t, 3, 0, err, sizeof err) == TG_ERR_IO);
    TEST_CHECK(strstr(err, "No such file"));
    TEST_CHECK(UNCHANGED());

    /* All present and matching: everything copied. */
    TEST_CHECK_MSG(tg_safetensors_load_into(p, t, 4, 0, err, sizeof err) == TG_OK, "%s", err);
    TEST_CHECK(memcmp(w2, w, sizeof w) == 0 && memcmp(b2, bias, sizeof bias) == 0 &&
               memcmp(l2, labels, sizeof labels) == 0 && s2 == step);
    tg_st_entry all[5];
    memcpy(all, t, sizeof t);
    all[4] = (tg_st_entry){ "empty", TG_F32, 2, sh_e, NULL };
    TEST_CHECK(tg_safetensors_load_into(p, all, 5, TG_ST_NO_EXTRA, err, sizeof err) == TG_OK);

    /* tg_st_entry_of describes a tensor header. */
    tg_tensor *tt = tg_tensor_create(TG_F32, 2, sh_w, NULL);
    TEST_CHECK(tt != NULL);
    if (tt) {
        tg_st_entry e = tg_st_entry_of("dense1.weight", tt);
        TEST_CHECK(tg_safetensors_load_into(p, &e, 1, 0, err, sizeof err) == TG_OK);
        TEST_CHECK(tg_tensor_get(tt, 11) == 1.5);
        tg_tensor_destroy(tt);
    }
#undef UNCHANGED
}

/* ---- malformed files ---------------------------------------------------- */
/* Write an 8-byte length (hlen, or the header's length when hlen is AUTO),
 * the header text and `dlen` data bytes 0, 1, 2, ... */
#define AUTO UINT64_MAX
static const char *write_st(const char *name, uint64_t hlen, const char *hdr, size_t dlen)
{
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    uint64_t n = hlen == AUTO ? strlen(hdr) : hlen;
    unsigned char l8[8];
    for (int i = 0; i < 8; i++)
        l8[i] = (unsigned char)(n >> (8 * i));
    fwrite(l8, 1, 8, f);
    fwrite(hdr, 1, strlen(hdr), f);
    for (size_t i = 0; i < dlen; i++)
        fputc((int)i, f);
    fclose(f);
    return p;
}

static void expect_bad(const char *path, const char *frag1, const char *frag2)
{
    char err[512];
    tg_st_file *f = tg_safetensors_open(path, err, sizeof err);
    if (getenv("TG_TEST_VERBOSE"))
        printf("  %s\n", err);
    TEST_CHECK_MSG(f == NULL, "%s opened", path);
    tg_safetensors_close(f);
    TEST_CHECK_MSG(strstr(err, path) != NULL, "message does not name the file: %s", err);
    TEST_CHECK_MSG(!frag1 || strstr(err, frag1), "'%s' not in: %s", frag1, err);
    TEST_CHECK_MSG(!frag2 || strstr(err, frag2), "'%s' not in: %s", frag2, err);
    /* The same bytes from memory fail the same way. */
    size_t n;
    unsigned char *b = slurp(path, &n);
    if (b) {
        f = tg_safetensors_open_memory(b, n, path, err, sizeof err);
        TEST_CHECK(f == NULL && (!frag1 || strstr(err, frag1)));
        tg_safetensors_close(f);
        free(b);
    }
}

#define T(name, dtype, shape, b, e) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_bad_files(void)
{
    char err[512];
    const char *good = tpath("good.safetensors");
    TEST_CHECK(save_std(good, err, sizeof err) == TG_OK);
    size_t n;
    unsigned char *b = slurp(good, &n);

    /* Truncated: in the data, in the header, inside the length itself. */
    FILE *f = fopen(tpath("cut.st"), "wb");
    fwrite(b, 1, n - 10, f);
    fclose(f);
    expect_bad(tpath("cut.st"), "run past the end of the 98-byte data buffer", NULL);
    f = fopen(tpath("cut2.st"), "wb");
    fwrite(b, 1, 40, f);
    fclose(f);
    expect_bad(tpath("cut2.st"), "runs past the end of the file (40 bytes)", NULL);
    f = fopen(tpath("cut3.st"), "wb");
    fwrite(b, 1, 5, f);
    fclose(f);
    expect_bad(tpath("cut3.st"), "truncated: 5 bytes", NULL);
    expect_bad(write_st("empty.st", 0, "", 0), "does not start with '{'", NULL);
    free(b);
    f = fopen(tpath("zero.st"), "wb");
    fclose(f);
    expect_bad(tpath("zero.st"), "truncated: 0 bytes", NULL);

    expect_bad(write_st("long.st", 1000, "{}", 0), "header length 1000 runs past the end", NULL);
    expect_bad(write_st("huge.st", 200000000, "{}", 0), "exceeds the limit of 100000000", NULL);
    expect_bad(write_st("huge2.st", UINT64_MAX - 1, "{}", 0), "exceeds the limit", NULL);
    expect_bad(write_st("json.st", AUTO, "{\"a\": [1, 2,,]}", 0), "not valid JSON", NULL);
    expect_bad(write_st("json2.st", AUTO, "[1, 2]", 0), "does not start with '{'", NULL);
    expect_bad(write_st("json3.st", AUTO, "{} {}", 0), "not valid JSON", NULL);
    expect_bad(write_st("dup.st", AUTO, "{" T("a", "F32", "[1]", 0, 4) "," T("a", "F32", "[1]", 4, 8)
                        "}", 8), "duplicate", NULL);
    expect_bad(write_st("dupmeta.st", AUTO, "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0),
               "duplicate", NULL);
    expect_bad(write_st("hole.st", AUTO, "{" T("a", "F32", "[1]", 0, 4) "," T("b", "F32", "[1]", 8, 12)
                        "}", 12), "hole in the data buffer: bytes [4, 8)", "before 'b'");
    expect_bad(write_st("hole0.st", AUTO, "{" T("a", "F32", "[1]", 4, 8) "}", 8),
               "bytes [0, 4) belong to no tensor", NULL);
    expect_bad(write_st("tail.st", AUTO, "{" T("a", "F32", "[1]", 0, 4) "}", 12),
               "8 bytes at the end of the data buffer belong to no tensor", NULL);
    expect_bad(write_st("none.st", AUTO, "{}", 3), "no tensors, yet 3 data bytes", NULL);
    expect_bad(write_st("overlap.st", AUTO, "{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 4, 12)
                        "}", 12), "tensors 'a' and 'b' overlap", NULL);
    expect_bad(write_st("same.st", AUTO, "{" T("a", "F32", "[1]", 0, 4) "," T("b", "F32", "[1]", 0, 4)
                        "}", 4), "overlap", NULL);
    expect_bad(write_st("range.st", AUTO, "{" T("a", "F32", "[4]", 0, 16) "}", 8),
               "data_offsets [0, 16] run past the end of the 8-byte data buffer", NULL);
    expect_bad(write_st("span.st", AUTO, "{" T("a", "F64", "[2,2]", 0, 16) "}", 16),
               "span 16 bytes, a F64 2x2 tensor takes 32", NULL);
    expect_bad(write_st("back.st", AUTO, "{" T("a", "F32", "[1]", 8, 4) "}", 8), "span -4 bytes", NULL);
    expect_bad(write_st("dtype.st", AUTO, "{" T("a", "F17", "[1]", 0, 4) "}", 4),
               "tensor 'a' has unknown dtype \"F17\"", NULL);
    expect_bad(write_st("neg.st", AUTO, "{" T("a", "F32", "[2,-1]", 0, 4) "}", 4),
               "shape entry 1 is not a non-negative integer", NULL);
    expect_bad(write_st("realdim.st", AUTO, "{" T("a", "F32", "[1.0]", 0, 4) "}", 4),
               "shape entry 0", NULL);
    expect_bad(write_st("ovf.st", AUTO, "{" T("a", "F32", "[4294967296,4294967296]", 0, 4) "}", 4),
               "overflows", NULL);
    expect_bad(write_st("ovf2.st", AUTO, "{" T("a", "F64", "[2305843009213693952]", 0, 4) "}", 4),
               "byte size overflows", NULL);
    expect_bad(write_st("bigint.st", AUTO, "{" T("a", "F32", "[1]", 0, 99999999999999999999) "}", 4),
               "not valid JSON", NULL);
    expect_bad(write_st("offs.st", AUTO, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                        "\"data_offsets\":[0,4,8]}}", 4), "two non-negative integers", NULL);
    expect_bad(write_st("noshape.st", AUTO, "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
               "needs a string \"dtype\", an array \"shape\"", NULL);
    expect_bad(write_st("notobj.st", AUTO, "{\"a\":7}", 0), "entry for tensor 'a' is not a JSON object",
               NULL);
    expect_bad(write_st("meta.st", AUTO, "{\"__metadata__\":{\"epoch\":7}}", 0),
               "metadata value for key 'epoch' is not a string", NULL);
    expect_bad(write_st("meta2.st", AUTO, "{\"__metadata__\":[\"x\"]}", 0),
               "\"__metadata__\" is not a JSON object", NULL);
    expect_bad(write_st("utf8.st", AUTO, "{\"\xff\":{}}", 0), "not valid JSON", NULL);
    expect_bad(write_st("nul.st", AUTO, "{\"a\\u0000b\":{}}", 0), "not valid JSON", NULL);
    expect_bad(tpath("no-such-file.st"), "cannot open: No such file or directory", NULL);
    expect_bad(tmpdir, "Is a directory", NULL);

    /* Valid corner cases: trailing spaces, a zero-size tensor at the end,
     * other dtypes (opened, with no tapegrad equivalent), unknown fields. */
    const char *ok = write_st("ok.st", AUTO, "{" T("z", "I32", "[0]", 8, 8) ","
                              "\"h\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8],"
                              "\"extra\":1}}     ", 8);
    tg_st_file *sf = tg_safetensors_open(ok, err, sizeof err);
    TEST_CHECK_MSG(sf != NULL, "%s", err);
    tg_st_info in;
    TEST_CHECK(sf && tg_safetensors_find(sf, "h", &in) == TG_OK && in.dtype == -1 &&
               strcmp(in.dtype_name, "BF16") == 0 && in.elem_size == 2 && in.numel == 4);
    TEST_CHECK(sf && tg_safetensors_get(sf, 0, &in) == TG_OK && strcmp(in.name, "z") == 0);
    tg_safetensors_close(sf);

    TEST_CHECK(tg_safetensors_open(NULL, err, sizeof err) == NULL);
    TEST_CHECK(tg_safetensors_open_memory(NULL, 5, "m", err, sizeof err) == NULL);
    TEST_CHECK(tg_safetensors_open(tpath("cut.st"), NULL, 0) == NULL);
}
#undef T

/* ---- failed saves ------------------------------------------------------- */
static void test_failed_saves(void)
{
    char err[512];
    const char *p = tpath("keep.safetensors");
    TEST_CHECK(save_std(p, err, sizeof err) == TG_OK);
    size_t n0, n1;
    unsigned char *before = slurp(p, &n0);
    static float big[4096];
    const tg_st_entry bigent = { "big", TG_F32, 1, (const int64_t[]){4096}, big };

    /* A directory that does not exist. */
    const char *nodir = tpath("no/such/dir/m.safetensors");
    TEST_CHECK(save_std(nodir, err, sizeof err) == TG_ERR_IO);
    TEST_CHECK_MSG(strstr(err, nodir) && strstr(err, "No such file or directory"), "%s", err);

    /* The target is a directory: the rename fails, the temp file goes. */
    const char *dir = tpath("adir");
    TEST_CHECK(mkdir(dir, 0755) == 0);
    TEST_CHECK(save_std(dir, err, sizeof err) == TG_ERR_IO);
    TEST_CHECK_MSG(strstr(err, dir) && strstr(err, "Is a directory"), "%s", err);
    TEST_CHECK(temps_of(dir) == 0);

    /* The temporary file cannot be created (no file descriptor left): the
     * previous file is intact. */
    struct rlimit nofile, lim1;
    getrlimit(RLIMIT_NOFILE, &nofile);
    int probe = dup(0);
    lim1 = nofile;
    lim1.rlim_cur = (rlim_t)probe;           /* the lowest free descriptor */
    close(probe);
    TEST_CHECK(setrlimit(RLIMIT_NOFILE, &lim1) == 0);
    tg_status s0 = tg_safetensors_save(p, &bigent, 1, NULL, 0, err, sizeof err);
    setrlimit(RLIMIT_NOFILE, &nofile);
    TEST_CHECK(s0 == TG_ERR_IO);
    TEST_CHECK_MSG(strstr(err, p) && strstr(err, "cannot create temporary file") &&
                   strstr(err, strerror(EMFILE)), "%s", err);
    TEST_CHECK(temps_of(p) == 0);
    unsigned char *after = slurp(p, &n1);
    TEST_CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);

    /* The disk "fills up" mid-write (a file size limit; works as root):
     * the message says why, the previous file is intact, no temp file left. */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    TEST_CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    tg_status s = tg_safetensors_save(p, &bigent, 1, NULL, 0, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    TEST_CHECK(s == TG_ERR_IO);
    TEST_CHECK_MSG(strstr(err, p) && strstr(err, strerror(EFBIG)) &&
                   strstr(err, "previous file is untouched"), "%s", err);
    TEST_CHECK(temps_of(p) == 0);
    after = slurp(p, &n1);
    TEST_CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);

    /* Bad entries are refused before any file is touched. */
    const char *q = tpath("never.safetensors");
    tg_st_entry e[2] = { entries[0], entries[1] };
    e[1].name = e[0].name;
    TEST_CHECK(tg_safetensors_save(q, e, 2, NULL, 0, err, sizeof err) == TG_ERR_ARG);
    TEST_CHECK(strstr(err, "tensor name 'dense1.weight' appears twice"));
    e[1].name = "__metadata__";
    TEST_CHECK(tg_safetensors_save(q, e, 2, NULL, 0, err, sizeof err) == TG_ERR_ARG);
    e[1].name = "bad\xc3(utf8";
    TEST_CHECK(tg_safetensors_save(q, e, 2, NULL, 0, err, sizeof err) == TG_ERR_ARG);
    e[1].name = "";
    TEST_CHECK(tg_safetensors_save(q, e, 2, NULL, 0, err, sizeof err) == TG_ERR_ARG);
    e[1] = entries[1];
    e[1].shape = (const int64_t[]){-4};
    TEST_CHECK(tg_safetensors_save(q, e, 2, NULL, 0, err, sizeof err) == TG_ERR_ARG);
    TEST_CHECK(strstr(err, "negative or overflowing shape"));
    e[1] = entries[1];
    e[1].dtype = (tg_dtype)9;
    TEST_CHECK(tg_safetensors_save(q, e, 2, NULL, 0, err, sizeof err) == TG_ERR_ARG);
    const tg_st_meta dm[2] = { {"k", "1"}, {"k", "2"} };
    TEST_CHECK(tg_safetensors_save(q, entries, 1, dm, 2, err, sizeof err) == TG_ERR_ARG);
    TEST_CHECK(strstr(err, "metadata key 'k' appears twice"));
    TEST_CHECK(tg_safetensors_save(q, entries, -1, NULL, 0, err, sizeof err) == TG_ERR_ARG);
    TEST_CHECK(!file_exists(q));

    /* Names that need escaping survive the round trip. */
    const tg_st_entry odd = { "a\"b\\c\td\x01", TG_F64, 0, NULL, &step };
    TEST_CHECK(tg_safetensors_save(q, &odd, 1, NULL, 0, err, sizeof err) == TG_OK);
    tg_st_file *f = tg_safetensors_open(q, err, sizeof err);
    TEST_CHECK_MSG(f && tg_safetensors_find(f, odd.name, NULL) == TG_OK, "%s", err);
    tg_safetensors_close(f);
    free(before);
}

/* ---- the cross-check with an independent implementation ---------------- */
static int run(const char *python, const char *script, const char *cmd, const char *file)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execlp(python, python, script, cmd, file, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int cross_check(const char *python, const char *script)
{
    char err[512];
    const char *mine = tpath("from_tapegrad.safetensors");
    TEST_CHECK(save_std(mine, err, sizeof err) == TG_OK);
    int rc = run(python, script, "verify", mine);
    if (rc == 127 || rc == 3) {
        fprintf(stderr, "the cross-check needs python3 with numpy (scripts/deps.sh installs "
                "python3 and python3-numpy)\n");
        return 1;
    }
    TEST_CHECK_MSG(rc == 0, "python could not read what tapegrad wrote (exit %d)", rc);

    const char *theirs = tpath("from_python.safetensors");
    rc = run(python, script, "write", theirs);
    TEST_CHECK_MSG(rc == 0, "python writer failed (exit %d)", rc);
    tg_st_file *f = tg_safetensors_open(theirs, err, sizeof err);
    TEST_CHECK_MSG(f != NULL, "%s", err);
    if (!f)
        return 1;
    TEST_CHECK(tg_safetensors_count(f) == 6);
    TEST_CHECK(strcmp(tg_safetensors_meta(f, "format"), "pt") == 0);
    TEST_CHECK(strcmp(tg_safetensors_meta(f, "source"), "python \xc3\xa9") == 0);
    tg_st_info in;
    const char *order[] = {"alpha", "beta", "gamma", "half", "s", "z"};
    for (int i = 0; i < 6; i++)
        TEST_CHECK(tg_safetensors_get(f, i, &in) == TG_OK && strcmp(in.name, order[i]) == 0);
    TEST_CHECK(tg_safetensors_find(f, "half", &in) == TG_OK && in.dtype == -1 &&
               strcmp(in.dtype_name, "F16") == 0 && in.nbytes == 4);
    /* Load what tapegrad can use; the F16 tensor is simply not asked for. */
    double alpha[4];
    float beta[3], s;
    int32_t gamma[6], z[1];
    tg_st_entry t[] = {
        { "alpha", TG_F64, 2, (const int64_t[]){2, 2}, alpha },
        { "beta",  TG_F32, 1, (const int64_t[]){3}, beta },
        { "gamma", TG_I32, 2, (const int64_t[]){2, 3}, gamma },
        { "s",     TG_F32, 0, NULL, &s },
        { "z",     TG_I32, 1, (const int64_t[]){0}, z },
    };
    TEST_CHECK_MSG(tg_safetensors_load_into(theirs, t, 5, 0, err, sizeof err) == TG_OK, "%s", err);
    TEST_CHECK(alpha[0] == 1.5 && alpha[1] == -2.0 && alpha[2] == 1e-300 && alpha[3] == 3.25);
    TEST_CHECK(beta[0] == 0.1f && beta[1] == 0.2f && beta[2] == 0.3f && s == 42.0f);
    for (int i = 0; i < 6; i++)
        TEST_CHECK(gamma[i] == i - 3);
    TEST_CHECK(tg_safetensors_load_into(theirs, t, 5, TG_ST_NO_EXTRA, err, sizeof err) ==
               TG_ERR_SHAPE && strstr(err, "'half'"));
    tg_safetensors_close(f);
    return 0;
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(int argc, char **argv)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tg_st_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    fill();
    int rc = 0;
    if (argc == 4 && strcmp(argv[1], "--python") == 0) {
        rc = cross_check(argv[2], argv[3]);
    } else {
        test_round_trip();
        test_load_into();
        test_bad_files();
        test_failed_saves();
    }
    remove_tmpdir();
    return test_report(argc == 4 ? "safetensors_python" : "safetensors") || rc;
}
