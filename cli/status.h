/* The state of the queue as `epochd status` shows it: running and
 * interrupted runs with progress and ETA, the queued runs in their order,
 * the most recently finished runs - read in one transaction. */
#ifndef CLI_STATUS_H
#define CLI_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <time.h>

#include "db/db.h"
#include "db/plans.h"

typedef struct cli_status {
    db_run_list *running;  /* running and interrupted, by id */
    db_run_list *queued;   /* in queue order */
    db_run_list *finished; /* most recent first; NULL when none were asked for */
    db_board *board;       /* every run's metrics */
    db_plan_list *plans;   /* the service's plan of the queued and running runs */
    bool all;              /* finished holds every finished run */
} cli_status;

/* What `epochd status` shows of one run's progress (also on the web). */
typedef struct cli_progress {
    int64_t epochs_done;   /* epoch rows recorded */
    bool live;             /* running, and its progress is for the next epoch */
    int64_t epoch;         /* the epoch in flight when live, else epochs done */
    double epoch_fraction; /* of the epoch in flight; NAN unless live */
    double total_fraction; /* of the whole run, 0..1; NAN when the plan is unknown */
    double images_per_sec; /* the current rate while running; NAN otherwise */
    double eta_seconds;    /* NAN when unknown */
    char note[400];        /* cancel requested, stale progress, the plan, the run's note; "" */
} cli_progress;

/* br: the run's leaderboard row (NULL: none yet); plan: the service's plan
 * of it (NULL: none) - a queued run's ETA and note come from it. */
void cli_status_progress(const db_run *r, const db_board_row *br, const db_plan *plan, time_t now,
                         cli_progress *p);
/* The plan of a queued run that the views show with it, or NULL: none, or
 * the run waits for its dataset to be fetched (note "waiting for data: ...",
 * service/datafetch.c), which no plan includes. */
const db_plan *cli_status_queued_plan(const db_run *r, const db_plan *plan);
/* Where it runs, or "(requested)" while queued. */
void cli_status_device(const db_run *r, char *buf, size_t len);
/* The board's row of run id, or NULL. */
const db_board_row *cli_status_board_row(const db_board *b, int64_t id);

/* all: every finished run, else the `recent` latest. 0, or a DB_E* code. */
int cli_status_load(db *d, bool all, long recent, cli_status *s);
void cli_status_free(cli_status *s);
/* The tables; 0, or -1 when out of memory or the output failed. */
int cli_status_print(const cli_status *s, const char *db_file, FILE *f);
/* The same as one JSON object (cli/status_json.c); 0 or -1. */
int cli_status_print_json(const cli_status *s, const char *db_file, FILE *f);

/* ---- shared by the two renderings ---- */

const db_plan *cli_status_plan(const cli_status *s, int64_t id); /* NULL: none */
/* The plans of the runs a plan speaks of (queued and running), inside the
 * caller's read transaction, so that every view shows the same ETA. */
int cli_plans_load(db *d, db_plan_list **out);
const db_plan *cli_plan_find(const db_plan_list *l, int64_t id); /* NULL: none */
/* Seconds a running run still needs (its measured epochs), or NAN. */
double cli_status_eta(const db_run *r, const db_board_row *b);
/* An ISO-8601 UTC timestamp as time_t; -1 if it does not parse. */
time_t cli_status_time(const char *iso);
/* The waiting note of a queued run with its plan: "waiting for cuda:0,
 * expected to start in 4m, finish 11:52; on the CPU it would take 3h"
 * (the finish in local time, with the weekday or date when not today). */
void cli_status_plan_note(char *buf, size_t len, const char *note, const db_plan *p, time_t now);

#endif
