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
 *               (vec: the f32 record form for every dtype; codes are never stored)
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
/* u64: the last journal sequence when the graph snapshot was last saved (all
 * vector writes up to it are in the snapshot, none after it). At open, when
 * the journal's last applied sequence equals it, no write followed the
 * snapshot, so every node saved live must find its vector record: one that
 * does not is damage (QZ_ECORRUPT), not a delete. Absent (databases written
 * before this key): no such check. Written after the snapshot's transaction. */
#define QZ__META_GRAPH_SEQ "graph.seq"

/* Format of a database (META "format"). 1: vector checksums seed 0.
 * 2: vector checksums are seeded with the id (a record under the wrong key
 * fails). A newer value is refused with QZ_EVERSION. */
#define QZ__FORMAT_VERSION 2u

/* Options record (META "options"), 48 bytes:
 *   0 u32 version (QZ__OPTREC_VERSION)   4 u32 dimensions   8 u32 metric
 *  12 u32 dtype (0 default, 1 f32, 2 f16, 3 int8, 4 binary: vector/codec.h)   16 u32 M   20 u32 ef_construction   24 u32 ef_search
 *  28 u32 reserved (0)   32 u64 seed   40 u64 XXH3 of bytes 0..39 */
#define QZ__OPTREC_VERSION 1u
#define QZ__OPTREC_SIZE 48u

/* Graph snapshot (GRAPH table), written and read by index/hnsw_io.c.
 *
 * Version 2 (written):
 *   key "h"               header, QZ__GRAPH_HEADER_SIZE (64) bytes:
 *                           0 u32 magic QZ__GRAPH_MAGIC   4 u32 version (2)
 *                           8 u32 M   12 u32 dim   16 u32 metric
 *                          20 u32 vec_bytes
 *                          24 u64 entry ((level << 32) | slot, or all ones
 *                                 when the snapshot holds no node)
 *                          32 u64 high_water: slots [0, high_water) exist
 *                          40 u64 nodes: node records in all chunks
 *                          48 u32 chunk_slots (QZ__GRAPH_CHUNK)
 *                          52 u32 chunks: number of chunk records
 *                          56 u64 XXH3 of bytes 0..55
 *   key "n" + u32 BIG c   chunk c (5-byte key; byte order == chunk order):
 *                         the nodes of slots [c * QZ__GRAPH_CHUNK,
 *                         (c + 1) * QZ__GRAPH_CHUNK); a chunk without
 *                         nodes has no record.
 *                           u32 count (1 .. QZ__GRAPH_CHUNK)
 *                           count node records, slots strictly ascending:
 *                             0 u32 slot   4 u64 label   12 u64 seq
 *                            20 u8 level (0 .. QZ__HNSW_MAX_LEVEL)
 *                            21 u8 flags (QZ__GRAPH_NODE_DELETED; the
 *                                  other bits are 0)
 *                            22 u16 reserved (0)
 *                            24 per layer 0 .. level: u32 n, n u32 links
 *                               (n <= 2M on layer 0, <= M above; every link
 *                               is another node of the snapshot whose level
 *                               is at least the layer's)
 *                           u64 XXH3_64bits_withSeed(bytes before it, c)
 *                         A DELETED node is a waypoint: it was no result
 *                         when saved and its label is not in the id map;
 *                         a LIVE node is paired with its VECTORS record by
 *                         (label, seq) at load.
 *
 * Version 1 (read only; written by libquartz 1.0 in host order, which on
 * every host that wrote it, x86-64, is little-endian):
 *   header QZ__GRAPH_V1_HEADER_SIZE (56) bytes: bytes 0..47 as in version
 *   2, then u64 XXH3 of bytes 0..47; chunk records as in version 2 except
 *   that a node's bytes 20..23 are one u32 level, every node was LIVE and
 *   the checksum is XXH3_64bits (seed 0). */
#define QZ__GRAPH_MAGIC 0x52475a51u /* "QZGR" read as a little-endian u32 */
#define QZ__GRAPH_VERSION 2u
#define QZ__GRAPH_CHUNK 1024u
#define QZ__GRAPH_KEY_HEADER "h"
#define QZ__GRAPH_KEY_CHUNK 'n'
#define QZ__GRAPH_CHUNK_KEY_SIZE 5u
#define QZ__GRAPH_HEADER_SIZE 64u
#define QZ__GRAPH_V1_HEADER_SIZE 56u
#define QZ__GRAPH_NODE_FIXED 24u   /* slot, label, seq, level/flags (v1: u32 level) */
#define QZ__GRAPH_CHUNK_TRAILER 8u /* checksum */
#define QZ__GRAPH_NODE_DELETED 0x01u

/* The header's fields (both versions; v2-only fields are 0 in version 1). */
typedef struct qz__graph_header {
    uint32_t magic, version, M, dim, metric, vec_bytes;
    uint64_t entry, high_water, nodes;
    uint32_t chunk_slots, chunks;
} qz__graph_header;

static inline void qz__graph_chunk_key(unsigned char k[QZ__GRAPH_CHUNK_KEY_SIZE], uint32_t c)
{
    k[0] = (unsigned char)QZ__GRAPH_KEY_CHUNK;
    qz__put_u32be(k + 1, c);
}

/* Fill a version-2 header (h->version is written as given). */
static inline void qz__graph_header_encode(unsigned char b[QZ__GRAPH_HEADER_SIZE], const qz__graph_header *h)
{
    qz__put_u32le(b + 0, h->magic);
    qz__put_u32le(b + 4, h->version);
    qz__put_u32le(b + 8, h->M);
    qz__put_u32le(b + 12, h->dim);
    qz__put_u32le(b + 16, h->metric);
    qz__put_u32le(b + 20, h->vec_bytes);
    qz__put_u64le(b + 24, h->entry);
    qz__put_u64le(b + 32, h->high_water);
    qz__put_u64le(b + 40, h->nodes);
    qz__put_u32le(b + 48, h->chunk_slots);
    qz__put_u32le(b + 52, h->chunks);
    qz__put_u64le(b + 56, XXH3_64bits(b, 56));
}

/* Parse a header of either version: 0, or -1 when the size does not fit the
 * version it claims or the checksum fails. */
static inline int qz__graph_header_decode(const unsigned char *b, size_t n, qz__graph_header *h)
{
    memset(h, 0, sizeof *h);
    if (n < 8) return -1;
    h->version = qz__get_u32le(b + 4);
    size_t fixed = h->version == 1 ? 48u : 56u;
    if (n != fixed + 8 || XXH3_64bits(b, fixed) != qz__get_u64le(b + fixed)) return -1;
    h->magic = qz__get_u32le(b + 0);
    h->M = qz__get_u32le(b + 8);
    h->dim = qz__get_u32le(b + 12);
    h->metric = qz__get_u32le(b + 16);
    h->vec_bytes = qz__get_u32le(b + 20);
    h->entry = qz__get_u64le(b + 24);
    h->high_water = qz__get_u64le(b + 32);
    h->nodes = qz__get_u64le(b + 40);
    if (h->version != 1) {
        h->chunk_slots = qz__get_u32le(b + 48);
        h->chunks = qz__get_u32le(b + 52);
    }
    return 0;
}

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
