/* The CUDA backend object: creation and teardown, the memory operations,
 * the eng_backend_ops table (each entry passes through the graph-capture
 * bookkeeping of graph.c before its launcher), and the public graph API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/check.h"
#include "gpu/gpu.h"
#include "gpu/ops.h"

#define CUBLAS_WS_BYTES ((size_t)32 << 20) /* cuBLAS's advice for Hopper; set explicitly so capture never allocates */
#define SCRATCH_BYTES ((size_t)16 << 20)

static const eng_backend_ops gpu_ops;
static const eng_graph_ops gpu_graph_ops;

static gpu_ctx *ctx_of(eng_backend *b) { return (gpu_ctx *)b->impl; }

/* ---- bookkeeping wrappers ---- */

#define ENTER(g, name, cls)                                                                                        \
    do {                                                                                                           \
        int enter_rc_ = gpu_graph_state_enter(&(g)->graph, name, cls);                                             \
        if (enter_rc_ < 0)                                                                                         \
            return enter_rc_;                                                                                      \
    } while (0)

/* An operation that only queues work: op_NAME(b, ...) -> gpu_NAME(g, ...). */
#define QUEUED_OP(name, params, args)                                                                              \
    static int op_##name params                                                                                    \
    {                                                                                                              \
        gpu_ctx *g = ctx_of(b);                                                                                    \
        ENTER(g, #name, GPU_OP_QUEUED);                                                                            \
        return gpu_graph_state_leave(&g->graph, #name, gpu_##name args);                                          \
    }

QUEUED_OP(fill, (eng_backend * b, float *x, int64_t n, float value), (g, x, n, value))
QUEUED_OP(gemm, (eng_backend * b, const eng_gemm_desc *d, const float *A, const float *B, float *C), (g, d, A, B, C))
QUEUED_OP(bias_add, (eng_backend * b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias),
          (g, outer, n, inner, y, bias))
QUEUED_OP(bias_grad, (eng_backend * b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db),
          (g, outer, n, inner, dy, db))
QUEUED_OP(add, (eng_backend * b, int64_t n, const float *a, const float *c, float *y), (g, n, a, c, y))
QUEUED_OP(copy_2d,
          (eng_backend * b, int64_t rows, int64_t cols, const float *src, int64_t ld_src, float *dst, int64_t ld_dst),
          (g, rows, cols, src, ld_src, dst, ld_dst))
QUEUED_OP(transpose, (eng_backend * b, int64_t batch, int64_t rows, int64_t cols, const float *x, float *y),
          (g, batch, rows, cols, x, y))
QUEUED_OP(mean_lastdim_forward, (eng_backend * b, int64_t rows, int64_t n, const float *x, float *y),
          (g, rows, n, x, y))
QUEUED_OP(mean_lastdim_backward, (eng_backend * b, int64_t rows, int64_t n, const float *dy, float *dx),
          (g, rows, n, dy, dx))
QUEUED_OP(conv2d_forward,
          (eng_backend * b, const eng_conv_desc *d, const float *x, const float *w, const float *bias, float *y,
           void *ws),
          (g, d, x, w, bias, y, ws))
QUEUED_OP(conv2d_backward,
          (eng_backend * b, const eng_conv_desc *d, const float *x, const float *w, const float *dy, float *dx,
           float *dw, float *db, void *ws),
          (g, d, x, w, dy, dx, dw, db, ws))
QUEUED_OP(pool_forward, (eng_backend * b, const eng_pool_desc *d, const float *x, float *y), (g, d, x, y))
QUEUED_OP(pool_backward,
          (eng_backend * b, const eng_pool_desc *d, const float *x, const float *y, const float *dy, float *dx),
          (g, d, x, y, dy, dx))
QUEUED_OP(batchnorm_forward_train,
          (eng_backend * b, const eng_norm_desc *d, const float *x, const float *gamma, const float *beta, float *y,
           float *running_mean, float *running_var, float *save_mean, float *save_invstd),
          (g, d, x, gamma, beta, y, running_mean, running_var, save_mean, save_invstd))
QUEUED_OP(batchnorm_forward_eval,
          (eng_backend * b, const eng_norm_desc *d, const float *x, const float *gamma, const float *beta,
           const float *running_mean, const float *running_var, float *y),
          (g, d, x, gamma, beta, running_mean, running_var, y))
QUEUED_OP(batchnorm_backward,
          (eng_backend * b, const eng_norm_desc *d, const float *x, const float *dy, const float *gamma,
           const float *save_mean, const float *save_invstd, float *dx, float *dgamma, float *dbeta),
          (g, d, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta))
QUEUED_OP(layernorm_forward,
          (eng_backend * b, const eng_norm_desc *d, const float *x, const float *gamma, const float *beta, float *y,
           float *save_mean, float *save_rstd),
          (g, d, x, gamma, beta, y, save_mean, save_rstd))
QUEUED_OP(layernorm_backward,
          (eng_backend * b, const eng_norm_desc *d, const float *x, const float *dy, const float *gamma,
           const float *save_mean, const float *save_rstd, float *dx, float *dgamma, float *dbeta),
          (g, d, x, dy, gamma, save_mean, save_rstd, dx, dgamma, dbeta))
QUEUED_OP(act_forward, (eng_backend * b, eng_act kind, float slope, int64_t n, const float *x, float *y),
          (g, kind, slope, n, x, y))
QUEUED_OP(act_backward,
          (eng_backend * b, eng_act kind, float slope, int64_t n, const float *x, const float *y, const float *dy,
           float *dx),
          (g, kind, slope, n, x, y, dy, dx))
QUEUED_OP(softmax_forward, (eng_backend * b, int64_t rows, int64_t n, const float *x, float *y), (g, rows, n, x, y))
QUEUED_OP(softmax_backward, (eng_backend * b, int64_t rows, int64_t n, const float *y, const float *dy, float *dx),
          (g, rows, n, y, dy, dx))
QUEUED_OP(xent,
          (eng_backend * b, const eng_xent_desc *d, const float *logits, const int32_t *labels, float *dlogits,
           double *acc),
          (g, d, logits, labels, dlogits, acc))
QUEUED_OP(dropout,
          (eng_backend * b, int64_t n, float p, uint64_t key, uint64_t counter, const float *x, float *y),
          (g, n, p, key, counter, x, y))
QUEUED_OP(patchify_forward,
          (eng_backend * b, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *x, float *y),
          (g, n, c, h, w, p, x, y))
QUEUED_OP(patchify_backward,
          (eng_backend * b, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *dy, float *dx),
          (g, n, c, h, w, p, dy, dx))
QUEUED_OP(batch_gather,
          (eng_backend * b, const eng_batch_desc *d, const uint8_t *images, const int32_t *all_labels,
           const int32_t *idx, const int16_t *aug, float *x, int32_t *labels),
          (g, d, images, all_labels, idx, aug, x, labels))
QUEUED_OP(sumsq, (eng_backend * b, int64_t n, const float *x, double *sumsq), (g, n, x, sumsq))
QUEUED_OP(clip_by_norm, (eng_backend * b, int64_t n, float *grad, const double *sumsq, float max_norm),
          (g, n, grad, sumsq, max_norm))

static size_t op_conv2d_workspace(eng_backend *b, const eng_conv_desc *d)
{
    return gpu_conv2d_workspace(ctx_of(b), d); /* host-side planning only: fine while capturing */
}

static int op_adam_step(eng_backend *b, int64_t n, float *p, const float *grad, float *m, float *v,
                        const eng_adam_args *a)
{
    gpu_ctx *g = ctx_of(b);
    ENTER(g, "adam_step", GPU_OP_ADAM);
    return gpu_graph_state_leave(&g->graph, "adam_step",
                                 gpu_adam_step(g, n, p, grad, m, v, a, gpu_graph_state_capturing(&g->graph)));
}

static int op_sgd_step(eng_backend *b, int64_t n, float *p, const float *grad, float *buf, const eng_sgd_args *a)
{
    gpu_ctx *g = ctx_of(b);
    ENTER(g, "sgd_step", GPU_OP_SGD);
    return gpu_graph_state_leave(&g->graph, "sgd_step",
                                 gpu_sgd_step(g, n, p, grad, buf, a, gpu_graph_state_capturing(&g->graph)));
}

/* ---- memory ---- */

static int op_alloc(eng_backend *b, size_t bytes, void **out)
{
    gpu_ctx *g = ctx_of(b);
    *out = NULL;
    ENTER(g, "alloc", GPU_OP_HOST);
    const size_t n = bytes ? bytes : 1;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, n); /* 256-byte aligned */
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        return eng_error(ENG_ENOMEM, "cuda:%d: out of device memory allocating %zu bytes (%zu of %zu free)",
                         g->device, bytes, free_b, total_b);
    }
    if (e != cudaSuccess)
        return gpu_fail_cuda(e, "cudaMalloc(&p, n)", __FILE__, __LINE__);
    e = cudaMemsetAsync(p, 0, n, g->stream); /* stream-ordered before any later use */
    if (e != cudaSuccess) {
        cudaFree(p);
        return gpu_fail_cuda(e, "cudaMemsetAsync(p, 0, n, g->stream)", __FILE__, __LINE__);
    }
    *out = p;
    return 0;
}

static void op_free(eng_backend *b, void *p)
{
    if (!p)
        return;
    gpu_ctx *g = ctx_of(b);
    if (gpu_graph_state_enter(&g->graph, "free", GPU_OP_HOST) < 0)
        return; /* refused while capturing: the memory stays allocated, the capture fails */
    cudaError_t e = cudaFree(p);
    if (e != cudaSuccess)
        gpu_fail_cuda(e, "cudaFree(p)", __FILE__, __LINE__);
}

static int op_upload(eng_backend *b, void *dst, const void *host_src, size_t bytes)
{
    gpu_ctx *g = ctx_of(b);
    ENTER(g, "upload", GPU_OP_HOST);
    if (bytes == 0)
        return 0;
    if (!dst || !host_src)
        return eng_error(ENG_EINVAL, "upload: NULL pointer");
    GPU_CUDA(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, g->stream));
    GPU_CUDA(cudaStreamSynchronize(g->stream));
    return 0;
}

static int op_download(eng_backend *b, void *host_dst, const void *src, size_t bytes)
{
    gpu_ctx *g = ctx_of(b);
    ENTER(g, "download", GPU_OP_HOST);
    if (bytes == 0)
        return 0;
    if (!host_dst || !src)
        return eng_error(ENG_EINVAL, "download: NULL pointer");
    GPU_CUDA(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, g->stream));
    GPU_CUDA(cudaStreamSynchronize(g->stream));
    return 0;
}

static int copy_impl(gpu_ctx *g, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0 || dst == src)
        return 0;
    if (!dst || !src)
        return eng_error(ENG_EINVAL, "copy: NULL pointer");
    GPU_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g->stream));
    return 0;
}

static int op_copy(eng_backend *b, void *dst, const void *src, size_t bytes)
{
    gpu_ctx *g = ctx_of(b);
    ENTER(g, "copy", GPU_OP_QUEUED);
    return gpu_graph_state_leave(&g->graph, "copy", copy_impl(g, dst, src, bytes));
}

static int op_sync(eng_backend *b)
{
    gpu_ctx *g = ctx_of(b);
    ENTER(g, "sync", GPU_OP_HOST);
    GPU_CUDA(cudaStreamSynchronize(g->stream));
    return 0;
}

/* ---- the CUDA side of graph capture (graph.c holds the bookkeeping) ---- */

static int drv_begin(void *ctx)
{
    gpu_ctx *g = ctx;
    /* thread-local: unsafe calls (cudaMalloc, ...) from this thread fail instead of corrupting the capture */
    GPU_CUDA(cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeThreadLocal));
    return 0;
}

static int drv_end(void *ctx, void **graph)
{
    gpu_ctx *g = ctx;
    cudaGraph_t gr = NULL;
    cudaError_t e = cudaStreamEndCapture(g->stream, &gr);
    *graph = gr;
    if (e != cudaSuccess)
        return gpu_fail_cuda(e, "cudaStreamEndCapture(g->stream, &gr)", __FILE__, __LINE__);
    return 0;
}

static int drv_instantiate(void *ctx, void *graph, void **exec)
{
    (void)ctx;
    cudaGraphExec_t ex = NULL;
    GPU_CUDA(cudaGraphInstantiate(&ex, (cudaGraph_t)graph, 0));
    *exec = ex;
    return 0;
}

static int drv_set_args(void *ctx, const gpu_step_args *args, unsigned dyn) { return gpu_dyn_set(ctx, args, dyn); }

static int drv_launch(void *ctx, void *exec)
{
    gpu_ctx *g = ctx;
    GPU_CUDA(cudaGraphLaunch((cudaGraphExec_t)exec, g->stream));
    return 0;
}

static void drv_destroy(void *ctx, void *graph, void *exec)
{
    (void)ctx;
    if (exec)
        cudaGraphExecDestroy((cudaGraphExec_t)exec); /* an in-flight replay is freed when it completes */
    if (graph)
        cudaGraphDestroy((cudaGraph_t)graph);
}

/* ---- creation ---- */

static void ctx_free(gpu_ctx *g)
{
    if (!g)
        return;
    if (g->stream)
        cudaStreamSynchronize(g->stream);
    gpu_conv_plans_release(g);
    if (g->cudnn)
        cudnnDestroy(g->cudnn);
    if (g->cublas)
        cublasDestroy(g->cublas);
    cudaFree(g->cublas_ws);
    cudaFree(g->scratch);
    cudaFree(g->dyn);
    if (g->stream)
        cudaStreamDestroy(g->stream);
    free(g);
}

static int ctx_init(gpu_ctx *g, int device, eng_precision prec)
{
    g->device = device;
    g->prec = prec;
    GPU_CUDA(cudaSetDevice(device));
    struct cudaDeviceProp prop;
    GPU_CUDA(cudaGetDeviceProperties(&prop, device));
    g->sm_count = prop.multiProcessorCount;
    snprintf(g->device_name, sizeof g->device_name, "%s", prop.name);
    if (prec != ENG_PREC_FP32 && prop.major < 8)
        return eng_error(ENG_ENOTSUP, "cuda:%d (%s, compute capability %d.%d): tf32 and bf16 need 8.0 or newer",
                         device, prop.name, prop.major, prop.minor);
    GPU_CUDA(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));

    GPU_CUBLAS(cublasCreate(&g->cublas));
    GPU_CUBLAS(cublasSetStream(g->cublas, g->stream)); /* before the workspace: SetStream resets it */
    g->cublas_ws_bytes = CUBLAS_WS_BYTES;
    GPU_CUDA(cudaMalloc(&g->cublas_ws, g->cublas_ws_bytes));
    GPU_CUBLAS(cublasSetWorkspace(g->cublas, g->cublas_ws, g->cublas_ws_bytes));
    /* fp32: COMPUTE_32F with the default math mode is true float32 (unless the
     * NVIDIA_TF32_OVERRIDE=1 environment variable forces TF32 process-wide) */
    GPU_CUBLAS(cublasSetMathMode(g->cublas, prec == ENG_PREC_FP32 ? CUBLAS_DEFAULT_MATH : CUBLAS_TF32_TENSOR_OP_MATH));
    GPU_CUBLAS(cublasSetAtomicsMode(g->cublas, CUBLAS_ATOMICS_NOT_ALLOWED));
    g->gemm_compute = prec == ENG_PREC_FP32   ? CUBLAS_COMPUTE_32F
                      : prec == ENG_PREC_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                              : CUBLAS_COMPUTE_32F_FAST_16BF;

    GPU_CUDNN(cudnnCreate(&g->cudnn));
    GPU_CUDNN(cudnnSetStream(g->cudnn, g->stream));

    g->scratch_doubles = SCRATCH_BYTES / sizeof(double);
    GPU_CUDA(cudaMalloc((void **)&g->scratch, SCRATCH_BYTES));
    GPU_CUDA(cudaMalloc((void **)&g->dyn, sizeof(gpu_dyn)));
    GPU_CUDA(cudaMemsetAsync(g->dyn, 0, sizeof(gpu_dyn), g->stream));
    GPU_CUDA(cudaStreamSynchronize(g->stream));

    const gpu_graph_driver drv = {.ctx = g, .begin = drv_begin, .end = drv_end, .instantiate = drv_instantiate,
                                  .set_args = drv_set_args, .launch = drv_launch, .destroy = drv_destroy};
    gpu_graph_state_init(&g->graph, &drv);
    return 0;
}

static void op_destroy(eng_backend *b)
{
    if (!b)
        return;
    ctx_free(ctx_of(b));
    free(b);
}

int gpu_backend_new(int device, eng_precision prec, eng_backend **out)
{
    *out = NULL;
    if (prec != ENG_PREC_FP32 && prec != ENG_PREC_TF32 && prec != ENG_PREC_BF16)
        return eng_error(ENG_EINVAL, "gpu backend: unknown precision %d", (int)prec);
    int n = 0;
    int rc = gpu_cuda_device_count(&n);
    if (rc < 0)
        return rc; /* a driver that is there and fails: an error, not an absence */
    if (n == 0)
        return eng_error(ENG_ENOTSUP, "gpu backend: no CUDA device (none found)");
    if (device < 0 || device >= n)
        return eng_error(ENG_EINVAL, "gpu backend: device %d does not exist (%d found)", device, n);
    eng_backend *b = calloc(1, sizeof *b);
    gpu_ctx *g = calloc(1, sizeof *g);
    if (!b || !g) {
        free(b);
        free(g);
        return eng_error(ENG_ENOMEM, "gpu backend: out of memory");
    }
    rc = ctx_init(g, device, prec);
    if (rc < 0) {
        ctx_free(g);
        free(b);
        return rc;
    }
    b->ops = &gpu_ops;
    b->graph = &gpu_graph_ops;
    b->kind = ENG_DEVICE_CUDA;
    b->precision = prec;
    b->threads = 0;
    b->device = device;
    snprintf(b->name, sizeof b->name, "cuda:%d", device);
    b->impl = g;
    *out = b;
    return 0;
}

void *gpu_backend_stream(eng_backend *b)
{
    return b && b->ops == &gpu_ops ? (void *)ctx_of(b)->stream : NULL;
}

/* ---- graphs ---- */

static gpu_ctx *graph_ctx(eng_backend *b)
{
    if (!b || b->ops != &gpu_ops) {
        eng_error(ENG_EINVAL, "gpu graph: not a CUDA backend");
        return NULL;
    }
    return ctx_of(b);
}

int gpu_graph_begin(eng_backend *b)
{
    gpu_ctx *g = graph_ctx(b);
    return g ? gpu_graph_state_begin(&g->graph) : ENG_EINVAL;
}

int gpu_graph_end(eng_backend *b, gpu_graph **out)
{
    *out = NULL;
    gpu_ctx *g = graph_ctx(b);
    return g ? gpu_graph_state_end(&g->graph, out) : ENG_EINVAL;
}

int gpu_graph_launch(eng_backend *b, gpu_graph *gr, const gpu_step_args *args)
{
    gpu_ctx *g = graph_ctx(b);
    return g ? gpu_graph_state_launch(&g->graph, gr, args) : ENG_EINVAL;
}

void gpu_graph_free(eng_backend *b, gpu_graph *gr)
{
    (void)b;
    gpu_graph_state_free(gr);
}

int64_t gpu_graph_op_count(const gpu_graph *g) { return g ? g->ops : 0; }

/* The backend's eng_graph_ops (engine/backend.h): the graph travels as a
 * void * so that the engine needs nothing from gpu/. */
static int op_graph_begin(eng_backend *b) { return gpu_graph_begin(b); }

static int op_graph_end(eng_backend *b, void **graph)
{
    gpu_graph *g = NULL;
    int rc = gpu_graph_end(b, &g);
    *graph = g;
    return rc;
}

static int op_graph_launch(eng_backend *b, void *graph, const eng_step_scalars *s)
{
    return gpu_graph_launch(b, graph, s);
}

static void op_graph_free(eng_backend *b, void *graph) { gpu_graph_free(b, graph); }

static const eng_graph_ops gpu_graph_ops = {
    .begin = op_graph_begin, .end = op_graph_end, .launch = op_graph_launch, .free = op_graph_free};

const eng_backend_ops *gpu_ops_table(void) { return &gpu_ops; }

static const eng_backend_ops gpu_ops = {
    .destroy = op_destroy,
    .alloc = op_alloc,
    .free = op_free,
    .upload = op_upload,
    .download = op_download,
    .copy = op_copy,
    .fill = op_fill,
    .sync = op_sync,
    .gemm = op_gemm,
    .bias_add = op_bias_add,
    .bias_grad = op_bias_grad,
    .add = op_add,
    .copy_2d = op_copy_2d,
    .transpose = op_transpose,
    .mean_lastdim_forward = op_mean_lastdim_forward,
    .mean_lastdim_backward = op_mean_lastdim_backward,
    .conv2d_workspace = op_conv2d_workspace,
    .conv2d_forward = op_conv2d_forward,
    .conv2d_backward = op_conv2d_backward,
    .pool_forward = op_pool_forward,
    .pool_backward = op_pool_backward,
    .batchnorm_forward_train = op_batchnorm_forward_train,
    .batchnorm_forward_eval = op_batchnorm_forward_eval,
    .batchnorm_backward = op_batchnorm_backward,
    .layernorm_forward = op_layernorm_forward,
    .layernorm_backward = op_layernorm_backward,
    .act_forward = op_act_forward,
    .act_backward = op_act_backward,
    .softmax_forward = op_softmax_forward,
    .softmax_backward = op_softmax_backward,
    .xent = op_xent,
    .dropout = op_dropout,
    .patchify_forward = op_patchify_forward,
    .patchify_backward = op_patchify_backward,
    .batch_gather = op_batch_gather,
    .adam_step = op_adam_step,
    .sgd_step = op_sgd_step,
    .sumsq = op_sumsq,
    .clip_by_norm = op_clip_by_norm,
};
