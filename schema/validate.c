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

#include "engine/dataset.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/weights.h"
#include "schema/alloc.h"
#include "schema/paths.h"
#include "schema/validate.h"

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

static void check_roots(vctx *c, const char *path, const char *value)
{
    const spec_options *o = c->opt;
    if (o->n_data_roots <= 0 || spec_under_roots(value, o->data_roots, o->n_data_roots))
        return;
    char list[512] = "";
    for (int i = 0; i < o->n_data_roots; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", o->data_roots[i]);
    error_at(c, path, "%s is not under the configured data roots (%s)", value, list);
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
    char msg[1024] = "";
    int rc = eng_dataset_probe(d, msg, sizeof msg);
    if (rc == ENG_ENOMEM)
        c->oom = true;
    else if (rc < 0 && rc != ENG_ENOTSUP)
        error_at(c, "data.root", "%s%s", msg[0] ? msg : eng_strerror(rc), "");
}

static void check_init_file(vctx *c, const char *p)
{
    struct stat st;
    if (stat(p, &st))
        error_at(c, "model.init_from", "%s %s", p,
                 errno == ENOENT || errno == ENOTDIR ? "does not exist (expected a safetensors file)"
                                                     : "cannot be read");
    else if (!S_ISREG(st.st_mode))
        error_at(c, "model.init_from", "%s %s", p, "is not a file (expected a safetensors file)");
    else if (access(p, R_OK))
        error_at(c, "model.init_from", "%s %s", p, "is not readable");
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

static void check_engine(vctx *c, spec *s, const eng_shape *input, int64_t classes, bool batch_ok)
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
    if (s->model.init_from[0] && c->opt->check_files && access(s->model.init_from, R_OK) == 0)
        eng_model_check_weights(m, s->model.init_from, engine_diag, &e);
    if (s->params > c->opt->max_params) {
        char a[64], b[64];
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
        snprintf(msg, sizeof msg, "the model needs about %s at batch size %" PRId64 ", more than the limit of", a,
                 batch);
        error_at(c, "data.batch_size", "%s %s", msg, b);
    }
    eng_model_free(m);
}

static int nerr(const vctx *c) { return c->diags->n + c->ndropped; }

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
    if (c->oom || !dok.geometry)
        return c->oom ? SPEC_ENOMEM : 0;

    /* checks across sections, on what is valid */
    eng_shape shape;
    int64_t classes;
    if (eng_dataset_geometry(&s->data, &shape, &classes))
        return 0;
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
        double bytes = (double)eng_shape_numel(&shape) * (double)(s->data.synth_train + s->data.synth_test);
        if (bytes > (double)c->opt->max_memory_bytes) {
            char a[64], b[64];
            fmt_bytes(a, sizeof a, bytes);
            fmt_bytes(b, sizeof b, (double)c->opt->max_memory_bytes);
            error_at(c, "data.synthetic", "the synthetic data takes %s, more than the limit of %s", a, b);
        }
    } else if (dok.root) {
        int e0 = nerr(c);
        check_roots(c, "data.root", s->data.root);
        if (c->opt->check_files && nerr(c) == e0)
            check_data_files(c, &s->data);
    }
    if (model_ok && s->model.init_from[0]) {
        int e0 = nerr(c);
        check_roots(c, "model.init_from", s->model.init_from);
        if (c->opt->check_files && nerr(c) == e0)
            check_init_file(c, s->model.init_from);
    }
    /* the model needs only the input shape and class count; the memory
     * estimate also the batch sizes */
    if (model_ok && !c->oom)
        check_engine(c, s, &shape, classes, dok.all);
    return c->oom ? SPEC_ENOMEM : 0;
}
