/* The state of the queue (`epochd status`): running and interrupted runs
 * with progress and ETA, the queue in its order, and the most recently
 * finished runs with their final metrics, read in one transaction. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/status.h"
#include "cli/text_table.h"

#define STALE_SECONDS 300.0 /* a running run silent this long is flagged */

/* Seconds since an ISO-8601 UTC timestamp; NAN if it does not parse. */
static double age_of(const char *iso)
{
    struct tm tm = {0};
    if (!iso || !strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm))
        return NAN;
    return difftime(time(NULL), timegm(&tm));
}

/* Remaining seconds of a run, or NAN when unknown. Time per epoch comes
 * from the epochs done so far (train + eval); before the first one ends,
 * from the training rate and the samples per epoch. */
double cli_status_eta(const db_run *r, const db_board_row *b)
{
    if (r->epochs_planned <= 0)
        return NAN;
    double f = 0.0;
    if (r->progress_epoch == b->epochs_done + 1 && isfinite(r->progress_fraction))
        f = r->progress_fraction;
    double left = (double)(r->epochs_planned - b->epochs_done) - f;
    if (left <= 0.0)
        return 0.0;
    double per_epoch = NAN;
    if (b->epochs_done > 0 && b->train_seconds > 0.0)
        per_epoch = b->train_seconds / (double)b->epochs_done;
    else if (r->samples_per_epoch > 0 && isfinite(r->progress_images_per_sec) && r->progress_images_per_sec > 0)
        per_epoch = (double)r->samples_per_epoch / r->progress_images_per_sec;
    return left * per_epoch;
}

/* The board comes by id ascending (db_leaderboard): a binary search keeps a
 * page of thousands of runs linear. */
static const db_board_row *row_of(const db_board *b, int64_t id)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->rows[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < b->n && b->rows[lo].id == id ? &b->rows[lo] : NULL;
}

const db_board_row *cli_status_board_row(const db_board *b, int64_t id)
{
    return b ? row_of(b, id) : NULL;
}

int cli_plans_load(db *d, db_plan_list **out)
{
    return db_plans_list(d, DB_STATUS_BIT(DB_QUEUED) | DB_STATUS_BIT(DB_RUNNING), out);
}

const db_plan *cli_plan_find(const db_plan_list *l, int64_t id)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (l->plans[i].run_id == id)
            return &l->plans[i];
    return NULL;
}

const db_plan *cli_status_plan(const cli_status *s, int64_t id) { return cli_plan_find(s->plans, id); }

time_t cli_status_time(const char *iso)
{
    struct tm tm = {0};
    if (!iso || !strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm))
        return -1;
    return timegm(&tm);
}

/* A duration in the note's few characters: 40s, 4m (to the nearest
 * minute), 2h05m, 3d04h. */
static void short_duration(char *buf, size_t len, double s)
{
    long long t = llround(s < 0 ? 0 : s);
    if (t < 60)
        snprintf(buf, len, "%llds", t);
    else if ((t + 30) / 60 < 60)
        snprintf(buf, len, "%lldm", (t + 30) / 60);
    else if (t < 86400)
        snprintf(buf, len, "%lldh%02lldm", t / 3600, (t % 3600) / 60);
    else
        snprintf(buf, len, "%lldd%02lldh", t / 86400, (t % 86400) / 3600);
}

/* A moment in local time: 11:52 today, Tue 11:52 within a week, else the date. */
static void clock_time(char *buf, size_t len, time_t t, time_t now)
{
    struct tm a, b;
    localtime_r(&t, &a);
    localtime_r(&now, &b);
    if (a.tm_year == b.tm_year && a.tm_yday == b.tm_yday)
        strftime(buf, len, "%H:%M", &a);
    else if (t > now && t - now < 6 * 86400)
        strftime(buf, len, "%a %H:%M", &a);
    else
        strftime(buf, len, "%Y-%m-%d %H:%M", &a);
}

void cli_status_plan_note(char *buf, size_t len, const char *note, const db_plan *p, time_t now)
{
    char base[160];
    snprintf(base, sizeof base, "%s", note && *note ? note : "waiting");
    base[strcspn(base, "\r\n")] = '\0';
    if (!p || !p->device) {
        snprintf(buf, len, "%s", base);
        return;
    }
    char where[48] = "", start[96], finish[48] = "", cpu[64] = "", d[24];
    if (!strcasestr(base, p->device)) /* "waiting for a CPU slot" names the cpu */
        snprintf(where, sizeof where, "on %s ", p->device);
    time_t s = cli_status_time(p->start_at), f = cli_status_time(p->finish_at);
    if (s < 0) {
        snprintf(start, sizeof start, "%sstart unknown", where);
    } else if (difftime(s, now) <= 1) {
        snprintf(start, sizeof start, "expected to start %snow", where);
    } else {
        short_duration(d, sizeof d, difftime(s, now));
        snprintf(start, sizeof start, "expected to start %sin %s", where, d);
    }
    if (f >= 0) {
        char c[32];
        clock_time(c, sizeof c, f, now);
        snprintf(finish, sizeof finish, ", finish %s", c);
    }
    if (isfinite(p->cpu_seconds) && strcmp(p->device, "cpu")) {
        short_duration(d, sizeof d, p->cpu_seconds);
        snprintf(cpu, sizeof cpu, "; on the CPU it would take %s", d);
    }
    snprintf(buf, len, "%s, %s%s%s", base, start, finish, cpu);
}

/* The first line of a message, cut to fit a table cell. */
static void one_line(char *buf, size_t len, const char *s)
{
    snprintf(buf, len, "%s", s ? s : "");
    buf[strcspn(buf, "\r\n")] = '\0';
    if (strlen(buf) > 72)
        strcpy(buf + 69, "...");
}

void cli_status_device(const db_run *r, char *buf, size_t len)
{
    if (r->status == DB_QUEUED)
        snprintf(buf, len, "(%s)", r->requested_device ? r->requested_device : "auto");
    else
        snprintf(buf, len, "%s", r->device ? r->device : "-");
}

const db_plan *cli_status_queued_plan(const db_run *r, const db_plan *plan)
{
    if (r->status != DB_QUEUED || !plan || !plan->device)
        return NULL;
    return r->note && !strncmp(r->note, "waiting for data", 16) ? NULL : plan;
}

/* The progress columns of one run, computed once for `epochd status` and
 * the web dashboard so that both show the same numbers. */
void cli_status_progress(const db_run *r, const db_board_row *br, const db_plan *plan, time_t now,
                         cli_progress *p)
{
    int64_t done = br ? br->epochs_done : 0;
    p->epochs_done = done;
    p->live = r->status == DB_RUNNING && r->progress_epoch == done + 1 && isfinite(r->progress_fraction);
    p->epoch = p->live ? r->progress_epoch : done;
    p->epoch_fraction = p->live ? r->progress_fraction : NAN;
    p->total_fraction = NAN;
    if (r->epochs_planned > 0)
        p->total_fraction =
            fmin(((double)done + (p->live ? r->progress_fraction : 0.0)) / (double)r->epochs_planned, 1.0);
    p->images_per_sec = r->status == DB_RUNNING && isfinite(r->progress_images_per_sec) ? r->progress_images_per_sec
                                                                                      : NAN;
    p->eta_seconds = r->status == DB_RUNNING && br ? cli_status_eta(r, br) : NAN;
    /* a queued run's expected end is the plan's */
    const db_plan *queued = cli_status_queued_plan(r, plan);
    time_t planned_end = queued ? cli_status_time(queued->finish_at) : -1;
    if (planned_end >= 0)
        p->eta_seconds = fmax(0.0, difftime(planned_end, now));
    char buf[64];
    p->note[0] = '\0';
    if (r->cancel_requested)
        snprintf(p->note, sizeof p->note, "cancel requested");
    else if (r->status == DB_RUNNING && age_of(r->progress_updated_at) > STALE_SECONDS) {
        cli_fmt_duration(buf, sizeof buf, age_of(r->progress_updated_at));
        snprintf(p->note, sizeof p->note, "no progress for %s", buf);
    } else if (queued) {
        char own[160];
        one_line(own, sizeof own, r->note);
        cli_status_plan_note(p->note, sizeof p->note, own, queued, now);
    } else if (r->slurm_job_id > 0 && r->slurm_state && (r->status == DB_QUEUED || r->status == DB_RUNNING))
        snprintf(p->note, sizeof p->note, "Slurm job %lld %s%s%s%s", (long long)r->slurm_job_id, r->slurm_state,
                 r->slurm_reason ? " (" : "", r->slurm_reason ? r->slurm_reason : "", r->slurm_reason ? ")" : "");
    else if (r->note)
        one_line(p->note, sizeof p->note, r->note);
    else if (r->status == DB_INTERRUPTED)
        snprintf(p->note, sizeof p->note, "resumes when the service starts");
}

enum { A_ID, A_NAME, A_STATUS, A_DEVICE, A_EPOCH, A_EPOCH_PCT, A_TOTAL_PCT, A_IPS, A_ETA, A_FINISH, A_NOTE, A_COLS };

/* When a run is expected to end (local time), from its ETA or its plan. */
static void finish_cell(char *buf, size_t len, double eta, time_t now)
{
    if (!isfinite(eta)) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = now + (time_t)llround(eta);
    struct tm a, b;
    localtime_r(&t, &a);
    localtime_r(&now, &b);
    strftime(buf, len, a.tm_year == b.tm_year && a.tm_yday == b.tm_yday ? "%H:%M" : "%m-%d %H:%M", &a);
}

static int active_table(const cli_status *s, const db_run_list *l, FILE *f)
{
    static const struct {
        const char *t;
        int right;
    } cols[A_COLS] = {{"id", 1},     {"name", 0},   {"status", 0}, {"device", 0}, {"epoch", 1},  {"epoch%", 1},
                      {"total%", 1}, {"img/s", 1},  {"eta", 1},    {"finish", 1}, {"note", 0}};
    const db_board *b = s->board;
    time_t now = time(NULL);
    cli_table *t = cli_table_new(A_COLS);
    int rc = !t;
    for (size_t c = 0; c < A_COLS && !rc; c++)
        rc = cli_table_column(t, c, cols[c].t, cols[c].right);
    for (size_t i = 0; i < l->n && !rc; i++) {
        const db_run *r = &l->runs[i];
        cli_progress pr;
        cli_status_progress(r, row_of(b, r->id), cli_status_plan(s, r->id), now, &pr);
        char buf[64];
        rc = cli_table_row(t) || cli_table_setf(t, A_ID, 0, "%lld", (long long)r->id) ||
             cli_table_set(t, A_NAME, r->name, 0) || cli_table_set(t, A_STATUS, db_status_name(r->status), 0);
        cli_status_device(r, buf, sizeof buf);
        rc = rc || cli_table_set(t, A_DEVICE, buf, 0);
        if (r->epochs_planned > 0)
            snprintf(buf, sizeof buf, "%lld/%lld", (long long)pr.epoch, (long long)r->epochs_planned);
        else
            snprintf(buf, sizeof buf, "%lld", (long long)pr.epoch);
        rc = rc || cli_table_set(t, A_EPOCH, buf, 0);
        if (pr.live)
            rc = rc || cli_table_setf(t, A_EPOCH_PCT, 0, "%.0f%%", 100.0 * pr.epoch_fraction);
        else
            rc = rc || cli_table_set(t, A_EPOCH_PCT, "-", 0);
        if (isfinite(pr.total_fraction))
            rc = rc || cli_table_setf(t, A_TOTAL_PCT, 0, "%.1f%%", 100.0 * pr.total_fraction);
        else
            rc = rc || cli_table_set(t, A_TOTAL_PCT, "-", 0);
        if (isfinite(pr.images_per_sec))
            cli_fmt_count(buf, sizeof buf, llround(pr.images_per_sec));
        else
            snprintf(buf, sizeof buf, "-");
        rc = rc || cli_table_set(t, A_IPS, buf, 0);
        cli_fmt_duration(buf, sizeof buf, pr.eta_seconds);
        rc = rc || cli_table_set(t, A_ETA, buf, 0);
        finish_cell(buf, sizeof buf, pr.eta_seconds, now);
        rc = rc || cli_table_set(t, A_FINISH, buf, 0) || cli_table_set(t, A_NOTE, pr.note, 0);
    }
    rc = rc || cli_table_print(t, f, 0);
    cli_table_free(t);
    return rc ? -1 : 0;
}

enum { F_ID, F_NAME, F_STATUS, F_EPOCHS, F_BEST, F_FINAL, F_TIME, F_FINISHED, F_ERROR, F_COLS };

static int finished_table(const db_run_list *l, const db_board *b, FILE *f)
{
    static const struct {
        const char *t;
        int right;
    } cols[F_COLS] = {{"id", 1},   {"name", 0},  {"status", 0},   {"epochs", 1}, {"best_acc@epoch", 1},
                      {"final_acc", 1}, {"time", 1}, {"finished", 0}, {"error", 0}};
    cli_table *t = cli_table_new(F_COLS);
    int rc = !t;
    for (size_t c = 0; c < F_COLS && !rc; c++)
        rc = cli_table_column(t, c, cols[c].t, cols[c].right);
    for (size_t i = 0; i < l->n && !rc; i++) {
        const db_run *r = &l->runs[i];
        const db_board_row *br = row_of(b, r->id);
        char buf[128];
        rc = cli_table_row(t) || cli_table_setf(t, F_ID, 0, "%lld", (long long)r->id) ||
             cli_table_set(t, F_NAME, r->name, 0) || cli_table_set(t, F_STATUS, db_status_name(r->status), 0);
        if (!br) /* the run changed between the two reads: show what we have */
            continue;
        if (br->epochs_planned > 0)
            rc = rc || cli_table_setf(t, F_EPOCHS, 0, "%lld/%lld", (long long)br->epochs_done,
                                      (long long)br->epochs_planned);
        else
            rc = rc || cli_table_setf(t, F_EPOCHS, 0, "%lld", (long long)br->epochs_done);
        if (isfinite(br->best_test_acc))
            rc = rc || cli_table_setf(t, F_BEST, 0, "%.4f @%lld", br->best_test_acc, (long long)br->best_epoch);
        else
            rc = rc || cli_table_set(t, F_BEST, "-", 0);
        if (isfinite(br->final_test_acc))
            rc = rc || cli_table_setf(t, F_FINAL, 0, "%.4f", br->final_test_acc);
        else
            rc = rc || cli_table_set(t, F_FINAL, "-", 0);
        if (br->epochs_done > 0)
            cli_fmt_duration(buf, sizeof buf, br->train_seconds);
        else
            snprintf(buf, sizeof buf, "-");
        rc = rc || cli_table_set(t, F_TIME, buf, 0);
        /* "2026-11-28T03:04:05.123Z" -> "2026-11-28 03:04:05" */
        snprintf(buf, sizeof buf, "%.19s", r->finished_at ? r->finished_at : "-");
        if (strlen(buf) > 10 && buf[10] == 'T')
            buf[10] = ' ';
        rc = rc || cli_table_set(t, F_FINISHED, buf, 0);
        one_line(buf, sizeof buf, r->error);
        rc = rc || cli_table_set(t, F_ERROR, buf, 0);
    }
    rc = rc || cli_table_print(t, f, 0);
    cli_table_free(t);
    return rc ? -1 : 0;
}

void cli_status_free(cli_status *s)
{
    db_run_list_free(s->running);
    db_run_list_free(s->queued);
    db_run_list_free(s->finished);
    db_board_free(s->board);
    db_plan_list_free(s->plans);
    memset(s, 0, sizeof *s);
}

int cli_status_load(db *d, bool all, long recent, cli_status *s)
{
    memset(s, 0, sizeof *s);
    s->all = all;
    db_filter fr = {.statuses = DB_STATUS_BIT(DB_RUNNING) | DB_STATUS_BIT(DB_INTERRUPTED)};
    db_filter fq = {.statuses = DB_STATUS_BIT(DB_QUEUED)};
    db_filter ff = {.statuses = DB_FINISHED_STATUSES, .limit = all ? 0 : (size_t)recent};
    /* one read transaction: the lists and their metrics agree */
    int rc = db_begin_read(d);
    if (!rc && !(rc = db_runs_list(d, &fr, DB_ORDER_ID, &s->running)) &&
        !(rc = db_runs_list(d, &fq, DB_ORDER_QUEUE, &s->queued)) &&
        !(all || recent > 0 ? (rc = db_runs_list(d, &ff, DB_ORDER_RECENT, &s->finished)) : 0))
        rc = db_leaderboard(d, NULL, &s->board);
    if (!rc)
        rc = cli_plans_load(d, &s->plans);
    if (rc) {
        db_rollback(d);
    } else {
        rc = db_commit(d);
    }
    if (rc)
        cli_status_free(s);
    return rc;
}

int cli_status_print(const cli_status *s, const char *db_file, FILE *f)
{
    size_t n_int = 0;
    for (size_t i = 0; i < s->running->n; i++)
        n_int += s->running->runs[i].status == DB_INTERRUPTED;
    fprintf(f, "%s: %zu running, %zu queued, %zu interrupted, %zu runs in all\n", db_file,
            s->running->n - n_int, s->queued->n, n_int, s->board->n);
    int bad = 0;
    if (s->running->n + s->queued->n) {
        /* one table: running and interrupted first, then the queue in its order */
        db_run_list both = {.n = s->running->n + s->queued->n};
        both.runs = malloc(both.n * sizeof *both.runs);
        if (!both.runs)
            return -1;
        /* an empty list may have no array at all: memcpy from NULL is undefined even for 0 bytes */
        if (s->running->n)
            memcpy(both.runs, s->running->runs, s->running->n * sizeof *both.runs);
        if (s->queued->n)
            memcpy(both.runs + s->running->n, s->queued->runs, s->queued->n * sizeof *both.runs);
        fprintf(f, "\n");
        bad |= active_table(s, &both, f);
        free(both.runs); /* the rows themselves belong to the two lists */
    }
    if (s->finished && s->finished->n) {
        fprintf(f, "\n%s finished:\n", s->all ? "all" : "recently");
        bad |= finished_table(s->finished, s->board, f);
    }
    if (s->board->n == 0)
        fprintf(f, "no runs yet\n");
    return bad ? -1 : 0;
}
