/* One run of one spec from its start (or its last checkpoint) to its end:
 * the part `epochd run` and `epochd worker` share. Events go to a sink: the
 * foreground runner writes them to SQLite and the terminal, the worker
 * prints them as JSON lines for the service. */
#ifndef SVC_SESSION_H
#define SVC_SESSION_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/train.h"
#include "schema/spec.h"

typedef struct svc_started_info {
    const char *device;      /* the backend's name: "cpu", "cuda:0" */
    int64_t params;
    int64_t epochs;          /* planned */
    int64_t steps_per_epoch;
    int64_t train_samples, test_samples;
    int64_t resumed_epoch;   /* epochs already done when resuming from a checkpoint; 0 otherwise */
    int threads;
} svc_started_info;

typedef struct svc_session_sink {
    void *ctx;
    void (*started)(void *ctx, const svc_started_info *s);
    void (*progress)(void *ctx, const eng_progress *p);
    /* after the epoch's checkpoint is written (checkpoint NULL when this
     * epoch wrote none); a negative SVC_E* return stops the run with that
     * error (svc_last_error says why) */
    int (*epoch)(void *ctx, const eng_epoch_stats *s, const char *checkpoint, int64_t best_epoch);
} svc_session_sink;

typedef struct svc_session_job {
    const spec *spec;
    const char *state_dir;   /* checkpoints go to <state_dir>/runs/<key>/ */
    const char *key;         /* usually the run id */
    const char *device;      /* NULL or "": the spec's */
    int64_t epochs;          /* <= 0: the spec's */
    bool resume;             /* continue from <dir>/last.safetensors when it exists */
    int threads;             /* <= 0: default */
    volatile sig_atomic_t *stop; /* set by a signal handler: stop at the next step */
} svc_session_job;

/* How the session ended. */
typedef struct svc_outcome {
    int err;                 /* 0 done, else SVC_E*: SVC_EINTR stopped on request, SVC_EINVAL bad spec or
                                weights, SVC_ENOENT missing data, SVC_EIO, SVC_ENOMEM, SVC_EINTERNAL */
    bool retryable;          /* a failure of the machine (device, memory, i/o), not of the spec */
    char error[4096];        /* what went wrong ("" when done) */
    int64_t epochs_done;
    double best_acc;
    int64_t best_epoch;
    char checkpoint[1200];   /* the last checkpoint written ("" if none) */
    bool damaged_checkpoint; /* the checkpoint to resume from could not be loaded (not the spec's fault) */
} svc_outcome;

/* Runs the job to its end, an error, or a stop request. */
void svc_session_run(const svc_session_job *job, const svc_session_sink *sink, svc_outcome *out);

#endif
