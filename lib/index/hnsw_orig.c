/*
 * hnsw_orig.c - where a quantized index reads the f32 originals it
 * re-ranks with: in memory (h->orig), or, with orig_external, outside it.
 *
 * orig_external is the caller's choice for a database larger than RAM: the
 * index keeps only the codes and the links. Construction and repair then
 * measure on the codes (h->bs = &h->cs), so nothing but re-ranking and
 * qz_db_get() needs an original, and those read it
 *  - from a pin, a copy the index holds from the insertion until the
 *    storage holds the write (lib/engine calls qz__hnsw_unpin() with the
 *    journal's applied sequence after each commit), or
 *  - through h->fetch (lib/engine reads the storage's vector record and
 *    checks that it is the slot's own write, by its sequence number).
 *
 * A pin is read and cleared under its slot's spinlock (the lock that guards
 * the slot's link lists), so a reader copies it whole or finds NULL and
 * goes to the storage, which holds the write by then: the pin is cleared
 * only after the storage commit that contains it. No grace period is needed
 * and a pinned copy is freed at once. Pins wait in a queue (slot, seq) that
 * qz__hnsw_unpin() walks once per new applied sequence, not once per write.
 *
 * Lock order: `resize` (shared) -> pin_mu, and slot spinlocks inside
 * `resize`; unpin takes pin_mu and `resize` one after the other, never both.
 */
#include <stdlib.h>
#include <string.h>

#include "index/hnsw.h"
#include "util/alloc.h"
#include "util/error.h"

#define FETCH_CHUNK 64

void qz__hnsw_set_fetch(qz__hnsw *h, qz__orig_fetch_fn fn, void *user)
{
    h->fetch = fn;
    h->fetch_user = user;
}

int qz__hnsw_originals(const qz__hnsw *h, size_t n, const uint32_t *slots, void *const *dst, unsigned char *ok)
{
    if (!h->orig_external) {
        for (size_t i = 0; i < n; i++) {
            memcpy(dst[i], h->orig + (size_t)slots[i] * h->vec_bytes, h->vec_bytes);
            ok[i] = 1;
        }
        return QZ_OK;
    }
    uint64_t labels[FETCH_CHUNK], seqs[FETCH_CHUNK];
    void *fd[FETCH_CHUNK];
    unsigned char fok[FETCH_CHUNK];
    size_t where[FETCH_CHUNK];
    size_t m = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n) {
            uint32_t s = slots[i];
            qz__spinlock *l = &h->locks[s];
            qz__spin_lock(l);
            void *p = atomic_load_explicit(&h->pin[s], memory_order_relaxed);
            if (p) memcpy(dst[i], p, h->vec_bytes);
            qz__spin_unlock(l);
            if (p) {
                ok[i] = 1;
                continue;
            }
            labels[m] = h->labels[s];
            seqs[m] = h->seqs[s];
            fd[m] = dst[i];
            where[m++] = i;
        }
        if (m == FETCH_CHUNK || (i == n && m)) {
            if (!h->fetch) return qz__err(QZ_EIO, "index: originals in storage but no storage to read them from");
            int rc = h->fetch(h->fetch_user, m, labels, seqs, fd, fok);
            if (rc < 0) return rc;
            for (size_t j = 0; j < m; j++) ok[where[j]] = fok[j];
            m = 0;
        }
    }
    return QZ_OK;
}

int qz__hnsw_pin_prepare(qz__hnsw *h, const void *vec, uint64_t seq, void **pin)
{
    *pin = NULL;
    if (!h->orig_external || seq <= atomic_load_explicit(&h->pin_above, memory_order_acquire)) return QZ_OK;
    void *p = qz__malloc(h->vec_bytes);
    if (!p) return qz__err(QZ_ENOMEM, "out of memory keeping a vector until storage holds it");
    memcpy(p, vec, h->vec_bytes);
    pthread_mutex_lock(&h->pin_mu);
    int rc = QZ_OK;
    /* room for the queue entry now, so that attaching cannot fail */
    if (h->n_pinq + h->pin_reserved == h->cap_pinq) {
        size_t nc = h->cap_pinq ? 2 * h->cap_pinq : 256;
        qz__pin_ent *q = qz__realloc(h->pinq, nc * sizeof *q);
        if (!q) {
            rc = qz__err(QZ_ENOMEM, "out of memory keeping a vector until storage holds it");
        } else {
            h->pinq = q;
            h->cap_pinq = nc;
        }
    }
    if (rc == QZ_OK) h->pin_reserved++;
    pthread_mutex_unlock(&h->pin_mu);
    if (rc < 0) {
        qz__free(p);
        return rc;
    }
    *pin = p;
    return QZ_OK;
}

void qz__hnsw_pin_cancel(qz__hnsw *h, void *pin)
{
    if (!pin) return;
    qz__free(pin);
    pthread_mutex_lock(&h->pin_mu);
    h->pin_reserved--;
    pthread_mutex_unlock(&h->pin_mu);
}

void qz__hnsw_pin_attach(qz__hnsw *h, uint32_t slot, uint64_t seq, void *pin)
{
    if (!pin) return;
    qz__spinlock *l = &h->locks[slot];
    qz__spin_lock(l);
    void *old = atomic_exchange_explicit(&h->pin[slot], pin, memory_order_relaxed);
    qz__spin_unlock(l);
    if (old) { /* a failed insertion's leftover in a reused slot */
        qz__free(old);
        atomic_fetch_sub(&h->pin_bytes, h->vec_bytes);
    }
    atomic_fetch_add(&h->pin_bytes, h->vec_bytes);
    pthread_mutex_lock(&h->pin_mu);
    h->pin_reserved--;
    h->pinq[h->n_pinq++] = (qz__pin_ent){slot, seq};
    pthread_mutex_unlock(&h->pin_mu);
}

void qz__hnsw_unpin(qz__hnsw *h, uint64_t applied)
{
    if (!h->orig_external) return;
    uint64_t cur = atomic_load(&h->pin_above);
    while (applied > cur && !atomic_compare_exchange_weak(&h->pin_above, &cur, applied)) {
    }
    if (applied <= cur) return; /* nothing newly stored since the last call */
    pthread_mutex_lock(&h->pin_mu);
    size_t n = 0;
    for (size_t i = 0; i < h->n_pinq; i++) n += h->pinq[i].seq <= applied;
    qz__pin_ent *take = n ? qz__malloc(n * sizeof *take) : NULL;
    if (!take) { /* nothing to do, or no memory: the next commit's call tries again */
        pthread_mutex_unlock(&h->pin_mu);
        return;
    }
    size_t w = 0, t = 0;
    for (size_t i = 0; i < h->n_pinq; i++) {
        if (h->pinq[i].seq <= applied)
            take[t++] = h->pinq[i];
        else
            h->pinq[w++] = h->pinq[i];
    }
    h->n_pinq = w;
    if (w == 0 && h->pin_reserved == 0 && h->cap_pinq > 256) { /* a bulk load's queue is not kept */
        qz__free(h->pinq);
        h->pinq = NULL;
        h->cap_pinq = 0;
    }
    pthread_mutex_unlock(&h->pin_mu);

    pthread_rwlock_rdlock(&h->resize);
    size_t freed = 0;
    for (size_t i = 0; i < t; i++) {
        uint32_t s = take[i].slot;
        qz__spinlock *l = &h->locks[s];
        void *p = NULL;
        qz__spin_lock(l);
        /* the slot may hold a newer write by now, with a pin of its own */
        if (h->seqs[s] == take[i].seq) p = atomic_exchange_explicit(&h->pin[s], NULL, memory_order_relaxed);
        qz__spin_unlock(l);
        if (p) {
            qz__free(p);
            freed++;
        }
    }
    pthread_rwlock_unlock(&h->resize);
    atomic_fetch_sub(&h->pin_bytes, freed * h->vec_bytes);
    qz__free(take);
}

void qz__hnsw_pin_drop(qz__hnsw *h, uint32_t slot)
{
    if (!h->orig_external) return;
    void *p = atomic_exchange_explicit(&h->pin[slot], NULL, memory_order_relaxed);
    if (p) {
        qz__free(p);
        atomic_fetch_sub(&h->pin_bytes, h->vec_bytes);
    }
}
