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

/* A waiting run's note, written when it changed. */
typedef struct pending_note {
    const db_run *run;
    svc_place_result result;
    char text[256];
} pending_note;

static bool note_changed(const pending_note *n) { return !n->run->note || strcmp(n->run->note, n->text); }

static void note_write(svc_service *sv, const pending_note *n)
{
    const db_run *r = n->run;
    if (!note_changed(n))
        return;
    if (db_run_set_note(sv->db, r->id, n->text) < 0)
        svc_log_run(SVC_LOG_WARNING, r->id, "cannot record a note: %s", db_last_error());
    else if (n->result == SVC_PLACE_NEVER)
        svc_log_run(SVC_LOG_WARNING, r->id, "%s", n->text);
    else
        svc_log_run(SVC_LOG_DEBUG, r->id, "%s", n->text);
}

/* The pass's plan and the waiting runs' notes in one transaction: `epochd
 * status` reads both in one snapshot and never sees a plan without the note
 * that goes with it. The runs started in the pass changed status before
 * it (svc_attempt_start); their plan rows are written in it. */
static void notes_record(svc_service *sv, const db_run_list *l, const svc_plan_out *plan, const pending_note *notes,
                         size_t n)
{
    size_t changed = 0;
    for (size_t i = 0; i < n; i++)
        changed += note_changed(&notes[i]);
    /* most passes change no note: they take no write lock for them (the plan
     * takes it only for rows that moved) */
    bool open = changed && db_begin(sv->db) == 0; /* else each write is its own transaction */
    if (plan)
        svc_placement_record(sv, l, plan);
    for (size_t i = 0; i < n; i++)
        note_write(sv, &notes[i]);
    if (open && db_commit(sv->db) < 0) {
        svc_log(SVC_LOG_WARNING, "cannot record the plan and the notes: %s", db_last_error());
        svc_placement_unwritten(sv); /* the notes are compared with the database: rewritten next pass */
    }
}

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
    pending_note *notes = calloc(l->n ? l->n : 1, sizeof *notes);
    size_t n_notes = 0;
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
        pending_note one, *pn = notes ? &notes[n_notes] : &one;
        pn->run = r;
        char *note = pn->text;
        const size_t note_len = sizeof pn->text;
        bool cluster = sv->exec->ops->queues; /* the cluster places its jobs (attempt_cluster.c) */
        svc_place_result pr = SVC_PLACE_BUSY;
        if (svc_datafetch_waits(sv, r->id, note, note_len))
            ; /* waiting for data: its fetch is under way */
        else if (hold[0])
            snprintf(note, note_len, "%s", hold);
        else if (cluster)
            pr = svc_cluster_place(sv, r, &p, note, note_len);
        else if (plan)
            pr = svc_placement_result(&plan[i], &p, note, note_len);
        else
            pr = svc_slots_place(&sv->slots, r->requested_device, &p, note, note_len);
        if (pr == SVC_PLACE_OK) {
            if (svc_attempt_start(sv, r, &p) == 0) {
                if (!cluster)
                    svc_slots_take(&sv->slots, &p);
                continue;
            }
            svc_log_run(SVC_LOG_ERR, r->id, "cannot start a worker: %s", svc_last_error());
            snprintf(hold, sizeof hold, "waiting: a worker could not be started (see the service log)");
            snprintf(note, note_len, "%s", hold);
            pr = SVC_PLACE_BUSY;
        }
        waiting++;
        pn->result = pr;
        if (notes)
            n_notes++;
        else /* out of memory for the list: the note is written now */
            note_write(sv, pn);
    }
    notes_record(sv, l, plan, notes, n_notes);
    free(notes);
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
