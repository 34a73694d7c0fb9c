/* The scheduler's placement (placement.c): the planner's inputs gathered
 * from the service - queued runs with their costs and estimated durations
 * per device, the runs in flight with their remaining time from measured
 * speed, the GPUs' memory - one call of svc_plan_make (plan.h), and the
 * plan recorded in the database (`plans`) for `epochd status`. Internal to
 * service/. */
#ifndef SVC_PLACEMENT_H
#define SVC_PLACEMENT_H

#include <stddef.h>

#include "db/db.h"
#include "service/internal.h"
#include "service/plan.h"

/* The GPUs discovery found at start (their memory and multiprocessors). */
void svc_placement_devices(svc_service *sv, int n_gpus, const svc_gpu_info *gpus);

/* Plans the queue `q` (db_runs_queued's list, in its order); out[i]
 * belongs to q->runs[i] (runs in flight or with a cancel request are left
 * out: their entry is an empty WAIT). NULL when planning failed (logged):
 * the caller then places by svc_slots_place as before. */
svc_plan_out *svc_placement_plan(svc_service *sv, const db_run_list *q);

/* Writes the plan of the last svc_placement_plan(sv, q) into `plans` (the
 * rows that changed). The scheduler calls it inside the transaction that
 * writes the waiting runs' notes, so that `epochd status` never reads a
 * plan without its note. */
void svc_placement_record(svc_service *sv, const db_run_list *q, const svc_plan_out *out);

/* That transaction failed: every plan row is written again at the next pass. */
void svc_placement_unwritten(svc_service *sv);

/* What svc_slots_place would return for an entry of the plan (p and note filled). */
svc_place_result svc_placement_result(const svc_plan_out *o, svc_placement *p, char *note, size_t notelen);

void svc_placement_free(svc_service *sv);

#endif
