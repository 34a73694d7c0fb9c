/* One download with libcurl into a partial file that grows across attempts:
 * what the file already holds is asked for no more (an HTTP range request),
 * so a broken download resumes where it stopped. TLS certificates are
 * verified, the proxy variables (http_proxy, https_proxy, no_proxy) are
 * honoured, redirects are followed (to http and https only), the user agent
 * names epochd. http://, https:// and file:// URLs. */
#ifndef DS_HTTP_H
#define DS_HTTP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ds_http_opts {
    double connect_timeout_s; /* default 30 */
    double stall_timeout_s;   /* give up when no byte arrives for this long; default
                                 60 */
    int64_t max_bytes;        /* the file may not grow beyond this (the manifest's size);
                                 -1: no limit */
    /* called at most every 0.1 s with the file's bytes so far and the
     * expected total (-1 unknown); a nonzero return cancels (DS_EINTR) */
    int (*progress)(void *ctx, int64_t done, int64_t total);
    void *ctx;
} ds_http_opts;

typedef struct ds_http_result {
    long status;          /* the last HTTP status (0 for file://, or when none came) */
    int64_t resumed_from; /* bytes the file held when this attempt started */
    int64_t received;     /* bytes this attempt added */
    bool retryable;       /* on failure: trying the same URL again may help (not a 404,
                             not a full disk) */
} ds_http_result;

/* Downloads url into `part`, appending (creates it when absent). 0 when
 * the server sent the whole rest of the file (or had nothing more: HTTP
 * 416 on a non-empty part); DS_ENET (message: the URL and what went wrong:
 * "HTTP 404 Not Found", "no data for 60 s", "connection refused"),
 * DS_ENOSPC / DS_EIO (writing the part), DS_EINTR (cancelled). A server
 * that ignores the range request gets the file from its start again. */
int ds_http_fetch(const char *url, const char *part, const ds_http_opts *o, ds_http_result *r);

/* libcurl's one-time global set-up; ds_http_fetch calls it. A program that
 * will download from several threads calls it first, while it has one. */
void ds_http_global_init(void);

#endif
