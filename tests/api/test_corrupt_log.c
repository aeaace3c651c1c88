/*
 * test_corrupt_log.c - damage in quartz.log is reported, never a silent
 * roll-back of acknowledged writes (public API only).
 *
 * One pristine directory is built once: a database closed cleanly (its log
 * then empty; a copy of that log is kept as "an older copy taken after a
 * reset"), then a child process opens it in SYNC mode with a batch window of
 * a minute (so the background thread applies nothing to LMDB meanwhile and
 * every acknowledged write lives only in the log), inserts, upserts, deletes,
 * puts and deletes kv entries, one log record each, and raise(SIGKILL)s
 * itself, so the log is not reset at close.
 *
 * Each case damages a fresh copy of that directory and opens it:
 *   (1) one flipped bit at several offsets in the middle of the log,
 *   (2) one zeroed 4 KiB page in the middle,
 *   (4) the log deleted,
 *   (5) the log replaced by the older copy (another generation):
 *       QZ_ECORRUPT with a message naming the log, for a writable and for a
 *       read-only open, and (6) every file byte-for-byte as before: a
 *       refused open repairs nothing;
 *   (3) damage only in the last record (a flipped bit, or the file cut in
 *       it): the open succeeds, every earlier write intact, the last one
 *       gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define DIM 32
#define NBASE 100     /* ids 0..NBASE-1, written before the clean close */
#define NKV_BASE 20   /* kv "base/i" */
#define NINS 200      /* ids NBASE..NBASE+NINS-1, inserted by the crashed writer */
#define NUPS 30       /* ids 0..NUPS-1 upserted to version 1 */
#define DEL_FIRST 30  /* ids DEL_FIRST..DEL_LAST-1 deleted */
#define DEL_LAST 40
#define NKV_CRASH 30  /* kv "crash/i" */
#define NKV_DEL 5     /* kv "base/0".."base/4" deleted */
#define NIDS (NBASE + NINS)

static char g_root[256], g_pristine[300], g_oldlog[300];

/* ---- content ---------------------------------------------------------------- */

static void make_vec(float *v, uint64_t id, uint64_t version)
{
    tu_rng r = {id * 7919 + version * 104729 + 1};
    for (int d = 0; d < DIM; d++) v[d] = (float)tu_normal(&r);
}

static size_t make_meta(char *b, size_t cap, uint64_t id, uint64_t version)
{
    return (size_t)snprintf(b, cap, "meta %llu v%llu", (unsigned long long)id, (unsigned long long)version);
}

static qz_open_options opts(uint32_t durability)
{
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.dimensions = DIM;
    o.metric = QZ_METRIC_L2;
    o.M = 8;
    o.ef_construction = 48;
    o.durability = durability;
    return o;
}

/* Expected version of id after all writes (-1: absent). */
static int want_version(uint64_t id)
{
    if (id < NUPS) return 1;
    if (id >= DEL_FIRST && id < DEL_LAST) return -1;
    return id < NIDS ? 0 : -1;
}

/* ---- files ------------------------------------------------------------------ */

static const char *const g_files[] = {"LOCK", "data.mdb", "lock.mdb", "quartz.log"};
#define NFILES (sizeof g_files / sizeof g_files[0])

static char *fresh_copy(const char *name)
{
    char *d = malloc(512);
    snprintf(d, 512, "%s/%s", g_root, name);
    tu_rmtree(d);
    tu_copy_db(g_pristine, d);
    return d;
}

static void path_of(char *out, size_t cap, const char *dir, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

/* The files of a directory, to compare after an open. lock.mdb is LMDB's
 * reader table, rewritten by every open of the environment (it holds no
 * data), so it is not compared. */
typedef struct snapshot {
    unsigned char *b[NFILES];
    size_t n[NFILES];
} snapshot;

static void snap_take(const char *dir, snapshot *s)
{
    for (size_t i = 0; i < NFILES; i++) {
        char p[600];
        path_of(p, sizeof p, dir, g_files[i]);
        s->b[i] = tu_slurp(p, &s->n[i], 1);
    }
}

static void snap_expect_same(const char *dir, const snapshot *s, const char *label)
{
    for (size_t i = 0; i < NFILES; i++) {
        if (!strcmp(g_files[i], "lock.mdb")) continue;
        char p[600];
        path_of(p, sizeof p, dir, g_files[i]);
        size_t n = 0;
        unsigned char *now = tu_slurp(p, &n, 1);
        if (!s->b[i] != !now) fail_msg("%s: %s %s by the refused open", label, g_files[i], now ? "created" : "removed");
        if (now && (n != s->n[i] || memcmp(now, s->b[i], n)))
            fail_msg("%s: the refused open changed %s (%zu -> %zu bytes)", label, g_files[i], s->n[i], n);
        free(now);
    }
    char tmp[600];
    path_of(tmp, sizeof tmp, dir, "quartz.log.tmp");
    struct stat sb;
    if (stat(tmp, &sb) == 0) fail_msg("%s: the refused open left quartz.log.tmp", label);
}

static void snap_free(snapshot *s)
{
    for (size_t i = 0; i < NFILES; i++) free(s->b[i]);
}

/* Record boundaries of a log: u32 header size at byte 12, then records of
 * u32 len, u32 type, u64 seq, payload, u64 checksum. */
typedef struct logrec {
    size_t off, size;
} logrec;

static size_t parse_log(const unsigned char *b, size_t len, logrec *recs, size_t max)
{
    uint32_t hsize;
    memcpy(&hsize, b + 12, 4);
    size_t n = 0, off = hsize;
    while (off + 24 <= len && n < max) {
        uint32_t plen;
        memcpy(&plen, b + off, 4);
        size_t sz = 24 + (size_t)plen;
        if (off + sz > len) break;
        recs[n++] = (logrec){off, sz};
        off += sz;
    }
    if (off != len) fail_msg("log of %zu bytes does not parse (stopped at %zu)", len, off);
    return n;
}

#define MAXREC 1024
#define NWRITES (NINS + NUPS + (DEL_LAST - DEL_FIRST) + NKV_CRASH + NKV_DEL + 1)

static unsigned char *read_log(const char *dir, size_t *len, logrec *recs, size_t *nrec)
{
    char p[600];
    path_of(p, sizeof p, dir, "quartz.log");
    unsigned char *b = tu_slurp(p, len, 1);
    if (!b) fail_msg("no quartz.log in %s", dir);
    *nrec = parse_log(b, *len, recs, MAXREC);
    if (*nrec != NWRITES) fail_msg("the crashed writer's log holds %zu records, expected %d", *nrec, NWRITES);
    return b;
}

static void flip_bit(const char *dir, size_t off, int bit)
{
    char p[600];
    path_of(p, sizeof p, dir, "quartz.log");
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= (unsigned char)(1u << bit);
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

/* ---- checking ------------------------------------------------------------------ */

/* Everything written, as written; with_last: the writer's last write (kv
 * "last") too. */
static void expect_content(qz_db *db, int with_last, const char *label)
{
    float v[DIM], want[DIM];
    char meta[64], wm[64];
    for (uint64_t id = 0; id < NIDS; id++) {
        size_t ml = 0;
        int rc = qz_db_get(db, id, v, DIM, meta, sizeof meta, &ml);
        int ver = want_version(id);
        if (ver < 0) {
            if (rc != QZ_ENOTFOUND) fail_msg("%s: deleted id %llu -> %d", label, (unsigned long long)id, rc);
            continue;
        }
        if (rc != QZ_OK) fail_msg("%s: id %llu -> %d (%s)", label, (unsigned long long)id, rc, qz_errmsg());
        make_vec(want, id, (uint64_t)ver);
        size_t wl = make_meta(wm, sizeof wm, id, (uint64_t)ver);
        if (memcmp(v, want, sizeof v) || ml != wl || memcmp(meta, wm, wl))
            fail_msg("%s: id %llu is not version %d", label, (unsigned long long)id, ver);
    }
    char k[32], val[64], wv[64];
    size_t vl;
    for (int i = 0; i < NKV_BASE; i++) {
        snprintf(k, sizeof k, "base/%d", i);
        int wl = snprintf(wv, sizeof wv, "base value %d", i);
        int rc = qz_kv_get(db, k, strlen(k), val, sizeof val, &vl);
        if (i < NKV_DEL) {
            if (rc != QZ_ENOTFOUND) fail_msg("%s: deleted key %s -> %d", label, k, rc);
        } else if (rc != QZ_OK || vl != (size_t)wl || memcmp(val, wv, vl)) {
            fail_msg("%s: key %s -> %d", label, k, rc);
        }
    }
    for (int i = 0; i < NKV_CRASH; i++) {
        snprintf(k, sizeof k, "crash/%d", i);
        int wl = snprintf(wv, sizeof wv, "written before the kill %d", i);
        int rc = qz_kv_get(db, k, strlen(k), val, sizeof val, &vl);
        if (rc != QZ_OK || vl != (size_t)wl || memcmp(val, wv, vl)) fail_msg("%s: key %s -> %d", label, k, rc);
    }
    int rc = qz_kv_get(db, "last", 4, val, sizeof val, &vl);
    if (with_last && rc != QZ_OK) fail_msg("%s: the last write is missing (%d)", label, rc);
    if (!with_last && rc != QZ_ENOTFOUND) fail_msg("%s: the damaged last write is there (%d)", label, rc);
    TU_OK(qz_db_check(db));
}

/* A damaged directory: both opens refused with QZ_ECORRUPT naming the log,
 * every file unchanged. */
static void expect_refused(const char *dir, const char *label, const char *msg_part)
{
    snapshot before;
    snap_take(dir, &before);
    for (int ro = 0; ro < 2; ro++) {
        qz_open_options o = opts(QZ_DURABILITY_SYNC);
        if (ro) o.flags = QZ_OPEN_READONLY;
        qz_db *db = (qz_db *)1;
        int rc = qz_db_open(dir, &o, &db);
        print_message("%-44s %s -> %d: %s\n", label, ro ? "read-only" : "writable ", rc, qz_errmsg());
        if (rc == QZ_OK) {
            qz_db_close(db);
            fail_msg("%s: the damaged database opened (%s)", label, ro ? "read-only" : "writable");
        }
        assert_null(db);
        if (rc != QZ_ECORRUPT) fail_msg("%s: open -> %d (%s), expected QZ_ECORRUPT: %s", label, rc, qz_strerror(rc), qz_errmsg());
        if (!strstr(qz_errmsg(), "quartz.log")) fail_msg("%s: the message does not name the log: %s", label, qz_errmsg());
        if (msg_part && !strstr(qz_errmsg(), msg_part))
            fail_msg("%s: the message lacks \"%s\": %s", label, msg_part, qz_errmsg());
        snap_expect_same(dir, &before, label);
    }
    snap_free(&before);
}

/* ---- setup ---------------------------------------------------------------------- */

static void child_writes_then_sigkill(const char *dir)
{
    qz_open_options o = opts(QZ_DURABILITY_SYNC);
    o.batch_window_ms = 60000; /* no background apply: the writes live in the log only */
    qz_db *db;
    if (qz_db_open(dir, &o, &db)) _exit(2);
    float v[DIM];
    char m[64], k[32], val[64];
    for (uint64_t id = NBASE; id < NBASE + NINS; id++) {
        make_vec(v, id, 0);
        if (qz_db_insert(db, id, v, DIM, m, make_meta(m, sizeof m, id, 0))) _exit(3);
    }
    for (uint64_t id = 0; id < NUPS; id++) {
        make_vec(v, id, 1);
        if (qz_db_upsert(db, id, v, DIM, m, make_meta(m, sizeof m, id, 1))) _exit(4);
    }
    for (uint64_t id = DEL_FIRST; id < DEL_LAST; id++)
        if (qz_db_delete(db, id)) _exit(5);
    for (int i = 0; i < NKV_CRASH; i++) {
        snprintf(k, sizeof k, "crash/%d", i);
        int vl = snprintf(val, sizeof val, "written before the kill %d", i);
        if (qz_kv_put(db, k, strlen(k), val, (size_t)vl)) _exit(6);
    }
    for (int i = 0; i < NKV_DEL; i++) {
        snprintf(k, sizeof k, "base/%d", i);
        if (qz_kv_delete(db, k, strlen(k))) _exit(7);
    }
    if (qz_kv_put(db, "last", 4, "the last record", 15)) _exit(8);
    raise(SIGKILL); /* every write acknowledged (SYNC); no close, no log reset */
    _exit(9);
}

static int setup(void **state)
{
    (void)state;
    char *t = tu_tempdir();
    snprintf(g_root, sizeof g_root, "%s", t);
    free(t);
    snprintf(g_pristine, sizeof g_pristine, "%s/pristine", g_root);
    snprintf(g_oldlog, sizeof g_oldlog, "%s/old-quartz.log", g_root);

    qz_open_options o = opts(QZ_DURABILITY_SYNC);
    qz_db *db;
    if (qz_db_open(g_pristine, &o, &db)) return -1;
    float v[DIM];
    char m[64], k[32], val[64];
    for (uint64_t id = 0; id < NBASE; id++) {
        make_vec(v, id, 0);
        if (qz_db_insert(db, id, v, DIM, m, make_meta(m, sizeof m, id, 0))) return -1;
    }
    for (int i = 0; i < NKV_BASE; i++) {
        snprintf(k, sizeof k, "base/%d", i);
        int vl = snprintf(val, sizeof val, "base value %d", i);
        if (qz_kv_put(db, k, strlen(k), val, (size_t)vl)) return -1;
    }
    if (qz_db_close(db)) return -1;
    char p[600];
    path_of(p, sizeof p, g_pristine, "quartz.log");
    tu_copy_file(p, g_oldlog); /* the log as a clean close left it: a reset, empty log */

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) child_writes_then_sigkill(g_pristine);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
        fprintf(stderr, "the writer did not die of SIGKILL (status 0x%x)\n", st);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(g_root);
    return 0;
}

/* ---- cases ------------------------------------------------------------------------ */

static void undamaged_copy_opens_with_every_write(void **state)
{
    (void)state;
    char *d = fresh_copy("undamaged");
    qz_open_options o = opts(QZ_DURABILITY_SYNC);
    o.flags = QZ_OPEN_READONLY;
    qz_db *db;
    TU_OK(qz_db_open(d, &o, &db));
    expect_content(db, 1, "undamaged, read-only");
    TU_OK(qz_db_close(db));
    o.flags = 0;
    TU_OK(qz_db_open(d, &o, &db));
    expect_content(db, 1, "undamaged");
    TU_OK(qz_db_close(db));
    TU_OK(qz_db_open(d, &o, &db));
    expect_content(db, 1, "undamaged, reopened");
    TU_OK(qz_db_close(db));
    tu_rmtree(d);
    free(d);
}

/* (1) */
static void flipped_bit_in_the_middle_of_the_log_is_ecorrupt(void **state)
{
    (void)state;
    size_t len, n;
    logrec *r = malloc(MAXREC * sizeof *r);
    unsigned char *log = read_log(g_pristine, &len, r, &n);
    print_message("log of the crashed writer: %zu bytes, %zu records\n", len, n);
    struct {
        size_t off;
        int bit;
        const char *what;
    } cases[] = {
        {len * 3 / 10, 0, "bit 0 at 30% of the log"},
        {len * 2 / 5 + 1, 3, "bit 3 at 40% of the log"},
        {len / 2 + 2, 7, "bit 7 at 50% of the log"},
        {len * 3 / 5 + 3, 5, "bit 5 at 60% of the log"},
        {len * 3 / 4, 1, "bit 1 at 75% of the log"},
        {r[n / 2].off + 2, 4, "length field of the middle record"},
        {r[n / 2].off + 4, 0, "type field of the middle record"},
        {r[n / 3].off + 9, 2, "seq field of a record at 1/3"},
        {r[n / 3].off + r[n / 3].size - 3, 6, "checksum of a record at 1/3"},
        {r[n - 2].off + 20, 1, "payload of the record before the last"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        assert_true(cases[c].off < r[n - 1].off); /* never in the last record */
        char name[32];
        snprintf(name, sizeof name, "flip-%zu", c);
        char *d = fresh_copy(name);
        flip_bit(d, cases[c].off, cases[c].bit);
        expect_refused(d, cases[c].what, "refusing to roll back");
        tu_rmtree(d);
        free(d);
    }
    free(log);
    free(r);
}

/* (2) */
static void zeroed_page_in_the_middle_of_the_log_is_ecorrupt(void **state)
{
    (void)state;
    size_t len, n;
    logrec *r = malloc(MAXREC * sizeof *r);
    unsigned char *log = read_log(g_pristine, &len, r, &n);
    size_t pages = len / 4096;
    assert_true(pages >= 4);
    size_t which[] = {1, pages / 2, pages - 2};
    for (size_t c = 0; c < 3; c++) {
        char name[32], label[64];
        snprintf(name, sizeof name, "zero-page-%zu", c);
        snprintf(label, sizeof label, "zeroed page %zu of %zu", which[c], pages);
        char *d = fresh_copy(name);
        char p[600];
        path_of(p, sizeof p, d, "quartz.log");
        unsigned char zero[4096] = {0};
        int fd = open(p, O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, zero, 4096, (off_t)(which[c] * 4096)), 4096);
        close(fd);
        expect_refused(d, label, "refusing to roll back");
        tu_rmtree(d);
        free(d);
    }
    free(log);
    free(r);
}

/* (3) */
static void damage_in_the_last_record_only_loses_that_record(void **state)
{
    (void)state;
    size_t len, n;
    logrec *r = malloc(MAXREC * sizeof *r);
    unsigned char *log = read_log(g_pristine, &len, r, &n);
    for (int c = 0; c < 3; c++) {
        char name[32];
        snprintf(name, sizeof name, "last-%d", c);
        char *d = fresh_copy(name);
        char p[600];
        path_of(p, sizeof p, d, "quartz.log");
        const char *label;
        if (c == 0) {
            flip_bit(d, r[n - 1].off + r[n - 1].size - 12, 2);
            label = "flipped bit in the last record";
        } else if (c == 1) {
            flip_bit(d, r[n - 1].off + 1, 6); /* its length: runs past the end */
            label = "flipped length bit in the last record";
        } else {
            assert_int_equal(truncate(p, (off_t)(r[n - 1].off + r[n - 1].size / 2)), 0);
            label = "log cut inside the last record";
        }
        qz_open_options o = opts(QZ_DURABILITY_SYNC);
        qz_db *db;
        int rc = qz_db_open(d, &o, &db);
        print_message("%-44s -> %d %s\n", label, rc, qz_errmsg());
        TU_OK(rc);
        expect_content(db, 0, label);
        TU_OK(qz_db_close(db));
        TU_OK(qz_db_open(d, &o, &db));
        expect_content(db, 0, label);
        TU_OK(qz_db_close(db));
        tu_rmtree(d);
        free(d);
    }
    free(log);
    free(r);
}

/* (4) */
static void missing_log_is_ecorrupt(void **state)
{
    (void)state;
    char *d = fresh_copy("log-deleted");
    char p[600];
    path_of(p, sizeof p, d, "quartz.log");
    assert_int_equal(unlink(p), 0);
    expect_refused(d, "quartz.log deleted", "quartz.log is missing");
    tu_rmtree(d);
    free(d);
}

/* (5) */
static void older_copy_of_the_log_is_ecorrupt(void **state)
{
    (void)state;
    char *d = fresh_copy("log-old-copy");
    char p[600];
    path_of(p, sizeof p, d, "quartz.log");
    tu_copy_file(g_oldlog, p);
    expect_refused(d, "quartz.log replaced by an older copy", "belongs to another generation");
    tu_rmtree(d);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(undamaged_copy_opens_with_every_write),
        cmocka_unit_test(flipped_bit_in_the_middle_of_the_log_is_ecorrupt),
        cmocka_unit_test(zeroed_page_in_the_middle_of_the_log_is_ecorrupt),
        cmocka_unit_test(damage_in_the_last_record_only_loses_that_record),
        cmocka_unit_test(missing_log_is_ecorrupt),
        cmocka_unit_test(older_copy_of_the_log_is_ecorrupt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
