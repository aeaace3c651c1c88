/*
 * hnsw_io.c - graph checkpoints: save the structure of the graph to the
 * storage's GRAPH table, incrementally, and restore it, so that opening a
 * database does not rebuild the index.
 *
 * Only structure is saved: per node its slot, label, journal sequence,
 * level, LIVE/DELETED flag and links. Vectors and metadata live once, in the
 * VECTORS table; the loader attaches them to restored LIVE nodes whose
 * (label, seq) match the stored record, so a snapshot older or newer than
 * the vectors can never pair a node with the wrong vector (see
 * lib/api/persist.c). The byte layout is defined in persist/format.h.
 *
 * Incremental saves. The table holds one record per chunk of
 * QZ__GRAPH_CHUNK slots. A save serialises every chunk (cheap next to the
 * commit: about 25 MB for 190k nodes) and compares the record's checksum
 * with the one the qz__graph_ckpt remembers from the previous save or load;
 * only records that differ are put, records of chunks that became empty are
 * deleted, and the header is put when it changed: all in one transaction,
 * so a reader always sees one whole graph. The checksum is the record's own
 * XXH3 (seeded with the chunk number), so remembering costs 9 bytes a chunk.
 *
 * The save works on a frozen picture of which slots exist: a first pass,
 * under `resize` shared, records for every slot whether it is saved (LIVE
 * or DELETED) and its level; links to slots that are not saved, or whose
 * level is below the layer, are left out. So even a save that races a write
 * (INSERTING nodes, which are treated as absent) stores a graph that loads.
 * Then each chunk is serialised under `resize` shared into one chunk-sized
 * buffer and, with the lock released, put in the save's transaction: the
 * save needs one chunk of memory (at most ~160 KB), not the whole snapshot
 * (about 100 bytes a node: 5 MB at 50k, which a 96 MB wasm heap holding 50k
 * 384-d vectors does not have), and it never waits for the storage (an
 * LMDB map resize waits for readers) while it holds the index lock. While
 * a save runs, `saving` keeps repairs from freeing slots (hnsw_delete.c),
 * so no slot of the picture changes identity between two chunks.
 */
#include <string.h>
#include <xxhash.h>

#include "index/hnsw.h"
#include "index/hnsw_io.h"
#include "persist/format.h"
#include "util/alloc.h"
#include "util/endian.h"
#include "util/error.h"

struct qz__graph_ckpt {
    qz_storage *s;       /* backend the state describes; NULL = unknown */
    size_t n;            /* chunk positions described */
    uint64_t *sum;       /* checksum of chunk c's record, when present[c] */
    uint8_t *present;    /* 1 when chunk c has a record */
    int have_header;
    unsigned char header[QZ__GRAPH_HEADER_SIZE];
};

int qz__graph_ckpt_new(qz__graph_ckpt **out)
{
    *out = qz__calloc(1, sizeof **out);
    if (!*out) return qz__err(QZ_ENOMEM, "out of memory for the graph checkpoint state");
    return QZ_OK;
}

void qz__graph_ckpt_reset(qz__graph_ckpt *c)
{
    if (!c) return;
    qz__free(c->sum);
    qz__free(c->present);
    c->sum = NULL;
    c->present = NULL;
    c->n = 0;
    c->s = NULL;
    c->have_header = 0;
}

void qz__graph_ckpt_free(qz__graph_ckpt *c)
{
    if (!c) return;
    qz__graph_ckpt_reset(c);
    qz__free(c);
}

/* Replace c's state with (sum, present) of n chunks and the header. Takes
 * ownership of the arrays. */
static void ckpt_set(qz__graph_ckpt *c, qz_storage *s, uint64_t *sum, uint8_t *present, size_t n,
                     const unsigned char *header)
{
    qz__graph_ckpt_reset(c);
    c->s = s;
    c->sum = sum;
    c->present = present;
    c->n = n;
    if (header) {
        memcpy(c->header, header, QZ__GRAPH_HEADER_SIZE);
        c->have_header = 1;
    }
}

/* ---- save ---- */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

/* Room for `more` bytes at the end; returns where they go, NULL on ENOMEM. */
static unsigned char *grow(buf *b, size_t more)
{
    if (b->n + more > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 65536;
        while (nc < b->n + more) nc *= 2;
        unsigned char *q = qz__realloc(b->p, nc);
        if (!q) return NULL;
        b->p = q;
        b->cap = nc;
    }
    unsigned char *at = b->p + b->n;
    b->n += more;
    return at;
}

/* Per-slot picture taken before serialising: 0 = not saved, else
 * PIC_SAVED | (PIC_DELETED) | level. */
#define PIC_SAVED 0x80u
#define PIC_DELETED 0x40u
#define PIC_LEVEL 0x3fu

/* Append chunk c's record to b (from b->n on). *count = nodes in it (0:
 * nothing is appended), *deleted += DELETED among them. */
static int encode_chunk(const qz__hnsw *h, const uint8_t *pic, uint32_t hw, uint32_t c, buf *b, uint32_t *count,
                        uint64_t *deleted)
{
    size_t start = b->n;
    *count = 0;
    unsigned char *at = grow(b, 4);
    if (!at) return qz__err(QZ_ENOMEM, "out of memory writing graph chunk %u", c);
    uint64_t lo = (uint64_t)c * QZ__GRAPH_CHUNK, hi = lo + QZ__GRAPH_CHUNK;
    if (hi > hw) hi = hw;
    for (uint32_t sl = (uint32_t)lo; sl < hi; sl++) {
        uint8_t m = pic[sl];
        if (!m) continue;
        unsigned level = m & PIC_LEVEL;
        /* Worst case of this node: fixed part and full lists. */
        size_t worst = QZ__GRAPH_NODE_FIXED + 4 + 4 * (size_t)h->M0 + (size_t)level * (4 + 4 * (size_t)h->M);
        at = grow(b, worst);
        if (!at) return qz__err(QZ_ENOMEM, "out of memory writing graph chunk %u", c);
        b->n -= worst;
        qz__put_u32le(at, sl);
        qz__put_u64le(at + 4, h->labels[sl]);
        qz__put_u64le(at + 12, h->seqs[sl]);
        at[20] = (unsigned char)level;
        at[21] = (m & PIC_DELETED) ? QZ__GRAPH_NODE_DELETED : 0;
        at[22] = at[23] = 0;
        unsigned char *w = at + QZ__GRAPH_NODE_FIXED;
        for (unsigned l = 0; l <= level; l++) {
            _Atomic uint32_t *ll = qz__links(h, sl, (int)l);
            uint32_t n = atomic_load_explicit(&ll[0], memory_order_acquire);
            uint32_t max = qz__max_links(h, (int)l);
            if (n > max) n = max;
            unsigned char *cnt = w;
            w += 4;
            uint32_t kept = 0;
            for (uint32_t i = 1; i <= n; i++) {
                uint32_t t = atomic_load_explicit(&ll[i], memory_order_relaxed);
                /* Links to slots the snapshot leaves out would not load. */
                if (t >= hw || t == sl || !pic[t] || (pic[t] & PIC_LEVEL) < l) continue;
                qz__put_u32le(w, t);
                w += 4;
                kept++;
            }
            qz__put_u32le(cnt, kept);
        }
        b->n += (size_t)(w - at);
        (*count)++;
        if (m & PIC_DELETED) (*deleted)++;
    }
    if (!*count) {
        b->n = start;
        return QZ_OK;
    }
    qz__put_u32le(b->p + start, *count);
    uint64_t x = XXH3_64bits_withSeed(b->p + start, b->n - start, c);
    at = grow(b, QZ__GRAPH_CHUNK_TRAILER);
    if (!at) return qz__err(QZ_ENOMEM, "out of memory writing graph chunk %u", c);
    qz__put_u64le(at, x);
    return QZ_OK;
}

/* Begin the save's transaction when it has not begun yet; a full save
 * clears the table first. Never called with `resize` held. */
static int ensure_txn(qz_storage *s, qz_storage_txn **t, int full)
{
    if (*t) return QZ_OK;
    int rc = s->begin(s, 0, t);
    if (rc < 0) {
        *t = NULL;
        return rc;
    }
    if (full && (rc = s->clear(s, *t, QZ_TABLE_GRAPH)) < 0) return rc;
    return QZ_OK;
}

int qz__hnsw_save(qz__hnsw *h, qz_storage *s, qz__graph_ckpt *ck, qz__graph_save_stats *st)
{
    qz__graph_save_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    int incremental = ck && ck->s == s;
    size_t old_n = incremental ? ck->n : 0;

    /* Slots stay what the picture says until the end: see `saving`. */
    atomic_fetch_add(&h->saving, 1);
    uint32_t hw = qz__hnsw_high_water(h);
    uint32_t nch = (uint32_t)(((uint64_t)hw + QZ__GRAPH_CHUNK - 1) / QZ__GRAPH_CHUNK);
    size_t n_new = nch > old_n ? nch : old_n;
    uint8_t *pic = qz__malloc(hw ? hw : 1);
    uint64_t *sum = qz__calloc(n_new ? n_new : 1, sizeof *sum);
    uint8_t *present = qz__calloc(n_new ? n_new : 1, 1);
    buf b = {0};
    qz_storage_txn *t = NULL;
    int rc = QZ_OK;
    if (!pic || !sum || !present) {
        rc = qz__err(QZ_ENOMEM, "out of memory saving the graph (%u slots)", hw);
        goto out;
    }
    st->full = !incremental;
    st->chunks = nch;

    /* The picture, under `resize` shared: which slots are saved, at which
     * level, and the entry point. */
    pthread_rwlock_rdlock(&h->resize);
    uint64_t entry = atomic_load(&h->entry);
    uint64_t best_live = UINT64_MAX, best_any = UINT64_MAX;
    for (uint32_t sl = 0; sl < hw; sl++) {
        unsigned state = atomic_load_explicit(&h->state[sl], memory_order_acquire);
        unsigned level = h->levels[sl];
        if ((state != QZ__LIVE && state != QZ__DELETED) || level > QZ__HNSW_MAX_LEVEL ||
            (level && !h->upper[sl])) {
            pic[sl] = 0;
            continue;
        }
        pic[sl] = (uint8_t)(PIC_SAVED | (state == QZ__DELETED ? PIC_DELETED : 0) | level);
        uint64_t e = ((uint64_t)level << 32) | sl;
        if (best_any == UINT64_MAX || level > (best_any >> 32)) best_any = e;
        if (state == QZ__LIVE && (best_live == UINT64_MAX || level > (best_live >> 32))) best_live = e;
    }
    pthread_rwlock_unlock(&h->resize);
    if (entry != UINT64_MAX) {
        uint32_t es = (uint32_t)entry;
        if (es >= hw || !pic[es] || (pic[es] & PIC_LEVEL) != (entry >> 32)) entry = UINT64_MAX;
    }
    if (entry == UINT64_MAX) entry = best_live != UINT64_MAX ? best_live : best_any;

    /* Chunk by chunk: serialise one chunk under `resize` shared into b (one
     * chunk's worth of memory, whatever the size of the graph), then, with
     * the lock released, put it when it differs from what is stored. A
     * repair may run between two chunks and rewrite lists; every list saved
     * keeps only links to slots of the picture, and those slots are neither
     * freed nor reused meanwhile, so the chunks together still load.
     * Chunks at or past the high-water mark have no nodes (only a stale
     * state can describe them: the mark never goes down); like a chunk that
     * became empty, their stored record is deleted. */
    uint32_t chunks = 0;
    for (size_t c = 0; c < n_new && rc == QZ_OK; c++) {
        uint32_t count = 0;
        b.n = 0;
        if (c < nch) {
            pthread_rwlock_rdlock(&h->resize);
            rc = encode_chunk(h, pic, hw, (uint32_t)c, &b, &count, &st->deleted_nodes);
            pthread_rwlock_unlock(&h->resize);
            if (rc < 0) break;
        }
        int was = incremental && c < old_n && ck->present[c];
        unsigned char k[QZ__GRAPH_CHUNK_KEY_SIZE];
        qz__graph_chunk_key(k, (uint32_t)c);
        if (!count) {
            if (!was) continue;
            if ((rc = ensure_txn(s, &t, !incremental)) < 0) break;
            rc = s->del(s, t, QZ_TABLE_GRAPH, k, sizeof k);
            if (rc == QZ_ENOTFOUND) rc = QZ_OK;
            st->chunks_deleted++;
            continue;
        }
        st->nodes += count;
        chunks++;
        uint64_t x = qz__get_u64le(b.p + b.n - QZ__GRAPH_CHUNK_TRAILER);
        sum[c] = x;
        present[c] = 1;
        if (was && ck->sum[c] == x) {
            st->chunks_skipped++; /* stored identically */
            continue;
        }
        if ((rc = ensure_txn(s, &t, !incremental)) < 0) break;
        rc = s->put(s, t, QZ_TABLE_GRAPH, k, sizeof k, b.p, b.n);
        st->chunks_written++;
        st->bytes_written += b.n;
    }
    if (rc < 0) goto out;

    qz__graph_header gh = {QZ__GRAPH_MAGIC, QZ__GRAPH_VERSION, h->M, h->dim, h->metric, h->vec_bytes,
                           st->nodes ? entry : UINT64_MAX, hw, st->nodes, QZ__GRAPH_CHUNK, chunks};
    unsigned char hb[QZ__GRAPH_HEADER_SIZE];
    qz__graph_header_encode(hb, &gh);
    int put_header = !incremental || !ck->have_header || memcmp(hb, ck->header, sizeof hb) != 0;

    /* One transaction for the whole save, or none when nothing changed. */
    if (put_header) {
        if ((rc = ensure_txn(s, &t, !incremental)) < 0) goto out;
        if ((rc = s->put(s, t, QZ_TABLE_GRAPH, QZ__GRAPH_KEY_HEADER, 1, hb, sizeof hb)) < 0) goto out;
        st->header_written = 1;
        st->bytes_written += sizeof hb;
    }
    if (t) {
        rc = s->commit(s, t);
        t = NULL;
        if (rc < 0) goto out;
    }
    if (ck) {
        ckpt_set(ck, s, sum, present, n_new, hb);
        sum = NULL;
        present = NULL;
    }
out:
    if (t) s->abort(s, t);
    atomic_fetch_sub(&h->saving, 1);
    if (rc < 0) {
        qz__graph_ckpt_reset(ck); /* what is stored is unknown now */
        st->chunks_written = st->chunks_deleted = st->header_written = 0;
        st->bytes_written = 0;
    }
    qz__free(b.p);
    qz__free(pic);
    qz__free(sum);
    qz__free(present);
    return rc;
}

/* ---- load ---- */

typedef struct reader {
    const unsigned char *p, *end;
    int bad;
} reader;

static uint32_t get32(reader *r)
{
    if (r->end - r->p < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = qz__get_u32le(r->p);
    r->p += 4;
    return v;
}

static uint64_t get64(reader *r)
{
    if (r->end - r->p < 8) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = qz__get_u64le(r->p);
    r->p += 8;
    return v;
}

typedef struct load_ctx {
    qz__hnsw *h;
    uint32_t version;
    uint32_t hw, nch;
    uint64_t nodes;
    uint32_t records;
    uint64_t *sum;   /* per chunk, for the ckpt state (NULL when not kept) */
    uint8_t *present;
    int rc;
    qz__hnsw_node_fn fn;
    void *user;
} load_ctx;

static int load_chunk(const void *key, size_t klen, const void *val, size_t vlen, void *u)
{
    load_ctx *c = u;
    qz__hnsw *h = c->h;
    const unsigned char *k = key, *v = val;
    if (klen != QZ__GRAPH_CHUNK_KEY_SIZE)
        return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: chunk record with a %zu-byte key", klen);
    uint32_t ch = qz__get_u32be(k + 1);
    if (ch >= c->nch)
        return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: chunk %u lies beyond the high-water mark %u", ch, c->hw);
    if (vlen < 4 + QZ__GRAPH_CHUNK_TRAILER)
        return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: chunk %u is truncated (%zu bytes)", ch, vlen);
    size_t body = vlen - QZ__GRAPH_CHUNK_TRAILER;
    uint64_t sum = qz__get_u64le(v + body);
    uint64_t want = c->version == 1 ? XXH3_64bits(v, body) : XXH3_64bits_withSeed(v, body, ch);
    if (want != sum) return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: checksum mismatch in chunk %u", ch);
    reader r = {v, v + body, 0};
    uint32_t count = get32(&r);
    if (count == 0 || count > QZ__GRAPH_CHUNK)
        return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: chunk %u claims %u nodes", ch, count);
    uint64_t lo = (uint64_t)ch * QZ__GRAPH_CHUNK, hi = lo + QZ__GRAPH_CHUNK;
    uint64_t prev = UINT64_MAX;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t sl = get32(&r);
        uint64_t label = get64(&r), seq = get64(&r);
        uint32_t level, flags = 0;
        if (c->version == 1) {
            level = get32(&r);
        } else {
            uint32_t w = get32(&r); /* u8 level, u8 flags, u16 reserved, as one LE u32 */
            level = w & 0xffu;
            flags = (w >> 8) & 0xffu;
            if ((flags & ~QZ__GRAPH_NODE_DELETED) || (w >> 16)) r.bad = 1;
        }
        if (r.bad || sl < lo || sl >= hi || sl >= c->hw || (prev != UINT64_MAX && sl <= prev) ||
            level > QZ__HNSW_MAX_LEVEL || atomic_load(&h->state[sl]) != QZ__FREE)
            return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: chunk %u: invalid node record %u (slot %u)", ch,
                                   i, sl);
        prev = sl;
        uint32_t *blk = NULL;
        if (level) {
            blk = qz__calloc((size_t)level * (h->M + 1), sizeof *blk);
            if (!blk) return c->rc = qz__err(QZ_ENOMEM, "out of memory loading graph chunk %u", ch);
            atomic_fetch_add(&h->upper_bytes, (size_t)level * (h->M + 1) * sizeof *blk);
        }
        h->upper[sl] = blk;
        /* Zero the vector: a node whose record is gone never gets one, and
         * the repair that unlinks it may still compute distances to it. */
        memset(qz__node_code(h, sl), 0, h->code_bytes);
        if (h->quantized && !h->orig_external) memset(h->orig + (size_t)sl * h->vec_bytes, 0, h->vec_bytes);
        h->levels[sl] = (uint8_t)level;
        h->labels[sl] = label;
        h->seqs[sl] = seq;
        /* Restored nodes count as deleted until the loader attaches their
         * vector; set it now so that a failure below leaves a slot the
         * index's destroy and repair know about. */
        atomic_store(&h->state[sl], QZ__DELETED);
        atomic_fetch_add(&h->n_deleted, 1);
        for (uint32_t l = 0; l <= level && !r.bad; l++) {
            uint32_t n = get32(&r);
            if (n > qz__max_links(h, (int)l)) r.bad = 1;
            _Atomic uint32_t *ll = qz__links(h, sl, (int)l);
            for (uint32_t j = 1; j <= n && !r.bad; j++) {
                uint32_t t = get32(&r);
                if (t >= c->hw || t == sl) r.bad = 1;
                else atomic_store_explicit(&ll[j], t, memory_order_relaxed);
            }
            if (!r.bad) atomic_store_explicit(&ll[0], n, memory_order_relaxed);
        }
        if (r.bad) return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: chunk %u: invalid links of slot %u", ch, sl);
        c->nodes++;
        if (!(flags & QZ__GRAPH_NODE_DELETED)) {
            int rc = c->fn(label, sl, c->user);
            if (rc < 0) return c->rc = rc;
        }
    }
    if (r.p != r.end)
        return c->rc = qz__err(QZ_ECORRUPT, "graph snapshot: chunk %u has %zu bytes of trailing data", ch,
                               (size_t)(r.end - r.p));
    c->records++;
    if (c->sum) {
        c->sum[ch] = sum;
        c->present[ch] = 1;
    }
    return 0;
}

int qz__hnsw_load(qz__hnsw *h, qz_storage *s, qz__graph_ckpt *ck, qz__hnsw_node_fn fn, void *user, int *found)
{
    *found = 0;
    qz__graph_ckpt_reset(ck);
    qz_storage_txn *t;
    QZ_CHECK(s->begin(s, QZ_TXN_READONLY, &t));
    const void *v;
    size_t vlen;
    load_ctx c = {0};
    int rc = s->get(s, t, QZ_TABLE_GRAPH, QZ__GRAPH_KEY_HEADER, 1, &v, &vlen);
    if (rc == QZ_ENOTFOUND) {
        s->abort(s, t);
        return QZ_OK;
    }
    if (rc < 0) goto out;
    const unsigned char *hv = v;
    if (vlen >= 8 && qz__get_u32le(hv) == QZ__GRAPH_MAGIC && qz__get_u32le(hv + 4) > QZ__GRAPH_VERSION) {
        rc = qz__err(QZ_EVERSION, "graph snapshot version %u is newer than this library (%u)", qz__get_u32le(hv + 4),
                     QZ__GRAPH_VERSION);
        goto out;
    }
    qz__graph_header gh;
    if (qz__graph_header_decode(hv, vlen, &gh) < 0) {
        rc = qz__err(QZ_ECORRUPT, "graph snapshot: header is damaged (%zu bytes)", vlen);
        goto out;
    }
    if (gh.magic != QZ__GRAPH_MAGIC || gh.version == 0) {
        rc = qz__err(QZ_ECORRUPT, "graph snapshot: bad magic or version");
        goto out;
    }
    if (gh.version >= 2 && gh.chunk_slots != QZ__GRAPH_CHUNK) {
        rc = qz__err(QZ_ECORRUPT, "graph snapshot: chunks of %u slots, this library uses %u", gh.chunk_slots,
                     QZ__GRAPH_CHUNK);
        goto out;
    }
    if (gh.M != h->M || gh.dim != h->dim || gh.metric != h->metric || gh.vec_bytes != h->vec_bytes ||
        gh.high_water > QZ__MAX_SLOTS || gh.nodes > gh.high_water) {
        rc = qz__err(QZ_ECORRUPT, "graph snapshot parameters do not match the database");
        goto out;
    }
    uint32_t hw = (uint32_t)gh.high_water;
    uint32_t nch = (uint32_t)(((uint64_t)hw + QZ__GRAPH_CHUNK - 1) / QZ__GRAPH_CHUNK);
    if ((rc = qz__hnsw_reserve(h, hw ? hw : 1)) < 0) goto out;
    h->high_water = hw;
    c = (load_ctx){h, gh.version, hw, nch, 0, 0, NULL, NULL, QZ_OK, fn, user};
    if (ck && gh.version == QZ__GRAPH_VERSION) {
        c.sum = qz__calloc(nch ? nch : 1, sizeof *c.sum);
        c.present = qz__calloc(nch ? nch : 1, 1);
        if (!c.sum || !c.present) {
            rc = qz__err(QZ_ENOMEM, "out of memory for the graph checkpoint state");
            goto out;
        }
    }
    unsigned char prefix = QZ__GRAPH_KEY_CHUNK;
    rc = s->scan(s, t, QZ_TABLE_GRAPH, &prefix, 1, load_chunk, &c);
    if (c.rc < 0) rc = c.rc;
    if (rc < 0) goto out;
    if (c.nodes != gh.nodes) {
        rc = qz__err(QZ_ECORRUPT, "graph snapshot holds %llu nodes, its header says %llu",
                     (unsigned long long)c.nodes, (unsigned long long)gh.nodes);
        goto out;
    }
    if (gh.version >= 2 && c.records != gh.chunks) {
        rc = qz__err(QZ_ECORRUPT, "graph snapshot holds %u chunk records, its header says %u", c.records, gh.chunks);
        goto out;
    }
    /* Every link must point at a restored node (LIVE or DELETED when saved)
     * on a layer it has; every gap is free. */
    for (uint32_t sl = 0; sl < hw && rc == QZ_OK; sl++) {
        if (atomic_load(&h->state[sl]) == QZ__FREE) {
            qz__hnsw_release_slot(h, sl);
            continue;
        }
        for (int l = 0; l <= h->levels[sl] && rc == QZ_OK; l++) {
            _Atomic uint32_t *ll = qz__links(h, sl, l);
            uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
            for (uint32_t j = 1; j <= n; j++) {
                uint32_t tg = atomic_load_explicit(&ll[j], memory_order_relaxed);
                if (atomic_load(&h->state[tg]) == QZ__FREE || h->levels[tg] < l) {
                    rc = qz__err(QZ_ECORRUPT, "graph snapshot: chunk %u: slot %u links to missing slot %u on layer %d",
                                 sl / QZ__GRAPH_CHUNK, sl, tg, l);
                    break;
                }
            }
        }
    }
    if (rc == QZ_OK && gh.nodes && gh.entry == UINT64_MAX)
        rc = qz__err(QZ_ECORRUPT, "graph snapshot: %llu nodes but no entry point", (unsigned long long)gh.nodes);
    if (rc == QZ_OK && gh.entry != UINT64_MAX &&
        ((uint32_t)gh.entry >= hw || atomic_load(&h->state[(uint32_t)gh.entry]) == QZ__FREE ||
         h->levels[(uint32_t)gh.entry] != (gh.entry >> 32)))
        rc = qz__err(QZ_ECORRUPT, "graph snapshot: invalid entry point");
    if (rc == QZ_OK) {
        atomic_store(&h->entry, gh.nodes ? gh.entry : UINT64_MAX);
        *found = 1;
        if (c.sum) {
            ckpt_set(ck, s, c.sum, c.present, nch, hv);
            c.sum = NULL;
            c.present = NULL;
        }
    }
out:
    qz__free(c.sum);
    qz__free(c.present);
    s->abort(s, t); /* after the last use of hv */
    return rc;
}

void qz__hnsw_attach(qz__hnsw *h, uint32_t slot, const void *vec, void *payload)
{
    qz__hnsw_quantize(h, vec, qz__node_code(h, slot));
    /* loading reads the storage's records: with orig_external nothing to pin */
    if (h->quantized && !h->orig_external) memcpy(h->orig + (size_t)slot * h->vec_bytes, vec, h->vec_bytes);
    h->payload[slot] = payload;
    if (payload) atomic_fetch_add(&h->payload_bytes, *(uint32_t *)payload + sizeof(uint32_t));
    atomic_store(&h->state[slot], QZ__LIVE);
    atomic_fetch_sub(&h->n_deleted, 1);
    atomic_fetch_add(&h->n_live, 1);
}
