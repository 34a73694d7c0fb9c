/* String-keyed hash map with chaining (FNV-1a), grown at load factor 1. */
#include "service/map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

void svc_map_init(svc_map *m)
{
    memset(m, 0, sizeof *m);
}

void svc_map_free(svc_map *m)
{
    for (size_t b = 0; b < m->n_buckets; b++)
        for (svc_map_entry *e = m->buckets[b], *nx; e; e = nx) {
            nx = e->next;
            free(e->key);
            free(e);
        }
    free(m->buckets);
    memset(m, 0, sizeof *m);
}

static svc_map_entry **slot(const svc_map *m, const char *key)
{
    svc_map_entry **p = &m->buckets[hash(key) % m->n_buckets];
    while (*p && strcmp((*p)->key, key))
        p = &(*p)->next;
    return p;
}

void *svc_map_get(const svc_map *m, const char *key)
{
    if (!m->n_buckets)
        return NULL;
    svc_map_entry *e = *slot(m, key);
    return e ? e->value : NULL;
}

static int grow(svc_map *m)
{
    size_t nb = m->n_buckets ? m->n_buckets * 2 : 64;
    svc_map_entry **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < m->n_buckets; i++)
        for (svc_map_entry *e = m->buckets[i], *nx; e; e = nx) {
            nx = e->next;
            size_t h = hash(e->key) % nb;
            e->next = b[h];
            b[h] = e;
        }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = nb;
    return 0;
}

int svc_map_put(svc_map *m, const char *key, void *value)
{
    if (m->n >= m->n_buckets && grow(m) < 0 && !m->n_buckets)
        return -1;
    svc_map_entry **p = slot(m, key);
    if (*p) {
        (*p)->value = value;
        return 0;
    }
    svc_map_entry *e = malloc(sizeof *e);
    char *k = strdup(key);
    if (!e || !k) {
        free(e);
        free(k);
        return -1;
    }
    e->key = k;
    e->value = value;
    e->next = NULL;
    *p = e;
    m->n++;
    return 0;
}

void *svc_map_del(svc_map *m, const char *key)
{
    if (!m->n_buckets)
        return NULL;
    svc_map_entry **p = slot(m, key);
    svc_map_entry *e = *p;
    if (!e)
        return NULL;
    void *v = e->value;
    *p = e->next;
    free(e->key);
    free(e);
    m->n--;
    return v;
}

svc_map_iter svc_map_begin(const svc_map *m)
{
    svc_map_iter it = {.m = m};
    return it;
}

int svc_map_next(svc_map_iter *it)
{
    while (!it->next) {
        if (it->bucket >= it->m->n_buckets)
            return 0;
        it->next = it->m->buckets[it->bucket++];
    }
    svc_map_entry *e = it->next;
    it->next = e->next; /* taken before the caller may delete e */
    it->key = e->key;
    it->value = e->value;
    return 1;
}
