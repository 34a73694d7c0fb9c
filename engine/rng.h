/* Deterministic random numbers: Philox 4x32-10 (Salmon et al., SC'11), the
 * counter-based generator cuRAND also implements. A value depends only on
 * (key, counter), so the CPU and a GPU kernel draw identical numbers for a
 * dropout mask, and an epoch's data order depends only on (seed, epoch):
 * resuming from a checkpoint replays exactly what an uninterrupted run does. */
#ifndef ENG_RNG_H
#define ENG_RNG_H

#include <stdint.h>

/* Four 32-bit outputs for one (key, counter). */
void eng_philox(uint64_t key, uint64_t counter, uint32_t out[4]);

/* One uniform float in [0, 1) from element `i` of stream (key, counter0):
 * counter = counter0 + i / 4, lane i % 4, 24-bit mantissa. */
float eng_philox_uniform(uint64_t key, uint64_t counter0, uint64_t i);

/* A sequential stream over Philox for host-side draws (init, shuffles). */
typedef struct eng_rng {
    uint64_t key;
    uint64_t counter;
    uint32_t buf[4];
    int avail;
} eng_rng;

void eng_rng_init(eng_rng *r, uint64_t key, uint64_t counter);
uint32_t eng_rng_u32(eng_rng *r);
uint64_t eng_rng_below(eng_rng *r, uint64_t n); /* uniform in [0, n), unbiased */
float eng_rng_uniform(eng_rng *r);              /* [0, 1) */
double eng_rng_normal(eng_rng *r);              /* standard normal (Box-Muller) */

/* Derives independent stream keys: key of (seed, purpose, index). */
uint64_t eng_rng_key(uint64_t seed, uint64_t purpose, uint64_t index);

enum { ENG_RNG_INIT = 1, ENG_RNG_SHUFFLE = 2, ENG_RNG_AUGMENT = 3, ENG_RNG_DROPOUT = 4, ENG_RNG_SYNTHETIC = 5 };

#endif
