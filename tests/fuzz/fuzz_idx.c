/* fuzz_idx.c — libFuzzer target for the IDX reader: the input is a whole IDX
 * file, raw or gzipped, read with tg_idx_load_memory (the same header and
 * data checks as tg_idx_load on a file). Besides the sanitizers, the target
 * checks the reader's promises: success leaves a consistent array (dims > 0
 * whose product is numel, the element size of the type, numel * elem_size
 * readable bytes) and no message; failure leaves `out` zeroed and a message
 * naming the input. Built as a fuzzer with -Dfuzz=true, and linked with
 * replay.c into the corpus-replay test of the default suite. */
#include "tg_data.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_idx a;
    char err[256];
    tg_status s = tg_idx_load_memory(data, size, "fuzz", &a, err, sizeof err);
    if (s != TG_OK) {
        CHECK(s == TG_ERR_FORMAT || s == TG_ERR_NOMEM);
        CHECK(a.data == NULL && a.numel == 0 && a.ndims == 0);
        CHECK(strncmp(err, "fuzz: ", 6) == 0);
        return 0;
    }
    CHECK(err[0] == '\0');
    CHECK(a.ndims >= 1 && a.ndims <= TG_IDX_MAX_DIMS && a.data != NULL);
    int64_t n = 1;
    for (int i = 0; i < TG_IDX_MAX_DIMS; i++) {
        CHECK(i < a.ndims ? a.dims[i] > 0 : a.dims[i] == 0);
        if (i < a.ndims)
            n *= a.dims[i];
    }
    CHECK(n == a.numel && n <= TG_IDX_MAX_ELEMS);
    size_t es = a.type == TG_IDX_U8 || a.type == TG_IDX_I8 ? 1 : a.type == TG_IDX_I16 ? 2
              : a.type == TG_IDX_F64 ? 8 : 4;
    CHECK(a.elem_size == es && strcmp(tg_idx_type_name(a.type), "unknown") != 0);
    /* A raw input holds exactly header + data (a gzip one decompresses to it). */
    size_t bytes = (size_t)a.numel * a.elem_size;
    if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b)) {
        CHECK(size == 4 + 4 * (size_t)a.ndims + bytes);
        /* Element 0 is the first data bytes, in host order. */
        const uint8_t *d = data + 4 + 4 * a.ndims;
        uint64_t v = 0;
        for (size_t k = 0; k < es; k++)
            v = v << 8 | d[k];
        uint64_t got = 0;
        memcpy(&got, a.data, es);   /* little-endian host: low bytes */
        CHECK(got == v);
    }
    /* Every byte is readable (ASan checks the bounds). */
    const unsigned char *p = a.data;
    unsigned sum = 0;
    for (size_t i = 0; i < bytes; i += 4096)
        sum += p[i];
    sum += p[bytes - 1];
    (void)sum;
    tg_idx_free(&a);
    CHECK(a.data == NULL);
    return 0;
}
