// Mean over the last dimension of (rows, n) and its backward dx[r, j] = dy[r] / n.
#include "gpu/common.cuh"

// one warp per row, 8 rows per block
__global__ void gpu_mean_fwd_kernel(int64_t rows, int64_t n, const float *x, float *y)
{
    const int64_t r = (int64_t)blockIdx.x * 8 + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (r >= rows)
        return; // whole warps leave together: r is the same in every lane
    const float *xr = x + r * n;
    double s = 0.0;
    for (int64_t j = lane; j < n; j += 32)
        s += xr[j];
    s = gpu_warp_sum(s);
    if (lane == 0)
        y[r] = (float)(s / (double)n);
}

__global__ void gpu_mean_bwd_kernel(int64_t total, int64_t n, const float *dy, float *dx)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x)
        dx[t] = dy[t / n] / (float)n;
}

extern "C" int gpu_mean_lastdim_forward(gpu_ctx *g, int64_t rows, int64_t n, const float *x, float *y)
{
    if (rows < 0 || n < 1 || (rows > 0 && (!x || !y)))
        return eng_error(ENG_EINVAL, "mean_lastdim_forward: bad arguments rows=%lld n=%lld", (long long)rows,
                         (long long)n);
    if (rows == 0)
        return 0;
    gpu_mean_fwd_kernel<<<(unsigned)gpu_ceil_div(rows, 8), 256, 0, g->stream>>>(rows, n, x, y);
    GPU_LAUNCHED(gpu_mean_fwd_kernel);
    return 0;
}

extern "C" int gpu_mean_lastdim_backward(gpu_ctx *g, int64_t rows, int64_t n, const float *dy, float *dx)
{
    if (rows < 0 || n < 1 || (rows > 0 && (!dy || !dx || (n > 1 && (const float *)dx == dy))))
        return eng_error(ENG_EINVAL, "mean_lastdim_backward: bad arguments rows=%lld n=%lld", (long long)rows,
                         (long long)n);
    if (rows == 0)
        return 0;
    const int64_t total = rows * n;
    gpu_mean_bwd_kernel<<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(total, n, dy, dx);
    GPU_LAUNCHED(gpu_mean_bwd_kernel);
    return 0;
}
