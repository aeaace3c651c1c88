/* test_storage_lmdb.c - the LMDB storage backend on a real directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
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

static void readonly_open_of_missing_env_fails_with_eio(void **state)
{
    const char *dir = *state;
    char p[4096];
    snprintf(p, sizeof p, "%s/none", dir);
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_lmdb_open(p, QZ__LMDB_READONLY, &s), QZ_EIO);
    assert_null(s);
    assert_non_null(strstr(qz__err_msg(), "lmdb: ENOENT while opening"));
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
        T(map_grows_while_reader_is_open_on_another_thread),
        T(readers_stay_consistent_while_map_grows),
        T(readonly_open_refuses_write_transactions),
        T(readonly_open_of_missing_env_fails_with_eio),
        T(garbage_data_file_is_corrupt),
        T(reader_process_adopts_map_grown_by_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
