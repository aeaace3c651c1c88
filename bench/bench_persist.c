/*
 * bench_persist.c - cost of durability: single-insert throughput and
 * latency under each durability mode, and open time of a big database
 * after a clean close versus the time it took to build.
 *
 * Part 1: for each of SYNC with 1 writer thread, SYNC with 4, BATCHED
 * (default window) and NONE, a fresh database directory, then the first
 * --n rows of DIR/base.fvecs inserted one qz_db_insert() call at a time
 * (threads take rows i = t, t+T, ...). Every call is timed; the table
 * gives inserts/s over the insert loop, the close (final flush) time, and
 * p50 / p99 / max call latency.
 *
 * Part 2: every row of base.fvecs by qz_db_insert_batch() into a fresh
 * directory (default durability), closed; then the directory is opened
 * again and the open is timed (the files are in the page cache: "after
 * close", not a cold disk), and recall@10 of --queries queries checks the
 * reopened index against DIR/gt.ivecs.
 *
 * Public API only. Prints markdown tables. Without DIR/base.fvecs it
 * prints why and exits 0.
 *
 *   bench_persist --data ../shared/data/glove6b-100-angular [--n 20000]
 *                 [--tmp /tmp] [--no-full] [--queries 1000]
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <ftw.h>

#include "quartz.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Whole .fvecs / .ivecs file: n rows of dim 4-byte values. */
static void *read_vecs(const char *path, size_t *n, size_t *dim)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    int32_t d;
    if (fread(&d, 4, 1, f) != 1 || d <= 0) {
        fclose(f);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t row = 4 + (size_t)d * 4;
    if (bytes < 0 || (size_t)bytes % row) {
        fclose(f);
        return NULL;
    }
    *n = (size_t)bytes / row;
    *dim = (size_t)d;
    unsigned char *out = malloc(*n * (size_t)d * 4);
    unsigned char *buf = malloc(row);
    for (size_t i = 0; i < *n; i++) {
        if (fread(buf, 1, row, f) != row) {
            free(out);
            out = NULL;
            break;
        }
        memcpy(out + i * (size_t)d * 4, buf + 4, (size_t)d * 4);
    }
    free(buf);
    fclose(f);
    return out;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void rmtree(const char *p) { nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long long dir_bytes(const char *dir)
{
    static const char *files[] = {"data.mdb", "quartz.log"};
    long long t = 0;
    for (int i = 0; i < 2; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        struct stat sb;
        if (stat(p, &sb) == 0) t += sb.st_size;
    }
    return t;
}

#define CHECK(expr)                                                                                                \
    do {                                                                                                           \
        int rc_ = (expr);                                                                                          \
        if (rc_ != QZ_OK) {                                                                                        \
            fprintf(stderr, "%s:%d: %s -> %d (%s): %s\n", __FILE__, __LINE__, #expr, rc_, qz_strerror(rc_),        \
                    qz_errmsg());                                                                                  \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

/* ---- part 1: single inserts ------------------------------------------------ */

typedef struct writer {
    qz_db *db;
    const float *x;
    size_t dim, n, t, nt;
    double *lat; /* per row */
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    for (size_t i = w->t; i < w->n; i += w->nt) {
        double t0 = now_s();
        CHECK(qz_db_insert(w->db, i, w->x + i * w->dim, w->dim, NULL, 0));
        w->lat[i] = now_s() - t0;
    }
    return NULL;
}

typedef struct mode_result {
    const char *name;
    unsigned threads;
    size_t n;
    double insert_s, close_s, p50, p99, max;
    long long bytes;
} mode_result;

static mode_result run_mode(const char *root, const char *name, uint32_t durability, unsigned threads,
                            const float *x, size_t n, size_t dim)
{
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/single-%s-%u", root, name, threads);
    rmtree(dir);
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = (uint32_t)dim;
    o.metric = QZ_METRIC_COSINE;
    o.durability = durability;
    o.initial_capacity = n;
    qz_db *db;
    CHECK(qz_db_open(dir, &o, &db));
    double *lat = calloc(n, sizeof *lat);
    writer w[64];
    pthread_t th[64];
    double t0 = now_s();
    for (unsigned t = 0; t < threads; t++) {
        w[t] = (writer){db, x, dim, n, t, threads, lat};
        pthread_create(&th[t], NULL, writer_main, &w[t]);
    }
    for (unsigned t = 0; t < threads; t++) pthread_join(th[t], NULL);
    double t1 = now_s();
    CHECK(qz_db_close(db));
    double t2 = now_s();
    qsort(lat, n, sizeof *lat, cmp_double);
    mode_result r = {name, threads, n, t1 - t0, t2 - t1, lat[n / 2], lat[(size_t)((double)n * 0.99)], lat[n - 1],
                     dir_bytes(dir)};
    free(lat);
    rmtree(dir);
    fprintf(stderr, "  %s x%u: %.1f s\n", name, threads, r.insert_s);
    return r;
}

int main(int argc, char **argv)
{
    const char *data = "../shared/data/glove6b-100-angular", *tmp = "/tmp";
    size_t n1 = 20000, nq = 1000;
    int full = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) n1 = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--tmp") && i + 1 < argc) tmp = argv[++i];
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc) nq = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--no-full")) full = 0;
        else {
            fprintf(stderr, "usage: %s [--data DIR] [--n N] [--tmp DIR] [--queries N] [--no-full]\n", argv[0]);
            return 2;
        }
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/base.fvecs", data);
    size_t n = 0, dim = 0;
    float *x = read_vecs(path, &n, &dim);
    if (!x) {
        printf("bench_persist: skipped: cannot read %s (%s); pass --data DIR with a base.fvecs\n", path,
               strerror(errno));
        return 0;
    }
    if (n1 > n) n1 = n;
    char root[1024];
    snprintf(root, sizeof root, "%s/qzbench-persist-XXXXXX", tmp);
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    struct utsname un;
    uname(&un);
    printf("# bench_persist\n\nlibquartz %s, kernels %s, %ld online cores, %s %s; data %s (%zu x %zu); "
           "databases under %s (M 16, ef_construction 200, cosine)\n\n",
           qz_version_string(), qz_simd_backend(), sysconf(_SC_NPROCESSORS_ONLN), un.sysname, un.release, data, n,
           dim, tmp);

    /* Part 1 */
    fprintf(stderr, "part 1: %zu single inserts per mode\n", n1);
    mode_result r[4];
    r[0] = run_mode(root, "SYNC", QZ_DURABILITY_SYNC, 1, x, n1, dim);
    r[1] = run_mode(root, "SYNC", QZ_DURABILITY_SYNC, 4, x, n1, dim);
    r[2] = run_mode(root, "BATCHED", QZ_DURABILITY_BATCHED, 1, x, n1, dim);
    r[3] = run_mode(root, "NONE", QZ_DURABILITY_NONE, 1, x, n1, dim);
    printf("## Single inserts: first %zu rows, one qz_db_insert() per row\n\n", n1);
    printf("| durability | writer threads | inserts/s | insert loop (s) | close (s) | p50 latency (ms) | p99 latency "
           "(ms) | max (ms) | files after close (MiB) |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < 4; i++)
        printf("| %s%s | %u | %.0f | %.2f | %.3f | %.3f | %.3f | %.1f | %.1f |\n", r[i].name,
               i == 2 ? " (100 ms window)" : "", r[i].threads, (double)r[i].n / r[i].insert_s, r[i].insert_s,
               r[i].close_s, r[i].p50 * 1e3, r[i].p99 * 1e3, r[i].max * 1e3, (double)r[i].bytes / 1048576.0);
    printf("\n");

    if (full) {
        fprintf(stderr, "part 2: build %zu rows with qz_db_insert_batch\n", n);
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/full", root);
        qz_open_options o = QZ_OPEN_OPTIONS_INIT;
        o.dimensions = (uint32_t)dim;
        o.metric = QZ_METRIC_COSINE;
        o.initial_capacity = n;
        uint64_t *ids = malloc(n * sizeof *ids);
        for (size_t i = 0; i < n; i++) ids[i] = i;
        double t0 = now_s();
        qz_db *db;
        CHECK(qz_db_open(dir, &o, &db));
        double t_open_new = now_s() - t0;
        CHECK(qz_db_insert_batch(db, n, ids, x, dim, NULL, NULL, 0));
        double t_ins = now_s() - t0 - t_open_new;
        double t1 = now_s();
        CHECK(qz_db_close(db));
        double t_close = now_s() - t1, t_build = now_s() - t0;
        long long bytes = dir_bytes(dir);

        t1 = now_s();
        CHECK(qz_db_open(dir, NULL, &db));
        double t_open = now_s() - t1;
        qz_stats st = {.struct_size = sizeof st};
        CHECK(qz_db_stats(db, &st));

        /* recall@10 of the reopened index */
        size_t qn = 0, qd = 0, gn = 0, gd = 0;
        snprintf(path, sizeof path, "%s/query.fvecs", data);
        float *q = read_vecs(path, &qn, &qd);
        snprintf(path, sizeof path, "%s/gt.ivecs", data);
        int32_t *gt = read_vecs(path, &gn, &gd);
        double recall = -1, qps = 0;
        if (q && gt && qd == dim && gn == qn && gd >= 10) {
            if (nq > qn) nq = qn;
            size_t hits = 0;
            double ts = now_s();
            /* queries spread over the file: GloVe's are in word-frequency order */
            size_t step = qn / nq ? qn / nq : 1;
            for (size_t k = 0; k < nq; k++) {
                size_t i = k * step;
                uint64_t res[10];
                size_t found;
                CHECK(qz_db_search(db, q + i * dim, dim, 10, NULL, res, NULL, &found));
                for (size_t a = 0; a < found; a++)
                    for (size_t b = 0; b < 10; b++)
                        if (res[a] == (uint64_t)gt[i * gd + b]) {
                            hits++;
                            break;
                        }
            }
            qps = (double)nq / (now_s() - ts);
            recall = (double)hits / (double)(nq * 10);
        }
        CHECK(qz_db_close(db));
        printf("## Full build: %zu rows by qz_db_insert_batch (default durability: BATCHED), then reopen\n\n", n);
        printf("| step | seconds |\n|---|---:|\n");
        printf("| open (new directory) | %.3f |\n", t_open_new);
        printf("| qz_db_insert_batch of %zu rows | %.2f |\n", n, t_ins);
        printf("| close (flush + graph snapshot) | %.2f |\n", t_close);
        printf("| **build total** (open + insert + close) | **%.2f** |\n", t_build);
        printf("| **open after close** (snapshot load) | **%.3f** |\n\n", t_open);
        printf("Reopened: %llu vectors, max level %u, files %.1f MiB; open is %.0fx faster than the build. ",
               (unsigned long long)st.count, st.max_level, (double)bytes / 1048576.0, t_build / t_open);
        if (recall >= 0) printf("recall@10 of %zu queries after reopen (ef 64): %.4f at %.0f QPS.\n", nq, recall, qps);
        else printf("(no query.fvecs/gt.ivecs: recall not measured)\n");
        free(q);
        free(gt);
        free(ids);
    }
    rmtree(root);
    free(x);
    return 0;
}
