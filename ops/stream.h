/* stream.h — streaming (non-temporal) stores for op outputs too large for
 * the last-level cache (private to ops/).
 *
 * An ordinary store to a line that is not in cache first reads the line from
 * memory (write-allocate), so an elementwise op over tensors larger than the
 * cache moves three bytes for every two it means to: read x, read y, write
 * y. A streaming store writes y's lines whole, around the caches: 64 MiB in,
 * 64 MiB out at 4096², f32, one thread, 3.7 ms against 5.6-5.9 with
 * ordinary stores (a max(x, 0) loop, this machine, 9 runs). Below the
 * threshold the output would still be in cache for the op that reads it
 * next, so ordinary stores stay. What is stored is the same either way:
 * results keep their bits.
 *
 * Threshold: 3/4 of the last-level cache (Linux's sysfs, else sysconf, else
 * 32 MiB; at least 1 MiB), near where glibc's memcpy switches to
 * non-temporal stores for the same reason (its exact rule varies by
 * version). Streaming stores are weakly ordered: every writer calls
 * tg_stream_fence when its part is done. */
#ifndef TG_STREAM_H
#define TG_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

/* Output bytes from which an op stores with tg_stream_copy. */
size_t tg_stream_min_bytes(void);

/* Tests only: with on, use `bytes` as the threshold instead of the
 * machine's (0: every aligned output streams); on = 0 goes back to the
 * machine's. Not thread-safe: call it between ops, never while one runs. */
void tg_stream_set_min_bytes(size_t bytes, int on);

/* Whether an output of `bytes` at `dst` goes through streaming stores: big
 * enough, and 64-byte aligned (arena and parameter blocks are). */
static inline int tg_stream_wanted(const void *dst, size_t bytes)
{
#if defined(__SSE2__)
    return bytes >= tg_stream_min_bytes() && ((uintptr_t)dst & 63) == 0;
#else
    (void)dst; (void)bytes;
    return 0;   /* no streaming stores: the scratch copy would only cost */
#endif
}

/* Copy `bytes` from src (64-byte aligned, in cache: a scratch chunk) to dst
 * (64-byte aligned) with streaming stores; a tail under 64 bytes is copied
 * normally. Call tg_stream_fence once a thread has finished its part. */
static inline void tg_stream_copy(void *dst, const void *src, size_t bytes)
{
    char *d = dst;
    const char *s = src;
    size_t b = 0;
#if defined(__AVX512F__)
    for (; b + 64 <= bytes; b += 64)
        _mm512_stream_si512((void *)(d + b), _mm512_load_si512((const void *)(s + b)));
#elif defined(__AVX__)
    for (; b + 64 <= bytes; b += 64) {
        _mm256_stream_si256((__m256i *)(void *)(d + b), _mm256_load_si256((const __m256i *)(const void *)(s + b)));
        _mm256_stream_si256((__m256i *)(void *)(d + b + 32),
                            _mm256_load_si256((const __m256i *)(const void *)(s + b + 32)));
    }
#elif defined(__SSE2__)
    for (; b + 64 <= bytes; b += 64)
        for (int q = 0; q < 4; q++)
            _mm_stream_si128((__m128i *)(void *)(d + b + 16 * q),
                             _mm_load_si128((const __m128i *)(const void *)(s + b + 16 * q)));
#endif
    if (b < bytes)
        memcpy(d + b, s + b, bytes - b);
}

/* Order this thread's streaming stores before whatever follows (another
 * thread reading the output after the parallel region, say). */
static inline void tg_stream_fence(void)
{
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

#endif
