/* The scheduler: queued runs in priority-then-age order (db_runs_queued)
 * onto free device slots, a note on each run that has to wait, cancel
 * requests from `epochd cancel`, and the STATUS= line for systemd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/service.h"
#include "runner/log.h"
#include "runner/notify.h"
#include "runner/serve.h"

static void sched_pass(run_serve *sv)
{
    if (!sv->started || sv->stopping)
        return;
    db_run_list *l = NULL;
    if (db_runs_queued(sv->db, &l) < 0) {
        run_log(RUN_LOG_ERR, "cannot read the queue: %s", db_last_error());
        return;
    }
    int64_t waiting = 0;
    bool spawn_failed = false;
    for (size_t i = 0; i < l->n; i++) {
        const db_run *r = &l->runs[i];
        if (run_worker_find(sv, r->id))
            continue;
        if (r->cancel_requested) {
            if (db_run_finish(sv->db, r->id, DB_CANCELLED, "cancelled by request") == 0)
                run_log_run(RUN_LOG_INFO, r->id, "cancelled by request before it started");
            continue;
        }
        run_placement p;
        char note[256];
        run_place_result pr =
            spawn_failed ? RUN_PLACE_BUSY : run_slots_place(&sv->slots, r->requested_device, &p, note, sizeof note);
        if (pr == RUN_PLACE_OK) {
            if (run_worker_start(sv, r, &p) == 0) {
                run_slots_take(&sv->slots, &p);
                continue;
            }
            /* the reason is logged; try again at the next poll */
            spawn_failed = true;
            snprintf(note, sizeof note, "waiting: a worker could not be started (see the service log)");
        } else if (spawn_failed) {
            waiting++;
            continue;
        }
        waiting++;
        if (!r->note || strcmp(r->note, note)) {
            if (db_run_set_note(sv->db, r->id, note) < 0)
                run_log_run(RUN_LOG_WARNING, r->id, "cannot record a note: %s", db_last_error());
            else if (pr == RUN_PLACE_NEVER)
                run_log_run(RUN_LOG_WARNING, r->id, "%s", note);
            else
                run_log_run(RUN_LOG_DEBUG, r->id, "%s", note);
        }
    }
    db_run_list_free(l);
    sv->n_queued = waiting;
    run_sched_status(sv);
}

static void on_sched(uv_timer_t *t)
{
    sched_pass(t->data);
}

void run_sched_request(run_serve *sv)
{
    if (!sv->stopping && !uv_is_active((uv_handle_t *)&sv->sched_timer))
        uv_timer_start(&sv->sched_timer, on_sched, 0, 0);
}

void run_sched_poll(run_serve *sv)
{
    if (!sv->started || sv->stopping)
        return;
    int64_t *ids = NULL;
    size_t n = 0;
    if (db_runs_cancel_requested(sv->db, &ids, &n) < 0) {
        run_log(RUN_LOG_WARNING, "cannot read cancel requests: %s", db_last_error());
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        run_worker *w = run_worker_find(sv, ids[i]);
        if (w) {
            if (!w->cancel) {
                run_log_run(RUN_LOG_INFO, ids[i], "cancel requested: stopping its worker (pid %lld)",
                            (long long)w->pid);
                run_worker_stop(w, true, "cancelled by request");
            }
            continue;
        }
        db_run *r = NULL;
        if (db_run_get(sv->db, ids[i], &r) < 0)
            continue;
        /* a running run without a worker here belongs to someone else (epochd run) */
        if (r->status == DB_QUEUED || r->status == DB_INTERRUPTED) {
            if (db_run_finish(sv->db, r->id, DB_CANCELLED, "cancelled by request") == 0)
                run_log_run(RUN_LOG_INFO, r->id, "cancelled by request");
            else
                run_log_run(RUN_LOG_ERR, r->id, "cannot cancel: %s", db_last_error());
        }
        db_run_free(r);
    }
    free(ids);
    sched_pass(sv);
}

void run_sched_status(run_serve *sv)
{
    char st[512];
    int n = snprintf(st, sizeof st, "STATUS=%lld queued, %d running", (long long)sv->n_queued, sv->n_workers);
    int shown = 0;
    for (run_worker *w = sv->workers; w && n > 0 && (size_t)n < sizeof st - 80; w = w->next) {
        if (shown++ == 3) {
            n += snprintf(st + n, sizeof st - (size_t)n, "; ...");
            break;
        }
        n += snprintf(st + n, sizeof st - (size_t)n, "; run %lld %s %lld/%lld epochs on %s", (long long)w->run_id,
                      w->name, (long long)w->epochs_done, (long long)w->epochs_planned, w->place.device);
    }
    if (sv->stopping)
        snprintf(st, sizeof st, "STATUS=stopping: %d worker%s left", sv->n_workers, sv->n_workers == 1 ? "" : "s");
    if (strcmp(st, sv->last_status)) {
        snprintf(sv->last_status, sizeof sv->last_status, "%s", st);
        run_notify(st);
    }
}
