/*
 * journal.c - the write-behind log of a durable database (contract: journal.h).
 *
 * Files in the database directory:
 *   LOCK            empty; flock(LOCK_EX|LOCK_NB) by the one writer process
 *                   (a read-only open takes no lock)
 *   data.mdb,       the LMDB environment (storage_lmdb.c): tables meta,
 *   lock.mdb        vectors, graph, kv of quartz/sys/storage.h
 *   quartz.log      the log: a 32-byte header, then checksummed records with
 *                   consecutive sequence numbers (wal_format.h)
 *   quartz.log.tmp  a new log being created; removed at open if found
 *
 * Formats (byte layouts in wal_format.h and docs/file-format.md):
 *   META "format"      u32 LE, QZ_FORMAT_VERSION; a larger value is refused
 *                      (QZ_EVERSION), a missing one in a non-empty
 *                      environment is corruption (QZ_ECORRUPT)
 *   META "journal.seq" u64 LE, seq of the last log record applied to LMDB
 *   VECTORS            key: id as 8 bytes big-endian; value: u64 seq,
 *                      u32 vec_bytes, u32 meta_len, vec, meta, u64 XXH3
 *   KV                 key: the user's key; value: the user's value, u64 XXH3
 *                      (seeded with XXH3 of the key)
 *
 * Write path: qz__journal_put() and friends append one record to the log's
 * memory buffer (wal_write.c) and return its seq; nothing waits for disk.
 * qz__journal_wait() then follows the durability mode:
 *   SYNC     group commit: the waiter becomes the I/O leader or waits for the
 *            running one; one fdatasync covers every record appended before it.
 *   BATCHED  returns at once; the background thread writes+fdatasyncs the log
 *            every window_ms.
 *   NONE     returns at once; the background thread writes (no fdatasync) and
 *            applies when the unapplied bytes pass a threshold, and at flush
 *            and close.
 * In every mode wait blocks while more than max_pending bytes are unapplied
 * (back-pressure).
 *
 * Apply: the background thread, every window_ms (NONE: when kicked), takes
 * the records already written to the log, applies them to LMDB in one write
 * transaction per cycle (split every 64 MiB) together with META
 * "journal.seq", commits (fsynced by LMDB), then frees them from memory.
 * Records are applied from memory, never re-read from the file.
 *
 * Log reset: once the log file exceeds reset_bytes (and at close) the
 * thread checkpoints (wal.h): as I/O leader it writes and fsyncs everything,
 * applies it all, then atomically replaces quartz.log by a new empty log
 * whose base_seq is the last applied seq (tmp file + fsync + rename +
 * directory fsync). Crash safety: LMDB commits before the log is replaced,
 * and LMDB's journal.seq says which records it already holds, so any crash
 * leaves either the old log (its applied records are skipped at replay;
 * replaying them again would be harmless anyway, as every record is an
 * idempotent put/delete) or the new empty one. An acknowledged record is
 * always in the fsynced log, in LMDB, or both.
 *
 * Open: take the lock, check META "format", replay the valid prefix of
 * quartz.log (records after journal.seq; a gap between the two is
 * QZ_ECORRUPT) into LMDB, then start a fresh log, which also discards any
 * torn or corrupt tail. Read-only: no lock, LMDB read-only, and the log's
 * records are kept in in-memory overlays instead of being applied.
 *
 * KV overlay: kv writes are readable before they reach LMDB. Each kv write
 * appends its record and updates an in-memory ordered map (storage_mem.c)
 * under kv_mu, so the map's order of updates is the log order. The map holds
 * key -> (seq, tombstone?, value). An entry is removed after the LMDB commit
 * that contains its seq (unless overwritten since), so a reader that misses
 * in the map finds the value in LMDB. Scans merge the map with an LMDB
 * cursor in key order; the map's snapshot is taken first.
 *
 * Read-only handles keep the log's records (as of their open) in overlays:
 * kv in the kv overlay, vectors in a vector overlay merged by
 * scan_vectors. If a writer process is live, LMDB keeps moving under them:
 * for vectors the record with the higher seq wins; for kv the overlay wins.
 *
 * Callers must not hold a storage transaction of qz__journal_storage() while
 * calling into the journal: a write transaction blocks the apply (flush,
 * close, back-pressure would wait forever) and a read transaction blocks a
 * map resize.
 *
 * Locks: kv_mu (kv writers) -> wal mutex; apply_mu (one applier) -> wal
 * mutex / LMDB writer; mu (thread control and back-pressure) is never held
 * while calling into the others except the wal counters.
 */
#include "wal/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"
#include "util/error.h"
#include "wal/wal.h"
#include "persist/format.h"

#define J_DEFAULT_WINDOW_MS 100u
#define J_KICK_BYTES ((uint64_t)4 << 20)
#define J_MAX_PENDING ((uint64_t)64 << 20)
#define J_RESET_BYTES ((uint64_t)8 << 20)
#define J_APPLY_CHUNK ((size_t)64 << 20)
#define J_MAX_KEY 511u
#define J_READONLY_RETRIES 5

/* Overlay value: u64 seq, u8 flags, payload. */
#define OV_HDR 9u
#define OV_TOMB 1u

struct qz__journal {
    char *dir, *log_path, *tmp_path;
    int lock_fd;
    qz__journal_options o;
    qz_storage *st;    /* LMDB */
    qz_storage *kvov;  /* kv overlay (table KV) */
    qz_storage *vecov; /* read-only: vector records of the log (table VECTORS) */
    qz__wal *wal;      /* NULL when read-only */

    pthread_mutex_t kv_mu;    /* kv appends + overlay updates; guards ovbuf */
    pthread_mutex_t apply_mu; /* one applier; guards scratch */
    pthread_mutex_t mu;       /* the fields below */
    pthread_cond_t cv_bg, cv_done;
    pthread_t thread;
    int thread_started, stop, kick;
    int bg_err;
    char bg_msg[256];
    uint64_t kick_bytes, max_pending, reset_bytes;

    unsigned char *scratch; /* LMDB value being built */
    size_t scratch_cap;
    unsigned char *ovbuf; /* overlay value being built */
    size_t ovbuf_cap;
};

struct qz__jgroup {
    qz__journal *j;
    unsigned char *buf; /* [0,8) group header, then entries */
    size_t len, cap;
    uint32_t count;
    int kv;
};

/* ---- small helpers ------------------------------------------------------ */

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int grow_buf(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return QZ_OK;
    size_t n = *cap ? *cap : 256;
    while (n < need) n = n > SIZE_MAX / 2 ? need : n * 2;
    unsigned char *p = realloc(*buf, n);
    if (!p) return qz__err(QZ_ENOMEM, "journal: out of memory for a %zu-byte buffer", need);
    *buf = p;
    *cap = n;
    return QZ_OK;
}

/* Printable form of a key for messages. */
static void key_repr(char *out, size_t cap, const void *key, size_t klen)
{
    const unsigned char *k = key;
    size_t o = 0;
    for (size_t i = 0; i < klen && o + 8 < cap; i++) {
        if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '"' && k[i] != '\\')
            out[o++] = (char)k[i];
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", k[i]);
    }
    if (o + 8 >= cap && cap > 4) {
        memcpy(out + cap - 4, "...", 4);
        return;
    }
    out[o] = '\0';
}

static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static int check_key(const void *key, size_t klen)
{
    if (!key || klen == 0 || klen > J_MAX_KEY)
        return qz__err(QZ_EINVAL, "key of %zu bytes (keys are 1..%u bytes)", klen, J_MAX_KEY);
    return QZ_OK;
}

static int check_writable(qz__journal *j)
{
    if (!j) return qz__err(QZ_EINVAL, "journal: NULL handle");
    if (j->o.readonly) return qz__err(QZ_EREADONLY, "database %s is open read-only", j->dir);
    pthread_mutex_lock(&j->mu);
    int rc = j->bg_err;
    if (rc) qz__err(rc, "%s", j->bg_msg);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* ---- records ------------------------------------------------------------ */

/* LMDB vector record: u64 seq, u32 vec_bytes, u32 meta_len, vec, meta, u64 XXH3. */
static size_t vrec_size(uint32_t vb, uint32_t ml) { return QZ__VREC_FIXED + (size_t)vb + ml + QZ__VREC_TRAILER; }

static void vrec_encode(unsigned char *p, uint64_t seq, const void *vec, uint32_t vb, const void *meta, uint32_t ml)
{
    qz__put_u64le(p, seq);
    qz__put_u32le(p + 8, vb);
    qz__put_u32le(p + 12, ml);
    if (vb) memcpy(p + QZ__VREC_FIXED, vec, vb);
    if (ml) memcpy(p + QZ__VREC_FIXED + vb, meta, ml);
    size_t n = QZ__VREC_FIXED + (size_t)vb + ml;
    qz__put_u64le(p + n, XXH3_64bits(p, n));
}

static int vrec_parse(const unsigned char *p, size_t n, uint64_t id, uint64_t *seq, const void **vec, uint32_t *vb,
                      const void **meta, uint32_t *ml)
{
    if (n < QZ__VREC_FIXED + QZ__VREC_TRAILER)
        return qz__err(QZ_ECORRUPT, "vector record of id %llu is truncated (%zu bytes)", (unsigned long long)id, n);
    *vb = qz__get_u32le(p + 8);
    *ml = qz__get_u32le(p + 12);
    if (vrec_size(*vb, *ml) != n)
        return qz__err(QZ_ECORRUPT, "vector record of id %llu has inconsistent lengths", (unsigned long long)id);
    if (XXH3_64bits(p, n - QZ__VREC_TRAILER) != qz__get_u64le(p + n - QZ__VREC_TRAILER))
        return qz__err(QZ_ECORRUPT, "vector record of id %llu failed its checksum", (unsigned long long)id);
    *seq = qz__get_u64le(p);
    *vec = p + QZ__VREC_FIXED;
    *meta = p + QZ__VREC_FIXED + *vb;
    return QZ_OK;
}

static int kv_verify(const void *key, size_t klen, const unsigned char *v, size_t vl)
{
    char kr[96];
    if (vl < 8 || qz__kv_value_hash(key, klen, v, vl - 8) != qz__get_u64le(v + vl - 8)) {
        key_repr(kr, sizeof kr, key, klen);
        return qz__err(QZ_ECORRUPT, "key-value entry \"%s\" failed its checksum", kr);
    }
    return QZ_OK;
}

/* ---- applying log operations -------------------------------------------- */

typedef struct apply_ctx {
    qz__journal *j;
    qz_storage_txn *txn;
    int kv_ops;
} apply_ctx;

/* Apply one operation to LMDB (caller holds apply_mu, or is opening). */
static int apply_op(const qz__wal_op *op, uint64_t seq, void *user)
{
    apply_ctx *a = user;
    qz__journal *j = a->j;
    qz_storage *st = j->st;
    unsigned char key[8];
    int rc;
    switch (op->type) {
    case QZ__WAL_VECTOR_PUT: {
        size_t n = vrec_size(op->vec_bytes, op->meta_len);
        QZ_CHECK(grow_buf(&j->scratch, &j->scratch_cap, n));
        vrec_encode(j->scratch, seq, op->vec, op->vec_bytes, op->meta, op->meta_len);
        qz__put_u64be(key, op->id);
        return st->put(st, a->txn, QZ_TABLE_VECTORS, key, 8, j->scratch, n);
    }
    case QZ__WAL_VECTOR_DEL:
        qz__put_u64be(key, op->id);
        rc = st->del(st, a->txn, QZ_TABLE_VECTORS, key, 8);
        return rc == QZ_ENOTFOUND ? QZ_OK : rc;
    case QZ__WAL_KV_PUT: {
        size_t n = (size_t)op->vlen + 8;
        QZ_CHECK(grow_buf(&j->scratch, &j->scratch_cap, n));
        if (op->vlen) memcpy(j->scratch, op->val, op->vlen);
        qz__put_u64le(j->scratch + op->vlen, qz__kv_value_hash(op->key, op->klen, op->val, op->vlen));
        a->kv_ops++;
        return st->put(st, a->txn, QZ_TABLE_KV, op->key, op->klen, j->scratch, n);
    }
    default: /* QZ__WAL_KV_DEL */
        a->kv_ops++;
        rc = st->del(st, a->txn, QZ_TABLE_KV, op->key, op->klen);
        return rc == QZ_ENOTFOUND ? QZ_OK : rc;
    }
}

static int apply_rec(const qz__wal_rec *rec, void *user) { return qz__wal_decode(rec, apply_op, user); }

static int put_journal_seq(qz__journal *j, qz_storage_txn *t, uint64_t seq)
{
    unsigned char v[8];
    qz__put_u64le(v, seq);
    return j->st->put(j->st, t, QZ_TABLE_META, QZ__META_JOURNAL_SEQ, strlen(QZ__META_JOURNAL_SEQ), v, 8);
}

/* Overlay write: key -> seq, flags, payload (caller holds kv_mu or is opening). */
static int ov_put(qz__journal *j, qz_storage *ov, qz_storage_txn *t, uint32_t table, const void *key, size_t klen,
                  uint64_t seq, int tomb, const void *a, size_t an, const void *b, size_t bn)
{
    QZ_CHECK(grow_buf(&j->ovbuf, &j->ovbuf_cap, OV_HDR + an + bn));
    qz__put_u64le(j->ovbuf, seq);
    j->ovbuf[8] = tomb ? OV_TOMB : 0;
    if (an) memcpy(j->ovbuf + OV_HDR, a, an);
    if (bn) memcpy(j->ovbuf + OV_HDR + an, b, bn);
    return ov->put(ov, t, table, key, klen, j->ovbuf, OV_HDR + an + bn);
}

typedef struct ov_ctx {
    qz__journal *j;
    qz_storage_txn *kt, *vt; /* overlay transactions (vt: read-only open only) */
} ov_ctx;

/* kv operations into the kv overlay; vector operations into the vector
 * overlay when there is one (read-only open), else ignored. */
static int ov_op(const qz__wal_op *op, uint64_t seq, void *user)
{
    ov_ctx *c = user;
    qz__journal *j = c->j;
    unsigned char key[8];
    switch (op->type) {
    case QZ__WAL_KV_PUT: return ov_put(j, j->kvov, c->kt, QZ_TABLE_KV, op->key, op->klen, seq, 0, op->val, op->vlen, NULL, 0);
    case QZ__WAL_KV_DEL: return ov_put(j, j->kvov, c->kt, QZ_TABLE_KV, op->key, op->klen, seq, 1, NULL, 0, NULL, 0);
    case QZ__WAL_VECTOR_PUT: {
        if (!c->vt) return QZ_OK;
        size_t n = vrec_size(op->vec_bytes, op->meta_len);
        QZ_CHECK(grow_buf(&j->scratch, &j->scratch_cap, n));
        vrec_encode(j->scratch, seq, op->vec, op->vec_bytes, op->meta, op->meta_len);
        qz__put_u64be(key, op->id);
        return ov_put(j, j->vecov, c->vt, QZ_TABLE_VECTORS, key, 8, seq, 0, j->scratch, n, NULL, 0);
    }
    default:
        if (!c->vt) return QZ_OK;
        qz__put_u64be(key, op->id);
        return ov_put(j, j->vecov, c->vt, QZ_TABLE_VECTORS, key, 8, seq, 1, NULL, 0, NULL, 0);
    }
}

/* Drop overlay entries whose seq is <= applied (they are in LMDB now). */
typedef struct ov_gc {
    unsigned char *keys; /* u16 length + bytes, back to back */
    size_t len, cap;
    uint64_t upto;
} ov_gc;

static int ov_gc_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    ov_gc *g = user;
    if (vl < OV_HDR || qz__get_u64le(v) > g->upto) return 0;
    QZ_CHECK(grow_buf(&g->keys, &g->cap, g->len + 2 + kl));
    g->keys[g->len] = (unsigned char)(kl >> 8);
    g->keys[g->len + 1] = (unsigned char)kl;
    memcpy(g->keys + g->len + 2, k, kl);
    g->len += 2 + kl;
    return 0;
}

static int overlay_gc(qz__journal *j, uint64_t upto)
{
    qz_storage *ov = j->kvov;
    qz_storage_txn *t = NULL;
    QZ_CHECK(ov->begin(ov, 0, &t));
    ov_gc g = {NULL, 0, 0, upto};
    int rc = ov->scan(ov, t, QZ_TABLE_KV, NULL, 0, ov_gc_fn, &g);
    for (size_t o = 0; rc == QZ_OK && o < g.len;) {
        size_t kl = (size_t)g.keys[o] << 8 | g.keys[o + 1];
        rc = ov->del(ov, t, QZ_TABLE_KV, g.keys + o + 2, kl);
        o += 2 + kl;
    }
    free(g.keys);
    if (rc < 0) {
        ov->abort(ov, t);
        return rc;
    }
    return ov->commit(ov, t);
}

/* Apply every record already written to the log (caller holds apply_mu). */
static int apply_pending(qz__journal *j)
{
    while (qz__wal_unapplied_bytes(j->wal) > 0) {
        qz_storage_txn *t = NULL;
        QZ_CHECK(j->st->begin(j->st, 0, &t));
        apply_ctx a = {j, t, 0};
        qz__wal_pos pos;
        int n = qz__wal_pending(j->wal, J_APPLY_CHUNK, apply_rec, &a, &pos);
        if (n <= 0) {
            j->st->abort(j->st, t);
            return n;
        }
        int rc = put_journal_seq(j, t, pos.seq);
        if (rc < 0) {
            j->st->abort(j->st, t);
            return rc;
        }
        QZ_CHECK(j->st->commit(j->st, t));
        qz__wal_mark_applied(j->wal, &pos);
        if (a.kv_ops) QZ_CHECK(overlay_gc(j, pos.seq));
    }
    return QZ_OK;
}

static int apply_all_cb(void *user) { return apply_pending(user); }

/* ---- background thread ------------------------------------------------ */

static int bg_cycle(qz__journal *j)
{
    pthread_mutex_lock(&j->apply_mu);
    int rc = qz__wal_write_out(j->wal, j->o.durability != QZ_DURABILITY_NONE);
    if (rc == QZ_OK) rc = apply_pending(j);
    if (rc == QZ_OK && qz__wal_file_bytes(j->wal) > j->reset_bytes) rc = qz__wal_checkpoint(j->wal, apply_all_cb, j);
    pthread_mutex_unlock(&j->apply_mu);
    return rc;
}

static void *bg_main(void *arg)
{
    qz__journal *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        if (!j->kick) {
            if (j->o.durability == QZ_DURABILITY_NONE) {
                pthread_cond_wait(&j->cv_bg, &j->mu);
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)j->o.window_ms * 1000000u;
                ts.tv_sec += (time_t)(ns / 1000000000u);
                ts.tv_nsec = (long)(ns % 1000000000u);
                pthread_cond_timedwait(&j->cv_bg, &j->mu, &ts);
            }
        }
        if (j->stop) break;
        j->kick = 0;
        pthread_mutex_unlock(&j->mu);
        int rc = bg_cycle(j);
        pthread_mutex_lock(&j->mu);
        if (rc < 0 && !j->bg_err) {
            j->bg_err = rc;
            snprintf(j->bg_msg, sizeof j->bg_msg, "journal: background apply failed: %s", qz__err_msg());
        }
        pthread_cond_broadcast(&j->cv_done);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static void kick_bg(qz__journal *j)
{
    pthread_mutex_lock(&j->mu);
    j->kick = 1;
    pthread_cond_signal(&j->cv_bg);
    pthread_mutex_unlock(&j->mu);
}

static void after_append(qz__journal *j)
{
    if (qz__wal_unapplied_bytes(j->wal) > j->kick_bytes) kick_bg(j);
}

/* ---- open --------------------------------------------------------------- */

static int any_key_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    (void)k, (void)kl, (void)v, (void)vl, (void)user;
    return 1;
}

/* Check META "format"; *applied = META "journal.seq"; *isnew when the
 * environment holds nothing at all. */
static int read_meta(qz__journal *j, qz_storage_txn *t, uint64_t *applied, int *isnew)
{
    qz_storage *st = j->st;
    const void *v;
    size_t vl;
    *applied = 0;
    *isnew = 0;
    int rc = st->get(st, t, QZ_TABLE_META, QZ__META_FORMAT, strlen(QZ__META_FORMAT), &v, &vl);
    if (rc == QZ_ENOTFOUND) {
        for (uint32_t tab = 0; tab < QZ_TABLE_COUNT; tab++) {
            rc = st->scan(st, t, tab, NULL, 0, any_key_fn, NULL);
            if (rc < 0) return rc;
            if (rc == 1)
                return qz__err(QZ_ECORRUPT, "database %s holds data but no format record in META", j->dir);
        }
        *isnew = 1;
        return QZ_OK;
    }
    if (rc < 0) return rc;
    if (vl != 4) return qz__err(QZ_ECORRUPT, "database %s: META format record has %zu bytes, expected 4", j->dir, vl);
    uint32_t fmt = qz__get_u32le(v);
    if (fmt > QZ_FORMAT_VERSION)
        return qz__err(QZ_EVERSION, "database %s has format %u, newer than this library's %u", j->dir, fmt,
                       QZ_FORMAT_VERSION);
    if (fmt == 0) return qz__err(QZ_ECORRUPT, "database %s: META format record is 0", j->dir);
    rc = st->get(st, t, QZ_TABLE_META, QZ__META_JOURNAL_SEQ, strlen(QZ__META_JOURNAL_SEQ), &v, &vl);
    if (rc == QZ_ENOTFOUND) return QZ_OK;
    if (rc < 0) return rc;
    if (vl != 8) return qz__err(QZ_ECORRUPT, "database %s: META journal.seq has %zu bytes, expected 8", j->dir, vl);
    *applied = qz__get_u64le(v);
    return QZ_OK;
}

typedef struct replay_ctx {
    qz__journal *j;
    qz_storage_txn *txn; /* writer: LMDB transaction (replaced every chunk) */
    ov_ctx *ov;          /* reader: overlays */
    uint64_t applied, expect, last;
    size_t bytes;
    int gap;
} replay_ctx;

static int replay_rec(const qz__wal_rec *rec, void *user)
{
    replay_ctx *r = user;
    qz__journal *j = r->j;
    if (rec->seq <= r->applied) return 0; /* already in LMDB */
    if (rec->seq != r->expect) {
        r->gap = 1;
        return qz__err(QZ_ECORRUPT, "%s: records %llu..%llu are missing (LMDB has up to %llu)", j->log_path,
                       (unsigned long long)r->expect, (unsigned long long)rec->seq - 1, (unsigned long long)r->applied);
    }
    int rc;
    if (r->ov) {
        rc = qz__wal_decode(rec, ov_op, r->ov);
    } else {
        apply_ctx a = {j, r->txn, 0};
        rc = qz__wal_decode(rec, apply_op, &a);
    }
    if (rc < 0) return rc;
    r->expect++;
    r->last = rec->seq;
    r->bytes += rec->len;
    if (!r->ov && r->bytes >= J_APPLY_CHUNK) { /* keep LMDB transactions bounded */
        QZ_CHECK(put_journal_seq(j, r->txn, rec->seq));
        rc = j->st->commit(j->st, r->txn);
        r->txn = NULL;
        QZ_CHECK(rc);
        QZ_CHECK(j->st->begin(j->st, 0, &r->txn));
        r->bytes = 0;
    }
    return 0;
}

static int take_lock(qz__journal *j)
{
    if (mkdir(j->dir, 0755) != 0 && errno != EEXIST)
        return qz__err(errno == ENOSPC ? QZ_EFULL : QZ_EIO, "cannot create database directory %s: %s", j->dir,
                       strerror(errno));
    char *p = path_join(j->dir, "LOCK");
    if (!p) return qz__err(QZ_ENOMEM, "journal: out of memory");
    j->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    int e = errno;
    free(p);
    if (j->lock_fd < 0) return qz__err(QZ_EIO, "cannot open %s/LOCK: %s", j->dir, strerror(e));
    if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        e = errno;
        if (e == EWOULDBLOCK || e == EAGAIN)
            return qz__err(QZ_EBUSY, "database directory %s is locked by another process", j->dir);
        return qz__err(QZ_EIO, "cannot lock %s/LOCK: %s", j->dir, strerror(e));
    }
    return QZ_OK;
}

static int open_writer(qz__journal *j, int *created)
{
    QZ_CHECK(take_lock(j));
    if (unlink(j->tmp_path) != 0 && errno != ENOENT)
        return qz__err(QZ_EIO, "cannot remove %s: %s", j->tmp_path, strerror(errno));
    QZ_CHECK(qz__storage_lmdb_open(j->dir, 0, &j->st));
    QZ_CHECK(qz__storage_mem_open(&j->kvov));

    replay_ctx r = {j, NULL, NULL, 0, 0, 0, 0, 0};
    QZ_CHECK(j->st->begin(j->st, 0, &r.txn));
    int isnew = 0;
    qz__wal_replay_info info;
    int rc = read_meta(j, r.txn, &r.applied, &isnew);
    if (rc == QZ_OK && isnew) {
        unsigned char f[4];
        qz__put_u32le(f, QZ_FORMAT_VERSION);
        rc = j->st->put(j->st, r.txn, QZ_TABLE_META, QZ__META_FORMAT, strlen(QZ__META_FORMAT), f, 4);
        if (rc == QZ_OK) rc = put_journal_seq(j, r.txn, 0);
    }
    r.expect = r.applied + 1;
    r.last = r.applied;
    if (rc == QZ_OK) rc = qz__wal_replay_file(j->log_path, replay_rec, &r, &info);
    if (rc == QZ_OK && isnew && info.records > 0)
        rc = qz__err(QZ_ECORRUPT, "%s holds %llu records but the database is empty", j->log_path,
                     (unsigned long long)info.records);
    if (rc == QZ_OK && !info.missing && info.base_seq > r.applied)
        rc = qz__err(QZ_ECORRUPT, "%s starts after record %llu but LMDB only has up to %llu", j->log_path,
                     (unsigned long long)info.base_seq, (unsigned long long)r.applied);
    if (rc == QZ_OK && r.last > r.applied) rc = put_journal_seq(j, r.txn, r.last);
    if (rc < 0) {
        if (r.txn) j->st->abort(j->st, r.txn);
        return rc;
    }
    QZ_CHECK(j->st->commit(j->st, r.txn));
    /* A fresh log replaces the old one, torn tail included. */
    uint64_t base = r.last > info.last_seq ? r.last : info.last_seq;
    QZ_CHECK(qz__wal_open(j->log_path, base, &j->wal));
    *created = isnew;
    return QZ_OK;
}

static int open_reader(qz__journal *j, int *created)
{
    if (!qz__storage_lmdb_exists(j->dir))
        return qz__err(QZ_EIO, "no database in %s (a read-only open needs an existing database)", j->dir);
    QZ_CHECK(qz__storage_lmdb_open(j->dir, QZ__LMDB_READONLY, &j->st));
    for (int attempt = 0;; attempt++) {
        qz_storage_txn *t = NULL;
        QZ_CHECK(j->st->begin(j->st, QZ_TXN_READONLY, &t));
        uint64_t applied = 0;
        int isnew = 0;
        int rc = read_meta(j, t, &applied, &isnew);
        j->st->abort(j->st, t);
        QZ_CHECK(rc);
        if (isnew) return qz__err(QZ_EIO, "no database in %s (a read-only open needs an existing database)", j->dir);

        QZ_CHECK(qz__storage_mem_open(&j->kvov));
        QZ_CHECK(qz__storage_mem_open(&j->vecov));
        ov_ctx oc = {j, NULL, NULL};
        rc = j->kvov->begin(j->kvov, 0, &oc.kt);
        if (rc == QZ_OK) rc = j->vecov->begin(j->vecov, 0, &oc.vt);
        replay_ctx r = {j, NULL, &oc, applied, applied + 1, applied, 0, 0};
        qz__wal_replay_info info;
        if (rc == QZ_OK) rc = qz__wal_replay_file(j->log_path, replay_rec, &r, &info);
        if (rc == QZ_OK && !info.missing && info.base_seq > applied) r.gap = 1;
        if (rc == QZ_OK) {
            rc = j->kvov->commit(j->kvov, oc.kt);
            oc.kt = NULL;
            if (rc == QZ_OK) rc = j->vecov->commit(j->vecov, oc.vt);
            oc.vt = NULL;
        }
        if (oc.kt) j->kvov->abort(j->kvov, oc.kt);
        if (oc.vt) j->vecov->abort(j->vecov, oc.vt);
        if (rc == QZ_OK && !r.gap) break;
        j->kvov->close(j->kvov);
        j->vecov->close(j->vecov);
        j->kvov = j->vecov = NULL;
        /* The writer reset its log between our META read and our log read:
         * read both again. */
        if (!r.gap || attempt + 1 >= J_READONLY_RETRIES) {
            if (r.gap && rc == QZ_OK)
                rc = qz__err(QZ_ECORRUPT, "%s starts after record %llu but LMDB only has up to %llu", j->log_path,
                             (unsigned long long)info.base_seq, (unsigned long long)applied);
            return rc;
        }
    }
    *created = 0;
    return QZ_OK;
}

static void journal_free(qz__journal *j)
{
    if (j->wal) qz__wal_close(j->wal);
    if (j->st) j->st->close(j->st);
    if (j->kvov) j->kvov->close(j->kvov);
    if (j->vecov) j->vecov->close(j->vecov);
    if (j->lock_fd >= 0) close(j->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&j->kv_mu);
    pthread_mutex_destroy(&j->apply_mu);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv_bg);
    pthread_cond_destroy(&j->cv_done);
    free(j->scratch);
    free(j->ovbuf);
    free(j->dir);
    free(j->log_path);
    free(j->tmp_path);
    free(j);
}

int qz__journal_open(const char *dir, const qz__journal_options *o, qz__journal **out, int *created)
{
    if (!out) return qz__err(QZ_EINVAL, "journal: NULL out");
    *out = NULL;
    if (created) *created = 0;
    if (!dir || !*dir || !o) return qz__err(QZ_EINVAL, "journal: no directory or options");
    if (o->durability != QZ_DURABILITY_SYNC && o->durability != QZ_DURABILITY_BATCHED &&
        o->durability != QZ_DURABILITY_NONE)
        return qz__err(QZ_EINVAL, "journal: unknown durability mode %u", o->durability);
    qz__journal *j = calloc(1, sizeof *j);
    if (!j) return qz__err(QZ_ENOMEM, "journal: out of memory");
    j->lock_fd = -1;
    j->o = *o;
    if (!j->o.window_ms) j->o.window_ms = J_DEFAULT_WINDOW_MS;
    j->kick_bytes = J_KICK_BYTES;
    j->max_pending = J_MAX_PENDING;
    j->reset_bytes = J_RESET_BYTES;
    pthread_mutex_init(&j->kv_mu, NULL);
    pthread_mutex_init(&j->apply_mu, NULL);
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv_bg, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&j->cv_done, NULL);
    j->dir = strdup(dir);
    j->log_path = path_join(dir, "quartz.log");
    j->tmp_path = path_join(dir, "quartz.log.tmp");
    if (!j->dir || !j->log_path || !j->tmp_path) {
        journal_free(j);
        return qz__err(QZ_ENOMEM, "journal: out of memory");
    }
    int isnew = 0;
    int rc = o->readonly ? open_reader(j, &isnew) : open_writer(j, &isnew);
    if (rc == QZ_OK && !o->readonly) {
        if (pthread_create(&j->thread, NULL, bg_main, j) != 0)
            rc = qz__err(QZ_ENOMEM, "journal: cannot start the background thread");
        else
            j->thread_started = 1;
    }
    if (rc < 0) {
        journal_free(j);
        return rc;
    }
    if (created) *created = isnew;
    *out = j;
    return QZ_OK;
}

qz_storage *qz__journal_storage(qz__journal *j) { return j ? j->st : NULL; }

qz__wal *qz__journal_wal(qz__journal *j) { return j ? j->wal : NULL; }

void qz__journal_set_limits(qz__journal *j, uint64_t kick_bytes, uint64_t max_pending, uint64_t reset_bytes)
{
    pthread_mutex_lock(&j->mu);
    if (kick_bytes) j->kick_bytes = kick_bytes;
    if (max_pending) j->max_pending = max_pending;
    if (reset_bytes) j->reset_bytes = reset_bytes;
    pthread_mutex_unlock(&j->mu);
}

/* ---- merged scans (overlay + LMDB) -------------------------------------- */

typedef struct ov_ent {
    const unsigned char *key, *val;
    size_t klen, vlen;
    uint64_t seq;
    int tomb;
} ov_ent;

typedef struct ov_list {
    ov_ent *e;
    size_t n, cap;
} ov_list;

static int ov_collect_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    ov_list *l = user;
    if (vl < OV_HDR) return qz__err(QZ_ECORRUPT, "journal: malformed overlay entry");
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        ov_ent *ne = realloc(l->e, nc * sizeof *ne);
        if (!ne) return qz__err(QZ_ENOMEM, "journal: out of memory scanning pending writes");
        l->e = ne;
        l->cap = nc;
    }
    const unsigned char *p = v;
    l->e[l->n++] = (ov_ent){k, p + OV_HDR, kl, vl - OV_HDR, qz__get_u64le(p), (p[8] & OV_TOMB) != 0};
    return 0;
}

/* Called per key in order with the overlay entry and/or the LMDB value. */
typedef int (*merge_fn)(const void *key, size_t klen, const ov_ent *ov, const unsigned char *lv, size_t lvlen,
                        void *user);

typedef struct merge_ctx {
    const ov_list *ov;
    size_t i;
    merge_fn fn;
    void *user;
} merge_ctx;

static int merge_lmdb_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    merge_ctx *m = user;
    while (m->i < m->ov->n) {
        const ov_ent *e = &m->ov->e[m->i];
        int c = key_cmp(e->key, e->klen, k, kl);
        if (c > 0) break;
        m->i++;
        if (c == 0) return m->fn(k, kl, e, v, vl, m->user);
        int rc = m->fn(e->key, e->klen, e, NULL, 0, m->user);
        if (rc) return rc;
    }
    return m->fn(k, kl, NULL, v, vl, m->user);
}

static int merged_scan(qz__journal *j, qz_storage *ovs, uint32_t table, const void *prefix, size_t plen, merge_fn fn,
                       void *user)
{
    ov_list ov = {NULL, 0, 0};
    qz_storage_txn *ot = NULL, *lt = NULL;
    int rc = QZ_OK;
    /* The overlay first: an entry leaves it only after LMDB has it. */
    if (ovs) {
        rc = ovs->begin(ovs, QZ_TXN_READONLY, &ot);
        if (rc == QZ_OK) rc = ovs->scan(ovs, ot, table, prefix, plen, ov_collect_fn, &ov);
    }
    if (rc == QZ_OK) rc = j->st->begin(j->st, QZ_TXN_READONLY, &lt);
    merge_ctx m = {&ov, 0, fn, user};
    if (rc == QZ_OK) rc = j->st->scan(j->st, lt, table, prefix, plen, merge_lmdb_fn, &m);
    while (rc == QZ_OK && m.i < ov.n) {
        const ov_ent *e = &ov.e[m.i++];
        rc = fn(e->key, e->klen, e, NULL, 0, user);
    }
    if (lt) j->st->abort(j->st, lt);
    if (ot) ovs->abort(ovs, ot);
    free(ov.e);
    return rc;
}

typedef struct vec_scan_ctx {
    qz__journal_vector_fn fn;
    void *user;
} vec_scan_ctx;

static int vec_merge_fn(const void *key, size_t klen, const ov_ent *ov, const unsigned char *lv, size_t lvlen,
                        void *user)
{
    vec_scan_ctx *c = user;
    if (klen != 8) return qz__err(QZ_ECORRUPT, "vectors table holds a key of %zu bytes (ids are 8)", klen);
    uint64_t id = qz__get_u64be(key);
    /* Read-only handle racing a live writer: the newer of the two wins. */
    if (ov && lv && lvlen >= 8 && qz__get_u64le(lv) > ov->seq) ov = NULL;
    const unsigned char *rec = lv;
    size_t rlen = lvlen;
    if (ov) {
        if (ov->tomb) return 0;
        rec = ov->val;
        rlen = ov->vlen;
    }
    uint64_t seq = 0;
    const void *vec = NULL, *meta = NULL;
    uint32_t vb = 0, ml = 0;
    QZ_CHECK(vrec_parse(rec, rlen, id, &seq, &vec, &vb, &meta, &ml));
    return c->fn(id, seq, vec, vb, meta, ml, c->user);
}

int qz__journal_scan_vectors(qz__journal *j, qz__journal_vector_fn fn, void *user)
{
    if (!j || !fn) return qz__err(QZ_EINVAL, "journal: bad scan_vectors() arguments");
    if (j->wal && qz__wal_last_seq(j->wal) != qz__wal_applied_seq(j->wal))
        QZ_CHECK(qz__journal_flush(j)); /* pending vector writes must reach LMDB first */
    vec_scan_ctx c = {fn, user};
    return merged_scan(j, j->vecov, QZ_TABLE_VECTORS, NULL, 0, vec_merge_fn, &c);
}

typedef struct kv_scan_ctx {
    qz__journal_kv_fn fn;
    void *user;
} kv_scan_ctx;

static int kv_merge_fn(const void *key, size_t klen, const ov_ent *ov, const unsigned char *lv, size_t lvlen,
                       void *user)
{
    kv_scan_ctx *c = user;
    if (ov) return ov->tomb ? 0 : c->fn(key, klen, ov->val, ov->vlen, c->user);
    QZ_CHECK(kv_verify(key, klen, lv, lvlen));
    return c->fn(key, klen, lv, lvlen - 8, c->user);
}

int qz__journal_kv_scan(qz__journal *j, const void *prefix, size_t plen, qz__journal_kv_fn fn, void *user)
{
    if (!j || !fn || (plen && !prefix)) return qz__err(QZ_EINVAL, "journal: bad kv_scan() arguments");
    kv_scan_ctx c = {fn, user};
    return merged_scan(j, j->kvov, QZ_TABLE_KV, prefix, plen, kv_merge_fn, &c);
}

/* ---- key-value reads ----------------------------------------------------- */

/* Look the key up: 1 and the value copied out (as much as fits), 0 when
 * absent, or an error. */
static int kv_lookup(qz__journal *j, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
    qz_storage *ov = j->kvov;
    qz_storage_txn *t = NULL;
    const void *v;
    size_t vl;
    QZ_CHECK(ov->begin(ov, QZ_TXN_READONLY, &t));
    int rc = ov->get(ov, t, QZ_TABLE_KV, key, klen, &v, &vl);
    if (rc == QZ_OK) {
        const unsigned char *p = v;
        int found = !(p[8] & OV_TOMB);
        if (found) {
            *vlen = vl - OV_HDR;
            if (buf && cap >= *vlen && *vlen) memcpy(buf, p + OV_HDR, *vlen);
        }
        ov->abort(ov, t);
        return found;
    }
    ov->abort(ov, t);
    if (rc != QZ_ENOTFOUND) return rc;

    qz_storage *st = j->st;
    QZ_CHECK(st->begin(st, QZ_TXN_READONLY, &t));
    rc = st->get(st, t, QZ_TABLE_KV, key, klen, &v, &vl);
    if (rc == QZ_OK) rc = kv_verify(key, klen, v, vl);
    if (rc == QZ_OK) {
        *vlen = vl - 8;
        if (buf && cap >= *vlen && *vlen) memcpy(buf, v, *vlen);
        rc = 1;
    } else if (rc == QZ_ENOTFOUND) {
        rc = 0;
    }
    st->abort(st, t);
    return rc;
}

int qz__journal_kv_get(qz__journal *j, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen)
{
    if (!j) return qz__err(QZ_EINVAL, "journal: NULL handle");
    QZ_CHECK(check_key(key, klen));
    size_t n = 0;
    int rc = kv_lookup(j, key, klen, buf, cap, &n);
    if (rc < 0) return rc;
    if (rc == 0) return qz__err(QZ_ENOTFOUND, "no key-value entry under that key");
    if (vlen) *vlen = n;
    if (n > cap || (n && !buf))
        return qz__err(QZ_ETOOSMALL, "value has %zu bytes, the buffer %zu", n, cap);
    return QZ_OK;
}

/* ---- writes -------------------------------------------------------------- */

int qz__journal_put(qz__journal *j, uint64_t id, const void *vec, size_t vec_bytes, const void *meta, size_t meta_len,
                    uint64_t *seq)
{
    QZ_CHECK(check_writable(j));
    if ((vec_bytes && !vec) || (meta_len && !meta) || vec_bytes > UINT32_MAX || meta_len > UINT32_MAX)
        return qz__err(QZ_EINVAL, "journal: bad vector record arguments");
    unsigned char h[QZ__WAL_VECTOR_PUT_FIXED];
    qz__put_u64le(h, id);
    qz__put_u32le(h + 8, (uint32_t)vec_bytes);
    qz__put_u32le(h + 12, (uint32_t)meta_len);
    qz__wal_part parts[3] = {{h, sizeof h}, {vec, vec_bytes}, {meta, meta_len}};
    QZ_CHECK(qz__wal_append(j->wal, QZ__WAL_VECTOR_PUT, parts, 3, seq));
    after_append(j);
    return QZ_OK;
}

int qz__journal_del(qz__journal *j, uint64_t id, uint64_t *seq)
{
    QZ_CHECK(check_writable(j));
    unsigned char h[QZ__WAL_VECTOR_DEL_FIXED];
    qz__put_u64le(h, id);
    qz__wal_part part = {h, sizeof h};
    QZ_CHECK(qz__wal_append(j->wal, QZ__WAL_VECTOR_DEL, &part, 1, seq));
    after_append(j);
    return QZ_OK;
}

/* Append a kv record and mirror it in the overlay (kv_mu held). */
static int kv_append(qz__journal *j, uint32_t type, const qz__wal_part *parts, int n, const qz__wal_rec *overlay_rec,
                     uint64_t *seq)
{
    uint64_t s = 0;
    QZ_CHECK(qz__wal_append(j->wal, type, parts, n, &s));
    qz__wal_rec rec = *overlay_rec;
    rec.seq = s;
    qz_storage_txn *t = NULL;
    ov_ctx oc = {j, NULL, NULL};
    int rc = j->kvov->begin(j->kvov, 0, &t);
    oc.kt = t;
    if (rc == QZ_OK) rc = qz__wal_decode(&rec, ov_op, &oc);
    if (rc == QZ_OK) rc = j->kvov->commit(j->kvov, t);
    else if (t)
        j->kvov->abort(j->kvov, t);
    if (seq) *seq = s;
    return rc;
}

int qz__journal_kv_put(qz__journal *j, const void *key, size_t klen, const void *val, size_t vlen, uint64_t *seq)
{
    QZ_CHECK(check_writable(j));
    QZ_CHECK(check_key(key, klen));
    if ((vlen && !val) || vlen > UINT32_MAX) return qz__err(QZ_EINVAL, "journal: bad key-value arguments");
    /* the overlay decodes from one contiguous payload */
    size_t n = QZ__WAL_KV_PUT_FIXED + klen + vlen;
    unsigned char *p = malloc(n);
    if (!p) return qz__err(QZ_ENOMEM, "journal: out of memory for a %zu-byte value", vlen);
    qz__put_u32le(p, (uint32_t)klen);
    qz__put_u32le(p + 4, (uint32_t)vlen);
    memcpy(p + 8, key, klen);
    if (vlen) memcpy(p + 8 + klen, val, vlen);
    qz__wal_part part = {p, n};
    qz__wal_rec rec = {QZ__WAL_KV_PUT, (uint32_t)n, 0, p};
    pthread_mutex_lock(&j->kv_mu);
    int rc = kv_append(j, QZ__WAL_KV_PUT, &part, 1, &rec, seq);
    pthread_mutex_unlock(&j->kv_mu);
    free(p);
    if (rc == QZ_OK) after_append(j);
    return rc;
}

int qz__journal_kv_del(qz__journal *j, const void *key, size_t klen, uint64_t *seq)
{
    QZ_CHECK(check_writable(j));
    QZ_CHECK(check_key(key, klen));
    unsigned char p[QZ__WAL_KV_DEL_FIXED + J_MAX_KEY];
    qz__put_u32le(p, (uint32_t)klen);
    memcpy(p + 4, key, klen);
    qz__wal_part part = {p, 4 + klen};
    qz__wal_rec rec = {QZ__WAL_KV_DEL, (uint32_t)(4 + klen), 0, p};
    size_t dummy;
    pthread_mutex_lock(&j->kv_mu);
    int rc = kv_lookup(j, key, klen, NULL, 0, &dummy);
    if (rc == 0) rc = qz__err(QZ_ENOTFOUND, "no key-value entry under that key");
    if (rc == 1) rc = kv_append(j, QZ__WAL_KV_DEL, &part, 1, &rec, seq);
    pthread_mutex_unlock(&j->kv_mu);
    if (rc == QZ_OK) after_append(j);
    return rc;
}

/* ---- groups -------------------------------------------------------------- */

int qz__jgroup_begin(qz__journal *j, qz__jgroup **g)
{
    if (!g) return qz__err(QZ_EINVAL, "journal: NULL group");
    *g = NULL;
    QZ_CHECK(check_writable(j));
    qz__jgroup *ng = calloc(1, sizeof *ng);
    if (!ng) return qz__err(QZ_ENOMEM, "journal: out of memory for a group");
    ng->j = j;
    ng->len = QZ__WAL_GROUP_FIXED;
    if (grow_buf(&ng->buf, &ng->cap, 4096) < 0) {
        free(ng);
        return QZ_ENOMEM;
    }
    *g = ng;
    return QZ_OK;
}

static int grp_add(qz__jgroup *g, uint32_t type, const qz__wal_part *parts, int n)
{
    size_t body = 0;
    for (int i = 0; i < n; i++) body += parts[i].n;
    if (g->len + QZ__WAL_GROUP_ENTRY + body > QZ__WAL_MAX_PAYLOAD || body > UINT32_MAX)
        return qz__err(QZ_EFULL, "group exceeds the %u-byte log record limit", (unsigned)QZ__WAL_MAX_PAYLOAD);
    QZ_CHECK(grow_buf(&g->buf, &g->cap, g->len + QZ__WAL_GROUP_ENTRY + body));
    unsigned char *p = g->buf + g->len;
    qz__put_u32le(p, type);
    qz__put_u32le(p + 4, (uint32_t)body);
    p += QZ__WAL_GROUP_ENTRY;
    for (int i = 0; i < n; i++) {
        if (parts[i].n) memcpy(p, parts[i].p, parts[i].n);
        p += parts[i].n;
    }
    g->len += QZ__WAL_GROUP_ENTRY + body;
    g->count++;
    return QZ_OK;
}

int qz__jgroup_put(qz__jgroup *g, uint64_t id, const void *vec, size_t vec_bytes, const void *meta, size_t meta_len)
{
    if (!g) return qz__err(QZ_EINVAL, "journal: NULL group");
    if ((vec_bytes && !vec) || (meta_len && !meta) || vec_bytes > UINT32_MAX || meta_len > UINT32_MAX)
        return qz__err(QZ_EINVAL, "journal: bad vector record arguments");
    unsigned char h[QZ__WAL_VECTOR_PUT_FIXED];
    qz__put_u64le(h, id);
    qz__put_u32le(h + 8, (uint32_t)vec_bytes);
    qz__put_u32le(h + 12, (uint32_t)meta_len);
    qz__wal_part parts[3] = {{h, sizeof h}, {vec, vec_bytes}, {meta, meta_len}};
    return grp_add(g, QZ__WAL_VECTOR_PUT, parts, 3);
}

int qz__jgroup_del(qz__jgroup *g, uint64_t id)
{
    if (!g) return qz__err(QZ_EINVAL, "journal: NULL group");
    unsigned char h[8];
    qz__put_u64le(h, id);
    qz__wal_part part = {h, 8};
    return grp_add(g, QZ__WAL_VECTOR_DEL, &part, 1);
}

int qz__jgroup_kv_put(qz__jgroup *g, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (!g) return qz__err(QZ_EINVAL, "journal: NULL group");
    QZ_CHECK(check_key(key, klen));
    if ((vlen && !val) || vlen > UINT32_MAX) return qz__err(QZ_EINVAL, "journal: bad key-value arguments");
    unsigned char h[8];
    qz__put_u32le(h, (uint32_t)klen);
    qz__put_u32le(h + 4, (uint32_t)vlen);
    qz__wal_part parts[3] = {{h, 8}, {key, klen}, {val, vlen}};
    QZ_CHECK(grp_add(g, QZ__WAL_KV_PUT, parts, 3));
    g->kv = 1;
    return QZ_OK;
}

/* Last state of key inside the group: 1 put, 0 deleted, -1 untouched. */
static int grp_key_state(const qz__jgroup *g, const void *key, size_t klen)
{
    int state = -1;
    size_t off = QZ__WAL_GROUP_FIXED;
    for (uint32_t i = 0; i < g->count; i++) {
        uint32_t type = qz__get_u32le(g->buf + off);
        uint32_t len = qz__get_u32le(g->buf + off + 4);
        const unsigned char *b = g->buf + off + QZ__WAL_GROUP_ENTRY;
        if ((type == QZ__WAL_KV_PUT || type == QZ__WAL_KV_DEL) && qz__get_u32le(b) == klen) {
            const unsigned char *k = b + (type == QZ__WAL_KV_PUT ? 8 : 4);
            if (memcmp(k, key, klen) == 0) state = type == QZ__WAL_KV_PUT;
        }
        off += QZ__WAL_GROUP_ENTRY + len;
    }
    return state;
}

int qz__jgroup_kv_del(qz__jgroup *g, const void *key, size_t klen)
{
    if (!g) return qz__err(QZ_EINVAL, "journal: NULL group");
    QZ_CHECK(check_key(key, klen));
    int state = grp_key_state(g, key, klen);
    if (state < 0) {
        size_t dummy;
        state = kv_lookup(g->j, key, klen, NULL, 0, &dummy);
        if (state < 0) return state;
    }
    if (state == 0) return qz__err(QZ_ENOTFOUND, "no key-value entry under that key");
    unsigned char h[4];
    qz__put_u32le(h, (uint32_t)klen);
    qz__wal_part parts[2] = {{h, 4}, {key, klen}};
    QZ_CHECK(grp_add(g, QZ__WAL_KV_DEL, parts, 2));
    g->kv = 1;
    return QZ_OK;
}

void qz__jgroup_abort(qz__jgroup *g)
{
    if (!g) return;
    free(g->buf);
    free(g);
}

int qz__jgroup_commit(qz__jgroup *g, uint64_t *seq)
{
    if (!g) return qz__err(QZ_EINVAL, "journal: NULL group");
    qz__journal *j = g->j;
    int rc = check_writable(j);
    if (rc == QZ_OK && g->count == 0) {
        if (seq) *seq = qz__wal_last_seq(j->wal);
    } else if (rc == QZ_OK) {
        qz__put_u32le(g->buf, g->count);
        qz__put_u32le(g->buf + 4, 0);
        qz__wal_part part = {g->buf, g->len};
        if (g->kv) {
            qz__wal_rec rec = {QZ__WAL_GROUP, (uint32_t)g->len, 0, g->buf};
            pthread_mutex_lock(&j->kv_mu);
            rc = kv_append(j, QZ__WAL_GROUP, &part, 1, &rec, seq);
            pthread_mutex_unlock(&j->kv_mu);
        } else {
            rc = qz__wal_append(j->wal, QZ__WAL_GROUP, &part, 1, seq);
        }
        if (rc == QZ_OK) after_append(j);
    }
    qz__jgroup_abort(g);
    return rc;
}

/* ---- waiting, flushing, closing ----------------------------------------- */

int qz__journal_wait(qz__journal *j, uint64_t seq)
{
    if (!j) return qz__err(QZ_EINVAL, "journal: NULL handle");
    if (j->o.readonly) return QZ_OK;
    QZ_CHECK(check_writable(j));
    if (j->o.durability == QZ_DURABILITY_SYNC) QZ_CHECK(qz__wal_sync(j->wal, seq));
    if (qz__wal_unapplied_bytes(j->wal) <= j->max_pending) return QZ_OK;
    /* back-pressure: let the background thread catch up */
    pthread_mutex_lock(&j->mu);
    while (!j->bg_err && !j->stop && qz__wal_unapplied_bytes(j->wal) > j->max_pending) {
        j->kick = 1;
        pthread_cond_signal(&j->cv_bg);
        pthread_cond_wait(&j->cv_done, &j->mu);
    }
    int rc = j->bg_err;
    if (rc) qz__err(rc, "%s", j->bg_msg);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

int qz__journal_flush(qz__journal *j)
{
    if (!j) return qz__err(QZ_EINVAL, "journal: NULL handle");
    if (j->o.readonly) return QZ_OK;
    QZ_CHECK(check_writable(j));
    pthread_mutex_lock(&j->apply_mu);
    int rc = qz__wal_write_out(j->wal, 1);
    if (rc == QZ_OK) rc = apply_pending(j);
    pthread_mutex_unlock(&j->apply_mu);
    return rc;
}

int qz__journal_close(qz__journal *j)
{
    if (!j) return QZ_OK;
    int rc = QZ_OK;
    if (j->thread_started) {
        pthread_mutex_lock(&j->mu);
        j->stop = 1;
        pthread_cond_signal(&j->cv_bg);
        pthread_cond_broadcast(&j->cv_done);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thread, NULL);
    }
    if (j->wal) {
        /* write, apply and reset: a clean close leaves an empty log */
        pthread_mutex_lock(&j->apply_mu);
        rc = qz__wal_checkpoint(j->wal, apply_all_cb, j);
        pthread_mutex_unlock(&j->apply_mu);
    }
    journal_free(j); /* leaves the thread's error message alone */
    return rc;
}
