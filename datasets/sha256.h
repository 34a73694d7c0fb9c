/* SHA-256 of files and byte streams (OpenSSL's libcrypto), as lower-case hex.
 */
#ifndef DS_SHA256_H
#define DS_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct ds_sha256 ds_sha256;

/* NULL on out of memory. */
ds_sha256 *ds_sha256_new(void);
void ds_sha256_update(ds_sha256 *h, const void *data, size_t len);
/* Writes 64 hex digits and a NUL; the context can be freed or reused after. */
void ds_sha256_final(ds_sha256 *h, char hex[65]);
void ds_sha256_free(ds_sha256 *h);

/* The whole file's digest. `progress` (may be NULL) is called with the bytes
 * hashed so far; a nonzero return stops it with DS_EINTR. */
int ds_sha256_file(const char *path, char hex[65], int (*progress)(void *ctx, int64_t done), void *ctx);

/* Whether s is 64 hex digits (either case). */
int ds_sha256_valid(const char *s);

#endif
