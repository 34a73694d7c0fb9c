/* The .npy header parser and the .npz (zip) member lookup (npy.h). */
#include "engine/npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "engine/error.h"

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* ---- .npy: the header is a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } ---- */

typedef struct hdr_reader {
    const char *p, *end;
    const char *name;
} hdr_reader;

static void skip_ws(hdr_reader *r)
{
    while (r->p < r->end && isspace((unsigned char)*r->p))
        r->p++;
}

static bool take(hdr_reader *r, char c)
{
    skip_ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return true;
    }
    return false;
}

/* A quoted string into buf (truncated to len - 1); false when there is none. */
static bool read_string(hdr_reader *r, char *buf, size_t len)
{
    skip_ws(r);
    if (r->p >= r->end || (*r->p != '\'' && *r->p != '"'))
        return false;
    char q = *r->p++;
    size_t n = 0;
    while (r->p < r->end && *r->p != q) {
        if (n + 1 < len)
            buf[n++] = *r->p;
        r->p++;
    }
    buf[n] = '\0';
    if (r->p >= r->end)
        return false;
    r->p++;
    return true;
}

static int bad_header(const hdr_reader *r, const char *what)
{
    return eng_error(ENG_EFORMAT, "%s: not a NumPy .npy file (%s in its header)", r->name, what);
}

/* descr such as "<f4": byte order, kind, item size. */
static int parse_descr(const char *name, const char *d, eng_npy_array *out)
{
    snprintf(out->descr, sizeof out->descr, "%s", d);
    char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return eng_error(ENG_EFORMAT, "%s: unsupported dtype '%s'", name, d);
    char kind = d[1];
    char *endp;
    long size = strtol(d + 2, &endp, 10);
    if (!d[1] || *endp || size < 1 || size > 16)
        return eng_error(ENG_EFORMAT, "%s: unsupported dtype '%s'", name, d);
    if (kind != 'u' && kind != 'i' && kind != 'f' && kind != 'b')
        return eng_error(ENG_EFORMAT, "%s: unsupported dtype '%s' (expected integers, booleans or floats)", name, d);
    if (order == '>' && size > 1)
        return eng_error(ENG_EFORMAT,
                         "%s: big-endian dtype '%s' (save it little-endian: "
                         "x.astype(x.dtype.newbyteorder('<')))",
                         name, d);
    out->kind = kind;
    out->itemsize = (int)size;
    return 0;
}

int eng_npy_parse(const void *buf, size_t len, const char *name, bool header_only, eng_npy_array *out)
{
    memset(out, 0, sizeof *out);
    const unsigned char *b = buf;
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return eng_error(ENG_EFORMAT, "%s: not a NumPy .npy file (no \\x93NUMPY magic)", name);
    unsigned major = b[6];
    size_t start, hlen;
    if (major == 1) {
        start = 10;
        hlen = le16(b + 8);
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return eng_error(ENG_EFORMAT, "%s: truncated .npy header", name);
        start = 12;
        hlen = le32(b + 8);
    } else {
        return eng_error(ENG_EFORMAT, "%s: .npy format version %u.%u is not supported", name, major, b[7]);
    }
    if (hlen > len - start)
        return eng_error(ENG_EFORMAT, "%s: truncated .npy header (%zu bytes, the file has %zu)", name, hlen,
                         len - start);

    hdr_reader r = {(const char *)b + start, (const char *)b + start + hlen, name};
    bool have_descr = false, have_order = false, have_shape = false;
    if (!take(&r, '{'))
        return bad_header(&r, "no '{'");
    while (!take(&r, '}')) {
        char key[32];
        if (!read_string(&r, key, sizeof key) || !take(&r, ':'))
            return bad_header(&r, "a malformed key");
        if (!strcmp(key, "descr")) {
            char d[sizeof out->descr];
            if (!read_string(&r, d, sizeof d))
                return eng_error(ENG_EFORMAT,
                                 "%s: a structured or object dtype is not supported "
                                 "(expected a plain "
                                 "numeric array)",
                                 name);
            int rc = parse_descr(name, d, out);
            if (rc)
                return rc;
            have_descr = true;
        } else if (!strcmp(key, "fortran_order")) {
            skip_ws(&r);
            if (r.end - r.p >= 4 && !memcmp(r.p, "True", 4)) {
                return eng_error(ENG_EFORMAT, "%s: Fortran-ordered array (save np.ascontiguousarray(x) instead)", name);
            } else if (r.end - r.p >= 5 && !memcmp(r.p, "False", 5)) {
                r.p += 5;
            } else {
                return bad_header(&r, "fortran_order is neither True nor False");
            }
            have_order = true;
        } else if (!strcmp(key, "shape")) {
            if (!take(&r, '('))
                return bad_header(&r, "shape is not a tuple");
            out->ndim = 0;
            while (!take(&r, ')')) {
                skip_ws(&r);
                char *endp;
                errno = 0;
                long long v = strtoll(r.p, &endp, 10);
                if (endp == r.p || v < 0 || endp > r.end)
                    return bad_header(&r, "a shape entry that is not a size");
                if (out->ndim == ENG_NPY_MAX_DIMS)
                    return eng_error(ENG_EFORMAT, "%s: more than %d dimensions", name, ENG_NPY_MAX_DIMS);
                out->shape[out->ndim++] = v;
                r.p = endp;
                skip_ws(&r);
                if (r.p < r.end && *r.p == 'L') /* Python 2's long suffix */
                    r.p++;
                take(&r, ',');
            }
            have_shape = true;
        } else {
            return bad_header(&r, "an unknown key");
        }
        take(&r, ',');
    }
    if (!have_descr || !have_order || !have_shape)
        return bad_header(&r, "descr, fortran_order or shape missing");

    uint64_t count = 1;
    for (int i = 0; i < out->ndim; i++) {
        if (out->shape[i] && count > UINT64_MAX / 16 / (uint64_t)out->shape[i])
            return eng_error(ENG_EFORMAT, "%s: shape too large", name);
        count *= (uint64_t)out->shape[i];
    }
    out->count = (int64_t)count;
    size_t off = start + hlen;
    out->data = b + off;
    if (header_only)
        return 0;
    uint64_t bytes = count * (uint64_t)out->itemsize;
    if (bytes > len - off)
        return eng_error(ENG_EFORMAT, "%s: truncated: %zu bytes of data, the header's shape needs %llu", name,
                         len - off, (unsigned long long)bytes);
    return 0;
}

/* ---- .npz: a zip archive. Central directory first (it has the true
 * sizes; numpy writes zip64 fields), then the member's local header for
 * where its data starts. ---- */

#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_EOCD64_LOC 0x07064b50u
#define SIG_CDIR 0x02014b50u
#define SIG_LOCAL 0x04034b50u

typedef struct zip_entry {
    char name[256];
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, offset;
} zip_entry;

static uint32_t crc_of(const unsigned char *p, uint64_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t off = 0; off < n;) {
        uInt chunk = n - off > (1u << 30) ? (1u << 30) : (uInt)(n - off);
        crc = crc32(crc, p + off, chunk);
        off += chunk;
    }
    return (uint32_t)crc;
}

static int zip_bad(const char *name, const char *what)
{
    return eng_error(ENG_EFORMAT, "%s: not a readable .npz (zip) file: %s", name, what);
}

/* The zip64 extra field's values replace the 32-bit fields that are all ones.
 */
static void zip64_extra(const unsigned char *x, size_t xlen, zip_entry *e, bool u, bool c, bool o)
{
    size_t i = 0;
    while (i + 4 <= xlen) {
        uint16_t id = le16(x + i), n = le16(x + i + 2);
        if (i + 4 + n > xlen)
            return;
        if (id == 0x0001) {
            const unsigned char *v = x + i + 4;
            size_t k = 0;
            if (u && k + 8 <= n)
                e->usize = le64(v + k), k += 8;
            if (c && k + 8 <= n)
                e->csize = le64(v + k), k += 8;
            if (o && k + 8 <= n)
                e->offset = le64(v + k), k += 8;
            return;
        }
        i += 4 + (size_t)n;
    }
}

int eng_npz_find(const void *zip, size_t len, const char *name, const char *member, size_t want, eng_npz_member *out)
{
    memset(out, 0, sizeof *out);
    const unsigned char *z = zip;
    if (len < 22)
        return zip_bad(name, "too short");
    /* the end-of-central-directory record: within the last 64 KiB + 22 bytes */
    size_t eocd = SIZE_MAX;
    size_t lowest = len > 65535 + 22 ? len - 65535 - 22 : 0;
    for (size_t i = len - 22 + 1; i-- > lowest;)
        if (le32(z + i) == SIG_EOCD) {
            eocd = i;
            break;
        }
    if (eocd == SIZE_MAX)
        return zip_bad(name, "no end of central directory");
    uint64_t entries = le16(z + eocd + 10), cd_size = le32(z + eocd + 12), cd_off = le32(z + eocd + 16);
    if (eocd >= 20 && le32(z + eocd - 20) == SIG_EOCD64_LOC) {
        uint64_t e64 = le64(z + eocd - 20 + 8);
        if (e64 > len - 56 || le32(z + e64) != SIG_EOCD64)
            return zip_bad(name, "bad zip64 end of central directory");
        entries = le64(z + e64 + 32);
        cd_size = le64(z + e64 + 40);
        cd_off = le64(z + e64 + 48);
    }
    if (cd_off > len || cd_size > len - cd_off)
        return zip_bad(name, "central directory outside the file (truncated?)");

    char listing[256] = "";
    size_t p = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
    zip_entry e;
    bool found = false;
    for (uint64_t k = 0; k < entries; k++) {
        if (p + 46 > end || le32(z + p) != SIG_CDIR)
            return zip_bad(name, "damaged central directory");
        memset(&e, 0, sizeof e);
        e.flags = le16(z + p + 8);
        e.method = le16(z + p + 10);
        e.crc = le32(z + p + 16);
        e.csize = le32(z + p + 20);
        e.usize = le32(z + p + 24);
        size_t nlen = le16(z + p + 28), xlen = le16(z + p + 30), clen = le16(z + p + 32);
        e.offset = le32(z + p + 42);
        if (p + 46 + nlen + xlen + clen > end)
            return zip_bad(name, "damaged central directory");
        size_t copy = nlen < sizeof e.name - 1 ? nlen : sizeof e.name - 1;
        memcpy(e.name, z + p + 46, copy);
        e.name[copy] = '\0';
        zip64_extra(z + p + 46 + nlen, xlen, &e, e.usize == 0xffffffffu, e.csize == 0xffffffffu,
                    e.offset == 0xffffffffu);
        p += 46 + nlen + xlen + clen;
        if (!strcmp(e.name, member)) {
            found = true;
            break;
        }
        size_t used = strlen(listing);
        if (used + copy + 3 < sizeof listing) {
            if (used)
                memcpy(listing + used, ", ", 2), used += 2;
            memcpy(listing + used, e.name, copy + 1);
        }
    }
    if (!found)
        return eng_error(ENG_ENOENT, "%s: no array '%.*s' (the archive holds: %s)", name,
                         (int)(strlen(member) > 4 ? strlen(member) - 4 : strlen(member)), member,
                         listing[0] ? listing : "nothing");
    if (e.flags & 1)
        return zip_bad(name, "the member is encrypted");
    if (e.offset > len - 30 || le32(z + e.offset) != SIG_LOCAL)
        return zip_bad(name, "damaged local header");
    uint64_t data = e.offset + 30 + le16(z + e.offset + 26) + le16(z + e.offset + 28);
    if (data > len || e.csize > len - data)
        return eng_error(ENG_EFORMAT, "%s: member %s is truncated", name, member);
    const unsigned char *src = z + data;

    if (e.method == 0) {
        if (e.csize != e.usize)
            return zip_bad(name, "a stored member whose sizes differ");
        if (!want && crc_of(src, e.usize) != e.crc)
            return eng_error(ENG_EFORMAT, "%s: member %s fails its CRC-32 check (damaged file)", name, member);
        out->data = src;
        out->len = (size_t)(want && want < e.usize ? want : e.usize);
        return 0;
    }
    if (e.method != 8)
        return eng_error(ENG_EFORMAT,
                         "%s: member %s uses zip compression method %u (expected "
                         "stored or deflate)",
                         name, member, e.method);
    uint64_t n = want && want < e.usize ? want : e.usize;
    if (n > SIZE_MAX - 1)
        return eng_error(ENG_ELIMIT, "%s: member %s is too large", name, member);
    unsigned char *dst = malloc((size_t)n + 1);
    if (!dst)
        return eng_error(ENG_ENOMEM, "out of memory inflating %s of %s (%llu bytes)", member, name,
                         (unsigned long long)n);
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) {
        free(dst);
        return eng_error(ENG_ENOMEM, "cannot start inflating %s", name);
    }
    uint64_t in_left = e.csize, out_done = 0;
    const unsigned char *in = src;
    int zr = Z_OK;
    while (out_done < n && zr != Z_STREAM_END) {
        uInt ichunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        uInt ochunk = n - out_done > (1u << 30) ? (1u << 30) : (uInt)(n - out_done);
        s.next_in = (Bytef *)in;
        s.avail_in = ichunk;
        s.next_out = dst + out_done;
        s.avail_out = ochunk;
        zr = inflate(&s, Z_NO_FLUSH);
        in += ichunk - s.avail_in;
        in_left -= ichunk - s.avail_in;
        out_done += ochunk - s.avail_out;
        if (zr != Z_OK && zr != Z_STREAM_END)
            break;
        if (zr == Z_OK && ichunk == s.avail_in && ochunk == s.avail_out)
            break; /* no progress */
    }
    inflateEnd(&s);
    if (out_done < n) {
        free(dst);
        return eng_error(ENG_EFORMAT, "%s: member %s does not inflate (damaged file)", name, member);
    }
    if ((!want || want >= e.usize) && crc_of(dst, n) != e.crc) {
        free(dst);
        return eng_error(ENG_EFORMAT, "%s: member %s fails its CRC-32 check (damaged file)", name, member);
    }
    out->data = dst;
    out->len = (size_t)n;
    out->owned = dst;
    return 0;
}
