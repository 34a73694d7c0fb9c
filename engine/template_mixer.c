/* The seed's MLP_Mixer: S = H*W/p^2 tokens of D = C_in*p*p values (true
 * patches, or the seed's plain reshape of NCHW memory), Linear(D, hidden)
 * "embed", `depth` mixer layers "blocks.<i>", LayerNorm over the whole
 * (S, hidden) plane "norm", the mean over channels, Linear(S, classes) "head". */
#include <stdio.h>

#include "engine/checked.h"
#include "engine/error.h"
#include "engine/template.h"

int eng_template_mixer(const eng_model_desc *md, const eng_shape *in, int64_t classes, eng_diag *d,
                       eng_module *root)
{
    if (in->ndim != 3) {
        eng_diag_report(d, "model.template", "expected image input [C, H, W] for an mlp_mixer, found %d dimensions",
                        in->ndim);
        return ENG_EINVAL;
    }
    int64_t p = md->patch_size;
    if (p < 1 || in->d[1] % p || in->d[2] % p)
        eng_diag_report(d, "model.patch_size", "expected a divisor of the %lldx%lld input, found %lld",
                        (long long)in->d[1], (long long)in->d[2], (long long)p);
    if (md->hidden < 1)
        eng_diag_report(d, "model.hidden", "expected a positive width, found %lld", (long long)md->hidden);
    if (md->depth < 0)
        eng_diag_report(d, "model.depth", "expected 0 or more layers, found %lld", (long long)md->depth);
    if (d->count)
        return ENG_EINVAL;

    int64_t S = eng_size_mul(in->d[1] / p, in->d[2] / p), D = eng_size_mul(in->d[0], eng_size_mul(p, p));
    eng_shape tokens = eng_shape2(S, D);
    if (md->patching == ENG_PATCHING_RESHAPE)
        ENG_TRY(eng_seq_append(root, eng_reshape_new("patches", "reshape", in, &tokens)));
    else
        ENG_TRY(eng_seq_append(root, eng_patchify_new("patches", in, p)));
    ENG_TRY(eng_seq_append(root, eng_linear_new("embed", &root->out, md->hidden, true)));
    eng_module *blocks = eng_sequential_new("blocks", &root->out);
    if (!blocks)
        return ENG_ENOMEM;
    for (int64_t i = 0; i < md->depth; i++) {
        char name[24];
        snprintf(name, sizeof name, "%lld", (long long)i);
        int rc = eng_seq_append(blocks, eng_mixer_layer_new(name, &blocks->out));
        if (rc < 0) {
            eng_module_free(blocks);
            return rc;
        }
    }
    ENG_TRY(eng_seq_append(root, blocks));
    ENG_TRY(eng_seq_append(root, eng_layernorm_new("norm", &root->out, 2, true)));
    ENG_TRY(eng_seq_append(root, eng_mean_lastdim_new("mean", &root->out)));
    ENG_TRY(eng_seq_append(root, eng_linear_new("head", &root->out, classes, true)));
    return eng_template_head(md->head, root, "softmax");
}
