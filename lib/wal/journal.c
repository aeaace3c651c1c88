/*
 * journal.c - durable state over any storage backend (contract: journal.h).
 *
 * The journal turns writes into commits of a qz_storage backend that the
 * caller opened and will close. It knows no directory, lock file or backend
 * file; the only file it may touch is the optional log (o->log_path, and
 * log_path + ".tmp" while a new log is being created).
 *
 * Formats (byte layouts in persist/format.h and docs/file-format.md):
 *   META "format"      u32 LE; 2 for a new backend (vector checksums seeded
 *                      with the id), 1 is still read and written (seed 0), a
 *                      larger value is refused (QZ_EVERSION), a missing one
 *                      in a non-empty backend is corruption (QZ_ECORRUPT)
 *   META "journal.seq" u64 LE, seq of the last record applied to the backend
 *   VECTORS            key: id as 8 bytes big-endian; value: u64 seq,
 *                      u32 vec_bytes, u32 meta_len, vec, meta, u64 XXH3
 *   KV                 key: the user's key; value: the user's value, u64 XXH3
 *                      (seeded with XXH3 of the key)
 *
 * Records: every write is encoded as one record (wal_write.c) in an
 * in-memory block list and gets the next seq; nothing waits for I/O. With a
 * log (log_path set), the records go to the file; without one (log_path
 * NULL) the same block list is used with no file behind it (qz__wal_open_mem)
 * and records simply wait in memory until they are applied.
 *
 * Apply: take the records already written (no log: already appended), apply
 * them to the backend in one write transaction (split every 64 MiB) together
 * with META "journal.seq", commit, then free them from memory. Records are
 * applied from memory, never re-read from the file. A failed backend commit
 * is sticky: the journal records the error and every later write, wait and
 * flush returns it (the backend contract says nothing of the failed
 * transaction remains, and journal.seq is not advanced, so nothing
 * half-applied is visible as committed). A background thread's failure is
 * sticky too (nobody else would see it).
 *
 * When records are applied and when wait() returns:
 *   with a log
 *     SYNC     wait() is a group commit on the log (one fdatasync covers
 *              every record appended before it); the background thread
 *              applies every window_ms.
 *     BATCHED  the background thread writes + fdatasyncs the log and
 *              applies every window_ms.
 *     NONE     the background thread writes (no fdatasync) and applies when
 *              the unapplied bytes pass kick_bytes, and at flush/close.
 *   without a log
 *     SYNC     wait(seq) applies everything pending (under apply_mu, so
 *              concurrent waiters share one backend commit) and returns once
 *              seq is committed. No background thread at all.
 *     BATCHED  applied every window_ms by the background thread.
 *     NONE     applied at flush/close or when the pending bytes pass
 *              kick_bytes (by the background thread).
 *   QZ__J_NO_THREAD: no background thread; the cycle it would run happens
 *   inline, at the first write or wait() after window_ms has passed (SYNC,
 *   BATCHED) or when the pending bytes pass kick_bytes (every mode).
 * In every mode wait() blocks while more than max_pending bytes are
 * unapplied (back-pressure).
 *
 * Log reset (with a log): once the file exceeds reset_bytes (and at close)
 * the journal checkpoints (wal.h): as I/O leader the log writes and fsyncs
 * everything, the journal applies it all, then the log atomically replaces
 * the file by a new empty one whose base_seq is the last applied seq. Crash
 * safety: the backend commits before the log is replaced, and journal.seq
 * says which records it already holds, so any crash leaves either the old
 * log (its applied records are skipped at replay; replaying them again would
 * be harmless anyway, as every record is an idempotent put/delete) or the new
 * empty one. An acknowledged record is always in the fsynced log, in the
 * backend, or both.
 *
 * Open: check META "format"; with a log, read the whole file and verify it
 * (damage followed by valid records is QZ_ECORRUPT, a torn tail is not),
 * check that it belongs to the backend (below), replay its records after
 * journal.seq (a gap between the two is QZ_ECORRUPT) into the backend, then
 * start a fresh log, which also discards a torn tail. Nothing is written
 * before every check passed, so a refused open changes no file. Read-only:
 * the same checks, nothing is written, and the log's records are kept in
 * in-memory overlays instead of being applied.
 *
 * Generations: each log file has a random generation in its header, and
 * the generation of the file it replaced. Every apply transaction stores
 * the current file's generation in META "log.generation" (as does every
 * writable open, after creating its fresh log). At open, with META holding
 * generation G, the file must exist and have generation G, or
 * prev_generation G (a crash after a log reset and before the next apply);
 * anything else is a log that does not belong to this backend (an older
 * copy, another database's log) or a missing log: QZ_ECORRUPT, as either
 * would silently lose acknowledged writes. A backend without the META
 * record (new, or written before generations existed) accepts any log.
 *
 * KV overlay: kv writes are readable before they reach the backend. Each kv
 * write appends its record and updates an in-memory ordered map
 * (storage_mem.c) under kv_mu, so the map's order of updates is the record
 * order. The map holds key -> (seq, tombstone?, value). An entry is removed
 * after the backend commit that contains its seq (unless overwritten since),
 * so a reader that misses in the map finds the value in the backend. Scans
 * merge the map with a backend cursor in key order; the map's snapshot is
 * taken first.
 *
 * Read-only handles keep the log's records (as of their open) in overlays:
 * kv in the kv overlay, vectors in a vector overlay merged by
 * scan_vectors. If a writer process is live, the backend keeps moving under
 * them: for vectors the record with the higher seq wins; for kv the overlay
 * wins.
 *
 * Callers must not hold a storage transaction of the backend while calling
 * into the journal: a write transaction blocks the apply (flush, close,
 * back-pressure would wait forever) and an LMDB read transaction blocks a
 * map resize.
 *
 * Locks: kv_mu (kv writers) -> wal mutex; apply_mu (one applier) -> wal
 * mutex / backend writer / mu; mu (thread control, sticky error,
 * back-pressure) is never held while taking the others, except the wal
 * counters.
 */
#include "wal/journal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "persist/format.h"
#include "storage/storage.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"
#include "wal/wal.h"

#define J_DEFAULT_WINDOW_MS 100u
#define J_KICK_BYTES ((uint64_t)4 << 20)
#define J_MAX_PENDING ((uint64_t)64 << 20)
#define J_RESET_BYTES ((uint64_t)8 << 20)
#define J_APPLY_CHUNK ((size_t)64 << 20)
#define J_READONLY_RETRIES 5

/* Overlay value: u64 seq, u8 flags, payload. */
#define OV_HDR 9u
#define OV_TOMB 1u

struct qz__journal {
    qz__journal_options o; /* o.log_path is log_path below */
    char *log_path, *tmp_path;
    int readonly, use_thread;
    uint32_t format;   /* META "format" */
    qz_storage *st;    /* the backend (not owned) */
    qz_storage *kvov;  /* kv overlay (table KV) */
    qz_storage *vecov; /* read-only: vector records of the log (table VECTORS) */
    qz__wal *wal;      /* NULL when read-only */

    pthread_mutex_t kv_mu;    /* kv appends + overlay updates; guards ovbuf */
    pthread_mutex_t apply_mu; /* one applier; guards scratch */
    pthread_mutex_t mu;       /* the fields below */
    pthread_cond_t cv_bg, cv_done;
    pthread_t thread;
    int thread_started, stop, kick;
    int failed; /* sticky error code, 0 if none */
    char failmsg[512];
    uint64_t kick_bytes, max_pending, reset_bytes;
    uint64_t last_cycle_ns; /* QZ__J_NO_THREAD: when the last cycle ran */
    void (*tick)(void *user);
    void *tick_user;

    unsigned char *scratch; /* backend value being built */
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

static int grow_buf(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return QZ_OK;
    size_t n = *cap ? *cap : 256;
    while (n < need) n = n > SIZE_MAX / 2 ? need : n * 2;
    unsigned char *p = qz__realloc(*buf, n);
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
    if (!key || klen == 0 || klen > QZ_MAX_KEY)
        return qz__err(QZ_EINVAL, "key of %zu bytes (keys are 1..%u bytes)", klen, QZ_MAX_KEY);
    return QZ_OK;
}

/* The sticky error, if any (its message set for the calling thread). */
static int failed_rc(qz__journal *j)
{
    char msg[sizeof j->failmsg];
    pthread_mutex_lock(&j->mu);
    int rc = j->failed;
    if (rc) memcpy(msg, j->failmsg, sizeof msg);
    pthread_mutex_unlock(&j->mu);
    if (rc) qz__err(rc, "%s", msg);
    return rc;
}

/* Make rc sticky: "what: <the current message>". The first failure wins;
 * returns the sticky code with its message. */
static int set_failed(qz__journal *j, int rc, const char *what)
{
    char cause[512], msg[sizeof j->failmsg];
    snprintf(cause, sizeof cause, "%s", qz__err_msg());
    pthread_mutex_lock(&j->mu);
    if (!j->failed) {
        j->failed = rc;
        snprintf(j->failmsg, sizeof j->failmsg, "%.200s: %.300s", what, cause[0] ? cause : qz_strerror(rc));
    }
    rc = j->failed;
    memcpy(msg, j->failmsg, sizeof msg);
    pthread_cond_broadcast(&j->cv_done);
    pthread_mutex_unlock(&j->mu);
    return qz__err(rc, "%s", msg);
}

static int check_writable(qz__journal *j)
{
    if (!j) return qz__err(QZ_EINVAL, "journal: NULL handle");
    if (j->readonly) return qz__err(QZ_EREADONLY, "the database is open read-only");
    return failed_rc(j);
}

/* ---- records ------------------------------------------------------------ */

/* Backend vector record: u64 seq, u32 vec_bytes, u32 meta_len, vec, meta, u64 XXH3. */
static size_t vrec_size(uint32_t vb, uint32_t ml) { return QZ__VREC_FIXED + (size_t)vb + ml + QZ__VREC_TRAILER; }

static void vrec_encode(const qz__journal *j, unsigned char *p, uint64_t id, uint64_t seq, const void *vec,
                        uint32_t vb, const void *meta, uint32_t ml)
{
    qz__put_u64le(p, seq);
    qz__put_u32le(p + 8, vb);
    qz__put_u32le(p + 12, ml);
    if (vb) memcpy(p + QZ__VREC_FIXED, vec, vb);
    if (ml) memcpy(p + QZ__VREC_FIXED + vb, meta, ml);
    size_t n = QZ__VREC_FIXED + (size_t)vb + ml;
    qz__put_u64le(p + n, qz__vrec_hash(p, n, id, j->format));
}

static int vrec_parse(const qz__journal *j, const unsigned char *p, size_t n, uint64_t id, uint64_t *seq,
                      const void **vec, uint32_t *vb, const void **meta, uint32_t *ml)
{
    if (n < QZ__VREC_FIXED + QZ__VREC_TRAILER)
        return qz__err(QZ_ECORRUPT, "vector record under id %llu is truncated (%zu bytes)", (unsigned long long)id, n);
    *vb = qz__get_u32le(p + 8);
    *ml = qz__get_u32le(p + 12);
    if (vrec_size(*vb, *ml) != n)
        return qz__err(QZ_ECORRUPT, "vector record under id %llu has inconsistent lengths", (unsigned long long)id);
    if (qz__vrec_hash(p, n - QZ__VREC_TRAILER, id, j->format) != qz__get_u64le(p + n - QZ__VREC_TRAILER))
        return qz__err(QZ_ECORRUPT, "vector record under id %llu fails its checksum", (unsigned long long)id);
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

/* ---- applying operations -------------------------------------------------- */

typedef struct apply_ctx {
    qz__journal *j;
    qz_storage_txn *txn;
    int kv_ops;
} apply_ctx;

/* Apply one operation to the backend (caller holds apply_mu, or is opening). */
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
        vrec_encode(j, j->scratch, op->id, seq, op->vec, op->vec_bytes, op->meta, op->meta_len);
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

static int put_meta_u64(qz__journal *j, qz_storage_txn *t, const char *key, uint64_t v)
{
    unsigned char b[8];
    qz__put_u64le(b, v);
    return j->st->put(j->st, t, QZ_TABLE_META, key, strlen(key), b, 8);
}

static int put_journal_seq(qz__journal *j, qz_storage_txn *t, uint64_t seq)
{
    return put_meta_u64(j, t, QZ__META_JOURNAL_SEQ, seq);
}

/* Overlay write: key -> seq, flags, payload (caller holds kv_mu or is opening). */
static int ov_put(qz__journal *j, qz_storage *ov, qz_storage_txn *t, uint32_t table, const void *key, size_t klen,
                  uint64_t seq, int tomb, const void *a, size_t an)
{
    QZ_CHECK(grow_buf(&j->ovbuf, &j->ovbuf_cap, OV_HDR + an));
    qz__put_u64le(j->ovbuf, seq);
    j->ovbuf[8] = tomb ? OV_TOMB : 0;
    if (an) memcpy(j->ovbuf + OV_HDR, a, an);
    return ov->put(ov, t, table, key, klen, j->ovbuf, OV_HDR + an);
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
    case QZ__WAL_KV_PUT: return ov_put(j, j->kvov, c->kt, QZ_TABLE_KV, op->key, op->klen, seq, 0, op->val, op->vlen);
    case QZ__WAL_KV_DEL: return ov_put(j, j->kvov, c->kt, QZ_TABLE_KV, op->key, op->klen, seq, 1, NULL, 0);
    case QZ__WAL_VECTOR_PUT: {
        if (!c->vt) return QZ_OK;
        size_t n = vrec_size(op->vec_bytes, op->meta_len);
        QZ_CHECK(grow_buf(&j->scratch, &j->scratch_cap, n));
        vrec_encode(j, j->scratch, op->id, seq, op->vec, op->vec_bytes, op->meta, op->meta_len);
        qz__put_u64be(key, op->id);
        return ov_put(j, j->vecov, c->vt, QZ_TABLE_VECTORS, key, 8, seq, 0, j->scratch, n);
    }
    default:
        if (!c->vt) return QZ_OK;
        qz__put_u64be(key, op->id);
        return ov_put(j, j->vecov, c->vt, QZ_TABLE_VECTORS, key, 8, seq, 1, NULL, 0);
    }
}

/* Drop overlay entries whose seq is <= applied (the backend has them now). */
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

/* Best effort: an entry left behind holds what the backend holds, or newer.
 * The overlay's write transaction excludes kv writers (one writer at a time),
 * so no entry can be overwritten between the scan and the delete. */
static void overlay_gc(qz__journal *j, uint64_t upto)
{
    qz_storage *ov = j->kvov;
    qz_storage_txn *t = NULL;
    if (ov->begin(ov, 0, &t) != QZ_OK) return;
    ov_gc g = {NULL, 0, 0, upto};
    int rc = ov->scan(ov, t, QZ_TABLE_KV, NULL, 0, ov_gc_fn, &g);
    for (size_t o = 0; rc == QZ_OK && o < g.len;) {
        size_t kl = (size_t)g.keys[o] << 8 | g.keys[o + 1];
        rc = ov->del(ov, t, QZ_TABLE_KV, g.keys + o + 2, kl);
        o += 2 + kl;
    }
    qz__free(g.keys);
    if (rc < 0)
        ov->abort(ov, t);
    else
        (void)ov->commit(ov, t);
}

static int has_log(const qz__journal *j) { return j->log_path != NULL; }

/* Apply every record already written (caller holds apply_mu). */
static int apply_pending(qz__journal *j)
{
    while (qz__wal_unapplied_bytes(j->wal) > 0) {
        qz_storage_txn *t = NULL;
        QZ_CHECK(j->st->begin(j->st, 0, &t));
        apply_ctx a = {j, t, 0};
        qz__wal_pos pos;
        uint64_t first = qz__wal_applied_seq(j->wal) + 1;
        int n = qz__wal_pending(j->wal, J_APPLY_CHUNK, apply_rec, &a, &pos);
        if (n <= 0) {
            j->st->abort(j->st, t);
            return n;
        }
        int rc = put_journal_seq(j, t, pos.seq);
        if (rc == QZ_OK && has_log(j))
            rc = put_meta_u64(j, t, QZ__META_LOG_GENERATION, qz__wal_generation(j->wal));
        if (rc < 0) {
            j->st->abort(j->st, t);
            return rc;
        }
        rc = j->st->commit(j->st, t);
        if (rc < 0) {
            char what[160];
            snprintf(what, sizeof what, "journal: the backend commit of records %llu..%llu failed, nothing of it applied",
                     (unsigned long long)first, (unsigned long long)pos.seq);
            return set_failed(j, rc, what);
        }
        qz__wal_mark_applied(j->wal, &pos);
        if (a.kv_ops) overlay_gc(j, pos.seq);
    }
    return QZ_OK;
}

static int apply_all_cb(void *user) { return apply_pending(user); }

/* ---- cycles: background thread, or inline with QZ__J_NO_THREAD ------------ */

/* Write (and, as the mode says, fsync) the log, apply, reset the log when it
 * grew past reset_bytes. Takes apply_mu. */
static int run_cycle(qz__journal *j)
{
    pthread_mutex_lock(&j->apply_mu);
    int rc = failed_rc(j);
    if (rc == QZ_OK) rc = qz__wal_write_out(j->wal, has_log(j) && j->o.durability != QZ__DUR_NONE);
    if (rc == QZ_OK) rc = apply_pending(j);
    if (rc == QZ_OK && has_log(j) && qz__wal_file_bytes(j->wal) > j->reset_bytes)
        rc = qz__wal_checkpoint(j->wal, apply_all_cb, j);
    pthread_mutex_unlock(&j->apply_mu);
    pthread_mutex_lock(&j->mu);
    j->last_cycle_ns = qz__now_ns();
    pthread_mutex_unlock(&j->mu);
    return rc;
}

static void *bg_main(void *arg)
{
    qz__journal *j = arg;
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        if (!j->kick) {
            if (j->o.durability == QZ__DUR_NONE) {
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
        int rc = run_cycle(j);
        if (rc < 0) set_failed(j, rc, "journal: background apply failed");
        pthread_mutex_lock(&j->mu);
        pthread_cond_broadcast(&j->cv_done);
        void (*tick)(void *) = j->tick;
        void *tick_user = j->tick_user;
        if (tick) {
            pthread_mutex_unlock(&j->mu);
            tick(tick_user); /* no journal lock held */
            pthread_mutex_lock(&j->mu);
        }
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

/* QZ__J_NO_THREAD: is the cycle the thread would run due now? */
static int inline_cycle_due(qz__journal *j)
{
    uint64_t pending = qz__wal_unapplied_bytes(j->wal);
    if (pending == 0) return 0;
    pthread_mutex_lock(&j->mu);
    int due = pending > j->kick_bytes ||
              (j->o.durability != QZ__DUR_NONE && qz__now_ns() - j->last_cycle_ns >= (uint64_t)j->o.window_ms * 1000000u);
    pthread_mutex_unlock(&j->mu);
    return due;
}

/* After an append. An inline cycle's failure is not the write's: it is
 * sticky when it matters (a failed commit) and then reported by the next
 * call; anything else is retried at the next opportunity. */
static void after_append(qz__journal *j)
{
    if (j->use_thread) {
        if (qz__wal_unapplied_bytes(j->wal) > j->kick_bytes) kick_bg(j);
    } else if (inline_cycle_due(j)) {
        (void)run_cycle(j);
    }
}

/* ---- open --------------------------------------------------------------- */

static int any_key_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    (void)k, (void)kl, (void)v, (void)vl, (void)user;
    return 1;
}

/* What META says about the journal's state. */
typedef struct meta_state {
    uint64_t applied; /* journal.seq */
    uint64_t gen;     /* log.generation, 0 if absent */
    int isnew;        /* the backend holds nothing at all */
} meta_state;

/* Check META "format" (sets j->format) and read the journal's META records. */
static int read_meta(qz__journal *j, qz_storage_txn *t, meta_state *m)
{
    qz_storage *st = j->st;
    const void *v;
    size_t vl;
    memset(m, 0, sizeof *m);
    int rc = st->get(st, t, QZ_TABLE_META, QZ__META_FORMAT, strlen(QZ__META_FORMAT), &v, &vl);
    if (rc == QZ_ENOTFOUND) {
        for (uint32_t tab = 0; tab < QZ_TABLE_COUNT; tab++) {
            rc = st->scan(st, t, tab, NULL, 0, any_key_fn, NULL);
            if (rc < 0) return rc;
            if (rc == 1) return qz__err(QZ_ECORRUPT, "the database holds data but no format record in META");
        }
        m->isnew = 1;
        j->format = QZ__FORMAT_VERSION;
        return QZ_OK;
    }
    if (rc < 0) return rc;
    if (vl != 4) return qz__err(QZ_ECORRUPT, "META format record has %zu bytes, expected 4", vl);
    uint32_t fmt = qz__get_u32le(v);
    if (fmt > QZ__FORMAT_VERSION)
        return qz__err(QZ_EVERSION, "the database has format %u, newer than this library's %u", fmt,
                       QZ__FORMAT_VERSION);
    if (fmt == 0) return qz__err(QZ_ECORRUPT, "META format record is 0");
    j->format = fmt;
    rc = st->get(st, t, QZ_TABLE_META, QZ__META_JOURNAL_SEQ, strlen(QZ__META_JOURNAL_SEQ), &v, &vl);
    if (rc == QZ_OK) {
        if (vl != 8) return qz__err(QZ_ECORRUPT, "META journal.seq has %zu bytes, expected 8", vl);
        m->applied = qz__get_u64le(v);
    } else if (rc != QZ_ENOTFOUND) {
        return rc;
    }
    rc = st->get(st, t, QZ_TABLE_META, QZ__META_LOG_GENERATION, strlen(QZ__META_LOG_GENERATION), &v, &vl);
    if (rc == QZ_OK) {
        if (vl != 8) return qz__err(QZ_ECORRUPT, "META log.generation has %zu bytes, expected 8", vl);
        m->gen = qz__get_u64le(v);
    } else if (rc != QZ_ENOTFOUND) {
        return rc;
    }
    return QZ_OK;
}

/* Does the log (already verified by qz__wal_replay_buf into *info) belong
 * to the backend described by *m, with nothing missing between the two?
 * *retry is set for the failures a live writer can cause under a reader. */
static int check_log(const qz__journal *j, const qz__wal_replay_info *info, const meta_state *m, int *retry)
{
    *retry = 0;
    if (m->gen) {
        if (info->missing) {
            *retry = 1;
            return qz__err(QZ_ECORRUPT,
                           "%s is missing or empty, but the database was last written through log generation "
                           "%016llx: writes it held may be lost",
                           j->log_path, (unsigned long long)m->gen);
        }
        if (info->generation != m->gen && info->prev_generation != m->gen) {
            *retry = 1;
            return qz__err(QZ_ECORRUPT,
                           "%s belongs to another generation: replaced by an older copy? (the log is generation "
                           "%016llx, which replaced %016llx; the database expects %016llx)",
                           j->log_path, (unsigned long long)info->generation,
                           (unsigned long long)info->prev_generation, (unsigned long long)m->gen);
        }
    }
    if (m->isnew && info->records > 0)
        return qz__err(QZ_ECORRUPT, "%s holds %llu records but the database is empty", j->log_path,
                       (unsigned long long)info->records);
    if (!info->missing && info->base_seq > m->applied) {
        *retry = 1;
        return qz__err(QZ_ECORRUPT,
                       "%s starts after record %llu but the database only has up to %llu: records %llu..%llu are "
                       "missing",
                       j->log_path, (unsigned long long)info->base_seq, (unsigned long long)m->applied,
                       (unsigned long long)m->applied + 1, (unsigned long long)info->base_seq);
    }
    return QZ_OK;
}

typedef struct replay_ctx {
    qz__journal *j;
    qz_storage_txn *txn; /* writer: backend transaction (replaced every chunk) */
    ov_ctx *ov;          /* reader: overlays */
    uint64_t applied, expect, last;
    uint64_t gen; /* writer: generation of the log being replayed (0: none) */
    size_t bytes;
} replay_ctx;

static int replay_rec(const qz__wal_rec *rec, void *user)
{
    replay_ctx *r = user;
    qz__journal *j = r->j;
    if (rec->seq <= r->applied) return 0; /* already in the backend */
    if (rec->seq != r->expect) /* cannot happen after check_log(); kept as a guard */
        return qz__err(QZ_ECORRUPT, "%s: records %llu..%llu are missing (the database has up to %llu)", j->log_path,
                       (unsigned long long)r->expect, (unsigned long long)rec->seq - 1, (unsigned long long)r->applied);
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
    if (!r->ov && r->bytes >= J_APPLY_CHUNK) { /* keep backend transactions bounded */
        QZ_CHECK(put_journal_seq(j, r->txn, rec->seq));
        if (r->gen) QZ_CHECK(put_meta_u64(j, r->txn, QZ__META_LOG_GENERATION, r->gen));
        rc = j->st->commit(j->st, r->txn);
        r->txn = NULL;
        QZ_CHECK(rc);
        QZ_CHECK(j->st->begin(j->st, 0, &r->txn));
        r->bytes = 0;
    }
    return 0;
}

/* Read and verify the log: *buf (free with qz__free) and *info. */
static int read_log(const qz__journal *j, unsigned char **buf, size_t *len, qz__wal_replay_info *info)
{
    QZ_CHECK(qz__wal_load_file(j->log_path, buf, len));
    int rc = qz__wal_replay_buf(*buf, *len, NULL, NULL, info);
    if (rc < 0) {
        qz__free(*buf);
        *buf = NULL;
    }
    return rc;
}

static int open_writer(qz__journal *j, int *created)
{
    if (has_log(j) && unlink(j->tmp_path) != 0 && errno != ENOENT)
        return qz__err(QZ_EIO, "cannot remove %s: %s", j->tmp_path, strerror(errno));
    QZ_CHECK(qz__storage_mem_open(&j->kvov));

    replay_ctx r = {j, NULL, NULL, 0, 0, 0, 0, 0};
    QZ_CHECK(j->st->begin(j->st, 0, &r.txn));
    int dirty = 0, retry = 0;
    meta_state m;
    qz__wal_replay_info info;
    memset(&info, 0, sizeof info);
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = read_meta(j, r.txn, &m);
    if (rc == QZ_OK && has_log(j)) rc = read_log(j, &buf, &len, &info);
    if (rc == QZ_OK && has_log(j)) rc = check_log(j, &info, &m, &retry);
    /* Every check passed: from here on the backend changes. */
    if (rc == QZ_OK && m.isnew) {
        unsigned char f[4];
        qz__put_u32le(f, QZ__FORMAT_VERSION);
        rc = j->st->put(j->st, r.txn, QZ_TABLE_META, QZ__META_FORMAT, strlen(QZ__META_FORMAT), f, 4);
        if (rc == QZ_OK) rc = put_journal_seq(j, r.txn, 0);
        dirty = 1;
    }
    r.applied = m.applied;
    r.expect = m.applied + 1;
    r.last = m.applied;
    r.gen = info.generation;
    if (rc == QZ_OK && has_log(j)) {
        rc = qz__wal_replay_buf(buf, len, replay_rec, &r, &info);
        if (rc == QZ_OK && r.last > r.applied) {
            rc = put_journal_seq(j, r.txn, r.last);
            dirty = 1;
        }
        if (rc == QZ_OK && info.generation && info.generation != m.gen) {
            rc = put_meta_u64(j, r.txn, QZ__META_LOG_GENERATION, info.generation);
            dirty = 1;
        }
    }
    qz__free(buf);
    if (rc < 0) {
        if (r.txn) j->st->abort(j->st, r.txn);
        return rc;
    }
    if (dirty) {
        QZ_CHECK(j->st->commit(j->st, r.txn));
    } else {
        j->st->abort(j->st, r.txn);
    }
    uint64_t base = r.last > info.last_seq ? r.last : info.last_seq;
    if (!has_log(j)) {
        QZ_CHECK(qz__wal_open_mem(base, &j->wal));
        *created = m.isnew;
        return QZ_OK;
    }
    /* A fresh log replaces the old one, torn tail included; it names the
     * generation the backend now holds as the one it replaced, so a crash
     * before the META update below still opens. */
    uint64_t prev = info.generation ? info.generation : m.gen;
    QZ_CHECK(qz__wal_open(j->log_path, base, prev, &j->wal));
    qz_storage_txn *t = NULL;
    QZ_CHECK(j->st->begin(j->st, 0, &t));
    rc = put_meta_u64(j, t, QZ__META_LOG_GENERATION, qz__wal_generation(j->wal));
    if (rc < 0) {
        j->st->abort(j->st, t);
        return rc;
    }
    QZ_CHECK(j->st->commit(j->st, t));
    *created = m.isnew;
    return QZ_OK;
}

static int open_reader(qz__journal *j, int *created)
{
    for (int attempt = 0;; attempt++) {
        qz_storage_txn *t = NULL;
        QZ_CHECK(j->st->begin(j->st, QZ_TXN_READONLY, &t));
        meta_state m;
        int rc = read_meta(j, t, &m);
        j->st->abort(j->st, t);
        QZ_CHECK(rc);
        if (m.isnew) return qz__err(QZ_ENOTFOUND, "the backend holds no database (a read-only open needs one)");

        QZ_CHECK(qz__storage_mem_open(&j->kvov));
        QZ_CHECK(qz__storage_mem_open(&j->vecov));
        if (!has_log(j)) break;
        qz__wal_replay_info info;
        memset(&info, 0, sizeof info);
        unsigned char *buf = NULL;
        size_t len = 0;
        int retry = 0;
        rc = read_log(j, &buf, &len, &info);
        if (rc == QZ_OK) rc = check_log(j, &info, &m, &retry);
        ov_ctx oc = {j, NULL, NULL};
        if (rc == QZ_OK) rc = j->kvov->begin(j->kvov, 0, &oc.kt);
        if (rc == QZ_OK) rc = j->vecov->begin(j->vecov, 0, &oc.vt);
        replay_ctx r = {j, NULL, &oc, m.applied, m.applied + 1, m.applied, 0, 0};
        if (rc == QZ_OK) rc = qz__wal_replay_buf(buf, len, replay_rec, &r, &info);
        qz__free(buf);
        if (rc == QZ_OK) {
            rc = j->kvov->commit(j->kvov, oc.kt);
            oc.kt = NULL;
            if (rc == QZ_OK) rc = j->vecov->commit(j->vecov, oc.vt);
            oc.vt = NULL;
        }
        if (oc.kt) j->kvov->abort(j->kvov, oc.kt);
        if (oc.vt) j->vecov->abort(j->vecov, oc.vt);
        if (rc == QZ_OK) break;
        j->kvov->close(j->kvov);
        j->vecov->close(j->vecov);
        j->kvov = j->vecov = NULL;
        /* A live writer may have reset its log (once or more) between our
         * META read and our log read: read both again. */
        if (!retry || attempt + 1 >= J_READONLY_RETRIES) return rc;
    }
    *created = 0;
    return QZ_OK;
}

static void journal_free(qz__journal *j)
{
    if (j->wal) qz__wal_close(j->wal);
    if (j->kvov) j->kvov->close(j->kvov);
    if (j->vecov) j->vecov->close(j->vecov);
    pthread_mutex_destroy(&j->kv_mu);
    pthread_mutex_destroy(&j->apply_mu);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv_bg);
    pthread_cond_destroy(&j->cv_done);
    qz__free(j->scratch);
    qz__free(j->ovbuf);
    qz__free(j->log_path);
    qz__free(j->tmp_path);
    qz__free(j);
}

static int check_backend(const qz_storage *st)
{
    if (!st) return qz__err(QZ_EINVAL, "journal: NULL storage backend");
    if (st->struct_size < offsetof(qz_storage, close) + sizeof st->close)
        return qz__err(QZ_EINVAL, "journal: storage backend method table of %u bytes is too small (%zu expected)",
                       st->struct_size, sizeof *st);
    if (!st->begin || !st->get || !st->put || !st->del || !st->scan || !st->commit || !st->abort)
        return qz__err(QZ_EINVAL, "journal: storage backend lacks a method (begin, get, put, del, scan, commit, abort)");
    return QZ_OK;
}

int qz__journal_open(qz_storage *st, const qz__journal_options *o, qz__journal **out, int *created)
{
    if (!out) return qz__err(QZ_EINVAL, "journal: NULL out");
    *out = NULL;
    if (created) *created = 0;
    QZ_CHECK(check_backend(st));
    if (!o) return qz__err(QZ_EINVAL, "journal: NULL options");
    if (o->durability != QZ__DUR_SYNC && o->durability != QZ__DUR_BATCHED && o->durability != QZ__DUR_NONE)
        return qz__err(QZ_EINVAL, "journal: unknown durability mode %u", o->durability);
    if (o->flags & ~(QZ__J_READONLY | QZ__J_NO_THREAD))
        return qz__err(QZ_EINVAL, "journal: unknown flags 0x%x", o->flags & ~(QZ__J_READONLY | QZ__J_NO_THREAD));
    if (o->log_path && !*o->log_path) return qz__err(QZ_EINVAL, "journal: empty log path");
    qz__journal *j = qz__calloc(1, sizeof *j);
    if (!j) return qz__err(QZ_ENOMEM, "journal: out of memory");
    j->o = *o;
    j->st = st;
    j->readonly = (o->flags & QZ__J_READONLY) != 0;
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
    if (o->log_path) {
        j->log_path = qz__strdup2(o->log_path, NULL);
        j->tmp_path = qz__strdup2(o->log_path, ".tmp");
        if (!j->log_path || !j->tmp_path) {
            journal_free(j);
            return qz__err(QZ_ENOMEM, "journal: out of memory");
        }
    }
    j->o.log_path = j->log_path;
    int isnew = 0;
    int rc = j->readonly ? open_reader(j, &isnew) : open_writer(j, &isnew);
    /* No thread when nothing would be left for it: read-only, asked not to,
     * or SYNC without a log (wait() applies). */
    j->use_thread = !j->readonly && !(o->flags & QZ__J_NO_THREAD) && (has_log(j) || o->durability != QZ__DUR_SYNC);
    j->last_cycle_ns = qz__now_ns();
    if (rc == QZ_OK && j->use_thread) {
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

uint32_t qz__journal_format(qz__journal *j) { return j ? j->format : 0; }

qz__wal *qz__journal_wal(qz__journal *j) { return j ? j->wal : NULL; }

void qz__journal_set_limits(qz__journal *j, uint64_t kick_bytes, uint64_t max_pending, uint64_t reset_bytes)
{
    pthread_mutex_lock(&j->mu);
    if (kick_bytes) j->kick_bytes = kick_bytes;
    if (max_pending) j->max_pending = max_pending;
    if (reset_bytes) j->reset_bytes = reset_bytes;
    pthread_mutex_unlock(&j->mu);
}

void qz__journal_set_tick(qz__journal *j, void (*fn)(void *user), void *user)
{
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    j->tick = fn;
    j->tick_user = user;
    pthread_mutex_unlock(&j->mu);
}

/* ---- merged scans (overlay + backend) ----------------------------------- */

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

/* An overlay value (u64 seq, u8 flags, payload) as an entry. */
static ov_ent ov_decode(const void *k, size_t kl, const void *v, size_t vl)
{
    const unsigned char *p = v;
    return (ov_ent){k, p + OV_HDR, kl, vl - OV_HDR, qz__get_u64le(p), (p[8] & OV_TOMB) != 0};
}

/* The vector record of one id given its overlay entry (NULL: none) and its
 * backend value (NULL: none): the overlay's, unless the backend's is newer
 * (a read-only handle racing a live writer). NULL when the id has none (a
 * tombstone, or neither). */
static const unsigned char *vec_pick(const ov_ent *ov, const unsigned char *lv, size_t lvlen, size_t *rlen)
{
    if (ov && lv && lvlen >= 8 && qz__get_u64le(lv) > ov->seq) ov = NULL;
    if (ov) {
        *rlen = ov->vlen;
        return ov->tomb ? NULL : ov->val;
    }
    *rlen = lvlen;
    return lv;
}

static int ov_collect_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    ov_list *l = user;
    if (vl < OV_HDR) return qz__err(QZ_ECORRUPT, "journal: malformed overlay entry");
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        ov_ent *ne = qz__realloc(l->e, nc * sizeof *ne);
        if (!ne) return qz__err(QZ_ENOMEM, "journal: out of memory scanning pending writes");
        l->e = ne;
        l->cap = nc;
    }
    l->e[l->n++] = ov_decode(k, kl, v, vl);
    return 0;
}

/* Called per key in order with the overlay entry and/or the backend value. */
typedef int (*merge_fn)(const void *key, size_t klen, const ov_ent *ov, const unsigned char *lv, size_t lvlen,
                        void *user);

typedef struct merge_ctx {
    const ov_list *ov;
    size_t i;
    merge_fn fn;
    void *user;
} merge_ctx;

static int merge_backend_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
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
    /* The overlay first: an entry leaves it only after the backend has it. */
    if (ovs) {
        rc = ovs->begin(ovs, QZ_TXN_READONLY, &ot);
        if (rc == QZ_OK) rc = ovs->scan(ovs, ot, table, prefix, plen, ov_collect_fn, &ov);
    }
    if (rc == QZ_OK) rc = j->st->begin(j->st, QZ_TXN_READONLY, &lt);
    merge_ctx m = {&ov, 0, fn, user};
    if (rc == QZ_OK) rc = j->st->scan(j->st, lt, table, prefix, plen, merge_backend_fn, &m);
    while (rc == QZ_OK && m.i < ov.n) {
        const ov_ent *e = &ov.e[m.i++];
        rc = fn(e->key, e->klen, e, NULL, 0, user);
    }
    if (lt) j->st->abort(j->st, lt);
    if (ot) ovs->abort(ovs, ot);
    qz__free(ov.e);
    return rc;
}

typedef struct vec_scan_ctx {
    qz__journal *j;
    qz__journal_vector_fn fn;
    void *user;
} vec_scan_ctx;

static int vec_merge_fn(const void *key, size_t klen, const ov_ent *ov, const unsigned char *lv, size_t lvlen,
                        void *user)
{
    vec_scan_ctx *c = user;
    if (klen != 8) return qz__err(QZ_ECORRUPT, "vectors table holds a key of %zu bytes (ids are 8)", klen);
    uint64_t id = qz__get_u64be(key);
    size_t rlen = 0;
    const unsigned char *rec = vec_pick(ov, lv, lvlen, &rlen);
    if (!rec) return 0;
    uint64_t seq = 0;
    const void *vec = NULL, *meta = NULL;
    uint32_t vb = 0, ml = 0;
    QZ_CHECK(vrec_parse(c->j, rec, rlen, id, &seq, &vec, &vb, &meta, &ml));
    return c->fn ? c->fn(id, seq, vec, vb, meta, ml, c->user) : 0;
}

int qz__journal_scan_vectors(qz__journal *j, qz__journal_vector_fn fn, void *user)
{
    if (!j || !fn) return qz__err(QZ_EINVAL, "journal: bad scan_vectors() arguments");
    if (j->wal && qz__wal_last_seq(j->wal) != qz__wal_applied_seq(j->wal))
        QZ_CHECK(qz__journal_flush(j)); /* pending vector writes must reach the backend first */
    vec_scan_ctx c = {j, fn, user};
    return merged_scan(j, j->vecov, QZ_TABLE_VECTORS, NULL, 0, vec_merge_fn, &c);
}

/* ---- point reads of vector records ------------------------------------ */

uint64_t qz__journal_applied_seq(qz__journal *j) { return j->wal ? qz__wal_applied_seq(j->wal) : UINT64_MAX; }

uint64_t qz__journal_last_seq(qz__journal *j) { return j->wal ? qz__wal_last_seq(j->wal) : UINT64_MAX; }

/* One vector record under id, from the read-only overlay (the log's
 * records) or the backend, chosen as scan_vectors chooses. 1 found (*rec,
 * *rlen valid for the transactions), 0 absent or deleted, < 0 error. */
static int vec_lookup(qz__journal *j, qz_storage_txn *ot, qz_storage_txn *lt, const unsigned char key[8],
                      const unsigned char **rec, size_t *rlen)
{
    const void *v = NULL, *bv = NULL;
    size_t vl = 0, bvl = 0;
    ov_ent ov;
    int have_ov = 0;
    if (ot) {
        int rc = j->vecov->get(j->vecov, ot, QZ_TABLE_VECTORS, key, 8, &v, &vl);
        if (rc < 0 && rc != QZ_ENOTFOUND) return rc;
        if (rc == QZ_OK) {
            if (vl < OV_HDR) return qz__err(QZ_ECORRUPT, "journal: malformed overlay entry");
            ov = ov_decode(key, 8, v, vl);
            have_ov = 1;
        }
    }
    int rc = j->st->get(j->st, lt, QZ_TABLE_VECTORS, key, 8, &bv, &bvl);
    if (rc < 0 && rc != QZ_ENOTFOUND) return rc;
    *rec = vec_pick(have_ov ? &ov : NULL, rc == QZ_OK ? bv : NULL, rc == QZ_OK ? bvl : 0, rlen);
    return *rec != NULL;
}

int qz__journal_read_vectors(qz__journal *j, size_t n, const uint64_t *ids, const uint64_t *seqs, size_t vec_bytes,
                             void *const *dst, unsigned char *ok)
{
    qz_storage_txn *ot = NULL, *lt = NULL;
    int rc = QZ_OK;
    if (j->vecov) rc = j->vecov->begin(j->vecov, QZ_TXN_READONLY, &ot);
    if (rc == QZ_OK) rc = j->st->begin(j->st, QZ_TXN_READONLY, &lt);
    for (size_t i = 0; i < n && rc == QZ_OK; i++) {
        unsigned char key[8];
        qz__put_u64be(key, ids[i]);
        const unsigned char *rec = NULL;
        size_t rlen = 0;
        ok[i] = 0;
        int f = vec_lookup(j, ot, lt, key, &rec, &rlen);
        if (f < 0) {
            rc = f;
            break;
        }
        if (!f) continue;
        uint64_t seq;
        const void *vec, *meta;
        uint32_t vb, ml;
        rc = vrec_parse(j, rec, rlen, ids[i], &seq, &vec, &vb, &meta, &ml);
        if (rc < 0) break;
        if (vb != vec_bytes) {
            rc = qz__err(QZ_ECORRUPT, "vector record under id %llu holds %u bytes of vector, the database's are %zu",
                         (unsigned long long)ids[i], vb, vec_bytes);
            break;
        }
        memcpy(dst[i], vec, vb);
        ok[i] = seq == seqs[i] ? 1 : 2; /* 2: the id was written again since */
    }
    if (lt) j->st->abort(j->st, lt);
    if (ot) j->vecov->abort(j->vecov, ot);
    return rc;
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

/* ---- verification ----------------------------------------------------------- */

static int verify_vec_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    qz__journal *j = user;
    if (kl != 8) return qz__err(QZ_ECORRUPT, "vectors table holds a key of %zu bytes (ids are 8)", kl);
    uint64_t seq;
    const void *vec, *meta;
    uint32_t vb, ml;
    return vrec_parse(j, v, vl, qz__get_u64be(k), &seq, &vec, &vb, &meta, &ml);
}

static int verify_kv_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    (void)user;
    if (kl == 0 || kl > QZ_MAX_KEY) return qz__err(QZ_ECORRUPT, "key-value table holds a key of %zu bytes", kl);
    return kv_verify(k, kl, v, vl);
}

static int verify_ov_vec_fn(const void *k, size_t kl, const void *v, size_t vl, void *user)
{
    qz__journal *j = user;
    const unsigned char *p = v;
    if (kl != 8 || vl < OV_HDR) return qz__err(QZ_ECORRUPT, "journal: malformed pending vector record");
    if (p[8] & OV_TOMB) return 0;
    return verify_vec_fn(k, kl, p + OV_HDR, vl - OV_HDR, j);
}

static int verify_pending_fn(const qz__wal_rec *rec, void *user)
{
    (void)user;
    return qz__wal_decode(rec, NULL, NULL);
}

int qz__journal_verify(qz__journal *j)
{
    if (!j) return qz__err(QZ_EINVAL, "journal: NULL handle");
    qz_storage_txn *t = NULL;
    QZ_CHECK(j->st->begin(j->st, QZ_TXN_READONLY, &t));
    int rc = j->st->scan(j->st, t, QZ_TABLE_VECTORS, NULL, 0, verify_vec_fn, j);
    if (rc == QZ_OK) rc = j->st->scan(j->st, t, QZ_TABLE_KV, NULL, 0, verify_kv_fn, NULL);
    j->st->abort(j->st, t);
    QZ_CHECK(rc);
    if (j->vecov) { /* read-only: the log's vector records */
        QZ_CHECK(j->vecov->begin(j->vecov, QZ_TXN_READONLY, &t));
        rc = j->vecov->scan(j->vecov, t, QZ_TABLE_VECTORS, NULL, 0, verify_ov_vec_fn, j);
        j->vecov->abort(j->vecov, t);
        QZ_CHECK(rc);
    }
    if (j->wal) { /* records written but not applied yet */
        qz__wal_pos pos;
        pthread_mutex_lock(&j->apply_mu);
        rc = qz__wal_pending(j->wal, SIZE_MAX, verify_pending_fn, NULL, &pos);
        pthread_mutex_unlock(&j->apply_mu);
        if (rc < 0) return rc;
    }
    return QZ_OK;
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
    if (n > cap || (n && !buf)) return qz__err(QZ_ETOOSMALL, "value has %zu bytes, the buffer %zu", n, cap);
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
    if (rc == QZ_OK)
        rc = j->kvov->commit(j->kvov, t);
    else if (t)
        j->kvov->abort(j->kvov, t);
    if (seq) *seq = s;
    /* The record is appended and will be applied, but readers would not see
     * it until then: past that point a failure sticks. */
    if (rc < 0) rc = set_failed(j, rc, "journal: updating the key-value overlay after appending its record");
    return rc;
}

int qz__journal_kv_put(qz__journal *j, const void *key, size_t klen, const void *val, size_t vlen, uint64_t *seq)
{
    QZ_CHECK(check_writable(j));
    QZ_CHECK(check_key(key, klen));
    if ((vlen && !val) || vlen > UINT32_MAX) return qz__err(QZ_EINVAL, "journal: bad key-value arguments");
    /* the overlay decodes from one contiguous payload */
    size_t n = QZ__WAL_KV_PUT_FIXED + klen + vlen;
    unsigned char *p = qz__malloc(n);
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
    qz__free(p);
    if (rc == QZ_OK) after_append(j);
    return rc;
}

int qz__journal_kv_del(qz__journal *j, const void *key, size_t klen, uint64_t *seq)
{
    QZ_CHECK(check_writable(j));
    QZ_CHECK(check_key(key, klen));
    unsigned char p[QZ__WAL_KV_DEL_FIXED + QZ_MAX_KEY];
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
    qz__jgroup *ng = qz__calloc(1, sizeof *ng);
    if (!ng) return qz__err(QZ_ENOMEM, "journal: out of memory for a group");
    ng->j = j;
    ng->len = QZ__WAL_GROUP_FIXED;
    if (grow_buf(&ng->buf, &ng->cap, 4096) < 0) {
        qz__free(ng);
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
    qz__free(g->buf);
    qz__free(g);
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

/* No log, SYNC: everything appended so far reaches the backend in one
 * commit; a waiter whose record an earlier commit covered returns at once. */
static int apply_through(qz__journal *j, uint64_t seq)
{
    if (seq > qz__wal_last_seq(j->wal))
        return qz__err(QZ_EINVAL, "journal: sequence %llu was never appended", (unsigned long long)seq);
    if (qz__wal_applied_seq(j->wal) >= seq) return QZ_OK;
    pthread_mutex_lock(&j->apply_mu);
    int rc = failed_rc(j);
    if (rc == QZ_OK && qz__wal_applied_seq(j->wal) < seq) {
        rc = qz__wal_write_out(j->wal, 0);
        if (rc == QZ_OK) rc = apply_pending(j);
    }
    pthread_mutex_unlock(&j->apply_mu);
    return rc;
}

int qz__journal_wait(qz__journal *j, uint64_t seq)
{
    if (!j) return qz__err(QZ_EINVAL, "journal: NULL handle");
    if (j->readonly) return QZ_OK;
    QZ_CHECK(failed_rc(j));
    if (j->o.durability == QZ__DUR_SYNC) {
        if (has_log(j))
            QZ_CHECK(qz__wal_sync(j->wal, seq));
        else
            QZ_CHECK(apply_through(j, seq));
    }
    if (!j->use_thread) {
        if (inline_cycle_due(j)) QZ_CHECK(run_cycle(j));
        if (qz__wal_unapplied_bytes(j->wal) > j->max_pending) QZ_CHECK(run_cycle(j));
        return failed_rc(j);
    }
    if (qz__wal_unapplied_bytes(j->wal) <= j->max_pending) return QZ_OK;
    /* back-pressure: let the background thread catch up */
    pthread_mutex_lock(&j->mu);
    while (!j->failed && !j->stop && qz__wal_unapplied_bytes(j->wal) > j->max_pending) {
        j->kick = 1;
        pthread_cond_signal(&j->cv_bg);
        pthread_cond_wait(&j->cv_done, &j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return failed_rc(j);
}

int qz__journal_flush(qz__journal *j)
{
    if (!j) return qz__err(QZ_EINVAL, "journal: NULL handle");
    if (j->readonly) return QZ_OK;
    QZ_CHECK(failed_rc(j));
    pthread_mutex_lock(&j->apply_mu);
    int rc = failed_rc(j);
    if (rc == QZ_OK) rc = qz__wal_write_out(j->wal, has_log(j));
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
        pthread_mutex_lock(&j->apply_mu);
        rc = failed_rc(j); /* after a failure the log (if any) is left for the next open */
        if (rc == QZ_OK && has_log(j)) {
            /* write, apply and reset: a clean close leaves an empty log */
            rc = qz__wal_checkpoint(j->wal, apply_all_cb, j);
        } else if (rc == QZ_OK) {
            rc = qz__wal_write_out(j->wal, 0);
            if (rc == QZ_OK) rc = apply_pending(j);
        }
        pthread_mutex_unlock(&j->apply_mu);
    }
    journal_free(j);
    return rc;
}

int qz__journal_writable(qz__journal *j) { return check_writable(j); }

int qz__journal_fail(qz__journal *j, int rc, const char *what) { return set_failed(j, rc, what); }
