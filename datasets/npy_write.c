/* .npy writer (npy_write.h): the header is a Python dict literal padded
 * with spaces so that the data starts at a multiple of 64 bytes. */
#include "datasets/npy_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "datasets/error.h"
#include "datasets/fsutil.h"

static int write_all(int fd, const void *p, size_t n, const char *path)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return ds_errno_error(errno, "write", path);
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int ds_npy_write(const char *path, const char *descr, int ndim, const int64_t *shape, const void *data, size_t bytes)
{
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t total = 10 + (size_t)n + 1, padded = (total + 63) / 64 * 64;
    unsigned char head[600];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    size_t hlen = padded - 10;
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + 10, dict, (size_t)n);
    memset(head + 10 + n, ' ', padded - 10 - (size_t)n - 1);
    head[padded - 1] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ds_errno_error(errno, "create", path);
    int rc = write_all(fd, head, padded, path);
    if (!rc)
        rc = write_all(fd, data, bytes, path);
    if (!rc && fsync(fd) != 0)
        rc = ds_errno_error(errno, "sync", path);
    if (close(fd) != 0 && !rc)
        rc = ds_errno_error(errno, "write", path);
    return rc;
}
