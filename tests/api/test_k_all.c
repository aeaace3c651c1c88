/*
 * test_k_all.c - "A k above the live count returns them all" (quartz.h),
 * and its filtered form: a k above the number of vectors passing the filter
 * returns every one of them. Small M makes graphs that a beam search cannot
 * cover (pruned back links leave islands), so this only holds because the
 * search finishes with an exact pass when the walk found fewer than k.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define DIM 8
#define MAXN 40

static const uint32_t metrics[] = {QZ_METRIC_L2, QZ_METRIC_COSINE, QZ_METRIC_IP, QZ_METRIC_HAMMING};
static const char *const metric_names[] = {"l2", "cosine", "ip", "hamming"};

static double tolerance(uint32_t metric, double d)
{
    if (metric == QZ_METRIC_HAMMING) return 0;
    return 1e-4 * (1 + fabs(d));
}

/* Search with k and check the result is exactly the rows with alive[i]
 * (ids = row numbers), sorted, each with its exact distance. */
static void expect_all(qz_db *db, const float *x, size_t n, const unsigned char *alive, const float *q,
                       uint32_t metric, size_t k, const qz_search_params *sp, const char *what)
{
    uint64_t ids[MAXN * 4 + 16];
    float d[MAXN * 4 + 16];
    size_t found = 0, want = 0;
    for (size_t i = 0; i < n; i++) want += alive[i];
    assert_true(k <= sizeof ids / sizeof ids[0]);
    TU_OK(qz_db_search(db, q, DIM, k, sp, ids, d, &found));
    if (found != want) fail_msg("%s: k %zu returned %zu of %zu live vectors", what, k, found, want);
    unsigned char seen[MAXN * 4] = {0};
    for (size_t i = 0; i < found; i++) {
        if (ids[i] >= n || !alive[ids[i]]) fail_msg("%s: id %llu is not live", what, (unsigned long long)ids[i]);
        if (seen[ids[i]]) fail_msg("%s: id %llu returned twice", what, (unsigned long long)ids[i]);
        seen[ids[i]] = 1;
        if (!isfinite(d[i])) fail_msg("%s: distance %zu is not finite", what, i);
        if (i && d[i] < d[i - 1]) fail_msg("%s: results not sorted at %zu", what, i);
        double exact = tu_distance(x + ids[i] * DIM, q, DIM, metric);
        if (fabs(exact - d[i]) > tolerance(metric, exact))
            fail_msg("%s: id %llu distance %g, exact %g", what, (unsigned long long)ids[i], d[i], exact);
    }
}

static void k_at_or_above_the_live_count_returns_every_live_vector(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 2, 3, 5, 8, 13, 26, 40};
    size_t dbs = 0;
    for (uint32_t M = 2; M <= 8; M++) {
        for (size_t mi = 0; mi < 4; mi++) {
            uint32_t metric = metrics[mi];
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                size_t n = sizes[si];
                char what[96];
                qz_db *db = tu_open_mem(DIM, metric, M, 16);
                float *x = tu_dataset(n, DIM, 3, 1000 + n * 7 + M);
                float *q = tu_dataset(4, DIM, 0, 55 + n);
                unsigned char alive[MAXN];
                for (size_t i = 0; i < n; i++) {
                    TU_OK(qz_db_insert(db, i, x + i * DIM, DIM, NULL, 0));
                    alive[i] = 1;
                }
                for (size_t j = 0; j < 4; j++) {
                    snprintf(what, sizeof what, "%s M %u n %zu query %zu", metric_names[mi], M, n, j);
                    expect_all(db, x, n, alive, q + j * DIM, metric, n, NULL, what);
                    expect_all(db, x, n, alive, q + j * DIM, metric, n + 9, NULL, what);
                    expect_all(db, x, n, alive, x + (j % n) * DIM, metric, 3 * n, NULL, what);
                }
                /* Delete every third: deleted nodes stay in the graph until a
                 * repair, and never count. */
                for (size_t i = 0; i < n; i += 3) {
                    TU_OK(qz_db_delete(db, i));
                    alive[i] = 0;
                }
                for (size_t j = 0; j < 4; j++) {
                    snprintf(what, sizeof what, "%s M %u n %zu after deletes, query %zu", metric_names[mi], M, n, j);
                    expect_all(db, x, n, alive, q + j * DIM, metric, n, NULL, what);
                }
                TU_OK(qz_db_compact(db));
                TU_OK(qz_db_check(db));
                for (size_t j = 0; j < 4; j++) {
                    snprintf(what, sizeof what, "%s M %u n %zu after compact, query %zu", metric_names[mi], M, n,
                             j);
                    expect_all(db, x, n, alive, q + j * DIM, metric, n + 1, NULL, what);
                }
                free(x);
                free(q);
                qz_db_close(db);
                dbs++;
            }
        }
    }
    print_message("%zu small databases: every search with k >= the live count returned all of them\n", dbs);
}

static int modulo_filter(uint64_t id, void *user) { return id % *(uint64_t *)user == 0; }

static void filtered_k_above_the_passing_count_returns_every_passing_vector(void **state)
{
    (void)state;
    enum { N = 2000 };
    for (size_t mi = 0; mi < 4; mi++) {
        uint32_t metric = metrics[mi];
        for (uint32_t M = 2; M <= 8; M += 3) {
            qz_db *db = tu_open_mem(DIM, metric, M, 32);
            float *x = tu_dataset(N, DIM, 12, 300 + M);
            uint64_t *ids = malloc(N * sizeof *ids);
            for (size_t i = 0; i < N; i++) ids[i] = i;
            TU_OK(qz_db_insert_batch(db, N, ids, x, DIM, NULL, NULL, 0));
            uint64_t mods[] = {11, 97, 400};
            for (size_t m = 0; m < 3; m++) {
                size_t passing = (N + mods[m] - 1) / mods[m];
                size_t k = passing + 50;
                qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
                sp.filter = modulo_filter;
                sp.filter_user = &mods[m];
                sp.ef = 16;
                uint64_t *got = malloc(k * sizeof *got);
                float *d = malloc(k * sizeof *d);
                unsigned char *seen = calloc(N, 1);
                for (size_t q = 0; q < 5; q++) {
                    const float *qv = x + (q * 389 % N) * DIM;
                    size_t n;
                    TU_OK(qz_db_search(db, qv, DIM, k, &sp, got, d, &n));
                    if (n != passing)
                        fail_msg("%s M %u id %% %llu: %zu of %zu passing vectors returned", metric_names[mi], M,
                                 (unsigned long long)mods[m], n, passing);
                    memset(seen, 0, N);
                    for (size_t i = 0; i < n; i++) {
                        assert_true(got[i] < N);
                        assert_int_equal(got[i] % mods[m], 0);
                        assert_false(seen[got[i]]);
                        seen[got[i]] = 1;
                        if (i) assert_true(d[i] >= d[i - 1]);
                        double exact = tu_distance(x + got[i] * DIM, qv, DIM, metric);
                        assert_true(fabs(exact - d[i]) <= tolerance(metric, exact));
                    }
                }
                free(got);
                free(d);
                free(seen);
            }
            free(x);
            free(ids);
            qz_db_close(db);
        }
    }
}

/* The exact pass only runs when the walk comes back short: an ordinary
 * search keeps its recall (and its speed: it never scans the whole set). */
static void ordinary_recall_is_unaffected(void **state)
{
    (void)state;
    enum { N = 3000, Q = 100, K = 10 };
    qz_db *db = tu_open_mem(DIM * 2, QZ_METRIC_L2, 16, 100);
    float *x = tu_dataset(N, DIM * 2, 20, 77);
    float *qs = tu_dataset(Q, DIM * 2, 20, 78);
    uint64_t *ids = malloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++) ids[i] = i;
    TU_OK(qz_db_insert_batch(db, N, ids, x, DIM * 2, NULL, NULL, 0));
    size_t hit = 0;
    for (size_t q = 0; q < Q; q++) {
        uint64_t got[K], want[K];
        double wd[K];
        float d[K];
        size_t n;
        qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
        sp.ef = 64;
        TU_OK(qz_db_search(db, qs + q * DIM * 2, DIM * 2, K, &sp, got, d, &n));
        assert_int_equal(n, K);
        tu_brute_knn(x, N, DIM * 2, qs + q * DIM * 2, QZ_METRIC_L2, K, NULL, want, wd);
        for (size_t i = 0; i < K; i++)
            for (size_t j = 0; j < K; j++) hit += got[i] == want[j];
    }
    double recall = (double)hit / (Q * K);
    print_message("recall@10 at ef 64: %.3f\n", recall);
    assert_true(recall >= 0.95);
    free(x);
    free(qs);
    free(ids);
    qz_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(k_at_or_above_the_live_count_returns_every_live_vector),
        cmocka_unit_test(filtered_k_above_the_passing_count_returns_every_passing_vector),
        cmocka_unit_test(ordinary_recall_is_unaffected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
