/* idmap.c - open addressing with linear probing and tombstones, per shard.
 *
 * Tables are sized exactly, not in powers of two: a key's home is the low
 * 32 bits of its hash scaled to the capacity (the top 8 bits pick the
 * shard), and tables fill to 3/4 before they grow by half. A bulk reserve
 * sizes each shard for its share at 3/4, so a 190,000-id index holds about
 * 21 bytes per id (it held 44 at the former load <= 1/2 in powers of two). */
#include "index/idmap.h"

#include "quartz.h"
#include "util/alloc.h"
#include "util/error.h"

static inline uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

void qz__idmap_init(qz__idmap *m)
{
    for (int i = 0; i < QZ__IDMAP_SHARDS; i++) {
        qz__idmap_shard *s = &m->shards[i];
        pthread_mutex_init(&s->write, NULL);
        pthread_mutex_init(&s->map, NULL);
        s->e = NULL;
        s->cap = s->count = s->tombs = 0;
    }
}

void qz__idmap_destroy(qz__idmap *m)
{
    for (int i = 0; i < QZ__IDMAP_SHARDS; i++) {
        qz__free(m->shards[i].e);
        pthread_mutex_destroy(&m->shards[i].write);
        pthread_mutex_destroy(&m->shards[i].map);
    }
}

/* Home of hash h in a table of cap entries, and the next probe after i. */
static inline size_t home(uint64_t h, size_t cap) { return (size_t)(((uint64_t)(uint32_t)h * cap) >> 32); }
static inline size_t next(size_t i, size_t cap) { return i + 1 == cap ? 0 : i + 1; }
/* The table needs to grow before it holds `n` entries (live and tombstones). */
static inline int over(const qz__idmap_shard *s, size_t n) { return n * 4 > s->cap * 3; }

qz__idmap_shard *qz__idmap_shard_of(qz__idmap *m, uint64_t key)
{
    return &m->shards[mix(key) >> 56];
}

static qz__idmap_entry *find(qz__idmap_shard *s, uint64_t key, uint64_t h)
{
    if (!s->cap) return NULL;
    for (size_t i = home(h, s->cap);; i = next(i, s->cap)) {
        qz__idmap_entry *e = &s->e[i];
        if (e->used == 0) return NULL;
        if (e->used == 1 && e->key == key) return e;
    }
}

/* Rebuild the shard's table with room for `need` entries at load <= 3/4. */
static int rehash(qz__idmap_shard *s, size_t need)
{
    size_t cap = need + need / 3 + 1;
    if (cap < 16) cap = 16;
    qz__idmap_entry *n = qz__calloc(cap, sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->e[i].used != 1) continue;
        size_t j = home(mix(s->e[i].key), cap);
        while (n[j].used) j = next(j, cap);
        n[j] = s->e[i];
    }
    qz__free(s->e);
    s->e = n;
    s->cap = cap;
    s->tombs = 0;
    return 0;
}

int qz__idmap_get(qz__idmap *m, uint64_t key, uint32_t *slot)
{
    uint64_t h = mix(key);
    qz__idmap_shard *s = &m->shards[h >> 56];
    pthread_mutex_lock(&s->map);
    qz__idmap_entry *e = find(s, key, h);
    if (e) *slot = e->slot;
    pthread_mutex_unlock(&s->map);
    return e != NULL;
}

int qz__idmap_put(qz__idmap *m, uint64_t key, uint32_t slot)
{
    uint64_t h = mix(key);
    qz__idmap_shard *s = &m->shards[h >> 56];
    pthread_mutex_lock(&s->map);
    qz__idmap_entry *e = find(s, key, h);
    if (e) {
        e->slot = slot;
        pthread_mutex_unlock(&s->map);
        return QZ_OK;
    }
    if (over(s, s->count + s->tombs + 1) && rehash(s, (s->count + 1) * 3 / 2) < 0) {
        pthread_mutex_unlock(&s->map);
        return qz__err(QZ_ENOMEM, "out of memory growing the id map");
    }
    size_t i = home(h, s->cap);
    while (s->e[i].used == 1) i = next(i, s->cap);
    if (s->e[i].used == 2) s->tombs--;
    s->e[i] = (qz__idmap_entry){key, slot, 1};
    s->count++;
    pthread_mutex_unlock(&s->map);
    return QZ_OK;
}

int qz__idmap_del(qz__idmap *m, uint64_t key)
{
    uint64_t h = mix(key);
    qz__idmap_shard *s = &m->shards[h >> 56];
    pthread_mutex_lock(&s->map);
    qz__idmap_entry *e = find(s, key, h);
    if (e) {
        e->used = 2;
        s->count--;
        s->tombs++;
    }
    pthread_mutex_unlock(&s->map);
    return e != NULL;
}

int qz__idmap_reserve(qz__idmap *m, size_t total)
{
    size_t per = total / QZ__IDMAP_SHARDS + total / (QZ__IDMAP_SHARDS * 4) + 16;
    for (int i = 0; i < QZ__IDMAP_SHARDS; i++) {
        qz__idmap_shard *s = &m->shards[i];
        pthread_mutex_lock(&s->map);
        int bad = over(s, s->count + s->tombs + per) && rehash(s, s->count + per) < 0;
        pthread_mutex_unlock(&s->map);
        if (bad) return qz__err(QZ_ENOMEM, "out of memory reserving the id map for %zu ids", total);
    }
    return QZ_OK;
}

int qz__idmap_reserve_one(qz__idmap *m, uint64_t key)
{
    qz__idmap_shard *s = qz__idmap_shard_of(m, key);
    pthread_mutex_lock(&s->map);
    int bad = over(s, s->count + s->tombs + 1) && rehash(s, (s->count + 1) * 3 / 2) < 0;
    pthread_mutex_unlock(&s->map);
    return bad ? qz__err(QZ_ENOMEM, "out of memory growing the id map") : QZ_OK;
}

size_t qz__idmap_count(qz__idmap *m)
{
    size_t n = 0;
    for (int i = 0; i < QZ__IDMAP_SHARDS; i++) {
        pthread_mutex_lock(&m->shards[i].map);
        n += m->shards[i].count;
        pthread_mutex_unlock(&m->shards[i].map);
    }
    return n;
}

size_t qz__idmap_memory(qz__idmap *m)
{
    size_t n = sizeof *m;
    for (int i = 0; i < QZ__IDMAP_SHARDS; i++) {
        pthread_mutex_lock(&m->shards[i].map);
        n += m->shards[i].cap * sizeof(qz__idmap_entry);
        pthread_mutex_unlock(&m->shards[i].map);
    }
    return n;
}

int qz__idmap_foreach(qz__idmap *m, int (*fn)(uint64_t key, uint32_t slot, void *u), void *u)
{
    for (int i = 0; i < QZ__IDMAP_SHARDS; i++) {
        qz__idmap_shard *s = &m->shards[i];
        pthread_mutex_lock(&s->map);
        for (size_t j = 0; j < s->cap; j++) {
            if (s->e[j].used != 1) continue;
            int rc = fn(s->e[j].key, s->e[j].slot, u);
            if (rc) {
                pthread_mutex_unlock(&s->map);
                return rc;
            }
        }
        pthread_mutex_unlock(&s->map);
    }
    return 0;
}
