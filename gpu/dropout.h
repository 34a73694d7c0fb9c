/* One element of dropout (host and device), literally as the CPU backend
 * computes it so that both give the same bits: keep = u >= p, y = (x * keep)
 * / (1 - p); p = 1 drops everything (y = x * 0). */
#ifndef GPU_DROPOUT_H
#define GPU_DROPOUT_H

#include "gpu/hd.h"

GPU_HD float gpu_dropout_elem(float x, float u, float p)
{
    if (p >= 1.0f)
        return x * 0.0f;
    const float keep = u >= p ? 1.0f : 0.0f;
    return (x * keep) / (1.0f - p);
}

#endif
