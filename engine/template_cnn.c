/* The seed's normal_CNN: per channels entry, `p` adds MaxPool2d(kernel,
 * stride) keeping the channels; a number c adds Conv2d(prev, c, 3, 1, 1),
 * BatchNorm2d(c) if batch_norm, and the activation unless it is the list's
 * last entry. Then Flatten, Linear(features, classes) and the head. */
#include <stdio.h>

#include "engine/error.h"
#include "engine/template.h"

int eng_template_cnn(const eng_model_desc *md, const eng_shape *in, int64_t classes, eng_diag *d, eng_module *root)
{
    if (in->ndim != 3) {
        eng_diag_report(d, "model.template", "expected image input [C, H, W] for a cnn, found %d dimensions",
                        in->ndim);
        return ENG_EINVAL;
    }
    if (md->n_channels < 1) {
        eng_diag_report(d, "model.channels", "expected a list of channel counts and 'p', found an empty list");
        return ENG_EINVAL;
    }
    /* shapes first, so that every problem is reported before building */
    int64_t c = in->d[0], h = in->d[1], w = in->d[2];
    for (int64_t i = 0; i < md->n_channels; i++) {
        char path[64];
        snprintf(path, sizeof path, "model.channels[%lld]", (long long)i);
        int64_t e = md->channels[i];
        if (e == ENG_POOL_ENTRY) {
            int64_t oh = eng_window_out(h, md->pool_kernel, md->pool_stride, 0);
            int64_t ow = eng_window_out(w, md->pool_kernel, md->pool_stride, 0);
            if (oh < 1 || ow < 1) {
                eng_diag_report(d, path,
                                "pooling (kernel %lld, stride %lld) shrinks the image below 1x1: expected at "
                                "least %lldx%lld before it, found %lldx%lld",
                                (long long)md->pool_kernel, (long long)md->pool_stride, (long long)md->pool_kernel,
                                (long long)md->pool_kernel, (long long)h, (long long)w);
                return ENG_EINVAL;
            }
            h = oh;
            w = ow;
        } else if (e < 1) {
            eng_diag_report(d, path, "expected a positive channel count or 'p', found %lld", (long long)e);
        } else {
            c = e;
        }
    }
    (void)c;
    if (d->count)
        return ENG_EINVAL;

    int idx = 0, rc = 0;
    char name[16];
    for (int64_t i = 0; rc == 0 && i < md->n_channels; i++) {
        int64_t e = md->channels[i];
        snprintf(name, sizeof name, "%d", idx++);
        if (e == ENG_POOL_ENTRY) {
            rc = eng_seq_append(root, eng_pool_new(name, &root->out, ENG_POOL_MAX, md->pool_kernel, md->pool_stride, 0));
            continue;
        }
        rc = eng_seq_append(root, eng_conv2d_new(name, &root->out, e, 3, 1, 1, true));
        if (rc == 0 && md->batch_norm) {
            snprintf(name, sizeof name, "%d", idx++);
            rc = eng_seq_append(root, eng_batchnorm_new(name, &root->out, true));
        }
        if (rc == 0 && i + 1 < md->n_channels && md->activation != ENG_ACT_NONE) {
            snprintf(name, sizeof name, "%d", idx++);
            rc = eng_seq_append(root, eng_activation_new(name, &root->out, md->activation, 0.01f));
        }
    }
    if (rc == 0) {
        eng_shape flat = eng_shape1(eng_shape_numel(&root->out));
        snprintf(name, sizeof name, "%d", idx++);
        rc = eng_seq_append(root, eng_reshape_new(name, "flatten", &root->out, &flat));
    }
    if (rc == 0) {
        snprintf(name, sizeof name, "%d", idx++);
        rc = eng_seq_append(root, eng_linear_new(name, &root->out, classes, true));
    }
    if (rc == 0) {
        snprintf(name, sizeof name, "%d", idx++);
        rc = eng_template_head(md->head, root, name);
    }
    return rc;
}
