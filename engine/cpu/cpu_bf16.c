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

#if CPU_MULTIVERSION
#include <immintrin.h>

/* vcvtne2ps2bf16 rounds to nearest even and quiets a NaN as cpu_bf16_bits
 * does (the top half with the quiet bit set), in one instruction for 32
 * floats where the portable form takes about 20; but it flushes denormals
 * to zero, so 32 floats with one among them go the portable way. */
__attribute__((target("arch=x86-64-v4,avx512bf16"))) static void pack_avx512bf16(int64_t n, const float *src,
                                                                                 uint16_t *dst)
{
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 lo = _mm512_loadu_ps(src + i), hi = _mm512_loadu_ps(src + i + 16);
        const int denormal_class = 0x20;
        if (_mm512_fpclass_ps_mask(lo, denormal_class) | _mm512_fpclass_ps_mask(hi, denormal_class))
            pack_kernel_v4(32, src + i, dst + i);
        else
            _mm512_storeu_si512((void *)(dst + i), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
    if (i < n)
        pack_kernel_v4(n - i, src + i, dst + i);
}
#endif

void cpu_bf16_pack(int64_t n, const float *src, uint16_t *dst)
{
#if CPU_MULTIVERSION
    if (cpu_isa_bf16_current) {
        pack_avx512bf16(n, src, dst);
        return;
    }
#endif
    pack_kernel(n, src, dst);
}

int cpu_bf16_out_init(const char *op, uint16_t *p, int64_t outer, int64_t n, int64_t inner, int64_t tb,
                      cpu_bf16_out *o)
{
    const int64_t row = inner > 1 ? inner : n, rows = row > 0 ? outer * n * inner / row : 0;
    CPU_CHECK(tb >= 0 && (tb == 0 || rows % tb == 0),
              "cpu %s: the bf16 output's %lld rows do not split into %lld blocks", op, (long long)rows, (long long)tb);
    *o = (cpu_bf16_out){p, row, rows, tb};
    return 0;
}

void cpu_bf16_pack_out(const cpu_bf16_out *o, int64_t off, int64_t count, const float *src)
{
    if (o->tb <= 1) {
        cpu_bf16_pack(count, src, o->p + off);
        return;
    }
    /* row r = b * M + s goes to s * tb + b */
    const int64_t M = o->rows / o->tb;
    for (int64_t r = off / o->row, end = (off + count) / o->row; r < end; r++, src += o->row)
        cpu_bf16_pack(o->row, src, o->p + ((r % M) * o->tb + r / M) * o->row);
}

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
