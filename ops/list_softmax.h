/* ops/softmax.c */
TG_OP(SOFTMAX, softmax)
TG_OP(LOG_SOFTMAX, log_softmax)
