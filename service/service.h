/* epochd's service as a library: it watches a folder of experiment specs,
 * queues one run per new or changed spec (an invalid one is recorded with
 * its located messages), places queued runs on free device slots, trains
 * each in a worker through an executor, and records every epoch in SQLite.
 * It never loses a result: on start, runs a previous service left running
 * or interrupted resume from their checkpoints (docs/service.md).
 *
 * The path of a spec:
 *   watch.c   a settled *.yaml file under the experiments folder
 *   ingest.c  -> schema/ validates it -> db/: one `queued` (or `invalid`) run per entry
 *   sched.c   -> the scheduler's policy, below: a free slot for the run
 *   attempt.c -> the executor (executor.h; exec_local.c) starts `epochd worker`
 *   worker.c  -> (in the worker) session.c trains it on engine/ or gpu/,
 *                reporting protocol events (protocol.h) on stdout
 *   attempt.c -> db/: epoch rows; at the end the run's status
 *
 * The scheduler's policy: queued runs in priority order, then by age; each
 * goes to the first free slot it may use - for `device: auto` the least
 * busy usable GPU, else a CPU slot; `cpu`, `cuda` and `cuda:N` only where
 * they say (slots.h). A run that no device here can serve waits with a note
 * saying why; one whose device is busy waits for a slot.
 *
 * Errors: 0 or a negative SVC_E* code with svc_last_error (error.h). */
#ifndef SVC_SERVICE_H
#define SVC_SERVICE_H

#include "service/config.h"
#include "service/error.h"

typedef struct svc_service svc_service;

/* Builds the settings (defaults, then the config file, then the
 * overrides; every problem is logged located), creates the experiments and
 * state folders, opens the database and takes the service's lock on it.
 * 0, or SVC_EUSAGE (bad settings), SVC_ENOENT, SVC_EIO, SVC_EDB,
 * SVC_ELOCKED (another service uses the database), SVC_ENOMEM. */
int svc_service_new(const svc_overrides *ovr, svc_service **out);

/* Serves until stopped: SIGTERM or SIGINT (runs in flight become
 * interrupted and resume at the next start), or a fatal condition. SIGHUP
 * reloads the settings and rescans. 0, or the code of what ended it
 * (SVC_ENOENT: the experiments folder cannot be watched). */
int svc_service_run(svc_service *s);

/* Begins an orderly stop (as SIGTERM does); a second call kills the workers. */
void svc_service_stop(svc_service *s, const char *why);

/* Re-reads the settings (as SIGHUP does): the database and the state
 * folder stay as they are until the next start. */
void svc_service_reload(svc_service *s);

/* Frees the service (after svc_service_run returned, or instead of it). */
void svc_service_free(svc_service *s);

#endif
