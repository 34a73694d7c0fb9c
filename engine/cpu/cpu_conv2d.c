/* 2-d convolution on the CPU: the entry points, and im2col + sgemm.
 *
 * Each shape runs on oneDNN or on our own kernels, whichever measured
 * faster (cpu_choice.c); in bf16, on oneDNN's bf16 kernels or on ours with
 * the inputs rounded to bf16. Our own conv2d picks one of three paths (see cpu_conv.h): stride 1 goes to the
 * direct kernels (cpu_conv_pix.c, or cpu_conv_direct.c for a CNN's first
 * layer); everything else is computed here:
 *
 *  - im2col + sgemm over groups of g images; one GEMM per group computes
 *    the whole group, so that the GEMM's column count g*oh*ow stays large
 *    where the spatial size is small. Column layout: (c*kh*kw, g, oh*ow).
 *      forward:  Y_g (k, g*ohw)   = W (k, ckk) * col_g (ckk, g*ohw), scattered to NCHW
 *      backward: dW   += dY_g (k, g*ohw) * col_g^T
 *                dcol  = W^T * dY_g, then col2im writes dx
 *    Groups are spread over the threads with single-threaded BLAS inside
 *    (on 2 cores this beats threaded BLAS on each small GEMM); with a single
 *    group the GEMMs use OpenBLAS's threads instead;
 *  - a 1x1 kernel with stride 1 and no padding on images large enough to be
 *    their own group: x is its own column matrix;
 *  - 1x1 images with 1x1 outputs (the seed CNN's last convolutions), where
 *    only the kernel's tap (pad, pad) ever meets the image: the whole batch
 *    is one GEMM, y (n, k) = x (n, c) * W[:, :, pad, pad]^T.
 *
 * Each thread accumulates its own dW partial and the partials are summed in
 * thread order, so dW is deterministic for a given thread count; the bias
 * gradient is summed per image and then over images in order, independent
 * of the threads. The workspace computed for a batch of n images also
 * serves any smaller batch with the same other dimensions. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu/cpu_conv.h"
#include "engine/cpu/cpu_dnnl.h"

/* Target column count of one group's GEMM, and a cap on a column buffer. */
#ifndef CPU_CONV_COLS
#define CPU_CONV_COLS 1024
#endif
#define CPU_CONV_COL_CAP ((int64_t)1 << 23) /* floats: 32 MiB per thread */

typedef enum conv_kind {
    CONV_IM2COL,
    CONV_DIRECT,  /* 1x1, stride 1, no padding, one image per group */
    CONV_POINT,   /* 1x1 images, 1x1 outputs: one tap, one GEMM for the batch */
    CONV_STRIDE1, /* cpu_conv_direct.c */
    CONV_PIX,     /* cpu_conv_pix.c */
} conv_kind;

typedef struct conv_plan {
    conv_kind kind;
    int64_t ckk, ohw, hw;
    int64_t g;       /* images per group (the last group may have fewer) */
    int64_t ngroups;
    int nthr;        /* partitions of the groups; 1: groups in turn, threaded BLAS */
    int64_t col_n;   /* floats per column buffer */
    int64_t tmp_n;   /* floats per group output buffer (0 when g == 1) */
    int64_t pad_n;   /* floats per padded plane */
    int64_t dw_n;    /* floats per dW partial */
} conv_plan;

typedef struct conv_ws {
    float *col[CONV_MAX_THREADS], *tmp[CONV_MAX_THREADS], *pad[CONV_MAX_THREADS], *dw[CONV_MAX_THREADS];
    double *db_img;
    float *weff, *dweff; /* CONV_POINT: W[:, :, pad, pad] and its gradient */
} conv_ws;

static int conv_check(const char *op, const eng_conv_desc *d)
{
    CPU_NONNULL(op, d);
    CPU_CHECK(d->n >= 1 && d->c >= 1 && d->h >= 1 && d->w >= 1 && d->k >= 1 && d->kh >= 1 && d->kw >= 1,
              "cpu %s: sizes must be positive (n %lld, c %lld, h %lld, w %lld, k %lld, kh %lld, kw %lld)", op,
              (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w, (long long)d->k,
              (long long)d->kh, (long long)d->kw);
    CPU_CHECK(d->stride >= 1 && d->pad >= 0, "cpu %s: stride %lld, pad %lld", op, (long long)d->stride,
              (long long)d->pad);
    int rc = cpu_window_check(op, d->h, d->w, d->kh, d->kw, d->stride, d->pad, d->oh, d->ow);
    if (rc < 0)
        return rc;
    const int64_t ckk = d->c * d->kh * d->kw;
    CPU_CHECK(ckk <= INT32_MAX && d->k <= INT32_MAX && d->n <= INT32_MAX && d->oh * d->ow <= INT32_MAX / 2,
              "cpu %s: dimensions exceed the BLAS integer range", op);
    return 0;
}

static bool conv_is_point(const eng_conv_desc *d) { return d->h == 1 && d->w == 1 && d->oh == 1 && d->ow == 1; }

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

/* Buffer sizes for groups of g images. */
static void conv_plan_sizes(const eng_conv_desc *d, conv_plan *p, int64_t g)
{
    const bool direct = d->kh == 1 && d->kw == 1 && d->stride == 1 && d->pad == 0 && g == 1;
    p->col_n = direct ? 0 : p->ckk * g * p->ohw;
    p->tmp_n = g > 1 ? d->k * g * p->ohw : 0;
    p->pad_n = d->pad > 0 ? (d->h + 2 * d->pad) * (d->w + 2 * d->pad) : 0;
    p->dw_n = d->k * p->ckk;
}

static void conv_plan_make(const eng_backend *b, const eng_conv_desc *d, conv_plan *p)
{
    const int T = conv_threads(b);
    p->ckk = d->c * d->kh * d->kw;
    p->ohw = d->oh * d->ow;
    p->hw = d->h * d->w;
    if (conv_is_point(d) || conv_s1_applies(d) || conv_pix_applies(d)) {
        /* planned by their own files (or the whole batch at once) */
        p->kind = conv_is_point(d) ? CONV_POINT : conv_s1_applies(d) ? CONV_STRIDE1 : CONV_PIX;
        p->g = 1;
        p->ngroups = 1;
        p->nthr = 1;
        p->col_n = p->tmp_n = p->pad_n = 0;
        p->dw_n = d->k * p->ckk;
        return;
    }
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
    p->kind = d->kh == 1 && d->kw == 1 && d->stride == 1 && d->pad == 0 && g == 1 ? CONV_DIRECT : CONV_IM2COL;
    conv_plan_sizes(d, p, g);
}

static size_t round64(size_t bytes) { return (bytes + 63) / 64 * 64; }
static size_t fl_bytes(int64_t n) { return round64((size_t)n * sizeof(float)); }

/* Bytes of the workspace, sized for the largest group and all threads so
 * that any smaller batch fits as well. */
static size_t conv_ws_layout(const eng_backend *b, const eng_conv_desc *d, void *ws, conv_ws *out)
{
    char *base = ws, *q = ws;
    if (conv_is_point(d)) {
        if (out) {
            out->weff = (float *)q;
            out->dweff = (float *)(q + fl_bytes(d->k * d->c));
        }
        return 2 * fl_bytes(d->k * d->c);
    }
    if (conv_s1_applies(d))
        return conv_s1_workspace(b, d);
    if (conv_pix_applies(d))
        return conv_pix_workspace(b, d);
    const int T = conv_threads(b);
    conv_plan p;
    conv_plan_make(b, d, &p);
    conv_plan_sizes(d, &p, conv_group_max(d));
    for (int t = 0; t < T; t++) {
        if (out) {
            out->col[t] = (float *)q;
            out->tmp[t] = (float *)(q + fl_bytes(p.col_n));
            out->pad[t] = (float *)(q + fl_bytes(p.col_n) + fl_bytes(p.tmp_n));
        }
        q += fl_bytes(p.col_n) + fl_bytes(p.tmp_n) + fl_bytes(p.pad_n);
    }
    if (out)
        out->dw[0] = NULL; /* thread 0 accumulates into dw itself */
    for (int t = 1; t < T; t++) {
        if (out)
            out->dw[t] = (float *)q;
        q += fl_bytes(p.dw_n);
    }
    if (out)
        out->db_img = (double *)q;
    q += round64((size_t)(d->n * d->k) * sizeof(double));
    return (size_t)(q - base);
}

size_t cpu_conv2d_keep(eng_backend *b, const eng_conv_desc *d)
{
    if (!d || conv_check("conv2d_keep", d) < 0) {
        eng_clear_error();
        return 0;
    }
    return cpu_dnnl_conv_keep_bytes(b, d, cpu_bf16(b));
}

/* Blocked tensors where oneDNN computes in that layout: float32 on
 * AVX-512 (on AVX2 its blocks are 8 channels), more than one pixel (a
 * pixel's blocked layout is NCHW itself). EPOCHD_LAYOUT=plain keeps NCHW
 * everywhere, for comparisons. */
bool cpu_conv2d_blocked(eng_backend *b, const eng_conv_desc *d)
{
    const char *env = getenv("EPOCHD_LAYOUT");
    if (!((cpu_state *)b->impl)->dnnl || cpu_bf16(b) || cpu_isa_level_current < 4 || (env && !strcmp(env, "plain")))
        return false;
    return (!d->x_blocked || (d->c % 16 == 0 && d->h * d->w > 1)) &&
           (!d->y_blocked || (d->k % 16 == 0 && d->oh * d->ow > 1));
}

/* As the convolutions' (a chain blocks only where they do). */
bool cpu_pool_blocked(eng_backend *b, const eng_pool_desc *d)
{
    const char *env = getenv("EPOCHD_LAYOUT");
    return ((cpu_state *)b->impl)->dnnl && !cpu_bf16(b) && !(env && !strcmp(env, "plain")) && cpu_pool16_fits(d);
}

size_t cpu_conv2d_workspace(eng_backend *b, const eng_conv_desc *d)
{
    if (!d || conv_check("conv2d_workspace", d) < 0)
        return 0;
    return conv_ws_layout(b, d, NULL, NULL);
}

/* ---- the 1x1-image case ---- */

/* The offset of tap (pad, pad) - the only one a 1x1 image reaches - within
 * a kernel's kh x kw taps; -1 when it lies outside the kernel. */
static int64_t point_centre(const eng_conv_desc *d)
{
    return d->pad < d->kh && d->pad < d->kw ? d->pad * d->kw + d->pad : -1;
}

/* weff[k, c] = W[k, c, pad, pad] (zero when that tap lies outside the
 * kernel), for the rows [k0, k1) and the columns [c0, c1). The loads run at
 * a fixed stride from the centre tap: the form with the whole index
 * computed per element took 2 % of residual_cnn's step at batch 64. */
static void point_weights(const eng_conv_desc *d, const float *w, float *weff, int64_t k0, int64_t k1, int64_t c0,
                          int64_t c1)
{
    const int64_t taps = d->kh * d->kw, centre = point_centre(d);
    for (int64_t k = k0; k < k1; k++) {
        float *restrict dst = weff + k * d->c;
        if (centre < 0) {
            memset(dst + c0, 0, (size_t)(c1 - c0) * sizeof(float));
            continue;
        }
        const float *restrict src = w + centre + k * d->c * taps;
        for (int64_t c = c0; c < c1; c++)
            dst[c] = src[c * taps];
    }
}

static void point_forward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w,
                          const float *bias, float *y, conv_ws *cw)
{
    /* The gather on this thread, the product on OpenBLAS's threads where
     * they pay (cpu_blas_threads_small): the backward's split over the
     * team, of the product by output channels or of the gather only, ran
     * no faster here (docs/cpu.md). */
    point_weights(d, w, cw->weff, 0, d->k, 0, d->c);
    cpu_blas_threads_small(b, d->n, d->k, d->c);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)d->n, (blasint)d->k, (blasint)d->c, 1.0f, x,
                (blasint)d->c, cw->weff, (blasint)d->c, 0.0f, y, (blasint)d->k);
    cpu_blas_threads(b);
    if (bias)
        cpu_bias_add(b, d->n, d->k, 1, y, bias);
}

/* The 1x1-image products are thin (batch x channels x channels), and the
 * backward's gather of the centre taps and its write of the whole 3x3
 * weight gradient (zeros but for the centre) move more memory than the
 * products. In the backward each thread of one parallel region takes a
 * slice of the output channels (for dw) and of the input channels (for dx):
 * it gathers and writes its own part and runs its slices of the products
 * on one OpenBLAS thread (the OpenMP build of OpenBLAS runs single-threaded
 * inside a parallel region). No barrier: the slices are disjoint. The
 * slices depend only on the thread count, so the bits do too. Slices are
 * multiples of 16 channels, at least 16 wide. */
static int point_team(const eng_backend *b, const eng_conv_desc *d)
{
    int64_t t = cpu_threads(b), by_k = d->k / 16, by_c = d->c / 16;
    if (t > by_k)
        t = by_k;
    if (t > by_c)
        t = by_c;
    return t < 1 ? 1 : (int)t;
}

static int64_t point_cut(int64_t total, int64_t id, int64_t nt)
{
    return id >= nt ? total : total * id / nt / 16 * 16;
}

static int point_backward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, float *db, conv_ws *cw)
{
    const int T = point_team(b, d);
    const int64_t taps = d->kh * d->kw, centre = point_centre(d);
    omp_set_num_threads(1);
#pragma omp parallel num_threads(T)
    {
        const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
        const int64_t k0 = point_cut(d->k, id, nt), k1 = point_cut(d->k, id + 1, nt);
        /* dweff[k0:k1, :] = dy[:, k0:k1]^T (k, n) * x (n, c); every other tap gets zero */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)(k1 - k0), (blasint)d->c, (blasint)d->n,
                    1.0f, dy + k0, (blasint)d->k, x, (blasint)d->c, 0.0f, cw->dweff + k0 * d->c, (blasint)d->c);
        float *dwk = dw + k0 * d->c * taps;
        memset(dwk, 0, (size_t)((k1 - k0) * d->c * taps) * sizeof(float));
        if (centre >= 0)
            for (int64_t i = 0; i < (k1 - k0) * d->c; i++)
                dwk[i * taps + centre] = cw->dweff[k0 * d->c + i];
        if (dx) {
            /* dx[:, c0:c1] = dy (n, k) * weff[:, c0:c1] */
            const int64_t c0 = point_cut(d->c, id, nt), c1 = point_cut(d->c, id + 1, nt);
            point_weights(d, w, cw->weff, 0, d->k, c0, c1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)d->n, (blasint)(c1 - c0),
                        (blasint)d->k, 1.0f, dy, (blasint)d->k, cw->weff + c0, (blasint)d->c, 0.0f, dx + c0,
                        (blasint)d->c);
        }
    }
    cpu_blas_threads(b);
    if (db)
        return cpu_bias_grad_impl(b, d->n, d->k, 1, dy, db);
    return 0;
}

/* ---- shared by the paths ---- */

void conv_fill_padded(const float *src, int64_t nc, int64_t h, int64_t w, int64_t top, int64_t left, int64_t hp,
                      int64_t wp, float *dst)
{
    for (int64_t c = 0; c < nc; c++)
        for (int64_t y = 0; y < h; y++)
            memcpy(dst + (c * hp + y + top) * wp + left, src + (c * h + y) * w, (size_t)w * sizeof(float));
}

CPU_KERNEL_BODY void conv_db_image_body(int64_t k, int64_t ohw, const float *dy, double *db_img)
{
    for (int64_t kk = 0; kk < k; kk++) {
        const float *restrict s = dy + kk * ohw;
        double acc = 0.0;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < ohw; i++)
            acc += (double)s[i];
        db_img[kk] = acc;
    }
}
CPU_DISPATCH_VOID(, conv_db_image, (int64_t k, int64_t ohw, const float *dy, double *db_img), (k, ohw, dy, db_img))

CPU_KERNEL_BODY void sum_partials_body(int64_t lo, int64_t hi, int nparts, float *restrict dw, float *const *parts)
{
    for (int t = 1; t < nparts; t++) {
        const float *restrict s = parts[t];
#pragma omp simd
        for (int64_t i = lo; i < hi; i++)
            dw[i] += s[i];
    }
}
CPU_DISPATCH_VOID(static, sum_partials, (int64_t lo, int64_t hi, int nparts, float *restrict dw, float *const *parts),
                  (lo, hi, nparts, dw, parts))

void conv_finish_backward(eng_backend *b, const eng_conv_desc *d, int nparts, float *dw, float *const *parts,
                          const double *db_img, float *db)
{
    const int64_t dw_n = d->k * d->c * d->kh * d->kw;
    if (nparts > 1) {
        /* split by element; each element adds the partials in thread order */
        const int64_t chunk = 1 << 14, nchunks = (dw_n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(cpu_team(b, dw_n * nparts)) schedule(static)
        for (int64_t c = 0; c < nchunks; c++) {
            const int64_t lo = c * chunk, hi = lo + chunk < dw_n ? lo + chunk : dw_n;
            sum_partials(lo, hi, nparts, dw, parts);
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
}

/* ---- groups of images ---- */

/* y of images n0.. = tmp (k, gn, ohw) + bias. */
CPU_KERNEL_BODY void scatter_bias_body(int64_t k, int64_t gn, int64_t ohw, const float *restrict tmp,
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
CPU_DISPATCH_VOID(static, scatter_bias,
                  (int64_t k, int64_t gn, int64_t ohw, const float *restrict tmp, const float *restrict bias,
                   float *restrict y),
                  (k, gn, ohw, tmp, bias, y))

CPU_KERNEL_BODY void add_bias_rows_body(int64_t k, int64_t ohw, const float *restrict bias, float *restrict y)
{
    for (int64_t kk = 0; kk < k; kk++) {
        const float bv = bias[kk];
        float *restrict o = y + kk * ohw;
#pragma omp simd
        for (int64_t i = 0; i < ohw; i++)
            o[i] += bv;
    }
}
CPU_DISPATCH_VOID(static, add_bias_rows, (int64_t k, int64_t ohw, const float *restrict bias, float *restrict y),
                  (k, ohw, bias, y))

/* tmp (k, gn, ohw) = dy of images n0.. (gn, k, ohw) when tmp is set; and the
 * per-image bias gradient sums db_img[i, kk] in double when db_img is set. */
CPU_KERNEL_BODY void gather_dy_body(int64_t k, int64_t gn, int64_t ohw, const float *restrict dy, float *restrict tmp,
                                 double *restrict db_img)
{
    for (int64_t gi = 0; gi < gn; gi++) {
        for (int64_t kk = 0; kk < k; kk++) {
            const float *restrict s = dy + (gi * k + kk) * ohw;
            if (tmp) {
                float *restrict o = tmp + (kk * gn + gi) * ohw;
#pragma omp simd
                for (int64_t i = 0; i < ohw; i++)
                    o[i] = s[i];
            }
            if (db_img) {
                double acc = 0.0;
#pragma omp simd reduction(+ : acc)
                for (int64_t i = 0; i < ohw; i++)
                    acc += (double)s[i];
                db_img[gi * k + kk] = acc;
            }
        }
    }
}
CPU_DISPATCH_VOID(static, gather_dy,
                  (int64_t k, int64_t gn, int64_t ohw, const float *restrict dy, float *restrict tmp,
                   double *restrict db_img),
                  (k, gn, ohw, dy, tmp, db_img))

static void conv_forward_group(const eng_conv_desc *d, const conv_plan *p, int64_t grp, const float *x,
                               const float *w, const float *bias, float *y, float *col, float *tmp, float *pad)
{
    const int64_t n0 = grp * p->g, gn = n0 + p->g <= d->n ? p->g : d->n - n0, cols = gn * p->ohw;
    const float *colp = col;
    if (p->kind == CONV_DIRECT)
        colp = x + n0 * d->c * p->hw;
    else
        cpu_im2col(d, x, n0, gn, col, pad);
    float *yg = y + n0 * d->k * p->ohw;
    float *out = p->g == 1 ? yg : tmp;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)d->k, (blasint)cols, (blasint)p->ckk, 1.0f, w,
                (blasint)p->ckk, colp, (blasint)cols, 0.0f, out, (blasint)cols);
    if (p->g == 1) {
        if (bias)
            add_bias_rows(d->k, p->ohw, bias, yg);
    } else {
        scatter_bias(d->k, gn, p->ohw, tmp, bias, yg);
    }
}

/* Our own forward, after validation. */
static int conv_forward_own(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w,
                            const float *bias, float *y, void *ws)
{
    conv_plan p;
    conv_ws cw;
    conv_plan_make(b, d, &p);
    conv_ws_layout(b, d, ws, &cw);
    if (p.kind == CONV_POINT) {
        point_forward(b, d, x, w, bias, y, &cw);
        return 0;
    }
    if (p.kind == CONV_STRIDE1) {
        conv_s1_forward(b, d, x, w, bias, y, ws);
        return 0;
    }
    if (p.kind == CONV_PIX) {
        conv_pix_forward(b, d, x, w, bias, y, ws);
        return 0;
    }
    if (p.nthr <= 1) {
        cpu_blas_threads(b);
        for (int64_t grp = 0; grp < p.ngroups; grp++)
            conv_forward_group(d, &p, grp, x, w, bias, y, cw.col[0], cw.tmp[0], cw.pad[0]);
        return 0;
    }
    const int nthr = p.nthr;
#pragma omp parallel num_threads(nthr)
    {
        /* virtual threads t own fixed ranges of groups, whatever the team size */
        for (int t = omp_get_thread_num(); t < nthr; t += omp_get_num_threads()) {
            const int64_t g0 = p.ngroups * t / nthr, g1 = p.ngroups * (t + 1) / nthr;
            for (int64_t grp = g0; grp < g1; grp++)
                conv_forward_group(d, &p, grp, x, w, bias, y, cw.col[t], cw.tmp[t], cw.pad[t]);
        }
    }
    return 0;
}

/* "fp32 conv_fwd n500 c16 32x32 k16 3x3 s1 p1" (+ " nobias", " x16", " y16"). */
static void conv_key(const eng_backend *b, const char *op, const eng_conv_desc *d, const char *extra, char *key,
                     size_t len)
{
    snprintf(key, len, "%s %s n%lld c%lld %lldx%lld k%lld %lldx%lld s%lld p%lld%s%s%s", cpu_bf16(b) ? "bf16" : "fp32",
             op, (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w, (long long)d->k,
             (long long)d->kh, (long long)d->kw, (long long)d->stride, (long long)d->pad, extra,
             d->x_blocked ? " x16" : "", d->y_blocked ? " y16" : "");
}

/* A blocked (n, c, hw) tensor in NCHW, in scratch `slot`; NULL when out of
 * memory. */
static const float *unpacked(eng_backend *b, int slot, int64_t n, int64_t c, int64_t hw, const float *blocked)
{
    float *plain = cpu_scratch(b, slot, (size_t)(n * c * hw) * sizeof(float));
    if (plain)
        cpu_block16_unpack(b, n, c, hw, blocked, plain);
    return plain;
}

typedef struct conv_args {
    const eng_conv_desc *d;
    const float *x, *w, *bias, *dy;
    float *y, *dx, *dw, *db;
    void *ws;
} conv_args;

/* The forward on oneDNN or on our kernels; in bf16 ours read copies of x
 * and w rounded to bf16. */
static int conv_forward_run(eng_backend *b, void *p, cpu_impl impl)
{
    const conv_args *a = p;
    const eng_conv_desc *d = a->d;
    if (impl == CPU_IMPL_DNNL) {
        int rc = cpu_dnnl_conv_forward(b, d, cpu_bf16(b), a->x, a->w, a->bias, a->y);
        if (rc != ENG_ENOTSUP)
            return rc;
        eng_clear_error(); /* a recorded choice oneDNN cannot serve here: our own kernels */
    }
    cpu_dnnl_conv_keep_forget(d);
    const float *x = a->x, *w = a->w;
    if (cpu_bf16(b)) {
        x = cpu_bf16_copy(b, 0, d->n * d->c * d->h * d->w, a->x);
        w = cpu_bf16_copy(b, 1, d->k * d->c * d->kh * d->kw, a->w);
        if (!x || !w)
            return ENG_ENOMEM;
    }
    if (!d->x_blocked && !d->y_blocked)
        return conv_forward_own(b, d, x, w, a->bias, a->y, a->ws);
    /* ours compute in NCHW: a blocked x unpacked first, a blocked y
     * computed there and then packed */
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow;
    float *y = a->y;
    if (d->x_blocked && !(x = unpacked(b, CPU_SCRATCH_PLAIN_X, d->n, d->c, hw, x)))
        return ENG_ENOMEM;
    if (d->y_blocked && !(y = cpu_scratch(b, CPU_SCRATCH_PLAIN_Y, (size_t)(d->n * d->k * ohw) * sizeof(float))))
        return ENG_ENOMEM;
    int rc = conv_forward_own(b, d, x, w, a->bias, y, a->ws);
    if (rc == 0 && d->y_blocked)
        cpu_block16_pack(b, d->n, d->k, ohw, y, a->y);
    return rc;
}

int cpu_conv2d_forward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *bias,
                       float *y, void *ws)
{
    int rc = conv_check("conv2d_forward", d);
    if (rc < 0)
        return rc;
    CPU_CHECK(ws != NULL, "cpu conv2d_forward: workspace is NULL");
    CPU_CHECK(!(d->x_blocked || d->y_blocked) || cpu_conv2d_blocked(b, d),
              "cpu conv2d_forward: blocked tensors need float32, AVX-512, oneDNN and 16k channels (c %lld, k %lld)",
              (long long)d->c, (long long)d->k);
    CPU_NONNULL("conv2d_forward", x);
    CPU_NONNULL("conv2d_forward", w);
    CPU_NONNULL("conv2d_forward", y);
    conv_args a = {.d = d, .x = x, .w = w, .bias = bias, .y = y, .ws = ws};
    char key[120];
    conv_key(b, "conv_fwd", d, bias ? "" : " nobias", key, sizeof key);
    cpu_impl impl;
    if ((rc = cpu_choose(b, key, conv_forward_run, &a, &impl)) < 0)
        return rc;
    return conv_forward_run(b, &a, impl);
}

static void conv_backward_group(const eng_conv_desc *d, const conv_plan *p, int64_t grp, bool first, const float *x,
                                const float *w, const float *dy, float *dx, float *dwp, double *db_img, float *col,
                                float *tmp, float *pad)
{
    const int64_t n0 = grp * p->g, gn = n0 + p->g <= d->n ? p->g : d->n - n0, cols = gn * p->ohw;
    const float *dyg = dy + n0 * d->k * p->ohw;
    if (p->g > 1 || db_img)
        gather_dy(d->k, gn, p->ohw, dyg, p->g > 1 ? tmp : NULL, db_img ? db_img + n0 * d->k : NULL);
    if (p->g > 1)
        dyg = tmp;
    const float *colp = col;
    if (p->kind == CONV_DIRECT)
        colp = x + n0 * d->c * p->hw;
    else
        cpu_im2col(d, x, n0, gn, col, pad);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)d->k, (blasint)p->ckk, (blasint)cols, 1.0f, dyg,
                (blasint)cols, colp, (blasint)cols, first ? 0.0f : 1.0f, dwp, (blasint)p->ckk);
    if (!dx)
        return;
    /* dcol = W^T dY: straight into dx for the direct case, else into the
     * column buffer, which is free again, and then col2im */
    float *dcol = p->kind == CONV_DIRECT ? dx + n0 * d->c * p->hw : col;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)p->ckk, (blasint)cols, (blasint)d->k, 1.0f, w,
                (blasint)p->ckk, dyg, (blasint)cols, 0.0f, dcol, (blasint)cols);
    if (p->kind != CONV_DIRECT)
        cpu_col2im(d, col, n0, gn, dx, pad);
}

/* Our own backward, after validation. */
static int conv_backward_own(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                             float *dx, float *dw, float *db, void *ws)
{
    conv_plan p;
    conv_ws cw;
    conv_plan_make(b, d, &p);
    conv_ws_layout(b, d, ws, &cw);
    if (p.kind == CONV_POINT)
        return point_backward(b, d, x, w, dy, dx, dw, db, &cw);
    if (p.kind == CONV_STRIDE1) {
        conv_s1_backward(b, d, x, w, dy, dx, dw, db, ws);
        return 0;
    }
    if (p.kind == CONV_PIX) {
        conv_pix_backward(b, d, x, w, dy, dx, dw, db, ws);
        return 0;
    }
    double *db_img = db ? cw.db_img : NULL;
    if (p.nthr <= 1) {
        cpu_blas_threads(b);
        for (int64_t grp = 0; grp < p.ngroups; grp++)
            conv_backward_group(d, &p, grp, grp == 0, x, w, dy, dx, dw, db_img, cw.col[0], cw.tmp[0], cw.pad[0]);
    } else {
        const int nthr = p.nthr;
        cw.dw[0] = dw;
#pragma omp parallel num_threads(nthr)
        {
            for (int t = omp_get_thread_num(); t < nthr; t += omp_get_num_threads()) {
                const int64_t g0 = p.ngroups * t / nthr, g1 = p.ngroups * (t + 1) / nthr;
                for (int64_t grp = g0; grp < g1; grp++)
                    conv_backward_group(d, &p, grp, grp == g0, x, w, dy, dx, cw.dw[t], db_img, cw.col[t],
                                        cw.tmp[t], cw.pad[t]);
            }
        }
    }
    conv_finish_backward(b, d, p.nthr, dw, cw.dw, db_img, db);
    return 0;
}

/* The backward on oneDNN or on our kernels; in bf16 ours read copies of x,
 * w and dy rounded to bf16 (the gradients stay float32). */
static int conv_backward_run(eng_backend *b, void *p, cpu_impl impl)
{
    const conv_args *a = p;
    const eng_conv_desc *d = a->d;
    if (impl == CPU_IMPL_DNNL) {
        int rc = cpu_dnnl_conv_backward(b, d, cpu_bf16(b), a->x, a->w, a->dy, a->dx, a->dw, a->db);
        if (rc != ENG_ENOTSUP)
            return rc;
        eng_clear_error();
    }
    const float *x = a->x, *w = a->w, *dy = a->dy;
    float *dx = a->dx;
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow;
    /* ours compute in NCHW: blocked x and dy unpacked first, a blocked dx
     * computed there and then packed */
    if (d->x_blocked && !(x = unpacked(b, CPU_SCRATCH_PLAIN_X, d->n, d->c, hw, x)))
        return ENG_ENOMEM;
    if (d->x_blocked && dx && !(dx = cpu_scratch(b, CPU_SCRATCH_PLAIN_DX, (size_t)(d->n * d->c * hw) * sizeof(float))))
        return ENG_ENOMEM;
    if (d->y_blocked && !(dy = unpacked(b, CPU_SCRATCH_PLAIN_Y, d->n, d->k, ohw, dy)))
        return ENG_ENOMEM;
    if (cpu_bf16(b)) {
        x = cpu_bf16_copy(b, 0, d->n * d->c * d->h * d->w, a->x);
        w = cpu_bf16_copy(b, 1, d->k * d->c * d->kh * d->kw, a->w);
        dy = cpu_bf16_copy(b, 2, d->n * d->k * d->oh * d->ow, a->dy);
        if (!x || !w || !dy)
            return ENG_ENOMEM;
    }
    int rc = conv_backward_own(b, d, x, w, dy, dx, a->dw, a->db, a->ws);
    if (rc == 0 && dx && dx != a->dx)
        cpu_block16_pack(b, d->n, d->c, hw, dx, a->dx);
    return rc;
}

int cpu_conv2d_backward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, void *ws)
{
    int rc = conv_check("conv2d_backward", d);
    if (rc < 0)
        return rc;
    CPU_CHECK(ws != NULL, "cpu conv2d_backward: workspace is NULL");
    CPU_CHECK(!(d->x_blocked || d->y_blocked) || cpu_conv2d_blocked(b, d),
              "cpu conv2d_backward: blocked tensors need float32, AVX-512, oneDNN and 16k channels (c %lld, k %lld)",
              (long long)d->c, (long long)d->k);
    CPU_NONNULL("conv2d_backward", x);
    CPU_NONNULL("conv2d_backward", w);
    CPU_NONNULL("conv2d_backward", dy);
    CPU_NONNULL("conv2d_backward", dw);
    conv_args a = {.d = d, .x = x, .w = w, .dy = dy, .dx = dx, .dw = dw, .db = db, .ws = ws};
    char key[120];
    /* one choice whether dx is wanted or not, so that dw has the same bits either way */
    conv_key(b, "conv_bwd", d, db ? "" : " nobias", key, sizeof key);
    cpu_impl impl;
    if ((rc = cpu_choose(b, key, conv_backward_run, &a, &impl)) < 0)
        return rc;
    return conv_backward_run(b, &a, impl);
}
