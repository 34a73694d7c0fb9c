/* Private to the CPU backend: convolutions and matrix products through
 * oneDNN, in float32 or with bf16 inputs (float32 accumulation and outputs).
 *
 * The operation table's tensors are plain float32 (NCHW, row-major); oneDNN
 * is fastest on its own blocked layouts and, for bf16, on bf16 inputs. Each
 * call therefore reorders what it reads into the layout and type the
 * primitive wants, runs it, and reorders what it wrote back. Primitives and
 * reorders are created once per shape (a plan) and kept. A plan whose best
 * implementation is one of oneDNN's reference kernels (what it offers where
 * the CPU lacks an instruction set, e.g. bf16 on AVX2) is refused with
 * ENG_ENOTSUP: the caller then uses its own kernels.
 *
 * Determinism: oneDNN's CPU primitives give the same bits for the same
 * shapes, thread count and instruction set (its documented run-to-run
 * reproducibility); nothing here adds an order that depends on timing. */
#ifndef ENG_CPU_DNNL_H
#define ENG_CPU_DNNL_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/backend.h"

typedef struct cpu_dnnl cpu_dnnl;

/* NULL (with the reason in eng_last_error) when oneDNN cannot make an
 * engine; the backend then runs its own kernels only. */
cpu_dnnl *cpu_dnnl_new(void);
void cpu_dnnl_free(cpu_dnnl *c);

/* What oneDNN runs on this CPU (after ONEDNN_MAX_CPU_ISA): its instruction
 * set ("avx512_core_bf16"), whether its bf16 kernels use bf16 instructions
 * (AVX512-BF16 or AMX) rather than an emulation, and whether it has AMX. */
const char *cpu_dnnl_isa_name(void);
bool cpu_dnnl_bf16_native(void);
bool cpu_dnnl_amx(void);

/* The operations, with the contracts of backend.h; bf16 rounds the inputs
 * (x, w, dy, A, B) to bf16. ENG_ENOTSUP: oneDNN has no usable kernel for
 * this shape (nothing was written). gemm supports alpha = 1, beta = 0. */
int cpu_dnnl_conv_forward(eng_backend *b, const eng_conv_desc *d, bool bf16, const float *x, const float *w,
                          const float *bias, float *y);
int cpu_dnnl_conv_backward(eng_backend *b, const eng_conv_desc *d, bool bf16, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float *db);
int cpu_dnnl_gemm(eng_backend *b, const eng_gemm_desc *d, bool bf16, const float *A, const float *B, float *C);

/* d->keep (backend.h): the forward leaves its reordered copy of x there,
 * with a head saying which x and which layout, and the weights gradient
 * reads it instead of reordering x again. cpu_dnnl_conv_keep_bytes: what
 * that takes for d (0: nothing to keep, or oneDNN cannot serve d);
 * cpu_dnnl_conv_keep_forget: marks d->keep empty (a forward on other
 * kernels). */
size_t cpu_dnnl_conv_keep_bytes(eng_backend *b, const eng_conv_desc *d, bool bf16);
void cpu_dnnl_conv_keep_forget(const eng_conv_desc *d);

/* A bf16 convolution's weights (and bias) gradient as oneDNN matrix
 * products over shifted views of x and dy (cpu_conv_wgrad.c), for the
 * shapes where that beats oneDNN's own kernel: stride 1 on planes of up to
 * 16 outputs (cpu_conv_wgrad_gemm_fits). cpu_dnnl_conv_backward takes it
 * there. */
bool cpu_conv_wgrad_gemm_fits(const eng_conv_desc *d);
int cpu_conv_wgrad_gemm(eng_backend *b, const eng_conv_desc *d, const float *x, const float *dy, float *dw,
                        float *db);
/* The implementation oneDNN chose for the last plan used ("brg:avx512_core"). */
const char *cpu_dnnl_last_impl(const cpu_dnnl *c);

#endif
