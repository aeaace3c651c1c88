/*
 * alloc.h - the library's allocator entry points (internal).
 *
 * Every heap allocation of the library goes through these, so that tests can
 * make allocation N fail (an OOM sweep) and so that one place can change the
 * allocator later. They never abort: callers map NULL to QZ_ENOMEM.
 */
#ifndef QZ_UTIL_ALLOC_H
#define QZ_UTIL_ALLOC_H

#include <stddef.h>

void *qz__malloc(size_t n);
void *qz__calloc(size_t count, size_t size);
void *qz__realloc(void *p, size_t n);
void qz__free(void *p);

/* Whole pages straight from the operating system (anonymous mmap where
 * there is one, qz__malloc elsewhere), for short-lived bulk buffers: what
 * qz__pages_free() gives back leaves the process at once, where freed heap
 * memory between long-lived blocks would stay resident. @p n is rounded up
 * to the page size by the system; pass the same n to qz__pages_free(). The
 * failure hooks apply as to qz__malloc. */
void *qz__pages_alloc(size_t n);
void qz__pages_free(void *p, size_t n);

/* s followed by suffix (NULL: none), in a new qz__malloc'ed string; NULL
 * when out of memory. */
char *qz__strdup2(const char *s, const char *suffix);

/* Test hook: make the allocation after `n` more successful ones fail
 * (n < 0 disables). Not thread-safe with respect to the count. */
void qz__alloc_fail_after(long n);

/* Test hook: make every allocation of more than `n` bytes fail (0 disables;
 * a memory ceiling, as a wasm heap has one). */
void qz__alloc_fail_above(size_t n);

#endif
