/* Image files for folder datasets: PNG (libpng) and JPEG (libjpeg-turbo),
 * recognised by their first bytes (not their names), decoded to 8 bits per
 * channel, and fitted to the spec's size: converted to 1 or 3 channels,
 * scaled to cover the size and centre-cropped, in one resampling step. */
#ifndef DS_IMAGE_H
#define DS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ds_image {
    int w, h;
    int channels;    /* 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA */
    uint8_t *pixels; /* h * w * channels, row by row, channels interleaved */
} ds_image;

/* Decodes a PNG or JPEG held in memory. `name` is the file in messages,
 * which give the reason alone ("not an image (expected PNG or JPEG)",
 * "damaged PNG: CRC error", "truncated JPEG", "CMYK JPEG (4 channels):
 * expected grayscale or RGB"), DS_EFORMAT. Palette, 1/2/4-bit and 16-bit
 * PNGs come out as 8-bit gray or RGB (16-bit keeps the high byte), with
 * alpha when the file has transparency. */
int ds_image_decode(const void *data, size_t len, ds_image *out);
/* Reads and decodes a file; the message is "PATH: reason". */
int ds_image_load(const char *path, ds_image *out);
void ds_image_free(ds_image *img);

/* Fits an image to channels x h x w, written channel-planar (C, H, W) to
 * out: gray to RGB by copying, RGB to gray by ITU-R 601 luma
 * ((19595 R + 38470 G + 7471 B + 32768) >> 16), alpha dropped; then the
 * largest centred region of the target's aspect ratio is resampled to
 * h x w with an antialiased triangle (bilinear) filter, rounded to nearest.
 * channels is 1 or 3. 0, or DS_ENOMEM. */
int ds_image_fit(const ds_image *img, int channels, int h, int w, uint8_t *out);

#endif
