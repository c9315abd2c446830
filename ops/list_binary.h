/* ops/binary.c */
