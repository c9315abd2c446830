/* ops/unary.c */
TG_OP(EXP,    exp)
TG_OP(NEG,    neg)
TG_OP(LOG,    log)
TG_OP(SQRT,   sqrt)
TG_OP(ABS,    abs)
TG_OP(SQUARE, square)
TG_OP(CLAMP,  clamp)
