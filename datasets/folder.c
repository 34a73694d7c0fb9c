/* Scanning an image folder into classes and files, and checking a sample
 * of its images (folder.h). */
#include "datasets/folder.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "datasets/error.h"
#include "datasets/fsutil.h"
#include "datasets/image.h"

#define MAX_DEPTH 16
#define MAX_ITEMS ((int64_t)1 << 31)

typedef struct strs {
    char **v;
    int n, cap;
} strs;

static int strs_add(strs *l, const char *s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return ds_error(DS_ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return ds_error(DS_ENOMEM, "out of memory");
    l->n++;
    return 0;
}

static void strs_free(strs *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool image_name(const char *n)
{
    const char *dot = strrchr(n, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* The non-hidden subfolders of path, sorted. */
static int subfolders(const char *path, strs *out)
{
    DIR *d = opendir(path);
    if (!d)
        return ds_errno_error(errno, "list", path);
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        char p[DS_PATH_MAX];
        if (de->d_name[0] == '.' || ds_path_join(p, sizeof p, path, de->d_name))
            continue;
        if (is_dir(p))
            rc = strs_add(out, de->d_name);
    }
    closedir(d);
    if (!rc && out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return rc;
}

typedef struct items {
    ds_folder_item *v;
    int64_t n, cap;
} items;

static int items_add(items *l, const char *rel, const struct stat *st, int label, int split)
{
    if (l->n >= MAX_ITEMS - 1)
        return ds_error(DS_EFORMAT, "more than %lld images", (long long)MAX_ITEMS - 1);
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 256;
        ds_folder_item *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return ds_error(DS_ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    char *p = strdup(rel);
    if (!p)
        return ds_error(DS_ENOMEM, "out of memory");
    l->v[l->n++] = (ds_folder_item){.path = p,
                                    .size = (int64_t)st->st_size,
                                    .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
                                    .label = label,
                                    .split = (uint8_t)split};
    return 0;
}

/* Every image below root/rel (recursively, in sorted order). */
static int collect(const char *root, const char *rel, int depth, int label, int split, items *out)
{
    char path[DS_PATH_MAX];
    int rc = ds_path_join(path, sizeof path, root, rel);
    if (rc)
        return rc;
    if (depth > MAX_DEPTH)
        return ds_error(DS_EFORMAT, "%s: folders nested deeper than %d", path, MAX_DEPTH);
    DIR *d = opendir(path);
    if (!d)
        return ds_errno_error(errno, "list", path);
    strs names = {0};
    struct dirent *de;
    while (!rc && (de = readdir(d)))
        if (de->d_name[0] != '.')
            rc = strs_add(&names, de->d_name);
    closedir(d);
    if (!rc && names.n > 1)
        qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    for (int i = 0; !rc && i < names.n; i++) {
        char sub[DS_PATH_MAX], full[DS_PATH_MAX];
        struct stat st;
        if ((rc = ds_path_join(sub, sizeof sub, rel, names.v[i])) || (rc = ds_path_join(full, sizeof full, root, sub)))
            break;
        if (stat(full, &st) != 0)
            continue; /* a dangling link */
        if (S_ISDIR(st.st_mode))
            rc = collect(root, sub, depth + 1, label, split, out);
        else if (S_ISREG(st.st_mode) && image_name(names.v[i]))
            rc = items_add(out, sub, &st, label, split);
    }
    strs_free(&names);
    return rc;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ds_folder_free(ds_folder *f)
{
    if (!f)
        return;
    for (int64_t i = 0; i < f->n; i++)
        free(f->items[i].path);
    for (int i = 0; i < f->n_classes; i++)
        free(f->classes[i]);
    free(f->items);
    free(f->classes);
    free(f->class_counts);
    free(f->root);
    free(f);
}

int64_t ds_folder_class_count(const ds_folder *f, int split, int k)
{
    return f->class_counts[(size_t)split * (size_t)f->n_classes + (size_t)k];
}

static int cmp_item(const void *a, const void *b)
{
    const ds_folder_item *x = a, *y = b;
    if (x->split != y->split)
        return x->split - y->split;
    if (x->label != y->label)
        return x->label < y->label ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* A single tree: each class's images shuffled by (seed, class), the first part to test. */
static void split_single(items *all, const strs *classes, double frac, uint64_t seed)
{
    int64_t start = 0;
    for (int k = 0; k < classes->n; k++) {
        int64_t end = start;
        while (end < all->n && all->v[end].label == k)
            end++;
        int64_t n = end - start;
        int64_t nt = (int64_t)(n * frac + 0.5);
        if (n >= 2)
            nt = nt < 1 ? 1 : nt > n - 1 ? n - 1 : nt;
        else
            nt = 0;
        uint64_t s = seed ^ (0x632be59bd9b4e019ull * (uint64_t)(k + 1));
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates on the sorted list */
            int64_t j = (int64_t)(splitmix(&s) % (uint64_t)(i + 1));
            ds_folder_item t = all->v[start + i];
            all->v[start + i] = all->v[start + j];
            all->v[start + j] = t;
        }
        for (int64_t i = 0; i < n; i++)
            all->v[start + i].split = i < nt ? 1 : 0;
        start = end;
    }
}

int ds_folder_scan(const char *root, double split_test, uint64_t split_seed, ds_folder **out)
{
    *out = NULL;
    struct stat st;
    if (stat(root, &st) != 0)
        return ds_error(errno == ENOENT ? DS_ENOENT : DS_EIO,
                        "%s %s (expected ROOT/train/<class>/*.png|jpg and "
                        "ROOT/test/<class>/..., or ROOT/<class>/... with data.split)",
                        root, errno == ENOENT ? "does not exist" : strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ds_error(DS_EFORMAT, "%s is not a folder", root);
    char train[DS_PATH_MAX], test[DS_PATH_MAX];
    int rc;
    if ((rc = ds_path_join(train, sizeof train, root, "train")) || (rc = ds_path_join(test, sizeof test, root, "test")))
        return rc;
    bool tr = is_dir(train), te = is_dir(test);
    if (tr != te)
        return ds_error(DS_EFORMAT, "%s has a %s/ folder but no %s/ (expected both, or class folders and data.split)",
                        root, tr ? "train" : "test", tr ? "test" : "train");
    if (tr && split_test > 0)
        return ds_error(DS_EINVAL,
                        "%s has train/ and test/ folders; data.split is only for a single tree of class "
                        "folders",
                        root);
    if (!tr && split_test <= 0)
        return ds_error(DS_EINVAL,
                        "%s has no train/ and test/ folders: add data.split (e.g. {test: 0.2}) to hold out "
                        "part of each class folder for testing",
                        root);

    ds_folder *f = calloc(1, sizeof *f);
    strs classes = {0}, test_classes = {0};
    items all = {0};
    if (!f || !(f->root = strdup(root))) {
        rc = ds_error(DS_ENOMEM, "out of memory");
        goto fail;
    }
    f->split_trees = tr;
    const char *class_dir = tr ? train : root;
    if ((rc = subfolders(class_dir, &classes)))
        goto fail;
    if (classes.n < 2) {
        rc = ds_error(DS_EFORMAT, "%s: %d class folder%s%s%s%s: at least 2 are needed", class_dir, classes.n,
                      classes.n == 1 ? "" : "s", classes.n ? " (" : "", classes.n ? classes.v[0] : "",
                      classes.n ? ")" : "");
        goto fail;
    }
    if (classes.n > (1 << 20)) {
        rc = ds_error(DS_EFORMAT, "%s: %d class folders, at most %d", class_dir, classes.n, 1 << 20);
        goto fail;
    }
    for (int k = 0; k < classes.n; k++) {
        char rel[DS_PATH_MAX];
        int64_t before = all.n;
        if ((rc = tr ? ds_path_join(rel, sizeof rel, "train", classes.v[k])
                     : (snprintf(rel, sizeof rel, "%s", classes.v[k]), 0)) ||
            (rc = collect(root, rel, 0, k, 0, &all)))
            goto fail;
        if (all.n == before) {
            rc = ds_error(DS_EFORMAT, "%s/%s: no images (.png, .jpg, .jpeg) in class %s", root, rel, classes.v[k]);
            goto fail;
        }
    }
    if (tr) {
        if ((rc = subfolders(test, &test_classes)))
            goto fail;
        for (int t = 0; t < test_classes.n; t++) {
            char **hit = bsearch(&test_classes.v[t], classes.v, (size_t)classes.n, sizeof *classes.v, cmp_str);
            if (!hit) {
                rc = ds_error(DS_EFORMAT, "%s/%s: class %s is not in %s", test, test_classes.v[t], test_classes.v[t],
                              train);
                goto fail;
            }
            char rel[DS_PATH_MAX];
            if ((rc = ds_path_join(rel, sizeof rel, "test", test_classes.v[t])) ||
                (rc = collect(root, rel, 0, (int)(hit - classes.v), 1, &all)))
                goto fail;
        }
    } else {
        split_single(&all, &classes, split_test, split_seed);
    }
    if (all.n > 1)
        qsort(all.v, (size_t)all.n, sizeof *all.v, cmp_item);
    f->classes = classes.v;
    f->n_classes = classes.n;
    classes = (strs){0};
    f->items = all.v;
    f->n = all.n;
    all = (items){0};
    if (!(f->class_counts = calloc(2 * (size_t)f->n_classes, sizeof *f->class_counts))) {
        rc = ds_error(DS_ENOMEM, "out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < f->n; i++) {
        f->n_split[f->items[i].split]++;
        f->class_counts[(size_t)f->items[i].split * (size_t)f->n_classes + (size_t)f->items[i].label]++;
    }
    if (f->n_split[1] == 0) {
        rc = ds_error(DS_EFORMAT, "%s: no test images (%s)", root,
                      tr ? "test/ has no images in class folders" : "every class has a single image");
        goto fail;
    }
    strs_free(&test_classes);
    *out = f;
    return 0;
fail:
    for (int64_t i = 0; i < all.n; i++)
        free(all.v[i].path);
    free(all.v);
    strs_free(&classes);
    strs_free(&test_classes);
    ds_folder_free(f);
    return rc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int ds_folder_check(const ds_folder *f, int64_t sample)
{
    int64_t want = sample <= 0 || sample > f->n ? f->n : sample;
    int64_t *idx = malloc(((size_t)want + 2 * (size_t)f->n_classes) * sizeof *idx);
    if (!idx)
        return ds_error(DS_ENOMEM, "out of memory");
    int64_t m = 0;
    /* the first image of each class and split, then evenly spread */
    for (int64_t i = 0; i < f->n; i++)
        if (i == 0 || f->items[i].label != f->items[i - 1].label || f->items[i].split != f->items[i - 1].split)
            idx[m++] = i;
    for (int64_t k = 0; k < want && m < want + 2 * (int64_t)f->n_classes; k++)
        idx[m++] = k * f->n / want;
    qsort(idx, (size_t)m, sizeof *idx, cmp_i64);
    int rc = 0;
    for (int64_t k = 0; k < m && !rc; k++) {
        if (k && idx[k] == idx[k - 1])
            continue;
        char path[DS_PATH_MAX];
        ds_image img;
        if ((rc = ds_path_join(path, sizeof path, f->root, f->items[idx[k]].path)))
            break;
        rc = ds_image_load(path, &img);
        ds_image_free(&img);
    }
    free(idx);
    return rc;
}
