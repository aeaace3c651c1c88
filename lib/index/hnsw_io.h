/*
 * hnsw_io.h - graph snapshots in a storage backend (internal).
 *
 * Owns the GRAPH table's format. Callers: lib/api/persist.c only.
 */
#ifndef QZ_INDEX_HNSW_IO_H
#define QZ_INDEX_HNSW_IO_H

#include "index/hnsw.h"
#include "quartz/sys/storage.h"

/* Replace the GRAPH table with the structure of every LIVE node, in one
 * transaction. The caller makes sure no write runs and no node is DELETED
 * (repair first), so the snapshot is a consistent graph. */
int qz__hnsw_save(qz__hnsw *h, qz_storage *s);

/* Restore a snapshot into an empty index. Restored nodes are DELETED until
 * qz__hnsw_attach() gives them their vector; fn is called per node with its
 * label and slot (the caller fills its id map). *found = 0 when the table
 * holds no snapshot. QZ_ECORRUPT on any damaged or inconsistent record. */
typedef int (*qz__hnsw_node_fn)(uint64_t label, uint32_t slot, void *user);
int qz__hnsw_load(qz__hnsw *h, qz_storage *s, qz__hnsw_node_fn fn, void *user, int *found);

/* Give a restored node its stored-form vector and payload; it becomes LIVE. */
void qz__hnsw_attach(qz__hnsw *h, uint32_t slot, const void *vec, void *payload);

#endif
