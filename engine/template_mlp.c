/* The seed's normal_MLP: [Flatten,] then per units entry Linear(bias as
 * configured, the seed: none), BatchNorm1d(affine=False) if batch_norm, and
 * the activation except after the last entry; then sigmoid/softmax/nothing. */
#include <stdio.h>

#include "engine/error.h"
#include "engine/template.h"

int eng_template_mlp(const eng_model_desc *md, const eng_shape *in, int64_t classes, eng_diag *d, eng_module *root)
{
    if (md->n_units < 1) {
        eng_diag_report(d, "model.units", "expected a list of at least one layer size, found an empty list");
        return ENG_EINVAL;
    }
    if (md->units[md->n_units - 1] != classes) {
        char path[64];
        snprintf(path, sizeof path, "model.units[%lld]", (long long)(md->n_units - 1));
        eng_diag_report(d, path,
                        "expected the last entry to be the output size %lld (the dataset's class count), found %lld",
                        (long long)classes, (long long)md->units[md->n_units - 1]);
    }
    for (int64_t i = 0; i < md->n_units; i++)
        if (md->units[i] < 1) {
            char path[64];
            snprintf(path, sizeof path, "model.units[%lld]", (long long)i);
            eng_diag_report(d, path, "expected a positive layer size, found %lld", (long long)md->units[i]);
        }
    if (d->count)
        return ENG_EINVAL;

    int idx = 0;
    char name[16];
    int rc = 0;
    if (in->ndim > 1) {
        eng_shape flat = eng_shape1(eng_shape_numel(in));
        snprintf(name, sizeof name, "%d", idx++);
        rc = eng_seq_append(root, eng_reshape_new(name, "flatten", in, &flat));
    }
    for (int64_t i = 0; rc == 0 && i < md->n_units; i++) {
        snprintf(name, sizeof name, "%d", idx++);
        rc = eng_seq_append(root, eng_linear_new(name, &root->out, md->units[i], md->bias));
        if (rc == 0 && md->batch_norm) {
            snprintf(name, sizeof name, "%d", idx++);
            rc = eng_seq_append(root, eng_batchnorm_new(name, &root->out, false));
        }
        if (rc == 0 && i + 1 < md->n_units && md->activation != ENG_ACT_NONE) {
            snprintf(name, sizeof name, "%d", idx++);
            rc = eng_seq_append(root, eng_activation_new(name, &root->out, md->activation, 0.01f));
        }
    }
    if (rc == 0) {
        snprintf(name, sizeof name, "%d", idx++);
        rc = eng_template_head(md->head, root, name);
    }
    return rc;
}
