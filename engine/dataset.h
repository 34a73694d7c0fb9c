/* Datasets: loading the standard files into memory as uint8, and the
 * per-epoch batch order and augmentation draws.
 *
 * Supported kinds (engine/desc.h eng_dataset_kind) and the files under root:
 *   mnist, fashion_mnist  IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte,
 *                         t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each
 *                         plain or gzipped with a .gz suffix (plain is preferred
 *                         when both exist); 1x28x28, 10 classes.
 *   cifar10               the CIFAR-10 binary version: data_batch_1..5.bin and
 *                         test_batch.bin, 10000 records of 1 label byte + 3072
 *                         pixel bytes (R, G, B planes of 32x32) each.
 *   cifar100              the CIFAR-100 binary version: train.bin (50000) and
 *                         test.bin (10000) records of 2 label bytes (coarse,
 *                         fine) + 3072; the fine label (100 classes) is used.
 *   synthetic             generated from the seed (see dataset_synthetic.c).
 *   npy                   NumPy arrays (dataset_npy.c): train.npz / test.npz with
 *                         x and y, or train_x.npy ... test_y.npy; x uint8 or
 *                         float32, (N, C, H, W), (N, H, W, C), (N, H, W) or (N, F).
 *   folder                an image tree, trained from the npy files of its
 *                         decoded cache (d->cache, which datasets/ prepares).
 *
 * The files are opened as engine/file.h describes, with ENG_FILE_RESOLVED:
 * only regular files, and no symbolic link anywhere on root/name (the
 * validator resolves root and confines it to the data roots; a link in
 * the folder could lead out of them). Error messages (eng_last_error) name
 * the file. */
#ifndef ENG_DATASET_H
#define ENG_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/desc.h"
#include "engine/shape.h"

typedef enum eng_split { ENG_SPLIT_TRAIN = 0, ENG_SPLIT_TEST = 1 } eng_split;

/* One split in host memory. n <= INT32_MAX (sample indices are int32). */
typedef struct eng_dataset {
    eng_shape shape;      /* (C, H, W) per sample (synthetic: as described) */
    int64_t classes, n;
    uint8_t *images;      /* n * numel(shape) values, NCHW: bytes, or floats when f32 */
    int32_t *labels;      /* n, each in [0, classes) */
    bool f32;             /* images holds float32 values (npy data) */
    /* private: what images points into when it is not its own allocation
     * (a file mapping of backing_len bytes, or a malloc'd buffer when
     * backing_len is 0); eng_dataset_free releases it */
    bool images_borrowed;
    void *backing;
    size_t backing_len;
} eng_dataset;

/* Loads one split: the first d->limit_train / d->limit_test samples (0 =
 * all). Under a limit the split's files are still checked whole for size or
 * truncation (gzipped IDX files are decompressed to the end, which also
 * checks their CRC), and IDX labels are all checked, so a limit does not hide
 * a damaged file; CIFAR labels are checked for the records loaded. `seed` is
 * used by synthetic only.
 * Returns 0, or ENG_ENOENT (missing file), ENG_EIO, ENG_EFORMAT, ENG_ENOMEM,
 * ENG_EINVAL (bad description), ENG_ELIMIT (too large). */
int eng_dataset_load(const eng_data_desc *d, eng_split split, uint64_t seed, eng_dataset **out);
void eng_dataset_free(eng_dataset *ds);

/* Checks that the dataset's files exist under d->root and are readable,
 * with valid headers and (where it costs no decompression) exact sizes;
 * nothing is loaded. 0 if so; otherwise a negative code and a message in
 * msg. The message does not repeat the key: callers print it after
 * "data.root: ", e.g. "/srv/data/cifar-10-batches-bin: missing
 * data_batch_1.bin (expected the CIFAR-10 binary version:
 * data_batch_1..5.bin, test_batch.bin)". Synthetic: 0. */
int eng_dataset_probe(const eng_data_desc *d, char *msg, size_t msg_len);

/* Batches per epoch: floor(n / batch) when drop_last, else ceil; 0 when
 * batch <= 0 or n <= 0. */
int64_t eng_dataset_batches(int64_t n, int64_t batch, bool drop_last);

/* idx[0..n) = a permutation of 0..n-1 for (seed, epoch): Fisher-Yates over
 * the Philox stream eng_rng_key(seed, ENG_RNG_SHUFFLE, epoch); the identity
 * when !shuffle. Depends on nothing else, so a resumed run replays it. */
void eng_dataset_epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch, int32_t *idx);

/* aug[3*i + 0..2] = (dy, dx, flip) for the `count` samples of step `step` of
 * `epoch` (backend.h eng_batch_desc): dy, dx uniform in [0, 2*crop_padding]
 * (0 when crop_padding is 0), flip uniform in {0, 1} when d->hflip else 0.
 * From the Philox stream of key eng_rng_key(seed, ENG_RNG_AUGMENT, epoch)
 * starting at counter step << 32; deterministic per (seed, epoch, step). */
void eng_dataset_augment_draw(const eng_data_desc *d, uint64_t seed, int64_t epoch, int64_t step, int64_t count,
                              int16_t *aug);

/* Fills the backend's batch_gather description for batches of n samples of
 * `shape`: normalisation as mean / (1 / std) per channel (d->n_norm is 1 or
 * the channel count; without d->normalize, mean 0 and inv_std 1, i.e. pixels
 * in [0, 1]), and, when `train`, crop padding and augmentation (eval batches
 * are never augmented). Shapes (F) and (A, B) map to (1, 1, F) and (1, A, B).
 * ENG_EINVAL on more than ENG_MAX_CHANNELS channels, a bad n_norm, std <= 0,
 * or augmentation asked for a non-image shape. */
int eng_dataset_batch_desc(const eng_data_desc *d, const eng_shape *shape, int64_t n, bool train,
                           eng_batch_desc *out);

/* ---- per-format loaders (dataset.c dispatches to these; tests call them) ---- */

/* Allocates a dataset of n samples of `shape` (images and labels uninitialised). */
int eng_dataset_alloc(const eng_shape *shape, int64_t classes, int64_t n, eng_dataset **out);
/* The same with float32 values when f32; without alloc_images, images is
 * left NULL for the caller to point into its own buffer (images_borrowed). */
int eng_dataset_alloc_typed(const eng_shape *shape, int64_t classes, int64_t n, bool f32, bool alloc_images,
                            eng_dataset **out);

/* limit: keep the first `limit` samples (0 = all). */
int eng_dataset_idx_load(const char *root, eng_split split, int64_t limit, eng_dataset **out);
int eng_dataset_idx_probe(const char *root, char *msg, size_t msg_len);
/* One whole IDX file image in memory (plain or gzip), checked as the loader
 * checks a file: *items gets its count items (images: 784 bytes each;
 * labels: one byte each, below 10), malloc'ed. For the fuzz target. */
int eng_dataset_idx_parse(const void *buf, size_t len, bool images, uint32_t *count, uint8_t **items);
int eng_dataset_cifar_load(const char *root, bool cifar100, eng_split split, int64_t limit, eng_dataset **out);
int eng_dataset_cifar_probe(const char *root, bool cifar100, char *msg, size_t msg_len);
/* Records of a CIFAR binary file held in memory (a whole number of them),
 * checked as the loader checks a file's. For the fuzz target. */
int eng_dataset_cifar_parse(const void *buf, size_t len, bool cifar100, eng_dataset **out);
int eng_dataset_synthetic_load(const eng_data_desc *d, eng_split split, uint64_t seed, int64_t limit,
                               eng_dataset **out);
/* What an npy dataset's files hold (both splits' headers and all labels
 * are read, not the images): the per-sample shape in (C, H, W) order, x's
 * dtype, the samples per split, and the class count: `classes` when > 0
 * (every label must be below it), else the largest label + 1. Messages name
 * the file and array: "DIR/train.npz: x: dtype '<f8', expected uint8 ...". */
typedef struct eng_npy_info {
    eng_shape shape;
    bool f32;
    int64_t n[2];      /* by eng_split */
    int64_t classes;
} eng_npy_info;
int eng_dataset_npy_info(const char *root, eng_layout layout, int64_t classes, eng_npy_info *out);
int eng_dataset_npy_probe(const eng_data_desc *d, const char *root, char *msg, size_t msg_len);
/* Loads a split of the npy files under root (d: layout, classes,
 * file_shape / file_classes when known: checked against the files). */
int eng_dataset_npy_load(const eng_data_desc *d, const char *root, eng_split split, int64_t limit,
                         eng_dataset **out);

/* The class prototype images of the synthetic generator: classes * numel bytes. */
int eng_dataset_synthetic_prototypes(const eng_data_desc *d, uint64_t seed, uint8_t **out);

#endif
