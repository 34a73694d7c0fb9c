/* The `sequential` template: an explicit list of layers (residual blocks
 * nest their own list). Names follow nn.Sequential: the list index, and
 * `<i>.layers.<j>` inside a residual; a mixer layer's parameters are
 * `<i>.0.weight` ... `<i>.5.bias`, as inside the mlp_mixer template. */
#include <stdarg.h>
#include <stdio.h>

#include "engine/checked.h"
#include "engine/error.h"
#include "engine/template.h"

static int build_list(const eng_layer_desc *layers, int64_t n, const char *path, eng_diag *d, eng_module *seq,
                      uint64_t *dropout_stream);

#define PATH_LEN 256

/* Key paths are bounded by the spec's nesting limit; a deeper one is cut. */
static void format_path(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void format_path(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, PATH_LEN, fmt, ap);
    va_end(ap);
}

static bool need_image(const eng_shape *s, const char *path, const char *what, eng_diag *d)
{
    if (s->ndim == 3)
        return true;
    char got[64];
    eng_diag_report(d, path, "expected image input [C, H, W] for %s, found %s", what, eng_shape_str(s, got, sizeof got));
    return false;
}

static eng_module *build_window(const eng_layer_desc *l, const eng_shape *s, const char *path, const char *name,
                                eng_diag *d)
{
    const char *what = eng_layer_kind_name(l->kind);
    if (!need_image(s, path, what, d))
        return NULL;
    int64_t stride = l->stride > 0 ? l->stride : (l->kind == ENG_LAYER_CONV2D ? 1 : l->kernel);
    if (l->kind != ENG_LAYER_CONV2D && 2 * l->padding > l->kernel) {
        eng_diag_report(d, path, "expected padding at most half the kernel (%lld), found %lld",
                        (long long)(l->kernel / 2), (long long)l->padding);
        return NULL;
    }
    int64_t oh = eng_window_out(s->d[1], l->kernel, stride, l->padding);
    int64_t ow = eng_window_out(s->d[2], l->kernel, stride, l->padding);
    if (oh < 1 || ow < 1) {
        eng_diag_report(d, path,
                        "%s (kernel %lld, stride %lld, padding %lld) shrinks the %lldx%lld input below 1x1",
                        what, (long long)l->kernel, (long long)stride, (long long)l->padding, (long long)s->d[1],
                        (long long)s->d[2]);
        return NULL;
    }
    if (l->kind == ENG_LAYER_CONV2D)
        return eng_conv2d_new(name, s, l->out, l->kernel, stride, l->padding, l->bias);
    return eng_pool_new(name, s, l->kind == ENG_LAYER_MAXPOOL ? ENG_POOL_MAX : ENG_POOL_AVG, l->kernel, stride,
                        l->padding);
}

static eng_module *build_mean(const eng_layer_desc *l, const eng_shape *s, const char *path, const char *name,
                              eng_diag *d)
{
    int64_t dim = l->dim < 0 ? l->dim + s->ndim : l->dim;
    if (dim < 0 || dim >= s->ndim) {
        char p[PATH_LEN], got[64];
        format_path(p, "%s.mean.dim", path);
        eng_diag_report(d, p, "expected a dimension in [%d, %d] of the input %s, found %lld", -s->ndim, s->ndim - 1,
                        eng_shape_str(s, got, sizeof got), (long long)l->dim);
        return NULL;
    }
    return eng_mean_new(name, s, (int)dim);
}

static eng_module *build_patches(const eng_layer_desc *l, const eng_shape *s, const char *path, const char *name,
                                 eng_diag *d)
{
    if (!need_image(s, path, "patches", d))
        return NULL;
    int64_t p = l->patch_size;
    if (p < 1 || s->d[1] % p || s->d[2] % p) {
        char at[PATH_LEN];
        format_path(at, "%s.patches.size", path);
        eng_diag_report(d, at, "expected a divisor of the %lldx%lld input, found %lld", (long long)s->d[1],
                        (long long)s->d[2], (long long)p);
        return NULL;
    }
    return eng_patchify_new(name, s, p);
}

/* The seed's reshape: the same memory under another per-sample shape. */
static eng_module *build_reshape(const eng_layer_desc *l, const eng_shape *s, const char *path, const char *name,
                                 eng_diag *d)
{
    char at[PATH_LEN], got[64], want[64];
    format_path(at, "%s.reshape.shape", path);
    bool ok = l->shape.ndim >= 1 && l->shape.ndim <= ENG_MAX_DIMS;
    for (int i = 0; ok && i < l->shape.ndim; i++)
        ok = l->shape.d[i] >= 1;
    if (!ok) {
        eng_diag_report(d, at, "expected 1 to %d positive sizes, found %d dimensions", ENG_MAX_DIMS, l->shape.ndim);
        return NULL;
    }
    int64_t n = eng_shape_numel(&l->shape);
    if (n != eng_shape_numel(s)) {
        char count[48];
        if (n == ENG_SIZE_MAX)
            snprintf(count, sizeof count, "more than %lld values", (long long)ENG_SIZE_MAX);
        else
            snprintf(count, sizeof count, "%lld values", (long long)n);
        eng_diag_report(d, at, "expected a shape of %lld values (the input %s), found %s (%s)",
                        (long long)eng_shape_numel(s), eng_shape_str(s, want, sizeof want),
                        eng_shape_str(&l->shape, got, sizeof got), count);
        return NULL;
    }
    return eng_reshape_new(name, "reshape", s, &l->shape);
}

/* Builds one layer; NULL with a diagnostic (d->count grows) or on OOM. */
static eng_module *build_layer(const eng_layer_desc *l, const eng_shape *s, const char *path, const char *name,
                               eng_diag *d, uint64_t *dropout_stream)
{
    char got[64];
    switch (l->kind) {
    case ENG_LAYER_LINEAR: return eng_linear_new(name, s, l->out, l->bias);
    case ENG_LAYER_CONV2D:
    case ENG_LAYER_MAXPOOL:
    case ENG_LAYER_AVGPOOL: return build_window(l, s, path, name, d);
    case ENG_LAYER_BATCHNORM:
        if (s->ndim > 3) {
            eng_diag_report(d, path, "expected at most 3 dimensions for batchnorm, found %s",
                            eng_shape_str(s, got, sizeof got));
            return NULL;
        }
        return eng_batchnorm_new(name, s, l->affine);
    case ENG_LAYER_LAYERNORM: {
        int dims = l->dims > 0 ? (int)l->dims : 1;
        if (dims > s->ndim) {
            eng_diag_report(d, path, "expected dims at most %d (the input is %s), found %d", s->ndim,
                            eng_shape_str(s, got, sizeof got), dims);
            return NULL;
        }
        return eng_layernorm_new(name, s, dims, l->affine);
    }
    case ENG_LAYER_RELU: return eng_activation_new(name, s, ENG_ACT_RELU, 0.0f);
    case ENG_LAYER_LEAKY_RELU: return eng_activation_new(name, s, ENG_ACT_LEAKY_RELU, l->slope);
    case ENG_LAYER_GELU: return eng_activation_new(name, s, ENG_ACT_GELU, 0.0f);
    case ENG_LAYER_SIGMOID: return eng_activation_new(name, s, ENG_ACT_SIGMOID, 0.0f);
    case ENG_LAYER_TANH: return eng_activation_new(name, s, ENG_ACT_TANH, 0.0f);
    case ENG_LAYER_SOFTMAX: return eng_softmax_new(name, s);
    case ENG_LAYER_GLOBAL_AVGPOOL:
        if (!need_image(s, path, "global_avgpool", d))
            return NULL;
        return eng_global_avgpool_new(name, s);
    case ENG_LAYER_FLATTEN: {
        eng_shape flat = eng_shape1(eng_shape_numel(s));
        return eng_reshape_new(name, "flatten", s, &flat);
    }
    case ENG_LAYER_DROPOUT: return eng_dropout_new(name, s, l->p, (*dropout_stream)++);
    case ENG_LAYER_RESIDUAL: {
        char inner_path[PATH_LEN];
        if (l->post != ENG_ACT_NONE && l->post != ENG_ACT_RELU) {
            format_path(inner_path, "%s.residual.post", path);
            eng_diag_report(d, inner_path, "expected none or relu, found %s", eng_act_name(l->post));
            return NULL;
        }
        format_path(inner_path, "%s.residual.layers", path);
        eng_module *inner = eng_sequential_new("layers", s);
        if (!inner)
            return NULL;
        int before = d->count;
        if (build_list(l->layers, l->n_layers, inner_path, d, inner, dropout_stream) < 0 || d->count > before) {
            eng_module_free(inner);
            return NULL;
        }
        if (!eng_shape_equal(&inner->out, s)) {
            char want[64];
            eng_diag_report(d, inner_path, "expected the residual's layers to keep the shape %s, found %s",
                            eng_shape_str(s, want, sizeof want), eng_shape_str(&inner->out, got, sizeof got));
            eng_module_free(inner);
            return NULL;
        }
        return eng_residual_new(name, inner, l->post);
    }
    case ENG_LAYER_TRANSPOSE:
        if (s->ndim < 2) {
            eng_diag_report(d, path, "expected at least 2 dimensions for transpose (it swaps the last two), found %s",
                            eng_shape_str(s, got, sizeof got));
            return NULL;
        }
        return eng_transpose_new(name, s);
    case ENG_LAYER_MEAN: return build_mean(l, s, path, name, d);
    case ENG_LAYER_PATCHES: return build_patches(l, s, path, name, d);
    case ENG_LAYER_RESHAPE: return build_reshape(l, s, path, name, d);
    case ENG_LAYER_PAD_CHANNELS: {
        if (!need_image(s, path, "pad_channels", d))
            return NULL;
        if (l->out < s->d[0]) {
            char p[PATH_LEN];
            format_path(p, "%s.pad_channels.out", path);
            eng_diag_report(d, p, "expected at least the input's %lld channels (zero padding only widens), found %lld",
                            (long long)s->d[0], (long long)l->out);
            return NULL;
        }
        return eng_pad_channels_new(name, s, l->out);
    }
    case ENG_LAYER_MIXER:
        if (s->ndim != 2) {
            eng_diag_report(d, path, "expected tokens [S, C] for mixer, found %s", eng_shape_str(s, got, sizeof got));
            return NULL;
        }
        return eng_mixer_layer_new(name, s);
    case ENG_LAYER__COUNT: break;
    }
    eng_diag_report(d, path, "unknown layer kind %d", (int)l->kind);
    return NULL;
}

static int build_list(const eng_layer_desc *layers, int64_t n, const char *path, eng_diag *d, eng_module *seq,
                      uint64_t *dropout_stream)
{
    for (int64_t i = 0; i < n; i++) {
        char lpath[PATH_LEN], name[24];
        format_path(lpath, "%s[%lld]", path, (long long)i);
        snprintf(name, sizeof name, "%lld", (long long)i);
        int before = d->count;
        eng_module *m = build_layer(&layers[i], &seq->out, lpath, name, d, dropout_stream);
        if (!m)
            return d->count > before ? ENG_EINVAL : ENG_ENOMEM;
        int rc = eng_seq_append(seq, m);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int eng_template_sequential(const eng_model_desc *md, const eng_shape *in, int64_t classes, eng_diag *d,
                            eng_module *root)
{
    (void)classes;
    if (md->n_layers < 1) {
        eng_diag_report(d, "model.layers", "expected a list of at least one layer, found an empty list");
        return ENG_EINVAL;
    }
    (void)in;
    uint64_t dropout_stream = 0;
    return build_list(md->layers, md->n_layers, "model.layers", d, root, &dropout_stream);
}
