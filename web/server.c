/* The HTTP server: libmicrohttpd (Debian's libmicrohttpd-dev) with its own
 * pool of threads on epoll, so that no request - and no slow, idle or
 * hostile client - ever runs on the service's event loop. Every request
 * passes the guard (guard.c), is answered from the one-second cache or
 * rendered into memory by its handler, and goes out with headers that keep
 * a browser from doing anything but showing it. Limits: WEB_* in
 * internal.h, documented in docs/web.md. */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "service/error.h"
#include "service/log.h"
#include "web/assets.h"
#include "web/internal.h"
#include "web/web.h"

/* The pages' own script and styles only, nothing from elsewhere; no framing. */
static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                          "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/* ---- query arguments ---- */

const char *web_arg(web_request *rq, const char *key)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

typedef struct arg_list {
    const char *key;
    size_t n, bytes;
    const char **v;
    char *buf;
    size_t at;
    bool fill, oom;
} arg_list;

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    arg_list *l = cls;
    if (!value || strcmp(key, l->key))
        return MHD_YES;
    /* first pass: count; second: split into the buffer */
    const char *p = value;
    while (1) {
        size_t len = strcspn(p, ",");
        if (len) {
            if (l->fill) {
                memcpy(l->buf + l->at, p, len);
                l->buf[l->at + len] = '\0';
                l->v[l->n] = l->buf + l->at;
                l->at += len + 1;
            } else {
                l->bytes += len + 1;
            }
            l->n++;
        }
        if (!p[len])
            break;
        p += len + 1;
    }
    return MHD_YES;
}

int web_arg_list(web_request *rq, const char *key, const char ***out, size_t *n, char **buf)
{
    *out = NULL;
    *n = 0;
    *buf = NULL;
    arg_list l = {.key = key};
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, collect, &l);
    if (!l.n)
        return 0;
    size_t count = l.n;
    l.v = calloc(count, sizeof *l.v);
    l.buf = malloc(l.bytes);
    if (!l.v || !l.buf) {
        free(l.v);
        free(l.buf);
        return svc_error(SVC_ENOMEM, "out of memory");
    }
    l.n = 0;
    l.fill = true;
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, collect, &l);
    *out = l.v;
    *n = l.n;
    *buf = l.buf;
    return 0;
}

/* ---- routing ---- */

/* "123" -> 123; anything else (signs, spaces, zero, overflow) -> -1 */
static int64_t parse_id(const char *s, size_t len)
{
    if (len == 0 || len > 18 || s[0] == '0')
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "/runs/12" + "/epochs": the id when path is prefix ID suffix exactly. */
static int64_t id_in(const char *path, const char *prefix, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(path);
    if (n <= pl + sl || strncmp(path, prefix, pl) || strcmp(path + n - sl, suffix))
        return -1;
    return parse_id(path + pl, n - pl - sl);
}

/* Runs the handler for the path; 404 for anything else. */
static int route(web_request *rq)
{
    const char *p = rq->path;
    int64_t id;
    if (!strcmp(p, "/"))
        return web_page_runs(rq);
    if (!strcmp(p, "/compare"))
        return web_page_compare(rq);
    if (!strcmp(p, "/help"))
        return web_page_help(rq);
    if (!strcmp(p, "/metrics"))
        return web_metrics(rq);
    if (!strcmp(p, "/api/runs"))
        return web_api_runs(rq);
    if (!strcmp(p, "/api/compare"))
        return web_api_compare(rq);
    if ((id = id_in(p, "/runs/", "")) > 0)
        return web_page_run(rq, id);
    if ((id = id_in(p, "/runs/", "/curves.svg")) > 0)
        return web_run_svg(rq, id);
    if ((id = id_in(p, "/api/runs/", "")) > 0)
        return web_api_run(rq, id);
    if ((id = id_in(p, "/api/runs/", "/epochs")) > 0)
        return web_api_epochs(rq, id);
    if (!strncmp(p, "/api/", 5))
        return web_json_error(rq, 404, "no such API path (docs/web.md lists them)");
    return web_error_page(rq, 404, "There is no such page here.");
}

/* ---- responses ---- */

static void security_headers(struct MHD_Response *r, const char *type, bool asset)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, asset ? "max-age=300" : "no-store");
    MHD_add_response_header(r, "Content-Security-Policy", csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
}

/* body: malloc'ed, handed over (freed here on failure). */
static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *type, char *body, size_t len,
                             bool asset, web_server *w)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    security_headers(r, type, asset);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (status == MHD_HTTP_UNAUTHORIZED) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"epochd\"");
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"epochd\", charset=\"UTF-8\"");
    }
    (void)w;
    enum MHD_Result res = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return res;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, int status, const char *text, web_server *w)
{
    char *body = NULL;
    if (asprintf(&body, "%d %s\n", status, text) < 0)
        return MHD_NO;
    return reply(c, status, "text/plain; charset=utf-8", body, strlen(body), false, w);
}

static enum MHD_Result serve_asset(struct MHD_Connection *c, const char *url, web_server *w)
{
    for (const web_asset *a = web_assets; a->url; a++) {
        if (strcmp(a->url, url) || !strncmp(a->url + strlen(a->url) - 5, ".html", 5))
            continue;
        char *copy = malloc(a->len ? a->len : 1);
        if (!copy)
            return MHD_NO;
        memcpy(copy, a->data, a->len);
        return reply(c, 200, a->content_type, copy, a->len, true, w);
    }
    return reply_text(c, 404, "no such file", w);
}

/* The cache key: the path and every query argument, in order. */
typedef struct key_buf {
    FILE *f;
    char sep;
} key_buf;

static enum MHD_Result key_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    key_buf *k = cls;
    /* encoded again, so that a value holding '&' or '=' makes a key of its own */
    fputc(k->sep, k->f);
    web_url_esc(k->f, key);
    fputc('=', k->f);
    web_url_esc(k->f, value ? value : "");
    k->sep = '&';
    return MHD_YES;
}

static char *cache_key(struct MHD_Connection *c, const char *url)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f)
        return NULL;
    key_buf k = {f, '?'};
    fputs(url, f);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, key_arg, &k);
    if (fclose(f) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* Server threads yield to training: they run at a lower priority (nice)
 * than the service's loop and its workers. */
static void lower_priority_once(void)
{
    static __thread bool done;
    if (done)
        return;
    done = true;
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)gettid());
    if (errno == 0 && cur < 10)
        setpriority(PRIO_PROCESS, (id_t)gettid(), 10); /* best effort */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    web_server *w = cls;
    if (*con_cls) { /* a body we did not ask for: the answer is already queued */
        *upload_size = 0;
        return MHD_YES;
    }
    *con_cls = w;
    web_deadline_request_in(w, c);
    lower_priority_once();
    const char *why = NULL;
    int status = web_guard_check(w, c, method, url, &why);
    if (status)
        return reply_text(c, status, why, w);
    if (!strncmp(url, "/static/", 8))
        return serve_asset(c, url, w);

    char *key = cache_key(c, url);
    char *body = NULL;
    size_t len = 0;
    const char *type = NULL;
    if (key && web_cache_get(w->cache, key, &body, &len, &status, &type)) {
        free(key);
        return reply(c, status, type, body, len, false, w);
    }
    web_request rq = {.srv = w, .conn = c, .path = url, .status = 200, .type = "text/html; charset=utf-8"};
    rq.out = open_memstream(&body, &len);
    if (!rq.out) {
        free(key);
        return MHD_NO;
    }
    int rc = web_reader(w, &rq.db);
    if (rc == 0)
        rc = route(&rq);
    if (rc < 0) {
        /* start over with an error page */
        fclose(rq.out);
        free(body);
        body = NULL;
        char msg[600];
        snprintf(msg, sizeof msg, "Internal error: %s", svc_last_error());
        svc_log(SVC_LOG_WARNING, "http: %s %s: %s", method, url, svc_last_error());
        rq.out = open_memstream(&body, &len);
        if (!rq.out) {
            free(key);
            return MHD_NO;
        }
        rq.type = "text/html; charset=utf-8";
        web_error_page(&rq, 500, msg);
    }
    if (fclose(rq.out) != 0) {
        free(body);
        free(key);
        return MHD_NO;
    }
    if (key && !rq.no_cache && rq.status == 200)
        web_cache_put(w->cache, key, body, len, rq.status, rq.type);
    free(key);
    return reply(c, rq.status, rq.type, body, len, false, w);
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    /* clients' mistakes are everyday events on a server: debug only */
    svc_log(SVC_LOG_DEBUG, "http: %s", msg);
}

/* Room for every connection: the soft limit on open files raised toward
 * the hard one; fewer connections if it stays low. */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    unsigned want = WEB_MAX_CONNECTIONS + 256; /* the service's own files besides */
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 200;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return WEB_MAX_CONNECTIONS;
    unsigned n = rl.rlim_cur > 300 ? (unsigned)rl.rlim_cur - 256 : 44;
    svc_log(SVC_LOG_WARNING, "http: at most %u connections (the limit on open files is %llu)", n,
            (unsigned long long)rl.rlim_cur);
    return n;
}

void web_server_stop(web_server *w)
{
    if (!w)
        return;
    if (w->daemon)
        MHD_stop_daemon(w->daemon); /* joins its threads: their connections close */
    web_deadline_free(w->deadline);
    web_reader_done(w);
    web_cache_free(w->cache);
    free(w->db_path);
    explicit_bzero(w->token, sizeof w->token);
    free(w);
}

const char *web_server_url(const web_server *w) { return w->url; }

int web_server_start(const web_options *o, web_server **out)
{
    *out = NULL;
    web_server *w = calloc(1, sizeof *w);
    if (!w)
        return svc_error(SVC_ENOMEM, "out of memory");
    int rc = svc_listen_parse(o->listen, &w->listen);
    if (rc == 0)
        rc = web_guard_load_token(w, o->token_file);
    if (rc == 0 && !(w->db_path = strdup(o->db_path)))
        rc = svc_error(SVC_ENOMEM, "out of memory");
    w->service = o->service;
    if (rc == 0)
        rc = web_cache_new(&w->cache);
    if (rc == 0)
        rc = web_deadline_new(&w->deadline);
    if (rc == 0)
        rc = web_reader_init(w);
    db *first;
    if (rc == 0) /* the database must be readable now, not at the first request */
        rc = web_reader(w, &first);
    if (rc < 0) {
        web_server_stop(w);
        return rc;
    }
    if (!w->listen.loopback && !w->token_len)
        svc_log(SVC_LOG_WARNING, "http: listening on %s without a token: anyone who can reach it can read every "
                                 "run (set http.token_file)",
                w->listen.text);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (w->listen.addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    w->daemon = MHD_start_daemon(
        flags, (uint16_t)w->listen.port, NULL, NULL, on_request, w, MHD_OPTION_EXTERNAL_LOGGER, on_log, w,
        MHD_OPTION_SOCK_ADDR, &w->listen.addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)WEB_THREADS, MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEB_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)WEB_CONNECTION_MEMORY, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_NOTIFY_CONNECTION, web_deadline_notify, w, MHD_OPTION_NOTIFY_COMPLETED,
        web_deadline_request_done, w, MHD_OPTION_END);
    if (!w->daemon) {
        rc = svc_error(SVC_EIO, "http: cannot listen on %s (the port is in use, or the address is not this host's)",
                       w->listen.text);
        web_server_stop(w);
        return rc;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : w->listen.port;
    char host[sizeof w->listen.text];
    snprintf(host, sizeof host, "%s", w->listen.text);
    *strrchr(host, ':') = '\0';
    snprintf(w->url, sizeof w->url, "http://%.80s:%d/", host, port);
    svc_log(SVC_LOG_INFO, "http: dashboard on %s (read-only%s)", w->url, w->token_len ? ", token required" : "");
    *out = w;
    return 0;
}
