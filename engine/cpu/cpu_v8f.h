/* Private to the vectorised convolution files (cpu_conv_direct.c,
 * cpu_conv_pix.c): an 8-float vector as a GCC vector extension, and its
 * unaligned load, store and lane sum.
 *
 * Include it after the file's `#pragma GCC optimize`, so that these helpers
 * are compiled with the same options as the kernels they are inlined into.
 * They are always inlined: no vector crosses a call, which is why GCC's
 * note on the vector ABI (-Wpsabi) is turned off. */
#ifndef ENG_CPU_V8F_H
#define ENG_CPU_V8F_H

#include <string.h>

#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v8f __attribute__((vector_size(32)));

#define AI static inline __attribute__((always_inline))

AI v8f ld8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

AI void st8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

/* The lanes summed in lane order (a fixed order: deterministic results). */
AI float hsum8(v8f v)
{
    float s = 0.0f;
    for (int i = 0; i < 8; i++)
        s += v[i];
    return s;
}

#endif
