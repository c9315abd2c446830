/* test_optim.c — every optimizer run of tests/reference/optimizers.json
 * (PyTorch 1.13, float64: five steps on a fixed gradient sequence) against
 * tapegrad's update rules, to 1e-6, in f64 and (looser) f32; plus
 * schedules, clipping, penalties and bad hyperparameters. */
#include "tapegrad.h"
#include "test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static double num(json_t *o, const char *k, double d)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : d;
}

static void run(json_t *root, json_t *r, tg_dtype dt)
{
    const char *name = json_string_value(json_object_get(r, "optimizer"));
    json_t *h = json_object_get(r, "hyper");
    int kind = tg_optim_kind_parse(name);
    TEST_CHECK_MSG(kind >= 0, "unknown optimizer %s", name);
    if (kind < 0)
        return;
    tg_optim_config c = tg_optim_defaults((tg_optim_kind)kind, num(h, "lr", 0.01));
    c.momentum = num(h, "momentum", c.momentum);
    c.dampening = num(h, "dampening", c.dampening);
    c.weight_decay = num(h, "weight_decay", c.weight_decay);
    c.nesterov = json_is_true(json_object_get(h, "nesterov"));
    c.centered = json_is_true(json_object_get(h, "centered"));
    c.eps = num(h, "eps", c.eps);
    c.alpha = num(h, "alpha", c.alpha);
    c.lr_decay = num(h, "lr_decay", c.lr_decay);
    c.initial_accumulator_value = num(h, "initial_accumulator_value", c.initial_accumulator_value);
    json_t *betas = json_object_get(h, "betas");
    if (betas) {
        c.beta1 = json_number_value(json_array_get(betas, 0));
        c.beta2 = json_number_value(json_array_get(betas, 1));
    }
    json_t *init = json_object_get(root, "initial_params"), *grads = json_object_get(root, "grads");
    int64_t n = (int64_t)json_array_size(init);
    /* Split the vector over two parameters to exercise offsets and padding. */
    tg_params *p = tg_params_new(dt);
    tg_tensor *a = tg_params_add(p, "a.weight", TG_DIMS(2), NULL);
    tg_tensor *b = tg_params_add(p, "b.weight", TG_DIMS(n - 2), NULL);
    TEST_CHECK(a && b);
    tg_tensor *parts[2] = { a, b };
#define ELEM(i) (i < 2 ? parts[0] : parts[1]), (i < 2 ? i : i - 2)
    for (int64_t i = 0; i < n; i++)
        tg_tensor_set(ELEM(i), json_number_value(json_array_get(init, (size_t)i)));
    char err[200];
    tg_optim *o = tg_optim_new(p, &c, err, sizeof err);
    TEST_CHECK_MSG(o != NULL, "%s: %s", name, err);
    json_t *after = json_object_get(r, "params_after_each_step");
    double tol = dt == TG_F64 ? 1e-9 : 2e-5;
    for (size_t s = 0; o && s < json_array_size(after); s++) {
        json_t *g = json_array_get(grads, s), *want = json_array_get(after, s);
        tg_params_zero_grad(p);
        for (int64_t i = 0; i < n; i++) {
            tg_tensor *t = i < 2 ? a : b;
            int64_t k = i < 2 ? i : i - 2;
            if (dt == TG_F32) ((float *)t->grad)[k] = (float)json_number_value(json_array_get(g, (size_t)i));
            else              ((double *)t->grad)[k] = json_number_value(json_array_get(g, (size_t)i));
        }
        TEST_CHECK(tg_optim_step(o) == TG_OK);
        for (int64_t i = 0; i < n; i++) {
            double w = tg_tensor_get(ELEM(i)), e = json_number_value(json_array_get(want, (size_t)i));
            if (!(fabs(w - e) <= tol * (1 + fabs(e)))) {
                TEST_CHECK_MSG(0, "%s %s step %zu param %lld: %.12g, PyTorch %.12g",
                               name, tg_dtype_name(dt), s + 1, (long long)i, w, e);
                break;
            }
            test_passed_++;
        }
    }
#undef ELEM
    tg_optim_free(o);
    tg_params_free(p);
}

static void test_reference(const char *path)
{
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e);
    TEST_CHECK_MSG(root != NULL, "%s: %s", path, e.text);
    if (!root)
        return;
    json_t *runs = json_object_get(root, "runs");
    TEST_CHECK(json_array_size(runs) >= 10);
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r) {
        run(root, r, TG_F64);
        run(root, r, TG_F32);
    }
    json_decref(root);
}

static void test_params(void)
{
    tg_params *p = tg_params_new(TG_F32);
    tg_status st;
    tg_tensor *w = tg_params_add(p, "l1.weight", TG_DIMS(3, 5), &st);
    tg_tensor *b = tg_params_add(p, "l1.bias", TG_DIMS(5), &st);
    TEST_CHECK(w && b && st == TG_OK);
    TEST_CHECK(tg_params_add(p, "l1.bias", TG_DIMS(2), &st) == NULL && st == TG_ERR_ARG);
    TEST_CHECK(tg_params_add(p, "bad", TG_DIMS(0), &st) == NULL && st == TG_ERR_ARG);
    TEST_CHECK(tg_params_count(p) == 2 && tg_params_numel(p) == 20);
    TEST_CHECK(((uintptr_t)w->data % 64) == 0 && ((uintptr_t)b->data % 64) == 0);
    TEST_CHECK((char *)b->data - (char *)tg_params_values(p) == 4 * tg_params_offset(p, 1));
    TEST_CHECK(tg_params_find(p, "l1.weight") == w && strcmp(w->name, "l1.weight") == 0);
    for (int i = 0; i < 15; i++) ((float *)w->grad)[i] = 3;
    for (int i = 0; i < 5; i++) ((float *)b->grad)[i] = 4;
    /* norm = sqrt(15*9 + 5*16) = sqrt(215) */
    double norm = tg_clip_grad_norm(p, 1.0);
    TEST_CLOSE(norm, sqrt(215.0), 1e-6, 0);
    double ss = 0;
    for (int i = 0; i < 15; i++) ss += pow(tg_tensor_grad_get(w, i), 2);
    for (int i = 0; i < 5; i++) ss += pow(tg_tensor_grad_get(b, i), 2);
    TEST_CLOSE(sqrt(ss), 1.0, 1e-5, 0);
    tg_clip_grad_value(p, 0.1);
    TEST_CHECK(tg_tensor_grad_get(w, 0) <= 0.1f && tg_tensor_grad_get(b, 4) <= 0.1f);
    tg_params_zero_grad(p);
    TEST_CHECK(tg_tensor_grad_get(w, 7) == 0);
    for (int i = 0; i < 15; i++) ((float *)w->data)[i] = i % 2 ? -2.0f : 2.0f;
    for (int i = 0; i < 5; i++) ((float *)b->data)[i] = 1.0f;
    double l2 = tg_params_l2_penalty(p, 0.5, ".weight");
    TEST_CLOSE(l2, 0.5 * 15 * 4, 1e-9, 0);
    TEST_CLOSE(tg_tensor_grad_get(w, 1), 2 * 0.5 * -2, 1e-6, 0);
    TEST_CHECK(tg_tensor_grad_get(b, 0) == 0);       /* filtered out */
    tg_params_zero_grad(p);
    double l1 = tg_params_l1_penalty(p, 0.25, NULL);
    TEST_CLOSE(l1, 0.25 * (15 * 2 + 5), 1e-9, 0);
    TEST_CLOSE(tg_tensor_grad_get(w, 1), -0.25, 1e-7, 0);
    TEST_CLOSE(tg_tensor_grad_get(b, 1), 0.25, 1e-7, 0);

    char err[200];
    tg_optim_config c = tg_optim_defaults(TG_OPTIM_SGD, -1);
    TEST_CHECK(tg_optim_new(p, &c, err, sizeof err) == NULL && strstr(err, "learning rate"));
    c = tg_optim_defaults(TG_OPTIM_SGD, 0.1);
    c.nesterov = 1;
    TEST_CHECK(tg_optim_new(p, &c, err, sizeof err) == NULL && strstr(err, "Nesterov"));
    c = tg_optim_defaults(TG_OPTIM_ADAM, 0.1);
    c.beta1 = 1.0;
    TEST_CHECK(tg_optim_new(p, &c, err, sizeof err) == NULL && strstr(err, "betas"));
    tg_params_free(p);
}

static void test_schedules(void)
{
    tg_schedule s = { .kind = TG_SCHED_STEP, .gamma = 0.5, .step_size = 10 };
    TEST_CHECK(tg_schedule_check(&s, NULL, 0) == TG_OK);
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 9), 1.0, 0, 0);
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 10), 0.5, 0, 0);
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 25), 0.25, 0, 0);
    s = (tg_schedule){ .kind = TG_SCHED_EXPONENTIAL, .gamma = 0.9 };
    TEST_CLOSE(tg_schedule_lr(&s, 2.0, 3), 2.0 * 0.729, 1e-15, 0);
    s = (tg_schedule){ .kind = TG_SCHED_COSINE, .t_max = 100, .eta_min = 0.1 };
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 0), 1.0, 1e-15, 0);
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 50), 0.55, 1e-15, 0);
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 100), 0.1, 1e-15, 0);
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 500), 0.1, 1e-15, 0);
    /* Warm-up composed with cosine: linear ramp, then cosine from its start. */
    s.warmup_steps = 10;
    s.warmup_start = 0.0;
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 0), 0.0, 0, 0);
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 5), 0.5, 1e-15, 0);
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 10), 1.0, 1e-15, 0);
    TEST_CLOSE(tg_schedule_lr(&s, 1.0, 60), 0.55, 1e-15, 0);
    s = (tg_schedule){ .kind = TG_SCHED_STEP, .gamma = 0.5, .step_size = 0 };
    char err[100];
    TEST_CHECK(tg_schedule_check(&s, err, sizeof err) == TG_ERR_ARG && strstr(err, "step_size"));
}

/* f32 Adam and AdamW give exactly the bits of the update rule written as a
 * plain float loop (the library's vector kernel must not regroup, fuse or
 * approximate anything), over parameters whose lengths leave partial
 * vectors, with zero gradients (v = 0: a zero square root) among random
 * ones; tg_optim_step_and_zero_grad zeroes every gradient. */
static void test_adam_bits(void)
{
    /* 80000: several ZBLOCKs, and two threads' ranges with the store's 2
     * threads (kind 1). */
    static const int64_t lens[] = { 37, 80000, 5 };
    for (int kind = 0; kind < 2; kind++) {
        tg_params *p = tg_params_new(TG_F32);
        tg_params_set_threads(p, 1 + kind);
        tg_tensor *t[3];
        int64_t total = 0;
        for (int i = 0; i < 3; i++) {
            char name[16];
            snprintf(name, sizeof name, "p%d", i);
            t[i] = tg_params_add(p, name, TG_DIMS(lens[i]), NULL);
            TEST_CHECK(t[i] != NULL);
            total += lens[i];
        }
        float *w = malloc(sizeof(float) * (size_t)total), *m = calloc((size_t)total, sizeof(float));
        float *v = calloc((size_t)total, sizeof(float)), *g = malloc(sizeof(float) * (size_t)total);
        tg_rng r;
        tg_rng_seed(&r, 41 + (uint64_t)kind);
        for (int i = 0, k = 0; i < 3; i++)
            for (int64_t j = 0; j < lens[i]; j++, k++)
                ((float *)t[i]->data)[j] = w[k] = (float)(2 * tg_rng_uniform(&r) - 1);
        tg_optim_config c = tg_optim_defaults(kind ? TG_OPTIM_ADAMW : TG_OPTIM_ADAM, 0.01);
        c.weight_decay = kind ? 0.05 : 0.01;
        tg_optim *o = tg_optim_new(p, &c, NULL, 0);
        TEST_CHECK(o != NULL);
        float b1 = (float)c.beta1, b2 = (float)c.beta2, eps = (float)c.eps, wd = (float)c.weight_decay;
        for (int step = 1; o && step <= 4; step++) {
            for (int i = 0, k = 0; i < 3; i++)
                for (int64_t j = 0; j < lens[i]; j++, k++)
                    ((float *)t[i]->grad)[j] = g[k] = k % 7 == 3 ? 0.0f : (float)(tg_rng_normal(&r) * 0.1);
            TEST_CHECK((step % 2 ? tg_optim_step_and_zero_grad(o) : tg_optim_step(o)) == TG_OK);
            double bc1 = 1 - pow(c.beta1, step), bc2 = 1 - pow(c.beta2, step);
            float stp = (float)(c.lr / bc1), rbc2 = (float)(1 / sqrt(bc2)), decay = (float)(1 - c.lr * c.weight_decay);
            for (int64_t k = 0; k < total; k++) {
                float d = g[k];
                if (kind) w[k] *= decay;
                else      d += wd * w[k];
                m[k] = b1 * m[k] + (1 - b1) * d;
                v[k] = b2 * v[k] + (1 - b2) * d * d;
                w[k] -= stp * m[k] / (sqrtf(v[k]) * rbc2 + eps);
            }
            int same = 1, zeroed = 1, kept = 1;
            for (int i = 0, k = 0; i < 3; i++)
                for (int64_t j = 0; j < lens[i]; j++, k++) {
                    same &= memcmp(&((float *)t[i]->data)[j], &w[k], sizeof(float)) == 0;
                    zeroed &= ((float *)t[i]->grad)[j] == 0.0f;
                    kept &= memcmp(&((float *)t[i]->grad)[j], &g[k], sizeof(float)) == 0;
                }
            TEST_CHECK_MSG(same, "%s step %d: not the bits of the float loop", kind ? "adamw" : "adam", step);
            if (step % 2)
                TEST_CHECK_MSG(zeroed, "%s step %d: gradients not zeroed", kind ? "adamw" : "adam", step);
            else
                TEST_CHECK_MSG(kept, "%s step %d: tg_optim_step changed the gradients", kind ? "adamw" : "adam", step);
        }
        tg_optim_free(o);
        tg_params_free(p);
        free(w); free(m); free(v); free(g);
    }
}

int main(int argc, char **argv)
{
    test_reference(argc > 1 ? argv[1] : "tests/reference/optimizers.json");
    test_params();
    test_adam_bits();
    test_schedules();
    return test_report("test_optim");
}
