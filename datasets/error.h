/* datasets/ error codes and the thread's last error message.
 *
 * Functions return 0 or a negative DS_E* code; the message (which file,
 * which URL, what the server said) is kept per thread, as in the engine, so
 * a fetch running on a worker thread has its own. */
#ifndef DS_ERROR_H
#define DS_ERROR_H

enum {
    DS_OK = 0,
    DS_ENOMEM = -1,    /* an allocation failed */
    DS_EINVAL = -2,    /* bad argument, bad manifest, unknown dataset */
    DS_EIO = -3,       /* a file could not be read or written */
    DS_EFORMAT = -4,   /* a file is not what it should be (archive, image) */
    DS_ENOENT = -5,    /* a file or folder does not exist */
    DS_ENET = -6,      /* the download failed: connection, HTTP status, timeout */
    DS_ECHECKSUM = -7, /* a download does not match its SHA-256 */
    DS_ENOSPC = -8,    /* the data root's file system is full */
    DS_EINTR = -9,     /* cancelled */
};

/* Formats the thread's last error message; returns `code`. */
int ds_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last message set on this thread ("" if none). */
const char *ds_last_error(void);
/* A short name for a code ("network error", ...). */
const char *ds_strerror(int code);

#endif
