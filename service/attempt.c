/* The executor: one `epochd worker` child per run (uv_spawn), its device
 * in its environment, its stdout read as JSON lines and turned into
 * database writes (the worker never opens the database), its stderr copied
 * into the log with the run id, and its end turned into the run's status:
 * done, failed (with the reason), cancelled, interrupted, or queued again
 * for a retry that resumes from the last checkpoint. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sysexits.h>
#define EX_INTERRUPTED 130 /* temporary */
#include "service/log.h"
#include "service/paths.h"
#include "service/internal.h"

extern char **environ;

#define DRAIN_MS 2000         /* after exit, how long the pipes may stay open */
#define PROGRESS_DB_MS 1000   /* progress rows at most this often */

static char read_buf_out[65536], read_buf_err[16384];

svc_attempt *svc_attempt_find(svc_service *sv, int64_t run_id)
{
    for (svc_attempt *w = sv->workers; w; w = w->next)
        if (w->run_id == run_id)
            return w;
    return NULL;
}

/* ---- ending ---- */

static void worker_closed(uv_handle_t *h)
{
    svc_attempt *w = h->data;
    if (--w->open_handles == 0) {
        svc_linebuf_free(&w->outbuf);
        svc_linebuf_free(&w->errbuf);
        free(w->name);
        free(w);
    }
}

static void close_handles(svc_attempt *w)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&w->proc, (uv_handle_t *)&w->out, (uv_handle_t *)&w->err,
                         (uv_handle_t *)&w->timer};
    for (int i = 0; i < 4; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], worker_closed);
}

typedef enum outcome { OUT_DONE, OUT_FAILED, OUT_INTERRUPTED } outcome;

static const char *signal_name(int sig)
{
    const char *s = sigabbrev_np(sig);
    return s ? s : "?";
}

static void record_end(svc_attempt *w)
{
    svc_service *sv = w->sv;
    outcome out;
    bool retryable = false;
    char why[4200] = "";
    if (w->proto_error[0]) {
        out = OUT_FAILED;
        retryable = true;
        snprintf(why, sizeof why, "worker protocol error: %s", w->proto_error);
    } else if (w->have_final && w->final.kind == SVC_EV_DONE) {
        out = OUT_DONE;
        if (w->exit_status != 0 || w->term_signal)
            svc_log_run(SVC_LOG_WARNING, w->run_id, "the worker reported done but exited with status %lld signal %d",
                        (long long)w->exit_status, w->term_signal);
    } else if (w->have_final && w->final.kind == SVC_EV_FAILED) {
        out = OUT_FAILED;
        retryable = w->final.retryable && w->final.code != EX_DATAERR && w->final.code != EX_NOINPUT;
        snprintf(why, sizeof why, "%s", w->final.error);
    } else if (w->have_final && w->final.kind == SVC_EV_INTERRUPTED) {
        out = OUT_INTERRUPTED;
    } else if (w->term_signal) {
        if (w->term_sent && (w->term_signal == SIGKILL || w->term_signal == SIGTERM)) {
            out = OUT_INTERRUPTED; /* we stopped it and it did not get to say so */
        } else {
            out = OUT_FAILED;
            retryable = true;
        }
        snprintf(why, sizeof why, "the worker was killed by signal %d (SIG%s)", w->term_signal,
                 signal_name(w->term_signal));
    } else {
        out = OUT_FAILED;
        retryable = w->exit_status != EX_DATAERR && w->exit_status != EX_NOINPUT;
        snprintf(why, sizeof why, "the worker exited with status %lld without reporting how the run ended",
                 (long long)w->exit_status);
    }
    if (w->db_error && out != OUT_DONE) {
        out = OUT_FAILED;
        retryable = true;
        snprintf(why, sizeof why, "%s", w->db_error_msg);
    }

    int rc;
    const char *what;
    char note[4400];
    if (out == OUT_DONE) {
        what = "done";
        rc = db_run_finish(sv->db, w->run_id, DB_DONE, NULL);
        double secs = (double)(uv_now(sv->loop) - w->started_ms) / 1000.0;
        svc_log_run(SVC_LOG_INFO, w->run_id, "done: %lld epochs, best test accuracy %.4f at epoch %lld (worker %.1f s)",
                    (long long)w->final.epochs_done, w->final.best_test_acc, (long long)w->final.best_epoch, secs);
    } else if (w->cancel) {
        what = "cancelled";
        rc = db_run_finish(sv->db, w->run_id, DB_CANCELLED, w->cancel_reason);
        svc_log_run(SVC_LOG_INFO, w->run_id, "cancelled (%s); its checkpoint stays", w->cancel_reason);
    } else if (out == OUT_INTERRUPTED && sv->stopping) {
        what = "interrupted";
        rc = db_run_finish(sv->db, w->run_id, DB_INTERRUPTED, NULL);
        svc_log_run(SVC_LOG_INFO, w->run_id, "interrupted; it resumes from its last checkpoint at the next start");
    } else if (out == OUT_INTERRUPTED) {
        what = "queued again";
        rc = db_run_requeue(sv->db, w->run_id, "its worker was interrupted from outside; resuming");
        svc_log_run(SVC_LOG_WARNING, w->run_id, "the worker was interrupted from outside the service; queued again");
    } else if (retryable && w->attempts < sv->cfg.max_attempts) {
        what = "queued again";
        snprintf(note, sizeof note, "attempt %lld of %d failed: %s; retrying from the last checkpoint",
                 (long long)w->attempts, sv->cfg.max_attempts, why);
        rc = db_run_requeue(sv->db, w->run_id, note);
        svc_log_run(SVC_LOG_WARNING, w->run_id, "%s", note);
    } else {
        what = "failed";
        if (retryable) {
            size_t l = strlen(why);
            snprintf(why + l, sizeof why - l, " (after %lld attempts)", (long long)w->attempts);
        }
        rc = db_run_finish(sv->db, w->run_id, DB_FAILED, why);
        svc_log_run(SVC_LOG_ERR, w->run_id, "failed: %s", why);
    }
    if (rc < 0)
        svc_log_run(SVC_LOG_ERR, w->run_id, "cannot record that the run %s: %s", what, db_last_error());
}

static void finish(svc_attempt *w)
{
    if (w->finished)
        return;
    w->finished = true;
    svc_service *sv = w->sv;
    if (w->pid > 0) /* a worker whose run could not be marked running records nothing */
        record_end(w);
    for (svc_attempt **pp = &sv->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    sv->n_workers--;
    svc_slots_release(&sv->slots, &w->place);
    close_handles(w);
    svc_attempt_gone(sv);
}

static void maybe_finish(svc_attempt *w)
{
    if (w->exited && w->out_eof && w->err_eof)
        finish(w);
}

static void on_drain_timeout(uv_timer_t *t)
{
    svc_attempt *w = t->data;
    svc_log_run(SVC_LOG_WARNING, w->run_id,
                "the worker's output stayed open after it exited (a child of it?); killing its process group");
    if (w->pid > 0)
        kill(-(pid_t)w->pid, SIGKILL);
    if (!w->out_eof)
        uv_read_stop((uv_stream_t *)&w->out);
    if (!w->err_eof)
        uv_read_stop((uv_stream_t *)&w->err);
    w->out_eof = w->err_eof = true;
    finish(w);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    svc_attempt *w = p->data;
    w->exited = true;
    w->exit_status = status;
    w->term_signal = sig;
    svc_log_run(sig || status ? SVC_LOG_INFO : SVC_LOG_DEBUG, w->run_id, "worker %lld exited (status %lld%s%s)",
                (long long)w->pid, (long long)status, sig ? ", signal " : "", sig ? signal_name(sig) : "");
    uv_timer_stop(&w->timer);
    if (!(w->out_eof && w->err_eof))
        uv_timer_start(&w->timer, on_drain_timeout, DRAIN_MS, 0);
    maybe_finish(w);
}

/* ---- stopping ---- */

static void on_stop_timeout(uv_timer_t *t)
{
    svc_attempt *w = t->data;
    if (w->exited)
        return;
    svc_log_run(SVC_LOG_WARNING, w->run_id, "the worker did not stop within %lld s; killing it",
                (long long)(w->sv->cfg.stop_timeout_ms / 1000));
    svc_attempt_kill(w);
}

/* Signals the worker's process group (it leads one: UV_PROCESS_DETACHED),
 * so that a wrapper's children (worker_prefix) get it too. */
static int signal_worker(svc_attempt *w, int sig)
{
    if (w->pid > 0 && kill(-(pid_t)w->pid, sig) == 0)
        return 0;
    return uv_process_kill(&w->proc, sig);
}

void svc_attempt_kill(svc_attempt *w)
{
    if (w->exited || w->kill_sent)
        return;
    w->kill_sent = w->term_sent = true;
    signal_worker(w, SIGKILL);
}

void svc_attempt_stop(svc_attempt *w, bool cancel, const char *reason)
{
    if (cancel && !w->cancel) {
        w->cancel = true;
        snprintf(w->cancel_reason, sizeof w->cancel_reason, "%s", reason ? reason : "cancelled");
    }
    if (w->exited || w->term_sent)
        return;
    w->term_sent = true;
    int rc = signal_worker(w, SIGTERM);
    if (rc < 0 && rc != UV_ESRCH)
        svc_log_run(SVC_LOG_WARNING, w->run_id, "cannot signal the worker: %s", uv_strerror(rc));
    uv_timer_start(&w->timer, on_stop_timeout, (uint64_t)w->sv->cfg.stop_timeout_ms, 0);
}

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
    svc_log_run(SVC_LOG_INFO, w->run_id,
                "epoch %lld/%lld: train loss %.4f acc %.4f, test loss %.4f acc %.4f, %.1f s, %.0f images/s",
                (long long)e->epoch, (long long)w->epochs_planned, e->train_loss, e->train_acc, e->test_loss,
                e->test_acc, e->seconds, e->samples_per_sec);
    svc_sched_status(sv);
}

static int on_line(void *ctx, const char *line, size_t len)
{
    svc_attempt *w = ctx;
    svc_service *sv = w->sv;
    if (w->proto_error[0])
        return 0; /* the rest is discarded */
    if (len == 0)
        return 0;
    svc_event e;
    char err[256];
    if (svc_event_parse(line, len, &e, err, sizeof err) < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s in \"%.120s%s\"", err, line, len > 120 ? "..." : "");
        protocol_error(w, msg);
        return 0;
    }
    if (w->have_final) {
        char msg[128];
        snprintf(msg, sizeof msg, "a \"%s\" event after the final \"%s\"", svc_event_name(e.kind),
                 svc_event_name(w->final.kind));
        protocol_error(w, msg);
        return 0;
    }
    switch (e.kind) {
    case SVC_EV_STARTED:
        w->epochs_planned = e.epochs;
        w->samples_per_epoch = e.train_samples;
        w->epoch_now = e.resumed_epoch + 1;
        w->epochs_done = e.resumed_epoch;
        if (e.params >= 0 && db_run_set_params(sv->db, w->run_id, e.params) < 0)
            svc_log_run(SVC_LOG_WARNING, w->run_id, "cannot record the parameter count: %s", db_last_error());
        if (e.resumed_epoch > 0)
            svc_log_run(SVC_LOG_INFO, w->run_id, "worker %lld resumed after epoch %lld of %lld on %s (%lld threads)",
                        (long long)e.pid, (long long)e.resumed_epoch, (long long)e.epochs, w->place.device,
                        (long long)e.threads);
        else
            svc_log_run(SVC_LOG_INFO, w->run_id, "worker %lld started: %lld epochs of %lld steps on %s (%lld threads)",
                        (long long)e.pid, (long long)e.epochs, (long long)e.steps_per_epoch, w->place.device,
                        (long long)e.threads);
        svc_sched_status(sv);
        break;
    case SVC_EV_PROGRESS: {
        w->epoch_now = e.epoch;
        uint64_t now = uv_now(sv->loop);
        if (now - w->last_progress_ms >= PROGRESS_DB_MS || e.step == e.steps) {
            w->last_progress_ms = now;
            db_progress p = {.epoch = e.epoch, .fraction = (double)e.step / (double)e.steps,
                             .images_per_sec = e.images_per_sec, .samples_per_epoch = w->samples_per_epoch};
            if (db_run_progress(sv->db, w->run_id, &p) < 0)
                svc_log_run(SVC_LOG_DEBUG, w->run_id, "cannot record progress: %s", db_last_error());
        }
        break;
    }
    case SVC_EV_EPOCH: on_epoch(w, &e); break;
    case SVC_EV_DONE:
    case SVC_EV_FAILED:
    case SVC_EV_INTERRUPTED:
        w->have_final = true;
        w->final = e;
        break;
    }
    return 0;
}

static int on_err_line(void *ctx, const char *line, size_t len)
{
    svc_attempt *w = ctx;
    if (len)
        svc_log_run(SVC_LOG_INFO, w->run_id, "worker: %s", line);
    return 0;
}

static void alloc_out(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf_out, sizeof read_buf_out);
}

static void alloc_err(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(read_buf_err, sizeof read_buf_err);
}

static void on_read_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    svc_attempt *w = s->data;
    if (n > 0) {
        if (w->proto_error[0])
            return;
        int rc = svc_linebuf_feed(&w->outbuf, buf->base, (size_t)n, on_line, w);
        if (rc == -1) {
            char msg[128];
            snprintf(msg, sizeof msg, "a line longer than %u bytes", SVC_EVENT_MAX_LINE);
            protocol_error(w, msg);
        } else if (rc == -2) {
            protocol_error(w, "out of memory buffering its output");
        }
        return;
    }
    if (n == 0)
        return;
    if (n != UV_EOF)
        svc_log_run(SVC_LOG_WARNING, w->run_id, "reading the worker's output: %s", uv_strerror((int)n));
    else if (!w->proto_error[0] && w->outbuf.len)
        protocol_error(w, "its output ended in the middle of a line");
    uv_read_stop(s);
    w->out_eof = true;
    maybe_finish(w);
}

static void on_read_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    svc_attempt *w = s->data;
    if (n > 0) {
        svc_linebuf_feed(&w->errbuf, buf->base, (size_t)n, on_err_line, w);
        return;
    }
    if (n == 0)
        return;
    svc_linebuf_finish(&w->errbuf, on_err_line, w);
    uv_read_stop(s);
    w->err_eof = true;
    maybe_finish(w);
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
        return -errno;
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t wr = write(fd, text + off, n - off);
        if (wr < 0 && errno == EINTR)
            continue;
        if (wr < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return -e;
        }
        off += (size_t)wr;
    }
    if (close(fd) < 0 || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return -e;
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

static bool env_dropped(const char *e)
{
    static const char *const drop[] = {"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "LISTEN_FDS=",
                                       "LISTEN_PID=",    "LISTEN_FDNAMES=", "CUDA_VISIBLE_DEVICES=",
                                       "EPOCHD_THREADS=", "EPOCHD_SERVICE_PID="};
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
        if (!strncmp(e, drop[i], strlen(drop[i])))
            return true;
    return false;
}

int svc_attempt_start(svc_service *sv, const db_run *r, const svc_placement *p)
{
    char key[32], dir[4096], spec_path[4200];
    snprintf(key, sizeof key, "%lld", (long long)r->id);
    if (!r->spec) {
        svc_log_run(SVC_LOG_ERR, r->id, "the run has no spec text");
        return -1;
    }
    int rc = -ENAMETOOLONG;
    if (svc_run_dir(sv->state_dir, key, dir, sizeof dir) < 0 || (rc = svc_mkdirs(dir, 0750)) < 0 ||
        (rc = write_spec(dir, r->spec, spec_path, sizeof spec_path)) < 0) {
        svc_log_run(SVC_LOG_ERR, r->id, "cannot prepare %s: %s", dir, strerror(-rc));
        return -1;
    }
    int threads = svc_config_threads(&sv->cfg);
    char threads_s[16], visible[128];
    snprintf(threads_s, sizeof threads_s, "%d", threads);
    if (p->gpu >= 0)
        visible_device(p->ordinal, visible, sizeof visible);
    else
        visible[0] = '\0';

    /* argv: [prefix...] epochd worker ... */
    const char *args[32 + 2 * 64 + 64];
    int na = 0;
    for (int i = 0; i < sv->cfg.n_worker_prefix && i < 64; i++)
        args[na++] = sv->cfg.worker_prefix[i];
    args[na++] = sv->exe;
    args[na++] = "worker";
    args[na++] = "--spec-file";
    args[na++] = spec_path;
    args[na++] = "--spec-path";
    args[na++] = r->spec_path ? r->spec_path : spec_path;
    args[na++] = "--key";
    args[na++] = key;
    args[na++] = "--state-dir";
    args[na++] = sv->state_dir;
    args[na++] = "--device";
    args[na++] = p->gpu >= 0 ? "cuda:0" : "cpu";
    if (p->gpu < 0) {
        args[na++] = "--threads";
        args[na++] = threads_s;
    }
    /* a run that started before continues from its checkpoint */
    if (r->attempts > 0)
        args[na++] = "--resume";
    for (int i = 0; i < sv->cfg.n_data_roots && i < 64; i++) {
        args[na++] = "--data-root";
        args[na++] = sv->cfg.data_roots[i];
    }
    args[na] = NULL;

    /* environment: ours minus systemd's and the device settings, plus the run's */
    size_t ne = 0;
    for (char **e = environ; e && *e; e++)
        ne++;
    char **env = calloc(ne + 4, sizeof *env);
    char env_cuda[160], env_threads[48], env_pid[48];
    if (!env) {
        svc_log_run(SVC_LOG_ERR, r->id, "out of memory starting the worker");
        return -1;
    }
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (!env_dropped(*e))
            env[k++] = *e;
    snprintf(env_cuda, sizeof env_cuda, "CUDA_VISIBLE_DEVICES=%s", visible);
    snprintf(env_threads, sizeof env_threads, "EPOCHD_THREADS=%d", threads);
    snprintf(env_pid, sizeof env_pid, "EPOCHD_SERVICE_PID=%ld", (long)getpid());
    env[k++] = env_cuda;
    if (p->gpu < 0)
        env[k++] = env_threads;
    env[k++] = env_pid;
    env[k] = NULL;

    svc_attempt *w = calloc(1, sizeof *w);
    if (!w || !(w->name = strdup(r->name ? r->name : "?"))) {
        free(w);
        free(env);
        svc_log_run(SVC_LOG_ERR, r->id, "out of memory starting the worker");
        return -1;
    }
    w->sv = sv;
    w->run_id = r->id;
    w->place = *p;
    w->attempts = r->attempts + 1;
    w->epochs_planned = r->epochs_planned;
    w->started_ms = uv_now(sv->loop);
    svc_linebuf_init(&w->outbuf, SVC_EVENT_MAX_LINE, false);
    svc_linebuf_init(&w->errbuf, 4096, true);
    uv_pipe_init(sv->loop, &w->out, 0);
    uv_pipe_init(sv->loop, &w->err, 0);
    uv_timer_init(sv->loop, &w->timer);
    w->out.data = w->err.data = w->timer.data = w->proc.data = w;
    w->open_handles = 4;

    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&w->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&w->err},
    };
    /* its own session: a Ctrl-C meant for the service does not reach the
     * workers directly; the service stops them itself */
    uv_process_options_t opt = {.exit_cb = on_exit_cb, .file = args[0], .args = (char **)args, .env = env,
                                .stdio_count = 3, .stdio = stdio, .flags = UV_PROCESS_DETACHED};
    rc = uv_spawn(sv->loop, &w->proc, &opt);
    free(env);
    if (rc < 0) {
        svc_log_run(SVC_LOG_ERR, r->id, "cannot start a worker (%s): %s", sv->exe, uv_strerror(rc));
        w->finished = true;
        close_handles(w);
        return -1;
    }
    w->pid = w->proc.pid;
    w->next = sv->workers;
    sv->workers = w;
    sv->n_workers++;
    uv_read_start((uv_stream_t *)&w->out, alloc_out, on_read_out);
    uv_read_start((uv_stream_t *)&w->err, alloc_err, on_read_err);
    if (db_run_start(sv->db, r->id, p->device, w->pid) < 0) {
        svc_log_run(SVC_LOG_ERR, r->id, "cannot mark the run running (%s); stopping its worker", db_last_error());
        w->pid = 0; /* record nothing at its end */
        svc_attempt_kill(w);
        return 0;
    }
    svc_log_run(SVC_LOG_INFO, r->id, "starting %s on %s: worker pid %lld, attempt %lld of %d%s", w->name, p->device,
                (long long)w->pid, (long long)w->attempts, sv->cfg.max_attempts,
                r->attempts > 0 ? ", resuming from its checkpoint" : "");
    return 0;
}
