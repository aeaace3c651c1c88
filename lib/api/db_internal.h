/*
 * db_internal.h - the qz_db handle (internal to lib/api).
 *
 * lib/api is the only code that knows the public ABI: it checks arguments,
 * takes the locks, calls the index and the journal, and maps errors.
 *
 * Lock order, outermost first: `writers` -> idmap shard `write` -> index
 * `resize` (shared) -> node spinlocks / idmap shard `map`. Every write holds
 * `writers` shared; whatever needs the id map and the graph to hold still
 * together (check, graph snapshots) holds it exclusive. Repair and growth
 * take `resize` exclusive and are never called with any of these held.
 */
#ifndef QZ_API_DB_INTERNAL_H
#define QZ_API_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "index/hnsw.h"
#include "index/idmap.h"
#include "quartz.h"

struct qz__journal;

struct qz_db {
    qz__hnsw *index;
    qz__idmap ids;
    qz_open_options opts;        /* resolved: no field left at 0 */
    const qz__kernels *kernels;
    struct qz__journal *journal; /* NULL for an in-memory database */
    int dir_lock_fd;             /* persist.c: flock()ed LOCK of a writable directory, or -1 */
    int readonly;
    atomic_int repairing;
    atomic_uint upserts;         /* nonzero once any id was replaced */
    pthread_rwlock_t writers;
    int snapshot_dirty;                 /* graph differs from the stored snapshot */
    atomic_size_t writes_since_snapshot;
    struct qz_storage *kv_mem;          /* key-value store of an in-memory database */
};

/* options.c */
int qz__options_read(const qz_open_options *user, qz_open_options *out);
int qz__options_resolve(qz_open_options *o, int existing);
int qz__search_params_read(const qz_search_params *user, qz_search_params *out);

/* vector.c: argument checks shared by writes and searches; encodes into `out`. */
int qz__check_vector(const qz_db *db, const float *v, size_t dims, const char *what);

/* kv.c: argument checks shared by writes, kv and transactions. */
int qz__kv_check_key(const void *key, size_t klen);
/* A byte range (metadata, value): at most QZ_MAX_METADATA, NULL only if empty. */
int qz__check_bytes(const void *p, size_t len, const char *what);

/* write.c */
/* The index's metadata blob: u32 length, then the bytes; NULL when len is 0. */
int qz__payload_new(const void *meta, size_t len, void **out);
int qz__db_write(qz_db *db, uint64_t id, const float *vec, const void *meta, size_t meta_len, int upsert,
                 int wait, uint64_t *seq);
/* Load path: insert an already-encoded vector without journaling. */
int qz__db_load_one(qz_db *db, uint64_t id, uint64_t seq, const void *enc, const void *meta, size_t meta_len);
void qz__db_maybe_repair(qz_db *db);

/* db.c: the in-memory part of a handle. */
int qz__db_create(const qz_open_options *resolved, qz_db **out);
void qz__db_free(qz_db *db);

/* persist.c: durable directories (only with LMDB). */
int qz__db_open_dir(const char *path, const qz_open_options *user, qz_db **out);
int qz__db_close_dir(qz_db *db);
int qz__db_checkpoint(qz_db *db);

#define QZ__API_ENTER() qz__err_clear()

#endif
