/* The placement planner's table `plans` (schema version 3): what a run
 * costs and where and when the service expects it to run, plus the epoch
 * timings the planner learns device speeds from. Kept beside db.h (same
 * conventions: 0 or a negative DB_E* code, db_last_error) so that db.h stays
 * the shared contract; docs/database.md describes the table. */
#ifndef DB_PLANS_H
#define DB_PLANS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* What one epoch of a run costs, as the engine counts it; -1: unknown. */
typedef struct db_cost {
    int64_t flops_per_sample; /* forward FLOPs per sample */
    int64_t train_samples, test_samples;
    int64_t memory_bytes;     /* on a GPU: the engine's estimate at the batch size, data, context */
} db_cost;

/* A run's row: its cost and the planner's latest word on it. */
typedef struct db_plan {
    int64_t run_id;
    db_cost cost;
    char *device;           /* where it is expected to run; NULL: no plan */
    char *start_at;         /* expected start (ISO-8601 UTC); NULL: unknown */
    char *finish_at;        /* expected end; NULL: unknown */
    double seconds;         /* expected duration on `device`; NAN: unknown */
    double cpu_seconds;     /* expected duration on the CPU; NAN: the CPU is not a choice */
    char *planned_at;       /* when the plan was written */
} db_plan;

typedef struct db_plan_list {
    size_t n;
    db_plan *plans;
} db_plan_list;

/* Records a run's cost (its plan, if any, stays). */
int db_plan_set_cost(db *d, int64_t run_id, const db_cost *c);
/* Records the plan of p->run_id (device, start_at, finish_at, seconds,
 * cpu_seconds; planned_at = now); its cost stays. A NULL device clears the plan. */
int db_plan_set(db *d, const db_plan *p);
/* Rows of the runs whose status is in the mask (DB_STATUS_BIT), by run id;
 * runs without a row are left out. */
int db_plans_list(db *d, unsigned statuses, db_plan_list **out);
void db_plan_list_free(db_plan_list *l); /* NULL is a no-op */

/* ---- what the planner learns from ---- */

/* The timed epochs of one run that has a cost, on the device recorded for it. */
typedef struct db_speed_sample {
    int64_t run_id;
    char *name;             /* the run's name (its experiment) */
    char *device;           /* "cpu", "cuda:0" */
    char *template_name;    /* NULL: unknown */
    db_cost cost;
    int64_t epochs;         /* epochs with a positive `seconds` */
    double seconds;         /* their total wall time */
    double run_seconds;     /* started_at to finished_at of a run done in one attempt, else NAN:
                               what it took beyond its epochs is the cost of starting and ending */
} db_speed_sample;

/* One sample per run that has a device, a cost with FLOPs and at least one
 * timed epoch; by run id. *out is NULL when *n is 0. */
int db_speed_samples(db *d, db_speed_sample **out, size_t *n);
void db_speed_samples_free(db_speed_sample *v, size_t n);

/* Up to `max` ids of runs that have a spec but no row here yet and are
 * queued, or have epochs (so that the planner can learn from them), by id.
 * (A run whose cost could not be worked out gets a row of unknowns, so it
 * is not returned again.) *ids is malloc'ed (NULL when *n is 0). */
int db_runs_without_cost(db *d, size_t max, int64_t **ids, size_t *n);

#endif
