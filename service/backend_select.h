/* Opens the backend a run asked for: cpu, cuda, cuda:N or auto. */
#ifndef SVC_BACKEND_SELECT_H
#define SVC_BACKEND_SELECT_H

#include <stddef.h>

#include "engine/backend.h"

/* device: "auto" (a GPU when this build has CUDA and one is visible, else
 * the CPU), "cpu", "cuda" (device 0) or "cuda:N". threads <= 0: the CPU
 * backend uses $EPOCHD_THREADS, else every online core. On failure a message
 * is in err and a negative ENG_E* code is returned. */
int svc_backend_open(const char *device, eng_precision prec, int threads, eng_backend **out, char *err,
                     size_t errlen);

/* CUDA devices visible to this process (0 without CUDA support). */
int svc_cuda_device_count(void);

#endif
