/* ops/softmax.c */
