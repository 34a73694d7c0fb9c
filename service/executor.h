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
    const char *spec;           /* the run's spec text (a cluster reads its slurm: section) */
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
    /* a cluster's executor only (NULL / false for the local one): */
    const char *cluster_state; /* how the cluster says it ended: COMPLETED, TIMEOUT, ... */
    int64_t end_time;          /* when (unix seconds); 0: unknown */
    const char *rejected;      /* the cluster refused the job (its message): the run fails, never retried */
    bool preempted;            /* the cluster interrupted it (preemption, time limit, node failure, a
                                  cancel from outside): it resumes without spending an attempt */
    bool detached;             /* left running (a stop with on_stop: leave): nothing is recorded */
} svc_job_end;

/* A queued job's state in its cluster (queueing executors only). */
typedef struct svc_job_state {
    int64_t job_id;     /* the cluster's id */
    const char *state;  /* PENDING, RUNNING, COMPLETING, ... */
    const char *reason; /* why it waits (Resources, Priority, ...); NULL: none */
    const char *node;   /* where it runs; NULL: not placed yet */
    int64_t start_time; /* when it started (unix seconds); 0 while it waits */
    bool running;       /* its worker has started */
} svc_job_state;

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
    /* Queueing executors: the job's state in the cluster changed (its id is
     * known from the first call on). */
    void (*state)(void *ctx, const svc_job_state *st);
    /* Queueing executors: the cluster requeued the job by itself (the
     * restart-th time); the worker before it has ended, its lines are all
     * reported, and a new worker's lines follow. */
    void (*restarted)(void *ctx, int64_t restart);
} svc_job_events;

typedef enum svc_signal {
    SVC_SIGNAL_STOP,   /* stop at the next step (SIGTERM): the worker reports `interrupted` */
    SVC_SIGNAL_KILL,   /* now (SIGKILL) */
    SVC_SIGNAL_CANCEL, /* for good (`epochd cancel`): SIGTERM locally, scancel on a cluster */
} svc_signal;

/* What becomes of a run that a previous service left `running` (or, for a
 * queueing executor, left with a job). */
typedef enum svc_recovery {
    SVC_RECOVER_RESUME, /* no worker of it is left (any stale one was stopped): queue it to resume */
    SVC_RECOVER_LEAVE,  /* another program runs it (a foreground `epochd run`): leave it alone */
    SVC_RECOVER_ADOPT,  /* its job lives on (or ended while nobody watched): adopt it (ops.adopt) */
} svc_recovery;

typedef struct svc_executor_ops {
    const char *name; /* "local", "slurm" */
    /* Jobs wait in the executor's own queue (a cluster): it decides capacity
     * and placement (no local device slots), a run is `running` only once
     * `state` says its job runs, and recovery may adopt jobs. */
    bool queues;
    /* Starts a job. 0, or SVC_E* with svc_last_error set (nothing started). */
    int (*start)(svc_executor *x, const svc_launch *l, const svc_job_events *ev, svc_job **out);
    /* Signals a running job. 0, or SVC_E*. */
    int (*signal)(svc_job *j, svc_signal s);
    /* The job's identity for the database and the log (a process id). */
    int64_t (*id)(const svc_job *j);
    /* Decides for each of n runs left `running` by a previous service
     * (with its recorded worker id) what becomes of it; may block for a
     * bounded time while stale workers stop. A queueing executor is given
     * every queued, running and interrupted run, with their job ids. */
    void (*recover)(svc_executor *x, const db_run *runs, size_t n, svc_recovery *out);
    /* Queueing executors: re-attaches the job recover() found for run r and
     * reports its lines from the start (the service records them again,
     * idempotently), its state and its end, as a started job does. */
    int (*adopt)(svc_executor *x, const db_run *r, const svc_job_events *ev, svc_job **out);
    /* Queueing executors: stops following a job and leaves it running; it
     * ends with `detached`. NULL: jobs cannot be left. */
    int (*detach)(svc_job *j);
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

/* The Slurm executor (exec_slurm.c, docs/slurm.md): each job an sbatch
 * batch job whose worker writes its lines into a file of the run's folder
 * in the shared state folder, followed here; states from squeue; cancel and
 * stop through scancel; recovery adopts jobs by id. */
int svc_executor_slurm_new(struct uv_loop_s *loop, const struct svc_config *cfg, const char *exe,
                           const char *state_dir, svc_executor **out);

#endif
