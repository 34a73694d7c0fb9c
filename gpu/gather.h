/* One element of batch_gather (host and device): output (i, ch, y, x) of an
 * (n, c, h, w) batch built from a uint8 (N, c, h, w) dataset, with the crop
 * and flip of engine/backend.h's eng_batch_desc: the output pixel (y, x)
 * reads the image at (y + dy - pad, x + dx - pad), zero outside, after a
 * horizontal flip when flip != 0 (the flipped image F(y, x) = I(y, w-1-x)),
 * then value = (u / 255 - mean[ch]) * inv_std[ch]; a float32 dataset
 * (d->f32: images points at floats) gives (v - mean[ch]) * inv_std[ch]. */
#ifndef GPU_GATHER_H
#define GPU_GATHER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "engine/backend.h"
#ifdef __cplusplus
}
#endif
#include "gpu/hd.h"

GPU_HD float gpu_gather_value(const eng_batch_desc *d, const uint8_t *images, const int32_t *idx,
                              const int16_t *aug, int64_t t)
{
    const int64_t w = d->w, h = d->h, c = d->c;
    const int64_t xw = t % w, yh = (t / w) % h, ch = (t / (w * h)) % c, i = t / (w * h * c);
    const int64_t img = idx[i];
    int64_t sy = yh, sx = xw;
    int flip = 0;
    if (d->augment) {
        sy = yh + aug[3 * i + 0] - d->pad;
        sx = xw + aug[3 * i + 1] - d->pad;
        flip = aug[3 * i + 2] != 0;
    }
    float u = 0.0f;
    if (sy >= 0 && sy < h && sx >= 0 && sx < w) {
        if (flip)
            sx = w - 1 - sx;
        const int64_t k = ((img * c + ch) * h + sy) * w + sx;
        u = d->f32 ? ((const float *)(const void *)images)[k] : (float)images[k];
    }
    if (d->f32)
        return (u - d->mean[ch]) * d->inv_std[ch];
    return (u / 255.0f - d->mean[ch]) * d->inv_std[ch];
}

#endif
