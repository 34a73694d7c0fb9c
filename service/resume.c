/* Start-up recovery: runs that a previous service left `interrupted` (it
 * was stopped) or `running` (it crashed, or was killed) go back to the
 * queue and resume from their last checkpoint, keeping the epochs already
 * recorded. A worker of the crashed service that is still alive is stopped
 * first, so that two processes never write one run's checkpoint. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "service/log.h"
#include "service/internal.h"

#define STALE_TERM_MS 10000 /* SIGTERM, then SIGKILL */

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

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

bool svc_resume_is_our_worker(svc_service *sv, int64_t pid, int64_t run_id)
{
    char buf[8192];
    const char *argv[64];
    int argc = read_cmdline(pid, buf, sizeof buf, argv, 64);
    /* `epochd worker ...`, possibly after a worker_prefix */
    bool worker = false;
    for (int i = 0; i + 1 < argc && !worker; i++)
        worker = !strcmp(base(argv[i]), base(sv->exe)) && !strcmp(argv[i + 1], "worker");
    if (!worker)
        return false;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)run_id);
    bool key_ok = false, state_ok = false;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--key") && !strcmp(argv[i + 1], key))
            key_ok = true;
        if (!strcmp(argv[i], "--state-dir") && !strcmp(argv[i + 1], sv->state_dir))
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
    /* a worker leads its own process group (a worker_prefix wrapper's children too) */
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

void svc_resume_orphans(svc_service *sv)
{
    db_run_list *l = NULL;
    if (db_runs_to_resume(sv->db, &l) < 0) {
        svc_log(SVC_LOG_ERR, "cannot list runs to resume: %s", db_last_error());
        return;
    }
    bool *skip = calloc(l->n ? l->n : 1, sizeof *skip);
    int64_t *stale = calloc(l->n ? l->n : 1, sizeof *stale);
    size_t n_stale = 0;
    if (!skip || !stale) {
        svc_log(SVC_LOG_ERR, "out of memory resuming runs");
        free(skip);
        free(stale);
        db_run_list_free(l);
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        const db_run *r = &l->runs[i];
        if (r->status != DB_RUNNING || r->worker_pid <= 0 || !alive(r->worker_pid))
            continue;
        if (svc_resume_is_our_worker(sv, r->worker_pid, r->id)) {
            svc_log_run(SVC_LOG_WARNING, r->id, "a worker of the previous service (pid %lld) is still running; "
                        "stopping it", (long long)r->worker_pid);
            stale[n_stale++] = r->worker_pid;
            continue;
        }
        char buf[4096];
        const char *argv[4];
        int argc = read_cmdline(r->worker_pid, buf, sizeof buf, argv, 4);
        if (argc >= 2 && (!strcmp(argv[1], "run") || !strcmp(base(argv[0]), base(sv->exe)))) {
            /* a foreground `epochd run` (or a worker of another state folder): not ours */
            svc_log_run(SVC_LOG_DEBUG, r->id, "running in process %lld (%s %s): left alone",
                        (long long)r->worker_pid, argv[0], argv[1]);
            skip[i] = true;
        }
        /* otherwise the pid was reused by an unrelated process: the run is orphaned */
    }
    /* two processes must never write one run's checkpoint */
    stop_stale(stale, n_stale);
    for (size_t i = 0; i < l->n; i++) {
        const db_run *r = &l->runs[i];
        if (skip[i])
            continue;
        int rc;
        if (r->cancel_requested) {
            rc = db_run_finish(sv->db, r->id, DB_CANCELLED, "cancelled by request");
            if (rc == 0)
                svc_log_run(SVC_LOG_INFO, r->id, "cancelled by request (it was %s)", db_status_name(r->status));
        } else {
            const char *note = r->status == DB_RUNNING ? "resuming: the previous service ended while it ran"
                                                       : "resuming after the service was stopped";
            rc = db_run_requeue(sv->db, r->id, note);
            if (rc == 0)
                svc_log_run(SVC_LOG_INFO, r->id, "%s (%s)", note, r->name);
        }
        if (rc < 0)
            svc_log_run(SVC_LOG_ERR, r->id, "cannot put it back in the queue: %s", db_last_error());
    }
    free(skip);
    free(stale);
    db_run_list_free(l);
}
