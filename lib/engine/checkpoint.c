/*
 * checkpoint.c - keeping the graph snapshot close to the live graph.
 *
 * A checkpoint writes the chunks of the graph snapshot that changed since
 * the previous one (index/hnsw_io.c compares each chunk with what it wrote
 * last), in one backend transaction, while `writers` is held exclusive (so
 * no write is half-applied) and `resize` shared (so no repair moves slots).
 * Searches go on meanwhile. It does not need the journal flushed: load
 * pairs snapshot nodes with VECTORS records by (id, seq), so a snapshot
 * that runs ahead of, or behind, the applied records is still sound.
 *
 * Triggers: after a write, once cfg.ckpt_writes writes accumulated; from the
 * journal's background thread, once the oldest unsaved write is cfg.ckpt_ms
 * old; and at flush and close. So after a crash, open re-inserts at most the
 * writes since the last checkpoint (plus those of the last ckpt_ms).
 */
#include <string.h>
#include <time.h>

#include "engine/internal.h"
#include "persist/format.h"
#include "util/endian.h"
#include "util/clock.h"
#include "util/error.h"
#include "wal/journal.h"

int qz__engine_ckpt_init(qz_db *db) { return qz__graph_ckpt_new(&db->ckpt); }

void qz__engine_ckpt_free(qz_db *db)
{
    if (db->ckpt) qz__graph_ckpt_free(db->ckpt);
    db->ckpt = NULL;
}

int qz__engine_graph_load(qz_db *db, qz__hnsw_node_fn fn, void *user, int *found)
{
    return qz__hnsw_load(db->index, db->storage, db->ckpt, fn, user, found);
}

/* META graph.seq := seq (persist/format.h), unless it holds it already.
 * Caller holds ckpt_mu. */
static int put_graph_seq(qz_db *db, uint64_t seq)
{
    if (seq == db->graph_seq_stored) return QZ_OK;
    qz_storage *st = db->storage;
    qz_storage_txn *t = NULL;
    QZ_CHECK(st->begin(st, 0, &t));
    unsigned char b[8];
    qz__put_u64le(b, seq);
    int rc = st->put(st, t, QZ_TABLE_META, QZ__META_GRAPH_SEQ, strlen(QZ__META_GRAPH_SEQ), b, 8);
    if (rc < 0) {
        st->abort(st, t);
        return rc;
    }
    rc = st->commit(st, t);
    if (rc == QZ_OK) db->graph_seq_stored = seq;
    return rc;
}

/* Caller holds ckpt_mu. */
static int save_locked(qz_db *db)
{
    if (!atomic_load(&db->snapshot_dirty) && !atomic_load(&db->writes_since_ckpt)) return QZ_OK;
    pthread_rwlock_wrlock(&db->writers);
    /* With `writers` exclusive every vector write appended so far is in the
     * graph and none is running: the snapshot covers exactly the journal up
     * to here (kv records may follow meanwhile; they only make it later). */
    uint64_t seq = qz__journal_last_seq(db->journal);
    int rc = qz__hnsw_save(db->index, db->storage, db->ckpt, NULL); /* takes `resize` shared itself */
    if (rc == QZ_OK && seq != UINT64_MAX) rc = put_graph_seq(db, seq);
    /* The backend failed a commit: from now on it is not trusted for
     * anything (as for a failed journal commit). */
    if (rc == QZ_EIO || rc == QZ_ECORRUPT || rc == QZ_EFULL) rc = qz__journal_fail(db->journal, rc, "graph checkpoint");
    if (rc == QZ_OK) {
        atomic_store(&db->snapshot_dirty, 0);
        atomic_store(&db->writes_since_ckpt, 0);
        atomic_store(&db->first_unsaved_ns, 0);
    }
    pthread_rwlock_unlock(&db->writers);
    return rc;
}

int qz__engine_checkpoint(qz_db *db)
{
    if (db->readonly || !db->persist_vectors) return QZ_OK;
    pthread_mutex_lock(&db->ckpt_mu);
    int rc = save_locked(db);
    pthread_mutex_unlock(&db->ckpt_mu);
    return rc;
}

/* A background checkpoint: skipped when one is running; a failure is kept
 * for the next flush or close to report (the snapshot stays dirty). */
static void try_checkpoint(qz_db *db)
{
    if (pthread_mutex_trylock(&db->ckpt_mu) != 0) return;
    qz__errsave es;
    qz__err_save(&es);
    (void)save_locked(db);
    qz__err_restore(&es, 0);
    pthread_mutex_unlock(&db->ckpt_mu);
}

void qz__engine_maybe_checkpoint(qz_db *db)
{
    if (db->readonly || !db->persist_vectors) return;
    if (atomic_load(&db->writes_since_ckpt) >= __atomic_load_n(&db->cfg.ckpt_writes, __ATOMIC_RELAXED)) try_checkpoint(db);
}

void qz__engine_tick(void *arg)
{
    qz_db *db = arg;
    qz__engine_unpin(db); /* a cycle applied records */
    uint64_t first = atomic_load(&db->first_unsaved_ns);
    if (first && qz__now_ns() - first >= (uint64_t)__atomic_load_n(&db->cfg.ckpt_ms, __ATOMIC_RELAXED) * 1000000u) try_checkpoint(db);
}

int qz__engine_flush(qz_db *db)
{
    if (db->readonly) return QZ_OK;
    QZ_CHECK(qz__journal_flush(db->journal));
    if (!db->persist_vectors) return QZ_OK;
    qz__engine_unpin(db);
    if (atomic_load(&db->index->n_deleted)) QZ_CHECK(qz__engine_compact(db));
    return qz__engine_checkpoint(db);
}

void qz__engine_set_param(qz_db *db, int key, uint32_t value)
{
    switch (key) {
    case QZ__PARAM_EF_SEARCH: atomic_store(&db->index->ef_search, value); break;
    case QZ__PARAM_CKPT_WRITES: __atomic_store_n(&db->cfg.ckpt_writes, value, __ATOMIC_RELAXED); break;
    case QZ__PARAM_CKPT_MS: __atomic_store_n(&db->cfg.ckpt_ms, value, __ATOMIC_RELAXED); break;
    default: break;
    }
}
