/* op_list.h — THE list of built-in ops, one X-macro line each, grouped by
 * family file. Append only: ids may be serialised one day.
 *     TG_OP(ENUM, name)  ->  TG_OP_ENUM, and `const tg_op_def tg_op_name_def`
 *                            defined in the family's .c file.
 * A line here without a definition is a link error; a definition without a
 * sample is a test failure (tests/test_ops_grad.c). */
#include "list_unary.h"
#include "list_binary.h"
#include "list_activation.h"
#include "list_matmul.h"
#include "list_reduce.h"
#include "list_shape.h"
#include "list_softmax.h"
#include "list_loss.h"
#include "list_norm.h"
