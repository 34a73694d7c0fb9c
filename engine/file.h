/* Opening a file that someone else named: a spec author (init_from, the
 * dataset's files), the state directory (checkpoints), a configuration.
 *
 * Such a path may name a FIFO (open() blocks until a writer appears, and
 * with it the whole service), a device (/dev/zero never ends; opening some
 * devices has side effects), a directory, or a symbolic link out of where
 * the file is allowed to be. These functions hand back only regular files:
 *   - the path is first looked at with stat (lstat under ENG_FILE_NOFOLLOW),
 *     and anything but a regular file is refused without being opened;
 *   - it is then opened O_RDONLY | O_NONBLOCK | O_CLOEXEC (| O_NOFOLLOW, or
 *     with no symbolic link anywhere, see below), so that a FIFO swapped in
 *     after the look cannot block the open, and fstat must find the same
 *     regular file (device and inode);
 *   - only then is O_NONBLOCK cleared and the descriptor returned.
 * Every file the engine, the spec loader and the validator read from a
 * user-named path goes through them; the service's readers should too. */
#ifndef ENG_FILE_H
#define ENG_FILE_H

#include <sys/stat.h>

enum {
    /* the last component must not be a symbolic link (a checkpoint in the
     * state directory: a link put in its place is refused) */
    ENG_FILE_NOFOLLOW = 1u << 0,
    /* no component may be a symbolic link: for a path that was resolved
     * (realpath) and confined to the data roots, so that a link swapped in
     * anywhere along it after the check is refused rather than followed
     * out of the roots. openat2's RESOLVE_NO_SYMLINKS where the kernel has
     * it, else O_NOFOLLOW (the last component). Implies ENG_FILE_NOFOLLOW. */
    ENG_FILE_RESOLVED = 1u << 1,
};

/* Whether path names a regular file, without opening it: 0 with *st filled,
 * ENG_ENOENT (no such file, or a component is not a directory), ENG_EIO
 * (not a regular file: a FIFO, a device, a directory, a socket, or a link
 * under ENG_FILE_NOFOLLOW - *st then says which - or stat failed). The
 * message starts with the path. errno is that of the failing call (0 for a
 * file of the wrong kind). */
int eng_file_check(const char *path, unsigned flags, struct stat *st);

/* Opens path for reading as above: 0 with *fd (the caller closes it) and
 * *st (from fstat) set; on failure *fd is -1 and the codes are those of
 * eng_file_check (a file of the wrong kind: errno 0 and *st says which),
 * plus ENG_EIO when open fails or the file changed between the look and the
 * open. st may be NULL. */
int eng_file_open(const char *path, unsigned flags, int *fd, struct stat *st);

/* "a regular file", "a directory", "a FIFO", "a character device", "a
 * block device", "a socket", "a symbolic link", "an unknown kind of file". */
const char *eng_file_kind(mode_t mode);

#endif
