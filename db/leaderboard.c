/* Reading the leaderboard view: one summary row per run. */
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

static const char sql_board[] =
    "SELECT id, name, status, template, params, epochs_done, epochs_planned, best_test_acc,"
    " best_epoch, final_test_acc, lowest_test_loss, train_seconds, images_per_sec,"
    " created_at, finished_at, sweep, spec_path, device, error, diverged"
    " FROM leaderboard" DB_FILTER_WHERE " ORDER BY id";

static void row_fini(db_board_row *r)
{
    char **strs[] = {&r->name,       &r->template_name, &r->created_at, &r->finished_at,
                     &r->sweep,      &r->spec_path,     &r->device,     &r->error};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
}

static int read_row(sqlite3_stmt *s, db_board_row *r)
{
    memset(r, 0, sizeof *r);
    char *status = NULL;
    int rc;
    if ((rc = db__col_text(s, 1, &r->name)) || (rc = db__col_text(s, 2, &status)) ||
        (rc = db__col_text(s, 3, &r->template_name)) || (rc = db__col_text(s, 13, &r->created_at)) ||
        (rc = db__col_text(s, 14, &r->finished_at)) || (rc = db__col_text(s, 15, &r->sweep)) ||
        (rc = db__col_text(s, 16, &r->spec_path)) || (rc = db__col_text(s, 17, &r->device)) ||
        (rc = db__col_text(s, 18, &r->error)) || (rc = db_status_parse(status, &r->status))) {
        free(status);
        row_fini(r);
        return rc;
    }
    free(status);
    r->id = sqlite3_column_int64(s, 0);
    r->params = db__col_int(s, 4, -1);
    r->epochs_done = db__col_int(s, 5, 0);
    r->epochs_planned = db__col_int(s, 6, -1);
    r->best_test_acc = db__col_double(s, 7);
    r->best_epoch = db__col_int(s, 8, 0);
    r->final_test_acc = db__col_double(s, 9);
    r->lowest_test_loss = db__col_double(s, 10);
    r->train_seconds = db__col_double(s, 11);
    if (r->train_seconds != r->train_seconds)
        r->train_seconds = 0.0;
    r->images_per_sec = db__col_double(s, 12);
    r->diverged = db__col_int(s, 19, 0) != 0;
    return DB_OK;
}

void db_board_free(db_board *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        row_fini(&b->rows[i]);
    free(b->rows);
    free(b);
}

int db_leaderboard(db *d, const db_filter *f, db_board **out)
{
    *out = NULL;
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_BOARD, sql_board, &s);
    if (rc)
        return rc;
    db_board *b = calloc(1, sizeof *b);
    size_t cap = 0;
    if (!b) {
        rc = db__error(DB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = db__bind_filter(d, s, f)))
        goto out;
    while ((rc = db__next_match(d, s, f, b->n, "read leaderboard")) > 0) {
        if ((rc = db__grow((void **)&b->rows, &cap, b->n, sizeof *b->rows, 16)) ||
            (rc = read_row(s, &b->rows[b->n])))
            goto out;
        b->n++;
    }
out:
    db__stmt_done(s);
    if (rc) {
        db_board_free(b);
        return rc;
    }
    *out = b;
    return DB_OK;
}
