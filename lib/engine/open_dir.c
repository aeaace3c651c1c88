/*
 * open_dir.c - a database directory: one composition of the engine, built
 * only with LMDB (open_dir_none.c replaces it otherwise).
 *
 *   <dir>/LOCK        the writer's lock (os/dirlock.c)
 *   <dir>/data.mdb,   the LMDB backend (storage/storage_lmdb.c, the only
 *   <dir>/lock.mdb    code that knows these names)
 *   <dir>/quartz.log  the journal's log file (wal/)
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/internal.h"
#include "os/dirlock.h"
#include "persist/format.h"
#include "storage/storage.h"
#include "util/alloc.h"
#include "util/error.h"

static void release_lock(void *l) { qz__dirlock_release(l); }

int qz__engine_open_dir(const char *path, const qz__config *cfg, qz_db **out)
{
    *out = NULL;
    int readonly = (cfg->flags & QZ__CFG_READONLY) != 0;
    if (!*path) return qz__err(QZ_EINVAL, "path is empty");
    char *log = qz__strdup2(path, "/quartz.log");
    if (!log) return qz__err(QZ_ENOMEM, "out of memory opening %s", path);
    int rc = QZ_OK;
    if (!qz__storage_lmdb_exists(path)) {
        /* A log beside a missing or empty data.mdb: the database was there
         * (a new database's log is made after LMDB wrote data.mdb's meta
         * pages) and lost its main file. That is damage to report, not a
         * directory to start afresh in (its data would be silently gone),
         * whatever options came with the open. */
        struct stat ls;
        qz__config check = *cfg;
        if (stat(log, &ls) == 0 && S_ISREG(ls.st_mode) && ls.st_size >= (off_t)QZ__WAL_HEADER_SIZE_V1)
            rc = qz__err(QZ_ECORRUPT, "%s/data.mdb is missing or empty, but %s/quartz.log is there: the "
                         "directory held a database and is damaged", path, path);
        else if (readonly || (cfg->flags & QZ__CFG_EXISTING))
            rc = qz__err(QZ_ENOTFOUND, "%s holds no database", path);
        else /* everything a new database needs, checked before anything is created on disk */
            rc = qz__config_resolve(&check, 0);
        if (rc < 0) {
            qz__free(log);
            return rc;
        }
    }
    qz__dirlock *lock = NULL;
    if (!readonly) rc = qz__dirlock_take(path, 1, &lock);
    qz_storage *st = NULL;
    if (rc == QZ_OK) rc = qz__storage_lmdb_open(path, readonly ? QZ__LMDB_READONLY : 0, &st);
    if (rc < 0) {
        qz__dirlock_release(lock);
        qz__free(log);
        return rc;
    }
    rc = qz__engine_open_locked(st, 1, log, lock ? release_lock : NULL, lock, cfg, 1, out);
    qz__free(log);
    return rc;
}
