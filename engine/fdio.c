/* Whole reads and writes on a file descriptor. */
#include "engine/fdio.h"

#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

/* Chunks of at most 1 GiB: a single read or write of more is cut short by
 * the kernel anyway, and stays below SSIZE_MAX everywhere. */
static int transfer(int fd, char *p, size_t n, bool writing)
{
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t k = writing ? write(fd, p, chunk) : read(fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0) {
            errno = 0; /* end of file before n bytes (or a write that makes no progress) */
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int eng_read_full(int fd, void *p, size_t n) { return transfer(fd, p, n, false); }

/* write() does not change the bytes: the cast only shares the loop. */
int eng_write_full(int fd, const void *p, size_t n) { return transfer(fd, (char *)p, n, true); }
