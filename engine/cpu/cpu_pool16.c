/* Max pooling without padding over the blocked layout ENG_BLOCK16
 * (backend.h): the pool between a batchnorm and a convolution of a chain
 * conv -> BN -> ReLU -> max pool -> conv that runs blocked (model.c).
 *
 * A pixel's 16 channels are one AVX-512 vector, so a window's maximum is
 * kh * kw vector maxima with no gathering, and its argmax (the row-major
 * tap of each lane's first maximum; a NaN wins and stays) comes with it.
 * Written with intrinsics: the same in GCC's generic vectors ran the
 * forward of normal_cnn's first pool 7x slower (20.8 against 3.0 ms a
 * step at batch 500). The
 * results are those of the NCHW kernels (cpu_pool.c) bit for bit: the
 * same maxima, the same argmax, and the gradients added to dx in the same
 * order (the outputs in row-major order, each at its argmax only). */
#include <omp.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

#if CPU_MULTIVERSION
#include <immintrin.h>

/* The maximum of the window at w0 (its first tap) and each lane's argmax:
 * max_first (cpu_pool.c) lane by lane - a greater value or a NaN replaces
 * the maximum unless that is a NaN already. */
CPU_TARGET_V4 static inline __attribute__((always_inline)) __m512 window_v4(const eng_pool_desc *d, const float *w0,
                                                                           __m512i *pos)
{
    __m512 m = _mm512_loadu_ps(w0);
    __m512i at = _mm512_setzero_si512();
    for (int64_t ky = 0; ky < d->kh; ky++)
        for (int64_t kx = ky ? 0 : 1; kx < d->kw; kx++) {
            const __m512 v = _mm512_loadu_ps(w0 + (ky * d->w + kx) * 16);
            const __mmask16 take =
                (__mmask16)((_mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q)) &
                            _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q));
            m = _mm512_mask_mov_ps(m, take, v);
            at = _mm512_mask_mov_epi32(at, take, _mm512_set1_epi32((int)(ky * d->kw + kx)));
        }
    *pos = at;
    return m;
}

/* Blocks [b0, b1) of (sample, 16 channels): y, and the argmax into args
 * (a byte per output, laid out as y) when not NULL. */
CPU_TARGET_V4 static void forward_v4(const eng_pool_desc *d, int64_t b0, int64_t b1, const float *x, float *y,
                                     uint8_t *args)
{
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow, S = d->stride;
    for (int64_t k = b0; k < b1; k++)
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++) {
                const int64_t o = (k * ohw + oy * d->ow + ox) * 16;
                __m512i pos;
                _mm512_storeu_ps(y + o, window_v4(d, x + (k * hw + oy * S * d->w + ox * S) * 16, &pos));
                if (args)
                    _mm_storeu_si128((__m128i *)(args + o), _mm512_cvtepi32_epi8(pos));
            }
}

/* dx of blocks [b0, b1) (overwritten) from dy and the argmax: kept (laid
 * out as y, which holds the maxima), or found again in x. relu: nothing
 * added where the window's maximum is <= 0 or NaN (the relu before the
 * pool). A lane adds only at its argmax, as the NCHW kernels do. */
CPU_TARGET_V4 static void backward_v4(const eng_pool_desc *d, int64_t b0, int64_t b1, const float *x, const float *y,
                                      const uint8_t *kept, const float *dy, float *dx, bool relu)
{
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow, S = d->stride;
    for (int64_t k = b0; k < b1; k++) {
        float *dxb = dx + k * hw * 16;
        memset(dxb, 0, (size_t)(hw * 16) * sizeof(float));
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++) {
                const int64_t o = (k * ohw + oy * d->ow + ox) * 16, w0 = (oy * S * d->w + ox * S) * 16;
                __m512i pos;
                __m512 m;
                if (kept) {
                    pos = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(kept + o)));
                    m = _mm512_loadu_ps(y + o);
                } else {
                    m = window_v4(d, x + k * hw * 16 + w0, &pos);
                }
                const __mmask16 add = relu ? _mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ) : 0xffff;
                const __m512 g = _mm512_loadu_ps(dy + o);
                for (int64_t ky = 0; ky < d->kh; ky++)
                    for (int64_t kx = 0; kx < d->kw; kx++) {
                        float *at = dxb + w0 + (ky * d->w + kx) * 16;
                        const __mmask16 sel =
                            add & _mm512_cmpeq_epi32_mask(pos, _mm512_set1_epi32((int)(ky * d->kw + kx)));
                        const __m512 v = _mm512_loadu_ps(at);
                        _mm512_storeu_ps(at, _mm512_mask_add_ps(v, sel, v, g));
                    }
            }
    }
}
#endif

/* AVX-512 only: the blocked layout is AVX-512's (cpu_conv2d_blocked). */
bool cpu_pool16_fits(const eng_pool_desc *d)
{
    return CPU_MULTIVERSION && d->mode == ENG_POOL_MAX && d->pad == 0 && d->c % 16 == 0 && d->kh * d->kw <= 255 &&
           d->h * d->w > 1 && cpu_isa_level_current >= 4;
}

void cpu_pool16_forward(eng_backend *b, const eng_pool_desc *d, const float *x, float *y, uint8_t *args)
{
    const int64_t blocks = d->n * (d->c / 16);
#pragma omp parallel num_threads(cpu_team(b, d->n * d->c * d->h * d->w))
    {
        const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
#if CPU_MULTIVERSION
        forward_v4(d, blocks * id / nt, blocks * (id + 1) / nt, x, y, args);
#else
        (void)nt, (void)id, (void)blocks, (void)x, (void)y, (void)args; /* never: cpu_pool16_fits */
#endif
    }
}

void cpu_pool16_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y, const uint8_t *kept,
                         const float *dy, float *dx, bool relu)
{
    const int64_t blocks = d->n * (d->c / 16);
#pragma omp parallel num_threads(cpu_team(b, d->n * d->c * d->h * d->w))
    {
        const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
#if CPU_MULTIVERSION
        backward_v4(d, blocks * id / nt, blocks * (id + 1) / nt, x, y, kept, dy, dx, relu);
#else
        (void)nt, (void)id, (void)blocks, (void)x, (void)y, (void)kept, (void)dy, (void)dx, (void)relu;
#endif
    }
}
