/* ops/norm.c (batch_norm, layer_norm) and ops/dropout.c */
TG_OP(BATCH_NORM, batch_norm)
TG_OP(LAYER_NORM, layer_norm)
TG_OP(DROPOUT, dropout)
