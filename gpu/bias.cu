// Bias over a (outer, n, inner) tensor: y[o, j, i] += bias[j] and its
// gradient db[j] = sum over (o, i) of dy[o, j, i] (deterministic, overwrites).
#include "gpu/chanred.cuh"

// I: the index type, 32-bit when the tensor allows (64-bit division is slow on GPUs)
template <class I>
__global__ void gpu_bias_add_kernel(I total, I n, I inner, float *y, const float *bias)
{
    for (I t = (I)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (I)gridDim.x * blockDim.x)
        y[t] += bias[(t / inner) % n];
}

struct gpu_bias_sum {
    const float *dy;
    __host__ __device__ void operator()(int64_t, int64_t, int64_t, int64_t idx, double &a0, double &) const { a0 += dy[idx]; }
};

struct gpu_bias_store {
    float *db;
    __host__ __device__ void operator()(int64_t j, double a0, double) const { db[j] = (float)a0; }
};

extern "C" int gpu_bias_add(gpu_ctx *g, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias)
{
    if (outer < 0 || n < 0 || inner < 0 || (outer * n * inner > 0 && (!y || !bias)))
        return eng_error(ENG_EINVAL, "bias_add: bad arguments (%lld, %lld, %lld)", (long long)outer, (long long)n,
                         (long long)inner);
    int64_t total = outer * n * inner;
    if (total == 0)
        return 0;
    if (gpu_fits_u32(total)) {
        gpu_bias_add_kernel<uint32_t><<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(
            (uint32_t)total, (uint32_t)n, (uint32_t)inner, y, bias);
        GPU_LAUNCHED(gpu_bias_add_kernel<uint32_t>);
    } else {
        gpu_bias_add_kernel<int64_t><<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(total, n, inner, y, bias);
        GPU_LAUNCHED(gpu_bias_add_kernel<int64_t>);
    }
    return 0;
}

extern "C" int gpu_bias_grad(gpu_ctx *g, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db)
{
    if (outer < 0 || n < 0 || inner < 0 || (n > 0 && !db) || (outer * n * inner > 0 && !dy))
        return eng_error(ENG_EINVAL, "bias_grad: bad arguments (%lld, %lld, %lld)", (long long)outer, (long long)n,
                         (long long)inner);
    if (n == 0)
        return 0;
    if (outer == 0 || inner == 0)
        return gpu_fill(g, db, n, 0.0f);
    return gpu_chan_reduce(g, "bias_grad", outer, n, inner, gpu_bias_sum{dy}, gpu_bias_store{db});
}
