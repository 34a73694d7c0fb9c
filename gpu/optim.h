/* One element of the optimiser updates (host and device), in the operation
 * order of torch.optim's single-tensor path and of the CPU backend
 * (engine/cpu/cpu_optim.c), with the step's scalars prepared on the host in
 * double and rounded once (gpu_adam_scalars/gpu_sgd_scalars). Multiplies and
 * adds are kept unfused, so an update rounds as on the CPU. */
#ifndef GPU_OPTIM_H
#define GPU_OPTIM_H

#include <math.h>

#include "gpu/hd.h"

typedef struct gpu_adam_k {
    float b1, b2, one_b1, one_b2, eps, wd;
    float decay;     /* 1 - lr * wd (AdamW) */
    float step_size; /* lr / (1 - beta1^t) */
    float bc2_sqrt;  /* sqrt(1 - beta2^t) */
    int l2;          /* Adam: g += wd * p */
    int decoupled;   /* AdamW: p *= decay */
} gpu_adam_k;

typedef struct gpu_sgd_k {
    float lr, momentum, weight_decay;
    int nesterov, first;
} gpu_sgd_k;

GPU_HD void gpu_adam_elem(const gpu_adam_k *k, float *p, float g, float *m, float *v)
{
    float pi = *p;
    if (k->l2)
        g = GPU_FADD(g, GPU_FMUL(pi, k->wd));
    if (k->decoupled)
        pi = GPU_FMUL(pi, k->decay);
    const float mi = GPU_FADD(GPU_FMUL(*m, k->b1), GPU_FMUL(g, k->one_b1));
    const float vi = GPU_FADD(GPU_FMUL(*v, k->b2), GPU_FMUL(k->one_b2, GPU_FMUL(g, g)));
    const float denom = GPU_FADD(sqrtf(vi) / k->bc2_sqrt, k->eps);
    *m = mi;
    *v = vi;
    *p = GPU_FADD(pi, GPU_FMUL(-k->step_size, mi / denom));
}

/* buf may be NULL when momentum is 0 (then it is not touched) */
GPU_HD void gpu_sgd_elem(const gpu_sgd_k *k, float *p, float g, float *buf)
{
    const float pi = *p;
    const float d = k->weight_decay != 0.0f ? GPU_FADD(g, GPU_FMUL(pi, k->weight_decay)) : g;
    float step = d;
    if (k->momentum != 0.0f && buf) {
        const float bi = k->first ? d : GPU_FADD(GPU_FMUL(*buf, k->momentum), d);
        *buf = bi;
        step = k->nesterov ? GPU_FADD(d, GPU_FMUL(bi, k->momentum)) : bi;
    }
    *p = GPU_FADD(pi, GPU_FMUL(-k->lr, step));
}

#endif
