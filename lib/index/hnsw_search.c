/*
 * hnsw_search.c - greedy descent through the upper layers and the beam
 * search on one layer (the paper's algorithms 2 and 5), shared by queries,
 * insertion and repair.
 *
 * Filters and deletions are applied inside the beam search, the way hnswlib
 * does it: rejected nodes are still expanded (they keep the graph
 * navigable) but never enter the result list, and while the result list is
 * not full the search keeps expanding. So a query returns k results whenever
 * k reachable nodes pass, at the price of visiting more of the graph when
 * the filter is very selective.
 *
 * Reachable is the catch: with a small M the back-link pruning can leave
 * islands no walk enters, and a selective filter can leave passing nodes
 * only behind rejected ones the beam stops expanding. So when the walk
 * ends with fewer than k results, qz__hnsw_search() finishes with an exact
 * pass over every slot: the public promise (k above the live count returns
 * them all; k results whenever k vectors pass the filter) then holds
 * whatever the graph looks like, and the pass costs nothing when the walk
 * already found k, which is every ordinary search. The same pass runs when
 * the k-th result is at the saturated distance FLT_MAX (components near
 * FLT_MAX, see hnsw.h): equal saturated distances give the walk nothing to
 * follow, while the exact pass finds every nearer node.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "index/hnsw.h"
#include "index/search_ctx.h"
#include "util/alloc.h"
#include "util/error.h"
#include "vector/codec.h"

#if defined(__GNUC__)
#define QZ_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define QZ_PREFETCH_L2(p) __builtin_prefetch((p), 0, 1) /* prefetcht2: not into L1 */
#else
#define QZ_PREFETCH(p) ((void)0)
#define QZ_PREFETCH_L2(p) ((void)0)
#endif

/* ---- the result max-heap of the exact pass ---- */

/* Largest layer-0 degree handled in one batch (2 * QZ_MAX_M). */
#define QZ__MAX_TODO (2 * 256)

static inline void heap_up(qz__hit *a, size_t i, int max)
{
    qz__hit x = a[i];
    while (i) {
        size_t p = (i - 1) / 2;
        if (max ? !(a[p].dist < x.dist) : !(a[p].dist > x.dist)) break;
        a[i] = a[p];
        i = p;
    }
    a[i] = x;
}

static inline void heap_down(qz__hit *a, size_t n, int max)
{
    size_t i = 0;
    qz__hit x = a[0];
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t r = l + 1, b = l;
        if (r < n && (max ? a[r].dist > a[l].dist : a[r].dist < a[l].dist)) b = r;
        if (max ? !(a[b].dist > x.dist) : !(a[b].dist < x.dist)) break;
        a[i] = a[b];
        i = b;
    }
    a[i] = x;
}

/* Push into the bounded result heap; returns the new worst distance, or
 * +inf while the list is not full. (Not FLT_MAX: that is a real distance,
 * the saturated one, and must still enter a list that has room.) */
static inline float res_push(qz__search_ctx *c, size_t ef, float d, uint32_t s)
{
    c->res[c->res_n] = (qz__hit){d, s};
    heap_up(c->res, c->res_n++, 1);
    if (c->res_n > ef) {
        c->res[0] = c->res[--c->res_n];
        heap_down(c->res, c->res_n, 1);
    }
    return c->res_n >= ef ? c->res[0].dist : INFINITY;
}

/* Prefetch every cache line that bytes [v, v + n) touch, at most
 * QZ__PREFETCH_LINES of them (the hardware prefetcher streams the rest of a
 * long vector). By line, not by offset from v: a packed record (GloVe int8:
 * 248-byte stride) puts a 116-byte code across three lines for most slots,
 * and stepping 64 bytes from v skipped the third. */
#ifndef QZ__PREFETCH_LINES
#define QZ__PREFETCH_LINES 8 /* GloVe f32 (7 lines): 4 -> 8 lines +25% QPS at ef 120 */
#endif
/* l2 1: not into L1 (prefetcht2, which fills L2 here; a constant at every
 * call, so the branch folds away) */
static inline void prefetch_lines_to(const void *v, size_t n, size_t max_lines, int l2)
{
    uintptr_t a = (uintptr_t)v & ~(uintptr_t)63, e = (uintptr_t)v + n - 1;
    for (size_t i = 0; i < max_lines && a <= e; i++, a += 64) {
        if (l2) QZ_PREFETCH_L2((const void *)a);
        else QZ_PREFETCH((const void *)a);
    }
}
static inline void prefetch_lines(const void *v, size_t n, size_t max_lines)
{
    prefetch_lines_to(v, n, max_lines, 0);
}

/* mode 0 (construction, repair): any node not deleted. mode 1 (queries):
 * LIVE, or DELETED after the search began (stamp newer than its epoch, see
 * "Deletion epochs" in hnsw.h), and passing the filter. */
static inline int accepted(const qz__hnsw *h, const qz__search_ctx *c, uint32_t s, int mode, qz__accept_fn filter,
                           void *fuser)
{
    unsigned st = atomic_load_explicit(&h->state[s], memory_order_acquire);
    if (mode == 0) return st == QZ__INSERTING || st == QZ__LIVE;
    if (st != QZ__LIVE) {
        if (st != QZ__DELETED) return 0;
        if (atomic_load_explicit(&h->del_stamp[s], memory_order_relaxed) <= c->epoch) return 0;
    }
    return filter == NULL || filter(h->labels[s], fuser);
}

/* Drain the max-heap c->res into c->out, ascending; returns the count. */
static size_t drain(qz__search_ctx *c)
{
    size_t n = c->res_n;
    for (size_t i = n; i-- > 0;) {
        c->out[i] = c->res[0];
        c->res[0] = c->res[--c->res_n];
        if (c->res_n) heap_down(c->res, c->res_n, 1);
    }
    return n;
}

/* Work counters of query searches (qz__hnsw_search_counters). */
static atomic_int counting;
static _Atomic uint64_t n_searches, n_hops, n_listed, n_computed;

void qz__hnsw_search_counters(int enable, uint64_t out[4])
{
    if (out) {
        out[0] = atomic_load(&n_searches);
        out[1] = atomic_load(&n_hops);
        out[2] = atomic_load(&n_listed);
        out[3] = atomic_load(&n_computed);
    }
    if (enable >= 0) atomic_store(&counting, enable);
}

static uint32_t descend_counted(const qz__hnsw *h, const qz__space *sp, const void *q, uint32_t ep, int from_level,
                               int stop_level, uint64_t *work)
{
    float best = qz__sdist(sp, q, qz__space_vec(h, sp, ep));
    for (int l = from_level; l > stop_level; l--) {
        int changed = 1;
        while (changed) {
            changed = 0;
            _Atomic uint32_t *ll = qz__links(h, ep, l);
            uint32_t n = atomic_load_explicit(&ll[0], memory_order_acquire);
            if (work) {
                work[0]++;
                work[1] += n;
            }
            for (uint32_t i = 1; i <= n; i++) {
                uint32_t nb = atomic_load_explicit(&ll[i], memory_order_acquire);
                float d = qz__sdist(sp, q, qz__space_vec(h, sp, nb));
                if (d < best) {
                    best = d;
                    ep = nb;
                    changed = 1;
                }
            }
        }
    }
    return ep;
}

uint32_t qz__hnsw_descend(const qz__hnsw *h, const qz__space *sp, const void *q, uint32_t ep, int from_level,
                          int stop_level)
{
    return descend_counted(h, sp, q, ep, from_level, stop_level, NULL);
}

/* ---- the beam search's pool ----
 *
 * The paper keeps two heaps, candidates (min) and results (max, at most ef).
 * Every candidate worse than the worst of a full result list is never
 * expanded (the list's worst only improves), so one array sorted by
 * distance holds all that matters: the results, and among them, flagged,
 * the ones not expanded yet; the next node to expand is the first
 * unexpanded one, and the search ends when none is left. It expands the
 * same nodes in the same order as the two heaps (ties aside) and needs no
 * drain at the end. Nodes the search must expand but not return (filtered
 * out, deleted, still being inserted) stay in the pool without POOL_ACC;
 * the pool then holds ef accepted entries and those between them. Measured
 * against the two heaps (one thread, alternating runs, median QPS): GloVe
 * f32 +9% at ef 120, +2.5% at ef 400, int8 level; MNIST int8 ef 30 +9%. */
#define POOL_DONE 1u /* expanded */
#define POOL_ACC 2u  /* accepted: a result */

/* Insert (d, s) in ascending order, after equal distances; returns its
 * index, or SIZE_MAX when the pool cannot grow. */
static inline size_t pool_insert(qz__search_ctx *c, float d, uint32_t s, uint8_t f)
{
    size_t n = c->cand_n;
    if (n == c->cand_cap && qz__ctx_pool(c, n + 1) < 0) return SIZE_MAX;
    size_t lo = 0;
    if (n) {
        /* Branch-free upper bound: the answer stays in [b, b + len]. The
         * branching search mispredicts about every other step; on an index
         * in cache (GloVe 25k int8, ef 100) it took 19% of the beam
         * search's samples, the branch-free one 12%. QPS moved within the
         * noise (+0.6% median of 10 alternating runs). */
        const qz__hit *b = c->cand;
        size_t len = n;
        while (len > 1) {
            size_t half = len >> 1;
            b += b[half].dist <= d ? half : 0;
            len -= half;
        }
        lo = (size_t)(b - c->cand) + (b->dist <= d);
    }
    memmove(c->cand + lo + 1, c->cand + lo, (n - lo) * sizeof *c->cand);
    memmove(c->flags + lo + 1, c->flags + lo, n - lo);
    c->cand[lo] = (qz__hit){d, s};
    c->flags[lo] = f;
    c->cand_n = n + 1;
    return lo;
}

/* The pool holds ef accepted entries, or ef + 1 (drop1: the worst of them
 * stops being a result). Entries beyond the worst accepted distance are
 * dropped: nothing beyond it is ever expanded. Entries AT it stay (no
 * longer results): the two-heap search expands every candidate no farther
 * than the worst result, and on integer distances (Hamming) such ties are
 * common and are what lets a walk cross a plateau (dropping them cost 1.4
 * points of recall@10 at ef 64 on 256-bit codes). Returns that distance,
 * the bound a new node must beat. */
static inline float pool_full(qz__search_ctx *c, int drop1)
{
    size_t last = c->cand_n;
    while (!(c->flags[--last] & POOL_ACC)) {}
    if (drop1) {
        c->flags[last] &= (uint8_t)~POOL_ACC;
        while (!(c->flags[--last] & POOL_ACC)) {}
    }
    float lb = c->cand[last].dist;
    size_t end = last + 1;
    while (end < c->cand_n && !(c->cand[end].dist > lb)) end++;
    c->cand_n = end;
    return lb;
}

size_t qz__hnsw_search_layer(const qz__hnsw *h, const qz__space *sp, qz__search_ctx *c, const void *q, uint32_t ep,
                             int level, size_t ef, int mode, qz__accept_fn filter, void *fuser, qz__hit **out)
{
    float lb = INFINITY; /* worst accepted distance once ef are held */
    size_t links_bytes = sizeof(uint32_t) * (1 + (size_t)qz__max_links(h, level));
    size_t n_acc = 0;
    c->cand_n = c->res_n = 0;
    *out = c->out;
    if (qz__ctx_pool(c, ef + 1) < 0) return 0; /* cannot fail: qz__ctx_get reserved it */
    qz__visit(c, ep);
    float d0 = qz__sdist(sp, q, qz__space_vec(h, sp, ep));
    int acc0 = accepted(h, c, ep, mode, filter, fuser);
    pool_insert(c, d0, ep, acc0 ? POOL_ACC : 0);
    if (acc0 && ++n_acc >= ef) lb = pool_full(c, 0);

    size_t next = 0; /* first unexpanded entry */
    while (next < c->cand_n) {
        c->flags[next] |= POOL_DONE;
        uint32_t cur = c->cand[next].slot;
        size_t low = next + 1; /* where the next unexpanded entry is looked for */
        _Atomic uint32_t *ll = qz__links(h, cur, level);
        uint32_t n = atomic_load_explicit(&ll[0], memory_order_acquire);
        c->hops++;
        c->listed += n;
        /* Two passes: first pick the unvisited neighbours and prefetch the
         * lines of each one's vector (up to QZ__PREFETCH_LINES; the hardware
         * prefetcher streams the rest), so the misses overlap instead of
         * arriving one neighbour at a time; then compute the distances.
         * Measured against prefetching only the next neighbour: GloVe +7%
         * QPS at ef 80, +22% at ef 120; MNIST equal or better. */
        uint32_t todo[QZ__MAX_TODO];
        uint32_t m = 0;
        for (uint32_t i = 1; i <= n && m < QZ__MAX_TODO; i++) {
            uint32_t nb = atomic_load_explicit(&ll[i], memory_order_acquire);
            if (!qz__visit(c, nb)) continue;
            todo[m++] = nb;
            prefetch_lines(qz__space_vec(h, sp, nb), sp->bytes, QZ__PREFETCH_LINES);
        }
        c->computed += m;
        if (m) QZ_PREFETCH(&h->state[todo[0]]);
        for (uint32_t i = 0; i < m; i++) {
            uint32_t nb = todo[i];
            float d = qz__sdist(sp, q, qz__space_vec(h, sp, nb));
            if (d < lb) {
                int acc = accepted(h, c, nb, mode, filter, fuser);
                size_t at = pool_insert(c, d, nb, acc ? POOL_ACC : 0);
                if (at == SIZE_MAX) goto done;
                if (at < low) low = at; /* everything before `low` is expanded */
                if (acc && ++n_acc >= ef) {
                    lb = pool_full(c, n_acc > ef);
                    n_acc = ef;
                }
            }
        }
        next = low;
        while (next < c->cand_n && (c->flags[next] & POOL_DONE)) next++;
        if (next < c->cand_n) prefetch_lines(qz__links(h, c->cand[next].slot, level), links_bytes, QZ__PREFETCH_LINES); /* its links */
    }
done:;
    size_t r = 0;
    for (size_t i = 0; i < c->cand_n; i++)
        if (c->flags[i] & POOL_ACC) c->out[r++] = c->cand[i];
    return r;
}

/* The walk found n results (c->out, ascending), too few or too far: go over
 * every slot, keep the k nearest accepted ones, the walk's among them, each
 * once. Exact (record-form) distances: q is the record-form query, and the
 * walk's own results are measured again when it ran on codes. Allocates
 * nothing: c->res and c->out hold k + 1. */
/* sp: the record form (q a record-form query), or, for an index whose
 * originals are not in memory, the codes (q the query's code; the caller
 * re-ranks what this keeps). */
static size_t exact_pass(qz__hnsw *h, qz__search_ctx *c, const qz__space *sp, const void *q, size_t k, size_t n,
                         qz__accept_fn filter, void *fuser)
{
    qz__ctx_new_tag(c);
    c->res_n = 0;
    for (size_t i = 0; i < n; i++) {
        qz__visit(c, c->out[i].slot);
        float d = h->quantized ? qz__sdist(sp, q, qz__space_vec(h, sp, c->out[i].slot)) : c->out[i].dist;
        if (c->res_n < k || d < c->res[0].dist) res_push(c, k, d, c->out[i].slot);
    }
    /* Slots allocated after this read hold nodes inserted after the search
     * began: a concurrent search may or may not see those anyway. */
    uint32_t hw = qz__hnsw_high_water(h);
    for (uint32_t s = 0; s < hw; s++) {
        if (!qz__visit(c, s)) continue; /* already a result */
        /* the state first: a vector is only read once its acquire load
         * says the slot holds a complete node */
        if (!accepted(h, c, s, 1, filter, fuser)) continue;
        float d = qz__sdist(sp, q, qz__space_vec(h, sp, s));
        if (c->res_n < k || d < c->res[0].dist) res_push(c, k, d, s);
    }
    return drain(c);
}

/* Re-rank: the first r of the walk's n results (ascending code distance)
 * get their exact distances against the originals and are sorted again.
 * Returns r. */
static inline void prefetch_rec(const qz__hnsw *h, uint32_t slot)
{
    prefetch_lines(qz__node_rec(h, slot), h->vec_bytes, SIZE_MAX);
}

/* Every line of the next originals into L2 only (see rerank). */
#define QZ__RERANK_L2_AHEAD 32 /* binary re-ranks whole beams: no thousands of prefetches at once */
static inline void prefetch_rec_l2(const qz__hnsw *h, uint32_t slot)
{
    prefetch_lines_to(qz__node_rec(h, slot), h->vec_bytes, SIZE_MAX, 1);
}

static size_t rerank(const qz__hnsw *h, const void *q, qz__hit *res, size_t n, size_t r)
{
    if (r > n) r = n;
    /* The originals are cold (the walk read codes): fetch every line of
     * the next two ahead, so their misses overlap with this distance.
     * Measured on MNIST int8, ef 40: without it the 30 re-ranked f32
     * distances took twice the time of the whole walk on the codes. The
     * ones after those two go to L2 at once, before the first distance, so
     * all their misses are in flight early without evicting the two being
     * measured from L1 (MNIST int8, os 1, ef 10, ten cold 3 KB originals a
     * query: +3-4% QPS in three alternating runs). */
    for (size_t i = 0; i < r && i < 2; i++) prefetch_rec(h, res[i].slot);
    for (size_t i = 2; i < r && i < QZ__RERANK_L2_AHEAD; i++) prefetch_rec_l2(h, res[i].slot);
    for (size_t i = 0; i < r; i++) {
        if (i + 2 < r) prefetch_rec(h, res[i + 2].slot);
        res[i].dist = qz__xdist(h, q, qz__node_rec(h, res[i].slot));
    }
    qz__hits_sort(res, r);
    return r;
}

/* Re-rank for an index whose originals are not in memory (hnsw_orig.c):
 * they come through qz__hnsw_originals() (pinned copies, or the storage) a
 * chunk at a time into the context's buffer. A slot whose id was written
 * again while the search ran is measured on the id's current vector (the
 * storage keeps only that; lib/engine drops the id's second hit); one whose
 * id was deleted meanwhile keeps its code distance (a result only for a
 * search that began before the delete). *r in: how many, out: how many were
 * re-ranked. */
#define QZ__RERANK_CHUNK 64
static int rerank_external(const qz__hnsw *h, qz__search_ctx *c, const void *q, qz__hit *res, size_t n, size_t *r)
{
    size_t rr = *r > n ? n : *r;
    size_t chunk = ((size_t)1 << 20) / h->vec_bytes;
    if (chunk > QZ__RERANK_CHUNK) chunk = QZ__RERANK_CHUNK;
    if (chunk < 1) chunk = 1;
    if (rr < chunk) chunk = rr;
    if (c->obuf_cap < chunk * h->vec_bytes) {
        void *nb = qz__realloc(c->obuf, chunk * h->vec_bytes);
        if (!nb) return qz__err(QZ_ENOMEM, "out of memory for re-ranking against stored originals");
        c->obuf = nb;
        c->obuf_cap = chunk * h->vec_bytes;
    }
    uint32_t slots[QZ__RERANK_CHUNK];
    void *dst[QZ__RERANK_CHUNK];
    unsigned char ok[QZ__RERANK_CHUNK];
    for (size_t i = 0; i < rr; i += chunk) {
        size_t m = rr - i < chunk ? rr - i : chunk;
        for (size_t j = 0; j < m; j++) {
            slots[j] = res[i + j].slot;
            dst[j] = c->obuf + j * h->vec_bytes;
        }
        QZ_CHECK(qz__hnsw_originals(h, m, slots, dst, ok));
        for (size_t j = 0; j < m; j++)
            if (ok[j]) res[i + j].dist = qz__xdist(h, q, dst[j]);
    }
    qz__hits_sort(res, rr);
    *r = rr;
    return QZ_OK;
}

#define QZ__CODE_STACK 4096
#define QZ__MAX_BEAM 100000u /* QZ_MAX_EF */

int qz__hnsw_search(qz__hnsw *h, const void *query, size_t k, uint32_t ef, uint32_t oversample, qz__accept_fn filter,
                    void *fuser, qz__hit *hits, size_t *found)
{
    *found = 0;
    /* The deletion epoch comes first, before anything else of the graph is
     * read: deletions stamped after it stay results (hnsw.h). */
    uint64_t epoch = atomic_load_explicit(&h->del_clock, memory_order_acquire);
    uint64_t e = atomic_load_explicit(&h->entry, memory_order_acquire);
    if (e == UINT64_MAX) return QZ_OK;
    size_t beam = ef > k ? ef : k;
    size_t keep = k; /* results re-ranked (quantized) */
    uint64_t codebuf[QZ__CODE_STACK / 8];
    const void *qc = query;
    void *heapcode = NULL;
    if (h->quantized) {
        size_t os = oversample ? oversample : atomic_load_explicit(&h->oversample, memory_order_relaxed);
        keep = k * os;
        if (keep > QZ__MAX_BEAM) keep = QZ__MAX_BEAM; /* k <= QZ_MAX_K is below it */
        if (keep > beam) beam = keep;
        /* Hamming ranks are too coarse to cut: the nearest k * oversample
         * by bits of a wider beam hold MORE far vectors that happen to
         * share bits (GloVe, 100 bits: recall fell from 0.655 at ef 100 to
         * 0.634 at ef 400 with a cut at 160). Binary re-ranks the whole
         * beam, so recall grows with ef; f16 and int8 ranks are close to
         * exact and their cut at k * oversample saves exact distances. */
        if (h->dtype == QZ__DTYPE_BINARY) keep = beam;
        if (!h->q_raw) { /* f16 walks with the f32 query itself (h->qs) */
            if (h->code_bytes > sizeof codebuf) {
                heapcode = qz__malloc(h->code_bytes);
                if (!heapcode) return qz__err(QZ_ENOMEM, "out of memory for a query code");
            }
            void *cb = heapcode ? heapcode : (void *)codebuf;
            qz__hnsw_quantize(h, query, cb);
            if (h->q_prep) qz__sq8_prepare(cb, h->dim);
            qc = cb;
        }
    }
    qz__search_ctx *c = qz__ctx_get(h, beam);
    if (!c) {
        qz__free(heapcode);
        return qz__err(QZ_ENOMEM, "out of memory for a search with ef %zu", beam);
    }
    c->epoch = epoch;
    c->hops = c->listed = c->computed = 0;
    uint64_t up[2] = {0, 0}; /* upper layers: hops, neighbours listed (= computed: no visited set) */
    uint32_t ep = descend_counted(h, &h->qs, qc, (uint32_t)e, (int)(e >> 32), 0, up);
    qz__hit *res;
    size_t n = qz__hnsw_search_layer(h, &h->qs, c, qc, ep, 0, beam, 1, filter, fuser, &res);
    /* Short, or the k-th result is at the saturated distance FLT_MAX
     * (hnsw.h: an overflowed L2 or 1 - dot): saturated distances tie, so
     * the walk had no gradient to follow and nearer nodes may be unseen. */
    int rc = QZ_OK;
    if (h->orig_external) {
        /* no originals at hand: the exact pass (when needed) ranks on the
         * codes and keeps k * oversample, which are re-ranked like a walk's */
        if (n < k || res[k - 1].dist >= FLT_MAX) {
            n = exact_pass(h, c, &h->qs, qc, keep, n, filter, fuser);
            res = c->out;
        }
        size_t r = keep;
        rc = rerank_external(h, c, query, res, n, &r);
    } else if (n < k || res[k - 1].dist >= FLT_MAX) {
        n = exact_pass(h, c, &h->xs, query, k, n, filter, fuser);
    } else if (h->quantized) {
        n = rerank(h, query, res, n, keep);
        if (res[k - 1].dist >= FLT_MAX) n = exact_pass(h, c, &h->xs, query, k, n, filter, fuser);
    }
    if (rc < 0) {
        qz__ctx_put(h, c);
        qz__free(heapcode);
        return rc;
    }
    if (n > k) n = k;
    for (size_t i = 0; i < n; i++) hits[i] = res[i];
    *found = n;
    if (atomic_load_explicit(&counting, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&n_searches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&n_hops, c->hops + up[0], memory_order_relaxed);
        atomic_fetch_add_explicit(&n_listed, c->listed + up[1], memory_order_relaxed);
        atomic_fetch_add_explicit(&n_computed, c->computed + up[1] + 1, memory_order_relaxed);
    }
    qz__ctx_put(h, c);
    qz__free(heapcode);
    return QZ_OK;
}
