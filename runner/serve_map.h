/* A small string-keyed hash map (chained) for the service's tables of
 * files, folders and runs. Keys are copied; values are the caller's. */
#ifndef RUN_SERVE_MAP_H
#define RUN_SERVE_MAP_H

#include <stddef.h>

typedef struct run_map_entry {
    char *key;
    void *value;
    struct run_map_entry *next;
} run_map_entry;

typedef struct run_map {
    run_map_entry **buckets;
    size_t n_buckets, n;
} run_map;

void run_map_init(run_map *m);
/* Frees the table and keys (not the values). */
void run_map_free(run_map *m);
void *run_map_get(const run_map *m, const char *key);
/* Inserts or replaces; 0 or -1 on OOM. */
int run_map_put(run_map *m, const char *key, void *value);
/* Removes the key; returns its value (NULL if absent). */
void *run_map_del(run_map *m, const char *key);

/* Iteration that tolerates removing the current entry (and nothing else:
 * no insertions, no removal of other entries; it.key dies with the entry):
 *   for (run_map_iter it = run_map_begin(m); run_map_next(&it);) use it.key, it.value */
typedef struct run_map_iter {
    const run_map *m;
    size_t bucket;
    run_map_entry *next;
    const char *key;
    void *value;
} run_map_iter;
run_map_iter run_map_begin(const run_map *m);
int run_map_next(run_map_iter *it);

#endif
