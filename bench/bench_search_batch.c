/*
 * bench_search_batch.c - batch search of an existing database directory
 * through qz_db_search_batch(), the C side of bench/python/bench_python.py
 * (the binding's search(matrix) makes this very call, so the two can be
 * compared on the same graph: the Python bench builds the directory, closes
 * it, runs this program, then reopens it itself).
 *
 * For each ef: all queries in one qz_db_search_batch() call (on the
 * database's threads, 0 = all online cores), timed --repeats times, the
 * fastest reported; recall@k is the plain overlap of the returned ids with
 * the first k ground-truth ids (ids are the base row numbers).
 * Then, at --single-ef, the cost of one k-NN query on the calling thread:
 * --single queries one at a time through qz_db_search(), and through
 * qz_db_search_batch() with nq = 1, in microseconds per call.
 *
 * Usage: bench_search_batch DIR QUERY.fvecs GT.ivecs [--ef 10,20,40] [--k 10]
 *                           [--repeats 3] [--threads T] [--single N] [--single-ef EF]
 * Prints one line per measurement:
 *   batch ef=EF k=K nq=N threads=T recall=R qps=Q seconds=S
 *   single api=qz_db_search ef=EF k=K calls=N us_per_call=U
 *   single api=qz_db_search_batch ef=EF k=K calls=N us_per_call=U
 */
#include <quartz.h>

#include "datasets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EFS 32

static double recall_at(const uint64_t *ids, const size_t *counts, size_t nq, size_t k, const bench_imat *gt)
{
    size_t good = 0;
    for (size_t q = 0; q < nq; q++)
        for (size_t j = 0; j < counts[q]; j++)
            for (size_t g = 0; g < k; g++)
                if (ids[q * k + j] == (uint64_t)gt->data[q * gt->dim + g]) {
                    good++;
                    break;
                }
    return (double)good / (double)(nq * k);
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "bench_search_batch: %s: %s: %s\n", what, qz_strerror(rc), qz_errmsg());
    return 1;
}

int main(int argc, char **argv)
{
    const char *dir, *qpath, *gpath;
    size_t efs[MAX_EFS] = {10, 20, 40, 80, 120, 200, 400};
    size_t n_efs = 7, k = 10, single = 2000, single_ef = 64;
    unsigned repeats = 3, threads = 0;
    bench_fmat q;
    bench_imat gt;
    char err[512];
    int rc;

    if (argc < 4 || argv[1][0] == '-') {
        fprintf(stderr, "usage: bench_search_batch DIR QUERY.fvecs GT.ivecs [--ef 10,20,40] [--k 10] "
                        "[--repeats 3] [--threads T] [--single N] [--single-ef EF]\n");
        return 2;
    }
    dir = argv[1];
    qpath = argv[2];
    gpath = argv[3];
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_search_batch: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--ef")) {
            char *s = (char *)v, *end;
            n_efs = 0;
            while (*s && n_efs < MAX_EFS) {
                efs[n_efs++] = strtoul(s, &end, 10);
                if (end == s) break;
                s = *end == ',' ? end + 1 : end;
            }
        } else if (!strcmp(a, "--k")) k = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--repeats")) repeats = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--threads")) threads = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--single")) single = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--single-ef")) single_ef = strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "bench_search_batch: unknown option %s\n", a);
            return 2;
        }
    }
    if (k == 0 || repeats == 0) {
        fprintf(stderr, "bench_search_batch: --k and --repeats must be positive\n");
        return 2;
    }
    if (bench_read_fvecs(qpath, &q, err, sizeof err) != 0 || bench_read_ivecs(gpath, &gt, err, sizeof err) != 0) {
        fprintf(stderr, "bench_search_batch: %s\n", err);
        return 1;
    }
    if (gt.n < q.n || gt.dim < k) {
        fprintf(stderr, "bench_search_batch: %s has %zu rows of %zu ids; need %zu of %zu\n", gpath, gt.n, gt.dim,
                q.n, k);
        return 1;
    }

    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.flags = QZ_OPEN_EXISTING;
    o.threads = threads;
    qz_db *db = NULL;
    double t0 = bench_now();
    rc = qz_db_open(dir, &o, &db);
    if (rc < 0) return die("qz_db_open", rc);
    double open_s = bench_now() - t0;
    qz_stats st = {.struct_size = sizeof st};
    rc = qz_db_stats(db, &st);
    if (rc < 0) return die("qz_db_stats", rc);
    if (st.dimensions != q.dim) {
        fprintf(stderr, "bench_search_batch: queries have %zu dimensions, the database %u\n", q.dim, st.dimensions);
        return 1;
    }
    fprintf(stderr, "info: libquartz %s simd=%.16s count=%llu M=%u open_s=%.3f threads=%u\n", qz_version_string(),
            st.simd, (unsigned long long)st.count, st.M, open_s, threads);

    uint64_t *ids = malloc(q.n * k * sizeof *ids);
    float *dist = malloc(q.n * k * sizeof *dist);
    size_t *counts = malloc(q.n * sizeof *counts);
    if (!ids || !dist || !counts) {
        fprintf(stderr, "bench_search_batch: out of memory\n");
        return 1;
    }
    for (size_t e = 0; e < n_efs; e++) {
        qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
        sp.ef = (uint32_t)efs[e];
        double best = 1e300;
        for (unsigned r = 0; r < repeats; r++) {
            t0 = bench_now();
            rc = qz_db_search_batch(db, q.data, q.n, q.dim, k, &sp, ids, dist, counts);
            double s = bench_now() - t0;
            if (rc < 0) return die("qz_db_search_batch", rc);
            if (s < best) best = s;
        }
        printf("batch ef=%zu k=%zu nq=%zu threads=%u recall=%.4f qps=%.1f seconds=%.4f\n", efs[e], k, q.n, threads,
               recall_at(ids, counts, q.n, k, &gt), (double)q.n / best, best);
        fflush(stdout);
    }

    size_t ns = single < q.n ? single : q.n;
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = (uint32_t)single_ef;
    for (int api = 0; api < 2 && ns > 0; api++) {
        double best = 1e300;
        for (unsigned r = 0; r < repeats; r++) {
            t0 = bench_now();
            for (size_t i = 0; i < ns; i++) {
                size_t found = 0;
                rc = api == 0 ? qz_db_search(db, q.data + i * q.dim, q.dim, k, &sp, ids, dist, &found)
                              : qz_db_search_batch(db, q.data + i * q.dim, 1, q.dim, k, &sp, ids, dist, counts);
                if (rc < 0) return die(api == 0 ? "qz_db_search" : "qz_db_search_batch", rc);
            }
            double s = bench_now() - t0;
            if (s < best) best = s;
        }
        printf("single api=%s ef=%zu k=%zu calls=%zu us_per_call=%.3f\n",
               api == 0 ? "qz_db_search" : "qz_db_search_batch", single_ef, k, ns, best * 1e6 / (double)ns);
        fflush(stdout);
    }

    free(ids);
    free(dist);
    free(counts);
    bench_fmat_free(&q);
    bench_imat_free(&gt);
    rc = qz_db_close(db);
    if (rc < 0) return die("qz_db_close", rc);
    return 0;
}
