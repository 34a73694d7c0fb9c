/* Totals over the whole database for monitoring (the dashboard's /metrics),
 * kept beside db.h so that db.h stays the shared contract. Same
 * conventions as db.h. */
#ifndef DB_TOTALS_H
#define DB_TOTALS_H

#include <stdint.h>

#include "db/db.h"

typedef struct db_totals {
    int64_t runs[DB_STATUS_COUNT]; /* runs by status */
    int64_t epochs;                /* epoch rows */
    int64_t images;                /* training images of those epochs: epochs x samples_per_epoch where known */
    char oldest_queued_at[DB_TIME_LEN]; /* created_at of the oldest queued run; "" when none */
} db_totals;

/* One read transaction. */
int db_totals_get(db *d, db_totals *out);

#endif
