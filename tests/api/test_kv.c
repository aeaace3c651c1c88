/*
 * test_kv.c - the key-value store and atomic transactions, on an in-memory
 * database and on a directory (real LMDB under /tmp): put/get/delete, prefix
 * scans in byte order, buffer sizes, argument errors that change nothing,
 * values readable before they reach LMDB, reopen, and transactions that
 * apply all of their operations or none.
 *
 * Every behaviour runs against both kinds of database: each test body takes
 * an opened handle, and a thin wrapper per kind opens it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define DIM 8

/* ---- a model of the kv store: the expected pairs, compared by scanning -- */

#define MAXE 64

typedef struct kv_ent {
    unsigned char key[QZ_MAX_KEY];
    size_t klen;
    unsigned char val[600];
    size_t vlen;
} kv_ent;

typedef struct kv_model {
    kv_ent e[MAXE];
    size_t n;
} kv_model;

static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static void model_put(kv_model *m, const void *k, size_t kl, const void *v, size_t vl)
{
    for (size_t i = 0; i < m->n; i++)
        if (!key_cmp(m->e[i].key, m->e[i].klen, k, kl)) {
            memcpy(m->e[i].val, v, vl);
            m->e[i].vlen = vl;
            return;
        }
    assert_true(m->n < MAXE);
    kv_ent *e = &m->e[m->n++];
    memcpy(e->key, k, kl);
    e->klen = kl;
    memcpy(e->val, v, vl);
    e->vlen = vl;
}

static void model_del(kv_model *m, const void *k, size_t kl)
{
    for (size_t i = 0; i < m->n; i++)
        if (!key_cmp(m->e[i].key, m->e[i].klen, k, kl)) {
            m->e[i] = m->e[--m->n];
            return;
        }
}

static int ent_cmp(const void *a, const void *b)
{
    const kv_ent *x = a, *y = b;
    return key_cmp(x->key, x->klen, y->key, y->klen);
}

typedef struct scan_out {
    kv_ent e[MAXE];
    size_t n;
    int overflow;
} scan_out;

static int collect(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    scan_out *o = user;
    if (o->n == MAXE || kl > QZ_MAX_KEY || vl > sizeof o->e[0].val) {
        o->overflow = 1;
        return 0;
    }
    kv_ent *e = &o->e[o->n++];
    memcpy(e->key, k, kl);
    e->klen = kl;
    if (vl) memcpy(e->val, v, vl);
    e->vlen = vl;
    return 0;
}

/* The scan of @p prefix returns exactly the model's keys with that prefix,
 * in ascending byte order, with their values; every get agrees. */
static void expect_kv(qz_db *db, const kv_model *m, const void *prefix, size_t plen)
{
    kv_model want = {.n = 0};
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].klen >= plen && (!plen || !memcmp(m->e[i].key, prefix, plen))) want.e[want.n++] = m->e[i];
    qsort(want.e, want.n, sizeof want.e[0], ent_cmp);
    scan_out *got = calloc(1, sizeof *got);
    TU_OK(qz_kv_scan(db, prefix, plen, collect, got));
    assert_false(got->overflow);
    assert_int_equal(got->n, want.n);
    for (size_t i = 0; i < want.n; i++) {
        assert_int_equal(got->e[i].klen, want.e[i].klen);
        assert_memory_equal(got->e[i].key, want.e[i].key, want.e[i].klen);
        assert_int_equal(got->e[i].vlen, want.e[i].vlen);
        if (want.e[i].vlen) assert_memory_equal(got->e[i].val, want.e[i].val, want.e[i].vlen);
        unsigned char buf[600];
        size_t vl = 12345;
        TU_OK(qz_kv_get(db, want.e[i].key, want.e[i].klen, buf, sizeof buf, &vl));
        assert_int_equal(vl, want.e[i].vlen);
        if (vl) assert_memory_equal(buf, want.e[i].val, vl);
    }
    free(got);
}

static void put_both(qz_db *db, kv_model *m, const void *k, size_t kl, const void *v, size_t vl)
{
    TU_OK(qz_kv_put(db, k, kl, v, vl));
    model_put(m, k, kl, v, vl);
}

/* ---- a model of the vectors: ids 0..NV-1 ------------------------------- */

#define NV 32

typedef struct vec_model {
    int present[NV];
    float v[NV][DIM];
    char meta[NV][32];
} vec_model;

static void make_vec(float *v, uint64_t id, uint64_t version)
{
    tu_rng r = {id * 1000003u + version * 7919u + 1};
    for (int i = 0; i < DIM; i++) v[i] = (float)tu_normal(&r);
}

static void vm_set(vec_model *m, uint64_t id, uint64_t version)
{
    m->present[id] = 1;
    make_vec(m->v[id], id, version);
    snprintf(m->meta[id], sizeof m->meta[id], "id=%llu v=%llu", (unsigned long long)id, (unsigned long long)version);
}

static void expect_vectors(qz_db *db, const vec_model *m)
{
    size_t live = 0;
    for (uint64_t id = 0; id < NV; id++) {
        float got[DIM];
        char meta[64];
        size_t ml = 0;
        int rc = qz_db_get(db, id, got, DIM, meta, sizeof meta, &ml);
        if (!m->present[id]) {
            assert_int_equal(rc, QZ_ENOTFOUND);
            assert_int_equal(qz_db_contains(db, id), 0);
            continue;
        }
        live++;
        TU_OK(rc);
        assert_memory_equal(got, m->v[id], sizeof got);
        assert_int_equal(ml, strlen(m->meta[id]));
        assert_memory_equal(meta, m->meta[id], ml);
        uint64_t ids[4];
        size_t n;
        TU_OK(qz_db_search(db, m->v[id], DIM, 4, NULL, ids, NULL, &n));
        assert_true(n >= 1);
        assert_int_equal(ids[0], id);
        for (size_t j = 0; j < n; j++) assert_true(ids[j] < NV && m->present[ids[j]]);
    }
    qz_stats st = {.struct_size = sizeof st};
    TU_OK(qz_db_stats(db, &st));
    assert_int_equal(st.count, live);
}

/* ---- opening ------------------------------------------------------------ */

static qz_db *open_db(const char *dir, uint32_t window_ms)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.M = 8;
    o.ef_construction = 32;
    o.batch_window_ms = window_ms;
    qz_db *db = NULL;
    TU_OK(qz_db_open(dir, &o, &db));
    return db;
}

typedef void (*body_fn)(qz_db *db, const char *dir);

static void run_mem(body_fn body)
{
    qz_db *db = open_db(NULL, 0);
    body(db, NULL);
    qz_db_close(db);
}

static void run_dir(body_fn body)
{
    char *dir = tu_tempdir();
    char path[256];
    snprintf(path, sizeof path, "%s/db", dir);
    qz_db *db = open_db(path, 0);
    body(db, path);
    TU_OK(qz_db_close(db));
    tu_rmtree(dir);
    free(dir);
}

/* ---- bodies ------------------------------------------------------------- */

static void body_put_get_delete_scan(qz_db *db, const char *dir)
{
    (void)dir;
    kv_model *m = calloc(1, sizeof *m);
    /* Inserted out of order; includes a zero byte, 0xff bytes, a key that is
     * a prefix of others, and an empty value. */
    static const struct {
        const char *k;
        size_t kl;
        const char *v;
    } in[] = {
        {"user/0010", 9, "ten"},   {"user/0001", 9, "one"}, {"usr", 3, "not a user/ key"},
        {"user", 4, "bare"},       {"user/", 5, "slash"},   {"a", 1, "first"},
        {"user/0002\0x", 11, "with zero byte"}, {"\xff\xfe", 2, "high bytes"}, {"user/0003", 9, ""},
        {"user/00", 7, "short"},
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) put_both(db, m, in[i].k, in[i].kl, in[i].v, strlen(in[i].v));
    expect_kv(db, m, NULL, 0);
    expect_kv(db, m, "user/", 5);
    expect_kv(db, m, "user/000", 8);
    expect_kv(db, m, "u", 1);
    expect_kv(db, m, "\xff", 1);
    expect_kv(db, m, "nothing", 7);

    /* Explicit order check of one prefix scan. */
    scan_out *got = calloc(1, sizeof *got);
    TU_OK(qz_kv_scan(db, "user/", 5, collect, got));
    static const char *order[] = {"user/", "user/00", "user/0001", "user/0002", "user/0003", "user/0010"};
    assert_int_equal(got->n, 6);
    for (size_t i = 0; i < 6; i++) assert_memory_equal(got->e[i].key, order[i], strlen(order[i]));
    free(got);

    /* Replace with a longer and with a shorter value. */
    put_both(db, m, "user/0001", 9, "one, but longer than before", 27);
    put_both(db, m, "user/0010", 9, "X", 1);
    /* NULL value of length 0 stores an empty value. */
    TU_OK(qz_kv_put(db, "empty", 5, NULL, 0));
    model_put(m, "empty", 5, "", 0);
    size_t vl = 99;
    char b[8];
    TU_OK(qz_kv_get(db, "empty", 5, b, sizeof b, &vl));
    assert_int_equal(vl, 0);

    /* Delete: gone from get and scans, then a second delete is ENOTFOUND. */
    TU_OK(qz_kv_delete(db, "user/0003", 9));
    model_del(m, "user/0003", 9);
    assert_int_equal(qz_kv_get(db, "user/0003", 9, b, sizeof b, &vl), QZ_ENOTFOUND);
    assert_int_equal(qz_kv_delete(db, "user/0003", 9), QZ_ENOTFOUND);
    expect_kv(db, m, NULL, 0);
    expect_kv(db, m, "user/", 5);

    /* A deleted key can be put again. */
    put_both(db, m, "user/0003", 9, "three again", 11);
    expect_kv(db, m, NULL, 0);
    free(m);
}

static void kv_put_get_delete_and_prefix_scan_in_key_order_in_memory(void **s)
{
    (void)s;
    run_mem(body_put_get_delete_scan);
}

static void kv_put_get_delete_and_prefix_scan_in_key_order_in_directory(void **s)
{
    (void)s;
    run_dir(body_put_get_delete_scan);
}

/* Writes are readable at once, long before the background thread applies
 * them (window 10 s), deletes hide values that are already in LMDB, and
 * everything survives close + reopen. */
static void kv_values_are_visible_before_flush_and_survive_reopen(void **s)
{
    (void)s;
    char *tmp = tu_tempdir();
    char path[256];
    snprintf(path, sizeof path, "%s/db", tmp);
    kv_model *m = calloc(1, sizeof *m);
    qz_db *db = open_db(path, 10000);
    char k[32], v[64];
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "applied/%02d", i);
        snprintf(v, sizeof v, "value %d", i);
        put_both(db, m, k, strlen(k), v, strlen(v));
    }
    TU_OK(qz_db_flush(db)); /* these are in LMDB now */
    expect_kv(db, m, NULL, 0);
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "pending/%02d", i);
        snprintf(v, sizeof v, "pending value %d", i * i);
        put_both(db, m, k, strlen(k), v, strlen(v));
    }
    /* Overwrite and delete keys whose old value is in LMDB, without flushing. */
    put_both(db, m, "applied/03", 10, "overwritten", 11);
    TU_OK(qz_kv_delete(db, "applied/05", 10));
    model_del(m, "applied/05", 10);
    TU_OK(qz_kv_delete(db, "pending/07", 10));
    model_del(m, "pending/07", 10);
    expect_kv(db, m, NULL, 0);
    expect_kv(db, m, "applied/", 8);
    expect_kv(db, m, "pending/", 8);
    char b[8];
    size_t vl;
    assert_int_equal(qz_kv_get(db, "applied/05", 10, b, sizeof b, &vl), QZ_ENOTFOUND);
    TU_OK(qz_db_close(db));

    db = open_db(path, 0);
    expect_kv(db, m, NULL, 0);
    expect_kv(db, m, "pending/", 8);
    /* Once more, closing without any flush in between. */
    put_both(db, m, "late", 4, "written just before close", 25);
    TU_OK(qz_kv_delete(db, "applied/00", 10));
    model_del(m, "applied/00", 10);
    TU_OK(qz_db_close(db));
    db = open_db(path, 0);
    expect_kv(db, m, NULL, 0);
    TU_OK(qz_db_close(db));
    /* Read-only opens see the same. */
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.flags = QZ_OPEN_READONLY;
    TU_OK(qz_db_open(path, &o, &db));
    expect_kv(db, m, NULL, 0);
    assert_int_equal(qz_kv_put(db, "x", 1, "y", 1), QZ_EREADONLY);
    assert_int_equal(qz_kv_delete(db, "late", 4), QZ_EREADONLY);
    expect_kv(db, m, NULL, 0);
    TU_OK(qz_db_close(db));
    free(m);
    tu_rmtree(tmp);
    free(tmp);
}

static void body_too_small(qz_db *db, const char *dir)
{
    (void)dir;
    unsigned char val[100];
    for (int i = 0; i < 100; i++) val[i] = (unsigned char)(i * 7 + 1);
    TU_OK(qz_kv_put(db, "k", 1, val, sizeof val));
    TU_OK(qz_kv_put(db, "empty", 5, "", 0));
    unsigned char buf[100];
    memset(buf, 0xAB, sizeof buf);
    size_t vl = 0;
    assert_int_equal(qz_kv_get(db, "k", 1, buf, 99, &vl), QZ_ETOOSMALL);
    assert_int_equal(vl, 100);
    for (int i = 0; i < 100; i++) assert_int_equal(buf[i], 0xAB); /* nothing written */
    vl = 0;
    assert_int_equal(qz_kv_get(db, "k", 1, buf, 10, &vl), QZ_ETOOSMALL);
    assert_int_equal(vl, 100);
    vl = 0;
    assert_int_equal(qz_kv_get(db, "k", 1, NULL, 0, &vl), QZ_ETOOSMALL); /* size query */
    assert_int_equal(vl, 100);
    for (int i = 0; i < 100; i++) assert_int_equal(buf[i], 0xAB);
    vl = 0;
    TU_OK(qz_kv_get(db, "k", 1, buf, 100, &vl)); /* exactly enough */
    assert_int_equal(vl, 100);
    assert_memory_equal(buf, val, 100);
    vl = 7;
    TU_OK(qz_kv_get(db, "empty", 5, NULL, 0, &vl)); /* an empty value needs no buffer */
    assert_int_equal(vl, 0);
    /* A NULL buffer with a nonzero cap is an argument error. */
    assert_int_equal(qz_kv_get(db, "k", 1, NULL, 100, &vl), QZ_EINVAL);
}

static void kv_get_with_small_buffer_reports_needed_length_in_memory(void **s)
{
    (void)s;
    run_mem(body_too_small);
}

static void kv_get_with_small_buffer_reports_needed_length_in_directory(void **s)
{
    (void)s;
    run_dir(body_too_small);
}

static void body_bad_keys(qz_db *db, const char *dir)
{
    kv_model *m = calloc(1, sizeof *m);
    put_both(db, m, "a", 1, "1", 1);
    put_both(db, m, "b", 1, "2", 1);
    unsigned char big[QZ_MAX_KEY + 1];
    memset(big, 'k', sizeof big);
    /* The longest allowed key works. */
    put_both(db, m, big, QZ_MAX_KEY, "longest", 7);
    char buf[16];
    size_t vl = 0;

    assert_int_equal(qz_kv_put(db, NULL, 1, "x", 1), QZ_EINVAL);
    assert_int_equal(qz_kv_get(db, NULL, 1, buf, sizeof buf, &vl), QZ_EINVAL);
    assert_int_equal(qz_kv_delete(db, NULL, 1), QZ_EINVAL);
    assert_int_equal(qz_kv_put(db, "a", 0, "x", 1), QZ_ERANGE);
    assert_int_equal(qz_kv_get(db, "a", 0, buf, sizeof buf, &vl), QZ_ERANGE);
    assert_int_equal(qz_kv_delete(db, "a", 0), QZ_ERANGE);
    assert_int_equal(qz_kv_put(db, big, QZ_MAX_KEY + 1, "x", 1), QZ_ERANGE);
    assert_int_equal(qz_kv_get(db, big, QZ_MAX_KEY + 1, buf, sizeof buf, &vl), QZ_ERANGE);
    assert_int_equal(qz_kv_delete(db, big, QZ_MAX_KEY + 1), QZ_ERANGE);
    assert_int_equal(qz_kv_put(NULL, "a", 1, "x", 1), QZ_EINVAL);
    assert_int_equal(qz_kv_put(db, "a", 1, NULL, 1), QZ_EINVAL);          /* NULL value with a length */
    assert_int_equal(qz_kv_put(db, "a", 1, "x", QZ_MAX_METADATA + 1), QZ_ERANGE); /* never read past "x" */
    assert_int_equal(qz_kv_scan(db, "a", 1, NULL, NULL), QZ_EINVAL);
    assert_int_equal(qz_kv_scan(db, NULL, 1, collect, NULL), QZ_EINVAL);
    assert_int_equal(qz_kv_get(db, "missing", 7, buf, sizeof buf, &vl), QZ_ENOTFOUND);
    assert_int_equal(qz_kv_delete(db, "missing", 7), QZ_ENOTFOUND);
    assert_int_equal(qz_kv_get(db, "aa", 2, buf, sizeof buf, &vl), QZ_ENOTFOUND); /* prefix match is no match */
    assert_int_equal(qz_kv_get(db, big, QZ_MAX_KEY - 1, buf, sizeof buf, &vl), QZ_ENOTFOUND);
    /* A message accompanies a failure. */
    assert_int_equal(qz_kv_put(db, "a", 0, "x", 1), QZ_ERANGE);
    assert_true(strlen(qz_errmsg()) > 0);

    expect_kv(db, m, NULL, 0);
    if (dir) {
        /* Nothing of the failed calls reached the disk either. */
        TU_OK(qz_db_flush(db));
        expect_kv(db, m, NULL, 0);
    }
    free(m);
}

static void kv_bad_and_missing_keys_give_their_codes_and_change_nothing_in_memory(void **s)
{
    (void)s;
    run_mem(body_bad_keys);
}

static void kv_bad_and_missing_keys_give_their_codes_and_change_nothing_in_directory(void **s)
{
    (void)s;
    run_dir(body_bad_keys);
}

typedef struct stopper {
    int calls, stop_at;
    char last[16];
} stopper;

static int stop_cb(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    (void)v;
    (void)vl;
    stopper *st = user;
    st->calls++;
    memcpy(st->last, k, kl < 15 ? kl : 15);
    st->last[kl < 15 ? kl : 15] = '\0';
    return st->calls == st->stop_at ? 4242 : 0;
}

static void body_scan_stop(qz_db *db, const char *dir)
{
    (void)dir;
    for (int i = 0; i < 10; i++) {
        char k[8];
        snprintf(k, sizeof k, "s%d", i);
        TU_OK(qz_kv_put(db, k, strlen(k), "v", 1));
    }
    stopper st = {0, 3, ""};
    assert_int_equal(qz_kv_scan(db, "s", 1, stop_cb, &st), 4242);
    assert_int_equal(st.calls, 3);
    assert_string_equal(st.last, "s2");
    st = (stopper){0, 1, ""};
    assert_int_equal(qz_kv_scan(db, NULL, 0, stop_cb, &st), 4242);
    assert_int_equal(st.calls, 1);
    assert_string_equal(st.last, "s0");
    /* Never stopping visits all and returns QZ_OK. */
    st = (stopper){0, 1000, ""};
    TU_OK(qz_kv_scan(db, "s", 1, stop_cb, &st));
    assert_int_equal(st.calls, 10);
    /* A negative value is returned as it is, too. */
    st = (stopper){0, 5, ""};
    assert_int_equal(qz_kv_scan(db, "s", 1, stop_cb, &st), 4242);
    assert_int_equal(st.calls, 5);
}

static void kv_scan_stops_when_callback_returns_nonzero_and_returns_it_in_memory(void **s)
{
    (void)s;
    run_mem(body_scan_stop);
}

static void kv_scan_stops_when_callback_returns_nonzero_and_returns_it_in_directory(void **s)
{
    (void)s;
    run_dir(body_scan_stop);
}

/* ---- transactions ------------------------------------------------------- */

static void seed_state(qz_db *db, vec_model *vm, kv_model *km)
{
    for (uint64_t id = 0; id < 10; id++) {
        vm_set(vm, id, 1);
        TU_OK(qz_db_insert(db, id, vm->v[id], DIM, vm->meta[id], strlen(vm->meta[id])));
    }
    put_both(db, km, "keep", 4, "kept", 4);
    put_both(db, km, "drop", 4, "to be deleted", 13);
    put_both(db, km, "change", 6, "old", 3);
}

static void reopen_if_dir(qz_db **db, const char *dir)
{
    if (!dir) return;
    TU_OK(qz_db_close(*db));
    *db = open_db(dir, 0);
}

static void body_txn_commit(qz_db *db, const char *dir)
{
    vec_model *vm = calloc(1, sizeof *vm);
    kv_model *km = calloc(1, sizeof *km);
    seed_state(db, vm, km);
    qz_txn *t = NULL;
    TU_OK(qz_txn_begin(db, &t));
    vec_model next = *vm;
    vm_set(&next, 11, 1); /* new id */
    vm_set(&next, 3, 2);  /* replaced */
    next.present[5] = 0;  /* deleted */
    TU_OK(qz_txn_upsert(t, 11, next.v[11], DIM, next.meta[11], strlen(next.meta[11])));
    TU_OK(qz_txn_upsert(t, 3, next.v[3], DIM, next.meta[3], strlen(next.meta[3])));
    TU_OK(qz_txn_delete(t, 5));
    TU_OK(qz_txn_kv_put(t, "new", 3, "from txn", 8));
    TU_OK(qz_txn_kv_put(t, "change", 6, "new value", 9));
    TU_OK(qz_txn_kv_delete(t, "drop", 4));
    /* Not applied before commit. */
    expect_vectors(db, vm);
    expect_kv(db, km, NULL, 0);
    TU_OK(qz_txn_commit(t));
    *vm = next;
    model_put(km, "new", 3, "from txn", 8);
    model_put(km, "change", 6, "new value", 9);
    model_del(km, "drop", 4);
    expect_vectors(db, vm);
    expect_kv(db, km, NULL, 0);
    TU_OK(qz_db_check(db));
    /* A transaction may delete what an earlier op of it inserted. */
    TU_OK(qz_txn_begin(db, &t));
    vm_set(vm, 12, 1);
    TU_OK(qz_txn_upsert(t, 12, vm->v[12], DIM, vm->meta[12], strlen(vm->meta[12])));
    TU_OK(qz_txn_delete(t, 12));
    TU_OK(qz_txn_commit(t));
    vm->present[12] = 0;
    expect_vectors(db, vm);
    reopen_if_dir(&db, dir);
    expect_vectors(db, vm);
    expect_kv(db, km, NULL, 0);
    TU_OK(qz_db_check(db));
    if (dir) TU_OK(qz_db_close(db));
    free(vm);
    free(km);
}

static void txn_commit_applies_every_vector_and_kv_operation_in_memory(void **s)
{
    (void)s;
    qz_db *db = open_db(NULL, 0);
    body_txn_commit(db, NULL);
    qz_db_close(db);
}

static void txn_commit_applies_every_vector_and_kv_operation_in_directory(void **s)
{
    (void)s;
    char *tmp = tu_tempdir();
    char path[256];
    snprintf(path, sizeof path, "%s/db", tmp);
    body_txn_commit(open_db(path, 0), path); /* closes it */
    tu_rmtree(tmp);
    free(tmp);
}

/* quartz.h: qz_txn_kv_delete "absent keys are ignored". */
static void body_txn_absent_kv_delete(qz_db *db, const char *dir)
{
    vec_model *vm = calloc(1, sizeof *vm);
    kv_model *km = calloc(1, sizeof *km);
    seed_state(db, vm, km);
    qz_txn *t = NULL;
    TU_OK(qz_txn_begin(db, &t));
    vm_set(vm, 11, 1);
    TU_OK(qz_txn_upsert(t, 11, vm->v[11], DIM, vm->meta[11], strlen(vm->meta[11])));
    TU_OK(qz_txn_kv_delete(t, "absent", 6));
    TU_OK(qz_txn_kv_put(t, "new", 3, "v", 1));
    TU_OK(qz_txn_commit(t));
    model_put(km, "new", 3, "v", 1);
    expect_vectors(db, vm);
    expect_kv(db, km, NULL, 0);
    reopen_if_dir(&db, dir);
    expect_vectors(db, vm);
    expect_kv(db, km, NULL, 0);
    if (dir) TU_OK(qz_db_close(db));
    free(vm);
    free(km);
}

static void txn_kv_delete_of_absent_key_is_ignored_in_memory(void **s)
{
    (void)s;
    qz_db *db = open_db(NULL, 0);
    body_txn_absent_kv_delete(db, NULL);
    qz_db_close(db);
}

static void txn_kv_delete_of_absent_key_is_ignored_in_directory(void **s)
{
    (void)s;
    char *tmp = tu_tempdir();
    char path[256];
    snprintf(path, sizeof path, "%s/db", tmp);
    body_txn_absent_kv_delete(open_db(path, 0), path);
    tu_rmtree(tmp);
    free(tmp);
}

static void body_txn_fail(qz_db *db, const char *dir)
{
    vec_model *vm = calloc(1, sizeof *vm);
    kv_model *km = calloc(1, sizeof *km);
    seed_state(db, vm, km);
    qz_stats before = {.struct_size = sizeof before};
    TU_OK(qz_db_stats(db, &before));
    vec_model other = *vm;
    vm_set(&other, 20, 1);
    vm_set(&other, 2, 5);

    /* A delete of a missing id anywhere in the transaction fails all of it. */
    for (int where = 0; where < 3; where++) {
        qz_txn *t = NULL;
        TU_OK(qz_txn_begin(db, &t));
        if (where == 0) TU_OK(qz_txn_delete(t, 999));
        TU_OK(qz_txn_upsert(t, 20, other.v[20], DIM, other.meta[20], strlen(other.meta[20])));
        TU_OK(qz_txn_upsert(t, 2, other.v[2], DIM, other.meta[2], strlen(other.meta[2])));
        TU_OK(qz_txn_delete(t, 7));
        if (where == 1) TU_OK(qz_txn_delete(t, 999));
        TU_OK(qz_txn_kv_put(t, "new", 3, "never", 5));
        TU_OK(qz_txn_kv_put(t, "change", 6, "never", 5));
        TU_OK(qz_txn_kv_delete(t, "keep", 4));
        if (where == 2) TU_OK(qz_txn_delete(t, 7)); /* deleted twice: missing at the second */
        assert_int_equal(qz_txn_commit(t), QZ_ENOTFOUND);
        assert_true(strlen(qz_errmsg()) > 0);
        expect_vectors(db, vm);
        expect_kv(db, km, NULL, 0);
    }
    qz_stats after = {.struct_size = sizeof after};
    TU_OK(qz_db_stats(db, &after));
    assert_int_equal(after.count, before.count);
    assert_int_equal(after.deleted, before.deleted);
    TU_OK(qz_db_check(db));

    /* Abort, with and without operations, applies nothing. */
    qz_txn *t = NULL;
    TU_OK(qz_txn_begin(db, &t));
    TU_OK(qz_txn_upsert(t, 21, other.v[20], DIM, NULL, 0));
    TU_OK(qz_txn_delete(t, 1));
    TU_OK(qz_txn_kv_put(t, "aborted", 7, "x", 1));
    TU_OK(qz_txn_kv_delete(t, "keep", 4));
    qz_txn_abort(t);
    TU_OK(qz_txn_begin(db, &t));
    qz_txn_abort(t);
    qz_txn_abort(NULL);
    expect_vectors(db, vm);
    expect_kv(db, km, NULL, 0);
    /* An empty transaction commits and changes nothing. */
    TU_OK(qz_txn_begin(db, &t));
    TU_OK(qz_txn_commit(t));

    /* The database still takes writes, and nothing failed reached the disk. */
    TU_OK(qz_db_insert(db, 30, other.v[20], DIM, NULL, 0));
    TU_OK(qz_db_delete(db, 30));
    reopen_if_dir(&db, dir);
    expect_vectors(db, vm);
    expect_kv(db, km, NULL, 0);
    TU_OK(qz_db_check(db));
    if (dir) TU_OK(qz_db_close(db));
    free(vm);
    free(km);
}

static void txn_with_delete_of_missing_id_fails_and_abort_apply_nothing_in_memory(void **s)
{
    (void)s;
    qz_db *db = open_db(NULL, 0);
    body_txn_fail(db, NULL);
    qz_db_close(db);
}

static void txn_with_delete_of_missing_id_fails_and_abort_apply_nothing_in_directory(void **s)
{
    (void)s;
    char *tmp = tu_tempdir();
    char path[256];
    snprintf(path, sizeof path, "%s/db", tmp);
    body_txn_fail(open_db(path, 0), path);
    tu_rmtree(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kv_put_get_delete_and_prefix_scan_in_key_order_in_memory),
        cmocka_unit_test(kv_put_get_delete_and_prefix_scan_in_key_order_in_directory),
        cmocka_unit_test(kv_values_are_visible_before_flush_and_survive_reopen),
        cmocka_unit_test(kv_get_with_small_buffer_reports_needed_length_in_memory),
        cmocka_unit_test(kv_get_with_small_buffer_reports_needed_length_in_directory),
        cmocka_unit_test(kv_bad_and_missing_keys_give_their_codes_and_change_nothing_in_memory),
        cmocka_unit_test(kv_bad_and_missing_keys_give_their_codes_and_change_nothing_in_directory),
        cmocka_unit_test(kv_scan_stops_when_callback_returns_nonzero_and_returns_it_in_memory),
        cmocka_unit_test(kv_scan_stops_when_callback_returns_nonzero_and_returns_it_in_directory),
        cmocka_unit_test(txn_commit_applies_every_vector_and_kv_operation_in_memory),
        cmocka_unit_test(txn_commit_applies_every_vector_and_kv_operation_in_directory),
        cmocka_unit_test(txn_kv_delete_of_absent_key_is_ignored_in_memory),
        cmocka_unit_test(txn_kv_delete_of_absent_key_is_ignored_in_directory),
        cmocka_unit_test(txn_with_delete_of_missing_id_fails_and_abort_apply_nothing_in_memory),
        cmocka_unit_test(txn_with_delete_of_missing_id_fails_and_abort_apply_nothing_in_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
