/* 2-d max and average pooling over NCHW planes.
 *
 * Max pooling keeps no argmax indices: the backward pass finds the first
 * maximum of each window again (row-major window order; a NaN wins and
 * propagates) in two branch-free vectorised passes, then adds the gradients
 * at those positions. Planes are independent, so the work is
 * split over (n, c) planes and overlapping windows accumulate without
 * races. Padding is handled by reading a copy of the plane with -inf in
 * the padding. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

static int pool_check(const char *op, const eng_pool_desc *d)
{
    CPU_NONNULL(op, d);
    CPU_CHECK(d->mode == ENG_POOL_MAX || d->mode == ENG_POOL_AVG, "cpu %s: unknown mode %d", op, (int)d->mode);
    CPU_CHECK(d->n >= 0 && d->c >= 0 && d->h >= 1 && d->w >= 1 && d->kh >= 1 && d->kw >= 1 && d->stride >= 1 &&
                  d->pad >= 0,
              "cpu %s: bad sizes (n %lld, c %lld, h %lld, w %lld, kernel %lldx%lld, stride %lld, pad %lld)", op,
              (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w, (long long)d->kh,
              (long long)d->kw, (long long)d->stride, (long long)d->pad);
    /* as PyTorch: padding at most half the kernel, so that every window
     * holds at least one element of the input */
    CPU_CHECK(2 * d->pad <= d->kh && 2 * d->pad <= d->kw, "cpu %s: pad %lld exceeds half the kernel %lldx%lld", op,
              (long long)d->pad, (long long)d->kh, (long long)d->kw);
    const int64_t oh = (d->h + 2 * d->pad - d->kh) / d->stride + 1;
    const int64_t ow = (d->w + 2 * d->pad - d->kw) / d->stride + 1;
    CPU_CHECK(d->h + 2 * d->pad >= d->kh && d->w + 2 * d->pad >= d->kw && d->oh == oh && d->ow == ow,
              "cpu %s: output %lldx%lld does not match input %lldx%lld, kernel %lldx%lld, stride %lld, pad %lld",
              op, (long long)d->oh, (long long)d->ow, (long long)d->h, (long long)d->w, (long long)d->kh,
              (long long)d->kw, (long long)d->stride, (long long)d->pad);
    return 0;
}

/* Window rows [y0, y1) and columns [x0, x1) of output (oy, ox), clipped to
 * the input. */
typedef struct window {
    int64_t y0, y1, x0, x1;
} window;

static inline window pool_window(const eng_pool_desc *d, int64_t oy, int64_t ox)
{
    window r;
    r.y0 = oy * d->stride - d->pad;
    r.x0 = ox * d->stride - d->pad;
    r.y1 = r.y0 + d->kh < d->h ? r.y0 + d->kh : d->h;
    r.x1 = r.x0 + d->kw < d->w ? r.x0 + d->kw : d->w;
    if (r.y0 < 0)
        r.y0 = 0;
    if (r.x0 < 0)
        r.x0 = 0;
    return r;
}

/* Divisor of an average window. */
static inline float avg_divisor(const eng_pool_desc *d, const window *wd)
{
    if (d->count_include_pad)
        return (float)(d->kh * d->kw);
    return (float)((wd->y1 - wd->y0) * (wd->x1 - wd->x0));
}

/* Max pooling reads each plane through a copy whose padding holds -inf
 * (only when pad > 0), so that every window lies inside it. Row stride of
 * that view: ld = w + 2 pad. */
static const float *max_view(const eng_pool_desc *d, const float *plane, float *padbuf, int64_t *ld)
{
    if (d->pad == 0) {
        *ld = d->w;
        return plane;
    }
    const int64_t P = d->pad, wp = d->w + 2 * P, hp = d->h + 2 * P;
    for (int64_t i = 0; i < hp * wp; i++)
        padbuf[i] = -INFINITY;
    for (int64_t y = 0; y < d->h; y++)
        memcpy(padbuf + (y + P) * wp + P, plane + y * d->w, (size_t)d->w * sizeof(float));
    *ld = wp;
    return padbuf;
}

/* max(m, v) keeping the first of equal values; a NaN wins and stays. */
static inline float max_first(float m, float v) { return (v > m || v != v) && m == m ? v : m; }

/* Max pooling of one plane, vectorised and branch-free (with random data
 * the branches of a scalar max mispredict): per output row a vertical max
 * over kh rows at every column, then a sliding max over kw columns at every
 * column, sampled at the window starts ox * stride. rowmax: 2 * ld floats. */
CPU_KERNEL_BODY void max_plane_forward_body(const eng_pool_desc *d, const float *restrict x, int64_t ld,
                                         float *restrict y, float *restrict rowmax)
{
    const int64_t S = d->stride, n = ld - d->kw + 1;
    float *restrict hm = rowmax + ld;
    for (int64_t oy = 0; oy < d->oh; oy++) {
        const float *restrict r0 = x + oy * S * ld;
#pragma omp simd
        for (int64_t i = 0; i < ld; i++)
            rowmax[i] = r0[i];
        for (int64_t ky = 1; ky < d->kh; ky++) {
            const float *restrict r = r0 + ky * ld;
#pragma omp simd
            for (int64_t i = 0; i < ld; i++)
                rowmax[i] = max_first(rowmax[i], r[i]);
        }
#pragma omp simd
        for (int64_t i = 0; i < n; i++)
            hm[i] = rowmax[i];
        for (int64_t kx = 1; kx < d->kw; kx++) {
            const float *restrict c = rowmax + kx;
#pragma omp simd
            for (int64_t i = 0; i < n; i++)
                hm[i] = max_first(hm[i], c[i]);
        }
        float *restrict yo = y + oy * d->ow;
        for (int64_t ox = 0; ox < d->ow; ox++)
            yo[ox] = hm[ox * S];
    }
}
CPU_DISPATCH_VOID(static, max_plane_forward,
                  (const eng_pool_desc *d, const float *restrict x, int64_t ld, float *restrict y,
                   float *restrict rowmax),
                  (d, x, ld, y, rowmax))

static void avg_plane_forward(const eng_pool_desc *d, const float *x, float *y)
{
    for (int64_t oy = 0; oy < d->oh; oy++)
        for (int64_t ox = 0; ox < d->ow; ox++) {
            const window wd = pool_window(d, oy, ox);
            float s = 0.0f;
            for (int64_t iy = wd.y0; iy < wd.y1; iy++)
                for (int64_t ix = wd.x0; ix < wd.x1; ix++)
                    s += x[iy * d->w + ix];
            y[oy * d->ow + ox] = s / avg_divisor(d, &wd);
        }
}

int cpu_pool_forward(eng_backend *b, const eng_pool_desc *d, const float *x, float *y)
{
    int rc = pool_check("pool_forward", d);
    if (rc < 0)
        return rc;
    const int64_t planes = d->n * d->c;
    if (planes == 0)
        return 0;
    CPU_NONNULL("pool_forward", x);
    CPU_NONNULL("pool_forward", y);
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow;
    if (d->mode == ENG_POOL_AVG) {
#pragma omp parallel for num_threads(cpu_team(b, planes * hw)) schedule(static)
        for (int64_t pl = 0; pl < planes; pl++)
            avg_plane_forward(d, x + pl * hw, y + pl * ohw);
        return 0;
    }
    const int team = cpu_team(b, planes * hw);
    const int64_t wp = d->w + 2 * d->pad, per = 2 * wp + (d->pad ? (d->h + 2 * d->pad) * wp : 0);
    float *scratch = malloc((size_t)(team * per) * sizeof *scratch);
    if (!scratch)
        return eng_error(ENG_ENOMEM, "cpu pool_forward: out of memory");
#pragma omp parallel num_threads(team)
    {
        float *rowmax = scratch + omp_get_thread_num() * per, *padbuf = rowmax + 2 * wp;
#pragma omp for schedule(static)
        for (int64_t pl = 0; pl < planes; pl++) {
            int64_t ld;
            const float *v = max_view(d, x + pl * hw, padbuf, &ld);
            max_plane_forward(d, v, ld, y + pl * ohw, rowmax);
        }
    }
    free(scratch);
    return 0;
}

/* The first maximum of every window, found in two vectorised passes over
 * the (padded) view v (hp rows of ld floats):
 *   along rows: hb[r, i], hk[r, i] = value and kx of the first maximum of
 *     v[r, i .. i+kw), for every column i (not only the window starts);
 *   down columns, per output row: the first maximum over ky of hb[oy*s+ky, i],
 *     which is the first maximum of the window in row-major order (the
 *     smallest ky holding the maximum, and in that row the smallest kx).
 * pos[i] = ky * kw + kx for the window whose top-left column is i. */
CPU_KERNEL_BODY void max_rows_h_body(const float *restrict v, int64_t rows, int64_t ld, int64_t kw,
                                  float *restrict hb, int32_t *restrict hk)
{
    const int64_t n = ld - kw + 1;
    for (int64_t r = 0; r < rows; r++) {
        const float *restrict row = v + r * ld;
        float *restrict b = hb + r * ld;
        int32_t *restrict k = hk + r * ld;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            b[i] = row[i];
            k[i] = 0;
        }
        for (int32_t kx = 1; kx < kw; kx++) {
            const float *restrict rk = row + kx;
#pragma omp simd
            for (int64_t i = 0; i < n; i++) {
                const float val = rk[i], m = b[i];
                const bool up = (val > m || val != val) && m == m;
                b[i] = up ? val : m;
                k[i] = up ? kx : k[i];
            }
        }
    }
}
CPU_DISPATCH_VOID(static, max_rows_h,
                  (const float *restrict v, int64_t rows, int64_t ld, int64_t kw, float *restrict hb,
                   int32_t *restrict hk),
                  (v, rows, ld, kw, hb, hk))

CPU_KERNEL_BODY void max_rows_v_body(const float *restrict hb, const int32_t *restrict hk, int64_t ld, int64_t n,
                                  int64_t kh, int64_t kw, float *restrict vb, int32_t *restrict pos)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        vb[i] = hb[i];
        pos[i] = hk[i];
    }
    for (int64_t ky = 1; ky < kh; ky++) {
        const float *restrict b = hb + ky * ld;
        const int32_t *restrict k = hk + ky * ld;
        const int32_t base = (int32_t)(ky * kw);
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float val = b[i], m = vb[i];
            const bool up = (val > m || val != val) && m == m;
            vb[i] = up ? val : m;
            pos[i] = up ? base + k[i] : pos[i];
        }
    }
}
CPU_DISPATCH_VOID(static, max_rows_v,
                  (const float *restrict hb, const int32_t *restrict hk, int64_t ld, int64_t n, int64_t kh, int64_t kw,
                   float *restrict vb, int32_t *restrict pos),
                  (hb, hk, ld, n, kh, kw, vb, pos))

/* dx of one max-pooled plane (overwritten). scratch: 2 * hp * ld + 2 * ld
 * floats; tky/tkx map a window position to its (ky, kx). */
static void max_plane_backward(const eng_pool_desc *d, const float *x, const float *dy, float *dx, float *padbuf,
                               float *scratch, const int32_t *tky, const int32_t *tkx)
{
    int64_t ld;
    const float *v = max_view(d, x, padbuf, &ld);
    const int64_t H = d->h, W = d->w, S = d->stride, P = d->pad, hp = H + 2 * P, n = ld - d->kw + 1;
    float *hb = scratch, *vb = scratch + 2 * hp * ld;
    int32_t *hk = (int32_t *)(scratch + hp * ld), *pos = (int32_t *)(vb + ld);
    const int64_t rows = (d->oh - 1) * S + d->kh;
    max_rows_h(v, rows, ld, d->kw, hb, hk);
    memset(dx, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oy = 0; oy < d->oh; oy++) {
        max_rows_v(hb + oy * S * ld, hk + oy * S * ld, ld, n, d->kh, d->kw, vb, pos);
        const float *g = dy + oy * d->ow;
        for (int64_t ox = 0; ox < d->ow; ox++) {
            const int32_t t = pos[ox * S];
            const int64_t iy = oy * S - P + tky[t], ix = ox * S - P + tkx[t];
            if (P == 0 || (iy >= 0 && iy < H && ix >= 0 && ix < W)) {
                dx[iy * W + ix] += g[ox];
            } else {
                /* every in-bounds value is -inf: PyTorch routes to the
                 * window's first in-bounds element */
                const window wd = pool_window(d, oy, ox);
                dx[wd.y0 * W + wd.x0] += g[ox];
            }
        }
    }
}

static void avg_plane_backward(const eng_pool_desc *d, const float *dy, float *dx)
{
    memset(dx, 0, (size_t)(d->h * d->w) * sizeof(float));
    for (int64_t oy = 0; oy < d->oh; oy++)
        for (int64_t ox = 0; ox < d->ow; ox++) {
            const window wd = pool_window(d, oy, ox);
            const float share = dy[oy * d->ow + ox] / avg_divisor(d, &wd);
            for (int64_t iy = wd.y0; iy < wd.y1; iy++)
                for (int64_t ix = wd.x0; ix < wd.x1; ix++)
                    dx[iy * d->w + ix] += share;
        }
}

/* y is not needed: the maxima are found again in x (max pooling keeps no
 * indices); it is accepted so that a backend may use it. */
int cpu_pool_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y, const float *dy,
                      float *dx)
{
    (void)y;
    int rc = pool_check("pool_backward", d);
    if (rc < 0)
        return rc;
    const int64_t planes = d->n * d->c;
    if (planes == 0)
        return 0;
    if (d->mode == ENG_POOL_MAX)
        CPU_NONNULL("pool_backward", x);
    CPU_NONNULL("pool_backward", dy);
    CPU_NONNULL("pool_backward", dx);
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow;
    if (d->mode == ENG_POOL_AVG) {
#pragma omp parallel for num_threads(cpu_team(b, planes * hw)) schedule(static)
        for (int64_t pl = 0; pl < planes; pl++)
            avg_plane_backward(d, dy + pl * ohw, dx + pl * hw);
        return 0;
    }
    /* per thread: the argmax passes' scratch and the padded view; shared:
     * window position -> (ky, kx) */
    const int team = cpu_team(b, planes * hw);
    const int64_t hp = d->h + 2 * d->pad, ld = d->w + 2 * d->pad;
    const int64_t per = (d->pad ? hp * ld : 0) + 2 * hp * ld + 2 * ld;
    const int64_t taps = d->kh * d->kw;
    float *scratch = malloc((size_t)(team * per) * sizeof *scratch);
    int32_t *tab = malloc((size_t)(2 * taps) * sizeof *tab);
    if (!scratch || !tab) {
        free(scratch);
        free(tab);
        return eng_error(ENG_ENOMEM, "cpu pool_backward: out of memory");
    }
    for (int64_t t = 0; t < taps; t++) {
        tab[t] = (int32_t)(t / d->kw);
        tab[taps + t] = (int32_t)(t % d->kw);
    }
#pragma omp parallel num_threads(team)
    {
        float *mine = scratch + omp_get_thread_num() * per, *padbuf = mine + 2 * hp * ld + 2 * ld;
#pragma omp for schedule(static)
        for (int64_t pl = 0; pl < planes; pl++)
            max_plane_backward(d, x + pl * hw, dy + pl * ohw, dx + pl * hw, padbuf, mine, tab, tab + taps);
    }
    free(scratch);
    free(tab);
    return 0;
}
