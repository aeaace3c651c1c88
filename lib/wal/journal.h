/*
 * journal.h - the write-behind log of a durable database (internal).
 *
 * Owns: the database directory's lock file, its log file (quartz.log) and
 * its LMDB storage backend; the background thread that group-commits log
 * records into LMDB; the durability modes; the key-value overlay that makes
 * the user's kv writes readable before they reach LMDB.
 *
 * Contract with the caller (lib/api): the caller applies a vector write to
 * the in-memory index itself, and appends the matching record here while it
 * holds its per-id write lock, so that the log order of two writes to the
 * same id equals the order in memory. qz__journal_wait() is called after
 * the caller released its locks, so concurrent SYNC writers share one fsync.
 *
 * Files in the directory:
 *   data.mdb, lock.mdb  LMDB environment (tables of quartz/sys/storage.h)
 *   quartz.log          the log: length-framed records, XXH3-checksummed,
 *                       monotonically increasing sequence numbers
 *   LOCK                flock()ed by the one writer process
 *
 * All functions are thread-safe unless noted. Every failure sets qz_errmsg().
 */
#ifndef QZ_WAL_JOURNAL_H
#define QZ_WAL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "quartz.h"
#include "quartz/sys/storage.h"

/* On-disk format version of a database directory (META key "format"). */
#define QZ_FORMAT_VERSION 1u

typedef struct qz__journal qz__journal;

typedef struct qz__journal_options {
    uint32_t durability; /* QZ_DURABILITY_SYNC / BATCHED / NONE, never DEFAULT */
    uint32_t window_ms;  /* BATCHED: the log is fsynced and applied at least this often */
    uint32_t readonly;   /* 1: no lock file, no log writes, LMDB opened read-only */
} qz__journal_options;

/* Open or create the directory. Takes the writer lock (QZ_EBUSY if another
 * process holds it), refuses a newer format (QZ_EVERSION), replays the valid
 * prefix of quartz.log into LMDB, truncates a torn or corrupt tail, and
 * starts the background thread. *created is set to 1 when the directory held
 * no database before. */
int qz__journal_open(const char *dir, const qz__journal_options *o, qz__journal **out, int *created);

/* The LMDB backend, for the caller's own META and GRAPH records and for
 * loading at open. The caller must not write QZ_TABLE_VECTORS or QZ_TABLE_KV. */
qz_storage *qz__journal_storage(qz__journal *j);

/* Visit every stored vector record in id order, checksums verified
 * (QZ_ECORRUPT names the id on mismatch). Pending log records are included:
 * call it right after open, before any write. */
typedef int (*qz__journal_vector_fn)(uint64_t id, uint64_t seq, const void *vec, size_t vec_bytes,
                                     const void *meta, size_t meta_len, void *user);
int qz__journal_scan_vectors(qz__journal *j, qz__journal_vector_fn fn, void *user);

/* Append a vector write / delete. Returns at once with the record's sequence
 * number (never waits for disk); pass it to qz__journal_wait(). */
int qz__journal_put(qz__journal *j, uint64_t id, const void *vec, size_t vec_bytes, const void *meta,
                    size_t meta_len, uint64_t *seq);
int qz__journal_del(qz__journal *j, uint64_t id, uint64_t *seq);

/* Key-value writes (keys 1..511 bytes). kv_del returns QZ_ENOTFOUND for an
 * absent key. Reads see every write appended before them. */
int qz__journal_kv_put(qz__journal *j, const void *key, size_t klen, const void *val, size_t vlen,
                       uint64_t *seq);
int qz__journal_kv_del(qz__journal *j, const void *key, size_t klen, uint64_t *seq);
int qz__journal_kv_get(qz__journal *j, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);
typedef int (*qz__journal_kv_fn)(const void *key, size_t klen, const void *val, size_t vlen, void *user);
int qz__journal_kv_scan(qz__journal *j, const void *prefix, size_t plen, qz__journal_kv_fn fn, void *user);

/* An atomic group: records added to a group are appended as ONE log record
 * at commit, so replay applies all of them or none. */
typedef struct qz__jgroup qz__jgroup;
int qz__jgroup_begin(qz__journal *j, qz__jgroup **g);
int qz__jgroup_put(qz__jgroup *g, uint64_t id, const void *vec, size_t vec_bytes, const void *meta,
                   size_t meta_len);
int qz__jgroup_del(qz__jgroup *g, uint64_t id);
int qz__jgroup_kv_put(qz__jgroup *g, const void *key, size_t klen, const void *val, size_t vlen);
int qz__jgroup_kv_del(qz__jgroup *g, const void *key, size_t klen);
int qz__jgroup_commit(qz__jgroup *g, uint64_t *seq); /* frees g */
void qz__jgroup_abort(qz__jgroup *g);                /* frees g */

/* Wait as the durability mode says: SYNC returns once record seq (and all
 * before it) is fsynced in the log; BATCHED and NONE return at once unless
 * the log's memory buffer is full (back-pressure). */
int qz__journal_wait(qz__journal *j, uint64_t seq);

/* Everything appended so far is fsynced and applied to LMDB. */
int qz__journal_flush(qz__journal *j);

/* Flush, stop the thread, close LMDB, release the lock; frees j even on error. */
int qz__journal_close(qz__journal *j);

#endif
