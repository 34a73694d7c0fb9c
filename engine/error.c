/* Per-thread last error message for the engine. */
#include "engine/error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

int eng_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *eng_last_error(void) { return last_error; }

void eng_clear_error(void) { last_error[0] = '\0'; }

const char *eng_strerror(int code)
{
    switch (code) {
    case ENG_OK: return "ok";
    case ENG_ENOMEM: return "out of memory";
    case ENG_EINVAL: return "invalid argument";
    case ENG_EIO: return "i/o error";
    case ENG_EFORMAT: return "bad file format";
    case ENG_EDEVICE: return "device error";
    case ENG_ENOTSUP: return "not supported";
    case ENG_ELIMIT: return "limit exceeded";
    case ENG_EINTR: return "interrupted";
    case ENG_ENOENT: return "not found";
    case ENG_EDIVERGED: return "training diverged";
    default: return "unknown error";
    }
}
