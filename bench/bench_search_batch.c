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
 *                           [--readonly] [--serve]
 * --readonly opens the directory read-only, so that another process (the
 * Python bench) may hold it open read-only at the same time. --serve runs
 * no fixed plan: it reads commands from stdin, one per line, and answers
 * each with one line, so that a caller can interleave its own timings with
 * these on a busy machine:
 *   batch EF          one timed qz_db_search_batch() of all queries
 *   single EF N       N queries one at a time (qz_db_search, then batch nq = 1)
 *   quit
 * Prints one line per measurement:
 *   batch ef=EF k=K nq=N threads=T recall=R qps=Q seconds=S cpu_seconds=C
 *   single api=qz_db_search ef=EF k=K calls=N us_per_call=U cpu_us_per_call=V
 *   single api=qz_db_search_batch ef=EF k=K calls=N us_per_call=U cpu_us_per_call=V
 * (seconds: wall clock; cpu_seconds: CPU time of the process, all threads;
 * cpu_us_per_call: CPU time of the calling thread. Each the fastest run.)
 */
#include <quartz.h>

#include "datasets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* CPU time of the whole process (all its threads) or of the calling thread,
 * in seconds: unlike the wall clock, it does not count the time other
 * processes of a busy machine ran instead of this one. */
static double cpu_now(clockid_t which)
{
    struct timespec ts;
    clock_gettime(which, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct ctx {
    qz_db *db;
    const bench_fmat *q;
    const bench_imat *gt;
    size_t k;
    unsigned threads;
    uint64_t *ids;
    float *dist;
    size_t *counts;
} ctx;

static int die(const char *what, int rc);

/* Fastest of `repeats` batch searches of every query at ef. */
static int run_batch(const ctx *c, size_t ef, unsigned repeats)
{
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = (uint32_t)ef;
    double best = 1e300, best_cpu = 1e300;
    for (unsigned r = 0; r < repeats; r++) {
        double c0 = cpu_now(CLOCK_PROCESS_CPUTIME_ID), t0 = bench_now();
        int rc = qz_db_search_batch(c->db, c->q->data, c->q->n, c->q->dim, c->k, &sp, c->ids, c->dist, c->counts);
        double s = bench_now() - t0, cs = cpu_now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (rc < 0) return die("qz_db_search_batch", rc);
        if (s < best) best = s;
        if (cs < best_cpu) best_cpu = cs;
    }
    printf("batch ef=%zu k=%zu nq=%zu threads=%u recall=%.4f qps=%.1f seconds=%.6f cpu_seconds=%.6f\n", ef, c->k,
           c->q->n, c->threads, recall_at(c->ids, c->counts, c->q->n, c->k, c->gt), (double)c->q->n / best, best,
           best_cpu);
    fflush(stdout);
    return 0;
}

/* The first n queries one at a time, through both calls; fastest of `repeats` rounds. */
static int run_single(const ctx *c, size_t ef, size_t n, unsigned repeats)
{
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = (uint32_t)ef;
    if (n > c->q->n) n = c->q->n;
    for (int api = 0; api < 2 && n > 0; api++) {
        double best = 1e300, best_cpu = 1e300;
        for (unsigned r = 0; r < repeats; r++) {
            double c0 = cpu_now(CLOCK_THREAD_CPUTIME_ID), t0 = bench_now();
            for (size_t i = 0; i < n; i++) {
                size_t found = 0;
                const float *qi = c->q->data + i * c->q->dim;
                int rc = api == 0 ? qz_db_search(c->db, qi, c->q->dim, c->k, &sp, c->ids, c->dist, &found)
                                  : qz_db_search_batch(c->db, qi, 1, c->q->dim, c->k, &sp, c->ids, c->dist, c->counts);
                if (rc < 0) return die(api == 0 ? "qz_db_search" : "qz_db_search_batch", rc);
            }
            double s = bench_now() - t0, cs = cpu_now(CLOCK_THREAD_CPUTIME_ID) - c0;
            if (s < best) best = s;
            if (cs < best_cpu) best_cpu = cs;
        }
        printf("single api=%s ef=%zu k=%zu calls=%zu us_per_call=%.3f cpu_us_per_call=%.3f\n",
               api == 0 ? "qz_db_search" : "qz_db_search_batch", ef, c->k, n, best * 1e6 / (double)n,
               best_cpu * 1e6 / (double)n);
        fflush(stdout);
    }
    return 0;
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
    int readonly = 0, serve = 0;
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
        if (!strcmp(a, "--readonly") || !strcmp(a, "--serve")) {
            *(a[2] == 'r' ? &readonly : &serve) = 1;
            continue;
        }
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
    o.flags = QZ_OPEN_EXISTING | (readonly ? QZ_OPEN_READONLY : 0u);
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
    ctx c = {db, &q, &gt, k, threads, ids, dist, counts};
    if (serve) {
        char line[256];
        printf("ready\n");
        fflush(stdout);
        while (fgets(line, sizeof line, stdin)) {
            size_t ef = 0, n = 0;
            if (sscanf(line, "batch %zu", &ef) == 1 && ef > 0) {
                if (run_batch(&c, ef, 1)) return 1;
            } else if (sscanf(line, "single %zu %zu", &ef, &n) == 2 && ef > 0) {
                if (run_single(&c, ef, n, 1)) return 1;
            } else if (!strncmp(line, "quit", 4)) {
                break;
            } else {
                printf("error unknown command\n");
                fflush(stdout);
            }
        }
    } else {
        for (size_t e = 0; e < n_efs; e++)
            if (run_batch(&c, efs[e], repeats)) return 1;
        if (run_single(&c, single_ef, single, repeats)) return 1;
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
