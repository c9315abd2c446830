/* ops/activation.c */
