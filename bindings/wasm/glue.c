/*
 * glue.c - the few entry points the JS wrapper (quartz.mjs) needs beyond
 * quartz.h: opening over a host store with flat arguments (no struct layout
 * to mirror in JS), closing database and backend together, search with an
 * ef, and stats as a flat array. Everything else is quartz.h, exported as is.
 */
#include <emscripten.h>
#include <stdlib.h>
#include <string.h>

#include "quartz.h"
#include "quartz/sys/storage.h"
#include "storage/storage.h"

typedef struct qzw {
    qz_db *db;
    qz_storage *st;
} qzw;

EMSCRIPTEN_KEEPALIVE int qzw_open(int host, uint32_t dims, uint32_t metric, uint32_t M, uint32_t efc, uint32_t efs,
                                  uint32_t flags, uint32_t initial_capacity, uint32_t dtype, qzw **out);
EMSCRIPTEN_KEEPALIVE int qzw_close(qzw *w);
EMSCRIPTEN_KEEPALIVE qz_db *qzw_db(qzw *w);
EMSCRIPTEN_KEEPALIVE int qzw_search(qzw *w, const float *q, size_t dims, size_t k, uint32_t ef, uint64_t *ids,
                                    float *dist, size_t *found);
EMSCRIPTEN_KEEPALIVE int qzw_search_ids(qzw *w, const float *q, size_t dims, size_t k, uint32_t ef,
                                        const uint64_t *allow, size_t nallow, uint32_t set_flags, uint64_t *ids,
                                        float *dist, size_t *found);
EMSCRIPTEN_KEEPALIVE int qzw_stats(qzw *w, double *out);

/* initial_capacity 0: the engine's default (1024 vectors).
 * host 0: in memory. Otherwise the JS store registered under `host`, with
 * SYNC durability (a write returns once the store committed it) and one
 * thread (this build has none to start). */
int qzw_open(int host, uint32_t dims, uint32_t metric, uint32_t M, uint32_t efc, uint32_t efs, uint32_t flags,
             uint32_t initial_capacity, uint32_t dtype, qzw **out)
{
    *out = NULL;
    qzw *w = calloc(1, sizeof *w);
    if (!w) return QZ_ENOMEM;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.flags = flags;
    o.dimensions = dims;
    o.metric = metric;
    o.M = M;
    o.ef_construction = efc;
    o.ef_search = efs;
    o.initial_capacity = initial_capacity;
    o.dtype = dtype;
    o.durability = QZ_DURABILITY_SYNC;
    o.threads = 1;
    int rc;
    if (host == 0) {
        rc = qz_db_open(NULL, &o, &w->db);
    } else {
        rc = qz__storage_host_open(host, &w->st);
        if (rc == QZ_OK) rc = qz_db_open_storage(w->st, &o, &w->db);
        if (rc < 0 && w->st) w->st->close(w->st);
    }
    if (rc < 0) {
        free(w);
        return rc;
    }
    *out = w;
    return QZ_OK;
}

int qzw_close(qzw *w)
{
    if (!w) return QZ_OK;
    int rc = qz_db_close(w->db);
    if (w->st) w->st->close(w->st);
    free(w);
    return rc;
}

qz_db *qzw_db(qzw *w) { return w->db; }

int qzw_search(qzw *w, const float *q, size_t dims, size_t k, uint32_t ef, uint64_t *ids, float *dist, size_t *found)
{
    qz_search_params p = QZ_SEARCH_PARAMS_INIT;
    p.ef = ef;
    return qz_db_search(w->db, q, dims, k, &p, ids, dist, found);
}

/* Search restricted to (or, with QZ_ID_SET_EXCLUDE, away from) the sorted
 * ids in allow[0..nallow): the C-side id-set filter, so no JS runs per
 * candidate. */
int qzw_search_ids(qzw *w, const float *q, size_t dims, size_t k, uint32_t ef, const uint64_t *allow, size_t nallow,
                   uint32_t set_flags, uint64_t *ids, float *dist, size_t *found)
{
    qz_id_set set;
    int rc = qz_id_set_init(&set, sizeof set, allow, nallow, set_flags);
    if (rc < 0) return rc;
    qz_search_params p = QZ_SEARCH_PARAMS_INIT;
    p.ef = ef;
    p.filter = qz_filter_ids;
    p.filter_user = &set;
    return qz_db_search(w->db, q, dims, k, &p, ids, dist, found);
}

/* dims, metric, M, efc, efs, count, deleted, capacity, memory_bytes, open_reinserted, dtype */
int qzw_stats(qzw *w, double *out)
{
    qz_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    int rc = qz_db_stats(w->db, &s);
    if (rc < 0) return rc;
    out[0] = s.dimensions;
    out[1] = s.metric;
    out[2] = s.M;
    out[3] = s.ef_construction;
    out[4] = s.ef_search;
    out[5] = (double)s.count;
    out[6] = (double)s.deleted;
    out[7] = (double)s.capacity;
    out[8] = (double)s.memory_bytes;
    out[9] = (double)s.open_reinserted;
    out[10] = s.dtype;
    return QZ_OK;
}
