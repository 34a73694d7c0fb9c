/* Activation functions and their derivatives, one element (host and
 * device). GELU is the exact erf form. Backward uses x where the derivative
 * needs the input and y where the output gives it directly; for ReLU and
 * leaky ReLU either works (the sign of y is the sign of x for slope > 0), so
 * a caller may pass only one of them. */
#ifndef GPU_ACT_H
#define GPU_ACT_H

#include <math.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "engine/backend.h"
#ifdef __cplusplus
}
#endif
#include "gpu/hd.h"

GPU_HD float gpu_act_fwd(eng_act k, float slope, float x)
{
    switch (k) {
    case ENG_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case ENG_ACT_LEAKY_RELU: return x > 0.0f ? x : slope * x;
    case ENG_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case ENG_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case ENG_ACT_TANH: return tanhf(x);
    case ENG_ACT_NONE:
    default: return x;
    }
}

/* xp / yp: the input / output element, or NULL when not given. */
GPU_HD float gpu_act_bwd(eng_act k, float slope, const float *xp, const float *yp, float dy)
{
    switch (k) {
    case ENG_ACT_RELU: return (xp ? *xp > 0.0f : *yp > 0.0f) ? dy : 0.0f;
    case ENG_ACT_LEAKY_RELU: return (xp ? *xp > 0.0f : *yp > 0.0f) ? dy : slope * dy;
    case ENG_ACT_GELU: {
        const float x = *xp;
        const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
        const float pdf = expf(-0.5f * x * x) * 0.39894228040143268f;
        return dy * (cdf + x * pdf);
    }
    case ENG_ACT_SIGMOID: {
        const float y = yp ? *yp : 1.0f / (1.0f + expf(-*xp));
        return dy * y * (1.0f - y);
    }
    case ENG_ACT_TANH: {
        const float y = yp ? *yp : tanhf(*xp);
        return dy * (1.0f - y * y);
    }
    case ENG_ACT_NONE:
    default: return dy;
    }
}

/* Whether backward of k can run with the given pointers. */
GPU_HD int gpu_act_bwd_ok(eng_act k, const void *x, const void *y)
{
    if (k == ENG_ACT_GELU)
        return x != 0;
    if (k == ENG_ACT_NONE)
        return 1;
    return x != 0 || y != 0;
}

#endif
