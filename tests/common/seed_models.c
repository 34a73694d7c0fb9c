/* The seed's six models as engine descriptions. */
#include "tests/common/seed_models.h"

#include <string.h>

static int64_t cnn_channels[] = {16, 16, ENG_POOL_ENTRY, 32, 32, ENG_POOL_ENTRY, 64, 64, ENG_POOL_ENTRY,
                                 128, 128, ENG_POOL_ENTRY, 256, 256};
static int64_t resnet_channels[] = {32, 32, 64, 64, 64, 64, 128, 128, 128};

const seed_model seed_models[SEED_MODEL_COUNT] = {
    {"normal_cnn", ENG_TEMPLATE_CNN, 0, 0, 0, 1183322},
    {"residual_cnn", ENG_TEMPLATE_RESNET, 0, 0, 0, 1134026},
    {"mlp_mixer_S4", ENG_TEMPLATE_MLP_MIXER, 4, 128, 6, 273674},
    {"mlp_mixer_S2", ENG_TEMPLATE_MLP_MIXER, 2, 128, 6, 1062026},
    {"mlp_mixer_B4", ENG_TEMPLATE_MLP_MIXER, 4, 192, 8, 698186},
    {"mlp_mixer_B2", ENG_TEMPLATE_MLP_MIXER, 2, 192, 8, 1756106},
};

void seed_model_desc(const seed_model *s, eng_head head, eng_model_desc *m)
{
    eng_model_desc_default(m);
    m->template_kind = s->kind;
    m->head = head;
    if (s->kind == ENG_TEMPLATE_CNN) {
        m->channels = cnn_channels;
        m->n_channels = sizeof cnn_channels / sizeof *cnn_channels;
        m->activation = ENG_ACT_RELU;
        m->batch_norm = true;
        m->pool_kernel = 3;
        m->pool_stride = 2;
    } else if (s->kind == ENG_TEMPLATE_RESNET) {
        m->channels = resnet_channels;
        m->n_channels = sizeof resnet_channels / sizeof *resnet_channels;
        m->block = ENG_BLOCK_SMALL;
    } else {
        m->patch_size = s->patch;
        m->hidden = s->hidden;
        m->depth = s->depth;
        m->patching = ENG_PATCHING_RESHAPE;
    }
}

const seed_model *seed_model_find(const char *name)
{
    for (int i = 0; i < SEED_MODEL_COUNT; i++)
        if (!strcmp(seed_models[i].name, name))
            return &seed_models[i];
    return NULL;
}

bool seed_model_wanted(const char *list, const char *name)
{
    if (!list || !*list)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}
