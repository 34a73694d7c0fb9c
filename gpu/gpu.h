/* The CUDA backend's public API: creating a backend behind engine/backend.h,
 * listing devices, and capturing a fixed-shape training step as a CUDA graph.
 *
 * Everything here exists only in builds with CUDA (EPOCHD_HAVE_CUDA = 1);
 * callers outside gpu/ guard their use with that macro. */
#ifndef GPU_GPU_H
#define GPU_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* the engine headers are C and carry no guards of their own */
#endif

#include "engine/backend.h"
#include "gpu/device_info.h"
#include "gpu/driver.h"

/* Creates a backend on CUDA device `device` (an ordinal as CUDA numbers them
 * after CUDA_VISIBLE_DEVICES) computing at `prec`. The backend owns one
 * non-blocking stream, a cuBLAS handle with its own workspace, a cuDNN handle
 * and a small device scratch area; every operation is queued on that stream.
 * One backend is used from one host thread at a time, and that thread's
 * current device must stay `device` (gpu_backend_new sets it).
 * ENG_ENOTSUP when there is no CUDA device, ENG_EINVAL for a bad ordinal or
 * precision, ENG_EDEVICE when a CUDA/cuBLAS/cuDNN call fails. */
int gpu_backend_new(int device, eng_precision prec, eng_backend **out);

/* The backend's cudaStream_t (as a void *), for code that adds its own work
 * to the same stream (events, timers). */
void *gpu_backend_stream(eng_backend *b);

/* ---- devices ---- */

/* Fills up to `max` entries and sets *count to the number of devices seen
 * (which may exceed max). No driver installed or no device is not an error:
 * *count = 0 and 0 is returned. A driver that is installed but fails (too old
 * for this runtime, initialisation error, mismatched kernel module) is
 * ENG_EDEVICE with CUDA's error in the message. This initialises the CUDA
 * driver in the calling process and, to ask for free memory, a context on
 * each device, so the service runs it in a short-lived child (`epochd
 * devices --json`). */
int gpu_device_list(gpu_device_info *out, int max, int *count);

/* What cudaGetDeviceCount's error says (gpu/cuda_state.c). */
typedef enum gpu_cuda_state {
    GPU_CUDA_USABLE, /* cudaSuccess */
    GPU_CUDA_ABSENT, /* no device, or no NVIDIA driver installed: nothing to use, nothing wrong */
    GPU_CUDA_BROKEN, /* a driver is installed and CUDA fails: an error to report */
} gpu_cuda_state;

/* Classifies a cudaError_t from cudaGetDeviceCount; driver_installed is
 * gpu_cuda_driver_installed(). Pure: no CUDA call. */
gpu_cuda_state gpu_cuda_classify(int cuda_error, bool driver_installed);

/* cudaGetDeviceCount with that classification: 0 and *n (0 when absent), or
 * ENG_EDEVICE with the message set when CUDA is broken. */
int gpu_cuda_device_count(int *n);

/* ---- CUDA graphs ----
 *
 * gpu_graph_begin starts stream capture on the backend's stream; the
 * operations called until gpu_graph_end are recorded instead of run, and
 * gpu_graph_end instantiates them as one executable graph. While capturing,
 * alloc, free, upload, download and sync are refused (they would allocate or
 * wait on the host); an operation that fails while capturing makes
 * gpu_graph_end fail with that operation's error.
 *
 * Kernel arguments are frozen at capture. Two kinds of step-varying values
 * are supported: adam_step/sgd_step called while capturing read their
 * scalars (lr, step, ...) from a device-side block that gpu_graph_launch
 * writes from `args` before each replay; clip_by_norm and xent already keep
 * their values on the device. Everything else must be identical at every
 * replay: the same pointers, shapes, and dropout keys (a model whose dropout
 * key changes per step must not be captured). */
typedef struct gpu_graph gpu_graph;

/* The same values as engine/backend.h's eng_step_scalars (the backend's
 * eng_graph_ops, b->graph, calls these functions). */
typedef eng_step_scalars gpu_step_args;

int gpu_graph_begin(eng_backend *b);
int gpu_graph_end(eng_backend *b, gpu_graph **out);
/* Queues one replay on the backend's stream (asynchronous, like the ops).
 * args may be NULL when no optimiser step was captured. */
int gpu_graph_launch(eng_backend *b, gpu_graph *g, const gpu_step_args *args);
/* Frees a graph made by gpu_graph_end on b; gpu_graph_free(b, NULL) is a no-op. */
void gpu_graph_free(eng_backend *b, gpu_graph *g);
/* Operations recorded in g (for logs and tests). */
int64_t gpu_graph_op_count(const gpu_graph *g);

#ifdef __cplusplus
}
#endif

#endif
