/* Naive double-precision references for test_cpu_ops.c (see cpu_ref.h). */
#include "cpu_ref.h"

#include <math.h>
#include <stdlib.h>

void ref_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double *A, int64_t lda,
              const double *B, int64_t ldb, double beta, double *C, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0.0;
            for (int64_t p = 0; p < k; p++) {
                const double a = ta ? A[p * lda + i] : A[i * lda + p];
                const double b = tb ? B[j * ldb + p] : B[p * ldb + j];
                s += a * b;
            }
            C[i * ldc + j] = alpha * s + (beta == 0.0 ? 0.0 : beta * C[i * ldc + j]);
        }
}

int64_t ref_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad)
{
    return (in + 2 * pad - kernel) / stride + 1;
}

void ref_conv2d(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t kh, int64_t kw, int64_t stride,
                int64_t pad, const double *x, const double *wt, const double *bias, double *y)
{
    const int64_t oh = ref_out_size(h, kh, stride, pad), ow = ref_out_size(w, kw, stride, pad);
    for (int64_t b = 0; b < n; b++)
        for (int64_t o = 0; o < k; o++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    double s = bias ? bias[o] : 0.0;
                    for (int64_t ci = 0; ci < c; ci++)
                        for (int64_t ky = 0; ky < kh; ky++)
                            for (int64_t kx = 0; kx < kw; kx++) {
                                const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                    continue;
                                s += x[((b * c + ci) * h + iy) * w + ix] * wt[((o * c + ci) * kh + ky) * kw + kx];
                            }
                    y[((b * k + o) * oh + oy) * ow + ox] = s;
                }
}

void ref_pool(bool is_max, bool count_include_pad, int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh,
              int64_t kw, int64_t stride, int64_t pad, const double *x, double *y)
{
    const int64_t oh = ref_out_size(h, kh, stride, pad), ow = ref_out_size(w, kw, stride, pad);
    for (int64_t p = 0; p < n * c; p++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                double m = -INFINITY, s = 0.0;
                int64_t cnt = 0;
                for (int64_t ky = 0; ky < kh; ky++)
                    for (int64_t kx = 0; kx < kw; kx++) {
                        const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                            continue;
                        const double v = x[(p * h + iy) * w + ix];
                        if (v > m)
                            m = v;
                        s += v;
                        cnt++;
                    }
                y[(p * oh + oy) * ow + ox] = is_max ? m : s / (double)(count_include_pad ? kh * kw : cnt);
            }
}

void ref_batchnorm_train(int64_t outer, int64_t n, int64_t inner, double eps, const double *x, const double *gamma,
                         const double *beta, double *y, double *mean, double *var)
{
    const double cnt = (double)(outer * inner);
    for (int64_t j = 0; j < n; j++) {
        double s = 0.0;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++)
                s += x[(o * n + j) * inner + i];
        const double mu = s / cnt;
        double q = 0.0;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                const double d = x[(o * n + j) * inner + i] - mu;
                q += d * d;
            }
        const double v = q / cnt;
        if (mean)
            mean[j] = mu;
        if (var)
            var[j] = v;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                const int64_t at = (o * n + j) * inner + i;
                const double xh = (x[at] - mu) / sqrt(v + eps);
                y[at] = gamma ? gamma[j] * xh + beta[j] : xh;
            }
    }
}

void ref_batchnorm_eval(int64_t outer, int64_t n, int64_t inner, double eps, const double *x, const double *gamma,
                        const double *beta, const double *rmean, const double *rvar, double *y)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < inner; i++) {
                const int64_t at = (o * n + j) * inner + i;
                const double xh = (x[at] - rmean[j]) / sqrt(rvar[j] + eps);
                y[at] = gamma ? gamma[j] * xh + beta[j] : xh;
            }
}

void ref_layernorm(int64_t outer, int64_t n, int64_t inner, double eps, const double *x, const double *gamma,
                   const double *beta, double *y, double *mean, double *rstd)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double s = 0.0;
            for (int64_t j = 0; j < n; j++)
                s += x[(o * n + j) * inner + i];
            const double mu = s / (double)n;
            double q = 0.0;
            for (int64_t j = 0; j < n; j++) {
                const double d = x[(o * n + j) * inner + i] - mu;
                q += d * d;
            }
            const double r = 1.0 / sqrt(q / (double)n + eps);
            if (mean)
                mean[o * inner + i] = mu;
            if (rstd)
                rstd[o * inner + i] = r;
            for (int64_t j = 0; j < n; j++) {
                const int64_t at = (o * n + j) * inner + i;
                const double xh = (x[at] - mu) * r;
                y[at] = gamma ? gamma[j] * xh + beta[j] : xh;
            }
        }
}

double ref_act(int kind, double slope, double x)
{
    switch (kind) {
    case 1: return x > 0.0 ? x : 0.0;
    case 2: return x > 0.0 ? x : slope * x;
    case 3: return 0.5 * x * erfc(-x / sqrt(2.0)); /* = x Phi(x); 1 + erf(.) would cancel for x << 0 */
    case 4: return 1.0 / (1.0 + exp(-x));
    case 5: return tanh(x);
    default: return x;
    }
}

void ref_softmax(int64_t rows, int64_t n, const double *x, double *y)
{
    for (int64_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (int64_t j = 0; j < n; j++)
            s += exp(x[r * n + j]);
        for (int64_t j = 0; j < n; j++)
            y[r * n + j] = exp(x[r * n + j]) / s;
    }
}

double ref_xent(int64_t rows, int64_t classes, int64_t k, const double *logits, const int32_t *labels,
                double *hits)
{
    double loss = 0.0;
    *hits = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const double *x = logits + r * classes;
        double s = 0.0;
        for (int64_t j = 0; j < classes; j++)
            s += exp(x[j]);
        loss += log(s) - x[labels[r]];
        /* sort the class indices by (logit descending, index ascending) */
        int64_t *order = malloc((size_t)classes * sizeof *order);
        for (int64_t j = 0; j < classes; j++)
            order[j] = j;
        for (int64_t a = 1; a < classes; a++)
            for (int64_t b = a; b > 0; b--) {
                const int64_t p = order[b - 1], q = order[b];
                const bool swap = x[q] > x[p] || (x[q] == x[p] && q < p);
                if (!swap)
                    break;
                order[b - 1] = q;
                order[b] = p;
            }
        for (int64_t j = 0; j < k && j < classes; j++)
            if (order[j] == labels[r])
                *hits += 1.0;
        free(order);
    }
    return loss;
}

void ref_transpose(int64_t batch, int64_t rows, int64_t cols, const double *x, double *y)
{
    for (int64_t i = 0; i < batch; i++)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++)
                y[(i * cols + c) * rows + r] = x[(i * rows + r) * cols + c];
}

void ref_mean_lastdim(int64_t rows, int64_t n, const double *x, double *y)
{
    for (int64_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (int64_t j = 0; j < n; j++)
            s += x[r * n + j];
        y[r] = s / (double)n;
    }
}

void ref_bias_add(int64_t outer, int64_t n, int64_t inner, const double *y0, const double *bias, double *y)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < inner; i++)
                y[(o * n + j) * inner + i] = y0[(o * n + j) * inner + i] + bias[j];
}

void ref_patchify(int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const double *x, double *y)
{
    const int64_t pw = w / p, S = (h / p) * pw, F = c * p * p;
    for (int64_t b = 0; b < n; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t f = 0; f < F; f++) {
                const int64_t a = s / pw, bq = s % pw;
                const int64_t ci = f / (p * p), py = (f / p) % p, px = f % p;
                y[(b * S + s) * F + f] = x[((b * c + ci) * h + a * p + py) * w + bq * p + px];
            }
}
