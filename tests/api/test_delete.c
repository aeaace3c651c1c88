/*
 * test_delete.c - deletes leave results at once, slots are reused, and the
 * graph stays navigable with half the set deleted.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define DIM 24
#define N 4000
#define NQ 200

static double recall_alive(qz_db *db, const float *x, const unsigned char *alive, const float *qs, size_t ef)
{
    size_t hits = 0, want = 0;
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = (uint32_t)ef;
    for (size_t q = 0; q < NQ; q++) {
        uint64_t truth[10], got[10];
        double td[10];
        float d[10];
        size_t nt = tu_brute_knn(x, N, DIM, qs + q * DIM, QZ_METRIC_L2, 10, alive, truth, td);
        size_t n;
        TU_OK(qz_db_search(db, qs + q * DIM, DIM, 10, &sp, got, d, &n));
        assert_int_equal(n, nt); /* k live results whenever k are live */
        for (size_t i = 0; i < n; i++) {
            assert_true(alive[got[i]]);
            for (size_t j = 0; j < nt; j++)
                if (got[i] == truth[j]) {
                    hits++;
                    break;
                }
        }
        want += nt;
    }
    return (double)hits / (double)want;
}

static void half_deleted_set_still_returns_k_live_results_with_high_recall(void **state)
{
    (void)state;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.M = 12;
    o.ef_construction = 100;
    o.threads = 1; /* one graph, the same on every run */
    qz_db *db;
    TU_OK(qz_db_open(NULL, &o, &db));
    float *x = tu_dataset(N, DIM, 20, 1), *qs = tu_dataset(NQ, DIM, 20, 2);
    uint64_t *ids = malloc(N * sizeof *ids);
    unsigned char *alive = malloc(N);
    for (size_t i = 0; i < N; i++) ids[i] = i, alive[i] = 1;
    TU_OK(qz_db_insert_batch(db, N, ids, x, DIM, NULL, NULL, 0));
    double r0 = recall_alive(db, x, alive, qs, 64);
    /* Delete every other vector, one call each: automatic repairs run in between. */
    for (size_t i = 0; i < N; i += 2) {
        TU_OK(qz_db_delete(db, i));
        alive[i] = 0;
    }
    TU_OK(qz_db_check(db));
    double r1 = recall_alive(db, x, alive, qs, 64);
    TU_OK(qz_db_compact(db));
    TU_OK(qz_db_check(db));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, N / 2);
    assert_int_equal(st.deleted, 0);
    double r2 = recall_alive(db, x, alive, qs, 64);
    print_message("recall@10 ef=64: full %.4f, half deleted %.4f, after compact %.4f\n", r0, r1, r2);
    assert_true(r0 >= 0.93);
    assert_true(r1 >= 0.93);
    assert_true(r2 >= 0.93);
    free(x), free(qs), free(ids), free(alive);
    qz_db_close(db);
}

static void deleted_id_is_never_returned_even_before_repair(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(DIM, QZ_METRIC_COSINE, 8, 64);
    float *x = tu_dataset(300, DIM, 0, 3);
    for (uint64_t i = 0; i < 300; i++) TU_OK(qz_db_insert(db, i, x + i * DIM, DIM, NULL, 0));
    for (uint64_t i = 0; i < 300; i += 3) TU_OK(qz_db_delete(db, i));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.deleted, 100); /* below the repair threshold: still in the graph */
    for (uint64_t i = 0; i < 300; i++) {
        uint64_t got[300];
        size_t n;
        TU_OK(qz_db_search(db, x + i * DIM, DIM, 300, NULL, got, NULL, &n));
        assert_int_equal(n, 200);
        for (size_t j = 0; j < n; j++) assert_true(got[j] % 3 != 0);
        if (i % 3) assert_int_equal(got[0], i);
    }
    free(x);
    qz_db_close(db);
}

static void slots_of_deleted_vectors_are_reused(void **state)
{
    (void)state;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.initial_capacity = 1000;
    o.M = 8;
    o.ef_construction = 40;
    qz_db *db;
    TU_OK(qz_db_open(NULL, &o, &db));
    float *x = tu_dataset(1000, DIM, 0, 4);
    for (int round = 0; round < 5; round++) {
        for (uint64_t i = 0; i < 1000; i++)
            TU_OK(qz_db_insert(db, (uint64_t)round * 1000 + i, x + i * DIM, DIM, "meta", 4));
        for (uint64_t i = 0; i < 1000; i++) TU_OK(qz_db_delete(db, (uint64_t)round * 1000 + i));
        TU_OK(qz_db_compact(db));
        TU_OK(qz_db_check(db));
    }
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, 0);
    assert_int_equal(st.capacity, 1000); /* never grew: every round reused the same slots */
    /* The emptied graph takes new vectors and finds them. */
    for (uint64_t i = 0; i < 50; i++) TU_OK(qz_db_insert(db, 90000 + i, x + i * DIM, DIM, NULL, 0));
    uint64_t id;
    size_t n;
    TU_OK(qz_db_search(db, x + 10 * DIM, DIM, 1, NULL, &id, NULL, &n));
    assert_int_equal(id, 90010);
    free(x);
    qz_db_close(db);
}

static void deleted_id_can_be_inserted_again(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(4, QZ_METRIC_L2, 8, 16);
    float a[4] = {1, 2, 3, 4}, b[4] = {4, 3, 2, 1}, got[4];
    TU_OK(qz_db_insert(db, 1, a, 4, NULL, 0));
    TU_OK(qz_db_delete(db, 1));
    assert_int_equal(qz_db_contains(db, 1), 0);
    TU_OK(qz_db_insert(db, 1, b, 4, NULL, 0));
    TU_OK(qz_db_get(db, 1, got, 4, NULL, 0, NULL));
    assert_memory_equal(got, b, sizeof b);
    uint64_t ids[4];
    size_t n;
    TU_OK(qz_db_search(db, a, 4, 4, NULL, ids, NULL, &n));
    assert_int_equal(n, 1);
    qz_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(half_deleted_set_still_returns_k_live_results_with_high_recall),
        cmocka_unit_test(deleted_id_is_never_returned_even_before_repair),
        cmocka_unit_test(slots_of_deleted_vectors_are_reused),
        cmocka_unit_test(deleted_id_can_be_inserted_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
