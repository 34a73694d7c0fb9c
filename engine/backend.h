/* The backend operation table: every computation the model code performs.
 *
 * A backend (CPU here, CUDA in gpu/) implements this table; layers, losses and
 * optimizers call only it, so the same model runs on either. All pointers
 * passed to an operation are backend memory (host memory for the CPU, device
 * memory for CUDA) obtained from `alloc`; scalars are passed by value except
 * where a result must stay on the device (`double *acc`, `double *sumsq`) so
 * that a training step needs no host synchronisation.
 *
 * Layouts are row-major; images are NCHW; token tensors are (B, S, C).
 * Every operation returns 0 or a negative ENG_E* code with eng_error() set.
 * Backward operations overwrite what they write (dx, dw, dgamma...) and, where
 * an input gradient dx may be NULL, skip computing it. Outputs must not
 * overlap inputs unless an operation says so. */
#ifndef ENG_BACKEND_H
#define ENG_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eng_backend eng_backend;

typedef enum eng_device_kind { ENG_DEVICE_CPU = 0, ENG_DEVICE_CUDA = 1 } eng_device_kind;

/* Numeric precision of the compute (storage of parameters and activations
 * stays float32; bf16 keeps float32 master weights and optimizer state). */
typedef enum eng_precision { ENG_PREC_FP32 = 0, ENG_PREC_TF32 = 1, ENG_PREC_BF16 = 2 } eng_precision;

typedef enum eng_act {
    ENG_ACT_NONE = 0,
    ENG_ACT_RELU,
    ENG_ACT_LEAKY_RELU, /* slope for x < 0 */
    ENG_ACT_GELU,       /* exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) */
    ENG_ACT_SIGMOID,
    ENG_ACT_TANH,
    ENG_ACT__COUNT
} eng_act;

/* C[i] = alpha * op(A[i]) op(B[i]) + beta * C[i] for i < batch, where
 * op(A) is m x k, op(B) is k x n, C is m x n, all row-major with leading
 * dimensions lda/ldb/ldc, and matrix i starts at A + i*stride_a etc.
 * ta: A is stored k x m (transposed). batch = 1 is a plain GEMM. A stride of
 * 0 shares one matrix across the batch (a weight applied to every sample).
 * reduce_batch: one C = alpha * sum_i op(A[i]) op(B[i]) + beta * C instead
 * (stride_c ignored) - the weight gradient of a per-sample left multiply,
 * e.g. the MLP-Mixer's token mixing; summed in a fixed order. */
typedef struct eng_gemm_desc {
    bool ta, tb;
    int64_t m, n, k;
    int64_t lda, ldb, ldc;
    int64_t batch;
    int64_t stride_a, stride_b, stride_c;
    float alpha, beta;
    bool reduce_batch;
    /* A (B) holds bf16 values - uint16_t, a float's top half - at the same
     * strides, counted in elements; the pointer is passed as float * all
     * the same. Only a backend computing in bf16 takes them (the CPU);
     * the others refuse with ENG_ENOTSUP. A tensor stored once in bf16
     * by its producer (layernorm_forward_bf16, bias_act_bf16) is then not
     * rounded again by every product that reads it. */
    bool a_bf16, b_bf16;
} eng_gemm_desc;

/* 2-d convolution, NCHW input (n, c, h, w), weights (k, c, kh, kw),
 * output (n, k, oh, ow); square stride and symmetric zero padding. */
typedef struct eng_conv_desc {
    int64_t n, c, h, w;
    int64_t k, kh, kw;
    int64_t stride, pad;
    int64_t oh, ow;
    /* Optional (NULL: none): keep_bytes >= conv2d_keep(d) bytes, kept by
     * the caller from a training forward to the backward of the same x,
     * which x must not change in between: the forward may leave there what
     * the backward would otherwise compute again (x in the kernel's layout).
     * An evaluation forward may be given it too, as room for that copy. */
    void *keep;
    size_t keep_bytes;
    /* x and dx (x_blocked), y and dy (y_blocked) in the blocked layout
     * ENG_BLOCK16 instead of NCHW; only where conv2d_blocked(d) said yes. */
    bool x_blocked, y_blocked;
} eng_conv_desc;

/* The blocked layout of an NCHW tensor whose C is a multiple of 16
 * (oneDNN's nChw16c): value (i, c, p) of sample i, channel c, pixel p < HW
 * at ((i * C/16 + c/16) * HW + p) * 16 + c % 16. On the CPU it is the
 * layout oneDNN's convolutions compute in; a chain conv -> batchnorm ->
 * (relu) -> (max pool) -> conv passes its tensors so, forward and
 * backward, instead of reordering them into NCHW and back at every
 * convolution (engine/model.c, pair_blocked). */
#define ENG_BLOCK16 16

typedef enum eng_pool_mode { ENG_POOL_MAX = 0, ENG_POOL_AVG = 1 } eng_pool_mode;

/* 2-d pooling over NCHW; padding counts as -inf for max. For avg,
 * count_include_pad divides by kh*kw (PyTorch's default) else by the number
 * of in-bounds elements. pad <= kernel / 2; oh = floor((h + 2 pad - kh) /
 * stride) + 1. Max backward routes each gradient to the first maximum of its
 * window in row-major order (PyTorch: the last one when several tie; ties
 * are rare in float data); a window of -inf routes to its first in-bounds
 * element. */
typedef struct eng_pool_desc {
    eng_pool_mode mode;
    bool count_include_pad;
    int64_t n, c, h, w;
    int64_t kh, kw, stride, pad;
    int64_t oh, ow;
    /* Optional (NULL: none), as eng_conv_desc.keep: keep_bytes >=
     * pool_keep(d) bytes, kept by the caller from a training forward to the
     * backward of the same x and y, which must not change in between: the
     * forward may leave there where each window's maximum lies, which the
     * backward then need not find again in x. */
    void *keep;
    size_t keep_bytes;
    /* x, y, dx and dy in the blocked layout ENG_BLOCK16; only where
     * pool_blocked(d) said yes */
    bool blocked;
} eng_pool_desc;

/* Normalisation over a tensor viewed as (outer, n, inner).
 * BatchNorm: statistics per index j < n over all (outer, inner); BatchNorm2d
 *   on NCHW is (N, C, H*W), BatchNorm1d on (B, F) is (B, F, 1).
 * LayerNorm: statistics per (outer, inner) over j < n; gamma/beta have n
 *   entries indexed by j. Over the last dim: (rows, n, 1); the seed's token
 *   mixing norm over S of a (B, S, C) tensor: (B, S, C). */
typedef struct eng_norm_desc {
    int64_t outer, n, inner;
    float eps;
    float momentum; /* BatchNorm running statistics: r = (1-m) r + m batch */
    /* BatchNorm only: x, y, dx and dy in the blocked layout ENG_BLOCK16
     * (n a multiple of 16, inner the pixels); only between convolutions
     * for which conv2d_blocked said yes. */
    bool blocked;
} eng_norm_desc;

/* Softmax cross-entropy on logits (rows, classes) with int32 labels in
 * [0, classes) (the CPU rejects others; a GPU kernel cannot fail and yields
 * a NaN loss):
 * acc[0] += sum of per-row losses, acc[1] += rows whose label ranks among
 * the k largest logits (ties: a lower class index ranks first);
 * dlogits (nullable) = scale * (softmax(logits) - onehot(label)). */
typedef struct eng_xent_desc {
    int64_t rows, classes, k;
    float scale;
} eng_xent_desc;

/* Builds a float batch (n, c, h, w) from a uint8 dataset (N, c, h, w):
 * sample i is image idx[i]; with augmentation, aug[3*i+0..2] = (dy, dx, flip):
 * the output pixel (y, x) reads the image at (y + dy - pad, x + dx - pad)
 * (the pixel u = 0 outside, before normalisation) after a horizontal flip
 * when flip != 0; then
 * value = (u / 255 - mean[c]) * inv_std[c]. labels[i] = all_labels[idx[i]].
 * With f32 the dataset holds float32 values v (its `images` pointer points
 * at floats) and value = (v - mean[c]) * inv_std[c], v = 0 outside. */
#define ENG_MAX_CHANNELS 4
typedef struct eng_batch_desc {
    int64_t n, c, h, w;
    int64_t pad;              /* crop padding; 0 = none */
    bool augment;             /* aug is read only when set */
    bool f32;                 /* float32 dataset values instead of uint8 pixels */
    float mean[ENG_MAX_CHANNELS];
    float inv_std[ENG_MAX_CHANNELS];
} eng_batch_desc;

/* Adam / AdamW, as torch.optim: with weight decay wd,
 *   adam:  g += wd * p;                      adamw: p *= 1 - lr * wd
 *   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2
 *   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)     (t from 1) */
typedef struct eng_adam_args {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;
    bool decoupled; /* AdamW */
} eng_adam_args;

/* SGD as torch.optim.SGD (dampening 0): g += wd p; on the first step buf = g,
 * later buf = momentum buf + g; nesterov: g += momentum buf, else g = buf;
 * p -= lr g. momentum 0 means plain SGD and buf is not touched. */
typedef struct eng_sgd_args {
    float lr, momentum, weight_decay;
    bool nesterov;
    bool first; /* first step: buf = g */
} eng_sgd_args;

/* The per-step values of a captured training step (see eng_graph_ops):
 * the optimiser's scalars, substituted at every replay. */
typedef struct eng_step_scalars {
    eng_adam_args adam; /* used when adam_step was captured */
    eng_sgd_args sgd;   /* used when sgd_step was captured */
} eng_step_scalars;

typedef struct eng_backend_ops {
    void (*destroy)(eng_backend *b); /* frees the backend itself */

    /* memory */
    int (*alloc)(eng_backend *b, size_t bytes, void **out); /* zero-filled, 64-byte aligned */
    void (*free)(eng_backend *b, void *p);
    int (*upload)(eng_backend *b, void *dst, const void *host_src, size_t bytes);
    int (*download)(eng_backend *b, void *host_dst, const void *src, size_t bytes);
    int (*copy)(eng_backend *b, void *dst, const void *src, size_t bytes);
    int (*fill)(eng_backend *b, float *x, int64_t n, float value);
    int (*sync)(eng_backend *b);

    /* dense algebra */
    int (*gemm)(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C);
    /* y[o, j, i] += bias[j] for y viewed as (outer, n, inner) */
    int (*bias_add)(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias);
    /* db[j] = sum over (o, i) of dy[o, j, i] (overwrites db) */
    int (*bias_grad)(eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db);
    /* y = a + c elementwise (y may alias a or c) */
    int (*add)(eng_backend *b, int64_t n, const float *a, const float *c, float *y);
    /* dst[r, 0:cols] = src[r, 0:cols] for r < rows, leading dimensions ld_* */
    int (*copy_2d)(eng_backend *b, int64_t rows, int64_t cols, const float *src, int64_t ld_src, float *dst,
                   int64_t ld_dst);
    /* y[i, c, r] = x[i, r, c] for x (batch, rows, cols); not in place */
    int (*transpose)(eng_backend *b, int64_t batch, int64_t rows, int64_t cols, const float *x, float *y);
    /* y[r] = mean of x[r, 0:n];  backward: dx[r, j] = dy[r] / n */
    int (*mean_lastdim_forward)(eng_backend *b, int64_t rows, int64_t n, const float *x, float *y);
    int (*mean_lastdim_backward)(eng_backend *b, int64_t rows, int64_t n, const float *dy, float *dx);

    /* convolution; ws has conv2d_workspace(d) bytes, and a workspace sized for
     * a batch of n also serves every smaller batch of the same shape */
    size_t (*conv2d_workspace)(eng_backend *b, const eng_conv_desc *d);
    int (*conv2d_forward)(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w,
                          const float *bias /* nullable */, float *y, void *ws);
    /* dw (and db if not NULL) are overwritten; dx is skipped when NULL */
    int (*conv2d_backward)(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float *db, void *ws);

    /* pooling; max backward routes to the first maximum of each window */
    int (*pool_forward)(eng_backend *b, const eng_pool_desc *d, const float *x, float *y);
    int (*pool_backward)(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y,
                         const float *dy, float *dx);

    /* batch normalisation (gamma, beta NULL when not affine). Training uses
     * the biased batch variance and updates running_var with the unbiased one;
     * save_mean / save_invstd (n entries) are kept for backward. */
    int (*batchnorm_forward_train)(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                   const float *beta, float *y, float *running_mean, float *running_var,
                                   float *save_mean, float *save_invstd);
    int (*batchnorm_forward_eval)(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                  const float *beta, const float *running_mean, const float *running_var,
                                  float *y);
    /* dgamma, dbeta overwritten (ignored when gamma is NULL); dx NULL: only
     * the parameter gradients (a normalisation that is a model's first layer) */
    int (*batchnorm_backward)(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                              const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                              float *dgamma, float *dbeta);

    /* layer normalisation; save_mean / save_rstd have outer*inner entries */
    int (*layernorm_forward)(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                             const float *beta, float *y, float *save_mean, float *save_rstd);
    int (*layernorm_backward)(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                              const float *gamma, const float *save_mean, const float *save_rstd, float *dx,
                              float *dgamma, float *dbeta);

    /* elementwise activations; forward may run in place (y == x), backward
     * too (dx == dy). Backward reads x for relu, leaky_relu and gelu and y for
     * sigmoid and tanh (relu also works from y, as y > 0 exactly where x > 0).
     * y, where given, must be act_forward's output for x: a backend may take
     * GELU's Phi(x) from it (the CPU does) */
    int (*act_forward)(eng_backend *b, eng_act kind, float slope, int64_t n, const float *x, float *y);
    int (*act_backward)(eng_backend *b, eng_act kind, float slope, int64_t n, const float *x, const float *y,
                        const float *dy, float *dx);

    /* softmax over the last dimension of (rows, n) */
    int (*softmax_forward)(eng_backend *b, int64_t rows, int64_t n, const float *x, float *y);
    int (*softmax_backward)(eng_backend *b, int64_t rows, int64_t n, const float *y, const float *dy, float *dx);

    /* softmax cross-entropy and top-k hits, accumulated on the backend */
    int (*xent)(eng_backend *b, const eng_xent_desc *d, const float *logits, const int32_t *labels,
                float *dlogits, double *acc);

    /* dropout: y = (x * keep) / (1 - p) computed in float in that order (so
     * backends agree bit for bit), keep = eng_philox_uniform(key, counter, i)
     * >= p (Philox 4x32-10, see rng.h); the same call with (dy, dx) is its
     * backward */
    int (*dropout)(eng_backend *b, int64_t n, float p, uint64_t key, uint64_t counter, const float *x, float *y);

    /* true p x p patches: x (n, c, h, w) -> y (n, (h/p)*(w/p), c*p*p), patch
     * index row-major over (h/p, w/p), features ordered (c, py, px) */
    int (*patchify_forward)(eng_backend *b, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p,
                            const float *x, float *y);
    int (*patchify_backward)(eng_backend *b, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p,
                             const float *dy, float *dx);

    /* input pipeline */
    int (*batch_gather)(eng_backend *b, const eng_batch_desc *d, const uint8_t *images, const int32_t *all_labels,
                        const int32_t *idx, const int16_t *aug, float *x, int32_t *labels);

    /* optimisers over flat buffers */
    int (*adam_step)(eng_backend *b, int64_t n, float *p, const float *g, float *m, float *v,
                     const eng_adam_args *a);
    int (*sgd_step)(eng_backend *b, int64_t n, float *p, const float *g, float *buf, const eng_sgd_args *a);
    /* *sumsq = sum of x[i]^2 (overwrites, double on the backend) */
    int (*sumsq)(eng_backend *b, int64_t n, const float *x, double *sumsq);
    /* torch.nn.utils.clip_grad_norm_: norm = sqrt(*sumsq);
     * if max_norm / (norm + 1e-6) < 1, g *= max_norm / (norm + 1e-6) */
    int (*clip_by_norm)(eng_backend *b, int64_t n, float *g, const double *sumsq, float max_norm);

    /* Every entry from here on is optional (tests/gpu/test_gpu_host.c holds
     * the CUDA table to all of those above).
     *
     * Optional (NULL: the backend has one implementation per operation).
     * Where a backend picks among implementations per shape by measuring
     * (the CPU: its own kernels or oneDNN), the choice changes the bits, so
     * a checkpoint keeps it: record gives the choices made so far as text
     * (malloc'd; "" when none), restore makes a backend take those choices
     * for the shapes it names instead of choosing again. */
    int (*kernels_record)(eng_backend *b, char **text);
    int (*kernels_restore)(eng_backend *b, const char *text);

    /* Optional (NULL or 0: none): the bytes of eng_conv_desc.keep that serve
     * this backend for d (the CPU: oneDNN's reordered copy of x). */
    size_t (*conv2d_keep)(eng_backend *b, const eng_conv_desc *d);
    /* Optional (NULL or false: no): whether this backend runs d with its
     * x_blocked and y_blocked as set, and the batchnorm ops with blocked on
     * such tensors. The answer does not depend on d->n. */
    bool (*conv2d_blocked)(eng_backend *b, const eng_conv_desc *d);
    /* Optional (NULL or false: no): whether this backend pools d with its
     * tensors blocked. The answer does not depend on d->n. */
    bool (*pool_blocked)(eng_backend *b, const eng_pool_desc *d);
    /* Optional (NULL or 0: none): the bytes of eng_pool_desc.keep that serve
     * this backend for d (the CPU: a max pool's argmax, a byte per output). */
    size_t (*pool_keep)(eng_backend *b, const eng_pool_desc *d);

    /* Optional fused epilogues (NULL: callers run the separate operations).
     * Each gives exactly the bits of the operations it replaces, in one pass
     * over memory instead of two:
     *   bias_act:      bias_add(y, bias), then out = act(y)  (y keeps y + bias)
     *   bias_residual: bias_add(y, bias), then y = y + res */
    int (*bias_act)(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias,
                    eng_act kind, float slope, float *out);
    int (*bias_residual)(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias,
                         const float *res);
    /*   batchnorm_relu_forward_*: the batchnorm_forward_* of the same
     *   arguments, then act_forward(relu) in place on y; the training
     *   pass also writes save_apply (2 n floats), with which
     *   batchnorm_relu_backward finds the relu's mask again from x */
    int (*batchnorm_relu_forward_train)(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                        const float *beta, float *y, float *running_mean, float *running_var,
                                        float *save_mean, float *save_invstd, float *save_apply);
    int (*batchnorm_relu_forward_eval)(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                       const float *beta, const float *running_mean, const float *running_var,
                                       float *y);
    /*   batchnorm_relu_backward: act_backward(relu) of dy, from the output y
     *   of the batchnorm_relu_forward_train that saved save_*, then
     *   batchnorm_backward of the result with the other arguments (beta,
     *   NULL when not affine, is the forward's); the mask is found again
     *   from x, so y is not read */
    int (*batchnorm_relu_backward)(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                                   const float *gamma, const float *beta, const float *save_mean,
                                   const float *save_invstd, const float *save_apply, float *dx, float *dgamma,
                                   float *dbeta);
    /*   pool_relu_backward: pool_backward (max) of the same arguments, then
     *   act_backward(relu) in place on dx with x as the relu's output: the
     *   gradient through a relu right before the pool (dx stays 0 where
     *   x <= 0, so those positions take no additions at all) */
    int (*pool_relu_backward)(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y,
                              const float *dy, float *dx);
    /*   layernorm_backward_add: layernorm_backward of the same arguments,
     *   then dx = dx + res (res the gradient that bypassed the norm; it
     *   must not overlap dx, and dx is required); dx16, when set (only in
     *   bf16: ENG_ENOTSUP elsewhere), also gets dx's bf16 rounding, as
     *   the *_bf16 operations below */
    int (*layernorm_backward_add)(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                                  const float *gamma, const float *save_mean, const float *save_rstd,
                                  const float *res, float *dx, uint16_t *dx16, int64_t tb, float *dgamma,
                                  float *dbeta);
    /*   act_bias_backward: act_backward over the (outer, n, inner) tensor,
     *   then bias_grad(outer, n, inner, dx, db) */
    int (*act_bias_backward)(eng_backend *b, eng_act kind, float slope, int64_t outer, int64_t n, int64_t inner,
                             const float *x, const float *y, const float *dy, float *dx, float *db);

    /* Optional bf16 outputs, for backends computing in bf16 (NULL or
     * ENG_ENOTSUP elsewhere): y16 gets the bf16 rounding (to nearest even)
     * of what the float32 operation writes, for products to read through
     * eng_gemm_desc.a_bf16 / b_bf16. Each bf16 output comes with tb, its
     * layout: 0, the float32 tensor's; tb > 0, the tensor seen as
     * (tb, M, L) - L its last dimension: inner, or n where inner is 1 -
     * stored as (M, tb, L). That is the token-major layout in which the
     * mixer's token products see every sample's (S, C) plane side by side:
     * its token weight gradients become one product over all samples, with
     * nothing restacked. tb must divide the tensor's rows (ENG_EINVAL).
     *   layernorm_forward_bf16: layernorm_forward with its output in bf16
     *   only (the statistics stay float32);
     *   bias_act_bf16: bias_act, and out's bf16 copy into out16 too */
    int (*layernorm_forward_bf16)(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                  const float *beta, uint16_t *y16, int64_t tb, float *save_mean,
                                  float *save_rstd);
    int (*bias_act_bf16)(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias,
                         eng_act kind, float slope, float *out, uint16_t *out16, int64_t tb);
    /*   act_bias_backward_bf16: act_bias_backward with dx in bf16 only (db
     *   from the float32 dx, as act_bias_backward computes it) */
    int (*act_bias_backward_bf16)(eng_backend *b, eng_act kind, float slope, int64_t outer, int64_t n,
                                  int64_t inner, const float *x, const float *y, const float *dy, uint16_t *dx16,
                                  int64_t tb, float *db);
    /*   bias_grad_bf16: bias_grad, and dy's bf16 copy into dy16 from the
     *   same pass (for the products that read dy after it) */
    int (*bias_grad_bf16)(eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db,
                          uint16_t *dy16, int64_t tb);
} eng_backend_ops;

/* Optional capture of a fixed-shape step (CUDA graphs), apart from the
 * operation table because only some backends have it (eng_backend.graph;
 * NULL on the CPU). Between begin and end the operations are recorded, not
 * run, and end makes them one replayable graph; launch queues one replay
 * (asynchronously, like the operations). While capturing, alloc, free,
 * upload, download and sync are refused (they allocate or wait on the host)
 * and end then fails; an operation that fails makes end fail with its
 * error, and end always closes the capture. Every argument is frozen at
 * capture - pointers, shapes, descriptions, dropout keys - except the
 * optimiser's: adam_step and sgd_step recorded in a graph take their
 * eng_adam_args / eng_sgd_args from `s` at each launch (s may be NULL when
 * no optimiser step was recorded). xent's acc and sumsq/clip_by_norm keep
 * their values on the backend, so they replay correctly. Graphs are freed
 * before their backend; free(b, NULL) is a no-op. */
typedef struct eng_graph_ops {
    int (*begin)(eng_backend *b);
    int (*end)(eng_backend *b, void **graph);
    int (*launch)(eng_backend *b, void *graph, const eng_step_scalars *s);
    void (*free)(eng_backend *b, void *graph);
} eng_graph_ops;

struct eng_backend {
    const eng_backend_ops *ops;
    const eng_graph_ops *graph; /* NULL: the backend cannot capture */
    eng_device_kind kind;
    eng_precision precision;
    int threads;     /* CPU worker threads */
    int device;      /* CUDA ordinal */
    char name[32];   /* "cpu", "cuda:0" */
    void *impl;
};

/* The CPU backend (own kernels, OpenBLAS and oneDNN on one OpenMP pool of
 * `threads` threads; <= 0: all cores). eng_cpu_backend_new computes in
 * fp32; eng_cpu_backend_open takes fp32 or bf16 (tf32 is a GPU format:
 * ENG_ENOTSUP). bf16 rounds the inputs of every convolution and matrix
 * product to bf16 and accumulates in float32 - on oneDNN's bf16 kernels
 * where it has them, else by rounding and our own float32 kernels, which
 * gives the same products - and keeps everything else in float32. */
int eng_cpu_backend_new(int threads, eng_backend **out);
int eng_cpu_backend_open(int threads, eng_precision prec, eng_backend **out);

/* What the CPU backend runs on this machine. */
typedef struct eng_cpu_info {
    char model[96];      /* /proc/cpuinfo's model name */
    char isa[16];        /* the level our own kernels run at: "x86-64-v4" */
    char isa_max[16];    /* the most this CPU supports (EPOCHD_CPU_ISA may lower isa) */
    char onednn_isa[24]; /* oneDNN's instruction set ("avx512_core_bf16"); "" when it cannot start */
    char onednn_version[16];
    bool bf16_native;    /* bf16 products on bf16 instructions (AVX512-BF16 or AMX) */
    bool amx;
    int cores;           /* online processors */
    char blas_core[24];  /* the kernel set OpenBLAS runs ("Cooperlake", "Haswell") */
} eng_cpu_info;
int eng_cpu_info_get(eng_cpu_info *out);

/* Sets the level our own kernels run at ("v2", "v3", "v4"; at most what
 * the CPU supports, else ENG_ENOTSUP), for every CPU backend of the
 * process; what EPOCHD_CPU_ISA does at start. */
int eng_cpu_set_isa(const char *level);

/* The kernel set OpenBLAS runs in this process ("Cooperlake", "Haswell"),
 * and whether OPENBLAS_CORETYPE holds it below the CPU: an AVX2 set on a
 * CPU with AVX-512 (OpenBLAS reads the variable only when it loads; epochd
 * reports it and leaves it alone). */
const char *eng_cpu_blas_core(void);
bool eng_cpu_blas_core_held_back(void);
void eng_backend_free(eng_backend *b);

/* Convenience: allocate backend memory for n floats (zeroed). */
int eng_alloc_floats(eng_backend *b, int64_t n, float **out);

#endif
