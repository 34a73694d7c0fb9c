/* Splitting a byte stream (a worker's stdout or stderr) into lines, with a
 * bound on how much of one line is held. Pure: no I/O. */
#ifndef SVC_LINEBUF_H
#define SVC_LINEBUF_H

#include <stdbool.h>
#include <stddef.h>

/* Splits a byte stream into lines. */
typedef struct svc_linebuf {
    char *buf;
    size_t len, cap;
    size_t max;    /* longest line kept whole */
    bool truncate; /* true: a longer line is delivered in pieces of max bytes; false: an error */
} svc_linebuf;

/* Called per complete line (no newline, NUL-terminated at line[len]);
 * a non-zero return stops svc_linebuf_feed and is returned by it. */
typedef int (*svc_line_fn)(void *ctx, const char *line, size_t len);

/* max > 0: the longest line kept whole. */
void svc_linebuf_init(svc_linebuf *b, size_t max, bool truncate);
void svc_linebuf_free(svc_linebuf *b);
/* Appends n bytes and delivers every complete line. Returns 0, the
 * callback's non-zero value, SVC_EPROTO for a line longer than max (when
 * not truncating) or SVC_ENOMEM, with svc_last_error set. */
int svc_linebuf_feed(svc_linebuf *b, const char *data, size_t n, svc_line_fn fn, void *ctx);
/* At end of stream: delivers an unterminated last line, if any. */
int svc_linebuf_finish(svc_linebuf *b, svc_line_fn fn, void *ctx);

#endif
