/* Host-side tests of the CUDA backend: everything that runs without a GPU.
 * The kernels' per-element code (compiled by nvcc as host code, see
 * host_kernels.cu) against naive references, the Philox port against
 * engine/rng.c and a published test vector, the two-stage reduction's
 * partitioning, the convolution plan table and algorithm choice, the graph
 * capture bookkeeping behind a fake driver, and the error reports. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/error.h"
#include "engine/rng.h"
#include "gpu/check.h"
#include "gpu/chanred.h"
#include "gpu/conv_plan.h"
#include "gpu/gpu.h"
#include "gpu/graph.h"
#include "gpu/ops.h"
#include "gpu/philox.h"
#include "tests/gpu/host_kernels.h"

static uint64_t lcg = 88172645463325252ull;
static uint32_t rnd32(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(lcg >> 32);
}
static float rndf(float lo, float hi) { return lo + (hi - lo) * (float)(rnd32() >> 8) / 16777216.0f; }

static float *floats(int64_t n, float lo, float hi)
{
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = rndf(lo, hi);
    return v;
}

/* ---- Philox ---- */

static void test_philox_matches_rng(void **state)
{
    (void)state;
    /* Random123's known answer for Philox4x32-10, key 0 and counter 0 */
    uint32_t r[4];
    gpu_u32x4 z = gpu_philox(0, 0);
    const uint32_t kat[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    hk_philox(0, 0, r);
    for (int l = 0; l < 4; l++) {
        assert_int_equal(z.v[l], kat[l]);
        assert_int_equal(r[l], kat[l]);
    }
    for (int t = 0; t < 2000; t++) {
        uint64_t key = ((uint64_t)rnd32() << 32) | rnd32(), ctr = ((uint64_t)rnd32() << 32) | rnd32();
        if (t < 4)
            ctr = t == 0 ? UINT64_MAX : t == 1 ? 0xffffffffull : ctr;
        uint32_t ref[4], hk[4];
        eng_philox(key, ctr, ref);
        gpu_u32x4 c = gpu_philox(key, ctr);
        hk_philox(key, ctr, hk);
        for (int l = 0; l < 4; l++) {
            assert_int_equal(c.v[l], ref[l]);
            assert_int_equal(hk[l], ref[l]);
        }
        for (uint64_t i = 0; i < 9; i++) {
            float a = eng_philox_uniform(key, ctr, i), b = gpu_philox_uniform(key, ctr, i),
                  h = hk_philox_uniform(key, ctr, i);
            assert_memory_equal(&a, &b, sizeof a);
            assert_memory_equal(&a, &h, sizeof a);
        }
    }
}

static void test_dropout_mask(void **state)
{
    (void)state;
    const int64_t n = 10007;
    const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f, 1.0f};
    float *x = floats(n, -2, 2), *y = malloc(n * sizeof *y);
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        const float p = ps[k];
        const uint64_t key = eng_rng_key(7, ENG_RNG_DROPOUT, k), ctr = 3 * k;
        hk_dropout(n, p, key, ctr, x, y);
        int64_t kept = 0;
        for (int64_t i = 0; i < n; i++) {
            /* the contract, literally: y = x * keep / (1 - p) */
            const bool keep = eng_philox_uniform(key, ctr, (uint64_t)i) >= p;
            const float want = p >= 1.0f ? x[i] * 0.0f : (x[i] * (keep ? 1.0f : 0.0f)) / (1.0f - p);
            assert_memory_equal(&y[i], &want, sizeof want);
            kept += keep;
        }
        assert_true(fabs((double)kept / n - (1.0 - p)) < 0.02);
    }
    free(x);
    free(y);
}

/* ---- patchify ---- */

static void test_patchify(void **state)
{
    (void)state;
    const int64_t shapes[][5] = {{2, 3, 8, 8, 4}, {1, 3, 32, 32, 2}, {3, 2, 6, 9, 3}, {2, 1, 4, 4, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int64_t n = shapes[s][0], c = shapes[s][1], h = shapes[s][2], w = shapes[s][3], p = shapes[s][4];
        const int64_t total = n * c * h * w, P = (h / p) * (w / p), D = c * p * p;
        float *x = floats(total, -1, 1), *y = malloc(total * sizeof *y), *ref = malloc(total * sizeof *ref);
        float *dx = malloc(total * sizeof *dx);
        for (int64_t b = 0; b < n; b++)
            for (int64_t ph = 0; ph < h / p; ph++)
                for (int64_t pw = 0; pw < w / p; pw++)
                    for (int64_t ch = 0; ch < c; ch++)
                        for (int64_t py = 0; py < p; py++)
                            for (int64_t px = 0; px < p; px++)
                                ref[(b * P + ph * (w / p) + pw) * D + (ch * p + py) * p + px] =
                                    x[((b * c + ch) * h + ph * p + py) * w + pw * p + px];
        hk_patchify_forward(n, c, h, w, p, x, y);
        assert_memory_equal(y, ref, total * sizeof *y);
        hk_patchify_backward(n, c, h, w, p, y, dx); /* the inverse permutation */
        assert_memory_equal(dx, x, total * sizeof *x);
        free(x);
        free(y);
        free(ref);
        free(dx);
    }
}

/* ---- batch_gather ---- */

static void test_batch_gather_hand(void **state)
{
    (void)state;
    /* one 1x2x3 image [[1 2 3] [4 5 6]], pad 1, shift (dy 0, dx 2), flipped */
    const uint8_t img[6] = {1, 2, 3, 4, 5, 6};
    const int32_t all_labels[1] = {7}, idx[1] = {0};
    const int16_t aug[3] = {0, 2, 1};
    eng_batch_desc d = {.n = 1, .c = 1, .h = 2, .w = 3, .pad = 1, .augment = true};
    d.mean[0] = 0.0f;
    d.inv_std[0] = 255.0f; /* value = u */
    float x[6];
    int32_t labels[1] = {-1};
    hk_batch_gather(&d, img, all_labels, idx, aug, x, labels);
    /* output (y, x) reads row y - 1 at column x + 1 of the flipped image
     * F = [[3 2 1] [6 5 4]]: row -1 is outside, row 0 gives F[0][1..3] */
    const float want[6] = {0, 0, 0, 2, 1, 0};
    for (int i = 0; i < 6; i++)
        assert_true(fabsf(x[i] - want[i]) < 1e-4f);
    assert_int_equal(labels[0], 7);
}

/* float32 data (npy datasets): the device formula against the CPU backend, bit for bit */
static void test_batch_gather_f32(void **state)
{
    (void)state;
    const int64_t N = 4, c = 2, h = 5, w = 3, n = 6, pad = 1;
    float *images = malloc(N * c * h * w * sizeof *images);
    for (int64_t i = 0; i < N * c * h * w; i++)
        images[i] = (float)(rnd32() % 2001) / 100.0f - 10.0f;
    int32_t all_labels[4] = {0, 1, 2, 3}, idx[6], labels[6], cpu_labels[6];
    int16_t aug[18];
    for (int i = 0; i < n; i++) {
        idx[i] = (int32_t)(rnd32() % N);
        aug[3 * i] = (int16_t)(rnd32() % (2 * pad + 1));
        aug[3 * i + 1] = (int16_t)(rnd32() % (2 * pad + 1));
        aug[3 * i + 2] = (int16_t)(rnd32() % 2);
    }
    eng_batch_desc d = {.n = n, .c = c, .h = h, .w = w, .pad = pad, .augment = true, .f32 = true};
    d.mean[0] = 0.5f, d.mean[1] = -2.0f;
    d.inv_std[0] = 1.0f / 3.0f, d.inv_std[1] = 4.0f;
    float *x = malloc(n * c * h * w * sizeof *x), *ref = malloc(n * c * h * w * sizeof *ref);
    eng_backend *cpu = NULL;
    assert_int_equal(eng_cpu_backend_new(1, &cpu), 0);
    for (int aug_on = 0; aug_on < 2; aug_on++) {
        d.augment = aug_on;
        hk_batch_gather(&d, (const uint8_t *)images, all_labels, idx, aug, x, labels);
        assert_int_equal(cpu->ops->batch_gather(cpu, &d, (const uint8_t *)images, all_labels, idx, aug, ref,
                                                cpu_labels), 0);
        assert_memory_equal(x, ref, n * c * h * w * sizeof *x);
        assert_memory_equal(labels, cpu_labels, sizeof labels);
    }
    eng_backend_free(cpu);
    free(images);
    free(x);
    free(ref);
}

static void test_batch_gather_random(void **state)
{
    (void)state;
    const int64_t N = 5, c = 3, h = 7, w = 6, n = 8, pad = 2;
    uint8_t *images = malloc(N * c * h * w);
    for (int64_t i = 0; i < N * c * h * w; i++)
        images[i] = (uint8_t)rnd32();
    int32_t all_labels[5] = {3, 1, 4, 1, 5}, idx[8], labels[8];
    int16_t aug[24];
    for (int i = 0; i < n; i++) {
        idx[i] = (int32_t)(rnd32() % N);
        aug[3 * i] = (int16_t)(rnd32() % (2 * pad + 1));
        aug[3 * i + 1] = (int16_t)(rnd32() % (2 * pad + 1));
        aug[3 * i + 2] = (int16_t)(rnd32() % 2);
    }
    eng_batch_desc d = {.n = n, .c = c, .h = h, .w = w, .pad = pad, .augment = true};
    for (int ch = 0; ch < c; ch++) {
        d.mean[ch] = 0.4f + 0.05f * ch;
        d.inv_std[ch] = 1.0f / (0.2f + 0.01f * ch);
    }
    float *x = malloc(n * c * h * w * sizeof *x);
    for (int aug_on = 0; aug_on < 2; aug_on++) {
        d.augment = aug_on;
        hk_batch_gather(&d, images, all_labels, idx, aug, x, labels);
        for (int64_t i = 0; i < n; i++) {
            assert_int_equal(labels[i], all_labels[idx[i]]);
            /* reference: pad the image, flip the padded image's content, crop */
            for (int64_t ch = 0; ch < c; ch++)
                for (int64_t yy = 0; yy < h; yy++)
                    for (int64_t xx = 0; xx < w; xx++) {
                        int64_t sy = yy, sx = xx;
                        bool flip = false;
                        if (aug_on) {
                            sy = yy + aug[3 * i] - pad;
                            sx = xx + aug[3 * i + 1] - pad;
                            flip = aug[3 * i + 2];
                        }
                        int u = 0;
                        if (sy >= 0 && sy < h && sx >= 0 && sx < w)
                            u = images[((idx[i] * c + ch) * h + sy) * w + (flip ? w - 1 - sx : sx)];
                        const float want = ((float)u / 255.0f - d.mean[ch]) * d.inv_std[ch];
                        assert_memory_equal(&x[((i * c + ch) * h + yy) * w + xx], &want, sizeof want);
                    }
        }
    }
    free(images);
    free(x);
}

/* ---- pooling ---- */

static void pool_reference(const eng_pool_desc *d, const float *x, const float *dy, float *y, float *dx)
{
    memset(dx, 0, (size_t)(d->n * d->c * d->h * d->w) * sizeof *dx);
    for (int64_t nc = 0; nc < d->n * d->c; nc++)
        for (int64_t oy = 0; oy < d->oh; oy++)
            for (int64_t ox = 0; ox < d->ow; ox++) {
                const int64_t o = (nc * d->oh + oy) * d->ow + ox;
                float best = -INFINITY, sum = 0.0f;
                int64_t arg = -1, cnt = 0;
                for (int64_t ky = 0; ky < d->kh; ky++)
                    for (int64_t kx = 0; kx < d->kw; kx++) {
                        const int64_t iy = oy * d->stride - d->pad + ky, ix = ox * d->stride - d->pad + kx;
                        if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                            continue;
                        const int64_t at = (nc * d->h + iy) * d->w + ix;
                        if (x[at] > best) {
                            best = x[at];
                            arg = at;
                        }
                        sum += x[at];
                        cnt++;
                    }
                if (d->mode == ENG_POOL_MAX) {
                    y[o] = best;
                    dx[arg] += dy[o];
                } else {
                    const int64_t div = d->count_include_pad ? d->kh * d->kw : cnt;
                    y[o] = sum / (float)div;
                    for (int64_t ky = 0; ky < d->kh; ky++)
                        for (int64_t kx = 0; kx < d->kw; kx++) {
                            const int64_t iy = oy * d->stride - d->pad + ky, ix = ox * d->stride - d->pad + kx;
                            if (iy >= 0 && iy < d->h && ix >= 0 && ix < d->w)
                                dx[(nc * d->h + iy) * d->w + ix] += dy[o] / (float)div;
                        }
                }
            }
}

static void test_pool(void **state)
{
    (void)state;
    const int64_t cfg[][5] = {/* h, w, k, stride, pad */
                              {15, 15, 3, 2, 0}, {8, 8, 3, 2, 1}, {7, 9, 2, 2, 0}, {5, 5, 3, 1, 1},
                              {4, 4, 4, 4, 0}, {16, 16, 3, 2, 1}, {6, 7, 3, 3, 1}};
    for (size_t s = 0; s < sizeof cfg / sizeof *cfg; s++)
        for (int mode = 0; mode < 3; mode++) {
            eng_pool_desc d = {.mode = mode == 0 ? ENG_POOL_MAX : ENG_POOL_AVG, .count_include_pad = mode == 1,
                               .n = 2, .c = 3, .h = cfg[s][0], .w = cfg[s][1], .kh = cfg[s][2], .kw = cfg[s][2],
                               .stride = cfg[s][3], .pad = cfg[s][4]};
            d.oh = (d.h + 2 * d.pad - d.kh) / d.stride + 1;
            d.ow = (d.w + 2 * d.pad - d.kw) / d.stride + 1;
            const int64_t ni = d.n * d.c * d.h * d.w, no = d.n * d.c * d.oh * d.ow;
            float *x = malloc(ni * sizeof *x), *dy = floats(no, -1, 1);
            for (int64_t i = 0; i < ni; i++)
                x[i] = (float)(rnd32() % 4); /* many ties: max must route to the first */
            float *y = malloc(no * sizeof *y), *yr = malloc(no * sizeof *yr);
            float *dx = malloc(ni * sizeof *dx), *dxr = malloc(ni * sizeof *dxr);
            pool_reference(&d, x, dy, yr, dxr);
            hk_pool_forward(&d, x, y);
            hk_pool_backward(&d, x, yr, dy, dx);
            assert_memory_equal(y, yr, no * sizeof *y);
            for (int64_t i = 0; i < ni; i++)
                assert_true(fabsf(dx[i] - dxr[i]) <= 1e-6f * (1.0f + fabsf(dxr[i])));
            free(x);
            free(dy);
            free(y);
            free(yr);
            free(dx);
            free(dxr);
        }
}

/* ---- activations ---- */

static double act_ref(eng_act k, double s, double x)
{
    switch (k) {
    case ENG_ACT_RELU: return x > 0 ? x : 0;
    case ENG_ACT_LEAKY_RELU: return x > 0 ? x : s * x;
    case ENG_ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case ENG_ACT_SIGMOID: return 1 / (1 + exp(-x));
    case ENG_ACT_TANH: return tanh(x);
    default: return x;
    }
}

static void test_activations(void **state)
{
    (void)state;
    const int64_t n = 4001;
    float *x = floats(n, -6, 6), *y = malloc(n * sizeof *y), *dy = floats(n, -1, 1), *dx = malloc(n * sizeof *dx);
    float *dx2 = malloc(n * sizeof *dx2);
    for (int k = ENG_ACT_NONE; k <= ENG_ACT_TANH; k++) {
        const float slope = 0.01f;
        hk_act_forward((eng_act)k, slope, n, x, y);
        hk_act_backward((eng_act)k, slope, n, x, y, dy, dx);
        for (int64_t i = 0; i < n; i++) {
            const double want = act_ref((eng_act)k, slope, x[i]);
            assert_true(fabs(y[i] - want) <= 1e-6 * (1 + fabs(want)));
            /* derivative by central differences of the double reference */
            const double hh = 1e-5, der = (act_ref((eng_act)k, slope, x[i] + hh) - act_ref((eng_act)k, slope, x[i] - hh)) / (2 * hh);
            if (fabs(x[i]) > 1e-3) /* away from the kinks */
                assert_true(fabs(dx[i] - dy[i] * der) <= 2e-5 * (1 + fabs(dy[i] * der)));
        }
        if (k != ENG_ACT_GELU) { /* every other kind also works from y alone */
            hk_act_backward((eng_act)k, slope, n, NULL, y, dy, dx2);
            for (int64_t i = 0; i < n; i++)
                assert_true(fabsf(dx2[i] - dx[i]) <= 1e-6f * (1 + fabsf(dx[i])));
        }
    }
    free(x);
    free(y);
    free(dy);
    free(dx);
    free(dx2);
}

/* ---- optimisers ---- */

static void test_adam_and_sgd(void **state)
{
    (void)state;
    const int64_t n = 257;
    for (int decoupled = 0; decoupled < 2; decoupled++) {
        float *p = floats(n, -1, 1), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
        double *pr = malloc(n * sizeof *pr), *mr = calloc(n, sizeof *mr), *vr = calloc(n, sizeof *vr);
        for (int64_t i = 0; i < n; i++)
            pr[i] = p[i];
        for (int64_t t = 1; t <= 5; t++) {
            float *g = floats(n, -1, 1);
            eng_adam_args a = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-2f,
                               .step = t, .decoupled = decoupled};
            gpu_adam_k k = gpu_adam_scalars(&a);
            assert_true(fabs(k.step_size - (double)a.lr / (1 - pow((double)a.beta1, (double)t))) < 1e-7 * k.step_size);
            assert_true(fabs(k.bc2_sqrt - sqrt(1 - pow((double)a.beta2, (double)t))) < 1e-7);
            assert_int_equal(k.l2, !decoupled);
            assert_int_equal(k.decoupled, decoupled);
            hk_adam(n, p, g, m, v, &k);
            for (int64_t i = 0; i < n; i++) { /* torch.optim.Adam / AdamW in double */
                double gg = g[i], lr = a.lr, wd = a.weight_decay;
                if (decoupled)
                    pr[i] *= 1 - lr * wd;
                else
                    gg += wd * pr[i];
                mr[i] = 0.9 * mr[i] + 0.1 * gg;
                vr[i] = 0.999 * vr[i] + 0.001 * gg * gg;
                pr[i] -= lr * (mr[i] / (1 - pow(0.9, (double)t))) / (sqrt(vr[i] / (1 - pow(0.999, (double)t))) + 1e-8);
            }
            free(g);
        }
        for (int64_t i = 0; i < n; i++)
            assert_true(fabs(p[i] - pr[i]) < 1e-5);
        free(p);
        free(m);
        free(v);
        free(pr);
        free(mr);
        free(vr);
    }
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        float *p = floats(n, -1, 1), *buf = calloc(n, sizeof *buf);
        double *pr = malloc(n * sizeof *pr), *br = calloc(n, sizeof *br);
        for (int64_t i = 0; i < n; i++)
            pr[i] = p[i];
        for (int t = 0; t < 3; t++) {
            float *g = floats(n, -1, 1);
            eng_sgd_args a = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-3f, .nesterov = nesterov, .first = t == 0};
            gpu_sgd_k k = gpu_sgd_scalars(&a);
            hk_sgd(n, p, g, buf, &k);
            for (int64_t i = 0; i < n; i++) {
                double gg = g[i] + 1e-3 * pr[i];
                br[i] = t == 0 ? gg : 0.9 * br[i] + gg;
                gg = nesterov ? gg + 0.9 * br[i] : br[i];
                pr[i] -= 0.1 * gg;
            }
            free(g);
        }
        for (int64_t i = 0; i < n; i++)
            assert_true(fabs(p[i] - pr[i]) < 1e-5);
        /* momentum 0: plain SGD, buffer untouched (may be NULL) */
        eng_sgd_args plain = {.lr = 0.5f};
        gpu_sgd_k k = gpu_sgd_scalars(&plain);
        float q = 1.0f, gq = 0.25f;
        hk_sgd(1, &q, &gq, NULL, &k);
        assert_true(q == 0.875f);
        free(p);
        free(buf);
        free(pr);
        free(br);
    }
}

/* ---- two-stage per-channel reduction ---- */

static void test_chan_reduce_partition(void **state)
{
    (void)state;
    const int64_t shapes[][3] = {{500, 16, 1024}, {500, 256, 1},  {500, 64, 9},   {3, 5, 7},     {1, 1, 1},
                                 {7, 3, 32},      {2, 4, 33},     {64, 10, 31},   {1000, 1, 100}, {500, 128, 64},
                                 {32000, 128, 1}, {1, 300, 2048}, {5, 2, 1000000}};
    const int sms[] = {1, 108, 132};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (size_t k = 0; k < sizeof sms / sizeof *sms; k++) {
            const int64_t outer = shapes[s][0], n = shapes[s][1], inner = shapes[s][2], total = outer * n * inner;
            double *x = malloc(total * sizeof *x), *sum = malloc(n * sizeof *sum), *cnt = malloc(n * sizeof *cnt);
            int *visits = calloc(total, sizeof *visits);
            for (int64_t i = 0; i < total; i++)
                x[i] = (double)(rnd32() % 1000) - 500; /* integers: every order gives the exact sum */
            gpu_chan_plan p;
            assert_int_equal(hk_chan_reduce(outer, n, inner, sms[k], (int64_t)1 << 20, x, visits, sum, cnt, &p), 0);
            assert_int_equal(p.cols, inner < GPU_CHAN_STRIDED_MIN_INNER);
            assert_true(p.splits >= 1 && p.grid_y <= GPU_CHAN_MAX_SPLITS);
            for (int64_t i = 0; i < total; i++)
                assert_int_equal(visits[i], 1);
            for (int64_t j = 0; j < n; j++) {
                double want = 0;
                for (int64_t o = 0; o < outer; o++)
                    for (int64_t i = 0; i < inner; i++)
                        want += x[(o * n + j) * inner + i];
                assert_true(sum[j] == want);
                assert_true(cnt[j] == (double)(outer * inner));
            }
            free(x);
            free(sum);
            free(cnt);
            free(visits);
        }
    /* scratch too small for even one split per column: refused */
    gpu_chan_plan p;
    assert_int_equal(gpu_chan_plan_make(&p, 10, 100, 1, 132, 99), -1);
    assert_int_equal(gpu_chan_plan_make(&p, 10, 100, 1, 132, 100), 0);
    assert_int_equal(p.splits, 1);
    assert_int_equal(gpu_chan_plan_make(&p, 0, 100, 1, 132, 1000), -1);
}

/* ---- convolution plans ---- */

static eng_conv_desc conv(int64_t n, int64_t c, int64_t hw, int64_t k, int64_t ks, int64_t stride, int64_t pad)
{
    eng_conv_desc d = {.n = n, .c = c, .h = hw, .w = hw, .k = k, .kh = ks, .kw = ks, .stride = stride, .pad = pad};
    d.oh = stride > 0 ? (hw + 2 * pad - ks) / stride + 1 : 1;
    d.ow = d.oh;
    return d;
}

static void test_conv_plan_table(void **state)
{
    (void)state;
    eng_conv_desc a = conv(500, 3, 32, 16, 3, 1, 1), b = a;
    assert_int_equal(gpu_conv_desc_check(&a), 0);
    b.oh = 31;
    assert_int_equal(gpu_conv_desc_check(&b), ENG_EINVAL);
    assert_non_null(strstr(eng_last_error(), "output"));
    b = conv(2, 3, 2, 4, 7, 1, 1);
    assert_int_equal(gpu_conv_desc_check(&b), ENG_EINVAL);
    b = conv(2, 3, 8, 4, 3, 0, 1);
    assert_int_equal(gpu_conv_desc_check(&b), ENG_EINVAL);
    b = conv(2, 3, 32, 32, 7, 2, 3);
    assert_int_equal(b.oh, 16);
    assert_int_equal(gpu_conv_desc_check(&b), 0);

    gpu_conv_plans *t = calloc(1, sizeof *t);
    assert_null(gpu_conv_plans_find(t, &a));
    gpu_conv_plan *p, *q;
    assert_int_equal(gpu_conv_plans_add(t, &a, &p), 0);
    assert_ptr_equal(gpu_conv_plans_find(t, &a), p);
    assert_int_equal(p->algo[0], -1);
    p->ws[0] = 100;
    p->ws[1] = 300;
    p->ws[2] = 200;
    assert_int_equal(gpu_conv_plan_workspace(p), 300);
    /* the budget of a smaller batch of the same geometry comes from sized plans only */
    eng_conv_desc small = a;
    small.n = 100;
    assert_int_equal(gpu_conv_plans_budget(t, &small), 0);
    p->sized = true;
    assert_int_equal(gpu_conv_plans_budget(t, &small), 300);
    eng_conv_desc other = conv(100, 16, 32, 16, 3, 1, 1);
    assert_int_equal(gpu_conv_plans_budget(t, &other), 0);
    assert_int_equal(gpu_conv_plans_add(t, &small, &q), 0);
    assert_ptr_equal(gpu_conv_plans_find(t, &small), q);
    assert_ptr_equal(gpu_conv_plans_find(t, &a), p);
    /* the table is bounded */
    for (int i = t->n; i < GPU_CONV_PLANS_MAX; i++) {
        eng_conv_desc d = conv(1 + i, 3, 8, 4, 3, 1, 1);
        assert_int_equal(gpu_conv_plans_add(t, &d, &q), 0);
    }
    eng_conv_desc extra = conv(9999, 3, 8, 4, 3, 1, 1);
    assert_int_equal(gpu_conv_plans_add(t, &extra, &q), ENG_ELIMIT);
    free(t);
}

static void test_algo_pick(void **state)
{
    (void)state;
    enum { FMA = 2, TENSOR = 1, CONVERT = 3 };
    const gpu_algo_perf c[] = {
        {.algo = 4, .ok = true, .deterministic = true, .math = FMA, .memory = 10},       /* excluded kind (FFT) */
        {.algo = 0, .ok = true, .deterministic = false, .math = FMA, .memory = 0},       /* not deterministic */
        {.algo = 1, .ok = false, .deterministic = true, .math = FMA, .memory = 0},       /* failed */
        {.algo = 2, .ok = true, .deterministic = true, .math = TENSOR, .memory = 0},     /* tensor cores */
        {.algo = 5, .ok = true, .deterministic = true, .math = CONVERT, .memory = 0},    /* fp16 conversion */
        {.algo = 6, .ok = true, .deterministic = true, .math = FMA, .memory = 1 << 30}, /* too much workspace */
        {.algo = 7, .ok = true, .deterministic = true, .math = FMA, .memory = 64},
    };
    const int n = sizeof c / sizeof *c;
    gpu_algo_rules fp32 = {.require_deterministic = true, .required_math = FMA, .refused_math = CONVERT,
                           .excluded = 1u << 4, .ws_limit = 1 << 20};
    assert_int_equal(gpu_algo_pick(c, n, &fp32), 6);
    fp32.excluded |= 1u << 7; /* nothing else: the excluded kinds are taken rather than none */
    assert_int_equal(gpu_algo_pick(c, n, &fp32), 0);
    gpu_algo_rules tf32 = {.require_deterministic = true, .required_math = -1, .refused_math = CONVERT,
                           .excluded = 0, .ws_limit = 1 << 20};
    assert_int_equal(gpu_algo_pick(c, n, &tf32), 0);
    tf32.ws_limit = 5;
    assert_int_equal(gpu_algo_pick(c, n, &tf32), 3);
    tf32.require_deterministic = false;
    assert_int_equal(gpu_algo_pick(c, n, &tf32), 1);
    gpu_algo_rules none = {.require_deterministic = true, .required_math = 9, .refused_math = -1, .ws_limit = 1 << 30};
    assert_int_equal(gpu_algo_pick(c, n, &none), -1);
}

/* ---- graph capture bookkeeping behind a fake driver ---- */

typedef struct fake {
    int begins, ends, instantiates, launches, set_args, destroyed_graphs, destroyed_execs;
    int fail_end, fail_instantiate;
    unsigned last_dyn;
    gpu_step_args last_args;
    int next_handle;
} fake;

static int f_begin(void *c) { ((fake *)c)->begins++; return 0; }
static int f_end(void *c, void **graph)
{
    fake *f = c;
    f->ends++;
    *graph = (void *)(intptr_t)(++f->next_handle);
    return f->fail_end ? eng_error(ENG_EDEVICE, "fake: end failed") : 0;
}
static int f_instantiate(void *c, void *graph, void **exec)
{
    fake *f = c;
    (void)graph;
    f->instantiates++;
    if (f->fail_instantiate)
        return eng_error(ENG_EDEVICE, "fake: instantiate failed");
    *exec = (void *)(intptr_t)(1000 + ++f->next_handle);
    return 0;
}
static int f_set_args(void *c, const gpu_step_args *a, unsigned dyn)
{
    fake *f = c;
    f->set_args++;
    f->last_dyn = dyn;
    f->last_args = *a;
    return 0;
}
static int f_launch(void *c, void *exec)
{
    (void)exec;
    ((fake *)c)->launches++;
    return 0;
}
static void f_destroy(void *c, void *graph, void *exec)
{
    fake *f = c;
    f->destroyed_graphs += graph != NULL;
    f->destroyed_execs += exec != NULL;
}

static void fake_init(gpu_graph_state *s, fake *f)
{
    memset(f, 0, sizeof *f);
    const gpu_graph_driver d = {.ctx = f, .begin = f_begin, .end = f_end, .instantiate = f_instantiate,
                                .set_args = f_set_args, .launch = f_launch, .destroy = f_destroy};
    gpu_graph_state_init(s, &d);
}

static void test_graph_capture_and_replay(void **state)
{
    (void)state;
    gpu_graph_state s;
    fake f;
    fake_init(&s, &f);
    gpu_graph *g = NULL;
    /* outside a capture nothing is counted or refused */
    assert_int_equal(gpu_graph_state_enter(&s, "sync", GPU_OP_HOST), 0);
    assert_int_equal(gpu_graph_state_end(&s, &g), ENG_EINVAL);
    assert_int_equal(gpu_graph_state_begin(&s), 0);
    assert_true(gpu_graph_state_capturing(&s));
    assert_int_equal(gpu_graph_state_begin(&s), ENG_EINVAL); /* one capture at a time */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(gpu_graph_state_enter(&s, "gemm", GPU_OP_QUEUED), 0);
        assert_int_equal(gpu_graph_state_leave(&s, "gemm", 0), 0);
    }
    assert_int_equal(gpu_graph_state_enter(&s, "adam_step", GPU_OP_ADAM), 0);
    assert_int_equal(gpu_graph_state_end(&s, &g), 0);
    assert_non_null(g);
    assert_false(gpu_graph_state_capturing(&s));
    assert_int_equal(gpu_graph_op_count(g), 6);
    assert_int_equal(f.begins, 1);
    assert_int_equal(f.ends, 1);
    assert_int_equal(f.instantiates, 1);
    assert_int_equal(s.live, 1);
    /* an optimiser step inside: launch needs the step's scalars */
    assert_int_equal(gpu_graph_state_launch(&s, g, NULL), ENG_EINVAL);
    assert_int_equal(f.launches, 0);
    gpu_step_args a = {.adam = {.lr = 0.5f, .step = 7}};
    for (int i = 0; i < 3; i++) {
        a.adam.step = 7 + i;
        assert_int_equal(gpu_graph_state_launch(&s, g, &a), 0);
    }
    assert_int_equal(f.launches, 3);
    assert_int_equal(f.set_args, 3);
    assert_int_equal(f.last_dyn, GPU_DYN_ADAM);
    assert_int_equal(f.last_args.adam.step, 9);
    /* no launch while another capture is open */
    assert_int_equal(gpu_graph_state_begin(&s), 0);
    assert_int_equal(gpu_graph_state_launch(&s, g, &a), ENG_EINVAL);
    gpu_graph *g2 = NULL;
    assert_int_equal(gpu_graph_state_end(&s, &g2), 0);
    assert_int_equal(gpu_graph_op_count(g2), 0);
    /* a graph without optimiser steps launches without arguments */
    assert_int_equal(gpu_graph_state_launch(&s, g2, NULL), 0);
    assert_int_equal(f.set_args, 3);
    gpu_graph_state_free(g);
    gpu_graph_state_free(g2);
    gpu_graph_state_free(NULL);
    assert_int_equal(s.live, 0);
    assert_int_equal(f.destroyed_graphs, 2);
    assert_int_equal(f.destroyed_execs, 2);
    /* a graph of another backend is refused */
    gpu_graph_state s2;
    fake f2;
    fake_init(&s2, &f2);
    assert_int_equal(gpu_graph_state_begin(&s2), 0);
    assert_int_equal(gpu_graph_state_end(&s2, &g), 0);
    assert_int_equal(gpu_graph_state_launch(&s, g, NULL), ENG_EINVAL);
    gpu_graph_state_free(g);
}

static void test_graph_refusals_and_failures(void **state)
{
    (void)state;
    gpu_graph_state s;
    fake f;
    fake_init(&s, &f);
    gpu_graph *g = (gpu_graph *)1;
    /* a host-synchronising operation inside the capture fails it */
    assert_int_equal(gpu_graph_state_begin(&s), 0);
    assert_int_equal(gpu_graph_state_enter(&s, "gemm", GPU_OP_QUEUED), 0);
    assert_int_equal(gpu_graph_state_enter(&s, "download", GPU_OP_HOST), ENG_EINVAL);
    assert_non_null(strstr(eng_last_error(), "download"));
    assert_int_equal(gpu_graph_state_enter(&s, "gemm", GPU_OP_QUEUED), 0);
    eng_error(ENG_EINVAL, "something else");
    assert_int_equal(gpu_graph_state_end(&s, &g), ENG_EINVAL);
    assert_null(g);
    assert_non_null(strstr(eng_last_error(), "operation 1 (download)")); /* the first failure, still reported */
    assert_int_equal(f.ends, 1); /* the CUDA capture was ended all the same */
    assert_int_equal(f.instantiates, 0);
    assert_int_equal(f.destroyed_graphs, 1);
    assert_false(gpu_graph_state_capturing(&s));
    /* an operation failing inside the capture (say, a bad shape) */
    assert_int_equal(gpu_graph_state_begin(&s), 0);
    assert_int_equal(gpu_graph_state_enter(&s, "conv2d_forward", GPU_OP_QUEUED), 0);
    assert_int_equal(gpu_graph_state_leave(&s, "conv2d_forward", eng_error(ENG_ENOTSUP, "no algorithm")), ENG_ENOTSUP);
    assert_int_equal(gpu_graph_state_end(&s, &g), ENG_ENOTSUP);
    assert_non_null(strstr(eng_last_error(), "no algorithm"));
    /* a new capture starts clean */
    assert_int_equal(gpu_graph_state_begin(&s), 0);
    assert_int_equal(gpu_graph_state_end(&s, &g), 0);
    gpu_graph_state_free(g);
    /* driver failures: nothing leaks */
    f.fail_instantiate = 1;
    assert_int_equal(gpu_graph_state_begin(&s), 0);
    assert_int_equal(gpu_graph_state_end(&s, &g), ENG_EDEVICE);
    assert_null(g);
    f.fail_instantiate = 0;
    f.fail_end = 1;
    assert_int_equal(gpu_graph_state_begin(&s), 0);
    assert_int_equal(gpu_graph_state_end(&s, &g), ENG_EDEVICE);
    assert_int_equal(s.live, 0);
    assert_int_equal(f.destroyed_graphs, f.ends);
}

/* ---- errors ---- */

static int failing_cuda_call(void)
{
    GPU_CUDA(cudaErrorMemoryAllocation);
    return 0;
}

static int failing_cublas_call(void)
{
    GPU_CUBLAS(CUBLAS_STATUS_NOT_INITIALIZED);
    return 0;
}

static int failing_cudnn_call(void)
{
    GPU_CUDNN(CUDNN_STATUS_BAD_PARAM);
    return 0;
}

static void test_error_reports(void **state)
{
    (void)state;
    assert_int_equal(gpu_report("LIB", 7, "NAME", "text", "f(x)", "file.c", 12), ENG_EDEVICE);
    assert_string_equal(eng_last_error(), "file.c:12: f(x) failed: LIB error NAME (7): text");
    assert_int_equal(failing_cuda_call(), ENG_EDEVICE);
    const char *m = eng_last_error();
    assert_non_null(strstr(m, "test_gpu_host.c:"));
    assert_non_null(strstr(m, "cudaErrorMemoryAllocation failed: CUDA error cudaErrorMemoryAllocation (2): out of memory"));
    assert_int_equal(failing_cublas_call(), ENG_EDEVICE);
    assert_non_null(strstr(eng_last_error(), "cuBLAS error CUBLAS_STATUS_NOT_INITIALIZED (1)"));
    assert_int_equal(failing_cudnn_call(), ENG_EDEVICE);
    assert_non_null(strstr(eng_last_error(), "cuDNN error CUDNN_STATUS_BAD_PARAM (2000)"));
}

/* ---- the backend object without a GPU ---- */

static void test_ops_table_complete(void **state)
{
    (void)state;
    const eng_backend_ops *ops = gpu_ops_table();
    typedef void (*fn)(void);
    fn entries[sizeof *ops / sizeof(fn)];
    _Static_assert(sizeof *ops % sizeof(fn) == 0, "the table holds only function pointers");
    memcpy(entries, ops, sizeof entries);
    /* the table's tail is optional, from kernels_record on (a backend with one
     * implementation per operation; the fused passes, which callers replace
     * by the separate operations) */
    const size_t first_optional = offsetof(eng_backend_ops, kernels_record) / sizeof(fn);
    for (size_t i = 0; i < first_optional; i++) {
        if (!entries[i])
            fail_msg("entry %zu of the CUDA operation table is NULL", i);
    }
}

static void test_without_device(void **state)
{
    (void)state;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    (void)cudaGetLastError();
    const gpu_cuda_state st = gpu_cuda_classify((int)e, gpu_cuda_driver_installed());
    gpu_device_info info[4];
    int count = -1;
    eng_backend *b = (eng_backend *)1;
    if (st == GPU_CUDA_BROKEN) {
        /* a driver that is there and fails is an error, never zero devices */
        assert_int_equal(gpu_device_list(info, 4, &count), ENG_EDEVICE);
        assert_non_null(strstr(eng_last_error(), cudaGetErrorName(e)));
        assert_int_equal(gpu_backend_new(0, ENG_PREC_FP32, &b), ENG_EDEVICE);
        assert_null(b);
        return;
    }
    assert_int_equal(gpu_device_list(info, 4, &count), 0);
    if (st == GPU_CUDA_ABSENT || n == 0) {
        assert_int_equal(count, 0);
        assert_int_equal(gpu_backend_new(0, ENG_PREC_FP32, &b), ENG_ENOTSUP);
        assert_null(b);
        assert_non_null(strstr(eng_last_error(), "no CUDA device"));
    } else {
        assert_int_equal(count, n);
        assert_true(info[0].name[0] != '\0' && info[0].total_memory > 0 && info[0].cc_major >= 3);
        assert_int_equal(gpu_backend_new(n, ENG_PREC_FP32, &b), ENG_EINVAL);
    }
    assert_int_equal(gpu_backend_new(0, (eng_precision)7, &b), ENG_EINVAL);
}

/* Which errors of cudaGetDeviceCount mean "no GPU here" and which mean "a GPU
 * driver is here and broken" (gpu/cuda_state.c), value by value. */
static void test_cuda_error_classification(void **state)
{
    (void)state;
    assert_int_equal(gpu_cuda_classify(cudaSuccess, true), GPU_CUDA_USABLE);
    assert_int_equal(gpu_cuda_classify(cudaSuccess, false), GPU_CUDA_USABLE);
    /* no device: a plain absence, driver or not */
    assert_int_equal(gpu_cuda_classify(cudaErrorNoDevice, true), GPU_CUDA_ABSENT);
    assert_int_equal(gpu_cuda_classify(cudaErrorNoDevice, false), GPU_CUDA_ABSENT);
    /* "insufficient driver": no driver at all is an absence, an old one is broken */
    assert_int_equal(gpu_cuda_classify(cudaErrorInsufficientDriver, false), GPU_CUDA_ABSENT);
    assert_int_equal(gpu_cuda_classify(cudaErrorInsufficientDriver, true), GPU_CUDA_BROKEN);
    /* a driver that is there and fails: broken, whatever the probe says */
    const cudaError_t broken[] = {cudaErrorInitializationError, cudaErrorSystemDriverMismatch,
                                  cudaErrorCompatNotSupportedOnDevice, cudaErrorNotSupported,
                                  cudaErrorDevicesUnavailable, cudaErrorSystemNotReady, cudaErrorUnknown,
                                  cudaErrorOperatingSystem, cudaErrorNotPermitted};
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        if (gpu_cuda_classify(broken[i], true) != GPU_CUDA_BROKEN ||
            gpu_cuda_classify(broken[i], false) != GPU_CUDA_BROKEN)
            fail_msg("%s is not classified as a broken driver", cudaGetErrorName(broken[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_matches_rng),
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_patchify),
        cmocka_unit_test(test_batch_gather_hand),
        cmocka_unit_test(test_batch_gather_random),
        cmocka_unit_test(test_batch_gather_f32),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_adam_and_sgd),
        cmocka_unit_test(test_chan_reduce_partition),
        cmocka_unit_test(test_conv_plan_table),
        cmocka_unit_test(test_algo_pick),
        cmocka_unit_test(test_graph_capture_and_replay),
        cmocka_unit_test(test_graph_refusals_and_failures),
        cmocka_unit_test(test_error_reports),
        cmocka_unit_test(test_ops_table_complete),
        cmocka_unit_test(test_without_device),
        cmocka_unit_test(test_cuda_error_classification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
