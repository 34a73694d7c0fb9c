/* The model: builds the module tree from a description, names its tensors,
 * plans and binds memory, initialises, and runs forward and backward. */
#include "engine/model.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/checked.h"
#include "engine/error.h"
#include "engine/module.h"
#include "engine/rng.h"
#include "engine/template.h"

/* The parameters (or the buffers) of a model: names, shapes and offsets in
 * one flat buffer of `floats` floats, each with its declaration (init kind). */
typedef struct tensor_table {
    eng_tensor_info *info;
    eng_tensor_decl **decl; /* parallel to info */
    int n, cap_info, cap_decl;
    int64_t floats;
} tensor_table;

struct eng_model {
    eng_module *root;
    eng_shape in;
    int64_t classes;
    int64_t flops;

    tensor_table params, buffers;
    eng_layer_info *layers;
    int nlayers, cap_layers;

    /* bound state: b and the five allocations, all set by a successful
     * eng_model_bind and none before it (a failed bind leaves the model to
     * eng_model_free only); last_* by the last forward pass */
    eng_backend *b;
    int64_t max_batch;
    float *p, *g, *bufs;
    void *arena, *ws;
    size_t bound_bytes;
    const float *last_x;
    int64_t last_batch;
    bool last_training;
    uint64_t last_dropout_key;
    int64_t batches_tracked;
    eng_profile profile;
};

void eng_diag_report(eng_diag *d, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    d->count++;
    if (d->fn)
        d->fn(d->ctx, path, msg);
    else
        eng_error(ENG_EINVAL, "%s: %s", path, msg);
}

/* ---- naming and tables ---- */

static int grow(void **arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int cap2 = *cap ? *cap * 2 : 32;
    while (cap2 < need)
        cap2 *= 2;
    void *p = realloc(*arr, (size_t)cap2 * elem);
    if (!p)
        return eng_error(ENG_ENOMEM, "out of memory building the model tables");
    *arr = p;
    *cap = cap2;
    return 0;
}

/* "prefix.name" cut to len - 1 bytes (names are far shorter than the table's
 * ENG_NAME_MAX in every template; a cut name would fail the load checks). */
static void join_name(char *out, size_t len, const char *prefix, const char *name)
{
    size_t o = 0;
    for (const char *p = prefix; *p && o + 1 < len; p++)
        out[o++] = *p;
    if (prefix[0] && name[0] && o + 1 < len)
        out[o++] = '.';
    for (const char *p = name; *p && o + 1 < len; p++)
        out[o++] = *p;
    out[o] = '\0';
}

static int64_t subtree_params(const eng_module *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->nparam; i++)
        n = eng_size_add(n, eng_shape_numel(&m->param[i].shape));
    for (int i = 0; i < m->nchild; i++)
        n = eng_size_add(n, subtree_params(m->child[i]));
    return n;
}

static int64_t subtree_flops(const eng_module *m)
{
    int64_t n = m->flops;
    for (int i = 0; i < m->nchild; i++)
        n = eng_size_add(n, subtree_flops(m->child[i]));
    return n;
}

/* Appends a module's declared tensors to t, named under path; each
 * declaration learns its index in t. */
static int add_tensors(tensor_table *t, eng_tensor_decl *decl, int ndecl, const char *path)
{
    for (int i = 0; i < ndecl; i++) {
        if (grow((void **)&t->info, &t->cap_info, t->n + 1, sizeof *t->info) < 0 ||
            grow((void **)&t->decl, &t->cap_decl, t->n + 1, sizeof *t->decl) < 0)
            return ENG_ENOMEM;
        eng_tensor_info *ti = &t->info[t->n];
        join_name(ti->name, sizeof ti->name, path, decl[i].name);
        ti->shape = decl[i].shape;
        ti->numel = eng_shape_numel(&ti->shape);
        ti->offset = t->floats;
        t->floats = eng_size_add(t->floats, ti->numel);
        decl[i].index = t->n;
        t->decl[t->n++] = &decl[i];
    }
    return 0;
}

/* Pairs each relu with a max pool right after it in the same chain, whose
 * backward pass then takes the relu's gradient too; and each batchnorm with
 * a relu right after it (the seed CNNs' BN -> ReLU), which its forward pass
 * applies and, unless a pool took it, its backward pass too: one pass over
 * memory instead of two, the same bits. */
static void fuse_relus(eng_module *m)
{
    for (int i = 0; i + 1 < m->nchild; i++) {
        eng_module *a = m->child[i], *next = m->child[i + 1];
        if (!strcmp(a->ops->type, "relu") && !strcmp(next->ops->type, "maxpool") &&
            eng_shape_equal(&a->out, &next->in)) {
            a->grad_passed = true;
            next->grad_relu = true;
        }
    }
    for (int i = 0; i < m->nchild; i++) {
        eng_module *a = m->child[i], *next = i + 1 < m->nchild ? m->child[i + 1] : NULL;
        fuse_relus(a);
        if (next && !strcmp(a->ops->type, "batchnorm") && !strcmp(next->ops->type, "relu") && !a->y_alias &&
            eng_shape_equal(&a->out, &next->in)) {
            a->out_relu = true;
            next->relu_done = true;
            if (!next->grad_passed) {
                a->grad_relu = true;
                next->grad_passed = true;
            }
        }
    }
}

/* Runs each chain conv2d -> batchnorm -> (relu the batchnorm applies) ->
 * (max pool) -> conv2d in the backend's blocked layout where it has one
 * for all of them (the seed CNNs' conv -> BN -> ReLU [-> pool] -> conv):
 * the tensors between the two convolutions never pass through NCHW,
 * forward or backward (backend.h, ENG_BLOCK16). */
static void pair_blocked(eng_module *m, eng_backend *b)
{
    for (int i = 0; i < m->nchild; i++)
        pair_blocked(m->child[i], b);
    for (int i = 0; i + 2 < m->nchild; i++) {
        eng_module *a = m->child[i], *bn = m->child[i + 1];
        if (strcmp(a->ops->type, "conv2d") || strcmp(bn->ops->type, "batchnorm") || bn->in.ndim != 3 ||
            !eng_shape_equal(&a->out, &bn->in) || !eng_conv2d_blocked(a, b, a->in_blocked, true))
            continue;
        int j = i + 2; /* past the modules that pass blocked tensors on */
        if (j < m->nchild && !strcmp(m->child[j]->ops->type, "relu") && bn->out_relu && m->child[j]->relu_done)
            j++;
        if (j < m->nchild && !strcmp(m->child[j]->ops->type, "maxpool") && eng_pool_blocked(m->child[j], b))
            j++;
        eng_module *c = j < m->nchild ? m->child[j] : NULL;
        if (!c || strcmp(c->ops->type, "conv2d") || !eng_shape_equal(&m->child[j - 1]->out, &c->in) ||
            !eng_conv2d_blocked(c, b, true, false))
            continue;
        a->out_blocked = true;
        for (int k = i + 1; k < j; k++)
            m->child[k]->in_blocked = m->child[k]->out_blocked = true;
        c->in_blocked = true;
    }
}

/* The layers' `blocked`, in collect's order. */
static void note_blocked(eng_model *md, const eng_module *m, int depth, int *next)
{
    if (depth > 0) {
        md->layers[*next].blocked = m->in_blocked || m->out_blocked;
        ++*next;
    }
    for (int i = 0; i < m->nchild; i++)
        note_blocked(md, m->child[i], depth + 1, next);
}

static int collect(eng_model *md, eng_module *m, const char *prefix, int depth)
{
    char path[ENG_NAME_MAX];
    join_name(path, sizeof path, prefix, m->name);
    if (depth > 0) {
        if (grow((void **)&md->layers, &md->cap_layers, md->nlayers + 1, sizeof *md->layers) < 0)
            return ENG_ENOMEM;
        eng_layer_info *li = &md->layers[md->nlayers++];
        snprintf(li->name, sizeof li->name, "%s", path);
        li->type = m->ops->type;
        li->depth = depth;
        li->out = m->out;
        li->params = subtree_params(m);
        li->flops = subtree_flops(m);
    }
    if (add_tensors(&md->params, m->param, m->nparam, path) < 0 ||
        add_tensors(&md->buffers, m->buffer, m->nbuffer, path) < 0)
        return ENG_ENOMEM;
    for (int i = 0; i < m->nchild; i++)
        if (collect(md, m->child[i], path, depth + 1) < 0)
            return ENG_ENOMEM;
    return 0;
}

int eng_model_build(const eng_model_desc *desc, const eng_shape *input, int64_t classes, eng_diag_fn fn,
                    void *ctx, eng_model **out)
{
    *out = NULL;
    eng_diag d = {.fn = fn, .ctx = ctx};
    eng_model *md = calloc(1, sizeof *md);
    if (!md)
        return eng_error(ENG_ENOMEM, "out of memory building the model");
    md->in = *input;
    md->classes = classes;
    md->root = eng_sequential_new("", input);
    if (!md->root) {
        free(md);
        return ENG_ENOMEM;
    }
    int rc;
    switch (desc->template_kind) {
    case ENG_TEMPLATE_MLP: rc = eng_template_mlp(desc, input, classes, &d, md->root); break;
    case ENG_TEMPLATE_CNN: rc = eng_template_cnn(desc, input, classes, &d, md->root); break;
    case ENG_TEMPLATE_RESNET: rc = eng_template_resnet(desc, input, classes, &d, md->root); break;
    case ENG_TEMPLATE_MLP_MIXER: rc = eng_template_mixer(desc, input, classes, &d, md->root); break;
    case ENG_TEMPLATE_SEQUENTIAL: rc = eng_template_sequential(desc, input, classes, &d, md->root); break;
    default:
        eng_diag_report(&d, "model.template", "unknown template %d", (int)desc->template_kind);
        rc = ENG_EINVAL;
    }
    if (rc == 0 && d.count == 0) {
        eng_shape want = eng_shape1(classes);
        if (!eng_shape_equal(&md->root->out, &want)) {
            char got[64];
            eng_diag_report(&d, desc->template_kind == ENG_TEMPLATE_SEQUENTIAL ? "model.layers" : "model",
                            "expected the model's output to be [%lld] (the dataset's class count), found %s",
                            (long long)classes, eng_shape_str(&md->root->out, got, sizeof got));
        }
    }
    if (rc == 0 && d.count > 0)
        rc = ENG_EINVAL;
    if (rc == 0)
        rc = collect(md, md->root, "", 0);
    if (rc == 0)
        fuse_relus(md->root);
    if (rc < 0) {
        if (rc == ENG_EINVAL && d.count > 0 && fn)
            eng_error(ENG_EINVAL, "the model description has %d problem%s", d.count, d.count == 1 ? "" : "s");
        eng_model_free(md);
        return rc;
    }
    md->flops = subtree_flops(md->root);
    *out = md;
    return 0;
}

void eng_model_free(eng_model *m)
{
    if (!m)
        return;
    if (m->b) {
        m->b->ops->free(m->b, m->p);
        m->b->ops->free(m->b, m->g);
        m->b->ops->free(m->b, m->bufs);
        m->b->ops->free(m->b, m->arena);
        m->b->ops->free(m->b, m->ws);
    }
    eng_module_free(m->root);
    free(m->params.info);
    free(m->buffers.info);
    free(m->params.decl);
    free(m->buffers.decl);
    free(m->layers);
    free(m);
}

eng_shape eng_model_input_shape(const eng_model *m) { return m->in; }
int64_t eng_model_classes(const eng_model *m) { return m->classes; }
int64_t eng_model_param_count(const eng_model *m) { return m->params.floats; }
int64_t eng_model_buffer_count(const eng_model *m) { return m->buffers.floats; }
int64_t eng_model_flops(const eng_model *m) { return m->flops; }

int eng_model_params(const eng_model *m, const eng_tensor_info **out)
{
    *out = m->params.info;
    return m->params.n;
}

int eng_model_buffers(const eng_model *m, const eng_tensor_info **out)
{
    *out = m->buffers.info;
    return m->buffers.n;
}

int eng_model_layers(const eng_model *m, const eng_layer_info **out)
{
    *out = m->layers;
    return m->nlayers;
}

/* ---- memory planning ---- */

static int64_t output_bytes(const eng_module *m, int64_t batch)
{
    return eng_size_align64(eng_size_mul(eng_size_mul(eng_shape_numel(&m->out), batch), sizeof(float)));
}

static int64_t saved_bytes(const eng_module *m, int64_t batch)
{
    int64_t floats = eng_size_add(m->saved_fixed, eng_size_mul(m->saved_per_sample, batch));
    return eng_size_align64(eng_size_mul(floats, sizeof(float)));
}

/* What the backend keeps for the module (b NULL: the largest figure). */
static int64_t kept_bytes(const eng_module *m, eng_backend *b, int64_t batch)
{
    if (!m->ops->keep)
        return 0;
    size_t k = m->ops->keep(m, b, batch);
    return eng_size_align64(k > (size_t)ENG_SIZE_MAX ? ENG_SIZE_MAX : (int64_t)k);
}

static int64_t activation_bytes(const eng_module *m, eng_backend *b, int64_t batch)
{
    int64_t n = 0;
    if (!m->y_alias && !m->relu_done) /* a fused relu's output is the batchnorm's */
        n = eng_size_add(n, output_bytes(m, batch));
    if (m->saved_fixed || m->saved_per_sample)
        n = eng_size_add(n, saved_bytes(m, batch));
    n = eng_size_add(n, kept_bytes(m, b, batch));
    for (int i = 0; i < m->nchild; i++)
        n = eng_size_add(n, activation_bytes(m->child[i], b, batch));
    return n;
}

/* Only after activation_bytes of the root did not saturate. */
static void assign_activations(eng_module *m, eng_backend *b, char **cursor, int64_t batch)
{
    if (!m->y_alias && !m->relu_done) {
        m->y_store = (float *)*cursor;
        m->y = m->y_store;
        *cursor += output_bytes(m, batch);
    }
    if (m->saved_fixed || m->saved_per_sample) {
        m->saved = (float *)*cursor;
        *cursor += saved_bytes(m, batch);
    }
    const int64_t kept = kept_bytes(m, b, batch);
    m->kept = kept ? *cursor : NULL;
    m->kept_bytes = (size_t)kept;
    *cursor += kept;
    for (int i = 0; i < m->nchild; i++)
        assign_activations(m->child[i], b, cursor, batch);
}

/* Workspace of a subtree: its own, then the largest child's after it. */
static int64_t workspace_own(const eng_module *m, eng_backend *b, int64_t batch)
{
    if (!m->ops->workspace)
        return 0;
    size_t w = m->ops->workspace(m, b, batch);
    return eng_size_align64(w > (size_t)ENG_SIZE_MAX ? ENG_SIZE_MAX : (int64_t)w);
}

static int64_t plan_workspace(eng_module *m, eng_backend *b, int64_t batch)
{
    int64_t own = workspace_own(m, b, batch), most = 0;
    m->ws_own = (size_t)own;
    for (int i = 0; i < m->nchild; i++) {
        int64_t c = plan_workspace(m->child[i], b, batch);
        if (c > most)
            most = c;
    }
    return eng_size_add(own, most);
}

static void assign_workspace(eng_module *m, char *base)
{
    m->ws = m->ws_own ? base : NULL;
    for (int i = 0; i < m->nchild; i++)
        assign_workspace(m->child[i], base + m->ws_own);
}

static void bind_tensors(eng_model *md, eng_module *m)
{
    for (int i = 0; i < m->nparam; i++) {
        const eng_tensor_info *t = &md->params.info[m->param[i].index];
        m->w[i] = md->p + t->offset;
        m->dw[i] = md->g + t->offset;
    }
    for (int i = 0; i < m->nbuffer; i++)
        m->buf[i] = md->bufs + md->buffers.info[m->buffer[i].index].offset;
    for (int i = 0; i < m->nchild; i++)
        bind_tensors(md, m->child[i]);
}

/* Workspace for the estimate made before any backend exists: a module's own
 * figure, except for convolutions, whose workspace only a backend knows - an
 * upper bound of the CPU backend's im2col buffers stands in for it. */
static int64_t estimate_workspace(const eng_module *m, int64_t batch)
{
    int64_t own = 0;
    if (!strcmp(m->ops->type, "conv2d")) {
        int64_t k = eng_shape_prod(&m->param[0].shape, 1, 4);
        int64_t per_image = eng_size_mul(eng_size_mul(k, eng_size_mul(m->out.d[1], m->out.d[2])), sizeof(float));
        own = eng_size_mul(eng_size_mul(per_image, batch < 64 ? batch : 64), 2);
    } else {
        own = workspace_own(m, NULL, batch); /* the others take NULL for the largest figure */
    }
    int64_t child = 0;
    for (int i = 0; i < m->nchild; i++) {
        int64_t c = estimate_workspace(m->child[i], batch);
        child = c > child ? c : child;
    }
    return eng_size_add(own, child);
}

size_t eng_model_memory_estimate(const eng_model *m, int64_t max_batch)
{
    /* parameters, gradients and two optimizer moments */
    int64_t floats = eng_size_add(eng_size_mul(4, m->params.floats), m->buffers.floats);
    int64_t n = eng_size_mul(floats, sizeof(float));
    n = eng_size_add(n, activation_bytes(m->root, NULL, max_batch));
    n = eng_size_add(n, estimate_workspace(m->root, max_batch));
    /* input batch, output gradient */
    n = eng_size_add(n, eng_size_mul(eng_size_mul(eng_shape_numel(&m->in), max_batch), 2 * sizeof(float)));
    return (size_t)n;
}

int eng_model_bind(eng_model *m, eng_backend *b, int64_t max_batch)
{
    if (m->b)
        return eng_error(ENG_EINVAL, "model is already bound to a backend");
    if (max_batch < 1)
        return eng_error(ENG_EINVAL, "batch size must be at least 1");
    assert(!m->p && !m->g && !m->bufs && !m->arena && !m->ws); /* an unbound model holds no backend memory */
    pair_blocked(m->root, b);
    int layer = 0;
    note_blocked(m, m->root, 0, &layer);
    assert(layer == m->nlayers);
    int64_t act = activation_bytes(m->root, b, max_batch);
    int64_t ws = plan_workspace(m->root, b, max_batch);
    int64_t floats = eng_size_add(eng_size_mul(2, m->params.floats), m->buffers.floats);
    int64_t total = eng_size_add(eng_size_add(eng_size_mul(floats, sizeof(float)), act), ws);
    if (total == ENG_SIZE_MAX)
        return eng_error(ENG_ELIMIT, "the model's memory at batch size %lld is too large to count",
                         (long long)max_batch);
    m->b = b;
    m->max_batch = max_batch;
    void *p = NULL, *g = NULL, *bufs = NULL, *arena = NULL, *wsp = NULL;
    int rc = b->ops->alloc(b, eng_size_bytes(m->params.floats ? m->params.floats : 1, sizeof(float)), &p);
    if (rc == 0)
        rc = b->ops->alloc(b, eng_size_bytes(m->params.floats ? m->params.floats : 1, sizeof(float)), &g);
    if (rc == 0)
        rc = b->ops->alloc(b, eng_size_bytes(m->buffers.floats ? m->buffers.floats : 1, sizeof(float)), &bufs);
    if (rc == 0)
        rc = b->ops->alloc(b, act ? (size_t)act : 64, &arena);
    if (rc == 0)
        rc = b->ops->alloc(b, ws ? (size_t)ws : 64, &wsp);
    m->p = p;
    m->g = g;
    m->bufs = bufs;
    m->arena = arena;
    m->ws = wsp;
    if (rc < 0)
        return rc; /* eng_model_free releases what was allocated */
    m->bound_bytes = (size_t)total;
    char *cursor = arena;
    assign_activations(m->root, b, &cursor, max_batch);
    assert(cursor == (char *)arena + act); /* planned and placed by the same walk */
    assign_workspace(m->root, wsp);
    bind_tensors(m, m->root);
    return 0;
}

eng_backend *eng_model_backend(const eng_model *m) { return m->b; }
size_t eng_model_bound_bytes(const eng_model *m) { return m->bound_bytes; }
/* The flat buffers exist only once bound (model.h: "valid after bind"). */
float *eng_model_param_data(eng_model *m)
{
    assert(m->b && m->p);
    return m->p;
}

float *eng_model_grad_data(eng_model *m)
{
    assert(m->b && m->g);
    return m->g;
}

float *eng_model_buffer_data(eng_model *m)
{
    assert(m->b && m->bufs);
    return m->bufs;
}

/* ---- initialisation ---- */

static void init_values(float *v, int64_t n, eng_init init, int64_t fan_in, uint64_t key)
{
    switch (init) {
    case ENG_INIT_ONES:
        for (int64_t i = 0; i < n; i++)
            v[i] = 1.0f;
        break;
    case ENG_INIT_ZEROS:
        memset(v, 0, (size_t)n * sizeof *v);
        break;
    case ENG_INIT_FAN_IN_UNIFORM: {
        /* kaiming_uniform_(a=sqrt(5)) and the bias rule both give 1/sqrt(fan_in) */
        float bound = fan_in > 0 ? 1.0f / sqrtf((float)fan_in) : 0.0f;
        eng_rng r;
        eng_rng_init(&r, key, 0);
        for (int64_t i = 0; i < n; i++)
            v[i] = (2.0f * eng_rng_uniform(&r) - 1.0f) * bound;
        break;
    }
    }
}

int eng_model_init_params(eng_model *m, uint64_t seed)
{
    if (!m->b)
        return eng_error(ENG_EINVAL, "model is not bound to a backend");
    int64_t n = m->params.floats > m->buffers.floats ? m->params.floats : m->buffers.floats;
    float *host = malloc(eng_size_bytes(n ? n : 1, sizeof *host));
    if (!host)
        return eng_error(ENG_ENOMEM, "out of memory initialising parameters");
    for (int i = 0; i < m->params.n; i++)
        init_values(host + m->params.info[i].offset, m->params.info[i].numel, m->params.decl[i]->init,
                    m->params.decl[i]->fan_in, eng_rng_key(seed, ENG_RNG_INIT, (uint64_t)i));
    int rc = m->b->ops->upload(m->b, m->p, host, (size_t)m->params.floats * sizeof(float));
    if (rc == 0) {
        for (int i = 0; i < m->buffers.n; i++)
            init_values(host + m->buffers.info[i].offset, m->buffers.info[i].numel, m->buffers.decl[i]->init, 0, 0);
        rc = m->b->ops->upload(m->b, m->bufs, host, (size_t)m->buffers.floats * sizeof(float));
    }
    free(host);
    m->batches_tracked = 0;
    return rc;
}

/* ---- steps ---- */

int eng_model_forward(eng_model *m, const float *x, int64_t batch, bool training, uint64_t dropout_key,
                      const float **out)
{
    if (!m->b)
        return eng_error(ENG_EINVAL, "model is not bound to a backend");
    if (batch < 1 || batch > m->max_batch)
        return eng_error(ENG_EINVAL, "batch of %lld samples outside the planned 1..%lld", (long long)batch,
                         (long long)m->max_batch);
    assert(m->arena && m->ws); /* bound (a failed bind leaves the model to eng_model_free only) */
    /* evaluation is not profiled: the layer times are of training steps */
    eng_step_ctx c = {.b = m->b, .batch = batch, .training = training, .dropout_key = dropout_key,
                      .profile = training ? m->profile : ENG_PROFILE_OFF};
    int rc = m->root->ops->forward(m->root, &c, x);
    if (rc < 0)
        return rc;
    m->last_x = x;
    m->last_batch = batch;
    m->last_training = training;
    m->last_dropout_key = dropout_key;
    if (training)
        m->batches_tracked++;
    *out = m->root->y;
    return 0;
}

int eng_model_backward(eng_model *m, const float *dout)
{
    if (!m->last_x || !m->last_training)
        return eng_error(ENG_EINVAL, "backward needs a training forward pass first");
    assert(m->b && m->last_batch >= 1 && m->last_batch <= m->max_batch); /* a forward pass ran: bound, planned */
    eng_step_ctx c = {.b = m->b, .batch = m->last_batch, .training = true, .dropout_key = m->last_dropout_key,
                      .profile = m->profile};
    return m->root->ops->backward(m->root, &c, m->last_x, dout, NULL);
}

int64_t eng_model_batches_tracked(const eng_model *m) { return m->batches_tracked; }
void eng_model_set_batches_tracked(eng_model *m, int64_t n) { m->batches_tracked = n; }

/* ---- profiling ---- */

static void prof_reset(eng_module *m)
{
    m->prof_s[0] = m->prof_s[1] = 0.0;
    for (int i = 0; i < m->nchild; i++)
        prof_reset(m->child[i]);
}

void eng_model_profile(eng_model *m, eng_profile clock)
{
    m->profile = clock;
    if (clock != ENG_PROFILE_OFF)
        prof_reset(m->root);
}

/* The same walk as collect(): layers in forward order, the root excluded. */
static void prof_collect(const eng_module *m, int depth, int *row, double *fwd, double *bwd)
{
    if (depth > 0) {
        fwd[*row] = m->prof_s[0];
        bwd[*row] = m->prof_s[1];
        (*row)++;
    }
    for (int i = 0; i < m->nchild; i++)
        prof_collect(m->child[i], depth + 1, row, fwd, bwd);
}

void eng_model_layer_times(const eng_model *m, double *forward_s, double *backward_s)
{
    int row = 0;
    prof_collect(m->root, 0, &row, forward_s, backward_s);
}
