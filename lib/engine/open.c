/*
 * open.c - the life of a database handle, as one story:
 *
 *   open     journal over the backend (replays a log if there is one), the
 *            stored options merged with the caller's (or written, for a new
 *            database), the index created, then loaded (load.c);
 *   run      writes through apply.c, checkpoints through checkpoint.c;
 *   close    checkpoint, journal closed (log reset), backend closed if ours,
 *            directory lock released, memory freed.
 *
 * A failed open leaves nothing behind: no thread, no lock, no handle, and
 * for a new directory no files (open_dir.c checks the options first).
 */
#include <string.h>

#include "engine/internal.h"
#include "storage/storage.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/sync.h"
#include "vector/codec.h"
#include "vector/metric.h"
#include "wal/journal.h"

static int db_new(const qz__config *c, qz_db **out)
{
    qz_db *db = qz__calloc(1, sizeof *db);
    if (!db) return qz__err(QZ_ENOMEM, "out of memory opening a database");
    db->cfg = *c;
    db->kernels = qz__kernels_active();
    qz__idmap_init(&db->ids);
    atomic_init(&db->repairing, 0);
    atomic_init(&db->upserts, 0);
    atomic_init(&db->snapshot_dirty, 0);
    atomic_init(&db->writes_since_ckpt, 0);
    atomic_init(&db->first_unsaved_ns, 0);
    atomic_init(&db->reinserted, 0);
    qz__rwlock_init_writer_pref(&db->writers);
    pthread_mutex_init(&db->ckpt_mu, NULL);
    qz__hnsw_config hc = {c->dim, c->metric, c->M, c->ef_construction, c->capacity, c->seed, c->dtype,
                          (c->flags & QZ__CFG_ORIG_STORAGE) != 0};
    int rc = qz__hnsw_create(&hc, db->kernels, &db->index);
    if (rc < 0) {
        qz__idmap_destroy(&db->ids);
        pthread_rwlock_destroy(&db->writers);
        pthread_mutex_destroy(&db->ckpt_mu);
        qz__free(db);
        return rc;
    }
    atomic_store(&db->index->ef_search, c->ef_search);
    *out = db;
    return QZ_OK;
}

/* Free everything but the journal, the backend and the lock. */
static void db_free(qz_db *db)
{
    qz__engine_ckpt_free(db);
    qz__hnsw_destroy(db->index);
    qz__idmap_destroy(&db->ids);
    pthread_rwlock_destroy(&db->writers);
    pthread_mutex_destroy(&db->ckpt_mu);
    qz__free(db);
}

/* Close what open_storage opened, in reverse order; keeps the message. */
static void release(qz__journal *j, qz_storage *st, int own, void (*rel)(void *), void *arg)
{
    qz__errsave es;
    qz__err_save(&es);
    if (j) qz__journal_close(j);
    if (own && st) st->close(st);
    if (rel) rel(arg);
    qz__err_restore(&es, 0);
}

static int check_backend(const qz_storage *s)
{
    if (s->struct_size < sizeof *s)
        return qz__err(QZ_EVERSION, "qz_storage.struct_size %u is smaller than this library's %zu", s->struct_size,
                       sizeof *s);
    if (!s->begin || !s->get || !s->put || !s->del || !s->scan || !s->clear || !s->commit || !s->abort ||
        !s->sync || !s->close)
        return qz__err(QZ_EINVAL, "qz_storage has a NULL method");
    return QZ_OK;
}

int qz__engine_open_locked(qz_storage *st, int own, const char *log_path, void (*rel)(void *), void *arg,
                           const qz__config *cfg, int persist_vectors, qz_db **out)
{
    *out = NULL;
    qz__config c = *cfg;
    int readonly = (c.flags & QZ__CFG_READONLY) != 0;
    int rc = check_backend(st);
    if (rc < 0) {
        release(NULL, st, own, rel, arg);
        return rc;
    }
    /* A journal without a log and in SYNC needs no thread; the others do. */
    qz__journal_options jo = {c.durability ? c.durability : QZ__DUR_BATCHED, c.window_ms,
                              readonly ? QZ__J_READONLY : 0, log_path};
    qz__journal *j = NULL;
    int created = 0;
    rc = qz__journal_open(st, &jo, &j, &created);
    if (rc < 0) {
        release(NULL, st, own, rel, arg);
        return rc;
    }
    qz__config stored;
    int found = 0;
    rc = qz__optrec_read(st, &stored, &found);
    if (rc == QZ_OK && !found && (readonly || (c.flags & QZ__CFG_EXISTING)))
        rc = qz__err(QZ_ENOTFOUND, "%s holds no database", log_path ? "the directory" : "the storage backend");
    if (rc == QZ_OK && found) rc = qz__optrec_merge(&c, &stored);
    if (rc == QZ_OK) rc = qz__config_resolve(&c, found);
    if (rc == QZ_OK && (c.flags & QZ__CFG_ORIG_STORAGE) && c.dtype != QZ__DTYPE_F16 && c.dtype != QZ__DTYPE_INT8)
        rc = qz__err(QZ_EINVAL,
                     "QZ_OPEN_ORIGINALS_IN_STORAGE needs a database of dtype f16 or int8 (this one stores %s): "
                     "%s",
                     c.dtype == QZ__DTYPE_BINARY ? "binary codes" : c.metric == QZ__METRIC_HAMMING ? "bits" : "f32",
                     c.dtype == QZ__DTYPE_BINARY ? "its graph is built on the originals, bit codes are too coarse"
                                                 : "its vectors are the originals, there is nothing to leave out");
    if (rc == QZ_OK && !found) rc = qz__optrec_write(st, &c);
    qz_db *db = NULL;
    if (rc == QZ_OK) rc = db_new(&c, &db);
    if (rc < 0) {
        release(j, st, own, rel, arg);
        return rc;
    }
    db->journal = j;
    db->storage = st;
    db->own_storage = own;
    db->release = rel;
    db->release_arg = arg;
    db->readonly = readonly;
    db->persist_vectors = persist_vectors;
    rc = persist_vectors ? qz__engine_ckpt_init(db) : QZ_OK;
    if (db->index->orig_external) {
        /* what open loads is in the backend (the log was replayed into
         * it): nothing to pin until the first new write */
        atomic_store(&db->index->pin_above, UINT64_MAX);
        qz__hnsw_set_fetch(db->index, qz__engine_fetch_originals, db);
    }
    if (rc == QZ_OK && persist_vectors) rc = qz__engine_load(db);
    if (db->index->orig_external) atomic_store(&db->index->pin_above, qz__journal_applied_seq(j));
    if (rc < 0) {
        release(j, st, own, rel, arg);
        db_free(db);
        return rc;
    }
    if (persist_vectors && !readonly) qz__journal_set_tick(j, qz__engine_tick, db);
    (void)created;
    *out = db;
    return QZ_OK;
}

int qz__engine_open_storage(qz_storage *st, int own, const char *log_path, const qz__config *cfg, qz_db **out)
{
    return qz__engine_open_locked(st, own, log_path, NULL, NULL, cfg, 1, out);
}

int qz__engine_open_memory(const qz__config *cfg, qz_db **out)
{
    *out = NULL;
    qz__config c = *cfg;
    if (c.flags & QZ__CFG_READONLY) return qz__err(QZ_EINVAL, "QZ_OPEN_READONLY needs a directory");
    if (c.flags & QZ__CFG_EXISTING)
        return qz__err(QZ_ENOTFOUND, "an in-memory database never exists before it is opened");
    if (c.flags & QZ__CFG_ORIG_STORAGE)
        return qz__err(QZ_EINVAL, "QZ_OPEN_ORIGINALS_IN_STORAGE needs a directory or a storage backend: an "
                                  "in-memory database has no storage to keep the originals in");
    QZ_CHECK(qz__config_resolve(&c, 0));
    qz_storage *st = NULL;
    QZ_CHECK(qz__storage_mem_open(&st));
    /* kv writes commit to the in-memory backend at once; vectors live in
     * the index only. */
    c.durability = QZ__DUR_SYNC;
    return qz__engine_open_locked(st, 1, NULL, NULL, NULL, &c, 0, out);
}

int qz__engine_close(qz_db *db)
{
    int rc = db->readonly ? QZ_OK : qz__engine_checkpoint(db);
    qz__errsave es;
    qz__err_save(&es);
    int rc2 = qz__journal_close(db->journal);
    if (rc < 0) qz__err_restore(&es, rc);
    else rc = rc2;
    qz__err_save(&es);
    if (db->own_storage) db->storage->close(db->storage);
    if (db->release) db->release(db->release_arg);
    db_free(db);
    return qz__err_restore(&es, rc);
}
