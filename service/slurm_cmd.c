/* Running the Slurm commands (sbatch, squeue, scancel, sacct, scontrol):
 * one child with its stdout and stderr captured and a time limit, either
 * right away (start-up recovery may block) or on the loop's thread pool,
 * its result handed back on the loop. The children are reaped here by pid;
 * libuv reaps only its own. */
#include "service/slurm_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "service/error.h"

extern char **environ;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void svc_cmd_result_free(svc_cmd_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Appends what fd has to *buf (at most max bytes kept); 0 at EOF, 1 for
 * more to come, -1 on an error. */
static int drain(int fd, char **buf, size_t *len, size_t *cap, size_t max)
{
    char tmp[16384];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : -1;
    if (n == 0)
        return 0;
    size_t keep = *len + (size_t)n > max ? max - *len : (size_t)n;
    if (keep && *len + keep + 1 > *cap) {
        size_t ncap = *cap ? *cap : 4096;
        while (ncap < *len + keep + 1)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    if (keep) {
        memcpy(*buf + *len, tmp, keep);
        *len += keep;
        (*buf)[*len] = '\0';
    }
    return 1;
}

int svc_cmd_run(const char *const *argv, char *const *env, int timeout_ms, size_t max_out, svc_cmd_result *res)
{
    memset(res, 0, sizeof *res);
    res->status = -1;
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        snprintf(res->error, sizeof res->error, "cannot make a pipe: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0)
                close(out[i]);
            if (err[i] >= 0)
                close(err[i]);
        }
        return SVC_EIO;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    /* the child gets default signal dispositions and an empty mask (the
     * service ignores SIGPIPE, the pool's threads block signals) */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, (char *const *)argv, env ? env : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
        snprintf(res->error, sizeof res->error, "cannot run %s: %s", argv[0], strerror(rc));
        close(out[0]);
        close(err[0]);
        return SVC_EIO;
    }
    size_t cap_out = 0, cap_err = 0;
    bool out_open = true, err_open = true, killed = false;
    int64_t deadline = now_ms() + timeout_ms;
    while (out_open || err_open) {
        struct pollfd p[2] = {{.fd = out_open ? out[0] : -1, .events = POLLIN},
                              {.fd = err_open ? err[0] : -1, .events = POLLIN}};
        int64_t left = deadline - now_ms();
        if (left <= 0 && !killed) {
            kill(pid, SIGKILL);
            killed = true;
            snprintf(res->error, sizeof res->error, "%s did not finish within %d s: killed", argv[0],
                     timeout_ms / 1000);
            deadline = now_ms() + 5000; /* its pipes close once it is gone */
            continue;
        }
        if (left <= 0)
            break;
        int n = poll(p, 2, (int)(left > 1000 ? 1000 : left));
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        if (out_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            out_open = drain(out[0], &res->out, &res->out_len, &cap_out, max_out) > 0;
        if (err_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            err_open = drain(err[0], &res->err, &res->err_len, &cap_err, 65536) > 0;
    }
    close(out[0]);
    close(err[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st))
        res->status = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
        res->term_signal = WTERMSIG(st);
    if (!res->out && !(res->out = strdup("")))
        return SVC_ENOMEM;
    if (!res->err && !(res->err = strdup("")))
        return SVC_ENOMEM;
    return killed ? SVC_EIO : 0;
}

/* ---- on the thread pool ---- */

typedef struct cmd_req {
    uv_work_t work;
    char **argv, **env;
    int timeout_ms;
    size_t max_out;
    int rc;
    svc_cmd_result res;
    svc_cmd_cb cb;
    void *ctx;
} cmd_req;

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

char **svc_strv_dup(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **d = calloc(n + 1, sizeof *d);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(d[i] = strdup(v[i]))) {
            free_strv(d);
            return NULL;
        }
    return d;
}

void svc_strv_free(char **v) { free_strv(v); }

static void on_work(uv_work_t *w)
{
    cmd_req *r = w->data;
    r->rc = svc_cmd_run((const char *const *)r->argv, r->env, r->timeout_ms, r->max_out, &r->res);
}

static void after_work(uv_work_t *w, int status)
{
    cmd_req *r = w->data;
    (void)status; /* never cancelled: every request runs */
    r->cb(r->ctx, r->rc, &r->res);
    svc_cmd_result_free(&r->res);
    free_strv(r->argv);
    free_strv(r->env);
    free(r);
}

int svc_cmd_start(uv_loop_t *loop, const char *const *argv, const char *const *env, int timeout_ms, size_t max_out,
                  svc_cmd_cb cb, void *ctx)
{
    cmd_req *r = calloc(1, sizeof *r);
    if (!r)
        return svc_error(SVC_ENOMEM, "out of memory running %s", argv[0]);
    r->argv = svc_strv_dup(argv);
    r->env = env ? svc_strv_dup(env) : NULL;
    if (!r->argv || (env && !r->env)) {
        free_strv(r->argv);
        free_strv(r->env);
        free(r);
        return svc_error(SVC_ENOMEM, "out of memory running %s", argv[0]);
    }
    r->timeout_ms = timeout_ms;
    r->max_out = max_out;
    r->cb = cb;
    r->ctx = ctx;
    r->work.data = r;
    int rc = uv_queue_work(loop, &r->work, on_work, after_work);
    if (rc < 0) {
        free_strv(r->argv);
        free_strv(r->env);
        free(r);
        return svc_error(SVC_EIO, "cannot run %s: %s", argv[0], uv_strerror(rc));
    }
    return 0;
}
