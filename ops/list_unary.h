/* ops/unary.c */
TG_OP(EXP, exp)
