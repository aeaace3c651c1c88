/*
 * routes_admin.c - /health, the index routes and the key-value routes.
 *
 * The key-value store is the default index's qz_kv store. User keys are
 * stored under "u" + KEY when KEY has at most 510 bytes; longer keys (up to
 * the contract's 1024) under "h" + two 64-bit hashes in hex, with the full
 * key kept in front of the value (KEY, 0x00, value) so that a lookup checks
 * it. Internal keys (QD_KV_EF_SEARCH) start with "c:", so they never clash.
 *
 * Copyright (c) 2026 The QuartzDB authors. MIT licence (see LICENSE).
 */
#include "quartzd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_MAX_USER_KEY 1024
#define KV_DIRECT_MAX (QZ_MAX_KEY - 1)

void qd_route_health(qd_req *r)
{
    jb_reset(r->out);
    jb_lit(r->out, "{\"status\":\"ok\",\"version\":");
    jb_cstr(r->out, qz_version_string());
    jb_lit(r->out, ",\"indexes\":");
    jb_u64(r->out, qd_index_count());
    jb_char(r->out, '}');
    qd_reply(r, 200);
}

/* ---- indexes ---- */

bool qd_field_uint(qd_req *r, const cJSON *j, const char *name, bool required, double lo, double hi,
                   uint32_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    *out = 0;
    if (!v || cJSON_IsNull(v)) {
        if (required) qd_error(r, 400, "invalid_argument", "missing field \"%s\"", name);
        return !required;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
        qd_error(r, 400, "invalid_argument", "\"%s\" must be an integer", name);
        return false;
    }
    if (v->valuedouble < lo || v->valuedouble > hi) {
        qd_error(r, 422, "out_of_range", "%s must be from %.0f to %.0f, got %.17g", name, lo, hi, v->valuedouble);
        return false;
    }
    *out = (uint32_t)v->valuedouble;
    return true;
}

static void create_index(qd_req *r, const char *body, size_t blen)
{
    cJSON *j = qd_parse_object(r, body, blen);
    if (!j) return;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(j, "metric");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    uint32_t dim, M, efc, efs, m = QZ_METRIC_COSINE, dt = QZ_DTYPE_DEFAULT;
    if (!cJSON_IsString(name)) {
        qd_error(r, 400, "invalid_argument", name ? "\"name\" must be a string" : "missing field \"name\"");
        goto out;
    }
    if (!qd_valid_index_name(name->valuestring, strlen(name->valuestring))) {
        qd_error(r, 400, "invalid_argument", "bad index name \"%.80s\": names match [A-Za-z0-9_-]{1,64}",
                 name->valuestring);
        goto out;
    }
    if (!qd_field_uint(r, j, "dimension", true, 1, QZ_MAX_DIMENSIONS, &dim) ||
        !qd_field_uint(r, j, "M", false, 2, QZ_MAX_M, &M) ||
        !qd_field_uint(r, j, "ef_construction", false, 1, QZ_MAX_EF, &efc) ||
        !qd_field_uint(r, j, "ef_search", false, 1, QZ_MAX_EF, &efs))
        goto out;
    if (metric && !cJSON_IsNull(metric)) {
        if (!cJSON_IsString(metric)) {
            qd_error(r, 400, "invalid_argument", "\"metric\" must be a string");
            goto out;
        }
        m = 0;
        for (uint32_t c = QZ_METRIC_COSINE; c <= QZ_METRIC_HAMMING; c++)
            if (strcmp(qz_metric_name(c), metric->valuestring) == 0) m = c;
        if (!m) {
            qd_error(r, 400, "invalid_argument", "unknown metric \"%.40s\" (cosine, l2, ip or hamming)",
                     metric->valuestring);
            goto out;
        }
    }
    if (dtype && !cJSON_IsNull(dtype)) {
        if (!cJSON_IsString(dtype)) {
            qd_error(r, 400, "invalid_argument", "\"dtype\" must be a string");
            goto out;
        }
        for (uint32_t c = QZ_DTYPE_F32; c <= QZ_DTYPE_BINARY; c++)
            if (strcmp(qd_dtype_name(c), dtype->valuestring) == 0) dt = c;
        if (!dt) {
            qd_error(r, 400, "invalid_argument", "unknown dtype \"%.40s\" (f32, f16, int8 or binary)",
                     dtype->valuestring);
            goto out;
        }
    }
    const char *code = "internal";
    char err[600];
    int st = qd_index_create(name->valuestring, dim, m, dt, M, efc, efs, &code, err, sizeof err);
    if (st) {
        qd_error(r, st, code, "%s", err);
        goto out;
    }
    qd_index *ix = qd_index_acquire(name->valuestring);
    jb_reset(r->out);
    jb_lit(r->out, "{\"index\":");
    if (ix) qd_index_describe(ix, r->out);
    else jb_lit(r->out, "null");
    jb_char(r->out, '}');
    qd_index_release(ix);
    qd_reply(r, 201);
out:
    cJSON_Delete(j);
}

void qd_route_indexes(qd_req *r, const char *name, const char *method, const char *body, size_t blen)
{
    if (!name && strcmp(method, "POST") == 0) {
        create_index(r, body, blen);
        return;
    }
    if (!name) {
        char(*names)[65];
        size_t n = qd_index_names(&names);
        jb_reset(r->out);
        jb_lit(r->out, "{\"indexes\":[");
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            qd_index *ix = qd_index_acquire(names[i]);
            if (!ix) continue; /* dropped meanwhile */
            if (w++) jb_char(r->out, ',');
            qd_index_describe(ix, r->out);
            qd_index_release(ix);
        }
        jb_lit(r->out, "]}");
        free(names);
        qd_reply(r, 200);
        return;
    }
    if (strcmp(method, "DELETE") == 0) {
        const char *code = "internal";
        char err[300];
        int st = qd_index_drop(name, &code, err, sizeof err);
        if (st) {
            qd_error(r, st, code, "%s", err);
            return;
        }
        jb_reset(r->out);
        jb_lit(r->out, "{\"deleted\":true,\"name\":");
        jb_cstr(r->out, name);
        jb_char(r->out, '}');
        qd_reply(r, 200);
        return;
    }
    qd_index *ix = qd_index_acquire(name);
    if (!ix) {
        qd_error(r, 404, "not_found", "no index named %s", name);
        return;
    }
    jb_reset(r->out);
    jb_lit(r->out, "{\"index\":");
    qd_index_describe(ix, r->out);
    jb_char(r->out, '}');
    qd_index_release(ix);
    qd_reply(r, 200);
}

/* ---- key-value ---- */

typedef struct kvkey {
    char k[QZ_MAX_KEY];
    size_t n;
    bool hashed;
} kvkey;

static bool kv_key(qd_req *r, const char *key, size_t n, kvkey *out)
{
    if (n == 0 || n > KV_MAX_USER_KEY) {
        qd_error(r, 400, "invalid_argument", "key must be 1 to %d bytes, got %zu", KV_MAX_USER_KEY, n);
        return false;
    }
    if (memchr(key, 0, n)) {
        qd_error(r, 400, "invalid_argument", "key must not contain a NUL character");
        return false;
    }
    if (n <= KV_DIRECT_MAX) {
        out->k[0] = 'u';
        memcpy(out->k + 1, key, n);
        out->n = n + 1;
        out->hashed = false;
    } else {
        out->n = (size_t)snprintf(out->k, sizeof out->k, "h%016llx%016llx",
                                  (unsigned long long)qd_hash64(key, n, 0),
                                  (unsigned long long)qd_hash64(key, n, 0x9e3779b97f4a7c15ull));
        out->hashed = true;
    }
    return true;
}

static qd_index *kv_index(qd_req *r)
{
    qd_index *ix = qd_index_acquire("default");
    if (!ix) qd_error(r, 503, "unavailable", "the default index is not open");
    return ix;
}

/* Value of a key: 1 found (value in *v), 0 absent, <0 error. */
static int kv_read(qd_req *r, qd_index *ix, const kvkey *k, const char *key, size_t kn, const char **v,
                   size_t *vn)
{
    size_t cap = 4096;
    for (int tries = 0; tries < 3; tries++) {
        char *buf = qd_scratch_bytes(r->t, cap);
        if (!buf) return QZ_ENOMEM;
        size_t n = 0;
        int rc = qz_kv_get(ix->db, k->k, k->n, buf, cap, &n);
        if (rc == QZ_ETOOSMALL && n > cap) {
            cap = n;
            continue;
        }
        if (rc == QZ_ENOTFOUND) return 0;
        if (rc < 0) return rc;
        if (k->hashed) {
            if (n < kn + 1 || memcmp(buf, key, kn) != 0 || buf[kn] != 0) return 0;
            buf += kn + 1;
            n -= kn + 1;
        }
        *v = buf;
        *vn = n;
        return 1;
    }
    return QZ_ENOMEM;
}

static void kv_put(qd_req *r, const char *body, size_t blen)
{
    cJSON *j = qd_parse_object(r, body, blen);
    if (!j) return;
    qd_index *ix = NULL;
    char *text = NULL;
    kvkey k;
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(j, "key");
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(j, "value");
    if (!cJSON_IsString(key)) {
        qd_error(r, 400, "invalid_argument", key ? "\"key\" must be a string" : "missing field \"key\"");
        goto out;
    }
    size_t kn = strlen(key->valuestring);
    if (!kv_key(r, key->valuestring, kn, &k)) goto out;
    if (!val) {
        qd_error(r, 400, "invalid_argument", "missing field \"value\"");
        goto out;
    }
    text = cJSON_PrintUnformatted(val);
    if (!text) {
        qd_error(r, 503, "unavailable", "out of memory");
        goto out;
    }
    jbuf *env = qd_scratch_jbuf(r->t);
    jb_reset(env);
    if (k.hashed) {
        jb_raw(env, key->valuestring, kn);
        jb_char(env, 0);
    }
    jb_lit(env, text);
    if (env->len > QZ_MAX_METADATA) {
        qd_error(r, 422, "out_of_range", "value is %zu bytes, the limit is %u", env->len, QZ_MAX_METADATA);
        goto out;
    }
    if (!(ix = kv_index(r))) goto out;
    if (k.hashed) { /* another long key with the same hashes? */
        const char *v;
        size_t vn;
        kvkey probe = k;
        size_t cap = 0, n = 0;
        int rc = qz_kv_get(ix->db, probe.k, probe.n, NULL, cap, &n);
        if (rc == QZ_OK || rc == QZ_ETOOSMALL) {
            if (kv_read(r, ix, &k, key->valuestring, kn, &v, &vn) == 0) {
                qd_error(r, 409, "id_collision", "key maps to a stored key of another long key");
                goto out;
            }
        }
    }
    int rc = qz_kv_put(ix->db, k.k, k.n, env->p, env->len);
    if (rc < 0) {
        qd_error_qz(r, rc, "");
        goto out;
    }
    jb_reset(r->out);
    jb_lit(r->out, "{\"key\":");
    jb_str(r->out, key->valuestring, kn);
    jb_lit(r->out, ",\"stored\":true}");
    qd_reply(r, 200);
out:
    qd_index_release(ix);
    free(text);
    cJSON_Delete(j);
}

void qd_route_kv(qd_req *r, const char *op, const char *arg, const char *method, const char *body,
                 size_t blen)
{
    if (strcmp(op, "put") == 0) {
        kv_put(r, body, blen);
        return;
    }
    char *key = (char *)arg;
    size_t kn = strlen(key);
    if (!qd_pct_decode(key, &kn)) {
        qd_error(r, 400, "invalid_argument", "the key in the path has a bad percent escape");
        return;
    }
    kvkey k;
    if (!kv_key(r, key, kn, &k)) return;
    qd_index *ix = kv_index(r);
    if (!ix) return;
    const char *v;
    size_t vn;
    int rc = kv_read(r, ix, &k, key, kn, &v, &vn);
    if (rc < 0) {
        qd_error_qz(r, rc, "");
    } else if (rc == 0) {
        qd_error(r, 404, "not_found", "no key \"%.200s\"", key);
    } else if (strcmp(op, "get") == 0) {
        jb_reset(r->out);
        jb_lit(r->out, "{\"key\":");
        jb_str(r->out, key, kn);
        jb_lit(r->out, ",\"value\":");
        if (vn)
            jb_raw(r->out, v, vn);
        else
            jb_lit(r->out, "null");
        jb_char(r->out, '}');
        qd_reply(r, 200);
    } else {
        rc = qz_kv_delete(ix->db, k.k, k.n);
        if (rc == QZ_ENOTFOUND) {
            qd_error(r, 404, "not_found", "no key \"%.200s\"", key);
        } else if (rc < 0) {
            qd_error_qz(r, rc, "");
        } else {
            jb_reset(r->out);
            jb_lit(r->out, "{\"key\":");
            jb_str(r->out, key, kn);
            jb_lit(r->out, ",\"deleted\":true}");
            qd_reply(r, 200);
        }
    }
    qd_index_release(ix);
}
