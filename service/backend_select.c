/* Backend selection: the only code above engine/ that knows CUDA may exist. */
#include "service/backend_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "epochd_config.h"
#include "engine/error.h"
#include "gpu/module.h"
#include "service/error.h"

int svc_cuda_device_count(void)
{
    int count = 0;
    if (gpu_module_device_list(NULL, 0, &count) < 0)
        return 0;
    return count;
}

static int default_threads(void)
{
    const char *env = getenv("EPOCHD_THREADS");
    if (env && *env) {
        int n = atoi(env);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int svc_backend_open(const char *device, eng_precision prec, int threads, eng_backend **out)
{
    *out = NULL;
    if (!device || !*device)
        device = "auto";
    bool cuda = false;
    int ordinal = 0;
    if (!strcmp(device, "auto")) {
        cuda = svc_cuda_device_count() > 0;
    } else if (!strcmp(device, "cuda")) {
        cuda = true;
    } else if (!strncmp(device, "cuda:", 5)) {
        char *end = NULL;
        long n = strtol(device + 5, &end, 10);
        if (!device[5] || *end || n < 0) {
            return svc_error(SVC_EINVAL, "bad device '%s' (expected auto, cpu, cuda or cuda:N)", device);
        }
        cuda = true;
        ordinal = (int)n;
    } else if (strcmp(device, "cpu")) {
        return svc_error(SVC_EINVAL, "bad device '%s' (expected auto, cpu, cuda or cuda:N)", device);
    }
    if (cuda) {
#if EPOCHD_HAVE_CUDA
        int count = 0;
        int rc = gpu_module_device_list(NULL, 0, &count);
        if (rc < 0) /* a broken driver, a missing or foreign CUDA module */
            return svc_error(svc_from_engine(rc), "cannot open %s: %s", device, eng_last_error());
        if (count == 0) {
            /* a device error of this host (a cluster's node without a working
             * GPU): another attempt, elsewhere, may succeed */
            char host[256] = "this host";
            if (gethostname(host, sizeof host) < 0)
                snprintf(host, sizeof host, "this host");
            host[sizeof host - 1] = '\0';
            return svc_error(SVC_EINTERNAL, "cannot open %s: no CUDA device on %s", device, host);
        }
        rc = gpu_module_backend_new(ordinal, prec, out);
        if (rc < 0)
            return svc_error(svc_from_engine(rc), "cannot open %s: %s", device, eng_last_error());
        return 0;
#else
        (void)ordinal;
        return svc_error(SVC_EINVAL, "device %s: this epochd was built without CUDA", device);
#endif
    }
    /* fp32 or bf16; tf32 is refused with its reason */
    int rc = eng_cpu_backend_open(threads > 0 ? threads : default_threads(), prec, out);
    if (rc < 0)
        return svc_error(svc_from_engine(rc), "cannot open the CPU backend: %s", eng_last_error());
    return 0;
}
