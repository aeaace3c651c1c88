/* vector.c - the checks every vector argument goes through. */
#include <math.h>

#include "api/db_internal.h"
#include "util/error.h"

int qz__check_vector(const qz_db *db, const float *v, size_t dims, const char *what)
{
    if (!v) return qz__err(QZ_EINVAL, "%s is NULL", what);
    if (dims != db->opts.dimensions)
        return qz__err(QZ_EDIM, "%s has %zu dimensions, database expects %u", what, dims, db->opts.dimensions);
    double norm = 0;
    for (size_t i = 0; i < dims; i++) {
        if (!isfinite(v[i]))
            return qz__err(QZ_ENONFINITE, "%s component %zu is %s", what, i, isnan(v[i]) ? "NaN" : "infinite");
        norm += (double)v[i] * v[i];
    }
    if (db->opts.metric == QZ_METRIC_COSINE && !(norm > 0))
        return qz__err(QZ_EZEROVEC, "%s is all zeros, which has no direction under the cosine metric", what);
    if (db->opts.metric == QZ_METRIC_COSINE && !isfinite(norm))
        return qz__err(QZ_ENONFINITE, "%s has a norm too large to represent", what);
    return QZ_OK;
}
