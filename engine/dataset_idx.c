/* MNIST / Fashion-MNIST: the IDX files, plain or gzipped (engine/zstream.h
 * reads both, strictly: nothing may follow the last gzip member). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/dataset.h"
#include "engine/error.h"
#include "engine/file.h"
#include "engine/zstream.h"

#define IDX_IMAGES_MAGIC 0x00000803u /* unsigned bytes, 3 dimensions */
#define IDX_LABELS_MAGIC 0x00000801u /* unsigned bytes, 1 dimension */
#define IDX_SIDE 28
#define IDX_CLASSES 10
#define IDX_MAX_ITEMS (1u << 24)
#define IDX_EXPECTED                                                                                          \
    "(expected the MNIST IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, " \
    "t10k-labels-idx1-ubyte, each optionally .gz)"

static const char *const idx_names[2][2] = {
    [ENG_SPLIT_TRAIN] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
    [ENG_SPLIT_TEST] = {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
};

typedef struct idx_file {
    eng_zstream *zs;
    char path[ENG_PATH_MAX + 64];
    bool plain;         /* not gzip-compressed: the size is known from stat */
    uint64_t size;      /* bytes on disk */
    uint32_t count;     /* items per the header */
    uint64_t header;    /* header bytes: 16 (images) or 8 (labels) */
    uint64_t item;      /* bytes per item */
} idx_file;

static void idx_close(idx_file *f)
{
    eng_zstream_close(f->zs);
    f->zs = NULL;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int check_root(const char *root)
{
    struct stat st;
    if (stat(root, &st) != 0)
        return eng_error(errno == ENOENT ? ENG_ENOENT : ENG_EIO, "%s: %s " IDX_EXPECTED, root,
                         errno == ENOENT ? "no such directory" : strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return eng_error(ENG_EIO, "%s: not a directory " IDX_EXPECTED, root);
    return 0;
}

/* Reads n bytes; a short read is truncation (or a decompression error). */
static int idx_read(idx_file *f, void *buf, uint64_t n, const char *what)
{
    return eng_zstream_read(f->zs, buf, (size_t)n, what);
}

/* After the last item: the file must end here (for gzip: no trailing bytes). */
static int idx_expect_end(idx_file *f)
{
    char items[48];
    snprintf(items, sizeof items, "%u items", f->count);
    return eng_zstream_expect_end(f->zs, items);
}

static int idx_header(idx_file *f, bool images);

/* Opens root/name, else root/name.gz, and validates the header. */
static int idx_open(const char *root, const char *name, bool images, idx_file *f)
{
    memset(f, 0, sizeof *f);
    int fd = -1;
    struct stat st;
    for (int gz = 0; gz < 2 && fd < 0; gz++) {
        int len = snprintf(f->path, sizeof f->path, "%s/%s%s", root, name, gz ? ".gz" : "");
        if (len < 0 || (size_t)len >= sizeof f->path)
            return eng_error(ENG_EINVAL, "%s: path too long", root);
        /* a FIFO or a device in the folder is refused, never opened */
        int rc = eng_file_open(f->path, ENG_FILE_RESOLVED, &fd, &st);
        if (rc && rc != ENG_ENOENT)
            return rc;
    }
    if (fd < 0) {
        int rc = check_root(root);
        if (rc)
            return rc;
        return eng_error(ENG_ENOENT, "%s: missing %s (or %s.gz) " IDX_EXPECTED, root, name, name);
    }
    f->size = (uint64_t)st.st_size;
    int rc = eng_zstream_open_fd(fd, f->path, &f->zs);
    if (rc)
        return rc;
    return idx_header(f, images);
}

/* The header, checked against the file size when it is not compressed. */
static int idx_header(idx_file *f, bool images)
{
    f->plain = !eng_zstream_compressed(f->zs);
    unsigned char h[16];
    f->header = images ? 16 : 8;
    int rc = idx_read(f, h, f->header, "header");
    if (rc) {
        idx_close(f);
        return rc;
    }
    uint32_t magic = be32(h), want = images ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC;
    if (magic != want) {
        idx_close(f);
        return eng_error(ENG_EFORMAT, "%s: bad magic number 0x%08x (expected 0x%08x, an IDX %s file)", f->path, magic,
                         want, images ? "image" : "label");
    }
    f->count = be32(h + 4);
    if (f->count > IDX_MAX_ITEMS) { /* before allocating for a damaged header */
        idx_close(f);
        return eng_error(ENG_EFORMAT, "%s: implausible item count %u (at most %u)", f->path, f->count,
                         IDX_MAX_ITEMS);
    }
    f->item = 1;
    if (images) {
        uint32_t rows = be32(h + 8), cols = be32(h + 12);
        if (rows != IDX_SIDE || cols != IDX_SIDE) {
            idx_close(f);
            return eng_error(ENG_EFORMAT, "%s: images are %ux%u, expected %dx%d", f->path, rows, cols, IDX_SIDE,
                             IDX_SIDE);
        }
        f->item = IDX_SIDE * IDX_SIDE;
    }
    uint64_t want_size = f->header + (uint64_t)f->count * f->item;
    /* before anything is allocated for the items: deflate expands at most
     * 1032:1, so a small compressed file cannot hold a large count */
    if (!f->plain && want_size / 1032 > f->size) {
        idx_close(f);
        return eng_error(ENG_EFORMAT, "%s: %u %s (%llu bytes) cannot be in %llu compressed bytes", f->path, f->count,
                         images ? "images" : "labels", (unsigned long long)want_size, (unsigned long long)f->size);
    }
    if (f->plain && f->size != want_size) {
        idx_close(f);
        return eng_error(ENG_EFORMAT, "%s: %s: %llu bytes, expected %llu for %u %s", f->path,
                         f->size < want_size ? "truncated" : "unexpected data at the end", (unsigned long long)f->size,
                         (unsigned long long)want_size, f->count, images ? "images" : "labels");
    }
    return 0;
}

/* Both files of a split, headers checked and counts agreeing. */
static int idx_open_split(const char *root, eng_split split, idx_file *img, idx_file *lab)
{
    int rc = idx_open(root, idx_names[split][0], true, img);
    if (rc)
        return rc;
    rc = idx_open(root, idx_names[split][1], false, lab);
    if (rc) {
        idx_close(img);
        return rc;
    }
    if (img->count != lab->count) {
        rc = eng_error(ENG_EFORMAT, "%s: %u labels but %s has %u images", lab->path, lab->count, img->path,
                       img->count);
        idx_close(img);
        idx_close(lab);
    }
    return rc;
}

int eng_dataset_idx_load(const char *root, eng_split split, int64_t limit, eng_dataset **out)
{
    *out = NULL;
    if (split != ENG_SPLIT_TRAIN && split != ENG_SPLIT_TEST)
        return eng_error(ENG_EINVAL, "unknown dataset split %d", (int)split);
    idx_file img, lab;
    int rc = idx_open_split(root, split, &img, &lab);
    if (rc)
        return rc;
    int64_t count = img.count;
    int64_t n = limit > 0 && limit < count ? limit : count;
    uint8_t *raw = NULL;
    unsigned char *scratch = NULL;
    eng_dataset *ds = NULL;
    eng_shape shape = eng_shape3(1, IDX_SIDE, IDX_SIDE);
    if ((rc = eng_dataset_alloc(&shape, IDX_CLASSES, n, &ds)))
        goto out;
    /* All labels are read and checked, also past the limit. */
    raw = malloc((size_t)count + 1);
    if (!raw) {
        rc = eng_error(ENG_ENOMEM, "%s: out of memory for %lld labels", lab.path, (long long)count);
        goto out;
    }
    if ((rc = idx_read(&lab, raw, (uint64_t)count, "labels")) || (rc = idx_expect_end(&lab)))
        goto out;
    for (int64_t i = 0; i < count; i++)
        if (raw[i] >= IDX_CLASSES) {
            rc = eng_error(ENG_EFORMAT, "%s: label %u of item %lld is not below %d", lab.path, raw[i], (long long)i,
                           IDX_CLASSES);
            goto out;
        }
    for (int64_t i = 0; i < n; i++)
        ds->labels[i] = raw[i];
    if ((rc = idx_read(&img, ds->images, (uint64_t)n * img.item, "images")))
        goto out;
    if (!img.plain) {
        /* A compressed file's length is only known by decompressing it: read
         * the rest so that truncation and CRC errors are still caught. */
        const size_t chunk = 1u << 20;
        scratch = malloc(chunk);
        if (!scratch) {
            rc = eng_error(ENG_ENOMEM, "out of memory");
            goto out;
        }
        for (uint64_t left = (uint64_t)(count - n) * img.item; left > 0;) {
            uint64_t k = left < chunk ? left : chunk;
            if ((rc = idx_read(&img, scratch, k, "images")))
                goto out;
            left -= k;
        }
        if ((rc = idx_expect_end(&img)))
            goto out;
    }
out:
    idx_close(&img);
    idx_close(&lab);
    free(raw);
    free(scratch);
    if (rc) {
        eng_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return 0;
}

int eng_dataset_idx_parse(const void *buf, size_t len, bool images, uint32_t *count, uint8_t **items)
{
    *count = 0;
    *items = NULL;
    idx_file f;
    memset(&f, 0, sizeof f);
    snprintf(f.path, sizeof f.path, "IDX buffer");
    f.size = len;
    int rc = eng_zstream_open_mem(buf, len, f.path, &f.zs);
    if (rc == 0)
        rc = idx_header(&f, images); /* closes the stream on failure */
    if (rc)
        return rc;
    uint8_t *v = malloc((size_t)f.count * f.item + 1);
    if (!v) {
        idx_close(&f);
        return eng_error(ENG_ENOMEM, "%s: out of memory for %u items", f.path, f.count);
    }
    rc = idx_read(&f, v, (uint64_t)f.count * f.item, images ? "images" : "labels");
    if (rc == 0)
        rc = idx_expect_end(&f);
    for (uint32_t i = 0; rc == 0 && !images && i < f.count; i++)
        if (v[i] >= IDX_CLASSES)
            rc = eng_error(ENG_EFORMAT, "%s: label %u of item %u is not below %d", f.path, v[i], i, IDX_CLASSES);
    idx_close(&f);
    if (rc) {
        free(v);
        return rc;
    }
    *count = f.count;
    *items = v;
    return 0;
}

int eng_dataset_idx_probe(const char *root, char *msg, size_t msg_len)
{
    if (msg_len)
        msg[0] = '\0';
    for (int split = 0; split < 2; split++) {
        idx_file img, lab;
        int rc = idx_open_split(root, (eng_split)split, &img, &lab);
        if (rc) {
            snprintf(msg, msg_len, "%s", eng_last_error());
            return rc;
        }
        idx_close(&img);
        idx_close(&lab);
    }
    return 0;
}
