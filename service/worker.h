/* The worker side of the service: `epochd worker` trains one run and
 * reports it on stdout as protocol events (docs/worker-protocol.md). It
 * never opens the database. Each epoch is appended to the run's history
 * before it is reported, so that a resumed worker reports again what the
 * service may have missed (service/history.h). */
#ifndef SVC_WORKER_H
#define SVC_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "service/session.h"

typedef struct svc_worker_args {
    const char *spec_file;   /* the spec's text as stored in the database */
    const char *spec_path;   /* its original path (relative data paths, messages); NULL: spec_file */
    const char *key;         /* names the run folder <state_dir>/runs/<key>/ */
    const char *state_dir;
    const char *device;      /* NULL: the spec's */
    const char *const *data_roots;
    int n_data_roots;
    const char *download_root; /* data.download without root: its folder there; NULL: the default */
    int64_t epochs;          /* <= 0: the spec's */
    int threads;             /* <= 0: default */
    bool resume;
    volatile sig_atomic_t *stop; /* set by a signal handler */
    FILE *out;               /* where the events go (stdout) */
} svc_worker_args;

/* Runs the run: `started`, `progress` and `epoch` events go to a->out, the
 * outcome to *out. Returns 0 when the outcome is to be reported with the
 * final event - the caller's (svc_worker_report_end), because its `code` is
 * the exit status the caller gives - or SVC_EINTR when the service had
 * already gone (nothing to report: nobody reads). */
int svc_worker_run(const svc_worker_args *a, svc_outcome *out);

/* Writes the final event (done, interrupted or failed with `exit_status`). */
int svc_worker_report_end(FILE *f, const svc_outcome *o, int exit_status);

#endif
