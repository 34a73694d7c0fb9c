/* /metrics in Prometheus's text exposition format (version 0.0.4): what the
 * database says (runs by status, epochs, images, running runs' rate and
 * epoch, the queue's oldest run) and, inside the service, its own counters
 * and device slots (service/observe.h). Every family has HELP and TYPE;
 * label values are escaped as the format says. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/status.h"
#include "db/totals.h"
#include "epochd_config.h"
#include "service/error.h"
#include "service/observe.h"
#include "web/internal.h"

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped; bytes that
 * are not UTF-8 become '?'. */
static void label(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        if (*p == '\\' || *p == '"') {
            fputc('\\', f);
            fputc(*p++, f);
        } else if (*p == '\n') {
            fputs("\\n", f);
            p++;
        } else if (*p < 0x80) {
            fputc(*p++, f);
        } else {
            size_t len = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0, k = 1;
            while (len && k < len && (p[k] & 0xc0) == 0x80)
                k++;
            if (len && k == len) {
                fwrite(p, 1, len, f);
                p += len;
            } else {
                fputc('?', f);
                p++;
            }
        }
    }
}

static void number(FILE *f, double v)
{
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "+Inf" : "-Inf", f);
    else
        fprintf(f, "%.17g", v);
}

static double seconds_since(const char *iso)
{
    struct tm tm = {0};
    const char *rest = iso && *iso ? strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!rest)
        return NAN;
    double frac = *rest == '.' ? atof(rest) : 0.0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double age = (double)now.tv_sec + now.tv_nsec / 1e9 - ((double)timegm(&tm) + frac);
    return age > 0 ? age : 0.0;
}

static void run_labels(FILE *f, const db_run *r)
{
    fprintf(f, "{run=\"%lld\",name=\"", (long long)r->id);
    label(f, r->name);
    fputs("\",device=\"", f);
    label(f, r->device ? r->device : "");
    fputs("\"}", f);
}

/* Running runs only: their progress comes from their epochs, the plan (NULL
 * here) speaks only of queued ones. */
static void running_runs(FILE *f, const db_run_list *l, const db_board *b)
{
    family(f, "epochd_run_images_per_second", "gauge", "Training rate of each running run, as epochd status shows it.");
    for (size_t i = 0; i < l->n; i++) {
        cli_progress p;
        cli_status_progress(&l->runs[i], cli_status_board_row(b, l->runs[i].id), NULL, time(NULL), &p);
        if (!isfinite(p.images_per_sec))
            continue;
        fputs("epochd_run_images_per_second", f);
        run_labels(f, &l->runs[i]);
        fputc(' ', f);
        number(f, p.images_per_sec);
        fputc('\n', f);
    }
    family(f, "epochd_run_epoch", "gauge", "The epoch each running run is in (or has done, between epochs).");
    for (size_t i = 0; i < l->n; i++) {
        cli_progress p;
        cli_status_progress(&l->runs[i], cli_status_board_row(b, l->runs[i].id), NULL, time(NULL), &p);
        fputs("epochd_run_epoch", f);
        run_labels(f, &l->runs[i]);
        fprintf(f, " %lld\n", (long long)p.epoch);
    }
    family(f, "epochd_run_progress_ratio", "gauge", "How much of each running run is done, 0 to 1.");
    for (size_t i = 0; i < l->n; i++) {
        cli_progress p;
        cli_status_progress(&l->runs[i], cli_status_board_row(b, l->runs[i].id), NULL, time(NULL), &p);
        if (!isfinite(p.total_fraction))
            continue;
        fputs("epochd_run_progress_ratio", f);
        run_labels(f, &l->runs[i]);
        fputc(' ', f);
        number(f, p.total_fraction);
        fputc('\n', f);
    }
}

static void service_part(FILE *f, svc_service *s)
{
    svc_stats st;
    svc_service_stats(s, &st);
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"epochd_epochs_recorded_total", "Epoch rows the service wrote since it started (re-reports not counted).",
         offsetof(svc_stats, epochs_recorded)},
        {"epochd_images_trained_total", "Training images of the epochs recorded since the service started.",
         offsetof(svc_stats, images_trained)},
        {"epochd_worker_starts_total", "Workers started since the service started (resumes and retries included).",
         offsetof(svc_stats, worker_starts)},
        {"epochd_worker_restarts_total",
         "Runs queued again because a worker failed, crashed or was stopped from outside.",
         offsetof(svc_stats, worker_restarts)},
        {"epochd_database_write_errors_total", "Writes of the service that the database refused.",
         offsetof(svc_stats, db_write_errors)},
    };
    for (size_t i = 0; i < sizeof counters / sizeof *counters; i++) {
        family(f, counters[i].name, "counter", counters[i].help);
        fprintf(f, "%s %llu\n", counters[i].name,
                (unsigned long long)*(const uint64_t *)((const char *)&st + counters[i].off));
    }
    family(f, "epochd_device_slots", "gauge", "Run slots of each device the service uses.");
    for (int i = 0; i < st.n_devices; i++) {
        fputs("epochd_device_slots{device=\"", f);
        label(f, st.devices[i].device);
        fprintf(f, "\"} %d\n", st.devices[i].slots);
    }
    family(f, "epochd_device_busy_slots", "gauge", "Slots of each device with a run on them.");
    for (int i = 0; i < st.n_devices; i++) {
        fputs("epochd_device_busy_slots{device=\"", f);
        label(f, st.devices[i].device);
        fprintf(f, "\"} %d\n", st.devices[i].busy);
    }
}

int web_metrics(web_request *rq)
{
    db_totals t;
    db_run_list *running = NULL;
    db_board *board = NULL;
    db_filter fr = {.statuses = DB_STATUS_BIT(DB_RUNNING)};
    int rc = db_totals_get(rq->db, &t);
    if (rc == 0 && (rc = db_begin_read(rq->db)) == 0) {
        if ((rc = db_runs_list(rq->db, &fr, DB_ORDER_ID, &running)) == 0)
            rc = db_leaderboard(rq->db, &fr, &board);
        if (rc == 0)
            rc = db_commit(rq->db);
        else
            db_rollback(rq->db);
    }
    if (rc < 0) {
        db_run_list_free(running);
        db_board_free(board);
        return svc_error(svc_from_db(rc), "%s", db_last_error());
    }
    FILE *f = rq->out;
    rq->type = "text/plain; version=0.0.4; charset=utf-8";
    family(f, "epochd_info", "gauge", "This epochd: its version and whether the service runs (or a database alone).");
    fprintf(f, "epochd_info{version=\"%s\",mode=\"%s\"} 1\n", EPOCHD_VERSION, rq->srv->service ? "service" : "ui");
    family(f, "epochd_runs", "gauge", "Runs in the database by status.");
    for (int s = 0; s < DB_STATUS_COUNT; s++)
        fprintf(f, "epochd_runs{status=\"%s\"} %lld\n", db_status_name((db_status)s), (long long)t.runs[s]);
    family(f, "epochd_database_epochs", "gauge", "Epoch rows in the database.");
    fprintf(f, "epochd_database_epochs %lld\n", (long long)t.epochs);
    family(f, "epochd_database_images_trained", "gauge",
           "Training images of the epochs in the database (epochs times the run's samples per epoch, where known).");
    fprintf(f, "epochd_database_images_trained %lld\n", (long long)t.images);
    family(f, "epochd_queue_oldest_age_seconds", "gauge",
           "How long the oldest queued run has waited; 0 with no queue.");
    fputs("epochd_queue_oldest_age_seconds ", f);
    double age = t.oldest_queued_at[0] ? seconds_since(t.oldest_queued_at) : 0.0;
    number(f, isfinite(age) ? age : 0.0);
    fputc('\n', f);
    running_runs(f, running, board);
    if (rq->srv->service)
        service_part(f, rq->srv->service);
    db_run_list_free(running);
    db_board_free(board);
    return ferror(f) ? svc_error(SVC_ENOMEM, "cannot render the metrics") : 0;
}
