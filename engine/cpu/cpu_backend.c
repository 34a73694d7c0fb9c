/* The CPU backend: its operation table, construction, and memory operations.
 *
 * One thread pool: our loops, OpenBLAS (its OpenMP build) and oneDNN
 * (Debian builds it on OpenMP) all run on libgomp's team, sized by
 * omp_set_num_threads to the backend's thread count before every call that
 * enters a library, so the three never run - or spin - beside each other. */
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cpu/cpu_dnnl.h"
#include "engine/cpu/cpu_internal.h"

#define CPU_ALIGN 64

void cpu_blas_threads(const eng_backend *b)
{
    /* The OpenMP build of OpenBLAS takes its thread count from the OpenMP
     * "nthreads" setting of the calling thread at every call. */
    if (omp_get_max_threads() != cpu_threads(b))
        omp_set_num_threads(cpu_threads(b));
}

void cpu_blas_threads_small(const eng_backend *b, int64_t m, int64_t n, int64_t k)
{
    const bool small = n * k < 65536 && m * n * k < ((int64_t)1 << 22);
    const int t = small ? 1 : cpu_threads(b);
    if (omp_get_max_threads() != t)
        omp_set_num_threads(t);
}

static void cpu_destroy(eng_backend *b)
{
    cpu_state *st = b->impl;
    if (st) {
        cpu_dnnl_free(st->dnnl);
        cpu_choices_free(st->choices);
        for (size_t i = 0; i < sizeof st->scratch / sizeof st->scratch[0]; i++)
            free(st->scratch[i]);
        free(st);
    }
    free(b);
}

void *cpu_scratch(eng_backend *b, int slot, size_t bytes)
{
    cpu_state *st = b->impl;
    if (bytes <= st->scratch_n[slot])
        return st->scratch[slot];
    free(st->scratch[slot]);
    st->scratch_n[slot] = 0;
    const size_t rounded = (bytes + 63) / 64 * 64;
    st->scratch[slot] = aligned_alloc(64, rounded ? rounded : 64);
    if (!st->scratch[slot]) {
        eng_error(ENG_ENOMEM, "cpu: cannot allocate %zu bytes of scratch", bytes);
        return NULL;
    }
    st->scratch_n[slot] = rounded;
    return st->scratch[slot];
}

static int cpu_alloc(eng_backend *b, size_t bytes, void **out)
{
    (void)b;
    CPU_NONNULL("alloc", out);
    *out = NULL;
    /* aligned_alloc wants a multiple of the alignment; 0 bytes still gets a
     * distinct pointer so that callers need no special case */
    if (bytes > SIZE_MAX - CPU_ALIGN)
        return eng_error(ENG_ENOMEM, "cpu alloc: %zu bytes is too large", bytes);
    size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    if (rounded == 0)
        rounded = CPU_ALIGN;
    void *p = aligned_alloc(CPU_ALIGN, rounded);
    if (!p)
        return eng_error(ENG_ENOMEM, "cpu alloc: cannot allocate %zu bytes", bytes);
    memset(p, 0, rounded);
    *out = p;
    return 0;
}

static void cpu_free(eng_backend *b, void *p)
{
    (void)b;
    free(p);
}

static int cpu_upload(eng_backend *b, void *dst, const void *host_src, size_t bytes)
{
    (void)b;
    if (bytes == 0)
        return 0;
    CPU_NONNULL("upload", dst);
    CPU_NONNULL("upload", host_src);
    memmove(dst, host_src, bytes);
    return 0;
}

static int cpu_download(eng_backend *b, void *host_dst, const void *src, size_t bytes)
{
    (void)b;
    if (bytes == 0)
        return 0;
    CPU_NONNULL("download", host_dst);
    CPU_NONNULL("download", src);
    memmove(host_dst, src, bytes);
    return 0;
}

static int cpu_copy(eng_backend *b, void *dst, const void *src, size_t bytes)
{
    (void)b;
    if (bytes == 0)
        return 0;
    CPU_NONNULL("copy", dst);
    CPU_NONNULL("copy", src);
    memmove(dst, src, bytes);
    return 0;
}

CPU_KERNEL_BODY void fill_kernel_body(int64_t n, float *restrict x, float value)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        x[i] = value;
}
CPU_DISPATCH_VOID(static, fill_kernel, (int64_t n, float *restrict x, float value), (n, x, value))

static int cpu_fill(eng_backend *b, float *x, int64_t n, float value)
{
    CPU_CHECK(n >= 0, "cpu fill: n = %lld is negative", (long long)n);
    if (n == 0)
        return 0;
    CPU_NONNULL("fill", x);
    const int64_t chunk = 1 << 16;
    const int64_t nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(cpu_team(b, n)) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        fill_kernel(hi - lo, x + lo, value);
    }
    return 0;
}

static int cpu_sync(eng_backend *b)
{
    (void)b;
    return 0; /* every CPU operation has finished when it returns */
}

static const eng_backend_ops cpu_ops = {
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .sync = cpu_sync,
    .gemm = cpu_gemm,
    .bias_add = cpu_bias_add,
    .bias_grad = cpu_bias_grad,
    .add = cpu_add,
    .copy_2d = cpu_copy_2d,
    .transpose = cpu_transpose,
    .mean_lastdim_forward = cpu_mean_lastdim_forward,
    .mean_lastdim_backward = cpu_mean_lastdim_backward,
    .conv2d_workspace = cpu_conv2d_workspace,
    .conv2d_keep = cpu_conv2d_keep,
    .conv2d_blocked = cpu_conv2d_blocked,
    .pool_blocked = cpu_pool_blocked,
    .pool_keep = cpu_pool_keep,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .pool_forward = cpu_pool_forward,
    .pool_backward = cpu_pool_backward,
    .pool_relu_backward = cpu_pool_relu_backward,
    .batchnorm_forward_train = cpu_batchnorm_forward_train,
    .batchnorm_forward_eval = cpu_batchnorm_forward_eval,
    .batchnorm_backward = cpu_batchnorm_backward,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .act_forward = cpu_act_forward,
    .act_backward = cpu_act_backward,
    .softmax_forward = cpu_softmax_forward,
    .softmax_backward = cpu_softmax_backward,
    .xent = cpu_xent,
    .dropout = cpu_dropout,
    .patchify_forward = cpu_patchify_forward,
    .patchify_backward = cpu_patchify_backward,
    .batch_gather = cpu_batch_gather,
    .adam_step = cpu_adam_step,
    .sgd_step = cpu_sgd_step,
    .sumsq = cpu_sumsq,
    .clip_by_norm = cpu_clip_by_norm,
    .kernels_record = cpu_choices_record,
    .kernels_restore = cpu_choices_restore,
    .bias_act = cpu_bias_act,
    .bias_residual = cpu_bias_residual,
    .batchnorm_relu_forward_train = cpu_batchnorm_relu_forward_train,
    .batchnorm_relu_backward = cpu_batchnorm_relu_backward,
    .batchnorm_relu_forward_eval = cpu_batchnorm_relu_forward_eval,
    .layernorm_backward_add = cpu_layernorm_backward_add,
    .act_bias_backward = cpu_act_bias_backward,
    .layernorm_forward_bf16 = cpu_layernorm_forward_bf16,
    .bias_act_bf16 = cpu_bias_act_bf16,
    .act_bias_backward_bf16 = cpu_act_bias_backward_bf16,
    .bias_grad_bf16 = cpu_bias_grad_bf16,
};

int eng_cpu_backend_open(int threads, eng_precision prec, eng_backend **out)
{
    if (!out)
        return eng_error(ENG_EINVAL, "eng_cpu_backend_open: out is NULL");
    *out = NULL;
    if (prec == ENG_PREC_TF32)
        return eng_error(ENG_ENOTSUP, "precision tf32 needs a GPU; the CPU computes in fp32 or bf16");
    if (prec != ENG_PREC_FP32 && prec != ENG_PREC_BF16)
        return eng_error(ENG_EINVAL, "eng_cpu_backend_open: unknown precision %d", (int)prec);
    if (threads <= 0)
        threads = omp_get_num_procs();
    if (threads < 1)
        threads = 1;
    cpu_isa_init();
    eng_backend *b = calloc(1, sizeof *b);
    cpu_state *st = calloc(1, sizeof *st);
    if (!b || !st) {
        free(b);
        free(st);
        return eng_error(ENG_ENOMEM, "eng_cpu_backend_open: out of memory");
    }
    b->ops = &cpu_ops;
    b->kind = ENG_DEVICE_CPU;
    b->precision = prec;
    b->threads = threads;
    b->device = -1;
    strcpy(b->name, "cpu");
    b->impl = st;
    /* without oneDNN (its engine failed to start) the own kernels do everything */
    st->dnnl = cpu_dnnl_new();
    if (!st->dnnl)
        eng_clear_error();
    st->choices = cpu_choices_new(b);
    if (!st->choices) {
        cpu_destroy(b);
        return ENG_ENOMEM;
    }
    cpu_blas_threads(b);
    *out = b;
    return 0;
}

int eng_cpu_backend_new(int threads, eng_backend **out) { return eng_cpu_backend_open(threads, ENG_PREC_FP32, out); }

int eng_cpu_info_get(eng_cpu_info *out)
{
    if (!out)
        return eng_error(ENG_EINVAL, "eng_cpu_info_get: out is NULL");
    memset(out, 0, sizeof *out);
    cpu_ident id;
    cpu_ident_read(&id);
    snprintf(out->model, sizeof out->model, "%s", id.name);
    snprintf(out->isa, sizeof out->isa, "%s", cpu_isa_name());
    snprintf(out->isa_max, sizeof out->isa_max, "x86-64-v%d", cpu_isa_detected());
    const dnnl_version_t *v = dnnl_version();
    snprintf(out->onednn_version, sizeof out->onednn_version, "%d.%d.%d", v->major, v->minor, v->patch);
    snprintf(out->onednn_isa, sizeof out->onednn_isa, "%s", cpu_dnnl_isa_name());
    out->bf16_native = cpu_dnnl_bf16_native();
    out->amx = cpu_dnnl_amx();
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    out->cores = n > 0 ? (int)n : 1;
    snprintf(out->blas_core, sizeof out->blas_core, "%s", eng_cpu_blas_core());
    return 0;
}
