/* test_storage_lmdb.c - the LMDB storage backend on a real directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"
#include "util/alloc.h"
#include "util/error.h"

/* ---- helpers ---- */

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/qz_lmdb_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int setup_dir(void **state)
{
    *state = make_tmpdir();
    return 0;
}

static int teardown_dir(void **state)
{
    remove_tree(*state);
    free(*state);
    return 0;
}

static void key_of(char *k, size_t cap, int i) { snprintf(k, cap, "key%08d", i); }

static void fill_value(unsigned char *v, size_t n, int i)
{
    for (size_t j = 0; j < n; j++) v[j] = (unsigned char)(i * 31 + (int)j);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- tests ---- */

static void committed_writes_survive_reopen(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "a", 1, "one", 3), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_META, "a", 1, "meta", 4), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_GRAPH, "g", 1, NULL, 0), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
    assert_int_equal(s->sync(s), QZ_OK);
    s->close(s);

    struct stat st;
    char p[4096];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    assert_int_equal(stat(p, &st), 0);

    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    const void *v;
    size_t vl;
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "a", 1, &v, &vl), QZ_OK);
    assert_int_equal(vl, 3);
    assert_memory_equal(v, "one", 3);
    assert_int_equal(s->get(s, t, QZ_TABLE_META, "a", 1, &v, &vl), QZ_OK);
    assert_memory_equal(v, "meta", 4);
    assert_int_equal(s->get(s, t, QZ_TABLE_GRAPH, "g", 1, &v, &vl), QZ_OK);
    assert_int_equal(vl, 0);
    assert_int_equal(s->get(s, t, QZ_TABLE_VECTORS, "a", 1, &v, &vl), QZ_ENOTFOUND);
    s->abort(s, t);
    s->close(s);
}

static void aborted_writes_leave_nothing(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "x", 1, "1", 1), QZ_OK);
    s->abort(s, t);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "x", 1, NULL, NULL), QZ_ENOTFOUND);
    s->abort(s, t);
    s->close(s);
}

static void reader_keeps_snapshot_across_commit(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *w = NULL, *r = NULL;
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    assert_int_equal(s->put(s, w, QZ_TABLE_KV, "k", 1, "old", 3), QZ_OK);
    assert_int_equal(s->commit(s, w), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &r), QZ_OK);
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    assert_int_equal(s->put(s, w, QZ_TABLE_KV, "k", 1, "new", 3), QZ_OK);
    assert_int_equal(s->put(s, w, QZ_TABLE_KV, "k2", 2, "x", 1), QZ_OK);
    assert_int_equal(s->commit(s, w), QZ_OK);
    const void *v;
    size_t vl;
    assert_int_equal(s->get(s, r, QZ_TABLE_KV, "k", 1, &v, &vl), QZ_OK);
    assert_memory_equal(v, "old", 3);
    assert_int_equal(s->get(s, r, QZ_TABLE_KV, "k2", 2, &v, &vl), QZ_ENOTFOUND);
    s->abort(s, r);
    s->close(s);
}

static void del_of_absent_key_returns_notfound_and_txn_stays_usable(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->del(s, t, QZ_TABLE_KV, "nope", 4), QZ_ENOTFOUND);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "yes", 3, "1", 1), QZ_OK);
    assert_int_equal(s->del(s, t, QZ_TABLE_KV, "yes", 3), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "kept", 4, "2", 1), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "yes", 3, NULL, NULL), QZ_ENOTFOUND);
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "kept", 4, NULL, NULL), QZ_OK);
    s->abort(s, t);
    s->close(s);
}

typedef struct collect {
    char keys[32][16];
    int n;
} collect;

static int collect_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    (void)v;
    (void)vl;
    collect *c = user;
    assert_true(kl < 16 && c->n < 32);
    memcpy(c->keys[c->n], k, kl);
    c->keys[c->n][kl] = '\0';
    c->n++;
    return 0;
}

static void scan_visits_prefix_in_byte_order(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    const char *keys[] = {"b", "ab", "a", "abc", "aa", "\xff", "ac", "abd"};
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_int_equal(s->put(s, t, QZ_TABLE_KV, keys[i], strlen(keys[i]), "v", 1), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    collect c = {.n = 0};
    assert_int_equal(s->scan(s, t, QZ_TABLE_KV, "ab", 2, collect_fn, &c), QZ_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.keys[0], "ab");
    assert_string_equal(c.keys[1], "abc");
    assert_string_equal(c.keys[2], "abd");
    c.n = 0;
    assert_int_equal(s->scan(s, t, QZ_TABLE_KV, NULL, 0, collect_fn, &c), QZ_OK);
    assert_int_equal(c.n, 8);
    assert_string_equal(c.keys[0], "a");
    assert_string_equal(c.keys[7], "\xff");
    c.n = 0;
    assert_int_equal(s->scan(s, t, QZ_TABLE_VECTORS, NULL, 0, collect_fn, &c), QZ_OK);
    assert_int_equal(c.n, 0);
    s->abort(s, t);
    s->close(s);
}

static void clear_empties_table(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    for (int i = 0; i < 100; i++) {
        char k[32];
        key_of(k, sizeof k, i);
        assert_int_equal(s->put(s, t, QZ_TABLE_GRAPH, k, strlen(k), "v", 1), QZ_OK);
    }
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "stay", 4, "v", 1), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->clear(s, t, QZ_TABLE_GRAPH), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    collect c = {.n = 0};
    assert_int_equal(s->scan(s, t, QZ_TABLE_GRAPH, NULL, 0, collect_fn, &c), QZ_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "stay", 4, NULL, NULL), QZ_OK);
    s->abort(s, t);
    s->close(s);
}

static void oversized_key_is_refused(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    char big[600];
    memset(big, 'x', sizeof big);
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, big, 511, "v", 1), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, big, 512, "v", 1), QZ_EINVAL);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, big, 0, "v", 1), QZ_EINVAL);
    assert_int_equal(s->commit(s, t), QZ_OK); /* our own checks do not poison the txn */
    s->close(s);
}

/* Writes ~24 MiB in one transaction into a 64 KiB map, then more in small
 * transactions: MAP_FULL must never surface and everything must read back. */
/* Operations are recorded in 1 MiB chunks for the replay after a map
 * resize: a value larger than a chunk gets a chunk of its own, between
 * small ones, and all of them replay in order. */
static void values_larger_than_a_record_chunk_replay_after_map_growth(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open_ex(dir, QZ__LMDB_NOSYNC, 64 * 1024, &s), QZ_OK);
    const size_t big = (5u << 20) / 2; /* 2.5 MiB */
    unsigned char *v = malloc(big);
    assert_non_null(v);
    qz_storage_txn *t = NULL;
    char k[32];
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    for (int i = 0; i < 9; i++) {
        key_of(k, sizeof k, i);
        size_t len = i % 3 == 1 ? big : (size_t)(100 + i);
        fill_value(v, len, i);
        assert_int_equal(s->put(s, t, QZ_TABLE_KV, k, strlen(k), v, len), QZ_OK);
    }
    assert_int_equal(s->commit(s, t), QZ_OK);
    assert_true(qz__storage_lmdb_map_size(s) >= 3 * big);
    s->close(s);
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_NOSYNC, &s), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    for (int i = 0; i < 9; i++) {
        const void *rv;
        size_t rl, len = i % 3 == 1 ? big : (size_t)(100 + i);
        key_of(k, sizeof k, i);
        fill_value(v, len, i);
        assert_int_equal(s->get(s, t, QZ_TABLE_KV, k, strlen(k), &rv, &rl), QZ_OK);
        assert_int_equal(rl, len);
        assert_memory_equal(rv, v, len);
    }
    s->abort(s, t);
    s->close(s);
    free(v);
}

static void map_grows_past_tiny_initial_size(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    const uint64_t initial = 64 * 1024;
    assert_int_equal(qz__storage_lmdb_open_ex(dir, QZ__LMDB_NOSYNC, initial, &s), QZ_OK);
    assert_true(qz__storage_lmdb_map_size(s) <= 1024 * 1024);
    static unsigned char v[6000];
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    for (int i = 0; i < 4000; i++) {
        char k[32];
        key_of(k, sizeof k, i);
        fill_value(v, sizeof v, i);
        assert_int_equal(s->put(s, t, QZ_TABLE_VECTORS, k, strlen(k), v, sizeof v), QZ_OK);
        if (i % 7 == 0) assert_int_equal(s->put(s, t, QZ_TABLE_KV, k, strlen(k), v, 100), QZ_OK);
        if (i % 13 == 0 && i > 0) {
            char k2[32];
            key_of(k2, sizeof k2, i - 1);
            assert_int_equal(s->del(s, t, QZ_TABLE_VECTORS, k2, strlen(k2)), QZ_OK);
        }
    }
    /* reads inside the txn see its own writes after the resize replays */
    const void *rv;
    size_t rl;
    char k[32];
    key_of(k, sizeof k, 3999);
    assert_int_equal(s->get(s, t, QZ_TABLE_VECTORS, k, strlen(k), &rv, &rl), QZ_OK);
    assert_int_equal(rl, sizeof v);
    assert_int_equal(s->commit(s, t), QZ_OK);
    for (int i = 4000; i < 6000; i++) {
        key_of(k, sizeof k, i);
        fill_value(v, sizeof v, i);
        assert_int_equal(s->begin(s, 0, &t), QZ_OK);
        assert_int_equal(s->put(s, t, QZ_TABLE_VECTORS, k, strlen(k), v, sizeof v), QZ_OK);
        assert_int_equal(s->commit(s, t), QZ_OK);
    }
    uint64_t grown = qz__storage_lmdb_map_size(s);
    assert_true(grown >= (uint64_t)6000 * sizeof v);
    assert_int_equal(s->sync(s), QZ_OK);
    s->close(s);

    assert_int_equal(qz__storage_lmdb_open_ex(dir, 0, initial, &s), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    for (int i = 0; i < 6000; i++) {
        key_of(k, sizeof k, i);
        int rc = s->get(s, t, QZ_TABLE_VECTORS, k, strlen(k), &rv, &rl);
        int deleted = i < 4000 && (i + 1) % 13 == 0 && i + 1 < 4000;
        if (deleted) {
            assert_int_equal(rc, QZ_ENOTFOUND);
            continue;
        }
        assert_int_equal(rc, QZ_OK);
        assert_int_equal(rl, sizeof v);
        fill_value(v, sizeof v, i);
        assert_memory_equal(rv, v, sizeof v);
    }
    s->abort(s, t);
    s->close(s);
}

typedef struct reader_arg {
    qz_storage *s;
    int started; /* atomic builtins */
    int ok;
} reader_arg;

static void *slow_reader(void *p)
{
    reader_arg *a = p;
    qz_storage_txn *t = NULL;
    if (a->s->begin(a->s, QZ_TXN_READONLY, &t) != QZ_OK) return NULL;
    __atomic_store_n(&a->started, 1, __ATOMIC_RELEASE);
    sleep_ms(300); /* the writer hits MAP_FULL meanwhile and must wait for us */
    const void *v;
    size_t vl;
    a->ok = a->s->get(a->s, t, QZ_TABLE_KV, "before", 6, &v, &vl) == QZ_OK && vl == 1 && !memcmp(v, "1", 1);
    a->s->abort(a->s, t);
    return NULL;
}

static void map_grows_while_reader_is_open_on_another_thread(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open_ex(dir, QZ__LMDB_NOSYNC, 64 * 1024, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "before", 6, "1", 1), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
    reader_arg a = {s, 0, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_reader, &a), 0);
    while (!__atomic_load_n(&a.started, __ATOMIC_ACQUIRE)) sleep_ms(1);
    static unsigned char v[4000];
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    for (int i = 0; i < 2000; i++) {
        char k[32];
        key_of(k, sizeof k, i);
        assert_int_equal(s->put(s, t, QZ_TABLE_GRAPH, k, strlen(k), v, sizeof v), QZ_OK);
    }
    assert_int_equal(s->commit(s, t), QZ_OK);
    pthread_join(th, NULL);
    assert_true(a.ok);
    assert_true(qz__storage_lmdb_map_size(s) > 64 * 1024);
    s->close(s);
}

static void readonly_open_refuses_write_transactions(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "k", 1, "v", 1), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
    s->close(s);
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s), QZ_OK);
    assert_int_equal(s->begin(s, 0, &t), QZ_EREADONLY);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "k", 1, NULL, NULL), QZ_OK);
    s->abort(s, t);
    assert_int_equal(s->sync(s), QZ_OK);
    s->close(s);
}

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Read-only on a directory without an environment: QZ_ENOTFOUND and no file
 * created (LMDB itself would create lock.mdb, or fail with ENOENT/EIO). */
static void readonly_open_of_missing_env_is_enotfound_and_creates_nothing(void **state)
{
    const char *dir = *state;
    char p[4096];
    snprintf(p, sizeof p, "%s/none", dir);
    qz_storage *s = (qz_storage *)1;
    assert_int_equal(qz__storage_lmdb_exists(p), 0);
    assert_int_equal(qz__storage_lmdb_open(p, QZ__LMDB_READONLY, &s), QZ_ENOTFOUND);
    assert_null(s);
    assert_non_null(strstr(qz__err_msg(), "holds no database"));
    assert_non_null(strstr(qz__err_msg(), p));
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);

    /* an existing empty directory, and one whose data file is empty */
    assert_int_equal(qz__storage_lmdb_exists(dir), 0);
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s), QZ_ENOTFOUND);
    assert_int_equal(dir_entries(dir), 0);
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(qz__storage_lmdb_exists(dir), 0);
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s), QZ_ENOTFOUND);
    assert_int_equal(dir_entries(dir), 1);
    unlink(p);

    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    s->close(s);
    assert_int_equal(qz__storage_lmdb_exists(dir), 1);
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s), QZ_OK);
    s->close(s);
}

static void garbage_data_file_is_corrupt(void **state)
{
    const char *dir = *state;
    char p[4096];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    static unsigned char junk[16384];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 7 + 3);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_ECORRUPT);
    assert_non_null(strstr(qz__err_msg(), "lmdb: MDB_INVALID while opening"));
}

/* A read-only process keeps reading while the writer process grows the map
 * beyond the reader's mapping (MDB_MAP_RESIZED is adopted transparently). */
static void reader_process_adopts_map_grown_by_writer(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open_ex(dir, QZ__LMDB_NOSYNC, 64 * 1024, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "first", 5, "1", 1), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);

    int to_child[2], to_parent[2];
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(to_parent), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        qz_storage *r = NULL;
        if (qz__storage_lmdb_open_ex(dir, QZ__LMDB_READONLY, 64 * 1024, &r) != QZ_OK) _exit(10);
        qz_storage_txn *rt = NULL;
        if (r->begin(r, QZ_TXN_READONLY, &rt) != QZ_OK) _exit(11);
        if (r->get(r, rt, QZ_TABLE_KV, "first", 5, NULL, NULL) != QZ_OK) _exit(12);
        r->abort(r, rt);
        if (write(to_parent[1], "r", 1) != 1) _exit(13);
        if (read(to_child[0], &c, 1) != 1) _exit(14);
        if (r->begin(r, QZ_TXN_READONLY, &rt) != QZ_OK) _exit(15);
        const void *v;
        size_t vl;
        if (r->get(r, rt, QZ_TABLE_KV, "last", 4, &v, &vl) != QZ_OK || vl != 3000) _exit(16);
        r->abort(r, rt);
        r->close(r);
        _exit(0);
    }
    char c;
    assert_int_equal(read(to_parent[0], &c, 1), 1);
    static unsigned char v[3000];
    for (int i = 0; i < 3000; i++) {
        char k[32];
        key_of(k, sizeof k, i);
        assert_int_equal(s->begin(s, 0, &t), QZ_OK);
        assert_int_equal(s->put(s, t, QZ_TABLE_GRAPH, k, strlen(k), v, sizeof v), QZ_OK);
        if (i == 2999) assert_int_equal(s->put(s, t, QZ_TABLE_KV, "last", 4, v, sizeof v), QZ_OK);
        assert_int_equal(s->commit(s, t), QZ_OK);
    }
    assert_true(qz__storage_lmdb_map_size(s) > 4 * 1024 * 1024);
    assert_int_equal(write(to_child[1], "g", 1), 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(to_child[0]);
    close(to_child[1]);
    close(to_parent[0]);
    close(to_parent[1]);
    s->close(s);
}

/* Reader threads keep checking that every snapshot holds one generation of
 * a set of keys while the writer commits generations and grows the map. */
typedef struct gen_arg {
    qz_storage *s;
    int stop; /* atomic builtins */
    int failures;
    long reads;
} gen_arg;

#define GEN_KEYS 16

static void *gen_reader(void *p)
{
    gen_arg *a = p;
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        qz_storage_txn *t = NULL;
        if (a->s->begin(a->s, QZ_TXN_READONLY, &t) != QZ_OK) {
            __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
            return NULL;
        }
        uint64_t first = UINT64_MAX;
        for (int i = 0; i < GEN_KEYS; i++) {
            char k[16];
            snprintf(k, sizeof k, "gen%02d", i);
            const void *v;
            size_t vl;
            int rc = a->s->get(a->s, t, QZ_TABLE_KV, k, strlen(k), &v, &vl);
            if (rc == QZ_ENOTFOUND && first == UINT64_MAX) break; /* before the first commit */
            uint64_t x;
            if (rc != QZ_OK || vl != sizeof x) {
                __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
                break;
            }
            memcpy(&x, v, sizeof x);
            if (first == UINT64_MAX) first = x;
            if (x != first) __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
        }
        a->s->abort(a->s, t);
        __atomic_add_fetch(&a->reads, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void readers_stay_consistent_while_map_grows(void **state)
{
    const char *dir = *state;
    gen_arg a = {NULL, 0, 0, 0};
    assert_int_equal(qz__storage_lmdb_open_ex(dir, QZ__LMDB_NOSYNC, 64 * 1024, &a.s), QZ_OK);
    qz_storage *s = a.s;
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, gen_reader, &a), 0);
    static unsigned char filler[8000];
    for (uint64_t gen = 1; gen <= 400; gen++) {
        qz_storage_txn *t = NULL;
        assert_int_equal(s->begin(s, 0, &t), QZ_OK);
        for (int i = 0; i < GEN_KEYS; i++) {
            char k[16];
            snprintf(k, sizeof k, "gen%02d", i);
            assert_int_equal(s->put(s, t, QZ_TABLE_KV, k, strlen(k), &gen, sizeof gen), QZ_OK);
        }
        char k[32];
        key_of(k, sizeof k, (int)gen);
        assert_int_equal(s->put(s, t, QZ_TABLE_GRAPH, k, strlen(k), filler, sizeof filler), QZ_OK);
        assert_int_equal(s->commit(s, t), QZ_OK);
    }
    __atomic_store_n(&a.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    assert_int_equal(a.failures, 0);
    assert_true(a.reads > 0);
    assert_true(qz__storage_lmdb_map_size(s) >= 400 * sizeof filler);
    s->close(s);
}

/* ---- LMDB's file, as the tests below need it --------------------------------
 * Layout of liblmdb 0.9 (data format 1), native sizes: a page starts with
 * pgno (size_t), pad u16, flags u16, lower u16, upper u16; pages 0 and 1 hold
 * a meta after that header: magic u32, version u32, address, mapsize, two
 * MDB_db (free, main: pad u32, flags u16, depth u16, 5 x size_t, the last
 * one the root), last_pg, txnid. */
#define LS sizeof(size_t)
#define PAGEHDR (LS + 8)
#define DBREC (8 + 5 * LS)
#define META_FREE (PAGEHDR + 8 + 2 * LS)
#define META_MAIN (META_FREE + DBREC)
#define META_LAST (META_MAIN + DBREC)
#define META_TXNID (META_LAST + LS)
#define DB_ROOT (8 + 4 * LS)
#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define P_OVERFLOW 0x04u
#define PSIZE 4096u

typedef struct meta_info {
    size_t txnid[2], last[2], main_root[2], free_root[2];
    int cur;
    long long fsize;
} meta_info;

static void data_path(char *p, size_t cap, const char *dir) { snprintf(p, cap, "%s/data.mdb", dir); }

static size_t rd_sz(int fd, off_t off)
{
    size_t v = 0;
    assert_int_equal(pread(fd, &v, sizeof v, off), (ssize_t)sizeof v);
    return v;
}

static void wr_sz(int fd, off_t off, size_t v) { assert_int_equal(pwrite(fd, &v, sizeof v, off), (ssize_t)sizeof v); }

static meta_info read_metas(const char *dir)
{
    char p[4096];
    data_path(p, sizeof p, dir);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    meta_info m;
    uint32_t ps = 0;
    assert_int_equal(pread(fd, &ps, 4, (off_t)META_FREE), 4);
    assert_int_equal(ps, PSIZE); /* the offsets below assume it */
    for (int i = 0; i < 2; i++) {
        off_t b = (off_t)i * PSIZE;
        m.txnid[i] = rd_sz(fd, b + (off_t)META_TXNID);
        m.last[i] = rd_sz(fd, b + (off_t)META_LAST);
        m.main_root[i] = rd_sz(fd, b + (off_t)(META_MAIN + DB_ROOT));
        m.free_root[i] = rd_sz(fd, b + (off_t)(META_FREE + DB_ROOT));
    }
    m.cur = m.txnid[0] < m.txnid[1];
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    m.fsize = (long long)st.st_size;
    close(fd);
    return m;
}

/* Pages of the current snapshot that LMDB counts but the file lacks. */
static long long pages_past_end(const meta_info *m)
{
    return (long long)m->last[m->cur] + 1 - (m->fsize + PSIZE - 1) / PSIZE;
}

/* Zero every page whose header says `flags` and that contains pat; returns how many. */
static int zero_pages_with(const char *dir, unsigned flags, const void *pat, size_t plen)
{
    char p[4096];
    data_path(p, sizeof p, dir);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    static unsigned char pg[PSIZE], zero[PSIZE];
    int n = 0;
    for (off_t off = 2 * PSIZE; off + PSIZE <= st.st_size; off += PSIZE) {
        assert_int_equal(pread(fd, pg, PSIZE, off), (ssize_t)PSIZE);
        size_t pgno;
        uint16_t fl;
        memcpy(&pgno, pg, sizeof pgno);
        memcpy(&fl, pg + LS + 2, 2);
        if (pgno != (size_t)(off / PSIZE) || !(fl & flags)) continue;
        if (!memmem(pg, PSIZE, pat, plen)) continue;
        assert_int_equal(pwrite(fd, zero, PSIZE, off), (ssize_t)PSIZE);
        n++;
    }
    close(fd);
    return n;
}

static void put_or_die(qz_storage *s, qz_storage_txn *t, uint32_t table, const char *k, const void *v, size_t vl)
{
    int rc = s->put(s, t, table, k, strlen(k), v, vl);
    if (rc) fail_msg("put %s -> %d: %s", k, rc, qz__err_msg());
}

/* One transaction that leaves free pages at the end of the file: small
 * writes reuse free pages (so LMDB holds reclaimed pages), then a 64 KiB
 * value takes 17 new pages at the end and is deleted again in the same
 * transaction, so LMDB gives those pages back without ever writing them. */
static void write_round_with_unwritten_tail(qz_storage *s, int round)
{
    static unsigned char v[65536];
    fill_value(v, sizeof v, round);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    for (int i = 0; i < 20; i++) {
        char k[32];
        key_of(k, sizeof k, i);
        put_or_die(s, t, QZ_TABLE_KV, k, v, 100 + (size_t)round);
    }
    put_or_die(s, t, QZ_TABLE_GRAPH, "big", v, sizeof v);
    assert_int_equal(s->del(s, t, QZ_TABLE_GRAPH, "big", 3), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
}

static void expect_round(qz_storage *s, int round)
{
    static unsigned char want[65536];
    fill_value(want, sizeof want, round);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    for (int i = 0; i < 20; i++) {
        char k[32];
        key_of(k, sizeof k, i);
        const void *v;
        size_t vl;
        assert_int_equal(s->get(s, t, QZ_TABLE_KV, k, strlen(k), &v, &vl), QZ_OK);
        assert_int_equal(vl, 100 + (size_t)round);
        assert_memory_equal(v, want, vl);
    }
    assert_int_equal(s->get(s, t, QZ_TABLE_GRAPH, "big", 3, NULL, NULL), QZ_ENOTFOUND);
    s->abort(s, t);
}

/* Defect: "data.mdb is N bytes but its meta page uses M pages". LMDB's
 * mm_last_pg counts pages it never wrote (freed in the transaction that
 * allocated them); such a database is healthy and must open, also after the
 * writer was killed. */
static void free_pages_past_the_end_of_the_file_do_not_block_the_open(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_NOSYNC, &s), QZ_OK);
    for (int r = 0; r < 6; r++) write_round_with_unwritten_tail(s, r);
    s->close(s);
    meta_info m = read_metas(dir);
    print_message("clean close: data.mdb %lld bytes, last page %zu: %lld page(s) past the end\n", m.fsize,
                  m.last[m.cur], pages_past_end(&m));
    assert_true(pages_past_end(&m) > 0); /* the state of the defect is reached */

    int rc = qz__storage_lmdb_open(dir, 0, &s);
    if (rc) fail_msg("open -> %d: %s", rc, qz__err_msg());
    expect_round(s, 5);
    s->close(s);
    rc = qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s);
    if (rc) fail_msg("read-only open -> %d: %s", rc, qz__err_msg());
    expect_round(s, 5);
    s->close(s);

    /* the same left by a writer killed with its environment open */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        qz_storage *w = NULL;
        if (qz__storage_lmdb_open(dir, 0, &w) != QZ_OK) _exit(2);
        for (int r = 6; r < 9; r++) write_round_with_unwritten_tail(w, r);
        raise(SIGKILL);
        _exit(3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    m = read_metas(dir);
    print_message("after SIGKILL: data.mdb %lld bytes, last page %zu: %lld page(s) past the end\n", m.fsize,
                  m.last[m.cur], pages_past_end(&m));
    assert_true(pages_past_end(&m) > 0);
    rc = qz__storage_lmdb_open(dir, 0, &s);
    if (rc) fail_msg("open after SIGKILL -> %d: %s", rc, qz__err_msg());
    expect_round(s, 8);
    /* and LMDB goes on using those pages */
    write_round_with_unwritten_tail(s, 9);
    s->close(s);
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    expect_round(s, 9);
    s->close(s);
}

static void fill_graph(const char *dir, int n, size_t vlen)
{
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_NOSYNC, &s), QZ_OK);
    unsigned char *v = malloc(vlen);
    qz_storage_txn *t = NULL;
    for (int i = 0; i < n; i++) {
        if (i % 100 == 0) assert_int_equal(s->begin(s, 0, &t), QZ_OK);
        char k[32];
        key_of(k, sizeof k, i);
        fill_value(v, vlen, i);
        put_or_die(s, t, QZ_TABLE_GRAPH, k, v, vlen);
        if (i % 100 == 99 || i == n - 1) assert_int_equal(s->commit(s, t), QZ_OK);
    }
    free(v);
    assert_int_equal(s->sync(s), QZ_OK);
    s->close(s);
}

/* A data.mdb that lost pages in use is refused at open (QZ_ECORRUPT), in
 * both modes, instead of a SIGBUS when a lost page is touched. */
static void truncated_data_file_is_ecorrupt_at_open(void **state)
{
    const char *dir = *state;
    fill_graph(dir, 400, 3000);
    char p[4096];
    data_path(p, sizeof p, dir);
    meta_info m = read_metas(dir);
    assert_int_equal(truncate(p, m.fsize / 2), 0);
    qz_storage *s = NULL;
    for (int ro = 0; ro < 2; ro++) {
        int rc = qz__storage_lmdb_open(dir, ro ? QZ__LMDB_READONLY : 0, &s);
        print_message("%s open of a half data.mdb -> %d: %s\n", ro ? "read-only" : "read-write", rc, qz__err_msg());
        assert_int_equal(rc, QZ_ECORRUPT);
        assert_null(s);
        assert_non_null(strstr(qz__err_msg(), "truncated"));
    }
}

/* The file loses its pages while the backend has it open: the page is
 * touched inside LMDB (SIGBUS on the mapping), which the guard turns into
 * QZ_ECORRUPT; the backend is poisoned from then on. */
static void file_truncated_under_an_open_backend_gives_ecorrupt_not_sigbus(void **state)
{
    const char *dir = *state;
    fill_graph(dir, 200, 3000);
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s), QZ_OK);
    char p[4096];
    data_path(p, sizeof p, dir);
    assert_int_equal(truncate(p, 2 * PSIZE), 0);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    char k[32];
    key_of(k, sizeof k, 7);
    int rc = s->get(s, t, QZ_TABLE_GRAPH, k, strlen(k), NULL, NULL);
    print_message("get after the truncation -> %d: %s\n", rc, qz__err_msg());
    assert_int_equal(rc, QZ_ECORRUPT);
    assert_non_null(strstr(qz__err_msg(), "SIGBUS"));
    assert_non_null(strstr(qz__err_msg(), "table graph"));
    assert_non_null(strstr(qz__err_msg(), "is truncated: LMDB touched page")); /* the map was located */
    /* poisoned: every call fails at once, with the same message */
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "x", 1, NULL, NULL), QZ_ECORRUPT);
    assert_non_null(strstr(qz__err_msg(), "SIGBUS"));
    s->abort(s, t);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_ECORRUPT);
    s->close(s);
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s), QZ_ECORRUPT);
}

static int count_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    (*(int *)user)++;
    return 0;
}

/* A zeroed leaf page: a lookup that lands on it gets LMDB's MDB_CORRUPTED,
 * a scan that steps onto it hits liblmdb's "Assertion 'IS_LEAF(mp)'", which
 * would abort() the process; both are QZ_ECORRUPT naming the table. */
static void zeroed_leaf_page_is_ecorrupt_instead_of_an_abort(void **state)
{
    const char *dir = *state;
    fill_graph(dir, 1000, 100);
    char k[32];
    key_of(k, sizeof k, 500);
    int zeroed = zero_pages_with(dir, P_LEAF, k, strlen(k));
    print_message("zeroed %d leaf page(s) holding %s\n", zeroed, k);
    assert_true(zeroed >= 1);

    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    int rc = s->get(s, t, QZ_TABLE_GRAPH, k, strlen(k), NULL, NULL);
    print_message("get %s -> %d: %s\n", k, rc, qz__err_msg());
    assert_int_equal(rc, QZ_ECORRUPT);
    assert_non_null(strstr(qz__err_msg(), "table graph"));
    /* the transaction stays failed, with damage named */
    assert_int_equal(s->get(s, t, QZ_TABLE_GRAPH, "key00000001", 11, NULL, NULL), QZ_ECORRUPT);
    s->abort(s, t);
    /* LMDB's clean error does not poison: another transaction reads on */
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    assert_int_equal(s->get(s, t, QZ_TABLE_GRAPH, "key00000001", 11, NULL, NULL), QZ_OK);
    int n = 0;
    rc = s->scan(s, t, QZ_TABLE_GRAPH, NULL, 0, count_fn, &n);
    print_message("scan -> %d after %d keys: %s\n", rc, n, qz__err_msg());
    assert_int_equal(rc, QZ_ECORRUPT);
    assert_non_null(strstr(qz__err_msg(), "LMDB assertion 'IS_LEAF(mp)' in table graph"));
    assert_true(n > 0 && n < 1000);
    s->abort(s, t);
    /* poisoned now */
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_ECORRUPT);
    assert_non_null(strstr(qz__err_msg(), "IS_LEAF"));
    assert_int_equal(s->begin(s, 0, &t), QZ_ECORRUPT);
    s->close(s);
    /* the trip was in a reading call: nothing leaked, the directory opens again */
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    s->close(s);
}

/* liblmdb asserts inside a modifying call (mdb_drop meets a zeroed overflow
 * page: "Assertion 'IS_OVERFLOW(omp)'"): QZ_ECORRUPT, the environment is
 * wedged (leaked with its writer lock) and this process refuses to open the
 * directory again; once the process is gone another one writes. */
static void assertion_inside_a_write_wedges_only_until_the_process_exits(void **state)
{
    const char *dir = *state;
    fill_graph(dir, 12, 20000);
    static unsigned char v[20000];
    fill_value(v, sizeof v, 5);
    int zeroed = zero_pages_with(dir, P_OVERFLOW, v + 8000, 64);
    assert_true(zeroed >= 1);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        qz_storage *s = NULL;
        if (qz__storage_lmdb_open(dir, 0, &s) != QZ_OK) _exit(2);
        qz_storage_txn *t = NULL;
        if (s->begin(s, 0, &t) != QZ_OK) _exit(3);
        int rc = s->clear(s, t, QZ_TABLE_GRAPH);
        fprintf(stderr, "clear -> %d: %s\n", rc, qz__err_msg());
        if (rc != QZ_ECORRUPT || !strstr(qz__err_msg(), "IS_OVERFLOW")) _exit(4);
        if (s->put(s, t, QZ_TABLE_KV, "k", 1, "v", 1) != QZ_ECORRUPT) _exit(5);
        if (s->commit(s, t) != QZ_ECORRUPT) _exit(6);
        if (s->begin(s, QZ_TXN_READONLY, &t) != QZ_ECORRUPT) _exit(7);
        s->close(s);
        rc = qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s);
        fprintf(stderr, "open again in that process -> %d: %s\n", rc, qz__err_msg());
        if (rc != QZ_EBUSY) _exit(8);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "after", 5, "x", 1), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
    s->close(s);
}

/* Patch the bytes at `delta` from every copy of pat inside a leaf page. */
static int patch_in_leaves(const char *dir, const void *pat, size_t plen, long delta, const void *bytes, size_t n)
{
    char p[4096];
    data_path(p, sizeof p, dir);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    static unsigned char pg[PSIZE];
    int hits = 0;
    for (off_t off = 2 * PSIZE; off + PSIZE <= st.st_size; off += PSIZE) {
        assert_int_equal(pread(fd, pg, PSIZE, off), (ssize_t)PSIZE);
        uint16_t fl;
        memcpy(&fl, pg + LS + 2, 2);
        if (!(fl & P_LEAF)) continue;
        const unsigned char *at = memmem(pg, PSIZE, pat, plen);
        if (!at) continue;
        assert_int_equal(pwrite(fd, bytes, n, off + (at - pg) + delta), (ssize_t)n);
        hits++;
    }
    close(fd);
    return hits;
}

/* A node whose data size was damaged: LMDB hands out a value reaching into
 * the next pages (or off the file); the backend refuses it. */
static void value_reaching_past_its_page_is_ecorrupt(void **state)
{
    const char *dir = *state;
    fill_graph(dir, 300, 100);
    char k[32];
    key_of(k, sizeof k, 150);
    uint16_t hi = 1; /* node header: size lo u16, size hi u16, flags, key size; the key follows */
    assert_true(patch_in_leaves(dir, k, strlen(k), -6, &hi, 2) >= 1);
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    const void *v;
    size_t vl;
    int rc = s->get(s, t, QZ_TABLE_GRAPH, k, strlen(k), &v, &vl);
    print_message("get -> %d: %s\n", rc, qz__err_msg());
    assert_int_equal(rc, QZ_ECORRUPT);
    assert_non_null(strstr(qz__err_msg(), "reaches past its page"));
    int n = 0;
    assert_int_equal(s->scan(s, t, QZ_TABLE_GRAPH, NULL, 0, count_fn, &n), QZ_ECORRUPT);
    assert_int_equal(n, 150);
    s->abort(s, t);
    s->close(s);
}

/* A flipped key byte that LMDB does not notice: the scan sees a key out of
 * order, and a lookup of the lost key sees that its search went astray. */
static void flipped_key_byte_is_found_by_order_checks(void **state)
{
    const char *dir = *state;
    fill_graph(dir, 300, 100);
    char k[32];
    key_of(k, sizeof k, 150);
    unsigned char c = (unsigned char)('y' ^ 0x04); /* "key00000150" -> "ke}00000150" */
    assert_true(patch_in_leaves(dir, k, strlen(k), 2, &c, 1) >= 1);
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    int rc = s->get(s, t, QZ_TABLE_GRAPH, k, strlen(k), NULL, NULL);
    print_message("get of the lost key -> %d: %s\n", rc, qz__err_msg());
    assert_int_equal(rc, QZ_ECORRUPT);
    assert_non_null(strstr(qz__err_msg(), "wrong turn"));
    char k2[32];
    key_of(k2, sizeof k2, 10);
    assert_int_equal(s->get(s, t, QZ_TABLE_GRAPH, k2, strlen(k2), NULL, NULL), QZ_OK);
    assert_int_equal(s->get(s, t, QZ_TABLE_GRAPH, "zzz", 3, NULL, NULL), QZ_ENOTFOUND); /* a true miss */
    int n = 0;
    rc = s->scan(s, t, QZ_TABLE_GRAPH, NULL, 0, count_fn, &n);
    print_message("scan -> %d after %d keys: %s\n", rc, n, qz__err_msg());
    assert_int_equal(rc, QZ_ECORRUPT);
    assert_non_null(strstr(qz__err_msg(), "out of order"));
    s->abort(s, t);
    s->close(s);
}

/* The meta pages are checked before LMDB trusts them. */
static void damaged_meta_pages_are_ecorrupt(void **state)
{
    const char *dir = *state;
    fill_graph(dir, 300, 100);
    char p[4096];
    data_path(p, sizeof p, dir);
    meta_info m = read_metas(dir);
    qz_storage *s = NULL;
    for (int c = 0; c < 3; c++) {
        int fd = open(p, O_RDWR);
        assert_true(fd >= 0);
        off_t other = (off_t)(!m.cur) * PSIZE, cur = (off_t)m.cur * PSIZE;
        if (c == 0) /* the older meta made to look newest: LMDB would read an old snapshot */
            wr_sz(fd, other + (off_t)META_TXNID, m.txnid[m.cur] + 2);
        else if (c == 1) /* main root at meta page 1: liblmdb asserts 'root > 1' */
            wr_sz(fd, cur + (off_t)(META_MAIN + DB_ROOT), 1);
        else /* main root past the last page */
            wr_sz(fd, cur + (off_t)(META_MAIN + DB_ROOT), m.last[m.cur] + 5);
        close(fd);
        for (int ro = 0; ro < 2; ro++) {
            int rc = qz__storage_lmdb_open(dir, ro ? QZ__LMDB_READONLY : 0, &s);
            print_message("meta damage %d, %s -> %d: %s\n", c, ro ? "read-only" : "read-write", rc, qz__err_msg());
            assert_int_equal(rc, QZ_ECORRUPT);
        }
        fd = open(p, O_RDWR); /* repair */
        assert_true(fd >= 0);
        wr_sz(fd, other + (off_t)META_TXNID, m.txnid[!m.cur]);
        wr_sz(fd, cur + (off_t)(META_MAIN + DB_ROOT), m.main_root[m.cur]);
        close(fd);
        assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
        s->close(s);
    }
}

/* A free-page record whose count exceeds its size would make LMDB read
 * past it and hand out pages in use when it reuses them (read-write): the
 * read-write open refuses it; a read-only open never reuses pages and reads. */
static void malformed_free_page_record_refuses_only_read_write_opens(void **state)
{
    const char *dir = *state;
    fill_graph(dir, 400, 100);
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(dir, 0, &s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    for (int i = 0; i < 200; i++) {
        char k[32];
        key_of(k, sizeof k, i);
        assert_int_equal(s->del(s, t, QZ_TABLE_GRAPH, k, strlen(k)), QZ_OK);
    }
    assert_int_equal(s->commit(s, t), QZ_OK);
    s->close(s);
    meta_info m = read_metas(dir);
    size_t root = m.free_root[m.cur];
    assert_true(root > 1 && root != (size_t)-1);
    char p[4096];
    data_path(p, sizeof p, dir);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    unsigned char pg[PSIZE];
    assert_int_equal(pread(fd, pg, PSIZE, (off_t)root * PSIZE), (ssize_t)PSIZE);
    uint16_t fl, ptr0, nflags, ksize;
    memcpy(&fl, pg + LS + 2, 2);
    if (!(fl & P_LEAF)) skip(); /* a free-page tree of more than one page: not this layout */
    memcpy(&ptr0, pg + PAGEHDR, 2);
    memcpy(&nflags, pg + ptr0 + 4, 2);
    memcpy(&ksize, pg + ptr0 + 6, 2);
    if ((nflags & 0x01) || ksize != LS) skip(); /* an overflow record */
    off_t count = (off_t)root * PSIZE + ptr0 + 8 + ksize;
    size_t n = rd_sz(fd, count);
    print_message("free-page record at page %zu holds %zu pages; its count becomes %zu\n", root, n, n + 100000);
    wr_sz(fd, count, n + 100000);
    close(fd);
    int rc = qz__storage_lmdb_open(dir, 0, &s);
    print_message("read-write open -> %d: %s\n", rc, qz__err_msg());
    assert_int_equal(rc, QZ_ECORRUPT);
    assert_non_null(strstr(qz__err_msg(), "free-page record"));
    rc = qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s);
    if (rc) fail_msg("read-only open -> %d: %s", rc, qz__err_msg());
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    int cnt = 0;
    assert_int_equal(s->scan(s, t, QZ_TABLE_GRAPH, NULL, 0, count_fn, &cnt), QZ_OK);
    assert_int_equal(cnt, 200);
    s->abort(s, t);
    s->close(s);
}

/* Every allocation of the backend goes through the library's allocator. */
static void every_allocation_failure_is_enomem_and_writes_nothing(void **state)
{
    const char *dir = *state;
    qz_storage *s = NULL;
    qz__alloc_fail_after(0);
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_NOSYNC, &s), QZ_ENOMEM);
    qz__alloc_fail_after(-1);
    assert_int_equal(qz__storage_lmdb_open(dir, QZ__LMDB_NOSYNC, &s), QZ_OK);
    int rc = QZ_ENOMEM;
    long n;
    qz_storage_txn *t = NULL;
    for (n = 0; rc == QZ_ENOMEM && n < 1000; n++) {
        qz__alloc_fail_after(n);
        rc = s->begin(s, 0, &t);
        for (int i = 0; i < 5 && rc == QZ_OK; i++) {
            char k[32];
            key_of(k, sizeof k, i);
            rc = s->put(s, t, QZ_TABLE_KV, k, strlen(k), "value", 5);
        }
        if (rc == QZ_OK) rc = s->commit(s, t);
        else if (t) s->abort(s, t);
        t = NULL;
        qz__alloc_fail_after(-1);
        if (n == 0) assert_int_equal(rc, QZ_ENOMEM);
        if (rc == QZ_OK) break;
        assert_int_equal(rc, QZ_ENOMEM);
        assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
        assert_int_equal(s->get(s, t, QZ_TABLE_KV, "key00000000", 11, NULL, NULL), QZ_ENOTFOUND);
        s->abort(s, t);
        t = NULL;
    }
    assert_int_equal(rc, QZ_OK);
    /* at least the transaction and the first chunk of its recorded
     * operations (one chunk holds all five puts) */
    assert_true(n >= 2);
    s->close(s);
}

/* ---- writers killed at random times ------------------------------------------ */

#define KL_KEYS 3200
#define KL_ROUNDS 120

typedef struct kl_op {
    int del;
    int id;
    size_t len;
} kl_op;

static uint64_t kl_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* The operations of commit number seq (deterministic). */
static int kl_ops(uint64_t seq, kl_op *ops)
{
    uint64_t r = kl_mix(seq * 0x9e3779b97f4a7c15ull + 1);
    int n = 1 + (int)(r % 6);
    for (int i = 0; i < n; i++) {
        r = kl_mix(r + (uint64_t)i);
        ops[i].id = (int)(r % KL_KEYS);
        ops[i].del = (r >> 20) % 10 < 3;
        uint64_t sz = (r >> 32) % 100;
        ops[i].len = sz < 45 ? 16 + (size_t)(r >> 40) % 200 : 3000 + (size_t)((r >> 40) % 25000);
    }
    /* and now and then a big value that lives only inside its transaction */
    if (seq % 5 == 0) {
        ops[n].id = KL_KEYS + 1;
        ops[n].del = 0;
        ops[n].len = 40000;
        ops[n + 1] = ops[n];
        ops[n + 1].del = 1;
        n += 2;
    }
    return n;
}

static void kl_value(unsigned char *v, size_t len, uint64_t seq, int id)
{
    uint64_t x = kl_mix(seq ^ ((uint64_t)id << 40));
    for (size_t i = 0; i < len; i += 8) {
        x = kl_mix(x + i);
        size_t m = len - i < 8 ? len - i : 8;
        memcpy(v + i, &x, m);
    }
}

static void kl_key(char *k, size_t cap, int id) { snprintf(k, cap, "r%06d", id); }

/* The child: commit seq, seq+1, ... until killed; acknowledge each commit. */
static void kl_writer(const char *dir, int sync, int ackfd)
{
    qz_storage *s = NULL;
    if (qz__storage_lmdb_open_ex(dir, sync ? 0 : QZ__LMDB_NOSYNC, 1 << 20, &s) != QZ_OK) _exit(10);
    qz_storage_txn *t = NULL;
    uint64_t seq = 0;
    const void *v;
    size_t vl;
    if (s->begin(s, QZ_TXN_READONLY, &t) != QZ_OK) _exit(11);
    if (s->get(s, t, QZ_TABLE_META, "seq", 3, &v, &vl) == QZ_OK && vl == 8) memcpy(&seq, v, 8);
    s->abort(s, t);
    static unsigned char buf[40000];
    kl_op ops[16];
    for (;;) {
        seq++;
        int n = kl_ops(seq, ops);
        if (s->begin(s, 0, &t) != QZ_OK) _exit(12);
        for (int i = 0; i < n; i++) {
            char k[16];
            kl_key(k, sizeof k, ops[i].id);
            int rc;
            if (ops[i].del) {
                rc = s->del(s, t, QZ_TABLE_KV, k, strlen(k));
                if (rc == QZ_ENOTFOUND) rc = QZ_OK;
            } else {
                kl_value(buf, ops[i].len, seq, ops[i].id);
                rc = s->put(s, t, QZ_TABLE_KV, k, strlen(k), buf, ops[i].len);
            }
            if (rc) _exit(13);
        }
        if (s->put(s, t, QZ_TABLE_META, "seq", 3, &seq, 8) != QZ_OK) _exit(14);
        if (s->commit(s, t) != QZ_OK) _exit(15);
        if (write(ackfd, &seq, 8) != 8) _exit(16);
    }
}

typedef struct kl_model {
    uint64_t seq[KL_KEYS]; /* 0 = absent */
    size_t len[KL_KEYS];
} kl_model;

typedef struct kl_check {
    const kl_model *m;
    int seen, bad;
    char why[200];
} kl_check;

static int kl_check_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    kl_check *c = user;
    char key[16];
    if (kl >= sizeof key) return c->bad = 1, 1;
    memcpy(key, k, kl);
    key[kl] = '\0';
    int id = atoi(key + 1);
    if (id < 0 || id >= KL_KEYS || !c->m->seq[id] || c->m->len[id] != vl) {
        snprintf(c->why, sizeof c->why, "key %s: %zu bytes, model %zu bytes of commit %llu", key, vl,
                 id >= 0 && id < KL_KEYS ? c->m->len[id] : 0,
                 (unsigned long long)(id >= 0 && id < KL_KEYS ? c->m->seq[id] : 0));
        c->bad = 1;
        return 1;
    }
    static unsigned char want[40000];
    kl_value(want, vl, c->m->seq[id], id);
    if (memcmp(v, want, vl)) {
        snprintf(c->why, sizeof c->why, "key %s: content differs", key);
        c->bad = 1;
        return 1;
    }
    c->seen++;
    return 0;
}

/* Kill a writing child at random moments, >100 times, while the directory
 * grows past 20 MiB: every reopen succeeds and holds every acknowledged
 * commit (and at most the one after, whose acknowledgement the kill cut). */
static void writer_killed_at_random_times_always_reopens_with_its_commits(void **state)
{
    const char *dir = *state;
    kl_model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    uint64_t applied = 0, rng = 0x5eed1234abcdull;
    int short_reopens = 0;
    long long max_size = 0;
    time_t t0 = time(NULL);
    int rounds = 0;
    for (int round = 0; round < KL_ROUNDS && time(NULL) - t0 < 45; round++, rounds++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            kl_writer(dir, round % 4 == 0, p[1]);
        }
        close(p[1]);
        rng = kl_mix(rng);
        sleep_ms(3 + (int)(rng % 40));
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status)) fail_msg("round %d: the writer exited with status %d", round, WEXITSTATUS(status));
        uint64_t ack = 0, a;
        while (read(p[0], &a, 8) == 8) ack = a;
        close(p[0]);

        meta_info mi = {.fsize = 0};
        char dp[4096];
        struct stat dst;
        data_path(dp, sizeof dp, dir);
        if (stat(dp, &dst) == 0 && dst.st_size >= 2 * PSIZE) { /* not when killed while creating it */
            mi = read_metas(dir);
            if (pages_past_end(&mi) > 0) short_reopens++;
            if (mi.fsize > max_size) max_size = mi.fsize;
        }
        qz_storage *s = NULL;
        int rc = qz__storage_lmdb_open(dir, 0, &s);
        if (rc)
            fail_msg("round %d: reopen after SIGKILL -> %d: %s (%lld page(s) past the end)", round, rc, qz__err_msg(),
                     pages_past_end(&mi));
        qz_storage_txn *t = NULL;
        assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
        uint64_t seq = 0;
        const void *v;
        size_t vl;
        if (s->get(s, t, QZ_TABLE_META, "seq", 3, &v, &vl) == QZ_OK) memcpy(&seq, v, 8);
        uint64_t base = ack ? ack : applied; /* no acknowledgement: killed before or inside its first commit */
        if (seq < base || seq > base + 1 || seq < applied)
            fail_msg("round %d: the database is at commit %llu, the writer acknowledged %llu (before: %llu)", round,
                     (unsigned long long)seq, (unsigned long long)ack, (unsigned long long)applied);
        kl_op ops[16];
        for (uint64_t q = applied + 1; q <= seq; q++) {
            int n = kl_ops(q, ops);
            for (int i = 0; i < n; i++) {
                if (ops[i].id >= KL_KEYS) continue;
                m->seq[ops[i].id] = ops[i].del ? 0 : q;
                m->len[ops[i].id] = ops[i].del ? 0 : ops[i].len;
            }
        }
        applied = seq;
        kl_check c = {m, 0, 0, ""};
        rc = s->scan(s, t, QZ_TABLE_KV, NULL, 0, kl_check_fn, &c);
        if (c.bad || rc) fail_msg("round %d (commit %llu): %s (scan -> %d)", round, (unsigned long long)seq, c.why, rc);
        int want = 0;
        for (int i = 0; i < KL_KEYS; i++) want += m->seq[i] != 0;
        if (c.seen != want) fail_msg("round %d: %d keys, the model has %d", round, c.seen, want);
        s->abort(s, t);
        s->close(s);
    }
    print_message("%d rounds, %llu commits, data.mdb up to %.1f MiB, %d reopen(s) with free pages past the end\n",
                  rounds, (unsigned long long)applied, (double)max_size / (1 << 20), short_reopens);
    assert_true(rounds >= 100);
    assert_true(max_size > 20ll << 20);
    free(m);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_dir, teardown_dir)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(committed_writes_survive_reopen),
        T(aborted_writes_leave_nothing),
        T(reader_keeps_snapshot_across_commit),
        T(del_of_absent_key_returns_notfound_and_txn_stays_usable),
        T(scan_visits_prefix_in_byte_order),
        T(clear_empties_table),
        T(oversized_key_is_refused),
        T(map_grows_past_tiny_initial_size),
        T(values_larger_than_a_record_chunk_replay_after_map_growth),
        T(map_grows_while_reader_is_open_on_another_thread),
        T(readers_stay_consistent_while_map_grows),
        T(readonly_open_refuses_write_transactions),
        T(readonly_open_of_missing_env_is_enotfound_and_creates_nothing),
        T(garbage_data_file_is_corrupt),
        T(reader_process_adopts_map_grown_by_writer),
        T(every_allocation_failure_is_enomem_and_writes_nothing),
        T(free_pages_past_the_end_of_the_file_do_not_block_the_open),
        T(truncated_data_file_is_ecorrupt_at_open),
        T(file_truncated_under_an_open_backend_gives_ecorrupt_not_sigbus),
        T(zeroed_leaf_page_is_ecorrupt_instead_of_an_abort),
        T(assertion_inside_a_write_wedges_only_until_the_process_exits),
        T(value_reaching_past_its_page_is_ecorrupt),
        T(flipped_key_byte_is_found_by_order_checks),
        T(damaged_meta_pages_are_ecorrupt),
        T(malformed_free_page_record_refuses_only_read_write_opens),
        T(writer_killed_at_random_times_always_reopens_with_its_commits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
