/*
 * test_search_batch.c - qz_db_search_batch answers each row exactly as
 * qz_db_search does (same ef, same filter), pads short rows with
 * UINT64_MAX / +inf, checks every row before searching, and spreads the
 * rows over the handle's threads; qz_filter_ids accepts a sorted id set.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define DIM 16
#define N 3000
#define NQ 300
#define K 10

static qz_db *open_threads(uint32_t metric, uint32_t threads)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = metric;
    o.M = 12;
    o.ef_construction = 64;
    o.threads = threads;
    qz_db *db = NULL;
    TU_OK(qz_db_open(NULL, &o, &db));
    return db;
}

static float *load(qz_db *db, size_t n, uint64_t seed)
{
    float *x = tu_dataset(n, DIM, 10, seed);
    uint64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = 1000 + 7 * i;
    TU_OK(qz_db_insert_batch(db, n, ids, x, DIM, NULL, NULL, 0));
    free(ids);
    return x;
}

/* Row q of a batch equals a single search bit for bit. */
static void expect_rows_match_single(qz_db *db, const float *queries, size_t nq, size_t k,
                                     const qz_search_params *sp, const uint64_t *ids, const float *dist,
                                     const size_t *counts)
{
    uint64_t one[64];
    float od[64];
    for (size_t q = 0; q < nq; q++) {
        size_t n = 0;
        TU_OK(qz_db_search(db, queries + q * DIM, DIM, k, sp, one, od, &n));
        assert_int_equal(counts[q], n);
        for (size_t j = 0; j < n; j++) {
            assert_int_equal(ids[q * k + j], one[j]);
            if (dist) assert_memory_equal(&dist[q * k + j], &od[j], sizeof(float));
        }
        for (size_t j = n; j < k; j++) {
            assert_true(ids[q * k + j] == UINT64_MAX);
            if (dist) assert_true(isinf(dist[q * k + j]) && dist[q * k + j] > 0);
        }
    }
}

static void batch_rows_equal_single_searches_for_every_metric_and_ef(void **state)
{
    (void)state;
    uint32_t metrics[] = {QZ_METRIC_L2, QZ_METRIC_COSINE, QZ_METRIC_IP};
    uint32_t efs[] = {0, 10, 100};
    for (size_t m = 0; m < 3; m++) {
        qz_db *db = open_threads(metrics[m], 2);
        float *x = load(db, N, 31 + m);
        float *qs = tu_dataset(NQ, DIM, 10, 77 + m);
        uint64_t *ids = malloc(NQ * K * sizeof *ids);
        float *d = malloc(NQ * K * sizeof *d);
        size_t counts[NQ];
        for (size_t e = 0; e < 3; e++) {
            qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
            sp.ef = efs[e];
            TU_OK(qz_db_search_batch(db, qs, NQ, DIM, K, &sp, ids, d, counts));
            for (size_t q = 0; q < NQ; q++) assert_int_equal(counts[q], K);
            expect_rows_match_single(db, qs, NQ, K, &sp, ids, d, counts);
        }
        /* params NULL = defaults, same as a single search with NULL */
        TU_OK(qz_db_search_batch(db, qs, NQ, DIM, K, NULL, ids, d, counts));
        expect_rows_match_single(db, qs, NQ, K, NULL, ids, d, counts);
        free(ids);
        free(d);
        free(qs);
        free(x);
        qz_db_close(db);
    }
}

static void thread_count_does_not_change_the_answers(void **state)
{
    (void)state;
    uint32_t threads[] = {1, 2, 4, 7};
    uint64_t *first = malloc(NQ * K * sizeof *first);
    float *firstd = malloc(NQ * K * sizeof *firstd);
    float *qs = tu_dataset(NQ, DIM, 10, 5);
    for (size_t t = 0; t < 4; t++) {
        /* same seed, rows inserted one by one: the same graph in every db */
        qz_open_options o = QZ_OPEN_OPTIONS_INIT;
        o.dimensions = DIM;
        o.metric = QZ_METRIC_L2;
        o.threads = threads[t];
        qz_db *db = NULL;
        TU_OK(qz_db_open(NULL, &o, &db));
        float *x = tu_dataset(N, DIM, 10, 9);
        uint64_t *lab = malloc(N * sizeof *lab);
        for (size_t i = 0; i < N; i++) {
            lab[i] = 1000 + 7 * i;
            TU_OK(qz_db_insert(db, lab[i], x + i * DIM, DIM, NULL, 0));
        }
        uint64_t *ids = malloc(NQ * K * sizeof *ids);
        float *d = malloc(NQ * K * sizeof *d);
        size_t counts[NQ];
        TU_OK(qz_db_search_batch(db, qs, NQ, DIM, K, NULL, ids, d, counts));
        expect_rows_match_single(db, qs, NQ, K, NULL, ids, d, counts);
        if (t == 0) {
            memcpy(first, ids, NQ * K * sizeof *ids);
            memcpy(firstd, d, NQ * K * sizeof *d);
        } else {
            assert_memory_equal(first, ids, NQ * K * sizeof *ids);
            assert_memory_equal(firstd, d, NQ * K * sizeof *d);
        }
        free(lab);
        free(ids);
        free(d);
        free(x);
        qz_db_close(db);
    }
    free(first);
    free(firstd);
    free(qs);
}

static void k_above_count_pads_with_max_id_and_infinity(void **state)
{
    (void)state;
    qz_db *db = open_threads(QZ_METRIC_L2, 2);
    float *x = load(db, 5, 3);
    float *qs = tu_dataset(20, DIM, 0, 4);
    uint64_t ids[20 * 8];
    float d[20 * 8];
    size_t counts[20];
    TU_OK(qz_db_search_batch(db, qs, 20, DIM, 8, NULL, ids, d, counts));
    for (size_t q = 0; q < 20; q++) {
        assert_int_equal(counts[q], 5);
        for (size_t j = 5; j < 8; j++) {
            assert_true(ids[q * 8 + j] == UINT64_MAX);
            assert_true(isinf(d[q * 8 + j]) && d[q * 8 + j] > 0);
        }
    }
    expect_rows_match_single(db, qs, 20, 8, NULL, ids, d, counts);
    free(qs);
    free(x);
    qz_db_close(db);
}

static void empty_database_gives_zero_counts_and_all_padding(void **state)
{
    (void)state;
    qz_db *db = open_threads(QZ_METRIC_COSINE, 2);
    float *qs = tu_dataset(10, DIM, 0, 4);
    uint64_t ids[10 * 3];
    float d[10 * 3];
    size_t counts[10];
    memset(counts, 0xab, sizeof counts);
    TU_OK(qz_db_search_batch(db, qs, 10, DIM, 3, NULL, ids, d, counts));
    for (size_t i = 0; i < 10; i++) assert_int_equal(counts[i], 0);
    for (size_t i = 0; i < 30; i++) assert_true(ids[i] == UINT64_MAX && isinf(d[i]));
    free(qs);
    qz_db_close(db);
}

static void null_distances_and_zero_queries_are_accepted(void **state)
{
    (void)state;
    qz_db *db = open_threads(QZ_METRIC_L2, 2);
    float *x = load(db, 500, 8);
    uint64_t ids[50 * K];
    size_t counts[50];
    TU_OK(qz_db_search_batch(db, x, 50, DIM, K, NULL, ids, NULL, counts));
    expect_rows_match_single(db, x, 50, K, NULL, ids, NULL, counts);
    for (size_t q = 0; q < 50; q++) assert_int_equal(ids[q * K], 1000 + 7 * q); /* each row finds itself */
    /* nq = 0: nothing read, nothing written, NULL arrays allowed */
    TU_OK(qz_db_search_batch(db, NULL, 0, DIM, K, NULL, NULL, NULL, NULL));
    counts[0] = 12345;
    TU_OK(qz_db_search_batch(db, x, 0, DIM, K, NULL, ids, NULL, counts));
    assert_int_equal(counts[0], 12345);
    free(x);
    qz_db_close(db);
}

static void bad_arguments_get_specific_codes_and_nothing_is_searched(void **state)
{
    (void)state;
    qz_db *db = open_threads(QZ_METRIC_COSINE, 2);
    float *x = load(db, 200, 12);
    enum { Q = 40 };
    float qs[Q * DIM];
    memcpy(qs, x, sizeof qs);
    uint64_t ids[Q * K];
    float d[Q * K];
    size_t counts[Q];
    memset(ids, 0x5a, sizeof ids);
    memset(counts, 0x5a, sizeof counts);
    uint64_t ids0[Q * K];
    size_t counts0[Q];
    memcpy(ids0, ids, sizeof ids);
    memcpy(counts0, counts, sizeof counts);

    assert_int_equal(qz_db_search_batch(NULL, qs, Q, DIM, K, NULL, ids, d, counts), QZ_EINVAL);
    assert_int_equal(qz_db_search_batch(db, NULL, Q, DIM, K, NULL, ids, d, counts), QZ_EINVAL);
    assert_string_equal(qz_errmsg(), "queries is NULL");
    assert_int_equal(qz_db_search_batch(db, qs, Q, DIM, K, NULL, NULL, d, counts), QZ_EINVAL);
    assert_int_equal(qz_db_search_batch(db, qs, Q, DIM, K, NULL, ids, d, NULL), QZ_EINVAL);
    assert_int_equal(qz_db_search_batch(db, qs, Q, DIM - 1, K, NULL, ids, d, counts), QZ_EDIM);
    assert_non_null(strstr(qz_errmsg(), "15 dimensions"));
    assert_int_equal(qz_db_search_batch(db, qs, Q, DIM, 0, NULL, ids, d, counts), QZ_ERANGE);
    assert_int_equal(qz_db_search_batch(db, qs, Q, DIM, QZ_MAX_K + 1, NULL, ids, d, counts), QZ_ERANGE);
    assert_int_equal(qz_db_search_batch(db, qs, SIZE_MAX / 2, DIM, 3, NULL, ids, d, counts), QZ_ERANGE);
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = QZ_MAX_EF + 1;
    assert_int_equal(qz_db_search_batch(db, qs, Q, DIM, K, &sp, ids, d, counts), QZ_ERANGE);
    sp.ef = 0;
    sp.struct_size = 0;
    assert_int_equal(qz_db_search_batch(db, qs, Q, DIM, K, &sp, ids, d, counts), QZ_EVERSION);

    qs[17 * DIM + 3] = NAN;
    assert_int_equal(qz_db_search_batch(db, qs, Q, DIM, K, NULL, ids, d, counts), QZ_ENONFINITE);
    assert_string_equal(qz_errmsg(), "query row 17 component 3 is NaN");
    qs[17 * DIM + 3] = INFINITY;
    assert_int_equal(qz_db_search_batch(db, qs, Q, DIM, K, NULL, ids, d, counts), QZ_ENONFINITE);
    assert_string_equal(qz_errmsg(), "query row 17 component 3 is infinite");
    qs[17 * DIM + 3] = 0.5f;
    memset(qs + 39 * DIM, 0, DIM * sizeof(float));
    assert_int_equal(qz_db_search_batch(db, qs, Q, DIM, K, NULL, ids, d, counts), QZ_EZEROVEC);
    assert_non_null(strstr(qz_errmsg(), "query row 39"));
    /* no row was searched by any failing call */
    assert_memory_equal(ids, ids0, sizeof ids);
    assert_memory_equal(counts, counts0, sizeof counts);
    /* and the handle still answers */
    TU_OK(qz_db_search_batch(db, qs, 39, DIM, K, NULL, ids, d, counts));
    assert_int_equal(counts[0], K);
    free(x);
    qz_db_close(db);
}

/* ---- filters ---- */

static void id_set_filter_matches_single_filtered_searches(void **state)
{
    (void)state;
    qz_db *db = open_threads(QZ_METRIC_L2, 2);
    float *x = load(db, N, 41);
    /* every 13th id, sorted */
    size_t ns = 0;
    uint64_t *allowed = malloc(N * sizeof *allowed);
    for (size_t i = 0; i < N; i += 13) allowed[ns++] = 1000 + 7 * i;
    qz_id_set set;
    TU_OK(qz_id_set_init(&set, sizeof set, allowed, ns, 0));
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.filter = qz_filter_ids;
    sp.filter_user = &set;
    sp.ef = 40;
    uint64_t *ids = malloc(NQ * K * sizeof *ids);
    float *d = malloc(NQ * K * sizeof *d);
    size_t counts[NQ];
    TU_OK(qz_db_search_batch(db, x, NQ, DIM, K, &sp, ids, d, counts));
    expect_rows_match_single(db, x, NQ, K, &sp, ids, d, counts);
    for (size_t q = 0; q < NQ; q++) {
        assert_int_equal(counts[q], K);
        for (size_t j = 0; j < K; j++) assert_int_equal((ids[q * K + j] - 1000) / 7 % 13, 0);
    }
    /* the deny list returns none of them */
    TU_OK(qz_id_set_init(&set, sizeof set, allowed, ns, QZ_ID_SET_EXCLUDE));
    TU_OK(qz_db_search_batch(db, x, NQ, DIM, K, &sp, ids, d, counts));
    expect_rows_match_single(db, x, NQ, K, &sp, ids, d, counts);
    for (size_t q = 0; q < NQ; q++) {
        assert_int_equal(counts[q], K);
        for (size_t j = 0; j < K; j++) assert_int_not_equal((ids[q * K + j] - 1000) / 7 % 13, 0);
    }
    /* a set of 3 ids: rows hold exactly those 3, then padding */
    uint64_t three[] = {1000, 1000 + 7 * 5, 1000 + 7 * 2999};
    TU_OK(qz_id_set_init(&set, sizeof set, three, 3, 0));
    TU_OK(qz_db_search_batch(db, x, 20, DIM, K, &sp, ids, d, counts));
    for (size_t q = 0; q < 20; q++) {
        assert_int_equal(counts[q], 3);
        assert_true(ids[q * K + 3] == UINT64_MAX);
    }
    /* the empty set accepts nothing; its deny list everything */
    TU_OK(qz_id_set_init(&set, sizeof set, NULL, 0, 0));
    TU_OK(qz_db_search_batch(db, x, 20, DIM, K, &sp, ids, d, counts));
    for (size_t q = 0; q < 20; q++) assert_int_equal(counts[q], 0);
    TU_OK(qz_id_set_init(&set, sizeof set, NULL, 0, QZ_ID_SET_EXCLUDE));
    TU_OK(qz_db_search_batch(db, x, 20, DIM, K, &sp, ids, d, counts));
    for (size_t q = 0; q < 20; q++) assert_int_equal(ids[q * K], 1000 + 7 * q);
    free(allowed);
    free(ids);
    free(d);
    free(x);
    qz_db_close(db);
}

static void filter_ids_is_a_binary_search_over_the_set(void **state)
{
    (void)state;
    uint64_t v[] = {0, 3, 3, 10, UINT64_MAX - 1, UINT64_MAX};
    qz_id_set s;
    TU_OK(qz_id_set_init(&s, sizeof s, v, 6, 0));
    uint64_t probe[] = {0, 1, 2, 3, 4, 9, 10, 11, UINT64_MAX - 2, UINT64_MAX - 1, UINT64_MAX};
    int want[] = {1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1};
    for (size_t i = 0; i < 11; i++) assert_int_equal(!!qz_filter_ids(probe[i], &s), want[i]);
    TU_OK(qz_id_set_init(&s, sizeof s, v, 6, QZ_ID_SET_EXCLUDE));
    for (size_t i = 0; i < 11; i++) assert_int_equal(!!qz_filter_ids(probe[i], &s), !want[i]);
}

static void id_set_init_refuses_bad_input(void **state)
{
    (void)state;
    qz_id_set s;
    memset(&s, 0x77, sizeof s);
    qz_id_set s0 = s;
    uint64_t unsorted[] = {1, 5, 4};
    assert_int_equal(qz_id_set_init(&s, sizeof s, unsorted, 3, 0), QZ_EINVAL);
    assert_string_equal(qz_errmsg(), "ids are not ascending: ids[2] = 4 follows 5");
    assert_int_equal(qz_id_set_init(&s, sizeof s, NULL, 2, 0), QZ_EINVAL);
    assert_int_equal(qz_id_set_init(&s, sizeof s, unsorted, 2, 0x2), QZ_EINVAL);
    assert_int_equal(qz_id_set_init(&s, sizeof s - 1, unsorted, 2, 0), QZ_EVERSION);
    assert_int_equal(qz_id_set_init(NULL, sizeof s, unsorted, 2, 0), QZ_EINVAL);
    assert_memory_equal(&s, &s0, sizeof s); /* nothing written on failure */
}

/* ---- threads ---- */

typedef struct seen {
    pthread_mutex_t mu;
    pthread_t threads[16];
    size_t n;
} seen;

static int record_thread(uint64_t id, void *user)
{
    (void)id;
    seen *s = user;
    pthread_t me = pthread_self();
    pthread_mutex_lock(&s->mu);
    int known = 0;
    for (size_t i = 0; i < s->n; i++) known |= pthread_equal(s->threads[i], me);
    if (!known && s->n < 16) s->threads[s->n++] = me;
    pthread_mutex_unlock(&s->mu);
    return 1;
}

static void rows_run_on_several_threads_and_small_batches_on_the_caller(void **state)
{
    (void)state;
    qz_db *db = open_threads(QZ_METRIC_L2, 2);
    float *x = load(db, N, 51);
    enum { Q = 2000 };
    float *qs = tu_dataset(Q, DIM, 10, 52);
    uint64_t *ids = malloc(Q * K * sizeof *ids);
    size_t *counts = malloc(Q * sizeof *counts);
    seen s = {.n = 0};
    pthread_mutex_init(&s.mu, NULL);
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.filter = record_thread;
    sp.filter_user = &s;
    TU_OK(qz_db_search_batch(db, qs, Q, DIM, K, &sp, ids, NULL, counts));
    print_message("filter called from %zu threads\n", s.n);
    assert_int_equal(s.n, 2);
    expect_rows_match_single(db, qs, Q, K, &sp, ids, NULL, counts);
    s.n = 0;
    TU_OK(qz_db_search_batch(db, qs, 7, DIM, K, &sp, ids, NULL, counts));
    assert_int_equal(s.n, 1);
    assert_true(pthread_equal(s.threads[0], pthread_self()));
    pthread_mutex_destroy(&s.mu);
    free(ids);
    free(counts);
    free(qs);
    free(x);
    qz_db_close(db);
}

typedef struct racer {
    qz_db *db;
    const float *x;
    int stop;
} racer;

static void *delete_some(void *u)
{
    racer *r = u;
    for (size_t i = 0; i < N; i += 3) TU_OK(qz_db_delete(r->db, 1000 + 7 * i));
    return NULL;
}

static void batch_search_runs_beside_writers_and_never_returns_a_row_twice(void **state)
{
    (void)state;
    qz_db *db = open_threads(QZ_METRIC_L2, 2);
    float *x = load(db, N, 61);
    racer r = {.db = db, .x = x};
    pthread_t t;
    pthread_create(&t, NULL, delete_some, &r);
    uint64_t *ids = malloc(NQ * K * sizeof *ids);
    size_t counts[NQ];
    for (int round = 0; round < 5; round++) {
        TU_OK(qz_db_search_batch(db, x, NQ, DIM, K, NULL, ids, NULL, counts));
        for (size_t q = 0; q < NQ; q++) {
            assert_int_equal(counts[q], K);
            for (size_t a = 0; a < K; a++)
                for (size_t b = a + 1; b < K; b++) assert_true(ids[q * K + a] != ids[q * K + b]);
        }
    }
    pthread_join(t, NULL);
    /* deletions done: none of the deleted ids comes back */
    TU_OK(qz_db_search_batch(db, x, NQ, DIM, K, NULL, ids, NULL, counts));
    for (size_t i = 0; i < NQ * K; i++) assert_int_not_equal((ids[i] - 1000) / 7 % 3, 0);
    free(ids);
    free(x);
    qz_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_rows_equal_single_searches_for_every_metric_and_ef),
        cmocka_unit_test(thread_count_does_not_change_the_answers),
        cmocka_unit_test(k_above_count_pads_with_max_id_and_infinity),
        cmocka_unit_test(empty_database_gives_zero_counts_and_all_padding),
        cmocka_unit_test(null_distances_and_zero_queries_are_accepted),
        cmocka_unit_test(bad_arguments_get_specific_codes_and_nothing_is_searched),
        cmocka_unit_test(id_set_filter_matches_single_filtered_searches),
        cmocka_unit_test(filter_ids_is_a_binary_search_over_the_set),
        cmocka_unit_test(id_set_init_refuses_bad_input),
        cmocka_unit_test(rows_run_on_several_threads_and_small_batches_on_the_caller),
        cmocka_unit_test(batch_search_runs_beside_writers_and_never_returns_a_row_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
