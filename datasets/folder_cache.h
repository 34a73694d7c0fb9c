/* The decoded cache of an image folder: every image fitted to C x H x W
 * and stored as the arrays the engine's npy loader reads -
 * train_x.npy (uint8, N x C x H x W), train_y.npy (int32), test_x.npy,
 * test_y.npy - with classes.txt (one class name a line, in label order)
 * and files.tsv (split, label, path of every sample, in order), in
 *
 *   CACHE_ROOT/folder-<first 20 hex digits of the key>/
 *
 * The key is the SHA-256 of everything the arrays depend on: the cache
 * format, C, H, W, the split settings, the class names, and every image's
 * path, size and modification time (ns), label and split. The same folder
 * with the same settings finds the same cache without decoding anything;
 * an edited, added or removed image, or other settings, make another.
 * Within a split the samples are in a fixed shuffled order (not by class),
 * so that data.limit's first N samples are a mix of classes. A
 * cache is built in a staging folder and renamed into place, so a reader
 * never sees a part; two builders of one key both succeed (the second
 * keeps the first's). Old caches are not removed: deleting CACHE_ROOT (or
 * any folder-* in it) is always safe. */
#ifndef DS_FOLDER_CACHE_H
#define DS_FOLDER_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "datasets/folder.h"
#include "datasets/fsutil.h"

typedef struct ds_cache_opts {
    int channels, h, w;
    /* images decoded so far of total, from the calling thread; nonzero cancels (DS_EINTR) */
    int (*progress)(void *ctx, int64_t done, int64_t total);
    void *ctx;
} ds_cache_opts;

typedef struct ds_cache_result {
    char dir[DS_PATH_MAX];
    char key[65];
    bool hit; /* found, nothing decoded */
} ds_cache_result;

/* The key of f at these settings (no file is read). */
int ds_folder_cache_key(const ds_folder *f, const ds_cache_opts *o, char key[65]);
/* Finds or builds the cache. Decoding runs on OpenMP threads; the first
 * image (in order) that cannot be decoded is named with the reason. */
int ds_folder_cache(const ds_folder *f, const char *cache_root, const ds_cache_opts *o, ds_cache_result *r);

#endif
