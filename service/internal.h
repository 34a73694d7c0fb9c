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
#ifndef SVC_INTERNAL_H
#define SVC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "db/db.h"
#include "service/config.h"
#include "service/slots.h"
#include "service/protocol.h"
#include "service/watch.h"

typedef struct svc_attempt svc_attempt;

typedef struct svc_service {
    uv_loop_t *loop;
    svc_config cfg;
    svc_overrides ovr; /* re-applied on reload */
    db *db;
    char *exe;               /* this epochd binary, run as `epochd worker` */
    char *state_dir;         /* absolute */
    svc_watch *watch;
    svc_device_filter filter;
    svc_slots slots;
    int n_host_gpus;
    svc_attempt *workers;     /* running children */
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
} svc_service;

/* serve.c */
int svc_main(const svc_overrides *ovr);
void svc_shutdown(svc_service *sv, const char *why);
/* Called when a worker is gone: the shutdown may be complete. */
void svc_attempt_gone(svc_service *sv);
/* SIGHUP: reload the config and rescan. */
void svc_reload(svc_service *sv);

/* serve_ingest.c: callbacks of the watcher */
int svc_ingest_file(void *sv, const char *path, const char *buf, size_t len);
void svc_ingest_gone(void *sv, const char *path);
void svc_ingest_scan_done(void *sv);

/* serve_sched.c */
void svc_sched_request(svc_service *sv);   /* a pass soon (coalesced) */
void svc_sched_poll(svc_service *sv);      /* cancel requests, then a pass */
void svc_sched_status(svc_service *sv);    /* STATUS= when it changed */

/* serve_exec.c */
struct svc_attempt {
    svc_service *sv;
    svc_attempt *next;
    int64_t run_id;
    char *name;
    svc_placement place;
    int64_t attempts;          /* starts of this run, this one included */
    int64_t epochs_planned, epoch_now, epochs_done;
    int64_t samples_per_epoch;
    int64_t pid;
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t timer;          /* SIGKILL after SIGTERM; drain bound after exit */
    svc_linebuf outbuf, errbuf;
    int open_handles;
    bool exited, out_eof, err_eof, finished;
    int64_t exit_status;
    int term_signal;
    bool have_final;
    svc_event final;
    char proto_error[512];
    bool db_error;
    char db_error_msg[512];
    bool cancel;
    char cancel_reason[160];
    bool term_sent, kill_sent;
    uint64_t last_progress_ms;
    uint64_t started_ms;
};

int svc_attempt_start(svc_service *sv, const db_run *r, const svc_placement *p);
svc_attempt *svc_attempt_find(svc_service *sv, int64_t run_id);
/* SIGTERM now (the worker stops at a step boundary), SIGKILL after the
 * stop timeout. cancel: the run ends `cancelled` with reason. */
void svc_attempt_stop(svc_attempt *w, bool cancel, const char *reason);
void svc_attempt_kill(svc_attempt *w);

/* serve_discover.c: the host's CUDA devices, counted by a short-lived
 * `epochd devices --json` child so that the service holds no CUDA context. */
typedef void (*svc_discover_cb)(svc_service *sv, int n_gpus);
int svc_discover_gpus(svc_service *sv, svc_discover_cb cb);

/* serve_resume.c: runs a previous service left running (orphaned: it
 * crashed) or interrupted go back to the queue; they resume from their
 * checkpoints. Stale workers of a crashed service are stopped first. */
void svc_resume_orphans(svc_service *sv);
/* Does /proc say pid is an epochd worker of run_id with our state dir? */
bool svc_resume_is_our_worker(svc_service *sv, int64_t pid, int64_t run_id);

#endif
