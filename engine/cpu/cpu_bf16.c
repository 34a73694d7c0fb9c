/* bf16 rounding for the CPU backend's own kernels: where oneDNN has no bf16
 * kernel for a shape (or the machine has no bf16 instructions), a bf16
 * product is computed as the float32 product of operands rounded to bf16 -
 * exact products of bf16 values, accumulated in float32, as the bf16
 * kernels do. */
#include "engine/cpu/cpu_internal.h"

CPU_KERNEL_BODY void round_kernel_body(int64_t n, const float *restrict src, float *restrict dst)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dst[i] = cpu_round_bf16(src[i]);
}
CPU_DISPATCH_VOID(static, round_kernel, (int64_t n, const float *restrict src, float *restrict dst),
                  (n, src, dst))

void cpu_round_bf16_array(eng_backend *b, int64_t n, const float *src, float *dst)
{
    const int64_t chunk = (int64_t)1 << 16, nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(cpu_team(b, n)) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        round_kernel(hi - lo, src + lo, dst + lo);
    }
}

const float *cpu_bf16_copy(eng_backend *b, int slot, int64_t n, const float *src)
{
    float *dst = cpu_scratch(b, slot, (size_t)(n > 0 ? n : 1) * sizeof(float));
    if (dst && n > 0)
        cpu_round_bf16_array(b, n, src, dst);
    return dst;
}

CPU_KERNEL_BODY void pack_kernel_body(int64_t n, const float *restrict src, uint16_t *restrict dst)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dst[i] = cpu_bf16_bits(src[i]);
}
CPU_DISPATCH_VOID(static, pack_kernel, (int64_t n, const float *restrict src, uint16_t *restrict dst), (n, src, dst))

void cpu_bf16_pack(int64_t n, const float *src, uint16_t *dst) { pack_kernel(n, src, dst); }

CPU_KERNEL_BODY void expand_kernel_body(int64_t n, const uint16_t *restrict src, float *restrict dst)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dst[i] = cpu_bf16_float(src[i]);
}
CPU_DISPATCH_VOID(static, expand_kernel, (int64_t n, const uint16_t *restrict src, float *restrict dst),
                  (n, src, dst))

const float *cpu_bf16_expand(eng_backend *b, int slot, int64_t n, const uint16_t *src)
{
    float *dst = cpu_scratch(b, slot, (size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!dst || n <= 0)
        return dst;
    const int64_t chunk = (int64_t)1 << 16, nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(cpu_team(b, n)) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        expand_kernel(hi - lo, src + lo, dst + lo);
    }
    return dst;
}
