/* Opening and closing the database: the connection, its pragmas, the schema. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "db/internal.h"

#define DB_BUSY_TIMEOUT_MS 5000

/* mkdir -p of the folders above path (the default var/epochd.db must work
 * in a fresh checkout). */
static int make_parents(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return db__error(DB_ENOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            int rc = db__error(DB_EIO, "cannot create folder %s for the database: %s", p,
                               strerror(e));
            free(p);
            return rc;
        }
        *s = '/';
    }
    free(p);
    return DB_OK;
}

/* Runs a pragma that answers one row and returns that row's text. */
static int pragma_text(db *d, const char *sql, char *buf, size_t len)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(d->h, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return db__sqlite_error(d, rc, sql);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        int e = db__sqlite_error(d, rc == SQLITE_DONE ? SQLITE_ERROR : rc, sql);
        sqlite3_finalize(s);
        return e;
    }
    const unsigned char *t = sqlite3_column_text(s, 0);
    snprintf(buf, len, "%s", t ? (const char *)t : "");
    /* The statement succeeded; finalize only returns an earlier step's error. */
    sqlite3_finalize(s);
    return DB_OK;
}

/* A read-only connection: query_only as a second lock, and the schema
 * checked instead of migrated (a reader may not write the migration). The
 * journal mode is the file's: a WAL file is read through its -shm index. */
static int open_reader(db *d)
{
    int rc = db__exec(d, "PRAGMA query_only = 1", "set query_only");
    int v = 0;
    if (rc == DB_OK)
        rc = db_schema_version(d, &v);
    if (rc == DB_OK && v > DB_SCHEMA_VERSION)
        rc = db__error(DB_EVERSION,
                       "%s has schema version %d, newer than this epochd knows (%d): "
                       "use the epochd that wrote it, or a newer one",
                       d->path, v, DB_SCHEMA_VERSION);
    else if (rc == DB_OK && v < DB_SCHEMA_VERSION)
        rc = db__error(DB_EVERSION,
                       "%s has schema version %d, older than this epochd's (%d), and a read-only "
                       "reader cannot migrate it: run `epochd status --db %s` once to migrate it",
                       d->path, v, DB_SCHEMA_VERSION, d->path);
    return rc;
}

int db_open(const char *path, unsigned flags, db **out)
{
    *out = NULL;
    if (!path || !*path)
        return db__error(DB_EINVAL, "db_open: no database path");
    int readonly = (flags & DB_OPEN_READONLY) != 0;
    if (readonly && (flags & DB_OPEN_CREATE))
        return db__error(DB_EINVAL, "db_open: a read-only database cannot be created");
    int memory = !strcmp(path, ":memory:");
    if (!memory) {
        struct stat st;
        if (stat(path, &st) != 0) {
            if (errno != ENOENT)
                return db__error(DB_EIO, "cannot access database %s: %s", path, strerror(errno));
            if (!(flags & DB_OPEN_CREATE))
                return db__error(DB_ENOENT, "database %s does not exist", path);
            int rc = make_parents(path);
            if (rc)
                return rc;
        } else if (S_ISDIR(st.st_mode)) {
            return db__error(DB_EINVAL, "database %s is a folder", path);
        }
    }

    db *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        return db__error(DB_ENOMEM, "out of memory");
    }
    int oflags = readonly ? SQLITE_OPEN_READONLY
                          : SQLITE_OPEN_READWRITE | ((flags & DB_OPEN_CREATE) ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &d->h, oflags, NULL);
    if (rc != SQLITE_OK) {
        rc = db__sqlite_error(d, rc, "open");
        goto fail;
    }
    sqlite3_extended_result_codes(d->h, 1);
    if ((rc = sqlite3_busy_timeout(d->h, DB_BUSY_TIMEOUT_MS)) != SQLITE_OK) {
        rc = db__sqlite_error(d, rc, "busy_timeout");
        goto fail;
    }

    if (readonly) {
        rc = open_reader(d);
        if (rc)
            goto fail;
        *out = d;
        return DB_OK;
    }
    /* foreign_keys is per connection and silently ignored inside a
     * transaction or by a build without it: read it back. */
    char val[32];
    if ((rc = db__exec(d, "PRAGMA foreign_keys = ON", "enable foreign keys")))
        goto fail;
    if ((rc = pragma_text(d, "PRAGMA foreign_keys", val, sizeof val)))
        goto fail;
    if (strcmp(val, "1")) {
        rc = db__error(DB_ESQL, "%s: SQLite refused to enable foreign keys", path);
        goto fail;
    }
    /* WAL lets `epochd status` read while the service writes. A file system
     * without shared memory (some network mounts) cannot do WAL: say so. */
    if ((rc = pragma_text(d, "PRAGMA journal_mode = WAL", val, sizeof val)))
        goto fail;
    if (strcmp(val, memory ? "memory" : "wal")) {
        rc = db__error(DB_ESQL, "%s: cannot switch to WAL mode (journal_mode is %s)", path, val);
        goto fail;
    }
    /* FULL: a committed epoch survives a power loss, not only a crash. */
    if ((rc = db__exec(d, "PRAGMA synchronous = FULL", "set synchronous")))
        goto fail;
    if ((rc = db_migrate(d)))
        goto fail;
    *out = d;
    return DB_OK;

fail:
    db_close(d);
    return rc;
}

bool db_readonly(const db *d)
{
    return d && d->h && sqlite3_db_readonly(d->h, "main") == 1;
}

void db_close(db *d)
{
    if (!d)
        return;
    for (int i = 0; i < DB_SQL_COUNT; i++)
        sqlite3_finalize(d->stmt[i]); /* NULL is a no-op; returns only old step errors */
    if (d->h) {
        if (!sqlite3_get_autocommit(d->h))
            sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL); /* best effort: closing anyway */
        /* All statements are finalized, so close cannot be busy. */
        sqlite3_close(d->h);
    }
    free(d->path);
    free(d);
}

int db_set_busy_timeout(db *d, int ms)
{
    int rc = sqlite3_busy_timeout(d->h, ms);
    return rc == SQLITE_OK ? DB_OK : db__sqlite_error(d, rc, "busy_timeout");
}

const char *db_path(const db *d) { return d ? d->path : NULL; }

int db__exec(db *d, const char *sql, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(d->h, sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return DB_OK;
    int e = db__sqlite_error(d, rc, what);
    sqlite3_free(msg); /* the same text as sqlite3_errmsg, already recorded */
    return e;
}
