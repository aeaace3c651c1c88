/*
 * test_hnsw_io.c - graph checkpoints (index/hnsw_io.c) against the in-memory
 * backend: incremental saves write only the chunks that changed, loads
 * restore the exact structure (DELETED nodes included), damage is
 * QZ_ECORRUPT naming the chunk, version-1 snapshots still load, the byte
 * order is explicit, and a failed save leaves the previous snapshot whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "distance/distance.h"
#include "index/hnsw.h"
#include "index/hnsw_io.h"
#include "persist/format.h"
#include "storage/storage.h"
#include "util/alloc.h"
#include "util/endian.h"
#include "util/error.h"

#define DIM 8
#define TM 8 /* M */

/* ---- building indexes ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)(rng_state >> 40) / (float)(1u << 24);
}

static qz__hnsw *new_index(size_t capacity)
{
    qz__hnsw_config cfg = {.dim = DIM, .metric = QZ_METRIC_L2, .M = TM, .ef_construction = 32, .capacity = capacity, .seed = 42};
    qz__hnsw *h = NULL;
    assert_int_equal(qz__hnsw_create(&cfg, qz__kernels_active(), &h), QZ_OK);
    return h;
}

/* The one place that calls qz__hnsw_insert (its last argument may go). */
static void insert_node(qz__hnsw *h, uint64_t label, uint64_t seq, uint32_t *slot_out)
{
    float v[DIM];
    for (int i = 0; i < DIM; i++) v[i] = frand();
    unsigned char enc[64];
    assert_true(h->vec_bytes <= sizeof enc);
    qz__hnsw_encode(h, v, enc);
    uint32_t slot;
    assert_int_equal(qz__hnsw_alloc_slot(h, &slot), QZ_OK);
    assert_int_equal(qz__hnsw_insert(h, slot, label, enc, NULL, seq), QZ_OK);
    if (slot_out) *slot_out = slot;
}

/* n nodes, labels 1000 + i, seqs 1 + i. */
static qz__hnsw *build(size_t n)
{
    qz__hnsw *h = new_index(n);
    for (size_t i = 0; i < n; i++) insert_node(h, 1000 + i, 1 + i, NULL);
    return h;
}

static void mark_deleted(qz__hnsw *h, uint32_t slot)
{
    pthread_rwlock_rdlock(&h->resize);
    qz__hnsw_mark_deleted(h, slot);
    pthread_rwlock_unlock(&h->resize);
}

static qz_storage *mem(void)
{
    qz_storage *s = NULL;
    assert_int_equal(qz__storage_mem_open(&s), QZ_OK);
    return s;
}

static void save(qz__hnsw *h, qz_storage *s, qz__graph_ckpt *ck, qz__graph_save_stats *st)
{
    int rc = qz__hnsw_save(h, s, ck, st);
    if (rc != QZ_OK) fail_msg("save: %d %s", rc, qz__err_msg());
}

/* ---- loading and comparing ---- */

typedef struct loaded {
    uint32_t *slots;
    size_t n, cap;
} loaded;

static int on_node(uint64_t label, uint32_t slot, void *u)
{
    (void)label;
    loaded *l = u;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->slots = realloc(l->slots, l->cap * sizeof *l->slots);
    }
    l->slots[l->n++] = slot;
    return 0;
}

/* Load s into a fresh index; attach every node loaded as LIVE its vector
 * from `src` (the index that was saved), as lib/api would from VECTORS. */
static qz__hnsw *load_from(qz_storage *s, qz__graph_ckpt *ck, const qz__hnsw *src, size_t *n_live_loaded)
{
    qz__hnsw *h = new_index(16);
    loaded l = {0};
    int found = 0;
    int rc = qz__hnsw_load(h, s, ck, on_node, &l, &found);
    if (rc != QZ_OK) fail_msg("load: %d %s", rc, qz__err_msg());
    assert_int_equal(found, 1);
    for (size_t i = 0; i < l.n; i++) qz__hnsw_attach(h, l.slots[i], qz__node_vec(src, l.slots[i]), NULL);
    if (n_live_loaded) *n_live_loaded = l.n;
    free(l.slots);
    return h;
}

static int load_rc(qz_storage *s)
{
    qz__hnsw *h = new_index(16);
    loaded l = {0};
    int found = 0;
    int rc = qz__hnsw_load(h, s, NULL, on_node, &l, &found);
    free(l.slots);
    qz__hnsw_destroy(h);
    return rc;
}

static int saved(const qz__hnsw *h, uint32_t s)
{
    unsigned st = atomic_load(&h->state[s]);
    return st == QZ__LIVE || st == QZ__DELETED;
}

/* b (loaded) has exactly a's structure: same slots, labels, seqs, levels,
 * states, links per layer, entry point. */
static void assert_same(qz__hnsw *a, qz__hnsw *b)
{
    uint32_t hw = qz__hnsw_high_water(a);
    assert_int_equal(qz__hnsw_high_water(b), hw);
    for (uint32_t s = 0; s < hw; s++) {
        if (!saved(a, s)) {
            assert_int_equal(atomic_load(&b->state[s]), QZ__FREE);
            continue;
        }
        if (atomic_load(&a->state[s]) != atomic_load(&b->state[s]))
            fail_msg("slot %u: state %u saved, %u loaded", s, atomic_load(&a->state[s]), atomic_load(&b->state[s]));
        assert_int_equal(a->labels[s], b->labels[s]);
        assert_int_equal(a->seqs[s], b->seqs[s]);
        assert_int_equal(a->levels[s], b->levels[s]);
        for (int l = 0; l <= a->levels[s]; l++) {
            _Atomic uint32_t *x = qz__links(a, s, l), *y = qz__links(b, s, l);
            assert_int_equal(x[0], y[0]);
            for (uint32_t i = 1; i <= x[0]; i++) assert_int_equal(x[i], y[i]);
        }
    }
    assert_int_equal(atomic_load(&a->entry), atomic_load(&b->entry));
    assert_int_equal(atomic_load(&a->n_live), atomic_load(&b->n_live));
    assert_int_equal(atomic_load(&a->n_deleted), atomic_load(&b->n_deleted));
}

/* ---- raw records ---- */

static int get_raw(qz_storage *s, const void *key, size_t klen, unsigned char **out, size_t *len)
{
    qz_storage_txn *t;
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    const void *v;
    int rc = s->get(s, t, QZ_TABLE_GRAPH, key, klen, &v, len);
    if (rc == QZ_OK) {
        *out = malloc(*len);
        memcpy(*out, v, *len);
    }
    s->abort(s, t);
    return rc;
}

static void put_raw(qz_storage *s, const void *key, size_t klen, const void *v, size_t len)
{
    qz_storage_txn *t;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->put(s, t, QZ_TABLE_GRAPH, key, klen, v, len), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
}

static unsigned char *get_chunk(qz_storage *s, uint32_t c, size_t *len)
{
    unsigned char k[QZ__GRAPH_CHUNK_KEY_SIZE], *v = NULL;
    qz__graph_chunk_key(k, c);
    assert_int_equal(get_raw(s, k, sizeof k, &v, len), QZ_OK);
    return v;
}

static void put_chunk(qz_storage *s, uint32_t c, const void *v, size_t len)
{
    unsigned char k[QZ__GRAPH_CHUNK_KEY_SIZE];
    qz__graph_chunk_key(k, c);
    put_raw(s, k, sizeof k, v, len);
}

static void reseal_chunk(unsigned char *v, size_t len, uint32_t c)
{
    qz__put_u64le(v + len - 8, XXH3_64bits_withSeed(v, len - 8, c));
}

typedef struct sizes {
    size_t records, bytes;
} sizes;

static int count_fn(const void *k, size_t kl, const void *v, size_t vl, void *u)
{
    (void)k, (void)kl, (void)v;
    sizes *z = u;
    z->records++;
    z->bytes += vl;
    return 0;
}

static sizes table_sizes(qz_storage *s)
{
    sizes z = {0, 0};
    qz_storage_txn *t;
    assert_int_equal(s->begin(s, QZ_TXN_READONLY, &t), QZ_OK);
    assert_int_equal(s->scan(s, t, QZ_TABLE_GRAPH, NULL, 0, count_fn, &z), QZ_OK);
    s->abort(s, t);
    return z;
}

static void expect_corrupt(qz_storage *s, const char *needle)
{
    int rc = load_rc(s);
    if (rc != QZ_ECORRUPT) fail_msg("load gave %d (%s), expected QZ_ECORRUPT", rc, qz__err_msg());
    if (needle && !strstr(qz__err_msg(), needle)) fail_msg("message \"%s\" lacks \"%s\"", qz__err_msg(), needle);
}

/* ---- tests ---- */

static void incremental_save_writes_only_touched_chunks(void **state)
{
    (void)state;
    qz__hnsw *h = build(5000); /* chunks 0..4 */
    qz_storage *s = mem();
    qz__graph_ckpt *ck;
    assert_int_equal(qz__graph_ckpt_new(&ck), QZ_OK);
    qz__graph_save_stats st;

    save(h, s, ck, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.chunks, 5);
    assert_int_equal(st.chunks_written, 5);
    assert_int_equal(st.chunks_skipped, 0);
    assert_int_equal(st.header_written, 1);
    assert_int_equal(st.nodes, 5000);
    sizes z = table_sizes(s);
    assert_int_equal(z.records, 6);
    assert_int_equal(st.bytes_written, z.bytes);

    /* Nothing changed: nothing written. */
    save(h, s, ck, &st);
    assert_int_equal(st.full, 0);
    assert_int_equal(st.chunks_written, 0);
    assert_int_equal(st.chunks_skipped, 5);
    assert_int_equal(st.header_written, 0);
    assert_int_equal(st.bytes_written, 0);

    /* Touch chunk 0 (a node becomes DELETED) and chunk 3 (a link list). */
    mark_deleted(h, 10);
    _Atomic uint32_t *ll = qz__links(h, 3500, 0);
    assert_true(ll[0] >= 2);
    ll[0] = ll[0] - 1;
    save(h, s, ck, &st);
    assert_int_equal(st.chunks_written, 2);
    assert_int_equal(st.chunks_skipped, 3);
    assert_int_equal(st.chunks_deleted, 0);
    assert_int_equal(st.header_written, 0); /* same entry, nodes, high-water */
    assert_int_equal(st.deleted_nodes, 1);
    size_t l0, l3;
    free(get_chunk(s, 0, &l0));
    free(get_chunk(s, 3, &l3));
    assert_int_equal(st.bytes_written, l0 + l3);

    qz__hnsw *b = load_from(s, NULL, h, NULL);
    assert_same(h, b);
    qz__hnsw_destroy(b);

    /* New nodes past the high-water mark: a new chunk and a new header. */
    for (int i = 0; i < 200; i++) insert_node(h, 9000 + i, 9000 + i, NULL);
    save(h, s, ck, &st);
    assert_int_equal(st.chunks, 6);
    assert_true(st.chunks_written >= 1);
    assert_int_equal(st.chunks_written + st.chunks_skipped, 6);
    assert_int_equal(st.header_written, 1);
    b = load_from(s, NULL, h, NULL);
    assert_same(h, b);
    qz__hnsw_destroy(b);

    qz__graph_ckpt_free(ck);
    s->close(s);
    qz__hnsw_destroy(h);
}

static void deleted_nodes_round_trip_and_repair_after_load(void **state)
{
    (void)state;
    qz__hnsw *h = build(3000);
    /* Delete every 7th node, the entry point among them. */
    uint32_t entry = (uint32_t)atomic_load(&h->entry);
    size_t ndel = 0;
    for (uint32_t sl = 0; sl < 3000; sl++)
        if (sl % 7 == 0 || sl == entry) mark_deleted(h, sl), ndel++;
    qz_storage *s = mem();
    qz__graph_save_stats st;
    save(h, s, NULL, &st); /* no repair first */
    assert_int_equal(st.nodes, 3000);
    assert_int_equal(st.deleted_nodes, ndel);

    size_t live_loaded = 0;
    qz__hnsw *b = load_from(s, NULL, h, &live_loaded);
    assert_int_equal(live_loaded, 3000 - ndel); /* fn only for LIVE ones */
    assert_same(h, b);
    /* Live nodes link to deleted ones; the loaded graph is valid and the
     * repair lib/api runs after a load unlinks them. */
    int links_to_deleted = 0;
    for (uint32_t sl = 0; sl < 3000 && !links_to_deleted; sl++) {
        if (atomic_load(&b->state[sl]) != QZ__LIVE) continue;
        _Atomic uint32_t *ll = qz__links(b, sl, 0);
        for (uint32_t i = 1; i <= ll[0]; i++) links_to_deleted |= atomic_load(&b->state[ll[i]]) == QZ__DELETED;
    }
    assert_true(links_to_deleted);
    assert_int_equal(qz__hnsw_check(b), QZ_OK);
    assert_int_equal(qz__hnsw_repair(b), QZ_OK);
    assert_int_equal(atomic_load(&b->n_deleted), 0);
    assert_int_equal(atomic_load(&b->n_live), 3000 - ndel);
    assert_int_equal(qz__hnsw_check(b), QZ_OK);
    uint64_t e = atomic_load(&b->entry);
    assert_true(e != UINT64_MAX);
    assert_int_equal(atomic_load(&b->state[(uint32_t)e]), QZ__LIVE);
    qz__hnsw_destroy(b);
    s->close(s);
    qz__hnsw_destroy(h);
}

static void save_after_load_writes_nothing(void **state)
{
    (void)state;
    qz__hnsw *h = build(4100);
    mark_deleted(h, 5);
    qz_storage *s = mem();
    save(h, s, NULL, NULL);

    qz__graph_ckpt *ck;
    assert_int_equal(qz__graph_ckpt_new(&ck), QZ_OK);
    qz__hnsw *b = load_from(s, ck, h, NULL);
    qz__graph_save_stats st;
    save(b, s, ck, &st);
    assert_int_equal(st.full, 0);
    assert_int_equal(st.chunks, 5);
    assert_int_equal(st.chunks_written, 0);
    assert_int_equal(st.chunks_skipped, 5);
    assert_int_equal(st.header_written, 0);
    assert_int_equal(st.bytes_written, 0);

    /* One change after the load: one chunk. */
    mark_deleted(b, 2100);
    save(b, s, ck, &st);
    assert_int_equal(st.chunks_written, 1);
    assert_int_equal(st.chunks_skipped, 4);

    /* The same ck against another backend: everything, cleared first. */
    qz_storage *s2 = mem();
    save(b, s2, ck, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.chunks_written, 5);
    save(b, s2, ck, &st);
    assert_int_equal(st.chunks_written, 0);
    s2->close(s2);

    qz__graph_ckpt_free(ck);
    qz__hnsw_destroy(b);
    s->close(s);
    qz__hnsw_destroy(h);
}

static void emptied_chunk_record_is_removed(void **state)
{
    (void)state;
    qz__hnsw *h = build(3072); /* chunks 0..2, full */
    qz_storage *s = mem();
    qz__graph_ckpt *ck;
    assert_int_equal(qz__graph_ckpt_new(&ck), QZ_OK);
    save(h, s, ck, NULL);
    for (uint32_t sl = 1024; sl < 2048; sl++) mark_deleted(h, sl);
    assert_int_equal(qz__hnsw_repair(h), QZ_OK); /* chunk 1 becomes FREE */
    qz__graph_save_stats st;
    save(h, s, ck, &st);
    assert_int_equal(st.chunks_deleted, 1);
    assert_int_equal(st.nodes, 2048);
    assert_int_equal(st.header_written, 1);
    unsigned char k[QZ__GRAPH_CHUNK_KEY_SIZE], *v = NULL;
    size_t len;
    qz__graph_chunk_key(k, 1);
    assert_int_equal(get_raw(s, k, sizeof k, &v, &len), QZ_ENOTFOUND);
    assert_int_equal(table_sizes(s).records, 3);
    qz__hnsw *b = load_from(s, NULL, h, NULL);
    assert_same(h, b);
    qz__hnsw_destroy(b);

    /* Slots of chunk 1 are reused: its record comes back. */
    for (int i = 0; i < 100; i++) insert_node(h, 50000 + i, 50000 + i, NULL);
    save(h, s, ck, &st);
    assert_int_equal(table_sizes(s).records, 4);
    b = load_from(s, NULL, h, NULL);
    assert_same(h, b);
    qz__hnsw_destroy(b);
    qz__graph_ckpt_free(ck);
    s->close(s);
    qz__hnsw_destroy(h);
}

static void damaged_chunks_are_ecorrupt_naming_the_chunk(void **state)
{
    (void)state;
    qz__hnsw *h = build(2500); /* chunks 0..2 */
    qz_storage *s = mem();
    save(h, s, NULL, NULL);
    size_t len;
    unsigned char *good = get_chunk(s, 1, &len);
    unsigned char *v = malloc(len);

    /* A flipped byte: checksum. */
    memcpy(v, good, len);
    v[len / 2] ^= 0x40;
    put_chunk(s, 1, v, len);
    expect_corrupt(s, "chunk 1");

    /* Truncated. */
    put_chunk(s, 1, good, len - 13);
    expect_corrupt(s, "chunk 1");
    put_chunk(s, 1, good, 5);
    expect_corrupt(s, "chunk 1");

    /* Chunk 1's record under chunk 2's key: the seed differs. */
    put_chunk(s, 1, good, len);
    size_t len2;
    unsigned char *good2 = get_chunk(s, 2, &len2);
    put_chunk(s, 2, good, len);
    expect_corrupt(s, "chunk 2");
    put_chunk(s, 2, good2, len2);
    assert_int_equal(load_rc(s), QZ_OK);

    /* Valid checksums over bad fields: the bounds checks. */
    /* node count 0 and too large */
    memcpy(v, good, len);
    qz__put_u32le(v, 0);
    reseal_chunk(v, len, 1);
    put_chunk(s, 1, v, len);
    expect_corrupt(s, "chunk 1");
    qz__put_u32le(v, QZ__GRAPH_CHUNK + 1);
    reseal_chunk(v, len, 1);
    put_chunk(s, 1, v, len);
    expect_corrupt(s, "chunk 1");
    /* first node's slot outside the chunk */
    memcpy(v, good, len);
    qz__put_u32le(v + 4, 5);
    reseal_chunk(v, len, 1);
    put_chunk(s, 1, v, len);
    expect_corrupt(s, "chunk 1");
    /* level too high */
    memcpy(v, good, len);
    v[4 + 20] = QZ__HNSW_MAX_LEVEL + 1;
    reseal_chunk(v, len, 1);
    put_chunk(s, 1, v, len);
    expect_corrupt(s, "chunk 1");
    /* unknown flag bit, reserved bytes */
    memcpy(v, good, len);
    v[4 + 21] = 0x02;
    reseal_chunk(v, len, 1);
    put_chunk(s, 1, v, len);
    expect_corrupt(s, "chunk 1");
    memcpy(v, good, len);
    v[4 + 23] = 1;
    reseal_chunk(v, len, 1);
    put_chunk(s, 1, v, len);
    expect_corrupt(s, "chunk 1");
    /* too many links, a link beyond the high-water mark, a self link */
    unsigned char *n0 = v + 4 + QZ__GRAPH_NODE_FIXED; /* first node's layer-0 count */
    memcpy(v, good, len);
    qz__put_u32le(n0, 2 * TM + 1);
    reseal_chunk(v, len, 1);
    put_chunk(s, 1, v, len);
    expect_corrupt(s, "chunk 1");
    memcpy(v, good, len);
    assert_true(qz__get_u32le(n0) >= 1);
    qz__put_u32le(n0 + 4, 2500);
    reseal_chunk(v, len, 1);
    put_chunk(s, 1, v, len);
    expect_corrupt(s, "chunk 1");
    memcpy(v, good, len);
    qz__put_u32le(n0 + 4, qz__get_u32le(v + 4));
    reseal_chunk(v, len, 1);
    put_chunk(s, 1, v, len);
    expect_corrupt(s, "chunk 1");
    /* trailing bytes */
    unsigned char *w = malloc(len + 4);
    memcpy(w, good, len - 8);
    memset(w + len - 8, 0, 4);
    reseal_chunk(w, len + 4, 1);
    put_chunk(s, 1, w, len + 4);
    expect_corrupt(s, "chunk 1");
    free(w);

    /* A missing chunk: links to missing slots, node and chunk counts. */
    put_chunk(s, 1, good, len);
    assert_int_equal(load_rc(s), QZ_OK);
    {
        qz_storage_txn *t;
        unsigned char k[QZ__GRAPH_CHUNK_KEY_SIZE];
        qz__graph_chunk_key(k, 1);
        assert_int_equal(s->begin(s, 0, &t), QZ_OK);
        assert_int_equal(s->del(s, t, QZ_TABLE_GRAPH, k, sizeof k), QZ_OK);
        assert_int_equal(s->commit(s, t), QZ_OK);
    }
    expect_corrupt(s, NULL);
    /* A chunk beyond the high-water mark. */
    put_chunk(s, 1, good, len);
    put_chunk(s, 7, good, len);
    expect_corrupt(s, "chunk 7");
    {
        qz_storage_txn *t;
        unsigned char k[QZ__GRAPH_CHUNK_KEY_SIZE];
        qz__graph_chunk_key(k, 7);
        assert_int_equal(s->begin(s, 0, &t), QZ_OK);
        assert_int_equal(s->del(s, t, QZ_TABLE_GRAPH, k, sizeof k), QZ_OK);
        assert_int_equal(s->commit(s, t), QZ_OK);
    }

    /* Header: damaged, wrong parameters, newer version. */
    unsigned char *hdr;
    size_t hl;
    assert_int_equal(get_raw(s, "h", 1, &hdr, &hl), QZ_OK);
    assert_int_equal(hl, QZ__GRAPH_HEADER_SIZE);
    unsigned char hb[QZ__GRAPH_HEADER_SIZE];
    memcpy(hb, hdr, hl);
    hb[33] ^= 1;
    put_raw(s, "h", 1, hb, hl);
    expect_corrupt(s, "header");
    qz__graph_header gh;
    assert_int_equal(qz__graph_header_decode(hdr, hl, &gh), 0);
    gh.M = TM + 1;
    qz__graph_header_encode(hb, &gh);
    put_raw(s, "h", 1, hb, hl);
    expect_corrupt(s, "parameters");
    assert_int_equal(qz__graph_header_decode(hdr, hl, &gh), 0);
    gh.chunks = 2;
    qz__graph_header_encode(hb, &gh);
    put_raw(s, "h", 1, hb, hl);
    expect_corrupt(s, "chunk records");
    assert_int_equal(qz__graph_header_decode(hdr, hl, &gh), 0);
    gh.version = QZ__GRAPH_VERSION + 1;
    qz__graph_header_encode(hb, &gh);
    put_raw(s, "h", 1, hb, hl);
    assert_int_equal(load_rc(s), QZ_EVERSION);
    put_raw(s, "h", 1, hdr, hl);
    assert_int_equal(load_rc(s), QZ_OK);

    free(hdr);
    free(good2);
    free(v);
    free(good);
    s->close(s);
    qz__hnsw_destroy(h);
}

/* The version-1 layout as libquartz 1.0 wrote it on x86-64: host order,
 * i.e. little-endian; only LIVE nodes; u32 level; checksums seed 0. */
static void write_v1(qz__hnsw *h, qz_storage *s)
{
    uint32_t hw = qz__hnsw_high_water(h);
    qz_storage_txn *t;
    assert_int_equal(s->begin(s, 0, &t), QZ_OK);
    assert_int_equal(s->clear(s, t, QZ_TABLE_GRAPH), QZ_OK);
    size_t cap = 1 << 20;
    unsigned char *b = malloc(cap);
    uint64_t nodes = 0;
    for (uint32_t c = 0; c * 1024u < hw; c++) {
        size_t n = 4;
        uint32_t count = 0;
        for (uint32_t sl = c * 1024u; sl < hw && sl < (c + 1) * 1024u; sl++) {
            if (atomic_load(&h->state[sl]) != QZ__LIVE) continue;
            count++;
            qz__put_u32le(b + n, sl);
            qz__put_u64le(b + n + 4, h->labels[sl]);
            qz__put_u64le(b + n + 12, h->seqs[sl]);
            qz__put_u32le(b + n + 20, h->levels[sl]);
            n += 24;
            for (int l = 0; l <= h->levels[sl]; l++) {
                _Atomic uint32_t *ll = qz__links(h, sl, l);
                qz__put_u32le(b + n, ll[0]);
                n += 4;
                for (uint32_t i = 1; i <= ll[0]; i++, n += 4) qz__put_u32le(b + n, ll[i]);
            }
            assert_true(n + 1024 < cap);
        }
        if (!count) continue;
        qz__put_u32le(b, count);
        nodes += count;
        qz__put_u64le(b + n, XXH3_64bits(b, n));
        n += 8;
        unsigned char k[5] = {'n', (unsigned char)(c >> 24), (unsigned char)(c >> 16), (unsigned char)(c >> 8),
                              (unsigned char)c};
        assert_int_equal(s->put(s, t, QZ_TABLE_GRAPH, k, 5, b, n), QZ_OK);
    }
    unsigned char hd[56];
    qz__put_u32le(hd, 0x52475a51u);
    qz__put_u32le(hd + 4, 1);
    qz__put_u32le(hd + 8, h->M);
    qz__put_u32le(hd + 12, h->dim);
    qz__put_u32le(hd + 16, h->metric);
    qz__put_u32le(hd + 20, h->vec_bytes);
    qz__put_u64le(hd + 24, atomic_load(&h->entry));
    qz__put_u64le(hd + 32, hw);
    qz__put_u64le(hd + 40, nodes);
    qz__put_u64le(hd + 48, XXH3_64bits(hd, 48));
    assert_int_equal(s->put(s, t, QZ_TABLE_GRAPH, "h", 1, hd, sizeof hd), QZ_OK);
    assert_int_equal(s->commit(s, t), QZ_OK);
    free(b);
}

static void version1_snapshot_loads(void **state)
{
    (void)state;
    qz__hnsw *h = build(2300);
    /* A gap, as a v1 writer left after its repair. */
    for (uint32_t sl = 100; sl < 120; sl++) mark_deleted(h, sl);
    assert_int_equal(qz__hnsw_repair(h), QZ_OK);
    qz_storage *s = mem();
    write_v1(h, s);

    qz__graph_ckpt *ck;
    assert_int_equal(qz__graph_ckpt_new(&ck), QZ_OK);
    size_t live = 0;
    qz__hnsw *b = load_from(s, ck, h, &live);
    assert_int_equal(live, 2280);
    assert_same(h, b);
    /* The first save after a v1 load rewrites everything in version 2. */
    qz__graph_save_stats st;
    save(b, s, ck, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.chunks_written, 3);
    unsigned char *hdr;
    size_t hl;
    assert_int_equal(get_raw(s, "h", 1, &hdr, &hl), QZ_OK);
    assert_int_equal(hl, QZ__GRAPH_HEADER_SIZE);
    assert_int_equal(qz__get_u32le(hdr + 4), 2);
    free(hdr);
    qz__hnsw *c = load_from(s, NULL, h, NULL);
    assert_same(h, c);
    qz__hnsw_destroy(c);
    qz__hnsw_destroy(b);
    qz__graph_ckpt_free(ck);

    /* A damaged v1 chunk names its chunk too. */
    write_v1(h, s);
    size_t len;
    unsigned char *v = get_chunk(s, 2, &len);
    v[9] ^= 1;
    put_chunk(s, 2, v, len);
    expect_corrupt(s, "chunk 2");
    free(v);
    s->close(s);
    qz__hnsw_destroy(h);
}

/* The exact bytes of a tiny snapshot: explicit little-endian fields and a
 * big-endian chunk number in the key, whatever the host. */
static void layout_is_explicit_little_endian(void **state)
{
    (void)state;
    qz__hnsw *h = new_index(4);
    uint32_t a, b;
    insert_node(h, 0x0102030405060708ull, 0x1112131415161718ull, &a);
    insert_node(h, 77, 78, &b);
    mark_deleted(h, b);
    qz_storage *s = mem();
    save(h, s, NULL, NULL);

    unsigned char *hd;
    size_t hl;
    assert_int_equal(get_raw(s, "h", 1, &hd, &hl), QZ_OK);
    assert_int_equal(hl, 64);
    static const unsigned char magic_ver[8] = {'Q', 'Z', 'G', 'R', 2, 0, 0, 0};
    assert_memory_equal(hd, magic_ver, 8);
    assert_int_equal(hd[8], TM);
    assert_int_equal(hd[12], DIM);
    assert_int_equal(hd[32], 2); /* high_water */
    assert_int_equal(hd[40], 2); /* nodes */
    assert_int_equal(hd[48], 0x00); /* chunk_slots 1024 = 00 04 00 00 */
    assert_int_equal(hd[49], 0x04);
    assert_int_equal(hd[52], 1); /* chunks */
    assert_int_equal(qz__get_u64le(hd + 56), XXH3_64bits(hd, 56));
    free(hd);

    static const unsigned char k0[5] = {'n', 0, 0, 0, 0};
    unsigned char *v;
    size_t vl;
    assert_int_equal(get_raw(s, k0, 5, &v, &vl), QZ_OK);
    assert_int_equal(v[0], 2);
    assert_int_equal(v[1] | v[2] | v[3], 0);
    unsigned char *n = v + 4;
    assert_int_equal(qz__get_u32le(n), a);
    static const unsigned char label[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    static const unsigned char seq[8] = {0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11};
    assert_memory_equal(n + 4, label, 8);
    assert_memory_equal(n + 12, seq, 8);
    assert_int_equal(n[21], 0); /* LIVE */
    size_t first = QZ__GRAPH_NODE_FIXED;
    for (int l = 0; l <= h->levels[a]; l++) {
        _Atomic uint32_t *ll = qz__links(h, a, l);
        assert_int_equal(qz__get_u32le(n + first), ll[0]);
        if (ll[0]) assert_int_equal(qz__get_u32le(n + first + 4), b);
        first += 4 + 4 * (size_t)ll[0];
    }
    unsigned char *m = n + first;
    assert_int_equal(qz__get_u32le(m), b);
    assert_int_equal(qz__get_u64le(m + 4), 77);
    assert_int_equal(m[21], QZ__GRAPH_NODE_DELETED);
    assert_int_equal(qz__get_u64le(v + vl - 8), XXH3_64bits_withSeed(v, vl - 8, 0));
    free(v);

    /* Chunk 258's key is 'n' 00 00 01 02. */
    unsigned char k[5];
    qz__graph_chunk_key(k, 258);
    static const unsigned char k258[5] = {'n', 0, 0, 1, 2};
    assert_memory_equal(k, k258, 5);
    s->close(s);
    qz__hnsw_destroy(h);
}

/* INSERTING nodes (a write in progress) are left out, with the links to
 * them; an INSERTING entry point is replaced by the highest saved node. */
static void inserting_nodes_are_treated_as_absent(void **state)
{
    (void)state;
    qz__hnsw *h = build(1500);
    uint64_t e = atomic_load(&h->entry);
    uint32_t es = (uint32_t)e, other = es == 700 ? 701 : 700;
    atomic_store(&h->state[es], QZ__INSERTING);
    atomic_store(&h->state[other], QZ__INSERTING);
    qz_storage *s = mem();
    qz__graph_save_stats st;
    save(h, s, NULL, &st);
    assert_int_equal(st.nodes, 1498);

    qz__hnsw *b = new_index(16);
    loaded l = {0};
    int found = 0;
    if (qz__hnsw_load(b, s, NULL, on_node, &l, &found) != QZ_OK) fail_msg("load: %s", qz__err_msg());
    assert_int_equal(l.n, 1498);
    assert_int_equal(atomic_load(&b->state[es]), QZ__FREE);
    assert_int_equal(atomic_load(&b->state[other]), QZ__FREE);
    uint64_t be = atomic_load(&b->entry);
    assert_true(be != UINT64_MAX && (uint32_t)be != es && (uint32_t)be != other);
    int top = 0;
    for (uint32_t sl = 0; sl < 1500; sl++)
        if (sl != es && sl != other && h->levels[sl] > top) top = h->levels[sl];
    assert_int_equal(be >> 32, top);
    for (size_t i = 0; i < l.n; i++) {
        uint32_t sl = l.slots[i];
        for (int lv = 0; lv <= b->levels[sl]; lv++) {
            _Atomic uint32_t *x = qz__links(h, sl, lv), *y = qz__links(b, sl, lv);
            uint32_t k = 1;
            for (uint32_t j = 1; j <= x[0]; j++) {
                if (x[j] == es || x[j] == other) continue;
                assert_int_equal(x[j], y[k]);
                k++;
            }
            assert_int_equal(y[0], k - 1);
        }
    }
    free(l.slots);
    qz__hnsw_destroy(b);
    atomic_store(&h->state[es], QZ__LIVE);
    atomic_store(&h->state[other], QZ__LIVE);
    s->close(s);
    qz__hnsw_destroy(h);
}

/* ---- a backend whose puts fail on demand ---- */

typedef struct faulty {
    qz_storage self;
    qz_storage *inner;
    int fail_put_after; /* <0: never */
    int fail_commit;
    qz__hnsw *repair_on_put; /* run a repair of it inside the next put (once) */
} faulty;

static int f_begin(qz_storage *s, uint32_t fl, qz_storage_txn **t)
{
    faulty *f = s->user;
    return f->inner->begin(f->inner, fl, t);
}
static int f_get(qz_storage *s, qz_storage_txn *t, uint32_t tab, const void *k, size_t kl, const void **v, size_t *vl)
{
    faulty *f = s->user;
    return f->inner->get(f->inner, t, tab, k, kl, v, vl);
}
static int f_put(qz_storage *s, qz_storage_txn *t, uint32_t tab, const void *k, size_t kl, const void *v, size_t vl)
{
    faulty *f = s->user;
    if (f->fail_put_after == 0) return qz__err(QZ_EIO, "injected put failure");
    if (f->fail_put_after > 0) f->fail_put_after--;
    if (f->repair_on_put) {
        /* The save calls the storage without holding `resize`: a repair
         * (which takes it exclusive) can run here, as it could from another
         * thread between two chunks. */
        qz__hnsw *h = f->repair_on_put;
        f->repair_on_put = NULL;
        assert_int_equal(qz__hnsw_repair(h), QZ_OK);
    }
    return f->inner->put(f->inner, t, tab, k, kl, v, vl);
}
static int f_del(qz_storage *s, qz_storage_txn *t, uint32_t tab, const void *k, size_t kl)
{
    faulty *f = s->user;
    return f->inner->del(f->inner, t, tab, k, kl);
}
static int f_scan(qz_storage *s, qz_storage_txn *t, uint32_t tab, const void *p, size_t pl, qz_storage_scan_fn fn,
                  void *u)
{
    faulty *f = s->user;
    return f->inner->scan(f->inner, t, tab, p, pl, fn, u);
}
static int f_clear(qz_storage *s, qz_storage_txn *t, uint32_t tab)
{
    faulty *f = s->user;
    return f->inner->clear(f->inner, t, tab);
}
static int f_commit(qz_storage *s, qz_storage_txn *t)
{
    faulty *f = s->user;
    if (f->fail_commit) {
        f->inner->abort(f->inner, t);
        return qz__err(QZ_EIO, "injected commit failure");
    }
    return f->inner->commit(f->inner, t);
}
static void f_abort(qz_storage *s, qz_storage_txn *t)
{
    faulty *f = s->user;
    f->inner->abort(f->inner, t);
}
static int f_sync(qz_storage *s)
{
    faulty *f = s->user;
    return f->inner->sync(f->inner);
}
static void f_close(qz_storage *s) { (void)s; }

static void failed_save_keeps_previous_snapshot(void **state)
{
    (void)state;
    qz__hnsw *h = build(3000);
    faulty f = {.inner = mem(), .fail_put_after = -1};
    f.self = (qz_storage){sizeof(qz_storage), 0, &f, f_begin, f_get, f_put, f_del, f_scan, f_clear, f_commit,
                          f_abort, f_sync, f_close};
    qz_storage *s = &f.self;
    qz__graph_ckpt *ck;
    assert_int_equal(qz__graph_ckpt_new(&ck), QZ_OK);
    save(h, s, ck, NULL);
    qz__hnsw *before = load_from(s, NULL, h, NULL);

    /* Change chunks 0 and 2; the second put fails. */
    mark_deleted(h, 3);
    mark_deleted(h, 2500);
    f.fail_put_after = 1;
    assert_int_equal(qz__hnsw_save(h, s, ck, NULL), QZ_EIO);
    f.fail_put_after = -1;
    /* The stored graph is the previous one, whole. */
    qz__hnsw *b = new_index(16);
    loaded l = {0};
    int found;
    assert_int_equal(qz__hnsw_load(b, s, NULL, on_node, &l, &found), QZ_OK);
    for (size_t i = 0; i < l.n; i++) qz__hnsw_attach(b, l.slots[i], qz__node_vec(h, l.slots[i]), NULL);
    free(l.slots);
    assert_same(before, b);
    qz__hnsw_destroy(b);

    /* The failed save made ck forget: the next one is full and right. */
    qz__graph_save_stats st;
    save(h, s, ck, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.chunks_written, 3);
    b = load_from(s, NULL, h, NULL);
    assert_same(h, b);
    qz__hnsw_destroy(b);

    /* A failed commit likewise. */
    mark_deleted(h, 1500);
    f.fail_commit = 1;
    assert_int_equal(qz__hnsw_save(h, s, ck, NULL), QZ_EIO);
    f.fail_commit = 0;
    save(h, s, ck, &st);
    assert_int_equal(st.full, 1);
    b = load_from(s, NULL, h, NULL);
    assert_same(h, b);
    qz__hnsw_destroy(b);

    qz__hnsw_destroy(before);
    qz__graph_ckpt_free(ck);
    f.inner->close(f.inner);
    qz__hnsw_destroy(h);
}

static qz_storage faulty_over(faulty *f)
{
    return (qz_storage){sizeof(qz_storage), 0, f, f_begin, f_get, f_put, f_del, f_scan, f_clear, f_commit,
                        f_abort, f_sync, f_close};
}

/* A repair that runs while a save is between two chunks unlinks the deleted
 * nodes but leaves their slots DELETED (the save's picture still names them);
 * the snapshot loads; the next repair frees the slots. */
static void repair_during_save_frees_nothing(void **state)
{
    (void)state;
    qz__hnsw *h = build(3000);
    faulty f = {.inner = mem(), .fail_put_after = -1};
    f.self = faulty_over(&f);
    qz_storage *s = &f.self;
    qz__graph_ckpt *ck;
    assert_int_equal(qz__graph_ckpt_new(&ck), QZ_OK);
    save(h, s, ck, NULL);
    size_t del = 0;
    for (uint32_t sl = 0; sl < 3000; sl += 13, del++) mark_deleted(h, sl);
    assert_int_equal(atomic_load(&h->n_deleted), del);

    f.repair_on_put = h; /* during the put of chunk 0, before chunks 1 and 2 are read */
    qz__graph_save_stats st;
    save(h, s, ck, &st);
    assert_null(f.repair_on_put);
    assert_int_equal(st.chunks_written, 3);
    assert_int_equal(st.deleted_nodes, del);
    assert_int_equal(atomic_load(&h->n_deleted), del); /* unlinked, not freed */
    assert_int_equal(atomic_load(&h->saving), 0);
    size_t live = 0;
    qz__hnsw *b = load_from(s, NULL, h, &live);
    assert_int_equal(live, 3000 - del);
    qz__hnsw_destroy(b);

    /* No save running: the next repair frees them, and a save of the result
     * loads as the exact picture. */
    assert_int_equal(qz__hnsw_repair(h), QZ_OK);
    assert_int_equal(atomic_load(&h->n_deleted), 0);
    save(h, s, ck, NULL);
    b = load_from(s, NULL, h, NULL);
    assert_same(h, b);
    qz__hnsw_destroy(b);
    qz__graph_ckpt_free(ck);
    f.inner->close(f.inner);
    qz__hnsw_destroy(h);
}

/* A save holds one chunk in memory, not the snapshot: under a ceiling on
 * single allocations far below the snapshot's size (10,000 nodes serialise
 * to about 740 KB, which one buffer would hold at 1 MB), full and incremental
 * saves succeed. */
static void save_memory_is_one_chunk(void **state)
{
    (void)state;
    qz__hnsw *h = build(10000);
    qz_storage *s = mem();
    qz__graph_ckpt *ck;
    assert_int_equal(qz__graph_ckpt_new(&ck), QZ_OK);
    qz__graph_save_stats st;
    qz__alloc_fail_above(256 * 1024);
    int rc = qz__hnsw_save(h, s, ck, &st);
    qz__alloc_fail_above(0);
    if (rc != QZ_OK) fail_msg("save under a 256 KiB allocation ceiling: %d %s", rc, qz__err_msg());
    if (st.bytes_written < 2 * 256 * 1024) fail_msg("snapshot of %zu bytes", (size_t)st.bytes_written);
    mark_deleted(h, 5);
    mark_deleted(h, 9999);
    qz__alloc_fail_above(256 * 1024);
    rc = qz__hnsw_save(h, s, ck, &st);
    qz__alloc_fail_above(0);
    assert_int_equal(rc, QZ_OK);
    assert_int_equal(st.chunks_written, 2);
    qz__hnsw *b = load_from(s, NULL, h, NULL);
    assert_same(h, b);
    qz__hnsw_destroy(b);
    qz__graph_ckpt_free(ck);
    s->close(s);
    qz__hnsw_destroy(h);
}

static void empty_index_and_empty_table(void **state)
{
    (void)state;
    qz_storage *s = mem();
    qz__hnsw *h = new_index(4);
    int found = 1;
    loaded l = {0};
    qz__graph_ckpt *ck;
    assert_int_equal(qz__graph_ckpt_new(&ck), QZ_OK);
    assert_int_equal(qz__hnsw_load(h, s, ck, on_node, &l, &found), QZ_OK);
    assert_int_equal(found, 0);
    qz__graph_save_stats st;
    save(h, s, ck, &st);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.chunks, 0);
    assert_int_equal(st.header_written, 1);
    qz__hnsw *b = load_from(s, NULL, h, NULL);
    assert_int_equal(atomic_load(&b->entry), UINT64_MAX);
    qz__hnsw_destroy(b);
    save(h, s, ck, &st);
    assert_int_equal(st.header_written, 0);
    qz__graph_ckpt_free(ck);
    qz__graph_ckpt_free(NULL);
    qz__hnsw_destroy(h);
    s->close(s);
}

/* Allocation failure at every step of a save and of a load: an error, the
 * stored snapshot stays whole (old or new), nothing leaks (ASan). */
static void allocation_failures_are_clean(void **state)
{
    (void)state;
    qz__hnsw *h = build(2100);
    qz_storage *s = mem();
    qz__graph_ckpt *ck;
    assert_int_equal(qz__graph_ckpt_new(&ck), QZ_OK);
    save(h, s, ck, NULL);
    qz__hnsw *before = load_from(s, NULL, h, NULL);
    mark_deleted(h, 7);
    mark_deleted(h, 1500);
    int ok = 0;
    for (long n = 0; n < 200 && !ok; n++) {
        qz__alloc_fail_after(n);
        int rc = qz__hnsw_save(h, s, ck, NULL);
        qz__alloc_fail_after(-1);
        ok = rc == QZ_OK;
        if (!ok) {
            assert_true(rc < 0);
            qz__hnsw *b = load_from(s, NULL, h, NULL);
            assert_same(before, b); /* the commit is the last step: still the old one */
            qz__hnsw_destroy(b);
        }
    }
    assert_true(ok);
    qz__hnsw *b = load_from(s, NULL, h, NULL);
    assert_same(h, b);
    qz__hnsw_destroy(b);

    ok = 0;
    for (long n = 0; n < 400 && !ok; n++) {
        qz__hnsw *l = new_index(16);
        loaded ld = {0};
        int found = 0;
        qz__graph_ckpt *ck2;
        assert_int_equal(qz__graph_ckpt_new(&ck2), QZ_OK);
        qz__alloc_fail_after(n);
        int rc = qz__hnsw_load(l, s, ck2, on_node, &ld, &found);
        qz__alloc_fail_after(-1);
        ok = rc == QZ_OK;
        if (!ok) assert_true(rc < 0);
        else {
            /* ck2 is complete: a save through it writes nothing */
            for (size_t i = 0; i < ld.n; i++) qz__hnsw_attach(l, ld.slots[i], qz__node_vec(h, ld.slots[i]), NULL);
            qz__graph_save_stats st;
            save(l, s, ck2, &st);
            assert_int_equal(st.chunks_written, 0);
            assert_int_equal(st.header_written, 0);
        }
        free(ld.slots);
        qz__graph_ckpt_free(ck2);
        qz__hnsw_destroy(l);
    }
    assert_true(ok);
    qz__hnsw_destroy(before);
    qz__graph_ckpt_free(ck);
    s->close(s);
    qz__hnsw_destroy(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(incremental_save_writes_only_touched_chunks),
        cmocka_unit_test(deleted_nodes_round_trip_and_repair_after_load),
        cmocka_unit_test(save_after_load_writes_nothing),
        cmocka_unit_test(emptied_chunk_record_is_removed),
        cmocka_unit_test(damaged_chunks_are_ecorrupt_naming_the_chunk),
        cmocka_unit_test(version1_snapshot_loads),
        cmocka_unit_test(layout_is_explicit_little_endian),
        cmocka_unit_test(inserting_nodes_are_treated_as_absent),
        cmocka_unit_test(failed_save_keeps_previous_snapshot),
        cmocka_unit_test(repair_during_save_frees_nothing),
        cmocka_unit_test(save_memory_is_one_chunk),
        cmocka_unit_test(empty_index_and_empty_table),
        cmocka_unit_test(allocation_failures_are_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
