/* parallel.c - a small work-sharing loop over pthreads. */
#include "util/parallel.h"

#include <pthread.h>
#include <stdatomic.h>

#define QZ__MAX_THREADS 64

typedef struct pfor {
    size_t n;
    int (*fn)(size_t, void *);
    void *user;
    atomic_size_t next;
    atomic_int rc;
} pfor;

static void *worker(void *arg)
{
    pfor *p = arg;
    while (atomic_load_explicit(&p->rc, memory_order_relaxed) >= 0) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n) break;
        int rc = p->fn(i, p->user);
        if (rc < 0) {
            int expect = 0;
            atomic_compare_exchange_strong(&p->rc, &expect, rc);
        }
    }
    return NULL;
}

int qz__parallel_for(size_t n, unsigned threads, int (*fn)(size_t i, void *user), void *user)
{
    pfor p = {.n = n, .fn = fn, .user = user};
    atomic_init(&p.next, 0);
    atomic_init(&p.rc, 0);
    size_t nt = threads ? threads : 1;
    if (nt > QZ__MAX_THREADS) nt = QZ__MAX_THREADS;
    if (nt > n) nt = n ? n : 1;
    pthread_t th[QZ__MAX_THREADS];
    size_t started = 0;
    for (size_t t = 1; t < nt; t++)
        if (pthread_create(&th[started], NULL, worker, &p) == 0) started++;
    worker(&p);
    for (size_t t = 0; t < started; t++) pthread_join(th[t], NULL);
    return atomic_load(&p.rc);
}
