/* SHA-256 through OpenSSL's EVP interface (sha256.h). */
#include "datasets/sha256.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datasets/error.h"

struct ds_sha256 {
    EVP_MD_CTX *ctx;
};

ds_sha256 *ds_sha256_new(void)
{
    ds_sha256 *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        ds_sha256_free(h);
        return NULL;
    }
    return h;
}

void ds_sha256_update(ds_sha256 *h, const void *data, size_t len) { EVP_DigestUpdate(h->ctx, data, len); }

void ds_sha256_final(ds_sha256 *h, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->ctx, md, &n);
    for (unsigned i = 0; i < 32; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
}

void ds_sha256_free(ds_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

int ds_sha256_file(const char *path, char hex[65], int (*progress)(void *ctx, int64_t done), void *ctx)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ds_error(errno == ENOENT ? DS_ENOENT : DS_EIO, "%s: %s", path, strerror(errno));
    ds_sha256 *h = ds_sha256_new();
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    int rc = 0;
    if (!h || !buf) {
        rc = ds_error(DS_ENOMEM, "out of memory hashing %s", path);
        goto done;
    }
    int64_t done = 0;
    for (;;) {
        ssize_t k = read(fd, buf, CHUNK);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = ds_error(DS_EIO, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (k == 0)
            break;
        ds_sha256_update(h, buf, (size_t)k);
        done += k;
        if (progress && progress(ctx, done)) {
            rc = ds_error(DS_EINTR, "cancelled while hashing %s", path);
            goto done;
        }
    }
    ds_sha256_final(h, hex);
done:
    free(buf);
    ds_sha256_free(h);
    close(fd);
    return rc;
}

int ds_sha256_valid(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return s[64] == '\0';
}
