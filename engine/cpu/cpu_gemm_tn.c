/* The long-reduction product C = alpha A^T B + beta C on AVX-512, with A
 * (k x m) and B (k x n) row-major and k far larger than m and n: the
 * weight gradients of the mixers' channel layers, dW (out x in) = dY^T X
 * over all of a batch's tokens - for mlp_mixer_S4 at batch 500, 128 x 128
 * summed over 32,000 rows.
 *
 * That layout needs no packing. Row r of A holds the m values to
 * broadcast and row r of B the n values to multiply them with, so a
 * register block of C (6 rows x 64 columns: 24 zmm accumulators) is one
 * rank-1 update per row r, read straight from the two rows. The rows are
 * taken in blocks that stay in the L2 while every block of C passes over
 * them; each thread sums a fixed range of rows into its own partial C,
 * and the partials are added in thread order: the same bits for the same
 * inputs and thread count. */
#include <omp.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

/* worth it where the reduction is long next to the output */
bool cpu_gemm_tn_long_fits(const eng_gemm_desc *d)
{
    return CPU_MULTIVERSION && cpu_isa_level_current >= 4 && d->ta && !d->tb && d->batch == 1 && !d->reduce_batch &&
           d->k >= 2048 && d->k >= 16 * (d->m > d->n ? d->m : d->n) && d->m <= 1024 && d->n <= 1024 &&
           d->alpha != 0.0f;
}

#if CPU_MULTIVERSION
#include <immintrin.h>

#define MR 6   /* rows of C per register block */
#define NV 4   /* zmm vectors of C per register block row (64 columns) */
#define KB 256 /* rows of A and B per pass over C: 2 x 128 KiB at m = n = 128 */

/* P block (mr x nv vectors, row stride ldp) += rows [0, kb) of A's columns
 * [0, mr) times B's columns [0, 16 nv), the last vector masked by `last`.
 * mr and nv are constants where it is inlined: the accumulators stay in
 * registers. */
__attribute__((target("arch=x86-64-v4"), always_inline)) static inline void
tile(int mr, int nv, int64_t kb, const float *a, int64_t lda, const float *b, int64_t ldb, float *p, int64_t ldp,
     __mmask16 last)
{
    __m512 acc[MR][NV];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[i][v] = _mm512_load_ps(p + i * ldp + 16 * v);
    for (int64_t r = 0; r < kb; r++) {
        const float *ar = a + r * lda, *br = b + r * ldb;
        __m512 bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            bv[v] = v == nv - 1 ? _mm512_maskz_loadu_ps(last, br + 16 * v) : _mm512_loadu_ps(br + 16 * v);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            const __m512 av = _mm512_set1_ps(ar[i]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            _mm512_store_ps(p + i * ldp + 16 * v, acc[i][v]);
}

#define TILE_FN(R, V)                                                                                             \
    __attribute__((target("arch=x86-64-v4"))) static void tile_##R##x##V(int64_t kb, const float *a, int64_t lda, \
                                                                          const float *b, int64_t ldb, float *p,   \
                                                                          int64_t ldp, __mmask16 last)             \
    {                                                                                                             \
        tile(R, V, kb, a, lda, b, ldb, p, ldp, last);                                                             \
    }
/* the full block and the edges: rows past the last full block one at a
 * time, columns past the last 64 in fewer vectors */
TILE_FN(6, 4)
TILE_FN(6, 3)
TILE_FN(6, 2)
TILE_FN(6, 1)
TILE_FN(1, 4)
TILE_FN(1, 3)
TILE_FN(1, 2)
TILE_FN(1, 1)

typedef void (*tile_fn)(int64_t, const float *, int64_t, const float *, int64_t, float *, int64_t, __mmask16);
static const tile_fn tiles6[NV + 1] = {NULL, tile_6x1, tile_6x2, tile_6x3, tile_6x4};
static const tile_fn tiles1[NV + 1] = {NULL, tile_1x1, tile_1x2, tile_1x3, tile_1x4};

/* P (m x ldp, zeroed here) = the sum over rows [r0, r1) of A's row times
 * B's row, as outer products */
static void tn_range(const eng_gemm_desc *d, int64_t r0, int64_t r1, const float *A, const float *B, float *P,
                     int64_t ldp)
{
    memset(P, 0, (size_t)(d->m * ldp) * sizeof *P);
    const int64_t nvec = (d->n + 15) / 16, n16 = d->n & 15;
    for (int64_t k0 = r0; k0 < r1; k0 += KB) {
        const int64_t kb = r1 - k0 < KB ? r1 - k0 : KB;
        const float *a = A + k0 * d->lda, *b = B + k0 * d->ldb;
        for (int64_t i0 = 0; i0 < d->m;) {
            const int mr = d->m - i0 >= MR ? MR : 1;
            for (int64_t v0 = 0; v0 < nvec; v0 += NV) {
                const int nv = nvec - v0 < NV ? (int)(nvec - v0) : NV;
                const __mmask16 last = v0 + nv == nvec && n16 ? (__mmask16)((1u << n16) - 1u) : (__mmask16)0xffff;
                (mr == MR ? tiles6 : tiles1)[nv](kb, a + i0, d->lda, b + 16 * v0, d->ldb, P + i0 * ldp + 16 * v0, ldp,
                                                 last);
            }
            i0 += mr;
        }
    }
}

int cpu_gemm_tn_long(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
    const int T = cpu_threads(b);
    const int nparts = d->k / 1024 < T ? (int)(d->k / 1024) : T;
    const int64_t ldp = (d->n + 15) / 16 * 16, part = d->m * ldp;
    float *P = cpu_scratch(b, CPU_SCRATCH_REDUCE, (size_t)(nparts * part) * sizeof(float));
    if (!P)
        return ENG_ENOMEM;
#pragma omp parallel num_threads(nparts)
    for (int t = omp_get_thread_num(); t < nparts; t += omp_get_num_threads())
        tn_range(d, d->k * t / nparts, d->k * (t + 1) / nparts, A, B, P + t * part, ldp);
#pragma omp parallel for num_threads(cpu_team(b, part * nparts)) schedule(static)
    for (int64_t i = 0; i < d->m; i++) {
        float *c = C + i * d->ldc;
        for (int64_t j = 0; j < d->n; j++) {
            float s = P[i * ldp + j];
            for (int t = 1; t < nparts; t++)
                s += P[t * part + i * ldp + j];
            c[j] = d->beta == 0.0f ? d->alpha * s : d->alpha * s + d->beta * c[j];
        }
    }
    return 0;
}
#else
int cpu_gemm_tn_long(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C)
{
    (void)b, (void)d, (void)A, (void)B, (void)C;
    return eng_error(ENG_ENOTSUP, "cpu gemm: the AVX-512 long-reduction product is not built");
}
#endif
