/* Getting a spec's data ready before the engine loads it - the one call a
 * trainer (epochd run, the worker) makes into datasets/: for dataset:
 * folder, scan the tree, find or build its decoded cache (folder_cache.h)
 * and point d->cache at it. Other datasets need nothing here. */
#ifndef DS_PREPARE_H
#define DS_PREPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/fsutil.h"
#include "engine/desc.h"

typedef struct ds_prepare_info {
    bool folder; /* a folder dataset was prepared */
    bool hit;    /* its cache was there */
    int64_t images, classes;
    double scan_seconds, build_seconds;
    char cache[DS_PATH_MAX];
} ds_prepare_info;

/* The cache root: $EPOCHD_CACHE_DIR when set, else STATE_DIR/cache. */
int ds_cache_root(const char *state_dir, char *out, size_t len);

/* Prepares d (see above); progress gets images decoded of total while a
 * cache is built (nonzero cancels). The class count and sample shape must
 * be those d says when it says (the spec was checked against the folder):
 * else DS_EFORMAT, "the folder changed since ...". */
int ds_prepare_data(eng_data_desc *d, const char *cache_root, int (*progress)(void *ctx, int64_t done, int64_t total),
                    void *ctx, ds_prepare_info *info);

#endif
