/*
 * parallel.h - run one function over the indices [0, n) on several threads
 * (internal). Used by batch insertion and by loading a database.
 */
#ifndef QZ_UTIL_PARALLEL_H
#define QZ_UTIL_PARALLEL_H

#include <stddef.h>

/* Call fn(i, user) for every i in [0, n) on up to `threads` threads, the
 * caller's included (at most 64). Indices are handed out one at a time from
 * a shared counter. The first negative return stops the handing out; it is
 * returned (other threads finish the call they are in). fn records any
 * message itself: it runs on the worker's thread. */
int qz__parallel_for(size_t n, unsigned threads, int (*fn)(size_t i, void *user), void *user);

#endif
