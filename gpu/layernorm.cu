// Layer normalisation over a tensor viewed as (outer, n, inner): statistics
// per (o, i) over j < n, gamma/beta indexed by j. Two layouts of kernels:
// inner == 1 (normalising contiguous rows: a warp per row, or a block for
// rows longer than GPU_WARP_ROW_MAX such as the seed's norm over a whole
// (S, C) plane) and inner > 1 (the seed's token-mixing norm over S of a
// (B, S, C) tensor: a thread per (o, i), consecutive threads on consecutive
// i so the strided walk over j stays coalesced). Two-pass statistics in
// double. dgamma/dbeta use the per-channel reduction of chanred.cuh.
#include <math.h>

#include "gpu/chanred.cuh"
#include "gpu/hd.h"

template <int TPR>
__global__ void gpu_ln_fwd_rows(int64_t rows, int64_t n, float eps, const float *x, const float *gamma,
                                const float *beta, float *y, float *save_mean, float *save_rstd)
{
    const int rpb = blockDim.x / TPR;
    const int64_t r = (int64_t)blockIdx.x * rpb + threadIdx.x / TPR;
    const int lane = threadIdx.x % TPR;
    if (r >= rows)
        return;
    const float *xr = x + r * n;
    float *yr = y + r * n;
    double s = 0.0;
    for (int64_t j = lane; j < n; j += TPR)
        s += xr[j];
    const double mean = gpu_row_sum<TPR>(s) / (double)n;
    double q = 0.0;
    for (int64_t j = lane; j < n; j += TPR) {
        const double dv = xr[j] - mean;
        q += dv * dv;
    }
    const double var = gpu_row_sum<TPR>(q) / (double)n;
    const float mf = (float)mean, rf = (float)(1.0 / sqrt(var + (double)eps));
    for (int64_t j = lane; j < n; j += TPR) {
        const float xh = (xr[j] - mf) * rf;
        yr[j] = gamma ? GPU_FADD(GPU_FMUL(xh, gamma[j]), beta[j]) : xh;
    }
    if (lane == 0 && save_mean)
        save_mean[r] = mf;
    if (lane == 0 && save_rstd)
        save_rstd[r] = rf;
}

__global__ void gpu_ln_fwd_cols(int64_t outer, int64_t n, int64_t inner, float eps, const float *x,
                                const float *gamma, const float *beta, float *y, float *save_mean, float *save_rstd)
{
    const int64_t total = outer * inner;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t o = t / inner, i = t - o * inner;
        const float *xc = x + o * n * inner + i;
        float *yc = y + o * n * inner + i;
        double s = 0.0;
        for (int64_t j = 0; j < n; j++)
            s += xc[j * inner];
        const double mean = s / (double)n;
        double q = 0.0;
        for (int64_t j = 0; j < n; j++) {
            const double dv = xc[j * inner] - mean;
            q += dv * dv;
        }
        const float mf = (float)mean, rf = (float)(1.0 / sqrt(q / (double)n + (double)eps));
        for (int64_t j = 0; j < n; j++) {
            const float xh = (xc[j * inner] - mf) * rf;
            yc[j * inner] = gamma ? GPU_FADD(GPU_FMUL(xh, gamma[j]), beta[j]) : xh;
        }
        if (save_mean)
            save_mean[t] = mf;
        if (save_rstd)
            save_rstd[t] = rf;
    }
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma
template <int TPR>
__global__ void gpu_ln_bwd_rows(int64_t rows, int64_t n, const float *x, const float *dy, const float *gamma,
                                const float *save_mean, const float *save_rstd, float *dx)
{
    const int rpb = blockDim.x / TPR;
    const int64_t r = (int64_t)blockIdx.x * rpb + threadIdx.x / TPR;
    const int lane = threadIdx.x % TPR;
    if (r >= rows)
        return;
    const float *xr = x + r * n, *dyr = dy + r * n;
    float *dxr = dx + r * n;
    const float mf = save_mean[r], rf = save_rstd[r];
    double sg = 0.0, sgx = 0.0;
    for (int64_t j = lane; j < n; j += TPR) {
        const float gj = gamma ? dyr[j] * gamma[j] : dyr[j];
        sg += gj;
        sgx += (double)gj * ((xr[j] - mf) * rf);
    }
    const float mg = (float)(gpu_row_sum<TPR>(sg) / (double)n);
    const float mgx = (float)(gpu_row_sum<TPR>(sgx) / (double)n);
    for (int64_t j = lane; j < n; j += TPR) {
        const float gj = gamma ? dyr[j] * gamma[j] : dyr[j];
        const float xh = (xr[j] - mf) * rf;
        dxr[j] = rf * GPU_FADD(gj - mg, -GPU_FMUL(xh, mgx));
    }
}

__global__ void gpu_ln_bwd_cols(int64_t outer, int64_t n, int64_t inner, const float *x, const float *dy,
                                const float *gamma, const float *save_mean, const float *save_rstd, float *dx)
{
    const int64_t total = outer * inner;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t o = t / inner, i = t - o * inner;
        const int64_t base = o * n * inner + i;
        const float mf = save_mean[t], rf = save_rstd[t];
        double sg = 0.0, sgx = 0.0;
        for (int64_t j = 0; j < n; j++) {
            const int64_t e = base + j * inner;
            const float gj = gamma ? dy[e] * gamma[j] : dy[e];
            sg += gj;
            sgx += (double)gj * ((x[e] - mf) * rf);
        }
        const float mg = (float)(sg / (double)n), mgx = (float)(sgx / (double)n);
        for (int64_t j = 0; j < n; j++) {
            const int64_t e = base + j * inner;
            const float gj = gamma ? dy[e] * gamma[j] : dy[e];
            const float xh = (x[e] - mf) * rf;
            dx[e] = rf * GPU_FADD(gj - mg, -GPU_FMUL(xh, mgx));
        }
    }
}

struct gpu_ln_param_grads {
    const float *x, *dy, *mean, *rstd;
    int64_t inner;
    __host__ __device__ void operator()(int64_t o, int64_t, int64_t i, int64_t idx, double &a0, double &a1) const
    {
        const int64_t s = o * inner + i;
        const float d = dy[idx];
        a0 += (double)(d * ((x[idx] - mean[s]) * rstd[s]));
        a1 += d;
    }
};

struct gpu_ln_param_store {
    float *dgamma, *dbeta;
    __host__ __device__ void operator()(int64_t j, double a0, double a1) const
    {
        if (dgamma)
            dgamma[j] = (float)a0;
        if (dbeta)
            dbeta[j] = (float)a1;
    }
};

static int ln_check(const char *op, const eng_norm_desc *d)
{
    if (!d || d->outer < 0 || d->n < 1 || d->inner < 1 || !(d->eps >= 0.0f))
        return eng_error(ENG_EINVAL, "%s: bad description (outer %lld, n %lld, inner %lld, eps %g)", op,
                         d ? (long long)d->outer : 0LL, d ? (long long)d->n : 0LL, d ? (long long)d->inner : 0LL,
                         d ? (double)d->eps : 0.0);
    return 0;
}

extern "C" int gpu_layernorm_forward(gpu_ctx *g, const eng_norm_desc *d, const float *x, const float *gamma,
                                     const float *beta, float *y, float *save_mean, float *save_rstd)
{
    int rc = ln_check("layernorm_forward", d);
    if (rc < 0)
        return rc;
    if (!gamma != !beta)
        return eng_error(ENG_EINVAL, "layernorm_forward: gamma and beta must both be set or both NULL");
    if (d->outer == 0)
        return 0;
    if (!x || !y)
        return eng_error(ENG_EINVAL, "layernorm_forward: NULL tensor");
    if (d->inner == 1 && d->n <= GPU_WARP_ROW_MAX) {
        gpu_ln_fwd_rows<32><<<(unsigned)gpu_ceil_div(d->outer, 8), 256, 0, g->stream>>>(
            d->outer, d->n, d->eps, x, gamma, beta, y, save_mean, save_rstd);
        GPU_LAUNCHED(gpu_ln_fwd_rows<32>);
    } else if (d->inner == 1) {
        gpu_ln_fwd_rows<256><<<(unsigned)d->outer, 256, 0, g->stream>>>(d->outer, d->n, d->eps, x, gamma, beta, y,
                                                                        save_mean, save_rstd);
        GPU_LAUNCHED(gpu_ln_fwd_rows<256>);
    } else {
        const int64_t total = d->outer * d->inner;
        gpu_ln_fwd_cols<<<gpu_blocks(total, 128), 128, 0, g->stream>>>(d->outer, d->n, d->inner, d->eps, x, gamma,
                                                                       beta, y, save_mean, save_rstd);
        GPU_LAUNCHED(gpu_ln_fwd_cols);
    }
    return 0;
}

extern "C" int gpu_layernorm_backward(gpu_ctx *g, const eng_norm_desc *d, const float *x, const float *dy,
                                      const float *gamma, const float *save_mean, const float *save_rstd, float *dx,
                                      float *dgamma, float *dbeta)
{
    int rc = ln_check("layernorm_backward", d);
    if (rc < 0)
        return rc;
    if (d->outer == 0)
        return 0;
    if (!x || !dy || !save_mean || !save_rstd)
        return eng_error(ENG_EINVAL, "layernorm_backward: NULL tensor");
    // parameter gradients first: dx may alias dy
    if (gamma && (dgamma || dbeta)) {
        rc = gpu_chan_reduce(g, "layernorm_backward", d->outer, d->n, d->inner,
                             gpu_ln_param_grads{x, dy, save_mean, save_rstd, d->inner},
                             gpu_ln_param_store{dgamma, dbeta});
        if (rc < 0)
            return rc;
    }
    if (!dx)
        return 0;
    if (d->inner == 1 && d->n <= GPU_WARP_ROW_MAX) {
        gpu_ln_bwd_rows<32><<<(unsigned)gpu_ceil_div(d->outer, 8), 256, 0, g->stream>>>(d->outer, d->n, x, dy, gamma,
                                                                                       save_mean, save_rstd, dx);
        GPU_LAUNCHED(gpu_ln_bwd_rows<32>);
    } else if (d->inner == 1) {
        gpu_ln_bwd_rows<256><<<(unsigned)d->outer, 256, 0, g->stream>>>(d->outer, d->n, x, dy, gamma, save_mean,
                                                                        save_rstd, dx);
        GPU_LAUNCHED(gpu_ln_bwd_rows<256>);
    } else {
        const int64_t total = d->outer * d->inner;
        gpu_ln_bwd_cols<<<gpu_blocks(total, 128), 128, 0, g->stream>>>(d->outer, d->n, d->inner, x, dy, gamma,
                                                                       save_mean, save_rstd, dx);
        GPU_LAUNCHED(gpu_ln_bwd_cols);
    }
    return 0;
}
