/* error.c - thread-local detail for the last failure on each thread. */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define QZ_ERRMSG_MAX 512

static _Thread_local char tl_msg[QZ_ERRMSG_MAX];

int qz__err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    return code;
}

void qz__err_clear(void) { tl_msg[0] = '\0'; }

const char *qz__err_msg(void) { return tl_msg; }

void qz__err_save(qz__errsave *s)
{
    _Static_assert(sizeof s->msg == QZ_ERRMSG_MAX, "one message size");
    memcpy(s->msg, tl_msg, sizeof s->msg);
}

int qz__err_restore(const qz__errsave *s, int code)
{
    memcpy(tl_msg, s->msg, sizeof tl_msg);
    return code;
}
