/* The CUDA backend's state (eng_backend.impl), shared by the launchers. */
#ifndef GPU_CTX_H
#define GPU_CTX_H

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "gpu/conv_plan.h"
#include "gpu/graph.h"
#include "gpu/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "engine/backend.h"
#include "engine/error.h"

/* Device-resident step scalars read by optimiser kernels captured in a graph. */
typedef struct gpu_dyn {
    gpu_adam_k adam;
    gpu_sgd_k sgd;
} gpu_dyn;

typedef struct gpu_ctx {
    int device;
    eng_precision prec;
    int sm_count;
    char device_name[256];
    cudaStream_t stream;
    cublasHandle_t cublas;
    void *cublas_ws;
    size_t cublas_ws_bytes;
    cublasComputeType_t gemm_compute;
    cudnnHandle_t cudnn;
    /* scratch for two-stage reductions: partial sums and per-channel results */
    double *scratch;
    size_t scratch_doubles;
    gpu_dyn *dyn;
    gpu_conv_plans conv;
    gpu_graph_state graph;
} gpu_ctx;

#ifdef __cplusplus
}
#endif

#endif
