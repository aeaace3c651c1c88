/*
 * engine.h - the database engine (internal): struct qz_db and everything
 * that changes or reads it. lib/api above it checks arguments and maps the
 * public ABI onto these calls; the index, the journal and the storage
 * backends below it know nothing of each other.
 *
 * One database is:
 *   index    the HNSW graph (lib/index), slots holding vectors and metadata
 *   ids      the id map, user id -> slot (lib/index/idmap)
 *   journal  durable state over a qz_storage backend (lib/wal/journal.h):
 *            vector and kv records, with or without a log file
 *   storage  the backend; for directories the LMDB one, opened and closed
 *            here (engine/open_dir.c); for qz_db_open_storage the caller's
 *
 * Writes: ONE path, qz__engine_apply(), for insert, upsert, delete, kv
 * writes, transactions and batches (engine/apply.c documents the order).
 *
 * Lock order, outermost first: `writers` -> idmap shard `write` (in shard
 * address order) -> index `resize` (shared) -> node spinlocks / idmap shard
 * `map`. Every write holds `writers` shared; checkpoints and check hold it
 * exclusive so the id map and the graph hold still together. Repair and
 * growth take `resize` exclusive and never run with any of these held.
 */
#ifndef QZ_ENGINE_ENGINE_H
#define QZ_ENGINE_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "index/hnsw.h"
#include "index/idmap.h"
#include "quartz.h"
#include "quartz/sys/storage.h"

struct qz__journal;
struct qz__graph_ckpt;

/* ---- configuration (engine/config.c holds the one table of defaults) ---- */

#define QZ__CFG_READONLY 0x1u /* open for reading only */
#define QZ__CFG_EXISTING 0x2u /* fail with QZ_ENOTFOUND instead of creating */
#define QZ__CFG_ORIG_STORAGE 0x4u /* f16/int8: the originals stay in storage, not in memory */

typedef struct qz__config {
    uint32_t flags;           /* QZ__CFG_* */
    uint32_t dim;             /* 0 = take the stored one (existing databases) */
    uint32_t metric;          /* enum qz__metric; 0 = default / stored */
    uint32_t dtype;           /* enum qz__dtype (vector/codec.h); 0 = default / stored */
    uint32_t M, ef_construction, ef_search;
    uint64_t capacity;
    uint32_t durability;      /* QZ__DUR_* (wal/journal.h); 0 = default */
    uint32_t window_ms;
    uint32_t threads;
    uint64_t seed;
    uint32_t ckpt_writes;     /* checkpoint after this many writes; 0 = default */
    uint32_t ckpt_ms;         /* ... or this long after the first unsaved write */
} qz__config;

/* Fill every 0 with its default and check ranges. `existing` 1: the stored
 * options were merged in already (dimensions may not be missing then). */
int qz__config_resolve(qz__config *c, int existing);

/* ---- the handle ---------------------------------------------------------- */

struct qz_db {
    qz__config cfg;              /* resolved: no field left at 0 */
    qz__hnsw *index;
    qz__idmap ids;
    const qz__kernels *kernels;
    struct qz__journal *journal; /* always set */
    qz_storage *storage;         /* the backend under the journal */
    int own_storage;             /* close it at qz_db_close (directories, memory) */
    int persist_vectors;         /* 0 for in-memory databases: only kv is journaled */
    int readonly;
    void (*release)(void *);     /* what the composition holds beside the backend (a directory's lock) */
    void *release_arg;

    pthread_rwlock_t writers;
    atomic_int repairing;
    atomic_uint upserts;         /* nonzero once any id was replaced */

    /* checkpoints (engine/checkpoint.c) */
    pthread_mutex_t ckpt_mu;     /* one checkpoint at a time */
    uint64_t graph_seq_stored;   /* META graph.seq as stored (0: none); under ckpt_mu, set by load */
    struct qz__graph_ckpt *ckpt; /* chunk state of the stored graph snapshot */
    atomic_int snapshot_dirty;   /* the graph differs from the stored snapshot */
    atomic_size_t writes_since_ckpt;
    _Atomic uint64_t first_unsaved_ns; /* monotonic time of the first write since the checkpoint; 0 none */
    atomic_uint_fast64_t reinserted;   /* records inserted anew at open (not covered by the snapshot) */
};

/* ---- lifetime (engine/open.c, engine/open_dir.c) ------------------------ */

/* Open over a backend. `own` 1: the engine closes st at close (or on failure). */
int qz__engine_open_storage(qz_storage *st, int own, const char *log_path, const qz__config *cfg, qz_db **out);
/* In-memory database: the mem backend for kv, vectors in the index only. */
int qz__engine_open_memory(const qz__config *cfg, qz_db **out);
/* A directory: lock, LMDB backend, log file. QZ_EUNSUPPORTED without LMDB. */
int qz__engine_open_dir(const char *path, const qz__config *cfg, qz_db **out);
/* Flush, checkpoint, close journal and backend, free. Frees db always. */
int qz__engine_close(qz_db *db);

/* ---- writes (engine/apply.c) -------------------------------------------- */

enum { QZ__OP_PUT = 1, QZ__OP_DEL = 2, QZ__OP_KV_PUT = 3, QZ__OP_KV_DEL = 4 };

#define QZ__OPF_UPSERT 0x1u /* PUT: replacing an existing id is allowed */

/* One write. The engine reads the inputs and fills the rest. */
typedef struct qz__op {
    uint32_t type, flags;
    uint64_t id;                 /* PUT, DEL */
    const void *vec;             /* PUT: stored (encoded) form, index->vec_bytes, or NULL and: */
    const float *user_vec;       /* PUT: the caller's floats, encoded on the applying thread */
    const void *meta;            /* PUT: metadata bytes */
    size_t meta_len;
    const void *key, *val;       /* KV_PUT, KV_DEL */
    size_t klen, vlen;
    uint64_t seq;                /* in: with QZ__APPLY_LOADING, the stored record's seq */
    /* filled by the engine */
    uint32_t slot;
    void *payload;
    int skip;                    /* KV_DEL of an absent key in a transaction */
} qz__op;

#define QZ__APPLY_ATOMIC 0x1u   /* a transaction: one group record; state checks see earlier ops */
#define QZ__APPLY_PARALLEL 0x2u /* a batch: distinct ids, rows applied on cfg.threads threads */
#define QZ__APPLY_LOADING 0x4u  /* open: not journaled, ops carry their seq, nothing waited for */

/* Apply ops[0..n) in this order: lock, check against the current state,
 * reserve (slots, id map room, payloads), journal, apply to memory, unlock,
 * wait for durability, then the repair and checkpoint triggers. A failure
 * in the first three steps changes nothing. For a batch, qz_errmsg names
 * the row. */
int qz__engine_apply(qz_db *db, qz__op *ops, size_t n, uint32_t mode);

/* Unlink deleted nodes when enough accumulated (every write path calls it). */
void qz__engine_maybe_repair(qz_db *db);

/* ---- reads (engine/read.c) ---------------------------------------------- */

int qz__engine_get(qz_db *db, uint64_t id, float *vector, void *meta, size_t meta_cap, size_t *meta_len);
/* The index's fetch (qz__orig_fetch_fn) for QZ__CFG_ORIG_STORAGE: the journal's point reads. */
int qz__engine_fetch_originals(void *user, size_t n, const uint64_t *labels, const uint64_t *seqs, void *const *dst,
                               unsigned char *ok);
/* QZ__CFG_ORIG_STORAGE: drop the pinned originals of every write the
 * backend holds now (the journal's applied sequence). Nothing at all, not
 * even the journal's lock, for other databases. */
void qz__engine_unpin(qz_db *db);
int qz__engine_contains(qz_db *db, uint64_t id);
/* query is the user's float vector (already checked). */
/* oversample 0: the dtype's default (quantized databases re-rank k * oversample). */
int qz__engine_search(qz_db *db, const float *query, size_t k, uint32_t ef, uint32_t oversample, qz_filter_fn filter,
                      void *fuser, uint64_t *ids, float *distances, size_t *found);

/* engine/search_batch.c: nq checked queries, row-major; results row-major
 * with k slots per row, short rows padded (UINT64_MAX, +inf), counts[i] per
 * row. Rows run on up to cfg.threads threads. */
int qz__engine_search_batch(qz_db *db, const float *queries, size_t nq, size_t dims, size_t k, uint32_t ef,
                            uint32_t oversample, qz_filter_fn filter, void *fuser, uint64_t *ids, float *distances,
                            size_t *counts);

int qz__engine_kv_get(qz_db *db, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);
int qz__engine_kv_scan(qz_db *db, const void *prefix, size_t plen, qz_kv_scan_fn fn, void *user);

/* ---- maintenance (engine/checkpoint.c, engine/check.c) ------------------ */

/* qz_db_flush: everything durable and applied, deleted nodes unlinked, the
 * graph snapshot brought up to date. */
int qz__engine_flush(qz_db *db);
/* Bring the graph snapshot up to date if writes happened since the last one. */
int qz__engine_checkpoint(qz_db *db);
/* After a write: checkpoint if the write count or age says so. */
void qz__engine_maybe_checkpoint(qz_db *db);
int qz__engine_compact(qz_db *db);
int qz__engine_check(qz_db *db);

typedef struct qz__engine_stats {
    uint32_t dim, metric, dtype, M, ef_construction, ef_search, max_level;
    uint64_t count, deleted, capacity, memory_bytes, open_reinserted;
    const char *simd;
} qz__engine_stats;
void qz__engine_stats_get(qz_db *db, qz__engine_stats *st);

/* Run-time tunables (values already range-checked by lib/api). */
enum { QZ__PARAM_EF_SEARCH = 1, QZ__PARAM_CKPT_WRITES = 2, QZ__PARAM_CKPT_MS = 3 };
void qz__engine_set_param(qz_db *db, int key, uint32_t value);

/* Encode a checked user vector into its record form (normalised; the form the journal stores and the
 * index takes): out has index->vec_bytes. */
void qz__engine_encode(const qz_db *db, const float *v, void *out);

#endif
