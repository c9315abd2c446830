/* test_reference.c — every case of ../shared/reference/ops.json (PyTorch
 * float64 forward values and VJPs) against tapegrad, in f64 and f32: the
 * independent check on the ops' semantics. The gradient checker compares a
 * VJP with its own forward; this compares the forward itself.
 * Usage: test_reference PATH/ops.json */
#include "tapegrad.h"
#include "test.h"

#include <jansson.h>
#include <string.h>

static const char *sparam(json_t *p, const char *k, const char *dflt)
{
    json_t *v = json_object_get(p, k);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static double fparam(json_t *p, const char *k, double dflt)
{
    json_t *v = json_object_get(p, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static int axes_param(json_t *p, int *axes)
{
    json_t *a = json_object_get(p, "axes");
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) axes[i] = (int)json_integer_value(v);
    return (int)json_array_size(a);
}

static tg_reduction red_param(json_t *p)
{
    const char *r = sparam(p, "reduction", "mean");
    return strcmp(r, "sum") == 0 ? TG_REDUCE_SUM : strcmp(r, "none") == 0 ? TG_REDUCE_NONE : TG_REDUCE_MEAN;
}

static tg_tensor *load(tg_ctx *ctx, json_t *j, tg_dtype fdt)
{
    json_t *shape = json_object_get(j, "shape"), *data = json_object_get(j, "data");
    int64_t dims[TG_MAX_DIMS];
    int nd = (int)json_array_size(shape);
    for (int i = 0; i < nd; i++)
        dims[i] = json_integer_value(json_array_get(shape, (size_t)i));
    const char *dt = json_string_value(json_object_get(j, "dtype"));
    int is_int = dt && strncmp(dt, "int", 3) == 0;
    tg_tensor *t = tg_tensor_new(ctx, is_int ? TG_I32 : fdt, nd, dims);
    if (!t)
        return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
        json_t *v = json_array_get(data, (size_t)i);   /* masks come as booleans */
        tg_tensor_set(t, i, json_is_boolean(v) ? (double)json_is_true(v) : json_number_value(v));
    }
    return t;
}

/* Apply the case's op; NULL when the op is unknown here (a test failure). */
static tg_tensor *run(tg_ctx *ctx, const char *op, json_t *p, tg_tensor **in, int n_in)
{
    int axes[TG_MAX_DIMS], na;
    tg_tensor *a = in[0], *b = n_in > 1 ? in[1] : NULL;
#define IS(s) (strcmp(op, s) == 0)
    if (IS("add")) return tg_add(ctx, a, b);
    if (IS("sub")) return tg_sub(ctx, a, b);
    if (IS("mul")) return tg_mul(ctx, a, b);
    if (IS("div")) return tg_div(ctx, a, b);
    if (IS("pow")) return tg_pow(ctx, a, b);
    if (IS("maximum")) return tg_maximum(ctx, a, b);
    if (IS("minimum")) return tg_minimum(ctx, a, b);
    if (IS("neg")) return tg_neg(ctx, a);
    if (IS("exp")) return tg_exp(ctx, a);
    if (IS("log")) return tg_log(ctx, a);
    if (IS("sqrt")) return tg_sqrt(ctx, a);
    if (IS("abs")) return tg_abs(ctx, a);
    if (IS("square")) return tg_square(ctx, a);
    if (IS("clamp")) return tg_clamp(ctx, a, fparam(p, "min", 0), fparam(p, "max", 0));
    if (IS("sigmoid")) return tg_sigmoid(ctx, a);
    if (IS("tanh")) return tg_tanh(ctx, a);
    if (IS("relu")) return tg_relu(ctx, a);
    if (IS("leaky_relu")) return tg_leaky_relu(ctx, a, fparam(p, "negative_slope", 0.01));
    if (IS("elu")) return tg_elu(ctx, a, fparam(p, "alpha", 1.0));
    if (IS("softplus")) return tg_softplus(ctx, a);
    if (IS("silu")) return tg_silu(ctx, a);
    if (IS("gelu"))
        return tg_gelu(ctx, a, strcmp(sparam(p, "approximate", "none"), "tanh") == 0 ? TG_GELU_TANH : TG_GELU_ERF);
    if (IS("matmul")) return tg_matmul(ctx, a, b);
    if (IS("sum") || IS("mean") || IS("max") || IS("min") || IS("logsumexp") || IS("var")) {
        na = axes_param(p, axes);
        int keep = json_is_true(json_object_get(p, "keepdims"));
        if (IS("sum")) return tg_sum(ctx, a, axes, na, keep);
        if (IS("mean")) return tg_mean(ctx, a, axes, na, keep);
        if (IS("max")) return tg_max(ctx, a, axes, na, keep);
        if (IS("min")) return tg_min(ctx, a, axes, na, keep);
        if (IS("logsumexp")) return tg_logsumexp(ctx, a, axes, na, keep);
        return tg_var(ctx, a, axes, na, keep, (int)fparam(p, "correction", 1));
    }
    if (IS("softmax")) return tg_softmax(ctx, a, (int)fparam(p, "axis", -1));
    if (IS("log_softmax")) return tg_log_softmax(ctx, a, (int)fparam(p, "axis", -1));
    if (IS("permute")) {
        json_t *perm = json_object_get(p, "perm");
        int pm[TG_MAX_DIMS];
        for (size_t i = 0; i < json_array_size(perm); i++)
            pm[i] = (int)json_integer_value(json_array_get(perm, i));
        return tg_permute(ctx, a, pm);
    }
    if (IS("slice"))
        return tg_slice(ctx, a, (int)fparam(p, "axis", 0), (int64_t)fparam(p, "start", 0),
                        (int64_t)fparam(p, "stop", 0), (int64_t)fparam(p, "step", 1));
    if (IS("concat")) return tg_concat(ctx, in, n_in, (int)fparam(p, "axis", 0));
    if (IS("stack")) return tg_stack(ctx, in, n_in, (int)fparam(p, "axis", 0));
    if (IS("gather_rows")) return tg_gather_rows(ctx, a, b);
    if (IS("where")) return tg_where(ctx, a, b, in[2]);
    if (IS("cross_entropy")) return tg_cross_entropy(ctx, a, b, red_param(p));
    if (IS("bce_with_logits")) return tg_bce_with_logits(ctx, a, b, red_param(p));
    if (IS("mse")) return tg_mse_loss(ctx, a, b, red_param(p));
    if (IS("l1")) return tg_l1_loss(ctx, a, b, red_param(p));
    if (IS("huber")) return tg_huber_loss(ctx, a, b, fparam(p, "delta", 1.0), red_param(p));
#undef IS
    return NULL;
}

static double max_abs(json_t *data)
{
    double m = 0;
    size_t i;
    json_t *v;
    json_array_foreach(data, i, v) {
        double x = fabs(json_number_value(v));
        m = x > m ? x : m;
    }
    return m;
}

/* Compare t (data or grad) with the JSON tensor; returns 1 if all close. */
static int compare(const char *what, int k, const tg_tensor *t, int use_grad, json_t *ref, double rtol)
{
    json_t *shape = json_object_get(ref, "shape"), *data = json_object_get(ref, "data");
    int64_t dims[TG_MAX_DIMS];
    int nd = (int)json_array_size(shape);
    for (int i = 0; i < nd; i++)
        dims[i] = json_integer_value(json_array_get(shape, (size_t)i));
    if (!tg_shape_equal(t->ndim, t->shape, nd, dims)) {
        char a[TG_SHAPE_STR_MAX], b[TG_SHAPE_STR_MAX];
        fprintf(stderr, "  case %d %s: shape %s, expected %s\n", k, what,
                tg_shape_str(t->ndim, t->shape, a, sizeof a), tg_shape_str(nd, dims, b, sizeof b));
        return 0;
    }
    double scale = max_abs(data), atol = rtol * (scale > 1 ? scale : 1);
    for (int64_t i = 0; i < t->numel; i++) {
        double want = json_number_value(json_array_get(data, (size_t)i));
        double got = use_grad ? tg_tensor_grad_get(t, i) : tg_tensor_get(t, i);
        if (!(fabs(got - want) <= atol + rtol * fabs(want))) {
            fprintf(stderr, "  case %d %s[%lld]: %.17g, expected %.17g\n", k, what, (long long)i, got, want);
            return 0;
        }
    }
    return 1;
}

static void run_case(json_t *c, int k, tg_dtype dt)
{
    const char *op = json_string_value(json_object_get(c, "op"));
    json_t *params = json_object_get(c, "params");
    json_t *inputs = json_object_get(c, "inputs");
    double rtol = dt == TG_F64 ? 1e-12 : 1e-5;  /* all pass at 1e-13 and 4e-6 today */
    tg_ctx *ctx = tg_ctx_new(&(tg_ctx_opts){ .seed = 1 });
    tg_tensor *in[TG_MAX_IN];
    int n_in = (int)json_array_size(inputs);
    for (int i = 0; i < n_in; i++) {
        in[i] = load(ctx, json_array_get(inputs, (size_t)i), dt);
        if (in[i] && tg_dtype_is_float(in[i]->dtype))
            tg_tensor_requires_grad(in[i]);
    }
    tg_tensor *out = run(ctx, op, params, in, n_in);
    char what[64];
    snprintf(what, sizeof what, "%s/%s", op, tg_dtype_name(dt));
    TEST_CHECK_MSG(out != NULL, "case %d %s: %s", k, what, tg_ctx_error(ctx));
    if (!out) {
        tg_ctx_free(ctx);
        return;
    }
    TEST_CHECK_MSG(compare(what, k, out, 0, json_object_get(c, "output"), rtol), "case %d %s forward", k, what);
    tg_tensor *seed = load(ctx, json_object_get(c, "upstream_grad"), dt);
    if (seed && seed->numel == out->numel && seed->ndim != out->ndim) {
        /* A scalar upstream gradient given as shape [] or [1]. */
        seed = tg_tensor_fill(ctx, dt, out->ndim, out->shape, tg_tensor_get(seed, 0));
    }
    tg_status st = tg_backward_seed(ctx, out, seed);
    TEST_CHECK_MSG(st == TG_OK, "case %d %s backward: %s", k, what, tg_ctx_error(ctx));
    json_t *grads = json_object_get(c, "input_grads");
    for (int i = 0; i < n_in && st == TG_OK; i++) {
        json_t *g = json_array_get(grads, (size_t)i);
        if (!g || json_is_null(g))
            continue;
        char w2[128];
        snprintf(w2, sizeof w2, "%s d(input %d)", what, i);
        TEST_CHECK_MSG(compare(w2, k, in[i], 1, g, rtol), "case %d %s", k, w2);
    }
    tg_ctx_free(ctx);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "../shared/reference/ops.json";
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    TEST_CHECK_MSG(root != NULL, "%s: %s (line %d)", path, err.text, err.line);
    if (!root)
        return test_report("test_reference");
    json_t *cases = json_object_get(root, "cases");
    TEST_CHECK(json_array_size(cases) > 50);
    size_t k;
    json_t *c;
    json_array_foreach(cases, k, c) {
        run_case(c, (int)k, TG_F64);
        run_case(c, (int)k, TG_F32);
    }
    json_decref(root);
    return test_report("test_reference");
}
