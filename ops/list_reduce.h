/* ops/reduce.c */
TG_OP(SUM, sum)
TG_OP(MEAN, mean)
TG_OP(VAR, var)
TG_OP(MAX, max)
TG_OP(MIN, min)
TG_OP(LOGSUMEXP, logsumexp)
