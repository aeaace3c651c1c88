/*
 * idmap.h - user id (u64) -> slot (u32), sharded (internal).
 *
 * Each shard has two locks. `map` guards the table and is held for a probe
 * only. `write` orders writers of ids in the shard: the api layer holds it
 * for a whole insert/upsert/delete of an id, including the journal append,
 * so the log order of two writes to one id is their order in memory, while
 * readers (get, contains) never wait for an insertion in progress.
 */
#ifndef QZ_INDEX_IDMAP_H
#define QZ_INDEX_IDMAP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define QZ__IDMAP_SHARDS 256

typedef struct qz__idmap_entry {
    uint64_t key;
    uint32_t slot;
    uint32_t used; /* 0 empty, 1 full, 2 tombstone */
} qz__idmap_entry;

typedef struct qz__idmap_shard {
    pthread_mutex_t write;
    pthread_mutex_t map;
    qz__idmap_entry *e;
    size_t cap, count, tombs;
} qz__idmap_shard;

typedef struct qz__idmap {
    qz__idmap_shard shards[QZ__IDMAP_SHARDS];
} qz__idmap;

void qz__idmap_init(qz__idmap *m);
void qz__idmap_destroy(qz__idmap *m);
qz__idmap_shard *qz__idmap_shard_of(qz__idmap *m, uint64_t key);
/* 1 and *slot when present, 0 when absent. */
int qz__idmap_get(qz__idmap *m, uint64_t key, uint32_t *slot);
/* Insert or replace; QZ_OK or QZ_ENOMEM (then nothing changed). */
int qz__idmap_put(qz__idmap *m, uint64_t key, uint32_t slot);
/* 1 when removed, 0 when absent. */
int qz__idmap_del(qz__idmap *m, uint64_t key);
/* Make room so that `extra` more puts into the shard of each key cannot fail. */
int qz__idmap_reserve(qz__idmap *m, size_t total);
/* Make room for one more key in the shard of `key` (caller holds that
 * shard's `write` lock, so the room stays until its put). */
int qz__idmap_reserve_one(qz__idmap *m, uint64_t key);
size_t qz__idmap_count(qz__idmap *m);
size_t qz__idmap_memory(qz__idmap *m);
/* Visit every entry (takes each shard's map lock in turn). fn != 0 stops. */
int qz__idmap_foreach(qz__idmap *m, int (*fn)(uint64_t key, uint32_t slot, void *u), void *u);

#endif
