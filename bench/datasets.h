/*
 * datasets.h - the engine-neutral half of the benchmark harness.
 *
 * Owns: reading texmex files (fvecs/ivecs) into contiguous arrays, loading a
 * dataset folder (base, query, gt, gt_dist), tie-aware recall, the command
 * line shared by every engine, and the measurement loop that prints the CSV.
 * An engine program (bench_index.c for libquartz, peer_hnswlib.cpp for
 * hnswlib) only builds its index and hands a search callback to
 * bench_run_searches(), so both engines are timed, judged and printed by the
 * same code.
 *
 * Assumes: little-endian files as described in shared/data/README.md. Plain
 * C11 that also compiles as C++; no global state; every function may be called
 * from any thread except where noted.
 */
#ifndef QZ_BENCH_DATASETS_H
#define QZ_BENCH_DATASETS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Distance used by an engine or by a dataset's ground truth. */
typedef enum bench_metric {
    BENCH_METRIC_NONE = 0,
    BENCH_METRIC_L2 = 1,     /* ground truth: Euclidean distance (not squared) */
    BENCH_METRIC_COSINE = 2, /* ground truth: 1 - cos(a, b) */
    BENCH_METRIC_IP = 3      /* ground truth: 1 - dot(a, b) */
} bench_metric;

/** "l2", "cosine", "ip" (or "none"). */
const char *bench_metric_name(bench_metric m);
/** Parses "l2"/"euclidean", "cosine"/"angular", "ip"; BENCH_METRIC_NONE if unknown. */
bench_metric bench_metric_parse(const char *s);

/** Rows of float32 vectors, row-major and contiguous (n * dim). */
typedef struct bench_fmat {
    float *data;
    size_t n;
    size_t dim;
} bench_fmat;

/** Rows of int32, row-major and contiguous (n * dim). */
typedef struct bench_imat {
    int32_t *data;
    size_t n;
    size_t dim;
} bench_imat;

/* All fallible functions return 0 on success or -1 with a message in err. */

/** Read a whole .fvecs file. Every record must have the same dimension and the
 *  file must end on a record boundary (a torn tail is an error, not skipped). */
int bench_read_fvecs(const char *path, bench_fmat *out, char *err, size_t errlen);
/** Same for .ivecs. */
int bench_read_ivecs(const char *path, bench_imat *out, char *err, size_t errlen);
void bench_fmat_free(bench_fmat *m);
void bench_imat_free(bench_imat *m);

/** A dataset folder in memory. */
typedef struct bench_dataset {
    char name[256];       /* last path component of the folder */
    bench_metric metric;  /* metric of gt/gt_dist: from the folder suffix, else the engine's */
    bench_fmat base;
    bench_fmat query;     /* possibly cut to --limit-queries rows */
    bench_imat gt;        /* query.n rows of >= k base row numbers, nearest first */
    bench_fmat gt_dist;   /* distances matching gt, in `metric` */
} bench_dataset;

/** Metric named by a folder's suffix: "-angular" -> cosine, "-euclidean" -> l2,
 *  anything else BENCH_METRIC_NONE. */
bench_metric bench_metric_from_dirname(const char *dir);

/**
 * Load DIR/{base,query}.fvecs, DIR/gt.ivecs and DIR/gt_dist.fvecs and check
 * that they agree: same dimension for base and query, one gt and gt_dist row
 * per query, gt and gt_dist of equal width >= k, every gt id a base row.
 * @p fallback is used as the ground-truth metric when the folder name does
 * not say. @p limit_queries 0 keeps every query.
 */
int bench_dataset_load(const char *dir, bench_metric fallback, size_t limit_queries, size_t k,
                       bench_dataset *ds, char *err, size_t errlen);
void bench_dataset_free(bench_dataset *ds);

/**
 * Keep only the first @p n base rows (--limit-base) and recompute the ground
 * truth for them: the exact top-k ids and distances of every query by brute
 * force in double precision (bench_true_distance), on @p threads threads.
 * gt and gt_dist become k wide. Nothing happens when n is 0 or not below
 * the base's size. Returns 0, or -1 with a message (n < k, no memory).
 */
int bench_dataset_limit_base(bench_dataset *ds, size_t n, size_t k, unsigned threads, char *err, size_t errlen);

/** Exact distance in double precision: Euclidean (sqrt), 1 - cos, or 1 - dot. */
double bench_true_distance(bench_metric m, const float *a, const float *b, size_t dim);

/** Scale every row to unit L2 norm (zero rows are left as they are). */
void bench_normalize_rows(float *rows, size_t n, size_t dim);

/**
 * Tie-aware hits of one query: the number of distinct returned ids among the
 * first min(found, k) that are in the true top-k, or whose exact distance to
 * the query (bench_true_distance in the dataset's metric, on the original
 * vectors) is at most the k-th ground-truth distance plus a small epsilon.
 * Ids outside the base are wrong. Recall@k of a query is hits / k.
 */
size_t bench_hits_at_k(const bench_dataset *ds, size_t query_index, const uint64_t *ids, size_t found,
                       size_t k);

/* ---- command line shared by every engine --------------------------------- */

#define BENCH_MAX_EFS 64

typedef struct bench_options {
    const char *data_dir;
    bench_metric metric;      /* engine metric */
    unsigned M;
    unsigned ef_construction;
    size_t efs[BENCH_MAX_EFS];
    size_t n_efs;
    unsigned threads;         /* build threads, and searchers of the concurrent rows */
    size_t k;
    size_t limit_queries;     /* 0 = all */
    size_t limit_base;        /* 0 = all; else the first N base rows, ground truth recomputed */
    double min_seconds;       /* repeat the query set until a timed run lasts this long */
    unsigned repeats;         /* time each run this often and report the fastest */
    int header;               /* print the CSV header line */
} bench_options;

/** Parse argv. Returns 0 to go on, 1 after printing --help, -1 after printing an error. */
int bench_parse_args(int argc, char **argv, const char *engine, bench_options *o);

/* ---- measurement ---------------------------------------------------------- */

/** Monotonic wall clock in seconds. */
double bench_now(void);
/** VmRSS of this process in bytes (from /proc/self/status); -1 if unknown. */
int64_t bench_rss_bytes(void);
/** One size field of /proc/self/status ("VmRSS", "RssAnon", "RssFile") in bytes; -1 if unknown. */
int64_t bench_status_bytes(const char *field);

/**
 * An engine's search: write up to k nearest ids of @p query, nearest first,
 * to ids and their count to *found; return 0, or nonzero on failure. Called
 * concurrently from several threads. @p ef is the candidate list size.
 */
typedef int (*bench_search_fn)(void *engine, const float *query, size_t k, size_t ef, uint64_t *ids,
                               size_t *found);
/** Optional: called once before the queries of each ef, from one thread. */
typedef int (*bench_set_ef_fn)(void *engine, size_t ef);
/** Optional: the engine's cumulative search work, {hops (nodes whose
 *  neighbour list was read), neighbours listed, distances computed}; an
 *  entry the engine does not count is -1. */
typedef void (*bench_counters_fn)(void *engine, double out[3]);

typedef struct bench_engine {
    const char *name;          /* "quartz", "hnswlib" */
    void *ctx;
    bench_search_fn search;
    bench_set_ef_fn set_ef;    /* may be NULL */
    bench_counters_fn counters; /* may be NULL */
    unsigned oversample;       /* the CSV's oversample column; 0: none (exact engines, or the default) */
} bench_engine;

typedef struct bench_build {
    double build_s;       /* wall time of the build */
    int64_t memory_bytes; /* VmRSS after the build minus VmRSS just before it */
} bench_build;

/** The CSV header line, without newline. */
extern const char bench_csv_header[];

/**
 * For every ef of @p o: a single-thread run (one query at a time), then, when
 * o->threads > 1, a run with o->threads concurrent searchers. Each run is
 * timed o->repeats times and the fastest is reported. Prints one CSV
 * row per run to @p out (and the header first if o->header). The queries fed
 * to the engine are ds->query as loaded (raw); recall is judged on them too.
 * Returns 0, or -1 if a search failed (after printing the reason to stderr).
 */
int bench_run_searches(const bench_options *o, const bench_dataset *ds, const bench_engine *e,
                       const bench_build *b, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* QZ_BENCH_DATASETS_H */
