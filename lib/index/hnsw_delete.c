/*
 * hnsw_delete.c - deletion: marking, and the batch repair that unlinks
 * deleted nodes and frees their slots.
 *
 * Why batches: a deleted node's in-links are unknown (lists are one-way), so
 * finding them costs a scan of the whole graph. Repair runs when enough
 * deletions have accumulated that the scan is cheap per deletion. Until
 * then deleted nodes stay in the graph as waypoints: searches pass through
 * them, never return them, and insertions never pick them as neighbours.
 *
 * How a list is repaired: every live node p that links to a deleted node d
 * on layer l takes as candidates its live links plus the live links of d
 * (and, when d's links are deleted too, of theirs: two hops). If that leaves
 * fewer than half the layer's degree, a beam search from the entry point
 * adds candidates, as if p were inserted again. p's own surviving links plus
 * the nearest 2*max others go through the insertion heuristic. Keeping the
 * own links among the candidates matters: they are the long links between
 * clusters, and cutting the pool to the nearest candidates only once split
 * a clustered graph into islands. This keeps recall after heavy deletion
 * (tests/api/test_delete.c deletes half the set).
 *
 * The repair holds `resize` exclusive: no search runs, so freed slots are
 * reused only after every reader that could know their number has finished.
 */
#include <stdlib.h>

#include "index/hnsw.h"
#include "index/search_ctx.h"
#include "util/alloc.h"
#include "util/error.h"

void qz__hnsw_mark_deleted(qz__hnsw *h, uint32_t slot)
{
    unsigned char expect = QZ__LIVE;
    if (atomic_compare_exchange_strong(&h->state[slot], &expect, QZ__DELETED)) {
        atomic_fetch_sub(&h->n_live, 1);
        atomic_fetch_add(&h->n_deleted, 1);
    }
}

static inline int is_deleted(const qz__hnsw *h, uint32_t s)
{
    return atomic_load_explicit(&h->state[s], memory_order_relaxed) == QZ__DELETED;
}

/* Add s as a candidate for p unless seen; distances are filled later. */
static int add_cand(qz__search_ctx *c, size_t *n, uint32_t p, uint32_t s)
{
    if (s == p || !qz__visit(c, s)) return 0;
    if (qz__ctx_scratch(c, *n + 1)) return -1;
    c->scratch[(*n)++].slot = s;
    return 0;
}

/* Gather live candidates reachable from p's list through deleted nodes, up to two hops. */
static int gather(const qz__hnsw *h, qz__search_ctx *c, uint32_t p, int l, size_t *n)
{
    _Atomic uint32_t *ll = qz__links(h, p, l);
    uint32_t cnt = atomic_load_explicit(&ll[0], memory_order_relaxed);
    /* First p's own live links, so they sit at the front of scratch. */
    for (uint32_t i = 1; i <= cnt; i++) {
        uint32_t d = atomic_load_explicit(&ll[i], memory_order_relaxed);
        if (!is_deleted(h, d) && add_cand(c, n, p, d)) return -1;
    }
    for (uint32_t i = 1; i <= cnt; i++) {
        uint32_t d = atomic_load_explicit(&ll[i], memory_order_relaxed);
        if (!is_deleted(h, d)) continue;
        _Atomic uint32_t *dl = qz__links(h, d, l);
        uint32_t dn = atomic_load_explicit(&dl[0], memory_order_relaxed);
        for (uint32_t j = 1; j <= dn; j++) {
            uint32_t e = atomic_load_explicit(&dl[j], memory_order_relaxed);
            if (!is_deleted(h, e)) {
                if (add_cand(c, n, p, e)) return -1;
                continue;
            }
            _Atomic uint32_t *el = qz__links(h, e, l);
            uint32_t en = atomic_load_explicit(&el[0], memory_order_relaxed);
            for (uint32_t k = 1; k <= en; k++) {
                uint32_t f = atomic_load_explicit(&el[k], memory_order_relaxed);
                if (!is_deleted(h, f) && add_cand(c, n, p, f)) return -1;
            }
        }
    }
    return 0;
}

static int has_deleted_link(const qz__hnsw *h, uint32_t p, int l)
{
    _Atomic uint32_t *ll = qz__links(h, p, l);
    uint32_t cnt = atomic_load_explicit(&ll[0], memory_order_relaxed);
    for (uint32_t i = 1; i <= cnt; i++)
        if (is_deleted(h, atomic_load_explicit(&ll[i], memory_order_relaxed))) return 1;
    return 0;
}

static size_t count_live_links(const qz__hnsw *h, uint32_t p, int l)
{
    _Atomic uint32_t *ll = qz__links(h, p, l);
    uint32_t cnt = atomic_load_explicit(&ll[0], memory_order_relaxed);
    size_t n = 0;
    for (uint32_t i = 1; i <= cnt; i++) n += !is_deleted(h, atomic_load_explicit(&ll[i], memory_order_relaxed));
    return n;
}

/* Pick the live node with the highest level as the new entry point. */
static void choose_entry(qz__hnsw *h)
{
    uint64_t e = atomic_load(&h->entry);
    if (e != UINT64_MAX && !is_deleted(h, (uint32_t)e)) return;
    uint64_t best = UINT64_MAX;
    int best_level = -1;
    uint32_t hw = qz__hnsw_high_water(h);
    for (uint32_t s = 0; s < hw; s++) {
        unsigned st = atomic_load_explicit(&h->state[s], memory_order_relaxed);
        if ((st == QZ__LIVE || st == QZ__INSERTING) && (int)h->levels[s] > best_level) {
            best_level = h->levels[s];
            best = ((uint64_t)best_level << 32) | s;
        }
    }
    atomic_store(&h->entry, best);
}

/* Repair p's list on layer l. Called with `resize` exclusive. */
static int repair_list(qz__hnsw *h, qz__search_ctx *c, uint32_t p, int l)
{
    size_t max = qz__max_links(h, l);
    size_t n = 0;
    qz__ctx_new_tag(c);
    if (gather(h, c, p, l, &n)) return qz__err(QZ_ENOMEM, "out of memory repairing the graph");
    const void *base = qz__node_vec(h, p);
    if (n < max / 2) {
        /* Too few left nearby: search for p as if inserting it again. */
        uint64_t e = atomic_load(&h->entry);
        if (e != UINT64_MAX && (int)(e >> 32) >= l) {
            uint32_t ep = qz__hnsw_descend(h, base, (uint32_t)e, (int)(e >> 32), l);
            qz__hit *res;
            qz__ctx_new_tag(c);
            size_t m = qz__hnsw_search_layer(h, c, base, ep, l, h->ef_construction, 0, NULL, NULL, &res);
            /* Merge its results, skipping ones gathered already. */
            for (size_t i = 0; i < m; i++) {
                uint32_t s = res[i].slot;
                if (s == p) continue;
                int dup = 0;
                for (size_t j = 0; j < n && !dup; j++) dup = c->scratch[j].slot == s;
                if (!dup) {
                    if (qz__ctx_scratch(c, n + 1)) return qz__err(QZ_ENOMEM, "out of memory repairing");
                    c->scratch[n++].slot = s;
                }
            }
        }
    }
    for (size_t i = 0; i < n; i++) c->scratch[i].dist = qz__dist(h, base, qz__node_vec(h, c->scratch[i].slot));
    /* p's own surviving links come first in scratch (gather adds them in
     * list order) and all stay candidates: they are the long, diverse
     * links the heuristic chose before, which keep clusters connected.
     * Only the second-hop candidates are cut to the nearest ones. */
    size_t own = count_live_links(h, p, l);
    if (n > own) {
        qsort(c->scratch + own, n - own, sizeof *c->scratch, qz__hit_cmp);
        if (n - own > 2 * max) n = own + 2 * max;
    }
    qsort(c->scratch, n, sizeof *c->scratch, qz__hit_cmp);
    size_t kept = qz__hnsw_select(h, c->scratch, n, max);
    _Atomic uint32_t *ll = qz__links(h, p, l);
    for (size_t i = 0; i < kept; i++) atomic_store_explicit(&ll[1 + i], c->scratch[i].slot, memory_order_relaxed);
    atomic_store_explicit(&ll[0], (uint32_t)kept, memory_order_release);
    return QZ_OK;
}

/*
 * Orphans: a live node that no live node links to on layer 0 can be reached
 * by no search. Back-link pruning during insertion (also in hnswlib) and the
 * loss of deleted neighbours both create them, a handful per ten thousand
 * under heavy churn. While the graph is held still for repair, count the
 * in-links and link every orphan in again: search for it as if inserting
 * it, and offer it to its nearest live nodes; when the heuristic prunes it
 * from all of them, it takes the place of the farthest link of the nearest.
 */
static int relink_orphans(qz__hnsw *h, qz__search_ctx *c, uint32_t hw)
{
    uint64_t e = atomic_load(&h->entry);
    if (e == UINT64_MAX) return QZ_OK;
    uint32_t *indeg = qz__calloc(hw ? hw : 1, sizeof *indeg);
    qz__hit *tmp = qz__malloc((h->M0 + 1) * sizeof *tmp);
    if (!indeg || !tmp) {
        qz__free(indeg);
        qz__free(tmp);
        return qz__err(QZ_ENOMEM, "out of memory checking the graph for orphans");
    }
    for (uint32_t p = 0; p < hw; p++) {
        unsigned st = atomic_load_explicit(&h->state[p], memory_order_relaxed);
        if (st != QZ__LIVE && st != QZ__INSERTING) continue;
        _Atomic uint32_t *ll = qz__links(h, p, 0);
        uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
        for (uint32_t i = 1; i <= n; i++) {
            uint32_t t = atomic_load_explicit(&ll[i], memory_order_relaxed);
            if (!is_deleted(h, t)) indeg[t]++;
        }
    }
    for (uint32_t p = 0; p < hw; p++) {
        unsigned st = atomic_load_explicit(&h->state[p], memory_order_relaxed);
        if ((st != QZ__LIVE && st != QZ__INSERTING) || indeg[p] || p == (uint32_t)e) continue;
        const void *v = qz__node_vec(h, p);
        uint32_t ep = qz__hnsw_descend(h, v, (uint32_t)e, (int)(e >> 32), 0);
        qz__hit *res;
        qz__ctx_new_tag(c);
        size_t m = qz__hnsw_search_layer(h, c, v, ep, 0, h->ef_construction, 0, NULL, NULL, &res);
        size_t w = 0;
        for (size_t i = 0; i < m; i++)
            if (res[i].slot != p && !is_deleted(h, res[i].slot)) res[w++] = res[i];
        size_t kept = qz__hnsw_select(h, res, w, h->M);
        int linked = 0;
        for (size_t i = 0; i < kept; i++) {
            uint32_t nb = res[i].slot;
            qz__hnsw_connect_back(h, nb, p, 0, tmp);
            _Atomic uint32_t *ll = qz__links(h, nb, 0);
            uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
            for (uint32_t j = 1; j <= n && !linked; j++) linked = atomic_load_explicit(&ll[j], memory_order_relaxed) == p;
        }
        if (!linked && kept) {
            _Atomic uint32_t *ll = qz__links(h, res[0].slot, 0);
            uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
            if (n) atomic_store_explicit(&ll[n], p, memory_order_release);
            else {
                atomic_store_explicit(&ll[1], p, memory_order_release);
                atomic_store_explicit(&ll[0], 1, memory_order_release);
            }
        }
    }
    qz__free(indeg);
    qz__free(tmp);
    return QZ_OK;
}

int qz__hnsw_repair(qz__hnsw *h)
{
    pthread_rwlock_wrlock(&h->resize);
    int rc = QZ_OK;
    if (atomic_load(&h->n_deleted) == 0) goto out;
    qz__search_ctx *c = qz__ctx_get(h, h->ef_construction);
    if (!c) {
        rc = qz__err(QZ_ENOMEM, "out of memory repairing the graph");
        goto out;
    }
    choose_entry(h);
    uint32_t hw = qz__hnsw_high_water(h);
    for (uint32_t p = 0; p < hw && rc == QZ_OK; p++) {
        unsigned st = atomic_load_explicit(&h->state[p], memory_order_relaxed);
        if (st != QZ__LIVE && st != QZ__INSERTING) continue;
        for (int l = h->levels[p]; l >= 0 && rc == QZ_OK; l--)
            if (has_deleted_link(h, p, l)) rc = repair_list(h, c, p, l);
    }
    if (rc == QZ_OK) rc = relink_orphans(h, c, hw);
    qz__ctx_put(h, c);
    if (rc < 0) goto out; /* lists already repaired stay valid; deleted nodes stay as waypoints */

    /* Free the deleted slots: nothing links to them any more. */
    for (uint32_t s = 0; s < hw; s++) {
        if (!is_deleted(h, s)) continue;
        if (h->upper[s]) atomic_fetch_sub(&h->upper_bytes, (size_t)h->levels[s] * (h->M + 1) * sizeof(uint32_t));
        if (h->payload[s]) atomic_fetch_sub(&h->payload_bytes, *(uint32_t *)h->payload[s] + sizeof(uint32_t));
        qz__free(h->upper[s]);
        qz__free(h->payload[s]);
        h->upper[s] = NULL;
        h->payload[s] = NULL;
        h->levels[s] = 0;
        atomic_store_explicit((_Atomic uint32_t *)(void *)qz__node0(h, s), 0, memory_order_relaxed);
        atomic_store_explicit(&h->state[s], QZ__FREE, memory_order_relaxed);
        atomic_fetch_sub(&h->n_deleted, 1);
        qz__hnsw_release_slot(h, s);
    }
out:
    pthread_rwlock_unlock(&h->resize);
    return rc;
}
