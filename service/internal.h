/* The service's state, shared by its parts (internal to service/; the
 * public interface is service.h, the executor seam executor.h).
 *
 *   service.c   start-up, the loop, shutdown, SIGHUP reload
 *   config.c    settings (YAML file, command line)
 *   watch.c     the experiments folder: fs events, rescans, settling
 *   ingest.c    a settled file -> run rows (queued / invalid), deletions
 *   discover.c  GPUs from `epochd devices --json` in a child
 *   slots.c     device slots and placement
 *   plan.c      the placement planner: a pure function (plan.h)
 *   estimate.c  run costs and learned device speeds
 *   placement.c the planner's inputs from the service, its plan recorded
 *   datafetch.c datasets fetched for data.download before their runs start
 *   config_data.c  the data_* settings
 *   sched.c     the queue: placement, notes, cancel requests, STATUS=
 *   attempt.c   one attempt of a run: its worker's events and its end
 *   exec_local.c the local executor: child processes
 *   exec_slurm.c the Slurm executor: batch jobs (slurm_*.c: commands, parsing, sbatch)
 *   attempt_cluster.c  what a cluster's jobs add to an attempt
 *   resume.c    runs left interrupted or orphaned by a previous service
 *   protocol.c  the worker's JSON lines, both directions
 *   log.c, notify.c  stderr logging with priorities, sd_notify */
#ifndef SVC_INTERNAL_H
#define SVC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "db/db.h"
#include "service/config.h"
#include "service/executor.h"
#include "service/protocol.h"
#include "service/service.h"
#include "service/slots.h"
#include "service/watch.h"

typedef struct svc_attempt svc_attempt;
typedef struct svc_end svc_end;
typedef struct svc_placer svc_placer;

struct svc_service {
    uv_loop_t *loop;
    svc_config cfg;
    svc_overrides ovr;       /* re-applied on reload */
    db *db;
    char *exe;               /* this epochd binary, run as `epochd worker` */
    char *state_dir;         /* absolute */
    svc_executor *exec;
    svc_watch *watch;
    svc_device_filter filter;
    svc_slots slots;
    svc_placer *placer;      /* placement.c: estimates, memory, the last plan */
    int n_host_gpus;
    svc_attempt *attempts;   /* runs in flight */
    int n_attempts;
    int64_t n_queued;        /* at the last scheduler pass */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t sched_timer, poll_timer, watchdog_timer, stop_timer;
    bool started;            /* devices known, resume done, watching */
    bool ready;              /* READY=1 sent */
    bool stopping;
    bool closed;
    int lock_fd;             /* the database file, flock'ed */
    dev_t db_dev;            /* the database file's identity when the service took it */
    ino_t db_ino;
    svc_end *unrecorded;     /* ends of attempts the database did not take yet */
    char last_status[512];
    int exit_code;           /* SVC_E* of a fatal condition; 0 */
    struct svc_observe *obs; /* what other threads may see (observe.h) */
    struct svc_datafetch *datafetch; /* datasets fetched for data.download (datafetch.h) */
};

/* service.c */
/* Called when an attempt is over: the shutdown may be complete. */
void svc_attempt_gone(svc_service *sv);

/* ingest.c: callbacks of the watcher */
int svc_ingest_file(void *sv, const char *path, const char *buf, size_t len);
int svc_ingest_unreadable(void *sv, const char *path, const char *reason);
void svc_ingest_gone(void *sv, const char *path);
void svc_ingest_scan_done(void *sv);

/* sched.c */
void svc_sched_request(svc_service *sv); /* a pass soon (coalesced) */
void svc_sched_poll(svc_service *sv);    /* cancel requests, then a pass */
void svc_sched_status(svc_service *sv);  /* STATUS= when it changed */

/* attempt.c: one attempt of a run, from its worker's start to its end */
struct svc_attempt {
    svc_service *sv;
    svc_attempt *next;
    svc_job *job;            /* NULL once the job has ended */
    int64_t run_id;
    char *name;
    svc_placement place;
    int64_t attempts;        /* starts of this run, this one included */
    int64_t failures;        /* its earlier attempts that failed (max_attempts counts these) */
    int64_t epochs_planned, epoch_now, epochs_done;
    int64_t samples_per_epoch;
    int64_t worker_id;       /* the job's id (a pid), recorded with the run */
    bool recorded;           /* the run was marked running: its end is recorded */
    uv_timer_t stop_timer;   /* SIGKILL after SIGTERM */
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
    /* a cluster's job (attempt_cluster.c) */
    int64_t job_id;          /* 0 until the cluster took it */
    bool running;            /* the run is marked running (its job started) */
    int64_t preemptions;     /* the run's interruptions by the cluster so far */
    char fail_reason[256];   /* ends it as failed whatever the worker says ("" none) */
};

/* Starts a worker for run r on placement p. 0, or SVC_E* (nothing started;
 * the reason is in svc_last_error). */
int svc_attempt_start(svc_service *sv, const db_run *r, const svc_placement *p);
svc_attempt *svc_attempt_find(svc_service *sv, int64_t run_id);
/* SIGTERM now (the worker stops at a step boundary), SIGKILL after the
 * stop timeout. cancel: the run ends `cancelled` with reason. */
void svc_attempt_stop(svc_attempt *w, bool cancel, const char *reason);
void svc_attempt_kill(svc_attempt *w);
/* Re-attaches the job that a previous service left for run r (a queueing
 * executor's recover() said SVC_RECOVER_ADOPT). 0, or SVC_E*. */
int svc_attempt_adopt(svc_service *sv, const db_run *r, const svc_placement *p);

/* attempt_cluster.c: what a queueing executor (Slurm) adds to attempts -
 * placement by the cluster under a cap on jobs in flight, the pending job,
 * its real start, requeues and preemptions that spend no attempt, its end,
 * start-up recovery by adoption, and the stop policy. */
svc_place_result svc_cluster_place(svc_service *sv, const db_run *r, svc_placement *p, char *note, size_t len);
int svc_cluster_submitted(svc_attempt *w, const db_run *r);
void svc_cluster_adopted(svc_attempt *w, const db_run *r);
void svc_cluster_on_state(void *ctx, const svc_job_state *st);
void svc_cluster_on_restarted(void *ctx, int64_t restart);
void svc_cluster_record_end(svc_attempt *w, const svc_job_end *end, bool done, bool interrupted, bool retryable,
                            const char *why);
void svc_cluster_resume(svc_service *sv);
/* A stop of the service: true when the attempt's job is left running
 * (slurm.on_stop: leave), false when it must be stopped as usual. */
bool svc_cluster_leave(svc_attempt *w);

/* Records the ends the database refused before (it was busy or full). */
void svc_attempt_record_pending(svc_service *sv);
/* Frees what is still unrecorded (at exit: the runs stay `running` in the
 * database and resume at the next start). */
void svc_attempt_drop_pending(svc_service *sv);

/* guard.c: the database and the state folder's disk */
int svc_guard_lock(svc_service *sv);
/* The database file is still the one the service opened; else a fatal stop. */
bool svc_guard_db_present(svc_service *sv);
/* After a failed database write: a fatal stop if the database cannot be written at all. */
void svc_guard_db_write(svc_service *sv, int db_rc);
/* True, with a note, when the state folder's disk has less than limits.min_free_disk free. */
bool svc_guard_disk_low(svc_service *sv, char *note, size_t len);
/* Logs what is wrong, sets the exit code and stops the service (once). */
void svc_fatal(svc_service *sv, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* discover.c: the host's CUDA devices, counted by a short-lived
 * `epochd devices --json` child so that the service holds no CUDA context.
 * quiet: no log line per device (the placement's memory queries). */
typedef struct svc_gpu_info {
    char name[64];
    int64_t memory_bytes;      /* total; -1: unknown */
    int64_t memory_free_bytes; /* free when asked; -1: unknown */
    int multiprocessors;       /* -1: unknown */
} svc_gpu_info;
typedef void (*svc_discover_cb)(svc_service *sv, int n_gpus, const svc_gpu_info *gpus);
int svc_discover_gpus(svc_service *sv, bool quiet, svc_discover_cb cb);

/* resume.c: runs a previous service left running (it crashed) or
 * interrupted go back to the queue; they resume from their checkpoints. The
 * executor decides what to do with workers that may still run. */
void svc_resume_orphans(svc_service *sv);

#endif
