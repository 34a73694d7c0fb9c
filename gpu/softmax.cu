// Softmax over the last dimension of (rows, n), forward and backward
// (dx = y * (dy - sum(dy * y))); a warp per row, or a block for long rows.
#include "gpu/common.cuh"

template <int TPR>
__global__ void gpu_softmax_fwd_kernel(int64_t rows, int64_t n, const float *x, float *y)
{
    const int rpb = blockDim.x / TPR;
    const int64_t r = (int64_t)blockIdx.x * rpb + threadIdx.x / TPR;
    const int lane = threadIdx.x % TPR;
    if (r >= rows)
        return; // all threads of a row leave together
    const float *xr = x + r * n;
    float *yr = y + r * n;
    float m = -INFINITY;
    for (int64_t j = lane; j < n; j += TPR)
        m = fmaxf(m, xr[j]);
    m = gpu_row_max<TPR>(m);
    double s = 0.0;
    for (int64_t j = lane; j < n; j += TPR)
        s += expf(xr[j] - m);
    s = gpu_row_sum<TPR>(s);
    const float inv = (float)(1.0 / s);
    for (int64_t j = lane; j < n; j += TPR)
        yr[j] = expf(xr[j] - m) * inv;
}

template <int TPR>
__global__ void gpu_softmax_bwd_kernel(int64_t rows, int64_t n, const float *y, const float *dy, float *dx)
{
    const int rpb = blockDim.x / TPR;
    const int64_t r = (int64_t)blockIdx.x * rpb + threadIdx.x / TPR;
    const int lane = threadIdx.x % TPR;
    if (r >= rows)
        return;
    const float *yr = y + r * n, *dyr = dy + r * n;
    float *dxr = dx + r * n;
    double dot = 0.0;
    for (int64_t j = lane; j < n; j += TPR)
        dot += (double)dyr[j] * yr[j];
    const float d = (float)gpu_row_sum<TPR>(dot);
    for (int64_t j = lane; j < n; j += TPR)
        dxr[j] = yr[j] * (dyr[j] - d);
}

extern "C" int gpu_softmax_forward(gpu_ctx *g, int64_t rows, int64_t n, const float *x, float *y)
{
    if (rows < 0 || n < 1 || (rows > 0 && (!x || !y)))
        return eng_error(ENG_EINVAL, "softmax_forward: bad arguments rows=%lld n=%lld", (long long)rows, (long long)n);
    if (rows == 0)
        return 0;
    if (n <= GPU_WARP_ROW_MAX) {
        gpu_softmax_fwd_kernel<32><<<(unsigned)gpu_ceil_div(rows, 8), 256, 0, g->stream>>>(rows, n, x, y);
        GPU_LAUNCHED(gpu_softmax_fwd_kernel<32>);
    } else {
        gpu_softmax_fwd_kernel<256><<<(unsigned)rows, 256, 0, g->stream>>>(rows, n, x, y);
        GPU_LAUNCHED(gpu_softmax_fwd_kernel<256>);
    }
    return 0;
}

extern "C" int gpu_softmax_backward(gpu_ctx *g, int64_t rows, int64_t n, const float *y, const float *dy, float *dx)
{
    if (rows < 0 || n < 1 || (rows > 0 && (!y || !dy || !dx)))
        return eng_error(ENG_EINVAL, "softmax_backward: bad arguments rows=%lld n=%lld", (long long)rows,
                         (long long)n);
    if (rows == 0)
        return 0;
    if (n <= GPU_WARP_ROW_MAX) {
        gpu_softmax_bwd_kernel<32><<<(unsigned)gpu_ceil_div(rows, 8), 256, 0, g->stream>>>(rows, n, y, dy, dx);
        GPU_LAUNCHED(gpu_softmax_bwd_kernel<32>);
    } else {
        gpu_softmax_bwd_kernel<256><<<(unsigned)rows, 256, 0, g->stream>>>(rows, n, y, dy, dx);
        GPU_LAUNCHED(gpu_softmax_bwd_kernel<256>);
    }
    return 0;
}
