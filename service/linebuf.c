/* Splitting a byte stream into lines, bounded. */
#include "service/linebuf.h"

#include <stdlib.h>
#include <string.h>

#include "service/error.h"


void svc_linebuf_init(svc_linebuf *b, size_t max, bool truncate)
{
    memset(b, 0, sizeof *b);
    b->max = max;
    b->truncate = truncate;
}

void svc_linebuf_free(svc_linebuf *b)
{
    free(b->buf);
    b->buf = NULL;
    b->len = b->cap = 0;
}

static int deliver(svc_linebuf *b, size_t n, svc_line_fn fn, void *ctx)
{
    /* the buffer always has room for the NUL (see reserve) */
    char saved = b->buf[n];
    b->buf[n] = '\0';
    int rc = fn(ctx, b->buf, n);
    b->buf[n] = saved;
    return rc;
}

static int reserve(svc_linebuf *b, size_t need)
{
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need + 1)
        cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb)
        return svc_error(SVC_ENOMEM, "out of memory buffering a line");
    b->buf = nb;
    b->cap = cap;
    return 0;
}

static void consume(svc_linebuf *b, size_t n)
{
    memmove(b->buf, b->buf + n, b->len - n);
    b->len -= n;
}

int svc_linebuf_feed(svc_linebuf *b, const char *data, size_t n, svc_line_fn fn, void *ctx)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        /* never hold more than max + 1 bytes of one line */
        size_t room = b->max - b->len;
        size_t copy = take < room ? take : room;
        int rc = reserve(b, b->len + copy);
        if (rc < 0)
            return rc;
        memcpy(b->buf + b->len, data, copy);
        b->len += copy;
        if (copy < take) {
            /* the line is longer than max */
            if (!b->truncate)
                return svc_error(SVC_EPROTO, "a line longer than %zu bytes", b->max);
            rc = deliver(b, b->len, fn, ctx);
            b->len = 0;
            if (rc)
                return rc;
            data += copy;
            n -= copy;
            continue;
        }
        data += take;
        n -= take;
        if (!nl)
            break;
        data++; /* the newline */
        n--;
        rc = deliver(b, b->len, fn, ctx);
        consume(b, b->len);
        if (rc)
            return rc;
    }
    return 0;
}

int svc_linebuf_finish(svc_linebuf *b, svc_line_fn fn, void *ctx)
{
    if (b->len == 0)
        return 0;
    int rc = deliver(b, b->len, fn, ctx);
    b->len = 0;
    return rc;
}
