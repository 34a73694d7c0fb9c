/* A test harness for datasets/image.c: decodes FILE and writes what
 * ds_image_decode gives (OUT.decoded: w, h, channels as 3 int32 then the
 * pixels) and what ds_image_fit gives for C x H x W (OUT.fit, planar
 * bytes); on failure prints the message and exits 1. test_image.py
 * compares both with Pillow and numpy.
 *   image_tool FILE C H W OUT */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "datasets/error.h"
#include "datasets/image.h"

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: image_tool FILE C H W OUT\n");
        return 2;
    }
    int c = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]);
    ds_image img;
    if (ds_image_load(argv[1], &img)) {
        printf("%s\n", ds_last_error());
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.decoded", argv[5]);
    FILE *f = fopen(path, "wb");
    int32_t head[3] = {img.w, img.h, img.channels};
    fwrite(head, sizeof head, 1, f);
    fwrite(img.pixels, 1, (size_t)img.w * img.h * img.channels, f);
    fclose(f);
    uint8_t *out = malloc((size_t)c * h * w);
    if (!out || ds_image_fit(&img, c, h, w, out)) {
        printf("%s\n", ds_last_error());
        return 1;
    }
    snprintf(path, sizeof path, "%s.fit", argv[5]);
    f = fopen(path, "wb");
    fwrite(out, 1, (size_t)c * h * w, f);
    fclose(f);
    free(out);
    ds_image_free(&img);
    return 0;
}
