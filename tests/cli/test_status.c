/* Tests of `epochd status` on a hand-filled database: the active table
 * (epoch, progress, images/s, ETA worked out by hand), queue order, the
 * recently finished runs, --recent/--all, stale progress, exit codes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "db/db.h"
#include "cli/commands.h"
#include "tests/db/capture.h"

static char tmpdir[256], dbpath[512];

static const char fill_sql[] =
    /* 1 running: 2 of 10 epochs done, 20 s each; in epoch 3 at 50%, 1500 img/s.
     *   ETA = (10 - 2 - 0.5) epochs x 20 s = 150 s = 2m30s; total 2.5/10 = 25.0%. */
    "INSERT INTO runs (id, name, status, device, epochs_planned, created_at, started_at,"
    " progress_epoch, progress_fraction, progress_images_per_sec, samples_per_epoch, progress_updated_at)"
    " VALUES (1, 'runner_a', 'running', 'cuda:0', 10, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z',"
    " 3, 0.5, 1500, 60000, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));"
    "INSERT INTO epochs (run_id, epoch, test_acc, seconds) VALUES (1, 1, 0.5, 20), (1, 2, 0.6, 20);"
    /* 2 running, first epoch: 60000 samples at 1500/s = 40 s an epoch; 2 planned,
     *   25% of epoch 1 -> (2 - 0.25) x 40 = 70 s = 1m10s. */
    "INSERT INTO runs (id, name, status, device, epochs_planned, created_at,"
    " progress_epoch, progress_fraction, progress_images_per_sec, samples_per_epoch, progress_updated_at)"
    " VALUES (2, 'runner_b', 'running', 'cpu', 2, '2026-01-01T00:00:00.000Z',"
    " 1, 0.25, 1500, 60000, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));"
    /* 3 running but silent since 2020: flagged */
    "INSERT INTO runs (id, name, status, device, epochs_planned, created_at, progress_epoch,"
    " progress_fraction, progress_updated_at)"
    " VALUES (3, 'stuck', 'running', 'cpu', 5, '2026-01-01T00:00:00.000Z', 1, 0.1, '2020-01-01T00:00:00.000Z');"
    /* queue: priority 0 older (4), priority 9 (5) -> 5 before 4 */
    "INSERT INTO runs (id, name, status, requested_device, priority, epochs_planned, created_at) VALUES"
    " (4, 'q_low', 'queued', 'cuda:1', 0, 5, '2026-01-01T00:00:00.000Z'),"
    " (5, 'q_high', 'queued', NULL, 9, 5, '2026-01-02T00:00:00.000Z');"
    "INSERT INTO runs (id, name, status, device, epochs_planned, created_at) VALUES"
    " (6, 'paused', 'interrupted', 'cpu', 4, '2026-01-01T00:00:00.000Z');"
    /* finished: 7 done (best .9 @2, final .85, 30 s), 8 failed later, 9 invalid latest */
    "INSERT INTO runs (id, name, status, epochs_planned, created_at, finished_at, error) VALUES"
    " (7, 'fin_done', 'done', 3, '2026-01-01T00:00:00.000Z', '2026-01-03T10:00:00.000Z', NULL),"
    " (8, 'fin_failed', 'failed', 3, '2026-01-01T00:00:00.000Z', '2026-01-03T11:00:00.000Z', 'worker died: signal 9\nmore'),"
    " (9, 'fin_invalid', 'invalid', NULL, '2026-01-01T00:00:00.000Z', '2026-01-03T12:00:00.000Z', 'x.yaml:3:1: datta: unknown key');"
    "INSERT INTO epochs (run_id, epoch, test_acc, seconds) VALUES (7, 1, 0.8, 10), (7, 2, 0.9, 10), (7, 3, 0.85, 10);";

static captured status(const char *const *args) { return capture_run(cli_cmd_status, tmpdir, args); }

/* The output line that holds `needle` (a copy), failing if none. */
static char *line_with(const char *text, const char *needle)
{
    const char *p = strstr(text, needle);
    if (!p)
        fail_msg("no line with '%s' in:\n%s", needle, text);
    const char *b = p, *e = strchr(p, '\n');
    while (b > text && b[-1] != '\n')
        b--;
    size_t n = e ? (size_t)(e - b) : strlen(b);
    char *l = malloc(n + 1);
    assert_non_null(l);
    memcpy(l, b, n);
    l[n] = '\0';
    return l;
}

static void assert_has(const char *line, const char *what)
{
    if (!line || !strstr(line, what))
        fail_msg("expected '%s' in: %s", what, line ? line : "(nothing)");
}

static void test_active_runs(void **state)
{
    (void)state;
    const char *args[] = {"status", "--db", dbpath, NULL};
    captured c = status(args);
    assert_int_equal(c.rc, 0);
    assert_non_null(strstr(c.out, "3 running, 2 queued, 1 interrupted, 9 runs in all"));
    char *l = line_with(c.out, "runner_a");
    assert_has(l, "cuda:0");
    assert_has(l, "3/10");
    assert_has(l, " 50%");
    assert_has(l, "25.0%");
    assert_has(l, "1,500");
    assert_has(l, "2m30s");
    free(l);
    l = line_with(c.out, "runner_b");
    assert_has(l, "1/2");
    assert_has(l, "1m10s");
    assert_has(l, "12.5%");
    free(l);
    l = line_with(c.out, "stuck");
    assert_has(l, "no progress for");
    free(l);
    l = line_with(c.out, "q_low");
    assert_has(l, "(cuda:1)");
    free(l);
    l = line_with(c.out, "paused");
    assert_has(l, "interrupted");
    free(l);
    /* queue order: high priority first; running ones above the queue */
    assert_true(strstr(c.out, "runner_a") < strstr(c.out, "q_high"));
    assert_true(strstr(c.out, "q_high") < strstr(c.out, "q_low"));
    capture_free(&c);
}

static void test_finished_runs(void **state)
{
    (void)state;
    const char *args[] = {"status", "--db", dbpath, NULL};
    captured c = status(args);
    char *l = line_with(c.out, "fin_done");
    assert_has(l, "0.9000 @2");
    assert_has(l, "0.8500");
    assert_has(l, "30.0s");
    assert_has(l, "3/3");
    assert_has(l, "2026-01-03 10:00:00");
    free(l);
    l = line_with(c.out, "fin_failed");
    assert_has(l, "worker died: signal 9");
    assert_null(strstr(l, "more")); /* first line only */
    free(l);
    /* newest first */
    assert_true(strstr(c.out, "fin_invalid") < strstr(c.out, "fin_failed"));
    assert_true(strstr(c.out, "fin_failed") < strstr(c.out, "fin_done"));
    capture_free(&c);

    const char *a2[] = {"status", "--db", dbpath, "--recent", "1", NULL};
    c = status(a2);
    assert_non_null(strstr(c.out, "fin_invalid"));
    assert_null(strstr(c.out, "fin_done"));
    capture_free(&c);
    const char *a3[] = {"status", "--db", dbpath, "--recent=1", "--all", NULL};
    c = status(a3);
    assert_non_null(strstr(c.out, "fin_done"));
    assert_non_null(strstr(c.out, "all finished"));
    capture_free(&c);
}

static void test_exit_codes_and_empty(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/none.db", tmpdir);
    const char *a1[] = {"status", "--db", path, NULL};
    captured c = status(a1);
    assert_int_equal(c.rc, EX_NOINPUT);
    assert_non_null(strstr(c.err, "does not exist"));
    capture_free(&c);
    const char *a2[] = {"status", "--what", NULL};
    c = status(a2);
    assert_int_equal(c.rc, EX_USAGE);
    capture_free(&c);
    const char *a3[] = {"status", "--db", dbpath, "--recent", "x", NULL};
    c = status(a3);
    assert_int_equal(c.rc, EX_USAGE);
    capture_free(&c);
    snprintf(path, sizeof path, "%s/empty.db", tmpdir);
    db *d = NULL;
    assert_int_equal(db_open(path, DB_OPEN_CREATE, &d), DB_OK);
    db_close(d);
    const char *a4[] = {"status", "--db", path, NULL};
    c = status(a4);
    assert_int_equal(c.rc, 0);
    assert_non_null(strstr(c.out, "no runs yet"));
    capture_free(&c);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/epochd-test-status-XXXXXX");
    return fixture_db(tmpdir, "s.db", fill_sql, dbpath, sizeof dbpath);
}

static int teardown(void **state)
{
    (void)state;
    return fixture_remove(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_active_runs),
        cmocka_unit_test(test_finished_runs),
        cmocka_unit_test(test_exit_codes_and_empty),
    };
    return cmocka_run_group_tests_name("status", tests, setup, teardown);
}
