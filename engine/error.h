/* Engine error codes and the thread's last error message.
 *
 * Engine functions return 0 or a negative ENG_E* code; the human-readable
 * reason (which call, which file, which shape) is kept per thread so that
 * deep callers need not thread a buffer through every signature. */
#ifndef ENG_ERROR_H
#define ENG_ERROR_H

enum {
    ENG_OK = 0,
    ENG_ENOMEM = -1,   /* an allocation failed */
    ENG_EINVAL = -2,   /* bad argument or inconsistent description */
    ENG_EIO = -3,      /* a file could not be read or written */
    ENG_EFORMAT = -4,  /* a file is not in the expected format */
    ENG_EDEVICE = -5,  /* a backend (CUDA, cuBLAS, cuDNN) call failed */
    ENG_ENOTSUP = -6,  /* not supported by this backend or build */
    ENG_ELIMIT = -7,   /* a configured limit (size, memory) would be exceeded */
    ENG_EINTR = -8,    /* stopped on request (signal) */
    ENG_ENOENT = -9,   /* a file or named tensor does not exist */
    ENG_EDIVERGED = -10, /* training diverged: a non-finite loss (train.stop_on_nonfinite) */
};

/* Formats the thread's last error message; returns `code` so callers can
 * write `return eng_error(ENG_EIO, "cannot open %s", path);`. */
int eng_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message set on this thread ("" if none). */
const char *eng_last_error(void);

/* A short name for a code ("out of memory", "invalid argument", ...). */
const char *eng_strerror(int code);

void eng_clear_error(void);

/* Evaluates call (an engine function returning 0 or a negative code) and
 * returns its code from the enclosing function when it failed, the thread's
 * message left as the failing call set it. For functions with nothing to
 * clean up on failure; the others use one `goto fail`. */
#define ENG_TRY(call)                                                                                                  \
    do {                                                                                                               \
        int eng_try_rc_ = (call);                                                                                      \
        if (eng_try_rc_ < 0)                                                                                           \
            return eng_try_rc_;                                                                                        \
    } while (0)

#endif
