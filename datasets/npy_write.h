/* Writing NumPy .npy files (format 1.0): the decoded caches of image
 * folders are arrays the engine's npy loader reads. */
#ifndef DS_NPY_WRITE_H
#define DS_NPY_WRITE_H

#include <stddef.h>
#include <stdint.h>

/* Writes (and syncs) an array of `descr` ("|u1", "<i4") and shape; data
 * holds the product of shape times the item size in bytes. */
int ds_npy_write(const char *path, const char *descr, int ndim, const int64_t *shape, const void *data, size_t bytes);

#endif
