/* 2-d max and average pooling over NCHW planes.
 *
 * Max pooling keeps no argmax indices: the backward pass finds, for each
 * window, the first element (row-major order) equal to the output again,
 * which is the element the forward pass picked (first maximum; a NaN wins and
 * propagates, as in PyTorch). Planes are independent, so the work is split
 * over (n, c) planes and overlapping windows accumulate without races. */
#include <math.h>
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

/* Max pooling of one plane, no padding, stride 2 or more and the common
 * case: a vertical max over kh rows first (contiguous, vectorised), then the
 * horizontal max over kw columns of that row. Both scan in window order, so
 * the picked value is the first maximum as in the general path. */
CPU_KERNEL static void max_plane_fast(const eng_pool_desc *d, const float *restrict x, float *restrict y,
                                      float *restrict rowmax)
{
    const int64_t W = d->w, S = d->stride;
    for (int64_t oy = 0; oy < d->oh; oy++) {
        const float *restrict r0 = x + oy * S * W;
#pragma omp simd
        for (int64_t i = 0; i < W; i++)
            rowmax[i] = r0[i];
        for (int64_t ky = 1; ky < d->kh; ky++) {
            const float *restrict r = r0 + ky * W;
#pragma omp simd
            for (int64_t i = 0; i < W; i++) {
                const float v = r[i], m = rowmax[i];
                rowmax[i] = (v > m || v != v) && m == m ? v : m;
            }
        }
        float *restrict yo = y + oy * d->ow;
        for (int64_t ox = 0; ox < d->ow; ox++) {
            const float *restrict c = rowmax + ox * S;
            float m = c[0];
            for (int64_t kx = 1; kx < d->kw; kx++) {
                const float v = c[kx];
                m = (v > m || v != v) && m == m ? v : m;
            }
            yo[ox] = m;
        }
    }
}

static void pool_plane_forward(const eng_pool_desc *d, const float *x, float *y, float *rowmax)
{
    if (d->mode == ENG_POOL_MAX && d->pad == 0 && d->w <= 4096) {
        max_plane_fast(d, x, y, rowmax);
        return;
    }
    for (int64_t oy = 0; oy < d->oh; oy++) {
        for (int64_t ox = 0; ox < d->ow; ox++) {
            const window wd = pool_window(d, oy, ox);
            if (d->mode == ENG_POOL_MAX) {
                float m = -INFINITY;
                for (int64_t iy = wd.y0; iy < wd.y1; iy++)
                    for (int64_t ix = wd.x0; ix < wd.x1; ix++) {
                        const float v = x[iy * d->w + ix];
                        if ((v > m || v != v) && m == m)
                            m = v;
                    }
                y[oy * d->ow + ox] = m;
            } else {
                float s = 0.0f;
                for (int64_t iy = wd.y0; iy < wd.y1; iy++)
                    for (int64_t ix = wd.x0; ix < wd.x1; ix++)
                        s += x[iy * d->w + ix];
                y[oy * d->ow + ox] = s / avg_divisor(d, &wd);
            }
        }
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
#pragma omp parallel num_threads(cpu_team(b, planes * hw))
    {
        float rowmax[4096];
#pragma omp for schedule(static)
        for (int64_t pl = 0; pl < planes; pl++)
            pool_plane_forward(d, x + pl * hw, y + pl * ohw, rowmax);
    }
    return 0;
}

static void pool_plane_backward(const eng_pool_desc *d, const float *x, const float *y, const float *dy, float *dx)
{
    memset(dx, 0, (size_t)(d->h * d->w) * sizeof(float));
    for (int64_t oy = 0; oy < d->oh; oy++) {
        for (int64_t ox = 0; ox < d->ow; ox++) {
            const window wd = pool_window(d, oy, ox);
            const int64_t o = oy * d->ow + ox;
            const float g = dy[o];
            if (d->mode == ENG_POOL_MAX) {
                /* the first element equal to the output; a NaN output came
                 * from the first NaN of the window */
                const float m = y[o];
                const bool nan = m != m;
                int64_t at = wd.y0 * d->w + wd.x0;
                for (int64_t iy = wd.y0; iy < wd.y1; iy++)
                    for (int64_t ix = wd.x0; ix < wd.x1; ix++) {
                        const float v = x[iy * d->w + ix];
                        if (nan ? v != v : v == m) {
                            at = iy * d->w + ix;
                            goto found;
                        }
                    }
            found:
                dx[at] += g;
            } else {
                const float share = g / avg_divisor(d, &wd);
                for (int64_t iy = wd.y0; iy < wd.y1; iy++)
                    for (int64_t ix = wd.x0; ix < wd.x1; ix++)
                        dx[iy * d->w + ix] += share;
            }
        }
    }
}

int cpu_pool_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y, const float *dy,
                      float *dx)
{
    int rc = pool_check("pool_backward", d);
    if (rc < 0)
        return rc;
    const int64_t planes = d->n * d->c;
    if (planes == 0)
        return 0;
    if (d->mode == ENG_POOL_MAX) {
        CPU_NONNULL("pool_backward", x);
        CPU_NONNULL("pool_backward", y);
    }
    CPU_NONNULL("pool_backward", dy);
    CPU_NONNULL("pool_backward", dx);
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow;
#pragma omp parallel for num_threads(cpu_team(b, planes * hw)) schedule(static)
    for (int64_t pl = 0; pl < planes; pl++)
        pool_plane_backward(d, d->mode == ENG_POOL_MAX ? x + pl * hw : NULL,
                            d->mode == ENG_POOL_MAX ? y + pl * ohw : NULL, dy + pl * ohw, dx + pl * hw);
    return 0;
}
