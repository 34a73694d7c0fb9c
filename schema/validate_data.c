/* Validation of the `data:` section into eng_data_desc. */
#include <stdio.h>
#include <string.h>

#include "datasets/manifest.h"
#include "engine/checked.h"
#include "schema/paths.h"
#include "schema/validate.h"

const char *const spec_data_keys[] = {"dataset",   "root",      "batch_size", "eval_batch_size", "shuffle",
                                      "drop_last", "normalize", "augment",    "limit",           "synthetic",
                                      "size",      "channels",  "split",      "layout",          "classes",
                                      "download"};
const int spec_n_data_keys = V_NELEM(spec_data_keys);

#define MAX_BATCH (1 << 20)

/* mean: or std: of normalize: a list of 1 to ENG_MAX_CHANNELS numbers. */
static int norm_list(vctx *c, const ynode *map, const char *parent, const char *key, bool positive, float *out)
{
    char p[SPEC_PATH_LEN], q[SPEC_PATH_LEN];
    const ynode *n = vget(c, map, parent, key, p);
    if (!n) {
        v_missing(c, map, parent, key, "(a list with one number, or one per channel)");
        return -1;
    }
    if (!vn_seq(c, n, p, "of numbers, one per channel"))
        return -1;
    if (n->n < 1 || n->n > ENG_MAX_CHANNELS) {
        vctx_error(c, n->line, n->col, p, "expected 1 to %d numbers, found %lld", ENG_MAX_CHANNELS, (long long)n->n);
        return -1;
    }
    int ok = 1;
    for (int64_t i = 0; i < n->n; i++) {
        vpath_index(q, p, i);
        vctx_record(c, q, n->v[i]);
        vrange r = positive ? (vrange){0, 1e30, true, false} : (vrange){-1e30, 1e30, false, false};
        if (vn_float(c, n->v[i], q, r, &out[i]) != V_OK)
            ok = 0;
    }
    return ok ? (int)n->n : -1;
}

static void v_normalize(vctx *c, const ynode *n, eng_data_desc *d)
{
    static const char *const keys[] = {"mean", "std"};
    const char *path = "data.normalize";
    if (!vn_map(c, n, path, "{mean: [...], std: [...]}"))
        return;
    v_check_keys(c, n, path, keys, V_NELEM(keys), NULL, NULL);
    int nm = norm_list(c, n, path, "mean", false, d->mean);
    int ns = norm_list(c, n, path, "std", true, d->std);
    if (nm > 0 && ns > 0 && nm != ns) {
        const ynode *sn = yn_map_get(n, "std");
        vctx_error(c, sn->line, sn->col, "data.normalize.std", "expected as many numbers as mean (%d), found %d", nm,
                   ns);
        return;
    }
    if (nm > 0 && ns > 0) {
        d->normalize = true;
        d->n_norm = nm;
    }
}

static void v_synthetic(vctx *c, const ynode *n, eng_data_desc *d)
{
    static const char *const keys[] = {"shape", "classes", "train", "test"};
    const char *path = "data.synthetic";
    char p[SPEC_PATH_LEN], q[SPEC_PATH_LEN];
    if (!vn_map(c, n, path, "{shape, classes, train, test}"))
        return;
    v_check_keys(c, n, path, keys, V_NELEM(keys), NULL, NULL);
    const ynode *sh = vget(c, n, path, "shape", p);
    if (sh && vn_seq(c, sh, p, "of 1 to 3 sizes: [features], [tokens, channels] or [channels, height, width]")) {
        if (sh->n < 1 || sh->n > 3) {
            vctx_error(c, sh->line, sh->col, p, "expected 1 to 3 sizes, found %lld", (long long)sh->n);
        } else {
            eng_shape s = {.ndim = (int)sh->n};
            bool ok = true;
            int64_t numel = 1;
            for (int64_t i = 0; i < sh->n; i++) {
                vpath_index(q, p, i);
                vctx_record(c, q, sh->v[i]);
                ok &= vn_int(c, sh->v[i], q, 1, 1 << 16, &s.d[i]) == V_OK;
                if (ok)
                    numel = eng_size_mul(numel, s.d[i]);
            }
            if (ok && numel > (1 << 24)) {
                vctx_error(c, sh->line, sh->col, p, "expected at most %d values per sample, found %lld", 1 << 24,
                           (long long)numel);
                ok = false;
            }
            if (ok)
                d->synth_shape = s;
        }
    }
    v_int(c, n, path, "classes", 2, 1 << 20, &d->synth_classes);
    v_int(c, n, path, "train", 1, 1 << 26, &d->synth_train);
    v_int(c, n, path, "test", 1, 1 << 26, &d->synth_test);
}

/* The keys of dataset: folder (size, channels, split) and npy (layout, classes). */
static void v_user_files(vctx *c, const ynode *node, int kind, eng_data_desc *d)
{
    const char *path = "data";
    char p[SPEC_PATH_LEN], q[SPEC_PATH_LEN];
    static const struct {
        const char *key;
        int kind;
    } only[] = {{"size", ENG_DATASET_FOLDER},
                {"channels", ENG_DATASET_FOLDER},
                {"split", ENG_DATASET_FOLDER},
                {"layout", ENG_DATASET_NPY},
                {"classes", ENG_DATASET_NPY}};
    for (int i = 0; i < V_NELEM(only); i++)
        if (kind >= 0 && kind != only[i].kind && yn_map_get(node, only[i].key)) {
            char why[96];
            snprintf(why, sizeof why, "only for dataset %s, not %s", eng_dataset_names[only[i].kind], eng_dataset_names[kind]);
            v_not_here(c, node, path, only[i].key, why);
        }
    if (kind == ENG_DATASET_FOLDER) {
        const ynode *n = vget(c, node, path, "size", p);
        if (!n) {
            v_missing(c, node, path, "size", "for dataset folder ([height, width] the images are resized and cropped to)");
        } else if (vn_seq(c, n, p, "[height, width]")) {
            if (n->n != 2) {
                vctx_error(c, n->line, n->col, p, "expected [height, width], found %lld size%s", (long long)n->n,
                           n->n == 1 ? "" : "s");
            } else {
                int64_t hw[2] = {0, 0};
                bool ok = true;
                for (int i = 0; i < 2; i++) {
                    vpath_index(q, p, i);
                    vctx_record(c, q, n->v[i]);
                    ok &= vn_int(c, n->v[i], q, 1, 4096, &hw[i]) == V_OK;
                }
                if (ok) {
                    d->image_h = hw[0];
                    d->image_w = hw[1];
                }
            }
        }
        if ((n = vget(c, node, path, "channels", p))) {
            char found[96];
            const char *v = n->kind == YN_SCALAR && !n->quoted ? n->s : NULL;
            if (v && (!strcmp(v, "1") || !strcmp(v, "3")))
                d->image_c = v[0] - '0';
            else
                vctx_error(c, n->line, n->col, p, "expected 1 (grayscale) or 3 (RGB), found %s",
                           vdescribe(n, found, sizeof found));
        }
        if ((n = vget(c, node, path, "split", p)) && vn_map(c, n, p, "{test: FRACTION, seed: N}")) {
            static const char *const keys[] = {"test", "seed"};
            v_check_keys(c, n, p, keys, V_NELEM(keys), NULL, NULL);
            const ynode *t = vget(c, n, p, "test", q);
            float frac;
            if (!t)
                v_missing(c, n, p, "test", "(the fraction of each class held out for testing, e.g. 0.2)");
            else if (vn_float(c, t, q, (vrange){0, 1, true, true}, &frac) == V_OK)
                d->split_test = frac;
            int64_t seed = 0;
            if (v_int(c, n, p, "seed", 0, INT64_MAX, &seed) == V_OK)
                d->split_seed = (uint64_t)seed;
        }
    } else if (kind == ENG_DATASET_NPY) {
        static const char *const layouts[] = {[ENG_LAYOUT_NCHW] = "nchw", [ENG_LAYOUT_NHWC] = "nhwc"};
        int layout = -1;
        if (v_enum(c, node, path, "layout", layouts, V_NELEM(layouts), &layout) == V_OK)
            d->layout = (eng_layout)layout;
        v_int(c, node, path, "classes", 2, 1 << 20, &d->classes);
    }
}

/* The folder `epochd data fetch` puts a standard dataset in under a data
 * root: the manifest's entry of that name (the service's data_manifest
 * first, then the built-in one). 0, 1 when no manifest names it, -1 on OOM. */
static int download_dir(const spec_options *o, const char *name, char *out, size_t len)
{
    const ds_entry *e = NULL;
    for (int i = 0; o->download_manifest && i < o->download_manifest->n && !e; i++)
        if (!strcmp(o->download_manifest->entries[i].name, name))
            e = &o->download_manifest->entries[i];
    if (e) {
        snprintf(out, len, "%s", e->dir);
        return 0;
    }
    ds_manifest *m = NULL;
    if (ds_manifest_builtin(&m))
        return -1;
    for (int i = 0; i < m->n && !e; i++)
        if (!strcmp(m->entries[i].name, name))
            e = &m->entries[i];
    if (e)
        snprintf(out, len, "%s", e->dir);
    ds_manifest_free(m);
    return e ? 0 : 1;
}

static bool standard_kind(int kind)
{
    return kind == ENG_DATASET_CIFAR10 || kind == ENG_DATASET_CIFAR100 || kind == ENG_DATASET_MNIST ||
           kind == ENG_DATASET_FASHION_MNIST;
}

/* data.download itself: a boolean, for the standard datasets only. */
static void v_download_key(vctx *c, const ynode *node, int kind, spec *s)
{
    if (v_bool(c, node, "data", "download", &s->download) != V_OK)
        return;
    if (kind >= 0 && !standard_kind(kind)) {
        char why[160];
        snprintf(why, sizeof why,
                 "only for the standard datasets (cifar10, cifar100, mnist, fashion_mnist), not %s",
                 eng_dataset_names[kind]);
        v_not_here(c, node, "data", "download", why);
    }
    if (kind < 0 || !standard_kind(kind))
        s->download = false;
}

/* download: true - the standard dataset is fetched when its folder is
 * missing. Without root the folder is DOWNLOAD_ROOT/<its folder>; a root
 * given must end in that folder, since that is where the fetch puts it. */
static void v_download_root(vctx *c, const ynode *node, int kind, const ynode *root, spec *s)
{
    if (!s->download)
        return;
    char p[SPEC_PATH_LEN];
    const ynode *n = vget(c, node, "data", "download", p);
    char dir[256];
    int rc = download_dir(c->opt, eng_dataset_names[kind], dir, sizeof dir);
    if (rc < 0) {
        c->oom = true;
        return;
    }
    if (rc > 0) {
        vctx_error(c, n->line, n->col, p, "no dataset manifest names %s", eng_dataset_names[kind]);
        return;
    }
    eng_data_desc *d = &s->data;
    if (!root) {
        char rel[ENG_PATH_MAX + 300];
        snprintf(rel, sizeof rel, "%s/%s", c->opt->download_root ? c->opt->download_root : "data", dir);
        if (spec_resolve_path("", rel, d->root, sizeof d->root))
            vctx_error(c, n->line, n->col, p, "the data root's path is longer than %d bytes", ENG_PATH_MAX - 1);
        vctx_record(c, "data.root", n); /* a problem with that folder is shown at download */
        return;
    }
    size_t len = strlen(d->root);
    while (len > 1 && d->root[len - 1] == '/')
        d->root[--len] = '\0';
    const char *base = strrchr(d->root, '/');
    base = base ? base + 1 : d->root;
    if (d->root[0] && strcmp(base, dir))
        vctx_error(c, root->line, root->col, "data.root",
                   "with download: true the folder must be named %s (where epochd data fetch puts %s), found %s "
                   "(or leave root out: the data root's %s)",
                   dir, eng_dataset_names[kind], base, dir);
}

void v_data(vctx *c, const ynode *node, spec *s, v_data_ok *ok)
{
    int e0 = c->diags->n + c->ndropped;
    *ok = (v_data_ok){0};
    eng_data_desc *d = &s->data;
    const char *path = "data";
    char p[SPEC_PATH_LEN];
    if (!vn_map(c, node, path, "(dataset, root, batch_size, ...)"))
        return;
    v_check_keys(c, node, path, spec_data_keys, spec_n_data_keys, NULL, NULL);

    int kind = -1;
    if (v_enum(c, node, path, "dataset", eng_dataset_names, ENG_DATASET__COUNT, &kind) == V_ABSENT)
        v_missing(c, node, path, "dataset", "(cifar10, cifar100, mnist, fashion_mnist, synthetic, folder or npy)");
    if (kind >= 0)
        d->dataset = (eng_dataset_kind)kind;
    ok->geometry = kind >= 0;
    int e2 = c->diags->n + c->ndropped;

    v_download_key(c, node, kind, s);
    const ynode *root = vget(c, node, path, "root", p);
    if (root && kind == ENG_DATASET_SYNTHETIC) {
        v_not_here(c, node, path, "root", "not used by dataset synthetic (it has no files)");
    } else if (root) {
        const char *r;
        if (vn_str(c, root, p, &r) == V_OK) {
            if (!r[0])
                vctx_error(c, root->line, root->col, p, "expected a directory, found an empty string");
            else if (spec_resolve_path(c->dir, r, d->root, sizeof d->root))
                vctx_error(c, root->line, root->col, p, "the path is longer than %d bytes", ENG_PATH_MAX - 1);
        }
    } else if (s->download) {
        /* without root: the data root's folder (v_download_root) */
    } else if (kind == ENG_DATASET_MNIST || kind == ENG_DATASET_FASHION_MNIST) {
        snprintf(d->root, sizeof d->root, "%s",
                 kind == ENG_DATASET_MNIST ? SPEC_MNIST_ROOT : SPEC_FASHION_MNIST_ROOT);
        /* a problem with the default root is shown at the dataset */
        vctx_record(c, "data.root", yn_map_get(node, "dataset"));
    } else if (kind == ENG_DATASET_CIFAR10 || kind == ENG_DATASET_CIFAR100) {
        v_missing(c, node, path, "root",
                  kind == ENG_DATASET_CIFAR10 ? "for cifar10 (the directory with data_batch_1.bin ... test_batch.bin)"
                                              : "for cifar100 (the directory with train.bin and test.bin)");
    } else if (kind == ENG_DATASET_FOLDER) {
        v_missing(c, node, path, "root", "for folder (the image folder: ROOT/train/<class>/..., ROOT/test/<class>/...)");
    } else if (kind == ENG_DATASET_NPY) {
        v_missing(c, node, path, "root", "for npy (the directory with train.npz and test.npz, or train_x.npy ...)");
    }

    v_download_root(c, node, kind, root, s);
    int e3 = c->diags->n + c->ndropped;
    v_user_files(c, node, kind, d);
    /* folder, npy: the input shape comes from the files, and needs these keys */
    bool user_ok = c->diags->n + c->ndropped == e3;
    ok->root = kind >= 0 && c->diags->n + c->ndropped == e2;
    if (kind == ENG_DATASET_FOLDER || kind == ENG_DATASET_NPY)
        ok->geometry &= user_ok;
    v_int(c, node, path, "batch_size", 1, MAX_BATCH, &d->batch_size);
    if (v_int(c, node, path, "eval_batch_size", 1, MAX_BATCH, &d->eval_batch_size) != V_OK)
        d->eval_batch_size = d->batch_size;
    v_bool(c, node, path, "shuffle", &d->shuffle);
    v_bool(c, node, path, "drop_last", &d->drop_last);

    const ynode *n;
    if ((n = vget(c, node, path, "normalize", p)))
        v_normalize(c, n, d);
    if ((n = vget(c, node, path, "augment", p)) && vn_map(c, n, p, "{crop_padding, hflip}")) {
        static const char *const keys[] = {"crop_padding", "hflip"};
        v_check_keys(c, n, p, keys, V_NELEM(keys), NULL, NULL);
        v_int(c, n, p, "crop_padding", 0, 1024, &d->crop_padding);
        v_bool(c, n, p, "hflip", &d->hflip);
    }
    if ((n = vget(c, node, path, "limit", p)) && vn_map(c, n, p, "{train, test}")) {
        static const char *const keys[] = {"train", "test"};
        v_check_keys(c, n, p, keys, V_NELEM(keys), NULL, NULL);
        v_int(c, n, p, "train", 0, INT64_MAX, &d->limit_train);
        v_int(c, n, p, "test", 0, INT64_MAX, &d->limit_test);
    }
    if ((n = vget(c, node, path, "synthetic", p))) {
        if (kind >= 0 && kind != ENG_DATASET_SYNTHETIC) {
            char why[96];
            snprintf(why, sizeof why, "only for dataset synthetic, not %s", eng_dataset_names[kind]);
            v_not_here(c, node, path, "synthetic", why);
        } else {
            int before = c->diags->n + c->ndropped;
            v_synthetic(c, n, d);
            ok->geometry &= c->diags->n + c->ndropped == before;
        }
    }
    ok->all = c->diags->n + c->ndropped == e0;
}
