/*
 * hnsw_io.c - the graph snapshot: save the structure of the graph to the
 * storage's GRAPH table, and restore it, so that opening a database does not
 * rebuild the index.
 *
 * Only structure is saved: per node its slot, label, journal sequence,
 * level and links. Vectors and metadata live once, in the VECTORS table;
 * the loader attaches them to restored nodes whose (label, seq) match the
 * stored record, so a snapshot older or newer than the vectors can never
 * pair a node with the wrong vector (see lib/api/persist.c).
 *
 * Layout (all little-endian):
 *   key "h"            header: magic "QZGR", version, M, dim, metric,
 *                      vec_bytes, entry, high_water, nodes, XXH3
 *   key "n" + be32(c)  chunk c: nodes of slots [c*1024, (c+1)*1024):
 *                      u32 count, then per node u32 slot, u64 label,
 *                      u64 seq, u32 level, per layer u32 n + n u32 links;
 *                      XXH3 of everything before it last.
 * Every field is bounds-checked on load; any violation is QZ_ECORRUPT.
 */
#include <string.h>
#include <xxhash.h>

#include "index/hnsw.h"
#include "index/hnsw_io.h"
#include "util/alloc.h"
#include "util/error.h"

#define GR_MAGIC 0x52475a51u /* "QZGR" */
#define GR_VERSION 1u
#define GR_CHUNK 1024u

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static int put(buf *b, const void *x, size_t n)
{
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 65536;
        while (nc < b->n + n) nc *= 2;
        uint8_t *q = qz__realloc(b->p, nc);
        if (!q) return qz__err(QZ_ENOMEM, "out of memory writing the graph snapshot");
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
    return QZ_OK;
}

static int put32(buf *b, uint32_t v) { return put(b, &v, 4); }
static int put64(buf *b, uint64_t v) { return put(b, &v, 8); }

static void chunk_key(uint8_t k[5], uint32_t c)
{
    k[0] = 'n';
    k[1] = (uint8_t)(c >> 24);
    k[2] = (uint8_t)(c >> 16);
    k[3] = (uint8_t)(c >> 8);
    k[4] = (uint8_t)c;
}

int qz__hnsw_save(qz__hnsw *h, qz_storage *s)
{
    uint32_t hw = qz__hnsw_high_water(h);
    qz_storage_txn *t;
    QZ_CHECK(s->begin(s, 0, &t));
    int rc = s->clear(s, t, QZ_TABLE_GRAPH);
    buf b = {0};
    uint64_t nodes = 0;
    for (uint32_t c = 0; rc == QZ_OK && c * GR_CHUNK < hw; c++) {
        b.n = 0;
        uint32_t count = 0;
        rc = put32(&b, 0);
        for (uint32_t sl = c * GR_CHUNK; rc == QZ_OK && sl < hw && sl < (c + 1) * GR_CHUNK; sl++) {
            if (atomic_load(&h->state[sl]) != QZ__LIVE) continue;
            count++;
            rc = put32(&b, sl);
            if (!rc) rc = put64(&b, h->labels[sl]);
            if (!rc) rc = put64(&b, h->seqs[sl]);
            if (!rc) rc = put32(&b, h->levels[sl]);
            for (int l = 0; rc == QZ_OK && l <= h->levels[sl]; l++) {
                _Atomic uint32_t *ll = qz__links(h, sl, l);
                uint32_t n = atomic_load(&ll[0]);
                rc = put32(&b, n);
                for (uint32_t i = 1; rc == QZ_OK && i <= n; i++) rc = put32(&b, atomic_load(&ll[i]));
            }
        }
        if (rc < 0 || count == 0) continue;
        memcpy(b.p, &count, 4);
        nodes += count;
        uint64_t x = XXH3_64bits(b.p, b.n);
        rc = put64(&b, x);
        uint8_t k[5];
        chunk_key(k, c);
        if (!rc) rc = s->put(s, t, QZ_TABLE_GRAPH, k, sizeof k, b.p, b.n);
    }
    if (rc == QZ_OK) {
        b.n = 0;
        uint64_t e = atomic_load(&h->entry);
        put32(&b, GR_MAGIC);
        put32(&b, GR_VERSION);
        put32(&b, h->M);
        put32(&b, h->dim);
        put32(&b, h->metric);
        put32(&b, h->vec_bytes);
        put64(&b, e);
        put64(&b, hw);
        put64(&b, nodes);
        rc = put64(&b, XXH3_64bits(b.p, b.n));
        if (!rc) rc = s->put(s, t, QZ_TABLE_GRAPH, "h", 1, b.p, b.n);
    }
    qz__free(b.p);
    if (rc < 0) {
        s->abort(s, t);
        return rc;
    }
    return s->commit(s, t);
}

typedef struct reader {
    const uint8_t *p, *end;
    int bad;
} reader;

static uint32_t get32(reader *r)
{
    uint32_t v = 0;
    if (r->end - r->p < 4) r->bad = 1;
    else memcpy(&v, r->p, 4), r->p += 4;
    return v;
}

static uint64_t get64(reader *r)
{
    uint64_t v = 0;
    if (r->end - r->p < 8) r->bad = 1;
    else memcpy(&v, r->p, 8), r->p += 8;
    return v;
}

typedef struct load_ctx {
    qz__hnsw *h;
    uint32_t hw;
    uint64_t nodes;
    int rc;
    qz__hnsw_node_fn fn;
    void *user;
} load_ctx;

static int load_chunk(const void *key, size_t klen, const void *val, size_t vlen, void *u)
{
    load_ctx *c = u;
    qz__hnsw *h = c->h;
    if (klen != 5 || vlen < 12)
        return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: malformed chunk record (%zu bytes)", vlen);
    uint64_t sum;
    memcpy(&sum, (const uint8_t *)val + vlen - 8, 8);
    if (XXH3_64bits(val, vlen - 8) != sum)
        return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: checksum mismatch in a chunk");
    reader r = {val, (const uint8_t *)val + vlen - 8, 0};
    uint32_t count = get32(&r);
    for (uint32_t i = 0; i < count && !r.bad; i++) {
        uint32_t sl = get32(&r);
        uint64_t label = get64(&r), seq = get64(&r);
        uint32_t level = get32(&r);
        if (r.bad || sl >= c->hw || level > QZ__HNSW_MAX_LEVEL || atomic_load(&h->state[sl]) != QZ__FREE)
            return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: invalid node record for slot %u", sl);
        uint32_t *blk = NULL;
        if (level) {
            blk = qz__calloc((size_t)level * (h->M + 1), sizeof *blk);
            if (!blk) return c->rc = qz__err(QZ_ENOMEM, "out of memory loading the graph");
            atomic_fetch_add(&h->upper_bytes, (size_t)level * (h->M + 1) * sizeof *blk);
        }
        h->upper[sl] = blk;
        /* Zero the vector: a node whose record is gone never gets one, and
         * the repair that unlinks it may still compute distances to it. */
        memset(qz__node0(h, sl) + h->vec_offset, 0, h->vec_bytes);
        h->levels[sl] = (uint8_t)level;
        h->labels[sl] = label;
        h->seqs[sl] = seq;
        for (uint32_t l = 0; l <= level && !r.bad; l++) {
            uint32_t n = get32(&r);
            if (n > qz__max_links(h, (int)l)) r.bad = 1;
            _Atomic uint32_t *ll = qz__links(h, sl, (int)l);
            for (uint32_t j = 1; j <= n && !r.bad; j++) {
                uint32_t t = get32(&r);
                if (t >= c->hw || t == sl) r.bad = 1;
                atomic_store_explicit(&ll[j], t, memory_order_relaxed);
            }
            if (!r.bad) atomic_store_explicit(&ll[0], n, memory_order_relaxed);
        }
        if (r.bad) return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: invalid links for slot %u", sl);
        /* Restored nodes count as deleted until the loader attaches their vector. */
        atomic_store(&h->state[sl], QZ__DELETED);
        atomic_fetch_add(&h->n_deleted, 1);
        c->nodes++;
        int rc = c->fn(label, sl, c->user);
        if (rc < 0) return c->rc = rc;
    }
    if (r.bad || r.p != r.end) return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: chunk has trailing or short data");
    return 0;
}

int qz__hnsw_load(qz__hnsw *h, qz_storage *s, qz__hnsw_node_fn fn, void *user, int *found)
{
    *found = 0;
    qz_storage_txn *t;
    QZ_CHECK(s->begin(s, QZ_TXN_READONLY, &t));
    const void *v;
    size_t vlen;
    int rc = s->get(s, t, QZ_TABLE_GRAPH, "h", 1, &v, &vlen);
    if (rc == QZ_ENOTFOUND) {
        s->abort(s, t);
        return QZ_OK;
    }
    if (rc < 0) goto out;
    uint64_t hsum = 0;
    if (vlen == 56) memcpy(&hsum, (const uint8_t *)v + 48, 8); /* LMDB values are not 8-byte aligned */
    if (vlen != 56 || XXH3_64bits(v, 48) != hsum) {
        rc = qz__err(QZ_ECORRUPT, "graph snapshot: header is damaged");
        goto out;
    }
    reader r = {v, (const uint8_t *)v + 48, 0};
    uint32_t magic = get32(&r), ver = get32(&r), M = get32(&r), dim = get32(&r), metric = get32(&r),
             vb = get32(&r);
    uint64_t entry = get64(&r), hw = get64(&r), nodes = get64(&r);
    if (magic != GR_MAGIC) {
        rc = qz__err(QZ_ECORRUPT, "graph snapshot: bad magic");
        goto out;
    }
    if (ver > GR_VERSION) {
        rc = qz__err(QZ_EVERSION, "graph snapshot version %u is newer than this library (%u)", ver, GR_VERSION);
        goto out;
    }
    if (M != h->M || dim != h->dim || metric != h->metric || vb != h->vec_bytes || hw > QZ__MAX_SLOTS) {
        rc = qz__err(QZ_ECORRUPT, "graph snapshot parameters do not match the database");
        goto out;
    }
    if ((rc = qz__hnsw_reserve(h, hw ? hw : 1)) < 0) goto out;
    h->high_water = (uint32_t)hw;
    load_ctx c = {h, (uint32_t)hw, 0, QZ_OK, fn, user};
    rc = s->scan(s, t, QZ_TABLE_GRAPH, "n", 1, load_chunk, &c);
    if (c.rc < 0) rc = c.rc;
    if (rc < 0) goto out;
    if (c.nodes != nodes) {
        rc = qz__err(QZ_ECORRUPT, "graph snapshot holds %llu nodes, its header says %llu",
                     (unsigned long long)c.nodes, (unsigned long long)nodes);
        goto out;
    }
    /* Every link must point at a restored node; every gap is free. */
    for (uint32_t sl = 0; sl < hw && rc == QZ_OK; sl++) {
        if (atomic_load(&h->state[sl]) == QZ__FREE) {
            qz__hnsw_release_slot(h, sl);
            continue;
        }
        for (int l = 0; l <= h->levels[sl] && rc == QZ_OK; l++) {
            _Atomic uint32_t *ll = qz__links(h, sl, l);
            for (uint32_t j = 1; j <= ll[0]; j++) {
                uint32_t tg = ll[j];
                if (atomic_load(&h->state[tg]) == QZ__FREE || h->levels[tg] < l) {
                    rc = qz__err(QZ_ECORRUPT, "graph snapshot: slot %u links to missing slot %u", sl, tg);
                    break;
                }
            }
        }
    }
    if (rc == QZ_OK && entry != UINT64_MAX &&
        ((uint32_t)entry >= hw || atomic_load(&h->state[(uint32_t)entry]) == QZ__FREE ||
         h->levels[(uint32_t)entry] != (entry >> 32)))
        rc = qz__err(QZ_ECORRUPT, "graph snapshot: invalid entry point");
    if (rc == QZ_OK) {
        atomic_store(&h->entry, nodes ? entry : UINT64_MAX);
        *found = 1;
    }
out:
    s->abort(s, t);
    return rc;
}

void qz__hnsw_attach(qz__hnsw *h, uint32_t slot, const void *vec, void *payload)
{
    memcpy(qz__node0(h, slot) + h->vec_offset, vec, h->vec_bytes);
    h->payload[slot] = payload;
    if (payload) atomic_fetch_add(&h->payload_bytes, *(uint32_t *)payload + sizeof(uint32_t));
    atomic_store(&h->state[slot], QZ__LIVE);
    atomic_fetch_sub(&h->n_deleted, 1);
    atomic_fetch_add(&h->n_live, 1);
}
