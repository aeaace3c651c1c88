/*
 * options.c - size-keyed option structs: read what the caller compiled,
 * default the rest, refuse what we do not know (a non-zero unknown tail).
 */
#include <stddef.h>
#include <string.h>

#include "api/db_internal.h"
#include "util/error.h"
#include "util/sync.h"

/* Copy a caller struct of `size` bytes into `ours` (zeroed, `ours_size` long). */
static int read_sized(const void *user, size_t size, void *ours, size_t ours_size, size_t min_size,
                      const char *name)
{
    if (size == 0)
        return qz__err(QZ_EVERSION, "%s.struct_size is 0: initialise it with its _INIT macro or _init()", name);
    if (size < min_size)
        return qz__err(QZ_EVERSION, "%s.struct_size %zu is smaller than any released version (%zu)", name, size,
                       min_size);
    memset(ours, 0, ours_size);
    memcpy(ours, user, size < ours_size ? size : ours_size);
    for (size_t i = ours_size; i < size; i++)
        if (((const unsigned char *)user)[i])
            return qz__err(QZ_EVERSION,
                           "%s has a non-zero field at byte %zu, beyond the %zu bytes this library knows "
                           "(built against a newer quartz.h?)",
                           name, i, ours_size);
    return QZ_OK;
}

int qz__options_read(const qz_open_options *user, qz_open_options *out)
{
    QZ_CHECK(read_sized(user, user->struct_size, out, sizeof *out, offsetof(qz_open_options, dimensions),
                        "qz_open_options"));
    out->struct_size = sizeof *out;
    const uint32_t known = QZ_OPEN_READONLY | QZ_OPEN_EXISTING;
    if (out->flags & ~known)
        return qz__err(QZ_EINVAL, "qz_open_options.flags has unknown bits 0x%x", out->flags & ~known);
    if (out->reserved0) return qz__err(QZ_EINVAL, "qz_open_options.reserved0 must be 0");
    return QZ_OK;
}

int qz__options_resolve(qz_open_options *o, int existing)
{
    if (o->dimensions == 0 && !existing)
        return qz__err(QZ_EINVAL, "qz_open_options.dimensions is required for a new database");
    if (o->dimensions > QZ_MAX_DIMENSIONS)
        return qz__err(QZ_ERANGE, "dimensions %u is above the limit of %u", o->dimensions, QZ_MAX_DIMENSIONS);
    if (o->metric == QZ_METRIC_DEFAULT) o->metric = QZ_METRIC_COSINE;
    if (o->metric > QZ_METRIC_HAMMING) return qz__err(QZ_EINVAL, "unknown metric %u", o->metric);
    if (o->dtype > QZ_DTYPE_F32)
        return qz__err(QZ_EUNSUPPORTED, "vector type %u is not supported by this version", o->dtype);
    if (o->dtype == QZ_DTYPE_F32 && o->metric == QZ_METRIC_HAMMING)
        return qz__err(QZ_EUNSUPPORTED, "the Hamming metric stores bits; leave dtype at QZ_DTYPE_DEFAULT");
    if (o->M == 0) o->M = 16;
    if (o->M < 2 || o->M > QZ_MAX_M) return qz__err(QZ_ERANGE, "M %u is outside 2..%u", o->M, QZ_MAX_M);
    if (o->ef_construction == 0) o->ef_construction = 200;
    if (o->ef_construction > QZ_MAX_EF)
        return qz__err(QZ_ERANGE, "ef_construction %u is above %u", o->ef_construction, QZ_MAX_EF);
    if (o->ef_search == 0) o->ef_search = 64;
    if (o->ef_search > QZ_MAX_EF) return qz__err(QZ_ERANGE, "ef_search %u is above %u", o->ef_search, QZ_MAX_EF);
    if (o->initial_capacity == 0) o->initial_capacity = 1024;
    if (o->initial_capacity > QZ__MAX_SLOTS)
        return qz__err(QZ_ERANGE, "initial_capacity %llu is above %u", (unsigned long long)o->initial_capacity,
                       QZ__MAX_SLOTS);
    if (o->durability == QZ_DURABILITY_DEFAULT) o->durability = QZ_DURABILITY_BATCHED;
    if (o->durability > QZ_DURABILITY_NONE) return qz__err(QZ_EINVAL, "unknown durability mode %u", o->durability);
    if (o->batch_window_ms == 0) o->batch_window_ms = 100;
    if (o->batch_window_ms > 3600000u)
        return qz__err(QZ_ERANGE, "batch_window_ms %u is above one hour", o->batch_window_ms);
    if (o->threads == 0) o->threads = qz__cpu_count();
    if (o->threads > 1024) return qz__err(QZ_ERANGE, "threads %u is above 1024", o->threads);
    if (o->seed == 0) o->seed = 0x5eedULL;
    return QZ_OK;
}

int qz__search_params_read(const qz_search_params *user, qz_search_params *out)
{
    if (!user) {
        memset(out, 0, sizeof *out);
        out->struct_size = sizeof *out;
        return QZ_OK;
    }
    QZ_CHECK(read_sized(user, user->struct_size, out, sizeof *out, offsetof(qz_search_params, filter),
                        "qz_search_params"));
    out->struct_size = sizeof *out;
    if (out->ef > QZ_MAX_EF) return qz__err(QZ_ERANGE, "ef %u is above %u", out->ef, QZ_MAX_EF);
    return QZ_OK;
}

QZ_API int qz_open_options_init(qz_open_options *opts, size_t size)
{
    qz__err_clear();
    if (!opts) return qz__err(QZ_EINVAL, "opts is NULL");
    if (size < offsetof(qz_open_options, dimensions))
        return qz__err(QZ_EVERSION, "size %zu is too small for qz_open_options", size);
    memset(opts, 0, size);
    opts->struct_size = (uint32_t)(size < sizeof *opts ? size : sizeof *opts);
    return QZ_OK;
}

QZ_API int qz_search_params_init(qz_search_params *params, size_t size)
{
    qz__err_clear();
    if (!params) return qz__err(QZ_EINVAL, "params is NULL");
    if (size < offsetof(qz_search_params, filter))
        return qz__err(QZ_EVERSION, "size %zu is too small for qz_search_params", size);
    memset(params, 0, size);
    params->struct_size = (uint32_t)(size < sizeof *params ? size : sizeof *params);
    return QZ_OK;
}
