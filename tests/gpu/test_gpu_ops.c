/* Every operation of the CUDA backend against the CPU backend on random
 * inputs (forward and backward), at each precision: relative L2 error
 * ||gpu - cpu|| / ||cpu|| at most 1e-5 in float32, and for the matrix
 * products (gemm, convolutions) 1e-3 in tf32 and 2e-2 in bf16. Also checks
 * that repeated runs give the same bits (no atomics in reductions), that
 * dropout, patchify and the optimiser steps match the CPU bit for bit where
 * the CPU's formulas are followed literally, and that a CUDA graph replays a
 * training-like step exactly as eager execution computes it.
 * Exits 77 (skipped) where there is no CUDA device.
 * `gpu_ops_test --cpu-vs-cpu` runs the same checks with a second CPU backend
 * (2 threads against 1) in place of the GPU: a check of the harness itself
 * (shapes, arguments, tolerances) on a machine without a GPU. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "gpu/gpu.h"

#define TOL 1e-5

static eng_backend *cpu;
static eng_backend *gpus[3];
static const char *prec_name[3] = {"fp32", "tf32", "bf16"};
static const double mm_tol[3] = {1e-5, 1e-3, 2e-2}; /* gemm and convolutions */
static double worst[3];                              /* largest error seen per precision, for the summary */
static bool cpu_vs_cpu;

#define OK(call)                                                                                                   \
    do {                                                                                                           \
        int ok_rc_ = (call);                                                                                       \
        if (ok_rc_ != 0)                                                                                           \
            fail_msg("%s = %d: %s", #call, ok_rc_, eng_last_error());                                             \
    } while (0)

static uint64_t lcg = 0x2545F4914F6CDD1Dull;
static uint32_t rnd32(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(lcg >> 32);
}
static float rndf(float lo, float hi) { return lo + (hi - lo) * (float)(rnd32() >> 8) / 16777216.0f; }

/* ---- a buffer on both backends with the same initial bytes ---- */

typedef struct twin {
    size_t bytes;
    void *host, *c, *g;
    eng_backend *gb;
} twin;

static twin tw_bytes(eng_backend *g, size_t bytes, const void *init)
{
    twin t = {.bytes = bytes, .gb = g};
    t.host = calloc(1, bytes ? bytes : 1);
    assert_non_null(t.host);
    if (init)
        memcpy(t.host, init, bytes);
    OK(cpu->ops->alloc(cpu, bytes, &t.c));
    OK(g->ops->alloc(g, bytes, &t.g));
    OK(cpu->ops->upload(cpu, t.c, t.host, bytes));
    OK(g->ops->upload(g, t.g, t.host, bytes));
    return t;
}

static twin tw_floats(eng_backend *g, int64_t n, float lo, float hi)
{
    float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = rndf(lo, hi);
    twin t = tw_bytes(g, (size_t)n * sizeof(float), v);
    free(v);
    return t;
}

/* Integers in [0, levels) scaled: many exact ties. */
static twin tw_levels(eng_backend *g, int64_t n, int levels, float scale)
{
    float *v = malloc((size_t)n * sizeof *v);
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = scale * (float)(rnd32() % (uint32_t)levels);
    twin t = tw_bytes(g, (size_t)n * sizeof(float), v);
    free(v);
    return t;
}

static void tw_free(twin *t)
{
    cpu->ops->free(cpu, t->c);
    t->gb->ops->free(t->gb, t->g);
    free(t->host);
    memset(t, 0, sizeof *t);
}

static void tw_download(twin *t, void *hc, void *hg)
{
    OK(cpu->ops->download(cpu, hc, t->c, t->bytes));
    OK(t->gb->ops->download(t->gb, hg, t->g, t->bytes));
}

static int prec_of(eng_backend *g) { return (int)g->precision; }

/* Relative L2 error of the GPU's floats against the CPU's; asserts <= tol. */
static double tw_check(twin *t, const char *what, double tol)
{
    const int64_t n = (int64_t)(t->bytes / sizeof(float));
    float *hc = malloc(t->bytes + 1), *hg = malloc(t->bytes + 1);
    assert_non_null(hc);
    assert_non_null(hg);
    tw_download(t, hc, hg);
    double num = 0.0, den = 0.0;
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)hg[i] - (double)hc[i];
        if (!isfinite(hg[i]) != !isfinite(hc[i]) && bad < 0)
            bad = i;
        num += d * d;
        den += (double)hc[i] * hc[i];
    }
    const double err = den > 0.0 ? sqrt(num / den) : sqrt(num);
    const int p = prec_of(t->gb);
    printf("  %-44s %s  rel err %.3g (tol %.0e)\n", what, prec_name[p], err, tol);
    if (!(err <= worst[p]) && tol <= TOL) /* a NaN shows in the summary (and fails below) */
        worst[p] = err;
    if (bad >= 0)
        fail_msg("%s: element %lld is %g on the GPU, %g on the CPU", what, (long long)bad, (double)hg[bad],
                 (double)hc[bad]);
    if (!(err <= tol)) {
        for (int64_t i = 0, shown = 0; i < n && shown < 5; i++)
            if (fabs((double)hg[i] - hc[i]) > tol * (fabs(hc[i]) + 1e-3)) {
                printf("    [%lld] gpu %.9g cpu %.9g\n", (long long)i, (double)hg[i], (double)hc[i]);
                shown++;
            }
        fail_msg("%s [%s]: relative error %g exceeds %g", what, prec_name[p], err, tol);
    }
    free(hc);
    free(hg);
    return err;
}

/* The GPU's bytes equal the CPU's. */
static void tw_check_bits(twin *t, const char *what)
{
    unsigned char *hc = malloc(t->bytes + 1), *hg = malloc(t->bytes + 1);
    tw_download(t, hc, hg);
    printf("  %-44s %s  %s\n", what, prec_name[prec_of(t->gb)],
           memcmp(hc, hg, t->bytes) ? "DIFFERENT BITS" : "identical bits");
    assert_memory_equal(hc, hg, t->bytes);
    free(hc);
    free(hg);
}

/* Two GPU buffers hold the same bytes (repeatability). */
static void gpu_same(eng_backend *g, const void *a, const void *b, size_t bytes, const char *what)
{
    unsigned char *ha = malloc(bytes + 1), *hb = malloc(bytes + 1);
    OK(g->ops->download(g, ha, a, bytes));
    OK(g->ops->download(g, hb, b, bytes));
    if (memcmp(ha, hb, bytes))
        fail_msg("%s [%s]: two runs on the same inputs differ", what, prec_name[prec_of(g)]);
    free(ha);
    free(hb);
}

/* Two GPU float buffers agree within tol (relative L2); says whether the bits are the same. */
static void gpu_close(eng_backend *g, const float *a, const float *b, int64_t n, double tol, const char *what)
{
    float *ha = malloc(n * sizeof *ha), *hb = malloc(n * sizeof *hb);
    OK(g->ops->download(g, ha, a, n * sizeof *ha));
    OK(g->ops->download(g, hb, b, n * sizeof *hb));
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)ha[i] - hb[i]) * ((double)ha[i] - hb[i]);
        den += (double)hb[i] * hb[i];
    }
    const double err = den > 0 ? sqrt(num / den) : sqrt(num);
    printf("  %-44s %s  rel err %.3g (tol %.0e), %s\n", what, prec_name[prec_of(g)], err, tol,
           memcmp(ha, hb, n * sizeof *ha) ? "different bits" : "identical bits");
    if (!(err <= tol))
        fail_msg("%s: relative error %g exceeds %g", what, err, tol);
    free(ha);
    free(hb);
}

static void *gpu_copy_of(eng_backend *g, const void *src, size_t bytes)
{
    void *p;
    OK(g->ops->alloc(g, bytes, &p));
    OK(g->ops->copy(g, p, src, bytes));
    return p;
}

#define FOR_EACH_GPU(g)                                                                                            \
    for (int gi_ = 0; gi_ < 3; gi_++)                                                                              \
        for (eng_backend *g = gpus[gi_]; g; g = NULL)

/* ---- dense algebra ---- */

/* shared: A's stride is 0 (one matrix for every batch entry); reduce: reduce_batch */
static void gemm_case_x(eng_backend *g, bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t batch, float alpha,
                        float beta, int64_t pad, bool shared, bool reduce)
{
    eng_gemm_desc d = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .batch = batch, .alpha = alpha, .beta = beta,
                       .reduce_batch = reduce};
    const int64_t rows_a = ta ? k : m, rows_b = tb ? n : k;
    d.lda = (ta ? m : k) + pad;
    d.ldb = (tb ? k : n) + pad;
    d.ldc = n + pad;
    d.stride_a = shared ? 0 : rows_a * d.lda + 7;
    d.stride_b = rows_b * d.ldb + 3;
    d.stride_c = reduce ? 0 : m * d.ldc + 5;
    twin A = tw_floats(g, shared ? rows_a * d.lda : d.stride_a * batch, -1, 1);
    twin B = tw_floats(g, d.stride_b * batch, -1, 1);
    twin C = tw_floats(g, reduce ? m * d.ldc : d.stride_c * batch, -1, 1);
    OK(cpu->ops->gemm(cpu, &d, A.c, B.c, C.c));
    OK(g->ops->gemm(g, &d, A.g, B.g, C.g));
    char what[96];
    snprintf(what, sizeof what, "gemm %s%s m%lld n%lld k%lld batch %lld%s%s", ta ? "T" : "N", tb ? "T" : "N",
             (long long)m, (long long)n, (long long)k, (long long)batch, shared ? " shared A" : "",
             reduce ? " reduce_batch" : "");
    tw_check(&C, what, mm_tol[prec_of(g)]);
    tw_free(&A);
    tw_free(&B);
    tw_free(&C);
}

static void gemm_case(eng_backend *g, bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t batch, float alpha,
                      float beta, int64_t pad)
{
    gemm_case_x(g, ta, tb, m, n, k, batch, alpha, beta, pad, false, false);
}

static void test_gemm(void **state)
{
    (void)state;
    FOR_EACH_GPU(g)
    {
        for (int t = 0; t < 4; t++)
            gemm_case(g, t & 1, t & 2, 37, 29, 61, 1, 1.5f, 0.5f, 3);
        gemm_case(g, false, true, 500, 128, 48, 1, 1.0f, 0.0f, 0);   /* mixer embedding forward */
        gemm_case(g, true, false, 128, 48, 500, 1, 1.0f, 0.0f, 0);   /* its weight gradient */
        gemm_case(g, false, false, 500, 48, 128, 1, 1.0f, 0.0f, 0);  /* its input gradient */
        gemm_case(g, false, true, 64, 64, 64, 5, 1.0f, 1.0f, 2);     /* strided batch */
        gemm_case(g, true, true, 17, 33, 9, 3, -0.5f, 0.25f, 1);
        /* the mixer's token mixing: one S x S weight on every sample, and its gradient summed over samples */
        gemm_case_x(g, false, false, 64, 128, 64, 6, 1.0f, 0.0f, 0, true, false);
        gemm_case_x(g, true, false, 64, 128, 64, 6, 1.0f, 0.0f, 0, true, false);
        gemm_case_x(g, false, true, 64, 64, 128, 8, 1.0f, 0.0f, 0, false, true);
        gemm_case_x(g, false, true, 64, 64, 128, 8, 0.5f, 2.0f, 3, false, true);
        gemm_case_x(g, true, false, 256, 256, 8, 100, 1.0f, 1.0f, 0, false, true);  /* several scratch chunks */
        gemm_case_x(g, false, false, 2100, 2100, 4, 2, 1.0f, 0.5f, 0, false, true); /* larger than the scratch */
    }
}

static void test_bias(void **state)
{
    (void)state;
    const int64_t shapes[][3] = {{64, 128, 1}, {8, 16, 1024}, {4, 8, 9}, {3, 5, 40}, {1, 1, 1}};
    FOR_EACH_GPU(g)
    {
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            const int64_t o = shapes[s][0], n = shapes[s][1], i = shapes[s][2];
            twin y = tw_floats(g, o * n * i, -1, 1), b = tw_floats(g, n, -1, 1), db = tw_floats(g, n, 5, 6);
            OK(cpu->ops->bias_add(cpu, o, n, i, y.c, b.c));
            OK(g->ops->bias_add(g, o, n, i, y.g, b.g));
            tw_check(&y, "bias_add", TOL);
            OK(cpu->ops->bias_grad(cpu, o, n, i, y.c, db.c));
            OK(g->ops->bias_grad(g, o, n, i, y.g, db.g));
            tw_check(&db, "bias_grad (overwrites)", TOL);
            tw_free(&y);
            tw_free(&b);
            tw_free(&db);
        }
    }
}

static void test_elementwise_and_layout(void **state)
{
    (void)state;
    FOR_EACH_GPU(g)
    {
        const int64_t n = 10007;
        twin a = tw_floats(g, n, -1, 1), c = tw_floats(g, n, -1, 1), y = tw_floats(g, n, -1, 1);
        OK(cpu->ops->add(cpu, n, a.c, c.c, y.c));
        OK(g->ops->add(g, n, a.g, c.g, y.g));
        tw_check_bits(&y, "add");
        OK(cpu->ops->add(cpu, n, a.c, c.c, a.c)); /* y aliasing a */
        OK(g->ops->add(g, n, a.g, c.g, a.g));
        tw_check_bits(&a, "add in place");
        OK(cpu->ops->fill(cpu, y.c, n - 3, 2.5f));
        OK(g->ops->fill(g, y.g, n - 3, 2.5f));
        tw_check_bits(&y, "fill");
        OK(cpu->ops->copy(cpu, y.c, c.c, 100 * sizeof(float)));
        OK(g->ops->copy(g, y.g, c.g, 100 * sizeof(float)));
        tw_check_bits(&y, "copy");
        /* copy_2d: 37 rows of 20 from ld 33 into ld 29 */
        OK(cpu->ops->copy_2d(cpu, 37, 20, a.c, 33, y.c, 29));
        OK(g->ops->copy_2d(g, 37, 20, a.g, 33, y.g, 29));
        tw_check_bits(&y, "copy_2d");
        tw_free(&a);
        tw_free(&c);
        tw_free(&y);

        const int64_t tb = 3, tr = 37, tc = 50;
        twin x = tw_floats(g, tb * tr * tc, -1, 1), t = tw_floats(g, tb * tr * tc, -1, 1);
        OK(cpu->ops->transpose(cpu, tb, tr, tc, x.c, t.c));
        OK(g->ops->transpose(g, tb, tr, tc, x.g, t.g));
        tw_check_bits(&t, "transpose (3, 37, 50)");
        tw_free(&x);
        tw_free(&t);

        const int64_t rows = 100, m = 64;
        twin mx = tw_floats(g, rows * m, -1, 1), my = tw_floats(g, rows, -1, 1), mdx = tw_floats(g, rows * m, -1, 1);
        OK(cpu->ops->mean_lastdim_forward(cpu, rows, m, mx.c, my.c));
        OK(g->ops->mean_lastdim_forward(g, rows, m, mx.g, my.g));
        tw_check(&my, "mean_lastdim_forward", TOL);
        OK(cpu->ops->mean_lastdim_backward(cpu, rows, m, my.c, mdx.c));
        OK(g->ops->mean_lastdim_backward(g, rows, m, my.g, mdx.g));
        tw_check(&mdx, "mean_lastdim_backward", TOL);
        tw_free(&mx);
        tw_free(&my);
        tw_free(&mdx);

        const int64_t pn = 4, pc = 3, ph = 32, pw = 32, pp = 4;
        twin px = tw_floats(g, pn * pc * ph * pw, -1, 1), py = tw_floats(g, pn * pc * ph * pw, -1, 1);
        twin pdx = tw_floats(g, pn * pc * ph * pw, -1, 1);
        OK(cpu->ops->patchify_forward(cpu, pn, pc, ph, pw, pp, px.c, py.c));
        OK(g->ops->patchify_forward(g, pn, pc, ph, pw, pp, px.g, py.g));
        tw_check_bits(&py, "patchify_forward p4");
        OK(cpu->ops->patchify_backward(cpu, pn, pc, ph, pw, 2, px.c, pdx.c));
        OK(g->ops->patchify_backward(g, pn, pc, ph, pw, 2, px.g, pdx.g));
        tw_check_bits(&pdx, "patchify_backward p2");
        tw_free(&px);
        tw_free(&py);
        tw_free(&pdx);
    }
}

/* ---- convolution ---- */

static void conv_case(eng_backend *g, int64_t n, int64_t c, int64_t hw, int64_t k, int64_t ks, int64_t stride,
                      int64_t pad, bool bias)
{
    eng_conv_desc d = {.n = n, .c = c, .h = hw, .w = hw, .k = k, .kh = ks, .kw = ks, .stride = stride, .pad = pad};
    d.oh = d.ow = (hw + 2 * pad - ks) / stride + 1;
    const float ws_scale = 1.0f / sqrtf((float)(c * ks * ks));
    twin x = tw_floats(g, n * c * hw * hw, -1, 1), w = tw_floats(g, k * c * ks * ks, -ws_scale, ws_scale);
    twin b = tw_floats(g, k, -1, 1), y = tw_floats(g, n * k * d.oh * d.ow, -1, 1);
    twin dy = tw_floats(g, n * k * d.oh * d.ow, -1, 1), dx = tw_floats(g, n * c * hw * hw, 3, 4);
    twin dw = tw_floats(g, k * c * ks * ks, 3, 4), db = tw_floats(g, k, 3, 4);
    eng_clear_error();
    const size_t wsc = cpu->ops->conv2d_workspace(cpu, &d), wsg = g->ops->conv2d_workspace(g, &d);
    if (wsg == 0 && eng_last_error()[0])
        printf("    (workspace query message: %s)\n", eng_last_error());
    void *bc, *bg;
    OK(cpu->ops->alloc(cpu, wsc ? wsc : 1, &bc));
    OK(g->ops->alloc(g, wsg ? wsg : 1, &bg));
    const double tol = mm_tol[prec_of(g)];
    char what[128];
    snprintf(what, sizeof what, "conv n%lld c%lld %lldx%lld k%lld %lldx%lld s%lld p%lld%s", (long long)n,
             (long long)c, (long long)hw, (long long)hw, (long long)k, (long long)ks, (long long)ks,
             (long long)stride, (long long)pad, bias ? " bias" : "");
    printf("  %s: gpu workspace %zu bytes\n", what, wsg);
    OK(cpu->ops->conv2d_forward(cpu, &d, x.c, w.c, bias ? b.c : NULL, y.c, bc));
    OK(g->ops->conv2d_forward(g, &d, x.g, w.g, bias ? b.g : NULL, y.g, bg));
    tw_check(&y, "  conv2d_forward y", tol);
    OK(cpu->ops->conv2d_backward(cpu, &d, x.c, w.c, dy.c, dx.c, dw.c, bias ? db.c : NULL, bc));
    OK(g->ops->conv2d_backward(g, &d, x.g, w.g, dy.g, dx.g, dw.g, bias ? db.g : NULL, bg));
    tw_check(&dx, "  conv2d_backward dx", tol);
    tw_check(&dw, "  conv2d_backward dw", tol);
    if (bias)
        tw_check(&db, "  conv2d_backward db", TOL);
    /* the same bits again (deterministic algorithms) */
    void *dx1 = gpu_copy_of(g, dx.g, dx.bytes), *dw1 = gpu_copy_of(g, dw.g, dw.bytes);
    OK(g->ops->conv2d_backward(g, &d, x.g, w.g, dy.g, dx.g, dw.g, bias ? db.g : NULL, bg));
    gpu_same(g, dx.g, dx1, dx.bytes, "conv2d_backward dx");
    gpu_same(g, dw.g, dw1, dw.bytes, "conv2d_backward dw");
    g->ops->free(g, dx1);
    g->ops->free(g, dw1);
    /* dx skipped when NULL */
    OK(g->ops->conv2d_backward(g, &d, x.g, w.g, dy.g, NULL, dw.g, NULL, bg));
    /* a smaller batch of the same geometry, planned within the workspace given */
    if (n > 1) {
        eng_conv_desc h = d;
        h.n = n / 2;
        OK(cpu->ops->conv2d_forward(cpu, &h, x.c, w.c, bias ? b.c : NULL, y.c, bc));
        OK(g->ops->conv2d_forward(g, &h, x.g, w.g, bias ? b.g : NULL, y.g, bg));
        tw_check(&y, "  conv2d_forward, half batch", tol);
    }
    cpu->ops->free(cpu, bc);
    g->ops->free(g, bg);
    tw_free(&x);
    tw_free(&w);
    tw_free(&b);
    tw_free(&y);
    tw_free(&dy);
    tw_free(&dx);
    tw_free(&dw);
    tw_free(&db);
}

static void test_conv(void **state)
{
    (void)state;
    FOR_EACH_GPU(g)
    {
        conv_case(g, 8, 3, 32, 16, 3, 1, 1, true);   /* normal_cnn's first layer */
        conv_case(g, 4, 3, 32, 32, 7, 2, 3, true);   /* residual_cnn's stem */
        conv_case(g, 8, 16, 15, 32, 3, 1, 1, false);
        conv_case(g, 6, 64, 8, 64, 3, 1, 1, true);
        conv_case(g, 4, 32, 8, 8, 1, 1, 0, true);    /* 1x1 of a bottleneck */
        conv_case(g, 3, 5, 9, 7, 3, 2, 0, true);     /* odd sizes, stride 2 */
    }
}

/* ---- pooling ---- */

static void pool_case(eng_backend *g, eng_pool_mode mode, bool include_pad, int64_t hw, int64_t k, int64_t s,
                      int64_t p)
{
    eng_pool_desc d = {.mode = mode, .count_include_pad = include_pad, .n = 4, .c = 5, .h = hw, .w = hw, .kh = k,
                       .kw = k, .stride = s, .pad = p};
    d.oh = d.ow = (hw + 2 * p - k) / s + 1;
    const int64_t ni = d.n * d.c * hw * hw, no = d.n * d.c * d.oh * d.ow;
    twin x = tw_levels(g, ni, 5, 0.5f), y = tw_floats(g, no, -1, 1), dy = tw_floats(g, no, -1, 1);
    twin dx = tw_floats(g, ni, 7, 8);
    char what[96];
    snprintf(what, sizeof what, "pool %s%s %lldx%lld k%lld s%lld p%lld", mode == ENG_POOL_MAX ? "max" : "avg",
             mode == ENG_POOL_AVG ? (include_pad ? " incl-pad" : " excl-pad") : "", (long long)hw, (long long)hw,
             (long long)k, (long long)s, (long long)p);
    OK(cpu->ops->pool_forward(cpu, &d, x.c, y.c));
    OK(g->ops->pool_forward(g, &d, x.g, y.g));
    tw_check(&y, what, TOL);
    OK(cpu->ops->pool_backward(cpu, &d, x.c, y.c, dy.c, dx.c));
    OK(g->ops->pool_backward(g, &d, x.g, y.g, dy.g, dx.g));
    tw_check(&dx, "  backward (ties: first maximum)", TOL);
    tw_free(&x);
    tw_free(&y);
    tw_free(&dy);
    tw_free(&dx);
}

static void test_pool(void **state)
{
    (void)state;
    FOR_EACH_GPU(g)
    {
        pool_case(g, ENG_POOL_MAX, false, 15, 3, 2, 0);
        pool_case(g, ENG_POOL_MAX, false, 16, 3, 2, 1);
        pool_case(g, ENG_POOL_MAX, false, 8, 2, 2, 0);
        pool_case(g, ENG_POOL_AVG, true, 9, 3, 2, 1);
        pool_case(g, ENG_POOL_AVG, false, 9, 3, 2, 1);
        pool_case(g, ENG_POOL_AVG, true, 4, 4, 4, 0); /* global average of 4x4 */
    }
}

/* ---- normalisation ---- */

static void bn_case(eng_backend *g, int64_t outer, int64_t n, int64_t inner, bool affine)
{
    eng_norm_desc d = {.outer = outer, .n = n, .inner = inner, .eps = 1e-5f, .momentum = 0.1f};
    const int64_t total = outer * n * inner;
    twin x = tw_floats(g, total, -2, 3), y = tw_floats(g, total, -1, 1), gamma = tw_floats(g, n, 0.5f, 1.5f);
    twin beta = tw_floats(g, n, -1, 1), rm = tw_floats(g, n, -0.1f, 0.1f), rv = tw_floats(g, n, 0.5f, 2.0f);
    twin sm = tw_floats(g, n, 9, 9), si = tw_floats(g, n, 9, 9), dy = tw_floats(g, total, -1, 1);
    twin dx = tw_floats(g, total, 5, 6), dg = tw_floats(g, n, 5, 6), dbt = tw_floats(g, n, 5, 6);
    char what[96];
    snprintf(what, sizeof what, "batchnorm (%lld, %lld, %lld)%s", (long long)outer, (long long)n, (long long)inner,
             affine ? " affine" : "");
    printf("  %s\n", what);
    OK(cpu->ops->batchnorm_forward_train(cpu, &d, x.c, affine ? gamma.c : NULL, affine ? beta.c : NULL, y.c, rm.c,
                                         rv.c, sm.c, si.c));
    OK(g->ops->batchnorm_forward_train(g, &d, x.g, affine ? gamma.g : NULL, affine ? beta.g : NULL, y.g, rm.g, rv.g,
                                       sm.g, si.g));
    tw_check(&y, "  train y", TOL);
    tw_check(&sm, "  save_mean", TOL);
    tw_check(&si, "  save_invstd", TOL);
    tw_check(&rm, "  running_mean", TOL);
    tw_check(&rv, "  running_var (unbiased)", TOL);
    OK(cpu->ops->batchnorm_backward(cpu, &d, x.c, dy.c, affine ? gamma.c : NULL, sm.c, si.c, dx.c, dg.c, dbt.c));
    OK(g->ops->batchnorm_backward(g, &d, x.g, dy.g, affine ? gamma.g : NULL, sm.g, si.g, dx.g, dg.g, dbt.g));
    tw_check(&dx, "  backward dx", TOL);
    if (affine) {
        tw_check(&dg, "  backward dgamma", TOL);
        tw_check(&dbt, "  backward dbeta", TOL);
    }
    void *dx1 = gpu_copy_of(g, dx.g, dx.bytes);
    OK(g->ops->batchnorm_backward(g, &d, x.g, dy.g, affine ? gamma.g : NULL, sm.g, si.g, dx.g, dg.g, dbt.g));
    gpu_same(g, dx.g, dx1, dx.bytes, "batchnorm_backward dx");
    g->ops->free(g, dx1);
    OK(cpu->ops->batchnorm_forward_eval(cpu, &d, x.c, affine ? gamma.c : NULL, affine ? beta.c : NULL, rm.c, rv.c,
                                        y.c));
    OK(g->ops->batchnorm_forward_eval(g, &d, x.g, affine ? gamma.g : NULL, affine ? beta.g : NULL, rm.g, rv.g, y.g));
    tw_check(&y, "  eval y", TOL);
    twin *all[] = {&x, &y, &gamma, &beta, &rm, &rv, &sm, &si, &dy, &dx, &dg, &dbt};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tw_free(all[i]);
}

static void test_batchnorm(void **state)
{
    (void)state;
    FOR_EACH_GPU(g)
    {
        bn_case(g, 8, 16, 32 * 32, true); /* BatchNorm2d */
        bn_case(g, 64, 256, 1, false);    /* BatchNorm1d, the mlp template's (affine=False) */
        bn_case(g, 50, 32, 1, true);
        bn_case(g, 4, 8, 9, true);        /* 3x3 maps: the column kernel with inner > 1 */
        bn_case(g, 6, 3, 49, false);
    }
}

static void ln_case(eng_backend *g, int64_t outer, int64_t n, int64_t inner, bool affine)
{
    eng_norm_desc d = {.outer = outer, .n = n, .inner = inner, .eps = 1e-5f};
    const int64_t total = outer * n * inner, stats = outer * inner;
    twin x = tw_floats(g, total, -2, 3), y = tw_floats(g, total, -1, 1), gamma = tw_floats(g, n, 0.5f, 1.5f);
    twin beta = tw_floats(g, n, -1, 1), sm = tw_floats(g, stats, 9, 9), sr = tw_floats(g, stats, 9, 9);
    twin dy = tw_floats(g, total, -1, 1), dx = tw_floats(g, total, 5, 6), dg = tw_floats(g, n, 5, 6);
    twin dbt = tw_floats(g, n, 5, 6);
    printf("  layernorm (%lld, %lld, %lld)%s\n", (long long)outer, (long long)n, (long long)inner,
           affine ? " affine" : "");
    OK(cpu->ops->layernorm_forward(cpu, &d, x.c, affine ? gamma.c : NULL, affine ? beta.c : NULL, y.c, sm.c, sr.c));
    OK(g->ops->layernorm_forward(g, &d, x.g, affine ? gamma.g : NULL, affine ? beta.g : NULL, y.g, sm.g, sr.g));
    tw_check(&y, "  forward y", TOL);
    tw_check(&sm, "  save_mean", TOL);
    tw_check(&sr, "  save_rstd", TOL);
    OK(cpu->ops->layernorm_backward(cpu, &d, x.c, dy.c, affine ? gamma.c : NULL, sm.c, sr.c, dx.c, dg.c, dbt.c));
    OK(g->ops->layernorm_backward(g, &d, x.g, dy.g, affine ? gamma.g : NULL, sm.g, sr.g, dx.g, dg.g, dbt.g));
    tw_check(&dx, "  backward dx", TOL);
    if (affine) {
        tw_check(&dg, "  backward dgamma", TOL);
        tw_check(&dbt, "  backward dbeta", TOL);
        void *dg1 = gpu_copy_of(g, dg.g, dg.bytes);
        OK(g->ops->layernorm_backward(g, &d, x.g, dy.g, gamma.g, sm.g, sr.g, dx.g, dg.g, dbt.g));
        gpu_same(g, dg.g, dg1, dg.bytes, "layernorm_backward dgamma");
        g->ops->free(g, dg1);
    }
    twin *all[] = {&x, &y, &gamma, &beta, &sm, &sr, &dy, &dx, &dg, &dbt};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        tw_free(all[i]);
}

static void test_layernorm(void **state)
{
    (void)state;
    FOR_EACH_GPU(g)
    {
        ln_case(g, 100, 128, 1, true);    /* channel mixing: over C */
        ln_case(g, 4, 64, 128, true);     /* token mixing: over S of (B, S, C) */
        ln_case(g, 4, 64 * 128, 1, true); /* the final norm over the whole (S, C) plane */
        ln_case(g, 3, 7, 5, false);
        ln_case(g, 2, 3000, 1, false);
    }
}

/* ---- activations, softmax, loss, dropout ---- */

static void test_activations(void **state)
{
    (void)state;
    static const char *names[] = {"none", "relu", "leaky_relu", "gelu", "sigmoid", "tanh"};
    FOR_EACH_GPU(g)
    {
        const int64_t n = 20011;
        for (int k = ENG_ACT_NONE; k <= ENG_ACT_TANH; k++) {
            twin x = tw_floats(g, n, -6, 6), y = tw_floats(g, n, -1, 1), dy = tw_floats(g, n, -1, 1);
            twin dx = tw_floats(g, n, -1, 1);
            char what[64];
            snprintf(what, sizeof what, "act %s forward", names[k]);
            OK(cpu->ops->act_forward(cpu, (eng_act)k, 0.01f, n, x.c, y.c));
            OK(g->ops->act_forward(g, (eng_act)k, 0.01f, n, x.g, y.g));
            tw_check(&y, what, TOL);
            snprintf(what, sizeof what, "act %s backward", names[k]);
            OK(cpu->ops->act_backward(cpu, (eng_act)k, 0.01f, n, x.c, y.c, dy.c, dx.c));
            OK(g->ops->act_backward(g, (eng_act)k, 0.01f, n, x.g, y.g, dy.g, dx.g));
            tw_check(&dx, what, TOL);
            OK(cpu->ops->act_backward(cpu, (eng_act)k, 0.01f, n, x.c, y.c, dy.c, dy.c)); /* in place */
            OK(g->ops->act_backward(g, (eng_act)k, 0.01f, n, x.g, y.g, dy.g, dy.g));
            tw_check(&dy, "  in place", TOL);
            tw_free(&x);
            tw_free(&y);
            tw_free(&dy);
            tw_free(&dx);
        }
    }
}

static void test_softmax(void **state)
{
    (void)state;
    const int64_t shapes[][2] = {{100, 10}, {3, 2000}, {7, 1}};
    FOR_EACH_GPU(g)
    {
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            const int64_t r = shapes[s][0], n = shapes[s][1];
            twin x = tw_floats(g, r * n, -8, 8), y = tw_floats(g, r * n, -1, 1), dy = tw_floats(g, r * n, -1, 1);
            twin dx = tw_floats(g, r * n, -1, 1);
            OK(cpu->ops->softmax_forward(cpu, r, n, x.c, y.c));
            OK(g->ops->softmax_forward(g, r, n, x.g, y.g));
            tw_check(&y, "softmax forward", TOL);
            OK(cpu->ops->softmax_backward(cpu, r, n, y.c, dy.c, dx.c));
            OK(g->ops->softmax_backward(g, r, n, y.g, dy.g, dx.g));
            tw_check(&dx, "softmax backward", TOL);
            tw_free(&x);
            tw_free(&y);
            tw_free(&dy);
            tw_free(&dx);
        }
    }
}

static void test_xent(void **state)
{
    (void)state;
    const int64_t cfg[][3] = {{500, 10, 1}, {500, 10, 5}, {64, 100, 5}, {5, 2000, 3}};
    FOR_EACH_GPU(g)
    {
        for (size_t s = 0; s < sizeof cfg / sizeof *cfg; s++) {
            const int64_t rows = cfg[s][0], classes = cfg[s][1];
            eng_xent_desc d = {.rows = rows, .classes = classes, .k = cfg[s][2], .scale = 1.0f / (float)rows};
            twin logits = s == 0 ? tw_levels(g, rows * classes, 4, 1.0f) : tw_floats(g, rows * classes, -5, 5);
            int32_t *lab = malloc(rows * sizeof *lab);
            for (int64_t i = 0; i < rows; i++)
                lab[i] = (int32_t)(rnd32() % classes);
            twin labels = tw_bytes(g, rows * sizeof *lab, lab);
            const double acc0[2] = {1.5, 2.0};
            twin acc = tw_bytes(g, sizeof acc0, acc0), dl = tw_floats(g, rows * classes, -1, 1);
            OK(cpu->ops->xent(cpu, &d, logits.c, labels.c, dl.c, acc.c));
            OK(g->ops->xent(g, &d, logits.g, labels.g, dl.g, acc.g));
            double ac[2], ag[2];
            tw_download(&acc, ac, ag);
            printf("  xent rows %lld classes %lld k %lld %s: loss %.9g vs %.9g, hits %.0f vs %.0f\n", (long long)rows,
                   (long long)classes, (long long)d.k, prec_name[prec_of(g)], ag[0], ac[0], ag[1], ac[1]);
            assert_true(fabs(ag[0] - ac[0]) <= TOL * fabs(ac[0]));
            assert_true(ag[1] == ac[1]); /* hits are counts: exact (tie rule included) */
            tw_check(&dl, "  dlogits", TOL);
            /* without dlogits, accumulating a second time */
            OK(cpu->ops->xent(cpu, &d, logits.c, labels.c, NULL, acc.c));
            OK(g->ops->xent(g, &d, logits.g, labels.g, NULL, acc.g));
            tw_download(&acc, ac, ag);
            assert_true(fabs(ag[0] - ac[0]) <= TOL * fabs(ac[0]) && ag[1] == ac[1]);
            free(lab);
            tw_free(&logits);
            tw_free(&labels);
            tw_free(&acc);
            tw_free(&dl);
        }
        /* non-finite logits (issue 10, defect 4): never a hit, NaN loss, as on the CPU */
        for (int warp = 0; warp < 2; warp++) {
            const int64_t rows = 6, classes = warp ? 10 : 2000;
            float *h = malloc(rows * classes * sizeof *h);
            int32_t lab[6];
            for (int64_t i = 0; i < rows * classes; i++)
                h[i] = (float)(i % 7) - 3.0f;
            for (int64_t r = 0; r < rows; r++)
                lab[r] = (int32_t)(r % classes);
            h[0 * classes + 3] = NAN;      /* row 0: one NaN elsewhere */
            h[1 * classes + 1] = NAN;      /* row 1: the label's logit */
            h[2 * classes + 2] = INFINITY; /* row 2: +inf at the label */
            h[3 * classes + 0] = -INFINITY;
            for (int64_t j = 0; j < classes; j++)
                h[4 * classes + j] = NAN; /* row 4: all NaN; row 5 finite */
            twin logits = tw_bytes(g, rows * classes * sizeof *h, h);
            twin labels = tw_bytes(g, sizeof lab, lab);
            const double acc0[2] = {0.0, 0.0};
            twin acc = tw_bytes(g, sizeof acc0, acc0);
            eng_xent_desc d = {.rows = rows, .classes = classes, .k = classes, .scale = 1.0f};
            OK(cpu->ops->xent(cpu, &d, logits.c, labels.c, NULL, acc.c));
            OK(g->ops->xent(g, &d, logits.g, labels.g, NULL, acc.g));
            double ac[2], ag[2];
            tw_download(&acc, ac, ag);
            printf("  xent non-finite rows, classes %lld: hits %.0f vs %.0f\n", (long long)classes, ag[1], ac[1]);
            assert_true(ac[1] == 1.0 && ag[1] == 1.0); /* k = classes: only the finite row 5 */
            assert_true(isnan(ac[0]) && isnan(ag[0]));
            free(h);
            tw_free(&logits);
            tw_free(&labels);
            tw_free(&acc);
        }
    }
}

static void test_dropout(void **state)
{
    (void)state;
    FOR_EACH_GPU(g)
    {
        const int64_t n = 100003;
        const float ps[] = {0.0f, 0.3f, 1.0f};
        for (size_t k = 0; k < 3; k++) {
            twin x = tw_floats(g, n, -1, 1), y = tw_floats(g, n, -1, 1);
            const uint64_t key = eng_rng_key(42, ENG_RNG_DROPOUT, 3);
            OK(cpu->ops->dropout(cpu, n, ps[k], key, 5, x.c, y.c));
            OK(g->ops->dropout(g, n, ps[k], key, 5, x.g, y.g));
            tw_check_bits(&y, "dropout (same mask, same bits)");
            OK(cpu->ops->dropout(cpu, n, ps[k], key, 9, x.c, x.c));
            OK(g->ops->dropout(g, n, ps[k], key, 9, x.g, x.g));
            tw_check_bits(&x, "dropout in place");
            tw_free(&x);
            tw_free(&y);
        }
    }
}

/* ---- input pipeline ---- */

static void test_batch_gather(void **state)
{
    (void)state;
    FOR_EACH_GPU(g)
    {
        const int64_t N = 50, c = 3, h = 32, w = 32, n = 16, pad = 4;
        uint8_t *img = malloc(N * c * h * w);
        for (int64_t i = 0; i < N * c * h * w; i++)
            img[i] = (uint8_t)rnd32();
        int32_t lab[50], idx[16];
        int16_t aug[48];
        for (int i = 0; i < N; i++)
            lab[i] = (int32_t)(rnd32() % 10);
        for (int i = 0; i < n; i++) {
            idx[i] = (int32_t)(rnd32() % N);
            aug[3 * i] = (int16_t)(rnd32() % (2 * pad + 1));
            aug[3 * i + 1] = (int16_t)(rnd32() % (2 * pad + 1));
            aug[3 * i + 2] = (int16_t)(rnd32() % 2);
        }
        twin ti = tw_bytes(g, N * c * h * w, img), tl = tw_bytes(g, sizeof lab, lab), tx = tw_bytes(g, sizeof idx, idx);
        twin ta = tw_bytes(g, sizeof aug, aug), x = tw_floats(g, n * c * h * w, -1, 1);
        twin out = tw_bytes(g, n * sizeof(int32_t), NULL);
        for (int augment = 0; augment < 2; augment++) {
            eng_batch_desc d = {.n = n, .c = c, .h = h, .w = w, .pad = pad, .augment = augment,
                                .mean = {0.5f, 0.45f, 0.4f}, .inv_std = {4.0f, 3.5f, 3.0f}};
            OK(cpu->ops->batch_gather(cpu, &d, ti.c, tl.c, tx.c, ta.c, x.c, out.c));
            OK(g->ops->batch_gather(g, &d, ti.g, tl.g, tx.g, ta.g, x.g, out.g));
            tw_check_bits(&x, augment ? "batch_gather with crop and flip" : "batch_gather");
            tw_check_bits(&out, "  labels");
        }
        free(img);
        twin *all[] = {&ti, &tl, &tx, &ta, &x, &out};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            tw_free(all[i]);
    }
}

/* ---- optimisers and the global norm ---- */

static void test_optimisers(void **state)
{
    (void)state;
    FOR_EACH_GPU(g)
    {
        const int64_t n = 10007;
        for (int decoupled = 0; decoupled < 2; decoupled++) {
            twin p = tw_floats(g, n, -1, 1), m = tw_bytes(g, n * sizeof(float), NULL);
            twin v = tw_bytes(g, n * sizeof(float), NULL), gr = tw_floats(g, n, -1, 1);
            for (int64_t t = 1; t <= 3; t++) {
                eng_adam_args a = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f,
                                   .step = t, .decoupled = decoupled};
                OK(cpu->ops->adam_step(cpu, n, p.c, gr.c, m.c, v.c, &a));
                OK(g->ops->adam_step(g, n, p.g, gr.g, m.g, v.g, &a));
            }
            tw_check(&p, decoupled ? "adamw p (3 steps)" : "adam p (3 steps)", TOL);
            tw_check_bits(&p, "  p: the CPU's rounding");
            tw_check_bits(&m, "  m");
            tw_check_bits(&v, "  v");
            tw_free(&p);
            tw_free(&m);
            tw_free(&v);
            tw_free(&gr);
        }
        for (int nesterov = 0; nesterov < 2; nesterov++) {
            twin p = tw_floats(g, n, -1, 1), buf = tw_floats(g, n, -1, 1), gr = tw_floats(g, n, -1, 1);
            for (int t = 0; t < 3; t++) {
                eng_sgd_args a = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-4f, .nesterov = nesterov,
                                  .first = t == 0};
                OK(cpu->ops->sgd_step(cpu, n, p.c, gr.c, buf.c, &a));
                OK(g->ops->sgd_step(g, n, p.g, gr.g, buf.g, &a));
            }
            tw_check_bits(&p, nesterov ? "sgd nesterov p" : "sgd momentum p");
            tw_check_bits(&buf, "  buf");
            eng_sgd_args plain = {.lr = 0.1f};
            OK(cpu->ops->sgd_step(cpu, n, p.c, gr.c, NULL, &plain));
            OK(g->ops->sgd_step(g, n, p.g, gr.g, NULL, &plain));
            tw_check_bits(&p, "sgd plain p");
            tw_free(&p);
            tw_free(&buf);
            tw_free(&gr);
        }
    }
}

static void test_norm_and_clip(void **state)
{
    (void)state;
    FOR_EACH_GPU(g)
    {
        const int64_t sizes[] = {1234567, 1000, 1, 0};
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            const int64_t n = sizes[s];
            twin x = tw_floats(g, n ? n : 1, -1, 1);
            const double junk[2] = {7, 7};
            twin ss = tw_bytes(g, sizeof junk, junk);
            OK(cpu->ops->sumsq(cpu, n, x.c, ss.c));
            OK(g->ops->sumsq(g, n, x.g, ss.g));
            double sc[2], sg[2];
            tw_download(&ss, sc, sg);
            printf("  sumsq n %lld %s: %.17g vs %.17g\n", (long long)n, prec_name[prec_of(g)], sg[0], sc[0]);
            assert_true(fabs(sg[0] - sc[0]) <= 1e-12 * fabs(sc[0]));
            assert_true(sg[1] == 7.0); /* only one double written */
            void *again;
            OK(g->ops->alloc(g, sizeof(double), &again));
            OK(g->ops->sumsq(g, n, x.g, again));
            gpu_same(g, ss.g, again, sizeof(double), "sumsq");
            g->ops->free(g, again);
            if (n > 0) {
                const float max_norm = (float)(0.3 * sqrt(sc[0]));
                OK(cpu->ops->clip_by_norm(cpu, n, x.c, ss.c, max_norm));
                OK(g->ops->clip_by_norm(g, n, x.g, ss.g, max_norm));
                tw_check_bits(&x, "clip_by_norm (scaled)");
                OK(cpu->ops->clip_by_norm(cpu, n, x.c, ss.c, 1e9f));
                OK(g->ops->clip_by_norm(g, n, x.g, ss.g, 1e9f));
                tw_check_bits(&x, "clip_by_norm (unchanged)");
            }
            tw_free(&x);
            tw_free(&ss);
        }
    }
}

/* ---- CUDA graphs ---- */

typedef struct step_bufs {
    float *x, *p, *y, *gr, *m, *v;
    double *ss;
} step_bufs;

/* y = relu(x p^T); gr = y^T x; clip(gr, 1); adam(p, gr) - a stand-in for a training step */
static int step_ops(eng_backend *g, step_bufs *s, int64_t rows, int64_t f, const eng_adam_args *a)
{
    eng_gemm_desc fw = {.tb = true, .m = rows, .n = f, .k = f, .lda = f, .ldb = f, .ldc = f, .batch = 1,
                        .alpha = 1.0f};
    eng_gemm_desc gw = {.ta = true, .m = f, .n = f, .k = rows, .lda = f, .ldb = f, .ldc = f, .batch = 1,
                        .alpha = 1.0f};
    int rc = g->ops->gemm(g, &fw, s->x, s->p, s->y);
    if (!rc)
        rc = g->ops->act_forward(g, ENG_ACT_RELU, 0.0f, rows * f, s->y, s->y);
    if (!rc)
        rc = g->ops->gemm(g, &gw, s->y, s->x, s->gr);
    if (!rc)
        rc = g->ops->sumsq(g, f * f, s->gr, s->ss);
    if (!rc)
        rc = g->ops->clip_by_norm(g, f * f, s->gr, s->ss, 1.0f);
    if (!rc)
        rc = g->ops->adam_step(g, f * f, s->p, s->gr, s->m, s->v, a);
    return rc;
}

static void step_alloc(eng_backend *g, step_bufs *s, int64_t rows, int64_t f, const float *x0, const float *p0)
{
    OK(eng_alloc_floats(g, rows * f, &s->x));
    OK(eng_alloc_floats(g, f * f, &s->p));
    OK(eng_alloc_floats(g, rows * f, &s->y));
    OK(eng_alloc_floats(g, f * f, &s->gr));
    OK(eng_alloc_floats(g, f * f, &s->m));
    OK(eng_alloc_floats(g, f * f, &s->v));
    OK(g->ops->alloc(g, sizeof(double), (void **)&s->ss));
    OK(g->ops->upload(g, s->x, x0, rows * f * sizeof(float)));
    OK(g->ops->upload(g, s->p, p0, f * f * sizeof(float)));
}

static void step_free(eng_backend *g, step_bufs *s)
{
    void *all[] = {s->x, s->p, s->y, s->gr, s->m, s->v, s->ss};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        g->ops->free(g, all[i]);
}

static void test_graph_replay(void **state)
{
    (void)state;
    if (cpu_vs_cpu)
        skip();
    FOR_EACH_GPU(g)
    {
        const int64_t rows = 96, f = 64;
        float *x0 = malloc(rows * f * sizeof *x0), *p0 = malloc(f * f * sizeof *p0);
        for (int64_t i = 0; i < rows * f; i++)
            x0[i] = rndf(-1, 1);
        for (int64_t i = 0; i < f * f; i++)
            p0[i] = rndf(-0.2f, 0.2f);
        step_bufs eager, graphed;
        step_alloc(g, &eager, rows, f, x0, p0);
        step_alloc(g, &graphed, rows, f, x0, p0);
        eng_adam_args a = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f, .step = 1};
        /* capture once (with step 1's arguments), replay with steps 1..4 */
        OK(gpu_graph_begin(g));
        OK(step_ops(g, &graphed, rows, f, &a));
        gpu_graph *gr = NULL;
        OK(gpu_graph_end(g, &gr));
        assert_int_equal(gpu_graph_op_count(gr), 6);
        assert_int_equal(gpu_graph_launch(g, gr, NULL), ENG_EINVAL); /* it holds an Adam step */
        for (int64_t t = 1; t <= 4; t++) {
            a.step = t;
            a.lr = 1e-2f / (float)t;
            OK(step_ops(g, &eager, rows, f, &a));
            gpu_step_args sa = {.adam = a};
            OK(gpu_graph_launch(g, gr, &sa));
        }
        OK(g->ops->sync(g));
        /* the same kernels on the same data; cuBLAS could in principle pick
         * another algorithm under capture, so bits are reported, not required */
        gpu_close(g, graphed.p, eager.p, f * f, TOL, "graph replay (4 steps) vs eager: p");
        gpu_close(g, graphed.v, eager.v, f * f, TOL, "graph replay (4 steps) vs eager: v");
        gpu_graph_free(g, gr);
        /* a host-synchronising call inside a capture fails the capture, and the stream stays usable */
        float host[4];
        OK(gpu_graph_begin(g));
        assert_int_equal(g->ops->download(g, host, eager.p, sizeof host), ENG_EINVAL);
        assert_int_equal(gpu_graph_end(g, &gr), ENG_EINVAL);
        assert_null(gr);
        OK(g->ops->download(g, host, eager.p, sizeof host));
        step_free(g, &eager);
        step_free(g, &graphed);
        free(x0);
        free(p0);
    }
}

/* ---- error paths ---- */

static void test_errors(void **state)
{
    (void)state;
    eng_backend *g = gpus[0];
    eng_gemm_desc bad = {.m = 4, .n = 4, .k = 4, .lda = 2, .ldb = 4, .ldc = 4, .batch = 1, .alpha = 1.0f};
    float *p;
    OK(eng_alloc_floats(g, 64, &p));
    assert_int_equal(g->ops->gemm(g, &bad, p, p, p), ENG_EINVAL);
    assert_non_null(strstr(eng_last_error(), "gemm"));
    eng_conv_desc cd = {.n = 1, .c = 1, .h = 4, .w = 4, .k = 1, .kh = 3, .kw = 3, .stride = 1, .pad = 1, .oh = 3, .ow = 4};
    assert_int_equal(g->ops->conv2d_forward(g, &cd, p, p, NULL, p, NULL), ENG_EINVAL);
    void *huge;
    assert_int_equal(g->ops->alloc(g, (size_t)1 << 50, &huge), ENG_ENOMEM);
    assert_null(huge);
    OK(g->ops->sync(g)); /* the failed allocation left no sticky error */
    g->ops->free(g, p);
}

int main(int argc, char **argv)
{
    gpu_device_info info[8];
    int count = 0;
    cpu_vs_cpu = argc > 1 && !strcmp(argv[1], "--cpu-vs-cpu");
    if (cpu_vs_cpu) {
        if (eng_cpu_backend_new(1, &cpu) < 0 || eng_cpu_backend_new(2, &gpus[0]) < 0) {
            fprintf(stderr, "cpu backend: %s\n", eng_last_error());
            return 1;
        }
        printf("harness check: the CPU backend with 2 threads in place of the GPU\n");
    } else if (gpu_device_list(info, 8, &count) < 0) {
        /* a driver that is installed and fails is a failure, never a skip */
        fprintf(stderr, "FAIL: CUDA is installed but unusable: %s\n", eng_last_error());
        return 1;
    } else if (count == 0) {
        printf("no CUDA device: skipping the GPU operation tests\n");
        return 77;
    }
    for (int p = 0; p < 3 && !cpu_vs_cpu; p++) {
        if (p == 0) {
            printf("device 0: %s, %.1f GiB, compute capability %d.%d, %d multiprocessors\n", info[0].name,
                   (double)info[0].total_memory / (1 << 30), info[0].cc_major, info[0].cc_minor,
                   info[0].multiprocessors);
            if (eng_cpu_backend_new(0, &cpu) < 0) {
                fprintf(stderr, "cpu backend: %s\n", eng_last_error());
                return 1;
            }
        }
        if (gpu_backend_new(0, (eng_precision)p, &gpus[p]) < 0) {
            if (p > 0 && info[0].cc_major < 8) {
                printf("%s: %s (skipped)\n", prec_name[p], eng_last_error());
                continue;
            }
            fprintf(stderr, "gpu backend %s: %s\n", prec_name[p], eng_last_error());
            return 1;
        }
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),          cmocka_unit_test(test_bias),
        cmocka_unit_test(test_elementwise_and_layout), cmocka_unit_test(test_conv),
        cmocka_unit_test(test_pool),          cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_layernorm),     cmocka_unit_test(test_activations),
        cmocka_unit_test(test_softmax),       cmocka_unit_test(test_xent),
        cmocka_unit_test(test_dropout),       cmocka_unit_test(test_batch_gather),
        cmocka_unit_test(test_optimisers),    cmocka_unit_test(test_norm_and_clip),
        cmocka_unit_test(test_graph_replay),  cmocka_unit_test(test_errors),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("largest float32-tolerance error: fp32 %.3g, tf32 %.3g, bf16 %.3g\n", worst[0], worst[1], worst[2]);
    for (int p = 0; p < 3; p++)
        eng_backend_free(gpus[p]);
    eng_backend_free(cpu);
    return failed ? 1 : 0;
}
