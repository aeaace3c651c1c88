/*
 * test_corrupt_mdb.c - random damage to LMDB's data.mdb never crashes the
 * process and never goes unnoticed.
 *
 * A small durable database is built once through the public API (vectors
 * with metadata, kv entries, some of each deleted, closed cleanly). Each
 * trial copies it, damages data.mdb (one random bit flip anywhere, or one
 * zeroed 4 KiB page), and in a fork()ed child opens it, reads back every id
 * and every kv key, lists the kv store, searches for extra ids, runs
 * qz_db_check() and closes. The parent requires of every trial:
 *   - the child exited normally (no abort, SIGSEGV, SIGBUS; no sanitizer
 *     report), and
 *   - every value read is identical to what was written, or the call that
 *     read it returned QZ_ECORRUPT, QZ_EIO or QZ_EVERSION with a message;
 *     no call failed otherwise, no vector or key is silently missing,
 *     changed or extra.
 * Outcomes are counted per category and printed. Trials whose silent damage
 * lies in a key byte of a VECTORS or KV record are counted apart: detecting
 * those is the journal's job (record checksums covering the id, qz_db_check
 * verifying kv records); the test fails on them all the same.
 *
 * QZ_CORRUPT_SEED=<n> changes the damage; QZ_CORRUPT_TRIALS=<flips>,<pages>
 * the number of trials (default 200 bit flips, 50 zeroed pages);
 * QZ_CORRUPT_ONLY=<i> runs trial i alone (the flips are numbered first);
 * QZ_CORRUPT_VERBOSE=1 prints what detected each damage; QZ_CORRUPT_KEEP=1
 * keeps the directories (the last trial's copy is <root>/trial).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define DIM 16
#define NVEC 300
#define NKV 100
#define BASE_ID 0x5157000000000000ull
#define PAGE 4096

static char g_root[256], g_pristine[300];

/* ---- content -------------------------------------------------------------------- */

static int vec_deleted(uint64_t i) { return i % 10 == 3; }
static int kv_deleted(uint64_t i) { return i % 8 == 5; }

static void make_vec(float *v, uint64_t i)
{
    tu_rng r = {i * 104729 + 11};
    for (int d = 0; d < DIM; d++) v[d] = (float)tu_normal(&r);
}

static size_t make_meta(char *b, size_t cap, uint64_t i)
{
    return (size_t)snprintf(b, cap, "{\"doc\":%llu,\"title\":\"vector number %llu\"}", (unsigned long long)i,
                            (unsigned long long)i);
}

static size_t make_key(char *k, size_t cap, uint64_t i) { return (size_t)snprintf(k, cap, "kvkey:%04llu", (unsigned long long)i); }

static size_t make_val(char *v, size_t cap, uint64_t i)
{
    return (size_t)snprintf(v, cap, "the value stored under key %llu, %llu", (unsigned long long)i,
                            (unsigned long long)(i * 7919));
}

static qz_open_options opts(void)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.M = 8;
    o.ef_construction = 64;
    o.durability = QZ_DURABILITY_SYNC;
    return o;
}

/* ---- files ----------------------------------------------------------------------- */

/* ---- the child's verdict ------------------------------------------------------------ */

typedef struct report {
    int done;
    int open_rc;
    int close_rc;
    int detected; /* some call returned QZ_ECORRUPT/QZ_EIO/QZ_EVERSION with a message */
    int silent;   /* a value was wrong, missing or extra without an error */
    int bad;      /* a call failed with another code, or without a message */
    char detect_msg[300];
    char silent_why[300];
    char bad_why[300];
} report;

static report *g_rep;

static int is_detection(int rc) { return rc == QZ_ECORRUPT || rc == QZ_EIO || rc == QZ_EVERSION; }

/* rc of a call that failed: a detection (with a message) or a bad failure. */
static void failed(report *r, int rc, const char *what)
{
    const char *msg = qz_errmsg();
    if (is_detection(rc) && msg && *msg) {
        if (!r->detected) snprintf(r->detect_msg, sizeof r->detect_msg, "%s -> %s: %s", what, qz_strerror(rc), msg);
        r->detected = 1;
    } else {
        if (!r->bad)
            snprintf(r->bad_why, sizeof r->bad_why, "%s -> %d (%s): '%s'", what, rc, qz_strerror(rc), msg ? msg : "");
        r->bad = 1;
    }
}

#define SILENT(...)                                                                                                \
    do {                                                                                                           \
        if (!r->silent) snprintf(r->silent_why, sizeof r->silent_why, __VA_ARGS__);                                \
        r->silent = 1;                                                                                             \
    } while (0)

typedef struct scan_ctx {
    report *r;
    unsigned char seen[NKV];
} scan_ctx;

static int scan_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    scan_ctx *c = user;
    report *r = c->r;
    char key[64], want[128];
    for (uint64_t i = 0; i < NKV; i++) {
        size_t wkl = make_key(key, sizeof key, i);
        if (wkl != kl || memcmp(key, k, kl)) continue;
        if (kv_deleted(i)) {
            SILENT("the kv scan lists deleted key %s", key);
            return 0;
        }
        size_t wl = make_val(want, sizeof want, i);
        if (wl != vl || memcmp(want, v, vl)) SILENT("the kv scan gives another value for %s", key);
        c->seen[i] = 1;
        return 0;
    }
    SILENT("the kv scan lists a key of %zu bytes that was never written ('%.*s')", kl, (int)(kl < 40 ? kl : 40),
           (const char *)k);
    return 0;
}

static void check_db(qz_db *db, report *r)
{
    float v[DIM], want[DIM];
    char meta[128], wm[128];
    for (uint64_t i = 0; i < NVEC; i++) {
        size_t ml = 0;
        int rc = qz_db_get(db, BASE_ID + i, v, DIM, meta, sizeof meta, &ml);
        if (vec_deleted(i)) {
            if (rc == QZ_OK) SILENT("deleted vector %llu is back", (unsigned long long)i);
            else if (rc != QZ_ENOTFOUND) failed(r, rc, "qz_db_get of a deleted id");
            continue;
        }
        if (rc == QZ_ENOTFOUND) {
            SILENT("vector %llu is missing", (unsigned long long)i);
            continue;
        }
        if (rc) {
            failed(r, rc, "qz_db_get");
            continue;
        }
        make_vec(want, i);
        size_t wl = make_meta(wm, sizeof wm, i);
        if (memcmp(v, want, sizeof v)) SILENT("vector %llu has other components", (unsigned long long)i);
        if (ml != wl || memcmp(meta, wm, wl)) SILENT("vector %llu has other metadata", (unsigned long long)i);
    }
    /* extra ids: everything a search returns must have been written */
    uint64_t ids[NVEC];
    size_t found = 0;
    make_vec(want, 0);
    int rc = qz_db_search(db, want, DIM, NVEC, NULL, ids, NULL, &found);
    if (rc) {
        failed(r, rc, "qz_db_search");
    } else {
        for (size_t j = 0; j < found; j++) {
            uint64_t i = ids[j] - BASE_ID;
            if (ids[j] < BASE_ID || i >= NVEC || vec_deleted(i))
                SILENT("the search returns id 0x%llx, which is not stored", (unsigned long long)ids[j]);
        }
    }
    qz_stats st = {.struct_size = sizeof st};
    rc = qz_db_stats(db, &st);
    if (rc) failed(r, rc, "qz_db_stats");
    else if (st.count != NVEC - NVEC / 10) SILENT("qz_db_stats counts %llu vectors, %d stored", (unsigned long long)st.count, NVEC - NVEC / 10);

    char key[64], val[128], wv[128];
    for (uint64_t i = 0; i < NKV; i++) {
        size_t kl = make_key(key, sizeof key, i), vl = 0;
        rc = qz_kv_get(db, key, kl, val, sizeof val, &vl);
        if (kv_deleted(i)) {
            if (rc == QZ_OK) SILENT("deleted kv key %s is back", key);
            else if (rc != QZ_ENOTFOUND) failed(r, rc, "qz_kv_get of a deleted key");
            continue;
        }
        if (rc == QZ_ENOTFOUND) {
            SILENT("kv key %s is missing", key);
            continue;
        }
        if (rc) {
            failed(r, rc, "qz_kv_get");
            continue;
        }
        size_t wl = make_val(wv, sizeof wv, i);
        if (vl != wl || memcmp(val, wv, wl)) SILENT("kv key %s has another value", key);
    }
    scan_ctx c;
    memset(&c, 0, sizeof c);
    c.r = r;
    rc = qz_kv_scan(db, NULL, 0, scan_fn, &c);
    if (rc) {
        failed(r, rc, "qz_kv_scan");
    } else {
        for (uint64_t i = 0; i < NKV; i++)
            if (!kv_deleted(i) && !c.seen[i]) {
                make_key(key, sizeof key, i);
                SILENT("the kv scan skips key %s", key);
                break;
            }
    }
    rc = qz_db_check(db);
    if (rc) failed(r, rc, "qz_db_check");
}

/* cmocka catches SIGSEGV, SIGBUS, SIGILL and SIGFPE to fail the running
 * test; the child must die of them instead, for the parent to see. */
static void child_default_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
}

static void run_child(const char *dir)
{
    child_default_signals();
    report *r = g_rep;
    qz_open_options o = opts();
    qz_db *db = NULL;
    r->open_rc = qz_db_open(dir, &o, &db);
    if (r->open_rc) {
        failed(r, r->open_rc, "qz_db_open");
        if (db) {
            r->bad = 1;
            snprintf(r->bad_why, sizeof r->bad_why, "a failed qz_db_open left a handle");
        }
    } else {
        check_db(db, r);
        r->close_rc = qz_db_close(db);
        if (r->close_rc) failed(r, r->close_rc, "qz_db_close");
    }
    r->done = 1;
    _exit(0);
}

/* ---- where the keys of the journal's records lie -------------------------------------- */

typedef struct span {
    size_t off, len;
} span;

static span *g_keys;
static size_t g_nkeys;

static void add_occurrences(const unsigned char *b, size_t n, const void *pat, size_t plen)
{
    for (size_t i = 0; i + plen <= n; i++) {
        if (memcmp(b + i, pat, plen)) continue;
        g_keys = realloc(g_keys, (g_nkeys + 1) * sizeof *g_keys);
        g_keys[g_nkeys].off = i;
        g_keys[g_nkeys].len = plen;
        g_nkeys++;
    }
}

/* Every place in data.mdb where a VECTORS key (8-byte big-endian id) or a
 * KV key appears. */
static void find_keys(const char *dir)
{
    char f[512];
    snprintf(f, sizeof f, "%s/data.mdb", dir);
    size_t n;
    unsigned char *b = tu_slurp(f, &n, 0);
    for (uint64_t i = 0; i < NVEC; i++) {
        unsigned char be[8];
        uint64_t id = BASE_ID + i;
        for (int j = 0; j < 8; j++) be[j] = (unsigned char)(id >> (56 - 8 * j));
        add_occurrences(b, n, be, 8);
    }
    for (uint64_t i = 0; i < NKV; i++) {
        char k[64];
        size_t kl = make_key(k, sizeof k, i);
        add_occurrences(b, n, k, kl);
    }
    free(b);
}

/* A byte of a record's key, or of the key size just before it (LMDB's node
 * header ends with it): flipping either changes the key. */
static int in_a_key(size_t off)
{
    for (size_t i = 0; i < g_nkeys; i++)
        if (off + 2 >= g_keys[i].off && off < g_keys[i].off + g_keys[i].len) return 1;
    return 0;
}

/* ---- setup ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    char *t = tu_tempdir();
    snprintf(g_root, sizeof g_root, "%s", t);
    free(t);
    snprintf(g_pristine, sizeof g_pristine, "%s/pristine", g_root);
    g_rep = mmap(NULL, sizeof *g_rep, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_rep == MAP_FAILED) return -1;

    qz_open_options o = opts();
    o.durability = QZ_DURABILITY_BATCHED;
    qz_db *db = NULL;
    if (qz_db_open(g_pristine, &o, &db)) return -1;
    float v[DIM];
    char m[128], k[64], val[128];
    for (uint64_t i = 0; i < NVEC; i++) {
        make_vec(v, i);
        size_t ml = make_meta(m, sizeof m, i);
        if (qz_db_insert(db, BASE_ID + i, v, DIM, m, ml)) return -1;
    }
    for (uint64_t i = 0; i < NKV; i++) {
        size_t kl = make_key(k, sizeof k, i), vl = make_val(val, sizeof val, i);
        if (qz_kv_put(db, k, kl, val, vl)) return -1;
    }
    for (uint64_t i = 0; i < NVEC; i++)
        if (vec_deleted(i) && qz_db_delete(db, BASE_ID + i)) return -1;
    for (uint64_t i = 0; i < NKV; i++) {
        size_t kl = make_key(k, sizeof k, i);
        if (kv_deleted(i) && qz_kv_delete(db, k, kl)) return -1;
    }
    if (qz_db_close(db)) return -1;
    find_keys(g_pristine);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (getenv("QZ_CORRUPT_KEEP")) print_message("kept %s\n", g_root);
    else tu_rmtree(g_root);
    munmap(g_rep, sizeof *g_rep);
    free(g_keys);
    return 0;
}

/* ---- the trials ------------------------------------------------------------------------- */

enum { OUT_INTACT, OUT_OPEN_REFUSED, OUT_DETECTED_LATER, OUT_SILENT_KEY, OUT_SILENT_OTHER, OUT_BAD, OUT_CRASH, OUT_N };
static const char *const out_names[OUT_N] = {
    "every value identical",
    "open refused (QZ_ECORRUPT/QZ_EIO/QZ_EVERSION)",
    "opened, a later call reported the damage",
    "SILENT: key (or key size) of a VECTORS/KV record (journal)",
    "SILENT: elsewhere",
    "FAILED with another code or no message",
    "CRASHED (signal or abnormal exit)",
};

typedef struct tally {
    int n[OUT_N];
} tally;

/* Run one trial on the damaged copy at dir; returns its outcome. */
static int trial(const char *dir, const char *label, int key_byte, int verbose)
{
    memset(g_rep, 0, sizeof *g_rep);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) run_child(dir);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
    const report *r = g_rep;
    int out;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !r->done) {
        out = OUT_CRASH;
        print_message("%s: CRASHED: %s %d\n", label, WIFSIGNALED(status) ? "signal" : "status",
                      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    } else if (r->silent) {
        out = key_byte ? OUT_SILENT_KEY : OUT_SILENT_OTHER;
        print_message("%s: SILENT%s: %s%s%s\n", label, key_byte ? " (key byte)" : "", r->silent_why,
                      r->detected ? "; also detected: " : "", r->detected ? r->detect_msg : "");
    } else if (r->bad) {
        out = OUT_BAD;
        print_message("%s: FAILED: %s\n", label, r->bad_why);
    } else if (r->open_rc) {
        out = OUT_OPEN_REFUSED;
        if (verbose) print_message("%s: %s\n", label, r->detect_msg);
    } else if (r->detected) {
        out = OUT_DETECTED_LATER;
        if (verbose) print_message("%s: %s\n", label, r->detect_msg);
    } else {
        out = OUT_INTACT;
    }
    return out;
}

static uint64_t seed_from_env(void)
{
    const char *s = getenv("QZ_CORRUPT_SEED");
    return s && *s ? strtoull(s, NULL, 0) : 0x00C0FFEEull;
}

static void trials_from_env(int *flips, int *pages)
{
    const char *s = getenv("QZ_CORRUPT_TRIALS");
    if (s && *s) sscanf(s, "%d,%d", flips, pages);
}

static void xor_bit(const char *path, size_t off, int bit)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= (unsigned char)(1u << bit);
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

static void zero_page(const char *path, size_t page)
{
    static const unsigned char zero[PAGE];
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, zero, PAGE, (off_t)(page * PAGE)), PAGE);
    close(fd);
}

static void print_tally(const char *what, const tally *t)
{
    print_message("%s:\n", what);
    for (int i = 0; i < OUT_N; i++) print_message("  %-64s %4d\n", out_names[i], t->n[i]);
}

static void random_damage_never_crashes_and_never_goes_unnoticed(void **state)
{
    (void)state;
    int nflips = 200, npages = 50;
    trials_from_env(&nflips, &npages);
    uint64_t seed = seed_from_env();
    tu_rng rng = {seed};
    int verbose = getenv("QZ_CORRUPT_VERBOSE") != NULL;
    const char *only_s = getenv("QZ_CORRUPT_ONLY"); /* one trial: flips count first, then pages */
    int only = only_s && *only_s ? atoi(only_s) : -1;
    char pf[320], dir[320], f[340];
    snprintf(pf, sizeof pf, "%s/data.mdb", g_pristine);
    snprintf(dir, sizeof dir, "%s/trial", g_root);
    snprintf(f, sizeof f, "%s/data.mdb", dir);
    struct stat sb;
    assert_int_equal(stat(pf, &sb), 0);
    size_t size = (size_t)sb.st_size, pages = size / PAGE;
    print_message("data.mdb: %zu bytes (%zu pages); %zu key occurrences; seed 0x%llx\n", size, pages, g_nkeys,
                  (unsigned long long)seed);

    /* the pristine copy reads back identical */
    tu_copy_db(g_pristine, dir);
    int out = trial(dir, "pristine copy", 0, 1);
    if (out != OUT_INTACT) fail_msg("the undamaged copy is not intact (outcome %s)", out_names[out]);

    tally flips = {{0}}, zeroed = {{0}};
    for (int i = 0; i < nflips; i++) {
        size_t off = (size_t)(tu_next(&rng) % size);
        int bit = (int)(tu_next(&rng) % 8);
        char label[96];
        snprintf(label, sizeof label, "flip #%d: bit %d of byte %zu (page %zu +%zu)", i, bit, off, off / PAGE,
                 off % PAGE);
        if (only >= 0 && i != only) continue;
        tu_copy_db(g_pristine, dir);
        xor_bit(f, off, bit);
        flips.n[trial(dir, label, in_a_key(off), verbose)]++;
    }
    for (int i = 0; i < npages; i++) {
        size_t page = (size_t)(tu_next(&rng) % pages);
        char label[96];
        snprintf(label, sizeof label, "zeroed page #%d: page %zu", i, page);
        if (only >= 0 && nflips + i != only) continue;
        tu_copy_db(g_pristine, dir);
        zero_page(f, page);
        zeroed.n[trial(dir, label, 0, verbose)]++;
    }
    print_tally("single bit flips", &flips);
    print_tally("zeroed 4 KiB pages", &zeroed);
    int crashes = flips.n[OUT_CRASH] + zeroed.n[OUT_CRASH];
    int bad = flips.n[OUT_BAD] + zeroed.n[OUT_BAD];
    int silent_key = flips.n[OUT_SILENT_KEY] + zeroed.n[OUT_SILENT_KEY];
    int silent = flips.n[OUT_SILENT_OTHER] + zeroed.n[OUT_SILENT_OTHER];
    if (crashes || bad || silent || silent_key)
        fail_msg("%d crash(es), %d bad failure(s), %d silent damage(s) elsewhere, %d silent damage(s) in record keys",
                 crashes, bad, silent, silent_key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_damage_never_crashes_and_never_goes_unnoticed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
