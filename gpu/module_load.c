/* The executable's side of the CUDA module (gpu/module.h): finds
 * epochd-cuda.so, loads it once, and checks that it is of this build. No
 * CUDA header here: this is linked into every build. */
#include "gpu/module.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/error.h"
#include "epochd_config.h"
#include "gpu/driver.h"
#include "gpu/module_abi.h"

#if EPOCHD_HAVE_CUDA

#define MODULE_NAME "epochd-cuda.so"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const gpu_module_api *loaded;
static int load_rc;
static char load_msg[PATH_MAX + 512]; /* a failed load's message, given to every caller */
static char module_path[PATH_MAX];

/* Sets module_path to the first candidate that exists, or to the one beside
 * the executable when none does (for the message). */
static void find_module(void)
{
    const char *env = getenv("EPOCHD_CUDA_MODULE");
    if (env && *env) {
        if ((size_t)snprintf(module_path, sizeof module_path, "%s", env) >= sizeof module_path)
            module_path[0] = '\0';
        return;
    }
    char dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0)
        return; /* no /proc: nowhere to look but $EPOCHD_CUDA_MODULE */
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    /* the build tree: build/epochd and build/epochd-cuda.so */
    if ((size_t)snprintf(module_path, sizeof module_path, "%s/%s", dir, MODULE_NAME) >= sizeof module_path)
        module_path[0] = '\0';
    if (module_path[0] && access(module_path, F_OK) == 0)
        return;
    /* an install: PREFIX/bin/epochd and PREFIX/lib/epochd/epochd-cuda.so */
    char installed[PATH_MAX];
    if ((size_t)snprintf(installed, sizeof installed, "%s/../lib/epochd/%s", dir, MODULE_NAME) < sizeof installed &&
        access(installed, F_OK) == 0)
        memcpy(module_path, installed, sizeof installed);
}

static void load(void)
{
    find_module();
    if (!module_path[0] || access(module_path, F_OK) < 0) {
        load_rc = ENG_EDEVICE;
        snprintf(load_msg, sizeof load_msg,
                 "the CUDA backend is not installed: no %s (set EPOCHD_CUDA_MODULE to its path, or install it"
                 " beside the epochd executable or in ../lib/epochd/)",
                 module_path[0] ? module_path : MODULE_NAME " (no path to look at: /proc/self/exe unreadable)");
        return;
    }
    /* RTLD_NOW: a missing cuBLAS or cuDNN is an error here, with its name,
     * not a crash at the first call into it */
    void *h = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        load_rc = ENG_EDEVICE;
        snprintf(load_msg, sizeof load_msg, "cannot load the CUDA backend: %s", dlerror());
        return;
    }
    const gpu_module_api *(*entry)(void);
    void *sym = dlsym(h, GPU_MODULE_ENTRY);
    memcpy(&entry, &sym, sizeof entry); /* ISO C has no cast between object and function pointers */
    const gpu_module_api *api = sym ? entry() : NULL;
    /* the ABI first: another ABI's table may not have the later fields */
    const bool same_abi = api && api->abi == GPU_MODULE_ABI;
    const bool same_build = same_abi && api->version && !strcmp(api->version, EPOCHD_VERSION) && api->abi_hash &&
                            !strcmp(api->abi_hash, GPU_MODULE_ABI_HASH);
    if (!same_build) {
        load_rc = ENG_EDEVICE;
        if (!api)
            snprintf(load_msg, sizeof load_msg, "%s is not an epochd CUDA module (no %s)", module_path,
                     GPU_MODULE_ENTRY);
        else
            snprintf(load_msg, sizeof load_msg,
                     "%s is the CUDA module of another epochd build (module ABI %u, version %s, headers %s;"
                     " this epochd: ABI %d, version %s, headers %s)",
                     module_path, (unsigned)api->abi, api->version ? api->version : "?",
                     same_abi && api->abi_hash ? api->abi_hash : "?", GPU_MODULE_ABI, EPOCHD_VERSION,
                     GPU_MODULE_ABI_HASH);
        dlclose(h);
        return;
    }
    loaded = api; /* never closed: the backend's code and CUDA's run until the process exits */
}

int gpu_module_load(const gpu_module_api **out)
{
    *out = NULL;
    pthread_once(&load_once, load);
    if (!loaded)
        return eng_error(load_rc, "%s", load_msg);
    *out = loaded;
    return 0;
}

#else /* a build without CUDA */

int gpu_module_load(const gpu_module_api **out)
{
    *out = NULL;
    return eng_error(ENG_ENOTSUP, "this epochd was built without CUDA");
}

#endif

int gpu_module_device_list(gpu_device_info *out, int max, int *count)
{
    *count = 0;
    /* no driver, nothing CUDA could use: the list is empty without loading
     * the module (the service asks at every start, in a child) */
    if (!EPOCHD_HAVE_CUDA || !gpu_cuda_driver_installed())
        return 0;
    const gpu_module_api *api;
    int rc = gpu_module_load(&api);
    if (rc < 0)
        return rc;
    return api->device_list(out, max, count);
}

int gpu_module_backend_new(int device, eng_precision prec, eng_backend **out)
{
    *out = NULL;
    const gpu_module_api *api;
    int rc = gpu_module_load(&api);
    if (rc < 0)
        return rc;
    return api->backend_new(device, prec, out);
}
