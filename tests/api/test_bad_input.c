/*
 * test_bad_input.c - every kind of bad argument gets its own code and
 * leaves the stored data exactly as it was.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define DIM 16
#define N 200

typedef struct fixture {
    qz_db *db;
    float *data;
    uint64_t before_ids[10];
    float before_d[10];
    size_t before_n;
} fixture;

static void snapshot(fixture *f)
{
    TU_OK(qz_db_search(f->db, f->data, DIM, 10, NULL, f->before_ids, f->before_d, &f->before_n));
}

/* The database answers exactly as before the bad call. */
static void assert_unchanged(fixture *f)
{
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(f->db, &st));
    assert_int_equal(st.count, N);
    assert_int_equal(st.deleted, 0);
    uint64_t ids[10];
    float d[10];
    size_t n;
    TU_OK(qz_db_search(f->db, f->data, DIM, 10, NULL, ids, d, &n));
    assert_int_equal(n, f->before_n);
    assert_memory_equal(ids, f->before_ids, n * sizeof *ids);
    TU_OK(qz_db_check(f->db));
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->db = tu_open_mem(DIM, QZ_METRIC_COSINE, 8, 32);
    f->data = tu_dataset(N, DIM, 4, 11);
    for (uint64_t i = 0; i < N; i++) TU_OK(qz_db_insert(f->db, i, f->data + i * DIM, DIM, "m", 1));
    snapshot(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    qz_db_close(f->db);
    free(f->data);
    free(f);
    return 0;
}

static void null_handle_is_einval_everywhere(void **state)
{
    fixture *f = *state;
    float v[DIM] = {1};
    uint64_t id;
    size_t n;
    assert_int_equal(qz_db_insert(NULL, 1, v, DIM, NULL, 0), QZ_EINVAL);
    assert_int_equal(qz_db_upsert(NULL, 1, v, DIM, NULL, 0), QZ_EINVAL);
    assert_int_equal(qz_db_delete(NULL, 1), QZ_EINVAL);
    assert_int_equal(qz_db_get(NULL, 1, v, DIM, NULL, 0, NULL), QZ_EINVAL);
    assert_int_equal(qz_db_search(NULL, v, DIM, 1, NULL, &id, NULL, &n), QZ_EINVAL);
    assert_int_equal(qz_db_insert_batch(NULL, 1, &id, v, DIM, NULL, NULL, 0), QZ_EINVAL);
    assert_int_equal(qz_db_contains(NULL, 1), QZ_EINVAL);
    assert_int_equal(qz_db_stats(NULL, NULL), QZ_EINVAL);
    assert_int_equal(qz_db_compact(NULL), QZ_EINVAL);
    assert_int_equal(qz_db_check(NULL), QZ_EINVAL);
    assert_int_equal(qz_db_set_param(NULL, QZ_PARAM_EF_SEARCH, 10), QZ_EINVAL);
    assert_unchanged(f);
}

static void null_buffers_are_einval(void **state)
{
    fixture *f = *state;
    float v[DIM] = {1};
    uint64_t id = 5;
    size_t n;
    assert_int_equal(qz_db_insert(f->db, 9999, NULL, DIM, NULL, 0), QZ_EINVAL);
    assert_int_equal(qz_db_insert(f->db, 9999, v, DIM, NULL, 3), QZ_EINVAL);
    assert_int_equal(qz_db_search(f->db, NULL, DIM, 1, NULL, &id, NULL, &n), QZ_EINVAL);
    assert_int_equal(qz_db_search(f->db, v, DIM, 1, NULL, NULL, NULL, &n), QZ_EINVAL);
    assert_int_equal(qz_db_search(f->db, v, DIM, 1, NULL, &id, NULL, NULL), QZ_EINVAL);
    assert_int_equal(qz_db_insert_batch(f->db, 1, NULL, v, DIM, NULL, NULL, 0), QZ_EINVAL);
    assert_int_equal(qz_db_insert_batch(f->db, 1, &id, NULL, DIM, NULL, NULL, 0), QZ_EINVAL);
    assert_unchanged(f);
}

static void wrong_dimension_is_edim_with_both_numbers_in_message(void **state)
{
    fixture *f = *state;
    float v[DIM + 1] = {1, 2};
    uint64_t id;
    size_t n;
    assert_int_equal(qz_db_insert(f->db, 9999, v, DIM - 1, NULL, 0), QZ_EDIM);
    assert_string_equal(qz_errmsg(), "vector has 15 dimensions, database expects 16");
    assert_int_equal(qz_db_upsert(f->db, 1, v, DIM + 1, NULL, 0), QZ_EDIM);
    assert_int_equal(qz_db_search(f->db, v, DIM + 1, 1, NULL, &id, NULL, &n), QZ_EDIM);
    assert_non_null(strstr(qz_errmsg(), "17 dimensions"));
    uint64_t ids[2] = {5000, 5001};
    float rows[2 * DIM] = {1, 1};
    assert_int_equal(qz_db_insert_batch(f->db, 2, ids, rows, DIM - 1, NULL, NULL, 0), QZ_EDIM);
    assert_unchanged(f);
}

static void nan_and_infinity_are_enonfinite_and_name_the_component(void **state)
{
    fixture *f = *state;
    float v[DIM];
    for (int i = 0; i < DIM; i++) v[i] = 1.0f;
    v[7] = NAN;
    uint64_t id;
    size_t n;
    assert_int_equal(qz_db_insert(f->db, 9999, v, DIM, NULL, 0), QZ_ENONFINITE);
    assert_non_null(strstr(qz_errmsg(), "component 7 is NaN"));
    v[7] = INFINITY;
    assert_int_equal(qz_db_upsert(f->db, 3, v, DIM, NULL, 0), QZ_ENONFINITE);
    assert_non_null(strstr(qz_errmsg(), "infinite"));
    v[7] = -INFINITY;
    assert_int_equal(qz_db_search(f->db, v, DIM, 3, NULL, &id, NULL, &n), QZ_ENONFINITE);
    assert_unchanged(f);
}

static void zero_vector_under_cosine_is_ezerovec(void **state)
{
    fixture *f = *state;
    float v[DIM] = {0};
    uint64_t id;
    size_t n;
    assert_int_equal(qz_db_insert(f->db, 9999, v, DIM, NULL, 0), QZ_EZEROVEC);
    assert_int_equal(qz_db_upsert(f->db, 4, v, DIM, NULL, 0), QZ_EZEROVEC);
    assert_int_equal(qz_db_search(f->db, v, DIM, 3, NULL, &id, NULL, &n), QZ_EZEROVEC);
    assert_unchanged(f);
}

static void zero_vector_is_fine_under_l2(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(4, QZ_METRIC_L2, 8, 16);
    float z[4] = {0};
    TU_OK(qz_db_insert(db, 1, z, 4, NULL, 0));
    qz_db_close(db);
}

static void k_zero_or_above_max_is_erange(void **state)
{
    fixture *f = *state;
    uint64_t ids[4];
    size_t n = 77;
    assert_int_equal(qz_db_search(f->db, f->data, DIM, 0, NULL, ids, NULL, &n), QZ_ERANGE);
    assert_int_equal(n, 0);
    assert_int_equal(qz_db_search(f->db, f->data, DIM, QZ_MAX_K + 1, NULL, ids, NULL, &n), QZ_ERANGE);
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = QZ_MAX_EF + 1;
    assert_int_equal(qz_db_search(f->db, f->data, DIM, 1, &sp, ids, NULL, &n), QZ_ERANGE);
    sp.struct_size = 0;
    sp.ef = 0;
    assert_int_equal(qz_db_search(f->db, f->data, DIM, 1, &sp, ids, NULL, &n), QZ_EVERSION);
    assert_unchanged(f);
}

static void k_above_live_count_returns_all_of_them(void **state)
{
    fixture *f = *state;
    uint64_t *ids = malloc(1000 * sizeof *ids);
    float *d = malloc(1000 * sizeof *d);
    size_t n;
    TU_OK(qz_db_search(f->db, f->data, DIM, 1000, NULL, ids, d, &n));
    assert_int_equal(n, N);
    for (size_t i = 1; i < n; i++) assert_true(d[i - 1] <= d[i]);
    free(ids);
    free(d);
}

static void duplicate_id_on_insert_is_eexists_and_keeps_old_vector(void **state)
{
    fixture *f = *state;
    float v[DIM];
    for (int i = 0; i < DIM; i++) v[i] = -1.0f;
    assert_int_equal(qz_db_insert(f->db, 5, v, DIM, "new", 3), QZ_EEXISTS);
    float got[DIM];
    char meta[8];
    size_t len;
    TU_OK(qz_db_get(f->db, 5, got, DIM, meta, sizeof meta, &len));
    assert_int_equal(len, 1);
    assert_int_equal(meta[0], 'm');
    assert_true(got[0] * f->data[5 * DIM] > 0); /* same sign: the old vector, normalised */
    assert_unchanged(f);
}

static void unknown_id_on_get_or_delete_is_enotfound(void **state)
{
    fixture *f = *state;
    float v[DIM];
    assert_int_equal(qz_db_get(f->db, 123456, v, DIM, NULL, 0, NULL), QZ_ENOTFOUND);
    assert_int_equal(qz_db_delete(f->db, 123456), QZ_ENOTFOUND);
    assert_non_null(strstr(qz_errmsg(), "123456"));
    assert_int_equal(qz_db_contains(f->db, 123456), 0);
    assert_unchanged(f);
}

static void batch_with_one_bad_row_inserts_nothing(void **state)
{
    fixture *f = *state;
    enum { B = 50 };
    float *rows = tu_dataset(B, DIM, 0, 99);
    uint64_t ids[B];
    for (int i = 0; i < B; i++) ids[i] = 10000 + (uint64_t)i;
    rows[37 * DIM + 3] = NAN;
    assert_int_equal(qz_db_insert_batch(f->db, B, ids, rows, DIM, NULL, NULL, 0), QZ_ENONFINITE);
    assert_non_null(strstr(qz_errmsg(), "row 37"));
    rows[37 * DIM + 3] = 0.5f;
    ids[40] = ids[12];
    assert_int_equal(qz_db_insert_batch(f->db, B, ids, rows, DIM, NULL, NULL, 0), QZ_EEXISTS);
    assert_non_null(strstr(qz_errmsg(), "rows 12 and 40"));
    ids[40] = 7; /* exists in the database */
    assert_int_equal(qz_db_insert_batch(f->db, B, ids, rows, DIM, NULL, NULL, 0), QZ_EEXISTS);
    ids[40] = 10040;
    const void *metas[B] = {0};
    size_t lens[B] = {0};
    lens[3] = 9; /* NULL pointer with a length */
    assert_int_equal(qz_db_insert_batch(f->db, B, ids, rows, DIM, metas, lens, 0), QZ_EINVAL);
    assert_int_equal(qz_db_insert_batch(f->db, B, ids, rows, DIM, NULL, NULL, 0x40), QZ_EINVAL);
    for (int i = 0; i < B; i++) assert_int_equal(qz_db_contains(f->db, ids[i]), 0);
    free(rows);
    assert_unchanged(f);
}

static void oversized_metadata_is_erange(void **state)
{
    fixture *f = *state;
    char dummy = 0;
    assert_int_equal(qz_db_insert(f->db, 9999, f->data, DIM, &dummy, (size_t)QZ_MAX_METADATA + 1), QZ_ERANGE);
    assert_unchanged(f);
}

static void small_get_buffers_are_etoosmall_and_report_size(void **state)
{
    fixture *f = *state;
    TU_OK(qz_db_upsert(f->db, 77, f->data + 77 * DIM, DIM, "hello world", 11));
    char meta[4];
    size_t len = 0;
    float v[DIM];
    assert_int_equal(qz_db_get(f->db, 77, NULL, 0, meta, sizeof meta, &len), QZ_ETOOSMALL);
    assert_int_equal(len, 11);
    assert_int_equal(qz_db_get(f->db, 77, v, DIM - 1, NULL, 0, NULL), QZ_ETOOSMALL);
    TU_OK(qz_db_upsert(f->db, 77, f->data + 77 * DIM, DIM, "m", 1)); /* as the fixture had it */
    TU_OK(qz_db_compact(f->db));
    snapshot(f);
    assert_unchanged(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(null_handle_is_einval_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(null_buffers_are_einval, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_dimension_is_edim_with_both_numbers_in_message, setup, teardown),
        cmocka_unit_test_setup_teardown(nan_and_infinity_are_enonfinite_and_name_the_component, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_vector_under_cosine_is_ezerovec, setup, teardown),
        cmocka_unit_test(zero_vector_is_fine_under_l2),
        cmocka_unit_test_setup_teardown(k_zero_or_above_max_is_erange, setup, teardown),
        cmocka_unit_test_setup_teardown(k_above_live_count_returns_all_of_them, setup, teardown),
        cmocka_unit_test_setup_teardown(duplicate_id_on_insert_is_eexists_and_keeps_old_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_id_on_get_or_delete_is_enotfound, setup, teardown),
        cmocka_unit_test_setup_teardown(batch_with_one_bad_row_inserts_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_metadata_is_erange, setup, teardown),
        cmocka_unit_test_setup_teardown(small_get_buffers_are_etoosmall_and_report_size, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
