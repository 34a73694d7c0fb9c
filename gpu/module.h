/* The CUDA backend as a module of its own, loaded on first use.
 *
 * cuBLASLt's static constructors alone take about 0.7 s of CPU time in every
 * process that links it, GPU or not. So the CUDA backend (gpu/ with cuBLAS,
 * cuDNN and the CUDA runtime) is built into epochd-cuda.so, and the epochd
 * executable loads it only when a run asks for a GPU, or when a device list
 * is asked for on a machine with an NVIDIA driver. `epochd compare`, a CPU
 * run's worker, the service on a CPU-only host: none of them pays for it.
 *
 * The module's code reports errors through the executable's eng_error and
 * eng_last_error (gpu/module.dynlist exports exactly those), so a message set
 * inside the module is the one the executable's callers read.
 *
 * Where the module is looked for, first match wins:
 *   $EPOCHD_CUDA_MODULE                       (a path; tests and odd installs)
 *   <the executable's folder>/epochd-cuda.so  (the build tree)
 *   <the executable's folder>/../lib/epochd/epochd-cuda.so  (an install)
 *
 * Only builds with CUDA (EPOCHD_HAVE_CUDA = 1) have the module; without it
 * these functions still exist and report that the build has no CUDA. */
#ifndef GPU_MODULE_H
#define GPU_MODULE_H

#include <stdint.h>

#include "engine/backend.h"
#include "gpu/device_info.h"

/* Bumped whenever gpu_module_api's layout changes; a module of another
 * build (another ABI, version or header hash) is refused rather than
 * trusted. The hash (GPU_MODULE_ABI_HASH, gpu/module_abi.h, generated) is
 * of the headers both sides compile against - engine/backend.h,
 * engine/error.h, this file, gpu/device_info.h - so that two builds of one
 * version whose tables differ are told apart too. */
#define GPU_MODULE_ABI 2
#define GPU_MODULE_ENTRY "gpu_module_entry"

typedef struct gpu_module_api {
    uint32_t abi;         /* GPU_MODULE_ABI of the module's build; checked first */
    const char *version;  /* EPOCHD_VERSION of the module's build */
    const char *abi_hash; /* GPU_MODULE_ABI_HASH of the module's build */
    int (*backend_new)(int device, eng_precision prec, eng_backend **out);
    int (*device_list)(gpu_device_info *out, int max, int *count);
} gpu_module_api;

/* The module's one exported symbol (gpu/module_entry.c). */
const gpu_module_api *gpu_module_entry(void);

/* ---- the executable's side (gpu/module_load.c) ---- */

/* Loads the module once per process (later calls return the first call's
 * result): 0 and *out, or ENG_ENOTSUP in a build without CUDA, ENG_EDEVICE
 * when no module is found or the one found cannot be loaded (a missing
 * cuBLAS/cuDNN, another build's module) - a fault of this host, which
 * another host may not have - with the path and the reason in the message.
 * Thread-safe. */
int gpu_module_load(const gpu_module_api **out);

/* The device list, as gpu_device_list in the module: on a machine with no
 * NVIDIA driver installed the list is empty and nothing is loaded. */
int gpu_module_device_list(gpu_device_info *out, int max, int *count);

/* gpu_backend_new through the module, loading it. */
int gpu_module_backend_new(int device, eng_precision prec, eng_backend **out);

#endif
