/* shape.c — ops that move elements without arithmetic: reshape, permute
 * (and transpose), slice, concat, stack, broadcast_to. Tensors are
 * contiguous, so every op materialises its output: each is one strided
 * copy forward and one strided add for its VJP, through the walk kernel of
 * strided.c (which runs any transposing walk as register tile transposes).
 * Index-driven ops (index_select, gather_rows) live in index.c. */
#include "ops_common.h"
#include "strided.h"

/* Copy cost: read + write every output element forward; the VJP reads dy
 * and reads + writes dx (one add per element). */
static void copy_cost(const tg_node *n, tg_op_cost *c)
{
    double e = (double)n->out->numel, w = (double)tg_dtype_size(n->out->dtype);
    c->fwd_flops = 0;
    c->fwd_bytes = 2 * e * w;
    c->bwd_flops = e;
    c->bwd_bytes = 3 * e * w;
}

/* Shape to string for error messages. */
#define SHP(nd, sh, buf) tg_shape_str((nd), (sh), (buf), sizeof(buf))

/* A sample of one input of shape (nd, xs), uniform in [-2, 2), with the
 * integer params p.i[0 .. np). */
static tg_status sample_one(tg_node *n, tg_dtype dt, int nd, const int64_t *xs, const int64_t *params, int np)
{
    n->n_in = 1;
    n->in[0] = tg_sample_uniform(n, dt, nd, xs, -2, 2);
    for (int k = 0; k < np; k++)
        n->p.i[k] = params[k];
    return tg_sample_done(n);
}

/* The benchmark at a user's problem size (tg_op_def.sample_shape), for the
 * ops whose sample parameters fit one shape only: x of that shape and
 * parameters for it (below, per op). */
static tg_status sample_shaped(tg_node *n, tg_dtype dt, int nd, const int64_t *xs, const int64_t *params,
                               int np)
{
    if (nd < 1 || nd > TG_MAX_DIMS)
        return tg_op_fail(n, TG_ERR_SHAPE, "a problem size has 1 to %d dimensions", TG_MAX_DIMS);
    return sample_one(n, dt, nd, xs, params, np);
}

/* The target shape of reshape and broadcast_to: p.i[0] = its ndim, p.i[1..]
 * its dims. Checks input 0 is float and the ndim is in range. */
static tg_status target_of(const tg_node *n, int *nd, const int64_t **dims)
{
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    if (n->p.i[0] < 0 || n->p.i[0] > TG_MAX_DIMS)
        return tg_op_fail(n, TG_ERR_ARG, "target ndim %lld outside 0..%d", (long long)n->p.i[0], TG_MAX_DIMS);
    *nd = (int)n->p.i[0];
    *dims = &n->p.i[1];
    return TG_OK;
}

/* The wrappers of reshape and broadcast_to: x with the target (ndim, shape). */
static tg_tensor *target_apply(tg_ctx *ctx, const tg_op_def *def, tg_tensor *x, int ndim, const int64_t *shape)
{
    if (!ctx || tg_ctx_status(ctx) != TG_OK)
        return NULL;
    if (ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && !shape)) {
        tg_ctx_fail(ctx, TG_ERR_ARG, "%s: %s target shape with ndim %d (0..%d allowed)", def->name,
                    ndim > 0 && !shape ? "NULL" : "bad", ndim, TG_MAX_DIMS);
        return NULL;
    }
    tg_op_params p = {0};
    p.i[0] = ndim;
    for (int k = 0; k < ndim; k++)
        p.i[1 + k] = shape[k];
    return tg_apply(ctx, def, &x, 1, &p, NULL);
}

/* ---- reshape --------------------------------------------------------------
 * y = x with a new shape; same elements, same row-major order.
 * x: any shape; y: p.i[1 .. 1+p.i[0]) with at most one -1 (inferred).
 * VJP: dx += reshape(dy, shape of x)
 * Params: i[0] = ndim of y, i[1..6] = its dims.
 */
static tg_status reshape_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    const tg_tensor *x = n->in[0];
    const int64_t *req = NULL;
    int nd = 0;
    tg_status s = target_of(n, &nd, &req);
    if (s != TG_OK)
        return s;
    char sx[TG_SHAPE_STR_MAX], sr[TG_SHAPE_STR_MAX];
    int infer = -1, big = 0;
    int64_t prod = 1;
    for (int k = 0; k < nd; k++) {
        if (req[k] == -1) {
            if (infer >= 0)
                return tg_op_fail(n, TG_ERR_ARG, "target %s has more than one -1", SHP(nd, req, sr));
            infer = k;
        } else if (req[k] < 0) {
            return tg_op_fail(n, TG_ERR_ARG, "target %s has negative dimension %lld at axis %d",
                              SHP(nd, req, sr), (long long)req[k], k);
        } else if (!big) {
            if (req[k] && prod > INT64_MAX / 8 / req[k])
                big = 1;
            else
                prod *= req[k];
        }
        shape[k] = req[k];
    }
    if (infer >= 0) {
        if (big || prod == 0 || x->numel % prod != 0)
            return tg_op_fail(n, TG_ERR_SHAPE, "cannot reshape %s (%lld elements) into %s (%s)",
                              TG_SHAPE_OF(x, sx), (long long)x->numel, SHP(nd, req, sr),
                              prod == 0 ? "-1 is ambiguous next to a zero-size dimension"
                                        : "element count is not a multiple of the known dims");
        shape[infer] = x->numel / prod;
    } else if (big || prod != x->numel) {
        if (big)
            return tg_op_fail(n, TG_ERR_SHAPE, "cannot reshape %s (%lld elements) into %s (too many elements)",
                              TG_SHAPE_OF(x, sx), (long long)x->numel, SHP(nd, req, sr));
        return tg_op_fail(n, TG_ERR_SHAPE, "cannot reshape %s (%lld elements) into %s (%lld elements)",
                          TG_SHAPE_OF(x, sx), (long long)x->numel, SHP(nd, req, sr), (long long)prod);
    }
    *dt = x->dtype;
    *ndim = nd;
    return TG_OK;
}

static tg_status reshape_forward(tg_node *n)
{
    if (n->out->numel)
        memcpy(n->out->data, n->in[0]->data, TG_NUMEL(n->out) * tg_dtype_size(n->out->dtype));
    return TG_OK;
}

static void reshape_backward(tg_node *n)
{
    if (!n->in[0]->grad)
        return;
    int64_t len = n->out->numel;
    tg_walk_run(n->out->dtype, tg_walk_flat(1, &len), n->in[0]->grad, 0, n->out->grad, 0,
                tg_vjp_overwrites(n, 0) ? TG_WALK_FRESH : TG_WALK_ADD);
}

static tg_status reshape_sample(tg_node *n, tg_dtype dt, int v)
{
    static const int64_t xs[][3] = { {3, 4, 0}, {1, 5, 1}, {6, 0, 0} };
    static const int     xn[] = { 2, 3, 1 };
    static const int64_t ys[][4] = { {3, 2, -1, 3}, {1, 5, 0, 0}, {3, 2, 3, 1} };
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    return sample_one(n, dt, xn[v], xs[v], ys[v], 4);
}

/* --shape: x of that shape flattened to (-1). */
static tg_status reshape_sample_shape(tg_node *n, tg_dtype dt, int nd, const int64_t *xs)
{
    static const int64_t flat[2] = { 1, -1 };
    return sample_shaped(n, dt, nd, xs, flat, 2);
}

const tg_op_def tg_op_reshape_def = {
    .name = "reshape", .n_in = 1, .overwrites = 1, .passes_grad = 1,
    .shape = reshape_shape, .forward = reshape_forward, .backward = reshape_backward,
    .sample = reshape_sample, .n_samples = 3, .cost = copy_cost,
    .sample_shape = reshape_sample_shape,
};

tg_tensor *tg_reshape(tg_ctx *ctx, tg_tensor *x, int ndim, const int64_t *shape)
{
    return target_apply(ctx, &tg_op_reshape_def, x, ndim, shape);
}

/* ---- permute --------------------------------------------------------------
 * y[i_0, .., i_{d-1}] = x[j] with j[perm[k]] = i_k, i.e. y.shape[k] =
 * x.shape[perm[k]].           x: d dims; y: d dims; perm: p.i[0..d)
 * VJP: dx += permute(dy, inverse of perm)
 * Both directions write their destination contiguously; a swap of the two
 * innermost (merged) dims runs as a tiled transpose.
 */
/* "2, 0, 1" */
static char *perm_str(int nd, const int64_t *perm, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int k = 0; k < nd && off < cap; k++) {
        int w = snprintf(buf + off, cap - off, k ? ", %lld" : "%lld", (long long)perm[k]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return buf;
}

static tg_status permute_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    const tg_tensor *x = n->in[0];
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    int nd = x->ndim, seen[TG_MAX_DIMS] = {0};
    for (int k = 0; k < nd; k++) {
        int64_t a = n->p.i[k];
        if (a < 0 || a >= nd || seen[a]) {
            char sp[TG_SHAPE_STR_MAX], sx[TG_SHAPE_STR_MAX];
            return tg_op_fail(n, TG_ERR_ARG, "perm (%s) is not a permutation of 0..%d for %s",
                              perm_str(nd, n->p.i, sp, sizeof sp), nd - 1, TG_SHAPE_OF(x, sx));
        }
        seen[a] = 1;
        shape[k] = x->shape[a];
    }
    *dt = x->dtype;
    *ndim = nd;
    return TG_OK;
}

/* Walk writing `dst_shape`-shaped data contiguously from a source of shape
 * src_shape, where destination axis k reads source axis map[k]. */
static tg_walk permute_walk(int nd, const int64_t *src_shape, const int64_t *map)
{
    tg_walk w;
    int64_t sst[TG_MAX_DIMS];
    tg_row_strides(nd, src_shape, sst);
    w.nd = nd;
    for (int k = 0; k < nd; k++) {
        w.shape[k] = src_shape[map[k]];
        w.ss[k] = sst[map[k]];
    }
    tg_row_strides(nd, w.shape, w.ds);
    return w;
}

static tg_status permute_forward(tg_node *n)
{
    const tg_tensor *x = n->in[0];
    tg_walk_run(x->dtype, permute_walk(x->ndim, x->shape, n->p.i), n->out->data, 0, x->data, 0, 0);
    return TG_OK;
}

static void permute_backward(tg_node *n)
{
    tg_tensor *x = n->in[0];
    if (!x->grad)
        return;
    int64_t inv[TG_MAX_DIMS];
    for (int k = 0; k < x->ndim; k++)
        inv[n->p.i[k]] = k;
    tg_walk_run(x->dtype, permute_walk(x->ndim, n->out->shape, inv), x->grad, 0, n->out->grad, 0,
                tg_vjp_overwrites(n, 0) ? TG_WALK_FRESH : TG_WALK_ADD);
}

static tg_status permute_sample(tg_node *n, tg_dtype dt, int v)
{
    static const int64_t xs[][4] = { {2, 3, 4}, {4, 5}, {1, 3, 1, 2}, {2, 3, 5} };
    static const int64_t perms[][4] = { {2, 0, 1}, {1, 0}, {3, 1, 0, 2}, {0, 2, 1} };
    static const int     nd[] = { 3, 2, 4, 3 };
    if (v < 0 || v > 3)
        return TG_ERR_ARG;
    return sample_one(n, dt, nd[v], xs[v], perms[v], nd[v]);
}

/* --shape: x of that shape with its axes reversed (a transpose for 2-D). */
static tg_status permute_sample_shape(tg_node *n, tg_dtype dt, int nd, const int64_t *xs)
{
    int64_t perm[TG_MAX_DIMS] = {0};
    for (int k = 0; k < nd && k < TG_MAX_DIMS; k++)
        perm[k] = nd - 1 - k;
    return sample_shaped(n, dt, nd, xs, perm, nd);
}

const tg_op_def tg_op_permute_def = {
    .name = "permute", .n_in = 1, .overwrites = 1,
    .shape = permute_shape, .forward = permute_forward, .backward = permute_backward,
    .sample = permute_sample, .n_samples = 4, .cost = copy_cost,
    .sample_shape = permute_sample_shape,
};

tg_tensor *tg_permute(tg_ctx *ctx, tg_tensor *x, const int *perm)
{
    if (!ctx || tg_ctx_status(ctx) != TG_OK)
        return NULL;
    tg_op_params p = {0};
    if (x) {
        if (x->ndim > 0 && !perm) {
            tg_ctx_fail(ctx, TG_ERR_ARG, "permute: NULL perm for a %d-dim input", x->ndim);
            return NULL;
        }
        for (int k = 0; k < x->ndim && k < TG_MAX_DIMS; k++)
            p.i[k] = perm[k];
    }
    return tg_apply(ctx, &tg_op_permute_def, &x, 1, &p, NULL);
}

tg_tensor *tg_transpose(tg_ctx *ctx, tg_tensor *x, int ax0, int ax1)
{
    if (!ctx || tg_ctx_status(ctx) != TG_OK)
        return NULL;
    if (!x)
        return tg_permute(ctx, x, NULL);
    int nd = x->ndim, perm[TG_MAX_DIMS];
    int ax[2] = { ax0, ax1 };
    for (int j = 0; j < 2; j++) {
        if (ax[j] < -nd || ax[j] >= nd) {
            char sx[TG_SHAPE_STR_MAX];
            tg_ctx_fail(ctx, TG_ERR_ARG, "transpose: axis %d out of range for %s (%d dims)",
                        ax[j], TG_SHAPE_OF(x, sx), nd);
            return NULL;
        }
        if (ax[j] < 0)
            ax[j] += nd;
    }
    for (int k = 0; k < nd; k++)
        perm[k] = k;
    perm[ax[0]] = ax[1];
    perm[ax[1]] = ax[0];
    return tg_permute(ctx, x, perm);
}

/* ---- slice ----------------------------------------------------------------
 * y = x[..., start:stop:step, ...] along `axis` (Python semantics: negative
 * start/stop count from the end, then both clamp to [0, size]; step >= 1).
 * x: any shape, ndim >= 1; y: x's shape with len(range(start, stop, step))
 * along axis (possibly 0).
 * VJP: dx[..., start + j*step, ...] += dy[..., j, ...]
 * Params: i[0] = axis, i[1] = start, i[2] = stop, i[3] = step.
 */
static int64_t slice_clamp(int64_t v, int64_t size)
{
    if (v < 0)
        v += size;
    return v < 0 ? 0 : v > size ? size : v;
}

/* Resolved axis, first index and step; the count is y.shape[axis]. */
static void slice_range(const tg_node *n, int *axis, int64_t *start, int64_t *step)
{
    const tg_tensor *x = n->in[0];
    int64_t a = n->p.i[0];
    *axis = (int)(a < 0 ? a + x->ndim : a);
    *start = slice_clamp(n->p.i[1], x->shape[*axis]);
    *step = n->p.i[3];
}

static tg_status slice_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    const tg_tensor *x = n->in[0];
    tg_status s = tg_chk_float(n, 0);
    if (s != TG_OK)
        return s;
    char sx[TG_SHAPE_STR_MAX];
    if (x->ndim == 0)
        return tg_op_fail(n, TG_ERR_ARG, "cannot slice a scalar");
    int axis = 0;
    if ((s = tg_norm_axis(n, n->p.i[0], x->ndim, &axis)) != TG_OK)
        return s;
    int64_t step = n->p.i[3];
    if (step < 1)
        return tg_op_fail(n, TG_ERR_ARG, "step must be >= 1, got %lld (slicing %s along axis %d)",
                          (long long)step, TG_SHAPE_OF(x, sx), axis);
    int64_t size = x->shape[axis];
    int64_t start = slice_clamp(n->p.i[1], size), stop = slice_clamp(n->p.i[2], size);
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[axis] = stop > start ? (stop - start - 1) / step + 1 : 0;
    *dt = x->dtype;
    *ndim = x->ndim;
    return TG_OK;
}

/* Walk over y's shape: destination y contiguous, source x strided. */
static tg_walk slice_walk(const tg_node *n, int64_t *xoff)
{
    const tg_tensor *x = n->in[0];
    int axis = 0;
    int64_t start, step;
    slice_range(n, &axis, &start, &step);
    tg_walk w = tg_walk_flat(x->ndim, n->out->shape);
    tg_row_strides(x->ndim, x->shape, w.ss);
    *xoff = start * w.ss[axis];
    w.ss[axis] *= step;
    return w;
}

static tg_status slice_forward(tg_node *n)
{
    int64_t xoff;
    tg_walk w = slice_walk(n, &xoff);
    tg_walk_run(n->out->dtype, w, n->out->data, 0, n->in[0]->data, xoff, 0);
    return TG_OK;
}

static void slice_backward(tg_node *n)
{
    if (!n->in[0]->grad)
        return;
    int64_t xoff;
    tg_walk w = tg_walk_swap(slice_walk(n, &xoff));
    tg_walk_run(n->out->dtype, w, n->in[0]->grad, xoff, n->out->grad, 0, 1);
}

static tg_status slice_sample(tg_node *n, tg_dtype dt, int v)
{
    static const int64_t xs[][3] = { {2, 5, 3}, {6, 0, 0}, {3, 1, 4}, {2, 7, 0} };
    static const int     nd[] = { 3, 1, 3, 2 };
    /* axis, start, stop, step: negative start with step 2; stop clamped;
     * negative axis and start on a size-1-dim input; stop from the end */
    static const int64_t ps[][4] = { {1, -4, 5, 2}, {-1, 1, 100, 1}, {-3, -2, 3, 1}, {1, 0, -1, 3} };
    if (v < 0 || v > 3)
        return TG_ERR_ARG;
    return sample_one(n, dt, nd[v], xs[v], ps[v], 4);
}

const tg_op_def tg_op_slice_def = {
    .name = "slice", .n_in = 1,
    .shape = slice_shape, .forward = slice_forward, .backward = slice_backward,
    .sample = slice_sample, .n_samples = 4, .cost = copy_cost,
};

tg_tensor *tg_slice(tg_ctx *ctx, tg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step)
{
    tg_op_params p = {0};
    p.i[0] = axis;
    p.i[1] = start;
    p.i[2] = stop;
    p.i[3] = step;
    return tg_apply(ctx, &tg_op_slice_def, &x, 1, &p, NULL);
}

/* ---- concat and stack -----------------------------------------------------
 * concat: y = [x_0, x_1, ...] joined along `axis`; all inputs share dtype,
 *   ndim and every dim but `axis`; y.shape[axis] = sum of x_i.shape[axis].
 * stack: y = inputs joined along a new axis `axis` (-(d+1) .. d); all
 *   inputs share dtype and shape d; y has d+1 dims, y.shape[axis] = n.
 * VJP: dx_i += the slab of dy that x_i was copied to (each input separately,
 *   so a tensor passed twice gets both slabs).
 * Params: i[0] = axis. n_in = 1 .. TG_MAX_IN.
 */
static tg_status join_check(const tg_node *n, int stack, int *axis)
{
    const tg_tensor *x0 = n->in[0];
    char s0[TG_SHAPE_STR_MAX], si[TG_SHAPE_STR_MAX];
    tg_status s;
    for (int i = 0; i < n->n_in; i++) {
        const tg_tensor *x = n->in[i];
        if ((s = tg_chk_float(n, i)) != TG_OK)
            return s;
        if (x->dtype != x0->dtype)
            return tg_op_fail(n, TG_ERR_ARG, "input %d is %s, input 0 is %s", i,
                              tg_dtype_name(x->dtype), tg_dtype_name(x0->dtype));
    }
    int nd = x0->ndim;
    if (!stack && nd == 0)
        return tg_op_fail(n, TG_ERR_SHAPE, "cannot concat scalars (input 0 is a scalar); use stack");
    if (stack && nd + 1 > TG_MAX_DIMS)
        return tg_op_fail(n, TG_ERR_SHAPE, "stacking %s inputs would need %d dims (max %d)",
                          TG_SHAPE_OF(x0, s0), nd + 1, TG_MAX_DIMS);
    if ((s = tg_norm_axis(n, n->p.i[0], nd + stack, axis)) != TG_OK)
        return s;
    for (int i = 1; i < n->n_in; i++) {
        const tg_tensor *x = n->in[i];
        int bad = x->ndim != nd;
        for (int k = 0; k < nd && !bad; k++)
            bad = x->shape[k] != x0->shape[k] && (stack || k != *axis);
        if (bad) {
            if (stack)
                return tg_op_fail(n, TG_ERR_SHAPE, "input %d has shape %s, input 0 has %s (all must match)",
                                  i, TG_SHAPE_OF(x, si), TG_SHAPE_OF(x0, s0));
            return tg_op_fail(n, TG_ERR_SHAPE, "input %d has shape %s, input 0 has %s "
                              "(all dims but axis %d must match)", i, TG_SHAPE_OF(x, si), TG_SHAPE_OF(x0, s0), *axis);
        }
    }
    return TG_OK;
}

/* Walk copying input i into its slab of y: source x_i contiguous,
 * destination y strided; *yoff is the slab's first element. */
static tg_walk join_walk(const tg_node *n, int stack, int i, int64_t *yoff)
{
    const tg_tensor *x = n->in[i], *y = n->out;
    int axis = (int)(n->p.i[0] < 0 ? n->p.i[0] + y->ndim : n->p.i[0]);
    int64_t yst[TG_MAX_DIMS];
    tg_row_strides(y->ndim, y->shape, yst);
    tg_walk w = tg_walk_flat(x->ndim, x->shape);
    if (stack) {
        for (int k = 0; k < x->ndim; k++)
            w.ds[k] = yst[k < axis ? k : k + 1];
        *yoff = i * yst[axis];
    } else {
        int64_t before = 0;
        for (int j = 0; j < i; j++)
            before += n->in[j]->shape[axis];
        for (int k = 0; k < x->ndim; k++)
            w.ds[k] = yst[k];
        *yoff = before * yst[axis];
    }
    return w;
}

static tg_status join_forward(tg_node *n, int stack)
{
    for (int i = 0; i < n->n_in; i++) {
        int64_t yoff;
        tg_walk w = join_walk(n, stack, i, &yoff);
        tg_walk_run(n->out->dtype, w, n->out->data, yoff, n->in[i]->data, 0, 0);
    }
    return TG_OK;
}

static void join_backward(tg_node *n, int stack)
{
    for (int i = 0; i < n->n_in; i++) {
        if (!n->in[i]->grad)
            continue;
        int64_t yoff;
        tg_walk w = tg_walk_swap(join_walk(n, stack, i, &yoff));
        tg_walk_run(n->out->dtype, w, n->in[i]->grad, 0, n->out->grad, yoff,
                    tg_vjp_overwrites(n, i) ? TG_WALK_FRESH : TG_WALK_ADD);
    }
}

static tg_status concat_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    int axis = 0;
    tg_status s = join_check(n, 0, &axis);
    if (s != TG_OK)
        return s;
    const tg_tensor *x0 = n->in[0];
    memcpy(shape, x0->shape, sizeof(int64_t) * (size_t)x0->ndim);
    for (int i = 1; i < n->n_in; i++)
        shape[axis] += n->in[i]->shape[axis];
    *dt = x0->dtype;
    *ndim = x0->ndim;
    return TG_OK;
}

static tg_status concat_forward(tg_node *n) { return join_forward(n, 0); }
static void concat_backward(tg_node *n) { join_backward(n, 0); }

static tg_status concat_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    if (v == 0) {          /* three inputs of different sizes along axis 1 */
        n->n_in = 3;
        n->in[0] = tg_sample_uniform(n, dt, TG_DIMS(2, 1, 3), -2, 2);
        n->in[1] = tg_sample_uniform(n, dt, TG_DIMS(2, 4, 3), -2, 2);
        n->in[2] = tg_sample_uniform(n, dt, TG_DIMS(2, 2, 3), -2, 2);
        n->p.i[0] = 1;
    } else if (v == 1) {   /* negative axis */
        n->n_in = 2;
        n->in[0] = tg_sample_uniform(n, dt, TG_DIMS(3, 2), -2, 2);
        n->in[1] = tg_sample_uniform(n, dt, TG_DIMS(3, 1), -2, 2);
        n->p.i[0] = -1;
    } else {               /* a single input */
        n->n_in = 1;
        n->in[0] = tg_sample_uniform(n, dt, TG_DIMS(4), -2, 2);
        n->p.i[0] = 0;
    }
    return tg_sample_done(n);
}

static void join_cost(const tg_node *n, tg_op_cost *c) { copy_cost(n, c); }

/* --shape: the output's shape, from two inputs that split its first axis
 * (at least 2) in halves. */
static tg_status concat_sample_shape(tg_node *n, tg_dtype dt, int nd, const int64_t *ys)
{
    if (nd < 1 || nd > TG_MAX_DIMS || ys[0] < 2)
        return tg_op_fail(n, TG_ERR_SHAPE, "a problem size is the output's shape (1 to %d dims), its first "
                          "axis at least 2", TG_MAX_DIMS);
    int64_t a[TG_MAX_DIMS], b[TG_MAX_DIMS];
    memcpy(a, ys, (size_t)nd * sizeof *a);
    memcpy(b, ys, (size_t)nd * sizeof *b);
    a[0] = ys[0] / 2;
    b[0] = ys[0] - a[0];
    n->n_in = 2;
    n->in[0] = tg_sample_uniform(n, dt, nd, a, -2, 2);
    n->in[1] = tg_sample_uniform(n, dt, nd, b, -2, 2);
    n->p.i[0] = 0;
    return tg_sample_done(n);
}

const tg_op_def tg_op_concat_def = {
    .name = "concat", .n_in = TG_VARIADIC, .overwrites = (1u << TG_MAX_IN) - 1,
    .shape = concat_shape, .forward = concat_forward, .backward = concat_backward,
    .sample = concat_sample, .n_samples = 3, .cost = join_cost,
    .sample_shape = concat_sample_shape,
};

static tg_tensor *join_apply(tg_ctx *ctx, const tg_op_def *def, tg_tensor *const *xs, int n, int axis)
{
    if (!ctx || tg_ctx_status(ctx) != TG_OK)
        return NULL;
    if (n < 1 || n > TG_MAX_IN || !xs) {
        tg_ctx_fail(ctx, TG_ERR_ARG, "%s: takes 1 to %d inputs, got %d%s", def->name, TG_MAX_IN, n,
                    xs ? "" : " (NULL array)");
        return NULL;
    }
    tg_op_params p = {0};
    p.i[0] = axis;
    return tg_apply(ctx, def, xs, n, &p, NULL);
}

tg_tensor *tg_concat(tg_ctx *ctx, tg_tensor *const *xs, int n, int axis)
{
    return join_apply(ctx, &tg_op_concat_def, xs, n, axis);
}

static tg_status stack_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    int axis = 0;
    tg_status s = join_check(n, 1, &axis);
    if (s != TG_OK)
        return s;
    const tg_tensor *x0 = n->in[0];
    for (int k = 0, j = 0; k <= x0->ndim; k++)
        shape[k] = k == axis ? n->n_in : x0->shape[j++];
    *dt = x0->dtype;
    *ndim = x0->ndim + 1;
    return TG_OK;
}

static tg_status stack_forward(tg_node *n) { return join_forward(n, 1); }
static void stack_backward(tg_node *n) { join_backward(n, 1); }

static tg_status stack_sample(tg_node *n, tg_dtype dt, int v)
{
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    if (v == 0) {
        n->n_in = 2;
        n->in[0] = tg_sample_uniform(n, dt, TG_DIMS(2, 3), -2, 2);
        n->in[1] = tg_sample_uniform(n, dt, TG_DIMS(2, 3), -2, 2);
        n->p.i[0] = 0;
    } else if (v == 1) {   /* three inputs with a size-1 dim, new last axis */
        n->n_in = 3;
        for (int i = 0; i < 3; i++)
            n->in[i] = tg_sample_uniform(n, dt, TG_DIMS(1, 4), -2, 2);
        n->p.i[0] = -1;
    } else {               /* new middle axis of 1-D inputs */
        n->n_in = 2;
        n->in[0] = tg_sample_uniform(n, dt, TG_DIMS(3), -2, 2);
        n->in[1] = tg_sample_uniform(n, dt, TG_DIMS(3), -2, 2);
        n->p.i[0] = 1;
    }
    return tg_sample_done(n);
}

const tg_op_def tg_op_stack_def = {
    .name = "stack", .n_in = TG_VARIADIC, .overwrites = (1u << TG_MAX_IN) - 1,
    .shape = stack_shape, .forward = stack_forward, .backward = stack_backward,
    .sample = stack_sample, .n_samples = 3, .cost = join_cost,
};

tg_tensor *tg_stack(tg_ctx *ctx, tg_tensor *const *xs, int n, int axis)
{
    return join_apply(ctx, &tg_op_stack_def, xs, n, axis);
}

/* ---- broadcast_to ---------------------------------------------------------
 * y = x repeated to `shape` by NumPy rules: shapes align on the right, a
 * missing or size-1 dim of x stretches, other dims must be equal.
 * x: d dims; y: p.i[1 .. 1+p.i[0]), p.i[0] >= d.
 * VJP: dx += dy summed over the stretched axes (kept as size 1 / dropped).
 * Params: i[0] = ndim of y, i[1..6] = its dims.
 */
static tg_status broadcast_to_shape(const tg_node *n, tg_dtype *dt, int *ndim, int64_t *shape)
{
    const tg_tensor *x = n->in[0];
    const int64_t *tgt = NULL;
    int nd = 0;
    tg_status s = target_of(n, &nd, &tgt);
    if (s != TG_OK)
        return s;
    char sx[TG_SHAPE_STR_MAX], st[TG_SHAPE_STR_MAX];
    if (x->ndim > nd)
        return tg_op_fail(n, TG_ERR_SHAPE, "cannot broadcast %s to %s (target has fewer dims)",
                          TG_SHAPE_OF(x, sx), SHP(nd, tgt, st));
    for (int k = 0; k < nd; k++) {
        if (tgt[k] < 0)
            return tg_op_fail(n, TG_ERR_ARG, "target %s has negative dimension %lld at axis %d",
                              SHP(nd, tgt, st), (long long)tgt[k], k);
        int ix = x->ndim - nd + k;
        int64_t d = ix >= 0 ? x->shape[ix] : 1;
        if (d != tgt[k] && d != 1)
            return tg_op_fail(n, TG_ERR_SHAPE, "cannot broadcast %s to %s (axis %d: %lld vs %lld)",
                              TG_SHAPE_OF(x, sx), SHP(nd, tgt, st), k, (long long)d, (long long)tgt[k]);
        shape[k] = tgt[k];
    }
    *dt = x->dtype;
    *ndim = nd;
    return TG_OK;
}

/* Walk over y: destination y contiguous, source x with stride 0 on
 * stretched axes. */
static tg_walk broadcast_walk(const tg_node *n)
{
    const tg_tensor *y = n->out;
    tg_walk w = tg_walk_flat(y->ndim, y->shape);
    tg_broadcast_strides(n->in[0], y->ndim, y->shape, w.ss);
    return w;
}

static tg_status broadcast_to_forward(tg_node *n)
{
    tg_walk_run(n->out->dtype, broadcast_walk(n), n->out->data, 0, n->in[0]->data, 0, 0);
    return TG_OK;
}

static void broadcast_to_backward(tg_node *n)
{
    if (!n->in[0]->grad)
        return;
    tg_walk_run(n->out->dtype, tg_walk_swap(broadcast_walk(n)), n->in[0]->grad, 0, n->out->grad, 0, 1);
}

static tg_status broadcast_to_sample(tg_node *n, tg_dtype dt, int v)
{
    static const int64_t xs[][2] = { {3, 1}, {0, 0}, {1, 4} };
    static const int     xn[] = { 2, 0, 2 };
    static const int64_t ys[][4] = { {3, 2, 3, 4}, {2, 2, 3, 0}, {2, 3, 4, 0} };
    if (v < 0 || v > 2)
        return TG_ERR_ARG;
    return sample_one(n, dt, xn[v], xs[v], ys[v], 4);
}

static void broadcast_to_cost(const tg_node *n, tg_op_cost *c)
{
    double e = (double)n->out->numel, ex = (double)n->in[0]->numel;
    double w = (double)tg_dtype_size(n->out->dtype);
    c->fwd_flops = 0;
    c->fwd_bytes = (e + ex) * w;
    c->bwd_flops = e;
    c->bwd_bytes = (e + 2 * ex) * w;
}

_Static_assert(TG_MAX_PARAMS >= 1 + TG_MAX_DIMS, "a target shape's ndim and dims fit the params");

/* --shape: the output's shape, from x of that shape with its first axis 1
 * (a row repeated down the first axis). */
static tg_status broadcast_to_sample_shape(tg_node *n, tg_dtype dt, int nd, const int64_t *ys)
{
    int64_t xs[TG_MAX_DIMS], target[1 + TG_MAX_DIMS];
    if (nd < 1 || nd > TG_MAX_DIMS)
        return tg_op_fail(n, TG_ERR_SHAPE, "a problem size is the output's shape (1 to %d dims)", TG_MAX_DIMS);
    memcpy(xs, ys, (size_t)nd * sizeof *xs);
    xs[0] = 1;
    target[0] = nd;
    memcpy(target + 1, ys, (size_t)nd * sizeof *ys);
    return sample_shaped(n, dt, nd, xs, target, 1 + nd);
}

const tg_op_def tg_op_broadcast_to_def = {
    .name = "broadcast_to", .n_in = 1,
    .shape = broadcast_to_shape, .forward = broadcast_to_forward, .backward = broadcast_to_backward,
    .sample = broadcast_to_sample, .n_samples = 3, .cost = broadcast_to_cost,
    .sample_shape = broadcast_to_sample_shape,
};

tg_tensor *tg_broadcast_to(tg_ctx *ctx, tg_tensor *x, int ndim, const int64_t *shape)
{
    return target_apply(ctx, &tg_op_broadcast_to_def, x, ndim, shape);
}
