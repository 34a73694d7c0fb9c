/* Whole reads and writes on a file descriptor (engine-internal): the loop
 * over short transfers and EINTR that every file reader and writer needs. */
#ifndef ENG_FDIO_H
#define ENG_FDIO_H

#include <stddef.h>

/* Read exactly n bytes / write all n bytes. 0, or -1 with errno set (0 when
 * the file ended before n bytes). */
int eng_read_full(int fd, void *p, size_t n);
int eng_write_full(int fd, const void *p, size_t n);

#endif
