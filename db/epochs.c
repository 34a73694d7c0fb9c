/* Epoch rows: the idempotent insert and reading a run's curves. */
#include <math.h>
#include <stdlib.h>

#include "db/internal.h"

/* An UPSERT rather than INSERT OR REPLACE: a re-reported epoch updates the
 * row in place (REPLACE would delete and re-insert it, firing delete
 * triggers and cascades if any are ever added). The last report wins. */
static const char sql_put[] =
    "INSERT INTO epochs (run_id, epoch, train_loss, train_acc, test_loss, test_acc, lr,"
    " seconds, samples_per_sec, recorded_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    " ON CONFLICT (run_id, epoch) DO UPDATE SET"
    " train_loss = excluded.train_loss, train_acc = excluded.train_acc,"
    " test_loss = excluded.test_loss, test_acc = excluded.test_acc, lr = excluded.lr,"
    " seconds = excluded.seconds, samples_per_sec = excluded.samples_per_sec,"
    " recorded_at = excluded.recorded_at";

static int check_fraction(const db_epoch *e, const char *what, double v)
{
    if (isnan(v) || (v >= 0.0 && v <= 1.0))
        return DB_OK;
    return db__error(DB_EINVAL,
                     "run %lld epoch %lld: %s %g is outside [0, 1] (accuracies are fractions)",
                     (long long)e->run_id, (long long)e->epoch, what, v);
}

int db_epoch_put(db *d, const db_epoch *e)
{
    if (!e || e->epoch < 1)
        return db__error(DB_EINVAL, "epochs are numbered from 1");
    int rc;
    if ((rc = check_fraction(e, "train_acc", e->train_acc)) ||
        (rc = check_fraction(e, "test_acc", e->test_acc)))
        return rc;
    if (e->seconds < 0)
        return db__error(DB_EINVAL, "run %lld epoch %lld: negative seconds", (long long)e->run_id,
                         (long long)e->epoch);
    char now[DB_TIME_LEN];
    if ((rc = db_now(now)))
        return rc;
    sqlite3_stmt *s;
    if ((rc = db__stmt(d, DB_SQL_EPOCH_PUT, sql_put, &s)))
        return rc;
    if ((rc = db__bind_int(d, s, 1, e->run_id)) || (rc = db__bind_int(d, s, 2, e->epoch)) ||
        (rc = db__bind_double(d, s, 3, e->train_loss)) ||
        (rc = db__bind_double(d, s, 4, e->train_acc)) ||
        (rc = db__bind_double(d, s, 5, e->test_loss)) ||
        (rc = db__bind_double(d, s, 6, e->test_acc)) || (rc = db__bind_double(d, s, 7, e->lr)) ||
        (rc = db__bind_double(d, s, 8, e->seconds)) ||
        (rc = db__bind_double(d, s, 9, e->samples_per_sec)) || (rc = db__bind_text(d, s, 10, now)))
        goto out;
    int st = sqlite3_step(s);
    if (st == SQLITE_CONSTRAINT_FOREIGNKEY)
        rc = db__error(DB_ENOTFOUND, "no run %lld to record epoch %lld for", (long long)e->run_id,
                       (long long)e->epoch);
    else if (st != SQLITE_DONE)
        rc = db__sqlite_error(d, st, "record epoch");
out:
    db__stmt_done(s);
    return rc;
}

int db_epochs_get(db *d, int64_t run_id, db_epoch **out, size_t *n)
{
    static const char sql[] =
        "SELECT epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, samples_per_sec"
        " FROM epochs WHERE run_id = ?1 ORDER BY epoch";
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_EPOCHS_GET, sql, &s);
    if (rc)
        return rc;
    db_epoch *v = NULL;
    size_t len = 0, cap = 0;
    if ((rc = db__bind_int(d, s, 1, run_id)))
        goto out;
    for (;;) {
        int st = sqlite3_step(s);
        if (st == SQLITE_DONE)
            break;
        if (st != SQLITE_ROW) {
            rc = db__sqlite_error(d, st, "read epochs");
            goto out;
        }
        if ((rc = db__grow((void **)&v, &cap, len, sizeof *v, 64)))
            goto out;
        db_epoch *e = &v[len++];
        e->run_id = run_id;
        e->epoch = sqlite3_column_int64(s, 0);
        e->train_loss = db__col_double(s, 1);
        e->train_acc = db__col_double(s, 2);
        e->test_loss = db__col_double(s, 3);
        e->test_acc = db__col_double(s, 4);
        e->lr = db__col_double(s, 5);
        e->seconds = db__col_double(s, 6);
        e->samples_per_sec = db__col_double(s, 7);
    }
out:
    db__stmt_done(s);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = len;
    return DB_OK;
}

int db_epochs_count(db *d, int64_t run_id, int64_t upto, int64_t *n)
{
    static const char sql[] = "SELECT count(*) FROM epochs WHERE run_id = ?1 AND epoch BETWEEN 1 AND ?2";
    *n = 0;
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_EPOCHS_COUNT, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_int(d, s, 1, run_id)) || (rc = db__bind_int(d, s, 2, upto))) {
        db__stmt_done(s);
        return rc;
    }
    int st = sqlite3_step(s);
    if (st == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    else
        rc = db__sqlite_error(d, st, "count epochs");
    db__stmt_done(s);
    return rc;
}
