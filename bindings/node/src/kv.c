/*
 * kv.c - the key-value store beside the vectors.
 *
 *   kvPut(key, value)             key: string (UTF-8) or bytes; value: as metadata
 *                                 (bytes, string, or an object stored as JSON)
 *   kvGet(key, { encoding? })     Buffer (default), string or parsed JSON;
 *                                 QuartzError QZ_ENOTFOUND for a missing key
 *   kvDelete(key)                 QZ_ENOTFOUND for a missing key
 *   kvScan(prefix?, { encoding? }) [[key, value], ...] in ascending byte order of the
 *                                 keys; keys come back as strings when the prefix is a
 *                                 string (or absent), as Buffers when it is bytes
 */
#include <stdlib.h>
#include <string.h>

#include "qzn.h"

static int read_key(napi_env env, size_t argc, napi_value *argv, qzn_bytes *key)
{
    if (argc < 1 || qzn_is_nullish(env, argv[0])) {
        qzn_throw_type(env, "key must be a string, Buffer or Uint8Array, got %s", argc < 1 ? "nothing" : "null/undefined");
        return -1;
    }
    return qzn_get_bytes(env, argv[0], "key", 0, key);
}

napi_value qzn_kv_put(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2], u;
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    qzn_bytes key, val;
    if (read_key(env, argc, argv, &key)) return NULL;
    if (argc < 2) {
        qzn_bytes_free(&key);
        return qzn_throw_type(env, "value must be a Buffer, Uint8Array, string or a plain object, got nothing");
    }
    if (qzn_get_bytes(env, argv[1], "value", 1, &val)) {
        qzn_bytes_free(&key);
        return NULL;
    }
    int rc = qz_kv_put(h->db, key.data ? key.data : "", key.len, val.data ? val.data : "", val.len);
    qzn_bytes_free(&key);
    qzn_bytes_free(&val);
    if (rc < 0) return qzn_throw_status(env, rc);
    napi_get_undefined(env, &u);
    return u;
}

napi_value qzn_kv_get(napi_env env, napi_callback_info info)
{
    static const char *const known[] = {"encoding", NULL};
    size_t argc = 2;
    napi_value argv[2];
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    qzn_encoding enc = QZN_ENC_BUFFER;
    int present;
    napi_value opts = argc > 1 ? argv[1] : NULL;
    if (qzn_get_opts(env, opts, "kvGet options", &present)) return NULL;
    if (present && (qzn_check_keys(env, opts, "kvGet options", known) || qzn_get_encoding(env, opts, "encoding", &enc)))
        return NULL;
    qzn_bytes key;
    if (read_key(env, argc, argv, &key)) return NULL;
    char small[1024];
    char *buf = small;
    size_t cap = sizeof small, len = 0;
    int rc;
    for (;;) { /* the value may grow between two reads (a concurrent put) */
        rc = qz_kv_get(h->db, key.data ? key.data : "", key.len, buf, cap, &len);
        if (rc != QZ_ETOOSMALL) break;
        if (buf != small) free(buf);
        cap = len;
        buf = malloc(cap ? cap : 1);
        if (!buf) {
            qzn_bytes_free(&key);
            return qzn_throw_msg(env, QZ_ENOMEM, "out of memory reading a value of %zu bytes", len);
        }
    }
    qzn_bytes_free(&key);
    napi_value v = NULL;
    if (rc < 0) qzn_throw_status(env, rc);
    else v = qzn_bytes_to_js(env, buf, len, enc);
    if (buf != small) free(buf);
    return v;
}

napi_value qzn_kv_delete(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], u;
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    qzn_bytes key;
    if (read_key(env, argc, argv, &key)) return NULL;
    int rc = qz_kv_delete(h->db, key.data ? key.data : "", key.len);
    qzn_bytes_free(&key);
    if (rc < 0) return qzn_throw_status(env, rc);
    napi_get_undefined(env, &u);
    return u;
}

typedef struct scan_ctx {
    napi_env env;
    napi_value out;
    uint32_t n;
    int string_keys;
    qzn_encoding enc;
    int failed; /* a JS exception is pending */
} scan_ctx;

static int scan_one(const void *key, size_t klen, const void *val, size_t vlen, void *user)
{
    scan_ctx *c = user;
    napi_value pair, k, v;
    if (c->string_keys) {
        if (napi_create_string_utf8(c->env, key, klen, &k) != napi_ok) goto fail;
    } else if (!(k = qzn_bytes_to_js(c->env, key, klen, QZN_ENC_BUFFER))) {
        goto fail;
    }
    if (!(v = qzn_bytes_to_js(c->env, val, vlen, c->enc))) goto fail;
    if (napi_create_array_with_length(c->env, 2, &pair) != napi_ok || napi_set_element(c->env, pair, 0, k) != napi_ok ||
        napi_set_element(c->env, pair, 1, v) != napi_ok || napi_set_element(c->env, c->out, c->n++, pair) != napi_ok)
        goto fail;
    return 0;
fail:
    c->failed = 1;
    return 1; /* stop the scan; the exception is thrown after it */
}

napi_value qzn_kv_scan(napi_env env, napi_callback_info info)
{
    static const char *const known[] = {"encoding", NULL};
    size_t argc = 2;
    napi_value argv[2];
    qzn_db *h = qzn_this_open(env, info, &argc, argv, NULL);
    if (!h) return NULL;
    scan_ctx c = {.env = env, .string_keys = 1};
    qzn_bytes prefix = {0};
    if (argc > 0 && !qzn_is_nullish(env, argv[0])) {
        napi_valuetype t;
        napi_typeof(env, argv[0], &t);
        c.string_keys = t == napi_string;
        if (qzn_get_bytes(env, argv[0], "prefix", 0, &prefix)) return NULL;
    }
    int present;
    napi_value opts = argc > 1 ? argv[1] : NULL;
    if (qzn_get_opts(env, opts, "kvScan options", &present) ||
        (present && (qzn_check_keys(env, opts, "kvScan options", known) ||
                     qzn_get_encoding(env, opts, "encoding", &c.enc)))) {
        qzn_bytes_free(&prefix);
        return NULL;
    }
    if (napi_create_array(env, &c.out) != napi_ok) {
        qzn_bytes_free(&prefix);
        return qzn_throw_napi(env, napi_generic_failure);
    }
    int rc = qz_kv_scan(h->db, prefix.data, prefix.len, scan_one, &c);
    qzn_bytes_free(&prefix);
    if (c.failed) {
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (!pending) qzn_throw_napi(env, napi_generic_failure);
        return NULL;
    }
    if (rc < 0) return qzn_throw_status(env, rc);
    return c.out;
}
