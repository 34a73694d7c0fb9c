/* A comparison of runs: the leaderboard rows, sorted, grouped by sweep,
 * and their renderings (aligned table, CSV, JSON, Markdown). */
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/compare.h"
#include "cli/plot_svg.h"
#include "cli/text_table.h"


/* ---- sorting: missing values last, ties by id ---- */

static int cmp_id(const db_board_row *a, const db_board_row *b)
{
    return (a->id > b->id) - (a->id < b->id);
}

/* dir > 0: larger first */
static int cmp_num(double x, double y, int dir)
{
    int xn = !isfinite(x), yn = !isfinite(y);
    if (xn || yn)
        return xn - yn;
    return dir > 0 ? (x < y) - (x > y) : (x > y) - (x < y);
}

static int by_best(const void *pa, const void *pb)
{
    const db_board_row *a = pa, *b = pb;
    int c = cmp_num(a->best_test_acc, b->best_test_acc, 1);
    return c ? c : cmp_id(a, b);
}

static int by_final(const void *pa, const void *pb)
{
    const db_board_row *a = pa, *b = pb;
    int c = cmp_num(a->final_test_acc, b->final_test_acc, 1);
    return c ? c : cmp_id(a, b);
}

static int by_params(const void *pa, const void *pb)
{
    const db_board_row *a = pa, *b = pb;
    int c = cmp_num(a->params < 0 ? NAN : (double)a->params, b->params < 0 ? NAN : (double)b->params, -1);
    return c ? c : cmp_id(a, b);
}

static int by_time(const void *pa, const void *pb)
{
    const db_board_row *a = pa, *b = pb;
    /* a run without epochs has no training time yet */
    int c = cmp_num(a->epochs_done ? a->train_seconds : NAN, b->epochs_done ? b->train_seconds : NAN, -1);
    return c ? c : cmp_id(a, b);
}

static int by_name(const void *pa, const void *pb)
{
    const db_board_row *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : cmp_id(a, b);
}

/* ---- sweep groups ---- */

typedef struct group {
    const char *path; /* the sweep's spec file; NULL: runs not in a sweep */
    size_t *rows;     /* indexes into the board, in sort order */
    size_t n;
    const char **keys; /* swept keys, in order of first appearance */
    size_t nkeys;
} group;

struct cli_comparison {
    db_board *board;
    json_t **sweeps; /* parsed sweep object per row, or NULL */
    group *groups;
    size_t ngroups;
    bool grouped;
};

void cli_comparison_free(cli_comparison *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->sweeps && i < c->board->n; i++)
        json_decref(c->sweeps[i]);
    free(c->sweeps);
    for (size_t g = 0; g < c->ngroups; g++) {
        free(c->groups[g].rows);
        free(c->groups[g].keys);
    }
    free(c->groups);
    db_board_free(c->board);
    free(c);
}

static int add_key(group *g, const char *key)
{
    for (size_t i = 0; i < g->nkeys; i++)
        if (!strcmp(g->keys[i], key))
            return 0;
    const char **nk = realloc(g->keys, (g->nkeys + 1) * sizeof *nk);
    if (!nk)
        return -1;
    g->keys = nk;
    g->keys[g->nkeys++] = key;
    return 0;
}

/* Builds one group per sweep file (or a single group of everything when not
 * grouping); groups come in the order of their first row in sort order. */
static int build_groups(cli_comparison *c)
{
    size_t n = c->board->n;
    c->sweeps = calloc(n ? n : 1, sizeof *c->sweeps);
    c->groups = calloc(n ? n + 1 : 1, sizeof *c->groups);
    if (!c->sweeps || !c->groups)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *sw = c->board->rows[i].sweep;
        if (!sw)
            continue;
        json_t *j = json_loads(sw, JSON_DECODE_ANY, NULL);
        if (j && json_is_object(j))
            c->sweeps[i] = j;
        else
            json_decref(j); /* not an object: shown as not in a sweep */
    }
    for (size_t i = 0; i < n; i++) {
        const db_board_row *r = &c->board->rows[i];
        const char *path = NULL;
        int in_sweep = c->grouped && c->sweeps[i];
        if (in_sweep)
            path = r->spec_path ? r->spec_path : "(unknown sweep file)";
        group *g = NULL;
        for (size_t k = 0; k < c->ngroups && !g; k++) {
            group *h = &c->groups[k];
            if (!c->grouped || (in_sweep && h->path && !strcmp(h->path, path)) || (!in_sweep && !h->path))
                g = h;
        }
        if (!g) {
            g = &c->groups[c->ngroups++];
            g->path = path;
        }
        size_t *nr = realloc(g->rows, (g->n + 1) * sizeof *nr);
        if (!nr)
            return -1;
        g->rows = nr;
        g->rows[g->n++] = i;
        if (c->grouped && c->sweeps[i]) {
            const char *key;
            json_t *v;
            json_object_foreach(c->sweeps[i], key, v)
            {
                (void)v;
                if (add_key(g, key))
                    return -1;
            }
        }
    }
    return 0;
}

/* A swept value as text: strings bare, numbers as JSON writes them. */
static char *sweep_value(json_t *sweep, const char *key)
{
    json_t *v = sweep ? json_object_get(sweep, key) : NULL;
    if (!v)
        return strdup("");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
}

/* ---- the best value of each metric column ---- */

typedef struct bests {
    double best_acc, final_acc, min_loss, ips;
} bests;

static void find_bests(const cli_comparison *c, const group *g, bests *b)
{
    b->best_acc = b->final_acc = b->ips = -INFINITY;
    b->min_loss = INFINITY;
    for (size_t i = 0; i < g->n; i++) {
        const db_board_row *r = &c->board->rows[g->rows[i]];
        if (isfinite(r->best_test_acc))
            b->best_acc = fmax(b->best_acc, r->best_test_acc);
        if (isfinite(r->final_test_acc))
            b->final_acc = fmax(b->final_acc, r->final_test_acc);
        if (isfinite(r->lowest_test_loss))
            b->min_loss = fmin(b->min_loss, r->lowest_test_loss);
        if (isfinite(r->images_per_sec))
            b->ips = fmax(b->ips, r->images_per_sec);
    }
}

/* ---- table and markdown ---- */

enum { C_ID, C_NAME, C_STATUS, C_TEMPLATE, C_PARAMS, C_EPOCHS, C_BEST, C_BEST_EP, C_FINAL, C_LOSS,
       C_TIME, C_IPS, C_FIXED };
static const struct {
    const char *title;
    int right;
} fixed_cols[C_FIXED] = {
    [C_ID] = {"id", 1},          [C_NAME] = {"name", 0},         [C_STATUS] = {"status", 0},
    [C_TEMPLATE] = {"template", 0}, [C_PARAMS] = {"params", 1},  [C_EPOCHS] = {"epochs", 1},
    [C_BEST] = {"best_acc", 1},  [C_BEST_EP] = {"@epoch", 1},   [C_FINAL] = {"final_acc", 1},
    [C_LOSS] = {"min_loss", 1},  [C_TIME] = {"time", 1},        [C_IPS] = {"img/s", 1},
};

static int fill_table(const cli_comparison *c, const group *g, cli_table *t)
{
    /* key columns sit after the name */
    size_t nk = c->grouped ? g->nkeys : 0;
    for (size_t k = 0; k < C_FIXED; k++) {
        size_t col = k <= C_NAME ? k : k + nk;
        if (cli_table_column(t, col, fixed_cols[k].title, fixed_cols[k].right))
            return -1;
    }
    for (size_t k = 0; k < nk; k++)
        if (cli_table_column(t, C_NAME + 1 + k, g->keys[k], 0))
            return -1;
    bests b;
    find_bests(c, g, &b);
    for (size_t i = 0; i < g->n; i++) {
        const db_board_row *r = &c->board->rows[g->rows[i]];
        char buf[64];
        if (cli_table_row(t))
            return -1;
        size_t o = nk; /* offset of the columns after the keys */
        int rc = cli_table_setf(t, C_ID, 0, "%lld", (long long)r->id) ||
                 cli_table_set(t, C_NAME, r->name, 0);
        for (size_t k = 0; k < nk && !rc; k++) {
            char *v = sweep_value(c->sweeps[g->rows[i]], g->keys[k]);
            rc = !v || cli_table_set(t, C_NAME + 1 + k, v, 0);
            free(v);
        }
        rc = rc || cli_table_set(t, C_STATUS + o, db_status_name(r->status), 0) ||
             cli_table_set(t, C_TEMPLATE + o, r->template_name ? r->template_name : "-", 0);
        if (r->params >= 0)
            cli_fmt_count(buf, sizeof buf, r->params);
        else
            snprintf(buf, sizeof buf, "-");
        rc = rc || cli_table_set(t, C_PARAMS + o, buf, 0);
        if (r->epochs_planned > 0)
            rc = rc || cli_table_setf(t, C_EPOCHS + o, 0, "%lld/%lld", (long long)r->epochs_done,
                                      (long long)r->epochs_planned);
        else
            rc = rc || cli_table_setf(t, C_EPOCHS + o, 0, "%lld", (long long)r->epochs_done);
        if (isfinite(r->best_test_acc))
            rc = rc || cli_table_setf(t, C_BEST + o, r->best_test_acc == b.best_acc, "%.4f", r->best_test_acc) ||
                 cli_table_setf(t, C_BEST_EP + o, 0, "%lld", (long long)r->best_epoch);
        else
            rc = rc || cli_table_set(t, C_BEST + o, "-", 0) || cli_table_set(t, C_BEST_EP + o, "-", 0);
        if (isfinite(r->final_test_acc))
            rc = rc || cli_table_setf(t, C_FINAL + o, r->final_test_acc == b.final_acc, "%.4f", r->final_test_acc);
        else
            rc = rc || cli_table_set(t, C_FINAL + o, "-", 0);
        if (isfinite(r->lowest_test_loss))
            rc = rc || cli_table_setf(t, C_LOSS + o, r->lowest_test_loss == b.min_loss, "%.4f", r->lowest_test_loss);
        else
            rc = rc || cli_table_set(t, C_LOSS + o, "-", 0);
        if (r->epochs_done > 0)
            cli_fmt_duration(buf, sizeof buf, r->train_seconds);
        else
            snprintf(buf, sizeof buf, "-");
        rc = rc || cli_table_set(t, C_TIME + o, buf, 0);
        if (isfinite(r->images_per_sec))
            cli_fmt_count(buf, sizeof buf, llround(r->images_per_sec));
        else
            snprintf(buf, sizeof buf, "-");
        rc = rc || cli_table_set(t, C_IPS + o, buf, isfinite(r->images_per_sec) && r->images_per_sec == b.ips);
        if (rc)
            return -1;
    }
    return 0;
}

static void group_heading(FILE *f, const cli_comparison *c, const group *g, int markdown)
{
    if (!c->grouped)
        return;
    if (g->path) {
        char *path = cli_escaped(g->path);
        fprintf(f, markdown ? "### sweep %s (%zu runs)\n\n" : "sweep %s (%zu runs):\n", path ? path : "?", g->n);
        free(path);
    } else {
        fprintf(f, markdown ? "### not in a sweep (%zu runs)\n\n" : "not in a sweep (%zu runs):\n", g->n);
    }
}

/* An HTML table's name cells link to the run's page. */
typedef struct html_links {
    const cli_comparison *c;
    const group *g;
    const char *prefix;
} html_links;

static const char *run_href(void *ctx, size_t row, size_t col, char *buf, size_t len)
{
    const html_links *l = ctx;
    if (col != C_NAME || row >= l->g->n)
        return NULL;
    snprintf(buf, len, "%s%lld", l->prefix, (long long)l->c->board->rows[l->g->rows[row]].id);
    return buf;
}

static void html_heading(FILE *f, const cli_comparison *c, const group *g)
{
    if (!c->grouped)
        return;
    fputs("<h3 class=\"group\">", f);
    if (g->path) {
        fputs("sweep ", f);
        cli_plot_xml_escape(f, g->path);
    } else {
        fputs("not in a sweep", f);
    }
    fprintf(f, " (%zu run%s)</h3>\n", g->n, g->n == 1 ? "" : "s");
}

enum { OUT_TEXT, OUT_MARKDOWN, OUT_HTML };

static int print_tables(const cli_comparison *c, FILE *f, int mode, int bold, const char *link_prefix)
{
    for (size_t gi = 0; gi < c->ngroups; gi++) {
        const group *g = &c->groups[gi];
        cli_table *t = cli_table_new(C_FIXED + (c->grouped ? g->nkeys : 0));
        if (!t || fill_table(c, g, t)) {
            cli_table_free(t);
            return -1;
        }
        int rc;
        if (mode == OUT_HTML) {
            html_heading(f, c, g);
            html_links l = {c, g, link_prefix};
            rc = cli_table_print_html(t, f, link_prefix ? run_href : NULL, &l);
        } else {
            if (gi)
                fputc('\n', f);
            group_heading(f, c, g, mode == OUT_MARKDOWN);
            rc = mode == OUT_MARKDOWN ? cli_table_print_markdown(t, f) : cli_table_print(t, f, bold);
        }
        cli_table_free(t);
        if (rc)
            return -1;
    }
    return 0;
}

/* ---- CSV (RFC 4180) ---- */

static void csv_field(FILE *f, const char *s, int first)
{
    if (!first)
        fputc(',', f);
    if (!s)
        return;
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_num(FILE *f, double v)
{
    fputc(',', f);
    if (isfinite(v))
        fprintf(f, "%.15g", v);
}

static void csv_int(FILE *f, int64_t v, int64_t unknown_below)
{
    fputc(',', f);
    if (v >= unknown_below)
        fprintf(f, "%lld", (long long)v);
}

static const char *const csv_header[] = {
    "id", "name", "status", "template", "params", "epochs_done", "epochs_planned", "best_test_acc",
    "best_epoch", "final_test_acc", "lowest_test_loss", "train_seconds", "images_per_sec",
    "created_at", "finished_at", "sweep"};

static int print_csv(const cli_comparison *c, FILE *f)
{
    /* with --group: the group and one column per swept key of any group */
    group all = {0};
    int rc = 0;
    for (size_t g = 0; g < c->ngroups && c->grouped && !rc; g++)
        for (size_t k = 0; k < c->groups[g].nkeys && !rc; k++)
            rc = add_key(&all, c->groups[g].keys[k]);
    if (rc) {
        free(all.keys);
        return -1;
    }
    for (size_t i = 0; i < sizeof csv_header / sizeof *csv_header; i++)
        csv_field(f, csv_header[i], i == 0);
    if (c->grouped) {
        csv_field(f, "group", 0);
        for (size_t k = 0; k < all.nkeys; k++)
            csv_field(f, all.keys[k], 0);
    }
    fputs("\r\n", f);
    for (size_t gi = 0; gi < c->ngroups && !rc; gi++) {
        const group *g = &c->groups[gi];
        for (size_t i = 0; i < g->n && !rc; i++) {
            const db_board_row *r = &c->board->rows[g->rows[i]];
            fprintf(f, "%lld", (long long)r->id);
            csv_field(f, r->name, 0);
            csv_field(f, db_status_name(r->status), 0);
            csv_field(f, r->template_name, 0);
            csv_int(f, r->params, 0);
            csv_int(f, r->epochs_done, 0);
            csv_int(f, r->epochs_planned, 1);
            csv_num(f, r->best_test_acc);
            csv_int(f, r->best_epoch, 1);
            csv_num(f, r->final_test_acc);
            csv_num(f, r->lowest_test_loss);
            csv_num(f, r->train_seconds);
            csv_num(f, r->images_per_sec);
            csv_field(f, r->created_at, 0);
            csv_field(f, r->finished_at, 0);
            csv_field(f, r->sweep, 0);
            if (c->grouped) {
                csv_field(f, g->path ? g->path : "", 0);
                for (size_t k = 0; k < all.nkeys && !rc; k++) {
                    char *v = sweep_value(c->sweeps[g->rows[i]], all.keys[k]);
                    if (!v)
                        rc = -1;
                    else
                        csv_field(f, v, 0);
                    free(v);
                }
            }
            fputs("\r\n", f);
        }
    }
    free(all.keys);
    return rc || ferror(f) ? -1 : 0;
}

/* ---- JSON ---- */

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static json_t *jint(int64_t v, int64_t unknown_below) { return v >= unknown_below ? json_integer(v) : json_null(); }
static json_t *jstr(const char *s) { return s ? json_string(s) : json_null(); }

static int jset(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1; /* set_new frees v on failure */
}

json_t *cli_comparison_json(const cli_comparison *c)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    int rc = 0;
    for (size_t gi = 0; gi < c->ngroups && !rc; gi++) {
        const group *g = &c->groups[gi];
        for (size_t i = 0; i < g->n && !rc; i++) {
            size_t ri = g->rows[i];
            const db_board_row *r = &c->board->rows[ri];
            json_t *o = json_object();
            if (!o) {
                rc = -1;
                break;
            }
            rc = jset(o, "id", json_integer(r->id)) || jset(o, "name", jstr(r->name)) ||
                 jset(o, "status", jstr(db_status_name(r->status))) ||
                 jset(o, "template", jstr(r->template_name)) || jset(o, "params", jint(r->params, 0)) ||
                 jset(o, "epochs_done", json_integer(r->epochs_done)) ||
                 jset(o, "epochs_planned", jint(r->epochs_planned, 1)) ||
                 jset(o, "best_test_acc", jnum(r->best_test_acc)) ||
                 jset(o, "best_epoch", jint(r->best_epoch, 1)) ||
                 jset(o, "final_test_acc", jnum(r->final_test_acc)) ||
                 jset(o, "lowest_test_loss", jnum(r->lowest_test_loss)) ||
                 jset(o, "train_seconds", jnum(r->train_seconds)) ||
                 jset(o, "images_per_sec", jnum(r->images_per_sec)) ||
                 jset(o, "created_at", jstr(r->created_at)) ||
                 jset(o, "finished_at", jstr(r->finished_at)) ||
                 jset(o, "sweep", c->sweeps[ri] ? json_incref(c->sweeps[ri]) : json_null());
            if (!rc && c->grouped)
                rc = jset(o, "group", jstr(g->path));
            if (rc || json_array_append_new(arr, o)) {
                if (!rc)
                    o = NULL; /* append_new already freed it */
                json_decref(o);
                rc = -1;
            }
        }
    }
    if (rc) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static int print_json(const cli_comparison *c, FILE *f)
{
    json_t *arr = cli_comparison_json(c);
    if (!arr)
        return -1;
    int rc = json_dumpf(arr, f, CLI_JSON_FLAGS) ? -1 : 0;
    fputc('\n', f);
    json_decref(arr);
    return rc || ferror(f) ? -1 : 0;
}

/* ---- loading ---- */

const char *const cli_sort_names[] = {"best", "final", "params", "time", "name", NULL};
const char *const cli_format_names[] = {"table", "csv", "json", "markdown", NULL};

int cli_comparison_load(db *d, const char *const *names, size_t n_names, cli_sort sort, bool grouped,
                        cli_comparison **out)
{
    db_filter f = {.names = (const char **)names, .n_names = n_names};
    return cli_comparison_load_filter(d, &f, sort, grouped, out);
}

int cli_comparison_load_filter(db *d, const db_filter *f, cli_sort sort, bool grouped, cli_comparison **out)
{
    *out = NULL;
    cli_comparison *c = calloc(1, sizeof *c);
    if (!c)
        return DB_ENOMEM;
    c->grouped = grouped;
    int rc = db_leaderboard(d, f, &c->board);
    if (rc) {
        free(c);
        return rc;
    }
    int (*cmp)(const void *, const void *) = sort == CLI_SORT_BEST     ? by_best
                                             : sort == CLI_SORT_FINAL  ? by_final
                                             : sort == CLI_SORT_PARAMS ? by_params
                                             : sort == CLI_SORT_TIME   ? by_time
                                                                       : by_name;
    if (c->board->n > 1)
        qsort(c->board->rows, c->board->n, sizeof *c->board->rows, cmp);
    if (build_groups(c)) {
        cli_comparison_free(c);
        return DB_ENOMEM;
    }
    *out = c;
    return 0;
}

size_t cli_comparison_count(const cli_comparison *c) { return c->board->n; }

int cli_comparison_print(const cli_comparison *c, FILE *f, cli_format format, bool bold)
{
    int rc = 0;
    switch (format) {
    case CLI_FORMAT_TABLE: rc = c->board->n ? print_tables(c, f, OUT_TEXT, bold, NULL) : 0; break;
    case CLI_FORMAT_MARKDOWN:
        if (c->board->n) {
            rc = print_tables(c, f, OUT_MARKDOWN, 0, NULL);
        } else { /* an empty table keeps the output a table */
            group none = {0};
            cli_table *t = cli_table_new(C_FIXED);
            rc = !t || fill_table(c, &none, t) || cli_table_print_markdown(t, f);
            cli_table_free(t);
        }
        break;
    case CLI_FORMAT_CSV: rc = print_csv(c, f); break;
    case CLI_FORMAT_JSON: rc = print_json(c, f); break;
    }
    return rc ? -1 : 0;
}

int cli_comparison_print_html(const cli_comparison *c, FILE *f, const char *run_link_prefix)
{
    return print_tables(c, f, OUT_HTML, 0, run_link_prefix) || ferror(f) ? -1 : 0;
}
