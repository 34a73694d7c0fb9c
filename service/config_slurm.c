/* The config file's `slurm:` mapping: the executor slurm's defaults for
 * every job, the allow-list for a spec's extra sbatch words, the cap on jobs
 * in flight and on preemptions, what a stop does, how often Slurm is asked
 * (docs/slurm.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/config_read.h"
#include "service/error.h"

/* What a spec may add by default: resources and placement, nothing that
 * changes how epochd follows the job (nor --cpus-per-task: a CPU run's
 * threads are worker_threads, and it asks for as many). */
static const char *const default_allowed[] = {"--constraint", "--mem",       "--mem-per-cpu", "--mem-per-gpu",
                                              "--gres",       "--gpus",      "--exclude",     "--nodelist",
                                              "--nice",       "--exclusive", "--tmp",         "--reservation",
                                              "--licenses"};

static void free_words(char **w, int n)
{
    for (int i = 0; i < n; i++)
        free(w[i]);
    free(w);
}

static int dup_words(char ***dst, char *const *src, int n)
{
    *dst = NULL;
    if (n == 0)
        return 0;
    char **w = calloc((size_t)n, sizeof *w);
    if (!w)
        return SVC_ENOMEM;
    for (int i = 0; i < n; i++)
        if (!(w[i] = strdup(src[i]))) {
            free_words(w, i);
            return SVC_ENOMEM;
        }
    *dst = w;
    return 0;
}

void svc_slurm_config_free(svc_slurm_config *s)
{
    if (!s)
        return;
    free(s->partition);
    free(s->account);
    free(s->qos);
    free(s->time);
    free(s->gpu_option);
    free_words(s->extra, s->n_extra);
    free_words(s->allowed_extra, s->n_allowed_extra);
    memset(s, 0, sizeof *s);
}

int svc_slurm_config_defaults(svc_slurm_config *s)
{
    memset(s, 0, sizeof *s);
    s->max_jobs = 100;
    s->max_preemptions = 20;
    s->on_stop = SVC_ON_STOP_INTERRUPT;
    s->requeue = 1;
    s->poll_ms = 2000;
    s->n_allowed_extra = (int)(sizeof default_allowed / sizeof *default_allowed);
    if (dup_words(&s->allowed_extra, (char *const *)default_allowed, s->n_allowed_extra) < 0 ||
        !(s->gpu_option = strdup("--gres=gpu:1"))) {
        svc_slurm_config_free(s);
        return SVC_ENOMEM;
    }
    return 0;
}

static char *dup_or_null(const char *s, bool *ok)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *ok = false;
    return d;
}

int svc_slurm_config_copy(svc_slurm_config *dst, const svc_slurm_config *src)
{
    svc_slurm_config t = *src;
    bool ok = true;
    t.partition = dup_or_null(src->partition, &ok);
    t.account = dup_or_null(src->account, &ok);
    t.qos = dup_or_null(src->qos, &ok);
    t.time = dup_or_null(src->time, &ok);
    t.gpu_option = dup_or_null(src->gpu_option, &ok);
    t.extra = t.allowed_extra = NULL;
    t.n_extra = t.n_allowed_extra = 0;
    if (ok && dup_words(&t.extra, src->extra, src->n_extra) == 0)
        t.n_extra = src->n_extra;
    else
        ok = false;
    if (ok && dup_words(&t.allowed_extra, src->allowed_extra, src->n_allowed_extra) == 0)
        t.n_allowed_extra = src->n_allowed_extra;
    else
        ok = false;
    if (!ok) {
        svc_slurm_config_free(&t);
        memset(dst, 0, sizeof *dst);
        return SVC_ENOMEM;
    }
    *dst = t;
    return 0;
}

static void set_str(svc_cfg_ctx *x, char **dst, const char *v)
{
    char *d = strdup(v);
    if (!d) {
        x->oom = true;
        return;
    }
    free(*dst);
    *dst = d;
}

/* partition, account, qos: a Slurm name as a spec's (schema/validate_slurm.c) */
static void get_name(svc_cfg_ctx *x, const ynode *v, const char *key, char **dst)
{
    const char *s = svc_cfg_scalar(v);
    size_t n = s ? strlen(s) : 0;
    bool ok = n >= 1 && n <= 128 && s[0] != '-';
    for (size_t i = 0; ok && i < n; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
             strchr("_.,+-", s[i]);
    if (!ok)
        svc_cfg_error(x, v, key, "expected a Slurm name (letters, digits and _ . , + -), found %s",
                      s ? s : "a collection");
    else
        set_str(x, dst, s);
}

/* extra: words checked as a spec's (no allow-list: the service's owner
 * chose them), allowed_extra: option names "--name" */
static void get_words(svc_cfg_ctx *x, const ynode *v, const char *key, bool names, char ***dst, int *n_dst)
{
    char **w;
    int n;
    if (svc_cfg_words(x, v, key, 256, &w, &n) < 0)
        return;
    bool ok = true;
    for (int i = 0; i < n; i++) {
        char why[768];
        if (spec_slurm_check_word(w[i], NULL, 0, why, sizeof why) < 0) {
            svc_cfg_error(x, v, key, "%s", why);
            ok = false;
        } else if (names && strchr(w[i], '=')) {
            svc_cfg_error(x, v, key, "expected option names such as --constraint, found %s", w[i]);
            ok = false;
        }
    }
    if (!ok) {
        free_words(w, n);
        return;
    }
    free_words(*dst, *n_dst);
    *dst = w;
    *n_dst = n;
}

static int get_bool(svc_cfg_ctx *x, const ynode *v, const char *key, int *out)
{
    const char *s = svc_cfg_scalar(v);
    if (s && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")))
        *out = 1;
    else if (s && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")))
        *out = 0;
    else {
        svc_cfg_error(x, v, key, "expected true or false, found %s", s ? s : "a collection");
        return -1;
    }
    return 0;
}

static const char *const slurm_keys[] = {"partition",     "account",    "qos",         "time",     "extra",
                                         "allowed_extra", "gpu_option", "auto_device", "max_jobs", "max_preemptions",
                                         "on_stop",       "requeue",    "poll_ms"};

void svc_config_load_slurm(svc_cfg_ctx *x, const ynode *m, svc_slurm_config *s)
{
    if (m->kind != YN_MAP) {
        svc_cfg_error(x, m, "slurm", "expected a mapping of Slurm settings (partition: ..., max_jobs: ...)");
        return;
    }
    for (int64_t i = 0; i < m->n; i++) {
        const ynode *k = m->v[2 * i], *v = m->v[2 * i + 1];
        const char *name = svc_cfg_scalar(k);
        char key[128];
        snprintf(key, sizeof key, "slurm.%s", name ? name : "?");
        const char *sv = svc_cfg_scalar(v);
        int64_t num;
        if (!name)
            svc_cfg_error(x, k, "slurm", "keys must be names");
        else if (!strcmp(name, "partition"))
            get_name(x, v, key, &s->partition);
        else if (!strcmp(name, "account"))
            get_name(x, v, key, &s->account);
        else if (!strcmp(name, "qos"))
            get_name(x, v, key, &s->qos);
        else if (!strcmp(name, "time")) {
            if (!sv || !spec_slurm_time_ok(sv))
                svc_cfg_error(x, v, key,
                              "expected a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or "
                              "INFINITE), found %s",
                              sv ? sv : "a collection");
            else
                set_str(x, &s->time, sv);
        } else if (!strcmp(name, "extra"))
            get_words(x, v, key, false, &s->extra, &s->n_extra);
        else if (!strcmp(name, "allowed_extra")) {
            if (v->kind == YN_SEQ && v->n == 0) { /* [] : nothing allowed */
                free_words(s->allowed_extra, s->n_allowed_extra);
                s->allowed_extra = NULL;
                s->n_allowed_extra = 0;
            } else
                get_words(x, v, key, true, &s->allowed_extra, &s->n_allowed_extra);
        } else if (!strcmp(name, "gpu_option")) {
            char why[768];
            if (!sv || spec_slurm_check_word(sv, NULL, 0, why, sizeof why) < 0)
                svc_cfg_error(x, v, key, "%s", sv ? why : "expected an sbatch option such as --gres=gpu:1");
            else
                set_str(x, &s->gpu_option, sv);
        } else if (!strcmp(name, "auto_device")) {
            if (sv && !strcmp(sv, "cpu"))
                s->auto_gpu = 0;
            else if (sv && !strcmp(sv, "cuda"))
                s->auto_gpu = 1;
            else
                svc_cfg_error(x, v, key, "expected cpu or cuda, found %s", sv ? sv : "a collection");
        } else if (!strcmp(name, "max_jobs"))
            svc_cfg_int(x, v, key, 1, 100000, &s->max_jobs);
        else if (!strcmp(name, "max_preemptions"))
            svc_cfg_int(x, v, key, 0, 100000, &s->max_preemptions);
        else if (!strcmp(name, "on_stop")) {
            if (sv && !strcmp(sv, "interrupt"))
                s->on_stop = SVC_ON_STOP_INTERRUPT;
            else if (sv && !strcmp(sv, "leave"))
                s->on_stop = SVC_ON_STOP_LEAVE;
            else
                svc_cfg_error(x, v, key, "expected interrupt or leave, found %s", sv ? sv : "a collection");
        } else if (!strcmp(name, "requeue"))
            get_bool(x, v, key, &s->requeue);
        else if (!strcmp(name, "poll_ms")) {
            if (!svc_cfg_i64(x, v, key, 100, 600000, &num))
                s->poll_ms = num;
        } else
            svc_cfg_unknown_key(x, k, "slurm.", slurm_keys, (int)(sizeof slurm_keys / sizeof *slurm_keys));
    }
}
