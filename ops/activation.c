/* activation.c — elementwise activation functions: sigmoid, tanh, relu,
 * leaky_relu, elu, softplus, silu, gelu. Same block layout as unary.c:
 * banner with math and VJP, shape, forward, backward, sample, cost,
 * descriptor, public wrapper. Every op uses a formulation that stays finite
 * (value and gradient) for large |x|; softmax and the losses live elsewhere. */
#include "ops_common.h"

/* Shape, cost, samples and the loop skeletons (TG_EW_FORWARD and
 * TG_EW_BACKWARD, with x, y, dy, dx, p0, p1 in scope) come from
 * ops_common.h. */

#define SQRT_2_OVER_PI   0.79788456080286535588  /* sqrt(2/pi)       */
#define INV_SQRT_2       0.70710678118654752440  /* 1/sqrt(2)        */
#define INV_SQRT_2PI     0.39894228040143267794  /* 1/sqrt(2 pi)     */
#define GELU_TANH_KAPPA  0.044715

/* sigmoid without overflow (vmath.h): with e = exp(-|x|) in (0, 1], 1/(1+e)
 * for x >= 0 and e/(1+e) for x < 0. */
#define SIGMOID(x) VM(sigmoid, x)

#ifdef TG_VM16
/* The f32 forwards of sigmoid, tanh and silu run vmath16.h's 16-lane
 * kernels, the scalar ones' bits (4096x4096, 1 thread: see the commit). */
static inline __m512 silu16(__m512 x) { return _mm512_mul_ps(x, tg_vm16_sigmoidf(x)); }
#endif

/* Parameter p.f[0] must be finite (slope, alpha). */
static tg_status finite_param_shape(const tg_node *n, const char *what, tg_dtype *dt, int *ndim,
                                    int64_t *shape)
{
    if (!isfinite(n->p.f[0]))
        return tg_op_fail(n, TG_ERR_ARG, "%s must be finite, got %g", what, n->p.f[0]);
    return tg_shape_as_input(n, dt, ndim, shape);
}

/* ---- sigmoid ------------------------------------------------------------
 * y = 1 / (1 + exp(-x))          x, y: any shape
 * VJP: dx += dy * y * (1 - y)    (reuses the forward output)
 * NOTE: two-branch form (see sigmoid_f64): exp never overflows, and
 * sigmoid(-1e4) = 0, sigmoid(1e4) = 1 exactly.
 */
TG_EW_FORWARD_X16(sigmoid_forward, tg_vm16_sigmoidf, y[i] = SIGMOID(x[i]))

TG_EW_BACKWARD(sigmoid_backward, , dy[i] * y[i] * (1 - y[i]))

static tg_status sigmoid_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, -3, 3, 0); }

static void sigmoid_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 13, 3); }

const tg_op_def tg_op_sigmoid_def = {
    .name = "sigmoid", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = sigmoid_forward, .backward = sigmoid_backward,
    .sample = sigmoid_sample, .n_samples = TG_EW_N_SHAPES, .cost = sigmoid_cost,
};

tg_tensor *tg_sigmoid(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_sigmoid_def, &x, 1, NULL, NULL);
}

/* ---- tanh ---------------------------------------------------------------
 * y = tanh(x)                    x, y: any shape
 * VJP: dx += dy * (1 - y^2)      (reuses the forward output; 0 once tanh
 *                                 saturates to +-1)
 */
TG_EW_FORWARD_X16(tanh_forward, tg_vm16_tanhf, y[i] = VM(tanh, x[i]))

TG_EW_BACKWARD(tanh_backward, , dy[i] * (1 - y[i] * y[i]))

static tg_status tanh_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, -2, 2, 0); }

static void tanh_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 20, 3); }

const tg_op_def tg_op_tanh_def = {
    .name = "tanh", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = tanh_forward, .backward = tanh_backward,
    .sample = tanh_sample, .n_samples = TG_EW_N_SHAPES, .cost = tanh_cost,
};

tg_tensor *tg_tanh(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_tanh_def, &x, 1, NULL, NULL);
}

/* ---- relu ---------------------------------------------------------------
 * y = max(x, 0)                  x, y: any shape
 * VJP: dx += dy where x > 0      (gradient 0 at exactly x = 0, as PyTorch)
 * NOTE: written `x < 0 ? 0 : x` so that a NaN input stays NaN.
 * Samples keep |x| >= 0.1.
 */
TG_EW_FORWARD_ST(relu_forward, y[i] = x[i] < 0 ? (T)0 : x[i])

/* TG_KEEP, not `x > 0 ? dy : 0`: that read dy with a masked load. */
TG_EW_BACKWARD(relu_backward, , TG_KEEP(dy[i], x[i] > 0))

static tg_status relu_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, -2, 2, 0.1); }

static void relu_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 1, 1); }

const tg_op_def tg_op_relu_def = {
    .name = "relu", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = relu_forward, .backward = relu_backward,
    .sample = relu_sample, .n_samples = TG_EW_N_SHAPES, .cost = relu_cost,
};

tg_tensor *tg_relu(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_relu_def, &x, 1, NULL, NULL);
}

/* ---- leaky_relu ---------------------------------------------------------
 * y = x > 0 ? x : slope * x      x, y: any shape; p.f[0] = slope (finite)
 * VJP: dx += x > 0 ? dy : slope * dy   (slope at exactly 0, as PyTorch)
 * Samples keep |x| >= 0.1.
 */
static tg_status leaky_relu_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    return finite_param_shape(n, "slope", dt, ndim, shape);
}

TG_EW_FORWARD_ST(leaky_relu_forward, const T slope = p0; y[i] = x[i] > 0 ? x[i] : slope * x[i])

/* dy times a selected factor (`one`, ops_common.h): `x > 0 ? d : slope * d`
 * read dy with a masked load in each arm. Same bits: d·1 = d. */
TG_EW_BACKWARD(leaky_relu_backward, const T slope = p0,
               dy[i] * (x[i] > 0 ? one : slope))

static tg_status leaky_relu_sample(tg_node *n, tg_dtype dt, int v)
{
    static const double slope[TG_EW_N_SHAPES] = { 0.01, 0.2, -0.3 };
    tg_status s = tg_ew_sample(n, dt, v, -2, 2, 0.1);
    if (s == TG_OK)
        n->p.f[0] = slope[v];
    return s;
}

static void leaky_relu_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 2, 2); }

const tg_op_def tg_op_leaky_relu_def = {
    .name = "leaky_relu", .n_in = 1, .overwrites = 1,
    .shape = leaky_relu_shape, .forward = leaky_relu_forward, .backward = leaky_relu_backward,
    .sample = leaky_relu_sample, .n_samples = TG_EW_N_SHAPES, .cost = leaky_relu_cost,
};

tg_tensor *tg_leaky_relu(tg_ctx *ctx, tg_tensor *x, double slope)
{
    tg_op_params p = {0};
    p.f[0] = slope;
    return tg_apply(ctx, &tg_op_leaky_relu_def, &x, 1, &p, NULL);
}

/* ---- elu ----------------------------------------------------------------
 * y = x > 0 ? x : alpha * (exp(x) - 1)   x, y: any shape; p.f[0] = alpha
 * VJP: dx += x > 0 ? dy : dy * alpha * exp(x)   (alpha at exactly 0, as
 *      PyTorch). exp(x) is recomputed rather than taken as y + alpha, which
 *      cancels badly for very negative x.
 * NOTE: expm1 keeps relative accuracy near 0; its argument is min(x, 0), so
 * the unused branch never overflows. Samples keep |x| >= 0.1.
 */
static tg_status elu_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    return finite_param_shape(n, "alpha", dt, ndim, shape);
}

TG_EW_FORWARD(elu_forward,
              const T alpha = p0;
              y[i] = x[i] > 0 ? x[i] : alpha * VM(expm1_nonpos, x[i]))

/* dy times a selected factor, 1 (`one`, ops_common.h) or alpha·exp(x): dy
 * is read once, unmasked. As `x > 0 ? dy : dy·alpha·exp(x)` gcc read dy
 * with a masked load in each arm: 4096², 1 thread, alternating with that
 * build: 10.3-14.5 -> 5.9-7.9 ms (in cache, 128x1024: 28-31 -> 31 us).
 * The same bits for x > 0, ±0 and -inf, and for every x when alpha = 1;
 * else dy·(alpha·e) may differ from the former (dy·alpha)·e in the last
 * bit (more where dy·alpha overflowed or went subnormal), and a NaN x
 * with a NaN dy now passes x's NaN. */
TG_EW_BACKWARD(elu_backward,
               const T f = x[i] > 0 ? one : p0 * VM(exp_nonpos, x[i]),
               dy[i] * f)

static tg_status elu_sample(tg_node *n, tg_dtype dt, int v)
{
    static const double alpha[TG_EW_N_SHAPES] = { 1.0, 0.5, 1.7 };
    tg_status s = tg_ew_sample(n, dt, v, -2, 2, 0.1);
    if (s == TG_OK)
        n->p.f[0] = alpha[v];
    return s;
}

static void elu_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 12, 13); }

const tg_op_def tg_op_elu_def = {
    .name = "elu", .n_in = 1, .overwrites = 1,
    .shape = elu_shape, .forward = elu_forward, .backward = elu_backward,
    .sample = elu_sample, .n_samples = TG_EW_N_SHAPES, .cost = elu_cost,
};

tg_tensor *tg_elu(tg_ctx *ctx, tg_tensor *x, double alpha)
{
    tg_op_params p = {0};
    p.f[0] = alpha;
    return tg_apply(ctx, &tg_op_elu_def, &x, 1, &p, NULL);
}

/* ---- softplus -----------------------------------------------------------
 * y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))   x, y: any shape
 * VJP: dx += dy * sigmoid(x), and sigmoid(x) = 1 - exp(-y) = -expm1(-y)
 *      (reuses the forward output; accurate for both signs of x).
 * NOTE: the stable form never overflows: softplus(1e4) = 1e4 and
 * softplus(-1e4) = 0 with gradients 1 and 0. PyTorch returns x itself above
 * its threshold 20; this form is within rounding of the true value there.
 */
TG_EW_FORWARD_X16(softplus_forward, tg_vm16_softplusf, y[i] = VM(softplus, x[i]))

TG_EW_BACKWARD(softplus_backward, , -(dy[i] * VM(expm1_nonpos, -y[i])))

static tg_status softplus_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, -3, 3, 0); }

static void softplus_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 22, 11); }

const tg_op_def tg_op_softplus_def = {
    .name = "softplus", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = softplus_forward, .backward = softplus_backward,
    .sample = softplus_sample, .n_samples = TG_EW_N_SHAPES, .cost = softplus_cost,
};

tg_tensor *tg_softplus(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_softplus_def, &x, 1, NULL, NULL);
}

/* ---- silu ---------------------------------------------------------------
 * y = x * s, s = sigmoid(x)      x, y: any shape
 * VJP: dx += dy * s * (1 + x * (1 - s))   (s recomputed with the stable
 *      sigmoid; y / x would fail at x = 0)
 * NOTE: silu(-1e4) = -0 with gradient -0, silu(1e4) = 1e4 with gradient 1.
 */
TG_EW_FORWARD_X16(silu_forward, silu16, y[i] = x[i] * SIGMOID(x[i]))

TG_EW_BACKWARD(silu_backward,
               T s = SIGMOID(x[i]),
               dy[i] * s * (1 + x[i] * (1 - s)))

static tg_status silu_sample(tg_node *n, tg_dtype dt, int v) { return tg_ew_sample(n, dt, v, -3, 3, 0); }

static void silu_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 14, 17); }

const tg_op_def tg_op_silu_def = {
    .name = "silu", .n_in = 1, .overwrites = 1,
    .shape = tg_shape_as_input, .forward = silu_forward, .backward = silu_backward,
    .sample = silu_sample, .n_samples = TG_EW_N_SHAPES, .cost = silu_cost,
};

tg_tensor *tg_silu(tg_ctx *ctx, tg_tensor *x)
{
    return tg_apply(ctx, &tg_op_silu_def, &x, 1, NULL, NULL);
}

/* ---- gelu ---------------------------------------------------------------
 * p.i[0] = approx (tg_gelu_approx)      x, y: any shape
 * TG_GELU_ERF:  y = x * P, P = Phi(x) = erfc(-x / sqrt 2) / 2
 *               VJP: dx += dy * (P + x * phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi)
 * TG_GELU_TANH: y = x/2 * (1 + t), t = tanh(sqrt(2/pi) * (x + k x^3)), k = 0.044715
 *               VJP: dx += dy * ((1 + t)/2 + x/2 * (1 - t^2) * sqrt(2/pi) * (1 + 3k x^2))
 *               (PyTorch's approximate='tanh')
 * NOTE: erfc rather than 1 + erf keeps relative accuracy of y for negative
 * x; at x = -1e4 both forms give -0 with gradient 0 (phi underflows to 0,
 * tanh saturates so 1 - t^2 = 0). Where tanh has saturated the tanh form's
 * second VJP term is taken as exactly 0: for |x| beyond ~1e19 (f32) or
 * ~1e154 (f64) x^2 overflows and 0 * inf would give NaN, whereas the term
 * (which decays like exp(-x^3)) is 0.
 */
static tg_status gelu_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    int64_t a = n->p.i[0];
    if (a != TG_GELU_ERF && a != TG_GELU_TANH)
        return tg_op_fail(n, TG_ERR_ARG, "approx %lld is neither TG_GELU_ERF (0) nor TG_GELU_TANH (1)",
                          (long long)a);
    return tg_shape_as_input(n, dt, ndim, shape);
}

/* The portable (and f64) forms. At x = -inf, x * Phi(x) is -inf * 0: taken
 * as its limit -0, and x * phi(x) at +-inf as 0, as the 16-lane kernels
 * give them, so every build agrees there. */
#define GELU_ERF_Y(T, v) ((v) == (T)-INFINITY ? (T)-0.0 : (v) * (T)0.5 * VM(erfc, -(v) * (T)INV_SQRT_2))
#define GELU_ERF_DY(T, v) \
    ((T)0.5 * VM(erfc, -(v) * (T)INV_SQRT_2) + \
     (isinf(v) ? (T)0 : (v) * (T)INV_SQRT_2PI * VM(exp_nonpos, (T)-0.5 * (v) * (v))))
TG_EW_FORWARD_X16(gelu_erf_forward, tg_vm16_gelu_erff, y[i] = GELU_ERF_Y(T, x[i]))

TG_EW_FORWARD(gelu_tanh_forward,
              T u = (T)SQRT_2_OVER_PI * (x[i] + (T)GELU_TANH_KAPPA * x[i] * x[i] * x[i]);
              y[i] = (T)0.5 * x[i] * (1 + VM(tanh, u)))

static tg_status gelu_forward(tg_node *n)
{
    return n->p.i[0] == TG_GELU_ERF ? gelu_erf_forward(n) : gelu_tanh_forward(n);
}

#ifdef TG_VM16
#define GELU_ERF_BACKWARD gelu_erf_backward_any
#else
#define GELU_ERF_BACKWARD gelu_erf_backward
#endif
TG_EW_BACKWARD(GELU_ERF_BACKWARD, , dy[i] * GELU_ERF_DY(T, x[i]))

#ifdef TG_VM16
/* f32: dx += dy gelu'(x) 16 lanes at a time (one fma), the tail masked;
 * into a fresh gradient (tg_vjp_overwrites) the fma adds +0 instead of dx:
 * the bits of (T)0 + dy gelu'(x), dx unread. */
static void gelu_erf_backward(tg_node *n)
{
    float *dx = n->in[0]->grad;
    if (n->out->dtype != TG_F32 || !dx) {
        gelu_erf_backward_any(n);
        return;
    }
    size_t len = TG_NUMEL(n->out);
    int nt_ = tg_par_threads(n->ctx, (double)len, TG_PAR_MIN_ELEMS);
    int ow = tg_vjp_overwrites(n, 0);
    const float *x = n->in[0]->data, *dy = n->out->grad;
    TG_PAR_FOR(nt_, (int64_t)len, 16, lo_, hi_, {
        size_t i = (size_t)lo_;
        for (; i + 16 <= (size_t)hi_; i += 16) {
            __m512 d = tg_vm16_gelu_erf_df(_mm512_loadu_ps(x + i));
            __m512 acc = ow ? _mm512_setzero_ps() : _mm512_loadu_ps(dx + i);
            _mm512_storeu_ps(dx + i, _mm512_fmadd_ps(_mm512_loadu_ps(dy + i), d, acc));
        }
        if (i < (size_t)hi_) {
            __mmask16 m = (__mmask16)((1u << ((size_t)hi_ - i)) - 1);
            __m512 d = tg_vm16_gelu_erf_df(_mm512_maskz_loadu_ps(m, x + i));
            __m512 acc = ow ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, dx + i);
            _mm512_mask_storeu_ps(dx + i, m, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, dy + i), d, acc));
        }
    });
}
#endif

TG_EW_BACKWARD(gelu_tanh_backward,
               T x2 = x[i] * x[i];
               T t = VM(tanh, (T)SQRT_2_OVER_PI * (x[i] + (T)GELU_TANH_KAPPA * x2 * x[i]));
               T du = (T)SQRT_2_OVER_PI * (1 + (T)(3 * GELU_TANH_KAPPA) * x2);
               T sech2 = 1 - t * t,
               dy[i] * ((T)0.5 * (1 + t) + (sech2 != 0 ? (T)0.5 * x[i] * sech2 * du : 0)))

static void gelu_backward(tg_node *n)
{
    if (n->p.i[0] == TG_GELU_ERF)
        gelu_erf_backward(n);
    else
        gelu_tanh_backward(n);
}

/* Variants: (erf, 3x5), (tanh, 3x5), (erf, 2x1x4), (tanh, scalar). */
static tg_status gelu_sample(tg_node *n, tg_dtype dt, int v)
{
    static const int shape_of[4] = { 0, 0, 1, 2 };
    if (v < 0 || v > 3)
        return TG_ERR_ARG;
    tg_status s = tg_ew_sample(n, dt, shape_of[v], -3, 3, 0);
    if (s == TG_OK)
        n->p.i[0] = v & 1 ? TG_GELU_TANH : TG_GELU_ERF;
    return s;
}

static void gelu_cost(const tg_node *n, tg_op_cost *c) { tg_ew_cost(n, c, 16, 28); }

const tg_op_def tg_op_gelu_def = {
    .name = "gelu", .n_in = 1, .overwrites = 1,
    .shape = gelu_shape, .forward = gelu_forward, .backward = gelu_backward,
    .sample = gelu_sample, .n_samples = 4, .cost = gelu_cost,
};

tg_tensor *tg_gelu(tg_ctx *ctx, tg_tensor *x, tg_gelu_approx approx)
{
    tg_op_params p = {0};
    p.i[0] = (int64_t)approx;
    return tg_apply(ctx, &tg_op_gelu_def, &x, 1, &p, NULL);
}
