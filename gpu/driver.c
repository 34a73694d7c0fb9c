/* Whether an NVIDIA driver is installed (gpu/driver.h). No CUDA header: the
 * executable links this without the CUDA backend. */
#include "gpu/driver.h"

#include <dlfcn.h>
#include <unistd.h>

bool gpu_cuda_driver_installed(void)
{
    if (access("/proc/driver/nvidia/version", F_OK) == 0) /* the kernel module is loaded */
        return true;
    void *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL); /* the user-space driver (also WSL's) */
    if (!h)
        return false;
    dlclose(h);
    return true;
}
