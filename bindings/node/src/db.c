/*
 * db.c - the Database object: open (sync and Promise), close, flush,
 * compact, check, stats, run-time parameters, and the class definition
 * (write.c, search.c and kv.c supply the other methods).
 *
 * Lifetime: the JS object owns the qz_db. close() frees it (and flushes);
 * an object collected without close() is closed by its finalizer. Calls on
 * a closed Database throw QuartzError QZ_EINVAL "database is closed", as the
 * C library answers a NULL handle; close() itself may be repeated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qzn.h"

/* ---- this ---- */

static qzn_db *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, napi_value *self)
{
    napi_value me;
    void *p = NULL;
    size_t zero = 0;
    if (napi_get_cb_info(env, info, argc ? argc : &zero, argv, &me, NULL) != napi_ok) return NULL;
    if (napi_unwrap(env, me, &p) != napi_ok || !p) {
        qzn_throw_type(env, "this is not a Database");
        return NULL;
    }
    if (self) *self = me;
    return p;
}

qzn_db *qzn_this_open(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, napi_value *self)
{
    qzn_db *h = unwrap(env, info, argc, argv, self);
    if (h && !h->db) {
        qzn_throw_msg(env, QZ_EINVAL, "database is closed");
        return NULL;
    }
    return h;
}

static napi_value undefined(napi_env env)
{
    napi_value u;
    napi_get_undefined(env, &u);
    return u;
}

/* ---- options ---- */

typedef struct open_args {
    char *path; /* NULL: in memory */
    qz_open_options o;
} open_args;

static int name_index(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

static int get_u32(napi_env env, napi_value opts, const char *name, uint32_t *out)
{
    napi_value v;
    int has;
    char what[64];
    if (qzn_get_prop(env, opts, name, &v, &has)) return -1;
    if (!has) return 0;
    snprintf(what, sizeof what, "options.%s", name);
    uint64_t x;
    if (qzn_get_uint(env, v, what, UINT32_MAX, &x)) return -1;
    *out = (uint32_t)x;
    return 0;
}

static int get_bool(napi_env env, napi_value opts, const char *name, int *out)
{
    napi_value v;
    int has;
    *out = 0;
    if (qzn_get_prop(env, opts, name, &v, &has)) return -1;
    if (!has) return 0;
    bool b;
    if (napi_get_value_bool(env, v, &b) != napi_ok) return qzn_throw_type(env, "options.%s must be a boolean", name), -1;
    *out = b;
    return 0;
}

static int get_name(napi_env env, napi_value opts, const char *name, const char *const *names, uint32_t first,
                    uint32_t *out)
{
    napi_value v;
    int has;
    if (qzn_get_prop(env, opts, name, &v, &has)) return -1;
    if (!has) return 0;
    char buf[32];
    size_t n;
    if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &n) != napi_ok)
        return qzn_throw_type(env, "options.%s must be a string", name), -1;
    int i = name_index(buf, names);
    if (i < 0) {
        char list[128] = "";
        for (int j = 0; names[j]; j++) {
            strcat(list, j ? ", " : "");
            strcat(list, names[j]);
        }
        return qzn_throw_msg(env, QZ_EINVAL, "options.%s is '%s'; use one of %s", name, buf, list), -1;
    }
    *out = first + (uint32_t)i;
    return 0;
}

static const char *const metric_names[] = {"cosine", "l2", "ip", "hamming", NULL};
static const char *const durability_names[] = {"sync", "batched", "none", NULL};
static const char *const dtype_names[] = {"f32", "f16", "int8", "binary", NULL};
static const char *const originals_names[] = {"memory", "storage", NULL};

/* (path?, options?) -> open_args. A first argument that is an object is the options (in memory). */
static int parse_open(napi_env env, size_t argc, napi_value *argv, open_args *a)
{
    static const char *const known[] = {"dim", "dimensions", "metric", "M", "efConstruction", "efSearch",
                                        "capacity", "durability", "batchWindowMs", "threads", "seed",
                                        "readonly", "existing", "dtype", "originals", NULL};
    memset(a, 0, sizeof *a);
    qz_open_options_init(&a->o, sizeof a->o);
    napi_value pathv = argc > 0 ? argv[0] : NULL, opts = argc > 1 ? argv[1] : NULL;
    napi_valuetype t = napi_undefined;
    if (pathv) napi_typeof(env, pathv, &t);
    if (t == napi_object && argc < 2) {
        opts = pathv;
        pathv = NULL;
        t = napi_undefined;
    }
    if (t == napi_string) {
        size_t n;
        napi_get_value_string_utf8(env, pathv, NULL, 0, &n);
        if (n == 0) return qzn_throw_msg(env, QZ_EINVAL, "path is empty; pass null or undefined for an in-memory database"), -1;
        a->path = malloc(n + 1);
        if (!a->path) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory"), -1;
        napi_get_value_string_utf8(env, pathv, a->path, n + 1, &n);
        if (strlen(a->path) != n) return qzn_throw_msg(env, QZ_EINVAL, "path contains a NUL character"), -1;
    } else if (t != napi_undefined && t != napi_null) {
        return qzn_throw_type(env, "path must be a string, null or undefined"), -1;
    }
    int present;
    if (qzn_get_opts(env, opts, "options", &present)) return -1;
    if (!present) return 0;
    if (qzn_check_keys(env, opts, "open options", known)) return -1;
    uint32_t dim = 0, dims = 0, cap = 0, originals = 0;
    int ro, ex;
    if (get_u32(env, opts, "dim", &dim) || get_u32(env, opts, "dimensions", &dims)) return -1;
    if (dim && dims && dim != dims) return qzn_throw_msg(env, QZ_EINVAL, "options.dim %u and options.dimensions %u differ", dim, dims), -1;
    a->o.dimensions = dim ? dim : dims;
    if (get_name(env, opts, "metric", metric_names, QZ_METRIC_COSINE, &a->o.metric) ||
        get_name(env, opts, "durability", durability_names, QZ_DURABILITY_SYNC, &a->o.durability) ||
        get_u32(env, opts, "M", &a->o.M) || get_u32(env, opts, "efConstruction", &a->o.ef_construction) ||
        get_u32(env, opts, "efSearch", &a->o.ef_search) || get_u32(env, opts, "capacity", &cap) ||
        get_u32(env, opts, "batchWindowMs", &a->o.batch_window_ms) || get_u32(env, opts, "threads", &a->o.threads) ||
        get_bool(env, opts, "readonly", &ro) || get_bool(env, opts, "existing", &ex) ||
        get_name(env, opts, "dtype", dtype_names, QZ_DTYPE_F32, &a->o.dtype) ||
        get_name(env, opts, "originals", originals_names, 0, &originals))
        return -1;
    a->o.initial_capacity = cap;
    a->o.flags = (ro ? QZ_OPEN_READONLY : 0) | (ex ? QZ_OPEN_EXISTING : 0) |
                 (originals ? QZ_OPEN_ORIGINALS_IN_STORAGE : 0);
    napi_value v;
    int has;
    if (qzn_get_prop(env, opts, "seed", &v, &has)) return -1;
    if (has && qzn_get_id(env, v, "options.seed", &a->o.seed)) return -1;
    return 0;
}

/* ---- construction ---- */

static void finalize(napi_env env, void *data, void *hint)
{
    (void)env;
    (void)hint;
    qzn_db *h = data;
    if (h->db) qz_db_close(h->db); /* never closed by the program: flush what we can */
    free(h);
}

/* Wrap an open qz_db into @p self. On failure the qz_db is left to the caller. */
static int adopt(napi_env env, napi_value self, qz_db *db)
{
    qzn_db *h = calloc(1, sizeof *h);
    if (!h) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory"), -1;
    qz_stats st = {.struct_size = sizeof st};
    qz_db_stats(db, &st);
    h->db = db;
    h->dims = st.dimensions;
    h->metric = st.metric;
    if (napi_wrap(env, self, h, finalize, NULL, NULL) != napi_ok) {
        free(h);
        return qzn_throw_napi(env, napi_generic_failure), -1;
    }
    return 0;
}

static napi_value construct(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2], self, target;
    QZN_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
    QZN_CALL(env, napi_get_new_target(env, info, &target));
    if (!target) return qzn_throw_type(env, "Class constructor Database cannot be invoked without 'new'");
    napi_valuetype t = napi_undefined;
    if (argc > 0) napi_typeof(env, argv[0], &t);
    if (t == napi_external) { /* from Database.open(): adopt the handle opened on the pool */
        void *p;
        napi_get_value_external(env, argv[0], &p);
        qz_db **slot = p;
        if (adopt(env, self, *slot)) return NULL;
        *slot = NULL;
        return self;
    }
    open_args a;
    if (parse_open(env, argc, argv, &a)) {
        free(a.path);
        return NULL;
    }
    qz_db *db = NULL;
    int rc = qz_db_open(a.path, &a.o, &db);
    free(a.path);
    if (rc < 0) return qzn_throw_status(env, rc);
    if (adopt(env, self, db)) {
        qz_db_close(db);
        return NULL;
    }
    return self;
}

/* Database.open(path?, options?) -> Promise<Database>: the open (which may
 * load and re-insert a large directory) runs on the pool. */
typedef struct open_job {
    qzn_job job;
    open_args a;
    qz_db *db;
} open_job;

static int open_execute(qzn_job *job)
{
    open_job *j = (open_job *)job;
    return qz_db_open(j->a.path, &j->a.o, &j->db);
}

static napi_value open_resolve(napi_env env, qzn_job *job)
{
    open_job *j = (open_job *)job;
    napi_value ext, ctor, obj;
    qzn_state *s = qzn_state_get(env);
    QZN_CALL(env, napi_create_external(env, &j->db, NULL, NULL, &ext));
    QZN_CALL(env, napi_get_reference_value(env, s->db_ctor, &ctor));
    if (napi_new_instance(env, ctor, 1, &ext, &obj) != napi_ok) return NULL;
    return obj;
}

static void open_release(qzn_job *job)
{
    open_job *j = (open_job *)job;
    if (j->db) qz_db_close(j->db); /* not adopted (failure after the open) */
    free(j->a.path);
}

static napi_value db_open_async(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2];
    QZN_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    open_job *j = calloc(1, sizeof *j);
    if (!j) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory");
    if (parse_open(env, argc, argv, &j->a)) {
        free(j->a.path);
        free(j);
        return NULL;
    }
    j->job.execute = open_execute;
    j->job.resolve = open_resolve;
    j->job.release = open_release;
    return qzn_job_queue(env, &j->job, "quartz.open", NULL, NULL);
}

/* ---- close ---- */

static napi_value db_close(napi_env env, napi_callback_info info)
{
    qzn_db *h = unwrap(env, info, NULL, NULL, NULL);
    if (!h) return NULL;
    if (!h->db) return undefined(env);
    if (h->pending)
        return qzn_throw_msg(env, QZ_EBUSY, "%u asynchronous call(s) still running on this database; await them first",
                             h->pending);
    qz_db *db = h->db;
    h->db = NULL;
    int rc = qz_db_close(db); /* frees the handle even when it fails */
    if (rc < 0) return qzn_throw_status(env, rc);
    return undefined(env);
}

typedef struct close_job {
    qzn_job job;
    qz_db *db;
} close_job;

static int close_execute(qzn_job *job)
{
    close_job *j = (close_job *)job;
    int rc = qz_db_close(j->db);
    j->db = NULL;
    return rc;
}

static napi_value rejected(napi_env env, napi_value err)
{
    napi_deferred d;
    napi_value p;
    QZN_CALL(env, napi_create_promise(env, &d, &p));
    napi_reject_deferred(env, d, err);
    return p;
}

static napi_value resolved(napi_env env)
{
    napi_deferred d;
    napi_value p;
    QZN_CALL(env, napi_create_promise(env, &d, &p));
    napi_resolve_deferred(env, d, undefined(env));
    return p;
}

static napi_value db_close_async(napi_env env, napi_callback_info info)
{
    napi_value self;
    qzn_db *h = unwrap(env, info, NULL, NULL, &self);
    if (!h) return NULL;
    if (!h->db) return resolved(env);
    if (h->pending) {
        char msg[128];
        snprintf(msg, sizeof msg, "%u asynchronous call(s) still running on this database; await them first",
                 h->pending);
        return rejected(env, qzn_error_new(env, QZ_EBUSY, msg));
    }
    close_job *j = calloc(1, sizeof *j);
    if (!j) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory");
    j->db = h->db;
    j->job.execute = close_execute;
    napi_value p = qzn_job_queue(env, &j->job, "quartz.close", self, NULL);
    if (p) h->db = NULL; /* closed from JS's point of view at once */
    return p;
}

/* ---- flush, compact, check, stats, params ---- */

static napi_value simple(napi_env env, napi_callback_info info, int (*fn)(qz_db *))
{
    qzn_db *h = qzn_this_open(env, info, NULL, NULL, NULL);
    if (!h) return NULL;
    int rc = fn(h->db);
    if (rc < 0) return qzn_throw_status(env, rc);
    return undefined(env);
}

static napi_value db_flush(napi_env env, napi_callback_info info) { return simple(env, info, qz_db_flush); }
static napi_value db_compact(napi_env env, napi_callback_info info) { return simple(env, info, qz_db_compact); }
static napi_value db_check(napi_env env, napi_callback_info info) { return simple(env, info, qz_db_check); }

typedef struct flush_job {
    qzn_job job;
} flush_job;

static int flush_execute(qzn_job *job) { return qz_db_flush(job->h->db); }

static napi_value db_flush_async(napi_env env, napi_callback_info info)
{
    napi_value self;
    qzn_db *h = qzn_this_open(env, info, NULL, NULL, &self);
    if (!h) return NULL;
    flush_job *j = calloc(1, sizeof *j);
    if (!j) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory");
    j->job.execute = flush_execute;
    return qzn_job_queue(env, &j->job, "quartz.flush", self, h);
}

static int set_num(napi_env env, napi_value obj, const char *name, double x)
{
    napi_value v;
    if (napi_create_double(env, x, &v) != napi_ok || napi_set_named_property(env, obj, name, v) != napi_ok) return -1;
    return 0;
}

static napi_value db_stats(napi_env env, napi_callback_info info)
{
    qzn_db *h = qzn_this_open(env, info, NULL, NULL, NULL);
    if (!h) return NULL;
    qz_stats st = {.struct_size = sizeof st};
    int rc = qz_db_stats(h->db, &st);
    if (rc < 0) return qzn_throw_status(env, rc);
    napi_value o, s;
    QZN_CALL(env, napi_create_object(env, &o));
    if (set_num(env, o, "dim", st.dimensions) || set_num(env, o, "M", st.M) ||
        set_num(env, o, "efConstruction", st.ef_construction) || set_num(env, o, "efSearch", st.ef_search) ||
        set_num(env, o, "maxLevel", st.max_level) || set_num(env, o, "count", (double)st.count) ||
        set_num(env, o, "deleted", (double)st.deleted) || set_num(env, o, "capacity", (double)st.capacity) ||
        set_num(env, o, "memoryBytes", (double)st.memory_bytes) ||
        set_num(env, o, "openReinserted", (double)st.open_reinserted))
        return qzn_throw_napi(env, napi_generic_failure);
    const char *m = qz_metric_name(st.metric);
    QZN_CALL(env, napi_create_string_utf8(env, m ? m : "unknown", NAPI_AUTO_LENGTH, &s));
    QZN_CALL(env, napi_set_named_property(env, o, "metric", s));
    static const char *const dtype_of[] = {"f32", "f32", "f16", "int8", "binary"};
    QZN_CALL(env, napi_create_string_utf8(env, st.dtype < 5 ? dtype_of[st.dtype] : "unknown", NAPI_AUTO_LENGTH, &s));
    QZN_CALL(env, napi_set_named_property(env, o, "dtype", s));
    QZN_CALL(env, napi_create_string_utf8(env, st.simd, strnlen(st.simd, sizeof st.simd), &s));
    QZN_CALL(env, napi_set_named_property(env, o, "simd", s));
    return o;
}

/* setParam(name, value): 'efSearch', 'checkpointWrites', 'checkpointMs'. */
static napi_value db_set_param(napi_env env, napi_callback_info info)
{
    static const char *const names[] = {"efSearch", "checkpointWrites", "checkpointMs", NULL};
    static const int keys[] = {QZ_PARAM_EF_SEARCH, QZ_PARAM_CHECKPOINT_WRITES, QZ_PARAM_CHECKPOINT_MS};
    size_t argc = 2;
    napi_value argv[2];
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    char buf[32];
    size_t n;
    if (argc < 1 || napi_get_value_string_utf8(env, argv[0], buf, sizeof buf, &n) != napi_ok)
        return qzn_throw_type(env, "name must be a string");
    int i = name_index(buf, names);
    if (i < 0) return qzn_throw_msg(env, QZ_EINVAL, "unknown parameter '%s'; use efSearch, checkpointWrites or checkpointMs", buf);
    uint64_t v;
    if (argc < 2) return qzn_throw_type(env, "value must be a number, got nothing");
    if (qzn_get_uint(env, argv[1], "value", INT64_MAX, &v)) return NULL;
    int rc = qz_db_set_param(h->db, keys[i], (int64_t)v);
    if (rc < 0) return qzn_throw_status(env, rc);
    return undefined(env);
}

/* ---- getters ---- */

static napi_value get_dim(napi_env env, napi_callback_info info)
{
    qzn_db *h = unwrap(env, info, NULL, NULL, NULL);
    napi_value v;
    if (!h) return NULL;
    QZN_CALL(env, napi_create_uint32(env, h->dims, &v));
    return v;
}

static napi_value get_metric(napi_env env, napi_callback_info info)
{
    qzn_db *h = unwrap(env, info, NULL, NULL, NULL);
    napi_value v;
    if (!h) return NULL;
    const char *m = qz_metric_name(h->metric);
    QZN_CALL(env, napi_create_string_utf8(env, m ? m : "unknown", NAPI_AUTO_LENGTH, &v));
    return v;
}

static napi_value get_closed(napi_env env, napi_callback_info info)
{
    qzn_db *h = unwrap(env, info, NULL, NULL, NULL);
    napi_value v;
    if (!h) return NULL;
    QZN_CALL(env, napi_get_boolean(env, h->db == NULL, &v));
    return v;
}

/* write.c */
napi_value qzn_insert(napi_env env, napi_callback_info info);
napi_value qzn_upsert(napi_env env, napi_callback_info info);
napi_value qzn_delete(napi_env env, napi_callback_info info);
napi_value qzn_has(napi_env env, napi_callback_info info);
napi_value qzn_get(napi_env env, napi_callback_info info);
napi_value qzn_insert_batch(napi_env env, napi_callback_info info);
napi_value qzn_insert_batch_async(napi_env env, napi_callback_info info);

#define METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default_method, NULL}
#define GETTER(name, fn) {name, NULL, NULL, fn, NULL, NULL, napi_enumerable, NULL}

napi_value qzn_db_class(napi_env env)
{
    const napi_property_descriptor props[] = {
        METHOD("close", db_close),
        METHOD("closeAsync", db_close_async),
        METHOD("insert", qzn_insert),
        METHOD("upsert", qzn_upsert),
        METHOD("delete", qzn_delete),
        METHOD("has", qzn_has),
        METHOD("get", qzn_get),
        METHOD("insertBatch", qzn_insert_batch),
        METHOD("insertBatchAsync", qzn_insert_batch_async),
        METHOD("search", qzn_search),
        METHOD("searchBatch", qzn_search_batch),
        METHOD("searchAsync", qzn_search_async),
        METHOD("stats", db_stats),
        METHOD("flush", db_flush),
        METHOD("flushAsync", db_flush_async),
        METHOD("compact", db_compact),
        METHOD("check", db_check),
        METHOD("setParam", db_set_param),
        METHOD("kvPut", qzn_kv_put),
        METHOD("kvGet", qzn_kv_get),
        METHOD("kvDelete", qzn_kv_delete),
        METHOD("kvScan", qzn_kv_scan),
        GETTER("dim", get_dim),
        GETTER("metric", get_metric),
        GETTER("closed", get_closed),
        {"open", NULL, db_open_async, NULL, NULL, NULL, napi_static | napi_writable | napi_configurable, NULL},
    };
    napi_value cls;
    QZN_CALL(env, napi_define_class(env, "Database", NAPI_AUTO_LENGTH, construct, NULL,
                                    sizeof props / sizeof props[0], props, &cls));
    return cls;
}
