/* What the Slurm executor writes to and reads from Slurm, as pure functions
 * tested without a cluster: the sbatch command line and batch script
 * (slurm_submit.c), and the answers of sbatch, squeue, sacct and the
 * jobcomp file (slurm_parse.c). The executor itself is exec_slurm.c. */
#ifndef SVC_SLURM_H
#define SVC_SLURM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema/spec.h"
#include "service/config.h"
#include "service/executor.h"

/* ---- answers ---- */

/* One job as Slurm describes it. */
typedef struct svc_slurm_job {
    int64_t job_id;
    char state[32];               /* PENDING, RUNNING, COMPLETED, TIMEOUT, ...; "" unknown */
    char reason[96];              /* why it waits: Resources, Priority, ...; "" none */
    char node[256];               /* where it runs or ran; "" none */
    int64_t start_time, end_time; /* unix seconds; 0 unknown */
    int exit_code;                /* the batch script's exit status; -1 unknown */
    int exit_signal;              /* the signal that ended it; 0 none */
    int64_t restarts;             /* times Slurm requeued it */
    char name[256];
    char comment[1024];
} svc_slurm_job;

/* squeue's --Format for svc_squeue_parse: '|' after each field but the
 * last (a comment may hold anything), no padding. */
#define SVC_SQUEUE_FORMAT                                                                                              \
    "JobID:|,State:|,Reason:|,StartTime:|,EndTime:|,exit_code:|,RestartCnt:|,NodeList:|,Name:|,Comment:"

/* squeue -h -o SVC_SQUEUE_FORMAT's lines into a malloc'd array; lines
 * that do not parse are skipped. 0 or SVC_ENOMEM. */
int svc_squeue_parse(const char *out, svc_slurm_job **jobs, size_t *n);
/* The jobcomp/filetxt log's last record of job_id into *job: 1 found, 0 not. */
int svc_jobcomp_find(const char *text, int64_t job_id, svc_slurm_job *job);
/* `sacct -n -X -P -j ID -o JobID,State,ExitCode,Start,End,NodeList`: 1 found, 0 not. */
int svc_sacct_parse(const char *out, int64_t job_id, svc_slurm_job *job);
/* `scontrol show config`: the value of key ("JobCompLoc") into buf; 1 found, 0 not. */
int svc_slurm_config_value(const char *out, const char *key, char *buf, size_t len);

/* Slurm's local time "2026-12-06T12:59:13" as unix seconds; 0 for N/A,
 * Unknown, None or anything else. */
int64_t svc_slurm_time(const char *s);
/* sbatch --parsable's answer "123" or "123;cluster"; -1 if it is not one. */
int64_t svc_sbatch_job_id(const char *out);
/* An sbatch failure that another try may cure (the controller is busy or
 * unreachable, a limit on submitted jobs); the others are final. */
bool svc_sbatch_transient(const char *err);
/* The run id in a job name epochd-<id>-<name>; 0 if it is not one. */
int64_t svc_slurm_run_id(const char *job_name);

/* Job states: over (any final state), running (its processes run), and
 * ended by the cluster rather than by its worker (time limit, preemption,
 * node failure, boot failure, deadline). */
bool svc_slurm_state_ended(const char *state);
bool svc_slurm_state_running(const char *state);
bool svc_slurm_state_preempted(const char *state);

/* ---- submission ---- */

/* The batch script: `job.sh DIR WORKER...` runs the worker with its stdout
 * in DIR/job-<job id>.<restart>.out, adding --resume when Slurm restarted
 * the job. */
extern const char svc_slurm_script[];

/* The one-line sbatch error worth keeping: the last line of stderr that
 * says "error", else the last line. */
void svc_sbatch_error_line(const char *err, char *buf, size_t len);

/* sbatch's command line for one launch: the job's name, comment, files,
 * requeue policy, resources (GPU or CPUs) and the spec's and the service's
 * settings (the spec's win), then the script with the run's folder and
 * the worker's command (after worker_prefix). *argv is a malloc'd vector of
 * malloc'd strings (svc_strv_free). 0 or SVC_ENOMEM. */
typedef struct svc_sbatch_job {
    const svc_launch *launch;
    const spec_slurm *spec;      /* the run's slurm: section */
    const svc_slurm_config *cfg; /* the service's slurm: settings */
    const char *const *prefix;   /* worker_prefix */
    int n_prefix;
    const char *state_dir; /* identifies the service's jobs (--comment) */
    const char *script;    /* the batch script's path */
    bool gpu;              /* ask for a GPU (cfg->gpu_option), else CPUs */
} svc_sbatch_job;
int svc_sbatch_argv(const svc_sbatch_job *j, char ***argv);
/* The --comment that marks the jobs of the service with this state folder. */
void svc_slurm_comment(const char *state_dir, char *buf, size_t len);

#endif
