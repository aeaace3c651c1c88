/*
 * wal_format.h - the byte layout of the write-behind log (quartz.log) and of
 * the records the journal stores in LMDB (internal).
 *
 * This is the ONE place that knows these layouts; docs/file-format.md
 * describes the same bytes for humans. All integers are little-endian,
 * checksums are XXH3_64bits (xxHash 0.8, seed 0 unless stated).
 *
 * Log file:
 *
 *   header (32 bytes)
 *     0   u8[8]  magic "QZLOG\r\n\x1a"
 *     8   u32    log format version (QZ__WAL_VERSION)
 *     12  u32    header size (32)
 *     16  u64    base_seq: the first record of this file has seq base_seq + 1
 *     24  u64    XXH3 of bytes 0..23
 *   records, back to back until the end of the file
 *     0   u32    len: payload bytes
 *     4   u32    type (QZ__WAL_*)
 *     8   u64    seq: base_seq + 1 for the first record, then +1 each
 *     16  u8[len] payload
 *     16+len u64 XXH3 of bytes 0 .. 16+len-1 (header and payload)
 *
 * A record is valid when it lies wholly inside the file, its checksum
 * matches, its seq is the expected one and its payload parses. Replay stops
 * at the first invalid record: everything from there on is discarded.
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
 *                           u64 XXH3 of everything before it
 *   QZ_TABLE_KV       key   the user key
 *                     value the user value, then u64 XXH3 of the value with
 *                           seed XXH3(key) (so a value under the wrong key fails)
 *   QZ_TABLE_META     "format"      u32 QZ_FORMAT_VERSION (journal.h)
 *                     "journal.seq" u64 seq of the last log record applied
 */
#ifndef QZ_WAL_WAL_FORMAT_H
#define QZ_WAL_WAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#define QZ__WAL_MAGIC "QZLOG\r\n\x1a"
#define QZ__WAL_MAGIC_LEN 8u
#define QZ__WAL_VERSION 1u
#define QZ__WAL_HEADER_SIZE 32u
#define QZ__WAL_REC_HEADER 16u                   /* len, type, seq */
#define QZ__WAL_REC_TRAILER 8u                   /* checksum */
#define QZ__WAL_REC_OVERHEAD 24u
#define QZ__WAL_MAX_PAYLOAD ((uint32_t)1 << 30)  /* 1 GiB: larger groups are refused */

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
#define QZ__META_FORMAT "format"
#define QZ__META_JOURNAL_SEQ "journal.seq"

static inline void qz__put_u32le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline void qz__put_u64le(unsigned char *p, uint64_t v)
{
    qz__put_u32le(p, (uint32_t)v);
    qz__put_u32le(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t qz__get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t qz__get_u64le(const unsigned char *p)
{
    return (uint64_t)qz__get_u32le(p) | (uint64_t)qz__get_u32le(p + 4) << 32;
}

static inline void qz__put_u64be(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}

static inline uint64_t qz__get_u64be(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

/* Fill a 32-byte log header. */
static inline void qz__wal_header_encode(unsigned char h[QZ__WAL_HEADER_SIZE], uint64_t base_seq)
{
    memcpy(h, QZ__WAL_MAGIC, QZ__WAL_MAGIC_LEN);
    qz__put_u32le(h + 8, QZ__WAL_VERSION);
    qz__put_u32le(h + 12, QZ__WAL_HEADER_SIZE);
    qz__put_u64le(h + 16, base_seq);
    qz__put_u64le(h + 24, XXH3_64bits(h, 24));
}

/* Checksum of an LMDB KV value. */
static inline uint64_t qz__kv_value_hash(const void *key, size_t klen, const void *val, size_t vlen)
{
    return XXH3_64bits_withSeed(val, vlen, XXH3_64bits(key, klen));
}

#endif
