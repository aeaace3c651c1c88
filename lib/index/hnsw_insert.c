/*
 * hnsw_insert.c - insertion (the paper's algorithm 1) with the neighbour
 * selection heuristic (algorithm 4) and back-link pruning.
 *
 * Concurrency: the inserting thread holds `resize` shared for the whole
 * insertion. It writes the node's vector and empty link lists, then marks it
 * INSERTING with a release store; only then is the node linked from
 * neighbours, so any reader that reaches it sees a complete node. A writer
 * holds at most one node lock at a time: its own node's while writing its
 * lists, then each neighbour's in turn while adding the back link.
 */
#include <stdlib.h>
#include <string.h>

#include "index/hnsw.h"
#include "index/search_ctx.h"
#include "util/alloc.h"
#include "util/error.h"

size_t qz__hnsw_select(const qz__hnsw *h, qz__hit *cand, size_t n, size_t m)
{
    if (n <= m) return n;
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < m; i++) {
        const void *v = qz__node_bvec(h, cand[i].slot);
        int good = 1;
        for (size_t j = 0; j < kept; j++) {
            /* A deleted node may stay as a waypoint, but never pushes out
             * a candidate: when an upsert puts the new node where the old
             * one was (same or nearly the same vector), the old, deleted
             * node would prune it from every back link (it is nearer to
             * the new node than the neighbour is), leaving the new node
             * reachable only through deleted nodes that the next upsert's
             * pruning cuts off in turn. */
            if (atomic_load_explicit(&h->state[cand[j].slot], memory_order_relaxed) == QZ__DELETED) continue;
            if (qz__bdist(h, v, qz__node_bvec(h, cand[j].slot)) < cand[i].dist) {
                good = 0;
                break;
            }
        }
        if (good) cand[kept++] = cand[i];
    }
    return kept;
}

int qz__hit_cmp(const void *a, const void *b)
{
    const qz__hit *x = a, *y = b;
    return (x->dist > y->dist) - (x->dist < y->dist);
}

/* Ascending (dist, slot): a total order, so the result does not depend on
 * the algorithm. Quicksort with median-of-three down to runs of 16, then
 * insertion sort; the comparison is inlined (qsort's callback made up half
 * the time of a repair). Recursion only into the smaller part: depth is
 * O(log n). */
static inline int hit_lt(qz__hit a, qz__hit b) { return a.dist < b.dist || (a.dist == b.dist && a.slot < b.slot); }

static void insertion_sort(qz__hit *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        qz__hit x = a[i];
        size_t j = i;
        for (; j > 0 && hit_lt(x, a[j - 1]); j--) a[j] = a[j - 1];
        a[j] = x;
    }
}

/* Median-of-three Hoare partition of a[0, n), n > 2: returns `left` with
 * a[0, left) <= pivot <= a[left, n) and 0 < left < n. */
static size_t partition(qz__hit *a, size_t n)
{
    qz__hit t, *m = a + n / 2, *z = a + n - 1;
    if (hit_lt(*m, *a)) t = *m, *m = *a, *a = t;
    if (hit_lt(*z, *m)) {
        t = *z, *z = *m, *m = t;
        if (hit_lt(*m, *a)) t = *m, *m = *a, *a = t;
    }
    qz__hit pivot = *m;
    size_t i = 0, j = n - 1;
    for (;;) { /* a[0] <= pivot <= a[n-1] stop both scans */
        while (hit_lt(a[i], pivot)) i++;
        while (hit_lt(pivot, a[j])) j--;
        if (i >= j) break;
        t = a[i], a[i] = a[j], a[j] = t;
        i++;
        j--;
    }
    return j + 1;
}

void qz__hits_nearest(qz__hit *a, size_t n, size_t k)
{
    while (n > 16 && k < n) {
        size_t left = partition(a, n);
        if (k <= left) {
            n = left;
        } else {
            a += left;
            n -= left;
            k -= left;
        }
    }
    if (k < n) insertion_sort(a, n);
}

void qz__hits_sort(qz__hit *a, size_t n)
{
    while (n > 16) {
        size_t left = partition(a, n);
        if (left < n - left) {
            qz__hits_sort(a, left);
            a += left;
            n -= left;
        } else {
            qz__hits_sort(a + left, n - left);
            n = left;
        }
    }
    insertion_sort(a, n);
}

/* Write a whole link list: links first, the count last, all release stores,
 * so a reader that loads the count sees links at least as new as it. */
static void write_links(_Atomic uint32_t *ll, const qz__hit *sel, size_t n)
{
    for (size_t i = 0; i < n; i++) atomic_store_explicit(&ll[1 + i], sel[i].slot, memory_order_release);
    atomic_store_explicit(&ll[0], (uint32_t)n, memory_order_release);
}

/* Add a back link from `nb` to `slot` at `level`, pruning nb's list with the
 * heuristic when it is full. `tmp` holds max_links + 1 hits. */
void qz__hnsw_connect_back(qz__hnsw *h, uint32_t nb, uint32_t slot, int level, qz__hit *tmp)
{
    size_t max = qz__max_links(h, level);
    qz__spin_lock(&h->locks[nb]);
    _Atomic uint32_t *ll = qz__links(h, nb, level);
    uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
    for (uint32_t i = 1; i <= n; i++)
        if (atomic_load_explicit(&ll[i], memory_order_relaxed) == slot) goto out;
    if (n < max) {
        atomic_store_explicit(&ll[n + 1], slot, memory_order_release);
        atomic_store_explicit(&ll[0], n + 1, memory_order_release);
        goto out;
    }
    {
        const void *base = qz__node_bvec(h, nb);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t s = atomic_load_explicit(&ll[i + 1], memory_order_relaxed);
            tmp[i] = (qz__hit){qz__bdist(h, base, qz__node_bvec(h, s)), s};
        }
        tmp[n] = (qz__hit){qz__bdist(h, base, qz__node_bvec(h, slot)), slot};
        qz__hits_sort(tmp, n + 1);
        size_t kept = qz__hnsw_select(h, tmp, n + 1, max);
        write_links(ll, tmp, kept);
    }
out:
    qz__spin_unlock(&h->locks[nb]);
}

int qz__hnsw_insert(qz__hnsw *h, uint32_t slot, uint64_t label, const void *vec, void *payload, uint64_t seq)
{
    int level = qz__hnsw_random_level(h);
    uint32_t *blk = NULL;
    size_t blk_bytes = 0;
    if (level > 0) {
        blk_bytes = (size_t)level * (h->M + 1) * sizeof(uint32_t);
        blk = qz__calloc(1, blk_bytes);
    }
    qz__hit *tmp = qz__malloc((h->M0 + 1) * sizeof *tmp);
    void *pin = NULL;
    int prc = tmp && (level == 0 || blk) ? qz__hnsw_pin_prepare(h, vec, seq, &pin) : QZ_ENOMEM;
    if (prc < 0) {
        /* Nothing is linked yet: the slot goes back, the payload is freed
         * (the index owns it from the call on, success or not). */
        qz__free(blk);
        qz__free(tmp);
        qz__free(payload);
        qz__hnsw_release_slot(h, slot);
        return qz__err(QZ_ENOMEM, "out of memory inserting a vector");
    }

    pthread_rwlock_rdlock(&h->resize);
    atomic_store_explicit(qz__links(h, slot, 0), 0, memory_order_relaxed);
    qz__hnsw_quantize(h, vec, qz__node_code(h, slot)); /* a copy for f32 */
    if (h->quantized && !h->orig_external) memcpy(h->orig + (size_t)slot * h->vec_bytes, vec, h->vec_bytes);
    h->labels[slot] = label;
    h->levels[slot] = (uint8_t)level;
    h->upper[slot] = blk;
    h->payload[slot] = payload;
    h->seqs[slot] = seq;
    qz__hnsw_pin_attach(h, slot, seq, pin); /* before the slot is traversable */
    atomic_store_explicit(&h->del_stamp[slot], 0, memory_order_relaxed); /* never a result if it fails */
    atomic_fetch_add(&h->upper_bytes, blk_bytes);
    if (payload) atomic_fetch_add(&h->payload_bytes, *(uint32_t *)payload + sizeof(uint32_t));
    atomic_store_explicit(&h->state[slot], QZ__INSERTING, memory_order_release);
    atomic_fetch_add(&h->n_inserting, 1);

    int rc = QZ_OK;
    uint64_t e = atomic_load_explicit(&h->entry, memory_order_acquire);
    if (e == UINT64_MAX) {
        pthread_mutex_lock(&h->entry_lock);
        e = atomic_load_explicit(&h->entry, memory_order_acquire);
        if (e == UINT64_MAX) {
            atomic_store_explicit(&h->entry, ((uint64_t)level << 32) | slot, memory_order_release);
            pthread_mutex_unlock(&h->entry_lock);
            goto done;
        }
        pthread_mutex_unlock(&h->entry_lock);
    }

    {
        uint32_t ep = (uint32_t)e;
        int top = (int)(e >> 32);
        /* construction measures in bs: exact distances (the record form),
         * so the graph is as good as an f32 one whatever the codes are; or,
         * with orig_external, the codes (f16, int8): the only form an
         * index without its originals in memory has (hnsw_graph.c) */
        const void *bq = qz__node_bvec(h, slot);
        if (level < top) ep = qz__hnsw_descend(h, h->bs, bq, ep, top, level);
        qz__search_ctx *c = qz__ctx_get(h, h->ef_construction);
        if (!c) {
            rc = qz__err(QZ_ENOMEM, "out of memory for the construction search");
            goto done;
        }
        /* Phase 1, top-down: choose the neighbours on every layer. Phase
         * 2, bottom-up: write the links. Linking layer 0 first means that
         * a search which reaches the new node through an upper layer, and
         * then descends to layer 0 from it, finds its layer-0 links already
         * in place; linked top-down, such a search would start layer 0 at a
         * node with no links and return nothing. */
        int from = level < top ? level : top, linked = 0;
        qz__hit *sel = qz__malloc((size_t)(from + 1) * h->M * sizeof *sel);
        size_t *nsel = qz__calloc((size_t)from + 1, sizeof *nsel);
        if (!sel || !nsel) {
            qz__free(sel);
            qz__free(nsel);
            qz__ctx_put(h, c);
            rc = qz__err(QZ_ENOMEM, "out of memory inserting a vector");
            goto done;
        }
        for (int l = from; l >= 0; l--) {
            qz__hit *res;
            size_t n = qz__hnsw_search_layer(h, h->bs, c, bq, ep, l, h->ef_construction, 0, NULL, NULL, &res);
            if (l > 0) qz__ctx_new_tag(c); /* a fresh visited set for the next layer */
            if (n == 0) continue;          /* every candidate deleted: keep ep */
            linked = 1;
            ep = res[0].slot;
            nsel[l] = qz__hnsw_select(h, res, n, h->M);
            memcpy(sel + (size_t)l * h->M, res, nsel[l] * sizeof *sel);
        }
        for (int l = 0; l <= from; l++) {
            qz__hit *s = sel + (size_t)l * h->M;
            qz__spin_lock(&h->locks[slot]);
            write_links(qz__links(h, slot, l), s, nsel[l]);
            qz__spin_unlock(&h->locks[slot]);
            for (size_t i = 0; i < nsel[l]; i++) qz__hnsw_connect_back(h, s[i].slot, slot, l, tmp);
        }
        qz__free(sel);
        qz__free(nsel);
        qz__ctx_put(h, c);
        if (!linked) {
            /* Everything reachable from the entry point is deleted (the
             * search on layer 0 explores the whole component when it finds
             * nothing): the new node becomes the entry point. */
            pthread_mutex_lock(&h->entry_lock);
            if (atomic_load_explicit(&h->entry, memory_order_acquire) == e)
                atomic_store_explicit(&h->entry, ((uint64_t)level << 32) | slot, memory_order_release);
            pthread_mutex_unlock(&h->entry_lock);
        } else if (level > top) {
            pthread_mutex_lock(&h->entry_lock);
            uint64_t now = atomic_load_explicit(&h->entry, memory_order_acquire);
            if (now == UINT64_MAX || (int)(now >> 32) < level)
                atomic_store_explicit(&h->entry, ((uint64_t)level << 32) | slot, memory_order_release);
            pthread_mutex_unlock(&h->entry_lock);
        }
    }
done:
    if (rc < 0) {
        /* Not linked anywhere: let the next repair reclaim the slot. */
        atomic_store_explicit(&h->state[slot], QZ__DELETED, memory_order_release);
        atomic_fetch_add(&h->n_deleted, 1);
        atomic_fetch_sub(&h->n_inserting, 1);
    } else {
        atomic_store_explicit(&h->state[slot], QZ__LIVE, memory_order_release);
        atomic_fetch_add(&h->n_live, 1);
        atomic_fetch_sub(&h->n_inserting, 1);
    }
    pthread_rwlock_unlock(&h->resize);
    qz__free(tmp);
    return rc;
}
