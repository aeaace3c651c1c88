/*
 * registry.c - the named indexes. Each index is a database directory
 * DATA/indexes/NAME that records its own dimension, metric, M and
 * ef_construction (the engine stores them); the default search ef is kept
 * in the index's key-value store under QD_KV_EF_SEARCH. The list of indexes
 * is therefore a scan of DATA/indexes at start, and nothing else needs to
 * survive a restart.
 *
 * Locking: one rwlock over the table. A request takes a reference under the
 * read lock (qd_index_acquire) and drops it when done. Create and drop hold
 * the write lock; drop waits (holding it) until the references of the
 * dropped index are gone, then closes it and removes its directory, so no
 * request ever uses a closed handle.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "quartzd.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static qd_index **items;
static size_t nitems, capitems;
static char *root; /* DATA/indexes */
static uint32_t durability;

bool qd_valid_index_name(const char *s, size_t n)
{
    if (n < 1 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n >= sizeof tmp) return -1;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -1;
    return 0;
}

static int find(const char *name)
{
    for (size_t i = 0; i < nitems; i++)
        if (strcmp(items[i]->name, name) == 0) return (int)i;
    return -1;
}

static int insert_sorted(qd_index *ix)
{
    if (nitems == capitems) {
        size_t cap = capitems ? capitems * 2 : 16;
        qd_index **v = realloc(items, cap * sizeof *v);
        if (!v) return -1;
        items = v;
        capitems = cap;
    }
    size_t at = 0;
    while (at < nitems && strcmp(items[at]->name, ix->name) < 0) at++;
    memmove(items + at + 1, items + at, (nitems - at) * sizeof *items);
    items[at] = ix;
    nitems++;
    return 0;
}

/* Open (create when dim > 0) the index NAME. */
static int open_index(const char *name, uint32_t dim, uint32_t metric, uint32_t dtype, uint32_t M, uint32_t efc, uint32_t efs,
                      qd_index **out, char *err, size_t errcap)
{
    qd_index *ix = calloc(1, sizeof *ix);
    if (!ix) {
        snprintf(err, errcap, "out of memory");
        return QZ_ENOMEM;
    }
    snprintf(ix->name, sizeof ix->name, "%s", name);
    ix->path = join(root, name);
    qz_open_options o = QZ_OPEN_OPTIONS_INIT;
    o.durability = durability;
    if (dim) {
        o.dimensions = dim;
        o.metric = metric;
        o.dtype = dtype;
        o.M = M;
        o.ef_construction = efc;
        o.ef_search = efs;
    } else {
        o.flags = QZ_OPEN_EXISTING;
    }
    int rc = ix->path ? qz_db_open(ix->path, &o, &ix->db) : QZ_ENOMEM;
    if (rc < 0) {
        snprintf(err, errcap, "index %s: %s", name, ix->path ? qz_errmsg() : "out of memory");
        free(ix->path);
        free(ix);
        return rc;
    }
    qz_stats st = {.struct_size = sizeof st};
    qz_db_stats(ix->db, &st);
    ix->dim = st.dimensions;
    ix->metric = st.metric;
    atomic_store(&ix->ef_search, st.ef_search);
    if (dim && efs) {
        char v[16];
        int n = snprintf(v, sizeof v, "%u", efs);
        rc = qz_kv_put(ix->db, QD_KV_EF_SEARCH, strlen(QD_KV_EF_SEARCH), v, (size_t)n);
    } else if (!dim) {
        char v[16];
        size_t n = 0;
        if (qz_kv_get(ix->db, QD_KV_EF_SEARCH, strlen(QD_KV_EF_SEARCH), v, sizeof v - 1, &n) == QZ_OK) {
            v[n] = 0;
            if (qz_db_set_param(ix->db, QZ_PARAM_EF_SEARCH, atoll(v)) == QZ_OK)
                atomic_store(&ix->ef_search, (unsigned)atoll(v));
        }
    }
    *out = ix;
    return QZ_OK;
}

int qd_registry_open(const char *data_dir, uint32_t dur, char *err, size_t errcap)
{
    durability = dur;
    root = join(data_dir, "indexes");
    if (!root || mkdir_p(root) < 0) {
        snprintf(err, errcap, "cannot create %s/indexes: %s", data_dir, strerror(errno));
        return -1;
    }
    DIR *d = opendir(root);
    if (!d) {
        snprintf(err, errcap, "cannot read %s: %s", root, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (!qd_valid_index_name(e->d_name, strlen(e->d_name))) continue;
        qd_index *ix;
        if (open_index(e->d_name, 0, 0, 0, 0, 0, 0, &ix, err, errcap) < 0 || insert_sorted(ix) < 0) rc = -1;
    }
    closedir(d);
    if (rc == 0 && find("default") < 0) {
        qd_index *ix;
        if (open_index("default", 384, QZ_METRIC_COSINE, 0, 0, 0, 0, &ix, err, errcap) < 0 || insert_sorted(ix) < 0)
            rc = -1;
    }
    return rc;
}

qd_index *qd_index_acquire(const char *name)
{
    qd_index *ix = NULL;
    pthread_rwlock_rdlock(&lock);
    int i = find(name);
    if (i >= 0) {
        ix = items[i];
        atomic_fetch_add(&ix->refs, 1);
    }
    pthread_rwlock_unlock(&lock);
    return ix;
}

void qd_index_release(qd_index *ix)
{
    if (ix) atomic_fetch_sub(&ix->refs, 1);
}

int qd_index_create(const char *name, uint32_t dim, uint32_t metric, uint32_t dtype, uint32_t M, uint32_t efc, uint32_t efs,
                    const char **code, char *err, size_t errcap)
{
    pthread_rwlock_wrlock(&lock);
    int status = 0;
    struct stat sb;
    char *path = join(root, name);
    if (find(name) >= 0 || (path && stat(path, &sb) == 0)) {
        *code = "already_exists";
        snprintf(err, errcap, "index %s already exists", name);
        status = 409;
    } else {
        qd_index *ix;
        int rc = open_index(name, dim, metric, dtype, M, efc, efs, &ix, err, errcap);
        if (rc == QZ_ERANGE) {
            *code = "out_of_range";
            status = 422;
        } else if (rc == QZ_EINVAL || rc == QZ_EUNSUPPORTED) { /* EUNSUPPORTED: a dtype under hamming */
            *code = "invalid_argument";
            status = 400;
        } else if (rc < 0) {
            *code = "unavailable";
            status = 503;
        } else if (insert_sorted(ix) < 0) {
            qz_db_close(ix->db);
            *code = "unavailable";
            snprintf(err, errcap, "out of memory");
            status = 503;
        }
        if (rc < 0 && path) { /* a failed create leaves no directory behind */
            char *p = path;
            path = NULL;
            rmdir(p);
            free(p);
        }
    }
    free(path);
    pthread_rwlock_unlock(&lock);
    return status;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

int qd_index_drop(const char *name, const char **code, char *err, size_t errcap)
{
    if (strcmp(name, "default") == 0) {
        *code = "conflict";
        snprintf(err, errcap, "the default index cannot be dropped");
        return 409;
    }
    pthread_rwlock_wrlock(&lock);
    int i = find(name);
    if (i < 0) {
        pthread_rwlock_unlock(&lock);
        *code = "not_found";
        snprintf(err, errcap, "no index named %s", name);
        return 404;
    }
    qd_index *ix = items[i];
    memmove(items + i, items + i + 1, (nitems - (size_t)i - 1) * sizeof *items);
    nitems--;
    /* Requests that acquired it before we took the lock finish first. */
    while (atomic_load(&ix->refs) > 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    qz_db_close(ix->db);
    int rc = nftw(ix->path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    pthread_rwlock_unlock(&lock);
    if (rc != 0) fprintf(stderr, "{\"level\":\"error\",\"msg\":\"dropping index %s: cannot remove its directory\"}\n", name);
    free(ix->path);
    free(ix);
    return 0;
}

size_t qd_index_names(char (**names)[65])
{
    pthread_rwlock_rdlock(&lock);
    size_t n = nitems;
    *names = malloc((n ? n : 1) * sizeof **names);
    if (!*names) n = 0;
    for (size_t i = 0; i < n; i++) memcpy((*names)[i], items[i]->name, 65);
    pthread_rwlock_unlock(&lock);
    return n;
}

size_t qd_index_count(void)
{
    pthread_rwlock_rdlock(&lock);
    size_t n = nitems;
    pthread_rwlock_unlock(&lock);
    return n;
}

const char *qd_dtype_name(uint32_t dtype)
{
    switch (dtype) {
    case QZ_DTYPE_F32: return "f32";
    case QZ_DTYPE_F16: return "f16";
    case QZ_DTYPE_INT8: return "int8";
    case QZ_DTYPE_BINARY: return "binary";
    default: return NULL;
    }
}

void qd_index_describe(qd_index *ix, jbuf *b)
{
    qz_stats st = {.struct_size = sizeof st};
    qz_db_stats(ix->db, &st);
    jb_lit(b, "{\"name\":");
    jb_cstr(b, ix->name);
    jb_lit(b, ",\"dimension\":");
    jb_u64(b, st.dimensions);
    jb_lit(b, ",\"metric\":");
    jb_cstr(b, qz_metric_name(st.metric) ? qz_metric_name(st.metric) : "unknown");
    jb_lit(b, ",\"dtype\":");
    jb_cstr(b, qd_dtype_name(st.dtype) ? qd_dtype_name(st.dtype) : "unknown");
    jb_lit(b, ",\"M\":");
    jb_u64(b, st.M);
    jb_lit(b, ",\"ef_construction\":");
    jb_u64(b, st.ef_construction);
    jb_lit(b, ",\"ef_search\":");
    jb_u64(b, atomic_load(&ix->ef_search));
    jb_lit(b, ",\"count\":");
    jb_u64(b, st.count);
    jb_lit(b, ",\"deleted\":");
    jb_u64(b, st.deleted);
    jb_char(b, '}');
}

static _Thread_local uint64_t du_total;
static int du_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (flag == FTW_F) du_total += (uint64_t)sb->st_blocks * 512u;
    return 0;
}

uint64_t qd_dir_bytes(const char *path)
{
    du_total = 0;
    nftw(path, du_one, 16, FTW_PHYS);
    return du_total;
}

int qd_registry_close_all(void)
{
    int bad = 0;
    pthread_rwlock_wrlock(&lock);
    for (size_t i = 0; i < nitems; i++) {
        qd_index *ix = items[i];
        int rc = qz_db_flush(ix->db);
        if (rc < 0) fprintf(stderr, "{\"level\":\"error\",\"msg\":\"flush of index %s failed\"}\n", ix->name);
        if (qz_db_close(ix->db) < 0 || rc < 0) bad = 1;
        free(ix->path);
        free(ix);
    }
    nitems = 0;
    pthread_rwlock_unlock(&lock);
    return bad ? -1 : 0;
}
