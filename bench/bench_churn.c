/*
 * bench_churn.c - upsert churn: a fixed set of N ids upserted over and over.
 *
 * Opens a database (in memory, then in a directory with BATCHED durability,
 * or one of the two with --mode), inserts nothing up front and calls
 * qz_db_upsert() U times: upsert j writes id j mod N with a new vector
 * (row j of the source, cycling), so after the first N calls every upsert
 * replaces a live vector and leaves a deleted node behind until the
 * library unlinks it. Public API only (quartz.h).
 *
 * Every --window upserts it prints one row: upserts done, upserts/s over the
 * window, live count, qz_stats.deleted (deleted nodes not yet unlinked),
 * capacity, memory_bytes, the process's VmRSS (/proc/self/status) and, for
 * the directory, its size on disk. At the end: total time and rate, the time
 * of qz_db_close() (directory: final flush), and a self-search check (the
 * share of 200 sampled ids whose current vector finds the id itself first
 * at the default ef).
 *
 * Vectors: the rows of DATA/base.fvecs when it exists (GloVe 100-d by
 * default: $QZ_DATA_DIR or ../shared/data, folder glove6b-100-angular), else
 * random Gaussian ones of --dim dimensions (fixed seed). Metric cosine.
 *
 *   bench_churn [--ids N] [--upserts U] [--window W] [--mode memory|dir|both]
 *               [--data DIR | --random] [--dim D] [--M M] [--efc EF]
 *               [--tmp DIR] [--max-seconds S] [--quick]
 *
 * Defaults: --ids 10000 --upserts 1000000 --window 100000 --mode both.
 * --quick: 10 ids, 10,000 upserts, windows of 1,000 (the known case of
 * single upserts that never trigger the deletion repair). --max-seconds
 * stops a mode after the window in which it passed S seconds.
 */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "datasets.h"
#include "quartz.h"

typedef struct opts {
    size_t ids, upserts, window, dim;
    uint32_t M, efc;
    int modes; /* 1 memory, 2 dir, 3 both */
    const char *data, *tmp;
    int random, quick;
    double max_seconds;
} opts;

static void usage(FILE *f)
{
    fputs("usage: bench_churn [--ids N] [--upserts U] [--window W] [--mode memory|dir|both]\n"
          "                   [--data DIR | --random] [--dim D] [--M M] [--efc EF] [--tmp DIR]\n"
          "                   [--max-seconds S] [--quick]\n",
          f);
}

static int parse_num(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s ? s : "", &end);
    if (!s || errno || *end || end == s || v < lo || v > hi || v != floor(v)) {
        fprintf(stderr, "bench_churn: %s needs a whole number in %.0f..%.0f, got '%s'\n", opt, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->ids = 10000;
    o->upserts = 1000000;
    o->window = 100000;
    o->dim = 100;
    o->M = 16;
    o->efc = 200;
    o->modes = 3;
    o->tmp = "/tmp";
    int have_ids = 0, have_ups = 0, have_win = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (!strcmp(a, "--ids")) {
            if (parse_num(a, v, 1, 1e9, &x)) return -1;
            o->ids = (size_t)x, have_ids = 1, i++;
        } else if (!strcmp(a, "--upserts")) {
            if (parse_num(a, v, 1, 1e12, &x)) return -1;
            o->upserts = (size_t)x, have_ups = 1, i++;
        } else if (!strcmp(a, "--window")) {
            if (parse_num(a, v, 1, 1e12, &x)) return -1;
            o->window = (size_t)x, have_win = 1, i++;
        } else if (!strcmp(a, "--dim")) {
            if (parse_num(a, v, 1, QZ_MAX_DIMENSIONS, &x)) return -1;
            o->dim = (size_t)x, i++;
        } else if (!strcmp(a, "--M")) {
            if (parse_num(a, v, 2, QZ_MAX_M, &x)) return -1;
            o->M = (uint32_t)x, i++;
        } else if (!strcmp(a, "--efc")) {
            if (parse_num(a, v, 1, QZ_MAX_EF, &x)) return -1;
            o->efc = (uint32_t)x, i++;
        } else if (!strcmp(a, "--max-seconds")) {
            if (parse_num(a, v, 0, 1e9, &x)) return -1;
            o->max_seconds = x, i++;
        } else if (!strcmp(a, "--mode")) {
            if (!v || (strcmp(v, "memory") && strcmp(v, "dir") && strcmp(v, "both"))) {
                fprintf(stderr, "bench_churn: --mode must be memory, dir or both\n");
                return -1;
            }
            o->modes = !strcmp(v, "memory") ? 1 : !strcmp(v, "dir") ? 2 : 3;
            i++;
        } else if (!strcmp(a, "--data")) {
            if (!v) return usage(stderr), -1;
            o->data = v, i++;
        } else if (!strcmp(a, "--tmp")) {
            if (!v) return usage(stderr), -1;
            o->tmp = v, i++;
        } else if (!strcmp(a, "--random")) {
            o->random = 1;
        } else if (!strcmp(a, "--quick")) {
            o->quick = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "bench_churn: unknown argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (o->quick) {
        if (!have_ids) o->ids = 10;
        if (!have_ups) o->upserts = 10000;
        if (!have_win) o->window = 1000;
    }
    if (o->data && o->random) {
        fprintf(stderr, "bench_churn: --data and --random exclude each other\n");
        return -1;
    }
    return 0;
}

/* ---- vectors ---------------------------------------------------------------- */

typedef struct source {
    float *rows;
    size_t n, dim;
    char name[300];
} source;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int load_source(const opts *o, source *src)
{
    char path[4200];
    const char *dir = o->data;
    char def[4000];
    if (!dir && !o->random) {
        const char *root = getenv("QZ_DATA_DIR");
        snprintf(def, sizeof def, "%s/glove6b-100-angular", root && *root ? root : "../shared/data");
        dir = def;
    }
    if (dir) {
        snprintf(path, sizeof path, "%s/base.fvecs", dir);
        struct stat st;
        if (stat(path, &st) == 0) {
            bench_fmat m;
            char err[512];
            if (bench_read_fvecs(path, &m, err, sizeof err) < 0) {
                fprintf(stderr, "bench_churn: %s\n", err);
                return -1;
            }
            src->rows = m.data;
            src->n = m.n;
            src->dim = m.dim;
            snprintf(src->name, sizeof src->name, "%.240s (%zu x %zu)", path, m.n, m.dim);
            return 0;
        }
        if (o->data) {
            fprintf(stderr, "bench_churn: %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    /* Random Gaussian rows: enough distinct ones that a cycle is long. */
    src->n = 65536;
    src->dim = o->dim;
    src->rows = malloc(src->n * src->dim * sizeof *src->rows);
    if (!src->rows) return -1;
    uint64_t s = 42;
    for (size_t i = 0; i < src->n * src->dim; i += 2) {
        double u = ((double)(rng_next(&s) >> 11) + 1) * (1.0 / 9007199254740993.0);
        double v = (double)(rng_next(&s) >> 11) * (1.0 / 9007199254740992.0);
        double r = sqrt(-2.0 * log(u));
        src->rows[i] = (float)(r * cos(6.283185307179586 * v));
        if (i + 1 < src->n * src->dim) src->rows[i + 1] = (float)(r * sin(6.283185307179586 * v));
    }
    snprintf(src->name, sizeof src->name, "random Gaussian (%zu x %zu, seed 42)", src->n, src->dim);
    return 0;
}

/* ---- measuring ----------------------------------------------------------------- */

static double mib(double b) { return b / (1024.0 * 1024.0); }

/* CPU time of the whole process (every thread), so that figures taken on a
 * shared machine can be read beside the wall time. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t g_du;
static int du_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)p, (void)ftw;
    if (flag == FTW_F) g_du += (uint64_t)sb->st_size;
    return 0;
}
static uint64_t dir_size(const char *dir)
{
    g_du = 0;
    nftw(dir, du_one, 16, FTW_PHYS);
    return g_du;
}
static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "bench_churn: %s -> %d (%s): %s\n", what, rc, qz_strerror(rc), qz_errmsg());
    return 1;
}

static int run_mode(const opts *o, const source *src, int in_dir)
{
    char tmpl[4096] = "";
    const char *path = NULL;
    if (in_dir) {
        snprintf(tmpl, sizeof tmpl, "%s/qzchurn-XXXXXX", o->tmp);
        if (!mkdtemp(tmpl)) {
            fprintf(stderr, "bench_churn: mkdtemp %s: %s\n", tmpl, strerror(errno));
            return 1;
        }
        path = tmpl;
    }
    qz_open_options oo = QZ_OPEN_OPTIONS_INIT;
    oo.dimensions = (uint32_t)src->dim;
    oo.metric = QZ_METRIC_COSINE;
    oo.M = o->M;
    oo.ef_construction = o->efc;
    oo.initial_capacity = o->ids;
    oo.durability = QZ_DURABILITY_BATCHED;
    qz_db *db = NULL;
    int rc = qz_db_open(path, &oo, &db);
    if (rc) return fail("qz_db_open", rc);

    printf("\n### %s: %zu ids, %zu upserts%s\n\n", in_dir ? "directory (BATCHED)" : "in memory", o->ids, o->upserts,
           o->max_seconds > 0 ? " (or until --max-seconds)" : "");
    printf("| upserts | window upserts/s | elapsed (s) | CPU (s) | count | deleted | capacity | memory_bytes (MiB) | RSS "
           "(MiB) |%s\n",
           in_dir ? " disk (MiB) |" : "");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|%s\n", in_dir ? "---:|" : "");
    fflush(stdout);
    double t0 = bench_now(), tw = t0, c0 = cpu_s();
    size_t done = 0;
    while (done < o->upserts) {
        size_t end = done + o->window < o->upserts ? done + o->window : o->upserts;
        for (; done < end; done++) {
            uint64_t id = done % o->ids;
            const float *v = src->rows + (done % src->n) * src->dim;
            rc = qz_db_upsert(db, id, v, src->dim, NULL, 0);
            if (rc) {
                fail("qz_db_upsert", rc);
                qz_db_close(db);
                return 1;
            }
        }
        double t = bench_now();
        qz_stats st = {.struct_size = sizeof st};
        if ((rc = qz_db_stats(db, &st))) return fail("qz_db_stats", rc);
        printf("| %zu | %.0f | %.2f | %.2f | %llu | %llu | %llu | %.1f | %.1f |", done,
               (double)(done % o->window ? done % o->window : o->window) / (t - tw), t - t0, cpu_s() - c0,
               (unsigned long long)st.count, (unsigned long long)st.deleted, (unsigned long long)st.capacity,
               mib((double)st.memory_bytes), mib((double)bench_rss_bytes()));
        if (in_dir) printf(" %.1f |", mib((double)dir_size(path)));
        printf("\n");
        fflush(stdout);
        tw = t;
        if (o->max_seconds > 0 && t - t0 > o->max_seconds && done < o->upserts) {
            printf("\nstopped by --max-seconds %.0f after %zu of %zu upserts\n", o->max_seconds, done, o->upserts);
            break;
        }
    }
    double secs = bench_now() - t0, cpu = cpu_s() - c0;
    /* Self-search: the current vector of a sampled id should find the id first. */
    size_t sample = o->ids < 200 ? o->ids : 200, hits = 0;
    uint64_t s = 7;
    double ts = bench_now();
    for (size_t i = 0; i < sample; i++) {
        uint64_t id = o->ids <= 200 ? i : rng_next(&s) % o->ids;
        if (id >= done) continue;
        /* The last upsert of id was number done - 1 - ((done - 1 - id) mod ids). */
        size_t last = done - 1 - ((done - 1 - id) % o->ids);
        uint64_t got[1];
        size_t found = 0;
        rc = qz_db_search(db, src->rows + (last % src->n) * src->dim, src->dim, 1, NULL, got, NULL, &found);
        if (rc) return fail("qz_db_search", rc);
        hits += found == 1 && got[0] == id;
    }
    double search_s = bench_now() - ts;
    double tc = bench_now();
    rc = qz_db_close(db);
    double close_s = bench_now() - tc;
    if (rc) return fail("qz_db_close", rc);
    printf("\n%s: %zu upserts in %.2f s (%.2f s CPU) = %.0f upserts/s; self-search top-1 %zu/%zu (%.3f s); close "
           "%.3f s",
           in_dir ? "directory" : "memory", done, secs, cpu, (double)done / secs, hits, sample, search_s, close_s);
    if (in_dir) {
        printf("; %.1f MiB on disk after close\n", mib((double)dir_size(path)));
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    } else {
        printf("\n");
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse(argc, argv, &o) < 0) return 2;
    source src;
    memset(&src, 0, sizeof src);
    if (load_source(&o, &src) < 0) return 1;
    struct utsname u;
    uname(&u);
    printf("# bench_churn\n\nlibquartz %s, kernels %s, %ld online cores, %s %s; vectors: %s; cosine, M %u, "
           "ef_construction %u; %zu ids, %zu upserts, windows of %zu\n",
           qz_version_string(), qz_simd_backend(), sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, src.name, o.M,
           o.efc, o.ids, o.upserts, o.window);
    printf("command:");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    int rc = 0;
    if (o.modes & 1) rc |= run_mode(&o, &src, 0);
    if (o.modes & 2) rc |= run_mode(&o, &src, 1);
    free(src.rows);
    return rc;
}
