/* Whether this machine has CUDA at all, and whether it works: "no device"
 * and "no NVIDIA driver installed" are a plain absence (the CPU is used, the
 * GPU tests skip), but a driver that is installed and fails - too old for
 * this runtime, failed initialisation, a user-space library that does not
 * match the kernel module - is an error that must be seen, never an empty
 * device list. */
#include "gpu/check.h"
#include "gpu/gpu.h"

gpu_cuda_state gpu_cuda_classify(int cuda_error, bool driver_installed)
{
    if (cuda_error == cudaSuccess)
        return GPU_CUDA_USABLE;
    if (cuda_error == cudaErrorNoDevice)
        return GPU_CUDA_ABSENT;
    /* what the runtime says both when libcuda.so.1 cannot be loaded at all
     * and when the driver it loads is older than the runtime */
    if (cuda_error == cudaErrorInsufficientDriver && !driver_installed)
        return GPU_CUDA_ABSENT;
    return GPU_CUDA_BROKEN;
}

int gpu_cuda_device_count(int *n)
{
    *n = 0;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess) {
        *n = count;
        return 0;
    }
    (void)cudaGetLastError(); /* not sticky: clear it for later calls */
    bool installed = gpu_cuda_driver_installed();
    if (gpu_cuda_classify((int)e, installed) == GPU_CUDA_ABSENT)
        return 0;
    return gpu_fail_cuda(e,
                         installed ? "cudaGetDeviceCount (an NVIDIA driver is installed, but CUDA cannot use it)"
                                   : "cudaGetDeviceCount",
                         __FILE__, __LINE__);
}
