/*
 * search.c - nearest-neighbour search from JS.
 *
 *   search(query, k, opts?)       one query (a Float32Array of dim floats):
 *                                 { ids, distances } of length found (<= k), nearest first.
 *                                 A Float32Array of nq * dim floats (nq >= 2) is a batch
 *                                 and answers as searchBatch.
 *   searchBatch(queries, k, opts?) nq queries, row-major: { ids, distances, counts } with
 *                                 ids/distances of nq * k (row i at i * k) and counts[i]
 *                                 results in row i; slots past counts[i] hold the padding
 *                                 2n**64n - 1n / Infinity. Runs qz_db_search_batch(), so the
 *                                 queries are spread over the handle's threads while the
 *                                 JS thread waits.
 *   searchAsync(queries, k, opts?) the same on libuv's pool: Promise of the batch result,
 *                                 the JS thread stays free.
 *
 * opts: { ef?: number, filter?: BigUint64Array | Array<bigint|number>, exclude?: boolean }.
 * filter keeps only the listed ids (all but them with exclude: true); it is
 * copied, sorted and checked in C by qz_filter_ids(), so no JS runs per
 * candidate and the async form can use it on the pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qzn.h"

typedef struct query_opts {
    qz_search_params sp;
    qz_id_set set;
    uint64_t *filter_ids; /* malloc'd, sorted */
} query_opts;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int read_filter(napi_env env, napi_value v, query_opts *q)
{
    bool is = false;
    size_t n = 0;
    napi_is_typedarray(env, v, &is);
    if (is) {
        napi_typedarray_type tt;
        void *p;
        napi_get_typedarray_info(env, v, &tt, &n, &p, NULL, NULL);
        if (tt != napi_biguint64_array)
            return qzn_throw_type(env, "options.filter must be a BigUint64Array or an Array of ids"), -1;
        q->filter_ids = malloc(n ? n * sizeof(uint64_t) : 1);
        if (!q->filter_ids) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory copying the filter"), -1;
        if (n) memcpy(q->filter_ids, p, n * sizeof(uint64_t));
    } else {
        napi_is_array(env, v, &is);
        if (!is) return qzn_throw_type(env, "options.filter must be a BigUint64Array or an Array of ids"), -1;
        uint32_t len;
        napi_get_array_length(env, v, &len);
        n = len;
        q->filter_ids = malloc(n ? n * sizeof(uint64_t) : 1);
        if (!q->filter_ids) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory copying the filter"), -1;
        for (uint32_t i = 0; i < len; i++) {
            napi_value e;
            char what[40];
            snprintf(what, sizeof what, "options.filter[%u]", i);
            napi_get_element(env, v, i, &e);
            if (qzn_get_id(env, e, what, &q->filter_ids[i])) return -1;
        }
    }
    qsort(q->filter_ids, n, sizeof(uint64_t), cmp_u64);
    q->set.ids = q->filter_ids;
    q->set.count = n;
    return 0;
}

/* One pass over the own enumerable keys of opts: each known key is read by
 * the key value itself (no string lookups for absent keys), and an unknown
 * key is refused. This is on the path of every single-query search. */
static int read_opts(napi_env env, napi_value opts, query_opts *q)
{
    memset(q, 0, sizeof *q);
    qz_search_params_init(&q->sp, sizeof q->sp);
    if (!opts || qzn_is_nullish(env, opts)) return 0;
    int present;
    if (qzn_get_opts(env, opts, "search options", &present)) return -1;
    napi_value keys, filter = NULL, exclude = NULL;
    uint32_t n = 0;
    if (napi_get_all_property_names(env, opts, napi_key_own_only, napi_key_enumerable | napi_key_skip_symbols,
                                    napi_key_numbers_to_strings, &keys) != napi_ok ||
        napi_get_array_length(env, keys, &n) != napi_ok)
        return qzn_throw_napi(env, napi_generic_failure), -1;
    for (uint32_t i = 0; i < n; i++) {
        napi_value key, v;
        char name[64];
        size_t len = 0;
        napi_valuetype t;
        if (napi_get_element(env, keys, i, &key) != napi_ok ||
            napi_get_value_string_utf8(env, key, name, sizeof name, &len) != napi_ok ||
            napi_get_property(env, opts, key, &v) != napi_ok)
            return qzn_throw_napi(env, napi_generic_failure), -1;
        if (!strcmp(name, "ef")) {
            napi_typeof(env, v, &t);
            if (t == napi_undefined) continue;
            uint64_t ef;
            if (qzn_get_uint(env, v, "options.ef", UINT32_MAX, &ef)) return -1;
            q->sp.ef = (uint32_t)ef;
        } else if (!strcmp(name, "filter")) {
            filter = v;
        } else if (!strcmp(name, "exclude")) {
            exclude = v;
        } else {
            return qzn_throw_msg(env, QZ_EINVAL, "unknown option '%s' in search options", name), -1;
        }
    }
    if (!filter || qzn_is_nullish(env, filter)) return 0;
    if (read_filter(env, filter, q)) return -1;
    uint32_t flags = 0;
    if (exclude && !qzn_is_nullish(env, exclude)) {
        bool ex;
        if (napi_get_value_bool(env, exclude, &ex) != napi_ok) return qzn_throw_type(env, "options.exclude must be a boolean"), -1;
        flags = ex ? QZ_ID_SET_EXCLUDE : 0;
    }
    int rc = qz_id_set_init(&q->set, sizeof q->set, q->filter_ids, q->set.count, flags);
    if (rc < 0) return qzn_throw_status(env, rc), -1;
    q->sp.filter = qz_filter_ids;
    q->sp.filter_user = &q->set;
    return 0;
}

static int read_k(napi_env env, size_t argc, napi_value *argv, size_t *k)
{
    uint64_t x;
    if (argc < 2) return qzn_throw_type(env, "k must be a number, got nothing"), -1;
    if (qzn_get_uint(env, argv[1], "k", UINT32_MAX, &x)) return -1;
    if (x == 0 || x > QZ_MAX_K) return qzn_throw_msg(env, QZ_ERANGE, "k is %llu, it must be 1..%u", (unsigned long long)x, QZ_MAX_K), -1;
    *k = (size_t)x;
    return 0;
}

/* Output buffers of a batch: created on the main thread, filled anywhere. */
typedef struct batch_out {
    napi_value ids_ab, dist_ab, counts_ab;
    uint64_t *ids;
    float *dist;
    uint32_t *counts32;
    size_t *counts; /* malloc'd: the C API counts in size_t */
} batch_out;

static int make_out(napi_env env, size_t nq, size_t k, batch_out *o)
{
    void *p;
    memset(o, 0, sizeof *o);
    if (nq > SIZE_MAX / 8 / k) return qzn_throw_msg(env, QZ_ERANGE, "%zu queries of k = %zu overflow", nq, k), -1;
    if (napi_create_arraybuffer(env, nq * k * sizeof(uint64_t), &p, &o->ids_ab) != napi_ok) goto nomem;
    o->ids = p;
    if (napi_create_arraybuffer(env, nq * k * sizeof(float), &p, &o->dist_ab) != napi_ok) goto nomem;
    o->dist = p;
    if (napi_create_arraybuffer(env, nq * sizeof(uint32_t), &p, &o->counts_ab) != napi_ok) goto nomem;
    o->counts32 = p;
    o->counts = malloc(nq ? nq * sizeof(size_t) : 1);
    if (!o->counts) goto nomem;
    return 0;
nomem:;
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) return -1; /* V8 threw its RangeError (allocation failed) */
    return qzn_throw_msg(env, QZ_ENOMEM, "out of memory for %zu x %zu results", nq, k), -1;
}

static void narrow_counts(batch_out *o, size_t nq)
{
    for (size_t i = 0; i < nq; i++) o->counts32[i] = (uint32_t)o->counts[i];
    free(o->counts);
    o->counts = NULL;
}

static napi_value out_object(napi_env env, napi_value ids_ab, napi_value dist_ab, napi_value counts_ab, size_t n,
                             size_t nq)
{
    napi_value res, ids, dist, counts;
    QZN_CALL(env, napi_create_typedarray(env, napi_biguint64_array, n, ids_ab, 0, &ids));
    QZN_CALL(env, napi_create_typedarray(env, napi_float32_array, n, dist_ab, 0, &dist));
    QZN_CALL(env, napi_create_object(env, &res));
    QZN_CALL(env, napi_set_named_property(env, res, "ids", ids));
    QZN_CALL(env, napi_set_named_property(env, res, "distances", dist));
    if (counts_ab) {
        QZN_CALL(env, napi_create_typedarray(env, napi_uint32_array, nq, counts_ab, 0, &counts));
        QZN_CALL(env, napi_set_named_property(env, res, "counts", counts));
    }
    return res;
}

/* { ids, distances } of a single search over one buffer (k ids, k distances).
 * index.js registers a JS function that builds it (object literals and
 * typed-array views are cheaper made by the JIT than through N-API calls);
 * without it (the raw addon), N-API builds the same object. */
static napi_value single_result(napi_env env, napi_value ab, size_t found, size_t k)
{
    qzn_state *s = qzn_state_get(env);
    napi_value fn, global, argv[3], res;
    if (s->single_result && napi_get_reference_value(env, s->single_result, &fn) == napi_ok && fn) {
        QZN_CALL(env, napi_get_global(env, &global));
        argv[0] = ab;
        QZN_CALL(env, napi_create_uint32(env, (uint32_t)found, &argv[1]));
        QZN_CALL(env, napi_create_uint32(env, (uint32_t)k, &argv[2]));
        if (napi_call_function(env, global, fn, 3, argv, &res) != napi_ok) return NULL;
        return res;
    }
    napi_value ids, dist;
    QZN_CALL(env, napi_create_typedarray(env, napi_biguint64_array, found, ab, 0, &ids));
    QZN_CALL(env, napi_create_typedarray(env, napi_float32_array, found, ab, k * sizeof(uint64_t), &dist));
    QZN_CALL(env, napi_create_object(env, &res));
    QZN_CALL(env, napi_set_named_property(env, res, "ids", ids));
    QZN_CALL(env, napi_set_named_property(env, res, "distances", dist));
    return res;
}

/* Rows of a query array: nq = len / dim, or QZ_EDIM when it does not divide. */
static int rows_of(napi_env env, qzn_db *h, size_t len, size_t *nq)
{
    if (len == 0 || len % h->dims)
        return qzn_throw_msg(env, QZ_EDIM, "queries hold %zu floats, which is not a whole number of %u-dimension rows",
                             len, h->dims),
               -1;
    *nq = len / h->dims;
    return 0;
}

static napi_value batch_sync(napi_env env, qzn_db *h, const float *q, size_t nq, size_t k, query_opts *o)
{
    batch_out out;
    if (make_out(env, nq, k, &out)) return NULL;
    int rc = qz_db_search_batch(h->db, q, nq, h->dims, k, &o->sp, out.ids, out.dist, out.counts);
    if (rc < 0) {
        free(out.counts);
        return qzn_throw_status(env, rc);
    }
    narrow_counts(&out, nq);
    return out_object(env, out.ids_ab, out.dist_ab, out.counts_ab, nq * k, nq);
}

napi_value qzn_search(napi_env env, napi_callback_info info)
{
    size_t argc = 3;
    napi_value argv[3];
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    float *q;
    size_t len, k;
    query_opts o;
    if (argc < 1) return qzn_throw_type(env, "query must be a Float32Array, got nothing");
    if (qzn_get_f32(env, argv[0], "query", &q, &len) || read_k(env, argc, argv, &k)) return NULL;
    if (read_opts(env, argc > 2 ? argv[2] : NULL, &o)) {
        free(o.filter_ids);
        return NULL;
    }
    napi_value res = NULL;
    if (len > h->dims && len % h->dims == 0) {
        res = batch_sync(env, h, q, len / h->dims, k, &o);
    } else { /* one query; a wrong length gets libquartz's own EDIM message */
        /* One ArrayBuffer: k ids, then k distances; the views cover the found ones. */
        napi_value ab;
        void *p;
        size_t found = 0;
        if (napi_create_arraybuffer(env, k * (sizeof(uint64_t) + sizeof(float)), &p, &ab) == napi_ok) {
            int rc = qz_db_search(h->db, q, len, k, &o.sp, p, (float *)((uint64_t *)p + k), &found);
            if (rc < 0) qzn_throw_status(env, rc);
            else res = single_result(env, ab, found, k);
        } else {
            qzn_throw_napi(env, napi_generic_failure);
        }
    }
    free(o.filter_ids);
    return res;
}

napi_value qzn_search_batch(napi_env env, napi_callback_info info)
{
    size_t argc = 3;
    napi_value argv[3];
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    float *q;
    size_t len, k, nq;
    query_opts o;
    if (argc < 1) return qzn_throw_type(env, "queries must be a Float32Array, got nothing");
    if (qzn_get_f32(env, argv[0], "queries", &q, &len) || read_k(env, argc, argv, &k) || rows_of(env, h, len, &nq))
        return NULL;
    if (read_opts(env, argc > 2 ? argv[2] : NULL, &o)) {
        free(o.filter_ids);
        return NULL;
    }
    napi_value res = batch_sync(env, h, q, nq, k, &o);
    free(o.filter_ids);
    return res;
}

/* ---- searchAsync ---- */

typedef struct search_job {
    qzn_job job;
    float *queries; /* copy */
    size_t nq, k;
    query_opts o;
    batch_out out;
} search_job;

static int search_execute(qzn_job *job)
{
    search_job *j = (search_job *)job;
    j->o.sp.filter_user = j->o.sp.filter ? &j->o.set : NULL; /* the set moved with the job */
    return qz_db_search_batch(job->h->db, j->queries, j->nq, job->h->dims, j->k, &j->o.sp, j->out.ids, j->out.dist,
                              j->out.counts);
}

static napi_value search_resolve(napi_env env, qzn_job *job)
{
    search_job *j = (search_job *)job;
    napi_value holder, ids_ab, dist_ab, counts_ab;
    QZN_CALL(env, napi_get_reference_value(env, job->keep, &holder));
    QZN_CALL(env, napi_get_element(env, holder, 0, &ids_ab));
    QZN_CALL(env, napi_get_element(env, holder, 1, &dist_ab));
    QZN_CALL(env, napi_get_element(env, holder, 2, &counts_ab));
    narrow_counts(&j->out, j->nq);
    return out_object(env, ids_ab, dist_ab, counts_ab, j->nq * j->k, j->nq);
}

static void search_release(qzn_job *job)
{
    search_job *j = (search_job *)job;
    free(j->queries);
    free(j->o.filter_ids);
    free(j->out.counts);
}

napi_value qzn_search_async(napi_env env, napi_callback_info info)
{
    size_t argc = 3;
    napi_value argv[3], self, holder;
    qzn_db *h = qzn_this_open(env, info, &argc, argv, &self);
    if (!h) return NULL;
    float *q;
    size_t len, k, nq;
    if (argc < 1) return qzn_throw_type(env, "queries must be a Float32Array, got nothing");
    if (qzn_get_f32(env, argv[0], "queries", &q, &len) || read_k(env, argc, argv, &k) || rows_of(env, h, len, &nq))
        return NULL;
    search_job *j = calloc(1, sizeof *j);
    if (!j) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory");
    j->nq = nq;
    j->k = k;
    j->job.execute = search_execute;
    j->job.resolve = search_resolve;
    j->job.release = search_release;
    if (read_opts(env, argc > 2 ? argv[2] : NULL, &j->o) || make_out(env, nq, k, &j->out)) goto fail;
    j->queries = malloc(len * sizeof(float));
    if (!j->queries) {
        qzn_throw_msg(env, QZ_ENOMEM, "out of memory copying %zu queries", nq);
        goto fail;
    }
    memcpy(j->queries, q, len * sizeof(float));
    if (napi_create_array_with_length(env, 3, &holder) != napi_ok ||
        napi_set_element(env, holder, 0, j->out.ids_ab) != napi_ok ||
        napi_set_element(env, holder, 1, j->out.dist_ab) != napi_ok ||
        napi_set_element(env, holder, 2, j->out.counts_ab) != napi_ok ||
        napi_create_reference(env, holder, 1, &j->job.keep) != napi_ok) {
        qzn_throw_napi(env, napi_generic_failure);
        goto fail;
    }
    return qzn_job_queue(env, &j->job, "quartz.search", self, h);
fail:
    search_release(&j->job);
    if (j->job.keep) napi_delete_reference(env, j->job.keep);
    free(j);
    return NULL;
}
