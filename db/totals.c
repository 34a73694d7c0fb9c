/* Totals over the whole database for monitoring: a few aggregate queries
 * in one read transaction. */
#include <stdio.h>
#include <string.h>

#include "db/internal.h"
#include "db/totals.h"

static int each_row(db *d, const char *sql, int (*row)(sqlite3_stmt *, db_totals *), db_totals *t)
{
    sqlite3_stmt *s;
    int st = sqlite3_prepare_v2(d->h, sql, -1, &s, NULL);
    if (st != SQLITE_OK)
        return db__sqlite_error(d, st, "prepare totals");
    int rc = DB_OK;
    while (rc == DB_OK && (st = sqlite3_step(s)) == SQLITE_ROW)
        rc = row(s, t);
    if (rc == DB_OK && st != SQLITE_DONE)
        rc = db__sqlite_error(d, st, "read totals");
    sqlite3_finalize(s);
    return rc;
}

static int by_status(sqlite3_stmt *s, db_totals *t)
{
    db_status st;
    const char *name = (const char *)sqlite3_column_text(s, 0);
    if (name && db_status_parse(name, &st) == 0)
        t->runs[st] = sqlite3_column_int64(s, 1);
    return DB_OK;
}

static int epochs_images(sqlite3_stmt *s, db_totals *t)
{
    t->epochs = sqlite3_column_int64(s, 0);
    t->images = sqlite3_column_int64(s, 1);
    return DB_OK;
}

static int oldest(sqlite3_stmt *s, db_totals *t)
{
    const char *v = (const char *)sqlite3_column_text(s, 0);
    snprintf(t->oldest_queued_at, sizeof t->oldest_queued_at, "%s", v ? v : "");
    return DB_OK;
}

int db_totals_get(db *d, db_totals *t)
{
    memset(t, 0, sizeof *t);
    int rc = db_begin_read(d);
    if (rc)
        return rc;
    if ((rc = each_row(d, "SELECT status, count(*) FROM runs GROUP BY status", by_status, t)) == DB_OK &&
        (rc = each_row(d,
                       "SELECT count(*), coalesce(sum(CASE WHEN r.samples_per_epoch > 0 THEN r.samples_per_epoch"
                       " ELSE 0 END), 0) FROM epochs e JOIN runs r ON r.id = e.run_id",
                       epochs_images, t)) == DB_OK)
        rc = each_row(d, "SELECT min(created_at) FROM runs WHERE status = 'queued'", oldest, t);
    if (rc) {
        db_rollback(d);
        return rc;
    }
    return db_commit(d);
}
