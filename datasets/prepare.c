/* Preparing a spec's data before training (prepare.h). */
#include "datasets/prepare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datasets/error.h"
#include "datasets/folder.h"
#include "datasets/folder_cache.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int ds_cache_root(const char *state_dir, char *out, size_t len)
{
    const char *env = getenv("EPOCHD_CACHE_DIR");
    if (env && env[0]) {
        if (snprintf(out, len, "%s", env) >= (int)len)
            return ds_error(DS_EINVAL, "path too long: %s", env);
        return 0;
    }
    return ds_path_join(out, len, state_dir && state_dir[0] ? state_dir : ".", "cache");
}

int ds_prepare_data(eng_data_desc *d, const char *cache_root, int (*progress)(void *ctx, int64_t done, int64_t total),
                    void *ctx, ds_prepare_info *info)
{
    memset(info, 0, sizeof *info);
    if (d->dataset != ENG_DATASET_FOLDER)
        return 0;
    info->folder = true;
    double t0 = now_s();
    ds_folder *f = NULL;
    int rc = ds_folder_scan(d->root, d->split_test, d->split_seed, &f);
    if (rc)
        return rc;
    info->scan_seconds = now_s() - t0;
    info->images = f->n;
    info->classes = f->n_classes;
    if (d->file_classes > 0 && d->file_classes != f->n_classes) {
        rc = ds_error(DS_EFORMAT, "%s: %d classes now, %lld when the spec was checked (the folder changed)", d->root,
                      f->n_classes, (long long)d->file_classes);
        goto done;
    }
    ds_cache_opts o = {
        .channels = (int)d->image_c, .h = (int)d->image_h, .w = (int)d->image_w, .progress = progress, .ctx = ctx};
    ds_cache_result r;
    t0 = now_s();
    if ((rc = ds_folder_cache(f, cache_root, &o, &r)))
        goto done;
    info->build_seconds = now_s() - t0;
    info->hit = r.hit;
    snprintf(info->cache, sizeof info->cache, "%s", r.dir);
    if (snprintf(d->cache, sizeof d->cache, "%s", r.dir) >= (int)sizeof d->cache) {
        rc = ds_error(DS_EINVAL, "path too long: %s", r.dir);
        goto done;
    }
    d->file_classes = f->n_classes;
    d->file_shape = eng_shape3(d->image_c, d->image_h, d->image_w);
done:
    ds_folder_free(f);
    return rc;
}
