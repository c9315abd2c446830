/* stream.c — the streaming-store threshold (stream.h). */
#include "stream.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static size_t         min_bytes;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* The largest cache of CPU 0 as Linux's sysfs describes it, in bytes; 0 if
 * unknown. Read first because sysconf can be wrong inside a virtual machine
 * (here it says 320 MiB of L3 where sysfs and the hardware say 32). */
static long sysfs_llc(void)
{
    long best = 0;
    for (int i = 0; i < 8; i++) {
        char path[80];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        FILE *f = fopen(path, "r");
        if (!f)
            break;
        long v = 0;
        char unit = 0;
        if (fscanf(f, "%ld%c", &v, &unit) >= 1) {
            if (unit == 'K') v <<= 10;
            else if (unit == 'M') v <<= 20;
            if (v > best)
                best = v;
        }
        fclose(f);
    }
    return best;
}

static void measure(void)
{
    long llc = sysfs_llc();
#ifdef _SC_LEVEL3_CACHE_SIZE
    if (llc <= 0)
        llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    if (llc <= 0)
        llc = 32L << 20;
    min_bytes = (size_t)llc / 4 * 3;
    if (min_bytes < ((size_t)1 << 20))   /* below that, the output is still in cache next */
        min_bytes = (size_t)1 << 20;
}

/* tg_stream_set_min_bytes: tests only, set between ops. */
static size_t forced;
static int    is_forced;

void tg_stream_set_min_bytes(size_t bytes, int on)
{
    forced = bytes;
    is_forced = on;
}

size_t tg_stream_min_bytes(void)
{
    if (is_forced)
        return forced;
    pthread_once(&once, measure);
    return min_bytes;
}

/* ops_common.h, TG_EW_BACKWARD and TG_KEEP: a 1 and an all-ones mask read
 * once per VJP call, which the compiler cannot fold into the loops
 * (volatile, and in another unit). */
const volatile double tg_ew_one = 1.0;
const volatile uint64_t tg_ew_ones = ~(uint64_t)0;
