/* test_gradcheck.c — the gradient checker catches wrong VJPs and says where.
 * Every op here is defined in this file: a correct elementwise product, and
 * copies of it with one bug each (scaled, overwriting, skipping an element,
 * writing out of bounds, reading uninitialised scratch, mishandling aliasing,
 * ignoring NULL grads, nondeterministic), a relu-like op at its kink, a large
 * op for the directional path, and composites through the tape. */
#include "tapegrad.h"
#include "test.h"

#include <math.h>
#include <string.h>

#define DISPATCH(dt, T, ...)                                     \
    do {                                                         \
        if ((dt) == TG_F32) { typedef float T; __VA_ARGS__ }     \
        else                { typedef double T; __VA_ARGS__ }    \
    } while (0)

static int has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

/* ---- shared pieces: y = a * b, same shape ---------------------------------- */

static tg_status shape_same(const tg_node *n, tg_dtype *dt, int *nd, int64_t *sh)
{
    for (int i = 1; i < n->n_in; i++)
        if (!tg_shape_equal(n->in[0]->ndim, n->in[0]->shape, n->in[i]->ndim, n->in[i]->shape))
            return tg_op_fail(n, TG_ERR_SHAPE, "shapes differ");
    *dt = n->in[0]->dtype;
    *nd = n->in[0]->ndim;
    memcpy(sh, n->in[0]->shape, sizeof(int64_t) * (size_t)*nd);
    return TG_OK;
}

static tg_status mul_forward(tg_node *n)
{
    size_t len = (size_t)n->out->numel;
    DISPATCH(n->out->dtype, T, {
        const T *a = n->in[0]->data, *b = n->in[1]->data;
        T *y = n->out->data;
        for (size_t i = 0; i < len; i++)
            y[i] = a[i] * b[i];
    });
    return TG_OK;
}

/* Values in (-1, 1): with |x| < 1 every step is h = c, so the element with
 * the largest |gradient| is the one with the largest error / tolerance. */
static tg_status sample2(tg_node *n, tg_dtype dt, int v)
{
    static const int64_t shapes[][2] = { {3, 4}, {1, 5} };
    if (v < 0 || v > 1)
        return TG_ERR_ARG;
    n->n_in = 2;
    n->in[0] = tg_tensor_rand(n->ctx, dt, 2, shapes[v], -1, 1);
    n->in[1] = tg_tensor_rand(n->ctx, dt, 2, shapes[v], -1, 1);
    return n->in[0] && n->in[1] ? TG_OK : tg_ctx_status(n->ctx);
}

/* What the last VJP saw: the cotangent and the inputs (read only). */
static double seen_dy[64], seen_a[64], seen_b[64];

static void see(const tg_node *n)
{
    for (int64_t i = 0; i < n->out->numel && i < 64; i++) {
        seen_dy[i] = tg_tensor_grad_get(n->out, i);
        seen_a[i] = tg_tensor_get(n->in[0], i);
        seen_b[i] = tg_tensor_get(n->in[1], i);
    }
}

/* The correct VJP, with da and db scaled (1 = correct). */
static void mul_vjp(tg_node *n, double sa, double sb)
{
    see(n);
    size_t len = (size_t)n->out->numel;
    DISPATCH(n->out->dtype, T, {
        const T *a = n->in[0]->data, *b = n->in[1]->data, *dy = n->out->grad;
        T *da = n->in[0]->grad, *db = n->in[1]->grad;
        if (da)
            for (size_t i = 0; i < len; i++)
                da[i] += (T)(sa * (dy[i] * b[i]));
        if (db)
            for (size_t i = 0; i < len; i++)
                db[i] += (T)(sb * (dy[i] * a[i]));
    });
}

static void mul_backward(tg_node *n) { mul_vjp(n, 1, 1); }
static void scaled_backward(tg_node *n) { mul_vjp(n, 1, 1.01); }

static void overwrite_backward(tg_node *n)     /* "=" instead of "+=" */
{
    size_t len = (size_t)n->out->numel;
    DISPATCH(n->out->dtype, T, {
        const T *a = n->in[0]->data, *b = n->in[1]->data, *dy = n->out->grad;
        T *da = n->in[0]->grad, *db = n->in[1]->grad;
        for (size_t i = 0; i < len; i++) {
            if (da) da[i] = dy[i] * b[i];
            if (db) db[i] += dy[i] * a[i];
        }
    });
}

static void skip_backward(tg_node *n)          /* forgets element 7 of da */
{
    see(n);
    size_t len = (size_t)n->out->numel;
    DISPATCH(n->out->dtype, T, {
        const T *a = n->in[0]->data, *b = n->in[1]->data, *dy = n->out->grad;
        T *da = n->in[0]->grad, *db = n->in[1]->grad;
        for (size_t i = 0; i < len; i++) {
            if (da && i != 7) da[i] += dy[i] * b[i];
            if (db) db[i] += dy[i] * a[i];
        }
    });
}

static void oob_backward(tg_node *n)           /* writes one past the end of db */
{
    mul_backward(n);
    DISPATCH(n->out->dtype, T, {
        T *db = n->in[1]->grad;
        if (db) db[n->out->numel] = (T)1;
    });
}

static void write_input_backward(tg_node *n)   /* scribbles on input data */
{
    mul_backward(n);
    DISPATCH(n->out->dtype, T, { ((T *)n->in[1]->data)[2] += (T)1; });
}

static void uninit_backward(tg_node *n)        /* scratch with its last element unset */
{
    size_t len = (size_t)n->out->numel;
    DISPATCH(n->out->dtype, T, {
        const T *a = n->in[0]->data, *b = n->in[1]->data, *dy = n->out->grad;
        T *da = n->in[0]->grad, *db = n->in[1]->grad;
        T *tmp = tg_node_scratch(n, len * sizeof(T));
        if (!tmp)
            return;
        for (size_t i = 0; i + 1 < len; i++)
            tmp[i] = dy[i] * b[i];
        for (size_t i = 0; i < len; i++) {
            if (da) da[i] += tmp[i];
            if (db) db[i] += dy[i] * a[i];
        }
    });
}

static void alias_backward(tg_node *n)         /* reads both grads, then writes both */
{
    size_t len = (size_t)n->out->numel;
    DISPATCH(n->out->dtype, T, {
        const T *a = n->in[0]->data, *b = n->in[1]->data, *dy = n->out->grad;
        T *da = n->in[0]->grad, *db = n->in[1]->grad;
        if (!da || !db) {
            mul_backward(n);
            return;
        }
        for (size_t i = 0; i < len; i++) {
            T ga = da[i], gb = db[i];
            da[i] = ga + dy[i] * b[i];
            db[i] = gb + dy[i] * a[i];
        }
    });
}

static void nullgrad_backward(tg_node *n)      /* db only computed when da is wanted */
{
    size_t len = (size_t)n->out->numel;
    DISPATCH(n->out->dtype, T, {
        const T *a = n->in[0]->data, *b = n->in[1]->data, *dy = n->out->grad;
        T *da = n->in[0]->grad, *db = n->in[1]->grad;
        if (da)
            for (size_t i = 0; i < len; i++) {
                da[i] += dy[i] * b[i];
                if (db) db[i] += dy[i] * a[i];
            }
    });
}

static void nondet_backward(tg_node *n)        /* a little different every call */
{
    static int calls;
    mul_backward(n);
    calls++;
    DISPATCH(n->out->dtype, T, {
        T *da = n->in[0]->grad;
        if (da) da[0] += (T)(calls * 1e-13);
    });
}

static tg_status nondet_forward(tg_node *n)
{
    static int calls;
    mul_forward(n);
    tg_tensor_set(n->out, 0, tg_tensor_get(n->out, 0) + 1e-12 * ++calls);
    return TG_OK;
}

static tg_status nan_forward(tg_node *n)
{
    mul_forward(n);
    tg_tensor_set(n->out, 3, NAN);
    return TG_OK;
}

static tg_status failing_forward(tg_node *n)
{
    return tg_op_fail(n, TG_ERR_ARG, "boom on purpose");
}

static tg_status f32_off_forward(tg_node *n)   /* the f32 path computes something else */
{
    mul_forward(n);
    if (n->out->dtype == TG_F32)
        for (int64_t i = 0; i < n->out->numel; i++)
            ((float *)n->out->data)[i] += 0.01f;
    return TG_OK;
}

#define MUL_LIKE(nm, fwd, bwd) \
    { .name = nm, .n_in = 2, .shape = shape_same, .forward = fwd, .backward = bwd, \
      .sample = sample2, .n_samples = 2 }

static const tg_op_def mul_def       = MUL_LIKE("t_mul", mul_forward, mul_backward);
static const tg_op_def scaled_def    = MUL_LIKE("t_mul_scaled", mul_forward, scaled_backward);
static const tg_op_def overwrite_def = MUL_LIKE("t_mul_overwrite", mul_forward, overwrite_backward);
static const tg_op_def skip_def      = MUL_LIKE("t_mul_skip", mul_forward, skip_backward);
static const tg_op_def oob_def       = MUL_LIKE("t_mul_oob", mul_forward, oob_backward);
static const tg_op_def wrin_def      = MUL_LIKE("t_mul_write_input", mul_forward, write_input_backward);
static const tg_op_def uninit_def    = MUL_LIKE("t_mul_uninit", mul_forward, uninit_backward);
static const tg_op_def alias_def     = MUL_LIKE("t_mul_alias", mul_forward, alias_backward);
static const tg_op_def nullgrad_def  = MUL_LIKE("t_mul_nullgrad", mul_forward, nullgrad_backward);
static const tg_op_def nondet_def    = MUL_LIKE("t_mul_nondet", mul_forward, nondet_backward);
static const tg_op_def fnondet_def   = MUL_LIKE("t_mul_fwd_nondet", nondet_forward, mul_backward);
static const tg_op_def nan_def       = MUL_LIKE("t_mul_nan", nan_forward, mul_backward);
static const tg_op_def failing_def   = MUL_LIKE("t_mul_failing", failing_forward, mul_backward);
static const tg_op_def f32off_def    = MUL_LIKE("t_mul_f32off", f32_off_forward, mul_backward);
static const tg_op_def nosample_def  = { .name = "t_nosample", .n_in = 2, .shape = shape_same,
                                         .forward = mul_forward, .backward = mul_backward };

static tg_status check(const tg_op_def *def, const tg_gradcheck_opts *o, tg_gradcheck_report *r)
{
    tg_status st = tg_gradcheck_op(def, o, r);
    if (st != TG_OK || !r->passed)
        fprintf(stderr, "  (%s) %s\n", def->name, r->message);
    return st;
}

static void test_correct_passes(void)
{
    tg_gradcheck_report r;
    TEST_CHECK(check(&mul_def, NULL, &r) == TG_OK);
    TEST_CHECK(r.passed);
    TEST_CHECK(r.n_variants == 2);
    TEST_CHECK(r.n_checked == 2 * 12 + 2 * 5 + 12 + 5);   /* both inputs, plus the alias pair */
    TEST_CHECK(r.n_nondiff == 0);
    TEST_CHECK(r.n_alias_pairs == 2);
    TEST_CHECK(r.contract_failures == 0);
    TEST_CHECK(r.max_rel_err < 1e-8);
    TEST_CHECK(has(r.message, "t_mul f64: PASS"));
    TEST_CHECK(r.dtype == TG_F64);

    tg_gradcheck_opts o = { .f32 = 1 };
    TEST_CHECK(check(&mul_def, &o, &r) == TG_OK);
    TEST_CHECK(r.passed && r.dtype == TG_F32);
    o = (tg_gradcheck_opts){ .four_point = 1, .seed = 99 };
    TEST_CHECK(check(&mul_def, &o, &r) == TG_OK && r.passed);
    /* The registered exp goes through the same path. */
    TEST_CHECK(check(tg_op_find("exp"), NULL, &r) == TG_OK && r.passed);
}

static void test_scaled_vjp_named_precisely(void)
{
    tg_gradcheck_report r;
    tg_gradcheck_opts o = { .single_variant = 1, .variant = 0, .skip_contracts = TG_GC_ALIAS };
    TEST_CHECK(tg_gradcheck_op(&scaled_def, &o, &r) == TG_OK);
    TEST_CHECK(!r.passed);
    TEST_CHECK(r.contract_failures == 0);
    TEST_CHECK(r.n_failed >= 1 && r.n_failed <= 12);
    TEST_CHECK(r.n_worst == TG_GC_WORST);
    const tg_gradcheck_elem *e = &r.worst[0];
    TEST_CHECK(e->variant == 0 && e->input == 1 && e->alias == -1 && e->dir == -1);
    TEST_CHECK(e->index >= 0 && e->index < 12);
    TEST_CHECK(e->ndim == 2 && e->coord[0] == e->index / 4 && e->coord[1] == e->index % 4);
    /* d<u, a*b>/db_k = u_k a_k: the numeric value is that, the analytic 1.01 times it. */
    int64_t k = e->index;
    double g = seen_dy[k] * seen_a[k];
    TEST_CLOSE(e->numeric, g, 1e-12, 1e-8);
    TEST_CLOSE(e->analytic, 1.01 * g, 1e-15, 1e-14);
    TEST_CLOSE(e->abs_err, 0.01 * fabs(g), 1e-12, 1e-6);
    TEST_CHECK(e->step > 0 && e->step < 1e-4);
    /* The worst is the element with the largest |gradient|. */
    for (int64_t j = 0; j < 12; j++)
        TEST_CHECK(fabs(seen_dy[j] * seen_a[j]) <= fabs(g));
    char where[64];
    snprintf(where, sizeof where, "variant 0 input 1 [%lld, %lld] (flat %lld)",
             (long long)e->coord[0], (long long)e->coord[1], (long long)k);
    TEST_CHECK_MSG(has(r.message, where), "%s", r.message);
    TEST_CHECK(has(r.message, "t_mul_scaled f64: FAIL"));
    /* Input 0's gradient is right: no input-0 element fails. */
    for (int i = 0; i < r.n_worst; i++)
        if (r.worst[i].input == 0)
            TEST_CHECK(r.worst[i].abs_err <= r.worst[i].tol);

    /* f32 catches it too, and so does aliasing. */
    o.f32 = 1;
    o.skip_contracts = 0;
    TEST_CHECK(tg_gradcheck_op(&scaled_def, &o, &r) == TG_OK);
    TEST_CHECK(!r.passed && r.worst[0].input == 1);
    TEST_CHECK(r.contract_failures & TG_GC_ALIAS);
}

static void test_overwrite_fails_accumulate(void)
{
    tg_gradcheck_report r;
    TEST_CHECK(tg_gradcheck_op(&overwrite_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed);
    TEST_CHECK(r.contract_failures & TG_GC_ACCUMULATE);
    TEST_CHECK(r.n_failed == 0 || (r.contract_failures & TG_GC_ALIAS));  /* zeroed runs are right */
    TEST_CHECK_MSG(has(r.message, "accumulate") && has(r.message, "input 0"), "%s", r.message);
    TEST_CHECK(has(r.contract_detail, "overwrites"));
    /* Skipping that contract, the remaining failure is the aliasing one
     * (b's contribution overwrites a's when both are one tensor). */
    tg_gradcheck_opts o = { .skip_contracts = TG_GC_ACCUMULATE | TG_GC_ALIAS };
    TEST_CHECK(tg_gradcheck_op(&overwrite_def, &o, &r) == TG_OK && r.passed);
}

static void test_skipped_element_named(void)
{
    tg_gradcheck_report r;
    tg_gradcheck_opts o = { .single_variant = 1, .variant = 0, .skip_contracts = TG_GC_ALIAS };
    TEST_CHECK(tg_gradcheck_op(&skip_def, &o, &r) == TG_OK);
    TEST_CHECK(!r.passed);
    TEST_CHECK(r.n_failed == 1);
    TEST_CHECK(r.worst[0].input == 0 && r.worst[0].index == 7);
    TEST_CHECK(r.worst[0].coord[0] == 1 && r.worst[0].coord[1] == 3);
    TEST_CHECK(r.worst[0].analytic == 0.0);
    TEST_CLOSE(r.worst[0].numeric, seen_dy[7] * seen_b[7], 1e-12, 1e-8);
    TEST_CHECK_MSG(has(r.message, "input 0 [1, 3] (flat 7)"), "%s", r.message);
    TEST_CHECK(has(r.message, "1 of 24 wrong"));
}

static void test_out_of_bounds_write(void)
{
    tg_gradcheck_report r;
    TEST_CHECK(tg_gradcheck_op(&oob_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && (r.contract_failures & TG_GC_WRITES));
    TEST_CHECK_MSG(has(r.contract_detail, "past the end of input 1's gradient"), "%s", r.contract_detail);
    TEST_CHECK(has(r.message, "writes"));

    TEST_CHECK(tg_gradcheck_op(&wrin_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && (r.contract_failures & TG_GC_WRITES));
    TEST_CHECK_MSG(has(r.contract_detail, "input 1's data changed at element 2"), "%s", r.contract_detail);
}

static void test_uninit_scratch(void)
{
    tg_gradcheck_report r;
    TEST_CHECK(tg_gradcheck_op(&uninit_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && (r.contract_failures & TG_GC_UNINIT));
    TEST_CHECK(has(r.message, "uninit"));
}

static void test_alias_bug(void)
{
    tg_gradcheck_report r;
    TEST_CHECK(tg_gradcheck_op(&alias_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed);
    TEST_CHECK_MSG(r.contract_failures == TG_GC_ALIAS, "%#x", r.contract_failures);
    TEST_CHECK(r.worst[0].input == 0 && r.worst[0].alias == 1);
    TEST_CHECK_MSG(has(r.message, "input 0 (same tensor as input 1)"), "%s", r.message);
    /* With aliasing the right answer is d/dx <u, x*x> = 2 u x; the bug keeps only u x. */
    TEST_CLOSE(r.worst[0].analytic, 0.5 * r.worst[0].numeric, 1e-9, 1e-6);
}

static void test_other_contracts(void)
{
    tg_gradcheck_report r;
    TEST_CHECK(tg_gradcheck_op(&nullgrad_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && (r.contract_failures & TG_GC_NULL_GRAD));
    TEST_CHECK_MSG(has(r.contract_detail, "input 1"), "%s", r.contract_detail);

    TEST_CHECK(tg_gradcheck_op(&nondet_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && (r.contract_failures & TG_GC_DETERMINISM));

    TEST_CHECK(tg_gradcheck_op(&fnondet_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && (r.contract_failures & TG_GC_FWD_DETERMINISM));

    TEST_CHECK(tg_gradcheck_op(&nan_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && (r.contract_failures & TG_GC_FWD_FINITE));
    TEST_CHECK_MSG(has(r.contract_detail, "output element 3 is nan"), "%s", r.contract_detail);

    tg_gradcheck_opts o = { .f32 = 1 };
    TEST_CHECK(tg_gradcheck_op(&f32off_def, &o, &r) == TG_OK);
    TEST_CHECK(!r.passed && r.contract_failures == TG_GC_FWD_F32);
    TEST_CHECK(tg_gradcheck_op(&f32off_def, NULL, &r) == TG_OK && r.passed);   /* f64 is right */
}

static void test_own_failures_are_status(void)
{
    tg_gradcheck_report r;
    TEST_CHECK(tg_gradcheck_op(&nosample_def, NULL, &r) == TG_ERR_ARG);
    TEST_CHECK(!r.passed && has(r.message, "t_nosample") && has(r.message, "no sample"));
    TEST_CHECK(tg_gradcheck_op(&failing_def, NULL, &r) == TG_ERR_ARG);
    TEST_CHECK_MSG(has(r.message, "boom on purpose") && has(r.message, "own sample"), "%s", r.message);
    tg_gradcheck_opts o = { .single_variant = 1, .variant = 2 };
    TEST_CHECK(tg_gradcheck_op(&mul_def, &o, &r) == TG_ERR_ARG && has(r.message, "variant 2"));
    TEST_CHECK(tg_gradcheck_op(NULL, NULL, &r) == TG_ERR_ARG);
    TEST_CHECK(tg_gradcheck_op(&mul_def, NULL, NULL) == TG_ERR_ARG);
}

/* ---- relu-like: kinks at 0 -------------------------------------------------- */

static tg_status shape1(const tg_node *n, tg_dtype *dt, int *nd, int64_t *sh)
{
    *dt = n->in[0]->dtype;
    *nd = n->in[0]->ndim;
    memcpy(sh, n->in[0]->shape, sizeof(int64_t) * (size_t)*nd);
    return TG_OK;
}

static tg_status relu_forward(tg_node *n)
{
    for (int64_t i = 0; i < n->out->numel; i++)
        tg_tensor_set(n->out, i, fmax(0.0, tg_tensor_get(n->in[0], i)));
    return TG_OK;
}

static void relu_vjp(tg_node *n, double at0)
{
    tg_tensor *x = n->in[0];
    DISPATCH(x->dtype, T, {
        T *dx = x->grad;
        const T *xv = x->data, *dy = n->out->grad;
        if (dx)
            for (int64_t i = 0; i < x->numel; i++)
                dx[i] += xv[i] > 0 ? dy[i] : xv[i] == 0 ? (T)(at0 * dy[i]) : 0;
    });
}

static void relu_backward(tg_node *n) { relu_vjp(n, 0); }
static void relu_bad_backward(tg_node *n) { relu_vjp(n, 3); }   /* 3 dy: no subgradient */

/* Half the elements exactly at the kink. */
static tg_status relu_sample(tg_node *n, tg_dtype dt, int v)
{
    static const double xs[10] = { -0.7, 0, 0.3, 0, 1.2, -0.2, 0, 0.5, 0, 0 };
    if (v != 0)
        return TG_ERR_ARG;
    n->n_in = 1;
    n->in[0] = tg_tensor_new(n->ctx, dt, TG_DIMS(2, 5));
    if (!n->in[0])
        return tg_ctx_status(n->ctx);
    for (int i = 0; i < 10; i++)
        tg_tensor_set(n->in[0], i, xs[i]);
    return TG_OK;
}

static const tg_op_def relu_def = { .name = "t_relu", .n_in = 1, .shape = shape1,
    .forward = relu_forward, .backward = relu_backward, .sample = relu_sample, .n_samples = 1 };
static const tg_op_def relu_bad_def = { .name = "t_relu_bad", .n_in = 1, .shape = shape1,
    .forward = relu_forward, .backward = relu_bad_backward, .sample = relu_sample, .n_samples = 1 };

static void test_kink_is_nondiff(void)
{
    tg_gradcheck_report r;
    TEST_CHECK(check(&relu_def, NULL, &r) == TG_OK);
    TEST_CHECK(r.passed);
    TEST_CHECK(r.n_nondiff == 5 && r.n_checked == 5);
    TEST_CHECK(has(r.message, "5 non-differentiable"));
    tg_gradcheck_opts o = { .four_point = 1 };
    TEST_CHECK(check(&relu_def, &o, &r) == TG_OK && r.passed && r.n_nondiff == 5);
    o = (tg_gradcheck_opts){ .f32 = 1 };
    TEST_CHECK(check(&relu_def, &o, &r) == TG_OK && r.passed && r.n_nondiff == 5);
    /* A value outside [left slope, right slope] at the kink is still wrong. */
    TEST_CHECK(tg_gradcheck_op(&relu_bad_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && r.n_failed == 5 && r.n_nondiff == 0);
    TEST_CHECK(r.worst[0].index == 1 || r.worst[0].index == 3 || r.worst[0].index >= 6);
}

/* ---- large inputs: y = x sin(x), 40x40 -------------------------------------- */

static tg_status xsin_forward(tg_node *n)
{
    for (int64_t i = 0; i < n->out->numel; i++) {
        double x = tg_tensor_get(n->in[0], i);
        tg_tensor_set(n->out, i, x * sin(x));
    }
    return TG_OK;
}

static void xsin_vjp(tg_node *n, int wrong_at)
{
    tg_tensor *x = n->in[0];
    DISPATCH(x->dtype, T, {
        T *dx = x->grad;
        const T *xv = x->data, *dy = n->out->grad;
        if (dx)
            for (int64_t i = 0; i < x->numel; i++)
                dx[i] += dy[i] * (T)(sin(xv[i]) + (i == wrong_at ? 0 : xv[i] * cos(xv[i])));
    });
}

static void xsin_backward(tg_node *n) { xsin_vjp(n, -1); }
static void xsin_bad_backward(tg_node *n) { xsin_vjp(n, 321); }

static tg_status big_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v != 0)
        return TG_ERR_ARG;
    n->n_in = 1;
    n->in[0] = tg_tensor_rand(n->ctx, dt, TG_DIMS(40, 40), -3, 3);
    return n->in[0] ? TG_OK : tg_ctx_status(n->ctx);
}

static const tg_op_def xsin_def = { .name = "t_xsin", .n_in = 1, .shape = shape1,
    .forward = xsin_forward, .backward = xsin_backward, .sample = big_sample, .n_samples = 1 };
static const tg_op_def xsin_bad_def = { .name = "t_xsin_bad", .n_in = 1, .shape = shape1,
    .forward = xsin_forward, .backward = xsin_bad_backward, .sample = big_sample, .n_samples = 1 };

static void test_directional(void)
{
    tg_gradcheck_report r;
    TEST_CHECK(check(&xsin_def, NULL, &r) == TG_OK);
    TEST_CHECK(r.passed && r.n_checked == 8);
    TEST_CHECK(r.worst[0].dir >= 0 && r.worst[0].dir < 8 && r.worst[0].index == -1);
    tg_gradcheck_opts o = { .n_dirs = 3, .four_point = 1 };
    TEST_CHECK(check(&xsin_def, &o, &r) == TG_OK && r.passed && r.n_checked == 3);
    o = (tg_gradcheck_opts){ .max_full = 2000 };       /* every element instead */
    TEST_CHECK(check(&xsin_def, &o, &r) == TG_OK && r.passed && r.n_checked == 1600);
    o = (tg_gradcheck_opts){ .f32 = 1 };
    TEST_CHECK(check(&xsin_def, &o, &r) == TG_OK && r.passed);

    /* One wrong element out of 1600 still shows along random directions. */
    TEST_CHECK(tg_gradcheck_op(&xsin_bad_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && r.n_failed >= 6);
    TEST_CHECK(has(r.message, "direction"));
    o = (tg_gradcheck_opts){ .max_full = 2000 };
    TEST_CHECK(tg_gradcheck_op(&xsin_bad_def, &o, &r) == TG_OK);
    TEST_CHECK(!r.passed && r.n_failed == 1 && r.worst[0].index == 321);
    TEST_CHECK(r.worst[0].coord[0] == 8 && r.worst[0].coord[1] == 1);
}

/* ---- ops with RNG and integer inputs ---------------------------------------- */

static tg_status dropout_forward(tg_node *n)       /* y = x * m / 0.5, m ~ Bernoulli(0.5) */
{
    int64_t len = n->out->numel;
    unsigned char *m = tg_ctx_alloc(n->ctx, (size_t)len, "t_dropout");
    if (!m)
        return tg_ctx_status(n->ctx);
    for (int64_t i = 0; i < len; i++) {
        m[i] = tg_rng_uniform(tg_ctx_rng(n->ctx)) < 0.5;
        tg_tensor_set(n->out, i, m[i] ? 2 * tg_tensor_get(n->in[0], i) : 0);
    }
    n->saved = m;
    return TG_OK;
}

static void dropout_backward(tg_node *n)
{
    const unsigned char *m = n->saved;
    tg_tensor *x = n->in[0];
    DISPATCH(x->dtype, T, {
        T *dx = x->grad;
        const T *dy = n->out->grad;
        if (dx)
            for (int64_t i = 0; i < x->numel; i++)
                dx[i] += m[i] ? 2 * dy[i] : 0;
    });
}

static tg_status one_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v != 0)
        return TG_ERR_ARG;
    n->n_in = 1;
    n->in[0] = tg_tensor_rand(n->ctx, dt, TG_DIMS(4, 6), -1, 1);
    return n->in[0] ? TG_OK : tg_ctx_status(n->ctx);
}

static const tg_op_def dropout_def = { .name = "t_dropout", .n_in = 1, .shape = shape1,
    .forward = dropout_forward, .backward = dropout_backward, .sample = one_sample, .n_samples = 1 };

/* y = x * mask, mask an i32 input that never gets a gradient */
static tg_status masked_forward(tg_node *n)
{
    for (int64_t i = 0; i < n->out->numel; i++)
        tg_tensor_set(n->out, i, tg_tensor_get(n->in[0], i) * tg_tensor_get(n->in[1], i));
    return TG_OK;
}

static void masked_backward(tg_node *n)
{
    tg_tensor *x = n->in[0];
    const int32_t *m = n->in[1]->data;
    TEST_CHECK(n->in[1]->grad == NULL);
    DISPATCH(x->dtype, T, {
        T *dx = x->grad;
        const T *dy = n->out->grad;
        if (dx)
            for (int64_t i = 0; i < x->numel; i++)
                dx[i] += dy[i] * (T)m[i];
    });
}

static tg_status masked_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v != 0)
        return TG_ERR_ARG;
    n->n_in = 2;
    n->in[0] = tg_tensor_rand(n->ctx, dt, TG_DIMS(3, 3), -1, 1);
    n->in[1] = tg_tensor_new(n->ctx, TG_I32, TG_DIMS(3, 3));
    if (!n->in[0] || !n->in[1])
        return tg_ctx_status(n->ctx);
    for (int i = 0; i < 9; i++)
        tg_tensor_set(n->in[1], i, i % 3 == 0 ? 0 : 1);
    return TG_OK;
}

static const tg_op_def masked_def = { .name = "t_masked", .n_in = 2, .nondiff = 1u << 1,
    .shape = shape_same, .forward = masked_forward, .backward = masked_backward,
    .sample = masked_sample, .n_samples = 1 };

/* Without a VJP: floor (zero gradient, right) and x sin x (forgotten VJP). */
static tg_status floor_forward(tg_node *n)
{
    for (int64_t i = 0; i < n->out->numel; i++)
        tg_tensor_set(n->out, i, floor(4 * tg_tensor_get(n->in[0], i)));
    return TG_OK;
}

static const tg_op_def floor_def = { .name = "t_floor", .n_in = 1, .shape = shape1,
    .forward = floor_forward, .sample = one_sample, .n_samples = 1 };
static const tg_op_def novjp_def = { .name = "t_xsin_novjp", .n_in = 1, .shape = shape1,
    .forward = xsin_forward, .sample = one_sample, .n_samples = 1 };

static void test_rng_and_integer_inputs(void)
{
    tg_gradcheck_report r;
    TEST_CHECK(check(&dropout_def, NULL, &r) == TG_OK && r.passed && r.n_checked == 24);
    tg_gradcheck_opts o = { .f32 = 1 };
    TEST_CHECK(check(&dropout_def, &o, &r) == TG_OK && r.passed);
    TEST_CHECK(check(&masked_def, NULL, &r) == TG_OK && r.passed);
    TEST_CHECK(r.n_checked == 9 && r.n_alias_pairs == 0);

    TEST_CHECK(check(&floor_def, NULL, &r) == TG_OK && r.passed && r.n_checked == 24);
    TEST_CHECK(tg_gradcheck_op(&novjp_def, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && r.n_failed > 20 && r.worst[0].analytic == 0.0);
}

/* ---- composites through the tape ------------------------------------------- */

/* f(a, b) = op(exp(a), b) with op = ud */
static tg_tensor *composite(tg_ctx *ctx, tg_tensor *const *in, int n_in, void *ud)
{
    TEST_CHECK(n_in == 2);
    tg_tensor *args[2] = { tg_exp(ctx, in[0]), in[1] };
    return args[0] ? tg_apply(ctx, (const tg_op_def *)ud, args, 2, NULL, NULL) : NULL;
}

static tg_tensor *failing_fn(tg_ctx *ctx, tg_tensor *const *in, int n_in, void *ud)
{
    (void)ud, (void)n_in;
    return tg_apply(ctx, &failing_def, (tg_tensor *[]){ in[0], in[0] }, 2, NULL, NULL);
}

static tg_tensor *relu_fn(tg_ctx *ctx, tg_tensor *const *in, int n_in, void *ud)
{
    (void)ud, (void)n_in;
    return tg_apply(ctx, &relu_def, in, 1, NULL, NULL);
}

static void test_composite(void)
{
    tg_ctx *ctx = tg_ctx_new(NULL);
    tg_tensor *in[2] = { tg_tensor_rand(ctx, TG_F64, TG_DIMS(2, 3), -1, 1),
                         tg_tensor_rand(ctx, TG_F32, TG_DIMS(2, 3), -1, 1) };
    tg_gradcheck_report r;
    TEST_CHECK(tg_gradcheck_fn_check(composite, (void *)&mul_def, in, 2, NULL, &r) == TG_OK);
    TEST_CHECK_MSG(r.passed, "%s", r.message);
    TEST_CHECK(r.n_checked == 12 && has(r.message, "fn f64: PASS"));
    tg_gradcheck_opts o = { .f32 = 1 };
    TEST_CHECK(tg_gradcheck_fn_check(composite, (void *)&mul_def, in, 2, &o, &r) == TG_OK);
    TEST_CHECK_MSG(r.passed, "%s", r.message);

    TEST_CHECK(tg_gradcheck_fn_check(composite, (void *)&scaled_def, in, 2, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && r.worst[0].input == 1 && r.worst[0].variant == -1);
    TEST_CHECK_MSG(has(r.message, "fn f64: FAIL: input 1 ["), "%s", r.message);
    TEST_CLOSE(r.worst[0].analytic, 1.01 * r.worst[0].numeric, 1e-12, 1e-7);
    tg_tensor *in34[2] = { tg_tensor_rand(ctx, TG_F64, TG_DIMS(3, 4), -1, 1),
                           tg_tensor_rand(ctx, TG_F64, TG_DIMS(3, 4), -1, 1) };
    TEST_CHECK(tg_gradcheck_fn_check(composite, (void *)&skip_def, in34, 2, NULL, &r) == TG_OK);
    TEST_CHECK(!r.passed && r.n_failed == 1 && r.worst[0].input == 0 && r.worst[0].index == 7);
    TEST_CLOSE(r.worst[0].numeric, tg_tensor_get(in34[1], 7) * exp(tg_tensor_get(in34[0], 7)) * seen_dy[7],
               1e-12, 1e-7);
    TEST_CHECK(tg_gradcheck_fn_check(composite, (void *)&uninit_def, in, 2, NULL, &r) == TG_OK);
    TEST_CHECK_MSG(!r.passed && (r.contract_failures & TG_GC_UNINIT), "%s", r.message);

    /* Kinks in a composite, and the check's own failures. */
    tg_tensor *k = tg_tensor_from(ctx, TG_F64, TG_DIMS(3), (double[]){ 0, 0.5, -0.5 });
    TEST_CHECK(tg_gradcheck_fn_check(relu_fn, NULL, &k, 1, NULL, &r) == TG_OK);
    TEST_CHECK(r.passed && r.n_nondiff == 1 && r.n_checked == 2);
    TEST_CHECK(tg_gradcheck_fn_check(failing_fn, NULL, in, 1, NULL, &r) == TG_ERR_ARG);
    TEST_CHECK_MSG(has(r.message, "boom on purpose"), "%s", r.message);
    TEST_CHECK(tg_gradcheck_fn_check(NULL, NULL, in, 1, NULL, &r) == TG_ERR_ARG);
    TEST_CHECK(tg_gradcheck_fn_check(composite, NULL, in, 0, NULL, &r) == TG_ERR_ARG);
    tg_tensor *lbl = tg_tensor_zeros(ctx, TG_I32, TG_DIMS(2));
    TEST_CHECK(tg_gradcheck_fn_check(relu_fn, NULL, &lbl, 1, NULL, &r) == TG_ERR_ARG);
    TEST_CHECK(tg_tensor_get(in[0], 0) == tg_tensor_get(in[0], 0));    /* inputs untouched */
    tg_ctx_free(ctx);
}

static void test_print(void)
{
    tg_gradcheck_report r;
    tg_gradcheck_opts o = { .single_variant = 1, .skip_contracts = TG_GC_ALIAS };
    tg_gradcheck_op(&skip_def, &o, &r);
    FILE *f = tmpfile();
    if (!f)
        return;
    tg_gradcheck_report_print(&r, f);
    rewind(f);
    char buf[4096] = {0};
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    TEST_CHECK(got > 0);
    TEST_CHECK(has(buf, "t_mul_skip f64: FAIL"));
    TEST_CHECK(has(buf, "analytic") && has(buf, "numeric") && has(buf, "step"));
    TEST_CHECK(has(buf, "[1,3] #7") && has(buf, "<- wrong"));
    TEST_CHECK(strcmp(tg_gradcheck_contract_name(TG_GC_ALIAS), "alias") == 0);
    TEST_CHECK(strcmp(tg_gradcheck_contract_name(3), "?") == 0);
}

int main(void)
{
    test_correct_passes();
    test_scaled_vjp_named_precisely();
    test_overwrite_fails_accumulate();
    test_skipped_element_named();
    test_out_of_bounds_write();
    test_uninit_scratch();
    test_alias_bug();
    test_other_contracts();
    test_own_failures_are_status();
    test_kink_is_nondiff();
    test_directional();
    test_rng_and_integer_inputs();
    test_composite();
    test_print();
    return test_report("test_gradcheck");
}
