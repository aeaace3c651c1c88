/*
 * test_filter.c - the filter runs during traversal: k results come back
 * whenever k vectors pass it, however selective it is.
 */
#include <stdlib.h>

#include "testutil.h"

#define DIM 16
#define N 5000

static int modulo_filter(uint64_t id, void *user)
{
    uint64_t m = *(uint64_t *)user;
    return id % m == 0;
}

static void selective_filter_still_returns_k_matching_results(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(DIM, QZ_METRIC_L2, 12, 64);
    float *x = tu_dataset(N, DIM, 10, 21);
    uint64_t *ids = malloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++) ids[i] = i;
    TU_OK(qz_db_insert_batch(db, N, ids, x, DIM, NULL, NULL, 0));
    uint64_t mods[] = {2, 10, 100, 500};
    for (size_t m = 0; m < 4; m++) {
        qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
        sp.filter = modulo_filter;
        sp.filter_user = &mods[m];
        sp.ef = 20; /* smaller than the number of rejected neighbours */
        size_t matching = (N + mods[m] - 1) / mods[m];
        size_t k = matching < 10 ? matching : 10;
        size_t exact = 0;
        for (size_t q = 0; q < 20; q++) {
            uint64_t got[10];
            float d[10];
            size_t n;
            TU_OK(qz_db_search(db, x + q * 37 * DIM, DIM, k, &sp, got, d, &n));
            assert_int_equal(n, k);
            for (size_t i = 0; i < n; i++) assert_int_equal(got[i] % mods[m], 0);
            /* compare the nearest with brute force over the matching set */
            unsigned char *alive = malloc(N);
            for (size_t i = 0; i < N; i++) alive[i] = i % mods[m] == 0;
            uint64_t t[1];
            double td[1];
            tu_brute_knn(x, N, DIM, x + q * 37 * DIM, QZ_METRIC_L2, 1, alive, t, td);
            exact += got[0] == t[0];
            free(alive);
        }
        print_message("filter id %% %llu == 0: nearest match exact in %zu/20 queries\n", (unsigned long long)mods[m],
                      exact);
        assert_true(exact >= 17);
    }
    /* A filter that accepts nothing returns nothing, and does not hang. */
    uint64_t none = N * 10 + 1, got[5];
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.filter = modulo_filter;
    sp.filter_user = &none;
    size_t n;
    TU_OK(qz_db_search(db, x, DIM, 5, &sp, got, NULL, &n));
    assert_int_equal(n, 1); /* only id 0 passes: 0 % m == 0 */
    assert_int_equal(got[0], 0);
    free(x);
    free(ids);
    qz_db_close(db);
}

static int count_calls(uint64_t id, void *user)
{
    (void)id;
    ++*(size_t *)user;
    return 1;
}

static void filter_is_called_during_traversal_not_on_every_vector(void **state)
{
    (void)state;
    qz_db *db = tu_open_mem(DIM, QZ_METRIC_L2, 12, 64);
    float *x = tu_dataset(N, DIM, 10, 22);
    uint64_t *ids = malloc(N * sizeof *ids);
    for (size_t i = 0; i < N; i++) ids[i] = i;
    TU_OK(qz_db_insert_batch(db, N, ids, x, DIM, NULL, NULL, 0));
    size_t calls = 0;
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.filter = count_calls;
    sp.filter_user = &calls;
    uint64_t got[10];
    size_t n;
    TU_OK(qz_db_search(db, x, DIM, 10, &sp, got, NULL, &n));
    assert_int_equal(n, 10);
    assert_true(calls > 0 && calls < N / 4);
    free(x);
    free(ids);
    qz_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(selective_filter_still_returns_k_matching_results),
        cmocka_unit_test(filter_is_called_during_traversal_not_on_every_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
