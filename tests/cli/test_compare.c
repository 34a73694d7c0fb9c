/* Tests of `epochd compare` on a database filled by hand with plain SQL:
 * ordering for each --sort, best epoch, every format parsed back (CSV by an
 * RFC 4180 reader, JSON by jansson, Markdown rows), globs, sweep groups.
 * Expected orders and numbers are worked out by hand below. */
#include <math.h>
#include <pty.h>
#include <sys/wait.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "db/db.h"
#include "cli/commands.h"
#include "tests/db/capture.h"

static char tmpdir[256], dbpath[512];

/* Runs (id: name, test_acc per epoch -> best@epoch, final; lowest test
 * loss; seconds; params; mean images/s):
 *  1 mlp_a   .80 .85 .84        -> .85@2 final .84; .50; 30; 5000;   200
 *  2 mlp_b   .70 .88 .80        -> .88@2 final .80; .40; 15; 20000;  400
 *  3 cnn_a   .60 .87 .87 .86    -> .87@2 (first of the tie) final .86; .42; 80; 100000; 50
 *  4 mix_p4  .50 .55  (sweep patch 4) -> .55@2; 1.2;  10; 3000; 1000
 *  5 mix_p2  .52 .61  (sweep patch 2) -> .61@2; 1.1;  24; 8000; 800
 *  6 cnn_q   queued, no epochs, params unknown
 *  7 zz, "odd"  cancelled, no epochs (a name CSV must quote) */
static const char fill_sql[] =
    "INSERT INTO runs (id, name, status, template, params, epochs_planned, created_at, spec_path, sweep) VALUES"
    " (1, 'mlp_a', 'done', 'mlp', 5000, 3, '2026-01-01T00:00:01.000Z', 'e/mlp_a.yaml', NULL),"
    " (2, 'mlp_b', 'done', 'mlp', 20000, 3, '2026-01-01T00:00:02.000Z', 'e/mlp_b.yaml', NULL),"
    " (3, 'cnn_a', 'failed', 'cnn', 100000, 5, '2026-01-01T00:00:03.000Z', 'e/cnn.yaml', NULL),"
    " (4, 'mix_p4', 'done', 'mlp_mixer', 3000, 2, '2026-01-01T00:00:04.000Z', 'e/sweep.yaml',"
    "     '{\"model.patch_size\":4,\"model.hidden\":128}'),"
    " (5, 'mix_p2', 'done', 'mlp_mixer', 8000, 2, '2026-01-01T00:00:05.000Z', 'e/sweep.yaml',"
    "     '{\"model.patch_size\":2,\"model.hidden\":128}'),"
    " (6, 'cnn_q', 'queued', 'cnn', NULL, 5, '2026-01-01T00:00:06.000Z', 'e/cnn_q.yaml', NULL),"
    " (7, 'zz, \"odd\"', 'cancelled', NULL, NULL, NULL, '2026-01-01T00:00:07.000Z', NULL, NULL);"
    "INSERT INTO epochs (run_id, epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds, samples_per_sec) VALUES"
    " (1, 1, 1.0, 0.7, 0.60, 0.80, 0.001, 10, 100), (1, 2, 0.8, 0.8, 0.50, 0.85, 0.001, 10, 200),"
    " (1, 3, 0.7, 0.85, 0.55, 0.84, 0.001, 10, 300),"
    " (2, 1, 1.0, 0.6, 0.90, 0.70, 0.001, 5, 400), (2, 2, 0.7, 0.8, 0.40, 0.88, 0.001, 5, 400),"
    " (2, 3, 0.6, 0.9, 0.45, 0.80, 0.001, 5, 400),"
    " (3, 1, 1.5, 0.5, 1.00, 0.60, 0.001, 20, 50), (3, 2, 0.9, 0.8, 0.45, 0.87, 0.001, 20, 50),"
    " (3, 3, 0.8, 0.85, 0.42, 0.87, 0.001, 20, 50), (3, 4, 0.7, 0.9, 0.43, 0.86, 0.001, 20, 50),"
    " (4, 1, 1.5, 0.4, 1.30, 0.50, 0.001, 5, 1000), (4, 2, 1.4, 0.5, 1.20, 0.55, 0.001, 5, 1000),"
    " (5, 1, 1.5, 0.4, 1.25, 0.52, 0.001, 12, 800), (5, 2, 1.3, 0.6, 1.10, 0.61, 0.001, 12, 800);";

/* ---- an RFC 4180 reader (quotes, doubled quotes, CRLF) ---- */

typedef struct csv {
    size_t rows, cols[64];
    char *cell[64][32];
} csv;

static void csv_parse(const char *s, csv *c)
{
    memset(c, 0, sizeof *c);
    char field[512];
    size_t fl = 0, col = 0;
    int quoted = 0, any = 0;
    for (const char *p = s;; p++) {
        if (quoted) {
            assert_true(*p != '\0'); /* an unterminated quote */
            if (*p == '"' && p[1] == '"') {
                field[fl++] = '"';
                p++;
            } else if (*p == '"') {
                quoted = 0;
            } else {
                field[fl++] = *p;
            }
            continue;
        }
        if (*p == '"' && fl == 0) {
            quoted = 1;
            any = 1;
            continue;
        }
        if (*p == ',' || *p == '\r' || *p == '\n' || *p == '\0') {
            if (*p == '\0' && !any && col == 0 && fl == 0)
                break;
            if (*p == '\r') {
                assert_int_equal(p[1], '\n'); /* CRLF line ends */
                p++;
            }
            field[fl] = '\0';
            assert_true(c->rows < 64 && col < 32);
            c->cell[c->rows][col++] = strdup(field);
            fl = 0;
            any = 0;
            if (*p != ',') {
                c->cols[c->rows++] = col;
                col = 0;
            }
            if (*p == '\0')
                break;
            continue;
        }
        field[fl++] = *p;
        any = 1;
        assert_true(fl < sizeof field);
    }
}

static void csv_free(csv *c)
{
    for (size_t r = 0; r < c->rows; r++)
        for (size_t k = 0; k < c->cols[r]; k++)
            free(c->cell[r][k]);
}

static int csv_col(const csv *c, const char *name)
{
    for (size_t k = 0; k < c->cols[0]; k++)
        if (!strcmp(c->cell[0][k], name))
            return (int)k;
    fail_msg("no CSV column %s", name);
    return -1;
}

static captured compare(const char *const *args)
{
    return capture_run(cli_cmd_compare, tmpdir, args);
}

/* The ids of a CSV output, in order. */
static void csv_ids(const char *out, int64_t *ids, size_t *n)
{
    csv c;
    csv_parse(out, &c);
    int idc = csv_col(&c, "id");
    *n = c.rows - 1;
    for (size_t r = 1; r < c.rows; r++)
        ids[r - 1] = strtoll(c.cell[r][idc], NULL, 10);
    csv_free(&c);
}

static void expect_order(const char *sort, const int64_t *want, size_t n)
{
    const char *args[] = {"compare", "--db", dbpath, "--sort", sort, "--format", "csv", NULL};
    captured c = compare(args);
    assert_int_equal(c.rc, 0);
    int64_t ids[64];
    size_t got;
    csv_ids(c.out, ids, &got);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++)
        if (ids[i] != want[i])
            fail_msg("--sort %s: position %zu is run %lld, expected %lld", sort, i, (long long)ids[i],
                     (long long)want[i]);
    capture_free(&c);
}

static void test_sort_orders(void **state)
{
    (void)state;
    const int64_t best[] = {2, 3, 1, 5, 4, 6, 7};
    const int64_t final[] = {3, 1, 2, 5, 4, 6, 7};
    const int64_t params[] = {4, 1, 5, 2, 3, 6, 7};
    const int64_t time[] = {4, 2, 5, 1, 3, 6, 7};
    const int64_t name[] = {3, 6, 5, 4, 1, 2, 7};
    expect_order("best", best, 7);
    expect_order("final", final, 7);
    expect_order("params", params, 7);
    expect_order("time", time, 7);
    expect_order("name", name, 7);
    /* the default is best */
    const char *args[] = {"compare", "--db", dbpath, "--format=csv", NULL};
    captured c = compare(args);
    int64_t ids[64];
    size_t n;
    csv_ids(c.out, ids, &n);
    assert_int_equal(n, 7);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    capture_free(&c);
}

static void test_csv_fields(void **state)
{
    (void)state;
    const char *args[] = {"compare", "--db", dbpath, "--format", "csv", "--sort", "name", NULL};
    captured c = compare(args);
    assert_int_equal(c.rc, 0);
    csv t;
    csv_parse(c.out, &t);
    assert_int_equal(t.rows, 8);
    for (size_t r = 0; r < t.rows; r++)
        assert_int_equal(t.cols[r], t.cols[0]); /* every row as wide as the header */
    int name = csv_col(&t, "name"), best = csv_col(&t, "best_test_acc"), ep = csv_col(&t, "best_epoch"),
        fin = csv_col(&t, "final_test_acc"), loss = csv_col(&t, "lowest_test_loss"),
        secs = csv_col(&t, "train_seconds"), ips = csv_col(&t, "images_per_sec"),
        params = csv_col(&t, "params"), st = csv_col(&t, "status");
    /* row 1 is cnn_a (sorted by name) */
    assert_string_equal(t.cell[1][name], "cnn_a");
    assert_true(fabs(strtod(t.cell[1][best], NULL) - 0.87) < 1e-12);
    assert_string_equal(t.cell[1][ep], "2"); /* first epoch reaching the max */
    assert_true(fabs(strtod(t.cell[1][fin], NULL) - 0.86) < 1e-12);
    assert_true(fabs(strtod(t.cell[1][loss], NULL) - 0.42) < 1e-12);
    assert_true(fabs(strtod(t.cell[1][secs], NULL) - 80) < 1e-12);
    assert_true(fabs(strtod(t.cell[1][ips], NULL) - 50) < 1e-12);
    assert_string_equal(t.cell[1][params], "100000");
    assert_string_equal(t.cell[1][st], "failed");
    /* cnn_q: unknown values are empty fields */
    assert_string_equal(t.cell[2][name], "cnn_q");
    assert_string_equal(t.cell[2][best], "");
    assert_string_equal(t.cell[2][params], "");
    /* the quoted name comes back intact */
    assert_string_equal(t.cell[7][name], "zz, \"odd\"");
    assert_non_null(strstr(c.out, "\"zz, \"\"odd\"\"\""));
    csv_free(&t);
    capture_free(&c);
}

/* The numbers compare prints are the leaderboard view's, as sqlite3 shows them. */
static void test_json_matches_view(void **state)
{
    (void)state;
    const char *args[] = {"compare", "--db", dbpath, "--format", "json", NULL};
    captured c = compare(args);
    assert_int_equal(c.rc, 0);
    json_error_t err;
    json_t *arr = json_loads(c.out, 0, &err);
    if (!arr)
        fail_msg("JSON: %s at line %d", err.text, err.line);
    assert_true(json_is_array(arr));
    assert_int_equal(json_array_size(arr), 7);

    sqlite3 *h;
    assert_int_equal(sqlite3_open(dbpath, &h), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(h,
        "SELECT id, best_test_acc, best_epoch, final_test_acc, lowest_test_loss, train_seconds,"
        " images_per_sec, epochs_done, params FROM leaderboard WHERE id = ?", -1, &s, NULL), SQLITE_OK);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        int64_t id = json_integer_value(json_object_get(o, "id"));
        sqlite3_bind_int64(s, 1, id);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        static const char *const keys[] = {"best_test_acc", "best_epoch", "final_test_acc",
                                           "lowest_test_loss", "train_seconds", "images_per_sec",
                                           "epochs_done", "params"};
        for (int k = 0; k < 8; k++) {
            json_t *v = json_object_get(o, keys[k]);
            assert_non_null(v);
            if (sqlite3_column_type(s, k + 1) == SQLITE_NULL || (k == 1 && sqlite3_column_int(s, 2) == 0)) {
                if (!json_is_null(v))
                    fail_msg("run %lld %s: expected null", (long long)id, keys[k]);
            } else if (!(fabs(json_number_value(v) - sqlite3_column_double(s, k + 1)) < 1e-12)) {
                fail_msg("run %lld %s: json %g, view %g", (long long)id, keys[k], json_number_value(v),
                         sqlite3_column_double(s, k + 1));
            }
        }
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    sqlite3_close(h);
    /* first object is the best run; sweep values are objects */
    o = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "mlp_b");
    assert_true(fabs(json_real_value(json_object_get(o, "best_test_acc")) - 0.88) < 1e-12);
    assert_int_equal(json_integer_value(json_object_get(o, "best_epoch")), 2);
    assert_true(json_is_null(json_object_get(o, "sweep")));
    json_array_foreach(arr, i, o)
    {
        if (!strcmp(json_string_value(json_object_get(o, "name")), "mix_p2")) {
            json_t *sw = json_object_get(o, "sweep");
            assert_true(json_is_object(sw));
            assert_int_equal(json_integer_value(json_object_get(sw, "model.patch_size")), 2);
        }
    }
    json_decref(arr);
    capture_free(&c);
}

/* Splits a Markdown table row on unescaped '|'. */
static size_t md_cells(const char *line, char cells[][64], size_t max)
{
    size_t n = 0, l = 0;
    assert_int_equal(line[0], '|');
    for (const char *p = line + 1; *p && *p != '\n'; p++) {
        if (*p == '\\' && p[1] == '|') {
            cells[n][l++] = '|';
            p++;
        } else if (*p == '|') {
            cells[n][l] = '\0';
            /* trim */
            char *s = cells[n];
            while (*s == ' ')
                memmove(s, s + 1, strlen(s));
            for (size_t e = strlen(s); e && s[e - 1] == ' '; e--)
                s[e - 1] = '\0';
            n++;
            l = 0;
            assert_true(n < max);
        } else {
            cells[n][l++] = *p;
        }
    }
    return n;
}

static void test_markdown_rows(void **state)
{
    (void)state;
    const char *args[] = {"compare", "--db", dbpath, "--format", "markdown", NULL};
    captured c = compare(args);
    assert_int_equal(c.rc, 0);
    char cells[32][64];
    size_t rows = 0, width = 0;
    int saw_best = 0;
    char *save = NULL;
    for (char *line = strtok_r(c.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t n = md_cells(line, cells, 32);
        if (rows == 0) {
            width = n;
            assert_string_equal(cells[0], "id");
            assert_string_equal(cells[1], "name");
        } else {
            assert_int_equal(n, width);
        }
        if (rows == 1)
            for (size_t k = 0; k < n; k++)
                assert_non_null(strstr(cells[k], "---"));
        if (rows == 2) { /* mlp_b first: its best accuracy and lowest loss are the best, in bold */
            assert_string_equal(cells[1], "mlp_b");
            for (size_t k = 0; k < n; k++)
                saw_best += !strcmp(cells[k], "**0.8800**") + !strcmp(cells[k], "**0.4000**");
        }
        rows++;
    }
    assert_int_equal(rows, 2 + 7);
    assert_int_equal(saw_best, 2);
    capture_free(&c);
}

static void test_table_marks_best(void **state)
{
    (void)state;
    const char *args[] = {"compare", "--db", dbpath, NULL};
    captured c = compare(args);
    assert_int_equal(c.rc, 0);
    assert_null(strstr(c.out, "\033[")); /* not a terminal: no escapes */
    char *lines[16];
    size_t n = 0;
    char *save = NULL;
    for (char *l = strtok_r(c.out, "\n", &save); l && n < 16; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    assert_int_equal(n, 8);
    assert_non_null(strstr(lines[0], "best_acc"));
    assert_non_null(strstr(lines[1], "mlp_b"));
    assert_non_null(strstr(lines[1], "0.8800*"));  /* best of best_acc */
    assert_non_null(strstr(lines[1], "0.4000*"));  /* lowest loss */
    assert_non_null(strstr(lines[2], "cnn_a"));
    assert_non_null(strstr(lines[2], "0.8600*"));  /* best final */
    assert_non_null(strstr(lines[2], "100,000"));
    assert_non_null(strstr(lines[2], "1m20s"));
    assert_non_null(strstr(lines[2], "4/5"));
    assert_non_null(strstr(lines[5], "mix_p4"));
    assert_non_null(strstr(lines[5], "1,000*")); /* fastest */
    /* aligned: the last column is right-aligned, so every row ends where the
     * header does, except for the '*' of a marked cell just after it */
    for (size_t i = 1; i < n; i++) {
        size_t len = strlen(lines[i]);
        if (lines[i][len - 1] == '*')
            len--;
        assert_int_equal(len, strlen(lines[0]));
    }
    size_t marks = 0;
    for (size_t i = 1; i < n; i++)
        for (char *p = lines[i]; (p = strchr(p, '*')); p++)
            marks++;
    assert_int_equal(marks, 4); /* one per metric column, no ties here */
    capture_free(&c);
}

/* On a terminal the best values are bold (and still marked with '*'). */
static void test_bold_on_a_terminal(void **state)
{
    (void)state;
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    assert_true(pid >= 0);
    if (pid == 0) {
        unsetenv("NO_COLOR");
        char *argv[] = {"compare", "--db", dbpath, "mlp_b", NULL};
        _exit(cli_cmd_compare(4, argv));
    }
    char buf[8192];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(master, buf + len, sizeof buf - 1 - len);
        if (n <= 0) /* EIO once the child has closed the terminal */
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(master);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(strstr(buf, "\033[1m0.8800*\033[0m"));
    assert_non_null(strstr(buf, "mlp_b"));
}

static void test_globs(void **state)
{
    (void)state;
    const char *a1[] = {"compare", "--db", dbpath, "--format", "csv", "mlp_*", NULL};
    captured c = compare(a1);
    int64_t ids[64];
    size_t n;
    csv_ids(c.out, ids, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 1);
    capture_free(&c);

    const char *a2[] = {"compare", "mix_p?", "--db", dbpath, "cnn_a", "--format", "csv", "--sort", "name", NULL};
    c = compare(a2);
    csv_ids(c.out, ids, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 5);
    assert_int_equal(ids[2], 4);
    capture_free(&c);

    /* nothing matches: exit 0, a note, and a CSV that is only its header */
    const char *a3[] = {"compare", "--db", dbpath, "--format", "csv", "nothing*", NULL};
    c = compare(a3);
    assert_int_equal(c.rc, 0);
    assert_non_null(strstr(c.err, "no runs match"));
    csv_ids(c.out, ids, &n);
    assert_int_equal(n, 0);
    capture_free(&c);
    const char *a4[] = {"compare", "--db", dbpath, "--format", "json", "nothing*", NULL};
    c = compare(a4);
    assert_int_equal(c.rc, 0);
    json_t *j = json_loads(c.out, 0, NULL);
    assert_true(json_is_array(j) && json_array_size(j) == 0);
    json_decref(j);
    capture_free(&c);
}

static void test_group_by_sweep(void **state)
{
    (void)state;
    const char *args[] = {"compare", "--db", dbpath, "--group", "--format", "csv", NULL};
    captured c = compare(args);
    assert_int_equal(c.rc, 0);
    csv t;
    csv_parse(c.out, &t);
    assert_int_equal(t.rows, 8);
    int g = csv_col(&t, "group"), ps = csv_col(&t, "model.patch_size"), hid = csv_col(&t, "model.hidden"),
        name = csv_col(&t, "name");
    /* best sort puts runs 2, 3, 1 (no sweep) first, then the sweep group 5, 4 */
    int seen_sweep = 0;
    for (size_t r = 1; r < t.rows; r++) {
        int in = !strcmp(t.cell[r][g], "e/sweep.yaml");
        if (in) {
            seen_sweep++;
            assert_string_equal(t.cell[r][hid], "128");
            assert_string_equal(t.cell[r][ps], !strcmp(t.cell[r][name], "mix_p2") ? "2" : "4");
        } else {
            assert_int_equal(seen_sweep, 0); /* groups are contiguous */
            assert_string_equal(t.cell[r][ps], "");
        }
    }
    assert_int_equal(seen_sweep, 2);
    csv_free(&t);
    capture_free(&c);

    const char *a2[] = {"compare", "--db", dbpath, "--group", "mix_*", NULL};
    c = compare(a2);
    assert_int_equal(c.rc, 0);
    assert_non_null(strstr(c.out, "sweep e/sweep.yaml (2 runs):"));
    char *hdr = strchr(c.out, '\n') + 1;
    assert_true(strstr(hdr, "model.patch_size") < strstr(hdr, "status")); /* key columns after name */
    assert_non_null(strstr(hdr, "model.hidden"));
    char *row1 = strchr(hdr, '\n') + 1;
    assert_non_null(strstr(row1, "mix_p2")); /* best first within the group */
    capture_free(&c);
}

static void test_exit_codes(void **state)
{
    (void)state;
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.db", tmpdir);
    const char *a1[] = {"compare", "--db", missing, NULL};
    captured c = compare(a1);
    assert_int_equal(c.rc, EX_NOINPUT);
    assert_non_null(strstr(c.err, "does not exist"));
    capture_free(&c);
    const char *a2[] = {"compare", "--db", dbpath, "--sort", "fastest", NULL};
    c = compare(a2);
    assert_int_equal(c.rc, EX_USAGE);
    capture_free(&c);
    const char *a3[] = {"compare", "--db", dbpath, "--bogus", NULL};
    c = compare(a3);
    assert_int_equal(c.rc, EX_USAGE);
    capture_free(&c);
    const char *a4[] = {"compare", "--db", NULL};
    c = compare(a4);
    assert_int_equal(c.rc, EX_USAGE);
    capture_free(&c);
    /* $EPOCHD_DB is the default */
    setenv("EPOCHD_DB", dbpath, 1);
    const char *a5[] = {"compare", "--format", "csv", NULL};
    c = compare(a5);
    unsetenv("EPOCHD_DB");
    assert_int_equal(c.rc, 0);
    int64_t ids[64];
    size_t n;
    csv_ids(c.out, ids, &n);
    assert_int_equal(n, 7);
    capture_free(&c);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/epochd-test-compare-XXXXXX");
    return fixture_db(tmpdir, "c.db", fill_sql, dbpath, sizeof dbpath);
}

static int teardown(void **state)
{
    (void)state;
    return fixture_remove(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sort_orders),     cmocka_unit_test(test_csv_fields),
        cmocka_unit_test(test_json_matches_view), cmocka_unit_test(test_markdown_rows),
        cmocka_unit_test(test_table_marks_best), cmocka_unit_test(test_bold_on_a_terminal),
        cmocka_unit_test(test_globs),
        cmocka_unit_test(test_group_by_sweep),  cmocka_unit_test(test_exit_codes),
    };
    return cmocka_run_group_tests_name("compare", tests, setup, teardown);
}
