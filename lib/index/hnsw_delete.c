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
 * How a repair goes, in three phases:
 *  1. every live node p that links to a deleted node d on layer l takes as
 *     candidates its live links plus the live links of d (and, when d's
 *     links are deleted too, of theirs: two hops; gathering the second hop
 *     only for lists left short saved a quarter of the repair's time but
 *     lost upserted ids in tests/api/test_threads.c, whose old versions are
 *     chains of deleted nodes). p's own surviving links plus the nearest
 *     2*max others go through the insertion heuristic. Keeping the own
 *     links among the candidates matters: they are the long links between
 *     clusters, and cutting the pool to the nearest candidates only once
 *     split a clustered graph into islands. This keeps recall after heavy
 *     deletion (tests/api/test_delete.c deletes half).
 *  2. lists left with fewer than half the layer's degree of candidates get
 *     more from a beam search from the entry point, as if p were inserted
 *     again. It runs after phase 1 so that it meets no deleted node: its
 *     cost does not grow with the deleted ones (with 100 live among 10,000
 *     deleted, a repair took ~200 ms searching through them, now ~2 ms).
 *     With at most ef_construction live nodes, all of them are candidates.
 *  3. every live node unreachable from the entry point on layer 0 is linked
 *     in again (orphans, and islands at small M).
 * The cost is a scan of every list (to find the links to deleted nodes),
 * the deleted nodes' neighbourhoods (phase 1), one insertion-sized search
 * per weak list (phase 2) and a BFS (phase 3): linear in the graph, never
 * live x deleted.
 *
 * The repair holds `resize` exclusive: no search runs, so freed slots are
 * reused only after every reader that could know their number has finished.
 */
#include <stdlib.h>
#include <string.h>

#include "index/hnsw.h"
#include "index/search_ctx.h"
#include "util/alloc.h"
#include "util/error.h"

void qz__hnsw_mark_deleted(qz__hnsw *h, uint32_t slot)
{
    /* Only a LIVE slot gets a stamp: re-stamping a DELETED one would make it
     * a result again for searches that began after its deletion. Marks of
     * one slot are serialised by the caller, so the state cannot change
     * between this load and the store below. */
    if (atomic_load_explicit(&h->state[slot], memory_order_acquire) != QZ__LIVE) return;
    /* The order is the protocol of "Deletion epochs" in hnsw.h: the epoch
     * (seq_cst RMW, after everything this thread wrote before, such as the
     * new node of an upsert), then the stamp, then DELETED (release, so a
     * reader that sees DELETED sees the stamp). */
    uint64_t e = atomic_fetch_add(&h->del_clock, 1) + 1;
    atomic_store_explicit(&h->del_stamp[slot], e, memory_order_relaxed);
    atomic_store_explicit(&h->state[slot], QZ__DELETED, memory_order_release);
    atomic_fetch_sub(&h->n_live, 1);
    atomic_fetch_add(&h->n_deleted, 1);
}

static inline int is_deleted(const qz__hnsw *h, uint32_t s)
{
    return atomic_load_explicit(&h->state[s], memory_order_relaxed) == QZ__DELETED;
}

/* Add s as a candidate for p unless seen; distances are filled later. */
static int add_cand(qz__search_ctx *c, size_t *n, uint32_t p, uint32_t s)
{
    if (s == p || !qz__visit(c, s)) return 0;
    if (*n >= c->scratch_cap && qz__ctx_scratch(c, *n + 1)) return -1;
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

/* Candidates for p's list on layer l are in c->scratch[0, n), p's own
 * surviving links in the first `own`: compute their distances, keep the own
 * links and the nearest 2*max others, choose with the insertion heuristic
 * and write the list. Called with `resize` exclusive. */
static void select_and_write(qz__hnsw *h, qz__search_ctx *c, uint32_t p, int l, size_t n, size_t own)
{
    size_t max = qz__max_links(h, l);
    const void *base = qz__node_bvec(h, p);
    for (size_t i = 0; i < n; i++) c->scratch[i].dist = qz__bdist(h, base, qz__node_bvec(h, c->scratch[i].slot));
    /* p's own surviving links all stay candidates: they are the long,
     * diverse links the heuristic chose before, which keep clusters
     * connected. Only the others are cut to the nearest ones. */
    if (n - own > 2 * max) {
        qz__hits_nearest(c->scratch + own, n - own, 2 * max);
        n = own + 2 * max;
    }
    qz__hits_sort(c->scratch, n);
    size_t kept = qz__hnsw_select(h, c->scratch, n, max);
    _Atomic uint32_t *ll = qz__links(h, p, l);
    for (size_t i = 0; i < kept; i++) atomic_store_explicit(&ll[1 + i], c->scratch[i].slot, memory_order_relaxed);
    atomic_store_explicit(&ll[0], (uint32_t)kept, memory_order_release);
}

/* A list left with fewer than half its degree of candidates after phase 1. */
typedef struct weak_list {
    uint32_t slot;
    int level;
} weak_list;

typedef struct repair_job {
    qz__hnsw *h;
    qz__search_ctx *c;
    uint32_t hw;
    weak_list *weak;
    size_t n_weak, cap_weak;
    uint32_t *few;  /* every live slot, when there are at most ef_construction */
    size_t n_few;
} repair_job;

/* Phase 1 for p's list on layer l: its live links plus the live nodes up to
 * two hops away through deleted ones. Purely local: the cost is the deleted
 * neighbours' lists, however large the graph. */
static int repair_local(repair_job *j, uint32_t p, int l)
{
    qz__hnsw *h = j->h;
    size_t n = 0;
    qz__ctx_new_tag(j->c);
    if (gather(h, j->c, p, l, &n)) return qz__err(QZ_ENOMEM, "out of memory repairing the graph");
    size_t own = count_live_links(h, p, l);
    if (n < qz__max_links(h, l) / 2) {
        if (j->n_weak == j->cap_weak) {
            size_t nc = j->cap_weak ? j->cap_weak * 2 : 64;
            weak_list *w = qz__realloc(j->weak, nc * sizeof *w);
            if (!w) return qz__err(QZ_ENOMEM, "out of memory repairing the graph");
            j->weak = w;
            j->cap_weak = nc;
        }
        j->weak[j->n_weak++] = (weak_list){p, l};
    }
    select_and_write(h, j->c, p, l, n, own);
    return QZ_OK;
}

/* Phase 2 for a weak list: more candidates, as if p were inserted again.
 * Phase 1 left no live list linking to a deleted node, so the walk from the
 * (live) entry point meets live nodes only and costs what an insertion's
 * does, however many nodes are deleted; before, it waded through them, and
 * with fewer live nodes than ef_construction it explored every deleted node
 * of the component for every weak list. With that few live nodes, all of
 * them are the candidates (an exact scan of j->few, no walk at all). */
static int repair_weak(repair_job *j, uint32_t p, int l)
{
    qz__hnsw *h = j->h;
    qz__search_ctx *c = j->c;
    const void *base = qz__node_bvec(h, p);
    qz__hit *res = NULL;
    size_t m = 0;
    if (!j->few) {
        uint64_t e = atomic_load(&h->entry);
        if (e == UINT64_MAX || (int)(e >> 32) < l) return QZ_OK;
        uint32_t ep = qz__hnsw_descend(h, h->bs, base, (uint32_t)e, (int)(e >> 32), l);
        qz__ctx_new_tag(c);
        m = qz__hnsw_search_layer(h, h->bs, c, base, ep, l, h->ef_construction, 0, NULL, NULL, &res);
    }
    qz__ctx_new_tag(c);
    size_t n = 0;
    _Atomic uint32_t *ll = qz__links(h, p, l);
    uint32_t cnt = atomic_load_explicit(&ll[0], memory_order_relaxed);
    for (uint32_t i = 1; i <= cnt; i++)
        if (add_cand(c, &n, p, atomic_load_explicit(&ll[i], memory_order_relaxed))) goto oom;
    size_t own = n;
    for (size_t i = 0; i < m; i++)
        if (add_cand(c, &n, p, res[i].slot)) goto oom;
    for (size_t i = 0; i < j->n_few; i++)
        if (h->levels[j->few[i]] >= l && add_cand(c, &n, p, j->few[i])) goto oom;
    select_and_write(h, c, p, l, n, own);
    return QZ_OK;
oom:
    return qz__err(QZ_ENOMEM, "out of memory repairing the graph");
}

/* Mark everything reachable from `from` on layer 0 (iterative BFS). */
static void mark_reachable(const qz__hnsw *h, uint32_t from, unsigned char *seen, uint32_t *queue)
{
    if (seen[from]) return;
    size_t head = 0, tail = 0;
    seen[from] = 1;
    queue[tail++] = from;
    while (head < tail) {
        _Atomic uint32_t *ll = qz__links(h, queue[head++], 0);
        uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
        for (uint32_t i = 1; i <= n; i++) {
            uint32_t t = atomic_load_explicit(&ll[i], memory_order_relaxed);
            if (!seen[t]) {
                seen[t] = 1;
                queue[tail++] = t;
            }
        }
    }
}

static void count_in(const qz__hnsw *h, uint32_t nb, uint32_t *indeg, int add)
{
    _Atomic uint32_t *ll = qz__links(h, nb, 0);
    uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
    for (uint32_t i = 1; i <= n; i++) indeg[atomic_load_explicit(&ll[i], memory_order_relaxed)] += add ? 1u : -1u;
}

/* Link the unreachable node p in again: search for it among the reached
 * nodes as if inserting it, and offer it to the nearest ones (the heuristic
 * decides, and may drop another link of theirs for it). When the heuristic
 * prunes it from all of them, it goes into the first of them with room,
 * else it replaces a link of theirs whose target has another in-link
 * (indeg[] is kept exact for that), else the last link of the nearest. A
 * dropped link can still cut a node off: the caller checks again. */
static void relink(qz__hnsw *h, qz__search_ctx *c, uint32_t p, uint64_t e, qz__hit *tmp, uint32_t *indeg,
                   const unsigned char *seen)
{
    const void *v = qz__node_bvec(h, p);
    /* The walk must start inside the reached set: that set is closed under
     * links, so every node the walk finds is reached and a link from it
     * makes p reachable. The upper layers can lead into p's own island
     * (a node of it that is on a higher layer); then start at the entry. */
    uint32_t ep = qz__hnsw_descend(h, h->bs, v, (uint32_t)e, (int)(e >> 32), 0);
    if (!seen[ep]) ep = (uint32_t)e;
    qz__hit *res;
    qz__ctx_new_tag(c);
    size_t m = qz__hnsw_search_layer(h, h->bs, c, v, ep, 0, h->ef_construction, 0, NULL, NULL, &res);
    size_t w = 0;
    for (size_t i = 0; i < m; i++)
        if (res[i].slot != p && !is_deleted(h, res[i].slot)) res[w++] = res[i];
    size_t kept = qz__hnsw_select(h, res, w, h->M);
    int linked = 0;
    for (size_t i = 0; i < kept; i++) {
        uint32_t nb = res[i].slot;
        count_in(h, nb, indeg, 0);
        qz__hnsw_connect_back(h, nb, p, 0, tmp);
        count_in(h, nb, indeg, 1);
        _Atomic uint32_t *ll = qz__links(h, nb, 0);
        uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
        for (uint32_t k = 1; k <= n && !linked; k++) linked = atomic_load_explicit(&ll[k], memory_order_relaxed) == p;
    }
    if (linked || !kept) return;
    for (size_t i = 0; i < kept; i++) {
        _Atomic uint32_t *ll = qz__links(h, res[i].slot, 0);
        uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
        if (n < h->M0) {
            atomic_store_explicit(&ll[n + 1], p, memory_order_relaxed);
            atomic_store_explicit(&ll[0], n + 1, memory_order_release);
            indeg[p]++;
            return;
        }
    }
    for (size_t i = 0; i < kept; i++) {
        _Atomic uint32_t *ll = qz__links(h, res[i].slot, 0);
        uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
        for (uint32_t k = n; k >= 1; k--) { /* farthest first, as the heuristic wrote them */
            uint32_t t = atomic_load_explicit(&ll[k], memory_order_relaxed);
            if (indeg[t] > 1) {
                atomic_store_explicit(&ll[k], p, memory_order_release);
                indeg[t]--;
                indeg[p]++;
                return;
            }
        }
    }
    _Atomic uint32_t *ll = qz__links(h, res[0].slot, 0);
    indeg[atomic_load_explicit(&ll[h->M0], memory_order_relaxed)]--;
    atomic_store_explicit(&ll[h->M0], p, memory_order_release);
    indeg[p]++;
}

/*
 * Phase 3, reachability: a live node that no walk from the entry point can
 * reach on layer 0 is lost to every search. Back-link pruning during
 * insertion (also in hnswlib) and the loss of deleted neighbours both make
 * them: single orphans, and at small M whole islands whose nodes only link
 * to each other. While the graph is held still, a BFS from the entry point
 * finds them; each unreached node is linked in again (relink), and a BFS
 * from it then marks the rest of its island reached. A relink can drop a
 * link another node needed, so rounds repeat while they relinked anything,
 * at most 8 (in tests at M = 2, the second round finds a handful, the third
 * none).
 */
static int relink_unreachable(qz__hnsw *h, qz__search_ctx *c, uint32_t hw)
{
    uint64_t e = atomic_load(&h->entry);
    if (e == UINT64_MAX) return QZ_OK;
    unsigned char *seen = qz__malloc(hw ? hw : 1);
    uint32_t *queue = qz__malloc((hw ? hw : 1) * sizeof *queue);
    uint32_t *indeg = qz__calloc(hw ? hw : 1, sizeof *indeg);
    qz__hit *tmp = qz__malloc((h->M0 + 1) * sizeof *tmp);
    if (!seen || !queue || !indeg || !tmp) {
        qz__free(seen);
        qz__free(queue);
        qz__free(indeg);
        qz__free(tmp);
        return qz__err(QZ_ENOMEM, "out of memory checking the graph's reachability");
    }
    int counted = 0;
    for (int round = 0; round < 8; round++) {
        size_t relinked = 0;
        memset(seen, 0, hw);
        mark_reachable(h, (uint32_t)e, seen, queue);
        for (uint32_t p = 0; p < hw; p++) {
            unsigned st = atomic_load_explicit(&h->state[p], memory_order_relaxed);
            if (seen[p] || (st != QZ__LIVE && st != QZ__INSERTING)) continue;
            if (!counted) { /* in-degrees on layer 0, the first time they are needed */
                for (uint32_t q = 0; q < hw; q++) {
                    unsigned sq = atomic_load_explicit(&h->state[q], memory_order_relaxed);
                    if (sq == QZ__LIVE || sq == QZ__INSERTING) count_in(h, q, indeg, 1);
                }
                counted = 1;
            }
            relink(h, c, p, e, tmp, indeg, seen);
            mark_reachable(h, p, seen, queue);
            relinked++;
        }
        if (!relinked) break;
    }
    qz__free(seen);
    qz__free(queue);
    qz__free(indeg);
    qz__free(tmp);
    return QZ_OK;
}

int qz__hnsw_repair(qz__hnsw *h)
{
    pthread_rwlock_wrlock(&h->resize);
    int rc = QZ_OK;
    if (atomic_load(&h->n_deleted) == 0) goto out;
    repair_job j = {.h = h, .hw = qz__hnsw_high_water(h)};
    j.c = qz__ctx_get(h, h->ef_construction);
    if (!j.c) {
        rc = qz__err(QZ_ENOMEM, "out of memory repairing the graph");
        goto out;
    }
    choose_entry(h);
    uint32_t hw = j.hw;
    /* Phase 1: every list that links to a deleted node, from local candidates. */
    for (uint32_t p = 0; p < hw && rc == QZ_OK; p++) {
        unsigned st = atomic_load_explicit(&h->state[p], memory_order_relaxed);
        if (st != QZ__LIVE && st != QZ__INSERTING) continue;
        for (int l = h->levels[p]; l >= 0 && rc == QZ_OK; l--)
            if (has_deleted_link(h, p, l)) rc = repair_local(&j, p, l);
    }
    /* Phase 2: the lists left weak. With few live nodes, all of them. */
    size_t live = atomic_load(&h->n_live) + atomic_load(&h->n_inserting);
    if (rc == QZ_OK && j.n_weak && live <= h->ef_construction) {
        j.few = qz__malloc((live ? live : 1) * sizeof *j.few);
        if (!j.few) rc = qz__err(QZ_ENOMEM, "out of memory repairing the graph");
        for (uint32_t p = 0; p < hw && rc == QZ_OK && j.n_few < live; p++) {
            unsigned st = atomic_load_explicit(&h->state[p], memory_order_relaxed);
            if (st == QZ__LIVE || st == QZ__INSERTING) j.few[j.n_few++] = p;
        }
    }
    for (size_t i = 0; i < j.n_weak && rc == QZ_OK; i++) rc = repair_weak(&j, j.weak[i].slot, j.weak[i].level);
    /* Phase 3: every live node reachable again. */
    if (rc == QZ_OK) rc = relink_unreachable(h, j.c, hw);
    qz__ctx_put(h, j.c);
    qz__free(j.weak);
    qz__free(j.few);
    if (rc < 0) goto out; /* lists already repaired stay valid; deleted nodes stay as waypoints */

    /* Free the deleted slots: nothing links to them any more. Not while a
     * graph save is running (it reads chunk by chunk and must not meet a
     * slot freed or reused between two chunks): the slots then stay DELETED,
     * unlinked, and the next repair frees them. The save raises `saving`
     * before it takes its picture under `resize` shared, so either this
     * section came first (the picture sees FREE slots) or it sees `saving`. */
    for (uint32_t s = 0; s < hw && !atomic_load(&h->saving); s++) {
        if (!is_deleted(h, s)) continue;
        if (h->upper[s]) atomic_fetch_sub(&h->upper_bytes, (size_t)h->levels[s] * (h->M + 1) * sizeof(uint32_t));
        if (h->payload[s]) atomic_fetch_sub(&h->payload_bytes, *(uint32_t *)h->payload[s] + sizeof(uint32_t));
        qz__free(h->upper[s]);
        qz__free(h->payload[s]);
        h->upper[s] = NULL;
        h->payload[s] = NULL;
        qz__hnsw_pin_drop(h, s);
        h->levels[s] = 0;
        atomic_store_explicit(qz__links(h, s, 0), 0, memory_order_relaxed);
        atomic_store_explicit(&h->state[s], QZ__FREE, memory_order_relaxed);
        atomic_store_explicit(&h->del_stamp[s], 0, memory_order_relaxed);
        atomic_fetch_sub(&h->n_deleted, 1);
        qz__hnsw_release_slot(h, s);
    }
out:
    pthread_rwlock_unlock(&h->resize);
    return rc;
}
