/* db/ error reporting: the thread's last message, codes, and status names. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "db/internal.h"

static _Thread_local char last_error[1024];

int db__error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

int db__sqlite_error(db *d, int rc, const char *what)
{
    int code;
    switch (rc & 0xff) {
    case SQLITE_NOMEM: code = DB_ENOMEM; break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: code = DB_EBUSY; break;
    case SQLITE_CONSTRAINT: code = DB_ECONSTRAINT; break;
    case SQLITE_CANTOPEN: code = DB_ENOENT; break;
    case SQLITE_FULL: code = DB_EFULL; break;
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: code = DB_EIO; break;
    default: code = DB_ESQL; break;
    }
    /* sqlite3_errmsg() describes the connection's latest failure, which is
     * the call that returned rc; without a connection only the code is known. */
    const char *msg = d && d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc);
    return db__error(code, "%s%s%s: %s", d && d->path ? d->path : "", d && d->path ? ": " : "",
                     what, msg);
}

const char *db_last_error(void) { return last_error; }

void db_clear_error(void) { last_error[0] = '\0'; }

const char *db_strerror(int code)
{
    switch (code) {
    case DB_OK: return "ok";
    case DB_ENOMEM: return "out of memory";
    case DB_EINVAL: return "invalid argument";
    case DB_ESQL: return "database error";
    case DB_EBUSY: return "database busy";
    case DB_ENOTFOUND: return "not found";
    case DB_EFULL: return "disk full";
    case DB_EVERSION: return "database schema too new";
    case DB_ENOENT: return "database does not exist";
    case DB_ESTATE: return "status does not allow this";
    case DB_ECONSTRAINT: return "constraint violated";
    case DB_EIO: return "i/o error";
    default: return "unknown error";
    }
}

static const char *const status_names[DB_STATUS_COUNT] = {
    [DB_QUEUED] = "queued",       [DB_RUNNING] = "running", [DB_DONE] = "done",
    [DB_FAILED] = "failed",       [DB_INVALID] = "invalid", [DB_CANCELLED] = "cancelled",
    [DB_INTERRUPTED] = "interrupted",
};
_Static_assert(sizeof status_names / sizeof *status_names == DB_STATUS_COUNT,
               "one name per status");

const char *db_status_name(db_status s)
{
    return (unsigned)s < DB_STATUS_COUNT ? status_names[s] : "?";
}

int db_status_parse(const char *name, db_status *out)
{
    for (int s = 0; s < DB_STATUS_COUNT; s++) {
        if (name && !strcmp(name, status_names[s])) {
            *out = (db_status)s;
            return DB_OK;
        }
    }
    return db__error(DB_EINVAL, "unknown run status '%s'", name ? name : "(null)");
}
