/*
 * txn.c - atomic batches of vector and key-value writes.
 *
 * Operations are checked and copied when added; nothing touches the
 * database until commit. Commit takes `writers` shared and the write locks
 * of every id shard involved (in shard order, so two commits cannot
 * deadlock), checks what depends on the current state (deletes of missing
 * ids), reserves every slot, and only then appends ONE group record to the
 * log, so replay after a crash applies all of it or none. Then it applies
 * the operations to memory, which cannot fail for want of room any more.
 */
#include <stdlib.h>
#include <string.h>

#include "api/db_internal.h"
#include "storage/storage.h"
#include "util/alloc.h"
#include "util/error.h"
#ifdef QZ_HAVE_LMDB
#include "wal/journal.h"
#endif

enum { OP_UPSERT, OP_DELETE, OP_KV_PUT, OP_KV_DEL };

typedef struct txn_op {
    int type;
    uint64_t id;
    void *enc;               /* encoded vector (upsert) */
    void *data;              /* metadata (upsert), key+value (kv) */
    size_t len, klen;        /* bytes of data; key length for kv */
    uint32_t slot, old_slot; /* filled at commit */
} txn_op;

struct qz_txn {
    qz_db *db;
    txn_op *ops;
    size_t n, cap;
};

QZ_API int qz_txn_begin(qz_db *db, qz_txn **out)
{
    QZ__API_ENTER();
    if (!out) return qz__err(QZ_EINVAL, "out is NULL");
    *out = NULL;
    if (!db) return qz__err(QZ_EINVAL, "db is NULL");
    if (db->readonly) return qz__err(QZ_EREADONLY, "database was opened read-only");
    qz_txn *t = qz__calloc(1, sizeof *t);
    if (!t) return qz__err(QZ_ENOMEM, "out of memory starting a transaction");
    t->db = db;
    *out = t;
    return QZ_OK;
}

static void free_op(txn_op *o)
{
    qz__free(o->enc);
    qz__free(o->data);
}

QZ_API void qz_txn_abort(qz_txn *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) free_op(&t->ops[i]);
    qz__free(t->ops);
    qz__free(t);
}

static txn_op *push(qz_txn *t)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        txn_op *p = qz__realloc(t->ops, nc * sizeof *p);
        if (!p) return NULL;
        t->ops = p;
        t->cap = nc;
    }
    txn_op *o = &t->ops[t->n++];
    memset(o, 0, sizeof *o);
    o->slot = o->old_slot = QZ__SLOT_NONE;
    return o;
}

QZ_API int qz_txn_upsert(qz_txn *t, uint64_t id, const float *vector, size_t dims, const void *meta, size_t meta_len)
{
    QZ__API_ENTER();
    if (!t) return qz__err(QZ_EINVAL, "txn is NULL");
    QZ_CHECK(qz__check_vector(t->db, vector, dims, "vector"));
    QZ_CHECK(qz__check_bytes(meta, meta_len, "metadata"));
    void *enc = qz__malloc(t->db->index->vec_bytes), *m = NULL;
    txn_op *o = enc && qz__payload_new(meta, meta_len, &m) == QZ_OK ? push(t) : NULL;
    if (!o) {
        qz__free(enc);
        qz__free(m);
        return qz__err(QZ_ENOMEM, "out of memory adding to a transaction");
    }
    qz__hnsw_encode(t->db->index, vector, enc);
    o->type = OP_UPSERT;
    o->id = id;
    o->enc = enc;
    o->data = m; /* already in payload form: u32 length + bytes */
    o->len = meta_len;
    return QZ_OK;
}

QZ_API int qz_txn_delete(qz_txn *t, uint64_t id)
{
    QZ__API_ENTER();
    if (!t) return qz__err(QZ_EINVAL, "txn is NULL");
    txn_op *o = push(t);
    if (!o) return qz__err(QZ_ENOMEM, "out of memory adding to a transaction");
    o->type = OP_DELETE;
    o->id = id;
    return QZ_OK;
}

static int add_kv(qz_txn *t, int type, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (!t) return qz__err(QZ_EINVAL, "txn is NULL");
    QZ_CHECK(qz__kv_check_key(key, klen));
    QZ_CHECK(qz__check_bytes(val, vlen, "value"));
    void *d = qz__malloc(klen + vlen);
    txn_op *o = d ? push(t) : NULL;
    if (!o) {
        qz__free(d);
        return qz__err(QZ_ENOMEM, "out of memory adding to a transaction");
    }
    memcpy(d, key, klen);
    if (vlen) memcpy((uint8_t *)d + klen, val, vlen);
    o->type = type;
    o->data = d;
    o->klen = klen;
    o->len = klen + vlen;
    return QZ_OK;
}

QZ_API int qz_txn_kv_put(qz_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    QZ__API_ENTER();
    return add_kv(t, OP_KV_PUT, key, klen, val, vlen);
}

QZ_API int qz_txn_kv_delete(qz_txn *t, const void *key, size_t klen)
{
    QZ__API_ENTER();
    return add_kv(t, OP_KV_DEL, key, klen, NULL, 0);
}

static int shard_cmp(const void *a, const void *b)
{
    const uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return (x > y) - (x < y);
}

/* Does `id` exist after ops [0, upto) of this transaction? */
static int exists_after(qz_db *db, const qz_txn *t, size_t upto, uint64_t id)
{
    for (size_t i = upto; i-- > 0;) {
        if (t->ops[i].id != id) continue;
        if (t->ops[i].type == OP_UPSERT) return 1;
        if (t->ops[i].type == OP_DELETE) return 0;
    }
    uint32_t s;
    return qz__idmap_get(&db->ids, id, &s);
}

#ifdef QZ_HAVE_LMDB
/* Is `key` absent before op `upto` (earlier ops of this txn, then the store)? */
static int kv_absent(qz_db *db, const qz_txn *t, size_t upto, const void *key, size_t klen)
{
    for (size_t i = upto; i-- > 0;) {
        const txn_op *o = &t->ops[i];
        if (o->type < OP_KV_PUT || o->klen != klen || memcmp(o->data, key, klen)) continue;
        return o->type == OP_KV_DEL;
    }
    size_t n;
    int rc = qz__journal_kv_get(db->journal, key, klen, NULL, 0, &n);
    if (rc == QZ_ENOTFOUND) {
        qz__err_clear();
        return 1;
    }
    return 0;
}

static int log_group(qz_db *db, qz_txn *t, uint64_t *seq)
{
    qz__jgroup *g;
    QZ_CHECK(qz__jgroup_begin(db->journal, &g));
    int rc = QZ_OK;
    for (size_t i = 0; i < t->n && rc == QZ_OK; i++) {
        txn_op *o = &t->ops[i];
        switch (o->type) {
        case OP_UPSERT:
            rc = qz__jgroup_put(g, o->id, o->enc, db->index->vec_bytes,
                                o->data ? (uint8_t *)o->data + sizeof(uint32_t) : NULL, o->len);
            break;
        case OP_DELETE: rc = qz__jgroup_del(g, o->id); break;
        case OP_KV_PUT: rc = qz__jgroup_kv_put(g, o->data, o->klen, (uint8_t *)o->data + o->klen, o->len - o->klen); break;
        default:
            /* Deleting an absent key is a no-op (as in memory): leave it out
             * of the group unless an earlier put of this txn creates it. */
            if (kv_absent(db, t, i, o->data, o->klen)) break;
            rc = qz__jgroup_kv_del(g, o->data, o->klen);
            break;
        }
    }
    if (rc < 0) {
        qz__jgroup_abort(g);
        return rc;
    }
    return qz__jgroup_commit(g, seq);
}
#endif

static int apply_mem_kv(qz_db *db, qz_txn *t)
{
    qz_storage *s = db->kv_mem;
    int any = 0;
    for (size_t i = 0; i < t->n; i++) any |= t->ops[i].type >= OP_KV_PUT;
    if (!any) return QZ_OK;
    qz_storage_txn *st;
    QZ_CHECK(s->begin(s, 0, &st));
    int rc = QZ_OK;
    for (size_t i = 0; i < t->n && rc == QZ_OK; i++) {
        txn_op *o = &t->ops[i];
        if (o->type == OP_KV_PUT)
            rc = s->put(s, st, QZ_TABLE_KV, o->data, o->klen, (uint8_t *)o->data + o->klen, o->len - o->klen);
        else if (o->type == OP_KV_DEL && s->del(s, st, QZ_TABLE_KV, o->data, o->klen) == QZ_ENOTFOUND)
            qz__err_clear();
    }
    if (rc < 0) {
        s->abort(s, st);
        return rc;
    }
    return s->commit(s, st);
}

QZ_API int qz_txn_commit(qz_txn *t)
{
    QZ__API_ENTER();
    if (!t) return qz__err(QZ_EINVAL, "txn is NULL");
    qz_db *db = t->db;
    qz__hnsw *h = db->index;
    int rc = QZ_OK;
    size_t nsh = 0;
    qz__idmap_shard **sh = qz__malloc((t->n + 1) * sizeof *sh);
    if (!sh) {
        qz_txn_abort(t);
        return qz__err(QZ_ENOMEM, "out of memory committing a transaction");
    }
    for (size_t i = 0; i < t->n; i++)
        if (t->ops[i].type <= OP_DELETE) sh[nsh++] = qz__idmap_shard_of(&db->ids, t->ops[i].id);
    qsort(sh, nsh, sizeof *sh, shard_cmp);
    size_t u = 0;
    for (size_t i = 0; i < nsh; i++)
        if (!u || sh[u - 1] != sh[i]) sh[u++] = sh[i];
    nsh = u;

    pthread_rwlock_rdlock(&db->writers);
    for (size_t i = 0; i < nsh; i++) pthread_mutex_lock(&sh[i]->write);

    /* Checks against the current state, then every reservation. */
    for (size_t i = 0; i < t->n && rc == QZ_OK; i++) {
        txn_op *o = &t->ops[i];
        if (o->type == OP_DELETE && !exists_after(db, t, i, o->id))
            rc = qz__err(QZ_ENOTFOUND, "operation %zu deletes id %llu, which does not exist", i,
                         (unsigned long long)o->id);
        if (o->type == OP_UPSERT) {
            rc = qz__idmap_reserve_one(&db->ids, o->id);
            if (rc == QZ_OK) rc = qz__hnsw_alloc_slot(h, &o->slot);
        }
    }
    uint64_t seq = 0;
#ifdef QZ_HAVE_LMDB
    if (rc == QZ_OK && db->journal) {
        rc = log_group(db, t, &seq);
        if (rc == QZ_OK) atomic_fetch_add(&db->writes_since_snapshot, t->n);
    }
#endif
    if (rc == QZ_OK && !db->journal) rc = apply_mem_kv(db, t);
    if (rc < 0) {
        for (size_t i = 0; i < t->n; i++)
            if (t->ops[i].slot != QZ__SLOT_NONE) qz__hnsw_release_slot(h, t->ops[i].slot);
    } else {
        for (size_t i = 0; i < t->n; i++) {
            txn_op *o = &t->ops[i];
            uint32_t old;
            int had = (o->type <= OP_DELETE) && qz__idmap_get(&db->ids, o->id, &old);
            if (o->type == OP_UPSERT) {
                int r = qz__hnsw_insert(h, o->slot, o->id, o->enc, o->data, seq);
                o->data = NULL; /* the index owns the payload now */
                if (r < 0 && rc == QZ_OK) rc = r;
                if (r < 0) continue;
                qz__idmap_put(&db->ids, o->id, o->slot);
                if (had) atomic_fetch_add(&db->upserts, 1);
            } else if (o->type == OP_DELETE && had) {
                qz__idmap_del(&db->ids, o->id);
            } else {
                continue;
            }
            if (had) {
                pthread_rwlock_rdlock(&h->resize);
                qz__hnsw_mark_deleted(h, old);
                pthread_rwlock_unlock(&h->resize);
            }
        }
    }
    for (size_t i = nsh; i-- > 0;) pthread_mutex_unlock(&sh[i]->write);
    pthread_rwlock_unlock(&db->writers);
    qz__free(sh);
#ifdef QZ_HAVE_LMDB
    if (rc == QZ_OK && db->journal) rc = qz__journal_wait(db->journal, seq);
#endif
    qz_txn_abort(t);
    if (rc == QZ_OK) qz__db_maybe_repair(db);
    return rc;
}
