// batch_gather: a float batch from the uint8 dataset resident on the GPU,
// with crop, flip and normalisation (gather.h), and the batch's labels.
#include "gpu/common.cuh"
#include "gpu/gather.h"

__global__ void gpu_gather_kernel(eng_batch_desc d, int64_t total, const uint8_t *images,
                                  const int32_t *all_labels, const int32_t *idx, const int16_t *aug, float *x,
                                  int32_t *labels)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
        x[t] = gpu_gather_value(&d, images, idx, aug, t);
        if (t < d.n && labels)
            labels[t] = all_labels[idx[t]];
    }
}

extern "C" int gpu_batch_gather(gpu_ctx *g, const eng_batch_desc *d, const uint8_t *images,
                                const int32_t *all_labels, const int32_t *idx, const int16_t *aug, float *x,
                                int32_t *labels)
{
    if (!d || d->n < 0 || d->c < 1 || d->c > ENG_MAX_CHANNELS || d->h < 1 || d->w < 1 || d->pad < 0)
        return eng_error(ENG_EINVAL, "batch_gather: bad batch description");
    if (d->n == 0)
        return 0;
    if (!images || !idx || !x || (d->augment && !aug) || (labels && !all_labels))
        return eng_error(ENG_EINVAL, "batch_gather: NULL tensor");
    const int64_t total = d->n * d->c * d->h * d->w; // >= n, so every label is written
    gpu_gather_kernel<<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(*d, total, images, all_labels, idx, aug, x,
                                                                        labels);
    GPU_LAUNCHED(gpu_gather_kernel);
    return 0;
}
