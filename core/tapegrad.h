/* tapegrad.h — the whole public API: include this one header.
 *
 *   core   tg_core.h        tensors, the context (arena, errors, RNG, threads)
 *   graph  tg_graph.h       the op interface, recording, backward, graph export
 *          tg_gradcheck.h   the gradient checker (ops and composite functions)
 *          tg_bench.h       the op-throughput benchmark
 *   ops    tg_ops.h         the built-in ops and their registry
 *   nn     tg_optim.h       parameter store, optimizers, schedules, clipping
 *          tg_nn.h          layers, models, initialisers, model specs
 *          tg_data.h        IDX datasets, minibatch iteration
 *          tg_checkpoint.h  safetensors files
 */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include "tg_core.h"
#include "tg_graph.h"
#include "tg_gradcheck.h"
#include "tg_bench.h"
#include "tg_ops.h"
#include "tg_optim.h"
#include "tg_nn.h"
#include "tg_data.h"
#include "tg_checkpoint.h"
#include "tg_sites.h"     /* last: call-site macros over the functions above */

#endif
