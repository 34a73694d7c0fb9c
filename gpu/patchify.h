/* Index maps of patchify (host and device): x (n, c, h, w) <-> y (n, P, D)
 * with P = (h/p)(w/p) patches in row-major order and D = c*p*p features
 * ordered (channel, py, px). Both are permutations, so forward gathers and
 * backward gathers too (no scatter, no atomics). */
#ifndef GPU_PATCHIFY_H
#define GPU_PATCHIFY_H

#include <stdint.h>

#include "gpu/hd.h"

/* Index into x of y's element t. */
GPU_HD int64_t gpu_patchify_x_index(int64_t t, int64_t c, int64_t h, int64_t w, int64_t p)
{
    const int64_t D = c * p * p, wp = w / p, P = (h / p) * wp;
    const int64_t f = t % D, r = t / D;
    const int64_t patch = r % P, b = r / P;
    const int64_t ch = f / (p * p), py = (f / p) % p, px = f % p;
    const int64_t ph = patch / wp, pw = patch % wp;
    return ((b * c + ch) * h + ph * p + py) * w + pw * p + px;
}

/* Index into y of x's element t. */
GPU_HD int64_t gpu_patchify_y_index(int64_t t, int64_t c, int64_t h, int64_t w, int64_t p)
{
    const int64_t D = c * p * p, wp = w / p, P = (h / p) * wp;
    const int64_t xw = t % w, yh = (t / w) % h, ch = (t / (w * h)) % c, b = t / (w * h * c);
    const int64_t patch = (yh / p) * wp + xw / p;
    const int64_t f = ch * p * p + (yh % p) * p + xw % p;
    return (b * P + patch) * D + f;
}

#endif
