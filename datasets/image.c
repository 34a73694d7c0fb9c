/* PNG and JPEG decoding with libpng and libjpeg-turbo (image.h). Both
 * report errors by longjmp: every decoder keeps its state in a struct that
 * outlives the jump, and frees it on both paths. */
#include "datasets/image.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* jpeglib.h needs size_t and FILE first */
#include <jerror.h>
#include <jpeglib.h>

#include "datasets/error.h"

/* Largest decoded image: 2^28 bytes (e.g. 9459 x 9459 RGB). */
#define MAX_PIXEL_BYTES ((size_t)1 << 28)

void ds_image_free(ds_image *img)
{
    if (img) {
        free(img->pixels);
        img->pixels = NULL;
    }
}

/* ---- PNG ---- */

typedef struct png_src {
    const unsigned char *data;
    size_t len, pos;
    char msg[200];
} png_src;

static void png_read_mem(png_structp p, png_bytep out, png_size_t n)
{
    png_src *s = png_get_io_ptr(p);
    if (n > s->len - s->pos)
        png_error(p, "truncated PNG");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp p, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(p);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(p, 1);
}

static void png_on_warning(png_structp p, png_const_charp msg) { (void)p, (void)msg; }

static int decode_png(const unsigned char *data, size_t len, ds_image *out)
{
    png_src src = {data, len, 0, ""};
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    /* volatile: assigned between setjmp and a possible longjmp */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (!p || !info) {
        png_destroy_read_struct(p ? &p : NULL, NULL, NULL);
        return ds_error(DS_ENOMEM, "out of memory decoding a PNG");
    }
    if (setjmp(png_jmpbuf(p))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&p, &info, NULL);
        return ds_error(DS_EFORMAT, "damaged PNG: %s", src.msg[0] ? src.msg : "unknown error");
    }
    png_set_read_fn(p, &src, png_read_mem);
    png_set_user_limits(p, 1 << 16, 1 << 16);
    png_read_info(p, info);
    png_set_expand(p);   /* palette to RGB, gray below 8 bits to 8, tRNS to alpha */
    png_set_strip_16(p); /* 16 bits: the high byte */
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    int c = png_get_channels(p, info);
    if (c < 1 || c > 4 || png_get_bit_depth(p, info) != 8)
        png_error(p, "unsupported pixel format");
    if ((size_t)w * h * (size_t)c > MAX_PIXEL_BYTES)
        png_error(p, "image too large");
    pixels = malloc((size_t)w * h * (size_t)c);
    rows = malloc(h * sizeof *rows);
    if (!pixels || !rows)
        png_error(p, "out of memory");
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = pixels + (size_t)y * w * (size_t)c;
    png_read_image(p, rows);
    png_read_end(p, NULL);
    free(rows);
    png_destroy_read_struct(&p, &info, NULL);
    *out = (ds_image){.w = (int)w, .h = (int)h, .channels = c, .pixels = pixels};
    return 0;
}

/* ---- JPEG ---- */

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    bool damaged; /* a warning that means lost data (libjpeg would fill in gray and go on) */
} jpeg_err;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_err *e = (jpeg_err *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jump, 1);
}

static void jpeg_on_message(j_common_ptr c, int level)
{
    jpeg_err *e = (jpeg_err *)c->err;
    if (level < 0 && !e->damaged) {
        e->damaged = true;
        (*c->err->format_message)(c, e->msg);
    }
}

static int decode_jpeg(const unsigned char *data, size_t len, ds_image *out)
{
    struct jpeg_decompress_struct d;
    jpeg_err err;
    memset(&err, 0, sizeof err);
    d.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_on_error;
    err.mgr.emit_message = jpeg_on_message;
    uint8_t *volatile pixels = NULL;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&d);
        free(pixels);
        return ds_error(DS_EFORMAT, "damaged JPEG: %s", err.msg);
    }
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, data, (unsigned long)len);
    jpeg_read_header(&d, TRUE);
    if (d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&d);
        return ds_error(DS_EFORMAT, "CMYK JPEG (4 channels): expected grayscale or RGB");
    }
    d.out_color_space = d.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&d);
    int c = d.output_components;
    size_t w = d.output_width, h = d.output_height;
    if (w * h * (size_t)c > MAX_PIXEL_BYTES) {
        jpeg_destroy_decompress(&d);
        return ds_error(DS_EFORMAT, "image too large (%zu x %zu)", w, h);
    }
    pixels = malloc(w * h * (size_t)c);
    if (!pixels) {
        jpeg_destroy_decompress(&d);
        return ds_error(DS_ENOMEM, "out of memory decoding a %zu x %zu JPEG", w, h);
    }
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = pixels + (size_t)d.output_scanline * w * (size_t)c;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    if (err.damaged) {
        free(pixels);
        return ds_error(DS_EFORMAT, "damaged JPEG: %s", err.msg);
    }
    *out = (ds_image){.w = (int)w, .h = (int)h, .channels = c, .pixels = pixels};
    return 0;
}

int ds_image_decode(const void *data, size_t len, ds_image *out)
{
    memset(out, 0, sizeof *out);
    const unsigned char *b = data;
    if (len >= 8 && !png_sig_cmp(b, 0, 8))
        return decode_png(b, len, out);
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return decode_jpeg(b, len, out);
    return ds_error(DS_EFORMAT, "not an image (expected PNG or JPEG)");
}

int ds_image_load(const char *path, ds_image *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ds_error(errno == ENOENT ? DS_ENOENT : DS_EIO, "%s: unreadable: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 1 << 16;
            if (ncap > MAX_PIXEL_BYTES) {
                rc = ds_error(DS_EFORMAT, "%s: file too large for an image", path);
                break;
            }
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = ds_error(DS_ENOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0) {
            if (ferror(f))
                rc = ds_error(DS_EIO, "%s: unreadable: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (!rc) {
        rc = ds_image_decode(buf, len, out);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", ds_last_error());
            ds_error(rc, "%s: %s", path, msg);
        }
    }
    free(buf);
    return rc;
}

/* ---- fitting ---- */

typedef struct coeffs {
    int *lo, *n; /* per output pixel: first source pixel and count */
    float *w;    /* per output pixel: `stride` weights */
    int stride;
} coeffs;

static float tri(float x)
{
    x = x < 0 ? -x : x;
    return x < 1.0f ? 1.0f - x : 0.0f;
}

/* Weights of an antialiased triangle filter mapping [in0, in1) of a
 * length-`size` source onto `out` pixels. */
static int make_coeffs(double in0, double in1, int size, int out, coeffs *c)
{
    double scale = (in1 - in0) / out, fscale = scale > 1.0 ? scale : 1.0, support = fscale;
    c->stride = (int)(2 * support + 3);
    c->lo = malloc((size_t)out * sizeof *c->lo);
    c->n = malloc((size_t)out * sizeof *c->n);
    c->w = malloc((size_t)out * (size_t)c->stride * sizeof *c->w);
    if (!c->lo || !c->n || !c->w)
        return -1;
    for (int x = 0; x < out; x++) {
        double center = in0 + (x + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > size)
            hi = size;
        if (hi - lo > c->stride)
            hi = lo + c->stride;
        float *w = c->w + (size_t)x * (size_t)c->stride, sum = 0.0f;
        for (int j = lo; j < hi; j++)
            sum += w[j - lo] = tri((float)((j + 0.5 - center) / fscale));
        if (sum <= 0.0f) { /* nothing under the filter: the nearest pixel */
            lo = (int)center;
            lo = lo < 0 ? 0 : lo >= size ? size - 1 : lo;
            hi = lo + 1;
            w[0] = sum = 1.0f;
        }
        for (int j = 0; j < hi - lo; j++)
            w[j] /= sum;
        c->lo[x] = lo;
        c->n[x] = hi - lo;
    }
    return 0;
}

static void free_coeffs(coeffs *c)
{
    free(c->lo);
    free(c->n);
    free(c->w);
}

static uint8_t luma(const uint8_t *p)
{
    return (uint8_t)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 32768u) >> 16);
}

int ds_image_fit(const ds_image *img, int channels, int h, int w, uint8_t *out)
{
    int rc = 0;
    const int sw = img->w, sh = img->h, sc = img->channels;
    coeffs cx = {0}, cy = {0};
    double s = (double)h / sh > (double)w / sw ? (double)h / sh : (double)w / sw; /* cover */
    double bw = w / s, bh = h / s, x0 = (sw - bw) / 2, y0 = (sh - bh) / 2;
    float *row = NULL, *tmp = NULL;
    if (make_coeffs(x0, x0 + bw, sw, w, &cx) || make_coeffs(y0, y0 + bh, sh, h, &cy))
        goto oom;
    /* only the source rows under the vertical filter: [ylo, yhi) */
    int ylo = cy.lo[0], yhi = cy.lo[h - 1] + cy.n[h - 1];
    for (int y = 0; y < h; y++) {
        ylo = cy.lo[y] < ylo ? cy.lo[y] : ylo;
        yhi = cy.lo[y] + cy.n[y] > yhi ? cy.lo[y] + cy.n[y] : yhi;
    }
    const size_t rows = (size_t)(yhi - ylo), tplane = rows * (size_t)w;
    row = malloc((size_t)sw * (size_t)channels * sizeof *row);
    tmp = malloc(tplane * (size_t)channels * sizeof *tmp);
    if (!row || !tmp)
        goto oom;
    /* each needed row in the target's channels (planar), then filtered along x */
    for (int y = ylo; y < yhi; y++) {
        const uint8_t *p = img->pixels + (size_t)y * (size_t)sw * (size_t)sc;
        for (int x = 0; x < sw; x++, p += sc) {
            if (channels == 1) {
                row[x] = sc >= 3 ? luma(p) : p[0];
            } else {
                for (int k = 0; k < 3; k++)
                    row[(size_t)k * (size_t)sw + (size_t)x] = sc >= 3 ? p[k] : p[0];
            }
        }
        for (int k = 0; k < channels; k++) {
            const float *r = row + (size_t)k * (size_t)sw;
            float *t = tmp + (size_t)k * tplane + (size_t)(y - ylo) * (size_t)w;
            for (int x = 0; x < w; x++) {
                const float *wt = cx.w + (size_t)x * (size_t)cx.stride, *rp = r + cx.lo[x];
                float v = 0.0f;
                for (int j = 0; j < cx.n[x]; j++)
                    v += wt[j] * rp[j];
                t[x] = v;
            }
        }
    }
    /* then along y */
    for (int k = 0; k < channels; k++) {
        const float *t = tmp + (size_t)k * tplane;
        uint8_t *op = out + (size_t)k * (size_t)h * (size_t)w;
        for (int y = 0; y < h; y++) {
            const float *wt = cy.w + (size_t)y * (size_t)cy.stride;
            const float *base = t + (size_t)(cy.lo[y] - ylo) * (size_t)w;
            for (int x = 0; x < w; x++) {
                float v = 0.0f;
                for (int j = 0; j < cy.n[y]; j++)
                    v += wt[j] * base[(size_t)j * (size_t)w + (size_t)x];
                v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
                op[(size_t)y * (size_t)w + (size_t)x] = (uint8_t)(v + 0.5f);
            }
        }
    }
    goto done;
oom:
    rc = ds_error(DS_ENOMEM, "out of memory resizing a %d x %d image", sw, sh);
done:
    free_coeffs(&cx);
    free_coeffs(&cy);
    free(row);
    free(tmp);
    return rc;
}
