/* Running the Slurm commands: a child with its output captured and a time
 * limit, right away or on the loop's thread pool (slurm_cmd.c). */
#ifndef SVC_SLURM_CMD_H
#define SVC_SLURM_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct svc_cmd_result {
    int status;      /* exit status; -1 when it did not exit by itself */
    int term_signal; /* the signal that ended it; 0 otherwise */
    char *out, *err; /* what it wrote (NUL-terminated; "" when nothing) */
    size_t out_len, err_len;
    char error[256]; /* why it could not run or was killed; "" otherwise */
} svc_cmd_result;

/* Runs argv (found on PATH) with env (NULL: ours), stdin /dev/null, and
 * waits for it, killing it after timeout_ms; at most max_out bytes of its
 * stdout are kept. 0 when it ran (whatever its status), SVC_EIO when it
 * could not be started or was killed (res->error says which), SVC_ENOMEM. */
int svc_cmd_run(const char *const *argv, char *const *env, int timeout_ms, size_t max_out, svc_cmd_result *res);
void svc_cmd_result_free(svc_cmd_result *r);

/* The same on the loop's thread pool; cb runs on the loop with svc_cmd_run's
 * code and result (freed after cb returns). argv and env are copied. */
typedef void (*svc_cmd_cb)(void *ctx, int rc, svc_cmd_result *res);
int svc_cmd_start(uv_loop_t *loop, const char *const *argv, const char *const *env, int timeout_ms, size_t max_out,
                  svc_cmd_cb cb, void *ctx);

/* slurm_query.c: blocking questions (start-up recovery, the thread pool). */
struct svc_slurm_job;
/* Every job of this user Slurm still lists (squeue --me) into a malloc'd
 * array. 0, or SVC_EIO / SVC_ENOMEM with svc_last_error set. */
int svc_slurm_list_mine(struct svc_slurm_job **rows, size_t *n);
/* How finished job_id ended, from sacct or else the jobcomp/filetxt log:
 * 1 found, 0 not. */
int svc_slurm_find_finished(int64_t job_id, struct svc_slurm_job *job);

/* NULL-terminated string vectors: a deep copy (NULL when out of memory), freeing. */
char **svc_strv_dup(const char *const *v);
void svc_strv_free(char **v);

#endif
