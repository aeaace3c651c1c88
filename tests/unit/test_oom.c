/*
 * test_oom.c - out-of-memory sweep (SQLite's test_malloc idea): make the
 * library's allocation number N fail, for N = 0, 1, 2, ... until the
 * operation succeeds. Every failing run must return QZ_ENOMEM (never crash
 * or leak: the ASan build checks that), and leave the database consistent,
 * answering as before.
 */
#include <stdlib.h>
#include <string.h>

#include "quartz/sys/storage.h"
#include "storage/storage.h"
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

/* The durable path: the journal (no log: no background thread, so every
 * allocation is made by this thread) over the in-memory backend, so the
 * sweep reaches lib/wal and lib/storage too. For each allocation N a fresh
 * database gets one write whose allocation N fails. Either the write
 * changed nothing and the handle works on, or it had already been applied
 * when making it durable failed: then the handle refuses every later write
 * (the failure sticks) and a reopen shows the write all or nothing. */
static qz_open_options durable_opts(void)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.durability = QZ_DURABILITY_SYNC;
    o.threads = 1;
    return o;
}

static int durable_op(qz_db *db, int what)
{
    float v[DIM] = {1, 2, 3, 4, 5, 6, 7, 8};
    switch (what) {
    case 0: return qz_db_insert(db, 7, v, DIM, "meta", 4);
    case 1: return qz_kv_put(db, "k", 1, "value", 5);
    case 2: {
        qz_txn *t = NULL;
        int rc = qz_txn_begin(db, &t);
        if (rc == QZ_OK) rc = qz_txn_upsert(t, 7, v, DIM, NULL, 0);
        if (rc == QZ_OK) rc = qz_txn_kv_put(t, "k", 1, "value", 5);
        if (rc == QZ_OK) return qz_txn_commit(t);
        qz_txn_abort(t);
        return rc;
    }
    default: return qz_db_delete(db, 1);
    }
}

/* 1 if the op's effect is visible, 0 if not; fails on a half. */
static int op_visible(qz_db *db, int what)
{
    char b[8];
    size_t bl = 0;
    int has7 = qz_db_contains(db, 7) == 1, hask = qz_kv_get(db, "k", 1, b, sizeof b, &bl) == QZ_OK;
    switch (what) {
    case 0: return has7;
    case 1: return hask;
    case 2:
        if (has7 != hask) fail_msg("a transaction is half visible (vector %d, key %d)", has7, hask);
        return has7;
    default: return qz_db_contains(db, 1) == 0;
    }
}

static void durable_writes_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    qz_open_options o = durable_opts();
    float v[DIM] = {8, 7, 6, 5, 4, 3, 2, 1};
    long stuck = 0, clean = 0;
    for (int what = 0; what < 4; what++) {
        int rc = QZ_ENOMEM;
        for (long n = 0; rc == QZ_ENOMEM && n < 5000; n++) {
            qz_storage *st;
            TU_OK(qz__storage_mem_open(&st));
            qz_db *db = NULL;
            TU_OK(qz_db_open_storage(st, &o, &db));
            TU_OK(qz_db_insert(db, 1, v, DIM, NULL, 0));
            qz__alloc_fail_after(n);
            rc = durable_op(db, what);
            qz__alloc_fail_after(-1);
            if (rc != QZ_OK && rc != QZ_ENOMEM) fail_msg("operation %d failed with %s: %s", what, qz_strerror(rc), qz_errmsg());
            if (rc == QZ_ENOMEM && qz_db_flush(db) == QZ_OK) {
                /* refused before the point of no return: nothing changed */
                if (op_visible(db, what)) fail_msg("op %d failed at allocation %ld (%s) but is visible", what, n, qz_errmsg());
                TU_OK(qz_db_check(db));
                clean++;
            } else if (rc == QZ_ENOMEM) {
                /* applied, durability failed: the handle refuses writes */
                assert_int_equal(qz_db_insert(db, 99, v, DIM, NULL, 0), QZ_ENOMEM);
                stuck++;
            }
            (void)qz_db_close(db);
            TU_OK(qz_db_open_storage(st, &o, &db));
            int vis = op_visible(db, what);
            if (rc == QZ_OK) assert_int_equal(vis, 1);
            assert_int_equal(qz_db_contains(db, 99), 0);
            TU_OK(qz_db_check(db));
            TU_OK(qz_db_close(db));
            st->close(st);
        }
        TU_OK(rc);
    }
    print_message("durable writes under allocation failure: %ld refused cleanly, %ld failed after being applied "
                  "(the handle then refused writes; a reopen showed them all or nothing)\n",
                  clean, stuck);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(insert_fails_cleanly_at_every_allocation),
        cmocka_unit_test(search_fails_cleanly_at_every_allocation),
        cmocka_unit_test(batch_and_delete_fail_cleanly_at_every_allocation),
        cmocka_unit_test(durable_writes_fail_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
