/* Prepared statements: the per-connection cache, binding and reading values
 * (and the growing arrays that query results are read into). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

int db__stmt(db *d, enum db_stmt_slot slot, const char *sql, sqlite3_stmt **out)
{
    *out = NULL;
    if (!d->stmt[slot]) {
        int rc = sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &d->stmt[slot], NULL);
        if (rc != SQLITE_OK)
            return db__sqlite_error(d, rc, "prepare statement");
    }
    /* every user ends with db__stmt_done, so a cached statement is never handed out mid-way */
    assert(!sqlite3_stmt_busy(d->stmt[slot]));
    *out = d->stmt[slot];
    return DB_OK;
}

void db__stmt_done(sqlite3_stmt *s)
{
    if (!s)
        return;
    /* reset() repeats the last step's error, which the caller has already
     * reported; its own job (releasing locks, rewinding) cannot fail. */
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

int db__bind_text(db *d, sqlite3_stmt *s, int i, const char *v)
{
    int rc = v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
    return rc == SQLITE_OK ? DB_OK : db__sqlite_error(d, rc, "bind text");
}

int db__bind_int(db *d, sqlite3_stmt *s, int i, int64_t v)
{
    int rc = sqlite3_bind_int64(s, i, v);
    return rc == SQLITE_OK ? DB_OK : db__sqlite_error(d, rc, "bind integer");
}

int db__bind_int_or_null(db *d, sqlite3_stmt *s, int i, int64_t v, int null_if_below)
{
    int rc = v < null_if_below ? sqlite3_bind_null(s, i) : sqlite3_bind_int64(s, i, v);
    return rc == SQLITE_OK ? DB_OK : db__sqlite_error(d, rc, "bind integer");
}

int db__bind_double(db *d, sqlite3_stmt *s, int i, double v)
{
    int rc = isnan(v) ? sqlite3_bind_null(s, i) : sqlite3_bind_double(s, i, v);
    return rc == SQLITE_OK ? DB_OK : db__sqlite_error(d, rc, "bind real");
}

int db__col_text(sqlite3_stmt *s, int i, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return DB_OK;
    const unsigned char *t = sqlite3_column_text(s, i);
    if (!t)
        return db__error(DB_ENOMEM, "out of memory reading a text column");
    size_t n = (size_t)sqlite3_column_bytes(s, i);
    char *c = malloc(n + 1);
    if (!c)
        return db__error(DB_ENOMEM, "out of memory");
    memcpy(c, t, n);
    c[n] = '\0';
    *out = c;
    return DB_OK;
}

int64_t db__col_int(sqlite3_stmt *s, int i, int64_t if_null)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? if_null : sqlite3_column_int64(s, i);
}

double db__col_double(sqlite3_stmt *s, int i)
{
    return sqlite3_column_type(s, i) == SQLITE_NULL ? NAN : sqlite3_column_double(s, i);
}

int db__grow(void **v, size_t *cap, size_t n, size_t size, size_t first)
{
    if (n < *cap)
        return DB_OK;
    size_t ncap = *cap ? 2 * *cap : first;
    void *nv = realloc(*v, ncap * size);
    if (!nv)
        return db__error(DB_ENOMEM, "out of memory");
    *v = nv;
    *cap = ncap;
    return DB_OK;
}
