/* test_open_close.c - opening, options structs, versions, close. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void open_memory_database_with_defaults(void **state)
{
    (void)state;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = 8;
    qz_db *db = NULL;
    TU_OK(qz_db_open(NULL, &o, &db));
    assert_non_null(db);
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.dimensions, 8);
    assert_int_equal(st.metric, QZ_METRIC_COSINE);
    assert_int_equal(st.M, 16);
    assert_int_equal(st.ef_construction, 200);
    assert_int_equal(st.ef_search, 64);
    assert_int_equal(st.count, 0);
    assert_string_equal(st.simd, qz_simd_backend());
    TU_OK(qz_db_close(db));
}

static void options_init_function_matches_macro(void **state)
{
    (void)state;
    qz_open_options a = QZ_OPEN_OPTIONS_INIT, b;
    memset(&b, 0xff, sizeof b);
    TU_OK(qz_open_options_init(&b, sizeof b));
    assert_memory_equal(&a, &b, sizeof a);
    qz_search_params p = QZ_SEARCH_PARAMS_INIT, q;
    memset(&q, 0xff, sizeof q);
    TU_OK(qz_search_params_init(&q, sizeof q));
    assert_memory_equal(&p, &q, sizeof p);
    assert_int_equal(qz_open_options_init(NULL, sizeof a), QZ_EINVAL);
    assert_int_equal(qz_open_options_init(&a, 3), QZ_EVERSION);
}

static void zero_struct_size_is_refused_with_eversion(void **state)
{
    (void)state;
    qz_open_options o;
    memset(&o, 0, sizeof o);
    o.dimensions = 4;
    qz_db *db = (qz_db *)1;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_EVERSION);
    assert_null(db);
    assert_non_null(strstr(qz_errmsg(), "struct_size"));
}

/* A caller built against a newer header: bigger struct, zero tail is fine,
 * a non-zero unknown field is refused. */
static void larger_struct_with_zero_tail_is_accepted_nonzero_tail_refused(void **state)
{
    (void)state;
    struct {
        qz_open_options o;
        uint64_t future[4];
    } big;
    memset(&big, 0, sizeof big);
    big.o.struct_size = sizeof big;
    big.o.dimensions = 4;
    qz_db *db = NULL;
    TU_OK(qz_db_open(NULL, &big.o, &db));
    qz_db_close(db);
    big.future[2] = 7;
    assert_int_equal(qz_db_open(NULL, &big.o, &db), QZ_EVERSION);
    assert_null(db);
}

/* A caller built against an older, smaller struct gets defaults for the rest. */
static void smaller_struct_gets_defaults_for_missing_fields(void **state)
{
    (void)state;
    qz_open_options o;
    memset(&o, 0xAB, sizeof o); /* garbage beyond struct_size must be ignored */
    o.struct_size = offsetof(qz_open_options, M);
    o.flags = 0;
    o.dimensions = 16;
    o.metric = QZ_METRIC_L2;
    o.dtype = 0;
    qz_db *db = NULL;
    TU_OK(qz_db_open(NULL, &o, &db));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.M, 16);
    assert_int_equal(st.metric, QZ_METRIC_L2);
    qz_db_close(db);
}

static void unknown_flags_and_reserved_fields_are_refused(void **state)
{
    (void)state;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = 4;
    o.flags = 0x80;
    qz_db *db = NULL;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_EINVAL);
    o.flags = 0;
    o.reserved0 = 1;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_EINVAL);
}

static void out_of_range_options_get_erange(void **state)
{
    (void)state;
    qz_db *db = NULL;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = QZ_MAX_DIMENSIONS + 1;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_ERANGE);
    o.dimensions = 4;
    o.M = 1;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_ERANGE);
    o.M = QZ_MAX_M + 1;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_ERANGE);
    o.M = 0;
    o.ef_construction = QZ_MAX_EF + 1;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_ERANGE);
    o.ef_construction = 0;
    o.metric = 99;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_EINVAL);
    o.metric = 0;
    o.dimensions = 0;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_EINVAL);
    assert_null(db);
}

static void largest_dimension_is_accepted(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(QZ_MAX_DIMENSIONS, QZ_METRIC_L2, 4, 8);
    float *v = calloc(QZ_MAX_DIMENSIONS, sizeof *v);
    for (int i = 0; i < 3; i++) {
        v[i * 1000] = 1.0f;
        TU_OK(qz_db_insert(db, (uint64_t)i, v, QZ_MAX_DIMENSIONS, NULL, 0));
    }
    uint64_t id;
    size_t found;
    TU_OK(qz_db_search(db, v, QZ_MAX_DIMENSIONS, 1, NULL, &id, NULL, &found));
    assert_int_equal(found, 1);
    assert_int_equal(id, 2);
    free(v);
    qz_db_close(db);
}

static void null_out_pointer_and_null_options_are_einval(void **state)
{
    (void)state;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = 4;
    assert_int_equal(qz_db_open(NULL, &o, NULL), QZ_EINVAL);
    qz_db *db = NULL;
    assert_int_equal(qz_db_open(NULL, NULL, &db), QZ_EINVAL);
}

static void close_accepts_null(void **state)
{
    (void)state;
    assert_int_equal(qz_db_close(NULL), QZ_OK);
}

static void version_macros_match_runtime(void **state)
{
    (void)state;
    assert_int_equal(qz_version_number(), QZ_VERSION_NUMBER);
    assert_string_equal(qz_version_string(), QZ_VERSION_STRING);
    assert_int_equal(QZ_VERSION_NUMBER, QZ_VERSION_MAJOR * 10000 + QZ_VERSION_MINOR * 100 + QZ_VERSION_PATCH);
}

static void stats_refuses_tiny_struct_and_fills_only_what_fits(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(4, QZ_METRIC_L2, 8, 16);
    qz_stats st = {.struct_size = 4};
    assert_int_equal(qz_db_stats(db, &st), QZ_EVERSION);
    struct {
        qz_stats s;
        uint32_t canary;
    } part;
    memset(&part, 0x5A, sizeof part);
    part.s.struct_size = offsetof(qz_stats, memory_bytes);
    TU_OK(qz_db_stats(db, &part.s));
    assert_int_equal(part.s.dimensions, 4);
    assert_int_equal(part.s.struct_size, offsetof(qz_stats, memory_bytes));
    const unsigned char *tail = (const unsigned char *)&part.s + offsetof(qz_stats, memory_bytes);
    for (size_t i = 0; i < sizeof part - offsetof(qz_stats, memory_bytes); i++) assert_int_equal(tail[i], 0x5A);
    qz_db_close(db);
}

static void set_param_changes_default_ef(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(4, QZ_METRIC_L2, 8, 16);
    TU_OK(qz_db_set_param(db, QZ_PARAM_EF_SEARCH, 300));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.ef_search, 300);
    assert_int_equal(qz_db_set_param(db, QZ_PARAM_EF_SEARCH, 0), QZ_ERANGE);
    assert_int_equal(qz_db_set_param(db, 999, 1), QZ_EINVAL);
    qz_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_memory_database_with_defaults),
        cmocka_unit_test(options_init_function_matches_macro),
        cmocka_unit_test(zero_struct_size_is_refused_with_eversion),
        cmocka_unit_test(larger_struct_with_zero_tail_is_accepted_nonzero_tail_refused),
        cmocka_unit_test(smaller_struct_gets_defaults_for_missing_fields),
        cmocka_unit_test(unknown_flags_and_reserved_fields_are_refused),
        cmocka_unit_test(out_of_range_options_get_erange),
        cmocka_unit_test(largest_dimension_is_accepted),
        cmocka_unit_test(null_out_pointer_and_null_options_are_einval),
        cmocka_unit_test(close_accepts_null),
        cmocka_unit_test(version_macros_match_runtime),
        cmocka_unit_test(stats_refuses_tiny_struct_and_fills_only_what_fits),
        cmocka_unit_test(set_param_changes_default_ef),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
