/* True p x p patches: x (n, c, h, w) -> y (n, (h/p)*(w/p), c*p*p), patch
 * index row-major over (h/p, w/p), features ordered (c, py, px). The
 * backward pass is the inverse permutation (dx is overwritten). */
#include <string.h>

#include "engine/cpu/cpu_internal.h"

static int patch_check(const char *op, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p)
{
    CPU_CHECK(n >= 0 && c >= 1 && h >= 1 && w >= 1 && p >= 1,
              "cpu %s: bad size (n %lld, c %lld, h %lld, w %lld, p %lld)", op, (long long)n, (long long)c,
              (long long)h, (long long)w, (long long)p);
    CPU_CHECK(h % p == 0 && w % p == 0, "cpu %s: patch %lld does not divide %lldx%lld", op, (long long)p,
              (long long)h, (long long)w);
    return 0;
}

/* Offset in x of the p floats that make row py of channel ci of patch
 * (a, bq); the same p floats sit at (a * pw + bq) * feat + (ci * p + py) * p
 * in y. */
static inline int64_t patch_x_offset(int64_t h, int64_t w, int64_t p, int64_t a, int64_t bq, int64_t ci,
                                     int64_t py)
{
    return (ci * h + a * p + py) * w + bq * p;
}

static void patch_image_forward(int64_t c, int64_t h, int64_t w, int64_t p, const float *x, float *y)
{
    const int64_t pw = w / p, ph = h / p;
    float *yp = y;
    for (int64_t a = 0; a < ph; a++)
        for (int64_t bq = 0; bq < pw; bq++)
            for (int64_t ci = 0; ci < c; ci++)
                for (int64_t py = 0; py < p; py++, yp += p)
                    memcpy(yp, x + patch_x_offset(h, w, p, a, bq, ci, py), (size_t)p * sizeof(float));
}

static void patch_image_backward(int64_t c, int64_t h, int64_t w, int64_t p, const float *dy, float *dx)
{
    const int64_t pw = w / p, ph = h / p;
    const float *g = dy;
    for (int64_t a = 0; a < ph; a++)
        for (int64_t bq = 0; bq < pw; bq++)
            for (int64_t ci = 0; ci < c; ci++)
                for (int64_t py = 0; py < p; py++, g += p)
                    memcpy(dx + patch_x_offset(h, w, p, a, bq, ci, py), g, (size_t)p * sizeof(float));
}

int cpu_patchify_forward(eng_backend *b, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *x,
                         float *y)
{
    int rc = patch_check("patchify_forward", n, c, h, w, p);
    if (rc < 0)
        return rc;
    if (n == 0)
        return 0;
    CPU_NONNULL("patchify_forward", x);
    CPU_NONNULL("patchify_forward", y);
    CPU_CHECK(x != y, "cpu patchify_forward: cannot run in place");
    const int64_t per = c * h * w;
#pragma omp parallel for num_threads(cpu_team(b, n * per)) schedule(static)
    for (int64_t i = 0; i < n; i++)
        patch_image_forward(c, h, w, p, x + i * per, y + i * per);
    return 0;
}

int cpu_patchify_backward(eng_backend *b, int64_t n, int64_t c, int64_t h, int64_t w, int64_t p, const float *dy,
                          float *dx)
{
    int rc = patch_check("patchify_backward", n, c, h, w, p);
    if (rc < 0)
        return rc;
    if (n == 0)
        return 0;
    CPU_NONNULL("patchify_backward", dy);
    CPU_NONNULL("patchify_backward", dx);
    CPU_CHECK(dx != dy, "cpu patchify_backward: cannot run in place");
    const int64_t per = c * h * w;
#pragma omp parallel for num_threads(cpu_team(b, n * per)) schedule(static)
    for (int64_t i = 0; i < n; i++)
        patch_image_backward(c, h, w, p, dy + i * per, dx + i * per);
    return 0;
}
