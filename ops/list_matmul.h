/* ops/matmul.c */
TG_OP(MATMUL, matmul)
TG_OP(LINEAR, linear)
