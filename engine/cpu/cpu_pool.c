/* 2-d max and average pooling over NCHW planes.
 *
 * Max pooling's backward pass needs, for every window, the first element
 * equal to the forward output (row-major window order; a NaN wins and
 * propagates) - which is the first maximum. A training forward given a
 * keep buffer (eng_pool_desc.keep) leaves it there, a byte per output, and
 * the backward of the same x and y reads it; otherwise the backward finds
 * it again in x, in a branch-free pass vectorised over the output row. Then
 * it adds the gradients at those positions. The forward pass takes the
 * maximum of each window directly, vectorised over the output row (and the
 * argmax with it when kept). Planes are independent, so the
 * work is split over (n, c) planes and overlapping windows accumulate
 * without races. Padding is handled by reading a copy of the plane with
 * -inf in the padding. The seed's CNNs pool planes of 3x3 to 32x32, where
 * a plane is a few hundred floats: per-plane overhead is what matters, so
 * small unpadded planes are swept in groups (pool_group). At level v4 the
 * seed CNNs' 3x3 stride-2 pools of 8x8 to 32x32 planes run on the AVX-512
 * kernel of cpu_pool_s2.c instead, to the same bytes; blocked tensors
 * (eng_pool_desc.blocked) on cpu_pool16.c's. */
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
    int rc = cpu_window_check(op, d->h, d->w, d->kh, d->kw, d->stride, d->pad, d->oh, d->ow);
    if (rc < 0)
        return rc;
    CPU_CHECK(!d->blocked || cpu_pool16_fits(d),
              "cpu %s: blocked tensors need max pooling without padding, AVX-512 and 16k channels (c %lld)", op,
              (long long)d->c);
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
 * that view: ld = w + 2 pad. padbuf keeps its -inf border between planes of
 * one shape (`fresh`: set it up first); only the interior is copied. */
static const float *max_view(const eng_pool_desc *d, const float *plane, float *padbuf, bool fresh, int64_t *ld)
{
    if (d->pad == 0) {
        *ld = d->w;
        return plane;
    }
    const int64_t P = d->pad, wp = d->w + 2 * P, hp = d->h + 2 * P;
    if (fresh)
        for (int64_t i = 0; i < hp * wp; i++)
            padbuf[i] = -INFINITY;
    for (int64_t y = 0; y < d->h; y++)
        memcpy(padbuf + (y + P) * wp + P, plane + y * d->w, (size_t)d->w * sizeof(float));
    *ld = wp;
    return padbuf;
}

/* max(m, v) keeping the first of equal values; a NaN wins and stays. */
static inline float max_first(float m, float v) { return (v > m || v != v) && m == m ? v : m; }

/* Max pooling of one plane, branch-free (with random data the branches of
 * a scalar max mispredict) and vectorised over all the plane's outputs at
 * once - the seed's planes are small, so a loop per output row would be
 * mostly loop overhead: y[o] is the maximum of v[base[o] + toff[t]] over
 * the taps t of the window, taken in row-major order (gathered loads).
 * One version for every level: the x86-64-v2 build's gathers (loads
 * inserted into vectors) ran 2.5x faster than AVX2/AVX-512 gather
 * instructions on the AMD EPYC this was measured on. */
static void max_plane_forward(int64_t ohw, int64_t taps, const float *restrict v,
                                            const int32_t *restrict base, const int32_t *restrict toff,
                                            float *restrict y)
{
#pragma omp simd
    for (int64_t o = 0; o < ohw; o++)
        y[o] = v[base[o]];
    for (int64_t t = 1; t < taps; t++) {
        const float *restrict vt = v + toff[t];
#pragma omp simd
        for (int64_t o = 0; o < ohw; o++)
            y[o] = max_first(y[o], vt[base[o]]);
    }
}

/* The gather tables of a padded view (row stride ld = w + 2 pad) for a group
 * of `group` planes (consecutive, unpadded; 1 when padded): toff[t] = ky *
 * ld + kx for the taps t = ky * kw + kx, followed by each tap's ky and its
 * kx; base[g * ohw + o] = g * h * w + oy * S * ld + ox * S for the outputs
 * o = oy * ow + ox of plane g. One allocation, base first. */
static int32_t *pool_tables(const eng_pool_desc *d, int64_t group, int32_t **toff)
{
    const int64_t ld = d->w + 2 * d->pad, ohw = d->oh * d->ow, taps = d->kh * d->kw;
    int32_t *base = malloc((size_t)(group * ohw + 3 * taps) * sizeof *base);
    if (!base)
        return NULL;
    for (int64_t g = 0; g < group; g++)
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++)
                base[g * ohw + oy * d->ow + ox] = (int32_t)(g * d->h * d->w + oy * d->stride * ld + ox * d->stride);
    *toff = base + group * ohw;
    for (int64_t ky = 0; ky < d->kh; ky++)
        for (int64_t kx = 0; kx < d->kw; kx++) {
            const int64_t t = ky * d->kw + kx;
            (*toff)[t] = (int32_t)(ky * ld + kx);
            (*toff)[taps + t] = (int32_t)ky;
            (*toff)[2 * taps + t] = (int32_t)kx;
        }
    return base;
}

/* The planes of the next group into the cache while this one is done: the
 * gathers give the hardware prefetcher nothing to follow. */
static inline void prefetch_group(const float *x, int64_t hw, int64_t next, int64_t planes, int64_t group)
{
    const int64_t np = next + group <= planes ? group : planes - next;
    for (int64_t i = 0; i < np * hw; i += 16)
        __builtin_prefetch(x + next * hw + i);
}

/* Planes pooled together in one vectorised sweep: small planes (a 3x3
 * plane has one output) would otherwise cost a loop setup per output. Only
 * unpadded planes, which lie back to back in x; about 256 outputs a group. */
static int64_t pool_group(const eng_pool_desc *d)
{
    const int64_t ohw = d->oh * d->ow, planes = d->n * d->c;
    if (d->pad || ohw >= 256)
        return 1;
    int64_t g = (256 + ohw - 1) / ohw;
    if (g > planes)
        g = planes;
    const int64_t most = INT32_MAX / (d->h * d->w) - 1; /* base offsets are int32 */
    return g < most ? g : (most > 1 ? most : 1);
}

/* The forward that also notes, in arg[o], the tap t of the element it took:
 * the first maximum (max_first), the same position as max_plane_argmax
 * finds from y. */
static void max_plane_forward_arg(int64_t ohw, int64_t taps, const float *restrict v,
                                  const int32_t *restrict base, const int32_t *restrict toff, float *restrict y,
                                  float *restrict fpos, uint8_t *restrict arg)
{
#pragma omp simd
    for (int64_t o = 0; o < ohw; o++) {
        y[o] = v[base[o]];
        fpos[o] = 0.0f;
    }
    /* the tap as a float, blended as y is (in integer lanes, or bytes,
     * the forward took 1.7x as long as without the argmax; so, 1.2x) */
    for (int64_t t = 1; t < taps; t++) {
        const float *restrict vt = v + toff[t];
        const float ft = (float)t;
#pragma omp simd
        for (int64_t o = 0; o < ohw; o++) {
            const float m = y[o], x = vt[base[o]];
            const bool take = (x > m || x != x) && m == m;
            y[o] = take ? x : m;
            fpos[o] = take ? ft : fpos[o];
        }
    }
#pragma omp simd
    for (int64_t o = 0; o < ohw; o++)
        arg[o] = (uint8_t)fpos[o];
}

/* ---- the argmax kept from the forward (eng_pool_desc.keep) ---- */

/* The head of a keep buffer: which x and y its argmax belongs to; the
 * argmax follows at POOL_KEEP_HEAD, planes * oh * ow bytes. */
typedef struct pool_keep_head {
    uint64_t magic; /* POOL_KEEP_MAGIC while an argmax is there */
    const float *x, *y;
} pool_keep_head;
#define POOL_KEEP_MAGIC 0x78616d6c6f6f7064ull
#define POOL_KEEP_HEAD ((sizeof(pool_keep_head) + 63) / 64 * 64)

/* Input planes of fewer positions keep nothing: the argmax's forward costs
 * about what it saves the backward there (at batch 500, 2 threads, idle:
 * 32x32 -> 15x15 forward + backward 11.5 -> 7.6 ms, 16x16 padded -> 8x8
 * 6.6 -> 5.1, 15x15 -> 7x7 5.9 -> 5.8, 3x3 -> 1x1 0.81 -> 0.85). */
#define POOL_KEEP_MIN_PLANE 64

size_t cpu_pool_keep(eng_backend *b, const eng_pool_desc *d)
{
    (void)b;
    if (d->mode != ENG_POOL_MAX || d->kh * d->kw > 255 || d->h * d->w < POOL_KEEP_MIN_PLANE)
        return 0; /* (and a tap must fit in a byte) */
    return POOL_KEEP_HEAD + (size_t)(d->n * d->c * d->oh * d->ow);
}

/* Where the argmax goes in d->keep; NULL when d has no keep that fits. */
static uint8_t *keep_args(const eng_pool_desc *d)
{
    const size_t need = cpu_pool_keep(NULL, d);
    if (!d->keep || !need || d->keep_bytes < need)
        return NULL;
    return (uint8_t *)d->keep + POOL_KEEP_HEAD;
}

/* The kept argmax when it is that of this x and y; NULL otherwise. */
static const uint8_t *keep_find(const eng_pool_desc *d, const float *x, const float *y)
{
    const uint8_t *args = keep_args(d);
    const pool_keep_head *h = d->keep;
    return args && h->magic == POOL_KEEP_MAGIC && h->x == x && h->y == y && y ? args : NULL;
}

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
    uint8_t *args = keep_args(d);
    if (args)
        ((pool_keep_head *)d->keep)->magic = 0; /* until the new argmax is all there */
    if (d->blocked) {
        cpu_pool16_forward(b, d, x, y, args);
        if (args)
            *(pool_keep_head *)d->keep = (pool_keep_head){.magic = POOL_KEEP_MAGIC, .x = x, .y = y};
        return 0;
    }
    const int team = cpu_team(b, planes * hw);
    if (cpu_pool_s2_fits(d)) {
#pragma omp parallel num_threads(team)
        {
            const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
            cpu_pool_s2_forward(d, planes * id / nt, planes * (id + 1) / nt, x, y, args);
        }
        if (args)
            *(pool_keep_head *)d->keep = (pool_keep_head){.magic = POOL_KEEP_MAGIC, .x = x, .y = y};
        return 0;
    }
    const int64_t group = pool_group(d), groups = (planes + group - 1) / group;
    /* per thread: the padded view, and the argmax as floats when it is kept */
    const int64_t pad_n = d->pad ? (d->h + 2 * d->pad) * (d->w + 2 * d->pad) : 1;
    const int64_t per = pad_n + (args ? group * ohw : 0);
    float *scratch = malloc((size_t)(team * per) * sizeof *scratch);
    int32_t *toff = NULL, *base = pool_tables(d, group, &toff);
    if (!scratch || !base) {
        free(scratch);
        free(base);
        return eng_error(ENG_ENOMEM, "cpu pool_forward: out of memory");
    }
#pragma omp parallel num_threads(team)
    {
        float *padbuf = scratch + omp_get_thread_num() * per, *fpos = padbuf + pad_n;
        bool fresh = true;
#pragma omp for schedule(static)
        for (int64_t gi = 0; gi < groups; gi++) {
            const int64_t pl = gi * group, np = pl + group <= planes ? group : planes - pl;
            prefetch_group(x, hw, pl + np, planes, group); /* see pool_backward */
            int64_t ld;
            const float *v = max_view(d, x + pl * hw, padbuf, fresh, &ld);
            fresh = false;
            (void)ld;
            if (args)
                max_plane_forward_arg(np * ohw, d->kh * d->kw, v, base, toff, y + pl * ohw, fpos, args + pl * ohw);
            else
                max_plane_forward(np * ohw, d->kh * d->kw, v, base, toff, y + pl * ohw);
        }
    }
    free(scratch);
    free(base);
    if (args)
        *(pool_keep_head *)d->keep = (pool_keep_head){.magic = POOL_KEEP_MAGIC, .x = x, .y = y};
    return 0;
}

/* pos[o] = the row-major tap index of the first element of window o equal
 * to its maximum y[o] (a NaN maximum: the first NaN), for every output of
 * the plane, over the taps backwards so that the first hit is kept (one
 * version for every level, as the forward). */
static void max_plane_argmax(int64_t ohw, int64_t taps, const float *restrict v,
                                           const int32_t *restrict base, const int32_t *restrict toff,
                                           const float *restrict y, int32_t *restrict pos)
{
#pragma omp simd
    for (int64_t o = 0; o < ohw; o++)
        pos[o] = -1;
    for (int64_t t = taps - 1; t >= 0; t--) {
        const float *restrict vt = v + toff[t];
#pragma omp simd
        for (int64_t o = 0; o < ohw; o++) {
            const float m = y[o], x = vt[base[o]];
            pos[o] = (x == m || (m != m && x != x)) ? (int32_t)t : pos[o];
        }
    }
}

/* dx of np max-pooled planes (overwritten; np > 1 only unpadded), from
 * their forward output y (computed here into ybuf when the caller has none)
 * and the forward's argmax `kept` (NULL: found again in x). relu: no
 * additions where the window's maximum (x at the argmax, which is y) is
 * <= 0 or NaN - the relu before the pool. */
static void max_plane_backward(const eng_pool_desc *d, int64_t np, const float *x, const float *y, const float *dy,
                               float *dx, float *padbuf, bool *fresh, float *ybuf, int32_t *pos, const int32_t *base,
                               const int32_t *toff, bool relu, const uint8_t *kept)
{
    const int64_t ohw = d->oh * d->ow, taps = d->kh * d->kw;
    if (kept) {
#pragma omp simd
        for (int64_t o = 0; o < np * ohw; o++)
            pos[o] = kept[o];
    } else {
        int64_t ld;
        const float *v = max_view(d, x, padbuf, *fresh, &ld);
        *fresh = false;
        if (!y) {
            max_plane_forward(np * ohw, taps, v, base, toff, ybuf);
            y = ybuf;
        }
        max_plane_argmax(np * ohw, taps, v, base, toff, y, pos);
    }
    const int64_t H = d->h, W = d->w, S = d->stride, P = d->pad;
    const int32_t *ty = toff + taps, *tx = ty + taps; /* (ky, kx) of each tap */
    memset(dx, 0, (size_t)(np * H * W) * sizeof(float));
    for (int64_t p = 0; p < np; p++, dx += H * W, dy += ohw, y += ohw, pos += ohw)
        for (int64_t oy = 0; oy < d->oh; oy++) {
            const float *g = dy + oy * d->ow, *m = y + oy * d->ow;
            const int32_t *po = pos + oy * d->ow;
            for (int64_t ox = 0; ox < d->ow; ox++) {
                const int32_t t = po[ox];
                const int64_t iy = oy * S - P + ty[t < 0 ? 0 : t], ix = ox * S - P + tx[t < 0 ? 0 : t];
                int64_t at;
                if (t >= 0 && (P == 0 || (iy >= 0 && iy < H && ix >= 0 && ix < W))) {
                    at = iy * W + ix;
                } else {
                    /* every in-bounds value is -inf (the maximum lies in the
                     * padding): PyTorch routes to the window's first in-bounds element */
                    const window wd = pool_window(d, oy, ox);
                    at = wd.y0 * W + wd.x0;
                }
                if (!relu || m[ox] > 0.0f)
                    dx[at] += g[ox];
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

/* Max pooling finds each window's maximum again in x, as the first element
 * equal to the forward output y (which it recomputes when y is NULL). */
static int pool_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y, const float *dy,
                         float *dx, bool relu)
{
    int rc = pool_check(relu ? "pool_relu_backward" : "pool_backward", d);
    if (rc < 0)
        return rc;
    CPU_CHECK(!relu || d->mode == ENG_POOL_MAX, "cpu pool_relu_backward: only for max pooling");
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
    const uint8_t *kept = keep_find(d, x, y);
    if (d->blocked) {
        cpu_pool16_backward(b, d, x, y, kept, dy, dx, relu);
        return 0;
    }
    const int team = cpu_team(b, planes * hw);
    if (kept && cpu_pool_s2_backward_fits(d, relu)) {
#pragma omp parallel num_threads(team)
        {
            const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
            cpu_pool_s2_backward(d, planes * id / nt, planes * (id + 1) / nt, y, dy, kept, dx, relu);
        }
        return 0;
    }
    /* per thread: the padded view, the argmax positions, a forward output when y is NULL */
    const int64_t group = pool_group(d), groups = (planes + group - 1) / group;
    const int64_t pad_n = d->pad ? (d->h + 2 * d->pad) * (d->w + 2 * d->pad) : 1;
    const int64_t per = pad_n + 2 * group * ohw;
    float *scratch = malloc((size_t)(team * per) * sizeof *scratch);
    int32_t *toff = NULL, *base = pool_tables(d, group, &toff);
    if (!scratch || !base) {
        free(scratch);
        free(base);
        return eng_error(ENG_ENOMEM, "cpu pool_backward: out of memory");
    }
#pragma omp parallel num_threads(team)
    {
        float *padbuf = scratch + omp_get_thread_num() * per, *ybuf = padbuf + pad_n;
        int32_t *pos = (int32_t *)(ybuf + group * ohw);
        bool fresh = true;
#pragma omp for schedule(static)
        for (int64_t gi = 0; gi < groups; gi++) {
            const int64_t pl = gi * group, np = pl + group <= planes ? group : planes - pl;
            if (!kept)
                prefetch_group(x, hw, pl + np, planes, group);
            max_plane_backward(d, np, x + pl * hw, y ? y + pl * ohw : NULL, dy + pl * ohw, dx + pl * hw, padbuf,
                               &fresh, ybuf, pos, base, toff, relu, kept ? kept + pl * ohw : NULL);
        }
    }
    free(scratch);
    free(base);
    return 0;
}

int cpu_pool_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y, const float *dy,
                      float *dx)
{
    return pool_backward(b, d, x, y, dy, dx, false);
}

int cpu_pool_relu_backward(eng_backend *b, const eng_pool_desc *d, const float *x, const float *y,
                           const float *dy, float *dx)
{
    return pool_backward(b, d, x, y, dy, dx, true);
}
