/* alloc.c - malloc wrappers with a failure-injection hook for tests. */
#include <string.h>
#include "util/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>

#if defined(__unix__) || defined(__APPLE__)
#if !defined(__EMSCRIPTEN__) && !defined(__wasi__)
#include <sys/mman.h>
#define QZ__HAVE_MMAP 1
#endif
#endif

static atomic_long fail_countdown = -1;
static _Atomic size_t fail_above = 0; /* 0: no cap */

static int too_big(size_t n)
{
    size_t cap = atomic_load_explicit(&fail_above, memory_order_relaxed);
    return cap && n > cap;
}

static int should_fail(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n < 0) return 0;
    if (n == 0) return 1;
    atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
    return 0;
}

void qz__alloc_fail_after(long n) { atomic_store(&fail_countdown, n); }

void qz__alloc_fail_above(size_t n) { atomic_store(&fail_above, n); }

void *qz__malloc(size_t n) { return too_big(n) || should_fail() ? NULL : malloc(n ? n : 1); }

void *qz__calloc(size_t count, size_t size)
{
    if (size && count > (size_t)-1 / size) return NULL;
    return too_big(count * size) || should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *qz__realloc(void *p, size_t n) { return too_big(n) || should_fail() ? NULL : realloc(p, n ? n : 1); }

void qz__free(void *p) { free(p); }

void *qz__pages_alloc(size_t n)
{
    if (too_big(n) || should_fail()) return NULL;
#ifdef QZ__HAVE_MMAP
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
#else
    return malloc(n ? n : 1);
#endif
}

void qz__pages_free(void *p, size_t n)
{
    if (!p) return;
#ifdef QZ__HAVE_MMAP
    (void)munmap(p, n ? n : 1);
#else
    (void)n;
    free(p);
#endif
}

char *qz__strdup2(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = suffix ? strlen(suffix) : 0;
    char *p = qz__malloc(a + b + 1);
    if (!p) return NULL;
    memcpy(p, s, a);
    if (b) memcpy(p + a, suffix, b);
    p[a + b] = '\0';
    return p;
}
