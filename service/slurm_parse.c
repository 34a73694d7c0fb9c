/* Reading Slurm's answers: squeue's lines, sacct's, the jobcomp log's
 * records, scontrol's config, sbatch's job id and errors, job states and
 * Slurm's (local) times. Pure functions of text. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/error.h"
#include "service/slurm.h"

static void copy_field(char *dst, size_t len, const char *s, size_t n)
{
    if (n >= len)
        n = len - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    char buf[32];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (*end || v < 0)
        return false;
    *out = v;
    return true;
}

int64_t svc_slurm_time(const char *s)
{
    struct tm tm = {0};
    if (!s)
        return 0;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || (*end && !isspace((unsigned char)*end) && *end != '|'))
        return 0;
    tm.tm_isdst = -1; /* Slurm prints the controller's local time */
    time_t t = mktime(&tm);
    return t == (time_t)-1 ? 0 : (int64_t)t;
}

static void job_init(svc_slurm_job *j)
{
    memset(j, 0, sizeof *j);
    j->exit_code = -1;
}

/* squeue's exit_code is the raw wait status: 33280 is exit 130, 9 is SIGKILL. */
static void set_wait_status(svc_slurm_job *j, int64_t v)
{
    if (v & 0x7f) {
        j->exit_code = 0;
        j->exit_signal = (int)(v & 0x7f);
    } else {
        j->exit_code = (int)((v >> 8) & 0xff);
        j->exit_signal = 0;
    }
}

/* "130:0" (exit:signal) */
static void set_exit_pair(svc_slurm_job *j, const char *s, size_t n)
{
    char buf[32];
    copy_field(buf, sizeof buf, s, n);
    int e, sig;
    if (sscanf(buf, "%d:%d", &e, &sig) == 2) {
        j->exit_code = e;
        j->exit_signal = sig;
    }
}

static bool squeue_line(const char *line, size_t len, svc_slurm_job *j)
{
    const char *f[10];
    size_t fl[10];
    const char *p = line, *end = line + len;
    for (int i = 0; i < 9; i++) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        if (!bar)
            return false;
        f[i] = p;
        fl[i] = (size_t)(bar - p);
        p = bar + 1;
    }
    f[9] = p;
    fl[9] = (size_t)(end - p);
    job_init(j);
    int64_t v;
    if (!parse_i64(f[0], fl[0], &j->job_id))
        return false;
    copy_field(j->state, sizeof j->state, f[1], fl[1]);
    copy_field(j->reason, sizeof j->reason, f[2], fl[2]);
    if (!strcmp(j->reason, "None") || !strcmp(j->reason, "(null)"))
        j->reason[0] = '\0';
    char t[64];
    copy_field(t, sizeof t, f[3], fl[3]);
    j->start_time = svc_slurm_time(t);
    copy_field(t, sizeof t, f[4], fl[4]);
    j->end_time = svc_slurm_time(t);
    if (parse_i64(f[5], fl[5], &v))
        set_wait_status(j, v);
    if (parse_i64(f[6], fl[6], &v))
        j->restarts = v;
    copy_field(j->node, sizeof j->node, f[7], fl[7]);
    if (!strcmp(j->node, "(null)"))
        j->node[0] = '\0';
    copy_field(j->name, sizeof j->name, f[8], fl[8]);
    copy_field(j->comment, sizeof j->comment, f[9], fl[9]);
    while (j->comment[0] && isspace((unsigned char)j->comment[strlen(j->comment) - 1]))
        j->comment[strlen(j->comment) - 1] = '\0';
    return true;
}

int svc_squeue_parse(const char *out, svc_slurm_job **jobs, size_t *n)
{
    *jobs = NULL;
    *n = 0;
    size_t cap = 0;
    for (const char *p = out; p && *p;) {
        size_t len = strcspn(p, "\n");
        svc_slurm_job j;
        if (squeue_line(p, len, &j)) {
            if (*n == cap) {
                size_t ncap = cap ? 2 * cap : 16;
                svc_slurm_job *nj = realloc(*jobs, ncap * sizeof *nj);
                if (!nj) {
                    free(*jobs);
                    *jobs = NULL;
                    *n = 0;
                    return SVC_ENOMEM;
                }
                *jobs = nj;
                cap = ncap;
            }
            (*jobs)[(*n)++] = j;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return 0;
}

/* The value of " key=" in a line of key=value words (a pointer into line
 * and its length), or NULL. */
static const char *word_value(const char *line, size_t len, const char *key, size_t *vlen)
{
    size_t kl = strlen(key);
    for (const char *p = line; p < line + len;) {
        while (p < line + len && *p == ' ')
            p++;
        size_t wl = strcspn(p, " \n");
        if (wl > (size_t)(line + len - p))
            wl = (size_t)(line + len - p);
        if (wl > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            *vlen = wl - kl - 1;
            return p + kl + 1;
        }
        p += wl;
    }
    return NULL;
}

int svc_jobcomp_find(const char *text, int64_t job_id, svc_slurm_job *job)
{
    char want[40];
    snprintf(want, sizeof want, "JobId=%lld ", (long long)job_id);
    int found = 0;
    for (const char *p = text; p && *p;) {
        size_t len = strcspn(p, "\n");
        if (len > strlen(want) && !strncmp(p, want, strlen(want))) {
            size_t vl;
            const char *v;
            char t[64];
            job_init(job);
            job->job_id = job_id;
            if ((v = word_value(p, len, "JobState", &vl)))
                copy_field(job->state, sizeof job->state, v, vl);
            if ((v = word_value(p, len, "StartTime", &vl))) {
                copy_field(t, sizeof t, v, vl);
                job->start_time = svc_slurm_time(t);
            }
            if ((v = word_value(p, len, "EndTime", &vl))) {
                copy_field(t, sizeof t, v, vl);
                job->end_time = svc_slurm_time(t);
            }
            if ((v = word_value(p, len, "NodeList", &vl)))
                copy_field(job->node, sizeof job->node, v, vl);
            if (!strcmp(job->node, "(null)"))
                job->node[0] = '\0';
            if ((v = word_value(p, len, "ExitCode", &vl)))
                set_exit_pair(job, v, vl);
            if ((v = word_value(p, len, "Name", &vl)))
                copy_field(job->name, sizeof job->name, v, vl);
            found = 1; /* a requeued job has several records: the last one counts */
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return found;
}

int svc_sacct_parse(const char *out, int64_t job_id, svc_slurm_job *job)
{
    for (const char *p = out; p && *p;) {
        size_t len = strcspn(p, "\n");
        const char *f[6];
        size_t fl[6];
        const char *q = p, *end = p + len;
        int nf = 0;
        while (nf < 6) {
            const char *bar = memchr(q, '|', (size_t)(end - q));
            f[nf] = q;
            fl[nf] = bar ? (size_t)(bar - q) : (size_t)(end - q);
            nf++;
            if (!bar)
                break;
            q = bar + 1;
        }
        int64_t id;
        if (nf == 6 && parse_i64(f[0], fl[0], &id) && id == job_id) {
            char t[64];
            job_init(job);
            job->job_id = id;
            copy_field(job->state, sizeof job->state, f[1], strcspn(f[1], " |")); /* "CANCELLED by 0" */
            set_exit_pair(job, f[2], fl[2]);
            copy_field(t, sizeof t, f[3], fl[3]);
            job->start_time = svc_slurm_time(t);
            copy_field(t, sizeof t, f[4], fl[4]);
            job->end_time = svc_slurm_time(t);
            copy_field(job->node, sizeof job->node, f[5], fl[5]);
            if (!strcmp(job->node, "None assigned"))
                job->node[0] = '\0';
            return 1;
        }
        p += len;
        if (*p == '\n')
            p++;
    }
    return 0;
}

int svc_slurm_config_value(const char *out, const char *key, char *buf, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = out; p && *p;) {
        size_t ll = strcspn(p, "\n");
        if (ll > kl && !strncmp(p, key, kl) && (p[kl] == ' ' || p[kl] == '=')) {
            const char *v = p + kl;
            while (*v == ' ')
                v++;
            if (*v == '=') {
                v++;
                while (*v == ' ')
                    v++;
                copy_field(buf, len, v, (size_t)(p + ll - v));
                return 1;
            }
        }
        p += ll;
        if (*p == '\n')
            p++;
    }
    return 0;
}

int64_t svc_sbatch_job_id(const char *out)
{
    while (out && isspace((unsigned char)*out))
        out++;
    int64_t id;
    size_t n = out ? strspn(out, "0123456789") : 0;
    if (!parse_i64(out, n, &id) || id <= 0)
        return -1;
    const char *rest = out + n;
    if (*rest == ';')
        rest += strcspn(rest, "\n");
    while (isspace((unsigned char)*rest))
        rest++;
    return *rest ? -1 : id;
}

bool svc_sbatch_transient(const char *err)
{
    static const char *const transient[] = {
        "Unable to contact slurm controller",
        "Socket timed out",
        "temporarily unable",
        "Resource temporarily unavailable",
        "try again",
        "Slurm is busy",
        "job submit limit",
        "Transport endpoint is not connected",
        "Connection refused",
        "Zero Bytes were transmitted",
    };
    for (size_t i = 0; i < sizeof transient / sizeof *transient; i++)
        if (err && strcasestr(err, transient[i]))
            return true;
    return false;
}

void svc_sbatch_error_line(const char *err, char *buf, size_t len)
{
    buf[0] = '\0';
    const char *best = NULL, *last = NULL;
    size_t best_len = 0, last_len = 0;
    for (const char *p = err; p && *p;) {
        size_t l = strcspn(p, "\n");
        if (l) {
            last = p;
            last_len = l;
            if (memmem(p, l, "error", 5)) {
                best = p;
                best_len = l;
            }
        }
        p += l;
        if (*p == '\n')
            p++;
    }
    if (!best) {
        best = last;
        best_len = last_len;
    }
    if (best)
        copy_field(buf, len, best, best_len);
}

int64_t svc_slurm_run_id(const char *name)
{
    if (strncmp(name, "epochd-", 7))
        return 0;
    const char *p = name + 7;
    size_t n = strspn(p, "0123456789");
    int64_t id;
    if (p[n] != '-' || !parse_i64(p, n, &id))
        return 0;
    return id;
}

static bool in(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i]))
            return true;
    return false;
}

bool svc_slurm_state_ended(const char *s)
{
    static const char *const ended[] = {"COMPLETED",     "FAILED",       "CANCELLED", "TIMEOUT",
                                        "PREEMPTED",     "NODE_FAIL",    "BOOT_FAIL", "DEADLINE",
                                        "OUT_OF_MEMORY", "SPECIAL_EXIT", "REVOKED"};
    return in(s, ended, sizeof ended / sizeof *ended);
}

bool svc_slurm_state_running(const char *s)
{
    static const char *const running[] = {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"};
    return in(s, running, sizeof running / sizeof *running);
}

bool svc_slurm_state_preempted(const char *s)
{
    static const char *const by_cluster[] = {"TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"};
    return in(s, by_cluster, sizeof by_cluster / sizeof *by_cluster);
}
