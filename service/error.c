/* The service library's error codes and per-thread message. */
#include "service/error.h"

#include <stdarg.h>
#include <stdio.h>

#include "db/db.h"
#include "engine/error.h"

static _Thread_local char last_error[4096];

int svc_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *svc_last_error(void) { return last_error; }

const char *svc_strerror(int code)
{
    switch (code) {
    case SVC_OK: return "ok";
    case SVC_ENOMEM: return "out of memory";
    case SVC_EUSAGE: return "bad option or setting";
    case SVC_EINVAL: return "bad input";
    case SVC_ENOENT: return "not found";
    case SVC_EIO: return "i/o error";
    case SVC_EDB: return "database error";
    case SVC_ELOCKED: return "database in use by another service";
    case SVC_EINTR: return "interrupted";
    case SVC_EPROTO: return "worker protocol error";
    case SVC_EINTERNAL: return "internal error";
    default: return "unknown error";
    }
}

int svc_from_engine(int eng_code)
{
    int code;
    switch (eng_code) {
    case ENG_OK: return SVC_OK;
    case ENG_EINTR: code = SVC_EINTR; break;
    case ENG_ENOENT: code = SVC_ENOENT; break;
    case ENG_EDIVERGED: /* the spec's setting diverges: a retry diverges again */
    case ENG_EINVAL:
    case ENG_EFORMAT:
    case ENG_ELIMIT:
    case ENG_ENOTSUP: code = SVC_EINVAL; break;
    case ENG_EIO: code = SVC_EIO; break;
    case ENG_ENOMEM: code = SVC_ENOMEM; break;
    default: code = SVC_EINTERNAL; break; /* ENG_EDEVICE and unknown codes */
    }
    return svc_error(code, "%s", eng_last_error());
}

int svc_from_db(int db_code)
{
    if (db_code == DB_OK)
        return SVC_OK;
    int code = db_code == DB_ENOMEM   ? SVC_ENOMEM
               : db_code == DB_ENOENT ? SVC_ENOENT
               : db_code == DB_EIO    ? SVC_EIO
                                      : SVC_EDB;
    const char *msg = db_last_error();
    return svc_error(code, "%s", *msg ? msg : db_strerror(db_code));
}
