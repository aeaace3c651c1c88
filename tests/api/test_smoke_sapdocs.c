/*
 * test_smoke_sapdocs.c - the smoke test every binding repeats (C here,
 * bindings/python/tests/test_smoke.py, the Node binding's smoke test), on
 * the real 384-d sentence embeddings of sapdocs-minilm384-angular:
 *
 *   1. open a new directory (384 dimensions, cosine);
 *   2. batch insert the 678 base rows under ids 1000 + row, each with its
 *      chunk id (base_ids.txt line) as metadata; count is 678;
 *   3. batch search the 100 queries, k = 10, ef = 100: recall@10 against
 *      gt.ivecs >= 0.95;
 *   4. get id 1005: the base row (unit length already, so equal within
 *      1e-5) and its chunk id;
 *   5. delete ids 1000..1009: they are gone from contains, get (not
 *      found) and every search result;
 *   6. close, reopen the directory without options: count 668, the
 *      deleted ids still gone, get id 1100 as in 4, recall@10 against the
 *      ground truth without the deleted rows >= 0.95.
 *
 * Exits 77 (skipped) when the dataset is absent.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets.h"
#include "testutil.h"

#define NAME "sapdocs-minilm384-angular"
#define K 10
#define BASE_ID 1000
#define NDEL 10

static tu_dataset_files d;
static char **chunk; /* base_ids.txt lines */

static char **read_lines(size_t n)
{
    const char *root = getenv("QZ_DATA_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/base_ids.txt", root ? root : "../shared/data", NAME);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s", path);
    char **lines = calloc(n, sizeof *lines);
    char buf[512];
    for (size_t i = 0; i < n; i++) {
        if (!fgets(buf, sizeof buf, f)) fail_msg("%s has fewer than %zu lines", path, n);
        buf[strcspn(buf, "\n")] = 0;
        lines[i] = strdup(buf);
    }
    fclose(f);
    return lines;
}

/* recall@10 of the batch results against the ground truth, skipping
 * ground-truth rows below `first_live` (the deleted ones). */
static double recall(const uint64_t *ids, const size_t *counts, size_t first_live)
{
    size_t good = 0;
    for (size_t q = 0; q < d.nq; q++) {
        size_t want = 0;
        for (size_t g = 0; g < d.gt_k && want < K; g++) {
            size_t row = (size_t)d.gt[q * d.gt_k + g];
            if (row < first_live) continue;
            want++;
            for (size_t j = 0; j < counts[q]; j++) good += ids[q * K + j] == BASE_ID + row;
        }
    }
    return (double)good / (double)(d.nq * K);
}

static void expect_get(qz_db *db, size_t row)
{
    float v[384];
    char meta[512];
    size_t len = 0;
    TU_OK(qz_db_get(db, BASE_ID + row, v, 384, meta, sizeof meta, &len));
    assert_int_equal(len, strlen(chunk[row]));
    assert_memory_equal(meta, chunk[row], len);
    for (size_t i = 0; i < d.dim; i++) assert_true(fabsf(v[i] - d.base[row * d.dim + i]) < 1e-5f);
}

static void open_insert_search_get_delete_reopen(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = (uint32_t)d.dim;
    o.metric = QZ_METRIC_COSINE;
    qz_db *db = NULL;
    TU_OK(qz_db_open(dir, &o, &db));

    uint64_t *ids = malloc(d.n * sizeof *ids);
    const void **metas = malloc(d.n * sizeof *metas);
    size_t *lens = malloc(d.n * sizeof *lens);
    for (size_t i = 0; i < d.n; i++) {
        ids[i] = BASE_ID + i;
        metas[i] = chunk[i];
        lens[i] = strlen(chunk[i]);
    }
    TU_OK(qz_db_insert_batch(db, d.n, ids, d.base, d.dim, metas, lens, 0));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, d.n);

    uint64_t *got = malloc(d.nq * K * sizeof *got);
    float *dist = malloc(d.nq * K * sizeof *dist);
    size_t *counts = malloc(d.nq * sizeof *counts);
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = 100;
    TU_OK(qz_db_search_batch(db, d.query, d.nq, d.dim, K, &sp, got, dist, counts));
    double r = recall(got, counts, 0);
    print_message("recall@10 = %.4f\n", r);
    assert_true(r >= 0.95);
    expect_get(db, 5);

    for (size_t i = 0; i < NDEL; i++) TU_OK(qz_db_delete(db, BASE_ID + i));
    for (size_t i = 0; i < NDEL; i++) {
        assert_int_equal(qz_db_contains(db, BASE_ID + i), 0);
        assert_int_equal(qz_db_get(db, BASE_ID + i, NULL, 0, NULL, 0, NULL), QZ_ENOTFOUND);
    }
    TU_OK(qz_db_search_batch(db, d.query, d.nq, d.dim, K, &sp, got, dist, counts));
    for (size_t i = 0; i < d.nq * K; i++) assert_true(got[i] >= BASE_ID + NDEL);
    TU_OK(qz_db_close(db));

    db = NULL;
    TU_OK(qz_db_open(dir, NULL, &db));
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, d.n - NDEL);
    assert_int_equal(st.dimensions, d.dim);
    for (size_t i = 0; i < NDEL; i++) assert_int_equal(qz_db_contains(db, BASE_ID + i), 0);
    expect_get(db, 100);
    TU_OK(qz_db_search_batch(db, d.query, d.nq, d.dim, K, &sp, got, dist, counts));
    for (size_t i = 0; i < d.nq * K; i++) assert_true(got[i] >= BASE_ID + NDEL);
    r = recall(got, counts, NDEL);
    print_message("after reopen: recall@10 = %.4f\n", r);
    assert_true(r >= 0.95);
    TU_OK(qz_db_close(db));

    free(got);
    free(dist);
    free(counts);
    free(ids);
    free(metas);
    free(lens);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    char why[512];
    if (tu_load_dataset(NAME, &d, why, sizeof why) < 0) {
        printf("SKIP " NAME ": %s\n", why);
        return 77;
    }
    chunk = read_lines(d.n);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_insert_search_get_delete_reopen),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (size_t i = 0; i < d.n; i++) free(chunk[i]);
    free(chunk);
    tu_free_dataset(&d);
    return rc;
}
