/* Device enumeration: name, memory and compute capability of each CUDA
 * device, for `epochd devices` (run by the service in a child process so
 * that the service itself never holds a CUDA context). */
#include <stdio.h>
#include <string.h>

#include "gpu/check.h"
#include "gpu/gpu.h"

int gpu_device_list(gpu_device_info *out, int max, int *count)
{
    *count = 0;
    int n = 0;
    int rc = gpu_cuda_device_count(&n);
    if (rc < 0)
        return rc;
    *count = n;
    for (int i = 0; i < n && i < max; i++) {
        struct cudaDeviceProp prop;
        GPU_CUDA(cudaGetDeviceProperties(&prop, i));
        gpu_device_info *d = &out[i];
        memset(d, 0, sizeof *d);
        d->ordinal = i;
        snprintf(d->name, sizeof d->name, "%s", prop.name);
        d->total_memory = prop.totalGlobalMem;
        d->cc_major = prop.major;
        d->cc_minor = prop.minor;
        d->multiprocessors = prop.multiProcessorCount;
        /* free memory needs a context; a device that refuses one (exclusive
         * mode, taken) is listed all the same, its free memory unknown */
        size_t free_b = 0, total_b = 0;
        if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
            d->free_memory = free_b;
        else
            (void)cudaGetLastError();
    }
    return 0;
}
