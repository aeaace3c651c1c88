/*
 * hnsw_io.h - graph snapshots (checkpoints) in a storage backend (internal).
 *
 * Owns the GRAPH table's format (defined in persist/format.h). Callers:
 * lib/api/persist.c and the tests.
 */
#ifndef QZ_INDEX_HNSW_IO_H
#define QZ_INDEX_HNSW_IO_H

#include <stdint.h>

#include "index/hnsw.h"
#include "quartz/sys/storage.h"

/* What one save did. */
typedef struct qz__graph_save_stats {
    uint32_t chunks;          /* chunk positions examined: ceil(high_water / QZ__GRAPH_CHUNK) */
    uint32_t chunks_written;  /* chunk records put */
    uint32_t chunks_skipped;  /* non-empty chunks already stored identically */
    uint32_t chunks_deleted;  /* records removed because their chunk became empty */
    uint32_t header_written;  /* 1 when the header record was put */
    uint32_t full;            /* 1 when the table was cleared and rewritten whole */
    uint64_t nodes;           /* nodes in the snapshot (LIVE and DELETED) */
    uint64_t deleted_nodes;   /* of which DELETED */
    uint64_t bytes_written;   /* value bytes put (chunks and header) */
} qz__graph_save_stats;

/* Per-chunk state of what is stored in one backend's GRAPH table: the
 * checksum of every chunk record and the header bytes, as the last save or
 * load through this object saw them. Owned by the caller; use it with one
 * index and one backend (it notices a different backend and then rewrites
 * everything). Not thread-safe: one save or load at a time. */
typedef struct qz__graph_ckpt qz__graph_ckpt;

int qz__graph_ckpt_new(qz__graph_ckpt **out);
void qz__graph_ckpt_free(qz__graph_ckpt *c);
/* Forget what is stored: the next save through c rewrites the whole table. */
void qz__graph_ckpt_reset(qz__graph_ckpt *c);

/* Write a checkpoint of the graph's structure to the GRAPH table, in ONE
 * backend transaction, so the table always holds one consistent graph.
 *
 * With ck NULL, or a ck that knows nothing yet (new, reset, last save
 * failed, other backend), the table is cleared and every non-empty chunk is
 * written. Otherwise each chunk is serialised and compared with what the
 * previous save or load through ck stored: only changed chunks are put,
 * records of chunks that became empty are removed, and the header is put
 * when it changed. When nothing changed, no transaction is committed.
 *
 * LIVE and DELETED nodes are saved (DELETED ones marked so), so no repair is
 * needed first. INSERTING and FREE slots are treated as absent, and links to
 * absent slots are left out of the saved lists; if the entry point is absent
 * the saved node of the highest level stands in. So a save is a consistent
 * graph even when a write runs, but it is only an exact picture of the
 * index when the caller keeps writers out (lib/api holds `writers`
 * exclusive). Takes `resize` shared while it reads the graph.
 *
 * st may be NULL. On failure ck forgets what is stored (next save is full). */
int qz__hnsw_save(qz__hnsw *h, qz_storage *s, qz__graph_ckpt *ck, qz__graph_save_stats *st);

/* Restore a snapshot into an empty index. Every restored node is DELETED
 * until qz__hnsw_attach() gives it its vector; fn is called, with its label
 * and slot, for each node that was LIVE when saved (the caller fills its id
 * map and pairs it with its VECTORS record). Nodes saved DELETED are
 * restored as waypoints (LIVE nodes may link to them) but fn is not called
 * for them: they stay DELETED, with a zeroed vector, for the caller's
 * repair. *found = 0 when the table holds no snapshot. Reads version 1 and
 * 2 snapshots. QZ_ECORRUPT, naming the chunk, on any damaged or
 * inconsistent record. When ck is not NULL it is filled with the stored
 * chunk checksums (version 2) so that the next save writes only what
 * changed since; a version 1 snapshot leaves ck empty (full rewrite). */
typedef int (*qz__hnsw_node_fn)(uint64_t label, uint32_t slot, void *user);
int qz__hnsw_load(qz__hnsw *h, qz_storage *s, qz__graph_ckpt *ck, qz__hnsw_node_fn fn, void *user, int *found);

/* Give a restored node its stored-form vector and payload; it becomes LIVE. */
void qz__hnsw_attach(qz__hnsw *h, uint32_t slot, const void *vec, void *payload);

#endif
