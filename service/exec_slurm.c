/* The Slurm executor: each job is an sbatch batch job. Its worker writes the
 * protocol's lines into <run folder>/job-<job id>.<restart>.out and its
 * stderr (with Slurm's own messages) into slurm-<job id>.log, both in the
 * shared state folder, and this executor follows the files; squeue says how
 * the job waits, runs and ends; scancel stops and cancels it; recovery finds
 * a previous service's jobs by id (squeue, then sacct, then the jobcomp
 * log) so that they are adopted, never submitted twice. Every Slurm command
 * runs on the loop's thread pool (slurm_cmd.c), one squeue at a time.
 * docs/slurm.md says what a cluster must share. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "service/config.h"
#include "service/error.h"
#include "service/executor.h"
#include "service/linebuf.h"
#include "service/log.h"
#include "service/paths.h"
#include "service/protocol.h"
#include "service/slurm.h"
#include "service/slurm_cmd.h"

extern char **environ;

#define TICK_MS 250            /* files are read this often */
#define MAX_SUBMITTING 4       /* sbatch commands at once */
#define BACKOFF_POLLS 15       /* after sbatch failed in a way another try may cure: this many polls, */
#define BACKOFF_MIN_MS 3000    /* at least this long */
#define BACKOFF_MAX_MS 60000   /* and at most this */
#define MISSES_BEFORE_LOOKUP 3 /* polls without the job before asking sacct / the jobcomp log */
#define CMD_TIMEOUT_MS 60000
#define SQUEUE_MAX_OUT (64u << 20)

typedef struct follower {
    char path[4200];
    int fd;
    off_t off;
} follower;

typedef struct slurm_exec slurm_exec;

typedef enum phase {
    P_WAIT_SUBMIT, /* sbatch not run yet (or to be run again after a failure another try may cure) */
    P_SUBMITTING,  /* sbatch in flight */
    P_QUEUED,      /* Slurm has it: pending or running */
    P_ENDING,      /* Slurm says it ended (or it never got an id): read the rest, then end */
} phase;

struct svc_job {
    slurm_exec *x;
    svc_job *next;
    svc_job_events ev;
    int64_t run_id;
    int64_t job_id;
    phase ph;
    char **sbatch_argv, **env;
    char run_dir[4096];
    /* the last state reported */
    char state[32], reason[256], node[256];
    int64_t start_time;
    bool running, reported;
    /* output */
    int64_t seg, restarts; /* the restart followed; Slurm's restart count */
    follower out, log;
    svc_linebuf outbuf, logbuf;
    /* how it ends */
    int misses;
    bool lookup_busy, we_cancelled, detached;
    bool stop_wanted, cancel_wanted; /* before the job has an id */
    svc_slurm_job final;
    bool have_final;
    svc_slurm_job initial; /* an adopted job's state, applied at the first tick */
    bool have_initial;
    char rejected[1024];
};

struct slurm_exec {
    svc_executor base;
    uv_loop_t *loop;
    const svc_config *cfg;
    char *exe, *state_dir;
    char comment[1100];
    char script[4200];
    uv_timer_t *timer; /* only while there are jobs */
    svc_job *jobs;
    int n_jobs, n_work, n_submitting;
    bool squeue_busy, squeue_soon;
    uint64_t last_squeue_ms, backoff_until_ms;
    char squeue_problem[256];
    /* what recover() found, for adopt() */
    struct found {
        int64_t run_id;
        svc_slurm_job job;
    } * found;
    size_t n_found;
    char rbuf[65536];
};

static void ensure_timer(slurm_exec *x);

/* ---- following the files ---- */

static void follower_init(follower *f, const char *dir, const char *name)
{
    snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    f->fd = -1;
    f->off = 0;
}

static void follower_close(follower *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

typedef int (*feed_fn)(svc_job *j, const char *data, size_t n);

/* Reads what was added since the last time. reopen: open it afresh first
 * (a shared file system shows another host's writes after an open). */
static void follower_read(svc_job *j, follower *f, bool reopen, feed_fn feed)
{
    if (reopen)
        follower_close(f);
    if (f->fd < 0) {
        f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (f->fd < 0)
            return; /* not there yet */
        if (f->off && lseek(f->fd, f->off, SEEK_SET) < 0) {
            follower_close(f);
            return;
        }
    }
    for (;;) {
        ssize_t n = read(f->fd, j->x->rbuf, sizeof j->x->rbuf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        f->off += n;
        feed(j, j->x->rbuf, (size_t)n);
    }
}

static int on_out_line(void *ctx, const char *line, size_t len)
{
    svc_job *j = ctx;
    if (!j->detached)
        j->ev.line(j->ev.ctx, line, len);
    return 0;
}

static int on_log_line(void *ctx, const char *line, size_t len)
{
    svc_job *j = ctx;
    if (!j->detached)
        j->ev.log(j->ev.ctx, line, len);
    return 0;
}

static int feed_out(svc_job *j, const char *data, size_t n)
{
    if (svc_linebuf_feed(&j->outbuf, data, n, on_out_line, j) < 0 && !j->detached)
        j->ev.broken(j->ev.ctx);
    return 0;
}

static int feed_log(svc_job *j, const char *data, size_t n)
{
    svc_linebuf_feed(&j->logbuf, data, n, on_log_line, j);
    return 0;
}

static void open_segment(svc_job *j)
{
    char name[96];
    snprintf(name, sizeof name, "job-%lld.%lld.out", (long long)j->job_id, (long long)j->seg);
    follower_close(&j->out);
    follower_init(&j->out, j->run_dir, name);
    svc_linebuf_free(&j->outbuf);
    svc_linebuf_init(&j->outbuf, SVC_EVENT_MAX_LINE, false);
}

/* The rest of the current segment; a worker killed in the middle of a line
 * leaves its start, which is dropped (its history keeps what it recorded). */
static void finish_segment(svc_job *j)
{
    follower_read(j, &j->out, true, feed_out);
    if (j->outbuf.len)
        svc_log_run(SVC_LOG_WARNING, j->run_id, "Slurm job %lld: the worker's output ended within a line; dropped",
                    (long long)j->job_id);
    j->outbuf.len = 0;
}

/* Slurm requeued the job (the restart count grew, or the next segment's
 * file appeared): the worker of this segment has gone. True when it had. */
static bool advance_segments(svc_job *j)
{
    char next[4300];
    for (bool any = false;; any = true) {
        snprintf(next, sizeof next, "%s/job-%lld.%lld.out", j->run_dir, (long long)j->job_id, (long long)j->seg + 1);
        if (j->restarts <= j->seg && access(next, F_OK) != 0)
            return any;
        j->running = false; /* until Slurm runs the next worker */
        finish_segment(j);
        j->seg++;
        if (j->restarts < j->seg)
            j->restarts = j->seg;
        svc_log_run(SVC_LOG_WARNING, j->run_id, "Slurm requeued job %lld (restart %lld)", (long long)j->job_id,
                    (long long)j->seg);
        open_segment(j);
        if (!j->detached)
            j->ev.restarted(j->ev.ctx, j->seg);
    }
}

/* ---- states ---- */

static void report_state(svc_job *j)
{
    if (j->detached)
        return;
    svc_job_state st = {.job_id = j->job_id,
                        .state = j->state,
                        .reason = j->reason[0] ? j->reason : NULL,
                        .node = j->node[0] ? j->node : NULL,
                        .start_time = j->start_time,
                        .running = j->running};
    j->reported = true;
    j->ev.state(j->ev.ctx, &st);
}

/* What squeue (or the end's lookup) says of the job now. */
static void update(svc_job *j, const svc_slurm_job *s)
{
    j->misses = 0;
    if (s->restarts > j->restarts)
        j->restarts = s->restarts;
    advance_segments(j); /* a requeue is reported before the new worker's state */
    bool ended = svc_slurm_state_ended(s->state);
    /* a job that started and ended between two polls did run */
    bool running = svc_slurm_state_running(s->state) || (ended && s->node[0] && s->start_time > 0);
    if (!strcmp(s->state, "COMPLETING") && !j->running)
        running = false; /* the end of the worker before a requeue (or of a job not seen running yet) */
    bool changed = strcmp(j->state, s->state) || strcmp(j->reason, s->reason) || strcmp(j->node, s->node) ||
                   running != j->running || !j->reported;
    snprintf(j->state, sizeof j->state, "%s", s->state);
    snprintf(j->reason, sizeof j->reason, "%s", s->reason);
    snprintf(j->node, sizeof j->node, "%s", s->node);
    if (running && s->start_time > 0)
        j->start_time = s->start_time;
    j->running = running;
    if (ended) {
        j->final = *s;
        j->have_final = true;
        j->ph = P_ENDING;
    }
    if (changed && !(ended && !running && j->reported))
        report_state(j);
}

/* ---- ending ---- */

static void job_free(svc_job *j)
{
    follower_close(&j->out);
    follower_close(&j->log);
    svc_linebuf_free(&j->outbuf);
    svc_linebuf_free(&j->logbuf);
    svc_strv_free(j->sbatch_argv);
    svc_strv_free(j->env);
    free(j);
}

static void unlink_job(svc_job *j)
{
    slurm_exec *x = j->x;
    for (svc_job **pp = &x->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    x->n_jobs--;
    assert(x->n_jobs >= 0);
}

static void end_job(svc_job *j)
{
    svc_job_end end = {.exit_status = -1};
    if (j->detached) {
        end.detached = true;
    } else {
        if (j->job_id > 0) {
            advance_segments(j);
            finish_segment(j);
            follower_read(j, &j->log, true, feed_log);
            svc_linebuf_finish(&j->logbuf, on_log_line, j);
        }
        if (j->have_final) {
            end.exit_status = j->final.exit_code;
            end.term_signal = j->final.exit_signal;
            end.cluster_state = j->final.state[0] ? j->final.state : NULL;
            end.end_time = j->final.end_time;
            end.preempted =
                svc_slurm_state_preempted(j->final.state) || (!strcmp(j->final.state, "CANCELLED") && !j->we_cancelled);
        }
        if (j->rejected[0])
            end.rejected = j->rejected;
    }
    unlink_job(j);
    j->ev.ended(j->ev.ctx, &end);
    job_free(j);
}

/* ---- Slurm commands ---- */

typedef struct cmd_ctx {
    slurm_exec *x;
    int64_t run_id, job_id;
    char what[64];
} cmd_ctx;

static svc_job *job_by_id(slurm_exec *x, int64_t job_id)
{
    for (svc_job *j = x->jobs; j; j = j->next)
        if (j->job_id == job_id)
            return j;
    return NULL;
}

static void on_scancel(void *ctx, int rc, svc_cmd_result *res)
{
    cmd_ctx *c = ctx;
    c->x->n_work--;
    if (rc < 0 || res->status != 0) {
        char line[512];
        svc_sbatch_error_line(res->err, line, sizeof line);
        svc_log_run(SVC_LOG_WARNING, c->run_id, "%s of Slurm job %lld: %s", c->what, (long long)c->job_id,
                    res->error[0] ? res->error : line);
    }
    free(c);
}

/* scancel [--signal=SIG --full] JOB, without waiting for it. */
static int scancel(svc_job *j, const char *sig)
{
    slurm_exec *x = j->x;
    char id[32], opt[48];
    snprintf(id, sizeof id, "%lld", (long long)j->job_id);
    cmd_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return svc_error(SVC_ENOMEM, "out of memory");
    *c = (cmd_ctx){.x = x, .run_id = j->run_id, .job_id = j->job_id};
    snprintf(c->what, sizeof c->what, "scancel%s%s", sig ? " --signal=" : "", sig ? sig : "");
    const char *plain[] = {"scancel", id, NULL};
    snprintf(opt, sizeof opt, "--signal=%s", sig ? sig : "TERM");
    const char *signal[] = {"scancel", opt, "--full", id, NULL};
    int rc = svc_cmd_start(x->loop, sig ? signal : plain, NULL, CMD_TIMEOUT_MS, 4096, on_scancel, c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    x->n_work++;
    if (!sig)
        j->we_cancelled = true;
    svc_log_run(SVC_LOG_DEBUG, j->run_id, "%s %s", c->what, id);
    return 0;
}

static void on_sbatch(void *ctx, int rc, svc_cmd_result *res)
{
    svc_job *j = ctx;
    slurm_exec *x = j->x;
    x->n_work--;
    x->n_submitting--;
    /* the last line that is a job id (a site's wrapper may say more) */
    int64_t id = -1;
    for (const char *p = res->out; rc == 0 && res->status == 0 && p && *p;) {
        size_t l = strcspn(p, "\n");
        char line[128];
        snprintf(line, sizeof line, "%.*s", (int)(l < 127 ? l : 127), p);
        int64_t v = svc_sbatch_job_id(line);
        if (v > 0)
            id = v;
        p += l;
        if (*p == '\n')
            p++;
    }
    if (id > 0) {
        j->job_id = id;
        j->ph = P_QUEUED;
        snprintf(j->state, sizeof j->state, "PENDING");
        j->reason[0] = '\0';
        char name[64];
        snprintf(name, sizeof name, "slurm-%lld.log", (long long)id);
        follower_init(&j->log, j->run_dir, name);
        open_segment(j);
        report_state(j);
        if (j->cancel_wanted || j->stop_wanted)
            scancel(j, NULL);
        x->squeue_soon = true;
        return;
    }
    char line[1024];
    svc_sbatch_error_line(res->err, line, sizeof line);
    if (rc < 0)
        snprintf(line, sizeof line, "%s", res->error);
    else if (res->status == 0)
        snprintf(line, sizeof line, "sbatch answered \"%.200s\" instead of a job id", res->out);
    else if (!line[0])
        snprintf(line, sizeof line, "sbatch exited with status %d", res->status);
    if (j->cancel_wanted || j->stop_wanted) {
        j->ph = P_ENDING; /* nothing was submitted */
        return;
    }
    if (rc < 0 || svc_sbatch_transient(line)) {
        int64_t wait = BACKOFF_POLLS * x->cfg->slurm.poll_ms;
        wait = wait < BACKOFF_MIN_MS ? BACKOFF_MIN_MS : wait > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait;
        x->backoff_until_ms = uv_now(x->loop) + (uint64_t)wait;
        j->ph = P_WAIT_SUBMIT;
        svc_log_run(SVC_LOG_WARNING, j->run_id, "sbatch failed (%s); trying again in %lld s", line,
                    (long long)(wait / 1000));
        snprintf(j->state, sizeof j->state, "SUBMITTING");
        snprintf(j->reason, sizeof j->reason, "sbatch failed: %.200s", line);
        report_state(j);
        return;
    }
    snprintf(j->rejected, sizeof j->rejected, "%s", line);
    j->ph = P_ENDING;
}

static void submit(svc_job *j)
{
    slurm_exec *x = j->x;
    int rc = svc_cmd_start(x->loop, (const char *const *)j->sbatch_argv, (const char *const *)j->env, CMD_TIMEOUT_MS,
                           4096, on_sbatch, j);
    if (rc < 0) {
        svc_log_run(SVC_LOG_WARNING, j->run_id, "%s", svc_last_error());
        return; /* the next tick tries again */
    }
    x->n_work++;
    x->n_submitting++;
    j->ph = P_SUBMITTING;
}

/* The end of a job that squeue no longer lists: sacct, else the jobcomp log. */
typedef struct lookup_req {
    uv_work_t work;
    slurm_exec *x;
    int64_t job_id;
    int found;
    svc_slurm_job job;
} lookup_req;

static void on_lookup_work(uv_work_t *w)
{
    lookup_req *r = w->data;
    r->found = svc_slurm_find_finished(r->job_id, &r->job);
}

static void after_lookup(uv_work_t *w, int status)
{
    (void)status;
    lookup_req *r = w->data;
    slurm_exec *x = r->x;
    x->n_work--;
    svc_job *j = job_by_id(x, r->job_id);
    if (j) {
        j->lookup_busy = false;
        if (r->found && svc_slurm_state_ended(r->job.state)) {
            update(j, &r->job);
        } else if (j->misses >= MISSES_BEFORE_LOOKUP) {
            /* Slurm has forgotten it and keeps no record: it ended unseen */
            svc_log_run(SVC_LOG_WARNING, j->run_id,
                        "Slurm job %lld is no longer known to squeue, sacct or a jobcomp log: taken as ended",
                        (long long)j->job_id);
            j->ph = P_ENDING;
        }
    }
    free(r);
}

static void lookup_end(svc_job *j)
{
    lookup_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->x = j->x;
    r->job_id = j->job_id;
    r->work.data = r;
    if (uv_queue_work(j->x->loop, &r->work, on_lookup_work, after_lookup) < 0) {
        free(r);
        return;
    }
    j->x->n_work++;
    j->lookup_busy = true;
}

static void on_squeue(void *ctx, int rc, svc_cmd_result *res)
{
    slurm_exec *x = ctx;
    x->n_work--;
    x->squeue_busy = false;
    x->last_squeue_ms = uv_now(x->loop);
    svc_slurm_job *rows = NULL;
    size_t n = 0;
    bool none = res->status == 1 && strstr(res->err, "Invalid job id"); /* a single job Slurm forgot */
    if (rc < 0 || (res->status != 0 && !none)) {
        char line[256];
        svc_sbatch_error_line(res->err, line, sizeof line);
        if (strcmp(line, x->squeue_problem))
            svc_log(SVC_LOG_WARNING, "squeue failed: %s", res->error[0] ? res->error : line);
        snprintf(x->squeue_problem, sizeof x->squeue_problem, "%s", line);
        return;
    }
    x->squeue_problem[0] = '\0';
    if (!none && svc_squeue_parse(res->out, &rows, &n) < 0)
        return;
    for (svc_job *j = x->jobs; j; j = j->next) {
        if (j->ph != P_QUEUED || j->detached)
            continue;
        const svc_slurm_job *s = NULL;
        for (size_t i = 0; i < n && !s; i++)
            if (rows[i].job_id == j->job_id)
                s = &rows[i];
        if (s)
            update(j, s);
        else if (++j->misses >= MISSES_BEFORE_LOOKUP && !j->lookup_busy)
            lookup_end(j);
    }
    free(rows);
}

static void poll_squeue(slurm_exec *x)
{
    size_t len = 0, cap = 256;
    char *ids = malloc(cap);
    if (!ids)
        return;
    ids[0] = '\0';
    for (svc_job *j = x->jobs; j; j = j->next) {
        if (j->ph != P_QUEUED || j->detached)
            continue;
        if (len + 32 > cap) {
            char *ni = realloc(ids, cap *= 2);
            if (!ni) {
                free(ids);
                return;
            }
            ids = ni;
        }
        len += (size_t)snprintf(ids + len, cap - len, "%s%lld", len ? "," : "", (long long)j->job_id);
    }
    if (len == 0) {
        free(ids);
        return;
    }
    const char *argv[] = {"squeue", "-h", "-t", "all", "--jobs", ids, "--Format=" SVC_SQUEUE_FORMAT, NULL};
    int rc = svc_cmd_start(x->loop, argv, NULL, CMD_TIMEOUT_MS, SQUEUE_MAX_OUT, on_squeue, x);
    free(ids);
    if (rc == 0) {
        x->n_work++;
        x->squeue_busy = true;
        x->squeue_soon = false;
    }
}

/* ---- the tick ---- */

static void on_timer_closed(uv_handle_t *h) { free(h); }

static void on_tick(uv_timer_t *t)
{
    slurm_exec *x = t->data;
    uint64_t now = uv_now(x->loop);
    for (svc_job *j = x->jobs, *next; j; j = next) {
        next = j->next;
        if (j->detached || j->ph == P_ENDING) {
            end_job(j);
            continue;
        }
        if (j->have_initial) {
            j->have_initial = false;
            update(j, &j->initial);
            if (j->ph == P_ENDING) {
                end_job(j);
                continue;
            }
        }
        if (j->ph == P_WAIT_SUBMIT && now >= x->backoff_until_ms && x->n_submitting < MAX_SUBMITTING)
            submit(j);
        if (j->ph == P_QUEUED) {
            advance_segments(j);
            bool quiet = j->out.off == 0;
            follower_read(j, &j->out, false, feed_out);
            follower_read(j, &j->log, false, feed_log);
            if (quiet && j->out.off > 0 && !j->running)
                x->squeue_soon = true; /* it writes: squeue says since when it runs */
        }
    }
    uint64_t every = (uint64_t)x->cfg->slurm.poll_ms;
    if (!x->squeue_busy && (x->squeue_soon || now - x->last_squeue_ms >= every))
        poll_squeue(x);
    if (!x->jobs) {
        uv_close((uv_handle_t *)x->timer, on_timer_closed);
        x->timer = NULL;
    }
}

static void ensure_timer(slurm_exec *x)
{
    if (x->timer)
        return;
    uv_timer_t *t = malloc(sizeof *t);
    if (!t) {
        svc_log(SVC_LOG_ERR, "out of memory: cannot follow Slurm jobs");
        return;
    }
    uv_timer_init(x->loop, t);
    t->data = x;
    x->timer = t;
    uv_timer_start(t, on_tick, 0, TICK_MS);
}

/* ---- starting ---- */

/* Ours minus what must not reach a job: systemd's variables, the service's
 * own Slurm job variables (sbatch would read them) except SLURM_CONF, the
 * parent-death watch (a job lives by itself), and for GPU runs the
 * CUDA_VISIBLE_DEVICES that Slurm sets itself. Then the launch's. */
static char **job_env(const svc_launch *l, bool gpu)
{
    static const char *const drop[] = {
        "NOTIFY_SOCKET=",  "WATCHDOG_USEC=",      "WATCHDOG_PID=",      "LISTEN_FDS=",     "LISTEN_PID=",
        "LISTEN_FDNAMES=", "EPOCHD_SERVICE_PID=", "EPOCHD_SERVICE_NS=", "EPOCHD_THREADS=", "CUDA_VISIBLE_DEVICES="};
    size_t ne = 0, ns = 0;
    for (char **e = environ; e && *e; e++)
        ne++;
    while (l->env && l->env[ns])
        ns++;
    const char **v = calloc(ne + ns + 1, sizeof *v);
    if (!v)
        return NULL;
    size_t k = 0;
    for (char **e = environ; e && *e; e++) {
        bool keep = strncmp(*e, "SLURM_", 6) || !strncmp(*e, "SLURM_CONF=", 11);
        for (size_t i = 0; keep && i < sizeof drop / sizeof *drop; i++)
            keep = strncmp(*e, drop[i], strlen(drop[i])) != 0;
        if (keep)
            v[k++] = *e;
    }
    for (size_t i = 0; i < ns; i++) {
        const char *e = l->env[i];
        if (!strncmp(e, "EPOCHD_SERVICE_PID=", 19) || !strncmp(e, "EPOCHD_SERVICE_NS=", 18) ||
            (gpu && !strncmp(e, "CUDA_VISIBLE_DEVICES=", 21)))
            continue;
        v[k++] = e;
    }
    char **d = svc_strv_dup(v);
    free(v);
    return d;
}

/* The batch script, once per service (sbatch copies it at each submission). */
static int write_script(slurm_exec *x)
{
    char tmp[4300];
    snprintf(x->script, sizeof x->script, "%s/slurm-job.sh", x->state_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", x->script);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return svc_error(SVC_EIO, "cannot create %s: %s", tmp, strerror(errno));
    bool ok = fputs(svc_slurm_script, f) >= 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || chmod(tmp, 0755) < 0 || rename(tmp, x->script) < 0) {
        int e = errno;
        unlink(tmp);
        return svc_error(SVC_EIO, "cannot write %s: %s", x->script, strerror(e));
    }
    return 0;
}

static svc_job *job_new(slurm_exec *x, int64_t run_id, const svc_job_events *ev)
{
    svc_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->x = x;
    j->ev = *ev;
    j->run_id = run_id;
    j->out.fd = j->log.fd = -1;
    svc_linebuf_init(&j->outbuf, SVC_EVENT_MAX_LINE, false);
    svc_linebuf_init(&j->logbuf, 4096, true);
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)run_id);
    if (svc_run_dir(x->state_dir, key, j->run_dir, sizeof j->run_dir) < 0) {
        job_free(j);
        return NULL;
    }
    return j;
}

static void add_job(slurm_exec *x, svc_job *j)
{
    j->next = x->jobs;
    x->jobs = j;
    x->n_jobs++;
    ensure_timer(x);
}

static int slurm_start(svc_executor *base, const svc_launch *l, const svc_job_events *ev, svc_job **out)
{
    slurm_exec *x = (slurm_exec *)base;
    *out = NULL;
    int rc = 0;
    if (access(x->script, R_OK) != 0 && (rc = write_script(x)) < 0)
        return rc;
    spec_slurm sl;
    char err[512];
    rc = spec_slurm_from_text(l->spec ? l->spec : "", l->spec ? strlen(l->spec) : 0, &sl, err, sizeof err);
    if (rc == SPEC_ENOMEM)
        return svc_error(SVC_ENOMEM, "out of memory reading the spec's slurm: section");
    svc_job *j = rc == 0 ? job_new(x, l->run_id, ev) : NULL;
    if (rc == 1) {
        /* validated when it was queued: only a changed allow-list gets here */
        j = job_new(x, l->run_id, ev);
        if (!j)
            return svc_error(SVC_ENOMEM, "out of memory");
        snprintf(j->rejected, sizeof j->rejected, "%s", err);
        j->ph = P_ENDING;
        add_job(x, j);
        *out = j;
        return 0;
    }
    if (!j) {
        spec_slurm_clear(&sl);
        return svc_error(SVC_ENOMEM, "out of memory");
    }
    bool gpu = l->place && l->place->gpu >= 0;
    svc_sbatch_job sj = {.launch = l,
                         .spec = &sl,
                         .cfg = &x->cfg->slurm,
                         .prefix = (const char *const *)x->cfg->worker_prefix,
                         .n_prefix = x->cfg->n_worker_prefix,
                         .state_dir = x->state_dir,
                         .script = x->script,
                         .gpu = gpu};
    rc = svc_sbatch_argv(&sj, &j->sbatch_argv);
    spec_slurm_clear(&sl);
    if (rc == 0 && !(j->env = job_env(l, gpu)))
        rc = SVC_ENOMEM;
    if (rc < 0) {
        job_free(j);
        return svc_error(SVC_ENOMEM, "out of memory");
    }
    j->ph = P_WAIT_SUBMIT;
    add_job(x, j);
    *out = j;
    return 0;
}

static int slurm_signal(svc_job *j, svc_signal s)
{
    if (j->ph == P_ENDING || j->detached)
        return 0;
    if (j->ph == P_WAIT_SUBMIT) {
        j->ph = P_ENDING; /* never submitted: nothing to stop */
        return 0;
    }
    if (j->ph == P_SUBMITTING) {
        /* its id comes with sbatch's answer; it is cancelled then */
        j->cancel_wanted |= s == SVC_SIGNAL_CANCEL;
        j->stop_wanted = true;
        return 0;
    }
    switch (s) {
    case SVC_SIGNAL_CANCEL: return scancel(j, NULL);
    case SVC_SIGNAL_STOP: return j->running ? scancel(j, "TERM") : scancel(j, NULL);
    case SVC_SIGNAL_KILL: return j->running ? scancel(j, "KILL") : scancel(j, NULL);
    }
    return 0;
}

static int64_t slurm_id(const svc_job *j) { return j->job_id; }

static int slurm_detach(svc_job *j)
{
    if (j->job_id <= 0)
        return slurm_signal(j, SVC_SIGNAL_STOP); /* nothing to leave running yet */
    j->detached = true;
    return 0;
}

/* ---- recovery ---- */

static const svc_slurm_job *find_row(const svc_slurm_job *rows, size_t n, int64_t job_id)
{
    for (size_t i = 0; i < n; i++)
        if (rows[i].job_id == job_id)
            return &rows[i];
    return NULL;
}

static bool ours(const slurm_exec *x, const svc_slurm_job *s, int64_t run_id)
{
    return !strcmp(s->comment, x->comment) && svc_slurm_run_id(s->name) == run_id;
}

static void remember(slurm_exec *x, int64_t run_id, const svc_slurm_job *s)
{
    struct found *nf = realloc(x->found, (x->n_found + 1) * sizeof *nf);
    if (!nf)
        return;
    x->found = nf;
    x->found[x->n_found++] = (struct found){.run_id = run_id, .job = *s};
}

static bool active_status(db_status s) { return s == DB_QUEUED || s == DB_RUNNING || s == DB_INTERRUPTED; }

static void slurm_recover(svc_executor *base, const db_run *runs, size_t n, svc_recovery *out)
{
    slurm_exec *x = (slurm_exec *)base;
    free(x->found);
    x->found = NULL;
    x->n_found = 0;
    for (size_t i = 0; i < n; i++)
        out[i] = SVC_RECOVER_RESUME;
    /* every job of this user that Slurm still knows: ours carry our comment */
    svc_slurm_job *rows = NULL;
    size_t nrows = 0;
    bool listed = svc_slurm_list_mine(&rows, &nrows) == 0;
    if (!listed)
        svc_log(SVC_LOG_ERR,
                "cannot list the Slurm jobs of a previous service (%s): runs with jobs are left as they "
                "are until the next start",
                svc_last_error());
    svc_cmd_result r;
    bool *claimed = listed ? calloc(nrows ? nrows : 1, sizeof *claimed) : NULL;
    for (size_t i = 0; i < n; i++) {
        const db_run *run = &runs[i];
        if (!active_status(run->status))
            continue;
        if (!listed) {
            if (run->slurm_job_id > 0 || run->status == DB_RUNNING)
                out[i] = SVC_RECOVER_LEAVE; /* never a second job on a guess */
            continue;
        }
        const svc_slurm_job *s = run->slurm_job_id > 0 ? find_row(rows, nrows, run->slurm_job_id) : NULL;
        if (s && !ours(x, s, run->id))
            s = NULL; /* the id is another job's now (a new cluster) */
        for (size_t k = 0; !s && run->slurm_job_id <= 0 && k < nrows; k++)
            if (ours(x, &rows[k], run->id) && !svc_slurm_state_ended(rows[k].state))
                s = &rows[k]; /* submitted just before the previous service died */
        svc_slurm_job done;
        if (!s && run->slurm_job_id > 0 && svc_slurm_find_finished(run->slurm_job_id, &done) &&
            svc_slurm_state_ended(done.state))
            s = &done;
        if (s) {
            if (claimed && s != &done)
                claimed[s - rows] = true;
            remember(x, run->id, s);
            out[i] = SVC_RECOVER_ADOPT;
            svc_log_run(SVC_LOG_INFO, run->id, "adopting Slurm job %lld (%s)", (long long)s->job_id, s->state);
        } else if (run->slurm_job_id > 0) {
            svc_log_run(SVC_LOG_WARNING, run->id, "Slurm job %lld is gone and Slurm keeps no record of it",
                        (long long)run->slurm_job_id);
        }
    }
    /* jobs of ours that belong to no run in flight hold an allocation for nothing */
    for (size_t k = 0; claimed && k < nrows; k++) {
        if (claimed[k] || strcmp(rows[k].comment, x->comment) || svc_slurm_state_ended(rows[k].state))
            continue;
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)rows[k].job_id);
        const char *sc[] = {"scancel", id, NULL};
        svc_log(SVC_LOG_WARNING, "Slurm job %s (%s) belongs to no run in flight: cancelling it", id, rows[k].name);
        if (svc_cmd_run(sc, NULL, CMD_TIMEOUT_MS, 4096, &r) == 0 && r.status != 0)
            svc_log(SVC_LOG_WARNING, "scancel %s: %s", id, r.err);
        svc_cmd_result_free(&r);
    }
    free(claimed);
    free(rows);
}

static int slurm_adopt(svc_executor *base, const db_run *r, const svc_job_events *ev, svc_job **out)
{
    slurm_exec *x = (slurm_exec *)base;
    *out = NULL;
    const svc_slurm_job *s = NULL;
    for (size_t i = 0; i < x->n_found && !s; i++)
        if (x->found[i].run_id == r->id)
            s = &x->found[i].job;
    if (!s)
        return svc_error(SVC_EINTERNAL, "run %lld: no Slurm job was found to adopt", (long long)r->id);
    svc_job *j = job_new(x, r->id, ev);
    if (!j)
        return svc_error(SVC_ENOMEM, "out of memory");
    j->job_id = s->job_id;
    j->ph = P_QUEUED;
    snprintf(j->state, sizeof j->state, "PENDING");
    char name[64];
    snprintf(name, sizeof name, "slurm-%lld.log", (long long)j->job_id);
    follower_init(&j->log, j->run_dir, name);
    struct stat st;
    if (stat(j->log.path, &st) == 0)
        j->log.off = st.st_size; /* what it logged before is in the previous service's log */
    open_segment(j);             /* its lines from the first: recorded again, idempotently */
    j->initial = *s;
    j->have_initial = true;
    add_job(x, j);
    *out = j;
    return 0;
}

static void slurm_free(svc_executor *base)
{
    slurm_exec *x = (slurm_exec *)base;
    if (!x)
        return;
    assert(x->n_jobs == 0 && x->n_work == 0);
    if (x->timer) { /* closed at the loop's next turn */
        uv_close((uv_handle_t *)x->timer, on_timer_closed);
        uv_run(x->loop, UV_RUN_NOWAIT);
    }
    free(x->found);
    free(x->exe);
    free(x->state_dir);
    free(x);
}

static const svc_executor_ops slurm_ops = {
    .name = "slurm",
    .queues = true,
    .start = slurm_start,
    .signal = slurm_signal,
    .id = slurm_id,
    .recover = slurm_recover,
    .adopt = slurm_adopt,
    .detach = slurm_detach,
    .free = slurm_free,
};

int svc_executor_slurm_new(uv_loop_t *loop, const svc_config *cfg, const char *exe, const char *state_dir,
                           svc_executor **out)
{
    *out = NULL;
    slurm_exec *x = calloc(1, sizeof *x);
    if (!x || !(x->exe = strdup(exe)) || !(x->state_dir = strdup(state_dir))) {
        if (x)
            free(x->exe);
        free(x);
        return svc_error(SVC_ENOMEM, "out of memory");
    }
    x->base.ops = &slurm_ops;
    x->loop = loop;
    x->cfg = cfg;
    svc_slurm_comment(state_dir, x->comment, sizeof x->comment);
    int rc = write_script(x);
    if (rc < 0) {
        slurm_free(&x->base);
        return rc;
    }
    *out = &x->base;
    return 0;
}
