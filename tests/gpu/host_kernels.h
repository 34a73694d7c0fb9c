/* Host replays of the CUDA kernels' per-element code (host_kernels.cu). */
#ifndef TESTS_GPU_HOST_KERNELS_H
#define TESTS_GPU_HOST_KERNELS_H

#include <stdint.h>

#include "gpu/chanred.h"
#include "gpu/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/backend.h"

void hk_philox(uint64_t key, uint64_t counter, uint32_t out[4]);
float hk_philox_uniform(uint64_t key, uint64_t counter0, uint64_t i);
void hk_dropout(int64_t n, float p, uint64_t key, uint64_t counter, const float *x, float *y);
void hk_patchify_forward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *x, float *y);
void hk_patchify_backward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *dy, float *dx);
void hk_batch_gather(const eng_batch_desc *d, const uint8_t *images, const int32_t *all_labels, const int32_t *idx,
                     const int16_t *aug, float *x, int32_t *labels);
void hk_pool_forward(const eng_pool_desc *d, const float *x, float *y);
void hk_pool_backward(const eng_pool_desc *d, const float *x, const float *y, const float *dy, float *dx);
void hk_act_forward(eng_act k, float slope, int64_t n, const float *x, float *y);
void hk_act_backward(eng_act k, float slope, int64_t n, const float *x, const float *y, const float *dy, float *dx);
void hk_adam(int64_t n, float *p, const float *g, float *m, float *v, const gpu_adam_k *a);
void hk_sgd(int64_t n, float *p, const float *g, float *buf, const gpu_sgd_k *a);
/* 0, or < 0 when no plan fits; sum[j] / count[j]: channel j's total and
 * number of elements visited; visits[idx] counts visits per element. */
int hk_chan_reduce(int64_t outer, int64_t n, int64_t inner, int sm_count, int64_t capacity, const double *x,
                   int *visits, double *sum, double *count, gpu_chan_plan *plan_out);

#ifdef __cplusplus
}
#endif

#endif
