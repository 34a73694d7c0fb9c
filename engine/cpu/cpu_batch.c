/* Builds a normalised float batch from a uint8 dataset: gather by index,
 * optional crop-with-padding and horizontal flip, per-channel normalisation.
 * Each channel's 256 possible values are tabulated once with exactly the
 * contract's formula, (u / 255 - mean) * inv_std, in float. A float32
 * dataset (d->f32) is normalised as (v - mean) * inv_std. */
#include "engine/cpu/cpu_internal.h"

/* The float32 form: the same crop and flip, no table. */
static int gather_f32(eng_backend *b, const eng_batch_desc *d, const float *images, const int32_t *all_labels,
                      const int32_t *idx, const int16_t *aug, float *x, int32_t *labels)
{
    const int64_t H = d->h, W = d->w, plane = H * W, per = d->c * plane;
#pragma omp parallel for num_threads(cpu_team(b, d->n * per)) schedule(static)
    for (int64_t i = 0; i < d->n; i++) {
        const float *src = images + (int64_t)idx[i] * per;
        float *dst = x + i * per;
        int64_t oy = 0, ox = 0;
        bool flip = false;
        if (d->augment) {
            oy = aug[3 * i] - d->pad;
            ox = aug[3 * i + 1] - d->pad;
            flip = aug[3 * i + 2] != 0;
        }
        for (int64_t ch = 0; ch < d->c; ch++) {
            const float mean = d->mean[ch], inv = d->inv_std[ch], zero = (0.0f - mean) * inv;
            for (int64_t y = 0; y < H; y++) {
                float *row = dst + ch * plane + y * W;
                const int64_t sy = y + oy;
                if (sy < 0 || sy >= H) {
                    for (int64_t xx = 0; xx < W; xx++)
                        row[xx] = zero;
                    continue;
                }
                const float *srow = src + ch * plane + sy * W;
                for (int64_t xx = 0; xx < W; xx++) {
                    const int64_t sx = xx + ox;
                    row[xx] = (sx < 0 || sx >= W) ? zero : (srow[flip ? W - 1 - sx : sx] - mean) * inv;
                }
            }
        }
        if (labels)
            labels[i] = all_labels[idx[i]];
    }
    return 0;
}

int cpu_batch_gather(eng_backend *b, const eng_batch_desc *d, const uint8_t *images, const int32_t *all_labels,
                     const int32_t *idx, const int16_t *aug, float *x, int32_t *labels)
{
    CPU_NONNULL("batch_gather", d);
    CPU_CHECK(d->n >= 0 && d->c >= 1 && d->c <= ENG_MAX_CHANNELS && d->h >= 1 && d->w >= 1 && d->pad >= 0,
              "cpu batch_gather: bad size (n %lld, c %lld, h %lld, w %lld, pad %lld)", (long long)d->n,
              (long long)d->c, (long long)d->h, (long long)d->w, (long long)d->pad);
    if (d->n == 0)
        return 0;
    CPU_NONNULL("batch_gather", images);
    CPU_NONNULL("batch_gather", idx);
    CPU_NONNULL("batch_gather", x);
    if (d->augment)
        CPU_NONNULL("batch_gather", aug);
    if (labels)
        CPU_NONNULL("batch_gather", all_labels);
    for (int64_t i = 0; i < d->n; i++)
        CPU_CHECK(idx[i] >= 0, "cpu batch_gather: idx[%lld] = %d is negative", (long long)i, (int)idx[i]);

    if (d->f32)
        return gather_f32(b, d, (const float *)(const void *)images, all_labels, idx, aug, x, labels);
    float lut[ENG_MAX_CHANNELS][256];
    for (int64_t ch = 0; ch < d->c; ch++)
        for (int u = 0; u < 256; u++)
            lut[ch][u] = ((float)u / 255.0f - d->mean[ch]) * d->inv_std[ch];

    const int64_t H = d->h, W = d->w, plane = H * W, per = d->c * plane;
#pragma omp parallel for num_threads(cpu_team(b, d->n * per)) schedule(static)
    for (int64_t i = 0; i < d->n; i++) {
        const uint8_t *src = images + (int64_t)idx[i] * per;
        float *dst = x + i * per;
        int64_t oy = 0, ox = 0;
        bool flip = false;
        if (d->augment) {
            oy = aug[3 * i] - d->pad;
            ox = aug[3 * i + 1] - d->pad;
            flip = aug[3 * i + 2] != 0;
        }
        for (int64_t ch = 0; ch < d->c; ch++) {
            const float *t = lut[ch];
            const float zero = t[0];
            for (int64_t y = 0; y < H; y++) {
                float *row = dst + ch * plane + y * W;
                const int64_t sy = y + oy;
                if (sy < 0 || sy >= H) {
                    for (int64_t xx = 0; xx < W; xx++)
                        row[xx] = zero;
                    continue;
                }
                const uint8_t *srow = src + ch * plane + sy * W;
                for (int64_t xx = 0; xx < W; xx++) {
                    const int64_t sx = xx + ox;
                    /* the flipped image's column sx is the image's column W-1-sx */
                    row[xx] = (sx < 0 || sx >= W) ? zero : t[srow[flip ? W - 1 - sx : sx]];
                }
            }
        }
        if (labels)
            labels[i] = all_labels[idx[i]];
    }
    return 0;
}
