/*
 * sync.h - small synchronisation helpers (internal).
 *
 * A one-byte spinlock for per-node link lists: nodes are many and critical
 * sections are a few hundred nanoseconds, so a mutex per node (40 bytes, as
 * hnswlib uses) would cost more memory than the links it guards. The lock
 * yields the CPU after a short spin because on a small machine the holder
 * may have been preempted.
 */
#ifndef QZ_UTIL_SYNC_H
#define QZ_UTIL_SYNC_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QZ__CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define QZ__CPU_RELAX() __asm__ __volatile__("yield")
#else
#define QZ__CPU_RELAX() ((void)0)
#endif

typedef atomic_uchar qz__spinlock;

static inline void qz__spin_lock(qz__spinlock *l)
{
    for (unsigned spins = 0;; spins++) {
        if (!atomic_load_explicit(l, memory_order_relaxed) &&
            !atomic_exchange_explicit(l, 1, memory_order_acquire))
            return;
        if (spins < 64)
            QZ__CPU_RELAX();
        else
            sched_yield();
    }
}

static inline void qz__spin_unlock(qz__spinlock *l) { atomic_store_explicit(l, 0, memory_order_release); }

/* An rwlock whose writers are not starved by a steady stream of readers
 * (growth, repair and checks must get through while searches keep coming). */
static inline void qz__rwlock_init_writer_pref(pthread_rwlock_t *l)
{
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
#if defined(__GLIBC__)
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(l, &ra);
    pthread_rwlockattr_destroy(&ra);
}

/* Number of online CPUs, at least 1. */
unsigned qz__cpu_count(void);

#endif
