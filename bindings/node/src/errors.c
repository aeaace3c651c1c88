/*
 * errors.c - every error the binding raises.
 *
 * A failed libquartz call becomes a QuartzError (the class index.js defines
 * and registers) with
 *   code    the status name, "QZ_EDIM"    (Node's convention: a string code)
 *   errno   the numeric status, -10        (fixed forever, as in quartz.h)
 *   message qz_errmsg() of the failed call, "vector has 3 dimensions, database expects 4"
 * A JS value of the wrong type is a TypeError with code ERR_INVALID_ARG_TYPE
 * and a number outside what the argument can hold (a negative or fractional
 * id, an id above 2^64-1, an unsafe-integer Number) is a RangeError with
 * code ERR_OUT_OF_RANGE, as Node's own APIs do.
 */
#include <stdarg.h>
#include <stdio.h>

#include "qzn.h"

static const char *const names[] = {
    "QZ_OK",     "QZ_EINVAL", "QZ_ENOMEM", "QZ_ENOTFOUND", "QZ_EEXISTS",    "QZ_EIO",
    "QZ_ECORRUPT", "QZ_EFULL", "QZ_EBUSY", "QZ_EVERSION", "QZ_EDIM",        "QZ_EUSER",
    "QZ_ENONFINITE", "QZ_EZEROVEC", "QZ_ERANGE", "QZ_ETOOSMALL", "QZ_EREADONLY", "QZ_EUNSUPPORTED",
};

const char *qzn_code_name(int status)
{
    if (status <= 0 && -status < (int)(sizeof names / sizeof names[0])) return names[-status];
    return "QZ_EUNKNOWN";
}

napi_value qzn_error_new(napi_env env, int status, const char *message)
{
    qzn_state *s = qzn_state_get(env);
    napi_value msg, code, num, err = NULL, ctor;
    if (!message || !*message) message = qz_strerror(status);
    if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok) return NULL;
    if (napi_create_string_utf8(env, qzn_code_name(status), NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
    if (napi_create_int32(env, status, &num) != napi_ok) return NULL;
    if (s && s->error_ctor && napi_get_reference_value(env, s->error_ctor, &ctor) == napi_ok && ctor) {
        napi_value argv[3] = {msg, code, num};
        if (napi_new_instance(env, ctor, 3, argv, &err) == napi_ok) return err;
    }
    /* index.js not loaded (the raw addon required directly): a plain Error with the same fields. */
    if (napi_create_error(env, code, msg, &err) != napi_ok) return NULL;
    napi_set_named_property(env, err, "errno", num);
    return err;
}

static napi_value throw_value(napi_env env, napi_value err)
{
    if (err) napi_throw(env, err);
    return NULL;
}

napi_value qzn_throw_status(napi_env env, int status)
{
    return throw_value(env, qzn_error_new(env, status, qz_errmsg()));
}

napi_value qzn_throw_msg(napi_env env, int status, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return throw_value(env, qzn_error_new(env, status, buf));
}

napi_value qzn_throw_type(napi_env env, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", buf);
    return NULL;
}

napi_value qzn_throw_range(napi_env env, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", buf);
    return NULL;
}

napi_value qzn_throw_napi(napi_env env, napi_status st)
{
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) return NULL; /* a JS exception (from a getter, JSON.stringify ...) is already on its way */
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    char buf[256];
    snprintf(buf, sizeof buf, "N-API call failed: %s (status %d)",
             info && info->error_message ? info->error_message : "unknown", (int)st);
    napi_throw_error(env, "ERR_QUARTZ_NAPI", buf);
    return NULL;
}
