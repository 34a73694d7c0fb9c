/* Defaults, names and dataset geometry for the plain descriptions. */
#include "engine/desc.h"

#include <string.h>

#include "engine/error.h"

void eng_data_desc_default(eng_data_desc *d)
{
    memset(d, 0, sizeof *d);
    d->dataset = ENG_DATASET_CIFAR10;
    d->batch_size = 500;
    d->eval_batch_size = 0;
    d->shuffle = true;
    d->drop_last = true;
    d->synth_shape = eng_shape3(3, 32, 32);
    d->synth_classes = 10;
    d->synth_train = 5000;
    d->synth_test = 1000;
    d->layout = ENG_LAYOUT_NCHW;
    d->image_c = 3;
}

void eng_model_desc_default(eng_model_desc *m)
{
    memset(m, 0, sizeof *m);
    m->template_kind = ENG_TEMPLATE_CNN;
    m->head = ENG_HEAD_LOGITS;
    m->activation = ENG_ACT_RELU;
    m->batch_norm = true;
    m->bias = false;
    m->pool_kernel = 3;
    m->pool_stride = 2;
    m->block = ENG_BLOCK_SMALL;
    m->patch_size = 4;
    m->hidden = 128;
    m->depth = 6;
    m->patching = ENG_PATCHING_PATCHES;
}

void eng_train_desc_default(eng_train_desc *t)
{
    memset(t, 0, sizeof *t);
    t->seed = 0;
    t->epochs = 600;
    t->optimizer = ENG_OPT_ADAM;
    t->lr = 1.0e-3f;
    t->beta1 = 0.9f;
    t->beta2 = 0.999f;
    t->eps = 1.0e-8f;
    t->weight_decay = 1.0e-4f;
    t->momentum = 0.0f;
    t->nesterov = false;
    t->grad_clip = 0.0f;
    t->warmup_epochs = 0.0f;
    t->schedule = ENG_SCHED_CONSTANT;
    t->step_epochs = 30;
    t->gamma = 0.1f;
    t->min_lr = 0.0f;
    t->top_k = 1;
    t->precision = ENG_PREC_FP32;
    t->checkpoint_every = 1;
    t->keep_best = true;
    t->stop_on_nonfinite = true;
}

int eng_dataset_geometry(const eng_data_desc *d, eng_shape *shape, int64_t *classes)
{
    switch (d->dataset) {
    case ENG_DATASET_CIFAR10:
        *shape = eng_shape3(3, 32, 32);
        *classes = 10;
        return 0;
    case ENG_DATASET_CIFAR100:
        *shape = eng_shape3(3, 32, 32);
        *classes = 100;
        return 0;
    case ENG_DATASET_MNIST:
    case ENG_DATASET_FASHION_MNIST:
        *shape = eng_shape3(1, 28, 28);
        *classes = 10;
        return 0;
    case ENG_DATASET_SYNTHETIC:
        *shape = d->synth_shape;
        *classes = d->synth_classes;
        return 0;
    case ENG_DATASET_FOLDER:
    case ENG_DATASET_NPY:
        if (d->file_shape.ndim < 1 || d->file_classes < 1)
            return eng_error(ENG_EINVAL, "%s dataset %s: its shape and classes are not known until its files are read",
                             eng_dataset_name(d->dataset), d->root);
        *shape = d->file_shape;
        *classes = d->file_classes;
        return 0;
    case ENG_DATASET__COUNT:
        break;
    }
    return eng_error(ENG_EINVAL, "unknown dataset kind %d", (int)d->dataset);
}

#define NELEM(a) (int)(sizeof a / sizeof a[0])

const char *const eng_dataset_names[] = {
    [ENG_DATASET_CIFAR10] = "cifar10",
    [ENG_DATASET_CIFAR100] = "cifar100",
    [ENG_DATASET_MNIST] = "mnist",
    [ENG_DATASET_FASHION_MNIST] = "fashion_mnist",
    [ENG_DATASET_SYNTHETIC] = "synthetic",
    [ENG_DATASET_FOLDER] = "folder",
    [ENG_DATASET_NPY] = "npy",
};
_Static_assert(NELEM(eng_dataset_names) == ENG_DATASET__COUNT, "every dataset kind has a name");

const char *const eng_template_names[] = {
    [ENG_TEMPLATE_MLP] = "mlp",
    [ENG_TEMPLATE_CNN] = "cnn",
    [ENG_TEMPLATE_RESNET] = "resnet",
    [ENG_TEMPLATE_MLP_MIXER] = "mlp_mixer",
    [ENG_TEMPLATE_SEQUENTIAL] = "sequential",
};
_Static_assert(NELEM(eng_template_names) == ENG_TEMPLATE__COUNT, "every template has a name");

const char *const eng_layer_kind_names[] = {
    [ENG_LAYER_LINEAR] = "linear",
    [ENG_LAYER_CONV2D] = "conv2d",
    [ENG_LAYER_BATCHNORM] = "batchnorm",
    [ENG_LAYER_LAYERNORM] = "layernorm",
    [ENG_LAYER_RELU] = "relu",
    [ENG_LAYER_LEAKY_RELU] = "leaky_relu",
    [ENG_LAYER_GELU] = "gelu",
    [ENG_LAYER_SIGMOID] = "sigmoid",
    [ENG_LAYER_TANH] = "tanh",
    [ENG_LAYER_SOFTMAX] = "softmax",
    [ENG_LAYER_MAXPOOL] = "maxpool",
    [ENG_LAYER_AVGPOOL] = "avgpool",
    [ENG_LAYER_GLOBAL_AVGPOOL] = "global_avgpool",
    [ENG_LAYER_FLATTEN] = "flatten",
    [ENG_LAYER_DROPOUT] = "dropout",
    [ENG_LAYER_RESIDUAL] = "residual",
    [ENG_LAYER_TRANSPOSE] = "transpose",
    [ENG_LAYER_MEAN] = "mean",
    [ENG_LAYER_PATCHES] = "patches",
    [ENG_LAYER_RESHAPE] = "reshape",
    [ENG_LAYER_PAD_CHANNELS] = "pad_channels",
    [ENG_LAYER_MIXER] = "mixer",
};
_Static_assert(NELEM(eng_layer_kind_names) == ENG_LAYER__COUNT, "every layer kind has a name");

const char *const eng_act_names[] = {
    [ENG_ACT_NONE] = "none",
    [ENG_ACT_RELU] = "relu",
    [ENG_ACT_LEAKY_RELU] = "leaky_relu",
    [ENG_ACT_GELU] = "gelu",
    [ENG_ACT_SIGMOID] = "sigmoid",
    [ENG_ACT_TANH] = "tanh",
};
_Static_assert(NELEM(eng_act_names) == ENG_ACT__COUNT, "every activation has a name");

const char *eng_dataset_name(eng_dataset_kind k)
{
    return (unsigned)k < ENG_DATASET__COUNT ? eng_dataset_names[k] : "?";
}

const char *eng_template_name(eng_template t)
{
    return (unsigned)t < ENG_TEMPLATE__COUNT ? eng_template_names[t] : "?";
}

const char *eng_layer_kind_name(eng_layer_kind k)
{
    return (unsigned)k < ENG_LAYER__COUNT ? eng_layer_kind_names[k] : "?";
}

const char *eng_act_name(eng_act a) { return (unsigned)a < ENG_ACT__COUNT ? eng_act_names[a] : "?"; }
