/* The strict plain-or-gzip stream (see zstream.h), on zlib's inflate. */
#include "engine/zstream.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/error.h"

#define ZS_BLOCK (1u << 18)

struct eng_zstream {
    int fd;                   /* -1 for memory */
    const unsigned char *mem; /* memory input, or NULL */
    size_t mem_len, mem_pos;
    unsigned char *in;        /* fd input block */
    size_t in_cap;
    const unsigned char *next; /* unread input */
    size_t avail;
    bool eof;                 /* no input beyond `avail` */
    bool gzip, inflating, member_done;
    z_stream s;
    char label[1100];
};

/* Makes at least `want` unread input bytes available unless the input ends
 * first (moving what is left to the front of the block). */
static int fill(eng_zstream *z, size_t want)
{
    if (z->avail >= want || z->eof)
        return 0;
    if (!z->in) { /* memory: everything is available from the start */
        z->eof = true;
        return 0;
    }
    memmove(z->in, z->next, z->avail);
    z->next = z->in;
    while (z->avail < want && !z->eof) {
        ssize_t k = read(z->fd, z->in + z->avail, z->in_cap - z->avail);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return eng_error(ENG_EIO, "%s: read failed: %s", z->label, strerror(errno));
        if (k == 0)
            z->eof = true;
        z->avail += (size_t)k;
    }
    return 0;
}

static int start(eng_zstream *z)
{
    int rc = fill(z, 2);
    if (rc)
        return rc;
    z->gzip = z->avail >= 2 && z->next[0] == 0x1f && z->next[1] == 0x8b;
    if (!z->gzip)
        return 0;
    if (inflateInit2(&z->s, 16 + MAX_WBITS) != Z_OK) /* gzip only: the magic said so */
        return eng_error(ENG_ENOMEM, "%s: cannot start decompressing (zlib)", z->label);
    z->inflating = true;
    return 0;
}

static int open_common(eng_zstream *z, eng_zstream **out)
{
    int rc = start(z);
    if (rc) {
        eng_zstream_close(z);
        return rc;
    }
    *out = z;
    return 0;
}

int eng_zstream_open_fd(int fd, const char *label, eng_zstream **out)
{
    *out = NULL;
    eng_zstream *z = calloc(1, sizeof *z);
    unsigned char *in = malloc(ZS_BLOCK);
    if (!z || !in) {
        free(z);
        free(in);
        close(fd);
        return eng_error(ENG_ENOMEM, "%s: out of memory for the read buffer", label);
    }
    z->fd = fd;
    z->in = in;
    z->in_cap = ZS_BLOCK;
    z->next = in;
    snprintf(z->label, sizeof z->label, "%s", label);
    return open_common(z, out);
}

int eng_zstream_open_mem(const void *buf, size_t len, const char *label, eng_zstream **out)
{
    *out = NULL;
    eng_zstream *z = calloc(1, sizeof *z);
    if (!z)
        return eng_error(ENG_ENOMEM, "%s: out of memory", label);
    z->fd = -1;
    z->mem = buf;
    z->mem_len = len;
    z->next = buf;
    z->avail = len;
    z->eof = true;
    snprintf(z->label, sizeof z->label, "%s", label);
    return open_common(z, out);
}

void eng_zstream_close(eng_zstream *z)
{
    if (!z)
        return;
    if (z->inflating)
        inflateEnd(&z->s);
    if (z->fd >= 0)
        close(z->fd);
    free(z->in);
    free(z);
}

bool eng_zstream_compressed(const eng_zstream *z) { return z->gzip; }

static int truncated(eng_zstream *z, const char *what)
{
    return eng_error(ENG_EFORMAT, "%s: truncated: the file ends inside the %s", z->label, what);
}

/* At the end of a gzip member: nothing more (the end), or another member. */
static int next_member(eng_zstream *z, bool *end)
{
    int rc = fill(z, 2);
    if (rc)
        return rc;
    *end = z->avail == 0;
    if (*end)
        return 0;
    if (z->avail < 2 || z->next[0] != 0x1f || z->next[1] != 0x8b)
        return eng_error(ENG_EFORMAT, "%s: unexpected data after the gzip stream (bytes that are not a gzip member)",
                         z->label);
    if (inflateReset(&z->s) != Z_OK)
        return eng_error(ENG_EFORMAT, "%s: cannot start the next gzip member", z->label);
    z->member_done = false;
    return 0;
}

/* Inflates into out[0, n); *got is what was produced. Stops at the end of
 * the content (all members done) with *got < n. */
static int inflate_some(eng_zstream *z, unsigned char *out, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        if (z->member_done) {
            bool end;
            int rc = next_member(z, &end);
            if (rc || end)
                return rc;
        }
        int rc = fill(z, 1);
        if (rc)
            return rc;
        size_t out_left = n - *got;
        z->s.next_in = (Bytef *)z->next;
        z->s.avail_in = z->avail > UINT_MAX ? UINT_MAX : (uInt)z->avail;
        z->s.next_out = out + *got;
        z->s.avail_out = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
        uInt in0 = z->s.avail_in, out0 = z->s.avail_out;
        int zr = inflate(&z->s, Z_NO_FLUSH);
        size_t used = in0 - z->s.avail_in, made = out0 - z->s.avail_out;
        z->next += used;
        z->avail -= used;
        *got += made;
        if (zr == Z_STREAM_END) {
            z->member_done = true; /* zlib checked its CRC-32 and length */
        } else if (zr == Z_MEM_ERROR) {
            return eng_error(ENG_ENOMEM, "%s: out of memory decompressing", z->label);
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            return eng_error(ENG_EFORMAT, "%s: damaged gzip data: %s", z->label, z->s.msg ? z->s.msg : "error");
        } else if (used == 0 && made == 0 && z->avail == 0 && z->eof) {
            return eng_error(ENG_EFORMAT, "%s: truncated: the gzip stream ends early", z->label);
        }
    }
    return 0;
}

int eng_zstream_read(eng_zstream *z, void *buf, size_t n, const char *what)
{
    unsigned char *out = buf;
    if (z->gzip) {
        size_t got;
        int rc = inflate_some(z, out, n, &got);
        if (rc)
            return rc;
        return got < n ? truncated(z, what) : 0;
    }
    while (n > 0) {
        int rc = fill(z, 1);
        if (rc)
            return rc;
        if (z->avail == 0)
            return truncated(z, what);
        size_t k = z->avail < n ? z->avail : n;
        memcpy(out, z->next, k);
        z->next += k;
        z->avail -= k;
        out += k;
        n -= k;
    }
    return 0;
}

int eng_zstream_expect_end(eng_zstream *z, const char *items)
{
    unsigned char c;
    size_t got = 0;
    int rc;
    if (z->gzip)
        rc = inflate_some(z, &c, 1, &got);
    else if ((rc = fill(z, 1)) == 0)
        got = z->avail > 0;
    if (rc)
        return rc;
    if (got)
        return eng_error(ENG_EFORMAT, "%s: unexpected data after the last of %s", z->label, items);
    return 0;
}
