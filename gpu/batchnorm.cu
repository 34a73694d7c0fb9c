// Batch normalisation over a tensor viewed as (outer, n, inner): statistics
// per channel j over all (o, i) by the deterministic two-stage reduction of
// chanred.cuh (sums in double), then elementwise kernels. BatchNorm2d on
// NCHW is (N, C, H*W); BatchNorm1d on (B, F) is (B, F, 1), i.e. spatial
// batch norm on an N x F x 1 x 1 tensor, which the same code covers.
// Own kernels rather than cuDNN's: deterministic, any eps, no scale/bias
// tensors needed for the non-affine case, and the same code for all layouts.
#include <math.h>

#include "gpu/chanred.cuh"
#include "gpu/hd.h"

// Per-channel constants, kept in the scratch's result area (16 bytes per
// channel): forward y = ((x - m) - ml) * a + c, with the mean split into a
// float m and its remainder ml (as the CPU backend does, so a large mean
// loses nothing); backward dx = (dy - (x - mean) * kk - mdy) * sc.
// Multiplies and adds unfused: the same rounding as the CPU's loops.

struct gpu_bn_stats {
    const float *x;
    __host__ __device__ void operator()(int64_t, int64_t, int64_t, int64_t idx, double &a0, double &a1) const
    {
        const double v = x[idx];
        a0 += v;
        a1 += v * v;
    }
};

struct gpu_bn_stats_store {
    double cnt;
    float eps, momentum;
    const float *gamma, *beta;
    float *save_mean, *save_invstd, *running_mean, *running_var;
    float4 *aff;
    __host__ __device__ void operator()(int64_t j, double a0, double a1) const
    {
        const double mean = a0 / cnt;
        double var = a1 / cnt - mean * mean; // biased, for the normalisation
        if (var < 0.0)
            var = 0.0;
        const double invstd = 1.0 / sqrt(var + (double)eps);
        const float mf = (float)mean;
        const double g = gamma ? (double)gamma[j] : 1.0;
        aff[j] = make_float4(mf, (float)(mean - (double)mf), (float)(g * invstd), beta ? beta[j] : 0.0f);
        save_mean[j] = mf;
        save_invstd[j] = (float)invstd;
        if (running_mean) { // in double, rounded once (as the CPU backend)
            const double m = (double)momentum;
            const double unbiased = cnt > 1.0 ? var * cnt / (cnt - 1.0) : var;
            running_mean[j] = (float)((1.0 - m) * (double)running_mean[j] + m * mean);
            running_var[j] = (float)((1.0 - m) * (double)running_var[j] + m * unbiased);
        }
    }
};

template <class I>
__global__ void gpu_bn_apply(I total, I n, I inner, const float *x, const float4 *aff, float *y)
{
    for (I t = (I)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (I)gridDim.x * blockDim.x) {
        const float4 f = aff[(t / inner) % n];
        y[t] = GPU_FADD(GPU_FMUL((x[t] - f.x) - f.y, f.z), f.w);
    }
}

__global__ void gpu_bn_eval_consts(int64_t n, float eps, const float *rm, const float *rv, const float *gamma,
                                   const float *beta, float4 *aff)
{
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < n; j += (int64_t)gridDim.x * blockDim.x) {
        const double invstd = 1.0 / sqrt((double)rv[j] + (double)eps);
        const double g = gamma ? (double)gamma[j] : 1.0;
        aff[j] = make_float4(rm[j], 0.0f, (float)(g * invstd), beta ? beta[j] : 0.0f);
    }
}

struct gpu_bn_grads {
    const float *x, *dy, *mean;
    __host__ __device__ void operator()(int64_t, int64_t j, int64_t, int64_t idx, double &a0, double &a1) const
    {
        const double d = dy[idx];
        a0 += d;
        a1 += d * ((double)x[idx] - (double)mean[j]);
    }
};

struct gpu_bn_grads_store {
    double cnt;
    const float *gamma, *invstd;
    float *dgamma, *dbeta;
    float4 *aff;
    __host__ __device__ void operator()(int64_t j, double sdy, double sdyx) const
    {
        const double is = (double)invstd[j], g = gamma ? (double)gamma[j] : 1.0;
        aff[j] = make_float4((float)(sdyx / cnt * is * is), (float)(sdy / cnt), (float)(is * g), 0.0f);
        if (gamma) {
            dgamma[j] = (float)(sdyx * is);
            dbeta[j] = (float)sdy;
        }
    }
};

template <class I>
__global__ void gpu_bn_dx(I total, I n, I inner, const float *x, const float *dy, const float *mean,
                          const float4 *aff, float *dx)
{
    for (I t = (I)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (I)gridDim.x * blockDim.x) {
        const I j = (t / inner) % n;
        const float4 f = aff[j]; // kk, mdy, sc
        const float u = GPU_FADD(dy[t], -GPU_FMUL(x[t] - mean[j], f.x));
        dx[t] = GPU_FMUL(u - f.y, f.z);
    }
}

static int bn_apply(gpu_ctx *g, int64_t total, const eng_norm_desc *d, const float *x, const float4 *aff, float *y)
{
    if (gpu_fits_u32(total)) {
        gpu_bn_apply<uint32_t><<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(
            (uint32_t)total, (uint32_t)d->n, (uint32_t)d->inner, x, aff, y);
        GPU_LAUNCHED(gpu_bn_apply<uint32_t>);
    } else {
        gpu_bn_apply<int64_t><<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(total, d->n, d->inner, x, aff, y);
        GPU_LAUNCHED(gpu_bn_apply<int64_t>);
    }
    return 0;
}

static int bn_check(const char *op, const eng_norm_desc *d)
{
    if (!d || d->outer < 0 || d->n < 1 || d->inner < 0 || !(d->eps >= 0.0f))
        return eng_error(ENG_EINVAL, "%s: bad description (outer %lld, n %lld, inner %lld, eps %g)", op,
                         d ? (long long)d->outer : 0LL, d ? (long long)d->n : 0LL, d ? (long long)d->inner : 0LL,
                         d ? (double)d->eps : 0.0);
    return 0;
}

extern "C" int gpu_batchnorm_forward_train(gpu_ctx *g, const eng_norm_desc *d, const float *x, const float *gamma,
                                           const float *beta, float *y, float *running_mean, float *running_var,
                                           float *save_mean, float *save_invstd)
{
    int rc = bn_check("batchnorm_forward_train", d);
    if (rc < 0)
        return rc;
    if (d->outer * d->inner < 2)
        return eng_error(ENG_EINVAL, "batchnorm_forward_train: expected more than 1 value per channel (outer %lld, inner %lld)",
                         (long long)d->outer, (long long)d->inner);
    if (!x || !y || !save_mean || !save_invstd || (!gamma != !beta) || (!running_mean != !running_var))
        return eng_error(ENG_EINVAL, "batchnorm_forward_train: NULL tensor");
    const double cnt = (double)(d->outer * d->inner);
    float4 *aff = (float4 *)gpu_chan_results(g);
    rc = gpu_chan_reduce(g, "batchnorm_forward_train", d->outer, d->n, d->inner, gpu_bn_stats{x},
                         gpu_bn_stats_store{cnt, d->eps, d->momentum, gamma, beta, save_mean, save_invstd,
                                            running_mean, running_var, aff});
    if (rc < 0)
        return rc;
    const int64_t total = d->outer * d->n * d->inner;
    return bn_apply(g, total, d, x, aff, y);
}

extern "C" int gpu_batchnorm_forward_eval(gpu_ctx *g, const eng_norm_desc *d, const float *x, const float *gamma,
                                          const float *beta, const float *running_mean, const float *running_var,
                                          float *y)
{
    int rc = bn_check("batchnorm_forward_eval", d);
    if (rc < 0)
        return rc;
    if (!running_mean || !running_var || (!gamma != !beta))
        return eng_error(ENG_EINVAL, "batchnorm_forward_eval: NULL tensor");
    const int64_t total = d->outer * d->n * d->inner;
    if (total == 0)
        return 0;
    if (!x || !y)
        return eng_error(ENG_EINVAL, "batchnorm_forward_eval: NULL tensor");
    if ((size_t)d->n * 2 > g->scratch_doubles)
        return eng_error(ENG_ELIMIT, "batchnorm_forward_eval: %lld channels exceed the scratch", (long long)d->n);
    float4 *aff = (float4 *)gpu_chan_results(g);
    gpu_bn_eval_consts<<<gpu_blocks(d->n, 128), 128, 0, g->stream>>>(d->n, d->eps, running_mean, running_var, gamma,
                                                                     beta, aff);
    GPU_LAUNCHED(gpu_bn_eval_consts);
    return bn_apply(g, total, d, x, aff, y);
}

extern "C" int gpu_batchnorm_backward(gpu_ctx *g, const eng_norm_desc *d, const float *x, const float *dy,
                                      const float *gamma, const float *save_mean, const float *save_invstd,
                                      float *dx, float *dgamma, float *dbeta)
{
    int rc = bn_check("batchnorm_backward", d);
    if (rc < 0)
        return rc;
    if (d->outer * d->inner < 1)
        return eng_error(ENG_EINVAL, "batchnorm_backward: empty batch");
    if (!x || !dy || !save_mean || !save_invstd || (gamma && (!dgamma || !dbeta)))
        return eng_error(ENG_EINVAL, "batchnorm_backward: NULL tensor");
    const double cnt = (double)(d->outer * d->inner);
    float4 *aff = (float4 *)gpu_chan_results(g);
    rc = gpu_chan_reduce(g, "batchnorm_backward", d->outer, d->n, d->inner, gpu_bn_grads{x, dy, save_mean},
                         gpu_bn_grads_store{cnt, gamma, save_invstd, dgamma, dbeta, aff});
    if (rc < 0 || !dx)
        return rc;
    const int64_t total = d->outer * d->n * d->inner;
    if (gpu_fits_u32(total)) {
        gpu_bn_dx<uint32_t><<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(
            (uint32_t)total, (uint32_t)d->n, (uint32_t)d->inner, x, dy, save_mean, aff, dx);
        GPU_LAUNCHED(gpu_bn_dx<uint32_t>);
    } else {
        gpu_bn_dx<int64_t><<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(total, d->n, d->inner, x, dy,
                                                                              save_mean, aff, dx);
        GPU_LAUNCHED(gpu_bn_dx<int64_t>);
    }
    return 0;
}
