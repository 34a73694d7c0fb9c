// The per-element and per-thread code of the CUDA kernels, compiled by nvcc
// as host code and run over whole (emulated) launches on the CPU, so that
// test_gpu_host.c can check their index arithmetic without a GPU.
#include <stdlib.h>

#include "gpu/act.h"
#include "gpu/chanred.cuh"
#include "gpu/dropout.h"
#include "gpu/gather.h"
#include "gpu/optim.h"
#include "gpu/patchify.h"
#include "gpu/philox.h"
#include "gpu/pool.h"
#include "tests/gpu/host_kernels.h"

extern "C" void hk_philox(uint64_t key, uint64_t counter, uint32_t out[4])
{
    gpu_u32x4 r = gpu_philox(key, counter);
    for (int l = 0; l < 4; l++)
        out[l] = r.v[l];
}

extern "C" float hk_philox_uniform(uint64_t key, uint64_t counter0, uint64_t i)
{
    return gpu_philox_uniform(key, counter0, i);
}

// The dropout kernel's loop body, over all groups of four.
extern "C" void hk_dropout(int64_t n, float p, uint64_t key, uint64_t counter, const float *x, float *y)
{
    for (int64_t q = 0; q < (n + 3) / 4; q++) {
        const gpu_u32x4 r = gpu_philox(key, counter + (uint64_t)q);
        for (int l = 0; l < 4; l++) {
            const int64_t i = 4 * q + l;
            if (i < n)
                y[i] = gpu_dropout_elem(x[i], gpu_philox_to_uniform(r.v[l]), p);
        }
    }
}

extern "C" void hk_patchify_forward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *x, float *y)
{
    for (int64_t t = 0; t < n * c * h * w; t++)
        y[t] = x[gpu_patchify_x_index(t, c, h, w, p)];
}

extern "C" void hk_patchify_backward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *dy,
                                     float *dx)
{
    for (int64_t t = 0; t < n * c * h * w; t++)
        dx[t] = dy[gpu_patchify_y_index(t, c, h, w, p)];
}

extern "C" void hk_batch_gather(const eng_batch_desc *d, const uint8_t *images, const int32_t *all_labels,
                                const int32_t *idx, const int16_t *aug, float *x, int32_t *labels)
{
    const int64_t total = d->n * d->c * d->h * d->w;
    for (int64_t t = 0; t < total; t++) {
        x[t] = gpu_gather_value(d, images, idx, aug, t);
        if (t < d->n)
            labels[t] = all_labels[idx[t]];
    }
}

extern "C" void hk_pool_forward(const eng_pool_desc *d, const float *x, float *y)
{
    for (int64_t t = 0; t < d->n * d->c * d->oh * d->ow; t++)
        y[t] = gpu_pool_fwd_elem(d, x, t);
}

extern "C" void hk_pool_backward(const eng_pool_desc *d, const float *x, const float *y, const float *dy, float *dx)
{
    for (int64_t t = 0; t < d->n * d->c * d->h * d->w; t++)
        dx[t] = gpu_pool_bwd_elem(d, x, y, dy, t);
}

extern "C" void hk_act_forward(eng_act k, float slope, int64_t n, const float *x, float *y)
{
    for (int64_t t = 0; t < n; t++)
        y[t] = gpu_act_fwd(k, slope, x[t]);
}

extern "C" void hk_act_backward(eng_act k, float slope, int64_t n, const float *x, const float *y, const float *dy,
                                float *dx)
{
    for (int64_t t = 0; t < n; t++)
        dx[t] = gpu_act_bwd(k, slope, x ? x + t : NULL, y ? y + t : NULL, dy[t]);
}

extern "C" void hk_adam(int64_t n, float *p, const float *g, float *m, float *v, const gpu_adam_k *a)
{
    for (int64_t t = 0; t < n; t++)
        gpu_adam_elem(a, p + t, g[t], m + t, v + t);
}

extern "C" void hk_sgd(int64_t n, float *p, const float *g, float *buf, const gpu_sgd_k *a)
{
    for (int64_t t = 0; t < n; t++)
        gpu_sgd_elem(a, p + t, g[t], buf ? buf + t : NULL);
}

// Adds x[idx] and 1 (a visit count) per element, and records the visits.
struct hk_visit {
    const double *x;
    int *visits;
    __host__ __device__ void operator()(int64_t, int64_t, int64_t, int64_t idx, double &a0, double &a1) const
    {
        a0 += x[idx];
        a1 += 1.0;
#ifndef __CUDA_ARCH__
        visits[idx]++;
#endif
    }
};

// Replays every thread of the partial kernel chosen by gpu_chan_plan_make,
// then the finalize loop, exactly as gpu_chan_reduce would launch them.
extern "C" int hk_chan_reduce(int64_t outer, int64_t n, int64_t inner, int sm_count, int64_t capacity,
                              const double *x, int *visits, double *sum, double *count, gpu_chan_plan *plan_out)
{
    gpu_chan_plan p;
    if (gpu_chan_plan_make(&p, outer, n, inner, sm_count, capacity) < 0)
        return -1;
    *plan_out = p;
    const int64_t nparts = p.cols ? n * inner * p.splits : n * p.splits;
    if (nparts > capacity)
        return -2;
    double *part0 = (double *)calloc((size_t)nparts, sizeof(double));
    double *part1 = (double *)calloc((size_t)nparts, sizeof(double));
    if (!part0 || !part1) {
        free(part0);
        free(part1);
        return -3;
    }
    const hk_visit f = {x, visits};
    for (int64_t bx = 0; bx < p.grid_x; bx++)
        for (int64_t s = 0; s < p.grid_y; s++) {
            if (!p.cols) {
                double b0 = 0.0, b1 = 0.0;
                for (int64_t tx = 0; tx < GPU_THREADS; tx++) {
                    double a0 = 0.0, a1 = 0.0;
                    gpu_chan_strided_thread(f, outer, n, inner, p.splits, bx, s, tx, GPU_THREADS, a0, a1);
                    b0 += a0;
                    b1 += a1;
                }
                part0[bx * p.splits + s] = b0;
                part1[bx * p.splits + s] = b1;
            } else {
                for (int64_t tx = 0; tx < 32; tx++) {
                    const int64_t c = bx * 32 + tx;
                    double b0 = 0.0, b1 = 0.0;
                    for (int64_t ty = 0; ty < 8; ty++) {
                        double a0 = 0.0, a1 = 0.0;
                        gpu_chan_cols_thread(f, outer, n, inner, p.splits, bx, s, tx, ty, 8, a0, a1);
                        b0 += a0;
                        b1 += a1;
                    }
                    if (c < n * inner) {
                        part0[c * p.splits + s] = b0;
                        part1[c * p.splits + s] = b1;
                    }
                }
            }
        }
    for (int64_t j = 0; j < n; j++) {
        double a0 = 0.0, a1 = 0.0;
        for (int64_t q = 0; q < p.per_chan; q++) {
            a0 += part0[j * p.per_chan + q];
            a1 += part1[j * p.per_chan + q];
        }
        sum[j] = a0;
        count[j] = a1;
    }
    free(part0);
    free(part1);
    return 0;
}
