/* ops/matmul.c */
TG_OP(MATMUL, matmul)
