/* GPU discovery for the service: `epochd devices --json` runs in a
 * short-lived child, so the CUDA driver is never initialised in the
 * long-running service (a CUDA context there would pin memory on every GPU
 * and could not survive a driver hiccup). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/log.h"
#include "service/internal.h"

#define DISCOVER_TIMEOUT_MS 60000
#define DISCOVER_MAX_OUTPUT (1u << 20)

typedef struct discover {
    svc_service *sv;
    svc_discover_cb cb;
    bool quiet;
    svc_gpu_info gpus[SVC_MAX_GPUS];
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer;
    char *buf;
    size_t len;
    int open_handles;
    bool exited, eof, reported;
    int64_t status;
    int sig;
    char rbuf[4096];
} discover;

static int64_t int_member(json_t *d, const char *key)
{
    json_t *v = json_object_get(d, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
}

/* Reads `epochd devices --json` output ({"cuda_build": BOOL, "devices":
 * [{"ordinal", "name", "memory_bytes", "memory_free_bytes",
 * "multiprocessors", ...}]}; a bare array of devices is accepted too) into
 * d->gpus, logs them unless quiet, and returns how many there are. A free
 * memory of 0 means it could not be asked: unknown. */
static int read_devices(discover *dc, const char *buf, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loadb(buf, len, 0, &je);
    if (!j) {
        snprintf(err, errlen, "not JSON: %s", je.text);
        return -1;
    }
    json_t *arr = json_is_array(j) ? j : json_object_get(j, "devices");
    int n = -1;
    if (json_is_array(arr)) {
        n = (int)json_array_size(arr);
        for (int i = 0; i < n; i++) {
            json_t *d = json_array_get(arr, (size_t)i);
            const char *name = json_string_value(json_object_get(d, "name"));
            svc_gpu_info g = {.memory_bytes = int_member(d, "memory_bytes"),
                              .memory_free_bytes = int_member(d, "memory_free_bytes"),
                              .multiprocessors = (int)int_member(d, "multiprocessors")};
            snprintf(g.name, sizeof g.name, "%s", name ? name : "?");
            if (g.memory_free_bytes == 0)
                g.memory_free_bytes = -1;
            if (i < SVC_MAX_GPUS)
                dc->gpus[i] = g;
            if (!dc->quiet)
                svc_log(SVC_LOG_INFO, "cuda:%d: %s, %.1f GiB%s", i, g.name,
                        g.memory_bytes > 0 ? (double)g.memory_bytes / (1u << 30) : 0.0,
                        g.memory_free_bytes > 0 ? "" : " (free memory unknown)");
        }
        if (json_is_false(json_object_get(j, "cuda_build")) && !dc->quiet)
            svc_log(SVC_LOG_INFO, "this epochd was built without CUDA: runs go to the CPU");
    } else {
        snprintf(err, errlen, "no \"devices\" list");
    }
    json_decref(j);
    return n;
}

static void closed(uv_handle_t *h)
{
    discover *d = h->data;
    if (--d->open_handles == 0) {
        free(d->buf);
        free(d);
    }
}

static void report(discover *d)
{
    if (d->reported || !d->exited || !d->eof)
        return;
    d->reported = true;
    int n = 0;
    char err[256] = "";
    if (d->sig || d->status) {
        svc_log(SVC_LOG_WARNING,
                "`epochd devices --json` ended with status %lld signal %d: using no GPU (only the CPU)",
                (long long)d->status, d->sig);
    } else if ((n = read_devices(d, d->buf ? d->buf : "", d->len, err, sizeof err)) < 0) {
        svc_log(SVC_LOG_WARNING, "`epochd devices --json` gave %s: using no GPU", err);
        n = 0;
    }
    uv_close((uv_handle_t *)&d->proc, closed);
    uv_close((uv_handle_t *)&d->out, closed);
    uv_close((uv_handle_t *)&d->timer, closed);
    d->cb(d->sv, n, d->gpus);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    discover *d = p->data;
    d->exited = true;
    d->status = status;
    d->sig = sig;
    report(d);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)s;
    discover *d = h->data;
    *b = uv_buf_init(d->rbuf, sizeof d->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    discover *d = s->data;
    if (n > 0) {
        if (d->len + (size_t)n > DISCOVER_MAX_OUTPUT)
            return;
        char *nb = realloc(d->buf, d->len + (size_t)n + 1);
        if (!nb)
            return;
        d->buf = nb;
        memcpy(d->buf + d->len, b->base, (size_t)n);
        d->len += (size_t)n;
        d->buf[d->len] = '\0';
        return;
    }
    if (n < 0) {
        uv_read_stop(s);
        d->eof = true;
        report(d);
    }
}

static void on_timeout(uv_timer_t *t)
{
    discover *d = t->data;
    svc_log(SVC_LOG_WARNING, "`epochd devices --json` did not answer within %d s; killing it",
            DISCOVER_TIMEOUT_MS / 1000);
    uv_process_kill(&d->proc, SIGKILL);
}

static void no_cuda(uv_timer_t *t)
{
    discover *d = t->data;
    uv_close((uv_handle_t *)t, closed);
    d->cb(d->sv, 0, d->gpus);
}

int svc_discover_gpus(svc_service *sv, bool quiet, svc_discover_cb cb)
{
    discover *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->sv = sv;
    d->cb = cb;
    d->quiet = quiet;
    uv_timer_init(sv->loop, &d->timer);
    d->timer.data = d;
    d->open_handles = 1;
    uv_pipe_init(sv->loop, &d->out, 0);
    d->out.data = d->proc.data = d;
    d->open_handles = 3;
    char *args[] = {sv->exe, "devices", "--json", NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&d->out},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t opt = {.exit_cb = on_exit_cb, .file = sv->exe, .args = args, .stdio_count = 3,
                                .stdio = stdio};
    int rc = uv_spawn(sv->loop, &d->proc, &opt);
    if (rc < 0) {
        svc_log(SVC_LOG_WARNING, "cannot run `%s devices --json`: %s; using no GPU", sv->exe, uv_strerror(rc));
        d->exited = d->eof = d->reported = true;
        uv_close((uv_handle_t *)&d->proc, closed);
        uv_close((uv_handle_t *)&d->out, closed);
        uv_timer_start(&d->timer, no_cuda, 0, 0);
        return 0;
    }
    uv_read_start((uv_stream_t *)&d->out, on_alloc, on_read);
    uv_timer_start(&d->timer, on_timeout, DISCOVER_TIMEOUT_MS, 0);
    return 0;
}
