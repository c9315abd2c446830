/* test_bench.c — the op-throughput benchmark (graph/tg_bench.h), with a
 * tiny time budget. Structure and sanity only, never timings: results are
 * positive and finite, flops and bytes are the op's cost(), a wrong op is
 * reported as a mismatch and not timed, the user-shape rule and the matmul
 * hook make the right problems, the JSON has Google Benchmark's keys, and
 * the baseline comparison flags an injected 2x regression. */
#include "tapegrad.h"
#include "test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tg_bench_machine machine;

static tg_bench_opts quick(void)
{
    tg_bench_opts o;
    memset(&o, 0, sizeof o);
    o.time_budget = 0.002;
    o.min_reps = 3;
    o.machine = &machine;
    return o;
}

static int finite_pos(double v) { return isfinite(v) && v > 0; }

/* Every timed phase of a timed case holds together. */
static void check_case_sane(const tg_bench_case *c)
{
    TEST_CHECK_MSG(c->status == TG_OK && !c->mismatch, "%s: %s", c->label, c->message);
    for (int p = 0; p < TG_BENCH_N_PHASES; p++) {
        const tg_bench_stats *s = &c->phase[p];
        int want = p == TG_BENCH_BWD_FRESH ? c->has_fresh
                 : c->has_backward || (p != TG_BENCH_BWD && p != TG_BENCH_FWDBWD && p != TG_BENCH_ENGINE_FWDBWD);
        TEST_CHECK_MSG((s->iterations > 0) == want, "%s %s: %lld iterations", c->label,
                       tg_bench_phase_name(p), (long long)s->iterations);
        if (!want)
            continue;
        TEST_CHECK(s->samples >= 3 && s->iterations >= s->samples);
        TEST_CHECK(finite_pos(s->median_ns) && finite_pos(s->min_ns) && finite_pos(s->cpu_ns));
        TEST_CHECK(s->min_ns <= s->q1_ns && s->q1_ns <= s->median_ns && s->median_ns <= s->q3_ns);
        TEST_CHECK(isfinite(s->iqr_ns) && s->iqr_ns >= 0);
        if (c->has_cost && s->flops > 0) {
            TEST_CLOSE(s->gflops, s->flops / s->median_ns, 0, 1e-12);
            TEST_CLOSE(s->gbps, s->bytes / s->median_ns, 0, 1e-12);
            TEST_CHECK(finite_pos(s->pct_peak));
            TEST_CHECK(s->bound == TG_BENCH_BOUND_COMPUTE || s->bound == TG_BENCH_BOUND_MEMORY);
        }
    }
    TEST_CHECK(finite_pos(c->first_fwd_ns));
    TEST_CHECK(!c->has_backward || finite_pos(c->first_bwd_ns));
    TEST_CHECK(isfinite(c->overhead_fwd_ns) && isfinite(c->overhead_fwdbwd_ns));
}

/* The phases' flops/bytes are the cost() of the same problem. */
static void check_cost(const tg_bench_case *c, const tg_op_cost *k)
{
    TEST_CHECK(c->has_cost);
    TEST_CHECK(c->phase[TG_BENCH_FWD].flops == k->fwd_flops && c->phase[TG_BENCH_FWD].bytes == k->fwd_bytes);
    TEST_CHECK(c->phase[TG_BENCH_BWD].flops == k->bwd_flops && c->phase[TG_BENCH_BWD].bytes == k->bwd_bytes);
    TEST_CHECK(c->phase[TG_BENCH_FWDBWD].flops == k->fwd_flops + k->bwd_flops);
    TEST_CHECK(c->phase[TG_BENCH_ENGINE_FWD].bytes == k->fwd_bytes);
    TEST_CHECK(c->phase[TG_BENCH_ENGINE_FWDBWD].bytes == k->fwd_bytes + k->bwd_bytes);
    /* into fresh gradients: the VJP's flops, its bytes less the gradients it
     * no longer reads (below bwd's whenever it is timed) */
    if (c->has_fresh)
        TEST_CHECK(c->phase[TG_BENCH_BWD_FRESH].flops == k->bwd_flops &&
                   c->phase[TG_BENCH_BWD_FRESH].bytes < k->bwd_bytes && c->phase[TG_BENCH_BWD_FRESH].bytes > 0);
}

/* cost() of def on inputs of the given shapes (params zero). */
static tg_op_cost cost_at(const tg_op_def *def, tg_dtype dt, int n_in, const int *nd, const int64_t (*sh)[4])
{
    tg_op_cost k;
    memset(&k, 0, sizeof k);
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_node n;
    memset(&n, 0, sizeof n);
    n.def = def;
    n.ctx = ctx;
    n.n_in = n_in;
    for (int i = 0; i < n_in; i++)
        n.in[i] = tg_tensor_rand(ctx, dt, nd[i], sh[i], -1, 1);
    if (tg_node_run(&n) == TG_OK)
        def->cost(&n, &k);
    tg_ctx_free(ctx);
    return k;
}

static void test_probe(void)
{
    TEST_CHECK(tg_bench_probe(NULL, 0.01) == TG_ERR_ARG);
    tg_status st = tg_bench_probe(&machine, 0.01);
    TEST_CHECK_MSG(st == TG_OK, "%s", tg_status_str(st));
    TEST_CHECK(finite_pos(machine.gemm_gflops_f32) && finite_pos(machine.gemm_gflops_f64));
    TEST_CHECK(finite_pos(machine.mem_gbps) && finite_pos(machine.copy_gbps) && finite_pos(machine.mem_gbps_all));
    TEST_CHECK(machine.mem_array_bytes >= ((int64_t)64 << 20));
    TEST_CHECK(machine.num_cpus >= 1 && machine.host_name[0]);
}

static void test_samples(void)
{
    const tg_op_def *add = tg_op_find("add");
    tg_bench_opts o = quick();
    tg_bench_result r;
    TEST_CHECK(tg_bench_op(add, &o, &r) == TG_OK);
    TEST_CHECK(r.n_cases == add->n_samples && r.n_timed == add->n_samples && !r.n_mismatch && !r.n_error);
    TEST_CHECK(strcmp(r.op, "add") == 0 && r.dtype == TG_F32 && r.threads == 1);
    TEST_CHECK(strcmp(r.cases[0].label, "v0:3x4,3x4") == 0);
    TEST_CHECK(strcmp(r.cases[3].label, "v3:scalar,2x3") == 0);
    for (int k = 0; k < r.n_cases; k++) {
        check_case_sane(&r.cases[k]);
        TEST_CHECK(r.cases[k].has_backward && r.cases[k].variant == k);
    }
    const int nd[2] = {2, 2};
    const int64_t sh[2][4] = { {3, 4}, {3, 4} };
    tg_op_cost k = cost_at(add, TG_F32, 2, nd, sh);
    TEST_CHECK(k.fwd_flops == 12);
    check_cost(&r.cases[0], &k);

    /* f64, one variant, two threads. */
    o.dtype = TG_F64;
    o.threads = 2;
    o.single_variant = 1;
    o.variant = 1;
    TEST_CHECK(tg_bench_op(tg_op_find("matmul"), &o, &r) == TG_OK);
    TEST_CHECK(r.n_cases == 1 && r.n_timed == 1 && r.threads == 2 && r.dtype == TG_F64);
    check_case_sane(&r.cases[0]);
    char name[256];
    TEST_CHECK(strcmp(tg_bench_name(&r, &r.cases[0], TG_BENCH_BWD, name, sizeof name),
                      "matmul/f64/v1:2x4x3,2x4x5/bwd/threads:2") == 0);
}

/* ---- a wrong op: its f32 forward is off by 1e-2 at one element ------------ */

static int off_f32;   /* 1: the f32 forward is wrong */

static tg_status twice_shape(const tg_node *n, tg_dtype *dt, int *nd, int64_t *sh)
{
    *dt = n->in[0]->dtype;
    *nd = n->in[0]->ndim;
    memcpy(sh, n->in[0]->shape, sizeof(int64_t) * (size_t)*nd);
    return TG_OK;
}

static tg_status twice_forward(tg_node *n)
{
    for (int64_t i = 0; i < n->out->numel; i++)
        tg_tensor_set(n->out, i, 2 * tg_tensor_get(n->in[0], i) + (off_f32 && i == 5 && n->out->dtype == TG_F32 ? 1e-2 : 0));
    return TG_OK;
}

static void twice_backward(tg_node *n)
{
    tg_tensor *x = n->in[0];
    if (!x->grad)
        return;
    for (int64_t i = 0; i < x->numel; i++) {
        double g = 2 * tg_tensor_grad_get(n->out, i);
        if (x->dtype == TG_F32)
            ((float *)x->grad)[i] += (float)g;
        else
            ((double *)x->grad)[i] += g;
    }
}

static tg_status twice_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v < 0 || v > 1)
        return TG_ERR_ARG;
    n->n_in = 1;
    n->in[0] = v == 0 ? tg_tensor_rand(n->ctx, dt, TG_DIMS(3, 4), -1, 1)
                      : tg_tensor_rand(n->ctx, dt, TG_DIMS(7), -1, 1);
    return n->in[0] ? TG_OK : tg_ctx_status(n->ctx);
}

static const tg_op_def twice_def = {
    .name = "twice", .n_in = 1,
    .shape = twice_shape, .forward = twice_forward, .backward = twice_backward,
    .sample = twice_sample, .n_samples = 2,
};

static void test_mismatch(void)
{
    tg_bench_opts o = quick();
    tg_bench_result r;
    off_f32 = 0;   /* control: the right op is timed */
    TEST_CHECK(tg_bench_op(&twice_def, &o, &r) == TG_OK);
    TEST_CHECK(r.n_timed == 2 && r.n_mismatch == 0);
    check_case_sane(&r.cases[0]);
    TEST_CHECK(!r.cases[0].has_cost && r.cases[0].phase[TG_BENCH_FWD].gflops == 0);
    /* Without a VJP only the forward phases are timed. */
    tg_op_def novjp = twice_def;
    novjp.backward = NULL;
    TEST_CHECK(tg_bench_op(&novjp, &o, &r) == TG_OK && r.n_timed == 2 && !r.cases[0].has_backward);
    check_case_sane(&r.cases[0]);

    off_f32 = 1;
    for (int dt = 0; dt < 2; dt++) {   /* f32 against f64, and f64 cross-checked by f32 */
        o.dtype = dt ? TG_F64 : TG_F32;
        TEST_CHECK(tg_bench_op(&twice_def, &o, &r) == TG_OK);
        TEST_CHECK_MSG(r.n_mismatch == 2 && r.n_timed == 0, "%d mismatches", r.n_mismatch);
        for (int k = 0; k < r.n_cases; k++) {
            const tg_bench_case *c = &r.cases[k];
            TEST_CHECK(c->mismatch && strstr(c->message, "output element 5"));
            for (int p = 0; p < TG_BENCH_N_PHASES; p++)
                TEST_CHECK(c->phase[p].iterations == 0);
        }
    }
    off_f32 = 0;
}

/* A "matmul" right in both dtypes' agreement but wrong against the naive
 * GEMM: only the independent reference can catch it. */
static tg_status bad_matmul_forward(tg_node *n)
{
    tg_status st = tg_op_find("matmul")->forward(n);
    tg_tensor_set(n->out, 0, tg_tensor_get(n->out, 0) + 1e-2);
    return st;
}

static void test_matmul_reference(void)
{
    tg_op_def bad = *tg_op_find("matmul");
    bad.forward = bad_matmul_forward;
    tg_bench_opts o = quick();
    o.single_variant = 1;
    tg_bench_result r;
    TEST_CHECK(tg_bench_op(&bad, &o, &r) == TG_OK);
    TEST_CHECK(r.n_mismatch == 1 && strstr(r.cases[0].message, "naive GEMM"));
    TEST_CHECK(r.cases[0].phase[TG_BENCH_FWD].iterations == 0);
}

/* ---- user shapes ------------------------------------------------------------ */

static void test_user_shapes(void)
{
    tg_bench_opts o = quick();
    tg_bench_result r;
    /* add: the generic rule (both float inputs 3x4 in variant 0). */
    o.ndim = 2;
    o.shape[0] = 32;
    o.shape[1] = 48;
    TEST_CHECK(tg_bench_op(tg_op_find("add"), &o, &r) == TG_OK);
    TEST_CHECK(r.n_cases == 1 && r.n_timed == 1 && r.cases[0].variant == -1);
    TEST_CHECK(strcmp(r.cases[0].label, "32x48") == 0);
    check_case_sane(&r.cases[0]);
    const int nd[2] = {2, 2};
    const int64_t sh[2][4] = { {32, 48}, {32, 48} };
    tg_op_cost k = cost_at(tg_op_find("add"), TG_F32, 2, nd, sh);
    TEST_CHECK(k.fwd_flops == 32 * 48);
    check_cost(&r.cases[0], &k);

    /* relu at a rank its samples do not have. */
    o.ndim = 3;
    o.shape[0] = 5, o.shape[1] = 6, o.shape[2] = 7;
    TEST_CHECK(tg_bench_op(tg_op_find("relu"), &o, &r) == TG_OK);
    TEST_CHECK(r.n_timed == 1 && strcmp(r.cases[0].label, "5x6x7") == 0);
    check_case_sane(&r.cases[0]);
    const int nd1[1] = {3};
    const int64_t sh1[1][4] = { {5, 6, 7} };
    k = cost_at(tg_op_find("relu"), TG_F32, 1, nd1, sh1);
    TEST_CHECK(k.fwd_flops >= 210);
    check_cost(&r.cases[0], &k);

    /* cross_entropy: labels of the logits' leading dims, in range. */
    o.ndim = 2;
    o.shape[0] = 16, o.shape[1] = 10;
    TEST_CHECK(tg_bench_op(tg_op_find("cross_entropy"), &o, &r) == TG_OK);
    TEST_CHECK_MSG(r.n_timed == 1, "%s", r.cases[0].message);

    /* An op whose inputs differ in shape needs a hook: layer_norm without
     * its own. */
    tg_op_def nohook = *tg_op_find("layer_norm");
    nohook.name = "layer_norm_nohook";
    nohook.sample_shape = NULL;
    TEST_CHECK(tg_bench_op(&nohook, &o, &r) == TG_OK);
    TEST_CHECK(r.n_timed == 0 && r.n_error == 1 && r.cases[0].status != TG_OK);
    TEST_CHECK(strstr(r.cases[0].message, "needs a sample_shape hook") != NULL);

    /* The norm and shape ops' hooks: each timed at a 2-D and a 3-D size,
     * its output checked against the naive reference first; sizes that do
     * not describe a problem of the op are refused. */
    static const char *hooked[] = { "batch_norm", "layer_norm", "permute", "reshape", "concat", "broadcast_to" };
    for (size_t h = 0; h < sizeof hooked / sizeof hooked[0]; h++) {
        const tg_op_def *def = tg_op_find(hooked[h]);
        TEST_CHECK(def && def->sample_shape != NULL);
        for (int three = 0; def && three < 2; three++) {
            o.ndim = 2 + three;
            o.shape[0] = 16, o.shape[1] = 10, o.shape[2] = 3;
            TEST_CHECK(tg_bench_op(def, &o, &r) == TG_OK);
            TEST_CHECK_MSG(r.n_timed == 1 && r.n_mismatch == 0, "%s at %d dims: %s", hooked[h], o.ndim,
                           r.cases[0].message);
            check_case_sane(&r.cases[0]);
        }
    }
    o.ndim = 1;
    o.shape[0] = 10;
    TEST_CHECK(tg_bench_op(tg_op_find("batch_norm"), &o, &r) == TG_OK);
    TEST_CHECK(r.n_error == 1 && r.cases[0].status == TG_ERR_SHAPE && strstr(r.cases[0].message, "N,C"));
    o.ndim = 2;
    o.shape[0] = 1, o.shape[1] = 10;
    TEST_CHECK(tg_bench_op(tg_op_find("concat"), &o, &r) == TG_OK);
    TEST_CHECK(r.n_error == 1 && r.cases[0].status == TG_ERR_SHAPE && strstr(r.cases[0].message, "at least 2"));

    /* matmul's hook: M,N,K and B,M,N,K. */
    const tg_op_def *mm = tg_op_find("matmul");
    TEST_CHECK(mm->sample_shape != NULL);
    o.ndim = 3;
    o.shape[0] = 16, o.shape[1] = 8, o.shape[2] = 12;
    TEST_CHECK(tg_bench_op(mm, &o, &r) == TG_OK);
    TEST_CHECK(r.n_timed == 1 && strcmp(r.cases[0].label, "16x8x12") == 0);
    check_case_sane(&r.cases[0]);
    TEST_CHECK(r.cases[0].phase[TG_BENCH_FWD].flops == 2.0 * 16 * 8 * 12);
    TEST_CHECK(r.cases[0].phase[TG_BENCH_BWD].flops == 4.0 * 16 * 8 * 12);
    o.ndim = 4;
    o.shape[0] = 3, o.shape[1] = 4, o.shape[2] = 5, o.shape[3] = 6;
    TEST_CHECK(tg_bench_op(mm, &o, &r) == TG_OK);
    TEST_CHECK(r.n_timed == 1 && r.cases[0].phase[TG_BENCH_FWD].flops == 2.0 * 3 * 4 * 5 * 6);
    o.ndim = 2;
    TEST_CHECK(tg_bench_op(mm, &o, &r) == TG_OK);
    TEST_CHECK(r.n_error == 1 && r.cases[0].status == TG_ERR_SHAPE && strstr(r.cases[0].message, "M,N,K"));
}

static void test_bad_args(void)
{
    tg_bench_opts o = quick();
    tg_bench_result r;
    TEST_CHECK(tg_bench_op(NULL, &o, &r) == TG_ERR_ARG && strstr(r.message, "incomplete"));
    TEST_CHECK(tg_bench_op(tg_op_find("add"), &o, NULL) == TG_ERR_ARG);
    tg_op_def nosample = twice_def;
    nosample.sample = NULL;
    TEST_CHECK(tg_bench_op(&nosample, &o, &r) == TG_ERR_ARG && strstr(r.message, "sample"));
    o.single_variant = 1;
    o.variant = 9;
    TEST_CHECK(tg_bench_op(&twice_def, &o, &r) == TG_ERR_ARG && strstr(r.message, "out of range"));
    o = quick();
    o.dtype = TG_I32;
    TEST_CHECK(tg_bench_op(&twice_def, &o, &r) == TG_ERR_ARG);
    o = quick();
    o.ndim = 2;
    o.shape[0] = 0;
    o.shape[1] = 4;
    TEST_CHECK(tg_bench_op(&twice_def, &o, &r) == TG_ERR_ARG);
}

/* ---- output and baseline ---------------------------------------------------- */

static int count_rows(const tg_bench_result *const *res, int n)
{
    int rows = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < res[i]->n_cases; k++)
            for (int p = 0; p < TG_BENCH_N_PHASES; p++)
                rows += res[i]->cases[k].status == TG_OK && !res[i]->cases[k].mismatch &&
                        res[i]->cases[k].phase[p].iterations > 0;
    return rows;
}

static void test_json_and_baseline(void)
{
    static tg_bench_result ra, rb;
    tg_bench_opts o = quick();
    TEST_CHECK(tg_bench_op(tg_op_find("add"), &o, &ra) == TG_OK);
    o.ndim = 2;
    o.shape[0] = 64, o.shape[1] = 64;
    TEST_CHECK(tg_bench_op(tg_op_find("relu"), &o, &rb) == TG_OK);
    const tg_bench_result *res[2] = { &ra, &rb };
    int rows = count_rows(res, 2);
    TEST_CHECK(rows == 4 * 6 + 6);   /* add and relu overwrite fresh gradients: bwd_fresh too */
    /* relu 64x64 f32 into a fresh gradient: reads x and dy, writes dx */
    TEST_CHECK(rb.cases[0].has_fresh && rb.cases[0].phase[TG_BENCH_BWD_FRESH].bytes == 3.0 * 64 * 64 * 4);

    char path[] = "/tmp/tg_bench_test_XXXXXX";
    int fd = mkstemp(path);
    TEST_CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    TEST_CHECK(f && tg_bench_write_json(f, res, 2) == TG_OK);
    fclose(f);

    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    TEST_CHECK_MSG(root != NULL, "%s line %d", jerr.text, jerr.line);
    json_t *ctx = json_object_get(root, "context"), *list = json_object_get(root, "benchmarks");
    TEST_CHECK(json_is_string(json_object_get(ctx, "date")) && json_is_string(json_object_get(ctx, "host_name")));
    TEST_CHECK(json_is_integer(json_object_get(ctx, "num_cpus")) && json_is_integer(json_object_get(ctx, "mhz_per_cpu")));
    TEST_CHECK(json_is_array(json_object_get(ctx, "caches")) && json_is_array(json_object_get(ctx, "load_avg")));
    TEST_CHECK(json_integer_value(json_object_get(ctx, "json_schema_version")) == 1);
    TEST_CHECK(json_is_array(list) && (int)json_array_size(list) == rows);
    int good = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *e = json_array_get(list, i);
        const char *name = json_string_value(json_object_get(e, "name"));
        good += name && json_is_string(json_object_get(e, "run_name")) &&
                !strcmp(json_string_value(json_object_get(e, "run_type")), "iteration") &&
                json_integer_value(json_object_get(e, "iterations")) > 0 &&
                json_number_value(json_object_get(e, "real_time")) > 0 &&
                json_number_value(json_object_get(e, "cpu_time")) > 0 &&
                !strcmp(json_string_value(json_object_get(e, "time_unit")), "ns") &&
                json_is_number(json_object_get(e, "GFLOPS")) && json_is_number(json_object_get(e, "GBps")) &&
                json_is_number(json_object_get(e, "pct_peak"));
    }
    TEST_CHECK(good == rows);
    TEST_CHECK(!strcmp(json_string_value(json_object_get(json_array_get(list, 0), "name")), "add/f32/v0:3x4,3x4/fwd"));
    TEST_CHECK(!strcmp(json_string_value(json_object_get(json_array_get(list, rows - 1), "name")),
                       "relu/f32/64x64/engine_fwdbwd"));
    json_decref(root);

    /* CSV: a header and one row per measurement. */
    f = tmpfile();
    TEST_CHECK(f && tg_bench_write_csv(f, res, 2) == TG_OK);
    rewind(f);
    int lines = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        lines += ch == '\n';
    fclose(f);
    TEST_CHECK(lines == rows + 1);

    /* Against itself: nothing changes. */
    tg_bench_comparison cmp;
    TEST_CHECK(tg_bench_compare(path, res, 2, 0.1, &cmp) == TG_OK);
    TEST_CHECK(cmp.n_compared == rows && cmp.n_regressions == 0 && cmp.n_improvements == 0 && cmp.n_new == 0);
    tg_bench_comparison_free(&cmp);

    /* An injected 2x slowdown of one measurement, a 2x speed-up of another. */
    static tg_bench_result slow;
    slow = rb;
    slow.cases[0].phase[TG_BENCH_BWD].median_ns *= 2;
    slow.cases[0].phase[TG_BENCH_FWD].median_ns *= 0.5;
    const tg_bench_result *res2[2] = { &ra, &slow };
    TEST_CHECK(tg_bench_compare(path, res2, 2, 0.1, &cmp) == TG_OK);
    TEST_CHECK(cmp.n_compared == rows && cmp.n_regressions == 1 && cmp.n_improvements == 1);
    int found = 0;
    for (int i = 0; i < cmp.n_deltas; i++)
        if (cmp.deltas[i].regression) {
            found = !strcmp(cmp.deltas[i].name, "relu/f32/64x64/bwd");
            TEST_CLOSE(cmp.deltas[i].change, 1.0, 1e-6, 0);
        }
    TEST_CHECK(found);
    f = tmpfile();
    tg_bench_comparison_print(f, &cmp);
    TEST_CHECK(ftell(f) > 0);
    fclose(f);
    tg_bench_comparison_free(&cmp);
    /* A threshold above the change flags nothing. */
    TEST_CHECK(tg_bench_compare(path, res2, 2, 1.5, &cmp) == TG_OK && cmp.n_regressions == 0);
    tg_bench_comparison_free(&cmp);

    /* Bad baselines. */
    TEST_CHECK(tg_bench_compare("/nonexistent/base.json", res, 2, 0.1, &cmp) == TG_ERR_IO && cmp.message[0]);
    f = fopen(path, "w");
    fputs("{\"benchmarks\": [", f);
    fclose(f);
    TEST_CHECK(tg_bench_compare(path, res, 2, 0.1, &cmp) == TG_ERR_FORMAT);
    f = fopen(path, "w");
    fputs("{\"context\": {}}", f);
    fclose(f);
    TEST_CHECK(tg_bench_compare(path, res, 2, 0.1, &cmp) == TG_ERR_FORMAT && strstr(cmp.message, "benchmarks"));
    unlink(path);

    /* The table prints every timed phase. */
    f = tmpfile();
    tg_bench_print(f, &rb, 1);
    tg_bench_print_machine(f, &machine);
    TEST_CHECK(ftell(f) > 0);
    fclose(f);
}

int main(void)
{
    test_probe();
    test_samples();
    test_mismatch();
    test_matmul_reference();
    test_user_shapes();
    test_bad_args();
    test_json_and_baseline();
    return test_report("test_bench");
}
