/* registry.c — the table of built-in ops, generated from op_list.h. */
#include "tg_ops.h"

#include <string.h>

#define TG_OP(E, n) extern const tg_op_def tg_op_##n##_def;
#include "op_list.h"
#undef TG_OP

static const tg_op_def *const table[] = {
#define TG_OP(E, n) [TG_OP_##E] = &tg_op_##n##_def,
#include "op_list.h"
#undef TG_OP
};
_Static_assert(sizeof table / sizeof table[0] == TG_OP_COUNT, "op table out of sync with op_list.h");

size_t tg_op_count(void) { return TG_OP_COUNT; }

const tg_op_def *tg_op_get(size_t id) { return id < TG_OP_COUNT ? table[id] : NULL; }

const tg_op_def *tg_op_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < TG_OP_COUNT; i++)
        if (strcmp(table[i]->name, name) == 0)
            return table[i];
    return NULL;
}
