/* Max pooling without padding over the blocked layout ENG_BLOCK16
 * (backend.h): the pool between a batchnorm and a convolution of a chain
 * conv -> BN -> ReLU -> max pool -> conv that runs blocked (model.c).
 *
 * A pixel's 16 channels are one vector, so a window's maximum is kh * kw
 * vector maxima with no gathering, and its argmax (the row-major tap of
 * each lane's first maximum; a NaN wins and stays) comes with it. The
 * results are those of the NCHW kernels (cpu_pool.c) bit for bit: the
 * same maxima, the same argmax, and the gradients added to dx in the same
 * order (the outputs in row-major order, each at its argmax only). */
#include <omp.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

#pragma GCC diagnostic ignored "-Wpsabi" /* no vector crosses a call: all inlined */

typedef float p16_v16f __attribute__((vector_size(64)));
typedef int32_t p16_v16i __attribute__((vector_size(64)));

CPU_KERNEL_BODY p16_v16f p16_ld(const float *p)
{
    p16_v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

CPU_KERNEL_BODY void p16_st(float *p, p16_v16f v) { memcpy(p, &v, sizeof v); }

/* lane by lane: a where sel is true, else b */
CPU_KERNEL_BODY p16_v16f p16_sel(p16_v16i sel, p16_v16f a, p16_v16f b)
{
    return (p16_v16f)(((p16_v16i)a & sel) | ((p16_v16i)b & ~sel));
}

/* The maximum of the window at w0 (its first tap) and each lane's argmax. */
CPU_KERNEL_BODY p16_v16f p16_window(const eng_pool_desc *d, const float *w0, p16_v16i *pos)
{
    p16_v16f m = p16_ld(w0);
    p16_v16i at = {0};
    for (int64_t ky = 0; ky < d->kh; ky++)
        for (int64_t kx = ky ? 0 : 1; kx < d->kw; kx++) {
            const p16_v16f v = p16_ld(w0 + (ky * d->w + kx) * 16);
            const p16_v16i take = ((v > m) | (v != v)) & (m == m); /* max_first, lane by lane */
            m = p16_sel(take, v, m);
            at = (take & (int32_t)(ky * d->kw + kx)) | (~take & at);
        }
    *pos = at;
    return m;
}

/* Blocks [b0, b1) of (sample, 16 channels): y, and the argmax into args
 * (a byte per output, laid out as y) when not NULL. */
CPU_KERNEL_BODY void pool16_forward_blocks_body(const eng_pool_desc *d, int64_t b0, int64_t b1, const float *x, float *y,
                                         uint8_t *args)
{
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow, S = d->stride;
    for (int64_t k = b0; k < b1; k++)
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++) {
                const int64_t o = (k * ohw + oy * d->ow + ox) * 16;
                p16_v16i pos;
                p16_st(y + o, p16_window(d, x + (k * hw + oy * S * d->w + ox * S) * 16, &pos));
                if (args)
                    for (int l = 0; l < 16; l++)
                        args[o + l] = (uint8_t)pos[l];
            }
}
CPU_DISPATCH_VOID(static, pool16_forward_blocks,
                  (const eng_pool_desc *d, int64_t b0, int64_t b1, const float *x, float *y, uint8_t *args),
                  (d, b0, b1, x, y, args))

/* dx of blocks [b0, b1) (overwritten) from dy and the argmax: kept (laid
 * out as y, which holds the maxima), or found again in x. relu: nothing
 * added where the window's maximum is <= 0 or NaN (the relu before the
 * pool). */
CPU_KERNEL_BODY void pool16_backward_blocks_body(const eng_pool_desc *d, int64_t b0, int64_t b1, const float *x,
                                          const float *y, const uint8_t *kept, const float *dy, float *dx, bool relu)
{
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow, S = d->stride;
    const p16_v16f zero = {0};
    for (int64_t k = b0; k < b1; k++) {
        float *dxb = dx + k * hw * 16;
        memset(dxb, 0, (size_t)(hw * 16) * sizeof(float));
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++) {
                const int64_t o = (k * ohw + oy * d->ow + ox) * 16, w0 = (oy * S * d->w + ox * S) * 16;
                p16_v16i pos = {0};
                p16_v16f m;
                if (kept) {
                    for (int l = 0; l < 16; l++)
                        pos[l] = kept[o + l];
                    m = p16_ld(y + o);
                } else {
                    m = p16_window(d, x + k * hw * 16 + w0, &pos);
                }
                const p16_v16i add = relu ? (m > zero) : ~(p16_v16i){0};
                const p16_v16f g = p16_ld(dy + o);
                for (int64_t ky = 0; ky < d->kh; ky++)
                    for (int64_t kx = 0; kx < d->kw; kx++) {
                        float *at = dxb + w0 + (ky * d->w + kx) * 16;
                        const p16_v16f v = p16_ld(at);
                        p16_st(at, p16_sel(add & (pos == (int32_t)(ky * d->kw + kx)), v + g, v));
                    }
            }
    }
}
CPU_DISPATCH_VOID(static, pool16_backward_blocks,
                  (const eng_pool_desc *d, int64_t b0, int64_t b1, const float *x, const float *y,
                   const uint8_t *kept, const float *dy, float *dx, bool relu),
                  (d, b0, b1, x, y, kept, dy, dx, relu))

bool cpu_pool16_fits(const eng_pool_desc *d)
{
    return d->mode == ENG_POOL_MAX && d->pad == 0 && d->c % 16 == 0 && d->kh * d->kw <= 255 && d->h * d->w > 1 &&
           cpu_isa_level_current >= 4;
}

void cpu_pool16_forward(eng_backend *b, const eng_pool_desc *d, const float *x, float *y, uint8_t *args)
{
    const int64_t blocks = d->n * (d->c / 16);
#pragma omp parallel num_threads(cpu_team(b, d->n * d->c * d->h * d->w))
    {
        const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
        pool16_forward_blocks(d, blocks * id / nt, blocks * (id + 1) / nt, x, y, args);
    }
}

void cpu_pool16_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y, const uint8_t *kept,
                         const float *dy, float *dx, bool relu)
{
    const int64_t blocks = d->n * (d->c / 16);
#pragma omp parallel num_threads(cpu_team(b, d->n * d->c * d->h * d->w))
    {
        const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
        pool16_backward_blocks(d, blocks * id / nt, blocks * (id + 1) / nt, x, y, kept, dy, dx, relu);
    }
}
