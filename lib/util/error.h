/*
 * error.h - thread-local error messages (internal).
 *
 * Set the message once, where the failure happens, with qz__err(); it
 * returns the code so that `return qz__err(QZ_EDIM, "...", ...);` reads as
 * one step. Every public entry point calls qz__err_clear() first so that
 * qz_errmsg() describes the last call only.
 */
#ifndef QZ_UTIL_ERROR_H
#define QZ_UTIL_ERROR_H

#include "quartz.h"

#if defined(__GNUC__)
#define QZ__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QZ__PRINTF(a, b)
#endif

/* Record a detailed message for the calling thread and return code. */
int qz__err(int code, const char *fmt, ...) QZ__PRINTF(2, 3);
/* Forget the calling thread's message. */
void qz__err_clear(void);
/* The calling thread's message ("" when none). */
const char *qz__err_msg(void);

/* Keep the calling thread's message across cleanup that may overwrite it
 * (libgit2's git_error_save/restore): qz__err_save(&s); cleanup();
 * return qz__err_restore(&s, rc); */
typedef struct qz__errsave {
    char msg[512];
} qz__errsave;
void qz__err_save(qz__errsave *s);
/* Put the saved message back and return code. */
int qz__err_restore(const qz__errsave *s, int code);

/* Propagate a failure that already set its message. */
#define QZ_CHECK(expr)                                                                             \
    do {                                                                                           \
        int qz__rc_ = (expr);                                                                      \
        if (qz__rc_ < 0) return qz__rc_;                                                           \
    } while (0)

#endif
