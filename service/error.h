/* Error codes of the service library and the thread's last error message.
 *
 * As in engine/ and db/: functions return 0 or a negative SVC_E* code and
 * leave the reason (which file, which setting, which worker) in a per-thread
 * message. Only the commands in cli/ turn codes into exit statuses. */
#ifndef SVC_ERROR_H
#define SVC_ERROR_H

enum {
    SVC_OK = 0,
    SVC_ENOMEM = -1,    /* an allocation failed */
    SVC_EUSAGE = -2,    /* a bad option or setting of the service or a command */
    SVC_EINVAL = -3,    /* a bad spec, dataset or checkpoint: the input is wrong, a retry cannot help */
    SVC_ENOENT = -4,    /* a file or folder that must exist does not */
    SVC_EIO = -5,       /* a file, folder, pipe or process could not be read, written or started */
    SVC_EDB = -6,       /* the database failed (the message has SQLite's reason) */
    SVC_ELOCKED = -7,   /* another service holds the database */
    SVC_EINTR = -8,     /* stopped on request (a signal) */
    SVC_EPROTO = -9,    /* a worker broke the protocol */
    SVC_EINTERNAL = -10, /* anything else: a device error, a bug */
};

/* Formats the thread's last error message; returns code, so that callers
 * write `return svc_error(SVC_EIO, "cannot create %s: %s", dir, strerror(errno));`. */
int svc_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message set on this thread ("" if none). */
const char *svc_last_error(void);

/* A short name for a code ("out of memory", "bad setting", ...). */
const char *svc_strerror(int code);

/* The service's code for an engine (ENG_E*) or database (DB_E*) code,
 * with that library's message copied over. */
int svc_from_engine(int eng_code);
int svc_from_db(int db_code);

#endif
