/* im2col and col2im for cpu_conv2d.c, through a zero-padded copy of each
 * plane: with the padding made explicit, every kernel tap reads (or adds
 * into) a plain strided row, with no bounds tests and no calls in the inner
 * loops. That matters for small images, where a row is only 3 or 7 floats
 * and a memcpy/memset per row would cost more than the copy. The row
 * helpers are inlined into the kernels (all their ISA versions), and GCC is told not to
 * turn their short loops back into library calls. */
#include <string.h>

#include "engine/cpu/cpu_internal.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

/* dst[0..n) = src[0..n*stride) by `stride`. */
#define ROW_INLINE static inline __attribute__((always_inline))

ROW_INLINE void copy_row(float *restrict dst, const float *restrict src, int64_t n, int64_t stride)
{
    if (stride == 1) {
        if (n >= 64) {
            memcpy(dst, src, (size_t)n * sizeof(float));
            return;
        }
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            dst[i] = src[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            dst[i] = src[i * stride];
    }
}

/* acc[0..n*stride) by `stride` += src[0..n). */
ROW_INLINE void add_row(float *restrict acc, const float *restrict src, int64_t n, int64_t stride)
{
    if (stride == 1) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            acc[i] += src[i];
    } else {
        for (int64_t i = 0; i < n; i++)
            acc[i * stride] += src[i];
    }
}

CPU_KERNEL_BODY void cpu_im2col_body(const eng_conv_desc *d, const float *x, int64_t n0, int64_t gn, float *col,
                                       float *padbuf)
{
    const int64_t H = d->h, W = d->w, S = d->stride, P = d->pad, OH = d->oh, OW = d->ow;
    const int64_t ohw = OH * OW, ld = gn * ohw, hp = H + 2 * P, wp = W + 2 * P;
    if (P > 0)
        memset(padbuf, 0, (size_t)(hp * wp) * sizeof(float)); /* the border stays zero */
    for (int64_t gi = 0; gi < gn; gi++) {
        for (int64_t ci = 0; ci < d->c; ci++) {
            const float *plane = x + ((n0 + gi) * d->c + ci) * H * W;
            const float *src = plane;
            int64_t lds = W;
            if (P > 0) {
                for (int64_t y = 0; y < H; y++)
                    copy_row(padbuf + (y + P) * wp + P, plane + y * W, W, 1);
                src = padbuf;
                lds = wp;
            }
            for (int64_t ky = 0; ky < d->kh; ky++)
                for (int64_t kx = 0; kx < d->kw; kx++) {
                    float *dst = col + ((ci * d->kh + ky) * d->kw + kx) * ld + gi * ohw;
                    for (int64_t oy = 0; oy < OH; oy++)
                        copy_row(dst + oy * OW, src + (oy * S + ky) * lds + kx, OW, S);
                }
        }
    }
}
CPU_DISPATCH_VOID(, cpu_im2col,
                  (const eng_conv_desc *d, const float *x, int64_t n0, int64_t gn, float *col, float *padbuf),
                  (d, x, n0, gn, col, padbuf))

CPU_KERNEL_BODY void cpu_col2im_body(const eng_conv_desc *d, const float *dcol, int64_t n0, int64_t gn, float *dx,
                                       float *padbuf)
{
    const int64_t H = d->h, W = d->w, S = d->stride, P = d->pad, OH = d->oh, OW = d->ow;
    const int64_t ohw = OH * OW, ld = gn * ohw, hp = H + 2 * P, wp = W + 2 * P;
    for (int64_t gi = 0; gi < gn; gi++) {
        for (int64_t ci = 0; ci < d->c; ci++) {
            float *plane = dx + ((n0 + gi) * d->c + ci) * H * W;
            float *acc = P > 0 ? padbuf : plane;
            const int64_t lda = P > 0 ? wp : W;
            memset(acc, 0, (size_t)(P > 0 ? hp * wp : H * W) * sizeof(float));
            for (int64_t ky = 0; ky < d->kh; ky++)
                for (int64_t kx = 0; kx < d->kw; kx++) {
                    const float *src = dcol + ((ci * d->kh + ky) * d->kw + kx) * ld + gi * ohw;
                    for (int64_t oy = 0; oy < OH; oy++)
                        add_row(acc + (oy * S + ky) * lda + kx, src + oy * OW, OW, S);
                }
            if (P > 0)
                for (int64_t y = 0; y < H; y++)
                    copy_row(plane + y * W, padbuf + (y + P) * wp + P, W, 1);
        }
    }
}
CPU_DISPATCH_VOID(, cpu_col2im,
                  (const eng_conv_desc *d, const float *dcol, int64_t n0, int64_t gn, float *dx, float *padbuf),
                  (d, dcol, n0, gn, dx, padbuf))
