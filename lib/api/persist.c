/*
 * persist.c - durable databases: open a directory, load it, snapshot the
 * graph, flush, close.
 *
 * The VECTORS table (written by the journal) is the source of truth. The
 * graph snapshot is an accelerator: at open, a restored node gets its vector
 * only when the VECTORS record of its label carries the same journal
 * sequence number as the node. Nodes without such a record were deleted or
 * replaced after the snapshot and are dropped; records without such a node
 * were written after the snapshot and are inserted anew. So after any crash
 * the index equals what the log acknowledged, and after a clean close
 * (which writes a fresh snapshot) opening inserts nothing.
 *
 * META "options" record: u32 version, dimensions, metric, dtype, M,
 * ef_construction, ef_search, u64 seed, u64 XXH3 of the preceding bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <xxhash.h>

#include "api/db_internal.h"
#include "index/hnsw_io.h"
#include "storage/storage.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/parallel.h"
#include "util/sync.h"
#include "wal/journal.h"

#define OPT_VERSION 1u

typedef struct stored_opts {
    uint32_t version, dimensions, metric, dtype, M, ef_construction, ef_search, pad;
    uint64_t seed, sum;
} stored_opts;

static int read_stored(qz_storage *s, stored_opts *so, int *found)
{
    *found = 0;
    qz_storage_txn *t;
    QZ_CHECK(s->begin(s, QZ_TXN_READONLY, &t));
    const void *v;
    size_t n;
    int rc = s->get(s, t, QZ_TABLE_META, "options", 7, &v, &n);
    if (rc == QZ_ENOTFOUND) rc = QZ_OK;
    else if (rc == QZ_OK) {
        if (n != sizeof *so) rc = qz__err(QZ_ECORRUPT, "options record has %zu bytes, expected %zu", n, sizeof *so);
        else {
            memcpy(so, v, sizeof *so);
            if (XXH3_64bits(so, offsetof(stored_opts, sum)) != so->sum)
                rc = qz__err(QZ_ECORRUPT, "options record fails its checksum");
            else if (so->version > OPT_VERSION)
                rc = qz__err(QZ_EVERSION, "options record version %u is newer than this library", so->version);
            else
                *found = 1;
        }
    }
    s->abort(s, t);
    return rc;
}

static int write_stored(qz_storage *s, const qz_open_options *o)
{
    stored_opts so = {OPT_VERSION, o->dimensions, o->metric, o->dtype, o->M, o->ef_construction, o->ef_search, 0,
                      o->seed, 0};
    so.sum = XXH3_64bits(&so, offsetof(stored_opts, sum));
    qz_storage_txn *t;
    QZ_CHECK(s->begin(s, 0, &t));
    int rc = s->put(s, t, QZ_TABLE_META, "options", 7, &so, sizeof so);
    if (rc < 0) {
        s->abort(s, t);
        return rc;
    }
    return s->commit(s, t);
}

static const char *metric_name(uint32_t m)
{
    switch (m) {
    case QZ_METRIC_COSINE: return "cosine";
    case QZ_METRIC_L2: return "l2";
    case QZ_METRIC_IP: return "inner-product";
    case QZ_METRIC_HAMMING: return "hamming";
    default: return "unknown";
    }
}

/* Merge the caller's options with the stored ones. */
static int merge_options(qz_open_options *o, const stored_opts *so)
{
    if (o->dimensions && o->dimensions != so->dimensions)
        return qz__err(QZ_EDIM, "database has %u dimensions, the options ask for %u", so->dimensions, o->dimensions);
    if (o->metric && o->metric != so->metric)
        return qz__err(QZ_EINVAL, "database uses the %s metric, the options ask for %s", metric_name(so->metric),
                       metric_name(o->metric));
    if (o->dtype && o->dtype != so->dtype)
        return qz__err(QZ_EINVAL, "database stores vector type %u, the options ask for %u", so->dtype, o->dtype);
    o->dimensions = so->dimensions;
    o->metric = so->metric;
    o->dtype = so->dtype;
    o->M = so->M;
    o->ef_construction = so->ef_construction;
    o->seed = so->seed;
    if (!o->ef_search) o->ef_search = so->ef_search;
    return QZ_OK;
}

/* ---- loading ---- */

typedef struct pending {
    uint64_t id, seq;
    void *enc;
    void *meta;
    size_t meta_len;
} pending;

typedef struct load_state {
    qz_db *db;
    int graph;
    pending *p;
    size_t n, cap;
    int rc;
} load_state;

static int on_node(uint64_t label, uint32_t slot, void *u)
{
    qz_db *db = u;
    return qz__idmap_put(&db->ids, label, slot);
}

static int on_vector(uint64_t id, uint64_t seq, const void *vec, size_t vec_bytes, const void *meta, size_t meta_len,
                     void *u)
{
    load_state *ls = u;
    qz__hnsw *h = ls->db->index;
    if (vec_bytes != h->vec_bytes)
        return ls->rc = qz__err(QZ_ECORRUPT, "vector %llu has %zu bytes, the database stores %u",
                                (unsigned long long)id, vec_bytes, h->vec_bytes);
    uint32_t slot;
    if (ls->graph && qz__idmap_get(&ls->db->ids, id, &slot) && h->seqs[slot] == seq &&
        atomic_load(&h->state[slot]) == QZ__DELETED) {
        void *payload;
        if (qz__payload_new(meta, meta_len, &payload) < 0) return ls->rc = QZ_ENOMEM;
        qz__hnsw_attach(h, slot, vec, payload);
        return 0;
    }
    if (ls->n == ls->cap) {
        size_t nc = ls->cap ? ls->cap * 2 : 1024;
        pending *q = qz__realloc(ls->p, nc * sizeof *q);
        if (!q) return ls->rc = qz__err(QZ_ENOMEM, "out of memory loading vectors");
        ls->p = q;
        ls->cap = nc;
    }
    pending *p = &ls->p[ls->n];
    p->enc = qz__malloc(vec_bytes);
    p->meta = meta_len ? qz__malloc(meta_len) : NULL;
    if (!p->enc || (meta_len && !p->meta)) {
        qz__free(p->enc);
        qz__free(p->meta);
        return ls->rc = qz__err(QZ_ENOMEM, "out of memory loading vectors");
    }
    memcpy(p->enc, vec, vec_bytes);
    if (meta_len) memcpy(p->meta, meta, meta_len);
    p->id = id;
    p->seq = seq;
    p->meta_len = meta_len;
    ls->n++;
    return 0;
}

static int insert_one(size_t i, void *u)
{
    load_state *ls = u;
    pending *p = &ls->p[i];
    return qz__db_load_one(ls->db, p->id, p->seq, p->enc, p->meta, p->meta_len);
}

/* Insert the records the snapshot did not cover, on every configured thread. */
static int insert_pending(qz_db *db, load_state *ls)
{
    if (!ls->n) return QZ_OK;
    QZ_CHECK(qz__hnsw_reserve(db->index, qz__hnsw_high_water(db->index) + ls->n));
    int rc = qz__parallel_for(ls->n, db->opts.threads, insert_one, ls);
    return rc < 0 ? qz__err(rc, "loading vectors written after the last graph snapshot failed") : QZ_OK;
}

static void free_pending(load_state *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        qz__free(ls->p[i].enc);
        qz__free(ls->p[i].meta);
    }
    qz__free(ls->p);
}

static int load(qz_db *db)
{
    qz_storage *s = qz__journal_storage(db->journal);
    load_state ls = {.db = db};
    int rc = qz__hnsw_load(db->index, s, on_node, db, &ls.graph);
    if (rc == QZ_OK) {
        rc = qz__journal_scan_vectors(db->journal, on_vector, &ls);
        if (ls.rc < 0) rc = ls.rc;
    }
    if (rc == QZ_OK) {
        /* Restored nodes that found no matching record were deleted or
         * replaced after the snapshot: drop them from the id map. */
        qz__hnsw *h = db->index;
        uint32_t hw = qz__hnsw_high_water(h);
        for (uint32_t sl = 0; sl < hw; sl++) {
            uint32_t cur;
            if (atomic_load(&h->state[sl]) == QZ__DELETED && qz__idmap_get(&db->ids, h->labels[sl], &cur) &&
                cur == sl)
                qz__idmap_del(&db->ids, h->labels[sl]);
        }
        /* Unlink those dead nodes BEFORE inserting anything: they hold no
         * vector, so they must not guide insertions, and one of them may be
         * the snapshot's entry point (repair picks a live one, or none). An
         * in-memory repair, so read-only handles do it too. */
        if (atomic_load(&h->n_deleted)) rc = qz__hnsw_repair(h);
        if (rc == QZ_OK) rc = insert_pending(db, &ls);
    }
    free_pending(&ls);
    db->snapshot_dirty = ls.n != 0 || !ls.graph;
    return rc;
}

int qz__db_open_dir(const char *path, const qz_open_options *user, qz_db **out)
{
    qz_open_options o;
    if (user) {
        QZ_CHECK(qz__options_read(user, &o));
    } else {
        memset(&o, 0, sizeof o);
        o.struct_size = sizeof o;
    }
    int readonly = (o.flags & QZ_OPEN_READONLY) != 0;
    if (o.durability > QZ_DURABILITY_NONE) return qz__err(QZ_EINVAL, "unknown durability mode %u", o.durability);
    /* A directory without a database: check everything a new database needs
     * before anything is created on disk, so a failed open leaves no files. */
    if (!qz__storage_lmdb_exists(path)) {
        if (readonly || (o.flags & QZ_OPEN_EXISTING))
            return qz__err(QZ_ENOTFOUND, "%s holds no database", path);
        qz_open_options check = o;
        QZ_CHECK(qz__options_resolve(&check, 0));
    }
    qz__journal_options jo = {o.durability ? o.durability : QZ_DURABILITY_BATCHED,
                              o.batch_window_ms ? o.batch_window_ms : 100, (uint32_t)readonly};
    qz__journal *j = NULL;
    int created = 0;
    QZ_CHECK(qz__journal_open(path, &jo, &j, &created));
    qz_storage *s = qz__journal_storage(j);
    stored_opts so;
    int found = 0, rc = read_stored(s, &so, &found);
    if (rc == QZ_OK && found) rc = merge_options(&o, &so);
    if (rc == QZ_OK && !found && readonly) rc = qz__err(QZ_ENOTFOUND, "%s holds no database", path);
    if (rc == QZ_OK) rc = qz__options_resolve(&o, found);
    if (rc == QZ_OK && !found) rc = write_stored(s, &o);
    qz_db *db = NULL;
    if (rc == QZ_OK) rc = qz__db_create(&o, &db);
    if (rc < 0) {
        qz__journal_close(j);
        return rc;
    }
    db->journal = j;
    db->readonly = readonly;
    rc = load(db);
    if (rc < 0) {
        char msg[512];
        strncpy(msg, qz__err_msg(), sizeof msg - 1);
        msg[sizeof msg - 1] = '\0';
        qz__journal_close(j);
        db->journal = NULL;
        qz__db_free(db);
        return qz__err(rc, "%s", msg);
    }
    *out = db;
    return QZ_OK;
}

/* Flush the log into LMDB and, when the graph changed, write a fresh
 * snapshot. Holds `writers` exclusive so the snapshot is consistent. */
int qz__db_checkpoint(qz_db *db)
{
    if (db->readonly || !db->journal) return QZ_OK;
    pthread_rwlock_wrlock(&db->writers);
    int rc = qz__journal_flush(db->journal);
    if (rc == QZ_OK && (db->snapshot_dirty || atomic_load(&db->writes_since_snapshot))) {
        if (atomic_load(&db->index->n_deleted)) rc = qz__hnsw_repair(db->index);
        if (rc == QZ_OK) rc = qz__hnsw_save(db->index, qz__journal_storage(db->journal));
        if (rc == QZ_OK) {
            db->snapshot_dirty = 0;
            atomic_store(&db->writes_since_snapshot, 0);
        }
    }
    pthread_rwlock_unlock(&db->writers);
    return rc;
}

int qz__db_close_dir(qz_db *db)
{
    int rc = qz__db_checkpoint(db);
    char msg[512] = "";
    if (rc < 0) strncpy(msg, qz__err_msg(), sizeof msg - 1);
    int rc2 = qz__journal_close(db->journal);
    db->journal = NULL;
    if (rc < 0) return qz__err(rc, "%s", msg);
    return rc2;
}
