/* Layer normalisation over a tensor viewed as (outer, n, inner): statistics
 * per (o, i) over j < n; gamma and beta have n entries indexed by j.
 *
 * inner == 1 is a norm over contiguous rows (the last dimension); inner > 1
 * normalises over a middle dimension, with the inner index vectorised. Mean
 * and variance are computed in double by two passes over the (cache-resident)
 * row; the mean is subtracted as two floats (high and low part) so that a
 * mean large against the spread costs no digits.
 *
 * The gamma/beta gradients are sums over every (o, i), in an order that does
 * not depend on the thread count. With a short gamma they are reduced over
 * fixed chunks of `outer` and combined in chunk order. A long gamma (a norm
 * over a whole (S, C) plane, as the mixer's final norm) would need chunks x n
 * partial sums - 196 MB and a serial combine for mlp_mixer_B2 at batch 500,
 * 50x the forward's time - so from LN_COLUMN_MIN_N entries they are summed
 * per block of columns instead, each block walking `outer` in order. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "engine/cpu/cpu_internal.h"

#define LN_CHUNK_ELEMS ((int64_t)1 << 15)
#define LN_MAX_CHUNKS 256
#define LN_COLUMN_MIN_N 1024 /* from here dgamma/dbeta are summed per column block */
#define LN_COLUMN_BLOCK 256

static int ln_check(const char *op, const eng_norm_desc *d)
{
    CPU_NONNULL(op, d);
    CPU_CHECK(d->outer >= 0 && d->n >= 1 && d->inner >= 1, "cpu %s: bad view (outer %lld, n %lld, inner %lld)", op,
              (long long)d->outer, (long long)d->n, (long long)d->inner);
    CPU_CHECK(d->eps >= 0.0f, "cpu %s: eps %g is negative", op, (double)d->eps);
    return 0;
}

static int64_t ln_chunk(const eng_norm_desc *d)
{
    const int64_t per_o = d->n * d->inner;
    return cpu_chunk_size(d->outer, (LN_CHUNK_ELEMS + per_o - 1) / per_o, LN_MAX_CHUNKS);
}

/* One row: x (n), contiguous. */
CPU_KERNEL_BODY void ln_row_forward_body(int64_t n, float eps, const float *restrict x, const float *restrict gamma,
                                      const float *restrict beta, float *restrict y, float *mean_out,
                                      float *rstd_out)
{
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++)
        s += (double)x[j];
    const double mean = s / (double)n;
    double q = 0.0;
#pragma omp simd reduction(+ : q)
    for (int64_t j = 0; j < n; j++) {
        const double v = (double)x[j] - mean;
        q += v * v;
    }
    const double rstd = 1.0 / sqrt(q / (double)n + (double)eps);
    const float m = (float)mean, ml = (float)(mean - (double)m), r = (float)rstd;
    if (gamma) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            y[j] = ((x[j] - m) - ml) * r * gamma[j] + beta[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++)
            y[j] = ((x[j] - m) - ml) * r;
    }
    if (mean_out)
        *mean_out = m;
    if (rstd_out)
        *rstd_out = r;
}
CPU_DISPATCH_VOID(static, ln_row_forward,
                  (int64_t n, float eps, const float *restrict x, const float *restrict gamma,
                   const float *restrict beta, float *restrict y, float *mean_out, float *rstd_out),
                  (n, eps, x, gamma, beta, y, mean_out, rstd_out))

/* One outer slice x (n, inner); acc is 4*inner doubles of scratch. */
CPU_KERNEL_BODY void ln_slice_forward_body(int64_t n, int64_t inner, float eps, const float *restrict x,
                                        const float *restrict gamma, const float *restrict beta, float *restrict y,
                                        float *restrict mean_out, float *restrict rstd_out, double *restrict acc)
{
    double *restrict mu = acc, *restrict q = acc + inner;
    for (int64_t i = 0; i < inner; i++)
        mu[i] = q[i] = 0.0;
    for (int64_t j = 0; j < n; j++) {
        const float *restrict r = x + j * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++)
            mu[i] += (double)r[i];
    }
    const double inv_n = 1.0 / (double)n;
#pragma omp simd
    for (int64_t i = 0; i < inner; i++)
        mu[i] *= inv_n;
    for (int64_t j = 0; j < n; j++) {
        const float *restrict r = x + j * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++) {
            const double v = (double)r[i] - mu[i];
            q[i] += v * v;
        }
    }
    for (int64_t i = 0; i < inner; i++) {
        const double rs = 1.0 / sqrt(q[i] * inv_n + (double)eps);
        q[i] = rs;
        if (mean_out)
            mean_out[i] = (float)mu[i];
        if (rstd_out)
            rstd_out[i] = (float)rs;
    }
    /* float copies for the vectorised normalisation, after the doubles */
    float *restrict mf = (float *)(acc + 2 * inner), *restrict ml = mf + inner, *restrict rf = ml + inner;
    for (int64_t i = 0; i < inner; i++) {
        const float m = (float)mu[i], r = (float)q[i];
        mf[i] = m;
        ml[i] = (float)(mu[i] - (double)m);
        rf[i] = r;
    }
    for (int64_t j = 0; j < n; j++) {
        const float *restrict r = x + j * inner;
        float *restrict w = y + j * inner;
        const float gj = gamma ? gamma[j] : 1.0f, bj = gamma ? beta[j] : 0.0f;
#pragma omp simd
        for (int64_t i = 0; i < inner; i++)
            w[i] = ((r[i] - mf[i]) - ml[i]) * rf[i] * gj + bj;
    }
}
CPU_DISPATCH_VOID(static, ln_slice_forward,
                  (int64_t n, int64_t inner, float eps, const float *restrict x, const float *restrict gamma,
                   const float *restrict beta, float *restrict y, float *restrict mean_out, float *restrict rstd_out,
                   double *restrict acc),
                  (n, inner, eps, x, gamma, beta, y, mean_out, rstd_out, acc))

int cpu_layernorm_forward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                          const float *beta, float *y, float *save_mean, float *save_rstd)
{
    int rc = ln_check("layernorm_forward", d);
    if (rc < 0)
        return rc;
    CPU_CHECK((gamma == NULL) == (beta == NULL), "cpu layernorm_forward: gamma and beta must both be set or both NULL");
    if (d->outer == 0)
        return 0;
    CPU_NONNULL("layernorm_forward", x);
    CPU_NONNULL("layernorm_forward", y);
    const int64_t n = d->n, inner = d->inner, total = d->outer * n * inner;
    if (inner == 1) {
        const int64_t rows = d->outer;
#pragma omp parallel for num_threads(cpu_team(b, total)) schedule(static)
        for (int64_t r = 0; r < rows; r++)
            ln_row_forward(n, d->eps, x + r * n, gamma, beta, y + r * n, save_mean ? save_mean + r : NULL,
                           save_rstd ? save_rstd + r : NULL);
        return 0;
    }
    const int team = cpu_team(b, total);
    double *acc = malloc((size_t)(team * 4 * inner) * sizeof *acc);
    if (!acc)
        return eng_error(ENG_ENOMEM, "cpu layernorm_forward: out of memory");
#pragma omp parallel num_threads(team)
    {
        double *mine = acc + (int64_t)omp_get_thread_num() * 4 * inner;
#pragma omp for schedule(static)
        for (int64_t o = 0; o < d->outer; o++)
            ln_slice_forward(n, inner, d->eps, x + o * n * inner, gamma, beta, y + o * n * inner,
                             save_mean ? save_mean + o * inner : NULL, save_rstd ? save_rstd + o * inner : NULL,
                             mine);
    }
    free(acc);
    return 0;
}

/* The float32 forward, a slice (or a block of rows) at a time into the
 * thread's scratch while it is in cache, then packed to bf16: the bits of
 * layernorm_forward rounded, with no float32 copy in memory. */
int cpu_layernorm_forward_bf16(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                               const float *beta, uint16_t *y16, int64_t tb, float *save_mean, float *save_rstd)
{
    int rc = ln_check("layernorm_forward_bf16", d);
    if (rc < 0)
        return rc;
    CPU_CHECK((gamma == NULL) == (beta == NULL),
              "cpu layernorm_forward_bf16: gamma and beta must both be set or both NULL");
    if (d->outer == 0)
        return 0;
    CPU_NONNULL("layernorm_forward_bf16", x);
    CPU_NONNULL("layernorm_forward_bf16", y16);
    const int64_t n = d->n, inner = d->inner, per_o = n * inner, total = d->outer * per_o;
    cpu_bf16_out out;
    rc = cpu_bf16_out_init("layernorm_forward_bf16", y16, d->outer, n, inner, tb, &out);
    if (rc < 0)
        return rc;
    /* a block of whole slices, about LN_CHUNK_ELEMS floats */
    const int64_t per_blk = per_o >= LN_CHUNK_ELEMS ? 1 : LN_CHUNK_ELEMS / per_o;
    const int64_t nblk = (d->outer + per_blk - 1) / per_blk;
    const int team = cpu_team(b, total);
    /* the floats, then the slice kernel's 4 * inner doubles; multiples of 16
     * floats keep every thread's doubles aligned */
    const int64_t yn = (per_blk * per_o + 15) / 16 * 16, scratch_n = yn + (8 * inner + 15) / 16 * 16;
    float *scratch = malloc((size_t)(team * scratch_n) * sizeof *scratch);
    if (!scratch)
        return eng_error(ENG_ENOMEM, "cpu layernorm_forward_bf16: out of memory");
#pragma omp parallel num_threads(team)
    {
        float *yf = scratch + (int64_t)omp_get_thread_num() * scratch_n;
        double *acc = (double *)(void *)(yf + yn);
#pragma omp for schedule(static)
        for (int64_t k = 0; k < nblk; k++) {
            const int64_t o0 = k * per_blk, o1 = o0 + per_blk < d->outer ? o0 + per_blk : d->outer;
            for (int64_t o = o0; o < o1; o++) {
                float *yo = yf + (o - o0) * per_o;
                if (inner == 1)
                    ln_row_forward(n, d->eps, x + o * n, gamma, beta, yo, save_mean ? save_mean + o : NULL,
                                   save_rstd ? save_rstd + o : NULL);
                else
                    ln_slice_forward(n, inner, d->eps, x + o * per_o, gamma, beta, yo,
                                     save_mean ? save_mean + o * inner : NULL,
                                     save_rstd ? save_rstd + o * inner : NULL, acc);
            }
            cpu_bf16_pack_out(&out, o0 * per_o, (o1 - o0) * per_o, yf);
        }
    }
    free(scratch);
    return 0;
}

/* Backward of one row (inner == 1); adds to the chunk's dgamma/dbeta sums
 * pg, pb (double, n entries) when they are set; dx may be NULL; res, when
 * set, is added to dx (after the rounding of dx, as a separate add would). */
CPU_KERNEL_BODY void ln_row_backward_body(int64_t n, const float *restrict x, const float *restrict dy,
                                       const float *restrict gamma, float mean, float rstd, float *restrict dx,
                                       const float *restrict res, double *restrict pg, double *restrict pb)
{
    /* g = dy * gamma, xhat = (x - mean) * rstd;
     * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) */
    double sg = 0.0, sgx = 0.0;
    if (gamma && pg) {
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t j = 0; j < n; j++) {
            const float xh = (x[j] - mean) * rstd;
            const double g = (double)(dy[j] * gamma[j]);
            sg += g;
            sgx += g * (double)xh;
            pg[j] += (double)(dy[j] * xh);
            pb[j] += (double)dy[j];
        }
    } else if (gamma) {
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t j = 0; j < n; j++) {
            const float xh = (x[j] - mean) * rstd;
            const double g = (double)(dy[j] * gamma[j]);
            sg += g;
            sgx += g * (double)xh;
        }
    } else {
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t j = 0; j < n; j++) {
            const float xh = (x[j] - mean) * rstd;
            const double g = (double)dy[j];
            sg += g;
            sgx += g * (double)xh;
        }
    }
    if (!dx)
        return;
    const float mg = (float)(sg / (double)n), mgx = (float)(sgx / (double)n);
    if (gamma && res) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            const float xh = (x[j] - mean) * rstd;
            const float v = rstd * (dy[j] * gamma[j] - mg - xh * mgx);
            dx[j] = v + res[j];
        }
    } else if (gamma) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            const float xh = (x[j] - mean) * rstd;
            dx[j] = rstd * (dy[j] * gamma[j] - mg - xh * mgx);
        }
    } else if (res) {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            const float xh = (x[j] - mean) * rstd;
            const float v = rstd * (dy[j] - mg - xh * mgx);
            dx[j] = v + res[j];
        }
    } else {
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            const float xh = (x[j] - mean) * rstd;
            dx[j] = rstd * (dy[j] - mg - xh * mgx);
        }
    }
}
CPU_DISPATCH_VOID(static, ln_row_backward,
                  (int64_t n, const float *restrict x, const float *restrict dy, const float *restrict gamma,
                   float mean, float rstd, float *restrict dx, const float *restrict res, double *restrict pg,
                   double *restrict pb),
                  (n, x, dy, gamma, mean, rstd, dx, res, pg, pb))

/* Backward of one outer slice (n, inner); acc: 3*inner doubles of scratch;
 * adds to pg, pb when they are set; dx may be NULL; res as in the row's. */
CPU_KERNEL_BODY void ln_slice_backward_body(int64_t n, int64_t inner, const float *restrict x, const float *restrict dy,
                                         const float *restrict gamma, const float *restrict mean,
                                         const float *restrict rstd, float *restrict dx, const float *restrict res,
                                         double *restrict pg, double *restrict pb, double *restrict acc)
{
    double *restrict sg = acc, *restrict sgx = acc + inner;
    for (int64_t i = 0; i < inner; i++)
        sg[i] = sgx[i] = 0.0;
    for (int64_t j = 0; j < n; j++) {
        const float *restrict xr = x + j * inner, *restrict gr = dy + j * inner;
        const float gj = gamma ? gamma[j] : 1.0f;
        double gsum = 0.0, gxsum = 0.0;
#pragma omp simd reduction(+ : gsum, gxsum)
        for (int64_t i = 0; i < inner; i++) {
            const float xh = (xr[i] - mean[i]) * rstd[i];
            const double g = (double)(gr[i] * gj);
            sg[i] += g;
            sgx[i] += g * (double)xh;
            gsum += (double)gr[i];
            gxsum += (double)(gr[i] * xh);
        }
        if (pg) {
            pg[j] += gxsum;
            pb[j] += gsum;
        }
    }
    if (!dx)
        return;
    const double inv_n = 1.0 / (double)n;
    float *restrict mg = (float *)(acc + 2 * inner), *restrict mgx = mg + inner;
    for (int64_t i = 0; i < inner; i++) {
        const float a = (float)(sg[i] * inv_n), c = (float)(sgx[i] * inv_n);
        mg[i] = a;
        mgx[i] = c;
    }
    for (int64_t j = 0; j < n; j++) {
        const float *restrict xr = x + j * inner, *restrict gr = dy + j * inner;
        float *restrict dr = dx + j * inner;
        const float gj = gamma ? gamma[j] : 1.0f;
        if (res) {
            const float *restrict rr = res + j * inner;
#pragma omp simd
            for (int64_t i = 0; i < inner; i++) {
                const float xh = (xr[i] - mean[i]) * rstd[i];
                const float v = rstd[i] * (gr[i] * gj - mg[i] - xh * mgx[i]);
                dr[i] = v + rr[i];
            }
            continue;
        }
#pragma omp simd
        for (int64_t i = 0; i < inner; i++) {
            const float xh = (xr[i] - mean[i]) * rstd[i];
            dr[i] = rstd[i] * (gr[i] * gj - mg[i] - xh * mgx[i]);
        }
    }
}
CPU_DISPATCH_VOID(static, ln_slice_backward,
                  (int64_t n, int64_t inner, const float *restrict x, const float *restrict dy,
                   const float *restrict gamma, const float *restrict mean, const float *restrict rstd,
                   float *restrict dx, const float *restrict res, double *restrict pg, double *restrict pb,
                   double *restrict acc),
                  (n, inner, x, dy, gamma, mean, rstd, dx, res, pg, pb, acc))

/* dgamma, dbeta for the columns [j0, j0 + w) (w <= LN_COLUMN_BLOCK): each
 * a double sum over o, then i, the same terms the chunked path adds. */
CPU_KERNEL_BODY void ln_param_grad_columns_body(const eng_norm_desc *d, const float *restrict x,
                                             const float *restrict dy, const float *restrict mean,
                                             const float *restrict rstd, int64_t j0, int64_t w,
                                             float *restrict dgamma, float *restrict dbeta)
{
    const int64_t n = d->n, inner = d->inner;
    double sg[LN_COLUMN_BLOCK], sb[LN_COLUMN_BLOCK];
    for (int64_t k = 0; k < w; k++)
        sg[k] = sb[k] = 0.0;
    for (int64_t o = 0; o < d->outer; o++) {
        if (inner == 1) {
            const float m = mean[o], r = rstd[o];
            const float *restrict xr = x + o * n + j0, *restrict gr = dy + o * n + j0;
#pragma omp simd
            for (int64_t k = 0; k < w; k++) {
                const float xh = (xr[k] - m) * r;
                sg[k] += (double)(gr[k] * xh);
                sb[k] += (double)gr[k];
            }
            continue;
        }
        const float *restrict mo = mean + o * inner, *restrict ro = rstd + o * inner;
        for (int64_t k = 0; k < w; k++) {
            const float *restrict xr = x + (o * n + j0 + k) * inner, *restrict gr = dy + (o * n + j0 + k) * inner;
            double a = 0.0, c = 0.0;
#pragma omp simd reduction(+ : a, c)
            for (int64_t i = 0; i < inner; i++) {
                const float xh = (xr[i] - mo[i]) * ro[i];
                a += (double)(gr[i] * xh);
                c += (double)gr[i];
            }
            sg[k] += a;
            sb[k] += c;
        }
    }
    for (int64_t k = 0; k < w; k++) {
        dgamma[j0 + k] = (float)sg[k];
        dbeta[j0 + k] = (float)sb[k];
    }
}
CPU_DISPATCH_VOID(static, ln_param_grad_columns,
                  (const eng_norm_desc *d, const float *restrict x, const float *restrict dy,
                   const float *restrict mean, const float *restrict rstd, int64_t j0, int64_t w,
                   float *restrict dgamma, float *restrict dbeta),
                  (d, x, dy, mean, rstd, j0, w, dgamma, dbeta))

/* dx = the norm's input gradient (+ res when res is set) */
static int ln_backward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy, const float *gamma,
                       const float *save_mean, const float *save_rstd, const float *res, float *dx, uint16_t *dx16,
                       int64_t tb, float *dgamma, float *dbeta)
{
    int rc = ln_check("layernorm_backward", d);
    if (rc < 0)
        return rc;
    const int64_t n = d->n, inner = d->inner, total = d->outer * n * inner;
    if (gamma) {
        CPU_NONNULL("layernorm_backward", dgamma);
        CPU_NONNULL("layernorm_backward", dbeta);
    }
    if (d->outer == 0) {
        for (int64_t j = 0; gamma && j < n; j++)
            dgamma[j] = dbeta[j] = 0.0f;
        return 0;
    }
    CPU_NONNULL("layernorm_backward", x);
    CPU_NONNULL("layernorm_backward", dy);
    CPU_NONNULL("layernorm_backward", save_mean);
    CPU_NONNULL("layernorm_backward", save_rstd);
    if (!dx && !gamma)
        return 0; /* nothing wanted */
    cpu_bf16_out out16;
    if (dx16 && (rc = cpu_bf16_out_init("layernorm_backward_add", dx16, d->outer, n, inner, tb, &out16)) < 0)
        return rc;

    const int64_t chunk = ln_chunk(d), nchunks = (d->outer + chunk - 1) / chunk;
    const bool by_columns = gamma && n >= LN_COLUMN_MIN_N;
    double *part = gamma && !by_columns ? calloc((size_t)(nchunks * 2 * n), sizeof *part) : NULL;
    const int team = nchunks > 1 ? cpu_team(b, total) : 1;
    double *acc = inner > 1 ? malloc((size_t)(team * 3 * inner) * sizeof *acc) : NULL;
    if ((gamma && !by_columns && !part) || (inner > 1 && !acc)) {
        free(part);
        free(acc);
        return eng_error(ENG_ENOMEM, "cpu layernorm_backward: out of memory");
    }
#pragma omp parallel num_threads(team)
    {
        double *mine = acc ? acc + (int64_t)omp_get_thread_num() * 3 * inner : NULL;
#pragma omp for schedule(static)
        for (int64_t k = 0; k < nchunks; k++) {
            const int64_t o0 = k * chunk, o1 = o0 + chunk < d->outer ? o0 + chunk : d->outer;
            double *pg = part ? part + k * 2 * n : NULL, *pb = part ? part + k * 2 * n + n : NULL;
            for (int64_t o = o0; o < o1; o++) {
                const int64_t off = o * n * inner;
                float *dxo = dx ? dx + off : NULL;
                const float *reso = res ? res + off : NULL;
                if (inner == 1)
                    ln_row_backward(n, x + off, dy + off, gamma, save_mean[o], save_rstd[o], dxo, reso, pg, pb);
                else
                    ln_slice_backward(n, inner, x + off, dy + off, gamma, save_mean + o * inner,
                                      save_rstd + o * inner, dxo, reso, pg, pb, mine);
                if (dx16) /* from the row or slice just written, in cache */
                    cpu_bf16_pack_out(&out16, off, n * inner, dxo);
            }
        }
    }
    if (by_columns) {
        const int64_t nblocks = (n + LN_COLUMN_BLOCK - 1) / LN_COLUMN_BLOCK;
#pragma omp parallel for num_threads(nblocks > 1 ? cpu_team(b, total) : 1) schedule(static)
        for (int64_t k = 0; k < nblocks; k++) {
            const int64_t j0 = k * LN_COLUMN_BLOCK, w = n - j0 < LN_COLUMN_BLOCK ? n - j0 : LN_COLUMN_BLOCK;
            ln_param_grad_columns(d, x, dy, save_mean, save_rstd, j0, w, dgamma, dbeta);
        }
    } else if (gamma) {
        for (int64_t j = 0; j < n; j++) {
            double sg = 0.0, sb = 0.0;
            for (int64_t k = 0; k < nchunks; k++) {
                sg += part[k * 2 * n + j];
                sb += part[k * 2 * n + n + j];
            }
            dgamma[j] = (float)sg;
            dbeta[j] = (float)sb;
        }
    }
    free(part);
    free(acc);
    return 0;
}

int cpu_layernorm_backward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                           const float *gamma, const float *save_mean, const float *save_rstd, float *dx,
                           float *dgamma, float *dbeta)
{
    return ln_backward(b, d, x, dy, gamma, save_mean, save_rstd, NULL, dx, NULL, 0, dgamma, dbeta);
}

/* The residual's gradient joins in the pass that writes dx: the mixer's
 * dx = LN'(dy) + dy_skip without a separate trip through memory. */
int cpu_layernorm_backward_add(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                               const float *gamma, const float *save_mean, const float *save_rstd,
                               const float *res, float *dx, uint16_t *dx16, int64_t tb, float *dgamma,
                               float *dbeta)
{
    CPU_NONNULL("layernorm_backward_add", res);
    CPU_NONNULL("layernorm_backward_add", dx);
    const int64_t total = d ? d->outer * d->n * d->inner : 0;
    CPU_CHECK(res + total <= dx || dx + total <= res, "cpu layernorm_backward_add: res overlaps dx");
    if (dx16 && !cpu_bf16(b))
        return eng_error(ENG_ENOTSUP, "cpu layernorm_backward_add: a bf16 copy of dx is for precision bf16");
    return ln_backward(b, d, x, dy, gamma, save_mean, save_rstd, res, dx, dx16, tb, dgamma, dbeta);
}
