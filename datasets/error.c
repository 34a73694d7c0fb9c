/* The thread's last datasets/ error message. */
#include "datasets/error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last[2048];

int ds_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last, sizeof last, fmt, ap);
    va_end(ap);
    return code;
}

const char *ds_last_error(void) { return last; }

const char *ds_strerror(int code)
{
    switch (code) {
    case DS_OK: return "ok";
    case DS_ENOMEM: return "out of memory";
    case DS_EINVAL: return "invalid argument";
    case DS_EIO: return "i/o error";
    case DS_EFORMAT: return "bad file format";
    case DS_ENOENT: return "not found";
    case DS_ENET: return "download failed";
    case DS_ECHECKSUM: return "checksum mismatch";
    case DS_ENOSPC: return "no space left";
    case DS_EINTR: return "cancelled";
    }
    return "unknown error";
}
