/* A model: a tree of modules built from an eng_model_desc, with all
 * parameters in one flat buffer, all gradients in another, BatchNorm running
 * statistics in a third, and activation memory planned once for a maximum
 * batch size.
 *
 * Life cycle: eng_model_build (shapes, names, parameter counts, FLOPs; no
 * backend memory, so `check` and `summary` need no dataset and no device) ->
 * eng_model_bind (allocates on a backend) -> eng_model_init_params or a
 * checkpoint load -> forward/backward per step -> eng_model_free. */
#ifndef ENG_MODEL_H
#define ENG_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/desc.h"
#include "engine/shape.h"

typedef struct eng_model eng_model;

/* Receives one problem found in a description. `path` is the spec key path
 * the problem belongs to ("model.channels[13]", "model.patch_size"); schema/
 * turns it into file:line:col. The model build reports every problem it can
 * find, not only the first. */
typedef void (*eng_diag_fn)(void *ctx, const char *path, const char *message);

#define ENG_NAME_MAX 96

/* A named tensor of the model: a trainable parameter or a buffer. */
typedef struct eng_tensor_info {
    char name[ENG_NAME_MAX]; /* "3.weight", "blocks.0.1.bias", "1.running_mean" */
    eng_shape shape;         /* PyTorch layout: Linear [out, in], Conv2d [out, in, kh, kw] */
    int64_t numel;
    int64_t offset;          /* in floats, into the parameter buffer or the buffer buffer */
} eng_tensor_info;

/* One row of the summary: a module of the tree in forward order. */
typedef struct eng_layer_info {
    char name[ENG_NAME_MAX]; /* "3", "2.b.0", "blocks.1"; "" for the whole model */
    const char *type;        /* "conv2d", "residual", ... */
    int depth;               /* 0 for the model, 1 for its direct children, ... */
    eng_shape out;           /* per-sample output shape */
    int64_t params;          /* trainable parameters, children included */
    int64_t flops;           /* forward FLOPs per sample, children included */
    bool blocked;            /* once bound: its input or output passes in the backend's blocked layout */
} eng_layer_info;

/* Builds the module tree for `input` samples and `classes` outputs. Problems
 * go to diag (may be NULL) and make the call fail with ENG_EINVAL. */
int eng_model_build(const eng_model_desc *desc, const eng_shape *input, int64_t classes, eng_diag_fn diag,
                    void *diag_ctx, eng_model **out);
void eng_model_free(eng_model *m);

eng_shape eng_model_input_shape(const eng_model *m);
int64_t eng_model_classes(const eng_model *m);
int64_t eng_model_param_count(const eng_model *m);  /* trainable floats */
int64_t eng_model_buffer_count(const eng_model *m); /* running statistics floats */
int64_t eng_model_flops(const eng_model *m);        /* forward, per sample */

/* Tables in forward order; the pointer stays valid until eng_model_free. */
int eng_model_params(const eng_model *m, const eng_tensor_info **out);
int eng_model_buffers(const eng_model *m, const eng_tensor_info **out);
int eng_model_layers(const eng_model *m, const eng_layer_info **out);

/* Bytes eng_model_bind would allocate on the CPU backend for max_batch
 * (parameters, gradients, buffers, activations, workspace) - for limits. */
size_t eng_model_memory_estimate(const eng_model *m, int64_t max_batch);

/* Allocates parameters, gradients, buffers and activations for batches of
 * up to max_batch samples on backend b (which must outlive the model). */
int eng_model_bind(eng_model *m, eng_backend *b, int64_t max_batch);
eng_backend *eng_model_backend(const eng_model *m);
size_t eng_model_bound_bytes(const eng_model *m);

/* Backend pointers to the flat buffers (valid after bind). */
float *eng_model_param_data(eng_model *m);
float *eng_model_grad_data(eng_model *m);
float *eng_model_buffer_data(eng_model *m);

/* PyTorch's default initialisation of every parameter and buffer, drawn
 * from Philox streams keyed by (seed, parameter index). */
int eng_model_init_params(eng_model *m, uint64_t seed);

/* Forward pass of `batch` samples x (backend memory, batch x input shape).
 * training: batch statistics and dropout; dropout_key selects the masks.
 * *out points at the (batch, classes) output in backend memory. */
int eng_model_forward(eng_model *m, const float *x, int64_t batch, bool training, uint64_t dropout_key,
                      const float **out);

/* Backward pass of the last training forward, from d(loss)/d(output) of
 * shape (batch, classes); overwrites every gradient in the gradient buffer. */
int eng_model_backward(eng_model *m, const float *dout);

/* Per-layer timing, a profiling aid: while on, each module inside a chain
 * (every row of eng_model_layers that a sequential or block holds) is timed
 * in forward and backward, after a backend sync, and the seconds are added
 * up; layer_times writes them per eng_model_layers row (0 where a row is
 * not timed). Only training steps are timed (their forward and backward
 * passes), not evaluation. The clock is the wall clock, or the process's
 * CPU time (all threads; steadier than the wall clock on a busy machine,
 * and equal to it on one thread). Turning it on resets the sums. */
typedef enum eng_profile { ENG_PROFILE_OFF = 0, ENG_PROFILE_WALL = 1, ENG_PROFILE_CPU_TIME = 2 } eng_profile;
void eng_model_profile(eng_model *m, eng_profile clock);
void eng_model_layer_times(const eng_model *m, double *forward_s, double *backward_s);

/* Steps of BatchNorm statistics tracked (PyTorch's num_batches_tracked). */
int64_t eng_model_batches_tracked(const eng_model *m);
void eng_model_set_batches_tracked(eng_model *m, int64_t n);

#endif
