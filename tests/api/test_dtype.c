/*
 * test_dtype.c - the stored element types f16, int8 and binary through the
 * public API: recall floors on fixed-seed data for every dtype and metric,
 * exact (re-ranked) distances, qz_db_get returning the original, the
 * oversample parameter, the dtype recorded in a directory (reopen, wrong
 * dtype refused, crash recovery of writes after the last checkpoint by a
 * SIGKILLed child), deletes and filters on quantized databases.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define K 10
#define NQ 200

static const uint32_t g_dtypes[] = {QZ_DTYPE_F16, QZ_DTYPE_INT8, QZ_DTYPE_BINARY};
static const char *const g_dnames[] = {"?", "f32", "f16", "int8", "binary"};
static const char *const g_mnames[] = {"?", "cosine", "l2", "ip"};

static qz_db *open_mem(uint32_t dim, uint32_t metric, uint32_t dtype)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = dim;
    o.metric = metric;
    o.dtype = dtype;
    o.M = 16;
    o.ef_construction = 100;
    o.threads = 1;
    qz_db *db = NULL;
    TU_OK(qz_db_open(NULL, &o, &db));
    return db;
}

/* Exact distance as the library defines it (cosine on normalised vectors). */
static double exact(const float *a, const float *b, size_t dim, uint32_t metric)
{
    return tu_distance(a, b, dim, metric);
}

typedef struct recall_out {
    double recall;
    double max_dist_err; /* |returned - exact| relative to max(1, exact) */
} recall_out;

static recall_out measure(uint32_t metric, uint32_t dtype, size_t n, size_t dim, uint32_t ef, uint32_t oversample)
{
    qz_db *db = open_mem((uint32_t)dim, metric, dtype);
    float *x = tu_dataset(n, dim, 40, 1234), *qs = tu_dataset(NQ, dim, 40, 99);
    if (metric == QZ_METRIC_IP)
        for (size_t i = 0; i < n * dim; i++) x[i] *= 0.05f;
    uint64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    TU_OK(qz_db_insert_batch(db, n, ids, x, dim, NULL, NULL, 0));
    TU_OK(qz_db_check(db));
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = ef;
    sp.oversample = oversample;
    size_t good = 0;
    recall_out r = {0, 0};
    for (size_t q = 0; q < NQ; q++) {
        uint64_t truth[K], got[K];
        double td[K];
        float d[K];
        size_t nt = tu_brute_knn(x, n, dim, qs + q * dim, metric, K, NULL, truth, td), ng;
        TU_OK(qz_db_search(db, qs + q * dim, dim, K, &sp, got, d, &ng));
        assert_int_equal(ng, nt);
        for (size_t i = 0; i < ng; i++) {
            double e = exact(x + got[i] * dim, qs + q * dim, dim, metric);
            good += e <= td[K - 1] + 1e-5;
            double err = fabs((double)d[i] - e) / (fabs(e) > 1 ? fabs(e) : 1);
            if (err > r.max_dist_err) r.max_dist_err = err;
            if (i) assert_true(d[i - 1] <= d[i]);
        }
    }
    free(x), free(qs), free(ids);
    qz_db_close(db);
    r.recall = (double)good / (NQ * K);
    return r;
}

/* Floors: fixed seed, single-threaded build, default oversample. Measured
 * values are printed; a floor sits a little below what this code reached. */
typedef struct floor_row {
    uint32_t metric, dtype;
    size_t n, dim;
    uint32_t ef;
    double floor;
} floor_row;

static void recall_floors_hold_for_every_dtype_and_metric(void **state)
{
    (void)state;
    /* f32 rows for comparison (no re-ranking); binary codes of 48 bits
     * are coarse, so binary also runs at 256 dimensions. */
    static const floor_row rows[] = {
        {QZ_METRIC_COSINE, QZ_DTYPE_F32, 5000, 48, 64, 0.84},     {QZ_METRIC_COSINE, QZ_DTYPE_F16, 5000, 48, 64, 0.84},
        {QZ_METRIC_COSINE, QZ_DTYPE_INT8, 5000, 48, 64, 0.84},    {QZ_METRIC_COSINE, QZ_DTYPE_BINARY, 5000, 48, 64, 0.45},
        {QZ_METRIC_COSINE, QZ_DTYPE_F32, 3000, 256, 64, 0.84},    {QZ_METRIC_COSINE, QZ_DTYPE_BINARY, 3000, 256, 64, 0.43},
        {QZ_METRIC_L2, QZ_DTYPE_F32, 5000, 48, 64, 0.90},         {QZ_METRIC_L2, QZ_DTYPE_F16, 5000, 48, 64, 0.90},
        {QZ_METRIC_L2, QZ_DTYPE_INT8, 5000, 48, 64, 0.90},        {QZ_METRIC_L2, QZ_DTYPE_BINARY, 5000, 48, 64, 0.32},
        {QZ_METRIC_L2, QZ_DTYPE_BINARY, 3000, 256, 64, 0.33},     {QZ_METRIC_IP, QZ_DTYPE_F32, 5000, 48, 128, 0.80},
        {QZ_METRIC_IP, QZ_DTYPE_F16, 5000, 48, 128, 0.80},        {QZ_METRIC_IP, QZ_DTYPE_INT8, 5000, 48, 128, 0.80},
        {QZ_METRIC_IP, QZ_DTYPE_BINARY, 5000, 48, 128, 0.41},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        const floor_row *f = &rows[i];
        recall_out r = measure(f->metric, f->dtype, f->n, f->dim, f->ef, 0);
        print_message("%-6s %-6s n=%zu dim=%zu ef=%u: recall@10 %.4f (floor %.2f), max distance error %.2e\n",
                      g_mnames[f->metric], g_dnames[f->dtype], f->n, f->dim, f->ef, r.recall, f->floor,
                      r.max_dist_err);
        if (r.recall < f->floor) failed++;
        /* re-ranked: the distances returned are the exact ones */
        if (r.max_dist_err > 1e-5) failed++;
    }
    assert_int_equal(failed, 0);
}

static void a_larger_oversample_never_loses_recall_much_and_is_checked(void **state)
{
    (void)state;
    recall_out lo = measure(QZ_METRIC_L2, QZ_DTYPE_BINARY, 3000, 48, 10, 1);
    recall_out hi = measure(QZ_METRIC_L2, QZ_DTYPE_BINARY, 3000, 48, 10, 32);
    print_message("binary l2 ef=10: oversample 1 recall %.4f, oversample 32 recall %.4f\n", lo.recall, hi.recall);
    /* with ef 10 the beam is k * oversample: 32 must find far more */
    assert_true(hi.recall > lo.recall + 0.2);
    qz_db *db = open_mem(8, QZ_METRIC_L2, QZ_DTYPE_INT8);
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    TU_OK(qz_db_insert(db, 1, v, 8, NULL, 0));
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.oversample = QZ_MAX_OVERSAMPLE + 1;
    uint64_t id;
    size_t n;
    assert_int_equal(qz_db_search(db, v, 8, 1, &sp, &id, NULL, &n), QZ_ERANGE);
    assert_non_null(strstr(qz_errmsg(), "oversample"));
    sp.oversample = QZ_MAX_OVERSAMPLE;
    TU_OK(qz_db_search(db, v, 8, 1, &sp, &id, NULL, &n));
    assert_int_equal(n, 1);
    /* a caller built against the struct without oversample gets the default */
    qz_search_params old = QZ_SEARCH_PARAMS_INIT;
    old.struct_size = (uint32_t)offsetof(qz_search_params, oversample);
    TU_OK(qz_db_search(db, v, 8, 1, &old, &id, NULL, &n));
    assert_int_equal(n, 1);
    assert_int_equal(id, 1);
    qz_db_close(db);
}

static void get_returns_the_original_and_search_the_exact_distance(void **state)
{
    (void)state;
    const size_t dim = 37, n = 300;
    float *x = tu_dataset(n, dim, 5, 7);
    for (size_t t = 0; t < 3; t++)
        for (uint32_t m = QZ_METRIC_COSINE; m <= QZ_METRIC_IP; m++) {
            qz_db *q = open_mem((uint32_t)dim, m, g_dtypes[t]);
            qz_db *f = open_mem((uint32_t)dim, m, QZ_DTYPE_F32);
            for (size_t i = 0; i < n; i++) {
                TU_OK(qz_db_insert(q, i, x + i * dim, dim, "m", 1));
                TU_OK(qz_db_insert(f, i, x + i * dim, dim, "m", 1));
            }
            for (size_t i = 0; i < n; i += 7) {
                float a[64], b[64];
                TU_OK(qz_db_get(q, i, a, dim, NULL, 0, NULL));
                TU_OK(qz_db_get(f, i, b, dim, NULL, 0, NULL));
                assert_memory_equal(a, b, dim * sizeof *a); /* bit for bit the f32 database's */
                if (m != QZ_METRIC_COSINE) assert_memory_equal(a, x + i * dim, dim * sizeof *a);
                uint64_t id[3];
                float d[3];
                size_t got;
                TU_OK(qz_db_search(q, x + i * dim, dim, 3, NULL, id, d, &got));
                assert_int_equal(got, 3);
                float fd;
                uint64_t fid;
                size_t fg;
                TU_OK(qz_db_search(f, x + i * dim, dim, 1, NULL, &fid, &fd, &fg));
                /* the nearest is the vector itself, at its exact distance */
                if (m != QZ_METRIC_IP) {
                    assert_int_equal(id[0], i);
                    assert_true(d[0] == fd);
                }
            }
            qz_stats st = {.struct_size = sizeof st};
            TU_OK(qz_db_stats(q, &st));
            assert_int_equal(st.dtype, g_dtypes[t]);
            TU_OK(qz_db_check(q));
            qz_db_close(q);
            qz_db_close(f);
        }
    free(x);
}

static void bad_dtypes_are_refused_with_a_message(void **state)
{
    (void)state;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = 16;
    qz_db *db = (qz_db *)1;
    o.metric = QZ_METRIC_HAMMING;
    o.dtype = QZ_DTYPE_INT8;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_EUNSUPPORTED);
    assert_null(db);
    assert_non_null(strstr(qz_errmsg(), "Hamming"));
    o.metric = QZ_METRIC_L2;
    o.dtype = 5;
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_EUNSUPPORTED);
    assert_non_null(strstr(qz_errmsg(), "vector type 5"));
}

static void f16_saturates_huge_components_and_reranks_exactly(void **state)
{
    (void)state;
    qz_db *db = open_mem(4, QZ_METRIC_L2, QZ_DTYPE_F16);
    float a[4] = {1e6f, -2e5f, 3.0f, 0.5f}, b[4] = {1e6f, -2e5f, 3.0f, 1.5f}, c[4] = {7e4f, 0, 0, 0};
    TU_OK(qz_db_insert(db, 1, a, 4, NULL, 0));
    TU_OK(qz_db_insert(db, 2, b, 4, NULL, 0));
    TU_OK(qz_db_insert(db, 3, c, 4, NULL, 0));
    uint64_t id[3];
    float d[3];
    size_t n;
    TU_OK(qz_db_search(db, a, 4, 3, NULL, id, d, &n));
    assert_int_equal(n, 3);
    /* the saturated codes of a, b and c share their first components;
     * the originals decide, exactly */
    assert_int_equal(id[0], 1);
    assert_true(d[0] == 0.0f);
    assert_int_equal(id[1], 2);
    assert_true(d[1] == 1.0f);
    float back[4];
    TU_OK(qz_db_get(db, 1, back, 4, NULL, 0, NULL));
    assert_memory_equal(back, a, sizeof a);
    qz_db_close(db);
}

static int accept_even(uint64_t id, void *u)
{
    (void)u;
    return (id & 1) == 0;
}

static void deletes_upserts_and_filters_work_on_codes(void **state)
{
    (void)state;
    const size_t dim = 32, n = 2000;
    float *x = tu_dataset(n, dim, 20, 3);
    for (size_t t = 0; t < 3; t++) {
        qz_db *db = open_mem((uint32_t)dim, QZ_METRIC_COSINE, g_dtypes[t]);
        uint64_t *ids = malloc(n * sizeof *ids);
        for (size_t i = 0; i < n; i++) ids[i] = i;
        TU_OK(qz_db_insert_batch(db, n, ids, x, dim, NULL, NULL, 0));
        for (size_t i = 0; i < n; i += 3) TU_OK(qz_db_delete(db, i));
        /* upsert: id 1 takes row 5's vector */
        TU_OK(qz_db_upsert(db, 1, x + 5 * dim, dim, NULL, 0));
        TU_OK(qz_db_compact(db));
        TU_OK(qz_db_check(db));
        qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
        sp.filter = accept_even;
        for (size_t q = 0; q < n; q += 17) {
            uint64_t got[K];
            size_t ng;
            TU_OK(qz_db_search(db, x + q * dim, dim, K, &sp, got, NULL, &ng));
            assert_int_equal(ng, K);
            for (size_t i = 0; i < ng; i++) {
                assert_true(got[i] % 3 != 0);
                assert_true((got[i] & 1) == 0);
            }
        }
        uint64_t got[2];
        float d[2];
        size_t ng;
        TU_OK(qz_db_search(db, x + 5 * dim, dim, 2, NULL, got, d, &ng));
        assert_true((got[0] == 1 && got[1] == 5) || (got[0] == 5 && got[1] == 1));
        /* batch search returns what single searches do */
        uint64_t bi[20 * K], si[K];
        size_t counts[20];
        TU_OK(qz_db_search_batch(db, x, 20, dim, K, NULL, bi, NULL, counts));
        for (size_t q = 0; q < 20; q++) {
            TU_OK(qz_db_search(db, x + q * dim, dim, K, NULL, si, NULL, &ng));
            assert_int_equal(counts[q], ng);
            assert_memory_equal(bi + q * K, si, ng * sizeof *si);
        }
        free(ids);
        qz_db_close(db);
    }
    free(x);
}

static int open_dir(const char *path, uint32_t dtype, uint32_t durability, qz_db **db)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = 24;
    o.metric = QZ_METRIC_L2;
    o.dtype = dtype;
    o.durability = durability;
    return qz_db_open(path, &o, db);
}

static void check_all_present(qz_db *db, const float *x, size_t n, size_t dim)
{
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, n);
    TU_OK(qz_db_check(db));
    size_t self = 0;
    for (size_t i = 0; i < n; i++) {
        float v[24];
        TU_OK(qz_db_get(db, i, v, dim, NULL, 0, NULL));
        assert_memory_equal(v, x + i * dim, dim * sizeof *v);
        uint64_t id;
        float d;
        size_t got;
        TU_OK(qz_db_search(db, x + i * dim, dim, 1, NULL, &id, &d, &got));
        self += got == 1 && id == i && d == 0.0f;
    }
    /* clustered random data has no duplicates: every vector finds itself */
    assert_true(self >= n - n / 100);
}

static void directory_records_the_dtype_survives_reopen_and_sigkill(void **state)
{
    (void)state;
    const size_t dim = 24, n1 = 600, n2 = 300;
    float *x = tu_dataset(n1 + n2, dim, 10, 11);
    for (size_t t = 0; t < 3; t++) {
        char *dir = tu_tempdir();
        qz_db *db;
        TU_OK(open_dir(dir, g_dtypes[t], QZ_DURABILITY_SYNC, &db));
        uint64_t *ids = malloc((n1 + n2) * sizeof *ids);
        for (size_t i = 0; i < n1 + n2; i++) ids[i] = i;
        TU_OK(qz_db_insert_batch(db, n1, ids, x, dim, NULL, NULL, 0));
        TU_OK(qz_db_close(db));

        /* dtype 0 takes the stored one; another dtype is refused, naming both */
        TU_OK(open_dir(dir, 0, QZ_DURABILITY_SYNC, &db));
        qz_stats st = {.struct_size = sizeof st};
        TU_OK(qz_db_stats(db, &st));
        assert_int_equal(st.dtype, g_dtypes[t]);
        assert_int_equal(st.open_reinserted, 0);
        check_all_present(db, x, n1, dim);
        TU_OK(qz_db_close(db));
        uint32_t other = g_dtypes[(t + 1) % 3];
        db = (qz_db *)1;
        assert_int_equal(open_dir(dir, other, QZ_DURABILITY_SYNC, &db), QZ_EINVAL);
        assert_null(db);
        assert_non_null(strstr(qz_errmsg(), g_dnames[g_dtypes[t]]));
        assert_non_null(strstr(qz_errmsg(), g_dnames[other]));
        assert_int_equal(open_dir(dir, QZ_DTYPE_F32, QZ_DURABILITY_SYNC, &db), QZ_EINVAL);

        /* a child writes n2 more with SYNC durability and is killed without
         * closing: the graph snapshot does not cover them */
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            qz_db *c;
            if (open_dir(dir, g_dtypes[t], QZ_DURABILITY_SYNC, &c) != QZ_OK) _exit(2);
            for (size_t i = n1; i < n1 + n2; i++)
                if (qz_db_insert(c, i, x + i * dim, dim, NULL, 0) != QZ_OK) _exit(3);
            raise(SIGKILL);
            _exit(4);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0) assert_int_equal(errno, EINTR);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        TU_OK(open_dir(dir, 0, QZ_DURABILITY_SYNC, &db));
        st.struct_size = sizeof st;
        TU_OK(qz_db_stats(db, &st));
        assert_int_equal(st.dtype, g_dtypes[t]);
        assert_true(st.open_reinserted > 0);
        check_all_present(db, x, n1 + n2, dim);
        TU_OK(qz_db_close(db));
        /* and after the clean close the snapshot covers everything */
        TU_OK(open_dir(dir, 0, QZ_DURABILITY_SYNC, &db));
        st.struct_size = sizeof st;
        TU_OK(qz_db_stats(db, &st));
        assert_int_equal(st.open_reinserted, 0);
        check_all_present(db, x, n1 + n2, dim);
        TU_OK(qz_db_close(db));
        free(ids);
        tu_rmtree(dir);
        free(dir);
    }
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_dtypes_are_refused_with_a_message),
        cmocka_unit_test(get_returns_the_original_and_search_the_exact_distance),
        cmocka_unit_test(f16_saturates_huge_components_and_reranks_exactly),
        cmocka_unit_test(deletes_upserts_and_filters_work_on_codes),
        cmocka_unit_test(a_larger_oversample_never_loses_recall_much_and_is_checked),
        cmocka_unit_test(recall_floors_hold_for_every_dtype_and_metric),
        cmocka_unit_test(directory_records_the_dtype_survives_reopen_and_sigkill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
