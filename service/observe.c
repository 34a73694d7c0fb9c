/* The service's counters and device slots as other threads see them
 * (observe.h): the loop updates them through the hooks in internal.h and
 * readers copy them, each under one mutex held for a few stores or one
 * memcpy. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/error.h"
#include "service/internal.h"
#include "service/observe.h"
#include "service/observe_hooks.h"

struct svc_observe {
    pthread_mutex_t mu;
    svc_stats stats;
    svc_messages *messages;
};

int svc_observe_new(svc_observe **out)
{
    *out = NULL;
    svc_observe *o = calloc(1, sizeof *o);
    if (!o)
        return svc_error(SVC_ENOMEM, "out of memory");
    if (pthread_mutex_init(&o->mu, NULL) != 0) {
        free(o);
        return svc_error(SVC_ENOMEM, "cannot create a mutex");
    }
    if (svc_messages_new(&o->messages) < 0) {
        pthread_mutex_destroy(&o->mu);
        free(o);
        return SVC_ENOMEM;
    }
    *out = o;
    return 0;
}

void svc_observe_free(svc_observe *o)
{
    if (!o)
        return;
    svc_messages_free(o->messages);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

/* ---- the loop's hooks ---- */

void svc_observe_epoch(svc_service *sv, int64_t images)
{
    pthread_mutex_lock(&sv->obs->mu);
    sv->obs->stats.epochs_recorded++;
    if (images > 0)
        sv->obs->stats.images_trained += (uint64_t)images;
    pthread_mutex_unlock(&sv->obs->mu);
}

void svc_observe_worker_start(svc_service *sv)
{
    pthread_mutex_lock(&sv->obs->mu);
    sv->obs->stats.worker_starts++;
    pthread_mutex_unlock(&sv->obs->mu);
}

void svc_observe_restart(svc_service *sv)
{
    pthread_mutex_lock(&sv->obs->mu);
    sv->obs->stats.worker_restarts++;
    pthread_mutex_unlock(&sv->obs->mu);
}

void svc_observe_db_error(svc_service *sv)
{
    pthread_mutex_lock(&sv->obs->mu);
    sv->obs->stats.db_write_errors++;
    pthread_mutex_unlock(&sv->obs->mu);
}

void svc_observe_slots(svc_service *sv)
{
    const svc_slots *sl = &sv->slots;
    svc_stats_device dev[1 + SVC_MAX_GPUS];
    int n = 0;
    snprintf(dev[n].device, sizeof dev[n].device, "cpu");
    dev[n].slots = sl->cpu_slots;
    dev[n++].busy = sl->cpu_used;
    for (int i = 0; i < sl->n_gpus && i < SVC_MAX_GPUS; i++, n++) {
        snprintf(dev[n].device, sizeof dev[n].device, "cuda:%d", sl->gpu_ordinal[i]);
        dev[n].slots = sl->gpu_slots;
        dev[n].busy = sl->gpu_used[i];
    }
    pthread_mutex_lock(&sv->obs->mu);
    sv->obs->stats.started = sv->started;
    sv->obs->stats.n_devices = n;
    memcpy(sv->obs->stats.devices, dev, (size_t)n * sizeof *dev);
    pthread_mutex_unlock(&sv->obs->mu);
}

void svc_observe_message(svc_service *sv, int64_t run_id, const char *line, size_t len)
{
    svc_messages_add(sv->obs->messages, run_id, line, len);
}

/* ---- readers (any thread) ---- */

void svc_service_stats(svc_service *s, svc_stats *out)
{
    pthread_mutex_lock(&s->obs->mu);
    *out = s->obs->stats;
    pthread_mutex_unlock(&s->obs->mu);
}

int svc_service_messages(svc_service *s, int64_t run_id, char ***lines, size_t *n)
{
    return svc_messages_get(s->obs->messages, run_id, lines, n);
}

const svc_config *svc_service_config(const svc_service *s) { return &s->cfg; }
