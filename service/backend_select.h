/* Opens the backend a run asked for: cpu, cuda, cuda:N or auto. */
#ifndef SVC_BACKEND_SELECT_H
#define SVC_BACKEND_SELECT_H

#include <stddef.h>

#include "engine/backend.h"

/* device: "auto" (a GPU when this build has CUDA and one is visible, else
 * the CPU), "cpu", "cuda" (device 0) or "cuda:N". threads <= 0: the CPU
 * backend uses $EPOCHD_THREADS, else every online core. 0, or SVC_EINVAL
 * (a device or precision this build or host cannot give), SVC_ENOMEM,
 * SVC_EINTERNAL (the device failed to open), with svc_last_error set. */
int svc_backend_open(const char *device, eng_precision prec, int threads, eng_backend **out);

/* CUDA devices visible to this process (0 without CUDA support). */
int svc_cuda_device_count(void);

#endif
