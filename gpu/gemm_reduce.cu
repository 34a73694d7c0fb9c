// The second stage of a reduce_batch GEMM (gemm.c): C = alpha * (sum of the
// product slices, added in slice order in double) + beta * C. Slices are
// contiguous m x n; C has leading dimension ldc. beta == 0 never reads C.
#include "gpu/common.cuh"

__global__ void gpu_gemm_slices_kernel(int64_t slices, int64_t m, int64_t n, const float *T, float alpha, float beta,
                                       float *C, int64_t ldc)
{
    const int64_t mn = m * n;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < mn; t += (int64_t)gridDim.x * blockDim.x) {
        double s = 0.0;
        for (int64_t i = 0; i < slices; i++)
            s += T[i * mn + t];
        float *c = C + (t / n) * ldc + t % n;
        const float v = alpha * (float)s;
        *c = beta == 0.0f ? v : GPU_FADD(v, GPU_FMUL(beta, *c));
    }
}

extern "C" int gpu_gemm_sum_slices(gpu_ctx *g, int64_t slices, int64_t m, int64_t n, const float *T, float alpha,
                                   float beta, float *C, int64_t ldc)
{
    if (slices < 1 || m < 1 || n < 1 || ldc < n || !T || !C)
        return eng_error(ENG_EINVAL, "gemm reduce_batch: bad slices (%lld of %lldx%lld)", (long long)slices,
                         (long long)m, (long long)n);
    gpu_gemm_slices_kernel<<<gpu_blocks(m * n), GPU_THREADS, 0, g->stream>>>(slices, m, n, T, alpha, beta, C, ldc);
    GPU_LAUNCHED(gpu_gemm_slices_kernel);
    return 0;
}
