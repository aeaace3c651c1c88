/* test_wal.c - the log file: appending, group commit, reset, replay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"
#include "wal/wal.h"
#include "persist/format.h"

/* ---- helpers ---- */

typedef struct fixture {
    char dir[64];
    char log[128];
} fixture;

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/qz_wal_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    snprintf(f->log, sizeof f->log, "%s/quartz.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    remove_tree(f->dir);
    free(f);
    return 0;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

static uint64_t append_vec(qz__wal *w, uint64_t id, size_t vec_bytes, const char *meta)
{
    unsigned char h[16];
    unsigned char vec[4096];
    assert_true(vec_bytes <= sizeof vec);
    for (size_t i = 0; i < vec_bytes; i++) vec[i] = (unsigned char)(id + i);
    size_t ml = meta ? strlen(meta) : 0;
    qz__put_u64le(h, id);
    qz__put_u32le(h + 8, (uint32_t)vec_bytes);
    qz__put_u32le(h + 12, (uint32_t)ml);
    qz__wal_part parts[3] = {{h, 16}, {vec, vec_bytes}, {meta, ml}};
    uint64_t seq = 0;
    assert_int_equal(qz__wal_append(w, QZ__WAL_VECTOR_PUT, parts, 3, &seq), QZ_OK);
    return seq;
}

static uint64_t append_kv(qz__wal *w, const char *k, const char *v)
{
    unsigned char h[8];
    qz__put_u32le(h, (uint32_t)strlen(k));
    qz__put_u32le(h + 4, (uint32_t)strlen(v));
    qz__wal_part parts[3] = {{h, 8}, {k, strlen(k)}, {v, strlen(v)}};
    uint64_t seq = 0;
    assert_int_equal(qz__wal_append(w, QZ__WAL_KV_PUT, parts, 3, &seq), QZ_OK);
    return seq;
}

/* Encode a group of (type, body) entries. */
static size_t build_group(unsigned char *out, int n, const uint32_t *types, const unsigned char *const *bodies,
                          const uint32_t *lens)
{
    qz__put_u32le(out, (uint32_t)n);
    qz__put_u32le(out + 4, 0);
    size_t off = 8;
    for (int i = 0; i < n; i++) {
        qz__put_u32le(out + off, types[i]);
        qz__put_u32le(out + off + 4, lens[i]);
        memcpy(out + off + 8, bodies[i], lens[i]);
        off += 8 + lens[i];
    }
    return off;
}

/* Hand-built record with a correct checksum. */
static size_t build_record(unsigned char *out, uint32_t type, uint64_t seq, const void *payload, uint32_t len)
{
    qz__put_u32le(out, len);
    qz__put_u32le(out + 4, type);
    qz__put_u64le(out + 8, seq);
    memcpy(out + 16, payload, len);
    qz__put_u64le(out + 16 + len, XXH3_64bits(out, 16 + (size_t)len));
    return 24 + (size_t)len;
}

typedef struct seen {
    uint64_t seqs[4096];
    uint32_t types[4096];
    size_t n;
    int ops;
    int kv_ops;
} seen;

static int seen_op(const qz__wal_op *op, uint64_t seq, void *user)
{
    (void)seq;
    seen *s = user;
    s->ops++;
    if (op->type == QZ__WAL_KV_PUT || op->type == QZ__WAL_KV_DEL) s->kv_ops++;
    return 0;
}

static int seen_rec(const qz__wal_rec *rec, void *user)
{
    seen *s = user;
    if (s->n < 4096) {
        s->seqs[s->n] = rec->seq;
        s->types[s->n] = rec->type;
    }
    s->n++;
    return qz__wal_decode(rec, seen_op, s);
}

/* Offsets of each record in a log image. */
static size_t record_offsets(const unsigned char *b, size_t len, size_t *offs, size_t max)
{
    size_t off = QZ__WAL_HEADER_SIZE, n = 0;
    while (off + 24 <= len && n < max) {
        offs[n++] = off;
        off += 24 + qz__get_u32le(b + off);
    }
    assert_int_equal(off, len);
    return n;
}

/* ---- tests ---- */

static void records_of_every_type_round_trip(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 41, 0, &w), QZ_OK);
    uint64_t s1 = append_vec(w, 7, 16, "{\"a\":1}");
    unsigned char idb[8];
    qz__put_u64le(idb, 7);
    qz__wal_part del = {idb, 8};
    uint64_t s2;
    assert_int_equal(qz__wal_append(w, QZ__WAL_VECTOR_DEL, &del, 1, &s2), QZ_OK);
    uint64_t s3 = append_kv(w, "key", "value");
    unsigned char kd[7];
    qz__put_u32le(kd, 3);
    memcpy(kd + 4, "key", 3);
    qz__wal_part kdp = {kd, 7};
    uint64_t s4;
    assert_int_equal(qz__wal_append(w, QZ__WAL_KV_DEL, &kdp, 1, &s4), QZ_OK);
    unsigned char g[256];
    uint32_t types[2] = {QZ__WAL_VECTOR_DEL, QZ__WAL_KV_DEL};
    const unsigned char *bodies[2] = {idb, kd};
    uint32_t lens[2] = {8, 7};
    qz__wal_part gp = {g, build_group(g, 2, types, bodies, lens)};
    uint64_t s5;
    assert_int_equal(qz__wal_append(w, QZ__WAL_GROUP, &gp, 1, &s5), QZ_OK);
    assert_int_equal(s1, 42);
    assert_int_equal(s3, 44);
    assert_int_equal(s5, 46);
    assert_int_equal(qz__wal_durable_seq(w), 41);
    assert_int_equal(qz__wal_sync(w, s5), QZ_OK);
    assert_int_equal(qz__wal_durable_seq(w), 46);
    qz__wal_close(w);

    seen s = {0};
    qz__wal_replay_info info;
    assert_int_equal(qz__wal_replay_file(f->log, seen_rec, &s, &info), QZ_OK);
    assert_int_equal(s.n, 5);
    assert_int_equal(info.base_seq, 41);
    assert_int_equal(info.last_seq, 46);
    assert_int_equal(info.torn, 0);
    assert_int_equal(info.valid_end, info.file_size);
    assert_int_equal(s.types[0], QZ__WAL_VECTOR_PUT);
    assert_int_equal(s.types[4], QZ__WAL_GROUP);
    assert_int_equal(s.ops, 6);
    assert_int_equal(s.kv_ops, 3);
    for (size_t i = 0; i < 5; i++) assert_int_equal(s.seqs[i], 42 + i);
}

static void vector_payload_decodes_to_same_bytes(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 0, 0, &w), QZ_OK);
    append_vec(w, 0xfeedfacecafebeefull, 12, "meta!");
    assert_int_equal(qz__wal_write_out(w, 1), QZ_OK);
    qz__wal_close(w);
    size_t len;
    unsigned char *b = read_file(f->log, &len);
    qz__wal_rec rec;
    size_t sz;
    const char *why;
    assert_true(qz__wal_rec_check(b + QZ__WAL_HEADER_SIZE, len - QZ__WAL_HEADER_SIZE, 1, &rec, &sz, &why));
    assert_int_equal(sz, len - QZ__WAL_HEADER_SIZE);
    free(b);
}

static void missing_or_empty_log_is_an_empty_log(void **state)
{
    fixture *f = *state;
    qz__wal_replay_info info;
    assert_int_equal(qz__wal_replay_file(f->log, NULL, NULL, &info), QZ_OK);
    assert_int_equal(info.missing, 1);
    assert_int_equal(info.records, 0);
    write_file(f->log, "", 0);
    assert_int_equal(qz__wal_replay_file(f->log, NULL, NULL, &info), QZ_OK);
    assert_int_equal(info.missing, 1);
}

static void bad_header_is_corrupt_and_newer_version_is_refused(void **state)
{
    fixture *f = *state;
    unsigned char h[QZ__WAL_HEADER_SIZE];
    qz__wal_header_encode(h, 5, 0x5157u, 0);
    qz__wal_replay_info info;
    assert_int_equal(qz__wal_replay_buf(h, sizeof h, NULL, NULL, &info), QZ_OK);
    assert_int_equal(info.base_seq, 5);
    assert_int_equal(info.last_seq, 5);

    unsigned char bad[QZ__WAL_HEADER_SIZE];
    memcpy(bad, h, sizeof h);
    bad[0] = 'X';
    assert_int_equal(qz__wal_replay_buf(bad, sizeof bad, NULL, NULL, &info), QZ_ECORRUPT);
    memcpy(bad, h, sizeof h);
    bad[17] ^= 1; /* base_seq without fixing the checksum */
    assert_int_equal(qz__wal_replay_buf(bad, sizeof bad, NULL, NULL, &info), QZ_ECORRUPT);
    assert_int_equal(qz__wal_replay_buf(h, 20, NULL, NULL, &info), QZ_ECORRUPT);

    memcpy(bad, h, sizeof h);
    qz__put_u32le(bad + 8, QZ__WAL_VERSION + 1);
    qz__put_u64le(bad + QZ__WAL_HEADER_SIZE - 8, XXH3_64bits(bad, QZ__WAL_HEADER_SIZE - 8));
    write_file(f->log, bad, sizeof bad);
    assert_int_equal(qz__wal_replay_file(f->log, NULL, NULL, &info), QZ_EVERSION);
    assert_non_null(strstr(qz__err_msg(), "newer"));

    /* generation 0 in a version-2 header, valid checksum */
    qz__wal_header_encode(bad, 5, 0, 0);
    assert_int_equal(qz__wal_replay_buf(bad, sizeof bad, NULL, NULL, &info), QZ_ECORRUPT);
    /* a header size that does not match its version */
    memcpy(bad, h, sizeof h);
    qz__put_u32le(bad + 12, 40);
    qz__put_u64le(bad + 32, XXH3_64bits(bad, 32));
    assert_int_equal(qz__wal_replay_buf(bad, sizeof bad, NULL, NULL, &info), QZ_ECORRUPT);
    /* a header cut short */
    assert_int_equal(qz__wal_replay_buf(h, 40, NULL, NULL, &info), QZ_ECORRUPT);
}

/* A version-1 header (32 bytes, no generations) is still read. */
static void version_1_log_is_read_with_generation_0(void **state)
{
    (void)state;
    unsigned char buf[256];
    memcpy(buf, QZ__WAL_MAGIC, QZ__WAL_MAGIC_LEN);
    qz__put_u32le(buf + 8, 1);
    qz__put_u32le(buf + 12, QZ__WAL_HEADER_SIZE_V1);
    qz__put_u64le(buf + 16, 7);
    qz__put_u64le(buf + 24, XXH3_64bits(buf, 24));
    size_t off = QZ__WAL_HEADER_SIZE_V1;
    unsigned char id[8] = {3};
    off += build_record(buf + off, QZ__WAL_VECTOR_DEL, 8, id, 8);
    off += build_record(buf + off, QZ__WAL_VECTOR_DEL, 9, id, 8);
    qz__wal_replay_info info;
    seen s = {0};
    assert_int_equal(qz__wal_replay_buf(buf, off, seen_rec, &s, &info), QZ_OK);
    assert_int_equal(info.version, 1);
    assert_int_equal(info.generation, 0);
    assert_int_equal(info.prev_generation, 0);
    assert_int_equal(info.base_seq, 7);
    assert_int_equal(s.n, 2);
    assert_int_equal(info.last_seq, 9);
}


/* Cut the file at every byte offset inside the last record: that record is
 * discarded, every earlier one kept. */
static void replay_ignores_torn_tail_at_every_byte_offset(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 100, 0, &w), QZ_OK);
    for (int i = 0; i < 5; i++) append_vec(w, (uint64_t)i, 32, "m");
    append_vec(w, 99, 60, "last-record-metadata");
    assert_int_equal(qz__wal_write_out(w, 1), QZ_OK);
    qz__wal_close(w);
    size_t len;
    unsigned char *b = read_file(f->log, &len);
    size_t offs[16];
    assert_int_equal(record_offsets(b, len, offs, 16), 6);
    size_t last = offs[5];
    for (size_t cut = last; cut < len; cut++) {
        write_file(f->log, b, cut);
        seen s = {0};
        qz__wal_replay_info info;
        assert_int_equal(qz__wal_replay_file(f->log, seen_rec, &s, &info), QZ_OK);
        assert_int_equal(s.n, 5);
        assert_int_equal(info.records, 5);
        assert_int_equal(info.valid_end, last);
        assert_int_equal(info.last_seq, 105);
        assert_int_equal(info.torn, cut > last);
    }
    write_file(f->log, b, len);
    qz__wal_replay_info info;
    assert_int_equal(qz__wal_replay_file(f->log, NULL, NULL, &info), QZ_OK);
    assert_int_equal(info.records, 6);
    free(b);
}

/* Flip each byte of the middle record in turn (one bit at a time, low and
 * high): the valid records after it make that corruption, reported with
 * where and what is lost, never a silent roll-back. The same flips in the
 * last record are a torn tail. */
static void flipped_bit_in_middle_record_is_corrupt_in_last_a_torn_tail(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 0, 0, &w), QZ_OK);
    for (int i = 0; i < 7; i++) append_kv(w, "k", i == 3 || i == 6 ? "the-middle-or-last-one" : "v");
    assert_int_equal(qz__wal_write_out(w, 1), QZ_OK);
    qz__wal_close(w);
    size_t len;
    unsigned char *b = read_file(f->log, &len);
    size_t offs[16];
    assert_int_equal(record_offsets(b, len, offs, 16), 7);
    size_t start = offs[3], end = offs[4];
    char want[128];
    snprintf(want, sizeof want, "record 4 at offset %zu is damaged", start);
    for (size_t i = start; i < end; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            b[i] ^= (unsigned char)(1u << bit);
            seen s = {0};
            qz__wal_replay_info info;
            assert_int_equal(qz__wal_replay_buf(b, len, seen_rec, &s, &info), QZ_ECORRUPT);
            assert_int_equal(s.n, 0); /* nothing is handed out of a refused log */
            const char *m = qz__err_msg();
            if (!strstr(m, want) || !strstr(m, "3 valid records (seq 5..7") || !strstr(m, "refusing to roll back"))
                fail_msg("byte %zu bit %d: %s", i - start, bit, m);
            b[i] ^= (unsigned char)(1u << bit);
        }
    }
    for (size_t i = offs[6]; i < len; i++) {
        b[i] ^= 0x01;
        seen s = {0};
        qz__wal_replay_info info;
        assert_int_equal(qz__wal_replay_buf(b, len, seen_rec, &s, &info), QZ_OK);
        assert_int_equal(s.n, 6);
        assert_int_equal(info.valid_end, offs[6]);
        assert_int_equal(info.torn, 1);
        b[i] ^= 0x01;
    }
    free(b);
}

/* A length field whose flipped bit makes the record run past the end of
 * the file is damage, not a torn tail, when valid records follow it. */
static void length_running_past_the_end_with_records_after_is_corrupt(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 0, 0, &w), QZ_OK);
    for (int i = 0; i < 5; i++) append_vec(w, (uint64_t)i, 64, "meta");
    assert_int_equal(qz__wal_write_out(w, 1), QZ_OK);
    qz__wal_close(w);
    size_t len;
    unsigned char *b = read_file(f->log, &len);
    size_t offs[8];
    assert_int_equal(record_offsets(b, len, offs, 8), 5);
    for (int bit = 10; bit < 30; bit += 3) {
        b[offs[1] + bit / 8] ^= (unsigned char)(1u << (bit % 8));
        assert_true(qz__get_u32le(b + offs[1]) + 24 > len - offs[1]);
        assert_int_equal(qz__wal_replay_buf(b, len, NULL, NULL, NULL), QZ_ECORRUPT);
        assert_non_null(strstr(qz__err_msg(), "runs past the end"));
        assert_non_null(strstr(qz__err_msg(), "3 valid records (seq 3..5"));
        b[offs[1] + bit / 8] ^= (unsigned char)(1u << (bit % 8));
        /* in the last record it is a torn tail */
        b[offs[4] + bit / 8] ^= (unsigned char)(1u << (bit % 8));
        qz__wal_replay_info info;
        assert_int_equal(qz__wal_replay_buf(b, len, NULL, NULL, &info), QZ_OK);
        assert_int_equal(info.records, 4);
        assert_int_equal(info.torn, 1);
        b[offs[4] + bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    free(b);
}

/* A zeroed 4 KiB page in the middle of a longer log; and the scan finds
 * valid records after any amount of garbage. */
static void zeroed_page_in_the_middle_is_corrupt(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 1000, 0, &w), QZ_OK);
    for (int i = 0; i < 200; i++) append_vec(w, (uint64_t)i, 100, "page");
    assert_int_equal(qz__wal_write_out(w, 1), QZ_OK);
    qz__wal_close(w);
    size_t len;
    unsigned char *b = read_file(f->log, &len);
    assert_true(len > 5 * 4096);
    for (size_t page = 1; page * 4096 + 4096 < len - 200; page++) {
        unsigned char save[4096];
        memcpy(save, b + page * 4096, 4096);
        memset(b + page * 4096, 0, 4096);
        qz__wal_replay_info info;
        assert_int_equal(qz__wal_replay_buf(b, len, NULL, NULL, &info), QZ_ECORRUPT);
        assert_non_null(strstr(qz__err_msg(), "is damaged (checksum mismatch)"));
        assert_non_null(strstr(qz__err_msg(), "..1200, the first at offset"));
        memcpy(b + page * 4096, save, 4096);
    }
    /* the last page zeroed, nothing valid after it: a torn tail */
    size_t last = (len - 1) / 4096 * 4096;
    memset(b + last, 0, len - last);
    qz__wal_replay_info info;
    assert_int_equal(qz__wal_replay_buf(b, len, NULL, NULL, &info), QZ_OK);
    assert_int_equal(info.torn, 1);
    assert_true(info.records > 150);
    free(b);
}

/* A record that is valid but for its seq (13 is missing) with records after
 * it: records were lost in the middle. A stale record (lower seq) at the end
 * is a torn tail. */
static void out_of_sequence_record_is_corrupt(void **state)
{
    (void)state;
    unsigned char buf[512];
    qz__wal_header_encode(buf, 10, 0x5157u, 0);
    size_t off = QZ__WAL_HEADER_SIZE;
    unsigned char id[8] = {1};
    off += build_record(buf + off, QZ__WAL_VECTOR_DEL, 11, id, 8);
    off += build_record(buf + off, QZ__WAL_VECTOR_DEL, 12, id, 8);
    size_t good = off;
    off += build_record(buf + off, QZ__WAL_VECTOR_DEL, 14, id, 8); /* 13 is missing */
    off += build_record(buf + off, QZ__WAL_VECTOR_DEL, 15, id, 8);
    qz__wal_replay_info info;
    seen s = {0};
    assert_int_equal(qz__wal_replay_buf(buf, off, seen_rec, &s, &info), QZ_ECORRUPT);
    assert_int_equal(s.n, 0);
    assert_non_null(strstr(qz__err_msg(), "record 13 at offset"));
    assert_non_null(strstr(qz__err_msg(), "unexpected sequence number"));
    assert_non_null(strstr(qz__err_msg(), "2 valid records (seq 14..15"));
    off = good;
    off += build_record(buf + off, QZ__WAL_VECTOR_DEL, 12, id, 8); /* a stale copy of 12 */
    assert_int_equal(qz__wal_replay_buf(buf, off, seen_rec, &s, &info), QZ_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(info.valid_end, good);
    assert_string_equal(info.stop_reason, "unexpected sequence number");
    assert_int_equal(info.torn, 1);
}

static void valid_checksum_with_malformed_payload_is_corrupt(void **state)
{
    (void)state;
    unsigned char buf[512];
    qz__wal_header_encode(buf, 0, 0x5157u, 0);
    size_t off = QZ__WAL_HEADER_SIZE;
    unsigned char kv[16];
    qz__put_u32le(kv, 3);
    qz__put_u32le(kv + 4, 100); /* says 100 value bytes, has 5 */
    memcpy(kv + 8, "keyvalue", 8);
    off += build_record(buf + off, QZ__WAL_KV_PUT, 1, kv, 16);
    seen s = {0};
    assert_int_equal(qz__wal_replay_buf(buf, off, seen_rec, &s, NULL), QZ_ECORRUPT);
    assert_int_equal(s.n, 0);
    assert_non_null(strstr(qz__err_msg(), "malformed"));

    off = QZ__WAL_HEADER_SIZE;
    off += build_record(buf + off, 77, 1, kv, 16); /* unknown type */
    assert_int_equal(qz__wal_replay_buf(buf, off, NULL, NULL, NULL), QZ_ECORRUPT);
}

/* A group whose last entry is malformed yields no operation at all. */
static void malformed_group_applies_nothing(void **state)
{
    (void)state;
    unsigned char idb[8] = {0};
    unsigned char kv[12];
    qz__put_u32le(kv, 2);
    qz__put_u32le(kv + 4, 2);
    memcpy(kv + 8, "kkvv", 4);
    unsigned char g[256];
    uint32_t types[3] = {QZ__WAL_VECTOR_DEL, QZ__WAL_KV_PUT, QZ__WAL_KV_PUT};
    const unsigned char *bodies[3] = {idb, kv, kv};
    uint32_t lens[3] = {8, 12, 11}; /* last one is one byte short */
    size_t gl = build_group(g, 3, types, bodies, lens);
    qz__wal_rec rec = {QZ__WAL_GROUP, (uint32_t)gl, 9, g};
    seen s = {0};
    assert_int_equal(qz__wal_decode(&rec, seen_op, &s), QZ_ECORRUPT);
    assert_int_equal(s.ops, 0);
    lens[2] = 12;
    gl = build_group(g, 3, types, bodies, lens);
    rec.len = (uint32_t)gl;
    assert_int_equal(qz__wal_decode(&rec, seen_op, &s), QZ_OK);
    assert_int_equal(s.ops, 3);
}

/* Truncating the log inside a group record drops the whole group and keeps
 * the records before it. */
static void truncation_inside_group_drops_whole_group(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 0, 0, &w), QZ_OK);
    append_kv(w, "before", "1");
    unsigned char kv[64], g[1024];
    const unsigned char *bodies[8];
    uint32_t types[8], lens[8];
    for (int i = 0; i < 8; i++) {
        qz__put_u32le(kv, 2);
        qz__put_u32le(kv + 4, 40);
        memset(kv + 8, 'a' + i, 42);
        types[i] = QZ__WAL_KV_PUT;
        bodies[i] = kv;
        lens[i] = 50;
    }
    qz__wal_part gp = {g, build_group(g, 8, types, bodies, lens)};
    uint64_t gs;
    assert_int_equal(qz__wal_append(w, QZ__WAL_GROUP, &gp, 1, &gs), QZ_OK);
    assert_int_equal(qz__wal_sync(w, gs), QZ_OK);
    qz__wal_close(w);
    size_t len;
    unsigned char *b = read_file(f->log, &len);
    size_t offs[4];
    assert_int_equal(record_offsets(b, len, offs, 4), 2);
    for (size_t cut = offs[1] + 1; cut < len; cut += 13) {
        seen s = {0};
        qz__wal_replay_info info;
        assert_int_equal(qz__wal_replay_buf(b, cut, seen_rec, &s, &info), QZ_OK);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.ops, 1);
    }
    seen s = {0};
    assert_int_equal(qz__wal_replay_buf(b, len, seen_rec, &s, NULL), QZ_OK);
    assert_int_equal(s.ops, 9);
    free(b);
}

typedef struct gc_arg {
    qz__wal *w;
    int n;
    int failures;
} gc_arg;

static void *gc_writer(void *p)
{
    gc_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        unsigned char h[8];
        qz__put_u64le(h, (uint64_t)i);
        qz__wal_part part = {h, 8};
        uint64_t seq;
        if (qz__wal_append(a->w, QZ__WAL_VECTOR_DEL, &part, 1, &seq) != QZ_OK ||
            qz__wal_sync(a->w, seq) != QZ_OK || qz__wal_durable_seq(a->w) < seq)
            __atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* Four threads append+sync: every record is durable when its sync returns,
 * and fdatasyncs are shared between them. */
static void concurrent_syncs_share_fdatasyncs(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 0, 0, &w), QZ_OK);
    enum { THREADS = 4, PER = 150 };
    gc_arg a = {w, PER, 0};
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&th[i], NULL, gc_writer, &a), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    assert_int_equal(a.failures, 0);
    uint64_t syncs = qz__wal_syncs(w);
    print_message("    %d synced appends used %llu fdatasyncs\n", THREADS * PER, (unsigned long long)syncs);
    assert_true(syncs < (uint64_t)THREADS * PER);
    qz__wal_close(w);
    qz__wal_replay_info info;
    assert_int_equal(qz__wal_replay_file(f->log, NULL, NULL, &info), QZ_OK);
    assert_int_equal(info.records, THREADS * PER);
    assert_int_equal(info.torn, 0);
}

typedef struct order_ctx {
    uint64_t next;
    size_t bytes;
} order_ctx;

static int order_fn(const qz__wal_rec *rec, void *user)
{
    order_ctx *o = user;
    if (rec->seq != o->next) return -1000;
    o->next++;
    o->bytes += rec->len;
    return 0;
}

/* Records spanning many blocks come back in order in bounded chunks, and
 * marking them applied releases their memory. */
static void pending_visits_in_order_and_mark_applied_frees(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 0, 0, &w), QZ_OK);
    for (int i = 0; i < 600; i++) append_vec(w, (uint64_t)i, 4000, NULL);
    order_ctx o = {1, 0};
    qz__wal_pos pos;
    /* nothing written yet: nothing pending */
    assert_int_equal(qz__wal_pending(w, 1 << 20, order_fn, &o, &pos), 0);
    assert_int_equal(qz__wal_write_out(w, 0), QZ_OK);
    for (int i = 0; i < 300; i++) append_vec(w, (uint64_t)i, 4000, NULL); /* unwritten */
    int rounds = 0;
    for (;;) {
        int n = qz__wal_pending(w, 256 * 1024, order_fn, &o, &pos);
        assert_true(n >= 0);
        if (n == 0) break;
        qz__wal_mark_applied(w, &pos);
        rounds++;
    }
    assert_int_equal(o.next, 601);
    assert_true(rounds >= 9);
    assert_int_equal(qz__wal_applied_seq(w), 600);
    assert_int_equal(qz__wal_unapplied_bytes(w), 300 * (4000 + 16 + 24));
    assert_int_equal(qz__wal_write_out(w, 1), QZ_OK);
    while (qz__wal_pending(w, 1 << 30, order_fn, &o, &pos) > 0) qz__wal_mark_applied(w, &pos);
    assert_int_equal(o.next, 901);
    assert_int_equal(qz__wal_unapplied_bytes(w), 0);
    /* appends keep working after everything was freed */
    uint64_t s = append_vec(w, 1, 8, NULL);
    assert_int_equal(s, 901);
    assert_int_equal(qz__wal_sync(w, s), QZ_OK);
    qz__wal_close(w);
    qz__wal_replay_info info;
    assert_int_equal(qz__wal_replay_file(f->log, NULL, NULL, &info), QZ_OK);
    assert_int_equal(info.records, 901);
}

typedef struct drain_ctx {
    qz__wal *w;
    order_ctx o;
} drain_ctx;

static int drain_all(void *user)
{
    drain_ctx *d = user;
    qz__wal_pos pos;
    int n;
    while ((n = qz__wal_pending(d->w, 1 << 20, order_fn, &d->o, &pos)) > 0) qz__wal_mark_applied(d->w, &pos);
    return n;
}

/* A new log and each reset get a fresh nonzero generation; the header
 * names the one before. */
static void generations_chain_across_resets(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 3, 0xabcdefu, &w), QZ_OK);
    uint64_t g1 = qz__wal_generation(w);
    assert_true(g1 != 0 && g1 != 0xabcdefu);
    qz__wal_replay_info info;
    assert_int_equal(qz__wal_replay_file(f->log, NULL, NULL, &info), QZ_OK);
    assert_int_equal(info.version, QZ__WAL_VERSION);
    assert_int_equal(info.generation, g1);
    assert_int_equal(info.prev_generation, 0xabcdefu);
    assert_int_equal(info.base_seq, 3);
    append_kv(w, "k", "v");
    drain_ctx d = {w, {4, 0}};
    assert_int_equal(qz__wal_checkpoint(w, drain_all, &d), QZ_OK);
    uint64_t g2 = qz__wal_generation(w);
    assert_true(g2 != 0 && g2 != g1);
    assert_int_equal(qz__wal_replay_file(f->log, NULL, NULL, &info), QZ_OK);
    assert_int_equal(info.generation, g2);
    assert_int_equal(info.prev_generation, g1);
    assert_int_equal(info.base_seq, 4);
    /* a reset of an empty log keeps the file and its generation */
    assert_int_equal(qz__wal_checkpoint(w, drain_all, &d), QZ_OK);
    assert_int_equal(qz__wal_generation(w), g2);
    qz__wal_close(w);
    /* a log without a file has none */
    assert_int_equal(qz__wal_open_mem(0, &w), QZ_OK);
    assert_int_equal(qz__wal_generation(w), 0);
    uint64_t seq = append_kv(w, "k", "v");
    assert_int_equal(qz__wal_sync(w, seq), QZ_OK);
    assert_int_equal(qz__wal_file_bytes(w), 0);
    qz__wal_close(w);
}

static void checkpoint_starts_an_empty_log_and_sequence_continues(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 0, 0, &w), QZ_OK);
    for (int i = 0; i < 50; i++) append_kv(w, "k", "v");
    drain_ctx d = {w, {1, 0}};
    assert_int_equal(qz__wal_checkpoint(w, drain_all, &d), QZ_OK);
    assert_int_equal(d.o.next, 51);
    assert_int_equal(qz__wal_file_bytes(w), QZ__WAL_HEADER_SIZE);
    qz__wal_replay_info info;
    assert_int_equal(qz__wal_replay_file(f->log, NULL, NULL, &info), QZ_OK);
    assert_int_equal(info.base_seq, 50);
    assert_int_equal(info.records, 0);
    uint64_t s = append_kv(w, "after", "reset");
    assert_int_equal(s, 51);
    assert_int_equal(qz__wal_sync(w, s), QZ_OK);
    qz__wal_close(w);
    seen sn = {0};
    assert_int_equal(qz__wal_replay_file(f->log, seen_rec, &sn, &info), QZ_OK);
    assert_int_equal(sn.n, 1);
    assert_int_equal(sn.seqs[0], 51);
    struct stat st;
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->log);
    assert_int_not_equal(stat(tmp, &st), 0);
}

static void oversized_record_is_refused(void **state)
{
    fixture *f = *state;
    qz__wal *w = NULL;
    assert_int_equal(qz__wal_open(f->log, 0, 0, &w), QZ_OK);
    qz__wal_part parts[2] = {{"x", (size_t)QZ__WAL_MAX_PAYLOAD}, {"y", 1}}; /* never read */
    uint64_t seq;
    assert_int_equal(qz__wal_append(w, QZ__WAL_GROUP, parts, 2, &seq), QZ_EFULL);
    assert_int_equal(qz__wal_last_seq(w), 0);
    assert_int_equal(qz__wal_sync(w, 5), QZ_EINVAL);
    qz__wal_close(w);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(records_of_every_type_round_trip),
        T(vector_payload_decodes_to_same_bytes),
        T(missing_or_empty_log_is_an_empty_log),
        T(bad_header_is_corrupt_and_newer_version_is_refused),
        T(version_1_log_is_read_with_generation_0),
        T(generations_chain_across_resets),
        T(replay_ignores_torn_tail_at_every_byte_offset),
        T(flipped_bit_in_middle_record_is_corrupt_in_last_a_torn_tail),
        T(length_running_past_the_end_with_records_after_is_corrupt),
        T(zeroed_page_in_the_middle_is_corrupt),
        T(out_of_sequence_record_is_corrupt),
        T(valid_checksum_with_malformed_payload_is_corrupt),
        T(malformed_group_applies_nothing),
        T(truncation_inside_group_drops_whole_group),
        T(concurrent_syncs_share_fdatasyncs),
        T(pending_visits_in_order_and_mark_applied_frees),
        T(checkpoint_starts_an_empty_log_and_sequence_continues),
        T(oversized_record_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
