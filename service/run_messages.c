/* The last stderr lines of each run's workers, kept so that the dashboard
 * can show why a run is slow or failing without reading the journal: a
 * ring of SVC_MESSAGE_LINES lines per run for the SVC_MESSAGE_RUNS runs
 * that wrote last (the oldest run's ring is reused), fixed memory. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "service/error.h"
#include "service/internal.h"
#include "service/observe.h"
#include "service/observe_hooks.h"

typedef struct ring {
    int64_t run_id; /* 0: free */
    uint64_t used;  /* when it was written last (a counter) */
    size_t next, n; /* the oldest line is (next - n) mod SVC_MESSAGE_LINES */
    char lines[SVC_MESSAGE_LINES][SVC_MESSAGE_BYTES];
} ring;

struct svc_messages {
    pthread_mutex_t mu;
    uint64_t clock;
    ring rings[SVC_MESSAGE_RUNS];
};

int svc_messages_new(svc_messages **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return svc_error(SVC_ENOMEM, "out of memory");
    if (pthread_mutex_init(&(*out)->mu, NULL) != 0) {
        free(*out);
        *out = NULL;
        return svc_error(SVC_ENOMEM, "cannot create a mutex");
    }
    return 0;
}

void svc_messages_free(svc_messages *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static ring *find(svc_messages *m, int64_t run_id)
{
    for (size_t i = 0; i < SVC_MESSAGE_RUNS; i++)
        if (m->rings[i].run_id == run_id)
            return &m->rings[i];
    return NULL;
}

void svc_messages_add(svc_messages *m, int64_t run_id, const char *line, size_t len)
{
    if (run_id <= 0)
        return;
    pthread_mutex_lock(&m->mu);
    ring *r = find(m, run_id);
    if (!r) { /* the ring written longest ago (a free one has used 0) */
        r = &m->rings[0];
        for (size_t i = 1; i < SVC_MESSAGE_RUNS; i++)
            if (m->rings[i].used < r->used)
                r = &m->rings[i];
        r->run_id = run_id;
        r->next = r->n = 0;
    }
    r->used = ++m->clock;
    if (len >= SVC_MESSAGE_BYTES)
        len = SVC_MESSAGE_BYTES - 1; /* a long line keeps its start */
    memcpy(r->lines[r->next], line, len);
    r->lines[r->next][len] = '\0';
    r->next = (r->next + 1) % SVC_MESSAGE_LINES;
    if (r->n < SVC_MESSAGE_LINES)
        r->n++;
    pthread_mutex_unlock(&m->mu);
}

int svc_messages_get(svc_messages *m, int64_t run_id, char ***lines, size_t *n)
{
    *lines = NULL;
    *n = 0;
    char(*copy)[SVC_MESSAGE_BYTES] = malloc(sizeof(char[SVC_MESSAGE_LINES][SVC_MESSAGE_BYTES]));
    if (!copy)
        return svc_error(SVC_ENOMEM, "out of memory");
    /* copy under the lock, allocate the caller's strings outside it */
    size_t count = 0;
    pthread_mutex_lock(&m->mu);
    ring *r = run_id > 0 ? find(m, run_id) : NULL;
    if (r) {
        count = r->n;
        for (size_t i = 0; i < count; i++)
            memcpy(copy[i], r->lines[(r->next + SVC_MESSAGE_LINES - count + i) % SVC_MESSAGE_LINES],
                   SVC_MESSAGE_BYTES);
    }
    pthread_mutex_unlock(&m->mu);
    int rc = 0;
    if (count) {
        char **out = calloc(count, sizeof *out);
        for (size_t i = 0; out && i < count; i++)
            if (!(out[i] = strdup(copy[i]))) {
                for (size_t j = 0; j < i; j++)
                    free(out[j]);
                free(out);
                out = NULL;
            }
        if (out) {
            *lines = out;
            *n = count;
        } else {
            rc = svc_error(SVC_ENOMEM, "out of memory");
        }
    }
    free(copy);
    return rc;
}
