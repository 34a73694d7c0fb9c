/* `epochd status --json`: the same state as the tables, one JSON object -
 * for scripts and the dashboard. Times are ISO-8601 UTC as in the
 * database, durations in seconds, unknown values null:
 *
 *   {"db": FILE, "now": TIME,
 *    "running": [RUN...],   running and interrupted runs, by id
 *    "queued": [RUN...],    in the order the scheduler takes them
 *    "finished": [DONE...]} the most recent first (as --recent/--all say)
 *
 * RUN: id, name, status, device, requested_device, priority, epochs_done,
 * epochs_planned, progress {epoch, fraction} | null, images_per_sec,
 * eta_seconds (running: from its measured epochs; queued: until its
 * expected finish), finish_at, note (as the table shows it, the plan
 * included), cancel_requested, and plan {device, start_at, finish_at,
 * seconds, cpu_seconds, planned_at} | null (the service's plan: for a queued
 * run where and when it is expected to run, for a running one what was
 * expected when it started). DONE: id, name, status, epochs_done,
 * epochs_planned, best_test_acc, best_epoch, final_test_acc, train_seconds,
 * finished_at, error. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/status.h"

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }
static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static void iso(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static json_t *plan_json(const db_plan *p)
{
    if (!p || !p->device)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "device", str_or_null(p->device), "start_at",
                     str_or_null(p->start_at), "finish_at", str_or_null(p->finish_at), "seconds",
                     real_or_null(p->seconds), "cpu_seconds", real_or_null(p->cpu_seconds), "planned_at",
                     str_or_null(p->planned_at));
}

static json_t *active_json(const cli_status *s, const db_run *r, time_t now)
{
    const db_plan *p = cli_status_plan(s, r->id);
    cli_progress pr; /* the numbers the table shows */
    cli_status_progress(r, cli_status_board_row(s->board, r->id), p, now, &pr);
    int64_t done = pr.epochs_done;
    bool live = pr.live;
    double eta = pr.eta_seconds;
    char fin[32];
    if (isfinite(eta))
        iso(now + (time_t)llround(eta), fin);
    char note[400] = "";
    if (cli_status_queued_plan(r, p))
        cli_status_plan_note(note, sizeof note, r->note, p, now);
    else if (r->note)
        snprintf(note, sizeof note, "%s", r->note);
    json_t *progress = live ? json_pack("{s:I, s:f}", "epoch", (json_int_t)r->progress_epoch, "fraction",
                                        r->progress_fraction)
                            : json_null();
    return json_pack("{s:I, s:s, s:s, s:o, s:o, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o}", "id",
                     (json_int_t)r->id, "name", r->name, "status", db_status_name(r->status), "device",
                     str_or_null(r->device), "requested_device", str_or_null(r->requested_device), "priority",
                     (json_int_t)r->priority, "epochs_done", (json_int_t)done, "epochs_planned",
                     r->epochs_planned > 0 ? json_integer(r->epochs_planned) : json_null(), "progress", progress,
                     "images_per_sec",
                     real_or_null(r->status == DB_RUNNING ? r->progress_images_per_sec : NAN), "eta_seconds",
                     real_or_null(eta), "finish_at", isfinite(eta) ? json_string(fin) : json_null(), "note",
                     note[0] ? json_string(note) : json_null(), "cancel_requested", r->cancel_requested != 0, "plan",
                     plan_json(p));
}

static json_t *finished_json(const cli_status *s, const db_run *r)
{
    const db_board_row *b = cli_status_board_row(s->board, r->id);
    return json_pack("{s:I, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)r->id, "name",
                     r->name, "status", db_status_name(r->status), "epochs_done",
                     (json_int_t)(b ? b->epochs_done : 0), "epochs_planned",
                     r->epochs_planned > 0 ? json_integer(r->epochs_planned) : json_null(), "best_test_acc",
                     real_or_null(b ? b->best_test_acc : NAN), "best_epoch",
                     b && b->best_epoch > 0 ? json_integer(b->best_epoch) : json_null(), "final_test_acc",
                     real_or_null(b ? b->final_test_acc : NAN), "train_seconds",
                     real_or_null(b ? b->train_seconds : NAN), "finished_at", str_or_null(r->finished_at), "error",
                     str_or_null(r->error));
}

static int add_runs(json_t *arr, const cli_status *s, const db_run_list *l, bool active, time_t now)
{
    for (size_t i = 0; l && i < l->n; i++) {
        json_t *o = active ? active_json(s, &l->runs[i], now) : finished_json(s, &l->runs[i]);
        if (!o || json_array_append_new(arr, o) < 0)
            return -1;
    }
    return 0;
}

int cli_status_print_json(const cli_status *s, const char *db_file, FILE *f)
{
    time_t now = time(NULL);
    char when[32];
    iso(now, when);
    json_t *running = json_array(), *queued = json_array(), *finished = json_array();
    json_t *root = json_pack("{s:s, s:s, s:o, s:o, s:o}", "db", db_file, "now", when, "running", running, "queued",
                             queued, "finished", finished);
    int rc = root ? 0 : -1;
    if (!rc)
        rc = add_runs(running, s, s->running, true, now);
    if (!rc)
        rc = add_runs(queued, s, s->queued, true, now);
    if (!rc)
        rc = add_runs(finished, s, s->finished, false, now);
    if (!rc) {
        char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        rc = text && fprintf(f, "%s\n", text) >= 0 ? 0 : -1;
        free(text);
    }
    json_decref(root);
    return rc;
}
