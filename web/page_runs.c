/* The runs page: every run with its status, device, epoch, progress, rate,
 * ETA, best and final test accuracy and parameters - the numbers of
 * `epochd status` (cli_status_progress) and `epochd compare` (the
 * leaderboard) - filtered by status and name glob, sorted by a column, and
 * the invalid specs with their located messages. `?part=live` is the part
 * the page's script polls. */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "cli/status.h"
#include "cli/text_table.h"
#include "service/error.h"
#include "web/internal.h"

typedef struct item {
    const db_run *r;
    const db_board_row *b; /* NULL if the run appeared between the reads */
    cli_progress p;
    size_t order;          /* position in status's order */
} item;

typedef enum sort_key { S_STATUS, S_ID, S_NAME, S_BEST, S_FINAL, S_PARAMS, S_RATE, S_PROGRESS, S_COUNT } sort_key;
static const char *const sort_words[S_COUNT] = {"status", "id", "name", "best", "final", "params", "rate", "progress"};

/* larger first for dir > 0; unknown (NaN) last */
static int cmp_num(double x, double y, int dir)
{
    int xn = !isfinite(x), yn = !isfinite(y);
    if (xn || yn)
        return xn - yn;
    return dir > 0 ? (x < y) - (x > y) : (x > y) - (x < y);
}

static double rate_of(const item *it)
{
    return isfinite(it->p.images_per_sec) ? it->p.images_per_sec : it->b ? it->b->images_per_sec : NAN;
}

static int by_key(const void *pa, const void *pb, void *ctx)
{
    const item *a = pa, *b = pb;
    int c = 0;
    switch (*(const sort_key *)ctx) {
    case S_ID: c = (a->r->id > b->r->id) - (a->r->id < b->r->id); break;
    case S_NAME: c = strcmp(a->r->name, b->r->name); break;
    case S_BEST: c = cmp_num(a->b ? a->b->best_test_acc : NAN, b->b ? b->b->best_test_acc : NAN, 1); break;
    case S_FINAL: c = cmp_num(a->b ? a->b->final_test_acc : NAN, b->b ? b->b->final_test_acc : NAN, 1); break;
    case S_PARAMS:
        c = cmp_num(a->r->params >= 0 ? (double)a->r->params : NAN, b->r->params >= 0 ? (double)b->r->params : NAN, 1);
        break;
    case S_RATE: c = cmp_num(rate_of(a), rate_of(b), 1); break;
    case S_PROGRESS: c = cmp_num(a->p.total_fraction, b->p.total_fraction, 1); break;
    default: break;
    }
    return c ? c : (a->order > b->order) - (a->order < b->order);
}

typedef struct runs_view {
    cli_status st;
    item *items;
    size_t n;
    size_t per_status[DB_STATUS_COUNT];
    size_t total;
    const char *status_arg, *name_arg;
    sort_key sort;
} runs_view;

static void add_list(runs_view *v, const db_run_list *l, int want_status, const char *glob)
{
    for (size_t i = 0; l && i < l->n; i++) {
        const db_run *r = &l->runs[i];
        v->per_status[r->status]++;
        v->total++;
        if (want_status >= 0 && (int)r->status != want_status)
            continue;
        if (glob && *glob && sqlite3_strglob(glob, r->name) != 0) /* GLOB as in compare */
            continue;
        item *it = &v->items[v->n];
        it->r = r;
        it->b = cli_status_board_row(v->st.board, r->id);
        cli_status_progress(r, it->b, cli_status_plan(&v->st, r->id), time(NULL), &it->p);
        it->order = v->n++;
    }
}

static int load(web_request *rq, runs_view *v)
{
    memset(v, 0, sizeof *v);
    v->status_arg = web_arg(rq, "status");
    v->name_arg = web_arg(rq, "name");
    const char *s = web_arg(rq, "sort");
    for (int i = 0; s && i < S_COUNT; i++)
        if (!strcmp(s, sort_words[i]))
            v->sort = (sort_key)i;
    int want = -1;
    db_status ds;
    if (v->status_arg && *v->status_arg && db_status_parse(v->status_arg, &ds) == 0)
        want = (int)ds;
    int rc = cli_status_load(rq->db, true, 0, &v->st);
    if (rc < 0)
        return svc_error(svc_from_db(rc), "%s", db_last_error());
    size_t cap = v->st.running->n + v->st.queued->n + (v->st.finished ? v->st.finished->n : 0);
    v->items = calloc(cap ? cap : 1, sizeof *v->items);
    if (!v->items) {
        cli_status_free(&v->st);
        return svc_error(SVC_ENOMEM, "out of memory");
    }
    /* status's order: running and interrupted, the queue, then the finished, newest first */
    add_list(v, v->st.running, want, v->name_arg);
    add_list(v, v->st.queued, want, v->name_arg);
    add_list(v, v->st.finished, want, v->name_arg);
    if (v->sort != S_STATUS && v->n > 1)
        qsort_r(v->items, v->n, sizeof *v->items, by_key, &v->sort);
    return 0;
}

static void free_view(runs_view *v)
{
    free(v->items);
    cli_status_free(&v->st);
}

/* "?status=..&name=..&sort=.." for links that keep the filters. */
static void query(FILE *f, const runs_view *v, const char *sort, const char *part)
{
    char sep = '?';
    if (part) {
        fprintf(f, "%cpart=%s", sep, part);
        sep = '&';
    }
    if (v->status_arg && *v->status_arg) {
        fprintf(f, "%cstatus=", sep);
        web_url_esc(f, v->status_arg);
        sep = '&';
    }
    if (v->name_arg && *v->name_arg) {
        fprintf(f, "%cname=", sep);
        web_url_esc(f, v->name_arg);
        sep = '&';
    }
    if (sort) {
        fprintf(f, "%csort=", sep);
        web_url_esc(f, sort);
    }
}

static const struct {
    const char *title;
    int num;
    const char *sort; /* server-side sort key, or NULL */
} cols[] = {
    {"id", 1, "id"},          {"name", 0, "name"},      {"status", 0, "status"}, {"device", 0, NULL},
    {"epoch", 1, NULL},       {"progress", 1, "progress"}, {"img/s", 1, "rate"}, {"ETA", 1, NULL},
    {"best acc", 1, "best"},  {"@epoch", 1, NULL},      {"final acc", 1, "final"}, {"params", 1, "params"},
    {"note", 0, NULL},
};

static void row(FILE *f, const item *it)
{
    const db_run *r = it->r;
    const db_board_row *b = it->b;
    const cli_progress *p = &it->p;
    char buf[64];
    fprintf(f, "<tr data-run=\"%lld\" data-status=\"%s\"><td class=\"num\">%lld</td><td><a href=\"/runs/%lld\"",
            (long long)r->id, db_status_name(r->status), (long long)r->id, (long long)r->id);
    if (r->spec_path) {
        fputs(" title=\"", f);
        web_esc(f, r->spec_path);
        fputc('"', f);
    }
    fputs(">", f);
    web_esc(f, r->name);
    fputs("</a></td><td>", f);
    web_status_badge(f, r->status);
    cli_status_device(r, buf, sizeof buf);
    fputs("</td><td>", f);
    web_esc(f, buf);
    if (r->epochs_planned > 0)
        fprintf(f, "</td><td class=\"num epoch\">%lld/%lld</td>", (long long)p->epoch, (long long)r->epochs_planned);
    else
        fprintf(f, "</td><td class=\"num epoch\">%lld</td>", (long long)p->epoch);
    if (isfinite(p->total_fraction))
        fprintf(f, "<td class=\"num progress\" data-v=\"%.6f\"><progress max=\"1\" value=\"%.4f\"></progress> "
                   "<span class=\"pct\">%.1f%%</span></td>",
                p->total_fraction, p->total_fraction, 100.0 * p->total_fraction);
    else
        fputs("<td class=\"num progress\">-</td>", f);
    /* the current rate while running (status), else the mean of the epochs (compare) */
    web_fmt_count(buf, sizeof buf, rate_of(it));
    fprintf(f, "<td class=\"num rate\"%s>%s</td>", isfinite(p->images_per_sec) ? " title=\"current\"" : "", buf);
    if (isfinite(p->eta_seconds)) {
        cli_fmt_duration(buf, sizeof buf, p->eta_seconds);
        fprintf(f, "<td class=\"num eta\" data-v=\"%.0f\">%s</td>", p->eta_seconds, buf);
    } else {
        fputs("<td class=\"num eta\">-</td>", f);
    }
    web_fmt_acc(buf, sizeof buf, b ? b->best_test_acc : NAN);
    fprintf(f, "<td class=\"num best-acc\">%s</td>", buf);
    if (b && isfinite(b->best_test_acc))
        fprintf(f, "<td class=\"num\">%lld</td>", (long long)b->best_epoch);
    else
        fputs("<td class=\"num\">-</td>", f);
    web_fmt_acc(buf, sizeof buf, b ? b->final_test_acc : NAN);
    fprintf(f, "<td class=\"num final-acc\">%s</td>", buf);
    if (r->params >= 0)
        cli_fmt_count(buf, sizeof buf, r->params);
    else
        snprintf(buf, sizeof buf, "-");
    fprintf(f, "<td class=\"num params\">%s</td><td class=\"note\">", buf);
    if (p->note[0]) {
        web_esc(f, p->note);
    } else if (r->error) {
        char line[160];
        snprintf(line, sizeof line, "%s", r->error);
        line[strcspn(line, "\r\n")] = '\0';
        web_esc(f, line);
    }
    fputs("</td></tr>\n", f);
}

static void live_part(web_request *rq, const runs_view *v)
{
    FILE *f = rq->out;
    fputs("<section id=\"runs-live\" data-live=\"/", f);
    query(f, v, v->sort != S_STATUS ? sort_words[v->sort] : NULL, "live");
    fputs("\" data-active=\"1\">\n<div class=\"counts\">", f);
    fprintf(f, "<a href=\"/\">%zu runs</a>", v->total);
    for (int s = 0; s < DB_STATUS_COUNT; s++)
        if (v->per_status[s])
            fprintf(f, "<a class=\"count-%s\" href=\"/?status=%s\">%zu %s</a>", db_status_name((db_status)s),
                    db_status_name((db_status)s), v->per_status[s], db_status_name((db_status)s));
    fputs("</div>\n<table class=\"data sortable\" id=\"runs\">\n<thead><tr>", f);
    for (size_t c = 0; c < sizeof cols / sizeof *cols; c++) {
        fputs(cols[c].num ? "<th class=\"num\">" : "<th>", f);
        if (cols[c].sort) {
            fputs("<a href=\"/", f);
            query(f, v, cols[c].sort, NULL);
            fputs("\">", f);
        }
        web_esc(f, cols[c].title);
        fputs(cols[c].sort ? "</a></th>" : "</th>", f);
    }
    fputs("</tr></thead>\n<tbody>\n", f);
    for (size_t i = 0; i < v->n; i++)
        row(f, &v->items[i]);
    fputs("</tbody>\n</table>\n", f);
    if (v->n == 0)
        fputs("<p class=\"muted\" id=\"no-runs\">No run matches. Drop a spec into the experiments folder, "
              "or change the filter.</p>\n",
              f);

    /* the invalid specs among the shown runs, each with every located message */
    size_t n_invalid = 0;
    for (size_t i = 0; i < v->n; i++)
        n_invalid += v->items[i].r->status == DB_INVALID;
    if (n_invalid) {
        fprintf(f, "<section class=\"invalid\" id=\"invalid\">\n<h2>Invalid specs (%zu)</h2>\n", n_invalid);
        for (size_t i = 0; i < v->n; i++) {
            const db_run *r = v->items[i].r;
            if (r->status != DB_INVALID)
                continue;
            fprintf(f, "<article data-run=\"%lld\"><a href=\"/runs/%lld\">", (long long)r->id, (long long)r->id);
            web_esc(f, r->name);
            fputs("</a> <span class=\"muted\">", f);
            web_esc(f, r->spec_path ? r->spec_path : "");
            fputs("</span>\n<pre class=\"error\">", f);
            web_esc_lines(f, r->error ? r->error : "(no message recorded)");
            fputs("</pre></article>\n", f);
        }
        fputs("</section>\n", f);
    }
    fputs("</section>\n", f);
}

int web_page_runs(web_request *rq)
{
    runs_view v;
    int rc = load(rq, &v);
    if (rc < 0)
        return rc;
    const char *part = web_arg(rq, "part");
    if (part && !strcmp(part, "live")) {
        live_part(rq, &v);
        free_view(&v);
        return 0;
    }
    FILE *f = rq->out;
    web_page_begin(rq, "Runs", WEB_NAV_RUNS);
    fputs("<h1>Runs</h1>\n<form class=\"filters\" method=\"get\" action=\"/\">\n"
          "<label>status<select name=\"status\"><option value=\"\">any</option>",
          f);
    for (int s = 0; s < DB_STATUS_COUNT; s++) {
        const char *n = db_status_name((db_status)s);
        fprintf(f, "<option%s>%s</option>", v.status_arg && !strcmp(v.status_arg, n) ? " selected" : "", n);
    }
    fputs("</select></label>\n<label>name (glob, as in compare)<input name=\"name\" placeholder=\"fmnist_*\" value=\"",
          f);
    web_esc(f, v.name_arg ? v.name_arg : "");
    fputs("\"></label>\n", f);
    if (v.sort != S_STATUS)
        fprintf(f, "<input type=\"hidden\" name=\"sort\" value=\"%s\">", sort_words[v.sort]);
    fputs("<button type=\"submit\">Filter</button> <a class=\"button\" href=\"/\">Clear</a>\n</form>\n", f);
    live_part(rq, &v);
    web_page_end(rq);
    free_view(&v);
    return 0;
}
