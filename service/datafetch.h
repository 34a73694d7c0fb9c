/* Datasets fetched for runs whose spec says `data: {download: true}`: before
 * a scheduler pass, each queued run whose standard dataset is missing is
 * held back (note `waiting for data: ...`) while `epochd data fetch NAME
 * --json` runs in a child process - one per (dataset, data root) however
 * many runs wait for it, never blocking the loop. A failed fetch is retried
 * after data_retry_s, doubled after each failure (at most an hour), with its
 * reason in the runs' notes; after data_fetch_attempts failures, or at once
 * when a retry cannot help (a checksum mismatch, a damaged folder, a full
 * disk), the waiting runs fail with that reason. A stop of the service stops
 * the children (SIGTERM: the partial download is kept and the next start
 * resumes it). */
#ifndef SVC_DATAFETCH_H
#define SVC_DATAFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

struct svc_service;

/* Looks at the queue q (the scheduler's, in its order) before a pass: new
 * runs are examined once, fetches started as needed, runs that left the
 * queue forgotten. */
void svc_datafetch_scan(struct svc_service *sv, const db_run_list *q);
/* True, with the note, when the run waits for its dataset. */
bool svc_datafetch_waits(struct svc_service *sv, int64_t run_id, char *note, size_t len);
/* The service stops: SIGTERM to every fetch (SIGKILL after stop_timeout_s),
 * no more retries. The loop ends once they have exited. */
void svc_datafetch_stop(struct svc_service *sv);
/* Frees what is left (after the loop has ended). */
void svc_datafetch_free(struct svc_service *sv);

#endif
