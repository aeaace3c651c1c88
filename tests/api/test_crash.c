/*
 * test_crash.c - acknowledged writes survive SIGKILL, on a database directory
 * that grows to tens of MiB over hundreds of kills.
 *
 * One database directory (real LMDB on the disk under /tmp, or under
 * QZ_CRASH_DIR) accumulates for the whole run; it is never removed between
 * rounds and the parent's model of it carries over. It starts with a
 * prefill (qz_db_insert_batch, then close) and grows from there.
 *
 * Each round fork()s a writer child that opens the directory and writes
 * without pause: inserts of absent ids and upserts of present ones (L2,
 * 384 dimensions by default, metadata of 24 bytes .. 32 KiB, so LMDB
 * overflow pages too), deletes, key-value puts (values up to 64 KiB) and
 * deletes, transactions of 2..5 operations, and qz_db_flush() now and then.
 * Before each call it sends an INTENT record through a pipe and after the
 * call returned QZ_OK an ACK record, so the parent knows exactly which
 * writes were acknowledged. The parent SIGKILLs the child a random time
 * (1..300 ms) after the child reported that its open returned; in every
 * QZ_CRASH_OPEN_EVERY-th round (default 8) the kill is aimed inside the
 * child's open instead (a random fraction of the last measured open time,
 * counted from fork()), where the log is replayed into LMDB.
 *
 * After each round a verifier child opens the directory (QZ_OPEN_EXISTING;
 * every third round it _exit()s without closing, so the graph snapshot stays
 * stale and the next open must insert more nodes) and checks, failing the
 * test with a message naming the round on the first problem:
 *
 *  - the database opens: any failure to open (the writer child's open of
 *    the next round included) is a failure, with the library's message;
 *  - qz_db_check() passes (graph invariants, id map, finite vectors);
 *  - every id of the pool is absent or holds the exact vector and metadata
 *    of one (id, version) that was written; every kv key is absent or holds
 *    the exact value of one version; contains(), stats.count and kv_scan()
 *    agree with that;
 *  - the recovered state equals the model after some prefix of the round's
 *    operations in call order (a crash loses a suffix of the log; a
 *    transaction is one record), and that prefix contains every durable
 *    operation: in SYNC mode every acknowledged one, in BATCHED mode every
 *    one acknowledged before the last acknowledged qz_db_flush(). So no
 *    acknowledged write is lost and no deleted id is back;
 *  - searches: a sample of present ids (and every id the round touched) is
 *    found by a search for its own vector (misses are counted, not failed:
 *    churn can leave a node without in-links, see check_searches();
 *    QZ_CRASH_STRICT_SEARCH=1 fails on them); the last vectors of absent
 *    ids and random queries never return an absent id.
 *
 * Rounds alternate between SYNC and BATCHED in blocks of 10, so both modes
 * meet the database small and large. At the end the test prints rounds/s,
 * the directory size and a summary line ("crash summary: ...") that
 * bench/soak_crash.sh reads.
 *
 * Environment (defaults in brackets):
 *   QZ_CRASH_ROUNDS     rounds per durability mode [150]
 *   QZ_CRASH_SECONDS    time budget of the main test: no round starts after
 *                       it (0: none) [170], once QZ_CRASH_MIN_ROUNDS rounds
 *                       per mode are done [100: at least 200 SIGKILL rounds]. The default run takes about
 *                       100 s on 2 cores (3 rounds/s, ~50 MiB at the end).
 *   QZ_CRASH_MAX_DELAY_MS  the kill comes 1..this many ms after the open [300]
 *   QZ_CRASH_HOT, QZ_CRASH_HOT_SHARE  QZ_CRASH_HOT_SHARE percent of the
 *                       operations go to ids (and keys) 0..QZ_CRASH_HOT-1
 *                       [64, 25]
 *   QZ_CRASH_DIM        vector dimensions [384]
 *   QZ_CRASH_POOL       vector ids 0..POOL-1 [12000]
 *   QZ_CRASH_KEYS       kv keys [1000]
 *   QZ_CRASH_PREFILL    ids inserted before the first round [3000]
 *   QZ_CRASH_OPEN_EVERY every n-th round is killed during the open [8]
 *   QZ_CRASH_SEED       seed of the parent's and children's generators
 *   QZ_CRASH_DIR        folder in which the database directory is made [/tmp]
 *   QZ_CRASH_KEEP=1     keep the directory at the end (its path is printed)
 *   QZ_CRASH_SOAK=1     soak mode (bench/soak_crash.sh): run only the main
 *                       test; count failures instead of stopping at the
 *                       first; a directory that no longer opens or fails its
 *                       checks is set aside (the first 3 as DIR.failed-N)
 *                       and the run goes on in a fresh one; after lost or
 *                       foreign state the run goes on from what was
 *                       recovered. Fails at the end if anything was counted.
 *   QZ_CRASH_STRICT_SEARCH=1  own-vector search misses fail the test.
 *
 * A second test runs 20 SYNC rounds at 128 dimensions whose every second
 * verification opens the directory read-only.
 *
 * Known defect this test meets (lib/storage, being fixed): now and then the
 * directory no longer opens after a kill, with QZ_ECORRUPT "lmdb storage:
 * .../data.mdb is N bytes but its meta page uses M pages of 4096 bytes"
 * (data.mdb a few pages shorter than LMDB's last page). Seen about once in
 * 600 rounds, in BATCHED rounds, both in the verifier's open and in the next
 * writer's open after an unclosed verifier whose open had replayed the log.
 *
 * Only the public API is used (quartz.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#define MAX_EFF 8 /* effects of one operation (transactions) */
#define SEARCH_K 10
#define SEARCH_EF 128
#define META_MAX (33 * 1024)
#define VAL_MAX (66 * 1024)
#define ERRCAP 1536
#define NONE UINT64_MAX

/* ---- configuration -------------------------------------------------------- */

typedef struct cfg {
    uint32_t dim;
    size_t pool, nkeys, prefill;
    int rounds;          /* per durability mode */
    int block;           /* consecutive rounds of one mode */
    double budget_s;     /* no round starts after this (0 = no limit) */
    int min_rounds;      /* ... once this many rounds per mode are done */
    int open_every;      /* every n-th round: kill inside the child's open */
    int readonly_every;  /* verify every n-th round read-only (0 = never) */
    int max_delay_ms;    /* kill 1..max_delay_ms after the child's open returned */
    size_t hot;          /* ids 0..hot-1 are written more often */
    unsigned hot_share;  /* percent of operations on them */
    int soak, strict_search, keep;
    const char *parent_dir;
    uint64_t seed;
} cfg;

/* The running configuration; children read it after fork(). */
static cfg C;

static long env_long(const char *name, long def, long min, long max)
{
    const char *e = getenv(name);
    if (!e || !*e) return def;
    char *end;
    errno = 0;
    long v = strtol(e, &end, 10);
    if (errno || *end || v < min || v > max) fail_msg("%s=%s: expected an integer in %ld..%ld", name, e, min, max);
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- deterministic content ------------------------------------------------ */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static void make_vec(float *v, uint64_t id, uint64_t version)
{
    uint64_t s = mix(id * 0x100000001b3ull ^ mix(version));
    for (uint32_t i = 0; i < C.dim; i++) {
        s += 0x9e3779b97f4a7c15ull;
        v[i] = (float)(mix(s) >> 40) * (2.0f / 16777216.0f) - 1.0f;
    }
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t x = mix(seed + i);
        size_t k = n - i < 8 ? n - i : 8;
        memcpy(p + i, &x, k);
    }
}

/* Metadata: "i=<id> v=<version>;" then filler to a length of 24 bytes ..
 * 32 KiB that depends on (id, version): 70% up to 512 bytes, 26% up to
 * 4 KiB, 4% up to 32 KiB. */
static size_t make_meta(unsigned char *buf, uint64_t id, uint64_t version)
{
    uint64_t h = mix(id ^ mix(version ^ 0x5bd1e995ull));
    unsigned c = (unsigned)(h % 100);
    h /= 100;
    size_t len = c < 70 ? 24 + h % 489 : c < 96 ? 513 + h % 3584 : 4097 + h % 28672;
    int n = snprintf((char *)buf, 64, "i=%llu v=%llu;", (unsigned long long)id, (unsigned long long)version);
    if (len < (size_t)n) len = (size_t)n;
    fill(buf + n, len - (size_t)n, mix(id * 31 + version));
    return len;
}

static int parse_tag(const unsigned char *p, size_t len, char a, uint64_t *x, char b, uint64_t *y)
{
    size_t i = 0;
    uint64_t *out[2] = {x, y};
    char tag[2] = {a, b};
    for (int f = 0; f < (b ? 2 : 1); f++) {
        if (f == 1) {
            if (i >= len || p[i] != ' ') return -1;
            i++;
        }
        if (i + 2 > len || p[i] != tag[f] || p[i + 1] != '=') return -1;
        i += 2;
        uint64_t v = 0;
        size_t d = 0;
        while (i < len && p[i] >= '0' && p[i] <= '9' && d < 19) v = v * 10 + (p[i++] - '0'), d++;
        if (!d) return -1;
        *out[f] = v;
    }
    return i < len && p[i] == ';' ? 0 : -1;
}

static size_t make_key(char *buf, size_t cap, uint64_t k) { return (size_t)snprintf(buf, cap, "key/%05u", (unsigned)k); }

/* kv value: "v=<version>;" then filler to 8 bytes .. 64 KiB (80% up to 512,
 * 18% up to 4 KiB, 2% up to 64 KiB). */
static size_t make_val(unsigned char *buf, uint64_t version)
{
    uint64_t h = mix(version ^ 0xabcdef12345ull);
    unsigned c = (unsigned)(h % 100);
    h /= 100;
    size_t len = c < 80 ? 8 + h % 505 : c < 98 ? 513 + h % 3584 : 4097 + h % 61440;
    int n = snprintf((char *)buf, 32, "v=%llu;", (unsigned long long)version);
    if (len < (size_t)n) len = (size_t)n;
    fill(buf + n, len - (size_t)n, mix(version * 131));
    return len;
}

/* ---- the pipe protocol ---------------------------------------------------- */

enum {
    K_READY = 1, /* the child's open returned */
    K_INSERT,
    K_UPSERT,
    K_DELETE,
    K_KVPUT,
    K_KVDEL,
    K_TXN_BEGIN,
    K_TXN_UPSERT,
    K_TXN_DELETE,
    K_TXN_KVPUT,
    K_TXN_KVDEL,
    K_TXN_COMMIT,
    K_FLUSH
};
enum { PH_INTENT = 1, PH_ACK = 2 };

typedef struct wire {
    uint32_t kind, phase;
    uint64_t id, version; /* id: vector id or kv key number */
} wire;

/* ---- children --------------------------------------------------------------- */

static int g_out = -1;
static char *g_child_err; /* MAP_SHARED, ERRCAP bytes: a child's last words */

/* cmocka catches SIGSEGV, SIGBUS, SIGILL and SIGFPE to fail the running
 * test; a fork()ed child must not do that (it would go on running the rest
 * of the suite): it dies of the signal, and the parent reports it. */
static void child_default_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
}

static void send_rec(uint32_t kind, uint32_t phase, uint64_t id, uint64_t version)
{
    wire w = {kind, phase, id, version};
    const char *p = (const char *)&w;
    size_t left = sizeof w;
    while (left) {
        ssize_t n = write(g_out, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(5);
        p += n;
        left -= (size_t)n;
    }
}

static void child_fail(const char *what, int rc)
{
    snprintf(g_child_err, ERRCAP, "%s -> %d (%s): %s", what, rc, qz_strerror(rc), qz_errmsg());
    _exit(3);
}

#define C_OK(expr)                                                                                                 \
    do {                                                                                                           \
        int c_rc_ = (expr);                                                                                        \
        if (c_rc_ != QZ_OK) child_fail(#expr, c_rc_);                                                              \
    } while (0)

static qz_open_options child_options(uint32_t durability)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = C.dim;
    o.metric = QZ_METRIC_L2;
    o.M = 8;
    o.ef_construction = 64;
    o.durability = durability;
    o.threads = 2;
    return o;
}

static int kv_present(qz_db *db, uint64_t k)
{
    char key[16];
    size_t kl = make_key(key, sizeof key, k), vl;
    int rc = qz_kv_get(db, key, kl, NULL, 0, &vl);
    if (rc == QZ_ENOTFOUND) return 0;
    if (rc == QZ_OK || rc == QZ_ETOOSMALL) return 1;
    child_fail("qz_kv_get", rc);
    return 0;
}

static void child_main(const char *path, uint32_t durability, uint64_t seed, uint64_t version)
{
    tu_rng r = {seed};
    qz_open_options o = child_options(durability);
    qz_db *db = NULL;
    C_OK(qz_db_open(path, &o, &db));
    send_rec(K_READY, PH_ACK, 0, 0);
    float *v = malloc(C.dim * sizeof *v);
    unsigned char *meta = malloc(META_MAX), *val = malloc(VAL_MAX);
    char key[16];
    if (!v || !meta || !val) _exit(6);
    uint64_t next_flush = 20 + tu_next(&r) % 100;
    for (uint64_t n = 0;; n++) {
        unsigned pick = (unsigned)(tu_next(&r) % 100);
        /* C.hot_share % of the operations go to the hot ids 0..C.hot-1 (and
         * so the same number of keys), which are rewritten and deleted many
         * times between two log applies. */
        uint64_t id = tu_next(&r) % (tu_next(&r) % 100 < C.hot_share && C.hot ? C.hot : C.pool);
        int present = qz_db_contains(db, id);
        if (present < 0) child_fail("qz_db_contains", present);
        if (durability == QZ_DURABILITY_BATCHED ? n == next_flush : pick == 99) {
            send_rec(K_FLUSH, PH_INTENT, 0, 0);
            C_OK(qz_db_flush(db));
            send_rec(K_FLUSH, PH_ACK, 0, 0);
            next_flush = n + 20 + tu_next(&r) % 100;
        } else if (pick < 50) { /* write an id: insert when absent, upsert when present */
            uint64_t ver = version++;
            make_vec(v, id, ver);
            size_t ml = make_meta(meta, id, ver);
            uint32_t kind = present ? K_UPSERT : K_INSERT;
            send_rec(kind, PH_INTENT, id, ver);
            C_OK(present ? qz_db_upsert(db, id, v, C.dim, meta, ml) : qz_db_insert(db, id, v, C.dim, meta, ml));
            send_rec(kind, PH_ACK, id, ver);
        } else if (pick < 62) { /* delete a present id */
            if (!present) continue;
            send_rec(K_DELETE, PH_INTENT, id, 0);
            C_OK(qz_db_delete(db, id));
            send_rec(K_DELETE, PH_ACK, id, 0);
        } else if (pick < 78) {
            uint64_t k = id % C.nkeys, ver = version++;
            size_t kl = make_key(key, sizeof key, k), vl = make_val(val, ver);
            send_rec(K_KVPUT, PH_INTENT, k, ver);
            C_OK(qz_kv_put(db, key, kl, val, vl));
            send_rec(K_KVPUT, PH_ACK, k, ver);
        } else if (pick < 83) {
            uint64_t k = id % C.nkeys;
            if (!kv_present(db, k)) continue;
            size_t kl = make_key(key, sizeof key, k);
            send_rec(K_KVDEL, PH_INTENT, k, 0);
            C_OK(qz_kv_delete(db, key, kl));
            send_rec(K_KVDEL, PH_ACK, k, 0);
        } else { /* a transaction of 2..5 operations on distinct ids / keys */
            qz_txn *t = NULL;
            C_OK(qz_txn_begin(db, &t));
            send_rec(K_TXN_BEGIN, PH_INTENT, 0, 0);
            unsigned nops = 2 + (unsigned)(tu_next(&r) % 4);
            uint64_t used[8];
            unsigned nused = 0;
            int kv_done = 0;
            for (unsigned i = 0; i < nops; i++) {
                uint64_t tid = tu_next(&r) % C.pool;
                int dup = 0;
                for (unsigned j = 0; j < nused; j++) dup |= used[j] == tid;
                if (dup) continue;
                used[nused++] = tid;
                int tp = qz_db_contains(db, tid);
                if (tp < 0) child_fail("qz_db_contains", tp);
                unsigned what = (unsigned)(tu_next(&r) % 10);
                if (what < 2 && !kv_done) {
                    kv_done = 1;
                    uint64_t k = tid % C.nkeys;
                    size_t kl = make_key(key, sizeof key, k);
                    if (what == 1 && kv_present(db, k)) {
                        send_rec(K_TXN_KVDEL, PH_INTENT, k, 0);
                        C_OK(qz_txn_kv_delete(t, key, kl));
                    } else {
                        uint64_t ver = version++;
                        size_t vl = make_val(val, ver);
                        send_rec(K_TXN_KVPUT, PH_INTENT, k, ver);
                        C_OK(qz_txn_kv_put(t, key, kl, val, vl));
                    }
                } else if (what < 4 && tp) {
                    send_rec(K_TXN_DELETE, PH_INTENT, tid, 0);
                    C_OK(qz_txn_delete(t, tid));
                } else {
                    uint64_t ver = version++;
                    make_vec(v, tid, ver);
                    size_t ml = make_meta(meta, tid, ver);
                    send_rec(K_TXN_UPSERT, PH_INTENT, tid, ver);
                    C_OK(qz_txn_upsert(t, tid, v, C.dim, meta, ml));
                }
            }
            send_rec(K_TXN_COMMIT, PH_INTENT, 0, 0);
            C_OK(qz_txn_commit(t));
            send_rec(K_TXN_COMMIT, PH_ACK, 0, 0);
        }
    }
}

/* ---- the parent's model ----------------------------------------------------- */

/* State of one slot: slots 0..pool-1 are vector ids, pool..pool+nkeys-1
 * kv keys. */
typedef struct slot {
    uint32_t present, pad;
    uint64_t version;
} slot;

typedef struct effect {
    size_t slot;
    uint32_t present;
    uint64_t version;
} effect;

typedef struct op {
    effect e[MAX_EFF];
    int n, attempted, acked;
    uint32_t kind;
} op;

/* Failure classes, worst first. */
enum { F_NONE = 0, F_OPEN, F_CHECK, F_LOST, F_FOREIGN, F_CHILD, F_NCLASS };
static const char *const class_name[F_NCLASS] = {"ok", "database does not open", "check failed",
                                                 "acknowledged state lost", "foreign state present",
                                                 "writer child failed"};

typedef struct totals {
    size_t rounds, kills_in_open, ops_acked, inserts, upserts, deletes, kv_puts, kv_dels, txns, flushes;
    size_t inflight, inflight_applied, lost_unflushed_acked;
    size_t searches, misses;
    double secs;
} totals;

static int same(const slot *a, const slot *b) { return a->present == b->present && (!a->present || a->version == b->version); }

static size_t nslots(void) { return C.pool + C.nkeys; }

/* Parse the child's records into operations. Returns the number of
 * operations, or -1 with a message in err for a record out of protocol. */
static long parse_ops(const wire *w, size_t nw, op *ops, size_t *flush_point, int *ready, size_t *flushes, char *err,
                      size_t errcap)
{
    size_t n = 0;
    long cur = -1;
    *flush_point = 0;
    *ready = 0;
    for (size_t i = 0; i < nw; i++) {
        const wire *x = &w[i];
        int kv = x->kind == K_KVPUT || x->kind == K_KVDEL || x->kind == K_TXN_KVPUT || x->kind == K_TXN_KVDEL;
        if (x->kind != K_READY && x->kind != K_FLUSH && x->kind != K_TXN_BEGIN && x->kind != K_TXN_COMMIT &&
            x->id >= (kv ? C.nkeys : C.pool)) {
            snprintf(err, errcap, "record %zu: id %llu out of range", i, (unsigned long long)x->id);
            return -1;
        }
        size_t sl = kv ? C.pool + x->id : x->id;
        switch (x->kind) {
        case K_READY: *ready = 1; break;
        case K_INSERT:
        case K_UPSERT:
        case K_DELETE:
        case K_KVPUT:
        case K_KVDEL:
            if (x->phase == PH_INTENT) {
                op *o = &ops[n++];
                memset(o, 0, sizeof *o);
                o->kind = x->kind;
                o->attempted = 1;
                o->n = 1;
                o->e[0] = (effect){sl, x->kind != K_DELETE && x->kind != K_KVDEL, x->version};
            } else if (n > 0 && ops[n - 1].kind == x->kind && ops[n - 1].e[0].slot == sl) {
                ops[n - 1].acked = 1;
            } else {
                snprintf(err, errcap, "record %zu: ACK without its INTENT", i);
                return -1;
            }
            break;
        case K_TXN_BEGIN:
            cur = (long)n;
            memset(&ops[n], 0, sizeof ops[n]);
            ops[n++].kind = K_TXN_BEGIN;
            break;
        case K_TXN_UPSERT:
        case K_TXN_DELETE:
        case K_TXN_KVPUT:
        case K_TXN_KVDEL:
            if (cur < 0 || ops[cur].n >= MAX_EFF) {
                snprintf(err, errcap, "record %zu: transaction operation outside a transaction", i);
                return -1;
            }
            ops[cur].e[ops[cur].n++] = (effect){sl, x->kind == K_TXN_UPSERT || x->kind == K_TXN_KVPUT, x->version};
            break;
        case K_TXN_COMMIT:
            if (cur < 0) {
                snprintf(err, errcap, "record %zu: commit outside a transaction", i);
                return -1;
            }
            if (x->phase == PH_INTENT) ops[cur].attempted = 1;
            else ops[cur].acked = 1, cur = -1;
            break;
        case K_FLUSH:
            if (x->phase == PH_ACK) *flush_point = n, ++*flushes;
            break;
        default: snprintf(err, errcap, "record %zu: bad kind %u", i, x->kind); return -1;
        }
    }
    /* A transaction whose commit was never called cannot be anywhere. */
    if (n && !ops[n - 1].attempted) n--;
    for (size_t i = 0; i + 1 < n; i++)
        if (!ops[i].acked) {
            snprintf(err, errcap, "operation %zu of %zu was not acknowledged but the child went on", i, n);
            return -1;
        }
    return (long)n;
}

static void apply_op(slot *s, const op *o)
{
    for (int i = 0; i < o->n; i++) {
        slot *sl = &s[o->e[i].slot];
        sl->present = o->e[i].present;
        if (o->e[i].present) sl->version = o->e[i].version;
    }
}

static void describe_slot(char *out, size_t cap, size_t s)
{
    if (s < C.pool) snprintf(out, cap, "id %zu", s);
    else snprintf(out, cap, "key %zu", s - C.pool);
}

typedef struct mismatch {
    size_t lost, back, order; /* durable state missing; absent state present; mixed prefixes */
    char text[ERRCAP];
} mismatch;

/* Find the prefix of ops that the recovered state equals, at least
 * `durable` long. Returns its length, or -1 (mm explains). m: scratch of
 * nslots() slots. */
static long match_prefix(const slot *model, const op *ops, size_t nops, size_t durable, const slot *got, slot *m,
                         mismatch *mm)
{
    size_t ns = nslots();
    memcpy(m, model, ns * sizeof *m);
    for (size_t i = 0; i < durable; i++) apply_op(m, &ops[i]);
    long diff = 0;
    for (size_t i = 0; i < ns; i++) diff += !same(&m[i], &got[i]);
    long found = diff == 0 ? (long)durable : -1;
    for (size_t p = durable; p < nops; p++) {
        const op *o = &ops[p];
        for (int i = 0; i < o->n; i++) {
            const effect *e = &o->e[i];
            diff -= !same(&m[e->slot], &got[e->slot]);
            m[e->slot].present = e->present;
            if (e->present) m[e->slot].version = e->version;
            diff += !same(&m[e->slot], &got[e->slot]);
        }
        if (diff == 0) found = (long)(p + 1);
    }
    if (found >= 0) return found;
    /* Explain against the durable prefix. */
    memcpy(m, model, ns * sizeof *m);
    for (size_t i = 0; i < durable; i++) apply_op(m, &ops[i]);
    memset(mm, 0, sizeof *mm);
    size_t len = 0;
    int shown = 0;
    for (size_t s = 0; s < ns; s++) {
        if (same(&m[s], &got[s])) continue;
        int later = 0; /* a later (not durable) operation wrote exactly what was recovered */
        for (size_t p = durable; p < nops && !later; p++)
            for (int i = 0; i < ops[p].n; i++)
                if (ops[p].e[i].slot == s) {
                    slot x = {ops[p].e[i].present, 0, ops[p].e[i].version};
                    later |= same(&x, &got[s]);
                }
        const char *what;
        if (later) mm->order++, what = "recovered a later operation's write out of order";
        else if (m[s].present) mm->lost++, what = "acknowledged durable state lost";
        else mm->back++, what = "present although deleted (or never written)";
        if (shown < 8 && len < sizeof mm->text - 200) {
            char name[32];
            describe_slot(name, sizeof name, s);
            len += (size_t)snprintf(mm->text + len, sizeof mm->text - len, "\n    %s: model %s v%llu, recovered %s v%llu: %s",
                                    name, m[s].present ? "present" : "absent", (unsigned long long)m[s].version,
                                    got[s].present ? "present" : "absent", (unsigned long long)got[s].version, what);
            shown++;
        }
    }
    return -1;
}

/* ---- verification (in a forked verifier child) ------------------------------ */

/* What a verification found. Plain data in shared memory, filled by the
 * verifier child. */
typedef struct verdict {
    int cls, opened;
    char err[ERRCAP];
    double open_s;
    size_t searches, misses;
    uint64_t first_miss;
    slot got[]; /* nslots() */
} verdict;

#define VFAIL(c, ...)                                                                                              \
    do {                                                                                                           \
        vd->cls = (c);                                                                                             \
        snprintf(vd->err, sizeof vd->err, __VA_ARGS__);                                                            \
        return -1;                                                                                                 \
    } while (0)
#define VOK(expr)                                                                                                  \
    do {                                                                                                           \
        int v_rc_ = (expr);                                                                                        \
        if (v_rc_ != QZ_OK) VFAIL(F_CHECK, "%s -> %d (%s): %s", #expr, v_rc_, qz_strerror(v_rc_), qz_errmsg());    \
    } while (0)

static int count_keys(const void *k, size_t kl, const void *v, size_t vl, void *u)
{
    (void)k, (void)kl, (void)v, (void)vl;
    ++*(size_t *)u;
    return 0;
}

/* Read what the reopened database holds; checks that each value is exactly
 * one that was written (vector and metadata of one version, or kv value). */
static int read_state(qz_db *db, verdict *vd)
{
    slot *got = vd->got;
    size_t live = 0, live_kv = 0;
    float *v = malloc(C.dim * sizeof *v), *want = malloc(C.dim * sizeof *want);
    unsigned char *meta = malloc(META_MAX), *wm = malloc(META_MAX);
    int rc = 0;
    for (uint64_t id = 0; id < C.pool && rc == 0; id++) {
        size_t ml = 0;
        int g = qz_db_get(db, id, v, C.dim, meta, META_MAX, &ml);
        int c = qz_db_contains(db, id);
        if (g == QZ_ENOTFOUND) {
            got[id] = (slot){0, 0, 0};
            if (c != 0) vd->cls = F_CHECK, snprintf(vd->err, sizeof vd->err, "id %llu: get says absent, contains %d", (unsigned long long)id, c), rc = -1;
            continue;
        }
        uint64_t mid, ver;
        if (g != QZ_OK) {
            vd->cls = F_CHECK;
            snprintf(vd->err, sizeof vd->err, "qz_db_get(%llu) -> %d (%s): %s", (unsigned long long)id, g,
                     qz_strerror(g), qz_errmsg());
            rc = -1;
        } else if (parse_tag(meta, ml, 'i', &mid, 'v', &ver) < 0 || mid != id) {
            vd->cls = F_CHECK;
            snprintf(vd->err, sizeof vd->err, "id %llu: metadata (%zu bytes, \"%.40s\") was never written for it",
                     (unsigned long long)id, ml, (const char *)meta);
            rc = -1;
        } else {
            make_vec(want, id, ver);
            size_t wl = make_meta(wm, id, ver);
            if (ml != wl || memcmp(meta, wm, wl) || memcmp(v, want, C.dim * sizeof *v)) {
                vd->cls = F_CHECK;
                snprintf(vd->err, sizeof vd->err, "id %llu: vector or metadata (%zu bytes, expected %zu) differ from version %llu that was written",
                         (unsigned long long)id, ml, wl, (unsigned long long)ver);
                rc = -1;
            } else if (c != 1) {
                vd->cls = F_CHECK;
                snprintf(vd->err, sizeof vd->err, "id %llu: get finds it, contains says %d", (unsigned long long)id, c);
                rc = -1;
            } else {
                got[id] = (slot){1, 0, ver};
                live++;
            }
        }
    }
    free(v);
    free(want);
    free(wm);
    if (rc == 0) {
        qz_stats st = {.struct_size = sizeof st};
        int s = qz_db_stats(db, &st);
        if (s) vd->cls = F_CHECK, snprintf(vd->err, sizeof vd->err, "qz_db_stats -> %d (%s): %s", s, qz_strerror(s), qz_errmsg()), rc = -1;
        else if (st.count != live)
            vd->cls = F_CHECK, snprintf(vd->err, sizeof vd->err, "stats count %llu, but %zu pool ids are present", (unsigned long long)st.count, live), rc = -1;
    }
    unsigned char *val = meta, *wv = malloc(VAL_MAX);
    val = realloc(val, VAL_MAX);
    for (uint64_t k = 0; k < C.nkeys && rc == 0; k++) {
        char key[16];
        size_t kl = make_key(key, sizeof key, k), vl = 0;
        int g = qz_kv_get(db, key, kl, val, VAL_MAX, &vl);
        slot *sl = &got[C.pool + k];
        if (g == QZ_ENOTFOUND) {
            *sl = (slot){0, 0, 0};
            continue;
        }
        uint64_t ver;
        if (g != QZ_OK) {
            vd->cls = F_CHECK;
            snprintf(vd->err, sizeof vd->err, "qz_kv_get(%s) -> %d (%s): %s", key, g, qz_strerror(g), qz_errmsg());
            rc = -1;
        } else if (parse_tag(val, vl, 'v', &ver, 0, NULL) < 0) {
            vd->cls = F_CHECK;
            snprintf(vd->err, sizeof vd->err, "key %s: value (%zu bytes) was never written", key, vl);
            rc = -1;
        } else {
            size_t wl = make_val(wv, ver);
            if (wl != vl || memcmp(val, wv, vl)) {
                vd->cls = F_CHECK;
                snprintf(vd->err, sizeof vd->err, "key %s: value (%zu bytes, expected %zu) differs from version %llu", key, vl, wl, (unsigned long long)ver);
                rc = -1;
            } else {
                *sl = (slot){1, 0, ver};
                live_kv++;
            }
        }
    }
    free(val);
    free(wv);
    if (rc) return rc;
    size_t scanned = 0;
    VOK(qz_kv_scan(db, NULL, 0, count_keys, &scanned));
    if (scanned != live_kv)
        VFAIL(F_CHECK, "kv scan finds %zu keys, but %zu of the model's keys are present", scanned, live_kv);
    return 0;
}

static int search_check(qz_db *db, const float *q, uint32_t ef, uint64_t own, int *hit, verdict *vd)
{
    qz_search_params sp = QZ_SEARCH_PARAMS_INIT;
    sp.ef = ef;
    uint64_t ids[SEARCH_K];
    float d[SEARCH_K];
    size_t n;
    VOK(qz_db_search(db, q, C.dim, SEARCH_K, &sp, ids, d, &n));
    vd->searches++;
    if (hit) *hit = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= C.pool || !vd->got[ids[i]].present)
            VFAIL(F_CHECK, "a search (for the vector of id %lld) returned id %llu, which is not present",
                  own == NONE ? -1LL : (long long)own, (unsigned long long)ids[i]);
        if (hit && ids[i] == own && d[i] == 0.0f) *hit = 1;
    }
    return 0;
}

/* Searches. A sample of present ids, and every id the round touched, must be
 * found by a search for their own vector; no search may return an absent
 * id (last vectors of absent touched ids, random queries).
 *
 * A known limitation makes the first half fail now and then, so misses are
 * counted and printed and fail only with QZ_CRASH_STRICT_SEARCH=1: churn of
 * inserts, upserts and deletes can leave a single node with no in-links,
 * which no search reaches, also in memory without any crash (hnswlib shows
 * the same effect). Every present id is still checked by get(), contains()
 * and the live count in read_state(), and the second half (no absent id
 * returned) and qz_db_check() always fail the test. */
static int check_searches(qz_db *db, const uint64_t *last_version, const uint64_t *touched, size_t ntouched,
                          uint64_t seed, verdict *vd)
{
    tu_rng r = {seed};
    float *v = malloc(C.dim * sizeof *v);
    uint32_t full_ef = (uint32_t)(2 * C.pool + 100 < QZ_MAX_EF ? 2 * C.pool + 100 : QZ_MAX_EF);
    int rc = 0, hit;
    for (size_t i = 0; i < 40 + ntouched && rc == 0; i++) {
        uint64_t id = i < ntouched ? touched[i] : tu_next(&r) % C.pool;
        const slot *g = &vd->got[id];
        if (!g->present && last_version[id] == NONE) continue;
        make_vec(v, id, g->present ? g->version : last_version[id]);
        if ((rc = search_check(db, v, SEARCH_EF, g->present ? id : NONE, &hit, vd)) < 0 || !g->present || hit) continue;
        /* Missed at ef 128: try once more with ef above the pool size. */
        if ((rc = search_check(db, v, full_ef, id, &hit, vd)) < 0 || hit) continue;
        if (!vd->misses++) vd->first_miss = id;
    }
    for (int q = 0; q < 10 && rc == 0; q++) {
        for (uint32_t i = 0; i < C.dim; i++) v[i] = (float)(tu_uniform(&r) * 2 - 1);
        rc = search_check(db, v, SEARCH_EF, NONE, NULL, vd);
    }
    free(v);
    if (rc == 0 && vd->misses && C.strict_search)
        VFAIL(F_CHECK, "%zu present ids are not found by a search for their own vector (ef %u), first id %llu",
              vd->misses, full_ef, (unsigned long long)vd->first_miss);
    return rc;
}

enum { VERIFY_CLOSE, VERIFY_NOCLOSE, VERIFY_READONLY };

/* Open, check, read, search; close unless `how` is VERIFY_NOCLOSE. */
static int verify(const char *path, int how, const uint64_t *last_version, const uint64_t *touched, size_t ntouched,
                  uint64_t seed, verdict *vd)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.flags = how == VERIFY_READONLY ? QZ_OPEN_READONLY : QZ_OPEN_EXISTING;
    qz_db *db = NULL;
    double t = now_s();
    int rc = qz_db_open(path, &o, &db);
    vd->open_s = now_s() - t;
    if (rc) VFAIL(F_OPEN, "qz_db_open(%s) -> %d (%s): %s", how == VERIFY_READONLY ? "read-only" : "QZ_OPEN_EXISTING", rc,
                  qz_strerror(rc), qz_errmsg());
    vd->opened = 1;
    rc = qz_db_check(db);
    if (rc) VFAIL(F_CHECK, "qz_db_check -> %d (%s): %s", rc, qz_strerror(rc), qz_errmsg());
    if (read_state(db, vd) < 0 || check_searches(db, last_version, touched, ntouched, seed, vd) < 0) return -1;
    if (how != VERIFY_NOCLOSE) VOK(qz_db_close(db));
    return 0;
}

/* ---- rounds ------------------------------------------------------------------- */

typedef struct fails {
    size_t unopenable, check, lost_sync, lost_batched, back, order, child, restarts;
} fails;

typedef struct run {
    char *tmp, *path;
    slot *model, *scratch;
    uint64_t *last_version; /* last version written to each id (searched for after deletes) */
    uint64_t *touched;
    uint64_t version;       /* next version to hand out */
    tu_rng rng;
    op *ops;
    size_t ops_cap;
    verdict *vd; /* MAP_SHARED: verifier children write it */
    size_t vd_size;
    totals tot[2]; /* SYNC, BATCHED */
    fails f;
    double open_est, open_sum, open_max;
    uint64_t max_bytes; /* largest directory size seen (every 10 rounds and at the end) */
    char failed_at[600]; /* soak: "58 open, 1203 lost, ..." */
    size_t open_n;
    size_t last_misses;
    int round; /* rounds so far, over both modes */
} run;

static int wait_status(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
    return st;
}

static size_t read_some(int fd, unsigned char **buf, size_t *len, size_t *cap)
{
    if (*cap - *len < 65536) {
        *cap = *cap * 2 + 65536;
        *buf = realloc(*buf, *cap);
        assert_non_null(*buf);
    }
    ssize_t n = read(fd, *buf + *len, *cap - *len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
    if (n < 0) fail_msg("read from the child's pipe: %s", strerror(errno));
    *len += (size_t)n;
    return (size_t)n;
}

static uint64_t dir_bytes(const char *path, uint64_t *mdb, uint64_t *log)
{
    uint64_t total = 0;
    if (mdb) *mdb = 0;
    if (log) *log = 0;
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        total += (uint64_t)st.st_size;
        if (mdb && strcmp(e->d_name, "data.mdb") == 0) *mdb = (uint64_t)st.st_size;
        if (log && strcmp(e->d_name, "quartz.log") == 0) *log = (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

/* Create the database and insert C.prefill ids (versions from R->version)
 * in a child, then set the model to them. */
static void prefill(run *R)
{
    size_t n = C.prefill;
    uint64_t base = R->version;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_default_signals();
        qz_open_options o = child_options(QZ_DURABILITY_BATCHED);
        qz_db *db = NULL;
        C_OK(qz_db_open(R->path, &o, &db));
        size_t chunk = 1000;
        float *vecs = malloc(chunk * C.dim * sizeof *vecs);
        unsigned char *metas = malloc(chunk * (size_t)META_MAX);
        const void **mp = malloc(chunk * sizeof *mp);
        size_t *ml = malloc(chunk * sizeof *ml);
        uint64_t *ids = malloc(chunk * sizeof *ids);
        if (!vecs || !metas || !mp || !ml || !ids) _exit(6);
        for (size_t at = 0; at < n; at += chunk) {
            size_t m = n - at < chunk ? n - at : chunk;
            for (size_t i = 0; i < m; i++) {
                ids[i] = at + i;
                make_vec(vecs + i * C.dim, ids[i], base + ids[i]);
                mp[i] = metas + i * (size_t)META_MAX;
                ml[i] = make_meta(metas + i * (size_t)META_MAX, ids[i], base + ids[i]);
            }
            C_OK(qz_db_insert_batch(db, m, ids, vecs, C.dim, mp, ml, 0));
        }
        C_OK(qz_db_close(db));
        _exit(0);
    }
    int st = wait_status(pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("prefill of %zu ids failed (status 0x%x): %s", n, st, g_child_err);
    for (size_t i = 0; i < n; i++) {
        R->model[i] = (slot){1, 0, base + i};
        R->last_version[i] = base + i;
    }
    R->version = base + n;
}

static void fresh_dir(run *R)
{
    size_t ns = nslots();
    memset(R->model, 0, ns * sizeof *R->model);
    for (size_t i = 0; i < C.pool; i++) R->last_version[i] = NONE;
    if (C.prefill) prefill(R);
}

/* Soak mode: keep a broken directory for post-mortem (the first 3) and go on in a fresh one. */
static void set_aside(run *R)
{
    char to[4200];
    R->f.restarts++;
    if (R->f.restarts <= 3) {
        snprintf(to, sizeof to, "%s.failed-%zu", R->path, R->f.restarts);
        if (rename(R->path, to) == 0) {
            print_message("  directory kept as %s\n", to);
            C.keep = 1; /* keep the temporary folder that holds it */
        } else {
            tu_rmtree(R->path);
        }
    } else {
        tu_rmtree(R->path);
    }
    fresh_dir(R);
}

/* One round. Returns the failure class (F_NONE when all is well) with a
 * message in why. */
static int one_round(run *R, uint32_t durability, char *why, size_t whycap)
{
    int round = R->round++;
    int mi = durability == QZ_DURABILITY_SYNC ? 0 : 1;
    totals *T = &R->tot[mi];
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    uint64_t base = R->version;
    memset(g_child_err, 0, ERRCAP);
    fflush(NULL);
    double t0 = now_s();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_default_signals();
        close(fds[0]);
        g_out = fds[1];
        child_main(R->path, durability, C.seed * 131 + (uint64_t)round * 7919 + durability, base);
        _exit(4);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    int in_open = C.open_every && round % C.open_every == C.open_every / 2;
    double delay = (1 + (double)(tu_next(&R->rng) % (uint64_t)C.max_delay_ms)) * 1e-3;
    double deadline = in_open ? t0 + (0.05 + 0.95 * tu_uniform(&R->rng)) * R->open_est : 0, t_ready = 0;
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    int eof = 0;
    while (!eof) {
        double t = now_s();
        if (deadline && t >= deadline) break;
        int wait_ms = deadline ? (int)((deadline - t) * 1000) + 1 : 5000;
        struct pollfd pf = {fds[0], POLLIN, 0};
        int pr = poll(&pf, 1, wait_ms);
        if (pr < 0 && errno != EINTR) fail_msg("poll: %s", strerror(errno));
        if (pr > 0) eof = read_some(fds[0], &buf, &len, &cap) == 0;
        if (!t_ready && len >= sizeof(wire)) {
            t_ready = now_s();
            if (!deadline) deadline = t_ready + delay; /* READY arrived: start the clock */
        }
        if (!t_ready && now_s() - t0 > 120) fail_msg("round %d: the child did not finish opening within 120 s", round);
    }
    kill(pid, SIGKILL);
    int st = wait_status(pid);
    fcntl(fds[0], F_SETFL, 0);
    while (read_some(fds[0], &buf, &len, &cap) > 0) {
    }
    close(fds[0]);
    if (t_ready) {
        double o = t_ready - t0;
        R->open_est = R->open_est ? 0.7 * R->open_est + 0.3 * o : o;
        R->open_sum += o;
        R->open_n++;
        if (o > R->open_max) R->open_max = o;
    }

    const char *mode = durability == QZ_DURABILITY_SYNC ? "SYNC" : "BATCHED";
    char ctx[200];
    int cls = F_NONE;
    size_t nw = len / sizeof(wire);
    wire *w = (wire *)buf;
    if (nw + 1 > R->ops_cap) {
        R->ops_cap = (nw + 1) * 2;
        R->ops = realloc(R->ops, R->ops_cap * sizeof *R->ops);
        assert_non_null(R->ops);
    }
    size_t flush_point, flushes = 0;
    int ready;
    char perr[256];
    long np = parse_ops(w, nw, R->ops, &flush_point, &ready, &flushes, perr, sizeof perr);
    if (np < 0) fail_msg("round %d: the child's records are out of protocol: %s", round, perr);
    size_t nops = (size_t)np;
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
        /* The child ended on its own: a failed call (exit 3) or a crash. */
        snprintf(ctx, sizeof ctx, "%s round %d", mode, round);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
            snprintf(why, whycap, "%s: the writer child's %s failed: %s", ctx, ready ? "write" : "open", g_child_err);
        else
            snprintf(why, whycap, "%s: the writer child ended on its own (status 0x%x)%s%s", ctx, st,
                     g_child_err[0] ? ": " : "", g_child_err);
        cls = ready ? F_CHILD : F_OPEN;
        if (!ready) {
            free(buf);
            T->rounds++;
            return cls; /* nothing was written; the next open will tell more */
        }
    }
    size_t acked = 0;
    for (size_t i = 0; i < nops; i++) {
        const op *o = &R->ops[i];
        if (!o->acked) continue;
        acked = i + 1;
        T->ops_acked++;
        switch (o->kind) {
        case K_INSERT: T->inserts++; break;
        case K_UPSERT: T->upserts++; break;
        case K_DELETE: T->deletes++; break;
        case K_KVPUT: T->kv_puts++; break;
        case K_KVDEL: T->kv_dels++; break;
        default: T->txns++; break;
        }
    }
    T->flushes += flushes;
    size_t durable = durability == QZ_DURABILITY_SYNC ? acked : flush_point;
    if (!ready) T->kills_in_open++;
    size_t ntouched = 0;
    for (size_t i = 0; i < nops; i++)
        for (int e = 0; e < R->ops[i].n; e++) {
            const effect *ef = &R->ops[i].e[e];
            if (ef->slot >= C.pool) continue;
            if (ef->present) R->last_version[ef->slot] = ef->version;
            if (ntouched < 64) R->touched[ntouched++] = ef->slot;
        }
    for (size_t i = 0; i < nw; i++)
        if (w[i].version >= R->version) R->version = w[i].version + 1;

    /* Verify in a forked child: it closes, or leaves without closing (so the
     * graph snapshot stays stale), or opens read-only. */
    int how = C.readonly_every ? (round % C.readonly_every == C.readonly_every - 1 ? VERIFY_READONLY : VERIFY_CLOSE)
                               : (round % 3 == 2 ? VERIFY_NOCLOSE : VERIFY_CLOSE);
    uint64_t seed = tu_next(&R->rng);
    verdict *vd = R->vd;
    memset(vd, 0, R->vd_size);
    fflush(NULL);
    pid_t vp = fork();
    assert_true(vp >= 0);
    if (vp == 0) {
        child_default_signals();
        verify(R->path, how, R->last_version, R->touched, ntouched, seed, vd);
        _exit(0); /* VERIFY_NOCLOSE: without qz_db_close() */
    }
    st = wait_status(vp);
    snprintf(ctx, sizeof ctx, "%s round %d (%zu ops, %zu acked, durable %zu, %s%s open)", mode, round, nops, acked,
             durable, ready ? "" : "killed during its open, ",
             how == VERIFY_READONLY ? "read-only" : how == VERIFY_NOCLOSE ? "unclosed" : "writable");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || vd->cls) {
        /* A verification failure outranks a writer failure: the directory is suspect. */
        size_t l = cls ? strlen(why) : 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            snprintf(why + l, whycap - l, "%s%s: the verifier died %s (status 0x%x, signal %d)", l ? "; then " : "",
                     ctx, vd->opened ? "after its open" : "in its open", st, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        else
            snprintf(why + l, whycap - l, "%s%s: %s", l ? "; then " : "", ctx, vd->err);
        free(buf);
        T->rounds++;
        return vd->cls ? vd->cls : vd->opened ? F_CHECK : F_OPEN;
    }
    mismatch mm;
    long p = match_prefix(R->model, R->ops, nops, durable, vd->got, R->scratch, &mm);
    if (p < 0) {
        R->f.order += mm.order;
        R->f.back += mm.back;
        if (durability == QZ_DURABILITY_SYNC) R->f.lost_sync += mm.lost;
        else R->f.lost_batched += mm.lost;
        if (!cls) {
            snprintf(why, whycap,
                     "%s: the recovered state is no prefix of the %zu operations that includes the %zu durable ones: "
                     "%zu durable states lost, %zu absent ids/keys present, %zu out of order:%s",
                     ctx, nops, durable, mm.lost, mm.back, mm.order, mm.text);
            cls = mm.lost ? F_LOST : F_FOREIGN;
        }
        p = (long)durable; /* for the counters below */
    }
    if (nops > acked) {
        T->inflight++;
        T->inflight_applied += (size_t)p == nops;
    }
    if ((size_t)p < acked) T->lost_unflushed_acked += acked - (size_t)p;
    T->searches += vd->searches;
    if (vd->misses != R->last_misses && vd->misses)
        print_message("%s: KNOWN LIMITATION: %zu present ids not found by a search for their own vector (first %llu)\n",
                      ctx, vd->misses, (unsigned long long)vd->first_miss);
    R->last_misses = vd->misses;
    T->misses += vd->misses;
    memcpy(R->model, vd->got, nslots() * sizeof *R->model); /* == the model after prefix p, or what is there */
    free(buf);
    T->rounds++;
    return cls;
}

static void print_mode(const run *R, int mi)
{
    const totals *t = &R->tot[mi];
    print_message("%s: %zu rounds (%zu killed during open) in %.1f s; acknowledged %zu ops: %zu inserts, %zu upserts, "
                  "%zu deletes, %zu kv puts, %zu kv deletes, %zu txns, %zu flushes; in flight at the kill: %zu "
                  "(%zu of them recovered); acknowledged after the last flush and lost: %zu; %zu searches (%zu "
                  "own-vector misses)\n",
                  mi ? "BATCHED" : "SYNC", t->rounds, t->kills_in_open, t->secs, t->ops_acked, t->inserts, t->upserts,
                  t->deletes, t->kv_puts, t->kv_dels, t->txns, t->flushes, t->inflight, t->inflight_applied,
                  t->lost_unflushed_acked, t->searches, t->misses);
}

static run *run_new(void)
{
    run *R = calloc(1, sizeof *R);
    assert_non_null(R);
    if (C.parent_dir) {
        R->tmp = malloc(strlen(C.parent_dir) + 32);
        sprintf(R->tmp, "%s/qzcrash-XXXXXX", C.parent_dir);
        if (!mkdtemp(R->tmp)) fail_msg("mkdtemp under QZ_CRASH_DIR=%s: %s", C.parent_dir, strerror(errno));
    } else {
        R->tmp = tu_tempdir();
    }
    R->path = malloc(strlen(R->tmp) + 8);
    sprintf(R->path, "%s/db", R->tmp);
    R->rng.s = C.seed;
    R->version = 1;
    size_t ns = nslots();
    R->model = calloc(ns, sizeof *R->model);
    R->scratch = calloc(ns, sizeof *R->scratch);
    R->last_version = malloc(C.pool * sizeof *R->last_version);
    R->touched = malloc(64 * sizeof *R->touched);
    R->vd_size = sizeof(verdict) + ns * sizeof(slot);
    R->vd = mmap(NULL, R->vd_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(R->vd != MAP_FAILED);
    assert_non_null(R->model);
    assert_non_null(R->scratch);
    assert_non_null(R->last_version);
    if (!g_child_err) {
        g_child_err = mmap(NULL, ERRCAP, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        assert_true(g_child_err != MAP_FAILED);
    }
    signal(SIGPIPE, SIG_IGN);
    R->open_est = 0.05;
    fresh_dir(R);
    return R;
}

static void run_free(run *R)
{
    if (C.keep) print_message("kept the database directory %s\n", R->path);
    else tu_rmtree(R->tmp);
    munmap(R->vd, R->vd_size);
    free(R->tmp);
    free(R->path);
    free(R->ops);
    free(R->model);
    free(R->scratch);
    free(R->last_version);
    free(R->touched);
    free(R);
}

/* Run C.rounds rounds of each mode, alternating in blocks of C.block, until
 * done or the time budget is spent. Fails at the first problem, or (soak)
 * counts problems and fails at the end. */
static void run_rounds(run *R, int sync_only)
{
    double t0 = now_s();
    int done[2] = {0, 0}, stopped = 0;
    char why[ERRCAP + 512];
    for (int b = 0;; b++) {
        int mi = sync_only ? 0 : b % 2;
        if (done[mi] >= C.rounds) {
            if (sync_only || done[!mi] >= C.rounds) break;
            continue;
        }
        uint32_t durability = mi ? QZ_DURABILITY_BATCHED : QZ_DURABILITY_SYNC;
        double tb = now_s();
        for (int i = 0; i < C.block && done[mi] < C.rounds; i++) {
            /* the budget never cuts the run below QZ_CRASH_MIN_ROUNDS per mode */
            int floor_met = sync_only ? done[0] >= C.min_rounds
                                      : done[0] >= C.min_rounds && done[1] >= C.min_rounds;
            if (C.budget_s > 0 && now_s() - t0 > C.budget_s && floor_met) {
                stopped = 1;
                break;
            }
            why[0] = '\0';
            int cls = one_round(R, durability, why, sizeof why);
            done[mi]++;
            if (cls) {
                if (!C.soak) fail_msg("%s [%s] (directory left for inspection: %s)", why, class_name[cls], R->path);
                print_message("FAILURE [%s] %s\n", class_name[cls], why);
                size_t fl = strlen(R->failed_at);
                static const char *const tag[F_NCLASS] = {"", "unopenable", "check", "lost", "foreign", "writer"};
                if (fl < sizeof R->failed_at - 40)
                    snprintf(R->failed_at + fl, sizeof R->failed_at - fl, "%s%d %s", fl ? ", " : "", R->round - 1,
                             tag[cls]);
                if (cls == F_OPEN) R->f.unopenable++;
                if (cls == F_CHECK) R->f.check++;
                if (cls == F_CHILD) R->f.child++;
                if (cls == F_OPEN || cls == F_CHECK) set_aside(R);
            }
            if (R->round % 10 == 0) {
                uint64_t bytes = dir_bytes(R->path, NULL, NULL);
                if (bytes > R->max_bytes) R->max_bytes = bytes;
                if (R->round % (C.soak ? 100 : 50) == 0)
                    print_message("  after %d rounds: %.1f MiB, %.0f s\n", R->round, mib(bytes), now_s() - t0);
            }
        }
        R->tot[mi].secs += now_s() - tb;
        if (stopped) break;
    }
    double secs = now_s() - t0;
    int rounds = done[0] + done[1];
    for (int mi = 0; mi < (sync_only ? 1 : 2); mi++) print_mode(R, mi);
    uint64_t mdb, lg, total = dir_bytes(R->path, &mdb, &lg);
    if (total > R->max_bytes) R->max_bytes = total;
    size_t live = 0, kv = 0;
    for (size_t i = 0; i < C.pool; i++) live += R->model[i].present;
    for (size_t i = 0; i < C.nkeys; i++) kv += R->model[C.pool + i].present;
    if (stopped)
        print_message("NOTE: the time budget of %.0f s (QZ_CRASH_SECONDS) ended the run after %d of %d rounds\n",
                      C.budget_s, rounds, sync_only ? C.rounds : 2 * C.rounds);
    print_message("crash: %d rounds in %.1f s (%.2f rounds/s); directory %.1f MiB (data.mdb %.1f MiB, quartz.log %.1f "
                  "MiB); %zu ids, %zu keys, %u dimensions; writer open %.3f s mean, %.3f s max\n",
                  rounds, secs, rounds / (secs > 0 ? secs : 1), mib(total), mib(mdb), mib(lg), live, kv, C.dim,
                  R->open_n ? R->open_sum / (double)R->open_n : 0.0, R->open_max);
    const fails *f = &R->f;
    print_message("crash summary: rounds %d (SYNC %d, BATCHED %d, %zu killed during open), unopenable databases %zu, "
                  "lost acknowledged SYNC writes %zu, lost BATCHED writes from before a completed flush %zu, deleted "
                  "ids or keys back %zu, out-of-order recoveries %zu, check failures %zu, writer failures %zu, final "
                  "size %.1f MiB, largest %.1f MiB, %.0f s\n",
                  rounds, done[0], done[1], R->tot[0].kills_in_open + R->tot[1].kills_in_open, f->unopenable,
                  f->lost_sync, f->lost_batched, f->back, f->order, f->check, f->child, mib(total), mib(R->max_bytes),
                  secs);
    if (R->failed_at[0]) print_message("crash: failed rounds (round number, what): %s\n", R->failed_at);
    size_t bad = f->unopenable + f->lost_sync + f->lost_batched + f->back + f->order + f->check + f->child;
    if (bad) fail_msg("%zu problems found (see FAILURE lines)", bad);
}

static void config_main(void)
{
    memset(&C, 0, sizeof C);
    C.rounds = (int)env_long("QZ_CRASH_ROUNDS", 150, 1, 1000000);
    C.budget_s = (double)env_long("QZ_CRASH_SECONDS", 170, 0, 100000000);
    C.min_rounds = (int)env_long("QZ_CRASH_MIN_ROUNDS", 100, 0, 100000000);
    C.dim = (uint32_t)env_long("QZ_CRASH_DIM", 384, 1, 4096);
    C.pool = (size_t)env_long("QZ_CRASH_POOL", 12000, 10, 10000000);
    C.nkeys = (size_t)env_long("QZ_CRASH_KEYS", 1000, 1, 99999);
    C.prefill = (size_t)env_long("QZ_CRASH_PREFILL", 3000, 0, (long)C.pool);
    C.open_every = (int)env_long("QZ_CRASH_OPEN_EVERY", 8, 0, 1000000);
    C.seed = (uint64_t)env_long("QZ_CRASH_SEED", 20260401, 0, 0x7fffffffffffffffL);
    C.soak = env_long("QZ_CRASH_SOAK", 0, 0, 1) == 1;
    C.strict_search = env_long("QZ_CRASH_STRICT_SEARCH", 0, 0, 1) == 1;
    C.keep = env_long("QZ_CRASH_KEEP", 0, 0, 1) == 1;
    C.parent_dir = getenv("QZ_CRASH_DIR");
    if (C.parent_dir && !*C.parent_dir) C.parent_dir = NULL;
    C.hot = (size_t)env_long("QZ_CRASH_HOT", 64, 0, (long)C.pool);
    C.hot_share = (unsigned)env_long("QZ_CRASH_HOT_SHARE", 25, 0, 100);
    C.block = 10;
    C.max_delay_ms = (int)env_long("QZ_CRASH_MAX_DELAY_MS", 300, 1, 100000);
}

static void acknowledged_writes_survive_sigkill_in_sync_and_batched_mode(void **unused)
{
    (void)unused;
    config_main();
    print_message("crash: %d rounds per mode (SYNC and BATCHED in blocks of %d), %u dimensions, %zu ids, %zu keys, "
                  "prefill %zu, time budget %.0f s (0: none)%s\n",
                  C.rounds, C.block, C.dim, C.pool, C.nkeys, C.prefill, C.budget_s, C.soak ? ", soak mode" : "");
    run *R = run_new();
    run_rounds(R, 0);
    assert_true(R->tot[0].ops_acked > 0 && R->tot[1].ops_acked > 0);
    run_free(R);
}

static void readonly_open_after_sigkill_sees_acknowledged_state_and_passes_check(void **unused)
{
    (void)unused;
    config_main();
    C.rounds = 20;
    C.budget_s = 0;
    C.dim = 128;
    C.pool = 2000;
    C.nkeys = 200;
    C.prefill = 500;
    C.readonly_every = 2;
    C.seed = 777;
    C.soak = 0;
    C.keep = 0;
    C.max_delay_ms = 40;
    run *R = run_new();
    run_rounds(R, 1);
    run_free(R);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(acknowledged_writes_survive_sigkill_in_sync_and_batched_mode),
        cmocka_unit_test(readonly_open_after_sigkill_sees_acknowledged_state_and_passes_check),
    };
    const char *soak = getenv("QZ_CRASH_SOAK");
    size_t n = soak && strcmp(soak, "1") == 0 ? 1 : sizeof tests / sizeof tests[0];
    return _cmocka_run_group_tests("test_crash", tests, n, NULL, NULL);
}
