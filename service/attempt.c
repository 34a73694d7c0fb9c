/* One attempt of a run: the worker the scheduler starts for it through the
 * executor, its protocol events turned into database writes (the worker
 * never opens the database), its stderr copied into the log with the run
 * id, stops escalated from SIGTERM to SIGKILL, and its end turned into the
 * run's status: done, failed (with the reason), cancelled, interrupted, or
 * queued again for a retry that resumes from the last checkpoint. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "service/error.h"
#include "service/internal.h"
#include "schema/paths.h"
#include "service/log.h"
#include "service/observe_hooks.h"
#include "service/paths.h"
#include "service/process_ns.h"
#include "service/run_spec.h"

#define PROGRESS_DB_MS 1000 /* progress rows at most this often */

svc_attempt *svc_attempt_find(svc_service *sv, int64_t run_id)
{
    for (svc_attempt *w = sv->attempts; w; w = w->next)
        if (w->run_id == run_id)
            return w;
    return NULL;
}

/* ---- how it ended ---- */

static void attempt_closed(uv_handle_t *h)
{
    svc_attempt *w = h->data;
    free(w->name);
    free(w);
}

/* OUT_RESUME: the attempt ended for a reason that is not the run's (the
 * service could not record an epoch, someone else stopped the worker): it
 * continues from its checkpoint and the attempt is not counted as failed. */
typedef enum outcome { OUT_DONE, OUT_FAILED, OUT_INTERRUPTED, OUT_RESUME } outcome;

static const char *signal_name(int sig)
{
    const char *s = sigabbrev_np(sig);
    return s ? s : "?";
}

/* A worker's exit status (sysexits) that says the spec or its data is
 * wrong: another attempt would fail the same way. */
static bool status_retryable(int64_t status)
{
    return status != EX_DATAERR && status != EX_NOINPUT;
}

/* Done is only done when the database holds every epoch the worker
 * reported; else the run resumes and its history reports them again. */
static bool all_epochs_recorded(svc_attempt *w, char *why, size_t len)
{
    int64_t n = 0, want = w->final.epochs_done > 0 ? w->final.epochs_done : w->epochs_done;
    int rc = db_epochs_count(w->sv->db, w->run_id, want, &n);
    if (rc == 0 && n == want)
        return true;
    if (rc)
        snprintf(why, len, "cannot count the recorded epochs: %s", db_last_error());
    else
        snprintf(why, len, "the database holds %lld of the %lld epochs the worker reported", (long long)n,
                 (long long)want);
    return false;
}

/* What the worker's final event, its exit and our own requests say. */
static outcome judge(svc_attempt *w, const svc_job_end *end, bool *retryable, char *why, size_t len)
{
    *retryable = false;
    why[0] = '\0';
    if (w->db_error) {
        snprintf(why, len, "%s", w->db_error_msg);
        return OUT_RESUME;
    }
    if (w->proto_error[0]) {
        *retryable = true;
        snprintf(why, len, "worker protocol error: %s", w->proto_error);
        return OUT_FAILED;
    }
    if (w->have_final && w->final.kind == SVC_EV_DONE) {
        if (end->exit_status != 0 || end->term_signal)
            svc_log_run(SVC_LOG_WARNING, w->run_id, "the worker reported done but exited with status %lld signal %d",
                        (long long)end->exit_status, end->term_signal);
        if (all_epochs_recorded(w, why, len))
            return OUT_DONE;
        *retryable = true; /* without a database error, a worker that claims epochs it never reported */
        return OUT_FAILED;
    }
    if (w->have_final && w->final.kind == SVC_EV_FAILED) {
        *retryable = w->final.retryable && status_retryable(w->final.code);
        snprintf(why, len, "%s", w->final.error);
        return OUT_FAILED;
    }
    if (w->have_final && w->final.kind == SVC_EV_INTERRUPTED)
        return OUT_INTERRUPTED;
    if (end->term_signal) {
        snprintf(why, len, "the worker was killed by signal %d (SIG%s)", end->term_signal,
                 signal_name(end->term_signal));
        if (w->term_sent && (end->term_signal == SIGKILL || end->term_signal == SIGTERM))
            return OUT_INTERRUPTED; /* we stopped it and it did not get to say so */
        *retryable = true;
        return OUT_FAILED;
    }
    *retryable = status_retryable(end->exit_status);
    snprintf(why, len, "the worker exited with status %lld without reporting how the run ended",
             (long long)end->exit_status);
    return OUT_FAILED;
}

/* ---- recording the end, now or later ---- */

typedef enum end_kind { END_FINISH, END_REQUEUE, END_RETRY } end_kind;

/* An end to record: the run's new status (finish) or its return to the queue. */
struct svc_end {
    svc_end *next;
    int64_t run_id;
    end_kind kind;
    db_status status; /* END_FINISH */
    char text[4400];  /* the error (finish), or the note (requeue, retry); "" for none */
};

static int apply_end(svc_service *sv, const svc_end *e)
{
    const char *text = e->text[0] ? e->text : NULL;
    switch (e->kind) {
    case END_FINISH: return db_run_finish(sv->db, e->run_id, e->status, text);
    case END_REQUEUE: return db_run_requeue(sv->db, e->run_id, text);
    case END_RETRY: return db_run_retry(sv->db, e->run_id, text);
    }
    return DB_EINVAL;
}

/* Records it, or keeps it to try again at the next poll when the database
 * is busy or full: a run never stays `running` without a worker. */
static void record(svc_service *sv, const svc_end *e, const char *what)
{
    int rc = apply_end(sv, e);
    if (rc == 0) {
        if (e->kind != END_FINISH)
            svc_observe_restart(sv);
        return;
    }
    svc_observe_db_error(sv);
    svc_log_run(SVC_LOG_ERR, e->run_id, "cannot record that the run %s: %s%s", what, db_last_error(),
                rc == DB_EBUSY || rc == DB_EFULL ? "; trying again" : "");
    svc_guard_db_write(sv, rc);
    if (rc != DB_EBUSY && rc != DB_EFULL)
        return; /* not a passing condition: the run resumes at the next start */
    svc_end *k = malloc(sizeof *k);
    if (!k) {
        svc_log_run(SVC_LOG_ERR, e->run_id, "out of memory keeping its end: it resumes at the next start");
        return;
    }
    *k = *e;
    k->next = sv->unrecorded;
    sv->unrecorded = k;
}

void svc_attempt_record_pending(svc_service *sv)
{
    svc_end **pp = &sv->unrecorded;
    while (*pp) {
        svc_end *e = *pp;
        int rc = apply_end(sv, e);
        if (rc == DB_EBUSY || rc == DB_EFULL) {
            pp = &e->next;
            continue;
        }
        if (rc == 0)
            svc_log_run(SVC_LOG_INFO, e->run_id, "its end is recorded now");
        else
            svc_log_run(SVC_LOG_ERR, e->run_id, "cannot record its end: %s", db_last_error());
        *pp = e->next;
        free(e);
    }
}

void svc_attempt_drop_pending(svc_service *sv)
{
    while (sv->unrecorded) {
        svc_end *e = sv->unrecorded;
        sv->unrecorded = e->next;
        svc_log_run(SVC_LOG_WARNING, e->run_id, "its end was never recorded: it resumes at the next start");
        free(e);
    }
}

static void record_end(svc_attempt *w, const svc_job_end *end)
{
    svc_service *sv = w->sv;
    bool retryable;
    char why[4200], low[256];
    outcome out = judge(w, end, &retryable, why, sizeof why);
    /* a failure while the disk is full is the disk's, not the run's */
    if (out == OUT_FAILED && retryable && svc_guard_disk_low(sv, low, sizeof low)) {
        out = OUT_RESUME;
        snprintf(why + strlen(why), sizeof why - strlen(why), " (%s)", low + strlen("waiting: "));
    }
    if (sv->exec->ops->queues) { /* a cluster's job: attempt_cluster.c */
        svc_cluster_record_end(w, end, out == OUT_DONE, out == OUT_INTERRUPTED || out == OUT_RESUME, retryable,
                               why);
        return;
    }
    svc_end e = {.run_id = w->run_id};
    const char *what;
    if (out == OUT_DONE) {
        what = "done";
        e = (svc_end){.run_id = w->run_id, .kind = END_FINISH, .status = DB_DONE};
        double secs = (double)(uv_now(sv->loop) - w->started_ms) / 1000.0;
        svc_log_run(SVC_LOG_INFO, w->run_id, "done: %lld epochs, best test accuracy %.4f at epoch %lld (worker %.1f s)",
                    (long long)w->final.epochs_done, w->final.best_test_acc, (long long)w->final.best_epoch, secs);
    } else if (w->cancel) {
        what = "cancelled";
        e.kind = END_FINISH;
        e.status = DB_CANCELLED;
        snprintf(e.text, sizeof e.text, "%s", w->cancel_reason);
        svc_log_run(SVC_LOG_INFO, w->run_id, "cancelled (%s); its checkpoint stays", w->cancel_reason);
    } else if ((out == OUT_INTERRUPTED || out == OUT_RESUME) && sv->stopping) {
        what = "interrupted";
        e.kind = END_FINISH;
        e.status = DB_INTERRUPTED;
        svc_log_run(SVC_LOG_INFO, w->run_id, "interrupted; it resumes from its last checkpoint at the next start");
    } else if (out == OUT_INTERRUPTED) {
        what = "queued again";
        e.kind = END_REQUEUE;
        snprintf(e.text, sizeof e.text, "its worker was interrupted from outside; resuming");
        svc_log_run(SVC_LOG_WARNING, w->run_id, "the worker was interrupted from outside the service; queued again");
    } else if (out == OUT_RESUME) {
        what = "queued again";
        e.kind = END_REQUEUE;
        snprintf(e.text, sizeof e.text, "resuming from its checkpoint: %s", why);
        svc_log_run(SVC_LOG_WARNING, w->run_id, "%s", e.text);
    } else if (retryable && w->failures + 1 < sv->cfg.max_attempts) {
        what = "queued again";
        e.kind = END_RETRY;
        snprintf(e.text, sizeof e.text, "attempt %lld of %d failed: %s; retrying from the last checkpoint",
                 (long long)w->failures + 1, sv->cfg.max_attempts, why);
        svc_log_run(SVC_LOG_WARNING, w->run_id, "%s", e.text);
    } else {
        what = "failed";
        e.kind = END_FINISH;
        e.status = DB_FAILED;
        if (retryable)
            snprintf(e.text, sizeof e.text, "%s (after %lld attempts)", why, (long long)w->failures + 1);
        else
            snprintf(e.text, sizeof e.text, "%s", why);
        svc_log_run(SVC_LOG_ERR, w->run_id, "failed: %s", e.text);
    }
    record(sv, &e, what);
}

static void on_ended(void *ctx, const svc_job_end *end)
{
    svc_attempt *w = ctx;
    svc_service *sv = w->sv;
    w->job = NULL; /* the executor frees it */
    svc_log_run(end->term_signal || end->exit_status ? SVC_LOG_INFO : SVC_LOG_DEBUG, w->run_id,
                "worker %lld exited (status %lld%s%s)", (long long)w->worker_id, (long long)end->exit_status,
                end->term_signal ? ", signal " : "", end->term_signal ? signal_name(end->term_signal) : "");
    if (w->recorded) /* a worker whose run could not be marked running records nothing */
        record_end(w, end);
    for (svc_attempt **pp = &sv->attempts; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    sv->n_attempts--;
    assert(sv->n_attempts >= 0);
    if (!sv->exec->ops->queues) /* a cluster's jobs take no slot here */
        svc_slots_release(&sv->slots, &w->place);
    uv_close((uv_handle_t *)&w->stop_timer, attempt_closed);
    svc_attempt_gone(sv);
}

/* ---- stopping ---- */

static void signal_worker(svc_attempt *w, svc_signal s)
{
    if (w->job && w->sv->exec->ops->signal(w->job, s) < 0)
        svc_log_run(SVC_LOG_WARNING, w->run_id, "%s", svc_last_error());
}

void svc_attempt_kill(svc_attempt *w)
{
    if (!w->job || w->kill_sent)
        return;
    w->kill_sent = w->term_sent = true;
    signal_worker(w, SVC_SIGNAL_KILL);
}

static void on_stop_timeout(uv_timer_t *t)
{
    svc_attempt *w = t->data;
    if (!w->job)
        return;
    svc_log_run(SVC_LOG_WARNING, w->run_id, "the worker did not stop within %lld s; killing it",
                (long long)(w->sv->cfg.stop_timeout_ms / 1000));
    svc_attempt_kill(w);
}

void svc_attempt_stop(svc_attempt *w, bool cancel, const char *reason)
{
    if (cancel && !w->cancel) {
        w->cancel = true;
        snprintf(w->cancel_reason, sizeof w->cancel_reason, "%s", reason ? reason : "cancelled");
    }
    if (!w->job || w->term_sent)
        return;
    w->term_sent = true;
    signal_worker(w, cancel ? SVC_SIGNAL_CANCEL : SVC_SIGNAL_STOP);
    uv_timer_start(&w->stop_timer, on_stop_timeout, (uint64_t)w->sv->cfg.stop_timeout_ms, 0);
}

/* The worker broke the protocol: its attempt fails (and is retried). */
static void protocol_error(svc_attempt *w, const char *msg)
{
    if (w->proto_error[0])
        return;
    snprintf(w->proto_error, sizeof w->proto_error, "%s", msg);
    svc_log_run(SVC_LOG_ERR, w->run_id, "worker protocol error: %s; killing the worker", msg);
    svc_attempt_kill(w);
    w->term_sent = false; /* this kill is a failure, not a stop */
}

/* ---- events ---- */

static void on_epoch(svc_attempt *w, const svc_event *e)
{
    svc_service *sv = w->sv;
    db_epoch row = {.run_id = w->run_id, .epoch = e->epoch, .train_loss = e->train_loss, .train_acc = e->train_acc,
                    .test_loss = e->test_loss, .test_acc = e->test_acc, .lr = e->lr, .seconds = e->seconds,
                    .samples_per_sec = e->samples_per_sec};
    int rc = db_begin(sv->db);
    if (rc == 0)
        rc = db_epoch_put(sv->db, &row);
    if (rc == 0 && e->checkpoint[0])
        rc = db_run_set_checkpoint(sv->db, w->run_id, e->checkpoint, e->best_epoch);
    if (rc == 0)
        rc = db_commit(sv->db);
    else
        db_rollback(sv->db);
    if (rc < 0) {
        svc_guard_db_write(sv, rc);
        svc_observe_db_error(sv);
        if (!w->db_error) {
            w->db_error = true;
            snprintf(w->db_error_msg, sizeof w->db_error_msg, "cannot record epoch %lld: %s", (long long)e->epoch,
                     db_last_error());
            svc_log_run(SVC_LOG_ERR, w->run_id, "%s; stopping the worker to retry from its checkpoint",
                        w->db_error_msg);
            svc_attempt_stop(w, false, NULL);
        }
        return;
    }
    if (e->epoch > w->epochs_done)
        w->epochs_done = e->epoch;
    if (e->replayed) {
        svc_log_run(SVC_LOG_DEBUG, w->run_id, "epoch %lld re-reported from the worker's history", (long long)e->epoch);
        return;
    }
    svc_observe_epoch(sv, w->samples_per_epoch);
    svc_log_run(SVC_LOG_INFO, w->run_id,
                "epoch %lld/%lld: train loss %.4f acc %.4f, test loss %.4f acc %.4f, %.1f s, %.0f images/s",
                (long long)e->epoch, (long long)w->epochs_planned, e->train_loss, e->train_acc, e->test_loss,
                e->test_acc, e->seconds, e->samples_per_sec);
    svc_sched_status(sv);
}

static void on_started(svc_attempt *w, const svc_event *e)
{
    svc_service *sv = w->sv;
    w->epochs_planned = e->epochs;
    w->samples_per_epoch = e->train_samples;
    w->epoch_now = e->resumed_epoch + 1;
    w->epochs_done = e->resumed_epoch;
    if (e->params >= 0 && db_run_set_params(sv->db, w->run_id, e->params) < 0) {
        svc_observe_db_error(sv);
        svc_log_run(SVC_LOG_WARNING, w->run_id, "cannot record the parameter count: %s", db_last_error());
    }
    if (e->resumed_epoch > 0)
        svc_log_run(SVC_LOG_INFO, w->run_id, "worker %lld resumed after epoch %lld of %lld on %s (%lld threads)",
                    (long long)e->pid, (long long)e->resumed_epoch, (long long)e->epochs, w->place.device,
                    (long long)e->threads);
    else
        svc_log_run(SVC_LOG_INFO, w->run_id, "worker %lld started: %lld epochs of %lld steps on %s (%lld threads)",
                    (long long)e->pid, (long long)e->epochs, (long long)e->steps_per_epoch, w->place.device,
                    (long long)e->threads);
    svc_sched_status(sv);
}

static void on_progress(svc_attempt *w, const svc_event *e)
{
    svc_service *sv = w->sv;
    w->epoch_now = e->epoch;
    uint64_t now = uv_now(sv->loop);
    if (now - w->last_progress_ms < PROGRESS_DB_MS && e->step != e->steps)
        return;
    w->last_progress_ms = now;
    db_progress p = {.epoch = e->epoch, .fraction = (double)e->step / (double)e->steps,
                     .images_per_sec = e->images_per_sec, .samples_per_epoch = w->samples_per_epoch};
    if (db_run_progress(sv->db, w->run_id, &p) < 0) {
        svc_observe_db_error(sv);
        svc_log_run(SVC_LOG_DEBUG, w->run_id, "cannot record progress: %s", db_last_error());
    }
}

static void on_line(void *ctx, const char *line, size_t len)
{
    svc_attempt *w = ctx;
    if (w->proto_error[0] || len == 0)
        return; /* after an error the rest is discarded */
    svc_event e;
    if (svc_event_parse(line, len, &e) < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s in \"%.120s%s\"", svc_last_error(), line, len > 120 ? "..." : "");
        protocol_error(w, msg);
        return;
    }
    if (w->have_final) {
        char msg[128];
        snprintf(msg, sizeof msg, "a \"%s\" event after the final \"%s\"", svc_event_name(e.kind),
                 svc_event_name(w->final.kind));
        protocol_error(w, msg);
        return;
    }
    switch (e.kind) {
    case SVC_EV_STARTED: on_started(w, &e); break;
    case SVC_EV_PROGRESS: on_progress(w, &e); break;
    case SVC_EV_EPOCH: on_epoch(w, &e); break;
    case SVC_EV_DONE:
    case SVC_EV_FAILED:
    case SVC_EV_INTERRUPTED:
        w->have_final = true;
        w->final = e;
        break;
    }
}

static void on_log(void *ctx, const char *line, size_t len)
{
    svc_attempt *w = ctx;
    if (len) {
        svc_log_run(SVC_LOG_INFO, w->run_id, "worker: %s", line);
        svc_observe_message(w->sv, w->run_id, line, len);
    }
}

static void on_broken(void *ctx)
{
    protocol_error(ctx, svc_last_error());
}

/* ---- starting ---- */

/* Writes the run's spec text where the worker reads it (atomically). */
static int write_spec(const char *dir, const char *text, char *path, size_t len)
{
    char tmp[4200];
    snprintf(path, len, "%s/spec.yaml", dir);
    snprintf(tmp, sizeof tmp, "%s/spec.yaml.tmp", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return svc_error(SVC_EIO, "cannot create %s: %s", tmp, strerror(errno));
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t wr = write(fd, text + off, n - off);
        if (wr < 0 && errno == EINTR)
            continue;
        if (wr < 0) {
            int rc = svc_error(SVC_EIO, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return rc;
        }
        off += (size_t)wr;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        int rc = svc_error(SVC_EIO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    return 0;
}

/* What CUDA_VISIBLE_DEVICES names host GPU `ordinal`: the service's own
 * CUDA_VISIBLE_DEVICES (if any) decides what ordinal i is. */
static void visible_device(int ordinal, char *out, size_t len)
{
    const char *v = getenv("CUDA_VISIBLE_DEVICES");
    if (v && *v) {
        const char *p = v;
        for (int i = 0; i < ordinal && p; i++) {
            p = strchr(p, ',');
            if (p)
                p++;
        }
        if (p && *p) {
            size_t n = strcspn(p, ",");
            snprintf(out, len, "%.*s", (int)n, p);
            return;
        }
    }
    snprintf(out, len, "%d", ordinal);
}

/* The worker's command line and environment for one attempt. The strings
 * live in the caller's buffers. */
typedef struct worker_command {
    const char *argv[26 + 2 * SVC_MAX_DATA_ROOTS];
    const char *env[5];
    char download_root[4096]; /* data_root, absolute: where a spec's data.download went */
    char threads[16], env_cuda[160], env_threads[48], env_pid[48], env_ns[160];
} worker_command;

static void build_command(const svc_service *sv, const db_run *r, const svc_placement *p, const char *key,
                          const char *spec_path, worker_command *c)
{
    int threads = svc_config_threads(&sv->cfg);
    snprintf(c->threads, sizeof c->threads, "%d", threads);
    int na = 0;
    const char **a = c->argv;
    a[na++] = sv->exe;
    a[na++] = "worker";
    a[na++] = "--spec-file";
    a[na++] = spec_path;
    a[na++] = "--spec-path";
    a[na++] = r->spec_path ? r->spec_path : spec_path;
    a[na++] = "--key";
    a[na++] = key;
    a[na++] = "--state-dir";
    a[na++] = sv->state_dir;
    a[na++] = "--device";
    a[na++] = p->gpu >= 0 ? "cuda:0" : "cpu";
    if (p->gpu < 0) {
        a[na++] = "--threads";
        a[na++] = c->threads;
    }
    if (r->attempts > 0) /* a run that started before continues from its checkpoint */
        a[na++] = "--resume";
    for (int i = 0; i < sv->cfg.n_data_roots && i < SVC_MAX_DATA_ROOTS; i++) {
        a[na++] = "--data-root";
        a[na++] = sv->cfg.data_roots[i];
    }
    if (sv->cfg.data.root && spec_resolve_path("", sv->cfg.data.root, c->download_root, sizeof c->download_root) == 0) {
        a[na++] = "--download-root";
        a[na++] = c->download_root;
    }
    a[na] = NULL;

    char visible[128] = "";
    if (p->gpu >= 0)
        visible_device(p->ordinal, visible, sizeof visible);
    snprintf(c->env_cuda, sizeof c->env_cuda, "CUDA_VISIBLE_DEVICES=%s", visible);
    snprintf(c->env_threads, sizeof c->env_threads, "EPOCHD_THREADS=%d", threads);
    snprintf(c->env_pid, sizeof c->env_pid, "EPOCHD_SERVICE_PID=%ld", (long)getpid());
    int ne = 0;
    c->env[ne++] = c->env_cuda;
    if (p->gpu < 0)
        c->env[ne++] = c->env_threads;
    c->env[ne++] = c->env_pid;
    /* where that pid means something: a worker elsewhere does not look it up */
    char ns[128];
    if (svc_process_ns(ns, sizeof ns) == 0) {
        snprintf(c->env_ns, sizeof c->env_ns, "EPOCHD_SERVICE_NS=%s", ns);
        c->env[ne++] = c->env_ns;
    }
    c->env[ne] = NULL;
}

/* A new attempt of run r on placement p, not yet linked. */
static svc_attempt *attempt_new(svc_service *sv, const db_run *r, const svc_placement *p)
{
    svc_attempt *w = calloc(1, sizeof *w);
    if (!w || !(w->name = strdup(r->name ? r->name : "?"))) {
        free(w);
        svc_error(SVC_ENOMEM, "out of memory starting the worker");
        return NULL;
    }
    w->sv = sv;
    w->run_id = r->id;
    w->place = *p;
    w->attempts = r->attempts + 1;
    w->failures = r->failures;
    w->epochs_planned = r->epochs_planned;
    w->started_ms = uv_now(sv->loop);
    return w;
}

static svc_job_events attempt_events(svc_attempt *w)
{
    return (svc_job_events){.ctx = w, .line = on_line, .log = on_log, .broken = on_broken, .ended = on_ended,
                            .state = svc_cluster_on_state, .restarted = svc_cluster_on_restarted};
}

/* Its job has started: the attempt is in flight. */
static void attempt_link(svc_service *sv, svc_attempt *w)
{
    uv_timer_init(sv->loop, &w->stop_timer);
    w->stop_timer.data = w;
    w->worker_id = sv->exec->ops->id(w->job);
    w->next = sv->attempts;
    sv->attempts = w;
    sv->n_attempts++;
}

int svc_attempt_start(svc_service *sv, const db_run *r, const svc_placement *p)
{
    /* a sweep combination's spec is derived from its file (run_spec.h) */
    spec_options opt;
    svc_config_spec_options(&sv->cfg, &opt);
    char *text = NULL;
    int rc = svc_run_spec_text(sv->db, r, &opt, &text, NULL);
    if (rc < 0)
        return rc;
    if (!text)
        return svc_error(SVC_EINVAL, "the run has no spec text");
    char key[32], dir[4096], spec_path[4200];
    snprintf(key, sizeof key, "%lld", (long long)r->id);
    rc = svc_run_dir_make(sv->state_dir, key, dir, sizeof dir);
    if (rc == 0)
        rc = write_spec(dir, text, spec_path, sizeof spec_path);
    if (rc < 0) {
        free(text);
        return rc;
    }
    worker_command cmd;
    build_command(sv, r, p, key, spec_path, &cmd);

    svc_attempt *w = attempt_new(sv, r, p);
    if (!w) {
        free(text);
        return SVC_ENOMEM;
    }
    svc_launch l = {.run_id = r->id, .name = w->name, .spec = text, .run_dir = dir, .argv = cmd.argv,
                    .env = cmd.env, .place = p, .threads = svc_config_threads(&sv->cfg)};
    svc_job_events ev = attempt_events(w);
    rc = sv->exec->ops->start(sv->exec, &l, &ev, &w->job);
    free(text);
    if (rc < 0) {
        free(w->name);
        free(w);
        return rc;
    }
    attempt_link(sv, w);
    if (sv->exec->ops->queues)
        return svc_cluster_submitted(w, r); /* the run stays queued until its job runs */
    if (db_run_start(sv->db, r->id, p->device, w->worker_id) < 0) {
        svc_log_run(SVC_LOG_ERR, r->id, "cannot mark the run running (%s); stopping its worker", db_last_error());
        svc_attempt_kill(w); /* `recorded` stays false: its end records nothing */
        return 0;
    }
    w->recorded = true;
    svc_observe_worker_start(sv);
    svc_log_run(SVC_LOG_INFO, r->id, "starting %s on %s: worker %lld, attempt %lld of %d%s", w->name, p->device,
                (long long)w->worker_id, (long long)w->attempts, sv->cfg.max_attempts,
                r->attempts > 0 ? ", resuming from its checkpoint" : "");
    return 0;
}

int svc_attempt_adopt(svc_service *sv, const db_run *r, const svc_placement *p)
{
    if (!sv->exec->ops->adopt)
        return svc_error(SVC_EINTERNAL, "the %s executor cannot adopt jobs", sv->exec->ops->name);
    svc_attempt *w = attempt_new(sv, r, p);
    if (!w)
        return SVC_ENOMEM;
    svc_job_events ev = attempt_events(w);
    int rc = sv->exec->ops->adopt(sv->exec, r, &ev, &w->job);
    if (rc < 0) {
        free(w->name);
        free(w);
        return rc;
    }
    attempt_link(sv, w);
    svc_cluster_adopted(w, r);
    return 0;
}
