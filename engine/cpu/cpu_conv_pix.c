/* Channel-vectorised convolution for cpu_conv2d.c: stride 1 with 8 or more
 * output channels (all but a CNN's first layer).
 *
 * im2col + sgemm spends much of its time building and packing the column
 * matrix, and on short rows (7x7, 3x3 images) pixel-vectorised kernels
 * would leave most vector lanes empty.
 * These kernels vectorise over 16 output channels instead and walk a list
 * of output pixels (any image of a group, any stride) through zero-padded
 * copies of the images:
 *
 *   pix tile:  out[p, o0..o0+16) = sum over taps q of in[base_p + off_q] * w[q, o0..o0+16)
 *              for 6 pixels p at once (12 accumulators): forward, and dx
 *              (in = dy padded by kh-1-pad, weights transposed and flipped);
 *   wgrad tile: dw[o0..o0+16, q] = sum over pixels p of g[p, o0..o0+16) * in[base_p + off_q]
 *              for 6 taps q at once, g being dy with channels last.
 *
 * A tap q is one (input channel, ky, kx), its offset off_q = i * plane +
 * ky * wp + kx. The summation order is fixed, so results are deterministic;
 * multiply-adds contract to FMA in this file. The driver below runs them
 * over groups of images, each thread over a fixed range of groups. */
#include <omp.h>
#include <string.h>

#include "engine/cpu/cpu_conv.h"

#pragma GCC optimize("fp-contract=fast")
#include "engine/cpu/cpu_v8f.h"

/* Six pixels x 16 channels. base: the pixels' base pointers; off: ntap tap
 * offsets; w: [ntap][16] weights of this channel block. Results to t[6][16]. */
AI void pix_tile6(const float *const base[6], const int32_t *restrict off, int64_t ntap, const float *restrict w,
                  float t[6][16])
{
    const float *b0 = base[0], *b1 = base[1], *b2 = base[2], *b3 = base[3], *b4 = base[4], *b5 = base[5];
    v8f a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0};
    v8f a30 = {0}, a31 = {0}, a40 = {0}, a41 = {0}, a50 = {0}, a51 = {0};
    for (int64_t q = 0; q < ntap; q++, w += 16) {
        const int32_t o = off[q];
        const v8f w0 = ld8(w), w1 = ld8(w + 8);
        float x;
        x = b0[o];
        a00 += x * w0;
        a01 += x * w1;
        x = b1[o];
        a10 += x * w0;
        a11 += x * w1;
        x = b2[o];
        a20 += x * w0;
        a21 += x * w1;
        x = b3[o];
        a30 += x * w0;
        a31 += x * w1;
        x = b4[o];
        a40 += x * w0;
        a41 += x * w1;
        x = b5[o];
        a50 += x * w0;
        a51 += x * w1;
    }
    st8(t[0], a00);
    st8(t[0] + 8, a01);
    st8(t[1], a10);
    st8(t[1] + 8, a11);
    st8(t[2], a20);
    st8(t[2] + 8, a21);
    st8(t[3], a30);
    st8(t[3] + 8, a31);
    st8(t[4], a40);
    st8(t[4] + 8, a41);
    st8(t[5], a50);
    st8(t[5] + 8, a51);
}

/* out[o, pixel p] for every pixel of the list and o < nout: pixels p have
 * input base pointers base[p] and output offsets obase[p] (into out, plane
 * of channel o at o * oplane). w: weights [nout/16][ntap][16], zero beyond
 * nout; bias may be NULL. Results of PIX_CHUNK pixels are gathered per
 * channel before they are written: the 16 output planes of a block are
 * often 4 KiB apart and share one L1 set, so writing each tile straight out
 * would thrash it. */
#define PIX_CHUNK 48
CPU_KERNEL_BODY void pix_correlate_body(const float *const *base, const int64_t *obase, int64_t npix,
                                     const int32_t *off, int64_t ntap, const float *w, int64_t nout,
                                     const float *bias, float *out, int64_t oplane)
{
    for (int64_t o0 = 0; o0 < nout; o0 += 16) {
        const int64_t nk = nout - o0 < 16 ? nout - o0 : 16;
        const float *wb = w + (o0 / 16) * ntap * 16;
        for (int64_t c0 = 0; c0 < npix; c0 += PIX_CHUNK) {
            const int64_t nc = npix - c0 < PIX_CHUNK ? npix - c0 : PIX_CHUNK;
            float chunk[16][PIX_CHUNK];
            for (int64_t p0 = c0; p0 < c0 + nc; p0 += 6) {
                const int64_t np = c0 + nc - p0 < 6 ? c0 + nc - p0 : 6;
                const float *b6[6];
                for (int64_t j = 0; j < 6; j++)
                    b6[j] = base[p0 + (j < np ? j : np - 1)];
                float t[6][16];
                pix_tile6(b6, off, ntap, wb, t);
                for (int64_t j = 0; j < np; j++)
                    for (int64_t k = 0; k < 16; k++)
                        chunk[k][p0 - c0 + j] = t[j][k];
            }
            for (int64_t k = 0; k < nk; k++) {
                const float bv = bias ? bias[o0 + k] : 0.0f;
                float *o = out + (o0 + k) * oplane;
                for (int64_t j = 0; j < nc; j++)
                    o[obase[c0 + j]] = chunk[k][j] + bv;
            }
        }
    }
}
CPU_DISPATCH_VOID(static, pix_correlate,
                  (const float *const *base, const int64_t *obase, int64_t npix, const int32_t *off, int64_t ntap,
                   const float *w, int64_t nout, const float *bias, float *out, int64_t oplane),
                  (base, obase, npix, off, ntap, w, nout, bias, out, oplane))

/* dw[o, q] += sum over pixels p of g[p * ldg + o] * base[p][off[q]] for
 * o < nout (g holds roundup(nout, 16) channels per pixel, zero beyond nout)
 * and q < ntap; dw rows of ntap floats. */
CPU_KERNEL_BODY void pix_wgrad_body(const float *const *base, int64_t npix, const float *g, int64_t ldg,
                              const int32_t *off, int64_t ntap, int64_t nout, float *dw)
{
    for (int64_t o0 = 0; o0 < nout; o0 += 16) {
        const int64_t nk = nout - o0 < 16 ? nout - o0 : 16;
        for (int64_t q0 = 0; q0 < ntap; q0 += 6) {
            const int64_t nq = ntap - q0 < 6 ? ntap - q0 : 6;
            int32_t o6[6];
            for (int64_t j = 0; j < 6; j++)
                o6[j] = off[q0 + (j < nq ? j : nq - 1)];
            v8f a00 = {0}, a01 = {0}, a10 = {0}, a11 = {0}, a20 = {0}, a21 = {0};
            v8f a30 = {0}, a31 = {0}, a40 = {0}, a41 = {0}, a50 = {0}, a51 = {0};
            const float *gp = g + o0;
            for (int64_t p = 0; p < npix; p++, gp += ldg) {
                const float *b = base[p];
                const v8f g0 = ld8(gp), g1 = ld8(gp + 8);
                float x;
                x = b[o6[0]];
                a00 += x * g0;
                a01 += x * g1;
                x = b[o6[1]];
                a10 += x * g0;
                a11 += x * g1;
                x = b[o6[2]];
                a20 += x * g0;
                a21 += x * g1;
                x = b[o6[3]];
                a30 += x * g0;
                a31 += x * g1;
                x = b[o6[4]];
                a40 += x * g0;
                a41 += x * g1;
                x = b[o6[5]];
                a50 += x * g0;
                a51 += x * g1;
            }
            float t[6][16];
            st8(t[0], a00);
            st8(t[0] + 8, a01);
            st8(t[1], a10);
            st8(t[1] + 8, a11);
            st8(t[2], a20);
            st8(t[2] + 8, a21);
            st8(t[3], a30);
            st8(t[3] + 8, a31);
            st8(t[4], a40);
            st8(t[4] + 8, a41);
            st8(t[5], a50);
            st8(t[5] + 8, a51);
            for (int64_t j = 0; j < nq; j++)
                for (int64_t k = 0; k < nk; k++)
                    dw[(o0 + k) * ntap + q0 + j] += t[j][k];
        }
    }
}
CPU_DISPATCH_VOID(static, pix_wgrad,
                  (const float *const *base, int64_t npix, const float *g, int64_t ldg, const int32_t *off,
                   int64_t ntap, int64_t nout, float *dw),
                  (base, npix, g, ldg, off, ntap, nout, dw))

/* ---- the driver ---- */

/* Output pixels per group of images: enough tiles per weight pass. */
#ifndef CPU_PIX_PIXELS
#define CPU_PIX_PIXELS 256
#endif

bool conv_pix_applies(const eng_conv_desc *d)
{
    return d->stride == 1 && d->pad <= d->kh - 1 && d->pad <= d->kw - 1 && !conv_s1_applies(d) && d->k >= 8;
}

typedef struct pix_geo {
    int64_t hp, wp;   /* padded x: (h + 2 pad) x (w + 2 pad) */
    int64_t hp2, wp2; /* dy padded by kh-1-pad, kw-1-pad: (h + kh - 1) x (w + kw - 1) */
    int64_t ntap, ntap2, kr, cr; /* taps c*kh*kw and k*kh*kw; k, c rounded to 16 */
    int64_t g, ngroups;
    int nthr;
} pix_geo;

/* The largest group (what the workspace is sized for). */
static int64_t pix_group_max(const eng_conv_desc *d)
{
    const int64_t ohw = d->oh * d->ow;
    int64_t g = (CPU_PIX_PIXELS + ohw - 1) / ohw;
    return g > d->n ? d->n : g;
}

static pix_geo pix_geometry(const eng_backend *b, const eng_conv_desc *d)
{
    pix_geo g;
    g.hp = d->h + 2 * d->pad;
    g.wp = d->w + 2 * d->pad;
    g.hp2 = d->h + d->kh - 1;
    g.wp2 = d->w + d->kw - 1;
    g.ntap = d->c * d->kh * d->kw;
    g.ntap2 = d->k * d->kh * d->kw;
    g.kr = (d->k + 15) / 16 * 16;
    g.cr = (d->c + 15) / 16 * 16;
    const int T = conv_threads(b);
    int64_t gs = pix_group_max(d), ng = (d->n + gs - 1) / gs;
    if (T > 1 && ng % T != 0 && ng < 8 * T) { /* a few large groups: a multiple of the threads */
        const int64_t want = (ng + T - 1) / T * T;
        gs = (d->n + want - 1) / want;
        ng = (d->n + gs - 1) / gs;
    }
    g.g = gs;
    g.ngroups = ng;
    g.nthr = ng < T ? (int)ng : T;
    return g;
}

/* Workspace: per thread the padded images of a group, the pixel lists
 * (input base pointers and output offsets) for y and for dx, dy with
 * channels last, padded dy; shared the blocked weights and tap offsets for
 * y and for dx, the dw partials of threads 1.., and per-image bias sums. */
typedef struct pix_ws {
    float *xp[CONV_MAX_THREADS], *dyt[CONV_MAX_THREADS], *dyp[CONV_MAX_THREADS], *dw[CONV_MAX_THREADS];
    const float **xbase[CONV_MAX_THREADS], **dxbase[CONV_MAX_THREADS];
    int64_t *obase[CONV_MAX_THREADS], *dxobase[CONV_MAX_THREADS];
    float *wv, *wf;
    int32_t *off, *off2;
    double *db_img;
} pix_ws;

static size_t pix_carve(const eng_backend *b, const eng_conv_desc *d, void *ws, pix_ws *out)
{
    const pix_geo g = pix_geometry(b, d);
    const int64_t gm = pix_group_max(d), ohw = d->oh * d->ow, hw = d->h * d->w;
    const int T = conv_threads(b);
    conv_carver c = {ws, 0};
    pix_ws dummy;
    pix_ws *o = out ? out : &dummy;
    for (int t = 0; t < T; t++) {
        o->xp[t] = conv_take(&c, (size_t)(gm * d->c * g.hp * g.wp) * sizeof(float));
        o->xbase[t] = conv_take(&c, (size_t)(gm * ohw) * sizeof(float *));
        o->obase[t] = conv_take(&c, (size_t)(gm * ohw) * sizeof(int64_t));
        o->dyt[t] = conv_take(&c, (size_t)(gm * ohw * g.kr) * sizeof(float));
        o->dyp[t] = conv_take(&c, (size_t)(gm * d->k * g.hp2 * g.wp2) * sizeof(float));
        o->dxbase[t] = conv_take(&c, (size_t)(gm * hw) * sizeof(float *));
        o->dxobase[t] = conv_take(&c, (size_t)(gm * hw) * sizeof(int64_t));
    }
    o->wv = conv_take(&c, (size_t)(g.kr * g.ntap) * sizeof(float));
    o->wf = conv_take(&c, (size_t)(g.cr * g.ntap2) * sizeof(float));
    o->off = conv_take(&c, (size_t)g.ntap * sizeof(int32_t));
    o->off2 = conv_take(&c, (size_t)g.ntap2 * sizeof(int32_t));
    o->dw[0] = NULL;
    for (int t = 1; t < T; t++)
        o->dw[t] = conv_take(&c, (size_t)(d->k * g.ntap) * sizeof(float));
    o->db_img = conv_take(&c, (size_t)(d->n * d->k) * sizeof(double));
    return c.off;
}

size_t conv_pix_workspace(const eng_backend *b, const eng_conv_desc *d) { return pix_carve(b, d, NULL, NULL); }

/* wv[o/16][q][o%16] = W[o, q] (q = (i, ky, kx)), zero for o >= k; tap
 * offsets into the padded images. */
static void pix_forward_weights(const eng_conv_desc *d, const pix_geo *g, const float *w, float *wv, int32_t *off)
{
    for (int64_t o = 0; o < g->kr; o++)
        for (int64_t q = 0; q < g->ntap; q++)
            wv[((o / 16) * g->ntap + q) * 16 + o % 16] = o < d->k ? w[o * g->ntap + q] : 0.0f;
    for (int64_t i = 0; i < d->c; i++)
        for (int64_t ky = 0; ky < d->kh; ky++)
            for (int64_t kx = 0; kx < d->kw; kx++)
                off[(i * d->kh + ky) * d->kw + kx] = (int32_t)(i * g->hp * g->wp + ky * g->wp + kx);
}

/* wf[c/16][q2][c%16] = W[o, c, kh-1-ky, kw-1-kx] for q2 = (o, ky, kx), zero
 * for c >= C; tap offsets into the padded dy. */
static void pix_dx_weights(const eng_conv_desc *d, const pix_geo *g, const float *w, float *wf, int32_t *off2)
{
    for (int64_t c = 0; c < g->cr; c++)
        for (int64_t o = 0; o < d->k; o++)
            for (int64_t ky = 0; ky < d->kh; ky++)
                for (int64_t kx = 0; kx < d->kw; kx++) {
                    const int64_t q2 = (o * d->kh + ky) * d->kw + kx;
                    wf[((c / 16) * g->ntap2 + q2) * 16 + c % 16] =
                        c < d->c ? w[((o * d->c + c) * d->kh + d->kh - 1 - ky) * d->kw + d->kw - 1 - kx] : 0.0f;
                }
    for (int64_t o = 0; o < d->k; o++)
        for (int64_t ky = 0; ky < d->kh; ky++)
            for (int64_t kx = 0; kx < d->kw; kx++)
                off2[(o * d->kh + ky) * d->kw + kx] = (int32_t)(o * g->hp2 * g->wp2 + ky * g->wp2 + kx);
}

/* Pixel lists of a full group: output pixel (gi, y, x) reads from buf at
 * image gi, row y, column x (rows of ld, images of per_img floats) and
 * writes at gi * out_img + y * w + x. */
static void pix_lists(int64_t gn, int64_t h, int64_t w, const float *buf, int64_t per_img, int64_t ld,
                      int64_t out_img, const float **base, int64_t *obase)
{
    for (int64_t gi = 0; gi < gn; gi++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                const int64_t p = (gi * h + y) * w + x;
                base[p] = buf + gi * per_img + y * ld + x;
                obase[p] = gi * out_img + y * w + x;
            }
}

static int64_t pix_group_images(const pix_geo *g, int64_t n, int64_t grp)
{
    const int64_t n0 = grp * g->g;
    return n0 + g->g <= n ? g->g : n - n0;
}

void conv_pix_forward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *bias,
                      float *y, void *ws)
{
    pix_ws cw;
    pix_carve(b, d, ws, &cw);
    const pix_geo g = pix_geometry(b, d);
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow, img = d->c * g.hp * g.wp;
    pix_forward_weights(d, &g, w, cw.wv, cw.off);
    const int nthr = g.nthr;
#pragma omp parallel num_threads(nthr)
    for (int t = omp_get_thread_num(); t < nthr; t += omp_get_num_threads()) {
        memset(cw.xp[t], 0, (size_t)(g.g * img) * sizeof(float));
        pix_lists(g.g, d->oh, d->ow, cw.xp[t], img, g.wp, d->k * ohw, cw.xbase[t], cw.obase[t]);
        for (int64_t grp = g.ngroups * t / nthr; grp < g.ngroups * (t + 1) / nthr; grp++) {
            const int64_t n0 = grp * g.g, gn = pix_group_images(&g, d->n, grp);
            for (int64_t gi = 0; gi < gn; gi++)
                conv_fill_padded(x + (n0 + gi) * d->c * hw, d->c, d->h, d->w, d->pad, d->pad, g.hp, g.wp,
                                 cw.xp[t] + gi * img);
            pix_correlate(cw.xbase[t], cw.obase[t], gn * ohw, cw.off, g.ntap, cw.wv, d->k, bias,
                          y + n0 * d->k * ohw, ohw);
        }
    }
}

/* dy of images n0.. with channels last: dyt[p, k] for pixel p of the group
 * (rows of kr floats; columns k >= K stay zero), and per-image bias sums. */
static void pix_dy_transpose(const eng_conv_desc *d, const pix_geo *g, int64_t gn, const float *dyg, float *dyt,
                             double *db_img)
{
    const int64_t ohw = d->oh * d->ow;
    for (int64_t gi = 0; gi < gn; gi++) {
        const float *src = dyg + gi * d->k * ohw;
        float *dst = dyt + gi * ohw * g->kr;
        for (int64_t k = 0; k < d->k; k++)
            for (int64_t p = 0; p < ohw; p++)
                dst[p * g->kr + k] = src[k * ohw + p];
        if (db_img)
            conv_db_image(d->k, ohw, src, db_img + gi * d->k);
    }
}

void conv_pix_backward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                       float *dx, float *dw, float *db, void *ws)
{
    pix_ws cw;
    pix_carve(b, d, ws, &cw);
    const pix_geo g = pix_geometry(b, d);
    const int64_t hw = d->h * d->w, ohw = d->oh * d->ow, img = d->c * g.hp * g.wp, img2 = d->k * g.hp2 * g.wp2;
    pix_forward_weights(d, &g, w, cw.wv, cw.off);
    if (dx)
        pix_dx_weights(d, &g, w, cw.wf, cw.off2);
    const int nthr = g.nthr;
    cw.dw[0] = dw;
#pragma omp parallel num_threads(nthr)
    for (int t = omp_get_thread_num(); t < nthr; t += omp_get_num_threads()) {
        memset(cw.xp[t], 0, (size_t)(g.g * img) * sizeof(float));
        memset(cw.dyt[t], 0, (size_t)(g.g * ohw * g.kr) * sizeof(float));
        memset(cw.dw[t], 0, (size_t)(d->k * g.ntap) * sizeof(float));
        pix_lists(g.g, d->oh, d->ow, cw.xp[t], img, g.wp, d->k * ohw, cw.xbase[t], cw.obase[t]);
        if (dx) {
            memset(cw.dyp[t], 0, (size_t)(g.g * img2) * sizeof(float));
            pix_lists(g.g, d->h, d->w, cw.dyp[t], img2, g.wp2, d->c * hw, cw.dxbase[t], cw.dxobase[t]);
        }
        for (int64_t grp = g.ngroups * t / nthr; grp < g.ngroups * (t + 1) / nthr; grp++) {
            const int64_t n0 = grp * g.g, gn = pix_group_images(&g, d->n, grp);
            const float *dyg = dy + n0 * d->k * ohw;
            for (int64_t gi = 0; gi < gn; gi++)
                conv_fill_padded(x + (n0 + gi) * d->c * hw, d->c, d->h, d->w, d->pad, d->pad, g.hp, g.wp,
                                 cw.xp[t] + gi * img);
            pix_dy_transpose(d, &g, gn, dyg, cw.dyt[t], db ? cw.db_img + n0 * d->k : NULL);
            pix_wgrad(cw.xbase[t], gn * ohw, cw.dyt[t], g.kr, cw.off, g.ntap, d->k, cw.dw[t]);
            if (dx) {
                for (int64_t gi = 0; gi < gn; gi++)
                    conv_fill_padded(dyg + gi * d->k * ohw, d->k, d->oh, d->ow, d->kh - 1 - d->pad,
                                     d->kw - 1 - d->pad, g.hp2, g.wp2, cw.dyp[t] + gi * img2);
                pix_correlate(cw.dxbase[t], cw.dxobase[t], gn * hw, cw.off2, g.ntap2, cw.wf, d->c, NULL,
                              dx + n0 * d->c * hw, hw);
            }
        }
    }
    conv_finish_backward(b, d, nthr, dw, cw.dw, cw.db_img, db);
}
