/* GEMM through cuBLAS: the row-major C = alpha op(A) op(B) + beta C of
 * engine/backend.h is the column-major C^T = alpha op(B)^T op(A)^T + beta C^T,
 * so B's buffer is passed as cuBLAS's first operand and A's as its second,
 * with the same leading dimensions and the transposes kept per buffer.
 * Precision is the compute type chosen at backend creation: CUBLAS_COMPUTE_32F
 * (true float32), _FAST_TF32 or _FAST_16BF (tensor cores; float storage). */
#include <limits.h>

#include "gpu/check.h"
#include "gpu/ops.h"

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

int gpu_gemm(gpu_ctx *g, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
    if (!d)
        return eng_error(ENG_EINVAL, "gemm: NULL description");
    const int64_t a_cols = d->ta ? d->m : d->k, b_cols = d->tb ? d->k : d->n;
    if (d->m < 0 || d->n < 0 || d->k < 0 || d->batch < 1 || d->lda < 1 || d->ldb < 1 || d->ldc < 1 ||
        d->lda < a_cols || d->ldb < b_cols || d->ldc < d->n)
        return eng_error(ENG_EINVAL, "gemm: bad shape m=%lld n=%lld k=%lld lda=%lld ldb=%lld ldc=%lld batch=%lld ta=%d tb=%d",
                         (long long)d->m, (long long)d->n, (long long)d->k, (long long)d->lda, (long long)d->ldb,
                         (long long)d->ldc, (long long)d->batch, (int)d->ta, (int)d->tb);
    if (!fits_int(d->m) || !fits_int(d->n) || !fits_int(d->k) || !fits_int(d->lda) || !fits_int(d->ldb) ||
        !fits_int(d->ldc) || !fits_int(d->batch))
        return eng_error(ENG_EINVAL, "gemm: a dimension exceeds cuBLAS's int range");
    if (d->m == 0 || d->n == 0)
        return 0;
    if (!C || (d->k > 0 && (!A || !B)))
        return eng_error(ENG_EINVAL, "gemm: NULL matrix");
    const cublasOperation_t op_b = d->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_a = d->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    const float alpha = d->alpha, beta = d->beta;
    if (d->batch == 1) {
        GPU_CUBLAS(cublasGemmEx(g->cublas, op_b, op_a, (int)d->n, (int)d->m, (int)d->k, &alpha, B, CUDA_R_32F,
                                (int)d->ldb, A, CUDA_R_32F, (int)d->lda, &beta, C, CUDA_R_32F, (int)d->ldc,
                                g->gemm_compute, CUBLAS_GEMM_DEFAULT));
    } else {
        GPU_CUBLAS(cublasGemmStridedBatchedEx(g->cublas, op_b, op_a, (int)d->n, (int)d->m, (int)d->k, &alpha, B,
                                              CUDA_R_32F, (int)d->ldb, (long long)d->stride_b, A, CUDA_R_32F,
                                              (int)d->lda, (long long)d->stride_a, &beta, C, CUDA_R_32F, (int)d->ldc,
                                              (long long)d->stride_c, (int)d->batch, g->gemm_compute,
                                              CUBLAS_GEMM_DEFAULT));
    }
    return 0;
}
