/* File-system steps the fetch and the caches are built from: folders made,
 * data made durable (fsync), a staged folder put in place atomically, trees
 * removed, free space. Messages name the path; an errno of ENOSPC or EDQUOT
 * becomes DS_ENOSPC. */
#ifndef DS_FSUTIL_H
#define DS_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DS_PATH_MAX 4096

/* out = a "/" b; DS_EINVAL when it does not fit. */
int ds_path_join(char *out, size_t len, const char *a, const char *b);
/* mkdir -p. */
int ds_mkdirs(const char *path, mode_t mode);
/* fsync of a file or folder by path. */
int ds_fsync_path(const char *path);
/* rm -rf (symbolic links are removed, never followed); 0 if path is absent. */
int ds_remove_tree(const char *path);
/* Bytes an unprivileged writer may still use on path's file system; -1 if
 * unknown. */
int64_t ds_free_bytes(const char *path);
/* Puts the complete folder `stage` at `target` in one step (rename; an
 * existing target is exchanged with it atomically and then removed), then
 * syncs the parent folder: a reader sees the old folder or the new one,
 * never a part. Both must be on one file system. */
int ds_install_dir(const char *stage, const char *target);
/* A DS_E* code and message for a failed call on path ("write", "rename"). */
int ds_errno_error(int err, const char *what, const char *path);
/* Human-readable bytes: "170.1 MB". */
void ds_format_bytes(double bytes, char *buf, size_t len);

#endif
