/*
 * metrics.c - Prometheus metrics. Each worker thread counts into its own
 * block (relaxed atomics, no sharing on the hot path); /metrics sums the
 * blocks and adds gauges read from the indexes at scrape time.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "quartzd.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const qd_route_names[R_COUNT] = {
    "/health", "/metrics", "/api/put", "/api/get/{key}", "/api/delete/{key}", "/api/indexes",
    "/api/indexes/{name}", "vector/insert", "vector/upsert", "vector/batch-insert", "vector/search",
    "vector/get/{id}", "vector/get", "vector/delete/{id}", "vector/delete", "vector/stats", "unknown",
};

static const int statuses[] = {200, 201, 400, 401, 403, 404, 405, 409, 413, 422, 500, 503};
#define NSTATUS (sizeof statuses / sizeof statuses[0])
static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
#define NBUCKET (sizeof bounds / sizeof bounds[0])

typedef struct block {
    atomic_uint_fast64_t req[R_COUNT][NSTATUS + 1]; /* last: any other status */
    atomic_uint_fast64_t bucket[R_COUNT][NBUCKET + 1];
    atomic_uint_fast64_t sum_us[R_COUNT];
    struct block *next;
} block;

static pthread_mutex_t reg = PTHREAD_MUTEX_INITIALIZER;
static block *blocks;

void *qd_metrics_thread_new(void)
{
    block *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    pthread_mutex_lock(&reg);
    b->next = blocks;
    blocks = b;
    pthread_mutex_unlock(&reg);
    return b;
}

void qd_metrics_observe(void *m, int route, int status, double seconds)
{
    block *b = m;
    if (!b || route < 0 || route >= R_COUNT) return;
    size_t s = NSTATUS;
    for (size_t i = 0; i < NSTATUS; i++)
        if (statuses[i] == status) s = i;
    atomic_fetch_add_explicit(&b->req[route][s], 1, memory_order_relaxed);
    size_t k = 0;
    while (k < NBUCKET && seconds > bounds[k]) k++;
    atomic_fetch_add_explicit(&b->bucket[route][k], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->sum_us[route], (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

static uint64_t sum_req(int r, size_t s)
{
    uint64_t v = 0;
    for (block *b = blocks; b; b = b->next) v += atomic_load_explicit(&b->req[r][s], memory_order_relaxed);
    return v;
}

static void line_u64(jbuf *b, const char *name, const char *labels, uint64_t v)
{
    jb_lit(b, name);
    jb_lit(b, labels);
    jb_char(b, ' ');
    jb_u64(b, v);
    jb_char(b, '\n');
}

void qd_metrics_render(jbuf *b)
{
    char lab[256];
    pthread_mutex_lock(&reg);
    jb_lit(b, "# HELP quartzd_requests_total HTTP requests by route and status.\n"
              "# TYPE quartzd_requests_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        for (size_t s = 0; s <= NSTATUS; s++) {
            uint64_t v = sum_req(r, s);
            if (!v) continue;
            if (s < NSTATUS)
                snprintf(lab, sizeof lab, "{route=\"%s\",status=\"%d\"}", qd_route_names[r], statuses[s]);
            else
                snprintf(lab, sizeof lab, "{route=\"%s\",status=\"other\"}", qd_route_names[r]);
            line_u64(b, "quartzd_requests_total", lab, v);
        }
    jb_lit(b, "# HELP quartzd_request_duration_seconds Time from a complete request to its response.\n"
              "# TYPE quartzd_request_duration_seconds histogram\n");
    for (int r = 0; r < R_COUNT; r++) {
        uint64_t cum = 0, sum_us = 0, per[NBUCKET + 1] = {0};
        for (block *bl = blocks; bl; bl = bl->next) {
            for (size_t k = 0; k <= NBUCKET; k++)
                per[k] += atomic_load_explicit(&bl->bucket[r][k], memory_order_relaxed);
            sum_us += atomic_load_explicit(&bl->sum_us[r], memory_order_relaxed);
        }
        uint64_t total = 0;
        for (size_t k = 0; k <= NBUCKET; k++) total += per[k];
        if (!total) continue;
        for (size_t k = 0; k <= NBUCKET; k++) {
            cum += per[k];
            if (k < NBUCKET)
                snprintf(lab, sizeof lab, "{route=\"%s\",le=\"%g\"}", qd_route_names[r], bounds[k]);
            else
                snprintf(lab, sizeof lab, "{route=\"%s\",le=\"+Inf\"}", qd_route_names[r]);
            line_u64(b, "quartzd_request_duration_seconds_bucket", lab, cum);
        }
        snprintf(lab, sizeof lab, "quartzd_request_duration_seconds_sum{route=\"%s\"} %.6f\n", qd_route_names[r],
                 (double)sum_us / 1e6);
        jb_lit(b, lab);
        snprintf(lab, sizeof lab, "{route=\"%s\"}", qd_route_names[r]);
        line_u64(b, "quartzd_request_duration_seconds_count", lab, total);
    }
    pthread_mutex_unlock(&reg);

    jb_lit(b, "# HELP quartzd_vectors Live vectors per index.\n# TYPE quartzd_vectors gauge\n"
              "# HELP quartzd_deleted_vectors Deleted vectors not yet unlinked, per index.\n"
              "# TYPE quartzd_deleted_vectors gauge\n"
              "# HELP quartzd_index_memory_bytes Heap memory held by each index.\n"
              "# TYPE quartzd_index_memory_bytes gauge\n"
              "# HELP quartzd_index_disk_bytes Bytes on disk of each index directory.\n"
              "# TYPE quartzd_index_disk_bytes gauge\n");
    char(*names)[65];
    size_t n = qd_index_names(&names);
    for (size_t i = 0; i < n; i++) {
        qd_index *ix = qd_index_acquire(names[i]);
        if (!ix) continue;
        qz_stats st = {.struct_size = sizeof st};
        qz_db_stats(ix->db, &st);
        snprintf(lab, sizeof lab, "{index=\"%s\"}", ix->name);
        line_u64(b, "quartzd_vectors", lab, st.count);
        line_u64(b, "quartzd_deleted_vectors", lab, st.deleted);
        line_u64(b, "quartzd_index_memory_bytes", lab, st.memory_bytes);
        line_u64(b, "quartzd_index_disk_bytes", lab, qd_dir_bytes(ix->path));
        qd_index_release(ix);
    }
    free(names);
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    jb_lit(b, "# HELP quartzd_resident_memory_bytes Resident memory of the process.\n"
              "# TYPE quartzd_resident_memory_bytes gauge\n");
    line_u64(b, "quartzd_resident_memory_bytes", "", (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE));
    jb_lit(b, "# HELP quartzd_indexes Number of indexes.\n# TYPE quartzd_indexes gauge\n");
    line_u64(b, "quartzd_indexes", "", n);
}
