/* Runs: creation, status transitions, bookkeeping updates, lookups, listings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

/* ---- creating ---- */

static const char sql_insert[] =
    "INSERT INTO runs (name, spec_path, spec_sha256, spec, status, device, params, error,"
    " attempts, created_at, started_at, finished_at, priority, template, requested_device,"
    " epochs_planned, sweep, worker_pid, spec_file_sha256)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

static int create(db *d, const db_run_new *r, db_status status, const char *device, int64_t pid,
                  const char *error, int64_t *id)
{
    if (!r || !r->name || !id)
        return db__error(DB_EINVAL, "creating a run needs a name");
    char now[DB_TIME_LEN];
    int rc = db_now(now);
    if (rc)
        return rc;
    sqlite3_stmt *s;
    if ((rc = db__stmt(d, DB_SQL_RUN_INSERT, sql_insert, &s)))
        return rc;
    int running = status == DB_RUNNING;
    if ((rc = db__bind_text(d, s, 1, r->name)) || (rc = db__bind_text(d, s, 2, r->spec_path)) ||
        (rc = db__bind_text(d, s, 3, r->spec_sha256)) || (rc = db__bind_text(d, s, 4, r->spec)) ||
        (rc = db__bind_text(d, s, 5, db_status_name(status))) ||
        (rc = db__bind_text(d, s, 6, device)) ||
        (rc = db__bind_int_or_null(d, s, 7, r->params, 0)) ||
        (rc = db__bind_text(d, s, 8, error)) || (rc = db__bind_int(d, s, 9, running ? 1 : 0)) ||
        (rc = db__bind_text(d, s, 10, now)) ||
        (rc = db__bind_text(d, s, 11, running ? now : NULL)) ||
        (rc = db__bind_text(d, s, 12, status == DB_INVALID ? now : NULL)) ||
        (rc = db__bind_int(d, s, 13, r->priority)) ||
        (rc = db__bind_text(d, s, 14, r->template_name)) ||
        (rc = db__bind_text(d, s, 15, r->requested_device)) ||
        (rc = db__bind_int_or_null(d, s, 16, r->epochs_planned, 1)) ||
        (rc = db__bind_text(d, s, 17, r->sweep)) ||
        (rc = db__bind_int_or_null(d, s, 18, pid, 1)) ||
        (rc = db__bind_text(d, s, 19, r->spec_file_sha256)))
        goto out;
    int st = sqlite3_step(s);
    if (st != SQLITE_DONE) {
        rc = db__sqlite_error(d, st, "insert run");
        goto out;
    }
    *id = sqlite3_last_insert_rowid(d->h);
out:
    db__stmt_done(s);
    return rc;
}

int db_run_create(db *d, const db_run_new *r, int64_t *id)
{
    return create(d, r, DB_QUEUED, NULL, 0, NULL, id);
}

int db_run_create_invalid(db *d, const db_run_new *r, const char *error, int64_t *id)
{
    if (!error || !*error)
        return db__error(DB_EINVAL, "an invalid run needs the validator's message");
    return create(d, r, DB_INVALID, NULL, 0, error, id);
}

int db_run_create_running(db *d, const db_run_new *r, const char *device, int64_t pid,
                          int64_t *id)
{
    if (!device || !*device)
        return db__error(DB_EINVAL, "a running run needs its device");
    return create(d, r, DB_RUNNING, device, pid, NULL, id);
}

/* ---- transitions and updates ---- */

/* After an UPDATE that changed nothing: does the run exist, and in which status? */
static int explain_no_change(db *d, int64_t id, const char *what)
{
    static const char sql[] = "SELECT status FROM runs WHERE id = ?1";
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_RUN_STATUS, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_int(d, s, 1, id)))
        goto out;
    int st = sqlite3_step(s);
    if (st == SQLITE_DONE)
        rc = db__error(DB_ENOTFOUND, "no run %lld", (long long)id);
    else if (st == SQLITE_ROW)
        rc = db__error(DB_ESTATE, "run %lld is %s: cannot %s", (long long)id,
                       (const char *)sqlite3_column_text(s, 0), what);
    else
        rc = db__sqlite_error(d, st, "read run status");
out:
    db__stmt_done(s);
    return rc;
}

/* Steps an UPDATE that has its values bound; a run it did not change is
 * reported by explain_no_change. Resets the statement. */
static int step_update(db *d, sqlite3_stmt *s, int64_t id, const char *what)
{
    int st = sqlite3_step(s);
    int rc = DB_OK;
    if (st != SQLITE_DONE)
        rc = db__sqlite_error(d, st, what);
    int changed = sqlite3_changes(d->h);
    db__stmt_done(s);
    if (rc == DB_OK && changed == 0)
        rc = explain_no_change(d, id, what);
    return rc;
}

int db_run_start(db *d, int64_t id, const char *device, int64_t pid)
{
    static const char sql[] =
        "UPDATE runs SET status = 'running', device = ?2, worker_pid = ?3,"
        " started_at = coalesce(started_at, ?4), attempts = attempts + 1, error = NULL,"
        " finished_at = NULL, note = NULL"
        " WHERE id = ?1 AND status IN ('queued', 'interrupted', 'running')";
    if (!device || !*device)
        return db__error(DB_EINVAL, "starting run %lld needs its device", (long long)id);
    char now[DB_TIME_LEN];
    int rc = db_now(now);
    sqlite3_stmt *s;
    if (rc || (rc = db__stmt(d, DB_SQL_RUN_START, sql, &s)))
        return rc;
    if ((rc = db__bind_int(d, s, 1, id)) || (rc = db__bind_text(d, s, 2, device)) ||
        (rc = db__bind_int_or_null(d, s, 3, pid, 1)) || (rc = db__bind_text(d, s, 4, now))) {
        db__stmt_done(s);
        return rc;
    }
    return step_update(d, s, id, "start");
}

int db_run_finish(db *d, int64_t id, db_status to, const char *error)
{
    static const char sql[] =
        "UPDATE runs SET status = ?2, error = ?3, worker_pid = NULL,"
        " finished_at = CASE WHEN ?2 = 'interrupted' THEN NULL ELSE ?4 END"
        " WHERE id = ?1 AND (status = 'running'"
        "  OR (status IN ('queued', 'interrupted') AND ?2 IN ('failed', 'cancelled')))";
    if (to != DB_DONE && to != DB_FAILED && to != DB_CANCELLED && to != DB_INTERRUPTED)
        return db__error(DB_EINVAL, "a run cannot finish as %s", db_status_name(to));
    char now[DB_TIME_LEN], what[32];
    snprintf(what, sizeof what, "become %s", db_status_name(to));
    int rc = db_now(now);
    sqlite3_stmt *s;
    if (rc || (rc = db__stmt(d, DB_SQL_RUN_FINISH, sql, &s)))
        return rc;
    if ((rc = db__bind_int(d, s, 1, id)) || (rc = db__bind_text(d, s, 2, db_status_name(to))) ||
        (rc = db__bind_text(d, s, 3, error)) || (rc = db__bind_text(d, s, 4, now))) {
        db__stmt_done(s);
        return rc;
    }
    return step_update(d, s, id, what);
}

int db_run_requeue(db *d, int64_t id, const char *note)
{
    static const char sql[] =
        "UPDATE runs SET status = 'queued', note = ?2, worker_pid = NULL, finished_at = NULL"
        " WHERE id = ?1 AND status IN ('running', 'interrupted', 'failed')";
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_RUN_REQUEUE, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_int(d, s, 1, id)) || (rc = db__bind_text(d, s, 2, note))) {
        db__stmt_done(s);
        return rc;
    }
    return step_update(d, s, id, "be queued again");
}

int db_run_retry(db *d, int64_t id, const char *note)
{
    static const char sql[] =
        "UPDATE runs SET status = 'queued', note = ?2, worker_pid = NULL, finished_at = NULL,"
        " failures = failures + 1 WHERE id = ?1 AND status = 'running'";
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_RUN_RETRY, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_int(d, s, 1, id)) || (rc = db__bind_text(d, s, 2, note))) {
        db__stmt_done(s);
        return rc;
    }
    return step_update(d, s, id, "be retried");
}

int db_run_progress(db *d, int64_t id, const db_progress *p)
{
    static const char sql[] =
        "UPDATE runs SET progress_epoch = ?2, progress_fraction = ?3,"
        " progress_images_per_sec = ?4, samples_per_epoch = coalesce(?5, samples_per_epoch),"
        " progress_updated_at = ?6 WHERE id = ?1";
    if (!p || p->epoch < 1 || !(p->fraction >= 0.0 && p->fraction <= 1.0))
        return db__error(DB_EINVAL, "run %lld: progress needs an epoch >= 1 and a fraction in [0, 1]",
                         (long long)id);
    char now[DB_TIME_LEN];
    int rc = db_now(now);
    sqlite3_stmt *s;
    if (rc || (rc = db__stmt(d, DB_SQL_RUN_PROGRESS, sql, &s)))
        return rc;
    if ((rc = db__bind_int(d, s, 1, id)) || (rc = db__bind_int(d, s, 2, p->epoch)) ||
        (rc = db__bind_double(d, s, 3, p->fraction)) ||
        (rc = db__bind_double(d, s, 4, isfinite(p->images_per_sec) ? p->images_per_sec : NAN)) ||
        (rc = db__bind_int_or_null(d, s, 5, p->samples_per_epoch, 1)) ||
        (rc = db__bind_text(d, s, 6, now))) {
        db__stmt_done(s);
        return rc;
    }
    /* Progress is ephemeral and frequent: its own commit need not wait for
     * an fsync (about 6 ms here). WAL keeps the file consistent either way,
     * and the next FULL commit (an epoch) makes it durable too. */
    int own = d->txn_depth == 0;
    if (own && (rc = db__exec(d, "PRAGMA synchronous = NORMAL", "set synchronous"))) {
        db__stmt_done(s);
        return rc;
    }
    rc = step_update(d, s, id, "record progress");
    if (own) {
        int r2 = db__exec(d, "PRAGMA synchronous = FULL", "set synchronous");
        if (rc == DB_OK)
            rc = r2;
    }
    return rc;
}

int db_run_set_checkpoint(db *d, int64_t id, const char *path, int64_t best_epoch)
{
    static const char sql[] =
        "UPDATE runs SET checkpoint = ?2,"
        " best_checkpoint_epoch = CASE WHEN ?3 > 0 THEN ?3 ELSE best_checkpoint_epoch END"
        " WHERE id = ?1";
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_RUN_CHECKPOINT, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_int(d, s, 1, id)) || (rc = db__bind_text(d, s, 2, path)) ||
        (rc = db__bind_int(d, s, 3, best_epoch))) {
        db__stmt_done(s);
        return rc;
    }
    return step_update(d, s, id, "record checkpoint");
}

int db_run_set_params(db *d, int64_t id, int64_t params)
{
    static const char sql[] = "UPDATE runs SET params = ?2 WHERE id = ?1";
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_RUN_PARAMS, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_int(d, s, 1, id)) || (rc = db__bind_int_or_null(d, s, 2, params, 0))) {
        db__stmt_done(s);
        return rc;
    }
    return step_update(d, s, id, "record parameter count");
}

int db_run_set_note(db *d, int64_t id, const char *note)
{
    static const char sql[] = "UPDATE runs SET note = ?2 WHERE id = ?1";
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_RUN_NOTE, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_int(d, s, 1, id)) || (rc = db__bind_text(d, s, 2, note))) {
        db__stmt_done(s);
        return rc;
    }
    return step_update(d, s, id, "record note");
}

int db_run_request_cancel(db *d, int64_t id)
{
    static const char sql[] =
        "UPDATE runs SET cancel_requested = 1"
        " WHERE id = ?1 AND status IN ('queued', 'running', 'interrupted')";
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_RUN_CANCEL, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_int(d, s, 1, id))) {
        db__stmt_done(s);
        return rc;
    }
    return step_update(d, s, id, "be cancelled");
}

/* ---- reading ---- */

#define RUN_COLS                                                                          \
    "id, name, spec_path, spec_sha256, spec, status, device, params, error, attempts,"   \
    " created_at, started_at, finished_at, priority, template, requested_device,"        \
    " epochs_planned, sweep, worker_pid, checkpoint, best_checkpoint_epoch,"             \
    " cancel_requested, note, progress_epoch, progress_fraction, progress_images_per_sec," \
    " samples_per_epoch, progress_updated_at, failures, slurm_job_id, slurm_state, slurm_reason, preemptions," \
    " resume_pending, spec_file_sha256"

static void run_fini(db_run *r)
{
    char **strs[] = {&r->name, &r->spec_path, &r->spec_sha256, &r->spec, &r->device,
                     &r->error, &r->created_at, &r->started_at, &r->finished_at,
                     &r->template_name, &r->requested_device, &r->sweep, &r->checkpoint,
                     &r->note, &r->progress_updated_at, &r->slurm_state, &r->slurm_reason,
                     &r->spec_file_sha256};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
}

/* Reads the current row of a statement selecting RUN_COLS into r. */
static int read_run(sqlite3_stmt *s, db_run *r)
{
    memset(r, 0, sizeof *r);
    int rc;
    char *status = NULL;
    r->id = sqlite3_column_int64(s, 0);
    if ((rc = db__col_text(s, 1, &r->name)) || (rc = db__col_text(s, 2, &r->spec_path)) ||
        (rc = db__col_text(s, 3, &r->spec_sha256)) || (rc = db__col_text(s, 4, &r->spec)) ||
        (rc = db__col_text(s, 5, &status)) || (rc = db__col_text(s, 6, &r->device)) ||
        (rc = db__col_text(s, 8, &r->error)) || (rc = db__col_text(s, 10, &r->created_at)) ||
        (rc = db__col_text(s, 11, &r->started_at)) || (rc = db__col_text(s, 12, &r->finished_at)) ||
        (rc = db__col_text(s, 14, &r->template_name)) ||
        (rc = db__col_text(s, 15, &r->requested_device)) ||
        (rc = db__col_text(s, 17, &r->sweep)) || (rc = db__col_text(s, 19, &r->checkpoint)) ||
        (rc = db__col_text(s, 22, &r->note)) ||
        (rc = db__col_text(s, 27, &r->progress_updated_at)) ||
        (rc = db__col_text(s, 30, &r->slurm_state)) || (rc = db__col_text(s, 31, &r->slurm_reason)) ||
        (rc = db__col_text(s, 34, &r->spec_file_sha256)))
        goto fail;
    if ((rc = db_status_parse(status, &r->status)))
        goto fail;
    free(status);
    r->params = db__col_int(s, 7, -1);
    r->attempts = db__col_int(s, 9, 0);
    r->failures = db__col_int(s, 28, 0);
    r->priority = db__col_int(s, 13, 0);
    r->epochs_planned = db__col_int(s, 16, -1);
    r->worker_pid = db__col_int(s, 18, 0);
    r->best_checkpoint_epoch = db__col_int(s, 20, 0);
    r->cancel_requested = db__col_int(s, 21, 0) != 0;
    r->progress_epoch = db__col_int(s, 23, 0);
    r->progress_fraction = db__col_double(s, 24);
    r->progress_images_per_sec = db__col_double(s, 25);
    r->samples_per_epoch = db__col_int(s, 26, -1);
    r->slurm_job_id = db__col_int(s, 29, 0);
    r->preemptions = db__col_int(s, 32, 0);
    r->resume_pending = db__col_int(s, 33, 0) != 0;
    return DB_OK;
fail:
    free(status);
    run_fini(r);
    return rc;
}

void db_run_free(db_run *r)
{
    if (!r)
        return;
    run_fini(r);
    free(r);
}

void db_run_list_free(db_run_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        run_fini(&l->runs[i]);
    free(l->runs);
    free(l);
}

/* Steps a bound statement selecting RUN_COLS; one row into *out. */
static int get_one(db *d, sqlite3_stmt *s, const char *what, db_run **out)
{
    int rc = DB_OK;
    int st = sqlite3_step(s);
    if (st == SQLITE_DONE) {
        rc = DB_ENOTFOUND; /* the caller words the message */
    } else if (st != SQLITE_ROW) {
        rc = db__sqlite_error(d, st, what);
    } else {
        db_run *r = malloc(sizeof *r);
        if (!r)
            rc = db__error(DB_ENOMEM, "out of memory");
        else if ((rc = read_run(s, r)))
            free(r);
        else
            *out = r;
    }
    db__stmt_done(s);
    return rc;
}

int db_run_get(db *d, int64_t id, db_run **out)
{
    static const char sql[] = "SELECT " RUN_COLS " FROM runs WHERE id = ?1";
    *out = NULL;
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_RUN_GET, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_int(d, s, 1, id))) {
        db__stmt_done(s);
        return rc;
    }
    rc = get_one(d, s, "read run", out);
    return rc == DB_ENOTFOUND ? db__error(rc, "no run %lld", (long long)id) : rc;
}

int db_run_latest_by_name(db *d, const char *name, db_run **out)
{
    static const char sql[] = "SELECT " RUN_COLS " FROM runs WHERE name = ?1 ORDER BY id DESC LIMIT 1";
    *out = NULL;
    if (!name)
        return db__error(DB_EINVAL, "no run name given");
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_RUN_BY_NAME, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_text(d, s, 1, name))) {
        db__stmt_done(s);
        return rc;
    }
    rc = get_one(d, s, "read run by name", out);
    return rc == DB_ENOTFOUND ? db__error(rc, "no run named '%s'", name) : rc;
}

int db_run_find_spec(db *d, const char *spec_path, const char *spec_sha256, const char *sweep,
                     int64_t *id)
{
    static const char sql[] =
        "SELECT id FROM runs WHERE spec_path IS ?1 AND spec_sha256 IS ?2 AND sweep IS ?3"
        " ORDER BY id DESC LIMIT 1";
    sqlite3_stmt *s;
    int rc = db__stmt(d, DB_SQL_RUN_FIND_SPEC, sql, &s);
    if (rc)
        return rc;
    if ((rc = db__bind_text(d, s, 1, spec_path)) || (rc = db__bind_text(d, s, 2, spec_sha256)) ||
        (rc = db__bind_text(d, s, 3, sweep)))
        goto out;
    int st = sqlite3_step(s);
    if (st == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    else if (st == SQLITE_DONE)
        rc = db__error(DB_ENOTFOUND, "no run of %s with that content", spec_path ? spec_path : "(no path)");
    else
        rc = db__sqlite_error(d, st, "find run by spec");
out:
    db__stmt_done(s);
    return rc;
}

int db__bind_filter(db *d, sqlite3_stmt *s, const db_filter *f)
{
    int rc;
    if ((rc = db__bind_int(d, s, 1, f ? f->statuses : 0)) ||
        (rc = db__bind_int(d, s, 2, f ? f->run_id : 0)) ||
        (rc = db__bind_text(d, s, 3, f ? f->spec_path : NULL)))
        return rc;
    return DB_OK;
}

int db__name_matches(const db_filter *f, const char *name)
{
    if (!f || f->n_names == 0)
        return 1;
    for (size_t i = 0; i < f->n_names; i++)
        if (f->names[i] && name && sqlite3_strglob(f->names[i], name) == 0)
            return 1;
    return 0;
}

int db__next_match(db *d, sqlite3_stmt *s, const db_filter *f, size_t n, const char *what)
{
    for (;;) {
        if (f && f->limit && n == f->limit)
            return 0;
        int st = sqlite3_step(s);
        if (st == SQLITE_DONE)
            return 0;
        if (st != SQLITE_ROW)
            return db__sqlite_error(d, st, what);
        if (db__name_matches(f, (const char *)sqlite3_column_text(s, 1)))
            return 1;
    }
}

int db_runs_list(db *d, const db_filter *f, db_order order, db_run_list **out)
{
    static const char sql_id[] = "SELECT " RUN_COLS " FROM runs" DB_FILTER_WHERE " ORDER BY id";
    static const char sql_queue[] = "SELECT " RUN_COLS " FROM runs" DB_FILTER_WHERE
                                    " ORDER BY priority DESC, created_at, id";
    static const char sql_recent[] = "SELECT " RUN_COLS " FROM runs" DB_FILTER_WHERE
                                     " ORDER BY coalesce(finished_at, created_at) DESC, id DESC";
    *out = NULL;
    sqlite3_stmt *s;
    int rc;
    switch (order) {
    case DB_ORDER_ID: rc = db__stmt(d, DB_SQL_RUNS_BY_ID, sql_id, &s); break;
    case DB_ORDER_QUEUE: rc = db__stmt(d, DB_SQL_RUNS_BY_QUEUE, sql_queue, &s); break;
    case DB_ORDER_RECENT: rc = db__stmt(d, DB_SQL_RUNS_BY_RECENT, sql_recent, &s); break;
    default: return db__error(DB_EINVAL, "unknown run order %d", (int)order);
    }
    if (rc)
        return rc;
    db_run_list *l = calloc(1, sizeof *l);
    size_t cap = 0;
    if (!l) {
        rc = db__error(DB_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = db__bind_filter(d, s, f)))
        goto out;
    while ((rc = db__next_match(d, s, f, l->n, "list runs")) > 0) {
        if ((rc = db__grow((void **)&l->runs, &cap, l->n, sizeof *l->runs, 16)) ||
            (rc = read_run(s, &l->runs[l->n])))
            goto out;
        l->n++;
    }
out:
    db__stmt_done(s);
    if (rc) {
        db_run_list_free(l);
        return rc;
    }
    *out = l;
    return DB_OK;
}

int db_runs_queued(db *d, db_run_list **out)
{
    db_filter f = {.statuses = DB_STATUS_BIT(DB_QUEUED)};
    return db_runs_list(d, &f, DB_ORDER_QUEUE, out);
}

int db_runs_to_resume(db *d, db_run_list **out)
{
    db_filter f = {.statuses = DB_STATUS_BIT(DB_RUNNING) | DB_STATUS_BIT(DB_INTERRUPTED)};
    return db_runs_list(d, &f, DB_ORDER_QUEUE, out);
}
