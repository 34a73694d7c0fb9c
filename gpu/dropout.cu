// Dropout: element i is kept when eng_philox_uniform(key, counter, i) >= p
// (the same masks as the CPU, see philox.h), y = (x * keep) / (1 - p)
// (dropout.h). One Philox call gives the uniforms of elements 4q .. 4q+3.
// The same call on (dy, dx) is the backward pass; y may alias x.
#include "gpu/common.cuh"
#include "gpu/dropout.h"
#include "gpu/philox.h"

__global__ void gpu_dropout_kernel(int64_t n, float p, uint64_t key, uint64_t counter, const float *x, float *y)
{
    const int64_t groups = (n + 3) / 4;
    for (int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; q < groups; q += (int64_t)gridDim.x * blockDim.x) {
        const gpu_u32x4 r = gpu_philox(key, counter + (uint64_t)q);
#pragma unroll
        for (int l = 0; l < 4; l++) {
            const int64_t i = 4 * q + l;
            if (i < n)
                y[i] = gpu_dropout_elem(x[i], gpu_philox_to_uniform(r.v[l]), p);
        }
    }
}

extern "C" int gpu_dropout(gpu_ctx *g, int64_t n, float p, uint64_t key, uint64_t counter, const float *x, float *y)
{
    if (n < 0 || !(p >= 0.0f && p <= 1.0f) || (n > 0 && (!x || !y)))
        return eng_error(ENG_EINVAL, "dropout: bad arguments n=%lld p=%g", (long long)n, (double)p);
    if (n == 0)
        return 0;
    gpu_dropout_kernel<<<gpu_blocks((n + 3) / 4), GPU_THREADS, 0, g->stream>>>(n, p, key, counter, x, y);
    GPU_LAUNCHED(gpu_dropout_kernel);
    return 0;
}
