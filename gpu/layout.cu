// Data movement without arithmetic: strided 2-d copy, batched transpose,
// and patchify (true p x p patches) forward and backward.
#include "gpu/common.cuh"
#include "gpu/patchify.h"

// x (batch, rows, cols) -> y (batch, cols, rows) through 32x32 shared tiles
// (one column of padding keeps the column reads free of bank conflicts).
__global__ void gpu_transpose_kernel(int64_t batch, int64_t rows, int64_t cols, const float *x, float *y)
{
    __shared__ float tile[32][33];
    const int64_t c0 = (int64_t)blockIdx.x * 32, r0 = (int64_t)blockIdx.y * 32;
    for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
        const float *xb = x + b * rows * cols;
        float *yb = y + b * rows * cols;
        for (int k = threadIdx.y; k < 32; k += blockDim.y) {
            const int64_t r = r0 + k, c = c0 + threadIdx.x;
            if (r < rows && c < cols)
                tile[k][threadIdx.x] = xb[r * cols + c];
        }
        __syncthreads();
        for (int k = threadIdx.y; k < 32; k += blockDim.y) {
            const int64_t c = c0 + k, r = r0 + threadIdx.x;
            if (c < cols && r < rows)
                yb[c * rows + r] = tile[threadIdx.x][k];
        }
        __syncthreads(); // the tile is refilled for the next batch entry
    }
}

__global__ void gpu_patchify_fwd_kernel(int64_t total, int64_t c, int64_t h, int64_t w, int64_t p, const float *x,
                                        float *y)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x)
        y[t] = x[gpu_patchify_x_index(t, c, h, w, p)];
}

__global__ void gpu_patchify_bwd_kernel(int64_t total, int64_t c, int64_t h, int64_t w, int64_t p, const float *dy,
                                        float *dx)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x)
        dx[t] = dy[gpu_patchify_y_index(t, c, h, w, p)];
}

extern "C" int gpu_copy_2d(gpu_ctx *g, int64_t rows, int64_t cols, const float *src, int64_t ld_src, float *dst,
                           int64_t ld_dst)
{
    if (rows < 0 || cols < 0 || ld_src < cols || ld_dst < cols || (rows > 0 && cols > 0 && (!src || !dst)))
        return eng_error(ENG_EINVAL, "copy_2d: bad arguments rows=%lld cols=%lld ld_src=%lld ld_dst=%lld",
                         (long long)rows, (long long)cols, (long long)ld_src, (long long)ld_dst);
    if (rows == 0 || cols == 0)
        return 0;
    GPU_CUDA(cudaMemcpy2DAsync(dst, (size_t)ld_dst * sizeof(float), src, (size_t)ld_src * sizeof(float),
                               (size_t)cols * sizeof(float), (size_t)rows, cudaMemcpyDeviceToDevice, g->stream));
    return 0;
}

extern "C" int gpu_transpose(gpu_ctx *g, int64_t batch, int64_t rows, int64_t cols, const float *x, float *y)
{
    if (batch < 0 || rows < 0 || cols < 0 || (batch * rows * cols > 0 && (!x || !y || x == y)))
        return eng_error(ENG_EINVAL, "transpose: bad arguments (%lld, %lld, %lld)%s", (long long)batch,
                         (long long)rows, (long long)cols, x == y ? " (in place is not supported)" : "");
    if (batch * rows * cols == 0)
        return 0;
    const int64_t gy = gpu_ceil_div(rows, 32), gx = gpu_ceil_div(cols, 32);
    if (gy > 65535 || gx > INT32_MAX)
        return eng_error(ENG_ELIMIT, "transpose: %lld rows exceed the grid", (long long)rows);
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)(batch < 65535 ? batch : 65535)), block(32, 8);
    gpu_transpose_kernel<<<grid, block, 0, g->stream>>>(batch, rows, cols, x, y);
    GPU_LAUNCHED(gpu_transpose_kernel);
    return 0;
}

static int patchify_check(const char *op, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const void *a,
                          const void *b)
{
    if (n < 0 || c < 1 || h < 1 || w < 1 || p < 1 || h % p || w % p || (n > 0 && (!a || !b || a == b)))
        return eng_error(ENG_EINVAL, "%s: bad arguments n=%lld c=%lld h=%lld w=%lld p=%lld", op, (long long)n,
                         (long long)c, (long long)h, (long long)w, (long long)p);
    return 0;
}

extern "C" int gpu_patchify_forward(gpu_ctx *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p,
                                    const float *x, float *y)
{
    int rc = patchify_check("patchify_forward", n, c, h, w, p, x, y);
    if (rc < 0 || n == 0)
        return rc;
    const int64_t total = n * c * h * w;
    gpu_patchify_fwd_kernel<<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(total, c, h, w, p, x, y);
    GPU_LAUNCHED(gpu_patchify_fwd_kernel);
    return 0;
}

extern "C" int gpu_patchify_backward(gpu_ctx *g, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p,
                                     const float *dy, float *dx)
{
    int rc = patchify_check("patchify_backward", n, c, h, w, p, dy, dx);
    if (rc < 0 || n == 0)
        return rc;
    const int64_t total = n * c * h * w;
    gpu_patchify_bwd_kernel<<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(total, c, h, w, p, dy, dx);
    GPU_LAUNCHED(gpu_patchify_bwd_kernel);
    return 0;
}
