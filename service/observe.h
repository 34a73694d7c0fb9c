/* What a running service lets other threads see (the web dashboard and its
 * /metrics): counters since it started, its device slots, and the last lines
 * each run's worker wrote to stderr. Every call here is safe from any
 * thread at any time between svc_service_new and svc_service_free; each
 * copies a snapshot under a short lock that the service's loop only holds
 * to update a number or a line, so a reader can never hold the loop up. */
#ifndef SVC_OBSERVE_H
#define SVC_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/config.h"
#include "service/service.h"
#include "service/slots.h"

typedef struct svc_stats_device {
    char device[32]; /* "cpu", "cuda:0" */
    int slots, busy;
} svc_stats_device;

typedef struct svc_stats {
    bool started;              /* devices known, the first scan under way */
    uint64_t epochs_recorded;  /* epoch rows written (re-reports of a resumed run not counted) */
    uint64_t images_trained;   /* training samples of those epochs */
    uint64_t worker_starts;    /* workers started (resumes and retries included) */
    uint64_t worker_restarts;  /* runs queued again after a worker failed or was stopped from outside */
    uint64_t db_write_errors;  /* writes of the service that the database refused */
    int n_devices;             /* the CPU, then each GPU in use */
    svc_stats_device devices[1 + SVC_MAX_GPUS];
} svc_stats;

void svc_service_stats(svc_service *s, svc_stats *out);

/* At most this many lines of at most this many bytes are kept per run,
 * for the runs of the last SVC_MESSAGE_RUNS workers. */
#define SVC_MESSAGE_LINES 50
#define SVC_MESSAGE_BYTES 512
#define SVC_MESSAGE_RUNS 64

/* The last stderr lines of run_id's workers, oldest first: *n lines in a
 * new array of new strings (free each and the array; *lines is NULL when
 * *n is 0). 0, or SVC_ENOMEM. */
int svc_service_messages(svc_service *s, int64_t run_id, char ***lines, size_t *n);

/* The settings the service started with (read them before
 * svc_service_run: a SIGHUP replaces them on the loop's thread). */
const svc_config *svc_service_config(const svc_service *s);

#endif
