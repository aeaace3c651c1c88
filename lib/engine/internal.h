/*
 * internal.h - functions shared by the files of lib/engine only.
 */
#ifndef QZ_ENGINE_INTERNAL_H
#define QZ_ENGINE_INTERNAL_H

#include "engine/engine.h"
#include "index/hnsw_io.h"

/* apply.c: the index's metadata blob (u32 length, then the bytes; NULL
 * when len is 0). */
int qz__engine_payload_new(const void *meta, size_t len, void **out);

/* load.c: rebuild the index from the graph snapshot and the VECTORS table. */
int qz__engine_load(qz_db *db);

/* open.c: open over a backend with an optional log; release(arg), if set,
 * frees what the caller's composition holds besides (a directory's lock):
 * called at close, or on failure, like st->close when `own`. */
int qz__engine_open_locked(qz_storage *st, int own, const char *log_path, void (*release)(void *), void *arg,
                           const qz__config *cfg, int persist_vectors, qz_db **out);

/* checkpoint.c: the checkpoint state (before load, which fills it). */
int qz__engine_ckpt_init(qz_db *db);
void qz__engine_ckpt_free(qz_db *db);
/* checkpoint.c: the graph snapshot through the db's checkpoint state. */
int qz__engine_graph_load(qz_db *db, qz__hnsw_node_fn fn, void *user, int *found);
/* The journal thread's tick: a time-based checkpoint. */
void qz__engine_tick(void *db);

/* options_record.c: META "options" (layout in persist/format.h). */
int qz__optrec_read(qz_storage *s, qz__config *stored, int *found);
int qz__optrec_write(qz_storage *s, const qz__config *c);
/* Merge the caller's config with the stored one (stored wins; conflicts
 * are QZ_EDIM / QZ_EINVAL). */
int qz__optrec_merge(qz__config *c, const qz__config *stored);

#endif
