/* Tests of db/jobs.h: a run's batch jobs (executor slurm). Every check reads
 * the file back through a separate raw SQLite connection; the expected
 * attempt counts follow the rule "an interruption does not spend an
 * attempt", worked out step by step in the comments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "db/db.h"
#include "db/jobs.h"

static char tmpdir[256];

typedef struct fixture {
    char path[512];
    db *d;
    sqlite3 *h;
    int64_t run;
} fixture;

static char *q_text(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(h));
    if (sqlite3_step(s) != SQLITE_ROW)
        fail_msg("no row: %s", sql);
    const unsigned char *t = sqlite3_column_text(s, 0);
    char *c = strdup(t ? (const char *)t : "NULL");
    sqlite3_finalize(s);
    return c;
}

/* The query's one value as text, compared with want. */
static void expect(sqlite3 *h, const char *sql, const char *want)
{
    char *got = q_text(h, sql);
    if (strcmp(got, want))
        fail_msg("%s: got %s, expected %s", sql, got, want);
    free(got);
}

static int setup(void **state)
{
    static int n;
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s/jobs-%d.db", tmpdir, ++n);
    if (db_open(f->path, DB_OPEN_CREATE, &f->d))
        fail_msg("db_open: %s", db_last_error());
    assert_int_equal(sqlite3_open_v2(f->path, &f->h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(f->h, 5000);
    db_run_new r = {.name = "x", .spec = "name: x\n", .requested_device = "cpu", .epochs_planned = 3};
    assert_int_equal(db_run_create(f->d, &r, &f->run), DB_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    db_close(f->d);
    sqlite3_close(f->h);
    char side[600];
    unlink(f->path);
    snprintf(side, sizeof side, "%s-wal", f->path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", f->path);
    unlink(side);
    free(f);
    return 0;
}

static void test_submit_pending_start(void **state)
{
    fixture *f = *state;
    assert_int_equal(db_job_submitted(f->d, f->run, 41), DB_OK);
    expect(f->h, "SELECT status || ' ' || slurm_job_id || ' ' || slurm_state || ' ' || attempts FROM runs",
           "queued 41 PENDING 0");
    assert_int_equal(db_job_state(f->d, f->run, 41, "PENDING", "Resources", NULL), DB_OK);
    expect(f->h, "SELECT slurm_reason FROM runs", "Resources");
    expect(f->h, "SELECT reason FROM slurm_jobs WHERE job_id = 41", "Resources");
    /* 2026-01-02T03:04:05Z is 1767323045 */
    assert_int_equal(db_job_started(f->d, f->run, 41, "cpu@node0", 1767323045), DB_OK);
    expect(f->h, "SELECT status || ' ' || device || ' ' || started_at || ' ' || attempts FROM runs",
           "running cpu@node0 2026-01-02T03:04:05.000Z 1");
    expect(f->h, "SELECT started_at || ' ' || state FROM slurm_jobs", "2026-01-02T03:04:05.000Z RUNNING");
    /* a second report of the same start (an adopted job) changes nothing */
    assert_int_equal(db_job_started(f->d, f->run, 41, "cpu@node1", 1767323999), DB_OK);
    expect(f->h, "SELECT device || ' ' || attempts FROM runs", "cpu@node0 1");
    assert_int_equal(db_job_ended(f->d, f->run, 41, "COMPLETED", "0:0", 1767323105), DB_OK);
    expect(f->h, "SELECT ended_at || ' ' || state || ' ' || exit_code FROM slurm_jobs",
           "2026-01-02T03:05:05.000Z COMPLETED 0:0");
    assert_int_equal(db_run_finish(f->d, f->run, DB_DONE, NULL), DB_OK);
    /* the last job stays on a finished run */
    expect(f->h, "SELECT status || ' ' || slurm_job_id FROM runs", "done 41");
}

static void test_interruptions_spend_no_attempt(void **state)
{
    fixture *f = *state;
    /* job 1 starts: attempt 1 */
    assert_int_equal(db_job_submitted(f->d, f->run, 1), DB_OK);
    assert_int_equal(db_job_started(f->d, f->run, 1, "cpu", 0), DB_OK);
    /* a time limit: back to the queue, the next start continues attempt 1 */
    assert_int_equal(db_run_job_left(f->d, f->run, DB_QUEUED, "TIMEOUT", DB_RESUME_SAME, 1), DB_OK);
    expect(f->h,
           "SELECT status || ' ' || attempts || ' ' || preemptions || ' ' || resume_pending || ' ' ||"
           " coalesce(slurm_job_id, 'none') || ' ' || note FROM runs",
           "queued 1 1 1 none TIMEOUT");
    /* job 2 is cancelled while pending (it never started): still continues attempt 1 */
    assert_int_equal(db_job_submitted(f->d, f->run, 2), DB_OK);
    assert_int_equal(db_run_job_left(f->d, f->run, DB_QUEUED, NULL, DB_RESUME_KEEP, 1), DB_OK);
    expect(f->h, "SELECT attempts || ' ' || preemptions || ' ' || resume_pending FROM runs", "1 2 1");
    /* job 3 starts: still attempt 1; the service stops: interrupted, continues */
    assert_int_equal(db_job_submitted(f->d, f->run, 3), DB_OK);
    assert_int_equal(db_job_started(f->d, f->run, 3, "cpu", 0), DB_OK);
    expect(f->h, "SELECT attempts || ' ' || resume_pending FROM runs", "1 0");
    assert_int_equal(db_run_job_left(f->d, f->run, DB_INTERRUPTED, NULL, DB_RESUME_SAME, 0), DB_OK);
    expect(f->h, "SELECT status || ' ' || attempts || ' ' || preemptions FROM runs", "interrupted 1 2");
    /* job 4 starts from interrupted and fails: a retry is a new attempt */
    assert_int_equal(db_job_submitted(f->d, f->run, 4), DB_ESTATE); /* interrupted: queue it first */
    assert_int_equal(db_run_job_left(f->d, f->run, DB_QUEUED, "resuming", DB_RESUME_KEEP, 0), DB_OK);
    assert_int_equal(db_job_submitted(f->d, f->run, 4), DB_OK);
    assert_int_equal(db_job_started(f->d, f->run, 4, "cpu", 0), DB_OK);
    assert_int_equal(db_run_job_left(f->d, f->run, DB_QUEUED, "attempt 1 failed", DB_RESUME_NEW, 0), DB_OK);
    assert_int_equal(db_job_submitted(f->d, f->run, 5), DB_OK);
    assert_int_equal(db_job_started(f->d, f->run, 5, "cpu", 0), DB_OK);
    expect(f->h, "SELECT attempts || ' ' || preemptions FROM runs", "2 2");
    expect(f->h, "SELECT count(*) || ' ' || group_concat(job_id) FROM slurm_jobs", "5 1,2,3,4,5");
    /* finished runs cannot be left */
    assert_int_equal(db_run_finish(f->d, f->run, DB_FAILED, "x"), DB_OK);
    assert_int_equal(db_run_job_left(f->d, f->run, DB_QUEUED, NULL, DB_RESUME_NEW, 0), DB_ESTATE);
    assert_int_equal(db_run_job_left(f->d, f->run, DB_DONE, NULL, DB_RESUME_NEW, 0), DB_EINVAL);
}

static void test_restart_counted_once(void **state)
{
    fixture *f = *state;
    assert_int_equal(db_job_submitted(f->d, f->run, 7), DB_OK);
    assert_int_equal(db_job_started(f->d, f->run, 7, "cpu", 0), DB_OK);
    /* Slurm requeued job 7 (restart 1): reported twice (a replay after a restart of the service) */
    assert_int_equal(db_job_restarted(f->d, f->run, 7, 1, "requeued by Slurm"), DB_OK);
    assert_int_equal(db_job_restarted(f->d, f->run, 7, 1, "requeued by Slurm"), DB_OK);
    expect(f->h,
           "SELECT status || ' ' || preemptions || ' ' || resume_pending || ' ' || slurm_job_id || ' ' ||"
           " slurm_state FROM runs",
           "queued 1 1 7 PENDING");
    expect(f->h, "SELECT restarts FROM slurm_jobs", "1");
    /* it runs again under the same id: the same attempt */
    assert_int_equal(db_job_started(f->d, f->run, 7, "cpu", 0), DB_OK);
    expect(f->h, "SELECT status || ' ' || attempts || ' ' || resume_pending FROM runs", "running 1 0");
    assert_int_equal(db_job_restarted(f->d, f->run, 7, 2, "again"), DB_OK);
    expect(f->h, "SELECT preemptions || ' ' || note FROM runs", "2 again");
    assert_int_equal(db_job_restarted(f->d, f->run, 7, 0, "bad"), DB_EINVAL);
}

static void test_bad_calls(void **state)
{
    fixture *f = *state;
    assert_int_equal(db_job_submitted(f->d, f->run, 0), DB_EINVAL);
    assert_int_equal(db_job_submitted(f->d, 999, 5), DB_ENOTFOUND);
    assert_int_equal(db_job_started(f->d, f->run, 5, NULL, 0), DB_EINVAL);
    assert_int_equal(db_job_state(f->d, f->run, 5, NULL, NULL, NULL), DB_EINVAL);
    /* a state for a job that is not the run's current one leaves the run alone */
    assert_int_equal(db_job_submitted(f->d, f->run, 5), DB_OK);
    assert_int_equal(db_job_state(f->d, f->run, 4, "RUNNING", NULL, "n1"), DB_OK);
    expect(f->h, "SELECT slurm_state FROM runs", "PENDING");
    /* db_run_get reads the new columns */
    db_run *r = NULL;
    assert_int_equal(db_run_get(f->d, f->run, &r), DB_OK);
    assert_int_equal(r->slurm_job_id, 5);
    assert_string_equal(r->slurm_state, "PENDING");
    assert_null(r->slurm_reason);
    assert_int_equal(r->preemptions, 0);
    assert_int_equal(r->resume_pending, 0);
    db_run_free(r);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/epochd-db-jobs-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_pending_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interruptions_spend_no_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_counted_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_calls, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(tmpdir);
    return rc;
}
