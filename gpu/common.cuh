// Shared pieces of the CUDA kernels: launch sizes and deterministic
// warp/block reductions (fixed order, no atomics: the same inputs give the
// same bits on the same GPU).
#ifndef GPU_COMMON_CUH
#define GPU_COMMON_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "gpu/check.h"
#include "gpu/hd.h"
#include "gpu/ops.h"

#define GPU_THREADS 256

static inline int64_t gpu_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks for a grid-stride loop over n elements (n > 0).
static inline unsigned gpu_blocks(int64_t n, int threads = GPU_THREADS)
{
    int64_t b = gpu_ceil_div(n, threads);
    const int64_t cap = 1 << 20; // grid-stride loops cover the rest
    return (unsigned)(b < cap ? b : cap);
}

// Whether index arithmetic over n elements fits 32 bits, with room for a
// grid-stride step past the end.
static inline bool gpu_fits_u32(int64_t n) { return n >= 0 && n < ((int64_t)1 << 31); }

__device__ __forceinline__ double gpu_warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v; // the same bits in every lane (each step adds the same pair)
}

__device__ __forceinline__ float gpu_warp_sumf(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float gpu_warp_maxf(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the whole block (1-d or 2-d, a multiple of 32 threads, at most
// 1024); every thread must call it and every thread gets the total.
__device__ __forceinline__ double gpu_block_sum(double v)
{
    __shared__ double sh[32];
    const int tid = threadIdx.x + threadIdx.y * blockDim.x;
    const int nw = (blockDim.x * blockDim.y) >> 5;
    v = gpu_warp_sum(v);
    __syncthreads(); // sh may still be read by a previous call
    if ((tid & 31) == 0)
        sh[tid >> 5] = v;
    __syncthreads();
    v = (tid & 31) < nw ? sh[tid & 31] : 0.0;
    return gpu_warp_sum(v);
}

__device__ __forceinline__ float gpu_block_maxf(float v)
{
    __shared__ float shm[32];
    const int tid = threadIdx.x + threadIdx.y * blockDim.x;
    const int nw = (blockDim.x * blockDim.y) >> 5;
    v = gpu_warp_maxf(v);
    __syncthreads();
    if ((tid & 31) == 0)
        shm[tid >> 5] = v;
    __syncthreads();
    v = (tid & 31) < nw ? shm[tid & 31] : -INFINITY;
    return gpu_warp_maxf(v);
}


// Reductions over the threads that share one row: a warp (TPR 32, several
// rows per block) or the whole block (TPR == blockDim.x, one row per block).
template <int TPR>
__device__ __forceinline__ double gpu_row_sum(double v)
{
    if constexpr (TPR == 32)
        return gpu_warp_sum(v);
    else
        return gpu_block_sum(v);
}

template <int TPR>
__device__ __forceinline__ float gpu_row_max(float v)
{
    if constexpr (TPR == 32)
        return gpu_warp_maxf(v);
    else
        return gpu_block_maxf(v);
}

// Rows of length n up to this use a warp each; longer ones a block each.
#define GPU_WARP_ROW_MAX 1024

#endif
