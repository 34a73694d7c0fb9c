/* Spec texts stored once by SHA-256 (spec_texts, schema version 7): a sweep
 * file's text, which every combination's run row names instead of holding
 * its own effective spec. The caller computes the SHA-256 (db/ has no hash
 * of its own); the rows are written once and never changed. */
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

int db_spec_text_put(db *d, const char *sha256, const char *text, size_t len)
{
    static const char sql[] = "INSERT INTO spec_texts (sha256, text) VALUES (?1, ?2) ON CONFLICT (sha256) DO NOTHING";
    if (!sha256 || strlen(sha256) != 64 || !text)
        return db__error(DB_EINVAL, "a spec text needs its SHA-256 (64 hex digits) and its text");
    if (len > (size_t)0x7fffffff)
        return db__error(DB_EINVAL, "a spec text of %zu bytes is too long to store", len);
    sqlite3_stmt *s;
    int st = sqlite3_prepare_v2(d->h, sql, -1, &s, NULL);
    if (st != SQLITE_OK)
        return db__sqlite_error(d, st, "prepare storing a spec text");
    int rc = db__bind_text(d, s, 1, sha256);
    if (rc == DB_OK && (st = sqlite3_bind_text(s, 2, text, (int)len, SQLITE_STATIC)) != SQLITE_OK)
        rc = db__sqlite_error(d, st, "bind a spec text");
    if (rc == DB_OK && (st = sqlite3_step(s)) != SQLITE_DONE)
        rc = db__sqlite_error(d, st, "store a spec text");
    sqlite3_finalize(s);
    return rc;
}

int db_spec_text_get(db *d, const char *sha256, char **text, size_t *len)
{
    static const char sql[] = "SELECT text FROM spec_texts WHERE sha256 = ?1";
    *text = NULL;
    if (len)
        *len = 0;
    if (!sha256)
        return db__error(DB_EINVAL, "no SHA-256 given");
    sqlite3_stmt *s;
    int st = sqlite3_prepare_v2(d->h, sql, -1, &s, NULL);
    if (st != SQLITE_OK)
        return db__sqlite_error(d, st, "prepare reading a spec text");
    int rc = db__bind_text(d, s, 1, sha256);
    if (rc == DB_OK) {
        st = sqlite3_step(s);
        if (st == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(s, 0);
            size_t n = (size_t)sqlite3_column_bytes(s, 0);
            char *copy = t ? malloc(n + 1) : NULL;
            if (!copy) {
                rc = t ? db__error(DB_ENOMEM, "out of memory reading a spec text of %zu bytes", n)
                       : db__sqlite_error(d, sqlite3_errcode(d->h), "read a spec text");
            } else {
                memcpy(copy, t, n);
                copy[n] = '\0';
                *text = copy;
                if (len)
                    *len = n;
            }
        } else if (st == SQLITE_DONE) {
            rc = db__error(DB_ENOTFOUND, "no spec text with SHA-256 %.64s", sha256);
        } else {
            rc = db__sqlite_error(d, st, "read a spec text");
        }
    }
    sqlite3_finalize(s);
    return rc;
}
