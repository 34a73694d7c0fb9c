/* Opening user-named files safely (see file.h). */
#include "engine/file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/error.h"

const char *eng_file_kind(mode_t mode)
{
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISLNK(mode))
        return "a symbolic link";
    return "an unknown kind of file";
}

/* open(2), refusing symbolic links in every component under ENG_FILE_RESOLVED
 * (openat2 RESOLVE_NO_SYMLINKS; O_NOFOLLOW where the kernel or a seccomp
 * filter does not offer openat2). */
static int open_flags(const char *path, int oflags, unsigned flags)
{
#ifdef SYS_openat2
    if (flags & ENG_FILE_RESOLVED) {
        struct open_how how = {.flags = (uint64_t)oflags, .resolve = RESOLVE_NO_SYMLINKS};
        long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
        if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
            return (int)fd;
    }
#endif
    return open(path, oflags);
}

int eng_file_check(const char *path, unsigned flags, struct stat *st)
{
    int r = flags & (ENG_FILE_NOFOLLOW | ENG_FILE_RESOLVED) ? lstat(path, st) : stat(path, st);
    if (r != 0) {
        int e = errno;
        int rc = e == ENOENT || e == ENOTDIR ? ENG_ENOENT : ENG_EIO;
        eng_error(rc, "%s: cannot open: %s", path, strerror(e));
        errno = e;
        return rc;
    }
    if (!S_ISREG(st->st_mode)) {
        eng_error(ENG_EIO, "%s: not a regular file (%s)", path, eng_file_kind(st->st_mode));
        errno = 0;
        return ENG_EIO;
    }
    return 0;
}

int eng_file_open(const char *path, unsigned flags, int *fd, struct stat *st)
{
    struct stat before, after;
    *fd = -1;
    int rc = eng_file_check(path, flags, &before);
    if (st)
        *st = before; /* says which kind of file was refused */
    if (rc)
        return rc;
    bool nofollow = flags & (ENG_FILE_NOFOLLOW | ENG_FILE_RESOLVED);
    int oflags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | (nofollow ? O_NOFOLLOW : 0);
    int f = open_flags(path, oflags, flags);
    if (f < 0) {
        int e = errno;
        if (e == ELOOP && nofollow)
            rc = eng_error(ENG_EIO, "%s: a symbolic link on the way (refused: the path was resolved before)", path);
        else
            rc = eng_error(e == ENOENT || e == ENOTDIR ? ENG_ENOENT : ENG_EIO, "%s: cannot open: %s", path,
                           strerror(e));
        errno = e;
        return rc;
    }
    if (fstat(f, &after) != 0) {
        int e = errno;
        close(f);
        rc = eng_error(ENG_EIO, "%s: cannot stat: %s", path, strerror(e));
        errno = e;
        return rc;
    }
    if (!S_ISREG(after.st_mode) || after.st_dev != before.st_dev || after.st_ino != before.st_ino) {
        close(f);
        if (st)
            *st = after;
        if (!S_ISREG(after.st_mode)) {
            rc = eng_error(ENG_EIO, "%s: not a regular file (%s)", path, eng_file_kind(after.st_mode));
            errno = 0;
            return rc;
        }
        rc = eng_error(ENG_EIO, "%s: the file was replaced while it was opened", path);
        errno = EAGAIN;
        return rc;
    }
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(f);
        rc = eng_error(ENG_EIO, "%s: cannot set blocking reads: %s", path, strerror(e));
        errno = e;
        return rc;
    }
    *fd = f;
    if (st)
        *st = after;
    return 0;
}
