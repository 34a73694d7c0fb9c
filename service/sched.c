/* The scheduler: queued runs in priority-then-age order (db_runs_queued)
 * onto devices as the placement policy plans them (placement.c), a note on
 * each run that has to wait, cancel requests from `epochd cancel`, and the
 * STATUS= line for systemd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/service.h"
#include "service/log.h"
#include "service/notify.h"
#include "service/error.h"
#include "service/internal.h"
#include "service/placement.h"

static void sched_pass(svc_service *sv)
{
    if (!sv->started || sv->stopping)
        return;
    db_run_list *l = NULL;
    if (db_runs_queued(sv->db, &l) < 0) {
        svc_log(SVC_LOG_ERR, "cannot read the queue: %s", db_last_error());
        return;
    }
    /* the placement policy's plan for the whole queue (placement.c); NULL: the first free slot */
    svc_plan_out *plan = svc_placement_plan(sv, l);
    int64_t waiting = 0;
    bool spawn_failed = false;
    for (size_t i = 0; i < l->n; i++) {
        const db_run *r = &l->runs[i];
        if (svc_attempt_find(sv, r->id))
            continue;
        if (r->cancel_requested) {
            if (db_run_finish(sv->db, r->id, DB_CANCELLED, "cancelled by request") == 0)
                svc_log_run(SVC_LOG_INFO, r->id, "cancelled by request before it started");
            continue;
        }
        svc_placement p;
        char note[256];
        svc_place_result pr = spawn_failed ? SVC_PLACE_BUSY
                              : plan       ? svc_placement_result(&plan[i], &p, note, sizeof note)
                                           : svc_slots_place(&sv->slots, r->requested_device, &p, note, sizeof note);
        if (pr == SVC_PLACE_OK) {
            if (svc_attempt_start(sv, r, &p) == 0) {
                svc_slots_take(&sv->slots, &p);
                continue;
            }
            /* try again at the next poll */
            svc_log_run(SVC_LOG_ERR, r->id, "cannot start a worker: %s", svc_last_error());
            spawn_failed = true;
            snprintf(note, sizeof note, "waiting: a worker could not be started (see the service log)");
        } else if (spawn_failed) {
            waiting++;
            continue;
        }
        waiting++;
        if (!r->note || strcmp(r->note, note)) {
            if (db_run_set_note(sv->db, r->id, note) < 0)
                svc_log_run(SVC_LOG_WARNING, r->id, "cannot record a note: %s", db_last_error());
            else if (pr == SVC_PLACE_NEVER)
                svc_log_run(SVC_LOG_WARNING, r->id, "%s", note);
            else
                svc_log_run(SVC_LOG_DEBUG, r->id, "%s", note);
        }
    }
    free(plan);
    db_run_list_free(l);
    sv->n_queued = waiting;
    svc_sched_status(sv);
}

static void on_sched(uv_timer_t *t)
{
    sched_pass(t->data);
}

void svc_sched_request(svc_service *sv)
{
    if (!sv->stopping && !uv_is_active((uv_handle_t *)&sv->sched_timer))
        uv_timer_start(&sv->sched_timer, on_sched, 0, 0);
}

void svc_sched_poll(svc_service *sv)
{
    if (!sv->started || sv->stopping)
        return;
    int64_t *ids = NULL;
    size_t n = 0;
    if (db_runs_cancel_requested(sv->db, &ids, &n) < 0) {
        svc_log(SVC_LOG_WARNING, "cannot read cancel requests: %s", db_last_error());
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        svc_attempt *w = svc_attempt_find(sv, ids[i]);
        if (w) {
            if (!w->cancel) {
                svc_log_run(SVC_LOG_INFO, ids[i], "cancel requested: stopping its worker (pid %lld)",
                            (long long)w->worker_id);
                svc_attempt_stop(w, true, "cancelled by request");
            }
            continue;
        }
        db_run *r = NULL;
        if (db_run_get(sv->db, ids[i], &r) < 0)
            continue;
        /* a running run without a worker here belongs to someone else (epochd run) */
        if (r->status == DB_QUEUED || r->status == DB_INTERRUPTED) {
            if (db_run_finish(sv->db, r->id, DB_CANCELLED, "cancelled by request") == 0)
                svc_log_run(SVC_LOG_INFO, r->id, "cancelled by request");
            else
                svc_log_run(SVC_LOG_ERR, r->id, "cannot cancel: %s", db_last_error());
        }
        db_run_free(r);
    }
    free(ids);
    sched_pass(sv);
}

void svc_sched_status(svc_service *sv)
{
    char st[512];
    int n = snprintf(st, sizeof st, "STATUS=%lld queued, %d running", (long long)sv->n_queued, sv->n_attempts);
    int shown = 0;
    for (svc_attempt *w = sv->attempts; w && n > 0 && (size_t)n < sizeof st - 80; w = w->next) {
        if (shown++ == 3) {
            n += snprintf(st + n, sizeof st - (size_t)n, "; ...");
            break;
        }
        n += snprintf(st + n, sizeof st - (size_t)n, "; run %lld %s %lld/%lld epochs on %s", (long long)w->run_id,
                      w->name, (long long)w->epochs_done, (long long)w->epochs_planned, w->place.device);
    }
    if (sv->stopping)
        snprintf(st, sizeof st, "STATUS=stopping: %d worker%s left", sv->n_attempts, sv->n_attempts == 1 ? "" : "s");
    if (strcmp(st, sv->last_status)) {
        snprintf(sv->last_status, sizeof sv->last_status, "%s", st);
        svc_notify(st);
    }
}
