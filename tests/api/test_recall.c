/*
 * test_recall.c - recall@10 against a brute-force oracle on fixed-seed data,
 * for every metric and stored element type (the optional ninth column,
 * f32 when absent), checked against the floors in bench/baseline/recall.csv.
 * The build is single-threaded so the graph, and so the recall, is the same
 * on every run: any drop is a real regression.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define NQ 200
#define K 10

static uint32_t metric_of(const char *s)
{
    if (!strcmp(s, "cosine")) return QZ_METRIC_COSINE;
    if (!strcmp(s, "l2")) return QZ_METRIC_L2;
    if (!strcmp(s, "ip")) return QZ_METRIC_IP;
    if (!strcmp(s, "hamming")) return QZ_METRIC_HAMMING;
    fail_msg("unknown metric %s in recall.csv", s);
    return 0;
}

/* Tie-aware: a result counts when its exact distance is within the 10th
 * true distance (Hamming has many ties). */
static uint32_t dtype_of(const char *s)
{
    if (!strcmp(s, "f32")) return QZ_DTYPE_F32;
    if (!strcmp(s, "f16")) return QZ_DTYPE_F16;
    if (!strcmp(s, "int8")) return QZ_DTYPE_INT8;
    if (!strcmp(s, "binary")) return QZ_DTYPE_BINARY;
    fail_msg("unknown dtype %s in recall.csv", s);
    return 0;
}

static double measure(uint32_t metric, uint32_t dtype, size_t n, size_t dim, size_t clusters, uint32_t M,
                      uint32_t efc, uint32_t ef)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = (uint32_t)dim;
    o.metric = metric;
    o.dtype = dtype;
    o.M = M;
    o.ef_construction = efc;
    o.threads = 1;
    qz_db *db;
    TU_OK(qz_db_open(NULL, &o, &db));
    float *x = tu_dataset(n, dim, clusters, 1234), *qs = tu_dataset(NQ, dim, clusters, 99);
    if (metric == QZ_METRIC_IP) /* inner product: vectors of different lengths */
        for (size_t i = 0; i < n * dim; i++) x[i] *= 0.05f;
    uint64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    TU_OK(qz_db_insert_batch(db, n, ids, x, dim, NULL, NULL, 0));
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = ef;
    size_t good = 0;
    for (size_t q = 0; q < NQ; q++) {
        uint64_t truth[K], got[K];
        double td[K];
        float d[K];
        size_t nt = tu_brute_knn(x, n, dim, qs + q * dim, metric, K, NULL, truth, td), ng;
        TU_OK(qz_db_search(db, qs + q * dim, dim, K, &sp, got, d, &ng));
        assert_int_equal(ng, nt);
        for (size_t i = 0; i < ng; i++)
            good += tu_distance(x + got[i] * dim, qs + q * dim, dim, metric) <= td[K - 1] + 1e-5;
    }
    free(x), free(qs), free(ids);
    qz_db_close(db);
    return (double)good / (NQ * K);
}

static void recall_at_10_stays_above_committed_floors(void **state)
{
    (void)state;
    char path[4096];
    const char *src = getenv("QZ_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/bench/baseline/recall.csv", src ? src : ".");
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    char line[512], m[32], dt[32];
    int rows = 0, failed = 0;
    while (fgets(line, sizeof line, f)) {
        size_t n, dim, cl;
        unsigned M, efc, ef;
        double floor_;
        int got = line[0] == '#' ? 0
                                 : sscanf(line, "%31[^,],%zu,%zu,%zu,%u,%u,%u,%lf,%31[a-z0-9]", m, &n, &dim, &cl, &M,
                                          &efc, &ef, &floor_, dt);
        if (got < 8) continue;
        if (got == 8) strcpy(dt, "-");
        /* no ninth column: the default dtype (f32, bits under Hamming) */
        double r = measure(metric_of(m), got == 8 ? 0 : dtype_of(dt), n, dim, cl, M, efc, ef);
        print_message("%-8s %-6s n=%zu dim=%zu M=%u efc=%u ef=%u: recall@10 %.4f (floor %.3f)\n", m, dt, n, dim, M,
                      efc, ef, r, floor_);
        if (r < floor_) failed++;
        rows++;
    }
    fclose(f);
    assert_true(rows >= 4);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(recall_at_10_stays_above_committed_floors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
