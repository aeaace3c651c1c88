/*
 * wal_replay.c - reading and validating the log (layout: persist/format.h).
 *
 * Trust rule: a record is only believed when it lies wholly inside the
 * file, its XXH3 matches and its seq is exactly the next one. The first
 * record that fails any of these ends the valid part of the log; its framing
 * cannot be trusted, so what follows is not interpreted as records in
 * sequence. It is only searched: a scan forward, byte by byte, for a
 * plausible record header (type 1..5, seq ahead of the expected one by less
 * than QZ__WAL_SCAN_SEQ_WINDOW, a length that fits in the file; these
 * filters are cheap) whose checksum matches. A writer only ever appends, so
 * such a record means the damage is in the middle of the log and dropping
 * the tail would silently roll back acknowledged writes: QZ_ECORRUPT. With
 * nothing valid after it, the rest is a torn tail (a write cut short by a
 * crash) and is discarded. A record that passes all checks but whose
 * payload does not parse was written by a broken writer: also QZ_ECORRUPT.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"
#include "wal/wal.h"
#include "persist/format.h"


int qz__wal_rec_check(const unsigned char *p, size_t avail, uint64_t expect_seq, qz__wal_rec *rec, size_t *size,
                      const char **why)
{
    if (avail < QZ__WAL_REC_OVERHEAD) {
        *why = "short record";
        return 0;
    }
    uint32_t len = qz__get_u32le(p);
    if (len > QZ__WAL_MAX_PAYLOAD || (uint64_t)len + QZ__WAL_REC_OVERHEAD > avail) {
        *why = "record runs past the end of the log";
        return 0;
    }
    if (XXH3_64bits(p, QZ__WAL_REC_HEADER + (size_t)len) != qz__get_u64le(p + QZ__WAL_REC_HEADER + len)) {
        *why = "checksum mismatch";
        return 0;
    }
    uint64_t seq = qz__get_u64le(p + 8);
    if (seq != expect_seq) {
        *why = "unexpected sequence number";
        return 0;
    }
    rec->len = len;
    rec->type = qz__get_u32le(p + 4);
    rec->seq = seq;
    rec->payload = p + QZ__WAL_REC_HEADER;
    *size = QZ__WAL_REC_OVERHEAD + (size_t)len;
    return 1;
}

/* Parse one non-group operation body; 0 when well formed. */
static int decode_one(uint32_t type, const unsigned char *p, uint32_t len, qz__wal_op *op)
{
    memset(op, 0, sizeof *op);
    op->type = type;
    switch (type) {
    case QZ__WAL_VECTOR_PUT:
        if (len < QZ__WAL_VECTOR_PUT_FIXED) return -1;
        op->id = qz__get_u64le(p);
        op->vec_bytes = qz__get_u32le(p + 8);
        op->meta_len = qz__get_u32le(p + 12);
        if ((uint64_t)QZ__WAL_VECTOR_PUT_FIXED + op->vec_bytes + op->meta_len != len) return -1;
        op->vec = p + QZ__WAL_VECTOR_PUT_FIXED;
        op->meta = p + QZ__WAL_VECTOR_PUT_FIXED + op->vec_bytes;
        return 0;
    case QZ__WAL_VECTOR_DEL:
        if (len != QZ__WAL_VECTOR_DEL_FIXED) return -1;
        op->id = qz__get_u64le(p);
        return 0;
    case QZ__WAL_KV_PUT:
        if (len < QZ__WAL_KV_PUT_FIXED) return -1;
        op->klen = qz__get_u32le(p);
        op->vlen = qz__get_u32le(p + 4);
        if (op->klen == 0 || op->klen > QZ_MAX_KEY) return -1;
        if ((uint64_t)QZ__WAL_KV_PUT_FIXED + op->klen + op->vlen != len) return -1;
        op->key = p + QZ__WAL_KV_PUT_FIXED;
        op->val = p + QZ__WAL_KV_PUT_FIXED + op->klen;
        return 0;
    case QZ__WAL_KV_DEL:
        if (len < QZ__WAL_KV_DEL_FIXED) return -1;
        op->klen = qz__get_u32le(p);
        if (op->klen == 0 || op->klen > QZ_MAX_KEY) return -1;
        if ((uint64_t)QZ__WAL_KV_DEL_FIXED + op->klen != len) return -1;
        op->key = p + QZ__WAL_KV_DEL_FIXED;
        return 0;
    default: return -1;
    }
}

/* Walk a group's entries; call fn for each when fn is set. */
static int group_walk(const qz__wal_rec *rec, qz__wal_op_fn fn, void *user, int *bad)
{
    const unsigned char *p = rec->payload;
    uint32_t len = rec->len;
    *bad = 1;
    if (len < QZ__WAL_GROUP_FIXED) return 0;
    uint32_t count = qz__get_u32le(p);
    if (qz__get_u32le(p + 4) != 0) return 0;
    size_t off = QZ__WAL_GROUP_FIXED;
    for (uint32_t i = 0; i < count; i++) {
        if (len - off < QZ__WAL_GROUP_ENTRY) return 0;
        uint32_t type = qz__get_u32le(p + off);
        uint32_t elen = qz__get_u32le(p + off + 4);
        off += QZ__WAL_GROUP_ENTRY;
        if (elen > len - off) return 0;
        qz__wal_op op;
        if (type == QZ__WAL_GROUP || decode_one(type, p + off, elen, &op) != 0) return 0;
        if (fn) {
            int rc = fn(&op, rec->seq, user);
            if (rc) {
                *bad = 0;
                return rc;
            }
        }
        off += elen;
    }
    if (off != len) return 0;
    *bad = 0;
    return 0;
}

int qz__wal_decode(const qz__wal_rec *rec, qz__wal_op_fn fn, void *user)
{
    int bad = 0;
    if (rec->type == QZ__WAL_GROUP) {
        group_walk(rec, NULL, NULL, &bad); /* validate everything before applying anything */
        if (!bad) return fn ? group_walk(rec, fn, user, &bad) : 0;
    } else {
        qz__wal_op op;
        if (decode_one(rec->type, rec->payload, rec->len, &op) == 0) return fn ? fn(&op, rec->seq, user) : 0;
        bad = 1;
    }
    return qz__err(QZ_ECORRUPT, "quartz.log: record seq %llu (type %u, %u bytes) has a valid checksum but a malformed payload",
                   (unsigned long long)rec->seq, rec->type, rec->len);
}

/* The header: version, base_seq, generations; *hsize its size. */
static int header_parse(const unsigned char *b, size_t len, qz__wal_replay_info *info, size_t *hsize)
{
    if (len < QZ__WAL_HEADER_SIZE_V1) return qz__err(QZ_ECORRUPT, "quartz.log: header truncated to %zu bytes", len);
    if (memcmp(b, QZ__WAL_MAGIC, QZ__WAL_MAGIC_LEN) != 0)
        return qz__err(QZ_ECORRUPT, "quartz.log: not a quartz log (bad magic)");
    uint32_t version = qz__get_u32le(b + QZ__WAL_HDR_VERSION);
    uint32_t size = qz__get_u32le(b + QZ__WAL_HDR_SIZE);
    if (version == 0 || size < QZ__WAL_HEADER_SIZE_V1 || size > QZ__WAL_HEADER_MAX || size % 8 != 0)
        return qz__err(QZ_ECORRUPT, "quartz.log: bad header (version %u, size %u)", version, size);
    if (size > len) return qz__err(QZ_ECORRUPT, "quartz.log: header of %u bytes truncated to %zu", size, len);
    if (XXH3_64bits(b, size - 8) != qz__get_u64le(b + size - 8))
        return qz__err(QZ_ECORRUPT, "quartz.log: header checksum mismatch");
    if (version > QZ__WAL_VERSION)
        return qz__err(QZ_EVERSION, "quartz.log: log format %u is newer than this library's (%u)", version,
                       QZ__WAL_VERSION);
    if (size != (version == 1 ? QZ__WAL_HEADER_SIZE_V1 : QZ__WAL_HEADER_SIZE))
        return qz__err(QZ_ECORRUPT, "quartz.log: bad header (version %u, size %u)", version, size);
    info->version = version;
    info->base_seq = qz__get_u64le(b + QZ__WAL_HDR_BASE_SEQ);
    if (version >= 2) {
        info->generation = qz__get_u64le(b + QZ__WAL_HDR_GENERATION);
        info->prev_generation = qz__get_u64le(b + QZ__WAL_HDR_PREV_GENERATION);
        if (info->generation == 0) return qz__err(QZ_ECORRUPT, "quartz.log: header has generation 0");
    }
    *hsize = size;
    return QZ_OK;
}

/* Valid records at or after off whose seq is ahead of expect (so they can
 * only have been written after the record expected at off). */
typedef struct later_recs {
    uint64_t count, first_seq, last_seq;
    size_t first_off;
} later_recs;

static void scan_later(const unsigned char *b, size_t len, size_t off, uint64_t expect, later_recs *l)
{
    memset(l, 0, sizeof *l);
    size_t pos = off;
    while (pos <= len && len - pos >= QZ__WAL_REC_OVERHEAD) {
        const unsigned char *p = b + pos;
        uint32_t type = qz__get_u32le(p + 4);
        uint64_t seq = qz__get_u64le(p + 8);
        uint32_t plen = qz__get_u32le(p);
        if (type >= QZ__WAL_VECTOR_PUT && type <= QZ__WAL_GROUP && seq > expect &&
            seq - expect < QZ__WAL_SCAN_SEQ_WINDOW && plen <= QZ__WAL_MAX_PAYLOAD &&
            (uint64_t)plen + QZ__WAL_REC_OVERHEAD <= len - pos &&
            XXH3_64bits(p, QZ__WAL_REC_HEADER + (size_t)plen) == qz__get_u64le(p + QZ__WAL_REC_HEADER + plen)) {
            if (!l->count) {
                l->first_seq = seq;
                l->first_off = pos;
            }
            if (seq > l->last_seq) l->last_seq = seq;
            l->count++;
            pos += QZ__WAL_REC_OVERHEAD + (size_t)plen;
        } else {
            pos++;
        }
    }
}

/* One pass over the records after the header. */
static int replay_records(const unsigned char *b, size_t len, size_t off, qz__wal_rec_fn fn, void *user,
                          qz__wal_replay_info *info)
{
    uint64_t seq = info->base_seq + 1;
    info->records = 0;
    info->torn = 0;
    info->stop_reason = "end of log";
    while (off < len) {
        qz__wal_rec rec;
        size_t sz;
        const char *why = NULL;
        if (!qz__wal_rec_check(b + off, len - off, seq, &rec, &sz, &why)) {
            later_recs l;
            scan_later(b, len, off, seq, &l);
            info->valid_end = off;
            info->last_seq = seq - 1;
            if (l.count)
                return qz__err(QZ_ECORRUPT,
                               "quartz.log: record %llu at offset %zu is damaged (%s) and %llu valid record%s "
                               "(seq %llu..%llu, the first at offset %zu) follow%s it; refusing to roll back "
                               "(to accept losing them, truncate the log to %zu bytes)",
                               (unsigned long long)seq, off, why, (unsigned long long)l.count,
                               l.count == 1 ? "" : "s", (unsigned long long)l.first_seq,
                               (unsigned long long)l.last_seq, l.first_off, l.count == 1 ? "s" : "", off);
            info->torn = 1;
            info->stop_reason = why;
            return QZ_OK;
        }
        int rc = qz__wal_decode(&rec, NULL, NULL);
        if (rc < 0) return rc;
        if (fn && (rc = fn(&rec, user)) != 0) return rc;
        off += sz;
        seq++;
        info->records++;
    }
    info->valid_end = off;
    info->last_seq = seq - 1;
    return QZ_OK;
}

int qz__wal_replay_buf(const void *buf, size_t len, qz__wal_rec_fn fn, void *user, qz__wal_replay_info *info)
{
    qz__wal_replay_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    info->file_size = len;
    info->stop_reason = "end of log";
    if (len == 0) {
        info->missing = 1;
        return QZ_OK;
    }
    const unsigned char *b = buf;
    size_t hsize = 0;
    QZ_CHECK(header_parse(b, len, info, &hsize));
    /* Everything is checked before fn sees the first record. */
    QZ_CHECK(replay_records(b, len, hsize, NULL, NULL, info));
    if (!fn) return QZ_OK;
    return replay_records(b, len, hsize, fn, user, info);
}

int qz__wal_load_file(const char *path, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return QZ_OK;
        return qz__err(QZ_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return qz__err(QZ_EIO, "cannot stat %s: %s", path, strerror(e));
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buf = qz__malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return qz__err(QZ_ENOMEM, "out of memory reading %zu bytes of %s", size, path);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            qz__free(buf);
            close(fd);
            return qz__err(QZ_EIO, "cannot read %s: %s", path, strerror(e));
        }
        if (n == 0) break; /* shrank meanwhile: what we have */
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *len = got;
    return QZ_OK;
}

int qz__wal_replay_file(const char *path, qz__wal_rec_fn fn, void *user, qz__wal_replay_info *info)
{
    qz__wal_replay_info local;
    if (!info) info = &local;
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = qz__wal_load_file(path, &buf, &len);
    if (rc < 0) return rc;
    if (!buf) {
        memset(info, 0, sizeof *info);
        info->missing = 1;
        info->stop_reason = "no log file";
        return QZ_OK;
    }
    rc = qz__wal_replay_buf(buf, len, fn, user, info);
    qz__free(buf);
    return rc;
}
