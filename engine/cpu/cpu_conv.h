/* Private to the CPU convolution files: the three ways cpu_conv2d.c can
 * compute a convolution with our own kernels, and what they share (the
 * fourth way, oneDNN, is cpu_dnnl.c; cpu_choice.c picks per shape).
 *
 *   cpu_conv2d.c       entry points, validation, choice of path; im2col +
 *                      sgemm over groups of images (any shape), 1x1 kernels
 *                      on large images, 1x1 images;
 *   cpu_conv_direct.c  stride 1, long output rows, few input or output
 *                      channels: pixel-vectorised;
 *   cpu_conv_pix.c     stride 1 otherwise: channel-vectorised.
 *
 * Every path partitions its work statically over the threads: images (or
 * groups of images) in fixed ranges per thread, a dW partial per thread
 * added in thread order, and the bias gradient summed per image and then
 * over images in order. */
#ifndef ENG_CPU_CONV_H
#define ENG_CPU_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "engine/cpu/cpu_internal.h"

#define CONV_MAX_THREADS 64

/* Carves a workspace into 64-byte aligned regions; with base NULL it only
 * adds up their sizes, so one function both sizes and lays out a path's
 * workspace. */
typedef struct conv_carver {
    char *base;
    size_t off;
} conv_carver;

static inline void *conv_take(conv_carver *c, size_t bytes)
{
    void *p = c->base ? c->base + c->off : NULL;
    c->off += (bytes + 63) / 64 * 64;
    return p;
}

/* Threads a path may use (the backend's, capped for the fixed arrays). */
static inline int conv_threads(const eng_backend *b)
{
    return cpu_threads(b) < CONV_MAX_THREADS ? cpu_threads(b) : CONV_MAX_THREADS;
}

/* Planes of src (nc, h, w) into dst (nc, hp, wp) at (top, left); the rest
 * of dst must be zero already, and stays so. */
void conv_fill_padded(const float *src, int64_t nc, int64_t h, int64_t w, int64_t top, int64_t left, int64_t hp,
                      int64_t wp, float *dst);

/* The end of every backward pass: dw += parts[1] + ... + parts[nparts-1]
 * in that order (parts[0] is dw itself), and db[k] = sum over images i of
 * db_img[i * k_total + k] (when db is set). */
void conv_finish_backward(eng_backend *b, const eng_conv_desc *d, int nparts, float *dw, float *const *parts,
                          const double *db_img, float *db);

/* Per-image bias gradient sums: db_img[k] = sum of dy plane k (ohw floats). */
void conv_db_image(int64_t k, int64_t ohw, const float *dy, double *db_img);

/* cpu_conv_direct.c */
bool conv_s1_applies(const eng_conv_desc *d);
size_t conv_s1_workspace(const eng_backend *b, const eng_conv_desc *d);
void conv_s1_forward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *bias,
                     float *y, void *ws);
void conv_s1_backward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db, void *ws);

/* cpu_conv_pix.c */
bool conv_pix_applies(const eng_conv_desc *d);
size_t conv_pix_workspace(const eng_backend *b, const eng_conv_desc *d);
void conv_pix_forward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *bias,
                      float *y, void *ws);
void conv_pix_backward(eng_backend *b, const eng_conv_desc *d, const float *x, const float *w, const float *dy,
                       float *dx, float *dw, float *db, void *ws);

#endif
