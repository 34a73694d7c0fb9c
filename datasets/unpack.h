/* Unpacking a verified download into a staging folder: an archive through
 * libarchive (tar, gzip/bzip2/xz-compressed tar, zip ...), or a file placed
 * as it is. Only regular files and folders are made; an absolute path, a
 * ".." or a link in the archive is refused, so nothing lands outside the
 * folder. */
#ifndef DS_UNPACK_H
#define DS_UNPACK_H

#include <stdint.h>

/* Extracts `archive` into the existing folder dest, without the first
 * `strip` components of each path (members left with no path are skipped).
 * `progress` (may be NULL) gets the archive bytes read so far and its size;
 * nonzero cancels (DS_EINTR). Files are synced before it returns. */
int ds_unpack_archive(const char *archive, const char *dest, int strip,
                      int (*progress)(void *ctx, int64_t done, int64_t total), void *ctx);

/* Places file at dest/name: a hard link when possible (no copy), else a copy.
 */
int ds_unpack_copy(const char *file, const char *dest, const char *name);

#endif
