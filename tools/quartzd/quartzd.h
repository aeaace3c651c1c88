/*
 * quartzd.h - the internal contract of quartzd, the QuartzDB REST server.
 *
 * Modules and what each owns:
 *   main.c      command line, the listening socket, worker threads, signals, drain
 *   http.c      one request: request id, auth, routing, the log line, metrics
 *   auth.c      the API keys (file + QUARTZ_API_KEYS), constant-time lookup, reload
 *   registry.c  the named indexes: one qz_db per DATA/indexes/NAME, shared by all threads
 *   ids.c       REST ids <-> 64-bit engine ids, and the metadata envelope
 *   jbuf.c      the per-thread JSON output buffer (escaping, the float fast path)
 *   routes_vector.c  the vector routes; routes_admin.c  indexes, kv, health
 *   metrics.c   counters and histograms (per thread, summed at scrape time)
 *
 * Threading: every worker thread owns one event base and one evhttp; a
 * request is handled start to end on its worker thread, synchronously, so
 * a response is only sent after the qz call returned (read-your-writes).
 * Shared state is the registry (rwlock), the key set (rwlock) and the
 * metrics (relaxed atomics, one block per thread).
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#ifndef QUARTZD_H
#define QUARTZD_H

#include <quartz.h>

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evhttp_request;

/* ---- configuration (main.c) ---- */
typedef struct qd_config {
    const char *listen;     /* HOST:PORT */
    const char *data_dir;
    const char *key_file;   /* NULL: none */
    uint32_t durability;    /* qz_durability */
    unsigned threads;
    size_t max_body;
    size_t max_batch;
} qd_config;

extern qd_config qd_cfg;
extern atomic_int qd_draining; /* set once SIGTERM arrived */

/* ---- JSON output buffer (jbuf.c) ---- */
typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
} jbuf;

void jb_reset(jbuf *b);
void jb_raw(jbuf *b, const char *s, size_t n);
void jb_lit(jbuf *b, const char *s); /* unescaped C string */
void jb_char(jbuf *b, char c);
void jb_str(jbuf *b, const char *s, size_t n); /* quoted, escaped */
void jb_cstr(jbuf *b, const char *s);
void jb_u64(jbuf *b, uint64_t v);
void jb_i64(jbuf *b, int64_t v);
void jb_float(jbuf *b, double v); /* "%.9g" with fast paths; non-finite -> null */
void jb_key(jbuf *b, const char *k); /* "k": */

/* ---- the request context (http.c) ---- */
typedef struct qd_thread qd_thread; /* per worker: buffers, metrics */

typedef struct qd_req {
    struct evhttp_request *req;
    qd_thread *t;
    jbuf *out;      /* the response body being built */
    int status;     /* set by qd_reply / qd_error */
    bool sent;
    bool close;     /* add Connection: close */
    const char *allow; /* Allow header for 405 */
} qd_req;

/* A worker's request state; qd_handle is its evhttp callback. */
qd_thread *qd_thread_new(unsigned index);
void qd_thread_free(qd_thread *t); /* after its event loop has stopped */
void qd_handle(struct evhttp_request *req, void *thread);
int qd_thread_pending(qd_thread *t);       /* responses not yet written */
uint64_t qd_thread_last_start(qd_thread *t); /* monotonic ns of the last request */
uint64_t qd_now_ns(void);

/* Per-thread scratch buffers, reused across requests. */
float *qd_scratch_floats(qd_thread *t, size_t n);
void *qd_scratch_bytes(qd_thread *t, size_t n);   /* metadata reads */
jbuf *qd_scratch_jbuf(qd_thread *t);              /* a second builder (envelopes) */

/* Send b->out with @p status. */
void qd_reply(qd_req *r, int status);
/* An integer field of @p j in lo..hi (routes_admin.c): false after replying 400/422;
 * absent or null is 0, and an error only when @p required. */
bool qd_field_uint(qd_req *r, const cJSON *j, const char *name, bool required, double lo, double hi,
                   uint32_t *out);
/* Send {"error":{"code","message"}}; message is printf-style. */
void qd_error(qd_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Map a failed qz call to status + code, message = prefix + qz_errmsg(). */
void qd_error_qz(qd_req *r, int rc, const char *prefix);

/* ---- routes ---- */
typedef struct qd_index qd_index;
void qd_route_vector(qd_req *r, qd_index *ix, const char *op, const char *arg, const char *method,
                     const char *body, size_t blen);
void qd_route_kv(qd_req *r, const char *op, const char *arg, const char *method, const char *body,
                 size_t blen);
void qd_route_indexes(qd_req *r, const char *name, const char *method, const char *body, size_t blen);
void qd_route_health(qd_req *r);

/* ---- body helpers (http.c) ---- */
/* Parse the body as a JSON object; on failure sends 400 invalid_json and returns NULL. */
cJSON *qd_parse_object(qd_req *r, const char *body, size_t blen);
/* Read a JSON array of numbers of exactly @p dim into a float array.
 * what = "vector" / "query"; row = -1 or the batch row. Sends the error. */
bool qd_read_vector(qd_req *r, const cJSON *arr, uint32_t dim, float *out, const char *what, long row);
/* fastvec.c: read the top-level array KEY of exactly DIM finite numbers from
 * the body text into OUT and blank it for cJSON; false (body untouched) for
 * anything else, which the cJSON path then handles as before. */
bool qd_fastvec_take(char *body, size_t blen, const char *key, float *out, size_t dim);
/* Percent-decode a path segment in place; false on a bad escape. */
bool qd_pct_decode(char *s, size_t *len);

/* ---- auth (auth.c) ---- */
typedef enum { QD_ROLE_NONE = 0, QD_ROLE_RO = 1, QD_ROLE_RW = 2 } qd_role;
int qd_auth_load(const char *key_file, char *err, size_t errcap); /* 0 ok */
bool qd_auth_enabled(void);
qd_role qd_auth_check(const char *key, size_t klen);
size_t qd_auth_count(void);

/* ---- registry (registry.c) ---- */
struct qd_index {
    char name[65];
    char *path;
    qz_db *db;
    uint32_t dim, metric;
    atomic_int refs;
    atomic_uint ef_search; /* the default search ef, for the response's "ef" */
};

int qd_registry_open(const char *data_dir, uint32_t durability, char *err, size_t errcap);
qd_index *qd_index_acquire(const char *name); /* NULL if unknown */
void qd_index_release(qd_index *ix);
/* 0, or an HTTP status with the message written to err. */
int qd_index_create(const char *name, uint32_t dim, uint32_t metric, uint32_t dtype, uint32_t M, uint32_t efc,
                    uint32_t efs, const char **code, char *err, size_t errcap);
/* "f32", "f16", "int8", "binary"; NULL for anything else. */
const char *qd_dtype_name(uint32_t dtype);
int qd_index_drop(const char *name, const char **code, char *err, size_t errcap);
/* Names, sorted; caller frees the array (names point into it). */
size_t qd_index_names(char (**names)[65]);
size_t qd_index_count(void);
void qd_index_describe(qd_index *ix, jbuf *b); /* DESCRIPTION object */
int qd_registry_close_all(void); /* flush + close; 0 if every close succeeded */
bool qd_valid_index_name(const char *s, size_t n);
uint64_t qd_dir_bytes(const char *path);
/* Internal keys of an index's key-value store (never clash with user keys). */
#define QD_KV_EF_SEARCH "c:ef_search"

/* ---- ids (ids.c) ---- */
typedef struct qd_id {
    uint64_t eid;      /* engine id */
    const char *str;   /* NULL for an integer id; else the string (not owned) */
    size_t slen;
} qd_id;

#define QD_MAX_ID_BYTES 256
/* Parse a JSON id. false: message written to err. */
bool qd_id_from_json(const cJSON *v, qd_id *out, char *err, size_t errcap);
/* Parse a path id (already decoded). */
bool qd_id_from_text(const char *s, size_t n, qd_id *out, char *err, size_t errcap);
uint64_t qd_hash64(const void *p, size_t n, uint64_t seed);
/* Append the id as JSON to b. */
void qd_id_json(jbuf *b, const qd_id *id);
/* Build the stored metadata blob: envelope for string ids + metadata JSON text. */
void qd_envelope(jbuf *b, const qd_id *id, const char *meta, size_t mlen);
/* Split a stored blob into the string id (NULL for an integer id) and the metadata text (length 0: null). */
void qd_envelope_split(const char *blob, size_t n, const char **sid, size_t *slen, const char **meta,
                       size_t *mlen);

/* ---- metrics (metrics.c) ---- */
typedef enum {
    R_HEALTH, R_METRICS, R_KV_PUT, R_KV_GET, R_KV_DELETE, R_INDEXES, R_INDEX, R_V_INSERT, R_V_UPSERT,
    R_V_BATCH, R_V_SEARCH, R_V_GET, R_V_GET_MANY, R_V_DELETE, R_V_DELETE_MANY, R_V_STATS, R_UNKNOWN,
    R_COUNT
} qd_route_id;
extern const char *const qd_route_names[R_COUNT];
void *qd_metrics_thread_new(void);
void qd_metrics_observe(void *m, int route, int status, double seconds);
void qd_metrics_render(jbuf *b);

#endif
