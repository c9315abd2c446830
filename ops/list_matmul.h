/* ops/matmul.c */
