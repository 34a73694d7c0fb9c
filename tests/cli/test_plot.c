/* Tests of `epochd plot`: SVGs from a hand-filled database, parsed back by
 * Python's xml.etree (test_plot_check.py) and checked against ranges this
 * test computes from its own data: one path per run and panel, ticks that
 * cover the data, legend = run names; --metric, --x seconds, many runs,
 * gaps, a single point, a constant series, names that need escaping. */
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
#include <jansson.h>
#include <sqlite3.h>

#include "db/db.h"
#include "cli/commands.h"
#include "cli/plot_svg.h"
#include "tests/db/capture.h"

#define PYTHON "/usr/bin/python3"

static char tmpdir[256], dbpath[512], manydb[512];

/* The runs as the test knows them (NAN: NULL in the database). */
typedef struct hand_run {
    int id;
    const char *name;
    int n;
    double v[5][5]; /* train_loss, train_acc, test_loss, test_acc, seconds per epoch */
} hand_run;

static const char *const metric_keys[4] = {"train_loss", "train_acc", "test_loss", "test_acc"};

static const hand_run runs[] = {
    {1, "mlp <small> & \"fast\"", 5,
     {{2.0, 1.5, 1.2, 1.0, 0.9}, {0.3, 0.5, 0.6, 0.65, 0.7}, {2.1, 1.6, 1.3, 1.2, 1.15},
      {0.28, 0.45, 0.55, 0.6, 0.62}, {100, 100, 100, 100, 100}}},
    {2, "const", 3, {{0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}, {50, 50, 50}}},
    {3, "single", 1, {{3.0}, {0.1}, {3.1}, {0.12}, {30}}},
    {4, "gappy", 4,
     {{1.1, 1.0, 0.9, 0.85}, {0.4, 0.45, 0.5, 0.52}, {1.0, NAN, 0.8, 0.7}, {0.5, NAN, 0.6, 0.65},
      {10, NAN, 10, 10}}},
};
#define N_RUNS (sizeof runs / sizeof *runs)

static void bind_or_null(sqlite3_stmt *s, int i, double v)
{
    if (isnan(v))
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_double(s, i, v);
}

static int fill(const char *path, int many)
{
    db *d = NULL;
    if (db_open(path, DB_OPEN_CREATE, &d))
        return -1;
    db_close(d);
    sqlite3 *h;
    if (sqlite3_open(path, &h) != SQLITE_OK)
        return -1;
    sqlite3_stmt *r, *e;
    if (sqlite3_prepare_v2(h, "INSERT INTO runs (id, name, status, created_at) VALUES (?, ?, 'done', '2026-01-01T00:00:00.000Z')",
                           -1, &r, NULL) ||
        sqlite3_prepare_v2(h, "INSERT INTO epochs (run_id, epoch, train_loss, train_acc, test_loss, test_acc, seconds)"
                              " VALUES (?, ?, ?, ?, ?, ?, ?)", -1, &e, NULL))
        return -1;
    int bad = 0;
    if (!many) {
        for (size_t i = 0; i < N_RUNS; i++) {
            sqlite3_bind_int(r, 1, runs[i].id);
            sqlite3_bind_text(r, 2, runs[i].name, -1, SQLITE_STATIC);
            bad |= sqlite3_step(r) != SQLITE_DONE;
            sqlite3_reset(r);
            for (int k = 0; k < runs[i].n; k++) {
                sqlite3_bind_int(e, 1, runs[i].id);
                sqlite3_bind_int(e, 2, k + 1);
                for (int m = 0; m < 5; m++)
                    bind_or_null(e, 3 + m, runs[i].v[m][k]);
                bad |= sqlite3_step(e) != SQLITE_DONE;
                sqlite3_reset(e);
            }
        }
        /* a queued run without epochs is left out of the plot */
        bad |= sqlite3_exec(h, "INSERT INTO runs (id, name, status, created_at) VALUES (5, 'waiting', 'queued', 'x')",
                            NULL, NULL, NULL) != SQLITE_OK;
    } else {
        for (int i = 1; i <= 25; i++) {
            char name[32];
            snprintf(name, sizeof name, "run_%02d", i);
            sqlite3_bind_int(r, 1, i);
            sqlite3_bind_text(r, 2, name, -1, SQLITE_TRANSIENT);
            bad |= sqlite3_step(r) != SQLITE_DONE;
            sqlite3_reset(r);
            for (int k = 1; k <= 3; k++) {
                sqlite3_bind_int(e, 1, i);
                sqlite3_bind_int(e, 2, k);
                for (int m = 0; m < 4; m++)
                    sqlite3_bind_double(e, 3 + m, (m % 2 ? 0.01 * i : 2.0 / i) + 0.001 * k);
                sqlite3_bind_double(e, 7, 1.0);
                bad |= sqlite3_step(e) != SQLITE_DONE;
                sqlite3_reset(e);
            }
        }
    }
    sqlite3_finalize(r);
    sqlite3_finalize(e);
    sqlite3_close(h);
    return bad ? -1 : 0;
}

/* x of epoch k of run i: the epoch, or the cumulative known seconds. */
static double x_of(const hand_run *r, int k, int seconds)
{
    if (!seconds)
        return k + 1;
    if (isnan(r->v[4][k]))
        return NAN;
    double s = 0;
    for (int j = 0; j <= k; j++)
        if (!isnan(r->v[4][j]))
            s += r->v[4][j];
    return s;
}

/* Writes what the checker expects, from the hand data. */
static void write_expect(const char *path, const int *metrics, int n_metrics, int seconds, double x_div,
                         const char *x_label, const char *title)
{
    json_t *o = json_object(), *panels = json_array(), *rs = json_array(), *y = json_object();
    double xlo = INFINITY, xhi = -INFINITY;
    for (int p = 0; p < n_metrics; p++) {
        int m = metrics[p];
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < N_RUNS; i++)
            for (int k = 0; k < runs[i].n; k++) {
                double x = x_of(&runs[i], k, seconds), v = runs[i].v[m][k];
                if (!isnan(x) && !isnan(v)) {
                    lo = fmin(lo, v);
                    hi = fmax(hi, v);
                }
            }
        json_array_append_new(panels, json_string(metric_keys[m]));
        json_object_set_new(y, metric_keys[m], json_pack("[f, f]", lo, hi));
    }
    for (size_t i = 0; i < N_RUNS; i++) {
        json_array_append_new(rs, json_pack("{s:i, s:s}", "id", runs[i].id, "name", runs[i].name));
        for (int k = 0; k < runs[i].n; k++) {
            double x = x_of(&runs[i], k, seconds);
            if (!isnan(x)) {
                xlo = fmin(xlo, x / x_div);
                xhi = fmax(xhi, x / x_div);
            }
        }
    }
    json_object_set_new(o, "panels", panels);
    json_object_set_new(o, "runs", rs);
    json_object_set_new(o, "y", y);
    json_object_set_new(o, "x", json_pack("[f, f]", xlo, xhi));
    json_object_set_new(o, "x_label", json_string(x_label));
    if (title)
        json_object_set_new(o, "title", json_string(title));
    /* gappy (run 4) has no test values at epoch 2: two pieces in test panels;
     * with x in seconds its epoch 2 has no x, so every panel breaks there */
    json_t *sub = json_object();
    for (int p = 0; p < n_metrics; p++) {
        int m = metrics[p];
        int pieces = (m >= 2 || seconds) ? 2 : 1;
        json_object_set_new(sub, metric_keys[m], json_pack("{s:i, s:i}", "4", pieces, "3", 1));
    }
    json_object_set_new(o, "subpaths", sub);
    assert_int_equal(json_dump_file(o, path, JSON_INDENT(1)), 0);
    json_decref(o);
}

static void check_svg(const char *svg, const char *expect)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s '%s/test_plot_check.py' '%s' '%s'", PYTHON, TEST_CLI_DIR, svg, expect);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("the SVG check failed (%d): %s", rc, cmd);
}

static void test_four_panels(void **state)
{
    (void)state;
    char svg[600], exp[600];
    snprintf(svg, sizeof svg, "%s/four.svg", tmpdir);
    snprintf(exp, sizeof exp, "%s/four.json", tmpdir);
    const char *args[] = {"plot", "--db", dbpath, "-o", svg, "--title", "A & B <c>", NULL};
    captured c = capture_run(cli_cmd_plot, tmpdir, args);
    if (c.rc != 0)
        fail_msg("plot: %d %s", c.rc, c.err);
    const int all[] = {0, 1, 2, 3};
    write_expect(exp, all, 4, 0, 1.0, "epoch", "A & B <c>");
    check_svg(svg, exp);
    capture_free(&c);
    /* the raw text escapes the name (a parser would also accept CDATA; we do not use it) */
    char *text = capture_slurp(svg);
    assert_non_null(strstr(text, "mlp &lt;small&gt; &amp; &quot;fast&quot;"));
    assert_null(strstr(text, "<small>"));
    free(text);
}

static void test_one_metric(void **state)
{
    (void)state;
    char svg[600], exp[600];
    snprintf(svg, sizeof svg, "%s/acc.svg", tmpdir);
    snprintf(exp, sizeof exp, "%s/acc.json", tmpdir);
    const char *args[] = {"plot", "--db", dbpath, "--metric", "test_acc", "-o", svg, NULL};
    captured c = capture_run(cli_cmd_plot, tmpdir, args);
    assert_int_equal(c.rc, 0);
    const int one[] = {3};
    write_expect(exp, one, 1, 0, 1.0, "epoch", NULL);
    check_svg(svg, exp);
    capture_free(&c);
}

static void test_x_seconds(void **state)
{
    (void)state;
    char svg[600], exp[600];
    snprintf(svg, sizeof svg, "%s/secs.svg", tmpdir);
    snprintf(exp, sizeof exp, "%s/secs.json", tmpdir);
    const char *args[] = {"plot", "--db", dbpath, "--x", "seconds", "-o", svg, NULL};
    captured c = capture_run(cli_cmd_plot, tmpdir, args);
    assert_int_equal(c.rc, 0);
    /* run 1 adds up to 500 s, past 300 s: the axis is in minutes */
    const int all[] = {0, 1, 2, 3};
    write_expect(exp, all, 4, 1, 60.0, "wall-clock time (min)", NULL);
    check_svg(svg, exp);
    capture_free(&c);

    /* only the short runs: seconds stay seconds */
    snprintf(svg, sizeof svg, "%s/secs2.svg", tmpdir);
    const char *a2[] = {"plot", "--db", dbpath, "--x=seconds", "--metric=train_loss", "const", "-o", svg, NULL};
    c = capture_run(cli_cmd_plot, tmpdir, a2);
    assert_int_equal(c.rc, 0);
    char *text = capture_slurp(svg);
    assert_non_null(strstr(text, "wall-clock time (s)"));
    assert_non_null(strstr(text, "data-run=\"2\""));
    assert_null(strstr(text, "data-run=\"1\""));
    free(text);
    capture_free(&c);
}

static void test_many_runs(void **state)
{
    (void)state;
    char svg[600];
    snprintf(svg, sizeof svg, "%s/many.svg", tmpdir);
    const char *args[] = {"plot", "--db", manydb, "-o", svg, NULL};
    captured c = capture_run(cli_cmd_plot, tmpdir, args);
    assert_int_equal(c.rc, 0);
    capture_free(&c);
    /* 25 runs: one path each per panel, legend in id order, 21 distinct styles */
    char exp[600];
    snprintf(exp, sizeof exp, "%s/many.json", tmpdir);
    json_t *o = json_object(), *rs = json_array(), *y = json_object();
    for (int i = 1; i <= 25; i++) {
        char name[32];
        snprintf(name, sizeof name, "run_%02d", i);
        json_array_append_new(rs, json_pack("{s:i, s:s}", "id", i, "name", name));
    }
    for (int m = 0; m < 4; m++) { /* values (m odd ? 0.01 i : 2 / i) + 0.001 k */
        double lo = m % 2 ? 0.01 + 0.001 : 2.0 / 25 + 0.001, hi = m % 2 ? 0.25 + 0.003 : 2.0 + 0.003;
        json_object_set_new(y, metric_keys[m], json_pack("[f, f]", lo, hi));
    }
    json_object_set_new(o, "panels", json_pack("[s, s, s, s]", "train_loss", "train_acc", "test_loss", "test_acc"));
    json_object_set_new(o, "runs", rs);
    json_object_set_new(o, "y", y);
    json_object_set_new(o, "x", json_pack("[f, f]", 1.0, 3.0));
    json_object_set_new(o, "x_label", json_string("epoch"));
    json_object_set_new(o, "distinct_styles", json_integer(21));
    assert_int_equal(json_dump_file(o, exp, 0), 0);
    json_decref(o);
    check_svg(svg, exp);
}

static void test_errors(void **state)
{
    (void)state;
    char png[600], svg[600], missing[600];
    snprintf(png, sizeof png, "%s/x.png", tmpdir);
    snprintf(svg, sizeof svg, "%s/x.svg", tmpdir);
    snprintf(missing, sizeof missing, "%s/none.db", tmpdir);
    const char *a1[] = {"plot", "--db", dbpath, "-o", png, NULL};
    captured c = capture_run(cli_cmd_plot, tmpdir, a1);
    assert_int_equal(c.rc, EX_USAGE);
    assert_non_null(strstr(c.err, "PNG not supported, use .svg"));
    assert_int_equal(access(png, F_OK), -1);
    capture_free(&c);
    const char *a2[] = {"plot", "--db", dbpath, NULL};
    c = capture_run(cli_cmd_plot, tmpdir, a2);
    assert_int_equal(c.rc, EX_USAGE);
    capture_free(&c);
    const char *a3[] = {"plot", "--db", missing, "-o", svg, NULL};
    c = capture_run(cli_cmd_plot, tmpdir, a3);
    assert_int_equal(c.rc, EX_NOINPUT);
    capture_free(&c);
    const char *a4[] = {"plot", "--db", dbpath, "-o", svg, "nomatch*", NULL};
    c = capture_run(cli_cmd_plot, tmpdir, a4);
    assert_int_equal(c.rc, EX_NOINPUT);
    assert_int_equal(access(svg, F_OK), -1);
    capture_free(&c);
    const char *a5[] = {"plot", "--db", dbpath, "-o", svg, "waiting", NULL}; /* no epochs */
    c = capture_run(cli_cmd_plot, tmpdir, a5);
    assert_int_equal(c.rc, EX_NOINPUT);
    assert_non_null(strstr(c.err, "no epochs"));
    capture_free(&c);
    const char *a6[] = {"plot", "--db", dbpath, "-o", svg, "--metric", "loss", NULL};
    c = capture_run(cli_cmd_plot, tmpdir, a6);
    assert_int_equal(c.rc, EX_USAGE);
    capture_free(&c);
}

/* The tick helper alone, on cases worked by hand. */
static void test_nice_ticks(void **state)
{
    (void)state;
    cli_plot_ticks t;
    cli_plot_nice_ticks(0.45, 0.62, 5, 0, &t); /* raw step 0.034 -> 0.05 */
    assert_true(fabs(t.step - 0.05) < 1e-12);
    assert_true(t.first <= 0.45 && t.first + (t.count - 1) * t.step >= 0.62);
    assert_int_equal(t.decimals, 2);
    cli_plot_nice_ticks(1, 600, 6, 1, &t); /* raw 99.8 -> 100 */
    assert_true(fabs(t.step - 100) < 1e-9);
    assert_true(fabs(t.first) < 1e-9);
    assert_int_equal(t.count, 7);
    assert_int_equal(t.decimals, 0);
    cli_plot_nice_ticks(1, 3, 6, 1, &t); /* epochs: never a step below 1 */
    assert_true(fabs(t.step - 1) < 1e-12);
    cli_plot_nice_ticks(0.5, 0.5, 5, 0, &t); /* constant: widened around it */
    assert_true(t.first < 0.5 && t.first + (t.count - 1) * t.step > 0.5);
    cli_plot_nice_ticks(0, 0, 5, 0, &t);
    assert_true(t.first < 0 && t.first + (t.count - 1) * t.step > 0);
    cli_plot_nice_ticks(1, 1, 5, 1, &t); /* a single epoch */
    assert_true(t.first <= 0 && t.first + (t.count - 1) * t.step >= 2);
    cli_plot_nice_ticks(-3e-5, 7e-5, 5, 0, &t);
    assert_true(fabs(t.step - 2e-5) < 1e-15);
    assert_int_equal(t.decimals, 5);
    cli_plot_nice_ticks(NAN, 1, 5, 0, &t); /* no data: a unit range */
    assert_true(t.count >= 2);
}

static void test_xml_escape(void **state)
{
    (void)state;
    char buf[256] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    cli_plot_xml_escape(f, "a<b>&\"c'\x01\xff\xc3\xa9");
    fclose(f);
    assert_string_equal(buf, "a&lt;b&gt;&amp;&quot;c&apos;??\xc3\xa9");
}

static int setup(void **state)
{
    (void)state;
    if (access(PYTHON, X_OK) != 0)
        return -1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/epochd-test-plot-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(dbpath, sizeof dbpath, "%s/p.db", tmpdir);
    snprintf(manydb, sizeof manydb, "%s/many.db", tmpdir);
    return fill(dbpath, 0) || fill(manydb, 1) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    return fixture_remove(tmpdir);
}

int main(void)
{
    if (access(PYTHON, X_OK) != 0) {
        fprintf(stderr, "test_plot: %s is needed to parse the SVG back: skipped\n", PYTHON);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nice_ticks), cmocka_unit_test(test_xml_escape),
        cmocka_unit_test(test_four_panels), cmocka_unit_test(test_one_metric),
        cmocka_unit_test(test_x_seconds),  cmocka_unit_test(test_many_runs),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("plot", tests, setup, teardown);
}
