/* The service's settings: defaults, a YAML config file, command-line
 * overrides (docs/service.md lists every key). */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "schema/spec.h"

/* At most this many data_roots (each becomes two worker arguments). */
#define SVC_MAX_DATA_ROOTS 64

/* Where workers run (`executor:`). */
typedef enum svc_executor_kind {
    SVC_EXECUTOR_LOCAL = 0, /* child processes of the service, on its device slots */
    SVC_EXECUTOR_SLURM,     /* batch jobs of a Slurm cluster (exec_slurm.c, docs/slurm.md) */
} svc_executor_kind;

/* What a stop of the service does to its Slurm jobs (`slurm.on_stop`). */
typedef enum svc_on_stop {
    SVC_ON_STOP_INTERRUPT = 0, /* SIGTERM to each running job: interrupted, resumed at the next start */
    SVC_ON_STOP_LEAVE,         /* the jobs run on; the next start adopts them */
} svc_on_stop;

/* The `slurm:` settings (config_slurm.c). Strings NULL: Slurm's defaults. */
typedef struct svc_slurm_config {
    char *partition, *account, *qos, *time; /* defaults of a spec's slurm: keys */
    char **extra;                           /* sbatch words for every job */
    int n_extra;
    char **allowed_extra;                   /* sbatch option names a spec's slurm.extra may use */
    int n_allowed_extra;
    char *gpu_option;                       /* what a GPU run asks for: --gres=gpu:1 */
    int auto_gpu;                           /* 1: device auto asks for a GPU; 0: the CPU */
    int max_jobs;                           /* jobs submitted and not ended, at most */
    int max_preemptions;                    /* interruptions by the cluster before a run fails */
    svc_on_stop on_stop;
    int requeue;                            /* 1: sbatch --requeue (Slurm may requeue a job itself) */
    int64_t poll_ms;                        /* how often squeue is asked */
} svc_slurm_config;

/* Datasets that specs ask to download (config_data.c, `data: {download: true}`). */
struct ds_manifest;
typedef struct svc_data_config {
    char *root;                   /* data_root: where they go (default $EPOCHD_DATA_ROOT, else ./data) */
    char *mirror;                 /* data_mirror: a URL tried first (MIRROR/NAME/FILE); NULL: none */
    char *manifest_path;          /* data_manifest: entries that replace the built-in ones; NULL: none */
    struct ds_manifest *manifest; /* that file, read */
    int fetch_attempts;           /* failed fetches of a dataset before its runs fail */
    int retry_s;                  /* the wait after the first failure, doubled after each (at most 1 h) */
} svc_data_config;

typedef struct svc_config {
    char *config_path;   /* the file the settings came from; NULL: none */
    char *experiments;   /* the folder watched for specs */
    char *db_path;
    char *state_dir;
    char *devices;       /* "auto", "cpu" or GPU ordinals "0,1" */
    char **data_roots;   /* datasets must lie under one of these (none: anywhere) */
    int n_data_roots;
    char **worker_prefix; /* words run before `epochd worker ...` (srun, nice); none: the worker itself */
    int n_worker_prefix;
    int cpu_slots;       /* runs at once on the CPU (0: none) */
    int gpu_slots;       /* runs at once on each GPU */
    int placement;       /* svc_policy (service/plan.h): earliest_finish (default) or first_free */
    int max_attempts;    /* starts of a run before a retryable failure is final */
    int worker_threads;  /* CPU threads per CPU run; 0: online cores / cpu_slots */
    int64_t settle_ms;   /* a file is read once unchanged (and not open for writing) this long */
    int64_t stop_timeout_ms;  /* SIGTERM to workers, then SIGKILL after this */
    int64_t cancel_poll_ms;   /* how often `epochd cancel` requests are looked for */
    int64_t rescan_interval_ms; /* full rescan as a safety net for lost events; 0: off */
    int log_level;
    /* limits for the spec loader */
    size_t max_spec_bytes;
    int64_t max_params;
    size_t max_memory_bytes; /* 0: the loader's default (3/4 of physical memory) */
    size_t min_free_bytes;   /* no worker starts while the state folder's disk has less free; 0: no check */
    int max_depth;
    int64_t max_nodes;
    int64_t max_combinations;
    svc_executor_kind executor;
    svc_slurm_config slurm;
    /* the read-only dashboard (web/): off unless listen is set */
    char *http_listen;     /* "127.0.0.1:8080" (service/listen.h); NULL: off */
    char *http_token_file; /* a bearer token every request must carry; NULL: none */
    svc_data_config data;  /* data_root, data_mirror, data_manifest, data_fetch_attempts, data_retry_s */
} svc_config;

/* Settings given on the command line (NULL / negative: not given). */
typedef struct svc_overrides {
    const char *config;
    const char *experiments;
    const char *db_path;
    const char *state_dir;
    const char *devices;
    const char *http_listen; /* --http ADDR:PORT */
} svc_overrides;

/* Defaults that work from a checkout: experiments/ ($EPOCHD_EXPERIMENTS),
 * var/epochd.db ($EPOCHD_DB), var/state ($EPOCHD_STATE_DIR). */
int svc_config_defaults(svc_config *c);
/* Reads a config file over c. Unknown keys, wrong types and bad values are
 * errors; every one is reported as "file:line:col: key: message" into
 * diags. Relative paths are resolved against the file's folder. Returns 0,
 * SVC_EUSAGE when the file is invalid (diags say why; c unchanged), or
 * SVC_ENOMEM. */
int svc_config_load(svc_config *c, const char *path, spec_diags *diags);
/* Applies command-line overrides (relative paths stay relative to the
 * current directory). 0 or SVC_ENOMEM. */
int svc_config_override(svc_config *c, const svc_overrides *o);
/* Defaults, then the file (if any), then the overrides. */
int svc_config_build(svc_config *c, const svc_overrides *o, spec_diags *diags);
void svc_config_free(svc_config *c);

/* The spec loader's options from the config (pointers into c). */
void svc_config_spec_options(const svc_config *c, spec_options *o);
/* Threads for one CPU run. */
int svc_config_threads(const svc_config *c);

/* The data_* settings (config_data.c): defaults, a deep copy, freeing. */
int svc_data_config_defaults(svc_data_config *d);
int svc_data_config_copy(svc_data_config *dst, const svc_data_config *src);
void svc_data_config_free(svc_data_config *d);

/* The slurm: settings (config_slurm.c): defaults, a deep copy, freeing. */
int svc_slurm_config_defaults(svc_slurm_config *s);
int svc_slurm_config_copy(svc_slurm_config *dst, const svc_slurm_config *src);
void svc_slurm_config_free(svc_slurm_config *s);

#endif
