/*
 * read.c - get, contains, search and the kv reads.
 *
 * Readers hold the index's `resize` lock shared while they touch slots, so
 * that a slot they found cannot be freed and reused under them. They never
 * take `writers` or an id shard's `write` lock: reads never wait for writes.
 */
#include <sched.h>
#include <string.h>

#include "engine/engine.h"
#include "util/alloc.h"
#include "util/error.h"
#include "vector/metric.h"
#include "wal/journal.h"

void qz__engine_encode(const qz_db *db, const float *v, void *out) { qz__hnsw_encode(db->index, v, out); }

int qz__engine_fetch_originals(void *user, size_t n, const uint64_t *labels, const uint64_t *seqs, void *const *dst,
                               unsigned char *ok)
{
    qz_db *db = user;
    return qz__journal_read_vectors(db->journal, n, labels, seqs, db->index->vec_bytes, dst, ok);
}

void qz__engine_unpin(qz_db *db)
{
    if (db->index->orig_external) qz__hnsw_unpin(db->index, qz__journal_applied_seq(db->journal));
}

/* The original of a LIVE slot whose index keeps no originals (caller holds
 * `resize` shared): pinned, or the storage's record of the slot's write. */
static int original_of(qz_db *db, uint32_t slot, uint64_t id, float *vector)
{
    qz__hnsw *h = db->index;
    unsigned char stack[4096];
    void *buf = h->vec_bytes <= sizeof stack ? (void *)stack : qz__malloc(h->vec_bytes);
    if (!buf) return qz__err(QZ_ENOMEM, "out of memory reading the vector of id %llu", (unsigned long long)id);
    unsigned char ok = 0;
    int rc = qz__hnsw_originals(h, 1, &slot, &buf, &ok);
    /* ok 2: an upsert of the id is in flight (its record was applied before
     * the id map moved to the new slot): its vector is as good an answer */
    if (rc == QZ_OK && !ok) {
        /* No record: a delete of the id applied to storage before memory
         * (the window between the two is short), or a record lost from
         * storage while the index holds it: damage. */
        uint32_t now = slot;
        for (int i = 0; i < 100 && qz__idmap_get(&db->ids, id, &now) && now == slot; i++) sched_yield();
        if (qz__idmap_get(&db->ids, id, &now) && now == slot)
            rc = qz__err(QZ_ECORRUPT, "the storage holds no vector under id %llu, which the index holds",
                         (unsigned long long)id);
        else
            rc = qz__err(QZ_ENOTFOUND, "id %llu was deleted while it was read", (unsigned long long)id);
    }
    if (rc == QZ_OK) qz__hnsw_decode(h, buf, vector);
    if (buf != stack) qz__free(buf);
    return rc;
}

int qz__engine_get(qz_db *db, uint64_t id, float *vector, void *meta, size_t meta_cap, size_t *meta_len)
{
    qz__hnsw *h = db->index;
    pthread_rwlock_rdlock(&h->resize);
    uint32_t slot;
    if (!qz__idmap_get(&db->ids, id, &slot)) {
        pthread_rwlock_unlock(&h->resize);
        return qz__err(QZ_ENOTFOUND, "id %llu is not in the database", (unsigned long long)id);
    }
    const uint8_t *p = h->payload[slot];
    uint32_t len = 0;
    if (p) memcpy(&len, p, sizeof len);
    if (meta_len) *meta_len = len;
    int rc = QZ_OK;
    if (meta && len > meta_cap) {
        rc = qz__err(QZ_ETOOSMALL, "metadata of id %llu is %u bytes, the buffer holds %zu", (unsigned long long)id,
                     len, meta_cap);
    } else {
        if (meta && len) memcpy(meta, p + sizeof len, len);
        if (vector && h->orig_external) {
            rc = original_of(db, slot, id, vector);
        } else if (vector) {
            qz__hnsw_decode(h, qz__node_rec(h, slot), vector); /* the original, whatever the dtype */
        }
    }
    pthread_rwlock_unlock(&h->resize);
    return rc;
}

int qz__engine_contains(qz_db *db, uint64_t id)
{
    uint32_t slot;
    return qz__idmap_get(&db->ids, id, &slot);
}

/* Is label among the first n results? Results are few (k <= 10000) and
 * duplicates need an upsert racing with this very search, so a scan that
 * only runs once upserts have happened is enough. */
static int is_dup(const uint64_t *ids, size_t n, uint64_t label)
{
    for (size_t i = n; i-- > 0;)
        if (ids[i] == label) return 1;
    return 0;
}

int qz__engine_search(qz_db *db, const float *query, size_t k, uint32_t ef, uint32_t oversample, qz_filter_fn filter,
                      void *fuser, uint64_t *ids, float *distances, size_t *found)
{
    qz__hnsw *h = db->index;
    if (!ef) ef = atomic_load(&h->ef_search);
    /* Once ids have been replaced, a search racing with an upsert may meet
     * the old and the new node of one id; ask for a few extra results so
     * that k remain after dropping such duplicates. */
    int may_dup = atomic_load_explicit(&db->upserts, memory_order_relaxed) != 0;
    size_t want = may_dup ? k + 8 : k;
    uint64_t qbuf[512];
    qz__hit hbuf[64];
    /* L2 and inner product search the caller's floats as they are (on
     * 784-d MNIST the copy was 2.4% of a search at ef 10) */
    int as_is = qz__hnsw_record_is_input(h);
    void *q = as_is ? NULL : h->vec_bytes <= sizeof qbuf ? (void *)qbuf : qz__malloc(h->vec_bytes);
    qz__hit *hits = want <= 64 ? hbuf : qz__malloc(want * sizeof *hits);
    int rc = QZ_OK;
    *found = 0;
    if ((!as_is && !q) || !hits) {
        rc = qz__err(QZ_ENOMEM, "out of memory for a search with k %zu", k);
        goto out;
    }
    if (!as_is) qz__hnsw_encode(h, query, q);
    size_t n = 0;
    pthread_rwlock_rdlock(&h->resize);
    rc = qz__hnsw_search(h, as_is ? (const void *)query : q, want, ef, oversample, filter, fuser, hits, &n);
    size_t w = 0;
    for (size_t i = 0; i < n && w < k; i++) {
        uint64_t label = h->labels[hits[i].slot];
        if (may_dup && is_dup(ids, w, label)) continue;
        ids[w] = label;
        if (distances) {
            float d = hits[i].dist;
            if (h->metric == QZ__METRIC_COSINE && d < 0) d = 0; /* rounding of 1 - dot on unit vectors */
            distances[w] = d;
        }
        w++;
    }
    pthread_rwlock_unlock(&h->resize);
    *found = w;
out:
    if (q != qbuf) qz__free(q); /* NULL when as_is */
    if (hits != hbuf) qz__free(hits);
    return rc;
}

int qz__engine_kv_get(qz_db *db, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
    size_t n = 0;
    int rc = qz__journal_kv_get(db->journal, key, klen, buf, cap, &n);
    if (vlen && (rc == QZ_OK || rc == QZ_ETOOSMALL)) *vlen = n;
    return rc;
}

int qz__engine_kv_scan(qz_db *db, const void *prefix, size_t plen, qz_kv_scan_fn fn, void *user)
{
    return qz__journal_kv_scan(db->journal, prefix, plen, fn, user);
}
