/*
 * kv.c - the key-value store beside the vectors (the ancestor's
 * StorageObject): argument checks, then the engine (writes go through the
 * one write path, reads through the journal's overlay and the backend).
 */
#include "api/api.h"

QZ_API int qz_kv_put(qz_db *db, const void *key, size_t klen, const void *val, size_t vlen)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 1));
    QZ_CHECK(qz__check_key(key, klen));
    QZ_CHECK(qz__check_bytes(val, vlen, "value"));
    qz__op op = {.type = QZ__OP_KV_PUT, .key = key, .klen = klen, .val = val, .vlen = vlen};
    return qz__engine_apply(db, &op, 1, 0);
}

QZ_API int qz_kv_delete(qz_db *db, const void *key, size_t klen)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 1));
    QZ_CHECK(qz__check_key(key, klen));
    qz__op op = {.type = QZ__OP_KV_DEL, .key = key, .klen = klen};
    return qz__engine_apply(db, &op, 1, 0);
}

QZ_API int qz_kv_get(qz_db *db, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 0));
    QZ_CHECK(qz__check_key(key, klen));
    if (!buf && cap) return qz__err(QZ_EINVAL, "buf is NULL but cap is %zu", cap);
    return qz__engine_kv_get(db, key, klen, buf, cap, vlen);
}

QZ_API int qz_kv_scan(qz_db *db, const void *prefix, size_t plen, qz_kv_scan_fn fn, void *user)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 0));
    if (!fn) return qz__err(QZ_EINVAL, "callback is NULL");
    if (plen && !prefix) return qz__err(QZ_EINVAL, "prefix is NULL but its length is %zu", plen);
    if (plen > QZ_MAX_KEY) return qz__err(QZ_ERANGE, "prefix is %zu bytes, keys have at most %u", plen, QZ_MAX_KEY);
    return qz__engine_kv_scan(db, prefix, plen, fn, user);
}
