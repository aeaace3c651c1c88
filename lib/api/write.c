/*
 * write.c - insert, upsert, batch insert, delete.
 *
 * One write of one id, in this order, under the id's shard `write` lock:
 *   1. everything that can fail without side effects (checks, slot, memory);
 *   2. the journal append (durable databases), which fixes the write's
 *      place in the log;
 *   3. the index insertion (the vector is searchable when it returns);
 *   4. for an upsert, the old slot is marked deleted AFTER the new one is
 *      live, so a concurrent search never misses the id (it may meet both
 *      nodes; qz_db_search drops the duplicate);
 *   5. the id map points at the new slot.
 * Waiting for durability happens after the lock is released, so concurrent
 * SYNC writers share one fsync.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/db_internal.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/parallel.h"
#ifdef QZ_HAVE_LMDB
#include "wal/journal.h"
#endif

int qz__payload_new(const void *meta, size_t len, void **out)
{
    *out = NULL;
    if (len == 0) return QZ_OK;
    uint8_t *p = qz__malloc(sizeof(uint32_t) + len);
    if (!p) return qz__err(QZ_ENOMEM, "out of memory copying %zu bytes of metadata", len);
    uint32_t l = (uint32_t)len;
    memcpy(p, &l, sizeof l);
    memcpy(p + sizeof l, meta, len);
    *out = p;
    return QZ_OK;
}

void qz__db_maybe_repair(qz_db *db)
{
    size_t del = atomic_load(&db->index->n_deleted);
    size_t live = atomic_load(&db->index->n_live);
    if (del < 256 || del < live / 8) return;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&db->repairing, &expect, 1)) return;
    (void)qz__hnsw_repair(db->index); /* on ENOMEM deleted nodes stay as waypoints; retried later */
    atomic_store(&db->repairing, 0);
}

/* Steps 1-5 for an encoded vector; `journal` 0 skips step 2 (loading). */
static int write_encoded(qz_db *db, uint64_t id, const void *enc, const void *meta, size_t meta_len, int upsert,
                         int journal, uint64_t seq_in, uint64_t *seq_out)
{
    void *payload;
    QZ_CHECK(qz__payload_new(meta, meta_len, &payload));
    qz__idmap_shard *sh = qz__idmap_shard_of(&db->ids, id);
    pthread_rwlock_rdlock(&db->writers);
    pthread_mutex_lock(&sh->write);
    uint32_t old = QZ__SLOT_NONE, slot;
    int rc;
    if (qz__idmap_get(&db->ids, id, &old) && !upsert) {
        rc = qz__err(QZ_EEXISTS, "id %llu already exists", (unsigned long long)id);
        goto fail;
    }
    /* Room for one more key, so step 5 cannot fail. */
    if ((rc = qz__idmap_reserve_one(&db->ids, id)) < 0) goto fail;
    if ((rc = qz__hnsw_alloc_slot(db->index, &slot)) < 0) goto fail;
    uint64_t seq = seq_in;
#ifdef QZ_HAVE_LMDB
    if (journal && db->journal) {
        rc = qz__journal_put(db->journal, id, enc, db->index->vec_bytes, meta, meta_len, &seq);
        if (rc < 0) {
            qz__hnsw_release_slot(db->index, slot);
            goto fail;
        }
        atomic_fetch_add(&db->writes_since_snapshot, 1);
    }
#else
    (void)journal;
#endif
    rc = qz__hnsw_insert(db->index, slot, id, enc, payload, seq);
    payload = NULL; /* owned by the index now, even on failure */
    if (rc < 0) goto fail;
    if (old != QZ__SLOT_NONE) {
        atomic_fetch_add(&db->upserts, 1);
        pthread_rwlock_rdlock(&db->index->resize);
        qz__hnsw_mark_deleted(db->index, old);
        pthread_rwlock_unlock(&db->index->resize);
    }
    qz__idmap_put(&db->ids, id, slot);
    pthread_mutex_unlock(&sh->write);
    pthread_rwlock_unlock(&db->writers);
    if (seq_out) *seq_out = seq;
    return QZ_OK;
fail:
    pthread_mutex_unlock(&sh->write);
    pthread_rwlock_unlock(&db->writers);
    qz__free(payload);
    return rc;
}

/* Encode into a stack buffer when small. */
#define QZ__ENC_STACK 4096

int qz__db_write(qz_db *db, uint64_t id, const float *vec, const void *meta, size_t meta_len, int upsert,
                 int wait, uint64_t *seq)
{
    uint64_t stackbuf[QZ__ENC_STACK / 8];
    void *enc = stackbuf;
    if (db->index->vec_bytes > sizeof stackbuf) {
        enc = qz__malloc(db->index->vec_bytes);
        if (!enc) return qz__err(QZ_ENOMEM, "out of memory encoding a vector");
    }
    qz__hnsw_encode(db->index, vec, enc);
    uint64_t s = 0;
    int rc = write_encoded(db, id, enc, meta, meta_len, upsert, 1, 0, &s);
    if (enc != stackbuf) qz__free(enc);
#ifdef QZ_HAVE_LMDB
    if (rc == QZ_OK && wait && db->journal) rc = qz__journal_wait(db->journal, s);
#else
    (void)wait;
#endif
    if (seq) *seq = s;
    return rc;
}

int qz__db_load_one(qz_db *db, uint64_t id, uint64_t seq, const void *enc, const void *meta, size_t meta_len)
{
    return write_encoded(db, id, enc, meta, meta_len, 1, 0, seq, NULL);
}

static int writable(qz_db *db)
{
    if (!db) return qz__err(QZ_EINVAL, "db is NULL");
    if (db->readonly) return qz__err(QZ_EREADONLY, "database was opened read-only");
    return QZ_OK;
}

static int write_api(qz_db *db, uint64_t id, const float *vector, size_t dims, const void *meta, size_t meta_len,
                     int upsert)
{
    QZ__API_ENTER();
    QZ_CHECK(writable(db));
    QZ_CHECK(qz__check_vector(db, vector, dims, "vector"));
    QZ_CHECK(qz__check_bytes(meta, meta_len, "metadata"));
    return qz__db_write(db, id, vector, meta, meta_len, upsert, 1, NULL);
}

QZ_API int qz_db_insert(qz_db *db, uint64_t id, const float *vector, size_t dims, const void *meta, size_t meta_len)
{
    return write_api(db, id, vector, dims, meta, meta_len, 0);
}

QZ_API int qz_db_upsert(qz_db *db, uint64_t id, const float *vector, size_t dims, const void *meta, size_t meta_len)
{
    return write_api(db, id, vector, dims, meta, meta_len, 1);
}

/* ---------------- batch ---------------- */

typedef struct batch_job {
    qz_db *db;
    size_t dims;
    const uint64_t *ids;
    const float *vectors;
    const void *const *metas;
    const size_t *meta_lens;
    int upsert;
    pthread_mutex_t lock; /* guards msg and max_seq */
    char msg[256];
    uint64_t max_seq;
} batch_job;

static int batch_row(size_t i, void *u)
{
    batch_job *j = u;
    uint64_t seq = 0;
    int rc = qz__db_write(j->db, j->ids[i], j->vectors + i * j->dims, j->metas ? j->metas[i] : NULL,
                          j->metas ? j->meta_lens[i] : 0, j->upsert, 0, &seq);
    pthread_mutex_lock(&j->lock);
    if (rc < 0 && !j->msg[0]) snprintf(j->msg, sizeof j->msg, "row %zu: %s", i, qz__err_msg());
    if (seq > j->max_seq) j->max_seq = seq;
    pthread_mutex_unlock(&j->lock);
    return rc;
}

typedef struct idrow {
    uint64_t id;
    size_t row;
} idrow;

static int idrow_cmp(const void *a, const void *b)
{
    const idrow *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static int validate_batch(qz_db *db, size_t n, const uint64_t *ids, const float *vectors, size_t dims,
                          const void *const *metas, const size_t *meta_lens, uint32_t flags)
{
    if (flags & ~QZ_BATCH_UPSERT) return qz__err(QZ_EINVAL, "unknown batch flags 0x%x", flags & ~QZ_BATCH_UPSERT);
    if (n == 0) return QZ_OK;
    if (!ids) return qz__err(QZ_EINVAL, "ids is NULL");
    if (!vectors) return qz__err(QZ_EINVAL, "vectors is NULL");
    if (metas && !meta_lens) return qz__err(QZ_EINVAL, "metas given without meta_lens");
    if (dims != db->opts.dimensions)
        return qz__err(QZ_EDIM, "batch rows have %zu dimensions, database expects %u", dims, db->opts.dimensions);
    char what[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(what, sizeof what, "row %zu vector", i);
        QZ_CHECK(qz__check_vector(db, vectors + i * dims, dims, what));
        if (metas) {
            snprintf(what, sizeof what, "row %zu metadata", i);
            QZ_CHECK(qz__check_bytes(metas[i], meta_lens[i], what));
        }
    }
    idrow *r = qz__malloc(n * sizeof *r);
    if (!r) return qz__err(QZ_ENOMEM, "out of memory checking %zu ids", n);
    for (size_t i = 0; i < n; i++) r[i] = (idrow){ids[i], i};
    qsort(r, n, sizeof *r, idrow_cmp);
    int rc = QZ_OK;
    for (size_t i = 1; i < n && rc == QZ_OK; i++)
        if (r[i].id == r[i - 1].id)
            rc = qz__err(QZ_EEXISTS, "id %llu appears twice in the batch (rows %zu and %zu)",
                         (unsigned long long)r[i].id, r[i - 1].row, r[i].row);
    qz__free(r);
    QZ_CHECK(rc);
    if (!(flags & QZ_BATCH_UPSERT)) {
        uint32_t s;
        for (size_t i = 0; i < n; i++)
            if (qz__idmap_get(&db->ids, ids[i], &s))
                return qz__err(QZ_EEXISTS, "row %zu: id %llu already exists", i, (unsigned long long)ids[i]);
    }
    return QZ_OK;
}

QZ_API int qz_db_insert_batch(qz_db *db, size_t n, const uint64_t *ids, const float *vectors, size_t dims,
                              const void *const *metas, const size_t *meta_lens, uint32_t flags)
{
    QZ__API_ENTER();
    QZ_CHECK(writable(db));
    QZ_CHECK(validate_batch(db, n, ids, vectors, dims, metas, meta_lens, flags));
    if (n == 0) return QZ_OK;
    /* Grow once up front instead of doubling under the threads' feet. */
    size_t used = atomic_load(&db->index->n_live) + atomic_load(&db->index->n_deleted) +
                  atomic_load(&db->index->n_inserting);
    QZ_CHECK(qz__hnsw_reserve(db->index, used + n));
    QZ_CHECK(qz__idmap_reserve(&db->ids, qz__idmap_count(&db->ids) + n));

    batch_job j = {.db = db, .dims = dims, .ids = ids, .vectors = vectors, .metas = metas,
                   .meta_lens = meta_lens, .upsert = (flags & QZ_BATCH_UPSERT) != 0};
    pthread_mutex_init(&j.lock, NULL);
    unsigned nt = db->opts.threads;
    if (nt > n / 64 + 1) nt = (unsigned)(n / 64 + 1); /* tiny batches: fewer threads */
    int prc = qz__parallel_for(n, nt, batch_row, &j);
    pthread_mutex_destroy(&j.lock);
    if (prc < 0) return qz__err(prc, "%s", j.msg);
    int rc = QZ_OK;
#ifdef QZ_HAVE_LMDB
    if (db->journal) rc = qz__journal_wait(db->journal, j.max_seq);
#endif
    qz__db_maybe_repair(db);
    return rc;
}

/* ---------------- delete ---------------- */

QZ_API int qz_db_delete(qz_db *db, uint64_t id)
{
    QZ__API_ENTER();
    QZ_CHECK(writable(db));
    qz__idmap_shard *sh = qz__idmap_shard_of(&db->ids, id);
    pthread_rwlock_rdlock(&db->writers);
    pthread_mutex_lock(&sh->write);
    uint32_t slot;
    if (!qz__idmap_get(&db->ids, id, &slot)) {
        pthread_mutex_unlock(&sh->write);
        pthread_rwlock_unlock(&db->writers);
        return qz__err(QZ_ENOTFOUND, "id %llu is not in the database", (unsigned long long)id);
    }
    uint64_t seq = 0;
#ifdef QZ_HAVE_LMDB
    if (db->journal) {
        int rc = qz__journal_del(db->journal, id, &seq);
        if (rc < 0) {
            pthread_mutex_unlock(&sh->write);
            pthread_rwlock_unlock(&db->writers);
            return rc;
        }
        atomic_fetch_add(&db->writes_since_snapshot, 1);
    }
#endif
    pthread_rwlock_rdlock(&db->index->resize);
    qz__hnsw_mark_deleted(db->index, slot);
    pthread_rwlock_unlock(&db->index->resize);
    qz__idmap_del(&db->ids, id);
    pthread_mutex_unlock(&sh->write);
    pthread_rwlock_unlock(&db->writers);
    int rc = QZ_OK;
#ifdef QZ_HAVE_LMDB
    if (db->journal) rc = qz__journal_wait(db->journal, seq);
#endif
    qz__db_maybe_repair(db);
    (void)seq;
    return rc;
}
