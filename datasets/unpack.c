/* Archive extraction with libarchive, and plain placement (unpack.h). */
#include "datasets/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/error.h"
#include "datasets/fsutil.h"

/* The member's path without `strip` leading components; NULL when nothing
 * is left; *bad set when the path is absolute or climbs with "..". */
static const char *stripped(const char *p, int strip, bool *bad)
{
    *bad = p[0] == '/';
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && !strncmp(s, "..", 2))
            *bad = true;
        s += n + (e ? 1 : 0);
    }
    for (int i = 0; i < strip; i++) {
        const char *e = strchr(p, '/');
        if (!e)
            return NULL;
        p = e + 1;
    }
    return *p ? p : NULL;
}

static int write_member(struct archive *a, const char *path, const char *member)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return ds_errno_error(errno, "create", path);
    int rc = 0;
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = ds_error(DS_EFORMAT, "%s: damaged archive: %s", member, archive_error_string(a));
            break;
        }
        const char *p = buf;
        for (size_t done = 0; done < len;) {
            ssize_t k = pwrite(fd, p + done, len - done, (off_t)off + (off_t)done);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                rc = ds_errno_error(errno, "write", path);
                break;
            }
            done += (size_t)k;
        }
        if (rc)
            break;
    }
    if (close(fd) != 0 && !rc)
        rc = ds_errno_error(errno, "write", path);
    return rc;
}

int ds_unpack_archive(const char *archive, const char *dest, int strip,
                      int (*progress)(void *ctx, int64_t done, int64_t total), void *ctx)
{
    struct stat st;
    if (stat(archive, &st) != 0)
        return ds_errno_error(errno, "open", archive);
    struct archive *a = archive_read_new();
    if (!a)
        return ds_error(DS_ENOMEM, "cannot start libarchive");
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    int rc = 0;
    if (archive_read_open_filename(a, archive, 1 << 16) != ARCHIVE_OK) {
        rc = ds_error(DS_EFORMAT, "%s: not an archive libarchive can read: %s", archive, archive_error_string(a));
        goto done;
    }
    int members = 0;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = ds_error(DS_EFORMAT, "%s: damaged archive: %s", archive, archive_error_string(a));
            goto done;
        }
        const char *name = archive_entry_pathname(e);
        bool bad = false;
        const char *rel = name ? stripped(name, strip, &bad) : NULL;
        if (bad) {
            rc = ds_error(DS_EFORMAT, "%s: member %s leaves the folder (absolute or with ..): refused", archive, name);
            goto done;
        }
        if (!rel)
            continue;
        char path[DS_PATH_MAX];
        if ((rc = ds_path_join(path, sizeof path, dest, rel)))
            goto done;
        size_t pl = strlen(path);
        while (pl > 0 && path[pl - 1] == '/')
            path[--pl] = '\0';
        mode_t type = archive_entry_filetype(e);
        if (type == AE_IFDIR) {
            if ((rc = ds_mkdirs(path, 0755)))
                goto done;
            continue;
        }
        if (type != AE_IFREG) {
            rc = ds_error(DS_EFORMAT,
                          "%s: member %s is not a regular file or folder (links are "
                          "not extracted)",
                          archive, name);
            goto done;
        }
        char *slash = strrchr(path, '/');
        *slash = '\0';
        rc = ds_mkdirs(path, 0755);
        *slash = '/';
        if (rc || (rc = write_member(a, path, name)))
            goto done;
        members++;
        if (progress && progress(ctx, archive_filter_bytes(a, -1), (int64_t)st.st_size)) {
            rc = ds_error(DS_EINTR, "cancelled while unpacking %s", archive);
            goto done;
        }
    }
    if (members == 0) {
        rc = ds_error(DS_EFORMAT, "%s: no files in the archive (after dropping %d leading folders)", archive, strip);
        goto done;
    }
    /* one sync for every file written (a dataset can be many small files) */
    int dfd = open(dest, O_RDONLY | O_CLOEXEC);
    if (dfd < 0 || syncfs(dfd) != 0)
        rc = ds_errno_error(errno, "sync", dest);
    if (dfd >= 0)
        close(dfd);
done:
    archive_read_free(a);
    return rc;
}

int ds_unpack_copy(const char *file, const char *dest, const char *name)
{
    char path[DS_PATH_MAX];
    int rc = ds_path_join(path, sizeof path, dest, name);
    if (rc)
        return rc;
    if (link(file, path) == 0)
        return 0;
    int in = open(file, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return ds_errno_error(errno, "open", file);
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        int e = errno;
        close(in);
        return ds_errno_error(e, "create", path);
    }
    char buf[1 << 16];
    for (;;) {
        ssize_t k = read(in, buf, sizeof buf);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = ds_errno_error(errno, "read", file);
            break;
        }
        if (k == 0)
            break;
        for (ssize_t done = 0; done < k;) {
            ssize_t w = write(out, buf + done, (size_t)(k - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = ds_errno_error(errno, "write", path);
                break;
            }
            done += w;
        }
        if (rc)
            break;
    }
    if (!rc && fsync(out) != 0)
        rc = ds_errno_error(errno, "sync", path);
    close(in);
    close(out);
    return rc;
}
