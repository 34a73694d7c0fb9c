/* epochd serve: the service's state, shared by its parts (internal to
 * runner/serve*.c; docs/service.md describes the behaviour).
 *
 *   serve.c          start-up, the loop, shutdown, SIGHUP reload
 *   serve_config.c   settings (YAML file, command line)
 *   serve_watch.c    the experiments folder: fs events, rescans, settling
 *   serve_ingest.c   a settled file -> run rows (queued / invalid), deletions
 *   serve_discover.c GPUs from `epochd devices --json` in a child
 *   serve_devices.c  device slots and placement
 *   serve_sched.c    the queue: placement, notes, cancel requests, STATUS=
 *   serve_exec.c     one `epochd worker` child per run and its events
 *   serve_proto.c    the worker's JSON lines
 *   serve_resume.c   runs left interrupted or orphaned by a previous service
 *   log.c, notify.c  stderr logging with priorities, sd_notify */
#ifndef RUN_SERVE_H
#define RUN_SERVE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "db/db.h"
#include "runner/serve_config.h"
#include "runner/serve_devices.h"
#include "runner/serve_proto.h"
#include "runner/serve_watch.h"

typedef struct run_worker run_worker;

typedef struct run_serve {
    uv_loop_t *loop;
    run_serve_config cfg;
    run_serve_overrides ovr; /* re-applied on reload */
    db *db;
    char *exe;               /* this epochd binary, run as `epochd worker` */
    char *state_dir;         /* absolute */
    run_watch *watch;
    run_device_filter filter;
    run_slots slots;
    int n_host_gpus;
    run_worker *workers;     /* running children */
    int n_workers;
    int64_t n_queued;        /* at the last scheduler pass */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t sched_timer, poll_timer, watchdog_timer, stop_timer;
    bool started;            /* devices known, resume done, watching */
    bool ready;              /* READY=1 sent */
    bool stopping;
    bool closed;
    int lock_fd;
    char last_status[512];
    int exit_code;
} run_serve;

/* serve.c */
int run_serve_main(const run_serve_overrides *ovr);
void run_serve_shutdown(run_serve *sv, const char *why);
/* Called when a worker is gone: the shutdown may be complete. */
void run_serve_worker_gone(run_serve *sv);
/* SIGHUP: reload the config and rescan. */
void run_serve_reload(run_serve *sv);

/* serve_ingest.c: callbacks of the watcher */
int run_ingest_file(void *sv, const char *path, const char *buf, size_t len);
void run_ingest_gone(void *sv, const char *path);
void run_ingest_scan_done(void *sv);

/* serve_sched.c */
void run_sched_request(run_serve *sv);   /* a pass soon (coalesced) */
void run_sched_poll(run_serve *sv);      /* cancel requests, then a pass */
void run_sched_status(run_serve *sv);    /* STATUS= when it changed */

/* serve_exec.c */
struct run_worker {
    run_serve *sv;
    run_worker *next;
    int64_t run_id;
    char *name;
    run_placement place;
    int64_t attempts;          /* starts of this run, this one included */
    int64_t epochs_planned, epoch_now, epochs_done;
    int64_t samples_per_epoch;
    int64_t pid;
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t timer;          /* SIGKILL after SIGTERM; drain bound after exit */
    run_linebuf outbuf, errbuf;
    int open_handles;
    bool exited, out_eof, err_eof, finished;
    int64_t exit_status;
    int term_signal;
    bool have_final;
    run_wev final;
    char proto_error[512];
    bool db_error;
    char db_error_msg[512];
    bool cancel;
    char cancel_reason[160];
    bool term_sent, kill_sent;
    uint64_t last_progress_ms;
    uint64_t started_ms;
};

int run_worker_start(run_serve *sv, const db_run *r, const run_placement *p);
run_worker *run_worker_find(run_serve *sv, int64_t run_id);
/* SIGTERM now (the worker stops at a step boundary), SIGKILL after the
 * stop timeout. cancel: the run ends `cancelled` with reason. */
void run_worker_stop(run_worker *w, bool cancel, const char *reason);
void run_worker_kill(run_worker *w);

/* serve_discover.c: the host's CUDA devices, counted by a short-lived
 * `epochd devices --json` child so that the service holds no CUDA context. */
typedef void (*run_discover_cb)(run_serve *sv, int n_gpus);
int run_discover_gpus(run_serve *sv, run_discover_cb cb);

/* serve_resume.c: runs a previous service left running (orphaned: it
 * crashed) or interrupted go back to the queue; they resume from their
 * checkpoints. Stale workers of a crashed service are stopped first. */
void run_resume_orphans(run_serve *sv);
/* Does /proc say pid is an epochd worker of run_id with our state dir? */
bool run_resume_is_our_worker(run_serve *sv, int64_t pid, int64_t run_id);

#endif
