/* The validator: a spec tree into a spec, then the checks that need the
 * whole picture (dataset geometry, data roots and files, the engine's model
 * build, parameter and memory limits). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/error.h"
#include "datasets/folder.h"
#include "engine/checked.h"
#include "engine/dataset.h"
#include "engine/error.h"
#include "engine/file.h"
#include "engine/model.h"
#include "engine/weights.h"
#include "schema/alloc.h"
#include "schema/paths.h"
#include "schema/validate.h"

/* images of a folder dataset decoded by a check: the first of each class, then spread evenly */
#define FOLDER_SAMPLE 32

static const char *const top_keys[] = {"name", "seed", "device", "priority", "data", "model", "train", "slurm"};

extern const char *const spec_data_keys[], *const spec_train_keys[], *const spec_optimizer_keys[];
extern const int spec_n_data_keys, spec_n_train_keys, spec_n_optimizer_keys;
int spec_model_keys(const char **out, int cap);
void spec_layers_free(eng_layer_desc *l, int64_t n);

static bool in_list(const char *key, const char *const *list, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(key, list[i]))
            return true;
    return false;
}

const char *v_section_of(const char *key, const char *except)
{
    const char *model[32];
    int nmodel = spec_model_keys(model, 32);
    struct {
        const char *name;
        const char *const *keys;
        int n;
    } secs[] = {
        {"", top_keys, V_NELEM(top_keys)},
        {"data", spec_data_keys, spec_n_data_keys},
        {"model", model, nmodel},
        {"train", spec_train_keys, spec_n_train_keys},
        {"train.optimizer", spec_optimizer_keys, spec_n_optimizer_keys},
    };
    for (int i = 0; i < V_NELEM(secs); i++)
        if (strcmp(secs[i].name, except) && in_list(key, secs[i].keys, secs[i].n))
            return secs[i].name;
    return NULL;
}

void spec_desc_free(spec *s)
{
    for (int64_t i = 0; i < s->n_class_names; i++)
        free(s->class_names[i]);
    free(s->class_names);
    s->class_names = NULL;
    s->n_class_names = 0;
    free(s->model.units);
    free(s->model.channels);
    spec_layers_free(s->model.layers, s->model.n_layers);
    s->model.units = s->model.channels = NULL;
    s->model.layers = NULL;
    s->model.n_units = s->model.n_channels = s->model.n_layers = 0;
}

/* Run names end up in the database, in file names and on command lines. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128 || s[0] == '-' || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-' || ch == '.' || ch == '+' || ch == '='))
            return false;
    }
    return true;
}

#define NAME_RULE "1 to 128 of A-Z a-z 0-9 _ - . + =, not starting with - or ."

static void v_device(vctx *c, const ynode *n, spec *s)
{
    char found[96];
    const char *d = n->kind == YN_SCALAR && !n->quoted ? n->s : NULL;
    if (d && !strcmp(d, "auto")) {
        s->device = SPEC_DEVICE_AUTO;
    } else if (d && !strcmp(d, "cpu")) {
        s->device = SPEC_DEVICE_CPU;
    } else if (d && !strcmp(d, "cuda")) {
        s->device = SPEC_DEVICE_CUDA;
    } else if (d && !strncmp(d, "cuda:", 5) && d[5] >= '0' && d[5] <= '9' && strlen(d + 5) <= 4 &&
               strspn(d + 5, "0123456789") == strlen(d + 5)) {
        s->device = SPEC_DEVICE_CUDA;
        s->device_index = atoi(d + 5);
    } else {
        vctx_error(c, n->line, n->col, "device", "expected auto, cpu, cuda or cuda:N, found %s",
                   vdescribe(n, found, sizeof found));
    }
}

static const char *expected_files(eng_dataset_kind k)
{
    switch (k) {
    case ENG_DATASET_CIFAR10:
        return "the CIFAR-10 binary batches: data_batch_1.bin ... data_batch_5.bin, test_batch.bin";
    case ENG_DATASET_CIFAR100:
        return "the CIFAR-100 binary files: train.bin, test.bin";
    case ENG_DATASET_MNIST:
    case ENG_DATASET_FASHION_MNIST:
        return "the IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
               "t10k-labels-idx1-ubyte, gzipped or not";
    case ENG_DATASET_FOLDER:
        return "an image folder: ROOT/train/<class>/*.png|jpg and ROOT/test/<class>/..., or ROOT/<class>/... with "
               "data.split";
    case ENG_DATASET_NPY:
        return "train.npz and test.npz (arrays x and y), or train_x.npy, train_y.npy, test_x.npy, test_y.npy";
    default:
        return "the dataset's files";
    }
}

static void error_at(vctx *c, const char *path, const char *fmt, const char *a, const char *b)
{
    int line, col;
    vctx_locate(c, path, &line, &col);
    vctx_error(c, line, col, path, fmt, a, b);
}

/* A path the spec names (data.root, model.init_from): resolved (realpath)
 * and, with configured data roots, confined to them - before anything there
 * is looked at, so no byte of a file outside the roots is ever read. The
 * resolved path replaces the value: the engine opens exactly what was
 * checked, without following symbolic links (engine/file.h
 * ENG_FILE_RESOLVED), so a link swapped in later cannot lead out. Messages
 * show the path as the spec wrote it (made absolute), not where it leads.
 * False when refused (reported). */
static bool confine_path(vctx *c, const char *key, char *value, size_t len)
{
    const spec_options *o = c->opt;
    char real[ENG_PATH_MAX];
    if (spec_canonical_path(value, real, sizeof real)) {
        error_at(c, key, "%s: the resolved path is longer than %s bytes", value, "1023");
        return false;
    }
    if (o->n_data_roots > 0 && !spec_under_roots(real, o->data_roots, o->n_data_roots)) {
        char list[512] = "";
        for (int i = 0; i < o->n_data_roots; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", o->data_roots[i]);
        error_at(c, key, "%s is not under the configured data roots (%s)", value, list);
        return false;
    }
    snprintf(value, len, "%s", real);
    return true;
}

static void check_data_files(vctx *c, const eng_data_desc *d)
{
    struct stat st;
    const char *exp = expected_files(d->dataset);
    if (stat(d->root, &st)) {
        if (errno == ENOENT || errno == ENOTDIR)
            error_at(c, "data.root", "%s does not exist (expected %s)", d->root, exp);
        else
            error_at(c, "data.root", "%s cannot be read: %s", d->root, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        error_at(c, "data.root", "%s is not a directory (expected %s)", d->root, exp);
        return;
    }
    if (access(d->root, R_OK | X_OK)) {
        error_at(c, "data.root", "%s is not readable (%s)", d->root, strerror(errno));
        return;
    }
    if (d->dataset == ENG_DATASET_FOLDER || d->dataset == ENG_DATASET_NPY)
        return; /* check_folder, check_npy */
    char msg[1024] = "";
    int rc = eng_dataset_probe(d, msg, sizeof msg);
    if (rc == ENG_ENOMEM)
        c->oom = true;
    else if (rc < 0 && rc != ENG_ENOTSUP)
        error_at(c, "data.root", "%s%s", msg[0] ? msg : eng_strerror(rc), "");
}

/* dataset: folder - the tree's classes and counts, a sample of its images
 * decoded; fills the geometry and the class names. */
static void check_folder(vctx *c, spec *s)
{
    eng_data_desc *d = &s->data;
    ds_folder *f = NULL;
    int rc = ds_folder_scan(d->root, d->split_test, d->split_seed, &f);
    if (rc == DS_ENOMEM) {
        c->oom = true;
        return;
    }
    if (rc) {
        /* a tree that wants (or has no use for) data.split is shown there */
        const char *at = rc == DS_EINVAL && d->split_test > 0 ? "data.split" : "data.root";
        error_at(c, at, "%s%s", ds_last_error(), "");
        return;
    }
    rc = c->opt->check_files ? ds_folder_check(f, FOLDER_SAMPLE) : 0;
    if (rc == DS_ENOMEM)
        c->oom = true;
    else if (rc)
        error_at(c, "data.root", "%s%s", ds_last_error(), "");
    if (!rc) {
        d->file_classes = f->n_classes;
        d->file_shape = eng_shape3(d->image_c, d->image_h, d->image_w);
        s->class_names = calloc((size_t)f->n_classes, sizeof *s->class_names);
        if (!s->class_names) {
            c->oom = true;
        } else {
            for (int k = 0; k < f->n_classes; k++)
                if (!(s->class_names[k] = strdup(f->classes[k])))
                    c->oom = true;
            s->n_class_names = f->n_classes;
        }
    }
    ds_folder_free(f);
}

/* dataset: npy - headers, dtypes, shapes and every label; fills the geometry. */
static void check_npy(vctx *c, eng_data_desc *d)
{
    eng_npy_info info;
    int rc = eng_dataset_npy_info(d->root, d->layout, d->classes, &info);
    if (rc == ENG_ENOMEM) {
        c->oom = true;
    } else if (rc) {
        error_at(c, d->classes && strstr(eng_last_error(), "expected a class in") ? "data.classes" : "data.root",
                 "%s%s", eng_last_error(), "");
    } else {
        d->file_shape = info.shape;
        d->file_classes = info.classes;
    }
}

/* Looks at init_from without opening it; true when it is a readable regular
 * file (only then may the weights check open and read it). */
static bool check_init_file(vctx *c, const char *p)
{
    struct stat st;
    int rc = eng_file_check(p, ENG_FILE_RESOLVED, &st);
    char why[96];
    if (rc == ENG_ENOENT)
        error_at(c, "model.init_from", "%s %s", p, "does not exist (expected a safetensors file)");
    else if (rc && errno == 0) {
        snprintf(why, sizeof why, "is %s, not a regular file (expected a safetensors file)", eng_file_kind(st.st_mode));
        error_at(c, "model.init_from", "%s %s", p, why);
    } else if (rc)
        error_at(c, "model.init_from", "%s %s", p, "cannot be read");
    else if (access(p, R_OK))
        error_at(c, "model.init_from", "%s %s", p, "is not readable");
    else
        return true;
    return false;
}

typedef struct engine_ctx {
    vctx *c;
    int reports;
} engine_ctx;

static void engine_diag(void *arg, const char *path, const char *message)
{
    engine_ctx *e = arg;
    int line, col;
    vctx_locate(e->c, path, &line, &col);
    vctx_error(e->c, line, col, path ? path : "", "%s", message);
    e->reports++;
}

static void fmt_bytes(char *buf, size_t len, double b)
{
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, len, "%.1f GiB", b / (1024.0 * 1024 * 1024));
    else
        snprintf(buf, len, "%.1f MiB", b / (1024.0 * 1024));
}

/* init_ok: init_from was looked at and is a readable regular file (or the
 * files are not looked at): only then is it opened for the weights check. */
static void check_engine(vctx *c, spec *s, const eng_shape *input, int64_t classes, bool batch_ok, bool init_ok)
{
    engine_ctx e = {.c = c};
    eng_model *m = NULL;
    s->params = -1;
    eng_clear_error();
    int rc = eng_model_build(&s->model, input, classes, engine_diag, &e, &m);
    if (rc == ENG_ENOTSUP)
        return; /* this build's engine cannot build models yet: the model is not checked */
    if (rc == ENG_ENOMEM) {
        c->oom = true;
        return;
    }
    if (rc < 0) {
        if (!e.reports)
            error_at(c, "model", "%s%s", eng_last_error()[0] ? eng_last_error() : eng_strerror(rc), "");
        eng_model_free(m);
        return;
    }
    s->params = eng_model_param_count(m);
    /* init_from must fit this model exactly: every mismatch names its tensor */
    if (s->model.init_from[0] && c->opt->check_files && init_ok) {
        if (c->init_files) { /* a sweep's combinations share the file: read once */
            const char *why;
            const eng_st_file *f = spec_init_cache_get(c->init_files, s->model.init_from, &why);
            if (f)
                eng_model_check_weights_file(m, f, s->model.init_from, engine_diag, &e);
            else if (why)
                engine_diag(&e, "model.init_from", why);
            else
                c->oom = true;
        } else {
            eng_model_check_weights(m, s->model.init_from, engine_diag, &e);
        }
    }
    if (s->params > c->opt->max_params) {
        char a[64], b[64];
        if (s->params == ENG_SIZE_MAX)
            snprintf(a, sizeof a, "more than %" PRId64, s->params);
        else
            snprintf(a, sizeof a, "%" PRId64, s->params);
        snprintf(b, sizeof b, "%" PRId64, c->opt->max_params);
        error_at(c, "model", "the model has %s parameters, more than the limit of %s", a, b);
    }
    if (!batch_ok) {
        eng_model_free(m);
        return;
    }
    int64_t batch = s->data.batch_size > s->data.eval_batch_size ? s->data.batch_size : s->data.eval_batch_size;
    size_t need = eng_model_memory_estimate(m, batch);
    if (need > c->opt->max_memory_bytes) {
        char a[64], b[96];
        fmt_bytes(a, sizeof a, (double)need);
        fmt_bytes(b, sizeof b, (double)c->opt->max_memory_bytes);
        char msg[160];
        if (need >= (size_t)ENG_SIZE_MAX) /* saturated: engine/checked.h */
            snprintf(msg, sizeof msg,
                     "the model needs more memory than can be counted (over 8 EiB) at batch size %" PRId64
                     ", more than the limit of",
                     batch);
        else
            snprintf(msg, sizeof msg, "the model needs about %s at batch size %" PRId64 ", more than the limit of", a,
                     batch);
        error_at(c, "data.batch_size", "%s %s", msg, b);
    }
    eng_model_free(m);
}

static int nerr(const vctx *c) { return c->diags->n + c->ndropped; }

/* The top-level keys that are not sections: name (the file's stem without
 * it), seed, device and priority. */
static void v_run_keys(vctx *c, const ynode *root, spec *s)
{
    char found[96], p[SPEC_PATH_LEN];
    const ynode *n = vget(c, root, "", "name", p);
    const char *name = c->stem;
    if (n && vn_str(c, n, p, &name) == V_OK && !name_ok(name))
        vctx_error(c, n->line, n->col, "name", "expected a run name (" NAME_RULE "), found %s",
                   vdescribe(n, found, sizeof found));
    if (!n && !name_ok(name))
        vctx_error(c, root->line, root->col, "name",
                   "the file name '%.60s' is not a valid run name (" NAME_RULE "): add a name: key", name);
    if (!(s->name = spec_strdup(name)))
        c->oom = true;

    int64_t seed;
    if (v_int(c, root, "", "seed", 0, INT64_MAX, &seed) == V_OK)
        s->train.seed = (uint64_t)seed;
    if ((n = vget(c, root, "", "device", p)))
        v_device(c, n, s);
    v_int(c, root, "", "priority", INT64_MIN, INT64_MAX, &s->priority);
    if ((n = vget(c, root, "", "slurm", p)))
        v_slurm(c, n, &s->slurm);
}

/* The checks across sections, on what is valid: the dataset's geometry
 * against normalize, augment and top_k; the synthetic data's size; data
 * roots and files; init_from; the engine's build of the model. */
/* model.init_from confined to the roots, then looked at without opening
 * it; true when the weights check may open and read it. */
static bool check_init_from(vctx *c, spec *s, bool model_ok)
{
    return model_ok && s->model.init_from[0] &&
           confine_path(c, "model.init_from", s->model.init_from, sizeof s->model.init_from) &&
           c->opt->check_files && check_init_file(c, s->model.init_from);
}

/* The checks across sections, on what is valid: the dataset's files and
 * geometry against the model and the training settings. */
static void check_across(vctx *c, spec *s, const v_data_ok *dok, bool model_ok, bool train_ok)
{
    /* folder, npy: the input shape and classes are read from the files */
    bool from_files = s->data.dataset == ENG_DATASET_FOLDER || s->data.dataset == ENG_DATASET_NPY;
    bool look = c->opt->check_files || c->opt->shape_files;
    if (from_files && dok->root) {
        int e0 = nerr(c);
        if (confine_path(c, "data.root", s->data.root, sizeof s->data.root) && look)
            check_data_files(c, &s->data);
        if (look && nerr(c) == e0)
            s->data.dataset == ENG_DATASET_FOLDER ? check_folder(c, s) : check_npy(c, &s->data);
    }
    eng_shape shape;
    int64_t classes;
    if (eng_dataset_geometry(&s->data, &shape, &classes)) {
        /* folder, npy without their files (--no-files, or a file problem above): the model waits for them */
        check_init_from(c, s, model_ok);
        return;
    }
    int64_t channels = shape.ndim == 3 ? shape.d[0] : 1;
    if (s->data.normalize && s->data.n_norm != 1 && s->data.n_norm != channels) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%" PRId64, channels);
        snprintf(b, sizeof b, "%d", s->data.n_norm);
        error_at(c, "data.normalize.mean", "expected 1 or %s numbers (one per channel), found %s", a, b);
    }
    if ((s->data.crop_padding || s->data.hflip) && shape.ndim != 3)
        error_at(c, "data.augment", "%s%s", "crop and flip need images (channels, height, width)", "");
    if (train_ok && s->train.top_k > classes) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%" PRId64, classes);
        snprintf(b, sizeof b, "%" PRId64, s->train.top_k);
        error_at(c, "train.top_k", "expected at most the class count (%s), found %s", a, b);
    }
    if (s->data.dataset == ENG_DATASET_SYNTHETIC) {
        int64_t samples = eng_size_add(s->data.synth_train, s->data.synth_test);
        double bytes = (double)eng_size_mul(eng_shape_numel(&shape), samples);
        if (bytes > (double)c->opt->max_memory_bytes) {
            char a[64], b[64];
            fmt_bytes(a, sizeof a, bytes);
            fmt_bytes(b, sizeof b, (double)c->opt->max_memory_bytes);
            error_at(c, "data.synthetic", "the synthetic data takes %s, more than the limit of %s", a, b);
        }
    } else if (dok->root && !from_files) {
        struct stat st;
        if (confine_path(c, "data.root", s->data.root, sizeof s->data.root) && c->opt->check_files) {
            /* download: true - a missing folder is fetched before the run trains */
            if (s->download && stat(s->data.root, &st) != 0 && errno == ENOENT)
                s->download_missing = true;
            else
                check_data_files(c, &s->data);
        }
    }
    bool init_ok = check_init_from(c, s, model_ok);
    /* the model needs only the input shape and class count; the memory
     * estimate also the batch sizes */
    if (model_ok && !c->oom)
        check_engine(c, s, &shape, classes, dok->all, init_ok);
}

int spec_validate(vctx *c, const ynode *root, spec *s)
{
    char found[96], p[SPEC_PATH_LEN];
    eng_data_desc_default(&s->data);
    eng_model_desc_default(&s->model);
    eng_train_desc_default(&s->train);
    s->device = SPEC_DEVICE_AUTO;
    s->device_index = -1;
    s->priority = 0;
    s->params = -1;
    vctx_record(c, "", root);
    if (root->kind != YN_MAP) {
        vctx_error(c, root->line, root->col, "", "expected a map of spec keys (data, model, train, ...), found %s",
                   vdescribe(root, found, sizeof found));
        return c->oom ? SPEC_ENOMEM : 0;
    }
    static const char *const known[] = {"name", "seed", "device", "priority", "data",
                                        "model", "train", "slurm", "matrix", "include"};
    v_check_keys(c, root, "", known, V_NELEM(known), NULL, NULL);
    v_run_keys(c, root, s);

    v_data_ok dok = {0};
    const ynode *data = vget(c, root, "", "data", p);
    if (data)
        v_data(c, data, s, &dok);
    else
        v_missing(c, root, "", "data", "(the dataset: data: {dataset: ..., ...})");

    int before = nerr(c);
    const ynode *model = vget(c, root, "", "model", p);
    if (model)
        v_model(c, model, s);
    else
        v_missing(c, root, "", "model", "(the model: model: {template: ..., ...})");
    bool model_ok = nerr(c) == before;

    bool gpu_precision = false;
    const ynode *prec = NULL;
    before = nerr(c);
    const ynode *train = vget(c, root, "", "train", p);
    if (train)
        v_train(c, train, s, &gpu_precision, &prec);
    bool train_ok = nerr(c) == before;
    if (gpu_precision && s->device == SPEC_DEVICE_CPU)
        vctx_error(c, prec->line, prec->col, "train.precision", "%s needs a GPU, but device is cpu", prec->s);

    if (!c->oom && dok.geometry)
        check_across(c, s, &dok, model_ok, train_ok);
    return c->oom ? SPEC_ENOMEM : 0;
}

