/* Direct stride-1 convolution kernels for cpu_conv2d.c.
 *
 * Where output rows are long and channel counts small (the first layers of
 * a CNN: 16 or 32 channels at 32x32), im2col + sgemm spends as much time
 * writing and packing the column matrix as multiplying: each column element
 * meets only k = 16 weights. These kernels read a zero-padded copy of the
 * image instead and keep a 4-channel x 16-pixel output tile in eight 8-float
 * vector registers:
 *
 *   correlate: out[o, y, x] = sum over (i, ky, kx) of in[i, y+ky, x+kx] w[o, i, ky, kx]
 *              forward (in = padded x), and dx (in = dy padded by kh-1-pad,
 *              weights transposed and flipped);
 *   weight gradient: dw[o, i, ky, kx] = sum over (y, x) of dy[o, y, x] in[i, y+ky, x+kx],
 *              a 4-channel x 3-tap tile of 8-lane partial sums per pass.
 *
 * Vectors are GCC vector extensions, compiled once with AVX2+FMA and once
 * for the baseline; multiply-adds contract to FMA in this file only. The
 * reduction order is fixed (lanes are summed in lane order), so results are
 * deterministic. */
#include <string.h>

#include "engine/cpu/cpu_internal.h"

#pragma GCC optimize("fp-contract=fast")
/* The 32-byte vector helpers below are always inlined, so no vector ever
 * crosses a call boundary in the baseline (non-AVX) build. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v8f __attribute__((vector_size(32)));

#define AI static inline __attribute__((always_inline))

AI v8f ld8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

AI void st8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

AI float hsum8(v8f v)
{
    float s = 0.0f;
    for (int i = 0; i < 8; i++)
        s += v[i];
    return s;
}

/* One output tile: channels o0 .. o0+3 (weights wk, blocked [i][ky][kx][4]),
 * pixels x0 .. x0+15 of output row y. `in` points at input row y, column x0
 * of plane 0; planes are `plane` floats apart, rows `ld`. Writes nk < = 4
 * channels and npx <= 16 pixels of out (rows of `ow`, planes of `oplane`). */
AI void tile(const float *in, int64_t nin, int64_t plane, int64_t ld, int64_t KH, int64_t KW, const float *wk,
             float *out, int64_t oplane, int64_t nk, int64_t npx, const float *bias)
{
    v8f a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0}, a30 = {0}, a31 = {0};
    for (int64_t i = 0; i < nin; i++) {
        const float *pi = in + i * plane;
#pragma GCC unroll 3
        for (int64_t ky = 0; ky < KH; ky++) {
            const float *r = pi + ky * ld;
#pragma GCC unroll 3
            for (int64_t kx = 0; kx < KW; kx++, wk += 4) {
                const v8f x0 = ld8(r + kx), x1 = ld8(r + kx + 8);
                a00 += x0 * wk[0];
                a01 += x1 * wk[0];
                a10 += x0 * wk[1];
                a11 += x1 * wk[1];
                a20 += x0 * wk[2];
                a21 += x1 * wk[2];
                a30 += x0 * wk[3];
                a31 += x1 * wk[3];
            }
        }
    }
    const v8f acc[4][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
    for (int64_t j = 0; j < nk; j++) {
        const float bv = bias ? bias[j] : 0.0f;
        float *o = out + j * oplane;
        if (npx == 16) {
            st8(o, acc[j][0] + bv);
            st8(o + 8, acc[j][1] + bv);
        } else {
            float t[16];
            st8(t, acc[j][0] + bv);
            st8(t + 8, acc[j][1] + bv);
            for (int64_t p = 0; p < npx; p++)
                o[p] = t[p];
        }
    }
}

AI void correlate_impl(const float *in, int64_t nin, int64_t hp, int64_t wp, int64_t KH, int64_t KW,
                       const float *wblk, int64_t nout, int64_t OH, int64_t OW, const float *bias, float *out)
{
    const int64_t plane = hp * wp, oplane = OH * OW, wstride = nin * KH * KW * 4;
    for (int64_t o0 = 0; o0 < nout; o0 += 4) {
        const int64_t nk = nout - o0 < 4 ? nout - o0 : 4;
        const float *wk = wblk + (o0 / 4) * wstride;
        for (int64_t y = 0; y < OH; y++)
            for (int64_t x0 = 0; x0 < OW; x0 += 16)
                tile(in + y * wp + x0, nin, plane, wp, KH, KW, wk, out + o0 * oplane + y * OW + x0, oplane, nk,
                     OW - x0 < 16 ? OW - x0 : 16, bias ? bias + o0 : NULL);
    }
}

CPU_KERNEL void cpu_direct_correlate(const float *in, int64_t nin, int64_t hp, int64_t wp, int64_t KH, int64_t KW,
                                     const float *wblk, int64_t nout, int64_t OH, int64_t OW, const float *bias,
                                     float *out)
{
    /* the common kernel sizes with constant trip counts, fully unrolled */
    if (KH == 3 && KW == 3)
        correlate_impl(in, nin, hp, wp, 3, 3, wblk, nout, OH, OW, bias, out);
    else if (KH == 1 && KW == 1)
        correlate_impl(in, nin, hp, wp, 1, 1, wblk, nout, OH, OW, bias, out);
    else
        correlate_impl(in, nin, hp, wp, KH, KW, wblk, nout, OH, OW, bias, out);
}

/* dw[o0+j, i, ky, kx0+t] += sum over (y, x) of g_j[y, x] * in[i, y+ky, x+kx0+t]
 * for j < 4, t < 3: g rows of `ldg` floats (zero beyond OW, 8-aligned
 * length owv), `in` padded planes as in correlate. */
AI void wgrad_impl(const float *in, int64_t nin, int64_t hp, int64_t wp, int64_t KH, int64_t KW, const float *g,
                   int64_t nout, int64_t OH, int64_t owv, float *dw)
{
    const int64_t plane = hp * wp, gplane = OH * owv;
    for (int64_t o0 = 0; o0 < nout; o0 += 4) {
        const int64_t nk = nout - o0 < 4 ? nout - o0 : 4;
        const float *g0 = g + o0 * gplane;
        for (int64_t i = 0; i < nin; i++)
            for (int64_t ky = 0; ky < KH; ky++)
                for (int64_t kx0 = 0; kx0 < KW; kx0 += 3) {
                    v8f a[4][3] = {{{0}}};
                    for (int64_t y = 0; y < OH; y++) {
                        const float *xr = in + i * plane + (y + ky) * wp + kx0;
                        const float *gr = g0 + y * owv;
                        for (int64_t v = 0; v < owv; v += 8) {
                            const v8f x0 = ld8(xr + v), x1 = ld8(xr + v + 1), x2 = ld8(xr + v + 2);
#pragma GCC unroll 4
                            for (int j = 0; j < 4; j++) {
                                const v8f gj = ld8(gr + j * gplane + v);
                                a[j][0] += gj * x0;
                                a[j][1] += gj * x1;
                                a[j][2] += gj * x2;
                            }
                        }
                    }
                    const int64_t nt = KW - kx0 < 3 ? KW - kx0 : 3;
                    for (int64_t j = 0; j < nk; j++)
                        for (int64_t t = 0; t < nt; t++)
                            dw[(((o0 + j) * nin + i) * KH + ky) * KW + kx0 + t] += hsum8(a[j][t]);
                }
    }
}

CPU_KERNEL void cpu_direct_wgrad(const float *in, int64_t nin, int64_t hp, int64_t wp, int64_t KH, int64_t KW,
                                 const float *g, int64_t nout, int64_t OH, int64_t owv, float *dw)
{
    if (KH == 3 && KW == 3)
        wgrad_impl(in, nin, hp, wp, 3, 3, g, nout, OH, owv, dw);
    else
        wgrad_impl(in, nin, hp, wp, KH, KW, g, nout, OH, owv, dw);
}
