/* Batch normalisation over a tensor viewed as (outer, n, inner): statistics
 * per j < n over all (outer, inner).
 *
 * Statistics are accumulated in double, of values shifted by one sample of
 * their channel (which removes most of the cancellation in E[x^2] - E[x]^2),
 * over fixed chunks of `outer` whose partial sums are combined in chunk
 * order: the result does not depend on the thread count. The normalisation
 * itself is y = ((x - mhi[j]) - mlo[j]) * a[j] + beta[j] with a = gamma *
 * invstd and the double mean split into two floats: not x * a + c, nor one
 * rounded mean, which both lose digits when the mean is large against the
 * spread (inputs around 1000 with unit spread keep 1e-6 instead of 1e-3).
 *
 * With d->blocked every tensor is in the blocked layout oneDNN's
 * convolutions compute in (backend.h, ENG_BLOCK16): the kernels run over
 * the 16 channels of a pixel at a time, one vector. The same expressions
 * give the same bits per value; only the statistics' sums run in another
 * order than over NCHW. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

#define BN_CHUNK_ELEMS ((int64_t)1 << 16)
#define BN_MAX_CHUNKS 256

static int bn_check(const char *op, const eng_norm_desc *d)
{
    CPU_NONNULL(op, d);
    CPU_CHECK(d->outer >= 0 && d->n >= 1 && d->inner >= 0, "cpu %s: bad view (outer %lld, n %lld, inner %lld)", op,
              (long long)d->outer, (long long)d->n, (long long)d->inner);
    CPU_CHECK(d->eps >= 0.0f, "cpu %s: eps %g is negative", op, (double)d->eps);
    CPU_CHECK(!d->blocked || d->n % 16 == 0, "cpu %s: blocked tensors with %lld channels (expected a multiple of 16)",
              op, (long long)d->n);
    return 0;
}

/* Channels of few positions each (the 3x3 planes of the seed CNNs' last
 * layers: inner 9) run as the inner == 1 case over n * inner "channels",
 * the per-channel constants repeated for each position: loops of 9 values
 * per channel vectorise poorly. The reductions' partial sums are then
 * folded per channel, in a fixed order. */
#define BN_FLAT_INNER 16

static bool bn_flat(const eng_norm_desc *d) { return !d->blocked && d->inner > 1 && d->inner < BN_FLAT_INNER; }

/* The view the kernels run on: d itself, or its flat form. */
static eng_norm_desc bn_view(const eng_norm_desc *d)
{
    eng_norm_desc v = *d;
    if (bn_flat(d)) {
        v.n = d->n * d->inner;
        v.inner = 1;
    }
    return v;
}

/* Per-channel constants for view v: c itself, or each repeated inner times
 * into out (v.n floats). */
static const float *bn_spread(const eng_norm_desc *d, const float *c, float *out)
{
    if (!bn_flat(d) || !c)
        return c;
    for (int64_t j = 0; j < d->n; j++)
        for (int64_t i = 0; i < d->inner; i++)
            out[j * d->inner + i] = c[j];
    return out;
}

/* Channel j's two sums from the chunks' partial sums (2 v.n doubles each). */
static void bn_fold(const eng_norm_desc *d, const double *part, int64_t nchunks, int64_t j, double *s1, double *s2)
{
    const int64_t per = bn_flat(d) ? d->inner : 1, nv = d->n * per;
    double a = 0.0, q = 0.0;
    for (int64_t k = 0; k < nchunks; k++)
        for (int64_t i = 0; i < per; i++) {
            a += part[k * 2 * nv + j * per + i];
            q += part[k * 2 * nv + nv + j * per + i];
        }
    *s1 = a;
    *s2 = q;
}

/* Chunks of `outer` for the reductions. */
static int64_t bn_chunk(const eng_norm_desc *d)
{
    const int64_t per_o = d->n * d->inner;
    return cpu_chunk_size(d->outer, (BN_CHUNK_ELEMS + per_o - 1) / per_o, BN_MAX_CHUNKS);
}

/* relu(v) as cpu_act_forward computes it, so that the fused pass gives its bits */
static inline float bn_relu(float v) { return v < 0.0f ? 0.0f : v; }

/* The normalised value, one expression for the forward pass and for the
 * backward pass that finds the relu's mask again (v > 0 exactly where
 * relu(v) > 0): the same operations on the same floats, the same bits. */
static inline float bn_norm(float x, float m, float ml, float a, float c) { return ((x - m) - ml) * a + c; }

/* The relu after a batchnorm, as its backward pass sees it: the forward's
 * per-channel constants (mean high and low part, scale, shift); m NULL:
 * no relu. */
typedef struct bn_relu_mask {
    const float *m, *ml, *a, *c;
} bn_relu_mask;

/* dy where the relu passed it, else 0 (act_backward's relu) */
static inline float bn_masked(float g, float x, float m, float ml, float a, float c)
{
    return bn_norm(x, m, ml, a, c) > 0.0f ? g : 0.0f;
}

/* ---- over the blocked layout: 16 channels of a pixel at a time ----
 *
 * One GCC vector holds a pixel's 16 channels, and the per-channel
 * constants are loaded into vectors once per block of channels: loaded
 * from memory at every pixel instead (as a loop over the 16 lanes
 * compiles), they ran these passes at half the speed of the NCHW ones. */

#pragma GCC diagnostic ignored "-Wpsabi" /* no vector crosses a call: all inlined */

typedef float bn_v16f __attribute__((vector_size(64)));
typedef float bn_v8f __attribute__((vector_size(32)));
typedef double bn_v8d __attribute__((vector_size(64)));
typedef int32_t bn_v16i __attribute__((vector_size(64)));

CPU_KERNEL_BODY bn_v16f bn_ld16(const float *p)
{
    bn_v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

CPU_KERNEL_BODY void bn_st16(float *p, bn_v16f v) { memcpy(p, &v, sizeof v); }

/* lanes 8 h .. 8 h + 7 of p as doubles */
CPU_KERNEL_BODY bn_v8d bn_ld8d(const float *p, int h)
{
    bn_v8f v;
    memcpy(&v, p + 8 * h, sizeof v);
    return __builtin_convertvector(v, bn_v8d);
}

/* v where keep is true, else +0 (bn_relu and bn_masked, lane by lane) */
CPU_KERNEL_BODY bn_v16f bn_where(bn_v16i keep, bn_v16f v) { return (bn_v16f)((bn_v16i)v & keep); }

/* bn_norm, lane by lane */
CPU_KERNEL_BODY bn_v16f bn16_norm(bn_v16f x, bn_v16f m, bn_v16f ml, bn_v16f a, bn_v16f c)
{
    return ((x - m) - ml) * a + c;
}

/* bn_stats_chunk_body's sums, blocked */
CPU_KERNEL_BODY void bn16_stats_chunk_body(const eng_norm_desc *d, const float *restrict x,
                                        const float *restrict shift, int64_t o0, int64_t o1, double *restrict part)
{
    const int64_t nb = d->n / 16, hw = d->inner;
    for (int64_t o = o0; o < o1; o++)
        for (int64_t cb = 0; cb < nb; cb++) {
            const float *restrict xb = x + (o * nb + cb) * hw * 16;
            const bn_v8d sh[2] = {bn_ld8d(shift + cb * 16, 0), bn_ld8d(shift + cb * 16, 1)};
            bn_v8d a[2] = {0}, q[2] = {0};
            for (int64_t p = 0; p < hw; p++)
                for (int h = 0; h < 2; h++) {
                    const bn_v8d v = bn_ld8d(xb + p * 16, h) - sh[h];
                    a[h] += v;
                    q[h] += v * v;
                }
            for (int l = 0; l < 16; l++) {
                part[cb * 16 + l] += a[l / 8][l % 8];
                part[d->n + cb * 16 + l] += q[l / 8][l % 8];
            }
        }
}

/* bn_apply_chunk_body, blocked */
CPU_KERNEL_BODY void bn16_apply_chunk_body(const eng_norm_desc *d, const float *restrict x, const float *restrict m,
                                        const float *restrict ml, const float *restrict a, const float *restrict c,
                                        int64_t o0, int64_t o1, bool relu, float *restrict y)
{
    const int64_t nb = d->n / 16, hw = d->inner;
    const bn_v16f zero = {0};
    for (int64_t o = o0; o < o1; o++)
        for (int64_t cb = 0; cb < nb; cb++) {
            const int64_t base = (o * nb + cb) * hw * 16;
            const bn_v16f mv = bn_ld16(m + cb * 16), mlv = bn_ld16(ml + cb * 16), av = bn_ld16(a + cb * 16),
                          cv = bn_ld16(c + cb * 16);
            for (int64_t p = 0; p < hw; p++) {
                const bn_v16f v = bn16_norm(bn_ld16(x + base + p * 16), mv, mlv, av, cv);
                bn_st16(y + base + p * 16, relu ? bn_where(~(v < zero), v) : v); /* bn_relu */
            }
        }
}

/* The relu's mask of a blocked pixel (bn_masked) from the constants of
 * its block; all true when there is no relu. */
typedef struct bn16_mask {
    bool on;
    bn_v16f m, ml, a, c;
} bn16_mask;

CPU_KERNEL_BODY bn16_mask bn16_mask_of(bn_relu_mask r, int64_t j0)
{
    bn16_mask k = {.on = r.m != NULL};
    if (k.on) {
        k.m = bn_ld16(r.m + j0), k.ml = bn_ld16(r.ml + j0), k.a = bn_ld16(r.a + j0), k.c = bn_ld16(r.c + j0);
    }
    return k;
}

CPU_KERNEL_BODY bn_v16f bn16_masked(const bn16_mask *k, bn_v16f g, bn_v16f x)
{
    if (!k->on)
        return g;
    const bn_v16f zero = {0};
    return bn_where(bn16_norm(x, k->m, k->ml, k->a, k->c) > zero, g);
}

/* bn_grad_chunk_body's sums, blocked */
CPU_KERNEL_BODY void bn16_grad_chunk_body(const eng_norm_desc *d, const float *restrict x, const float *restrict dy,
                                       const float *restrict mean, bn_relu_mask r, int64_t o0, int64_t o1,
                                       double *restrict part)
{
    const int64_t nb = d->n / 16, hw = d->inner;
    for (int64_t o = o0; o < o1; o++)
        for (int64_t cb = 0; cb < nb; cb++) {
            const int64_t j0 = cb * 16, base = (o * nb + cb) * hw * 16;
            const bn16_mask k = bn16_mask_of(r, j0);
            const bn_v8d mv[2] = {bn_ld8d(mean + j0, 0), bn_ld8d(mean + j0, 1)};
            bn_v8d a[2] = {0}, q[2] = {0};
            for (int64_t p = 0; p < hw; p++) {
                const float *restrict xr = x + base + p * 16;
                float g[16];
                bn_st16(g, bn16_masked(&k, bn_ld16(dy + base + p * 16), bn_ld16(xr)));
                for (int h = 0; h < 2; h++) {
                    const bn_v8d gd = bn_ld8d(g, h);
                    a[h] += gd;
                    q[h] += gd * (bn_ld8d(xr, h) - mv[h]);
                }
            }
            for (int l = 0; l < 16; l++) {
                part[j0 + l] += a[l / 8][l % 8];
                part[d->n + j0 + l] += q[l / 8][l % 8];
            }
        }
}

/* bn_dx_chunk_body, blocked */
CPU_KERNEL_BODY void bn16_dx_chunk_body(const eng_norm_desc *d, const float *restrict x, const float *restrict dy,
                                     const float *restrict mean, const float *restrict kk, const float *restrict mdy,
                                     const float *restrict sc, bn_relu_mask r, int64_t o0, int64_t o1,
                                     float *restrict dx)
{
    const int64_t nb = d->n / 16, hw = d->inner;
    for (int64_t o = o0; o < o1; o++)
        for (int64_t cb = 0; cb < nb; cb++) {
            const int64_t j0 = cb * 16, base = (o * nb + cb) * hw * 16;
            const bn16_mask k = bn16_mask_of(r, j0);
            const bn_v16f mv = bn_ld16(mean + j0), kv = bn_ld16(kk + j0), mdv = bn_ld16(mdy + j0),
                          sv = bn_ld16(sc + j0);
            for (int64_t p = 0; p < hw; p++) {
                const bn_v16f xv = bn_ld16(x + base + p * 16);
                const bn_v16f g = bn16_masked(&k, bn_ld16(dy + base + p * 16), xv);
                bn_st16(dx + base + p * 16, (g - (xv - mv) * kv - mdv) * sv);
            }
        }
}
/* part[0..n) += sum of (x - shift), part[n..2n) += sum of (x - shift)^2 over
 * outer rows [o0, o1). */
CPU_KERNEL_BODY void bn_stats_chunk_body(const eng_norm_desc *d, const float *restrict x, const float *restrict shift,
                                      int64_t o0, int64_t o1, double *restrict part)
{
    if (d->blocked) {
        bn16_stats_chunk_body(d, x, shift, o0, o1, part);
        return;
    }
    const int64_t n = d->n, inner = d->inner;
    double *restrict s1 = part, *restrict s2 = part + n;
    for (int64_t o = o0; o < o1; o++) {
        const float *restrict xo = x + o * n * inner;
        if (inner == 1) {
#pragma omp simd
            for (int64_t j = 0; j < n; j++) {
                const double v = (double)xo[j] - (double)shift[j];
                s1[j] += v;
                s2[j] += v * v;
            }
            continue;
        }
        for (int64_t j = 0; j < n; j++) {
            const float *restrict r = xo + j * inner;
            const double sh = (double)shift[j];
            double a = 0.0, q = 0.0;
#pragma omp simd reduction(+ : a, q)
            for (int64_t i = 0; i < inner; i++) {
                const double v = (double)r[i] - sh;
                a += v;
                q += v * v;
            }
            s1[j] += a;
            s2[j] += q;
        }
    }
}
CPU_DISPATCH_VOID(static, bn_stats_chunk,
                  (const eng_norm_desc *d, const float *restrict x, const float *restrict shift, int64_t o0, int64_t o1,
                   double *restrict part),
                  (d, x, shift, o0, o1, part))

/* y = ((x - m[j]) - ml[j]) * a[j] + c[j] over outer rows [o0, o1), then
 * relu(y) when asked: a following ReLU in the same trip through memory. */
CPU_KERNEL_BODY void bn_apply_chunk_body(const eng_norm_desc *d, const float *restrict x, const float *restrict m,
                                      const float *restrict ml, const float *restrict a, const float *restrict c,
                                      int64_t o0, int64_t o1, bool relu, float *restrict y)
{
    if (d->blocked) {
        bn16_apply_chunk_body(d, x, m, ml, a, c, o0, o1, relu, y);
        return;
    }
    const int64_t n = d->n, inner = d->inner;
    for (int64_t o = o0; o < o1; o++) {
        const float *restrict xo = x + o * n * inner;
        float *restrict yo = y + o * n * inner;
        if (inner == 1) {
            if (relu) {
#pragma omp simd
                for (int64_t j = 0; j < n; j++)
                    yo[j] = bn_relu(bn_norm(xo[j], m[j], ml[j], a[j], c[j]));
            } else {
#pragma omp simd
                for (int64_t j = 0; j < n; j++)
                    yo[j] = bn_norm(xo[j], m[j], ml[j], a[j], c[j]);
            }
            continue;
        }
        for (int64_t j = 0; j < n; j++) {
            const float mj = m[j], mlj = ml[j], aj = a[j], cj = c[j];
            const float *restrict r = xo + j * inner;
            float *restrict w = yo + j * inner;
            if (relu) {
#pragma omp simd
                for (int64_t i = 0; i < inner; i++)
                    w[i] = bn_relu(bn_norm(r[i], mj, mlj, aj, cj));
            } else {
#pragma omp simd
                for (int64_t i = 0; i < inner; i++)
                    w[i] = bn_norm(r[i], mj, mlj, aj, cj);
            }
        }
    }
}
CPU_DISPATCH_VOID(static, bn_apply_chunk,
                  (const eng_norm_desc *d, const float *restrict x, const float *restrict m, const float *restrict ml,
                   const float *restrict a, const float *restrict c, int64_t o0, int64_t o1, bool relu,
                   float *restrict y),
                  (d, x, m, ml, a, c, o0, o1, relu, y))

/* Runs bn_apply_chunk over all of outer. */
static void bn_apply(const eng_backend *b, const eng_norm_desc *d, const float *x, const float *m, const float *ml,
                     const float *a, const float *c, bool relu, float *y)
{
    const int64_t chunk = bn_chunk(d), nchunks = (d->outer + chunk - 1) / chunk;
#pragma omp parallel for num_threads(cpu_team(b, d->outer * d->n * d->inner)) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t o0 = k * chunk, o1 = o0 + chunk < d->outer ? o0 + chunk : d->outer;
        bn_apply_chunk(d, x, m, ml, a, c, o0, o1, relu, y);
    }
}

static int bn_forward_train(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                            const float *beta, float *y, float *running_mean, float *running_var, float *save_mean,
                            float *save_invstd, float *save_apply, bool relu)
{
    int rc = bn_check(relu ? "batchnorm_relu_forward_train" : "batchnorm_forward_train", d);
    if (rc < 0)
        return rc;
    const int64_t n = d->n, count = d->outer * d->inner;
    CPU_CHECK(count > 1, "cpu batchnorm_forward_train: expected more than 1 value per channel (outer %lld, inner %lld)",
              (long long)d->outer, (long long)d->inner);
    CPU_NONNULL("batchnorm_forward_train", x);
    CPU_NONNULL("batchnorm_forward_train", y);
    CPU_CHECK((gamma == NULL) == (beta == NULL),
              "cpu batchnorm_forward_train: gamma and beta must both be set or both NULL");
    CPU_CHECK((running_mean == NULL) == (running_var == NULL),
              "cpu batchnorm_forward_train: running_mean and running_var must both be set or both NULL");

    const eng_norm_desc v = bn_view(d);
    const int64_t chunk = bn_chunk(&v), nchunks = (d->outer + chunk - 1) / chunk;
    /* part: nchunks x (2 v.n) sums; shift, a, c, mean (high, low): n floats
     * each, then the same five spread over v.n */
    double *part = calloc((size_t)(nchunks * 2 * v.n), sizeof *part);
    float *fbuf = malloc((size_t)(5 * (n + v.n)) * sizeof *fbuf);
    if (!part || !fbuf) {
        free(part);
        free(fbuf);
        return eng_error(ENG_ENOMEM, "cpu batchnorm_forward_train: out of memory");
    }
    float *shift = fbuf, *a = fbuf + n, *c = fbuf + 2 * n, *mf = fbuf + 3 * n, *ml = fbuf + 4 * n;
    float *spread = fbuf + 5 * n;
    for (int64_t j = 0; j < n; j++) /* sample 0's first value of channel j */
        shift[j] = d->blocked ? x[(j / 16) * d->inner * 16 + j % 16] : x[j * d->inner];
    const float *vshift = bn_spread(d, shift, spread);

#pragma omp parallel for num_threads(nchunks > 1 ? cpu_team(b, count * n) : 1) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t o0 = k * chunk, o1 = o0 + chunk < d->outer ? o0 + chunk : d->outer;
        bn_stats_chunk(&v, x, vshift, o0, o1, part + k * 2 * v.n);
    }

    const double inv_count = 1.0 / (double)count;
    for (int64_t j = 0; j < n; j++) {
        double s1, s2;
        bn_fold(d, part, nchunks, j, &s1, &s2);
        const double dm = s1 * inv_count; /* mean - shift */
        double var = s2 * inv_count - dm * dm;
        if (var < 0.0)
            var = 0.0;
        const double mean = (double)shift[j] + dm;
        const double invstd = 1.0 / sqrt(var + (double)d->eps);
        const double g = gamma ? (double)gamma[j] : 1.0, bt = beta ? (double)beta[j] : 0.0;
        a[j] = (float)(g * invstd);
        c[j] = (float)bt;
        mf[j] = (float)mean;
        ml[j] = (float)(mean - (double)mf[j]);
        if (save_mean)
            save_mean[j] = (float)mean;
        if (save_invstd)
            save_invstd[j] = (float)invstd;
        if (running_mean) {
            const double m = (double)d->momentum;
            const double unbiased = var * (double)count / (double)(count - 1);
            running_mean[j] = (float)((1.0 - m) * (double)running_mean[j] + m * mean);
            running_var[j] = (float)((1.0 - m) * (double)running_var[j] + m * unbiased);
        }
    }
    free(part);
    bn_apply(b, &v, x, bn_spread(d, mf, spread), bn_spread(d, ml, spread + v.n), bn_spread(d, a, spread + 2 * v.n),
             bn_spread(d, c, spread + 3 * v.n), relu, y);
    if (save_apply) { /* the mean's float is save_mean's, c is beta: ml and a suffice */
        memcpy(save_apply, ml, (size_t)n * sizeof *ml);
        memcpy(save_apply + n, a, (size_t)n * sizeof *a);
    }
    free(fbuf);
    return 0;
}

int cpu_batchnorm_forward_train(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                const float *beta, float *y, float *running_mean, float *running_var,
                                float *save_mean, float *save_invstd)
{
    return bn_forward_train(b, d, x, gamma, beta, y, running_mean, running_var, save_mean, save_invstd, NULL,
                            false);
}

int cpu_batchnorm_relu_forward_train(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                     const float *beta, float *y, float *running_mean, float *running_var,
                                     float *save_mean, float *save_invstd, float *save_apply)
{
    return bn_forward_train(b, d, x, gamma, beta, y, running_mean, running_var, save_mean, save_invstd, save_apply,
                            true);
}

static int bn_forward_eval(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                           const float *beta, const float *running_mean, const float *running_var, float *y,
                           bool relu)
{
    int rc = bn_check("batchnorm_forward_eval", d);
    if (rc < 0)
        return rc;
    CPU_NONNULL("batchnorm_forward_eval", running_mean);
    CPU_NONNULL("batchnorm_forward_eval", running_var);
    CPU_CHECK((gamma == NULL) == (beta == NULL),
              "cpu batchnorm_forward_eval: gamma and beta must both be set or both NULL");
    if (d->outer == 0 || d->inner == 0)
        return 0;
    CPU_NONNULL("batchnorm_forward_eval", x);
    CPU_NONNULL("batchnorm_forward_eval", y);
    const int64_t n = d->n;
    float *a = malloc((size_t)(3 * n) * sizeof *a);
    if (!a)
        return eng_error(ENG_ENOMEM, "cpu batchnorm_forward_eval: out of memory");
    float *c = a + n, *zero = a + 2 * n;
    for (int64_t j = 0; j < n; j++) {
        const double invstd = 1.0 / sqrt((double)running_var[j] + (double)d->eps);
        const double g = gamma ? (double)gamma[j] : 1.0;
        a[j] = (float)(g * invstd);
        c[j] = beta ? beta[j] : 0.0f;
        zero[j] = 0.0f;
    }
    const eng_norm_desc v = bn_view(d);
    float *spread = bn_flat(d) ? malloc((size_t)(4 * v.n) * sizeof *spread) : NULL;
    if (bn_flat(d) && !spread) {
        free(a);
        return eng_error(ENG_ENOMEM, "cpu batchnorm_forward_eval: out of memory");
    }
    bn_apply(b, &v, x, bn_spread(d, running_mean, spread), bn_spread(d, zero, spread + v.n),
             bn_spread(d, a, spread + 2 * v.n), bn_spread(d, c, spread + 3 * v.n), relu, y);
    free(spread);
    free(a);
    return 0;
}

int cpu_batchnorm_forward_eval(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                               const float *beta, const float *running_mean, const float *running_var, float *y)
{
    return bn_forward_eval(b, d, x, gamma, beta, running_mean, running_var, y, false);
}

int cpu_batchnorm_relu_forward_eval(eng_backend *b, const eng_norm_desc *d, const float *x, const float *gamma,
                                    const float *beta, const float *running_mean, const float *running_var, float *y)
{
    return bn_forward_eval(b, d, x, gamma, beta, running_mean, running_var, y, true);
}

/* part[0..n) += sum dy, part[n..2n) += sum dy * (x - mean) over [o0, o1),
 * dy masked by the relu r when r.m is set. */
CPU_KERNEL_BODY void bn_grad_chunk_body(const eng_norm_desc *d, const float *restrict x, const float *restrict dy,
                                     const float *restrict mean, bn_relu_mask r, int64_t o0, int64_t o1,
                                     double *restrict part)
{
    if (d->blocked) {
        bn16_grad_chunk_body(d, x, dy, mean, r, o0, o1, part);
        return;
    }
    const int64_t n = d->n, inner = d->inner;
    double *restrict s1 = part, *restrict s2 = part + n;
    for (int64_t o = o0; o < o1; o++) {
        const float *restrict xo = x + o * n * inner, *restrict go = dy + o * n * inner;
        if (inner == 1) {
            if (r.m) {
#pragma omp simd
                for (int64_t j = 0; j < n; j++) {
                    const double g = (double)bn_masked(go[j], xo[j], r.m[j], r.ml[j], r.a[j], r.c[j]);
                    s1[j] += g;
                    s2[j] += g * ((double)xo[j] - (double)mean[j]);
                }
                continue;
            }
#pragma omp simd
            for (int64_t j = 0; j < n; j++) {
                const double g = (double)go[j];
                s1[j] += g;
                s2[j] += g * ((double)xo[j] - (double)mean[j]);
            }
            continue;
        }
        for (int64_t j = 0; j < n; j++) {
            const float *restrict xr = xo + j * inner, *restrict gr = go + j * inner;
            const double m = (double)mean[j];
            double a = 0.0, q = 0.0;
            if (r.m) {
                const float rm = r.m[j], rml = r.ml[j], ra = r.a[j], rc = r.c[j];
#pragma omp simd reduction(+ : a, q)
                for (int64_t i = 0; i < inner; i++) {
                    const double g = (double)bn_masked(gr[i], xr[i], rm, rml, ra, rc);
                    a += g;
                    q += g * ((double)xr[i] - m);
                }
            } else {
#pragma omp simd reduction(+ : a, q)
                for (int64_t i = 0; i < inner; i++) {
                    const double g = (double)gr[i];
                    a += g;
                    q += g * ((double)xr[i] - m);
                }
            }
            s1[j] += a;
            s2[j] += q;
        }
    }
}
CPU_DISPATCH_VOID(static, bn_grad_chunk,
                  (const eng_norm_desc *d, const float *restrict x, const float *restrict dy,
                   const float *restrict mean, bn_relu_mask r, int64_t o0, int64_t o1, double *restrict part),
                  (d, x, dy, mean, r, o0, o1, part))

/* dx = (dy - (x - mean) * k - mdy) * s, per channel constants k, mdy, s;
 * dy masked by the relu r when r.m is set. */
CPU_KERNEL_BODY void bn_dx_chunk_body(const eng_norm_desc *d, const float *restrict x, const float *restrict dy,
                                   const float *restrict mean, const float *restrict kk, const float *restrict mdy,
                                   const float *restrict sc, bn_relu_mask r, int64_t o0, int64_t o1,
                                   float *restrict dx)
{
    if (d->blocked) {
        bn16_dx_chunk_body(d, x, dy, mean, kk, mdy, sc, r, o0, o1, dx);
        return;
    }
    const int64_t n = d->n, inner = d->inner;
    for (int64_t o = o0; o < o1; o++) {
        const int64_t base = o * n * inner;
        if (inner == 1) {
            if (r.m) {
#pragma omp simd
                for (int64_t j = 0; j < n; j++) {
                    const float g = bn_masked(dy[base + j], x[base + j], r.m[j], r.ml[j], r.a[j], r.c[j]);
                    dx[base + j] = (g - (x[base + j] - mean[j]) * kk[j] - mdy[j]) * sc[j];
                }
                continue;
            }
#pragma omp simd
            for (int64_t j = 0; j < n; j++)
                dx[base + j] = (dy[base + j] - (x[base + j] - mean[j]) * kk[j] - mdy[j]) * sc[j];
            continue;
        }
        for (int64_t j = 0; j < n; j++) {
            const float m = mean[j], kj = kk[j], mj = mdy[j], sj = sc[j];
            const float *restrict xr = x + base + j * inner, *restrict gr = dy + base + j * inner;
            float *restrict dr = dx + base + j * inner;
            if (r.m) {
                const float rm = r.m[j], rml = r.ml[j], ra = r.a[j], rc = r.c[j];
#pragma omp simd
                for (int64_t i = 0; i < inner; i++)
                    dr[i] = (bn_masked(gr[i], xr[i], rm, rml, ra, rc) - (xr[i] - m) * kj - mj) * sj;
            } else {
#pragma omp simd
                for (int64_t i = 0; i < inner; i++)
                    dr[i] = (gr[i] - (xr[i] - m) * kj - mj) * sj;
            }
        }
    }
}
CPU_DISPATCH_VOID(static, bn_dx_chunk,
                  (const eng_norm_desc *d, const float *restrict x, const float *restrict dy,
                   const float *restrict mean, const float *restrict kk, const float *restrict mdy,
                   const float *restrict sc, bn_relu_mask r, int64_t o0, int64_t o1, float *restrict dx),
                  (d, x, dy, mean, kk, mdy, sc, r, o0, o1, dx))

static int bn_backward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy, const float *gamma,
                       const float *save_mean, const float *save_invstd, bn_relu_mask r, float *dx, float *dgamma,
                       float *dbeta)
{
    int rc = bn_check(r.m ? "batchnorm_relu_backward" : "batchnorm_backward", d);
    if (rc < 0)
        return rc;
    const int64_t n = d->n, count = d->outer * d->inner;
    CPU_CHECK(count > 0, "cpu batchnorm_backward: empty batch");
    CPU_NONNULL("batchnorm_backward", x);
    CPU_NONNULL("batchnorm_backward", dy);
    CPU_NONNULL("batchnorm_backward", save_mean);
    CPU_NONNULL("batchnorm_backward", save_invstd);
    if (gamma) {
        CPU_NONNULL("batchnorm_backward", dgamma);
        CPU_NONNULL("batchnorm_backward", dbeta);
    }
    const eng_norm_desc v = bn_view(d);
    const int64_t chunk = bn_chunk(&v), nchunks = (d->outer + chunk - 1) / chunk;
    /* part: nchunks x (2 v.n) sums; k, mdy, s: n floats each, then the
     * mean, k, mdy, s and the relu's four constants spread over v.n */
    double *part = calloc((size_t)(nchunks * 2 * v.n), sizeof *part);
    float *fbuf = malloc((size_t)(3 * n + 8 * v.n) * sizeof *fbuf);
    if (!part || !fbuf) {
        free(part);
        free(fbuf);
        return eng_error(ENG_ENOMEM, "cpu batchnorm_backward: out of memory");
    }
    float *spread = fbuf + 3 * n;
    const float *vmean = bn_spread(d, save_mean, spread);
    if (r.m)
        r = (bn_relu_mask){bn_spread(d, r.m, spread + 4 * v.n), bn_spread(d, r.ml, spread + 5 * v.n),
                           bn_spread(d, r.a, spread + 6 * v.n), bn_spread(d, r.c, spread + 7 * v.n)};
#pragma omp parallel for num_threads(nchunks > 1 ? cpu_team(b, count * n) : 1) schedule(static)
    for (int64_t k = 0; k < nchunks; k++) {
        const int64_t o0 = k * chunk, o1 = o0 + chunk < d->outer ? o0 + chunk : d->outer;
        bn_grad_chunk(&v, x, dy, vmean, r, o0, o1, part + k * 2 * v.n);
    }
    float *kk = fbuf, *mdy = fbuf + n, *sc = fbuf + 2 * n;
    const double inv_count = 1.0 / (double)count;
    for (int64_t j = 0; j < n; j++) {
        double sdy, sdyx;
        bn_fold(d, part, nchunks, j, &sdy, &sdyx);
        const double is = (double)save_invstd[j], g = gamma ? (double)gamma[j] : 1.0;
        kk[j] = (float)(sdyx * inv_count * is * is);
        mdy[j] = (float)(sdy * inv_count);
        sc[j] = (float)(is * g);
        if (gamma) {
            dgamma[j] = (float)(sdyx * is);
            dbeta[j] = (float)sdy;
        }
    }
    free(part);
    const float *vk = bn_spread(d, kk, spread + v.n), *vmdy = bn_spread(d, mdy, spread + 2 * v.n);
    const float *vsc = bn_spread(d, sc, spread + 3 * v.n);
    if (dx) { /* NULL: the first layer of a model, only dgamma and dbeta wanted */
#pragma omp parallel for num_threads(cpu_team(b, count * n)) schedule(static)
        for (int64_t k = 0; k < nchunks; k++) {
            const int64_t o0 = k * chunk, o1 = o0 + chunk < d->outer ? o0 + chunk : d->outer;
            bn_dx_chunk(&v, x, dy, vmean, vk, vmdy, vsc, r, o0, o1, dx);
        }
    }
    free(fbuf);
    return 0;
}

int cpu_batchnorm_backward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                           const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                           float *dgamma, float *dbeta)
{
    return bn_backward(b, d, x, dy, gamma, save_mean, save_invstd, (bn_relu_mask){0}, dx, dgamma, dbeta);
}

int cpu_batchnorm_relu_backward(eng_backend *b, const eng_norm_desc *d, const float *x, const float *dy,
                                const float *gamma, const float *beta, const float *save_mean,
                                const float *save_invstd, const float *save_apply, float *dx, float *dgamma,
                                float *dbeta)
{
    int rc = bn_check("batchnorm_relu_backward", d);
    if (rc < 0)
        return rc;
    CPU_NONNULL("batchnorm_relu_backward", save_mean);
    CPU_NONNULL("batchnorm_relu_backward", save_apply);
    CPU_CHECK((gamma == NULL) == (beta == NULL),
              "cpu batchnorm_relu_backward: gamma and beta must both be set or both NULL");
    float *zero = NULL;
    if (!beta) { /* the forward's shift was 0 */
        zero = calloc((size_t)d->n, sizeof *zero);
        if (!zero)
            return eng_error(ENG_ENOMEM, "cpu batchnorm_relu_backward: out of memory");
    }
    const bn_relu_mask r = {save_mean, save_apply, save_apply + d->n, beta ? beta : zero};
    rc = bn_backward(b, d, x, dy, gamma, save_mean, save_invstd, r, dx, dgamma, dbeta);
    free(zero);
    return rc;
}
