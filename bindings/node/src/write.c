/*
 * write.c - insert, upsert, delete, has, get and batch inserts (sync and
 * Promise) of the Database object.
 *
 * Metadata goes in as a Buffer/Uint8Array/ArrayBuffer (bytes as given), a
 * string (stored as UTF-8) or any other object (stored as JSON.stringify's
 * UTF-8 text); null or undefined stores none. get() returns it as a Buffer
 * unless asked for { metadata: 'string' } or { metadata: 'json' }.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qzn.h"

static napi_value undefined(napi_env env)
{
    napi_value u;
    napi_get_undefined(env, &u);
    return u;
}

typedef int (*put_fn)(qz_db *, uint64_t, const float *, size_t, const void *, size_t);

static napi_value put(napi_env env, napi_callback_info info, put_fn fn)
{
    size_t argc = 3;
    napi_value argv[3];
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    if (argc < 2) return qzn_throw_type(env, "expected (id, vector, metadata?), got %zu argument(s)", argc);
    uint64_t id;
    float *v;
    size_t n;
    qzn_bytes meta;
    if (qzn_get_id(env, argv[0], "id", &id) || qzn_get_f32(env, argv[1], "vector", &v, &n)) return NULL;
    if (qzn_get_bytes(env, argc > 2 ? argv[2] : NULL, "metadata", 1, &meta)) return NULL;
    int rc = fn(h->db, id, v, n, meta.data, meta.len);
    qzn_bytes_free(&meta);
    if (rc < 0) return qzn_throw_status(env, rc);
    return undefined(env);
}

napi_value qzn_insert(napi_env env, napi_callback_info info) { return put(env, info, qz_db_insert); }
napi_value qzn_upsert(napi_env env, napi_callback_info info) { return put(env, info, qz_db_upsert); }

napi_value qzn_has(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], r;
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    uint64_t id;
    if (argc < 1) return qzn_throw_type(env, "id must be a bigint or a number, got nothing");
    if (qzn_get_id(env, argv[0], "id", &id)) return NULL;
    int rc = qz_db_contains(h->db, id);
    if (rc < 0) return qzn_throw_status(env, rc);
    QZN_CALL(env, napi_get_boolean(env, rc > 0, &r));
    return r;
}

/* get(id, { metadata?: 'buffer'|'string'|'json' }) -> { vector, metadata } */
napi_value qzn_get(napi_env env, napi_callback_info info)
{
    static const char *const known[] = {"metadata", NULL};
    size_t argc = 2;
    napi_value argv[2];
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    uint64_t id;
    if (argc < 1) return qzn_throw_type(env, "id must be a bigint or a number, got nothing");
    if (qzn_get_id(env, argv[0], "id", &id)) return NULL;
    int present;
    qzn_encoding enc = QZN_ENC_BUFFER;
    napi_value opts = argc > 1 ? argv[1] : NULL;
    if (qzn_get_opts(env, opts, "get options", &present)) return NULL;
    if (present && (qzn_check_keys(env, opts, "get options", known) || qzn_get_encoding(env, opts, "metadata", &enc)))
        return NULL;

    napi_value ab, vec, res, meta;
    void *vdata;
    QZN_CALL(env, napi_create_arraybuffer(env, (size_t)h->dims * sizeof(float), &vdata, &ab));
    char small[1024];
    char *buf = small;
    size_t cap = sizeof small, len = 0;
    int rc;
    for (;;) { /* the metadata may grow between the two reads (a concurrent upsert) */
        rc = qz_db_get(h->db, id, vdata, h->dims, buf, cap, &len);
        if (rc != QZ_ETOOSMALL || len <= cap) break;
        if (buf != small) free(buf);
        cap = len;
        buf = malloc(cap);
        if (!buf) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory reading %zu bytes of metadata", len);
    }
    if (rc < 0) {
        if (buf != small) free(buf);
        return qzn_throw_status(env, rc);
    }
    if (len) meta = qzn_bytes_to_js(env, buf, len, enc);
    else napi_get_null(env, &meta);
    if (buf != small) free(buf);
    if (!meta) return NULL;
    QZN_CALL(env, napi_create_typedarray(env, napi_float32_array, h->dims, ab, 0, &vec));
    QZN_CALL(env, napi_create_object(env, &res));
    QZN_CALL(env, napi_set_named_property(env, res, "vector", vec));
    QZN_CALL(env, napi_set_named_property(env, res, "metadata", meta));
    return res;
}

/* ---- batches ---- */

struct batch {
    size_t n, dims;
    uint64_t *ids;
    float *vectors;
    const void **metas;
    size_t *lens;
    uint32_t flags;
    /* owned memory (freed by batch_free) */
    void *own_ids, *own_vectors;
    void **own_metas; /* n entries */
};
typedef struct batch batch;

static void batch_free(batch *b)
{
    free(b->own_ids);
    free(b->own_vectors);
    if (b->own_metas)
        for (size_t i = 0; i < b->n; i++) free(b->own_metas[i]);
    free(b->own_metas);
    free(b->metas);
    free(b->lens);
    memset(b, 0, sizeof *b);
}

static int oom(napi_env env)
{
    qzn_throw_msg(env, QZ_ENOMEM, "out of memory preparing the batch");
    return -1;
}

/* ids: BigUint64Array, or an Array of bigints / safe-integer Numbers. */
static int read_ids(napi_env env, napi_value v, int copy, batch *b)
{
    bool is = false;
    napi_is_typedarray(env, v, &is);
    if (is) {
        napi_typedarray_type tt;
        size_t n;
        void *p;
        napi_get_typedarray_info(env, v, &tt, &n, &p, NULL, NULL);
        if (tt != napi_biguint64_array) return qzn_throw_type(env, "ids must be a BigUint64Array or an Array of ids"), -1;
        b->n = n;
        if (!copy) {
            b->ids = p;
            return 0;
        }
        b->own_ids = b->ids = malloc(n ? n * sizeof *b->ids : 1);
        if (!b->ids) return oom(env);
        if (n) memcpy(b->ids, p, n * sizeof *b->ids);
        return 0;
    }
    napi_is_array(env, v, &is);
    if (!is) return qzn_throw_type(env, "ids must be a BigUint64Array or an Array of ids"), -1;
    uint32_t n;
    napi_get_array_length(env, v, &n);
    b->n = n;
    b->own_ids = b->ids = malloc(n ? n * sizeof *b->ids : 1);
    if (!b->ids) return oom(env);
    for (uint32_t i = 0; i < n; i++) {
        napi_value e;
        char what[32];
        snprintf(what, sizeof what, "ids[%u]", i);
        if (napi_get_element(env, v, i, &e) != napi_ok) return qzn_throw_napi(env, napi_generic_failure), -1;
        if (qzn_get_id(env, e, what, &b->ids[i])) return -1;
    }
    return 0;
}

/* delete(id) removes one id; delete(ids) (a BigUint64Array or an Array of ids)
 * removes them all in one transaction: all or nothing, so an unknown id
 * (QZ_ENOTFOUND) leaves every id in place. */
napi_value qzn_delete(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    uint64_t id;
    if (argc < 1) return qzn_throw_type(env, "id must be a bigint or a number, got nothing");
    bool many = false;
    napi_is_array(env, argv[0], &many);
    if (!many) {
        napi_is_typedarray(env, argv[0], &many);
    }
    if (many) {
        batch b;
        memset(&b, 0, sizeof b);
        if (read_ids(env, argv[0], 0, &b)) {
            batch_free(&b);
            return NULL;
        }
        qz_txn *txn = NULL;
        int rc = b.n ? qz_txn_begin(h->db, &txn) : 0;
        for (size_t i = 0; rc >= 0 && i < b.n; i++) rc = qz_txn_delete(txn, b.ids[i]);
        if (rc >= 0 && txn) {
            rc = qz_txn_commit(txn); /* frees txn, also on failure */
            txn = NULL;
        }
        if (txn) qz_txn_abort(txn);
        batch_free(&b);
        if (rc < 0) return qzn_throw_status(env, rc);
        return undefined(env);
    }
    if (qzn_get_id(env, argv[0], "id", &id)) return NULL;
    int rc = qz_db_delete(h->db, id);
    if (rc < 0) return qzn_throw_status(env, rc);
    return undefined(env);
}

static int read_batch(napi_env env, qzn_db *h, size_t argc, napi_value *argv, int copy, batch *b)
{
    static const char *const known[] = {"upsert", "metadata", NULL};
    memset(b, 0, sizeof *b);
    if (argc < 2) return qzn_throw_type(env, "expected (ids, vectors, options?), got %zu argument(s)", argc), -1;
    if (read_ids(env, argv[0], copy, b)) return -1;
    float *v;
    size_t len;
    if (qzn_get_f32(env, argv[1], "vectors", &v, &len)) return -1;
    if (b->n == 0 && len == 0) {
        b->dims = h->dims;
    } else if (b->n == 0 || len % b->n) {
        return qzn_throw_msg(env, QZ_EDIM, "vectors holds %zu floats, which is not %zu rows of %u dimensions", len,
                             b->n, h->dims),
               -1;
    } else {
        b->dims = len / b->n; /* libquartz names a wrong row length with both numbers */
    }
    if (copy) {
        b->own_vectors = b->vectors = malloc(len ? len * sizeof(float) : 1);
        if (!b->vectors) return oom(env);
        if (len) memcpy(b->vectors, v, len * sizeof(float));
    } else {
        b->vectors = v;
    }
    napi_value opts = argc > 2 ? argv[2] : NULL, mv, uv;
    int present, has;
    if (qzn_get_opts(env, opts, "batch options", &present)) return -1;
    if (!present) return 0;
    if (qzn_check_keys(env, opts, "batch options", known)) return -1;
    if (qzn_get_prop(env, opts, "upsert", &uv, &has)) return -1;
    if (has) {
        bool up;
        if (napi_get_value_bool(env, uv, &up) != napi_ok) return qzn_throw_type(env, "options.upsert must be a boolean"), -1;
        b->flags = up ? QZ_BATCH_UPSERT : 0;
    }
    if (qzn_get_prop(env, opts, "metadata", &mv, &has)) return -1;
    if (!has || qzn_is_nullish(env, mv)) return 0;
    bool arr = false;
    uint32_t mn = 0;
    napi_is_array(env, mv, &arr);
    if (!arr) return qzn_throw_type(env, "options.metadata must be an Array (one entry per row)"), -1;
    napi_get_array_length(env, mv, &mn);
    if (mn != b->n) return qzn_throw_msg(env, QZ_EINVAL, "options.metadata has %u entries for %zu rows", mn, b->n), -1;
    b->metas = calloc(b->n ? b->n : 1, sizeof *b->metas);
    b->lens = calloc(b->n ? b->n : 1, sizeof *b->lens);
    b->own_metas = calloc(b->n ? b->n : 1, sizeof *b->own_metas);
    if (!b->metas || !b->lens || !b->own_metas) return oom(env);
    for (uint32_t i = 0; i < mn; i++) {
        napi_value e;
        qzn_bytes m;
        char what[40];
        snprintf(what, sizeof what, "options.metadata[%u]", i);
        if (napi_get_element(env, mv, i, &e) != napi_ok) return qzn_throw_napi(env, napi_generic_failure), -1;
        if (qzn_get_bytes(env, e, what, 1, &m)) return -1;
        if (copy && m.len && !m.owned) { /* bytes that live in a JS buffer */
            m.owned = malloc(m.len);
            if (!m.owned) return oom(env);
            memcpy(m.owned, m.data, m.len);
            m.data = m.owned;
        }
        b->own_metas[i] = m.owned;
        b->metas[i] = m.data ? m.data : (m.len ? NULL : "");
        b->lens[i] = m.len;
    }
    return 0;
}

static int batch_run(qz_db *db, batch *b)
{
    return qz_db_insert_batch(db, b->n, b->ids, b->vectors, b->dims, (const void *const *)b->metas, b->lens,
                              b->flags);
}

/* insertBatch(ids, vectors, { upsert?, metadata? }) */
napi_value qzn_insert_batch(napi_env env, napi_callback_info info)
{
    size_t argc = 3;
    napi_value argv[3];
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    batch b;
    if (read_batch(env, h, argc, argv, 0, &b)) {
        batch_free(&b);
        return NULL;
    }
    int rc = batch_run(h->db, &b);
    batch_free(&b);
    if (rc < 0) return qzn_throw_status(env, rc);
    return undefined(env);
}

typedef struct batch_job {
    qzn_job job;
    batch b;
} batch_job;

static int batch_execute(qzn_job *job) { return batch_run(job->h->db, &((batch_job *)job)->b); }
static void batch_release(qzn_job *job) { batch_free(&((batch_job *)job)->b); }

/* insertBatchAsync(ids, vectors, options?) -> Promise<void>; inputs are copied first. */
napi_value qzn_insert_batch_async(napi_env env, napi_callback_info info)
{
    size_t argc = 3;
    napi_value argv[3], self;
    qzn_db *h = qzn_this_open(env, info, &argc, argv, &self);
    if (!h) return NULL;
    batch_job *j = calloc(1, sizeof *j);
    if (!j) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory");
    if (read_batch(env, h, argc, argv, 1, &j->b)) {
        batch_free(&j->b);
        free(j);
        return NULL;
    }
    j->job.execute = batch_execute;
    j->job.release = batch_release;
    return qzn_job_queue(env, &j->job, "quartz.insertBatch", self, h);
}
