/* The local executor: one child process per job (uv_spawn) in its own
 * process group, stdout and stderr on pipes split into lines, signals to the
 * whole group (a worker_prefix wrapper's children too), and recovery of the
 * workers a crashed service left behind, found through /proc. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "service/config.h"
#include "service/error.h"
#include "service/executor.h"
#include "service/linebuf.h"
#include "service/log.h"
#include "service/protocol.h"

extern char **environ;

#define DRAIN_MS 2000       /* after exit, how long the pipes may stay open */
#define STALE_TERM_MS 10000 /* a stale worker: SIGTERM, then SIGKILL after this */
#define MAX_PREFIX 64
#define MAX_ARGS 256

typedef struct local_exec {
    svc_executor base;
    uv_loop_t *loop;
    const svc_config *cfg;
    char *exe;       /* this epochd, as the workers are started */
    char *state_dir; /* absolute: recognises our workers in /proc */
    int n_jobs;
} local_exec;

struct svc_job {
    local_exec *x;
    svc_job_events ev;
    int64_t run_id;
    int64_t pid;
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t drain;
    svc_linebuf outbuf, errbuf;
    int open_handles;
    bool exited, out_eof, err_eof, ended, broken;
    svc_job_end end;
    char rbuf_out[65536], rbuf_err[16384];
};

/* ---- ending ---- */

static void job_closed(uv_handle_t *h)
{
    svc_job *j = h->data;
    assert(j->open_handles > 0);
    if (--j->open_handles > 0)
        return;
    svc_linebuf_free(&j->outbuf);
    svc_linebuf_free(&j->errbuf);
    j->x->n_jobs--;
    free(j);
}

static void close_handles(svc_job *j)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&j->proc, (uv_handle_t *)&j->out, (uv_handle_t *)&j->err,
                         (uv_handle_t *)&j->drain};
    for (int i = 0; i < 4; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], job_closed);
}

/* Reports the end once the process has exited and both pipes are read out. */
static void maybe_end(svc_job *j)
{
    if (j->ended || !(j->exited && j->out_eof && j->err_eof))
        return;
    j->ended = true;
    uv_timer_stop(&j->drain);
    j->ev.ended(j->ev.ctx, &j->end);
    close_handles(j);
}

static void on_drain_timeout(uv_timer_t *t)
{
    svc_job *j = t->data;
    svc_log_run(SVC_LOG_WARNING, j->run_id,
                "the worker's output stayed open after it exited (a child of it?); killing its process group");
    if (j->pid > 0)
        kill(-(pid_t)j->pid, SIGKILL);
    if (!j->out_eof)
        uv_read_stop((uv_stream_t *)&j->out);
    if (!j->err_eof)
        uv_read_stop((uv_stream_t *)&j->err);
    j->out_eof = j->err_eof = true;
    maybe_end(j);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    svc_job *j = p->data;
    j->exited = true;
    j->end = (svc_job_end){.exit_status = status, .term_signal = sig};
    if (!(j->out_eof && j->err_eof))
        uv_timer_start(&j->drain, on_drain_timeout, DRAIN_MS, 0);
    maybe_end(j);
}

/* ---- reading ---- */

static int on_out_line(void *ctx, const char *line, size_t len)
{
    svc_job *j = ctx;
    if (!j->broken)
        j->ev.line(j->ev.ctx, line, len);
    return 0;
}

static int on_err_line(void *ctx, const char *line, size_t len)
{
    svc_job *j = ctx;
    j->ev.log(j->ev.ctx, line, len);
    return 0;
}

static void broken(svc_job *j)
{
    if (j->broken)
        return;
    j->broken = true; /* the rest of stdout is discarded */
    j->ev.broken(j->ev.ctx);
}

static void alloc_out(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    svc_job *j = h->data;
    *buf = uv_buf_init(j->rbuf_out, sizeof j->rbuf_out);
}

static void alloc_err(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    svc_job *j = h->data;
    *buf = uv_buf_init(j->rbuf_err, sizeof j->rbuf_err);
}

static void on_read_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    svc_job *j = s->data;
    if (n > 0) {
        if (!j->broken && svc_linebuf_feed(&j->outbuf, buf->base, (size_t)n, on_out_line, j) < 0)
            broken(j);
        return;
    }
    if (n == 0)
        return;
    if (n != UV_EOF) {
        svc_log_run(SVC_LOG_WARNING, j->run_id, "reading the worker's output: %s", uv_strerror((int)n));
    } else if (!j->broken && j->outbuf.len) {
        svc_error(SVC_EPROTO, "its output ended in the middle of a line");
        broken(j);
    }
    uv_read_stop(s);
    j->out_eof = true;
    maybe_end(j);
}

static void on_read_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    svc_job *j = s->data;
    if (n > 0) {
        svc_linebuf_feed(&j->errbuf, buf->base, (size_t)n, on_err_line, j);
        return;
    }
    if (n == 0)
        return;
    svc_linebuf_finish(&j->errbuf, on_err_line, j);
    uv_read_stop(s);
    j->err_eof = true;
    maybe_end(j);
}

/* ---- starting ---- */

/* The variables a worker must not inherit: systemd's (they name the
 * service), and those the launch sets itself. */
static bool env_dropped(const char *e, const char *const *set)
{
    static const char *const drop[] = {"NOTIFY_SOCKET=",  "WATCHDOG_USEC=",        "WATCHDOG_PID=",
                                       "LISTEN_FDS=",     "LISTEN_PID=",           "LISTEN_FDNAMES=",
                                       "EPOCHD_THREADS=", "CUDA_VISIBLE_DEVICES=", "EPOCHD_SERVICE_PID="};
    for (size_t i = 0; i < sizeof drop / sizeof *drop; i++)
        if (!strncmp(e, drop[i], strlen(drop[i])))
            return true;
    for (size_t i = 0; set && set[i]; i++) {
        size_t n = strcspn(set[i], "=");
        if (!strncmp(e, set[i], n + 1))
            return true;
    }
    return false;
}

/* Ours minus the dropped ones, plus the launch's; the strings are borrowed. */
static char **worker_env(const char *const *set)
{
    size_t ne = 0, ns = 0;
    for (char **e = environ; e && *e; e++)
        ne++;
    while (set && set[ns])
        ns++;
    char **env = calloc(ne + ns + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (!env_dropped(*e, set))
            env[k++] = *e;
    for (size_t i = 0; i < ns; i++)
        env[k++] = (char *)set[i];
    return env;
}

static int local_start(svc_executor *base, const svc_launch *l, const svc_job_events *ev, svc_job **out)
{
    local_exec *x = (local_exec *)base;
    *out = NULL;
    const char *args[MAX_PREFIX + MAX_ARGS + 1];
    int na = 0;
    for (int i = 0; i < x->cfg->n_worker_prefix && i < MAX_PREFIX; i++)
        args[na++] = x->cfg->worker_prefix[i];
    for (int i = 0; l->argv[i]; i++) {
        if (i == MAX_ARGS)
            return svc_error(SVC_EINTERNAL, "a worker command of more than %d words", MAX_ARGS);
        args[na++] = l->argv[i];
    }
    args[na] = NULL;
    char **env = worker_env(l->env);
    svc_job *j = env ? calloc(1, sizeof *j) : NULL;
    if (!j) {
        free(env);
        return svc_error(SVC_ENOMEM, "out of memory starting a worker");
    }
    j->x = x;
    j->ev = *ev;
    j->run_id = l->run_id;
    svc_linebuf_init(&j->outbuf, SVC_EVENT_MAX_LINE, false);
    svc_linebuf_init(&j->errbuf, 4096, true);
    uv_pipe_init(x->loop, &j->out, 0);
    uv_pipe_init(x->loop, &j->err, 0);
    uv_timer_init(x->loop, &j->drain);
    j->out.data = j->err.data = j->drain.data = j->proc.data = j;
    j->open_handles = 4;
    x->n_jobs++;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->err},
    };
    /* its own session: a Ctrl-C meant for the service does not reach the
     * workers directly; the service stops them itself */
    uv_process_options_t opt = {.exit_cb = on_exit_cb, .file = args[0], .args = (char **)args, .env = env,
                                .stdio_count = 3, .stdio = stdio, .flags = UV_PROCESS_DETACHED};
    int rc = uv_spawn(x->loop, &j->proc, &opt);
    free(env);
    if (rc < 0) {
        j->ended = true;
        close_handles(j);
        return svc_error(SVC_EIO, "cannot start %s: %s", args[0], uv_strerror(rc));
    }
    j->pid = j->proc.pid;
    uv_read_start((uv_stream_t *)&j->out, alloc_out, on_read_out);
    uv_read_start((uv_stream_t *)&j->err, alloc_err, on_read_err);
    *out = j;
    return 0;
}

/* A worker leads its own process group (UV_PROCESS_DETACHED): the signal
 * reaches a worker_prefix wrapper's children too. */
static int local_signal(svc_job *j, svc_signal s)
{
    if (j->exited)
        return 0;
    int sig = s == SVC_SIGNAL_KILL ? SIGKILL : SIGTERM;
    if (j->pid > 0 && kill(-(pid_t)j->pid, sig) == 0)
        return 0;
    int rc = uv_process_kill(&j->proc, sig);
    if (rc < 0 && rc != UV_ESRCH)
        return svc_error(SVC_EIO, "cannot signal worker %lld: %s", (long long)j->pid, uv_strerror(rc));
    return 0;
}

static int64_t local_id(const svc_job *j) { return j->pid; }

/* ---- recovery: the workers of a service that crashed ---- */

/* argv of pid from /proc (NUL-separated); the count, or -1. */
static int read_cmdline(int64_t pid, char *buf, size_t len, const char **argv, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%lld/cmdline", (long long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    int argc = 0;
    for (ssize_t i = 0; i < n && argc < max; i += (ssize_t)strlen(buf + i) + 1)
        argv[argc++] = buf + i;
    return argc;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Does /proc say pid is an epochd worker of run_id with our state folder? */
static bool is_our_worker(const local_exec *x, int64_t pid, int64_t run_id)
{
    char buf[8192];
    const char *argv[64];
    int argc = read_cmdline(pid, buf, sizeof buf, argv, 64);
    /* `epochd worker ...`, possibly after a worker_prefix */
    bool worker = false;
    for (int i = 0; i + 1 < argc && !worker; i++)
        worker = !strcmp(base_name(argv[i]), base_name(x->exe)) && !strcmp(argv[i + 1], "worker");
    if (!worker)
        return false;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)run_id);
    bool key_ok = false, state_ok = false;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--key") && !strcmp(argv[i + 1], key))
            key_ok = true;
        if (!strcmp(argv[i], "--state-dir") && !strcmp(argv[i + 1], x->state_dir))
            state_ok = true;
    }
    return key_ok && state_ok;
}

/* Alive and not a zombie. */
static bool alive(int64_t pid)
{
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
        return false;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void signal_group(int64_t pid, int sig)
{
    if (kill(-(pid_t)pid, sig) < 0)
        kill((pid_t)pid, sig);
}

/* Stops stale workers all at once: SIGTERM, a bounded wait, SIGKILL. */
static void stop_stale(const int64_t *pids, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        signal_group(pids[i], SIGTERM);
    for (int t = 0; t <= STALE_TERM_MS + 5000; t += 50) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            if (alive(pids[i])) {
                left++;
                if (t == STALE_TERM_MS) {
                    svc_log(SVC_LOG_WARNING, "stale worker %lld ignored SIGTERM for %d s: killing it",
                            (long long)pids[i], STALE_TERM_MS / 1000);
                    signal_group(pids[i], SIGKILL);
                }
            }
        if (left == 0)
            return;
        sleep_ms(50);
    }
}

static void local_recover(svc_executor *base, const db_run *runs, size_t n, svc_recovery *out)
{
    local_exec *x = (local_exec *)base;
    int64_t *stale = calloc(n ? n : 1, sizeof *stale);
    size_t n_stale = 0;
    for (size_t i = 0; i < n; i++) {
        const db_run *r = &runs[i];
        out[i] = SVC_RECOVER_RESUME;
        if (r->status != DB_RUNNING || r->worker_pid <= 0 || !alive(r->worker_pid))
            continue;
        if (is_our_worker(x, r->worker_pid, r->id)) {
            svc_log_run(SVC_LOG_WARNING, r->id,
                        "a worker of the previous service (pid %lld) is still running; stopping it",
                        (long long)r->worker_pid);
            if (stale)
                stale[n_stale++] = r->worker_pid;
            else
                signal_group(r->worker_pid, SIGKILL); /* no memory to wait politely */
            continue;
        }
        char buf[4096];
        const char *argv[4];
        int argc = read_cmdline(r->worker_pid, buf, sizeof buf, argv, 4);
        if (argc >= 2 && (!strcmp(argv[1], "run") || !strcmp(base_name(argv[0]), base_name(x->exe)))) {
            /* a foreground `epochd run` (or a worker of another state folder): not ours */
            svc_log_run(SVC_LOG_DEBUG, r->id, "running in process %lld (%s %s): left alone",
                        (long long)r->worker_pid, argv[0], argv[1]);
            out[i] = SVC_RECOVER_LEAVE;
        }
        /* otherwise the pid was reused by an unrelated process: the run is orphaned */
    }
    /* two processes must never write one run's checkpoint */
    stop_stale(stale, n_stale);
    free(stale);
}

static void local_free(svc_executor *base)
{
    local_exec *x = (local_exec *)base;
    if (!x)
        return;
    assert(x->n_jobs == 0); /* every job ended and its handles closed */
    free(x->exe);
    free(x->state_dir);
    free(x);
}

static const svc_executor_ops local_ops = {
    .name = "local",
    .start = local_start,
    .signal = local_signal,
    .id = local_id,
    .recover = local_recover,
    .free = local_free,
};

int svc_executor_local_new(uv_loop_t *loop, const svc_config *cfg, const char *exe, const char *state_dir,
                           svc_executor **out)
{
    *out = NULL;
    local_exec *x = calloc(1, sizeof *x);
    if (!x || !(x->exe = strdup(exe)) || !(x->state_dir = strdup(state_dir))) {
        if (x)
            free(x->exe);
        free(x);
        return svc_error(SVC_ENOMEM, "out of memory");
    }
    x->base.ops = &local_ops;
    x->loop = loop;
    x->cfg = cfg;
    *out = &x->base;
    return 0;
}
