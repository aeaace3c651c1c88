/* visited.c - the pool of search contexts (visited sets and heap space). */
#include <string.h>

#include "index/search_ctx.h"
#include "util/alloc.h"

void qz__ctx_free(qz__search_ctx *c)
{
    if (!c) return;
    qz__free(c->bits);
    qz__free(c->touched);
    qz__free(c->cand);
    qz__free(c->flags);
    qz__free(c->res);
    qz__free(c->out);
    qz__free(c->scratch);
    qz__free(c->obuf);
    qz__free(c);
}

static int ensure(qz__hit **p, size_t *cap, size_t n)
{
    if (*cap >= n) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < n) nc *= 2;
    qz__hit *q = qz__realloc(*p, nc * sizeof *q);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

int qz__ctx_scratch(qz__search_ctx *c, size_t n) { return ensure(&c->scratch, &c->scratch_cap, n); }

int qz__ctx_pool(qz__search_ctx *c, size_t n)
{
    if (c->cand_cap >= n && c->flags_cap >= n) return 0;
    if (ensure(&c->cand, &c->cand_cap, n)) return -1;
    if (c->flags_cap < c->cand_cap) {
        uint8_t *f = qz__realloc(c->flags, c->cand_cap);
        if (!f) return -1;
        c->flags = f;
        c->flags_cap = c->cand_cap;
    }
    return 0;
}

/* Caller holds h->resize shared, so h->capacity is stable. */
qz__search_ctx *qz__ctx_get(qz__hnsw *h, size_t ef)
{
    qz__search_ctx *c = NULL;
    pthread_mutex_lock(&h->pool_lock);
    if (h->n_pool) c = h->pool[--h->n_pool];
    pthread_mutex_unlock(&h->pool_lock);
    if (!c) {
        c = qz__calloc(1, sizeof *c);
        if (!c) return NULL;
    }
    size_t words = (h->capacity + 63) / 64;
    if (c->bits_words < words) {
        uint64_t *b = qz__realloc(c->bits, words * sizeof *b);
        if (!b) goto fail;
        c->bits = b;
        uint32_t *t = qz__realloc(c->touched, words * sizeof *t);
        if (!t) goto fail; /* bits_words still the old size: consistent */
        c->touched = t;
        memset(b + c->bits_words, 0, (words - c->bits_words) * sizeof *b);
        c->bits_words = words;
    }
    qz__ctx_new_tag(c);
    if (ensure(&c->res, &c->res_cap, ef + 1) || ensure(&c->out, &c->out_cap, ef + 1) || qz__ctx_pool(c, ef + 1))
        goto fail;
    c->cand_n = c->res_n = 0;
    return c;
fail:
    qz__ctx_put(h, c);
    return NULL;
}

void qz__ctx_put(qz__hnsw *h, qz__search_ctx *c)
{
    pthread_mutex_lock(&h->pool_lock);
    if (h->n_pool == h->cap_pool) {
        size_t nc = h->cap_pool ? h->cap_pool * 2 : 8;
        qz__search_ctx **p = qz__realloc(h->pool, nc * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&h->pool_lock);
            qz__ctx_free(c);
            return;
        }
        h->pool = p;
        h->cap_pool = nc;
    }
    h->pool[h->n_pool++] = c;
    pthread_mutex_unlock(&h->pool_lock);
}

size_t qz__ctx_pool_memory(qz__hnsw *h)
{
    size_t m = 0;
    pthread_mutex_lock(&h->pool_lock);
    for (size_t i = 0; i < h->n_pool; i++) {
        qz__search_ctx *c = h->pool[i];
        m += sizeof *c + c->bits_words * (sizeof *c->bits + sizeof *c->touched) +
             (c->cand_cap + c->res_cap + c->out_cap + c->scratch_cap) * sizeof(qz__hit) + c->flags_cap + c->obuf_cap;
    }
    m += h->cap_pool * sizeof *h->pool;
    pthread_mutex_unlock(&h->pool_lock);
    return m;
}
