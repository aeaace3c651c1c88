/*
 * addon.c - module init: the Database class, the status codes, versions,
 * and the per-instance state (which lives as long as its env, so the addon
 * works in worker_threads too).
 */
#include <stdlib.h>

#include "qzn.h"

qzn_state *qzn_state_get(napi_env env)
{
    void *p = NULL;
    napi_get_instance_data(env, &p);
    return p;
}

static void state_free(napi_env env, void *data, void *hint)
{
    (void)hint;
    qzn_state *s = data;
    if (s->error_ctor) napi_delete_reference(env, s->error_ctor);
    if (s->db_ctor) napi_delete_reference(env, s->db_ctor);
    if (s->json_parse) napi_delete_reference(env, s->json_parse);
    if (s->json_stringify) napi_delete_reference(env, s->json_stringify);
    if (s->single_result) napi_delete_reference(env, s->single_result);
    free(s);
}

/* _setErrorClass(QuartzError): index.js hands over the class every
 * QuartzError is made from (new QuartzError(message, code, errno)). */
static napi_value set_error_class(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], u;
    napi_valuetype t = napi_undefined;
    QZN_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc > 0) napi_typeof(env, argv[0], &t);
    if (t != napi_function) return qzn_throw_type(env, "expected a class");
    qzn_state *s = qzn_state_get(env);
    if (s->error_ctor) napi_delete_reference(env, s->error_ctor);
    QZN_CALL(env, napi_create_reference(env, argv[0], 1, &s->error_ctor));
    napi_get_undefined(env, &u);
    return u;
}

/* _setResultMaker(fn): fn(buffer, found, k) builds the { ids, distances } of
 * one search from its buffer (k ids, then k float distances). */
static napi_value set_result_maker(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], u;
    napi_valuetype t = napi_undefined;
    QZN_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc > 0) napi_typeof(env, argv[0], &t);
    if (t != napi_function) return qzn_throw_type(env, "expected a function");
    qzn_state *s = qzn_state_get(env);
    if (s->single_result) napi_delete_reference(env, s->single_result);
    QZN_CALL(env, napi_create_reference(env, argv[0], 1, &s->single_result));
    napi_get_undefined(env, &u);
    return u;
}

static int ref_json(napi_env env, const char *name, napi_ref *out)
{
    napi_value global, json, fn;
    if (napi_get_global(env, &global) != napi_ok || napi_get_named_property(env, global, "JSON", &json) != napi_ok ||
        napi_get_named_property(env, json, name, &fn) != napi_ok || napi_create_reference(env, fn, 1, out) != napi_ok)
        return -1;
    return 0;
}

static napi_value init(napi_env env, napi_value exports)
{
    if (qz_version_number() / 10000 != QZ_VERSION_MAJOR) {
        napi_throw_error(env, "ERR_QUARTZ_VERSION", "libquartz has a different major version than the addon was built for");
        return NULL;
    }
    qzn_state *s = calloc(1, sizeof *s);
    if (!s) return qzn_throw_napi(env, napi_generic_failure);
    if (napi_set_instance_data(env, s, state_free, NULL) != napi_ok) {
        free(s);
        return qzn_throw_napi(env, napi_generic_failure);
    }
    if (ref_json(env, "parse", &s->json_parse) || ref_json(env, "stringify", &s->json_stringify))
        return qzn_throw_napi(env, napi_generic_failure);

    napi_value cls = qzn_db_class(env);
    if (!cls) return NULL;
    QZN_CALL(env, napi_create_reference(env, cls, 1, &s->db_ctor));
    QZN_CALL(env, napi_set_named_property(env, exports, "Database", cls));

    napi_value fn, v, codes;
    QZN_CALL(env, napi_create_function(env, "_setErrorClass", NAPI_AUTO_LENGTH, set_error_class, NULL, &fn));
    QZN_CALL(env, napi_set_named_property(env, exports, "_setErrorClass", fn));
    QZN_CALL(env, napi_create_function(env, "_setResultMaker", NAPI_AUTO_LENGTH, set_result_maker, NULL, &fn));
    QZN_CALL(env, napi_set_named_property(env, exports, "_setResultMaker", fn));
    QZN_CALL(env, napi_create_object(env, &codes));
    for (int c = 0; c >= QZ_EUNSUPPORTED; c--) {
        QZN_CALL(env, napi_create_int32(env, c, &v));
        QZN_CALL(env, napi_set_named_property(env, codes, qzn_code_name(c), v));
    }
    QZN_CALL(env, napi_set_named_property(env, exports, "codes", codes));
    QZN_CALL(env, napi_create_string_utf8(env, qz_version_string(), NAPI_AUTO_LENGTH, &v));
    QZN_CALL(env, napi_set_named_property(env, exports, "version", v));
    QZN_CALL(env, napi_create_string_utf8(env, qz_simd_backend(), NAPI_AUTO_LENGTH, &v));
    QZN_CALL(env, napi_set_named_property(env, exports, "simd", v));
    static const struct { const char *name; uint32_t value; } limits[] = {
        {"MAX_K", QZ_MAX_K},
        {"MAX_EF", QZ_MAX_EF},
        {"MAX_M", QZ_MAX_M},
        {"MAX_DIMENSIONS", QZ_MAX_DIMENSIONS},
        {"MAX_METADATA", QZ_MAX_METADATA},
        {"MAX_KEY", QZ_MAX_KEY},
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        QZN_CALL(env, napi_create_uint32(env, limits[i].value, &v));
        QZN_CALL(env, napi_set_named_property(env, exports, limits[i].name, v));
    }
    return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
