/* Direct stride-1 convolution for cpu_conv2d.c: long output rows with few
 * input channels (a CNN's first layer) or few output channels.
 *
 * Where output rows are long and channel counts small, im2col + sgemm
 * spends as much time
 * writing and packing the column matrix as multiplying: each column element
 * meets only k = 16 weights. These kernels read a zero-padded copy of the
 * image instead and keep a 4-channel x 16-pixel output tile in eight 8-float
 * vector registers:
 *
 *   correlate: out[o, y, x] = sum over (i, ky, kx) of in[i, y+ky, x+kx] w[o, i, ky, kx]
 *              forward (in = padded x), and dx (in = dy padded by kh-1-pad,
 *              weights transposed and flipped);
 *   weight gradient: dw[o, i, ky, kx] = sum over (y, x) of dy[o, y, x] in[i, y+ky, x+kx],
 *              a 4-channel x 3-tap tile of 8-lane partial sums per pass.
 *
 * Vectors are GCC vector extensions (cpu_v8f.h), lowered to what the build's
 * -march offers; multiply-adds contract to FMA in this file only. The
 * reduction order is fixed (lanes are summed in lane order), so results are
 * deterministic. The driver below runs them image by image, each thread
 * over a fixed range of images with its own padded buffers. */
#include <omp.h>
#include <string.h>

#include "engine/cpu/cpu_conv.h"

#pragma GCC optimize("fp-contract=fast")
#include "engine/cpu/cpu_v8f.h"

/* One output tile: channels o0 .. o0+3 (weights wk, blocked [i][ky][kx][4]),
 * pixels x0 .. x0+15 of output row y. `in` points at input row y, column x0
 * of plane 0; planes are `plane` floats apart, rows `ld`. Writes nk < = 4
 * channels and npx <= 16 pixels of out (rows of `ow`, planes of `oplane`). */
AI void tile(const float *in, int64_t nin, int64_t plane, int64_t ld, int64_t KH, int64_t KW, const float *wk,
             float *out, int64_t oplane, int64_t nk, int64_t npx, const float *bias)
{
    v8f a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0}, a30 = {0}, a31 = {0};
    for (int64_t i = 0; i < nin; i++) {
        const float *pi = in + i * plane;
#pragma GCC unroll 3
        for (int64_t ky = 0; ky < KH; ky++) {
            const float *r = pi + ky * ld;
#pragma GCC unroll 3
            for (int64_t kx = 0; kx < KW; kx++, wk += 4) {
                const v8f x0 = ld8(r + kx), x1 = ld8(r + kx + 8);
                a00 += x0 * wk[0];
                a01 += x1 * wk[0];
                a10 += x0 * wk[1];
                a11 += x1 * wk[1];
                a20 += x0 * wk[2];
                a21 += x1 * wk[2];
                a30 += x0 * wk[3];
                a31 += x1 * wk[3];
            }
        }
    }
    const v8f acc[4][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
    for (int64_t j = 0; j < nk; j++) {
        const float bv = bias ? bias[j] : 0.0f;
        float *o = out + j * oplane;
        if (npx == 16) {
            st8(o, acc[j][0] + bv);
            st8(o + 8, acc[j][1] + bv);
        } else {
            float t[16];
            st8(t, acc[j][0] + bv);
            st8(t + 8, acc[j][1] + bv);
            for (int64_t p = 0; p < npx; p++)
                o[p] = t[p];
        }
    }
}

AI void correlate_impl(const float *in, int64_t nin, int64_t hp, int64_t wp, int64_t KH, int64_t KW,
                       const float *wblk, int64_t nout, int64_t OH, int64_t OW, const float *bias, float *out)
{
    const int64_t plane = hp * wp, oplane = OH * OW, wstride = nin * KH * KW * 4;
    for (int64_t o0 = 0; o0 < nout; o0 += 4) {
        const int64_t nk = nout - o0 < 4 ? nout - o0 : 4;
        const float *wk = wblk + (o0 / 4) * wstride;
        for (int64_t y = 0; y < OH; y++)
            for (int64_t x0 = 0; x0 < OW; x0 += 16)
                tile(in + y * wp + x0, nin, plane, wp, KH, KW, wk, out + o0 * oplane + y * OW + x0, oplane, nk,
                     OW - x0 < 16 ? OW - x0 : 16, bias ? bias + o0 : NULL);
    }
}

CPU_KERNEL_BODY void direct_correlate_body(const float *in, int64_t nin, int64_t hp, int64_t wp, int64_t KH, int64_t KW,
                                     const float *wblk, int64_t nout, int64_t OH, int64_t OW, const float *bias,
                                     float *out)
{
    /* the common kernel sizes with constant trip counts, fully unrolled */
    if (KH == 3 && KW == 3)
        correlate_impl(in, nin, hp, wp, 3, 3, wblk, nout, OH, OW, bias, out);
    else if (KH == 1 && KW == 1)
        correlate_impl(in, nin, hp, wp, 1, 1, wblk, nout, OH, OW, bias, out);
    else
        correlate_impl(in, nin, hp, wp, KH, KW, wblk, nout, OH, OW, bias, out);
}
CPU_DISPATCH_VOID(static, direct_correlate,
                  (const float *in, int64_t nin, int64_t hp, int64_t wp, int64_t KH, int64_t KW, const float *wblk,
                   int64_t nout, int64_t OH, int64_t OW, const float *bias, float *out),
                  (in, nin, hp, wp, KH, KW, wblk, nout, OH, OW, bias, out))

/* dw[o0+j, i, ky, kx0+t] += sum over (y, x) of g_j[y, x] * in[i, y+ky, x+kx0+t]
 * for j < 4, t < 3: g rows of `ldg` floats (zero beyond OW, 8-aligned
 * length owv), `in` padded planes as in correlate. */
AI void wgrad_impl(const float *in, int64_t nin, int64_t hp, int64_t wp, int64_t KH, int64_t KW, const float *g,
                   int64_t nout, int64_t OH, int64_t owv, float *dw)
{
    const int64_t plane = hp * wp, gplane = OH * owv;
    for (int64_t o0 = 0; o0 < nout; o0 += 4) {
        const int64_t nk = nout - o0 < 4 ? nout - o0 : 4;
        const float *g0 = g + o0 * gplane;
        for (int64_t i = 0; i < nin; i++)
            for (int64_t ky = 0; ky < KH; ky++)
                for (int64_t kx0 = 0; kx0 < KW; kx0 += 3) {
                    v8f a[4][3] = {{{0}}};
                    for (int64_t y = 0; y < OH; y++) {
                        const float *xr = in + i * plane + (y + ky) * wp + kx0;
                        const float *gr = g0 + y * owv;
                        for (int64_t v = 0; v < owv; v += 8) {
                            const v8f x0 = ld8(xr + v), x1 = ld8(xr + v + 1), x2 = ld8(xr + v + 2);
#pragma GCC unroll 4
                            for (int j = 0; j < 4; j++) {
                                const v8f gj = ld8(gr + j * gplane + v);
                                a[j][0] += gj * x0;
                                a[j][1] += gj * x1;
                                a[j][2] += gj * x2;
                            }
                        }
                    }
                    const int64_t nt = KW - kx0 < 3 ? KW - kx0 : 3;
                    for (int64_t j = 0; j < nk; j++)
                        for (int64_t t = 0; t < nt; t++)
                            dw[(((o0 + j) * nin + i) * KH + ky) * KW + kx0 + t] += hsum8(a[j][t]);
                }
    }
}

CPU_KERNEL_BODY void direct_wgrad_body(const float *in, int64_t nin, int64_t hp, int64_t wp, int64_t KH, int64_t KW,
                                 const float *g, int64_t nout, int64_t OH, int64_t owv, float *dw)
{
    if (KH == 3 && KW == 3)
        wgrad_impl(in, nin, hp, wp, 3, 3, g, nout, OH, owv, dw);
    else
        wgrad_impl(in, nin, hp, wp, KH, KW, g, nout, OH, owv, dw);
}
CPU_DISPATCH_VOID(static, direct_wgrad,
                  (const float *in, int64_t nin, int64_t hp, int64_t wp, int64_t KH, int64_t KW, const float *g,
                   int64_t nout, int64_t OH, int64_t owv, float *dw),
                  (in, nin, hp, wp, KH, KW, g, nout, OH, owv, dw))

/* ---- the driver ---- */

#ifndef CPU_DIRECT_MIN_OW
#define CPU_DIRECT_MIN_OW 12
#endif

/* Long rows, and few taps or few output channels: with many taps and 8+
 * channels the channel-vectorised kernels of cpu_conv_pix.c are faster
 * (measured here: 16 -> 16 channels at 32x32, 1.5x). */
bool conv_s1_applies(const eng_conv_desc *d)
{
    return d->stride == 1 && d->pad <= d->kh - 1 && d->pad <= d->kw - 1 && d->ow >= CPU_DIRECT_MIN_OW &&
           !(d->kh == 1 && d->kw == 1) && (d->c * d->kh * d->kw < 64 || d->k < 8);
}

/* Buffer geometry. The padded rows are long enough for 16-pixel tiles and
 * for the weight gradient's 3-tap overreach. */
typedef struct s1_geo {
    int64_t hp, wp;      /* padded x: (h + 2 pad) x (roundup(ow, 16) + kw + 2) */
    int64_t top2, left2; /* padding of dy for dx: kh-1-pad, kw-1-pad */
    int64_t hp2, wp2;    /* padded dy: (h + kh - 1) x (roundup(w, 16) + kw + 2) */
    int64_t owv, kr, cr; /* ow rounded to 8; k and c rounded to 4 */
} s1_geo;

static s1_geo s1_geometry(const eng_conv_desc *d)
{
    s1_geo g;
    g.hp = d->h + 2 * d->pad;
    g.wp = (d->ow + 15) / 16 * 16 + d->kw + 2;
    g.top2 = d->kh - 1 - d->pad;
    g.left2 = d->kw - 1 - d->pad;
    g.hp2 = d->h + d->kh - 1;
    g.wp2 = (d->w + 15) / 16 * 16 + d->kw + 2;
    g.owv = (d->ow + 7) / 8 * 8;
    g.kr = (d->k + 3) / 4 * 4;
    g.cr = (d->c + 3) / 4 * 4;
    return g;
}

/* Workspace: per thread the padded image, the padded dy (for dx) and dy
 * rows (for dw); shared the blocked weights for y and for dx, the dw
 * partials of threads 1.., and the per-image bias gradient sums. */
typedef struct s1_ws {
    float *xp[CONV_MAX_THREADS], *dyp[CONV_MAX_THREADS], *dyr[CONV_MAX_THREADS], *dw[CONV_MAX_THREADS];
    float *wblk, *wflip;
    double *db_img;
} s1_ws;

static size_t s1_carve(const eng_backend *b, const eng_conv_desc *d, void *ws, s1_ws *out)
{
    const s1_geo g = s1_geometry(d);
    const int64_t taps = d->kh * d->kw;
    const int T = conv_threads(b);
    conv_carver c = {ws, 0};
    s1_ws dummy;
    s1_ws *o = out ? out : &dummy;
    for (int t = 0; t < T; t++) {
        o->xp[t] = conv_take(&c, (size_t)(d->c * g.hp * g.wp) * sizeof(float));
        o->dyp[t] = conv_take(&c, (size_t)(d->k * g.hp2 * g.wp2) * sizeof(float));
        o->dyr[t] = conv_take(&c, (size_t)(g.kr * d->oh * g.owv) * sizeof(float));
    }
    o->wblk = conv_take(&c, (size_t)(g.kr * d->c * taps) * sizeof(float));
    o->wflip = conv_take(&c, (size_t)(g.cr * d->k * taps) * sizeof(float));
    o->dw[0] = NULL;
    for (int t = 1; t < T; t++)
        o->dw[t] = conv_take(&c, (size_t)(d->k * d->c * taps) * sizeof(float));
    o->db_img = conv_take(&c, (size_t)(d->n * d->k) * sizeof(double));
    return c.off;
}

size_t conv_s1_workspace(const eng_backend *b, const eng_conv_desc *d) { return s1_carve(b, d, NULL, NULL); }

/* wblk[o/4][i][ky][kx][o%4] = W[o, i, ky, kx], zero for o >= k. */
static void s1_block_weights(const eng_conv_desc *d, const float *w, int64_t kr, float *wblk)
{
    const int64_t taps = d->kh * d->kw;
    for (int64_t o = 0; o < kr; o++)
        for (int64_t i = 0; i < d->c; i++)
            for (int64_t t = 0; t < taps; t++)
                wblk[((o / 4) * d->c * taps + i * taps + t) * 4 + o % 4] =
                    o < d->k ? w[(o * d->c + i) * taps + t] : 0.0f;
}

/* wflip[c/4][o][ky][kx][c%4] = W[o, c, kh-1-ky, kw-1-kx], zero for c >= C:
 * dx is the correlation of dy (padded by kh-1-pad) with these weights. */
static void s1_flip_weights(const eng_conv_desc *d, const float *w, int64_t cr, float *wflip)
{
    const int64_t taps = d->kh * d->kw;
    for (int64_t c = 0; c < cr; c++)
        for (int64_t o = 0; o < d->k; o++)
            for (int64_t ky = 0; ky < d->kh; ky++)
                for (int64_t kx = 0; kx < d->kw; kx++)
                    wflip[((c / 4) * d->k * taps + o * taps + ky * d->kw + kx) * 4 + c % 4] =
                        c < d->c ? w[((o * d->c + c) * d->kh + d->kh - 1 - ky) * d->kw + d->kw - 1 - kx] : 0.0f;
}

static int s1_nthr(const eng_backend *b, const eng_conv_desc *d)
{
    const int T = conv_threads(b);
    return d->n < T ? (int)d->n : T;
}

void conv_s1_forward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *bias,
                     float *y, void *ws)
{
    s1_ws cw;
    s1_carve(b, d, ws, &cw);
    const s1_geo g = s1_geometry(d);
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow;
    s1_block_weights(d, w, g.kr, cw.wblk);
    const int nthr = s1_nthr(b, d);
#pragma omp parallel num_threads(nthr)
    for (int t = omp_get_thread_num(); t < nthr; t += omp_get_num_threads()) {
        float *xp = cw.xp[t];
        memset(xp, 0, (size_t)(d->c * g.hp * g.wp) * sizeof(float));
        for (int64_t i = d->n * t / nthr; i < d->n * (t + 1) / nthr; i++) {
            conv_fill_padded(x + i * d->c * hw, d->c, d->h, d->w, d->pad, d->pad, g.hp, g.wp, xp);
            direct_correlate(xp, d->c, g.hp, g.wp, d->kh, d->kw, cw.wblk, d->k, d->oh, d->ow, bias, y + i * d->k * ohw);
        }
    }
}

/* dy rows of one image into dyr (oh x owv per channel, zero beyond ow). */
static void s1_dy_rows(const eng_conv_desc *d, const s1_geo *g, const float *dyi, float *dyr)
{
    for (int64_t k = 0; k < d->k; k++)
        for (int64_t yy = 0; yy < d->oh; yy++)
            memcpy(dyr + (k * d->oh + yy) * g->owv, dyi + (k * d->oh + yy) * d->ow, (size_t)d->ow * sizeof(float));
}

void conv_s1_backward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db, void *ws)
{
    s1_ws cw;
    s1_carve(b, d, ws, &cw);
    const s1_geo g = s1_geometry(d);
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow, dw_n = d->k * d->c * d->kh * d->kw;
    if (dx)
        s1_flip_weights(d, w, g.cr, cw.wflip);
    const int nthr = s1_nthr(b, d);
    cw.dw[0] = dw;
#pragma omp parallel num_threads(nthr)
    for (int t = omp_get_thread_num(); t < nthr; t += omp_get_num_threads()) {
        float *xp = cw.xp[t], *dyp = cw.dyp[t], *dyr = cw.dyr[t], *dwp = cw.dw[t];
        memset(xp, 0, (size_t)(d->c * g.hp * g.wp) * sizeof(float));
        memset(dyr, 0, (size_t)(g.kr * d->oh * g.owv) * sizeof(float));
        memset(dwp, 0, (size_t)dw_n * sizeof(float));
        if (dx)
            memset(dyp, 0, (size_t)(d->k * g.hp2 * g.wp2) * sizeof(float));
        for (int64_t i = d->n * t / nthr; i < d->n * (t + 1) / nthr; i++) {
            const float *dyi = dy + i * d->k * ohw;
            conv_fill_padded(x + i * d->c * hw, d->c, d->h, d->w, d->pad, d->pad, g.hp, g.wp, xp);
            s1_dy_rows(d, &g, dyi, dyr);
            if (db)
                conv_db_image(d->k, ohw, dyi, cw.db_img + i * d->k);
            direct_wgrad(xp, d->c, g.hp, g.wp, d->kh, d->kw, dyr, d->k, d->oh, g.owv, dwp);
            if (dx) {
                conv_fill_padded(dyi, d->k, d->oh, d->ow, g.top2, g.left2, g.hp2, g.wp2, dyp);
                direct_correlate(dyp, d->k, g.hp2, g.wp2, d->kh, d->kw, cw.wflip, d->c, d->h, d->w, NULL,
                                 dx + i * d->c * hw);
            }
        }
    }
    conv_finish_backward(b, d, nthr, dw, cw.dw, cw.db_img, db);
}
