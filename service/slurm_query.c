/* Blocking questions to Slurm, for start-up recovery and for jobs squeue no
 * longer lists: this user's jobs (squeue --me), and how a finished job
 * ended (sacct with accounting, else the jobcomp/filetxt log that
 * `scontrol show config` names). Run at start-up or on the thread pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/error.h"
#include "service/slurm.h"
#include "service/slurm_cmd.h"

#define QUERY_TIMEOUT_MS 60000
#define QUERY_MAX_OUT (64u << 20)

int svc_slurm_list_mine(svc_slurm_job **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    const char *argv[] = {"squeue", "-h", "-t", "all", "--me", "--Format=" SVC_SQUEUE_FORMAT, NULL};
    svc_cmd_result r;
    int rc = svc_cmd_run(argv, NULL, QUERY_TIMEOUT_MS, QUERY_MAX_OUT, &r);
    if (rc == 0 && r.status != 0) {
        char line[512];
        svc_sbatch_error_line(r.err, line, sizeof line);
        rc = svc_error(SVC_EIO, "squeue exited with status %d: %s", r.status, line);
    } else if (rc < 0) {
        rc = svc_error(rc, "%s", r.error[0] ? r.error : "out of memory running squeue");
    } else if ((rc = svc_squeue_parse(r.out, rows, n)) < 0) {
        rc = svc_error(rc, "out of memory reading squeue's answer");
    }
    svc_cmd_result_free(&r);
    return rc;
}

/* The whole of a file (NUL-terminated), or NULL. */
static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    while (text) {
        if (len + 65536 + 1 > cap) {
            char *nt = realloc(text, cap *= 2);
            if (!nt) {
                free(text);
                text = NULL;
                break;
            }
            text = nt;
        }
        size_t got = fread(text + len, 1, 65536, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (text)
        text[len] = '\0';
    return text;
}

int svc_slurm_find_finished(int64_t job_id, svc_slurm_job *job)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)job_id);
    const char *sacct[] = {"sacct", "-n", "-X", "-P", "-j", id, "-o", "JobID,State,ExitCode,Start,End,NodeList", NULL};
    svc_cmd_result r;
    int found = 0;
    if (svc_cmd_run(sacct, NULL, QUERY_TIMEOUT_MS, 1 << 20, &r) == 0 && r.status == 0)
        found = svc_sacct_parse(r.out, job_id, job);
    svc_cmd_result_free(&r);
    if (found)
        return 1;
    /* without accounting: the jobcomp/filetxt log, if the cluster keeps one */
    const char *conf[] = {"scontrol", "show", "config", NULL};
    char type[256] = "", loc[4096] = "";
    if (svc_cmd_run(conf, NULL, QUERY_TIMEOUT_MS, 1 << 20, &r) == 0 && r.status == 0) {
        svc_slurm_config_value(r.out, "JobCompType", type, sizeof type);
        svc_slurm_config_value(r.out, "JobCompLoc", loc, sizeof loc);
    }
    svc_cmd_result_free(&r);
    if (strcmp(type, "jobcomp/filetxt") || !loc[0])
        return 0;
    char *text = read_all(loc);
    if (!text)
        return 0;
    found = svc_jobcomp_find(text, job_id, job);
    free(text);
    return found;
}
