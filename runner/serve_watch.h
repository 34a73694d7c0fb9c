/* Watching the experiments folder: uv_fs_event on the folder and every
 * subfolder (inotify does not recurse, so new folders get watches of their
 * own), a debounced rescan of the folders an event touched (an event may
 * carry no file name), full rescans on request, and a settle stage so that
 * a file is handed on only when complete: unchanged (size, mtime, inode)
 * for the settle interval and, where the kernel lets us take a read lease,
 * open for writing by no one. Only *.yaml / *.yml files count; hidden
 * files and folders and editor leftovers are ignored. */
#ifndef RUN_SERVE_WATCH_H
#define RUN_SERVE_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct run_watch run_watch;

typedef struct run_watch_cbs {
    void *ctx;
    /* A complete file (path under the root, absolute) and its bytes
     * (at most max_bytes + 1 of them: the reader checks the limit). A
     * negative return means "try again later" (e.g. the database was busy). */
    int (*file_ready)(void *ctx, const char *path, const char *buf, size_t len);
    /* A file that was handed on before has disappeared. */
    void (*file_gone)(void *ctx, const char *path);
    /* A full rescan has listed the whole tree. */
    void (*scan_done)(void *ctx);
} run_watch_cbs;

typedef struct run_watch_opts {
    int64_t settle_ms;
    size_t max_bytes;
    int64_t rescan_interval_ms; /* 0: no periodic rescan */
} run_watch_opts;

/* Starts watching root (an existing folder; it is resolved with realpath)
 * and schedules a first full rescan. 0 or a negative errno. */
int run_watch_new(uv_loop_t *loop, const char *root, const run_watch_opts *o, const run_watch_cbs *cbs,
                  run_watch **out);
/* The resolved root ("/srv/epochd/experiments"). */
const char *run_watch_root(const run_watch *w);
void run_watch_set_opts(run_watch *w, const run_watch_opts *o);
/* Lists the whole tree again; scan_done follows. With all, every file is
 * handed on again even if unchanged (SIGHUP: the settings that judge a spec
 * may have changed). */
void run_watch_rescan(run_watch *w, bool all);
/* True when path (absolute) is a spec file present under the root, whether
 * handed on yet or still settling. */
bool run_watch_has(const run_watch *w, const char *path);
/* True when path lies under the root. */
bool run_watch_covers(const run_watch *w, const char *path);
/* Files waiting to settle. */
size_t run_watch_pending(const run_watch *w);
/* Stops watching and closes every handle; done(ctx) runs once all are
 * closed (the memory is then freed). */
void run_watch_close(run_watch *w, void (*done)(void *ctx), void *ctx);

/* The file-name rule: *.yaml or *.yml, not hidden (".x"), not an editor's
 * temporary or backup file ("#x#", "x~", ".#x", "x.swp", "4913"). */
bool run_watch_name_ok(const char *name);

#endif
