/*
 * test_corrupt.c - damaged database directories are refused with a clean
 * error code and a message (QZ_ECORRUPT, or QZ_EVERSION for a newer
 * format), or, where the design says the damage is recoverable (a torn or
 * garbage tail of quartz.log), opened with every earlier write intact -
 * never a crash, never wrong data.
 *
 * Two pristine directories are built once (real LMDB under /tmp):
 *   clean    N vectors with metadata and kv entries, closed cleanly
 *            (graph snapshot written, empty log);
 *   crashed  clean plus EXTRA inserts and kv puts by a SYNC-mode child that
 *            _exit()s without closing, so quartz.log holds their records.
 * Each case copies one of them, damages the copy (byte flips at offsets
 * found by searching data.mdb for the bytes of known records, truncation,
 * log surgery, or records written through the internal storage API), and
 * opens it in a fork()ed child, so that a crash is reported as a failure of
 * that case instead of killing the program. The child reports the open's
 * status and message and, when the open succeeds, whether every expected
 * vector (exact bytes), metadata and kv value is there, qz_db_check() and
 * a search for each vector.
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
#include <xxhash.h>

#include "testutil.h"

/* The internal storage API writes records no public call would write. */
#include "storage/storage.h"

#define DIM 16
#define N 300
#define EXTRA 40     /* inserts in the crashed child, one log record each */
#define EXTRA_KV 10  /* kv puts after them, one log record each */
#define NKV 20
#define BASE_ID 0x00C0FFEE00000000ull /* distinctive bytes, LE in the graph, BE in VECTORS keys */

static char g_root[256], g_clean[300], g_crashed[300];

/* ---- content ----------------------------------------------------------------- */

static void make_vec(float *v, uint64_t i)
{
    tu_rng r = {i * 7919 + 17};
    for (int d = 0; d < DIM; d++) v[d] = (float)tu_normal(&r);
}

static size_t make_meta(char *b, size_t cap, uint64_t i)
{
    return (size_t)snprintf(b, cap, "meta-of-vector-%05llu-qz", (unsigned long long)i);
}

static size_t make_kv(char *k, size_t kcap, char *v, size_t vcap, uint64_t i, size_t *vl)
{
    *vl = (size_t)snprintf(v, vcap, "value number %llu of the kv store", (unsigned long long)i);
    return (size_t)snprintf(k, kcap, "kv/%03llu", (unsigned long long)i);
}

static qz_open_options opts(uint32_t durability)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.M = 8;
    o.ef_construction = 64;
    o.durability = durability;
    return o;
}

/* ---- files ------------------------------------------------------------------- */

static char *fresh_copy(const char *from, const char *name)
{
    char *p = malloc(512);
    snprintf(p, 512, "%s/%s", g_root, name);
    tu_rmtree(p);
    tu_copy_db(from, p);
    return p;
}

static void file_of(char *out, size_t cap, const char *dir, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

/* Every offset where pat occurs in buf. */
static size_t find_all(const unsigned char *buf, size_t len, const void *pat, size_t plen, size_t *offs, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i + plen <= len && n < max; i++)
        if (buf[i] == *(const unsigned char *)pat && !memcmp(buf + i, pat, plen)) offs[n++] = i;
    return n;
}

static void xor_byte(const char *path, size_t off, unsigned char mask)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= mask;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/* Flip one byte at `delta` from every occurrence of pat in dir/data.mdb;
 * returns the number of occurrences (fails the test when there is none). */
static size_t flip_at_pattern(const char *dir, const void *pat, size_t plen, long delta)
{
    char f[512];
    file_of(f, sizeof f, dir, "data.mdb");
    size_t len;
    unsigned char *buf = tu_slurp(f, &len, 0);
    size_t offs[64];
    size_t n = find_all(buf, len, pat, plen, offs, 64);
    free(buf);
    if (!n) fail_msg("pattern of %zu bytes not found in %s", plen, f);
    for (size_t i = 0; i < n; i++) xor_byte(f, (size_t)((long)offs[i] + delta), 0x5a);
    return n;
}

/* ---- opening in a child ---------------------------------------------------------- */

typedef struct outcome {
    int status;          /* waitpid status of the child */
    int done;            /* the child got to the end */
    int rc;              /* qz_db_open */
    char msg[512];
    int intact;          /* all base vectors, metadata, kv, check and searches as written */
    char why[512];       /* first difference when not intact */
    unsigned char extra[EXTRA], extra_kv[EXTRA_KV]; /* presence of the crashed child's writes */
    int extra_bad;       /* a present extra write with the wrong content */
    int close_rc, reopen_rc;
} outcome;

static outcome *g_out;

/* cmocka catches SIGSEGV, SIGBUS, SIGILL and SIGFPE to fail the running
 * test; a fork()ed child must not do that (it would go on running the rest
 * of the suite): it dies of the signal, and the parent reports it. */
static void child_default_signals(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
}


#define WHY(...)                                                                                                   \
    do {                                                                                                           \
        if (o->intact) snprintf(o->why, sizeof o->why, __VA_ARGS__);                                               \
        o->intact = 0;                                                                                             \
    } while (0)

static void check_content(qz_db *db, outcome *o)
{
    o->intact = 1;
    float v[DIM], want[DIM];
    char meta[64], wm[64];
    for (uint64_t i = 0; i < N; i++) {
        size_t ml = 0;
        int rc = qz_db_get(db, BASE_ID + i, v, DIM, meta, sizeof meta, &ml);
        if (rc) {
            WHY("get of vector %llu -> %d: %s", (unsigned long long)i, rc, qz_errmsg());
            continue;
        }
        make_vec(want, i);
        size_t wl = make_meta(wm, sizeof wm, i);
        if (memcmp(v, want, sizeof v) || ml != wl || memcmp(meta, wm, wl)) WHY("vector %llu differs", (unsigned long long)i);
        uint64_t id;
        size_t n;
        rc = qz_db_search(db, want, DIM, 1, NULL, &id, NULL, &n);
        if (rc || n != 1 || id != BASE_ID + i) WHY("search for vector %llu does not find it", (unsigned long long)i);
    }
    for (uint64_t i = 0; i < NKV; i++) {
        char k[32], val[64], wv[64];
        size_t wl, kl = make_kv(k, sizeof k, wv, sizeof wv, i, &wl), vl = 0;
        int rc = qz_kv_get(db, k, kl, val, sizeof val, &vl);
        if (rc || vl != wl || memcmp(val, wv, wl)) WHY("kv %s -> %d", k, rc);
    }
    for (uint64_t i = 0; i < EXTRA; i++) {
        size_t ml = 0;
        int rc = qz_db_get(db, BASE_ID + N + i, v, DIM, meta, sizeof meta, &ml);
        o->extra[i] = rc == QZ_OK;
        if (rc == QZ_OK) {
            make_vec(want, N + i);
            size_t wl = make_meta(wm, sizeof wm, N + i);
            if (memcmp(v, want, sizeof v) || ml != wl || memcmp(meta, wm, wl)) o->extra_bad = 1;
        } else if (rc != QZ_ENOTFOUND) {
            o->extra_bad = 1;
        }
    }
    for (uint64_t i = 0; i < EXTRA_KV; i++) {
        char k[32], val[64], wv[64];
        size_t wl, kl = make_kv(k, sizeof k, wv, sizeof wv, NKV + i, &wl), vl = 0;
        int rc = qz_kv_get(db, k, kl, val, sizeof val, &vl);
        o->extra_kv[i] = rc == QZ_OK;
        if (rc == QZ_OK && (vl != wl || memcmp(val, wv, wl))) o->extra_bad = 1;
        if (rc != QZ_OK && rc != QZ_ENOTFOUND) o->extra_bad = 1;
    }
    qz_stats st = {.struct_size = sizeof st};
    if (qz_db_stats(db, &st) == QZ_OK) {
        size_t want_count = N;
        for (size_t i = 0; i < EXTRA; i++) want_count += o->extra[i];
        if (st.count != want_count) WHY("stats count %llu, expected %zu", (unsigned long long)st.count, want_count);
    }
    int rc = qz_db_check(db);
    if (rc) WHY("qz_db_check -> %d: %s", rc, qz_errmsg());
}

/* Open dir (writable) in a child and report. */
static outcome *try_open(const char *dir, const char *label)
{
    outcome *o = g_out;
    memset(o, 0, sizeof *o);
    o->rc = 12345;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_default_signals();
        qz_open_options op = opts(QZ_DURABILITY_SYNC);
        qz_db *db = NULL;
        o->rc = qz_db_open(dir, &op, &db);
        snprintf(o->msg, sizeof o->msg, "%s", qz_errmsg());
        if (o->rc == QZ_OK) {
            check_content(db, o);
            o->close_rc = qz_db_close(db);
            /* Opening again after the recovery sees the same. */
            o->reopen_rc = qz_db_open(dir, &op, &db);
            if (o->reopen_rc == QZ_OK) {
                outcome again;
                memset(&again, 0, sizeof again);
                check_content(db, &again);
                if (!again.intact) WHY("second open: %.400s", again.why);
                if (memcmp(again.extra, o->extra, sizeof o->extra) || memcmp(again.extra_kv, o->extra_kv, sizeof o->extra_kv))
                    WHY("second open sees other writes of the crashed process than the first");
                qz_db_close(db);
            }
        } else if (db) {
            snprintf(o->why, sizeof o->why, "failed open left a handle");
        }
        o->done = 1;
        _exit(0);
    }
    while (waitpid(pid, &o->status, 0) < 0)
        if (errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
    if (WIFSIGNALED(o->status))
        fail_msg("%s: the open CRASHED (signal %d, %s)", label, WTERMSIG(o->status), strsignal(WTERMSIG(o->status)));
    if (!WIFEXITED(o->status) || WEXITSTATUS(o->status) != 0 || !o->done)
        fail_msg("%s: the opening process failed (status 0x%x; a sanitizer report?)", label, o->status);
    print_message("%-58s -> %d (%s)%s%s\n", label, o->rc, o->rc == QZ_OK ? "ok" : qz_strerror(o->rc),
                  o->rc ? ": " : "", o->rc ? o->msg : "");
    return o;
}

static void expect_error(const char *dir, const char *label, int code)
{
    outcome *o = try_open(dir, label);
    if (o->rc == QZ_OK)
        fail_msg("%s: the damaged database opened (%s)", label,
                 o->intact ? "content looks intact" : o->why);
    if (o->rc != code)
        fail_msg("%s: open -> %d (%s), expected %d (%s): %s", label, o->rc, qz_strerror(o->rc), code, qz_strerror(code),
                 o->msg);
    assert_true(strlen(o->msg) > 0);
}

static void expect_intact(const char *dir, const char *label)
{
    outcome *o = try_open(dir, label);
    if (o->rc != QZ_OK) fail_msg("%s: open -> %d (%s): %s", label, o->rc, qz_strerror(o->rc), o->msg);
    if (!o->intact) fail_msg("%s: opened but not intact: %s", label, o->why);
    assert_int_equal(o->close_rc, QZ_OK);
    assert_int_equal(o->reopen_rc, QZ_OK);
    assert_false(o->extra_bad);
}

/* The crashed child's writes as seen: must be a prefix of its call order
 * (EXTRA inserts, then EXTRA_KV puts) at least `min` long. Returns the length. */
static size_t expect_prefix(const outcome *o, size_t min, const char *label)
{
    unsigned char seen[EXTRA + EXTRA_KV];
    memcpy(seen, o->extra, EXTRA);
    memcpy(seen + EXTRA, o->extra_kv, EXTRA_KV);
    size_t p = 0;
    while (p < EXTRA + EXTRA_KV && seen[p]) p++;
    for (size_t i = p; i < EXTRA + EXTRA_KV; i++)
        if (seen[i]) fail_msg("%s: write %zu is present but write %zu before it is not", label, i, p);
    if (p < min) fail_msg("%s: only %zu of the crashed process's writes survive, expected at least %zu", label, p, min);
    return p;
}

/* ---- setup: the two pristine directories ----------------------------------------- */

static int setup(void **state)
{
    (void)state;
    char *t = tu_tempdir();
    snprintf(g_root, sizeof g_root, "%s", t);
    free(t);
    snprintf(g_clean, sizeof g_clean, "%s/clean", g_root);
    snprintf(g_crashed, sizeof g_crashed, "%s/crashed", g_root);
    g_out = mmap(NULL, sizeof *g_out, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_out == MAP_FAILED) return -1;

    qz_open_options o = opts(QZ_DURABILITY_BATCHED);
    qz_db *db;
    if (qz_db_open(g_clean, &o, &db)) return -1;
    float v[DIM];
    char m[64], k[32], val[64];
    for (uint64_t i = 0; i < N; i++) {
        make_vec(v, i);
        size_t ml = make_meta(m, sizeof m, i);
        if (qz_db_insert(db, BASE_ID + i, v, DIM, m, ml)) return -1;
    }
    for (uint64_t i = 0; i < NKV; i++) {
        size_t vl, kl = make_kv(k, sizeof k, val, sizeof val, i, &vl);
        if (qz_kv_put(db, k, kl, val, vl)) return -1;
    }
    if (qz_db_close(db)) return -1;

    tu_copy_db(g_clean, g_crashed);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        child_default_signals();
        qz_open_options so = opts(QZ_DURABILITY_SYNC);
        if (qz_db_open(g_crashed, &so, &db)) _exit(2);
        for (uint64_t i = 0; i < EXTRA; i++) {
            make_vec(v, N + i);
            size_t ml = make_meta(m, sizeof m, N + i);
            if (qz_db_insert(db, BASE_ID + N + i, v, DIM, m, ml)) _exit(3);
        }
        for (uint64_t i = 0; i < EXTRA_KV; i++) {
            size_t vl, kl = make_kv(k, sizeof k, val, sizeof val, NKV + i, &vl);
            if (qz_kv_put(db, k, kl, val, vl)) _exit(4);
        }
        _exit(0); /* every write acknowledged (SYNC), no close */
    }
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(g_root);
    munmap(g_out, sizeof *g_out);
    return 0;
}

/* ---- data.mdb: byte flips in records found by their bytes ------------------------- */

static void pristine_copies_open_intact(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "pristine-clean");
    expect_intact(d, "clean copy, undamaged");
    free(d);
    d = fresh_copy(g_crashed, "pristine-crashed");
    expect_intact(d, "crashed copy, undamaged (log replay)");
    expect_prefix(g_out, EXTRA + EXTRA_KV, "crashed copy");
    free(d);
}

static void flipped_byte_in_a_stored_vector_is_ecorrupt(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "flip-vector");
    float v[DIM];
    make_vec(v, 123);
    size_t n = flip_at_pattern(d, v, sizeof v, 21); /* inside component 5 */
    print_message("vector 123 found %zu time(s) in data.mdb\n", n);
    expect_error(d, "flipped byte inside vector 123", QZ_ECORRUPT);
    assert_non_null(strstr(g_out->msg, "fails its checksum"));
    free(d);
}

static void flipped_byte_in_vector_metadata_is_ecorrupt(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "flip-meta");
    char m[64];
    size_t ml = make_meta(m, sizeof m, 77);
    flip_at_pattern(d, m, ml, 17);
    expect_error(d, "flipped byte in the metadata of vector 77", QZ_ECORRUPT);
    free(d);
}

static void flipped_byte_in_vector_record_header_or_checksum_is_ecorrupt(void **state)
{
    (void)state;
    float v[DIM];
    char m[64];
    /* Record: u64 seq, u32 vec_bytes, u32 meta_len, vec, meta, u64 XXH3. */
    struct {
        const char *label;
        uint64_t vec;
        long delta; /* from the start of the vector bytes */
    } cases[] = {
        {"flipped byte in the seq of vector 10's record", 10, -16 + 2},
        {"flipped byte in the vec_bytes of vector 11's record", 11, -8},
        {"flipped byte in the meta_len of vector 12's record", 12, -4},
        {"flipped byte in the checksum of vector 13's record", 13, 0 /* set below */},
    };
    for (size_t c = 0; c < 4; c++) {
        char name[32];
        snprintf(name, sizeof name, "flip-vrec-%zu", c);
        char *d = fresh_copy(g_clean, name);
        make_vec(v, cases[c].vec);
        long delta = cases[c].delta;
        if (c == 3) delta = (long)(sizeof v + make_meta(m, sizeof m, cases[c].vec) + 3);
        flip_at_pattern(d, v, sizeof v, delta);
        expect_error(d, cases[c].label, QZ_ECORRUPT);
        free(d);
    }
}

static void flipped_byte_in_graph_snapshot_chunk_is_ecorrupt(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "flip-graph-chunk");
    uint64_t label = BASE_ID + 200; /* little-endian: how the snapshot stores labels */
    unsigned char le[8];
    memcpy(le, &label, 8);
    size_t n = flip_at_pattern(d, le, 8, 0);
    print_message("label of vector 200 found %zu time(s) in data.mdb (graph snapshot)\n", n);
    expect_error(d, "flipped byte in a graph snapshot node record", QZ_ECORRUPT);
    free(d);
}

static void flipped_byte_in_graph_snapshot_header_is_ecorrupt(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "flip-graph-header");
    uint32_t magic = 0x52475a51u; /* "QZGR" */
    unsigned char p[8];
    uint32_t ver = 2; /* QZ__GRAPH_VERSION (persist/format.h) */
    memcpy(p, &magic, 4);
    memcpy(p + 4, &ver, 4);
    flip_at_pattern(d, p, 8, 12); /* the dimension field */
    expect_error(d, "flipped byte in the graph snapshot header", QZ_ECORRUPT);
    free(d);
}

/* The value of a META record, read through the storage API. */
static size_t meta_value(const char *dir, const char *key, unsigned char *out, size_t cap)
{
    qz_storage *s = NULL;
    TU_OK(qz__storage_lmdb_open(dir, QZ__LMDB_READONLY, &s));
    qz_storage_txn *t;
    TU_OK(s->begin(s, QZ_TXN_READONLY, &t));
    const void *v;
    size_t vl;
    TU_OK(s->get(s, t, QZ_TABLE_META, key, strlen(key), &v, &vl));
    assert_true(vl <= cap);
    memcpy(out, v, vl);
    s->abort(s, t);
    s->close(s);
    return vl;
}

static void flipped_byte_in_options_record_is_ecorrupt(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "flip-options");
    /* META "options": u32 version, dimensions, metric, dtype, M, ef_construction, ... , XXH3 */
    unsigned char rec[64];
    size_t n = meta_value(d, "options", rec, sizeof rec);
    flip_at_pattern(d, rec, n, 16); /* M */
    expect_error(d, "flipped byte in the META options record", QZ_ECORRUPT);
    free(d);
}

static int count_cb(const void *k, size_t kl, const void *v, size_t vl, void *u)
{
    (void)k, (void)kl, (void)v, (void)vl;
    ++*(size_t *)u;
    return 0;
}

static void flipped_bytes_in_a_kv_value_are_ecorrupt_on_read(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "flip-kv");
    char k[32], v[64];
    size_t vl;
    make_kv(k, sizeof k, v, sizeof v, 7, &vl);
    flip_at_pattern(d, v, vl, 6);
    /* kv values are verified when read, not at open. */
    qz_open_options o = opts(0);
    qz_db *db;
    TU_OK(qz_db_open(d, &o, &db));
    char buf[64];
    size_t n;
    int rc = qz_kv_get(db, k, strlen(k), buf, sizeof buf, &n);
    print_message("%-58s -> %d (%s): %s\n", "get of a kv value with a flipped byte", rc, qz_strerror(rc), qz_errmsg());
    assert_int_equal(rc, QZ_ECORRUPT);
    size_t cnt = 0;
    rc = qz_kv_scan(db, "kv/", 3, count_cb, &cnt);
    print_message("%-58s -> %d (%s) after %zu keys: %s\n", "scan over it", rc, qz_strerror(rc), cnt, qz_errmsg());
    assert_int_equal(rc, QZ_ECORRUPT);
    /* The other keys still read. */
    make_kv(k, sizeof k, v, sizeof v, 8, &vl);
    TU_OK(qz_kv_get(db, k, strlen(k), buf, sizeof buf, &n));
    assert_int_equal(n, vl);
    TU_OK(qz_db_close(db));
    free(d);
}

/* ---- data.mdb: LMDB's own meta pages ------------------------------------------------ */

/* LMDB 0.9 page 0 and page 1 (page size 4096 here): 16-byte page header,
 * then MDB_meta: magic u32 @16, version u32 @20, ..., mm_dbs[1].md_root @128. */
#define LM_PAGE 4096u
#define LM_MAGIC_OFF 16u
#define LM_VERSION_OFF 20u
#define LM_MAIN_ROOT_OFF 128u

static void lmdb_page_size_is_4096(const char *dir)
{
    char f[512];
    file_of(f, sizeof f, dir, "data.mdb");
    size_t len;
    unsigned char *b = tu_slurp(f, &len, 0);
    uint32_t magic0, magic1;
    memcpy(&magic0, b + LM_MAGIC_OFF, 4);
    memcpy(&magic1, b + LM_PAGE + LM_MAGIC_OFF, 4);
    free(b);
    if (magic0 != 0xBEEFC0DEu || magic1 != 0xBEEFC0DEu) skip(); /* another layout: these offsets do not apply */
}

static void damaged_lmdb_meta_page_magic_is_ecorrupt(void **state)
{
    (void)state;
    for (int page = 0; page < 2; page++) {
        char *d = fresh_copy(g_clean, page ? "meta-magic-1" : "meta-magic-0");
        lmdb_page_size_is_4096(d);
        char f[512];
        file_of(f, sizeof f, d, "data.mdb");
        xor_byte(f, page * LM_PAGE + LM_MAGIC_OFF + 1, 0x01);
        expect_error(d, page ? "flipped magic of LMDB meta page 1" : "flipped magic of LMDB meta page 0", QZ_ECORRUPT);
        free(d);
    }
}

static void other_lmdb_data_version_is_eversion(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "meta-version");
    lmdb_page_size_is_4096(d);
    char f[512];
    file_of(f, sizeof f, d, "data.mdb");
    xor_byte(f, LM_VERSION_OFF, 0x04);
    xor_byte(f, LM_PAGE + LM_VERSION_OFF, 0x04);
    expect_error(d, "other LMDB data version in both meta pages", QZ_EVERSION);
    free(d);
}

static void set_main_root(const char *dir, uint64_t root)
{
    char f[512];
    file_of(f, sizeof f, dir, "data.mdb");
    int fd = open(f, O_RDWR);
    assert_true(fd >= 0);
    for (int page = 0; page < 2; page++)
        assert_int_equal(pwrite(fd, &root, 8, (off_t)(page * LM_PAGE + LM_MAIN_ROOT_OFF)), 8);
    close(fd);
}

static void lmdb_main_root_pointing_past_the_end_is_ecorrupt(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "meta-root-far");
    lmdb_page_size_is_4096(d);
    set_main_root(d, 0x7fffffffull);
    expect_error(d, "LMDB main root -> page 2^31-1 (past the end)", QZ_ECORRUPT);
    free(d);
}

static void lmdb_main_root_pointing_at_a_meta_page_is_ecorrupt(void **state)
{
    (void)state;
    /* A main database root that names page 1 (a meta page) used to reach
     * liblmdb's "Assertion 'root > 1'" and abort(); the LMDB backend now
     * validates the meta pages before LMDB reads them. */
    char *d = fresh_copy(g_clean, "meta-root-meta");
    lmdb_page_size_is_4096(d);
    set_main_root(d, 1);
    expect_error(d, "LMDB main root -> meta page 1", QZ_ECORRUPT);
    free(d);
}

/* ---- data.mdb: truncated or missing ---------------------------------------------------- */

static void data_mdb_truncated_to_half_is_refused_without_crash(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "trunc-half");
    char f[512];
    file_of(f, sizeof f, d, "data.mdb");
    struct stat sb;
    assert_int_equal(stat(f, &sb), 0);
    assert_int_equal(truncate(f, sb.st_size / 2), 0);
    print_message("data.mdb %lld -> %lld bytes\n", (long long)sb.st_size, (long long)sb.st_size / 2);
    outcome *o = try_open(d, "data.mdb truncated to half");
    if (o->rc == QZ_OK) fail_msg("a half data.mdb opened (%s)", o->intact ? "content intact?" : o->why);
    assert_true(o->rc == QZ_ECORRUPT || o->rc == QZ_EIO);
    free(d);
}

static void data_mdb_truncated_to_zero_or_missing_is_not_a_new_empty_database(void **state)
{
    (void)state;
    for (int c = 0; c < 2; c++) {
        char *d = fresh_copy(g_clean, c ? "data-missing" : "trunc-zero");
        char f[512];
        file_of(f, sizeof f, d, "data.mdb");
        if (c) assert_int_equal(unlink(f), 0);
        else assert_int_equal(truncate(f, 0), 0);
        expect_error(d, c ? "data.mdb deleted" : "data.mdb truncated to 0 bytes", QZ_ECORRUPT);
        /* Without options (no dimensions) it is the same damage, not
         * "dimensions is required for a new database". */
        qz_open_options none = QZ_OPEN_OPTIONS_INIT;
        qz_db *db = NULL;
        assert_int_equal(qz_db_open(d, &none, &db), QZ_ECORRUPT);
        assert_null(db);
        assert_non_null(strstr(qz_errmsg(), "data.mdb is missing or empty"));
        assert_int_equal(qz_db_open(d, NULL, &db), QZ_ECORRUPT);
        assert_null(db);
        free(d);
    }
}

/* ---- quartz.log ---------------------------------------------------------------------- */

typedef struct logrec {
    size_t off, size;
    uint32_t type;
} logrec;

/* Record boundaries of a log: the header (its size is the u32 at byte 12),
 * then len u32, type u32, seq u64, payload, u64 checksum. */
static size_t parse_log(const unsigned char *b, size_t len, logrec *recs, size_t max)
{
    uint32_t hsize;
    memcpy(&hsize, b + 12, 4);
    size_t n = 0, off = hsize;
    while (off + 24 <= len && n < max) {
        uint32_t plen, type;
        memcpy(&plen, b + off, 4);
        memcpy(&type, b + off + 4, 4);
        size_t sz = 24 + (size_t)plen;
        if (off + sz > len) break;
        recs[n++] = (logrec){off, sz, type};
        off += sz;
    }
    return n;
}

static char *crashed_copy_with_log(const char *name, unsigned char **log, size_t *len, logrec *recs, size_t *nrec)
{
    char *d = fresh_copy(g_crashed, name);
    char f[512];
    file_of(f, sizeof f, d, "quartz.log");
    *log = tu_slurp(f, len, 0);
    *nrec = parse_log(*log, *len, recs, 256);
    if (*nrec != EXTRA + EXTRA_KV)
        fail_msg("the crashed process's log holds %zu records, expected %d", *nrec, EXTRA + EXTRA_KV);
    return d;
}

static void garbage_after_the_last_log_record_is_discarded_and_data_stays(void **state)
{
    (void)state;
    unsigned char *log;
    size_t len, n;
    logrec r[256];
    char *d = crashed_copy_with_log("log-garbage-tail", &log, &len, r, &n);
    tu_rng rng = {99};
    unsigned char junk[300];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)tu_next(&rng);
    char f[512];
    file_of(f, sizeof f, d, "quartz.log");
    FILE *fp = fopen(f, "ab");
    fwrite(junk, 1, sizeof junk, fp);
    fclose(fp);
    expect_intact(d, "300 random bytes after the last log record");
    expect_prefix(g_out, EXTRA + EXTRA_KV, "garbage tail");
    free(log);
    free(d);
}

static void torn_last_log_record_is_discarded_and_earlier_data_stays(void **state)
{
    (void)state;
    unsigned char *log;
    size_t len, n;
    logrec r[256];
    char *d = crashed_copy_with_log("log-torn", &log, &len, r, &n);
    char f[512];
    file_of(f, sizeof f, d, "quartz.log");
    assert_int_equal(truncate(f, (off_t)(r[n - 1].off + r[n - 1].size / 2)), 0);
    expect_intact(d, "last log record cut in half");
    /* The cut record (the last kv put) may be gone, as it could be if the
     * process had died while writing it; everything before it stays. */
    size_t p = expect_prefix(g_out, EXTRA + EXTRA_KV - 1, "torn tail");
    print_message("writes recovered: %zu of %d\n", p, EXTRA + EXTRA_KV);
    free(log);
    free(d);
}

static void log_record_claiming_a_huge_length_is_a_torn_tail(void **state)
{
    (void)state;
    unsigned char *log;
    size_t len, n;
    logrec r[256];
    char *d = crashed_copy_with_log("log-huge-len", &log, &len, r, &n);
    char f[512];
    file_of(f, sizeof f, d, "quartz.log");
    /* A frame after the last record: len 1 GiB - 1, KV_PUT, next seq; no payload. */
    unsigned char fr[16];
    uint32_t plen = (1u << 30) - 1, type = 3;
    uint64_t seq;
    memcpy(&seq, log + r[n - 1].off + 8, 8);
    seq++;
    memcpy(fr, &plen, 4);
    memcpy(fr + 4, &type, 4);
    memcpy(fr + 8, &seq, 8);
    FILE *fp = fopen(f, "ab");
    fwrite(fr, 1, sizeof fr, fp);
    fclose(fp);
    expect_intact(d, "record header claiming 1 GiB after the last record");
    expect_prefix(g_out, EXTRA + EXTRA_KV, "huge length");
    free(log);
    free(d);
}

static void corrupt_log_record_in_the_middle_is_ecorrupt(void **state)
{
    (void)state;
    unsigned char *log;
    size_t len, n;
    logrec r[256];
    char *d = crashed_copy_with_log("log-mid", &log, &len, r, &n);
    char f[512];
    file_of(f, sizeof f, d, "quartz.log");
    size_t k = 25;
    xor_byte(f, r[k].off + r[k].size - 12, 0x10); /* inside the payload (the vector) */
    /* Valid records follow the damaged one: dropping them would silently
     * roll back acknowledged writes, so the open is refused. */
    expect_error(d, "flipped byte in log record 25 of 50", QZ_ECORRUPT);
    assert_non_null(strstr(g_out->msg, "refusing to roll back"));
    free(log);
    free(d);
}

static void garbage_log_header_is_ecorrupt(void **state)
{
    (void)state;
    for (int c = 0; c < 3; c++) {
        char *d = fresh_copy(c == 2 ? g_clean : g_crashed, c == 0 ? "log-hdr-magic" : c == 1 ? "log-hdr-sum" : "log-hdr-clean");
        char f[512];
        file_of(f, sizeof f, d, "quartz.log");
        if (c == 0 || c == 2) {
            tu_rng rng = {(uint64_t)c + 5};
            unsigned char junk[32];
            for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)tu_next(&rng);
            int fd = open(f, O_RDWR);
            assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
            close(fd);
        } else {
            xor_byte(f, 17, 0x01); /* base_seq: the header checksum no longer matches */
        }
        expect_error(d,
                     c == 0   ? "random log header (log with records)"
                     : c == 1 ? "flipped base_seq in the log header"
                              : "random log header (empty log after clean close)",
                     QZ_ECORRUPT);
        free(d);
    }
}

static void newer_log_version_is_eversion(void **state)
{
    (void)state;
    char *d = fresh_copy(g_crashed, "log-version");
    char f[512];
    file_of(f, sizeof f, d, "quartz.log");
    int fd = open(f, O_RDWR);
    /* The header's size is at byte 12 and its last 8 bytes are the XXH3 of
     * the bytes before them, whatever the version. */
    unsigned char h[64];
    assert_int_equal(pread(fd, h, 16, 0), 16);
    uint32_t hsize;
    memcpy(&hsize, h + 12, 4);
    assert_true(hsize >= 32 && hsize <= sizeof h);
    assert_int_equal(pread(fd, h, hsize, 0), (ssize_t)hsize);
    uint32_t ver;
    memcpy(&ver, h + 8, 4);
    ver++;
    memcpy(h + 8, &ver, 4);
    uint64_t sum = XXH3_64bits(h, hsize - 8);
    memcpy(h + hsize - 8, &sum, 8);
    assert_int_equal(pwrite(fd, h, hsize, 0), (ssize_t)hsize);
    close(fd);
    expect_error(d, "log header of the next version (valid checksum)", QZ_EVERSION);
    free(d);
}

static void log_shorter_than_its_header_is_refused_or_empty(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "log-short");
    char f[512];
    file_of(f, sizeof f, d, "quartz.log");
    assert_int_equal(truncate(f, 10), 0);
    outcome *o = try_open(d, "quartz.log cut to 10 bytes (clean database)");
    /* Nothing was in it: refusing or opening intact are both sound. */
    assert_true(o->rc == QZ_ECORRUPT || (o->rc == QZ_OK && o->intact));
    free(d);
}

/* ---- META and records written through the storage API --------------------------------- */

static qz_storage *store_open(const char *dir)
{
    qz_storage *s = NULL;
    TU_OK(qz__storage_lmdb_open(dir, 0, &s));
    return s;
}

static void store_put(const char *dir, uint32_t table, const void *k, size_t kl, const void *v, size_t vl, int del)
{
    qz_storage *s = store_open(dir);
    qz_storage_txn *t;
    TU_OK(s->begin(s, 0, &t));
    if (del) TU_OK(s->del(s, t, table, k, kl));
    else TU_OK(s->put(s, t, table, k, kl, v, vl));
    TU_OK(s->commit(s, t));
    s->close(s);
}

static void newer_format_in_meta_is_eversion(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "format-3");
    uint32_t fmt = 3; /* QZ__FORMAT_VERSION + 1 */
    store_put(d, QZ_TABLE_META, "format", 6, &fmt, 4, 0);
    expect_error(d, "META format 3", QZ_EVERSION);
    /* A read-only open refuses it as well. */
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.flags = QZ_OPEN_READONLY;
    qz_db *db = NULL;
    assert_int_equal(qz_db_open(d, &o, &db), QZ_EVERSION);
    assert_null(db);
    free(d);
}

static void missing_or_malformed_format_record_is_ecorrupt(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "format-missing");
    store_put(d, QZ_TABLE_META, "format", 6, NULL, 0, 1);
    expect_error(d, "META format deleted", QZ_ECORRUPT);
    free(d);
    d = fresh_copy(g_clean, "format-short");
    store_put(d, QZ_TABLE_META, "format", 6, "\x01\x00", 2, 0);
    expect_error(d, "META format of 2 bytes", QZ_ECORRUPT);
    free(d);
}

static void newer_options_record_is_eversion(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "options-2");
    qz_storage *s = store_open(d);
    qz_storage_txn *t;
    TU_OK(s->begin(s, 0, &t));
    const void *v;
    size_t vl;
    TU_OK(s->get(s, t, QZ_TABLE_META, "options", 7, &v, &vl));
    assert_int_equal(vl, 48);
    unsigned char rec[48];
    memcpy(rec, v, 48);
    uint32_t ver = 2;
    memcpy(rec, &ver, 4);
    uint64_t sum = XXH3_64bits(rec, 40);
    memcpy(rec + 40, &sum, 8);
    TU_OK(s->put(s, t, QZ_TABLE_META, "options", 7, rec, 48));
    TU_OK(s->commit(s, t));
    s->close(s);
    expect_error(d, "META options version 2 (valid checksum)", QZ_EVERSION);
    free(d);
}

static void vector_record_of_wrong_size_with_valid_checksum_is_ecorrupt(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "vrec-size");
    /* id 5's record rewritten with 15 floats instead of 16, checksum valid. */
    unsigned char key[8], rec[16 + 60 + 8];
    uint64_t id = BASE_ID + 5;
    for (int i = 0; i < 8; i++) key[i] = (unsigned char)(id >> (56 - 8 * i));
    uint64_t seq = 5;
    uint32_t vb = 60, ml = 0;
    memcpy(rec, &seq, 8);
    memcpy(rec + 8, &vb, 4);
    memcpy(rec + 12, &ml, 4);
    float v[DIM];
    make_vec(v, 5);
    memcpy(rec + 16, v, 60);
    uint64_t sum = XXH3_64bits(rec, 76);
    memcpy(rec + 76, &sum, 8);
    store_put(d, QZ_TABLE_VECTORS, key, 8, rec, sizeof rec, 0);
    expect_error(d, "vector record of 60 bytes in a 16-d database", QZ_ECORRUPT);
    free(d);
}

static void id_key(unsigned char key[8], uint64_t id)
{
    for (int i = 0; i < 8; i++) key[i] = (unsigned char)(id >> (56 - 8 * i));
}

/* A vector record removed from data.mdb behind the library's back (no
 * checksum can tell: the record is simply gone) after a clean close, so
 * that no write followed the graph snapshot: the open reports it, rather
 * than reading it as a delete and opening a smaller database. */
static void vector_record_removed_while_closed_is_reported(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "vrec-gone");
    unsigned char key[8];
    id_key(key, BASE_ID + 5);
    store_put(d, QZ_TABLE_VECTORS, key, 8, NULL, 0, 1);
    expect_error(d, "vector record of id 5 removed after a clean close", QZ_ECORRUPT);
    outcome *o = g_out;
    char want[64];
    snprintf(want, sizeof want, "id %llu", (unsigned long long)(BASE_ID + 5));
    assert_non_null(strstr(o->msg, want));
    free(d);
}

/* Removed by another process while the database is open and idle: the
 * index still holds the id, and qz_db_check() names it. */
static void vector_record_removed_under_an_open_database_fails_the_check(void **state)
{
    (void)state;
    char *d = fresh_copy(g_clean, "vrec-gone-open");
    qz_open_options op = opts(QZ_DURABILITY_SYNC);
    qz_db *db = NULL;
    TU_OK(qz_db_open(d, &op, &db));
    TU_OK(qz_db_flush(db));
    TU_OK(qz_db_check(db));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        child_default_signals();
        unsigned char key[8];
        id_key(key, BASE_ID + 7);
        qz_storage *s = NULL;
        qz_storage_txn *t = NULL;
        if (qz__storage_lmdb_open(d, 0, &s) || s->begin(s, 0, &t) || s->del(s, t, QZ_TABLE_VECTORS, key, 8) ||
            s->commit(s, t))
            _exit(3);
        s->close(s);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) fail_msg("waitpid: %s", strerror(errno));
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(qz_db_check(db), QZ_ECORRUPT);
    print_message("check: %s\n", qz_errmsg());
    char want[64];
    snprintf(want, sizeof want, "id %llu has no record", (unsigned long long)(BASE_ID + 7));
    assert_non_null(strstr(qz_errmsg(), want));
    TU_OK(qz_db_close(db));
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pristine_copies_open_intact),
        cmocka_unit_test(flipped_byte_in_a_stored_vector_is_ecorrupt),
        cmocka_unit_test(flipped_byte_in_vector_metadata_is_ecorrupt),
        cmocka_unit_test(flipped_byte_in_vector_record_header_or_checksum_is_ecorrupt),
        cmocka_unit_test(flipped_byte_in_graph_snapshot_chunk_is_ecorrupt),
        cmocka_unit_test(flipped_byte_in_graph_snapshot_header_is_ecorrupt),
        cmocka_unit_test(flipped_byte_in_options_record_is_ecorrupt),
        cmocka_unit_test(flipped_bytes_in_a_kv_value_are_ecorrupt_on_read),
        cmocka_unit_test(damaged_lmdb_meta_page_magic_is_ecorrupt),
        cmocka_unit_test(other_lmdb_data_version_is_eversion),
        cmocka_unit_test(lmdb_main_root_pointing_past_the_end_is_ecorrupt),
        cmocka_unit_test(lmdb_main_root_pointing_at_a_meta_page_is_ecorrupt),
        cmocka_unit_test(data_mdb_truncated_to_half_is_refused_without_crash),
        cmocka_unit_test(data_mdb_truncated_to_zero_or_missing_is_not_a_new_empty_database),
        cmocka_unit_test(garbage_after_the_last_log_record_is_discarded_and_data_stays),
        cmocka_unit_test(torn_last_log_record_is_discarded_and_earlier_data_stays),
        cmocka_unit_test(log_record_claiming_a_huge_length_is_a_torn_tail),
        cmocka_unit_test(corrupt_log_record_in_the_middle_is_ecorrupt),
        cmocka_unit_test(garbage_log_header_is_ecorrupt),
        cmocka_unit_test(newer_log_version_is_eversion),
        cmocka_unit_test(log_shorter_than_its_header_is_refused_or_empty),
        cmocka_unit_test(newer_format_in_meta_is_eversion),
        cmocka_unit_test(missing_or_malformed_format_record_is_ecorrupt),
        cmocka_unit_test(newer_options_record_is_eversion),
        cmocka_unit_test(vector_record_of_wrong_size_with_valid_checksum_is_ecorrupt),
        cmocka_unit_test(vector_record_removed_while_closed_is_reported),
        cmocka_unit_test(vector_record_removed_under_an_open_database_fails_the_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
