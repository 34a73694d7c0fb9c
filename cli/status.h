/* The state of the queue as `epochd status` shows it: running and
 * interrupted runs with progress and ETA, the queued runs in their order,
 * the most recently finished runs - read in one transaction. */
#ifndef CLI_STATUS_H
#define CLI_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "db/db.h"

typedef struct cli_status {
    db_run_list *running;  /* running and interrupted, by id */
    db_run_list *queued;   /* in queue order */
    db_run_list *finished; /* most recent first; NULL when none were asked for */
    db_board *board;       /* every run's metrics */
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
    char note[160];        /* cancel requested, stale progress, the run's note; "" */
} cli_progress;

/* br: the run's leaderboard row (NULL: none yet). */
void cli_status_progress(const db_run *r, const db_board_row *br, cli_progress *p);
/* Where it runs, or "(requested)" while queued. */
void cli_status_device(const db_run *r, char *buf, size_t len);
/* The board's row of run id, or NULL. */
const db_board_row *cli_status_board_row(const db_board *b, int64_t id);

/* all: every finished run, else the `recent` latest. 0, or a DB_E* code. */
int cli_status_load(db *d, bool all, long recent, cli_status *s);
void cli_status_free(cli_status *s);
/* The tables; 0, or -1 when out of memory or the output failed. */
int cli_status_print(const cli_status *s, const char *db_file, FILE *f);

#endif
