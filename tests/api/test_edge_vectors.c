/*
 * test_edge_vectors.c - valid vectors at the ends of the float range.
 *
 * Every finite vector is valid (non-zero under cosine), however tiny or
 * huge its components. Such vectors must be stored finite (cosine: unit
 * length), pass qz_db_check, come back finite from get, and never poison
 * searches: every search returns k results with finite distances, sorted.
 *
 * Distances that do not fit in a float (L2 or inner product of components
 * near FLT_MAX) saturate at +-FLT_MAX, as documented in lib/index/hnsw.h;
 * this test checks that too, against a double-precision oracle.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define DIM 4
#define NORMAL 60

static const uint32_t metrics[] = {QZ_METRIC_L2, QZ_METRIC_COSINE, QZ_METRIC_IP, QZ_METRIC_HAMMING};
static const char *const metric_names[] = {"l2", "cosine", "ip", "hamming"};

static const float edge[][DIM] = {
    /* tiny: denormal components whose squares underflow in float */
    {3e-41f, 0, 0, 0},
    {0, 1e-45f, 0, 0},
    {1e-40f, -2e-41f, 0, 5e-39f},
    {-1e-44f, 1e-44f, -1e-44f, 1e-44f},
    {1e-38f, 1e-38f, 1e-38f, 1e-38f},
    /* huge: squares and products overflow in float */
    {1e38f, 0, 0, 0},
    {1e38f, 1e38f, 1e38f, 1e38f},
    {FLT_MAX, FLT_MAX, -FLT_MAX, FLT_MAX},
    {-FLT_MAX, -FLT_MAX, FLT_MAX, -FLT_MAX},
    {-3e38f, 2e38f, 0, 1},
    {0, 0, 0, -FLT_MAX},
    /* mixed scale within one vector */
    {1e38f, 1e-38f, 0, 1},
    {1e-30f, 1e30f, -1, 0},
    {3e-41f, 1e38f, -2e-45f, 7},
    {1e20f, 1, -1e20f, 1e-20f},
};
#define EDGE (sizeof edge / sizeof edge[0])

/* Exact distance in double, saturated the way the library documents. */
static double oracle(const float *a, const float *b, uint32_t metric)
{
    double d = tu_distance(a, b, DIM, metric);
    if (metric == QZ_METRIC_COSINE) { /* tu_distance's norms overflow nothing in double */
        if (d < 0) d = 0;
        return d;
    }
    if (d > FLT_MAX) return FLT_MAX;
    if (d < -FLT_MAX) return -FLT_MAX;
    return d;
}

/* How far a float computation may be from the oracle. */
static double slack(const float *a, const float *b, uint32_t metric, double exact)
{
    if (metric == QZ_METRIC_HAMMING) return 0;
    if (metric == QZ_METRIC_COSINE) return 1e-5;
    double s = 0;
    for (int i = 0; i < DIM; i++)
        s += metric == QZ_METRIC_L2 ? ((double)a[i] - b[i]) * ((double)a[i] - b[i]) : fabs((double)a[i] * b[i]);
    return 1e-5 * (1 + fabs(exact) + s);
}

static void edge_vectors_are_stored_finite_and_searchable_under_every_metric(void **state)
{
    (void)state;
    size_t n = EDGE + NORMAL;
    float *x = malloc(n * DIM * sizeof *x);
    memcpy(x, edge, sizeof edge);
    float *normal = tu_dataset(NORMAL, DIM, 3, 9);
    memcpy(x + EDGE * DIM, normal, NORMAL * DIM * sizeof *x);
    free(normal);

    for (size_t mi = 0; mi < 4; mi++) {
        uint32_t metric = metrics[mi];
        const char *mn = metric_names[mi];
        for (uint32_t M = 2; M <= 16; M *= 4) {
            qz_db *db = tu_open_mem(DIM, metric, M, 32);
            /* Edge vectors first, so they sit in the graph's core. */
            for (size_t i = 0; i < n; i++) {
                int rc = qz_db_insert(db, i, x + i * DIM, DIM, NULL, 0);
                if (rc != QZ_OK) fail_msg("%s: insert of row %zu: %s", mn, i, qz_errmsg());
            }
            int rc = qz_db_check(db);
            if (rc != QZ_OK) fail_msg("%s M %u: check: %s", mn, M, qz_errmsg());

            for (size_t i = 0; i < n; i++) {
                float got[DIM];
                TU_OK(qz_db_get(db, i, got, DIM, NULL, 0, NULL));
                double norm = 0;
                for (int j = 0; j < DIM; j++) {
                    if (!isfinite(got[j])) fail_msg("%s: get(%zu)[%d] is %g", mn, i, j, got[j]);
                    norm += (double)got[j] * got[j];
                }
                const float *in = x + i * DIM;
                if (metric == QZ_METRIC_COSINE) {
                    if (fabs(sqrt(norm) - 1) > 1e-6) fail_msg("%s: row %zu stored with norm %.9g", mn, i, sqrt(norm));
                    /* same direction: the largest input component stays the largest */
                    int big = 0;
                    for (int j = 1; j < DIM; j++)
                        if (fabsf(in[j]) > fabsf(in[big])) big = j;
                    assert_true(got[big] != 0 && (got[big] > 0) == (in[big] > 0));
                } else if (metric == QZ_METRIC_HAMMING) {
                    for (int j = 0; j < DIM; j++) assert_true(got[j] == (in[j] > 0 ? 1.0f : 0.0f));
                } else {
                    assert_memory_equal(got, in, sizeof got);
                }
            }

            size_t shorts = 0;
            for (size_t i = 0; i < n; i++) {
                const float *q = x + i * DIM;
                uint64_t ids[EDGE + NORMAL];
                float d[EDGE + NORMAL];
                size_t found;
                /* k = 5: five results, finite and sorted. */
                qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
                sp.ef = 32;
                TU_OK(qz_db_search(db, q, DIM, 5, &sp, ids, d, &found));
                if (found != 5) fail_msg("%s M %u: query row %zu returned %zu of 5", mn, M, i, found);
                for (size_t j = 0; j < found; j++) {
                    if (!isfinite(d[j])) fail_msg("%s M %u: query row %zu: distance %zu is %g", mn, M, i, j, d[j]);
                    if (j && d[j] < d[j - 1]) fail_msg("%s M %u: query row %zu: unsorted", mn, M, i);
                    double ex = oracle(x + ids[j] * DIM, q, metric);
                    if (fabs(ex - d[j]) > slack(x + ids[j] * DIM, q, metric, ex))
                        fail_msg("%s M %u: query row %zu, id %llu: distance %.9g, exact %.9g", mn, M, i,
                                 (unsigned long long)ids[j], d[j], ex);
                }
                /* Self-search: L2 and cosine find the row itself at the
                 * smallest distance (ties with identical stored vectors
                 * allowed), 0 up to rounding. Only at M = 8: an M = 2 graph
                 * has islands, and four bits give Hamming only 16 codes; for
                 * those the k = n search below finds the row. */
                if (M >= 8 && (metric == QZ_METRIC_L2 || metric == QZ_METRIC_COSINE)) {
                    double self = oracle(q, q, metric);
                    if (fabs(d[0] - self) > 1e-5)
                        fail_msg("%s M %u: query row %zu: nearest at %.9g (id %llu), itself at %.9g", mn, M, i, d[0],
                                 (unsigned long long)ids[0], self);
                    int in_top = 0;
                    for (size_t j = 0; j < found; j++) in_top |= ids[j] == i;
                    shorts += !in_top; /* five ties can hide it: checked with k = n below */
                }
                /* k = n: every vector, the row itself among them; the first
                 * one is the exact nearest (for IP too). */
                TU_OK(qz_db_search(db, q, DIM, n, &sp, ids, d, &found));
                if (found != n) fail_msg("%s M %u: query row %zu, k = n returned %zu of %zu", mn, M, i, found, n);
                int self_found = 0;
                double best = INFINITY;
                for (size_t j = 0; j < n; j++) {
                    double ex = oracle(x + j * DIM, q, metric);
                    if (ex < best) best = ex;
                }
                for (size_t j = 0; j < found; j++) {
                    if (!isfinite(d[j])) fail_msg("%s: distance %g", mn, d[j]);
                    if (j && d[j] < d[j - 1]) fail_msg("%s M %u: query row %zu: k = n unsorted", mn, M, i);
                    if (ids[j] == i) {
                        self_found = 1;
                        if (metric != QZ_METRIC_IP) assert_true(fabs(d[j] - d[0]) <= 1e-5);
                    }
                }
                assert_true(self_found);
                if (fabs(d[0] - best) > slack(x + ids[0] * DIM, q, metric, best))
                    fail_msg("%s M %u: query row %zu: nearest at %.9g, exact %.9g", mn, M, i, d[0], best);
            }
            if (shorts) print_message("%s M %u: %zu self-searches had the row tied beyond the top 5\n", mn, M, shorts);
            qz_db_close(db);
        }
    }
    free(x);
}

/* Edge queries against ordinary data: finite results, k of them. */
static void edge_queries_against_ordinary_vectors(void **state)
{
    (void)state;
    enum { N = 500 };
    float *x = tu_dataset(N, DIM, 5, 31);
    uint64_t *ids = malloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++) ids[i] = i;
    for (size_t mi = 0; mi < 4; mi++) {
        qz_db *db = tu_open_mem(DIM, metrics[mi], 8, 32);
        TU_OK(qz_db_insert_batch(db, N, ids, x, DIM, NULL, NULL, 0));
        for (size_t e = 0; e < EDGE; e++) {
            uint64_t got[10];
            float d[10];
            size_t found;
            TU_OK(qz_db_search(db, edge[e], DIM, 10, NULL, got, d, &found));
            if (found != 10) fail_msg("%s: edge query %zu returned %zu of 10", metric_names[mi], e, found);
            for (size_t j = 0; j < found; j++) {
                assert_true(isfinite(d[j]));
                if (j) assert_true(d[j] >= d[j - 1]);
            }
        }
        TU_OK(qz_db_check(db));
        qz_db_close(db);
    }
    free(ids);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(edge_vectors_are_stored_finite_and_searchable_under_every_metric),
        cmocka_unit_test(edge_queries_against_ordinary_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
