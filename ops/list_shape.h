/* ops/shape.c */
TG_OP(RESHAPE, reshape)
TG_OP(PERMUTE, permute)
TG_OP(SLICE, slice)
TG_OP(CONCAT, concat)
TG_OP(STACK, stack)
TG_OP(BROADCAST_TO, broadcast_to)
/* ops/index.c */
TG_OP(INDEX_SELECT, index_select)
TG_OP(GATHER_ROWS, gather_rows)
