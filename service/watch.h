/* Watching the experiments folder: uv_fs_event on the folder and every
 * subfolder (inotify does not recurse, so new folders get watches of their
 * own), a debounced rescan of the folders an event touched (an event may
 * carry no file name), full rescans on request, and a settle stage so that
 * a file is handed on only when complete: unchanged (size, mtime, inode)
 * for the settle interval and, where the kernel lets us take a read lease,
 * open for writing by no one. Only *.yaml / *.yml files count; hidden
 * files and folders and editor leftovers are ignored. */
#ifndef SVC_WATCH_H
#define SVC_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct svc_watch svc_watch;

typedef struct svc_watch_cbs {
    void *ctx;
    /* A complete file (path under the root, absolute) and its bytes
     * (at most max_bytes + 1 of them: the reader checks the limit). A
     * negative return means "try again later" (e.g. the database was busy). */
    int (*file_ready)(void *ctx, const char *path, const char *buf, size_t len);
    /* A file that cannot be read (its permissions, a symbolic link the
     * service does not follow): why, in words. Handed on once per change of
     * the file (its size, times or inode), like file_ready; a negative
     * return means "try again later". */
    int (*file_unreadable)(void *ctx, const char *path, const char *reason);
    /* A file that was handed on before has disappeared. */
    void (*file_gone)(void *ctx, const char *path);
    /* A full rescan has listed the whole tree. */
    void (*scan_done)(void *ctx);
} svc_watch_cbs;

typedef struct svc_watch_opts {
    int64_t settle_ms;
    size_t max_bytes;
    int64_t rescan_interval_ms; /* 0: no periodic rescan */
} svc_watch_opts;

/* Starts watching root (an existing folder; it is resolved with realpath)
 * and schedules a first full rescan. 0, or SVC_ENOENT (not a folder) or
 * SVC_ENOMEM with svc_last_error set. */
int svc_watch_new(uv_loop_t *loop, const char *root, const svc_watch_opts *o, const svc_watch_cbs *cbs,
                  svc_watch **out);
/* The resolved root ("/srv/epochd/experiments"). */
const char *svc_watch_root(const svc_watch *w);
void svc_watch_set_opts(svc_watch *w, const svc_watch_opts *o);
/* Lists the whole tree again; scan_done follows. With all, every file is
 * handed on again even if unchanged (SIGHUP: the settings that judge a spec
 * may have changed). */
void svc_watch_rescan(svc_watch *w, bool all);
/* True when path (absolute) is a spec file present under the root, whether
 * handed on yet or still settling. */
bool svc_watch_has(const svc_watch *w, const char *path);
/* True when path lies under the root. */
bool svc_watch_covers(const svc_watch *w, const char *path);
/* Files waiting to settle. */
size_t svc_watch_pending(const svc_watch *w);
/* Stops watching and closes every handle; done(ctx) runs once all are
 * closed (the memory is then freed). */
void svc_watch_close(svc_watch *w, void (*done)(void *ctx), void *ctx);

/* The file-name rule: *.yaml or *.yml, not hidden (".x"), not an editor's
 * temporary or backup file ("#x#", "x~", ".#x", "x.swp", "4913"). */
bool svc_watch_name_ok(const char *name);

#endif
