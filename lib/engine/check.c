/*
 * check.c - statistics, compaction and the consistency check.
 */
#include <string.h>

#include "engine/engine.h"
#include "util/alloc.h"
#include "util/error.h"
#include "wal/journal.h"

void qz__engine_stats_get(qz_db *db, qz__engine_stats *s)
{
    qz__hnsw *h = db->index;
    memset(s, 0, sizeof *s);
    s->dim = h->dim;
    s->metric = h->metric;
    s->dtype = db->cfg.dtype;
    s->M = h->M;
    s->ef_construction = h->ef_construction;
    s->ef_search = atomic_load(&h->ef_search);
    s->max_level = (uint32_t)qz__hnsw_max_level(h);
    s->count = atomic_load(&h->n_live);
    s->deleted = atomic_load(&h->n_deleted);
    pthread_rwlock_rdlock(&h->resize);
    s->capacity = h->capacity;
    s->memory_bytes = qz__hnsw_memory(h) + qz__idmap_memory(&db->ids) + sizeof *db;
    pthread_rwlock_unlock(&h->resize);
    s->simd = h->kernel_name;
    s->open_reinserted = atomic_load(&db->reinserted);
}

int qz__engine_compact(qz_db *db)
{
    int rc = qz__hnsw_repair(db->index);
    if (rc == QZ_OK) atomic_store(&db->snapshot_dirty, 1);
    return rc;
}

typedef struct check_ctx {
    qz__hnsw *h;
    uint32_t hw;
    size_t n;
} check_ctx;

static int check_id(uint64_t key, uint32_t slot, void *u)
{
    check_ctx *c = u;
    c->n++;
    if (slot >= c->hw)
        return qz__err(QZ_ECORRUPT, "id %llu maps to unallocated slot %u", (unsigned long long)key, slot);
    if (atomic_load(&c->h->state[slot]) != QZ__LIVE)
        return qz__err(QZ_ECORRUPT, "id %llu maps to slot %u which is not live", (unsigned long long)key, slot);
    if (c->h->labels[slot] != key)
        return qz__err(QZ_ECORRUPT, "id %llu maps to slot %u labelled %llu", (unsigned long long)key, slot,
                       (unsigned long long)c->h->labels[slot]);
    return 0;
}

typedef struct stored_ctx {
    qz_db *db;
    size_t n;
    uint8_t *seen; /* a bit per slot below the high water */
    uint32_t hw;
} stored_ctx;

/* A stored vector record: its id must be live in memory, with the size the
 * index stores. */
static int check_stored(uint64_t id, uint64_t seq, const void *vec, size_t vec_bytes, const void *meta,
                        size_t meta_len, void *u)
{
    (void)seq, (void)vec, (void)meta, (void)meta_len;
    stored_ctx *c = u;
    uint32_t slot;
    c->n++;
    if (!qz__idmap_get(&c->db->ids, id, &slot))
        return qz__err(QZ_ECORRUPT, "the storage holds a vector record of id %llu, which the index does not hold",
                       (unsigned long long)id);
    if (slot < c->hw) c->seen[slot >> 3] |= (uint8_t)(1u << (slot & 7));
    if (vec_bytes != c->db->index->vec_bytes)
        return qz__err(QZ_ECORRUPT, "the stored vector of id %llu has %zu bytes, the index stores %u",
                       (unsigned long long)id, vec_bytes, c->db->index->vec_bytes);
    return 0;
}

int qz__engine_check(qz_db *db)
{
    QZ_CHECK(qz__hnsw_check(db->index));
    /* No write runs while `writers` is held exclusive: the id map and the
     * slots form a consistent snapshot. */
    pthread_rwlock_wrlock(&db->writers);
    pthread_rwlock_rdlock(&db->index->resize);
    check_ctx c = {db->index, qz__hnsw_high_water(db->index), 0};
    int rc = qz__idmap_foreach(&db->ids, check_id, &c);
    if (rc == 0 && c.n != atomic_load(&db->index->n_live))
        rc = qz__err(QZ_ECORRUPT, "the id map holds %zu ids but %zu vectors are live", c.n,
                     atomic_load(&db->index->n_live));
    pthread_rwlock_unlock(&db->index->resize);
    /* Every live id has its record in storage and every record a live id:
     * the records are unique per id, each one maps to a live id, and there
     * are as many as live ids. (The scan first applies what is pending.)
     * Not under `resize`: the scan may begin a backend write transaction,
     * and a checkpoint takes `resize` inside one (lock order). With
     * `writers` held nothing grows the index meanwhile. */
    if (rc == 0 && db->persist_vectors) {
        stored_ctx sc = {db, 0, qz__calloc((size_t)c.hw / 8 + 1, 1), c.hw};
        rc = sc.seen ? qz__journal_scan_vectors(db->journal, check_stored, &sc)
                     : qz__err(QZ_ENOMEM, "out of memory checking the stored vectors");
        pthread_rwlock_rdlock(&db->index->resize);
        if (rc == 0 && sc.n != c.n) {
            uint32_t sl = 0;
            while (sl < c.hw && (atomic_load(&db->index->state[sl]) != QZ__LIVE || (sc.seen[sl >> 3] >> (sl & 7) & 1)))
                sl++;
            if (sl < c.hw)
                rc = qz__err(QZ_ECORRUPT, "the storage holds %zu vector records but the index %zu live vectors: "
                             "id %llu has no record", sc.n, c.n, (unsigned long long)db->index->labels[sl]);
            else
                rc = qz__err(QZ_ECORRUPT, "the storage holds %zu vector records but the index %zu live vectors", sc.n,
                             c.n);
        }
        pthread_rwlock_unlock(&db->index->resize);
        qz__free(sc.seen);
    }
    pthread_rwlock_unlock(&db->writers);
    QZ_CHECK(rc);
    /* What is stored: every vector and kv record, checksums and key shapes. */
    return qz__journal_verify(db->journal);
}
