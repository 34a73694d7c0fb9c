/* Test helpers: run a command function with stdout and stderr captured into
 * strings (the commands print; the tests parse what they printed), and a
 * database in a temporary folder filled by plain SQL. */
#ifndef TEST_CAPTURE_H
#define TEST_CAPTURE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db/db.h"

typedef struct captured {
    int rc;
    char *out, *err;
} captured;

static char *capture_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s) {
        size_t got = fread(s, 1, (size_t)n, f);
        s[got] = '\0';
    }
    fclose(f);
    return s;
}

/* Calls fn(argc, argv) with argv given as a NULL-terminated list. */
static captured capture_run(int (*fn)(int, char **), const char *dir, const char *const *args)
{
    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s/capture.out", dir);
    snprintf(err_path, sizeof err_path, "%s/capture.err", dir);
    int argc = 0;
    while (args[argc])
        argc++;
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    for (int i = 0; i < argc; i++)
        argv[i] = strdup(args[i]);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    captured c;
    c.rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
    c.out = capture_slurp(out_path);
    c.err = capture_slurp(err_path);
    return c;
}

static void capture_free(captured *c)
{
    free(c->out);
    free(c->err);
}

/* Creates dir from its mkdtemp template, then <dir>/<name> migrated by
 * db_open and filled by `sql` through SQLite alone. 0 or -1. */
static inline int fixture_db(char *dir, const char *name, const char *sql, char *dbpath, size_t len)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(dbpath, len, "%s/%s", dir, name);
    db *d = NULL;
    if (db_open(dbpath, DB_OPEN_CREATE, &d))
        return -1;
    db_close(d);
    sqlite3 *h;
    if (sqlite3_open(dbpath, &h) != SQLITE_OK)
        return -1;
    int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fprintf(stderr, "fill: %s\n", sqlite3_errmsg(h));
    sqlite3_close(h);
    return rc == SQLITE_OK ? 0 : -1;
}

/* Removes a fixture folder and everything in it. */
static inline int fixture_remove(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
