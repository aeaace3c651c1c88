/* test_storage_mem.c - the in-memory storage backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage.h"
#include "util/alloc.h"

/* ---- helpers ---- */

static int put_str(qz_storage *s, qz_storage_txn *t, uint32_t tab, const char *k, const char *v)
{
    return s->put(s, t, tab, k, strlen(k), v, strlen(v));
}

static int get_str(qz_storage *s, qz_storage_txn *t, uint32_t tab, const char *k, char *buf, size_t cap)
{
    const void *v = NULL;
    size_t vl = 0;
    int rc = s->get(s, t, tab, k, strlen(k), &v, &vl);
    if (rc < 0) return rc;
    assert_true(vl < cap);
    memcpy(buf, v, vl);
    buf[vl] = '\0';
    return rc;
}

typedef struct collect {
    char keys[64][32];
    int n;
} collect;

static int collect_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    (void)v;
    (void)vl;
    collect *c = user;
    assert_true(kl < 32 && c->n < 64);
    memcpy(c->keys[c->n], k, kl);
    c->keys[c->n][kl] = '\0';
    c->n++;
    return 0;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- tests ---- */

static void put_then_get_returns_value(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(put_str(s, t, QZ_TABLE_KV, "alpha", "1"), QZ_OK);
    assert_int_equal(put_str(s, t, QZ_TABLE_META, "alpha", "meta"), QZ_OK);
    char buf[64];
    assert_int_equal(get_str(s, t, QZ_TABLE_KV, "alpha", buf, sizeof buf), QZ_OK); /* own writes visible */
    assert_string_equal(buf, "1");
    assert_int_equal(s->commit(s, t), QZ_OK);

    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    assert_int_equal(get_str(s, t, QZ_TABLE_KV, "alpha", buf, sizeof buf), QZ_OK);
    assert_string_equal(buf, "1");
    assert_int_equal(get_str(s, t, QZ_TABLE_META, "alpha", buf, sizeof buf), QZ_OK);
    assert_string_equal(buf, "meta");
    assert_int_equal(get_str(s, t, QZ_TABLE_GRAPH, "alpha", buf, sizeof buf), QZ_ENOTFOUND);
    s->abort(s, t);
    s->close(s);
}

static void empty_value_round_trips(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "e", 1, NULL, 0), QZ_OK);
    const void *v = NULL;
    size_t vl = 99;
    assert_int_equal(s->get(s, t, QZ_TABLE_KV, "e", 1, &v, &vl), QZ_OK);
    assert_int_equal(vl, 0);
    assert_int_equal(s->commit(s, t), QZ_OK);
    s->close(s);
}

static void bad_keys_and_tables_are_refused(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *t = NULL;
    char big[QZ_MAX_KEY + 1];
    memset(big, 'k', sizeof big);
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, big, 0, "v", 1), QZ_EINVAL);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, big, QZ_MAX_KEY + 1, "v", 1), QZ_EINVAL);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, big, QZ_MAX_KEY, "v", 1), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_COUNT, "k", 1, "v", 1), QZ_EINVAL);
    s->abort(s, t);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_KV, "k", 1, "v", 1), QZ_EINVAL);
    s->abort(s, t);
    s->close(s);
}

static void write_is_invisible_to_readers_until_commit(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *w = NULL, *r = NULL;
    char buf[64];
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    assert_int_equal(put_str(s, w, QZ_TABLE_KV, "k", "v1"), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &r), QZ_OK);
    assert_int_equal(get_str(s, r, QZ_TABLE_KV, "k", buf, sizeof buf), QZ_ENOTFOUND);
    assert_int_equal(s->commit(s, w), QZ_OK);
    /* r began before the commit: it keeps its snapshot */
    assert_int_equal(get_str(s, r, QZ_TABLE_KV, "k", buf, sizeof buf), QZ_ENOTFOUND);
    s->abort(s, r);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &r), QZ_OK);
    assert_int_equal(get_str(s, r, QZ_TABLE_KV, "k", buf, sizeof buf), QZ_OK);
    assert_string_equal(buf, "v1");
    s->abort(s, r);
    s->close(s);
}

static void reader_keeps_snapshot_while_writer_replaces_and_deletes(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *w = NULL, *r = NULL;
    char k[16], buf[64];
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "key%03d", i);
        assert_int_equal(put_str(s, w, QZ_TABLE_KV, k, "old"), QZ_OK);
    }
    assert_int_equal(s->commit(s, w), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &r), QZ_OK);
    const void *held = NULL;
    size_t heldlen = 0;
    assert_int_equal(s->get(s, r, QZ_TABLE_KV, "key100", 6, &held, &heldlen), QZ_OK);

    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "key%03d", i);
        if (i % 2)
            assert_int_equal(s->del(s, w, QZ_TABLE_KV, k, strlen(k)), QZ_OK);
        else
            assert_int_equal(put_str(s, w, QZ_TABLE_KV, k, "new"), QZ_OK);
    }
    assert_int_equal(s->commit(s, w), QZ_OK);

    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "key%03d", i);
        assert_int_equal(get_str(s, r, QZ_TABLE_KV, k, buf, sizeof buf), QZ_OK);
        assert_string_equal(buf, "old");
    }
    assert_int_equal(heldlen, 3);
    assert_memory_equal(held, "old", 3); /* pointer from before the commit still valid */
    s->abort(s, r);

    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &r), QZ_OK);
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "key%03d", i);
        int rc = get_str(s, r, QZ_TABLE_KV, k, buf, sizeof buf);
        if (i % 2) {
            assert_int_equal(rc, QZ_ENOTFOUND);
        } else {
            assert_int_equal(rc, QZ_OK);
            assert_string_equal(buf, "new");
        }
    }
    s->abort(s, r);
    s->close(s);
}

static void abort_discards_writes(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *w = NULL;
    char buf[64];
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    assert_int_equal(put_str(s, w, QZ_TABLE_KV, "keep", "1"), QZ_OK);
    assert_int_equal(s->commit(s, w), QZ_OK);
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    assert_int_equal(put_str(s, w, QZ_TABLE_KV, "gone", "2"), QZ_OK);
    assert_int_equal(s->del(s, w, QZ_TABLE_KV, "keep", 4), QZ_OK);
    assert_int_equal(s->clear(s, w, QZ_TABLE_META), QZ_OK);
    s->abort(s, w);
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    assert_int_equal(get_str(s, w, QZ_TABLE_KV, "keep", buf, sizeof buf), QZ_OK);
    assert_int_equal(get_str(s, w, QZ_TABLE_KV, "gone", buf, sizeof buf), QZ_ENOTFOUND);
    s->abort(s, w);
    s->close(s);
}

static void del_of_absent_key_returns_notfound_and_txn_stays_usable(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *w = NULL;
    char buf[64];
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    assert_int_equal(s->del(s, w, QZ_TABLE_KV, "nope", 4), QZ_ENOTFOUND);
    assert_int_equal(put_str(s, w, QZ_TABLE_KV, "yes", "1"), QZ_OK);
    assert_int_equal(s->commit(s, w), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &w), QZ_OK);
    assert_int_equal(get_str(s, w, QZ_TABLE_KV, "yes", buf, sizeof buf), QZ_OK);
    s->abort(s, w);
    s->close(s);
}

static void scan_visits_prefix_in_byte_order(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *w = NULL;
    const char *keys[] = {"b", "ab", "a", "abc", "b\x01", "aa", "\xff", "ac", "abd"};
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_int_equal(put_str(s, w, QZ_TABLE_KV, keys[i], "v"), QZ_OK);
    collect c = {.n = 0};
    assert_int_equal(s->scan(s, w, QZ_TABLE_KV, "ab", 2, collect_fn, &c), QZ_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.keys[0], "ab");
    assert_string_equal(c.keys[1], "abc");
    assert_string_equal(c.keys[2], "abd");
    assert_int_equal(s->commit(s, w), QZ_OK);

    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &w), QZ_OK);
    c.n = 0;
    assert_int_equal(s->scan(s, w, QZ_TABLE_KV, NULL, 0, collect_fn, &c), QZ_OK);
    const char *want[] = {"a", "aa", "ab", "abc", "abd", "ac", "b", "b\x01", "\xff"};
    assert_int_equal(c.n, 9);
    for (int i = 0; i < 9; i++) assert_string_equal(c.keys[i], want[i]);
    c.n = 0;
    assert_int_equal(s->scan(s, w, QZ_TABLE_KV, "zz", 2, collect_fn, &c), QZ_OK);
    assert_int_equal(c.n, 0);
    s->abort(s, w);
    s->close(s);
}

static int stop_after_two(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    int *n = user;
    return ++*n == 2 ? 77 : 0;
}

static void scan_stops_with_callback_value(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *w = NULL;
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    for (int i = 0; i < 10; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(put_str(s, w, QZ_TABLE_KV, k, "v"), QZ_OK);
    }
    int n = 0;
    assert_int_equal(s->scan(s, w, QZ_TABLE_KV, NULL, 0, stop_after_two, &n), 77);
    assert_int_equal(n, 2);
    s->abort(s, w);
    s->close(s);
}

static void clear_empties_only_that_table(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *w = NULL;
    char buf[8];
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    assert_int_equal(put_str(s, w, QZ_TABLE_KV, "a", "1"), QZ_OK);
    assert_int_equal(put_str(s, w, QZ_TABLE_GRAPH, "a", "1"), QZ_OK);
    assert_int_equal(s->commit(s, w), QZ_OK);
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    assert_int_equal(s->clear(s, w, QZ_TABLE_GRAPH), QZ_OK);
    assert_int_equal(s->commit(s, w), QZ_OK);
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &w), QZ_OK);
    assert_int_equal(get_str(s, w, QZ_TABLE_GRAPH, "a", buf, sizeof buf), QZ_ENOTFOUND);
    assert_int_equal(get_str(s, w, QZ_TABLE_KV, "a", buf, sizeof buf), QZ_OK);
    s->abort(s, w);
    s->close(s);
}

/* Random operations against an array model; every few steps commit or abort,
 * and an old snapshot must keep matching the model state it was taken at. */
#define MODEL_KEYS 300
typedef struct model {
    int present[MODEL_KEYS];
    uint32_t val[MODEL_KEYS];
} model;

typedef struct model_scan {
    const model *m;
    int next;
} model_scan;

static int model_scan_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    model_scan *ms = user;
    char key[16];
    assert_true(kl < sizeof key);
    memcpy(key, k, kl);
    key[kl] = '\0';
    int idx = atoi(key + 1);
    /* keys are "k%04d": byte order == numeric order */
    while (ms->next < MODEL_KEYS && !ms->m->present[ms->next]) ms->next++;
    assert_int_equal(idx, ms->next);
    assert_int_equal(vl, sizeof(uint32_t));
    uint32_t x;
    memcpy(&x, v, sizeof x);
    assert_int_equal(x, ms->m->val[idx]);
    ms->next++;
    return 0;
}

static void check_model(qz_storage *s, qz_storage_txn *t, const model *m)
{
    model_scan ms = {m, 0};
    assert_int_equal(s->scan(s, t, QZ_TABLE_KV, "k", 1, model_scan_fn, &ms), QZ_OK);
    while (ms.next < MODEL_KEYS && !m->present[ms.next]) ms.next++;
    assert_int_equal(ms.next, MODEL_KEYS);
}

static void random_ops_match_model_and_snapshots(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    static model committed, working, snapm;
    memset(&committed, 0, sizeof committed);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    qz_storage_txn *snap = NULL;
    for (int round = 0; round < 400; round++) {
        working = committed;
        qz_storage_txn *w = NULL;
        assert_int_equal(s->begin(s, 0, &w), QZ_OK);
        int nops = (int)(rng_next(&rng) % 40);
        for (int i = 0; i < nops; i++) {
            int idx = (int)(rng_next(&rng) % MODEL_KEYS);
            char k[16];
            snprintf(k, sizeof k, "k%04d", idx);
            if (rng_next(&rng) % 3 == 0) {
                int rc = s->del(s, w, QZ_TABLE_KV, k, strlen(k));
                assert_int_equal(rc, working.present[idx] ? QZ_OK : QZ_ENOTFOUND);
                working.present[idx] = 0;
            } else {
                uint32_t x = (uint32_t)rng_next(&rng);
                assert_int_equal(s->put(s, w, QZ_TABLE_KV, k, strlen(k), &x, sizeof x), QZ_OK);
                working.present[idx] = 1;
                working.val[idx] = x;
            }
        }
        check_model(s, w, &working);
        if (rng_next(&rng) % 4 == 0) {
            s->abort(s, w);
        } else {
            assert_int_equal(s->commit(s, w), QZ_OK);
            committed = working;
        }
        if (round % 25 == 0) {
            if (snap) {
                check_model(s, snap, &snapm);
                s->abort(s, snap);
            }
            assert_int_equal(s->begin(s, QZ_TXN_READONLY, &snap), QZ_OK);
            snapm = committed;
        }
    }
    check_model(s, snap, &snapm);
    s->abort(s, snap);
    s->close(s);
}

/* One writer bumps every key of a table in each commit; readers check that
 * every snapshot they see is consistent (all keys carry the same counter). */
typedef struct conc {
    qz_storage *s;
    int stop; /* atomic builtins */
    int failures;
    long reads;
} conc;

#define CONC_KEYS 64

static void *conc_reader(void *arg)
{
    conc *c = arg;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        qz_storage_txn *t = NULL;
        if (c->s->begin(c->s, QZ_TXN_READONLY, &t) != QZ_OK) {
            __atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
            break;
        }
        uint64_t first = UINT64_MAX;
        for (int i = 0; i < CONC_KEYS; i++) {
            char k[16];
            snprintf(k, sizeof k, "c%02d", i);
            const void *v;
            size_t vl;
            if (c->s->get(c->s, t, QZ_TABLE_KV, k, strlen(k), &v, &vl) != QZ_OK) {
                __atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
                break;
            }
            uint64_t x;
            memcpy(&x, v, sizeof x);
            if (first == UINT64_MAX) first = x;
            if (x != first) __atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
        }
        c->s->abort(c->s, t);
        __atomic_add_fetch(&c->reads, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void concurrent_readers_see_whole_commits(void **state)
{
    (void)state;
    conc c = {0};
    assert_int_equal(qz__storage_mem_open(&c.s), QZ_OK);
    qz_storage *s = c.s;
    qz_storage_txn *w = NULL;
    assert_int_equal(s->begin(s, 0, &w), QZ_OK);
    for (int i = 0; i < CONC_KEYS; i++) {
        char k[16];
        uint64_t x = 0;
        snprintf(k, sizeof k, "c%02d", i);
        assert_int_equal(s->put(s, w, QZ_TABLE_KV, k, strlen(k), &x, sizeof x), QZ_OK);
    }
    assert_int_equal(s->commit(s, w), QZ_OK);
    pthread_t th[3];
    for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&th[i], NULL, conc_reader, &c), 0);
    for (uint64_t gen = 1; gen <= 3000; gen++) {
        assert_int_equal(s->begin(s, 0, &w), QZ_OK);
        for (int i = 0; i < CONC_KEYS; i++) {
            char k[16];
            snprintf(k, sizeof k, "c%02d", i);
            assert_int_equal(s->put(s, w, QZ_TABLE_KV, k, strlen(k), &gen, sizeof gen), QZ_OK);
        }
        assert_int_equal(s->commit(s, w), QZ_OK);
    }
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    assert_int_equal(c.failures, 0);
    assert_true(c.reads > 0);
    s->close(s);
}

/* Every allocation goes through the library's allocator: make allocation N
 * fail for N = 0, 1, ... until a transaction of puts, a replacement and a
 * delete commits. Each failing run returns QZ_ENOMEM and leaves the store
 * as it was (ASan checks for leaks). With malloc() called directly, N = 0
 * succeeds at once and the first assertion fails. */
static void every_allocation_failure_is_enomem_and_changes_nothing(void **state)
{
    (void)state;
    qz_storage *s = NULL;
    qz__alloc_fail_after(0);
    assert_int_equal(qz__storage_mem_open(&s), QZ_ENOMEM);
    qz__alloc_fail_after(-1);
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    qz_storage_txn *t = NULL;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    for (int i = 0; i < 50; i++) {
        char k[16];
        snprintf(k, sizeof k, "base%02d", i);
        assert_int_equal(put_str(s, t, QZ_TABLE_KV, k, "old"), QZ_OK);
    }
    assert_int_equal(s->commit(s, t), QZ_OK);

    int rc = QZ_ENOMEM;
    long n;
    for (n = 0; rc == QZ_ENOMEM && n < 10000; n++) {
        qz__alloc_fail_after(n);
        rc = s->begin(s, 0, &t);
        if (rc == QZ_OK) {
            for (int i = 0; i < 20 && rc == QZ_OK; i++) {
                char k[16];
                snprintf(k, sizeof k, "new%02d", i);
                rc = put_str(s, t, QZ_TABLE_GRAPH, k, "value");
            }
            if (rc == QZ_OK) rc = put_str(s, t, QZ_TABLE_KV, "base07", "new");
            if (rc == QZ_OK) rc = s->del(s, t, QZ_TABLE_KV, "base08", 6);
            if (rc == QZ_OK)
                rc = s->commit(s, t);
            else
                s->abort(s, t);
        }
        qz__alloc_fail_after(-1);
        if (n == 0) assert_int_equal(rc, QZ_ENOMEM);
        if (rc == QZ_OK) break;
        assert_int_equal(rc, QZ_ENOMEM);
        /* nothing of the failed transaction is visible */
        char buf[16];
        assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
        assert_int_equal(get_str(s, t, QZ_TABLE_KV, "base07", buf, sizeof buf), QZ_OK);
        assert_string_equal(buf, "old");
        assert_int_equal(get_str(s, t, QZ_TABLE_KV, "base08", buf, sizeof buf), QZ_OK);
        assert_int_equal(get_str(s, t, QZ_TABLE_GRAPH, "new00", buf, sizeof buf), QZ_ENOTFOUND);
        s->abort(s, t);
    }
    assert_int_equal(rc, QZ_OK);
    assert_true(n > 20);
    char buf[16];
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    assert_int_equal(get_str(s, t, QZ_TABLE_KV, "base07", buf, sizeof buf), QZ_OK);
    assert_string_equal(buf, "new");
    assert_int_equal(get_str(s, t, QZ_TABLE_KV, "base08", buf, sizeof buf), QZ_ENOTFOUND);
    assert_int_equal(get_str(s, t, QZ_TABLE_GRAPH, "new19", buf, sizeof buf), QZ_OK);
    s->abort(s, t);
    s->close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_then_get_returns_value),
        cmocka_unit_test(empty_value_round_trips),
        cmocka_unit_test(bad_keys_and_tables_are_refused),
        cmocka_unit_test(write_is_invisible_to_readers_until_commit),
        cmocka_unit_test(reader_keeps_snapshot_while_writer_replaces_and_deletes),
        cmocka_unit_test(abort_discards_writes),
        cmocka_unit_test(del_of_absent_key_returns_notfound_and_txn_stays_usable),
        cmocka_unit_test(scan_visits_prefix_in_byte_order),
        cmocka_unit_test(scan_stops_with_callback_value),
        cmocka_unit_test(clear_empties_only_that_table),
        cmocka_unit_test(random_ops_match_model_and_snapshots),
        cmocka_unit_test(concurrent_readers_see_whole_commits),
        cmocka_unit_test(every_allocation_failure_is_enomem_and_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
