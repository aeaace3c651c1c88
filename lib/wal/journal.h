/*
 * journal.h - durable state over any storage backend (internal).
 *
 * The journal turns a stream of writes (vector put/delete, kv put/delete,
 * atomic groups) into commits of a qz_storage backend, under a durability
 * mode. It works over ANY backend given to it; the file log is an optional
 * accelerator:
 *
 *   with a log (log_path set, native directories): a write is appended to
 *     quartz.log and is durable once the log is fsynced (group commit); the
 *     background thread applies written records to the backend in large
 *     transactions and resets the log. This is the LMDB composition.
 *   without a log (log_path NULL: in-memory databases, a Durable Object's
 *     storage, any backend whose commit is already durable): records wait in
 *     memory until they are applied, and "durable" means "committed to the
 *     backend". SYNC applies at wait() (one commit covers every waiting
 *     writer); BATCHED applies every window_ms (from the background thread,
 *     or, with QZ__J_NO_THREAD, at the first wait() after the window); NONE
 *     applies at flush/close or when the pending bytes pass a threshold.
 *
 * The journal does not own the backend (the caller closes it after
 * qz__journal_close()) and knows no file of the backend: the directory, its
 * lock and data.mdb belong to the caller (engine/open_dir.c).
 *
 * Contract with the caller (lib/engine): the caller applies a vector write to
 * the in-memory index itself, and appends the matching record here while it
 * holds its per-id write lock, so that the log order of two writes to the
 * same id equals the order in memory. qz__journal_wait() is called after the
 * caller released its locks, so concurrent SYNC writers share one fsync (or
 * one backend commit).
 *
 * Integrity (with a log): the log is tied to the backend by a generation
 * number recorded in the log header and in META (see persist/format.h): a
 * missing log, or an older copy of it, is QZ_ECORRUPT at open, as is damage
 * in the middle of the log that is followed by valid records (only a torn
 * tail, with nothing valid after it, is discarded).
 *
 * All functions are thread-safe unless noted. Every failure sets qz_errmsg().
 */
#ifndef QZ_WAL_JOURNAL_H
#define QZ_WAL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "quartz.h"
#include "quartz/sys/storage.h"

typedef struct qz__journal qz__journal;

/* Durability modes (the engine maps the public ones onto these). */
enum { QZ__DUR_SYNC = 1, QZ__DUR_BATCHED = 2, QZ__DUR_NONE = 3 };

/* qz__journal_options.flags */
#define QZ__J_READONLY 0x1u  /* no writes; with a log, its records are kept in overlays */
#define QZ__J_NO_THREAD 0x2u /* never start a background thread (wasm) */

typedef struct qz__journal_options {
    uint32_t durability; /* QZ__DUR_*, never 0 */
    uint32_t window_ms;  /* BATCHED: applied (or the log fsynced) at least this often; 0 = 100 */
    uint32_t flags;      /* QZ__J_* */
    const char *log_path; /* the log file, or NULL for none */
} qz__journal_options;

/* Open over backend @p st: refuse a newer format (QZ_EVERSION), write META
 * "format" into an empty backend (*created = 1), replay the log (if any)
 * into the backend and start a fresh one, start the background thread
 * (unless QZ__J_NO_THREAD, read-only, or neither a log nor BATCHED/NONE
 * needs one). */
int qz__journal_open(qz_storage *st, const qz__journal_options *o, qz__journal **out, int *created);

/* The backend, for the caller's own META and GRAPH records and for loading
 * at open. The caller must not write QZ_TABLE_VECTORS or QZ_TABLE_KV. */
qz_storage *qz__journal_storage(qz__journal *j);

/* Format of the database (META "format"), for the record codecs. */
uint32_t qz__journal_format(qz__journal *j);

/* Visit every stored vector record in id order, checksums verified
 * (QZ_ECORRUPT names the id on mismatch). Pending records are included:
 * call it right after open, before any write. */
typedef int (*qz__journal_vector_fn)(uint64_t id, uint64_t seq, const void *vec, size_t vec_bytes,
                                     const void *meta, size_t meta_len, void *user);
int qz__journal_scan_vectors(qz__journal *j, qz__journal_vector_fn fn, void *user);

/* Point reads for re-ranking and get (an index without its originals in
 * memory): for i < n, the vector of the record under ids[i] into dst[i]
 * (vec_bytes) and ok[i] = 1 when that record is the write of sequence
 * seqs[i], 2 when it is another (later) write of the id, 0 when the id is
 * absent (nothing copied). Reads
 * the backend (and a read-only handle's log records) as of now, checksums
 * verified: QZ_ECORRUPT names a damaged record. Records not yet applied to
 * the backend are NOT seen: the caller keeps those itself until
 * qz__journal_applied_seq() covers them. Thread-safe, one read transaction
 * per call. */
int qz__journal_read_vectors(qz__journal *j, size_t n, const uint64_t *ids, const uint64_t *seqs, size_t vec_bytes,
                             void *const *dst, unsigned char *ok);
/* Every record up to this sequence is in the backend (UINT64_MAX for a
 * read-only handle, which writes none). */
uint64_t qz__journal_applied_seq(qz__journal *j);
/* Sequence of the last record appended (0 before any; UINT64_MAX for a
 * read-only handle). */
uint64_t qz__journal_last_seq(qz__journal *j);

/* Verify every record the backend holds (VECTORS and KV checksums, key
 * shapes): QZ_ECORRUPT naming the first damaged record. For qz_db_check(). */
int qz__journal_verify(qz__journal *j);

/* Append a vector write / delete. Returns at once with the record's sequence
 * number (never waits for disk); pass it to qz__journal_wait(). */
int qz__journal_put(qz__journal *j, uint64_t id, const void *vec, size_t vec_bytes, const void *meta,
                    size_t meta_len, uint64_t *seq);
int qz__journal_del(qz__journal *j, uint64_t id, uint64_t *seq);

/* Key-value writes (keys 1..QZ_MAX_KEY bytes). kv_del returns QZ_ENOTFOUND
 * for an absent key. Reads see every write appended before them. */
int qz__journal_kv_put(qz__journal *j, const void *key, size_t klen, const void *val, size_t vlen,
                       uint64_t *seq);
int qz__journal_kv_del(qz__journal *j, const void *key, size_t klen, uint64_t *seq);
int qz__journal_kv_get(qz__journal *j, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);
typedef int (*qz__journal_kv_fn)(const void *key, size_t klen, const void *val, size_t vlen, void *user);
int qz__journal_kv_scan(qz__journal *j, const void *prefix, size_t plen, qz__journal_kv_fn fn, void *user);

/* An atomic group: records added to a group are appended as ONE record at
 * commit, so replay (or the backend commit) applies all of them or none. */
typedef struct qz__jgroup qz__jgroup;
int qz__jgroup_begin(qz__journal *j, qz__jgroup **g);
int qz__jgroup_put(qz__jgroup *g, uint64_t id, const void *vec, size_t vec_bytes, const void *meta,
                   size_t meta_len);
int qz__jgroup_del(qz__jgroup *g, uint64_t id);
int qz__jgroup_kv_put(qz__jgroup *g, const void *key, size_t klen, const void *val, size_t vlen);
int qz__jgroup_kv_del(qz__jgroup *g, const void *key, size_t klen);
int qz__jgroup_commit(qz__jgroup *g, uint64_t *seq); /* frees g */
void qz__jgroup_abort(qz__jgroup *g);                /* frees g */

/* QZ_OK, or why no write can be accepted: QZ_EREADONLY, or the sticky
 * error of a failed log write or backend commit (with its message). */
int qz__journal_writable(qz__journal *j);

/* Make a storage failure seen outside the journal (a checkpoint's commit)
 * sticky as if the journal had met it: "what: <current message>". Returns
 * the sticky code. */
int qz__journal_fail(qz__journal *j, int rc, const char *what);

/* Wait as the durability mode says: SYNC returns once record seq (and all
 * before it) survives a crash (log fsynced, or backend committed); BATCHED
 * and NONE return at once unless too many bytes are pending
 * (back-pressure). */
int qz__journal_wait(qz__journal *j, uint64_t seq);

/* Everything appended so far is durable and applied to the backend. */
int qz__journal_flush(qz__journal *j);

/* Called by the background thread after each of its cycles, with no journal
 * lock held (the engine's time-based checkpoint). Set before any write. */
void qz__journal_set_tick(qz__journal *j, void (*fn)(void *user), void *user);

/* Flush, stop the thread, reset the log; frees j even on error. Does not
 * close the backend. */
int qz__journal_close(qz__journal *j);

#endif
