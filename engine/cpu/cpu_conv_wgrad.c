/* A bf16 convolution's weights gradient on small images as matrix products
 * over shifted views (cpu_dnnl.h, cpu_conv_wgrad_gemm).
 *
 * Why: oneDNN 2.6's bf16 backward-weights kernel runs far below its
 * forward on small planes - 2.3-2.9 ms against 0.47 ms for residual_cnn's
 * 64 -> 64 channels on 3x3 images at batch 500 (ONEDNN_VERBOSE, 2 threads,
 * AVX512-BF16), 5 to 6 times the forward for the same FLOPs - while its bf16
 * matrix product runs near the machine's bf16 ceiling.
 *
 * With x and dy turned sample-innermost and rounded to bf16 (xt [c][h][w][n],
 * dyt [k][oh][ow][n]: small on small planes), the gradient of one tap (i, j)
 * of the kernel is
 *
 *   dW[:, :, i, j] = sum over output rows oh of
 *                    dyt[:, oh, ow0..ow1, :] . xt[:, oh + i - pad, ow0 + j - pad .., :]^T
 *
 * over the outputs whose input lies inside the image: each term is one
 * product of two strided views (runs of (ow, n) values, as they lie), no
 * copy of x per tap as an image-to-column form would make - that copy, 9x
 * the input, cost more than the product on this machine (measured). Where
 * a tap's outputs cover whole rows on both sides, its rows are one run and
 * one product. The terms are summed in float32 in a fixed order. The bias
 * gradient is the backend's own sum (cpu_bias_grad_impl, a fixed order) of
 * dy rounded to bf16, as oneDNN's kernel and our own bf16 path sum it. */
#include <string.h>

#include "engine/cpu/cpu_dnnl.h"
#include "engine/cpu/cpu_internal.h"

/* The scratch slots (cpu_scratch): xt with dyt after it; one tap's product
 * (then dy rounded, for the bias). */
#define WGRAD_SLOT 3
#define WGRAD_TMP_SLOT 2
/* Planes of up to this many output positions take the products; on larger
 * ones oneDNN's own kernel is as fast (docs/cpu.md). */
#define WGRAD_MAX_PLANE 16
/* the transposes' tile: TB x TB values (transpose_tile16's size) */
#define WGRAD_TB 16
_Static_assert(WGRAD_TB == 16, "transpose_tile16 transposes 16 x 16 tiles");

bool cpu_conv_wgrad_gemm_fits(const eng_conv_desc *d)
{
    const int64_t bytes = (d->n * d->c * d->h * d->w + d->n * d->k * d->oh * d->ow) * (int64_t)sizeof(uint16_t);
    return d->n > 0 && d->stride == 1 && d->oh * d->ow <= WGRAD_MAX_PLANE && bytes <= ((int64_t)256 << 20);
}

/* dst[j * rows + i] = bf16(src[i * cols + j]) over the tile [i0, i1) x [j0, j1). */
static void transpose_tile(int64_t rows, int64_t cols, const float *src, uint16_t *dst, int64_t i0, int64_t i1,
                           int64_t j0, int64_t j1)
{
    for (int64_t j = j0; j < j1; j++)
        for (int64_t i = i0; i < i1; i++)
            dst[j * rows + i] = cpu_bf16_bits(src[i * cols + j]);
}

#if CPU_MULTIVERSION
#include <immintrin.h>

/* The permutes' indices of a 16 x 16 transpose in registers, rounds b = 8,
 * 4, 2, 1 (row i and row i + b, i without bit b, swap their off-diagonal
 * b x b blocks): row i takes its own low half of each 2b block then row
 * i+b's (lo); row i+b takes row i's high half then its own (hi). */
static const int32_t transpose_idx[4][2][16] = {
    {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
     {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
    {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
     {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
     {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
     {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
};

/* A whole 16 x 16 tile: the rows loaded, transposed in registers, each
 * rounded as cpu_bf16_bits rounds (to nearest even, a NaN quieted,
 * denormals kept) and narrowed to 16 bits. */
CPU_TARGET_V4 static void transpose_tile16(int64_t rows, int64_t cols, const float *src, uint16_t *dst, int64_t i0,
                                           int64_t j0)
{
    __m512 r[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(src + (i0 + i) * cols + j0);
    for (int k = 0; k < 4; k++) {
        const int b = 8 >> k;
        const __m512i ilo = _mm512_loadu_si512(transpose_idx[k][0]), ihi = _mm512_loadu_si512(transpose_idx[k][1]);
        for (int i = 0; i < 16; i++)
            if (!(i & b)) {
                const __m512 lo = r[i], hi = r[i + b];
                r[i] = _mm512_permutex2var_ps(lo, ilo, hi);
                r[i + b] = _mm512_permutex2var_ps(lo, ihi, hi);
            }
    }
    const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7FFF), exp = _mm512_set1_epi32(0x7F800000),
                  man = _mm512_set1_epi32(0x007FFFFF), quiet = _mm512_set1_epi32(0x00400000);
    for (int j = 0; j < 16; j++) {
        const __m512i u = _mm512_castps_si512(r[j]);
        const __m512i rounded = _mm512_add_epi32(_mm512_add_epi32(u, half),
                                                 _mm512_and_si512(_mm512_srli_epi32(u, 16), one));
        const __mmask16 nan = _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, exp), exp) &
                              _mm512_test_epi32_mask(u, man);
        const __m512i v = _mm512_mask_or_epi32(rounded, nan, u, quiet);
        _mm256_storeu_si256((__m256i *)(dst + (j0 + j) * rows + i0), _mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16)));
    }
}
#endif

/* dst[j * rows + i] = bf16(src[i * cols + j]): a (rows, cols) float32
 * matrix transposed into bf16, in tiles of 16 x 16 (in AVX-512 registers
 * where the CPU has them: the scalar loops took a fifth of a 3x3 layer's
 * weights gradient). */
static void wgrad_transpose_pack(eng_backend *b, int64_t rows, int64_t cols, const float *src, uint16_t *dst)
{
    const int64_t tiles = (cols + WGRAD_TB - 1) / WGRAD_TB;
#pragma omp parallel for num_threads(cpu_team(b, rows * cols)) schedule(static)
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t j0 = t * WGRAD_TB, j1 = j0 + WGRAD_TB < cols ? j0 + WGRAD_TB : cols;
        for (int64_t i0 = 0; i0 < rows; i0 += WGRAD_TB) {
            const int64_t i1 = i0 + WGRAD_TB < rows ? i0 + WGRAD_TB : rows;
#if CPU_MULTIVERSION
            if (cpu_isa_level_current >= 4 && i1 - i0 == WGRAD_TB && j1 - j0 == WGRAD_TB) {
                transpose_tile16(rows, cols, src, dst, i0, j0);
                continue;
            }
#endif
            transpose_tile(rows, cols, src, dst, i0, i1, j0, j1);
        }
    }
}

/* dw[:, :, i, j] (first: =, else +=) the product of a run of `len` (ow, n)
 * values of dyt at a and of xt at x0. */
static int wgrad_term(eng_backend *b, const eng_conv_desc *d, const uint16_t *a, const uint16_t *x0, int64_t len,
                      int64_t i, int64_t j, bool first, float *tmp, float *dw)
{
    const int64_t kk = d->kh * d->kw, tap = i * d->kw + j;
    const eng_gemm_desc g = {.ta = false,
                             .tb = true,
                             .m = d->k,
                             .n = d->c,
                             .k = len,
                             .lda = d->oh * d->ow * d->n,
                             .ldb = d->h * d->w * d->n,
                             .ldc = d->c,
                             .batch = 1,
                             .alpha = 1.0f,
                             .beta = 0.0f,
                             .a_bf16 = true,
                             .b_bf16 = true};
    int rc = cpu_dnnl_gemm(b, &g, true, (const float *)a, (const float *)x0, tmp);
    if (rc < 0)
        return rc;
    for (int64_t o = 0; o < d->k * d->c; o++)
        dw[o * kk + tap] = first ? tmp[o] : dw[o * kk + tap] + tmp[o];
    return 0;
}

/* The outputs [*lo, *hi] (of n_out along an axis, stride 1) whose input
 * o + shift lies inside [0, n_in); empty when *lo > *hi. */
static void inside(int64_t n_in, int64_t n_out, int64_t shift, int64_t *lo, int64_t *hi)
{
    *lo = shift < 0 ? -shift : 0;
    *hi = n_in - 1 - shift < n_out - 1 ? n_in - 1 - shift : n_out - 1;
}

int cpu_conv_wgrad_gemm(eng_backend *b, const eng_conv_desc *d, const float *x, const float *dy, float *dw,
                        float *db)
{
    const int64_t n = d->n, hw = d->h * d->w, ohw = d->oh * d->ow, P = d->pad;
    uint16_t *xt = cpu_scratch(b, WGRAD_SLOT, (size_t)(n * (d->c * hw + d->k * ohw)) * sizeof(uint16_t));
    float *tmp = cpu_scratch(b, WGRAD_TMP_SLOT, (size_t)(d->k * d->c) * sizeof(float));
    if (!xt || !tmp)
        return ENG_ENOMEM;
    uint16_t *dyt = xt + n * d->c * hw;
    wgrad_transpose_pack(b, n, d->c * hw, x, xt);
    wgrad_transpose_pack(b, n, d->k * ohw, dy, dyt);
    for (int64_t i = 0; i < d->kh; i++) {
        int64_t oh0, oh1, ow0, ow1;
        inside(d->h, d->oh, i - P, &oh0, &oh1);
        for (int64_t j = 0; j < d->kw; j++) {
            inside(d->w, d->ow, j - P, &ow0, &ow1);
            if (oh0 > oh1 || ow0 > ow1) { /* the tap only ever sees padding */
                for (int64_t o = 0; o < d->k * d->c; o++)
                    dw[o * d->kh * d->kw + i * d->kw + j] = 0.0f;
                continue;
            }
            /* whole rows on both sides: the rows are one run */
            const bool whole = ow0 == 0 && ow1 == d->ow - 1 && d->ow == d->w && j == P;
            const int64_t step = whole ? oh1 - oh0 + 1 : 1;
            for (int64_t oh = oh0; oh <= oh1; oh += step) {
                const uint16_t *a = dyt + (oh * d->ow + ow0) * n;
                const uint16_t *x0 = xt + ((oh + i - P) * d->w + ow0 + j - P) * n;
                const int64_t len = (whole ? step * d->ow : ow1 - ow0 + 1) * n;
                int rc = wgrad_term(b, d, a, x0, len, i, j, oh == oh0, tmp, dw);
                if (rc < 0)
                    return rc;
            }
        }
    }
    if (!db)
        return 0;
    const float *dy16 = cpu_bf16_copy(b, WGRAD_TMP_SLOT, n * d->k * ohw, dy);
    if (!dy16)
        return ENG_ENOMEM;
    return cpu_bias_grad_impl(b, n, d->k, ohw, dy16, db);
}
