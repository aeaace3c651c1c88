/* open_dir_none.c - builds without LMDB (WebAssembly) have no directories. */
#include "engine/engine.h"
#include "util/error.h"

int qz__engine_open_dir(const char *path, const qz__config *cfg, qz_db **out)
{
    (void)path, (void)cfg;
    *out = NULL;
    return qz__err(QZ_EUNSUPPORTED,
                   "this build has no durable directories; open with path NULL for memory, or use qz_db_open_storage()");
}
