/*
 * http.c - one request from start to end, on its worker thread: request
 * id, route resolution, authentication (before the body is parsed and
 * before a 404/405 under /api/), dispatch, the response, the JSON log line
 * and the metrics.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "quartzd.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct qd_thread {
    unsigned index;
    uint64_t seq;
    jbuf out, env, log;
    float *floats;
    size_t nfloats;
    char *bytes;
    size_t nbytes;
    char *path;
    size_t npath;
    void *metrics;
    int pending;
    uint64_t last_start;
};

uint64_t qd_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

qd_thread *qd_thread_new(unsigned index)
{
    qd_thread *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->index = index;
    t->metrics = qd_metrics_thread_new();
    return t;
}

void qd_thread_free(qd_thread *t)
{
    if (!t) return;
    free(t->out.p);
    free(t->env.p);
    free(t->log.p);
    free(t->floats);
    free(t->bytes);
    free(t->path);
    free(t); /* t->metrics stays on the registry's list: /metrics sums it until exit */
}

int qd_thread_pending(qd_thread *t) { return t->pending; }
uint64_t qd_thread_last_start(qd_thread *t) { return t->last_start; }

float *qd_scratch_floats(qd_thread *t, size_t n)
{
    if (n > t->nfloats) {
        float *p = realloc(t->floats, (n ? n : 1) * sizeof *p);
        if (!p) return NULL;
        t->floats = p;
        t->nfloats = n;
    }
    return t->floats;
}

void *qd_scratch_bytes(qd_thread *t, size_t n)
{
    if (n > t->nbytes) {
        char *p = realloc(t->bytes, n ? n : 1);
        if (!p) return NULL;
        t->bytes = p;
        t->nbytes = n;
    }
    return t->bytes;
}

jbuf *qd_scratch_jbuf(qd_thread *t) { return &t->env; }

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

static void on_complete(struct evhttp_request *req, void *arg)
{
    qd_thread *t = arg;
    t->pending--;
}

static void send_now(qd_req *r, int status, const char *ctype)
{
    if (r->sent) return;
    r->sent = true;
    if (r->out->oom) { /* the response did not fit in memory */
        jb_reset(r->out);
        jb_lit(r->out, "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of memory building the response\"}}");
        status = 503;
    }
    r->status = status;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_add_header(h, "Content-Type", ctype);
    if (r->allow) evhttp_add_header(h, "Allow", r->allow);
    if (r->close || atomic_load(&qd_draining)) evhttp_add_header(h, "Connection", "close");
    struct evbuffer *ob = evhttp_request_get_output_buffer(r->req);
    evbuffer_add(ob, r->out->p, r->out->len);
    r->t->pending++;
    evhttp_request_set_on_complete_cb(r->req, on_complete, r->t);
    evhttp_send_reply(r->req, status, reason(status), NULL);
}

void qd_reply(qd_req *r, int status) { send_now(r, status, "application/json"); }

static void error_v(qd_req *r, int status, const char *code, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    jb_reset(r->out);
    jb_lit(r->out, "{\"error\":{\"code\":");
    jb_cstr(r->out, code);
    jb_lit(r->out, ",\"message\":");
    jb_cstr(r->out, msg);
    jb_lit(r->out, "}}");
    qd_reply(r, status);
}

void qd_error(qd_req *r, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_v(r, status, code, fmt, ap);
    va_end(ap);
}

void qd_error_qz(qd_req *r, int rc, const char *prefix)
{
    int status = 500;
    const char *code = "internal";
    switch (rc) {
    case QZ_EINVAL: status = 400; code = "invalid_argument"; break;
    case QZ_ENOTFOUND: status = 404; code = "not_found"; break;
    case QZ_EEXISTS: status = 409; code = "already_exists"; break;
    case QZ_EDIM: status = 422; code = "dimension_mismatch"; break;
    case QZ_ENONFINITE: status = 422; code = "non_finite"; break;
    case QZ_EZEROVEC: status = 422; code = "zero_vector"; break;
    case QZ_ERANGE: status = 422; code = "out_of_range"; break;
    case QZ_ENOMEM: case QZ_EIO: case QZ_EFULL: case QZ_EBUSY: case QZ_EREADONLY: case QZ_ECORRUPT:
        status = 503; code = "unavailable"; break;
    default: break;
    }
    const char *m = qz_errmsg();
    qd_error(r, status, code, "%s%s", prefix ? prefix : "", *m ? m : qz_strerror(rc));
}

/* cJSON keeps strings NUL-terminated, so a \u0000 escape would silently cut
 * a string short (an id "a\u0000b" stored as "a"). Find one before parsing:
 * outside strings valid JSON has no backslash, and inside them a backslash
 * always starts a two-character escape, so skipping the escaped character
 * keeps "\\u0000" (a backslash, then text) from matching. */
static bool has_escaped_nul(const char *s, size_t n, size_t *at)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\') continue;
        if (s[i + 1] == 'u' && i + 5 < n && s[i + 2] == '0' && s[i + 3] == '0' && s[i + 4] == '0' &&
            s[i + 5] == '0') {
            *at = i;
            return true;
        }
        i++;
    }
    return false;
}

cJSON *qd_parse_object(qd_req *r, const char *body, size_t blen)
{
    if (blen == 0) {
        qd_error(r, 400, "invalid_json", "the request body is empty; a JSON object is expected");
        return NULL;
    }
    size_t nul_at;
    if (has_escaped_nul(body, blen, &nul_at)) {
        qd_error(r, 400, "invalid_argument",
                 "the body has a \\u0000 escape at byte %zu; strings must not contain U+0000", nul_at);
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, blen, &end, 0);
    if (!j) {
        size_t at = end ? (size_t)(end - body) : 0;
        if (at > blen) at = blen;
        qd_error(r, 400, "invalid_json", "the body is not valid JSON (error near byte %zu)", at);
        return NULL;
    }
    /* Trailing bytes other than white space are an error too. */
    if (end) {
        while ((size_t)(end - body) < blen && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')) end++;
        if ((size_t)(end - body) < blen) {
            cJSON_Delete(j);
            qd_error(r, 400, "invalid_json", "the body is not valid JSON (trailing data at byte %zu)",
                     (size_t)(end - body));
            return NULL;
        }
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        qd_error(r, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

bool qd_read_vector(qd_req *r, const cJSON *arr, uint32_t dim, float *out, const char *what, long row)
{
    char pre[32] = "";
    if (row >= 0) snprintf(pre, sizeof pre, "row %ld: ", row);
    if (!arr) {
        qd_error(r, 400, "invalid_argument", "%smissing field \"%s\"", pre, what);
        return false;
    }
    if (!cJSON_IsArray(arr)) {
        qd_error(r, 400, "invalid_argument", "%s%s must be an array of numbers", pre, what);
        return false;
    }
    size_t i = 0;
    for (const cJSON *c = arr->child; c; c = c->next, i++) {
        if (i < dim) {
            if (!cJSON_IsNumber(c)) {
                qd_error(r, 400, "invalid_argument", "%s%s component %zu is not a number", pre, what, i);
                return false;
            }
            out[i] = (float)c->valuedouble;
        }
    }
    if (i != dim) {
        qd_error(r, 422, "dimension_mismatch", "%s%s has %zu dimensions, index expects %u", pre, what, i, dim);
        return false;
    }
    for (i = 0; i < dim; i++)
        if (!isfinite(out[i])) {
            qd_error(r, 422, "non_finite", "%s%s component %zu is not finite", pre, what, i);
            return false;
        }
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool qd_pct_decode(char *s, size_t *len)
{
    size_t o = 0, n = *len;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            s[o++] = s[i];
            continue;
        }
        if (i + 2 >= n) return false;
        int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
        if (a < 0 || b < 0) return false;
        s[o++] = (char)(a * 16 + b);
        i += 2;
    }
    s[o] = 0;
    *len = o;
    return true;
}

/* ---- routing ---- */

typedef struct route {
    int id;
    const char *allow;  /* methods, as the Allow header lists them */
    char *index;        /* named index or NULL (default); points into the path copy */
    const char *op;     /* vector op / kv op */
    char *arg;          /* {id} or {key}, still percent-encoded */
} route;

static bool seg_is(const char *p, const char *s, const char **rest)
{
    size_t n = strlen(s);
    if (strncmp(p, s, n) != 0) return false;
    *rest = p + n;
    return true;
}

static void resolve_vector(route *rt, char *p)
{
    const char *rest;
    rt->id = R_UNKNOWN;
    if (strcmp(p, "insert") == 0) { rt->id = R_V_INSERT; rt->allow = "POST"; }
    else if (strcmp(p, "upsert") == 0) { rt->id = R_V_UPSERT; rt->allow = "POST"; }
    else if (strcmp(p, "batch-insert") == 0) { rt->id = R_V_BATCH; rt->allow = "POST"; }
    else if (strcmp(p, "search") == 0) { rt->id = R_V_SEARCH; rt->allow = "POST"; }
    else if (strcmp(p, "get") == 0) { rt->id = R_V_GET_MANY; rt->allow = "POST"; }
    else if (strcmp(p, "delete") == 0) { rt->id = R_V_DELETE_MANY; rt->allow = "POST"; }
    else if (strcmp(p, "stats") == 0) { rt->id = R_V_STATS; rt->allow = "GET"; }
    else if (seg_is(p, "get/", &rest) && *rest && rest[strcspn(rest, "/")] == 0) { rt->id = R_V_GET; rt->allow = "GET"; rt->arg = p + 4; }
    else if (seg_is(p, "delete/", &rest) && *rest && rest[strcspn(rest, "/")] == 0) { rt->id = R_V_DELETE; rt->allow = "DELETE"; rt->arg = p + 7; }
    rt->op = p;
}

static void resolve(route *rt, char *path)
{
    const char *rest;
    memset(rt, 0, sizeof *rt);
    rt->id = R_UNKNOWN;
    if (strcmp(path, "/health") == 0) { rt->id = R_HEALTH; rt->allow = "GET"; }
    else if (strcmp(path, "/metrics") == 0) { rt->id = R_METRICS; rt->allow = "GET"; }
    else if (strcmp(path, "/api/put") == 0) { rt->id = R_KV_PUT; rt->allow = "POST"; }
    else if (seg_is(path, "/api/get/", &rest) && *rest && rest[strcspn(rest, "/")] == 0) { rt->id = R_KV_GET; rt->allow = "GET"; rt->arg = path + 9; }
    else if (seg_is(path, "/api/delete/", &rest) && *rest && rest[strcspn(rest, "/")] == 0) { rt->id = R_KV_DELETE; rt->allow = "DELETE"; rt->arg = path + 12; }
    else if (strcmp(path, "/api/indexes") == 0) { rt->id = R_INDEXES; rt->allow = "GET, POST"; }
    else if (seg_is(path, "/api/vector/", &rest)) resolve_vector(rt, path + 12);
    else if (seg_is(path, "/api/indexes/", &rest) && *rest) {
        char *name = path + 13;
        char *slash = strchr(name, '/');
        if (!slash) {
            rt->id = R_INDEX;
            rt->allow = "GET, DELETE";
            rt->index = name;
        } else if (strncmp(slash, "/vector/", 8) == 0) {
            *slash = 0;
            rt->index = name;
            resolve_vector(rt, slash + 8);
        }
    }
}

static bool is_read(int id, const char *method)
{
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) return true;
    return strcmp(method, "POST") == 0 && (id == R_V_SEARCH || id == R_V_GET_MANY);
}

static bool method_allowed(const char *allow, const char *method)
{
    if (strcmp(method, "HEAD") == 0) method = "GET";
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)); p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == 0 || p[n] == ',')) return true;
    return false;
}

static const char *method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

static bool good_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= 64 || s[n] < 0x21 || s[n] > 0x7e) return false;
    return n > 0;
}

static const char *bearer(struct evkeyvalq *in, size_t *len)
{
    const char *a = evhttp_find_header(in, "Authorization");
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ') a++;
        size_t n = strlen(a);
        while (n && (a[n - 1] == ' ' || a[n - 1] == '\t')) n--;
        *len = n;
        return a;
    }
    a = evhttp_find_header(in, "X-API-Key");
    if (a) {
        *len = strlen(a);
        return a;
    }
    return NULL;
}

static void log_line(qd_thread *t, const char *method, int rid, const char *index, int status, double secs,
                     const char *reqid, size_t in_bytes, size_t out_bytes)
{
    jbuf *b = &t->log;
    jb_reset(b);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char ts[64];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    jb_lit(b, "{\"time\":\"");
    jb_lit(b, ts);
    jb_lit(b, "\",\"method\":");
    jb_cstr(b, method);
    jb_lit(b, ",\"route\":");
    jb_cstr(b, qd_route_names[rid]);
    if (index) {
        jb_lit(b, ",\"index\":");
        jb_cstr(b, index);
    }
    jb_lit(b, ",\"status\":");
    jb_u64(b, (uint64_t)status);
    char lat[32];
    snprintf(lat, sizeof lat, "%.3f", secs * 1000.0);
    jb_lit(b, ",\"latency_ms\":");
    jb_lit(b, lat);
    jb_lit(b, ",\"request_id\":");
    jb_cstr(b, reqid);
    jb_lit(b, ",\"bytes_in\":");
    jb_u64(b, in_bytes);
    jb_lit(b, ",\"bytes_out\":");
    jb_u64(b, out_bytes);
    jb_lit(b, "}\n");
    if (!b->oom && write(2, b->p, b->len) < 0) { /* nothing to do: stderr is gone */
    }
}

static void dispatch(qd_req *r, route *rt, const char *method, const char *body, size_t blen)
{
    size_t n;
    switch (rt->id) {
    case R_HEALTH: qd_route_health(r); return;
    case R_METRICS:
        jb_reset(r->out);
        qd_metrics_render(r->out);
        send_now(r, 200, "text/plain; version=0.0.4; charset=utf-8");
        return;
    case R_KV_PUT: case R_KV_GET: case R_KV_DELETE:
        qd_route_kv(r, rt->id == R_KV_PUT ? "put" : rt->id == R_KV_GET ? "get" : "delete", rt->arg, method, body, blen);
        return;
    case R_INDEXES: qd_route_indexes(r, NULL, method, body, blen); return;
    case R_INDEX:
        n = strlen(rt->index);
        if (!qd_pct_decode(rt->index, &n) || !qd_valid_index_name(rt->index, n)) {
            qd_error(r, 404, "not_found", "no index named %.80s (names match [A-Za-z0-9_-]{1,64})", rt->index);
            return;
        }
        qd_route_indexes(r, rt->index, method, body, blen);
        return;
    default: break;
    }
    const char *name = "default";
    if (rt->index) {
        n = strlen(rt->index);
        if (!qd_pct_decode(rt->index, &n) || !qd_valid_index_name(rt->index, n)) {
            qd_error(r, 404, "not_found", "no index named %.80s (names match [A-Za-z0-9_-]{1,64})", rt->index);
            return;
        }
        name = rt->index;
    }
    qd_index *ix = qd_index_acquire(name);
    if (!ix) {
        qd_error(r, 404, "not_found", "no index named %s", name);
        return;
    }
    const char *op = rt->op;
    if (rt->id == R_V_GET) op = "get1";
    if (rt->id == R_V_DELETE) op = "delete1";
    qd_route_vector(r, ix, op, rt->arg, method, body, blen);
    qd_index_release(ix);
}

void qd_handle(struct evhttp_request *req, void *arg)
{
    qd_thread *t = arg;
    uint64_t t0 = qd_now_ns();
    t->last_start = t0;
    qd_req r = {.req = req, .t = t, .out = &t->out};
    jb_reset(&t->out);

    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    char ridbuf[40];
    const char *rid = in ? evhttp_find_header(in, "X-Request-Id") : NULL;
    if (!rid || !good_request_id(rid)) {
        snprintf(ridbuf, sizeof ridbuf, "qd-%u-%llx-%llx", t->index, (unsigned long long)(t0 / 1000),
                 (unsigned long long)++t->seq);
        rid = ridbuf;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Request-Id", rid);
    const char *method = method_name(evhttp_request_get_command(req));
    struct evbuffer *ib = evhttp_request_get_input_buffer(req);
    size_t blen = ib ? evbuffer_get_length(ib) : 0;
    route rt = {.id = R_UNKNOWN};

    const char *uri = evhttp_request_get_uri(req);
    if (!uri || evhttp_request_get_response_code(req) == 413) {
        /* libevent gave up reading a body over --max-body. */
        r.close = true;
        qd_error(&r, 413, "payload_too_large", "the request body is larger than the limit of %zu bytes",
                 qd_cfg.max_body);
        goto done;
    }
    size_t plen = strcspn(uri, "?#");
    if (plen + 1 > t->npath) {
        char *p = realloc(t->path, plen + 1);
        if (!p) {
            qd_error(&r, 503, "unavailable", "out of memory");
            goto done;
        }
        t->path = p;
        t->npath = plen + 1;
    }
    memcpy(t->path, uri, plen);
    t->path[plen] = 0;
    resolve(&rt, t->path);

    if (rt.id != R_HEALTH && qd_auth_enabled()) {
        size_t kn = 0;
        const char *key = in ? bearer(in, &kn) : NULL;
        qd_role role = key ? qd_auth_check(key, kn) : QD_ROLE_NONE;
        if (role == QD_ROLE_NONE) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
            qd_error(&r, 401, "unauthorized", key ? "the API key is not valid" : "an API key is required "
                     "(Authorization: Bearer KEY or X-API-Key: KEY)");
            goto done;
        }
        if (role == QD_ROLE_RO && !is_read(rt.id, method)) {
            qd_error(&r, 403, "forbidden", "the API key is read-only; %s %s needs a read-write key", method,
                     rt.id == R_UNKNOWN ? "this route" : qd_route_names[rt.id]);
            goto done;
        }
    }
    if (blen > qd_cfg.max_body) {
        qd_error(&r, 413, "payload_too_large", "the request body is %zu bytes, larger than the limit of %zu bytes",
                 blen, qd_cfg.max_body);
        goto done;
    }
    if (rt.id == R_UNKNOWN) {
        qd_error(&r, 404, "not_found", "no route %s %.200s", method, t->path);
        goto done;
    }
    if (!method_allowed(rt.allow, method)) {
        r.allow = rt.allow;
        qd_error(&r, 405, "method_not_allowed", "%s is not allowed on %s (allowed: %s)", method,
                 qd_route_names[rt.id], rt.allow);
        goto done;
    }
    const char *body = blen ? (const char *)evbuffer_pullup(ib, -1) : "";
    if (blen && !body) {
        qd_error(&r, 503, "unavailable", "out of memory reading the body");
        goto done;
    }
    dispatch(&r, &rt, method, body, blen);
    if (!r.sent) qd_error(&r, 500, "internal", "the route sent no response");

done:;
    double secs = (double)(qd_now_ns() - t0) / 1e9;
    qd_metrics_observe(t->metrics, rt.id, r.status, secs);
    log_line(t, method, rt.id, rt.index, r.status, secs, rid, blen, t->out.len);
}
