// Elementwise activations forward and backward (backward may run in place, dx == dy).
#include "gpu/act.h"
#include "gpu/common.cuh"

__global__ void gpu_act_fwd_kernel(eng_act k, float slope, int64_t n, const float *x, float *y)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x)
        y[t] = gpu_act_fwd(k, slope, x[t]);
}

__global__ void gpu_act_bwd_kernel(eng_act k, float slope, int64_t n, const float *x, const float *y,
                                   const float *dy, float *dx)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x)
        dx[t] = gpu_act_bwd(k, slope, x ? x + t : NULL, y ? y + t : NULL, dy[t]);
}

static bool act_known(eng_act k) { return k >= ENG_ACT_NONE && k <= ENG_ACT_TANH; }

extern "C" int gpu_act_forward(gpu_ctx *g, eng_act kind, float slope, int64_t n, const float *x, float *y)
{
    if (!act_known(kind) || n < 0 || (n > 0 && (!x || !y)))
        return eng_error(ENG_EINVAL, "act_forward: bad arguments (kind %d, n=%lld)", (int)kind, (long long)n);
    if (n == 0)
        return 0;
    gpu_act_fwd_kernel<<<gpu_blocks(n), GPU_THREADS, 0, g->stream>>>(kind, slope, n, x, y);
    GPU_LAUNCHED(gpu_act_fwd_kernel);
    return 0;
}

extern "C" int gpu_act_backward(gpu_ctx *g, eng_act kind, float slope, int64_t n, const float *x, const float *y,
                                const float *dy, float *dx)
{
    if (!act_known(kind) || n < 0 || (n > 0 && (!dy || !dx || !gpu_act_bwd_ok(kind, x, y))))
        return eng_error(ENG_EINVAL, "act_backward: bad arguments (kind %d, n=%lld, x %s, y %s)", (int)kind,
                         (long long)n, x ? "set" : "NULL", y ? "set" : "NULL");
    if (n == 0)
        return 0;
    gpu_act_bwd_kernel<<<gpu_blocks(n), GPU_THREADS, 0, g->stream>>>(kind, slope, n, x, y, dy, dx);
    GPU_LAUNCHED(gpu_act_bwd_kernel);
    return 0;
}
