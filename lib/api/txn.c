/*
 * txn.c - atomic batches of vector and key-value writes.
 *
 * Operations are checked and copied when added; nothing touches the
 * database until commit, which hands them to the engine's one write path as
 * one atomic apply (engine/apply.c): one group record in the journal, so
 * after a crash all of them are present or none, and every check against
 * the current state happens before anything changes.
 */
#include <string.h>

#include "api/api.h"
#include "util/alloc.h"

typedef struct txn_op {
    uint32_t type;
    uint64_t id;
    void *enc;        /* encoded vector (upsert) */
    void *data;       /* metadata (upsert), key then value (kv) */
    size_t len, klen; /* bytes of data; key length for kv */
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
    QZ_CHECK(qz__check_db(db, 1));
    qz_txn *t = qz__calloc(1, sizeof *t);
    if (!t) return qz__err(QZ_ENOMEM, "out of memory starting a transaction");
    t->db = db;
    *out = t;
    return QZ_OK;
}

QZ_API void qz_txn_abort(qz_txn *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) {
        qz__free(t->ops[i].enc);
        qz__free(t->ops[i].data);
    }
    qz__free(t->ops);
    qz__free(t);
}

/* Append an op owning enc and data (freed on failure). */
static int push(qz_txn *t, uint32_t type, uint64_t id, void *enc, void *data, size_t len, size_t klen)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        txn_op *p = qz__realloc(t->ops, nc * sizeof *p);
        if (!p) {
            qz__free(enc);
            qz__free(data);
            return qz__err(QZ_ENOMEM, "out of memory adding to a transaction");
        }
        t->ops = p;
        t->cap = nc;
    }
    t->ops[t->n++] = (txn_op){type, id, enc, data, len, klen};
    return QZ_OK;
}

static void *copy_bytes(const void *a, size_t an, const void *b, size_t bn, int *oom)
{
    if (an + bn == 0) return NULL;
    unsigned char *p = qz__malloc(an + bn);
    if (!p) {
        *oom = 1;
        return NULL;
    }
    if (an) memcpy(p, a, an);
    if (bn) memcpy(p + an, b, bn);
    return p;
}

QZ_API int qz_txn_upsert(qz_txn *t, uint64_t id, const float *vector, size_t dims, const void *meta, size_t meta_len)
{
    QZ__API_ENTER();
    if (!t) return qz__err(QZ_EINVAL, "txn is NULL");
    QZ_CHECK(qz__check_vector(t->db, vector, dims, "vector"));
    QZ_CHECK(qz__check_bytes(meta, meta_len, "metadata"));
    int oom = 0;
    void *enc = qz__malloc(t->db->index->vec_bytes);
    void *m = copy_bytes(meta, meta_len, NULL, 0, &oom);
    if (!enc || oom) {
        qz__free(enc);
        qz__free(m);
        return qz__err(QZ_ENOMEM, "out of memory adding to a transaction");
    }
    qz__engine_encode(t->db, vector, enc);
    return push(t, QZ__OP_PUT, id, enc, m, meta_len, 0);
}

QZ_API int qz_txn_delete(qz_txn *t, uint64_t id)
{
    QZ__API_ENTER();
    if (!t) return qz__err(QZ_EINVAL, "txn is NULL");
    return push(t, QZ__OP_DEL, id, NULL, NULL, 0, 0);
}

static int add_kv(qz_txn *t, uint32_t type, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (!t) return qz__err(QZ_EINVAL, "txn is NULL");
    QZ_CHECK(qz__check_key(key, klen));
    QZ_CHECK(qz__check_bytes(val, vlen, "value"));
    int oom = 0;
    void *d = copy_bytes(key, klen, val, vlen, &oom);
    if (oom) return qz__err(QZ_ENOMEM, "out of memory adding to a transaction");
    return push(t, type, 0, NULL, d, klen + vlen, klen);
}

QZ_API int qz_txn_kv_put(qz_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    QZ__API_ENTER();
    return add_kv(t, QZ__OP_KV_PUT, key, klen, val, vlen);
}

QZ_API int qz_txn_kv_delete(qz_txn *t, const void *key, size_t klen)
{
    QZ__API_ENTER();
    return add_kv(t, QZ__OP_KV_DEL, key, klen, NULL, 0);
}

QZ_API int qz_txn_commit(qz_txn *t)
{
    QZ__API_ENTER();
    if (!t) return qz__err(QZ_EINVAL, "txn is NULL");
    int rc = QZ_OK;
    if (t->n) {
        qz__op *ops = qz__calloc(t->n, sizeof *ops);
        if (!ops) rc = qz__err(QZ_ENOMEM, "out of memory committing a transaction");
        for (size_t i = 0; ops && i < t->n; i++) {
            const txn_op *o = &t->ops[i];
            ops[i] = (qz__op){.type = o->type, .flags = QZ__OPF_UPSERT, .id = o->id};
            if (o->type == QZ__OP_PUT) {
                ops[i].vec = o->enc;
                ops[i].meta = o->data;
                ops[i].meta_len = o->len;
            } else if (o->type != QZ__OP_DEL) {
                ops[i].key = o->data;
                ops[i].klen = o->klen;
                ops[i].val = (const unsigned char *)o->data + o->klen;
                ops[i].vlen = o->len - o->klen;
            }
        }
        if (ops) rc = qz__engine_apply(t->db, ops, t->n, QZ__APPLY_ATOMIC);
        qz__free(ops);
    }
    qz_txn_abort(t);
    return rc;
}
