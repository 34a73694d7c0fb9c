/* Rendered answers kept for WEB_CACHE_MS: a hundred browsers polling the
 * runs page cost one rendering a second, not a hundred, so that the
 * dashboard takes no measurable time from training. Small and fixed: a few
 * dozen entries, the oldest replaced. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/error.h"
#include "web/internal.h"

#define CACHE_ENTRIES 32
#define CACHE_MAX_BODY (8u << 20)   /* larger answers are not kept */
#define CACHE_MAX_TOTAL (32u << 20) /* all entries together */

typedef struct entry {
    char *key;
    char *body;
    size_t len;
    int status;
    const char *type;
    uint64_t at_ms;
} entry;

struct web_cache {
    pthread_mutex_t mu;
    entry e[CACHE_ENTRIES];
    size_t total; /* bytes of the bodies kept */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int web_cache_new(web_cache **out)
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

void web_cache_free(web_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_ENTRIES; i++) {
        free(c->e[i].key);
        free(c->e[i].body);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

bool web_cache_get(web_cache *c, const char *key, char **body, size_t *len, int *status, const char **type)
{
    bool hit = false;
    uint64_t now = now_ms();
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < CACHE_ENTRIES && !hit; i++) {
        entry *e = &c->e[i];
        if (!e->key || strcmp(e->key, key) || now - e->at_ms >= WEB_CACHE_MS)
            continue;
        char *copy = malloc(e->len + 1);
        if (copy) {
            memcpy(copy, e->body, e->len);
            copy[e->len] = '\0';
            *body = copy;
            *len = e->len;
            *status = e->status;
            *type = e->type;
            hit = true;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void web_cache_put(web_cache *c, const char *key, const char *body, size_t len, int status, const char *type)
{
    if (len > CACHE_MAX_BODY)
        return;
    /* copies made outside the lock */
    char *k = strdup(key), *b = malloc(len + 1);
    if (!k || !b) {
        free(k);
        free(b);
        return;
    }
    memcpy(b, body, len);
    b[len] = '\0';
    uint64_t now = now_ms();
    pthread_mutex_lock(&c->mu);
    entry *slot = NULL;
    for (size_t i = 0; i < CACHE_ENTRIES && !slot; i++)
        if (c->e[i].key && !strcmp(c->e[i].key, key))
            slot = &c->e[i];
    for (size_t i = 0; i < CACHE_ENTRIES && !slot; i++)
        if (!c->e[i].key)
            slot = &c->e[i];
    if (!slot) {
        slot = &c->e[0];
        for (size_t i = 1; i < CACHE_ENTRIES; i++)
            if (c->e[i].at_ms < slot->at_ms)
                slot = &c->e[i];
    }
    char *old_k = slot->key, *old_b = slot->body;
    c->total -= old_b ? slot->len : 0;
    *slot = (entry){.key = k, .body = b, .len = len, .status = status, .type = type, .at_ms = now};
    c->total += len;
    /* over the bound: the oldest others go (outside the lock, their memory) */
    char *drop[2 * CACHE_ENTRIES];
    size_t nd = 0;
    while (c->total > CACHE_MAX_TOTAL) {
        entry *old = NULL;
        for (size_t i = 0; i < CACHE_ENTRIES; i++)
            if (c->e[i].key && &c->e[i] != slot && (!old || c->e[i].at_ms < old->at_ms))
                old = &c->e[i];
        if (!old)
            break;
        c->total -= old->len;
        drop[nd++] = old->key;
        drop[nd++] = old->body;
        *old = (entry){0};
    }
    pthread_mutex_unlock(&c->mu);
    free(old_k);
    free(old_b);
    for (size_t i = 0; i < nd; i++)
        free(drop[i]);
}
