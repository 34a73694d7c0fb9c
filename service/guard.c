/* The service's files as resources that can fail under it: the lock on the
 * database file (one service per database, whatever path names it), the
 * database's identity (deleted or replaced while serving), write failures
 * the service cannot go on with, and the free space on the state folder's
 * disk. Each failure is said exactly, once, in the log. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "service/error.h"
#include "service/internal.h"
#include "service/log.h"

int svc_guard_lock(svc_service *sv)
{
    /* the lock is on the database file itself: a symlink or a hard link to
     * it, or another spelling of its path, finds the same lock */
    sv->lock_fd = open(sv->cfg.db_path, O_RDONLY | O_CLOEXEC);
    if (sv->lock_fd < 0)
        return svc_error(SVC_EIO, "cannot open %s to lock it: %s", sv->cfg.db_path, strerror(errno));
    struct stat st;
    if (fstat(sv->lock_fd, &st) < 0)
        return svc_error(SVC_EIO, "cannot inspect %s: %s", sv->cfg.db_path, strerror(errno));
    sv->db_dev = st.st_dev;
    sv->db_ino = st.st_ino;
    if (flock(sv->lock_fd, LOCK_EX | LOCK_NB) < 0)
        return svc_error(SVC_ELOCKED, "another epochd serve is using %s (it holds the lock on that file)",
                         sv->cfg.db_path);
    return 0;
}

void svc_fatal(svc_service *sv, int code, const char *fmt, ...)
{
    if (sv->exit_code)
        return; /* the first cause is the one to say */
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    svc_log(SVC_LOG_ERR, "%s: stopping; the service takes no more work and exits so that it is restarted", msg);
    sv->exit_code = svc_error(code, "%s", msg);
    svc_service_stop(sv, "a fatal condition");
}

bool svc_guard_db_present(svc_service *sv)
{
    struct stat st;
    if (stat(sv->cfg.db_path, &st) < 0) {
        svc_fatal(sv, SVC_EIO, "the database %s has disappeared (%s) while the service used it", sv->cfg.db_path,
                  strerror(errno));
        return false;
    }
    if (st.st_dev != sv->db_dev || st.st_ino != sv->db_ino) {
        svc_fatal(sv, SVC_EIO, "the database %s was replaced by another file while the service used it",
                  sv->cfg.db_path);
        return false;
    }
    return true;
}

void svc_guard_db_write(svc_service *sv, int db_rc)
{
    /* busy and full are passing conditions, retried by the callers;
     * an I/O error, a read-only or damaged file is not */
    if (db_rc == DB_EIO)
        svc_fatal(sv, SVC_EIO, "the database cannot be written: %s", db_last_error());
}

bool svc_guard_disk_low(svc_service *sv, char *note, size_t len)
{
    struct statvfs vfs;
    if (sv->cfg.min_free_bytes == 0 || statvfs(sv->state_dir, &vfs) < 0)
        return false;
    unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
    if (avail >= sv->cfg.min_free_bytes)
        return false;
    snprintf(note, len, "waiting: the state folder's disk is full (%.1f MiB free, limits.min_free_disk is %.1f MiB)",
             (double)avail / 1048576.0, (double)sv->cfg.min_free_bytes / 1048576.0);
    return true;
}
