/* Tests of db/plans.c: the planner's table (migration 3), costs and plans
 * written and read back, the per-run epoch timings the planner learns
 * from, and the runs still lacking a cost. Expected values are worked out
 * by hand in the comments and read back through a raw SQLite connection. */
#include <math.h>
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
#include "db/plans.h"

static char tmpdir[256];
static int counter;

static db *open_new(char *path, size_t len)
{
    snprintf(path, len, "%s/p-%d.db", tmpdir, ++counter);
    db *d = NULL;
    if (db_open(path, DB_OPEN_CREATE, &d))
        fail_msg("db_open: %s", db_last_error());
    return d;
}

static sqlite3 *raw(const char *path)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return h;
}

static double q_double(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW)
        fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    double v = sqlite3_column_type(s, 0) == SQLITE_NULL ? NAN : sqlite3_column_double(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int64_t new_run(db *d, const char *name, const char *tmpl)
{
    db_run_new n = {.name = name, .spec_path = "x.yaml", .spec_sha256 = name, .spec = "name: x\n",
                    .template_name = tmpl, .params = 10, .epochs_planned = 4};
    int64_t id = 0;
    assert_int_equal(db_run_create(d, &n, &id), DB_OK);
    return id;
}

static void put_epoch(db *d, int64_t id, int64_t epoch, double seconds)
{
    db_epoch e = {.run_id = id, .epoch = epoch, .train_loss = 1, .train_acc = 0.5, .test_loss = 1,
                  .test_acc = 0.5, .lr = 1e-3, .seconds = seconds, .samples_per_sec = 1};
    assert_int_equal(db_epoch_put(d, &e), DB_OK);
}

static void test_cost_and_plan_round_trip(void **state)
{
    (void)state;
    char path[512];
    db *d = open_new(path, sizeof path);
    int64_t a = new_run(d, "a", "cnn"), b = new_run(d, "b", "mlp");
    db_cost c = {.flops_per_sample = 23276706, .train_samples = 50000, .test_samples = 10000,
                 .memory_bytes = 3ll << 30};
    assert_int_equal(db_plan_set_cost(d, a, &c), DB_OK);
    db_plan p = {.run_id = a, .device = "cuda:0", .start_at = "2026-01-01T10:00:00.000Z",
                 .finish_at = "2026-01-01T10:30:00.000Z", .seconds = 1800, .cpu_seconds = 21600};
    assert_int_equal(db_plan_set(d, &p), DB_OK);
    /* a plan before any cost: the cost stays unknown */
    db_plan pb = {.run_id = b, .device = "cpu", .start_at = "2026-01-01T10:00:00.000Z",
                  .finish_at = "2026-01-01T10:00:05.000Z", .seconds = 5, .cpu_seconds = NAN};
    assert_int_equal(db_plan_set(d, &pb), DB_OK);
    /* negative durations are refused, unknown runs are DB_ENOTFOUND */
    pb.seconds = -1;
    assert_int_equal(db_plan_set(d, &pb), DB_EINVAL);
    pb.seconds = 5;
    pb.run_id = 999;
    assert_int_equal(db_plan_set(d, &pb), DB_ENOTFOUND);
    assert_int_equal(db_plan_set_cost(d, 999, &c), DB_ENOTFOUND);

    db_plan_list *l = NULL;
    assert_int_equal(db_plans_list(d, DB_STATUS_BIT(DB_QUEUED), &l), DB_OK);
    assert_int_equal(l->n, 2);
    assert_int_equal(l->plans[0].run_id, a);
    assert_int_equal(l->plans[0].cost.flops_per_sample, 23276706);
    assert_int_equal(l->plans[0].cost.memory_bytes, 3ll << 30);
    assert_string_equal(l->plans[0].device, "cuda:0");
    assert_string_equal(l->plans[0].finish_at, "2026-01-01T10:30:00.000Z");
    assert_true(l->plans[0].seconds == 1800 && l->plans[0].cpu_seconds == 21600);
    assert_non_null(l->plans[0].planned_at);
    assert_int_equal(l->plans[1].cost.flops_per_sample, -1);
    assert_true(isnan(l->plans[1].cpu_seconds));
    db_plan_list_free(l);

    /* a new cost keeps the plan; a cleared plan keeps the cost */
    c.train_samples = 45000;
    assert_int_equal(db_plan_set_cost(d, a, &c), DB_OK);
    db_plan clear = {.run_id = a, .cpu_seconds = NAN};
    assert_int_equal(db_plan_set(d, &clear), DB_OK);
    assert_int_equal(db_plans_list(d, DB_STATUS_BIT(DB_QUEUED), &l), DB_OK);
    assert_null(l->plans[0].device);
    assert_null(l->plans[0].start_at);
    assert_true(isnan(l->plans[0].seconds));
    assert_int_equal(l->plans[0].cost.train_samples, 45000);
    db_plan_list_free(l);

    /* only the statuses asked for */
    assert_int_equal(db_run_start(d, a, "cuda:0", 0), DB_OK);
    assert_int_equal(db_plans_list(d, DB_STATUS_BIT(DB_RUNNING), &l), DB_OK);
    assert_int_equal(l->n, 1);
    assert_int_equal(l->plans[0].run_id, a);
    db_plan_list_free(l);
    db_close(d);

    /* the CHECK constraints hold for other writers too */
    sqlite3 *h = raw(path);
    assert_int_not_equal(sqlite3_exec(h, "UPDATE plans SET seconds = -2", NULL, NULL, NULL), SQLITE_OK);
    assert_true(q_double(h, "SELECT count(*) FROM plans") == 2);
    /* deleting a run deletes its row */
    assert_int_equal(sqlite3_exec(h, "PRAGMA foreign_keys = ON; DELETE FROM runs WHERE name = 'b'", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
    assert_true(q_double(h, "SELECT count(*) FROM plans") == 1);
    sqlite3_close(h);
}

static void test_speed_samples(void **state)
{
    (void)state;
    char path[512];
    db *d = open_new(path, sizeof path);
    int64_t a = new_run(d, "a", "cnn"), b = new_run(d, "b", "mlp_mixer"), c = new_run(d, "c", "mlp"),
            e = new_run(d, "e", "mlp");
    db_cost ca = {.flops_per_sample = 1000, .train_samples = 100, .test_samples = 10, .memory_bytes = 1};
    db_cost cc = {.flops_per_sample = -1, .train_samples = 100, .test_samples = 10, .memory_bytes = -1};
    assert_int_equal(db_plan_set_cost(d, a, &ca), DB_OK);
    assert_int_equal(db_plan_set_cost(d, b, &ca), DB_OK);
    assert_int_equal(db_plan_set_cost(d, c, &cc), DB_OK);
    assert_int_equal(db_run_start(d, a, "cuda:1", 0), DB_OK);
    assert_int_equal(db_run_start(d, b, "cpu", 0), DB_OK);
    assert_int_equal(db_run_start(d, c, "cpu", 0), DB_OK);
    /* a: 2.5 + 3.5 = 6 s over 2 epochs, a third with no time is not counted;
     * b: 10 s in 1 epoch; c: no FLOPs, so left out; e: never started */
    put_epoch(d, a, 1, 2.5);
    put_epoch(d, a, 2, 3.5);
    put_epoch(d, a, 3, 0.0);
    put_epoch(d, b, 1, 10.0);
    put_epoch(d, c, 1, 7.0);
    (void)e;
    /* f: done in one attempt with all 4 epochs timed (1 s each), 10 s from start to end */
    int64_t f = new_run(d, "f", "mlp");
    assert_int_equal(db_plan_set_cost(d, f, &ca), DB_OK);
    assert_int_equal(db_run_start(d, f, "cpu", 0), DB_OK);
    for (int k = 1; k <= 4; k++)
        put_epoch(d, f, k, 1.0);
    assert_int_equal(db_run_finish(d, f, DB_DONE, NULL), DB_OK);
    db_close(d);
    sqlite3 *h = raw(path);
    assert_int_equal(sqlite3_exec(h,
                                  "UPDATE runs SET started_at = '2026-01-01T00:00:00.000Z',"
                                  " finished_at = '2026-01-01T00:00:10.000Z' WHERE name = 'f'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    assert_int_equal(db_open(path, 0, &d), DB_OK);
    db_speed_sample *v = NULL;
    size_t n = 0;
    assert_int_equal(db_speed_samples(d, &v, &n), DB_OK);
    assert_int_equal(n, 3);
    assert_true(fabs(v[2].run_seconds - 10.0) < 1e-3);
    assert_true(v[2].seconds == 4.0 && v[2].epochs == 4);
    assert_true(isnan(v[0].run_seconds)); /* still running, and an epoch untimed */
    assert_int_equal(v[0].run_id, a);
    assert_string_equal(v[0].device, "cuda:1");
    assert_string_equal(v[0].name, "a");
    assert_string_equal(v[0].template_name, "cnn");
    assert_int_equal(v[0].epochs, 2);
    assert_true(v[0].seconds == 6.0);
    assert_int_equal(v[0].cost.flops_per_sample, 1000);
    assert_int_equal(v[0].cost.test_samples, 10);
    assert_int_equal(v[1].run_id, b);
    assert_string_equal(v[1].device, "cpu");
    assert_true(v[1].seconds == 10.0 && v[1].epochs == 1);
    db_speed_samples_free(v, n);
    db_close(d);
}

static void test_runs_without_cost(void **state)
{
    (void)state;
    char path[512];
    db *d = open_new(path, sizeof path);
    int64_t q1 = new_run(d, "q1", "mlp"), q2 = new_run(d, "q2", "mlp"), done = new_run(d, "done", "mlp"),
            fin = new_run(d, "fin", "mlp");
    /* done: ran with epochs (learnable); fin: cancelled without epochs (not needed) */
    assert_int_equal(db_run_start(d, done, "cpu", 0), DB_OK);
    put_epoch(d, done, 1, 1.0);
    assert_int_equal(db_run_finish(d, done, DB_DONE, NULL), DB_OK);
    assert_int_equal(db_run_finish(d, fin, DB_CANCELLED, "no"), DB_OK);
    int64_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(db_runs_without_cost(d, 10, &ids, &n), DB_OK);
    assert_int_equal(n, 3);
    assert_true(ids[0] == q1 && ids[1] == q2 && ids[2] == done);
    free(ids);
    assert_int_equal(db_runs_without_cost(d, 1, &ids, &n), DB_OK);
    assert_int_equal(n, 1);
    free(ids);
    /* a row of unknowns counts as tried */
    db_cost unknown = {-1, -1, -1, -1};
    assert_int_equal(db_plan_set_cost(d, q1, &unknown), DB_OK);
    db_cost known = {10, 10, 10, 10};
    assert_int_equal(db_plan_set_cost(d, done, &known), DB_OK);
    assert_int_equal(db_runs_without_cost(d, 10, &ids, &n), DB_OK);
    assert_int_equal(n, 1);
    assert_true(ids[0] == q2);
    free(ids);
    db_close(d);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/epochd-test-plans-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_and_plan_round_trip),
        cmocka_unit_test(test_speed_samples),
        cmocka_unit_test(test_runs_without_cost),
    };
    return cmocka_run_group_tests_name("db_plans", tests, setup, teardown);
}
