/* dot.c — Graphviz export of the recorded graph below a tensor. */
#include "tg_graph.h"
#include "../core/tg_core_impl.h"

static void leaf_line(FILE *f, const tg_tensor *t)
{
    char s[TG_SHAPE_STR_MAX];
    fprintf(f, "  t%p [shape=ellipse,label=\"%s\\n%s %s%s\"];\n", (const void *)t,
            t->name ? t->name : "leaf", tg_shape_str(t->ndim, t->shape, s, sizeof s),
            tg_dtype_name(t->dtype), (t->flags & TG_TENSOR_REQUIRES_GRAD) ? "\\nrequires grad" : "");
}

tg_status tg_graph_dot(tg_ctx *ctx, const tg_tensor *root, FILE *f)
{
    if (!ctx)
        return TG_ERR_ARG;
    if (!root || !f)
        return tg_ctx_fail(ctx, TG_ERR_ARG, "graph_dot: NULL %s", root ? "file" : "tensor");
    size_t n = tg_tape_size(ctx);
    if (root->node >= 0 && (size_t)root->node >= n)
        return tg_ctx_fail(ctx, TG_ERR_STATE, "graph_dot: the tensor belongs to a tape that was reset");
    /* Nodes reachable from root, found by one reverse pass (the tape is in
     * topological order); a bitmap in the arena, released afterwards. */
    size_t mark = tg_ctx_arena_mark(ctx);
    size_t last = root->node >= 0 ? (size_t)root->node : 0;
    unsigned char *seen = NULL;
    if (root->node >= 0) {
        seen = tg_ctx_alloc(ctx, last + 1, "graph_dot");
        if (!seen)
            return ctx->status;
        for (size_t k = 0; k <= last; k++)
            seen[k] = 0;
        seen[last] = 1;
    }
    fprintf(f, "digraph tapegrad {\n  rankdir=BT;\n  node [fontname=\"monospace\",fontsize=10];\n");
    if (root->node < 0)
        leaf_line(f, root);
    for (size_t k = last + 1; seen && k-- > 0;) {
        if (!seen[k])
            continue;
        tg_node *nd = tg_tape_node(ctx, k);
        char s[TG_SHAPE_STR_MAX];
        fprintf(f, "  t%p [shape=box,label=\"%s\\n%s %s\"];\n", (void *)nd->out, nd->def->name,
                tg_shape_str(nd->out->ndim, nd->out->shape, s, sizeof s), tg_dtype_name(nd->out->dtype));
        for (int i = 0; i < nd->n_in; i++) {
            const tg_tensor *x = nd->in[i];
            if (x->node >= 0 && (size_t)x->node < k && tg_tape_node(ctx, (size_t)x->node)->out == x)
                seen[x->node] = 1;
            else
                leaf_line(f, x);
            fprintf(f, "  t%p -> t%p [label=\"%d\"];\n", (const void *)x, (void *)nd->out, i);
        }
    }
    fprintf(f, "}\n");
    tg_ctx_arena_rewind(ctx, mark);
    return ferror(f) ? tg_ctx_fail(ctx, TG_ERR_IO, "graph_dot: write failed") : TG_OK;
}
