// Elementwise fill and add.
#include "gpu/common.cuh"

__global__ void gpu_fill_kernel(int64_t n, float *x, float v)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x)
        x[t] = v;
}

// y may alias a or c: each element is read before it is written by the same thread
__global__ void gpu_add_kernel(int64_t n, const float *a, const float *c, float *y)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x)
        y[t] = a[t] + c[t];
}

extern "C" int gpu_fill(gpu_ctx *g, float *x, int64_t n, float value)
{
    if (n < 0 || (n > 0 && !x))
        return eng_error(ENG_EINVAL, "fill: bad arguments (n=%lld)", (long long)n);
    if (n == 0)
        return 0;
    gpu_fill_kernel<<<gpu_blocks(n), GPU_THREADS, 0, g->stream>>>(n, x, value);
    GPU_LAUNCHED(gpu_fill_kernel);
    return 0;
}

extern "C" int gpu_add(gpu_ctx *g, int64_t n, const float *a, const float *c, float *y)
{
    if (n < 0 || (n > 0 && (!a || !c || !y)))
        return eng_error(ENG_EINVAL, "add: bad arguments (n=%lld)", (long long)n);
    if (n == 0)
        return 0;
    gpu_add_kernel<<<gpu_blocks(n), GPU_THREADS, 0, g->stream>>>(n, a, c, y);
    GPU_LAUNCHED(gpu_add_kernel);
    return 0;
}
