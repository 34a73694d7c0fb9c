/* Validation of the `model:` section (templates and sequential layers) into eng_model_desc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/alloc.h"
#include "schema/paths.h"
#include "schema/suggest.h"
#include "schema/validate.h"

/* Templates, activations and layer types go by the engine's names
 * (eng_template_names, eng_act_names, eng_layer_kind_names). */

/* The keys each template takes besides template and init_from. */
static const char *const template_keys[][6] = {
    [ENG_TEMPLATE_MLP] = {"units", "activation", "last_activation", "batch_norm", "bias"},
    [ENG_TEMPLATE_CNN] = {"channels", "activation", "batch_norm", "pool", "head"},
    [ENG_TEMPLATE_RESNET] = {"channels", "block", "head"},
    [ENG_TEMPLATE_MLP_MIXER] = {"patch_size", "hidden", "depth", "patching", "head"},
    [ENG_TEMPLATE_SEQUENTIAL] = {"layers"},
};
_Static_assert(V_NELEM(template_keys) == ENG_TEMPLATE__COUNT, "every template has its keys");

#define MAX_WIDTH (1 << 24)

/* Every model key of every template (for suggestions and "belongs under"). */
int spec_model_keys(const char **out, int cap)
{
    int n = 0;
    out[n++] = "template";
    out[n++] = "init_from";
    for (int t = 0; t < V_NELEM(template_keys); t++) {
        for (int i = 0; i < 6 && template_keys[t][i]; i++) {
            bool dup = false;
            for (int j = 0; j < n; j++)
                dup |= !strcmp(out[j], template_keys[t][i]);
            if (!dup && n < cap)
                out[n++] = template_keys[t][i];
        }
    }
    return n;
}

/* "units: not a key of template cnn (it belongs to mlp)" */
static const char *other_template(const char *key, char *buf, size_t len, void *arg)
{
    int t = *(int *)arg;
    size_t o = 0;
    buf[0] = '\0';
    for (int u = 0; u < V_NELEM(template_keys); u++) {
        for (int i = 0; i < 6 && template_keys[u][i]; i++) {
            if (strcmp(template_keys[u][i], key))
                continue;
            int w = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", eng_template_names[u]);
            if (w > 0 && (size_t)w < len - o)
                o += (size_t)w;
        }
    }
    if (!o)
        return NULL;
    char belongs[128];
    snprintf(belongs, sizeof belongs, "%s", buf);
    if (t >= 0)
        snprintf(buf, len, "not a key of template %s (it belongs to %s)", eng_template_names[t], belongs);
    else
        snprintf(buf, len, "only for template %s", belongs);
    return buf;
}

static int64_t *int_list(vctx *c, const ynode *map, const char *parent, const char *key, bool allow_p, int64_t *count,
                         const char *what)
{
    char p[SPEC_PATH_LEN], q[SPEC_PATH_LEN], found[96];
    const ynode *n = vget(c, map, parent, key, p);
    *count = 0;
    if (!n) {
        v_missing(c, map, parent, key, what);
        return NULL;
    }
    if (!vn_seq(c, n, p, what))
        return NULL;
    if (n->n == 0) {
        vctx_error(c, n->line, n->col, p, "expected a non-empty list %s, found an empty list", what);
        return NULL;
    }
    int64_t *v = spec_calloc((size_t)n->n, sizeof *v);
    if (!v) {
        c->oom = true;
        return NULL;
    }
    bool ok = true;
    for (int64_t i = 0; i < n->n; i++) {
        const ynode *e = n->v[i];
        vpath_index(q, p, i);
        vctx_record(c, q, e);
        if (allow_p && e->kind == YN_SCALAR && !strcmp(e->s, "p")) {
            v[i] = ENG_POOL_ENTRY;
            continue;
        }
        int64_t x;
        if (allow_p && !spec_scalar_int(e, &x)) {
            vctx_error(c, e->line, e->col, q, "expected a channel count >= 1 or p (pooling), found %s",
                       vdescribe(e, found, sizeof found));
            ok = false;
        } else if (vn_int(c, e, q, 1, MAX_WIDTH, &v[i]) != V_OK) {
            ok = false;
        }
    }
    if (!ok) {
        free(v);
        return NULL;
    }
    *count = n->n;
    return v;
}

/* ---- sequential layers ---- */

/* What a spec may write for one layer kind. The name is the engine's
 * (eng_layer_kind_names[kind]). */
typedef struct layer_type {
    eng_layer_kind kind;
    bool needs_settings; /* `- conv2d:` with nothing is an error */
    const char *keys[5];
} layer_type;

/* In the order messages list them: the common layers first. Every kind once
 * (tests/schema/test_spec_layers.c names each through the engine's table). */
static const layer_type layer_types[] = {
    {ENG_LAYER_CONV2D, true, {"out", "kernel", "stride", "padding", "bias"}},
    {ENG_LAYER_LINEAR, true, {"out", "bias"}},
    {ENG_LAYER_BATCHNORM, false, {"affine"}},
    {ENG_LAYER_LAYERNORM, false, {"affine", "dims"}},
    {ENG_LAYER_MAXPOOL, true, {"kernel", "stride", "padding"}},
    {ENG_LAYER_AVGPOOL, true, {"kernel", "stride", "padding"}},
    {ENG_LAYER_GLOBAL_AVGPOOL, false, {NULL}},
    {ENG_LAYER_FLATTEN, false, {NULL}},
    {ENG_LAYER_DROPOUT, false, {"p"}},
    {ENG_LAYER_RELU, false, {NULL}},
    {ENG_LAYER_LEAKY_RELU, false, {"slope"}},
    {ENG_LAYER_GELU, false, {NULL}},
    {ENG_LAYER_SIGMOID, false, {NULL}},
    {ENG_LAYER_TANH, false, {NULL}},
    {ENG_LAYER_SOFTMAX, false, {NULL}},
    {ENG_LAYER_RESIDUAL, true, {"layers", "post"}},
    /* beyond spec v1 (docs/spec.md, "Changes to the contract") */
    {ENG_LAYER_TRANSPOSE, false, {NULL}},
    {ENG_LAYER_MEAN, false, {"dim"}},
    {ENG_LAYER_PATCHES, true, {"size"}},
    {ENG_LAYER_RESHAPE, true, {"shape"}},
    {ENG_LAYER_PAD_CHANNELS, true, {"out"}},
    {ENG_LAYER_MIXER, false, {NULL}},
};
_Static_assert(V_NELEM(layer_types) == ENG_LAYER__COUNT, "every layer kind has a spec entry");

static void v_layer_list(vctx *c, const ynode *seq, const char *path, eng_layer_desc **out, int64_t *nout);

void spec_layers_free(eng_layer_desc *l, int64_t n)
{
    if (!l)
        return;
    for (int64_t i = 0; i < n; i++)
        spec_layers_free(l[i].layers, l[i].n_layers);
    free(l);
}

/* reshape's `shape`: 1 to ENG_MAX_DIMS sizes of one sample (the element
 * count is the engine's check: it knows the input). */
static void v_shape(vctx *c, const ynode *args, const char *lp, eng_shape *out)
{
    char p[SPEC_PATH_LEN], q[SPEC_PATH_LEN];
    const ynode *n = vget(c, args, lp, "shape", p);
    if (!n) {
        v_missing(c, args, lp, "shape", "(the per-sample shape after the reshape, like [64, 48])");
        return;
    }
    if (!vn_seq(c, n, p, "of sizes, like [64, 48]"))
        return;
    if (n->n < 1 || n->n > ENG_MAX_DIMS) {
        vctx_error(c, n->line, n->col, p, "expected 1 to %d sizes, found %lld", ENG_MAX_DIMS, (long long)n->n);
        return;
    }
    eng_shape s = {.ndim = (int)n->n};
    bool ok = true;
    for (int64_t i = 0; i < n->n; i++) {
        vpath_index(q, p, i);
        vctx_record(c, q, n->v[i]);
        ok &= vn_int(c, n->v[i], q, 1, MAX_WIDTH, &s.d[i]) == V_OK;
    }
    if (ok)
        *out = s;
}

/* The layer type an entry names: a map with one key, like {conv2d: {...}};
 * NULL when it names none (reported). */
static const layer_type *v_layer_type(vctx *c, const ynode *item, const char *ipath)
{
    char found[96];
    if (item->kind != YN_MAP || item->n != 1) {
        vctx_error(c, item->line, item->col, ipath,
                   "expected one layer as a map with one key, like {conv2d: {out: 32, kernel: 3}} or {relu: {}}, "
                   "found %s%s",
                   item->kind == YN_MAP && item->n > 1 ? "a map with several keys" : vdescribe(item, found, sizeof found),
                   item->kind == YN_MAP && item->n > 1 ? " (each layer is its own list entry: '- relu: {}')" : "");
        return NULL;
    }
    const ynode *k = item->v[0];
    const char *names[V_NELEM(layer_types)];
    for (int i = 0; i < V_NELEM(layer_types); i++) {
        names[i] = eng_layer_kind_names[layer_types[i].kind];
        if (!strcmp(k->s, names[i]))
            return &layer_types[i];
    }
    const char *s = spec_suggest(k->s, names, V_NELEM(names));
    char list[512] = "";
    for (int i = 0; i < V_NELEM(names); i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    if (s)
        vctx_error(c, k->line, k->col, ipath, "unknown layer type '%s' (did you mean '%s'?)", k->s, s);
    else
        vctx_error(c, k->line, k->col, ipath, "unknown layer type '%s' (expected one of %s)", k->s, list);
    return NULL;
}

/* The settings a layer of type t takes beyond its defaults, from the map args at lp. */
static void v_layer_settings(vctx *c, const layer_type *t, const ynode *args, const char *lp, eng_layer_desc *l)
{
    char p[SPEC_PATH_LEN];
    switch (t->kind) {
    case ENG_LAYER_CONV2D:
    case ENG_LAYER_LINEAR:
        if (v_int(c, args, lp, "out", 1, MAX_WIDTH, &l->out) == V_ABSENT)
            v_missing(c, args, lp, "out", "(the number of output features or channels)");
        v_bool(c, args, lp, "bias", &l->bias);
        if (t->kind == ENG_LAYER_LINEAR)
            break;
        if (v_int(c, args, lp, "kernel", 1, 1024, &l->kernel) == V_ABSENT)
            v_missing(c, args, lp, "kernel", "(the kernel size)");
        v_int(c, args, lp, "stride", 1, 1024, &l->stride);
        v_int(c, args, lp, "padding", 0, 1024, &l->padding);
        break;
    case ENG_LAYER_MAXPOOL:
    case ENG_LAYER_AVGPOOL: {
        int rk = v_int(c, args, lp, "kernel", 1, 1024, &l->kernel);
        if (rk == V_ABSENT)
            v_missing(c, args, lp, "kernel", "(the window size)");
        if (v_int(c, args, lp, "stride", 1, 1024, &l->stride) == V_ABSENT)
            l->stride = l->kernel; /* PyTorch: stride defaults to the kernel size */
        if (v_int(c, args, lp, "padding", 0, 1024, &l->padding) == V_OK && rk == V_OK && 2 * l->padding > l->kernel) {
            const ynode *pn = yn_map_get(args, "padding");
            vpath(p, lp, "padding");
            vctx_error(c, pn->line, pn->col, p, "expected at most half the kernel (%lld), found %lld",
                       (long long)(l->kernel / 2), (long long)l->padding);
        }
        break;
    }
    case ENG_LAYER_BATCHNORM:
        v_bool(c, args, lp, "affine", &l->affine);
        break;
    case ENG_LAYER_LAYERNORM:
        v_bool(c, args, lp, "affine", &l->affine);
        v_int(c, args, lp, "dims", 1, 2, &l->dims);
        break;
    case ENG_LAYER_DROPOUT:
        v_num(c, args, lp, "p", (vrange){0, 1, false, true}, &l->p);
        break;
    case ENG_LAYER_LEAKY_RELU:
        v_num(c, args, lp, "slope", (vrange){-1e30, 1e30, false, false}, &l->slope);
        break;
    case ENG_LAYER_RESIDUAL: {
        static const char *const posts[] = {"none", "relu"};
        int e;
        const ynode *ls = vget(c, args, lp, "layers", p);
        if (!ls)
            v_missing(c, args, lp, "layers", "(the layers of the residual branch)");
        else
            v_layer_list(c, ls, p, &l->layers, &l->n_layers);
        if (v_enum(c, args, lp, "post", posts, V_NELEM(posts), &e) == V_OK)
            l->post = e ? ENG_ACT_RELU : ENG_ACT_NONE;
        break;
    }
    case ENG_LAYER_MEAN:
        v_int(c, args, lp, "dim", -ENG_MAX_DIMS, ENG_MAX_DIMS - 1, &l->dim);
        break;
    case ENG_LAYER_PATCHES:
        if (v_int(c, args, lp, "size", 1, 1024, &l->patch_size) == V_ABSENT)
            v_missing(c, args, lp, "size", "(p of the p x p patches)");
        break;
    case ENG_LAYER_PAD_CHANNELS:
        if (v_int(c, args, lp, "out", 1, MAX_WIDTH, &l->out) == V_ABSENT)
            v_missing(c, args, lp, "out", "(the channel count after padding)");
        break;
    case ENG_LAYER_RESHAPE:
        v_shape(c, args, lp, &l->shape);
        break;
    default:
        break;
    }
}

static void v_layer(vctx *c, const ynode *item, const char *ipath, eng_layer_desc *l)
{
    const layer_type *t = v_layer_type(c, item, ipath);
    if (!t)
        return;
    const ynode *args = item->v[1];
    const char *name = eng_layer_kind_names[t->kind];
    l->kind = t->kind;
    char lp[SPEC_PATH_LEN];
    vpath(lp, ipath, name);
    vctx_record(c, lp, args);
    /* defaults follow PyTorch's constructors */
    l->stride = 1;
    l->bias = true;
    l->affine = true;
    l->dims = 1;
    l->slope = 0.01f;
    l->p = 0.5f;
    l->dim = -1;
    l->post = ENG_ACT_NONE;
    if (yn_is_null(args)) {
        if (t->needs_settings)
            vctx_error(c, args->line, args->col, lp, "expected a map of %s settings, found nothing", name);
        return;
    }
    int nkeys = 0;
    while (nkeys < 5 && t->keys[nkeys])
        nkeys++;
    if (!vn_map(c, args, lp, nkeys ? "of settings" : "(this layer has no settings: {})"))
        return;
    v_check_keys(c, args, lp, t->keys, nkeys, NULL, NULL);
    v_layer_settings(c, t, args, lp, l);
}

static void v_layer_list(vctx *c, const ynode *seq, const char *path, eng_layer_desc **out, int64_t *nout)
{
    char q[SPEC_PATH_LEN];
    if (!vn_seq(c, seq, path, "of layers, like [{conv2d: {out: 32, kernel: 3}}, {relu: {}}]"))
        return;
    if (seq->n == 0) {
        vctx_error(c, seq->line, seq->col, path, "expected at least one layer, found an empty list");
        return;
    }
    eng_layer_desc *l = spec_calloc((size_t)seq->n, sizeof *l);
    if (!l) {
        c->oom = true;
        return;
    }
    *out = l;
    *nout = seq->n;
    for (int64_t i = 0; i < seq->n; i++) {
        vpath_index(q, path, i);
        vctx_record(c, q, seq->v[i]);
        v_layer(c, seq->v[i], q, &l[i]);
    }
}

/* ---- model ---- */

void v_model(vctx *c, const ynode *node, spec *s)
{
    eng_model_desc *m = &s->model;
    const char *path = "model";
    char p[SPEC_PATH_LEN];
    if (!vn_map(c, node, path, "(template and its settings)"))
        return;
    int t = -1;
    if (v_enum(c, node, path, "template", eng_template_names, ENG_TEMPLATE__COUNT, &t) == V_ABSENT)
        v_missing(c, node, path, "template", "(mlp, cnn, resnet, mlp_mixer or sequential)");
    const char *known[8] = {"template", "init_from"};
    int nknown = 2;
    if (t >= 0) {
        m->template_kind = (eng_template)t;
        for (int i = 0; i < 6 && template_keys[t][i]; i++)
            known[nknown++] = template_keys[t][i];
        v_check_keys(c, node, path, known, nknown, other_template, &t);
    } else {
        const char *all[32];
        int nall = spec_model_keys(all, 32);
        v_check_keys(c, node, path, all, nall, NULL, NULL);
    }

    const ynode *n = vget(c, node, path, "init_from", p);
    const char *str;
    if (n && vn_str(c, n, p, &str) == V_OK && str[0] &&
        spec_resolve_path(c->dir, str, m->init_from, sizeof m->init_from))
        vctx_error(c, n->line, n->col, p, "the path is longer than %d bytes", ENG_PATH_MAX - 1);
    if (n && n->kind == YN_SCALAR && yn_is_null(n))
        m->init_from[0] = '\0';

    static const char *const head_names[] = {"logits", "softmax"};
    static const char *const last_act[] = {"none", "sigmoid", "softmax"};
    static const eng_head last_act_head[] = {ENG_HEAD_LOGITS, ENG_HEAD_SIGMOID, ENG_HEAD_SOFTMAX};
    int e;
    switch (t) {
    case ENG_TEMPLATE_MLP:
        m->units = int_list(c, node, path, "units", false, &m->n_units, "of layer widths (the last is the class count)");
        if (v_enum(c, node, path, "activation", eng_act_names, ENG_ACT__COUNT, &e) == V_OK)
            m->activation = (eng_act)e;
        if (v_enum(c, node, path, "last_activation", last_act, V_NELEM(last_act), &e) == V_OK)
            m->head = last_act_head[e];
        v_bool(c, node, path, "batch_norm", &m->batch_norm);
        v_bool(c, node, path, "bias", &m->bias);
        break;
    case ENG_TEMPLATE_CNN:
        m->channels = int_list(c, node, path, "channels", true, &m->n_channels, "of channel counts and p (pooling)");
        if (v_enum(c, node, path, "activation", eng_act_names, ENG_ACT__COUNT, &e) == V_OK)
            m->activation = (eng_act)e;
        v_bool(c, node, path, "batch_norm", &m->batch_norm);
        if ((n = vget(c, node, path, "pool", p)) && vn_map(c, n, p, "{kernel, stride}")) {
            static const char *const keys[] = {"kernel", "stride"};
            v_check_keys(c, n, p, keys, V_NELEM(keys), NULL, NULL);
            v_int(c, n, p, "kernel", 1, 1024, &m->pool_kernel);
            v_int(c, n, p, "stride", 1, 1024, &m->pool_stride);
        }
        if (v_enum(c, node, path, "head", head_names, V_NELEM(head_names), &e) == V_OK)
            m->head = e ? ENG_HEAD_SOFTMAX : ENG_HEAD_LOGITS;
        break;
    case ENG_TEMPLATE_RESNET: {
        static const char *const blocks[] = {"small", "big"};
        m->channels = int_list(c, node, path, "channels", false, &m->n_channels, "of channel counts");
        if (v_enum(c, node, path, "block", blocks, V_NELEM(blocks), &e) == V_OK)
            m->block = e ? ENG_BLOCK_BIG : ENG_BLOCK_SMALL;
        if (v_enum(c, node, path, "head", head_names, V_NELEM(head_names), &e) == V_OK)
            m->head = e ? ENG_HEAD_SOFTMAX : ENG_HEAD_LOGITS;
        break;
    }
    case ENG_TEMPLATE_MLP_MIXER: {
        static const char *const patchings[] = {"patches", "reshape"};
        v_int(c, node, path, "patch_size", 1, 1024, &m->patch_size);
        v_int(c, node, path, "hidden", 1, MAX_WIDTH, &m->hidden);
        v_int(c, node, path, "depth", 1, 1024, &m->depth);
        if (v_enum(c, node, path, "patching", patchings, V_NELEM(patchings), &e) == V_OK)
            m->patching = e ? ENG_PATCHING_RESHAPE : ENG_PATCHING_PATCHES;
        if (v_enum(c, node, path, "head", head_names, V_NELEM(head_names), &e) == V_OK)
            m->head = e ? ENG_HEAD_SOFTMAX : ENG_HEAD_LOGITS;
        break;
    }
    case ENG_TEMPLATE_SEQUENTIAL:
        if ((n = vget(c, node, path, "layers", p)))
            v_layer_list(c, n, p, &m->layers, &m->n_layers);
        else
            v_missing(c, node, path, "layers", "(the list of layers)");
        break;
    default:
        break;
    }
}
