/* Naive double-precision reference implementations of the backend's forward
 * operations, written straight from the math with plain loops and sharing no
 * code with engine/cpu/. test_cpu_ops.c checks the CPU backend against them
 * and differentiates them by central differences. */
#ifndef TEST_CPU_REF_H
#define TEST_CPU_REF_H

#include <stdbool.h>
#include <stdint.h>

/* C = alpha op(A) op(B) + beta C, row-major, one matrix. */
void ref_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double *A, int64_t lda,
              const double *B, int64_t ldb, double beta, double *C, int64_t ldc);

/* NCHW convolution; bias may be NULL. */
void ref_conv2d(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t kh, int64_t kw, int64_t stride,
                int64_t pad, const double *x, const double *wt, const double *bias, double *y);
int64_t ref_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad);

/* Pooling; max treats padding as -inf, avg divides by kh*kw or by the
 * in-bounds count. */
void ref_pool(bool is_max, bool count_include_pad, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh,
              int64_t kw, int64_t stride, int64_t pad, const double *x, double *y);

/* BatchNorm training forward over (outer, n, inner): y, and the batch mean
 * and biased variance per j (either may be NULL). gamma/beta NULL: none. */
void ref_batchnorm_train(int64_t outer, int64_t n, int64_t inner, double eps, const double *x, const double *gamma,
                         const double *beta, double *y, double *mean, double *var);
void ref_batchnorm_eval(int64_t outer, int64_t n, int64_t inner, double eps, const double *x, const double *gamma,
                        const double *beta, const double *rmean, const double *rvar, double *y);

/* LayerNorm over j of (outer, n, inner); mean/rstd per (o, i) may be NULL. */
void ref_layernorm(int64_t outer, int64_t n, int64_t inner, double eps, const double *x, const double *gamma,
                   const double *beta, double *y, double *mean, double *rstd);

/* Activations: kind as eng_act (0 none, 1 relu, 2 leaky, 3 gelu, 4 sigmoid, 5 tanh). */
double ref_act(int kind, double slope, double x);

void ref_softmax(int64_t rows, int64_t n, const double *x, double *y);

/* Per-row cross-entropy loss; *hits gets the rows whose label is among the
 * k best (ties: lower index first). */
double ref_xent(int64_t rows, int64_t classes, int64_t k, const double *logits, const int32_t *labels,
                double *hits);

void ref_transpose(int64_t batch, int64_t rows, int64_t cols, const double *x, double *y);
void ref_mean_lastdim(int64_t rows, int64_t n, const double *x, double *y);
void ref_bias_add(int64_t outer, int64_t n, int64_t inner, const double *y0, const double *bias, double *y);

/* True patches, by an explicit loop over the output tensor. */
void ref_patchify(int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const double *x, double *y);

#endif
