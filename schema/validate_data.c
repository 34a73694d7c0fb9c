/* Validation of the `data:` section into eng_data_desc. */
#include <stdio.h>
#include <string.h>

#include "engine/checked.h"
#include "schema/paths.h"
#include "schema/validate.h"

static const char *const dataset_names[] = {
    [ENG_DATASET_CIFAR10] = "cifar10",
    [ENG_DATASET_CIFAR100] = "cifar100",
    [ENG_DATASET_MNIST] = "mnist",
    [ENG_DATASET_FASHION_MNIST] = "fashion_mnist",
    [ENG_DATASET_SYNTHETIC] = "synthetic",
};
_Static_assert(V_NELEM(dataset_names) == ENG_DATASET_SYNTHETIC + 1, "every dataset kind has a spec name");

const char *const spec_data_keys[] = {"dataset",   "root",    "batch_size", "eval_batch_size", "shuffle",
                                      "drop_last", "normalize", "augment",  "limit",           "synthetic"};
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
    if (v_enum(c, node, path, "dataset", dataset_names, V_NELEM(dataset_names), &kind) == V_ABSENT)
        v_missing(c, node, path, "dataset", "(cifar10, cifar100, mnist, fashion_mnist or synthetic)");
    if (kind >= 0)
        d->dataset = (eng_dataset_kind)kind;
    ok->geometry = kind >= 0;
    int e2 = c->diags->n + c->ndropped;

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
    } else if (kind == ENG_DATASET_MNIST || kind == ENG_DATASET_FASHION_MNIST) {
        snprintf(d->root, sizeof d->root, "%s",
                 kind == ENG_DATASET_MNIST ? SPEC_MNIST_ROOT : SPEC_FASHION_MNIST_ROOT);
        /* a problem with the default root is shown at the dataset */
        vctx_record(c, "data.root", yn_map_get(node, "dataset"));
    } else if (kind == ENG_DATASET_CIFAR10 || kind == ENG_DATASET_CIFAR100) {
        v_missing(c, node, path, "root",
                  kind == ENG_DATASET_CIFAR10 ? "for cifar10 (the directory with data_batch_1.bin ... test_batch.bin)"
                                              : "for cifar100 (the directory with train.bin and test.bin)");
    }

    ok->root = kind >= 0 && c->diags->n + c->ndropped == e2;
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
            snprintf(why, sizeof why, "only for dataset synthetic, not %s", dataset_names[kind]);
            v_not_here(c, node, path, "synthetic", why);
        } else {
            int before = c->diags->n + c->ndropped;
            v_synthetic(c, n, d);
            ok->geometry &= c->diags->n + c->ndropped == before;
        }
    }
    ok->all = c->diags->n + c->ndropped == e0;
}
