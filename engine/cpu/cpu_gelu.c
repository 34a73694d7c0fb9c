/* GELU's forward y = x Phi(x) and its derivative from the forward's output,
 * the two passes that bound the mixers' elementwise time: they are compute
 * bound (about 4.5 times a memory pass of the same tensor), so they have a
 * form written for AVX-512 beside the portable one.
 *
 * Both forms evaluate the same formulas (cpu_math.h): Phi through the
 * Chebyshev fit of erfc and an exp carried as hi + lo. The AVX-512 form
 * saves instructions where the ISA has one for a step: the division by
 * 1 + z/2 and y / x become a reciprocal estimate and one Newton step
 * (relative error about 2^-28, below float's rounding), the exp's
 * rounding to an integer is vrndscaleps and its scaling by 2^n is
 * vscalefps (exact, as the two factors of cpu_expf_hl). Its results differ
 * from the portable form's in the last bits, as the FMA-contracted AVX2
 * form does already; a level gives the same bits every time. The accuracy
 * of both against double precision is checked in test_activation_accuracy.
 */
#include "engine/cpu/cpu_internal.h"
#include "engine/cpu/cpu_math.h"

/* as cpu_act.c: FMA in the AVX2 build */
#pragma GCC optimize("fp-contract=fast")

#if CPU_MULTIVERSION
#include <immintrin.h>
#endif

CPU_KERNEL_BODY void gelu_fwd_portable_body(int64_t n, const float *x, float *y)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * cpu_normcdf(x[i]);
}
CPU_DISPATCH_VOID(static, gelu_fwd_portable, (int64_t n, const float *x, float *y), (n, x, y))

/* Phi(x) = y / x from y = x Phi(x); near 0, where y / x would meet
 * denormals, Phi(x) = 1/2 + x phi(0) + O(x^3) (error < 1e-10 for
 * |x| < 1e-3). Where y has underflowed (x < -13) Phi and x phi are both
 * below 1e-36. */
CPU_KERNEL_BODY void gelu_bwd_portable_body(int64_t n, const float *x, const float *y, const float *dy, float *dx)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        const float a = v < 0.0f ? -v : v;
        const float phi = cpu_normpdf(v);
        const float cdf = a < 1e-3f ? 0.5f + 0.3989422804014327f * v : y[i] / v;
        dx[i] = dy[i] * (cdf + v * phi);
    }
}
CPU_DISPATCH_VOID(static, gelu_bwd_portable, (int64_t n, const float *x, const float *y, const float *dy, float *dx),
                  (n, x, y, dy, dx))

#if CPU_MULTIVERSION
#define V4 __attribute__((target("arch=x86-64-v4"), always_inline)) static inline
#define SET1 _mm512_set1_ps

/* 1 / d: the 14-bit estimate and one Newton step */
V4 __m512 recip16(__m512 d)
{
    const __m512 r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, SET1(1.0f)), r);
}

/* e^(hi + lo) as cpu_expf_hl, for -200 <= hi <= 0 (the callers cap |x|
 * at 20 first; e^-200 is below every float): no clamps, since vscalefps
 * underflows to denormals and 0 as the exact result would. */
V4 __m512 exp_hl16(__m512 hi, __m512 lo)
{
    const __m512 t = _mm512_mul_ps(_mm512_add_ps(hi, lo), SET1(1.44269504088896341f));
    const __m512 nf = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(nf, SET1(0.693359375f), hi);
    r = _mm512_fmadd_ps(nf, SET1(2.12194440e-4f), r);
    r = _mm512_add_ps(r, lo);
    const __m512 z = _mm512_mul_ps(r, r);
    __m512 p = SET1(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, SET1(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, SET1(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, SET1(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, SET1(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, SET1(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, z, r), SET1(1.0f));
    return _mm512_scalef_ps(p, nf);
}

/* |x| capped at 20, where Phi(-x) and phi(x) are below every float (and a
 * NaN becomes 20: the callers' own x carries it on) */
V4 __m512 abs_capped16(__m512 x) { return _mm512_min_ps(_mm512_abs_ps(x), SET1(20.0f)); }

/* -a^2 / 2 as hi + lo, exactly: the FMA gives the square's rounding error
 * (where cpu_neg_half_square splits a instead); halving is exact. lo is
 * returned with `add` added. */
V4 void neg_half_square16(__m512 a, __m512 add, __m512 *hi, __m512 *lo)
{
    const __m512 sq = _mm512_mul_ps(a, a);
    *hi = _mm512_mul_ps(SET1(-0.5f), sq);
    *lo = _mm512_fmadd_ps(SET1(-0.5f), _mm512_fmsub_ps(a, a, sq), add);
}

/* Phi(x) (cpu_normcdf) */
V4 __m512 normcdf16(__m512 x)
{
    const __m512 a = abs_capped16(x);
    const __m512 t = recip16(_mm512_fmadd_ps(a, SET1(0.5f * 0.70710678118654752f), SET1(1.0f)));
    __m512 p = SET1(0.17087277f);
    p = _mm512_fmadd_ps(p, t, SET1(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, SET1(1.48851587f));
    p = _mm512_fmadd_ps(p, t, SET1(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, SET1(0.27886807f));
    p = _mm512_fmadd_ps(p, t, SET1(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, SET1(0.09678418f));
    p = _mm512_fmadd_ps(p, t, SET1(0.37409196f));
    p = _mm512_fmadd_ps(p, t, SET1(1.00002368f));
    p = _mm512_fmadd_ps(p, t, SET1(-1.26551223f));
    __m512 hi, lo;
    neg_half_square16(a, p, &hi, &lo);
    const __m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(t, exp_hl16(hi, lo)), SET1(0.5f));
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_sub_ps(half_erfc, (__mmask16)~neg, SET1(1.0f), half_erfc);
}

__attribute__((target("arch=x86-64-v4"))) static void gelu_fwd_avx512(int64_t n, const float *x, float *y)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(v, normcdf16(v)));
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(v, normcdf16(v)));
    }
}

/* One block of gelu_bwd_portable's formula, 1 / x by recip16: for every
 * |x| >= 1e-3 up to FLT_MAX its estimate is a normal float or a denormal
 * of 21 bits or more, so y / x keeps the derivative's accuracy. */
V4 __m512 gelu_bwd16(__m512 v, __m512 y, __m512 dy)
{
    const __m512 a = _mm512_abs_ps(v);
    __m512 hi, lo;
    neg_half_square16(abs_capped16(v), _mm512_setzero_ps(), &hi, &lo);
    const __m512 phi = _mm512_mul_ps(SET1(0.3989422804014327f), exp_hl16(hi, lo));
    __m512 cdf = _mm512_mul_ps(y, recip16(v));
    const __mmask16 small = _mm512_cmp_ps_mask(a, SET1(1e-3f), _CMP_LT_OQ);
    cdf = _mm512_mask_mov_ps(cdf, small, _mm512_fmadd_ps(SET1(0.3989422804014327f), v, SET1(0.5f)));
    return _mm512_mul_ps(dy, _mm512_fmadd_ps(v, phi, cdf));
}

__attribute__((target("arch=x86-64-v4"))) static void gelu_bwd_avx512(int64_t n, const float *x, const float *y,
                                                                      const float *dy, float *dx)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dx + i, gelu_bwd16(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), _mm512_loadu_ps(dy + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(dx + i, m,
                              gelu_bwd16(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i),
                                         _mm512_maskz_loadu_ps(m, dy + i)));
    }
}
#endif

void cpu_gelu_forward(int64_t n, const float *x, float *y)
{
#if CPU_MULTIVERSION
    if (cpu_isa_level_current >= 4) {
        gelu_fwd_avx512(n, x, y);
        return;
    }
#endif
    gelu_fwd_portable(n, x, y);
}

void cpu_gelu_backward_from_y(int64_t n, const float *x, const float *y, const float *dy, float *dx)
{
#if CPU_MULTIVERSION
    if (cpu_isa_level_current >= 4) {
        gelu_bwd_avx512(n, x, y, dy, dx);
        return;
    }
#endif
    gelu_bwd_portable(n, x, y, dy, dx);
}
