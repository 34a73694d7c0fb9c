/* CIFAR-10 and CIFAR-100: the binary versions (fixed-size records). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/dataset.h"
#include "engine/error.h"
#include "engine/fdio.h"
#include "engine/file.h"

#define CIFAR_PIXELS 3072 /* 3 planes of 32x32: R, G, B */
#define CIFAR10_EXPECTED "(expected the CIFAR-10 binary version: data_batch_1..5.bin, test_batch.bin)"
#define CIFAR100_EXPECTED "(expected the CIFAR-100 binary version: train.bin, test.bin)"

typedef struct cifar_layout {
    const char *files[5];
    int nfiles;
    int64_t records; /* per file */
} cifar_layout;

static const cifar_layout layouts[2][2] = {
    /* CIFAR-10 */
    {[ENG_SPLIT_TRAIN] = {{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                           "data_batch_5.bin"},
                          5, 10000},
     [ENG_SPLIT_TEST] = {{"test_batch.bin"}, 1, 10000}},
    /* CIFAR-100 */
    {[ENG_SPLIT_TRAIN] = {{"train.bin"}, 1, 50000}, [ENG_SPLIT_TEST] = {{"test.bin"}, 1, 10000}},
};

static int path_of(const char *root, const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", root, name);
    if (n < 0 || (size_t)n >= len)
        return eng_error(ENG_EINVAL, "%s: path too long", root);
    return 0;
}

static int check_size(const char *path, const struct stat *st, int64_t records, int64_t rec, const char *expected)
{
    int64_t want = records * rec;
    if ((int64_t)st->st_size != want)
        return eng_error(ENG_EFORMAT, "%s: %lld bytes, expected %lld (%lld records of %lld bytes) %s", path,
                         (long long)st->st_size, (long long)want, (long long)records, (long long)rec, expected);
    return 0;
}

/* Every file of the split exists, is a regular file of exactly the right size and readable. */
static int check_files(const char *root, bool c100, eng_split split)
{
    const char *expected = c100 ? CIFAR100_EXPECTED : CIFAR10_EXPECTED;
    const cifar_layout *l = &layouts[c100][split];
    int64_t rec = (c100 ? 2 : 1) + CIFAR_PIXELS;
    struct stat st;
    if (stat(root, &st) != 0)
        return eng_error(errno == ENOENT ? ENG_ENOENT : ENG_EIO, "%s: %s %s", root,
                         errno == ENOENT ? "no such directory" : strerror(errno), expected);
    if (!S_ISDIR(st.st_mode))
        return eng_error(ENG_EIO, "%s: not a directory %s", root, expected);
    for (int i = 0; i < l->nfiles; i++) {
        char path[ENG_PATH_MAX + 64];
        int rc = path_of(root, l->files[i], path, sizeof path);
        if (rc)
            return rc;
        /* looked at, not opened: a FIFO or a device is refused here */
        rc = eng_file_check(path, ENG_FILE_RESOLVED, &st);
        if (rc == ENG_ENOENT)
            return eng_error(ENG_ENOENT, "%s: missing %s %s", root, l->files[i], expected);
        if (rc)
            return rc;
        if ((rc = check_size(path, &st, l->records, rec, expected)))
            return rc;
        if (access(path, R_OK) != 0)
            return eng_error(ENG_EIO, "%s: not readable: %s", path, strerror(errno));
    }
    return 0;
}

/* Splits k records (record `first` on of `path`) into labels and pixels,
 * checking each label (CIFAR-100: the coarse one too). */
static int parse_records(const unsigned char *buf, int64_t k, bool cifar100, const char *path, int64_t first,
                         int32_t *labels, uint8_t *images)
{
    const int64_t lab_bytes = cifar100 ? 2 : 1, rec = lab_bytes + CIFAR_PIXELS, classes = cifar100 ? 100 : 10;
    for (int64_t i = 0; i < k; i++) {
        const unsigned char *p = buf + i * rec;
        int label = p[lab_bytes - 1]; /* CIFAR-100: (coarse, fine); the fine label */
        if (label >= classes || (cifar100 && p[0] >= 20))
            return eng_error(ENG_EFORMAT, "%s: record %lld: label %d is not below %lld%s", path, (long long)(first + i),
                             cifar100 && p[0] >= 20 ? p[0] : label, cifar100 && p[0] >= 20 ? 20LL : (long long)classes,
                             cifar100 && p[0] >= 20 ? " (coarse label)" : "");
        labels[i] = label;
        memcpy(images + i * CIFAR_PIXELS, p + lab_bytes, CIFAR_PIXELS);
    }
    return 0;
}

int eng_dataset_cifar_parse(const void *buf, size_t len, bool cifar100, eng_dataset **out)
{
    *out = NULL;
    const int64_t rec = (cifar100 ? 2 : 1) + CIFAR_PIXELS;
    if (len % (size_t)rec)
        return eng_error(ENG_EFORMAT, "CIFAR buffer: %zu bytes, not a whole number of %lld-byte records", len,
                         (long long)rec);
    int64_t n = (int64_t)(len / (size_t)rec);
    eng_shape shape = eng_shape3(3, 32, 32);
    eng_dataset *ds;
    int rc = eng_dataset_alloc(&shape, cifar100 ? 100 : 10, n, &ds);
    if (rc)
        return rc;
    if ((rc = parse_records(buf, n, cifar100, "CIFAR buffer", 0, ds->labels, ds->images))) {
        eng_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return 0;
}

int eng_dataset_cifar_load(const char *root, bool cifar100, eng_split split, int64_t limit, eng_dataset **out)
{
    *out = NULL;
    if (split != ENG_SPLIT_TRAIN && split != ENG_SPLIT_TEST)
        return eng_error(ENG_EINVAL, "unknown dataset split %d", (int)split);
    int rc = check_files(root, cifar100, split);
    if (rc)
        return rc;
    const cifar_layout *l = &layouts[cifar100][split];
    const int64_t lab_bytes = cifar100 ? 2 : 1, rec = lab_bytes + CIFAR_PIXELS;
    const int64_t classes = cifar100 ? 100 : 10;
    int64_t total = l->records * l->nfiles;
    int64_t n = limit > 0 && limit < total ? limit : total;
    eng_shape shape = eng_shape3(3, 32, 32);
    eng_dataset *ds;
    if ((rc = eng_dataset_alloc(&shape, classes, n, &ds)))
        return rc;
    /* Records are read in blocks and split into labels and pixels; only the
     * files that hold the first n records are read (all were size-checked). */
    const int64_t block = 1000;
    unsigned char *buf = malloc((size_t)(block * rec));
    if (!buf) {
        eng_dataset_free(ds);
        return eng_error(ENG_ENOMEM, "out of memory");
    }
    int64_t done = 0;
    for (int f = 0; f < l->nfiles && done < n && !rc; f++) {
        char path[ENG_PATH_MAX + 64];
        if ((rc = path_of(root, l->files[f], path, sizeof path)))
            break;
        int fd;
        struct stat st;
        if ((rc = eng_file_open(path, ENG_FILE_RESOLVED, &fd, &st)))
            break;
        /* the file opened is the one read: checked again, it may have changed since */
        if ((rc = check_size(path, &st, l->records, rec, cifar100 ? CIFAR100_EXPECTED : CIFAR10_EXPECTED))) {
            close(fd);
            break;
        }
        for (int64_t r = 0; r < l->records && done < n;) {
            int64_t k = l->records - r < block ? l->records - r : block;
            if (k > n - done)
                k = n - done;
            if (eng_read_full(fd, buf, (size_t)(k * rec)) != 0) {
                rc = eng_error(ENG_EIO, "%s: read failed: %s", path, errno ? strerror(errno) : "file shrank");
                break;
            }
            if ((rc = parse_records(buf, k, cifar100, path, r, ds->labels + done, ds->images + done * CIFAR_PIXELS)))
                break;
            r += k;
            done += k;
        }
        close(fd);
    }
    free(buf);
    if (rc) {
        eng_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return 0;
}

int eng_dataset_cifar_probe(const char *root, bool cifar100, char *msg, size_t msg_len)
{
    if (msg_len)
        msg[0] = '\0';
    for (int split = 0; split < 2; split++) {
        int rc = check_files(root, cifar100, (eng_split)split);
        if (rc) {
            snprintf(msg, msg_len, "%s", eng_last_error());
            return rc;
        }
    }
    return 0;
}
