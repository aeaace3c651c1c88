/* checks.c - the checks every argument of the public API goes through. */
#include <math.h>
#include <string.h>

#include "api/api.h"
#include "vector/metric.h"

int qz__check_db(const qz_db *db, int write)
{
    if (!db) return qz__err(QZ_EINVAL, "db is NULL");
    if (write && db->readonly) return qz__err(QZ_EREADONLY, "database was opened read-only");
    return QZ_OK;
}

int qz__check_vector(const qz_db *db, const float *v, size_t dims, const char *what)
{
    if (!v) return qz__err(QZ_EINVAL, "%s is NULL", what);
    if (dims != db->cfg.dim)
        return qz__err(QZ_EDIM, "%s has %zu dimensions, database expects %u", what, dims, db->cfg.dim);
    /* One pass over the bits (exponent all ones: NaN or infinite; any bit
     * but the sign: non-zero), without branches, so it vectorizes; a
     * second pass names the first bad component. Every query goes through
     * here: the branching loop was 3% of an MNIST search at ef 15. */
    uint32_t bad = 0, nonzero = 0;
    for (size_t i = 0; i < dims; i++) {
        uint32_t b;
        memcpy(&b, &v[i], sizeof b);
        bad |= (uint32_t)((b & 0x7f800000u) == 0x7f800000u);
        nonzero |= b & 0x7fffffffu;
    }
    if (bad)
        for (size_t i = 0; i < dims; i++)
            if (!isfinite(v[i]))
                return qz__err(QZ_ENONFINITE, "%s component %zu is %s", what, i, isnan(v[i]) ? "NaN" : "infinite");
    /* Any finite non-zero vector has a direction: the index normalises it
     * safely (scaled first), however tiny or huge its components are. */
    if (db->cfg.metric == QZ__METRIC_COSINE && !nonzero)
        return qz__err(QZ_EZEROVEC, "%s is all zeros, which has no direction under the cosine metric", what);
    return QZ_OK;
}

int qz__check_key(const void *key, size_t klen)
{
    if (!key) return qz__err(QZ_EINVAL, "key is NULL");
    if (klen == 0 || klen > QZ_MAX_KEY)
        return qz__err(QZ_ERANGE, "key is %zu bytes, it must be 1..%u", klen, QZ_MAX_KEY);
    return QZ_OK;
}

int qz__check_bytes(const void *p, size_t len, const char *what)
{
    if (len > QZ_MAX_METADATA) return qz__err(QZ_ERANGE, "%s is %zu bytes, the limit is %u", what, len, QZ_MAX_METADATA);
    if (len && !p) return qz__err(QZ_EINVAL, "%s is NULL but its length is %zu", what, len);
    return QZ_OK;
}
