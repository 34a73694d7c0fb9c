/* The CUDA module's one exported symbol (gpu/module.h): the table through
 * which the executable reaches the backend. */
#include "epochd_config.h"
#include "gpu/gpu.h"
#include "gpu/module.h"
#include "gpu/module_abi.h"

const gpu_module_api *gpu_module_entry(void)
{
    static const gpu_module_api api = {
        .abi = GPU_MODULE_ABI,
        .version = EPOCHD_VERSION,
        .abi_hash = GPU_MODULE_ABI_HASH,
        .backend_new = gpu_backend_new,
        .device_list = gpu_device_list,
    };
    return &api;
}
