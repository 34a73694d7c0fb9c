/* File-system helpers (fsutil.h). */
#include "datasets/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "datasets/error.h"

int ds_errno_error(int err, const char *what, const char *path)
{
    int code = err == ENOSPC || err == EDQUOT ? DS_ENOSPC : err == ENOENT ? DS_ENOENT : DS_EIO;
    return ds_error(code, "%s: cannot %s: %s", path, what, strerror(err));
}

int ds_path_join(char *out, size_t len, const char *a, const char *b)
{
    int n = snprintf(out, len, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= len)
        return ds_error(DS_EINVAL, "path too long: %s/%s", a, b);
    return 0;
}

int ds_mkdirs(const char *path, mode_t mode)
{
    char buf[DS_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ds_error(DS_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return ds_errno_error(errno, "create the folder", buf);
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ds_error(DS_EIO, "%s: not a folder", path);
    return 0;
}

int ds_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ds_errno_error(errno, "open", path);
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = ds_errno_error(errno, "sync", path);
    close(fd);
    return rc;
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)f;
    int rc = flag == FTW_DP ? rmdir(p) : unlink(p);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

int ds_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : ds_errno_error(errno, "remove", path);
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : ds_errno_error(errno, "remove", path);
    if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return ds_errno_error(errno, "remove", path);
    return 0;
}

int64_t ds_free_bytes(const char *path)
{
    struct statvfs v;
    if (statvfs(path, &v) != 0)
        return -1;
    return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

static int parent_of(const char *path, char *out, size_t len)
{
    if (snprintf(out, len, "%s", path) >= (int)len)
        return ds_error(DS_EINVAL, "path too long: %s", path);
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, len, ".");
    else if (slash == out)
        out[1] = '\0';
    else
        *slash = '\0';
    return 0;
}

int ds_install_dir(const char *stage, const char *target)
{
    char parent[DS_PATH_MAX];
    int rc = parent_of(target, parent, sizeof parent);
    if (rc)
        return rc;
    if (rename(stage, target) != 0) {
        if (errno != EEXIST && errno != ENOTEMPTY)
            return ds_errno_error(errno, "rename into place", stage);
        /* a folder is there: swap the two in one step, then drop the old one (now
         * at stage) */
        if (renameat2(AT_FDCWD, stage, AT_FDCWD, target, RENAME_EXCHANGE) != 0)
            return ds_errno_error(errno, "exchange with the existing folder", target);
        if ((rc = ds_remove_tree(stage)))
            return rc;
    }
    return ds_fsync_path(parent);
}

void ds_format_bytes(double b, char *buf, size_t len)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000.0 && u < 4)
        b /= 1000.0, u++;
    if (u == 0)
        snprintf(buf, len, "%.0f B", b);
    else
        snprintf(buf, len, "%.1f %s", b, units[u]);
}
