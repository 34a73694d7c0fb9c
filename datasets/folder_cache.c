/* Finding or building an image folder's decoded cache (folder_cache.h). */
#include "datasets/folder_cache.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/error.h"
#include "datasets/image.h"
#include "datasets/npy_write.h"
#include "datasets/sha256.h"

#define CACHE_FORMAT "epochd folder cache 2"

int ds_folder_cache_key(const ds_folder *f, const ds_cache_opts *o, char key[65])
{
    ds_sha256 *h = ds_sha256_new();
    if (!h)
        return ds_error(DS_ENOMEM, "out of memory");
    char line[DS_PATH_MAX + 128];
    int n = snprintf(line, sizeof line, "%s\nsize %d %d %d\ntrees %d\n", CACHE_FORMAT, o->channels, o->h, o->w,
                     f->split_trees ? 1 : 0);
    ds_sha256_update(h, line, (size_t)n);
    /* the split is in each item's split field, which the seed and fraction decided */
    for (int k = 0; k < f->n_classes; k++) {
        n = snprintf(line, sizeof line, "class %d %s\n", k, f->classes[k]);
        ds_sha256_update(h, line, (size_t)n);
    }
    for (int64_t i = 0; i < f->n; i++) {
        const ds_folder_item *it = &f->items[i];
        n = snprintf(line, sizeof line, "%d\t%d\t%lld\t%lld\t%s\n", it->split, it->label, (long long)it->size,
                     (long long)it->mtime_ns, it->path);
        ds_sha256_update(h, line, (size_t)n);
    }
    ds_sha256_final(h, key);
    ds_sha256_free(h);
    return 0;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Where each item goes in the cache: within its split, a fixed shuffle (the
 * scan sorts by class, so a `limit` prefix of the sorted order would hold
 * one class). order[pos] = item; the split boundaries stay. */
static int64_t *cache_order(const ds_folder *f)
{
    int64_t *order = malloc(((size_t)f->n + 1) * sizeof *order);
    if (!order)
        return NULL;
    for (int64_t i = 0; i < f->n; i++)
        order[i] = i;
    uint64_t state = 0x65706f636864ull; /* fixed: the same folder gives the same cache */
    for (int split = 0; split < 2; split++) {
        int64_t start = split ? f->n_split[0] : 0, n = f->n_split[split];
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(splitmix(&state) % (uint64_t)(i + 1));
            int64_t t = order[start + i];
            order[start + i] = order[start + j];
            order[start + j] = t;
        }
    }
    return order;
}

static int write_text(const char *dir, const char *name, const ds_folder *f, const int64_t *order, bool files)
{
    char path[DS_PATH_MAX];
    int rc = ds_path_join(path, sizeof path, dir, name);
    if (rc)
        return rc;
    FILE *out = fopen(path, "w");
    if (!out)
        return ds_errno_error(errno, "create", path);
    if (files)
        for (int64_t p = 0; p < f->n; p++) {
            const ds_folder_item *it = &f->items[order[p]];
            fprintf(out, "%s\t%d\t%s\n", it->split ? "test" : "train", it->label, it->path);
        }
    else
        for (int k = 0; k < f->n_classes; k++)
            fprintf(out, "%s\n", f->classes[k]);
    if (fflush(out) != 0 || fsync(fileno(out)) != 0)
        rc = ds_errno_error(errno, "write", path);
    if (fclose(out) != 0 && !rc)
        rc = ds_errno_error(errno, "write", path);
    return rc;
}

/* Decodes every image into x (n * per bytes, item i at position at[i]);
 * the first failure in the folder's sorted order is reported with its
 * message. */
static int decode_all(const ds_folder *f, const ds_cache_opts *o, const int64_t *at, uint8_t *x)
{
    const size_t per = (size_t)o->channels * (size_t)o->h * (size_t)o->w;
    signed char *state = calloc((size_t)f->n + 1, 1); /* 0 not done, 1 decoded, 2 failed */
    if (!state)
        return ds_error(DS_ENOMEM, "out of memory");
    int64_t done = 0;
    int cancel = 0; /* 1: an image failed, 2: cancelled */
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < f->n; i++) {
        int stop;
#pragma omp atomic read
        stop = cancel;
        if (stop)
            continue;
        char path[DS_PATH_MAX];
        ds_image img = {0};
        if (ds_path_join(path, sizeof path, f->root, f->items[i].path) || ds_image_load(path, &img) ||
            ds_image_fit(&img, o->channels, o->h, o->w, x + (size_t)at[i] * per)) {
            state[i] = 2;
#pragma omp atomic write
            cancel = 1; /* the first failure in order is found again below */
        } else
            state[i] = 1;
        ds_image_free(&img);
        int64_t d;
#pragma omp atomic capture
        d = ++done;
        if (o->progress && omp_get_thread_num() == 0 && o->progress(o->ctx, d, f->n)) {
#pragma omp atomic write
            cancel = 2;
        }
    }
    int rc = 0;
    if (cancel == 2) {
        rc = ds_error(DS_EINTR, "%s: cancelled while decoding", f->root);
    } else if (cancel) {
        /* the first failure in order: the images before it that the others
         * skipped once one failed are decoded now, on this thread, which
         * also gives the failure's message */
        int64_t first = 0;
        while (first < f->n && state[first] != 2)
            first++;
        for (int64_t i = 0; i <= first && i < f->n && !rc; i++) {
            if (state[i] == 1)
                continue;
            char path[DS_PATH_MAX];
            ds_image img = {0};
            if (!(rc = ds_path_join(path, sizeof path, f->root, f->items[i].path)) && !(rc = ds_image_load(path, &img)))
                rc = ds_image_fit(&img, o->channels, o->h, o->w, x + (size_t)at[i] * per);
            ds_image_free(&img);
        }
        if (!rc)
            rc = ds_error(DS_EIO, "%s: an image failed to decode, then decoded (changed while reading?)", f->root);
    } else if (o->progress) {
        o->progress(o->ctx, f->n, f->n);
    }
    free(state);
    return rc;
}

static int write_split(const char *dir, const ds_folder *f, const ds_cache_opts *o, const int64_t *order,
                       const uint8_t *x, int split)
{
    const size_t per = (size_t)o->channels * (size_t)o->h * (size_t)o->w;
    int64_t start = split ? f->n_split[0] : 0, n = f->n_split[split];
    int32_t *y = malloc((size_t)(n ? n : 1) * sizeof *y);
    if (!y)
        return ds_error(DS_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++)
        y[i] = f->items[order[start + i]].label;
    char xp[DS_PATH_MAX], yp[DS_PATH_MAX];
    int64_t xs[4] = {n, o->channels, o->h, o->w}, ys[1] = {n};
    int rc = ds_path_join(xp, sizeof xp, dir, split ? "test_x.npy" : "train_x.npy");
    if (!rc)
        rc = ds_path_join(yp, sizeof yp, dir, split ? "test_y.npy" : "train_y.npy");
    if (!rc)
        rc = ds_npy_write(xp, "|u1", 4, xs, x + (size_t)start * per, (size_t)n * per);
    if (!rc)
        rc = ds_npy_write(yp, "<i4", 1, ys, y, (size_t)n * sizeof *y);
    free(y);
    return rc;
}

int ds_folder_cache(const ds_folder *f, const char *cache_root, const ds_cache_opts *o, ds_cache_result *r)
{
    memset(r, 0, sizeof *r);
    if (o->channels != 1 && o->channels != 3)
        return ds_error(DS_EINVAL, "folder cache: %d channels (expected 1 or 3)", o->channels);
    int rc = ds_folder_cache_key(f, o, r->key);
    if (rc)
        return rc;
    char name[40];
    snprintf(name, sizeof name, "folder-%.20s", r->key);
    if ((rc = ds_path_join(r->dir, sizeof r->dir, cache_root, name)))
        return rc;
    char done_mark[DS_PATH_MAX];
    if ((rc = ds_path_join(done_mark, sizeof done_mark, r->dir, "classes.txt")))
        return rc;
    struct stat st;
    if (stat(done_mark, &st) == 0) {
        r->hit = true;
        return 0;
    }
    if ((rc = ds_mkdirs(cache_root, 0755)))
        return rc;
    const size_t per = (size_t)o->channels * (size_t)o->h * (size_t)o->w;
    if ((uint64_t)f->n > SIZE_MAX / per)
        return ds_error(DS_EINVAL, "%s: %lld images of %zu bytes do not fit in memory", f->root, (long long)f->n, per);
    uint8_t *x = malloc((size_t)f->n * per + 1);
    int64_t *order = cache_order(f), *at = malloc(((size_t)f->n + 1) * sizeof *at);
    if (!x || !order || !at) {
        free(x);
        free(order);
        free(at);
        return ds_error(DS_ENOMEM, "%s: out of memory for %lld decoded images of %zu bytes", f->root, (long long)f->n,
                        per);
    }
    for (int64_t p = 0; p < f->n; p++)
        at[order[p]] = p;
    char stage[DS_PATH_MAX];
    rc = decode_all(f, o, at, x);
    if (!rc && snprintf(stage, sizeof stage, "%s/.%s.tmp-XXXXXX", cache_root, name) >= (int)sizeof stage)
        rc = ds_error(DS_EINVAL, "path too long: %s", cache_root);
    if (!rc && !mkdtemp(stage))
        rc = ds_errno_error(errno, "create the staging folder", stage);
    if (rc) {
        free(x);
        free(order);
        free(at);
        return rc;
    }
    chmod(stage, 0755);
    rc = write_split(stage, f, o, order, x, 0);
    if (!rc)
        rc = write_split(stage, f, o, order, x, 1);
    if (!rc)
        rc = write_text(stage, "files.tsv", f, order, true);
    if (!rc)
        rc = write_text(stage, "classes.txt", f, order, false); /* last: its presence marks a complete cache */
    free(x);
    free(order);
    free(at);
    if (!rc && rename(stage, r->dir) != 0) {
        if (errno == EEXIST || errno == ENOTEMPTY)
            rc = 0; /* another process built the same key first: use that one */
        else
            rc = ds_errno_error(errno, "rename into place", stage);
        ds_remove_tree(stage);
    } else if (!rc) {
        rc = ds_fsync_path(cache_root);
    }
    if (rc)
        ds_remove_tree(stage);
    return rc;
}
