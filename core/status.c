/* status.c — status names, dtype facts, the assertion hook. */
#include "tg_core.h"

#include <stdio.h>
#include <stdlib.h>

const char *tg_status_str(tg_status s)
{
    switch (s) {
    case TG_OK:          return "ok";
    case TG_ERR_NOMEM:   return "out of memory";
    case TG_ERR_SHAPE:   return "shape error";
    case TG_ERR_ARG:     return "invalid argument";
    case TG_ERR_STATE:   return "invalid state";
    case TG_ERR_BACKEND: return "backend failure";
    case TG_ERR_IO:      return "I/O error";
    case TG_ERR_FORMAT:  return "format error";
    case TG_ERR_NUMERIC: return "numerical error";
    }
    return "unknown status";
}

size_t tg_dtype_size(tg_dtype dt)
{
    switch (dt) {
    case TG_F32: return 4;
    case TG_F64: return 8;
    case TG_I32: return 4;
    }
    return 0;
}

const char *tg_dtype_name(tg_dtype dt)
{
    switch (dt) {
    case TG_F32: return "f32";
    case TG_F64: return "f64";
    case TG_I32: return "i32";
    }
    return "invalid";
}

#ifndef NDEBUG
/* NOTE: reached only when the library's own invariant is broken (a bug in
 * tapegrad, never bad user input), so stopping is the honest thing to do. */
void tg_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "tapegrad: internal invariant failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
#endif
