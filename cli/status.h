/* The state of the queue as `epochd status` shows it: running and
 * interrupted runs with progress and ETA, the queued runs in their order,
 * the most recently finished runs - read in one transaction. */
#ifndef CLI_STATUS_H
#define CLI_STATUS_H

#include <stdbool.h>
#include <stdio.h>

#include "db/db.h"

typedef struct cli_status {
    db_run_list *running;  /* running and interrupted, by id */
    db_run_list *queued;   /* in queue order */
    db_run_list *finished; /* most recent first; NULL when none were asked for */
    db_board *board;       /* every run's metrics */
    bool all;              /* finished holds every finished run */
} cli_status;

/* all: every finished run, else the `recent` latest. 0, or a DB_E* code. */
int cli_status_load(db *d, bool all, long recent, cli_status *s);
void cli_status_free(cli_status *s);
/* The tables; 0, or -1 when out of memory or the output failed. */
int cli_status_print(const cli_status *s, const char *db_file, FILE *f);

#endif
