/* How a per-channel reduction is cut into blocks: a tensor viewed as
 * (outer, n, inner) is reduced, for each channel j < n, over all (o, i) in
 * two deterministic stages (partial sums per piece, then a fixed-order sum
 * per channel). Host/device code without CUDA types so the partitioning can
 * be checked on the CPU (tests/gpu/test_gpu_host.c). */
#ifndef GPU_CHANRED_H
#define GPU_CHANRED_H

#include <stdint.h>

#include "gpu/hd.h"

/* inner >= this: one block row per channel reads (o, i) with consecutive
 * threads on consecutive i (coalesced); below it, columns of the
 * (outer, n * inner) matrix are reduced over rows by 32-wide blocks. */
#define GPU_CHAN_STRIDED_MIN_INNER 32
#define GPU_CHAN_MAX_SPLITS 65535

typedef struct gpu_chan_plan {
    int64_t outer, n, inner;
    int cols;         /* 1: column kernel; 0: strided kernel */
    int64_t splits;   /* pieces of each channel's (or column's) range */
    int64_t per_chan; /* partial pairs per channel: splits (strided) or inner * splits (cols) */
    int64_t grid_x, grid_y;
} gpu_chan_plan;

GPU_HD int64_t gpu_cdiv64(int64_t a, int64_t b) { return (a + b - 1) / b; }

GPU_HD int64_t gpu_clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Piece s of [0, total) cut into `splits` pieces of ceil(total / splits). */
GPU_HD void gpu_split_range(int64_t total, int64_t splits, int64_t s, int64_t *begin, int64_t *end)
{
    int64_t per = gpu_cdiv64(total, splits);
    int64_t b = s * per;
    if (b > total)
        b = total;
    int64_t e = b + per;
    if (e > total)
        e = total;
    *begin = b;
    *end = e;
}

/* Chooses kernel and splits so that about 4 blocks per multiprocessor run
 * and the partials fit `capacity` pairs. -1 when even one split per channel
 * does not fit (or a size is not positive). */
GPU_HD int gpu_chan_plan_make(gpu_chan_plan *p, int64_t outer, int64_t n, int64_t inner, int sm_count,
                              int64_t capacity)
{
    if (outer < 1 || n < 1 || inner < 1)
        return -1;
    p->outer = outer;
    p->n = n;
    p->inner = inner;
    int64_t target = 4 * (int64_t)(sm_count > 0 ? sm_count : 1);
    if (inner >= GPU_CHAN_STRIDED_MIN_INNER) {
        int64_t total = outer * inner;
        int64_t s = gpu_clamp64(gpu_cdiv64(target, n), 1, gpu_cdiv64(total, 2048));
        if (s > GPU_CHAN_MAX_SPLITS)
            s = GPU_CHAN_MAX_SPLITS;
        if (n * s > capacity)
            s = capacity / n;
        if (s < 1)
            return -1;
        p->cols = 0;
        p->splits = s;
        p->per_chan = s;
        p->grid_x = n;
        p->grid_y = s;
    } else {
        int64_t ncols = n * inner;
        int64_t gx = gpu_cdiv64(ncols, 32);
        int64_t s = gpu_clamp64(gpu_cdiv64(target, gx), 1, gpu_cdiv64(outer, 64));
        if (s > GPU_CHAN_MAX_SPLITS)
            s = GPU_CHAN_MAX_SPLITS;
        if (ncols * s > capacity)
            s = capacity / ncols;
        if (s < 1)
            return -1;
        p->cols = 1;
        p->splits = s;
        p->per_chan = inner * s;
        p->grid_x = gx;
        p->grid_y = s;
    }
    return 0;
}

#endif
