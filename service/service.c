/* The service: start-up, the event loop, SIGHUP reload and shutdown. */
#include "service/internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "epochd_config.h"
#include "service/datafetch.h"
#include "service/log.h"
#include "service/notify.h"
#include "service/observe_hooks.h"
#include "service/paths.h"
#include "service/placement.h"

static svc_watch_opts watch_opts(const svc_config *c)
{
    return (svc_watch_opts){.settle_ms = c->settle_ms, .max_bytes = c->max_spec_bytes,
                            .rescan_interval_ms = c->rescan_interval_ms};
}

static void log_diags(int level, const spec_diags *d)
{
    for (int i = 0; i < d->n; i++) {
        char line[2048];
        spec_diag_format(&d->v[i], line, sizeof line);
        svc_log(level, "%s", line);
    }
}

/* ---- closing ---- */

static void noop_close(uv_handle_t *h) { (void)h; }

static void close_all(svc_service *sv)
{
    if (sv->closed)
        return;
    sv->closed = true;
    uv_handle_t *hs[] = {(uv_handle_t *)&sv->sig_term,   (uv_handle_t *)&sv->sig_int,
                         (uv_handle_t *)&sv->sig_hup,    (uv_handle_t *)&sv->sched_timer,
                         (uv_handle_t *)&sv->poll_timer, (uv_handle_t *)&sv->watchdog_timer,
                         (uv_handle_t *)&sv->stop_timer};
    for (size_t i = 0; i < sizeof hs / sizeof *hs; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], noop_close);
    if (sv->watch) {
        svc_watch_close(sv->watch, NULL, NULL);
        sv->watch = NULL;
    }
}

void svc_attempt_gone(svc_service *sv)
{
    if (sv->stopping) {
        svc_sched_status(sv);
        if (sv->n_attempts == 0) {
            svc_log(SVC_LOG_INFO, "every worker has stopped; exiting");
            close_all(sv);
        }
        return;
    }
    svc_sched_request(sv);
}

static void on_stop_timeout(uv_timer_t *t)
{
    svc_service *sv = t->data;
    svc_log(SVC_LOG_WARNING, "workers still running after %lld s: killing them",
            (long long)(sv->cfg.stop_timeout_ms / 1000));
    for (svc_attempt *w = sv->attempts; w; w = w->next)
        svc_attempt_kill(w);
}

void svc_service_stop(svc_service *sv, const char *why)
{
    if (sv->stopping) {
        svc_log(SVC_LOG_WARNING, "%s again: killing %d worker%s now", why, sv->n_attempts,
                sv->n_attempts == 1 ? "" : "s");
        for (svc_attempt *w = sv->attempts; w; w = w->next)
            svc_attempt_kill(w);
        return;
    }
    sv->stopping = true;
    svc_notify("STOPPING=1");
    svc_log(SVC_LOG_INFO, "%s: stopping (%d running run%s become interrupted)", why, sv->n_attempts,
            sv->n_attempts == 1 ? "" : "s");
    uv_timer_stop(&sv->sched_timer);
    uv_timer_stop(&sv->poll_timer);
    if (sv->watch) {
        svc_watch_close(sv->watch, NULL, NULL);
        sv->watch = NULL;
    }
    for (svc_attempt *w = sv->attempts; w; w = w->next)
        if (!svc_cluster_leave(w)) /* slurm.on_stop: leave keeps the jobs running */
            svc_attempt_stop(w, false, NULL);
    svc_datafetch_stop(sv); /* the loop ends once the fetches have stopped too */
    /* each worker has its own SIGKILL timer; this one is the overall bound */
    uv_timer_start(&sv->stop_timer, on_stop_timeout, (uint64_t)sv->cfg.stop_timeout_ms + 1000, 0);
    svc_sched_status(sv);
    if (sv->n_attempts == 0)
        close_all(sv);
}

/* ---- signals and timers ---- */

static void on_signal(uv_signal_t *h, int sig)
{
    svc_service *sv = h->data;
    if (sig == SIGHUP) {
        if (!sv->stopping)
            svc_service_reload(sv);
        return;
    }
    svc_service_stop(sv, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_poll(uv_timer_t *t)
{
    svc_sched_poll(t->data);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    svc_notify("WATCHDOG=1");
}

/* ---- start-up ---- */

static int start_watch(svc_service *sv)
{
    svc_watch_cbs cbs = {.ctx = sv, .file_ready = svc_ingest_file, .file_unreadable = svc_ingest_unreadable,
                         .file_gone = svc_ingest_gone, .scan_done = svc_ingest_scan_done};
    svc_watch_opts o = watch_opts(&sv->cfg);
    int rc = svc_watch_new(sv->loop, sv->cfg.experiments, &o, &cbs, &sv->watch);
    if (rc < 0)
        svc_log(SVC_LOG_ERR, "%s", svc_last_error());
    return rc;
}

static void log_slots(svc_service *sv)
{
    char gpus[512] = "";
    for (int i = 0; i < sv->slots.n_gpus; i++) {
        size_t l = strlen(gpus);
        snprintf(gpus + l, sizeof gpus - l, "%scuda:%d", i ? ", " : "", sv->slots.gpu_ordinal[i]);
    }
    int t = svc_config_threads(&sv->cfg);
    if (sv->cfg.executor == SVC_EXECUTOR_SLURM) {
        svc_log(SVC_LOG_INFO, "executor slurm: up to %d jobs in flight, %d thread%s per CPU run, GPU runs ask for %s",
                sv->cfg.slurm.max_jobs, t, t == 1 ? "" : "s", sv->cfg.slurm.gpu_option);
        return;
    }
    if (sv->slots.n_gpus)
        svc_log(SVC_LOG_INFO, "devices: CPU with %d slot%s (%d thread%s per run); GPUs %s with %d slot%s each",
                sv->slots.cpu_slots, sv->slots.cpu_slots == 1 ? "" : "s", t, t == 1 ? "" : "s", gpus,
                sv->slots.gpu_slots, sv->slots.gpu_slots == 1 ? "" : "s");
    else
        svc_log(SVC_LOG_INFO, "devices: CPU with %d slot%s (%d thread%s per run); no GPU", sv->slots.cpu_slots,
                sv->slots.cpu_slots == 1 ? "" : "s", t, t == 1 ? "" : "s");
}

static void on_devices(svc_service *sv, int n_gpus, const svc_gpu_info *gpus)
{
    if (sv->stopping)
        return;
    sv->n_host_gpus = n_gpus;
    char warn[512];
    svc_slots_init(&sv->slots, n_gpus, &sv->filter, sv->cfg.cpu_slots, sv->cfg.gpu_slots, warn, sizeof warn);
    if (warn[0])
        svc_log(SVC_LOG_WARNING, "%s", warn);
    svc_log(SVC_LOG_INFO, "found %d GPU%s", n_gpus, n_gpus == 1 ? "" : "s");
    log_slots(sv);
    svc_placement_devices(sv, n_gpus, gpus);
    svc_resume_orphans(sv);
    if (start_watch(sv) < 0) {
        sv->exit_code = SVC_ENOENT;
        svc_service_stop(sv, "no experiments folder");
        return;
    }
    sv->started = true;
    uv_timer_start(&sv->poll_timer, on_poll, (uint64_t)sv->cfg.cancel_poll_ms, (uint64_t)sv->cfg.cancel_poll_ms);
}

/* The database and the state folder are fixed for the service's life:
 * the new settings keep the running ones (with a word in the log). */
static void keep_fixed_settings(svc_service *sv, svc_config *nc)
{
    if (strcmp(nc->db_path, sv->cfg.db_path))
        svc_log(SVC_LOG_WARNING, "db changed to %s: takes effect at the next start", nc->db_path);
    if (strcmp(nc->state_dir, sv->cfg.state_dir))
        svc_log(SVC_LOG_WARNING, "state_dir changed to %s: takes effect at the next start", nc->state_dir);
    if (nc->executor != sv->cfg.executor) {
        svc_log(SVC_LOG_WARNING, "executor changed: takes effect at the next start");
        nc->executor = sv->cfg.executor;
    }
    free(nc->db_path);
    free(nc->state_dir);
    nc->db_path = sv->cfg.db_path;
    nc->state_dir = sv->cfg.state_dir;
    sv->cfg.db_path = sv->cfg.state_dir = NULL;
}

void svc_service_reload(svc_service *sv)
{
    svc_log(SVC_LOG_INFO, "SIGHUP: reloading %s and rescanning",
            sv->cfg.config_path ? sv->cfg.config_path : "the settings");
    svc_config nc;
    spec_diags diags = {0};
    int rc = svc_config_build(&nc, &sv->ovr, &diags);
    if (rc < 0) {
        log_diags(SVC_LOG_ERR, &diags);
        svc_log(SVC_LOG_ERR, "the new settings are not valid; keeping the previous ones");
        spec_diags_clear(&diags);
        if (sv->watch)
            svc_watch_rescan(sv->watch, true);
        return;
    }
    spec_diags_clear(&diags);
    svc_device_filter f;
    if (svc_devices_parse(nc.devices, &f) < 0) {
        svc_log(SVC_LOG_ERR, "devices: %s; keeping the previous settings", svc_last_error());
        svc_config_free(&nc);
        return;
    }
    keep_fixed_settings(sv, &nc);
    bool new_root = strcmp(nc.experiments, sv->cfg.experiments) != 0;
    svc_config_free(&sv->cfg);
    sv->cfg = nc;
    sv->filter = f;
    svc_log_set_level(sv->cfg.log_level);
    if (sv->started) {
        char warn[512];
        svc_slots_reconfigure(&sv->slots, &sv->filter, sv->cfg.cpu_slots, sv->cfg.gpu_slots, warn, sizeof warn);
        if (warn[0])
            svc_log(SVC_LOG_WARNING, "%s", warn);
        log_slots(sv);
        if (new_root || !sv->watch) {
            if (sv->watch)
                svc_watch_close(sv->watch, NULL, NULL);
            sv->watch = NULL;
            svc_mkdirs(sv->cfg.experiments, 0755);
            start_watch(sv);
        } else {
            svc_watch_opts o = watch_opts(&sv->cfg);
            svc_watch_set_opts(sv->watch, &o);
            svc_watch_rescan(sv->watch, true);
        }
        uv_timer_start(&sv->poll_timer, on_poll, (uint64_t)sv->cfg.cancel_poll_ms,
                       (uint64_t)sv->cfg.cancel_poll_ms);
        svc_sched_request(sv);
    }
}

static void ignore_signal(int sig)
{
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* This binary, which the workers run as `epochd worker`. */
static int find_exe(svc_service *sv)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return svc_error(SVC_EINTERNAL, "cannot find this program (/proc/self/exe): %s", strerror(errno));
    exe[n] = '\0';
    if (!(sv->exe = strdup(exe)))
        return svc_error(SVC_ENOMEM, "out of memory");
    return 0;
}

/* The settings, logged when they are not valid. */
static int build_config(svc_service *sv)
{
    spec_diags diags = {0};
    int rc = svc_config_build(&sv->cfg, &sv->ovr, &diags);
    if (rc < 0) {
        log_diags(SVC_LOG_ERR, &diags);
        spec_diags_clear(&diags);
        return rc == SVC_ENOMEM ? svc_error(rc, "out of memory reading the settings")
                                : svc_error(SVC_EUSAGE, "the settings are not valid");
    }
    spec_diags_clear(&diags);
    svc_log_set_level(sv->cfg.log_level);
    if ((rc = svc_devices_parse(sv->cfg.devices, &sv->filter)) < 0)
        return svc_error(SVC_EUSAGE, "--devices: %s", svc_last_error());
    return 0;
}

/* The folders, the database and its lock. */
static int open_files(svc_service *sv)
{
    int rc = svc_mkdirs(sv->cfg.experiments, 0755);
    if (rc < 0)
        return svc_error(SVC_ENOENT, "cannot create the experiments folder: %s", svc_last_error());
    if ((rc = svc_mkdirs(sv->cfg.state_dir, 0755)) < 0)
        return svc_error(SVC_EIO, "cannot create the state folder: %s", svc_last_error());
    if (!(sv->state_dir = realpath(sv->cfg.state_dir, NULL)))
        return svc_error(SVC_EIO, "cannot resolve the state folder %s: %s", sv->cfg.state_dir, strerror(errno));
    if ((rc = find_exe(sv)) < 0)
        return rc;
    if ((rc = db_open(sv->cfg.db_path, DB_OPEN_CREATE, &sv->db)) < 0) {
        if (access(sv->cfg.db_path, F_OK) == 0 && access(sv->cfg.db_path, W_OK) < 0)
            return svc_error(SVC_EIO, "the database %s is read-only for this service (check the file's and its "
                                      "folder's owner and permissions): %s", sv->cfg.db_path, db_last_error());
        return svc_error(svc_from_db(rc), "cannot open the database %s: %s", sv->cfg.db_path, db_last_error());
    }
    /* one service per database: a second one would start the same queued runs */
    if ((rc = svc_guard_lock(sv)) < 0)
        return rc;
    if (db_readonly(sv->db))
        return svc_error(SVC_EIO, "the database %s is read-only for this service (check the file's and its "
                                  "folder's owner and permissions): it could not record any run",
                         sv->cfg.db_path);
    return 0;
}

int svc_service_new(const svc_overrides *ovr, svc_service **out)
{
    *out = NULL;
    svc_service *sv = calloc(1, sizeof *sv);
    if (!sv)
        return svc_error(SVC_ENOMEM, "out of memory");
    sv->lock_fd = -1;
    sv->ovr = *ovr;
    int rc = svc_observe_new(&sv->obs);
    if (rc == 0)
        rc = build_config(sv);
    if (rc == 0)
        rc = open_files(sv);
    if (rc == 0 && sv->cfg.executor == SVC_EXECUTOR_SLURM)
        rc = svc_executor_slurm_new(uv_default_loop(), &sv->cfg, sv->exe, sv->state_dir, &sv->exec);
    else if (rc == 0)
        rc = svc_executor_local_new(uv_default_loop(), &sv->cfg, sv->exe, sv->state_dir, &sv->exec);
    if (rc < 0) {
        svc_service_free(sv);
        return rc;
    }
    *out = sv;
    return 0;
}

static void start_handles(svc_service *sv)
{
    sv->loop = uv_default_loop();
    uv_signal_t *sigs[] = {&sv->sig_term, &sv->sig_int, &sv->sig_hup};
    int signums[] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(sv->loop, sigs[i]);
        sigs[i]->data = sv;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    uv_timer_t *timers[] = {&sv->sched_timer, &sv->poll_timer, &sv->watchdog_timer, &sv->stop_timer};
    for (int i = 0; i < 4; i++) {
        uv_timer_init(sv->loop, timers[i]);
        timers[i]->data = sv;
    }
    uint64_t wd_usec;
    if (svc_notify_watchdog(&wd_usec)) {
        uint64_t ms = wd_usec / 2000;
        if (ms < 1)
            ms = 1;
        uv_timer_start(&sv->watchdog_timer, on_watchdog, 0, ms);
        svc_log(SVC_LOG_INFO, "systemd watchdog: a keep-alive every %llu ms", (unsigned long long)ms);
    }
}

int svc_service_run(svc_service *sv)
{
    /* a worker whose pipe closes must not take the service down; read
     * leases are broken with SIGIO, which we do not need to hear */
    ignore_signal(SIGPIPE);
    ignore_signal(SIGIO);
    start_handles(sv);
    svc_log(SVC_LOG_INFO, "epochd %s serving %s (database %s, state %s)", EPOCHD_VERSION, sv->cfg.experiments,
            sv->cfg.db_path, sv->state_dir);
    if (svc_discover_gpus(sv, false, on_devices) < 0) {
        sv->exit_code = svc_error(SVC_ENOMEM, "out of memory");
        close_all(sv);
    }
    uv_run(sv->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(sv->loop) != 0)
        svc_log(SVC_LOG_DEBUG, "the event loop still had handles at exit");
    assert(sv->n_attempts == 0);
    return sv->exit_code;
}

void svc_service_free(svc_service *sv)
{
    if (!sv)
        return;
    svc_attempt_drop_pending(sv);
    if (sv->exec)
        sv->exec->ops->free(sv->exec);
    db_close(sv->db);
    if (sv->lock_fd >= 0)
        close(sv->lock_fd);
    svc_placement_free(sv);
    svc_datafetch_free(sv);
    svc_config_free(&sv->cfg);
    free(sv->exe);
    free(sv->state_dir);
    svc_observe_free(sv->obs);
    free(sv);
    svc_notify_close();
}
