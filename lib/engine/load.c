/*
 * load.c - rebuild the in-memory index of a durable database at open.
 *
 * The VECTORS table (written by the journal) is the source of truth. The
 * graph snapshot (GRAPH table, index/hnsw_io.c) is an accelerator: a
 * restored node gets its vector only when the VECTORS record of its label
 * carries the same journal sequence number as the node. Nodes without such
 * a record were deleted or replaced after the snapshot and are unlinked;
 * records without such a node were written after the snapshot and are
 * inserted anew through the one write path (engine/apply.c, not journaled).
 * So after any crash the index equals what the journal acknowledged, and
 * after a checkpoint (and a clean close) opening inserts nothing.
 */
#include <string.h>

#include "engine/engine.h"
#include "engine/internal.h"
#include "persist/format.h"
#include "util/endian.h"
#include "util/alloc.h"
#include "util/error.h"
#include "wal/journal.h"

typedef struct pending {
    uint64_t id, seq;
    void *enc;
    void *meta;
    size_t meta_len;
} pending;

typedef struct load_state {
    qz_db *db;
    int graph;
    pending *p;
    size_t n, cap;
    int rc;
} load_state;

static int on_node(uint64_t label, uint32_t slot, void *u)
{
    qz_db *db = u;
    return qz__idmap_put(&db->ids, label, slot);
}

static int on_vector(uint64_t id, uint64_t seq, const void *vec, size_t vec_bytes, const void *meta, size_t meta_len,
                     void *u)
{
    load_state *ls = u;
    qz__hnsw *h = ls->db->index;
    if (vec_bytes != h->vec_bytes)
        return ls->rc = qz__err(QZ_ECORRUPT, "vector %llu has %zu bytes, the database stores %u",
                                (unsigned long long)id, vec_bytes, h->vec_bytes);
    uint32_t slot;
    if (ls->graph && qz__idmap_get(&ls->db->ids, id, &slot) && h->seqs[slot] == seq &&
        atomic_load(&h->state[slot]) == QZ__DELETED) {
        void *payload;
        int rc = qz__engine_payload_new(meta, meta_len, &payload);
        if (rc < 0) return ls->rc = rc;
        qz__hnsw_attach(h, slot, vec, payload);
        return 0;
    }
    if (ls->n == ls->cap) {
        size_t nc = ls->cap ? ls->cap * 2 : 1024;
        pending *q = qz__realloc(ls->p, nc * sizeof *q);
        if (!q) return ls->rc = qz__err(QZ_ENOMEM, "out of memory loading vectors");
        ls->p = q;
        ls->cap = nc;
    }
    pending *p = &ls->p[ls->n];
    p->enc = qz__malloc(vec_bytes);
    p->meta = meta_len ? qz__malloc(meta_len) : NULL;
    if (!p->enc || (meta_len && !p->meta)) {
        qz__free(p->enc);
        qz__free(p->meta);
        return ls->rc = qz__err(QZ_ENOMEM, "out of memory loading vectors");
    }
    memcpy(p->enc, vec, vec_bytes);
    if (meta_len) memcpy(p->meta, meta, meta_len);
    p->id = id;
    p->seq = seq;
    p->meta_len = meta_len;
    ls->n++;
    return 0;
}

/* Insert the records the snapshot did not cover, as one parallel batch. */
static int insert_pending(qz_db *db, load_state *ls)
{
    if (!ls->n) return QZ_OK;
    qz__op *ops = qz__calloc(ls->n, sizeof *ops);
    if (!ops) return qz__err(QZ_ENOMEM, "out of memory loading %zu vectors", ls->n);
    for (size_t i = 0; i < ls->n; i++) {
        pending *p = &ls->p[i];
        ops[i] = (qz__op){.type = QZ__OP_PUT, .flags = QZ__OPF_UPSERT, .id = p->id, .vec = p->enc,
                          .meta = p->meta, .meta_len = p->meta_len, .seq = p->seq};
    }
    int ro = db->readonly;
    db->readonly = 0; /* a read-only handle still builds its own memory */
    int rc = qz__engine_apply(db, ops, ls->n, QZ__APPLY_PARALLEL | QZ__APPLY_LOADING);
    db->readonly = ro;
    qz__free(ops);
    if (rc < 0) return qz__err(rc, "loading vectors written after the last graph snapshot failed: %s", qz__err_msg());
    atomic_store(&db->reinserted, ls->n);
    return QZ_OK;
}

static void free_pending(load_state *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        qz__free(ls->p[i].enc);
        qz__free(ls->p[i].meta);
    }
    qz__free(ls->p);
}

/* META graph.seq, or 0 when absent (then nothing is concluded from it). */
static int read_graph_seq(qz_db *db, uint64_t *seq)
{
    qz_storage *st = db->storage;
    qz_storage_txn *t = NULL;
    *seq = 0;
    QZ_CHECK(st->begin(st, QZ_TXN_READONLY, &t));
    const void *v = NULL;
    size_t vl = 0;
    int rc = st->get(st, t, QZ_TABLE_META, QZ__META_GRAPH_SEQ, strlen(QZ__META_GRAPH_SEQ), &v, &vl);
    if (rc == QZ_OK && vl != 8) rc = qz__err(QZ_ECORRUPT, "META graph.seq has %zu bytes, not 8", vl);
    if (rc == QZ_OK) *seq = qz__get_u64le(v);
    st->abort(st, t);
    return rc == QZ_ENOTFOUND ? QZ_OK : rc;
}

int qz__engine_load(qz_db *db)
{
    load_state ls = {.db = db};
    int repaired = 0;
    uint64_t graph_seq = 0;
    int rc = qz__engine_graph_load(db, on_node, db, &ls.graph);
    if (rc == QZ_OK && ls.graph) rc = read_graph_seq(db, &graph_seq);
    db->graph_seq_stored = graph_seq;
    if (rc == QZ_OK) {
        rc = qz__journal_scan_vectors(db->journal, on_vector, &ls);
        if (ls.rc < 0) rc = ls.rc;
    }
    /* No write followed the snapshot (the scan applied everything the log
     * held): a live node without its record lost it to damage. */
    uint64_t applied = qz__journal_applied_seq(db->journal);
    int exact = rc == QZ_OK && ls.graph && graph_seq && applied != UINT64_MAX && applied == graph_seq;
    if (rc == QZ_OK) {
        /* Restored nodes that found no matching record were deleted or
         * replaced after the snapshot: drop them from the id map. */
        qz__hnsw *h = db->index;
        uint32_t hw = qz__hnsw_high_water(h);
        for (uint32_t sl = 0; sl < hw && rc == QZ_OK; sl++) {
            uint32_t cur;
            if (atomic_load(&h->state[sl]) == QZ__DELETED && qz__idmap_get(&db->ids, h->labels[sl], &cur) &&
                cur == sl) {
                if (exact)
                    rc = qz__err(QZ_ECORRUPT,
                                 "the vector record of id %llu (written at sequence %llu) is missing or older, "
                                 "though no write followed the graph snapshot that holds it (sequence %llu): "
                                 "the vectors table lost it",
                                 (unsigned long long)h->labels[sl], (unsigned long long)h->seqs[sl],
                                 (unsigned long long)graph_seq);
                else
                    qz__idmap_del(&db->ids, h->labels[sl]);
            }
        }
    }
    if (rc == QZ_OK) {
        qz__hnsw *h = db->index;
        /* Unlink those dead nodes BEFORE inserting anything: they hold no
         * vector, so they must not guide insertions, and one of them may be
         * the snapshot's entry point (repair picks a live one, or none). An
         * in-memory repair, so read-only handles do it too. */
        if (atomic_load(&h->n_deleted)) {
            repaired = 1;
            rc = qz__hnsw_repair(h);
        }
        if (rc == QZ_OK) rc = insert_pending(db, &ls);
    }
    free_pending(&ls);
    atomic_store(&db->snapshot_dirty, ls.n != 0 || !ls.graph || repaired);
    return rc;
}
