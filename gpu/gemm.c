/* GEMM through cuBLAS: the row-major C = alpha op(A) op(B) + beta C of
 * engine/backend.h is the column-major C^T = alpha op(B)^T op(A)^T + beta C^T,
 * so B's buffer is passed as cuBLAS's first operand and A's as its second,
 * with the same leading dimensions and the transposes kept per buffer.
 * Batches are strided (a stride of 0 shares one matrix). reduce_batch
 * (C = alpha sum_i op(A[i]) op(B[i]) + beta C) runs as strided batches of
 * products into the backend's scratch, each chunk then added into C in a
 * fixed order (gemm_reduce.cu): deterministic, no atomics.
 * Precision is the compute type chosen at backend creation: CUBLAS_COMPUTE_32F
 * (true float32), _FAST_TF32 or _FAST_16BF (tensor cores; float storage). */
#include <limits.h>

#include "gpu/check.h"
#include "gpu/ops.h"

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* The products themselves, checked already; C[i] at C + i * stride_c. */
static int gemm_plain(gpu_ctx *g, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
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

static int gemm_reduce(gpu_ctx *g, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
    const int64_t mn = d->m * d->n;
    const int64_t cap = (int64_t)(g->scratch_doubles * 2) / mn; /* product slices the scratch holds */
    float beta = d->beta;
    int rc;
    if (cap < 1) { /* a huge C: accumulate one product at a time, in order */
        for (int64_t i = 0; i < d->batch; i++) {
            eng_gemm_desc e = *d;
            e.batch = 1;
            e.beta = beta;
            if ((rc = gemm_plain(g, &e, A + i * d->stride_a, B + i * d->stride_b, C)) < 0)
                return rc;
            beta = 1.0f;
        }
        return 0;
    }
    float *T = (float *)g->scratch;
    for (int64_t i0 = 0; i0 < d->batch; i0 += cap) {
        const int64_t cb = d->batch - i0 < cap ? d->batch - i0 : cap;
        eng_gemm_desc e = *d;
        e.batch = cb;
        e.reduce_batch = false;
        e.alpha = 1.0f;
        e.beta = 0.0f;
        e.ldc = d->n;
        e.stride_c = mn;
        if ((rc = gemm_plain(g, &e, A + i0 * d->stride_a, B + i0 * d->stride_b, T)) < 0)
            return rc;
        if ((rc = gpu_gemm_sum_slices(g, cb, d->m, d->n, T, d->alpha, beta, C, d->ldc)) < 0)
            return rc;
        beta = 1.0f;
    }
    return 0;
}

int gpu_gemm(gpu_ctx *g, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
    if (!d)
        return eng_error(ENG_EINVAL, "gemm: NULL description");
    if (d->a_bf16 || d->b_bf16)
        return eng_error(ENG_ENOTSUP, "gemm: bf16-stored operands are a CPU format (the GPU rounds its own inputs)");
    if (d->m < 0 || d->n < 0 || d->k < 0 || d->batch < 0)
        return eng_error(ENG_EINVAL, "gemm: negative size (m %lld, n %lld, k %lld, batch %lld)", (long long)d->m,
                         (long long)d->n, (long long)d->k, (long long)d->batch);
    if (d->m == 0 || d->n == 0 || d->batch == 0)
        return 0;
    const int64_t a_cols = d->ta ? d->m : d->k, b_cols = d->tb ? d->k : d->n;
    if (d->lda < (a_cols > 1 ? a_cols : 1) || d->ldb < (b_cols > 1 ? b_cols : 1) || d->ldc < d->n)
        return eng_error(ENG_EINVAL, "gemm: bad leading dimensions m=%lld n=%lld k=%lld lda=%lld ldb=%lld ldc=%lld ta=%d tb=%d",
                         (long long)d->m, (long long)d->n, (long long)d->k, (long long)d->lda, (long long)d->ldb,
                         (long long)d->ldc, (int)d->ta, (int)d->tb);
    if (!fits_int(d->m) || !fits_int(d->n) || !fits_int(d->k) || !fits_int(d->lda) || !fits_int(d->ldb) ||
        !fits_int(d->ldc) || !fits_int(d->batch))
        return eng_error(ENG_EINVAL, "gemm: a dimension exceeds cuBLAS's int range");
    if (d->batch > 1 && (d->stride_a < 0 || d->stride_b < 0 || d->stride_c < 0))
        return eng_error(ENG_EINVAL, "gemm: negative batch stride");
    if (d->batch > 1 && !d->reduce_batch && d->stride_c < (d->m - 1) * d->ldc + d->n)
        return eng_error(ENG_EINVAL, "gemm: stride_c %lld lets the %lld products overlap (use reduce_batch to sum them)",
                         (long long)d->stride_c, (long long)d->batch);
    if (!C || (d->k > 0 && (!A || !B)))
        return eng_error(ENG_EINVAL, "gemm: NULL matrix");
    if (d->reduce_batch && d->batch > 1)
        return gemm_reduce(g, d, A, B, C);
    return gemm_plain(g, d, A, B, C);
}
