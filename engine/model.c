/* The model: builds the module tree from a description, names its tensors,
 * plans and binds memory, initialises, and runs forward and backward. */
#include "engine/model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/module.h"
#include "engine/rng.h"
#include "engine/template.h"

struct eng_model {
    eng_module *root;
    eng_shape in;
    int64_t classes;
    int64_t flops;

    eng_tensor_info *params, *buffers;
    eng_tensor_decl **param_decl, **buffer_decl; /* init kinds, parallel to the tables */
    int nparams, nbuffers;
    int64_t param_floats, buffer_floats;
    eng_layer_info *layers;
    int nlayers;
    int cap_params, cap_buffers, cap_layers, cap_param_decl, cap_buffer_decl;

    /* bound state */
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

#define ALIGN64(n) (((size_t)(n) + 63) & ~(size_t)63)

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
        n += eng_shape_numel(&m->param[i].shape);
    for (int i = 0; i < m->nchild; i++)
        n += subtree_params(m->child[i]);
    return n;
}

static int64_t subtree_flops(const eng_module *m)
{
    int64_t n = m->flops;
    for (int i = 0; i < m->nchild; i++)
        n += subtree_flops(m->child[i]);
    return n;
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
    for (int i = 0; i < m->nparam; i++) {
        if (grow((void **)&md->params, &md->cap_params, md->nparams + 1, sizeof *md->params) < 0 ||
            grow((void **)&md->param_decl, &md->cap_param_decl, md->nparams + 1, sizeof *md->param_decl) < 0)
            return ENG_ENOMEM;
        eng_tensor_info *t = &md->params[md->nparams];
        join_name(t->name, sizeof t->name, path, m->param[i].name);
        t->shape = m->param[i].shape;
        t->numel = eng_shape_numel(&t->shape);
        t->offset = md->param_floats;
        md->param_floats += t->numel;
        m->param[i].index = md->nparams;
        md->param_decl[md->nparams++] = &m->param[i];
    }
    for (int i = 0; i < m->nbuffer; i++) {
        if (grow((void **)&md->buffers, &md->cap_buffers, md->nbuffers + 1, sizeof *md->buffers) < 0 ||
            grow((void **)&md->buffer_decl, &md->cap_buffer_decl, md->nbuffers + 1, sizeof *md->buffer_decl) < 0)
            return ENG_ENOMEM;
        eng_tensor_info *t = &md->buffers[md->nbuffers];
        join_name(t->name, sizeof t->name, path, m->buffer[i].name);
        t->shape = m->buffer[i].shape;
        t->numel = eng_shape_numel(&t->shape);
        t->offset = md->buffer_floats;
        md->buffer_floats += t->numel;
        m->buffer[i].index = md->nbuffers;
        md->buffer_decl[md->nbuffers++] = &m->buffer[i];
    }
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
    free(m->params);
    free(m->buffers);
    free(m->param_decl);
    free(m->buffer_decl);
    free(m->layers);
    free(m);
}

eng_shape eng_model_input_shape(const eng_model *m) { return m->in; }
int64_t eng_model_classes(const eng_model *m) { return m->classes; }
int64_t eng_model_param_count(const eng_model *m) { return m->param_floats; }
int64_t eng_model_buffer_count(const eng_model *m) { return m->buffer_floats; }
int64_t eng_model_flops(const eng_model *m) { return m->flops; }

int eng_model_params(const eng_model *m, const eng_tensor_info **out)
{
    *out = m->params;
    return m->nparams;
}

int eng_model_buffers(const eng_model *m, const eng_tensor_info **out)
{
    *out = m->buffers;
    return m->nbuffers;
}

int eng_model_layers(const eng_model *m, const eng_layer_info **out)
{
    *out = m->layers;
    return m->nlayers;
}

/* ---- memory planning ---- */

static size_t activation_bytes(const eng_module *m, int64_t batch)
{
    size_t n = 0;
    if (!m->y_alias)
        n += ALIGN64((size_t)(eng_shape_numel(&m->out) * batch) * sizeof(float));
    if (m->saved_fixed || m->saved_per_sample)
        n += ALIGN64((size_t)(m->saved_fixed + m->saved_per_sample * batch) * sizeof(float));
    for (int i = 0; i < m->nchild; i++)
        n += activation_bytes(m->child[i], batch);
    return n;
}

static void assign_activations(eng_module *m, char **cursor, int64_t batch)
{
    if (!m->y_alias) {
        m->y_store = (float *)*cursor;
        m->y = m->y_store;
        *cursor += ALIGN64((size_t)(eng_shape_numel(&m->out) * batch) * sizeof(float));
    }
    if (m->saved_fixed || m->saved_per_sample) {
        m->saved = (float *)*cursor;
        *cursor += ALIGN64((size_t)(m->saved_fixed + m->saved_per_sample * batch) * sizeof(float));
    }
    for (int i = 0; i < m->nchild; i++)
        assign_activations(m->child[i], cursor, batch);
}

/* Workspace of a subtree: its own, then the largest child's after it. */
static size_t plan_workspace(eng_module *m, eng_backend *b, int64_t batch)
{
    m->ws_own = m->ops->workspace ? ALIGN64(m->ops->workspace(m, b, batch)) : 0;
    size_t most = 0;
    for (int i = 0; i < m->nchild; i++) {
        size_t c = plan_workspace(m->child[i], b, batch);
        if (c > most)
            most = c;
    }
    return m->ws_own + most;
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
        const eng_tensor_info *t = &md->params[m->param[i].index];
        m->w[i] = md->p + t->offset;
        m->dw[i] = md->g + t->offset;
    }
    for (int i = 0; i < m->nbuffer; i++)
        m->buf[i] = md->bufs + md->buffers[m->buffer[i].index].offset;
    for (int i = 0; i < m->nchild; i++)
        bind_tensors(md, m->child[i]);
}

/* Workspace for the estimate made before any backend exists: a module's own
 * figure, except for convolutions, whose workspace only a backend knows - an
 * upper bound of the CPU backend's im2col buffers stands in for it. */
static size_t estimate_workspace(const eng_module *m, int64_t batch)
{
    size_t own = 0;
    if (!strcmp(m->ops->type, "conv2d")) {
        int64_t k = m->param[0].shape.d[1] * m->param[0].shape.d[2] * m->param[0].shape.d[3];
        own = (size_t)(k * m->out.d[1] * m->out.d[2]) * sizeof(float) * (size_t)(batch < 64 ? batch : 64) * 2;
    } else if (m->ops->workspace) {
        own = m->ops->workspace(m, NULL, batch); /* the others do not consult the backend */
    }
    size_t child = 0;
    for (int i = 0; i < m->nchild; i++) {
        size_t c = estimate_workspace(m->child[i], batch);
        child = c > child ? c : child;
    }
    return own + child;
}

size_t eng_model_memory_estimate(const eng_model *m, int64_t max_batch)
{
    /* parameters, gradients and two optimizer moments */
    size_t n = 4 * (size_t)m->param_floats * sizeof(float) + (size_t)m->buffer_floats * sizeof(float);
    n += activation_bytes(m->root, max_batch);
    n += estimate_workspace(m->root, max_batch);
    n += (size_t)(eng_shape_numel(&m->in) * max_batch) * sizeof(float) * 2; /* input batch, output gradient */
    return n;
}

int eng_model_bind(eng_model *m, eng_backend *b, int64_t max_batch)
{
    if (m->b)
        return eng_error(ENG_EINVAL, "model is already bound to a backend");
    if (max_batch < 1)
        return eng_error(ENG_EINVAL, "batch size must be at least 1");
    m->b = b;
    m->max_batch = max_batch;
    size_t act = activation_bytes(m->root, max_batch);
    size_t ws = plan_workspace(m->root, b, max_batch);
    void *p = NULL, *g = NULL, *bufs = NULL, *arena = NULL, *wsp = NULL;
    int rc = b->ops->alloc(b, (size_t)(m->param_floats ? m->param_floats : 1) * sizeof(float), &p);
    if (rc == 0)
        rc = b->ops->alloc(b, (size_t)(m->param_floats ? m->param_floats : 1) * sizeof(float), &g);
    if (rc == 0)
        rc = b->ops->alloc(b, (size_t)(m->buffer_floats ? m->buffer_floats : 1) * sizeof(float), &bufs);
    if (rc == 0)
        rc = b->ops->alloc(b, act ? act : 64, &arena);
    if (rc == 0)
        rc = b->ops->alloc(b, ws ? ws : 64, &wsp);
    m->p = p;
    m->g = g;
    m->bufs = bufs;
    m->arena = arena;
    m->ws = wsp;
    if (rc < 0)
        return rc; /* eng_model_free releases what was allocated */
    m->bound_bytes = (2 * (size_t)m->param_floats + (size_t)m->buffer_floats) * sizeof(float) + act + ws;
    char *cursor = arena;
    assign_activations(m->root, &cursor, max_batch);
    assign_workspace(m->root, wsp);
    bind_tensors(m, m->root);
    return 0;
}

eng_backend *eng_model_backend(const eng_model *m) { return m->b; }
size_t eng_model_bound_bytes(const eng_model *m) { return m->bound_bytes; }
float *eng_model_param_data(eng_model *m) { return m->p; }
float *eng_model_grad_data(eng_model *m) { return m->g; }
float *eng_model_buffer_data(eng_model *m) { return m->bufs; }

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
    int64_t n = m->param_floats > m->buffer_floats ? m->param_floats : m->buffer_floats;
    float *host = malloc((size_t)(n ? n : 1) * sizeof *host);
    if (!host)
        return eng_error(ENG_ENOMEM, "out of memory initialising parameters");
    for (int i = 0; i < m->nparams; i++)
        init_values(host + m->params[i].offset, m->params[i].numel, m->param_decl[i]->init,
                    m->param_decl[i]->fan_in, eng_rng_key(seed, ENG_RNG_INIT, (uint64_t)i));
    int rc = m->b->ops->upload(m->b, m->p, host, (size_t)m->param_floats * sizeof(float));
    if (rc == 0) {
        for (int i = 0; i < m->nbuffers; i++)
            init_values(host + m->buffers[i].offset, m->buffers[i].numel, m->buffer_decl[i]->init, 0, 0);
        rc = m->b->ops->upload(m->b, m->bufs, host, (size_t)m->buffer_floats * sizeof(float));
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
    eng_step_ctx c = {.b = m->b, .batch = batch, .training = training, .dropout_key = dropout_key,
                      .profile = m->profile};
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
