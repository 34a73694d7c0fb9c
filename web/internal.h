/* The dashboard's parts (internal to web/; the interface is web.h):
 *
 *   server.c   libmicrohttpd: limits, the request pipeline, response headers
 *   guard.c    who may ask: methods, Host (DNS rebinding), the bearer token
 *   deadline.c a request must arrive in full in WEB_REQUEST_DEADLINE_S (slowloris)
 *   reader.c   one read-only database connection per server thread
 *   cache.c    rendered answers kept for a second (many clients poll)
 *   html.c     the page frame, escaping, number formats
 *   page_runs.c, page_run.c, page_compare.c, page_help.c   the pages
 *   api.c      the JSON API      metrics.c  Prometheus text format
 *   assets.h   app.js, app.css and help.html, embedded (embed.py) */
#ifndef WEB_INTERNAL_H
#define WEB_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <microhttpd.h>

#include "db/db.h"
#include "service/listen.h"
#include "service/service.h"
#include "web/web.h"

/* Limits (docs/web.md lists them). */
#define WEB_MAX_CONNECTIONS 2000     /* open connections, idle ones included */
#define WEB_THREADS 2                /* server threads (each with its own database connection) */
#define WEB_IDLE_TIMEOUT_S 10        /* a connection silent this long is closed */
#define WEB_REQUEST_DEADLINE_S 15    /* a request must arrive in full this soon (slowloris) */
#define WEB_CONNECTION_MEMORY 32768  /* request line and headers of one connection */
#define WEB_MAX_HEADERS 64           /* header fields of one request */
#define WEB_MAX_URL 2048             /* bytes of the path and query */
#define WEB_MAX_ARGS 64              /* query arguments */
#define WEB_CACHE_MS 1000            /* how long a rendered answer is reused */
#define WEB_REFRESH_MS 2000          /* the pages poll at most this often */
#define WEB_MAX_PLOTTED 50           /* compare overlays at most this many runs' curves */

typedef struct web_cache web_cache;
typedef struct web_deadline web_deadline;

struct web_server {
    struct MHD_Daemon *daemon;
    svc_listen listen;
    char url[96];
    char *db_path;
    svc_service *service; /* NULL: database only */
    char token[256];      /* "" : no token */
    size_t token_len;
    web_cache *cache;
    web_deadline *deadline;
    pthread_key_t reader_key; /* this thread's db connection */
    bool reader_key_made;
};

/* One request as the handlers see it. A handler writes its body into out
 * (a memory stream), sets status and type, and returns 0 - or a negative
 * SVC_E* code for an internal error (a 500 page with svc_last_error). */
typedef struct web_request {
    web_server *srv;
    struct MHD_Connection *conn;
    const char *path;
    db *db;             /* this thread's read-only connection */
    FILE *out;
    int status;         /* 200 unless set */
    const char *type;   /* "text/html; charset=utf-8" unless set */
    bool no_cache;      /* do not keep this answer (errors) */
} web_request;

/* ---- query arguments (decoded by libmicrohttpd) ---- */
const char *web_arg(web_request *rq, const char *key); /* NULL if absent */
/* Every value of a repeated key, each also split at commas: names=a,b&names=c.
 * *out is a new array of pointers into one new buffer (*buf); free both. */
int web_arg_list(web_request *rq, const char *key, const char ***out, size_t *n, char **buf);

/* ---- reader.c ---- */
int web_reader_init(web_server *w);
void web_reader_done(web_server *w);
/* This thread's connection (opened on first use). 0, or SVC_E* (svc_last_error). */
int web_reader(web_server *w, db **out);

/* ---- cache.c ---- */
int web_cache_new(web_cache **out);
void web_cache_free(web_cache *c);
/* A copy of a fresh answer for key, or false. */
bool web_cache_get(web_cache *c, const char *key, char **body, size_t *len, int *status, const char **type);
void web_cache_put(web_cache *c, const char *key, const char *body, size_t len, int status, const char *type);

/* ---- deadline.c ---- */
struct MHD_Connection;
int web_deadline_new(web_deadline **out);
void web_deadline_free(web_deadline *d); /* after the daemon stopped */
/* libmicrohttpd's callbacks (cls: the server): MHD_OPTION_NOTIFY_CONNECTION
 * and MHD_OPTION_NOTIFY_COMPLETED; request_in when a request has arrived. */
void web_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                         enum MHD_ConnectionNotificationCode code);
void web_deadline_request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                               enum MHD_RequestTerminationCode code);
void web_deadline_request_in(web_server *w, struct MHD_Connection *c);
uint64_t web_deadline_reaped(web_deadline *d); /* connections shut down so far */

/* ---- guard.c ---- */
/* Reads the token file (NULL: none) into w->token. 0 or SVC_EUSAGE. */
int web_guard_load_token(web_server *w, const char *path);
/* 0 when the request may go on; else the status to answer (400, 401, 403, 405, 413, 414, 431) and why. */
int web_guard_check(web_server *w, struct MHD_Connection *c, const char *method, const char *url, const char **why);

/* ---- html.c ---- */
void web_esc(FILE *f, const char *s);        /* HTML text and quoted attributes (one line) */
void web_esc_lines(FILE *f, const char *s);  /* the same keeping newlines and tabs, inside <pre> */
void web_url_esc(FILE *f, const char *s);    /* a query value, percent-encoded */
typedef enum web_nav { WEB_NAV_RUNS, WEB_NAV_COMPARE, WEB_NAV_HELP, WEB_NAV_NONE } web_nav;
void web_page_begin(web_request *rq, const char *title, web_nav nav);
void web_page_end(web_request *rq);
void web_status_badge(FILE *f, db_status s);
/* The number formats of `epochd status` and `compare`, "-" for unknown. */
void web_fmt_acc(char *buf, size_t len, double v);           /* 0.9152 */
void web_fmt_count(char *buf, size_t len, double v);         /* 1,146 */
void web_fmt_time(char *buf, size_t len, const char *iso);   /* 2026-11-28 03:04:05 */
/* {"error": message} with the status. */
int web_json_error(web_request *rq, int status, const char *msg);
/* An error page with the status. */
int web_error_page(web_request *rq, int status, const char *message);
/* The SVG of a cli_plot without its XML declaration, for inline use; 0 or -1. */
struct cli_plot;
int web_inline_svg(FILE *f, const struct cli_plot *p);

/* ---- the handlers ---- */
int web_page_runs(web_request *rq);
int web_page_run(web_request *rq, int64_t id);
int web_run_svg(web_request *rq, int64_t id);
int web_page_compare(web_request *rq);
int web_page_help(web_request *rq);
int web_api_runs(web_request *rq);
int web_api_run(web_request *rq, int64_t id);
int web_api_epochs(web_request *rq, int64_t id);
int web_api_compare(web_request *rq);
int web_metrics(web_request *rq);

#endif
