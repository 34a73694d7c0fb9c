/* The `synthetic` dataset: learnable images generated from the seed.
 *
 * Generator (all integer arithmetic, so every machine produces the same bytes):
 *  - Prototypes. For each class k and channel c, a coarse grid of G x G
 *    random bytes (G = min(4, H) by min(4, W)) is drawn, and one shared base
 *    grid per channel; the class prototype is the bilinear upsampling to
 *    H x W of (base + class grid) / 2. Prototypes are smooth, so a small shift
 *    keeps a sample close to its own class. Stream:
 *    eng_rng_key(seed, ENG_RNG_SYNTHETIC, 0).
 *  - Samples. Sample i of a split uses the Philox stream of key
 *    eng_rng_key(seed, ENG_RNG_SYNTHETIC, 1 + split) from counter i << 32 (so
 *    a limit keeps exactly the first samples): a label uniform in
 *    [0, classes), a shift (dy, dx) uniform in [-H/8, H/8] x [-W/8, W/8]
 *    (edges replicated), and per pixel noise from one 32-bit draw: the sum of
 *    its four bytes minus 510 (near-normal, std 147.8) times 87/256, i.e. a
 *    standard deviation of about 50 grey levels; the result is clamped to
 *    [0, 255].
 *  Train and test come from the same prototypes with different noise, shifts
 *  and labels: a nearest-prototype classifier, an MLP or a CNN all separate
 *  the classes well above chance, which the training tests rely on. Shapes
 *  (F) and (A, B) are treated as (1, 1, F) and (1, A, B). */
#include <stdlib.h>
#include <string.h>

#include "engine/checked.h"
#include "engine/dataset.h"
#include "engine/error.h"
#include "engine/rng.h"

#define SYNTH_GRID 4

typedef struct geom {
    int64_t c, h, w;
} geom;

static int geometry(const eng_data_desc *d, geom *g)
{
    const eng_shape *s = &d->synth_shape;
    switch (s->ndim) {
    case 1: *g = (geom){1, 1, s->d[0]}; break;
    case 2: *g = (geom){1, s->d[0], s->d[1]}; break;
    case 3: *g = (geom){s->d[0], s->d[1], s->d[2]}; break;
    default: return eng_error(ENG_EINVAL, "synthetic shape must have 1 to 3 dimensions, not %d", s->ndim);
    }
    if (g->c < 1 || g->h < 1 || g->w < 1 || g->c > 4096 || g->h > 65536 || g->w > 65536)
        return eng_error(ENG_EINVAL, "synthetic shape (%lld, %lld, %lld) out of range", (long long)g->c,
                         (long long)g->h, (long long)g->w);
    if (d->synth_classes < 1 || d->synth_classes > 65536)
        return eng_error(ENG_EINVAL, "synthetic classes %lld outside 1..65536", (long long)d->synth_classes);
    return 0;
}

/* Fixed-point (8 fractional bits) position of output index i on a grid of n points. */
static void grid_pos(int64_t i, int64_t out, int64_t n, int64_t *cell, int64_t *frac)
{
    int64_t num = out > 1 ? i * (n - 1) * 256 / (out - 1) : 0;
    *cell = num >> 8;
    *frac = num & 255;
    if (*cell >= n - 1) { /* the last point */
        *cell = n - 1;
        *frac = 0;
    }
}

int eng_dataset_synthetic_prototypes(const eng_data_desc *d, uint64_t seed, uint8_t **out)
{
    *out = NULL;
    geom g;
    int rc = geometry(d, &g);
    if (rc)
        return rc;
    int64_t classes = d->synth_classes, plane = g.h * g.w;
    int64_t gh = g.h < SYNTH_GRID ? g.h : SYNTH_GRID, gw = g.w < SYNTH_GRID ? g.w : SYNTH_GRID;
    uint8_t *proto = malloc(eng_size_bytes(eng_size_mul(classes, eng_size_mul(g.c, plane)), 1));
    int *grid = malloc(sizeof *grid * (size_t)(gh * gw));
    int *base = malloc(sizeof *base * (size_t)(g.c * gh * gw));
    if (!proto || !grid || !base) {
        free(proto);
        free(grid);
        free(base);
        return eng_error(ENG_ENOMEM, "out of memory (synthetic prototypes)");
    }
    eng_rng r;
    eng_rng_init(&r, eng_rng_key(seed, ENG_RNG_SYNTHETIC, 0), 0);
    for (int64_t i = 0; i < g.c * gh * gw; i++)
        base[i] = (int)(eng_rng_u32(&r) & 0xFF);
    for (int64_t k = 0; k < classes; k++)
        for (int64_t c = 0; c < g.c; c++) {
            for (int64_t i = 0; i < gh * gw; i++)
                grid[i] = (base[c * gh * gw + i] + (int)(eng_rng_u32(&r) & 0xFF)) / 2;
            uint8_t *o = proto + (k * g.c + c) * plane;
            for (int64_t y = 0; y < g.h; y++) {
                int64_t iy, ty;
                grid_pos(y, g.h, gh, &iy, &ty);
                int64_t iy1 = iy + 1 < gh ? iy + 1 : iy;
                for (int64_t x = 0; x < g.w; x++) {
                    int64_t ix, tx;
                    grid_pos(x, g.w, gw, &ix, &tx);
                    int64_t ix1 = ix + 1 < gw ? ix + 1 : ix;
                    int64_t top = grid[iy * gw + ix] * (256 - tx) + grid[iy * gw + ix1] * tx;
                    int64_t bot = grid[iy1 * gw + ix] * (256 - tx) + grid[iy1 * gw + ix1] * tx;
                    o[y * g.w + x] = (uint8_t)((top * (256 - ty) + bot * ty + 32768) >> 16);
                }
            }
        }
    free(grid);
    free(base);
    *out = proto;
    return 0;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

int eng_dataset_synthetic_load(const eng_data_desc *d, eng_split split, uint64_t seed, int64_t limit,
                               eng_dataset **out)
{
    *out = NULL;
    if (split != ENG_SPLIT_TRAIN && split != ENG_SPLIT_TEST)
        return eng_error(ENG_EINVAL, "unknown dataset split %d", (int)split);
    geom g;
    int rc = geometry(d, &g);
    if (rc)
        return rc;
    int64_t total = split == ENG_SPLIT_TRAIN ? d->synth_train : d->synth_test;
    if (total < 0)
        return eng_error(ENG_EINVAL, "synthetic %s size %lld is negative", split == ENG_SPLIT_TRAIN ? "train" : "test",
                         (long long)total);
    int64_t n = limit > 0 && limit < total ? limit : total;
    uint8_t *proto;
    if ((rc = eng_dataset_synthetic_prototypes(d, seed, &proto)))
        return rc;
    eng_dataset *ds;
    if ((rc = eng_dataset_alloc(&d->synth_shape, d->synth_classes, n, &ds))) {
        free(proto);
        return rc;
    }
    int64_t plane = g.h * g.w, numel = g.c * plane;
    int64_t sy = g.h / 8, sx = g.w / 8;
    uint64_t key = eng_rng_key(seed, ENG_RNG_SYNTHETIC, 1 + (uint64_t)split);
    for (int64_t i = 0; i < n; i++) {
        eng_rng r;
        eng_rng_init(&r, key, (uint64_t)i << 32);
        int64_t label = (int64_t)eng_rng_below(&r, (uint64_t)d->synth_classes);
        int64_t dy = (int64_t)eng_rng_below(&r, (uint64_t)(2 * sy + 1)) - sy;
        int64_t dx = (int64_t)eng_rng_below(&r, (uint64_t)(2 * sx + 1)) - sx;
        ds->labels[i] = (int32_t)label;
        uint8_t *img = ds->images + i * numel;
        for (int64_t c = 0; c < g.c; c++) {
            const uint8_t *p = proto + (label * g.c + c) * plane;
            for (int64_t y = 0; y < g.h; y++) {
                const uint8_t *row = p + clamp64(y + dy, 0, g.h - 1) * g.w;
                for (int64_t x = 0; x < g.w; x++) {
                    uint32_t u = eng_rng_u32(&r);
                    int32_t sum = (int32_t)((u & 0xFF) + ((u >> 8) & 0xFF) + ((u >> 16) & 0xFF) + (u >> 24));
                    int32_t noise = (sum - 510) * 87 / 256;
                    int32_t v = row[clamp64(x + dx, 0, g.w - 1)] + noise;
                    img[(c * g.h + y) * g.w + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        }
    }
    free(proto);
    *out = ds;
    return 0;
}
