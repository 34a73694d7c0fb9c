/* SHA-256 (FIPS 180-4): the identity of spec files and sweep combinations. */
#ifndef SPEC_SHA256_H
#define SPEC_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct spec_sha256_ctx {
    uint32_t h[8];
    uint64_t total;      /* bytes hashed so far */
    unsigned char buf[64];
    size_t fill;         /* bytes waiting in buf */
} spec_sha256_ctx;

void spec_sha256_init(spec_sha256_ctx *c);
void spec_sha256_update(spec_sha256_ctx *c, const void *data, size_t len);
void spec_sha256_final(spec_sha256_ctx *c, unsigned char digest[32]);

/* The digest of data as 64 lower-case hex digits and a NUL. */
void spec_sha256_hex(const void *data, size_t len, char out[65]);

#endif
