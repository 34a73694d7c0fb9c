/* Private declarations of the CPU backend: the functions behind its operation
 * table and the small helpers its files share.
 *
 * Determinism: every loop is statically partitioned, nothing uses atomics, and
 * every reduction writes per-chunk partial sums that are combined in a fixed
 * order, so the same inputs and thread count give the same bits. Wherever it
 * is cheap the chunks have a fixed size, so that results do not even depend
 * on the number of threads; the exceptions are the GEMMs (OpenBLAS's own
 * threading, and gemm's reduce_batch partials), conv2d's weight gradient
 * (a partial per thread; see cpu_conv.h) and oneDNN (deterministic for a
 * given thread count and instruction set). Which of our kernels or oneDNN's
 * runs a shape is chosen once per machine and recorded (cpu_choice.c), so
 * that choice does not vary between runs either. */
#ifndef ENG_CPU_INTERNAL_H
#define ENG_CPU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/error.h"

/* Hot loops are compiled three times - for x86-64-v4 (AVX-512), v3 (AVX2,
 * FMA) and the v2 baseline the project is built for - and each call runs
 * the version for the level chosen at start (cpu_isa.c). A kernel is
 * written once as `CPU_KERNEL_BODY ret name_body(params)` and instantiated
 * by CPU_DISPATCH / CPU_DISPATCH_VOID(storage, [ret,] name, (params),
 * (args)), which defines `name` itself. No FMA contraction happens in C11
 * mode, so elementwise results are identical at every level - except in
 * the files that ask for contraction (activations, direct convolutions) -
 * and reductions vectorised at another width sum in another order. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CPU_MULTIVERSION 1
#define CPU_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#define CPU_TARGET_V3 __attribute__((target("arch=x86-64-v3")))
#else
#define CPU_MULTIVERSION 0
#endif
#define CPU_KERNEL_BODY static inline __attribute__((always_inline))

extern int cpu_isa_level_current; /* 2, 3 or 4 */
extern bool cpu_isa_bf16_current;  /* level 4 with AVX512-BF16 (its conversions) */

#if CPU_MULTIVERSION
#define CPU_DISPATCH(storage, ret, name, params, args)                                                            \
    CPU_TARGET_V4 static ret name##_v4 params { return name##_body args; }                                        \
    CPU_TARGET_V3 static ret name##_v3 params { return name##_body args; }                                        \
    static ret name##_v2 params { return name##_body args; }                                                      \
    storage ret name params                                                                                        \
    {                                                                                                              \
        return cpu_isa_level_current >= 4 ? name##_v4 args : cpu_isa_level_current == 3 ? name##_v3 args         \
                                                                                       : name##_v2 args;           \
    }
#define CPU_DISPATCH_VOID(storage, name, params, args)                                                            \
    CPU_TARGET_V4 static void name##_v4 params { name##_body args; }                                              \
    CPU_TARGET_V3 static void name##_v3 params { name##_body args; }                                              \
    static void name##_v2 params { name##_body args; }                                                            \
    storage void name params                                                                                       \
    {                                                                                                              \
        if (cpu_isa_level_current >= 4)                                                                            \
            name##_v4 args;                                                                                        \
        else if (cpu_isa_level_current == 3)                                                                       \
            name##_v3 args;                                                                                        \
        else                                                                                                       \
            name##_v2 args;                                                                                        \
    }
#else
#define CPU_DISPATCH(storage, ret, name, params, args)                                                            \
    storage ret name params { return name##_body args; }
#define CPU_DISPATCH_VOID(storage, name, params, args)                                                            \
    storage void name params { name##_body args; }
#endif

/* cpu_isa.c: the level's detection (once; EPOCHD_CPU_ISA may lower it). */
void cpu_isa_init(void);
int cpu_isa_detected(void);
const char *cpu_isa_name(void); /* "x86-64-v4" */

/* cpu_ident.c: /proc/cpuinfo's first processor ("unknown", "?" where absent). */
typedef struct cpu_ident {
    char name[96]; /* "AMD EPYC" */
    char family[16];
    char model[16];
} cpu_ident;
void cpu_ident_read(cpu_ident *out);

/* Below this many elements a loop runs on the calling thread: waking the
 * OpenMP team costs more than it saves. */
#define CPU_PAR_MIN ((int64_t)1 << 15)

/* Validation helpers: every op reports a bad argument as ENG_EINVAL. */
#define CPU_CHECK(cond, ...)                                                                                      \
    do {                                                                                                          \
        if (!(cond))                                                                                              \
            return eng_error(ENG_EINVAL, __VA_ARGS__);                                                            \
    } while (0)
#define CPU_NONNULL(op, p) CPU_CHECK((p) != NULL, "cpu %s: %s is NULL", op, #p)

#define CPU_SCRATCH_SLOTS 8
#define CPU_SCRATCH_REDUCE 4
#define CPU_SCRATCH_PLAIN_X 5
#define CPU_SCRATCH_PLAIN_Y 6
#define CPU_SCRATCH_PLAIN_DX 7

/* The backend's own state (eng_backend.impl). */
typedef struct cpu_state {
    struct cpu_dnnl *dnnl;       /* NULL when oneDNN could not start: own kernels only */
    struct cpu_choices *choices; /* which implementation runs each shape (cpu_choice.c) */
    void *scratch[CPU_SCRATCH_SLOTS]; /* grow-only buffers: bf16 copies of operands, partial sums */
    size_t scratch_n[CPU_SCRATCH_SLOTS];
} cpu_state;

/* A grow-only scratch buffer of the backend (slot < CPU_SCRATCH_SLOTS:
 * 0 and 1 a product's operands, 2 and 3 conv2d's weight gradient, 4
 * cpu_gemm_reduce_nt's lane sums and cpu_gemm_tn_long's partials, 5-7
 * NCHW copies of a convolution's blocked x, y or dy, and dx),
 * 64-byte aligned;
 * NULL with the error set when it cannot grow. Valid until the next call
 * for the same slot. */
void *cpu_scratch(eng_backend *b, int slot, size_t bytes);

static inline int cpu_threads(const eng_backend *b) { return b->threads > 0 ? b->threads : 1; }

/* ---- bf16 ---- */

static inline bool cpu_bf16(const eng_backend *b) { return b->precision == ENG_PREC_BF16; }

/* Round to the nearest bf16 (ties to even), kept in a float: what a bf16
 * conversion (vcvtneps2bf16, oneDNN's reorders) keeps of x. NaN stays NaN. */
static inline float cpu_round_bf16(float x)
{
    union {
        float f;
        uint32_t u;
    } v = {.f = x};
    if ((v.u & 0x7F800000u) == 0x7F800000u && (v.u & 0x007FFFFFu))
        v.u |= 0x00400000u; /* quiet NaN; its payload's top bits survive */
    else
        v.u += 0x7FFFu + ((v.u >> 16) & 1u);
    v.u &= 0xFFFF0000u;
    return v.f;
}

/* dst[i] = cpu_round_bf16(src[i]) for i < n, in parallel (cpu_bf16.c). */
void cpu_round_bf16_array(eng_backend *b, int64_t n, const float *src, float *dst);

/* bf16 storage: a float's top half after cpu_round_bf16, and back (exact). */
static inline uint16_t cpu_bf16_bits(float x)
{
    union {
        float f;
        uint32_t u;
    } v = {.f = cpu_round_bf16(x)};
    return (uint16_t)(v.u >> 16);
}
static inline float cpu_bf16_float(uint16_t h)
{
    union {
        uint32_t u;
        float f;
    } v = {.u = (uint32_t)h << 16};
    return v.f;
}
/* GELU on the calling thread (cpu_gelu.c): y = x Phi(x), and its
 * derivative dx = dy (Phi(x) + x phi(x)) with Phi taken from the forward's
 * output y (dx may be dy). */
void cpu_gelu_forward(int64_t n, const float *x, float *y);
void cpu_gelu_backward_from_y(int64_t n, const float *x, const float *y, const float *dy, float *dx);
/* dst[i] = cpu_bf16_bits(src[i]) for i < n, on the calling thread (cpu_bf16.c) */
void cpu_bf16_pack(int64_t n, const float *src, uint16_t *dst);
/* A bf16 output and its layout (backend.h, tb): `rows` rows of `row`
 * values, stored token-major in (tb, rows / tb) blocks when tb > 0. */
typedef struct cpu_bf16_out {
    uint16_t *p;
    int64_t row, rows, tb;
} cpu_bf16_out;
/* The output of p for an (outer, n, inner) tensor, whose rows are its last
 * dimension (inner, or n where inner is 1); ENG_EINVAL (recorded, for op)
 * when tb is negative or does not divide the rows. */
int cpu_bf16_out_init(const char *op, uint16_t *p, int64_t outer, int64_t n, int64_t inner, int64_t tb,
                      cpu_bf16_out *o);
/* Packs the floats at src - the tensor's values [off, off + count), whole
 * rows - to their places in o, on the calling thread. */
void cpu_bf16_pack_out(const cpu_bf16_out *o, int64_t off, int64_t count, const float *src);
/* A scratch slot holding the float32 values of n bf16 values (exact), in
 * parallel; NULL when out of memory (cpu_bf16.c). */
const float *cpu_bf16_expand(eng_backend *b, int slot, int64_t n, const uint16_t *src);

/* A copy of the n floats at src rounded to bf16 in scratch `slot`; NULL
 * with the error set when out of memory. */
const float *cpu_bf16_copy(eng_backend *b, int slot, int64_t n, const float *src);

/* ---- the blocked layout ENG_BLOCK16 (cpu_block16.c) ---- */

/* An (n, c, hw) tensor, c a multiple of 16, from NCHW into the blocked
 * layout and back, in parallel. */
void cpu_block16_pack(eng_backend *b, int64_t n, int64_t c, int64_t hw, const float *plain, float *blocked);
void cpu_block16_unpack(eng_backend *b, int64_t n, int64_t c, int64_t hw, const float *blocked, float *plain);

/* Max pooling over blocked tensors (cpu_pool16.c): whether d fits (no
 * padding, 16k channels, AVX-512), and the passes, args / kept the argmax
 * (a byte per output, NULL: none). */
bool cpu_pool16_fits(const eng_pool_desc *d);
void cpu_pool16_forward(eng_backend *b, const eng_pool_desc *d, const float *x, float *y, uint8_t *args);
void cpu_pool16_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y, const uint8_t *kept,
                         const float *dy, float *dx, bool relu);

/* ---- which implementation runs a shape (cpu_choice.c) ---- */

typedef enum cpu_impl { CPU_IMPL_OWN = 1, CPU_IMPL_DNNL = 2 } cpu_impl;

/* Runs the operation once with implementation `impl`; ENG_ENOTSUP from
 * the oneDNN side means oneDNN cannot serve the shape. */
typedef int (*cpu_trial_fn)(eng_backend *b, void *args, cpu_impl impl);

/* The implementation for `key` (an operation and its shape, e.g.
 * "fp32 conv_fwd n500 c16 32x32 k16 3x3 s1 p1"): the recorded choice when
 * there is one (a restored checkpoint record, this machine's kernel file,
 * an earlier call), else measured now by running both through `run` on the
 * caller's arguments - which must tolerate being run again (every output
 * overwritten, never accumulated) - and kept. */
int cpu_choose(eng_backend *b, const char *key, cpu_trial_fn run, void *args, cpu_impl *out);

struct cpu_choices *cpu_choices_new(const eng_backend *b);
void cpu_choices_free(struct cpu_choices *c);
int cpu_choices_record(eng_backend *b, char **text);
int cpu_choices_restore(eng_backend *b, const char *text);

/* The number of threads a loop over `work` elements should use. */
static inline int cpu_team(const eng_backend *b, int64_t work) { return work < CPU_PAR_MIN ? 1 : cpu_threads(b); }

/* Splits `total` items into chunks of at least `min_chunk` items and at most
 * `max_chunks` chunks. The split depends only on its arguments (never on the
 * thread count), so per-chunk partial sums combined in chunk order give the
 * same bits with any number of threads. Returns the chunk size (>= 1). */
static inline int64_t cpu_chunk_size(int64_t total, int64_t min_chunk, int64_t max_chunks)
{
    int64_t c = (total + max_chunks - 1) / max_chunks;
    if (c < min_chunk)
        c = min_chunk;
    return c < 1 ? 1 : c;
}

/* A sliding window (convolution, pooling): the output oh x ow must be what a
 * kh x kw window at stride and pad gives on an h x w input. */
static inline int cpu_window_check(const char *op, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t stride,
                                   int64_t pad, int64_t oh, int64_t ow)
{
    CPU_CHECK(h + 2 * pad >= kh && w + 2 * pad >= kw && oh == (h + 2 * pad - kh) / stride + 1 &&
                  ow == (w + 2 * pad - kw) / stride + 1,
              "cpu %s: output %lldx%lld does not match input %lldx%lld, kernel %lldx%lld, stride %lld, pad %lld",
              op, (long long)oh, (long long)ow, (long long)h, (long long)w, (long long)kh, (long long)kw,
              (long long)stride, (long long)pad);
    return 0;
}

/* Lets OpenBLAS (OpenMP build: it reads the OpenMP thread count at every
 * call) use the backend's threads for a GEMM issued outside our own parallel
 * regions; inside one it runs single-threaded by itself. */
void cpu_blas_threads(const eng_backend *b);

/* The same for one small product C (m x n) = op(A) op(B), inner size k:
 * one thread where OpenBLAS's threads cost more than they save (B under
 * 65,536 elements and under 4M multiply-adds: on the 2-core Zen 5 host a
 * TN 128x128x64 product took 14.3 us on one thread, 31.0 on two;
 * docs/benchmarks.md), else the backend's. Callers set cpu_blas_threads
 * back after the product. */
void cpu_blas_threads_small(const eng_backend *b, int64_t m, int64_t n, int64_t k);

/* cpu_gemm_reduce.c: C = alpha sum_i A[i] B[i]^T + beta C (reduce_batch,
 * ta = 0, tb = 1) on AVX-512, A and B float32 (bf16 operands widened
 * first); cpu_gemm_reduce_nt_fits says whether it serves d here. */
bool cpu_gemm_reduce_nt_fits(const eng_gemm_desc *d);
int cpu_gemm_reduce_nt(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C);

/* cpu_gemm_tn.c: C = alpha A^T B + beta C (one product, ta = 1, tb = 0)
 * with a reduction far longer than m and n, on AVX-512; A and B float32.
 * cpu_gemm_tn_long_fits says whether it serves d here. */
bool cpu_gemm_tn_long_fits(const eng_gemm_desc *d);
int cpu_gemm_tn_long(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C);

/* Shared reduction: db[j] = sum over (o, i) of dy[o, j, i], summed in double
 * in a thread-count independent order. */
int cpu_bias_grad_impl(const eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db);
/* bias_grad with `produce(arg, o0, o1)` called on each chunk of rows
 * [o0, o1) of `outer` just before the chunk is summed (by the same thread):
 * a fused pass writes dy there while the sum reads it from cache. The sum's
 * order is bias_grad's, so the bits are too. */
int cpu_bias_grad_after(const eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db,
                        void (*produce)(void *arg, int64_t o0, int64_t o1), void *arg);
/* bias_grad's pieces, for passes that sum values they hold elsewhere: the
 * rows of `outer` per chunk; a chunk's rows added in order to its partial
 * sums (n doubles); the partials (nchunks x n) added in chunk order. */
int64_t cpu_bias_grad_chunk(int64_t outer, int64_t n, int64_t inner);
void cpu_bias_grad_rows(int64_t rows, int64_t n, int64_t inner, const float *dy, double *part);
void cpu_bias_grad_combine(int64_t nchunks, int64_t n, const double *part, float *db);

/* cpu_im2col.c: columns (c*kh*kw, gn*oh*ow) of images n0 .. n0+gn-1, and
 * the reverse, which overwrites those images of dx. padbuf holds
 * (h + 2 pad) * (w + 2 pad) floats of scratch. */
void cpu_im2col(const eng_conv_desc *d, const float *x, int64_t n0, int64_t gn, float *col, float *padbuf);
void cpu_col2im(const eng_conv_desc *d, const float *dcol, int64_t n0, int64_t gn, float *dx, float *padbuf);

/* ---- the operation table's functions, one family per file ---- */

/* cpu_gemm.c */
int cpu_gemm(eng_backend *b, const eng_gemm_desc *d, const float *A, const float *B, float *C);

/* cpu_elementwise.c */
int cpu_bias_add(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias);
int cpu_bias_grad(eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db);
int cpu_add(eng_backend *b, int64_t n, const float *a, const float *c, float *y);
int cpu_copy_2d(eng_backend *b, int64_t rows, int64_t cols, const float *src, int64_t ld_src, float *dst,
                int64_t ld_dst);
int cpu_transpose(eng_backend *b, int64_t batch, int64_t rows, int64_t cols, const float *x, float *y);
int cpu_mean_lastdim_forward(eng_backend *b, int64_t rows, int64_t n, const float *x, float *y);
int cpu_mean_lastdim_backward(eng_backend *b, int64_t rows, int64_t n, const float *dy, float *dx);

/* cpu_conv2d.c */
size_t cpu_conv2d_workspace(eng_backend *b, const eng_conv_desc *d);
size_t cpu_conv2d_keep(eng_backend *b, const eng_conv_desc *d);
bool cpu_conv2d_blocked(eng_backend *b, const eng_conv_desc *d);
bool cpu_pool_blocked(eng_backend *b, const eng_pool_desc *d);
int cpu_conv2d_forward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *bias,
                       float *y, void *ws);
int cpu_conv2d_backward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, void *ws);

/* cpu_pool_s2.c: max pooling 3x3 at stride 2, pad 0 or 1, rows of at most
 * 32, on AVX-512, over planes [p0, p1) of the tensors (arg: the kept taps,
 * a byte per output, or NULL); the backward from the forward's taps, where
 * cpu_pool_s2_backward_fits. */
bool cpu_pool_s2_fits(const eng_pool_desc *d);
bool cpu_pool_s2_backward_fits(const eng_pool_desc *d, bool relu);
void cpu_pool_s2_forward(const eng_pool_desc *d, int64_t p0, int64_t p1, const float *x, float *y, uint8_t *arg);
void cpu_pool_s2_backward(const eng_pool_desc *d, int64_t p0, int64_t p1, const float *y, const float *dy,
                          const uint8_t *arg, float *dx, bool relu);

/* cpu_pool.c */
int cpu_pool_forward(eng_backend *b, const eng_pool_desc *d, const float *x, float *y);
size_t cpu_pool_keep(eng_backend *b, const eng_pool_desc *d);
int cpu_pool_relu_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y,
                           const float *dy, float *dx);
int cpu_pool_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y, const float *dy,
                      float *dx);

/* cpu_batchnorm.c */
int cpu_batchnorm_forward_train(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                const float *beta, float *y, float *running_mean, float *running_var,
                                float *save_mean, float *save_invstd);
int cpu_batchnorm_forward_eval(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                               const float *beta, const float *running_mean, const float *running_var, float *y);
int cpu_batchnorm_relu_forward_train(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                     const float *beta, float *y, float *running_mean, float *running_var,
                                     float *save_mean, float *save_invstd, float *save_apply);
int cpu_batchnorm_relu_backward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                                const float *gamma, const float *beta, const float *save_mean,
                                const float *save_invstd, const float *save_apply, float *dx, float *dgamma,
                                float *dbeta);
int cpu_batchnorm_relu_forward_eval(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                    const float *beta, const float *running_mean, const float *running_var, float *y);
int cpu_batchnorm_backward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                           const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                           float *dgamma, float *dbeta);

/* cpu_layernorm.c */
int cpu_layernorm_forward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                          const float *beta, float *y, float *save_mean, float *save_rstd);
int cpu_layernorm_backward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                           const float *gamma, const float *save_mean, const float *save_rstd, float *dx,
                           float *dgamma, float *dbeta);
int cpu_layernorm_forward_bf16(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                               const float *beta, uint16_t *y16, int64_t tb, float *save_mean, float *save_rstd);
int cpu_layernorm_backward_add(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                               const float *gamma, const float *save_mean, const float *save_rstd,
                               const float *res, float *dx, uint16_t *dx16, int64_t tb, float *dgamma,
                               float *dbeta);

/* cpu_act.c */
int cpu_act_forward(eng_backend *b, eng_act kind, float slope, int64_t n, const float *x, float *y);
int cpu_bias_act(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias, eng_act kind,
                 float slope, float *out);
int cpu_bias_residual(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias,
                      const float *res);
int cpu_bias_act_bf16(eng_backend *b, int64_t outer, int64_t n, int64_t inner, float *y, const float *bias,
                      eng_act kind, float slope, float *out, uint16_t *out16, int64_t tb);
int cpu_act_backward(eng_backend *b, eng_act kind, float slope, int64_t n, const float *x, const float *y,
                     const float *dy, float *dx);
int cpu_act_bias_backward(eng_backend *b, eng_act kind, float slope, int64_t outer, int64_t n, int64_t inner,
                          const float *x, const float *y, const float *dy, float *dx, float *db);
int cpu_act_bias_backward_bf16(eng_backend *b, eng_act kind, float slope, int64_t outer, int64_t n, int64_t inner,
                               const float *x, const float *y, const float *dy, uint16_t *dx16, int64_t tb,
                               float *db);
int cpu_bias_grad_bf16(eng_backend *b, int64_t outer, int64_t n, int64_t inner, const float *dy, float *db,
                       uint16_t *dy16, int64_t tb);

/* cpu_softmax.c */
int cpu_softmax_forward(eng_backend *b, int64_t rows, int64_t n, const float *x, float *y);
int cpu_softmax_backward(eng_backend *b, int64_t rows, int64_t n, const float *y, const float *dy, float *dx);

/* cpu_xent.c */
int cpu_xent(eng_backend *b, const eng_xent_desc *d, const float *logits, const int32_t *labels, float *dlogits,
             double *acc);

/* cpu_dropout.c */
int cpu_dropout(eng_backend *b, int64_t n, float p, uint64_t key, uint64_t counter, const float *x, float *y);

/* cpu_patchify.c */
int cpu_patchify_forward(eng_backend *b, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *x,
                         float *y);
int cpu_patchify_backward(eng_backend *b, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *dy,
                          float *dx);

/* cpu_batch.c */
int cpu_batch_gather(eng_backend *b, const eng_batch_desc *d, const uint8_t *images, const int32_t *all_labels,
                     const int32_t *idx, const int16_t *aug, float *x, int32_t *labels);

/* cpu_optim.c */
int cpu_adam_step(eng_backend *b, int64_t n, float *p, const float *g, float *m, float *v, const eng_adam_args *a);
int cpu_sgd_step(eng_backend *b, int64_t n, float *p, const float *g, float *buf, const eng_sgd_args *a);
int cpu_sumsq(eng_backend *b, int64_t n, const float *x, double *sumsq);
int cpu_clip_by_norm(eng_backend *b, int64_t n, float *g, const double *sumsq, float max_norm);

#endif
