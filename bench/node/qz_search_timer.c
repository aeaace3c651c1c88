/*
 * qz_search_timer.c - the C side of bench_node.mjs: libquartz called from C
 * on the very database the Node run searches, so that the binding's cost is
 * the difference of two timings of identical work.
 *
 * bench_node.mjs builds this file with cc against the meson build's
 * libquartz.a, builds the index through the binding into a directory, and
 * starts this program on that directory (opened read-only, as the Node side
 * has it). It then sends one command per line on stdin and reads one answer
 * line per command on stdout, taking turns with its own timings:
 *
 *   batch EF      qz_db_search_batch() of every query, k = 10
 *                 -> "batch EF SECONDS CPU_SECONDS IDSUM" (IDSUM: sum of the returned ids,
 *                    mod 2^64, for checking that both sides got the same answers)
 *   single EF N   N qz_db_search() calls, one query each, cycling over the queries
 *                 -> "single EF SECONDS CPU_SECONDS"
 * SECONDS is wall-clock time, CPU_SECONDS the process's CPU time (all threads).
 *   quit
 *
 * Usage: qz_search_timer DIR QUERY.fvecs NQ THREADS
 */
#include <quartz.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define K 10

static double clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of the whole process (every thread): what the work cost, whatever else runs on the machine */
static double cpu(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static float *read_fvecs(const char *file, size_t limit, size_t *n, size_t *dim)
{
    FILE *f = fopen(file, "rb");
    int32_t d;
    if (!f || fread(&d, 4, 1, f) != 1 || d <= 0) {
        fprintf(stderr, "qz_search_timer: cannot read %s\n", file);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    size_t rows = (size_t)size / (4 + (size_t)d * 4);
    if (limit && limit < rows) rows = limit;
    float *x = malloc(rows * (size_t)d * sizeof *x);
    fseek(f, 0, SEEK_SET);
    for (size_t i = 0; i < rows; i++) {
        if (fread(&d, 4, 1, f) != 1 || fread(x + i * (size_t)d, 4, (size_t)d, f) != (size_t)d) {
            fprintf(stderr, "qz_search_timer: %s: short row %zu\n", file, i);
            exit(1);
        }
    }
    fclose(f);
    *n = rows;
    *dim = (size_t)d;
    return x;
}

static void fail(const char *what, int rc)
{
    fprintf(stderr, "qz_search_timer: %s: %s: %s\n", what, qz_strerror(rc), qz_errmsg());
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: qz_search_timer DIR QUERY.fvecs NQ THREADS\n");
        return 2;
    }
    size_t nq, dim;
    float *q = read_fvecs(argv[2], (size_t)strtoull(argv[3], NULL, 10), &nq, &dim);
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.flags = QZ_OPEN_READONLY;
    o.threads = (uint32_t)strtoul(argv[4], NULL, 10);
    qz_db *db = NULL;
    int rc = qz_db_open(argv[1], &o, &db);
    if (rc < 0) fail("qz_db_open", rc);
    uint64_t *ids = malloc(nq * K * sizeof *ids);
    float *dist = malloc(nq * K * sizeof *dist);
    size_t *counts = malloc(nq * sizeof *counts);
    char line[128];
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready %zu %zu\n", nq, dim);
    while (fgets(line, sizeof line, stdin)) {
        unsigned ef = 0;
        size_t calls = 0;
        qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
        if (sscanf(line, "batch %u", &ef) == 1) {
            sp.ef = ef;
            double t0 = now(), c0 = cpu();
            rc = qz_db_search_batch(db, q, nq, dim, K, &sp, ids, dist, counts);
            double s = now() - t0, c = cpu() - c0;
            if (rc < 0) fail("qz_db_search_batch", rc);
            uint64_t sum = 0;
            for (size_t i = 0; i < nq; i++)
                for (size_t j = 0; j < counts[i]; j++) sum += ids[i * K + j];
            printf("batch %u %.9f %.9f %llu\n", ef, s, c, (unsigned long long)sum);
        } else if (sscanf(line, "single %u %zu", &ef, &calls) == 2) {
            sp.ef = ef;
            size_t found;
            double t0 = now(), c0 = cpu();
            for (size_t i = 0; i < calls; i++) {
                rc = qz_db_search(db, q + (i % nq) * dim, dim, K, &sp, ids, dist, &found);
                if (rc < 0) fail("qz_db_search", rc);
            }
            double s = now() - t0;
            printf("single %u %.9f %.9f\n", ef, s, cpu() - c0);
        } else if (!strncmp(line, "quit", 4)) {
            break;
        } else {
            fprintf(stderr, "qz_search_timer: unknown command %s", line);
            return 2;
        }
    }
    free(ids);
    free(dist);
    free(counts);
    free(q);
    rc = qz_db_close(db);
    return rc < 0 ? 1 : 0;
}
