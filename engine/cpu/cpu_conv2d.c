/* 2-d convolution on the CPU: im2col + sgemm over groups of images.
 *
 * The images of a batch are processed in groups of g images; one GEMM per
 * group computes the whole group, so that the GEMM's column count g*oh*ow
 * stays large where the spatial size is small (the late layers of a CNN have
 * 3x3 or 1x1 outputs). Column layout of a group: (c*kh*kw, g, oh*ow).
 *
 *   forward:  Y_g (k, g*ohw)   = W (k, ckk) * col_g (ckk, g*ohw), scattered to NCHW
 *   backward: dW   += dY_g (k, g*ohw) * col_g^T
 *             dcol  = W^T * dY_g, then col2im adds it into dx
 *
 * Groups are spread over the threads with single-threaded BLAS inside (on 2
 * cores this beats threaded BLAS on each small GEMM); with a single group
 * the GEMMs use OpenBLAS's threads instead. Each thread accumulates its
 * own dW partial and the partials are summed in thread order, so the result
 * is deterministic for a given thread count. The bias gradient is summed
 * per image and then over images in order, independent of the threads.
 *
 * Workspace (conv2d_workspace): per thread a column buffer and a group
 * output buffer, per thread but the first a dW partial, and n*k doubles for
 * the bias gradient. The workspace computed for a batch of n images also
 * serves any smaller batch with the same other dimensions. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "engine/cpu/cpu_internal.h"

/* Target column count of one group's GEMM, and a cap on a column buffer. */
#ifndef CPU_CONV_COLS
#define CPU_CONV_COLS 1024
#endif
#define CPU_CONV_COL_CAP ((int64_t)1 << 23) /* floats: 32 MiB per thread */

typedef struct conv_plan {
    int64_t ckk, ohw, hw;
    int64_t g;       /* images per group (the last group may have fewer) */
    int64_t ngroups;
    int nthr;        /* partitions of the groups; 1: groups in turn, threaded BLAS */
    bool direct;     /* 1x1, stride 1, no padding, one image per group: x is its own column matrix */
    int64_t col_n;   /* floats per column buffer */
    int64_t tmp_n;   /* floats per group output buffer (0 when g == 1) */
    int64_t dw_n;    /* floats per dW partial */
} conv_plan;

static int conv_check(const char *op, const eng_conv_desc *d)
{
    CPU_NONNULL(op, d);
    CPU_CHECK(d->n >= 1 && d->c >= 1 && d->h >= 1 && d->w >= 1 && d->k >= 1 && d->kh >= 1 && d->kw >= 1,
              "cpu %s: sizes must be positive (n %lld, c %lld, h %lld, w %lld, k %lld, kh %lld, kw %lld)", op,
              (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w, (long long)d->k,
              (long long)d->kh, (long long)d->kw);
    CPU_CHECK(d->stride >= 1 && d->pad >= 0, "cpu %s: stride %lld, pad %lld", op, (long long)d->stride,
              (long long)d->pad);
    const int64_t oh = (d->h + 2 * d->pad - d->kh) / d->stride + 1;
    const int64_t ow = (d->w + 2 * d->pad - d->kw) / d->stride + 1;
    CPU_CHECK(d->h + 2 * d->pad >= d->kh && d->w + 2 * d->pad >= d->kw && d->oh == oh && d->ow == ow,
              "cpu %s: output %lldx%lld does not match input %lldx%lld, kernel %lldx%lld, stride %lld, pad %lld",
              op, (long long)d->oh, (long long)d->ow, (long long)d->h, (long long)d->w, (long long)d->kh,
              (long long)d->kw, (long long)d->stride, (long long)d->pad);
    const int64_t ckk = d->c * d->kh * d->kw;
    CPU_CHECK(ckk <= INT32_MAX && d->k <= INT32_MAX && oh * ow <= INT32_MAX / 2,
              "cpu %s: dimensions exceed the BLAS integer range", op);
    return 0;
}

/* The group size before balancing: what the workspace is sized for. */
static int64_t conv_group_max(const eng_conv_desc *d)
{
    const int64_t ohw = d->oh * d->ow, ckk = d->c * d->kh * d->kw;
    int64_t g = (CPU_CONV_COLS + ohw - 1) / ohw;
    if (g * ohw > INT32_MAX / 2)
        g = (INT32_MAX / 2) / ohw;
    if (g * ckk * ohw > CPU_CONV_COL_CAP)
        g = CPU_CONV_COL_CAP / (ckk * ohw);
    if (g > d->n)
        g = d->n;
    return g < 1 ? 1 : g;
}

static void conv_plan_make(const eng_backend *b, const eng_conv_desc *d, conv_plan *p)
{
    const int T = cpu_threads(b);
    p->ckk = d->c * d->kh * d->kw;
    p->ohw = d->oh * d->ow;
    p->hw = d->h * d->w;
    int64_t g = conv_group_max(d);
    int64_t ng = (d->n + g - 1) / g;
    /* a few large groups: make their count a multiple of the threads */
    if (T > 1 && ng % T != 0 && ng < 8 * T) {
        int64_t want = (ng + T - 1) / T * T;
        g = (d->n + want - 1) / want;
        ng = (d->n + g - 1) / g;
    }
    p->g = g;
    p->ngroups = ng;
    p->nthr = ng < T ? (int)ng : T;
    p->direct = d->kh == 1 && d->kw == 1 && d->stride == 1 && d->pad == 0 && g == 1;
    p->col_n = p->direct ? 0 : p->ckk * g * p->ohw;
    p->tmp_n = g > 1 ? d->k * g * p->ohw : 0;
    p->dw_n = d->k * p->ckk;
}

/* Workspace layout, 64-byte aligned regions. */
static size_t round64(size_t bytes) { return (bytes + 63) / 64 * 64; }

static size_t conv_ws_bytes(const conv_plan *p, int nthr, int64_t n, int64_t k)
{
    size_t per_thread = round64((size_t)p->col_n * sizeof(float)) + round64((size_t)p->tmp_n * sizeof(float));
    return (size_t)nthr * per_thread + (size_t)(nthr > 1 ? nthr - 1 : 0) * round64((size_t)p->dw_n * sizeof(float)) +
           round64((size_t)(n * k) * sizeof(double));
}

#define CONV_MAX_THREADS 64

typedef struct conv_ws {
    float *col[CONV_MAX_THREADS], *tmp[CONV_MAX_THREADS], *dw[CONV_MAX_THREADS];
    double *db_img;
} conv_ws;

static void conv_ws_carve(const conv_plan *p, int nthr, void *ws, conv_ws *out)
{
    char *q = ws;
    for (int t = 0; t < nthr; t++) {
        out->col[t] = (float *)q;
        q += round64((size_t)p->col_n * sizeof(float));
        out->tmp[t] = (float *)q;
        q += round64((size_t)p->tmp_n * sizeof(float));
    }
    out->dw[0] = NULL; /* thread 0 writes into dw itself */
    for (int t = 1; t < nthr; t++) {
        out->dw[t] = (float *)q;
        q += round64((size_t)p->dw_n * sizeof(float));
    }
    out->db_img = (double *)q;
}

/* A plan sized like the workspace: the largest group and all threads. */
static void conv_plan_ws(const eng_backend *b, const eng_conv_desc *d, conv_plan *p, int *nthr)
{
    conv_plan_make(b, d, p);
    const int64_t g = conv_group_max(d);
    p->col_n = (d->kh == 1 && d->kw == 1 && d->stride == 1 && d->pad == 0 && g == 1) ? 0 : p->ckk * g * p->ohw;
    p->tmp_n = g > 1 ? d->k * g * p->ohw : 0;
    int T = cpu_threads(b);
    *nthr = T > CONV_MAX_THREADS ? CONV_MAX_THREADS : T;
}

size_t cpu_conv2d_workspace(eng_backend *b, const eng_conv_desc *d)
{
    if (!d || conv_check("conv2d_workspace", d) < 0)
        return 0;
    conv_plan p;
    int nthr;
    conv_plan_ws(b, d, &p, &nthr);
    return conv_ws_bytes(&p, nthr, d->n, d->k);
}

/* The plan of a call, checked against the workspace the caller passed
 * (which conv2d_workspace sized for the largest group and all threads). */
static int conv_prepare(const eng_backend *b, const char *op, const eng_conv_desc *d, void *ws, conv_plan *p,
                        conv_ws *w)
{
    int rc = conv_check(op, d);
    if (rc < 0)
        return rc;
    conv_plan wp;
    int wthr;
    conv_plan_ws(b, d, &wp, &wthr);
    conv_plan_make(b, d, p);
    if (p->nthr > wthr)
        p->nthr = wthr;
    if (conv_ws_bytes(&wp, wthr, d->n, d->k) > 0)
        CPU_CHECK(ws != NULL, "cpu %s: workspace is NULL", op);
    conv_ws_carve(&wp, wthr, ws, w);
    return 0;
}

/* col (ckk, gn*ohw) of images n0 .. n0+gn-1. */
static void im2col(const eng_conv_desc *d, const float *x, int64_t n0, int64_t gn, float *col)
{
    const int64_t H = d->h, W = d->w, S = d->stride, P = d->pad, OH = d->oh, OW = d->ow;
    const int64_t ohw = OH * OW, ld = gn * ohw;
    for (int64_t gi = 0; gi < gn; gi++) {
        const float *xi = x + (n0 + gi) * d->c * H * W;
        for (int64_t ci = 0; ci < d->c; ci++) {
            const float *plane = xi + ci * H * W;
            for (int64_t ky = 0; ky < d->kh; ky++) {
                for (int64_t kx = 0; kx < d->kw; kx++) {
                    const int64_t row = (ci * d->kh + ky) * d->kw + kx;
                    float *dst = col + row * ld + gi * ohw;
                    /* ox with 0 <= ox*S - P + kx < W */
                    int64_t lo = P - kx > 0 ? (P - kx + S - 1) / S : 0;
                    int64_t hi = (W - 1 + P - kx) >= 0 ? (W - 1 + P - kx) / S + 1 : 0;
                    if (hi > OW)
                        hi = OW;
                    if (lo > hi)
                        lo = hi;
                    for (int64_t oy = 0; oy < OH; oy++) {
                        float *drow = dst + oy * OW;
                        const int64_t iy = oy * S - P + ky;
                        if (iy < 0 || iy >= H) {
                            memset(drow, 0, (size_t)OW * sizeof(float));
                            continue;
                        }
                        const float *src = plane + iy * W;
                        for (int64_t ox = 0; ox < lo; ox++)
                            drow[ox] = 0.0f;
                        if (S == 1)
                            memcpy(drow + lo, src + (lo - P + kx), (size_t)(hi - lo) * sizeof(float));
                        else
                            for (int64_t ox = lo; ox < hi; ox++)
                                drow[ox] = src[ox * S - P + kx];
                        for (int64_t ox = hi; ox < OW; ox++)
                            drow[ox] = 0.0f;
                    }
                }
            }
        }
    }
}

/* dx of images n0 .. n0+gn-1 = col2im(dcol): overwrites those images. */
CPU_KERNEL static void col2im(const eng_conv_desc *d, const float *dcol, int64_t n0, int64_t gn, float *dx)
{
    const int64_t H = d->h, W = d->w, S = d->stride, P = d->pad, OH = d->oh, OW = d->ow;
    const int64_t ohw = OH * OW, ld = gn * ohw;
    for (int64_t gi = 0; gi < gn; gi++) {
        float *dxi = dx + (n0 + gi) * d->c * H * W;
        memset(dxi, 0, (size_t)(d->c * H * W) * sizeof(float));
        for (int64_t ci = 0; ci < d->c; ci++) {
            float *plane = dxi + ci * H * W;
            for (int64_t ky = 0; ky < d->kh; ky++) {
                for (int64_t kx = 0; kx < d->kw; kx++) {
                    const int64_t row = (ci * d->kh + ky) * d->kw + kx;
                    const float *srcrow = dcol + row * ld + gi * ohw;
                    int64_t lo = P - kx > 0 ? (P - kx + S - 1) / S : 0;
                    int64_t hi = (W - 1 + P - kx) >= 0 ? (W - 1 + P - kx) / S + 1 : 0;
                    if (hi > OW)
                        hi = OW;
                    for (int64_t oy = 0; oy < OH; oy++) {
                        const int64_t iy = oy * S - P + ky;
                        if (iy < 0 || iy >= H || lo >= hi)
                            continue;
                        const float *restrict s = srcrow + oy * OW;
                        if (S == 1) {
                            /* dx row from ix = lo - P + kx on, aligned with s from lo */
                            float *restrict drow = plane + iy * W + (lo - P + kx);
                            const float *restrict sl = s + lo;
#pragma omp simd
                            for (int64_t j = 0; j < hi - lo; j++)
                                drow[j] += sl[j];
                        } else {
                            float *restrict drow = plane + iy * W;
                            for (int64_t ox = lo; ox < hi; ox++)
                                drow[ox * S - P + kx] += s[ox];
                        }
                    }
                }
            }
        }
    }
}

/* y of images n0.. = tmp (k, gn, ohw) + bias, or bias added in place. */
CPU_KERNEL static void scatter_bias(int64_t k, int64_t gn, int64_t ohw, const float *restrict tmp,
                                    const float *restrict bias, float *restrict y)
{
    for (int64_t gi = 0; gi < gn; gi++) {
        for (int64_t kk = 0; kk < k; kk++) {
            const float *restrict s = tmp + (kk * gn + gi) * ohw;
            float *restrict o = y + (gi * k + kk) * ohw;
            const float bv = bias ? bias[kk] : 0.0f;
#pragma omp simd
            for (int64_t i = 0; i < ohw; i++)
                o[i] = s[i] + bv;
        }
    }
}

CPU_KERNEL static void add_bias_rows(int64_t k, int64_t ohw, const float *restrict bias, float *restrict y)
{
    for (int64_t kk = 0; kk < k; kk++) {
        const float bv = bias[kk];
        float *restrict o = y + kk * ohw;
#pragma omp simd
        for (int64_t i = 0; i < ohw; i++)
            o[i] += bv;
    }
}

/* tmp (k, gn, ohw) = dy of images n0.. (n, k, ohw); also the per-image bias
 * gradient sums db_img[n, kk] in double. */
CPU_KERNEL static void gather_dy(int64_t k, int64_t gn, int64_t ohw, const float *restrict dy, float *restrict tmp,
                                 double *restrict db_img)
{
    for (int64_t gi = 0; gi < gn; gi++) {
        for (int64_t kk = 0; kk < k; kk++) {
            const float *restrict s = dy + (gi * k + kk) * ohw;
            double acc = 0.0;
            if (tmp) {
                float *restrict o = tmp + (kk * gn + gi) * ohw;
#pragma omp simd reduction(+ : acc)
                for (int64_t i = 0; i < ohw; i++) {
                    o[i] = s[i];
                    acc += (double)s[i];
                }
            } else {
#pragma omp simd reduction(+ : acc)
                for (int64_t i = 0; i < ohw; i++)
                    acc += (double)s[i];
            }
            if (db_img)
                db_img[gi * k + kk] = acc;
        }
    }
}

static void conv_forward_group(const eng_conv_desc *d, const conv_plan *p, int64_t grp, const float *x,
                               const float *w, const float *bias, float *y, float *col, float *tmp)
{
    const int64_t n0 = grp * p->g, gn = n0 + p->g <= d->n ? p->g : d->n - n0, cols = gn * p->ohw;
    const float *colp = col;
    if (p->direct)
        colp = x + n0 * d->c * p->hw;
    else
        im2col(d, x, n0, gn, col);
    float *yg = y + n0 * d->k * p->ohw;
    if (p->g == 1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)d->k, (blasint)cols, (blasint)p->ckk, 1.0f,
                    w, (blasint)p->ckk, colp, (blasint)cols, 0.0f, yg, (blasint)cols);
        if (bias)
            add_bias_rows(d->k, p->ohw, bias, yg);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)d->k, (blasint)cols, (blasint)p->ckk, 1.0f,
                    w, (blasint)p->ckk, colp, (blasint)cols, 0.0f, tmp, (blasint)cols);
        scatter_bias(d->k, gn, p->ohw, tmp, bias, yg);
    }
}

int cpu_conv2d_forward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *bias,
                       float *y, void *ws)
{
    conv_plan p;
    conv_ws cw;
    int rc = conv_prepare(b, "conv2d_forward", d, ws, &p, &cw);
    if (rc < 0)
        return rc;
    CPU_NONNULL("conv2d_forward", x);
    CPU_NONNULL("conv2d_forward", w);
    CPU_NONNULL("conv2d_forward", y);
    if (p.nthr <= 1) {
        cpu_blas_threads(b);
        for (int64_t grp = 0; grp < p.ngroups; grp++)
            conv_forward_group(d, &p, grp, x, w, bias, y, cw.col[0], cw.tmp[0]);
        return 0;
    }
    const int nthr = p.nthr;
#pragma omp parallel num_threads(nthr)
    {
        /* virtual threads t own fixed ranges of groups, whatever the team size */
        for (int t = omp_get_thread_num(); t < nthr; t += omp_get_num_threads()) {
            const int64_t g0 = p.ngroups * t / nthr, g1 = p.ngroups * (t + 1) / nthr;
            for (int64_t grp = g0; grp < g1; grp++)
                conv_forward_group(d, &p, grp, x, w, bias, y, cw.col[t], cw.tmp[t]);
        }
    }
    return 0;
}

static void conv_backward_group(const eng_conv_desc *d, const conv_plan *p, int64_t grp, bool first, const float *x,
                                const float *w, const float *dy, float *dx, float *dwp, double *db_img, float *col,
                                float *tmp)
{
    const int64_t n0 = grp * p->g, gn = n0 + p->g <= d->n ? p->g : d->n - n0, cols = gn * p->ohw;
    const float *dyg = dy + n0 * d->k * p->ohw;
    gather_dy(d->k, gn, p->ohw, dyg, p->g > 1 ? tmp : NULL, db_img ? db_img + n0 * d->k : NULL);
    if (p->g > 1)
        dyg = tmp;
    const float *colp = col;
    if (p->direct)
        colp = x + n0 * d->c * p->hw;
    else
        im2col(d, x, n0, gn, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)d->k, (blasint)p->ckk, (blasint)cols, 1.0f, dyg,
                (blasint)cols, colp, (blasint)cols, first ? 0.0f : 1.0f, dwp, (blasint)p->ckk);
    if (!dx)
        return;
    if (p->direct) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)p->ckk, (blasint)cols, (blasint)d->k, 1.0f, w,
                    (blasint)p->ckk, dyg, (blasint)cols, 0.0f, dx + n0 * d->c * p->hw, (blasint)cols);
        return;
    }
    /* the column buffer is free again: dcol goes there */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)p->ckk, (blasint)cols, (blasint)d->k, 1.0f, w,
                (blasint)p->ckk, dyg, (blasint)cols, 0.0f, col, (blasint)cols);
    col2im(d, col, n0, gn, dx);
}

CPU_KERNEL static void sum_partials(int64_t lo, int64_t hi, int nparts, float *restrict dw, float *const *parts)
{
    for (int t = 1; t < nparts; t++) {
        const float *restrict s = parts[t];
#pragma omp simd
        for (int64_t i = lo; i < hi; i++)
            dw[i] += s[i];
    }
}

int cpu_conv2d_backward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, void *ws)
{
    conv_plan p;
    conv_ws cw;
    int rc = conv_prepare(b, "conv2d_backward", d, ws, &p, &cw);
    if (rc < 0)
        return rc;
    CPU_NONNULL("conv2d_backward", x);
    CPU_NONNULL("conv2d_backward", w);
    CPU_NONNULL("conv2d_backward", dy);
    CPU_NONNULL("conv2d_backward", dw);
    double *db_img = db ? cw.db_img : NULL;
    if (p.nthr <= 1) {
        cpu_blas_threads(b);
        for (int64_t grp = 0; grp < p.ngroups; grp++)
            conv_backward_group(d, &p, grp, grp == 0, x, w, dy, dx, dw, db_img, cw.col[0], cw.tmp[0]);
    } else {
        const int nthr = p.nthr;
        cw.dw[0] = dw;
#pragma omp parallel num_threads(nthr)
        {
            for (int t = omp_get_thread_num(); t < nthr; t += omp_get_num_threads()) {
                const int64_t g0 = p.ngroups * t / nthr, g1 = p.ngroups * (t + 1) / nthr;
                for (int64_t grp = g0; grp < g1; grp++)
                    conv_backward_group(d, &p, grp, grp == g0, x, w, dy, dx, cw.dw[t], db_img, cw.col[t],
                                        cw.tmp[t]);
            }
        }
        /* dw = partial 0 + partial 1 + ... in thread order, split by element */
        const int64_t chunk = 1 << 14, nchunks = (p.dw_n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(cpu_team(b, p.dw_n * nthr)) schedule(static)
        for (int64_t c = 0; c < nchunks; c++) {
            const int64_t lo = c * chunk, hi = lo + chunk < p.dw_n ? lo + chunk : p.dw_n;
            sum_partials(lo, hi, nthr, dw, cw.dw);
        }
    }
    if (db) {
        for (int64_t kk = 0; kk < d->k; kk++) {
            double s = 0.0;
            for (int64_t i = 0; i < d->n; i++)
                s += db_img[i * d->k + kk];
            db[kk] = (float)s;
        }
    }
    return 0;
}
