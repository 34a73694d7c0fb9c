/* Private to db/: the handle, the prepared-statement cache and error helpers. */
#ifndef DB_INTERNAL_H
#define DB_INTERNAL_H

#include <sqlite3.h>

#include "db/db.h"

/* One slot per SQL text that is prepared once and reused (the service runs
 * the same few statements for every event). */
enum db_stmt_slot {
    DB_SQL_RUN_INSERT,
    DB_SQL_RUN_START,
    DB_SQL_RUN_FINISH,
    DB_SQL_RUN_REQUEUE,
    DB_SQL_RUN_RETRY,
    DB_SQL_EPOCHS_COUNT,
    DB_SQL_RUN_PROGRESS,
    DB_SQL_RUN_CHECKPOINT,
    DB_SQL_RUN_PARAMS,
    DB_SQL_RUN_NOTE,
    DB_SQL_RUN_CANCEL,
    DB_SQL_RUN_STATUS,
    DB_SQL_RUN_GET,
    DB_SQL_RUN_FIND_SPEC,
    DB_SQL_RUN_BY_NAME,
    DB_SQL_RUNS_BY_ID,
    DB_SQL_RUNS_BY_QUEUE,
    DB_SQL_RUNS_BY_RECENT,
    DB_SQL_EPOCH_PUT,
    DB_SQL_EPOCHS_GET,
    DB_SQL_BOARD,
    DB_SQL_COUNT
};

struct db {
    sqlite3 *h;
    char *path;
    int txn_depth; /* nesting of db_begin / internal savepoints */
    sqlite3_stmt *stmt[DB_SQL_COUNT];
};

/* Sets the thread's last error and returns code. */
int db__error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Maps SQLite result code rc to a DB_E* code and records "what: sqlite's message". */
int db__sqlite_error(db *d, int rc, const char *what);

/* The cached statement for slot, prepared from sql on first use. The caller
 * binds, steps, and must call db__stmt_done() on every path. */
int db__stmt(db *d, enum db_stmt_slot slot, const char *sql, sqlite3_stmt **out);
void db__stmt_done(sqlite3_stmt *s);

/* Binding helpers: NULL strings, negative "unknown" integers and NaN bind NULL. */
int db__bind_text(db *d, sqlite3_stmt *s, int i, const char *v);
int db__bind_int(db *d, sqlite3_stmt *s, int i, int64_t v);
int db__bind_int_or_null(db *d, sqlite3_stmt *s, int i, int64_t v, int null_if_below);
int db__bind_double(db *d, sqlite3_stmt *s, int i, double v);

/* Column readers: a copy of the text (NULL for NULL; DB_ENOMEM on failure),
 * integers with a sentinel for NULL, NaN for a NULL real. */
int db__col_text(sqlite3_stmt *s, int i, char **out);
int64_t db__col_int(sqlite3_stmt *s, int i, int64_t if_null);
double db__col_double(sqlite3_stmt *s, int i);

/* A transaction around several statements (each migration step): BEGIN
 * IMMEDIATE at top level, a savepoint inside a caller's db_begin(). end()
 * commits when rc == 0, rolls back otherwise, and returns rc (or the
 * commit's error). */
int db__txn_begin(db *d);
int db__txn_end(db *d, int rc);

/* The status mask is tested in SQL by the status's bit; the CASE follows
 * the order of db_status. Name globs are tested here with sqlite3_strglob,
 * the very function behind SQL's GLOB, so that no SQL is built from values. */
#define DB_FILTER_WHERE                                                                      \
    " WHERE (?1 = 0 OR (?1 >> CASE status WHEN 'queued' THEN 0 WHEN 'running' THEN 1"    \
    "  WHEN 'done' THEN 2 WHEN 'failed' THEN 3 WHEN 'invalid' THEN 4 WHEN 'cancelled' THEN 5" \
    "  WHEN 'interrupted' THEN 6 END) & 1)"                                               \
    " AND (?2 <= 0 OR id = ?2) AND (?3 IS NULL OR spec_path = ?3)"
_Static_assert(DB_QUEUED == 0 && DB_RUNNING == 1 && DB_DONE == 2 && DB_FAILED == 3 &&
                   DB_INVALID == 4 && DB_CANCELLED == 5 && DB_INTERRUPTED == 6,
               "FILTER_WHERE maps statuses to these bits");

/* Binds ?1..?3 of DB_FILTER_WHERE; tests a name against the filter's globs. */
int db__bind_filter(db *d, sqlite3_stmt *s, const db_filter *f);
int db__name_matches(const db_filter *f, const char *name);
/* Steps s to its next row whose name (column 1) f's globs match: 1 a row; 0
 * when the rows are done or f's limit is reached (n rows taken); or a
 * negative code ("what: SQLite's message"). */
int db__next_match(db *d, sqlite3_stmt *s, const db_filter *f, size_t n, const char *what);

/* Room for element n of a growing array (*v, *cap elements of size bytes;
 * the first allocation holds `first`): DB_OK or DB_ENOMEM. */
int db__grow(void **v, size_t *cap, size_t n, size_t size, size_t first);

/* Runs SQL text without values (pragmas, migrations). */
int db__exec(db *d, const char *sql, const char *what);

#endif
