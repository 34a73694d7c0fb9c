/* Optimiser steps over flat buffers (Adam/AdamW, SGD with momentum), the
 * global squared norm and clipping by it. The element updates follow
 * torch.optim's operation order (PyTorch 1.13, single-tensor path) so that
 * parity tests agree to float rounding. */
#include <math.h>
#include <stdlib.h>

#include "engine/cpu/cpu_internal.h"

#define OPT_CHUNK ((int64_t)1 << 14)

typedef struct adam_consts {
    float b1, b2, one_b1, one_b2, eps, wd, decay, step_size, bc2_sqrt;
    bool l2, decoupled;
} adam_consts;

/* l2 and decoupled are constants in each instance: GCC does not vectorise
 * the loop with loop-invariant branches on them once if-conversion may
 * assume no traps (-fno-trapping-math), so they are resolved outside it. */
CPU_KERNEL_BODY void adam_loop(int64_t n, float *restrict p, const float *restrict g, float *restrict m,
                               float *restrict v, const adam_consts *k, const bool l2, const bool decoupled)
{
    const float b1 = k->b1, b2 = k->b2, one_b1 = k->one_b1, one_b2 = k->one_b2, eps = k->eps, wd = k->wd;
    const float decay = k->decay, neg_step = -k->step_size, bc2_sqrt = k->bc2_sqrt;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i], pi = p[i];
        if (l2)
            gi = gi + pi * wd; /* grad.add(param, alpha=wd) */
        if (decoupled)
            pi = pi * decay; /* param.mul_(1 - lr * wd) */
        const float mi = m[i] * b1 + gi * one_b1;
        const float vi = v[i] * b2 + one_b2 * (gi * gi);
        const float denom = sqrtf(vi) / bc2_sqrt + eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + neg_step * (mi / denom);
    }
}
CPU_KERNEL_BODY void adam_kernel_body(int64_t n, float *restrict p, const float *restrict g, float *restrict m,
                                      float *restrict v, const adam_consts *k)
{
    if (k->l2)
        adam_loop(n, p, g, m, v, k, true, false);
    else if (k->decoupled)
        adam_loop(n, p, g, m, v, k, false, true);
    else
        adam_loop(n, p, g, m, v, k, false, false);
}
CPU_DISPATCH_VOID(static, adam_kernel,
                  (int64_t n, float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                   const adam_consts *k),
                  (n, p, g, m, v, k))

int cpu_adam_step(eng_backend *b, int64_t n, float *p, const float *g, float *m, float *v, const eng_adam_args *a)
{
    CPU_NONNULL("adam_step", a);
    CPU_CHECK(n >= 0, "cpu adam_step: n = %lld is negative", (long long)n);
    CPU_CHECK(a->step >= 1, "cpu adam_step: step %lld must count from 1", (long long)a->step);
    CPU_CHECK(a->beta1 >= 0.0f && a->beta1 < 1.0f && a->beta2 >= 0.0f && a->beta2 < 1.0f,
              "cpu adam_step: betas (%g, %g) not in [0, 1)", (double)a->beta1, (double)a->beta2);
    if (n == 0)
        return 0;
    CPU_NONNULL("adam_step", p);
    CPU_NONNULL("adam_step", g);
    CPU_NONNULL("adam_step", m);
    CPU_NONNULL("adam_step", v);
    /* scalars in double as Python computes them, then rounded once */
    const double bc1 = 1.0 - pow((double)a->beta1, (double)a->step);
    const double bc2 = 1.0 - pow((double)a->beta2, (double)a->step);
    adam_consts k = {
        .b1 = a->beta1,
        .b2 = a->beta2,
        .one_b1 = (float)(1.0 - (double)a->beta1),
        .one_b2 = (float)(1.0 - (double)a->beta2),
        .eps = a->eps,
        .wd = a->weight_decay,
        .decay = (float)(1.0 - (double)a->lr * (double)a->weight_decay),
        .step_size = (float)((double)a->lr / bc1),
        .bc2_sqrt = (float)sqrt(bc2),
        .l2 = !a->decoupled && a->weight_decay != 0.0f,
        .decoupled = a->decoupled && a->weight_decay != 0.0f,
    };
    const int64_t nchunks = (n + OPT_CHUNK - 1) / OPT_CHUNK;
#pragma omp parallel for num_threads(cpu_team(b, 4 * n)) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t lo = c * OPT_CHUNK, len = lo + OPT_CHUNK < n ? OPT_CHUNK : n - lo;
        adam_kernel(len, p + lo, g + lo, m + lo, v + lo, &k);
    }
    return 0;
}

/* Three loops rather than one with branches, so that buf is never touched
 * (not even by a speculative vector load) when momentum is 0; use_wd and
 * nesterov are constants in each instance, as Adam's flags are. */
CPU_KERNEL_BODY void sgd_loops(int64_t n, float *restrict p, const float *restrict g, float *restrict buf,
                               const eng_sgd_args *a, const bool use_wd, const bool nesterov)
{
    const float mom = a->momentum, wd = a->weight_decay, neg_lr = -a->lr;
    if (mom == 0.0f) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float d = use_wd ? g[i] + p[i] * wd : g[i]; /* grad.add(param, alpha=wd) */
            p[i] = p[i] + neg_lr * d;
        }
    } else if (a->first) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float d = use_wd ? g[i] + p[i] * wd : g[i];
            buf[i] = d; /* buf = clone(d_p) */
            p[i] = p[i] + neg_lr * (nesterov ? d + d * mom : d);
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float d = use_wd ? g[i] + p[i] * wd : g[i];
            const float bi = buf[i] * mom + d; /* buf.mul_(momentum).add_(d_p) */
            buf[i] = bi;
            p[i] = p[i] + neg_lr * (nesterov ? d + bi * mom : bi);
        }
    }
}
CPU_KERNEL_BODY void sgd_kernel_body(int64_t n, float *restrict p, const float *restrict g, float *restrict buf,
                                     const eng_sgd_args *a)
{
    const bool use_wd = a->weight_decay != 0.0f;
    if (use_wd && a->nesterov)
        sgd_loops(n, p, g, buf, a, true, true);
    else if (use_wd)
        sgd_loops(n, p, g, buf, a, true, false);
    else if (a->nesterov)
        sgd_loops(n, p, g, buf, a, false, true);
    else
        sgd_loops(n, p, g, buf, a, false, false);
}
CPU_DISPATCH_VOID(static, sgd_kernel,
                  (int64_t n, float *restrict p, const float *restrict g, float *restrict buf, const eng_sgd_args *a),
                  (n, p, g, buf, a))

int cpu_sgd_step(eng_backend *b, int64_t n, float *p, const float *g, float *buf, const eng_sgd_args *a)
{
    CPU_NONNULL("sgd_step", a);
    CPU_CHECK(n >= 0, "cpu sgd_step: n = %lld is negative", (long long)n);
    if (n == 0)
        return 0;
    CPU_NONNULL("sgd_step", p);
    CPU_NONNULL("sgd_step", g);
    if (a->momentum != 0.0f)
        CPU_NONNULL("sgd_step", buf);
    const int64_t nchunks = (n + OPT_CHUNK - 1) / OPT_CHUNK;
#pragma omp parallel for num_threads(cpu_team(b, 4 * n)) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t lo = c * OPT_CHUNK, len = lo + OPT_CHUNK < n ? OPT_CHUNK : n - lo;
        sgd_kernel(len, p + lo, g + lo, buf ? buf + lo : NULL, a);
    }
    return 0;
}

CPU_KERNEL_BODY double sumsq_kernel_body(int64_t n, const float *restrict x)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * (double)x[i];
    return s;
}
CPU_DISPATCH(static, double, sumsq_kernel, (int64_t n, const float *restrict x), (n, x))

int cpu_sumsq(eng_backend *b, int64_t n, const float *x, double *sumsq)
{
    CPU_CHECK(n >= 0, "cpu sumsq: n = %lld is negative", (long long)n);
    CPU_NONNULL("sumsq", sumsq);
    if (n == 0) {
        *sumsq = 0.0;
        return 0;
    }
    CPU_NONNULL("sumsq", x);
    /* fixed chunks summed in chunk order: the same bits with any thread count */
    const int64_t nchunks = (n + OPT_CHUNK - 1) / OPT_CHUNK;
    double *part = malloc((size_t)nchunks * sizeof *part);
    if (!part)
        return eng_error(ENG_ENOMEM, "cpu sumsq: out of memory");
#pragma omp parallel for num_threads(cpu_team(b, n)) schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t lo = c * OPT_CHUNK, len = lo + OPT_CHUNK < n ? OPT_CHUNK : n - lo;
        part[c] = sumsq_kernel(len, x + lo);
    }
    double s = 0.0;
    for (int64_t c = 0; c < nchunks; c++)
        s += part[c];
    free(part);
    *sumsq = s;
    return 0;
}

CPU_KERNEL_BODY void scale_kernel_body(int64_t n, float *restrict g, float coef)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        g[i] *= coef;
}
CPU_DISPATCH_VOID(static, scale_kernel, (int64_t n, float *restrict g, float coef), (n, g, coef))

int cpu_clip_by_norm(eng_backend *b, int64_t n, float *g, const double *sumsq, float max_norm)
{
    CPU_CHECK(n >= 0, "cpu clip_by_norm: n = %lld is negative", (long long)n);
    CPU_NONNULL("clip_by_norm", sumsq);
    CPU_CHECK(max_norm > 0.0f, "cpu clip_by_norm: max_norm %g must be positive", (double)max_norm);
    if (n == 0)
        return 0;
    CPU_NONNULL("clip_by_norm", g);
    const double coef = (double)max_norm / (sqrt(*sumsq) + 1e-6);
    if (!(coef < 1.0))
        return 0;
    const float c = (float)coef;
    const int64_t nchunks = (n + OPT_CHUNK - 1) / OPT_CHUNK;
#pragma omp parallel for num_threads(cpu_team(b, n)) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t lo = k * OPT_CHUNK, len = lo + OPT_CHUNK < n ? OPT_CHUNK : n - lo;
        scale_kernel(len, g + lo, c);
    }
    return 0;
}
