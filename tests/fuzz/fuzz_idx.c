/* Fuzz target: an IDX file, plain or gzip-compressed (engine/dataset_idx.c
 * on engine/zstream.c), as eng_dataset_idx_parse reads it from memory.
 *
 * The first input byte chooses an image (odd) or a label (even) file; the
 * rest is the file. Besides ASan/UBSan, the result is checked against
 * zlib's inflate driven directly (an independent reading of the same
 * bytes): an accepted file is exactly a header and its items - plain, or
 * one or more complete gzip members with nothing after them - and the items
 * returned are those bytes; labels are below 10. Built as a fuzzer with
 * -Dfuzz=true (scripts/fuzz idx); otherwise tests/fuzz/replay.c runs it over
 * tests/fuzz/corpus/idx. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "engine/dataset.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_idx: property failed: %s (line %d)\n", #cond, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The content of buf as a gzip reader that accepts only whole members back
 * to back would see it; false when it is not such a file. */
static bool gunzip_all(const uint8_t *buf, size_t len, uint8_t **out, size_t *out_len)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *o = malloc(cap);
    if (!o)
        return false;
    size_t pos = 0;
    bool ok = true;
    while (ok && pos < len) {
        z_stream s;
        memset(&s, 0, sizeof s);
        if (len - pos < 2 || buf[pos] != 0x1f || buf[pos + 1] != 0x8b || inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) {
            ok = false;
            break;
        }
        s.next_in = (Bytef *)buf + pos;
        s.avail_in = (uInt)(len - pos);
        int zr;
        do {
            if (n == cap) {
                uint8_t *g = cap < (1u << 30) ? realloc(o, cap * 2) : NULL;
                if (!g) {
                    ok = false;
                    break;
                }
                o = g;
                cap *= 2;
            }
            s.next_out = o + n;
            s.avail_out = (uInt)(cap - n);
            zr = inflate(&s, Z_NO_FLUSH);
            n = cap - s.avail_out;
        } while (zr == Z_OK || (zr == Z_BUF_ERROR && s.avail_out == 0));
        ok = ok && zr == Z_STREAM_END;
        pos = len - s.avail_in;
        inflateEnd(&s);
    }
    if (!ok) {
        free(o);
        return false;
    }
    *out = o;
    *out_len = n;
    return true;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool images = data[0] & 1;
    const uint8_t *file = data + 1;
    size_t len = size - 1;
    uint32_t count = 0;
    uint8_t *items = NULL;
    int rc = eng_dataset_idx_parse(file, len, images, &count, &items);
    if (rc != 0) {
        CHECK(items == NULL && count == 0);
        return 0;
    }
    /* the content, read independently */
    const uint8_t *content = file;
    size_t clen = len;
    uint8_t *unz = NULL;
    if (len >= 2 && file[0] == 0x1f && file[1] == 0x8b) {
        CHECK(gunzip_all(file, len, &unz, &clen));
        content = unz;
    }
    size_t header = images ? 16 : 8, item = images ? 28 * 28 : 1;
    CHECK(clen >= header);
    CHECK(be32(content) == (images ? 0x803u : 0x801u));
    CHECK(be32(content + 4) == count);
    if (images)
        CHECK(be32(content + 8) == 28 && be32(content + 12) == 28);
    CHECK(clen == header + (size_t)count * item);
    CHECK(count == 0 || !memcmp(items, content + header, (size_t)count * item));
    for (uint32_t i = 0; !images && i < count; i++)
        CHECK(items[i] < 10);
    free(unz);
    free(items);
    return 0;
}
