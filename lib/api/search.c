/*
 * search.c - batch search and the id-set filter: argument checks, then the
 * engine (engine/search_batch.c). The single search lives in read.c.
 */
#include <stdint.h>
#include <stdio.h>

#include "api/api.h"

QZ_API int qz_db_search_batch(qz_db *db, const float *queries, size_t nq, size_t dims, size_t k,
                              const qz_search_params *params, uint64_t *ids, float *distances, size_t *counts)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 0));
    if (k == 0 || k > QZ_MAX_K) return qz__err(QZ_ERANGE, "k is %zu, it must be 1..%u", k, QZ_MAX_K);
    qz_search_params sp;
    QZ_CHECK(qz__search_params_read(params, &sp));
    if (nq == 0) return QZ_OK;
    if (!queries) return qz__err(QZ_EINVAL, "queries is NULL");
    if (!ids) return qz__err(QZ_EINVAL, "ids is NULL");
    if (!counts) return qz__err(QZ_EINVAL, "counts is NULL");
    if (nq > SIZE_MAX / k) return qz__err(QZ_ERANGE, "%zu queries of k %zu overflow the result arrays", nq, k);
    if (dims != db->cfg.dim)
        return qz__err(QZ_EDIM, "query rows have %zu dimensions, database expects %u", dims, db->cfg.dim);
    char what[48];
    for (size_t i = 0; i < nq; i++) {
        snprintf(what, sizeof what, "query row %zu", i);
        QZ_CHECK(qz__check_vector(db, queries + i * dims, dims, what));
    }
    return qz__engine_search_batch(db, queries, nq, dims, k, sp.ef, sp.oversample, sp.filter, sp.filter_user, ids,
                                   distances, counts);
}

#define QZ__ID_SET_FLAGS QZ_ID_SET_EXCLUDE

QZ_API int qz_id_set_init(qz_id_set *set, size_t struct_size, const uint64_t *ids, size_t count, uint32_t flags)
{
    QZ__API_ENTER();
    if (!set) return qz__err(QZ_EINVAL, "set is NULL");
    if (struct_size < sizeof *set)
        return qz__err(QZ_EVERSION, "struct_size %zu is smaller than qz_id_set (%zu)", struct_size, sizeof *set);
    if (flags & ~QZ__ID_SET_FLAGS) return qz__err(QZ_EINVAL, "unknown id set flags 0x%x", flags & ~QZ__ID_SET_FLAGS);
    if (count && !ids) return qz__err(QZ_EINVAL, "ids is NULL but count is %zu", count);
    for (size_t i = 1; i < count; i++)
        if (ids[i] < ids[i - 1])
            return qz__err(QZ_EINVAL, "ids are not ascending: ids[%zu] = %llu follows %llu", i,
                           (unsigned long long)ids[i], (unsigned long long)ids[i - 1]);
    *set = (qz_id_set){.struct_size = sizeof *set, .flags = flags, .ids = count ? ids : NULL, .count = count};
    return QZ_OK;
}

QZ_API int qz_filter_ids(uint64_t id, void *user)
{
    const qz_id_set *s = user;
    size_t lo = 0, hi = s->count; /* first index with ids[i] >= id */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ids[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    int in = lo < s->count && s->ids[lo] == id;
    return (s->flags & QZ_ID_SET_EXCLUDE) ? !in : in;
}
