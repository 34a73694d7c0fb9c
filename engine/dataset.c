/* Datasets, the common part: load dispatch, limits, probe, epoch order,
 * augmentation draws, the batch description, free. */
#include "engine/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/checked.h"
#include "engine/error.h"
#include "engine/rng.h"

int eng_dataset_alloc(const eng_shape *shape, int64_t classes, int64_t n, eng_dataset **out)
{
    return eng_dataset_alloc_typed(shape, classes, n, false, true, out);
}

int eng_dataset_alloc_typed(const eng_shape *shape, int64_t classes, int64_t n, bool f32, bool alloc_images,
                            eng_dataset **out)
{
    *out = NULL;
    int64_t numel = eng_shape_numel(shape);
    if (n < 0 || n > INT32_MAX || numel <= 0 || classes <= 0 || classes > INT32_MAX)
        return eng_error(ENG_EINVAL, "dataset of %lld samples of %lld values, %lld classes: out of range",
                         (long long)n, (long long)numel, (long long)classes);
    int64_t bytes = eng_size_mul(eng_size_mul(n, numel), f32 ? (int64_t)sizeof(float) : 1);
    if (bytes == ENG_SIZE_MAX)
        return eng_error(ENG_ELIMIT, "dataset of %lld samples of %lld bytes does not fit in memory", (long long)n,
                         (long long)numel);
    eng_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return eng_error(ENG_ENOMEM, "out of memory (dataset)");
    ds->shape = *shape;
    ds->classes = classes;
    ds->n = n;
    ds->f32 = f32;
    ds->images_borrowed = !alloc_images;
    /* +1 keeps malloc(0) out of the picture for empty splits. */
    if (alloc_images)
        ds->images = malloc((size_t)bytes + 1);
    ds->labels = malloc((size_t)n * sizeof *ds->labels + 1);
    if ((alloc_images && !ds->images) || !ds->labels) {
        eng_dataset_free(ds);
        return eng_error(ENG_ENOMEM, "out of memory for %lld samples of %lld bytes", (long long)n,
                         (long long)numel);
    }
    *out = ds;
    return 0;
}

void eng_dataset_free(eng_dataset *ds)
{
    if (!ds)
        return;
    if (!ds->images_borrowed)
        free(ds->images);
    if (ds->backing && ds->backing_len)
        munmap(ds->backing, ds->backing_len);
    else
        free(ds->backing);
    free(ds->labels);
    free(ds);
}

int eng_dataset_load(const eng_data_desc *d, eng_split split, uint64_t seed, eng_dataset **out)
{
    *out = NULL;
    if (split != ENG_SPLIT_TRAIN && split != ENG_SPLIT_TEST)
        return eng_error(ENG_EINVAL, "unknown dataset split %d", (int)split);
    int64_t limit = split == ENG_SPLIT_TRAIN ? d->limit_train : d->limit_test;
    if (limit < 0)
        return eng_error(ENG_EINVAL, "dataset limit %lld is negative", (long long)limit);
    switch (d->dataset) {
    case ENG_DATASET_MNIST:
    case ENG_DATASET_FASHION_MNIST:
        return eng_dataset_idx_load(d->root, split, limit, out);
    case ENG_DATASET_CIFAR10:
        return eng_dataset_cifar_load(d->root, false, split, limit, out);
    case ENG_DATASET_CIFAR100:
        return eng_dataset_cifar_load(d->root, true, split, limit, out);
    case ENG_DATASET_SYNTHETIC:
        return eng_dataset_synthetic_load(d, split, seed, limit, out);
    case ENG_DATASET_NPY:
        return eng_dataset_npy_load(d, d->root, split, limit, out);
    case ENG_DATASET_FOLDER:
        if (!d->cache[0])
            return eng_error(ENG_EINVAL, "folder dataset %s: its decoded cache has not been prepared (the datasets "
                             "library builds it before training)", d->root);
        return eng_dataset_npy_load(d, d->cache, split, limit, out);
    case ENG_DATASET__COUNT:
        break;
    }
    return eng_error(ENG_EINVAL, "unknown dataset kind %d", (int)d->dataset);
}

int eng_dataset_probe(const eng_data_desc *d, char *msg, size_t msg_len)
{
    if (msg_len)
        msg[0] = '\0';
    switch (d->dataset) {
    case ENG_DATASET_MNIST:
    case ENG_DATASET_FASHION_MNIST:
        return eng_dataset_idx_probe(d->root, msg, msg_len);
    case ENG_DATASET_CIFAR10:
        return eng_dataset_cifar_probe(d->root, false, msg, msg_len);
    case ENG_DATASET_CIFAR100:
        return eng_dataset_cifar_probe(d->root, true, msg, msg_len);
    case ENG_DATASET_SYNTHETIC:
        return 0;
    case ENG_DATASET_NPY:
        return eng_dataset_npy_probe(d, d->root, msg, msg_len);
    case ENG_DATASET_FOLDER:
        /* image folders are checked by datasets/ (the engine decodes no images) */
        return 0;
    case ENG_DATASET__COUNT:
        break;
    }
    snprintf(msg, msg_len, "unknown dataset kind %d", (int)d->dataset);
    return eng_error(ENG_EINVAL, "unknown dataset kind %d", (int)d->dataset);
}

int64_t eng_dataset_batches(int64_t n, int64_t batch, bool drop_last)
{
    if (n <= 0 || batch <= 0)
        return 0;
    return drop_last ? n / batch : n / batch + (n % batch != 0);
}

void eng_dataset_epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch, int32_t *idx)
{
    for (int64_t i = 0; i < n; i++)
        idx[i] = (int32_t)i;
    if (!shuffle || n < 2)
        return;
    eng_rng r;
    eng_rng_init(&r, eng_rng_key(seed, ENG_RNG_SHUFFLE, (uint64_t)epoch), 0);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)eng_rng_below(&r, (uint64_t)i + 1);
        int32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

void eng_dataset_augment_draw(const eng_data_desc *d, uint64_t seed, int64_t epoch, int64_t step, int64_t count,
                              int16_t *aug)
{
    int64_t pad = d->crop_padding > 0 ? d->crop_padding : 0;
    eng_rng r;
    eng_rng_init(&r, eng_rng_key(seed, ENG_RNG_AUGMENT, (uint64_t)epoch), (uint64_t)step << 32);
    for (int64_t i = 0; i < count; i++) {
        aug[3 * i + 0] = pad ? (int16_t)eng_rng_below(&r, (uint64_t)(2 * pad + 1)) : 0;
        aug[3 * i + 1] = pad ? (int16_t)eng_rng_below(&r, (uint64_t)(2 * pad + 1)) : 0;
        aug[3 * i + 2] = d->hflip ? (int16_t)eng_rng_below(&r, 2) : 0;
    }
}

int eng_dataset_batch_desc(const eng_data_desc *d, const eng_shape *shape, int64_t n, bool train,
                           eng_batch_desc *out)
{
    memset(out, 0, sizeof *out);
    int64_t c, h, w;
    switch (shape->ndim) {
    case 1: c = 1, h = 1, w = shape->d[0]; break;
    case 2: c = 1, h = shape->d[0], w = shape->d[1]; break;
    case 3: c = shape->d[0], h = shape->d[1], w = shape->d[2]; break;
    default: return eng_error(ENG_EINVAL, "batch of %d-d samples: expected (F), (A, B) or (C, H, W)", shape->ndim);
    }
    if (c < 1 || c > ENG_MAX_CHANNELS || h < 1 || w < 1 || n < 0)
        return eng_error(ENG_EINVAL, "batch of %lld samples of (%lld, %lld, %lld): at most %d channels", (long long)n,
                         (long long)c, (long long)h, (long long)w, ENG_MAX_CHANNELS);
    bool augment = train && (d->crop_padding > 0 || d->hflip);
    if (augment && shape->ndim != 3)
        return eng_error(ENG_EINVAL, "augmentation needs (C, H, W) samples, not %d-d", shape->ndim);
    if (d->crop_padding < 0 || d->crop_padding > 1024)
        return eng_error(ENG_EINVAL, "crop padding %lld outside 0..1024", (long long)d->crop_padding);
    out->n = n;
    out->c = c;
    out->h = h;
    out->w = w;
    out->pad = augment ? d->crop_padding : 0;
    out->augment = augment;
    for (int64_t k = 0; k < c; k++) {
        float mean = 0.0f, std = 1.0f;
        if (d->normalize) {
            if (d->n_norm != 1 && d->n_norm != c)
                return eng_error(ENG_EINVAL, "normalize has %d mean/std entries for %lld channels", d->n_norm,
                                 (long long)c);
            int j = d->n_norm == 1 ? 0 : (int)k;
            mean = d->mean[j];
            std = d->std[j];
            if (!(std > 0.0f))
                return eng_error(ENG_EINVAL, "normalize std %g of channel %lld is not positive", (double)std,
                                 (long long)k);
        }
        out->mean[k] = mean;
        out->inv_std[k] = 1.0f / std;
    }
    return 0;
}
