/* Datasets fetched for `data: {download: true}` (datafetch.h): a child
 * `epochd data fetch NAME --root ROOT --json --retries 0` per (dataset,
 * root), its JSON lines read for progress and the outcome; the retries and
 * their backoff are the service's, so that each failure's reason reaches the
 * runs' notes. */
#include "service/datafetch.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/fsutil.h"
#include "datasets/manifest.h"
#include "schema/spec.h"
#include "service/internal.h"
#include "service/linebuf.h"
#include "service/log.h"
#include "service/map.h"

#define RETRY_MAX_S 3600
#define LINE_MAX_BYTES (64u * 1024u)

typedef struct fetch fetch;

struct fetch {
    fetch *next;
    svc_service *sv;
    char name[64];   /* the dataset (a manifest's entry) */
    char root[4096]; /* the data root it goes under */
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer; /* the backoff before a retry; SIGKILL after a stop's SIGTERM */
    int open_handles;
    bool running, exited, eof, stopping, dead;
    int64_t status;
    int term_signal;
    svc_linebuf lines;
    int failures;       /* failed attempts so far */
    char reason[1024];  /* the last failure's */
    bool retryable;     /* of the last failure (the child's word) */
    bool reported_done; /* the child said done */
    char failed_msg[1024];
    bool failed_retryable;
    char progress[160]; /* "12% of 11.1 MB", "unpacking" ... */
    double retry_wait_s; /* the backoff after the last failure */
    int waiters; /* runs waiting for it */
};

/* One queued run as examined: it waits for f, or it does not wait. */
typedef struct waiter {
    fetch *f;      /* NULL: ready (no download, or its data is there) */
    unsigned pass; /* the last scan that saw it queued */
} waiter;

typedef struct svc_datafetch {
    svc_map runs; /* run id -> waiter */
    fetch *fetches;
    unsigned pass;
    bool stopping;
} svc_datafetch;

static svc_datafetch *state(svc_service *sv)
{
    if (!sv->datafetch && (sv->datafetch = calloc(1, sizeof *sv->datafetch)))
        svc_map_init(&sv->datafetch->runs);
    return sv->datafetch;
}

static void key_of(int64_t id, char key[24]) { snprintf(key, 24, "%lld", (long long)id); }

/* ---- the fetch's lifetime ---- */

static void fetch_unlink_free(fetch *f)
{
    svc_datafetch *d = f->sv->datafetch;
    for (fetch **p = &d->fetches; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    svc_linebuf_free(&f->lines);
    free(f);
}

static void on_closed(uv_handle_t *h)
{
    fetch *f = h->data;
    if (--f->open_handles == 0 && f->dead)
        fetch_unlink_free(f);
}

/* Ends the fetch: its handles close, then it is freed. Its waiters must
 * have been let go. */
static void fetch_end(fetch *f)
{
    if (f->dead)
        return;
    f->dead = true;
    if (!uv_is_closing((uv_handle_t *)&f->timer))
        uv_close((uv_handle_t *)&f->timer, on_closed);
}

/* Lets every run waiting for f go: ready (its data is there), or failed with
 * msg. */
static void release(fetch *f, const char *fail_msg)
{
    svc_service *sv = f->sv;
    svc_datafetch *d = sv->datafetch;
    for (svc_map_iter it = svc_map_begin(&d->runs); svc_map_next(&it);) {
        waiter *w = it.value;
        if (w->f != f)
            continue;
        w->f = NULL;
        int64_t id = strtoll(it.key, NULL, 10);
        if (fail_msg) {
            if (db_run_finish(sv->db, id, DB_FAILED, fail_msg) == 0)
                svc_log_run(SVC_LOG_ERR, id, "failed: %s", fail_msg);
            else
                svc_log_run(SVC_LOG_ERR, id, "cannot record its failure (%s): %s", fail_msg, db_last_error());
            free(svc_map_del(&d->runs, it.key));
        }
    }
    f->waiters = 0;
    svc_sched_request(sv);
}

static int spawn(fetch *f);

static void on_retry(uv_timer_t *t)
{
    fetch *f = t->data;
    if (f->sv->datafetch->stopping || f->dead)
        return;
    if (f->waiters == 0) { /* every run waiting for it was cancelled */
        fetch_end(f);
        return;
    }
    spawn(f);
}

/* The child has exited and its output is read: what became of the fetch. */
static void finished(fetch *f)
{
    svc_service *sv = f->sv;
    f->running = false;
    uv_close((uv_handle_t *)&f->proc, on_closed);
    uv_close((uv_handle_t *)&f->out, on_closed);
    svc_linebuf_free(&f->lines);
    if (f->stopping || sv->datafetch->stopping) {
        svc_log(SVC_LOG_INFO, "data: the fetch of %s into %s stopped; the next start resumes it", f->name, f->root);
        fetch_end(f);
        return;
    }
    if (f->status == 0 && f->term_signal == 0) {
        svc_log(SVC_LOG_INFO, "data: %s is in %s; %d run%s waiting for it may start", f->name, f->root, f->waiters,
                f->waiters == 1 ? "" : "s");
        release(f, NULL);
        fetch_end(f);
        return;
    }
    f->failures++;
    if (f->failed_msg[0]) {
        snprintf(f->reason, sizeof f->reason, "%s", f->failed_msg);
        f->retryable = f->failed_retryable;
    } else {
        if (f->term_signal)
            snprintf(f->reason, sizeof f->reason, "`epochd data fetch` was killed by signal %d", f->term_signal);
        else
            snprintf(f->reason, sizeof f->reason, "`epochd data fetch` exited with status %lld", (long long)f->status);
        f->retryable = f->status != 64; /* a usage error would be ours: it would fail again */
    }
    int limit = sv->cfg.data.fetch_attempts;
    if (!f->retryable || f->failures >= limit) {
        char msg[6000];
        snprintf(msg, sizeof msg, "data: cannot fetch %s into %s: %s (%s)", f->name, f->root, f->reason,
                 f->retryable ? "" : "a retry would not help");
        if (f->retryable)
            snprintf(msg, sizeof msg, "data: cannot fetch %s into %s: %s (after %d attempt%s)", f->name, f->root,
                     f->reason, f->failures, f->failures == 1 ? "" : "s");
        svc_log(SVC_LOG_ERR, "%s", msg);
        release(f, msg);
        fetch_end(f);
        return;
    }
    double wait = (double)sv->cfg.data.retry_s;
    for (int i = 1; i < f->failures && wait < RETRY_MAX_S; i++)
        wait *= 2;
    if (wait > RETRY_MAX_S)
        wait = RETRY_MAX_S;
    f->retry_wait_s = wait;
    svc_log(SVC_LOG_WARNING, "data: fetching %s failed (attempt %d of %d): %s; trying again in %.0f s", f->name,
            f->failures, limit, f->reason, wait);
    uv_timer_start(&f->timer, on_retry, (uint64_t)(wait * 1000), 0);
    svc_sched_request(sv);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    fetch *f = p->data;
    f->exited = true;
    f->status = status;
    f->term_signal = sig;
    uv_timer_stop(&f->timer); /* a pending SIGKILL */
    if (f->eof)
        finished(f);
}

static void fmt_bytes(char *buf, size_t len, double b)
{
    const char *u[] = {"B", "kB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000 && i < 4) {
        b /= 1000;
        i++;
    }
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

/* One JSON line of the child: progress, done or failed. */
static int on_line(void *ctx, const char *line, size_t len)
{
    fetch *f = ctx;
    json_t *j = json_loadb(line, len, 0, NULL);
    const char *ev = j ? json_string_value(json_object_get(j, "event")) : NULL;
    if (!ev) {
        svc_log(SVC_LOG_DEBUG, "data: %s: %.*s", f->name, (int)(len > 300 ? 300 : len), line);
    } else if (!strcmp(ev, "progress")) {
        const char *phase = json_string_value(json_object_get(j, "phase"));
        json_int_t done = json_integer_value(json_object_get(j, "done"));
        json_int_t total = json_integer_value(json_object_get(j, "total"));
        int fi = (int)json_integer_value(json_object_get(j, "file_index"));
        int fc = (int)json_integer_value(json_object_get(j, "file_count"));
        char tb[32];
        fmt_bytes(tb, sizeof tb, (double)total);
        if (phase && !strcmp(phase, "download") && total > 0)
            /* in steps of 10%: every waiting run's note is written when it changes */
            snprintf(f->progress, sizeof f->progress, "file %d of %d, %d%% of %s", fi, fc,
                     10 * (int)(10.0 * (double)done / (double)total), tb);
        else if (phase && !strcmp(phase, "wait"))
            snprintf(f->progress, sizeof f->progress, "waiting for another fetch of it");
        else if (phase)
            snprintf(f->progress, sizeof f->progress, "%s",
                     !strcmp(phase, "unpack")   ? "unpacking"
                     : !strcmp(phase, "verify") ? "verifying"
                                                : phase);
    } else if (!strcmp(ev, "failed")) {
        const char *e = json_string_value(json_object_get(j, "error"));
        snprintf(f->failed_msg, sizeof f->failed_msg, "%s", e && *e ? e : "failed");
        f->failed_retryable = json_is_true(json_object_get(j, "retryable"));
    } else if (!strcmp(ev, "done")) {
        f->reported_done = true;
    }
    json_decref(j);
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    static char buf[16384]; /* the loop's thread only; consumed before the next read */
    (void)s;
    *b = uv_buf_init(buf, sizeof buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    fetch *f = s->data;
    if (n > 0) {
        svc_linebuf_feed(&f->lines, b->base, (size_t)n, on_line, f);
        return;
    }
    if (n < 0) {
        uv_read_stop(s);
        svc_linebuf_finish(&f->lines, on_line, f);
        f->eof = true;
        if (f->exited)
            finished(f);
    }
}

/* The manifest file to give the child: the service's data_manifest when it
 * names the dataset. */
static const char *manifest_for(const svc_service *sv, const char *name)
{
    const ds_manifest *m = sv->cfg.data.manifest;
    for (int i = 0; m && i < m->n; i++)
        if (!strcmp(m->entries[i].name, name))
            return sv->cfg.data.manifest_path;
    return NULL;
}

static int spawn(fetch *f)
{
    svc_service *sv = f->sv;
    const char *args[16];
    int n = 0;
    args[n++] = sv->exe;
    args[n++] = "data";
    args[n++] = "fetch";
    args[n++] = f->name;
    args[n++] = "--root";
    args[n++] = f->root;
    args[n++] = "--json";
    args[n++] = "--retries"; /* the retries are ours (their reasons go to the runs) */
    args[n++] = "0";
    if (sv->cfg.data.mirror) {
        args[n++] = "--mirror";
        args[n++] = sv->cfg.data.mirror;
    }
    const char *man = manifest_for(sv, f->name);
    if (man) {
        args[n++] = "--manifest";
        args[n++] = man;
    }
    args[n] = NULL;
    f->exited = f->eof = f->reported_done = false;
    f->failed_msg[0] = '\0';
    f->progress[0] = '\0';
    f->status = 0;
    f->term_signal = 0;
    svc_linebuf_init(&f->lines, LINE_MAX_BYTES, true);
    uv_pipe_init(sv->loop, &f->out, 0);
    f->out.data = f->proc.data = f;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&f->out},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    /* its own process group: a Ctrl-C meant for the service does not reach it;
     * the service stops it */
    uv_process_options_t opt = {.exit_cb = on_exit_cb,
                                .file = sv->exe,
                                .args = (char **)args,
                                .stdio_count = 3,
                                .stdio = stdio,
                                .flags = UV_PROCESS_DETACHED};
    f->open_handles += 2;
    int rc = uv_spawn(sv->loop, &f->proc, &opt);
    if (rc < 0) {
        /* as a failed attempt: its reason on the runs, retried with the backoff */
        svc_linebuf_free(&f->lines);
        f->exited = f->eof = true;
        f->status = 127;
        f->running = true;
        snprintf(f->failed_msg, sizeof f->failed_msg, "cannot run `%s data fetch`: %s", sv->exe, uv_strerror(rc));
        f->failed_retryable = true;
        finished(f);
        return -1;
    }
    f->running = true;
    svc_log(SVC_LOG_INFO, "data: fetching %s into %s%s%s (attempt %d of %d, pid %d)", f->name, f->root,
            man ? " with the manifest " : "", man ? man : "", f->failures + 1, sv->cfg.data.fetch_attempts,
            f->proc.pid);
    uv_read_start((uv_stream_t *)&f->out, on_alloc, on_read);
    return 0;
}

/* The fetch of (name, root): the one in progress, or a new one. */
static fetch *fetch_for(svc_service *sv, const char *name, const char *root)
{
    svc_datafetch *d = sv->datafetch;
    for (fetch *f = d->fetches; f; f = f->next)
        if (!f->dead && !strcmp(f->name, name) && !strcmp(f->root, root))
            return f;
    fetch *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->sv = sv;
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->root, sizeof f->root, "%s", root);
    uv_timer_init(sv->loop, &f->timer);
    f->timer.data = f;
    f->open_handles = 1;
    f->next = d->fetches;
    d->fetches = f;
    spawn(f);
    return f;
}

/* ---- the runs ---- */

/* What run r needs: NULL (nothing to fetch) or the fetch it waits for. */
static fetch *examine(svc_service *sv, const db_run *r)
{
    if (!r->spec || !strstr(r->spec, "download"))
        return NULL; /* the common case, without parsing */
    spec_options opt;
    svc_config_spec_options(&sv->cfg, &opt);
    opt.check_files = false; /* only the spec: the folder is looked at below */
    spec_file *sf = NULL;
    if (spec_file_load_buffer(r->spec_path, r->spec, strlen(r->spec), &opt, &sf) < 0)
        return NULL;
    fetch *f = NULL;
    const spec *s = sf->n_entries == 1 ? sf->entries[0].spec : NULL;
    struct stat st;
    if (s && s->download && stat(s->data.root, &st) != 0) {
        char root[4096];
        snprintf(root, sizeof root, "%s", s->data.root);
        char *slash = strrchr(root, '/');
        if (slash && slash != root)
            *slash = '\0';
        const char *name = eng_dataset_names[s->data.dataset];
        f = fetch_for(sv, name, root);
        if (f && f->dead)
            f = NULL; /* it could not even start, and may not be retried: the worker
                         will say what is missing */
        else if (!f)
            svc_log_run(SVC_LOG_ERR, r->id, "out of memory starting the fetch of %s", name);
        else if (f->waiters == 0 || !f->running)
            svc_log_run(SVC_LOG_INFO, r->id, "waits for %s, missing in %s: fetching it", name, root);
        else
            svc_log_run(SVC_LOG_INFO, r->id, "waits for %s: its fetch is under way", name);
    }
    spec_file_free(sf);
    return f;
}

void svc_datafetch_scan(svc_service *sv, const db_run_list *q)
{
    svc_datafetch *d = state(sv);
    if (!d || d->stopping)
        return;
    d->pass++;
    for (size_t i = 0; i < q->n; i++) {
        const db_run *r = &q->runs[i];
        if (r->cancel_requested || svc_attempt_find(sv, r->id))
            continue;
        char key[24];
        key_of(r->id, key);
        waiter *w = svc_map_get(&d->runs, key);
        if (!w) {
            if (!(w = calloc(1, sizeof *w)) || svc_map_put(&d->runs, key, w) < 0) {
                free(w);
                continue;
            }
            if ((w->f = examine(sv, r)))
                w->f->waiters++;
        }
        w->pass = d->pass;
    }
    /* runs that left the queue (cancelled, superseded) */
    for (svc_map_iter it = svc_map_begin(&d->runs); svc_map_next(&it);) {
        waiter *w = it.value;
        if (w->pass == d->pass)
            continue;
        if (w->f)
            w->f->waiters--;
        free(svc_map_del(&d->runs, it.key));
    }
}

bool svc_datafetch_waits(svc_service *sv, int64_t run_id, char *note, size_t len)
{
    svc_datafetch *d = sv->datafetch;
    char key[24];
    key_of(run_id, key);
    waiter *w = d ? svc_map_get(&d->runs, key) : NULL;
    if (!w || !w->f)
        return false;
    fetch *f = w->f;
    int limit = sv->cfg.data.fetch_attempts;
    if (f->running && f->failures == 0)
        snprintf(note, len, "waiting for data: fetching %s into %s%s%s", f->name, f->root, f->progress[0] ? ", " : "",
                 f->progress);
    else if (f->running)
        snprintf(note, len,
                 "waiting for data: fetching %s, attempt %d of %d%s%s (attempt %d "
                 "failed: %s)",
                 f->name, f->failures + 1, limit, f->progress[0] ? ", " : "", f->progress, f->failures, f->reason);
    else /* the wait as decided, not a countdown: the note changes only with the fetch */
        snprintf(note, len, "waiting for data: fetching %s failed (attempt %d of %d), trying again after %.0f s: %s",
                 f->name, f->failures, limit, f->retry_wait_s, f->reason);
    return true;
}

static void on_kill(uv_timer_t *t)
{
    fetch *f = t->data;
    if (f->running && !f->exited) {
        svc_log(SVC_LOG_WARNING, "data: the fetch of %s did not stop: killing it", f->name);
        uv_process_kill(&f->proc, SIGKILL);
    }
}

void svc_datafetch_stop(svc_service *sv)
{
    svc_datafetch *d = sv->datafetch;
    if (!d || d->stopping)
        return;
    d->stopping = true;
    for (fetch *f = d->fetches; f; f = f->next) {
        if (f->dead)
            continue;
        if (f->running && !f->exited) {
            f->stopping = true;
            uv_process_kill(&f->proc, SIGTERM);
            uv_timer_start(&f->timer, on_kill, (uint64_t)sv->cfg.stop_timeout_ms, 0);
        } else if (!f->running) {
            uv_timer_stop(&f->timer);
            fetch_end(f);
        }
    }
}

void svc_datafetch_free(svc_service *sv)
{
    svc_datafetch *d = sv->datafetch;
    if (!d)
        return;
    for (svc_map_iter it = svc_map_begin(&d->runs); svc_map_next(&it);)
        free(it.value);
    svc_map_free(&d->runs);
    while (d->fetches) { /* only if the loop never ran them to their end */
        fetch *f = d->fetches;
        d->fetches = f->next;
        svc_linebuf_free(&f->lines);
        free(f);
    }
    free(d);
    sv->datafetch = NULL;
}
