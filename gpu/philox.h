/* Philox 4x32-10 for kernels: the same arithmetic as engine/rng.c
 * (eng_philox, eng_philox_uniform), written once for host and device so that
 * a dropout mask drawn on the GPU equals the CPU's bit for bit. The 32x32->64
 * multiply is spelt as in rng.c; nvcc turns it into a wide multiply. */
#ifndef GPU_PHILOX_H
#define GPU_PHILOX_H

#include <stdint.h>

#include "gpu/hd.h"

typedef struct gpu_u32x4 {
    uint32_t v[4];
} gpu_u32x4;

GPU_HD gpu_u32x4 gpu_philox(uint64_t key, uint64_t counter)
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    gpu_u32x4 r = {{c0, c1, c2, c3}};
    return r;
}

/* The 24-bit uniform in [0, 1) of one 32-bit Philox output. */
GPU_HD float gpu_philox_to_uniform(uint32_t r) { return (float)(r >> 8) * (1.0f / 16777216.0f); }

/* Element i of stream (key, counter0): counter0 + i / 4, lane i % 4. */
GPU_HD float gpu_philox_uniform(uint64_t key, uint64_t counter0, uint64_t i)
{
    gpu_u32x4 r = gpu_philox(key, counter0 + i / 4);
    return gpu_philox_to_uniform(r.v[i % 4]);
}

#endif
