/*
 * storage_mem.c - in-memory storage backend.
 *
 * Each table is a treap (a binary search tree ordered by key whose nodes are
 * also a max-heap on a pseudo-random priority, which keeps the expected depth
 * logarithmic) made *persistent* by path copying:
 *
 * - Nodes and items (key+value blobs) are reference counted and immutable
 *   once shared. A version is the set of table roots of one commit.
 * - A read transaction takes a reference to the current version and reads it
 *   without any lock for its whole life: later commits never touch it.
 * - A write transaction starts from the current roots and, before changing
 *   a node, "owns" it: a node whose count is 1 is held by this transaction
 *   alone and is changed in place; any other node is copied first (the copy
 *   takes references to the same children and item). So the transaction's
 *   changes stay private, and commit publishes them by swapping one pointer;
 *   abort just drops the private roots.
 * - Every node an operation may copy is allocated up front (a small pool
 *   sized from a first walk down the tree), so a failed allocation leaves
 *   the tree untouched and returns QZ_ENOMEM.
 *
 * Priorities are XXH3 of the key with a per-store seed, so replacing a key
 * keeps its node's priority and the shape does not depend on insert order.
 */
#include "storage/storage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "util/alloc.h"
#include "util/error.h"

typedef struct mem_item {
    atomic_size_t ref;
    size_t klen, vlen;
    unsigned char data[]; /* key, then value */
} mem_item;

typedef struct mem_node {
    atomic_size_t ref;
    uint64_t prio;
    mem_item *item;
    struct mem_node *l, *r;
} mem_node;

typedef struct mem_version {
    atomic_size_t ref;
    mem_node *root[QZ_TABLE_COUNT];
} mem_version;

typedef struct mem_store {
    qz_storage base;      /* first: a qz_storage * is a mem_store * */
    pthread_mutex_t mu;   /* guards cur */
    pthread_mutex_t wmu;  /* held by the open write transaction */
    mem_version *cur;
    uint64_t seed;
} mem_store;

struct qz_storage_txn {
    uint32_t flags;
    mem_version *snap;              /* read-only: the version read */
    mem_node *work[QZ_TABLE_COUNT]; /* read-write: private roots (owned references) */
};

/* Pre-allocated nodes of one operation. */
typedef struct mem_pool {
    mem_node *free;
    size_t n;
} mem_pool;

/* ---- reference counting ---------------------------------------------- */

static void item_ref(mem_item *it) { atomic_fetch_add_explicit(&it->ref, 1, memory_order_relaxed); }

static void item_release(mem_item *it)
{
    if (it && atomic_fetch_sub_explicit(&it->ref, 1, memory_order_acq_rel) == 1) qz__free(it);
}

static void node_ref(mem_node *n)
{
    if (n) atomic_fetch_add_explicit(&n->ref, 1, memory_order_relaxed);
}

static void node_release(mem_node *n)
{
    while (n && atomic_fetch_sub_explicit(&n->ref, 1, memory_order_acq_rel) == 1) {
        mem_node *r = n->r;
        node_release(n->l);
        item_release(n->item);
        qz__free(n);
        n = r; /* the right spine iteratively, the left recursively */
    }
}

static void version_release(mem_version *v)
{
    if (!v || atomic_fetch_sub_explicit(&v->ref, 1, memory_order_acq_rel) != 1) return;
    for (int t = 0; t < QZ_TABLE_COUNT; t++) node_release(v->root[t]);
    qz__free(v);
}

/* ---- pool ---------------------------------------------------------------- */

static int pool_fill(mem_pool *p, size_t n)
{
    p->free = NULL;
    p->n = 0;
    for (size_t i = 0; i < n; i++) {
        mem_node *x = qz__malloc(sizeof *x);
        if (!x) {
            while (p->free) {
                mem_node *nx = p->free->l;
                qz__free(p->free);
                p->free = nx;
            }
            return qz__err(QZ_ENOMEM, "memory storage: out of memory for %zu tree nodes", n);
        }
        x->l = p->free;
        p->free = x;
        p->n++;
    }
    return QZ_OK;
}

static void pool_drain(mem_pool *p)
{
    while (p->free) {
        mem_node *nx = p->free->l;
        qz__free(p->free);
        p->free = nx;
    }
    p->n = 0;
}

static mem_node *pool_take(mem_pool *p)
{
    mem_node *x = p->free; /* sized by the caller's walk: never empty here */
    p->free = x->l;
    p->n--;
    return x;
}

/* Given an owned reference to n, return a node with the same content that
 * this transaction owns exclusively (n itself when nobody else holds it). */
static mem_node *node_own(mem_node *n, mem_pool *p)
{
    if (atomic_load_explicit(&n->ref, memory_order_acquire) == 1) return n;
    mem_node *c = pool_take(p);
    atomic_init(&c->ref, 1);
    c->prio = n->prio;
    c->item = n->item;
    item_ref(c->item);
    c->l = n->l;
    c->r = n->r;
    node_ref(c->l);
    node_ref(c->r);
    node_release(n);
    return c;
}

/* ---- keys ---------------------------------------------------------------- */

/* LMDB's default order: bytes compared as unsigned, a prefix sorts first. */
static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static int node_cmp(const void *k, size_t kl, const mem_node *n)
{
    return key_cmp(k, kl, n->item->data, n->item->klen);
}

/* ---- tree operations (all consume and return owned references) --------- */

static mem_node *tree_find(mem_node *t, const void *k, size_t kl, size_t *depth)
{
    size_t d = 0;
    while (t) {
        int c = node_cmp(k, kl, t);
        if (c == 0) break;
        d++;
        t = c < 0 ? t->l : t->r;
    }
    if (depth) *depth = d;
    return t;
}

/* Split t (no node with key k) into keys < k and keys > k. */
static void tree_split(mem_node *t, const void *k, size_t kl, mem_node **lo, mem_node **hi, mem_pool *p)
{
    if (!t) {
        *lo = *hi = NULL;
        return;
    }
    t = node_own(t, p);
    if (node_cmp(k, kl, t) < 0) {
        tree_split(t->l, k, kl, lo, &t->l, p);
        *hi = t;
    } else {
        tree_split(t->r, k, kl, &t->r, hi, p);
        *lo = t;
    }
}

/* Insert node n whose key is absent. */
static mem_node *tree_insert(mem_node *t, mem_node *n, mem_pool *p)
{
    if (!t) return n;
    if (n->prio > t->prio) {
        tree_split(t, n->item->data, n->item->klen, &n->l, &n->r, p);
        return n;
    }
    t = node_own(t, p);
    if (node_cmp(n->item->data, n->item->klen, t) < 0)
        t->l = tree_insert(t->l, n, p);
    else
        t->r = tree_insert(t->r, n, p);
    return t;
}

/* Replace the item of the node holding it->key (present). */
static mem_node *tree_replace(mem_node *t, mem_item *it, mem_pool *p)
{
    t = node_own(t, p);
    int c = node_cmp(it->data, it->klen, t);
    if (c == 0) {
        item_release(t->item);
        t->item = it;
    } else if (c < 0) {
        t->l = tree_replace(t->l, it, p);
    } else {
        t->r = tree_replace(t->r, it, p);
    }
    return t;
}

/* Join a and b, every key of a below every key of b. */
static mem_node *tree_merge(mem_node *a, mem_node *b, mem_pool *p)
{
    if (!a) return b;
    if (!b) return a;
    if (a->prio > b->prio) {
        a = node_own(a, p);
        a->r = tree_merge(a->r, b, p);
        return a;
    }
    b = node_own(b, p);
    b->l = tree_merge(a, b->l, p);
    return b;
}

/* Remove the node with key k (present). */
static mem_node *tree_remove(mem_node *t, const void *k, size_t kl, mem_pool *p)
{
    int c = node_cmp(k, kl, t);
    if (c == 0) {
        mem_node *l = t->l, *r = t->r;
        node_ref(l);
        node_ref(r);
        node_release(t);
        return tree_merge(l, r, p);
    }
    t = node_own(t, p);
    if (c < 0)
        t->l = tree_remove(t->l, k, kl, p);
    else
        t->r = tree_remove(t->r, k, kl, p);
    return t;
}

/* ---- scan ---------------------------------------------------------------- */

typedef struct scan_ctx {
    const void *prefix;
    size_t plen;
    qz_storage_scan_fn fn;
    void *user;
    int done;
} scan_ctx;

static int scan_rec(const mem_node *n, scan_ctx *c)
{
    while (n) {
        const mem_item *it = n->item;
        if (key_cmp(it->data, it->klen, c->prefix, c->plen) < 0) { /* below the range */
            n = n->r;
            continue;
        }
        int rc = scan_rec(n->l, c);
        if (rc || c->done) return rc;
        if (it->klen < c->plen || (c->plen && memcmp(it->data, c->prefix, c->plen) != 0)) {
            c->done = 1; /* first key past the prefix range */
            return 0;
        }
        rc = c->fn(it->data, it->klen, it->data + it->klen, it->vlen, c->user);
        if (rc) return rc;
        n = n->r;
    }
    return 0;
}

/* ---- methods ------------------------------------------------------------- */

static int check_table(uint32_t table)
{
    if (table >= QZ_TABLE_COUNT) return qz__err(QZ_EINVAL, "memory storage: no table %u", table);
    return QZ_OK;
}

static int check_key(const void *key, size_t klen)
{
    if (!key || klen == 0 || klen > QZ_MAX_KEY)
        return qz__err(QZ_EINVAL, "memory storage: key of %zu bytes (must be 1..%u)", klen, QZ_MAX_KEY);
    return QZ_OK;
}

static mem_node *txn_root(qz_storage_txn *txn, uint32_t table)
{
    return (txn->flags & QZ_TXN_READONLY) ? txn->snap->root[table] : txn->work[table];
}

static int mem_begin(qz_storage *s, uint32_t flags, qz_storage_txn **out)
{
    mem_store *m = (mem_store *)s;
    if (!out || (flags & ~QZ_TXN_READONLY)) return qz__err(QZ_EINVAL, "memory storage: bad begin() arguments");
    qz_storage_txn *txn = qz__calloc(1, sizeof *txn);
    if (!txn) return qz__err(QZ_ENOMEM, "memory storage: out of memory for a transaction");
    txn->flags = flags;
    if (flags & QZ_TXN_READONLY) {
        pthread_mutex_lock(&m->mu);
        txn->snap = m->cur;
        atomic_fetch_add_explicit(&txn->snap->ref, 1, memory_order_relaxed);
        pthread_mutex_unlock(&m->mu);
    } else {
        pthread_mutex_lock(&m->wmu);
        pthread_mutex_lock(&m->mu);
        for (int t = 0; t < QZ_TABLE_COUNT; t++) {
            txn->work[t] = m->cur->root[t];
            node_ref(txn->work[t]);
        }
        pthread_mutex_unlock(&m->mu);
    }
    *out = txn;
    return QZ_OK;
}

static int mem_get(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *key, size_t klen,
                   const void **val, size_t *vlen)
{
    (void)s;
    QZ_CHECK(check_table(table));
    QZ_CHECK(check_key(key, klen));
    const mem_node *n = tree_find(txn_root(txn, table), key, klen, NULL);
    if (!n) return QZ_ENOTFOUND;
    if (val) *val = n->item->data + n->item->klen;
    if (vlen) *vlen = n->item->vlen;
    return QZ_OK;
}

static int mem_put(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *key, size_t klen,
                   const void *val, size_t vlen)
{
    mem_store *m = (mem_store *)s;
    QZ_CHECK(check_table(table));
    QZ_CHECK(check_key(key, klen));
    if (txn->flags & QZ_TXN_READONLY) return qz__err(QZ_EINVAL, "memory storage: put in a read-only transaction");
    if (!val && vlen) return qz__err(QZ_EINVAL, "memory storage: NULL value of %zu bytes", vlen);
    if (vlen > SIZE_MAX - sizeof(mem_item) - klen) return qz__err(QZ_ENOMEM, "memory storage: value too large");

    mem_item *it = qz__malloc(sizeof *it + klen + vlen);
    if (!it) return qz__err(QZ_ENOMEM, "memory storage: out of memory for a %zu-byte value", vlen);
    atomic_init(&it->ref, 1);
    it->klen = klen;
    it->vlen = vlen;
    memcpy(it->data, key, klen);
    if (vlen) memcpy(it->data + klen, val, vlen);

    size_t depth = 0;
    mem_node *root = txn->work[table];
    int exists = tree_find(root, key, klen, &depth) != NULL;
    mem_pool p;
    int rc = pool_fill(&p, depth + 2);
    if (rc < 0) {
        qz__free(it);
        return rc;
    }
    if (exists) {
        txn->work[table] = tree_replace(root, it, &p);
    } else {
        mem_node *n = pool_take(&p);
        atomic_init(&n->ref, 1);
        n->prio = XXH3_64bits_withSeed(key, klen, m->seed);
        n->item = it;
        n->l = n->r = NULL;
        txn->work[table] = tree_insert(root, n, &p);
    }
    pool_drain(&p);
    return QZ_OK;
}

static size_t spine_len(const mem_node *n, int right)
{
    size_t d = 0;
    for (; n; n = right ? n->r : n->l) d++;
    return d;
}

static int mem_del(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *key, size_t klen)
{
    (void)s;
    QZ_CHECK(check_table(table));
    QZ_CHECK(check_key(key, klen));
    if (txn->flags & QZ_TXN_READONLY) return qz__err(QZ_EINVAL, "memory storage: del in a read-only transaction");
    size_t depth = 0;
    const mem_node *n = tree_find(txn->work[table], key, klen, &depth);
    if (!n) return QZ_ENOTFOUND;
    mem_pool p;
    QZ_CHECK(pool_fill(&p, depth + spine_len(n->l, 1) + spine_len(n->r, 0) + 1));
    txn->work[table] = tree_remove(txn->work[table], key, klen, &p);
    pool_drain(&p);
    return QZ_OK;
}

static int mem_scan(qz_storage *s, qz_storage_txn *txn, uint32_t table, const void *prefix, size_t plen,
                    qz_storage_scan_fn fn, void *user)
{
    (void)s;
    QZ_CHECK(check_table(table));
    if (!fn || (plen && !prefix)) return qz__err(QZ_EINVAL, "memory storage: bad scan() arguments");
    scan_ctx c = {prefix, plen, fn, user, 0};
    return scan_rec(txn_root(txn, table), &c);
}

static int mem_clear(qz_storage *s, qz_storage_txn *txn, uint32_t table)
{
    (void)s;
    QZ_CHECK(check_table(table));
    if (txn->flags & QZ_TXN_READONLY) return qz__err(QZ_EINVAL, "memory storage: clear in a read-only transaction");
    node_release(txn->work[table]);
    txn->work[table] = NULL;
    return QZ_OK;
}

static int mem_commit(qz_storage *s, qz_storage_txn *txn)
{
    mem_store *m = (mem_store *)s;
    if (txn->flags & QZ_TXN_READONLY) {
        version_release(txn->snap);
        qz__free(txn);
        return QZ_OK;
    }
    mem_version *v = qz__malloc(sizeof *v);
    if (!v) {
        for (int t = 0; t < QZ_TABLE_COUNT; t++) node_release(txn->work[t]);
        pthread_mutex_unlock(&m->wmu);
        qz__free(txn);
        return qz__err(QZ_ENOMEM, "memory storage: out of memory while committing");
    }
    atomic_init(&v->ref, 1);
    memcpy(v->root, txn->work, sizeof v->root);
    pthread_mutex_lock(&m->mu);
    mem_version *old = m->cur;
    m->cur = v;
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_unlock(&m->wmu);
    version_release(old);
    qz__free(txn);
    return QZ_OK;
}

static void mem_abort(qz_storage *s, qz_storage_txn *txn)
{
    mem_store *m = (mem_store *)s;
    if (!txn) return;
    if (txn->flags & QZ_TXN_READONLY) {
        version_release(txn->snap);
    } else {
        for (int t = 0; t < QZ_TABLE_COUNT; t++) node_release(txn->work[t]);
        pthread_mutex_unlock(&m->wmu);
    }
    qz__free(txn);
}

static int mem_sync(qz_storage *s)
{
    (void)s;
    return QZ_OK;
}

static void mem_close(qz_storage *s)
{
    mem_store *m = (mem_store *)s;
    if (!m) return;
    version_release(m->cur);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->wmu);
    qz__free(m);
}

int qz__storage_mem_open(qz_storage **out)
{
    if (!out) return qz__err(QZ_EINVAL, "memory storage: NULL out");
    *out = NULL;
    mem_store *m = qz__calloc(1, sizeof *m);
    mem_version *v = qz__calloc(1, sizeof *v);
    if (!m || !v) {
        qz__free(m);
        qz__free(v);
        return qz__err(QZ_ENOMEM, "memory storage: out of memory");
    }
    atomic_init(&v->ref, 1);
    m->cur = v;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->wmu, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    m->seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)m;

    qz_storage *s = &m->base;
    s->struct_size = (uint32_t)sizeof *s;
    s->flags = 0;
    s->user = m;
    s->begin = mem_begin;
    s->get = mem_get;
    s->put = mem_put;
    s->del = mem_del;
    s->scan = mem_scan;
    s->clear = mem_clear;
    s->commit = mem_commit;
    s->abort = mem_abort;
    s->sync = mem_sync;
    s->close = mem_close;
    *out = s;
    return QZ_OK;
}
