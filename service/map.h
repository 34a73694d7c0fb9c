/* A small string-keyed hash map (chained) for the service's tables of
 * files, folders and runs. Keys are copied; values are the caller's. */
#ifndef SVC_MAP_H
#define SVC_MAP_H

#include <stddef.h>

typedef struct svc_map_entry {
    char *key;
    void *value;
    struct svc_map_entry *next;
} svc_map_entry;

typedef struct svc_map {
    svc_map_entry **buckets;
    size_t n_buckets, n;
} svc_map;

void svc_map_init(svc_map *m);
/* Frees the table and keys (not the values). */
void svc_map_free(svc_map *m);
void *svc_map_get(const svc_map *m, const char *key);
/* Inserts or replaces; 0 or -1 on OOM. */
int svc_map_put(svc_map *m, const char *key, void *value);
/* Removes the key; returns its value (NULL if absent). */
void *svc_map_del(svc_map *m, const char *key);

/* Iteration that tolerates removing the current entry (and nothing else:
 * no insertions, no removal of other entries; it.key dies with the entry):
 *   for (svc_map_iter it = svc_map_begin(m); svc_map_next(&it);) use it.key, it.value */
typedef struct svc_map_iter {
    const svc_map *m;
    size_t bucket;
    svc_map_entry *next;
    const char *key;
    void *value;
} svc_map_iter;
svc_map_iter svc_map_begin(const svc_map *m);
int svc_map_next(svc_map_iter *it);

#endif
