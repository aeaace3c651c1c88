/*
 * options.c - size-keyed option structs: read what the caller compiled,
 * default the rest, refuse what we do not know (a non-zero unknown tail).
 */
#include <stddef.h>
#include <string.h>

#include "api/api.h"
#include "vector/codec.h"
#include "vector/metric.h"
#include "wal/journal.h"

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

/* The public enums and the core's names agree on every value (the options
 * record stores them). */
#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(QZ_METRIC_COSINE, QZ__METRIC_COSINE) && SAME(QZ_METRIC_L2, QZ__METRIC_L2) &&
                   SAME(QZ_METRIC_IP, QZ__METRIC_IP) && SAME(QZ_METRIC_HAMMING, QZ__METRIC_HAMMING),
               "metric values");
_Static_assert(SAME(QZ_DTYPE_F32, QZ__DTYPE_F32) && SAME(QZ_DTYPE_F16, QZ__DTYPE_F16) &&
                   SAME(QZ_DTYPE_INT8, QZ__DTYPE_INT8) && SAME(QZ_DTYPE_BINARY, QZ__DTYPE_BINARY),
               "dtype values");
_Static_assert(SAME(QZ_DURABILITY_SYNC, QZ__DUR_SYNC) && SAME(QZ_DURABILITY_BATCHED, QZ__DUR_BATCHED) &&
                   SAME(QZ_DURABILITY_NONE, QZ__DUR_NONE),
               "durability values");

int qz__options_to_config(const qz_open_options *user, qz__config *c)
{
    memset(c, 0, sizeof *c);
    if (!user) return QZ_OK; /* an existing database, everything stored */
    qz_open_options o;
    QZ_CHECK(read_sized(user, user->struct_size, &o, sizeof o, offsetof(qz_open_options, dimensions),
                        "qz_open_options"));
    const uint32_t known = QZ_OPEN_READONLY | QZ_OPEN_EXISTING | QZ_OPEN_ORIGINALS_IN_STORAGE;
    if (o.flags & ~known) return qz__err(QZ_EINVAL, "qz_open_options.flags has unknown bits 0x%x", o.flags & ~known);
    if (o.reserved0) return qz__err(QZ_EINVAL, "qz_open_options.reserved0 must be 0");
    if (o.metric > QZ_METRIC_HAMMING) return qz__err(QZ_EINVAL, "unknown metric %u", o.metric);
    if (o.durability > QZ_DURABILITY_NONE) return qz__err(QZ_EINVAL, "unknown durability mode %u", o.durability);
    c->flags = ((o.flags & QZ_OPEN_READONLY) ? QZ__CFG_READONLY : 0) | ((o.flags & QZ_OPEN_EXISTING) ? QZ__CFG_EXISTING : 0) |
               ((o.flags & QZ_OPEN_ORIGINALS_IN_STORAGE) ? QZ__CFG_ORIG_STORAGE : 0);
    c->dim = o.dimensions;
    c->metric = o.metric;
    c->dtype = o.dtype;
    c->M = o.M;
    c->ef_construction = o.ef_construction;
    c->ef_search = o.ef_search;
    c->capacity = o.initial_capacity;
    c->durability = o.durability;
    c->window_ms = o.batch_window_ms;
    c->threads = o.threads;
    c->seed = o.seed;
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
    if (out->reserved0) return qz__err(QZ_EINVAL, "qz_search_params.reserved0 must be 0");
    if (out->oversample > QZ_MAX_OVERSAMPLE)
        return qz__err(QZ_ERANGE, "oversample %u is above %u", out->oversample, QZ_MAX_OVERSAMPLE);
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
