/*
 * kv.c - the key-value store beside the vectors (the ancestor's
 * StorageObject). Durable databases keep it in the journal (log + LMDB KV
 * table, readable before it reaches LMDB); in-memory databases in an
 * in-memory storage backend.
 */
#include <string.h>

#include "api/db_internal.h"
#include "storage/storage.h"
#include "util/error.h"
#ifdef QZ_HAVE_LMDB
#include "wal/journal.h"
#endif

int qz__kv_check_key(const void *key, size_t klen)
{
    if (!key) return qz__err(QZ_EINVAL, "key is NULL");
    if (klen == 0 || klen > QZ_MAX_KEY) return qz__err(QZ_ERANGE, "key is %zu bytes, it must be 1..%u", klen, QZ_MAX_KEY);
    return QZ_OK;
}

int qz__check_bytes(const void *p, size_t len, const char *what)
{
    if (len > QZ_MAX_METADATA) return qz__err(QZ_ERANGE, "%s is %zu bytes, the limit is %u", what, len, QZ_MAX_METADATA);
    if (len && !p) return qz__err(QZ_EINVAL, "%s is NULL but its length is %zu", what, len);
    return QZ_OK;
}

static int check_db(qz_db *db, int write)
{
    if (!db) return qz__err(QZ_EINVAL, "db is NULL");
    if (write && db->readonly) return qz__err(QZ_EREADONLY, "database was opened read-only");
    return QZ_OK;
}

/* One-operation transaction on the in-memory backend. */
static int mem_write(qz_db *db, const void *key, size_t klen, const void *val, size_t vlen, int del)
{
    qz_storage *s = db->kv_mem;
    qz_storage_txn *t;
    QZ_CHECK(s->begin(s, 0, &t));
    int rc = del ? s->del(s, t, QZ_TABLE_KV, key, klen) : s->put(s, t, QZ_TABLE_KV, key, klen, val, vlen);
    if (rc < 0) {
        s->abort(s, t);
        if (rc == QZ_ENOTFOUND) return qz__err(QZ_ENOTFOUND, "key not found");
        return rc;
    }
    return s->commit(s, t);
}

QZ_API int qz_kv_put(qz_db *db, const void *key, size_t klen, const void *val, size_t vlen)
{
    QZ__API_ENTER();
    QZ_CHECK(check_db(db, 1));
    QZ_CHECK(qz__kv_check_key(key, klen));
    QZ_CHECK(qz__check_bytes(val, vlen, "value"));
    if (!val) val = "";
#ifdef QZ_HAVE_LMDB
    if (db->journal) {
        uint64_t seq;
        QZ_CHECK(qz__journal_kv_put(db->journal, key, klen, val, vlen, &seq));
        return qz__journal_wait(db->journal, seq);
    }
#endif
    return mem_write(db, key, klen, val, vlen, 0);
}

QZ_API int qz_kv_delete(qz_db *db, const void *key, size_t klen)
{
    QZ__API_ENTER();
    QZ_CHECK(check_db(db, 1));
    QZ_CHECK(qz__kv_check_key(key, klen));
#ifdef QZ_HAVE_LMDB
    if (db->journal) {
        uint64_t seq;
        QZ_CHECK(qz__journal_kv_del(db->journal, key, klen, &seq));
        return qz__journal_wait(db->journal, seq);
    }
#endif
    return mem_write(db, key, klen, NULL, 0, 1);
}

QZ_API int qz_kv_get(qz_db *db, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
    QZ__API_ENTER();
    QZ_CHECK(check_db(db, 0));
    QZ_CHECK(qz__kv_check_key(key, klen));
    if (!buf && cap) return qz__err(QZ_EINVAL, "buf is NULL but cap is %zu", cap);
#ifdef QZ_HAVE_LMDB
    if (db->journal) {
        size_t n = 0;
        int rc = qz__journal_kv_get(db->journal, key, klen, buf, cap, &n);
        if (vlen) *vlen = n;
        return rc;
    }
#endif
    qz_storage *s = db->kv_mem;
    qz_storage_txn *t;
    QZ_CHECK(s->begin(s, QZ_TXN_READONLY, &t));
    const void *v;
    size_t n;
    int rc = s->get(s, t, QZ_TABLE_KV, key, klen, &v, &n);
    if (rc == QZ_OK) {
        if (vlen) *vlen = n;
        if (n > cap) rc = qz__err(QZ_ETOOSMALL, "value is %zu bytes, the buffer holds %zu", n, cap);
        else if (n) memcpy(buf, v, n);
    } else if (rc == QZ_ENOTFOUND) {
        rc = qz__err(QZ_ENOTFOUND, "key not found");
    }
    s->abort(s, t);
    return rc;
}

QZ_API int qz_kv_scan(qz_db *db, const void *prefix, size_t plen, qz_kv_scan_fn fn, void *user)
{
    QZ__API_ENTER();
    QZ_CHECK(check_db(db, 0));
    if (!fn) return qz__err(QZ_EINVAL, "callback is NULL");
    if (plen && !prefix) return qz__err(QZ_EINVAL, "prefix is NULL but its length is %zu", plen);
    if (plen > QZ_MAX_KEY) return qz__err(QZ_ERANGE, "prefix is %zu bytes, keys have at most %u", plen, QZ_MAX_KEY);
#ifdef QZ_HAVE_LMDB
    if (db->journal) return qz__journal_kv_scan(db->journal, prefix, plen, fn, user);
#endif
    qz_storage *s = db->kv_mem;
    qz_storage_txn *t;
    QZ_CHECK(s->begin(s, QZ_TXN_READONLY, &t));
    int rc = s->scan(s, t, QZ_TABLE_KV, prefix, plen, fn, user);
    s->abort(s, t);
    return rc;
}
