/* Transactions: db_begin/db_commit for callers (nested calls become
 * savepoints), and db__txn_begin/end, which the migration wraps each step in. */
#include <assert.h>
#include <stdio.h>

#include "db/internal.h"

/* One more level: `outer` (BEGIN ...) at the top, a savepoint inside. */
static int begin_level(db *d, const char *outer, const char *what)
{
    assert(d->txn_depth >= 0);
    int rc = d->txn_depth == 0 ? db__exec(d, outer, what) : db__exec(d, "SAVEPOINT db_nested", "savepoint");
    if (rc == DB_OK)
        d->txn_depth++;
    return rc;
}

/* IMMEDIATE takes the write lock now (waiting up to the busy timeout), so a
 * transaction cannot fail half-way because another writer came. */
int db__txn_begin(db *d) { return begin_level(d, "BEGIN IMMEDIATE", "begin transaction"); }

/* Undoes the innermost level without overwriting the error being reported. */
static int undo_level(db *d, int outermost)
{
    if (sqlite3_get_autocommit(d->h))
        return DB_OK; /* SQLite already rolled the whole transaction back */
    int rc = outermost ? sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL)
                       : sqlite3_exec(d->h, "ROLLBACK TO db_nested; RELEASE db_nested", NULL,
                                      NULL, NULL);
    if (rc != SQLITE_OK) {
        /* Keep the first error; say that the rollback failed too. */
        char first[512];
        snprintf(first, sizeof first, "%s", db_last_error());
        return db__error(DB_ESQL, "%s (and the rollback failed: %s)", first, sqlite3_errmsg(d->h));
    }
    return DB_OK;
}

int db__txn_end(db *d, int rc)
{
    assert(d->txn_depth > 0); /* paired with db__txn_begin; db_commit checks first */
    int outermost = --d->txn_depth == 0;
    if (rc != DB_OK) {
        undo_level(d, outermost);
        return rc;
    }
    int c = outermost ? db__exec(d, "COMMIT", "commit") : db__exec(d, "RELEASE db_nested", "release savepoint");
    if (c != DB_OK)
        undo_level(d, outermost);
    return c;
}

int db_begin(db *d) { return db__txn_begin(d); }

int db_begin_read(db *d) { return begin_level(d, "BEGIN DEFERRED", "begin read transaction"); }

int db_commit(db *d)
{
    assert(d->txn_depth >= 0);
    if (d->txn_depth == 0)
        return db__error(DB_EINVAL, "no transaction is open");
    return db__txn_end(d, DB_OK);
}

/* Callers roll back after a failure and then report it: the message of
 * that failure stays (undo_level adds to it only if the rollback fails). */
int db_rollback(db *d)
{
    assert(d->txn_depth >= 0);
    if (d->txn_depth == 0)
        return db__error(DB_EINVAL, "no transaction is open");
    int outermost = --d->txn_depth == 0;
    return undo_level(d, outermost);
}
