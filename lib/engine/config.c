/*
 * config.c - the one table of defaults and limits of a database's options.
 *
 *   option            default              range
 *   metric            cosine               cosine, l2, ip, hamming
 *   dtype             0 (f32; bits under hamming)  0, f32, f16, int8, binary (none but 0 with hamming)
 *   M                 16                   2..QZ_MAX_M
 *   ef_construction   200                  1..QZ_MAX_EF
 *   ef_search         64                   1..QZ_MAX_EF
 *   capacity          1024                 1..QZ__MAX_SLOTS
 *   durability        BATCHED              SYNC, BATCHED, NONE
 *   window_ms         100                  1..3,600,000
 *   threads           online cores         1..1024
 *   seed              0x5eed               any
 *   ckpt_writes       10,000               1..2^31
 *   ckpt_ms           30,000               1..86,400,000
 *
 * include/quartz.h repeats the user-visible defaults in its comments; this
 * table is what the code uses.
 */
#include "engine/engine.h"
#include "util/error.h"
#include "util/sync.h"
#include "vector/codec.h"
#include "vector/metric.h"
#include "wal/journal.h"

static const qz__config defaults = {
    .metric = QZ__METRIC_COSINE,
    .dtype = 0, /* 0 stays 0: f32, or bits under Hamming (what the options record stores) */
    .M = 16,
    .ef_construction = 200,
    .ef_search = 64,
    .capacity = 1024,
    .durability = QZ__DUR_BATCHED,
    .window_ms = 100,
    .threads = 0, /* resolved from the CPU count */
    .seed = 0x5eedULL,
    .ckpt_writes = 10000,
    .ckpt_ms = 30000,
};

#define DEF(field)                                                                                 \
    do {                                                                                           \
        if (c->field == 0) c->field = defaults.field;                                              \
    } while (0)

int qz__config_resolve(qz__config *c, int existing)
{
    if (c->dim == 0 && !existing) return qz__err(QZ_EINVAL, "qz_open_options.dimensions is required for a new database");
    if (c->dim > QZ_MAX_DIMENSIONS)
        return qz__err(QZ_ERANGE, "dimensions %u is above the limit of %u", c->dim, QZ_MAX_DIMENSIONS);
    DEF(metric);
    if (c->metric > QZ__METRIC_HAMMING) return qz__err(QZ_EINVAL, "unknown metric %u", c->metric);
    if (c->dtype > QZ__DTYPE_BINARY)
        return qz__err(QZ_EUNSUPPORTED, "vector type %u is not supported by this version", c->dtype);
    if (c->dtype != 0 && c->metric == QZ__METRIC_HAMMING)
        return qz__err(QZ_EUNSUPPORTED, "the Hamming metric stores bits; leave dtype at QZ_DTYPE_DEFAULT");
    DEF(M);
    if (c->M < 2 || c->M > QZ_MAX_M) return qz__err(QZ_ERANGE, "M %u is outside 2..%u", c->M, QZ_MAX_M);
    DEF(ef_construction);
    if (c->ef_construction > QZ_MAX_EF)
        return qz__err(QZ_ERANGE, "ef_construction %u is above %u", c->ef_construction, QZ_MAX_EF);
    DEF(ef_search);
    if (c->ef_search > QZ_MAX_EF) return qz__err(QZ_ERANGE, "ef_search %u is above %u", c->ef_search, QZ_MAX_EF);
    DEF(capacity);
    if (c->capacity > QZ__MAX_SLOTS)
        return qz__err(QZ_ERANGE, "initial_capacity %llu is above %u", (unsigned long long)c->capacity, QZ__MAX_SLOTS);
    DEF(durability);
    if (c->durability > QZ__DUR_NONE) return qz__err(QZ_EINVAL, "unknown durability mode %u", c->durability);
    DEF(window_ms);
    if (c->window_ms > 3600000u) return qz__err(QZ_ERANGE, "batch_window_ms %u is above one hour", c->window_ms);
    if (c->threads == 0) c->threads = qz__cpu_count();
    if (c->threads > 1024) return qz__err(QZ_ERANGE, "threads %u is above 1024", c->threads);
    DEF(seed);
    DEF(ckpt_writes);
    DEF(ckpt_ms);
    return QZ_OK;
}
