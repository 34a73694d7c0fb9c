/* Bookkeeping of CUDA graph capture, kept apart from CUDA so that it can be
 * tested with a fake driver on a machine without a GPU.
 *
 * The backend calls gpu_graph_state_enter at every operation's entry and
 * gpu_graph_state_leave with its result. While a capture is open, operations
 * that would wait on the host or allocate are refused, and the first failure
 * is remembered so that gpu_graph_state_end can report it (the CUDA capture
 * itself must still be ended, or the stream stays unusable). */
#ifndef GPU_GRAPH_H
#define GPU_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "gpu/gpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA calls the bookkeeping makes. Each returns 0 or a negative ENG_E*
 * code with eng_error() set. */
typedef struct gpu_graph_driver {
    void *ctx;
    int (*begin)(void *ctx);                                  /* cudaStreamBeginCapture */
    int (*end)(void *ctx, void **graph);                      /* cudaStreamEndCapture */
    int (*instantiate)(void *ctx, void *graph, void **exec);  /* cudaGraphInstantiate */
    int (*set_args)(void *ctx, const gpu_step_args *args, unsigned dyn); /* device-side step scalars */
    int (*launch)(void *ctx, void *exec);                     /* cudaGraphLaunch */
    void (*destroy)(void *ctx, void *graph, void *exec);      /* either may be NULL */
} gpu_graph_driver;

/* What an operation does, as far as capture is concerned. */
typedef enum gpu_op_class {
    GPU_OP_QUEUED = 0, /* only queues work on the stream: capturable */
    GPU_OP_HOST,       /* allocates, frees or waits on the host: refused while capturing */
    GPU_OP_ADAM,       /* queued; reads step-varying scalars from the device block when captured */
    GPU_OP_SGD,
} gpu_op_class;

enum { GPU_DYN_ADAM = 1u, GPU_DYN_SGD = 2u };

typedef struct gpu_graph_state {
    gpu_graph_driver drv;
    bool capturing;
    int err;            /* first failure while capturing (0: none) */
    char msg[512];      /* its message */
    int64_t ops;        /* operations entered in the open capture */
    unsigned dyn;       /* GPU_DYN_* seen in the open capture */
    int live;           /* graphs made and not yet freed */
} gpu_graph_state;

struct gpu_graph {
    gpu_graph_state *owner;
    void *graph, *exec;
    int64_t ops;
    unsigned dyn;
};

void gpu_graph_state_init(gpu_graph_state *s, const gpu_graph_driver *drv);
bool gpu_graph_state_capturing(const gpu_graph_state *s);
int gpu_graph_state_begin(gpu_graph_state *s);
int gpu_graph_state_enter(gpu_graph_state *s, const char *op, gpu_op_class cls);
int gpu_graph_state_leave(gpu_graph_state *s, const char *op, int rc);
int gpu_graph_state_end(gpu_graph_state *s, gpu_graph **out);
int gpu_graph_state_launch(gpu_graph_state *s, gpu_graph *g, const gpu_step_args *args);
void gpu_graph_state_free(gpu_graph *g); /* on the backend that made it */

#ifdef __cplusplus
}
#endif

#endif
