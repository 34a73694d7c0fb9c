/* Batched row-major GEMM on OpenBLAS or oneDNN (whichever measures faster
 * for the shape, cpu_choice.c), including the batch-reducing form (one C =
 * sum of the products, for weight gradients of per-sample left
 * multiplies). In bf16 the operands are rounded to bf16 first (oneDNN:
 * its bf16 kernels). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/cpu/cpu_dnnl.h"
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

/* C = alpha op(A[i]) op(B[i]) + beta C for the i-th pair, C given. */
static void gemm_pair(const eng_gemm_desc *d, int64_t i, const float *A, const float *B, float beta, float *C,
                      int64_t ldc)
{
    if (d->k == 0 || d->alpha == 0.0f) {
        scale_block(d->m, d->n, beta, C, ldc);
        return;
    }
    A += i * d->stride_a;
    B += i * d->stride_b;
    cblas_sgemm(CblasRowMajor, d->ta ? CblasTrans : CblasNoTrans, d->tb ? CblasTrans : CblasNoTrans, (blasint)d->m,
                (blasint)d->n, (blasint)d->k, d->alpha, A, (blasint)d->lda, B, (blasint)d->ldb, beta, C,
                (blasint)ldc);
}

static void gemm_one(const eng_gemm_desc *d, int64_t i, const float *A, const float *B, float *C)
{
    gemm_pair(d, i, A, B, d->beta, C + i * d->stride_c, d->ldc);
}

/* The parts of pairs [i0, i1) into C: the first with beta, the rest added. */
static void gemm_reduce_range(const eng_gemm_desc *d, int64_t i0, int64_t i1, const float *A, const float *B,
                              float beta, float *C, int64_t ldc)
{
    for (int64_t i = i0; i < i1; i++)
        gemm_pair(d, i, A, B, i == i0 ? beta : 1.0f, C, ldc);
}

/* reduce_batch: C = alpha sum_i op(A[i]) op(B[i]) + beta C. Each thread sums
 * a fixed range of pairs (thread 0 straight into C, the others into
 * partials); the partials are then added to C in thread order. */
static int gemm_reduce(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
    const int T = cpu_threads(b);
    const double flops = 2.0 * (double)d->m * (double)d->n * (double)d->k * (double)d->batch;
    if (flops >= 1e6 && cpu_gemm_reduce_nt_fits(d))
        return cpu_gemm_reduce_nt(b, d, A, B, C);
    int nparts = d->batch < T ? (int)d->batch : T;
    if (flops < 1e6 || d->k == 0 || d->alpha == 0.0f)
        nparts = 1;
    if (nparts <= 1) {
        cpu_blas_threads(b);
        gemm_reduce_range(d, 0, d->batch, A, B, d->beta, C, d->ldc);
        return 0;
    }
    const int64_t mn = d->m * d->n;
    float *part = malloc((size_t)((nparts - 1) * mn) * sizeof *part);
    if (!part)
        return eng_error(ENG_ENOMEM, "cpu gemm: out of memory for %d partial sums of %lldx%lld", nparts - 1,
                         (long long)d->m, (long long)d->n);
#pragma omp parallel num_threads(nparts)
    for (int t = omp_get_thread_num(); t < nparts; t += omp_get_num_threads()) {
        const int64_t i0 = d->batch * t / nparts, i1 = d->batch * (t + 1) / nparts;
        if (t == 0)
            gemm_reduce_range(d, i0, i1, A, B, d->beta, C, d->ldc);
        else
            gemm_reduce_range(d, i0, i1, A, B, 0.0f, part + (t - 1) * mn, d->n);
    }
#pragma omp parallel for num_threads(cpu_team(b, mn * nparts)) schedule(static)
    for (int64_t r = 0; r < d->m; r++)
        for (int t = 1; t < nparts; t++) {
            const float *restrict s = part + (t - 1) * mn + r * d->n;
            float *restrict c = C + r * d->ldc;
            for (int64_t j = 0; j < d->n; j++)
                c[j] += s[j];
        }
    free(part);
    return 0;
}

/* The float32 products on OpenBLAS: many products spread over the threads,
 * each with single-threaded BLAS; few in turn, each with OpenBLAS's own
 * threads. Either way every element of C is computed by one thread in a
 * fixed order. */
static int gemm_blas(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
    if (d->reduce_batch)
        return gemm_reduce(b, d, A, B, C);
    if (cpu_gemm_tn_long_fits(d))
        return cpu_gemm_tn_long(b, d, A, B, C);
    const double flops = 2.0 * (double)d->m * (double)d->n * (double)d->k;
    const int nthr = cpu_threads(b);
    if (nthr > 1 && (d->batch >= 4 * nthr || (d->batch >= 2 * nthr && flops < 4e6))) {
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

/* Floats an operand spans: `batch` matrices of rows x cols, leading
 * dimension ld, `stride` apart (0: one shared matrix). */
static int64_t operand_span(int64_t batch, int64_t stride, int64_t rows, int64_t cols, int64_t ld)
{
    return (batch > 1 ? (batch - 1) * stride : 0) + (rows - 1) * ld + cols;
}

typedef struct gemm_args {
    const eng_gemm_desc *d;
    const float *A, *B;
    float *C;
} gemm_args;

static int gemm_run(eng_backend *b, void *p, cpu_impl impl)
{
    const gemm_args *a = p;
    const eng_gemm_desc *d = a->d;
    if (impl == CPU_IMPL_DNNL) {
        int rc = cpu_dnnl_gemm(b, d, cpu_bf16(b), a->A, a->B, a->C);
        if (rc != ENG_ENOTSUP)
            return rc;
        eng_clear_error(); /* a recorded choice oneDNN cannot serve here: our own kernels */
    }
    if (!cpu_bf16(b) || d->k == 0)
        return gemm_blas(b, d, a->A, a->B, a->C);
    /* bf16 on our side: OpenBLAS on copies rounded to bf16 (or widened from
     * bf16 storage: the same values), same layout */
    const int64_t na = operand_span(d->batch, d->stride_a, d->ta ? d->k : d->m, d->ta ? d->m : d->k, d->lda);
    const int64_t nb = operand_span(d->batch, d->stride_b, d->tb ? d->n : d->k, d->tb ? d->k : d->n, d->ldb);
    const float *A = d->a_bf16 ? cpu_bf16_expand(b, 0, na, (const uint16_t *)a->A) : cpu_bf16_copy(b, 0, na, a->A);
    const float *B = d->b_bf16 ? cpu_bf16_expand(b, 1, nb, (const uint16_t *)a->B) : cpu_bf16_copy(b, 1, nb, a->B);
    if (!A || !B)
        return ENG_ENOMEM;
    return gemm_blas(b, d, A, B, a->C);
}

/* "fp32 gemm nt 32000x128x128 ld 128,128,128", with the batch, its strides
 * and the reduction when there are several products. */
static void gemm_key(const eng_backend *b, const eng_gemm_desc *d, char *key, size_t len)
{
    int n = snprintf(key, len, "%s gemm %c%c %lldx%lldx%lld ld %lld,%lld,%lld", cpu_bf16(b) ? "bf16" : "fp32",
                     d->ta ? 't' : 'n', d->tb ? 't' : 'n', (long long)d->m, (long long)d->n, (long long)d->k,
                     (long long)d->lda, (long long)d->ldb, (long long)d->ldc);
    if (d->batch > 1 && n > 0 && (size_t)n < len)
        n += snprintf(key + n, len - (size_t)n, " b%lld s %lld,%lld,%lld%s", (long long)d->batch,
                      (long long)d->stride_a, (long long)d->stride_b, (long long)(d->reduce_batch ? 0 : d->stride_c),
                      d->reduce_batch ? " sum" : "");
    if ((d->a_bf16 || d->b_bf16) && n > 0 && (size_t)n < len)
        snprintf(key + n, len - (size_t)n, " in %s,%s", d->a_bf16 ? "bf16" : "f32", d->b_bf16 ? "bf16" : "f32");
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
    CPU_CHECK(d->batch == 1 || d->reduce_batch || d->stride_c >= (d->m - 1) * d->ldc + d->n,
              "cpu gemm: stride_c %lld lets the %lld products overlap (use reduce_batch to sum them)",
              (long long)d->stride_c, (long long)d->batch);
    CPU_CHECK(!(d->a_bf16 || d->b_bf16) || cpu_bf16(b), "cpu gemm: bf16 operands need precision bf16");
    CPU_NONNULL("gemm", C);
    if (d->k > 0) {
        CPU_NONNULL("gemm", A);
        CPU_NONNULL("gemm", B);
    }

    gemm_args a = {d, A, B, C};
    cpu_impl impl = CPU_IMPL_OWN;
    if (d->alpha == 1.0f && d->beta == 0.0f && d->k > 0) {
        /* beta != 0 accumulates into C, which a measurement must not do twice */
        char key[120];
        gemm_key(b, d, key, sizeof key);
        int rc = cpu_choose(b, key, gemm_run, &a, &impl);
        if (rc < 0)
            return rc;
    }
    return gemm_run(b, &a, impl);
}
