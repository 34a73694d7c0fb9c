/* What the Slurm executor submits: the batch script (the same for every
 * job; the run's folder and the worker's command line are its arguments)
 * and sbatch's command line for one launch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/error.h"
#include "service/slurm.h"
#include "service/slurm_cmd.h"

/* sbatch keeps a copy of the script: the file need not be on the nodes. The
 * worker's stdout goes to a file of its own per restart of the job, so that
 * the lines of a worker Slurm requeued never mix with those before it. */
const char svc_slurm_script[] =
    "#!/bin/sh\n"
    "# epochd: one run's worker as a Slurm batch job, written by epochd serve (docs/slurm.md).\n"
    "# $1 is the run's folder in the shared state folder; the rest is the worker's command line.\n"
    "# Its protocol lines go to $1/job-<job id>.<restart>.out; when Slurm requeued the job, the\n"
    "# worker resumes from the run's checkpoint.\n"
    "dir=$1\n"
    "shift\n"
    "if [ \"${SLURM_RESTART_COUNT:-0}\" -gt 0 ]; then\n"
    "    set -- \"$@\" --resume\n"
    "fi\n"
    "exec \"$@\" > \"$dir/job-$SLURM_JOB_ID.${SLURM_RESTART_COUNT:-0}.out\"\n";

void svc_slurm_comment(const char *state_dir, char *buf, size_t len) { snprintf(buf, len, "epochd %s", state_dir); }

typedef struct words {
    char **v;
    size_t n, cap;
    bool oom;
} words;

static void add(words *w, const char *s)
{
    if (w->oom)
        return;
    if (w->n + 2 > w->cap) {
        size_t ncap = w->cap ? 2 * w->cap : 64;
        char **nv = realloc(w->v, ncap * sizeof *nv);
        if (!nv) {
            w->oom = true;
            return;
        }
        w->v = nv;
        w->cap = ncap;
    }
    if (!(w->v[w->n] = strdup(s))) {
        w->oom = true;
        return;
    }
    w->v[++w->n] = NULL;
}

static void addf(words *w, const char *fmt, const char *a)
{
    size_t len = strlen(fmt) + strlen(a) + 1;
    char *s = malloc(len);
    if (!s) {
        w->oom = true;
        return;
    }
    snprintf(s, len, fmt, a);
    add(w, s);
    free(s);
}

/* Slurm expands %j, %u, ... in file names; "%%" is a literal '%'. */
static char *escape_percent(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += *p == '%' ? 2 : 1;
    char *d = malloc(n + 1), *q = d;
    if (!d)
        return NULL;
    for (const char *p = s; *p; p++) {
        *q++ = *p;
        if (*p == '%')
            *q++ = '%';
    }
    *q = '\0';
    return d;
}

int svc_sbatch_argv(const svc_sbatch_job *j, char ***argv)
{
    *argv = NULL;
    const svc_launch *l = j->launch;
    const svc_slurm_config *c = j->cfg;
    const spec_slurm *s = j->spec;
    words w = {0};
    char buf[1200];
    add(&w, "sbatch");
    add(&w, "--parsable");
    snprintf(buf, sizeof buf, "--job-name=epochd-%lld-%.1000s", (long long)l->run_id, l->name ? l->name : "run");
    add(&w, buf);
    char comment[1100];
    svc_slurm_comment(j->state_dir, comment, sizeof comment);
    addf(&w, "--comment=%s", comment);
    char *dir = escape_percent(l->run_dir);
    if (!dir)
        w.oom = true;
    else
        addf(&w, "--output=%s/slurm-%%j.log", dir);
    free(dir);
    add(&w, "--open-mode=append");
    add(&w, c->requeue ? "--requeue" : "--no-requeue");
    const char *partition = s && s->partition ? s->partition : c->partition;
    const char *account = s && s->account ? s->account : c->account;
    const char *qos = s && s->qos ? s->qos : c->qos;
    const char *time = s && s->time ? s->time : c->time;
    if (partition)
        addf(&w, "--partition=%s", partition);
    if (account)
        addf(&w, "--account=%s", account);
    if (qos)
        addf(&w, "--qos=%s", qos);
    if (time)
        addf(&w, "--time=%s", time);
    if (j->gpu) {
        add(&w, c->gpu_option ? c->gpu_option : "--gres=gpu:1");
    } else {
        snprintf(buf, sizeof buf, "--cpus-per-task=%d", l->threads > 0 ? l->threads : 1);
        add(&w, buf);
    }
    /* the service's words, then the spec's: sbatch takes the last of an option */
    for (int i = 0; i < c->n_extra; i++)
        add(&w, c->extra[i]);
    for (int i = 0; s && i < s->n_extra; i++)
        add(&w, s->extra[i]);
    add(&w, j->script);
    add(&w, l->run_dir);
    for (int i = 0; i < j->n_prefix; i++)
        add(&w, j->prefix[i]);
    for (int i = 0; l->argv[i]; i++)
        add(&w, l->argv[i]);
    if (w.oom) {
        svc_strv_free(w.v);
        return SVC_ENOMEM;
    }
    *argv = w.v;
    return 0;
}
