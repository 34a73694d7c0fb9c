/* A CUDA module of another epochd build (test_gpu_module.py): the right
 * entry, and a newer ABI - or, built with -DOTHER_HEADERS, the same ABI
 * and version but other headers (another commit, a local edit). epochd
 * must refuse it, not call through its table. */
#include <stddef.h>

#include "epochd_config.h"
#include "gpu/module.h"

const gpu_module_api *gpu_module_entry(void)
{
    static const gpu_module_api api = {
#ifdef OTHER_HEADERS
        .abi = GPU_MODULE_ABI,
        .version = EPOCHD_VERSION,
        .abi_hash = "0000000000000000",
#else
        .abi = GPU_MODULE_ABI + 1,
        .version = "0.0.0-other",
#endif
        .backend_new = NULL,
        .device_list = NULL,
    };
    return &api;
}
