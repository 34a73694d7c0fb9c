/* dataset: npy - NumPy arrays a user hands over: root/train.npz and
 * root/test.npz (arrays x and y), or root/train_x.npy, train_y.npy,
 * test_x.npy, test_y.npy. x is uint8 or float32: (N, C, H, W), (N, H, W, C)
 * with layout nhwc, (N, H, W) for one channel, or (N, F) for flat
 * features; y holds integer labels, (N) or (N, 1). Files are memory-mapped;
 * uint8 images in C, H, W order are used in place, without a copy. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/dataset.h"
#include "engine/error.h"
#include "engine/npy.h"

#define NPY_EXPECTED                                                                                                   \
    "(expected train.npz and test.npz with arrays x and y, or train_x.npy, "                                           \
    "train_y.npy, "                                                                                                    \
    "test_x.npy, test_y.npy)"
/* enough of a deflated member to hold any real .npy header */
#define HEADER_BYTES 65536

static const char *const split_names[2] = {[ENG_SPLIT_TRAIN] = "train", [ENG_SPLIT_TEST] = "test"};

typedef struct npy_file {
    void *base;
    size_t len;
    char path[ENG_PATH_MAX + 32];
} npy_file;

/* One split's x and y, wherever they are. */
typedef struct npy_split {
    npy_file xf, yf;       /* yf unused for .npz (both arrays in xf) */
    eng_npz_member xm, ym; /* the members of an .npz */
    eng_npy_array x, y;
    char xname[ENG_PATH_MAX + 48], yname[ENG_PATH_MAX + 48]; /* for messages */
} npy_split;

static int map_file(const char *path, npy_file *f)
{
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return eng_error(errno == ENOENT ? ENG_ENOENT : ENG_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        return eng_error(ENG_EIO, "%s: %s", path, S_ISREG(st.st_mode) ? strerror(e) : "not a regular file");
    }
    if (st.st_size == 0) {
        close(fd);
        return eng_error(ENG_EFORMAT, "%s: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return eng_error(e == ENOMEM ? ENG_ENOMEM : ENG_EIO, "%s: cannot map: %s", path, strerror(e));
    f->base = p;
    f->len = (size_t)st.st_size;
    return 0;
}

static void unmap_file(npy_file *f)
{
    if (f->base)
        munmap(f->base, f->len);
    f->base = NULL;
}

static void split_close(npy_split *s)
{
    free(s->xm.owned);
    free(s->ym.owned);
    unmap_file(&s->xf);
    unmap_file(&s->yf);
    memset(s, 0, sizeof *s);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Opens a split's arrays; with header_only, only x's header (and all of y) is
 * read. */
static int split_open(const char *root, eng_split split, bool header_only, npy_split *s)
{
    memset(s, 0, sizeof *s);
    struct stat st;
    if (stat(root, &st) != 0)
        return eng_error(errno == ENOENT ? ENG_ENOENT : ENG_EIO, "%s: %s " NPY_EXPECTED, root,
                         errno == ENOENT ? "no such directory" : strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return eng_error(ENG_EIO, "%s: not a directory " NPY_EXPECTED, root);
    const char *sn = split_names[split];
    char npz[ENG_PATH_MAX + 32], xp[ENG_PATH_MAX + 32], yp[ENG_PATH_MAX + 32];
    snprintf(npz, sizeof npz, "%s/%s.npz", root, sn);
    snprintf(xp, sizeof xp, "%s/%s_x.npy", root, sn);
    snprintf(yp, sizeof yp, "%s/%s_y.npy", root, sn);
    int rc;
    if (exists(npz)) {
        if ((rc = map_file(npz, &s->xf)))
            return rc;
        snprintf(s->xname, sizeof s->xname, "%s: x", npz);
        snprintf(s->yname, sizeof s->yname, "%s: y", npz);
        if ((rc = eng_npz_find(s->xf.base, s->xf.len, npz, "x.npy", header_only ? HEADER_BYTES : 0, &s->xm)) ||
            (rc = eng_npz_find(s->xf.base, s->xf.len, npz, "y.npy", 0, &s->ym)))
            goto fail;
        bool partial = header_only && s->xm.owned != NULL;
        if ((rc = eng_npy_parse(s->xm.data, s->xm.len, s->xname, partial, &s->x)) ||
            (rc = eng_npy_parse(s->ym.data, s->ym.len, s->yname, false, &s->y)))
            goto fail;
        return 0;
    }
    if (!exists(xp) && !exists(yp))
        return eng_error(ENG_ENOENT, "%s: missing %s.npz (or %s_x.npy and %s_y.npy) " NPY_EXPECTED, root, sn, sn, sn);
    if ((rc = map_file(xp, &s->xf)) || (rc = map_file(yp, &s->yf)))
        goto fail;
    snprintf(s->xname, sizeof s->xname, "%s", xp);
    snprintf(s->yname, sizeof s->yname, "%s", yp);
    if ((rc = eng_npy_parse(s->xf.base, s->xf.len, xp, false, &s->x)) ||
        (rc = eng_npy_parse(s->yf.base, s->yf.len, yp, false, &s->y)))
        goto fail;
    return 0;
fail:
    split_close(s);
    return rc;
}

static void fmt_shape(const eng_npy_array *a, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < a->ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (n < len)
        snprintf(buf + n, len - n, "]");
}

/* x's dtype and dimensions -> the per-sample shape (C, H, W) / (F). */
static int x_geometry(const npy_split *s, eng_layout layout, eng_shape *shape, bool *f32)
{
    const eng_npy_array *x = &s->x;
    char sh[160];
    fmt_shape(x, sh, sizeof sh);
    if (x->kind == 'u' && x->itemsize == 1)
        *f32 = false;
    else if (x->kind == 'f' && x->itemsize == 4)
        *f32 = true;
    else
        return eng_error(ENG_EFORMAT,
                         "%s: dtype '%s', expected uint8 (pixels 0..255) or "
                         "float32 (convert with "
                         "x.astype(np.float32))",
                         s->xname, x->descr);
    if (x->ndim < 2 || x->ndim > 4)
        return eng_error(ENG_EFORMAT,
                         "%s: shape %s, expected (N, C, H, W), (N, H, W, C) with "
                         "layout nhwc, (N, H, W) or (N, F)",
                         s->xname, sh);
    if (x->shape[0] < 1)
        return eng_error(ENG_EFORMAT, "%s: shape %s holds no samples", s->xname, sh);
    if (x->shape[0] > INT32_MAX)
        return eng_error(ENG_ELIMIT, "%s: %lld samples, at most %d", s->xname, (long long)x->shape[0], INT32_MAX);
    for (int i = 1; i < x->ndim; i++)
        if (x->shape[i] < 1 || x->shape[i] > (1 << 24))
            return eng_error(ENG_EFORMAT, "%s: shape %s: every size must be in [1, %d]", s->xname, sh, 1 << 24);
    if (x->ndim == 2) {
        *shape = eng_shape1(x->shape[1]);
    } else if (x->ndim == 3) {
        *shape = eng_shape3(1, x->shape[1], x->shape[2]);
    } else {
        bool nhwc = layout == ENG_LAYOUT_NHWC;
        int64_t c = nhwc ? x->shape[3] : x->shape[1];
        if (c > ENG_MAX_CHANNELS)
            return eng_error(ENG_EFORMAT, "%s: shape %s read as %s has %lld channels, at most %d (%s)", s->xname, sh,
                             nhwc ? "(N, H, W, C)" : "(N, C, H, W)", (long long)c, ENG_MAX_CHANNELS,
                             nhwc ? "is it (N, C, H, W)? then leave layout out"
                                  : "is it (N, H, W, C)? then set data.layout: nhwc");
        *shape = nhwc ? eng_shape3(c, x->shape[1], x->shape[2]) : eng_shape3(c, x->shape[2], x->shape[3]);
    }
    if (eng_shape_numel(shape) > (1 << 24))
        return eng_error(ENG_ELIMIT, "%s: %lld values per sample, at most %d", s->xname,
                         (long long)eng_shape_numel(shape), 1 << 24);
    return 0;
}

static int64_t label_at(const eng_npy_array *y, int64_t i)
{
    const unsigned char *p = y->data + i * y->itemsize;
    switch (y->itemsize) {
    case 1: return y->kind == 'u' ? (int64_t)p[0] : (int64_t)(int8_t)p[0];
    case 2: {
        uint16_t v = (uint16_t)(p[0] | p[1] << 8);
        return y->kind == 'u' ? (int64_t)v : (int64_t)(int16_t)v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return y->kind == 'u' ? (int64_t)v : (int64_t)(int32_t)v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v > (uint64_t)INT64_MAX && y->kind == 'u' ? INT64_MAX : (int64_t)v;
    }
    }
}

/* y against x: integer dtype, one label per sample, each in [0, classes)
 * (classes 0: only >= 0). The largest label goes to *max_label. */
static int check_labels(const npy_split *s, int64_t classes, int64_t *max_label)
{
    const eng_npy_array *y = &s->y;
    char sh[160];
    fmt_shape(y, sh, sizeof sh);
    if ((y->kind != 'u' && y->kind != 'i') ||
        (y->itemsize != 1 && y->itemsize != 2 && y->itemsize != 4 && y->itemsize != 8))
        return eng_error(ENG_EFORMAT,
                         "%s: dtype '%s', expected integer class labels (convert "
                         "with y.astype(np.int64))",
                         s->yname, y->descr);
    if (!(y->ndim == 1 || (y->ndim == 2 && y->shape[1] == 1)))
        return eng_error(ENG_EFORMAT, "%s: shape %s, expected (N) or (N, 1) class labels", s->yname, sh);
    if (y->shape[0] != s->x.shape[0])
        return eng_error(ENG_EFORMAT, "%s: %lld labels for the %lld samples of x", s->yname, (long long)y->shape[0],
                         (long long)s->x.shape[0]);
    int64_t mx = -1;
    for (int64_t i = 0; i < y->count; i++) {
        int64_t v = label_at(y, i);
        if (v < 0 || v >= (classes > 0 ? classes : (int64_t)1 << 24))
            return eng_error(ENG_EFORMAT, "%s: label y[%lld] = %lld, expected a class in [0, %lld)", s->yname,
                             (long long)i, (long long)v, (long long)(classes > 0 ? classes : (int64_t)1 << 24));
        if (v > mx)
            mx = v;
    }
    *max_label = mx;
    return 0;
}

int eng_dataset_npy_info(const char *root, eng_layout layout, int64_t classes, eng_npy_info *out)
{
    memset(out, 0, sizeof *out);
    int64_t mx = -1;
    for (int sp = 0; sp < 2; sp++) {
        npy_split s;
        int rc = split_open(root, (eng_split)sp, true, &s);
        if (rc)
            return rc;
        eng_shape shape;
        bool f32;
        int64_t m;
        rc = x_geometry(&s, layout, &shape, &f32);
        if (!rc)
            rc = check_labels(&s, classes, &m);
        if (!rc && sp == ENG_SPLIT_TEST && (!eng_shape_equal(&shape, &out->shape) || f32 != out->f32)) {
            char a[64], b[64];
            eng_shape_str(&out->shape, a, (int)sizeof a);
            eng_shape_str(&shape, b, (int)sizeof b);
            rc = eng_error(ENG_EFORMAT, "%s: samples of %s %s, but the training samples are %s %s", s.xname, b,
                           f32 ? "float32" : "uint8", a, out->f32 ? "float32" : "uint8");
        }
        if (rc) {
            split_close(&s);
            return rc;
        }
        out->shape = shape;
        out->f32 = f32;
        out->n[sp] = s.x.shape[0];
        if (m > mx)
            mx = m;
        split_close(&s);
    }
    out->classes = classes > 0 ? classes : mx + 1;
    if (out->classes < 2)
        return eng_error(ENG_EFORMAT, "%s: every label is %lld: at least 2 classes are needed", root, (long long)mx);
    return 0;
}

int eng_dataset_npy_probe(const eng_data_desc *d, const char *root, char *msg, size_t msg_len)
{
    eng_npy_info info;
    int rc = eng_dataset_npy_info(root, d->layout, d->classes, &info);
    if (rc)
        snprintf(msg, msg_len, "%s", eng_last_error());
    return rc;
}

int eng_dataset_npy_load(const eng_data_desc *d, const char *root, eng_split split, int64_t limit, eng_dataset **out)
{
    *out = NULL;
    int64_t classes = d->classes > 0 ? d->classes : d->file_classes;
    if (classes <= 0) {
        eng_npy_info info;
        int rc = eng_dataset_npy_info(root, d->layout, 0, &info);
        if (rc)
            return rc;
        classes = info.classes;
    }
    npy_split s;
    int rc = split_open(root, split, false, &s);
    if (rc)
        return rc;
    eng_shape shape;
    bool f32;
    int64_t mx;
    if ((rc = x_geometry(&s, d->layout, &shape, &f32)) || (rc = check_labels(&s, classes, &mx)))
        goto done;
    if (d->file_shape.ndim > 0 && !eng_shape_equal(&shape, &d->file_shape)) {
        char a[64], b[64];
        eng_shape_str(&shape, a, (int)sizeof a);
        eng_shape_str(&d->file_shape, b, (int)sizeof b);
        rc = eng_error(ENG_EFORMAT,
                       "%s: samples of %s, but %s when the spec was checked (the "
                       "file changed?)",
                       s.xname, a, b);
        goto done;
    }
    int64_t total = s.x.shape[0];
    int64_t n = limit > 0 && limit < total ? limit : total;
    int64_t numel = eng_shape_numel(&shape);
    size_t esize = f32 ? 4 : 1;
    bool nhwc = s.x.ndim == 4 && d->layout == ENG_LAYOUT_NHWC;
    /* used in place: C-ordered, and aligned for floats */
    bool in_place = !nhwc && (!f32 || ((uintptr_t)s.x.data % 4) == 0);
    eng_dataset *ds;
    if ((rc = eng_dataset_alloc_typed(&shape, classes, n, f32, !in_place, &ds)))
        goto done;
    if (in_place) {
        ds->images = (uint8_t *)s.x.data;
        /* the dataset keeps the mapping (or the inflated member) alive */
        if (s.xm.owned) {
            ds->backing = s.xm.owned;
            s.xm.owned = NULL;
        } else {
            ds->backing = s.xf.base;
            ds->backing_len = s.xf.len;
            s.xf.base = NULL;
        }
    } else if (!nhwc) {
        memcpy(ds->images, s.x.data, (size_t)n * (size_t)numel * esize);
    } else {
        /* (N, H, W, C) -> (N, C, H, W) */
        int64_t c = shape.d[0], hw = shape.d[1] * shape.d[2];
        for (int64_t i = 0; i < n; i++) {
            const unsigned char *src = s.x.data + (size_t)(i * numel) * esize;
            unsigned char *dst = ds->images + (size_t)(i * numel) * esize;
            for (int64_t p = 0; p < hw; p++)
                for (int64_t k = 0; k < c; k++)
                    memcpy(dst + (size_t)(k * hw + p) * esize, src + (size_t)(p * c + k) * esize, esize);
        }
    }
    for (int64_t i = 0; i < n; i++)
        ds->labels[i] = (int32_t)label_at(&s.y, i);
    *out = ds;
done:
    split_close(&s);
    return rc;
}
