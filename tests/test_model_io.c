/* test_model_io.c — model checkpoints: a round trip restores parameters,
 * buffers, optimizer state, step count and RNG exactly; a checkpoint that
 * does not fit the model (other shapes, other optimizer, missing tensors,
 * not a tapegrad file, a missing file) is refused with a message naming the
 * tensor or the file, and leaves the model and optimizer untouched. */
#include "tapegrad.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void train_steps(tg_model *m, tg_optim *o, int n)
{
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 3 });
    float x[8 * 6];
    int32_t y[8];
    for (int i = 0; i < 48; i++) x[i] = (float)((i * 7) % 11) / 11.0f;
    for (int i = 0; i < 8; i++) y[i] = i % 3;
    for (int s = 0; s < n; s++) {
        tg_tensor *xt = tg_tensor_wrap(ctx, TG_F32, TG_DIMS(8, 6), x);
        tg_tensor *yt = tg_tensor_wrap(ctx, TG_I32, TG_DIMS(8), y);
        tg_params_zero_grad(tg_model_params(m));
        tg_backward(ctx, tg_cross_entropy(ctx, tg_model_forward(ctx, m, xt), yt, TG_REDUCE_MEAN));
        tg_optim_step(o);
        tg_ctx_reset(ctx);
    }
    tg_ctx_free(ctx);
}

/* All of a model's and optimizer's state as one byte string. */
static size_t snapshot(tg_model *m, tg_optim *o, unsigned char *buf)
{
    size_t off = 0;
    tg_params *stores[2] = { tg_model_params(m), tg_model_buffers(m) };
    for (int s = 0; s < 2; s++) {
        size_t n = (size_t)tg_params_len(stores[s]) * 4;
        memcpy(buf + off, tg_params_values(stores[s]), n);
        off += n;
    }
    for (int i = 0; o && i < tg_optim_state_count(o); i++) {
        size_t n = (size_t)tg_params_len(tg_model_params(m)) * 4;
        memcpy(buf + off, tg_optim_state_data(o, i), n);
        off += n;
    }
    memcpy(buf + off, tg_model_rng(m), sizeof(tg_rng));
    off += sizeof(tg_rng);
    int64_t steps = o ? tg_optim_step_count(o) : -1;
    memcpy(buf + off, &steps, sizeof steps);
    return off + sizeof steps;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg_model_io_XXXXXX");
    TEST_CHECK(mkdtemp(dir) != NULL);
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/m.ckpt", dir);
    const char *spec = "6-5relu_bn_d0.2-3";
    tg_optim_config adam = tg_optim_defaults(TG_OPTIM_ADAM, 0.01);

    tg_model *a = tg_model_from_spec(spec, TG_F32, 1, err, sizeof err);
    tg_optim *oa = tg_optim_new(tg_model_params(a), &adam, err, sizeof err);
    train_steps(a, oa, 5);
    tg_st_meta extra[] = { { "spec", spec }, { "epoch", "3" } };
    TEST_CHECK_MSG(tg_model_save(path, a, oa, extra, 2, err, sizeof err) == TG_OK, "%s", err);

    /* Round trip into a fresh model built with another seed. */
    tg_model *b = tg_model_from_spec(spec, TG_F32, 99, err, sizeof err);
    tg_optim *ob = tg_optim_new(tg_model_params(b), &adam, err, sizeof err);
    TEST_CHECK_MSG(tg_model_load(path, b, ob, err, sizeof err) == TG_OK, "%s", err);
    static unsigned char sa[1 << 16], sb[1 << 16];
    size_t na = snapshot(a, oa, sa), nb = snapshot(b, ob, sb);
    TEST_CHECK(na == nb && memcmp(sa, sb, na) == 0);
    /* ... and both continue identically (dropout draws from the restored RNG). */
    train_steps(a, oa, 3);
    train_steps(b, ob, 3);
    na = snapshot(a, oa, sa);
    nb = snapshot(b, ob, sb);
    TEST_CHECK(na == nb && memcmp(sa, sb, na) == 0);
    tg_st_file *f = tg_safetensors_open(path, err, sizeof err);
    TEST_CHECK(f && strcmp(tg_safetensors_meta(f, "epoch"), "3") == 0);
    TEST_CHECK(f && tg_safetensors_find(f, "optim.exp_avg.dense1.weight", NULL) == TG_OK);
    TEST_CHECK(f && tg_safetensors_find(f, "buffer.bn1.running_var", NULL) == TG_OK);
    tg_safetensors_close(f);

    /* Mismatches: each refused, nothing changed. */
    tg_model *c = tg_model_from_spec("6-4relu_bn_d0.2-3", TG_F32, 1, err, sizeof err);
    tg_optim *oc = tg_optim_new(tg_model_params(c), &adam, err, sizeof err);
    static unsigned char s0[1 << 16], s1[1 << 16];
    size_t n0 = snapshot(c, oc, s0);
    TEST_CHECK(tg_model_load(path, c, oc, err, sizeof err) == TG_ERR_SHAPE);
    TEST_CHECK_MSG(strstr(err, "'param.dense1.weight' is F32 6x5, model expects f32 6x4") != NULL, "%s", err);
    TEST_CHECK(snapshot(c, oc, s1) == n0 && memcmp(s0, s1, n0) == 0);

    tg_optim_config sgd = tg_optim_defaults(TG_OPTIM_SGD, 0.1);
    sgd.momentum = 0.9;
    tg_model *d = tg_model_from_spec(spec, TG_F32, 1, err, sizeof err);
    tg_optim *od = tg_optim_new(tg_model_params(d), &sgd, err, sizeof err);
    n0 = snapshot(d, od, s0);
    TEST_CHECK(tg_model_load(path, d, od, err, sizeof err) == TG_ERR_SHAPE);
    TEST_CHECK_MSG(strstr(err, "holds adam optimizer state, the run uses sgd") != NULL, "%s", err);
    TEST_CHECK(snapshot(d, od, s1) == n0 && memcmp(s0, s1, n0) == 0);
    /* Parameters only (no optimizer) load fine into the same architecture. */
    TEST_CHECK(tg_model_load(path, d, NULL, err, sizeof err) == TG_OK);

    /* A model without batch norm lacks nothing but has no buffers: the
     * file's extra tensors do not matter; a model with more layers does. */
    tg_model *e = tg_model_from_spec("6-5relu_bn-5relu-3", TG_F32, 1, err, sizeof err);
    TEST_CHECK(tg_model_load(path, e, NULL, err, sizeof err) == TG_ERR_SHAPE);
    TEST_CHECK_MSG(strstr(err, "missing") != NULL || strstr(err, "expects") != NULL, "%s", err);

    char junk[128];
    snprintf(junk, sizeof junk, "%s/junk.ckpt", dir);
    tg_st_entry one = { "x", TG_F32, 0, NULL, &(float){ 1 } };
    TEST_CHECK(tg_safetensors_save(junk, &one, 1, NULL, 0, err, sizeof err) == TG_OK);
    TEST_CHECK(tg_model_load(junk, b, NULL, err, sizeof err) == TG_ERR_FORMAT);
    TEST_CHECK_MSG(strstr(err, "not a tapegrad checkpoint") != NULL, "%s", err);
    snprintf(junk, sizeof junk, "%s/none.ckpt", dir);
    TEST_CHECK(tg_model_load(junk, b, NULL, err, sizeof err) == TG_ERR_IO);
    TEST_CHECK_MSG(strstr(err, "none.ckpt") != NULL, "%s", err);

    tg_optim_free(oa); tg_optim_free(ob); tg_optim_free(oc); tg_optim_free(od);
    tg_model_free(a); tg_model_free(b); tg_model_free(c); tg_model_free(d); tg_model_free(e);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    TEST_CHECK(system(path) == 0);
    return test_report("test_model_io");
}
