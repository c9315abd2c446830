/* fuzz_safetensors.c — libFuzzer target for the safetensors reader: the input
 * is a whole file, opened with tg_safetensors_open_memory. On success every
 * query is exercised and checked against what the reader promises: each
 * tensor's byte count is numel * elem_size and its bytes are readable (ASan
 * checks the bounds), find returns the same entry as get, metadata looked up
 * by key returns the value listed under it. On failure there is a message
 * naming the input. */
#include "tg_checkpoint.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    tg_st_file *f = tg_safetensors_open_memory(data, size, "fuzz", err, sizeof err);
    if (!f) {
        CHECK(strncmp(err, "fuzz: ", 6) == 0);
        return 0;
    }
    CHECK(err[0] == '\0');
    int n = tg_safetensors_count(f);
    CHECK(n >= 0);
    uint64_t total = 0;
    unsigned sum = 0;
    for (int i = 0; i < n; i++) {
        tg_st_info a, b;
        CHECK(tg_safetensors_get(f, i, &a) == TG_OK);
        CHECK(a.name && a.dtype_name && a.elem_size >= 1 && a.elem_size <= 8 && a.ndim >= 0);
        CHECK(a.dtype == -1 || a.dtype == TG_F32 || a.dtype == TG_F64 || a.dtype == TG_I32);
        int64_t numel = 1;
        for (int d = 0; d < a.ndim; d++) {
            CHECK(a.shape[d] >= 0);
            numel *= a.shape[d];
        }
        CHECK(numel == a.numel && (uint64_t)a.numel * a.elem_size == a.nbytes);
        CHECK((a.nbytes == 0) || a.data != NULL);
        if (a.nbytes) {
            const unsigned char *p = a.data;
            sum += p[0] + p[a.nbytes - 1];
        }
        total += a.nbytes;
        CHECK(tg_safetensors_find(f, a.name, &b) == TG_OK);
        CHECK(b.name == a.name && b.data == a.data && b.nbytes == a.nbytes);
    }
    CHECK(total <= size);
    CHECK(tg_safetensors_get(f, n, NULL) == TG_ERR_ARG && tg_safetensors_get(f, -1, NULL) == TG_ERR_ARG);
    CHECK(tg_safetensors_find(f, "", NULL) == TG_ERR_ARG || n > 0);
    int nm = tg_safetensors_meta_count(f);
    for (int i = 0; i < nm; i++) {
        const char *k, *v;
        CHECK(tg_safetensors_meta_get(f, i, &k, &v) == TG_OK && k && v);
        CHECK(tg_safetensors_meta(f, k) == v);   /* keys are unique */
        sum += (unsigned char)v[0];
    }
    CHECK(tg_safetensors_meta_get(f, nm, NULL, NULL) == TG_ERR_ARG);
    (void)sum;
    tg_safetensors_close(f);
    return 0;
}
