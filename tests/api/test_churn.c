/*
 * test_churn.c - re-embedding the same documents over and over (upserts of
 * a few ids) keeps the deleted count and the slot count bounded: every
 * write path, single upserts included, triggers the batched deletion
 * repair. Before that, 10,000 upserts over 10 ids left 9,990 deleted nodes
 * and the cost per upsert grew with them.
 */
#include <stdlib.h>

#include "testutil.h"

#define DIM 16

static void churn(qz_db *db, size_t ids, size_t upserts, uint64_t seed)
{
    float *x = tu_dataset(64, DIM, 4, seed);
    size_t max_deleted = 0;
    qz_stats st = {.struct_size = sizeof st};
    for (size_t i = 0; i < upserts; i++) {
        uint64_t id = i % ids;
        TU_OK(qz_db_upsert(db, id, x + (i % 64) * DIM, DIM, NULL, 0));
        if (i % 97 == 0) {
            TU_OK(qz_db_stats(db, &st));
            if (st.deleted > max_deleted) max_deleted = st.deleted;
        }
    }
    TU_OK(qz_db_stats(db, &st));
    print_message("%zu upserts over %zu ids: live %llu, deleted now %llu (max seen %zu), capacity %llu slots\n", upserts,
                  ids, (unsigned long long)st.count, (unsigned long long)st.deleted, max_deleted,
                  (unsigned long long)st.capacity);
    assert_int_equal(st.count, ids);
    /* the repair runs once 256 deleted nodes (or live/8) accumulated */
    size_t bound = (ids / 8 > 256 ? ids / 8 : 256) + 64;
    if (max_deleted > bound) fail_msg("deleted nodes reached %zu, bound %zu", max_deleted, bound);
    if (st.capacity > 2 * (ids + bound) + 1024) fail_msg("capacity grew to %llu slots", (unsigned long long)st.capacity);
    /* a last upsert gives every id a vector of its own: each must be found
     * by a search for it (own-vector recall, with room for HNSW's rare miss) */
    float *y = tu_dataset(ids, DIM, 0, seed + 100);
    for (size_t id = 0; id < ids; id++) TU_OK(qz_db_upsert(db, id, y + id * DIM, DIM, NULL, 0));
    size_t hits = 0;
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = 64;
    for (size_t id = 0; id < ids; id++) {
        uint64_t got[4];
        size_t n = 0;
        TU_OK(qz_db_search(db, y + id * DIM, DIM, 4, &sp, got, NULL, &n));
        for (size_t k = 0; k < n; k++) hits += got[k] == id;
    }
    print_message("own-vector hits after the churn: %zu of %zu\n", hits, ids);
    assert_true(hits * 100 >= ids * 98);
    free(y);
    TU_OK(qz_db_check(db));
    free(x);
}

static void test_memory_few_ids(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(DIM, QZ_METRIC_L2, 16, 64);
    churn(db, 10, 20000, 1);
    TU_OK(qz_db_close(db));
}

static void test_memory_many_ids(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(DIM, QZ_METRIC_COSINE, 16, 64);
    churn(db, 2000, 30000, 2);
    TU_OK(qz_db_close(db));
}

static void test_directory(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.durability = QZ_DURABILITY_BATCHED;
    qz_db *db;
    TU_OK(qz_db_open(dir, &o, &db));
    churn(db, 10, 10000, 3);
    TU_OK(qz_db_close(db));
    TU_OK(qz_db_open(dir, NULL, &db));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, 10);
    TU_OK(qz_db_check(db));
    TU_OK(qz_db_close(db));
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_few_ids),
        cmocka_unit_test(test_memory_many_ids),
        cmocka_unit_test(test_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
