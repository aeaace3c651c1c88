/*
 * api.h - helpers of the thin public layer (internal to lib/api).
 *
 * lib/api is the only code that knows the public ABI: it checks arguments,
 * turns public structs into the engine's own (qz__config), calls the engine
 * (lib/engine/engine.h) and leaves the engine's error codes and messages as
 * they are. It holds no state of its own.
 */
#ifndef QZ_API_API_H
#define QZ_API_API_H

#include "engine/engine.h"
#include "quartz.h"
#include "util/error.h"

/* Every public entry point starts with this: qz_errmsg() then describes the
 * last call only. */
#define QZ__API_ENTER() qz__err_clear()

/* options.c: read a caller's struct of any released size into ours. */
int qz__options_to_config(const qz_open_options *user, qz__config *out);
int qz__search_params_read(const qz_search_params *user, qz_search_params *out);

/* checks.c: argument checks shared by writes, searches, kv and transactions. */
int qz__check_db(const qz_db *db, int write);
int qz__check_vector(const qz_db *db, const float *v, size_t dims, const char *what);
int qz__check_key(const void *key, size_t klen);
/* A byte range (metadata, value): at most QZ_MAX_METADATA, NULL only if empty. */
int qz__check_bytes(const void *p, size_t len, const char *what);

#endif
