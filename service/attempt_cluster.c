/* What a queueing executor (a Slurm cluster) adds to an attempt: the cluster
 * places runs (a cap on jobs in flight is all that is counted here); a run
 * stays `queued` while its job is pending and becomes `running` when the
 * job really starts; the job id and state are recorded; an interruption by
 * the cluster (preemption, time limit, node failure, a scancel from outside)
 * or a stop of the service resumes from the checkpoint without spending an
 * attempt (with its own cap); a refused submission fails at once; and at
 * start-up the jobs a previous service left are adopted, never submitted
 * again. The local executor never calls any of this. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/jobs.h"
#include "service/error.h"
#include "service/internal.h"
#include "service/log.h"

/* What a run's device asks of the cluster: a GPU for cuda (any GPU: the
 * cluster chooses, and CUDA_VISIBLE_DEVICES says which), a GPU or the CPU
 * for auto as slurm.auto_device says, else CPUs. */
static void cluster_placement(const svc_service *sv, const char *requested, svc_placement *p)
{
    bool gpu = requested && (!strncmp(requested, "cuda", 4) || (!strcmp(requested, "auto") && sv->cfg.slurm.auto_gpu));
    if (!requested || !*requested)
        gpu = sv->cfg.slurm.auto_gpu;
    memset(p, 0, sizeof *p);
    p->gpu = gpu ? 0 : -1;
    p->ordinal = gpu ? 0 : -1;
    snprintf(p->device, sizeof p->device, "%s", gpu ? "cuda" : "cpu");
}

svc_place_result svc_cluster_place(svc_service *sv, const db_run *r, svc_placement *p, char *note, size_t len)
{
    if (r->slurm_job_id > 0) {
        /* a job no service follows (its state could not be read at the start): never a second one */
        snprintf(note, len, "waiting: Slurm job %lld of a previous service could not be checked; restart the service",
                 (long long)r->slurm_job_id);
        return SVC_PLACE_NEVER;
    }
    if (sv->n_attempts >= sv->cfg.slurm.max_jobs) {
        snprintf(note, len, "waiting: %d Slurm jobs in flight (slurm.max_jobs)", sv->n_attempts);
        return SVC_PLACE_BUSY;
    }
    cluster_placement(sv, r->requested_device, p);
    return SVC_PLACE_OK;
}

int svc_cluster_submitted(svc_attempt *w, const db_run *r)
{
    /* a start after an interruption continues that attempt */
    w->attempts = r->attempts + (r->resume_pending ? 0 : 1);
    w->preemptions = r->preemptions;
    w->recorded = true; /* whatever becomes of the job is recorded */
    svc_log_run(SVC_LOG_INFO, r->id, "submitting %s to Slurm (%s), attempt %lld of %d%s", w->name, w->place.device,
                (long long)w->attempts, w->sv->cfg.max_attempts,
                r->attempts > 0 ? ", resuming from its checkpoint" : "");
    return 0;
}

void svc_cluster_adopted(svc_attempt *w, const db_run *r)
{
    w->recorded = true;
    w->preemptions = r->preemptions;
    w->running = r->status == DB_RUNNING && r->slurm_job_id > 0;
    w->job_id = r->slurm_job_id;
    w->attempts = w->running || r->resume_pending ? (r->attempts > 0 ? r->attempts : 1) : r->attempts + 1;
}

static void mark_running(svc_attempt *w, int64_t start_time, const char *node)
{
    svc_service *sv = w->sv;
    char device[300];
    if (node && *node)
        snprintf(device, sizeof device, "%s@%s", w->place.device, node);
    else
        snprintf(device, sizeof device, "%s", w->place.device);
    if (db_job_started(sv->db, w->run_id, w->job_id, device, start_time) < 0) {
        svc_log_run(SVC_LOG_ERR, w->run_id, "cannot record that Slurm job %lld started: %s", (long long)w->job_id,
                    db_last_error());
        return;
    }
    w->running = true;
    svc_log_run(SVC_LOG_INFO, w->run_id, "Slurm job %lld runs %s on %s, attempt %lld of %d", (long long)w->job_id,
                w->name, node && *node ? node : "a node", (long long)w->attempts, sv->cfg.max_attempts);
    svc_sched_status(sv);
}

void svc_cluster_on_state(void *ctx, const svc_job_state *st)
{
    svc_attempt *w = ctx;
    svc_service *sv = w->sv;
    if (st->job_id <= 0) { /* sbatch failed in a way another try may cure */
        char note[200];
        snprintf(note, sizeof note, "waiting: %s", st->reason ? st->reason : "sbatch failed");
        if (db_run_set_note(sv->db, w->run_id, note) < 0)
            svc_log_run(SVC_LOG_WARNING, w->run_id, "cannot record a note: %s", db_last_error());
        return;
    }
    if (st->job_id != w->job_id) {
        w->job_id = w->worker_id = st->job_id;
        if (db_job_submitted(sv->db, w->run_id, st->job_id) < 0) {
            svc_log_run(SVC_LOG_ERR, w->run_id, "cannot record Slurm job %lld (%s); cancelling it",
                        (long long)st->job_id, db_last_error());
            w->recorded = false; /* its end records nothing */
            svc_attempt_stop(w, true, "the job could not be recorded");
            return;
        }
        svc_log_run(SVC_LOG_INFO, w->run_id, "submitted as Slurm job %lld", (long long)st->job_id);
    }
    if (st->running && !w->running) {
        mark_running(w, st->start_time, st->node);
        return;
    }
    if (db_job_state(sv->db, w->run_id, w->job_id, st->state, st->reason, st->node) < 0)
        svc_log_run(SVC_LOG_WARNING, w->run_id, "cannot record Slurm job %lld's state: %s", (long long)w->job_id,
                    db_last_error());
    svc_log_run(SVC_LOG_DEBUG, w->run_id, "Slurm job %lld: %s%s%s%s", (long long)w->job_id, st->state,
                st->reason ? " (" : "", st->reason ? st->reason : "", st->reason ? ")" : "");
}

void svc_cluster_on_restarted(void *ctx, int64_t restart)
{
    svc_attempt *w = ctx;
    svc_service *sv = w->sv;
    /* the worker before the requeue ended: a new one reports from the start */
    w->have_final = false;
    w->proto_error[0] = '\0';
    w->running = false;
    w->preemptions++;
    char note[200];
    snprintf(note, sizeof note, "Slurm requeued job %lld (preemption or node failure); it resumes from its checkpoint",
             (long long)w->job_id);
    if (db_job_restarted(sv->db, w->run_id, w->job_id, restart, note) < 0)
        svc_log_run(SVC_LOG_ERR, w->run_id, "cannot record the requeue of Slurm job %lld: %s", (long long)w->job_id,
                    db_last_error());
    int cap = sv->cfg.slurm.max_preemptions;
    if (w->preemptions > cap && !w->fail_reason[0]) {
        snprintf(w->fail_reason, sizeof w->fail_reason,
                 "interrupted %lld times by Slurm, more than slurm.max_preemptions (%d)", (long long)w->preemptions,
                 cap);
        svc_log_run(SVC_LOG_ERR, w->run_id, "%s; cancelling Slurm job %lld", w->fail_reason, (long long)w->job_id);
        svc_attempt_stop(w, false, NULL);
    }
}

/* The job's end on its row: state and exit code. */
static void record_job_end(svc_attempt *w, const svc_job_end *end)
{
    if (w->job_id <= 0)
        return;
    char code[48];
    snprintf(code, sizeof code, "%lld:%d", (long long)(end->exit_status < 0 ? 0 : end->exit_status), end->term_signal);
    if (db_job_ended(w->sv->db, w->run_id, w->job_id, end->cluster_state, end->cluster_state ? code : NULL,
                     end->end_time) < 0)
        svc_log_run(SVC_LOG_WARNING, w->run_id, "cannot record the end of Slurm job %lld: %s", (long long)w->job_id,
                    db_last_error());
}

static void finish(svc_attempt *w, db_status to, const char *error, const char *what)
{
    if (db_run_finish(w->sv->db, w->run_id, to, error) < 0)
        svc_log_run(SVC_LOG_ERR, w->run_id, "cannot record that the run %s: %s", what, db_last_error());
}

static void left(svc_attempt *w, db_status to, const char *note, db_resume resume, int64_t preempted)
{
    if (db_run_job_left(w->sv->db, w->run_id, to, note, resume, preempted) < 0)
        svc_log_run(SVC_LOG_ERR, w->run_id, "cannot put the run back in the queue: %s", db_last_error());
}

void svc_cluster_record_end(svc_attempt *w, const svc_job_end *end, bool done, bool interrupted, bool retryable,
                            const char *why)
{
    svc_service *sv = w->sv;
    long long job = (long long)w->job_id;
    const char *state = end->cluster_state ? end->cluster_state : "gone";
    char msg[4400];
    if (end->detached) {
        svc_log_run(SVC_LOG_INFO, w->run_id, "left running as Slurm job %lld; the next start adopts it", job);
        return;
    }
    record_job_end(w, end);
    bool ran = w->running || (end->cluster_state && done);
    if (done && !w->running)
        mark_running(w, 0, NULL); /* it ran between two looks */
    if (done) {
        finish(w, DB_DONE, NULL, "is done");
        svc_log_run(SVC_LOG_INFO, w->run_id,
                    "done: %lld epochs, best test accuracy %.4f at epoch %lld (Slurm job %lld)",
                    (long long)w->final.epochs_done, w->final.best_test_acc, (long long)w->final.best_epoch, job);
    } else if (end->rejected) {
        snprintf(msg, sizeof msg, "Slurm refused the job: %s", end->rejected);
        finish(w, DB_FAILED, msg, "failed");
        svc_log_run(SVC_LOG_ERR, w->run_id, "failed: %s", msg);
    } else if (w->cancel) {
        finish(w, DB_CANCELLED, w->cancel_reason, "was cancelled");
        svc_log_run(SVC_LOG_INFO, w->run_id, "cancelled (%s; Slurm job %lld %s); its checkpoint stays",
                    w->cancel_reason, job, state);
    } else if (w->fail_reason[0]) {
        finish(w, DB_FAILED, w->fail_reason, "failed");
        svc_log_run(SVC_LOG_ERR, w->run_id, "failed: %s", w->fail_reason);
    } else if (sv->stopping && (interrupted || w->term_sent || !ran)) {
        if (ran) {
            left(w, DB_INTERRUPTED, NULL, DB_RESUME_SAME, 0);
            svc_log_run(SVC_LOG_INFO, w->run_id, "interrupted (Slurm job %lld %s); it resumes at the next start", job,
                        state);
        } else {
            left(w, DB_QUEUED, NULL, DB_RESUME_KEEP, 0);
            svc_log_run(SVC_LOG_INFO, w->run_id, "Slurm job %lld cancelled before it started; still queued", job);
        }
    } else if (end->preempted || interrupted) {
        int cap = sv->cfg.slurm.max_preemptions;
        int64_t n = w->preemptions + 1;
        const char *how = !strcmp(state, "TIMEOUT")     ? "its time limit"
                          : !strcmp(state, "PREEMPTED") ? "preemption"
                          : !strcmp(state, "NODE_FAIL") ? "a node failure"
                          : !strcmp(state, "CANCELLED") ? "scancel from outside the service"
                                                        : "a signal from outside the service";
        if (n > cap) {
            snprintf(msg, sizeof msg,
                     "interrupted %lld times by Slurm (the last: Slurm job %lld, %s), more than "
                     "slurm.max_preemptions (%d)",
                     (long long)n, job, how, cap);
            finish(w, DB_FAILED, msg, "failed");
            svc_log_run(SVC_LOG_ERR, w->run_id, "failed: %s", msg);
        } else {
            snprintf(msg, sizeof msg, "interrupted by %s (Slurm job %lld %s); resuming from its checkpoint", how, job,
                     state);
            left(w, DB_QUEUED, msg, ran ? DB_RESUME_SAME : DB_RESUME_KEEP, 1);
            svc_log_run(SVC_LOG_WARNING, w->run_id, "%s; no attempt spent (interruption %lld of at most %d)", msg,
                        (long long)n, cap);
        }
    } else {
        char reason[4300];
        if (!end->cluster_state && !w->have_final && !w->proto_error[0])
            snprintf(reason, sizeof reason, "Slurm job %lld ended and Slurm keeps no record of how", job);
        else
            snprintf(reason, sizeof reason, "%s (Slurm job %lld %s)", why, job, state);
        if (!ran && w->job_id > 0 && end->cluster_state)
            mark_running(w, 0, NULL); /* it failed on a node: an attempt all the same */
        if (retryable && w->failures + 1 < sv->cfg.max_attempts) {
            snprintf(msg, sizeof msg, "attempt %lld of %d failed: %s; retrying from the last checkpoint",
                     (long long)w->failures + 1, sv->cfg.max_attempts, reason);
            left(w, DB_QUEUED, msg, DB_RESUME_NEW, 0);
            svc_log_run(SVC_LOG_WARNING, w->run_id, "%s", msg);
        } else {
            if (retryable) {
                size_t l = strlen(reason);
                snprintf(reason + l, sizeof reason - l, " (after %lld attempts)", (long long)w->failures + 1);
            }
            finish(w, DB_FAILED, reason, "failed");
            svc_log_run(SVC_LOG_ERR, w->run_id, "failed: %s", reason);
        }
    }
}

bool svc_cluster_leave(svc_attempt *w)
{
    svc_service *sv = w->sv;
    if (!sv->exec->ops->queues || !sv->exec->ops->detach || sv->cfg.slurm.on_stop != SVC_ON_STOP_LEAVE || !w->job)
        return false;
    if (sv->exec->ops->detach(w->job) < 0) {
        svc_log_run(SVC_LOG_WARNING, w->run_id, "%s", svc_last_error());
        return false;
    }
    return true;
}

void svc_cluster_resume(svc_service *sv)
{
    db_run_list *l = NULL;
    db_filter f = {.statuses = DB_STATUS_BIT(DB_QUEUED) | DB_STATUS_BIT(DB_RUNNING) | DB_STATUS_BIT(DB_INTERRUPTED)};
    if (db_runs_list(sv->db, &f, DB_ORDER_QUEUE, &l) < 0) {
        svc_log(SVC_LOG_ERR, "cannot list runs to resume: %s", db_last_error());
        return;
    }
    svc_recovery *verdict = calloc(l->n ? l->n : 1, sizeof *verdict);
    if (!verdict) {
        svc_log(SVC_LOG_ERR, "out of memory resuming runs");
        db_run_list_free(l);
        return;
    }
    sv->exec->ops->recover(sv->exec, l->runs, l->n, verdict);
    for (size_t i = 0; i < l->n; i++) {
        const db_run *r = &l->runs[i];
        int rc = 0;
        if (verdict[i] == SVC_RECOVER_LEAVE)
            continue;
        if (verdict[i] == SVC_RECOVER_RESUME && r->slurm_job_id > 0 &&
            db_job_state(sv->db, r->id, r->slurm_job_id, "GONE", "Slurm keeps no record of it", NULL) < 0)
            svc_log_run(SVC_LOG_WARNING, r->id, "cannot record that Slurm job %lld is gone: %s",
                        (long long)r->slurm_job_id, db_last_error());
        if (verdict[i] == SVC_RECOVER_ADOPT) {
            if (r->status == DB_INTERRUPTED)
                rc = db_run_job_left(sv->db, r->id, DB_QUEUED, NULL, DB_RESUME_KEEP, 0);
            svc_placement p;
            cluster_placement(sv, r->requested_device, &p);
            db_run *fresh = NULL;
            if (rc == 0 && (rc = db_run_get(sv->db, r->id, &fresh)) == 0 && svc_attempt_adopt(sv, fresh, &p) < 0)
                svc_log_run(SVC_LOG_ERR, r->id, "cannot adopt its Slurm job: %s", svc_last_error());
            db_run_free(fresh);
            if (rc < 0)
                svc_log_run(SVC_LOG_ERR, r->id, "cannot adopt its Slurm job: %s", db_last_error());
            continue;
        }
        if (r->cancel_requested && r->status != DB_QUEUED) {
            rc = db_run_finish(sv->db, r->id, DB_CANCELLED, "cancelled by request");
            if (rc == 0)
                svc_log_run(SVC_LOG_INFO, r->id, "cancelled by request (it was %s)", db_status_name(r->status));
        } else if (r->status == DB_RUNNING) {
            /* its job is gone: the previous service's end counts as an interruption */
            rc = db_run_job_left(sv->db, r->id, DB_QUEUED, "resuming: the previous service ended while it ran",
                                 DB_RESUME_SAME, 0);
            if (rc == 0)
                svc_log_run(SVC_LOG_INFO, r->id, "resuming: the previous service ended while it ran (%s)", r->name);
        } else if (r->status == DB_INTERRUPTED) {
            rc = db_run_job_left(sv->db, r->id, DB_QUEUED, "resuming after the service was stopped", DB_RESUME_KEEP, 0);
            if (rc == 0)
                svc_log_run(SVC_LOG_INFO, r->id, "resuming after the service was stopped (%s)", r->name);
        } else if (r->slurm_job_id > 0) { /* queued with a job that is gone */
            rc = db_run_job_left(sv->db, r->id, DB_QUEUED, NULL, DB_RESUME_KEEP, 0);
        }
        if (rc < 0)
            svc_log_run(SVC_LOG_ERR, r->id, "cannot put it back in the queue: %s", db_last_error());
    }
    free(verdict);
    db_run_list_free(l);
}
