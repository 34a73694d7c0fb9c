/* One element of 2-d pooling (host and device), NCHW, no scatter:
 * forward computes output element t; backward computes input gradient
 * element t by visiting, in output order, every window that covers it (for
 * max: adding dy where that window's first maximum is this element), so the
 * sums run in the same order as a CPU loop over outputs would add them.
 * NaN as in PyTorch and the CPU backend: the window's first NaN wins. */
#ifndef GPU_POOL_H
#define GPU_POOL_H

#include <math.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "engine/backend.h"
#ifdef __cplusplus
}
#endif
#include "gpu/hd.h"

GPU_HD float gpu_pool_fwd_elem(const eng_pool_desc *d, const float *x, int64_t t)
{
    const int64_t ox = t % d->ow, oy = (t / d->ow) % d->oh, nc = t / (d->ow * d->oh);
    const float *xp = x + nc * d->h * d->w;
    const int64_t y0 = oy * d->stride - d->pad, x0 = ox * d->stride - d->pad;
    if (d->mode == ENG_POOL_MAX) {
        float m = -INFINITY;
        for (int64_t ky = 0; ky < d->kh; ky++) {
            const int64_t iy = y0 + ky;
            if (iy < 0 || iy >= d->h)
                continue;
            for (int64_t kx = 0; kx < d->kw; kx++) {
                const int64_t ix = x0 + kx;
                if (ix < 0 || ix >= d->w)
                    continue;
                const float v = xp[iy * d->w + ix];
                if ((v > m || v != v) && m == m)
                    m = v;
            }
        }
        return m;
    }
    float s = 0.0f;
    int64_t cnt = 0;
    for (int64_t ky = 0; ky < d->kh; ky++) {
        const int64_t iy = y0 + ky;
        if (iy < 0 || iy >= d->h)
            continue;
        for (int64_t kx = 0; kx < d->kw; kx++) {
            const int64_t ix = x0 + kx;
            if (ix < 0 || ix >= d->w)
                continue;
            s += xp[iy * d->w + ix];
            cnt++;
        }
    }
    const int64_t div = d->count_include_pad ? d->kh * d->kw : cnt;
    return div > 0 ? s / (float)div : 0.0f;
}

/* Outputs along one axis whose window covers input position `in`. */
GPU_HD void gpu_pool_cover(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t out, int64_t *lo, int64_t *hi)
{
    const int64_t a = in + pad - k + 1; /* o*stride >= a */
    *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
    int64_t h = (in + pad) / stride; /* o*stride <= in + pad */
    *hi = h < out - 1 ? h : out - 1;
}

GPU_HD float gpu_pool_bwd_elem(const eng_pool_desc *d, const float *x, const float *y, const float *dy, int64_t t)
{
    const int64_t ix = t % d->w, iy = (t / d->w) % d->h, nc = t / (d->w * d->h);
    const float *xp = x + nc * d->h * d->w;
    int64_t oy_lo, oy_hi, ox_lo, ox_hi;
    gpu_pool_cover(iy, d->kh, d->stride, d->pad, d->oh, &oy_lo, &oy_hi);
    gpu_pool_cover(ix, d->kw, d->stride, d->pad, d->ow, &ox_lo, &ox_hi);
    float acc = 0.0f;
    for (int64_t oy = oy_lo; oy <= oy_hi; oy++) {
        const int64_t y0 = oy * d->stride - d->pad;
        for (int64_t ox = ox_lo; ox <= ox_hi; ox++) {
            const int64_t x0 = ox * d->stride - d->pad;
            const int64_t o = (nc * d->oh + oy) * d->ow + ox;
            if (d->mode == ENG_POOL_MAX) {
                /* the window's first element equal to its maximum y[o] (or
                 * its first NaN); the window's first element if none is */
                const float m = y[o];
                const int nan = m != m;
                int64_t fy = -1, fx = -1;
                for (int64_t ky = 0; ky < d->kh && fy < 0; ky++) {
                    const int64_t yy = y0 + ky;
                    if (yy < 0 || yy >= d->h)
                        continue;
                    for (int64_t kx = 0; kx < d->kw; kx++) {
                        const int64_t xx = x0 + kx;
                        if (xx < 0 || xx >= d->w)
                            continue;
                        const float v = xp[yy * d->w + xx];
                        if (nan ? v != v : v == m) {
                            fy = yy;
                            fx = xx;
                            break;
                        }
                    }
                }
                if (fy < 0) {
                    fy = y0 < 0 ? 0 : y0;
                    fx = x0 < 0 ? 0 : x0;
                }
                if (fy == iy && fx == ix)
                    acc += dy[o];
            } else {
                int64_t div = d->kh * d->kw;
                if (!d->count_include_pad) {
                    const int64_t ylo = y0 < 0 ? 0 : y0, yhi = y0 + d->kh < d->h ? y0 + d->kh : d->h;
                    const int64_t xlo = x0 < 0 ? 0 : x0, xhi = x0 + d->kw < d->w ? x0 + d->kw : d->w;
                    div = (yhi - ylo) * (xhi - xlo);
                }
                acc += dy[o] / (float)div;
            }
        }
    }
    return acc;
}

#endif
