/*
 * hnsw.h - the HNSW graph (internal).
 *
 * Owns: node slots (vector, links, label, metadata blob, journal sequence),
 * the entry point, slot allocation and reuse, growth, deletion repair.
 * Knows nothing of the public API or of persistence; the caller (lib/api)
 * maps user ids to slots and orders writes to the same id.
 *
 * Design notes (what the paper leaves open):
 *
 * Memory layout. Layer 0 is one array of fixed-size records, one per slot:
 *   [u32 count][u32 links[M0]][stored vector]   or
 *   [stored vector][u32 count][u32 links[M0]]
 * so that one record holds everything a search touches when it expands a
 * node, and the next neighbour's record can be prefetched. Which of the two
 * (and whether padded to whole cache lines) is chosen per index for the
 * fewest cache lines per vector read (hnsw_graph.c). The stored
 * vector is the node's code: the f32 record form itself, or for f16, int8
 * and binary the compact code (vector/codec.h), with the f32 originals in a
 * separate array read only by construction, repair and re-ranking; or, with
 * orig_external (f16, int8), not in the index at all: construction and
 * repair then measure on the codes, and re-ranking reads the originals
 * through the caller's fetch (hnsw_orig.c). Upper layers are
 * rare (1/M of nodes) and live in a per-slot block of (1 + M) u32 per level.
 * Labels, levels, states, locks, metadata and sequence numbers are separate
 * arrays: search reads labels only for results.
 *
 * Concurrency. Three mechanisms, from coarse to fine:
 *  - `resize` rwlock: every operation that touches slots holds it shared;
 *    growing the arrays and physically unlinking deleted nodes hold it
 *    exclusive. Arrays therefore never move under a reader, and a slot is
 *    only reused after a point where no reader can still hold its number
 *    (the exclusive section is the grace period).
 *  - one spinlock byte per node guards writes to its link lists. A writer
 *    holds at most one node lock at a time, so there is no lock order.
 *  - readers take no node lock: link counts and links are read with acquire
 *    loads and written with release stores. A reader may see a list that is
 *    being rewritten, mixing old and new entries; every entry it can see is a
 *    slot that is allocated and whose vector was written before the link was
 *    published, which is all a search needs. On x86 these atomics are plain
 *    moves, so the hot loop pays nothing for them.
 *
 * States. A slot is FREE, INSERTING (reachable and traversable, not yet a
 * result), LIVE, or DELETED (still traversable so the graph stays navigable,
 * never chosen as a new neighbour, a result only for searches that began
 * before the deletion, see below). Deleted nodes are
 * unlinked in batches by qz__hnsw_repair(): every live node that links to a
 * deleted one replaces it with candidates from the deleted node's own lists
 * (two hops; then, once no live list links to a deleted node, a fresh search
 * for the lists left with too few) chosen by the same heuristic as
 * insertion; every live node unreachable from the entry point on layer 0 is
 * linked in again; then the deleted slots become FREE and reusable. The
 * heuristic never lets a deleted node prune a live candidate (an upsert to
 * the same place would otherwise lose all its in-links, hnsw_insert.c).
 *
 * Deletion epochs: each search sees deletions as of its start.
 * qz__hnsw_mark_deleted() takes a new epoch e = ++del_clock (a seq_cst
 * fetch_add), writes it to del_stamp[slot], then publishes DELETED with a
 * release store. qz__hnsw_search() loads del_clock (acquire) into s0 before
 * it reads anything else of the graph, and accepts a DELETED node whose
 * stamp is > s0: that deletion came after the search began. Because every
 * write of del_clock is a read-modify-write, all of them form one release
 * sequence, and the modification order of del_clock orders every deletion
 * against every search start:
 *  - e <= s0: the search's load read the deletion's fetch_add or a later
 *    one, so it synchronises with the deleter. A search that starts after
 *    qz_db_delete() returned is always in this case (coherence), so it never
 *    returns the node. And whatever the deleter did before the deletion is
 *    visible to the search: for an upsert (lib/api inserts the new node,
 *    LIVE and fully linked, THEN marks the old one), the new node.
 *  - e > s0: the node was live when the search began and stays a result for
 *    it. So a search that meets the new node of an upsert too early (still
 *    INSERTING, or through a neighbour whose back link was not yet written)
 *    still returns the id through the old node, which stays in the graph:
 *    repair needs `resize` exclusive, so no search spans a slot's unlinking
 *    or reuse. lib/api/read.c drops the duplicate when it meets both.
 * A reader that sees DELETED (acquire) sees the stamp written before it.
 * Slots that become DELETED without mark_deleted (a failed insertion,
 * restored snapshot nodes) have stamp 0 and are never results; repair and
 * insert reset the stamp to 0. Callers serialise marks of one slot
 * (lib/api holds the id's shard write lock).
 *
 * Distances. Cosine vectors are normalised when stored, so cosine and inner
 * product both use 1 - dot. Hamming vectors are stored as packed bits.
 * qz__dist() never returns NaN or an infinity: when the float kernel
 * overflows (components near FLT_MAX under L2 or inner product; cosine
 * vectors are unit length and cannot), the distance is recomputed in double
 * and saturated to [-FLT_MAX, FLT_MAX]. So an overflowed L2 distance is
 * FLT_MAX (farther than every representable one), an overflowed 1 - dot is
 * +-FLT_MAX, ordering is kept wherever float can express it, and no
 * search ever compares against NaN. Saturated distances tie, which leaves
 * the walk no gradient: a query whose k-th result is at FLT_MAX finishes
 * with the exact pass (hnsw_search.c), so it still gets the k nearest.
 */
#ifndef QZ_INDEX_HNSW_H
#define QZ_INDEX_HNSW_H

#include <float.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "distance/distance.h"
#include "vector/metric.h"
#include "util/sync.h"

#if defined(__GNUC__)
#define QZ__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define QZ__UNLIKELY(x) (x)
#endif

#define QZ__HNSW_MAX_LEVEL 31
#define QZ__SLOT_NONE UINT32_MAX
#define QZ__MAX_SLOTS (UINT32_MAX - 1u)

enum { QZ__FREE = 0, QZ__INSERTING = 1, QZ__LIVE = 2, QZ__DELETED = 3 };

typedef enum qz__distkind { QZ__DIST_L2 = 0, QZ__DIST_ONE_MINUS_DOT = 1, QZ__DIST_HAMMING = 2 } qz__distkind;

/* A vector space the index measures in: a kernel, how its result becomes
 * a distance, and where each slot's vector lives. Every index has two:
 *  - `cs`, the codes: the graph is traversed by queries in it;
 *  - `xs`, the exact record form (f32, normalised under cosine; bits under
 *    Hamming): construction, repair, re-ranking and the exact pass use it.
 * For f32 (and Hamming) both are the layer-0 record's vector; for f16,
 * int8 and binary the codes sit in an array of their own (`vecs`, the
 * split layout of hnsw_graph.c) and the originals in `orig`
 * (vector/codec.h). */
typedef struct qz__space {
    qz__dist_fn kernel;
    qz__distkind kind;
    uint32_t elems;  /* n given to the kernel */
    uint32_t bytes;  /* bytes of one vector of this space */
    int in_orig;     /* 1: vectors in h->orig; 0: qz__node_vec (the layer-0 record, or vecs) */
    int wide;        /* 1: f32 kernel, may overflow: qz__dist_wide on +-inf/NaN */
} qz__space;

typedef struct qz__hnsw_config {
    uint32_t dim;        /* user dimension */
    uint32_t metric;     /* qz_metric, resolved */
    uint32_t M;          /* upper-layer degree; layer 0 has 2*M */
    uint32_t ef_construction;
    uint64_t capacity;   /* initial slots */
    uint64_t seed;
    uint32_t dtype;      /* enum qz__dtype; 0 = f32 (bits under Hamming) */
    int orig_external;   /* f16/int8: the originals are not kept in memory (hnsw_orig.c) */
} qz__hnsw_config;

/* Reads originals an index with orig_external does not hold: for i < n, the
 * record form of the vector stored under labels[i] into dst[i] (vec_bytes),
 * ok[i] = 1 when it is the write of sequence seqs[i], 2 when the id was
 * written again since (dst holds the later vector), 0 when the storage
 * holds no vector under the id (deleted since; nothing copied). Returns
 * QZ_OK, or a failure of the storage (QZ_ECORRUPT for a damaged record,
 * QZ_EIO ...) with its message. Called from searching and reading threads,
 * concurrently, with `resize` held shared; it must not call into the index. */
typedef int (*qz__orig_fetch_fn)(void *user, size_t n, const uint64_t *labels, const uint64_t *seqs, void *const *dst,
                                 unsigned char *ok);

typedef struct qz__pin_ent {
    uint32_t slot;
    uint64_t seq;
} qz__pin_ent;

/* One search context: a visited set and heap space, pooled per index. */
typedef struct qz__search_ctx qz__search_ctx;

typedef struct qz__hnsw {
    /* parameters, fixed at creation */
    uint32_t dim, metric, M, M0, ef_construction;
    uint32_t vec_bytes;  /* bytes of one vector in record form (journaled, returned by get) */
    uint32_t dtype;      /* enum qz__dtype of the codes (QZ__DTYPE_F32 also under Hamming) */
    uint32_t code_bytes; /* bytes of one code */
    qz__space cs, xs;    /* codes, exact record form (see qz__space) */
    qz__space qs;        /* what a query walks in: cs, or for f16 the asymmetric kernel (f32 query x code) */
    int q_raw;           /* 1: qs takes the query in record form, not quantized (f16) */
    int q_prep;          /* 1: qs takes the query's code prepared (qz__sq8_prepare: int8 on VNNI) */
    const qz__space *bs; /* construction and repair measure in it: &xs, or &cs (orig_external) */
    int quantized;       /* codes differ from records: originals in `orig` (or outside), results re-ranked */
    int orig_external;   /* quantized, originals outside the index: `pin` until stored, else `fetch` */
    atomic_uint oversample; /* default re-rank factor: k * oversample candidates */
    qz__encode_fn sq8_encode; /* int8: the table's encoder (codes and queries) */
    const char *kernel_name;
    double level_mult;
    uint64_t seed;
    size_t stride0;      /* bytes of one layer-0 record */
    size_t vec_offset;   /* offset of the vector inside a layer-0 record */
    size_t links_offset; /* offset of the layer-0 link list (count, then links) */
    uint8_t *vecs;       /* split layout (quantized): the codes, vec_stride apart, grown with level0
                            under `resize` exclusive; NULL when the code is in the layer-0 record */
    size_t vec_stride;   /* 0 unless split */

    pthread_rwlock_t resize;

    /* per-slot arrays, `capacity` long; reallocated only under `resize` exclusive */
    size_t capacity;
    uint8_t *level0;
    uint8_t *orig;       /* quantized, not orig_external: vec_bytes per slot, the originals */
    _Atomic(void *) *pin; /* orig_external: per slot, a copy of its original not yet in storage, or NULL
                             (read and cleared under the slot's spinlock, hnsw_orig.c) */
    uint32_t **upper;    /* NULL for level-0 nodes */
    uint8_t *levels;
    atomic_uchar *state;
    qz__spinlock *locks;
    uint64_t *labels;
    void **payload;      /* metadata blob: u32 length then bytes; NULL if none */
    uint64_t *seqs;      /* journal sequence of the write that made the slot */
    _Atomic uint64_t *del_stamp; /* deletion epoch of a DELETED slot; 0 = never visible */

    /* slot allocation */
    pthread_mutex_t alloc_lock;
    uint32_t high_water; /* slots [0, high_water) have been used */
    uint32_t *free_slots;
    size_t n_free, cap_free;

    /* entry point: (level << 32) | slot, or UINT64_MAX when empty */
    _Atomic uint64_t entry;
    pthread_mutex_t entry_lock;

    atomic_size_t n_live, n_deleted, n_inserting;
    _Atomic uint64_t del_clock; /* deletion epochs handed out so far */
    atomic_size_t upper_bytes, payload_bytes;
    /* graph saves in progress (hnsw_io.c): while > 0, repair unlinks deleted
     * nodes but leaves their slots DELETED, so a save that reads the graph
     * chunk by chunk never meets a slot freed or reused under it */
    atomic_uint saving;
    atomic_uint_fast64_t level_counter;
    atomic_uint ef_search;

    /* orig_external (hnsw_orig.c): where the originals come from, and the
     * pinned ones waiting for the storage to hold them */
    qz__orig_fetch_fn fetch;
    void *fetch_user;
    pthread_mutex_t pin_mu;   /* guards pinq; never held while taking `resize` */
    qz__pin_ent *pinq;        /* pinned slots, about in seq order */
    size_t n_pinq, cap_pinq, pin_reserved; /* reserved: room promised to prepared pins */
    _Atomic uint64_t pin_above; /* writes with a seq <= this are in storage already: not pinned */
    atomic_size_t pin_bytes;

    /* search context pool */
    pthread_mutex_t pool_lock;
    qz__search_ctx **pool;
    size_t n_pool, cap_pool;
} qz__hnsw;

/* -------- hnsw_graph.c: lifetime, slots, growth, accessors -------- */
int qz__hnsw_create(const qz__hnsw_config *cfg, const qz__kernels *k, qz__hnsw **out);
void qz__hnsw_destroy(qz__hnsw *h);
/* Make room for `slots` slots in total (takes `resize` exclusive). */
int qz__hnsw_reserve(qz__hnsw *h, size_t slots);
/* Take a free slot, growing when needed. Caller must NOT hold `resize`. */
int qz__hnsw_alloc_slot(qz__hnsw *h, uint32_t *slot);
/* Give back a slot that was allocated but never inserted. */
void qz__hnsw_release_slot(qz__hnsw *h, uint32_t slot);
/* Bytes held by the index (arrays, upper blocks, payloads). */
size_t qz__hnsw_memory(const qz__hnsw *h);
/* Slots [0, result) have ever been allocated (reads it under alloc_lock). */
uint32_t qz__hnsw_high_water(qz__hnsw *h);
int qz__hnsw_max_level(const qz__hnsw *h);
/* Convert a user vector to its record form (normalise / binarise). */
void qz__hnsw_encode(const qz__hnsw *h, const float *in, void *out);
/* 1 when the record form of a vector is the caller's floats unchanged (L2,
 * inner product): a query can then be searched without a copy. */
static inline int qz__hnsw_record_is_input(const qz__hnsw *h)
{
    return h->metric == QZ__METRIC_L2 || h->metric == QZ__METRIC_IP;
}
/* Convert a record-form vector back to floats. */
void qz__hnsw_decode(const qz__hnsw *h, const void *in, float *out);
/* Code of a record-form vector (code_bytes); for f32 a copy. */
void qz__hnsw_quantize(const qz__hnsw *h, const void *rec, void *code);
/* The default oversampling factor of a dtype (f32 1, f16 2, int8 3, binary 16). */
unsigned qz__dtype_default_oversample(unsigned dtype);
/* Random level for the next insertion. */
int qz__hnsw_random_level(qz__hnsw *h);

static inline uint8_t *qz__node0(const qz__hnsw *h, uint32_t slot)
{
    return h->level0 + (size_t)slot * h->stride0;
}
/* The code of `slot` (the record form itself for f32). */
static inline uint8_t *qz__node_code(const qz__hnsw *h, uint32_t slot)
{
    return h->vecs ? h->vecs + (size_t)slot * h->vec_stride : qz__node0(h, slot) + h->vec_offset;
}
static inline const void *qz__node_vec(const qz__hnsw *h, uint32_t slot) { return qz__node_code(h, slot); }
/* The vector of `slot` in space sp. */
static inline const void *qz__space_vec(const qz__hnsw *h, const qz__space *sp, uint32_t slot)
{
    return sp->in_orig ? (const void *)(h->orig + (size_t)slot * h->vec_bytes) : qz__node_vec(h, slot);
}
/* The record form (original) of `slot`, where the index holds it: not with
 * orig_external (use qz__hnsw_originals()). */
static inline const void *qz__node_rec(const qz__hnsw *h, uint32_t slot) { return qz__space_vec(h, &h->xs, slot); }
/* -------- hnsw_orig.c: the originals of a quantized index -------- */
/* Where an index with orig_external reads the originals it does not hold. */
void qz__hnsw_set_fetch(qz__hnsw *h, qz__orig_fetch_fn fn, void *user);
/* The originals (record form) of slots[0..n) into dst[i], ok[i] as the
 * fetch's: 1 the slot's own, 2 a later write of its id (the slot is stale:
 * an upsert replaced it while the caller ran), 0 none (deleted since). For an index that keeps them in memory, a copy. Caller
 * holds `resize` shared. QZ_OK or the fetch's failure. */
int qz__hnsw_originals(const qz__hnsw *h, size_t n, const uint32_t *slots, void *const *dst, unsigned char *ok);
/* orig_external: before inserting a write of sequence seq, make the pin
 * for it (a copy of vec, and room in the queue) unless the storage holds
 * that write already. *pin is NULL when none is needed. QZ_ENOMEM. */
int qz__hnsw_pin_prepare(qz__hnsw *h, const void *vec, uint64_t seq, void **pin);
/* Give back a prepared pin that was never attached (a failed insertion). */
void qz__hnsw_pin_cancel(qz__hnsw *h, void *pin);
/* Attach a prepared pin to `slot` (caller holds `resize` shared, the slot
 * is not yet traversable). */
void qz__hnsw_pin_attach(qz__hnsw *h, uint32_t slot, uint64_t seq, void *pin);
/* Every write up to sequence `applied` is in storage now: drop the pins
 * they needed. Takes pin_mu, then `resize` shared (never both); cheap when
 * nothing is pinned. */
void qz__hnsw_unpin(qz__hnsw *h, uint64_t applied);
/* Drop the pin of a slot being freed (caller holds `resize` exclusive). */
void qz__hnsw_pin_drop(qz__hnsw *h, uint32_t slot);

/* The vector of `slot` in the construction space bs. */
static inline const void *qz__node_bvec(const qz__hnsw *h, uint32_t slot) { return qz__space_vec(h, h->bs, slot); }
/* Link list of `slot` at `level`: element 0 is the count, then the links. */
static inline _Atomic uint32_t *qz__links(const qz__hnsw *h, uint32_t slot, int level)
{
    if (level == 0) return (_Atomic uint32_t *)(void *)(qz__node0(h, slot) + h->links_offset);
    return (_Atomic uint32_t *)(void *)(h->upper[slot] + (size_t)(level - 1) * (h->M + 1));
}
static inline uint32_t qz__max_links(const qz__hnsw *h, int level) { return level == 0 ? h->M0 : h->M; }

/* The distance recomputed in double and saturated to +-FLT_MAX: the slow
 * path of qz__dist() when the float kernel overflowed (hnsw_graph.c). */
float qz__dist_wide(const qz__space *sp, const void *a, const void *b);

static inline float qz__sdist(const qz__space *sp, const void *a, const void *b)
{
    float r = sp->kernel(a, b, sp->elems);
    if (sp->kind == QZ__DIST_ONE_MINUS_DOT) r = 1.0f - r;
    /* false for NaN and +-inf only: one well-predicted compare */
    if (QZ__UNLIKELY(!(__builtin_fabsf(r) <= FLT_MAX))) r = qz__dist_wide(sp, a, b);
    return r;
}
/* Distance between codes (the traversal space). */
static inline float qz__dist(const qz__hnsw *h, const void *a, const void *b) { return qz__sdist(&h->cs, a, b); }
/* Distance between record-form vectors (construction, re-ranking). */
static inline float qz__xdist(const qz__hnsw *h, const void *a, const void *b) { return qz__sdist(&h->xs, a, b); }
/* Distance in the construction space (insertion, heuristic, repair). */
static inline float qz__bdist(const qz__hnsw *h, const void *a, const void *b) { return qz__sdist(h->bs, a, b); }

/* -------- hnsw_insert.c -------- */
/* Insert the record-form vector `vec` (its code is made here) into the allocated `slot`. The payload
 * (owned by the index from now on, may be NULL) and seq are attached. The
 * node is INSERTING (traversable, not a result) while it is linked, and
 * LIVE when the call returns QZ_OK. On failure the payload is freed and the
 * slot released or left DELETED for the next repair; either way the caller
 * owns neither any more. Caller must NOT hold `resize`. */
int qz__hnsw_insert(qz__hnsw *h, uint32_t slot, uint64_t label, const void *vec, void *payload, uint64_t seq);

/* -------- hnsw_search.c -------- */
typedef int (*qz__accept_fn)(uint64_t label, void *user);

typedef struct qz__hit {
    float dist;
    uint32_t slot;
} qz__hit;

/* k nearest nodes accepted by `filter` (may be NULL) among those LIVE when
 * the search began (see "Deletion epochs"); results sorted ascending into
 * hits, count in *found. When the walk finds fewer than k (or its k-th is
 * at the saturated distance FLT_MAX), an exact pass over every slot
 * completes it, so *found = min(k, accepted nodes). Caller holds `resize`
 * shared. */
/* `query` is in record form. Quantized indexes walk the codes with a beam
 * of max(ef, k * oversample) and re-rank the nearest k * oversample (binary:
 * the whole beam) exactly against the originals (oversample 0: the index's
 * default); the distances returned are then exact. */
/* Work counters of qz__hnsw_search, summed over every index of the process,
 * for bench/ (peer comparisons with hnswlib's metric_hops and
 * metric_distance_computations): out = {searches, hops (nodes whose list was
 * read), neighbours listed in them, distances computed (listed minus the
 * already visited, plus the entry point; re-ranking not included)}.
 * enable 1 / 0 starts / stops counting (off by default: one relaxed load
 * per search), -1 leaves it; out may be NULL. Internal: in libquartz.a, not
 * exported by the shared library. */
void qz__hnsw_search_counters(int enable, uint64_t out[4]);

int qz__hnsw_search(qz__hnsw *h, const void *query, size_t k, uint32_t ef, uint32_t oversample, qz__accept_fn filter,
                    void *fuser, qz__hit *hits, size_t *found);

/* Internals shared by insert and repair. */
qz__search_ctx *qz__ctx_get(qz__hnsw *h, size_t ef);
void qz__ctx_put(qz__hnsw *h, qz__search_ctx *c);
void qz__ctx_free(qz__search_ctx *c);
/* Greedy descent from the entry point down to (not including) `stop_level`,
 * in space sp (q is a vector of that space). */
uint32_t qz__hnsw_descend(const qz__hnsw *h, const qz__space *sp, const void *q, uint32_t ep, int from_level,
                          int stop_level);
/* Beam search on one layer, results ascending in c's result buffer.
 * mode 0: accept non-deleted (construction), mode 1: LIVE + filter. */
size_t qz__hnsw_search_layer(const qz__hnsw *h, const qz__space *sp, qz__search_ctx *c, const void *q, uint32_t ep,
                             int level, size_t ef, int mode, qz__accept_fn filter, void *fuser, qz__hit **out);

/* Add a link nb -> slot on `level`, pruning nb's full list with the
 * heuristic (slot may be the one pruned). tmp holds M0 + 1 hits. */
void qz__hnsw_connect_back(qz__hnsw *h, uint32_t nb, uint32_t slot, int level, qz__hit *tmp);

/* -------- hnsw_delete.c -------- */
/* Mark a LIVE slot deleted, stamped with a new deletion epoch: never a result
 * of a search that starts after this returns (see "Deletion epochs"). Other
 * states are left alone. Caller holds `resize` shared and serialises marks
 * of one slot. */
void qz__hnsw_mark_deleted(qz__hnsw *h, uint32_t slot);
/* Unlink every deleted node, make every live node reachable from the entry
 * point on layer 0 again, and free the deleted slots. Cost: a scan of every
 * list plus work per deleted node's neighbourhood and per weakened list,
 * never live x deleted. On QZ_ENOMEM the graph stays valid and the deleted
 * nodes stay (as waypoints). Takes `resize` exclusive. */
int qz__hnsw_repair(qz__hnsw *h);

/* -------- hnsw_check.c -------- */
/* Verify graph invariants; QZ_ECORRUPT with a message on the first violation.
 * Takes `resize` exclusive. */
int qz__hnsw_check(qz__hnsw *h);

/* Heuristic neighbour selection (paper's algorithm 4, no extension):
 * `cand` ascending by distance to the base point; keeps at most m, in place.
 * A kept DELETED candidate never prunes a later one. Returns how many were
 * kept. */
size_t qz__hnsw_select(const qz__hnsw *h, qz__hit *cand, size_t n, size_t m);
/* qsort comparator: ascending distance. */
int qz__hit_cmp(const void *a, const void *b);
/* Sort ascending by (distance, slot); faster than qsort with qz__hit_cmp. */
void qz__hits_sort(qz__hit *a, size_t n);
/* Reorder so that a[0, k) are the k nearest of a[0, n), in no order. */
void qz__hits_nearest(qz__hit *a, size_t n, size_t k);

#endif
