/* The executor seam: how the service starts a worker for a run, hears its
 * lines, stops it and learns how it ended - a local child process today
 * (exec_local.c), a batch job on a cluster next. The scheduler and the
 * attempt bookkeeping (attempt.c) know runs, slots and protocol events;
 * only an executor knows processes, pipes or job ids.
 *
 * Ownership, in libuv's manner: an executor owns its jobs. A job reports
 * through the events given at start, on the service's loop, and `ended` is
 * its last call; after it the job handle is gone. */
#ifndef SVC_EXECUTOR_H
#define SVC_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "service/slots.h"

typedef struct svc_executor svc_executor;
typedef struct svc_job svc_job;

/* What to start: the worker of one attempt of one run. */
typedef struct svc_launch {
    int64_t run_id;
    const char *name;           /* the run's name (for job names and logs) */
    const char *run_dir;        /* <state>/runs/<id>: holds the spec the worker reads */
    const char *const *argv;    /* `epochd worker ...`, NULL-terminated */
    const char *const *env;     /* "KEY=VALUE" the worker's environment must have, NULL-terminated */
    const svc_placement *place; /* the device the scheduler chose for it */
    int threads;                /* CPU threads of a CPU run */
} svc_launch;

/* How a job ended, as the executor saw it. */
typedef struct svc_job_end {
    int64_t exit_status; /* when it exited by itself */
    int term_signal;     /* when a signal ended it; 0 otherwise */
} svc_job_end;

/* What a job reports (ctx is the caller's). */
typedef struct svc_job_events {
    void *ctx;
    /* One line of the worker's stdout: a protocol event (no newline;
     * NUL-terminated at line[len]). */
    void (*line)(void *ctx, const char *line, size_t len);
    /* One line of its stderr: free text for the log. */
    void (*log)(void *ctx, const char *line, size_t len);
    /* Its stdout cannot be read as lines (a line over SVC_EVENT_MAX_LINE,
     * the stream ended within a line); svc_last_error says how. */
    void (*broken)(void *ctx);
    /* It has ended and its output is read to the end: the last call. */
    void (*ended)(void *ctx, const svc_job_end *end);
} svc_job_events;

typedef enum svc_signal {
    SVC_SIGNAL_STOP, /* stop at the next step (SIGTERM): the worker reports `interrupted` */
    SVC_SIGNAL_KILL, /* now (SIGKILL) */
} svc_signal;

/* What becomes of a run that a previous service left `running`. */
typedef enum svc_recovery {
    SVC_RECOVER_RESUME, /* no worker of it is left (any stale one was stopped): queue it to resume */
    SVC_RECOVER_LEAVE,  /* another program runs it (a foreground `epochd run`): leave it alone */
} svc_recovery;

typedef struct svc_executor_ops {
    const char *name; /* "local" */
    /* Starts a job. 0, or SVC_E* with svc_last_error set (nothing started). */
    int (*start)(svc_executor *x, const svc_launch *l, const svc_job_events *ev, svc_job **out);
    /* Signals a running job. 0, or SVC_E*. */
    int (*signal)(svc_job *j, svc_signal s);
    /* The job's identity for the database and the log (a process id). */
    int64_t (*id)(const svc_job *j);
    /* Decides for each of n runs left `running` by a previous service
     * (with its recorded worker id) what becomes of it; may block for a
     * bounded time while stale workers stop. */
    void (*recover)(svc_executor *x, const db_run *runs, size_t n, svc_recovery *out);
    /* Frees the executor; no job may be running. */
    void (*free)(svc_executor *x);
} svc_executor_ops;

struct svc_executor {
    const svc_executor_ops *ops;
};

/* The local executor: each job is a child process in its own session
 * (a Ctrl-C meant for the service does not reach it; the service stops it),
 * started through the configuration's worker_prefix (nice, taskset, ...),
 * with stdout and stderr on pipes. `cfg` is read at each start, so a
 * reloaded configuration applies to the next worker. */
struct uv_loop_s;
struct svc_config;
int svc_executor_local_new(struct uv_loop_s *loop, const struct svc_config *cfg, const char *exe,
                           const char *state_dir, svc_executor **out);

#endif
