/* A query only the service needs (service/), kept beside db.h so
 * that db.h stays the shared contract. Same conventions as db.h. */
#ifndef DB_SERVICE_H
#define DB_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

/* Ids of runs with cancel_requested set that have not ended yet (queued,
 * running or interrupted), ascending. *ids is malloc'ed (NULL when *n is 0). */
int db_runs_cancel_requested(db *d, int64_t **ids, size_t *n);

#endif
