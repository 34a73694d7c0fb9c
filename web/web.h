/* The read-only web dashboard and Prometheus endpoint (docs/web.md): HTML
 * pages for runs, one run and comparisons, a JSON API, /metrics. It serves
 * from libmicrohttpd's own threads and reads the database through its own
 * read-only connections, one per thread, so a slow or hostile client can
 * hold up nothing but its own connection: never the service's event loop,
 * its scheduler or a worker. The numbers and plots are rendered by cli/'s
 * rendering library, the code behind `epochd status`, `compare` and `plot`.
 *
 * Errors: 0 or a negative SVC_E* code with svc_last_error (service/error.h). */
#ifndef WEB_WEB_H
#define WEB_WEB_H

#include "service/service.h"

typedef struct web_server web_server;

typedef struct web_options {
    const char *listen;     /* "127.0.0.1:8080", "[::1]:0" (service/listen.h) */
    const char *token_file; /* a bearer token every request must carry; NULL: none */
    const char *db_path;    /* the database; it must exist */
    svc_service *service;   /* the service it runs in, for its counters and
                               workers' messages; NULL: the database alone (epochd ui) */
} web_options;

/* Starts serving (threads of its own) and logs the address. 0, or
 * SVC_EUSAGE (bad address or token file), SVC_EIO (cannot listen there),
 * SVC_EDB (the database cannot be read), SVC_ENOMEM. */
int web_server_start(const web_options *o, web_server **out);
/* "http://127.0.0.1:8080/" with the port the kernel chose for port 0. */
const char *web_server_url(const web_server *w);
/* Stops serving (waits for requests in flight) and frees it; NULL is a no-op. */
void web_server_stop(web_server *w);

#endif
