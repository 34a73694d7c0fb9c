/* The seed's residual_CNN: a 7x7/2 convolution and a 3x3/2 max pooling stem,
 * then per channels entry either a padding block (MaxPool2d(3, 2) and zero
 * channels up to the next entry, where the next entry differs) or a residual
 * block of that width; then Flatten, Linear and the head. Names follow the
 * PyTorch reference: "<i>.b.<j>" inside block i of the top-level chain. */
#include <stdio.h>

#include "engine/error.h"
#include "engine/template.h"

static int conv_bn(eng_module *seq, int *idx, int64_t out, int64_t k, bool relu)
{
    char name[16];
    snprintf(name, sizeof name, "%d", (*idx)++);
    ENG_TRY(eng_seq_append(seq, eng_conv2d_new(name, &seq->out, out, k, 1, k / 2, true)));
    snprintf(name, sizeof name, "%d", (*idx)++);
    ENG_TRY(eng_seq_append(seq, eng_batchnorm_new(name, &seq->out, true)));
    if (relu) {
        snprintf(name, sizeof name, "%d", (*idx)++);
        ENG_TRY(eng_seq_append(seq, eng_activation_new(name, &seq->out, ENG_ACT_RELU, 0.0f)));
    }
    return 0;
}

static eng_module *residual_block(const char *name, const eng_shape *in, eng_block kind)
{
    int64_t c = in->d[0];
    eng_module *b = eng_chain_new("b", "block", in);
    if (!b)
        return NULL;
    int idx = 0, rc;
    if (kind == ENG_BLOCK_SMALL) {
        rc = conv_bn(b, &idx, c, 3, true);
        if (rc == 0)
            rc = conv_bn(b, &idx, c, 3, false);
    } else {
        rc = conv_bn(b, &idx, c / 4, 1, true);
        if (rc == 0)
            rc = conv_bn(b, &idx, c / 4, 3, true);
        if (rc == 0)
            rc = conv_bn(b, &idx, c, 1, false);
    }
    if (rc < 0) {
        eng_module_free(b);
        return NULL;
    }
    return eng_residual_new(name, b, ENG_ACT_RELU);
}

int eng_template_resnet(const eng_model_desc *md, const eng_shape *in, int64_t classes, eng_diag *d,
                        eng_module *root)
{
    if (in->ndim != 3) {
        eng_diag_report(d, "model.template", "expected image input [C, H, W] for a resnet, found %d dimensions",
                        in->ndim);
        return ENG_EINVAL;
    }
    if (md->n_channels < 1) {
        eng_diag_report(d, "model.channels", "expected a list of channel counts, found an empty list");
        return ENG_EINVAL;
    }
    /* check the shapes of the whole plan first, reporting every problem */
    int64_t h = eng_window_out(eng_window_out(in->d[1], 7, 2, 3), 3, 2, 1);
    int64_t w = eng_window_out(eng_window_out(in->d[2], 7, 2, 3), 3, 2, 1);
    if (h < 1 || w < 1) {
        eng_diag_report(d, "model.template", "expected an input image of at least 1x1 after the stem, found %lldx%lld",
                        (long long)in->d[1], (long long)in->d[2]);
        return ENG_EINVAL;
    }
    for (int64_t i = 0; i < md->n_channels; i++) {
        char path[64];
        snprintf(path, sizeof path, "model.channels[%lld]", (long long)i);
        int64_t c = md->channels[i];
        if (c < 1) {
            eng_diag_report(d, path, "expected a positive channel count, found %lld", (long long)c);
            continue;
        }
        bool widen = i + 1 < md->n_channels && md->channels[i + 1] != c;
        if (widen) {
            if (md->channels[i + 1] < c) {
                snprintf(path, sizeof path, "model.channels[%lld]", (long long)(i + 1));
                eng_diag_report(d, path,
                                "expected a channel count of at least %lld (zero padding only widens), found %lld",
                                (long long)c, (long long)md->channels[i + 1]);
            }
            int64_t oh = eng_window_out(h, 3, 2, 0), ow = eng_window_out(w, 3, 2, 0);
            if (oh < 1 || ow < 1) {
                eng_diag_report(d, path,
                                "the padding block's pooling (kernel 3, stride 2) shrinks the image below 1x1: "
                                "expected at least 3x3 before it, found %lldx%lld",
                                (long long)h, (long long)w);
                return ENG_EINVAL;
            }
            h = oh;
            w = ow;
        } else if (md->block == ENG_BLOCK_BIG && c < 4) {
            eng_diag_report(d, path, "expected at least 4 channels for a big block (width/4), found %lld",
                            (long long)c);
        }
    }
    if (d->count)
        return ENG_EINVAL;

    int idx = 0;
    char name[16];
    snprintf(name, sizeof name, "%d", idx++);
    ENG_TRY(eng_seq_append(root, eng_conv2d_new(name, &root->out, md->channels[0], 7, 2, 3, true)));
    snprintf(name, sizeof name, "%d", idx++);
    ENG_TRY(eng_seq_append(root, eng_pool_new(name, &root->out, ENG_POOL_MAX, 3, 2, 1)));
    for (int64_t i = 0; i < md->n_channels; i++) {
        snprintf(name, sizeof name, "%d", idx++);
        if (i + 1 < md->n_channels && md->channels[i + 1] != md->channels[i]) {
            eng_module *pb = eng_chain_new(name, "padding_block", &root->out);
            if (!pb)
                return ENG_ENOMEM;
            int rc = eng_seq_append(pb, eng_pool_new("pool", &pb->out, ENG_POOL_MAX, 3, 2, 0));
            if (rc == 0)
                rc = eng_seq_append(pb, eng_pad_channels_new("pad", &pb->out, md->channels[i + 1]));
            if (rc < 0) {
                eng_module_free(pb);
                return rc;
            }
            ENG_TRY(eng_seq_append(root, pb));
        } else {
            ENG_TRY(eng_seq_append(root, residual_block(name, &root->out, md->block)));
        }
    }
    eng_shape flat = eng_shape1(eng_shape_numel(&root->out));
    snprintf(name, sizeof name, "%d", idx++);
    ENG_TRY(eng_seq_append(root, eng_reshape_new(name, "flatten", &root->out, &flat)));
    snprintf(name, sizeof name, "%d", idx++);
    ENG_TRY(eng_seq_append(root, eng_linear_new(name, &root->out, classes, true)));
    snprintf(name, sizeof name, "%d", idx++);
    return eng_template_head(md->head, root, name);
}
