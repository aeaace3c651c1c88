/*
 * bench_search_threads.c - in-process search throughput of an existing
 * database directory: T threads, each calling qz_db_search() (one query at a
 * time, as an HTTP client does) over the rows of a query file, for a fixed
 * time. It is the in-process side of bench/bench_rest.sh's HTTP/in-process
 * ratio: the same directory quartzd served, the same queries, k and ef.
 *
 * Usage: bench_search_threads DIR QUERY.fvecs [--threads T] [--seconds S]
 *                             [--k K] [--ef EF]
 * Prints one line: threads=T k=K ef=EF queries=N seconds=S qps=Q p50_us=A p99_us=B
 */
#include <quartz.h>

#include "datasets.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SAMPLES (1u << 20)

typedef struct worker {
    qz_db *db;
    const bench_fmat *q;
    size_t k, first;
    uint32_t ef;
    double seconds;
    size_t done;
    float *lat_us; /* MAX_SAMPLES latencies, in microseconds */
    size_t nlat;
    int rc;
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    worker *w = arg;
    uint64_t ids[1024];
    float dist[1024];
    qz_search_params p = QZ_SEARCH_PARAMS_INIT;
    p.ef = w->ef;
    double t0 = now_s(), end = t0 + w->seconds;
    size_t i = w->first;
    for (;;) {
        double a = now_s();
        if (a >= end) break;
        size_t found = 0;
        int rc = qz_db_search(w->db, w->q->data + (i % w->q->n) * w->q->dim, w->q->dim, w->k, &p, ids, dist,
                              &found);
        if (rc != QZ_OK) {
            w->rc = rc;
            fprintf(stderr, "search: %s\n", qz_errmsg());
            return NULL;
        }
        double b = now_s();
        if (w->nlat < MAX_SAMPLES) w->lat_us[w->nlat++] = (float)((b - a) * 1e6);
        w->done++;
        i++;
    }
    return NULL;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DIR QUERY.fvecs [--threads T] [--seconds S] [--k K] [--ef EF]\n", argv[0]);
        return 2;
    }
    unsigned threads = 2;
    double seconds = 10;
    size_t k = 10;
    uint32_t ef = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0) threads = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--k") == 0) k = (size_t)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--ef") == 0) ef = (uint32_t)atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (threads < 1 || threads > 256 || k < 1 || k > 1024 || seconds <= 0) {
        fprintf(stderr, "threads 1..256, k 1..1024, seconds > 0\n");
        return 2;
    }
    char err[512];
    bench_fmat q = {0};
    if (bench_read_fvecs(argv[2], &q, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    qz_db *db = NULL;
    if (qz_db_open(argv[1], &o, &db) < 0) {
        fprintf(stderr, "open %s: %s\n", argv[1], qz_errmsg());
        return 1;
    }
    worker *ws = calloc(threads, sizeof *ws);
    pthread_t *tids = calloc(threads, sizeof *tids);
    if (!ws || !tids) return 1;
    for (unsigned t = 0; t < threads; t++) {
        ws[t] = (worker){.db = db, .q = &q, .k = k, .first = t * q.n / threads, .ef = ef, .seconds = seconds};
        ws[t].lat_us = malloc(MAX_SAMPLES * sizeof(float));
        if (!ws[t].lat_us) return 1;
    }
    double t0 = now_s();
    for (unsigned t = 0; t < threads; t++) pthread_create(&tids[t], NULL, run, &ws[t]);
    for (unsigned t = 0; t < threads; t++) pthread_join(tids[t], NULL);
    double el = now_s() - t0;
    size_t total = 0, nlat = 0;
    for (unsigned t = 0; t < threads; t++) {
        if (ws[t].rc) return 1;
        total += ws[t].done;
        nlat += ws[t].nlat;
    }
    float *all = malloc((nlat ? nlat : 1) * sizeof(float));
    if (!all) return 1;
    size_t at = 0;
    for (unsigned t = 0; t < threads; t++) {
        memcpy(all + at, ws[t].lat_us, ws[t].nlat * sizeof(float));
        at += ws[t].nlat;
        free(ws[t].lat_us);
    }
    qsort(all, nlat, sizeof(float), cmp_float);
    qz_stats st = {.struct_size = sizeof st};
    qz_db_stats(db, &st);
    printf("threads=%u k=%zu ef=%u count=%llu queries=%zu seconds=%.2f qps=%.0f p50_us=%.1f p99_us=%.1f\n", threads,
           k, ef ? ef : st.ef_search, (unsigned long long)st.count, total, el, (double)total / el,
           nlat ? all[nlat / 2] : 0.0, nlat ? all[(size_t)((double)nlat * 0.99)] : 0.0);
    free(all);
    free(ws);
    free(tids);
    bench_fmat_free(&q);
    return qz_db_close(db) == QZ_OK ? 0 : 1;
}
