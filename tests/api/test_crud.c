/* test_crud.c - insert, get, upsert, metadata, growth, metrics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void search_on_empty_db_returns_zero_hits(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(8, QZ_METRIC_L2, 8, 16);
    float q[8] = {1};
    uint64_t id;
    size_t n = 99;
    TU_OK(qz_db_search(db, q, 8, 5, NULL, &id, NULL, &n));
    assert_int_equal(n, 0);
    qz_db_close(db);
}

static void inserted_vector_is_found_at_once_and_get_returns_it(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(8, QZ_METRIC_L2, 8, 16);
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, got[8];
    TU_OK(qz_db_insert(db, 42, v, 8, "{\"a\":1}", 7));
    uint64_t id;
    float d;
    size_t n;
    TU_OK(qz_db_search(db, v, 8, 1, NULL, &id, &d, &n));
    assert_int_equal(n, 1);
    assert_int_equal(id, 42);
    assert_true(d == 0.0f);
    char meta[16];
    size_t len;
    TU_OK(qz_db_get(db, 42, got, 8, meta, sizeof meta, &len));
    assert_memory_equal(got, v, sizeof v);
    assert_int_equal(len, 7);
    assert_memory_equal(meta, "{\"a\":1}", 7);
    assert_int_equal(qz_db_contains(db, 42), 1);
    qz_db_close(db);
}

static void metadata_of_64_kib_round_trips(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(4, QZ_METRIC_IP, 8, 16);
    size_t big = 64 * 1024 + 3;
    char *m = malloc(big), *back = malloc(big);
    for (size_t i = 0; i < big; i++) m[i] = (char)('a' + i % 26);
    float v[4] = {1, 0, 0, 0};
    TU_OK(qz_db_insert(db, 1, v, 4, m, big));
    size_t len;
    TU_OK(qz_db_get(db, 1, NULL, 0, back, big, &len));
    assert_int_equal(len, big);
    assert_memory_equal(m, back, big);
    free(m);
    free(back);
    qz_db_close(db);
}

static void upsert_replaces_vector_and_metadata(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(4, QZ_METRIC_L2, 8, 16);
    float a[4] = {1, 0, 0, 0}, b[4] = {0, 0, 0, 9}, got[4];
    TU_OK(qz_db_upsert(db, 3, a, 4, "old", 3)); /* upsert of a new id inserts */
    TU_OK(qz_db_insert(db, 4, a, 4, NULL, 0));
    TU_OK(qz_db_upsert(db, 3, b, 4, "newer", 5));
    char meta[8];
    size_t len;
    TU_OK(qz_db_get(db, 3, got, 4, meta, sizeof meta, &len));
    assert_memory_equal(got, b, sizeof b);
    assert_int_equal(len, 5);
    uint64_t ids[4];
    float d[4];
    size_t n;
    TU_OK(qz_db_search(db, b, 4, 4, NULL, ids, d, &n));
    assert_int_equal(n, 2); /* id 3 once, id 4 */
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 4);
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, 2);
    TU_OK(qz_db_upsert(db, 4, a, 4, NULL, 0)); /* removes metadata */
    TU_OK(qz_db_get(db, 4, NULL, 0, meta, sizeof meta, &len));
    assert_int_equal(len, 0);
    TU_OK(qz_db_check(db));
    qz_db_close(db);
}

static void index_grows_past_initial_capacity(void **state)
{
    (void)state;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = 12;
    o.metric = QZ_METRIC_L2;
    o.initial_capacity = 10;
    o.M = 8;
    o.ef_construction = 32;
    qz_db *db;
    TU_OK(qz_db_open(NULL, &o, &db));
    float *x = tu_dataset(3000, 12, 0, 5);
    for (uint64_t i = 0; i < 3000; i++) TU_OK(qz_db_insert(db, i * 7, x + i * 12, 12, NULL, 0));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, 3000);
    assert_true(st.capacity >= 3000);
    assert_true(st.memory_bytes > 3000 * 12 * sizeof(float));
    for (uint64_t i = 0; i < 3000; i += 97) {
        uint64_t id;
        size_t n;
        TU_OK(qz_db_search(db, x + i * 12, 12, 1, NULL, &id, NULL, &n));
        assert_int_equal(id, i * 7);
    }
    TU_OK(qz_db_check(db));
    free(x);
    qz_db_close(db);
}

static void cosine_get_returns_unit_vector_and_distance_is_one_minus_cos(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(2, QZ_METRIC_COSINE, 8, 16);
    float a[2] = {3, 4}, b[2] = {-4, 3}, got[2];
    TU_OK(qz_db_insert(db, 1, a, 2, NULL, 0));
    TU_OK(qz_db_insert(db, 2, b, 2, NULL, 0));
    TU_OK(qz_db_get(db, 1, got, 2, NULL, 0, NULL));
    assert_float_equal(got[0], 0.6f, 1e-6);
    assert_float_equal(got[1], 0.8f, 1e-6);
    float q[2] = {6, 8};
    uint64_t ids[2];
    float d[2];
    size_t n;
    TU_OK(qz_db_search(db, q, 2, 2, NULL, ids, d, &n));
    assert_int_equal(ids[0], 1);
    assert_float_equal(d[0], 0.0f, 1e-6);
    assert_float_equal(d[1], 1.0f, 1e-6); /* orthogonal */
    qz_db_close(db);
}

static void l2_distance_is_squared_euclidean_and_ip_is_one_minus_dot(void **state)
{
    (void)state;
    qz_db *l2 = tu_open_mem(3, QZ_METRIC_L2, 8, 16), *ip = tu_open_mem(3, QZ_METRIC_IP, 8, 16);
    float a[3] = {1, 2, 3}, q[3] = {2, 4, 6};
    TU_OK(qz_db_insert(l2, 1, a, 3, NULL, 0));
    TU_OK(qz_db_insert(ip, 1, a, 3, NULL, 0));
    uint64_t id;
    float d;
    size_t n;
    TU_OK(qz_db_search(l2, q, 3, 1, NULL, &id, &d, &n));
    assert_float_equal(d, 14.0f, 1e-5);
    TU_OK(qz_db_search(ip, q, 3, 1, NULL, &id, &d, &n));
    assert_float_equal(d, 1.0f - 28.0f, 1e-5);
    qz_db_close(l2);
    qz_db_close(ip);
}

static void hamming_counts_differing_sign_bits(void **state)
{
    (void)state;
    enum { D = 77 };
    qz_db *db = tu_open_mem(D, QZ_METRIC_HAMMING, 8, 16);
    float a[D], q[D], got[D];
    for (int i = 0; i < D; i++) a[i] = q[i] = (i % 3) ? 1.0f : -1.0f;
    q[0] = 1.0f;  /* differs */
    q[76] = -q[76]; /* differs, in the last partial byte */
    TU_OK(qz_db_insert(db, 9, a, D, NULL, 0));
    uint64_t id;
    float d;
    size_t n;
    TU_OK(qz_db_search(db, q, D, 1, NULL, &id, &d, &n));
    assert_int_equal(id, 9);
    assert_float_equal(d, 2.0f, 0);
    TU_OK(qz_db_get(db, 9, got, D, NULL, 0, NULL));
    for (int i = 0; i < D; i++) assert_float_equal(got[i], a[i] > 0 ? 1.0f : 0.0f, 0);
    qz_db_close(db);
}

static void ids_use_the_full_64_bit_range(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(2, QZ_METRIC_L2, 8, 16);
    float a[2] = {1, 1}, b[2] = {5, 5};
    TU_OK(qz_db_insert(db, UINT64_MAX, a, 2, NULL, 0));
    TU_OK(qz_db_insert(db, 0, b, 2, NULL, 0));
    uint64_t id;
    size_t n;
    TU_OK(qz_db_search(db, a, 2, 1, NULL, &id, NULL, &n));
    assert_true(id == UINT64_MAX);
    TU_OK(qz_db_delete(db, UINT64_MAX));
    TU_OK(qz_db_search(db, a, 2, 1, NULL, &id, NULL, &n));
    assert_int_equal(id, 0);
    qz_db_close(db);
}

static void errmsg_is_cleared_by_a_successful_call(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(2, QZ_METRIC_L2, 8, 16);
    assert_int_equal(qz_db_delete(db, 5), QZ_ENOTFOUND);
    assert_true(strlen(qz_errmsg()) > 0);
    float a[2] = {1, 1};
    TU_OK(qz_db_insert(db, 5, a, 2, NULL, 0));
    assert_string_equal(qz_errmsg(), "");
    qz_db_close(db);
}

static void every_status_has_its_own_text(void **state)
{
    (void)state;
    for (int a = QZ_EUNSUPPORTED; a <= 0; a++) {
        assert_string_not_equal(qz_strerror(a), "unknown error");
        for (int b = a + 1; b <= 0; b++) assert_string_not_equal(qz_strerror(a), qz_strerror(b));
    }
    assert_string_equal(qz_strerror(-1000), "unknown error");
    assert_string_equal(qz_strerror(5), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(search_on_empty_db_returns_zero_hits),
        cmocka_unit_test(inserted_vector_is_found_at_once_and_get_returns_it),
        cmocka_unit_test(metadata_of_64_kib_round_trips),
        cmocka_unit_test(upsert_replaces_vector_and_metadata),
        cmocka_unit_test(index_grows_past_initial_capacity),
        cmocka_unit_test(cosine_get_returns_unit_vector_and_distance_is_one_minus_cos),
        cmocka_unit_test(l2_distance_is_squared_euclidean_and_ip_is_one_minus_dot),
        cmocka_unit_test(hamming_counts_differing_sign_bits),
        cmocka_unit_test(ids_use_the_full_64_bit_range),
        cmocka_unit_test(errmsg_is_cleared_by_a_successful_call),
        cmocka_unit_test(every_status_has_its_own_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
