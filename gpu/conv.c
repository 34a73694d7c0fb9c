/* Convolution through cuDNN: descriptors and algorithms chosen once per
 * shape (cudnnGet*Algorithm_v7 heuristics, not cudnnFind: Find times the
 * candidates, so its choice - and with it the bits of the result - could
 * change from run to run; it also allocates and runs kernels, which a CUDA
 * graph capture forbids). Rules per precision:
 *   fp32: CUDNN_FMA_MATH only (no TF32), FFT and Winograd avoided (their
 *         rounding differs from a direct sum);
 *   tf32: tensor-op math allowed, never CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION
 *         (that would round to fp16);
 *   bf16: as tf32. cuDNN's bf16 convolutions need bf16 tensors in and out,
 *         so a bf16 path would convert x, w and y around every call; with
 *         float32 storage we run the convolutions in TF32 instead.
 * Backward data and filter algorithms must be CUDNN_DETERMINISTIC. Bias
 * add/grad use our own deterministic kernels (bias.cu). */
#include <stdio.h>
#include <stdlib.h>

#include "gpu/check.h"
#include "gpu/ops.h"

/* Workspace accepted when a shape is planned through conv2d_workspace. */
#define GPU_CONV_WS_MAX ((size_t)512 << 20)

typedef struct conv_lib {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv[3];
} conv_lib;

static void lib_free(conv_lib *l)
{
    if (!l)
        return;
    if (l->x)
        cudnnDestroyTensorDescriptor(l->x);
    if (l->y)
        cudnnDestroyTensorDescriptor(l->y);
    if (l->w)
        cudnnDestroyFilterDescriptor(l->w);
    for (int i = 0; i < 3; i++)
        if (l->conv[i])
            cudnnDestroyConvolutionDescriptor(l->conv[i]);
    free(l);
}

static cudnnMathType_t base_math(const gpu_ctx *g)
{
    return g->prec == ENG_PREC_FP32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

static int lib_make(const eng_conv_desc *d, conv_lib **out)
{
    conv_lib *l = calloc(1, sizeof *l);
    if (!l)
        return eng_error(ENG_ENOMEM, "conv2d: out of memory");
    *out = l; /* freed by the caller's plan on failure too */
    GPU_CUDNN(cudnnCreateTensorDescriptor(&l->x));
    GPU_CUDNN(cudnnCreateTensorDescriptor(&l->y));
    GPU_CUDNN(cudnnCreateFilterDescriptor(&l->w));
    GPU_CUDNN(cudnnSetTensor4dDescriptor(l->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)d->n, (int)d->c, (int)d->h,
                                         (int)d->w));
    GPU_CUDNN(cudnnSetTensor4dDescriptor(l->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)d->n, (int)d->k,
                                         (int)d->oh, (int)d->ow));
    GPU_CUDNN(cudnnSetFilter4dDescriptor(l->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)d->k, (int)d->c, (int)d->kh,
                                         (int)d->kw));
    for (int i = 0; i < 3; i++) {
        GPU_CUDNN(cudnnCreateConvolutionDescriptor(&l->conv[i]));
        GPU_CUDNN(cudnnSetConvolution2dDescriptor(l->conv[i], (int)d->pad, (int)d->pad, (int)d->stride,
                                                  (int)d->stride, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    }
    int n, c, h, w;
    GPU_CUDNN(cudnnGetConvolution2dForwardOutputDim(l->conv[0], l->x, l->w, &n, &c, &h, &w));
    if (n != d->n || c != d->k || h != d->oh || w != d->ow)
        return eng_error(ENG_EINVAL, "conv2d: cuDNN computes output (%d, %d, %d, %d), the description says (%lld, %lld, %lld, %lld)",
                         n, c, h, w, (long long)d->n, (long long)d->k, (long long)d->oh, (long long)d->ow);
    return 0;
}

static gpu_algo_rules rules(const gpu_ctx *g, int which, size_t ws_limit)
{
    gpu_algo_rules r = {.require_deterministic = true, .required_math = -1,
                        .refused_math = CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, .excluded = 0, .ws_limit = ws_limit};
    if (g->prec == ENG_PREC_FP32) {
        r.required_math = CUDNN_FMA_MATH;
        if (which == GPU_CONV_FWD)
            r.excluded = 1u << CUDNN_CONVOLUTION_FWD_ALGO_FFT | 1u << CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING |
                         1u << CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD | 1u << CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
        else if (which == GPU_CONV_BWD_DATA)
            r.excluded = 1u << CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT | 1u << CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING |
                         1u << CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD |
                         1u << CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
        else
            r.excluded = 1u << CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT |
                         1u << CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING |
                         1u << CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
    }
    return r;
}

static const char *which_name(int which)
{
    return which == GPU_CONV_FWD ? "forward" : which == GPU_CONV_BWD_DATA ? "backward data" : "backward filter";
}

/* Lists the candidates in the error, for diagnosis on the machine itself. */
static int no_algo(const eng_conv_desc *d, int which, size_t limit, const gpu_algo_perf *c, int n)
{
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; i < n && used < sizeof list - 48; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s algo %d %s%s math %d ws %zu", i ? ";" : "",
                                 c[i].algo, c[i].ok ? "ok" : "unsupported",
                                 c[i].deterministic ? " deterministic" : "", c[i].math, c[i].memory);
    return eng_error(ENG_ENOTSUP,
                     "conv2d: cuDNN offers no deterministic %s algorithm for n=%lld c=%lld %lldx%lld k=%lld kernel %lldx%lld "
                     "stride %lld pad %lld within %zu bytes of workspace%s (candidates:%s)",
                     which_name(which), (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w,
                     (long long)d->k, (long long)d->kh, (long long)d->kw, (long long)d->stride, (long long)d->pad,
                     limit, limit == 0 ? "; call conv2d_workspace for this shape first" : "", n ? list : " none");
}

/* Chooses the three algorithms of p within ws_limit bytes of workspace. */
static int plan_choose(gpu_ctx *g, gpu_conv_plan *p, size_t ws_limit)
{
    conv_lib *l = p->lib;
    const eng_conv_desc *d = &p->key;
    gpu_algo_perf cand[16];
    int got = 0, pick;
    size_t ws = 0;

    /* forward */
    {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        GPU_CUDNN(cudnnSetConvolutionMathType(l->conv[0], base_math(g)));
        GPU_CUDNN(cudnnGetConvolutionForwardAlgorithm_v7(g->cudnn, l->x, l->w, l->conv[0], l->y,
                                                         CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
        for (int i = 0; i < got && i < 16; i++)
            cand[i] = (gpu_algo_perf){(int)perf[i].algo, perf[i].status == CUDNN_STATUS_SUCCESS,
                                      perf[i].determinism == CUDNN_DETERMINISTIC, (int)perf[i].mathType,
                                      perf[i].memory};
        gpu_algo_rules r = rules(g, GPU_CONV_FWD, ws_limit);
        if ((pick = gpu_algo_pick(cand, got < 16 ? got : 16, &r)) < 0)
            return no_algo(d, GPU_CONV_FWD, ws_limit, cand, got < 16 ? got : 16);
        GPU_CUDNN(cudnnSetConvolutionMathType(l->conv[0], perf[pick].mathType));
        GPU_CUDNN(cudnnGetConvolutionForwardWorkspaceSize(g->cudnn, l->x, l->w, l->conv[0], l->y, perf[pick].algo,
                                                          &ws));
        p->algo[GPU_CONV_FWD] = (int)perf[pick].algo;
        p->math[GPU_CONV_FWD] = (int)perf[pick].mathType;
        p->ws[GPU_CONV_FWD] = ws;
    }
    /* backward data */
    {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        GPU_CUDNN(cudnnSetConvolutionMathType(l->conv[1], base_math(g)));
        GPU_CUDNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(g->cudnn, l->w, l->y, l->conv[1], l->x,
                                                              CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf));
        for (int i = 0; i < got && i < 16; i++)
            cand[i] = (gpu_algo_perf){(int)perf[i].algo, perf[i].status == CUDNN_STATUS_SUCCESS,
                                      perf[i].determinism == CUDNN_DETERMINISTIC, (int)perf[i].mathType,
                                      perf[i].memory};
        gpu_algo_rules r = rules(g, GPU_CONV_BWD_DATA, ws_limit);
        if ((pick = gpu_algo_pick(cand, got < 16 ? got : 16, &r)) < 0)
            return no_algo(d, GPU_CONV_BWD_DATA, ws_limit, cand, got < 16 ? got : 16);
        GPU_CUDNN(cudnnSetConvolutionMathType(l->conv[1], perf[pick].mathType));
        GPU_CUDNN(cudnnGetConvolutionBackwardDataWorkspaceSize(g->cudnn, l->w, l->y, l->conv[1], l->x,
                                                               perf[pick].algo, &ws));
        p->algo[GPU_CONV_BWD_DATA] = (int)perf[pick].algo;
        p->math[GPU_CONV_BWD_DATA] = (int)perf[pick].mathType;
        p->ws[GPU_CONV_BWD_DATA] = ws;
    }
    /* backward filter */
    {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        GPU_CUDNN(cudnnSetConvolutionMathType(l->conv[2], base_math(g)));
        GPU_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(g->cudnn, l->x, l->y, l->conv[2], l->w,
                                                                CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf));
        for (int i = 0; i < got && i < 16; i++)
            cand[i] = (gpu_algo_perf){(int)perf[i].algo, perf[i].status == CUDNN_STATUS_SUCCESS,
                                      perf[i].determinism == CUDNN_DETERMINISTIC, (int)perf[i].mathType,
                                      perf[i].memory};
        gpu_algo_rules r = rules(g, GPU_CONV_BWD_FILTER, ws_limit);
        if ((pick = gpu_algo_pick(cand, got < 16 ? got : 16, &r)) < 0)
            return no_algo(d, GPU_CONV_BWD_FILTER, ws_limit, cand, got < 16 ? got : 16);
        GPU_CUDNN(cudnnSetConvolutionMathType(l->conv[2], perf[pick].mathType));
        GPU_CUDNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(g->cudnn, l->x, l->y, l->conv[2], l->w,
                                                                 perf[pick].algo, &ws));
        p->algo[GPU_CONV_BWD_FILTER] = (int)perf[pick].algo;
        p->math[GPU_CONV_BWD_FILTER] = (int)perf[pick].mathType;
        p->ws[GPU_CONV_BWD_FILTER] = ws;
    }
    return 0;
}

static bool plan_ready(const gpu_conv_plan *p)
{
    return p->lib && p->algo[0] >= 0 && p->algo[1] >= 0 && p->algo[2] >= 0;
}

/* The plan for d, made now if needed: `sized` plans get the full workspace
 * allowance, others the budget the caller is known to provide. */
static int plan_get(gpu_ctx *g, const eng_conv_desc *d, bool sized, gpu_conv_plan **out)
{
    *out = NULL;
    int rc = gpu_conv_desc_check(d);
    if (rc < 0)
        return rc;
    gpu_conv_plan *p = gpu_conv_plans_find(&g->conv, d);
    if (p && plan_ready(p) && (p->sized || !sized)) {
        *out = p;
        return 0;
    }
    if (!p && (rc = gpu_conv_plans_add(&g->conv, d, &p)) < 0)
        return rc;
    if (!p->lib) {
        conv_lib *l = NULL;
        rc = lib_make(d, &l);
        if (rc < 0) {
            lib_free(l);
            return rc;
        }
        p->lib = l;
    }
    const size_t limit = sized ? GPU_CONV_WS_MAX : gpu_conv_plans_budget(&g->conv, d);
    for (int i = 0; i < 3; i++)
        p->algo[i] = -1;
    if ((rc = plan_choose(g, p, limit)) < 0) {
        for (int i = 0; i < 3; i++)
            p->algo[i] = -1;
        return rc;
    }
    if (sized)
        p->sized = true;
    *out = p;
    return 0;
}

size_t gpu_conv2d_workspace(gpu_ctx *g, const eng_conv_desc *d)
{
    gpu_conv_plan *p;
    if (!d || plan_get(g, d, true, &p) < 0)
        return 0; /* the error stays in eng_last_error; the operation itself will fail with it */
    return gpu_conv_plan_workspace(p);
}

int gpu_conv2d_forward(gpu_ctx *g, const eng_conv_desc *d, const float *x, const float *w, const float *bias,
                       float *y, void *ws)
{
    if (!d || !x || !w || !y)
        return eng_error(ENG_EINVAL, "conv2d_forward: NULL argument");
    gpu_conv_plan *p;
    int rc = plan_get(g, d, false, &p);
    if (rc < 0)
        return rc;
    const size_t wsz = p->ws[GPU_CONV_FWD];
    if (wsz > 0 && !ws)
        return eng_error(ENG_EINVAL, "conv2d_forward: the shape needs %zu bytes of workspace, none given", wsz);
    conv_lib *l = p->lib;
    const float one = 1.0f, zero = 0.0f;
    GPU_CUDNN(cudnnConvolutionForward(g->cudnn, &one, l->x, x, l->w, w, l->conv[0],
                                      (cudnnConvolutionFwdAlgo_t)p->algo[GPU_CONV_FWD], ws, wsz, &zero, l->y, y));
    if (bias)
        return gpu_bias_add(g, d->n, d->k, d->oh * d->ow, y, bias);
    return 0;
}

int gpu_conv2d_backward(gpu_ctx *g, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, void *ws)
{
    if (!d || !x || !dy || !dw || (dx && !w))
        return eng_error(ENG_EINVAL, "conv2d_backward: NULL argument");
    gpu_conv_plan *p;
    int rc = plan_get(g, d, false, &p);
    if (rc < 0)
        return rc;
    if ((p->ws[GPU_CONV_BWD_FILTER] > 0 || (dx && p->ws[GPU_CONV_BWD_DATA] > 0)) && !ws)
        return eng_error(ENG_EINVAL, "conv2d_backward: the shape needs workspace, none given");
    conv_lib *l = p->lib;
    const float one = 1.0f, zero = 0.0f;
    if (db && (rc = gpu_bias_grad(g, d->n, d->k, d->oh * d->ow, dy, db)) < 0)
        return rc;
    GPU_CUDNN(cudnnConvolutionBackwardFilter(g->cudnn, &one, l->x, x, l->y, dy, l->conv[2],
                                             (cudnnConvolutionBwdFilterAlgo_t)p->algo[GPU_CONV_BWD_FILTER], ws,
                                             p->ws[GPU_CONV_BWD_FILTER], &zero, l->w, dw));
    if (dx)
        GPU_CUDNN(cudnnConvolutionBackwardData(g->cudnn, &one, l->w, w, l->y, dy, l->conv[1],
                                               (cudnnConvolutionBwdDataAlgo_t)p->algo[GPU_CONV_BWD_DATA], ws,
                                               p->ws[GPU_CONV_BWD_DATA], &zero, l->x, dx));
    return 0;
}

void gpu_conv_plans_release(gpu_ctx *g)
{
    for (int i = 0; i < g->conv.n; i++) {
        lib_free(g->conv.v[i].lib);
        g->conv.v[i].lib = NULL;
    }
    g->conv.n = 0;
}
