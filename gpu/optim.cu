// Optimiser steps over the flat parameter buffer: one fused Adam/AdamW
// kernel and one SGD kernel. Scalars come by value, or - for a step captured
// in a CUDA graph - from the backend's device-side block (gpu_dyn), which
// gpu_dyn_set rewrites before each replay.
#include <math.h>

#include "gpu/common.cuh"
#include "gpu/optim.h"

__global__ void gpu_adam_kernel(int64_t n, float *p, const float *grad, float *m, float *v, gpu_adam_k byval,
                                const gpu_adam_k *dyn)
{
    const gpu_adam_k a = dyn ? *dyn : byval;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x)
        gpu_adam_elem(&a, p + t, grad[t], m + t, v + t);
}

__global__ void gpu_sgd_kernel(int64_t n, float *p, const float *grad, float *buf, gpu_sgd_k byval,
                               const gpu_sgd_k *dyn)
{
    const gpu_sgd_k a = dyn ? *dyn : byval;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x)
        gpu_sgd_elem(&a, p + t, grad[t], buf ? buf + t : NULL);
}

// Writes the step scalars into the device block; the values travel as
// kernel parameters, so a later call cannot overwrite them before this runs.
__global__ void gpu_dyn_set_kernel(gpu_dyn *dst, gpu_dyn val, unsigned which)
{
    if (which & GPU_DYN_ADAM)
        dst->adam = val.adam;
    if (which & GPU_DYN_SGD)
        dst->sgd = val.sgd;
}

extern "C" gpu_adam_k gpu_adam_scalars(const eng_adam_args *a)
{
    // in double as Python computes them, then rounded once (as the CPU backend)
    const double t = (double)(a->step > 0 ? a->step : 1);
    const double bc1 = 1.0 - pow((double)a->beta1, t), bc2 = 1.0 - pow((double)a->beta2, t);
    gpu_adam_k k;
    k.b1 = a->beta1;
    k.b2 = a->beta2;
    k.one_b1 = (float)(1.0 - (double)a->beta1);
    k.one_b2 = (float)(1.0 - (double)a->beta2);
    k.eps = a->eps;
    k.wd = a->weight_decay;
    k.decay = (float)(1.0 - (double)a->lr * (double)a->weight_decay);
    k.step_size = (float)((double)a->lr / bc1);
    k.bc2_sqrt = (float)sqrt(bc2);
    k.l2 = !a->decoupled && a->weight_decay != 0.0f;
    k.decoupled = a->decoupled && a->weight_decay != 0.0f;
    return k;
}

extern "C" gpu_sgd_k gpu_sgd_scalars(const eng_sgd_args *a)
{
    gpu_sgd_k k;
    k.lr = a->lr;
    k.momentum = a->momentum;
    k.weight_decay = a->weight_decay;
    k.nesterov = a->nesterov ? 1 : 0;
    k.first = a->first ? 1 : 0;
    return k;
}

extern "C" int gpu_adam_step(gpu_ctx *g, int64_t n, float *p, const float *grad, float *m, float *v,
                             const eng_adam_args *a, bool from_dyn)
{
    if (n < 0 || !a || (n > 0 && (!p || !grad || !m || !v)) || a->step < 1 || !(a->beta1 >= 0.0f && a->beta1 < 1.0f) ||
        !(a->beta2 >= 0.0f && a->beta2 < 1.0f))
        return eng_error(ENG_EINVAL, "adam_step: bad arguments (n=%lld, step=%lld)", (long long)n,
                         a ? (long long)a->step : -1LL);
    if (n == 0)
        return 0;
    gpu_adam_kernel<<<gpu_blocks(n), GPU_THREADS, 0, g->stream>>>(n, p, grad, m, v, gpu_adam_scalars(a),
                                                                   from_dyn ? &g->dyn->adam : NULL);
    GPU_LAUNCHED(gpu_adam_kernel);
    return 0;
}

extern "C" int gpu_sgd_step(gpu_ctx *g, int64_t n, float *p, const float *grad, float *buf, const eng_sgd_args *a,
                            bool from_dyn)
{
    if (n < 0 || !a || (n > 0 && (!p || !grad || (a->momentum != 0.0f && !buf))))
        return eng_error(ENG_EINVAL, "sgd_step: bad arguments (n=%lld)", (long long)n);
    if (n == 0)
        return 0;
    gpu_sgd_kernel<<<gpu_blocks(n), GPU_THREADS, 0, g->stream>>>(n, p, grad, a->momentum != 0.0f ? buf : NULL,
                                                                  gpu_sgd_scalars(a), from_dyn ? &g->dyn->sgd : NULL);
    GPU_LAUNCHED(gpu_sgd_kernel);
    return 0;
}

extern "C" int gpu_dyn_set(gpu_ctx *g, const gpu_step_args *args, unsigned which)
{
    gpu_dyn val;
    val.adam = gpu_adam_scalars(&args->adam);
    val.sgd = gpu_sgd_scalars(&args->sgd);
    gpu_dyn_set_kernel<<<1, 1, 0, g->stream>>>(g->dyn, val, which);
    GPU_LAUNCHED(gpu_dyn_set_kernel);
    return 0;
}
