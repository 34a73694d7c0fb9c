/* Modules: the nodes of a model's tree (engine-internal).
 *
 * A module is a layer (linear, conv2d, ...) or a container of modules
 * (sequential chain, residual block, mixer layer). Each concrete module type
 * embeds `eng_module` as its first member and allocates itself in its
 * constructor; the model owns the tree and frees it.
 *
 * Memory contract, planned once by the model (model.c):
 * - `y` holds the module's output for up to max_batch samples, kept from the
 *   forward pass to the backward pass. Modules with `y_alias` own no output
 *   storage: their forward sets `y` (to the input, or to a child's output).
 * - `saved` holds extra tensors kept for backward (BatchNorm statistics,
 *   LayerNorm statistics, pre-activation values): saved_fixed floats plus
 *   saved_per_sample per sample.
 * - `ws` is transient scratch valid only during the module's own forward or
 *   backward call; a container's children get workspace placed after the
 *   container's own, so nesting never overlaps (a stack discipline).
 * Parameters and gradients are views into the model's flat buffers: the
 * backward pass overwrites each parameter's gradient (every parameter is used
 * exactly once per forward pass). */
#ifndef ENG_MODULE_H
#define ENG_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/shape.h"

typedef struct eng_module eng_module;

/* What one forward or backward call runs under. */
typedef struct eng_step_ctx {
    eng_backend *b;
    int64_t batch;
    bool training;        /* batch statistics, dropout */
    uint64_t dropout_key; /* Philox key of this step's dropout masks */
    int profile;          /* 0, or the clock chains time each child with (eng_module.prof_s) */
} eng_step_ctx;

typedef enum eng_init {
    ENG_INIT_FAN_IN_UNIFORM = 0, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's Linear/Conv weight and bias */
    ENG_INIT_ONES,
    ENG_INIT_ZEROS,
} eng_init;

#define ENG_MODULE_MAX_PARAMS 12
#define ENG_MODULE_MAX_BUFFERS 4
#define ENG_LOCAL_NAME_MAX 48

/* A tensor a module declares; the model gives it a global name and offset. */
typedef struct eng_tensor_decl {
    char name[ENG_LOCAL_NAME_MAX]; /* local: "weight", "0.bias" */
    eng_shape shape;
    eng_init init;
    int64_t fan_in;
    int64_t index; /* into the model's parameter or buffer table */
} eng_tensor_decl;

typedef struct eng_module_ops {
    const char *type;
    /* writes the output for c->batch samples of input x (and sets y if y_alias) */
    int (*forward)(eng_module *m, const eng_step_ctx *c, const float *x);
    /* given x (the forward input) and dy, writes parameter gradients and, when
     * dx is not NULL, dx; must not write into dy */
    int (*backward)(eng_module *m, const eng_step_ctx *c, const float *x, const float *dy, float *dx);
    /* own transient workspace in bytes for `batch` samples (optional); b is
     * NULL for estimates made before binding, which want the largest figure
     * any backend gets (convolutions are estimated apart, see model.c) */
    size_t (*workspace)(const eng_module *m, eng_backend *b, int64_t batch);
    /* frees what the concrete type allocated besides itself (optional) */
    void (*destroy)(eng_module *m);
    /* bytes the backend keeps from forward to backward for `batch`
     * samples, besides `saved` (optional; placed at `kept`); b NULL: the
     * largest figure any backend gets, for estimates */
    size_t (*keep)(const eng_module *m, eng_backend *b, int64_t batch);
} eng_module_ops;

struct eng_module {
    const eng_module_ops *ops;
    char name[ENG_LOCAL_NAME_MAX]; /* path component; "" joins nothing */
    eng_shape in, out;             /* per sample */
    int64_t flops;                 /* own forward FLOPs per sample (children excluded) */

    eng_module **child;
    int nchild, cap_child;

    eng_tensor_decl param[ENG_MODULE_MAX_PARAMS];
    int nparam;
    eng_tensor_decl buffer[ENG_MODULE_MAX_BUFFERS];
    int nbuffer;
    float *w[ENG_MODULE_MAX_PARAMS];  /* bound parameter views */
    float *dw[ENG_MODULE_MAX_PARAMS]; /* bound gradient views */
    float *buf[ENG_MODULE_MAX_BUFFERS];

    bool y_alias;                  /* no output storage of its own */
    /* Fusion (eng_model_build pairs a batchnorm with the relu after it in a
     * chain): out_relu, the batchnorm applies the relu to its own output in
     * the same pass; relu_done, that relu's forward passes its input on as
     * its output (the mask of a relu'd value is the mask of the value, so
     * its backward needs nothing else). */
    bool out_relu, relu_done;
    /* Backward fusion: grad_relu, the backward also takes the gradient
     * through a neighbouring relu - a max pool's, the relu's right before
     * it (whose output is the pool's input); a batchnorm's, the relu's
     * right after it (out_relu); grad_passed, that relu's backward passes
     * the gradient on unchanged (the chain skips it). */
    bool grad_relu, grad_passed;
    /* Layout (eng_model_bind runs a chain conv2d -> batchnorm -> (fused
     * relu) -> (max pool) -> conv2d in the ENG_BLOCK16 layout where the
     * backend has it for every module of the chain): in_blocked, the
     * module's input and its gradient are in that layout; out_blocked, its
     * output and the output's gradient are. */
    bool in_blocked, out_blocked;
    int64_t saved_fixed, saved_per_sample;
    float *y;                      /* the output of the last forward pass */
    float *y_store;                /* planned output storage (NULL when y_alias) */
    float *saved;
    void *kept;        /* keep(m, b, max_batch) bytes, kept_bytes; NULL when none */
    size_t kept_bytes;
    void *ws;
    size_t ws_own; /* bytes, planned at bind */
    double prof_s[2]; /* profiling: seconds in forward, backward (timed by the parent chain) */
};

/* Allocates a module of `size` bytes (>= sizeof(eng_module)) with ops, name,
 * input shape; NULL on allocation failure (message set). */
eng_module *eng_module_alloc(size_t size, const eng_module_ops *ops, const char *name, const eng_shape *in);
/* Frees the module and its children. NULL is a no-op. */
void eng_module_free(eng_module *m);
/* Appends a child (the container takes ownership). */
int eng_module_add_child(eng_module *m, eng_module *child);
/* Declares a parameter / buffer; returns its local index. */
int eng_module_add_param(eng_module *m, const char *name, eng_shape shape, eng_init init, int64_t fan_in);
int eng_module_add_buffer(eng_module *m, const char *name, eng_shape shape, eng_init init);

/* Containers (container.c) */
/* A chain: output of each child feeds the next. */
eng_module *eng_sequential_new(const char *name, const eng_shape *in);
/* A chain shown in the summary as `type` ("padding_block", "block"). */
eng_module *eng_chain_new(const char *name, const char *type, const eng_shape *in);
/* Appends a child to a chain; the chain's output becomes the child's. */
int eng_seq_append(eng_module *seq, eng_module *child);
/* Output = post(x + inner(x)); `inner` must keep the shape; post is ENG_ACT_NONE or ENG_ACT_RELU. */
eng_module *eng_residual_new(const char *name, eng_module *inner, eng_act post);

/* Layers (one file each) */
eng_module *eng_linear_new(const char *name, const eng_shape *in, int64_t out, bool bias);
eng_module *eng_conv2d_new(const char *name, const eng_shape *in, int64_t out, int64_t kernel, int64_t stride,
                           int64_t pad, bool bias);
eng_module *eng_batchnorm_new(const char *name, const eng_shape *in, bool affine);
/* Whether b runs conv2d module m with its input (in) and output (out) in
 * the ENG_BLOCK16 layout. */
bool eng_conv2d_blocked(const eng_module *m, eng_backend *b, bool in, bool out);
/* Whether b runs pool module m with its tensors in the ENG_BLOCK16 layout. */
bool eng_pool_blocked(const eng_module *m, eng_backend *b);
/* LayerNorm over the trailing `dims` dimensions (1 or 2). */
eng_module *eng_layernorm_new(const char *name, const eng_shape *in, int dims, bool affine);
eng_module *eng_activation_new(const char *name, const eng_shape *in, eng_act kind, float slope);
eng_module *eng_softmax_new(const char *name, const eng_shape *in);
eng_module *eng_pool_new(const char *name, const eng_shape *in, eng_pool_mode mode, int64_t kernel, int64_t stride,
                         int64_t pad);
eng_module *eng_global_avgpool_new(const char *name, const eng_shape *in);
/* Views the input as `out` (same element count): flatten, the seed's reshape. */
eng_module *eng_reshape_new(const char *name, const char *type, const eng_shape *in, const eng_shape *out);
/* Appends zero channels: (C, H, W) -> (channels, H, W). */
eng_module *eng_pad_channels_new(const char *name, const eng_shape *in, int64_t channels);
/* Mean over dimension `dim` (0 .. ndim-1) of the sample, which it removes
 * (a 1-d sample gives (1)); eng_mean_lastdim_new: over the last one. */
eng_module *eng_mean_new(const char *name, const eng_shape *in, int dim);
eng_module *eng_mean_lastdim_new(const char *name, const eng_shape *in);
/* Swaps the last two dimensions (ndim >= 2): (..., R, C) -> (..., C, R). */
eng_module *eng_transpose_new(const char *name, const eng_shape *in);
/* True p x p patches of an image: (C, H, W) -> (H*W/p^2, C*p*p). */
eng_module *eng_patchify_new(const char *name, const eng_shape *in, int64_t p);
/* One MLP-Mixer layer on (S, C) tokens: token mixing then channel mixing,
 * each LayerNorm -> Linear -> GELU -> Linear plus the input. */
eng_module *eng_mixer_layer_new(const char *name, const eng_shape *in);
eng_module *eng_dropout_new(const char *name, const eng_shape *in, float p, uint64_t stream);

/* Output shape of a convolution or pooling window along one axis. */
int64_t eng_window_out(int64_t size, int64_t kernel, int64_t stride, int64_t pad);

#endif
