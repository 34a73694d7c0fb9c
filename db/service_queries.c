/* A query of the service: pending cancel requests. */
#include <stdlib.h>

#include "db/internal.h"
#include "db/service.h"

int db_runs_cancel_requested(db *d, int64_t **ids, size_t *n)
{
    static const char sql[] = "SELECT id FROM runs WHERE cancel_requested = 1"
                              " AND status IN ('queued', 'running', 'interrupted') ORDER BY id";
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *s;
    int st = sqlite3_prepare_v2(d->h, sql, -1, &s, NULL);
    if (st != SQLITE_OK)
        return db__sqlite_error(d, st, "prepare cancel requests");
    int rc = DB_OK;
    size_t cap = 0;
    while ((st = sqlite3_step(s)) == SQLITE_ROW) {
        if ((rc = db__grow((void **)ids, &cap, *n, sizeof **ids, 8)))
            break;
        (*ids)[(*n)++] = sqlite3_column_int64(s, 0);
    }
    if (rc == DB_OK && st != SQLITE_DONE)
        rc = db__sqlite_error(d, st, "read cancel requests");
    sqlite3_finalize(s);
    if (rc) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}
