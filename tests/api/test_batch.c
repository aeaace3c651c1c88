/*
 * test_batch.c - the batch contract of quartz.h: the ids of a batch are
 * checked under the write locks of those ids, held to the batch's end, so
 * another thread's insert of one of its ids either comes first (and the
 * whole batch fails with QZ_EEXISTS, inserting nothing) or waits for the
 * batch (and then fails with QZ_EEXISTS itself). A half-applied batch is
 * never possible for such a conflict.
 *
 * Also: a batch whose checks fail changes nothing (duplicate id inside,
 * wrong dimension in a late row, NaN in a late row, id already present), and
 * upsert batches replace.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define DIM 8
#define N 512

typedef struct race {
    qz_db *db;
    const float *x;
    uint64_t id;
    atomic_int go;
    unsigned delay_us;
    int rc;
} race;

static void *racer(void *arg)
{
    race *r = arg;
    while (!atomic_load(&r->go)) {
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do clock_gettime(CLOCK_MONOTONIC, &t1);
    while ((t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000 < (long)r->delay_us);
    r->rc = qz_db_insert(r->db, r->id, r->x, DIM, NULL, 0);
    return NULL;
}

static void test_concurrent_insert_of_a_batch_id(void **state)
{
    (void)state;
    float *x = tu_dataset(N, DIM, 4, 3);
    uint64_t ids[N];
    int batch_won = 0, racer_won = 0;
    for (int round = 0; round < 60; round++) {
        qz_db *db = tu_open_mem(DIM, QZ_METRIC_L2, 16, 64);
        uint64_t base = (uint64_t)round * 100000;
        for (size_t i = 0; i < N; i++) ids[i] = base + i;
        race r = {db, x, base + (uint64_t)(round * 37 % N), 0, (unsigned)(round % 20) * 150, 0};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, racer, &r), 0);
        atomic_store(&r.go, 1);
        int rc = qz_db_insert_batch(db, N, ids, x, DIM, NULL, NULL, 0);
        pthread_join(t, NULL);
        qz_stats st = {.struct_size = sizeof st};
        TU_OK(qz_db_stats(db, &st));
        if (rc == QZ_OK) {
            /* the batch came first: all of it is in, the racer was refused */
            assert_int_equal(r.rc, QZ_EEXISTS);
            assert_int_equal(st.count, N);
            batch_won++;
        } else {
            /* the racer came first: the batch inserted nothing */
            if (rc != QZ_EEXISTS) fail_msg("batch failed with %s: %s", qz_strerror(rc), qz_errmsg());
            TU_OK(r.rc);
            if (st.count != 1) fail_msg("a refused batch left %llu vectors (half-applied)", (unsigned long long)st.count);
            racer_won++;
        }
        TU_OK(qz_db_check(db));
        TU_OK(qz_db_close(db));
    }
    print_message("batch first %d times, the other insert first %d times\n", batch_won, racer_won);
    free(x);
}

static void test_failed_checks_change_nothing(void **state)
{
    (void)state;
    float *x = tu_dataset(N, DIM, 4, 4);
    uint64_t ids[N];
    for (size_t i = 0; i < N; i++) ids[i] = i;
    qz_db *db = tu_open_mem(DIM, QZ_METRIC_L2, 16, 64);
    TU_OK(qz_db_insert(db, 400, x, DIM, "m", 1));

    /* an id already present (row 400) */
    assert_int_equal(qz_db_insert_batch(db, N, ids, x, DIM, NULL, NULL, 0), QZ_EEXISTS);
    assert_non_null(strstr(qz_errmsg(), "row 400"));
    /* a duplicate inside the batch */
    uint64_t dup[N];
    memcpy(dup, ids, sizeof dup);
    dup[300] = 7;
    dup[400] = 100000;
    assert_int_equal(qz_db_insert_batch(db, N, dup, x, DIM, NULL, NULL, 0), QZ_EEXISTS);
    /* a NaN in the last row */
    float *bad = malloc(sizeof(float) * N * DIM);
    memcpy(bad, x, sizeof(float) * N * DIM);
    bad[(N - 1) * DIM + 3] = __builtin_nanf("");
    dup[400] = 100000;
    dup[300] = 300;
    assert_int_equal(qz_db_insert_batch(db, N, dup, bad, DIM, NULL, NULL, 0), QZ_ENONFINITE);
    assert_non_null(strstr(qz_errmsg(), "row 511"));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, 1);

    /* an upsert batch replaces id 400 and adds the rest */
    const void *metas[N];
    size_t lens[N];
    for (size_t i = 0; i < N; i++) metas[i] = "batch", lens[i] = 5;
    TU_OK(qz_db_insert_batch(db, N, ids, x, DIM, metas, lens, QZ_BATCH_UPSERT));
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, N);
    char m[16];
    size_t ml = 0;
    TU_OK(qz_db_get(db, 400, NULL, 0, m, sizeof m, &ml));
    assert_int_equal(ml, 5);
    assert_memory_equal(m, "batch", 5);
    TU_OK(qz_db_check(db));
    TU_OK(qz_db_close(db));
    free(bad);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_insert_of_a_batch_id),
        cmocka_unit_test(test_failed_checks_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
