/* Philox 4x32-10 and a small sequential stream on top of it. */
#include "engine/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void eng_philox(uint64_t key, uint64_t counter, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

float eng_philox_uniform(uint64_t key, uint64_t counter0, uint64_t i)
{
    uint32_t r[4];
    eng_philox(key, counter0 + i / 4, r);
    return (float)(r[i % 4] >> 8) * (1.0f / 16777216.0f);
}

void eng_rng_init(eng_rng *r, uint64_t key, uint64_t counter)
{
    r->key = key;
    r->counter = counter;
    r->avail = 0;
}

uint32_t eng_rng_u32(eng_rng *r)
{
    if (r->avail == 0) {
        eng_philox(r->key, r->counter++, r->buf);
        r->avail = 4;
    }
    return r->buf[4 - r->avail--];
}

uint64_t eng_rng_below(eng_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    for (;;) {
        uint64_t x = ((uint64_t)eng_rng_u32(r) << 32) | eng_rng_u32(r);
        if (x < limit)
            return x % n;
    }
}

float eng_rng_uniform(eng_rng *r) { return (float)(eng_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

double eng_rng_normal(eng_rng *r)
{
    double u1 = ((double)eng_rng_u32(r) + 1.0) / 4294967297.0; /* (0, 1) */
    double u2 = (double)eng_rng_u32(r) / 4294967296.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* splitmix64 finaliser: decorrelates nearby seeds/indices. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t eng_rng_key(uint64_t seed, uint64_t purpose, uint64_t index)
{
    return mix64(mix64(mix64(seed) ^ purpose) ^ index);
}
