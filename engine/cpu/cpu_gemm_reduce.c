/* The batch-reducing product C = alpha sum_i A[i] B[i]^T + beta C on
 * AVX-512: the mixers' token weight gradients, dW (S x S) summed over the
 * samples' (S x C) planes - for mlp_mixer_S4 at batch 500, 500 products of
 * 64 x 128 by 128 x 64 into one 64 x 64.
 *
 * OpenBLAS runs that as `batch` small products, packing both operands of
 * each, at 130-210 GFLOP/s on 2 threads here; oneDNN restacks the
 * operands first. Both operands are contracted along their rows
 * (A[i] row r times B[i] row q), so each element of C is a dot product of
 * two contiguous rows, summed over the pairs: each thread keeps a 16-lane
 * partial sum per element of C across all of its pairs - in register
 * blocks of 6 x 4 elements, over chunks of 4 pairs that stay in the L2 -
 * and the lanes are added up once at the end, in a fixed order: 170-270
 * GFLOP/s on the mixers' shapes (docs/cpu.md).
 *
 * Same bits for the same inputs and thread count: every thread sums a
 * fixed range of pairs, and the ranges' sums are added in thread order. */
#include <omp.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

#if CPU_MULTIVERSION
#include <immintrin.h>

#define MR 6    /* rows of A per register block */
#define NR 4    /* rows of B per register block */
#define CHUNK 4 /* pairs per pass over the blocks */

/* acc += the products of column block [c, c+16) of A rows a[r] and B rows
 * bq[q] (masked: zeros where m is clear) */
__attribute__((target("arch=x86-64-v4"), always_inline)) static inline void
reduce_step(__m512 acc[MR][NR], const float *const a[MR], int64_t oa, const float *const bq[NR], int64_t ob,
            int64_t c, __mmask16 m)
{
    __m512 bv[NR];
#pragma GCC unroll 4
    for (int q = 0; q < NR; q++)
        bv[q] = _mm512_maskz_loadu_ps(m, bq[q] + ob + c);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        const __m512 av = _mm512_maskz_loadu_ps(m, a[r] + oa + c);
#pragma GCC unroll 4
        for (int q = 0; q < NR; q++)
            acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
    }
}

/* lanes (MR x NR blocks of 16 floats, row stride np) += the pairs
 * [0, nb) of A rows a[r] and B rows bq[q] (pair i at +i*sa, +i*sb) */
__attribute__((target("arch=x86-64-v4"))) static void reduce_block(int64_t k, int64_t nb, const float *const a[MR],
                                                                    int64_t sa, const float *const bq[NR],
                                                                    int64_t sb, float *lanes, int64_t np)
{
    __m512 acc[MR][NR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int q = 0; q < NR; q++)
            acc[r][q] = _mm512_load_ps(lanes + ((int64_t)r * np + q) * 16);
    const int64_t k16 = k & ~(int64_t)15;
    const __mmask16 tail = (__mmask16)((1u << (k - k16)) - 1u);
    for (int64_t i = 0; i < nb; i++) {
        for (int64_t c = 0; c < k16; c += 16)
            reduce_step(acc, a, i * sa, bq, i * sb, c, (__mmask16)0xffff);
        if (tail)
            reduce_step(acc, a, i * sa, bq, i * sb, k16, tail);
    }
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int q = 0; q < NR; q++)
            _mm512_store_ps(lanes + ((int64_t)r * np + q) * 16, acc[r][q]);
}

/* the lane sums of pairs [i0, i1) into lanes (mp x np x 16, zeroed here).
 * Rows past m (n) repeat the last one: their sums are computed and never
 * read, so that every block is full. */
__attribute__((target("arch=x86-64-v4"))) static void reduce_range(const eng_gemm_desc *d, int64_t i0, int64_t i1,
                                                                    const float *A, const float *B, float *lanes,
                                                                    int64_t mp, int64_t np)
{
    memset(lanes, 0, (size_t)(mp * np * 16) * sizeof *lanes);
    for (int64_t c0 = i0; c0 < i1; c0 += CHUNK) {
        const int64_t nb = i1 - c0 < CHUNK ? i1 - c0 : CHUNK;
        for (int64_t r0 = 0; r0 < mp; r0 += MR) {
            const float *a[MR];
            for (int r = 0; r < MR; r++)
                a[r] = A + c0 * d->stride_a + (r0 + r < d->m ? r0 + r : d->m - 1) * d->lda;
            for (int64_t q0 = 0; q0 < np; q0 += NR) {
                const float *bq[NR];
                for (int q = 0; q < NR; q++)
                    bq[q] = B + c0 * d->stride_b + (q0 + q < d->n ? q0 + q : d->n - 1) * d->ldb;
                reduce_block(d->k, nb, a, d->stride_a, bq, d->stride_b, lanes + (r0 * np + q0) * 16, np);
            }
        }
    }
}

/* C row r = alpha (the parts' lane sums, in part order) + beta C */
__attribute__((target("arch=x86-64-v4"))) static void finish_row(const eng_gemm_desc *d, int64_t r, int nparts,
                                                                  const float *lanes, int64_t part, int64_t np,
                                                                  float *C)
{
    float *c = C + r * d->ldc;
    for (int64_t j = 0; j < d->n; j++) {
        float s = 0.0f;
        for (int t = 0; t < nparts; t++)
            s += _mm512_reduce_add_ps(_mm512_load_ps(lanes + t * part + (r * np + j) * 16));
        c[j] = d->beta == 0.0f ? d->alpha * s : d->alpha * s + d->beta * c[j];
    }
}

bool cpu_gemm_reduce_nt_fits(const eng_gemm_desc *d)
{
    return cpu_isa_level_current >= 4 && d->reduce_batch && !d->ta && d->tb && d->batch > 1 && d->k > 0 &&
           d->alpha != 0.0f;
}

int cpu_gemm_reduce_nt(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
    const int T = cpu_threads(b);
    const int nparts = d->batch < T ? (int)d->batch : T;
    const int64_t mp = (d->m + MR - 1) / MR * MR, np = (d->n + NR - 1) / NR * NR, part = mp * np * 16;
    float *lanes = cpu_scratch(b, CPU_SCRATCH_REDUCE, (size_t)(nparts * part) * sizeof(float));
    if (!lanes)
        return ENG_ENOMEM;
#pragma omp parallel num_threads(nparts)
    for (int t = omp_get_thread_num(); t < nparts; t += omp_get_num_threads())
        reduce_range(d, d->batch * t / nparts, d->batch * (t + 1) / nparts, A, B, lanes + t * part, mp, np);
#pragma omp parallel for num_threads(cpu_team(b, d->m * d->n * nparts * 16)) schedule(static)
    for (int64_t r = 0; r < d->m; r++)
        finish_row(d, r, nparts, lanes, part, np, C);
    return 0;
}
#else
bool cpu_gemm_reduce_nt_fits(const eng_gemm_desc *d)
{
    (void)d;
    return false;
}

int cpu_gemm_reduce_nt(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
    (void)b, (void)d, (void)A, (void)B, (void)C;
    return eng_error(ENG_ENOTSUP, "cpu gemm: the AVX-512 batch-reducing product is not built");
}
#endif
