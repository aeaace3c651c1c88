/*
 * test_threads.c - one handle shared by writers and searchers at once.
 *
 * Writers insert, upsert and delete while searchers and getters run. The
 * checks are the header's promises: a search returns only ids that exist
 * or existed, never one deleted before the search began, never the same id
 * twice, sorted; get returns a vector consistent with its metadata; the
 * stable base vectors are always found; the index passes its invariant
 * check afterwards. The index starts tiny so growth happens under load, and
 * enough deletes happen for batch repairs to run under load. CI runs this
 * under ThreadSanitizer as well.
 *
 * upserted_ids_are_never_missed checks the upsert promise on its own: a
 * search that runs while its id is being replaced returns the id (with the
 * old or the new vector). QZ_THREADS_SECONDS sets its length (default 5).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#define DIM 16
#define BASE 1500
#define WRITERS 2
#define READERS 2
#define PER_WRITER 1500
#define WBASE 100000u

static qz_db *db;
static float *base;
static atomic_ulong clock_;
static atomic_ulong deleted_at[WRITERS * PER_WRITER];
static atomic_int stop_readers;
static atomic_long violations, searches, gets_ok, self_misses;
static atomic_long vkind[8];
#define VIOLATION(k) (atomic_fetch_add(&violations, 1), atomic_fetch_add(&vkind[k], 1))

/* Vector of writer id `id` at version `ver`, a pure function of both: a
 * base vector plus noise, so writes come from the data's own distribution. */
static void make_vec(uint64_t id, unsigned ver, float *v)
{
    tu_rng r = {id * 1000003u + ver};
    const float *b = base + (tu_next(&r) % BASE) * DIM;
    for (int i = 0; i < DIM; i++) v[i] = b[i] + (float)tu_normal(&r) * 0.5f;
}

static void *writer(void *arg)
{
    int w = (int)(intptr_t)arg;
    float v[DIM];
    char meta[16];
    for (unsigned i = 0; i < PER_WRITER; i++) {
        uint64_t id = WBASE + (uint64_t)w * PER_WRITER + i;
        make_vec(id, 0, v);
        int n = snprintf(meta, sizeof meta, "v0");
        TU_OK(qz_db_insert(db, id, v, DIM, meta, (size_t)n));
        if (i % 3 == 1) { /* replace an earlier one of ours */
            uint64_t old = id - 1;
            make_vec(old, 1, v);
            n = snprintf(meta, sizeof meta, "v1");
            TU_OK(qz_db_upsert(db, old, v, DIM, meta, (size_t)n));
        }
        if (i % 2 == 0 && i > 10) { /* delete an earlier one of ours */
            uint64_t gone = id - 10;
            TU_OK(qz_db_delete(db, gone));
            atomic_store(&deleted_at[gone - WBASE], atomic_fetch_add(&clock_, 1) + 1);
        }
    }
    return NULL;
}

static void *searcher(void *arg)
{
    unsigned seed = (unsigned)(intptr_t)arg;
    tu_rng r = {seed};
    while (!atomic_load(&stop_readers)) {
        size_t qi = tu_next(&r) % BASE;
        unsigned long start = atomic_load(&clock_);
        uint64_t ids[20];
        float d[20];
        size_t n;
        qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
        sp.ef = 64;
        TU_OK(qz_db_search(db, base + qi * DIM, DIM, 20, &sp, ids, d, &n));
        atomic_fetch_add(&searches, 1);
        if (n != 20) VIOLATION(0);
        if (n && ids[0] != qi) atomic_fetch_add(&self_misses, 1); /* approximate: counted, not a violation */
        for (size_t i = 0; i < n; i++) {
            uint64_t id = ids[i];
            int known = id < BASE || (id >= WBASE && id < WBASE + WRITERS * PER_WRITER);
            if (!known) VIOLATION(2);
            if (id >= WBASE && known) {
                unsigned long at = atomic_load(&deleted_at[id - WBASE]);
                if (at && at <= start) VIOLATION(3);
            }
            for (size_t j = 0; j < i; j++)
                if (ids[j] == id) VIOLATION(4);
            if (i && d[i] < d[i - 1]) VIOLATION(5);
        }
    }
    return NULL;
}

static void *getter(void *arg)
{
    tu_rng r = {(uint64_t)(intptr_t)arg};
    while (!atomic_load(&stop_readers)) {
        uint64_t id = WBASE + tu_next(&r) % (WRITERS * PER_WRITER);
        float got[DIM], want[DIM];
        char meta[16];
        size_t len;
        int rc = qz_db_get(db, id, got, DIM, meta, sizeof meta, &len);
        if (rc == QZ_ENOTFOUND) continue;
        if (rc != QZ_OK || len != 2 || meta[0] != 'v') {
            VIOLATION(6);
            continue;
        }
        make_vec(id, (unsigned)(meta[1] - '0'), want);
        if (memcmp(got, want, sizeof got)) VIOLATION(7);
        atomic_fetch_add(&gets_ok, 1);
    }
    return NULL;
}

static void searches_run_during_inserts_upserts_and_deletes(void **state)
{
    (void)state;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.M = 12;
    o.ef_construction = 64;
    o.initial_capacity = 256;
    TU_OK(qz_db_open(NULL, &o, &db));
    base = tu_dataset(BASE, DIM, 8, 77);
    uint64_t *ids = malloc(BASE * sizeof *ids);
    for (size_t i = 0; i < BASE; i++) ids[i] = i;
    TU_OK(qz_db_insert_batch(db, BASE, ids, base, DIM, NULL, NULL, 0));

    pthread_t w[WRITERS], s[READERS], g;
    for (int i = 0; i < READERS; i++) pthread_create(&s[i], NULL, searcher, (void *)(intptr_t)(i + 1));
    pthread_create(&g, NULL, getter, (void *)(intptr_t)99);
    for (int i = 0; i < WRITERS; i++) pthread_create(&w[i], NULL, writer, (void *)(intptr_t)i);
    for (int i = 0; i < WRITERS; i++) pthread_join(w[i], NULL);
    atomic_store(&stop_readers, 1);
    for (int i = 0; i < READERS; i++) pthread_join(s[i], NULL);
    pthread_join(g, NULL);

    print_message("%ld searches and %ld successful gets ran beside the writers; %ld violations\n",
                  atomic_load(&searches), atomic_load(&gets_ok), atomic_load(&violations));
    for (int k = 0; k < 8; k++)
        if (atomic_load(&vkind[k])) print_message("violation kind %d: %ld\n", k, atomic_load(&vkind[k]));
    assert_int_equal(atomic_load(&violations), 0);
    assert_true(atomic_load(&searches) > 0);
    print_message("the query's own vector was not the top hit in %ld searches\n", atomic_load(&self_misses));
    assert_true(atomic_load(&self_misses) * 50 <= atomic_load(&searches)); /* >= 98% */
    TU_OK(qz_db_check(db));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    size_t deleted = 0;
    for (size_t i = 0; i < WRITERS * PER_WRITER; i++) deleted += atomic_load(&deleted_at[i]) != 0;
    assert_int_equal(st.count, BASE + WRITERS * PER_WRITER - deleted);
    free(ids);
    free(base);
    qz_db_close(db);
}

/* ---- the upsert promise ----
 * UP_IDS ids, each with two fixed vectors A and B within 0.01 per component
 * of a centre drawn like the background (unit normal): A and B are ~0.06
 * apart, any other vector ~2 or more away. Writers upsert their ids
 * between A and B round-robin and publish which id they are replacing right
 * now; searchers query that id's A or B with a small k and require the id
 * among the results. The set is small and ef covers a third of it, so the
 * walk cannot miss the id's node for approximation: a miss is a broken
 * promise. (Centres far away from everything were tried first: such nodes
 * get pruned from every neighbour's list and are reachable only after a
 * repair relinks them, so they measure orphans, not this promise.) A third
 * thread compacts, so repairs run under the searches too. */
#define UP_IDS 64
#define UP_BG 300
#define UP_WRITERS 2
#define UP_SEARCHERS 2
#define UP_BASE 500000u

static float up_vec[UP_IDS][2][DIM];
static _Atomic uint64_t up_current[UP_WRITERS];
static atomic_int up_stop;
static atomic_long up_searches, up_misses, up_upserts, up_compactions;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *up_writer(void *arg)
{
    int w = (int)(intptr_t)arg;
    unsigned ver[UP_IDS] = {0};
    while (!atomic_load(&up_stop)) {
        for (unsigned i = (unsigned)w; i < UP_IDS && !atomic_load(&up_stop); i += UP_WRITERS) {
            ver[i] ^= 1;
            atomic_store(&up_current[w], UP_BASE + i);
            TU_OK(qz_db_upsert(db, UP_BASE + i, up_vec[i][ver[i]], DIM, NULL, 0));
            atomic_fetch_add(&up_upserts, 1);
        }
    }
    return NULL;
}

static void *up_searcher(void *arg)
{
    tu_rng r = {(uint64_t)(intptr_t)arg};
    while (!atomic_load(&up_stop)) {
        uint64_t id = atomic_load(&up_current[tu_next(&r) % UP_WRITERS]);
        if (tu_next(&r) % 4 == 0) id = UP_BASE + tu_next(&r) % UP_IDS; /* now and then one at rest */
        const float *q = up_vec[id - UP_BASE][tu_next(&r) & 1];
        uint64_t ids[3];
        size_t n;
        qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
        sp.ef = 100;
        TU_OK(qz_db_search(db, q, DIM, 3, &sp, ids, NULL, &n));
        int hit = 0;
        for (size_t i = 0; i < n; i++) hit |= ids[i] == id;
        atomic_fetch_add(&up_searches, 1);
        if (!hit) atomic_fetch_add(&up_misses, 1);
    }
    return NULL;
}

static void *up_compactor(void *arg)
{
    (void)arg;
    while (!atomic_load(&up_stop)) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        TU_OK(qz_db_compact(db));
        atomic_fetch_add(&up_compactions, 1);
    }
    return NULL;
}

static void upserted_ids_are_never_missed(void **state)
{
    (void)state;
    const char *env = getenv("QZ_THREADS_SECONDS");
    double seconds = env ? atof(env) : 5.0;
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.M = 8;
    o.ef_construction = 64;
    TU_OK(qz_db_open(NULL, &o, &db));
    /* Background and centres: unit normal; A and B: centre + N(0, 0.01). */
    tu_rng r = {4242};
    float *bg = tu_dataset(UP_BG, DIM, 0, 4243);
    uint64_t *bids = malloc(UP_BG * sizeof *bids);
    for (size_t i = 0; i < UP_BG; i++) bids[i] = i;
    TU_OK(qz_db_insert_batch(db, UP_BG, bids, bg, DIM, NULL, NULL, 0));
    for (int i = 0; i < UP_IDS; i++) {
        float c[DIM];
        for (int j = 0; j < DIM; j++) c[j] = (float)tu_normal(&r);
        for (int v = 0; v < 2; v++)
            for (int j = 0; j < DIM; j++) up_vec[i][v][j] = c[j] + (float)tu_normal(&r) * 0.01f;
        TU_OK(qz_db_insert(db, UP_BASE + (uint64_t)i, up_vec[i][0], DIM, NULL, 0));
    }
    for (int w = 0; w < UP_WRITERS; w++) atomic_store(&up_current[w], UP_BASE + (uint64_t)w);

    pthread_t w[UP_WRITERS], s[UP_SEARCHERS], c;
    for (int i = 0; i < UP_SEARCHERS; i++) pthread_create(&s[i], NULL, up_searcher, (void *)(intptr_t)(i + 7));
    for (int i = 0; i < UP_WRITERS; i++) pthread_create(&w[i], NULL, up_writer, (void *)(intptr_t)i);
    pthread_create(&c, NULL, up_compactor, NULL);
    double t0 = now_s();
    while (now_s() - t0 < seconds) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&up_stop, 1);
    for (int i = 0; i < UP_WRITERS; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < UP_SEARCHERS; i++) pthread_join(s[i], NULL);
    pthread_join(c, NULL);
    print_message("%.1f s: %ld upserts, %ld compactions, %ld searches of an id being upserted, %ld missed it\n",
                  seconds, atomic_load(&up_upserts), atomic_load(&up_compactions), atomic_load(&up_searches),
                  atomic_load(&up_misses));
    assert_true(atomic_load(&up_searches) > 0);
    assert_int_equal(atomic_load(&up_misses), 0);
    TU_OK(qz_db_check(db));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, UP_BG + UP_IDS);
    free(bg);
    free(bids);
    qz_db_close(db);
    db = NULL;
}

static void parallel_batch_inserts_from_two_threads_all_land(void **state)
{
    (void)state;
    qz_db *d2 = tu_open_mem(DIM, QZ_METRIC_COSINE, 8, 32);
    float *x = tu_dataset(4000, DIM, 0, 5);
    uint64_t *ids = malloc(4000 * sizeof *ids);
    for (size_t i = 0; i < 4000; i++) ids[i] = i;
    TU_OK(qz_db_insert_batch(d2, 2000, ids, x, DIM, NULL, NULL, 0));
    TU_OK(qz_db_insert_batch(d2, 2000, ids + 2000, x + 2000 * DIM, DIM, NULL, NULL, 0));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(d2, &st));
    assert_int_equal(st.count, 4000);
    TU_OK(qz_db_check(d2));
    free(x);
    free(ids);
    qz_db_close(d2);
}

static void *fail_then_read(void *arg)
{
    (void)arg;
    assert_int_equal(qz_db_delete(db, 424242), QZ_ENOTFOUND);
    return strdup(qz_errmsg());
}

static void errmsg_belongs_to_the_calling_thread(void **state)
{
    (void)state;
    db = tu_open_mem(DIM, QZ_METRIC_L2, 8, 16);
    float v[DIM] = {1};
    TU_OK(qz_db_insert(db, 1, v, DIM, NULL, 0));
    pthread_t t;
    pthread_create(&t, NULL, fail_then_read, NULL);
    void *msg;
    pthread_join(t, &msg);
    assert_non_null(strstr(msg, "424242"));
    assert_string_equal(qz_errmsg(), ""); /* this thread's last call succeeded */
    free(msg);
    qz_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(searches_run_during_inserts_upserts_and_deletes),
        cmocka_unit_test(upserted_ids_are_never_missed),
        cmocka_unit_test(parallel_batch_inserts_from_two_threads_all_land),
        cmocka_unit_test(errmsg_belongs_to_the_calling_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
