/* Queries of the service: pending cancel requests, run counts by status. */
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
        if (*n == cap) {
            size_t ncap = cap ? 2 * cap : 8;
            int64_t *nv = realloc(*ids, ncap * sizeof *nv);
            if (!nv) {
                rc = db__error(DB_ENOMEM, "out of memory");
                break;
            }
            *ids = nv;
            cap = ncap;
        }
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

int db_runs_count(db *d, unsigned statuses, int64_t *n)
{
    static const char sql[] =
        "SELECT count(*) FROM runs WHERE (?1 >> CASE status WHEN 'queued' THEN 0 WHEN 'running' THEN 1"
        " WHEN 'done' THEN 2 WHEN 'failed' THEN 3 WHEN 'invalid' THEN 4 WHEN 'cancelled' THEN 5"
        " WHEN 'interrupted' THEN 6 END) & 1";
    *n = 0;
    sqlite3_stmt *s;
    int st = sqlite3_prepare_v2(d->h, sql, -1, &s, NULL);
    if (st != SQLITE_OK)
        return db__sqlite_error(d, st, "prepare run count");
    int rc = DB_OK;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)statuses);
    st = sqlite3_step(s);
    if (st == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    else
        rc = db__sqlite_error(d, st, "count runs");
    sqlite3_finalize(s);
    return rc;
}
