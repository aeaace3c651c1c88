/*
 * wal.h - the log file itself: reading it (wal_replay.c) and appending to it
 * with group commit (wal_write.c). Internal; the journal (journal.c) is the
 * only user besides the tests. Byte layout: persist/format.h.
 *
 * Writer model (wal_write.c):
 * - qz__wal_append() encodes a record into an in-memory block list under a
 *   mutex, assigns the next sequence number, and never touches the disk.
 * - Exactly one thread at a time is the I/O "leader": it takes every byte
 *   appended so far, writes it with pwritev and (in sync mode) fdatasyncs it
 *   without holding the mutex, then publishes the new durable sequence
 *   number and wakes the waiters. A thread in qz__wal_sync() that finds its
 *   record not yet durable either becomes the next leader or waits for the
 *   current one; so one fdatasync covers every record appended before it
 *   started (group commit). The journal's background thread is a leader
 *   like any other (qz__wal_write_out()).
 * - Records stay in memory after they are written until the journal has
 *   applied them to LMDB (qz__wal_pending() / qz__wal_mark_applied()); so
 *   applying never re-reads the file.
 * - A write or fdatasync failure is sticky: every later append, sync and
 *   write_out returns the same error (the log's state on disk is unknown).
 * - Log reset (qz__wal_checkpoint()): as leader, write and fsync everything,
 *   let the journal apply it all, then create a new empty log (header
 *   base_seq = last written seq, a new random generation, prev_generation =
 *   the old file's generation) as quartz.log.tmp, fsync it, rename it over
 *   quartz.log and fsync the directory. A crash at any point leaves either
 *   the old log (every record of it already in the backend, which records
 *   the last applied seq, so replay skips them) or the new empty one.
 *
 * Thread safety: every function of a qz__wal may be called from any thread,
 * except close, which must not race with anything.
 */
#ifndef QZ_WAL_WAL_H
#define QZ_WAL_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "quartz.h"

/* ---- reading (wal_replay.c) ------------------------------------------- */

/* One record, pointing into the caller's buffer. */
typedef struct qz__wal_rec {
    uint32_t type;
    uint32_t len; /* payload bytes */
    uint64_t seq;
    const unsigned char *payload;
} qz__wal_rec;

/* One operation of a record (a GROUP yields several with the same seq). */
typedef struct qz__wal_op {
    uint32_t type; /* QZ__WAL_VECTOR_PUT .. QZ__WAL_KV_DEL */
    uint32_t vec_bytes, meta_len, klen, vlen;
    uint64_t id;
    const void *vec, *meta, *key, *val;
} qz__wal_op;

typedef int (*qz__wal_rec_fn)(const qz__wal_rec *rec, void *user);
typedef int (*qz__wal_op_fn)(const qz__wal_op *op, uint64_t seq, void *user);

/* Check the record at p (avail bytes readable): it must fit, match its
 * checksum and carry seq expect_seq. Returns 1 and fills rec and *size when
 * valid, else 0 with a static reason in *why. */
int qz__wal_rec_check(const unsigned char *p, size_t avail, uint64_t expect_seq, qz__wal_rec *rec, size_t *size,
                      const char **why);

/* Validate the whole payload of rec, then call fn (if not NULL) once per
 * operation, a GROUP's in order. QZ_ECORRUPT when malformed (fn never runs
 * then, so a group is all or nothing); otherwise fn's first nonzero value. */
int qz__wal_decode(const qz__wal_rec *rec, qz__wal_op_fn fn, void *user);

typedef struct qz__wal_replay_info {
    uint32_t version;         /* of the header (0 for a missing or empty file) */
    uint64_t base_seq;        /* from the header (0 for a missing or empty file) */
    uint64_t generation;      /* from the header (0 for version 1 or no file) */
    uint64_t prev_generation; /* from the header (0 for version 1 or no file) */
    uint64_t last_seq;        /* seq of the last valid record, base_seq if none */
    uint64_t records;         /* valid records */
    uint64_t valid_end;       /* offset just past the last valid record */
    uint64_t file_size;
    int torn;                 /* 1: bytes from valid_end on were discarded */
    int missing;              /* 1: no file (or an empty one) */
    const char *stop_reason;  /* static text: why reading stopped at valid_end */
} qz__wal_replay_info;

/* Read a log image / file: verify the header and every record, then call fn
 * (if not NULL) for every valid record in order; fn never runs when the
 * image is refused. Reading stops at the first torn, short,
 * checksum-failing or out-of-sequence record. If no valid record follows it
 * (a scan forward for plausible record headers whose checksum matches), the
 * rest is a torn tail: discarded, info->torn = 1, QZ_OK. If valid records
 * follow, the log is damaged in the middle: QZ_ECORRUPT with a message
 * naming the damaged record's seq and offset and the valid records after
 * it (never a silent roll-back). A missing or zero-length file is an empty
 * log (info->missing). Errors: QZ_ECORRUPT (bad header, damage in the
 * middle, or a record with a valid checksum but a malformed payload),
 * QZ_EVERSION (newer log format), QZ_EIO, QZ_ENOMEM, or fn's first nonzero
 * value. */
int qz__wal_replay_buf(const void *buf, size_t len, qz__wal_rec_fn fn, void *user, qz__wal_replay_info *info);
int qz__wal_replay_file(const char *path, qz__wal_rec_fn fn, void *user, qz__wal_replay_info *info);

/* The whole file at path in a buffer of *len bytes (free with qz__free);
 * *buf NULL and *len 0 when there is no file. */
int qz__wal_load_file(const char *path, unsigned char **buf, size_t *len);

/* ---- writing (wal_write.c) --------------------------------------------- */

typedef struct qz__wal qz__wal;

/* A payload piece; a record's payload is its pieces concatenated. */
typedef struct qz__wal_part {
    const void *p;
    size_t n;
} qz__wal_part;

/* Position in the applied stream (from qz__wal_pending). */
typedef struct qz__wal_pos {
    void *blk;
    size_t off;
    uint64_t seq;   /* last record visited */
    uint64_t bytes; /* bytes visited */
} qz__wal_pos;

/* Create a new empty log at path (atomically replacing any file there) whose
 * first record will get seq base_seq + 1, and open it for appending. Its
 * header carries a new random nonzero generation (never prev_generation)
 * and prev_generation: the generation of the log it replaces (0 if none). */
int qz__wal_open(const char *path, uint64_t base_seq, uint64_t prev_generation, qz__wal **out);

/* A log with no file: records live in memory until applied; write_out and
 * sync only move the cursors (qz__wal_sync returns at once), checkpoint only
 * applies. For backends whose commit is itself durable. */
int qz__wal_open_mem(uint64_t base_seq, qz__wal **out);

/* Close the file and free everything; unwritten records are dropped. */
void qz__wal_close(qz__wal *w);

/* Append a record; *seq receives its sequence number. No I/O.
 * QZ_EFULL if the payload exceeds QZ__WAL_MAX_PAYLOAD; the sticky error. */
int qz__wal_append(qz__wal *w, uint32_t type, const qz__wal_part *parts, int nparts, uint64_t *seq);

/* Return once record seq and all before it are fsynced (group commit). */
int qz__wal_sync(qz__wal *w, uint64_t seq);

/* Write every appended record to the file, and fdatasync it if do_sync. */
int qz__wal_write_out(qz__wal *w, int do_sync);

/* Visit, in order, records already written to the file but not yet marked
 * applied, stopping after max_bytes (at least one record is visited).
 * *pos describes the end of the visited range; returns the number of
 * records visited (0: nothing pending) or fn's error. */
int qz__wal_pending(qz__wal *w, size_t max_bytes, qz__wal_rec_fn fn, void *user, qz__wal_pos *pos);

/* Records up to pos are in LMDB: free their memory. */
void qz__wal_mark_applied(qz__wal *w, const qz__wal_pos *pos);

/* Log reset: as leader, write and fsync everything appended, call apply(user)
 * which must apply (qz__wal_pending + mark_applied) every written record,
 * then replace the file by a new empty log. Appends continue meanwhile and
 * go to the new file. */
int qz__wal_checkpoint(qz__wal *w, int (*apply)(void *user), void *user);

/* Counters (each takes the mutex briefly). */
uint64_t qz__wal_last_seq(qz__wal *w);      /* last seq appended */
uint64_t qz__wal_durable_seq(qz__wal *w);   /* last seq fsynced */
uint64_t qz__wal_applied_seq(qz__wal *w);   /* last seq marked applied */
uint64_t qz__wal_file_bytes(qz__wal *w);    /* size of the current file */
uint64_t qz__wal_unapplied_bytes(qz__wal *w);
uint64_t qz__wal_syncs(qz__wal *w);         /* fdatasync calls so far */
uint64_t qz__wal_generation(qz__wal *w);    /* of the current file (0 without a file) */

/* ---- journal internals for tests and benchmarks (journal.c) ------------ */

struct qz__journal;

/* The journal's log writer (NULL when read-only). */
qz__wal *qz__journal_wal(struct qz__journal *j);

/* Override the journal's thresholds (0 keeps a value): unapplied bytes that
 * wake the background thread early, unapplied bytes at which
 * qz__journal_wait() blocks (back-pressure), log file size that triggers a
 * log reset. */
void qz__journal_set_limits(struct qz__journal *j, uint64_t kick_bytes, uint64_t max_pending, uint64_t reset_bytes);

#endif
