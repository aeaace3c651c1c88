/*
 * search_ctx.h - per-search scratch space: visited tags, the beam pool, a heap
 * (internal).
 *
 * A context belongs to one search at a time; contexts are pooled on the index
 * so that a steady stream of searches allocates nothing. The visited set is
 * a bitset, one bit per slot, with the list of the words a search set bits
 * in: a fresh set zeroes those words only (or the whole bitset, when most
 * words were touched), so clearing costs what the search visited, whatever
 * the index's size. One bit a slot keeps the set small enough to stay in
 * the first-level cache (GloVe, 190k slots: 24 KB); 16-bit tags, hnswlib's
 * scheme and ours before, take 380 KB, which the codes a search streams
 * through push out of L1 and L2: the tag check was 18% of the beam
 * search's samples at ef 400.
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
    uint64_t *bits;     /* visited: bit s of word s / 64 for slot s */
    uint32_t *touched;  /* words with a bit set, touched_n of them */
    size_t bits_words;  /* words of `bits` and room in `touched` */
    size_t touched_n;
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
    if (c->touched_n * 8 > c->bits_words) {
        memset(c->bits, 0, c->bits_words * sizeof *c->bits);
    } else {
        for (size_t i = 0; i < c->touched_n; i++) c->bits[c->touched[i]] = 0;
    }
    c->touched_n = 0;
}

/* Mark slot visited; 1 if it was not yet. */
static inline int qz__visit(qz__search_ctx *c, uint32_t slot)
{
    uint64_t *w = &c->bits[slot >> 6], m = (uint64_t)1 << (slot & 63);
    if (*w & m) return 0;
    if (!*w) c->touched[c->touched_n++] = slot >> 6; /* at most bits_words */
    *w |= m;
    return 1;
}

#endif
