/* ops/activation.c */
TG_OP(SIGMOID,    sigmoid)
TG_OP(TANH,       tanh)
TG_OP(RELU,       relu)
TG_OP(LEAKY_RELU, leaky_relu)
TG_OP(ELU,        elu)
TG_OP(SOFTPLUS,   softplus)
TG_OP(SILU,       silu)
TG_OP(GELU,       gelu)
