// 2-d max and average pooling, forward and backward (a gather per input
// element: deterministic, no atomics; max routes to the first maximum).
#include "gpu/common.cuh"
#include "gpu/pool.h"

__global__ void gpu_pool_fwd_kernel(eng_pool_desc d, int64_t total, const float *x, float *y)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x)
        y[t] = gpu_pool_fwd_elem(&d, x, t);
}

__global__ void gpu_pool_bwd_kernel(eng_pool_desc d, int64_t total, const float *x, const float *y,
                                    const float *dy, float *dx)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x)
        dx[t] = gpu_pool_bwd_elem(&d, x, y, dy, t);
}

static int pool_check(const char *op, const eng_pool_desc *d)
{
    if (!d || (d->mode != ENG_POOL_MAX && d->mode != ENG_POOL_AVG) || d->n < 0 || d->c < 0 || d->h < 1 ||
        d->w < 1 || d->kh < 1 || d->kw < 1 || d->stride < 1 || d->pad < 0 || 2 * d->pad > d->kh ||
        2 * d->pad > d->kw)
        return eng_error(ENG_EINVAL, "%s: bad pooling description", op);
    if (d->kh > d->h + 2 * d->pad || d->kw > d->w + 2 * d->pad ||
        d->oh != (d->h + 2 * d->pad - d->kh) / d->stride + 1 || d->ow != (d->w + 2 * d->pad - d->kw) / d->stride + 1)
        return eng_error(ENG_EINVAL, "%s: output %lldx%lld does not match input %lldx%lld, kernel %lldx%lld, stride %lld, pad %lld",
                         op, (long long)d->oh, (long long)d->ow, (long long)d->h, (long long)d->w, (long long)d->kh,
                         (long long)d->kw, (long long)d->stride, (long long)d->pad);
    return 0;
}

extern "C" int gpu_pool_forward(gpu_ctx *g, const eng_pool_desc *d, const float *x, float *y)
{
    int rc = pool_check("pool_forward", d);
    if (rc < 0)
        return rc;
    const int64_t total = d->n * d->c * d->oh * d->ow;
    if (total == 0)
        return 0;
    if (!x || !y)
        return eng_error(ENG_EINVAL, "pool_forward: NULL tensor");
    gpu_pool_fwd_kernel<<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(*d, total, x, y);
    GPU_LAUNCHED(gpu_pool_fwd_kernel);
    return 0;
}

extern "C" int gpu_pool_backward(gpu_ctx *g, const eng_pool_desc *d, const float *x, const float *y,
                                 const float *dy, float *dx)
{
    int rc = pool_check("pool_backward", d);
    if (rc < 0)
        return rc;
    const int64_t total = d->n * d->c * d->h * d->w;
    if (total == 0)
        return 0;
    if (!dy || !dx || (d->mode == ENG_POOL_MAX && (!x || !y)))
        return eng_error(ENG_EINVAL, "pool_backward: NULL tensor");
    gpu_pool_bwd_kernel<<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(*d, total, x, y, dy, dx);
    GPU_LAUNCHED(gpu_pool_bwd_kernel);
    return 0;
}
