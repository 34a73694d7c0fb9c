/* Checked calls into CUDA, cuBLAS and cuDNN: a failing call is reported via
 * eng_error(ENG_EDEVICE, ...) with the call's text, file, line and the
 * library's own error string, and the enclosing function returns
 * ENG_EDEVICE. Nothing here exits: the caller decides what a failure means. */
#ifndef GPU_CHECK_H
#define GPU_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Formats "FILE:LINE: CALL failed: LIB error NAME (CODE): TEXT" into the
 * engine's error message and returns ENG_EDEVICE. Pure formatting, no CUDA. */
int gpu_report(const char *lib, int code, const char *name, const char *text, const char *call, const char *file,
               int line);

/* Library-specific wrappers that look up the error's name and text. */
int gpu_fail_cuda(cudaError_t e, const char *call, const char *file, int line);
int gpu_fail_cublas(cublasStatus_t s, const char *call, const char *file, int line);
int gpu_fail_cudnn(cudnnStatus_t s, const char *call, const char *file, int line);

#ifdef __cplusplus
}
#endif

#define GPU_CUDA(call)                                                                                             \
    do {                                                                                                           \
        cudaError_t gpu_e_ = (call);                                                                               \
        if (gpu_e_ != cudaSuccess)                                                                                 \
            return gpu_fail_cuda(gpu_e_, #call, __FILE__, __LINE__);                                              \
    } while (0)

#define GPU_CUBLAS(call)                                                                                           \
    do {                                                                                                           \
        cublasStatus_t gpu_s_ = (call);                                                                            \
        if (gpu_s_ != CUBLAS_STATUS_SUCCESS)                                                                       \
            return gpu_fail_cublas(gpu_s_, #call, __FILE__, __LINE__);                                            \
    } while (0)

#define GPU_CUDNN(call)                                                                                            \
    do {                                                                                                           \
        cudnnStatus_t gpu_s_ = (call);                                                                             \
        if (gpu_s_ != CUDNN_STATUS_SUCCESS)                                                                        \
            return gpu_fail_cudnn(gpu_s_, #call, __FILE__, __LINE__);                                             \
    } while (0)

/* After a kernel launch: reports launch-configuration errors (and sticky
 * errors from earlier asynchronous work) under the kernel's name. */
#define GPU_LAUNCHED(kernel) GPU_CUDA_NAMED(cudaGetLastError(), "launch of " #kernel)

#define GPU_CUDA_NAMED(call, text)                                                                                 \
    do {                                                                                                           \
        cudaError_t gpu_e_ = (call);                                                                               \
        if (gpu_e_ != cudaSuccess)                                                                                 \
            return gpu_fail_cuda(gpu_e_, text, __FILE__, __LINE__);                                               \
    } while (0)

#endif
