// Batch normalisation over a tensor viewed as (outer, n, inner): statistics
// per channel j over all (o, i) by the deterministic two-stage reduction of
// chanred.cuh (sums in double), then elementwise kernels. BatchNorm2d on
// NCHW is (N, C, H*W); BatchNorm1d on (B, F) is (B, F, 1), i.e. spatial
// batch norm on an N x F x 1 x 1 tensor, which the same code covers.
// Own kernels rather than cuDNN's: deterministic, any eps, no scale/bias
// tensors needed for the non-affine case, and the same code for all layouts.
#include <math.h>

#include "gpu/chanred.cuh"

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
    float *save_mean, *save_invstd, *running_mean, *running_var;
    __host__ __device__ void operator()(int64_t j, double a0, double a1) const
    {
        const double mean = a0 / cnt;
        double var = a1 / cnt - mean * mean; // biased, for the normalisation
        if (var < 0.0)
            var = 0.0;
        save_mean[j] = (float)mean;
        save_invstd[j] = (float)(1.0 / sqrt(var + (double)eps));
        if (running_mean)
            running_mean[j] = (1.0f - momentum) * running_mean[j] + momentum * (float)mean;
        if (running_var) {
            const double unbiased = cnt > 1.0 ? var * cnt / (cnt - 1.0) : var;
            running_var[j] = (1.0f - momentum) * running_var[j] + momentum * (float)unbiased;
        }
    }
};

__global__ void gpu_bn_apply(int64_t total, int64_t n, int64_t inner, const float *x, const float *mean,
                             const float *invstd, const float *gamma, const float *beta, float *y)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = (t / inner) % n;
        const float xh = (x[t] - mean[j]) * invstd[j];
        y[t] = gamma ? xh * gamma[j] + beta[j] : xh;
    }
}

__global__ void gpu_bn_eval(int64_t total, int64_t n, int64_t inner, float eps, const float *x, const float *rm,
                            const float *rv, const float *gamma, const float *beta, float *y)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = (t / inner) % n;
        const float xh = (x[t] - rm[j]) * (1.0f / sqrtf(rv[j] + eps));
        y[t] = gamma ? xh * gamma[j] + beta[j] : xh;
    }
}

struct gpu_bn_grads {
    const float *x, *dy, *mean, *invstd;
    __host__ __device__ void operator()(int64_t, int64_t j, int64_t, int64_t idx, double &a0, double &a1) const
    {
        const float xh = (x[idx] - mean[j]) * invstd[j];
        const float d = dy[idx];
        a0 += d;
        a1 += (double)d * xh;
    }
};

struct gpu_bn_grads_store {
    double2 *res;
    float *dgamma, *dbeta;
    __host__ __device__ void operator()(int64_t j, double a0, double a1) const
    {
        res[j] = make_double2(a0, a1);
        if (dgamma)
            dgamma[j] = (float)a1;
        if (dbeta)
            dbeta[j] = (float)a0;
    }
};

// dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))
__global__ void gpu_bn_dx(int64_t total, int64_t n, int64_t inner, double cnt, const float *x, const float *dy,
                          const float *mean, const float *invstd, const float *gamma, const double2 *res, float *dx)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = (t / inner) % n;
        const float xh = (x[t] - mean[j]) * invstd[j];
        const float mdy = (float)(res[j].x / cnt), mdyx = (float)(res[j].y / cnt);
        const float gk = (gamma ? gamma[j] : 1.0f) * invstd[j];
        dx[t] = gk * (dy[t] - mdy - xh * mdyx);
    }
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
    rc = gpu_chan_reduce(g, "batchnorm_forward_train", d->outer, d->n, d->inner, gpu_bn_stats{x},
                         gpu_bn_stats_store{cnt, d->eps, d->momentum, save_mean, save_invstd, running_mean,
                                            running_var});
    if (rc < 0)
        return rc;
    const int64_t total = d->outer * d->n * d->inner;
    gpu_bn_apply<<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(total, d->n, d->inner, x, save_mean, save_invstd,
                                                                   gamma, beta, y);
    GPU_LAUNCHED(gpu_bn_apply);
    return 0;
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
    gpu_bn_eval<<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(total, d->n, d->inner, d->eps, x, running_mean,
                                                                  running_var, gamma, beta, y);
    GPU_LAUNCHED(gpu_bn_eval);
    return 0;
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
    double2 *res = gpu_chan_results(g);
    rc = gpu_chan_reduce(g, "batchnorm_backward", d->outer, d->n, d->inner,
                         gpu_bn_grads{x, dy, save_mean, save_invstd},
                         gpu_bn_grads_store{res, gamma ? dgamma : NULL, gamma ? dbeta : NULL});
    if (rc < 0 || !dx)
        return rc;
    const int64_t total = d->outer * d->n * d->inner;
    const double cnt = (double)(d->outer * d->inner);
    gpu_bn_dx<<<gpu_blocks(total), GPU_THREADS, 0, g->stream>>>(total, d->n, d->inner, cnt, x, dy, save_mean,
                                                                save_invstd, gamma, res, dx);
    GPU_LAUNCHED(gpu_bn_dx);
    return 0;
}
