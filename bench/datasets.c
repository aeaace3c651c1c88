/*
 * datasets.c - texmex loading, tie-aware recall and the shared measurement
 * loop of the benchmark programs. See datasets.h for the contract.
 *
 * Why the measurement loop lives here and not in each engine: the numbers of
 * two engines are only comparable when the same code times them, counts the
 * queries, sorts the latencies and judges recall. Each engine supplies a
 * search callback and nothing else.
 *
 * Recall is tie-aware because real sets have equal distances at the cut
 * (duplicate images, words with identical vectors). A returned id that is not
 * in gt's top-k but lies exactly as far as the k-th true neighbour is as good
 * an answer; an engine must not be penalised for breaking the tie differently.
 * The distance is recomputed in double from the base vector, and compared with
 * the k-th gt_dist plus an epsilon that covers float32 rounding of gt_dist.
 */
#include "datasets.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Larger than any real vector; catches reading a non-texmex file as texmex. */
#define BENCH_MAX_DIM (1u << 20)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *bench_metric_name(bench_metric m)
{
    switch (m) {
    case BENCH_METRIC_L2: return "l2";
    case BENCH_METRIC_COSINE: return "cosine";
    case BENCH_METRIC_IP: return "ip";
    default: return "none";
    }
}

bench_metric bench_metric_parse(const char *s)
{
    if (!s)
        return BENCH_METRIC_NONE;
    if (!strcmp(s, "l2") || !strcmp(s, "euclidean"))
        return BENCH_METRIC_L2;
    if (!strcmp(s, "cosine") || !strcmp(s, "angular"))
        return BENCH_METRIC_COSINE;
    if (!strcmp(s, "ip"))
        return BENCH_METRIC_IP;
    return BENCH_METRIC_NONE;
}

/* ---- texmex files --------------------------------------------------------- */

/*
 * Both formats are records of an int32 dimension followed by that many 4-byte
 * values. The first record fixes the dimension; the file size then fixes the
 * record count, and every header is still checked so that a file with mixed
 * dimensions is reported as such rather than as garbage values.
 */
static int read_vecs(const char *path, int is_float, void **data, size_t *n_out, size_t *dim_out,
                     char *err, size_t errlen)
{
    FILE *f;
    struct stat st;
    int32_t d;
    size_t dim, rec, n, i;
    uint64_t size;
    unsigned char *buf = NULL;

    *data = NULL;
    *n_out = *dim_out = 0;
    f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    size = (uint64_t)st.st_size;
    if (size == 0) {
        set_err(err, errlen, "%s: empty file", path);
        fclose(f);
        return -1;
    }
    if (size < 4 || fread(&d, 4, 1, f) != 1) {
        set_err(err, errlen, "%s: truncated: %llu bytes, no complete dimension header", path,
                (unsigned long long)size);
        fclose(f);
        return -1;
    }
    if (d <= 0 || (uint32_t)d > BENCH_MAX_DIM) {
        set_err(err, errlen, "%s: bad dimension %ld in the first record (not a texmex %s file?)", path,
                (long)d, is_float ? "fvecs" : "ivecs");
        fclose(f);
        return -1;
    }
    dim = (size_t)d;
    rec = 4 + 4 * dim;
    n = (size_t)(size / rec);
    if (n == 0) {
        set_err(err, errlen, "%s: truncated: %llu bytes, first record needs %zu", path,
                (unsigned long long)size, rec);
        fclose(f);
        return -1;
    }
    if (n > SIZE_MAX / (4 * dim)) {
        set_err(err, errlen, "%s: too large", path);
        fclose(f);
        return -1;
    }
    buf = (unsigned char *)malloc(n * dim * 4);
    if (!buf) {
        set_err(err, errlen, "%s: out of memory for %zu x %zu values", path, n, dim);
        fclose(f);
        return -1;
    }
    rewind(f);
    for (i = 0; i < n; i++) {
        if (fread(&d, 4, 1, f) != 1)
            goto short_read;
        if (d != (int32_t)dim) {
            set_err(err, errlen, "%s: inconsistent dimensions: record %zu has %ld, record 0 has %zu", path,
                    i, (long)d, dim);
            goto fail;
        }
        if (fread(buf + i * dim * 4, 4, dim, f) != dim)
            goto short_read;
    }
    if (size % rec != 0) {
        /* Every full record agreed; what is left cannot be a record. */
        set_err(err, errlen, "%s: truncated: %llu trailing bytes after %zu records of %zu bytes (dim %zu)",
                path, (unsigned long long)(size % rec), n, rec, dim);
        goto fail;
    }
    if (is_float) {
        const float *v = (const float *)buf;
        for (i = 0; i < n * dim; i++) {
            if (!isfinite(v[i])) {
                set_err(err, errlen, "%s: record %zu component %zu is not finite", path, i / dim, i % dim);
                goto fail;
            }
        }
    }
    fclose(f);
    *data = buf;
    *n_out = n;
    *dim_out = dim;
    return 0;

short_read:
    set_err(err, errlen, "%s: read failed at record %zu of %zu: %s", path, i, n,
            ferror(f) ? strerror(errno) : "unexpected end of file");
fail:
    free(buf);
    fclose(f);
    return -1;
}

int bench_read_fvecs(const char *path, bench_fmat *out, char *err, size_t errlen)
{
    void *p;
    int rc = read_vecs(path, 1, &p, &out->n, &out->dim, err, errlen);
    out->data = (float *)p;
    return rc;
}

int bench_read_ivecs(const char *path, bench_imat *out, char *err, size_t errlen)
{
    void *p;
    int rc = read_vecs(path, 0, &p, &out->n, &out->dim, err, errlen);
    out->data = (int32_t *)p;
    return rc;
}

void bench_fmat_free(bench_fmat *m)
{
    if (!m)
        return;
    free(m->data);
    m->data = NULL;
    m->n = m->dim = 0;
}

void bench_imat_free(bench_imat *m)
{
    if (!m)
        return;
    free(m->data);
    m->data = NULL;
    m->n = m->dim = 0;
}

/* ---- datasets ------------------------------------------------------------- */

static void dir_basename(const char *dir, char *out, size_t cap)
{
    size_t len = strlen(dir);
    size_t start;
    while (len > 1 && dir[len - 1] == '/')
        len--;
    start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    if (len - start >= cap)
        len = start + cap - 1;
    memcpy(out, dir + start, len - start);
    out[len - start] = '\0';
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

bench_metric bench_metric_from_dirname(const char *dir)
{
    char name[256];
    dir_basename(dir, name, sizeof name);
    if (ends_with(name, "-angular"))
        return BENCH_METRIC_COSINE;
    if (ends_with(name, "-euclidean"))
        return BENCH_METRIC_L2;
    return BENCH_METRIC_NONE;
}

int bench_dataset_load(const char *dir, bench_metric fallback, size_t limit_queries, size_t k,
                       bench_dataset *ds, char *err, size_t errlen)
{
    char path[4096];
    size_t i;

    memset(ds, 0, sizeof *ds);
    dir_basename(dir, ds->name, sizeof ds->name);
    ds->metric = bench_metric_from_dirname(dir);
    if (ds->metric == BENCH_METRIC_NONE)
        ds->metric = fallback;
    if (ds->metric == BENCH_METRIC_NONE) {
        set_err(err, errlen, "%s: the folder name ends neither in -angular nor -euclidean; give --metric", dir);
        return -1;
    }

#define LOAD(file, reader, field)                                                                         \
    do {                                                                                                  \
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) {                     \
            set_err(err, errlen, "%s: path too long", dir);                                               \
            goto fail;                                                                                    \
        }                                                                                                 \
        if (reader(path, &ds->field, err, errlen) != 0)                                                   \
            goto fail;                                                                                    \
    } while (0)
    LOAD("base.fvecs", bench_read_fvecs, base);
    LOAD("query.fvecs", bench_read_fvecs, query);
    LOAD("gt.ivecs", bench_read_ivecs, gt);
    LOAD("gt_dist.fvecs", bench_read_fvecs, gt_dist);
#undef LOAD

    if (ds->query.dim != ds->base.dim) {
        set_err(err, errlen, "%s: query.fvecs has dimension %zu, base.fvecs %zu", dir, ds->query.dim,
                ds->base.dim);
        goto fail;
    }
    if (ds->gt.n != ds->query.n || ds->gt_dist.n != ds->query.n) {
        set_err(err, errlen, "%s: %zu queries but gt.ivecs has %zu rows and gt_dist.fvecs %zu", dir,
                ds->query.n, ds->gt.n, ds->gt_dist.n);
        goto fail;
    }
    if (ds->gt.dim != ds->gt_dist.dim) {
        set_err(err, errlen, "%s: gt.ivecs rows hold %zu ids but gt_dist.fvecs rows %zu distances", dir,
                ds->gt.dim, ds->gt_dist.dim);
        goto fail;
    }
    if (k == 0 || ds->gt.dim < k) {
        set_err(err, errlen, "%s: ground truth has %zu neighbours per query, k = %zu needs at least k", dir,
                ds->gt.dim, k);
        goto fail;
    }
    for (i = 0; i < ds->gt.n * ds->gt.dim; i++) {
        int32_t id = ds->gt.data[i];
        if (id < 0 || (size_t)id >= ds->base.n) {
            set_err(err, errlen, "%s: gt.ivecs row %zu holds id %ld outside the %zu base rows", dir,
                    i / ds->gt.dim, (long)id, ds->base.n);
            goto fail;
        }
    }
    if (limit_queries > 0 && limit_queries < ds->query.n) {
        /* Rows stay allocated; only the counts shrink. */
        ds->query.n = ds->gt.n = ds->gt_dist.n = limit_queries;
    }
    return 0;

fail:
    bench_dataset_free(ds);
    return -1;
}

typedef struct gt_job {
    bench_dataset *ds;
    size_t n, k;
    int32_t *ids;
    float *dist;
    size_t next; /* next query to do, under mu */
    pthread_mutex_t mu;
} gt_job;

/* Put (d, id) at position i of the max-heap hd/hi of m entries, moving it
 * down past larger children: the heap's hole at i is filled. */
static void heap_sift_down(double *hd, int32_t *hi, size_t m, size_t i, double d, int32_t id)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && hd[c + 1] > hd[c]) c++;
        if (hd[c] <= d) break;
        hd[i] = hd[c];
        hi[i] = hi[c];
        i = c;
    }
    hd[i] = d;
    hi[i] = id;
}

/* Exact top-k of one query over the first n base rows: a max-heap of k. */
static void gt_one(gt_job *j, size_t qi, double *hd, int32_t *hi)
{
    const bench_dataset *ds = j->ds;
    const float *q = ds->query.data + qi * ds->query.dim;
    size_t m = 0, k = j->k;
    for (size_t b = 0; b < j->n; b++) {
        double d = bench_true_distance(ds->metric, q, ds->base.data + b * ds->base.dim, ds->base.dim);
        if (m < k) { /* sift up */
            size_t i = m++;
            while (i > 0 && hd[(i - 1) / 2] < d) {
                hd[i] = hd[(i - 1) / 2];
                hi[i] = hi[(i - 1) / 2];
                i = (i - 1) / 2;
            }
            hd[i] = d;
            hi[i] = (int32_t)b;
        } else if (d < hd[0]) { /* replace the largest */
            heap_sift_down(hd, hi, m, 0, d, (int32_t)b);
        }
    }
    /* heap -> ascending: move the largest to the back, one at a time */
    for (size_t e = m; e-- > 1;) {
        double td = hd[0];
        int32_t ti = hi[0];
        heap_sift_down(hd, hi, e, 0, hd[e], hi[e]);
        hd[e] = td;
        hi[e] = ti;
    }
    for (size_t i = 0; i < k; i++) {
        j->ids[qi * k + i] = hi[i];
        j->dist[qi * k + i] = (float)hd[i];
    }
}

static void *gt_worker(void *arg)
{
    gt_job *j = (gt_job *)arg;
    double *hd = (double *)malloc(j->k * sizeof *hd);
    int32_t *hi = (int32_t *)malloc(j->k * sizeof *hi);
    if (!hd || !hi) {
        free(hd);
        free(hi);
        return (void *)1;
    }
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t qi = j->next++;
        pthread_mutex_unlock(&j->mu);
        if (qi >= j->ds->query.n) break;
        gt_one(j, qi, hd, hi);
    }
    free(hd);
    free(hi);
    return NULL;
}

int bench_dataset_limit_base(bench_dataset *ds, size_t n, size_t k, unsigned threads, char *err, size_t errlen)
{
    if (n == 0 || n >= ds->base.n) return 0;
    if (n < k) {
        set_err(err, errlen, "--limit-base %zu is below k = %zu", n, k);
        return -1;
    }
    gt_job j;
    memset(&j, 0, sizeof j);
    j.ds = ds;
    j.n = n;
    j.k = k;
    j.ids = (int32_t *)malloc(ds->query.n * k * sizeof *j.ids);
    j.dist = (float *)malloc(ds->query.n * k * sizeof *j.dist);
    if (!j.ids || !j.dist) {
        free(j.ids);
        free(j.dist);
        set_err(err, errlen, "out of memory for the ground truth of %zu base rows", n);
        return -1;
    }
    pthread_mutex_init(&j.mu, NULL);
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    pthread_t th[64];
    unsigned started = 0;
    int bad = 0;
    for (unsigned t = 0; t < threads; t++)
        if (pthread_create(&th[t], NULL, gt_worker, &j) == 0) started++;
    if (started == 0) bad = gt_worker(&j) != NULL;
    for (unsigned t = 0; t < started; t++) {
        void *r = NULL;
        pthread_join(th[t], &r);
        bad |= r != NULL;
    }
    pthread_mutex_destroy(&j.mu);
    if (bad) {
        free(j.ids);
        free(j.dist);
        set_err(err, errlen, "out of memory computing the ground truth");
        return -1;
    }
    free(ds->gt.data);
    free(ds->gt_dist.data);
    ds->gt.data = j.ids;
    ds->gt_dist.data = j.dist;
    ds->gt.dim = ds->gt_dist.dim = k;
    ds->base.n = n; /* rows past n stay allocated, unused */
    return 0;
}

void bench_dataset_free(bench_dataset *ds)
{
    if (!ds)
        return;
    bench_fmat_free(&ds->base);
    bench_fmat_free(&ds->query);
    bench_imat_free(&ds->gt);
    bench_fmat_free(&ds->gt_dist);
}

/* ---- distances and recall ------------------------------------------------- */

double bench_true_distance(bench_metric m, const float *a, const float *b, size_t dim)
{
    size_t i;
    double s = 0.0, na = 0.0, nb = 0.0;
    switch (m) {
    case BENCH_METRIC_L2:
        for (i = 0; i < dim; i++) {
            double d = (double)a[i] - (double)b[i];
            s += d * d;
        }
        return sqrt(s);
    case BENCH_METRIC_COSINE:
        for (i = 0; i < dim; i++) {
            s += (double)a[i] * (double)b[i];
            na += (double)a[i] * (double)a[i];
            nb += (double)b[i] * (double)b[i];
        }
        if (na == 0.0 || nb == 0.0)
            return 1.0;
        return 1.0 - s / (sqrt(na) * sqrt(nb));
    case BENCH_METRIC_IP:
        for (i = 0; i < dim; i++)
            s += (double)a[i] * (double)b[i];
        return 1.0 - s;
    default:
        return HUGE_VAL;
    }
}

void bench_normalize_rows(float *rows, size_t n, size_t dim)
{
    size_t i, j;
    for (i = 0; i < n; i++) {
        float *r = rows + i * dim;
        double s = 0.0;
        for (j = 0; j < dim; j++)
            s += (double)r[j] * (double)r[j];
        if (s > 0.0) {
            double inv = 1.0 / sqrt(s);
            for (j = 0; j < dim; j++)
                r[j] = (float)((double)r[j] * inv);
        }
    }
}

size_t bench_hits_at_k(const bench_dataset *ds, size_t qi, const uint64_t *ids, size_t found, size_t k)
{
    const int32_t *gt = ds->gt.data + qi * ds->gt.dim;
    const float *q = ds->query.data + qi * ds->query.dim;
    /* gt_dist is float32 of a float64 value: allow its rounding and a little more. */
    double kth = (double)ds->gt_dist.data[qi * ds->gt_dist.dim + k - 1];
    double limit = kth + 1e-6 * (1.0 + fabs(kth));
    size_t n = found < k ? found : k;
    size_t i, j, hits = 0;

    for (i = 0; i < n; i++) {
        uint64_t id = ids[i];
        int dup = 0, ok = 0;
        if (id >= ds->base.n)
            continue;
        for (j = 0; j < i; j++) {
            if (ids[j] == id) {
                dup = 1;
                break;
            }
        }
        if (dup)
            continue;
        for (j = 0; j < k; j++) {
            if ((uint64_t)gt[j] == id) {
                ok = 1;
                break;
            }
        }
        if (!ok) {
            double d = bench_true_distance(ds->metric, q, ds->base.data + (size_t)id * ds->base.dim,
                                           ds->base.dim);
            ok = d <= limit;
        }
        hits += (size_t)ok;
    }
    return hits;
}

/* ---- command line --------------------------------------------------------- */

static void usage(FILE *f, const char *prog, const char *engine)
{
    fprintf(f,
            "usage: %s --data DIR [--metric cosine|l2|ip] [--M 16] [--efc 200]\n"
            "          [--ef 10,20,40,80,120,200,400] [--threads 2] [--k 10]\n"
            "          [--limit-queries N] [--limit-base N] [--min-seconds 0.5] [--repeats 1] [--no-header]\n"
            "Benchmarks the %s engine on a texmex dataset folder (base.fvecs, query.fvecs,\n"
            "gt.ivecs, gt_dist.fvecs) and prints CSV rows to stdout:\n  %s\n"
            "--metric defaults to the folder suffix (-angular = cosine, -euclidean = l2).\n"
            "--threads is used for the build and for a second, concurrent search run per ef.\n"
            "--min-seconds repeats the query set until each timed run lasts that long.\n"
            "--repeats N times each run N times and reports the fastest (less noise from other load).\n"
            "--limit-base N indexes the first N base vectors only; the ground truth of that subset is\n"
            "recomputed by brute force (exact, double precision) before the build.\n",
            prog, engine, bench_csv_header);
}

static int parse_size(const char *opt, const char *s, size_t lo, size_t hi, size_t *out)
{
    char *end;
    unsigned long long v;
    if (!s || !*s || *s == '-') {
        fprintf(stderr, "%s: expects a number, got '%s'\n", opt, s ? s : "");
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: expects a whole number in %zu..%zu, got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int parse_ef_list(const char *s, bench_options *o)
{
    char buf[1024];
    char *tok, *save = NULL;
    if (strlen(s) >= sizeof buf) {
        fprintf(stderr, "--ef: list too long\n");
        return -1;
    }
    strcpy(buf, s);
    o->n_efs = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->n_efs == BENCH_MAX_EFS) {
            fprintf(stderr, "--ef: at most %d values\n", BENCH_MAX_EFS);
            return -1;
        }
        if (parse_size("--ef", tok, 1, 100000, &o->efs[o->n_efs]) != 0)
            return -1;
        o->n_efs++;
    }
    if (o->n_efs == 0) {
        fprintf(stderr, "--ef: empty list\n");
        return -1;
    }
    return 0;
}

int bench_parse_args(int argc, char **argv, const char *engine, bench_options *o)
{
    int i;
    const char *prog = argc > 0 ? argv[0] : "bench";
    size_t v;

    memset(o, 0, sizeof *o);
    o->M = 16;
    o->ef_construction = 200;
    o->threads = 2;
    o->k = 10;
    o->min_seconds = 0.5;
    o->repeats = 1;
    o->header = 1;
    parse_ef_list("10,20,40,80,120,200,400", o);

    for (i = 1; i < argc; i++) {
        char name[64];
        const char *arg = argv[i], *val = NULL, *eq;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout, prog, engine);
            return 1;
        }
        if (!strcmp(arg, "--no-header")) {
            o->header = 0;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "%s: unexpected argument '%s' (try --help)\n", prog, arg);
            return -1;
        }
        /* Both "--opt value" and "--opt=value". */
        eq = strchr(arg, '=');
        if (eq) {
            size_t len = (size_t)(eq - arg);
            if (len >= sizeof name)
                len = sizeof name - 1;
            memcpy(name, arg, len);
            name[len] = '\0';
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: %s needs a value\n", prog, name);
                return -1;
            }
            val = argv[++i];
        }
        if (!strcmp(name, "--data")) {
            o->data_dir = val;
        } else if (!strcmp(name, "--metric")) {
            o->metric = bench_metric_parse(val);
            if (o->metric == BENCH_METRIC_NONE) {
                fprintf(stderr, "--metric: expects cosine, l2 or ip, got '%s'\n", val);
                return -1;
            }
        } else if (!strcmp(name, "--M")) {
            if (parse_size(name, val, 2, 256, &v) != 0)
                return -1;
            o->M = (unsigned)v;
        } else if (!strcmp(name, "--efc") || !strcmp(name, "--ef-construction")) {
            if (parse_size(name, val, 1, 100000, &v) != 0)
                return -1;
            o->ef_construction = (unsigned)v;
        } else if (!strcmp(name, "--ef")) {
            if (parse_ef_list(val, o) != 0)
                return -1;
        } else if (!strcmp(name, "--threads")) {
            if (parse_size(name, val, 1, 1024, &v) != 0)
                return -1;
            o->threads = (unsigned)v;
        } else if (!strcmp(name, "--k")) {
            if (parse_size(name, val, 1, 10000, &o->k) != 0)
                return -1;
        } else if (!strcmp(name, "--limit-base")) {
            if (parse_size(name, val, 0, SIZE_MAX, &o->limit_base) != 0)
                return -1;
        } else if (!strcmp(name, "--limit-queries")) {
            if (parse_size(name, val, 0, SIZE_MAX, &o->limit_queries) != 0)
                return -1;
        } else if (!strcmp(name, "--repeats")) {
            if (parse_size(name, val, 1, 100, &v) != 0)
                return -1;
            o->repeats = (unsigned)v;
        } else if (!strcmp(name, "--min-seconds")) {
            char *end;
            errno = 0;
            o->min_seconds = strtod(val, &end);
            if (errno || *end || !(o->min_seconds >= 0.0 && o->min_seconds <= 3600.0)) {
                fprintf(stderr, "--min-seconds: expects seconds in 0..3600, got '%s'\n", val);
                return -1;
            }
        } else {
            fprintf(stderr, "%s: unknown option %s (try --help)\n", prog, name);
            return -1;
        }
    }
    if (!o->data_dir) {
        fprintf(stderr, "%s: --data DIR is required (try --help)\n", prog);
        return -1;
    }
    if (o->metric == BENCH_METRIC_NONE)
        o->metric = bench_metric_from_dirname(o->data_dir);
    if (o->metric == BENCH_METRIC_NONE) {
        fprintf(stderr, "%s: cannot tell the metric from '%s'; give --metric\n", prog, o->data_dir);
        return -1;
    }
    return 0;
}

/* ---- measurement ---------------------------------------------------------- */

const char bench_csv_header[] =
    "dataset,engine,n,dim,metric,threads,M,ef_construction,ef,recall_at_10,qps,p50_us,p99_us,build_s,"
    "memory_bytes,oversample";

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t bench_status_bytes(const char *field)
{
    char line[256];
    long long kb = -1;
    size_t fl = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, field, fl) && line[fl] == ':') {
            kb = strtoll(line + fl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

int64_t bench_rss_bytes(void) { return bench_status_bytes("VmRSS"); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values: the smallest value with at least
 * p of all values at or below it. */
static double percentile(const double *sorted, size_t n, double p)
{
    size_t r;
    if (n == 0)
        return 0.0;
    r = (size_t)ceil(p * (double)n);
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return sorted[r - 1];
}

/* State of one timed run, shared by its searcher threads. */
typedef struct run_state {
    const bench_dataset *ds;
    const bench_engine *e;
    size_t k, ef, nq;
    size_t total;          /* queries to run: nq * passes */
    size_t next;           /* next query number to take (atomic builtins) */
    int failed;            /* set by any searcher that fails (atomic builtins) */
    uint64_t *ids;         /* nq * k: results of the first pass, for recall */
    size_t *found;         /* nq */
    double *lat;           /* total latencies in seconds, one slot per query number */
} run_state;

/* Takes query numbers until `total` is reached. Query number i is query
 * i % nq; the first pass keeps its results for recall, later ones reuse a
 * scratch buffer. Each latency slot is written by exactly one thread. */
static void *searcher(void *arg)
{
    run_state *s = (run_state *)arg;
    uint64_t *scratch = (uint64_t *)malloc(s->k * sizeof *scratch);
    size_t scratch_found;
    if (!scratch) {
        __atomic_store_n(&s->failed, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    for (;;) {
        size_t i = __atomic_fetch_add(&s->next, 1, __ATOMIC_RELAXED);
        size_t qi;
        uint64_t *out;
        size_t *fo;
        double t0;
        if (i >= s->total || __atomic_load_n(&s->failed, __ATOMIC_RELAXED))
            break;
        qi = i % s->nq;
        out = i < s->nq ? s->ids + qi * s->k : scratch;
        fo = i < s->nq ? &s->found[qi] : &scratch_found;
        t0 = bench_now();
        if (s->e->search(s->e->ctx, s->ds->query.data + qi * s->ds->query.dim, s->k, s->ef, out, fo) != 0) {
            fprintf(stderr, "%s: search of query %zu (ef %zu) failed\n", s->e->name, qi, s->ef);
            __atomic_store_n(&s->failed, 1, __ATOMIC_RELAXED);
            break;
        }
        s->lat[i] = bench_now() - t0;
    }
    free(scratch);
    return NULL;
}

/* Runs s->total queries on `threads` threads (the caller's thread when 1) and
 * returns the wall time, or a negative value on failure. */
static double timed_run(run_state *s, unsigned threads)
{
    pthread_t *tids = NULL;
    unsigned t, started = 0;
    double t0, t1;

    s->next = 0; /* no searcher runs yet */
    s->failed = 0;
    if (threads > 1) {
        tids = (pthread_t *)calloc(threads, sizeof *tids);
        if (!tids)
            return -1.0;
    }
    t0 = bench_now();
    if (threads <= 1) {
        searcher(s);
    } else {
        for (t = 0; t < threads; t++) {
            if (pthread_create(&tids[t], NULL, searcher, s) != 0) {
                __atomic_store_n(&s->failed, 1, __ATOMIC_RELAXED);
                break;
            }
            started++;
        }
        for (t = 0; t < started; t++)
            pthread_join(tids[t], NULL);
    }
    t1 = bench_now();
    free(tids);
    return __atomic_load_n(&s->failed, __ATOMIC_RELAXED) ? -1.0 : t1 - t0;
}

static void print_row(FILE *out, const bench_options *o, const bench_dataset *ds, const bench_engine *e,
                      const bench_build *b, unsigned threads, size_t ef, double recall, double qps,
                      double p50_us, double p99_us)
{
    fprintf(out, "%s,%s,%zu,%zu,%s,%u,%u,%u,%zu,%.5f,%.1f,%.1f,%.1f,%.3f,%lld,%u\n", ds->name, e->name,
            ds->base.n, ds->base.dim, bench_metric_name(o->metric), threads, o->M, o->ef_construction, ef,
            recall, qps, p50_us, p99_us, b->build_s, (long long)b->memory_bytes, e->oversample);
    fflush(out);
}

int bench_run_searches(const bench_options *o, const bench_dataset *ds, const bench_engine *e,
                       const bench_build *b, FILE *out)
{
    run_state s;
    size_t nq = ds->query.n, k = o->k, cap_lat = 0, x;
    int rc = -1;

    memset(&s, 0, sizeof s);
    s.ds = ds;
    s.e = e;
    s.k = k;
    s.nq = nq;
    s.ids = (uint64_t *)calloc(nq * k, sizeof *s.ids);
    s.found = (size_t *)calloc(nq, sizeof *s.found);
    if (!s.ids || !s.found || nq == 0) {
        fprintf(stderr, "%s: out of memory (or no queries)\n", e->name);
        goto done;
    }
    if (o->header)
        fprintf(out, "%s\n", bench_csv_header);

    for (x = 0; x < o->n_efs; x++) {
        size_t ef = o->efs[x], passes, i, hits, warm = nq < 200 ? nq : 200;
        unsigned round, threads, rep;
        double elapsed, best_elapsed, p50, p99, pass_s = 0.0;

        s.ef = ef;
        if (e->set_ef && e->set_ef(e->ctx, ef) != 0) {
            fprintf(stderr, "%s: cannot set ef %zu\n", e->name, ef);
            goto done;
        }
        /* Warm caches and lazily allocated per-thread state, untimed. */
        for (i = 0; i < warm; i++) {
            if (e->search(e->ctx, ds->query.data + i * ds->query.dim, k, ef, s.ids + i * k, &s.found[i]) != 0) {
                fprintf(stderr, "%s: warm-up search failed (ef %zu)\n", e->name, ef);
                goto done;
            }
        }

        /* Work per query: one untimed pass over every query, one thread,
         * on stderr (the CSV stays as it is). */
        if (e->counters) {
            double c0[3], c1[3];
            e->counters(e->ctx, c0);
            for (i = 0; i < nq; i++) {
                if (e->search(e->ctx, ds->query.data + i * ds->query.dim, k, ef, s.ids + i * k, &s.found[i]) != 0) {
                    fprintf(stderr, "%s: search failed (ef %zu)\n", e->name, ef);
                    goto done;
                }
            }
            e->counters(e->ctx, c1);
            fprintf(stderr, "work: engine=%s ef=%zu queries=%zu hops_per_query=%.1f listed_per_query=%.1f", e->name, ef,
                    nq, (c1[0] - c0[0]) / (double)nq, (c1[1] - c0[1]) / (double)nq);
            if (c1[2] >= 0) fprintf(stderr, " computed_per_query=%.1f", (c1[2] - c0[2]) / (double)nq);
            fprintf(stderr, "\n");
        }

        /* Round 0: one searcher; round 1: o->threads searchers. */
        for (round = 0; round < 2; round++) {
            threads = round == 0 ? 1 : o->threads;
            if (round == 1 && threads <= 1)
                break;
            /* Probe one pass, then repeat the set until the run lasts
             * min_seconds, so that small sets give stable QPS. */
            if (round == 0) {
                passes = 1;
            } else {
                double want = o->min_seconds / (pass_s / (double)threads);
                passes = want < 1.0 ? 1 : (size_t)ceil(want);
            }
            for (;;) {
                if (passes > SIZE_MAX / nq) {
                    fprintf(stderr, "%s: too many passes\n", e->name);
                    goto done;
                }
                s.total = nq * passes;
                if (s.total > cap_lat) {
                    free(s.lat);
                    s.lat = (double *)malloc(s.total * sizeof *s.lat);
                    cap_lat = s.lat ? s.total : 0;
                    if (!s.lat) {
                        fprintf(stderr, "%s: out of memory for latencies\n", e->name);
                        goto done;
                    }
                }
                elapsed = timed_run(&s, threads);
                if (elapsed < 0.0)
                    goto done;
                if (round == 1 || elapsed >= o->min_seconds || passes > 1)
                    break;
                /* The single probe pass was too short: run again, long enough. */
                pass_s = elapsed;
                passes = (size_t)ceil(o->min_seconds / (elapsed > 1e-9 ? elapsed : 1e-9));
                if (passes < 2)
                    passes = 2;
            }
            /* Best of o->repeats runs: load from other processes only ever
             * slows a run down, so the fastest run is the closest to what
             * the engine itself can do. Its latencies go with it. */
            best_elapsed = elapsed;
            qsort(s.lat, s.total, sizeof *s.lat, cmp_double);
            p50 = percentile(s.lat, s.total, 0.50);
            p99 = percentile(s.lat, s.total, 0.99);
            for (rep = 1; rep < o->repeats; rep++) {
                elapsed = timed_run(&s, threads);
                if (elapsed < 0.0)
                    goto done;
                if (elapsed < best_elapsed) {
                    best_elapsed = elapsed;
                    qsort(s.lat, s.total, sizeof *s.lat, cmp_double);
                    p50 = percentile(s.lat, s.total, 0.50);
                    p99 = percentile(s.lat, s.total, 0.99);
                }
            }
            if (round == 0)
                pass_s = best_elapsed / (double)passes;
            /* Every run wrote its first pass to s.ids; judge the last one. */
            for (hits = 0, i = 0; i < nq; i++)
                hits += bench_hits_at_k(ds, i, s.ids + i * k, s.found[i], k);
            print_row(out, o, ds, e, b, threads, ef, (double)hits / (double)(nq * k),
                      (double)s.total / best_elapsed, p50 * 1e6, p99 * 1e6);
        }
    }
    rc = 0;
done:
    free(s.ids);
    free(s.found);
    free(s.lat);
    return rc;
}
