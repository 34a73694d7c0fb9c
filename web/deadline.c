/* A deadline for each request to arrive in full. libmicrohttpd closes a
 * connection that stays silent for WEB_IDLE_TIMEOUT_S, but a "slowloris"
 * client that trickles a header byte every few seconds is never silent; so
 * every connection waiting for a request is registered here, and a watcher
 * thread shuts down (shutdown(2), not close: libmicrohttpd sees the end of
 * the stream and closes it itself) those still incomplete after
 * WEB_REQUEST_DEADLINE_S. A connection leaves the registry before its
 * socket is closed (libmicrohttpd's CLOSED notification), and the peer
 * address is compared again before the shutdown, so a socket number reused
 * by another connection is never touched. */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "service/error.h"
#include "service/log.h"
#include "web/internal.h"

typedef struct conn_entry {
    struct conn_entry *prev, *next;
    int fd;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    bool waiting;       /* for a request to arrive in full */
    uint64_t due_ms;    /* when waiting: the deadline */
    bool shut;
} conn_entry;

struct web_deadline {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    conn_entry *head;
    bool stop;
    pthread_t thread;
    bool thread_made;
    uint64_t reaped;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool same_peer(const conn_entry *e)
{
    struct sockaddr_storage now;
    socklen_t len = sizeof now;
    if (getpeername(e->fd, (struct sockaddr *)&now, &len) != 0 || len != e->peer_len)
        return false;
    return memcmp(&now, &e->peer, len) == 0;
}

static void *watch(void *arg)
{
    web_deadline *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
        uint64_t now = now_ms();
        for (conn_entry *e = d->head; e && !d->stop; e = e->next) {
            if (!e->waiting || e->shut || now < e->due_ms || !same_peer(e))
                continue;
            shutdown(e->fd, SHUT_RDWR);
            e->shut = true;
            d->reaped++;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

int web_deadline_new(web_deadline **out)
{
    *out = NULL;
    web_deadline *d = calloc(1, sizeof *d);
    if (!d)
        return svc_error(SVC_ENOMEM, "out of memory");
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (pthread_create(&d->thread, NULL, watch, d) != 0) {
        web_deadline_free(d);
        return svc_error(SVC_ENOMEM, "cannot start a thread");
    }
    d->thread_made = true;
    *out = d;
    return 0;
}

void web_deadline_free(web_deadline *d)
{
    if (!d)
        return;
    if (d->thread_made) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    while (d->head) { /* none left once the daemon has stopped; defensive */
        conn_entry *e = d->head;
        d->head = e->next;
        free(e);
    }
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* libmicrohttpd's connection notifications: register and unregister. */
void web_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                         enum MHD_ConnectionNotificationCode code)
{
    web_server *w = cls;
    web_deadline *d = w->deadline;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_entry *e = calloc(1, sizeof *e);
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!e || !fd) {
            free(e);
            return; /* only the idle timeout then */
        }
        e->fd = fd->connect_fd;
        e->peer_len = sizeof e->peer;
        if (getpeername(e->fd, (struct sockaddr *)&e->peer, &e->peer_len) != 0) {
            free(e);
            return;
        }
        e->waiting = true;
        e->due_ms = now_ms() + WEB_REQUEST_DEADLINE_S * 1000u;
        pthread_mutex_lock(&d->mu);
        e->next = d->head;
        if (d->head)
            d->head->prev = e;
        d->head = e;
        pthread_mutex_unlock(&d->mu);
        *socket_context = e;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn_entry *e = *socket_context;
        pthread_mutex_lock(&d->mu);
        if (e->prev)
            e->prev->next = e->next;
        else
            d->head = e->next;
        if (e->next)
            e->next->prev = e->prev;
        pthread_mutex_unlock(&d->mu);
        free(e);
        *socket_context = NULL;
    }
}

static conn_entry *entry_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

void web_deadline_request_in(web_server *w, struct MHD_Connection *c)
{
    conn_entry *e = entry_of(c);
    if (!e)
        return;
    pthread_mutex_lock(&w->deadline->mu);
    e->waiting = false;
    pthread_mutex_unlock(&w->deadline->mu);
}

void web_deadline_request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                               enum MHD_RequestTerminationCode code)
{
    (void)con_cls;
    (void)code;
    web_server *w = cls;
    conn_entry *e = entry_of(c);
    if (!e)
        return;
    /* a kept-alive connection: the next request has the same time to arrive */
    pthread_mutex_lock(&w->deadline->mu);
    e->waiting = true;
    e->due_ms = now_ms() + WEB_REQUEST_DEADLINE_S * 1000u;
    pthread_mutex_unlock(&w->deadline->mu);
}

uint64_t web_deadline_reaped(web_deadline *d)
{
    pthread_mutex_lock(&d->mu);
    uint64_t n = d->reaped;
    pthread_mutex_unlock(&d->mu);
    return n;
}
