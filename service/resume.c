/* Start-up recovery: runs that a previous service left `interrupted` (it
 * was stopped) or `running` (it crashed, or was killed) go back to the
 * queue and resume from their last checkpoint, keeping the epochs already
 * recorded. The executor first settles workers that may still be alive (a
 * stale worker of the crashed service is stopped, so that two processes
 * never write one run's checkpoint; a foreground `epochd run` is left alone). */
#include <stdlib.h>

#include "service/log.h"
#include "service/internal.h"

void svc_resume_orphans(svc_service *sv)
{
    if (sv->exec->ops->queues) { /* a cluster's jobs are adopted by id (attempt_cluster.c) */
        svc_cluster_resume(sv);
        return;
    }
    db_run_list *l = NULL;
    if (db_runs_to_resume(sv->db, &l) < 0) {
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
        if (verdict[i] == SVC_RECOVER_LEAVE)
            continue;
        int rc;
        if (r->cancel_requested) {
            rc = db_run_finish(sv->db, r->id, DB_CANCELLED, "cancelled by request");
            if (rc == 0)
                svc_log_run(SVC_LOG_INFO, r->id, "cancelled by request (it was %s)", db_status_name(r->status));
        } else {
            const char *note = r->status == DB_RUNNING ? "resuming: the previous service ended while it ran"
                                                       : "resuming after the service was stopped";
            rc = db_run_requeue(sv->db, r->id, note);
            if (rc == 0)
                svc_log_run(SVC_LOG_INFO, r->id, "%s (%s)", note, r->name);
        }
        if (rc < 0)
            svc_log_run(SVC_LOG_ERR, r->id, "cannot put it back in the queue: %s", db_last_error());
    }
    free(verdict);
    db_run_list_free(l);
}
