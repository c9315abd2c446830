/* fuzz_spec.c — libFuzzer target for the model-spec parser and the layers it
 * builds. Input: a spec such as "784-128relu-10", optionally followed by a NUL
 * byte and one option byte (bit 0: f64 instead of f32; bit 1: eval mode;
 * bit 2: no backward pass; bits 3-4: batch size - 1). When the spec parses,
 * the model runs forward on a small deterministic batch, then backward from
 * the sum of its output.
 *
 * Every tapegrad allocation goes through a budget (tg_set_allocator): live
 * bytes above BUDGET fail, so wide specs ("1-16777216-16777216") exercise the
 * out-of-memory paths quickly instead of exhausting the machine, and each
 * execution stays cheap. Checked besides the sanitizers: a refused spec has a
 * message; a built model's widths match the spec's ends; the forward output
 * is (batch, out_features); a NULL forward or a failed backward is an
 * out-of-memory failure, never anything else (but for batch norm refusing a
 * batch of one in training); nothing stays allocated after
 * the model and context are freed. */
#include "tg_nn.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

#define BUDGET ((size_t)1 << 16)   /* 64 KiB: 16K floats */

static size_t live;          /* bytes tapegrad holds right now */
static int    over_budget;   /* an allocation was refused this execution */

static void *budget_alloc(void *ud, void *ptr, size_t old_size, size_t size)
{
    (void)ud;
    if (size == 0) {
        free(ptr);
        live -= old_size;
        return NULL;
    }
    if (size > old_size && size - old_size > BUDGET - live) {
        over_budget = 1;
        return NULL;
    }
    void *p = realloc(ptr, size);
    if (p)
        live = live - old_size + size;
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int installed;
    if (!installed) {
        tg_set_allocator(budget_alloc, NULL);
        installed = 1;
    }
    CHECK(live == 0);
    over_budget = 0;

    /* The spec, NUL-terminated (no allocation for inputs of usual size). */
    static char small[4097];
    size_t slen = 0;
    while (slen < size && data[slen])
        slen++;
    char *spec = slen < sizeof small ? small : malloc(slen + 1);
    if (!spec)
        return 0;
    memcpy(spec, data, slen);
    spec[slen] = '\0';
    unsigned opt = slen + 1 < size ? data[slen + 1] : 0;
    tg_dtype dt = opt & 1 ? TG_F64 : TG_F32;
    int eval = (opt >> 1) & 1, backward = !((opt >> 2) & 1);
    int64_t B = 1 + ((opt >> 3) & 3);

    char err[256];
    err[0] = '\0';
    tg_model *m = tg_model_from_spec(spec, dt, 42, err, sizeof err);
    if (!m) {
        CHECK(err[0] != '\0');
        goto done;
    }
    int64_t in = tg_model_in_features(m), out = tg_model_out_features(m);
    CHECK(in == strtoll(spec, NULL, 10));
    const char *last = strrchr(spec, '-');
    CHECK(last && out == strtoll(last + 1, NULL, 10));
    char desc[512];
    tg_model_describe(m, desc, sizeof desc);
    tg_model_set_training(m, !eval);

    tg_ctx_opts o = { 16384, 7, 1 };
    tg_ctx *ctx = tg_ctx_new(&o);
    if (!ctx) {
        CHECK(over_budget);
        tg_model_free(m);
        goto done;
    }
    tg_tensor *x = tg_tensor_new(ctx, dt, TG_DIMS(B, in));
    if (x)
        for (int64_t i = 0; i < x->numel; i++)
            tg_tensor_set(x, i, sin((double)i * 0.7) * 1.5);
    tg_tensor *y = tg_model_forward(ctx, m, x);
    if (y) {
        CHECK(tg_ctx_status(ctx) == TG_OK);
        CHECK(y->ndim == 2 && y->shape[0] == B && y->shape[1] == out && y->dtype == dt);
        if (backward) {
            tg_status s = tg_backward(ctx, tg_sum_all(ctx, y));
            CHECK(s == TG_OK || (s == TG_ERR_NOMEM && over_budget));
        }
    } else {
        /* Out of memory, or batch norm in training on a batch of one (as in
         * PyTorch, an error). */
        tg_status s = tg_ctx_status(ctx);
        int ok = (s == TG_ERR_NOMEM && over_budget) ||
                 (s == TG_ERR_SHAPE && B == 1 && !eval &&
                  strstr(tg_ctx_error(ctx), "batch_norm: expected more than 1 value"));
        if (!ok)
            fprintf(stderr, "forward failed: %s\n", tg_ctx_error(ctx));
        CHECK(ok);
    }
    tg_ctx_free(ctx);
    tg_model_free(m);
done:
    CHECK(live == 0);
    if (spec != small)
        free(spec);
    return 0;
}
