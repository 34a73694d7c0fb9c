/* A CUDA module of another epochd build (test_gpu_module.py): the right
 * entry, a newer ABI. epochd must refuse it, not call through its table. */
#include <stddef.h>

#include "gpu/module.h"

const gpu_module_api *gpu_module_entry(void)
{
    static const gpu_module_api api = {
        .abi = GPU_MODULE_ABI + 1,
        .version = "0.0.0-other",
        .backend_new = NULL,
        .device_list = NULL,
    };
    return &api;
}
