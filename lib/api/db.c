/*
 * db.c - open, close, statistics, tunables, compaction, checks.
 */
#include <stdlib.h>
#include <string.h>

#include "api/db_internal.h"
#include "storage/storage.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/sync.h"

/* Create the in-memory part of a database from resolved options. */
static int db_create(const qz_open_options *o, qz_db **out)
{
    qz_db *db = qz__calloc(1, sizeof *db);
    if (!db) return qz__err(QZ_ENOMEM, "out of memory opening a database");
    db->opts = *o;
    db->kernels = qz__kernels_active();
    qz__idmap_init(&db->ids);
    atomic_init(&db->repairing, 0);
    atomic_init(&db->upserts, 0);
    qz__rwlock_init_writer_pref(&db->writers);
    qz__hnsw_config cfg = {o->dimensions, o->metric, o->M, o->ef_construction, o->initial_capacity, o->seed};
    int rc = qz__hnsw_create(&cfg, db->kernels, &db->index);
    if (rc < 0) {
        qz__idmap_destroy(&db->ids);
        pthread_rwlock_destroy(&db->writers);
        qz__free(db);
        return rc;
    }
    atomic_store(&db->index->ef_search, o->ef_search);
    *out = db;
    return QZ_OK;
}

static void db_free(qz_db *db)
{
    if (db->kv_mem) db->kv_mem->close(db->kv_mem);
    qz__hnsw_destroy(db->index);
    qz__idmap_destroy(&db->ids);
    pthread_rwlock_destroy(&db->writers);
    qz__free(db);
}

int qz__db_create(const qz_open_options *o, qz_db **out) { return db_create(o, out); }
void qz__db_free(qz_db *db) { db_free(db); }

QZ_API int qz_db_open(const char *path, const qz_open_options *opts, qz_db **out)
{
    QZ__API_ENTER();
    if (!out) return qz__err(QZ_EINVAL, "out is NULL");
    *out = NULL;
    if (path) {
#ifdef QZ_HAVE_LMDB
        return qz__db_open_dir(path, opts, out);
#else
        return qz__err(QZ_EUNSUPPORTED, "this build has no durable storage; open with path NULL for memory");
#endif
    }
    if (!opts) return qz__err(QZ_EINVAL, "opts is NULL (required for an in-memory database)");
    qz_open_options o;
    QZ_CHECK(qz__options_read(opts, &o));
    if (o.flags & QZ_OPEN_READONLY) return qz__err(QZ_EINVAL, "QZ_OPEN_READONLY needs a directory");
    if (o.flags & QZ_OPEN_EXISTING) return qz__err(QZ_ENOTFOUND, "an in-memory database never exists before it is opened");
    QZ_CHECK(qz__options_resolve(&o, 0));
    qz_db *db;
    QZ_CHECK(db_create(&o, &db));
    int rc = qz__storage_mem_open(&db->kv_mem);
    if (rc < 0) {
        db_free(db);
        return rc;
    }
    *out = db;
    return QZ_OK;
}

QZ_API int qz_db_close(qz_db *db)
{
    QZ__API_ENTER();
    if (!db) return QZ_OK;
    int rc = QZ_OK;
#ifdef QZ_HAVE_LMDB
    if (db->journal) rc = qz__db_close_dir(db);
#endif
    db_free(db);
    return rc;
}

QZ_API int qz_db_stats(qz_db *db, qz_stats *out)
{
    QZ__API_ENTER();
    if (!db) return qz__err(QZ_EINVAL, "db is NULL");
    if (!out) return qz__err(QZ_EINVAL, "out is NULL");
    if (out->struct_size < offsetof(qz_stats, count))
        return qz__err(QZ_EVERSION, "qz_stats.struct_size %u is too small: set it to sizeof(qz_stats)",
                       out->struct_size);
    qz__hnsw *h = db->index;
    qz_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.dimensions = h->dim;
    s.metric = h->metric;
    s.dtype = db->opts.dtype;
    s.M = h->M;
    s.ef_construction = h->ef_construction;
    s.ef_search = atomic_load(&h->ef_search);
    s.max_level = (uint32_t)qz__hnsw_max_level(h);
    s.count = atomic_load(&h->n_live);
    s.deleted = atomic_load(&h->n_deleted);
    pthread_rwlock_rdlock(&h->resize);
    s.capacity = h->capacity;
    s.memory_bytes = qz__hnsw_memory(h) + qz__idmap_memory(&db->ids) + sizeof *db;
    pthread_rwlock_unlock(&h->resize);
    strncpy(s.simd, h->kernel_name, sizeof s.simd - 1);
    size_t n = out->struct_size < sizeof s ? out->struct_size : sizeof s;
    uint32_t keep = out->struct_size;
    memcpy(out, &s, n);
    out->struct_size = keep;
    return QZ_OK;
}

QZ_API int qz_db_set_param(qz_db *db, int key, int64_t value)
{
    QZ__API_ENTER();
    if (!db) return qz__err(QZ_EINVAL, "db is NULL");
    switch (key) {
    case QZ_PARAM_EF_SEARCH:
        if (value < 1 || value > QZ_MAX_EF)
            return qz__err(QZ_ERANGE, "ef_search %lld is outside 1..%u", (long long)value, QZ_MAX_EF);
        atomic_store(&db->index->ef_search, (unsigned)value);
        return QZ_OK;
    default:
        return qz__err(QZ_EINVAL, "unknown parameter key %d", key);
    }
}

QZ_API int qz_db_flush(qz_db *db)
{
    QZ__API_ENTER();
    if (!db) return qz__err(QZ_EINVAL, "db is NULL");
#ifdef QZ_HAVE_LMDB
    return qz__db_checkpoint(db);
#else
    return QZ_OK;
#endif
}

QZ_API int qz_db_compact(qz_db *db)
{
    QZ__API_ENTER();
    if (!db) return qz__err(QZ_EINVAL, "db is NULL");
    if (db->readonly) return qz__err(QZ_EREADONLY, "database was opened read-only");
    return qz__hnsw_repair(db->index);
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

QZ_API int qz_db_check(qz_db *db)
{
    QZ__API_ENTER();
    if (!db) return qz__err(QZ_EINVAL, "db is NULL");
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
    pthread_rwlock_unlock(&db->writers);
    return rc;
}
