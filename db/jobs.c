/* Runs as batch jobs of a cluster: the run's current job, the slurm_jobs
 * history, starts that continue an interrupted attempt (db/jobs.h). These
 * calls are a few per job, so their statements are prepared per call. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db/internal.h"
#include "db/jobs.h"

/* unix seconds as the database's ISO-8601 UTC text; <= 0: now. */
static int iso_time(int64_t t, char out[DB_TIME_LEN])
{
    if (t <= 0)
        return db_now(out);
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return db__error(DB_EINVAL, "time %lld out of range", (long long)t);
    if (strftime(out, DB_TIME_LEN, "%Y-%m-%dT%H:%M:%S.000Z", &tm) != DB_TIME_LEN - 1)
        return db__error(DB_EINVAL, "time %lld does not fit the ISO-8601 format", (long long)t);
    return DB_OK;
}

static int prepare(db *d, const char *sql, sqlite3_stmt **s)
{
    int st = sqlite3_prepare_v2(d->h, sql, -1, s, NULL);
    return st == SQLITE_OK ? DB_OK : db__sqlite_error(d, st, "prepare statement");
}

/* Steps a bound statement and finalizes it; *changed: rows changed. */
static int step(db *d, sqlite3_stmt *s, int rc, const char *what, int *changed)
{
    if (changed)
        *changed = 0;
    if (rc) {
        sqlite3_finalize(s);
        return rc;
    }
    int st = sqlite3_step(s);
    rc = st == SQLITE_DONE || st == SQLITE_ROW ? DB_OK : db__sqlite_error(d, st, what);
    if (changed)
        *changed = sqlite3_changes(d->h);
    sqlite3_finalize(s);
    return rc;
}

/* The run's status as text into buf ("" when there is no such run). */
static int run_status(db *d, int64_t run_id, char *buf, size_t len, int64_t *job)
{
    sqlite3_stmt *s;
    int rc = prepare(d, "SELECT status, slurm_job_id FROM runs WHERE id = ?1", &s);
    if (rc)
        return rc;
    buf[0] = '\0';
    if ((rc = db__bind_int(d, s, 1, run_id))) {
        sqlite3_finalize(s);
        return rc;
    }
    int st = sqlite3_step(s);
    const unsigned char *t = st == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
    if (st == SQLITE_ROW && !t) {
        rc = db__error(DB_ENOMEM, "out of memory reading a run's status");
    } else if (st == SQLITE_ROW) {
        snprintf(buf, len, "%s", (const char *)t);
        if (job)
            *job = sqlite3_column_type(s, 1) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, 1);
    } else if (st != SQLITE_DONE) {
        rc = db__sqlite_error(d, st, "read run status");
    }
    sqlite3_finalize(s);
    return rc;
}

/* After an UPDATE of a run that changed nothing: no run, or a wrong status. */
static int no_change(db *d, int64_t run_id, const char *what)
{
    char status[32];
    int rc = run_status(d, run_id, status, sizeof status, NULL);
    if (rc)
        return rc;
    if (!status[0])
        return db__error(DB_ENOTFOUND, "no run %lld", (long long)run_id);
    return db__error(DB_ESTATE, "run %lld is %s: cannot %s", (long long)run_id, status, what);
}

int db_job_submitted(db *d, int64_t run_id, int64_t job_id)
{
    if (job_id <= 0)
        return db__error(DB_EINVAL, "run %lld: a job id must be positive", (long long)run_id);
    char now[DB_TIME_LEN];
    int rc = db_now(now);
    if (rc || (rc = db__txn_begin(d)))
        return rc;
    sqlite3_stmt *s;
    int changed = 0;
    rc = prepare(d,
                 "UPDATE runs SET slurm_job_id = ?2, slurm_state = 'PENDING', "
                 "slurm_reason = NULL"
                 " WHERE id = ?1 AND status IN ('queued', 'running')",
                 &s);
    if (!rc) {
        rc = rc ? rc : db__bind_int(d, s, 1, run_id);
        rc = rc ? rc : db__bind_int(d, s, 2, job_id);
        rc = step(d, s, rc, "record a job", &changed);
    }
    if (!rc && !changed)
        rc = no_change(d, run_id, "record a job");
    if (!rc && !(rc = prepare(d,
                              "INSERT INTO slurm_jobs (job_id, run_id, submitted_at, state)"
                              " VALUES (?1, ?2, ?3, 'PENDING') ON CONFLICT (run_id, job_id) DO "
                              "NOTHING",
                              &s))) {
        rc = rc ? rc : db__bind_int(d, s, 1, job_id);
        rc = rc ? rc : db__bind_int(d, s, 2, run_id);
        rc = rc ? rc : db__bind_text(d, s, 3, now);
        rc = step(d, s, rc, "record a job", NULL);
    }
    return db__txn_end(d, rc);
}

int db_job_state(db *d, int64_t run_id, int64_t job_id, const char *state, const char *reason,
                 const char *node)
{
    if (!state || !*state)
        return db__error(DB_EINVAL, "job %lld: no state", (long long)job_id);
    int rc = db__txn_begin(d);
    if (rc)
        return rc;
    sqlite3_stmt *s;
    if (!(rc = prepare(d,
                       "UPDATE slurm_jobs SET state = ?3, reason = ?4, node = "
                       "coalesce(?5, node)"
                       " WHERE run_id = ?1 AND job_id = ?2",
                       &s))) {
        rc = rc ? rc : db__bind_int(d, s, 1, run_id);
        rc = rc ? rc : db__bind_int(d, s, 2, job_id);
        rc = rc ? rc : db__bind_text(d, s, 3, state);
        rc = rc ? rc : db__bind_text(d, s, 4, reason);
        rc = rc ? rc : db__bind_text(d, s, 5, node && *node ? node : NULL);
        rc = step(d, s, rc, "record a job's state", NULL);
    }
    if (!rc && !(rc = prepare(d,
                              "UPDATE runs SET slurm_state = ?3, slurm_reason = ?4"
                              " WHERE id = ?1 AND slurm_job_id = ?2",
                              &s))) {
        rc = rc ? rc : db__bind_int(d, s, 1, run_id);
        rc = rc ? rc : db__bind_int(d, s, 2, job_id);
        rc = rc ? rc : db__bind_text(d, s, 3, state);
        rc = rc ? rc : db__bind_text(d, s, 4, reason);
        rc = step(d, s, rc, "record a job's state", NULL);
    }
    return db__txn_end(d, rc);
}

int db_job_started(db *d, int64_t run_id, int64_t job_id, const char *device, int64_t start_unix)
{
    if (!device || !*device)
        return db__error(DB_EINVAL, "starting run %lld needs its device", (long long)run_id);
    char when[DB_TIME_LEN];
    int rc = iso_time(start_unix, when);
    if (rc || (rc = db__txn_begin(d)))
        return rc;
    char status[32];
    int64_t current = 0;
    int changed = 0;
    sqlite3_stmt *s;
    rc = run_status(d, run_id, status, sizeof status, &current);
    if (!rc && !strcmp(status, "running") && current == job_id)
        return db__txn_end(d, DB_OK); /* already recorded */
    if (!rc && !(rc = prepare(d,
                              "UPDATE runs SET status = 'running', device = ?3, worker_pid = "
                              "NULL,"
                              " started_at = coalesce(started_at, ?4), attempts = attempts + 1 - "
                              "resume_pending,"
                              " resume_pending = 0, error = NULL, finished_at = NULL, note = "
                              "NULL,"
                              " slurm_job_id = ?2, slurm_state = 'RUNNING', slurm_reason = NULL"
                              " WHERE id = ?1 AND status IN ('queued', 'interrupted', 'running')",
                              &s))) {
        rc = rc ? rc : db__bind_int(d, s, 1, run_id);
        rc = rc ? rc : db__bind_int(d, s, 2, job_id);
        rc = rc ? rc : db__bind_text(d, s, 3, device);
        rc = rc ? rc : db__bind_text(d, s, 4, when);
        rc = step(d, s, rc, "start", &changed);
    }
    if (!rc && !changed)
        rc = no_change(d, run_id, "start");
    if (!rc && !(rc = prepare(d,
                              "UPDATE slurm_jobs SET started_at = "
                              "coalesce(started_at, ?3), state = 'RUNNING',"
                              " reason = NULL WHERE run_id = ?1 AND job_id = ?2",
                              &s))) {
        rc = rc ? rc : db__bind_int(d, s, 1, run_id);
        rc = rc ? rc : db__bind_int(d, s, 2, job_id);
        rc = rc ? rc : db__bind_text(d, s, 3, when);
        rc = step(d, s, rc, "start", NULL);
    }
    return db__txn_end(d, rc);
}

int db_job_ended(db *d, int64_t run_id, int64_t job_id, const char *state, const char *exit_code,
                 int64_t end_unix)
{
    char when[DB_TIME_LEN];
    int rc = iso_time(end_unix, when);
    if (rc)
        return rc;
    sqlite3_stmt *s;
    if ((rc = prepare(d,
                      "UPDATE slurm_jobs SET ended_at = ?3, state = coalesce(?4, state),"
                      " exit_code = coalesce(?5, exit_code) WHERE run_id = ?1 AND job_id "
                      "= ?2",
                      &s)))
        return rc;
    rc = rc ? rc : db__bind_int(d, s, 1, run_id);
    rc = rc ? rc : db__bind_int(d, s, 2, job_id);
    rc = rc ? rc : db__bind_text(d, s, 3, when);
    rc = rc ? rc : db__bind_text(d, s, 4, state);
    rc = rc ? rc : db__bind_text(d, s, 5, exit_code);
    return step(d, s, rc, "record a job's end", NULL);
}

int db_job_restarted(db *d, int64_t run_id, int64_t job_id, int64_t restart, const char *note)
{
    if (restart < 1)
        return db__error(DB_EINVAL, "job %lld: restarts count from 1", (long long)job_id);
    int rc = db__txn_begin(d);
    if (rc)
        return rc;
    sqlite3_stmt *s;
    int changed = 0;
    if (!(rc = prepare(d,
                       "UPDATE slurm_jobs SET restarts = ?3 WHERE run_id = ?1 "
                       "AND job_id = ?2 AND restarts < ?3",
                       &s))) {
        rc = rc ? rc : db__bind_int(d, s, 1, run_id);
        rc = rc ? rc : db__bind_int(d, s, 2, job_id);
        rc = rc ? rc : db__bind_int(d, s, 3, restart);
        rc = step(d, s, rc, "record a job's restart", &changed);
    }
    if (!rc && changed &&
        !(rc = prepare(d,
                       "UPDATE runs SET preemptions = preemptions + 1,"
                       " resume_pending = CASE WHEN status = 'running' THEN 1 "
                       "ELSE resume_pending END,"
                       " note = ?2, status = CASE WHEN status = 'running' THEN "
                       "'queued' ELSE status END,"
                       " slurm_state = 'PENDING', slurm_reason = NULL"
                       " WHERE id = ?1 AND status IN ('queued', 'running')",
                       &s))) {
        rc = rc ? rc : db__bind_int(d, s, 1, run_id);
        rc = rc ? rc : db__bind_text(d, s, 2, note);
        rc = step(d, s, rc, "record a job's restart", NULL);
    }
    return db__txn_end(d, rc);
}

int db_run_job_left(db *d, int64_t run_id, db_status to, const char *note, db_resume resume,
                    int64_t preempted)
{
    if (to != DB_QUEUED && to != DB_INTERRUPTED)
        return db__error(DB_EINVAL, "a run whose job ended unfinished cannot become %s",
                         db_status_name(to));
    sqlite3_stmt *s;
    int changed = 0;
    int rc = prepare(d,
                     "UPDATE runs SET status = ?2, note = ?3,"
                     " resume_pending = CASE WHEN ?4 < 0 THEN resume_pending ELSE ?4 END,"
                     " preemptions = preemptions + ?5, worker_pid = NULL, finished_at = NULL,"
                     " failures = failures + (?4 = 0),"
                     " slurm_job_id = NULL, slurm_state = NULL, slurm_reason = NULL"
                     " WHERE id = ?1 AND status IN ('queued', 'running', 'interrupted')",
                     &s);
    if (rc)
        return rc;
    rc = rc ? rc : db__bind_int(d, s, 1, run_id);
    rc = rc ? rc : db__bind_text(d, s, 2, db_status_name(to));
    rc = rc ? rc : db__bind_text(d, s, 3, note);
    rc = rc ? rc : db__bind_int(d, s, 4, (int)resume);
    rc = rc ? rc : db__bind_int(d, s, 5, preempted);
    rc = step(d, s, rc, "be queued again", &changed);
    if (!rc && !changed)
        rc = no_change(d, run_id, "be queued again");
    return rc;
}
