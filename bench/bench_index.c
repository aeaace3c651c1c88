/*
 * bench_index.c - libquartz on a real dataset (engine "quartz").
 *
 * Builds an in-memory database with one qz_db_insert_batch() call using
 * --threads threads, then hands qz_db_search() to the shared measurement loop
 * in datasets.c, which prints the same CSV as peer_hnswlib. Only the public
 * API (quartz.h) is used, so the numbers are what an application would see.
 *
 * Vectors go in raw: under cosine the library normalises them itself, and that
 * work is part of the timed build and the timed searches, as it is for the
 * hnswlib peer.
 *
 * Two options of its own, taken out of argv before the shared parser sees
 * the rest: --dtype f32|f16|int8|binary (qz_open_options.dtype; the CSV's
 * engine column then reads "quartz-<dtype>") and --oversample N[,N...]
 * (qz_search_params.oversample; 0 = the dtype's default; with a list, the
 * ef sweep runs once per value on the same index, and the CSV's oversample
 * column tells the rows apart), and
 * --originals memory|storage. With "storage" (f16, int8) the database is a
 * directory under $TMPDIR (default /var/tmp) opened with
 * QZ_OPEN_ORIGINALS_IN_STORAGE and durability NONE: the build is the
 * qz_db_insert_batch() call as for the in-memory database; then qz_db_flush()
 * writes everything to LMDB (timed apart, flush_s) so that no original is
 * pinned, and the engine column reads "quartz-<dtype>-stored". Its memory
 * figure is the growth of RssAnon (the process's own memory), since the
 * LMDB pages a search reads are file pages the kernel caches and may evict;
 * the info line gives RssFile too, after the searches. The directory is
 * removed at exit.
 */
#include "datasets.h"

#include <quartz.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

typedef struct qz_engine {
    qz_db *db;
    size_t dims;
    uint32_t oversample;
} qz_engine;

static int qz_search_cb(void *ctx, const float *query, size_t k, size_t ef, uint64_t *ids, size_t *found)
{
    const qz_engine *q = (const qz_engine *)ctx;
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    int rc;
    sp.ef = (uint32_t)ef;
    sp.oversample = q->oversample;
    rc = qz_db_search(q->db, query, q->dims, k, &sp, ids, NULL, found);
    if (rc < 0) {
        /* qz_errmsg() is per thread: read it here, on the failing thread. */
        fprintf(stderr, "quartz: qz_db_search: %s: %s\n", qz_strerror(rc), qz_errmsg());
        return -1;
    }
    return 0;
}

static uint32_t to_qz_metric(bench_metric m)
{
    switch (m) {
    case BENCH_METRIC_L2: return QZ_METRIC_L2;
    case BENCH_METRIC_IP: return QZ_METRIC_IP;
    default: return QZ_METRIC_COSINE;
    }
}

static int parse_dtype(const char *s, uint32_t *out)
{
    static const char *const names[] = {"default", "f32", "f16", "int8", "binary"};
    for (uint32_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    return -1;
}

/* Take --dtype, --oversample and --originals (both "--opt v" and "--opt=v") out of argv. */
#define MAX_OVERSAMPLES 16

static int take_own_args(int *argc, char **argv, uint32_t *dtype, uint32_t *oversample, size_t *n_oversample,
                         int *stored)
{
    int w = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *v = NULL;
        int which = !strncmp(a, "--dtype", 7) ? 1 : !strncmp(a, "--oversample", 12) ? 2 : !strncmp(a, "--originals", 11) ? 3 : 0;
        size_t len = which == 1 ? 7 : which == 2 ? 12 : 11;
        if (which && a[len] == '=') v = a + len + 1;
        else if (which && a[len] == '\0' && i + 1 < *argc) v = argv[++i];
        else if (which && a[len] == '\0') {
            fprintf(stderr, "bench_index: %s needs a value\n", a);
            return -1;
        } else if (which) {
            which = 0; /* another option with this prefix */
        }
        if (which == 1) {
            if (parse_dtype(v, dtype) < 0) {
                fprintf(stderr, "bench_index: --dtype expects f32, f16, int8 or binary, got '%s'\n", v);
                return -1;
            }
        } else if (which == 3) {
            if (strcmp(v, "memory") && strcmp(v, "storage")) {
                fprintf(stderr, "bench_index: --originals expects memory or storage, got '%s'\n", v);
                return -1;
            }
            *stored = !strcmp(v, "storage");
        } else if (which == 2) {
            const char *p = v;
            *n_oversample = 0;
            for (;;) {
                char *end;
                unsigned long x = strtoul(p, &end, 10);
                if (end == p || (*end && *end != ',') || x > QZ_MAX_OVERSAMPLE || *n_oversample == MAX_OVERSAMPLES) {
                    fprintf(stderr, "bench_index: --oversample expects up to %d values 0..%u, comma-separated, got '%s'\n",
                            MAX_OVERSAMPLES, QZ_MAX_OVERSAMPLE, v);
                    return -1;
                }
                oversample[(*n_oversample)++] = (uint32_t)x;
                if (!*end) break;
                p = end + 1;
            }
        } else {
            argv[w++] = argv[i];
        }
    }
    *argc = w;
    argv[w] = NULL;
    return 0;
}

/* libquartz's internal work counters (lib/index/hnsw.h): this program links
 * the static library, which has them; the shared library does not export
 * them. */
void qz__hnsw_search_counters(int enable, uint64_t out[4]);

static void qz_counters_cb(void *engine, double out[3])
{
    (void)engine;
    uint64_t c[4];
    qz__hnsw_search_counters(-1, c);
    out[0] = (double)c[1];
    out[1] = (double)c[2];
    out[2] = (double)c[3];
}

/* The benchmark's database directory (made by mkdtemp): its files, then itself. */
static void remove_dir(const char *dir)
{
    char p[600];
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        (void)unlink(p);
    }
    if (d) closedir(d);
    if (rmdir(dir) != 0) fprintf(stderr, "bench_index: could not remove %s (files left in it)\n", dir);
}

int main(int argc, char **argv)
{
    uint32_t dtype = 0, oversample[MAX_OVERSAMPLES] = {0};
    size_t n_oversample = 1, j;
    int stored = 0;
    char engine_name[48], dir[512] = "";
    int64_t anon0;
    double flush_s = 0;
    bench_options o;
    bench_dataset ds;
    bench_build b;
    bench_engine e;
    qz_open_options opts = QZ_OPEN_OPTIONS_INIT;
    qz_stats st;
    qz_db *db = NULL;
    qz_engine qe;
    uint64_t *ids;
    char err[1024];
    int64_t rss0;
    double t0;
    size_t i;
    int rc;

    if (take_own_args(&argc, argv, &dtype, oversample, &n_oversample, &stored) < 0) return 2;
    snprintf(engine_name, sizeof engine_name, dtype ? "quartz-%s%s" : "quartz",
             dtype == 1 ? "f32" : dtype == 2 ? "f16" : dtype == 3 ? "int8" : "binary", stored ? "-stored" : "");
    if (stored && dtype != 2 && dtype != 3) {
        fprintf(stderr, "bench_index: --originals storage needs --dtype f16 or int8\n");
        return 2;
    }
    rc = bench_parse_args(argc, argv, engine_name, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (bench_dataset_load(o.data_dir, o.metric, o.limit_queries, o.k, &ds, err, sizeof err) != 0) {
        fprintf(stderr, "bench_index: %s\n", err);
        return 1;
    }
    if (bench_dataset_limit_base(&ds, o.limit_base, o.k, o.threads, err, sizeof err) != 0) {
        fprintf(stderr, "bench_index: %s\n", err);
        bench_dataset_free(&ds);
        return 1;
    }
    /* Allocated before the first RSS sample: the ids are input, not index. */
    ids = (uint64_t *)malloc(ds.base.n * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "bench_index: out of memory\n");
        bench_dataset_free(&ds);
        return 1;
    }
    for (i = 0; i < ds.base.n; i++)
        ids[i] = (uint64_t)i;

    opts.dimensions = (uint32_t)ds.base.dim;
    opts.metric = to_qz_metric(o.metric);
    opts.M = o.M;
    opts.ef_construction = o.ef_construction;
    opts.initial_capacity = ds.base.n;
    opts.threads = o.threads;
    opts.dtype = dtype;
    if (stored) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/qzbench.XXXXXX", tmp && *tmp ? tmp : "/var/tmp");
        if (!mkdtemp(dir)) {
            perror("bench_index: mkdtemp");
            free(ids);
            bench_dataset_free(&ds);
            return 1;
        }
        opts.flags = QZ_OPEN_ORIGINALS_IN_STORAGE;
        opts.durability = QZ_DURABILITY_NONE;
    }

    rss0 = bench_rss_bytes();
    anon0 = bench_status_bytes("RssAnon");
    t0 = bench_now();
    rc = qz_db_open(stored ? dir : NULL, &opts, &db);
    if (rc < 0) {
        fprintf(stderr, "bench_index: qz_db_open: %s: %s\n", qz_strerror(rc), qz_errmsg());
        goto fail;
    }
    rc = qz_db_insert_batch(db, ds.base.n, ids, ds.base.data, ds.base.dim, NULL, NULL, 0);
    if (rc < 0) {
        fprintf(stderr, "bench_index: qz_db_insert_batch: %s: %s\n", qz_strerror(rc), qz_errmsg());
        goto fail;
    }
    b.build_s = bench_now() - t0;
    b.memory_bytes = bench_rss_bytes() - rss0;
    if (stored) {
        t0 = bench_now();
        rc = qz_db_flush(db);
        if (rc < 0) {
            fprintf(stderr, "bench_index: qz_db_flush: %s: %s\n", qz_strerror(rc), qz_errmsg());
            goto fail;
        }
        flush_s = bench_now() - t0;
        b.memory_bytes = bench_status_bytes("RssAnon") - anon0;
    }

    st.struct_size = (uint32_t)sizeof st;
    rc = qz_db_stats(db, &st);
    if (rc < 0) {
        fprintf(stderr, "bench_index: qz_db_stats: %s: %s\n", qz_strerror(rc), qz_errmsg());
        goto fail;
    }
    if (st.count != ds.base.n) {
        fprintf(stderr, "bench_index: the database holds %llu vectors after inserting %zu\n",
                (unsigned long long)st.count, ds.base.n);
        goto fail;
    }
    fprintf(stderr,
            "info: engine=%s version=%s dataset=%s n=%zu dim=%zu metric=%s build_s=%.3f "
            "rss_delta_bytes=%lld qz_stats.memory_bytes=%llu max_level=%u simd=%.16s threads=%u dtype=%u "
            "oversample=%u%s originals=%s flush_s=%.3f rss_anon_delta_bytes=%lld\n",
            engine_name, qz_version_string(), ds.name, ds.base.n, ds.base.dim, bench_metric_name(o.metric), b.build_s,
            (long long)b.memory_bytes, (unsigned long long)st.memory_bytes, st.max_level, st.simd,
            o.threads, st.dtype, oversample[0], n_oversample > 1 ? ",..." : "", stored ? "storage" : "memory", flush_s,
            (long long)(bench_status_bytes("RssAnon") - anon0));

    e.name = engine_name;
    qe.db = db;
    qe.dims = ds.base.dim;
    e.ctx = &qe;
    e.search = qz_search_cb;
    e.set_ef = NULL; /* ef travels with each qz_db_search() call */
    e.counters = qz_counters_cb;
    qz__hnsw_search_counters(1, NULL);
    /* One sweep of the ef values per oversampling factor, on the same
     * index; each row says its factor (0: the dtype's default). */
    for (j = 0, rc = 0; j < n_oversample && rc == 0; j++) {
        qe.oversample = oversample[j];
        e.oversample = oversample[j];
        rc = bench_run_searches(&o, &ds, &e, &b, stdout);
        o.header = 0;
    }
    if (stored)
        fprintf(stderr, "info: after the searches RssAnon grew %lld bytes, RssFile is %lld bytes (LMDB pages read)\n",
                (long long)(bench_status_bytes("RssAnon") - anon0), (long long)bench_status_bytes("RssFile"));

    qz_db_close(db);
    if (stored) remove_dir(dir);
    free(ids);
    bench_dataset_free(&ds);
    return rc == 0 ? 0 : 1;

fail:
    qz_db_close(db);
    if (stored) remove_dir(dir);
    free(ids);
    bench_dataset_free(&ds);
    return 1;
}
