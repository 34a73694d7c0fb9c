/* Runs as batch jobs of a cluster (the service's executor slurm): the run's
 * current job on `runs` (slurm_job_id, slurm_state, slurm_reason), one
 * `slurm_jobs` row per submitted job, interruptions by the cluster that do
 * not spend an attempt. Only the service uses these; kept beside db.h so
 * that db.h stays the shared contract. Same conventions as db.h; every call
 * is one transaction. docs/database.md describes the columns. */
#ifndef DB_JOBS_H
#define DB_JOBS_H

#include <stdint.h>

#include "db/db.h"

/* sbatch accepted job_id for run_id, which is queued (or running, when the
 * cluster requeued it): it becomes the run's current job, PENDING, and gets
 * its slurm_jobs row (submitted now). */
int db_job_submitted(db *d, int64_t run_id, int64_t job_id);

/* What the cluster says of a job now: its state, why it waits (NULL: no
 * reason) and its node (NULL: none yet). On the job's row, and on the run
 * while it is the run's current job. */
int db_job_state(db *d, int64_t run_id, int64_t job_id, const char *state, const char *reason,
                 const char *node);

/* The job's worker started at start_unix (seconds since 1970; <= 0: now).
 * The run becomes `running` on `device` (from queued or interrupted, or from
 * running under another job), its first started_at is kept, and attempts
 * grows by one unless resume_pending says that this start continues an
 * interrupted attempt (resume_pending is cleared). A run already running
 * with this job is left as it is (an adopted job, a second report). */
int db_job_started(db *d, int64_t run_id, int64_t job_id, const char *device, int64_t start_unix);

/* The job has ended: its final state, exit code ("0:0", "130:0", "0:9";
 * NULL: unknown) and end time (<= 0: now), on its row only. */
int db_job_ended(db *d, int64_t run_id, int64_t job_id, const char *state, const char *exit_code,
                 int64_t end_unix);

/* The cluster requeued the job by itself for the restart-th time (a
 * preemption or a node failure): once per restart (later reports of the
 * same restart change nothing), preemptions + 1, and a running run goes
 * back to `queued` with note and resume_pending = 1 until the job runs
 * again. */
int db_job_restarted(db *d, int64_t run_id, int64_t job_id, int64_t restart, const char *note);

/* What resume_pending becomes when a job leaves a run unfinished. */
typedef enum db_resume {
    DB_RESUME_KEEP = -1, /* as it was (a job that never started) */
    DB_RESUME_NEW = 0,   /* the next start is a new attempt (after a failure: failures + 1) */
    DB_RESUME_SAME = 1,  /* the next start continues this attempt (an interruption) */
} db_resume;

/* The run's job ended without finishing the run: the run (queued, running
 * or interrupted) becomes `to` - DB_QUEUED (to be submitted again) or
 * DB_INTERRUPTED (the service stopped; it resumes at the next start) - with
 * note (NULL clears it), resume_pending as `resume` says, preemptions +
 * `preempted`, and no current job any more (the job keeps its slurm_jobs
 * row). */
int db_run_job_left(db *d, int64_t run_id, db_status to, const char *note, db_resume resume,
                    int64_t preempted);

#endif
