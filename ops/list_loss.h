/* ops/loss.c */
TG_OP(MSE, mse)
TG_OP(L1, l1)
TG_OP(HUBER, huber)
TG_OP(CROSS_ENTROPY, cross_entropy)
TG_OP(BCE_WITH_LOGITS, bce_with_logits)
