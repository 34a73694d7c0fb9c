/* Image folders (dataset: folder), the layout torchvision's ImageFolder
 * reads:
 *
 *   ROOT/train/<class>/[subfolders/]NAME.png|jpg|jpeg  and  ROOT/test/<class>/...
 *   or one tree ROOT/<class>/... split by data.split (a fraction of each
 *   class held out for testing, chosen by data.split.seed)
 *
 * Classes are the train tree's class folders in sorted (byte) order; the
 * test tree may lack classes but may not add any. Files are found in
 * subfolders too; hidden files and folders (".x") and files of other
 * extensions are left out; what a file holds is recognised by its bytes.
 * Scanning reads names and sizes, not images. */
#ifndef DS_FOLDER_H
#define DS_FOLDER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ds_folder_item {
    char *path;   /* relative to the root: "train/cat/001.png" */
    int64_t size; /* bytes */
    int64_t mtime_ns;
    int32_t label; /* index into classes */
    uint8_t split; /* 0 train, 1 test */
} ds_folder_item;

typedef struct ds_folder {
    char *root;
    bool split_trees; /* ROOT/train and ROOT/test */
    char **classes;
    int n_classes;
    ds_folder_item *items; /* train then test; by class, then path */
    int64_t n, n_split[2];
    int64_t *class_counts; /* [split * n_classes + class] */
} ds_folder;

/* Scans root. split_test: 0 for train/ and test/ trees, else the fraction
 * in (0, 1) of each class's images held out (a class of n images gives
 * round(n * split_test) to test, at least 1 and at most n - 1 when n >= 2),
 * chosen by a seeded shuffle of its sorted file names. Errors say what is
 * wrong and where (DS_ENOENT, DS_EFORMAT, DS_EINVAL):
 *   "ROOT/train/dog: no images (.png, .jpg, .jpeg) in class dog"
 *   "ROOT: has train/ and test/ folders; data.split is for a single tree" */
int ds_folder_scan(const char *root, double split_test, uint64_t split_seed, ds_folder **out);
void ds_folder_free(ds_folder *f);
/* Images of class k in split s. */
int64_t ds_folder_class_count(const ds_folder *f, int split, int k);

/* Decodes a sample of the images (the first of every class, then evenly
 * spread, `sample` in all at most; 0: every image) and names the first one
 * that fails: "ROOT/train/cat/003.png: not an image (expected PNG or JPEG)". */
int ds_folder_check(const ds_folder *f, int64_t sample);

#endif
