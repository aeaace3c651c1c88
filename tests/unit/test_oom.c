/*
 * test_oom.c - out-of-memory sweep (SQLite's test_malloc idea): make the
 * library's allocation number N fail, for N = 0, 1, 2, ... until the
 * operation succeeds. Every failing run must return QZ_ENOMEM (never crash
 * or leak: the ASan build checks that), and leave the database consistent,
 * answering as before.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "util/alloc.h"

#define DIM 8

static qz_db *fresh(void)
{
    qz_db *db = tu_open_mem(DIM, QZ_METRIC_L2, 4, 16);
    float *x = tu_dataset(60, DIM, 0, 3);
    for (uint64_t i = 0; i < 60; i++) TU_OK(qz_db_insert(db, i, x + i * DIM, DIM, "meta", 4));
    free(x);
    return db;
}

static void insert_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    qz_db *db = fresh();
    float v[DIM] = {1, 2, 3, 4, 5, 6, 7, 8};
    int rc = QZ_ENOMEM;
    long n;
    for (n = 0; rc == QZ_ENOMEM && n < 1000; n++) {
        qz__alloc_fail_after(n);
        rc = qz_db_insert(db, 1000, v, DIM, "x", 1);
        qz__alloc_fail_after(-1);
        if (rc == QZ_ENOMEM) {
            assert_int_equal(qz_db_contains(db, 1000), 0);
            TU_OK(qz_db_check(db));
        }
    }
    TU_OK(rc);
    print_message("insert succeeded once %ld allocations were allowed\n", n - 1);
    uint64_t id;
    size_t found;
    TU_OK(qz_db_search(db, v, DIM, 1, NULL, &id, NULL, &found));
    assert_int_equal(id, 1000);
    qz_db_close(db);
}

static void search_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    qz_db *db = fresh();
    float q[DIM] = {0.5f};
    uint64_t ids[200];
    size_t found;
    int rc = QZ_ENOMEM;
    long n;
    for (n = 0; rc == QZ_ENOMEM && n < 1000; n++) {
        qz__alloc_fail_after(n);
        qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
        sp.ef = 500; /* bigger than any pooled context: forces allocations */
        rc = qz_db_search(db, q, DIM, 100, &sp, ids, NULL, &found);
        qz__alloc_fail_after(-1);
    }
    TU_OK(rc);
    assert_int_equal(found, 60);
    TU_OK(qz_db_check(db));
    qz_db_close(db);
}

static void batch_and_delete_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    qz_db *db = fresh();
    float *x = tu_dataset(40, DIM, 0, 9);
    uint64_t ids[40];
    for (int i = 0; i < 40; i++) ids[i] = 5000 + (uint64_t)i;
    int rc = QZ_ENOMEM;
    for (long n = 0; rc == QZ_ENOMEM && n < 5000; n++) {
        qz__alloc_fail_after(n);
        rc = qz_db_insert_batch(db, 40, ids, x, DIM, NULL, NULL, QZ_BATCH_UPSERT);
        qz__alloc_fail_after(-1);
        TU_OK(qz_db_check(db));
    }
    TU_OK(rc);
    for (int i = 0; i < 40; i++) assert_int_equal(qz_db_contains(db, ids[i]), 1);
    rc = QZ_ENOMEM;
    for (long n = 0; rc == QZ_ENOMEM && n < 1000; n++) {
        qz__alloc_fail_after(n);
        rc = qz_db_compact(db);
        qz__alloc_fail_after(-1);
    }
    TU_OK(rc);
    TU_OK(qz_db_check(db));
    free(x);
    qz_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(insert_fails_cleanly_at_every_allocation),
        cmocka_unit_test(search_fails_cleanly_at_every_allocation),
        cmocka_unit_test(batch_and_delete_fail_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
