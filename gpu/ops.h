/* The CUDA backend's operation launchers: one per backend operation, each
 * checking its arguments, queuing kernels (or cuBLAS/cuDNN calls) on the
 * backend's stream and checking the launch. backend.c puts them in the
 * eng_backend_ops table behind the graph-capture bookkeeping. */
#ifndef GPU_OPS_H
#define GPU_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu/ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* elementwise.cu */
int gpu_fill(gpu_ctx *g, float *x, int64_t n, float value);
int gpu_add(gpu_ctx *g, int64_t n, const float *a, const float *c, float *y);

/* bias.cu */
int gpu_bias_add(gpu_ctx *g, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias);
int gpu_bias_grad(gpu_ctx *g, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db);

/* layout.cu */
int gpu_copy_2d(gpu_ctx *g, int64_t rows, int64_t cols, const float *src, int64_t ld_src, float *dst,
                int64_t ld_dst);
int gpu_transpose(gpu_ctx *g, int64_t batch, int64_t rows, int64_t cols, const float *x, float *y);
int gpu_patchify_forward(gpu_ctx *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *x,
                         float *y);
int gpu_patchify_backward(gpu_ctx *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *dy,
                          float *dx);

/* mean.cu */
int gpu_mean_lastdim_forward(gpu_ctx *g, int64_t rows, int64_t n, const float *x, float *y);
int gpu_mean_lastdim_backward(gpu_ctx *g, int64_t rows, int64_t n, const float *dy, float *dx);

/* gemm.c, gemm_reduce.cu */
int gpu_gemm(gpu_ctx *g, const eng_gemm_desc *d, const float *A, const float *B, float *C);
int gpu_gemm_sum_slices(gpu_ctx *g, int64_t slices, int64_t m, int64_t n, const float *T, float alpha, float beta,
                        float *C, int64_t ldc);

/* conv.c */
size_t gpu_conv2d_workspace(gpu_ctx *g, const eng_conv_desc *d);
int gpu_conv2d_forward(gpu_ctx *g, const eng_conv_desc *d, const float *x, const float *w, const float *bias,
                       float *y, void *ws);
int gpu_conv2d_backward(gpu_ctx *g, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, void *ws);
void gpu_conv_plans_release(gpu_ctx *g);

/* pool.cu */
int gpu_pool_forward(gpu_ctx *g, const eng_pool_desc *d, const float *x, float *y);
int gpu_pool_backward(gpu_ctx *g, const eng_pool_desc *d, const float *x, const float *y, const float *dy,
                      float *dx);

/* batchnorm.cu */
int gpu_batchnorm_forward_train(gpu_ctx *g, const eng_norm_desc *d, const float *x, const float *gamma,
                                const float *beta, float *y, float *running_mean, float *running_var,
                                float *save_mean, float *save_invstd);
int gpu_batchnorm_forward_eval(gpu_ctx *g, const eng_norm_desc *d, const float *x, const float *gamma,
                               const float *beta, const float *running_mean, const float *running_var, float *y);
int gpu_batchnorm_backward(gpu_ctx *g, const eng_norm_desc *d, const float *x, const float *dy, const float *gamma,
                           const float *save_mean, const float *save_invstd, float *dx, float *dgamma,
                           float *dbeta);

/* layernorm.cu */
int gpu_layernorm_forward(gpu_ctx *g, const eng_norm_desc *d, const float *x, const float *gamma,
                          const float *beta, float *y, float *save_mean, float *save_rstd);
int gpu_layernorm_backward(gpu_ctx *g, const eng_norm_desc *d, const float *x, const float *dy, const float *gamma,
                           const float *save_mean, const float *save_rstd, float *dx, float *dgamma, float *dbeta);

/* act.cu */
int gpu_act_forward(gpu_ctx *g, eng_act kind, float slope, int64_t n, const float *x, float *y);
int gpu_act_backward(gpu_ctx *g, eng_act kind, float slope, int64_t n, const float *x, const float *y,
                     const float *dy, float *dx);

/* softmax.cu */
int gpu_softmax_forward(gpu_ctx *g, int64_t rows, int64_t n, const float *x, float *y);
int gpu_softmax_backward(gpu_ctx *g, int64_t rows, int64_t n, const float *y, const float *dy, float *dx);

/* xent.cu */
int gpu_xent(gpu_ctx *g, const eng_xent_desc *d, const float *logits, const int32_t *labels, float *dlogits,
             double *acc);

/* dropout.cu */
int gpu_dropout(gpu_ctx *g, int64_t n, float p, uint64_t key, uint64_t counter, const float *x, float *y);

/* gather.cu */
int gpu_batch_gather(gpu_ctx *g, const eng_batch_desc *d, const uint8_t *images, const int32_t *all_labels,
                     const int32_t *idx, const int16_t *aug, float *x, int32_t *labels);

/* optim.cu: from_dyn reads the scalars from g->dyn (set by gpu_dyn_set) */
gpu_adam_k gpu_adam_scalars(const eng_adam_args *a);
gpu_sgd_k gpu_sgd_scalars(const eng_sgd_args *a);
int gpu_adam_step(gpu_ctx *g, int64_t n, float *p, const float *grad, float *m, float *v, const eng_adam_args *a,
                  bool from_dyn);
int gpu_sgd_step(gpu_ctx *g, int64_t n, float *p, const float *grad, float *buf, const eng_sgd_args *a,
                 bool from_dyn);
int gpu_dyn_set(gpu_ctx *g, const gpu_step_args *args, unsigned dyn);

/* backend.c: the operation table (tests check that every entry is set) */
const eng_backend_ops *gpu_ops_table(void);

/* norm.cu */
int gpu_sumsq(gpu_ctx *g, int64_t n, const float *x, double *sumsq);
int gpu_clip_by_norm(gpu_ctx *g, int64_t n, float *grad, const double *sumsq, float max_norm);

#ifdef __cplusplus
}
#endif

#endif
