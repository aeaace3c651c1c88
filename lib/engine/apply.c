/*
 * apply.c - the one write path: insert, upsert, delete, kv writes,
 * transactions, batches and the load at open all go through
 * qz__engine_apply(), in this order:
 *
 *   1. lock      `writers` shared, then the `write` lock of every id shard
 *                the ops touch, in shard address order (so two writers
 *                never deadlock). Writers of other shards run in parallel.
 *                Ops spread over more than MAX_SHARD_LOCKS shards (batches,
 *                large transactions) take `writers` exclusive instead: no
 *                other write runs until they are done.
 *   2. check     what depends on the current state: an insert of an id that
 *                exists (QZ_EEXISTS), a delete of one that does not
 *                (QZ_ENOTFOUND), a transaction's kv delete of an absent key
 *                (dropped). A transaction's checks see its earlier ops.
 *   3. reserve   everything that can fail for want of room: metadata
 *                payloads, id map room, index slots. A failure in steps 1-3
 *                releases what was reserved and changes nothing.
 *   4. journal   the records (one group record for a transaction, one per
 *                op otherwise), which fixes each write's place in the log.
 *   5. memory    per PUT: the new node is inserted (searchable when this
 *                returns), the id map points at it, THEN the old node of an
 *                upserted id is marked deleted, so a concurrent search sees
 *                the old vector or the new one (the index keeps deletions
 *                snapshot-consistent per search). Per DEL: id map entry
 *                removed, node marked deleted.
 *   6. unlock, then wait for durability (outside the locks, so concurrent
 *                SYNC writers share one fsync or one backend commit).
 *   7. triggers  the deletion repair (every path, single upserts included)
 *                and the graph checkpoint.
 *
 * A batch (QZ__APPLY_PARALLEL) holds the shard locks of all its ids for its
 * whole length and runs steps 4-5 for its rows on several threads; after
 * steps 1-3 succeeded, a failure of a row in step 4 or 5 (QZ_EIO from the
 * storage, QZ_ENOMEM inside the index) leaves the rows before it applied:
 * qz_errmsg names the row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "engine/internal.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/parallel.h"
#include "wal/journal.h"

#define STACK_SHARDS 16
/* Above this many id shards an apply takes `writers` exclusive instead of
 * the shards' locks (fewer locks held at once; ThreadSanitizer tracks 64). */
#define MAX_SHARD_LOCKS 16

static int shard_cmp(const void *a, const void *b)
{
    const uintptr_t x = (uintptr_t) * (qz__idmap_shard *const *)a, y = (uintptr_t) * (qz__idmap_shard *const *)b;
    return (x > y) - (x < y);
}

static int is_vec(const qz__op *o) { return o->type == QZ__OP_PUT || o->type == QZ__OP_DEL; }

/* Unique shards of the vector ops, sorted by address. */
static size_t collect_shards(qz_db *db, const qz__op *ops, size_t n, qz__idmap_shard **sh)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (is_vec(&ops[i])) sh[k++] = qz__idmap_shard_of(&db->ids, ops[i].id);
    if (k > 1) qsort(sh, k, sizeof *sh, shard_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (!u || sh[u - 1] != sh[i]) sh[u++] = sh[i];
    return u;
}

/* Does id exist after ops [0, upto) (transactions see their own ops)? */
static int exists_after(qz_db *db, const qz__op *ops, size_t upto, uint64_t id, int see_own)
{
    if (see_own)
        for (size_t i = upto; i-- > 0;) {
            if (!is_vec(&ops[i]) || ops[i].id != id) continue;
            return ops[i].type == QZ__OP_PUT;
        }
    uint32_t s;
    return qz__idmap_get(&db->ids, id, &s);
}

/* Is a kv key absent before op `upto` (earlier ops, then the store)? */
static int kv_absent(qz_db *db, const qz__op *ops, size_t upto, const void *key, size_t klen)
{
    for (size_t i = upto; i-- > 0;) {
        const qz__op *o = &ops[i];
        if (is_vec(o) || o->klen != klen || memcmp(o->key, key, klen) != 0) continue;
        if (o->skip) continue;
        return o->type == QZ__OP_KV_DEL;
    }
    size_t n = 0;
    qz__errsave es;
    qz__err_save(&es);
    int rc = qz__journal_kv_get(db->journal, key, klen, NULL, 0, &n);
    qz__err_restore(&es, 0);
    return rc == QZ_ENOTFOUND;
}

static const char *row_prefix(char *buf, size_t cap, uint32_t mode, size_t i)
{
    if (mode & QZ__APPLY_PARALLEL) snprintf(buf, cap, "row %zu: ", i);
    else if (mode & QZ__APPLY_ATOMIC) snprintf(buf, cap, "operation %zu: ", i);
    else buf[0] = '\0';
    return buf;
}

/* Step 2. */
static int check_state(qz_db *db, qz__op *ops, size_t n, uint32_t mode)
{
    int own = (mode & QZ__APPLY_ATOMIC) != 0;
    char pre[48];
    for (size_t i = 0; i < n; i++) {
        qz__op *o = &ops[i];
        o->skip = 0;
        switch (o->type) {
        case QZ__OP_PUT:
            if (!(o->flags & QZ__OPF_UPSERT) && exists_after(db, ops, i, o->id, own))
                return qz__err(QZ_EEXISTS, "%sid %llu already exists", row_prefix(pre, sizeof pre, mode, i),
                               (unsigned long long)o->id);
            break;
        case QZ__OP_DEL:
            if (!exists_after(db, ops, i, o->id, own))
                return qz__err(QZ_ENOTFOUND, "%sid %llu is not in the database", row_prefix(pre, sizeof pre, mode, i),
                               (unsigned long long)o->id);
            break;
        case QZ__OP_KV_DEL:
            /* A transaction ignores absent keys (a lone qz_kv_delete reports them). */
            if (own && kv_absent(db, ops, i, o->key, o->klen)) o->skip = 1;
            break;
        default: break;
        }
    }
    return QZ_OK;
}

static void release(qz_db *db, qz__op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        qz__op *o = &ops[i];
        if (o->slot != QZ__SLOT_NONE) qz__hnsw_release_slot(db->index, o->slot);
        o->slot = QZ__SLOT_NONE;
        qz__free(o->payload);
        o->payload = NULL;
    }
}

/* The index's metadata blob: u32 length, then the bytes; NULL when empty. */
int qz__engine_payload_new(const void *meta, size_t len, void **out)
{
    *out = NULL;
    if (len == 0) return QZ_OK;
    uint8_t *p = qz__malloc(sizeof(uint32_t) + len);
    if (!p) return qz__err(QZ_ENOMEM, "out of memory copying %zu bytes of metadata", len);
    uint32_t l = (uint32_t)len;
    memcpy(p, &l, sizeof l);
    memcpy(p + sizeof l, meta, len);
    *out = p;
    return QZ_OK;
}

/* Step 3. */
static int reserve(qz_db *db, qz__op *ops, size_t n, uint32_t mode)
{
    size_t puts = 0;
    for (size_t i = 0; i < n; i++) puts += ops[i].type == QZ__OP_PUT;
    if (!puts) return QZ_OK;
    qz__hnsw *h = db->index;
    if (puts > 1) {
        size_t used = atomic_load(&h->n_live) + atomic_load(&h->n_deleted) + atomic_load(&h->n_inserting);
        QZ_CHECK(qz__hnsw_reserve(h, used + puts));
        QZ_CHECK(qz__idmap_reserve(&db->ids, qz__idmap_count(&db->ids) + puts));
    }
    char pre[48];
    for (size_t i = 0; i < n; i++) {
        qz__op *o = &ops[i];
        if (o->type != QZ__OP_PUT) continue;
        int rc = qz__engine_payload_new(o->meta, o->meta_len, &o->payload);
        if (rc == QZ_OK && puts == 1) rc = qz__idmap_reserve_one(&db->ids, o->id);
        if (rc == QZ_OK) rc = qz__hnsw_alloc_slot(h, &o->slot);
        if (rc < 0) {
            qz__errsave es;
            qz__err_save(&es);
            release(db, ops, n);
            qz__err_restore(&es, rc);
            if (mode & (QZ__APPLY_PARALLEL | QZ__APPLY_ATOMIC))
                return qz__err(rc, "%s%s", row_prefix(pre, sizeof pre, mode, i), es.msg);
            return rc;
        }
    }
    (void)mode;
    return QZ_OK;
}

static int index_insert(qz__hnsw *h, uint32_t slot, uint64_t label, const void *vec, void *payload, uint64_t seq)
{
    return qz__hnsw_insert(h, slot, label, vec, payload, seq);
}

static void mark_deleted(qz_db *db, uint32_t slot)
{
    pthread_rwlock_rdlock(&db->index->resize);
    qz__hnsw_mark_deleted(db->index, slot);
    pthread_rwlock_unlock(&db->index->resize);
}

/* Step 5 for one vector op (its shard lock is held). */
static int apply_memory(qz_db *db, qz__op *o, uint64_t seq)
{
    uint32_t old = QZ__SLOT_NONE;
    int had = qz__idmap_get(&db->ids, o->id, &old);
    if (o->type == QZ__OP_DEL) {
        if (!had) return QZ_OK; /* checked in step 2; a transaction may delete an id it created */
        qz__idmap_del(&db->ids, o->id);
        mark_deleted(db, old);
        return QZ_OK;
    }
    uint32_t slot = o->slot;
    int rc = index_insert(db->index, slot, o->id, o->vec, o->payload, seq);
    o->payload = NULL; /* owned by the index now, even on failure */
    o->slot = QZ__SLOT_NONE;
    if (rc < 0) return rc;
    /* Room was reserved in step 3, so this cannot fail. */
    (void)qz__idmap_put(&db->ids, o->id, slot);
    if (had) {
        atomic_fetch_add(&db->upserts, 1);
        mark_deleted(db, old);
    }
    return QZ_OK;
}

/* A failure in step 5 after step 4 journaled the write: storage will have
 * it, memory does not. Rather than leave the two apart silently, the handle
 * stops accepting writes (the failure sticks); a reopen loads what storage
 * holds. Only QZ_ENOMEM inside the index can get here. */
static int applied_failure(qz_db *db, int rc)
{
    return qz__journal_fail(db->journal, rc, "applying a journaled write to the index");
}

/* Step 4 for one op outside a group; *seq receives its record's seq. */
static int journal_one(qz_db *db, const qz__op *o, uint64_t *seq)
{
    qz__journal *j = db->journal;
    switch (o->type) {
    case QZ__OP_PUT:
        if (!db->persist_vectors) return QZ_OK;
        return qz__journal_put(j, o->id, o->vec, db->index->vec_bytes, o->meta, o->meta_len, seq);
    case QZ__OP_DEL:
        if (!db->persist_vectors) return QZ_OK;
        return qz__journal_del(j, o->id, seq);
    case QZ__OP_KV_PUT: return qz__journal_kv_put(j, o->key, o->klen, o->val ? o->val : "", o->vlen, seq);
    default: return qz__journal_kv_del(j, o->key, o->klen, seq);
    }
}

/* Step 4 for a transaction: one group record. */
static int journal_group(qz_db *db, const qz__op *ops, size_t n, uint64_t *seq)
{
    qz__jgroup *g;
    QZ_CHECK(qz__jgroup_begin(db->journal, &g));
    int rc = QZ_OK;
    for (size_t i = 0; i < n && rc == QZ_OK; i++) {
        const qz__op *o = &ops[i];
        if (o->skip) continue;
        switch (o->type) {
        case QZ__OP_PUT:
            if (db->persist_vectors)
                rc = qz__jgroup_put(g, o->id, o->vec, db->index->vec_bytes, o->meta, o->meta_len);
            break;
        case QZ__OP_DEL:
            if (db->persist_vectors) rc = qz__jgroup_del(g, o->id);
            break;
        case QZ__OP_KV_PUT: rc = qz__jgroup_kv_put(g, o->key, o->klen, o->val ? o->val : "", o->vlen); break;
        default: rc = qz__jgroup_kv_del(g, o->key, o->klen); break;
        }
    }
    if (rc < 0) {
        qz__jgroup_abort(g);
        return rc;
    }
    return qz__jgroup_commit(g, seq);
}

/* ---- batches: steps 4-5 per row on several threads ---- */

typedef struct batch_job {
    qz_db *db;
    qz__op *ops;
    int journal;
    pthread_mutex_t lock; /* guards msg and max_seq */
    char msg[256];
    uint64_t max_seq;
} batch_job;

#define ENC_STACK 4096

static int batch_row(size_t i, void *u)
{
    batch_job *b = u;
    qz__op *o = &b->ops[i];
    uint64_t seq = o->seq;
    uint64_t stackbuf[ENC_STACK / 8];
    void *enc = NULL;
    int rc = QZ_OK;
    if (!o->vec && o->user_vec) {
        size_t vb = b->db->index->vec_bytes;
        enc = vb <= sizeof stackbuf ? (void *)stackbuf : qz__malloc(vb);
        if (!enc) rc = qz__err(QZ_ENOMEM, "out of memory encoding a vector");
        else qz__hnsw_encode(b->db->index, o->user_vec, enc);
        o->vec = enc;
    }
    if (rc == QZ_OK && b->journal) rc = journal_one(b->db, o, &seq);
    if (rc == QZ_OK) {
        rc = apply_memory(b->db, o, seq);
        if (rc < 0 && b->journal && b->db->persist_vectors) rc = applied_failure(b->db, rc);
    }
    if (enc && enc != (void *)stackbuf) qz__free(enc);
    if (enc) o->vec = NULL;
    pthread_mutex_lock(&b->lock);
    if (rc < 0 && !b->msg[0]) snprintf(b->msg, sizeof b->msg, "row %zu: %s", i, qz__err_msg());
    if (seq > b->max_seq) b->max_seq = seq;
    pthread_mutex_unlock(&b->lock);
    return rc;
}

static int run_batch(qz_db *db, qz__op *ops, size_t n, int journal, uint64_t *max_seq)
{
    batch_job b = {.db = db, .ops = ops, .journal = journal};
    pthread_mutex_init(&b.lock, NULL);
    unsigned nt = db->cfg.threads;
    if (nt > n / 64 + 1) nt = (unsigned)(n / 64 + 1); /* tiny batches: fewer threads */
    int rc = qz__parallel_for(n, nt, batch_row, &b);
    pthread_mutex_destroy(&b.lock);
    *max_seq = b.max_seq;
    if (rc < 0) {
        /* rows that never ran keep their reservations: give them back */
        release(db, ops, n);
        return qz__err(rc, "%s", b.msg);
    }
    return QZ_OK;
}

int qz__engine_apply(qz_db *db, qz__op *ops, size_t n, uint32_t mode)
{
    if (n == 0) return QZ_OK;
    if (db->readonly) return qz__err(QZ_EREADONLY, "database was opened read-only");
    int loading = (mode & QZ__APPLY_LOADING) != 0;
    /* Once the storage failed, every write fails the same way, before any
     * check against a state that storage no longer follows. */
    if (!loading) QZ_CHECK(qz__journal_writable(db->journal));
    for (size_t i = 0; i < n; i++) {
        ops[i].slot = QZ__SLOT_NONE;
        ops[i].payload = NULL;
    }

    /* 1. lock */
    qz__idmap_shard *stack_sh[STACK_SHARDS], **sh = stack_sh;
    if (n > STACK_SHARDS) {
        sh = qz__malloc(n * sizeof *sh);
        if (!sh) return qz__err(QZ_ENOMEM, "out of memory locking %zu ids", n);
    }
    size_t nsh = collect_shards(db, ops, n, sh);
    /* Many shards (a batch, a large transaction): hold every other writer
     * off with `writers` exclusive instead of taking dozens of locks. */
    int exclusive = nsh > MAX_SHARD_LOCKS;
    if (exclusive) {
        pthread_rwlock_wrlock(&db->writers);
        nsh = 0;
    } else {
        pthread_rwlock_rdlock(&db->writers);
    }
    for (size_t i = 0; i < nsh; i++) pthread_mutex_lock(&sh[i]->write);

    /* 2. check, 3. reserve */
    int rc = check_state(db, ops, n, mode);
    if (rc == QZ_OK) rc = reserve(db, ops, n, mode);

    /* 4. journal, 5. memory */
    uint64_t seq = 0;
    size_t vec_writes = 0;
    for (size_t i = 0; i < n; i++) vec_writes += is_vec(&ops[i]);
    if (rc == QZ_OK) {
        if (mode & QZ__APPLY_PARALLEL) {
            rc = run_batch(db, ops, n, !loading, &seq);
        } else if (mode & QZ__APPLY_ATOMIC) {
            rc = loading ? QZ_OK : journal_group(db, ops, n, &seq);
            if (rc < 0) release(db, ops, n);
            int journaled = rc == QZ_OK && !loading;
            for (size_t i = 0; i < n && rc == QZ_OK; i++)
                if (is_vec(&ops[i])) rc = apply_memory(db, &ops[i], loading ? ops[i].seq : seq);
            if (rc < 0) release(db, ops, n);
            if (rc < 0 && journaled) rc = applied_failure(db, rc);
        } else {
            for (size_t i = 0; i < n && rc == QZ_OK; i++) {
                uint64_t s = ops[i].seq;
                rc = loading ? QZ_OK : journal_one(db, &ops[i], &s);
                if (rc == QZ_OK && is_vec(&ops[i])) {
                    rc = apply_memory(db, &ops[i], s);
                    if (rc < 0 && !loading && db->persist_vectors) rc = applied_failure(db, rc);
                }
                if (s > seq) seq = s;
            }
            if (rc < 0) release(db, ops, n);
        }
    }

    /* 6. unlock, wait */
    for (size_t i = nsh; i-- > 0;) pthread_mutex_unlock(&sh[i]->write);
    pthread_rwlock_unlock(&db->writers);
    if (sh != stack_sh) qz__free(sh);
    if (rc == QZ_OK && !loading && seq) {
        rc = qz__journal_wait(db->journal, seq);
        /* Past the point of no return (journaled and applied) a failure to
         * make the write durable must not leave the caller guessing: it
         * sticks, and every later write fails the same way. */
        if (rc < 0) rc = qz__journal_fail(db->journal, rc, "making an applied write durable");
    }
    /* a SYNC journal without a log applied the writes inside the wait */
    if (vec_writes && !loading) qz__engine_unpin(db);

    /* 7. triggers */
    if (vec_writes && !loading) {
        atomic_store(&db->snapshot_dirty, 1);
        if (db->persist_vectors) {
            atomic_fetch_add(&db->writes_since_ckpt, vec_writes);
            uint64_t zero = 0;
            atomic_compare_exchange_strong(&db->first_unsaved_ns, &zero, qz__now_ns());
        }
    }
    if (vec_writes) qz__engine_maybe_repair(db);
    if (vec_writes && !loading && rc == QZ_OK) qz__engine_maybe_checkpoint(db);
    return rc;
}

void qz__engine_maybe_repair(qz_db *db)
{
    size_t del = atomic_load(&db->index->n_deleted);
    size_t live = atomic_load(&db->index->n_live);
    if (del < 256 || del < live / 8) return;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&db->repairing, &expect, 1)) return;
    (void)qz__hnsw_repair(db->index); /* on ENOMEM deleted nodes stay as waypoints; retried later */
    atomic_store(&db->repairing, 0);
}
