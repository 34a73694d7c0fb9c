/* The compare page: pick runs (names or globs) or a sweep file and see
 * `epochd compare`'s table - the same rows, the same formats, the swept keys
 * as columns when grouped - and the runs' four curves overlaid, drawn by
 * `epochd plot`'s code. */
#include <stdlib.h>
#include <string.h>

#include "cli/compare.h"
#include "cli/curves.h"
#include "service/error.h"
#include "web/internal.h"

typedef struct compare_args {
    const char **names;
    size_t n_names;
    char *names_buf;
    const char *sweep;
    cli_sort sort;
    bool grouped;
    bool x_seconds;
} compare_args;

/* The arguments of /compare and /api/compare: names=a,b (repeatable),
 * sweep=FILE (its runs, grouped), sort=best|final|params|time|name, group=1,
 * x=epoch|seconds. 0, or SVC_EUSAGE with the reason. */
static int parse(web_request *rq, compare_args *a)
{
    memset(a, 0, sizeof *a);
    if (web_arg_list(rq, "names", &a->names, &a->n_names, &a->names_buf) < 0)
        return SVC_ENOMEM;
    a->sweep = web_arg(rq, "sweep");
    if (a->sweep && !*a->sweep)
        a->sweep = NULL;
    const char *s = web_arg(rq, "sort");
    if (s && *s) {
        int found = 0;
        for (int i = 0; cli_sort_names[i]; i++)
            if (!strcmp(s, cli_sort_names[i])) {
                a->sort = (cli_sort)i;
                found = 1;
            }
        if (!found)
            return svc_error(SVC_EUSAGE, "sort: expected best, final, params, time or name");
    }
    const char *g = web_arg(rq, "group");
    a->grouped = (g && (!strcmp(g, "1") || !strcmp(g, "on") || !strcmp(g, "true"))) || a->sweep;
    const char *x = web_arg(rq, "x");
    if (x && *x && strcmp(x, "epoch") && strcmp(x, "seconds"))
        return svc_error(SVC_EUSAGE, "x: expected epoch or seconds");
    a->x_seconds = x && !strcmp(x, "seconds");
    return 0;
}

static void free_args(compare_args *a)
{
    free(a->names);
    free(a->names_buf);
}

static db_filter filter_of(const compare_args *a)
{
    return (db_filter){.names = a->names, .n_names = a->n_names, .spec_path = a->sweep};
}

int web_api_compare(web_request *rq)
{
    compare_args a;
    int rc = parse(rq, &a);
    if (rc == SVC_EUSAGE) {
        free_args(&a);
        return web_json_error(rq, 400, svc_last_error());
    }
    cli_comparison *c = NULL;
    db_filter f = filter_of(&a);
    if (rc == 0 && (rc = cli_comparison_load_filter(rq->db, &f, a.sort, a.grouped, &c)) < 0)
        rc = svc_error(svc_from_db(rc), "%s", db_last_error());
    free_args(&a);
    if (rc < 0)
        return rc;
    rq->type = "application/json";
    /* exactly what `epochd compare --format json` prints */
    rc = cli_comparison_print(c, rq->out, CLI_FORMAT_JSON, false);
    cli_comparison_free(c);
    return rc ? svc_error(SVC_ENOMEM, "cannot render the comparison") : 0;
}

static bool picked(const compare_args *a, const char *name)
{
    for (size_t i = 0; i < a->n_names; i++)
        if (!strcmp(a->names[i], name))
            return true;
    return false;
}

static int by_str(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

/* Distinct non-NULL strings of the board's rows at a field, sorted. */
static size_t distinct(const db_board *b, bool sweeps, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        const char *s = sweeps ? (b->rows[i].sweep ? b->rows[i].spec_path : NULL) : b->rows[i].name;
        if (s)
            out[n++] = s;
    }
    qsort(out, n, sizeof *out, by_str);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || strcmp(out[k - 1], out[i]))
            out[k++] = out[i];
    return k;
}

static int picker(web_request *rq, const compare_args *a)
{
    db_board *b = NULL;
    int rc = db_leaderboard(rq->db, NULL, &b);
    if (rc < 0)
        return svc_error(svc_from_db(rc), "%s", db_last_error());
    const char **list = calloc(b->n ? b->n : 1, sizeof *list);
    if (!list) {
        db_board_free(b);
        return svc_error(SVC_ENOMEM, "out of memory");
    }
    FILE *f = rq->out;
    fputs("<form class=\"filters\" method=\"get\" action=\"/compare\">\n"
          "<label>runs<select name=\"names\" multiple size=\"8\" id=\"pick-names\">",
          f);
    size_t n = distinct(b, false, list);
    for (size_t i = 0; i < n; i++) {
        fputs(picked(a, list[i]) ? "<option selected value=\"" : "<option value=\"", f);
        web_esc(f, list[i]);
        fputs("\">", f);
        web_esc(f, list[i]);
        fputs("</option>", f);
    }
    fputs("</select></label>\n<label>or a sweep<select name=\"sweep\" id=\"pick-sweep\"><option value=\"\">-</option>",
          f);
    n = distinct(b, true, list);
    for (size_t i = 0; i < n; i++) {
        fputs(a->sweep && !strcmp(a->sweep, list[i]) ? "<option selected value=\"" : "<option value=\"", f);
        web_esc(f, list[i]);
        fputs("\">", f);
        web_esc(f, list[i]);
        fputs("</option>", f);
    }
    fputs("</select></label>\n<label>sort<select name=\"sort\">", f);
    for (int i = 0; cli_sort_names[i]; i++)
        fprintf(f, "<option%s>%s</option>", (int)a->sort == i ? " selected" : "", cli_sort_names[i]);
    fprintf(f, "</select></label>\n<label>x axis<select name=\"x\"><option%s>epoch</option><option%s>seconds"
               "</option></select></label>\n<label><span><input type=\"checkbox\" name=\"group\" value=\"1\"%s> "
               "a column per swept key</span></label>\n<button type=\"submit\">Compare</button>\n</form>\n",
            a->x_seconds ? "" : " selected", a->x_seconds ? " selected" : "", a->grouped ? " checked" : "");
    free(list);
    db_board_free(b);
    return 0;
}

/* The same arguments, for the JSON link. */
static void api_link(FILE *f, const compare_args *a)
{
    fputs("/api/compare", f);
    char sep = '?';
    if (a->n_names) {
        fputs("?names=", f);
        for (size_t i = 0; i < a->n_names; i++) {
            if (i)
                fputs("%2C", f);
            web_url_esc(f, a->names[i]);
        }
        sep = '&';
    }
    if (a->sweep) {
        fprintf(f, "%csweep=", sep);
        web_url_esc(f, a->sweep);
        sep = '&';
    }
    if (a->sort != CLI_SORT_BEST) {
        fprintf(f, "%csort=%s", sep, cli_sort_names[a->sort]);
        sep = '&';
    }
    if (a->grouped && !a->sweep)
        fprintf(f, "%cgroup=1", sep);
}

int web_page_compare(web_request *rq)
{
    compare_args a;
    int rc = parse(rq, &a);
    if (rc == SVC_EUSAGE) {
        free_args(&a);
        return web_error_page(rq, 400, svc_last_error());
    }
    if (rc < 0)
        return rc;
    cli_comparison *c = NULL;
    cli_curves *cv = NULL;
    db_filter f = filter_of(&a);
    rc = db_begin_read(rq->db);
    if (rc == 0 && (rc = cli_comparison_load_filter(rq->db, &f, a.sort, a.grouped, &c)) == 0 &&
        cli_comparison_count(c) <= WEB_MAX_PLOTTED)
        rc = cli_curves_load_filter(rq->db, &f, -1, a.x_seconds, NULL, &cv);
    if (rc == 0)
        rc = db_commit(rq->db);
    else
        db_rollback(rq->db);
    if (rc < 0) {
        free_args(&a);
        cli_comparison_free(c);
        cli_curves_free(cv);
        return svc_error(svc_from_db(rc), "%s", db_last_error());
    }
    FILE *out = rq->out;
    web_page_begin(rq, "Compare", WEB_NAV_COMPARE);
    fputs("<h1>Compare</h1>\n", out);
    rc = picker(rq, &a);
    size_t n = cli_comparison_count(c);
    if (rc == 0) {
        fprintf(out, "<p class=\"muted\" id=\"compare-count\">%zu run%s &middot; the table of "
                     "<code>epochd compare</code>, the best value of each column in bold &middot; <a href=\"",
                n, n == 1 ? "" : "s");
        api_link(out, &a);
        fputs("\">as JSON</a></p>\n<section id=\"compare\">\n", out);
        if (n)
            cli_comparison_print_html(c, out, "/runs/");
        else
            fputs("<p class=\"muted\">No run matches.</p>\n", out);
        fputs("</section>\n<h2>Curves</h2>\n", out);
        if (!cv)
            fprintf(out, "<p class=\"muted\">Pick at most %d runs to see their curves overlaid.</p>\n",
                    WEB_MAX_PLOTTED);
        else if (!cli_curves_count(cv))
            fputs("<p class=\"muted\">None of these runs has finished an epoch.</p>\n", out);
        else {
            fputs("<div class=\"plot\" id=\"curves\">", out);
            web_inline_svg(out, cli_curves_plot(cv, NULL));
            fputs("</div>\n", out);
        }
        web_page_end(rq);
    }
    free_args(&a);
    cli_comparison_free(c);
    cli_curves_free(cv);
    return rc;
}
