/*
 * test_durability.c - one durability suite, run over every kind of storage:
 *
 *   dir        a database directory (LMDB + the log file); a crash is a real
 *              child process killed with SIGKILL at a random moment
 *   memory     qz_db_open_storage() over the in-memory backend; a crash is a
 *              power cut: from a random point on every backend call fails,
 *              then the handle is closed (what was not committed is lost)
 *   lmdb       qz_db_open_storage() over the LMDB backend without a log; a
 *              crash is a power cut as for memory
 *   fault      the memory backend behind a fault injector whose commit fails
 *              on demand in the middle of the writes
 *
 * Every case runs a deterministic sequence of operations (inserts, upserts,
 * deletes, kv puts and deletes, transactions of three operations, and in
 * BATCHED mode a qz_db_flush() every 25 operations) against a model, then
 * reopens the storage and requires the recovered state (every id of the
 * pool and every key: absent, or the exact vector / metadata / value) to be
 * the model after some prefix p of the operations with
 *   SYNC:     p >= every acknowledged operation (the one in flight at a
 *             SIGKILL may be in or out);
 *   BATCHED:  p >= every operation acknowledged before the last
 *             acknowledged flush;
 *   fault:    p == the operations acknowledged before the first failure,
 *             and every operation after it fails with QZ_EIO.
 * qz_db_check() must pass on every recovered database.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault_storage.h"
#include "quartz/sys/storage.h"
#include "storage/storage.h"
#include "testutil.h"

#define DIM 8
#define POOL 48 /* ids 0..POOL-1 */
#define KEYS 24
#define NOPS 300

enum { E_DIR, E_MEMORY, E_LMDB, E_FAULT, E_COUNT };
static const char *env_name[E_COUNT] = {"dir", "memory", "lmdb", "fault"};

enum { OP_UPSERT, OP_INSERT, OP_DELETE, OP_KV_PUT, OP_KV_DEL, OP_TXN, OP_FLUSH };

typedef struct op {
    int kind;
    uint64_t id, id2;  /* txn: upsert id, delete id2 (or none: UINT64_MAX) */
    uint32_t key, ver; /* kv key, version of the written value */
} op;

/* The state a prefix of the operations leads to. */
typedef struct model {
    uint32_t ver[POOL]; /* 0 = absent, else version of the vector/metadata */
    uint32_t kv[KEYS];  /* 0 = absent, else version of the value */
} model;

static void vec_of(uint64_t id, uint32_t ver, float *v)
{
    for (int i = 0; i < DIM; i++) v[i] = (float)((id * 31 + ver * 7 + (uint64_t)i * 3) % 97) - 48.0f + 0.25f * i;
}

static int meta_of(uint64_t id, uint32_t ver, char *buf, size_t cap)
{
    return snprintf(buf, cap, "{\"id\":%llu,\"v\":%u}", (unsigned long long)id, ver);
}

static int key_of(uint32_t k, char *buf, size_t cap) { return snprintf(buf, cap, "key/%u", k); }

static int val_of(uint32_t k, uint32_t ver, char *buf, size_t cap) { return snprintf(buf, cap, "value %u.%u", k, ver); }

/* Deterministic operations, each valid on the model it follows. */
static void make_ops(op *ops, size_t n, int with_flush, uint64_t seed)
{
    tu_rng r = {seed};
    model m;
    memset(&m, 0, sizeof m);
    uint32_t ver = 1;
    for (size_t i = 0; i < n; i++) {
        op o = {0};
        uint64_t x = tu_next(&r) % 100;
        uint64_t id = tu_next(&r) % POOL;
        if (with_flush && i % 25 == 24) {
            o.kind = OP_FLUSH;
        } else if (x < 35) {
            o.kind = OP_UPSERT;
        } else if (x < 50) {
            o.kind = m.ver[id] ? OP_UPSERT : OP_INSERT;
        } else if (x < 65) {
            o.kind = m.ver[id] ? OP_DELETE : OP_INSERT;
        } else if (x < 80) {
            o.kind = OP_KV_PUT;
        } else if (x < 90) {
            o.kind = OP_KV_DEL;
        } else {
            o.kind = OP_TXN;
        }
        o.id = id;
        o.key = (uint32_t)(tu_next(&r) % KEYS);
        o.ver = ver++;
        o.id2 = UINT64_MAX;
        if (o.kind == OP_KV_DEL && !m.kv[o.key]) o.kind = OP_KV_PUT;
        if (o.kind == OP_TXN) {
            uint64_t d = (id + 1 + tu_next(&r) % (POOL - 1)) % POOL;
            if (m.ver[d]) o.id2 = d;
        }
        /* advance the model */
        switch (o.kind) {
        case OP_UPSERT:
        case OP_INSERT: m.ver[o.id] = o.ver; break;
        case OP_DELETE: m.ver[o.id] = 0; break;
        case OP_KV_PUT: m.kv[o.key] = o.ver; break;
        case OP_KV_DEL: m.kv[o.key] = 0; break;
        case OP_TXN:
            m.ver[o.id] = o.ver;
            if (o.id2 != UINT64_MAX) m.ver[o.id2] = 0;
            m.kv[o.key] = o.ver;
            break;
        default: break;
        }
        ops[i] = o;
    }
}

static void model_apply(model *m, const op *o)
{
    switch (o->kind) {
    case OP_UPSERT:
    case OP_INSERT: m->ver[o->id] = o->ver; break;
    case OP_DELETE: m->ver[o->id] = 0; break;
    case OP_KV_PUT: m->kv[o->key] = o->ver; break;
    case OP_KV_DEL: m->kv[o->key] = 0; break;
    case OP_TXN:
        m->ver[o->id] = o->ver;
        if (o->id2 != UINT64_MAX) m->ver[o->id2] = 0;
        m->kv[o->key] = o->ver;
        break;
    default: break;
    }
}

static int run_op(qz_db *db, const op *o)
{
    float v[DIM];
    char meta[64], key[32], val[64];
    int ml, kl = key_of(o->key, key, sizeof key), vl = val_of(o->key, o->ver, val, sizeof val);
    switch (o->kind) {
    case OP_UPSERT:
    case OP_INSERT:
        vec_of(o->id, o->ver, v);
        ml = meta_of(o->id, o->ver, meta, sizeof meta);
        return o->kind == OP_INSERT ? qz_db_insert(db, o->id, v, DIM, meta, (size_t)ml)
                                    : qz_db_upsert(db, o->id, v, DIM, meta, (size_t)ml);
    case OP_DELETE: return qz_db_delete(db, o->id);
    case OP_KV_PUT: return qz_kv_put(db, key, (size_t)kl, val, (size_t)vl);
    case OP_KV_DEL: return qz_kv_delete(db, key, (size_t)kl);
    case OP_FLUSH: return qz_db_flush(db);
    default: {
        qz_txn *t;
        int rc = qz_txn_begin(db, &t);
        if (rc < 0) return rc;
        vec_of(o->id, o->ver, v);
        ml = meta_of(o->id, o->ver, meta, sizeof meta);
        rc = qz_txn_upsert(t, o->id, v, DIM, meta, (size_t)ml);
        if (rc == QZ_OK && o->id2 != UINT64_MAX) rc = qz_txn_delete(t, o->id2);
        if (rc == QZ_OK) rc = qz_txn_kv_put(t, key, (size_t)kl, val, (size_t)vl);
        if (rc < 0) {
            qz_txn_abort(t);
            return rc;
        }
        return qz_txn_commit(t);
    }
    }
}

/* Read the whole recovered state; a stored value that matches no version
 * of its id/key fails the test. */
static void read_state(qz_db *db, const op *ops, size_t n, model *st)
{
    memset(st, 0, sizeof *st);
    for (uint64_t id = 0; id < POOL; id++) {
        float v[DIM], want[DIM];
        char meta[128], wm[64];
        size_t ml = 0;
        int rc = qz_db_get(db, id, v, DIM, meta, sizeof meta, &ml);
        if (rc == QZ_ENOTFOUND) continue;
        TU_OK(rc);
        int found = 0;
        for (size_t i = 0; i < n && !found; i++) {
            if (ops[i].kind != OP_UPSERT && ops[i].kind != OP_INSERT && ops[i].kind != OP_TXN) continue;
            if (ops[i].id != id) continue;
            vec_of(id, ops[i].ver, want);
            int wl = meta_of(id, ops[i].ver, wm, sizeof wm);
            if (memcmp(v, want, sizeof v) == 0 && ml == (size_t)wl && memcmp(meta, wm, ml) == 0) {
                st->ver[id] = ops[i].ver;
                found = 1;
            }
        }
        if (!found) fail_msg("id %llu holds a vector/metadata that no operation wrote (meta %.*s)",
                             (unsigned long long)id, (int)ml, meta);
    }
    for (uint32_t k = 0; k < KEYS; k++) {
        char key[32], val[128], wv[64];
        int kl = key_of(k, key, sizeof key);
        size_t vl = 0;
        int rc = qz_kv_get(db, key, (size_t)kl, val, sizeof val, &vl);
        if (rc == QZ_ENOTFOUND) continue;
        TU_OK(rc);
        int found = 0;
        for (size_t i = 0; i < n && !found; i++) {
            if ((ops[i].kind != OP_KV_PUT && ops[i].kind != OP_TXN) || ops[i].key != k) continue;
            int wl = val_of(k, ops[i].ver, wv, sizeof wv);
            if (vl == (size_t)wl && memcmp(val, wv, vl) == 0) {
                st->kv[k] = ops[i].ver;
                found = 1;
            }
        }
        if (!found) fail_msg("key %s holds a value that no operation wrote: %.*s", key, (int)vl, val);
    }
    TU_OK(qz_db_check(db));
}

/* Is `st` the model after some prefix p with lo <= p <= hi? Returns p or -1. */
static long matching_prefix(const op *ops, size_t lo, size_t hi, const model *st)
{
    model m;
    memset(&m, 0, sizeof m);
    for (size_t p = 0;; p++) {
        if (p >= lo && memcmp(&m, st, sizeof m) == 0) return (long)p;
        if (p >= hi) return -1;
        model_apply(&m, &ops[p]);
    }
}

static qz_open_options opts_for(uint32_t durability)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.durability = durability;
    o.batch_window_ms = 5;
    o.threads = 2;
    return o;
}

/* ---- in-process storages: power cut through the fault wrapper ---- */

typedef struct store {
    int env;
    qz_storage *inner; /* survives the "crash" */
    char *dir;         /* lmdb backend directory */
} store;

static void store_open(store *s, int env)
{
    memset(s, 0, sizeof *s);
    s->env = env;
    if (env == E_LMDB) {
        s->dir = tu_tempdir();
        TU_OK(qz__storage_lmdb_open(s->dir, 0, &s->inner));
    } else {
        TU_OK(qz__storage_mem_open(&s->inner));
    }
}

static void store_close(store *s)
{
    s->inner->close(s->inner);
    if (s->dir) {
        tu_rmtree(s->dir);
        free(s->dir);
    }
}

/* Run ops[0..n) over a fresh wrapper; stop after `cut` ops with a power cut
 * (every backend call fails from then on); returns how many were acknowledged
 * and the last acknowledged flush. fail_commit > 0: that commit (counted from
 * open) fails, for the fault env. */
static size_t run_in_process(store *s, uint32_t dur, const op *ops, size_t n, size_t cut, uint64_t fail_commit,
                             size_t *flushed, size_t *first_err)
{
    qz_storage *w;
    TU_OK(fault_storage_wrap(s->inner, 0, &w));
    qz_open_options o = opts_for(dur);
    qz_db *db;
    TU_OK(qz_db_open_storage(w, &o, &db));
    if (fail_commit) fault_storage_fail_from(w, FAULT_COMMIT, fail_commit, QZ_EIO);
    size_t acked = 0;
    *flushed = 0;
    *first_err = SIZE_MAX;
    for (size_t i = 0; i < n && i < cut; i++) {
        int rc = run_op(db, &ops[i]);
        if (rc == QZ_OK && *first_err == SIZE_MAX) {
            acked = i + 1;
            if (ops[i].kind == OP_FLUSH) *flushed = i + 1;
        } else if (rc == QZ_OK) {
            fail_msg("%s op %zu succeeded after op %zu failed: a storage failure must stick", env_name[s->env], i,
                     *first_err);
        } else if (rc != QZ_OK) {
            if (*first_err == SIZE_MAX) *first_err = i;
            /* after a storage failure every later write fails the same way */
            if (rc != QZ_EIO) fail_msg("%s op %zu failed with %s, not QZ_EIO: %s", env_name[s->env], i, qz_strerror(rc),
                                       qz_errmsg());
        }
    }
    /* the power cut */
    for (int m = FAULT_BEGIN; m < FAULT_OP_COUNT; m++)
        if (m != FAULT_ABORT) fault_storage_fail_from(w, (fault_op)m, 1, QZ_EIO);
    (void)qz_db_close(db); /* fails when something was still pending */
    assert_int_equal(fault_storage_open_txns(w), 0);
    w->close(w);
    return acked;
}

static void verify_reopen(store *s, const op *ops, size_t n, size_t lo, size_t hi, const char *what)
{
    qz_storage *w;
    TU_OK(fault_storage_wrap(s->inner, 0, &w));
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.flags = QZ_OPEN_EXISTING;
    qz_db *db;
    TU_OK(qz_db_open_storage(w, &o, &db));
    model st;
    read_state(db, ops, n, &st);
    long p = matching_prefix(ops, lo, hi, &st);
    if (p < 0) fail_msg("%s %s: the recovered state is no prefix of the operations in [%zu, %zu]", env_name[s->env], what, lo, hi);
    TU_OK(qz_db_close(db));
    w->close(w);
}

static void test_clean_reopen(void **state)
{
    (void)state;
    op *ops = malloc(NOPS * sizeof *ops);
    make_ops(ops, NOPS, 0, 11);
    for (int env = E_MEMORY; env <= E_LMDB; env++) {
        for (uint32_t dur = QZ_DURABILITY_SYNC; dur <= QZ_DURABILITY_NONE; dur++) {
            store s;
            store_open(&s, env);
            qz_storage *w;
            TU_OK(fault_storage_wrap(s.inner, 0, &w));
            qz_open_options o = opts_for(dur);
            qz_db *db;
            TU_OK(qz_db_open_storage(w, &o, &db));
            for (size_t i = 0; i < NOPS; i++) TU_OK(run_op(db, &ops[i]));
            TU_OK(qz_db_close(db));
            w->close(w);
            verify_reopen(&s, ops, NOPS, NOPS, NOPS, "after a clean close");
            store_close(&s);
        }
    }
    free(ops);
}

static void test_power_cut(void **state)
{
    (void)state;
    tu_rng r = {77};
    op *ops = malloc(NOPS * sizeof *ops);
    for (int env = E_MEMORY; env <= E_LMDB; env++) {
        for (uint32_t dur = QZ_DURABILITY_SYNC; dur <= QZ_DURABILITY_BATCHED; dur++) {
            for (int round = 0; round < 6; round++) {
                make_ops(ops, NOPS, dur == QZ_DURABILITY_BATCHED, 100 + (uint64_t)round);
                store s;
                store_open(&s, env);
                size_t cut = 1 + tu_next(&r) % NOPS, flushed, err;
                size_t acked = run_in_process(&s, dur, ops, NOPS, cut, 0, &flushed, &err);
                assert_int_equal(acked, cut); /* nothing failed before the cut */
                size_t lo = dur == QZ_DURABILITY_SYNC ? acked : flushed;
                verify_reopen(&s, ops, NOPS, lo, acked, dur == QZ_DURABILITY_SYNC ? "SYNC power cut" : "BATCHED power cut");
                store_close(&s);
            }
        }
    }
    free(ops);
}

static void test_commit_failure(void **state)
{
    (void)state;
    op *ops = malloc(NOPS * sizeof *ops);
    for (uint32_t dur = QZ_DURABILITY_SYNC; dur <= QZ_DURABILITY_BATCHED; dur++) {
        for (uint64_t nth = 3; nth <= 18; nth += 5) {
            make_ops(ops, NOPS, dur == QZ_DURABILITY_BATCHED, 500 + nth);
            store s;
            store_open(&s, E_FAULT);
            size_t flushed, err;
            size_t acked = run_in_process(&s, dur, ops, NOPS, NOPS, nth, &flushed, &err);
            /* In SYNC every operation commits, so the failing commit is met
             * during the writes; in BATCHED it may be the one at close. */
            if (err == SIZE_MAX && dur == QZ_DURABILITY_SYNC)
                fail_msg("commit %llu was made to fail but no operation reported it", (unsigned long long)nth);
            print_message("fault %s: commit %llu failed, op %zu was the first to report QZ_EIO, %zu acknowledged\n",
                          dur == QZ_DURABILITY_SYNC ? "SYNC" : "BATCHED", (unsigned long long)nth, err, acked);
            size_t lo = dur == QZ_DURABILITY_SYNC ? acked : flushed;
            verify_reopen(&s, ops, NOPS, lo, acked, "after a failed commit");
            store_close(&s);
        }
    }
    free(ops);
}

/* ---- the directory: real SIGKILL ---- */

static void test_dir_sigkill(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    op *ops = malloc(NOPS * sizeof *ops);
    tu_rng r = {99};
    for (uint32_t dur = QZ_DURABILITY_SYNC; dur <= QZ_DURABILITY_BATCHED; dur++) {
        for (int round = 0; round < 8; round++) {
            tu_rmtree(dir);
            make_ops(ops, NOPS, dur == QZ_DURABILITY_BATCHED, 900 + (uint64_t)round);
            int fd[2];
            assert_int_equal(pipe(fd), 0);
            fflush(NULL);
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                close(fd[0]);
                qz_open_options o = opts_for(dur);
                qz_db *db;
                if (qz_db_open(dir, &o, &db) != QZ_OK) _exit(3);
                for (uint32_t i = 0; i < NOPS; i++) {
                    if (run_op(db, &ops[i]) != QZ_OK) _exit(4);
                    if (write(fd[1], &i, sizeof i) != sizeof i) _exit(5);
                }
                for (;;) pause();
            }
            close(fd[1]);
            struct timespec ts = {0, (long)(1 + tu_next(&r) % 40) * 1000000L};
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
            int status;
            waitpid(pid, &status, 0);
            assert_true(WIFSIGNALED(status));
            uint32_t i;
            size_t acked = 0, flushed = 0;
            while (read(fd[0], &i, sizeof i) == sizeof i) {
                acked = i + 1;
                if (ops[i].kind == OP_FLUSH) flushed = i + 1;
            }
            close(fd[0]);
            qz_open_options o = QZ_OPEN_OPTIONS_INIT;
            o.flags = QZ_OPEN_EXISTING;
            qz_db *db;
            int rc = qz_db_open(dir, &o, &db);
            if (rc == QZ_ENOTFOUND && acked == 0) continue; /* killed before the database existed */
            TU_OK(rc);
            model st;
            read_state(db, ops, NOPS, &st);
            size_t lo = dur == QZ_DURABILITY_SYNC ? acked : flushed;
            size_t hi = acked < NOPS ? acked + 1 : NOPS; /* the one in flight */
            if (matching_prefix(ops, lo, hi, &st) < 0)
                fail_msg("dir %s round %d: recovered state is no prefix in [%zu, %zu]",
                         dur == QZ_DURABILITY_SYNC ? "SYNC" : "BATCHED", round, lo, hi);
            TU_OK(qz_db_close(db));
        }
    }
    tu_rmtree(dir);
    free(dir);
    free(ops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_reopen),
        cmocka_unit_test(test_power_cut),
        cmocka_unit_test(test_commit_failure),
        cmocka_unit_test(test_dir_sigkill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
