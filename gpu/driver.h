/* Whether an NVIDIA driver is installed, asked without CUDA: the executable
 * asks before it loads the CUDA module (gpu/module.h), the module when it
 * classifies a failing cudaGetDeviceCount (gpu/cuda_state.c). */
#ifndef GPU_DRIVER_H
#define GPU_DRIVER_H

#include <stdbool.h>

/* Its kernel module is loaded, or its user-space library libcuda.so.1 can
 * be loaded. */
bool gpu_cuda_driver_installed(void);

#endif
