/*
 * test_orig_storage.c - QZ_OPEN_ORIGINALS_IN_STORAGE: f16 and int8
 * databases whose f32 originals stay in storage (LMDB on disk, or a
 * qz_storage backend without a log) and are read back for re-ranking and
 * qz_db_get.
 *
 * What is asserted:
 *  - refusals: in-memory, f32, binary and Hamming databases (QZ_EINVAL,
 *    with a message), nothing created;
 *  - results: distances exact against the originals, recall within 0.03 of
 *    the same database with its originals in memory, memory_bytes smaller
 *    by at least the originals' size; the same before the writes reached
 *    storage (pinned copies) and after (read from storage);
 *  - get returns the original, pinned or stored, and after reopen;
 *  - upsert churn and deletes: results are the current vectors at exact
 *    distances, deleted ids never come back;
 *  - searches and gets on two threads while a third upserts and the
 *    storage catches up: every answer is some version of its id, at that
 *    version's exact distance (TSan runs this too);
 *  - a SIGKILLed child's acknowledged SYNC writes are all there after the
 *    reopen, read from storage;
 *  - a vector record damaged in storage makes search and get fail with
 *    QZ_ECORRUPT naming the id (never a wrong answer), a storage read error
 *    with QZ_EIO; the other ids still read.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault_storage.h"
#include "storage/storage.h"
#include "testutil.h"

#define DIM 32
#define K 10
#define NQ 100

static const uint32_t g_dtypes[] = {QZ_DTYPE_F16, QZ_DTYPE_INT8};

static qz_open_options opts(uint32_t dtype, uint32_t metric, uint32_t flags, uint32_t durability)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = metric;
    o.dtype = dtype;
    o.flags = flags;
    o.durability = durability;
    o.M = 12;
    o.ef_construction = 100;
    o.threads = 1;
    return o;
}

static uint64_t *iota(size_t n)
{
    uint64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = i;
    return ids;
}

static void refusals(void **state)
{
    (void)state;
    qz_db *db = (qz_db *)1;
    qz_open_options o = opts(QZ_DTYPE_INT8, QZ_METRIC_L2, QZ_OPEN_ORIGINALS_IN_STORAGE, 0);
    assert_int_equal(qz_db_open(NULL, &o, &db), QZ_EINVAL);
    assert_null(db);
    assert_non_null(strstr(qz_errmsg(), "in-memory"));

    const uint32_t bad[][2] = {{QZ_DTYPE_F32, QZ_METRIC_L2}, {0, QZ_METRIC_COSINE}, {QZ_DTYPE_BINARY, QZ_METRIC_L2},
                               {0, QZ_METRIC_HAMMING}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *dir = tu_tempdir();
        o = opts(bad[i][0], bad[i][1], QZ_OPEN_ORIGINALS_IN_STORAGE, 0);
        db = (qz_db *)1;
        assert_int_equal(qz_db_open(dir, &o, &db), QZ_EINVAL);
        assert_null(db);
        assert_non_null(strstr(qz_errmsg(), "QZ_OPEN_ORIGINALS_IN_STORAGE"));
        tu_rmtree(dir);
        free(dir);
    }
}

typedef struct result {
    double recall, max_err;
    uint64_t memory;
} result;

/* Recall@K and the largest |returned - exact| over NQ queries. */
static result measure(qz_db *db, const float *x, size_t n, const float *qs, uint32_t metric)
{
    result r = {0, 0, 0};
    size_t good = 0;
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = 64;
    for (size_t q = 0; q < NQ; q++) {
        uint64_t truth[K], got[K];
        double td[K];
        float d[K];
        size_t nt = tu_brute_knn(x, n, DIM, qs + q * DIM, metric, K, NULL, truth, td), ng = 0;
        TU_OK(qz_db_search(db, qs + q * DIM, DIM, K, &sp, got, d, &ng));
        assert_int_equal(ng, nt);
        for (size_t i = 0; i < ng; i++) {
            double e = tu_distance(x + got[i] * DIM, qs + q * DIM, DIM, metric);
            good += e <= td[K - 1] + 1e-5;
            double err = fabs((double)d[i] - e) / (fabs(e) > 1 ? fabs(e) : 1);
            if (err > r.max_err) r.max_err = err;
            if (i) assert_true(d[i - 1] <= d[i]);
        }
    }
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    r.memory = st.memory_bytes;
    r.recall = (double)good / (NQ * K);
    return r;
}

static void check_get(qz_db *db, const float *x, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        float v[DIM];
        TU_OK(qz_db_get(db, i, v, DIM, NULL, 0, NULL));
        assert_memory_equal(v, x + i * DIM, sizeof v);
    }
}

static void results_are_exact_pinned_and_stored(void **state)
{
    (void)state;
    const size_t n = 3000;
    float *x = tu_dataset(n, DIM, 30, 5), *qs = tu_dataset(NQ, DIM, 30, 6);
    uint64_t *ids = iota(n);
    for (size_t t = 0; t < 2; t++) {
        for (uint32_t metric = QZ_METRIC_COSINE; metric <= QZ_METRIC_L2; metric++) {
            if (metric == QZ_METRIC_COSINE) /* cosine stores normalised originals: compare against those */
                for (size_t i = 0; i < n * DIM; i += DIM) {
                    double s = 0;
                    for (size_t j = 0; j < DIM; j++) s += (double)x[i + j] * x[i + j];
                    for (size_t j = 0; j < DIM; j++) x[i + j] = (float)(x[i + j] / sqrt(s));
                }
            char *d1 = tu_tempdir(), *d2 = tu_tempdir();
            qz_db *mem, *sto;
            /* NONE: nothing reaches storage before the flush, so the first
             * searches re-rank on pinned copies only */
            qz_open_options o = opts(g_dtypes[t], metric, 0, QZ_DURABILITY_NONE);
            TU_OK(qz_db_open(d1, &o, &mem));
            o.flags = QZ_OPEN_ORIGINALS_IN_STORAGE;
            TU_OK(qz_db_open(d2, &o, &sto));
            TU_OK(qz_db_insert_batch(mem, n, ids, x, DIM, NULL, NULL, 0));
            TU_OK(qz_db_insert_batch(sto, n, ids, x, DIM, NULL, NULL, 0));
            TU_OK(qz_db_check(sto));
            result rm = measure(mem, x, n, qs, metric);
            result pinned = measure(sto, x, n, qs, metric);
            check_get(sto, x, 0, 100);
            TU_OK(qz_db_flush(sto));
            result stored = measure(sto, x, n, qs, metric);
            check_get(sto, x, 0, n);
            print_message("dtype %u metric %u: recall in memory %.4f, pinned %.4f, stored %.4f; max err %.2g / %.2g; "
                          "memory %llu vs %llu bytes\n",
                          g_dtypes[t], metric, rm.recall, pinned.recall, stored.recall, pinned.max_err,
                          stored.max_err, (unsigned long long)rm.memory, (unsigned long long)stored.memory);
            assert_true(pinned.max_err < 1e-4 && stored.max_err < 1e-4);
            assert_true(pinned.recall > rm.recall - 0.03 && stored.recall > rm.recall - 0.03);
            assert_true(stored.recall >= 0.85);
            /* the originals (n * DIM floats) are not in memory any more */
            assert_true(stored.memory + n * DIM * sizeof(float) <= rm.memory + n * 16);
            TU_OK(qz_db_close(sto));
            TU_OK(qz_db_close(mem));

            /* reopened, still from storage */
            o.durability = QZ_DURABILITY_SYNC;
            TU_OK(qz_db_open(d2, &o, &sto));
            result again = measure(sto, x, n, qs, metric);
            assert_true(again.max_err < 1e-4 && again.recall > rm.recall - 0.03);
            check_get(sto, x, n - 50, n);
            TU_OK(qz_db_close(sto));
            /* and the same directory opens with its originals in memory */
            o.flags = 0;
            TU_OK(qz_db_open(d2, &o, &sto));
            check_get(sto, x, 0, 50);
            TU_OK(qz_db_close(sto));
            tu_rmtree(d1), tu_rmtree(d2);
            free(d1), free(d2);
        }
    }
    free(x), free(qs), free(ids);
}

static void upsert_churn_and_deletes_read_current_vectors(void **state)
{
    (void)state;
    const size_t n = 600, rounds = 6;
    float *x = tu_dataset(n * (rounds + 1), DIM, 20, 17);
    for (size_t t = 0; t < 2; t++) {
        char *dir = tu_tempdir();
        qz_db *db;
        /* BATCHED, 1 ms windows: storage catches up while the churn runs,
         * so re-ranking meets pinned, stored and replaced records */
        qz_open_options o = opts(g_dtypes[t], QZ_METRIC_L2, QZ_OPEN_ORIGINALS_IN_STORAGE, QZ_DURABILITY_BATCHED);
        o.batch_window_ms = 1;
        TU_OK(qz_db_open(dir, &o, &db));
        float *cur = malloc(n * DIM * sizeof *cur);
        memcpy(cur, x, n * DIM * sizeof *cur);
        for (size_t i = 0; i < n; i++) TU_OK(qz_db_insert(db, i, x + i * DIM, DIM, NULL, 0));
        for (size_t r = 1; r <= rounds; r++) {
            for (size_t i = 0; i < n; i++) {
                const float *v = x + (r * n + (i * 7 + r) % n) * DIM;
                TU_OK(qz_db_upsert(db, i, v, DIM, NULL, 0));
                memcpy(cur + i * DIM, v, DIM * sizeof *v);
                if (i % 50 == 0) { /* results are the current vectors at their exact distances */
                    uint64_t got[K];
                    float d[K];
                    size_t ng;
                    TU_OK(qz_db_search(db, v, DIM, K, NULL, got, d, &ng));
                    assert_int_equal(ng, K);
                    assert_int_equal(got[0], i);
                    for (size_t j = 0; j < ng; j++)
                        assert_true(fabs(d[j] - tu_distance(cur + got[j] * DIM, v, DIM, QZ_METRIC_L2)) <
                                    1e-4 * (1 + d[j]));
                }
            }
        }
        for (size_t i = 0; i < n; i += 3) TU_OK(qz_db_delete(db, i));
        for (size_t i = 0; i < n; i++) {
            float v[DIM];
            uint64_t got[K];
            float d[K];
            size_t ng;
            int rc = qz_db_get(db, i, v, DIM, NULL, 0, NULL);
            if (i % 3 == 0) {
                assert_int_equal(rc, QZ_ENOTFOUND);
                continue;
            }
            TU_OK(rc);
            assert_memory_equal(v, cur + i * DIM, sizeof v);
            TU_OK(qz_db_search(db, cur + i * DIM, DIM, K, NULL, got, d, &ng));
            assert_int_equal(got[0], i);
            for (size_t j = 0; j < ng; j++) {
                assert_true(got[j] % 3 != 0);
                assert_true(fabs(d[j] - tu_distance(cur + got[j] * DIM, cur + i * DIM, DIM, QZ_METRIC_L2)) <
                            1e-4 * (1 + d[j]));
            }
        }
        TU_OK(qz_db_check(db));
        TU_OK(qz_db_close(db));
        free(cur);
        tu_rmtree(dir);
        free(dir);
    }
    free(x);
}

/* ---- concurrency: readers while a writer upserts and storage catches up ---- */

#define CN 300
#define CROUNDS 8

typedef struct cshared {
    qz_db *db;
    const float *x; /* CROUNDS + 1 versions of CN vectors: id i in round r is x[r * CN + i] */
    atomic_int stop;
    atomic_size_t checked;
    int failed;
} cshared;

/* Is d the distance from q to some version of id, and v (if given) one of them? */
static int some_version(const cshared *c, uint64_t id, const float *q, float d, const float *v)
{
    for (size_t r = 0; r <= CROUNDS; r++) {
        const float *w = c->x + (r * CN + id) * DIM;
        if (v && !memcmp(v, w, DIM * sizeof *v)) return 1;
        if (!v && fabs(d - tu_distance(w, q, DIM, QZ_METRIC_L2)) < 1e-4 * (1 + d)) return 1;
    }
    return 0;
}

static void *reader(void *arg)
{
    cshared *c = arg;
    tu_rng rng = {(uint64_t)(uintptr_t)&rng};
    while (!atomic_load(&c->stop)) {
        uint64_t id = tu_next(&rng) % CN;
        const float *q = c->x + (tu_next(&rng) % ((CROUNDS + 1) * CN)) * DIM;
        uint64_t got[K];
        float d[K], v[DIM];
        size_t ng = 0;
        int rc = qz_db_search(c->db, q, DIM, K, NULL, got, d, &ng);
        if (rc != QZ_OK || ng != K) c->failed = 1, fprintf(stderr, "search rc %d ng %zu %s\n", rc, ng, qz_errmsg());
        for (size_t j = 0; j < ng; j++)
            if (got[j] >= CN || !some_version(c, got[j], q, d[j], NULL)) c->failed = 1, fprintf(stderr, "dist %g id %llu j %zu\n", d[j], (unsigned long long)got[j], j);
        rc = qz_db_get(c->db, id, v, DIM, NULL, 0, NULL);
        if (rc != QZ_OK || !some_version(c, id, NULL, 0, v)) c->failed = 1, fprintf(stderr, "get rc %d %s\n", rc, qz_errmsg());
        atomic_fetch_add(&c->checked, 1);
    }
    return NULL;
}

static void readers_during_upserts_see_some_version_exactly(void **state)
{
    (void)state;
    float *x = tu_dataset(CN * (CROUNDS + 1), DIM, 10, 41);
    char *dir = tu_tempdir();
    qz_open_options o = opts(QZ_DTYPE_INT8, QZ_METRIC_L2, QZ_OPEN_ORIGINALS_IN_STORAGE, QZ_DURABILITY_BATCHED);
    o.batch_window_ms = 1;
    cshared c = {.x = x};
    TU_OK(qz_db_open(dir, &o, &c.db));
    uint64_t *ids = iota(CN);
    TU_OK(qz_db_insert_batch(c.db, CN, ids, x, DIM, NULL, NULL, 0));
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, reader, &c), 0);
    for (size_t r = 1; r <= CROUNDS; r++)
        for (size_t i = 0; i < CN; i++) TU_OK(qz_db_upsert(c.db, i, x + (r * CN + i) * DIM, DIM, NULL, 0));
    atomic_store(&c.stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    print_message("%zu reads checked during %d upserts\n", atomic_load(&c.checked), CROUNDS * CN);
    assert_false(c.failed);
    assert_true(atomic_load(&c.checked) > 0);
    TU_OK(qz_db_flush(c.db));
    for (size_t i = 0; i < CN; i++) {
        float v[DIM];
        TU_OK(qz_db_get(c.db, i, v, DIM, NULL, 0, NULL));
        assert_memory_equal(v, x + (CROUNDS * CN + i) * DIM, sizeof v);
    }
    TU_OK(qz_db_check(c.db));
    TU_OK(qz_db_close(c.db));
    tu_rmtree(dir);
    free(dir), free(ids), free(x);
}

static void sigkilled_writers_sync_writes_read_back_from_storage(void **state)
{
    (void)state;
    const size_t n1 = 400, n2 = 300;
    float *x = tu_dataset(n1 + n2, DIM, 10, 23);
    uint64_t *ids = iota(n1);
    for (size_t t = 0; t < 2; t++) {
        char *dir = tu_tempdir();
        qz_db *db;
        qz_open_options o = opts(g_dtypes[t], QZ_METRIC_L2, QZ_OPEN_ORIGINALS_IN_STORAGE, QZ_DURABILITY_SYNC);
        TU_OK(qz_db_open(dir, &o, &db));
        TU_OK(qz_db_insert_batch(db, n1, ids, x, DIM, NULL, NULL, 0));
        TU_OK(qz_db_close(db));
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            qz_db *c;
            if (qz_db_open(dir, &o, &c) != QZ_OK) _exit(2);
            for (size_t i = n1; i < n1 + n2; i++)
                if (qz_db_insert(c, i, x + i * DIM, DIM, NULL, 0) != QZ_OK) _exit(3);
            raise(SIGKILL);
            _exit(4);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0) assert_int_equal(errno, EINTR);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        TU_OK(qz_db_open(dir, &o, &db));
        qz_stats st = {.struct_size = sizeof st};
        TU_OK(qz_db_stats(db, &st));
        assert_int_equal(st.count, n1 + n2);
        assert_true(st.open_reinserted > 0);
        TU_OK(qz_db_check(db));
        check_get(db, x, 0, n1 + n2);
        size_t self = 0;
        for (size_t i = 0; i < n1 + n2; i++) {
            uint64_t id;
            float d;
            size_t ng;
            TU_OK(qz_db_search(db, x + i * DIM, DIM, 1, NULL, &id, &d, &ng));
            self += ng == 1 && id == i && d == 0.0f;
        }
        assert_true(self >= (n1 + n2) * 99 / 100);
        TU_OK(qz_db_close(db));
        tu_rmtree(dir);
        free(dir);
    }
    free(x), free(ids);
}

/* Flip one byte of the vector in the record under id, in the backend. */
static void damage_record(qz_storage *s, uint64_t id)
{
    unsigned char key[8];
    for (int i = 0; i < 8; i++) key[i] = (unsigned char)(id >> (56 - 8 * i));
    qz_storage_txn *t = NULL;
    TU_OK(s->begin(s, 0, &t));
    const void *v;
    size_t vl;
    TU_OK(s->get(s, t, QZ_TABLE_VECTORS, key, 8, &v, &vl));
    unsigned char *c = malloc(vl);
    memcpy(c, v, vl);
    c[16 + 5] ^= 0x40; /* inside the vector (after seq, lengths) */
    TU_OK(s->put(s, t, QZ_TABLE_VECTORS, key, 8, c, vl));
    TU_OK(s->commit(s, t));
    free(c);
}

static void damaged_or_unreadable_storage_is_reported(void **state)
{
    (void)state;
    const size_t n = 500;
    float *x = tu_dataset(n, DIM, 10, 31);
    uint64_t *ids = iota(n);
    qz_storage *mem = NULL, *s = NULL;
    TU_OK(qz__storage_mem_open(&mem));
    TU_OK(fault_storage_wrap(mem, FAULT_STORAGE_OWN, &s));
    qz_open_options o = opts(QZ_DTYPE_INT8, QZ_METRIC_L2, QZ_OPEN_ORIGINALS_IN_STORAGE, QZ_DURABILITY_SYNC);
    qz_db *db;
    TU_OK(qz_db_open_storage(s, &o, &db));
    TU_OK(qz_db_insert_batch(db, n, ids, x, DIM, NULL, NULL, 0));
    check_get(db, x, 0, n); /* SYNC without a log: every original is in the backend already */

    damage_record(mem, 77);
    uint64_t got[K];
    float d[K];
    size_t ng = 99;
    assert_int_equal(qz_db_search(db, x + 77 * DIM, DIM, K, NULL, got, d, &ng), QZ_ECORRUPT);
    assert_non_null(strstr(qz_errmsg(), "77"));
    float v[DIM];
    assert_int_equal(qz_db_get(db, 77, v, DIM, NULL, 0, NULL), QZ_ECORRUPT);
    assert_non_null(strstr(qz_errmsg(), "77"));
    check_get(db, x, 0, 77); /* the others still read */
    /* a record gone from storage while the index holds it is damage too */
    unsigned char key[8] = {0, 0, 0, 0, 0, 0, 0, 88};
    qz_storage_txn *t = NULL;
    TU_OK(mem->begin(mem, 0, &t));
    TU_OK(mem->del(mem, t, QZ_TABLE_VECTORS, key, 8));
    TU_OK(mem->commit(mem, t));
    assert_int_equal(qz_db_get(db, 88, v, DIM, NULL, 0, NULL), QZ_ECORRUPT);
    assert_non_null(strstr(qz_errmsg(), "88"));
    TU_OK(qz_db_search(db, x + 300 * DIM, DIM, 1, NULL, got, d, &ng));
    assert_int_equal(got[0], 300);

    fault_storage_read_errors(s, 1);
    assert_int_equal(qz_db_search(db, x + 300 * DIM, DIM, K, NULL, got, d, &ng), QZ_EIO);
    assert_int_equal(qz_db_get(db, 300, v, DIM, NULL, 0, NULL), QZ_EIO);
    fault_storage_read_errors(s, 0);
    TU_OK(qz_db_search(db, x + 300 * DIM, DIM, 1, NULL, got, d, &ng));
    assert_int_equal(got[0], 300);
    TU_OK(qz_db_close(db));
    s->close(s);
    free(x), free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refusals),
        cmocka_unit_test(results_are_exact_pinned_and_stored),
        cmocka_unit_test(upsert_churn_and_deletes_read_current_vectors),
        cmocka_unit_test(readers_during_upserts_see_some_version_exactly),
        cmocka_unit_test(sigkilled_writers_sync_writes_read_back_from_storage),
        cmocka_unit_test(damaged_or_unreadable_storage_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
