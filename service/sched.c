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
#include "service/datafetch.h"
#include "service/error.h"
#include "service/internal.h"
#include "service/observe_hooks.h"
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
    /* runs whose dataset is being fetched wait outside the plan (datafetch.c) */
    svc_datafetch_scan(sv, l);
    /* the placement policy's plan for the whole queue (placement.c); NULL: the
     * first free slot. A cluster's runs are placed by the cluster. */
    svc_plan_out *plan = sv->exec->ops->queues ? NULL : svc_placement_plan(sv, l);
    int64_t waiting = 0;
    /* why no run starts in this pass ("": they may): a full disk, or a
     * worker that could not be started (retried at the next poll) */
    char hold[256] = "";
    svc_guard_disk_low(sv, hold, sizeof hold);
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
        bool cluster = sv->exec->ops->queues; /* the cluster places its jobs (attempt_cluster.c) */
        svc_place_result pr = SVC_PLACE_BUSY;
        if (svc_datafetch_waits(sv, r->id, note, sizeof note))
            ; /* waiting for data: its fetch is under way */
        else if (hold[0])
            snprintf(note, sizeof note, "%s", hold);
        else if (cluster)
            pr = svc_cluster_place(sv, r, &p, note, sizeof note);
        else if (plan)
            pr = svc_placement_result(&plan[i], &p, note, sizeof note);
        else
            pr = svc_slots_place(&sv->slots, r->requested_device, &p, note, sizeof note);
        if (pr == SVC_PLACE_OK) {
            if (svc_attempt_start(sv, r, &p) == 0) {
                if (!cluster)
                    svc_slots_take(&sv->slots, &p);
                continue;
            }
            svc_log_run(SVC_LOG_ERR, r->id, "cannot start a worker: %s", svc_last_error());
            snprintf(hold, sizeof hold, "waiting: a worker could not be started (see the service log)");
            snprintf(note, sizeof note, "%s", hold);
            pr = SVC_PLACE_BUSY;
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
    if (!sv->started || sv->stopping || !svc_guard_db_present(sv))
        return;
    svc_attempt_record_pending(sv);
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
    svc_observe_slots(sv);
    char st[512];
    int running = 0; /* a cluster's pending jobs are still queued */
    for (svc_attempt *w = sv->attempts; w; w = w->next)
        running += !sv->exec->ops->queues || w->running;
    long long queued = (long long)(sv->n_queued + sv->n_attempts - running);
    int n = snprintf(st, sizeof st, "STATUS=%lld queued, %d running", queued, running);
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
