/* The worker: one run for the service, reported as protocol events. */
#include "service/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "service/error.h"
#include "service/history.h"
#include "service/paths.h"
#include "service/process_ns.h"
#include "service/protocol.h"
#include "schema/spec.h"

typedef struct worker {
    FILE *out;
    svc_history hist;
    int history_err;        /* 0, or the SVC_E* code of a failed history write */
    char history_error[1024];
} worker;

/* Events that cannot be written (stdout closed: the service has gone) are
 * not fatal: the history keeps the epochs and a resume reports them. */
static void emit(worker *w, const svc_event *e)
{
    if (svc_event_write(w->out, e) < 0)
        fprintf(stderr, "epochd worker: %s\n", svc_last_error());
}

static void on_started(void *ctx, const svc_started_info *s)
{
    worker *w = ctx;
    svc_event e;
    svc_event_init(&e, SVC_EV_STARTED);
    e.pid = (int64_t)getpid();
    snprintf(e.device, sizeof e.device, "%s", s->device);
    e.params = s->params;
    e.epochs = s->epochs;
    e.steps_per_epoch = s->steps_per_epoch;
    e.train_samples = s->train_samples;
    e.test_samples = s->test_samples;
    e.resumed_epoch = s->resumed_epoch;
    e.threads = s->threads;
    emit(w, &e);
    /* the epochs before the resume point, again: the service may have
     * missed the last of them (it records them idempotently) */
    size_t n = svc_history_replay_count(&w->hist, s->resumed_epoch);
    for (size_t i = 0; i < n; i++)
        if (svc_history_replayed(&w->hist, i, &e) == 0)
            emit(w, &e);
}

static void on_progress(void *ctx, const eng_progress *p)
{
    worker *w = ctx;
    svc_event e;
    svc_event_init(&e, SVC_EV_PROGRESS);
    e.epoch = p->epoch;
    e.step = p->step;
    e.steps = p->steps;
    e.loss = p->loss;
    e.acc = p->acc;
    e.images_per_sec = p->samples_per_sec;
    e.elapsed = p->elapsed;
    emit(w, &e);
}

static int on_epoch(void *ctx, const eng_epoch_stats *s, const char *checkpoint, int64_t best_epoch)
{
    worker *w = ctx;
    svc_event e;
    svc_event_init(&e, SVC_EV_EPOCH);
    e.epoch = s->epoch;
    e.train_loss = s->train_loss;
    e.train_acc = s->train_acc;
    e.test_loss = s->test_loss;
    e.test_acc = s->test_acc;
    e.lr = s->lr;
    e.seconds = s->seconds;
    e.samples_per_sec = s->samples_per_sec;
    e.best_epoch = best_epoch;
    /* recorded (and synced) before it is reported */
    int rc = svc_history_append(&w->hist, &e, checkpoint);
    if (rc < 0) {
        w->history_err = rc;
        snprintf(w->history_error, sizeof w->history_error, "%s", svc_last_error());
        return rc;
    }
    if (checkpoint)
        snprintf(e.checkpoint, sizeof e.checkpoint, "%s", checkpoint);
    emit(w, &e);
    return 0;
}

static void fail(svc_outcome *out, int code, bool retryable, const char *msg)
{
    memset(out, 0, sizeof *out);
    out->err = code;
    out->retryable = retryable;
    snprintf(out->error, sizeof out->error, "%s", msg);
}

/* Started by the service: stop (at the next step, as on SIGTERM) when the
 * parent dies, rather than train on with nobody reading. The parent is the
 * service, or a worker_prefix wrapper (nice, srun) in between. False when
 * the service has already gone. The service's pid is looked up only where
 * it means something: on the service's host and in its PID namespace
 * (EPOCHD_SERVICE_NS); elsewhere (srun to another node, a container) the
 * parent-death signal is all there is. */
static bool watch_service(const char *key)
{
    const char *service = getenv("EPOCHD_SERVICE_PID");
    if (!service || !*service)
        return true;
    long sp = strtol(service, NULL, 10);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    const char *where = getenv("EPOCHD_SERVICE_NS");
    char here[128];
    if (where && *where && (svc_process_ns(here, sizeof here) < 0 || strcmp(where, here)))
        return true; /* another host or PID namespace: its pid names nothing here */
    if (sp > 0 && (long)getppid() != sp && kill((pid_t)sp, 0) < 0 && errno == ESRCH) {
        fprintf(stderr, "epochd worker %s: the service (pid %ld) has gone\n", key, sp);
        return false;
    }
    return true;
}

/* The stored spec text; relative paths in it resolve against the original
 * spec's folder (spec_path). One valid run, or *out says why not. */
static spec_file *load_spec(const svc_worker_args *a, svc_outcome *out)
{
    FILE *f = fopen(a->spec_file, "rb");
    if (!f) {
        svc_error(SVC_ENOENT, "cannot open %.3000s: %s", a->spec_file, strerror(errno));
        fail(out, SVC_ENOENT, true, svc_last_error());
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 > cap) {
            char *nb = realloc(buf, cap = cap ? 2 * cap : 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                fail(out, SVC_ENOMEM, true, "out of memory reading the spec");
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    spec_options opt;
    spec_options_default(&opt);
    opt.data_roots = a->data_roots;
    opt.n_data_roots = a->n_data_roots;
    if (a->download_root)
        opt.download_root = a->download_root;
    spec_file *sf = NULL;
    int rc = spec_file_load_buffer(a->spec_path ? a->spec_path : a->spec_file, buf, len, &opt, &sf);
    free(buf);
    if (rc < 0) {
        fail(out, SVC_ENOMEM, true, "out of memory parsing the spec");
        return NULL;
    }
    if (!spec_file_valid(sf) || sf->n_entries != 1) {
        char *msg = NULL;
        if (sf->file_diags.n)
            msg = spec_diags_join(&sf->file_diags);
        else if (sf->n_entries)
            msg = spec_diags_join(&sf->entries[0].diags);
        fail(out, SVC_EINVAL, false, msg ? msg : "the spec is not one valid run");
        free(msg);
        spec_file_free(sf);
        return NULL;
    }
    return sf;
}

/* The checkpoint to resume from cannot be loaded: the state folder is
 * damaged, not the spec. It is kept aside for a person to look at, and the
 * run starts over (its epochs are reported again and replace the old rows). */
static int start_afresh(worker *w, const char *dir, const char *spec_sha256, const svc_outcome *failed)
{
    char last[1100], aside[1200];
    snprintf(last, sizeof last, "%s/last.safetensors", dir);
    snprintf(aside, sizeof aside, "%s/last.safetensors.damaged", dir);
    fprintf(stderr, "epochd worker: %s; keeping it as %s and starting the run afresh\n", failed->error, aside);
    if (rename(last, aside) < 0) {
        fprintf(stderr, "epochd worker: cannot move %s aside: %s\n", last, strerror(errno));
        return -1;
    }
    svc_history_close(&w->hist);
    return svc_history_open(&w->hist, dir, spec_sha256, false);
}

int svc_worker_run(const svc_worker_args *a, svc_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (!watch_service(a->key))
        return SVC_EINTR;
    spec_file *sf = load_spec(a, out);
    if (!sf)
        return 0;
    worker w = {.out = a->out};
    char dir[1024];
    int rc = svc_run_dir_make(a->state_dir, a->key, dir, sizeof dir);
    if (rc == 0)
        rc = svc_history_open(&w.hist, dir, sf->entries[0].spec->sha256, a->resume);
    if (rc < 0) {
        fail(out, rc, true, svc_last_error());
        spec_file_free(sf);
        return 0;
    }
    svc_session_sink sink = {.ctx = &w, .started = on_started, .progress = on_progress, .epoch = on_epoch};
    svc_session_job job = {.spec = sf->entries[0].spec, .state_dir = a->state_dir, .key = a->key,
                           .device = a->device, .epochs = a->epochs, .resume = a->resume, .threads = a->threads,
                           .stop = a->stop};
    svc_session_run(&job, &sink, out);
    if (out->damaged_checkpoint && start_afresh(&w, dir, sf->entries[0].spec->sha256, out) == 0) {
        job.resume = false;
        svc_session_run(&job, &sink, out);
    }
    if (w.history_err) {
        out->err = w.history_err;
        out->retryable = true;
        snprintf(out->error, sizeof out->error, "%s", w.history_error);
    }
    svc_history_close(&w.hist);
    spec_file_free(sf);
    return 0;
}

int svc_worker_report_end(FILE *f, const svc_outcome *o, int exit_status)
{
    svc_event e;
    if (o->err == 0) {
        svc_event_init(&e, SVC_EV_DONE);
        e.epochs_done = o->epochs_done;
        e.best_test_acc = o->best_acc;
        e.best_epoch = o->best_epoch;
    } else if (o->err == SVC_EINTR) {
        svc_event_init(&e, SVC_EV_INTERRUPTED);
        e.epochs_done = o->epochs_done;
    } else {
        svc_event_init(&e, SVC_EV_FAILED);
        snprintf(e.error, sizeof e.error, "%s", o->error);
        e.code = exit_status;
        e.retryable = o->retryable;
    }
    return svc_event_write(f, &e);
}
