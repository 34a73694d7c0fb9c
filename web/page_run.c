/* One run's page: its facts and progress (as `epochd status` computes them),
 * its four curves (the plot of `epochd plot`, by the same code), its epochs,
 * checkpoints, the worker's last messages, the spec as it ran, and the CLI
 * commands that act on it - as links and text, never as actions. The part
 * that changes while it runs is `?part=live`, polled by the page's script;
 * `/runs/ID/curves.svg` is the plot alone. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/curves.h"
#include "cli/status.h"
#include "cli/text_table.h"
#include "service/error.h"
#include "service/observe.h"
#include "service/run_spec.h"
#include "web/internal.h"

typedef struct run_view {
    db_run *r;
    db_board *board; /* its one leaderboard row (n may be 0) */
    db_epoch *epochs;
    size_t n_epochs;
    cli_curves *curves;
    db_plan_list *plans; /* the planner's word, for a queued run's ETA and note */
    cli_progress p;
    char *spec;       /* the spec as it ran (a sweep combination's derived from its file); NULL: none */
    char *spec_error; /* why it could not be derived */
} run_view;

static void free_view(run_view *v)
{
    db_run_free(v->r);
    db_board_free(v->board);
    free(v->epochs);
    cli_curves_free(v->curves);
    db_plan_list_free(v->plans);
    free(v->spec);
    free(v->spec_error);
}

/* Everything from one read transaction; DB_ENOTFOUND when there is no such run. */
static int load(web_request *rq, int64_t id, run_view *v)
{
    memset(v, 0, sizeof *v);
    db_filter f = {.run_id = id};
    int rc = db_begin_read(rq->db);
    if (rc == 0 && (rc = db_run_get(rq->db, id, &v->r)) == 0 && (rc = db_leaderboard(rq->db, &f, &v->board)) == 0 &&
        (rc = db_epochs_get(rq->db, id, &v->epochs, &v->n_epochs)) == 0 &&
        (rc = cli_curves_load_filter(rq->db, &f, -1, false, NULL, &v->curves)) == 0)
        rc = cli_plans_load(rq->db, &v->plans);
    if (rc == 0 && svc_run_spec_text(rq->db, v->r, NULL, &v->spec, NULL) < 0) {
        v->spec_error = strdup(svc_last_error());
        if (!v->spec_error)
            rc = DB_ENOMEM;
    }
    if (rc == 0)
        rc = db_commit(rq->db);
    else
        db_rollback(rq->db);
    if (rc < 0) {
        free_view(v);
        return rc;
    }
    cli_status_progress(v->r, v->board->n ? &v->board->rows[0] : NULL, cli_plan_find(v->plans, id), time(NULL),
                        &v->p);
    return 0;
}

static const db_board_row *board(const run_view *v) { return v->board->n ? &v->board->rows[0] : NULL; }

static bool active(const db_run *r)
{
    return r->status == DB_QUEUED || r->status == DB_RUNNING || r->status == DB_INTERRUPTED;
}

static void fact(FILE *f, const char *name, const char *cls, const char *value)
{
    fprintf(f, "<dt>%s</dt><dd class=\"%s\">", name, cls);
    web_esc(f, value);
    fputs("</dd>", f);
}

static void facts(FILE *f, const run_view *v)
{
    const db_run *r = v->r;
    const db_board_row *b = board(v);
    const cli_progress *p = &v->p;
    char buf[128], t[64];
    fputs("<dl class=\"facts\">", f);
    fputs("<dt>status</dt><dd class=\"status\">", f);
    web_status_badge(f, r->status);
    fputs("</dd>", f);
    cli_status_device(r, buf, sizeof buf);
    fact(f, "device", "device", buf);
    if (r->epochs_planned > 0)
        snprintf(buf, sizeof buf, "%lld/%lld", (long long)p->epoch, (long long)r->epochs_planned);
    else
        snprintf(buf, sizeof buf, "%lld", (long long)p->epoch);
    fact(f, "epoch", "epoch", buf);
    fputs("<dt>progress</dt><dd class=\"progress\">", f);
    if (isfinite(p->total_fraction))
        fprintf(f, "<progress max=\"1\" value=\"%.4f\"></progress> <span class=\"pct\">%.1f%%</span>",
                p->total_fraction, 100.0 * p->total_fraction);
    else
        fputs("-", f);
    if (p->live)
        fprintf(f, " <span class=\"muted\">(epoch %.0f%%)</span>", 100.0 * p->epoch_fraction);
    fputs("</dd>", f);
    web_fmt_count(buf, sizeof buf, p->images_per_sec);
    fact(f, "img/s now", "rate", buf);
    cli_fmt_duration(buf, sizeof buf, p->eta_seconds);
    fact(f, "ETA", "eta", buf);
    web_fmt_acc(t, sizeof t, b ? b->best_test_acc : NAN);
    if (b && isfinite(b->best_test_acc))
        snprintf(buf, sizeof buf, "%s @ epoch %lld", t, (long long)b->best_epoch);
    else
        snprintf(buf, sizeof buf, "-");
    fact(f, "best test acc", "best-acc", buf);
    web_fmt_acc(buf, sizeof buf, b ? b->final_test_acc : NAN);
    fact(f, "final test acc", "final-acc", buf);
    web_fmt_acc(buf, sizeof buf, b ? b->lowest_test_loss : NAN);
    fact(f, "lowest test loss", "min-loss", buf);
    if (b && b->epochs_done > 0)
        cli_fmt_duration(buf, sizeof buf, b->train_seconds);
    else
        snprintf(buf, sizeof buf, "-");
    fact(f, "training time", "time", buf);
    web_fmt_count(buf, sizeof buf, b ? b->images_per_sec : NAN);
    fact(f, "mean img/s", "mean-rate", buf);
    if (r->params >= 0)
        cli_fmt_count(buf, sizeof buf, r->params);
    else
        snprintf(buf, sizeof buf, "-");
    fact(f, "params", "params", buf);
    fact(f, "template", "template", r->template_name ? r->template_name : "-");
    snprintf(buf, sizeof buf, "%lld", (long long)r->attempts);
    fact(f, "attempts", "attempts", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)r->priority);
    fact(f, "priority", "priority", buf);
    web_fmt_time(buf, sizeof buf, r->created_at);
    fact(f, "created (UTC)", "created", buf);
    web_fmt_time(buf, sizeof buf, r->started_at);
    fact(f, "started", "started", buf);
    web_fmt_time(buf, sizeof buf, r->finished_at);
    fact(f, "finished", "finished", buf);
    fact(f, "note", "note", p->note[0] ? p->note : "-");
    fputs("</dl>\n", f);
    if (r->error) {
        fputs("<pre class=\"error\" id=\"error\">", f);
        web_esc_lines(f, r->error);
        fputs("</pre>\n", f);
    }
}

static void epochs_table(FILE *f, const run_view *v)
{
    const db_board_row *b = board(v);
    fputs("<table class=\"data sortable\" id=\"epochs\">\n<thead><tr><th class=\"num\">epoch</th>"
          "<th class=\"num\">train loss</th><th class=\"num\">train acc</th><th class=\"num\">test loss</th>"
          "<th class=\"num\">test acc</th><th class=\"num\">lr</th><th class=\"num\">seconds</th>"
          "<th class=\"num\">img/s</th></tr></thead>\n<tbody>\n",
          f);
    char a[32], c[32], d[32], e[32], g[32];
    for (size_t i = 0; i < v->n_epochs; i++) {
        const db_epoch *ep = &v->epochs[i];
        web_fmt_acc(a, sizeof a, ep->train_loss);
        web_fmt_acc(c, sizeof c, ep->train_acc);
        web_fmt_acc(d, sizeof d, ep->test_loss);
        web_fmt_acc(e, sizeof e, ep->test_acc);
        web_fmt_count(g, sizeof g, ep->samples_per_sec);
        bool best = b && ep->epoch == b->best_epoch;
        fprintf(f, "<tr data-epoch=\"%lld\"><td class=\"num\">%lld</td><td class=\"num\">%s</td><td class=\"num\">%s"
                   "</td><td class=\"num\">%s</td><td class=\"num%s\">%s%s%s</td>",
                (long long)ep->epoch, (long long)ep->epoch, a, c, d, best ? " best" : "", best ? "<strong>" : "", e,
                best ? "</strong>" : "");
        if (isfinite(ep->lr))
            fprintf(f, "<td class=\"num\">%.3g</td>", ep->lr);
        else
            fputs("<td class=\"num\">-</td>", f);
        if (isfinite(ep->seconds))
            fprintf(f, "<td class=\"num\">%.1f</td>", ep->seconds);
        else
            fputs("<td class=\"num\">-</td>", f);
        fprintf(f, "<td class=\"num\">%s</td></tr>\n", g);
    }
    fputs("</tbody>\n</table>\n", f);
    if (!v->n_epochs)
        fputs("<p class=\"muted\">No epoch has ended yet.</p>\n", f);
}

static void messages(web_request *rq, const run_view *v)
{
    FILE *f = rq->out;
    fputs("<h2>The worker's last messages</h2>\n", f);
    if (!rq->srv->service) {
        fputs("<p class=\"muted\">The service keeps its workers' last lines in memory; this page reads the "
              "database alone (<code>epochd ui</code>). The service's log has them all "
              "(<code>journalctl -u epochd</code>).</p>\n",
              f);
        return;
    }
    char **lines = NULL;
    size_t n = 0;
    if (svc_service_messages(rq->srv->service, v->r->id, &lines, &n) < 0 || n == 0) {
        fputs("<p class=\"muted\" id=\"messages\">Nothing since the service started.</p>\n", f);
        return;
    }
    fputs("<pre id=\"messages\">", f);
    for (size_t i = 0; i < n; i++) {
        web_esc(f, lines[i]);
        fputc('\n', f);
        free(lines[i]);
    }
    free(lines);
    fputs("</pre>\n", f);
}

static void checkpoints(FILE *f, const run_view *v)
{
    const db_run *r = v->r;
    fputs("<h2>Checkpoints</h2>\n", f);
    if (!r->checkpoint) {
        fputs("<p class=\"muted\">None yet.</p>\n", f);
        return;
    }
    fputs("<dl class=\"facts\" id=\"checkpoints\"><dt>latest</dt><dd><code>", f);
    web_esc(f, r->checkpoint);
    fputs("</code>", f);
    struct stat st;
    if (stat(r->checkpoint, &st) == 0) {
        char size[48];
        cli_fmt_count(size, sizeof size, (int64_t)st.st_size);
        fprintf(f, " <span class=\"muted\">(%s bytes)</span>", size);
    }
    fputs("</dd>", f);
    if (r->best_checkpoint_epoch > 0)
        fprintf(f, "<dt>best</dt><dd>epoch %lld (<code>best.safetensors</code> beside it)</dd>",
                (long long)r->best_checkpoint_epoch);
    fputs("</dl>\n", f);
}

static void live_part(web_request *rq, const run_view *v)
{
    FILE *f = rq->out;
    const db_run *r = v->r;
    fprintf(f, "<section id=\"run-live\" data-live=\"/runs/%lld?part=live\" data-active=\"%d\">\n", (long long)r->id,
            active(r) ? 1 : 0);
    facts(f, v);
    fputs("<h2>Curves</h2>\n", f);
    if (cli_curves_count(v->curves)) {
        fprintf(f, "<div class=\"plot\" id=\"curves\">");
        web_inline_svg(f, cli_curves_plot(v->curves, NULL));
        fprintf(f, "</div>\n<p class=\"muted\"><a href=\"/runs/%lld/curves.svg\">curves.svg</a>, "
                   "as <code>epochd plot</code> draws it</p>\n",
                (long long)r->id);
    } else {
        fputs("<p class=\"muted\" id=\"curves\">No epoch has ended yet.</p>\n", f);
    }
    fputs("<div class=\"cols\"><div>\n<h2>Epochs</h2>\n", f);
    epochs_table(f, v);
    fputs("</div><div>\n", f);
    checkpoints(f, v);
    messages(rq, v);
    fputs("</div></div>\n</section>\n", f);
}

/* A word for a shell: single-quoted unless it is plain. */
static void shell_word(FILE *f, const char *s)
{
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.+=/:,") == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++)
        fputs(*s == '\'' ? "'\\''" : (char[2]){*s, 0}, f);
    fputc('\'', f);
}

/* One command: a link to its help, the command line, a copy button. */
static void command(web_request *rq, const char *help, const char *label, const char *fmt_a, const char *word,
                    const char *fmt_b)
{
    char *cmd = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&cmd, &len);
    if (!m)
        return;
    fputs(fmt_a, m);
    if (word)
        shell_word(m, word);
    fputs(fmt_b, m);
    fputs(" --db ", m);
    shell_word(m, rq->srv->db_path);
    if (fclose(m) != 0) {
        free(cmd);
        return;
    }
    FILE *f = rq->out;
    fprintf(f, "<li><a class=\"button\" href=\"/help#%s\">%s</a><code>", help, label);
    web_esc(f, cmd);
    fputs("</code> <button class=\"copy\" type=\"button\" hidden data-copy=\"", f);
    web_esc(f, cmd);
    fputs("\">copy</button></li>\n", f);
    free(cmd);
}

static void commands(web_request *rq, const run_view *v)
{
    const db_run *r = v->r;
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)r->id);
    fputs("<h2>Commands</h2>\n<p class=\"muted\">This page only reads. To act on the run, run these where "
          "the service runs:</p>\n<ul class=\"commands\">\n",
          rq->out);
    if (active(r))
        command(rq, "cancel", "cancel", "epochd cancel ", id, "");
    if (r->checkpoint) {
        command(rq, "export", "export", "epochd export ", id, " -o model.safetensors");
        if (r->best_checkpoint_epoch > 0)
            command(rq, "export", "export best", "epochd export ", id, " --best -o best.safetensors");
    }
    command(rq, "plot", "plot", "epochd plot ", r->name, " -o curves.svg");
    command(rq, "compare", "compare", "epochd compare ", r->name, "");
    command(rq, "status", "status", "epochd status", NULL, "");
    fputs("</ul>\n", rq->out);
}

static void spec_text(FILE *f, const run_view *v)
{
    const db_run *r = v->r;
    fputs("<h2>Spec</h2>\n<p class=\"muted\">", f);
    web_esc(f, r->spec_path ? r->spec_path : "(no file)");
    if (r->sweep) {
        fputs(" &middot; sweep values <code>", f);
        web_esc(f, r->sweep);
        fputs("</code>", f);
    }
    if (r->spec_sha256) {
        fputs(" &middot; sha256 <code>", f);
        web_esc(f, r->spec_sha256);
        fputs("</code>", f);
    }
    fputs("</p>\n<pre id=\"spec\">", f);
    if (v->spec_error) {
        fputs("(the spec cannot be shown: ", f);
        web_esc(f, v->spec_error);
        fputs(")", f);
    } else {
        web_esc_lines(f, v->spec ? v->spec : "(the spec's text was not recorded)");
    }
    fputs("</pre>\n", f);
}

int web_page_run(web_request *rq, int64_t id)
{
    run_view v;
    int rc = load(rq, id, &v);
    if (rc == DB_ENOTFOUND) {
        char msg[64];
        snprintf(msg, sizeof msg, "There is no run %lld.", (long long)id);
        return web_error_page(rq, 404, msg);
    }
    if (rc < 0)
        return svc_error(svc_from_db(rc), "%s", db_last_error());
    const char *part = web_arg(rq, "part");
    if (part && !strcmp(part, "live")) {
        live_part(rq, &v);
        free_view(&v);
        return 0;
    }
    FILE *f = rq->out;
    char title[200];
    snprintf(title, sizeof title, "%s (run %lld)", v.r->name, (long long)id);
    web_page_begin(rq, title, WEB_NAV_NONE);
    fputs("<h1><span id=\"run-name\">", f);
    web_esc(f, v.r->name);
    fprintf(f, "</span> <span class=\"muted\">run %lld</span></h1>\n", (long long)id);
    live_part(rq, &v);
    commands(rq, &v);
    spec_text(f, &v);
    web_page_end(rq);
    free_view(&v);
    return 0;
}

int web_run_svg(web_request *rq, int64_t id)
{
    run_view v;
    int rc = load(rq, id, &v);
    if (rc == DB_ENOTFOUND)
        return web_error_page(rq, 404, "There is no such run.");
    if (rc < 0)
        return svc_error(svc_from_db(rc), "%s", db_last_error());
    if (!cli_curves_count(v.curves)) {
        free_view(&v);
        return web_error_page(rq, 404, "The run has no epochs yet.");
    }
    rq->type = "image/svg+xml; charset=utf-8";
    rc = cli_plot_svg_write(rq->out, cli_curves_plot(v.curves, NULL));
    free_view(&v);
    return rc ? svc_error(SVC_EIO, "cannot write the plot") : 0;
}
