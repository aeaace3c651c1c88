/*
 * hnsw_check.c - graph invariants, for qz_db_check(), `quartz check` and
 * the tests that run after every kind of mutation.
 */
#include <math.h>

#include "index/hnsw.h"
#include "util/error.h"

static int check_slot(const qz__hnsw *h, uint32_t hw, uint32_t s, size_t *live, size_t *deleted)
{
    unsigned st = atomic_load_explicit(&h->state[s], memory_order_relaxed);
    if (st == QZ__FREE) return QZ_OK;
    if (st > QZ__DELETED) return qz__err(QZ_ECORRUPT, "slot %u has invalid state %u", s, st);
    if (st == QZ__LIVE) ++*live;
    if (st == QZ__DELETED) ++*deleted;
    int level = h->levels[s];
    if (level > QZ__HNSW_MAX_LEVEL) return qz__err(QZ_ECORRUPT, "slot %u has level %d", s, level);
    if (level > 0 && !h->upper[s]) return qz__err(QZ_ECORRUPT, "slot %u (level %d) has no upper links", s, level);
    for (int l = 0; l <= level; l++) {
        _Atomic uint32_t *ll = qz__links(h, s, l);
        uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
        if (n > qz__max_links(h, l))
            return qz__err(QZ_ECORRUPT, "slot %u has %u links on layer %d, at most %u allowed", s, n, l,
                           qz__max_links(h, l));
        for (uint32_t i = 1; i <= n; i++) {
            uint32_t t = atomic_load_explicit(&ll[i], memory_order_relaxed);
            if (t >= hw) return qz__err(QZ_ECORRUPT, "slot %u links to unallocated slot %u", s, t);
            if (t == s) return qz__err(QZ_ECORRUPT, "slot %u links to itself on layer %d", s, l);
            if (atomic_load_explicit(&h->state[t], memory_order_relaxed) == QZ__FREE)
                return qz__err(QZ_ECORRUPT, "slot %u links to free slot %u on layer %d", s, t, l);
            if (h->levels[t] < l)
                return qz__err(QZ_ECORRUPT, "slot %u links on layer %d to slot %u of level %d", s, l, t, h->levels[t]);
        }
    }
    /* the originals, where the index holds them (orig_external: the
     * storage's records, verified by qz_db_check's record pass) */
    if (h->xs.kind != QZ__DIST_HAMMING && !h->orig_external) {
        const float *v = qz__node_rec(h, s);
        for (uint32_t i = 0; i < h->dim; i++)
            if (!isfinite(v[i])) return qz__err(QZ_ECORRUPT, "slot %u holds a non-finite component %u", s, i);
    }
    return QZ_OK;
}

int qz__hnsw_check(qz__hnsw *h)
{
    pthread_rwlock_wrlock(&h->resize);
    int rc = QZ_OK;
    size_t live = 0, deleted = 0;
    uint32_t hw = qz__hnsw_high_water(h);
    for (uint32_t s = 0; s < hw && rc == QZ_OK; s++) rc = check_slot(h, hw, s, &live, &deleted);
    if (rc == QZ_OK && live != atomic_load(&h->n_live))
        rc = qz__err(QZ_ECORRUPT, "%zu live slots but the live count says %zu", live, atomic_load(&h->n_live));
    if (rc == QZ_OK && deleted != atomic_load(&h->n_deleted))
        rc = qz__err(QZ_ECORRUPT, "%zu deleted slots but the count says %zu", deleted, atomic_load(&h->n_deleted));
    uint64_t e = atomic_load(&h->entry);
    if (rc == QZ_OK && e != UINT64_MAX) {
        uint32_t s = (uint32_t)e;
        if (s >= hw || atomic_load(&h->state[s]) == QZ__FREE)
            rc = qz__err(QZ_ECORRUPT, "entry point %u is not an allocated node", s);
        else if (h->levels[s] != (int)(e >> 32))
            rc = qz__err(QZ_ECORRUPT, "entry point %u has level %d, recorded %d", s, h->levels[s], (int)(e >> 32));
    } else if (rc == QZ_OK && live + deleted > 0) {
        rc = qz__err(QZ_ECORRUPT, "index holds %zu nodes but has no entry point", live + deleted);
    }
    pthread_rwlock_unlock(&h->resize);
    return rc;
}
