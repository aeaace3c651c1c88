/*
 * format.h - every byte layout libquartz writes (internal): the log file
 * (quartz.log), the records in the storage backend's tables (VECTORS, KV,
 * META, GRAPH) and the options record.
 *
 * This is the ONE place that defines these layouts; docs/file-format.md
 * describes the same bytes for humans and must be changed with this file.
 * All integers are little-endian (util/endian.h) unless marked BIG-endian;
 * checksums are XXH3_64bits (xxHash 0.8, seed 0 unless stated).
 *
 * Log file:
 *
 *   header, version 2 (QZ__WAL_HEADER_SIZE = 48 bytes; written)
 *     0   u8[8]  magic "QZLOG\r\n\x1a"
 *     8   u32    log format version (QZ__WAL_VERSION = 2)
 *     12  u32    header size (48)
 *     16  u64    base_seq: the first record of this file has seq base_seq + 1
 *     24  u64    generation: random, nonzero, chosen when the file is created
 *     32  u64    prev_generation: generation of the log this file replaced
 *                (0 if none)
 *     40  u64    XXH3 of bytes 0..39
 *   header, version 1 (QZ__WAL_HEADER_SIZE_V1 = 32 bytes; still read, its
 *   generation and prev_generation count as 0)
 *     0 magic, 8 u32 version (1), 12 u32 size (32), 16 u64 base_seq,
 *     24 u64 XXH3 of bytes 0..23
 *   In every version the last 8 bytes of the header are the XXH3 of the
 *   bytes before them, so a newer header can be verified before its version
 *   is refused (QZ_EVERSION).
 *   records, back to back until the end of the file
 *     0   u32    len: payload bytes
 *     4   u32    type (QZ__WAL_*)
 *     8   u64    seq: base_seq + 1 for the first record, then +1 each
 *     16  u8[len] payload
 *     16+len u64 XXH3 of bytes 0 .. 16+len-1 (header and payload)
 *
 * A record is valid when it lies wholly inside the file, its checksum
 * matches, its seq is the expected one and its payload parses. Reading stops
 * at the first invalid record. If nothing valid follows it, the rest of the
 * file is a torn tail and is discarded. If a later valid record follows
 * (found by scanning forward for a plausible header: type 1..5, seq in
 * (expected, expected + QZ__WAL_SCAN_SEQ_WINDOW), a length that fits, and a
 * matching checksum), the log is damaged in the middle: QZ_ECORRUPT, never a
 * silent roll-back of the records after the damage.
 *
 * The log is tied to the backend by its generation: every apply transaction
 * (and every writable open) stores the generation of the current log in
 * META "log.generation". At open, with META holding a generation G, the log
 * must exist and have generation G, or prev_generation G (a crash between
 * creating a new log and the next apply); otherwise QZ_ECORRUPT.
 *
 * Payloads:
 *   VECTOR_PUT  u64 id, u32 vec_bytes, u32 meta_len, vec, meta
 *   VECTOR_DEL  u64 id
 *   KV_PUT      u32 klen, u32 vlen, key, value
 *   KV_DEL      u32 klen, key
 *   GROUP       u32 count, u32 reserved (0), then count entries
 *               { u32 type (1..4), u32 len, body as the payload above };
 *               all entries share the group's seq and are applied together.
 *
 * LMDB records written by the journal:
 *   QZ_TABLE_VECTORS  key   u64 id, BIG-endian (byte order == id order)
 *                     value u64 seq, u32 vec_bytes, u32 meta_len, vec, meta,
 *                           u64 XXH3 of everything before it, seeded with
 *                           the id (format 2; seed 0 in format 1), so a
 *                           record under another id fails
 *   QZ_TABLE_KV       key   the user key
 *                     value the user value, then u64 XXH3 of the value with
 *                           seed XXH3(key) (so a value under the wrong key fails)
 *   QZ_TABLE_META     "format"         u32 QZ__FORMAT_VERSION (below)
 *                     "journal.seq"    u64 seq of the last log record applied
 *                     "log.generation" u64 generation of the log whose
 *                                      records the backend holds (absent in
 *                                      databases that never had a v2 log)
 */
#ifndef QZ_PERSIST_FORMAT_H
#define QZ_PERSIST_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "quartz.h"
#include "util/endian.h"

#define QZ__WAL_MAGIC "QZLOG\r\n\x1a"
#define QZ__WAL_MAGIC_LEN 8u
#define QZ__WAL_VERSION 2u
#define QZ__WAL_HEADER_SIZE 48u                  /* version 2: what is written */
#define QZ__WAL_HEADER_SIZE_V1 32u               /* version 1: still read */
#define QZ__WAL_HEADER_MAX 4096u                 /* a header claiming more is corrupt */
#define QZ__WAL_HDR_VERSION 8u                   /* offsets in the header */
#define QZ__WAL_HDR_SIZE 12u
#define QZ__WAL_HDR_BASE_SEQ 16u
#define QZ__WAL_HDR_GENERATION 24u               /* version >= 2 */
#define QZ__WAL_HDR_PREV_GENERATION 32u          /* version >= 2 */
#define QZ__WAL_REC_HEADER 16u                   /* len, type, seq */
#define QZ__WAL_REC_TRAILER 8u                   /* checksum */
#define QZ__WAL_REC_OVERHEAD 24u
#define QZ__WAL_MAX_PAYLOAD ((uint32_t)1 << 30)  /* 1 GiB: larger groups are refused */
#define QZ__WAL_SCAN_SEQ_WINDOW ((uint64_t)1 << 32) /* seqs a later valid record may be ahead by */

enum {
    QZ__WAL_VECTOR_PUT = 1,
    QZ__WAL_VECTOR_DEL = 2,
    QZ__WAL_KV_PUT = 3,
    QZ__WAL_KV_DEL = 4,
    QZ__WAL_GROUP = 5
};

/* Fixed parts of the payloads. */
#define QZ__WAL_VECTOR_PUT_FIXED 16u /* id, vec_bytes, meta_len */
#define QZ__WAL_VECTOR_DEL_FIXED 8u
#define QZ__WAL_KV_PUT_FIXED 8u      /* klen, vlen */
#define QZ__WAL_KV_DEL_FIXED 4u
#define QZ__WAL_GROUP_FIXED 8u       /* count, reserved */
#define QZ__WAL_GROUP_ENTRY 8u       /* type, len */

/* LMDB vector record. */
#define QZ__VREC_FIXED 16u   /* seq, vec_bytes, meta_len */
#define QZ__VREC_TRAILER 8u

/* META keys. */
#define QZ__META_FORMAT "format"           /* u32: QZ__FORMAT_VERSION */
#define QZ__META_JOURNAL_SEQ "journal.seq" /* u64: last log record applied */
#define QZ__META_LOG_GENERATION "log.generation" /* u64: generation of the log applied from */
#define QZ__META_OPTIONS "options"         /* the options record below */

/* Format of a database (META "format"). 1: vector checksums seed 0.
 * 2: vector checksums are seeded with the id (a record under the wrong key
 * fails). A newer value is refused with QZ_EVERSION. */
#define QZ__FORMAT_VERSION 2u

/* Options record (META "options"), 48 bytes:
 *   0 u32 version (QZ__OPTREC_VERSION)   4 u32 dimensions   8 u32 metric
 *  12 u32 dtype   16 u32 M   20 u32 ef_construction   24 u32 ef_search
 *  28 u32 reserved (0)   32 u64 seed   40 u64 XXH3 of bytes 0..39 */
#define QZ__OPTREC_VERSION 1u
#define QZ__OPTREC_SIZE 48u

/* Graph snapshot (GRAPH table), see index/hnsw_io.c:
 *   key "h"               header: u32 magic QZ__GRAPH_MAGIC, u32 version,
 *                         u32 M, u32 dim, u32 metric, u32 vec_bytes,
 *                         u64 entry ((level << 32) | slot, or all ones),
 *                         u64 high_water, u64 nodes, u64 XXH3 of the rest
 *   key "n" + u32 BIG c   chunk c: the nodes of slots
 *                         [c * QZ__GRAPH_CHUNK, (c + 1) * QZ__GRAPH_CHUNK):
 *                         u32 count, then per node u32 slot, u64 label,
 *                         u64 seq, u32 level, per layer u32 n + n u32 links;
 *                         then u64 XXH3 of everything before it. */
#define QZ__GRAPH_MAGIC 0x52475a51u /* "QZGR" read as a little-endian u32 */
#define QZ__GRAPH_VERSION 1u
#define QZ__GRAPH_CHUNK 1024u

/* Fill a log header of the current version (QZ__WAL_HEADER_SIZE bytes). */
static inline void qz__wal_header_encode(unsigned char h[QZ__WAL_HEADER_SIZE], uint64_t base_seq, uint64_t generation,
                                         uint64_t prev_generation)
{
    memcpy(h, QZ__WAL_MAGIC, QZ__WAL_MAGIC_LEN);
    qz__put_u32le(h + QZ__WAL_HDR_VERSION, QZ__WAL_VERSION);
    qz__put_u32le(h + QZ__WAL_HDR_SIZE, QZ__WAL_HEADER_SIZE);
    qz__put_u64le(h + QZ__WAL_HDR_BASE_SEQ, base_seq);
    qz__put_u64le(h + QZ__WAL_HDR_GENERATION, generation);
    qz__put_u64le(h + QZ__WAL_HDR_PREV_GENERATION, prev_generation);
    qz__put_u64le(h + QZ__WAL_HEADER_SIZE - 8, XXH3_64bits(h, QZ__WAL_HEADER_SIZE - 8));
}

/* Checksum of a VECTORS value (the bytes before its trailer) under id, in
 * database format fmt. */
static inline uint64_t qz__vrec_hash(const void *rec, size_t n, uint64_t id, uint32_t fmt)
{
    return XXH3_64bits_withSeed(rec, n, fmt >= 2 ? id : 0);
}

/* Checksum of an LMDB KV value. */
static inline uint64_t qz__kv_value_hash(const void *key, size_t klen, const void *val, size_t vlen)
{
    return XXH3_64bits_withSeed(val, vlen, XXH3_64bits(key, klen));
}

#endif
