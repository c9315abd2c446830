/* safetensors_impl.h — private helpers shared by safetensors.c (reading) and
 * safetensors_write.c (writing). Not installed. */
#ifndef TG_SAFETENSORS_IMPL_H
#define TG_SAFETENSORS_IMPL_H

#include "tg_checkpoint.h"

#include <stdarg.h>
#include <stdio.h>

/* Write the message into err (when there is room) and return s. */
static inline tg_status st_fail(char *err, size_t cap, tg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static inline tg_status st_fail(char *err, size_t cap, tg_status s, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* Element count of a caller-given shape, or -1 when a dim is negative or the
 * byte count (numel * elem_size) would not fit in int64. */
static inline int64_t st_checked_numel(int ndim, const int64_t *shape, size_t elem_size)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return -1;
        if (shape[i] && n > INT64_MAX / shape[i])
            return -1;
        n *= shape[i];
    }
    if (elem_size && n > INT64_MAX / (int64_t)elem_size)
        return -1;
    return n;
}

/* "F32", "F64", "I32" for tapegrad's dtypes; NULL for anything else. */
static inline const char *st_dtype_name(tg_dtype dt)
{
    switch (dt) {
    case TG_F32: return "F32";
    case TG_F64: return "F64";
    case TG_I32: return "I32";
    }
    return NULL;
}

#endif
