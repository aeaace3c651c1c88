/*
 * storage_lmdb.c - storage backend over an LMDB environment.
 *
 * One named LMDB database per qz_storage_table ("meta", "vectors", "graph",
 * "kv") in an environment that is the directory itself (no MDB_NOSUBDIR).
 * The environment is opened with MDB_NOTLS, so a read transaction is tied to
 * its MDB_txn object rather than to a thread and may end on another thread.
 *
 * Map growth (see also storage.h): LMDB fails a write with MDB_MAP_FULL when
 * the memory map is exhausted, and the map may only be resized while no
 * transaction of the process is open. So:
 * - every transaction is counted in `active`; a resize sets `resizing`,
 *   which holds new transactions back, and waits for `active` to reach 0;
 * - a write transaction first grows the map when more than 3/4 of it is in
 *   use, and records its put/del/clear operations (copies of key and value)
 *   so that an MDB_MAP_FULL from any of them or from the commit is handled by
 *   aborting, doubling the map and replaying the record in a fresh
 *   transaction. The caller never sees MDB_MAP_FULL; it only gets QZ_EFULL
 *   when the map cannot grow (address space, QZ__LMDB_MAX_MAP).
 * - a read-only process that finds the map grown by the writer process
 *   (MDB_MAP_RESIZED) adopts the new size the same way.
 * The write transaction holds `wmu` for its whole life, including a replay,
 * so no other writer of this process can slip in between.
 */
#include "storage/storage.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/error.h"

#define QZ__LMDB_MAX_MAP ((uint64_t)1 << 40) /* 1 TiB of address space at most */
#define QZ__LMDB_MAXREADERS 1024u

static const char *const table_names[QZ_TABLE_COUNT] = {"meta", "vectors", "graph", "kv"};

enum { OP_PUT = 1, OP_DEL = 2, OP_CLEAR = 3 };

/* A recorded write operation, replayed after a map resize. */
typedef struct lm_op {
    struct lm_op *next;
    uint32_t kind, table;
    size_t klen, vlen;
    unsigned char data[]; /* key, then value */
} lm_op;

typedef struct lm_store {
    qz_storage base; /* first: a qz_storage * is an lm_store * */
    MDB_env *env;
    MDB_dbi dbi[QZ_TABLE_COUNT];
    int have[QZ_TABLE_COUNT]; /* read-only: the table exists */
    uint32_t flags;
    unsigned psize;
    unsigned maxkey;
    pthread_mutex_t wmu; /* held by the open write transaction */
    pthread_mutex_t mu;  /* guards active and resizing */
    pthread_cond_t cv;
    int active;
    int resizing;
    char *dir;
} lm_store;

struct qz_storage_txn {
    MDB_txn *txn; /* NULL after a failed resize */
    uint32_t flags;
    int failed; /* a write failed: only abort/commit (which fails) remain */
    lm_op *ops, **tail;
};

/* ---- errors ----------------------------------------------------------- */

static const char *rc_name(int rc)
{
    switch (rc) {
    case MDB_KEYEXIST: return "MDB_KEYEXIST";
    case MDB_NOTFOUND: return "MDB_NOTFOUND";
    case MDB_PAGE_NOTFOUND: return "MDB_PAGE_NOTFOUND";
    case MDB_CORRUPTED: return "MDB_CORRUPTED";
    case MDB_PANIC: return "MDB_PANIC";
    case MDB_VERSION_MISMATCH: return "MDB_VERSION_MISMATCH";
    case MDB_INVALID: return "MDB_INVALID";
    case MDB_MAP_FULL: return "MDB_MAP_FULL";
    case MDB_DBS_FULL: return "MDB_DBS_FULL";
    case MDB_READERS_FULL: return "MDB_READERS_FULL";
    case MDB_TLS_FULL: return "MDB_TLS_FULL";
    case MDB_TXN_FULL: return "MDB_TXN_FULL";
    case MDB_CURSOR_FULL: return "MDB_CURSOR_FULL";
    case MDB_PAGE_FULL: return "MDB_PAGE_FULL";
    case MDB_MAP_RESIZED: return "MDB_MAP_RESIZED";
    case MDB_INCOMPATIBLE: return "MDB_INCOMPATIBLE";
    case MDB_BAD_RSLOT: return "MDB_BAD_RSLOT";
    case MDB_BAD_TXN: return "MDB_BAD_TXN";
    case MDB_BAD_VALSIZE: return "MDB_BAD_VALSIZE";
    case MDB_BAD_DBI: return "MDB_BAD_DBI";
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EROFS: return "EROFS";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    case EBUSY: return "EBUSY";
    default: return NULL;
    }
}

static int rc_code(int rc)
{
    switch (rc) {
    case MDB_NOTFOUND: return QZ_ENOTFOUND;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_INCOMPATIBLE: return QZ_ECORRUPT;
    case MDB_VERSION_MISMATCH: return QZ_EVERSION;
    case MDB_MAP_FULL:
    case MDB_DBS_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return QZ_EFULL;
    case MDB_READERS_FULL:
    case EAGAIN:
    case EBUSY: return QZ_EBUSY;
    case ENOMEM: return QZ_ENOMEM;
    case EINVAL:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI: return QZ_EINVAL;
    default: return QZ_EIO;
    }
}

/* Set "lmdb: MDB_X while <what> (<lmdb text>)" and return the qz code. */
static int lm_fail(int rc, const char *fmt, ...) QZ__PRINTF(2, 3);
static int lm_fail(int rc, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *name = rc_name(rc);
    char num[32];
    if (!name) {
        snprintf(num, sizeof num, "error %d", rc);
        name = num;
    }
    return qz__err(rc_code(rc), "lmdb: %s while %s (%s)", name, what, mdb_strerror(rc));
}

/* ---- transaction accounting and map resizing ---------------------------- */

static void txn_enter(lm_store *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->resizing) pthread_cond_wait(&s->cv, &s->mu);
    s->active++;
    pthread_mutex_unlock(&s->mu);
}

static void txn_leave(lm_store *s)
{
    pthread_mutex_lock(&s->mu);
    if (--s->active == 0) pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Set the map size (0 = adopt the size another process set) once no
 * transaction of this process is open. The caller holds none. With
 * patience_ms > 0, give up (QZ_EBUSY) when readers stay open that long. */
static int map_resize_wait(lm_store *s, uint64_t size, unsigned patience_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(patience_ms % 1000) * 1000000L;
    until.tv_sec += (time_t)(patience_ms / 1000) + until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&s->mu);
    while (s->resizing) pthread_cond_wait(&s->cv, &s->mu);
    s->resizing = 1;
    while (s->active > 0) {
        if (!patience_ms) {
            pthread_cond_wait(&s->cv, &s->mu);
        } else if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT && s->active > 0) {
            s->resizing = 0;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return QZ_EBUSY;
        }
    }
    int rc = mdb_env_set_mapsize(s->env, (size_t)size);
    s->resizing = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (rc) return lm_fail(rc, "growing the map of %s to %llu bytes", s->dir, (unsigned long long)size);
    return QZ_OK;
}

static int map_resize(lm_store *s, uint64_t size) { return map_resize_wait(s, size, 0); }

static uint64_t map_size(lm_store *s)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    return (uint64_t)info.me_mapsize;
}

/* Double the map (a MAP_FULL happened). */
static int map_grow(lm_store *s)
{
    uint64_t cur = map_size(s);
    if (cur >= QZ__LMDB_MAX_MAP)
        return qz__err(QZ_EFULL, "lmdb: MDB_MAP_FULL while writing to %s: the map is already %llu bytes", s->dir,
                       (unsigned long long)cur);
    return map_resize(s, cur * 2);
}

/* Grow ahead when more than 3/4 of the map is used. Best effort. */
static void map_grow_ahead(lm_store *s)
{
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) != 0) return;
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * s->psize;
    uint64_t cur = (uint64_t)info.me_mapsize;
    if (used <= cur / 4 * 3 || cur >= QZ__LMDB_MAX_MAP) return;
    uint64_t want = cur * 2;
    if (want < used * 2) want = used * 2;
    /* Readers may be slow to finish: do not hold the writer (or new readers)
     * back for long; the MAP_FULL path grows the map anyway. */
    if (map_resize_wait(s, want, 20) < 0) qz__err_clear();
}

/* ---- operations --------------------------------------------------------- */

static int check_args(lm_store *s, uint32_t table, const void *key, size_t klen)
{
    if (table >= QZ_TABLE_COUNT) return qz__err(QZ_EINVAL, "lmdb storage: no table %u", table);
    if (!key || klen == 0 || klen > s->maxkey)
        return qz__err(QZ_EINVAL, "lmdb storage: key of %zu bytes (must be 1..%u)", klen, s->maxkey);
    return QZ_OK;
}

static int check_write(lm_store *s, qz_storage_txn *t)
{
    if (t->flags & QZ_TXN_READONLY) return qz__err(QZ_EINVAL, "lmdb storage: write in a read-only transaction");
    if (t->failed || !t->txn)
        return qz__err(QZ_EIO, "lmdb storage: write in a transaction of %s that already failed", s->dir);
    return QZ_OK;
}

static int op_apply(lm_store *s, MDB_txn *txn, const lm_op *op)
{
    MDB_val k = {op->klen, (void *)op->data};
    MDB_val v = {op->vlen, (void *)(op->data + op->klen)};
    switch (op->kind) {
    case OP_PUT: return mdb_put(txn, s->dbi[op->table], &k, &v, 0);
    case OP_DEL: {
        int rc = mdb_del(txn, s->dbi[op->table], &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    default: return mdb_drop(txn, s->dbi[op->table], 0);
    }
}

/* The current MDB transaction hit MAP_FULL (and may be gone already): grow
 * the map and redo every recorded operation in a new transaction. */
static int txn_regrow(lm_store *s, qz_storage_txn *t)
{
    for (;;) {
        if (t->txn) mdb_txn_abort(t->txn);
        t->txn = NULL;
        txn_leave(s);
        int qrc = map_grow(s);
        txn_enter(s);
        if (qrc < 0) return qrc;
        int rc = mdb_txn_begin(s->env, NULL, 0, &t->txn);
        if (rc) {
            t->txn = NULL;
            return lm_fail(rc, "restarting a write transaction on %s after growing the map", s->dir);
        }
        for (const lm_op *op = t->ops; op && rc == 0; op = op->next) rc = op_apply(s, t->txn, op);
        if (rc == 0) return QZ_OK;
        if (rc != MDB_MAP_FULL) return lm_fail(rc, "replaying a write transaction on %s after growing the map", s->dir);
    }
}

/* Record op, then apply it (growing the map if needed). */
static int txn_write(lm_store *s, qz_storage_txn *t, uint32_t kind, uint32_t table, const void *key, size_t klen,
                     const void *val, size_t vlen, const char *what)
{
    if (vlen > SIZE_MAX - sizeof(lm_op) - klen) return qz__err(QZ_ENOMEM, "lmdb storage: value too large");
    lm_op *op = malloc(sizeof *op + klen + vlen);
    if (!op) return qz__err(QZ_ENOMEM, "lmdb storage: out of memory recording a %s of %zu bytes", what, vlen);
    op->next = NULL;
    op->kind = kind;
    op->table = table;
    op->klen = klen;
    op->vlen = vlen;
    if (klen) memcpy(op->data, key, klen);
    if (vlen) memcpy(op->data + klen, val, vlen);

    int rc;
    if (kind == OP_DEL) {
        /* op_apply hides NOTFOUND for replays; the caller needs it */
        MDB_val k = {klen, (void *)key};
        rc = mdb_del(t->txn, s->dbi[table], &k, NULL);
        if (rc == MDB_NOTFOUND) {
            free(op);
            return QZ_ENOTFOUND;
        }
    } else {
        rc = op_apply(s, t->txn, op);
    }
    *t->tail = op;
    t->tail = &op->next;
    if (rc == MDB_MAP_FULL) {
        int qrc = txn_regrow(s, t);
        if (qrc < 0) t->failed = 1;
        return qrc;
    }
    if (rc) {
        t->failed = 1;
        return lm_fail(rc, "%s in table %s of %s", what, table_names[table], s->dir);
    }
    return QZ_OK;
}

static void txn_free(lm_store *s, qz_storage_txn *t)
{
    lm_op *op = t->ops;
    while (op) {
        lm_op *n = op->next;
        free(op);
        op = n;
    }
    txn_leave(s);
    if (!(t->flags & QZ_TXN_READONLY)) pthread_mutex_unlock(&s->wmu);
    free(t);
}

/* ---- methods ---------------------------------------------------------- */

static int lm_begin(qz_storage *base, uint32_t flags, qz_storage_txn **out)
{
    lm_store *s = (lm_store *)base;
    if (!out || (flags & ~QZ_TXN_READONLY)) return qz__err(QZ_EINVAL, "lmdb storage: bad begin() arguments");
    int ro = (flags & QZ_TXN_READONLY) != 0;
    if (!ro && (s->flags & QZ__LMDB_READONLY))
        return qz__err(QZ_EREADONLY, "lmdb storage: %s is open read-only", s->dir);
    qz_storage_txn *t = calloc(1, sizeof *t);
    if (!t) return qz__err(QZ_ENOMEM, "lmdb storage: out of memory for a transaction");
    t->flags = flags;
    t->tail = &t->ops;
    if (!ro) {
        pthread_mutex_lock(&s->wmu);
        map_grow_ahead(s);
    }
    txn_enter(s);
    int rc;
    for (int tries = 0;; tries++) {
        rc = mdb_txn_begin(s->env, NULL, ro ? MDB_RDONLY : 0, &t->txn);
        if (rc != MDB_MAP_RESIZED || tries >= 3) break;
        /* the writer process grew the map: adopt its size */
        txn_leave(s);
        int qrc = map_resize(s, 0);
        txn_enter(s);
        if (qrc < 0) {
            txn_free(s, t);
            return qrc;
        }
    }
    if (rc) {
        t->txn = NULL;
        int qrc = lm_fail(rc, "beginning a %s transaction on %s", ro ? "read" : "write", s->dir);
        txn_free(s, t);
        return qrc;
    }
    *out = t;
    return QZ_OK;
}

static int lm_get(qz_storage *base, qz_storage_txn *t, uint32_t table, const void *key, size_t klen,
                  const void **val, size_t *vlen)
{
    lm_store *s = (lm_store *)base;
    QZ_CHECK(check_args(s, table, key, klen));
    if (t->failed || !t->txn) return qz__err(QZ_EIO, "lmdb storage: read in a failed transaction of %s", s->dir);
    if (!s->have[table]) return QZ_ENOTFOUND;
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(t->txn, s->dbi[table], &k, &v);
    if (rc == MDB_NOTFOUND) return QZ_ENOTFOUND;
    if (rc) return lm_fail(rc, "reading a %zu-byte key from table %s of %s", klen, table_names[table], s->dir);
    if (val) *val = v.mv_data;
    if (vlen) *vlen = v.mv_size;
    return QZ_OK;
}

static int lm_put(qz_storage *base, qz_storage_txn *t, uint32_t table, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
    lm_store *s = (lm_store *)base;
    QZ_CHECK(check_args(s, table, key, klen));
    QZ_CHECK(check_write(s, t));
    if (!val && vlen) return qz__err(QZ_EINVAL, "lmdb storage: NULL value of %zu bytes", vlen);
    return txn_write(s, t, OP_PUT, table, key, klen, val, vlen, "writing a record");
}

static int lm_del(qz_storage *base, qz_storage_txn *t, uint32_t table, const void *key, size_t klen)
{
    lm_store *s = (lm_store *)base;
    QZ_CHECK(check_args(s, table, key, klen));
    QZ_CHECK(check_write(s, t));
    return txn_write(s, t, OP_DEL, table, key, klen, NULL, 0, "deleting a record");
}

static int lm_clear(qz_storage *base, qz_storage_txn *t, uint32_t table)
{
    lm_store *s = (lm_store *)base;
    if (table >= QZ_TABLE_COUNT) return qz__err(QZ_EINVAL, "lmdb storage: no table %u", table);
    QZ_CHECK(check_write(s, t));
    return txn_write(s, t, OP_CLEAR, table, NULL, 0, NULL, 0, "clearing");
}

static int lm_scan(qz_storage *base, qz_storage_txn *t, uint32_t table, const void *prefix, size_t plen,
                   qz_storage_scan_fn fn, void *user)
{
    lm_store *s = (lm_store *)base;
    if (table >= QZ_TABLE_COUNT) return qz__err(QZ_EINVAL, "lmdb storage: no table %u", table);
    if (!fn || (plen && !prefix)) return qz__err(QZ_EINVAL, "lmdb storage: bad scan() arguments");
    if (t->failed || !t->txn) return qz__err(QZ_EIO, "lmdb storage: scan in a failed transaction of %s", s->dir);
    if (!s->have[table]) return QZ_OK;
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(t->txn, s->dbi[table], &c);
    if (rc) return lm_fail(rc, "opening a cursor on table %s of %s", table_names[table], s->dir);
    MDB_val k = {plen, (void *)prefix}, v;
    rc = mdb_cursor_get(c, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
    int ret = QZ_OK;
    while (rc == 0) {
        if (k.mv_size < plen || (plen && memcmp(k.mv_data, prefix, plen) != 0)) break;
        ret = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, user);
        if (ret) break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (ret) return ret;
    if (rc && rc != MDB_NOTFOUND) return lm_fail(rc, "scanning table %s of %s", table_names[table], s->dir);
    return QZ_OK;
}

static int lm_commit(qz_storage *base, qz_storage_txn *t)
{
    lm_store *s = (lm_store *)base;
    if (t->flags & QZ_TXN_READONLY) {
        if (t->txn) mdb_txn_abort(t->txn);
        txn_free(s, t);
        return QZ_OK;
    }
    int qrc = QZ_OK;
    if (t->failed || !t->txn) {
        if (t->txn) mdb_txn_abort(t->txn);
        qrc = qz__err(QZ_EIO, "lmdb storage: commit of a failed transaction on %s (nothing written)", s->dir);
    } else {
        for (;;) {
            int rc = mdb_txn_commit(t->txn);
            t->txn = NULL; /* freed by LMDB whatever the outcome */
            if (rc == 0) break;
            if (rc != MDB_MAP_FULL) {
                qrc = lm_fail(rc, "committing a write transaction on %s", s->dir);
                break;
            }
            qrc = txn_regrow(s, t);
            if (qrc < 0) {
                if (t->txn) mdb_txn_abort(t->txn);
                break;
            }
        }
    }
    txn_free(s, t);
    return qrc;
}

static void lm_abort(qz_storage *base, qz_storage_txn *t)
{
    lm_store *s = (lm_store *)base;
    if (!t) return;
    if (t->txn) mdb_txn_abort(t->txn);
    txn_free(s, t);
}

static int lm_sync(qz_storage *base)
{
    lm_store *s = (lm_store *)base;
    if (s->flags & QZ__LMDB_READONLY) return QZ_OK;
    int rc = mdb_env_sync(s->env, 1);
    if (rc) return lm_fail(rc, "syncing %s", s->dir);
    return QZ_OK;
}

static void lm_close(qz_storage *base)
{
    lm_store *s = (lm_store *)base;
    if (!s) return;
    if (s->env) mdb_env_close(s->env);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->dir);
    free(s);
}

uint64_t qz__storage_lmdb_map_size(qz_storage *base)
{
    if (!base || base->begin != lm_begin) return 0;
    return map_size((lm_store *)base);
}

/* Open (and in read-write mode create) the four tables. */
static int open_tables(lm_store *s)
{
    int ro = (s->flags & QZ__LMDB_READONLY) != 0;
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn = NULL;
        int rc = mdb_txn_begin(s->env, NULL, ro ? MDB_RDONLY : 0, &txn);
        if (rc) return lm_fail(rc, "beginning the transaction that opens the tables of %s", s->dir);
        for (int i = 0; i < QZ_TABLE_COUNT && rc == 0; i++) {
            rc = mdb_dbi_open(txn, table_names[i], ro ? 0 : MDB_CREATE, &s->dbi[i]);
            if (rc == 0) {
                s->have[i] = 1;
            } else if (rc == MDB_NOTFOUND && ro) {
                s->have[i] = 0; /* an empty read-only environment: the table reads as empty */
                rc = 0;
            }
        }
        /* commit even when read-only: an aborted txn closes the handles it opened */
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (rc == MDB_MAP_FULL && attempt < 8) {
            int qrc = map_grow(s);
            if (qrc < 0) return qrc;
            continue;
        }
        if (rc) return lm_fail(rc, "opening the tables of %s", s->dir);
        return QZ_OK;
    }
}

int qz__storage_lmdb_open_ex(const char *dir, uint32_t flags, uint64_t map, qz_storage **out)
{
    if (!out) return qz__err(QZ_EINVAL, "lmdb storage: NULL out");
    *out = NULL;
    if (!dir || !*dir) return qz__err(QZ_EINVAL, "lmdb storage: no directory");
    if (flags & ~(QZ__LMDB_READONLY | QZ__LMDB_NOSYNC)) return qz__err(QZ_EINVAL, "lmdb storage: unknown flags 0x%x", flags);
    int ro = (flags & QZ__LMDB_READONLY) != 0;
    if (!ro && mkdir(dir, 0755) != 0 && errno != EEXIST)
        return qz__err(errno == ENOSPC ? QZ_EFULL : QZ_EIO, "lmdb storage: cannot create directory %s: %s", dir,
                       strerror(errno));

    lm_store *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return qz__err(QZ_ENOMEM, "lmdb storage: out of memory");
    }
    s->flags = flags;
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);

    int qrc = QZ_OK;
    int rc = mdb_env_create(&s->env);
    if (rc) {
        s->env = NULL;
        qrc = lm_fail(rc, "creating the environment for %s", dir);
        goto fail;
    }
    if (!map) map = QZ__LMDB_DEFAULT_MAP;
    if ((rc = mdb_env_set_maxdbs(s->env, QZ_TABLE_COUNT + 4)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, QZ__LMDB_MAXREADERS)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)map)) != 0) {
        qrc = lm_fail(rc, "configuring the environment for %s", dir);
        goto fail;
    }
    unsigned envflags = MDB_NOTLS | (ro ? MDB_RDONLY : 0) | ((flags & QZ__LMDB_NOSYNC) ? MDB_NOSYNC : 0);
    rc = mdb_env_open(s->env, dir, envflags, 0644);
    if (rc) {
        qrc = lm_fail(rc, "opening the environment %s%s", dir, ro ? " read-only" : "");
        goto fail;
    }
    MDB_stat st;
    if ((rc = mdb_env_stat(s->env, &st)) != 0) {
        qrc = lm_fail(rc, "reading the page size of %s", dir);
        goto fail;
    }
    s->psize = st.ms_psize;
    s->maxkey = (unsigned)mdb_env_get_maxkeysize(s->env);
    /* LMDB maps the file and trusts its meta page: pages past the end of a
     * truncated file would be touched with SIGBUS. Refuse such a file. */
    {
        MDB_envinfo ei;
        char path[4096];
        struct stat fst;
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if ((rc = mdb_env_info(s->env, &ei)) != 0) {
            qrc = lm_fail(rc, "reading the environment info of %s", dir);
            goto fail;
        }
        if (stat(path, &fst) == 0 && (uint64_t)fst.st_size < ((uint64_t)ei.me_last_pgno + 1) * s->psize) {
            qrc = qz__err(QZ_ECORRUPT, "lmdb storage: %s is %lld bytes but its meta page uses %llu pages of %u bytes",
                          path, (long long)fst.st_size, (unsigned long long)ei.me_last_pgno + 1, s->psize);
            goto fail;
        }
    }
    if ((qrc = open_tables(s)) < 0) goto fail;

    qz_storage *b = &s->base;
    b->struct_size = (uint32_t)sizeof *b;
    b->flags = 0;
    b->user = s;
    b->begin = lm_begin;
    b->get = lm_get;
    b->put = lm_put;
    b->del = lm_del;
    b->scan = lm_scan;
    b->clear = lm_clear;
    b->commit = lm_commit;
    b->abort = lm_abort;
    b->sync = lm_sync;
    b->close = lm_close;
    *out = b;
    return QZ_OK;

fail:
    lm_close(&s->base);
    return qrc;
}

int qz__storage_lmdb_open(const char *dir, uint32_t flags, qz_storage **out)
{
    return qz__storage_lmdb_open_ex(dir, flags, 0, out);
}
