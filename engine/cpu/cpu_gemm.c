/* Batched row-major GEMM on OpenBLAS. */
#include <cblas.h>

#include "engine/cpu/cpu_internal.h"

/* C = beta * C for an m x n block (k = 0 or alpha = 0); beta = 0 writes
 * zeros without reading C, as BLAS does. */
static void scale_block(int64_t m, int64_t n, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++) {
        float *c = C + i * ldc;
        if (beta == 0.0f)
            for (int64_t j = 0; j < n; j++)
                c[j] = 0.0f;
        else
            for (int64_t j = 0; j < n; j++)
                c[j] *= beta;
    }
}

static void gemm_one(const eng_gemm_desc *d, int64_t i, const float *A, const float *B, float *C)
{
    C += i * d->stride_c;
    if (d->k == 0 || d->alpha == 0.0f) {
        scale_block(d->m, d->n, d->beta, C, d->ldc);
        return;
    }
    A += i * d->stride_a;
    B += i * d->stride_b;
    cblas_sgemm(CblasRowMajor, d->ta ? CblasTrans : CblasNoTrans, d->tb ? CblasTrans : CblasNoTrans, (blasint)d->m,
                (blasint)d->n, (blasint)d->k, d->alpha, A, (blasint)d->lda, B, (blasint)d->ldb, d->beta, C,
                (blasint)d->ldc);
}

int cpu_gemm(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
    CPU_NONNULL("gemm", d);
    CPU_CHECK(d->m >= 0 && d->n >= 0 && d->k >= 0 && d->batch >= 0,
              "cpu gemm: negative size (m %lld, n %lld, k %lld, batch %lld)", (long long)d->m, (long long)d->n,
              (long long)d->k, (long long)d->batch);
    if (d->m == 0 || d->n == 0 || d->batch == 0)
        return 0;
    const int64_t a_cols = d->ta ? d->m : d->k, b_cols = d->tb ? d->k : d->n;
    CPU_CHECK(d->lda >= (a_cols > 1 ? a_cols : 1), "cpu gemm: lda %lld < %lld", (long long)d->lda,
              (long long)a_cols);
    CPU_CHECK(d->ldb >= (b_cols > 1 ? b_cols : 1), "cpu gemm: ldb %lld < %lld", (long long)d->ldb,
              (long long)b_cols);
    CPU_CHECK(d->ldc >= d->n, "cpu gemm: ldc %lld < n %lld", (long long)d->ldc, (long long)d->n);
    CPU_CHECK(d->m <= INT32_MAX && d->n <= INT32_MAX && d->k <= INT32_MAX && d->lda <= INT32_MAX &&
                  d->ldb <= INT32_MAX && d->ldc <= INT32_MAX,
              "cpu gemm: a dimension exceeds the BLAS integer range");
    CPU_CHECK(d->batch == 1 || (d->stride_a >= 0 && d->stride_b >= 0 && d->stride_c >= 0),
              "cpu gemm: negative batch stride");
    CPU_NONNULL("gemm", C);
    if (d->k > 0) {
        CPU_NONNULL("gemm", A);
        CPU_NONNULL("gemm", B);
    }

    /* Many small products: one per thread with single-threaded BLAS. Few or
     * large ones: in turn, each with OpenBLAS's own threads. Either way every
     * element of C is computed by one thread in a fixed order. */
    const double flops = 2.0 * (double)d->m * (double)d->n * (double)d->k;
    const int nthr = cpu_threads(b);
    if (d->batch >= 2 * nthr && nthr > 1 && flops < 4e6) {
#pragma omp parallel for num_threads(nthr) schedule(static)
        for (int64_t i = 0; i < d->batch; i++)
            gemm_one(d, i, A, B, C);
    } else {
        cpu_blas_threads(b);
        for (int64_t i = 0; i < d->batch; i++)
            gemm_one(d, i, A, B, C);
    }
    return 0;
}
