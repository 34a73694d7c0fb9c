/* Float math that the compiler can vectorise (libm's expf/erff are scalar
 * calls): exp, the normal CDF for GELU, sigmoid and tanh.
 *
 * Written without branches, floorf or fminf, which GCC does not vectorise
 * without -ffast-math; the selects if-convert under -fno-trapping-math
 * (meson.build). Accuracy is checked against double precision in
 * tests/engine/test_cpu_ops.c. */
#ifndef ENG_CPU_MATH_H
#define ENG_CPU_MATH_H

#include <math.h>
#include <stdint.h>

#include "engine/cpu/cpu_internal.h"

/* Forced inline: a call inside a loop would stop its vectorisation. */
#define CPU_INLINE static inline __attribute__((always_inline))

/* e^(hi + lo) with lo small (|lo| < a few units), about 1 ulp: Cody-Waite
 * reduction hi + lo = n ln2 + r, |r| <= ln2/2, then Cephes' degree-6
 * polynomial for e^r; 2^n is applied as two factors so that n = 128 does not
 * overflow. Results below FLT_MIN flush to 0. Carrying lo apart lets callers
 * pass an argument that float cannot hold exactly (see cpu_normcdf). */
CPU_INLINE float cpu_expf_hl(float hi, float lo)
{
    float xc = hi > -87.33654f ? hi : -87.33654f; /* NaN becomes finite here, restored below */
    xc = xc < 88.72284f ? xc : 88.72284f;
    /* n = round((hi + lo) / ln2) by the 1.5 * 2^23 trick (rintf does not
     * vectorise); hi - n * C1 is exact since C1 has 9 significant bits */
    float n = ((xc + lo) * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    r = r + lo;
    float z = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * z + r + 1.0f;
    int32_t ni = (int32_t)n, n1 = ni / 2, n2 = ni - n1;
    union {
        uint32_t i;
        float f;
    } s1, s2;
    s1.i = (uint32_t)(n1 + 127) << 23;
    s2.i = (uint32_t)(n2 + 127) << 23;
    float e = p * s1.f * s2.f;
    e = hi < -87.33654f ? 0.0f : e;
    e = hi > 88.72284f ? INFINITY : e;
    return hi != hi ? hi : e;
}

CPU_INLINE float cpu_expf(float x) { return cpu_expf_hl(x, 0.0f); }

/* -x^2 / 2 as hi + lo: hi is exact because x's top 12 bits square exactly
 * in float; lo = -(x - xh)(x + xh) / 2 carries the rest. Rounding x^2 instead
 * would cost a relative error of about x^2 * 6e-8 in e^(-x^2/2). */
CPU_INLINE void cpu_neg_half_square(float x, float *hi, float *lo)
{
    union {
        float f;
        uint32_t i;
    } u;
    u.f = x;
    u.i &= 0xFFFFF000u;
    float xh = u.f, xl = x - xh;
    *hi = -0.5f * (xh * xh);
    *lo = -0.5f * (xl * (x + xh));
}

/* Phi(x) = P(N(0,1) <= x) = erfc(-x / sqrt 2) / 2. erfc(z) for z >= 0 by the
 * Chebyshev fit of Numerical Recipes, erfc(z) = t e^(-z^2 + P(t)) with
 * t = 1 / (1 + z/2) (fractional error < 1.2e-7 in exact arithmetic), so Phi
 * keeps its relative accuracy far into the left tail where 1 + erf(x) would
 * cancel. */
CPU_INLINE float cpu_normcdf(float x)
{
    float z = (x < 0.0f ? -x : x) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    float hi, lo;
    cpu_neg_half_square(x, &hi, &lo); /* -z^2 */
    float half_erfc = 0.5f * t * cpu_expf_hl(hi, lo + p);
    return x < 0.0f ? half_erfc : 1.0f - half_erfc;
}

/* phi(x), the standard normal density. */
CPU_INLINE float cpu_normpdf(float x)
{
    float hi, lo;
    cpu_neg_half_square(x, &hi, &lo);
    return 0.3989422804014327f * cpu_expf_hl(hi, lo);
}

/* 1 / (1 + e^-x) without overflow: e = e^-|x| <= 1. */
CPU_INLINE float cpu_sigmoidf(float x)
{
    float e = cpu_expf(x < 0.0f ? x : -x);
    float r = 1.0f / (1.0f + e);
    return x < 0.0f ? e * r : r;
}

/* tanh: Cephes' odd polynomial below 0.625, else 1 - 2 / (e^2|x| + 1) written
 * with e = e^-2|x| <= 1; the sign is restored at the end. */
CPU_INLINE float cpu_tanhf(float x)
{
    float a = x < 0.0f ? -x : x;
    float z = a * a;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * a + a;
    float e = cpu_expf(-2.0f * a);
    float big = (1.0f - e) / (1.0f + e);
    float r = a < 0.625f ? small : big;
    return x < 0.0f ? -r : r;
}

#endif
