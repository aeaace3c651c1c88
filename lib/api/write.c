/*
 * write.c - insert, upsert, batch insert, delete: argument checks, then the
 * engine's one write path (engine/apply.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "util/alloc.h"

/* Encode into a stack buffer when small. */
#define ENC_STACK 4096

static int write_one(qz_db *db, uint64_t id, const float *vector, size_t dims, const void *meta, size_t meta_len,
                     uint32_t flags)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 1));
    QZ_CHECK(qz__check_vector(db, vector, dims, "vector"));
    QZ_CHECK(qz__check_bytes(meta, meta_len, "metadata"));
    uint64_t stackbuf[ENC_STACK / 8];
    void *enc = stackbuf;
    if (db->index->vec_bytes > sizeof stackbuf) {
        enc = qz__malloc(db->index->vec_bytes);
        if (!enc) return qz__err(QZ_ENOMEM, "out of memory encoding a vector");
    }
    qz__engine_encode(db, vector, enc);
    qz__op op = {.type = QZ__OP_PUT, .flags = flags, .id = id, .vec = enc, .meta = meta, .meta_len = meta_len};
    int rc = qz__engine_apply(db, &op, 1, 0);
    if (enc != stackbuf) qz__free(enc);
    return rc;
}

QZ_API int qz_db_insert(qz_db *db, uint64_t id, const float *vector, size_t dims, const void *meta, size_t meta_len)
{
    return write_one(db, id, vector, dims, meta, meta_len, 0);
}

QZ_API int qz_db_upsert(qz_db *db, uint64_t id, const float *vector, size_t dims, const void *meta, size_t meta_len)
{
    return write_one(db, id, vector, dims, meta, meta_len, QZ__OPF_UPSERT);
}

QZ_API int qz_db_delete(qz_db *db, uint64_t id)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 1));
    qz__op op = {.type = QZ__OP_DEL, .id = id};
    return qz__engine_apply(db, &op, 1, 0);
}

/* ---------------- batch ---------------- */

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
    if (dims != db->cfg.dim)
        return qz__err(QZ_EDIM, "batch rows have %zu dimensions, database expects %u", dims, db->cfg.dim);
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
    return rc;
}

QZ_API int qz_db_insert_batch(qz_db *db, size_t n, const uint64_t *ids, const float *vectors, size_t dims,
                              const void *const *metas, const size_t *meta_lens, uint32_t flags)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 1));
    QZ_CHECK(validate_batch(db, n, ids, vectors, dims, metas, meta_lens, flags));
    if (n == 0) return QZ_OK;
    qz__op *ops = qz__calloc(n, sizeof *ops);
    if (!ops) return qz__err(QZ_ENOMEM, "out of memory for a batch of %zu rows", n);
    uint32_t of = (flags & QZ_BATCH_UPSERT) ? QZ__OPF_UPSERT : 0;
    for (size_t i = 0; i < n; i++)
        ops[i] = (qz__op){.type = QZ__OP_PUT, .flags = of, .id = ids[i], .user_vec = vectors + i * dims,
                          .meta = metas ? metas[i] : NULL, .meta_len = metas ? meta_lens[i] : 0};
    int rc = qz__engine_apply(db, ops, n, QZ__APPLY_PARALLEL);
    qz__free(ops);
    return rc;
}
