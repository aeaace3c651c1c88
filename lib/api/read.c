/* read.c - get, contains, search: argument checks, then the engine. */
#include "api/api.h"

QZ_API int qz_db_get(qz_db *db, uint64_t id, float *vector, size_t vector_cap, void *meta, size_t meta_cap,
                     size_t *meta_len)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 0));
    if (vector && vector_cap < db->cfg.dim)
        return qz__err(QZ_ETOOSMALL, "vector buffer holds %zu floats, the database has %u dimensions", vector_cap,
                       db->cfg.dim);
    return qz__engine_get(db, id, vector, meta, meta_cap, meta_len);
}

QZ_API int qz_db_contains(qz_db *db, uint64_t id)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 0));
    return qz__engine_contains(db, id);
}

QZ_API int qz_db_search(qz_db *db, const float *query, size_t dims, size_t k, const qz_search_params *params,
                        uint64_t *ids, float *distances, size_t *found)
{
    QZ__API_ENTER();
    if (found) *found = 0;
    QZ_CHECK(qz__check_db(db, 0));
    if (!ids) return qz__err(QZ_EINVAL, "ids is NULL");
    if (!found) return qz__err(QZ_EINVAL, "found is NULL");
    if (k == 0 || k > QZ_MAX_K) return qz__err(QZ_ERANGE, "k is %zu, it must be 1..%u", k, QZ_MAX_K);
    qz_search_params sp;
    QZ_CHECK(qz__search_params_read(params, &sp));
    QZ_CHECK(qz__check_vector(db, query, dims, "query"));
    return qz__engine_search(db, query, k, sp.ef, sp.oversample, sp.filter, sp.filter_user, ids, distances, found);
}
