/*
 * test_persist.c - durable directories (real LMDB on the disk under /tmp):
 * a database closed and reopened answers every search and get exactly as
 * before (ids and distances), also after deletes and upserts and after a
 * process that flushed and exited without closing; a second writer process
 * is refused with QZ_EBUSY and damages nothing; read-only opens read and
 * refuse writes; stored dimensions and metric are enforced or adopted; a
 * database grows past LMDB's initial map; and opening a big database after
 * a clean close loads the graph snapshot instead of inserting again.
 *
 * Child processes are real fork()ed processes; they report through exit
 * codes and shared memory and never run cmocka assertions.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* White-box checks of the big-database test (internal headers; the test
 * links the internal library): the LMDB map size and whether the last open
 * inserted anything beyond the snapshot. */
#include "engine/engine.h"
#include "storage/storage.h"
#include "wal/journal.h"

#define DIM 32
#define N 3000
#define NQ 300
#define K 10
#define MAXID 4000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *db_path(char **tmp)
{
    *tmp = tu_tempdir();
    char *p = malloc(strlen(*tmp) + 8);
    sprintf(p, "%s/db", *tmp);
    return p;
}

static void drop_dir(char *tmp, char *path)
{
    tu_rmtree(tmp);
    free(tmp);
    free(path);
}

static qz_open_options base_opts(uint32_t metric)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = metric;
    o.M = 12;
    o.ef_construction = 100;
    o.ef_search = 64;
    return o;
}

static void make_meta(char *buf, size_t cap, uint64_t id, uint64_t version, size_t *len)
{
    /* Lengths vary from 20 to ~60 bytes; version 0 means "no metadata". */
    int n = snprintf(buf, cap, "{\"id\":%llu,\"v\":%llu,\"pad\":\"%.*s\"}", (unsigned long long)id,
                     (unsigned long long)version, (int)(id % 30), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    *len = (size_t)n;
}

/* ---- snapshots of what a database answers -------------------------------- */

typedef struct answers {
    /* searches */
    uint64_t ids[NQ][K];
    float dist[NQ][K];
    size_t found[NQ];
    /* gets of ids 0..MAXID-1 */
    unsigned char present[MAXID];
    float vec[MAXID][DIM];
    unsigned char meta[MAXID][64];
    size_t meta_len[MAXID];
    qz_stats st;
} answers;

/* Returns 0 or the failing status (usable in child processes). */
static int record(qz_db *db, const float *qs, answers *a)
{
    memset(a, 0, sizeof *a);
    for (size_t q = 0; q < NQ; q++) {
        int rc = qz_db_search(db, qs + q * DIM, DIM, K, NULL, a->ids[q], a->dist[q], &a->found[q]);
        if (rc) return rc;
    }
    for (uint64_t id = 0; id < MAXID; id++) {
        int rc = qz_db_get(db, id, a->vec[id], DIM, a->meta[id], sizeof a->meta[id], &a->meta_len[id]);
        if (rc == QZ_ENOTFOUND) continue;
        if (rc) return rc;
        a->present[id] = 1;
    }
    a->st.struct_size = sizeof a->st;
    return qz_db_stats(db, &a->st);
}

static void expect_same(const answers *want, const answers *got, int searches)
{
    if (searches) {
        for (size_t q = 0; q < NQ; q++) {
            assert_int_equal(got->found[q], want->found[q]);
            for (size_t i = 0; i < want->found[q]; i++) {
                if (got->ids[q][i] != want->ids[q][i] || got->dist[q][i] != want->dist[q][i])
                    fail_msg("query %zu rank %zu: id %llu dist %.9g after reopen, id %llu dist %.9g before", q, i,
                             (unsigned long long)got->ids[q][i], got->dist[q][i],
                             (unsigned long long)want->ids[q][i], want->dist[q][i]);
            }
        }
    }
    size_t live = 0;
    for (size_t id = 0; id < MAXID; id++) {
        if (got->present[id] != want->present[id])
            fail_msg("id %zu: present %d after reopen, %d before", id, got->present[id], want->present[id]);
        if (!want->present[id]) continue;
        live++;
        assert_memory_equal(got->vec[id], want->vec[id], sizeof want->vec[id]);
        assert_int_equal(got->meta_len[id], want->meta_len[id]);
        if (want->meta_len[id]) assert_memory_equal(got->meta[id], want->meta[id], want->meta_len[id]);
    }
    assert_int_equal(got->st.count, live);
    assert_int_equal(got->st.count, want->st.count);
    assert_int_equal(got->st.dimensions, want->st.dimensions);
    assert_int_equal(got->st.metric, want->st.metric);
    assert_int_equal(got->st.M, want->st.M);
    assert_int_equal(got->st.ef_construction, want->st.ef_construction);
    if (searches) assert_int_equal(got->st.max_level, want->st.max_level);
}

/* Search results never name an id that is not present. */
static void expect_results_live(const answers *a)
{
    for (size_t q = 0; q < NQ; q++)
        for (size_t i = 0; i < a->found[q]; i++) assert_true(a->ids[q][i] < MAXID && a->present[a->ids[q][i]]);
}

/* Ids 0..N-1 by batch, metadata on every third; then 200 single inserts. */
static int build(qz_db *db, const float *x)
{
    uint64_t *ids = malloc(N * sizeof *ids);
    const void **metas = malloc(N * sizeof *metas);
    size_t *lens = malloc(N * sizeof *lens);
    char (*mb)[64] = malloc(N * sizeof *mb);
    for (size_t i = 0; i < N; i++) {
        ids[i] = i;
        if (i % 3 == 0) {
            make_meta(mb[i], sizeof mb[i], i, 1, &lens[i]);
            metas[i] = mb[i];
        } else {
            metas[i] = NULL;
            lens[i] = 0;
        }
    }
    int rc = qz_db_insert_batch(db, N - 200, ids, x, DIM, metas, lens, 0);
    for (size_t i = N - 200; rc == QZ_OK && i < N; i++) rc = qz_db_insert(db, i, x + i * DIM, DIM, metas[i], lens[i]);
    free(ids), free(metas), free(lens), free(mb);
    return rc;
}

/* Deletes every 7th id, upserts every 11th (new vector, new or no metadata),
 * inserts ids N..N+299. */
static int mutate(qz_db *db, const float *x2, uint64_t version)
{
    for (uint64_t id = 0; id < N; id += 7) {
        int rc = qz_db_delete(db, id);
        if (rc) return rc;
    }
    for (uint64_t id = 1; id < N; id += 11) {
        if (id % 7 == 0) continue;
        char m[64];
        size_t ml = 0;
        if (id % 2) make_meta(m, sizeof m, id, version, &ml);
        int rc = qz_db_upsert(db, id, x2 + id * DIM, DIM, ml ? m : NULL, ml);
        if (rc) return rc;
    }
    float *x3 = tu_dataset(300, DIM, 30, 1000 + version); /* no duplicate of any vector above */
    for (uint64_t id = N; id < N + 300; id++) {
        char m[64];
        size_t ml;
        make_meta(m, sizeof m, id, version, &ml);
        int rc = qz_db_insert(db, id, x3 + (id - N) * DIM, DIM, m, ml);
        if (rc) {
            free(x3);
            return rc;
        }
    }
    free(x3);
    return QZ_OK;
}

/* ---- tests ----------------------------------------------------------------- */

static void reopened_database_returns_identical_searches_and_gets(void **state)
{
    (void)state;
    char *tmp, *path = db_path(&tmp);
    float *x = tu_dataset(N, DIM, 30, 11), *qs = tu_dataset(NQ, DIM, 30, 12);
    answers *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    qz_open_options o = base_opts(QZ_METRIC_L2);
    qz_db *db;
    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(build(db, x));
    TU_OK(record(db, qs, before));
    assert_int_equal(before->st.count, N);
    TU_OK(qz_db_close(db));

    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(record(db, qs, after));
    expect_same(before, after, 1);
    TU_OK(qz_db_check(db));
    TU_OK(qz_db_close(db));

    /* NULL options take everything from the store. */
    TU_OK(qz_db_open(path, NULL, &db));
    TU_OK(record(db, qs, after));
    expect_same(before, after, 1);
    TU_OK(qz_db_close(db));
    free(x), free(qs), free(before), free(after);
    drop_dir(tmp, path);
}

static void reopen_after_deletes_and_upserts_returns_identical_results(void **state)
{
    (void)state;
    char *tmp, *path = db_path(&tmp);
    float *x = tu_dataset(N, DIM, 30, 21), *x2 = tu_dataset(N, DIM, 30, 22), *qs = tu_dataset(NQ, DIM, 30, 23);
    answers *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    qz_open_options o = base_opts(QZ_METRIC_COSINE);
    qz_db *db;
    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(build(db, x));
    TU_OK(qz_db_close(db));

    /* Writes on a reopened database; the gets are recorded before any flush. */
    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(mutate(db, x2, 2));
    TU_OK(record(db, qs, before));
    expect_results_live(before);
    /* The flush unlinks the deleted nodes and writes the snapshot: from here
     * on the graph is final, so the searches are recorded again. */
    TU_OK(qz_db_flush(db));
    answers *flushed = malloc(sizeof *flushed);
    TU_OK(record(db, qs, flushed));
    expect_same(before, flushed, 0);
    TU_OK(qz_db_close(db));
    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(record(db, qs, after));
    expect_same(flushed, after, 1);
    expect_results_live(after);
    TU_OK(qz_db_check(db));

    /* Deletes that stay below the repair threshold, then close without flush:
     * the gets match, and the next reopen reproduces the searches exactly. */
    for (uint64_t id = 2; id < N; id += 50) {
        if (!after->present[id]) continue;
        TU_OK(qz_db_delete(db, id));
    }
    TU_OK(qz_db_upsert(db, 5, x + 6 * DIM, DIM, "upserted last", 13));
    TU_OK(record(db, qs, before));
    TU_OK(qz_db_close(db));
    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(record(db, qs, after));
    expect_same(before, after, 0);
    expect_results_live(after);
    TU_OK(qz_db_close(db));
    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(record(db, qs, flushed));
    expect_same(after, flushed, 1);
    TU_OK(qz_db_check(db));
    TU_OK(qz_db_close(db));
    free(x), free(x2), free(qs), free(before), free(after), free(flushed);
    drop_dir(tmp, path);
}

/* cmocka catches SIGSEGV, SIGBUS, SIGILL and SIGFPE to fail the running
 * test; a fork()ed child must not do that (it would go on running the rest
 * of the suite): it dies of the signal, and the parent reports it. */
static void child_default_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
}

#define CHILD_OK(expr)                                                                                             \
    do {                                                                                                           \
        int c_rc_ = (expr);                                                                                        \
        if (c_rc_ != QZ_OK) {                                                                                      \
            fprintf(stderr, "child: %s -> %d: %s\n", #expr, c_rc_, qz_errmsg());                                   \
            _exit(2);                                                                                              \
        }                                                                                                          \
    } while (0)

static int wait_child(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
    if (WIFSIGNALED(st)) fail_msg("child died of signal %d", WTERMSIG(st));
    return WEXITSTATUS(st);
}

static void reopen_after_flush_in_child_that_exits_without_close_matches(void **state)
{
    (void)state;
    char *tmp, *path = db_path(&tmp);
    float *x = tu_dataset(N, DIM, 30, 31), *x2 = tu_dataset(N, DIM, 30, 32), *qs = tu_dataset(NQ, DIM, 30, 33);
    answers *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(shared != MAP_FAILED);
    answers *after = malloc(sizeof *after);
    for (int pass = 0; pass < 2; pass++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            child_default_signals();
            qz_open_options o = base_opts(QZ_METRIC_L2);
            o.durability = QZ_DURABILITY_BATCHED;
            qz_db *db;
            CHILD_OK(qz_db_open(path, &o, &db));
            if (pass == 0) CHILD_OK(build(db, x)); /* a fresh database */
            else CHILD_OK(mutate(db, x2, 3));      /* writes on top of what pass 0 left */
            CHILD_OK(qz_db_flush(db));
            CHILD_OK(record(db, qs, shared));
            _exit(0); /* no qz_db_close(): the process just ends */
        }
        assert_int_equal(wait_child(pid), 0);
        qz_db *db;
        qz_open_options o = base_opts(QZ_METRIC_L2);
        TU_OK(qz_db_open(path, &o, &db));
        TU_OK(record(db, qs, after));
        expect_same(shared, after, 1);
        expect_results_live(after);
        TU_OK(qz_db_check(db));
        TU_OK(qz_db_close(db)); /* pass 1's child then writes on top of this state */
    }
    munmap(shared, sizeof *shared);
    free(x), free(x2), free(qs), free(after);
    drop_dir(tmp, path);
}

static void second_writer_process_gets_ebusy_and_changes_nothing(void **state)
{
    (void)state;
    char *tmp, *path = db_path(&tmp);
    float *x = tu_dataset(N, DIM, 30, 41), *x2 = tu_dataset(N, DIM, 30, 42), *qs = tu_dataset(NQ, DIM, 30, 43);
    answers *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    qz_open_options o = base_opts(QZ_METRIC_L2);
    o.durability = QZ_DURABILITY_SYNC;
    qz_db *db;
    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(build(db, x));
    /* Unapplied writes are in the log while the other process tries. */
    for (uint64_t id = 0; id < 50; id++) TU_OK(qz_db_upsert(db, id, x2 + id * DIM, DIM, "pending", 7));
    TU_OK(qz_kv_put(db, "owner", 5, "parent", 6));

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_default_signals();
        int code = 0;
        qz_db *other = NULL;
        qz_open_options oo = base_opts(QZ_METRIC_L2);
        int rc = qz_db_open(path, &oo, &other);
        if (rc != QZ_EBUSY || other) code |= 1;
        fprintf(stderr, "child: writable open -> %d (%s): %s\n", rc, qz_strerror(rc), qz_errmsg());
        rc = qz_db_open(path, NULL, &other);
        if (rc != QZ_EBUSY || other) code |= 2;
        oo.durability = QZ_DURABILITY_NONE;
        rc = qz_db_open(path, &oo, &other);
        if (rc != QZ_EBUSY || other) code |= 4;
        _exit(code);
    }
    int code = wait_child(pid);
    if (code) fail_msg("second writer process was not refused with QZ_EBUSY (mask %d)", code);

    /* A second writable handle inside this process is refused as well. */
    qz_db *twin = NULL;
    int rc = qz_db_open(path, &o, &twin);
    print_message("second handle in the same process -> %d (%s): %s\n", rc, qz_strerror(rc), qz_errmsg());
    assert_int_equal(rc, QZ_EBUSY);
    assert_null(twin);

    /* The holder goes on working, then everything is as it wrote it. */
    for (uint64_t id = N; id < N + 100; id++) TU_OK(qz_db_insert(db, id, x2 + (id - N + 1000) * DIM, DIM, NULL, 0));
    TU_OK(qz_db_flush(db)); /* unlinks the replaced nodes: the graph is final */
    TU_OK(record(db, qs, before));
    TU_OK(qz_db_close(db));
    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(record(db, qs, after));
    expect_same(before, after, 1);
    char v[16];
    size_t vl;
    TU_OK(qz_kv_get(db, "owner", 5, v, sizeof v, &vl));
    assert_int_equal(vl, 6);
    assert_memory_equal(v, "parent", 6);
    TU_OK(qz_db_check(db));
    TU_OK(qz_db_close(db));

    /* Once the holder closed, another process may open it for writing. */
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_default_signals();
        qz_db *other = NULL;
        CHILD_OK(qz_db_open(path, NULL, &other));
        CHILD_OK(qz_db_close(other));
        _exit(0);
    }
    assert_int_equal(wait_child(pid), 0);
    free(x), free(x2), free(qs), free(before), free(after);
    drop_dir(tmp, path);
}

static void readonly_open_reads_everything_and_refuses_writes(void **state)
{
    (void)state;
    char *tmp, *path = db_path(&tmp);
    float *x = tu_dataset(N, DIM, 30, 51), *qs = tu_dataset(NQ, DIM, 30, 53);
    answers *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    qz_open_options o = base_opts(QZ_METRIC_L2);

    /* Missing directory: refused, and not created. */
    qz_open_options ro = QZ_OPEN_OPTIONS_INIT;
    ro.flags = QZ_OPEN_READONLY;
    qz_db *db = (qz_db *)1;
    int rc = qz_db_open(path, &ro, &db);
    print_message("read-only open of a missing directory -> %d (%s): %s\n", rc, qz_strerror(rc), qz_errmsg());
    assert_true(rc < 0);
    assert_null(db);
    struct stat sb;
    assert_int_equal(stat(path, &sb), -1);

    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(build(db, x));
    TU_OK(qz_kv_put(db, "k", 1, "v", 1));
    TU_OK(record(db, qs, before));
    TU_OK(qz_db_close(db));

    TU_OK(qz_db_open(path, &ro, &db));
    TU_OK(record(db, qs, after));
    expect_same(before, after, 1);
    float v[DIM] = {1};
    uint64_t id = 7;
    qz_txn *t = (qz_txn *)1;
    assert_int_equal(qz_db_insert(db, N + 1, v, DIM, NULL, 0), QZ_EREADONLY);
    assert_true(strlen(qz_errmsg()) > 0);
    assert_int_equal(qz_db_upsert(db, 1, v, DIM, NULL, 0), QZ_EREADONLY);
    assert_int_equal(qz_db_insert_batch(db, 1, &id, v, DIM, NULL, NULL, QZ_BATCH_UPSERT), QZ_EREADONLY);
    assert_int_equal(qz_db_delete(db, 1), QZ_EREADONLY);
    assert_int_equal(qz_kv_put(db, "k", 1, "w", 1), QZ_EREADONLY);
    assert_int_equal(qz_kv_delete(db, "k", 1), QZ_EREADONLY);
    assert_int_equal(qz_txn_begin(db, &t), QZ_EREADONLY);
    assert_null(t);
    assert_int_equal(qz_db_compact(db), QZ_EREADONLY);
    rc = qz_db_flush(db);
    print_message("flush of a read-only handle -> %d (%s)\n", rc, qz_strerror(rc));
    assert_true(rc == QZ_OK || rc == QZ_EREADONLY);
    TU_OK(qz_db_check(db));
    TU_OK(record(db, qs, after));
    expect_same(before, after, 1);
    /* Two read-only handles at once. */
    qz_db *db2;
    TU_OK(qz_db_open(path, &ro, &db2));
    TU_OK(qz_db_close(db2));
    TU_OK(qz_db_close(db));

    /* Nothing changed on disk. */
    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(record(db, qs, after));
    expect_same(before, after, 1);
    char b[4];
    size_t bl;
    TU_OK(qz_kv_get(db, "k", 1, b, sizeof b, &bl));
    assert_int_equal(bl, 1);
    assert_int_equal(b[0], 'v');
    TU_OK(qz_db_close(db));

    /* An empty directory holds no database: a read-only open fails. */
    char empty[512];
    snprintf(empty, sizeof empty, "%s/empty", tmp);
    assert_int_equal(mkdir(empty, 0755), 0);
    db = (qz_db *)1;
    rc = qz_db_open(empty, &ro, &db);
    print_message("read-only open of an empty directory -> %d (%s): %s\n", rc, qz_strerror(rc), qz_errmsg());
    assert_true(rc < 0);
    assert_null(db);
    free(x), free(qs), free(before), free(after);
    drop_dir(tmp, path);
}

static void reopen_with_other_dimensions_or_metric_is_refused_and_zero_adopts_stored(void **state)
{
    (void)state;
    char *tmp, *path = db_path(&tmp);
    float *x = tu_dataset(N, DIM, 30, 61), *qs = tu_dataset(NQ, DIM, 30, 63);
    answers *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    qz_open_options o = base_opts(QZ_METRIC_L2);
    o.M = 10;
    o.ef_construction = 80;
    qz_db *db;
    TU_OK(qz_db_open(path, &o, &db));
    TU_OK(build(db, x));
    TU_OK(record(db, qs, before));
    TU_OK(qz_db_close(db));

    qz_open_options bad = o;
    bad.dimensions = DIM + 1;
    db = (qz_db *)1;
    assert_int_equal(qz_db_open(path, &bad, &db), QZ_EDIM);
    print_message("dimensions %u on a %u-d database: %s\n", DIM + 1, DIM, qz_errmsg());
    assert_null(db);
    bad.dimensions = 16;
    assert_int_equal(qz_db_open(path, &bad, &db), QZ_EDIM);
    bad = o;
    bad.metric = QZ_METRIC_COSINE;
    assert_int_equal(qz_db_open(path, &bad, &db), QZ_EINVAL);
    print_message("cosine on an L2 database: %s\n", qz_errmsg());
    assert_null(db);
    bad.metric = QZ_METRIC_IP;
    assert_int_equal(qz_db_open(path, &bad, &db), QZ_EINVAL);
    bad.dimensions = DIM + 1; /* both wrong: either code is a refusal */
    int rc = qz_db_open(path, &bad, &db);
    assert_true(rc == QZ_EDIM || rc == QZ_EINVAL);
    bad = o;
    bad.flags = QZ_OPEN_READONLY;
    bad.dimensions = DIM * 2;
    assert_int_equal(qz_db_open(path, &bad, &db), QZ_EDIM);

    /* Zero adopts the stored values, including M and ef_construction. */
    qz_open_options z = QZ_OPEN_OPTIONS_INIT;
    TU_OK(qz_db_open(path, &z, &db));
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.dimensions, DIM);
    assert_int_equal(st.metric, QZ_METRIC_L2);
    assert_int_equal(st.M, 10);
    assert_int_equal(st.ef_construction, 80);
    TU_OK(record(db, qs, after));
    expect_same(before, after, 1);
    /* A vector of the old dimension is accepted, another one refused. */
    float v[DIM + 1];
    for (int i = 0; i < DIM + 1; i++) v[i] = (float)i;
    assert_int_equal(qz_db_insert(db, MAXID + 1, v, DIM + 1, NULL, 0), QZ_EDIM);
    TU_OK(qz_db_insert(db, MAXID + 1, v, DIM, NULL, 0));
    TU_OK(qz_db_close(db));
    /* The refused opens left nothing behind (no lock, no changed options). */
    TU_OK(qz_db_open(path, &o, &db));
    assert_int_equal(qz_db_contains(db, MAXID + 1), 1);
    TU_OK(qz_db_close(db));
    free(x), free(qs), free(before), free(after);
    drop_dir(tmp, path);
}

/* ---- a crash after the snapshot's entry point changed ------------------------ */

/* Every live id of 0..n-1 and extra.. is found by a search for its own
 * vector with ef above the count; returns how many are not. */
static size_t own_vector_misses(qz_db *db, const float *x, size_t n, const float *y, size_t ny, uint64_t skip_id)
{
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = (uint32_t)(2 * (n + ny));
    size_t misses = 0;
    for (size_t i = 0; i < n + ny; i++) {
        uint64_t id = i < n ? i : MAXID + (i - n);
        if (id == skip_id) continue;
        const float *v = i < n ? x + i * DIM : y + (i - n) * DIM;
        uint64_t got;
        float d;
        size_t found;
        TU_OK(qz_db_search(db, v, DIM, 1, &sp, &got, &d, &found));
        misses += !(found == 1 && got == id && d == 0.0f);
    }
    return misses;
}

static void reopen_after_crash_that_replaced_the_snapshot_entry_point_keeps_all_findable(void **state)
{
    (void)state;
    char *tmp, *path = db_path(&tmp);
    const size_t n = 500, ny = 20;
    float *x = tu_dataset(n, DIM, 10, 71), *y = tu_dataset(ny, DIM, 10, 72), *z = tu_dataset(1, DIM, 10, 73);
    size_t misses[2];
    mallopt(M_PERTURB, 0x80); /* freshly malloc()ed memory is not zero */
    for (int mode = 0; mode < 2; mode++) {
        tu_rmtree(path);
        qz_open_options o = base_opts(QZ_METRIC_L2);
        o.durability = QZ_DURABILITY_SYNC;
        o.threads = 1;
        qz_db *db;
        TU_OK(qz_db_open(path, &o, &db));
        uint64_t *ids = malloc(n * sizeof *ids);
        for (size_t i = 0; i < n; i++) ids[i] = i;
        TU_OK(qz_db_insert_batch(db, n, ids, x, DIM, NULL, NULL, 0));
        free(ids);
        TU_OK(qz_db_close(db)); /* snapshot */
        TU_OK(qz_db_open(path, &o, &db));
        uint64_t entry = atomic_load(&db->index->entry);
        uint64_t entry_id = db->index->labels[(uint32_t)entry];
        TU_OK(qz_db_close(db));

        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            child_default_signals();
            CHILD_OK(qz_db_open(path, &o, &db));
            if (mode == 0) CHILD_OK(qz_db_delete(db, entry_id));
            else CHILD_OK(qz_db_upsert(db, entry_id, z, DIM, NULL, 0));
            for (size_t i = 0; i < ny; i++) CHILD_OK(qz_db_insert(db, MAXID + i, y + i * DIM, DIM, NULL, 0));
            _exit(0); /* SYNC: all acknowledged; no close, so the snapshot is the old one */
        }
        assert_int_equal(wait_child(pid), 0);
        TU_OK(qz_db_open(path, &o, &db));
        misses[mode] = own_vector_misses(db, x, n, y, ny, entry_id);
        print_message("entry point (id %llu) %s after the snapshot, crash, reopen: %zu of %zu stored vectors not found "
                      "by a search for themselves\n",
                      (unsigned long long)entry_id, mode ? "upserted" : "deleted", misses[mode], n + ny - 1);
        TU_OK(qz_db_check(db));
        TU_OK(qz_db_close(db));
    }
    mallopt(M_PERTURB, 0);
    free(x), free(y), free(z);
    drop_dir(tmp, path);
    assert_int_equal(misses[0], 0);
    assert_int_equal(misses[1], 0);
}

/* ---- big database ---------------------------------------------------------- */

#define BIG_DIM 1024
#define BIG_N 32768 /* 128 MiB of f32; each record takes 2 LMDB pages: 256 MiB > the initial map */
#define BIG_CHUNK 4096
#define BIG_NQ 50

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static void big_vec(float *v, uint64_t id)
{
    uint64_t s = mix(id + 1);
    for (size_t i = 0; i < BIG_DIM; i++) {
        s += 0x9e3779b97f4a7c15ull;
        v[i] = (float)(mix(s) >> 40) * (1.0f / 16777216.0f) - 0.5f;
    }
}

static void database_grows_past_initial_map_and_clean_reopen_inserts_nothing(void **state)
{
    (void)state;
    char *tmp, *path = db_path(&tmp);
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = BIG_DIM;
    o.metric = QZ_METRIC_L2;
    o.M = 4;
    o.ef_construction = 16;
    o.ef_search = 16;
    o.durability = QZ_DURABILITY_NONE;
    o.initial_capacity = BIG_N;
    float *chunk = malloc((size_t)BIG_CHUNK * BIG_DIM * sizeof *chunk);
    uint64_t *ids = malloc(BIG_CHUNK * sizeof *ids);
    double t0 = now_s();
    qz_db *db;
    TU_OK(qz_db_open(path, &o, &db));
    for (size_t c = 0; c < BIG_N; c += BIG_CHUNK) {
        for (size_t i = 0; i < BIG_CHUNK; i++) {
            ids[i] = c + i;
            big_vec(chunk + i * BIG_DIM, c + i);
        }
        TU_OK(qz_db_insert_batch(db, BIG_CHUNK, ids, chunk, BIG_DIM, NULL, NULL, 0));
    }
    TU_OK(qz_db_flush(db));
    double t_insert = now_s() - t0;
    uint64_t map = qz__storage_lmdb_map_size(db->storage);
    print_message("LMDB map after %d x %d-d vectors: %llu MiB (initial %llu MiB)\n", BIG_N, BIG_DIM,
                  (unsigned long long)(map >> 20), (unsigned long long)(QZ__LMDB_DEFAULT_MAP >> 20));
    assert_true(map > QZ__LMDB_DEFAULT_MAP);

    float *qs = malloc((size_t)BIG_NQ * BIG_DIM * sizeof *qs);
    for (size_t q = 0; q < BIG_NQ; q++) big_vec(qs + q * BIG_DIM, 1000000 + q);
    uint64_t (*rid)[K] = malloc(BIG_NQ * sizeof *rid), (*rid2)[K] = malloc(BIG_NQ * sizeof *rid2);
    float (*rd)[K] = malloc(BIG_NQ * sizeof *rd), (*rd2)[K] = malloc(BIG_NQ * sizeof *rd2);
    for (size_t q = 0; q < BIG_NQ; q++) {
        size_t n;
        TU_OK(qz_db_search(db, qs + q * BIG_DIM, BIG_DIM, K, NULL, rid[q], rd[q], &n));
        assert_int_equal(n, K);
    }
    qz_stats st0 = {.struct_size = sizeof st0};
    TU_OK(qz_db_stats(db, &st0));
    TU_OK(qz_db_close(db));
    double t_build = now_s() - t0;
    struct stat sb;
    char f[512];
    snprintf(f, sizeof f, "%s/data.mdb", path);
    assert_int_equal(stat(f, &sb), 0);
    print_message("data.mdb: %lld MiB\n", (long long)(sb.st_size >> 20));
    assert_true((uint64_t)sb.st_size > QZ__LMDB_DEFAULT_MAP);

    qz_open_options z = QZ_OPEN_OPTIONS_INIT;
    double t1 = now_s();
    TU_OK(qz_db_open(path, &z, &db));
    double t_open = now_s() - t1;
    print_message("build (open + %d inserts + close) %.2f s (inserts+flush %.2f s); reopen %.3f s (%.1fx faster)\n",
                  BIG_N, t_build, t_insert, t_open, t_build / t_open);
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    print_message("stats before close: count %llu max_level %u capacity %llu; after reopen: count %llu max_level %u "
                  "capacity %llu\n",
                  (unsigned long long)st0.count, st0.max_level, (unsigned long long)st0.capacity,
                  (unsigned long long)st.count, st.max_level, (unsigned long long)st.capacity);
    assert_int_equal(st.count, BIG_N);
    assert_int_equal(st.deleted, 0);
    assert_int_equal(st.max_level, st0.max_level);
    /* The open took every node from the snapshot: nothing was inserted, so
     * the graph is unchanged and does not need a new snapshot. */
    assert_int_equal(atomic_load(&db->snapshot_dirty), 0);
    assert_int_equal(atomic_load(&db->reinserted), 0);
    for (size_t q = 0; q < BIG_NQ; q++) {
        size_t n;
        TU_OK(qz_db_search(db, qs + q * BIG_DIM, BIG_DIM, K, NULL, rid2[q], rd2[q], &n));
        assert_int_equal(n, K);
    }
    assert_memory_equal(rid2, rid, BIG_NQ * sizeof *rid);
    assert_memory_equal(rd2, rd, BIG_NQ * sizeof *rd);
    float *got = malloc(BIG_DIM * sizeof *got), *want = malloc(BIG_DIM * sizeof *want);
    for (uint64_t id = 0; id < BIG_N; id += 97) {
        TU_OK(qz_db_get(db, id, got, BIG_DIM, NULL, 0, NULL));
        big_vec(want, id);
        assert_memory_equal(got, want, BIG_DIM * sizeof *got);
    }
    /* The reopened database takes more writes. */
    big_vec(want, BIG_N);
    TU_OK(qz_db_insert(db, BIG_N, want, BIG_DIM, NULL, 0));
    TU_OK(qz_db_close(db));
    free(chunk), free(ids), free(qs), free(rid), free(rid2), free(rd), free(rd2), free(got), free(want);
    drop_dir(tmp, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reopened_database_returns_identical_searches_and_gets),
        cmocka_unit_test(reopen_after_deletes_and_upserts_returns_identical_results),
        cmocka_unit_test(reopen_after_flush_in_child_that_exits_without_close_matches),
        cmocka_unit_test(second_writer_process_gets_ebusy_and_changes_nothing),
        cmocka_unit_test(readonly_open_reads_everything_and_refuses_writes),
        cmocka_unit_test(reopen_with_other_dimensions_or_metric_is_refused_and_zero_adopts_stored),
        cmocka_unit_test(reopen_after_crash_that_replaced_the_snapshot_entry_point_keeps_all_findable),
        cmocka_unit_test(database_grows_past_initial_map_and_clean_reopen_inserts_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
