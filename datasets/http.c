/* Resumable downloads with libcurl (http.h). */
#include "datasets/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datasets/error.h"
#include "datasets/fsutil.h"
#include "epochd_config.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void ds_http_global_init(void) { pthread_once(&global_once, global_init); }

typedef struct xfer {
    int fd;
    int64_t start, received, max_bytes;
    int write_errno;
    bool too_big;
    const ds_http_opts *o;
    double last_report;
    /* stall detection: when the last byte came (libcurl's low-speed limit
     * averages over a window, which lets a stall after a burst run long) */
    double stall_s, last_data;
    int64_t last_received;
    bool stalled, cancelled;
} xfer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (x->max_bytes >= 0 && x->start + x->received + (int64_t)len > x->max_bytes) {
        x->too_big = true;
        return 0;
    }
    for (size_t done = 0; done < len;) {
        ssize_t k = write(x->fd, p + done, len - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            x->write_errno = errno;
            return 0;
        }
        done += (size_t)k;
        x->received += k;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dlnow, (void)ultotal, (void)ulnow;
    xfer *x = ud;
    double t = now_s();
    if (x->received != x->last_received || x->last_data == 0.0) {
        x->last_received = x->received;
        x->last_data = t;
    } else if (t - x->last_data >= x->stall_s) {
        x->stalled = true;
        return 1;
    }
    if (!x->o->progress || t - x->last_report < 0.1)
        return 0;
    x->last_report = t;
    int64_t total = dltotal > 0 ? x->start + (int64_t)dltotal : x->max_bytes;
    if (x->o->progress(x->o->ctx, x->start + x->received, total)) {
        x->cancelled = true;
        return 1;
    }
    return 0;
}

static const char *reason(long status)
{
    switch (status) {
    case 400: return " Bad Request";
    case 401: return " Unauthorized";
    case 403: return " Forbidden";
    case 404: return " Not Found";
    case 408: return " Request Timeout";
    case 410: return " Gone";
    case 416: return " Range Not Satisfiable";
    case 429: return " Too Many Requests";
    case 500: return " Internal Server Error";
    case 502: return " Bad Gateway";
    case 503: return " Service Unavailable";
    case 504: return " Gateway Timeout";
    }
    return "";
}

static int sync_part(int fd, const char *part)
{
    if (fsync(fd) != 0 && errno != EINVAL)
        return ds_errno_error(errno, "sync", part);
    return 0;
}

int ds_http_fetch(const char *url, const char *part, const ds_http_opts *o, ds_http_result *r)
{
    memset(r, 0, sizeof *r);
    ds_http_global_init();
    int fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return ds_errno_error(errno, "create", part);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ds_errno_error(e, "stat", part);
    }
    xfer x = {.fd = fd, .start = (int64_t)st.st_size, .max_bytes = o->max_bytes, .o = o};
    if (x.max_bytes >= 0 && x.start > x.max_bytes) {
        /* longer than the file can be: not a prefix of it */
        if (ftruncate(fd, 0) != 0) {
            int e = errno;
            close(fd);
            return ds_errno_error(e, "truncate", part);
        }
        x.start = 0;
    }
    r->resumed_from = x.start;
    if (x.max_bytes >= 0 && x.start == x.max_bytes) {
        close(fd); /* complete already; the caller verifies it */
        return 0;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        close(fd);
        return ds_error(DS_ENOMEM, "cannot start libcurl");
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    double connect_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 30;
    double stall_s = o->stall_timeout_s > 0 ? o->stall_timeout_s : 60;
    x.stall_s = stall_s;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "epochd/" EPOCHD_VERSION " (" LIBCURL_VERSION ")");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_s * 1000));
    /* the stall is noticed in on_progress; this is only a backstop */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(2 * stall_s + 1));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)x.start);

    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_RANGE_ERROR && x.start > 0) {
        /* the server cannot send a range: the whole file again */
        if (ftruncate(fd, 0) == 0) {
            x.start = 0;
            x.received = 0;
            x.last_received = 0;
            x.last_data = 0.0;
            r->resumed_from = 0;
            errbuf[0] = '\0';
            curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)0);
            cc = curl_easy_perform(h);
        }
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_off_t connect_us = 0;
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_easy_cleanup(h);
    r->received = x.received;
    int rc = sync_part(fd, part);
    close(fd);

    int64_t have = x.start + x.received;
    char sofar[96] = "";
    if (x.max_bytes >= 0)
        snprintf(sofar, sizeof sofar, " (%lld of %lld bytes)", (long long)have, (long long)x.max_bytes);
    else
        snprintf(sofar, sizeof sofar, " (%lld bytes)", (long long)have);
    switch (cc) {
    case CURLE_OK: return rc;
    case CURLE_HTTP_RETURNED_ERROR:
        if (r->status == 416 && x.start > 0)
            return rc; /* nothing after what the part holds: the caller verifies it */
        r->retryable = r->status >= 500 || r->status == 408 || r->status == 429;
        return ds_error(DS_ENET, "%s: HTTP %ld%s", url, r->status, reason(r->status));
    case CURLE_WRITE_ERROR:
        if (x.write_errno)
            return ds_errno_error(x.write_errno, "write", part);
        if (x.too_big)
            return ds_error(DS_ENET, "%s: the server sent more than the %lld bytes the manifest gives", url,
                            (long long)x.max_bytes);
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        if (x.stalled) {
            r->retryable = true;
            if (connect_us == 0)
                return ds_error(DS_ENET, "%s: no connection within %g s", url, stall_s);
            return ds_error(DS_ENET, "%s: no data for %g s, the server stalled%s", url, stall_s, sofar);
        }
        return ds_error(DS_EINTR, "%s: cancelled%s", url, sofar);
    case CURLE_OPERATION_TIMEDOUT:
        r->retryable = true;
        if (connect_us == 0 && have == x.start)
            return ds_error(DS_ENET, "%s: no connection within %g s", url, connect_s);
        return ds_error(DS_ENET, "%s: no data for %g s, the server stalled%s", url, stall_s, sofar);
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: r->retryable = true; break;
    default: break;
    }
    return ds_error(DS_ENET, "%s: %s%s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc), sofar);
}
