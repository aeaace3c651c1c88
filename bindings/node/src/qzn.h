/*
 * qzn.h - the Node binding's internal contract.
 *
 * The addon is plain C over node_api.h (N-API version 8), one file per job:
 *   addon.c   module init: the Database class, constants, instance data
 *   errors.c  QuartzError / TypeError / RangeError construction
 *   args.c    JS value -> C value conversions (ids, Float32Array, bytes, options)
 *   db.c      the Database object: open, close, writes, get, stats, flush
 *   search.c  search of one query and of many (sync and Promise forms)
 *   kv.c      the key-value store
 *   async.c   napi_async_work plumbing shared by every Promise form
 *
 * Every function that returns napi_value returns NULL with a JS exception
 * pending when it failed; every function that returns int returns 0 on
 * success and -1 with an exception pending on failure.
 *
 * Threads: a qzn_db is touched by the main JS thread only, except db->db,
 * which async work uses from libuv's pool (libquartz allows any number of
 * concurrent calls on one handle, except close). The pending counter keeps
 * close from racing with that work: close refuses (QZ_EBUSY) while it is
 * nonzero, and every async job holds a reference to the Database object so
 * that the garbage collector cannot finalise (and close) it meanwhile.
 */
#ifndef QZN_H
#define QZN_H

#define NAPI_VERSION 8
#include <node_api.h>
#include <quartz.h>
#include <stddef.h>
#include <stdint.h>

/* One Database object. */
typedef struct qzn_db {
    qz_db *db;        /* NULL once closed */
    uint32_t dims;
    uint32_t metric;
    uint32_t pending; /* async jobs queued or running on this handle */
    int closing;      /* closeAsync() queued: new calls are refused */
} qzn_db;

/* Per-instance (per worker thread / context) state. */
typedef struct qzn_state {
    napi_ref error_ctor;   /* QuartzError, registered by index.js */
    napi_ref db_ctor;      /* Database */
    napi_ref json_parse;   /* JSON.parse */
    napi_ref json_stringify;
    napi_ref single_result; /* (buffer, found, k) => { ids, distances }, registered by index.js */
} qzn_state;

qzn_state *qzn_state_get(napi_env env);

/* ---- errors.c ---- */

/* Name of a status code ("QZ_EDIM"); "QZ_EUNKNOWN" for codes it does not know. */
const char *qzn_code_name(int status);
/* A QuartzError object with code, errno and message (the value, not thrown). */
napi_value qzn_error_new(napi_env env, int status, const char *message);
/* Throw a QuartzError for a failed qz_ call made just now on this thread
 * (the message is qz_errmsg()). Returns NULL. */
napi_value qzn_throw_status(napi_env env, int status);
/* Throw a QuartzError with our own message. Returns NULL. */
napi_value qzn_throw_msg(napi_env env, int status, const char *fmt, ...);
/* Throw TypeError (code ERR_INVALID_ARG_TYPE) / RangeError (ERR_OUT_OF_RANGE). Return NULL. */
napi_value qzn_throw_type(napi_env env, const char *fmt, ...);
napi_value qzn_throw_range(napi_env env, const char *fmt, ...);
/* Throw a generic Error for a failed napi_ call (when nothing is pending yet). */
napi_value qzn_throw_napi(napi_env env, napi_status st);

/* Bail out of a napi_value function when a napi_ call fails. */
#define QZN_CALL(env, call)                                                                                      \
    do {                                                                                                          \
        napi_status qzn_st_ = (call);                                                                             \
        if (qzn_st_ != napi_ok) return qzn_throw_napi((env), qzn_st_);                                            \
    } while (0)

/* ---- args.c ---- */

/* Bytes of a metadata value or kv key/value. */
typedef struct qzn_bytes {
    const void *data;
    size_t len;
    void *owned; /* malloc'd copy (strings, JSON); free with qzn_bytes_free */
} qzn_bytes;

int qzn_is_nullish(napi_env env, napi_value v);
/* An id: BigInt in 0..2^64-1, or a Number that is a safe non-negative integer. */
int qzn_get_id(napi_env env, napi_value v, const char *what, uint64_t *out);
/* A Float32Array; *data points into its buffer (valid while v is alive). */
int qzn_get_f32(napi_env env, napi_value v, const char *what, float **data, size_t *len);
/* A non-negative integer Number (or BigInt) that fits in @p max. */
int qzn_get_uint(napi_env env, napi_value v, const char *what, uint64_t max, uint64_t *out);
/* Metadata: undefined/null (none), Buffer/Uint8Array/ArrayBuffer (bytes),
 * string (UTF-8), or any other object (JSON.stringify). allow_json = 0 refuses objects (kv keys). */
int qzn_get_bytes(napi_env env, napi_value v, const char *what, int allow_json, qzn_bytes *out);
void qzn_bytes_free(qzn_bytes *b);
/* Bytes -> JS per encoding: "buffer" (Buffer), "string" (UTF-8), "json" (JSON.parse). */
typedef enum { QZN_ENC_BUFFER, QZN_ENC_STRING, QZN_ENC_JSON } qzn_encoding;
napi_value qzn_bytes_to_js(napi_env env, const void *data, size_t len, qzn_encoding enc);
/* Read an "encoding" (or @p name) option from an options object (undefined = buffer). */
int qzn_get_encoding(napi_env env, napi_value opts, const char *name, qzn_encoding *out);
/* Options object: undefined/null is none (returns 0, *present = 0); else must be an object. */
int qzn_get_opts(napi_env env, napi_value v, const char *what, int *present);
/* Refuse keys of @p opts not in the NULL-terminated @p known list (QuartzError QZ_EINVAL). */
int qzn_check_keys(napi_env env, napi_value opts, const char *what, const char *const *known);
/* Read an optional property; *has = 0 when absent or undefined. */
int qzn_get_prop(napi_env env, napi_value obj, const char *name, napi_value *out, int *has);

/* ---- db.c ---- */

/* this -> qzn_db, throwing QZ_EINVAL "database is closed" when closed. */
qzn_db *qzn_this_open(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, napi_value *self);
napi_value qzn_db_class(napi_env env);

/* ---- search.c / kv.c (method tables used by db.c) ---- */
napi_value qzn_search(napi_env env, napi_callback_info info);
napi_value qzn_search_batch(napi_env env, napi_callback_info info);
napi_value qzn_search_async(napi_env env, napi_callback_info info);
napi_value qzn_kv_put(napi_env env, napi_callback_info info);
napi_value qzn_kv_get(napi_env env, napi_callback_info info);
napi_value qzn_kv_delete(napi_env env, napi_callback_info info);
napi_value qzn_kv_scan(napi_env env, napi_callback_info info);

/* ---- async.c ---- */

/* An async job. Embed it first in a job's own struct. execute runs on the
 * pool and returns a qz status; its failure message is captured there.
 * resolve runs on the main thread after success and returns the value the
 * Promise resolves with (NULL with an exception pending rejects with it).
 * release frees the job's own data (always called, on the main thread). */
typedef struct qzn_job qzn_job;
struct qzn_job {
    int (*execute)(qzn_job *job);
    napi_value (*resolve)(napi_env env, qzn_job *job);
    void (*release)(qzn_job *job);
    qzn_db *h;        /* NULL for open */
    napi_ref self;    /* the Database object, kept alive meanwhile */
    napi_ref keep;    /* an extra value kept alive (output buffers), or NULL */
    napi_async_work work;
    napi_deferred deferred;
    int status;
    char message[512];
};

/* Queue @p job (malloc'd by the caller; freed here after release) and return
 * its Promise. @p self may be NULL. On failure, releases and frees the job
 * and returns NULL with an exception pending. */
napi_value qzn_job_queue(napi_env env, qzn_job *job, const char *name, napi_value self, qzn_db *h);

#endif
