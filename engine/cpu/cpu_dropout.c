/* Dropout with a counter-based mask: element i is kept when
 * eng_philox_uniform(key, counter, i) >= p, and y = (x * keep) / (1 - p) in
 * float, literally, so that the CUDA backend computes the same bits. The
 * mask depends only on (key, counter, i): calling again with (dy, dx) is the
 * backward pass, and any split over threads gives the same result. p = 1
 * drops everything (y = x * 0). */
#include "engine/cpu/cpu_internal.h"
#include "engine/rng.h"

#define DROPOUT_CHUNK ((int64_t)1 << 14) /* a multiple of 4: one Philox block per 4 elements */

/* Elements [lo, hi) of the stream. One Philox call yields the uniforms of 4
 * consecutive elements 4q .. 4q+3, exactly as eng_philox_uniform computes
 * them one at a time (counter0 + i / 4, lane i % 4, top 24 bits). */
static void dropout_range(int64_t lo, int64_t hi, float p, float q, uint64_t key, uint64_t counter, const float *x,
                          float *y)
{
    for (int64_t base = lo - lo % 4; base < hi; base += 4) {
        uint32_t r[4];
        eng_philox(key, counter + (uint64_t)base / 4, r);
        for (int lane = 0; lane < 4; lane++) {
            const int64_t i = base + lane;
            if (i < lo || i >= hi)
                continue;
            const float u = (float)(r[lane] >> 8) * (1.0f / 16777216.0f);
            const float keep = u >= p ? 1.0f : 0.0f;
            y[i] = (x[i] * keep) / q;
        }
    }
}

int cpu_dropout(eng_backend *b, int64_t n, float p, uint64_t key, uint64_t counter, const float *x, float *y)
{
    CPU_CHECK(n >= 0, "cpu dropout: n = %lld is negative", (long long)n);
    CPU_CHECK(p >= 0.0f && p <= 1.0f, "cpu dropout: p = %g is not in [0, 1]", (double)p);
    if (n == 0)
        return 0;
    CPU_NONNULL("dropout", x);
    CPU_NONNULL("dropout", y);
    if (p >= 1.0f) {
#pragma omp parallel for num_threads(cpu_team(b, n)) schedule(static)
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * 0.0f;
        return 0;
    }
    const float q = 1.0f - p;
    const int64_t nchunks = (n + DROPOUT_CHUNK - 1) / DROPOUT_CHUNK;
#pragma omp parallel for num_threads(cpu_team(b, 8 * n)) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t lo = k * DROPOUT_CHUNK, hi = lo + DROPOUT_CHUNK < n ? lo + DROPOUT_CHUNK : n;
        dropout_range(lo, hi, p, q, key, counter, x, y);
    }
    return 0;
}
