/*
 * search_ctx.h - per-search scratch space: visited tags, the beam pool, a heap
 * (internal).
 *
 * A context belongs to one search at a time; contexts are pooled on the index
 * so that a steady stream of searches allocates nothing. The visited set is
 * an array of 16-bit tags, one per slot: a slot is visited when its tag
 * equals the context's current tag, so clearing is a tag increment and the
 * array is only zeroed once every 65535 searches.
 *
 * `cand` is the beam search's pool (hnsw_search.c): the nodes found so far,
 * ascending by distance, with `flags` beside it (expanded, accepted). `res`
 * is a max-heap (worst kept result on top, popped when the list exceeds k)
 * for the exact pass.
 */
#ifndef QZ_INDEX_SEARCH_CTX_H
#define QZ_INDEX_SEARCH_CTX_H

#include <string.h>

#include "index/hnsw.h"

struct qz__search_ctx {
    uint16_t *tags;
    size_t tags_cap;
    uint16_t cur;
    qz__hit *cand;
    uint8_t *flags; /* flags_cap (>= cand_cap once qz__ctx_pool succeeded) */
    size_t cand_n, cand_cap, flags_cap;
    qz__hit *res;
    size_t res_n, res_cap;
    qz__hit *out;
    size_t out_cap;
    qz__hit *scratch; /* for repair and neighbour selection */
    size_t scratch_cap;
    uint8_t *obuf;    /* originals fetched for re-ranking (orig_external) */
    size_t obuf_cap;
    uint64_t epoch;   /* del_clock when the search began (mode 1) */
    uint64_t hops, listed, computed; /* work of the search, when counting (hnsw_search.c) */
};

size_t qz__ctx_pool_memory(qz__hnsw *h);
/* Make sure c->scratch holds n hits. 0 or -1 (no memory). */
int qz__ctx_scratch(qz__search_ctx *c, size_t n);
/* Make sure c->cand and c->flags hold n entries. 0 or -1 (no memory). */
int qz__ctx_pool(qz__search_ctx *c, size_t n);

/* Start a fresh visited set. */
static inline void qz__ctx_new_tag(qz__search_ctx *c)
{
    if (c->cur == UINT16_MAX) {
        memset(c->tags, 0, c->tags_cap * sizeof *c->tags);
        c->cur = 0;
    }
    c->cur++;
}

static inline int qz__visit(qz__search_ctx *c, uint32_t slot)
{
    if (c->tags[slot] == c->cur) return 0;
    c->tags[slot] = c->cur;
    return 1;
}

#endif
