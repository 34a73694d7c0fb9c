/* Plain C descriptions of a dataset, a model and a training setting.
 *
 * This is what the engine trains from. schema/ fills these from YAML (and
 * keeps the source locations); the engine never sees YAML. Lists are owned by
 * whoever built the description (schema/ frees them with the spec). */
#ifndef ENG_DESC_H
#define ENG_DESC_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/shape.h"

#define ENG_PATH_MAX 1024

/* ---- data ---- */

typedef enum eng_dataset_kind {
    ENG_DATASET_CIFAR10 = 0,
    ENG_DATASET_CIFAR100,
    ENG_DATASET_MNIST,
    ENG_DATASET_FASHION_MNIST,
    ENG_DATASET_SYNTHETIC,
    /* files the user brings (docs/data.md): their geometry is read from the
     * files (file_shape, file_classes below), not known from the kind */
    ENG_DATASET_FOLDER,        /* an image tree, trained from the cache datasets/ decodes it into */
    ENG_DATASET_NPY,           /* NumPy .npz / .npy arrays */
    ENG_DATASET__COUNT
} eng_dataset_kind;

/* How npy image arrays order their dimensions. */
typedef enum eng_layout { ENG_LAYOUT_NCHW = 0, ENG_LAYOUT_NHWC } eng_layout;

typedef struct eng_data_desc {
    eng_dataset_kind dataset;
    char root[ENG_PATH_MAX];   /* resolved (no symbolic links): its files are opened without following any */
    int64_t batch_size;
    int64_t eval_batch_size;   /* 0: batch_size */
    bool shuffle;
    bool drop_last;            /* drops the last partial training batch */
    bool normalize;            /* else pixels are scaled to [0, 1] */
    int n_norm;                /* entries in mean/std: 1 or the channel count */
    float mean[ENG_MAX_CHANNELS], std[ENG_MAX_CHANNELS];
    int64_t crop_padding;      /* random crop after zero padding; 0 = off */
    bool hflip;                /* random horizontal flip */
    int64_t limit_train, limit_test; /* first N samples of each split; 0 = all */
    /* dataset: synthetic */
    eng_shape synth_shape;
    int64_t synth_classes, synth_train, synth_test;
    /* dataset: npy */
    eng_layout layout;         /* of 4-d x arrays */
    int64_t classes;           /* folder, npy: the class count the spec asks for; 0 = from the files */
    /* dataset: folder (datasets/ decodes the tree into `cache`) */
    int64_t image_c, image_h, image_w; /* every image converted to image_c channels, resized and centre-cropped to h x w */
    double split_test;         /* single tree: the fraction of each class held out for testing; 0 = train/ and test/ trees */
    uint64_t split_seed;
    char cache[ENG_PATH_MAX];  /* the prepared cache directory (npy files, NCHW uint8); "" until prepared */
    /* folder, npy: what the files hold, filled from their headers before the
     * model is built (schema/ does when it looks at files); checked again
     * when loading. ndim 0 / 0 = not known. */
    eng_shape file_shape;
    int64_t file_classes;
} eng_data_desc;

/* The per-sample shape and class count a dataset kind produces (no files
 * read; folder and npy: file_shape / file_classes, ENG_EINVAL while unknown). */
int eng_dataset_geometry(const eng_data_desc *d, eng_shape *shape, int64_t *classes);
const char *eng_dataset_name(eng_dataset_kind k); /* "?" out of range */

/* ---- model ---- */

typedef enum eng_template {
    ENG_TEMPLATE_MLP = 0,
    ENG_TEMPLATE_CNN,
    ENG_TEMPLATE_RESNET,
    ENG_TEMPLATE_MLP_MIXER,
    ENG_TEMPLATE_SEQUENTIAL,
    ENG_TEMPLATE__COUNT
} eng_template;

typedef enum eng_head { ENG_HEAD_LOGITS = 0, ENG_HEAD_SOFTMAX, ENG_HEAD_SIGMOID } eng_head;
typedef enum eng_block { ENG_BLOCK_SMALL = 0, ENG_BLOCK_BIG } eng_block;
typedef enum eng_patching { ENG_PATCHING_PATCHES = 0, ENG_PATCHING_RESHAPE } eng_patching;

typedef enum eng_layer_kind {
    ENG_LAYER_LINEAR = 0,
    ENG_LAYER_CONV2D,
    ENG_LAYER_BATCHNORM,
    ENG_LAYER_LAYERNORM,
    ENG_LAYER_RELU,
    ENG_LAYER_LEAKY_RELU,
    ENG_LAYER_GELU,
    ENG_LAYER_SIGMOID,
    ENG_LAYER_TANH,
    ENG_LAYER_SOFTMAX,
    ENG_LAYER_MAXPOOL,
    ENG_LAYER_AVGPOOL,
    ENG_LAYER_GLOBAL_AVGPOOL,
    ENG_LAYER_FLATTEN,
    ENG_LAYER_DROPOUT,
    ENG_LAYER_RESIDUAL,
    /* beyond spec v1 (docs/design-changes.md): what the seed's residual CNN and MLP-Mixer need by hand */
    ENG_LAYER_TRANSPOSE,
    ENG_LAYER_MEAN,
    ENG_LAYER_PATCHES,
    ENG_LAYER_RESHAPE,
    ENG_LAYER_PAD_CHANNELS,
    ENG_LAYER_MIXER,
    ENG_LAYER__COUNT
} eng_layer_kind;

/* One entry of a `sequential` model (or of a residual's inner list).
 * Dimensions (mean's dim, reshape's shape) are those of one sample: the
 * batch dimension is not counted. */
typedef struct eng_layer_desc {
    eng_layer_kind kind;
    int64_t out;               /* linear, conv2d; pad_channels: the channel count after padding */
    int64_t kernel, stride, padding; /* conv2d, pools */
    bool bias;                 /* linear, conv2d */
    bool affine;               /* batchnorm, layernorm */
    int64_t dims;              /* layernorm: trailing dims normalised (1 or 2) */
    float slope;               /* leaky_relu */
    float p;                   /* dropout */
    int64_t dim;               /* mean: the dimension averaged; negative counts from the end (the spec's default -1) */
    int64_t patch_size;        /* patches: p of the p x p patches */
    eng_shape shape;           /* reshape: the per-sample shape after it (same element count) */
    struct eng_layer_desc *layers; /* residual */
    int64_t n_layers;
    eng_act post;              /* residual: ENG_ACT_NONE or ENG_ACT_RELU after the addition */
} eng_layer_desc;

typedef struct eng_model_desc {
    eng_template template_kind;
    char init_from[ENG_PATH_MAX]; /* "" = none; resolved, opened without following symbolic links */
    eng_head head;             /* cnn, resnet, mlp_mixer: logits | softmax; mlp: last_activation */
    /* mlp */
    int64_t *units;
    int64_t n_units;
    eng_act activation;        /* mlp, cnn */
    bool batch_norm;           /* mlp, cnn */
    bool bias;                 /* mlp (the seed: false) */
    /* cnn, resnet: channel list; cnn uses ENG_POOL_ENTRY for 'p' */
    int64_t *channels;
    int64_t n_channels;
    int64_t pool_kernel, pool_stride; /* cnn */
    eng_block block;           /* resnet */
    /* mlp_mixer */
    int64_t patch_size, hidden, depth;
    eng_patching patching;
    /* sequential */
    eng_layer_desc *layers;
    int64_t n_layers;
} eng_model_desc;

#define ENG_POOL_ENTRY (-1)

/* The spec's names of the kinds, indexed by kind (ENG_*__COUNT entries):
 * the one table that the engine's messages and summaries and the schema's
 * reading of a spec share, so that a kind is named where it is added. */
extern const char *const eng_dataset_names[];
extern const char *const eng_template_names[];
extern const char *const eng_layer_kind_names[];
extern const char *const eng_act_names[];

/* One name of those tables; "?" out of range. */
const char *eng_template_name(eng_template t);
const char *eng_layer_kind_name(eng_layer_kind k);
const char *eng_act_name(eng_act a);

/* ---- training ---- */

typedef enum eng_optimizer_kind { ENG_OPT_ADAM = 0, ENG_OPT_ADAMW, ENG_OPT_SGD } eng_optimizer_kind;
typedef enum eng_schedule_kind { ENG_SCHED_CONSTANT = 0, ENG_SCHED_COSINE, ENG_SCHED_STEP } eng_schedule_kind;

typedef struct eng_train_desc {
    uint64_t seed;
    int64_t epochs;
    eng_optimizer_kind optimizer;
    float lr, beta1, beta2, eps, weight_decay;
    float momentum;            /* sgd */
    bool nesterov;             /* sgd */
    float grad_clip;           /* max global L2 norm; 0 = off */
    float warmup_epochs;       /* linear warm-up over this many epochs of steps */
    eng_schedule_kind schedule;
    int64_t step_epochs;       /* step schedule */
    float gamma;               /* step schedule */
    float min_lr;              /* cosine floor */
    int64_t top_k;
    eng_precision precision;
    int64_t checkpoint_every;  /* epochs */
    bool keep_best;
    bool stop_on_nonfinite;    /* a NaN or infinite training loss stops the run (ENG_EDIVERGED) */
} eng_train_desc;

/* The defaults of each description (docs/spec.md gives them key by key). */
void eng_data_desc_default(eng_data_desc *d);
void eng_model_desc_default(eng_model_desc *m);
void eng_train_desc_default(eng_train_desc *t);

#endif
