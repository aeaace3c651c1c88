/* cpu.c - how many threads a parallel batch may use. */
#include "util/sync.h"

#include <unistd.h>

unsigned qz__cpu_count(void)
{
#ifdef _SC_NPROCESSORS_ONLN
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 0) return (unsigned)n;
#endif
    return 1;
}
