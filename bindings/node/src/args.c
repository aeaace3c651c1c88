/*
 * args.c - JS values to C values, with the binding's type rules:
 * a wrong JS type is a TypeError, a number the argument cannot hold is a
 * RangeError, and everything else is left for libquartz to judge (so the
 * binding and the C library report the same codes and messages).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qzn.h"

#define MAX_SAFE 9007199254740991.0 /* Number.MAX_SAFE_INTEGER */

static const char *type_name(napi_env env, napi_value v)
{
    napi_valuetype t = napi_undefined;
    if (napi_typeof(env, v, &t) != napi_ok) return "unknown";
    switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_function: return "function";
    case napi_external: return "external";
    case napi_bigint: return "bigint";
    case napi_object: {
        bool yes = false;
        if (napi_is_array(env, v, &yes) == napi_ok && yes) return "Array";
        if (napi_is_typedarray(env, v, &yes) == napi_ok && yes) {
            napi_typedarray_type tt;
            size_t n;
            if (napi_get_typedarray_info(env, v, &tt, &n, NULL, NULL, NULL) == napi_ok) {
                switch (tt) {
                case napi_float64_array: return "Float64Array";
                case napi_float32_array: return "Float32Array";
                case napi_uint8_array: return "Uint8Array";
                case napi_int32_array: return "Int32Array";
                case napi_bigint64_array: return "BigInt64Array";
                case napi_biguint64_array: return "BigUint64Array";
                default: return "TypedArray";
                }
            }
        }
        return "object";
    }
    }
    return "unknown";
}

int qzn_is_nullish(napi_env env, napi_value v)
{
    napi_valuetype t = napi_undefined;
    if (!v) return 1;
    napi_typeof(env, v, &t);
    return t == napi_undefined || t == napi_null;
}

static int fail(void) { return -1; }

int qzn_get_uint(napi_env env, napi_value v, const char *what, uint64_t max, uint64_t *out)
{
    napi_valuetype t = napi_undefined;
    napi_typeof(env, v, &t);
    if (t == napi_bigint) {
        uint64_t x = 0;
        bool lossless = false;
        if (napi_get_value_bigint_uint64(env, v, &x, &lossless) != napi_ok) return qzn_throw_napi(env, napi_generic_failure), fail();
        if (!lossless || x > max)
            return qzn_throw_range(env, "%s must be an integer in 0..%llu", what, (unsigned long long)max), fail();
        *out = x;
        return 0;
    }
    if (t == napi_number) {
        double d = 0;
        napi_get_value_double(env, v, &d);
        double top = (double)max < MAX_SAFE ? (double)max : MAX_SAFE;
        if (!(d >= 0 && d <= top && d == floor(d)))
            return qzn_throw_range(env, "%s must be an integer in 0..%.0f, got %g", what, top, d), fail();
        *out = (uint64_t)d;
        return 0;
    }
    qzn_throw_type(env, "%s must be a number, got %s", what, type_name(env, v));
    return fail();
}

int qzn_get_id(napi_env env, napi_value v, const char *what, uint64_t *out)
{
    napi_valuetype t = napi_undefined;
    napi_typeof(env, v, &t);
    if (t == napi_bigint) {
        bool lossless = false;
        if (napi_get_value_bigint_uint64(env, v, out, &lossless) != napi_ok) return qzn_throw_napi(env, napi_generic_failure), fail();
        if (!lossless) return qzn_throw_range(env, "%s must be in 0n..2n**64n-1n", what), fail();
        return 0;
    }
    if (t == napi_number) {
        double d = 0;
        napi_get_value_double(env, v, &d);
        if (!(d >= 0 && d <= MAX_SAFE && d == floor(d)))
            return qzn_throw_range(env, "%s must be a bigint or a safe integer >= 0, got %g", what, d), fail();
        *out = (uint64_t)d;
        return 0;
    }
    qzn_throw_type(env, "%s must be a bigint or a number, got %s", what, type_name(env, v));
    return fail();
}

int qzn_get_f32(napi_env env, napi_value v, const char *what, float **data, size_t *len)
{
    bool is = false;
    if (v) napi_is_typedarray(env, v, &is);
    napi_typedarray_type tt = napi_int8_array;
    void *p = NULL;
    if (is && napi_get_typedarray_info(env, v, &tt, len, &p, NULL, NULL) != napi_ok) is = false;
    if (!is || tt != napi_float32_array) {
        qzn_throw_type(env, "%s must be a Float32Array, got %s", what, v ? type_name(env, v) : "nothing");
        return fail();
    }
    *data = p;
    return 0;
}

int qzn_get_bytes(napi_env env, napi_value v, const char *what, int allow_json, qzn_bytes *out)
{
    memset(out, 0, sizeof *out);
    if (qzn_is_nullish(env, v)) return 0;
    napi_valuetype t = napi_undefined;
    napi_typeof(env, v, &t);
    if (t == napi_string) {
        size_t n = 0;
        if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return qzn_throw_napi(env, napi_string_expected), fail();
        char *s = malloc(n + 1);
        if (!s) return qzn_throw_msg(env, QZ_ENOMEM, "out of memory copying %s", what), fail();
        napi_get_value_string_utf8(env, v, s, n + 1, &n);
        out->data = s;
        out->len = n;
        out->owned = s;
        return 0;
    }
    if (t == napi_object) {
        bool is = false;
        if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
            napi_typedarray_type tt;
            size_t n;
            void *p;
            napi_get_typedarray_info(env, v, &tt, &n, &p, NULL, NULL);
            if (tt == napi_uint8_array) {
                out->data = p;
                out->len = n;
                return 0;
            }
            qzn_throw_type(env, "%s must be a Buffer, Uint8Array, string%s, got %s", what,
                           allow_json ? " or a plain object" : "", type_name(env, v));
            return fail();
        }
        if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
            void *p;
            size_t n;
            napi_get_arraybuffer_info(env, v, &p, &n);
            out->data = p;
            out->len = n;
            return 0;
        }
        if (allow_json) {
            qzn_state *s = qzn_state_get(env);
            napi_value fn, global, str;
            napi_get_global(env, &global);
            if (napi_get_reference_value(env, s->json_stringify, &fn) != napi_ok) return qzn_throw_napi(env, napi_generic_failure), fail();
            if (napi_call_function(env, global, fn, 1, &v, &str) != napi_ok) return qzn_throw_napi(env, napi_pending_exception), fail();
            napi_valuetype st = napi_undefined;
            napi_typeof(env, str, &st);
            if (st != napi_string) return qzn_throw_type(env, "%s: JSON.stringify gave no string", what), fail();
            return qzn_get_bytes(env, str, what, 0, out);
        }
    }
    qzn_throw_type(env, "%s must be a Buffer, Uint8Array, string%s, got %s", what,
                   allow_json ? " or a plain object" : "", type_name(env, v));
    return fail();
}

void qzn_bytes_free(qzn_bytes *b)
{
    free(b->owned);
    b->owned = NULL;
}

napi_value qzn_bytes_to_js(napi_env env, const void *data, size_t len, qzn_encoding enc)
{
    napi_value v;
    if (enc == QZN_ENC_BUFFER) {
        void *copy;
        QZN_CALL(env, napi_create_buffer_copy(env, len, len ? data : "", &copy, &v));
        return v;
    }
    QZN_CALL(env, napi_create_string_utf8(env, len ? data : "", len, &v));
    if (enc == QZN_ENC_STRING) return v;
    qzn_state *s = qzn_state_get(env);
    napi_value fn, global, parsed;
    napi_get_global(env, &global);
    QZN_CALL(env, napi_get_reference_value(env, s->json_parse, &fn));
    if (napi_call_function(env, global, fn, 1, &v, &parsed) != napi_ok) return NULL; /* SyntaxError pending */
    return parsed;
}

int qzn_get_prop(napi_env env, napi_value obj, const char *name, napi_value *out, int *has)
{
    *has = 0;
    if (!obj) return 0;
    if (napi_get_named_property(env, obj, name, out) != napi_ok) return qzn_throw_napi(env, napi_generic_failure), fail();
    napi_valuetype t;
    napi_typeof(env, *out, &t);
    *has = t != napi_undefined;
    return 0;
}

int qzn_get_encoding(napi_env env, napi_value opts, const char *name, qzn_encoding *out)
{
    napi_value v;
    int has;
    *out = QZN_ENC_BUFFER;
    if (qzn_get_prop(env, opts, name, &v, &has)) return fail();
    if (!has) return 0;
    char buf[16];
    size_t n = 0;
    napi_valuetype t;
    napi_typeof(env, v, &t);
    if (t != napi_string) return qzn_throw_type(env, "options.%s must be a string, got %s", name, type_name(env, v)), fail();
    napi_get_value_string_utf8(env, v, buf, sizeof buf, &n);
    if (!strcmp(buf, "buffer")) *out = QZN_ENC_BUFFER;
    else if (!strcmp(buf, "string") || !strcmp(buf, "utf8")) *out = QZN_ENC_STRING;
    else if (!strcmp(buf, "json")) *out = QZN_ENC_JSON;
    else return qzn_throw_msg(env, QZ_EINVAL, "options.%s is '%s'; use 'buffer', 'string' or 'json'", name, buf), fail();
    return 0;
}

int qzn_get_opts(napi_env env, napi_value v, const char *what, int *present)
{
    *present = 0;
    if (qzn_is_nullish(env, v)) return 0;
    napi_valuetype t;
    napi_typeof(env, v, &t);
    bool arr = false;
    napi_is_array(env, v, &arr);
    if (t != napi_object || arr) return qzn_throw_type(env, "%s must be an object, got %s", what, type_name(env, v)), fail();
    *present = 1;
    return 0;
}

int qzn_check_keys(napi_env env, napi_value opts, const char *what, const char *const *known)
{
    napi_value keys;
    uint32_t n = 0;
    if (napi_get_all_property_names(env, opts, napi_key_own_only, napi_key_enumerable | napi_key_skip_symbols,
                                    napi_key_numbers_to_strings, &keys) != napi_ok)
        return qzn_throw_napi(env, napi_generic_failure), fail();
    napi_get_array_length(env, keys, &n);
    for (uint32_t i = 0; i < n; i++) {
        napi_value k;
        char buf[64];
        size_t len = 0;
        napi_get_element(env, keys, i, &k);
        napi_get_value_string_utf8(env, k, buf, sizeof buf, &len);
        int ok = 0;
        for (const char *const *p = known; *p && !ok; p++) ok = !strcmp(*p, buf);
        if (!ok) return qzn_throw_msg(env, QZ_EINVAL, "unknown option '%s' in %s", buf, what), fail();
    }
    return 0;
}
