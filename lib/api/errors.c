/* errors.c - qz_strerror and qz_errmsg. */
#include "quartz.h"
#include "util/error.h"

QZ_API const char *qz_strerror(int status)
{
    switch (status) {
    case QZ_OK: return "success";
    case QZ_EINVAL: return "invalid argument";
    case QZ_ENOMEM: return "out of memory";
    case QZ_ENOTFOUND: return "not found";
    case QZ_EEXISTS: return "id already exists";
    case QZ_EIO: return "storage I/O error";
    case QZ_ECORRUPT: return "stored data is corrupt";
    case QZ_EFULL: return "limit reached";
    case QZ_EBUSY: return "resource busy";
    case QZ_EVERSION: return "unsupported version";
    case QZ_EDIM: return "dimension mismatch";
    case QZ_EUSER: return "stopped by callback";
    case QZ_ENONFINITE: return "vector has a NaN or infinite component";
    case QZ_EZEROVEC: return "zero vector has no direction";
    case QZ_ERANGE: return "value out of range";
    case QZ_ETOOSMALL: return "buffer too small";
    case QZ_EREADONLY: return "database is read-only";
    case QZ_EUNSUPPORTED: return "not supported by this build";
    default: return "unknown error";
    }
}

QZ_API const char *qz_errmsg(void) { return qz__err_msg(); }
