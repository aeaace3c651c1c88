/*
 * search_batch.c - many searches in one call, spread over the handle's
 * threads with the same work-sharing loop as batch inserts
 * (util/parallel.h). Each row is one qz__engine_search(), so a row's
 * answer is exactly the single search's; the only work added here is the
 * padding of short rows and carrying a worker's error message back to the
 * calling thread (messages are thread-local).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>

#include "engine/engine.h"
#include "util/error.h"
#include "util/parallel.h"

/* Below this many queries the batch runs on the calling thread only:
 * starting threads costs more than a few searches. */
#define QZ__SEARCH_BATCH_MIN_PARALLEL 8

typedef struct sb_job {
    qz_db *db;
    const float *queries;
    size_t dims, k;
    uint32_t ef, oversample;
    qz_filter_fn filter;
    void *fuser;
    uint64_t *ids;
    float *distances;
    size_t *counts;
    pthread_mutex_t lock; /* guards msg */
    char msg[256];
} sb_job;

static void pad_row(sb_job *b, size_t i)
{
    uint64_t *ids = b->ids + i * b->k;
    float *d = b->distances ? b->distances + i * b->k : NULL;
    for (size_t j = b->counts[i]; j < b->k; j++) {
        ids[j] = UINT64_MAX;
        if (d) d[j] = INFINITY;
    }
}

static int sb_row(size_t i, void *u)
{
    sb_job *b = u;
    size_t n = 0;
    int rc = qz__engine_search(b->db, b->queries + i * b->dims, b->k, b->ef, b->oversample, b->filter, b->fuser,
                               b->ids + i * b->k,
                               b->distances ? b->distances + i * b->k : NULL, &n);
    b->counts[i] = rc < 0 ? 0 : n;
    pad_row(b, i);
    if (rc < 0) {
        pthread_mutex_lock(&b->lock);
        if (!b->msg[0]) snprintf(b->msg, sizeof b->msg, "query row %zu: %s", i, qz__err_msg());
        pthread_mutex_unlock(&b->lock);
    }
    return rc;
}

int qz__engine_search_batch(qz_db *db, const float *queries, size_t nq, size_t dims, size_t k, uint32_t ef,
                            uint32_t oversample, qz_filter_fn filter, void *fuser, uint64_t *ids, float *distances,
                            size_t *counts)
{
    sb_job b = {.db = db, .queries = queries, .dims = dims, .k = k, .ef = ef, .oversample = oversample,
                .filter = filter, .fuser = fuser,
                .ids = ids, .distances = distances, .counts = counts};
    /* Rows a failure keeps from running still read as empty. */
    for (size_t i = 0; i < nq; i++) counts[i] = 0;
    pthread_mutex_init(&b.lock, NULL);
    unsigned nt = nq < QZ__SEARCH_BATCH_MIN_PARALLEL ? 1 : db->cfg.threads;
    int rc = qz__parallel_for(nq, nt, sb_row, &b);
    pthread_mutex_destroy(&b.lock);
    if (rc < 0) {
        for (size_t i = 0; i < nq; i++) pad_row(&b, i);
        return qz__err(rc, "%s", b.msg);
    }
    return QZ_OK;
}
