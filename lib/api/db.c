/*
 * db.c - open, close, statistics, tunables, flush, compaction, checks.
 */
#include <string.h>

#include "api/api.h"
#include "quartz/sys/storage.h"

QZ_API int qz_db_open(const char *path, const qz_open_options *opts, qz_db **out)
{
    QZ__API_ENTER();
    if (!out) return qz__err(QZ_EINVAL, "out is NULL");
    *out = NULL;
    if (!path && !opts) return qz__err(QZ_EINVAL, "opts is NULL (required for an in-memory database)");
    qz__config c;
    QZ_CHECK(qz__options_to_config(opts, &c));
    return path ? qz__engine_open_dir(path, &c, out) : qz__engine_open_memory(&c, out);
}

QZ_API int qz_db_open_storage(qz_storage *s, const qz_open_options *opts, qz_db **out)
{
    QZ__API_ENTER();
    if (!out) return qz__err(QZ_EINVAL, "out is NULL");
    *out = NULL;
    if (!s) return qz__err(QZ_EINVAL, "storage is NULL");
    qz__config c;
    QZ_CHECK(qz__options_to_config(opts, &c));
    return qz__engine_open_storage(s, 0, NULL, &c, out);
}

QZ_API int qz_db_close(qz_db *db)
{
    QZ__API_ENTER();
    if (!db) return QZ_OK;
    return qz__engine_close(db);
}

QZ_API int qz_db_stats(qz_db *db, qz_stats *out)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 0));
    if (!out) return qz__err(QZ_EINVAL, "out is NULL");
    if (out->struct_size < offsetof(qz_stats, count))
        return qz__err(QZ_EVERSION, "qz_stats.struct_size %u is too small: set it to sizeof(qz_stats)",
                       out->struct_size);
    qz__engine_stats es;
    qz__engine_stats_get(db, &es);
    qz_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    s.dimensions = es.dim;
    s.metric = es.metric;
    s.dtype = es.dtype;
    s.M = es.M;
    s.ef_construction = es.ef_construction;
    s.ef_search = es.ef_search;
    s.max_level = es.max_level;
    s.count = es.count;
    s.deleted = es.deleted;
    s.capacity = es.capacity;
    s.memory_bytes = es.memory_bytes;
    strncpy(s.simd, es.simd, sizeof s.simd - 1);
    s.open_reinserted = es.open_reinserted;
    size_t n = out->struct_size < sizeof s ? out->struct_size : sizeof s;
    uint32_t keep = out->struct_size;
    memcpy(out, &s, n);
    out->struct_size = keep;
    return QZ_OK;
}

QZ_API int qz_db_set_param(qz_db *db, int key, int64_t value)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 0));
    switch (key) {
    case QZ_PARAM_EF_SEARCH:
        if (value < 1 || value > QZ_MAX_EF)
            return qz__err(QZ_ERANGE, "ef_search %lld is outside 1..%u", (long long)value, QZ_MAX_EF);
        break;
    case QZ_PARAM_CHECKPOINT_WRITES:
        if (value < 1 || value > INT32_MAX)
            return qz__err(QZ_ERANGE, "checkpoint_writes %lld is outside 1..%d", (long long)value, INT32_MAX);
        break;
    case QZ_PARAM_CHECKPOINT_MS:
        if (value < 1 || value > 86400000)
            return qz__err(QZ_ERANGE, "checkpoint_ms %lld is outside 1..86400000", (long long)value);
        break;
    default: return qz__err(QZ_EINVAL, "unknown parameter key %d", key);
    }
    qz__engine_set_param(db, key, (uint32_t)value);
    return QZ_OK;
}

QZ_API int qz_db_flush(qz_db *db)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 0));
    return qz__engine_flush(db);
}

QZ_API int qz_db_compact(qz_db *db)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 1));
    return qz__engine_compact(db);
}

QZ_API int qz_db_check(qz_db *db)
{
    QZ__API_ENTER();
    QZ_CHECK(qz__check_db(db, 0));
    return qz__engine_check(db);
}
