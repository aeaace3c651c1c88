/* testutil.c - see testutil.h. */
#include <errno.h>
#include <sys/stat.h>
#include "testutil.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t tu_next(tu_rng *r)
{
    uint64_t x = (r->s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

double tu_uniform(tu_rng *r) { return (double)(tu_next(r) >> 11) * (1.0 / 9007199254740992.0); }

double tu_normal(tu_rng *r)
{
    double u = tu_uniform(r) + 1e-300, v = tu_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

float *tu_dataset(size_t n, size_t dim, size_t clusters, uint64_t seed)
{
    tu_rng r = {seed};
    float *x = malloc(n * dim * sizeof *x);
    float *c = NULL;
    if (clusters) {
        c = malloc(clusters * dim * sizeof *c);
        for (size_t i = 0; i < clusters * dim; i++) c[i] = (float)(tu_normal(&r) * 3.0);
    }
    for (size_t i = 0; i < n; i++) {
        const float *center = c ? c + (tu_next(&r) % clusters) * dim : NULL;
        for (size_t j = 0; j < dim; j++) x[i * dim + j] = (float)tu_normal(&r) + (center ? center[j] : 0.0f);
    }
    free(c);
    return x;
}

double tu_distance(const float *a, const float *b, size_t dim, uint32_t metric)
{
    double s = 0, na = 0, nb = 0;
    switch (metric) {
    case QZ_METRIC_L2:
        for (size_t i = 0; i < dim; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        return s;
    case QZ_METRIC_IP:
        for (size_t i = 0; i < dim; i++) s += (double)a[i] * b[i];
        return 1.0 - s;
    case QZ_METRIC_HAMMING:
        for (size_t i = 0; i < dim; i++) s += (a[i] > 0) != (b[i] > 0);
        return s;
    default:
        for (size_t i = 0; i < dim; i++) {
            s += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return 1.0 - s / sqrt(na * nb);
    }
}

size_t tu_brute_knn(const float *base, size_t n, size_t dim, const float *q, uint32_t metric, size_t k,
                    const unsigned char *alive, uint64_t *ids, double *dists)
{
    /* Insertion into a sorted array of k: fine for tests. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (alive && !alive[i]) continue;
        double d = tu_distance(base + i * dim, q, dim, metric);
        if (m == k && d >= dists[k - 1]) continue;
        size_t j = m < k ? m++ : k - 1;
        while (j > 0 && dists[j - 1] > d) {
            dists[j] = dists[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        dists[j] = d;
        ids[j] = i;
    }
    return m;
}

qz_db *tu_open_mem(uint32_t dim, uint32_t metric, uint32_t M, uint32_t efc)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = dim;
    o.metric = metric;
    o.M = M;
    o.ef_construction = efc;
    qz_db *db = NULL;
    TU_OK(qz_db_open(NULL, &o, &db));
    return db;
}

char *tu_tempdir(void)
{
    char *t = strdup("/tmp/qztest-XXXXXX");
    if (!mkdtemp(t)) fail_msg("mkdtemp failed");
    return t;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void tu_rmtree(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

unsigned char *tu_slurp(const char *path, size_t *len, int may_be_missing)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (may_be_missing && errno == ENOENT) return NULL;
        fail_msg("open %s: %s", path, strerror(errno));
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (n && fread(b, 1, (size_t)n, f) != (size_t)n) fail_msg("read %s", path);
    fclose(f);
    *len = (size_t)n;
    return b;
}

void tu_spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("create %s: %s", path, strerror(errno));
    if (n && fwrite(b, 1, n, f) != n) fail_msg("write %s", path);
    fclose(f);
}

void tu_copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = tu_slurp(from, &n, 0);
    tu_spit(to, b, n);
    free(b);
}

void tu_copy_db(const char *from, const char *to)
{
    static const char *const files[] = {"LOCK", "data.mdb", "lock.mdb", "quartz.log"};
    tu_rmtree(to);
    if (mkdir(to, 0755) != 0) fail_msg("mkdir %s: %s", to, strerror(errno));
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/%s", from, files[i]);
        snprintf(b, sizeof b, "%s/%s", to, files[i]);
        size_t n;
        unsigned char *buf = tu_slurp(a, &n, 1);
        if (!buf) continue;
        tu_spit(b, buf, n);
        free(buf);
    }
}
