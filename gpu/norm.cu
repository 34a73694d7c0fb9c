// Global gradient norm: sumsq (a deterministic two-stage reduction into a
// double on the device: per-block partials, then one block sums them in a
// fixed order; no atomics, so the result is bit-reproducible) and
// clip_by_norm, which reads that double on the device (no host sync).
#include "gpu/common.cuh"

#define SUMSQ_MAX_BLOCKS 1024

__global__ void gpu_sumsq_partial(int64_t n, const float *x, double *part)
{
    double s = 0.0;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        const double v = x[t];
        s += v * v;
    }
    s = gpu_block_sum(s);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s;
}

__global__ void gpu_sumsq_final(int nparts, const double *part, double *out)
{
    double s = threadIdx.x < nparts ? part[threadIdx.x] : 0.0;
    s = gpu_block_sum(s);
    if (threadIdx.x == 0)
        *out = s;
}

__global__ void gpu_clip_kernel(int64_t n, float *g, const double *sumsq, float max_norm)
{
    const double norm = sqrt(*sumsq);
    const double coef = (double)max_norm / (norm + 1e-6);
    if (!(coef < 1.0))
        return; // nothing to scale (also when the norm is NaN: torch would scale by NaN; see docs/gpu.md)
    const float c = (float)coef;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x)
        g[t] *= c;
}

extern "C" int gpu_sumsq(gpu_ctx *g, int64_t n, const float *x, double *sumsq)
{
    if (n < 0 || !sumsq || (n > 0 && !x))
        return eng_error(ENG_EINVAL, "sumsq: bad arguments (n=%lld)", (long long)n);
    // the block count depends on n only, so the summation order does too
    int64_t blocks = gpu_ceil_div(n, 4096);
    if (blocks < 1)
        blocks = 1;
    if (blocks > SUMSQ_MAX_BLOCKS)
        blocks = SUMSQ_MAX_BLOCKS;
    gpu_sumsq_partial<<<(unsigned)blocks, GPU_THREADS, 0, g->stream>>>(n, x, g->scratch);
    GPU_LAUNCHED(gpu_sumsq_partial);
    gpu_sumsq_final<<<1, SUMSQ_MAX_BLOCKS, 0, g->stream>>>((int)blocks, g->scratch, sumsq);
    GPU_LAUNCHED(gpu_sumsq_final);
    return 0;
}

extern "C" int gpu_clip_by_norm(gpu_ctx *g, int64_t n, float *grad, const double *sumsq, float max_norm)
{
    if (n < 0 || !sumsq || (n > 0 && !grad) || !(max_norm > 0.0f))
        return eng_error(ENG_EINVAL, "clip_by_norm: bad arguments (n=%lld, max_norm=%g)", (long long)n,
                         (double)max_norm);
    if (n == 0)
        return 0;
    gpu_clip_kernel<<<gpu_blocks(n), GPU_THREADS, 0, g->stream>>>(n, grad, sumsq, max_norm);
    GPU_LAUNCHED(gpu_clip_kernel);
    return 0;
}
