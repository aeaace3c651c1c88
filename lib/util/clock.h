/* clock.h - the monotonic clock every timer of the library reads (internal). */
#ifndef QZ_UTIL_CLOCK_H
#define QZ_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t qz__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
